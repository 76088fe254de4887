/* SPDX-License-Identifier: MIT */
/*
 * Half-open time intervals [start, end) and the readiness rule, as pure
 * functions: no I/O, no clock. The agent evaluates readiness with these, and
 * so does the client library from a retained summary, so both always agree.
 *
 * Readiness of [a, b): every instant of [a, b) lies in some ready range, and
 * no blocker (a pending, locked or failed partition) overlaps [a, b).
 */
#ifndef PARTREG_INTERVAL_H
#define PARTREG_INTERVAL_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/export.h>

struct pr_range {
	int64_t start; /* inclusive, microseconds */
	int64_t end;   /* exclusive; start < end */
};

/* Do [a.start, a.end) and [b.start, b.end) share an instant? */
PR_API int pr_range_overlaps(struct pr_range a, struct pr_range b);

/*
 * Sort r[0..n) by start and merge overlapping or touching ranges in place,
 * dropping empty ones (start >= end). Returns the new count.
 */
PR_API size_t pr_ranges_coalesce(struct pr_range *r, size_t n);

/*
 * Outcome of a readiness evaluation. gaps is caller-provided storage of
 * gaps_cap entries; ngaps counts all gaps even past gaps_cap (the caller
 * sees truncation as ngaps > gaps_cap).
 */
struct pr_readiness {
	int ready;             /* 1 when [a, b) is ready */
	struct pr_range *gaps; /* sub-intervals of [a, b) not covered by a ready range */
	size_t gaps_cap;
	size_t ngaps;
	size_t nblockers;      /* blockers that overlap [a, b) */
	int64_t ready_through; /* largest t in (a, b] with [a, t) ready; == a when none */
};

/*
 * Evaluate the readiness rule for want = [a, b).
 * ready[0..nready): ranges covered by ready partitions, any order, may
 *   overlap (they are not modified).
 * blocked[0..nblocked): intervals of non-ready partitions, any order.
 * out->gaps/gaps_cap must be set by the caller; the rest is filled.
 * ready_through: a run of ready coverage from a, cut at the first gap or the
 *   start of the first overlapping blocker (a blocker starting at or before a
 *   gives ready_through == a).
 * Ranges with start >= end are ignored. An empty want (a >= b) is never
 * ready: ready 0, no gaps, no blockers, ready_through == a.
 * Never fails: it allocates only to sort unsorted input, and falls back to
 * a slower allocation-free pass when that fails. Any thread may call it.
 */
PR_API void pr_readiness_eval(struct pr_range want, const struct pr_range *ready, size_t nready,
    const struct pr_range *blocked, size_t nblocked, struct pr_readiness *out);

#endif
