/* SPDX-License-Identifier: MIT */
/*
 * Half-open intervals and the readiness rule, as pure functions.
 *
 * pr_readiness_eval() must not modify its inputs and has no way to report an
 * error, so it never fails: it sweeps the ready ranges in order of start
 * with a cursor that only moves forward, and takes that order from the
 * cheapest source that works:
 *   - the input itself when it is already sorted by start (the store and a
 *     coalesced summary both give sorted ranges): O(n), no allocation;
 *   - a sorted scratch copy of the ranges that overlap want: O(n log n);
 *   - when that copy is small (<= SELECT_MAX) or malloc fails, selection
 *     of the next smallest start on each step: O(n) per step, no allocation.
 * All three feed the same sweep, so they cannot disagree on the result.
 * Rejected: returning an error on allocation failure (every caller would
 * need a path for "readiness unknown" that is never exercised), and
 * selection alone (quadratic for a long query over many partitions).
 *
 * Ranges with start >= end hold no instant: they are ignored everywhere.
 */
#include <partreg/interval.h>

#include <stdlib.h>
#include <string.h>

/* Below this many unsorted ranges, selection beats malloc + qsort. */
#define SELECT_MAX 16

static int
empty(struct pr_range r)
{
	return r.start >= r.end;
}

int
pr_range_overlaps(struct pr_range a, struct pr_range b)
{
	return !empty(a) && !empty(b) && a.start < b.end && b.start < a.end;
}

static int
cmp_range(const void *pa, const void *pb)
{
	const struct pr_range *a = pa, *b = pb;

	if (a->start != b->start) {
		return a->start < b->start ? -1 : 1;
	}
	return (a->end > b->end) - (a->end < b->end);
}

size_t
pr_ranges_coalesce(struct pr_range *r, size_t n)
{
	size_t k = 0, out = 0;

	for (size_t i = 0; i < n; i++) {
		if (!empty(r[i])) {
			r[k++] = r[i];
		}
	}
	if (k == 0) {
		return 0;
	}
	qsort(r, k, sizeof *r, cmp_range);
	for (size_t i = 1; i < k; i++) {
		if (r[i].start <= r[out].end) { /* overlapping or touching */
			if (r[i].end > r[out].end) {
				r[out].end = r[i].end;
			}
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

/* Yields ranges in non-decreasing order of start (see the design note). */
struct order {
	const struct pr_range *r;
	size_t n;
	size_t pos;  /* next index, when r is sorted */
	int select;  /* otherwise: pick the next (start, index) by selection */
	int started; /* selection: last_start/last_idx are set */
	int64_t last_start;
	size_t last_idx;
};

static const struct pr_range *
order_next(struct order *o)
{
	size_t best = SIZE_MAX;

	if (!o->select) {
		return o->pos < o->n ? &o->r[o->pos++] : NULL;
	}
	/* The smallest (start, index) after the last one yielded. */
	for (size_t i = 0; i < o->n; i++) {
		int64_t s = o->r[i].start;

		if (o->started && (s < o->last_start || (s == o->last_start && i <= o->last_idx))) {
			continue;
		}
		if (best == SIZE_MAX || s < o->r[best].start) {
			best = i;
		}
	}
	if (best == SIZE_MAX) {
		return NULL;
	}
	o->started = 1;
	o->last_start = o->r[best].start;
	o->last_idx = best;
	return &o->r[best];
}

static int
sorted_by_start(const struct pr_range *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (r[i].start < r[i - 1].start) {
			return 0;
		}
	}
	return 1;
}

static void
add_gap(struct pr_readiness *out, int64_t start, int64_t end)
{
	if (out->ngaps < out->gaps_cap) {
		out->gaps[out->ngaps] = (struct pr_range) { start, end };
	}
	out->ngaps++;
}

void
pr_readiness_eval(struct pr_range want, const struct pr_range *ready, size_t nready,
    const struct pr_range *blocked, size_t nblocked, struct pr_readiness *out)
{
	struct order o = { .r = ready, .n = nready };
	struct pr_range *scratch = NULL;
	const struct pr_range *r;
	int64_t cursor = want.start, through = want.end;

	out->ready = 0;
	out->ngaps = 0;
	out->nblockers = 0;
	out->ready_through = want.start;
	if (empty(want)) {
		return;
	}

	if (!sorted_by_start(ready, nready)) {
		size_t k = 0;

		for (size_t i = 0; i < nready; i++) {
			k += pr_range_overlaps(ready[i], want);
		}
		if (k > SELECT_MAX) {
			scratch = malloc(k * sizeof *scratch);
		}
		if (scratch != NULL) {
			k = 0;
			for (size_t i = 0; i < nready; i++) {
				if (pr_range_overlaps(ready[i], want)) {
					scratch[k++] = ready[i];
				}
			}
			qsort(scratch, k, sizeof *scratch, cmp_range);
			o.r = scratch;
			o.n = k;
		} else {
			o.select = 1; /* small, or out of memory: slower, same answer */
		}
	}

	/* Sweep: [want.start, cursor) is covered; ranges come in order of start. */
	while ((r = order_next(&o)) != NULL) {
		if (empty(*r) || r->end <= cursor) {
			continue;
		}
		if (r->start >= want.end) {
			break;
		}
		if (r->start > cursor) {
			if (out->ngaps == 0) {
				through = cursor;
			}
			add_gap(out, cursor, r->start);
		}
		cursor = r->end;
		if (cursor >= want.end) {
			break;
		}
	}
	if (cursor < want.end) {
		if (out->ngaps == 0) {
			through = cursor;
		}
		add_gap(out, cursor, want.end);
	}
	free(scratch);

	for (size_t i = 0; i < nblocked; i++) {
		if (pr_range_overlaps(blocked[i], want)) {
			int64_t s = blocked[i].start > want.start ? blocked[i].start : want.start;

			out->nblockers++;
			if (s < through) {
				through = s;
			}
		}
	}
	out->ready_through = through;
	out->ready = out->ngaps == 0 && out->nblockers == 0;
}
