/* SPDX-License-Identifier: MIT */
/*
 * http/metrics.c: /metrics as Prometheus text format 0.0.4 — counters by
 * route and code, the latency histogram (cumulative buckets, le="+Inf"
 * equal to _count, _sum), the agent's status and stats, the per-source
 * gauges, and label values escaped by the format's rules (backslash,
 * double quote, line feed). The MQTT client points at a port where no
 * broker listens, so the broker gauge reads 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <partreg/client.h>

#include "config.h"
#include "metrics.h"
#include "mirror.h"
#include "server.h"

#define P "partreg/v1"

static struct pr_http_config cfg;
static struct pr_http_app app;

static int
setup(void **state)
{
	struct pr_client_opts co = { 0 };

	(void)state;
	memset(&cfg, 0, sizeof cfg);
	app.cfg = &cfg;
	assert_int_equal(pr_http_mirror_new(P, &app.mirror), 0);
	assert_int_equal(pr_http_metrics_new(&app.metrics), 0);
	co.broker = "mqtt://127.0.0.1:1";
	co.prefix = P;
	assert_int_equal(pr_client_open(&co, &app.client), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	pr_client_close(app.client);
	pr_http_mirror_free(app.mirror);
	pr_http_metrics_free(app.metrics);
	memset(&app, 0, sizeof app);
	return 0;
}

static void
put(const char *topic, const char *payload)
{
	pr_http_mirror_message(app.mirror, topic, payload, strlen(payload));
}

static void
has(const char *text, const char *line)
{
	if (strstr(text, line) == NULL) {
		fail_msg("no line %s in:\n%s", line, text);
	}
}

/* The value of the sample whose name and labels are exactly sample. */
static double
sample(const char *text, const char *name_labels)
{
	size_t n = strlen(name_labels);

	for (const char *l = text; *l != '\0'; l = strchr(l, '\n') + 1) {
		if (strncmp(l, name_labels, n) == 0 && l[n] == ' ') {
			return strtod(l + n + 1, NULL);
		}
		if (strchr(l, '\n') == NULL) {
			break;
		}
	}
	fail_msg("no sample %s in:\n%s", name_labels, text);
	return 0;
}

static void
test_requests_and_histogram(void **state)
{
	static const char *const les[] = { "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
		"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" };
	const char *route = "/v1/{command}";
	char name[256], *text;
	double last = 0;

	(void)state;
	pr_http_metrics_observe(app.metrics, route, 200, 0.0001);
	pr_http_metrics_observe(app.metrics, route, 200, 0.005); /* on a bound: le is <= */
	pr_http_metrics_observe(app.metrics, route, 503, 0.3);
	pr_http_metrics_observe(app.metrics, route, 200, 12); /* over every bound */
	pr_http_metrics_observe(app.metrics, "/", 200, 0.002);
	text = pr_http_metrics_render(&app);
	assert_non_null(text);

	has(text, "# HELP partreg_http_requests_total ");
	has(text, "# TYPE partreg_http_requests_total counter\n");
	assert_true(
	    sample(text, "partreg_http_requests_total{route=\"/v1/{command}\",code=\"200\"}") == 3);
	assert_true(
	    sample(text, "partreg_http_requests_total{route=\"/v1/{command}\",code=\"503\"}") == 1);
	assert_true(sample(text, "partreg_http_requests_total{route=\"/\",code=\"200\"}") == 1);

	has(text, "# TYPE partreg_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
		double v;

		snprintf(name, sizeof name,
		    "partreg_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"}", route,
		    les[i]);
		v = sample(text, name);
		/* Cumulative: never less than the bucket before. */
		assert_true(v >= last);
		last = v;
	}
	assert_true(sample(text,
	                "partreg_http_request_duration_seconds_bucket{route=\"/v1/"
	                "{command}\",le=\"0.0005\"}")
	    == 1);
	assert_true(sample(text,
	                "partreg_http_request_duration_seconds_bucket{route=\"/v1/"
	                "{command}\",le=\"0.005\"}")
	    == 2);
	assert_true(sample(text,
	                "partreg_http_request_duration_seconds_bucket{route=\"/v1/"
	                "{command}\",le=\"0.25\"}")
	    == 2);
	assert_true(sample(text,
	                "partreg_http_request_duration_seconds_bucket{route=\"/v1/"
	                "{command}\",le=\"0.5\"}")
	    == 3);
	assert_true(sample(text,
	                "partreg_http_request_duration_seconds_bucket{route=\"/v1/"
	                "{command}\",le=\"10\"}")
	    == 3);
	assert_true(sample(text,
	                "partreg_http_request_duration_seconds_bucket{route=\"/v1/"
	                "{command}\",le=\"+Inf\"}")
	    == 4);
	assert_true(
	    sample(text, "partreg_http_request_duration_seconds_count{route=\"/v1/{command}\"}")
	    == 4);
	assert_true(
	    sample(text, "partreg_http_request_duration_seconds_sum{route=\"/v1/{command}\"}")
	    > 12.3051 - 1e-6);
	assert_true(
	    sample(text, "partreg_http_request_duration_seconds_sum{route=\"/v1/{command}\"}")
	    < 12.3051 + 1e-6);
	assert_true(
	    sample(text, "partreg_http_request_duration_seconds_bucket{route=\"/\",le=\"0.001\"}")
	    == 0);
	assert_true(
	    sample(text, "partreg_http_request_duration_seconds_bucket{route=\"/\",le=\"0.0025\"}")
	    == 1);
	assert_true(sample(text, "partreg_http_request_duration_seconds_count{route=\"/\"}") == 1);

	has(text, "partreg_http_broker_connected 0\n");
	has(text, "partreg_http_sse_clients 0\n");
	has(text, "partreg_agent_online 0\n");
	free(text);
}

/* Every family's TYPE once, before its samples, and every line a comment
 * or "name{labels} value". */
static void
test_well_formed(void **state)
{
	char *text, *copy, *save = NULL;
	char families[64][96];
	size_t nf = 0;

	(void)state;
	pr_http_metrics_observe(app.metrics, "/", 200, 0.1);
	put(P "/agent/status", "{\"status\":\"online\",\"agent_id\":\"a\",\"version\":\"1\"}");
	put(P "/agent/stats",
	    "{\"uptime_s\":5,\"commands\":{\"total\":7,\"refused\":1,\"replayed\":0},"
	    "\"batches\":3,\"leases_expired\":2,\"commit_ms\":{\"last\":250},\"queue\":0,"
	    "\"store\":{\"used_bytes\":4096,\"map_bytes\":1048576}}");
	put(P "/state/s/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/p",
	    "{\"state\":\"locked\",\"since\":\"2023-01-01T00:00:00Z\",\"seq\":1}");
	text = pr_http_metrics_render(&app);
	copy = strdup(text);
	for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char fam[96];

		if (strncmp(l, "# TYPE ", 7) == 0) {
			sscanf(l + 7, "%95s", fam);
			for (size_t i = 0; i < nf; i++) {
				if (strcmp(families[i], fam) == 0) {
					fail_msg("TYPE %s twice", fam);
				}
			}
			assert_true(nf < 64);
			snprintf(families[nf++], sizeof families[0], "%s", fam);
		} else if (strncmp(l, "# HELP ", 7) == 0) {
			continue;
		} else {
			size_t n = strcspn(l, "{ ");
			int found = 0;

			assert_true(l[n] == '{' || l[n] == ' ');
			/* A sample of the family last typed (histograms: _bucket,
			 * _sum, _count). */
			assert_true(nf > 0);
			found = strncmp(l, families[nf - 1], strlen(families[nf - 1])) == 0;
			if (!found) {
				fail_msg("sample outside its family: %s", l);
			}
		}
	}
	free(copy);
	has(text, "partreg_agent_online 1\n");
	has(text, "partreg_agent_info{agent_id=\"a\",version=\"1\"} 1\n");
	has(text, "partreg_agent_uptime_seconds 5\n");
	has(text, "partreg_agent_commands_total 7\n");
	has(text, "partreg_agent_commands_refused_total 1\n");
	has(text, "partreg_agent_commit_seconds_last 0.25\n");
	has(text, "partreg_agent_store_map_bytes 1048576\n");
	has(text, "partreg_source_partitions{source=\"s\",state=\"locked\"} 1\n");
	has(text, "partreg_source_partitions{source=\"s\",state=\"ready\"} 0\n");
	assert_true(sample(text, "partreg_source_oldest_lock_age_seconds{source=\"s\"}") > 1e7);
	/* No summary: no seq sample. */
	assert_null(strstr(text, "partreg_source_seq{"));
	free(text);
}

static void
test_label_escaping(void **state)
{
	char *text;

	(void)state;
	/* Names as topics may carry them (the mirror takes what the broker
	 * retains); the agent's identity is free text. */
	put(P "/state/a\"b\\c/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/p",
	    "{\"state\":\"pending\",\"seq\":1}");
	put(P "/state/x\ny",
	    "{\"v\":2,\"source\":\"x\\ny\",\"seq\":3,\"epoch\":1,\"updated_at\":"
	    "\"2023-01-01T00:00:00Z\",\"ready\":[],\"blocked\":[],\"truncated\":false}");
	put(P "/agent/status",
	    "{\"status\":\"online\",\"agent_id\":\"host \\\"1\\\"\\\\ \\n\",\"version\":\"v\"}");
	text = pr_http_metrics_render(&app);
	has(text, "partreg_source_partitions{source=\"a\\\"b\\\\c\",state=\"pending\"} 1\n");
	has(text, "partreg_source_seq{source=\"x\\ny\"} 3\n");
	has(text, "partreg_agent_info{agent_id=\"host \\\"1\\\"\\\\ \\n\",version=\"v\"} 1\n");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests_and_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_well_formed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_escaping, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
