/* SPDX-License-Identifier: MIT */
/*
 * The cross-source partition indexes: running leases by deadline, locks by
 * session, and tombstones (deleted partitions) by deletion time. Each is a
 * set of keys "prefix | partkey" where partkey is the partitions key
 * (src | start | end | provider) and the value is the source's name, so an
 * entry leads to its record with one lookup and the record can name its
 * source without a second index from id to name (source names never change).
 *
 *   leases      expires_at | partkey        state locked, expires_at != 0
 *   sessions    len | session | partkey     state locked, session != ""
 *   tombstones  since | partkey             state deleted
 *
 * (times in the order-preserving encoding of store_int.h; len is one byte,
 * so the sessions of one name form a contiguous prefix and "s" never
 * collides with a longer session starting with "s".)
 *
 * What always holds, after every pr__store_partition_put/_del: a partition is
 * in an index exactly when its record satisfies that index's condition, under
 * the key its record gives. pr__store_xindex_update enforces it from the old
 * and new record; everything lives in LMDB, so a nested transaction that is
 * aborted takes its index changes with it. A store written before these
 * indexes existed is indexed once on open (pr__store_xindex_rebuild, called
 * while meta has no "xindex_version").
 *
 * Rejected: a per-source lease index (the expiry timer would have to visit
 * every source to find the next deadline) and scanning partitions for a
 * session (O(all partitions) on every Last Will).
 */
#include "store_int.h"

#include <assert.h>
#include <string.h>

#include "log.h"

/* The longest prefix is the session's: 1 + PR_ID_MAX. */
#define XKEY_MAX (1 + PR_ID_MAX + PR_PART_KEY_MAX)

enum xindex { XI_LEASE, XI_SESSION, XI_TOMB, XI_COUNT };

static MDB_dbi
xi_dbi(struct pr_txn *txn, enum xindex xi)
{
	switch (xi) {
	case XI_LEASE:
		return txn->st->leases;
	case XI_SESSION:
		return txn->st->sessions;
	case XI_TOMB:
	case XI_COUNT:
		break;
	}
	return txn->st->tombstones;
}

static int
xi_member(enum xindex xi, const struct pr_partition *p)
{
	if (p == NULL) {
		return 0;
	}
	switch (xi) {
	case XI_LEASE:
		return p->state == PR_LOCKED && p->expires_at != 0;
	case XI_SESSION:
		return p->state == PR_LOCKED && p->session[0] != '\0';
	case XI_TOMB:
	case XI_COUNT:
		break;
	}
	return p->state == PR_DELETED;
}

/* The prefix of p's entry in xi; returns its length. */
static size_t
xi_prefix(enum xindex xi, const struct pr_partition *p, uint8_t *key)
{
	size_t n;

	switch (xi) {
	case XI_LEASE:
		be64_put(key, time_enc(p->expires_at));
		return 8;
	case XI_SESSION:
		n = strnlen(p->session, PR_ID_MAX);
		key[0] = (uint8_t)n;
		memcpy(key + 1, p->session, n);
		return 1 + n;
	case XI_TOMB:
	case XI_COUNT:
		break;
	}
	be64_put(key, time_enc(p->since));
	return 8;
}

static size_t
xi_key(enum xindex xi, uint64_t src_id, const struct pr_partition *p, uint8_t key[XKEY_MAX])
{
	size_t n = xi_prefix(xi, p, key);

	return n + part_key(key + n, src_id, p->range, p->provider);
}

int
pr__store_xindex_update(struct pr_txn *txn, const struct pr_source *src,
    const struct pr_partition *old, const struct pr_partition *new_p)
{
	for (int xi = 0; xi < XI_COUNT; xi++) {
		uint8_t ok[XKEY_MAX], nk[XKEY_MAX];
		size_t olen = 0, nlen = 0;
		int in_old = xi_member((enum xindex)xi, old);
		int in_new = xi_member((enum xindex)xi, new_p);
		int rc;

		if (in_old) {
			olen = xi_key((enum xindex)xi, src->id, old, ok);
		}
		if (in_new) {
			nlen = xi_key((enum xindex)xi, src->id, new_p, nk);
		}
		if (in_old && in_new && olen == nlen && memcmp(ok, nk, olen) == 0) {
			continue;
		}
		if (in_old) {
			MDB_val k = { olen, ok };

			rc = mdb_del(txn->txn, xi_dbi(txn, (enum xindex)xi), &k, NULL);
			if (rc != 0 && rc != MDB_NOTFOUND) {
				return pr__store_lmdb_err(rc, "xindex del", PR_ESTORE);
			}
		}
		if (in_new) {
			MDB_val k = { nlen, nk },
			        d = { strnlen(src->name, PR_NAME_MAX), (void *)src->name };

			rc = mdb_put(txn->txn, xi_dbi(txn, (enum xindex)xi), &k, &d, 0);
			if (rc != 0) {
				return pr__store_lmdb_err(rc, "xindex put", PR_ESTORE);
			}
		}
	}
	return 0;
}

/*
 * Read the partition an entry of an index with a plen-byte prefix points
 * at. A missing or non-matching record means the index is corrupt.
 */
static int
xi_read(struct pr_txn *txn, const MDB_val *k, const MDB_val *d, size_t plen, struct pr_source *src,
    struct pr_partition *out)
{
	MDB_val pk;
	int rc;

	if (k->mv_size <= plen + 24 || k->mv_size > plen + PR_PART_KEY_MAX || d->mv_size == 0
	    || d->mv_size > PR_NAME_MAX) {
		pr_error("store: corrupt cross-source index entry");
		return PR_ESTORE;
	}
	memset(src, 0, sizeof *src);
	src->id = be64_get((const uint8_t *)k->mv_data + plen);
	memcpy(src->name, d->mv_data, d->mv_size);
	pk.mv_size = k->mv_size - plen;
	pk.mv_data = (uint8_t *)k->mv_data + plen;
	rc = pr__store_part_read(txn, src, &pk, out);
	if (rc == PR_ENOPARTITION) {
		pr_error("store: index entry without its partition (source %s)", src->name);
		rc = PR_ESTORE;
	}
	return rc;
}

/* ---- leases ---- */

int
pr__store_lease_next(struct pr_txn *txn, int64_t *deadline)
{
	MDB_cursor *cur;
	MDB_val k, d;
	int rc;

	assert(txn->child == NULL);
	*deadline = 0;
	if ((rc = mdb_cursor_open(txn->txn, txn->st->leases, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "lease next", PR_ESTORE);
	}
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	if (rc == 0 && k.mv_size < 8) {
		pr_error("store: corrupt lease entry");
		mdb_cursor_close(cur);
		return PR_ESTORE;
	}
	if (rc == 0) {
		*deadline = time_dec(be64_get(k.mv_data));
	}
	mdb_cursor_close(cur);
	return pr__store_lmdb_err(rc, "lease next", PR_ENOTFOUND);
}

int
pr__store_leases_due(struct pr_txn *txn, int64_t now, size_t max,
    int (*cb)(void *arg, const struct pr_partition *p), void *arg)
{
	MDB_cursor *cur;
	MDB_val k, d;
	size_t n = 0;
	int rc, r = 0;

	assert(txn->child == NULL);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->leases, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "leases due", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && (max == 0 || n < max);
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_source src;
		struct pr_partition p;

		if (k.mv_size >= 8 && time_dec(be64_get(k.mv_data)) > now) {
			break;
		}
		if ((r = xi_read(txn, &k, &d, 8, &src, &p)) != 0 || (r = cb(arg, &p)) != 0) {
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "leases due", PR_ESTORE);
	}
	return 0;
}

/* ---- sessions ---- */

int
pr__store_session_each(struct pr_txn *txn, const char *session,
    int (*cb)(void *arg, const struct pr_partition *p), void *arg)
{
	uint8_t key[1 + PR_ID_MAX];
	size_t n = strnlen(session, PR_ID_MAX + 1);
	MDB_cursor *cur;
	MDB_val k = { 1 + n, key }, d;
	int rc, r = 0;

	assert(txn->child == NULL);
	if (n == 0 || n > PR_ID_MAX) {
		return 0; /* no lock can have such a session */
	}
	key[0] = (uint8_t)n;
	memcpy(key + 1, session, n);
	(void)pr__store_cap_session(txn, session); /* a guard: the locks of the session */
	if ((rc = mdb_cursor_open(txn->txn, txn->st->sessions, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "session scan", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_source src;
		struct pr_partition p;

		if (k.mv_size < 1 + n || memcmp(k.mv_data, key, 1 + n) != 0) {
			break;
		}
		if ((r = xi_read(txn, &k, &d, 1 + n, &src, &p)) != 0 || (r = cb(arg, &p)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "session scan", PR_ESTORE);
	}
	return 0;
}

/* ---- tombstones ---- */

int
pr__store_tombstone_prune(struct pr_txn *txn, int64_t before, size_t max, size_t *removed)
{
	MDB_cursor *cur;
	size_t n = 0;
	int rc = 0, r = 0;

	assert(txn->child == NULL);
	if (removed != NULL) {
		*removed = 0;
	}
	if ((rc = mdb_cursor_open(txn->txn, txn->st->tombstones, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "tombstone prune", PR_ESTORE);
	}
	/*
	 * Always the first entry: pr__store_partition_del removes it (with the
	 * record), so re-seeking from the start never sees an entry twice and
	 * does not rely on how LMDB moves this cursor after another delete.
	 */
	while (max == 0 || n < max) {
		struct pr_source src;
		struct pr_partition p;
		MDB_val k, d;

		if ((rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST)) != 0) {
			break;
		}
		if (k.mv_size < 8 || time_dec(be64_get(k.mv_data)) >= before) {
			break;
		}
		if ((r = xi_read(txn, &k, &d, 8, &src, &p)) != 0) {
			break;
		}
		/* The entry must go with the record, or this loop would not end. */
		if (p.state != PR_DELETED || time_enc(p.since) != be64_get(k.mv_data)) {
			pr_error("store: tombstone entry does not match its partition");
			r = PR_ESTORE;
			break;
		}
		if ((r = pr__store_partition_del(txn, &src, p.provider, p.range)) != 0) {
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (removed != NULL) {
		*removed = n;
	}
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "tombstone prune", PR_ESTORE);
	}
	return 0;
}

/* ---- rebuild ---- */

/* Index every partition of one source. */
static int
rebuild_source(struct pr_txn *txn, const struct pr_source *src)
{
	uint8_t key[8];
	MDB_cursor *cur;
	MDB_val k = { sizeof key, key }, d;
	int rc, r = 0;

	be64_put(key, src->id);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->partitions, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "xindex rebuild", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_partition p;
		MDB_val pk = k;

		if (k.mv_size < 8 || be64_get(k.mv_data) != src->id) {
			break;
		}
		if ((r = pr__store_part_read(txn, src, &pk, &p)) != 0
		    || (r = pr__store_xindex_update(txn, src, NULL, &p)) != 0
		    || (r = pr__store_runs_update(txn, src, NULL, &p)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "xindex rebuild", PR_ESTORE);
	}
	return 0;
}

int
pr__store_xindex_rebuild(struct pr_txn *txn)
{
	MDB_dbi dbis[] = { txn->st->leases, txn->st->sessions, txn->st->tombstones, txn->st->runs };
	MDB_cursor *cur;
	MDB_val k, d;
	size_t nsrc = 0;
	int rc, r = 0;

	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
		if ((rc = mdb_drop(txn->txn, dbis[i], 0)) != 0) {
			return pr__store_lmdb_err(rc, "xindex rebuild: empty", PR_ESTORE);
		}
	}
	if ((rc = mdb_cursor_open(txn->txn, txn->st->sources, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "xindex rebuild", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		char name[PR_NAME_MAX + 1];
		struct pr_source src;

		if (k.mv_size == 0 || k.mv_size > PR_NAME_MAX) {
			pr_error("store: corrupt source key");
			r = PR_ESTORE;
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if ((r = pr__store_source_get(txn, name, &src)) != 0) {
			break;
		}
		nsrc++;
		if ((r = rebuild_source(txn, &src)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "xindex rebuild", PR_ESTORE);
	}
	if (nsrc > 0) {
		pr_info(
		    "store: indexed leases, sessions, tombstones and blocker runs of %zu source(s)",
		    nsrc);
	}
	return 0;
}
