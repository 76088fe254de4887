/* SPDX-License-Identifier: MIT */
/*
 * Partitions and the two indexes that make readiness queries cheap.
 *
 * Keys (src = source id, big-endian; times in the order-preserving encoding
 * of store_int.h; "class" = floor(log2(end - start)), 0..63):
 *   partitions  src | start | end | provider               -> record
 *   overlap     src | half | class | start | end | provider -> ""
 *   runion      src | start                                -> end
 * half is 1 for ready partitions and 0 for pending, locked and failed ones;
 * a partition in state "deleted" is in neither half. put and del also keep
 * the cross-source lease, session and tombstone indexes (store_crossindex.c).
 *
 * Overlap index. Within one class every length lies in [2^c, 2^(c+1)), so a
 * partition of class c that overlaps [a, b) starts in (a - 2^(c+1), b): one
 * range scan per class present finds them all, O(classes * log n + k). The
 * classes present are a 64-bit mask per source and half in `meta`; bits are
 * only ever set (clearing one would need a count per class, and a stale bit
 * costs one empty seek). Rejected: an interval tree (no such structure on top
 * of a B+tree without rewriting nodes on every put) and a plain scan from the
 * source's first partition (O(n) for a window at the end of a long history).
 *
 * Ready union. runion holds the union of the ranges of all ready partitions
 * as disjoint, non-touching ranges. Invariant after every put or delete:
 *   runion(src) == coalesce({p.range : p ready})
 * - A partition becoming ready adds [s, e): the range with the greatest start
 *   <= s is merged if it reaches s, then every range starting in [s, ne] is
 *   merged while ne grows; then the merged range is written. O(log n + k).
 * - A partition ceasing to be ready (state change or delete) removes [s, e):
 *   the union ranges overlapping [s, e) are deleted and their parts outside
 *   [s, e) written back; then every partition still ready that overlaps
 *   [s, e), found through the ready half of the overlap index (this
 *   partition's own entry already updated), is added back clipped to [s, e).
 *   O(classes * log n + k log n), k the ready partitions overlapping [s, e).
 * A readiness query then reads only runion: the predecessor of the window's
 * start, then forward while range.start < want.end. Rejected: recomputing
 * the union from partitions per query, which is O(history).
 */
#include "store_int.h"

#include <assert.h>
#include <string.h>

#include "log.h"

#define PART_KEY_MAX PR_PART_KEY_MAX
#define OV_KEY_MAX   (26 + PR_NAME_MAX)
#define PART_REC_MAX 1536

static int
name_ok(const char *name)
{
	size_t n = strnlen(name, PR_NAME_MAX + 1);

	return n >= 1 && n <= PR_NAME_MAX;
}

static unsigned
length_class(struct pr_range r)
{
	/* end > start, so the true length fits in uint64_t. */
	uint64_t len = (uint64_t)r.end - (uint64_t)r.start;

	return 63u - (unsigned)__builtin_clzll(len);
}

/* -1: not indexed (deleted); otherwise the overlap half of a state. */
static int
state_half(enum pr_pstate s)
{
	switch (s) {
	case PR_READY:
		return PR_HALF_READY;
	case PR_PENDING:
	case PR_LOCKED:
	case PR_FAILED:
		return PR_HALF_BLOCKED;
	case PR_DELETED:
		break;
	}
	return -1;
}

static size_t
ov_key(uint8_t key[OV_KEY_MAX], uint64_t src_id, int half, struct pr_range r, const char *provider)
{
	size_t n = strlen(provider);

	be64_put(key, src_id);
	key[8] = (uint8_t)half;
	key[9] = (uint8_t)length_class(r);
	be64_put(key + 10, time_enc(r.start));
	be64_put(key + 18, time_enc(r.end));
	memcpy(key + 26, provider, n);
	return 26 + n;
}

static void
part_encode(const struct pr_partition *p, struct wbuf *w)
{
	wb_u8(w, PR_REC_V1);
	wb_u8(w, (uint8_t)p->state);
	wb_u64(w, p->version);
	wb_u64(w, p->fence);
	wb_u64(w, (uint64_t)p->since);
	wb_u64(w, (uint64_t)p->expires_at);
	wb_u64(w, (uint64_t)p->updated_at);
	wb_u64(w, p->seq);
	wb_str(w, p->session, sizeof p->session);
	wb_str(w, p->reason, sizeof p->reason);
	wb_str(w, p->metadata, sizeof p->metadata);
}

/* k is a partitions key (src | start | end | provider). */
static int
part_decode(
    const struct pr_source *src, const MDB_val *k, const MDB_val *d, struct pr_partition *out)
{
	const uint8_t *kp = k->mv_data;
	struct rbuf r = { d->mv_data, d->mv_size, 0, 0 };

	memset(out, 0, sizeof *out);
	if (k->mv_size <= 24 || k->mv_size > PART_KEY_MAX || rb_u8(&r) != PR_REC_V1) {
		goto bad;
	}
	memcpy(out->source, src->name, strnlen(src->name, PR_NAME_MAX));
	memcpy(out->provider, kp + 24, k->mv_size - 24);
	out->range.start = time_dec(be64_get(kp + 8));
	out->range.end = time_dec(be64_get(kp + 16));
	out->state = (enum pr_pstate)rb_u8(&r);
	out->version = rb_u64(&r);
	out->fence = rb_u64(&r);
	out->since = (int64_t)rb_u64(&r);
	out->expires_at = (int64_t)rb_u64(&r);
	out->updated_at = (int64_t)rb_u64(&r);
	out->seq = rb_u64(&r);
	rb_str(&r, out->session, sizeof out->session);
	rb_str(&r, out->reason, sizeof out->reason);
	rb_str(&r, out->metadata, sizeof out->metadata);
	if (r.bad || out->state > PR_DELETED) {
		goto bad;
	}
	return 0;
bad:
	pr_error("store: corrupt partition record");
	return PR_ESTORE;
}

/* ---- ready union ---- */

static int
cur_err(MDB_cursor *cur, int rc, const char *what)
{
	mdb_cursor_close(cur);
	return pr__store_lmdb_err(rc, what, PR_ESTORE);
}

/*
 * Position cur on the union range of src with the greatest start <= x.
 * Returns 0 with *s, *e set, MDB_NOTFOUND when there is none, or an LMDB code.
 */
static int
union_pred(MDB_cursor *cur, uint64_t src_id, uint64_t x, uint64_t *s, uint64_t *e)
{
	uint8_t key[16];
	MDB_val k = { sizeof key, key }, d;
	int rc;

	be64_put(key, src_id);
	be64_put(key + 8, x);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == 16 && be64_get(k.mv_data) == src_id
	    && be64_get((uint8_t *)k.mv_data + 8) == x) {
		goto found;
	}
	if (rc == MDB_NOTFOUND) {
		rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
	} else if (rc == 0) {
		rc = mdb_cursor_get(cur, &k, &d, MDB_PREV);
	}
	if (rc != 0) {
		return rc;
	}
	if (k.mv_size != 16 || be64_get(k.mv_data) != src_id) {
		return MDB_NOTFOUND;
	}
found:
	if (d.mv_size != 8) {
		pr_error("store: corrupt ready range");
		return MDB_CORRUPTED;
	}
	*s = be64_get((uint8_t *)k.mv_data + 8);
	*e = be64_get(d.mv_data);
	return 0;
}

static int
union_write(struct pr_txn *txn, uint64_t src_id, uint64_t s, uint64_t e)
{
	uint8_t key[16], val[8];
	MDB_val k = { sizeof key, key }, d = { sizeof val, val };

	be64_put(key, src_id);
	be64_put(key + 8, s);
	be64_put(val, e);
	return pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->runion, &k, &d, 0), "ready union put", PR_ESTORE);
}

/* Add [s, e) (encoded times) to the union, merging what it overlaps or touches. */
static int
union_add(struct pr_txn *txn, uint64_t src_id, uint64_t s, uint64_t e)
{
	uint8_t key[16];
	MDB_cursor *cur;
	MDB_val k, d;
	uint64_t ps, pe, ns = s, ne = e;
	int rc;

	if ((rc = mdb_cursor_open(txn->txn, txn->st->runion, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "ready union", PR_ESTORE);
	}
	rc = union_pred(cur, src_id, s, &ps, &pe);
	if (rc == 0 && pe >= s) {
		ns = ps;
		ne = pe > ne ? pe : ne;
		rc = mdb_cursor_del(cur, 0);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return cur_err(cur, rc, "ready union add");
	}
	/* Every later range that starts at or before the (growing) end joins. */
	be64_put(key, src_id);
	be64_put(key + 8, s);
	k = (MDB_val) { sizeof key, key };
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		uint64_t ks, ke;

		if (k.mv_size != 16 || be64_get(k.mv_data) != src_id) {
			break;
		}
		ks = be64_get((uint8_t *)k.mv_data + 8);
		if (ks > ne) {
			break;
		}
		ke = be64_get(d.mv_data);
		ne = ke > ne ? ke : ne;
		/* After mdb_cursor_del, MDB_NEXT yields the entry that followed. */
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return cur_err(cur, rc, "ready union add");
	}
	mdb_cursor_close(cur);
	return union_write(txn, src_id, ns, ne);
}

/* Remove [s, e) from the union: cut every range it overlaps. */
static int
union_cut(struct pr_txn *txn, uint64_t src_id, uint64_t s, uint64_t e)
{
	uint8_t key[16];
	MDB_cursor *cur;
	MDB_val k, d;
	uint64_t ps, pe;
	uint64_t left_s = 0, right_e = 0;
	int left = 0, right = 0;
	int rc;

	if ((rc = mdb_cursor_open(txn->txn, txn->st->runion, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "ready union", PR_ESTORE);
	}
	rc = union_pred(cur, src_id, s, &ps, &pe);
	if (rc == 0 && pe > s) {
		if (ps < s) {
			left = 1;
			left_s = ps;
		}
		if (pe > e) {
			right = 1;
			right_e = pe;
		}
		rc = mdb_cursor_del(cur, 0);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return cur_err(cur, rc, "ready union cut");
	}
	be64_put(key, src_id);
	be64_put(key + 8, s);
	k = (MDB_val) { sizeof key, key };
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		uint64_t ke;

		if (k.mv_size != 16 || be64_get(k.mv_data) != src_id
		    || be64_get((uint8_t *)k.mv_data + 8) >= e) {
			break;
		}
		ke = be64_get(d.mv_data);
		if (ke > e) {
			right = 1;
			right_e = ke;
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return cur_err(cur, rc, "ready union cut");
	}
	mdb_cursor_close(cur);
	if (left && (rc = union_write(txn, src_id, left_s, s)) != 0) {
		return rc;
	}
	if (right && (rc = union_write(txn, src_id, e, right_e)) != 0) {
		return rc;
	}
	return 0;
}

/* Lowest encoded start a class-c range overlapping from x could have. */
static uint64_t
class_floor(uint64_t x, unsigned c)
{
	uint64_t span;

	if (c >= 63) {
		return 0;
	}
	span = UINT64_C(1) << (c + 1);
	return x > span ? x - span : 0;
}

/*
 * Call fn for every overlap entry of src in half that overlaps [s, e)
 * (encoded times), with the entry's key. fn's non-zero result stops the
 * scan and is returned.
 */
static int
overlap_each(struct pr_txn *txn, uint64_t src_id, int half, uint64_t s, uint64_t e,
    int (*fn)(struct pr_txn *txn, const uint8_t *key, size_t len, void *arg), void *arg)
{
	uint64_t mask;
	MDB_cursor *cur;
	int rc, r = 0;

	if ((rc = pr__store_mask_get(txn, src_id, half, &mask)) != 0 || mask == 0) {
		return rc;
	}
	if ((rc = mdb_cursor_open(txn->txn, txn->st->overlap, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "overlap scan", PR_ESTORE);
	}
	for (unsigned c = 0; c < 64 && r == 0; c++) {
		uint8_t key[18];
		MDB_val k = { sizeof key, key }, d;

		if (!(mask & UINT64_C(1) << c)) {
			continue;
		}
		be64_put(key, src_id);
		key[8] = (uint8_t)half;
		key[9] = (uint8_t)c;
		be64_put(key + 10, class_floor(s, c));
		for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
			const uint8_t *kp = k.mv_data;

			if (k.mv_size <= 26 || memcmp(kp, key, 10) != 0 || be64_get(kp + 10) >= e) {
				break;
			}
			if (be64_get(kp + 18) > s && (r = fn(txn, kp, k.mv_size, arg)) != 0) {
				break;
			}
		}
		if (rc != 0 && rc != MDB_NOTFOUND) {
			return cur_err(cur, rc, "overlap scan");
		}
	}
	mdb_cursor_close(cur);
	return r;
}

struct readd {
	uint64_t s, e;
};

static int
readd_one(struct pr_txn *txn, const uint8_t *key, size_t len, void *arg)
{
	const struct readd *w = arg;
	uint64_t ks = be64_get(key + 10), ke = be64_get(key + 18);

	(void)len;
	return union_add(txn, be64_get(key), ks > w->s ? ks : w->s, ke < w->e ? ke : w->e);
}

/* [s, e) stopped being covered by one ready partition: recompute it. */
static int
union_remove(struct pr_txn *txn, uint64_t src_id, uint64_t s, uint64_t e)
{
	struct readd w = { s, e };
	int rc;

	if ((rc = union_cut(txn, src_id, s, e)) != 0) {
		return rc;
	}
	return overlap_each(txn, src_id, PR_HALF_READY, s, e, readd_one, &w);
}

/* ---- partitions ---- */

int
pr__store_part_read(
    struct pr_txn *txn, const struct pr_source *src, MDB_val *k, struct pr_partition *out)
{
	MDB_val d;
	int rc = mdb_get(txn->txn, txn->st->partitions, k, &d);

	if (rc != 0) {
		return pr__store_lmdb_err(rc, "partition get", PR_ENOPARTITION);
	}
	return part_decode(src, k, &d, out);
}

int
pr__store_partition_get(struct pr_txn *txn, const struct pr_source *src, const char *provider,
    struct pr_range r, struct pr_partition *out)
{
	uint8_t key[PART_KEY_MAX];
	MDB_val k;

	assert(txn->child == NULL);
	if (!name_ok(provider) || src->id == 0 || r.start >= r.end) {
		return PR_ENOPARTITION;
	}
	k.mv_size = part_key(key, src->id, r, provider);
	k.mv_data = key;
	return pr__store_part_read(txn, src, &k, out);
}

/* Move the partition's overlap entry from half old_h to new_h (-1 = none). */
static int
overlap_move(struct pr_txn *txn, uint64_t src_id, struct pr_range r, const char *provider,
    int old_h, int new_h)
{
	uint8_t key[OV_KEY_MAX];
	MDB_val k, empty = { 0, NULL };
	int rc;

	if (old_h == new_h) {
		return 0;
	}
	k.mv_data = key;
	if (old_h >= 0) {
		k.mv_size = ov_key(key, src_id, old_h, r, provider);
		rc = mdb_del(txn->txn, txn->st->overlap, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			return pr__store_lmdb_err(rc, "overlap del", PR_ESTORE);
		}
	}
	if (new_h >= 0) {
		k.mv_size = ov_key(key, src_id, new_h, r, provider);
		rc = mdb_put(txn->txn, txn->st->overlap, &k, &empty, 0);
		if (rc != 0) {
			return pr__store_lmdb_err(rc, "overlap put", PR_ESTORE);
		}
		return pr__store_mask_add(txn, src_id, new_h, length_class(r));
	}
	return 0;
}

/* Record a partition written (val) or removed for replication: under its
 * source's guard and those of the sessions it was and is locked under. */
static int
capture(struct pr_txn *txn, const struct pr_source *src, const MDB_val *k,
    const struct pr_partition *old, const struct pr_partition *new_p, const uint8_t *val,
    size_t val_len)
{
	int g[PR_OP_GUARDS];

	if (txn->cap == NULL) {
		return 0;
	}
	g[0] = pr__store_cap_source(txn, src->name);
	g[1] = old != NULL ? pr__store_cap_session(txn, old->session) : -1;
	g[2] = new_p != NULL ? pr__store_cap_session(txn, new_p->session) : -1;
	return pr__store_cap_record(
	    txn, 't', src->name, (const uint8_t *)k->mv_data + 8, k->mv_size - 8, val, val_len, g);
}

int
pr__store_partition_put(
    struct pr_txn *txn, const struct pr_source *src, const struct pr_partition *p)
{
	uint8_t key[PART_KEY_MAX];
	uint8_t buf[PART_REC_MAX];
	struct wbuf w = { buf, 0, sizeof buf };
	struct pr_partition old;
	MDB_val k, d;
	int have_old, old_h, new_h;
	int rc;

	assert(txn->child == NULL);
	if (src->id == 0) {
		return PR_ENOSOURCE;
	}
	if (!name_ok(p->provider)) {
		return PR_ENAME;
	}
	if (p->range.start >= p->range.end) {
		return PR_EINTERVAL;
	}
	if ((unsigned)p->state > PR_DELETED) {
		return PR_EFIELD;
	}
	k.mv_size = part_key(key, src->id, p->range, p->provider);
	k.mv_data = key;
	rc = pr__store_part_read(txn, src, &k, &old);
	if (rc != 0 && rc != PR_ENOPARTITION) {
		return rc;
	}
	have_old = rc == 0;
	old_h = have_old ? state_half(old.state) : -1;
	new_h = state_half(p->state);
	part_encode(p, &w);
	d.mv_size = w.len;
	d.mv_data = buf;
	if ((rc = mdb_put(txn->txn, txn->st->partitions, &k, &d, 0)) != 0) {
		return pr__store_lmdb_err(rc, "partition put", PR_ESTORE);
	}
	if ((rc = capture(txn, src, &k, have_old ? &old : NULL, p, buf, w.len)) != 0) {
		return rc;
	}
	if ((rc = pr__store_xindex_update(txn, src, have_old ? &old : NULL, p)) != 0
	    || (rc = pr__store_runs_update(txn, src, have_old ? &old : NULL, p)) != 0) {
		return rc;
	}
	/* The overlap entry first: union_remove finds still-ready partitions there. */
	if ((rc = overlap_move(txn, src->id, p->range, p->provider, old_h, new_h)) != 0) {
		return rc;
	}
	if (new_h == PR_HALF_READY && old_h != PR_HALF_READY) {
		return union_add(txn, src->id, time_enc(p->range.start), time_enc(p->range.end));
	}
	if (old_h == PR_HALF_READY && new_h != PR_HALF_READY) {
		return union_remove(txn, src->id, time_enc(p->range.start), time_enc(p->range.end));
	}
	return 0;
}

int
pr__store_partition_del(
    struct pr_txn *txn, const struct pr_source *src, const char *provider, struct pr_range r)
{
	uint8_t key[PART_KEY_MAX];
	struct pr_partition old;
	MDB_val k;
	int old_h;
	int rc;

	assert(txn->child == NULL);
	if (!name_ok(provider) || src->id == 0 || r.start >= r.end) {
		return PR_ENOPARTITION;
	}
	k.mv_size = part_key(key, src->id, r, provider);
	k.mv_data = key;
	if ((rc = pr__store_part_read(txn, src, &k, &old)) != 0) {
		return rc;
	}
	if ((rc = mdb_del(txn->txn, txn->st->partitions, &k, NULL)) != 0) {
		return pr__store_lmdb_err(rc, "partition del", PR_ESTORE);
	}
	if ((rc = capture(txn, src, &k, &old, NULL, NULL, 0)) != 0) {
		return rc;
	}
	if ((rc = pr__store_xindex_update(txn, src, &old, NULL)) != 0
	    || (rc = pr__store_runs_update(txn, src, &old, NULL)) != 0) {
		return rc;
	}
	old_h = state_half(old.state);
	if ((rc = overlap_move(txn, src->id, r, provider, old_h, -1)) != 0) {
		return rc;
	}
	if (old_h == PR_HALF_READY) {
		return union_remove(txn, src->id, time_enc(r.start), time_enc(r.end));
	}
	return 0;
}

int
pr__store_partition_list(struct pr_txn *txn, const struct pr_source *src, const char *cursor,
    size_t limit, int (*cb)(void *arg, const struct pr_partition *p), void *arg,
    char next[PR_CURSOR_MAX])
{
	uint8_t key[PART_KEY_MAX];
	size_t alen;
	MDB_cursor *cur;
	MDB_val k, d;
	size_t n = 0;
	int rc, r = 0;

	assert(txn->child == NULL);
	/* The cursor is the hex of the last key returned, without the source id:
	 * start, end and a provider name of at least one byte. Decoded before next
	 * is cleared, so the caller may pass one buffer as both. */
	rc = pr__store_cursor_decode('p', cursor, 17, PART_KEY_MAX - 8, key + 8, &alen);
	if (next != NULL) {
		next[0] = '\0';
	}
	if (rc != 0 || src->id == 0) {
		return rc;
	}
	be64_put(key, src->id);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->partitions, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "partition list", PR_ESTORE);
	}
	k = (MDB_val) { 8 + alen, key };
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	if (rc == 0 && alen > 0 && k.mv_size == 8 + alen && memcmp(k.mv_data, key, 8 + alen) == 0) {
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_partition p;

		if (k.mv_size < 8 || be64_get(k.mv_data) != src->id) {
			break;
		}
		if (limit != 0 && n == limit) {
			/* There is more: hand out the last key of this page. */
			if (next != NULL) {
				pr__store_cursor_encode('p', key + 8, alen, next);
			}
			break;
		}
		if ((r = part_decode(src, &k, &d, &p)) != 0) {
			break;
		}
		alen = k.mv_size - 8;
		memcpy(key + 8, (uint8_t *)k.mv_data + 8, alen);
		n++;
		if ((r = cb(arg, &p)) != 0) {
			if (next != NULL) {
				pr__store_cursor_encode('p', key + 8, alen, next);
			}
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "partition list", PR_ESTORE);
	}
	return 0;
}

/* ---- readiness queries ---- */

int
pr__store_ready_each(struct pr_txn *txn, const struct pr_source *src, struct pr_range want,
    int (*cb)(void *arg, struct pr_range r), void *arg)
{
	uint8_t key[16];
	MDB_cursor *cur;
	MDB_val k, d;
	uint64_t ws = time_enc(want.start), we = time_enc(want.end);
	uint64_t ps, pe, first = ws;
	int rc, r = 0;

	assert(txn->child == NULL);
	if (want.start >= want.end) {
		return PR_EINTERVAL;
	}
	if (src->id == 0) {
		return 0;
	}
	if ((rc = mdb_cursor_open(txn->txn, txn->st->runion, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "ready query", PR_ESTORE);
	}
	/* A range starting before want may still reach into it. */
	rc = union_pred(cur, src->id, ws, &ps, &pe);
	if (rc == 0 && pe > ws) {
		first = ps;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		return cur_err(cur, rc, "ready query");
	}
	be64_put(key, src->id);
	be64_put(key + 8, first);
	k = (MDB_val) { sizeof key, key };
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_range u;

		if (k.mv_size != 16 || be64_get(k.mv_data) != src->id
		    || be64_get((uint8_t *)k.mv_data + 8) >= we) {
			break;
		}
		if (d.mv_size != 8) {
			rc = MDB_CORRUPTED;
			break;
		}
		u.start = time_dec(be64_get((uint8_t *)k.mv_data + 8));
		u.end = time_dec(be64_get(d.mv_data));
		if ((r = cb(arg, u)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "ready query", PR_ESTORE);
	}
	return 0;
}

struct blockers {
	const struct pr_source *src;
	int (*cb)(void *arg, const struct pr_partition *p);
	void *arg;
};

static int
blocker_one(struct pr_txn *txn, const uint8_t *okey, size_t len, void *arg)
{
	const struct blockers *b = arg;
	uint8_t key[PART_KEY_MAX];
	struct pr_partition p;
	MDB_val k = { len - 2, key };
	int rc;

	/* overlap key src | half | class | rest  ->  partitions key src | rest */
	memcpy(key, okey, 8);
	memcpy(key + 8, okey + 10, len - 10);
	if ((rc = pr__store_part_read(txn, b->src, &k, &p)) != 0) {
		if (rc == PR_ENOPARTITION) {
			pr_error("store: overlap entry without its partition");
			rc = PR_ESTORE;
		}
		return rc;
	}
	return b->cb(b->arg, &p);
}

int
pr__store_blockers_each(struct pr_txn *txn, const struct pr_source *src, struct pr_range want,
    int (*cb)(void *arg, const struct pr_partition *p), void *arg)
{
	struct blockers b = { src, cb, arg };

	assert(txn->child == NULL);
	if (want.start >= want.end) {
		return PR_EINTERVAL;
	}
	if (src->id == 0) {
		return 0;
	}
	return overlap_each(txn, src->id, PR_HALF_BLOCKED, time_enc(want.start), time_enc(want.end),
	    blocker_one, &b);
}

int
pr__store_partition_apply(struct pr_txn *txn, const struct pr_source *src, const uint8_t *rest,
    size_t len, const uint8_t *val, size_t val_len, struct pr_partition *out)
{
	uint8_t key[PART_KEY_MAX];
	MDB_val k = { 8 + len, key }, d = { val_len, (void *)val };
	int rc;

	if (len <= 16 || len > PART_KEY_MAX - 8) {
		return PR_ESTORE;
	}
	be64_put(key, src->id);
	memcpy(key + 8, rest, len);
	if (val == NULL) {
		/* Removed: the partition as it was, for the caller. */
		if ((rc = pr__store_part_read(txn, src, &k, out)) != 0) {
			return rc == PR_ENOPARTITION ? 0 : rc;
		}
		return pr__store_partition_del(txn, src, out->provider, out->range);
	}
	if ((rc = part_decode(src, &k, &d, out)) != 0) {
		return rc;
	}
	return pr__store_partition_put(txn, src, out);
}
