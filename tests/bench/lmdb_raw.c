/* SPDX-License-Identifier: MIT */
/*
 * The durable-write baseline: a raw LMDB loop committing one small write
 * per transaction with LMDB's default sync (an fdatasync per commit), on the
 * same filesystem as the agent's store. partregd's durable command rate is
 * divided by this: group commit must beat one fsync per command.
 *
 *   pr_bench_lmdb DIR [-n N]
 *       N commits (default 2000) into a fresh environment in DIR; prints
 *       "n=N secs=… rate=…" (commits per second).
 *
 * This bench includes <lmdb.h> on purpose: it measures LMDB itself, not the
 * store module (which it must not be slowed or helped by).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "pr_bench_lmdb: %s: %s\n", what, mdb_strerror(rc));
	}
	return rc;
}

int
main(int argc, char **argv)
{
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	long n = 2000;
	double t0, secs;

	if (argc < 2) {
		fprintf(stderr, "usage: pr_bench_lmdb DIR [-n N]\n");
		return 2;
	}
	if (argc == 4 && strcmp(argv[2], "-n") == 0) {
		n = strtol(argv[3], NULL, 10);
	}
	if (n <= 0) {
		return 2;
	}
	mkdir(argv[1], 0700);
	if (check(mdb_env_create(&env), "mdb_env_create")
	    || check(mdb_env_set_mapsize(env, (size_t)1 << 30), "mdb_env_set_mapsize")
	    || check(mdb_env_open(env, argv[1], 0, 0600), "mdb_env_open")
	    || check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin")
	    || check(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open")
	    || check(mdb_txn_commit(txn), "mdb_txn_commit")) {
		return 1;
	}
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		uint64_t key = __builtin_bswap64((uint64_t)i); /* big-endian: appends */
		char value[64];
		MDB_val k = { sizeof key, &key }, v = { sizeof value, value };

		memset(value, (int)(i & 0xff), sizeof value);
		if (check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin")
		    || check(mdb_put(txn, dbi, &k, &v, 0), "mdb_put")
		    || check(mdb_txn_commit(txn), "mdb_txn_commit")) {
			return 1;
		}
	}
	secs = now_s() - t0;
	printf("n=%ld secs=%.3f rate=%.1f\n", n, secs, (double)n / secs);
	mdb_env_close(env);
	return 0;
}
