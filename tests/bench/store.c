/* SPDX-License-Identifier: MIT */
/*
 * The agent's own cost of a readiness/query, in process: no broker, no
 * MQTT, just pr__handle on a store of a given size, so the figure shows how
 * the store's indexes scale with the partitions of one source.
 *
 *   pr_bench_store fill DIR -n N
 *       a fresh store in DIR with source "bench" (owner "o", provider "p")
 *       and N partitions of one hour from 2000-01-01: every 7th hour is a
 *       gap, every 10th partition is pending (a blocker), the rest ready, so
 *       the coalesced ready union has ~N/4 ranges and a query meets both
 *       indexes. Partitions are written with pr__store_partition_put (every
 *       index maintained) in transactions of 100k; the source's seq is set
 *       past them. Prints "n=N secs=… token=…" (the owner's token). Every
 *       partition's since is the time of the fill: this store is for the
 *       query-time figure, whose numbers stay comparable across versions.
 *   pr_bench_store fill DIR -n N --history
 *       the same source with a history as a running pipeline leaves it:
 *       N contiguous one-hour partitions ending at the start of the current
 *       hour (so from now - N hours), every one ready since its end, but
 *       the last 48 hours, which are not yet ready: pending since their end,
 *       every 4th of them (the newest first) locked now with a lease of a
 *       week. What the agent keeps retained for such a store depends on its
 *       --ready-expiry (the republish figures): the last week in detail, or
 *       everything. query reads only stores filled without --history.
 *   pr_bench_store query DIR [-s SAMPLES] [-w HOURS]
 *       SAMPLES (default 20000, after 1000 unmeasured) readiness/query
 *       commands for random HOURS-long (default 24) windows inside the
 *       filled span, each timed around pr__handle and the encoding of its
 *       result, in read transactions of 100 queries. Latencies go into
 *       log-linear buckets (HdrHistogram-style: 32 sub-buckets per power of
 *       two, so within ~3%); prints
 *       "n=… samples=… mean_ns=… p50_ns=… p90_ns=… p99_ns=… max_ns=…".
 *
 * The source is registered through pr__handle (as a command would), the bulk
 * of partitions straight through the store: events are not written for
 * them, which no query reads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "encode.h"
#include "handlers.h"
#include <partreg/time.h>
#include "store.h"

#define HOUR_US    INT64_C(3600000000)
#define T0_US      INT64_C(946684800000000) /* 2000-01-01T00:00:00Z */
#define FILL_TXN   100000
#define SUB_BITS   5 /* 32 sub-buckets per power of two */
#define SUB_COUNT  (1 << SUB_BITS)
#define NBUCKETS   (2 * SUB_COUNT + 64 * SUB_COUNT)
#define WARMUP     1000
#define QUERY_TXN  100
#define SOURCE     "bench"
#define STATE_SKIP 7  /* every 7th hour is a gap */
#define PEND_EVERY 10 /* every 10th partition pending */
#define RECENT     48 /* --history: the newest hours not yet ready */
#define LOCK_EVERY 4  /* --history: every 4th of those locked */
#define LEASE_US   (INT64_C(604800) * 1000000)

static const struct pr_handler_opts hopts = {
	.list_default = 100,
	.blockers_max = 1000,
	.lease = { .default_s = 3600, .max_s = 604800 },
};

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- log-linear histogram ---- */

struct hist {
	uint64_t count[NBUCKETS];
	uint64_t n, max;
	double sum;
};

static int
bucket_of(uint64_t v)
{
	int msb, shift;

	if (v < 2 * SUB_COUNT) {
		return (int)v;
	}
	msb = 63 - __builtin_clzll(v);
	shift = msb - SUB_BITS;
	return 2 * SUB_COUNT + (shift - 1) * SUB_COUNT + (int)((v >> shift) - SUB_COUNT);
}

/* The middle of bucket i's value range. */
static uint64_t
bucket_value(int i)
{
	int shift;
	uint64_t sub;

	if (i < 2 * SUB_COUNT) {
		return (uint64_t)i;
	}
	shift = (i - 2 * SUB_COUNT) / SUB_COUNT + 1;
	sub = (uint64_t)((i - 2 * SUB_COUNT) % SUB_COUNT + SUB_COUNT);
	return (sub << shift) + ((uint64_t)1 << (shift - 1));
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->count[bucket_of(v)]++;
	h->n++;
	h->sum += (double)v;
	if (v > h->max) {
		h->max = v;
	}
}

static uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;

	for (int i = 0; i < NBUCKETS; i++) {
		seen += h->count[i];
		if (seen > want) {
			return bucket_value(i);
		}
	}
	return h->max;
}

/* ---- fill ---- */

static int
fail(const char *what, int rc)
{
	fprintf(stderr, "pr_bench_store: %s: %d\n", what, rc);
	return 1;
}

/* The owner's token from a source/register result. */
static void
token_of(const struct pr_json *result, char *out, size_t size)
{
	char *text = pr__json_dump(result, NULL);
	const char *p = text != NULL ? strstr(text, "\"access_token\":\"") : NULL;

	out[0] = '\0';
	if (p != NULL) {
		p += strlen("\"access_token\":\"");
		snprintf(out, size, "%.*s", (int)strcspn(p, "\""), p);
	}
	free(text);
}

static int
run_cmd(struct pr_txn *txn, const struct pr_cmd *cmd, char *token, size_t size)
{
	struct pr_changes ch;
	struct pr_json *result = NULL;
	char msg[256];
	int rc;

	pr__changes_init(&ch);
	rc = pr__handle(txn, cmd, pr_time_now(), &hopts, &ch, &result, msg);
	if (rc == 0 && token != NULL) {
		token_of(result, token, size);
	}
	if (rc != 0) {
		fprintf(stderr, "pr_bench_store: %s: %s\n", pr__cmd_name(cmd->kind), msg);
	}
	pr__json_free(result);
	pr__changes_release(&ch);
	return rc;
}

/* Partition i of n for the fill: the default's (hours from 2000-01-01 with
 * gaps, every 10th pending, all since now) or --history's (see the top). */
static void
fill_partition(
    struct pr_source *src, long i, long n, int history, int64_t now, struct pr_partition *p)
{
	long age = n - 1 - i; /* --history: 0 is the newest */

	memset(p, 0, sizeof *p);
	snprintf(p->source, sizeof p->source, SOURCE);
	snprintf(p->provider, sizeof p->provider, "p");
	p->seq = src->seq + 1 + (uint64_t)i;
	if (!history) {
		long hour = i + i / (STATE_SKIP - 1);

		p->range.start = T0_US + (int64_t)hour * HOUR_US;
		p->range.end = p->range.start + HOUR_US;
		p->state = i % PEND_EVERY == PEND_EVERY - 1 ? PR_PENDING : PR_READY;
		p->version = p->state == PR_READY;
		p->since = p->updated_at = now;
		return;
	}
	p->range.end = now / HOUR_US * HOUR_US - (int64_t)age * HOUR_US;
	p->range.start = p->range.end - HOUR_US;
	p->since = p->updated_at = p->range.end;
	if (age >= RECENT) {
		p->state = PR_READY;
		p->version = 1;
	} else if (age % LOCK_EVERY == 0) {
		p->state = PR_LOCKED;
		p->fence = ++src->fence;
		p->since = p->updated_at = now;
		p->expires_at = now + LEASE_US;
	} else {
		p->state = PR_PENDING;
	}
}

static int
fill(const char *dir, long n, int history)
{
	struct pr_store *st = NULL;
	struct pr_txn *txn = NULL;
	struct pr_source src;
	struct pr_cmd cmd;
	char token[PR_TOKEN_MAX + 1];
	int64_t t0 = mono_ns(), now = pr_time_now();
	int rc;

	if ((rc = pr__store_open(dir, NULL, &st)) != 0) {
		return fail("pr__store_open", rc);
	}
	if ((rc = pr__txn_begin(st, 1, &txn)) != 0) {
		return fail("pr__txn_begin", rc);
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.kind = PR_CMD_SOURCE_REGISTER;
	snprintf(cmd.source, sizeof cmd.source, SOURCE);
	snprintf(cmd.owner, sizeof cmd.owner, "o");
	if (run_cmd(txn, &cmd, token, sizeof token) != 0) {
		return 1;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.kind = PR_CMD_PROVIDER_REGISTER;
	snprintf(cmd.source, sizeof cmd.source, SOURCE);
	cmd.has_provider = 1;
	snprintf(cmd.provider, sizeof cmd.provider, "p");
	cmd.has_access_token = 1;
	snprintf(cmd.access_token, sizeof cmd.access_token, "%s", token);
	if (run_cmd(txn, &cmd, NULL, 0) != 0) {
		return 1;
	}
	if ((rc = pr__store_source_get(txn, SOURCE, &src)) != 0) {
		return fail("pr__store_source_get", rc);
	}
	for (long i = 0; i < n; i++) {
		struct pr_partition p;

		fill_partition(&src, i, n, history, now, &p);
		if ((rc = pr__store_partition_put(txn, &src, &p)) != 0) {
			return fail("pr__store_partition_put", rc);
		}
		if ((i + 1) % FILL_TXN == 0) {
			if ((rc = pr__txn_commit(txn)) != 0
			    || (rc = pr__txn_begin(st, 1, &txn)) != 0) {
				return fail("commit", rc);
			}
		}
	}
	src.seq += (uint64_t)n;
	src.updated_at = now;
	if ((rc = pr__store_source_put(txn, &src)) != 0 || (rc = pr__txn_commit(txn)) != 0) {
		return fail("source put", rc);
	}
	pr__store_close(st);
	printf("n=%ld secs=%.3f token=%s\n", n, (double)(mono_ns() - t0) / 1e9, token);
	return 0;
}

/* ---- query ---- */

static uint64_t rng = 88172645463325252ULL;

static uint64_t
xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int
query(const char *dir, long samples, long hours)
{
	static struct hist h;
	struct pr_store *st = NULL;
	struct pr_txn *txn = NULL;
	struct pr_source src;
	struct pr_cmd cmd;
	long span, n;
	int rc;

	if ((rc = pr__store_open(dir, NULL, &st)) != 0) {
		return fail("pr__store_open", rc);
	}
	if ((rc = pr__txn_begin(st, 0, &txn)) != 0
	    || (rc = pr__store_source_get(txn, SOURCE, &src)) != 0) {
		return fail("source get", rc);
	}
	pr__txn_abort(txn);
	txn = NULL;
	n = (long)(src.seq - 2); /* fill: register, provider, then n partitions */
	span = n + n / (STATE_SKIP - 1);
	if (span <= hours) {
		hours = span > 1 ? span - 1 : 1;
	}
	memset(&cmd, 0, sizeof cmd);
	cmd.kind = PR_CMD_READINESS_QUERY;
	snprintf(cmd.source, sizeof cmd.source, SOURCE);
	cmd.has_range = 1;
	for (long i = 0; i < WARMUP + samples; i++) {
		struct pr_changes ch;
		struct pr_json *result = NULL;
		char msg[256], *text;
		long at = (long)(xorshift() % (uint64_t)(span - hours + 1));
		int64_t t0;

		if (txn == NULL && (rc = pr__txn_begin(st, 0, &txn)) != 0) {
			return fail("pr__txn_begin", rc);
		}
		cmd.range.start = T0_US + (int64_t)at * HOUR_US;
		cmd.range.end = cmd.range.start + (int64_t)hours * HOUR_US;
		pr__changes_init(&ch);
		t0 = mono_ns();
		rc = pr__handle(txn, &cmd, pr_time_now(), &hopts, &ch, &result, msg);
		text = rc == 0 ? pr__json_dump(result, NULL) : NULL;
		if (i >= WARMUP) {
			hist_add(&h, (uint64_t)(mono_ns() - t0));
		}
		if (rc != 0 || text == NULL) {
			return fail(msg, rc);
		}
		free(text);
		pr__json_free(result);
		pr__changes_release(&ch);
		if ((i + 1) % QUERY_TXN == 0) {
			pr__txn_abort(txn);
			txn = NULL;
		}
	}
	pr__txn_abort(txn);
	pr__store_close(st);
	printf("n=%ld samples=%ld mean_ns=%.0f p50_ns=%" PRIu64 " p90_ns=%" PRIu64
	       " p99_ns=%" PRIu64 " max_ns=%" PRIu64 "\n",
	    n, samples, h.sum / (double)h.n, hist_quantile(&h, 0.5), hist_quantile(&h, 0.9),
	    hist_quantile(&h, 0.99), h.max);
	return 0;
}

int
main(int argc, char **argv)
{
	long n = 1000, samples = 20000, hours = 24;
	int history = 0;

	if (argc < 3) {
		fprintf(stderr,
		    "usage: pr_bench_store fill DIR -n N [--history] | query DIR [-s SAMPLES] "
		    "[-w HOURS]\n");
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		const char *opt = argv[i], *val;

		if (strcmp(opt, "--history") == 0) {
			history = 1;
			continue;
		}
		if (i + 1 == argc) {
			return 2; /* every other option takes a value */
		}
		val = argv[++i];
		if (strcmp(opt, "-n") == 0) {
			n = strtol(val, NULL, 10);
		} else if (strcmp(opt, "-s") == 0) {
			samples = strtol(val, NULL, 10);
		} else if (strcmp(opt, "-w") == 0) {
			hours = strtol(val, NULL, 10);
		} else {
			return 2;
		}
	}
	if (n <= 0 || samples <= 0 || hours <= 0) {
		return 2;
	}
	if (strcmp(argv[1], "fill") == 0) {
		return fill(argv[2], n, history);
	}
	if (strcmp(argv[1], "query") == 0) {
		return query(argv[2], samples, hours);
	}
	return 2;
}
