/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server: libmicrohttpd (included by server.c only), one thread
 * per connection, and the routing of a request to the module that answers
 * it. Route modules see a request as struct pr_http_req and answer by
 * filling struct pr_http_resp; they never see libmicrohttpd.
 *
 * Every request is answered from its own connection's thread. Query
 * strings, headers and bodies are never logged (tokens travel in them):
 * the debug log shows method, path, status and time.
 */
#ifndef PR_HTTP_SERVER_H
#define PR_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <partreg/client.h>

#include "config.h"
#include "mirror.h"

struct pr_http_metrics;

/* What every route may use; set up by main, read-only while serving. */
struct pr_http_app {
	const struct pr_http_config *cfg;
	struct pr_client *client;
	struct pr_http_mirror *mirror;
	struct pr_http_metrics *metrics;
	int64_t started_at; /* pr_time_now() at start */
};

struct pr_http_req {
	struct pr_http_app *app;
	void *conn;         /* the connection, for pr_http_arg and pr_http_header */
	const char *method; /* "GET", "POST", ... ("HEAD" is given as "GET") */
	const char *path;   /* percent-decoded, without the query string */
	const char *body;   /* NUL-terminated; "" when none */
	size_t body_len;
	int fd; /* the connection's socket (to see a stream's client leave) */
};

/* A query-string parameter (percent-decoded) or a header; borrowed for
 * the request; NULL when absent. */
const char *pr_http_arg(const struct pr_http_req *r, const char *name);
const char *pr_http_header(const struct pr_http_req *r, const char *name);
/* The token of the request: query access_token, else Authorization:
 * Bearer; NULL when none. Borrowed for the request. */
const char *pr_http_token(const struct pr_http_req *r);

struct pr_http_resp {
	const char *route; /* route template, for metrics; static */
	int status;        /* 0 = not answered */
	const char *ctype; /* static */
	char *body;        /* heap, freed by the server; NULL = empty */
	const void *data;  /* static body instead (assets) */
	size_t len;
	const char *location; /* static; a redirect */
	const char *allow;    /* static; a 405 */
	int stream;           /* an SSE stream instead of a body */
};

#define PR_HTTP_JSON "application/json"

/* Fill resp with o as compact JSON (takes ownership of o, also on failure). */
void pr_http_resp_json(struct pr_http_resp *resp, int status, struct json_object *o);
/* Fill resp with text copied (or taken, when take: heap). */
void pr_http_resp_text(
    struct pr_http_resp *resp, int status, const char *ctype, char *text, int take);
/* The front door's own errors, envelope shape: {ok:false, status, error:{code, message}}. */
void pr_http_resp_error(struct pr_http_resp *resp, int status, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* 405 with Allow. */
void pr_http_resp_method(struct pr_http_resp *resp, const char *allow);

struct pr_http_server;

/* Listen and serve (threads of libmicrohttpd's own). 0, PR_EFIELD for a bad
 * --listen or TLS files (logged), -errno when it cannot listen. */
int pr_http_server_start(struct pr_http_app *app, struct pr_http_server **out);
/* Stop accepting, wait for the connections' threads; NULL is fine. */
void pr_http_server_stop(struct pr_http_server *s);

#endif
