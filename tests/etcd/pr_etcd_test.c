/* SPDX-License-Identifier: MIT */
/*
 * pr_etcd_test ENDPOINTS CHECK [args]: one check of the etcd client
 * (src/etcd.h) against real etcd members, run by
 * tests/integration/test_etcd_client.sh, which starts and kills them.
 * Prints "ok - ..." lines with timings; on a failure "FAIL: ..." and exits
 * 1. Keys are under a prefix of the check's own, so checks can share a
 * cluster.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "log.h"

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "FAIL (line %d): ", __LINE__);                                     \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(1);                                                                           \
	} while (0)
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			FAIL(__VA_ARGS__);                                                         \
		}                                                                                  \
	} while (0)
#define OK(rc, what)                                                                               \
	do {                                                                                       \
		int rc_ = (rc);                                                                    \
		CHECK(rc_ == 0, "%s: %s (%d)", what, pr__etcd_strerror(rc_), rc_);                 \
	} while (0)

static const char *endpoints;
static unsigned request_ms = 2000;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static struct pr_etcd *
open_with(const char *eps, const char *user, const char *password)
{
	struct pr_etcd_opts o = { .endpoints = eps,
		.user = user,
		.password = password,
		.request_timeout_ms = request_ms };
	struct pr_etcd *e;

	OK(pr__etcd_open(&o, &e), "open");
	return e;
}

static struct pr_etcd *
open_e(void)
{
	return open_with(endpoints, NULL, NULL);
}

static int
put(struct pr_etcd *e, const char *key, const char *value, int64_t lease, int64_t *rev)
{
	struct pr_etcd_op op = { .type = PR_ETCD_PUT,
		.key = key,
		.key_len = strlen(key),
		.value = value,
		.value_len = strlen(value),
		.lease = lease };
	struct pr_etcd_res res;
	int rc = pr__etcd_do(e, &op, &res);

	if (rc == 0 && rev != NULL) {
		*rev = res.revision;
	}
	pr__etcd_res_release(&res);
	return rc;
}

static int
del(struct pr_etcd *e, const char *key, int64_t *rev)
{
	struct pr_etcd_op op = { .type = PR_ETCD_DELETE, .key = key, .key_len = strlen(key) };
	struct pr_etcd_res res;
	int rc = pr__etcd_do(e, &op, &res);

	if (rc == 0 && rev != NULL) {
		*rev = res.revision;
	}
	pr__etcd_res_release(&res);
	return rc;
}

/* The key's kv (res owns it; kv NULL when absent). */
static int
get(struct pr_etcd *e, const char *key, int64_t revision, struct pr_etcd_res *res)
{
	struct pr_etcd_op op
	    = { .type = PR_ETCD_RANGE, .key = key, .key_len = strlen(key), .revision = revision };

	return pr__etcd_do(e, &op, res);
}

static int
value_is(const struct pr_etcd_kv *kv, const char *v)
{
	return kv->value_len == strlen(v) && memcmp(kv->value, v, kv->value_len) == 0;
}

/* ---- basic: range, put, delete, revisions, txn ---- */

static void
check_basic(void)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_res res;
	int64_t r1, r2, prev = 0;
	uint8_t end[16];
	size_t end_len;

	OK(put(e, "b/k1", "v1", 0, &r1), "put");
	OK(put(e, "b/k1", "v2", 0, &r2), "put again");
	CHECK(r2 > r1, "revision %" PRId64 " after %" PRId64, r2, r1);
	OK(get(e, "b/k1", 0, &res), "range");
	CHECK(res.n_kvs == 1 && value_is(&res.kvs[0], "v2") && res.kvs[0].version == 2
	        && res.kvs[0].create_revision == r1 && res.kvs[0].mod_revision == r2
	        && res.count == 1 && res.revision >= r2,
	    "range b/k1: n %zu version %" PRId64, res.n_kvs, res.n_kvs ? res.kvs[0].version : 0);
	pr__etcd_res_release(&res);
	OK(get(e, "b/k1", r1, &res), "range at r1");
	CHECK(res.n_kvs == 1 && value_is(&res.kvs[0], "v1"), "b/k1 at r1 is not v1");
	pr__etcd_res_release(&res);
	OK(get(e, "b/absent", 0, &res), "range of an absent key");
	CHECK(res.n_kvs == 0 && res.count == 0, "absent key found");
	pr__etcd_res_release(&res);
	printf("ok - put, range, range at a past revision\n");

	/* Binary keys and values: NUL and 0xff bytes. */
	{
		static const uint8_t bk[] = { 'b', '/', 0, 0xff, 1 }, bv[] = { 0, 0, 0xff, 'x', 0 };
		struct pr_etcd_op op = { .type = PR_ETCD_PUT,
			.key = bk,
			.key_len = sizeof bk,
			.value = bv,
			.value_len = sizeof bv };

		OK(pr__etcd_do(e, &op, &res), "binary put");
		pr__etcd_res_release(&res);
		op.type = PR_ETCD_RANGE;
		OK(pr__etcd_do(e, &op, &res), "binary range");
		CHECK(res.n_kvs == 1 && res.kvs[0].key_len == sizeof bk
		        && memcmp(res.kvs[0].key, bk, sizeof bk) == 0
		        && res.kvs[0].value_len == sizeof bv
		        && memcmp(res.kvs[0].value, bv, sizeof bv) == 0,
		    "binary key/value not returned intact");
		pr__etcd_res_release(&res);
		printf("ok - binary keys and values\n");
	}

	/* Prefix ranges, limit, keys_only, count_only. "b/p0" is just past
	 * the prefix "b/p/" ('0' follows '/'). */
	OK(put(e, "b/p/a", "1", 0, NULL), "put");
	OK(put(e, "b/p/b", "2", 0, NULL), "put");
	OK(put(e, "b/p/c", "3", 0, NULL), "put");
	OK(put(e, "b/p0", "x", 0, NULL), "put");
	pr__etcd_prefix_end("b/p/", 4, end, &end_len);
	{
		struct pr_etcd_op op = { .type = PR_ETCD_RANGE,
			.key = "b/p/",
			.key_len = 4,
			.range_end = end,
			.range_end_len = end_len };

		OK(pr__etcd_do(e, &op, &res), "prefix range");
		CHECK(res.n_kvs == 3 && res.count == 3 && !res.more
		        && memcmp(res.kvs[0].key, "b/p/a", 5) == 0
		        && memcmp(res.kvs[2].key, "b/p/c", 5) == 0 && value_is(&res.kvs[1], "2"),
		    "prefix range: %zu kvs", res.n_kvs);
		pr__etcd_res_release(&res);
		op.limit = 2;
		OK(pr__etcd_do(e, &op, &res), "limited range");
		CHECK(res.n_kvs == 2 && res.count == 3 && res.more, "limit 2: %zu kvs, more %d",
		    res.n_kvs, res.more);
		pr__etcd_res_release(&res);
		op.limit = 0;
		op.keys_only = 1;
		OK(pr__etcd_do(e, &op, &res), "keys_only");
		CHECK(res.n_kvs == 3 && res.kvs[0].value_len == 0 && res.kvs[0].key_len == 5,
		    "keys_only");
		pr__etcd_res_release(&res);
		op.keys_only = 0;
		op.count_only = 1;
		OK(pr__etcd_do(e, &op, &res), "count_only");
		CHECK(res.n_kvs == 0 && res.count == 3, "count_only: %zu kvs count %" PRId64,
		    res.n_kvs, res.count);
		pr__etcd_res_release(&res);
		printf("ok - prefix range, limit/more, keys_only, count_only\n");

		op.type = PR_ETCD_DELETE;
		op.count_only = 0;
		op.prev_kv = 1;
		OK(pr__etcd_do(e, &op, &res), "delete prefix");
		CHECK(res.count == 3 && res.n_kvs == 3 && value_is(&res.kvs[2], "3"),
		    "delete prefix: deleted %" PRId64 ", %zu prev", res.count, res.n_kvs);
		pr__etcd_res_release(&res);
		op.type = PR_ETCD_RANGE;
		op.prev_kv = 0;
		OK(pr__etcd_do(e, &op, &res), "range after delete");
		CHECK(res.n_kvs == 0, "prefix not deleted");
		pr__etcd_res_release(&res);
		OK(get(e, "b/p0", 0, &res), "range");
		CHECK(res.n_kvs == 1, "b/p0 (outside the prefix) was deleted");
		pr__etcd_res_release(&res);
		printf("ok - delete range with prev_kv\n");
	}

	/* Revisions strictly increase, write after write. */
	for (int i = 0; i < 100; i++) {
		int64_t rev;

		OK(i % 3 == 2 ? del(e, "b/seq", &rev) : put(e, "b/seq", "x", 0, &rev), "write");
		CHECK(rev > prev, "revision %" PRId64 " after %" PRId64, rev, prev);
		prev = rev;
	}
	printf("ok - 100 writes, revisions strictly increasing\n");

	/* A txn: the success branch with one op of each kind. */
	{
		struct pr_etcd_cmp cmp = { .key = "b/k1",
			.key_len = 4,
			.target = PR_ETCD_VERSION,
			.result = PR_ETCD_EQUAL,
			.number = 2 };
		struct pr_etcd_op ops[] = {
			{ .type = PR_ETCD_PUT,
			    .key = "b/t",
			    .key_len = 3,
			    .value = "tv",
			    .value_len = 2 },
			{ .type = PR_ETCD_RANGE, .key = "b/k1", .key_len = 4 },
			{ .type = PR_ETCD_DELETE, .key = "b/p0", .key_len = 4 },
		};
		struct pr_etcd_op fops[]
		    = { { .type = PR_ETCD_RANGE, .key = "b/t", .key_len = 3 } };
		struct pr_etcd_txn txn = { &cmp, 1, ops, 3, fops, 1 };
		struct pr_etcd_txn_res tr;

		OK(pr__etcd_txn(e, &txn, &tr), "txn");
		CHECK(tr.succeeded && tr.n_res == 3 && tr.revision > prev
		        && tr.res[0].type == PR_ETCD_PUT && tr.res[1].type == PR_ETCD_RANGE
		        && tr.res[1].n_kvs == 1 && value_is(&tr.res[1].kvs[0], "v2")
		        && tr.res[2].type == PR_ETCD_DELETE && tr.res[2].count == 1,
		    "txn success branch");
		pr__etcd_txn_res_release(&tr);
		/* Now version 2 still holds but VALUE "nope" does not. */
		cmp.target = PR_ETCD_VALUE;
		cmp.value = "nope";
		cmp.value_len = 4;
		OK(pr__etcd_txn(e, &txn, &tr), "txn");
		CHECK(!tr.succeeded && tr.n_res == 1 && tr.res[0].type == PR_ETCD_RANGE
		        && tr.res[0].n_kvs == 1 && value_is(&tr.res[0].kvs[0], "tv"),
		    "txn failure branch");
		pr__etcd_txn_res_release(&tr);
		printf("ok - txn: success branch (put, range, delete), failure branch\n");

		/* Errors etcd gives, mapped. */
		ops[1] = ops[0];
		txn.n_success = 2;
		cmp.result = PR_ETCD_NOT_EQUAL;
		CHECK(pr__etcd_txn(e, &txn, &tr) == PR__ETCD_EREFUSED,
		    "a txn putting one key twice was not PR__ETCD_EREFUSED");
	}
	CHECK(get(e, "b/k1", prev + 1000000, &res) == PR__ETCD_EFUTUREREV,
	    "a future revision was not PR__ETCD_EFUTUREREV");
	CHECK(put(e, "b/l", "x", 0x1234567, NULL) == PR__ETCD_ENOLEASE,
	    "a put with an unknown lease was not PR__ETCD_ENOLEASE");
	CHECK(put(e, "", "x", 0, NULL) == -EINVAL, "an empty key was not -EINVAL");
	printf("ok - refused requests: duplicate key in a txn, future revision, unknown lease, "
	       "empty key\n");
	pr__etcd_close(e);
}

/* ---- cas: compare-and-swap under contention ---- */

struct contender {
	const char *eps;
	const char *key;
	const char *me;
	int64_t mod; /* the revision both read */
	pthread_barrier_t *bar;
	int succeeded;
	int rc;
	/* counter */
	int incs, attempts;
	int64_t last_rev;
};

static int
cas_put(struct pr_etcd *e, const char *key, int64_t mod, const char *value, int *succeeded,
    int64_t *rev)
{
	/* mod 0: the key must not exist (CREATE == 0). */
	struct pr_etcd_cmp cmp = { .key = key,
		.key_len = strlen(key),
		.target = mod == 0 ? PR_ETCD_CREATE : PR_ETCD_MOD,
		.result = PR_ETCD_EQUAL,
		.number = mod };
	struct pr_etcd_op op = { .type = PR_ETCD_PUT,
		.key = key,
		.key_len = strlen(key),
		.value = value,
		.value_len = strlen(value) };
	struct pr_etcd_txn txn = { &cmp, 1, &op, 1, NULL, 0 };
	struct pr_etcd_txn_res tr;
	int rc = pr__etcd_txn(e, &txn, &tr);

	if (rc == 0) {
		*succeeded = tr.succeeded;
		if (rev != NULL) {
			*rev = tr.revision;
		}
	}
	pr__etcd_txn_res_release(&tr);
	return rc;
}

static void *
contend(void *arg)
{
	struct contender *c = arg;
	struct pr_etcd *e = open_with(c->eps, NULL, NULL);

	pthread_barrier_wait(c->bar);
	c->rc = cas_put(e, c->key, c->mod, c->me, &c->succeeded, NULL);
	pr__etcd_close(e);
	return NULL;
}

/* Increment the counter at key incs times: read, CAS on mod_revision,
 * again on failure. Each success's revision must exceed the last. */
static void *
count(void *arg)
{
	struct contender *c = arg;
	struct pr_etcd *e = open_with(c->eps, NULL, NULL);

	pthread_barrier_wait(c->bar);
	for (int done = 0; done < c->incs && c->rc == 0;) {
		struct pr_etcd_res res;
		char v[32];
		int64_t mod = 0, n = 0, rev = 0;
		int ok = 0;

		if ((c->rc = get(e, c->key, 0, &res)) != 0) {
			break;
		}
		if (res.n_kvs == 1) {
			mod = res.kvs[0].mod_revision;
			n = strtoll((const char *)res.kvs[0].value, NULL, 10);
		}
		pr__etcd_res_release(&res);
		snprintf(v, sizeof v, "%" PRId64, n + 1);
		c->attempts++;
		if ((c->rc = cas_put(e, c->key, mod, v, &ok, &rev)) == 0 && ok) {
			if (rev <= c->last_rev) {
				c->rc = -EPROTO;
			}
			c->last_rev = rev;
			done++;
		}
	}
	pr__etcd_close(e);
	return NULL;
}

/* The endpoint list rotated by k, so contenders start at different
 * members of a cluster. Heap; caller frees. */
static char *
rotated(const char *eps, int k)
{
	char *copy = strdup(eps), *parts[16], *save = NULL, *out;
	size_t n = 0, len = strlen(eps) + 2;

	CHECK(copy != NULL && (out = calloc(1, len)) != NULL, "out of memory");
	for (char *t = strtok_r(copy, ",", &save); t != NULL && n < 16;
	     t = strtok_r(NULL, ",", &save)) {
		parts[n++] = t;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			strcat(out, ",");
		}
		strcat(out, parts[(i + (size_t)k) % n]);
	}
	free(copy);
	return out;
}

static void
check_cas(void)
{
	struct pr_etcd *e = open_e();
	char *eps[4];
	pthread_barrier_t bar;
	int wins[2] = { 0, 0 }, rounds = 30;
	int64_t mod = 0, t0;

	for (int i = 0; i < 4; i++) {
		eps[i] = rotated(endpoints, i);
	}
	del(e, "c/key", NULL);
	del(e, "c/counter", NULL);
	pthread_barrier_init(&bar, NULL, 2);
	for (int r = 0; r < rounds; r++) {
		struct contender c[2] = { { eps[0], "c/key", "A", mod, &bar, 0, 0, 0, 0, 0 },
			{ eps[1], "c/key", "B", mod, &bar, 0, 0, 0, 0, 0 } };
		pthread_t th[2];
		struct pr_etcd_res res;

		for (int i = 0; i < 2; i++) {
			pthread_create(&th[i], NULL, contend, &c[i]);
		}
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			OK(c[i].rc, "contender's txn");
		}
		CHECK(c[0].succeeded + c[1].succeeded == 1,
		    "round %d: %d contenders succeeded on mod_revision %" PRId64, r,
		    c[0].succeeded + c[1].succeeded, mod);
		wins[c[1].succeeded]++;
		OK(get(e, "c/key", 0, &res), "range");
		CHECK(res.n_kvs == 1 && value_is(&res.kvs[0], c[0].succeeded ? "A" : "B"),
		    "round %d: the value is not the winner's", r);
		mod = res.kvs[0].mod_revision;
		pr__etcd_res_release(&res);
	}
	pthread_barrier_destroy(&bar);
	printf("ok - compare-and-swap: %d rounds of two contenders, exactly one won each (A %d, "
	       "B %d)\n",
	    rounds, wins[0], wins[1]);

	/* Four counters, 25 increments each: no increment lost or doubled. */
	{
		struct contender c[4];
		pthread_t th[4];
		struct pr_etcd_res res;
		int attempts = 0;

		pthread_barrier_init(&bar, NULL, 4);
		t0 = now_ms();
		for (int i = 0; i < 4; i++) {
			c[i] = (struct contender) {
				.eps = eps[i], .key = "c/counter", .bar = &bar, .incs = 25
			};
			pthread_create(&th[i], NULL, count, &c[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			OK(c[i].rc, "counter");
			attempts += c[i].attempts;
		}
		pthread_barrier_destroy(&bar);
		OK(get(e, "c/counter", 0, &res), "range");
		CHECK(res.n_kvs == 1 && value_is(&res.kvs[0], "100"), "counter is %s, not 100",
		    res.n_kvs ? (const char *)res.kvs[0].value : "absent");
		pr__etcd_res_release(&res);
		printf("ok - CAS counter: 4 clients x 25 increments = 100 (%d attempts, %" PRId64
		       " ms)\n",
		    attempts, now_ms() - t0);
	}
	for (int i = 0; i < 4; i++) {
		free(eps[i]);
	}
	pr__etcd_close(e);
}

/* ---- lease ---- */

static int
exists(struct pr_etcd *e, const char *key)
{
	struct pr_etcd_res res;
	int n;

	OK(get(e, key, 0, &res), "range");
	n = (int)res.n_kvs;
	pr__etcd_res_release(&res);
	return n;
}

static void
check_lease(void)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_res res;
	int64_t id, granted, ttl, t0, gone;

	CHECK(pr__etcd_lease_grant(e, 0, &id, NULL) == -EINVAL, "ttl 0 was not -EINVAL");
	OK(pr__etcd_lease_grant(e, 2, &id, &granted), "grant");
	CHECK(id != 0 && granted == 2, "granted %" PRId64, granted);
	OK(put(e, "l/k", "v", id, NULL), "put with lease");
	OK(get(e, "l/k", 0, &res), "range");
	CHECK(res.n_kvs == 1 && res.kvs[0].lease == id, "the key's lease is not the one granted");
	pr__etcd_res_release(&res);
	/* Kept alive for 4 s, twice its TTL: still there. */
	t0 = now_ms();
	while (now_ms() - t0 < 4000) {
		OK(pr__etcd_lease_keepalive(e, id, &ttl), "keepalive");
		CHECK(ttl >= 1 && ttl <= 2, "keepalive: ttl %" PRId64, ttl);
		sleep_ms(500);
	}
	CHECK(exists(e, "l/k"), "the key went while its lease was kept alive");
	printf("ok - lease: granted (TTL 2), kept alive for 4 s, key kept\n");
	/* Left alone: gone within its TTL (plus etcd's expiry check). */
	OK(pr__etcd_lease_keepalive(e, id, &ttl), "keepalive");
	t0 = now_ms();
	while (exists(e, "l/k") && now_ms() - t0 < 6000) {
		sleep_ms(100);
	}
	gone = now_ms() - t0;
	CHECK(!exists(e, "l/k"), "the key outlived its lease by 6 s");
	CHECK(gone >= 1000, "the key went %" PRId64 " ms after a keepalive of a TTL 2 lease", gone);
	OK(pr__etcd_lease_keepalive(e, id, &ttl), "keepalive of an expired lease");
	CHECK(ttl == 0, "an expired lease's keepalive gave ttl %" PRId64, ttl);
	CHECK(pr__etcd_lease_revoke(e, id) == PR__ETCD_ENOLEASE,
	    "revoking an expired lease was not PR__ETCD_ENOLEASE");
	printf("ok - lease: expired %" PRId64 " ms after the last keepalive, its key deleted; "
	       "keepalive then gives 0, revoke PR__ETCD_ENOLEASE\n",
	    gone);
	OK(pr__etcd_lease_grant(e, 60, &id, NULL), "grant");
	OK(put(e, "l/k2", "v", id, NULL), "put with lease");
	OK(pr__etcd_lease_revoke(e, id), "revoke");
	CHECK(!exists(e, "l/k2"), "revoke left the key");
	printf("ok - lease: revoke deletes its keys at once\n");
	pr__etcd_close(e);
}

/* ---- watch ---- */

struct seen {
	pthread_mutex_t mu;
	int n, progress, finals;
	enum pr_etcd_event_type type[256];
	int64_t rev[256];
	char key[256][16];
	char value[256][16];
	int has_prev[256];
	int64_t final_rev;
	int final_err;
	enum pr_etcd_event_type final_type;
	int64_t progress_rev;
};

static void
on_event(void *arg, const struct pr_etcd_event *ev)
{
	struct seen *s = arg;

	pthread_mutex_lock(&s->mu);
	if (ev->type == PR_ETCD_EV_PROGRESS) {
		s->progress++;
		s->progress_rev = ev->revision;
	} else if (ev->type == PR_ETCD_EV_COMPACTED || ev->type == PR_ETCD_EV_LOST) {
		s->finals++;
		s->final_type = ev->type;
		s->final_rev = ev->revision;
		s->final_err = ev->err;
	} else if (s->n < 256) {
		s->type[s->n] = ev->type;
		s->rev[s->n] = ev->revision;
		snprintf(s->key[s->n], 16, "%.*s", (int)ev->kv->key_len, (const char *)ev->kv->key);
		snprintf(s->value[s->n], 16, "%.*s", (int)ev->kv->value_len,
		    (const char *)ev->kv->value);
		s->has_prev[s->n] = ev->prev_kv != NULL;
		s->n++;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Wait until cond (over s, under its lock) holds, at most ms. */
#define WAIT_FOR(s, cond, ms)                                                                      \
	do {                                                                                       \
		int64_t until_ = now_ms() + (ms);                                                  \
		for (;;) {                                                                         \
			int done_;                                                                 \
			pthread_mutex_lock(&(s)->mu);                                              \
			done_ = (cond);                                                            \
			pthread_mutex_unlock(&(s)->mu);                                            \
			if (done_ || now_ms() > until_) {                                          \
				break;                                                             \
			}                                                                          \
			sleep_ms(20);                                                              \
		}                                                                                  \
	} while (0)

static struct seen *
seen_new(void)
{
	struct seen *s = calloc(1, sizeof *s);

	CHECK(s != NULL, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

static void
seen_free(struct seen *s)
{
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void
check_watch(int progress)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_watch *w;
	struct seen *s = seen_new();
	uint8_t end[8];
	size_t end_len;
	struct pr_etcd_watch_opts wo
	    = { .key = "w/", .key_len = 2, .prev_kv = 1, .progress_notify = progress };
	struct {
		int del;
		char key[16];
		char value[16];
		int64_t rev;
	} want[40];
	int64_t first, t0;
	int present[7] = { 0 }, expected = 0; /* keys w/0..w/6; events to come */

	pr__etcd_prefix_end("w/", 2, end, &end_len);
	wo.range_end = end;
	wo.range_end_len = end_len;
	OK(put(e, "w0", "before", 0, &first), "put");
	/* 20 changes before the watch, 20 after; a key outside the prefix
	 * changes in between and must not be seen. */
	for (int i = 0; i < 40; i++) {
		if (i == 20) {
			wo.start_revision = first + 1;
			t0 = now_ms();
			OK(pr__etcd_watch_open(e, &wo, on_event, s, &w), "watch_open");
			printf("ok - watch created from revision %" PRId64 " in %" PRId64 " ms\n",
			    first + 1, now_ms() - t0);
		}
		snprintf(want[i].key, 16, "w/%d", i % 7);
		snprintf(want[i].value, 16, "v%d", i);
		want[i].del = i % 5 == 4;
		/* (Deleting an absent key is no change, hence no event.) */
		expected += !want[i].del || present[i % 7];
		present[i % 7] = !want[i].del;
		OK(want[i].del ? del(e, want[i].key, &want[i].rev)
		               : put(e, want[i].key, want[i].value, 0, &want[i].rev),
		    "write");
		if (want[i].del) {
			want[i].value[0] = '\0';
		}
		OK(put(e, "wx", "outside", 0, NULL), "put outside");
	}
	WAIT_FOR(s, s->n >= expected, 5000);
	sleep_ms(200); /* for any event that should not come */
	pthread_mutex_lock(&s->mu);
	/* Deleting an absent key is no change, hence no event: count those
	 * out of want. */
	{
		int j = 0;

		for (int i = 0; i < 40; i++) {
			if (want[i].del && (j >= s->n || s->rev[j] != want[i].rev)) {
				continue; /* deleted nothing */
			}
			CHECK(j < s->n, "only %d events for %d changes", s->n, i + 1);
			CHECK(s->type[j] == (want[i].del ? PR_ETCD_EV_DELETE : PR_ETCD_EV_PUT)
			        && s->rev[j] == want[i].rev && strcmp(s->key[j], want[i].key) == 0
			        && strcmp(s->value[j], want[i].value) == 0,
			    "event %d: %s %s=%s at %" PRId64 ", expected %s %s=%s at %" PRId64, j,
			    s->type[j] == PR_ETCD_EV_DELETE ? "DELETE" : "PUT", s->key[j],
			    s->value[j], s->rev[j], want[i].del ? "DELETE" : "PUT", want[i].key,
			    want[i].value, want[i].rev);
			CHECK(j == 0 || s->rev[j] > s->rev[j - 1], "revisions not increasing");
			CHECK(!want[i].del || s->has_prev[j], "a DELETE without its prev_kv");
			j++;
		}
		CHECK(j == s->n && j == expected, "%d events, %d expected", s->n, expected);
		CHECK(s->finals == 0, "a final event on a healthy watch");
		printf("ok - watch from a past revision: all %d changes (20 before it was created, "
		       "20 after), in order, with revisions, values and prev_kv; none outside its "
		       "range\n",
		    j);
	}
	pthread_mutex_unlock(&s->mu);
	if (progress) {
		/* etcd runs with a 1 s progress interval here. */
		WAIT_FOR(s, s->progress > 0, 4000);
		CHECK(s->progress > 0, "no progress notification in 4 s");
		printf("ok - progress notification (revision %" PRId64 ")\n", s->progress_rev);
	}
	t0 = now_ms();
	pr__etcd_watch_close(w);
	CHECK(now_ms() - t0 < 200, "watch_close took %" PRId64 " ms", now_ms() - t0);
	/* Idle watches too (nothing to read: the thread is in its poll). */
	for (int i = 0; i < 5; i++) {
		int64_t took;

		wo.start_revision = 0;
		wo.progress_notify = 0;
		OK(pr__etcd_watch_open(e, &wo, on_event, s, &w), "watch_open");
		sleep_ms(50 + 60 * i);
		t0 = now_ms();
		pr__etcd_watch_close(w);
		took = now_ms() - t0;
		CHECK(took < 200, "closing an idle watch took %" PRId64 " ms", took);
	}
	printf("ok - watches closed from another thread, each in under 200 ms\n");
	seen_free(s);
	pr__etcd_close(e);
}

/* ---- compacted ---- */

static void
check_compacted(void)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_watch *w;
	struct pr_etcd_res res;
	struct seen *s = seen_new();
	struct pr_etcd_watch_opts wo = { .key = "k/a", .key_len = 3 };
	int64_t r1, r2;
	int rc;

	OK(put(e, "k/a", "1", 0, &r1), "put");
	OK(put(e, "k/a", "2", 0, NULL), "put");
	OK(put(e, "k/a", "3", 0, &r2), "put");
	OK(pr__etcd_compact(e, r2), "compact");
	CHECK((rc = get(e, "k/a", r1, &res)) == PR__ETCD_ECOMPACTED,
	    "a range at a compacted revision gave %d", rc);
	wo.start_revision = r1;
	OK(pr__etcd_watch_open(e, &wo, on_event, s, &w), "watch_open");
	WAIT_FOR(s, s->finals > 0, 3000);
	CHECK(s->finals == 1 && s->final_type == PR_ETCD_EV_COMPACTED && s->final_rev == r2
	        && s->n == 0,
	    "watch from a compacted revision: %d finals, type %d, revision %" PRId64
	    " (compacted at %" PRId64 "), %d events",
	    s->finals, (int)s->final_type, s->final_rev, r2, s->n);
	pr__etcd_watch_close(w);
	printf("ok - compaction: range at a compacted revision PR__ETCD_ECOMPACTED, a watch "
	       "from it a final COMPACTED event at %" PRId64 "\n",
	    r2);
	seen_free(s);
	pr__etcd_close(e);
}

/* ---- failover: the script kills the member in use ---- */

/* The endpoint list rotated so that the leader (want_leader) or a
 * follower comes first. Heap; caller frees. */
static char *
first_member(int want_leader)
{
	struct pr_etcd *e = open_e();
	char *copy = strdup(endpoints), *save = NULL;
	int i = 0, pick = -1;

	CHECK(copy != NULL, "out of memory");
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save), i++) {
		struct pr_etcd_status st;

		OK(pr__etcd_status(e, t, &st), "status");
		if (pick < 0 && (st.leader == st.member_id) == (want_leader != 0)) {
			pick = i;
		}
	}
	CHECK(pick >= 0, "no %s among %s", want_leader ? "leader" : "follower", endpoints);
	free(copy);
	pr__etcd_close(e);
	return rotated(endpoints, pick);
}

static void
check_failover(const char *mode)
{
	int leader = strcmp(mode, "leader") == 0;
	char *eps = first_member(leader);
	struct pr_etcd *e = open_with(eps, NULL, NULL);
	struct pr_etcd_watch *w;
	struct seen *s = seen_new();
	struct pr_etcd_watch_opts wo = { .key = "f/k", .key_len = 3 };
	struct pr_etcd_res res;
	char line[64], *before, value[16] = "";
	int64_t rev = 0, t0, took = 0;
	int rc = -1, failures = 0;

	OK(put(e, "f/k", "1", 0, &rev), "put");
	OK(pr__etcd_watch_open(e, &wo, on_event, s, &w), "watch_open");
	before = strdup(pr__etcd_endpoint(e));
	printf("using %s\n", before);
	fflush(stdout);
	CHECK(fgets(line, sizeof line, stdin) != NULL, "no go from the script");
	/* A follower killed: the next put goes to another member at once. The
	 * leader killed: until the others have elected one (about etcd's
	 * election timeout, 1 s), a put is refused (no leader) or times out
	 * (in doubt); each such failure within the request timeout. */
	t0 = now_ms();
	while (now_ms() - t0 < 10000) {
		int64_t t = now_ms();

		snprintf(value, sizeof value, "v%d", failures);
		rc = put(e, "f/k", value, 0, &rev);
		CHECK(now_ms() - t <= (int64_t)request_ms + 500, "a put took %" PRId64 " ms",
		    now_ms() - t);
		if (rc == 0 || !leader) {
			break;
		}
		CHECK(rc == PR__ETCD_EINDOUBT || rc == PR__ETCD_ENOLEADER || rc == -ETIMEDOUT,
		    "put while electing: %s", pr__etcd_strerror(rc));
		failures++;
	}
	took = now_ms() - t0;
	OK(rc, "put after the member in use was killed");
	CHECK(strcmp(before, pr__etcd_endpoint(e)) != 0, "still using %s", before);
	CHECK(leader || took < 1000, "the failover took %" PRId64 " ms", took);
	OK(get(e, "f/k", 0, &res), "range");
	CHECK(res.n_kvs == 1 && value_is(&res.kvs[0], value), "f/k is not %s", value);
	pr__etcd_res_release(&res);
	printf("ok - failover (%s killed): a put succeeded on %s %" PRId64
	       " ms after, %d failed before (no leader yet or in doubt)\n",
	    mode, pr__etcd_endpoint(e), took, failures);
	/* The watch was on the killed member: it reports the loss, and a new
	 * watch from the last revision it saw + 1 misses nothing. */
	WAIT_FOR(s, s->finals > 0, 3000);
	CHECK(s->finals == 1 && s->final_type == PR_ETCD_EV_LOST && s->final_err != 0,
	    "the watch on the killed member reported no loss");
	pr__etcd_watch_close(w);
	CHECK(s->n == 0 || s->rev[s->n - 1] < rev, "the watch saw the put after the kill");
	wo.start_revision = s->n > 0 ? s->rev[s->n - 1] + 1 : rev - 1;
	s->n = s->finals = 0;
	OK(pr__etcd_watch_open(e, &wo, on_event, s, &w), "watch_open again");
	WAIT_FOR(s, s->n > 0 && s->rev[s->n - 1] == rev, 3000);
	CHECK(s->n >= 1 && s->rev[s->n - 1] == rev && strcmp(s->value[s->n - 1], value) == 0,
	    "the resumed watch missed the put at %" PRId64, rev);
	pr__etcd_watch_close(w);
	printf("ok - the watch on the killed member reported LOST (%s); resumed on %s, it saw "
	       "the change made meanwhile\n",
	    pr__etcd_strerror(s->final_err), pr__etcd_endpoint(e));
	free(before);
	free(eps);
	seen_free(s);
	pr__etcd_close(e);
}

/* ---- every member down, or one hung ---- */

static void
check_down(const char *expect)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_watch *w = NULL;
	struct seen *s = seen_new();
	struct pr_etcd_watch_opts wo = { .key = "d/k", .key_len = 3 };
	struct pr_etcd_res res;
	int want = strcmp(expect, "hung") == 0 ? PR__ETCD_EINDOUBT : PR__ETCD_EUNAVAIL;
	int64_t t0, took, limit = (int64_t)request_ms + 500;
	int rc;

	t0 = now_ms();
	rc = put(e, "d/k", "x", 0, NULL);
	took = now_ms() - t0;
	CHECK(rc == want, "put: %s, expected %s", pr__etcd_strerror(rc), pr__etcd_strerror(want));
	CHECK(took <= limit, "put took %" PRId64 " ms", took);
	printf(
	    "ok - %s: put failed with %s in %" PRId64 " ms\n", expect, pr__etcd_strerror(rc), took);
	want = want == PR__ETCD_EINDOUBT ? -ETIMEDOUT : want;
	t0 = now_ms();
	rc = get(e, "d/k", 0, &res);
	took = now_ms() - t0;
	CHECK(rc == want, "range: %s, expected %s", pr__etcd_strerror(rc), pr__etcd_strerror(want));
	CHECK(took <= limit, "range took %" PRId64 " ms", took);
	printf("ok - %s: range failed with %s in %" PRId64 " ms\n", expect, pr__etcd_strerror(rc),
	    took);
	t0 = now_ms();
	rc = pr__etcd_watch_open(e, &wo, on_event, s, &w);
	took = now_ms() - t0;
	CHECK(rc != 0 && w == NULL, "watch_open succeeded");
	CHECK(took <= limit, "watch_open took %" PRId64 " ms", took);
	printf("ok - %s: watch_open failed with %s in %" PRId64 " ms\n", expect,
	    pr__etcd_strerror(rc), took);
	seen_free(s);
	pr__etcd_close(e);
}

/* ---- a minority: 2 of 3 members killed ---- */

static void
check_minority(void)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_res res;
	int64_t t0 = now_ms(), t, took = 0;
	int rc = 0, n = 0;

	/* The surviving member notices within its election timeout that it
	 * has no leader; until then a write may time out (in doubt). */
	while (now_ms() - t0 < 15000) {
		t = now_ms();
		rc = put(e, "m/k", "x", 0, NULL);
		took = now_ms() - t;
		CHECK(rc != 0, "a put succeeded in a minority");
		CHECK(took <= (int64_t)request_ms + 500, "a put took %" PRId64 " ms", took);
		if (rc == PR__ETCD_ENOLEADER) {
			break;
		}
		CHECK(rc == PR__ETCD_EINDOUBT || rc == -ETIMEDOUT || rc == PR__ETCD_EUNAVAIL,
		    "put in a minority: %s", pr__etcd_strerror(rc));
		n++;
		sleep_ms(100);
	}
	CHECK(rc == PR__ETCD_ENOLEADER, "no PR__ETCD_ENOLEADER within 15 s: %s",
	    pr__etcd_strerror(rc));
	printf("ok - minority: writes refused with PR__ETCD_ENOLEADER %" PRId64
	       " ms after the start (%d earlier attempts timed out or found no member)\n",
	    now_ms() - t0, n);
	for (int i = 0; i < 5; i++) {
		t = now_ms();
		rc = put(e, "m/k", "x", 0, NULL);
		took = now_ms() - t;
		CHECK(rc == PR__ETCD_ENOLEADER && took < 500, "put %d: %s in %" PRId64 " ms", i,
		    pr__etcd_strerror(rc), took);
	}
	t = now_ms();
	rc = get(e, "m/k", 0, &res);
	CHECK(rc == PR__ETCD_ENOLEADER && now_ms() - t < 500, "range: %s", pr__etcd_strerror(rc));
	/* Whichever member a handle starts at, the dead ones (unreachable)
	 * do not hide the live one's "no leader". */
	for (int k = 0; k < 3; k++) {
		char *eps = rotated(endpoints, k);
		struct pr_etcd *e2 = open_with(eps, NULL, NULL);

		rc = put(e2, "m/k", "x", 0, NULL);
		CHECK(rc == PR__ETCD_ENOLEADER, "put with endpoints %s: %s", eps,
		    pr__etcd_strerror(rc));
		pr__etcd_close(e2);
		free(eps);
	}
	printf("ok - minority: 5 more puts and a range refused with PR__ETCD_ENOLEADER, each in "
	       "under 500 ms (last %" PRId64 " ms), and a put from each member first\n",
	    took);
	pr__etcd_close(e);
}

/* ---- auth: user root with password, token TTL short ---- */

static void
check_auth(const char *user, const char *password, int expiry_s)
{
	struct pr_etcd *e = open_with(endpoints, user, "wrong");
	struct pr_etcd_watch *w;
	struct seen *s = seen_new();
	struct pr_etcd_watch_opts wo = { .key = "a/k", .key_len = 3 };
	int64_t rev;
	int rc;

	rc = put(e, "a/k", "x", 0, NULL);
	CHECK(rc == PR__ETCD_EAUTH, "a wrong password gave %s", pr__etcd_strerror(rc));
	pr__etcd_close(e);
	e = open_with(endpoints, NULL, NULL);
	rc = put(e, "a/k", "x", 0, NULL);
	CHECK(rc == PR__ETCD_EAUTH, "no credentials gave %s", pr__etcd_strerror(rc));
	pr__etcd_close(e);
	printf("ok - auth: a wrong password and no credentials PR__ETCD_EAUTH\n");
	e = open_with(endpoints, user, password);
	OK(put(e, "a/k", "1", 0, NULL), "put with the token");
	sleep_ms(expiry_s * 1000 + 1500);
	OK(put(e, "a/k", "2", 0, &rev), "put after the token expired");
	OK(pr__etcd_watch_open(e, &wo, on_event, s, &w), "watch_open");
	OK(put(e, "a/k", "3", 0, NULL), "put");
	WAIT_FOR(s, s->n > 0, 3000);
	CHECK(s->n == 1 && strcmp(s->value[0], "3") == 0, "the watch saw %d events", s->n);
	pr__etcd_watch_close(w);
	printf("ok - auth: put, put after the token's TTL (%d s), watch\n", expiry_s);
	seen_free(s);
	pr__etcd_close(e);
}

static void
check_status(const char *url)
{
	struct pr_etcd *e = open_e();
	struct pr_etcd_status st;
	int rc = pr__etcd_status(e, url, &st);

	if (rc != 0) {
		printf("status: %s\n", pr__etcd_strerror(rc));
		pr__etcd_close(e);
		exit(2);
	}
	printf("member %" PRIx64 " leader %" PRIx64 " revision %" PRId64 " raft_index %" PRIu64
	       " version %s\n",
	    st.member_id, st.leader, st.revision, st.raft_index, st.version);
	pr__etcd_close(e);
}

int
main(int argc, char **argv)
{
	const char *check;

	if (argc < 3) {
		fprintf(stderr, "usage: pr_etcd_test ENDPOINTS CHECK [ARGS]\n");
		return 2;
	}
	endpoints = argv[1];
	check = argv[2];
	if (getenv("PR_ETCD_REQUEST_MS") != NULL) {
		request_ms = (unsigned)atoi(getenv("PR_ETCD_REQUEST_MS"));
	}
	pr__log_set_level(getenv("PR_ETCD_DEBUG") != NULL ? PR_LOG_DEBUG : PR_LOG_WARN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(check, "basic") == 0) {
		check_basic();
	} else if (strcmp(check, "cas") == 0) {
		check_cas();
	} else if (strcmp(check, "lease") == 0) {
		check_lease();
	} else if (strcmp(check, "watch") == 0) {
		check_watch(argc > 3 && strcmp(argv[3], "progress") == 0);
	} else if (strcmp(check, "compacted") == 0) {
		check_compacted();
	} else if (strcmp(check, "failover") == 0 && argc > 3) {
		check_failover(argv[3]);
	} else if (strcmp(check, "down") == 0 && argc > 3) {
		check_down(argv[3]);
	} else if (strcmp(check, "minority") == 0) {
		check_minority();
	} else if (strcmp(check, "auth") == 0 && argc > 5) {
		check_auth(argv[3], argv[4], atoi(argv[5]));
	} else if (strcmp(check, "status") == 0) {
		check_status(argc > 3 ? argv[3] : NULL);
	} else {
		fprintf(stderr, "unknown check %s\n", check);
		return 2;
	}
	return 0;
}
