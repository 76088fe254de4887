/* SPDX-License-Identifier: MIT */
/*
 * The store's environment, transactions and plain records: sources,
 * providers, token owners, idempotency records, the epoch and the other
 * counters in meta. Partitions with their per-source indexes live in
 * store_partitions.c, the cross-source lease, session and tombstone indexes
 * in store_crossindex.c, the event log in store_events.c; the shared
 * encoding rules in store_int.h.
 *
 * One LMDB environment with named DBIs, opened with MDB_NOTLS (a read
 * transaction is not tied to its thread's reader slot) and LMDB's default
 * sync, so a returned top-level commit is fsynced. The map is 16 GiB by
 * default: LMDB maps it sparsely, and growing it later would need every
 * transaction closed and the failed one redone, which is more machinery
 * than a large map costs.
 *
 * Key layout (src = the source's id, big-endian 64 bits):
 *   meta        "epoch" -> u64; "next_source_id" -> u64;
 *               'M' | src | half -> u64 mask of length classes ever indexed;
 *               'E' | src -> u64 event count (store_events.c);
 *               "xindex_version" -> u64, set once store_crossindex.c's
 *               indexes have been built; "secret" -> 32 random bytes
 *               (idem.h)
 *   sources     name -> id, owner, digest, created_at, updated_at, seq, fence
 *   providers   src | name -> digest, created_at
 *   idem        key -> created_at | command | sealed reply (the key and the
 *               seal are idem.h's: no request_id or reply in clear)
 *   idem_time   created_at | key -> "" (oldest first, for pruning)
 *   tokens      digest -> source name, provider name ("" = the owner)
 * and, in store_partitions.c, partitions, overlap and runion, with the note
 * on how the ready union is kept; in store_crossindex.c leases, sessions
 * and tombstones; in store_events.c events.
 *
 * Source ids instead of names in the per-source keys keep those keys short
 * and fixed-width, so a provider or partition key never nears LMDB's 511
 * byte limit (8 + 8 + 8 + a 200-byte provider name).
 */
#include "store_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "log.h"

#define DEFAULT_MAP_SIZE (UINT64_C(16) << 30)
#define MAX_DBS          16

static const char key_epoch[] = "epoch";
static const char key_next_source[] = "next_source_id";
static const char key_xindex_version[] = "xindex_version";
static const char key_secret[] = "secret";

#define XINDEX_VERSION 2

int
pr__store_lmdb_err(int rc, const char *what, int notfound)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return notfound;
	case MDB_MAP_FULL:
	case ENOSPC: /* the disk, at commit (LMDB returns errno values as they are) */
	case EDQUOT:
		pr_error("store: %s: %s", what, mdb_strerror(rc));
		return PR_EMAPFULL;
	default:
		pr_error("store: %s: %s", what, mdb_strerror(rc));
		return PR_ESTORE;
	}
}

void
pr__store_cursor_encode(char tag, const uint8_t *key, size_t len, char out[PR_CURSOR_MAX])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	assert(1 + 2 * len < PR_CURSOR_MAX);
	out[o++] = tag;
	for (size_t i = 0; i < len; i++) {
		out[o++] = hex[key[i] >> 4];
		out[o++] = hex[key[i] & 15];
	}
	out[o] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

int
pr__store_cursor_decode(
    char tag, const char *cursor, size_t minlen, size_t maxlen, uint8_t *key, size_t *len)
{
	size_t n;

	*len = 0;
	if (cursor == NULL || cursor[0] == '\0') {
		return 0;
	}
	n = strnlen(cursor, PR_CURSOR_MAX);
	if (cursor[0] != tag || n % 2 != 1 || (n - 1) / 2 < minlen || (n - 1) / 2 > maxlen) {
		return PR_ECURSOR;
	}
	for (size_t i = 0; i < (n - 1) / 2; i++) {
		int hi = hexval(cursor[1 + 2 * i]);
		int lo = hexval(cursor[2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			return PR_ECURSOR;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = (n - 1) / 2;
	return 0;
}

/* ---- environment ---- */

static int
open_dbis(struct pr_store *st)
{
	static const struct {
		const char *name;
		size_t off;
	} dbis[] = {
		{ "meta", offsetof(struct pr_store, meta) },
		{ "sources", offsetof(struct pr_store, sources) },
		{ "providers", offsetof(struct pr_store, providers) },
		{ "partitions", offsetof(struct pr_store, partitions) },
		{ "overlap", offsetof(struct pr_store, overlap) },
		{ "runion", offsetof(struct pr_store, runion) },
		{ "events", offsetof(struct pr_store, events) },
		{ "idem", offsetof(struct pr_store, idem) },
		{ "idem_time", offsetof(struct pr_store, idem_time) },
		{ "leases", offsetof(struct pr_store, leases) },
		{ "sessions", offsetof(struct pr_store, sessions) },
		{ "tombstones", offsetof(struct pr_store, tombstones) },
		{ "tokens", offsetof(struct pr_store, tokens) },
		{ "runs", offsetof(struct pr_store, runs) },
	};
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "open: begin", PR_ESTORE);
	}
	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbis[i].off);

		rc = mdb_dbi_open(txn, dbis[i].name, MDB_CREATE, dbi);
		if (rc != 0) {
			mdb_txn_abort(txn);
			pr_error("store: open database %s: %s", dbis[i].name, mdb_strerror(rc));
			return PR_ESTORE;
		}
	}
	rc = mdb_txn_commit(txn);
	return pr__store_lmdb_err(rc, "open: commit", PR_ESTORE);
}

/* Build the cross-source indexes once, for a store written before they existed. */
static int
xindex_check(struct pr_store *st)
{
	struct pr_txn *txn;
	uint64_t v;
	int rc;

	if ((rc = pr__txn_begin(st, 1, &txn)) != 0) {
		return rc;
	}
	rc = pr__store_meta_get_u64(txn, key_xindex_version, sizeof key_xindex_version - 1, &v);
	if (rc == 0 && v < XINDEX_VERSION) {
		if ((rc = pr__store_xindex_rebuild(txn)) == 0) {
			rc = pr__store_meta_put_u64(
			    txn, key_xindex_version, sizeof key_xindex_version - 1, XINDEX_VERSION);
		}
	}
	if (rc != 0) {
		pr__txn_abort(txn);
		return rc;
	}
	return pr__txn_commit(txn);
}

int
pr__store_open(const char *dir, const struct pr_store_opts *opts, struct pr_store **out)
{
	struct pr_store *st;
	uint64_t map_size = opts != NULL && opts->map_size != 0 ? opts->map_size : DEFAULT_MAP_SIZE;
	int dead = 0;
	int rc;

	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		pr_error("store: mkdir %s: %s", dir, strerror(-rc));
		return rc;
	}
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		return -ENOMEM;
	}
	rc = mdb_env_create(&st->env);
	if (rc != 0) {
		st->env = NULL;
		rc = pr__store_lmdb_err(rc, "env_create", PR_ESTORE);
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, MAX_DBS)) != 0
	    || (rc = mdb_env_set_mapsize(st->env, (size_t)map_size)) != 0) {
		rc = pr__store_lmdb_err(rc, "env setup", PR_ESTORE);
		goto fail;
	}
	/* Default sync: no MDB_NOSYNC / MDB_NOMETASYNC, a commit is durable,
	 * unless the store is the etcd backend's read index. */
	rc = mdb_env_open(
	    st->env, dir, MDB_NOTLS | (opts != NULL && opts->nosync ? MDB_NOSYNC : 0), 0600);
	if (rc != 0) {
		pr_error("store: open %s: %s", dir, mdb_strerror(rc));
		/* LMDB passes system errors through as positive errno values. */
		rc = rc > 0 ? -rc : PR_ESTORE;
		goto fail;
	}
	/* Reader slots of processes that died would pin old pages forever. */
	rc = mdb_reader_check(st->env, &dead);
	if (rc != 0) {
		rc = pr__store_lmdb_err(rc, "reader_check", PR_ESTORE);
		goto fail;
	}
	if (dead > 0) {
		pr_info("store: cleared %d stale reader slot(s)", dead);
	}
	rc = open_dbis(st);
	if (rc == 0) {
		rc = xindex_check(st);
	}
	if (rc != 0) {
		goto fail;
	}
	*out = st;
	return 0;
fail:
	pr__store_close(st);
	return rc;
}

void
pr__store_close(struct pr_store *st)
{
	if (st == NULL) {
		return;
	}
	if (st->env != NULL) {
		mdb_env_close(st->env);
	}
	free(st);
}

/* ---- transactions ---- */

static int
txn_new(struct pr_store *st, struct pr_txn *parent, int write, struct pr_txn **out)
{
	struct pr_txn *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof *t);
	if (t == NULL) {
		return -ENOMEM;
	}
	rc = mdb_txn_begin(
	    st->env, parent != NULL ? parent->txn : NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc != 0) {
		free(t);
		return pr__store_lmdb_err(rc, "txn_begin", PR_ESTORE);
	}
	t->st = st;
	t->parent = parent;
	t->write = write;
	if (parent != NULL) {
		if ((rc = pr__store_cap_nested(parent, t)) != 0) {
			mdb_txn_abort(t->txn);
			free(t);
			return rc;
		}
		parent->child = t;
	}
	*out = t;
	return 0;
}

int
pr__txn_begin(struct pr_store *st, int write, struct pr_txn **out)
{
	return txn_new(st, NULL, write, out);
}

int
pr__txn_begin_nested(struct pr_txn *parent, struct pr_txn **out)
{
	/* LMDB nests write transactions only, one child at a time. */
	assert(parent->write);
	assert(parent->child == NULL);
	return txn_new(parent->st, parent, 1, out);
}

static void
txn_free(struct pr_txn *txn)
{
	if (txn->parent != NULL) {
		txn->parent->child = NULL;
	}
	free(txn);
}

/* Less than 1 MiB left on the store's file system? */
static int
disk_full(struct pr_store *st)
{
	struct statvfs fs;
	mdb_filehandle_t fd;

	return mdb_env_get_fd(st->env, &fd) == 0 && fstatvfs(fd, &fs) == 0
	    && (uint64_t)fs.f_bavail * fs.f_frsize < (UINT64_C(1) << 20);
}

int
pr__txn_commit(struct pr_txn *txn)
{
	int rc;

	assert(txn->child == NULL);
	rc = mdb_txn_commit(txn->txn);
	if (rc == EIO && disk_full(txn->st)) {
		/* LMDB 0.9 reports a short write, which is what a full disk
		 * gives, as EIO. */
		pr_error("store: commit: the disk is full");
		rc = ENOSPC;
	}
	pr__store_cap_end(txn, rc == 0);
	txn_free(txn);
	return pr__store_lmdb_err(rc, "commit", PR_ESTORE);
}

void
pr__txn_abort(struct pr_txn *txn)
{
	if (txn == NULL) {
		return;
	}
	assert(txn->child == NULL);
	mdb_txn_abort(txn->txn);
	pr__store_cap_end(txn, 0);
	txn_free(txn);
}

/* ---- meta ---- */

int
pr__store_meta_get_u64(struct pr_txn *txn, const void *key, size_t klen, uint64_t *v)
{
	MDB_val k = { klen, (void *)key }, d;
	int rc = mdb_get(txn->txn, txn->st->meta, &k, &d);

	*v = 0;
	if (rc == MDB_NOTFOUND) {
		return 0;
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "meta get", PR_ESTORE);
	}
	if (d.mv_size != 8) {
		pr_error("store: meta record of %zu bytes, want 8", d.mv_size);
		return PR_ESTORE;
	}
	*v = be64_get(d.mv_data);
	return 0;
}

int
pr__store_meta_put_u64(struct pr_txn *txn, const void *key, size_t klen, uint64_t v)
{
	uint8_t b[8];
	MDB_val k = { klen, (void *)key }, d = { 8, b };

	be64_put(b, v);
	return pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->meta, &k, &d, 0), "meta put", PR_ESTORE);
}

int
pr__store_mask_get(struct pr_txn *txn, uint64_t src_id, int half, uint64_t *mask)
{
	uint8_t k[10] = { 'M' };

	be64_put(k + 1, src_id);
	k[9] = (uint8_t)half;
	return pr__store_meta_get_u64(txn, k, sizeof k, mask);
}

int
pr__store_mask_add(struct pr_txn *txn, uint64_t src_id, int half, unsigned cls)
{
	uint8_t k[10] = { 'M' };
	uint64_t mask;
	int rc;

	be64_put(k + 1, src_id);
	k[9] = (uint8_t)half;
	if ((rc = pr__store_meta_get_u64(txn, k, sizeof k, &mask)) != 0) {
		return rc;
	}
	if (mask & UINT64_C(1) << cls) {
		return 0;
	}
	return pr__store_meta_put_u64(txn, k, sizeof k, mask | UINT64_C(1) << cls);
}

int
pr__store_info(struct pr_store *st, struct pr_store_info *out)
{
	MDB_envinfo info;
	MDB_stat stat;
	int rc = mdb_env_info(st->env, &info);

	if (rc == 0) {
		rc = mdb_env_stat(st->env, &stat);
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "env info", PR_ESTORE);
	}
	out->map_size = (uint64_t)info.me_mapsize;
	out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
	out->readers = info.me_numreaders;
	return 0;
}

int
pr__store_next_epoch(struct pr_store *st, uint64_t *epoch)
{
	struct pr_txn *txn;
	uint64_t e;
	int rc;

	if ((rc = pr__txn_begin(st, 1, &txn)) != 0) {
		return rc;
	}
	if ((rc = pr__store_meta_get_u64(txn, key_epoch, sizeof key_epoch - 1, &e)) != 0
	    || (rc = pr__store_meta_put_u64(txn, key_epoch, sizeof key_epoch - 1, e + 1)) != 0) {
		pr__txn_abort(txn);
		return rc;
	}
	if ((rc = pr__txn_commit(txn)) != 0) {
		return rc;
	}
	*epoch = e + 1;
	st->epoch = e + 1;
	return 0;
}

int
pr__store_secret(struct pr_store *st, uint8_t out[32])
{
	MDB_val k = { sizeof key_secret - 1, (void *)key_secret }, d;
	struct pr_txn *txn;
	int rc;

	if ((rc = pr__txn_begin(st, 1, &txn)) != 0) {
		return rc;
	}
	rc = mdb_get(txn->txn, st->meta, &k, &d);
	if (rc == 0 && d.mv_size == 32) {
		memcpy(out, d.mv_data, 32);
		pr__txn_abort(txn);
		return 0;
	}
	if (rc == 0 || rc == MDB_NOTFOUND) {
		rc = getrandom(out, 32, 0) == 32 ? 0 : PR_EINTERNAL;
		d = (MDB_val) { 32, out };
		if (rc == 0) {
			rc = pr__store_lmdb_err(
			    mdb_put(txn->txn, st->meta, &k, &d, 0), "secret", PR_ESTORE);
		}
	} else {
		rc = pr__store_lmdb_err(rc, "secret", PR_ESTORE);
	}
	if (rc != 0) {
		pr__txn_abort(txn);
		return rc;
	}
	return pr__txn_commit(txn);
}

/* ---- sources ---- */

static int
name_ok(const char *name)
{
	size_t n = strnlen(name, PR_NAME_MAX + 1);

	return n >= 1 && n <= PR_NAME_MAX;
}

static int
source_decode(const MDB_val *k, const MDB_val *d, struct pr_source *out)
{
	struct rbuf r = { d->mv_data, d->mv_size, 0, 0 };

	memset(out, 0, sizeof *out);
	if (k->mv_size > PR_NAME_MAX || rb_u8(&r) != PR_REC_V1) {
		goto bad;
	}
	memcpy(out->name, k->mv_data, k->mv_size);
	out->id = rb_u64(&r);
	rb_str(&r, out->owner, sizeof out->owner);
	rb_bytes(&r, out->token_digest, sizeof out->token_digest);
	out->created_at = (int64_t)rb_u64(&r);
	out->updated_at = (int64_t)rb_u64(&r);
	out->seq = rb_u64(&r);
	out->fence = rb_u64(&r);
	if (r.bad) {
		goto bad;
	}
	return 0;
bad:
	pr_error("store: corrupt source record");
	return PR_ESTORE;
}

int
pr__store_source_get(struct pr_txn *txn, const char *name, struct pr_source *out)
{
	MDB_val k, d;
	int rc;

	assert(txn->child == NULL);
	if (!name_ok(name)) {
		return PR_ENOSOURCE;
	}
	k.mv_size = strlen(name);
	k.mv_data = (void *)name;
	(void)pr__store_cap_source(txn, name);
	rc = mdb_get(txn->txn, txn->st->sources, &k, &d);
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "source get", PR_ENOSOURCE);
	}
	return source_decode(&k, &d, out);
}

int
pr__store_source_put(struct pr_txn *txn, struct pr_source *src)
{
	uint8_t buf[512];
	struct wbuf w = { buf, 0, sizeof buf };
	MDB_val k, d;
	uint64_t id = src->id;
	unsigned flags = 0;
	int rc;

	assert(txn->child == NULL);
	if (!name_ok(src->name)) {
		return PR_ENAME;
	}
	if (id == 0) {
		/* A new source: its name must be free, and it takes the next id. */
		if ((rc = pr__store_meta_get_u64(
		         txn, key_next_source, sizeof key_next_source - 1, &id))
		    != 0) {
			return rc;
		}
		id = id == 0 ? 1 : id;
		flags = MDB_NOOVERWRITE;
		if (txn->cap != NULL) {
			/* Replicated: agents share no counter, so a random id (a
			 * collision among 2^63 is not to be feared). */
			if (getrandom(&id, sizeof id, 0) != sizeof id) {
				return PR_EINTERNAL;
			}
			id = (id >> 1) | 1;
		}
	}
	wb_u8(&w, PR_REC_V1);
	wb_u64(&w, id);
	wb_str(&w, src->owner, sizeof src->owner);
	wb_bytes(&w, src->token_digest, sizeof src->token_digest);
	wb_u64(&w, (uint64_t)src->created_at);
	wb_u64(&w, (uint64_t)src->updated_at);
	wb_u64(&w, src->seq);
	wb_u64(&w, src->fence);
	k.mv_size = strlen(src->name);
	k.mv_data = src->name;
	d.mv_size = w.len;
	d.mv_data = buf;
	rc = mdb_put(txn->txn, txn->st->sources, &k, &d, flags);
	if (rc == MDB_KEYEXIST) {
		return PR_ESOURCE_EXISTS;
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "source put", PR_ESTORE);
	}
	if (src->id == 0) {
		if (txn->cap == NULL
		    && (rc = pr__store_meta_put_u64(
		            txn, key_next_source, sizeof key_next_source - 1, id + 1))
		        != 0) {
			return rc;
		}
		src->id = id;
	}
	{
		int g[PR_OP_GUARDS] = { pr__store_cap_source(txn, src->name), -1, -1 };

		return pr__store_cap_record(txn, 's', src->name, NULL, 0, buf, w.len, g);
	}
}

int
pr__store_source_list(struct pr_txn *txn, const char *cursor, size_t limit,
    int (*cb)(void *arg, const struct pr_source *s), void *arg, char next[PR_CURSOR_MAX])
{
	uint8_t after[PR_NAME_MAX];
	size_t alen;
	MDB_cursor *cur;
	MDB_val k, d;
	size_t n = 0;
	int rc;

	assert(txn->child == NULL);
	/* Decoded before next is cleared: the caller may pass one buffer as both. */
	rc = pr__store_cursor_decode('s', cursor, 1, PR_NAME_MAX, after, &alen);
	if (next != NULL) {
		next[0] = '\0';
	}
	if (rc != 0) {
		return rc;
	}
	if ((rc = mdb_cursor_open(txn->txn, txn->st->sources, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "source list", PR_ESTORE);
	}
	k.mv_size = alen;
	k.mv_data = after;
	if (alen == 0) {
		rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	} else {
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0) {
			rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
		}
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_source s;
		int r;

		if (limit != 0 && n == limit) {
			/* There is more: hand out the last key of this page. */
			if (next != NULL) {
				pr__store_cursor_encode('s', after, alen, next);
			}
			break;
		}
		if ((r = source_decode(&k, &d, &s)) != 0) {
			mdb_cursor_close(cur);
			return r;
		}
		alen = k.mv_size;
		memcpy(after, k.mv_data, alen);
		n++;
		if ((r = cb(arg, &s)) != 0) {
			if (next != NULL) {
				pr__store_cursor_encode('s', after, alen, next);
			}
			mdb_cursor_close(cur);
			return r;
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "source list", PR_ESTORE);
	}
	return 0;
}

/* ---- providers ---- */

static size_t
provider_key(uint8_t key[8 + PR_NAME_MAX], uint64_t src_id, const char *name)
{
	size_t n = strlen(name);

	be64_put(key, src_id);
	memcpy(key + 8, name, n);
	return 8 + n;
}

int
pr__store_provider_get(
    struct pr_txn *txn, const struct pr_source *src, const char *name, struct pr_provider *out)
{
	uint8_t key[8 + PR_NAME_MAX];
	MDB_val k, d;
	struct rbuf r;
	int rc;

	assert(txn->child == NULL);
	if (!name_ok(name) || src->id == 0) {
		return PR_ENOPROVIDER;
	}
	k.mv_size = provider_key(key, src->id, name);
	k.mv_data = key;
	rc = mdb_get(txn->txn, txn->st->providers, &k, &d);
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "provider get", PR_ENOPROVIDER);
	}
	memset(out, 0, sizeof *out);
	memcpy(out->name, name, strlen(name));
	r = (struct rbuf) { d.mv_data, d.mv_size, 0, 0 };
	if (rb_u8(&r) != PR_REC_V1) {
		r.bad = 1;
	}
	rb_bytes(&r, out->token_digest, sizeof out->token_digest);
	out->created_at = (int64_t)rb_u64(&r);
	if (r.bad) {
		pr_error("store: corrupt provider record");
		return PR_ESTORE;
	}
	return 0;
}

int
pr__store_provider_put(struct pr_txn *txn, const struct pr_source *src, const struct pr_provider *p)
{
	uint8_t key[8 + PR_NAME_MAX];
	uint8_t buf[64];
	struct wbuf w = { buf, 0, sizeof buf };
	MDB_val k, d;
	int rc;

	assert(txn->child == NULL);
	if (!name_ok(p->name)) {
		return PR_ENAME;
	}
	if (src->id == 0) {
		return PR_ENOSOURCE;
	}
	wb_u8(&w, PR_REC_V1);
	wb_bytes(&w, p->token_digest, sizeof p->token_digest);
	wb_u64(&w, (uint64_t)p->created_at);
	k.mv_size = provider_key(key, src->id, p->name);
	k.mv_data = key;
	d.mv_size = w.len;
	d.mv_data = buf;
	rc = pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->providers, &k, &d, 0), "provider put", PR_ESTORE);
	if (rc == 0) {
		int g[PR_OP_GUARDS] = { pr__store_cap_source(txn, src->name), -1, -1 };

		rc = pr__store_cap_record(
		    txn, 'p', src->name, p->name, strlen(p->name), buf, w.len, g);
	}
	return rc;
}

/* ---- token owners ---- */

int
pr__store_token_put(struct pr_txn *txn, const uint8_t digest[PR_DIGEST_LEN], const char *source,
    const char *provider)
{
	uint8_t buf[1 + 2 * (2 + PR_NAME_MAX)];
	struct wbuf w = { buf, 0, sizeof buf };
	MDB_val k = { PR_DIGEST_LEN, (void *)digest }, d;
	int rc;

	assert(txn->child == NULL);
	if (!name_ok(source) || strnlen(provider, PR_NAME_MAX + 1) > PR_NAME_MAX) {
		return PR_ENAME;
	}
	wb_u8(&w, PR_REC_V1);
	wb_str(&w, source, PR_NAME_MAX);
	wb_str(&w, provider, PR_NAME_MAX);
	d.mv_size = w.len;
	d.mv_data = buf;
	rc = pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->tokens, &k, &d, 0), "token put", PR_ESTORE);
	return rc != 0
	    ? rc
	    : pr__store_cap_record(txn, 'k', NULL, digest, PR_DIGEST_LEN, buf, w.len, NULL);
}

int
pr__store_token_del(struct pr_txn *txn, const uint8_t digest[PR_DIGEST_LEN])
{
	MDB_val k = { PR_DIGEST_LEN, (void *)digest };
	int rc;

	assert(txn->child == NULL);
	rc = pr__store_lmdb_err(
	    mdb_del(txn->txn, txn->st->tokens, &k, NULL), "token del", PR_ENOTFOUND);
	return rc != 0 ? rc
	               : pr__store_cap_record(txn, 'k', NULL, digest, PR_DIGEST_LEN, NULL, 0, NULL);
}

int
pr__store_token_get(struct pr_txn *txn, const uint8_t digest[PR_DIGEST_LEN],
    char source[PR_NAME_MAX + 1], char provider[PR_NAME_MAX + 1])
{
	MDB_val k = { PR_DIGEST_LEN, (void *)digest }, d;
	struct rbuf r;
	int rc;

	assert(txn->child == NULL);
	source[0] = '\0';
	provider[0] = '\0';
	rc = mdb_get(txn->txn, txn->st->tokens, &k, &d);
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "token get", PR_ENOTFOUND);
	}
	r = (struct rbuf) { d.mv_data, d.mv_size, 0, 0 };
	if (rb_u8(&r) != PR_REC_V1) {
		r.bad = 1;
	}
	rb_str(&r, source, PR_NAME_MAX + 1);
	rb_str(&r, provider, PR_NAME_MAX + 1);
	if (r.bad) {
		source[0] = '\0';
		provider[0] = '\0';
		pr_error("store: corrupt token record");
		return PR_ESTORE;
	}
	return 0;
}

/* ---- idempotency records ---- */

#define IDEM_CMD_MAX 63

static int
id_ok(const char *request_id)
{
	size_t n = strnlen(request_id, PR_ID_MAX + 1);

	return n >= 1 && n <= PR_ID_MAX;
}

int
pr__store_idem_get(
    struct pr_txn *txn, const char *request_id, char command[64], char **reply, size_t *reply_len)
{
	MDB_val k, d;
	struct rbuf r;
	char *copy;
	int rc;

	assert(txn->child == NULL);
	*reply = NULL;
	*reply_len = 0;
	if (!id_ok(request_id)) {
		return PR_ENOTFOUND;
	}
	k.mv_size = strlen(request_id);
	k.mv_data = (void *)request_id;
	rc = mdb_get(txn->txn, txn->st->idem, &k, &d);
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "idem get", PR_ENOTFOUND);
	}
	r = (struct rbuf) { d.mv_data, d.mv_size, 0, 0 };
	if (rb_u8(&r) != PR_REC_V1) {
		r.bad = 1;
	}
	(void)rb_u64(&r); /* created_at */
	rb_str(&r, command, 64);
	if (r.bad) {
		pr_error("store: corrupt idempotency record");
		return PR_ESTORE;
	}
	/* The reply is the rest of the record. */
	copy = malloc(r.len - r.off + 1);
	if (copy == NULL) {
		return -ENOMEM;
	}
	memcpy(copy, r.p + r.off, r.len - r.off);
	copy[r.len - r.off] = '\0';
	*reply = copy;
	*reply_len = r.len - r.off;
	return 0;
}

static size_t
idem_time_key(uint8_t key[8 + PR_ID_MAX], int64_t at, const char *request_id)
{
	size_t n = strlen(request_id);

	be64_put(key, time_enc(at));
	memcpy(key + 8, request_id, n);
	return 8 + n;
}

int
pr__store_idem_put(struct pr_txn *txn, const char *request_id, const char *command,
    const char *reply, size_t reply_len, int64_t now)
{
	uint8_t tkey[8 + PR_ID_MAX];
	MDB_val k, d, tk, empty = { 0, NULL };
	size_t clen = strlen(command);
	struct wbuf w;
	int rc;

	assert(txn->child == NULL);
	if (!id_ok(request_id) || clen > IDEM_CMD_MAX) {
		return PR_EFIELD;
	}
	k.mv_size = strlen(request_id);
	k.mv_data = (void *)request_id;
	d.mv_size = 1 + 8 + 2 + clen + reply_len;
	/* Reserve the value in place: replies may be large, no need to copy twice. */
	rc = mdb_put(txn->txn, txn->st->idem, &k, &d, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST) {
		/* The first reply is kept; a second put means the id was reused. */
		return PR_EREQID;
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "idem put", PR_ESTORE);
	}
	w = (struct wbuf) { d.mv_data, 0, d.mv_size };
	wb_u8(&w, PR_REC_V1);
	wb_u64(&w, (uint64_t)now);
	wb_str(&w, command, IDEM_CMD_MAX);
	wb_bytes(&w, reply, reply_len);
	tk.mv_size = idem_time_key(tkey, now, request_id);
	tk.mv_data = tkey;
	rc = pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->idem_time, &tk, &empty, 0), "idem put", PR_ESTORE);
	return rc != 0 ? rc
	               : pr__store_cap_record(
	                   txn, 'i', NULL, k.mv_data, k.mv_size, d.mv_data, d.mv_size, NULL);
}

int
pr__store_idem_prune(struct pr_txn *txn, int64_t before, size_t max, size_t *removed)
{
	MDB_cursor *cur;
	MDB_val k, d;
	size_t n = 0;
	int rc;

	assert(txn->child == NULL);
	if (removed != NULL) {
		*removed = 0;
	}
	if ((rc = mdb_cursor_open(txn->txn, txn->st->idem_time, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "idem prune", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && (max == 0 || n < max);
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		MDB_val ik;

		if (k.mv_size < 8 || time_dec(be64_get(k.mv_data)) >= before) {
			break;
		}
		ik.mv_size = k.mv_size - 8;
		ik.mv_data = (uint8_t *)k.mv_data + 8;
		rc = mdb_del(txn->txn, txn->st->idem, &ik, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			break;
		}
		if (pr__store_cap_record(txn, 'i', NULL, ik.mv_data, ik.mv_size, NULL, 0, NULL)
		    != 0) {
			rc = ENOMEM;
			break;
		}
		/* After a cursor delete, MDB_NEXT yields the entry that followed it. */
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (removed != NULL) {
		*removed = n;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "idem prune", PR_ESTORE);
	}
	return 0;
}

/* ---- replicated records (store_capture.c) ---- */

int
pr__store_sync(struct pr_store *st)
{
	return pr__store_lmdb_err(mdb_env_sync(st->env, 1), "sync", PR_ESTORE);
}

void
pr__store_set_epoch(struct pr_store *st, uint64_t epoch)
{
	st->epoch = epoch;
}

int
pr__store_set_secret(struct pr_store *st, const uint8_t secret[32])
{
	MDB_val k = { sizeof key_secret - 1, (void *)key_secret }, d = { 32, (void *)secret };
	struct pr_txn *txn;
	int rc;

	if ((rc = pr__txn_begin(st, 1, &txn)) != 0) {
		return rc;
	}
	rc = pr__store_lmdb_err(mdb_put(txn->txn, st->meta, &k, &d, 0), "secret", PR_ESTORE);
	if (rc != 0) {
		pr__txn_abort(txn);
		return rc;
	}
	return pr__txn_commit(txn);
}

int
pr__store_xindex_mark(struct pr_txn *txn)
{
	return pr__store_meta_put_u64(
	    txn, key_xindex_version, sizeof key_xindex_version - 1, XINDEX_VERSION);
}

int
pr__store_source_apply(
    struct pr_txn *txn, const uint8_t *name, size_t len, const uint8_t *val, size_t val_len)
{
	MDB_val k = { len, (void *)name }, d = { val_len, (void *)val };
	struct pr_source s;
	int rc = source_decode(&k, &d, &s);

	if (rc == 0) {
		rc = pr__store_lmdb_err(
		    mdb_put(txn->txn, txn->st->sources, &k, &d, 0), "source apply", PR_ESTORE);
	}
	return rc;
}

int
pr__store_provider_apply(struct pr_txn *txn, const struct pr_source *src, const uint8_t *name,
    size_t len, const uint8_t *val, size_t val_len)
{
	uint8_t key[8 + PR_NAME_MAX];
	MDB_val k = { 8 + len, key }, d = { val_len, (void *)val };

	if (len == 0 || len > PR_NAME_MAX) {
		return PR_ESTORE;
	}
	be64_put(key, src->id);
	memcpy(key + 8, name, len);
	if (val == NULL) {
		return pr__store_lmdb_err(
		    mdb_del(txn->txn, txn->st->providers, &k, NULL), "provider apply", 0);
	}
	return pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->providers, &k, &d, 0), "provider apply", PR_ESTORE);
}

int
pr__store_token_apply(
    struct pr_txn *txn, const uint8_t *digest, size_t len, const uint8_t *val, size_t val_len)
{
	MDB_val k = { len, (void *)digest }, d = { val_len, (void *)val };

	if (len != PR_DIGEST_LEN) {
		return PR_ESTORE;
	}
	if (val == NULL) {
		return pr__store_lmdb_err(
		    mdb_del(txn->txn, txn->st->tokens, &k, NULL), "token apply", 0);
	}
	return pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->tokens, &k, &d, 0), "token apply", PR_ESTORE);
}

/* An idempotency record opens with its version byte and created_at. */
static int
idem_created(const uint8_t *val, size_t len, int64_t *at)
{
	if (len < 9 || val[0] != PR_REC_V1) {
		pr_error("store: corrupt idempotency record");
		return PR_ESTORE;
	}
	*at = (int64_t)be64_get(val + 1);
	return 0;
}

int
pr__store_idem_apply(
    struct pr_txn *txn, const uint8_t *key, size_t len, const uint8_t *val, size_t val_len)
{
	uint8_t tkey[8 + PR_ID_MAX];
	char id[PR_ID_MAX + 1];
	MDB_val k = { len, (void *)key }, d, tk, empty = { 0, NULL };
	int64_t at;
	int rc;

	if (len == 0 || len > PR_ID_MAX) {
		return PR_ESTORE;
	}
	memcpy(id, key, len);
	id[len] = '\0';
	/* The record it replaces, or removes, takes its time entry along. */
	rc = mdb_get(txn->txn, txn->st->idem, &k, &d);
	if (rc == 0) {
		if ((rc = idem_created(d.mv_data, d.mv_size, &at)) != 0) {
			return rc;
		}
		tk = (MDB_val) { idem_time_key(tkey, at, id), tkey };
		rc = mdb_del(txn->txn, txn->st->idem_time, &tk, NULL);
		if (rc == 0 || rc == MDB_NOTFOUND) {
			rc = mdb_del(txn->txn, txn->st->idem, &k, NULL);
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "idem apply", PR_ESTORE);
	}
	if (val == NULL) {
		return 0;
	}
	if ((rc = idem_created(val, val_len, &at)) != 0) {
		return rc;
	}
	d = (MDB_val) { val_len, (void *)val };
	tk = (MDB_val) { idem_time_key(tkey, at, id), tkey };
	if ((rc = mdb_put(txn->txn, txn->st->idem, &k, &d, 0)) == 0) {
		rc = mdb_put(txn->txn, txn->st->idem_time, &tk, &empty, 0);
	}
	return pr__store_lmdb_err(rc, "idem apply", PR_ESTORE);
}
