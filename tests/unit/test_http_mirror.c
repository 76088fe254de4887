/* SPDX-License-Identifier: MIT */
/*
 * http/mirror.c: retained messages fed through pr_http_mirror_message as
 * the MQTT receive thread gives them, then what the queries answer.
 *
 * readiness is checked three ways: against the agent's own example reply
 * (schemas/examples/reply/readiness/valid/blocked.json, from the summary
 * and partition state examples), against the shared readiness vectors
 * (tests/vectors/readiness.json, each turned into the retained messages an
 * agent would publish), and by the cases where the mirror must not answer
 * and the agent is asked (1).
 *
 * Times are small fixed instants; prune takes now as an argument, so no
 * test sleeps except the watcher reads that wait on purpose.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include <json-c/json.h>

#include <partreg/client.h>
#include <partreg/interval.h>
#include <partreg/time.h>

#include "examples.h"
#include "buf.h"
#include "mirror.h"

#define P   "partreg/v1"
#define DAY INT64_C(86400000000)
#define SEC INT64_C(1000000)

/* ---- feeding the mirror ---- */

static void
put(struct pr_http_mirror *m, const char *topic, const char *payload)
{
	pr_http_mirror_message(m, topic, payload, strlen(payload));
}

static void
summary(struct pr_http_mirror *m, const char *source, uint64_t seq, uint64_t epoch,
    const char *ready, const char *blocked, int truncated)
{
	char topic[512], body[8192];

	snprintf(topic, sizeof topic, P "/state/%s", source);
	snprintf(body, sizeof body,
	    "{\"v\":2,\"source\":\"%s\",\"owner\":\"team\",\"seq\":%llu,\"epoch\":%llu,"
	    "\"updated_at\":\"2023-01-01T00:00:00Z\",\"ready\":%s,\"blocked\":%s,"
	    "\"truncated\":%s}",
	    source, (unsigned long long)seq, (unsigned long long)epoch, ready, blocked,
	    truncated ? "true" : "false");
	put(m, topic, body);
}

static void
part_topic(
    char *topic, size_t cap, const char *source, int64_t start, int64_t end, const char *provider)
{
	char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];

	snprintf(topic, cap, P "/state/%s/partitions/%s/%s/%s", source, pr_time_format(start, a),
	    pr_time_format(end, b), provider);
}

/* A partition state as the agent retains it; since = start + 1 s. */
static void
part_since(struct pr_http_mirror *m, const char *source, const char *provider, int64_t start,
    int64_t end, const char *state, uint64_t seq, uint64_t epoch, int64_t since)
{
	char topic[1024], body[2048], a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ], c[PR_TIME_BUFSZ];

	part_topic(topic, sizeof topic, source, start, end, provider);
	snprintf(body, sizeof body,
	    "{\"source\":\"%s\",\"provider\":\"%s\",\"start\":\"%s\",\"end\":\"%s\","
	    "\"state\":\"%s\",\"version\":1,\"fence\":1,\"since\":\"%s\","
	    "\"updated_at\":\"%s\",\"seq\":%llu,\"epoch\":%llu}",
	    source, provider, pr_time_format(start, a), pr_time_format(end, b), state,
	    pr_time_format(since, c), c, (unsigned long long)seq, (unsigned long long)epoch);
	put(m, topic, body);
}

static void
part(struct pr_http_mirror *m, const char *source, const char *provider, int64_t start, int64_t end,
    const char *state, uint64_t seq)
{
	part_since(m, source, provider, start, end, state, seq, 1, start + SEC);
}

static void
part_clear(
    struct pr_http_mirror *m, const char *source, const char *provider, int64_t start, int64_t end)
{
	char topic[1024];

	part_topic(topic, sizeof topic, source, start, end, provider);
	pr_http_mirror_message(m, topic, "", 0);
}

static struct pr_http_mirror *
mirror(void)
{
	struct pr_http_mirror *m;

	assert_int_equal(pr_http_mirror_new(P, &m), 0);
	return m;
}

/* ---- reading answers ---- */

static struct json_object *
parse(char *text)
{
	struct json_object *o;

	assert_non_null(text);
	o = json_tokener_parse(text);
	if (o == NULL) {
		fail_msg("not JSON: %s", text);
	}
	free(text);
	return o;
}

static const char *
str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

static int64_t
num(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_int64(v);
}

/* The "seq" of each element of a JSON array, into out. */
static size_t
seqs(struct json_object *a, int64_t *out, size_t cap)
{
	size_t n = json_object_array_length(a);

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		out[i] = num(json_object_array_get_idx(a, i), "seq");
	}
	return n;
}

static struct pr_range
R(int64_t a, int64_t b) {
	struct pr_range r = { a, b };
	return r;
}

static int
readiness(
    struct pr_http_mirror *m, const char *source, int64_t a, int64_t b, struct json_object **out)
{
	char *text = NULL;
	int rc = pr_http_mirror_readiness(m, source, R(a, b), &text);

	*out = NULL;
	if (rc == 0) {
		*out = parse(text);
	} else {
		assert_null(text);
	}
	return rc;
}

/* Every byte queued for w now. */
static char *
drain(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	static char all[1 << 16];
	size_t n = 0;
	long k;

	while ((k = pr_http_watch_read(m, w, all + n, 7, 0)) > 0) {
		n += (size_t)k;
		assert_true(n + 7 < sizeof all);
	}
	assert_int_equal(k, 0);
	all[n] = '\0';
	return all;
}

/* ---- messages ---- */

static void
test_summaries_listed_by_name(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *a;
	char *s;

	(void)state;
	summary(m, "zeta", 1, 1, "[]", "[]", 0);
	summary(m, "alpha", 7, 1, "[]", "[]", 0);
	summary(m, "mid", 3, 1, "[]", "[]", 0);
	a = parse(pr_http_mirror_summaries_json(m));
	assert_int_equal(json_object_array_length(a), 3);
	assert_string_equal(str(json_object_array_get_idx(a, 0), "source"), "alpha");
	assert_string_equal(str(json_object_array_get_idx(a, 1), "source"), "mid");
	assert_string_equal(str(json_object_array_get_idx(a, 2), "source"), "zeta");
	json_object_put(a);
	/* Verbatim: the retained bytes, not a re-encoding. */
	put(m, P "/state/alpha",
	    "{ \"v\": 2, \"source\": \"alpha\", \"seq\": 8, \"epoch\": 1, \"updated_at\": "
	    "\"2023-01-01T00:00:00Z\", \"ready\": [], \"blocked\": [], \"truncated\": false }");
	s = pr_http_mirror_summary_json(m, "alpha");
	assert_non_null(s);
	assert_non_null(strstr(s, "{ \"v\": 2, \"source\": \"alpha\", \"seq\": 8,"));
	free(s);
	assert_null(pr_http_mirror_summary_json(m, "nobody"));
	pr_http_mirror_free(m);
}

static void
test_stale_copies_dropped(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *o, *a;
	int known;
	int64_t got[8];

	(void)state;
	summary(m, "s", 5, 2, "[]", "[]", 0);
	summary(m, "s", 4, 2, "[]", "[]", 0); /* older seq, same epoch */
	summary(m, "s", 9, 1, "[]", "[]", 0); /* older epoch, higher seq */
	o = parse(pr_http_mirror_summary_json(m, "s"));
	assert_int_equal(num(o, "seq"), 5);
	json_object_put(o);
	summary(m, "s", 5, 2, "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"]]", "[]", 0);
	o = parse(pr_http_mirror_summary_json(m, "s"));
	assert_int_equal(json_object_array_length(json_object_object_get(o, "ready")), 1);
	json_object_put(o);
	summary(m, "s", 1, 3, "[]", "[]", 0); /* a new epoch starts seq again */
	o = parse(pr_http_mirror_summary_json(m, "s"));
	assert_int_equal(num(o, "seq"), 1);
	json_object_put(o);

	part_since(m, "s", "p", T0, T1, "pending", 10, 2, T0);
	part_since(m, "s", "p", T0, T1, "locked", 9, 2, T0);  /* stale */
	part_since(m, "s", "p", T0, T1, "locked", 99, 1, T0); /* stale */
	a = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &known));
	assert_int_equal(seqs(a, got, 8), 1);
	assert_int_equal(got[0], 10);
	assert_string_equal(str(json_object_array_get_idx(a, 0), "state"), "pending");
	json_object_put(a);
	part_since(m, "s", "p", T0, T1, "locked", 11, 2, T0);
	a = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &known));
	assert_string_equal(str(json_object_array_get_idx(a, 0), "state"), "locked");
	json_object_put(a);
	pr_http_mirror_free(m);
}

static void
test_empty_payloads_clear(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_agent ag;
	struct pr_http_gauge *g;
	char *s;
	int known;

	(void)state;
	summary(m, "s", 1, 1, "[]", "[]", 0);
	part(m, "s", "p", T0, T1, "pending", 1);
	put(m, P "/agent/status", "{\"status\":\"online\",\"at\":\"2023-01-01T00:00:00Z\"}");
	put(m, P "/agent/stats", "{\"uptime_s\":5}");

	pr_http_mirror_message(m, P "/state/s", "", 0);
	assert_null(pr_http_mirror_summary_json(m, "s"));
	s = pr_http_mirror_summaries_json(m);
	assert_string_equal(s, "[]");
	free(s);
	/* Its partition keeps the source known. */
	s = pr_http_mirror_partitions_json(m, "s", R(0, 0), &known);
	assert_int_equal(known, 1);
	free(s);
	part_clear(m, "s", "p", T0, T1);
	assert_null(pr_http_mirror_partitions_json(m, "s", R(0, 0), &known));
	assert_int_equal(known, 0);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 0);
	free(g);
	/* Clearing what is not there is nothing. */
	part_clear(m, "s", "p", T0, T1);
	pr_http_mirror_message(m, P "/state/other", "", 0);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 0);
	free(g);

	pr_http_mirror_message(m, P "/agent/status", "", 0);
	assert_null(pr_http_mirror_status_json(m));
	pr_http_mirror_agent(m, &ag);
	assert_false(ag.known);
	assert_false(ag.online);
	pr_http_mirror_message(m, P "/agent/stats", "", 0);
	assert_null(pr_http_mirror_stats_json(m));
	pr_http_mirror_free(m);
}

static void
test_malformed_ignored(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_agent ag;
	struct pr_http_gauge *g;
	struct json_object *a;
	char topic[1024], *s;
	int known;

	(void)state;
	summary(m, "s", 1, 1, "[]", "[]", 0);
	part(m, "s", "p", T0, T1, "pending", 1);
	put(m, P "/agent/status", "{\"status\":\"online\",\"at\":\"2023-01-01T00:00:00Z\"}");
	put(m, P "/agent/stats", "{\"uptime_s\":5}");

	/* Not JSON, JSON but not an object, trailing bytes: each kept copy
	 * stays as it was (a listing of the mirror is always JSON). */
	put(m, P "/state/s", "{\"v\":2,");
	put(m, P "/state/s", "[1,2]");
	put(m, P "/state/t", "not json");
	put(m, P "/agent/status", "{\"status\":\"offline\"");
	put(m, P "/agent/status", "\"online\"");
	put(m, P "/agent/stats", "{\"uptime_s\":6} x");
	s = pr_http_mirror_summaries_json(m);
	a = parse(s);
	assert_int_equal(json_object_array_length(a), 1);
	json_object_put(a);
	json_object_put(parse(pr_http_mirror_summary_json(m, "s")));
	assert_null(pr_http_mirror_summary_json(m, "t"));
	json_object_put(parse(pr_http_mirror_status_json(m)));
	json_object_put(parse(pr_http_mirror_stats_json(m)));
	pr_http_mirror_agent(m, &ag);
	assert_true(ag.known);
	assert_true(ag.online);

	part_topic(topic, sizeof topic, "s", T0, T1, "p");
	put(m, topic, "{\"state\":\"pending\""); /* not JSON */
	put(m, topic, "{\"state\":\"sleeping\",\"seq\":5}");
	put(m, topic, "{\"seq\":5}");
	put(m, topic, "[\"ready\"]");
	part_topic(topic, sizeof topic, "u", T0, T1, "p");
	put(m, topic, "{\"state\":\"nonsense\"}");
	put(m, P "/state/s/partitions/yesterday/2023-01-02T00:00:00Z/p",
	    "{\"state\":\"ready\",\"seq\":9}");
	put(m, P "/state/s/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/",
	    "{\"state\":\"ready\",\"seq\":9}");
	put(m, P "/state/s/partitions/2023-01-01T00:00:00Z", "{\"state\":\"ready\",\"seq\":9}");
	a = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &known));
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(str(json_object_array_get_idx(a, 0), "state"), "pending");
	json_object_put(a);
	/* A source is not made up from a message that was ignored. */
	assert_null(pr_http_mirror_partitions_json(m, "u", R(0, 0), &known));
	assert_int_equal(known, 0);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 1);
	free(g);
	pr_http_mirror_free(m);
}

static void
test_topics_outside_prefix(void **state)
{
	static const char *const topics[] = {
		"partreg/v10/state/s",
		"partreg/v1state/s",
		"partreg/v2/state/s",
		"other/partreg/v1/state/s",
		"partreg/v1/state/",
		"partreg/v1/state",
		"partreg/v1/states/s",
		"partreg/v1/state/s/extra",
		"partreg/v1/agent/status/x",
		"partreg/v1/agent",
		"partreg",
		"",
	};
	struct pr_http_mirror *m = mirror();
	struct pr_http_gauge *g;
	struct pr_http_agent ag;
	char topic[1024], body[512], *s;
	const char *sum
	    = "{\"v\":2,\"source\":\"s\",\"seq\":1,\"epoch\":1,\"updated_at\":"
	      "\"2023-01-01T00:00:00Z\",\"ready\":[],\"blocked\":[],\"truncated\":false}";

	(void)state;
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
		put(m, topics[i], sum);
	}
	put(m, "partreg/v10/agent/status", "{\"status\":\"online\"}");
	put(m, "partreg/v10/agent/stats", "{\"uptime_s\":1}");
	/* A source name longer than a name may be. */
	memset(body, 'x', PR_NAME_MAX + 1);
	body[PR_NAME_MAX + 1] = '\0';
	snprintf(topic, sizeof topic, P "/state/%s", body);
	put(m, topic, sum);
	snprintf(topic, sizeof topic,
	    P "/state/%s/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/p", body);
	put(m, topic, "{\"state\":\"pending\",\"seq\":1}");

	assert_int_equal(pr_http_mirror_gauges(m, &g), 0);
	free(g);
	s = pr_http_mirror_summaries_json(m);
	assert_string_equal(s, "[]");
	free(s);
	assert_null(pr_http_mirror_status_json(m));
	assert_null(pr_http_mirror_stats_json(m));
	pr_http_mirror_agent(m, &ag);
	assert_false(ag.known);

	/* The longest name is a name. */
	body[PR_NAME_MAX] = '\0';
	snprintf(topic, sizeof topic, P "/state/%s", body);
	put(m, topic, sum);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 1);
	assert_string_equal(g[0].source, body);
	free(g);
	pr_http_mirror_free(m);
}

static void
test_agent_status(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_agent ag;
	char text[512], now[sizeof ag.seen];
	int64_t seen, t0 = pr_time_now();
	char *s;

	(void)state;
	pr_http_mirror_agent(m, &ag);
	assert_false(ag.known);
	put(m, P "/agent/status",
	    "{\"status\":\"online\",\"agent_id\":\"partregd@h\",\"version\":\"0.2.0\",\"epoch\":3,"
	    "\"at\":\"2023-01-02T03:04:05.123456Z\"}");
	pr_http_mirror_agent(m, &ag);
	assert_true(ag.known);
	assert_true(ag.online);
	assert_false(ag.lost);
	assert_string_equal(ag.at, "2023-01-02T03:04:05.123456Z");
	assert_string_equal(ag.agent_id, "partregd@h");
	assert_string_equal(ag.version, "0.2.0");
	s = pr_http_mirror_status_json(m);
	assert_non_null(strstr(s, "\"agent_id\":\"partregd@h\""));
	free(s);

	/* Its Last Will, seen coming: offline since the mirror saw it. */
	put(m, P "/agent/status",
	    "{\"status\":\"offline\",\"agent_id\":\"partregd@h\",\"version\":\"0.2.0\","
	    "\"epoch\":3,\"lost\":true,\"at\":\"2023-01-02T03:04:05.123456Z\"}");
	pr_http_mirror_agent(m, &ag);
	assert_true(ag.known);
	assert_false(ag.online);
	assert_true(ag.lost);
	assert_string_equal(ag.at, "2023-01-02T03:04:05.123456Z");
	assert_int_equal(pr_time_parse(ag.seen, strlen(ag.seen), &seen), 0);
	assert_true(seen >= t0 - SEC && seen <= pr_time_now() + SEC);
	assert_string_equal(pr_http_agent_since(&ag), ag.seen);
	pr_http_agent_offline_text(&ag, text, sizeof text);
	snprintf(now, sizeof now, "%s", ag.seen);
	assert_non_null(strstr(text, "agent offline since "));
	assert_non_null(strstr(text, now));
	assert_non_null(strstr(text, "Last Will"));

	/* The same Will again (a reconnect): no longer seen going. */
	put(m, P "/agent/status",
	    "{\"status\":\"offline\",\"lost\":true,\"at\":\"2023-01-02T03:04:05.123456Z\"}");
	pr_http_mirror_agent(m, &ag);
	assert_true(ag.lost);
	assert_string_equal(ag.seen, "");
	assert_string_equal(pr_http_agent_since(&ag), "");
	pr_http_agent_offline_text(&ag, text, sizeof text);
	assert_string_equal(text,
	    "agent offline: its connection was lost some time after "
	    "2023-01-02T03:04:05.123456Z (the broker published its Last Will)");

	/* A clean stop: offline since its own at. */
	put(m, P "/agent/status", "{\"status\":\"offline\",\"at\":\"2023-01-03T00:00:00Z\"}");
	pr_http_mirror_agent(m, &ag);
	assert_true(ag.known);
	assert_false(ag.online);
	assert_false(ag.lost);
	assert_string_equal(pr_http_agent_since(&ag), "2023-01-03T00:00:00Z");
	pr_http_agent_offline_text(&ag, text, sizeof text);
	assert_string_equal(text, "agent offline since 2023-01-03T00:00:00Z");

	/* "lost": false is not lost; a status other than online is offline. */
	put(m, P "/agent/status", "{\"status\":\"starting\",\"lost\":false,\"at\":\"x\"}");
	pr_http_mirror_agent(m, &ag);
	assert_true(ag.known);
	assert_false(ag.online);
	assert_false(ag.lost);
	pr_http_mirror_free(m);
}

/* An agent on another store, or on its own store restored from a backup
 * (a lower epoch), is believed whatever its epoch: the order begins again. */
static void
test_new_store_begins_again(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *a;
	char *s;

	(void)state;
	put(m, P "/agent/status",
	    "{\"status\":\"online\",\"store\":\"s1\",\"epoch\":3,\"at\":\"2023-01-01T00:00:00Z\"}");
	summary(m, "a", 9, 3, "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"]]", "[]", 0);
	part_since(m, "a", "p", T0, T1, "ready", 9, 3, T0 + SEC);
	/* The same store's restart: a higher epoch; an older copy stays stale. */
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s1\",\"epoch\":4}");
	summary(m, "a", 10, 2, "[]", "[]", 0);
	s = pr_http_mirror_summary_json(m, "a");
	assert_non_null(strstr(s, "\"seq\":9"));
	free(s);
	/* Another store, epoch 1: its summary and partition replace the old. */
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s2\",\"epoch\":1}");
	summary(m, "a", 1, 1, "[]", "[]", 0);
	part_since(m, "a", "p", T0, T1, "pending", 1, 1, T0 + SEC);
	s = pr_http_mirror_summary_json(m, "a");
	assert_non_null(strstr(s, "\"seq\":1,\"epoch\":1"));
	free(s);
	a = parse(pr_http_mirror_partitions_json(m, "a", R(0, 0), &(int) { 0 }));
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(str(json_object_array_get_idx(a, 0), "state"), "pending");
	json_object_put(a);
	/* Its own store restored from a backup: epoch 1 again after 5. */
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s2\",\"epoch\":5}");
	summary(m, "a", 3, 5, "[]", "[]", 0);
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s2\",\"epoch\":1}");
	summary(m, "a", 2, 1, "[]", "[]", 0);
	s = pr_http_mirror_summary_json(m, "a");
	assert_non_null(strstr(s, "\"seq\":2,\"epoch\":1"));
	free(s);
	pr_http_mirror_free(m);
}

static void
test_stats(void **state)
{
	struct pr_http_mirror *m = mirror();
	char *s;

	(void)state;
	assert_null(pr_http_mirror_stats_json(m));
	put(m, P "/agent/stats", "{\"uptime_s\":5,\"commands\":{\"total\":3}}");
	s = pr_http_mirror_stats_json(m);
	assert_string_equal(s, "{\"uptime_s\":5,\"commands\":{\"total\":3}}");
	free(s);
	put(m, P "/agent/stats", "{\"uptime_s\":6}");
	s = pr_http_mirror_stats_json(m);
	assert_string_equal(s, "{\"uptime_s\":6}");
	free(s);
	pr_http_mirror_free(m);
}

/* ---- readiness ---- */

static char *
example(const char *rel)
{
	char path[1024];
	size_t len;
	char *s, *z;

	snprintf(path, sizeof path, "%s/examples/%s", schemas_dir(), rel);
	s = slurp(path, &len);
	z = malloc(len + 1);
	assert_non_null(z);
	memcpy(z, s, len);
	z[len] = '\0';
	free(s);
	return z;
}

/* The agent's own example reply, from the examples of what it retains. */
static void
test_readiness_as_the_agent_example(void **state)
{
	struct pr_http_mirror *m = mirror();
	char *sum = example("state/summary/valid/orders.json");
	char *lock = example("state/partition/valid/locked.json");
	char *want = example("reply/readiness/valid/blocked.json");
	struct json_object *got, *exp = json_tokener_parse(want);

	(void)state;
	put(m, P "/state/orders", sum);
	put(m, P "/state/orders/partitions/2023-01-02T00:00:00Z/2023-01-03T00:00:00Z/airflow-etl",
	    lock);
	assert_int_equal(readiness(m, "orders", T0, T2, &got), 0);
	if (!json_object_equal(got, exp)) {
		fail_msg("mirror: %s\nagent:  %s", json_object_to_json_string(got),
		    json_object_to_json_string(exp));
	}
	json_object_put(got);
	json_object_put(exp);
	free(sum);
	free(lock);
	free(want);
	pr_http_mirror_free(m);
}

static void
test_readiness_ready_and_gaps(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *o;

	(void)state;
	summary(m, "s", 7, 1,
	    "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"],"
	    "[\"2023-01-03T00:00:00Z\",\"2023-01-04T00:00:00Z\"]]",
	    "[]", 0);
	assert_int_equal(readiness(m, "s", T0, T1, &o), 0);
	assert_true(json_object_get_boolean(json_object_object_get(o, "ready")));
	assert_string_equal(str(o, "ready_through"), "2023-01-02T00:00:00Z");
	assert_int_equal(num(o, "seq"), 7);
	assert_string_equal(str(o, "source"), "s");
	json_object_put(o);
	assert_int_equal(readiness(m, "s", T0, T3, &o), 0);
	assert_false(json_object_get_boolean(json_object_object_get(o, "ready")));
	assert_string_equal(json_object_to_json_string_ext(
	                        json_object_object_get(o, "gaps"), JSON_C_TO_STRING_PLAIN),
	    "[[\"2023-01-02T00:00:00Z\",\"2023-01-03T00:00:00Z\"]]");
	assert_string_equal(str(o, "ready_through"), "2023-01-02T00:00:00Z");
	json_object_put(o);
	/* Nothing of want ready: ready_through null. */
	assert_int_equal(readiness(m, "s", T1, T2, &o), 0);
	assert_true(json_object_object_get_ex(o, "ready_through", NULL));
	assert_null(json_object_object_get(o, "ready_through"));
	json_object_put(o);
	pr_http_mirror_free(m);
}

#define RUN(s, e, prov, st)                                                                        \
	"{\"start\":\"" s "\",\"end\":\"" e "\",\"provider\":\"" prov "\",\"state\":\"" st         \
	"\",\"count\":1}"

/* Blockers in the agent's order: length class, start, end, provider. */
static void
test_readiness_blocker_order(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *o, *bl;
	int64_t got[8];

	(void)state;
	summary(m, "s", 9, 1, "[]",
	    "[" RUN("2023-01-01T00:00:00Z", "2023-01-03T00:00:00Z", "a", "pending") "," RUN(
	        "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "b",
	        "locked") "," RUN("2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "a",
	        "failed") "," RUN("2023-01-01T12:00:00Z", "2023-01-01T13:00:00Z", "z",
	        "pending") "," RUN("2023-01-02T00:00:00Z", "2023-01-03T00:00:00Z", "a",
	        "locked") "]",
	    0);
	part(m, "s", "a", T0, T2, "pending", 1);
	part(m, "s", "b", T0, T1, "locked", 2);
	part(m, "s", "a", T0, T1, "failed", 3);
	part(m, "s", "z", T0 + 12 * HOUR, T0 + 13 * HOUR, "pending", 4);
	part(m, "s", "a", T1, T2, "locked", 5);
	/* Ready and deleted partitions never block. */
	part(m, "s", "r", T0, T1, "ready", 6);
	part(m, "s", "d", T0, T1, "deleted", 7);
	assert_int_equal(readiness(m, "s", T0, T2, &o), 0);
	bl = json_object_object_get(o, "blockers");
	assert_int_equal(seqs(bl, got, 8), 5);
	/* The hour first (smaller class); the days by start, then provider;
	 * the two days last. */
	assert_int_equal(got[0], 4);
	assert_int_equal(got[1], 3);
	assert_int_equal(got[2], 2);
	assert_int_equal(got[3], 5);
	assert_int_equal(got[4], 1);
	/* As replies list them: without epoch. */
	assert_false(json_object_object_get_ex(json_object_array_get_idx(bl, 0), "epoch", NULL));
	json_object_put(o);
	/* Only those overlapping want. */
	assert_int_equal(readiness(m, "s", T1, T2, &o), 0);
	assert_int_equal(seqs(json_object_object_get(o, "blockers"), got, 8), 2);
	json_object_put(o);
	pr_http_mirror_free(m);
}

/* Where the mirror cannot be sure, the agent is asked (1). */
static void
test_readiness_ask_the_agent(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *o;

	(void)state;
	/* Unknown source; a source known only by partitions. */
	assert_int_equal(readiness(m, "nobody", T0, T1, &o), 1);
	part(m, "p", "a", T0, T1, "pending", 1);
	assert_int_equal(readiness(m, "p", T0, T1, &o), 1);

	/* Truncated. */
	summary(m, "t", 1, 1, "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"]]", "[]", 1);
	assert_int_equal(readiness(m, "t", T0, T1, &o), 1);

	/* A format this build cannot read. */
	put(m, P "/state/v3", "{\"v\":3,\"source\":\"v3\",\"seq\":1,\"epoch\":1}");
	assert_int_equal(readiness(m, "v3", T0, T1, &o), 1);

	/* The summary lists a run within want whose partition has not come. */
	summary(m, "s", 2, 1, "[]",
	    "[" RUN("2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "a", "locked") "]", 0);
	assert_int_equal(readiness(m, "s", T0, T1, &o), 1);
	/* A run outside want needs no partition. */
	assert_int_equal(readiness(m, "s", T1, T2, &o), 0);
	json_object_put(o);
	/* The partition in another state than the summary says (one is
	 * newer): ask. */
	part(m, "s", "a", T0, T1, "failed", 3);
	assert_int_equal(readiness(m, "s", T0, T1, &o), 1);
	/* Another provider's. */
	part(m, "s", "a", T0, T1, "locked", 4);
	part(m, "s", "b", T0, T1, "pending", 5);
	assert_int_equal(readiness(m, "s", T0, T1, &o), 1);
	part_clear(m, "s", "b", T0, T1);
	/* Agreeing now. */
	assert_int_equal(readiness(m, "s", T0, T1, &o), 0);
	assert_int_equal(json_object_array_length(json_object_object_get(o, "blockers")), 1);
	json_object_put(o);
	/* A partition outside the run's range. */
	part(m, "s", "a", T0 - DAY, T0 + HOUR, "locked", 6);
	assert_int_equal(readiness(m, "s", T0, T1, &o), 1);
	part_clear(m, "s", "a", T0 - DAY, T0 + HOUR);
	/* Partitions that moved on to ready: their state agrees with no run. */
	part(m, "s", "a", T0, T1, "ready", 7);
	assert_int_equal(readiness(m, "s", T0, T1, &o), 1);

	/* More blockers than the summary lists (one run of three, one ready
	 * range): the agent may list fewer. */
	summary(m, "many", 3, 1, "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"]]",
	    "[{\"start\":\"2023-01-02T00:00:00Z\",\"end\":\"2023-01-02T03:00:00Z\","
	    "\"provider\":\"a\",\"state\":\"pending\",\"count\":3}]",
	    0);
	part(m, "many", "a", T1, T1 + HOUR, "pending", 1);
	part(m, "many", "a", T1 + HOUR, T1 + 2 * HOUR, "pending", 2);
	assert_int_equal(readiness(m, "many", T1, T2, &o), 1);
	part(m, "many", "a", T1 + 2 * HOUR, T1 + 3 * HOUR, "pending", 3);
	assert_int_equal(readiness(m, "many", T1, T2, &o), 1);
	/* One of them in want: as many as listed. */
	assert_int_equal(readiness(m, "many", T1, T1 + HOUR, &o), 0);
	assert_int_equal(json_object_array_length(json_object_object_get(o, "blockers")), 1);
	json_object_put(o);

	/* A blocking partition in no run while every run has its partition,
	 * with ready ranges enough that the count alone would not tell. */
	summary(m, "x", 1, 1,
	    "[[\"2022-01-01T00:00:00Z\",\"2022-01-02T00:00:00Z\"],"
	    "[\"2022-02-01T00:00:00Z\",\"2022-02-02T00:00:00Z\"],"
	    "[\"2022-03-01T00:00:00Z\",\"2022-03-02T00:00:00Z\"]]",
	    "[" RUN("2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "a", "locked") "]", 0);
	part(m, "x", "a", T0, T1, "locked", 1);
	assert_int_equal(readiness(m, "x", T0, T1, &o), 0);
	json_object_put(o);
	part(m, "x", "b", T0, T1, "pending", 2);
	assert_int_equal(readiness(m, "x", T0, T1, &o), 1);
	part_clear(m, "x", "b", T0, T1);
	part(m, "x", "a", T0 + HOUR, T1 + HOUR, "locked", 3);
	assert_int_equal(readiness(m, "x", T0, T1, &o), 1);
	pr_http_mirror_free(m);
}

/*
 * The shared vectors, each as the messages an agent retains: the summary
 * verbatim and, for each blocked run, its partitions: one covering the
 * run (split = 0) or count partitions of equal length (split = 1, as the
 * agent keeps them; the last takes what division leaves).
 */
static int
vector_case(struct json_object *c, int split)
{
	const char *name = str(c, "name");
	struct json_object *sj, *want, *exp, *got = NULL, *v;
	struct pr_http_mirror *m = mirror();
	struct pr_summary s;
	struct pr_range w;
	const char *text, *ws, *we;
	char topic[512];
	size_t nparts = 0;
	int rc, bad = 0, expect_ask;

	sj = json_object_object_get(c, "summary");
	want = json_object_object_get(c, "want");
	exp = json_object_object_get(c, "expect");
	text = json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN);
	snprintf(topic, sizeof topic, P "/state/%s",
	    json_object_is_type(sj, json_type_object) && str(sj, "source") != NULL
	        ? str(sj, "source")
	        : "orders");
	put(m, topic, text);
	if (want == NULL) {
		w = R(T0, T1);
	} else {
		ws = str(want, "start");
		we = str(want, "end");
		assert_int_equal(pr_time_parse(ws, strlen(ws), &w.start), 0);
		assert_int_equal(pr_time_parse(we, strlen(we), &w.end), 0);
	}
	if (json_object_object_get_ex(exp, "error", NULL)) {
		rc = readiness(m, str(sj, "source") != NULL ? str(sj, "source") : "orders", w.start,
		    w.end, &got);
		if (rc != 1) {
			print_error(
			    "%s: a summary the parser refuses, yet the mirror answered\n", name);
			bad = 1;
		}
		json_object_put(got);
		pr_http_mirror_free(m);
		return bad;
	}
	assert_int_equal(pr_summary_parse(text, strlen(text), &s), 0);
	for (size_t i = 0; i < s.nblocked; i++) {
		const struct pr_blocker *b = &s.blocked[i];
		uint64_t k = split ? b->count : 1;
		int64_t step = (b->range.end - b->range.start) / (int64_t)k;

		for (uint64_t j = 0; j < k; j++) {
			int64_t a = b->range.start + (int64_t)j * step;
			int64_t e = j + 1 == k ? b->range.end : a + step;

			part_since(
			    m, s.source, b->provider, a, e, b->state, 100 + nparts, s.epoch, a);
			if (pr_range_overlaps(R(a, e), w)) {
				nparts++;
			}
		}
	}
	/* The mirror's one refusal besides truncation: more partitions block
	 * want than the summary has entries (mirror.h). */
	expect_ask = s.truncated || (nparts > 1 && nparts > s.nblocked && nparts > s.nready);
	rc = readiness(m, s.source, w.start, w.end, &got);
	if (rc != (expect_ask ? 1 : 0)) {
		print_error("%s (split %d): readiness %d, expected %d\n", name, split, rc,
		    expect_ask ? 1 : 0);
		bad = 1;
	} else if (rc == 0) {
		static const char *const same[] = { "ready", "gaps", "ready_through" };

		for (size_t i = 0; i < 3; i++) {
			if (!json_object_equal(json_object_object_get(got, same[i]),
			        json_object_object_get(exp, same[i]))) {
				print_error("%s (split %d): %s %s, expected %s\n", name, split,
				    same[i],
				    json_object_to_json_string(
				        json_object_object_get(got, same[i])),
				    json_object_to_json_string(
				        json_object_object_get(exp, same[i])));
				bad = 1;
			}
		}
		v = json_object_object_get(got, "blockers");
		/* The vectors count runs; the agent lists partitions. */
		if (json_object_array_length(v)
		    != (split ? nparts : (size_t)num(exp, "nblockers"))) {
			print_error("%s (split %d): %zu blockers\n", name, split,
			    json_object_array_length(v));
			bad = 1;
		}
		if (json_object_get_boolean(json_object_object_get(got, "truncated"))
		    || (uint64_t)num(got, "seq") != s.seq) {
			print_error("%s: truncated or seq wrong\n", name);
			bad = 1;
		}
	}
	json_object_put(got);
	pr_summary_release(&s);
	pr_http_mirror_free(m);
	return bad;
}

static void
test_readiness_vectors(void **state)
{
	char path[4096];
	const char *dir = getenv("PARTREG_VECTORS");
	struct json_object *cases;
	int failures = 0;
	size_t n;

	(void)state;
	if (dir == NULL || dir[0] == '\0') {
		fail_msg("PARTREG_VECTORS is not set: run through ctest");
	}
	snprintf(path, sizeof path, "%s/readiness.json", dir);
	cases = json_object_from_file(path);
	assert_non_null(cases);
	n = json_object_array_length(cases);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		failures += vector_case(json_object_array_get_idx(cases, i), 0);
		failures += vector_case(json_object_array_get_idx(cases, i), 1);
	}
	json_object_put(cases);
	if (failures > 0) {
		fail_msg("%d vector cases: the mirror disagrees with the agent's rule", failures);
	}
}

/* ---- listings, gauges, expiry ---- */

static void
test_partitions_window_and_order(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct json_object *a;
	int64_t got[16];
	int known;

	(void)state;
	part(m, "s", "b", T1, T2, "ready", 1);
	part(m, "s", "a", T1, T2, "pending", 2);
	part(m, "s", "a", T0, T1, "ready", 3);
	part(m, "s", "a", T1, T1 + HOUR, "locked", 4);
	part(m, "s", "c", T2, T3, "failed", 5);
	part(m, "other", "a", T0, T3, "pending", 6);
	/* All, by start, then provider, then end. */
	a = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &known));
	assert_int_equal(known, 1);
	assert_int_equal(seqs(a, got, 16), 5);
	assert_int_equal(got[0], 3);
	assert_int_equal(got[1], 4);
	assert_int_equal(got[2], 2);
	assert_int_equal(got[3], 1);
	assert_int_equal(got[4], 5);
	json_object_put(a);
	/* Overlapping the window only: touching is not overlapping. */
	a = parse(pr_http_mirror_partitions_json(m, "s", R(T1, T2), &known));
	assert_int_equal(seqs(a, got, 16), 3);
	assert_int_equal(got[0], 4);
	assert_int_equal(got[1], 2);
	assert_int_equal(got[2], 1);
	json_object_put(a);
	a = parse(pr_http_mirror_partitions_json(m, "s", R(T1 + HOUR, T1 + HOUR + 1), &known));
	assert_int_equal(seqs(a, got, 16), 2);
	json_object_put(a);
	a = parse(pr_http_mirror_partitions_json(m, "s", R(T3, T3 + DAY), &known));
	assert_int_equal(known, 1);
	assert_int_equal(json_object_array_length(a), 0);
	json_object_put(a);
	/* start >= end: everything. */
	a = parse(pr_http_mirror_partitions_json(m, "s", R(T2, T1), &known));
	assert_int_equal(json_object_array_length(a), 5);
	json_object_put(a);
	/* A replaced partition keeps its place. */
	part(m, "s", "a", T1, T2, "locked", 7);
	a = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &known));
	assert_int_equal(seqs(a, got, 16), 5);
	assert_int_equal(got[2], 7);
	json_object_put(a);
	assert_null(pr_http_mirror_partitions_json(m, "nobody", R(0, 0), &known));
	assert_int_equal(known, 0);
	pr_http_mirror_free(m);
}

static void
test_gauges(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_gauge *g;
	size_t n;

	(void)state;
	summary(m, "b", 12, 1, "[]", "[]", 0);
	part(m, "a", "p", T0, T1, "pending", 1);
	part(m, "a", "p", T1, T2, "pending", 2);
	part_since(m, "a", "p", T2, T3, "locked", 3, 1, T2 + HOUR);
	part_since(m, "a", "q", T2, T3, "locked", 4, 1, T2 + 2 * HOUR);
	part_since(m, "a", "r", T2, T3, "locked", 5, 1, T2 + 30 * SEC);
	part(m, "a", "p", T3, T3 + DAY, "ready", 6);
	part(m, "a", "q", T0, T1, "failed", 7);
	part(m, "a", "r", T0, T1, "deleted", 8);
	part(m, "b", "p", T0, T1, "ready", 9);
	n = pr_http_mirror_gauges(m, &g);
	assert_int_equal(n, 2);
	assert_string_equal(g[0].source, "a");
	assert_int_equal(g[0].count[PR_PENDING], 2);
	assert_int_equal(g[0].count[PR_LOCKED], 3);
	assert_int_equal(g[0].count[PR_READY], 1);
	assert_int_equal(g[0].count[PR_FAILED], 1);
	assert_int_equal(g[0].count[PR_DELETED], 1);
	assert_true(g[0].oldest_lock_since == T2 + 30 * SEC);
	assert_false(g[0].has_seq);
	assert_string_equal(g[1].source, "b");
	assert_true(g[1].has_seq);
	assert_int_equal(g[1].seq, 12);
	assert_int_equal(g[1].count[PR_READY], 1);
	assert_int_equal(g[1].oldest_lock_since, 0);
	free(g);
	pr_http_mirror_free(m);
}

/* A partition state as part_since makes it, arriving at now with an
 * expiry of expiry_s seconds (-1: none), as the broker passes it on. */
static void
part_expiring(struct pr_http_mirror *m, const char *source, int64_t start, int64_t end,
    const char *state, uint64_t seq, int64_t expiry_s, int64_t now)
{
	char topic[1024], body[2048], a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ], c[PR_TIME_BUFSZ];

	part_topic(topic, sizeof topic, source, start, end, "p");
	snprintf(body, sizeof body,
	    "{\"source\":\"%s\",\"provider\":\"p\",\"start\":\"%s\",\"end\":\"%s\","
	    "\"state\":\"%s\",\"version\":1,\"fence\":1,\"since\":\"%s\","
	    "\"updated_at\":\"%s\",\"seq\":%llu,\"epoch\":1}",
	    source, pr_time_format(start, a), pr_time_format(end, b), state, pr_time_format(now, c),
	    c, (unsigned long long)seq);
	pr_http_mirror_message_at(m, topic, body, strlen(body), expiry_s, now);
}

/* The broker forgets a message when its expiry runs out: so does the
 * mirror, at the expiry the message came with. */
static void
test_prune(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_gauge *g;
	struct pr_http_watch *w;
	const int64_t now = T3;
	char *ev;

	(void)state;
	summary(m, "s", 1, 1, "[]", "[]", 0);
	part_expiring(m, "s", T0, T1, "ready", 1, 60, now);
	part_expiring(m, "s", T1, T2, "deleted", 2, 120, now);
	part_expiring(m, "s", T2, T3, "pending", 3, -1, now);
	part_expiring(m, "t", T0, T1, "ready", 4, 70, now);
	part_expiring(m, "t", T1, T2, "ready", 5, -1, now); /* kept forever */
	w = pr_http_mirror_watch(m);
	drain(m, w);

	/* One microsecond before the first expiry: all kept. */
	pr_http_mirror_prune(m, now + 60 * SEC - 1);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 2);
	assert_int_equal(g[0].count[PR_READY] + g[0].count[PR_DELETED] + g[0].count[PR_PENDING], 3);
	free(g);
	assert_string_equal(drain(m, w), "");
	/* At it: gone, and told as a partition event without state. */
	pr_http_mirror_prune(m, now + 60 * SEC);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 2);
	assert_int_equal(g[0].count[PR_READY], 0);
	assert_int_equal(g[0].count[PR_DELETED], 1);
	assert_int_equal(g[1].count[PR_READY], 2);
	free(g);
	ev = drain(m, w);
	assert_string_equal(ev,
	    "event: partition\ndata: {\"source\":\"s\",\"provider\":\"p\","
	    "\"start\":\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\"}\n\n");
	/* A new message of a partition brings its own expiry: t's first, made
	 * ready again later, lives on. */
	part_expiring(m, "t", T0, T1, "ready", 6, 600, now + 65 * SEC);
	assert_non_null(strstr(drain(m, w), "\"seq\":6"));
	/* Long after: the tombstone by its own expiry, t's first by its new
	 * one; the pending one and the one without expiry never. */
	pr_http_mirror_prune(m, now + 600 * SEC);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 2);
	assert_string_equal(g[0].source, "s");
	assert_int_equal(g[0].count[PR_DELETED], 0);
	assert_int_equal(g[0].count[PR_PENDING], 1);
	assert_int_equal(g[1].count[PR_READY], 2);
	free(g);
	pr_http_mirror_prune(m, now + 1000 * DAY);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 2);
	assert_int_equal(g[1].count[PR_READY], 1);
	free(g);
	ev = drain(m, w);
	assert_non_null(strstr(ev, "\"source\":\"t\""));
	assert_non_null(strstr(ev, "\"start\":\"2023-01-01T00:00:00Z\""));
	assert_null(strstr(ev, "state"));
	pr_http_mirror_unwatch(m, w);
	pr_http_mirror_free(m);
}

/* ---- watchers ---- */

static void
test_watch_snapshot_then_changes(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_watch *w, *w2;
	const char *ev;
	char buf[64];

	(void)state;
	summary(m, "b", 1, 1, "[]", "[]", 0);
	part(m, "a", "p", T0, T1, "pending", 1);
	put(m, P "/agent/status", "{\"status\":\"online\"}");
	summary(m, "a", 2, 1, "[]", "[]", 0);
	assert_int_equal(pr_http_mirror_nwatchers(m), 0);
	w = pr_http_mirror_watch(m);
	assert_non_null(w);
	assert_int_equal(pr_http_mirror_nwatchers(m), 1);
	ev = drain(m, w);
	assert_string_equal(ev,
	    "event: status\ndata: {\"status\":\"online\"}\n\n"
	    "event: summary\ndata: {\"v\":2,\"source\":\"a\",\"owner\":\"team\",\"seq\":2,"
	    "\"epoch\":1,\"updated_at\":\"2023-01-01T00:00:00Z\",\"ready\":[],\"blocked\":[],"
	    "\"truncated\":false}\n\n"
	    "event: summary\ndata: {\"v\":2,\"source\":\"b\",\"owner\":\"team\",\"seq\":1,"
	    "\"epoch\":1,\"updated_at\":\"2023-01-01T00:00:00Z\",\"ready\":[],\"blocked\":[],"
	    "\"truncated\":false}\n\n"
	    "event: partition\ndata: {\"source\":\"a\",\"provider\":\"p\","
	    "\"start\":\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\","
	    "\"state\":\"pending\",\"version\":1,\"fence\":1,\"since\":\"2023-01-01T00:00:01Z\","
	    "\"updated_at\":\"2023-01-01T00:00:01Z\",\"seq\":1,\"epoch\":1}\n\n"
	    "event: snapshot-end\ndata: {}\n\n");
	/* Nothing more: a read times out with 0. */
	assert_int_equal(pr_http_watch_read(m, w, buf, sizeof buf, 20), 0);

	/* Changes in order; stale and ignored messages are no events; a
	 * multi-line payload is one data line per line. */
	put(m, P "/agent/stats", "{\"uptime_s\":1}"); /* stats are not streamed */
	summary(m, "a", 1, 1, "[]", "[]", 0);         /* stale */
	put(m, P "/state/a", "garbage");
	put(m, P "/agent/status", "{\"status\":\n\"offline\",\r\n\"at\":\r\"x\"}");
	part(m, "a", "p", T1, T2, "locked", 2);
	part_clear(m, "a", "p", T0, T1);
	part_clear(m, "a", "p", T0, T1); /* already gone: nothing */
	ev = drain(m, w);
	assert_string_equal(ev,
	    "event: status\ndata: {\"status\":\ndata: \"offline\",\ndata: \"at\":\ndata: \"x\"}\n\n"
	    "event: partition\ndata: {\"source\":\"a\",\"provider\":\"p\","
	    "\"start\":\"2023-01-02T00:00:00Z\",\"end\":\"2023-01-03T00:00:00Z\","
	    "\"state\":\"locked\",\"version\":1,\"fence\":1,\"since\":\"2023-01-02T00:00:01Z\","
	    "\"updated_at\":\"2023-01-02T00:00:01Z\",\"seq\":2,\"epoch\":1}\n\n"
	    "event: partition\ndata: {\"source\":\"a\",\"provider\":\"p\","
	    "\"start\":\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\"}\n\n");
	/* A second watcher gets today's snapshot; both get what follows. */
	w2 = pr_http_mirror_watch(m);
	assert_int_equal(pr_http_mirror_nwatchers(m), 2);
	assert_non_null(strstr(drain(m, w2), "event: snapshot-end"));
	summary(m, "c", 1, 1, "[]", "[]", 0);
	assert_non_null(strstr(drain(m, w), "event: summary\ndata: {\"v\":2,\"source\":\"c\""));
	assert_non_null(strstr(drain(m, w2), "event: summary\ndata: {\"v\":2,\"source\":\"c\""));
	pr_http_mirror_unwatch(m, w);
	assert_int_equal(pr_http_mirror_nwatchers(m), 1);
	pr_http_mirror_unwatch(m, w2);
	assert_int_equal(pr_http_mirror_nwatchers(m), 0);
	pr_http_mirror_unwatch(m, NULL);
	pr_http_mirror_free(m);
}

static void
test_watch_far_behind_dropped(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_watch *slow, *fast;
	char buf[4096];
	long k;

	(void)state;
	slow = pr_http_mirror_watch(m);
	fast = pr_http_mirror_watch(m);
	/* About 9 MiB of events that slow never reads. */
	for (int i = 0; i < 40000; i++) {
		part(m, "s", "p", T0 + i * HOUR, T0 + (i + 1) * HOUR, "pending", (uint64_t)i + 1);
		if (i % 100 == 0) {
			while (pr_http_watch_read(m, fast, buf, sizeof buf, 0) > 0) { }
		}
	}
	assert_int_equal(pr_http_watch_read(m, slow, buf, sizeof buf, 0), -1);
	assert_int_equal(pr_http_watch_read(m, slow, buf, sizeof buf, 0), -1);
	/* The one that kept up goes on. */
	while ((k = pr_http_watch_read(m, fast, buf, sizeof buf, 0)) > 0) { }
	assert_int_equal(k, 0);
	part(m, "s", "p", T0 - DAY, T0, "pending", 1);
	assert_true(pr_http_watch_read(m, fast, buf, sizeof buf, 0) > 0);
	pr_http_mirror_unwatch(m, slow);
	pr_http_mirror_unwatch(m, fast);
	pr_http_mirror_free(m);
}

struct reader {
	struct pr_http_mirror *m;
	struct pr_http_watch *w;
	long got;
	int64_t took;
};

static void *
read_long(void *arg)
{
	struct reader *r = arg;
	char buf[64];
	int64_t t0 = pr_time_now();

	r->got = pr_http_watch_read(r->m, r->w, buf, sizeof buf, 10000);
	r->took = pr_time_now() - t0;
	return NULL;
}

static void
test_watch_wakes(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct reader r = { m, NULL, 0, 0 };
	pthread_t th;
	char buf[64];

	(void)state;
	r.w = pr_http_mirror_watch(m);
	drain(m, r.w);
	/* A change wakes a waiting reader at once. */
	assert_int_equal(pthread_create(&th, NULL, read_long, &r), 0);
	usleep(50000);
	put(m, P "/agent/status", "{\"status\":\"online\"}");
	pthread_join(th, NULL);
	assert_true(r.got > 0);
	assert_true(r.took < 5 * SEC);
	drain(m, r.w);
	/* So does shutdown, for good. */
	assert_int_equal(pthread_create(&th, NULL, read_long, &r), 0);
	usleep(50000);
	pr_http_mirror_shutdown(m);
	pthread_join(th, NULL);
	assert_int_equal(r.got, -1);
	assert_true(r.took < 5 * SEC);
	put(m, P "/agent/status", "{\"status\":\"offline\"}");
	assert_int_equal(pr_http_watch_read(m, r.w, buf, sizeof buf, 0), -1);
	pr_http_mirror_unwatch(m, r.w);
	pr_http_mirror_free(m);
}

/* ---- at scale ---- */

/* A stream's reader, as the dashboard is: partition events applied to a
 * model of hourly partitions i of source "s", provider "p", from T0
 * (seq[i], 0 = absent), the text read in pieces and cut at blank lines. */
struct model {
	int64_t *seq;
	size_t n;
	char *text;
	size_t len, cap;
	int ended; /* snapshot-end seen */
};

static void
model_event(struct model *md, char *ev)
{
	struct json_object *o, *v;
	int64_t start;
	char *data = strstr(ev, "\ndata: ");

	if (strncmp(ev, "event: snapshot-end\n", 20) == 0) {
		md->ended = 1;
		return;
	}
	if (strncmp(ev, "event: partition\n", 17) != 0) {
		return;
	}
	assert_non_null(data);
	o = json_tokener_parse(data + 7);
	assert_non_null(o);
	assert_int_equal(pr_time_parse(str(o, "start"), strlen(str(o, "start")), &start), 0);
	assert_true((start - T0) % HOUR == 0 && (size_t)((start - T0) / HOUR) < md->n);
	md->seq[(start - T0) / HOUR]
	    = json_object_object_get_ex(o, "state", &v) ? num(o, "seq") : 0;
	json_object_put(o);
}

/* Read whatever w has queued, in pieces of up to 4 KiB, into the model;
 * stop after limit bytes (0: none). Returns -1 when w was dropped. */
static int
model_read(struct pr_http_mirror *m, struct pr_http_watch *w, struct model *md, size_t limit)
{
	size_t got = 0;
	long k;

	do {
		char *end;

		if (md->cap - md->len < 4097) {
			md->cap = md->cap * 2 + 8192;
			md->text = realloc(md->text, md->cap);
			assert_non_null(md->text);
		}
		k = pr_http_watch_read(m, w, md->text + md->len, 4096, 0);
		if (k < 0) {
			return -1;
		}
		md->len += (size_t)k;
		got += (size_t)k;
		md->text[md->len] = '\0';
		/* Whole events only. */
		while ((end = strstr(md->text, "\n\n")) != NULL) {
			*end = '\0';
			model_event(md, md->text);
			md->len -= (size_t)(end + 2 - md->text);
			memmove(md->text, end + 2, md->len + 1);
		}
	} while (k > 0 && (limit == 0 || got < limit));
	return 0;
}

/* The model equals the mirror's listing. */
static void
model_check(struct pr_http_mirror *m, const struct model *md)
{
	struct json_object *a
	    = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &(int) { 0 }));
	size_t j = 0;

	for (size_t i = 0; i < md->n; i++) {
		if (md->seq[i] == 0) {
			continue;
		}
		assert_true(j < json_object_array_length(a));
		assert_int_equal(num(json_object_array_get_idx(a, j), "seq"), md->seq[i]);
		assert_true(str(json_object_array_get_idx(a, j), "start") != NULL);
		j++;
	}
	assert_int_equal(j, json_object_array_length(a));
	json_object_put(a);
}

/*
 * 50,000 partitions (about 12 MB of snapshot, more than a watcher may
 * have queued): a watcher connected across changes, before and after its
 * snapshot position, and across every message delivered again unchanged
 * (a broker reconnect), is not dropped, and what it read adds up to what
 * the mirror holds: no change lost between snapshot and stream.
 */
static void
test_watch_big_snapshot_across_changes(void **state)
{
	enum { N = 50000 };
	struct pr_http_mirror *m = mirror();
	struct model md = { calloc(N + 10, sizeof(int64_t)), N + 10, NULL, 0, 0, 0 };
	struct pr_http_watch *w, *idle;
	uint64_t seq = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		part(m, "s", "p", T0 + i * HOUR, T0 + (i + 1) * HOUR, "ready", ++seq);
	}
	idle = pr_http_mirror_watch(m); /* connects and never reads */
	w = pr_http_mirror_watch(m);
	assert_non_null(w);
	assert_int_equal(model_read(m, w, &md, 512u << 10), 0); /* about 2,000 */
	assert_false(md.ended);
	/* Every one changed: behind the position (about 0.5 MiB queued), at
	 * it, ahead of it; removed on both sides, new on both sides. */
	for (int i = 0; i < N; i++) {
		part(m, "s", "p", T0 + i * HOUR, T0 + (i + 1) * HOUR, "locked", ++seq);
	}
	part_clear(m, "s", "p", T0 + 3 * HOUR, T0 + 4 * HOUR);
	part_clear(m, "s", "p", T0 + (N - 3) * HOUR, T0 + (N - 2) * HOUR);
	part(m, "s", "p", T0 + (N + 5) * HOUR, T0 + (N + 6) * HOUR, "pending", ++seq);
	part_clear(m, "s", "p", T0 + (N + 5) * HOUR, T0 + (N + 6) * HOUR);
	part(m, "s", "p", T0 + (N + 5) * HOUR, T0 + (N + 6) * HOUR, "failed", ++seq);
	assert_int_equal(model_read(m, w, &md, 1u << 20), 0);
	/* Everything again, unchanged, as after a broker reconnect: nothing
	 * queued, so nothing to drop. */
	for (int i = 0; i < N; i++) {
		char topic[1024];
		char *a = pr_http_mirror_partitions_json(
		    m, "s", R(T0 + i * HOUR, T0 + i * HOUR + 1), &(int) { 0 });
		struct json_object *o = json_tokener_parse(a);

		if (json_object_array_length(o) == 1) {
			const char *body
			    = json_object_to_json_string_ext(json_object_array_get_idx(o, 0),
			        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

			part_topic(
			    topic, sizeof topic, "s", T0 + i * HOUR, T0 + (i + 1) * HOUR, "p");
			put(m, topic, body);
		}
		json_object_put(o);
		free(a);
	}
	assert_int_equal(model_read(m, w, &md, 0), 0);
	assert_true(md.ended);
	model_check(m, &md);
	/* Live now: a change arrives as one event. */
	part(m, "s", "p", T0, T0 + HOUR, "ready", ++seq);
	assert_int_equal(model_read(m, w, &md, 0), 0);
	model_check(m, &md);
	/* The idle one read nothing and is still there, its snapshot waiting. */
	md.ended = 0;
	memset(md.seq, 0, (N + 10) * sizeof(int64_t));
	md.len = 0;
	assert_int_equal(model_read(m, idle, &md, 0), 0);
	assert_true(md.ended);
	model_check(m, &md);
	pr_http_mirror_unwatch(m, w);
	pr_http_mirror_unwatch(m, idle);
	free(md.seq);
	free(md.text);
	pr_http_mirror_free(m);
}

/* How many times needle occurs in hay. */
static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
		n++;
	}
	return n;
}

/*
 * A watcher whose snapshot stopped among the summaries (600 sources, more
 * than a chunk of them): a change ahead of its position reaches it once,
 * through the snapshot; a change behind it twice (the snapshot's copy,
 * then the change), in that order.
 */
static void
test_watch_position_exact(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_watch *w;
	struct pr_http_buf all = { 0 };
	char name[32], buf[4096];
	const char *old, *fresh;
	long k;

	(void)state;
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof name, "src%03d", i);
		summary(m, name, 1, 1, "[]", "[]", 0);
		part(m, name, "p", T0, T1, "pending", 1);
	}
	w = pr_http_mirror_watch(m);
	/* Read the first chunk only: it ends among the summaries. */
	k = pr_http_watch_read(m, w, buf, sizeof buf, 0);
	assert_true(k > 0);
	pr_http_buf_add(&all, buf, (size_t)k);
	/* Every summary changed: those behind it (and the one at it) are
	 * queued, those ahead come with the snapshot. */
	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof name, "src%03d", i);
		summary(m, name, 2, 1, "[]", "[]", 0);
	}
	part(m, "src000", "p", T0, T1, "locked", 2); /* ahead: partitions follow */
	while ((k = pr_http_watch_read(m, w, buf, sizeof buf, 0)) > 0) {
		pr_http_buf_add(&all, buf, (size_t)k);
	}
	assert_int_equal(k, 0);
	old = strstr(all.p, "\"source\":\"src000\",\"owner\":\"team\",\"seq\":1,");
	fresh = strstr(all.p, "\"source\":\"src000\",\"owner\":\"team\",\"seq\":2,");
	assert_non_null(old);
	assert_non_null(fresh);
	assert_true(old < fresh);
	assert_int_equal(count(all.p, "\"source\":\"src599\",\"owner\""), 1);
	assert_non_null(strstr(all.p, "\"source\":\"src599\",\"owner\":\"team\",\"seq\":2,"));
	assert_int_equal(count(all.p, "\"source\":\"src000\",\"provider\""), 1);
	assert_non_null(strstr(all.p,
	    "\"source\":\"src000\",\"provider\":\"p\",\"start\":"
	    "\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\","
	    "\"state\":\"locked\""));
	assert_int_equal(count(all.p, "event: snapshot-end"), 1);
	for (int i = 0; i < 600; i++) {
		char seq1[128], seq2[128];
		const char *last = NULL;

		snprintf(
		    seq1, sizeof seq1, "\"source\":\"src%03d\",\"owner\":\"team\",\"seq\":1,", i);
		snprintf(
		    seq2, sizeof seq2, "\"source\":\"src%03d\",\"owner\":\"team\",\"seq\":2,", i);
		for (const char *p = all.p; (p = strstr(p, seq2)) != NULL; p++) {
			last = p;
		}
		assert_non_null(last);
		old = strstr(all.p, seq1);
		assert_true(old == NULL || old < last);
		assert_true(count(all.p, seq1) + count(all.p, seq2) <= 2);
	}
	pr_http_buf_release(&all);
	pr_http_mirror_unwatch(m, w);
	pr_http_mirror_free(m);
}

/* A retained message delivered again unchanged is no event; after another
 * store's status (new order) it is taken back silently, and its order
 * holds again. */
static void
test_watch_redelivery_no_event(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_watch *w;
	struct json_object *a;

	(void)state;
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s1\",\"epoch\":3}");
	summary(m, "s", 5, 3, "[]", "[]", 0);
	part_since(m, "s", "p", T0, T1, "ready", 5, 3, T0);
	w = pr_http_mirror_watch(m);
	assert_non_null(strstr(drain(m, w), "snapshot-end"));
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s1\",\"epoch\":3}");
	summary(m, "s", 5, 3, "[]", "[]", 0);
	part_since(m, "s", "p", T0, T1, "ready", 5, 3, T0);
	assert_string_equal(drain(m, w), "");
	/* Another store: its status is news; the old copies delivered again
	 * are not, but they take their order back (epoch 3, seq 5). */
	put(m, P "/agent/status", "{\"status\":\"online\",\"store\":\"s2\",\"epoch\":1}");
	assert_non_null(strstr(drain(m, w), "event: status"));
	summary(m, "s", 5, 3, "[]", "[]", 0);
	part_since(m, "s", "p", T0, T1, "ready", 5, 3, T0);
	assert_string_equal(drain(m, w), "");
	part_since(m, "s", "p", T0, T1, "locked", 4, 3, T0); /* stale again */
	assert_string_equal(drain(m, w), "");
	/* The same bytes at another seq are a change. */
	part_since(m, "s", "p", T0, T1, "ready", 6, 3, T0);
	assert_non_null(strstr(drain(m, w), "\"seq\":6"));
	a = parse(pr_http_mirror_partitions_json(m, "s", R(0, 0), &(int) { 0 }));
	assert_int_equal(num(json_object_array_get_idx(a, 0), "seq"), 6);
	json_object_put(a);
	pr_http_mirror_unwatch(m, w);
	pr_http_mirror_free(m);
}

/* Read and forget everything queued for w. */
static void
discard(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	char buf[4096];
	long k;

	while ((k = pr_http_watch_read(m, w, buf, sizeof buf, 0)) > 0) { }
	assert_int_equal(k, 0);
}

/* A partition message of about 100 KiB (a long "note"). */
static void
big_part(struct pr_http_mirror *m, int i, uint64_t seq)
{
	static char body[110 * 1024];
	char topic[512], a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
	int n;

	part_topic(topic, sizeof topic, "s", T0 + i * HOUR, T0 + (i + 1) * HOUR, "p");
	n = snprintf(body, sizeof body,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"%s\",\"end\":\"%s\",\"state\":"
	    "\"ready\","
	    "\"seq\":%llu,\"epoch\":1,\"note\":\"",
	    pr_time_format(T0 + i * HOUR, a), pr_time_format(T0 + (i + 1) * HOUR, b),
	    (unsigned long long)seq);
	memset(body + n, 'x', 100 * 1024);
	strcpy(body + n + 100 * 1024, "\"}");
	put(m, topic, body);
}

/* Each watcher may have 1 MiB of changes queued, and all of them 64 MiB:
 * past that, those furthest behind go and the rest stay. */
static void
test_watch_memory_bounded(void **state)
{
	enum { W = 80 };
	struct pr_http_mirror *m = mirror();
	struct pr_http_watch *w[W], *one;
	char buf[4096];
	int dropped = 0;
	uint64_t seq = 0;

	(void)state;
	one = pr_http_mirror_watch(m);
	discard(m, one);
	/* 9 changes of 100 KiB (0.9 MiB) are kept; the 11th is too many. */
	for (int i = 0; i < 9; i++) {
		big_part(m, i, ++seq);
	}
	assert_true(pr_http_watch_read(m, one, buf, sizeof buf, 0) > 0);
	big_part(m, 9, ++seq);
	big_part(m, 10, ++seq);
	assert_int_equal(pr_http_watch_read(m, one, buf, sizeof buf, 0), -1);
	pr_http_mirror_unwatch(m, one);

	for (int i = 0; i < W; i++) {
		w[i] = pr_http_mirror_watch(m);
		discard(m, w[i]);
	}
	/* 0.9 MiB each for 80 watchers is 72 MiB: some must go. */
	for (int i = 0; i < 9; i++) {
		big_part(m, 20 + i, ++seq);
	}
	for (int i = 0; i < W; i++) {
		long k = pr_http_watch_read(m, w[i], buf, sizeof buf, 0);

		dropped += k < 0;
		assert_true(k != 0);
	}
	assert_true(dropped >= W - 64 / 0.9 - 1 && dropped < W / 2);
	for (int i = 0; i < W; i++) {
		pr_http_mirror_unwatch(m, w[i]);
	}
	pr_http_mirror_free(m);
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Partitions arriving in reverse and in random order are listed as those
 * arriving in order; windows list what brute force finds. */
static void
test_insert_orders(void **state)
{
	enum { N = 20000 };
	struct pr_http_mirror *m[3] = { mirror(), mirror(), mirror() };
	int *perm = malloc(N * sizeof *perm);
	uint64_t s = 88172645463325252ull;
	struct json_object *all;
	char *text[3];

	(void)state;
	for (int i = 0; i < N; i++) {
		perm[i] = i;
	}
	for (int i = N - 1; i > 0; i--) {
		int j = (int)(rnd(&s) % (uint64_t)(i + 1)), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (int k = 0; k < N; k++) {
		int in = k, rev = N - 1 - k, rd = perm[k];
		/* Two providers, partitions of an hour and a day, overlapping. */
		const int *who[3] = { &in, &rev, &rd };

		for (int x = 0; x < 3; x++) {
			int i = *who[x];
			int64_t len = i % 10 == 0 ? DAY : HOUR;

			part(m[x], "s", i % 3 == 0 ? "q" : "p", T0 + (i / 2) * HOUR,
			    T0 + (i / 2) * HOUR + len, "ready", (uint64_t)i + 1);
		}
	}
	for (int x = 0; x < 3; x++) {
		text[x] = pr_http_mirror_partitions_json(m[x], "s", R(0, 0), &(int) { 0 });
	}
	assert_string_equal(text[0], text[1]);
	assert_string_equal(text[0], text[2]);
	for (int x = 0; x < 3; x++) {
		free(text[x]);
	}
	/* Windows: the listing's overlapping elements, in the same order. */
	all = parse(pr_http_mirror_partitions_json(m[2], "s", R(0, 0), &(int) { 0 }));
	for (int q = 0; q < 200; q++) {
		int64_t a = T0 + (int64_t)(rnd(&s) % (N / 2 + 48)) * HOUR - DAY;
		int64_t b = a + 1 + (int64_t)(rnd(&s) % (3 * DAY));
		struct json_object *got
		    = parse(pr_http_mirror_partitions_json(m[2], "s", R(a, b), &(int) { 0 }));
		size_t j = 0;

		for (size_t i = 0; i < json_object_array_length(all); i++) {
			struct json_object *e = json_object_array_get_idx(all, i);
			int64_t ps, pe;

			pr_time_parse(str(e, "start"), strlen(str(e, "start")), &ps);
			pr_time_parse(str(e, "end"), strlen(str(e, "end")), &pe);
			if (ps < b && pe > a) {
				assert_true(j < json_object_array_length(got));
				assert_int_equal(
				    num(json_object_array_get_idx(got, j), "seq"), num(e, "seq"));
				j++;
			}
		}
		assert_int_equal(j, json_object_array_length(got));
		json_object_put(got);
		if (q == 20) {
			/* Half of them gone, for the rest of the windows. */
			for (int i = 0; i < N; i += 2) {
				int64_t len = i % 10 == 0 ? DAY : HOUR;

				part_clear(m[2], "s", i % 3 == 0 ? "q" : "p", T0 + (i / 2) * HOUR,
				    T0 + (i / 2) * HOUR + len);
			}
			json_object_put(all);
			all = parse(
			    pr_http_mirror_partitions_json(m[2], "s", R(0, 0), &(int) { 0 }));
		}
	}
	json_object_put(all);
	free(perm);
	for (int x = 0; x < 3; x++) {
		pr_http_mirror_free(m[x]);
	}
}

/* A blocker as the brute force sees it. */
struct bf {
	int64_t start, end;
	const char *provider, *state;
	uint64_t seq;
};

static unsigned
lclass(int64_t a, int64_t b)
{
	return 63u - (unsigned)__builtin_clzll((uint64_t)(b - a));
}

static int
bf_order(const void *x, const void *y)
{
	const struct bf *a = x, *b = y;

	if (lclass(a->start, a->end) != lclass(b->start, b->end)) {
		return lclass(a->start, a->end) < lclass(b->start, b->end) ? -1 : 1;
	}
	if (a->start != b->start) {
		return a->start < b->start ? -1 : 1;
	}
	if (a->end != b->end) {
		return a->end < b->end ? -1 : 1;
	}
	return strcmp(a->provider, b->provider);
}

/*
 * 100,000 partitions of two providers, hours and days, in every state,
 * with the summary the agent would retain for them: readiness for many
 * windows equals the brute force over every partition (the readiness
 * rule on the ready union and every overlapping blocker, in the agent's
 * order).
 */
static void
test_readiness_brute_force(void **state)
{
	enum { N = 100000 };
	static const char *const st[] = { "pending", "locked", "ready", "failed", "deleted" };
	struct pr_http_mirror *m = mirror();
	struct bf *all = calloc(N, sizeof *all), *bl = calloc(N, sizeof *bl);
	struct pr_range *ready = calloc(N, sizeof *ready), *blocked = calloc(N, sizeof *blocked);
	size_t nready = 0, nblocked = 0, len = 0, cap = 16u << 20;
	char *body = malloc(cap), a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
	uint64_t s = 2463534242ull;

	(void)state;
	for (int i = 0; i < N; i++) {
		struct bf *p = &all[i];
		int day = i % 50 == 0;
		uint64_t r = rnd(&s) % 100;

		p->provider = day ? "q" : "p";
		p->start = day ? T0 + (int64_t)(i / 24) * DAY : T0 + (int64_t)i * HOUR;
		p->end = p->start + (day ? DAY : HOUR);
		p->state = st[r < 1 ? 0 : r < 2 ? 1 : r < 3 ? 3 : r < 4 ? 4 : 2];
		p->seq = (uint64_t)i + 1;
		part(m, "s", p->provider, p->start, p->end, p->state, p->seq);
		if (strcmp(p->state, "ready") == 0) {
			ready[nready++] = (struct pr_range) { p->start, p->end };
		} else if (strcmp(p->state, "deleted") != 0) {
			blocked[nblocked] = (struct pr_range) { p->start, p->end };
			bl[nblocked++] = *p;
		}
	}
	/* Day partitions of q land on the same keys now and then: the last
	 * one stands, as in the mirror. */
	qsort(bl, nblocked, sizeof *bl, bf_order);
	{
		size_t k = 0;

		for (size_t i = 0; i < nblocked; i++) {
			if (k > 0 && bl[k - 1].start == bl[i].start && bl[k - 1].end == bl[i].end
			    && strcmp(bl[k - 1].provider, bl[i].provider) == 0) {
				bl[k - 1] = bl[i];
			} else {
				bl[k++] = bl[i];
			}
		}
		nblocked = k;
		nready = 0;
		for (int i = 0; i < N; i++) {
			/* The last state of each key. */
			int later = 0;

			if (all[i].provider[0] == 'q') {
				later = i + 50 < N && all[i + 50].start == all[i].start;
			}
			if (!later && strcmp(all[i].state, "ready") == 0) {
				ready[nready++] = (struct pr_range) { all[i].start, all[i].end };
			}
		}
		for (size_t i = 0; i < nblocked; i++) {
			blocked[i] = (struct pr_range) { bl[i].start, bl[i].end };
		}
	}
	nready = pr_ranges_coalesce(ready, nready);
	len = (size_t)snprintf(body, cap,
	    "{\"v\":2,\"source\":\"s\",\"owner\":\"o\",\"seq\":9,\"epoch\":1,"
	    "\"updated_at\":\"2023-01-01T00:00:00Z\",\"truncated\":false,\"ready\":[");
	for (size_t i = 0; i < nready; i++) {
		len += (size_t)snprintf(body + len, cap - len, "%s[\"%s\",\"%s\"]", i ? "," : "",
		    pr_time_format(ready[i].start, a), pr_time_format(ready[i].end, b));
	}
	len += (size_t)snprintf(body + len, cap - len, "],\"blocked\":[");
	for (size_t i = 0; i < nblocked; i++) {
		len += (size_t)snprintf(body + len, cap - len,
		    "%s{\"start\":\"%s\",\"end\":\"%s\",\"provider\":\"%s\",\"state\":\"%s\","
		    "\"count\":1}",
		    i ? "," : "", pr_time_format(bl[i].start, a), pr_time_format(bl[i].end, b),
		    bl[i].provider, bl[i].state);
	}
	snprintf(body + len, cap - len, "]}");
	put(m, P "/state/s", body);

	for (int q = 0; q < 300; q++) {
		int64_t wa = T0 + (int64_t)(rnd(&s) % (N + 48)) * HOUR - DAY;
		int64_t wb = wa + HOUR * (1 + (int64_t)(rnd(&s) % (q % 10 == 0 ? N : 72)));
		struct pr_range gaps[64];
		struct pr_readiness r = { .gaps = gaps, .gaps_cap = 64 };
		struct json_object *o, *ba;
		size_t k = 0;

		pr_readiness_eval(R(wa, wb), ready, nready, blocked, nblocked, &r);
		assert_int_equal(readiness(m, "s", wa, wb, &o), 0);
		assert_int_equal(
		    json_object_get_boolean(json_object_object_get(o, "ready")), r.ready);
		assert_int_equal(json_object_array_length(json_object_object_get(o, "gaps")),
		    r.ngaps < 64 ? r.ngaps : 64);
		ba = json_object_object_get(o, "blockers");
		for (size_t i = 0; i < nblocked; i++) {
			struct json_object *e;

			if (!(bl[i].start < wb && bl[i].end > wa)) {
				continue;
			}
			assert_true(k < json_object_array_length(ba));
			e = json_object_array_get_idx(ba, k++);
			assert_string_equal(str(e, "provider"), bl[i].provider);
			assert_string_equal(str(e, "state"), bl[i].state);
			assert_int_equal(num(e, "seq"), bl[i].seq);
			assert_false(json_object_object_get_ex(e, "epoch", NULL));
		}
		assert_int_equal(k, json_object_array_length(ba));
		assert_int_equal(k, r.nblockers);
		json_object_put(o);
	}
	free(all);
	free(bl);
	free(ready);
	free(blocked);
	free(body);
	pr_http_mirror_free(m);
}

/* Gauges and expiry follow state changes: a ready partition (with an
 * expiry) locked again is not pruned; one turning ready is, by its new
 * message's expiry. */
static void
test_state_changes_reindexed(void **state)
{
	struct pr_http_mirror *m = mirror();
	struct pr_http_gauge *g;

	(void)state;
	part_expiring(m, "s", T0, T1, "ready", 1, 60, T0);
	part_expiring(m, "s", T1, T2, "pending", 2, -1, T0);
	part_expiring(m, "s", T0, T1, "locked", 3, -1, T1);
	part_expiring(m, "s", T1, T2, "ready", 4, 60, T2);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 1);
	assert_int_equal(g[0].count[PR_READY], 1);
	assert_int_equal(g[0].count[PR_LOCKED], 1);
	assert_int_equal(g[0].count[PR_PENDING], 0);
	assert_true(g[0].oldest_lock_since == T1);
	free(g);
	/* T1 + 60 s: the ready one (since T2) stays, the locked one too. */
	pr_http_mirror_prune(m, T1 + 60 * SEC);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 1);
	assert_int_equal(g[0].count[PR_READY] + g[0].count[PR_LOCKED], 2);
	free(g);
	pr_http_mirror_prune(m, T2 + 60 * SEC);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 1);
	assert_int_equal(g[0].count[PR_READY], 0);
	assert_int_equal(g[0].count[PR_LOCKED], 1);
	free(g);
	/* Unlocked and cleared: the source goes with its last partition. */
	part_clear(m, "s", "p", T0, T1);
	assert_int_equal(pr_http_mirror_gauges(m, &g), 0);
	free(g);
	pr_http_mirror_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summaries_listed_by_name),
		cmocka_unit_test(test_stale_copies_dropped),
		cmocka_unit_test(test_empty_payloads_clear),
		cmocka_unit_test(test_malformed_ignored),
		cmocka_unit_test(test_topics_outside_prefix),
		cmocka_unit_test(test_agent_status),
		cmocka_unit_test(test_new_store_begins_again),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_readiness_as_the_agent_example),
		cmocka_unit_test(test_readiness_ready_and_gaps),
		cmocka_unit_test(test_readiness_blocker_order),
		cmocka_unit_test(test_readiness_ask_the_agent),
		cmocka_unit_test(test_readiness_vectors),
		cmocka_unit_test(test_partitions_window_and_order),
		cmocka_unit_test(test_gauges),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_watch_snapshot_then_changes),
		cmocka_unit_test(test_watch_far_behind_dropped),
		cmocka_unit_test(test_watch_wakes),
		cmocka_unit_test(test_watch_big_snapshot_across_changes),
		cmocka_unit_test(test_watch_position_exact),
		cmocka_unit_test(test_watch_redelivery_no_event),
		cmocka_unit_test(test_watch_memory_bounded),
		cmocka_unit_test(test_insert_orders),
		cmocka_unit_test(test_readiness_brute_force),
		cmocka_unit_test(test_state_changes_reindexed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
