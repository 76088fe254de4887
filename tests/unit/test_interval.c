/* SPDX-License-Identifier: MIT */
/*
 * Tables for common/interval.c with explicit instants (small integers stand for
 * microseconds; days are D(n)), then a randomized comparison against a
 * brute-force model that marks every instant of a small grid, run over
 * sorted input, small unsorted input and large unsorted input so each of
 * pr_readiness_eval's three orderings is checked against the same answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <partreg/interval.h>

#define D(n) (INT64_C(86400000000) * (n))
#define MAXR 8
#define MAXG 8

struct rcase {
	const char *name;
	struct pr_range want;
	size_t nready;
	struct pr_range ready[MAXR];
	size_t nblocked;
	struct pr_range blocked[MAXR];
	/* expected */
	int ready_;
	size_t ngaps;
	struct pr_range gaps[MAXG];
	size_t nblockers;
	int64_t through;
};

static const struct rcase rcases[] = {
	{ "exact cover", { D(1), D(2) }, 1, { { D(1), D(2) } }, 0, { { 0 } }, 1, 0, { { 0 } }, 0,
	    D(2) },
	{ "cover wider than want", { D(1), D(2) }, 1, { { D(0), D(5) } }, 0, { { 0 } }, 1, 0,
	    { { 0 } }, 0, D(2) },
	{ "touching ranges coalesce, no gap", { D(1), D(3) }, 2, { { D(1), D(2) }, { D(2), D(3) } },
	    0, { { 0 } }, 1, 0, { { 0 } }, 0, D(3) },
	{ "touching, given out of order", { D(1), D(4) }, 3,
	    { { D(3), D(4) }, { D(1), D(2) }, { D(2), D(3) } }, 0, { { 0 } }, 1, 0, { { 0 } }, 0,
	    D(4) },
	{ "overlapping ready ranges", { D(1), D(4) }, 3,
	    { { D(1), D(3) }, { D(2), D(4) }, { D(1), D(2) } }, 0, { { 0 } }, 1, 0, { { 0 } }, 0,
	    D(4) },
	{ "nested ready ranges", { D(1), D(4) }, 2, { { D(0), D(9) }, { D(2), D(3) } }, 0,
	    { { 0 } }, 1, 0, { { 0 } }, 0, D(4) },
	{ "no ready ranges", { D(1), D(4) }, 0, { { 0 } }, 0, { { 0 } }, 0, 1, { { D(1), D(4) } },
	    0, D(1) },
	{ "gap in the middle", { D(1), D(4) }, 2, { { D(1), D(2) }, { D(3), D(4) } }, 0, { { 0 } },
	    0, 1, { { D(2), D(3) } }, 0, D(2) },
	{ "one-microsecond gap", { 0, 10 }, 2, { { 0, 5 }, { 6, 10 } }, 0, { { 0 } }, 0, 1,
	    { { 5, 6 } }, 0, 5 },
	{ "gap at the start", { D(1), D(4) }, 1, { { D(2), D(4) } }, 0, { { 0 } }, 0, 1,
	    { { D(1), D(2) } }, 0, D(1) },
	{ "gap at the end", { D(1), D(4) }, 1, { { D(0), D(3) } }, 0, { { 0 } }, 0, 1,
	    { { D(3), D(4) } }, 0, D(3) },
	{ "gaps clipped to want", { D(1), D(9) }, 2, { { D(3), D(4) }, { D(6), D(7) } }, 0,
	    { { 0 } }, 0, 3, { { D(1), D(3) }, { D(4), D(6) }, { D(7), D(9) } }, 0, D(1) },
	{ "ready only outside want", { D(3), D(5) }, 2, { { D(0), D(3) }, { D(5), D(8) } }, 0,
	    { { 0 } }, 0, 1, { { D(3), D(5) } }, 0, D(3) },
	{ "blocker inside", { D(1), D(4) }, 1, { { D(1), D(4) } }, 1, { { D(2), D(3) } }, 0, 0,
	    { { 0 } }, 1, D(2) },
	{ "blocker at start", { D(1), D(4) }, 1, { { D(1), D(4) } }, 1, { { D(1), D(2) } }, 0, 0,
	    { { 0 } }, 1, D(1) },
	{ "blocker before start overlapping", { D(1), D(4) }, 1, { { D(0), D(4) } }, 1,
	    { { D(0), D(2) } }, 0, 0, { { 0 } }, 1, D(1) },
	{ "blocker touching end is not a blocker", { D(1), D(4) }, 1, { { D(1), D(4) } }, 1,
	    { { D(4), D(5) } }, 1, 0, { { 0 } }, 0, D(4) },
	{ "blocker touching start is not a blocker", { D(1), D(4) }, 1, { { D(1), D(4) } }, 1,
	    { { D(0), D(1) } }, 1, 0, { { 0 } }, 0, D(4) },
	{ "blockers on both sides touching", { D(1), D(4) }, 1, { { D(0), D(5) } }, 2,
	    { { D(4), D(5) }, { D(0), D(1) } }, 1, 0, { { 0 } }, 0, D(4) },
	{ "blocker covering all", { D(1), D(4) }, 1, { { D(1), D(4) } }, 1, { { D(0), D(9) } }, 0,
	    0, { { 0 } }, 1, D(1) },
	{ "blocker after a gap: cut at the gap", { D(1), D(5) }, 2,
	    { { D(1), D(2) }, { D(3), D(5) } }, 1, { { D(4), D(5) } }, 0, 1, { { D(2), D(3) } }, 1,
	    D(2) },
	{ "blocker before the gap: cut at the blocker", { D(1), D(5) }, 1, { { D(1), D(4) } }, 1,
	    { { D(2), D(3) } }, 0, 1, { { D(4), D(5) } }, 1, D(2) },
	{ "several blockers, earliest wins", { D(1), D(9) }, 1, { { D(1), D(9) } }, 3,
	    { { D(7), D(8) }, { D(3), D(4) }, { D(5), D(6) } }, 0, 0, { { 0 } }, 3, D(3) },
	{ "blockers outside want ignored", { D(3), D(5) }, 1, { { D(3), D(5) } }, 2,
	    { { D(0), D(2) }, { D(6), D(9) } }, 1, 0, { { 0 } }, 0, D(5) },
	{ "blocker over a gap counts once", { D(1), D(4) }, 0, { { 0 } }, 1, { { D(2), D(3) } }, 0,
	    1, { { D(1), D(4) } }, 1, D(1) },
	{ "empty ready ranges ignored", { 0, 10 }, 3, { { 0, 5 }, { 5, 5 }, { 7, 3 } }, 0,
	    { { 0 } }, 0, 1, { { 5, 10 } }, 0, 5 },
	{ "empty blocker ignored", { 0, 10 }, 1, { { 0, 10 } }, 1, { { 5, 5 } }, 1, 0, { { 0 } }, 0,
	    10 },
	{ "empty want never ready", { 5, 5 }, 1, { { 0, 10 } }, 0, { { 0 } }, 0, 0, { { 0 } }, 0,
	    5 },
	{ "inverted want never ready", { 6, 5 }, 1, { { 0, 10 } }, 1, { { 0, 10 } }, 0, 0,
	    { { 0 } }, 0, 6 },
	{ "extreme values", { INT64_MIN, INT64_MAX }, 2, { { INT64_MIN, 0 }, { 0, INT64_MAX } }, 0,
	    { { 0 } }, 1, 0, { { 0 } }, 0, INT64_MAX },
	{ "before 1970", { -D(3), D(1) }, 2, { { -D(5), -D(1) }, { 0, D(2) } }, 0, { { 0 } }, 0, 1,
	    { { -D(1), 0 } }, 0, -D(1) },
};

static void
check_case(const struct rcase *c)
{
	struct pr_range gaps[MAXG];
	struct pr_range rcopy[MAXR], bcopy[MAXR];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = MAXG };

	memcpy(rcopy, c->ready, sizeof rcopy);
	memcpy(bcopy, c->blocked, sizeof bcopy);
	pr_readiness_eval(c->want, c->ready, c->nready, c->blocked, c->nblocked, &r);
	if (r.ready != c->ready_ || r.ngaps != c->ngaps || r.nblockers != c->nblockers
	    || r.ready_through != c->through) {
		fail_msg("%s: ready %d ngaps %zu nblockers %zu through %lld", c->name, r.ready,
		    r.ngaps, r.nblockers, (long long)r.ready_through);
	}
	for (size_t i = 0; i < c->ngaps; i++) {
		if (gaps[i].start != c->gaps[i].start || gaps[i].end != c->gaps[i].end) {
			fail_msg("%s: gap %zu is [%lld, %lld)", c->name, i,
			    (long long)gaps[i].start, (long long)gaps[i].end);
		}
	}
	/* Inputs are const in spirit too. */
	assert_memory_equal(rcopy, c->ready, sizeof rcopy);
	assert_memory_equal(bcopy, c->blocked, sizeof bcopy);
}

static void
test_readiness_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
		check_case(&rcases[i]);
	}
}

/* ngaps counts every gap; only gaps_cap are stored, and nothing past them. */
static void
test_gaps_truncated(void **state)
{
	const struct pr_range want = { 0, 100 };
	const struct pr_range ready[] = { { 10, 20 }, { 30, 40 }, { 50, 60 } };
	struct pr_range gaps[3] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = 2 };
	struct pr_readiness none = { .gaps = NULL, .gaps_cap = 0 };

	(void)state;
	pr_readiness_eval(want, ready, 3, NULL, 0, &r);
	assert_int_equal(r.ngaps, 4);
	assert_false(r.ready);
	assert_int_equal(r.ready_through, 0);
	assert_int_equal(gaps[0].start, 0);
	assert_int_equal(gaps[0].end, 10);
	assert_int_equal(gaps[1].start, 20);
	assert_int_equal(gaps[1].end, 30);
	assert_int_equal(gaps[2].start, -1); /* untouched */
	pr_readiness_eval(want, ready, 3, NULL, 0, &none);
	assert_int_equal(none.ngaps, 4);
	assert_false(none.ready);
}

static void
test_overlaps(void **state)
{
	static const struct {
		struct pr_range a, b;
		int want;
	} t[] = {
		{ { 0, 10 }, { 5, 15 }, 1 },
		{ { 0, 10 }, { 0, 10 }, 1 },
		{ { 0, 10 }, { 2, 3 }, 1 },
		{ { 0, 10 }, { 9, 11 }, 1 },
		{ { 0, 10 }, { -5, 1 }, 1 },
		{ { 0, 10 }, { 10, 20 }, 0 }, /* touching */
		{ { 10, 20 }, { 0, 10 }, 0 },
		{ { 0, 10 }, { 11, 20 }, 0 },
		{ { 0, 10 }, { 5, 5 }, 0 }, /* empty shares no instant */
		{ { 5, 5 }, { 5, 5 }, 0 },
		{ { 0, 10 }, { 8, 2 }, 0 },
		{ { INT64_MIN, INT64_MAX }, { 0, 1 }, 1 },
		{ { D(1), D(2) }, { D(2), D(3) }, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		assert_int_equal(pr_range_overlaps(t[i].a, t[i].b), t[i].want);
		assert_int_equal(pr_range_overlaps(t[i].b, t[i].a), t[i].want);
	}
}

static void
test_coalesce_table(void **state)
{
	static const struct {
		size_t n;
		struct pr_range in[MAXR];
		size_t nout;
		struct pr_range out[MAXR];
	} t[] = {
		{ 0, { { 0 } }, 0, { { 0 } } },
		{ 1, { { 1, 2 } }, 1, { { 1, 2 } } },
		{ 2, { { D(2), D(3) }, { D(1), D(2) } }, 1, { { D(1), D(3) } } }, /* touching */
		{ 2, { { 1, 5 }, { 3, 9 } }, 1, { { 1, 9 } } },
		{ 2, { { 1, 9 }, { 3, 5 } }, 1, { { 1, 9 } } },
		{ 2, { { 1, 2 }, { 3, 4 } }, 2, { { 1, 2 }, { 3, 4 } } },
		{ 3, { { 5, 6 }, { 1, 2 }, { 3, 4 } }, 3, { { 1, 2 }, { 3, 4 }, { 5, 6 } } },
		{ 4, { { 7, 8 }, { 1, 3 }, { 3, 5 }, { 5, 7 } }, 1, { { 1, 8 } } },
		{ 3, { { 1, 2 }, { 1, 2 }, { 1, 2 } }, 1, { { 1, 2 } } },
		{ 3, { { 4, 4 }, { 1, 2 }, { 9, 3 } }, 1, { { 1, 2 } } }, /* empty dropped */
		{ 2, { { 4, 4 }, { 5, 5 } }, 0, { { 0 } } },
		{ 3, { { 1, 10 }, { 2, 3 }, { 4, 12 } }, 1, { { 1, 12 } } },
		{ 2, { { INT64_MIN, 0 }, { 0, INT64_MAX } }, 1, { { INT64_MIN, INT64_MAX } } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct pr_range r[MAXR];
		size_t n;

		memcpy(r, t[i].in, sizeof r);
		n = pr_ranges_coalesce(r, t[i].n);
		assert_int_equal(n, t[i].nout);
		assert_memory_equal(r, t[i].out, n * sizeof r[0]);
	}
	assert_int_equal(pr_ranges_coalesce(NULL, 0), 0);
}

/* Brute-force model on the grid [0, GRID). */
#define GRID 48
#define NMAX 40

static uint64_t rng = 0x9e3779b97f4a7c15u;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static struct pr_range
rnd_range(void)
{
	int64_t s = rnd(GRID), len = rnd(8) == 0 ? -(int64_t)rnd(3) : 1 + rnd(12);

	return (struct pr_range) { s, s + len };
}

static int
by_start(const void *pa, const void *pb)
{
	const struct pr_range *a = pa, *b = pb;

	return (a->start > b->start) - (a->start < b->start);
}

static void
model_check(struct pr_range want, const struct pr_range *ready, size_t nready,
    const struct pr_range *blocked, size_t nblocked)
{
	int cov[GRID + 16] = { 0 };
	struct pr_range gaps[GRID], mgaps[GRID];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = GRID };
	size_t mng = 0, mnb = 0;
	int64_t t;

	for (size_t i = 0; i < nready; i++) {
		for (int64_t x = ready[i].start; x < ready[i].end; x++) {
			cov[x] = 1;
		}
	}
	for (int64_t x = want.start; x < want.end; x++) {
		if (!cov[x] && (x == want.start || cov[x - 1])) {
			mgaps[mng].start = x;
			mgaps[mng].end = x + 1;
			mng++;
		} else if (!cov[x]) {
			mgaps[mng - 1].end = x + 1;
		}
	}
	for (size_t i = 0; i < nblocked; i++) {
		mnb += blocked[i].start < blocked[i].end && blocked[i].start < want.end
		    && blocked[i].end > want.start && want.start < want.end;
	}
	for (t = want.start; t < want.end && cov[t]; t++) {
		int hit = 0;

		for (size_t i = 0; i < nblocked; i++) {
			hit |= blocked[i].start < blocked[i].end && blocked[i].start <= t
			    && blocked[i].end > want.start;
		}
		if (hit) {
			break;
		}
	}
	if (want.start >= want.end) {
		t = want.start;
		mng = 0;
	}

	pr_readiness_eval(want, ready, nready, blocked, nblocked, &r);
	assert_int_equal(r.ngaps, mng);
	assert_memory_equal(gaps, mgaps, mng * sizeof gaps[0]);
	assert_int_equal(r.nblockers, mnb);
	assert_int_equal(r.ready_through, t);
	assert_int_equal(r.ready, want.start < want.end && mng == 0 && mnb == 0);
}

static void
test_readiness_model(void **state)
{
	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		struct pr_range ready[NMAX], blocked[4], copy[NMAX];
		/* Mostly small sets (selection), some large (scratch sort). */
		size_t nready = iter % 5 == 0 ? 17 + rnd(NMAX - 16) : rnd(12);
		size_t nblocked = rnd(4);
		struct pr_range want = rnd_range();

		for (size_t i = 0; i < nready; i++) {
			ready[i] = rnd_range();
		}
		for (size_t i = 0; i < nblocked; i++) {
			blocked[i] = rnd_range();
		}
		memcpy(copy, ready, nready * sizeof ready[0]);
		model_check(want, ready, nready, blocked, nblocked);
		assert_memory_equal(copy, ready, nready * sizeof ready[0]);
		/* The same sets, sorted: the allocation-free linear pass. */
		qsort(ready, nready, sizeof ready[0], by_start);
		model_check(want, ready, nready, blocked, nblocked);
	}
}

static void
test_coalesce_model(void **state)
{
	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		struct pr_range r[NMAX], expect[GRID];
		int cov[GRID + 16] = { 0 };
		size_t n = rnd(NMAX), ne = 0, got;

		for (size_t i = 0; i < n; i++) {
			r[i] = rnd_range();
			for (int64_t x = r[i].start; x < r[i].end; x++) {
				cov[x] = 1;
			}
		}
		for (int64_t x = 0; x < GRID + 16; x++) {
			if (cov[x] && (x == 0 || !cov[x - 1])) {
				expect[ne++] = (struct pr_range) { x, x + 1 };
			} else if (cov[x]) {
				expect[ne - 1].end = x + 1;
			}
		}
		got = pr_ranges_coalesce(r, n);
		assert_int_equal(got, ne);
		assert_memory_equal(r, expect, ne * sizeof r[0]);
	}
}

/* A long query over many hourly partitions, in both orders: fast and exact. */
static void
test_readiness_large(void **state)
{
	const size_t n = 200000;
	const int64_t hour = INT64_C(3600000000);
	struct pr_range *ready = malloc(n * sizeof *ready);
	struct pr_range blocked = { hour * 150000 + 5, hour * 150001 };
	struct pr_range gaps[4];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = 4 };
	const struct pr_range want = { 0, hour * (int64_t)n };

	(void)state;
	assert_non_null(ready);
	for (size_t i = 0; i < n; i++) {
		ready[i] = (struct pr_range) { hour * (int64_t)i, hour * (int64_t)(i + 1) };
	}
	pr_readiness_eval(want, ready, n, &blocked, 1, &r);
	assert_int_equal(r.ngaps, 0);
	assert_int_equal(r.nblockers, 1);
	assert_int_equal(r.ready_through, blocked.start);
	/* Reverse it: the scratch-sort path. */
	for (size_t i = 0; i < n / 2; i++) {
		struct pr_range tmp = ready[i];

		ready[i] = ready[n - 1 - i];
		ready[n - 1 - i] = tmp;
	}
	ready[n / 2].end = ready[n / 2].start + 1; /* a gap */
	pr_readiness_eval(want, ready, n, NULL, 0, &r);
	assert_int_equal(r.ngaps, 1);
	assert_int_equal(r.nblockers, 0);
	assert_int_equal(r.ready_through, ready[n / 2].end);
	assert_int_equal(gaps[0].end, ready[n / 2].start + hour);
	free(ready);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_coalesce_table),
		cmocka_unit_test(test_coalesce_model),
		cmocka_unit_test(test_readiness_table),
		cmocka_unit_test(test_gaps_truncated),
		cmocka_unit_test(test_readiness_model),
		cmocka_unit_test(test_readiness_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
