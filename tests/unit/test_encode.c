/* SPDX-License-Identifier: MIT */
/*
 * Encoder tests. The encoders are checked against the reply/ and state/
 * valid examples under $PARTREG_SCHEMAS/examples/ (which
 * tests/unit/check_schemas.py validates against the schemas), so an encoder
 * output that drifts from its schema fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "examples.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "encode.h"
#include <partreg/error.h>
#include <partreg/time.h>

/* Parse text with json-c; the test fails on anything but an object. */
static struct json_object *
parse_obj(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);

	json_tokener_free(tok);
	if (o == NULL) {
		fail_msg("not JSON: %.*s", (int)len, text);
	}
	return o;
}

/* The encoder output j (consumed) equals the example file, as JSON values. */
static void
assert_matches_example(struct pr_json *j, const char *example)
{
	char path[1024];
	size_t elen, olen;
	char *etext, *out;
	struct json_object *want, *got;

	snprintf(path, sizeof path, "%s/examples/%s", schemas_dir(), example);
	etext = slurp(path, &elen);
	assert_non_null(j);
	out = pr__json_dump(j, &olen);
	pr__json_free(j);
	assert_non_null(out);
	assert_int_equal(strlen(out), olen);
	/* Compact output: no whitespace outside strings (no pretty-printing). */
	assert_null(strstr(out, ": "));
	assert_null(strstr(out, "\n"));
	want = parse_obj(etext, elen);
	got = parse_obj(out, olen);
	if (!json_object_equal(want, got)) {
		fail_msg("%s differs:\n got: %s\nwant: %s", example, out,
		    json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(want);
	json_object_put(got);
	free(out);
	free(etext);
}

static void
assert_text_matches_example(char *text, size_t len, const char *example)
{
	char path[1024];
	size_t elen;
	char *etext;
	struct json_object *want, *got;

	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	snprintf(path, sizeof path, "%s/examples/%s", schemas_dir(), example);
	etext = slurp(path, &elen);
	want = parse_obj(etext, elen);
	got = parse_obj(text, len);
	if (!json_object_equal(want, got)) {
		fail_msg("%s differs:\n got: %s\nwant: %s", example, text,
		    json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(want);
	json_object_put(got);
	free(etext);
}

static struct pr_partition
locked_partition(void)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	strcpy(p.source, "orders");
	strcpy(p.provider, "airflow-etl");
	p.range = (struct pr_range) { T1, T2 };
	p.state = PR_LOCKED;
	p.version = 1;
	p.fence = 7;
	p.since = NOW;
	p.expires_at = NOW + HOUR;
	p.updated_at = NOW;
	p.seq = 42;
	strcpy(p.session, "airflow-worker-3");
	return p;
}

static struct pr_partition
ready_partition(void)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	strcpy(p.source, "orders");
	strcpy(p.provider, "airflow-etl");
	p.range = (struct pr_range) { T0, T1 };
	p.state = PR_READY;
	p.version = 2;
	p.fence = 6;
	p.since = T1 - HOUR;
	p.updated_at = T1 - HOUR;
	p.seq = 40;
	strcpy(p.metadata, "{\"rows\":1200,\"run_id\":\"scheduled__2023-01-01\"}");
	return p;
}

static struct pr_partition
failed_partition(void)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	strcpy(p.source, "orders");
	strcpy(p.provider, "cron-backfill");
	p.range = (struct pr_range) { T2, T3 };
	p.state = PR_FAILED;
	p.version = 0;
	p.fence = 5;
	p.since = T1 + HOUR;
	p.updated_at = T1 + HOUR;
	p.seq = 39;
	strcpy(p.reason, "lease_expired");
	return p;
}

static struct pr_source
orders_source(void)
{
	struct pr_source s;

	memset(&s, 0, sizeof s);
	strcpy(s.name, "orders");
	strcpy(s.owner, "data-platform");
	s.created_at = T0 - 12 * HOUR;
	s.updated_at = NOW;
	s.seq = 42;
	return s;
}

static void
test_encode_partitions(void **state)
{
	struct pr_partition p = locked_partition();
	struct pr_partition r = ready_partition();
	struct pr_partition f = failed_partition();

	(void)state;
	assert_matches_example(pr__json_partition(&p), "reply/partition/valid/locked.json");
	assert_matches_example(
	    pr__json_partition(&r), "reply/partition/valid/ready-with-metadata.json");
	assert_matches_example(pr__json_partition(&f), "reply/partition/valid/failed.json");
	assert_matches_example(
	    pr__json_partition_state(&p, 3), "state/partition/valid/locked.json");

	/* Stored metadata that is not an object is left out, not passed on. */
	strcpy(r.metadata, "[1,2]");
	struct pr_json *j = pr__json_partition(&r);
	char *out = pr__json_dump(j, NULL);
	assert_null(strstr(out, "metadata"));
	free(out);
	pr__json_free(j);
}

static const struct pr_agent_identity agent_identity = { .agent_id = "partregd@host-1",
	.epoch = 3,
	.instance = "0b6c2f3e-8d1a-4c5b-9e7f-2a4d6c8e0f13",
	.store = "5f0d7c1b9a2e4f6d8c0b1a3e5d7f9c2b" };

static void
test_encode_exact_text(void **state)
{
	struct pr_json *j;
	size_t len;
	char *out;

	(void)state;
	j = pr__json_agent_status("online", &agent_identity, NOW, 0);
	out = pr__json_dump(j, &len);
	assert_string_equal(out,
	    "{\"status\":\"online\",\"agent_id\":\"partregd@host-1\","
	    "\"version\":\"" PR_VERSION_STRING "\",\"epoch\":3,"
	    "\"instance\":\"0b6c2f3e-8d1a-4c5b-9e7f-2a4d6c8e0f13\","
	    "\"store\":\"5f0d7c1b9a2e4f6d8c0b1a3e5d7f9c2b\","
	    "\"at\":\"2023-01-02T03:04:05.123456Z\"}");
	assert_int_equal(len, strlen(out));
	free(out);
	pr__json_free(j);

	/* Canonical times: whole seconds carry no fraction; "/" is not escaped. */
	struct pr_event ev;
	memset(&ev, 0, sizeof ev);
	ev.seq = 1;
	ev.at = T0;
	strcpy(ev.type, "source_registered");
	strcpy(ev.source, "a/b");
	j = pr__json_event(&ev, 1);
	out = pr__json_dump(j, NULL);
	assert_string_equal(out,
	    "{\"seq\":1,\"epoch\":1,\"at\":\"2023-01-01T00:00:00Z\","
	    "\"type\":\"source_registered\",\"source\":\"a/b\"}");
	free(out);
	pr__json_free(j);

	/* set_* helpers; big u64 exact. */
	j = pr__json_array();
	pr__json_append(j, pr__json_array());
	struct pr_json *page = pr__json_page(j, "");
	pr__json_set_u64(page, "n", UINT64_MAX);
	pr__json_set_str(page, "s", "\"q\"\n");
	pr__json_set_bool(page, "b", 5);
	out = pr__json_dump(page, NULL);
	assert_string_equal(out,
	    "{\"items\":[[]],\"next_cursor\":null,"
	    "\"n\":18446744073709551615,\"s\":\"\\\"q\\\"\\n\",\"b\":true}");
	free(out);
	pr__json_free(page);
	pr__json_free(NULL);
}

static void
test_encode_state(void **state)
{
	struct pr_source s = orders_source();
	struct pr_partition lp = locked_partition(), fp = failed_partition();
	struct pr_run blocked[3];
	struct pr_range ready[1] = { { T0, T1 } };
	struct pr_event ev;

	(void)state;
	/* A run of one carries its partition's since, lease and reason; a run
	 * of 30 pending days only its range and count. */
	memset(blocked, 0, sizeof blocked);
	blocked[0] = (struct pr_run) { lp.range, "", lp.state, 1, lp.since, lp.expires_at, "" };
	strcpy(blocked[0].provider, lp.provider);
	blocked[1] = (struct pr_run) { fp.range, "", fp.state, 1, fp.since, 0, "" };
	strcpy(blocked[1].provider, fp.provider);
	strcpy(blocked[1].reason, fp.reason);
	blocked[2] = (struct pr_run) { { T2 + 24 * HOUR, T2 + 31 * 24 * HOUR }, "", PR_PENDING, 30,
		0, 0, "" };
	strcpy(blocked[2].provider, "airflow-etl");
	assert_matches_example(
	    pr__json_summary(&s, 3, ready, 1, blocked, 3, 0), "state/summary/valid/orders.json");

	s.seq = 1;
	s.updated_at = T0;
	assert_matches_example(
	    pr__json_summary(&s, 1, NULL, 0, NULL, 0, 0), "state/summary/valid/new-source.json");

	memset(&ev, 0, sizeof ev);
	ev.seq = 41;
	ev.at = T1 - HOUR;
	strcpy(ev.type, "unlocked");
	strcpy(ev.source, "orders");
	strcpy(ev.provider, "airflow-etl");
	ev.range = (struct pr_range) { T0, T1 };
	ev.state = PR_READY;
	ev.fence = 6;
	ev.version = 2;
	assert_matches_example(pr__json_event(&ev, 3), "state/event/valid/unlocked.json");
	/* P/events/<source>: a batch of one is still the array form. */
	{
		struct pr_json *batch = pr__json_array();

		pr__json_append(batch, pr__json_event(&ev, 3));
		assert_matches_example(
		    pr__json_events("orders", 3, batch), "state/events/valid/unlocked.json");
	}

	memset(&ev, 0, sizeof ev);
	ev.seq = 1;
	ev.at = T0 - 12 * HOUR;
	strcpy(ev.type, "source_registered");
	strcpy(ev.source, "orders");
	assert_matches_example(pr__json_event(&ev, 1), "state/event/valid/source-registered.json");

	/* One group commit, two events of the source: one message, seq order. */
	{
		struct pr_json *batch = pr__json_array();

		memset(&ev, 0, sizeof ev);
		ev.seq = 41;
		ev.at = NOW;
		strcpy(ev.type, "registered");
		strcpy(ev.source, "orders");
		strcpy(ev.provider, "airflow-etl");
		ev.range = (struct pr_range) { T1, T2 };
		ev.state = PR_PENDING;
		pr__json_append(batch, pr__json_event(&ev, 3));
		ev.seq = 42;
		strcpy(ev.type, "locked");
		ev.state = PR_LOCKED;
		ev.fence = 7;
		pr__json_append(batch, pr__json_event(&ev, 3));
		assert_matches_example(pr__json_events("orders", 3, batch),
		    "state/events/valid/registered-and-locked.json");
	}

	assert_matches_example(pr__json_agent_status("online", &agent_identity, NOW, 0),
	    "state/agent-status/valid/online.json");
	assert_matches_example(pr__json_agent_status("offline", &agent_identity, NOW, 1),
	    "state/agent-status/valid/last-will.json");
	{
		struct pr_agent_identity t = agent_identity;

		t.takeover = 1;
		assert_matches_example(pr__json_agent_status("online", &t, NOW, 0),
		    "state/agent-status/valid/takeover.json");
	}

	struct pr_agent_stats st = { .agent_id = "partregd@host-1",
		.epoch = 3,
		.at = NOW,
		.started_at = NOW - 3600 * INT64_C(1000000),
		.commands = 120,
		.refused = 4,
		.replayed = 2,
		.retained_dropped = 1,
		.queue_bytes = 65600,
		.queue_peak_bytes = 67174400,
		.queue_max = 10000,
		.queue_max_bytes = 67108864,
		.queue_full_waits = 12,
		.queue_over_limit = 3,
		.other_agents = 0,
		.batches = 37,
		.leases_expired = 1,
		.commit_ms_last = 0.25,
		.commit_ms_max = 1.5,
		.store_used_bytes = 1048576,
		.store_map_bytes = UINT64_C(17179869184),
		.store_readers = 1 };
	assert_matches_example(pr__json_agent_stats(&st), "state/agent-stats/valid/running.json");
}

static void
test_encode_results(void **state)
{
	struct pr_source s = orders_source();
	struct pr_provider pv;
	struct pr_partition p = locked_partition();
	struct pr_partition r = ready_partition();
	struct pr_range gaps[4];
	struct pr_readiness rd;
	struct pr_json *items;

	(void)state;
	assert_matches_example(pr__json_source(&s, "6f1c7a52-3b0e-4d8c-9a41-2f5e8c7d9b10"),
	    "reply/source/valid/registered.json");
	assert_matches_example(pr__json_source(&s, NULL), "reply/source/valid/get.json");
	assert_matches_example(pr__json_resync(NULL), "reply/resync/valid/all.json");
	assert_matches_example(pr__json_resync("orders"), "reply/resync/valid/source.json");

	memset(&pv, 0, sizeof pv);
	strcpy(pv.name, "airflow-etl");
	pv.created_at = NOW;
	assert_matches_example(
	    pr__json_provider("orders", &pv, "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e1f"),
	    "reply/provider/valid/registered.json");

	memset(&rd, 0, sizeof rd);
	rd.gaps = gaps;
	rd.gaps_cap = 4;
	rd.ngaps = 1;
	gaps[0] = (struct pr_range) { T1, T2 };
	rd.nblockers = 1;
	rd.ready_through = T1;
	assert_matches_example(
	    pr__json_readiness("orders", (struct pr_range) { T0, T2 }, &rd, &p, 1, 42),
	    "reply/readiness/valid/blocked.json");

	memset(&rd, 0, sizeof rd);
	rd.gaps = gaps;
	rd.gaps_cap = 4;
	rd.ready = 1;
	rd.ready_through = T1;
	assert_matches_example(
	    pr__json_readiness("orders", (struct pr_range) { T0, T1 }, &rd, NULL, 0, 42),
	    "reply/readiness/valid/ready.json");

	memset(&rd, 0, sizeof rd);
	rd.gaps = gaps;
	rd.gaps_cap = 4;
	rd.ngaps = 1;
	rd.ready_through = T1; /* == start: null */
	assert_matches_example(
	    pr__json_readiness("orders", (struct pr_range) { T1, T2 }, &rd, NULL, 0, 42),
	    "reply/readiness/valid/nothing-ready.json");

	/* More gaps or blockers than were passed: truncated. */
	rd.gaps_cap = 0;
	rd.ngaps = 3;
	struct pr_json *j
	    = pr__json_readiness("orders", (struct pr_range) { T1, T2 }, &rd, NULL, 0, 1);
	char *out = pr__json_dump(j, NULL);
	assert_non_null(strstr(out, "\"gaps\":[]"));
	assert_non_null(strstr(out, "\"truncated\":true"));
	free(out);
	pr__json_free(j);

	items = pr__json_array();
	pr__json_append(items, pr__json_partition(&r));
	pr__json_append(items, pr__json_partition(&p));
	assert_matches_example(
	    pr__json_page(items, "eyJrIjoiMjAyMyJ9"), "reply/page/valid/partitions.json");
	items = pr__json_array();
	pr__json_append(items, pr__json_source(&s, NULL));
	assert_matches_example(pr__json_page(items, NULL), "reply/page/valid/last-page.json");
}

/* What a session/abort leaves: the lock failed, its lease gone. */
static struct pr_partition
aborted_partition(struct pr_range r, uint64_t fence, uint64_t version, uint64_t seq)
{
	struct pr_partition p = locked_partition();

	p.range = r;
	p.state = PR_FAILED;
	p.fence = fence;
	p.version = version;
	p.since = T1 + 3 * HOUR + HOUR / 2;
	p.updated_at = p.since;
	p.expires_at = 0;
	p.seq = seq;
	strcpy(p.reason, "session_aborted");
	return p;
}

static void
test_encode_lease_and_history_results(void **state)
{
	struct pr_partition a = aborted_partition((struct pr_range) { T1, T2 }, 7, 1, 43);
	struct pr_partition b = aborted_partition((struct pr_range) { T2, T3 }, 8, 0, 44);
	struct pr_partition tomb = ready_partition();
	struct pr_event ev;
	struct pr_json *arr;
	char *out;

	(void)state;
	arr = pr__json_array();
	pr__json_append(arr, pr__json_partition(&a));
	pr__json_append(arr, pr__json_partition(&b));
	assert_matches_example(pr__json_session_abort("airflow-worker-3", arr, 0),
	    "reply/session-abort/valid/two-failed.json");
	assert_matches_example(pr__json_session_abort("airflow-worker-9", pr__json_array(), 0),
	    "reply/session-abort/valid/nothing-held.json");
	assert_matches_example(pr__json_session_abort("airflow-worker-9", NULL, NOW),
	    "reply/session-abort/valid/deferred.json");
	/* NULL partitions: an empty array, not a missing member. */
	struct pr_json *j = pr__json_session_abort("w", NULL, 0);
	out = pr__json_dump(j, NULL);
	assert_string_equal(out, "{\"session\":\"w\",\"failed\":[]}");
	free(out);
	pr__json_free(j);

	/* history/query: events as on P/events/<source>, then the cursor. */
	arr = pr__json_array();
	memset(&ev, 0, sizeof ev);
	ev.seq = 42;
	ev.at = NOW;
	strcpy(ev.type, "locked");
	strcpy(ev.source, "orders");
	strcpy(ev.provider, "airflow-etl");
	ev.range = (struct pr_range) { T1, T2 };
	ev.state = PR_LOCKED;
	ev.fence = 7;
	ev.version = 1;
	pr__json_append(arr, pr__json_event(&ev, 3));
	ev.seq = 43;
	ev.at = a.since;
	strcpy(ev.type, "failed");
	ev.state = PR_FAILED;
	strcpy(ev.reason, "session_aborted");
	pr__json_append(arr, pr__json_event(&ev, 3));
	assert_matches_example(
	    pr__json_history(arr, "eyJzIjo0M30"), "reply/history/valid/page.json");
	assert_matches_example(
	    pr__json_history(pr__json_array(), ""), "reply/history/valid/last-page.json");
	assert_matches_example(pr__json_history(NULL, NULL), "reply/history/valid/last-page.json");

	/* partition/delete's tombstone: the partition with state "deleted". */
	tomb.state = PR_DELETED;
	tomb.since = NOW;
	tomb.updated_at = NOW;
	tomb.seq = 43;
	tomb.metadata[0] = '\0';
	assert_matches_example(pr__json_partition(&tomb), "reply/partition/valid/deleted.json");
	assert_matches_example(
	    pr__json_partition_state(&tomb, 3), "state/partition/valid/deleted-tombstone.json");
}

static void
test_reply_envelopes(void **state)
{
	struct pr_partition p = locked_partition();
	size_t len, len2;
	char *ok, *again, *out;

	(void)state;
	ok = pr__reply_encode(0, NULL, "lock-orders-20230102", NULL, pr__json_partition(&p), &len);
	assert_text_matches_example(ok, len, "reply/envelope/valid/ok-partition.json");

	again = pr__reply_replayed(ok, len, "c-10", &len2);
	assert_text_matches_example(again, len2, "reply/envelope/valid/replayed.json");
	free(again);
	/* Replaying a replay with no correlation_id drops the old one. */
	again = pr__reply_replayed(ok, len, NULL, &len2);
	assert_null(strstr(again, "correlation_id"));
	assert_non_null(strstr(again, "\"replayed\":true"));
	free(again);
	free(ok);
	assert_null(pr__reply_replayed("[1]", 3, "c", &len2));
	assert_null(pr__reply_replayed("{\"ok\":", 6, "c", &len2));

	out = pr__reply_encode(0, NULL, NULL, NULL, NULL, &len);
	assert_string_equal(out, "{\"ok\":true,\"status\":200,\"result\":{}}");
	assert_text_matches_example(out, len, "reply/envelope/valid/ok-empty-result.json");
	free(out);

	out = pr__reply_encode(
	    PR_EMISSING, "field 'end' is required for partition/lock", "r-2", "c-9", NULL, &len);
	assert_text_matches_example(out, len, "reply/envelope/valid/error-missing-field.json");
	free(out);

	/* Default message, and a result passed with an error becomes details. */
	out = pr__reply_encode(PR_ELOCKED, NULL, NULL, NULL, NULL, &len);
	assert_string_equal(out,
	    "{\"ok\":false,\"status\":409,\"error\":{\"code\":\"already_locked\","
	    "\"message\":\"the partition is locked by another run\"}}");
	free(out);

	struct pr_json *det = pr__json_page(NULL, NULL);
	out = pr__reply_encode(PR_ELOCKED, NULL, NULL, NULL, det, &len);
	assert_non_null(strstr(out, "\"details\":{\"items\":[],\"next_cursor\":null}"));
	free(out);

	/* The store lost its answer: in doubt, said in details. */
	out = pr__reply_encode(PR_EINDOUBT, NULL, "r-3", NULL, NULL, &len);
	assert_text_matches_example(out, len, "reply/envelope/valid/error-in-doubt.json");
	free(out);

	/* An errno value maps to internal / 500. */
	out = pr__reply_encode(-5, NULL, NULL, NULL, NULL, &len);
	assert_non_null(strstr(out, "\"status\":500"));
	assert_non_null(strstr(out, "\"code\":\"internal\""));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_partitions),
		cmocka_unit_test(test_encode_exact_text),
		cmocka_unit_test(test_encode_state),
		cmocka_unit_test(test_encode_results),
		cmocka_unit_test(test_encode_lease_and_history_results),
		cmocka_unit_test(test_reply_envelopes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
