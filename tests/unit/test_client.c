/* SPDX-License-Identifier: MIT */
/*
 * Client-side readiness: a retained summary, parsed and evaluated locally,
 * must give the agent's answer. The summaries here are what the agent
 * publishes (see schemas/examples/state/summary/).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <partreg/client.h>

#include <partreg/error.h>
#include <partreg/time.h>

static const char summary[]
    = "{\"source\":\"orders\",\"owner\":\"team\",\"seq\":42,\"epoch\":3,"
      "\"updated_at\":\"2023-01-05T10:00:00Z\","
      "\"ready\":[[\"2023-01-01T00:00:00Z\",\"2023-01-03T00:00:00Z\"],"
      "[\"2023-01-04T00:00:00Z\",\"2023-01-05T00:00:00Z\"]],"
      "\"blocked\":[{\"start\":\"2023-01-02T00:00:00Z\",\"end\":\"2023-01-02T12:00:00Z\","
      "\"provider\":\"late\",\"state\":\"locked\",\"since\":\"2023-01-05T09:00:00Z\","
      "\"expires_at\":\"2023-01-05T10:00:00Z\"}],"
      "\"truncated\":false}";

static int64_t
t(const char *s)
{
	int64_t v;

	assert_int_equal(pr_time_parse(s, strlen(s), &v), 0);
	return v;
}

static void
test_parse(void **state)
{
	struct pr_summary s;

	(void)state;
	assert_int_equal(pr_summary_parse(summary, strlen(summary), &s), 0);
	assert_string_equal(s.source, "orders");
	assert_int_equal(s.seq, 42);
	assert_int_equal(s.epoch, 3);
	assert_false(s.truncated);
	assert_int_equal(s.nready, 2);
	assert_true(s.ready[1].start == t("2023-01-04T00:00:00Z"));
	assert_int_equal(s.nblocked, 1);
	assert_string_equal(s.blocked[0].provider, "late");
	assert_string_equal(s.blocked[0].state, "locked");
	assert_true(s.blocked[0].expires_at == t("2023-01-05T10:00:00Z"));
	pr_summary_release(&s);
}

static void
test_readiness(void **state)
{
	static const struct {
		const char *a, *b;
		int ready;
		const char *through; /* NULL: == a */
		size_t ngaps, nblockers;
	} rows[] = {
		{ "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", 1, "2023-01-02T00:00:00Z", 0, 0 },
		/* the locked half-day blocks, though covered */
		{ "2023-01-01T00:00:00Z", "2023-01-03T00:00:00Z", 0, "2023-01-02T00:00:00Z", 0, 1 },
		{ "2023-01-02T12:00:00Z", "2023-01-03T00:00:00Z", 1, "2023-01-03T00:00:00Z", 0, 0 },
		/* a gap on the 3rd */
		{ "2023-01-02T12:00:00Z", "2023-01-05T00:00:00Z", 0, "2023-01-03T00:00:00Z", 1, 0 },
		{ "2023-01-06T00:00:00Z", "2023-01-07T00:00:00Z", 0, NULL, 1, 0 },
	};
	struct pr_summary s;

	(void)state;
	assert_int_equal(pr_summary_parse(summary, strlen(summary), &s), 0);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pr_range gaps[8];
		struct pr_readiness r = { .gaps = gaps, .gaps_cap = 8 };
		struct pr_range want = { t(rows[i].a), t(rows[i].b) };

		pr_summary_readiness(&s, want, &r);
		assert_int_equal(r.ready, rows[i].ready);
		assert_int_equal(r.ngaps, rows[i].ngaps);
		assert_int_equal(r.nblockers, rows[i].nblockers);
		assert_true(
		    r.ready_through == (rows[i].through != NULL ? t(rows[i].through) : want.start));
	}
	pr_summary_release(&s);
}

/*
 * libpartreg's pr_time_parse takes a date alone as that day's midnight, UTC,
 * as the agent and the CLI do, so a program can ask for "2023-01-01" ..
 * "2023-01-03" and get the agent's answer from the summary.
 */
static void
test_date_alone(void **state)
{
	static const char *const bad[] = { "2023-1-1", "2023-02-30", "2023-02-29", "2023-13-01",
		"0000-01-01", "2023-01-01T", "2023-01-01Z", "20230101" };
	struct pr_range gaps[8];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = 8 };
	struct pr_summary s;
	int64_t v = 42;

	(void)state;
	assert_true(t("2023-01-01") == t("2023-01-01T00:00:00Z"));
	assert_true(t("2024-02-29") == t("2024-02-29 00:00:00"));
	assert_true(t("0001-01-01") == PR_TIME_MIN);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(pr_time_parse(bad[i], strlen(bad[i]), &v), PR_ETIME);
		assert_int_equal(v, 42);
	}

	assert_int_equal(pr_summary_parse(summary, strlen(summary), &s), 0);
	pr_summary_readiness(&s, (struct pr_range) { t("2023-01-02"), t("2023-01-05") }, &r);
	assert_false(r.ready);
	assert_int_equal(r.ngaps, 1);
	assert_true(gaps[0].start == t("2023-01-03T00:00:00Z") && gaps[0].end == t("2023-01-04"));
	pr_summary_readiness(&s, (struct pr_range) { t("2023-01-04"), t("2023-01-05") }, &r);
	assert_true(r.ready);
	assert_true(r.ready_through == t("2023-01-05T00:00:00Z"));
	pr_summary_release(&s);
}

/* A file of $PARTREG_SCHEMAS/examples/, NUL-terminated, in a static buffer. */
static char *
example(const char *rel)
{
	const char *dir = getenv("PARTREG_SCHEMAS");
	char path[1024];
	static char buf[65536];
	size_t n;
	FILE *f;

	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/examples/%s", dir, rel);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/*
 * Format 2, the agent's own example: runs with counts; a run of 30 pending
 * days blocks any window that touches one of its days, and only the run of
 * one carries since. The format-1 summary above reads as runs of one.
 */
static void
test_runs(void **state)
{
	const char *json = example("state/summary/valid/orders.json");
	struct pr_range gaps[8];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = 8 };
	struct pr_summary s;

	(void)state;
	assert_int_equal(pr_summary_parse(json, strlen(json), &s), 0);
	assert_int_equal(s.v, 2);
	assert_int_equal(s.nblocked, 3);
	assert_int_equal(s.blocked[0].count, 1);
	assert_true(s.blocked[0].since != 0);
	assert_string_equal(s.blocked[2].state, "pending");
	assert_int_equal(s.blocked[2].count, 30);
	assert_true(s.blocked[2].since == 0);
	assert_true(s.blocked[2].range.start == t("2023-01-04"));
	assert_true(s.blocked[2].range.end == t("2023-02-03"));
	pr_summary_readiness(&s, (struct pr_range) { t("2023-01-20"), t("2023-01-21") }, &r);
	assert_false(r.ready);
	assert_int_equal(r.nblockers, 1);
	pr_summary_readiness(&s, (struct pr_range) { t("2023-01-01"), t("2023-01-02") }, &r);
	assert_true(r.ready);
	pr_summary_release(&s);

	assert_int_equal(pr_summary_parse(summary, strlen(summary), &s), 0);
	assert_int_equal(s.v, 1);
	assert_int_equal(s.blocked[0].count, 1);
	pr_summary_release(&s);
}

static void
test_refused(void **state)
{
	static const char *bad[] = {
		"",
		"[]",
		"{\"ready\":[]}",
		"{\"ready\":[[\"2023-01-01T00:00:00Z\"]],\"blocked\":[]}",
		"{\"ready\":[[\"2023-13-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"]],\"blocked\":[]}",
		"{\"ready\":[],\"blocked\":[7]}",
		/* a format this reader does not know, and a run of none */
		"{\"v\":3,\"ready\":[],\"blocked\":[]}",
		"{\"v\":0,\"ready\":[],\"blocked\":[]}",
		"{\"v\":2,\"ready\":[],\"blocked\":[{\"start\":\"2023-01-01T00:00:00Z\","
		"\"end\":\"2023-01-02T00:00:00Z\",\"provider\":\"p\",\"state\":\"pending\","
		"\"count\":0}]}",
	};
	struct pr_summary s;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_not_equal(pr_summary_parse(bad[i], strlen(bad[i]), &s), 0);
		assert_null(s.ready);
	}
}

/* A request_id the agent would refuse is refused before anything is sent:
 * the agent's refusal could not name it, so no reply would ever match. */
static void
test_bad_request_id(void **state)
{
	static const char *const bad[] = {
		"{\"request_id\":\"\"}",
		"{\"request_id\":\"tab\\there\"}",
		"{\"request_id\":\"\u00e9t\u00e9\"}",
		"{\"request_id\":"
		"\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
	};
	struct pr_client_opts o = { .broker = "mqtt://127.0.0.1:1" };
	struct pr_client *c;
	char *reply = NULL;

	(void)state;
	assert_int_equal(pr_client_open(&o, &c), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    pr_client_request(c, "source/get", bad[i], 50, 0, &reply), PR_EFIELD);
		assert_null(reply);
	}
	assert_int_equal(
	    pr_client_request(c, "source/get", "{\"request_id\":7}", 50, 0, &reply), PR_EJSON);
	/* A good one is sent (and, with no broker, times out). */
	assert_int_equal(
	    pr_client_request(c, "source/get", "{\"request_id\":\"ok-1\"}", 50, 0, &reply),
	    -ETIMEDOUT);
	pr_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_readiness),
		cmocka_unit_test(test_date_alone),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_bad_request_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
