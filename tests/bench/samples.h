/* SPDX-License-Identifier: MIT */
/*
 * The benchmarks' samples line: n samples of microseconds, sorted in place
 * and printed as "n=N c=C secs=S rate=R min=… p50=… p90=… p99=… max=…"
 * without a newline (the program adds its own fields), the form
 * tests/bench/run.sh reads.
 */
#ifndef PR_BENCH_SAMPLES_H
#define PR_BENCH_SAMPLES_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline int
pr_bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static inline void
pr_bench_samples(int64_t *s, long n, int c, double secs)
{
	qsort(s, (size_t)n, sizeof *s, pr_bench_cmp_i64);
	printf("n=%ld c=%d secs=%.3f rate=%.1f min=%" PRId64 " p50=%" PRId64 " p90=%" PRId64
	       " p99=%" PRId64 " max=%" PRId64,
	    n, c, secs, secs > 0 ? (double)n / secs : 0.0, s[0], s[n / 2], s[n * 9 / 10],
	    s[n * 99 / 100], s[n - 1]);
}

#endif
