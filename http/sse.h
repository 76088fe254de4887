/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/stream: Server-Sent Events from the mirror's changes. A stream
 * is read by its connection's own thread (libmicrohttpd's thread per
 * connection), which blocks here until there is something to send: an
 * event, a ": keepalive" comment every 15 s, or the end (shutdown, the
 * client gone, or the client too slow to keep up).
 */
#ifndef PR_HTTP_SSE_H
#define PR_HTTP_SSE_H

#include <stddef.h>

#include "mirror.h"

struct pr_http_sse;

/* A stream over m for the client on socket fd (-1: unknown); the snapshot
 * is read from the mirror as the stream is read (mirror.h). NULL on
 * -ENOMEM. */
struct pr_http_sse *pr_http_sse_open(struct pr_http_mirror *m, int fd);
/* Up to max bytes of the stream into buf: the count (> 0), or -1 when the
 * stream ends. */
long pr_http_sse_read(struct pr_http_sse *s, char *buf, size_t max);
void pr_http_sse_close(struct pr_http_sse *s);

#endif
