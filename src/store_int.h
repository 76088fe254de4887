/* SPDX-License-Identifier: MIT */
/*
 * Private to the store (store.c, store_partitions.c, store_crossindex.c,
 * store_events.c): the structs behind the opaque handles, key and record encoding helpers, and the
 * one place LMDB return codes are translated. Nothing outside the store includes this.
 *
 * Encoding rules, shared by every DBI:
 * - integers in keys are big-endian so that memcmp order is numeric order;
 * - a time t is stored as the big-endian of (uint64_t)t ^ 2^63, which maps
 *   INT64_MIN..INT64_MAX monotonically onto 0..UINT64_MAX, so negative times
 *   sort before positive ones;
 * - records are written field by field (fixed-width big-endian integers,
 *   strings as a 16-bit length and the bytes), never as memcpy'd structs,
 *   and open with a format version byte so a later format can be told apart.
 */
#ifndef PR_STORE_INT_H
#define PR_STORE_INT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lmdb.h>

#include "store.h"

#define PR_REC_V1 1 /* record format version byte */

/* The two halves of the overlap index, and of the class masks. */
#define PR_HALF_BLOCKED 0 /* pending, locked, failed */
#define PR_HALF_READY   1

struct pr_store {
	MDB_env *env;
	uint64_t epoch;     /* the last pr__store_next_epoch: stamped on events */
	MDB_dbi meta;       /* "epoch", "next_source_id", 'M'|src|half -> class mask */
	MDB_dbi sources;    /* name -> source record */
	MDB_dbi providers;  /* src | name -> provider record */
	MDB_dbi partitions; /* src | start | end | provider -> partition record */
	MDB_dbi overlap;    /* src | half | class | start | end | provider -> "" */
	MDB_dbi runion;     /* src | start -> end: coalesced ready ranges */
	MDB_dbi events;     /* src | seq -> event record */
	MDB_dbi idem;       /* request_id -> created_at | command | reply */
	MDB_dbi idem_time;  /* created_at | request_id -> "" */
	MDB_dbi leases;     /* expires_at | partkey -> source name (store_crossindex.c) */
	MDB_dbi sessions;   /* len | session | partkey -> source name */
	MDB_dbi tombstones; /* since | partkey -> source name */
	MDB_dbi tokens;     /* digest -> source | provider */
	MDB_dbi runs;       /* src | state | provider -> blocker runs (store_runs.c) */
};

/* A partitions key: src | start | end | provider (store_partitions.c). */
#define PR_PART_KEY_MAX (24 + PR_NAME_MAX)

struct pr_txn {
	struct pr_store *st;
	MDB_txn *txn;
	struct pr_txn *parent; /* NULL for a top-level transaction */
	struct pr_txn *child;  /* the open nested transaction, if any */
	int write;
	struct pr_capture *cap;  /* this level's record; NULL: not capturing */
	struct pr_capture *root; /* the top level's (its guards) */
};

/*
 * Capturing (store_capture.c). cap_nested starts the child's record when
 * the parent captures; cap_end hands a committed child's records to its
 * parent, or drops them, and frees the level's record. cap_source and
 * cap_session touch a guard (read) and return its index for an op, -1 when
 * not capturing. cap_record records a record written (val) or removed
 * (val NULL) under kind, name (NULL: none) and rest; a no-op when not
 * capturing. The *_apply functions write a replicated record with its
 * indexes (store.c, store_partitions.c, store_events.c).
 */
int pr__store_cap_nested(struct pr_txn *parent, struct pr_txn *child);
void pr__store_cap_end(struct pr_txn *txn, int commit);
int pr__store_cap_source(struct pr_txn *txn, const char *name);
int pr__store_cap_session(struct pr_txn *txn, const char *session);
int pr__store_cap_record(struct pr_txn *txn, char kind, const char *name, const void *rest,
    size_t rest_len, const void *val, size_t val_len, const int guards[PR_OP_GUARDS]);
int pr__store_source_apply(
    struct pr_txn *txn, const uint8_t *name, size_t len, const uint8_t *val, size_t val_len);
int pr__store_provider_apply(struct pr_txn *txn, const struct pr_source *src, const uint8_t *name,
    size_t len, const uint8_t *val, size_t val_len);
int pr__store_partition_apply(struct pr_txn *txn, const struct pr_source *src, const uint8_t *rest,
    size_t len, const uint8_t *val, size_t val_len, struct pr_partition *out);
int pr__store_event_apply(struct pr_txn *txn, const struct pr_source *src, uint64_t seq,
    const uint8_t *val, size_t val_len, struct pr_event *out);
int pr__store_token_apply(
    struct pr_txn *txn, const uint8_t *digest, size_t len, const uint8_t *val, size_t val_len);
int pr__store_idem_apply(
    struct pr_txn *txn, const uint8_t *key, size_t len, const uint8_t *val, size_t val_len);
/* Mark the cross-source indexes as built (an empty store's are). */
int pr__store_xindex_mark(struct pr_txn *txn);

/*
 * Translate an LMDB return code where it enters: 0 stays 0, MDB_NOTFOUND
 * becomes notfound (the record-specific PR_ENO*), MDB_MAP_FULL and a full
 * disk (ENOSPC, EDQUOT at commit) become PR_EMAPFULL, anything else PR_ESTORE; failures other than
 * "not found" are logged with what was being done and LMDB's own message.
 */
int pr__store_lmdb_err(int rc, const char *what, int notfound);

/* A u64 in meta under key[0..klen): get reads a missing one as 0 (store.c). */
int pr__store_meta_get_u64(struct pr_txn *txn, const void *key, size_t klen, uint64_t *v);
int pr__store_meta_put_u64(struct pr_txn *txn, const void *key, size_t klen, uint64_t v);

/*
 * The length-class mask of one half of a source's overlap index: bit c set
 * when a partition of class c was ever indexed there. Bits are never cleared
 * (a stale bit costs one empty seek). A missing mask reads as 0.
 */
int pr__store_mask_get(struct pr_txn *txn, uint64_t src_id, int half, uint64_t *mask);
int pr__store_mask_add(struct pr_txn *txn, uint64_t src_id, int half, unsigned cls);

/*
 * Cursors are a tag letter and the lowercase hex of the last key returned
 * (without the source id, which the caller passes again). encode writes a
 * NUL-terminated string into out (PR_CURSOR_MAX bytes). decode accepts NULL
 * or "" as "from the first" (*len = 0) and returns PR_ECURSOR for anything
 * that is not tag + even-length hex of minlen..maxlen bytes.
 */
/*
 * Read the partition stored under partitions key k (src | start | end |
 * provider) of src (only src->name is used, for out->source).
 * PR_ENOPARTITION when absent, PR_ESTORE when corrupt.
 */
int pr__store_part_read(
    struct pr_txn *txn, const struct pr_source *src, MDB_val *k, struct pr_partition *out);

/*
 * The cross-source indexes of store_crossindex.c (leases, sessions, tombstones)
 * after a partition of src changed from old to new (either NULL: absent).
 * Called by pr__store_partition_put/_del after the record itself is written.
 */
int pr__store_xindex_update(struct pr_txn *txn, const struct pr_source *src,
    const struct pr_partition *old, const struct pr_partition *new_p);
/*
 * The blocker runs of store_runs.c after a partition of src changed from old
 * to new (either NULL: absent), called likewise after the record is written.
 */
int pr__store_runs_update(struct pr_txn *txn, const struct pr_source *src,
    const struct pr_partition *old, const struct pr_partition *new_p);
/* Rebuild those indexes and the runs from the partitions (a store from
 * before they existed). */
int pr__store_xindex_rebuild(struct pr_txn *txn);

void pr__store_cursor_encode(char tag, const uint8_t *key, size_t len, char out[PR_CURSOR_MAX]);
int pr__store_cursor_decode(
    char tag, const char *cursor, size_t minlen, size_t maxlen, uint8_t *key, size_t *len);

static inline void
be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t
be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v = v << 8 | p[i];
	}
	return v;
}

/* Order-preserving unsigned image of a time. */
static inline uint64_t
time_enc(int64_t t)
{
	return (uint64_t)t ^ UINT64_C(0x8000000000000000);
}

static inline int64_t
time_dec(uint64_t u)
{
	u ^= UINT64_C(0x8000000000000000);
	/* Two's complement reinterpretation without implementation-defined casts. */
	return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static inline size_t
part_key(uint8_t key[PR_PART_KEY_MAX], uint64_t src_id, struct pr_range r, const char *provider)
{
	size_t n = strnlen(provider, PR_NAME_MAX);

	be64_put(key, src_id);
	be64_put(key + 8, time_enc(r.start));
	be64_put(key + 16, time_enc(r.end));
	memcpy(key + 24, provider, n);
	return 24 + n;
}

/* A record being written into caller storage; overflow is a programmer error. */
struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

/* A record being read; any short read sets bad instead of reading past len. */
struct rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	int bad;
};

static inline void
wb_bytes(struct wbuf *w, const void *p, size_t n)
{
	assert(w->len + n <= w->cap);
	if (n > 0) {
		memcpy(w->p + w->len, p, n);
	}
	w->len += n;
}

static inline void
wb_u8(struct wbuf *w, uint8_t v)
{
	wb_bytes(w, &v, 1);
}

static inline void
wb_u64(struct wbuf *w, uint64_t v)
{
	uint8_t b[8];

	be64_put(b, v);
	wb_bytes(w, b, 8);
}

/* A string field of at most cap bytes (the struct field's size). */
static inline void
wb_str(struct wbuf *w, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	uint8_t b[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	wb_bytes(w, b, 2);
	wb_bytes(w, s, n);
}

static inline void
rb_bytes(struct rbuf *r, void *out, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = 1;
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p + r->off, n);
	r->off += n;
}

static inline uint8_t
rb_u8(struct rbuf *r)
{
	uint8_t v;

	rb_bytes(r, &v, 1);
	return v;
}

static inline uint64_t
rb_u64(struct rbuf *r)
{
	uint8_t b[8];

	rb_bytes(r, b, 8);
	return be64_get(b);
}

/* Into dst of dstsize bytes, NUL-terminated; a string too long sets bad. */
static inline void
rb_str(struct rbuf *r, char *dst, size_t dstsize)
{
	uint8_t b[2];
	size_t n;

	rb_bytes(r, b, 2);
	n = (size_t)b[0] << 8 | b[1];
	if (r->bad || n >= dstsize || r->len - r->off < n) {
		r->bad = 1;
		dst[0] = '\0';
		return;
	}
	memcpy(dst, r->p + r->off, n);
	dst[n] = '\0';
	r->off += n;
}

#endif
