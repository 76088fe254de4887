/* SPDX-License-Identifier: MIT */
/*
 * The JSON API under /v1/: POST /v1/<noun>/<verb> is the MQTT command of
 * that name, body for body and envelope for envelope (the HTTP status is
 * the envelope's); the GET routes read the mirror. readiness/query is
 * answered from the mirror when it can answer exactly (mirror.h), with the
 * agent's own result shape, so callers cannot tell the difference except
 * by its speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "names.h"
#include "routes.h"

static const char *const commands[] = {
	"agent/resync",
	"history/query",
	"partition/delete",
	"partition/fail",
	"partition/list",
	"partition/lock",
	"partition/register",
	"partition/renew",
	"partition/unlock",
	"provider/register",
	"readiness/query",
	"session/abort",
	"source/get",
	"source/list",
	"source/register",
	"source/rotate-token",
};

static void
fail_resp(struct pr_http_resp *resp, const struct pr_http_fail *f)
{
	pr_http_resp_error(resp, f->status, f->code, "%s", f->message);
}

static struct json_object *
readiness_body(const char *source, struct pr_range want, const char *request_id)
{
	struct json_object *b = json_object_new_object();
	char s[PR_TIME_BUFSZ], e[PR_TIME_BUFSZ];

	json_object_object_add(b, "source", json_object_new_string(source));
	json_object_object_add(b, "start", json_object_new_string(pr_time_format(want.start, s)));
	json_object_object_add(b, "end", json_object_new_string(pr_time_format(want.end, e)));
	if (request_id != NULL) {
		json_object_object_add(b, "request_id", json_object_new_string(request_id));
	}
	return b;
}

int
pr_http_readiness(struct pr_http_app *app, const char *source, struct pr_range want,
    const char *request_id, struct json_object **result, struct json_object **reply, int *status,
    struct pr_http_fail *f)
{
	struct json_object *body, *ok, *res;
	char *text = NULL;
	int rc;

	*result = *reply = NULL;
	rc = pr_http_mirror_readiness(app->mirror, source, want, &text);
	if (rc == 0) {
		*result = json_tokener_parse(text);
		free(text);
		if (*result != NULL) {
			return 0;
		}
		rc = -1;
	}
	if (rc < 0) {
		f->status = 500;
		f->code = "internal";
		snprintf(f->message, sizeof f->message, "out of memory");
		return -1;
	}
	body = readiness_body(source, want, request_id);
	rc = pr_http_forward(app, "readiness/query", body, reply, &text, status, f);
	json_object_put(body);
	if (rc != 0) {
		return -1;
	}
	free(text);
	if (json_object_object_get_ex(*reply, "ok", &ok) && json_object_get_boolean(ok)
	    && json_object_object_get_ex(*reply, "result", &res)) {
		*result = json_object_get(res);
		json_object_put(*reply);
		*reply = NULL;
		return 0;
	}
	return 1;
}

/* {ok: true, status: 200[, request_id], result}: the agent's envelope. */
static void
envelope_ok(struct pr_http_resp *resp, const char *request_id, struct json_object *result)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "status", json_object_new_int(200));
	if (request_id != NULL) {
		json_object_object_add(o, "request_id", json_object_new_string(request_id));
	}
	json_object_object_add(o, "result", result);
	pr_http_resp_json(resp, 200, o);
}

/* Forward command with body (borrowed) and answer with the agent's
 * envelope verbatim. */
static void
forward_verbatim(
    struct pr_http_req *req, struct pr_http_resp *resp, const char *cmd, struct json_object *body)
{
	struct pr_http_fail f;
	struct json_object *reply;
	char *text;
	int status;

	if (pr_http_forward(req->app, cmd, body, &reply, &text, &status, &f) != 0) {
		fail_resp(resp, &f);
		return;
	}
	json_object_put(reply);
	pr_http_resp_text(resp, status, PR_HTTP_JSON, text, 1);
}

/* Answer readiness of source over want locally, else ask the agent with
 * body (borrowed; NULL: built from the arguments). */
static void
readiness(struct pr_http_req *req, struct pr_http_resp *resp, const char *source,
    struct pr_range want, const char *request_id, struct json_object *body)
{
	struct json_object *own = NULL;
	char *text = NULL;
	int rc = pr_http_mirror_readiness(req->app->mirror, source, want, &text);

	if (rc == 0) {
		struct json_object *result = json_tokener_parse(text);

		free(text);
		if (result != NULL) {
			envelope_ok(resp, request_id, result);
			return;
		}
		rc = -1;
	}
	if (rc < 0) {
		pr_http_resp_error(resp, 500, "internal", "out of memory");
		return;
	}
	if (body == NULL) {
		body = own = readiness_body(source, want, request_id);
	}
	forward_verbatim(req, resp, "readiness/query", body);
	json_object_put(own);
}

const char *
pr_http_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)) {
		return json_object_get_string(v);
	}
	return NULL;
}

/* An access_token field the agent takes. */
static int
token_ok(struct json_object *v)
{
	const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

	return t != NULL && pr__token_check(t, strlen(t)) == 0;
}

/* POST /v1/readiness/query: locally when the body is a plain, valid query;
 * anything else goes to the agent, whose refusal is the authority. */
static void
readiness_query(struct pr_http_req *req, struct pr_http_resp *resp, struct json_object *body)
{
	const char *source = pr_http_str(body, "source"), *s = pr_http_str(body, "start"),
	           *e = pr_http_str(body, "end"), *rid = pr_http_str(body, "request_id");
	struct pr_range want;
	/* Valid as the agent would find it: else the agent answers (and
	 * refuses). */
	int plain = source != NULL && s != NULL && e != NULL
	    && pr__name_check(source, strlen(source)) == 0
	    && pr_time_parse(s, strlen(s), &want.start) == 0
	    && pr_time_parse(e, strlen(e), &want.end) == 0 && want.start < want.end
	    && (rid == NULL || pr__id_check(rid, strlen(rid)) == 0);

	json_object_object_foreach(body, key, val)
	{
		if (strcmp(key, "source") != 0 && strcmp(key, "start") != 0
		    && strcmp(key, "end") != 0
		    && !(strcmp(key, "access_token") == 0 && token_ok(val))
		    && !(strcmp(key, "request_id") == 0 && rid != NULL)) {
			plain = 0;
		}
	}
	if (!plain) {
		forward_verbatim(req, resp, "readiness/query", body);
		return;
	}
	readiness(req, resp, source, want, rid, body);
}

static void
command(struct pr_http_req *req, struct pr_http_resp *resp, const char *cmd)
{
	struct json_tokener *tok = json_tokener_new_ex(32);
	struct json_object *body = NULL;
	const char *token = pr_http_token(req);
	enum json_tokener_error jerr = json_tokener_success;

	if (tok == NULL) {
		pr_http_resp_error(resp, 500, "internal", "out of memory");
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (req->body_len == 0) {
		body = json_object_new_object();
	} else {
		body = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
		jerr = json_tokener_get_error(tok);
		if (body != NULL
		    && (jerr != json_tokener_success
		        || json_tokener_get_parse_end(tok) != req->body_len)) {
			json_object_put(body);
			body = NULL;
			if (jerr == json_tokener_success) {
				jerr = json_tokener_error_parse_unexpected;
			}
		}
	}
	json_tokener_free(tok);
	if (body == NULL || !json_object_is_type(body, json_type_object)) {
		pr_http_resp_error(resp, 400, "bad_request", "body: not a JSON object (%s)",
		    body == NULL ? json_tokener_error_desc(jerr) : "another JSON value");
		json_object_put(body);
		return;
	}
	if (json_object_object_get_ex(body, "reply_to", NULL)
	    || json_object_object_get_ex(body, "correlation_id", NULL)) {
		pr_http_resp_error(resp, 400, "bad_request",
		    "body: field %s is not accepted here: the front door receives the reply and "
		    "answers the HTTP request with it",
		    json_object_object_get_ex(body, "reply_to", NULL) ? "reply_to"
		                                                      : "correlation_id");
		json_object_put(body);
		return;
	}
	if (token != NULL && !json_object_object_get_ex(body, "access_token", NULL)) {
		json_object_object_add(body, "access_token", json_object_new_string(token));
	}
	if (strcmp(cmd, "readiness/query") == 0) {
		readiness_query(req, resp, body);
	} else {
		forward_verbatim(req, resp, cmd, body);
	}
	json_object_put(body);
}

/* A window from the query string: both or neither of start and end (no
 * window: want.start = want.end = 0). 0, or -1 with resp filled. */
static int
window(struct pr_http_req *req, struct pr_http_resp *resp, int required, struct pr_range *want)
{
	const char *names[2] = { "start", "end" };
	int64_t *t[2] = { &want->start, &want->end };
	const char *v[2] = { pr_http_arg(req, "start"), pr_http_arg(req, "end") };

	want->start = want->end = 0;
	if (!required && v[0] == NULL && v[1] == NULL) {
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		if (v[i] == NULL || v[i][0] == '\0') {
			pr_http_resp_error(resp, 400, "bad_request",
			    "query parameter %s is missing (start and end%s)", names[i],
			    required ? " are required" : " go together");
			return -1;
		}
		if (pr_time_parse(v[i], strlen(v[i]), t[i]) != 0) {
			pr_http_resp_error(resp, 400, "bad_request",
			    "query parameter %s: not a time (2023-01-01T00:00:00Z, "
			    "2023-01-01 00:00:00 or 2023-01-01)",
			    names[i]);
			return -1;
		}
	}
	if (want->start >= want->end) {
		pr_http_resp_error(
		    resp, 422, "invalid_interval", "query parameters: start must be before end");
		return -1;
	}
	return 0;
}

static void
get_source_route(struct pr_http_req *req, struct pr_http_resp *resp, const char *rest)
{
	const char *slash = strchr(rest, '/');
	char source[PR_NAME_MAX + 1];
	size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	struct pr_range want;

	if (n == 0 || n > PR_NAME_MAX) {
		resp->route = "/v1/sources/{source}";
		pr_http_resp_error(resp, 404, "not_found", "no such source");
		return;
	}
	memcpy(source, rest, n);
	source[n] = '\0';
	if (pr__name_check(source, n) != 0) {
		/* Not echoed: it may not even be UTF-8. */
		resp->route = slash == NULL             ? "/v1/sources/{source}"
		    : strcmp(slash, "/partitions") == 0 ? "/v1/sources/{source}/partitions"
		    : strcmp(slash, "/readiness") == 0  ? "/v1/sources/{source}/readiness"
		                                        : "/v1/sources/{source}";
		pr_http_resp_error(resp, 400, "bad_request",
		    "path: the source is not a valid name (1-200 bytes of UTF-8 without control "
		    "characters, '/', '+' or '#', not starting with '$')");
		return;
	}
	if (slash == NULL) {
		char *s = pr_http_mirror_summary_json(req->app->mirror, source);

		resp->route = "/v1/sources/{source}";
		if (s == NULL) {
			pr_http_resp_error(resp, 404, "not_found",
			    "no retained summary of source '%s' (unknown source, or not yet "
			    "received)",
			    source);
			return;
		}
		pr_http_resp_text(resp, 200, PR_HTTP_JSON, s, 1);
	} else if (strcmp(slash, "/partitions") == 0) {
		struct pr_http_buf b = { 0 };
		char *items;
		int known;

		resp->route = "/v1/sources/{source}/partitions";
		if (window(req, resp, 0, &want) != 0) {
			return;
		}
		items = pr_http_mirror_partitions_json(req->app->mirror, source, want, &known);
		if (!known) {
			pr_http_resp_error(resp, 404, "not_found",
			    "no retained state of source '%s' (unknown source, or not yet "
			    "received)",
			    source);
			return;
		}
		pr_http_buf_puts(&b, "{\"items\":");
		pr_http_buf_puts(&b, items != NULL ? items : "[]");
		pr_http_buf_puts(&b, "}");
		free(items);
		pr_http_resp_text(resp, 200, PR_HTTP_JSON, pr_http_buf_take(&b), 1);
	} else if (strcmp(slash, "/readiness") == 0) {
		resp->route = "/v1/sources/{source}/readiness";
		if (window(req, resp, 1, &want) != 0) {
			return;
		}
		readiness(req, resp, source, want, NULL, NULL);
	} else {
		resp->route = "/v1/sources/{source}";
		pr_http_resp_error(resp, 404, "not_found", "no such route");
	}
}

static void
get_retained(struct pr_http_resp *resp, char *json, const char *what)
{
	if (json == NULL) {
		pr_http_resp_error(resp, 404, "not_found", "no %s is retained", what);
		return;
	}
	pr_http_resp_text(resp, 200, PR_HTTP_JSON, json, 1);
}

static int
is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i], cmd) == 0) {
			return 1;
		}
	}
	return 0;
}

int
pr_http_v1_route(struct pr_http_req *req, struct pr_http_resp *resp)
{
	const char *p = req->path;
	int get = strcmp(req->method, "GET") == 0;

	if (strncmp(p, "/v1/", 4) != 0) {
		return 0;
	}
	p += 4;
	if (is_command(p)) {
		resp->route = "/v1/{command}";
		if (strcmp(req->method, "POST") != 0) {
			pr_http_resp_method(resp, "POST");
			return 1;
		}
		command(req, resp, p);
		return 1;
	}
	if (strcmp(p, "sources") == 0 || strncmp(p, "sources/", 8) == 0
	    || strcmp(p, "agent/status") == 0 || strcmp(p, "agent/stats") == 0
	    || strcmp(p, "stream") == 0) {
		if (!get) {
			resp->route = "/v1/{read}";
			pr_http_resp_method(resp, "GET, HEAD");
			return 1;
		}
	} else {
		resp->route = "/v1/{unknown}";
		pr_http_resp_error(resp, 404, "not_found",
		    "no route %s: POST /v1/<noun>/<verb> takes the commands of schemas/cmd/",
		    req->path);
		return 1;
	}
	if (strcmp(p, "sources") == 0) {
		char *items = pr_http_mirror_summaries_json(req->app->mirror);
		char *agent = pr_http_mirror_status_json(req->app->mirror);
		struct pr_http_buf b = { 0 };

		resp->route = "/v1/sources";
		pr_http_buf_printf(&b, "{\"items\":%s,\"agent\":%s}", items != NULL ? items : "[]",
		    agent != NULL ? agent : "null");
		free(items);
		free(agent);
		pr_http_resp_text(resp, 200, PR_HTTP_JSON, pr_http_buf_take(&b), 1);
	} else if (strncmp(p, "sources/", 8) == 0) {
		get_source_route(req, resp, p + 8);
	} else if (strcmp(p, "agent/status") == 0) {
		resp->route = "/v1/agent/status";
		get_retained(resp, pr_http_mirror_status_json(req->app->mirror), "agent status");
	} else if (strcmp(p, "agent/stats") == 0) {
		resp->route = "/v1/agent/stats";
		get_retained(
		    resp, pr_http_mirror_stats_json(req->app->mirror), "agent stats message");
	} else {
		uint32_t max = req->app->cfg->max_streams;

		resp->route = "/v1/stream";
		/* Streams stay open: without a cap of their own they could take
		 * every connection, /healthz's too. */
		if (pr_http_mirror_nwatchers(req->app->mirror) >= max) {
			pr_http_resp_error(resp, 503, "too_many_streams",
			    "%u event streams are open, the most --max-streams allows; try again "
			    "later",
			    (unsigned)max);
			return 1;
		}
		resp->status = 200;
		resp->stream = 1;
	}
	return 1;
}
