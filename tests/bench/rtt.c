/* SPDX-License-Identifier: MIT */
/*
 * Request/response through a broker: round trips, throughput with N
 * requests in flight, and the delay from an unlock to the retained summary
 * that shows it.
 *
 *   pr_bench_rtt echo  --broker URL --topic T
 *       a trivial responder: answers every message on T, at QoS 1, on its
 *       Response Topic with its Correlation Data, doing no work. The
 *       baseline that partregd's figures are divided by.
 *   pr_bench_rtt query --broker URL --topic T --payload JSON [-n N | -d SECS] [-c C]
 *       sends N requests to T (QoS 1, MQTT 5 request/response), C in flight
 *       (default 1; N rounded up so that each of the C slots sends as many,
 *       an even number for lockunlock), or with -d SECS as many as SECS
 *       allow (no slot starts a request after SECS, but a lockunlock slot
 *       holding a lock still unlocks; the figure a fixed-duration client
 *       such as wrk is compared with), and prints the rate and the round
 *       trip percentiles in microseconds:
 *       "n=N c=C secs=… rate=… min=… p50=… p90=… p99=… max=… stray=… errors=…"
 *   pr_bench_rtt lockunlock --broker URL --topic PREFIX/cmd --source S
 *                --token TOK [--first-day YYYY-MM-DD] [-n N | -d SECS] [-c C]
 *       the same with partition/lock and partition/unlock: request slot i
 *       works on day i from --first-day (default 2001-01-01) of provider
 *       "p" of S, alternating lock and unlock on PREFIX/cmd/partition/lock
 *       and …/unlock (without --source and --token, on an echo: --topic is
 *       then the echo's topic and the bodies are the same). errors counts
 *       replies with "ok":false.
 *   pr_bench_rtt register --broker URL --topic T [--source S --token TOK]
 *                [--first-day YYYY-MM-DD] [-n N] [-c C]
 *       exactly N partition/register commands to T (PREFIX/cmd/partition/
 *       register, or an echo's topic for the same bodies), C in flight, each
 *       for a new day of provider "p" of S: the days from --first-day
 *       (default 2001-01-01) on, one after another, each to whichever slot
 *       is free. Run it twice with the second's --first-day N days later to
 *       register N partitions and then time N more that are all new (a
 *       register of a known partition changes nothing). Prints as query;
 *       errors counts replies with "ok":false.
 *   pr_bench_rtt unlockwait --broker URL [--sub-broker URL2] --topic PREFIX/cmd
 *                --source S --token TOK [-n N]
 *       N times: lock a day (waiting for the reply and its seq), then time
 *       from sending its unlock to the arrival of PREFIX/state/S with a seq
 *       past the lock's, as a subscriber (on URL2, e.g. a bridged broker)
 *       that waits for readiness sees it. Prints the percentiles as query.
 *
 * All use the project's transport module, so every client has TCP_NODELAY
 * and the same Paho client as the agent: the ratio isolates partregd's own
 * cost. A reply whose correlation matches no request in flight is counted
 * as stray and ignored. Every loop is bounded: no progress for 10 s fails.
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

#include <partreg/time.h>
#include "samples.h"
#include "transport.h"

#define SLOTS_MAX  1024
#define STALL_SECS 10
#define DAY_US     INT64_C(86400000000)
#define DAY0_US    INT64_C(978307200000000) /* 2001-01-01T00:00:00Z */

enum mode { M_ECHO, M_QUERY, M_LOCKUNLOCK, M_REGISTER, M_UNLOCKWAIT };

struct slot {
	uint64_t want; /* correlation of the request in flight; 0 = none */
	int64_t t0;
	int unlock; /* lockunlock: the request in flight is an unlock */
};

struct bench {
	struct pr_transport *tr, *sub;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot slots[SLOTS_MAX];
	int nslots;
	int done[SLOTS_MAX]; /* slots whose reply arrived, in order */
	int ndone;
	int64_t *samples;
	long nsamples;
	long stray, errors;
	uint64_t last_seq; /* seq of the last reply */
	uint64_t want_seq; /* unlockwait: summary seq awaited; 0 = none */
	int64_t seen_at;   /* unlockwait: when it arrived */
	int echo;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The first "seq": number in a JSON text (the top-level one in replies'
 * results and in summaries, whose nested objects carry none); 0 if none. */
static uint64_t
find_seq(const char *s)
{
	const char *p = s != NULL ? strstr(s, "\"seq\":") : NULL;

	return p != NULL ? strtoull(p + 6, NULL, 10) : 0;
}

static void
on_message(void *arg, struct pr_msg *m)
{
	struct bench *b = arg;
	uint64_t c = 0;
	int slot;

	if (b->echo) {
		if (m->response_topic != NULL) {
			struct pr_pubprops p = { .correlation = m->correlation,
				.correlation_len = m->correlation_len };

			/* Paho's receive thread: never wait here for the window. */
			pr__transport_publish(
			    b->tr, m->response_topic, m->payload, m->payload_len, 1, 0, &p, 0);
		}
		pr__msg_free(m);
		return;
	}
	if (m->correlation != NULL && m->correlation_len == sizeof c) {
		memcpy(&c, m->correlation, sizeof c);
	}
	slot = (int)(c >> 40);
	pthread_mutex_lock(&b->mu);
	if (c != 0 && slot < b->nslots && b->slots[slot].want == c) {
		if (b->nsamples >= 0) {
			b->samples[b->nsamples++] = pr_time_now() - b->slots[slot].t0;
		}
		if (m->payload != NULL && strstr(m->payload, "\"ok\":false") != NULL) {
			b->errors++;
		}
		b->last_seq = find_seq(m->payload);
		b->slots[slot].want = 0;
		b->done[b->ndone++] = slot;
		pthread_cond_broadcast(&b->cv);
	} else {
		b->stray++;
	}
	pthread_mutex_unlock(&b->mu);
	pr__msg_free(m);
}

/* The subscriber of the retained summary (unlockwait). */
static void
on_summary(void *arg, struct pr_msg *m)
{
	struct bench *b = arg;
	uint64_t seq = find_seq(m->payload);
	int64_t now = pr_time_now();

	pthread_mutex_lock(&b->mu);
	if (b->want_seq != 0 && seq >= b->want_seq && b->seen_at == 0) {
		b->seen_at = now;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	pr__msg_free(m);
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: pr_bench_rtt echo|query|lockunlock|register|unlockwait --broker URL --topic T\n"
	    "       [--payload JSON] [--source S --token TOK] [--sub-broker URL]\n"
	    "       [--first-day YYYY-MM-DD] [-n N | -d SECS] [-c C]\n");
	return 2;
}

/* Wait on b->cv (b->mu held) until the deadline; ETIMEDOUT or 0. */
static int
wait_until(struct bench *b, const struct timespec *ts)
{
	return pthread_cond_timedwait(&b->cv, &b->mu, ts);
}

static void
deadline_in(struct timespec *ts, int secs)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += secs;
}

struct job {
	const char *topic; /* query, register; echo lockunlock */
	const char *payload;
	const char *cmd_prefix; /* lockunlock on the agent: PREFIX/cmd */
	const char *source, *token;
	int64_t first_day; /* day 0 of day_body, µs */
	char reply_topic[256];
};

/* The body for day number day from j->first_day: a lock/unlock/register of
 * provider p, or on an echo the same text. */
static void
day_body(const struct job *j, int64_t day, char *buf, size_t size)
{
	int64_t start = j->first_day + day * DAY_US;
	char s[PR_TIME_BUFSZ], e[PR_TIME_BUFSZ];

	snprintf(buf, size,
	    "{\"source\":\"%s\",\"provider\":\"p\",\"start\":\"%s\",\"end\":\"%s\","
	    "\"access_token\":\"%s\"}",
	    j->source != NULL ? j->source : "bench", pr_time_format(start, s),
	    pr_time_format(start + DAY_US, e), j->token != NULL ? j->token : "-");
}

/* Send request number iteration of slot; returns 0 or -1 (logged).
 * lockunlock: slot i works on day i, locking on even iterations and
 * unlocking on odd ones; register: iteration is the day. */
static int
send_next(struct bench *b, const struct job *j, int slot, uint64_t iteration, enum mode mode)
{
	uint64_t corr = ((uint64_t)slot << 40) | (iteration + 1);
	struct pr_pubprops p = { .correlation = (const char *)&corr,
		.correlation_len = sizeof corr,
		.response_topic = j->reply_topic };
	char body[512], topic[256];
	const char *payload = j->payload, *to = j->topic;
	int unlock = 0;

	if (mode == M_REGISTER) {
		day_body(j, (int64_t)iteration, body, sizeof body);
		payload = body;
	} else if (mode == M_LOCKUNLOCK) {
		unlock = (int)(iteration & 1);
		day_body(j, slot, body, sizeof body);
		payload = body;
		if (j->cmd_prefix != NULL) {
			snprintf(topic, sizeof topic, "%s/partition/%s", j->cmd_prefix,
			    unlock ? "unlock" : "lock");
			to = topic;
		}
	}
	pthread_mutex_lock(&b->mu);
	b->slots[slot].want = corr;
	b->slots[slot].unlock = unlock;
	b->slots[slot].t0 = pr_time_now();
	pthread_mutex_unlock(&b->mu);
	if (pr__transport_publish(b->tr, to, payload, strlen(payload), 1, 0, &p, 5000) != 0) {
		fprintf(stderr, "pr_bench_rtt: publish failed\n");
		return -1;
	}
	return 0;
}

static void
print_samples(int64_t *s, long n, int c, double secs, long stray, long errors)
{
	pr_bench_samples(s, n, c, secs);
	printf(" stray=%ld errors=%ld\n", stray, errors);
}

/* The next iteration of slot, or -1 when none is left: query and
 * lockunlock count per slot, register one sequence for all (its days). */
static int64_t
next_iteration(enum mode mode, uint64_t *iter, int slot, long per_slot, long *sent, long n)
{
	if (mode == M_REGISTER) {
		return *sent < n ? (int64_t)(*sent)++ : -1;
	}
	return iter[slot] < (uint64_t)per_slot ? (int64_t)iter[slot]++ : -1;
}

/* n requests, c in flight (query, lockunlock or register); with
 * until > 0 (pr_time_now() µs), no slot starts one after it (lockunlock:
 * a slot that holds a lock unlocks it first). */
static int
run_pipelined(struct bench *b, const struct job *j, long n, int c, enum mode mode, int64_t until)
{
	uint64_t *iter = calloc((size_t)c, sizeof *iter);
	long completed = 0, sent = 0, per_slot, inflight = 0;
	int64_t t_start, it;

	if (iter == NULL) {
		return 1;
	}
	/* Every slot makes the same number of requests, even for lockunlock
	 * so that each ends unlocked and the next run can lock again; register
	 * makes exactly n, as the days it registers follow one another. */
	per_slot = (n + c - 1) / c;
	if (mode == M_LOCKUNLOCK) {
		per_slot += per_slot & 1;
	}
	if (mode != M_REGISTER) {
		n = per_slot * c;
	}
	b->nslots = c;
	t_start = pr_time_now();
	for (int i = 0; i < c; i++) {
		it = next_iteration(mode, iter, i, per_slot, &sent, n);
		if (it >= 0 && send_next(b, j, i, (uint64_t)it, mode) != 0) {
			return 1;
		}
		inflight += it >= 0;
	}
	while (inflight > 0) {
		int ready[SLOTS_MAX], nready, rc = 0;
		struct timespec ts;

		deadline_in(&ts, STALL_SECS);
		pthread_mutex_lock(&b->mu);
		while (b->ndone == 0 && rc == 0) {
			rc = wait_until(b, &ts);
		}
		nready = b->ndone;
		memcpy(ready, b->done, (size_t)nready * sizeof *ready);
		b->ndone = 0;
		pthread_mutex_unlock(&b->mu);
		if (nready == 0) {
			fprintf(stderr, "pr_bench_rtt: no reply within %d s (%ld of %ld done)\n",
			    STALL_SECS, completed, n);
			return 1;
		}
		completed += nready;
		inflight -= nready;
		for (int i = 0; i < nready; i++) {
			if (until > 0 && pr_time_now() >= until
			    && (mode != M_LOCKUNLOCK || (iter[ready[i]] & 1) == 0)) {
				continue;
			}
			it = next_iteration(mode, iter, ready[i], per_slot, &sent, n);
			if (it >= 0 && send_next(b, j, ready[i], (uint64_t)it, mode) != 0) {
				return 1;
			}
			inflight += it >= 0;
		}
	}
	print_samples(b->samples, b->nsamples, c, (double)(pr_time_now() - t_start) / 1e6, b->stray,
	    b->errors);
	free(iter);
	return 0;
}

/* Send one request on slot 0 and wait for its reply; 0 or -1. */
static int
one_request(struct bench *b, const struct job *j, uint64_t iteration)
{
	struct timespec ts;
	int rc = 0;

	if (send_next(b, j, 0, iteration, M_LOCKUNLOCK) != 0) {
		return -1;
	}
	deadline_in(&ts, STALL_SECS);
	pthread_mutex_lock(&b->mu);
	while (b->ndone == 0 && rc == 0) {
		rc = wait_until(b, &ts);
	}
	b->ndone = 0;
	pthread_mutex_unlock(&b->mu);
	if (rc != 0) {
		fprintf(stderr, "pr_bench_rtt: no reply within %d s\n", STALL_SECS);
		return -1;
	}
	return 0;
}

/* n times: lock, then time unlock → summary with a later seq. */
static int
run_unlockwait(struct bench *b, const struct job *j, long n)
{
	int64_t *lat = calloc((size_t)n, sizeof *lat);
	int64_t t_start = pr_time_now();

	if (lat == NULL) {
		return 1;
	}
	b->nslots = 1;
	b->nsamples = -1; /* the reply latencies are not the figure */
	for (long i = 0; i < n; i++) {
		struct timespec ts;
		uint64_t seq;
		int64_t t0;
		int rc = 0;

		if (one_request(b, j, (uint64_t)i * 2) != 0) {
			return 1;
		}
		pthread_mutex_lock(&b->mu);
		seq = b->last_seq;
		b->want_seq = seq + 1;
		b->seen_at = 0;
		pthread_mutex_unlock(&b->mu);
		if (seq == 0) {
			fprintf(stderr, "pr_bench_rtt: the lock's reply has no seq\n");
			return 1;
		}
		t0 = pr_time_now();
		if (one_request(b, j, (uint64_t)i * 2 + 1) != 0) {
			return 1;
		}
		deadline_in(&ts, STALL_SECS);
		pthread_mutex_lock(&b->mu);
		while (b->seen_at == 0 && rc == 0) {
			rc = wait_until(b, &ts);
		}
		lat[i] = b->seen_at - t0;
		b->want_seq = 0;
		pthread_mutex_unlock(&b->mu);
		if (rc != 0) {
			fprintf(stderr,
			    "pr_bench_rtt: no summary with seq %" PRIu64 " within %d s\n", seq + 1,
			    STALL_SECS);
			return 1;
		}
	}
	print_samples(lat, n, 1, (double)(pr_time_now() - t_start) / 1e6, b->stray, b->errors);
	free(lat);
	return 0;
}

static struct pr_transport *
connect_client(const char *uri, const char *role, const char *sub,
    void (*cb)(void *, struct pr_msg *), struct bench *b)
{
	struct pr_transport_opts o = { 0 };
	struct pr_transport *t = NULL;
	char client_id[64];
	const char *subs[1] = { sub };

	snprintf(client_id, sizeof client_id, "pr_bench_%s_%ld", role, (long)getpid());
	o.uri = uri;
	o.client_id = client_id;
	o.clean_start = 1;
	o.nodelay_all = 1;
	o.subscriptions = subs;
	o.nsubscriptions = 1;
	o.on_message = cb;
	o.arg = b;
	if (pr__transport_open(&o, &t) != 0 || pr__transport_wait_connected(t, 10000) != 0) {
		fprintf(stderr, "pr_bench_rtt: cannot connect to %s\n", uri);
		pr__transport_close(t);
		return NULL;
	}
	return t;
}

int
main(int argc, char **argv)
{
	static struct bench b = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	static const char *const modes[] = { [M_ECHO] = "echo",
		[M_QUERY] = "query",
		[M_LOCKUNLOCK] = "lockunlock",
		[M_REGISTER] = "register",
		[M_UNLOCKWAIT] = "unlockwait" };
	struct job j = { .payload = "{}", .first_day = DAY0_US };
	const char *broker = NULL, *sub_broker = NULL;
	char summary_topic[256];
	enum mode mode = M_ECHO;
	long n = 1000, secs = 0;
	int c = 1, rc, known = 0;

	if (argc < 2) {
		return usage();
	}
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		if (strcmp(argv[1], modes[i]) == 0) {
			mode = (enum mode)i;
			known = 1;
		}
	}
	if (!known) {
		return usage();
	}
	b.echo = mode == M_ECHO;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--broker") == 0) {
			broker = argv[i + 1];
		} else if (strcmp(argv[i], "--sub-broker") == 0) {
			sub_broker = argv[i + 1];
		} else if (strcmp(argv[i], "--topic") == 0) {
			j.topic = argv[i + 1];
		} else if (strcmp(argv[i], "--payload") == 0) {
			j.payload = argv[i + 1];
		} else if (strcmp(argv[i], "--source") == 0) {
			j.source = argv[i + 1];
		} else if (strcmp(argv[i], "--token") == 0) {
			j.token = argv[i + 1];
		} else if (strcmp(argv[i], "--first-day") == 0) {
			if (pr_time_parse(argv[i + 1], strlen(argv[i + 1]), &j.first_day) != 0) {
				return usage();
			}
		} else if (strcmp(argv[i], "-n") == 0) {
			n = strtol(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "-d") == 0) {
			secs = strtol(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "-c") == 0) {
			c = (int)strtol(argv[i + 1], NULL, 10);
		} else {
			return usage();
		}
	}
	if (broker == NULL || j.topic == NULL || n <= 0 || c <= 0 || c > SLOTS_MAX) {
		return usage();
	}
	if (mode == M_UNLOCKWAIT && (j.source == NULL || j.token == NULL)) {
		return usage();
	}
	if (secs < 0 || (secs > 0 && mode != M_QUERY && mode != M_LOCKUNLOCK)) {
		return usage();
	}
	if (secs > 0) {
		n = secs * 200000; /* a bound no run reaches: the clock ends it */
	}
	/* On the agent, --topic is PREFIX/cmd and lockunlock's commands go
	 * below it; register's --topic is the command's own, like query's. */
	if (j.source != NULL && mode != M_REGISTER) {
		j.cmd_prefix = j.topic;
	}
	/* Replies go under the agent's reply prefix: P/cmd/... answers on P/reply/. */
	{
		const char *cmd = strstr(j.topic, "/cmd");
		int plen = cmd != NULL ? (int)(cmd - j.topic) : (int)strlen(j.topic);

		snprintf(j.reply_topic, sizeof j.reply_topic, "%.*s/reply/bench-%ld", plen, j.topic,
		    (long)getpid());
		snprintf(summary_topic, sizeof summary_topic, "%.*s/state/%s", plen, j.topic,
		    j.source != NULL ? j.source : "");
	}
	b.tr
	    = connect_client(broker, modes[mode], b.echo ? j.topic : j.reply_topic, on_message, &b);
	if (b.tr == NULL) {
		return 1;
	}
	if (b.echo) {
		signal(SIGTERM, on_signal);
		signal(SIGINT, on_signal);
		printf("echo responder on %s\n", j.topic);
		fflush(stdout);
		while (!stop) {
			pause();
		}
		pr__transport_close(b.tr);
		return 0;
	}
	if (mode == M_UNLOCKWAIT) {
		b.sub = connect_client(
		    sub_broker != NULL ? sub_broker : broker, "sub", summary_topic, on_summary, &b);
		if (b.sub == NULL) {
			pr__transport_close(b.tr);
			return 1;
		}
		rc = run_unlockwait(&b, &j, n);
		pr__transport_close(b.sub);
		pr__transport_close(b.tr);
		return rc;
	}
	b.samples = calloc((size_t)n + 2 * (size_t)c, sizeof *b.samples); /* n is rounded up */
	if (b.samples == NULL) {
		return 1;
	}
	rc = run_pipelined(&b, &j, n, c, mode, secs > 0 ? pr_time_now() + secs * 1000000 : 0);
	free(b.samples);
	pr__transport_close(b.tr);
	return rc;
}
