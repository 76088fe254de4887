/* SPDX-License-Identifier: MIT */
/*
 * What route modules use besides the request's raw values: the request's
 * token and the ways to fill a response (server.h). Kept apart from
 * server.c, the one module that sees libmicrohttpd, so the route modules
 * link without it: the unit tests (tests/unit/test_http_*.c) drive them
 * with their own pr_http_arg and pr_http_header, the only two functions
 * through which a route reads the request.
 */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
pr_http_token(const struct pr_http_req *r)
{
	const char *t = pr_http_arg(r, "access_token");
	const char *auth;

	if (t != NULL && t[0] != '\0') {
		return t;
	}
	auth = pr_http_header(r, "Authorization");
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ') {
			auth++;
		}
		return auth[0] != '\0' ? auth : NULL;
	}
	return NULL;
}

void
pr_http_resp_text(struct pr_http_resp *resp, int status, const char *ctype, char *text, int take)
{
	resp->status = status;
	resp->ctype = ctype;
	if (text == NULL) {
		resp->status = 500;
		resp->ctype = "text/plain; charset=utf-8";
		resp->data = "out of memory\n";
		resp->len = strlen(resp->data);
		return;
	}
	resp->body = take ? text : strdup(text);
	resp->len = resp->body != NULL ? strlen(resp->body) : 0;
}

void
pr_http_resp_json(struct pr_http_resp *resp, int status, struct json_object *o)
{
	const char *s = o != NULL ? json_object_to_json_string_ext(
	                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
	                          : NULL;

	pr_http_resp_text(resp, status, PR_HTTP_JSON, s != NULL ? strdup(s) : NULL, 1);
	json_object_put(o);
}

void
pr_http_resp_error(struct pr_http_resp *resp, int status, const char *code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	pr_http_resp_json(resp, status, o);
}

void
pr_http_resp_method(struct pr_http_resp *resp, const char *allow)
{
	resp->allow = allow;
	pr_http_resp_error(
	    resp, 405, "method_not_allowed", "method not allowed here; use %s", allow);
}
