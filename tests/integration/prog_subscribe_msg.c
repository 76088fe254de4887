/* SPDX-License-Identifier: MIT */
/*
 * pr_client_subscribe_msg: each message comes with its retain flag and its
 * MQTT 5 Message Expiry Interval as the broker passes it on (the seconds it
 * has left), -1 when it has none. Prints one line per message of
 * P/probe/#, "TOPIC retained=R expiry=E PAYLOAD", for COUNT messages or
 * until SECONDS pass; the script publishes and compares.
 * Usage: prog_subscribe_msg BROKER_URL COUNT SECONDS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <partreg/client.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int seen;

static void
on_msg(void *arg, const struct pr_message *m)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	printf("%s retained=%d expiry=%lld %.*s\n", m->topic, m->retained, (long long)m->expiry_s,
	    (int)m->len, m->payload);
	fflush(stdout);
	seen++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

int
main(int argc, char **argv)
{
	struct pr_client_opts o = { 0 };
	struct pr_client *c;
	struct timespec until;
	int want, rc;

	if (argc != 4) {
		fprintf(stderr, "usage: prog_subscribe_msg BROKER_URL COUNT SECONDS\n");
		return 2;
	}
	o.broker = argv[1];
	want = atoi(argv[2]);
	if (pr_client_open(&o, &c) != 0 || pr_client_wait_connected(c, 5000) != 0) {
		fprintf(stderr, "cannot connect to %s\n", argv[1]);
		return 1;
	}
	rc = pr_client_subscribe_msg(c, "probe/#", on_msg, NULL, 5000);
	if (rc != 0) {
		fprintf(stderr, "subscribe: %s\n", pr_strerror(rc));
		return 1;
	}
	printf("subscribed\n");
	fflush(stdout);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += atoi(argv[3]);
	pthread_mutex_lock(&mu);
	while (seen < want && pthread_cond_timedwait(&cv, &mu, &until) == 0) { }
	pthread_mutex_unlock(&mu);
	/* Stopped: no call after this returns. */
	if (pr_client_unsubscribe_msg(c, "probe/#", on_msg, NULL) != 0
	    || pr_client_unsubscribe_msg(c, "probe/#", on_msg, NULL) != PR_ENOTFOUND) {
		fprintf(stderr, "unsubscribe_msg: not once\n");
		return 1;
	}
	pr_client_close(c);
	return seen == want ? 0 : 3;
}
