/* SPDX-License-Identifier: MIT */
/*
 * The original service's routes (../shared/design/seed-http-api.md),
 * answering as before but correctly: every parameter in the query string,
 * the original body fields (status_code, registered_object, is_ready,
 * message, detail), and the HTTP status the real one, equal to
 * status_code. Each route is one command to the agent, its reply reshaped;
 * check_readiness is answered from the mirror.
 *
 * Lock, unlock and partition registration now need a token; without one
 * the answer is 401 before anything is sent. Parameters are checked here,
 * so a bad one is a 422 naming it (FastAPI's shape), not the agent's 400
 * naming its own field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "names.h"
#include "routes.h"

/* FastAPI's 422: {status_code, detail: [{loc: ["query", name], msg, type}]} */
struct params {
	struct json_object *errors; /* NULL until the first */
	const struct pr_http_req *req;
};

static void
param_error(struct params *p, const char *name, const char *type, const char *msg)
{
	struct json_object *e = json_object_new_object(), *loc = json_object_new_array();

	if (p->errors == NULL) {
		p->errors = json_object_new_array();
	}
	json_object_array_add(loc, json_object_new_string("query"));
	json_object_array_add(loc, json_object_new_string(name));
	json_object_object_add(e, "loc", loc);
	json_object_object_add(e, "msg", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_array_add(p->errors, e);
}

static const char *
need_str(struct params *p, const char *name)
{
	const char *v = pr_http_arg(p->req, name);

	if (v == NULL || v[0] == '\0') {
		param_error(p, name, "missing", "Field required");
		return NULL;
	}
	return v;
}

static const char *
need_name(struct params *p, const char *name)
{
	const char *v = need_str(p, name);

	if (v != NULL && pr__name_check(v, strlen(v)) != 0) {
		param_error(p, name, "value_error",
		    "a name is 1-200 bytes of UTF-8 without control characters, '/', '+' or '#', "
		    "not starting with '$'");
		return NULL;
	}
	return v;
}

/* A time parameter, canonicalised ("2023-01-01 00:00:00" ->
 * "2023-01-01T00:00:00Z") into buf. */
static int
need_time(struct params *p, const char *name, int64_t *t, char buf[PR_TIME_BUFSZ])
{
	const char *v = need_str(p, name);

	if (v == NULL) {
		return -1;
	}
	if (pr_time_parse(v, strlen(v), t) != 0) {
		param_error(p, name, "datetime_parsing",
		    "Input should be a valid datetime: YYYY-MM-DD HH:MM:SS (or with 'T'), "
		    "optional fraction and offset, no offset = UTC");
		return -1;
	}
	pr_time_format(*t, buf);
	return 0;
}

/* An optional unsigned integer parameter in [lo, hi]: 0 absent, 1 set, -1 bad. */
static int
opt_uint(struct params *p, const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *v = pr_http_arg(p->req, name);
	char *end;
	unsigned long long n;
	char msg[96];

	if (v == NULL || v[0] == '\0') {
		return 0;
	}
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || n < lo || n > hi) {
		snprintf(msg, sizeof msg, "Input should be an integer from %llu to %llu",
		    (unsigned long long)lo, (unsigned long long)hi);
		param_error(p, name, "int_parsing", msg);
		return -1;
	}
	*out = n;
	return 1;
}

/* Answer the collected parameter errors; 1 when there were some. */
static int
params_refused(struct params *p, struct pr_http_resp *resp)
{
	struct json_object *o;

	if (p->errors == NULL) {
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status_code", json_object_new_int(422));
	json_object_object_add(o, "detail", p->errors);
	p->errors = NULL;
	pr_http_resp_json(resp, 422, o);
	return 1;
}

/* {status_code, detail, code, headers: null}: the original's refusal,
 * with partreg's stable code. */
static void
seed_error(struct pr_http_resp *resp, int status, const char *code, const char *detail)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status_code", json_object_new_int(status));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "headers", NULL);
	pr_http_resp_json(resp, status, o);
}

static void
seed_fail(struct pr_http_resp *resp, const struct pr_http_fail *f)
{
	seed_error(resp, f->status, f->code, f->message);
}

/* The agent's refusal (an envelope with ok false), in the original's shape. */
static void
seed_refused(struct pr_http_resp *resp, struct json_object *reply, int status)
{
	struct json_object *err, *v;
	const char *code = "internal", *msg = "refused by the agent";

	if (json_object_object_get_ex(reply, "error", &err)) {
		if (json_object_object_get_ex(err, "code", &v)) {
			code = json_object_get_string(v);
		}
		if (json_object_object_get_ex(err, "message", &v)) {
			msg = json_object_get_string(v);
		}
	}
	seed_error(resp, status, code, msg);
}

/*
 * Send command with body (taken); on success *result is the reply's result
 * (caller puts it) and 0 is returned; otherwise resp holds the refusal.
 */
static int
send_cmd(struct pr_http_req *req, struct pr_http_resp *resp, const char *command,
    struct json_object *body, struct json_object **result)
{
	struct pr_http_fail f;
	struct json_object *reply, *ok, *res;
	char *text;
	int status;

	*result = NULL;
	if (pr_http_forward(req->app, command, body, &reply, &text, &status, &f) != 0) {
		json_object_put(body);
		seed_fail(resp, &f);
		return -1;
	}
	json_object_put(body);
	free(text);
	if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok)
	    || !json_object_object_get_ex(reply, "result", &res)) {
		seed_refused(resp, reply, status == 200 ? 502 : status);
		json_object_put(reply);
		return -1;
	}
	*result = json_object_get(res);
	json_object_put(reply);
	return 0;
}

static struct json_object *
member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return json_object_get(v);
}

static void
registered(struct pr_http_resp *resp, struct json_object *obj)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status_code", json_object_new_int(200));
	json_object_object_add(o, "registered_object", obj);
	pr_http_resp_json(resp, 200, o);
}

static struct json_object *
token_object(struct json_object *token)
{
	struct json_object *t = json_object_new_object();

	json_object_object_add(t, "token", token);
	return t;
}

static void
sources_register(struct pr_http_req *req, struct pr_http_resp *resp)
{
	struct params p = { NULL, req };
	const char *name = need_name(&p, "source_name");
	const char *owner = need_name(&p, "owner");
	struct json_object *body, *res, *o;

	if (params_refused(&p, resp)) {
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "source", json_object_new_string(name));
	json_object_object_add(body, "owner", json_object_new_string(owner));
	if (send_cmd(req, resp, "source/register", body, &res) != 0) {
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "source_id", member(res, "source"));
	json_object_object_add(o, "name", member(res, "source"));
	json_object_object_add(o, "owner", member(res, "owner"));
	json_object_object_add(o, "access_token", token_object(member(res, "access_token")));
	json_object_object_add(o, "registered_at", member(res, "created_at"));
	json_object_put(res);
	registered(resp, o);
}

static void
providers_register(struct pr_http_req *req, struct pr_http_resp *resp)
{
	struct params p = { NULL, req };
	const char *name = need_name(&p, "provider_name");
	const char *source = pr_http_arg(req, "source_name");
	const char *token = pr_http_token(req);
	struct json_object *body, *res, *o;

	if (source != NULL && source[0] != '\0' && pr__name_check(source, strlen(source)) != 0) {
		need_name(&p, "source_name");
	}
	if (params_refused(&p, resp)) {
		return;
	}
	if (token == NULL) {
		seed_error(resp, 401, "unauthorized",
		    "provider registration needs the access_token of the source (query "
		    "access_token or Authorization: Bearer)");
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "provider", json_object_new_string(name));
	if (source != NULL && source[0] != '\0') {
		json_object_object_add(body, "source", json_object_new_string(source));
	}
	json_object_object_add(body, "access_token", json_object_new_string(token));
	if (send_cmd(req, resp, "provider/register", body, &res) != 0) {
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "provider_id", member(res, "provider"));
	json_object_object_add(o, "name", member(res, "provider"));
	json_object_object_add(o, "source", member(res, "source"));
	json_object_object_add(o, "access_token", token_object(member(res, "provider_token")));
	json_object_object_add(o, "registered_at", member(res, "created_at"));
	json_object_put(res);
	registered(resp, o);
}

/* register, lock, unlock: verb is the command's ("lock"). */
static void
partition_cmd(struct pr_http_req *req, struct pr_http_resp *resp, const char *verb)
{
	struct params p = { NULL, req };
	char start[PR_TIME_BUFSZ], end[PR_TIME_BUFSZ], cmd[32], id[640];
	int64_t ts, te;
	const char *source = need_name(&p, "source_name");
	const char *provider = need_name(&p, "provider_name");
	const char *token = pr_http_token(req);
	uint64_t ttl = 0, fence = 0;
	int has_ttl = 0, has_fence = 0;
	struct json_object *body, *res, *o;

	need_time(&p, "start", &ts, start);
	need_time(&p, "end", &te, end);
	if (strcmp(verb, "lock") == 0) {
		has_ttl = opt_uint(&p, "ttl_s", 1, 2592000, &ttl);
	} else if (strcmp(verb, "unlock") == 0) {
		has_fence = opt_uint(&p, "fence", 0, UINT64_MAX / 2, &fence);
	}
	if (params_refused(&p, resp)) {
		return;
	}
	if (token == NULL) {
		char msg[600];

		snprintf(msg, sizeof msg,
		    "%s needs the access_token of source '%s' or of its provider '%s' (query "
		    "access_token or Authorization: Bearer)",
		    verb, source, provider);
		seed_error(resp, 401, "unauthorized", msg);
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "source", json_object_new_string(source));
	json_object_object_add(body, "provider", json_object_new_string(provider));
	json_object_object_add(body, "start", json_object_new_string(start));
	json_object_object_add(body, "end", json_object_new_string(end));
	json_object_object_add(body, "access_token", json_object_new_string(token));
	if (has_ttl > 0) {
		json_object_object_add(body, "ttl_s", json_object_new_int64((int64_t)ttl));
	}
	if (has_fence > 0) {
		json_object_object_add(body, "fence", json_object_new_int64((int64_t)fence));
	}
	snprintf(cmd, sizeof cmd, "partition/%s", verb);
	if (send_cmd(req, resp, cmd, body, &res) != 0) {
		return;
	}
	if (strcmp(verb, "register") == 0) {
		o = json_object_get(res);
		snprintf(id, sizeof id, "%s/%s/%s/%s", source, start, end, provider);
		json_object_object_add(o, "partition_id", json_object_new_string(id));
		json_object_object_add(o, "registered_at", member(res, "updated_at"));
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "type",
		    json_object_new_string(strcmp(verb, "lock") == 0 ? "LOCK" : "UNLOCK"));
		json_object_object_add(o, "partition", json_object_get(res));
		json_object_object_add(o, "at", member(res, "since"));
		if (strcmp(verb, "lock") == 0) {
			json_object_object_add(o, "fence", member(res, "fence"));
			json_object_object_add(o, "expires_at", member(res, "expires_at"));
		}
	}
	json_object_put(res);
	registered(resp, o);
}

/* Why [start, end) is not ready, in words: the gaps, then the blockers. */
static char *
readiness_message(struct json_object *r)
{
	struct pr_http_buf b = { 0 };
	struct json_object *gaps = NULL, *bl = NULL, *tr;
	size_t ng, nb;

	json_object_object_get_ex(r, "gaps", &gaps);
	json_object_object_get_ex(r, "blockers", &bl);
	ng = gaps != NULL ? json_object_array_length(gaps) : 0;
	nb = bl != NULL ? json_object_array_length(bl) : 0;
	pr_http_buf_printf(
	    &b, "not ready for [%s, %s)", pr_http_str(r, "start"), pr_http_str(r, "end"));
	if (ng > 0) {
		pr_http_buf_puts(&b, "; not covered by a ready partition: ");
		for (size_t i = 0; i < ng; i++) {
			struct json_object *g = json_object_array_get_idx(gaps, i);

			pr_http_buf_printf(&b, "%s[%s, %s)", i > 0 ? ", " : "",
			    json_object_get_string(json_object_array_get_idx(g, 0)),
			    json_object_get_string(json_object_array_get_idx(g, 1)));
		}
	}
	if (nb > 0) {
		pr_http_buf_puts(&b, "; blocked by: ");
		for (size_t i = 0; i < nb; i++) {
			struct json_object *x = json_object_array_get_idx(bl, i), *v;
			const char *state = pr_http_str(x, "state");

			pr_http_buf_printf(&b, "%s%s partition [%s, %s) of provider '%s'",
			    i > 0 ? ", " : "", state, pr_http_str(x, "start"),
			    pr_http_str(x, "end"), pr_http_str(x, "provider"));
			if (state != NULL && strcmp(state, "locked") == 0
			    && json_object_object_get_ex(x, "fence", &v)) {
				pr_http_buf_printf(&b, " (fence %s, lease until %s)",
				    json_object_get_string(v),
				    pr_http_str(x, "expires_at") != NULL
				        ? pr_http_str(x, "expires_at")
				        : "-");
			} else if (pr_http_str(x, "reason") != NULL) {
				pr_http_buf_printf(&b, " (%s)", pr_http_str(x, "reason"));
			}
		}
	}
	if (json_object_object_get_ex(r, "truncated", &tr) && json_object_get_boolean(tr)) {
		pr_http_buf_puts(&b, "; and more (list truncated)");
	}
	return pr_http_buf_take(&b);
}

static void
check_readiness(struct pr_http_req *req, struct pr_http_resp *resp, const char *source)
{
	struct params p = { NULL, req };
	char start[PR_TIME_BUFSZ], end[PR_TIME_BUFSZ];
	struct pr_range want = { 0, 0 };
	struct json_object *result, *reply, *o, *rd;
	struct pr_http_fail f;
	int status, rc, ready;

	if (pr__name_check(source, strlen(source)) != 0) {
		param_error(&p, "source_name", "value_error", "not a valid source name");
	}
	need_time(&p, "start", &want.start, start);
	need_time(&p, "end", &want.end, end);
	if (p.errors == NULL && want.start >= want.end) {
		param_error(&p, "end", "value_error", "end must be after start");
	}
	if (params_refused(&p, resp)) {
		return;
	}
	rc = pr_http_readiness(req->app, source, want, NULL, &result, &reply, &status, &f);
	if (rc < 0) {
		seed_fail(resp, &f);
		return;
	}
	if (rc == 1) {
		seed_refused(resp, reply, status);
		json_object_put(reply);
		return;
	}
	ready = json_object_object_get_ex(result, "ready", &rd) && json_object_get_boolean(rd);
	o = json_object_new_object();
	json_object_object_add(o, "status_code", json_object_new_int(200));
	json_object_object_add(o, "is_ready", json_object_new_boolean(ready));
	if (ready) {
		json_object_object_add(o, "message", NULL);
	} else {
		char *msg = readiness_message(result);

		json_object_object_add(
		    o, "message", msg != NULL ? json_object_new_string(msg) : NULL);
		free(msg);
	}
	json_object_put(result);
	pr_http_resp_json(resp, 200, o);
}

static int
post_only(struct pr_http_req *req, struct pr_http_resp *resp)
{
	if (strcmp(req->method, "POST") != 0) {
		pr_http_resp_method(resp, "POST");
		return 0;
	}
	return 1;
}

int
pr_http_seed_route(struct pr_http_req *req, struct pr_http_resp *resp)
{
	const char *path = req->path;

	if (strcmp(path, "/sources/register") == 0) {
		resp->route = "/sources/register";
		if (post_only(req, resp)) {
			sources_register(req, resp);
		}
		return 1;
	}
	if (strcmp(path, "/providers/register") == 0) {
		resp->route = "/providers/register";
		if (post_only(req, resp)) {
			providers_register(req, resp);
		}
		return 1;
	}
	if (strncmp(path, "/partitions/", 12) == 0) {
		static const char *const verbs[] = { "register", "lock", "unlock" };
		static const char *const routes[]
		    = { "/partitions/register", "/partitions/lock", "/partitions/unlock" };

		for (int i = 0; i < 3; i++) {
			if (strcmp(path + 12, verbs[i]) == 0) {
				resp->route = routes[i];
				if (post_only(req, resp)) {
					partition_cmd(req, resp, verbs[i]);
				}
				return 1;
			}
		}
		return 0;
	}
	if (strncmp(path, "/sources/", 9) == 0) {
		const char *s = path + 9, *slash = strchr(s, '/');
		char source[PR_NAME_MAX + 2];

		if (slash == NULL || strcmp(slash, "/check_readiness") != 0 || slash == s
		    || (size_t)(slash - s) > PR_NAME_MAX) {
			return 0;
		}
		resp->route = "/sources/{source_name}/check_readiness";
		if (strcmp(req->method, "GET") != 0) {
			pr_http_resp_method(resp, "GET, HEAD");
			return 1;
		}
		memcpy(source, s, (size_t)(slash - s));
		source[slash - s] = '\0';
		check_readiness(req, resp, source);
		return 1;
	}
	return 0;
}
