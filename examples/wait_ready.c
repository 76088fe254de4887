/* SPDX-License-Identifier: MIT */
/*
 * wait_ready: wait until SOURCE is ready for [START, END), deciding from the
 * retained summaries the agent publishes on P/state/SOURCE (no command is
 * sent: many waiters cost the agent nothing).
 *
 *   wait_ready SOURCE START END [TIMEOUT_S]      (default 60 s)
 *
 * Broker: $PARTREG_BROKER, else mqtt://127.0.0.1:1883.
 * Exit status: 0 ready, 1 timed out, 2 error.
 *
 * The summary callback runs on the library's receive thread, so it only
 * records the answer and signals; main() waits on the condition variable
 * and unsubscribes once done (not allowed from the callback).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <partreg/partreg.h>

struct waiter {
	struct pr_range want;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t epoch, seq; /* newest summary seen: older ones are dropped */
	int ready;
};

static void
on_summary(void *arg, const char *topic, const char *payload, size_t len)
{
	struct waiter *w = arg;
	struct pr_summary s;
	struct pr_readiness r = { 0 }; /* no room for gaps: only ready matters */

	(void)topic;
	if (pr_summary_parse(payload, len, &s) != 0) {
		return;
	}
	pthread_mutex_lock(&w->mu);
	if (s.epoch > w->epoch || (s.epoch == w->epoch && s.seq > w->seq)) {
		w->epoch = s.epoch;
		w->seq = s.seq;
		/* A truncated summary may omit ready ranges: not ready until a
		 * complete one comes (or ask the agent: see readiness.c). */
		pr_summary_readiness(&s, w->want, &r);
		w->ready = r.ready && !s.truncated;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	pr_summary_release(&s);
}

int
main(int argc, char **argv)
{
	const char *broker = getenv("PARTREG_BROKER");
	struct pr_client_opts opts = { .broker = broker ? broker : "mqtt://127.0.0.1:1883" };
	struct waiter w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct pr_client *c = NULL;
	char filter[256];
	struct timespec deadline;
	int rc, timedout = 0;

	if ((argc != 4 && argc != 5) || pr_time_parse(argv[2], strlen(argv[2]), &w.want.start) != 0
	    || pr_time_parse(argv[3], strlen(argv[3]), &w.want.end) != 0) {
		fprintf(stderr, "usage: wait_ready SOURCE START END [TIMEOUT_S]\n");
		return 2;
	}
	snprintf(filter, sizeof filter, "state/%s", argv[1]);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += argc == 5 ? atoi(argv[4]) : 60;

	if ((rc = pr_client_open(&opts, &c)) != 0 || (rc = pr_client_wait_connected(c, 10000)) != 0
	    || (rc = pr_client_subscribe(c, filter, on_summary, &w, 10000)) != 0) {
		fprintf(stderr, "wait_ready: %s\n", pr_strerror(rc));
		pr_client_close(c);
		return 2;
	}
	printf("waiting for %s [%s, %s)\n", argv[1], argv[2], argv[3]);
	fflush(stdout);
	pthread_mutex_lock(&w.mu);
	while (!w.ready && !timedout) {
		timedout = pthread_cond_timedwait(&w.cv, &w.mu, &deadline) == ETIMEDOUT;
	}
	rc = w.ready ? 0 : 1;
	pthread_mutex_unlock(&w.mu);

	/* After this returns on_summary never runs again, so w may go. */
	pr_client_unsubscribe(c, filter, on_summary, &w);
	pr_client_close(c);
	printf("%s [%s, %s): %s\n", argv[1], argv[2], argv[3], rc == 0 ? "ready" : "timed out");
	return rc;
}
