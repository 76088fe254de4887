/* SPDX-License-Identifier: MIT */
/*
 * Blocker runs: the non-ready partitions of a source coalesced per provider
 * and state, so a summary lists a month of pending days as one entry and is
 * built in O(runs), not O(partitions).
 *
 *   runs  src | state | len | provider | start  ->  end | count | covered
 *
 * (start and end in the order-preserving time encoding of store_int.h, state
 * one byte, len the provider's length in one byte so a provider never
 * collides with a longer one it prefixes; count the partitions in the run,
 * covered the sum of their lengths in µs, saturating.)
 *
 * What always holds after every pr__store_partition_put/_del: for each
 * (source, state, provider) with state pending, locked or failed, the runs
 * are the connected components of the union of those partitions' ranges,
 * where touching ranges ([a, b) and [b, c)) connect. So a run's [start, end)
 * is exactly the union of its partitions, and [x, y) overlaps a run exactly
 * when it overlaps one of its partitions: readiness decided from runs is the
 * same as from partitions.
 *
 * - Adding [s, e) merges the run with the greatest start <= s when it
 *   reaches s, then every run starting in [s, ne] while ne grows, as the
 *   ready union does (store_partitions.c). O(log n + merged).
 * - Removing [s, e) from the run R holding it: a run of one is deleted. A run
 *   whose partitions tile it (covered == end - start: no two overlap) and
 *   that loses its first or last partition shrinks in O(log n) — the common
 *   case of consuming pending days in order. A tiled run losing one in the
 *   middle splits in two, and the shorter side's partitions are counted by
 *   a scan of that side (the other side's count follows). Otherwise R is
 *   dropped and its remaining partitions, found by scanning the partitions
 *   starting in R, are added back. O(k log n), k the partitions scanned.
 *
 * A store from before runs existed gets them from the rebuild of the
 * derived indexes (pr__store_xindex_rebuild, store_crossindex.c).
 */
#include "store_int.h"

#include <string.h>

#include "log.h"

#define RUN_KEY_MAX (8 + 1 + 1 + PR_NAME_MAX + 8)
#define RUN_VAL     24

_Static_assert(PR_NAME_MAX <= 255, "a provider's length is one byte of the run key");

struct run {
	uint64_t s, e; /* encoded times */
	uint64_t count;
	uint64_t covered;
};

/* The key prefix of a (source, state, provider) group; returns its length. */
static size_t
group_key(uint8_t *key, uint64_t src_id, enum pr_pstate state, const char *provider)
{
	size_t n = strnlen(provider, PR_NAME_MAX);

	be64_put(key, src_id);
	key[8] = (uint8_t)state;
	key[9] = (uint8_t)n;
	memcpy(key + 10, provider, n);
	return 10 + n;
}

static int
blocked_state(enum pr_pstate s)
{
	return s == PR_PENDING || s == PR_LOCKED || s == PR_FAILED;
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t
span(uint64_t s, uint64_t e)
{
	return e - s; /* encoded times keep differences */
}

static int
run_read(const MDB_val *k, const MDB_val *d, size_t glen, struct run *r)
{
	if (k->mv_size != glen + 8 || d->mv_size != RUN_VAL) {
		pr_error("store: corrupt blocker run");
		return PR_ESTORE;
	}
	r->s = be64_get((uint8_t *)k->mv_data + glen);
	r->e = be64_get(d->mv_data);
	r->count = be64_get((uint8_t *)d->mv_data + 8);
	r->covered = be64_get((uint8_t *)d->mv_data + 16);
	return 0;
}

static int
run_write(struct pr_txn *txn, uint8_t *key, size_t glen, const struct run *r)
{
	uint8_t val[RUN_VAL];
	MDB_val k = { glen + 8, key }, d = { sizeof val, val };

	be64_put(key + glen, r->s);
	be64_put(val, r->e);
	be64_put(val + 8, r->count);
	be64_put(val + 16, r->covered);
	return pr__store_lmdb_err(
	    mdb_put(txn->txn, txn->st->runs, &k, &d, 0), "blocker run put", PR_ESTORE);
}

static int
run_delete(struct pr_txn *txn, uint8_t *key, size_t glen, uint64_t s)
{
	MDB_val k = { glen + 8, key };

	be64_put(key + glen, s);
	return pr__store_lmdb_err(
	    mdb_del(txn->txn, txn->st->runs, &k, NULL), "blocker run del", PR_ESTORE);
}

/*
 * Position cur on the run of the group (key[0..glen)) with the greatest
 * start <= x. Returns 0 with *r set, MDB_NOTFOUND, or a PR_E* code.
 */
static int
run_pred(MDB_cursor *cur, uint8_t *key, size_t glen, uint64_t x, struct run *r)
{
	MDB_val k = { glen + 8, key }, d;
	int rc;

	be64_put(key + glen, x);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == glen + 8 && memcmp(k.mv_data, key, glen + 8) == 0) {
		return run_read(&k, &d, glen, r);
	}
	if (rc == MDB_NOTFOUND) {
		rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
	} else if (rc == 0) {
		rc = mdb_cursor_get(cur, &k, &d, MDB_PREV);
	}
	if (rc == MDB_NOTFOUND
	    || (rc == 0 && (k.mv_size != glen + 8 || memcmp(k.mv_data, key, glen) != 0))) {
		return MDB_NOTFOUND;
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "blocker run", PR_ESTORE);
	}
	return run_read(&k, &d, glen, r);
}

/* Add the run add (one partition, or several already counted) to the group. */
static int
run_add(struct pr_txn *txn, uint8_t *key, size_t glen, struct run add)
{
	MDB_cursor *cur;
	MDB_val k, d;
	struct run p;
	int rc, r;

	if ((rc = mdb_cursor_open(txn->txn, txn->st->runs, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "blocker runs", PR_ESTORE);
	}
	r = run_pred(cur, key, glen, add.s, &p);
	if (r == MDB_NOTFOUND || (r == 0 && p.e < add.s)) {
		r = 0;
	} else if (r == 0) {
		add.s = p.s;
		add.e = p.e > add.e ? p.e : add.e;
		add.count += p.count;
		add.covered = sat_add(add.covered, p.covered);
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			r = pr__store_lmdb_err(rc, "blocker run add", PR_ESTORE);
		}
	}
	/* Every later run that starts at or before the (growing) end joins. */
	be64_put(key + glen, add.s);
	k = (MDB_val) { glen + 8, key };
	for (rc = r != 0 ? 0 : mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); r == 0 && rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != glen + 8 || memcmp(k.mv_data, key, glen) != 0) {
			break;
		}
		if ((r = run_read(&k, &d, glen, &p)) != 0 || p.s > add.e) {
			break;
		}
		add.e = p.e > add.e ? p.e : add.e;
		add.count += p.count;
		add.covered = sat_add(add.covered, p.covered);
		/* After mdb_cursor_del, MDB_NEXT yields the entry that followed. */
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND) {
		r = pr__store_lmdb_err(rc, "blocker run add", PR_ESTORE);
	}
	return r != 0 ? r : run_write(txn, key, glen, &add);
}

/*
 * Scan the partitions of src starting in [s, e) (encoded) that belong to the
 * group (state, provider), except the one whose range is skip: add each back
 * as a run when readd, else only count them into *n.
 */
static int
scan_members(struct pr_txn *txn, const struct pr_source *src, enum pr_pstate state,
    const char *provider, uint64_t s, uint64_t e, struct run skip, int readd, uint8_t *gkey,
    size_t glen, uint64_t *n)
{
	size_t plen = strnlen(provider, PR_NAME_MAX);
	uint8_t key[16];
	MDB_cursor *cur;
	MDB_val k = { sizeof key, key }, d;
	int rc, r = 0;

	*n = 0;
	be64_put(key, src->id);
	be64_put(key + 8, s);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->partitions, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "blocker run scan", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		struct pr_partition p;
		MDB_val pk = k;
		uint64_t ps, pe;

		if (k.mv_size <= 24 || be64_get(kp) != src->id || (ps = be64_get(kp + 8)) >= e) {
			break;
		}
		pe = be64_get(kp + 16);
		if (k.mv_size - 24 != plen || memcmp(kp + 24, provider, plen) != 0
		    || (ps == skip.s && pe == skip.e)) {
			continue;
		}
		if ((r = pr__store_part_read(txn, src, &pk, &p)) != 0) {
			break;
		}
		if (p.state != state) {
			continue;
		}
		++*n;
		if (readd) {
			/* run_add uses its own cursor on another DBI: this one stays valid. */
			r = run_add(txn, gkey, glen, (struct run) { ps, pe, 1, span(ps, pe) });
			if (r != 0) {
				break;
			}
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "blocker run scan", PR_ESTORE);
	}
	return 0;
}

/* Take the partition [s, e) out of its group's run. */
static int
run_remove(struct pr_txn *txn, const struct pr_source *src, enum pr_pstate state,
    const char *provider, uint64_t s, uint64_t e)
{
	uint8_t key[RUN_KEY_MAX];
	size_t glen = group_key(key, src->id, state, provider);
	struct run r, me = { s, e, 1, span(s, e) };
	MDB_cursor *cur;
	uint64_t n;
	int rc;

	if ((rc = mdb_cursor_open(txn->txn, txn->st->runs, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "blocker runs", PR_ESTORE);
	}
	rc = run_pred(cur, key, glen, s, &r);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND || (rc == 0 && (r.e < e || r.count == 0))) {
		pr_error("store: partition missing from its blocker run");
		return PR_ESTORE;
	}
	if (rc != 0) {
		return rc;
	}
	if ((rc = run_delete(txn, key, glen, r.s)) != 0 || r.count == 1) {
		return rc;
	}
	if (r.covered == span(r.s, r.e)) {
		/* Tiled: the parts left and right of [s, e) are runs of their own. */
		struct run left = { r.s, s, 0, span(r.s, s) };
		struct run right = { e, r.e, 0, span(e, r.e) };

		if (left.covered == 0) {
			right.count = r.count - 1;
		} else if (right.covered == 0) {
			left.count = r.count - 1;
		} else if (left.covered <= right.covered) {
			rc = scan_members(txn, src, state, provider, left.s, left.e, me, 0, key,
			    glen, &left.count);
			right.count = r.count - 1 - left.count;
		} else {
			rc = scan_members(txn, src, state, provider, right.s, right.e, me, 0, key,
			    glen, &right.count);
			left.count = r.count - 1 - right.count;
		}
		if (rc == 0 && left.covered > 0) {
			rc = run_write(txn, key, glen, &left);
		}
		if (rc == 0 && right.covered > 0) {
			rc = run_write(txn, key, glen, &right);
		}
		return rc;
	}
	return scan_members(txn, src, state, provider, r.s, r.e, me, 1, key, glen, &n);
}

int
pr__store_runs_update(struct pr_txn *txn, const struct pr_source *src,
    const struct pr_partition *old, const struct pr_partition *new_p)
{
	int was = old != NULL && blocked_state(old->state);
	int is = new_p != NULL && blocked_state(new_p->state);
	int rc;

	if (was && is && old->state == new_p->state) {
		return 0; /* same group, same range: nothing moves */
	}
	if (was
	    && (rc = run_remove(txn, src, old->state, old->provider, time_enc(old->range.start),
	            time_enc(old->range.end)))
	        != 0) {
		return rc;
	}
	if (is) {
		uint8_t key[RUN_KEY_MAX];
		size_t glen = group_key(key, src->id, new_p->state, new_p->provider);
		uint64_t s = time_enc(new_p->range.start), e = time_enc(new_p->range.end);

		return run_add(txn, key, glen, (struct run) { s, e, 1, span(s, e) });
	}
	return 0;
}

int
pr__store_runs_each(struct pr_txn *txn, const struct pr_source *src,
    int (*cb)(void *arg, const struct pr_run *r), void *arg)
{
	uint8_t key[8];
	MDB_cursor *cur;
	MDB_val k = { sizeof key, key }, d;
	int rc, r = 0;

	assert(txn->child == NULL);
	if (src->id == 0) {
		return 0;
	}
	be64_put(key, src->id);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->runs, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "blocker runs", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		struct pr_run out;
		struct run run;
		size_t plen;

		if (k.mv_size < 8 || be64_get(kp) != src->id) {
			break;
		}
		plen = k.mv_size >= 10 ? kp[9] : 0;
		if (plen == 0 || plen > PR_NAME_MAX || k.mv_size != 18 + plen
		    || !blocked_state((enum pr_pstate)kp[8])) {
			pr_error("store: corrupt blocker run key");
			r = PR_ESTORE;
			break;
		}
		if ((r = run_read(&k, &d, 10 + plen, &run)) != 0) {
			break;
		}
		memset(&out, 0, sizeof out);
		out.state = (enum pr_pstate)kp[8];
		memcpy(out.provider, kp + 10, plen);
		out.range.start = time_dec(run.s);
		out.range.end = time_dec(run.e);
		out.count = run.count;
		if ((r = cb(arg, &out)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "blocker runs", PR_ESTORE);
	}
	return 0;
}
