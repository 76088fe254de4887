/* SPDX-License-Identifier: MIT */
/*
 * A subscription's arg must not outlive its frame (issue 9): partreg wait
 * and watch subscribed with an inbox on their stack and returned without
 * unsubscribing, so a message arriving before pr_client_close ran the
 * callback on a dead frame. This program does what they do, in a function
 * that subscribes with a stack-allocated arg and returns, while messages
 * keep coming, and counts the callbacks that still get that arg.
 *
 *  - By default the function unsubscribes before it returns (the fix): no
 *    callback may get the dead arg, not even one that was running while
 *    pr_client_unsubscribe was called (each callback lingers a moment to
 *    widen that window).
 *  - With --no-unsubscribe it returns without (the defect): the count must
 *    be above 0, which shows this check detects the bug. Each late callback
 *    also reads the dead arg, as the CLI's did, so under AddressSanitizer
 *    with detect_stack_use_after_return=1 it stops with a report.
 *
 * A second subscription to the same filter with a static arg (the
 * sentinel) keeps the broker subscription alive after the first is gone
 * and proves the messages kept reaching the client. The messages are
 * published by a second client of the library: pr_client_request is its
 * only way to publish, and with no agent for the command it resends every
 * few milliseconds until its timeout, which is the stream wanted here.
 *
 * Usage: prog_client_lifetime BROKER_URL [--no-unsubscribe]
 * Exit: 0 no late callback; 1 late callbacks (printed); 2 setup failed;
 * 3 inconclusive (no message reached the client after the return).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <partreg/client.h>

#define FILTER "cmd/probe"
#define MAGIC  0x5eedf00du

struct probe {
	unsigned magic;
	int hits;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const void *dead_arg; /* the stack probe, once its function returned */
static int late;             /* callbacks that got dead_arg */
static struct probe sentinel = { MAGIC, 0 };
static volatile unsigned sink; /* a read of the dead arg the compiler keeps */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void
on_message(void *arg, const char *topic, const char *payload, size_t len)
{
	struct probe *p = arg;

	(void)topic;
	(void)payload;
	(void)len;
	pthread_mutex_lock(&mu);
	if (p == dead_arg) {
		late++;
		pthread_mutex_unlock(&mu);
		/* What the CLI's callback did: use the arg (ASan stops here). */
		sink = p->magic;
		return;
	}
	p->hits++;
	pthread_mutex_unlock(&mu);
	if (p == &sentinel) {
		return;
	}
	/*
	 * Linger, so that an unsubscribe is likely to be called while this
	 * runs: it must wait for this callback to end before it returns.
	 */
	sleep_ms(2);
	pthread_mutex_lock(&mu);
	if (p == dead_arg) {
		late++; /* still running once the function had returned */
	}
	pthread_mutex_unlock(&mu);
}

static int
hits(const struct probe *p)
{
	int n;

	pthread_mutex_lock(&mu);
	n = p->hits;
	pthread_mutex_unlock(&mu);
	return n;
}

/* ---- the publisher: a second client, resending one command ---- */

struct publisher {
	struct pr_client *c;
	pthread_mutex_t mu;
	int stop;
};

static void *
publish_main(void *arg)
{
	struct publisher *pub = arg;

	for (;;) {
		char *reply = NULL;
		int stop;

		pthread_mutex_lock(&pub->mu);
		stop = pub->stop;
		pthread_mutex_unlock(&pub->mu);
		if (stop) {
			break;
		}
		/* No agent answers: a message every 5 ms for 200 ms, then -ETIMEDOUT. */
		if (pr_client_request(pub->c, "probe", "{}", 200, 5, &reply) == 0) {
			free(reply);
		}
	}
	return NULL;
}

/*
 * What partreg wait and watch do: subscribe with an arg on this frame,
 * take a few messages, and return. Returns 0, or -1 when no message came.
 */
static int
follow_briefly(struct pr_client *c, int unsubscribe)
{
	struct probe p = { MAGIC, 0 };
	int rc = 0;

	if (pr_client_subscribe(c, FILTER, on_message, &p, 5000) != 0) {
		printf("FAIL: cannot subscribe\n");
		rc = -1;
	}
	for (int i = 0; rc == 0 && hits(&p) < 5; i++) {
		if (i == 500) {
			printf("FAIL: the subscription got no message in 5 s\n");
			rc = -1;
		}
		sleep_ms(10);
	}
	if (unsubscribe) {
		pr_client_unsubscribe(c, FILTER, on_message, &p);
	}
	pthread_mutex_lock(&mu);
	dead_arg = &p; /* from here on, p is as good as gone */
	pthread_mutex_unlock(&mu);
	return rc;
}

static int
open_client(const char *broker, const char *prefix, struct pr_client **c)
{
	struct pr_client_opts o;

	memset(&o, 0, sizeof o);
	o.broker = broker;
	o.prefix = prefix;
	if (pr_client_open(&o, c) != 0 || pr_client_wait_connected(*c, 10000) != 0) {
		printf("FAIL: cannot connect to %s\n", broker);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct pr_client *sub = NULL;
	struct publisher pub = { .mu = PTHREAD_MUTEX_INITIALIZER };
	pthread_t thread;
	char prefix[64];
	int unsubscribe = 1, before, after, n, rc = 0;

	if (argc == 3 && strcmp(argv[2], "--no-unsubscribe") == 0) {
		unsubscribe = 0;
	} else if (argc != 2) {
		fprintf(stderr, "usage: %s BROKER_URL [--no-unsubscribe]\n", argv[0]);
		return 2;
	}
	/* A prefix of this run's own: nothing else publishes under it. */
	snprintf(prefix, sizeof prefix, "partreg-test/lifetime-%ld", (long)getpid());
	if (open_client(argv[1], prefix, &sub) != 0 || open_client(argv[1], prefix, &pub.c) != 0) {
		return 2;
	}
	if (pr_client_subscribe(sub, FILTER, on_message, &sentinel, 5000) != 0) {
		printf("FAIL: cannot subscribe the sentinel\n");
		return 2;
	}
	if (pthread_create(&thread, NULL, publish_main, &pub) != 0) {
		printf("FAIL: cannot start the publisher\n");
		return 2;
	}

	if (follow_briefly(sub, unsubscribe) != 0) {
		rc = 2;
	}
	/* Messages keep coming after the return: wait for 50 more to arrive. */
	before = hits(&sentinel);
	for (int i = 0; rc == 0 && hits(&sentinel) < before + 50 && i < 500; i++) {
		sleep_ms(10);
	}

	pthread_mutex_lock(&pub.mu);
	pub.stop = 1;
	pthread_mutex_unlock(&pub.mu);
	pthread_join(thread, NULL);
	sleep_ms(100); /* the last ones in flight */
	after = hits(&sentinel);
	pthread_mutex_lock(&mu);
	n = late;
	pthread_mutex_unlock(&mu);
	printf("%s: %d messages reached the client after the function returned; "
	       "callbacks with its dead arg: %d\n",
	    unsubscribe ? "unsubscribed" : "not unsubscribed", after - before, n);
	pr_client_unsubscribe(sub, FILTER, on_message, &sentinel);
	pr_client_close(pub.c);
	pr_client_close(sub);
	if (rc != 0) {
		return rc;
	}
	if (n > 0) {
		printf(
		    "FAIL: %d callback(s) ran with the arg of a function that had returned\n", n);
		return 1;
	}
	if (after - before < 10) {
		printf("INCONCLUSIVE: too few messages after the return to tell\n");
		return 3;
	}
	printf("ok - no callback after the return\n");
	return 0;
}
