/* SPDX-License-Identifier: MIT */
/*
 * The event stream (sse.h). The wait is cut into 1 s slices so a client
 * that left is seen within a second (its socket reads EOF), rather than at
 * the next write, which may be 15 s away: a connection slot must not stay
 * taken that long under --max-connections.
 */
#include "sse.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <partreg/time.h>

#define KEEPALIVE_US INT64_C(15000000)

struct pr_http_sse {
	struct pr_http_mirror *m;
	struct pr_http_watch *w;
	int fd;
	int64_t last; /* when something was last sent */
};

struct pr_http_sse *
pr_http_sse_open(struct pr_http_mirror *m, int fd)
{
	struct pr_http_sse *s = calloc(1, sizeof *s);

	if (s == NULL) {
		return NULL;
	}
	s->m = m;
	s->fd = fd;
	s->last = pr_time_now();
	s->w = pr_http_mirror_watch(m);
	if (s->w == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

/* Has the client closed its side? Clients send nothing after the request,
 * so readable means EOF or an error. */
static int
client_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char c;

	if (fd < 0 || poll(&p, 1, 0) <= 0) {
		return 0;
	}
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
		return 1;
	}
	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

long
pr_http_sse_read(struct pr_http_sse *s, char *buf, size_t max)
{
	static const char keepalive[] = ": keepalive\n\n";

	for (;;) {
		long n = pr_http_watch_read(s->m, s->w, buf, max, 1000);
		int64_t now = pr_time_now();

		if (n != 0) {
			s->last = now;
			return n;
		}
		if (client_gone(s->fd)) {
			return -1;
		}
		if (now - s->last >= KEEPALIVE_US && max >= sizeof keepalive - 1) {
			memcpy(buf, keepalive, sizeof keepalive - 1);
			s->last = now;
			return (long)(sizeof keepalive - 1);
		}
	}
}

void
pr_http_sse_close(struct pr_http_sse *s)
{
	if (s == NULL) {
		return;
	}
	pr_http_mirror_unwatch(s->m, s->w);
	free(s);
}
