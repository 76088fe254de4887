/* SPDX-License-Identifier: MIT */
/*
 * The route modules (http/seed.c, v1.c, ops.c) and resp.c, driven with
 * requests made here: this file gives its own pr_http_arg and
 * pr_http_header (a query string and headers from a table), the two
 * functions through which a route reads a request, so server.c and
 * libmicrohttpd stay out (http/CMakeLists.txt). The agent is not there:
 * the MQTT client points at a port where no broker listens, so only what
 * the front door answers itself is tested — parameter checks, method
 * handling, Accept negotiation, and what is answered from the mirror.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <json-c/json.h>

#include <partreg/client.h>

#include "config.h"
#include "metrics.h"
#include "mirror.h"
#include "routes.h"
#include "server.h"

#define P "partreg/v1"

/* ---- the request edge ---- */

/* Query parameters by name, headers as "h:Name". */
struct fake {
	const char *kv[12][2];
};

static const char *
lookup(const struct pr_http_req *r, const char *prefix, const char *name)
{
	const struct fake *f = r->conn;
	size_t n = strlen(prefix);

	for (size_t i = 0; f != NULL && i < 12 && f->kv[i][0] != NULL; i++) {
		const char *k = f->kv[i][0];

		/* Header names match in any case, parameter names exactly. */
		if (n > 0 ? strncmp(k, prefix, n) == 0 && strcasecmp(k + n, name) == 0
		          : strncmp(k, "h:", 2) != 0 && strcmp(k, name) == 0) {
			return f->kv[i][1];
		}
	}
	return NULL;
}

const char *
pr_http_arg(const struct pr_http_req *r, const char *name)
{
	return lookup(r, "", name);
}

const char *
pr_http_header(const struct pr_http_req *r, const char *name)
{
	return lookup(r, "h:", name);
}

/* ---- an app without an agent ---- */

static struct pr_http_config cfg;
static struct pr_http_app app;

static int
setup(void **state)
{
	char *argv[] = { (char *)"partreg-http", NULL };
	struct pr_client_opts co = { 0 };

	(void)state;
	assert_int_equal(pr_http_config_load(&cfg, 1, argv, stderr), 0);
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
	pr_http_config_release(&cfg);
	memset(&app, 0, sizeof app);
	return 0;
}

static void
put(const char *topic, const char *payload)
{
	pr_http_mirror_message(app.mirror, topic, payload, strlen(payload));
}

/* Dispatch as server.c does: v1, seed, ops, then 404. */
struct answer {
	int status;
	const char *route;
	const char *ctype;
	const char *allow;
	const char *location;
	int stream;
	char *body;
	struct json_object *json; /* body parsed when it is JSON */
};

static struct answer
request(const char *method, const char *path, const struct fake *f, const char *body)
{
	struct pr_http_req req = { 0 };
	struct pr_http_resp resp = { 0 };
	struct answer a = { 0 };

	req.app = &app;
	req.conn = (void *)f;
	req.method = method;
	req.path = path;
	req.body = body != NULL ? body : "";
	req.body_len = strlen(req.body);
	req.fd = -1;
	if (!pr_http_v1_route(&req, &resp) && !pr_http_seed_route(&req, &resp)
	    && !pr_http_ops_route(&req, &resp)) {
		resp.route = "/{unknown}";
		resp.status = 404;
	}
	a.status = resp.status;
	a.route = resp.route;
	a.ctype = resp.ctype;
	a.allow = resp.allow;
	a.location = resp.location;
	a.stream = resp.stream;
	if (resp.body != NULL) {
		a.body = resp.body;
	} else {
		a.body = malloc(resp.len + 1);
		assert_non_null(a.body);
		memcpy(a.body, resp.data != NULL ? resp.data : "", resp.len);
		a.body[resp.len] = '\0';
	}
	if (a.ctype != NULL && strcmp(a.ctype, PR_HTTP_JSON) == 0) {
		a.json = json_tokener_parse(a.body);
		if (a.json == NULL) {
			fail_msg("%s %s: not JSON: %s", method, path, a.body);
		}
	}
	return a;
}

static void
done(struct answer *a)
{
	free(a->body);
	json_object_put(a->json);
}

static const char *
at(struct json_object *o, const char *path)
{
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		if (json_object_is_type(o, json_type_array)) {
			o = json_object_array_get_idx(o, (size_t)atoi(key));
		} else if (!json_object_object_get_ex(o, key, &o)) {
			return NULL;
		}
		path = dot + 1;
	}
	if (json_object_is_type(o, json_type_array)) {
		o = json_object_array_get_idx(o, (size_t)atoi(path));
	} else if (!json_object_object_get_ex(o, path, &o)) {
		return NULL;
	}
	return o != NULL ? json_object_get_string(o) : "null";
}

#define SUMMARY(src, ready, blocked)                                                               \
	"{\"v\":2,\"source\":\"" src "\",\"owner\":\"o\",\"seq\":4,\"epoch\":1,\"updated_at\":"    \
	"\"2023-01-01T00:00:00Z\",\"ready\":" ready ",\"blocked\":" blocked                        \
	",\"truncated\":false}"

/* ---- seed routes ---- */

static void
test_seed_readiness_from_mirror(void **state)
{
	static const struct fake day = { { { "start", "2023-01-01" }, { "end", "2023-01-02" } } };
	static const struct fake spaced
	    = { { { "start", "2023-01-01 00:00:00" }, { "end", "2023-01-02T00:00:00" } } };
	static const struct fake offset = { { { "start", "2023-01-01T02:00:00+02:00" },
	    { "end", "2023-01-01T19:00:00-05:00" } } };
	static const struct fake wide = { { { "start", "2023-01-01" }, { "end", "2023-01-06" } } };
	struct answer a;

	(void)state;
	put(P "/state/orders",
	    SUMMARY("orders",
	        "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"],"
	        "[\"2023-01-03T00:00:00Z\",\"2023-01-04T00:00:00Z\"]]",
	        "[{\"start\":\"2023-01-03T00:00:00Z\",\"end\":\"2023-01-04T00:00:00Z\","
	        "\"provider\":\"etl\",\"state\":\"locked\",\"count\":1},"
	        "{\"start\":\"2023-01-04T00:00:00Z\",\"end\":\"2023-01-05T00:00:00Z\","
	        "\"provider\":\"cron\",\"state\":\"failed\",\"count\":1}]"));
	put(P "/state/orders/partitions/2023-01-03T00:00:00Z/2023-01-04T00:00:00Z/etl",
	    "{\"source\":\"orders\",\"provider\":\"etl\",\"start\":\"2023-01-03T00:00:00Z\","
	    "\"end\":\"2023-01-04T00:00:00Z\",\"state\":\"locked\",\"version\":1,\"fence\":7,"
	    "\"since\":\"2023-01-03T01:00:00Z\",\"updated_at\":\"2023-01-03T01:00:00Z\","
	    "\"seq\":3,\"expires_at\":\"2023-01-03T02:00:00Z\",\"epoch\":1}");
	put(P "/state/orders/partitions/2023-01-04T00:00:00Z/2023-01-05T00:00:00Z/cron",
	    "{\"source\":\"orders\",\"provider\":\"cron\",\"start\":\"2023-01-04T00:00:00Z\","
	    "\"end\":\"2023-01-05T00:00:00Z\",\"state\":\"failed\",\"version\":1,\"fence\":2,"
	    "\"since\":\"2023-01-04T01:00:00Z\",\"updated_at\":\"2023-01-04T01:00:00Z\","
	    "\"seq\":4,\"reason\":\"lease_expired\",\"epoch\":1}");

	/* Every spelling of the same day the agent takes. */
	for (int i = 0; i < 3; i++) {
		a = request("GET", "/sources/orders/check_readiness",
		    i == 0       ? &day
		        : i == 1 ? &spaced
		                 : &offset,
		    NULL);
		assert_int_equal(a.status, 200);
		assert_string_equal(a.route, "/sources/{source_name}/check_readiness");
		assert_string_equal(
		    a.body, "{\"status_code\":200,\"is_ready\":true,\"message\":null}");
		done(&a);
	}
	/* Not ready: the gaps, then each blocker in words. */
	a = request("GET", "/sources/orders/check_readiness", &wide, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(at(a.json, "is_ready"), "false");
	assert_string_equal(at(a.json, "message"),
	    "not ready for [2023-01-01T00:00:00Z, 2023-01-06T00:00:00Z); not covered by a "
	    "ready partition: [2023-01-02T00:00:00Z, 2023-01-03T00:00:00Z), "
	    "[2023-01-04T00:00:00Z, 2023-01-06T00:00:00Z); blocked by: locked partition "
	    "[2023-01-03T00:00:00Z, 2023-01-04T00:00:00Z) of provider 'etl' (fence 7, lease "
	    "until 2023-01-03T02:00:00Z), failed partition [2023-01-04T00:00:00Z, "
	    "2023-01-05T00:00:00Z) of provider 'cron' (lease_expired)");
	done(&a);
}

/* FastAPI's 422, naming each bad parameter. */
static void
test_seed_bad_parameters(void **state)
{
	static const struct {
		const char *method, *path;
		struct fake f;
		const char *detail; /* the detail array, compact */
	} cases[] = {
		{ "GET", "/sources/orders/check_readiness", { { { "start", "2023-01-01" } } },
		    "[{\"loc\":[\"query\",\"end\"],\"msg\":\"Field "
		    "required\",\"type\":\"missing\"}]" },
		{ "GET", "/sources/orders/check_readiness",
		    { { { "start", "yesterday" }, { "end", "2023-13-01" } } },
		    "[{\"loc\":[\"query\",\"start\"],\"msg\":\"Input should be a valid datetime: "
		    "YYYY-MM-DD HH:MM:SS (or with 'T'), optional fraction and offset, no offset = "
		    "UTC\",\"type\":\"datetime_parsing\"},{\"loc\":[\"query\",\"end\"],\"msg\":"
		    "\"Input should be a valid datetime: YYYY-MM-DD HH:MM:SS (or with 'T'), "
		    "optional fraction and offset, no offset = "
		    "UTC\",\"type\":\"datetime_parsing\"}]" },
		{ "GET", "/sources/orders/check_readiness",
		    { { { "start", "2023-01-02" }, { "end", "2023-01-02 00:00:00" } } },
		    "[{\"loc\":[\"query\",\"end\"],\"msg\":\"end must be after start\",\"type\":"
		    "\"value_error\"}]" },
		{ "GET", "/sources/$orders/check_readiness",
		    { { { "start", "2023-01-01" }, { "end", "2023-01-02" } } },
		    "[{\"loc\":[\"query\",\"source_name\"],\"msg\":\"not a valid source name\","
		    "\"type\":\"value_error\"}]" },
		{ "POST", "/sources/register", { { { "source_name", "a+b" } } },
		    "[{\"loc\":[\"query\",\"source_name\"],\"msg\":\"a name is 1-200 bytes of "
		    "UTF-8 "
		    "without control characters, '/', '+' or '#', not starting with '$'\",\"type\":"
		    "\"value_error\"},{\"loc\":[\"query\",\"owner\"],\"msg\":\"Field required\","
		    "\"type\":\"missing\"}]" },
		{ "POST", "/providers/register", { { { "provider_name", "" } } },
		    "[{\"loc\":[\"query\",\"provider_name\"],\"msg\":\"Field required\",\"type\":"
		    "\"missing\"}]" },
		{ "POST", "/partitions/lock",
		    { { { "source_name", "s" }, { "provider_name", "p" }, { "start", "2023-01-01" },
		        { "end", "2023-01-02T00:00:00+01:00:00" }, { "ttl_s", "0" } } },
		    "[{\"loc\":[\"query\",\"end\"],\"msg\":\"Input should be a valid datetime: "
		    "YYYY-MM-DD HH:MM:SS (or with 'T'), optional fraction and offset, no offset = "
		    "UTC\",\"type\":\"datetime_parsing\"},{\"loc\":[\"query\",\"ttl_s\"],\"msg\":"
		    "\"Input should be an integer from 1 to 2592000\",\"type\":\"int_parsing\"}]" },
		{ "POST", "/partitions/unlock",
		    { { { "source_name", "s" }, { "provider_name", "p" }, { "start", "2023-01-01" },
		        { "end", "2023-01-02" }, { "fence", "-1" } } },
		    "[{\"loc\":[\"query\",\"fence\"],\"msg\":\"Input should be an integer from 0 "
		    "to "
		    "9223372036854775807\",\"type\":\"int_parsing\"}]" },
		{ "POST", "/partitions/lock",
		    { { { "source_name", "s" }, { "provider_name", "p" }, { "start", "2023-01-01" },
		        { "end", "2023-01-02" }, { "ttl_s", "2592001" } } },
		    "[{\"loc\":[\"query\",\"ttl_s\"],\"msg\":\"Input should be an integer from 1 "
		    "to "
		    "2592000\",\"type\":\"int_parsing\"}]" },
		{ "POST", "/partitions/register", { { { "start", "2023-02-30" } } },
		    "[{\"loc\":[\"query\",\"source_name\"],\"msg\":\"Field required\",\"type\":"
		    "\"missing\"},{\"loc\":[\"query\",\"provider_name\"],\"msg\":\"Field "
		    "required\","
		    "\"type\":\"missing\"},{\"loc\":[\"query\",\"start\"],\"msg\":\"Input should "
		    "be a "
		    "valid datetime: YYYY-MM-DD HH:MM:SS (or with 'T'), optional fraction and "
		    "offset, no offset = UTC\",\"type\":\"datetime_parsing\"},{\"loc\":[\"query\","
		    "\"end\"],\"msg\":\"Field required\",\"type\":\"missing\"}]" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct answer a = request(cases[i].method, cases[i].path, &cases[i].f, NULL);
		struct json_object *d;

		assert_int_equal(a.status, 422);
		assert_string_equal(at(a.json, "status_code"), "422");
		assert_true(json_object_object_get_ex(a.json, "detail", &d));
		assert_string_equal(json_object_to_json_string_ext(
		                        d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
		    cases[i].detail);
		done(&a);
	}
}

static void
test_seed_token_and_methods(void **state)
{
	static const struct fake lock = { { { "source_name", "s" }, { "provider_name", "p" },
	    { "start", "2023-01-01" }, { "end", "2023-01-02" } } };
	static const struct fake prov = { { { "provider_name", "p" } } };
	struct answer a;

	(void)state;
	a = request("POST", "/partitions/lock", &lock, NULL);
	assert_int_equal(a.status, 401);
	assert_string_equal(a.route, "/partitions/lock");
	assert_string_equal(at(a.json, "code"), "unauthorized");
	assert_string_equal(at(a.json, "detail"),
	    "lock needs the access_token of source 's' or of its provider 'p' (query "
	    "access_token or Authorization: Bearer)");
	assert_string_equal(at(a.json, "headers"), "null");
	done(&a);
	a = request("POST", "/providers/register", &prov, NULL);
	assert_int_equal(a.status, 401);
	done(&a);

	static const struct {
		const char *method, *path, *allow, *route;
	} wrong[] = {
		{ "GET", "/sources/register", "POST", "/sources/register" },
		{ "PUT", "/providers/register", "POST", "/providers/register" },
		{ "GET", "/partitions/register", "POST", "/partitions/register" },
		{ "GET", "/partitions/lock", "POST", "/partitions/lock" },
		{ "DELETE", "/partitions/unlock", "POST", "/partitions/unlock" },
		{ "POST", "/sources/orders/check_readiness", "GET, HEAD",
		    "/sources/{source_name}/check_readiness" },
	};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		a = request(wrong[i].method, wrong[i].path, NULL, NULL);
		assert_int_equal(a.status, 405);
		assert_string_equal(a.allow, wrong[i].allow);
		assert_string_equal(a.route, wrong[i].route);
		assert_string_equal(at(a.json, "error.code"), "method_not_allowed");
		done(&a);
	}
	/* Not the seed's: left to the 404. */
	static const char *const none[] = { "/partitions/renew", "/partitions/", "/sources/orders",
		"/sources/orders/check_readiness/x", "/sources//check_readiness",
		"/sources/register/x", "/source/register" };
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		a = request("POST", none[i], NULL, NULL);
		assert_int_equal(a.status, 404);
		assert_string_equal(a.route, "/{unknown}");
		done(&a);
	}
}

static void
test_token(void **state)
{
	static const struct {
		struct fake f;
		const char *token;
	} cases[] = {
		{ { { { "access_token", "q" }, { "h:Authorization", "Bearer h" } } }, "q" },
		{ { { { "access_token", "" }, { "h:Authorization", "Bearer h" } } }, "h" },
		{ { { { "h:authorization", "bearer   h2" } } }, "h2" },
		{ { { { "h:Authorization", "Bearer " } } }, NULL },
		{ { { { "h:Authorization", "Basic dXNlcjpwdw==" } } }, NULL },
		{ { { { "h:Authorization", "Bearerx" } } }, NULL },
		{ { { { "Authorization", "Bearer h" } } }, NULL }, /* a parameter, not a header */
		{ { { { NULL } } }, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct pr_http_req req = { .app = &app, .conn = (void *)&cases[i].f };
		const char *t = pr_http_token(&req);

		if (cases[i].token == NULL) {
			assert_null(t);
		} else {
			assert_non_null(t);
			assert_string_equal(t, cases[i].token);
		}
	}
}

/* ---- ops: GET / by Accept, methods, the small routes ---- */

static void
test_root_accept(void **state)
{
	static const struct {
		const char *accept; /* NULL: no header */
		int html;
	} cases[] = {
		{ NULL, 0 },
		{ "", 0 },
		{ "*/*", 0 },
		{ "application/json", 0 },
		{ "text/html", 1 },
		{ "TEXT/HTML", 1 },
		{ "text/*", 1 },
		{ "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 1 },
		{ "application/json, text/html", 0 },
		{ "text/html;q=0.5, application/json", 0 },
		{ "application/json;q=0.5, text/html;q=0.9", 1 },
		{ "application/json; q=0.5, text/html ; q=0.9", 1 },
		{ "text/html; q=0.2, */*;q=0.5", 0 },
		{ "text/*;q=0.1, text/html;q=0.9, application/*;q=0.5", 1 },
		{ "text/html;q=0", 0 },
		{ "text/htmlx", 0 },
		{ "texts/html", 0 },
		{ "text/plain", 0 },
		{ "garbage", 0 },
		{ "application/json;q=0, */*", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fake f = { { { "h:Accept", cases[i].accept } } };
		struct answer a = request("GET", "/", cases[i].accept != NULL ? &f : NULL, NULL);

		assert_int_equal(a.status, 200);
		assert_string_equal(a.route, "/");
		if (cases[i].html) {
			if (strncmp(a.ctype, "text/html", 9) != 0) {
				fail_msg(
				    "Accept: %s: %s, expected the page", cases[i].accept, a.ctype);
			}
			assert_non_null(strstr(a.body, "<html"));
		} else {
			if (strcmp(a.ctype, PR_HTTP_JSON) != 0) {
				fail_msg("Accept: %s: %s, expected JSON", cases[i].accept, a.ctype);
			}
			assert_string_equal(at(a.json, "status_code"), "200");
		}
		done(&a);
	}
}

static void
test_ops_routes(void **state)
{
	struct answer a;
	char *text;

	(void)state;
	a = request("GET", "/healthz", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, "ok\n");
	done(&a);
	a = request("GET", "/redoc", NULL, NULL);
	assert_int_equal(a.status, 308);
	assert_string_equal(a.location, "/docs");
	done(&a);
	a = request("GET", "/docs", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ctype, "text/html; charset=utf-8");
	done(&a);
	a = request("GET", "/app.js", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.route, "/{static}");
	assert_string_equal(a.ctype, "text/javascript; charset=utf-8");
	done(&a);
	a = request("GET", "/style.css", NULL, NULL);
	assert_string_equal(a.ctype, "text/css; charset=utf-8");
	done(&a);
	a = request("GET", "/openapi.json", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(a.json);
	done(&a);
	a = request("GET", "/nothing-here", NULL, NULL);
	assert_int_equal(a.status, 404);
	done(&a);

	/* Read-only: other methods 405 on every route here, 404 elsewhere. */
	static const char *const ro[]
	    = { "/", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/app.js" };
	for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
		a = request("POST", ro[i], NULL, NULL);
		assert_int_equal(a.status, 405);
		assert_string_equal(a.allow, "GET, HEAD");
		done(&a);
	}
	a = request("DELETE", "/nothing-here", NULL, NULL);
	assert_int_equal(a.status, 404);
	assert_string_equal(a.route, "/{unknown}");
	done(&a);

	/* No broker, no agent status: /readyz 503, then the agent's state. */
	a = request("GET", "/readyz", NULL, NULL);
	assert_int_equal(a.status, 503);
	assert_string_equal(a.body, "{\"broker\":\"disconnected\",\"agent\":\"unknown\"}");
	done(&a);
	put(P "/agent/status", "{\"status\":\"offline\",\"at\":\"2023-01-01T00:00:00Z\"}");
	a = request("GET", "/readyz", NULL, NULL);
	assert_string_equal(a.body,
	    "{\"broker\":\"disconnected\",\"agent\":\"offline\",\"agent_since\":"
	    "\"2023-01-01T00:00:00Z\"}");
	done(&a);
	put(P "/agent/status",
	    "{\"status\":\"offline\",\"lost\":true,\"at\":\"2023-01-01T00:00:00Z\"}");
	a = request("GET", "/readyz", NULL, NULL);
	assert_string_equal(
	    a.body, "{\"broker\":\"disconnected\",\"agent\":\"offline\",\"agent_lost\":true}");
	done(&a);

	a = request("GET", "/metrics", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ctype, "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(a.body, "partreg_http_broker_connected 0\n"));
	done(&a);
	text = pr_http_metrics_render(&app);
	assert_non_null(text);
	free(text);
}

/* ---- v1: route matching, methods, reads from the mirror ---- */

static void
test_v1_routes(void **state)
{
	static const struct fake win = { { { "start", "2023-01-01" }, { "end", "2023-01-02" } } };
	static const struct fake half = { { { "start", "2023-01-01" } } };
	static const struct fake badt = { { { "start", "2023-01-01" }, { "end", "soon" } } };
	static const struct fake rev = { { { "start", "2023-01-02" }, { "end", "2023-01-01" } } };
	struct answer a;

	(void)state;
	a = request("GET", "/v1/sources", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, "{\"items\":[],\"agent\":null}");
	done(&a);
	put(P "/state/s",
	    SUMMARY("s", "[[\"2023-01-01T00:00:00Z\",\"2023-01-02T00:00:00Z\"]]", "[]"));
	put(P "/state/s/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/p",
	    "{\"source\":\"s\",\"provider\":\"p\",\"state\":\"ready\",\"seq\":2,\"epoch\":1}");
	put(P "/state/s/partitions/2023-01-05T00:00:00Z/2023-01-06T00:00:00Z/p",
	    "{\"source\":\"s\",\"provider\":\"p\",\"state\":\"ready\",\"seq\":3,\"epoch\":1}");
	put(P "/agent/status", "{\"status\":\"online\"}");
	a = request("GET", "/v1/sources", NULL, NULL);
	assert_string_equal(at(a.json, "items.0.source"), "s");
	assert_string_equal(at(a.json, "agent.status"), "online");
	done(&a);
	a = request("GET", "/v1/sources/s", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.route, "/v1/sources/{source}");
	assert_string_equal(at(a.json, "seq"), "4");
	done(&a);
	a = request("GET", "/v1/sources/t", NULL, NULL);
	assert_int_equal(a.status, 404);
	done(&a);
	a = request("GET", "/v1/sources/s/partitions", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_int_equal(json_object_array_length(json_object_object_get(a.json, "items")), 2);
	done(&a);
	a = request("GET", "/v1/sources/s/partitions", &win, NULL);
	assert_int_equal(json_object_array_length(json_object_object_get(a.json, "items")), 1);
	done(&a);
	a = request("GET", "/v1/sources/s/partitions", &half, NULL);
	assert_int_equal(a.status, 400);
	assert_string_equal(at(a.json, "error.message"),
	    "query parameter end is missing (start and end go together)");
	done(&a);
	a = request("GET", "/v1/sources/s/readiness", NULL, NULL);
	assert_int_equal(a.status, 400);
	assert_string_equal(at(a.json, "error.message"),
	    "query parameter start is missing (start and end are required)");
	done(&a);
	a = request("GET", "/v1/sources/s/readiness", &badt, NULL);
	assert_int_equal(a.status, 400);
	assert_non_null(strstr(at(a.json, "error.message"), "query parameter end: not a time"));
	done(&a);
	a = request("GET", "/v1/sources/s/readiness", &rev, NULL);
	assert_int_equal(a.status, 422);
	assert_string_equal(at(a.json, "error.code"), "invalid_interval");
	done(&a);
	a = request("GET", "/v1/sources/s/readiness", &win, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(at(a.json, "ok"), "true");
	assert_string_equal(at(a.json, "result.ready"), "true");
	done(&a);
	a = request("GET", "/v1/sources/t/partitions", NULL, NULL);
	assert_int_equal(a.status, 404);
	done(&a);
	a = request("GET", "/v1/sources//partitions", NULL, NULL);
	assert_int_equal(a.status, 404);
	done(&a);
	a = request("GET", "/v1/sources/s/other", NULL, NULL);
	assert_int_equal(a.status, 404);
	done(&a);
	a = request("GET", "/v1/agent/status", NULL, NULL);
	assert_int_equal(a.status, 200);
	done(&a);
	a = request("GET", "/v1/agent/stats", NULL, NULL);
	assert_int_equal(a.status, 404);
	done(&a);
	a = request("GET", "/v1/stream", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_true(a.stream);
	done(&a);

	/* The plain readiness query, answered from the mirror with the
	 * agent's envelope and the request id. */
	a = request("POST", "/v1/readiness/query", NULL,
	    "{\"source\":\"s\",\"start\":\"2023-01-01\",\"end\":\"2023-01-01T12:00:00Z\","
	    "\"request_id\":\"r-1\"}");
	assert_int_equal(a.status, 200);
	assert_string_equal(a.route, "/v1/{command}");
	assert_string_equal(at(a.json, "request_id"), "r-1");
	assert_string_equal(at(a.json, "result.start"), "2023-01-01T00:00:00Z");
	assert_string_equal(at(a.json, "result.ready"), "true");
	done(&a);

	/* Methods. */
	static const struct {
		const char *method, *path, *allow;
	} wrong[] = {
		{ "GET", "/v1/partition/lock", "POST" },
		{ "GET", "/v1/readiness/query", "POST" },
		{ "POST", "/v1/sources", "GET, HEAD" },
		{ "PUT", "/v1/sources/s", "GET, HEAD" },
		{ "POST", "/v1/agent/status", "GET, HEAD" },
		{ "POST", "/v1/stream", "GET, HEAD" },
	};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		a = request(wrong[i].method, wrong[i].path, NULL, NULL);
		assert_int_equal(a.status, 405);
		assert_string_equal(a.allow, wrong[i].allow);
		done(&a);
	}
	static const char *const unknown[]
	    = { "/v1/", "/v1/partition/explode", "/v1/partition", "/v1/agent", "/v1/sourcesx" };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		a = request("POST", unknown[i], NULL, NULL);
		assert_int_equal(a.status, 404);
		assert_string_equal(a.route, "/v1/{unknown}");
		done(&a);
	}

	/* Bodies refused before anything is sent. */
	static const struct {
		const char *body, *message;
	} bodies[] = {
		{ "not json", "body: not a JSON object (null expected)" },
		{ "[1]", "body: not a JSON object (another JSON value)" },
		{ "{\"a\":1} {}", "body: not a JSON object (unexpected character)" },
		{ "{\"a\":1", "body: not a JSON object (continue)" },
		{ "{\"reply_to\":\"x\"}",
		    "body: field reply_to is not accepted here: the front door receives the reply "
		    "and answers the HTTP request with it" },
		{ "{\"correlation_id\":\"x\"}",
		    "body: field correlation_id is not accepted here: the front door receives the "
		    "reply and answers the HTTP request with it" },
	};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		a = request("POST", "/v1/partition/lock", NULL, bodies[i].body);
		assert_int_equal(a.status, 400);
		assert_string_equal(at(a.json, "error.code"), "bad_request");
		if (strcmp(at(a.json, "error.message"), bodies[i].message) != 0) {
			fail_msg("%s: %s", bodies[i].body, at(a.json, "error.message"));
		}
		done(&a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seed_readiness_from_mirror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_bad_parameters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_token_and_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_accept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_routes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
