/* SPDX-License-Identifier: MIT */
#include "nodelay.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

static int
is_tcp_peer(int fd)
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
	return peer.ss_family == AF_INET || peer.ss_family == AF_INET6;
}

int
pr_nodelay_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int one = 1;
	int n = 0;

	if (d == NULL) {
		return -errno;
	}
	while ((e = readdir(d)) != NULL) {
		char *endp;
		long fd = strtol(e->d_name, &endp, 10);

		if (*endp != '\0' || endp == e->d_name || fd == dirfd(d)) {
			continue;
		}
		if (is_tcp_peer((int)fd)
		    && setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}
