/* SPDX-License-Identifier: MIT */
/*
 * pr_replica_test ENDPOINTS DIR: the etcd backend's commits (src/replica.h)
 * against a real etcd, run by tests/integration/test_etcd_backend.sh. A
 * read index in DIR, the registry under the prefix /replica-test/:
 *
 *   - a commit with a put makes a revision, and when it is the next one
 *     the batch is adopted as the read index's next state;
 *   - a commit that only compares (a refused command) makes none: it
 *     reports revision 0, so it is never adopted over another agent's
 *     change that etcd's answer would otherwise name (the review's first
 *     finding: the index would skip that change for good);
 *   - a commit refused because a guard moved names the guard's revision to
 *     catch up to, not etcd's own (which may be a key no watch brings);
 *   - the watch then brings the other writer's change.
 *
 * Prints "ok - ..." lines; "FAIL: ..." and exit 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>

#include "etcd.h"
#include "replica.h"
#include "store.h"

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL (line %d): ", __LINE__);                             \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static const char prefix[] = "/replica-test/";

static void
wake(void *arg)
{
	(void)arg;
}

/* Another writer: a put straight to etcd; its revision. */
static int64_t
put(struct pr_etcd *e, const char *tail)
{
	char key[256];
	struct pr_etcd_op op = { .type = PR_ETCD_PUT, .value = "", .value_len = 0 };
	struct pr_etcd_res res;
	int64_t rev;

	snprintf(key, sizeof key, "%s%s", prefix, tail);
	op.key = key;
	op.key_len = strlen(key);
	CHECK(pr__etcd_do(e, &op, &res) == 0, "put %s", key);
	rev = res.revision;
	pr__etcd_res_release(&res);
	return rev;
}

/* Apply what the watch brought, in one committed transaction. */
static void
apply(struct pr_replica *r, struct pr_store *st)
{
	struct pr_changes ch;
	struct pr_txn *txn;
	int any = 0;

	pr__changes_init(&ch);
	CHECK(pr__txn_begin(st, 1, &txn) == 0, "begin");
	CHECK(pr__replica_apply(r, txn, &ch, &any) == 0, "apply");
	CHECK(pr__txn_commit(txn) == 0, "commit");
	pr__replica_applied_commit(r);
	pr__changes_release(&ch);
}

int
main(int argc, char **argv)
{
	struct pr_replica_opts ro = { 0 };
	struct pr_etcd_opts eo = { 0 };
	struct pr_replica *r;
	struct pr_store *st;
	struct pr_etcd *other;
	struct pr_txn *txn;
	struct pr_source s;
	char msg[256] = "";
	int64_t rev = 0, r1, r2, r3;
	int rc;

	CHECK(argc == 3, "usage: pr_replica_test ENDPOINTS DIR");
	CHECK(pr__store_open(argv[2], &(struct pr_store_opts) { .nosync = 1 }, &st) == 0, "store");
	ro.endpoints = argv[1];
	ro.prefix = prefix;
	ro.instance = "replica-test";
	ro.max_txn_ops = 128;
	ro.wake = wake;
	CHECK(pr__replica_open(&ro, st, &r) == 0, "replica open");
	eo.endpoints = argv[1];
	CHECK(pr__etcd_open(&eo, &other) == 0, "etcd open");

	/* 1. A new source: a put, the next revision, adopted. */
	CHECK(pr__txn_begin(st, 1, &txn) == 0 && pr__txn_capture(txn) == 0, "capture");
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "a");
	CHECK(pr__store_source_get(txn, "a", &s) == PR_ENOSOURCE, "no source a yet");
	CHECK(pr__store_source_put(txn, &s) == 0, "source put");
	rc = pr__replica_commit(r, pr__txn_captured(txn), &rev, msg);
	CHECK(rc == 0 && rev == pr__replica_applied(r) + 1, "commit: rc %d rev %lld (%s)", rc,
	    (long long)rev, msg);
	CHECK(pr__replica_adopt(r, txn, pr__txn_captured(txn), rev) == 0, "adopt");
	CHECK(pr__txn_commit(txn) == 0, "commit the adopted batch");
	pr__replica_applied_commit(r);
	r1 = rev;
	CHECK(pr__replica_applied(r) == r1, "applied %lld", (long long)pr__replica_applied(r));
	printf("ok - a commit with a put is revision %lld, adopted\n", (long long)r1);

	/* 2. Another writer's change (a guard of a source this batch does not
	 * read), not yet applied here; then a commit that only compares. */
	r2 = put(other, "r/gzzz");
	CHECK(r2 == r1 + 1, "the other put is %lld", (long long)r2);
	CHECK(pr__txn_begin(st, 1, &txn) == 0 && pr__txn_capture(txn) == 0, "capture");
	CHECK(pr__store_source_get(txn, "a", &s) == 0, "source a");
	rc = pr__replica_commit(r, pr__txn_captured(txn), &rev, msg);
	CHECK(rc == 0 && rev == 0,
	    "compare-only commit: rc %d, revision %lld (want 0: no revision)", rc, (long long)rev);
	pr__txn_abort(txn);
	printf("ok - a commit that only compares reports no revision (etcd is at %lld)\n",
	    (long long)r2);
	CHECK(pr__replica_wait(r, r2, 5000000) == 0, "the watch brings %lld", (long long)r2);
	apply(r, st);
	CHECK(pr__replica_applied(r) == r2, "applied %lld, want %lld",
	    (long long)pr__replica_applied(r), (long long)r2);
	printf("ok - the other writer's revision %lld comes by the watch\n", (long long)r2);

	/* 3. The guard moved (rev r3), then etcd moved on with a key no watch
	 * brings: a refused commit names r3. */
	r3 = put(other, "r/ga");
	(void)put(other, "unwatched");
	CHECK(pr__txn_begin(st, 1, &txn) == 0 && pr__txn_capture(txn) == 0, "capture");
	CHECK(pr__store_source_get(txn, "a", &s) == 0, "source a");
	s.seq++;
	CHECK(pr__store_source_put(txn, &s) == 0, "source put");
	rc = pr__replica_commit(r, pr__txn_captured(txn), &rev, msg);
	CHECK(rc == 1 && rev == r3, "stale commit: rc %d, catch up to %lld (want 1, %lld)", rc,
	    (long long)rev, (long long)r3);
	pr__txn_abort(txn);
	CHECK(pr__replica_wait(r, rev, 5000000) == 0, "the watch brings %lld", (long long)rev);
	apply(r, st);
	CHECK(pr__replica_applied(r) >= r3, "applied %lld", (long long)pr__replica_applied(r));
	CHECK(pr__txn_begin(st, 1, &txn) == 0 && pr__txn_capture(txn) == 0, "capture");
	CHECK(pr__store_source_get(txn, "a", &s) == 0, "source a");
	s.seq++;
	CHECK(pr__store_source_put(txn, &s) == 0, "source put");
	rc = pr__replica_commit(r, pr__txn_captured(txn), &rev, msg);
	CHECK(
	    rc == 0 && rev > r3, "after catching up: rc %d rev %lld (%s)", rc, (long long)rev, msg);
	pr__txn_abort(txn);
	printf("ok - a stale commit names the guard's revision %lld; caught up, it commits\n",
	    (long long)r3);

	pr__etcd_close(other);
	pr__replica_close(r);
	pr__store_close(st);
	return 0;
}
