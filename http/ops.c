/* SPDX-License-Identifier: MIT */
/*
 * The routes of operations and of the page: GET / (JSON, or the dashboard
 * when the Accept header prefers HTML), /healthz, /readyz, /metrics, /docs
 * (and /redoc, redirected there), /openapi.json and the embedded files.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assets.h"
#include "metrics.h"
#include "routes.h"

const struct pr_http_asset *
pr_http_asset_find(const char *path)
{
	for (size_t i = 0; i < pr_http_nassets; i++) {
		if (strcmp(pr_http_assets[i].path, path) == 0) {
			return &pr_http_assets[i];
		}
	}
	return NULL;
}

const char *
pr_http_asset_type(const struct pr_http_asset *a)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(a->path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++) {
		if (strcasecmp(dot, types[i].ext) == 0) {
			return types[i].type;
		}
	}
	return "application/octet-stream";
}

/*
 * The q an Accept header gives type/sub: the most specific matching media
 * range's (type/sub over type/<*> over <*>/<*>), 0 when none matches; a
 * missing header accepts everything (q 1).
 */
static double
accept_q(const char *accept, const char *type, const char *sub)
{
	double best = 0;
	int best_spec = -1;
	const char *p = accept;

	if (accept == NULL) {
		return 1;
	}
	while (*p != '\0') {
		const char *end = strchr(p, ','), *semi, *slash;
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		char range[128], *r = range, *q;
		double qv = 1;
		int spec;

		if (n >= sizeof range) {
			n = sizeof range - 1;
		}
		memcpy(range, p, n);
		range[n] = '\0';
		p = end != NULL ? end + 1 : p + n;
		while (*r == ' ' || *r == '\t') {
			r++;
		}
		q = strstr(r, ";q=");
		if (q == NULL) {
			q = strstr(r, "; q=");
		}
		if (q != NULL) {
			qv = strtod(strchr(q, '=') + 1, NULL);
		}
		semi = strchr(r, ';');
		if (semi != NULL) {
			range[semi - range] = '\0';
		}
		for (char *e = r + strlen(r); e > r && (e[-1] == ' ' || e[-1] == '\t'); e--) {
			e[-1] = '\0';
		}
		slash = strchr(r, '/');
		if (slash == NULL) {
			continue;
		}
		if (strcmp(r, "*/*") == 0) {
			spec = 0;
		} else if (strncasecmp(r, type, strlen(type)) == 0 && r[strlen(type)] == '/'
		    && strcmp(slash + 1, "*") == 0) {
			spec = 1;
		} else if (strncasecmp(r, type, strlen(type)) == 0 && r[strlen(type)] == '/'
		    && strcasecmp(slash + 1, sub) == 0) {
			spec = 2;
		} else {
			continue;
		}
		if (spec > best_spec) {
			best_spec = spec;
			best = qv;
		}
	}
	return best;
}

static void
asset(struct pr_http_resp *resp, const struct pr_http_asset *a)
{
	resp->status = 200;
	resp->ctype = pr_http_asset_type(a);
	resp->data = a->data;
	resp->len = a->len;
}

static void
root(struct pr_http_req *req, struct pr_http_resp *resp)
{
	const char *accept = pr_http_header(req, "Accept");
	const struct pr_http_asset *page = pr_http_asset_find("/index.html");
	struct json_object *o;

	if (page != NULL
	    && accept_q(accept, "text", "html") > accept_q(accept, "application", "json")) {
		asset(resp, page);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "status_code", json_object_new_int(200));
	json_object_object_add(
	    o, "message", json_object_new_string("partreg-http " PR_VERSION_STRING));
	pr_http_resp_json(resp, 200, o);
}

static void
readyz(struct pr_http_req *req, struct pr_http_resp *resp)
{
	struct pr_http_agent a;
	int broker = pr_client_wait_connected(req->app->client, 0) == 0;
	struct json_object *o = json_object_new_object();

	pr_http_mirror_agent(req->app->mirror, &a);
	json_object_object_add(
	    o, "broker", json_object_new_string(broker ? "connected" : "disconnected"));
	json_object_object_add(o, "agent",
	    json_object_new_string(a.online ? "online"
	            : a.known               ? "offline"
	                                    : "unknown"));
	if (a.known && !a.online) {
		const char *since = pr_http_agent_since(&a);

		if (since[0] != '\0') {
			json_object_object_add(o, "agent_since", json_object_new_string(since));
		}
		if (a.lost) {
			json_object_object_add(o, "agent_lost", json_object_new_boolean(1));
		}
	}
	pr_http_resp_json(resp, broker && a.online ? 200 : 503, o);
}

int
pr_http_ops_route(struct pr_http_req *req, struct pr_http_resp *resp)
{
	const char *p = req->path;
	const struct pr_http_asset *a;

	if (strcmp(req->method, "GET") != 0) {
		/* Every route here is read-only; a path that is none of them is
		 * left to the 404. */
		if (strcmp(p, "/") == 0 || strcmp(p, "/healthz") == 0 || strcmp(p, "/readyz") == 0
		    || strcmp(p, "/metrics") == 0 || strcmp(p, "/docs") == 0
		    || strcmp(p, "/redoc") == 0 || pr_http_asset_find(p) != NULL) {
			resp->route = "/{static}";
			pr_http_resp_method(resp, "GET, HEAD");
			return 1;
		}
		return 0;
	}
	if (strcmp(p, "/") == 0) {
		resp->route = "/";
		root(req, resp);
	} else if (strcmp(p, "/healthz") == 0) {
		resp->route = "/healthz";
		pr_http_resp_text(resp, 200, "text/plain; charset=utf-8", "ok\n", 0);
	} else if (strcmp(p, "/readyz") == 0) {
		resp->route = "/readyz";
		readyz(req, resp);
	} else if (strcmp(p, "/metrics") == 0) {
		char *text = pr_http_metrics_render(req->app);

		resp->route = "/metrics";
		if (text == NULL) {
			pr_http_resp_error(resp, 500, "internal", "out of memory");
		} else {
			pr_http_resp_text(
			    resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, 1);
		}
	} else if (strcmp(p, "/redoc") == 0) {
		resp->route = "/redoc";
		resp->status = 308;
		resp->location = "/docs";
		resp->ctype = "text/plain; charset=utf-8";
	} else if (strcmp(p, "/docs") == 0) {
		resp->route = "/docs";
		if ((a = pr_http_asset_find("/docs.html")) == NULL) {
			pr_http_resp_error(resp, 404, "not_found", "the docs page is not built in");
		} else {
			asset(resp, a);
		}
	} else if ((a = pr_http_asset_find(p)) != NULL) {
		resp->route = "/{static}";
		asset(resp, a);
	} else {
		return 0;
	}
	return 1;
}
