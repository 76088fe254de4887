/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server (server.h): the one module that includes
 * <microhttpd.h>. libmicrohttpd runs a thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION with its internal polling thread), so a
 * request may block on the agent's reply or an event stream without
 * holding up anyone else; --max-connections bounds the threads. An event
 * loop with suspended connections was the alternative: fewer threads, but
 * every wait on the agent would need a callback path through the library.
 *
 * A request's body is collected up to --max-body; past it the answer is
 * 413 (at once when Content-Length announces it, before reading the body).
 */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "sse.h"

struct pr_http_server {
	struct MHD_Daemon *d;
	struct pr_http_app *app;
	char *cert, *key;
};

struct reqctx {
	int64_t t0;
	struct pr_http_buf body;
	int too_big;
	int answered;
};

/* ---- what route modules read of the request (the rest: resp.c) ---- */

const char *
pr_http_arg(const struct pr_http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
pr_http_header(const struct pr_http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* ---- libmicrohttpd callbacks ---- */

static ssize_t
sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	long n = pr_http_sse_read(cls, buf, max);

	(void)pos;
	return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void
sse_free(void *cls)
{
	pr_http_sse_close(cls);
}

static enum MHD_Result
queue(struct pr_http_server *srv, struct MHD_Connection *conn, struct reqctx *rc,
    const struct pr_http_req *req, struct pr_http_resp *resp)
{
	struct MHD_Response *r = NULL;
	double secs = (double)(pr_time_now() - rc->t0) / 1e6;
	enum MHD_Result ret;

	if (resp->stream) {
		const union MHD_ConnectionInfo *ci
		    = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct pr_http_sse *s
		    = pr_http_sse_open(srv->app->mirror, ci != NULL ? ci->connect_fd : -1);

		if (s == NULL) {
			pr_http_resp_error(resp, 500, "internal", "out of memory");
			resp->stream = 0;
		} else {
			r = MHD_create_response_from_callback(
			    MHD_SIZE_UNKNOWN, 16384, sse_reader, s, sse_free);
			if (r == NULL) {
				pr_http_sse_close(s);
			} else {
				MHD_add_response_header(r, "Content-Type", "text/event-stream");
				MHD_add_response_header(r, "Cache-Control", "no-cache");
				MHD_add_response_header(r, "X-Accel-Buffering", "no");
			}
		}
	}
	if (!resp->stream) {
		if (resp->body != NULL) {
			r = MHD_create_response_from_buffer(
			    resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
			if (r != NULL) {
				resp->body = NULL;
			}
		} else {
			r = MHD_create_response_from_buffer(resp->len,
			    (void *)(resp->data != NULL ? resp->data : ""), MHD_RESPMEM_PERSISTENT);
		}
		if (r != NULL && resp->ctype != NULL) {
			MHD_add_response_header(r, "Content-Type", resp->ctype);
		}
	}
	free(resp->body);
	resp->body = NULL;
	if (r == NULL) {
		return MHD_NO;
	}
	if (resp->location != NULL) {
		MHD_add_response_header(r, "Location", resp->location);
	}
	if (resp->allow != NULL) {
		MHD_add_response_header(r, "Allow", resp->allow);
	}
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	rc->answered = 1;
	pr_http_metrics_observe(srv->app->metrics, resp->route, resp->status, secs);
	/* Method and path only: tokens travel in query strings and headers. */
	pr_debug("http: %s %s -> %d (%.2f ms)", req->method, req->path, resp->status, secs * 1e3);
	return ret;
}

static void
dispatch(struct pr_http_req *req, struct pr_http_resp *resp)
{
	if (pr_http_v1_route(req, resp) || pr_http_seed_route(req, resp)
	    || pr_http_ops_route(req, resp)) {
		return;
	}
	resp->route = "/{unknown}";
	pr_http_resp_error(resp, 404, "not_found", "no route %s %s", req->method, req->path);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct pr_http_server *srv = cls;
	struct reqctx *rc = *con_cls;
	struct pr_http_req req = { 0 };
	struct pr_http_resp resp = { 0 };
	const union MHD_ConnectionInfo *ci;
	enum MHD_Result ret;

	(void)version;
	req.app = srv->app;
	req.conn = conn;
	req.method = strcmp(method, "HEAD") == 0 ? "GET" : method;
	req.path = url;
	req.body = "";
	if (rc == NULL) {
		const char *cl
		    = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

		rc = calloc(1, sizeof *rc);
		if (rc == NULL) {
			return MHD_NO;
		}
		rc->t0 = pr_time_now();
		*con_cls = rc;
		if (cl != NULL && strtoull(cl, NULL, 10) > srv->app->cfg->max_body) {
			resp.route = "/{too_large}";
			pr_http_resp_error(&resp, 413, "payload_too_large",
			    "request body of %s bytes is over --max-body (%zu bytes)", cl,
			    srv->app->cfg->max_body);
			return queue(srv, conn, rc, &req, &resp);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!rc->too_big && rc->body.len + *upload_data_size <= srv->app->cfg->max_body) {
			pr_http_buf_add(&rc->body, upload_data, *upload_data_size);
		} else {
			rc->too_big = 1;
			pr_http_buf_release(&rc->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rc->answered) {
		return MHD_YES;
	}
	if (rc->too_big || rc->body.oom) {
		resp.route = "/{too_large}";
		pr_http_resp_error(&resp, 413, "payload_too_large",
		    "request body over --max-body (%zu bytes)", srv->app->cfg->max_body);
		return queue(srv, conn, rc, &req, &resp);
	}
	if (rc->body.p != NULL) {
		req.body = rc->body.p;
		req.body_len = rc->body.len;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	req.fd = ci != NULL ? ci->connect_fd : -1;
	dispatch(&req, &resp);
	ret = queue(srv, conn, rc, &req, &resp);
	return ret;
}

static void
on_completed(
    void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct reqctx *rc = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rc != NULL) {
		pr_http_buf_release(&rc->body);
		free(rc);
		*con_cls = NULL;
	}
}

/* libmicrohttpd's own messages, with anything after a '?' cut (a URL's
 * query string may hold a token). */
static void
on_log(void *cls, const char *fmt, va_list ap)
{
	char line[1024];
	char *q, *end;
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	while ((q = strchr(line, '?')) != NULL) {
		end = q + strcspn(q, " \t\r\n'\"`");
		memmove(q + 1, end, strlen(end) + 1);
		*q = '#';
	}
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
		line[--n] = '\0';
	}
	pr_info("http: libmicrohttpd: %s", line);
}

/* ---- start and stop ---- */

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct pr_http_buf b = { 0 };
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		pr_http_buf_add(&b, chunk, n);
	}
	fclose(f);
	return pr_http_buf_take(&b);
}

/* "HOST:PORT" or "[ADDR]:PORT" into an address. */
static int
resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, uint16_t *port)
{
	char host[256];
	const char *colon = strrchr(listen, ':'), *h = listen;
	size_t hl;
	struct addrinfo hints = { 0 }, *res = NULL;
	char *end;
	unsigned long p;

	if (colon == NULL || colon == listen) {
		return -1;
	}
	hl = (size_t)(colon - listen);
	if (listen[0] == '[' && colon[-1] == ']') {
		h = listen + 1;
		hl -= 2;
	}
	p = strtoul(colon + 1, &end, 10);
	if (hl == 0 || hl >= sizeof host || *end != '\0' || colon[1] == '\0' || p > 65535) {
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	*port = (uint16_t)p;
	freeaddrinfo(res);
	return 0;
}

int
pr_http_server_start(struct pr_http_app *app, struct pr_http_server **out)
{
	struct pr_http_server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint16_t port;
	/* poll(), not select(): no limit of 1024 on a socket's number. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
	    | MHD_USE_ERROR_LOG | MHD_USE_POLL;
	struct MHD_OptionItem opts[10];
	int n = 0;

	*out = NULL;
	if (s == NULL) {
		return -ENOMEM;
	}
	s->app = app;
	if (resolve(app->cfg->listen, &ss, &sslen, &port) != 0) {
		pr_error("partreg-http: --listen %s: expected HOST:PORT or [ADDR]:PORT",
		    app->cfg->listen);
		free(s);
		return PR_EFIELD;
	}
	if (ss.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
	}
	if (app->cfg->tls_cert != NULL) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			pr_error(
			    "partreg-http: this libmicrohttpd has no TLS: --tls-cert cannot work");
			free(s);
			return PR_EFIELD;
		}
		s->cert = read_file(app->cfg->tls_cert);
		s->key = read_file(app->cfg->tls_key);
		if (s->cert == NULL || s->key == NULL || s->cert[0] == '\0' || s->key[0] == '\0') {
			pr_error("partreg-http: cannot read --tls-cert %s or --tls-key %s",
			    app->cfg->tls_cert, app->cfg->tls_key);
			pr_http_server_stop(s);
			return PR_EFIELD;
		}
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert };
		opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_MEM_KEY, 0, s->key };
	}
	opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_SOCK_ADDR, 0, &ss };
	opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_CONNECTION_LIMIT,
		(intptr_t)app->cfg->max_connections, NULL };
	opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_CONNECTION_TIMEOUT,
		(intptr_t)app->cfg->idle_timeout_s, NULL };
	if (app->cfg->max_per_ip != 0) {
		opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			(intptr_t)app->cfg->max_per_ip, NULL };
	}
	opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };
	/* The logger first, or messages about the options go to stderr. */
	s->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
	    on_log, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_END);
	if (s->d == NULL) {
		pr_error("partreg-http: cannot listen on %s (address in use, or TLS files "
		         "not a certificate and its key)",
		    app->cfg->listen);
		pr_http_server_stop(s);
		return -EADDRINUSE;
	}
	*out = s;
	return 0;
}

void
pr_http_server_stop(struct pr_http_server *s)
{
	if (s == NULL) {
		return;
	}
	if (s->d != NULL) {
		MHD_stop_daemon(s->d);
	}
	if (s->key != NULL) {
		/* The private key leaves no copy in freed memory. */
		memset(s->key, 0, strlen(s->key));
	}
	free(s->cert);
	free(s->key);
	free(s);
}
