/* SPDX-License-Identifier: MIT */
/*
 * The raw-etcd baseline of the etcd group of tests/bench/run.sh (issue 15,
 * point 8): a loop of etcd transactions shaped like the one the etcd store
 * backend commits per command, through the same client (src/etcd.c, the
 * v3 JSON gateway over HTTP/1.1), so that the etcd agent's lock+unlock rate
 * divided by this one is the cost of partregd around its store.
 *
 *   pr_bench_etcd_raw --etcd URL[,URL...] [-n N] [-c C]
 *
 * Each transaction, of one source:
 *   compare  mod_revision(guard) == the revision this client last saw
 *            (0 before the source's first write), and
 *            create_revision(idem/<request>) == 0 (a request_id not seen)
 *   success  put guard (a counter), put the partition's record (~200
 *            bytes), put idem/<request> (~300 bytes: the reply kept for a
 *            retry), all at one revision
 *   failure  range guard: the revision to compare with next time
 * A failed compare means another writer moved the guard: the client tries
 * again with the guard's new revision (counted as a retry). If the guard
 * had not moved, the idempotency key existed, which this loop never makes
 * happen (a new key per command, under a prefix unique to the run): that
 * is an error, not a retry forever.
 *
 * Units: one transaction is one command (a lock or an unlock), so rate is
 * in commands/s, the unit of `pr_bench_rtt lockunlock`'s rate, which counts
 * replies (a lock and its unlock are two). The agent's rate is divided by
 * this one as it is, with no factor of 2.
 *
 * Clients: C threads, each with its own struct pr_etcd (a handle is used
 * by one thread at a time, etcd.h) and, when C > 1, its own guard key, as
 * C different sources would have: their compares never conflict, so this
 * is the rate of independent writers. An agent whose C commands in flight
 * all go to one source (pr_bench_rtt lockunlock's) has one guard for all
 * of them: it reaches this rate only by putting several commands in one
 * transaction, which is what the comparison measures.
 *
 * Prints one line in pr_bench_rtt's form (run.sh's rate_of reads it):
 *   "n=N c=C secs=… rate=… min=… p50=… p90=… p99=… max=… retries=… errors=…"
 * rate: transactions (= commands) per second; min … max: µs from a
 * command's first attempt to its commit. N is rounded up to a multiple of
 * C (every client makes as many). Each client reads its guard once before
 * the clock starts (untimed, as the agent would at start-up) and all start
 * together. The keys stay (the caller's etcd is a scratch one): per client
 * a guard and a record, and one idempotency key per command, under
 * partreg-bench/raw/<pid>-<µs>/; nothing else is written. Exits 1 after
 * printing if any call failed (errors > 0), with the reasons on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <partreg/time.h>
#include "etcd.h"
#include "samples.h"

#define CLIENTS_MAX  1024
#define RECORD_BYTES 200
#define REPLY_BYTES  300
#define RETRIES_MAX  1000 /* in a row, for one command */
#define REQUEST_MS   10000

struct client {
	const char *endpoints;
	const char *run; /* the run's key prefix */
	int id;
	long per_client;
	pthread_barrier_t *start;
	int64_t *lat; /* per_client samples, µs */
	long retries;
	int rc; /* 0, or the first error */
};

/* buf, holding len characters from snprintf into size bytes, padded with
 * spaces (JSON whitespace) to exactly size bytes, its NUL included: a value
 * of a fixed size. A truncated text stays truncated. */
static void
pad(char *buf, size_t size, int len)
{
	size_t used = len < 0 ? 0 : (size_t)len >= size ? size - 1 : (size_t)len;

	memset(buf + used, ' ', size - used);
}

/* Read the guard's mod_revision into *mod (0 when it does not exist). */
static int
read_guard(struct pr_etcd *e, const char *guard, int64_t *mod)
{
	struct pr_etcd_op op = { .type = PR_ETCD_RANGE, .key = guard, .key_len = strlen(guard) };
	struct pr_etcd_res res;
	int rc = pr__etcd_do(e, &op, &res);

	if (rc == 0) {
		*mod = res.n_kvs == 1 ? res.kvs[0].mod_revision : 0;
	}
	pr__etcd_res_release(&res);
	return rc;
}

/* Command k of client c: one committed transaction, retried while the
 * guard moved under it. *mod: the guard's revision last seen, updated. */
static int
command(struct pr_etcd *e, struct client *c, long k, const char *guard, const char *record,
    int64_t *mod)
{
	char idem[160], gval[32], rval[RECORD_BYTES], ival[REPLY_BYTES];
	/* The agent keeps a digest of its request_id: 64 hex digits. */
	uint64_t h = ((uint64_t)c->id << 40 | (uint64_t)k) * UINT64_C(0x9e3779b97f4a7c15);

	snprintf(idem, sizeof idem,
	    "%s/s%d/idem/%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, c->run, c->id, h,
	    ~h, h ^ 0x5555, (uint64_t)k);
	snprintf(gval, sizeof gval, "%ld", k + 1);
	pad(rval, sizeof rval,
	    snprintf(rval, sizeof rval,
	        "{\"source\":\"raw-s%d\",\"provider\":\"p\",\"start\":\"2001-01-01T00:00:00Z\","
	        "\"end\":\"2001-01-02T00:00:00Z\",\"state\":\"%s\",\"fence\":%ld,\"version\":%ld}",
	        c->id, k & 1 ? "ready" : "locked", k / 2 + 1, k + 1));
	pad(ival, sizeof ival,
	    snprintf(ival, sizeof ival,
	        "{\"command\":\"partition/%s\",\"body\":\"%016" PRIx64 "\",\"reply\":{\"ok\":true,"
	        "\"result\":{\"source\":\"raw-s%d\",\"provider\":\"p\",\"state\":\"%s\","
	        "\"fence\":%ld,\"version\":%ld,\"seq\":%ld}}}",
	        k & 1 ? "unlock" : "lock", h, c->id, k & 1 ? "ready" : "locked", k / 2 + 1, k + 1,
	        k + 1));

	for (int attempt = 0; attempt <= RETRIES_MAX; attempt++) {
		struct pr_etcd_cmp cmp[2] = {
			{ .key = guard,
			    .key_len = strlen(guard),
			    .target = PR_ETCD_MOD,
			    .result = PR_ETCD_EQUAL,
			    .number = *mod },
			{ .key = idem,
			    .key_len = strlen(idem),
			    .target = PR_ETCD_CREATE,
			    .result = PR_ETCD_EQUAL,
			    .number = 0 },
		};
		struct pr_etcd_op put[3] = {
			{ .type = PR_ETCD_PUT,
			    .key = guard,
			    .key_len = strlen(guard),
			    .value = gval,
			    .value_len = strlen(gval) },
			{ .type = PR_ETCD_PUT,
			    .key = record,
			    .key_len = strlen(record),
			    .value = rval,
			    .value_len = sizeof rval },
			{ .type = PR_ETCD_PUT,
			    .key = idem,
			    .key_len = strlen(idem),
			    .value = ival,
			    .value_len = sizeof ival },
		};
		struct pr_etcd_op reread
		    = { .type = PR_ETCD_RANGE, .key = guard, .key_len = strlen(guard) };
		struct pr_etcd_txn txn = { cmp, 2, put, 3, &reread, 1 };
		struct pr_etcd_txn_res res;
		int64_t seen;
		int rc = pr__etcd_txn(e, &txn, &res);

		if (rc != 0) {
			fprintf(stderr, "pr_bench_etcd_raw: client %d, txn %ld: %s\n", c->id, k,
			    pr__etcd_strerror(rc));
			return rc;
		}
		if (res.succeeded) {
			/* Every put of a txn has the txn's revision. */
			*mod = res.revision;
			pr__etcd_txn_res_release(&res);
			return 0;
		}
		seen = res.n_res == 1 && res.res[0].n_kvs == 1 ? res.res[0].kvs[0].mod_revision : 0;
		pr__etcd_txn_res_release(&res);
		if (seen == *mod) {
			fprintf(stderr,
			    "pr_bench_etcd_raw: client %d, txn %ld: the guard did not move, so %s "
			    "existed\n",
			    c->id, k, idem);
			return -EEXIST;
		}
		*mod = seen;
		c->retries++;
	}
	fprintf(stderr, "pr_bench_etcd_raw: client %d, txn %ld: %d retries in a row\n", c->id, k,
	    RETRIES_MAX);
	return -EAGAIN;
}

static void *
client_run(void *arg)
{
	struct client *c = arg;
	struct pr_etcd_opts o = { .endpoints = c->endpoints, .request_timeout_ms = REQUEST_MS };
	struct pr_etcd *e = NULL;
	char guard[128], record[160];
	int64_t mod = 0;

	snprintf(guard, sizeof guard, "%s/s%d/guard", c->run, c->id);
	snprintf(record, sizeof record, "%s/s%d/partitions/p/2001-01-01T00:00:00Z", c->run, c->id);
	if ((c->rc = pr__etcd_open(&o, &e)) != 0 || (c->rc = read_guard(e, guard, &mod)) != 0) {
		fprintf(stderr, "pr_bench_etcd_raw: client %d: %s at %s\n", c->id,
		    pr__etcd_strerror(c->rc), c->endpoints);
	}
	/* Everyone waits here, failed or not, so that the barrier completes. */
	pthread_barrier_wait(c->start);
	for (long k = 0; k < c->per_client && c->rc == 0; k++) {
		int64_t t0 = pr_time_now();

		c->rc = command(e, c, k, guard, record, &mod);
		c->lat[k] = pr_time_now() - t0;
	}
	pr__etcd_close(e);
	return NULL;
}

static int
usage(void)
{
	fprintf(stderr, "usage: pr_bench_etcd_raw --etcd URL[,URL...] [-n N] [-c C]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *endpoints = NULL;
	struct client *cl;
	pthread_t *th;
	pthread_barrier_t start;
	int64_t *lat, t0, t1;
	long n = 1000, per_client, retries = 0, errors = 0;
	int c = 1, started = 0;
	char run[64];
	double secs;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--etcd") == 0) {
			endpoints = argv[i + 1];
		} else if (strcmp(argv[i], "-n") == 0) {
			n = strtol(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "-c") == 0) {
			c = (int)strtol(argv[i + 1], NULL, 10);
		} else {
			return usage();
		}
	}
	if (argc % 2 != 1 || endpoints == NULL || n <= 0 || c <= 0 || c > CLIENTS_MAX) {
		return usage();
	}
	per_client = (n + c - 1) / c;
	n = per_client * c;
	snprintf(run, sizeof run, "partreg-bench/raw/%ld-%" PRId64, (long)getpid(), pr_time_now());
	cl = calloc((size_t)c, sizeof *cl);
	th = calloc((size_t)c, sizeof *th);
	lat = calloc((size_t)n, sizeof *lat);
	if (cl == NULL || th == NULL || lat == NULL
	    || pthread_barrier_init(&start, NULL, (unsigned)c + 1) != 0) {
		fprintf(stderr, "pr_bench_etcd_raw: out of memory\n");
		return 1;
	}
	for (int i = 0; i < c; i++) {
		cl[i] = (struct client) { .endpoints = endpoints,
			.run = run,
			.id = i,
			.per_client = per_client,
			.start = &start,
			.lat = lat + (size_t)i * (size_t)per_client };
		if (pthread_create(&th[i], NULL, client_run, &cl[i]) != 0) {
			fprintf(stderr, "pr_bench_etcd_raw: cannot start client %d\n", i);
			return 1; /* the started ones wait at the barrier: just go */
		}
		started++;
	}
	pthread_barrier_wait(&start);
	t0 = pr_time_now();
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		retries += cl[i].retries;
		errors += cl[i].rc != 0;
	}
	t1 = pr_time_now();
	pthread_barrier_destroy(&start);
	secs = (double)(t1 - t0) / 1e6;
	if (errors == 0) {
		pr_bench_samples(lat, n, c, secs);
		printf(" retries=%ld errors=%ld\n", retries, errors);
	} else {
		/* A failed client's samples stop where it failed: no percentiles. */
		printf("n=%ld c=%d secs=%.3f rate=0 retries=%ld errors=%ld\n", n, c, secs, retries,
		    errors);
	}
	free(lat);
	free(th);
	free(cl);
	return errors == 0 ? 0 : 1;
}
