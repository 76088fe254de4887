/* SPDX-License-Identifier: MIT */
/*
 * libpartreg leaves its host process alone (issue 9): with a real broker,
 *  - TCP_NODELAY goes on the client's own broker connection and on no other
 *    TCP socket of the process (an unrelated loopback connection keeps
 *    Nagle);
 *  - without a log callback nothing is written to stderr, even when the
 *    broker is unreachable (the script checks stderr is empty);
 *  - with one, the callback hears why the connection fails.
 * Usage: prog_client_host BROKER_URL UNREACHABLE_URL
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <partreg/client.h>

static int
nodelay(int fd)
{
	int v = 0;
	socklen_t len = sizeof v;

	return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 ? v : -1;
}

/* The process's TCP sockets connected to port: how many have TCP_NODELAY. */
static int
nodelay_to_port(int port, int *total)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	*total = 0;
	while (d != NULL && (e = readdir(d)) != NULL) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		int fd = atoi(e->d_name);

		if (fd > 2 && getpeername(fd, (struct sockaddr *)&peer, &plen) == 0
		    && peer.sin_family == AF_INET && ntohs(peer.sin_port) == port) {
			(*total)++;
			n += nodelay(fd) == 1;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return n;
}

/* An unrelated TCP connection of the host: a loopback pair. */
static int
unrelated_connection(int *listener)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	int fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*listener = socket(AF_INET, SOCK_STREAM, 0);
	if (*listener < 0 || bind(*listener, (struct sockaddr *)&a, sizeof a) != 0
	    || listen(*listener, 1) != 0
	    || getsockname(*listener, (struct sockaddr *)&a, &alen) != 0) {
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		return -1;
	}
	return fd;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int lines;
static char first[512];

static void
on_log(void *arg, enum pr_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	pthread_mutex_lock(&mu);
	if (lines++ == 0) {
		snprintf(first, sizeof first, "%s", line);
	}
	pthread_mutex_unlock(&mu);
}

int
main(int argc, char **argv)
{
	struct pr_client_opts o = { 0 };
	struct pr_client *c = NULL;
	int listener, other, port, total, set;
	const char *colon;

	if (argc != 3 || (colon = strrchr(argv[1], ':')) == NULL) {
		fprintf(stderr, "usage: %s BROKER_URL UNREACHABLE_URL\n", argv[0]);
		return 2;
	}
	port = atoi(colon + 1);
	if ((other = unrelated_connection(&listener)) < 0) {
		perror("unrelated connection");
		return 2;
	}

	/* 1. A connection to a real broker, no log callback. */
	o.broker = argv[1];
	if (pr_client_open(&o, &c) != 0 || pr_client_wait_connected(c, 10000) != 0) {
		printf("FAIL: cannot connect to %s\n", argv[1]);
		return 1;
	}
	set = nodelay_to_port(port, &total);
	printf("broker connections: %d, with TCP_NODELAY: %d\n", total, set);
	if (total != 1 || set != 1) {
		printf("FAIL: the client's own connection must have TCP_NODELAY\n");
		return 1;
	}
	if (nodelay(other) != 0) {
		printf("FAIL: TCP_NODELAY set on an unrelated socket of the process\n");
		return 1;
	}
	printf("ok - TCP_NODELAY on the client's connection only\n");
	pr_client_close(c);

	/* 2. An unreachable broker without a callback: silence (the script
	 * checks stderr), then with one: the reason is heard. */
	o.broker = argv[2];
	if (pr_client_open(&o, &c) != 0 || pr_client_wait_connected(c, 1500) != -ETIMEDOUT) {
		printf("FAIL: connecting to %s did not time out\n", argv[2]);
		return 1;
	}
	pr_client_close(c);
	o.log = on_log;
	if (pr_client_open(&o, &c) != 0 || pr_client_wait_connected(c, 1500) != -ETIMEDOUT) {
		printf("FAIL: connecting to %s did not time out\n", argv[2]);
		return 1;
	}
	pr_client_close(c);
	pthread_mutex_lock(&mu);
	printf("log callback: %d line(s), first: %s\n", lines, first);
	if (lines == 0 || strstr(first, "cannot connect") == NULL) {
		printf("FAIL: the log callback did not hear why the connection failed\n");
		return 1;
	}
	pthread_mutex_unlock(&mu);
	close(other);
	close(listener);
	printf("ok - silent without a callback, heard with one\n");
	return 0;
}
