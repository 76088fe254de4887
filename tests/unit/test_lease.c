/* SPDX-License-Identifier: MIT */
/* Lease rules as tables of explicit times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <partreg/error.h>
#include "lease.h"

#define S  INT64_C(1000000)
#define T0 (INT64_C(1700000000) * S)

static void
test_deadline(void **state)
{
	const struct pr_lease_policy pol = { .default_s = 3600, .max_s = 86400 };
	static const struct {
		int has_ttl;
		int64_t ttl, now;
		int rc;
		int64_t want;
	} rows[] = {
		{ 0, 0, T0, 0, T0 + 3600 * S }, /* no ttl: the default */
		{ 1, 1, T0, 0, T0 + 1 * S },    /* shortest */
		{ 1, 30, T0, 0, T0 + 30 * S },
		{ 1, 86400, T0, 0, T0 + 86400 * S }, /* the maximum itself */
		{ 1, 86401, T0, PR_EFIELD, 0 },      /* over the maximum */
		{ 1, 0, T0, PR_EFIELD, 0 }, { 1, -5, T0, PR_EFIELD, 0 },
		{ 1, 10, -100 * S, 0, -90 * S }, /* before 1970 is just arithmetic */
	};
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int64_t got = 0;
		int rc = pr__lease_deadline(
		    &pol, rows[i].has_ttl, rows[i].ttl, rows[i].now, &got, msg);

		assert_int_equal(rc, rows[i].rc);
		if (rc == 0) {
			assert_true(got == rows[i].want);
		} else {
			assert_non_null(strstr(msg, "86400"));
		}
	}
}

static void
test_expired(void **state)
{
	static const struct {
		enum pr_pstate st;
		int64_t expires_at, now;
		int want;
	} rows[] = {
		{ PR_LOCKED, T0, T0 - 1, 0 }, /* one microsecond before */
		{ PR_LOCKED, T0, T0, 1 },     /* at the deadline: over */
		{ PR_LOCKED, T0, T0 + S, 1 },
		{ PR_LOCKED, 0, T0, 0 },     /* no lease */
		{ PR_READY, T0, T0 + S, 0 }, /* only locks expire */
		{ PR_PENDING, T0, T0 + S, 0 },
		{ PR_FAILED, T0, T0 + S, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pr_partition p;

		memset(&p, 0, sizeof p);
		p.state = rows[i].st;
		p.expires_at = rows[i].expires_at;
		assert_int_equal(pr__lease_expired(&p, rows[i].now), rows[i].want);
	}
}

static void
test_wait(void **state)
{
	static const struct {
		int64_t next, now, max, want;
	} rows[] = {
		{ 0, T0, S, S },                /* no lease: the longest sleep */
		{ T0 + 10 * S, T0, S, S },      /* far away: capped */
		{ T0 + 250000, T0, S, 250000 }, /* soon: exactly until it */
		{ T0, T0, S, 0 },               /* due now */
		{ T0 - S, T0, S, 0 },           /* overdue */
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		assert_true(
		    pr__lease_wait_us(rows[i].next, rows[i].now, rows[i].max) == rows[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
