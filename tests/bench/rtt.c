/* SPDX-License-Identifier: MIT */
/*
 * Request/response round trips through a broker, measured one at a time.
 *
 *   pr_bench_rtt echo  --broker URL --topic T
 *       a trivial responder: answers every message on T, at QoS 1, on its
 *       Response Topic with its Correlation Data, doing no work. The
 *       baseline that partregd's figures are divided by.
 *   pr_bench_rtt query --broker URL --topic T --payload JSON [-n N]
 *       sends N requests to T (QoS 1, MQTT 5 request/response), one in
 *       flight, and prints the round trip percentiles in microseconds:
 *       "n=N min=… p50=… p90=… p99=… max=…"
 *
 * Both use the project's transport module, so both sides have TCP_NODELAY
 * and the same Paho client as the agent: the ratio isolates partregd's own
 * cost. A reply whose correlation does not match the request in flight is
 * counted as stray and ignored.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ptime.h"
#include "transport.h"

struct bench {
	struct pr_transport *tr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t want; /* correlation of the request in flight */
	int got;
	long stray;
	int echo;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
on_message(void *arg, struct pr_msg *m)
{
	struct bench *b = arg;

	if (b->echo) {
		if (m->response_topic != NULL) {
			struct pr_pubprops p = { .correlation = m->correlation,
				.correlation_len = m->correlation_len };

			/* Paho's receive thread: never wait here for the window. */
			pr_transport_publish(
			    b->tr, m->response_topic, m->payload, m->payload_len, 1, 0, &p, 0);
		}
	} else {
		uint64_t c = 0;

		if (m->correlation != NULL && m->correlation_len == sizeof c) {
			memcpy(&c, m->correlation, sizeof c);
		}
		pthread_mutex_lock(&b->mu);
		if (c == b->want && !b->got) {
			b->got = 1;
			pthread_cond_signal(&b->cv);
		} else {
			b->stray++;
		}
		pthread_mutex_unlock(&b->mu);
	}
	pr_msg_free(m);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: pr_bench_rtt echo|query --broker URL --topic T "
	    "[--payload JSON] [-n N]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct bench b = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct pr_transport_opts o = { 0 };
	const char *broker = NULL, *topic = NULL, *payload = "{}";
	char reply_topic[128], client_id[64];
	const char *subs[1];
	int64_t *samples;
	long n = 1000;

	if (argc < 2) {
		return usage();
	}
	b.echo = strcmp(argv[1], "echo") == 0;
	if (!b.echo && strcmp(argv[1], "query") != 0) {
		return usage();
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--broker") == 0) {
			broker = argv[i + 1];
		} else if (strcmp(argv[i], "--topic") == 0) {
			topic = argv[i + 1];
		} else if (strcmp(argv[i], "--payload") == 0) {
			payload = argv[i + 1];
		} else if (strcmp(argv[i], "-n") == 0) {
			n = strtol(argv[i + 1], NULL, 10);
		} else {
			return usage();
		}
	}
	if (broker == NULL || topic == NULL || n <= 0) {
		return usage();
	}
	snprintf(client_id, sizeof client_id, "pr_bench_%s_%ld", argv[1], (long)getpid());
	/* Replies go under the agent's reply prefix: P/cmd/... answers on P/reply/. */
	{
		const char *cmd = strstr(topic, "/cmd/");
		int plen = cmd != NULL ? (int)(cmd - topic) : (int)strlen(topic);

		snprintf(reply_topic, sizeof reply_topic, "%.*s/reply/bench-%ld", plen, topic,
		    (long)getpid());
	}
	subs[0] = b.echo ? topic : reply_topic;
	o.uri = broker;
	o.client_id = client_id;
	o.clean_start = 1;
	o.subscriptions = subs;
	o.nsubscriptions = 1;
	o.on_message = on_message;
	o.arg = &b;
	if (pr_transport_open(&o, &b.tr) != 0 || pr_transport_wait_connected(b.tr, 10000) != 0) {
		fprintf(stderr, "pr_bench_rtt: cannot connect to %s\n", broker);
		pr_transport_close(b.tr);
		return 1;
	}
	if (b.echo) {
		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		printf("echo responder on %s\n", topic);
		fflush(stdout);
		while (!stop) {
			pause();
		}
		pr_transport_close(b.tr);
		return 0;
	}
	samples = calloc((size_t)n, sizeof *samples);
	if (samples == NULL) {
		return 1;
	}
	for (long i = 0; i < n; i++) {
		uint64_t corr = (uint64_t)i + 1;
		struct pr_pubprops p = { .correlation = (const char *)&corr,
			.correlation_len = sizeof corr,
			.response_topic = reply_topic };
		struct timespec ts;
		int64_t t0;
		int rc = 0;

		pthread_mutex_lock(&b.mu);
		b.want = corr;
		b.got = 0;
		pthread_mutex_unlock(&b.mu);
		t0 = pr_time_now();
		if (pr_transport_publish(b.tr, topic, payload, strlen(payload), 1, 0, &p, 5000)
		    != 0) {
			fprintf(stderr, "pr_bench_rtt: publish failed\n");
			return 1;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		pthread_mutex_lock(&b.mu);
		while (!b.got && rc == 0) {
			rc = pthread_cond_timedwait(&b.cv, &b.mu, &ts);
		}
		pthread_mutex_unlock(&b.mu);
		if (rc != 0) {
			fprintf(stderr, "pr_bench_rtt: no reply within 10 s (request %ld)\n", i);
			return 1;
		}
		samples[i] = pr_time_now() - t0;
	}
	qsort(samples, (size_t)n, sizeof *samples, cmp_i64);
	printf("n=%ld min=%" PRId64 " p50=%" PRId64 " p90=%" PRId64 " p99=%" PRId64 " max=%" PRId64
	       " stray=%ld\n",
	    n, samples[0], samples[n / 2], samples[n * 9 / 10], samples[n * 99 / 100],
	    samples[n - 1], b.stray);
	free(samples);
	pr_transport_close(b.tr);
	return 0;
}
