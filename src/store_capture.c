/* SPDX-License-Identifier: MIT */
/*
 * Replication of the store (the etcd backend, replica.h): what a capturing
 * transaction wrote, as records with replication keys, and the way back,
 * applying such records to a store that serves as the local read index.
 *
 * Only the primary records are replicated; every index (overlap, ready
 * union, runs, leases, sessions, tombstones, idem_time, the event counts)
 * is derived again where a record is applied, by the same functions that
 * keep it locally.
 *
 * Replication keys (a kind letter, then the record's identity; source
 * names hold no NUL, so a NUL ends one):
 *   's' name                         a source record
 *   'p' name NUL provider            a provider record
 *   't' name NUL start end provider  a partition (start, end as in the
 *                                    partitions key: time_enc, big-endian)
 *   'e' name NUL seq                 an event (seq big-endian)
 *   'k' digest                       a token owner
 *   'i' key                          an idempotency record (idem.h's key)
 * The values are the records' stored bytes, so both backends share one
 * encoding.
 *
 * Guards, the keys whose etcd mod_revision a transaction compares with the
 * one applied here (meta 'G' | guard key -> u64), so that a transaction
 * computed from a stale read index is refused by etcd and computed again:
 *   'g' name         every record of the source (read: pr__store_source_get)
 *   'h' bucket       the locks of the sessions hashing to bucket (of
 *                    PR_SESSION_BUCKETS), read by pr__store_session_each
 * A guard read is compared; a guard one of the transaction's records names
 * is also raised (put) by it.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define PR_SESSION_BUCKETS 4096

static const char key_applied[] = "applied_revision";

/* ---- recording ---- */

static int
cap_new(struct pr_txn *txn, struct pr_capture *root)
{
	txn->cap = calloc(1, sizeof *txn->cap);
	if (txn->cap == NULL) {
		return -ENOMEM;
	}
	txn->root = root != NULL ? root : txn->cap;
	return 0;
}

int
pr__txn_capture(struct pr_txn *txn)
{
	assert(txn->parent == NULL && txn->write && txn->cap == NULL);
	return cap_new(txn, NULL);
}

int
pr__store_cap_nested(struct pr_txn *parent, struct pr_txn *child)
{
	return parent->cap != NULL ? cap_new(child, parent->root) : 0;
}

static void
ops_free(struct pr_store_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ops[i].key);
	}
	free(ops);
}

void
pr__store_cap_end(struct pr_txn *txn, int commit)
{
	struct pr_capture *c = txn->cap, *p;

	if (c == NULL) {
		return;
	}
	txn->cap = NULL;
	if (commit && txn->parent != NULL && c->nops > 0) {
		p = txn->parent->cap;
		if (p->nops + c->nops > p->cap_ops) {
			size_t cap = p->cap_ops * 2 > p->nops + c->nops ? p->cap_ops * 2
			                                                : p->nops + c->nops + 8;
			struct pr_store_op *ops = realloc(p->ops, cap * sizeof *ops);

			if (ops == NULL) {
				txn->root->err = -ENOMEM;
				ops_free(c->ops, c->nops);
				goto out;
			}
			p->ops = ops;
			p->cap_ops = cap;
		}
		memcpy(p->ops + p->nops, c->ops, c->nops * sizeof *c->ops);
		p->nops += c->nops;
		free(c->ops);
	} else {
		ops_free(c->ops, c->nops);
	}
out:
	if (c == txn->root) {
		free(c->guards);
	}
	free(c);
}

const struct pr_capture *
pr__txn_captured(const struct pr_txn *txn)
{
	return txn->cap;
}

/* The guard key's index in the root's list, added with the revision this
 * store has applied; -1 when not capturing or out of memory (err set). */
static int
guard_touch(struct pr_txn *txn, const uint8_t *gkey, size_t glen)
{
	struct pr_capture *r = txn->root;
	struct pr_store_guard *g;
	uint8_t mkey[1 + sizeof g->key];
	uint64_t rev = 0;
	int rc;

	if (txn->cap == NULL || glen > sizeof g->key) {
		return -1;
	}
	for (size_t i = 0; i < r->nguards; i++) {
		if (r->guards[i].key_len == glen && memcmp(r->guards[i].key, gkey, glen) == 0) {
			return (int)i;
		}
	}
	if (r->nguards == r->cap_guards) {
		size_t cap = r->cap_guards ? r->cap_guards * 2 : 8;

		g = realloc(r->guards, cap * sizeof *g);
		if (g == NULL) {
			r->err = -ENOMEM;
			return -1;
		}
		r->guards = g;
		r->cap_guards = cap;
	}
	mkey[0] = 'G';
	memcpy(mkey + 1, gkey, glen);
	if ((rc = pr__store_meta_get_u64(txn, mkey, 1 + glen, &rev)) != 0) {
		r->err = rc;
		return -1;
	}
	g = &r->guards[r->nguards];
	memcpy(g->key, gkey, glen);
	g->key_len = glen;
	g->rev = (int64_t)rev;
	return (int)r->nguards++;
}

int
pr__store_cap_source(struct pr_txn *txn, const char *name)
{
	uint8_t k[1 + PR_NAME_MAX];
	size_t n = strnlen(name, PR_NAME_MAX);

	if (txn->cap == NULL) {
		return -1;
	}
	k[0] = 'g';
	memcpy(k + 1, name, n);
	return guard_touch(txn, k, 1 + n);
}

int
pr__store_cap_session(struct pr_txn *txn, const char *session)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	uint8_t k[3];

	if (txn->cap == NULL || session[0] == '\0') {
		return -1;
	}
	for (const char *s = session; *s != '\0'; s++) {
		h = (h ^ (uint8_t)*s) * 16777619u;
	}
	h %= PR_SESSION_BUCKETS;
	k[0] = 'h';
	k[1] = (uint8_t)(h >> 8);
	k[2] = (uint8_t)h;
	return guard_touch(txn, k, sizeof k);
}

int
pr__store_cap_record(struct pr_txn *txn, char kind, const char *name, const void *rest,
    size_t rest_len, const void *val, size_t val_len, const int guards[PR_OP_GUARDS])
{
	struct pr_capture *c = txn->cap;
	/* The name, and the NUL that ends it unless the key is a source's. */
	size_t n = name != NULL ? strnlen(name, PR_NAME_MAX) + (kind != 's') : 0;
	struct pr_store_op *op;
	uint8_t *b;

	if (c == NULL) {
		return 0;
	}
	if (c->nops == c->cap_ops) {
		size_t cap = c->cap_ops ? c->cap_ops * 2 : 8;

		op = realloc(c->ops, cap * sizeof *op);
		if (op == NULL) {
			goto nomem;
		}
		c->ops = op;
		c->cap_ops = cap;
	}
	/* One allocation: the key, then the value. */
	b = malloc(1 + n + rest_len + val_len + 1);
	if (b == NULL) {
		goto nomem;
	}
	op = &c->ops[c->nops++];
	memset(op, 0, sizeof *op);
	b[0] = (uint8_t)kind;
	if (n > 0) {
		memcpy(b + 1, name, n - (kind != 's'));
		if (kind != 's') {
			b[n] = '\0';
		}
	}
	if (rest_len > 0) {
		memcpy(b + 1 + n, rest, rest_len);
	}
	op->key = b;
	op->key_len = 1 + n + rest_len;
	if (val != NULL) {
		op->val = b + op->key_len;
		op->val_len = val_len;
		if (val_len > 0) {
			memcpy(op->val, val, val_len);
		}
	}
	op->create_only = kind == 'i' && val != NULL;
	for (int i = 0; i < PR_OP_GUARDS; i++) {
		op->guard[i] = guards != NULL ? guards[i] : -1;
	}
	return 0;
nomem:
	txn->root->err = -ENOMEM;
	return -ENOMEM;
}

/* ---- applying ---- */

int
pr__store_applied_get(struct pr_txn *txn, int64_t *rev)
{
	uint64_t v = 0;
	int rc = pr__store_meta_get_u64(txn, key_applied, sizeof key_applied - 1, &v);

	*rev = (int64_t)v;
	return rc;
}

int
pr__store_applied_put(struct pr_txn *txn, int64_t rev)
{
	return pr__store_meta_put_u64(txn, key_applied, sizeof key_applied - 1, (uint64_t)rev);
}

/* A local value's meta key: "local:" and its name. */
static size_t
local_key(char key[64], const char *name)
{
	return (size_t)snprintf(key, 64, "local:%s", name);
}

int
pr__store_local_get(struct pr_store *st, const char *name, uint64_t *v)
{
	struct pr_txn *txn;
	char key[64];
	int rc = pr__txn_begin(st, 0, &txn);

	*v = 0;
	if (rc == 0) {
		rc = pr__store_meta_get_u64(txn, key, local_key(key, name), v);
		pr__txn_abort(txn);
	}
	return rc;
}

int
pr__store_local_put(struct pr_store *st, const char *name, uint64_t v)
{
	struct pr_txn *txn;
	char key[64];
	int rc = pr__txn_begin(st, 1, &txn);

	if (rc == 0) {
		rc = pr__store_meta_put_u64(txn, key, local_key(key, name), v);
		rc = rc == 0 ? pr__txn_commit(txn) : (pr__txn_abort(txn), rc);
	}
	if (rc == 0) {
		rc = pr__store_sync(st);
	}
	return rc;
}

/* Split a 'p', 't' or 'e' key after its name: the source (from this
 * store) and the rest. PR_ESTORE for a key that is not such a key. */
static int
split_named(struct pr_txn *txn, const uint8_t *key, size_t len, struct pr_source *src,
    const uint8_t **rest, size_t *rest_len)
{
	const uint8_t *nul = memchr(key + 1, '\0', len - 1);
	char name[PR_NAME_MAX + 1];
	size_t n;
	int rc;

	if (nul == NULL || (n = (size_t)(nul - key - 1)) == 0 || n > PR_NAME_MAX) {
		return PR_ESTORE;
	}
	memcpy(name, key + 1, n);
	name[n] = '\0';
	if ((rc = pr__store_source_get(txn, name, src)) != 0) {
		/* A record of a source this store does not have: etcd holds a
		 * record without its source, which the agent never writes. */
		pr_error("store: replicated record of unknown source %s", name);
		return rc == PR_ENOSOURCE ? PR_ESTORE : rc;
	}
	*rest = nul + 1;
	*rest_len = len - n - 2;
	return 0;
}

int
pr__store_apply(struct pr_txn *txn, const uint8_t *key, size_t len, const uint8_t *val,
    size_t val_len, int64_t mod_rev, struct pr_applied *out)
{
	struct pr_source src;
	const uint8_t *rest;
	size_t rest_len;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (len < 2) {
		return PR_ESTORE;
	}
	out->kind = (char)key[0];
	out->deleted = val == NULL;
	switch (key[0]) {
	case 'g':
	case 'h': {
		uint8_t mkey[2 + PR_NAME_MAX];

		if (len > sizeof mkey - 1) {
			return PR_ESTORE;
		}
		if (key[0] == 'g') {
			memcpy(out->source, key + 1, len - 1);
		}
		mkey[0] = 'G';
		memcpy(mkey + 1, key, len);
		return pr__store_meta_put_u64(
		    txn, mkey, 1 + len, val != NULL ? (uint64_t)mod_rev : 0);
	}
	case 's':
		if (len - 1 > PR_NAME_MAX) {
			return PR_ESTORE;
		}
		memcpy(out->source, key + 1, len - 1);
		if (val == NULL) {
			return 0; /* sources are never removed */
		}
		return pr__store_source_apply(txn, key + 1, len - 1, val, val_len);
	case 'p':
		if ((rc = split_named(txn, key, len, &src, &rest, &rest_len)) != 0) {
			return rc;
		}
		memcpy(out->source, src.name, sizeof out->source);
		return pr__store_provider_apply(txn, &src, rest, rest_len, val, val_len);
	case 't':
		if ((rc = split_named(txn, key, len, &src, &rest, &rest_len)) != 0) {
			return rc;
		}
		memcpy(out->source, src.name, sizeof out->source);
		return pr__store_partition_apply(
		    txn, &src, rest, rest_len, val, val_len, &out->part);
	case 'e':
		if ((rc = split_named(txn, key, len, &src, &rest, &rest_len)) != 0
		    || rest_len != 8) {
			return rc != 0 ? rc : PR_ESTORE;
		}
		memcpy(out->source, src.name, sizeof out->source);
		return pr__store_event_apply(txn, &src, be64_get(rest), val, val_len, &out->ev);
	case 'k':
		return pr__store_token_apply(txn, key + 1, len - 1, val, val_len);
	case 'i':
		return pr__store_idem_apply(txn, key + 1, len - 1, val, val_len);
	default:
		out->kind = 0; /* not a record: another kind of key under the prefix */
		return 0;
	}
}

int
pr__store_clear(struct pr_txn *txn)
{
	const struct pr_store *st = txn->st;
	MDB_dbi dbis[] = { st->meta, st->sources, st->providers, st->partitions, st->overlap,
		st->runion, st->events, st->idem, st->idem_time, st->leases, st->sessions,
		st->tombstones, st->tokens, st->runs };

	assert(txn->child == NULL && txn->cap == NULL);
	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
		int rc = mdb_drop(txn->txn, dbis[i], 0);

		if (rc != 0) {
			return pr__store_lmdb_err(rc, "clear", PR_ESTORE);
		}
	}
	return pr__store_xindex_mark(txn);
}
