/* SPDX-License-Identifier: MIT */
/*
 * partreg-http's mirror (http/mirror.c) in process: no broker, no HTTP,
 * the retained messages fed to pr_http_mirror_message as the MQTT receive
 * thread gives them, so the figures show how the mirror scales with the
 * partitions of one source.
 *
 *   pr_bench_mirror inserts -n N [--reverse]
 *       N one-hour partitions of source "bench" (provider "p", from
 *       2001-01-01, every 1000th pending, the rest ready), their topics and
 *       payloads built first (untimed), then fed in time order or in
 *       reverse; prints "n=… order=… secs=… rate=…" (messages/s).
 *   pr_bench_mirror readiness -n N [-s SAMPLES]
 *       the same N fed in order with the summary the agent would retain
 *       for them (the ready runs between the pending hours, each pending
 *       hour a blocked run), then SAMPLES (default 20000, after 1000
 *       unmeasured) pr_http_mirror_readiness calls for random 24-hour
 *       windows; prints "n=… samples=… rate=… p50_ns=… p99_ns=… local=…"
 *       (local: the answers the mirror gave itself, all of them when it
 *       works).
 *   pr_bench_mirror snapshot -n N
 *       the same N fed in order; the baseline: the listing of all of them
 *       (pr_http_mirror_partitions_json, the same JSON once, under the
 *       lock). Then a watcher connects and reads its whole snapshot in
 *       reads of 64 KiB; then a second watcher connects, reads 1 MiB of its
 *       snapshot, and every message is delivered again unchanged (a broker
 *       reconnect) followed by 1000 real changes before it reads the rest.
 *       Prints "n=… list_secs=… list_bytes=… snap_secs=… snap_bytes=…
 *       watch_us=… p99_read_us=… max_read_us=… redeliver_secs=… dropped=…"
 *       (watch_us: the connect, pr_http_mirror_watch; p99_read_us and
 *       max_read_us: the first watcher's reads; each holds the mirror's
 *       lock; redeliver_secs: the unchanged messages fed again; dropped: 1
 *       when a watcher was dropped).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <partreg/time.h>

#include "mirror.h"

#define P          "partreg/v1"
#define HOUR_US    INT64_C(3600000000)
#define T0_US      INT64_C(978307200000000) /* 2001-01-01T00:00:00Z */
#define PEND_EVERY 1000
#define WARMUP     1000
#define READ_BYTES (64 * 1024)

struct msg {
	char *topic;
	char *payload;
	size_t len;
};

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "pr_bench_mirror: out of memory\n");
		exit(1);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static int
pending(size_t i)
{
	return i % PEND_EVERY == PEND_EVERY / 2;
}

/* Partition i's retained message, with seq. */
static void
make(struct msg *out, size_t i, uint64_t seq)
{
	char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ], c[PR_TIME_BUFSZ], topic[256], body[1024];
	int64_t start = T0_US + (int64_t)i * HOUR_US;

	pr_time_format(start, a);
	pr_time_format(start + HOUR_US, b);
	pr_time_format(start + HOUR_US + 1000000, c);
	snprintf(topic, sizeof topic, P "/state/bench/partitions/%s/%s/p", a, b);
	snprintf(body, sizeof body,
	    "{\"source\":\"bench\",\"provider\":\"p\",\"start\":\"%s\",\"end\":\"%s\","
	    "\"state\":\"%s\",\"version\":1,\"fence\":1,\"since\":\"%s\",\"updated_at\":\"%s\","
	    "\"seq\":%" PRIu64 ",\"epoch\":1}",
	    a, b, pending(i) ? "pending" : "ready", c, c, seq);
	out->topic = xstrdup(topic);
	out->payload = xstrdup(body);
	out->len = strlen(body);
}

static struct msg *
make_all(size_t n)
{
	struct msg *v = xmalloc((n + 1) * sizeof *v);

	for (size_t i = 0; i < n; i++) {
		make(&v[i], i, i + 1);
	}
	return v;
}

static void
free_all(struct msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].topic);
		free(v[i].payload);
	}
	free(v);
}

static struct pr_http_mirror *
mirror(void)
{
	struct pr_http_mirror *m;

	if (pr_http_mirror_new(P, &m) != 0) {
		fprintf(stderr, "pr_bench_mirror: out of memory\n");
		exit(1);
	}
	return m;
}

static void
feed(struct pr_http_mirror *m, const struct msg *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pr_http_mirror_message(m, v[i].topic, v[i].payload, v[i].len);
	}
}

/* The summary the agent retains for the N partitions: ready runs between
 * the pending hours, each pending hour a run of its own. */
static void
feed_summary(struct pr_http_mirror *m, size_t n)
{
	size_t cap = 256 + n / PEND_EVERY * 256;
	char *body = xmalloc(cap), a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
	size_t len = 0, run = 0;

	len += (size_t)snprintf(body + len, cap - len,
	    "{\"v\":2,\"source\":\"bench\",\"owner\":\"o\",\"seq\":%zu,\"epoch\":1,"
	    "\"updated_at\":\"2001-01-01T00:00:00Z\",\"ready\":[",
	    n + 1);
	for (size_t i = 0; i <= n; i++) {
		if (i == n || pending(i)) {
			if (i > run) {
				len += (size_t)snprintf(body + len, cap - len, "%s[\"%s\",\"%s\"]",
				    body[len - 1] == '[' ? "" : ",",
				    pr_time_format(T0_US + (int64_t)run * HOUR_US, a),
				    pr_time_format(T0_US + (int64_t)i * HOUR_US, b));
			}
			run = i + 1;
		}
	}
	len += (size_t)snprintf(body + len, cap - len, "],\"blocked\":[");
	for (size_t i = 0; i < n; i++) {
		if (pending(i)) {
			len += (size_t)snprintf(body + len, cap - len,
			    "%s{\"provider\":\"p\",\"state\":\"pending\",\"start\":\"%s\",\"end\":"
			    "\"%s\"}",
			    body[len - 1] == '[' ? "" : ",",
			    pr_time_format(T0_US + (int64_t)i * HOUR_US, a),
			    pr_time_format(T0_US + (int64_t)(i + 1) * HOUR_US, b));
		}
	}
	len += (size_t)snprintf(body + len, cap - len, "],\"truncated\":false}");
	pr_http_mirror_message(m, P "/state/bench", body, len);
	free(body);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmd_inserts(size_t n, int reverse)
{
	struct msg *v = make_all(n);
	struct pr_http_mirror *m = mirror();
	int64_t t0, t1;

	if (reverse) {
		for (size_t i = 0; i < n / 2; i++) {
			struct msg t = v[i];

			v[i] = v[n - 1 - i];
			v[n - 1 - i] = t;
		}
	}
	t0 = mono_ns();
	feed(m, v, n);
	t1 = mono_ns();
	printf("n=%zu order=%s secs=%.3f rate=%.0f\n", n, reverse ? "reverse" : "forward",
	    (double)(t1 - t0) / 1e9, (double)n * 1e9 / (double)(t1 - t0 > 0 ? t1 - t0 : 1));
	pr_http_mirror_free(m);
	free_all(v, n);
	return 0;
}

static int
cmd_readiness(size_t n, size_t samples)
{
	struct msg *v = make_all(n);
	struct pr_http_mirror *m = mirror();
	int64_t *ns = xmalloc((samples + 1) * sizeof *ns), total = 0;
	size_t local = 0, hours = n > 24 ? n - 24 : 1;
	unsigned seed = 1;

	feed(m, v, n);
	free_all(v, n);
	feed_summary(m, n);
	for (size_t k = 0; k < WARMUP + samples; k++) {
		int64_t start = T0_US + (int64_t)(rand_r(&seed) % hours) * HOUR_US, t0, t1;
		struct pr_range want = { start, start + 24 * HOUR_US };
		char *text = NULL;
		int rc;

		t0 = mono_ns();
		rc = pr_http_mirror_readiness(m, "bench", want, &text);
		t1 = mono_ns();
		free(text);
		if (k >= WARMUP) {
			ns[k - WARMUP] = t1 - t0;
			total += t1 - t0;
			local += rc == 0;
		}
	}
	qsort(ns, samples, sizeof *ns, cmp_i64);
	printf("n=%zu samples=%zu rate=%.0f p50_ns=%" PRId64 " p99_ns=%" PRId64 " local=%zu\n", n,
	    samples, (double)samples * 1e9 / (double)(total > 0 ? total : 1), ns[samples / 2],
	    ns[samples * 99 / 100], local);
	free(ns);
	pr_http_mirror_free(m);
	return 0;
}

/* Times of reads, for their percentiles. */
struct times {
	int64_t *ns;
	size_t n, cap;
};

/* Read w until nothing is queued (or until stop bytes); the bytes read.
 * Each read's time into t (may be NULL). */
static size_t
drain(struct pr_http_mirror *m, struct pr_http_watch *w, char *buf, size_t stop, struct times *t,
    int *dropped)
{
	size_t got = 0;
	long k;

	do {
		int64_t t0 = mono_ns();

		k = pr_http_watch_read(m, w, buf, READ_BYTES, 0);
		if (t != NULL) {
			if (t->n == t->cap) {
				t->cap = t->cap * 2 + 1024;
				t->ns = realloc(t->ns, t->cap * sizeof *t->ns);
				if (t->ns == NULL) {
					fprintf(stderr, "pr_bench_mirror: out of memory\n");
					exit(1);
				}
			}
			t->ns[t->n++] = mono_ns() - t0;
		}
		got += k > 0 ? (size_t)k : 0;
	} while (k > 0 && got < stop);
	*dropped |= k < 0;
	return got;
}

static int
cmd_snapshot(size_t n)
{
	struct msg *v = make_all(n);
	struct pr_http_mirror *m = mirror();
	struct pr_http_watch *w;
	char *buf = xmalloc(READ_BYTES), *list;
	int64_t t0, t1, t2, t3, t4, t5, watch_ns;
	struct times rt = { 0 };
	size_t list_bytes, snap_bytes;
	int known, dropped = 0, dropped2 = 0;

	feed(m, v, n);
	t0 = mono_ns();
	list = pr_http_mirror_partitions_json(m, "bench", (struct pr_range) { 0, 0 }, &known);
	t1 = mono_ns();
	list_bytes = list != NULL ? strlen(list) : 0;
	free(list);

	t2 = mono_ns();
	w = pr_http_mirror_watch(m);
	if (w == NULL) {
		fprintf(stderr, "pr_bench_mirror: no watcher\n");
		return 1;
	}
	watch_ns = mono_ns() - t2;
	snap_bytes = drain(m, w, buf, SIZE_MAX, &rt, &dropped);
	t3 = mono_ns();
	qsort(rt.ns, rt.n, sizeof *rt.ns, cmp_i64);
	pr_http_mirror_unwatch(m, w);

	/* A broker reconnect in the middle of a snapshot: everything again,
	 * unchanged, then real changes. */
	w = pr_http_mirror_watch(m);
	drain(m, w, buf, 1u << 20, NULL, &dropped2);
	t4 = mono_ns();
	feed(m, v, n);
	t5 = mono_ns();
	for (size_t i = 0; i < 1000 && i < n; i++) {
		struct msg c;

		make(&c, i, n + i + 1);
		pr_http_mirror_message(m, c.topic, c.payload, c.len);
		free(c.topic);
		free(c.payload);
	}
	drain(m, w, buf, SIZE_MAX, NULL, &dropped2);
	pr_http_mirror_unwatch(m, w);

	printf("n=%zu list_secs=%.4f list_bytes=%zu snap_secs=%.4f snap_bytes=%zu watch_us=%.0f "
	       "p99_read_us=%.0f max_read_us=%.0f redeliver_secs=%.3f dropped=%d\n",
	    n, (double)(t1 - t0) / 1e9, list_bytes, (double)(t3 - t2) / 1e9, snap_bytes,
	    (double)watch_ns / 1e3, (double)rt.ns[rt.n * 99 / 100] / 1e3,
	    (double)rt.ns[rt.n - 1] / 1e3, (double)(t5 - t4) / 1e9, dropped || dropped2);
	free(rt.ns);
	free(buf);
	free_all(v, n);
	pr_http_mirror_free(m);
	return 0;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: pr_bench_mirror inserts -n N [--reverse]\n"
	    "       pr_bench_mirror readiness -n N [-s SAMPLES]\n"
	    "       pr_bench_mirror snapshot -n N\n");
	return 2;
}

int
main(int argc, char **argv)
{
	size_t n = 10000, samples = 20000;
	int reverse = 0;

	if (argc < 2) {
		return usage();
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			n = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			samples = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--reverse") == 0) {
			reverse = 1;
		} else {
			return usage();
		}
	}
	if (n == 0 || samples == 0) {
		return usage();
	}
	if (strcmp(argv[1], "inserts") == 0) {
		return cmd_inserts(n, reverse);
	}
	if (strcmp(argv[1], "readiness") == 0) {
		return cmd_readiness(n, samples);
	}
	if (strcmp(argv[1], "snapshot") == 0) {
		return cmd_snapshot(n);
	}
	return usage();
}
