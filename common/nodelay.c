/* SPDX-License-Identifier: MIT */
/* See nodelay.h. */
#include "nodelay.h"

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <partreg/error.h>

/* Is fd a connected TCP socket? Its peer address goes to *peer. */
static int
is_tcp_peer(int fd, struct sockaddr_storage *out)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int type = 0;
	socklen_t tlen = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) {
		return 0;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) {
		return 0;
	}
	*out = peer;
	return peer.ss_family == AF_INET || peer.ss_family == AF_INET6;
}

static int
same_endpoint(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family) {
		return 0;
	}
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port
	    && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Set TCP_NODELAY on each connected TCP socket whose peer is one of peers
 * (NULL: every one). */
static int
sweep(const struct addrinfo *peers)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int one = 1;
	int n = 0;

	if (d == NULL) {
		return -errno;
	}
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_storage peer;
		char *endp;
		long fd = strtol(e->d_name, &endp, 10);
		int match = peers == NULL;

		if (*endp != '\0' || endp == e->d_name || fd == dirfd(d)
		    || !is_tcp_peer((int)fd, &peer)) {
			continue;
		}
		for (const struct addrinfo *ai = peers; ai != NULL && !match; ai = ai->ai_next) {
			match = same_endpoint(&peer, ai->ai_addr);
		}
		if (match && setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}

int
pr__nodelay_all(void)
{
	return sweep(NULL);
}

int
pr__nodelay_peer(const char *paho_uri)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *peers = NULL;
	const char *host = strstr(paho_uri, "://");
	char name[256], *port;
	int n;

	if (host == NULL || snprintf(name, sizeof name, "%s", host + 3) >= (int)sizeof name) {
		return PR_EFIELD;
	}
	if ((port = strrchr(name, ':')) == NULL) {
		return PR_EFIELD;
	}
	*port++ = '\0';
	host = name;
	if (name[0] == '[' && port - name >= 3 && port[-2] == ']') { /* [::1]:1883 */
		port[-2] = '\0';
		host = name + 1;
	}
	if (getaddrinfo(host, port, &hints, &peers) != 0) {
		return PR_EFIELD;
	}
	n = sweep(peers);
	freeaddrinfo(peers);
	return n;
}
