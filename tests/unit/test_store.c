/* SPDX-License-Identifier: MIT */
/*
 * Store tests on a real LMDB environment in a fresh temporary directory
 * ($TMPDIR or /tmp), removed afterwards. The indexes are checked against
 * brute force: a model of the partitions kept in plain arrays, whose ready
 * union, blockers, leases, sessions and tombstones are computed naively
 * after every step of a random (fixed seed) sequence of puts, state
 * changes, deletes, lease expiries and tombstone prunes.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include <partreg/error.h>
#include "store.h"
#include "tmpdir.h"

/* ---- temporary directories ---- */

struct fx {
	char dir[1024];
	struct pr_store *st;
};

static void
open_store(struct fx *f)
{
	assert_int_equal(pr__store_open(f->dir, NULL, &f->st), 0);
	assert_non_null(f->st);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	if (f == NULL) {
		return -1;
	}
	tmpdir_make(f->dir, "test_store");
	open_store(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	pr__store_close(f->st);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fx *f)
{
	pr__store_close(f->st);
	f->st = NULL;
	open_store(f);
}

static struct pr_txn *
wtxn(struct fx *f)
{
	struct pr_txn *t;

	assert_int_equal(pr__txn_begin(f->st, 1, &t), 0);
	return t;
}

static struct pr_txn *
rtxn(struct fx *f)
{
	struct pr_txn *t;

	assert_int_equal(pr__txn_begin(f->st, 0, &t), 0);
	return t;
}

static struct pr_source
new_source(struct pr_txn *t, const char *name)
{
	struct pr_source s;

	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "%s", name);
	snprintf(s.owner, sizeof s.owner, "owner-of-%s", name);
	s.created_at = 1000;
	s.updated_at = 2000;
	assert_int_equal(pr__store_source_put(t, &s), 0);
	assert_true(s.id != 0);
	return s;
}

static struct pr_partition
mkpart(const char *provider, int64_t start, int64_t end, enum pr_pstate state)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	snprintf(p.provider, sizeof p.provider, "%s", provider);
	p.range.start = start;
	p.range.end = end;
	p.state = state;
	return p;
}

/* ---- collectors ---- */

#define MAXR 8192

struct ranges {
	struct pr_range r[MAXR];
	size_t n;
};

static int
collect_range(void *arg, struct pr_range r)
{
	struct ranges *rs = arg;

	assert_true(rs->n < MAXR);
	rs->r[rs->n++] = r;
	return 0;
}

struct parts {
	struct pr_partition *p;
	size_t n, cap;
};

static int
collect_part(void *arg, const struct pr_partition *p)
{
	struct parts *ps = arg;

	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
		assert_non_null(ps->p);
	}
	ps->p[ps->n++] = *p;
	return 0;
}

static int
count_part(void *arg, const struct pr_partition *p)
{
	(void)p;
	++*(size_t *)arg;
	return 0;
}

static int
count_range(void *arg, struct pr_range r)
{
	(void)r;
	++*(size_t *)arg;
	return 0;
}

static int
count_event(void *arg, const struct pr_event *ev)
{
	(void)ev;
	++*(size_t *)arg;
	return 0;
}

/* ---- open, close, epoch ---- */

static void
test_open_creates_dir_and_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	struct fx sub;
	char path[1100];
	struct pr_txn *t;
	struct pr_source s, g;
	struct pr_provider pv = { .name = "dag", .created_at = 7 };
	struct pr_partition p = mkpart("dag", 10, 20, PR_READY), q;
	struct pr_event ev = { .seq = 1, .at = 5, .type = "registered" };
	struct ranges rs = { .n = 0 };
	char cmd[64];
	char *reply;
	size_t len;

	/* A directory that does not exist yet is created (mode 0700). */
	memset(&sub, 0, sizeof sub);
	snprintf(path, sizeof path, "%s/sub", f->dir);
	assert_true(strlen(path) < sizeof sub.dir);
	strcpy(sub.dir, path);
	open_store(&sub);
	assert_int_equal(access(sub.dir, R_OK | W_OK | X_OK), 0);

	t = wtxn(&sub);
	s = new_source(t, "orders");
	memset(pv.token_digest, 0xab, sizeof pv.token_digest);
	assert_int_equal(pr__store_provider_put(t, &s, &pv), 0);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	assert_int_equal(pr__store_event_append(t, &s, &ev), 0);
	assert_int_equal(pr__store_idem_put(t, "req-1", "partition/lock", "{}", 2, 99), 0);
	assert_int_equal(pr__txn_commit(t), 0);

	reopen(&sub);
	t = rtxn(&sub);
	assert_int_equal(pr__store_source_get(t, "orders", &g), 0);
	assert_int_equal(g.id, s.id);
	assert_string_equal(g.owner, "owner-of-orders");
	assert_int_equal(
	    pr__store_partition_get(t, &g, "dag", (struct pr_range) { 10, 20 }, &q), 0);
	assert_int_equal(q.state, PR_READY);
	assert_int_equal(
	    pr__store_ready_each(t, &g, (struct pr_range) { 0, 100 }, collect_range, &rs), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].start, 10);
	assert_int_equal(pr__store_idem_get(t, "req-1", cmd, &reply, &len), 0);
	assert_string_equal(reply, "{}");
	free(reply);
	pr__txn_abort(t);
	pr__store_close(sub.st);
}

static void
test_open_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct pr_store *st = (struct pr_store *)1;
	char path[4200];
	FILE *fp;

	/* A regular file where the directory should be. */
	snprintf(path, sizeof path, "%s/file", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_true(pr__store_open(path, NULL, &st) < 0);
	assert_null(st);
	/* A missing parent. */
	snprintf(path, sizeof path, "%s/no/such", f->dir);
	assert_int_equal(pr__store_open(path, NULL, &st), -ENOENT);
	pr__store_close(NULL);
	pr__txn_abort(NULL);
}

static void
test_epoch_rises_across_reopen(void **state)
{
	struct fx *f = *state;
	uint64_t e1, e2, e3;

	assert_int_equal(pr__store_next_epoch(f->st, &e1), 0);
	assert_int_equal(pr__store_next_epoch(f->st, &e2), 0);
	assert_true(e1 >= 1);
	assert_true(e2 > e1);
	reopen(f);
	assert_int_equal(pr__store_next_epoch(f->st, &e3), 0);
	assert_true(e3 > e2);
}

static void
test_map_full(void **state)
{
	struct fx *f = *state;
	struct pr_store_opts opts = { .map_size = 256 * 1024 };
	struct pr_store *st;
	struct pr_txn *t;
	struct pr_source s = { .name = "s" }, g;
	char path[1100];
	int rc = 0, i;

	snprintf(path, sizeof path, "%s/small", f->dir);
	assert_int_equal(pr__store_open(path, &opts, &st), 0);
	assert_int_equal(pr__txn_begin(st, 1, &t), 0);
	assert_int_equal(pr__store_source_put(t, &s), 0);
	assert_int_equal(pr__txn_commit(t), 0);

	/* Fill the map: the failure is PR_EMAPFULL, from a put or the commit. */
	assert_int_equal(pr__txn_begin(st, 1, &t), 0);
	for (i = 0; i < 10000 && rc == 0; i++) {
		struct pr_partition p = mkpart("p", i, i + 1, PR_PENDING);

		memset(p.metadata, 'm', PR_METADATA_MAX);
		rc = pr__store_partition_put(t, &s, &p);
	}
	if (rc == 0) {
		rc = pr__txn_commit(t);
	} else {
		pr__txn_abort(t);
	}
	assert_int_equal(rc, PR_EMAPFULL);

	/* The store stays usable and holds what was committed. */
	assert_int_equal(pr__txn_begin(st, 0, &t), 0);
	assert_int_equal(pr__store_source_get(t, "s", &g), 0);
	assert_int_equal(pr__store_partition_get(
	                     t, &g, "p", (struct pr_range) { 0, 1 }, &(struct pr_partition) { 0 }),
	    PR_ENOPARTITION);
	pr__txn_abort(t);
	pr__store_close(st);
}

/* ---- sources and providers ---- */

static void
test_source_put_get(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source a, b, g, dup;
	char longname[PR_NAME_MAX + 2];

	a = new_source(t, "a");
	b = new_source(t, "b");
	assert_true(b.id != a.id);

	/* Replace keeps the id and every field round-trips. */
	a.seq = 42;
	a.fence = 43;
	a.updated_at = -5;
	memset(a.token_digest, 0x5c, sizeof a.token_digest);
	assert_int_equal(pr__store_source_put(t, &a), 0);
	assert_int_equal(pr__store_source_get(t, "a", &g), 0);
	assert_memory_equal(&g, &a, sizeof g);

	/* A new source (id 0) may not take an existing name. */
	memset(&dup, 0, sizeof dup);
	strcpy(dup.name, "a");
	assert_int_equal(pr__store_source_put(t, &dup), PR_ESOURCE_EXISTS);
	assert_int_equal(dup.id, 0);

	assert_int_equal(pr__store_source_get(t, "nope", &g), PR_ENOSOURCE);
	assert_int_equal(pr__store_source_get(t, "", &g), PR_ENOSOURCE);
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(pr__store_source_get(t, longname, &g), PR_ENOSOURCE);
	memset(&dup, 0, sizeof dup);
	assert_int_equal(pr__store_source_put(t, &dup), PR_ENAME);
	assert_int_equal(pr__txn_commit(t), 0);

	/* Ids keep rising across reopen. */
	reopen(f);
	t = wtxn(f);
	g = new_source(t, "c");
	assert_true(g.id > b.id);
	pr__txn_abort(t);
}

struct names {
	char name[64][PR_NAME_MAX + 1];
	size_t n;
	int stop_at;
};

static int
collect_source(void *arg, const struct pr_source *s)
{
	struct names *ns = arg;

	assert_true(ns->n < 64);
	strcpy(ns->name[ns->n++], s->name);
	return ns->stop_at > 0 && (int)ns->n == ns->stop_at ? 77 : 0;
}

static void
test_source_list_pages(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct names ns = { .n = 0 };
	char cursor[PR_CURSOR_MAX] = "", next[PR_CURSOR_MAX];
	char name[16];
	int pages = 0;

	/* Inserted out of order; listed in byte order. */
	for (int i = 9; i >= 0; i--) {
		snprintf(name, sizeof name, "src-%02d", i);
		new_source(t, name);
	}
	do {
		size_t before = ns.n;

		assert_int_equal(pr__store_source_list(t, cursor, 3, collect_source, &ns, next), 0);
		assert_true(ns.n - before <= 3);
		assert_true(ns.n - before > 0);
		strcpy(cursor, next);
		pages++;
	} while (cursor[0] != '\0');
	assert_int_equal(pages, 4);
	assert_int_equal(ns.n, 10);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "src-%02d", i);
		assert_string_equal(ns.name[i], name);
	}

	/* One page of all; NULL cursor and NULL next are fine. */
	ns.n = 0;
	assert_int_equal(pr__store_source_list(t, NULL, 0, collect_source, &ns, NULL), 0);
	assert_int_equal(ns.n, 10);
	/* Exactly a full page: no next. */
	ns.n = 0;
	assert_int_equal(pr__store_source_list(t, "", 10, collect_source, &ns, next), 0);
	assert_int_equal(ns.n, 10);
	assert_string_equal(next, "");

	/* The callback stops the walk; next resumes after its entry. */
	ns.n = 0;
	ns.stop_at = 2;
	assert_int_equal(pr__store_source_list(t, "", 5, collect_source, &ns, next), 77);
	ns.stop_at = 0;
	assert_int_equal(pr__store_source_list(t, next, 1, collect_source, &ns, next), 0);
	assert_string_equal(ns.name[2], "src-02");

	/* Malformed cursors. */
	const char *bad[] = { "x", "s0", "szz", "sABCD", "p616263", "s", "616263", "s6g" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    pr__store_source_list(t, bad[i], 3, collect_source, &ns, next), PR_ECURSOR);
	}
	pr__txn_abort(t);
}

static void
test_provider_put_get(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	struct pr_provider p = { .name = "dag-1", .created_at = -77 }, g;

	memset(p.token_digest, 0x11, sizeof p.token_digest);
	assert_int_equal(pr__store_provider_put(t, &a, &p), 0);
	assert_int_equal(pr__store_provider_get(t, &a, "dag-1", &g), 0);
	assert_memory_equal(&g, &p, sizeof g);
	assert_int_equal(pr__store_provider_get(t, &b, "dag-1", &g), PR_ENOPROVIDER);
	assert_int_equal(pr__store_provider_get(t, &a, "dag-2", &g), PR_ENOPROVIDER);
	assert_int_equal(pr__store_provider_get(t, &a, "", &g), PR_ENOPROVIDER);
	p.created_at = 5;
	assert_int_equal(pr__store_provider_put(t, &a, &p), 0);
	assert_int_equal(pr__store_provider_get(t, &a, "dag-1", &g), 0);
	assert_int_equal(g.created_at, 5);
	p.name[0] = '\0';
	assert_int_equal(pr__store_provider_put(t, &a, &p), PR_ENAME);
	assert_int_equal(pr__txn_commit(t), 0);
}

/* ---- partitions ---- */

static void
test_partition_put_get_del(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source s = new_source(t, "s");
	struct pr_partition p = mkpart("prov", -100, 100, PR_LOCKED), g;
	struct pr_range r = { -100, 100 };

	p.version = 3;
	p.fence = 9;
	p.since = -1;
	p.expires_at = 12345;
	p.updated_at = 6;
	p.seq = 7;
	strcpy(p.session, "sess");
	strcpy(p.reason, "because");
	memset(p.metadata, 'm', PR_METADATA_MAX);
	strcpy(p.source, s.name);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	assert_int_equal(pr__store_partition_get(t, &s, "prov", r, &g), 0);
	assert_memory_equal(&g, &p, sizeof g);

	/* Same provider, other range; other provider, same range: distinct. */
	assert_int_equal(
	    pr__store_partition_get(t, &s, "prov", (struct pr_range) { -100, 101 }, &g),
	    PR_ENOPARTITION);
	assert_int_equal(pr__store_partition_get(t, &s, "other", r, &g), PR_ENOPARTITION);

	p.state = PR_READY;
	p.metadata[0] = '\0';
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	assert_int_equal(pr__store_partition_get(t, &s, "prov", r, &g), 0);
	assert_int_equal(g.state, PR_READY);
	assert_string_equal(g.metadata, "");

	assert_int_equal(pr__store_partition_del(t, &s, "prov", r), 0);
	assert_int_equal(pr__store_partition_get(t, &s, "prov", r, &g), PR_ENOPARTITION);
	assert_int_equal(pr__store_partition_del(t, &s, "prov", r), PR_ENOPARTITION);

	/* Refused input. */
	p = mkpart("prov", 5, 5, PR_PENDING);
	assert_int_equal(pr__store_partition_put(t, &s, &p), PR_EINTERVAL);
	p = mkpart("", 5, 6, PR_PENDING);
	assert_int_equal(pr__store_partition_put(t, &s, &p), PR_ENAME);
	assert_int_equal(
	    pr__store_ready_each(t, &s, (struct pr_range) { 5, 5 }, count_range, &(size_t) { 0 }),
	    PR_EINTERVAL);
	assert_int_equal(pr__txn_commit(t), 0);
}

static int
part_cmp(const struct pr_partition *a, const struct pr_partition *b)
{
	if (a->range.start != b->range.start) {
		return a->range.start < b->range.start ? -1 : 1;
	}
	if (a->range.end != b->range.end) {
		return a->range.end < b->range.end ? -1 : 1;
	}
	return strcmp(a->provider, b->provider);
}

static void
test_partition_list_pages(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source s = new_source(t, "s"), o = new_source(t, "other");
	struct parts all = { 0 }, paged = { 0 };
	char cursor[PR_CURSOR_MAX] = "", next[PR_CURSOR_MAX];
	const char *provs[] = { "b", "a", "c" };
	size_t n = 0;

	/* 20 partitions around zero, several per start, in shuffled order. */
	for (int i = 0; i < 20; i++) {
		int k = (i * 7) % 20;
		struct pr_partition p = mkpart(provs[k % 3], (k / 3 - 3) * INT64_C(1000000),
		    (k / 3 - 3) * INT64_C(1000000) + 1 + k % 2, (enum pr_pstate)(k % 4));

		assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
		n++;
	}
	/* Another source's partitions never appear. */
	struct pr_partition x = mkpart("a", -1, 1, PR_READY);
	assert_int_equal(pr__store_partition_put(t, &o, &x), 0);

	assert_int_equal(pr__store_partition_list(t, &s, NULL, 0, collect_part, &all, next), 0);
	assert_int_equal(all.n, n);
	assert_string_equal(next, "");
	for (size_t i = 1; i < all.n; i++) {
		assert_true(part_cmp(&all.p[i - 1], &all.p[i]) < 0);
	}
	assert_true(all.p[0].range.start < 0);
	for (size_t i = 0; i < all.n; i++) {
		assert_string_equal(all.p[i].source, "s");
	}

	int pages = 0;
	do {
		size_t before = paged.n;

		assert_int_equal(
		    pr__store_partition_list(t, &s, cursor, 3, collect_part, &paged, next), 0);
		assert_true(paged.n - before >= 1 && paged.n - before <= 3);
		strcpy(cursor, next);
		pages++;
	} while (cursor[0] != '\0');
	assert_int_equal(pages, 7);
	assert_int_equal(paged.n, all.n);
	for (size_t i = 0; i < all.n; i++) {
		assert_memory_equal(&paged.p[i], &all.p[i], sizeof all.p[i]);
	}

	const char *bad[] = { "x", "p00", "s0000000000000000000000000000000000000000000000000061",
		"p00000000000000000000000000000000000000000000000g61", "p0" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    pr__store_partition_list(t, &s, bad[i], 3, collect_part, &paged, next),
		    PR_ECURSOR);
	}
	free(all.p);
	free(paged.p);
	pr__txn_abort(t);
}

static void
test_negative_and_extreme_times(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source s = new_source(t, "s");
	struct pr_partition p;
	struct ranges rs = { .n = 0 };
	size_t nb = 0;

	p = mkpart("a", INT64_MIN, -5, PR_READY);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	p = mkpart("a", -5, 0, PR_READY);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	p = mkpart("a", 0, INT64_MAX, PR_READY);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	assert_int_equal(
	    pr__store_ready_each(t, &s, (struct pr_range) { -10, -9 }, collect_range, &rs), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].start, INT64_MIN);
	assert_int_equal(rs.r[0].end, INT64_MAX);

	/* Cutting the middle leaves two ranges with negative and positive ends. */
	p = mkpart("a", -5, 0, PR_FAILED);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	rs.n = 0;
	assert_int_equal(pr__store_ready_each(
	                     t, &s, (struct pr_range) { INT64_MIN, INT64_MAX }, collect_range, &rs),
	    0);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].start, INT64_MIN);
	assert_int_equal(rs.r[0].end, -5);
	assert_int_equal(rs.r[1].start, 0);
	assert_int_equal(rs.r[1].end, INT64_MAX);

	/* Blockers of the largest length class are found from any window. */
	p = mkpart("b", INT64_MIN, INT64_MAX, PR_PENDING);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	assert_int_equal(pr__store_blockers_each(t, &s,
	                     (struct pr_range) { INT64_MAX - 1, INT64_MAX }, count_part, &nb),
	    0);
	assert_int_equal(nb, 1);
	nb = 0;
	assert_int_equal(
	    pr__store_blockers_each(t, &s, (struct pr_range) { -3, -2 }, count_part, &nb), 0);
	assert_int_equal(nb, 2); /* the failed [-5, 0) and the pending everything */
	nb = 0;
	assert_int_equal(
	    pr__store_blockers_each(t, &s, (struct pr_range) { 0, 1 }, count_part, &nb), 0);
	assert_int_equal(nb, 1); /* [-5, 0) only touches [0, 1) */
	pr__txn_abort(t);
}

static void
test_nested_abort_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f), *c;
	struct pr_source s = new_source(t, "s"), g;
	struct pr_partition p = mkpart("a", 0, 10, PR_READY), q;
	struct pr_event ev = { .seq = 1, .type = "registered" };
	struct ranges rs = { .n = 0 };
	size_t n = 0;
	char cmd[64];
	char *reply;
	size_t len;

	assert_int_equal(pr__txn_begin_nested(t, &c), 0);
	struct pr_source s2 = new_source(c, "s2");
	assert_int_equal(pr__store_partition_put(c, &s, &p), 0);
	assert_int_equal(pr__store_event_append(c, &s, &ev), 0);
	assert_int_equal(pr__store_idem_put(c, "r", "x", "y", 1, 1), 0);
	assert_int_equal(pr__store_source_get(c, "s2", &g), 0);
	pr__txn_abort(c);
	(void)s2;

	assert_int_equal(pr__store_source_get(t, "s2", &g), PR_ENOSOURCE);
	assert_int_equal(pr__store_partition_get(t, &s, "a", p.range, &q), PR_ENOPARTITION);
	assert_int_equal(pr__store_ready_each(t, &s, p.range, collect_range, &rs), 0);
	assert_int_equal(rs.n, 0);
	assert_int_equal(pr__store_event_each(t, &s, 0, count_event, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pr__store_idem_get(t, "r", cmd, &reply, &len), PR_ENOTFOUND);
	assert_null(reply);

	/* A committed child shows in its parent; the parent's abort drops all. */
	assert_int_equal(pr__txn_begin_nested(t, &c), 0);
	assert_int_equal(pr__store_partition_put(c, &s, &p), 0);
	assert_int_equal(pr__txn_commit(c), 0);
	assert_int_equal(pr__store_partition_get(t, &s, "a", p.range, &q), 0);
	pr__txn_abort(t);
	t = rtxn(f);
	assert_int_equal(pr__store_source_get(t, "s", &g), PR_ENOSOURCE);
	pr__txn_abort(t);
}

/* ---- the indexes against brute force ---- */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* xorshift64*: fixed seed, same sequence on every run. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static int64_t
rnd_in(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo));
}

struct mpart {
	int prov;
	struct pr_range r;
	enum pr_pstate state;
	int64_t exp;   /* expires_at; set whatever the state, indexed only when locked */
	int64_t since; /* indexed as a tombstone only when deleted */
	int sess;      /* 0: none, else session "s<sess>" */
};

#define MODEL_MAX 4096

struct model {
	struct mpart p[MODEL_MAX];
	size_t n;
};

static const char *const model_provs[] = { "p0", "p1", "p2" };
static const char *const model_sess[] = { "", "s1", "s2", "s3" };

static struct pr_partition
mpart_get(const struct mpart *mp)
{
	struct pr_partition p = mkpart(model_provs[mp->prov], mp->r.start, mp->r.end, mp->state);

	p.expires_at = mp->exp;
	p.since = mp->since;
	snprintf(p.session, sizeof p.session, "%s", model_sess[mp->sess]);
	return p;
}

/* Small ranges, so that deadlines and deletion times often tie. */
static void
mpart_fields(struct mpart *mp)
{
	mp->exp = rnd() % 4 == 0 ? 0 : rnd_in(-10, 30);
	mp->since = rnd_in(-10, 30);
	mp->sess = (int)(rnd() % 4);
}

static int
range_cmp(const void *a, const void *b)
{
	const struct pr_range *x = a, *y = b;

	if (x->start != y->start) {
		return x->start < y->start ? -1 : 1;
	}
	return x->end < y->end ? -1 : x->end > y->end;
}

/* The naive union: sort, then merge overlapping or touching neighbours. */
static size_t
naive_union(const struct model *m, struct pr_range *out)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (m->p[i].state == PR_READY) {
			out[n++] = m->p[i].r;
		}
	}
	qsort(out, n, sizeof *out, range_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && out[i].start <= out[k - 1].end) {
			if (out[i].end > out[k - 1].end) {
				out[k - 1].end = out[i].end;
			}
		} else {
			out[k++] = out[i];
		}
	}
	return k;
}

static int
blocker_cmp(const void *a, const void *b)
{
	const struct pr_partition *x = a, *y = b;
	int c = part_cmp(x, y);

	return c != 0 ? c : (int)x->state - (int)y->state;
}

static void
check_model(
    struct pr_txn *t, const struct pr_source *s, const struct model *m, struct pr_range want)
{
	static struct pr_range u[MODEL_MAX];
	static struct ranges got;
	struct parts gb = { 0 }, wb = { 0 };
	size_t nu = naive_union(m, u), k = 0;

	got.n = 0;
	assert_int_equal(pr__store_ready_each(t, s, want, collect_range, &got), 0);
	for (size_t i = 0; i < nu; i++) {
		if (u[i].start < want.end && u[i].end > want.start) {
			assert_true(k < got.n);
			assert_int_equal(got.r[k].start, u[i].start);
			assert_int_equal(got.r[k].end, u[i].end);
			k++;
		}
	}
	assert_int_equal(got.n, k);

	assert_int_equal(pr__store_blockers_each(t, s, want, collect_part, &gb), 0);
	for (size_t i = 0; i < m->n; i++) {
		const struct mpart *p = &m->p[i];

		if (p->state != PR_READY && p->state != PR_DELETED && p->r.start < want.end
		    && p->r.end > want.start) {
			struct pr_partition x
			    = mkpart(model_provs[p->prov], p->r.start, p->r.end, p->state);
			collect_part(&wb, &x);
		}
	}
	assert_int_equal(gb.n, wb.n);
	if (gb.n > 0) {
		qsort(gb.p, gb.n, sizeof *gb.p, blocker_cmp);
		qsort(wb.p, wb.n, sizeof *wb.p, blocker_cmp);
	}
	for (size_t i = 0; i < gb.n; i++) {
		assert_int_equal(blocker_cmp(&gb.p[i], &wb.p[i]), 0);
	}
	free(gb.p);
	free(wb.p);
}

static int
lease_cmp(const void *a, const void *b)
{
	const struct pr_partition *x = a, *y = b;

	if (x->expires_at != y->expires_at) {
		return x->expires_at < y->expires_at ? -1 : 1;
	}
	return part_cmp(x, y);
}

static void
assert_same_part(
    const struct pr_partition *got, const struct pr_partition *want, const struct pr_source *s)
{
	assert_string_equal(got->source, s->name);
	assert_string_equal(got->provider, want->provider);
	assert_int_equal(got->range.start, want->range.start);
	assert_int_equal(got->range.end, want->range.end);
	assert_int_equal(got->state, want->state);
	assert_int_equal(got->expires_at, want->expires_at);
	assert_int_equal(got->since, want->since);
	assert_string_equal(got->session, want->session);
}

/*
 * The cross-source indexes against the model. They span sources, so the
 * store must hold no other source's leases, sessions or tombstones (each
 * run_model removes its partitions at the end). With write != 0 the
 * tombstones are checked by pruning in a nested transaction thrown away.
 */
static void
check_xindex(struct pr_txn *t, const struct pr_source *s, const struct model *m, int write)
{
	struct parts want = { 0 }, got = { 0 };
	int64_t next, now = rnd_in(-12, 32);
	size_t max = rnd() % 4, due = 0;

	/* Leases: every one in deadline order, then a random due prefix. */
	for (size_t i = 0; i < m->n; i++) {
		if (m->p[i].state == PR_LOCKED && m->p[i].exp != 0) {
			struct pr_partition p = mpart_get(&m->p[i]);
			collect_part(&want, &p);
		}
	}
	if (want.n > 0) {
		qsort(want.p, want.n, sizeof *want.p, lease_cmp);
	}
	assert_int_equal(pr__store_leases_due(t, INT64_MAX, 0, collect_part, &got), 0);
	assert_int_equal(got.n, want.n);
	for (size_t i = 0; i < got.n; i++) {
		assert_same_part(&got.p[i], &want.p[i], s);
	}
	if (want.n == 0) {
		assert_int_equal(pr__store_lease_next(t, &next), PR_ENOTFOUND);
	} else {
		assert_int_equal(pr__store_lease_next(t, &next), 0);
		assert_int_equal(next, want.p[0].expires_at);
	}
	while (due < want.n && want.p[due].expires_at <= now) {
		due++;
	}
	if (max != 0 && due > max) {
		due = max;
	}
	got.n = 0;
	assert_int_equal(pr__store_leases_due(t, now, max, collect_part, &got), 0);
	assert_int_equal(got.n, due);
	for (size_t i = 0; i < got.n; i++) {
		assert_same_part(&got.p[i], &want.p[i], s);
	}

	/* Sessions. */
	for (int se = 1; se < 4; se++) {
		want.n = got.n = 0;
		for (size_t i = 0; i < m->n; i++) {
			if (m->p[i].state == PR_LOCKED && m->p[i].sess == se) {
				struct pr_partition p = mpart_get(&m->p[i]);
				collect_part(&want, &p);
			}
		}
		assert_int_equal(pr__store_session_each(t, model_sess[se], collect_part, &got), 0);
		assert_int_equal(got.n, want.n);
		if (got.n > 0) {
			qsort(got.p, got.n, sizeof *got.p, blocker_cmp);
			qsort(want.p, want.n, sizeof *want.p, blocker_cmp);
		}
		for (size_t i = 0; i < got.n; i++) {
			assert_same_part(&got.p[i], &want.p[i], s);
		}
	}
	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "", collect_part, &got), 0);
	assert_int_equal(pr__store_session_each(t, "s", collect_part, &got), 0);
	assert_int_equal(got.n, 0);

	/* Tombstones: a prune removes exactly the deleted ones older than now. */
	if (write) {
		struct pr_txn *c;
		size_t removed, old = 0;

		assert_int_equal(pr__txn_begin_nested(t, &c), 0);
		assert_int_equal(pr__store_tombstone_prune(c, now, 0, &removed), 0);
		for (size_t i = 0; i < m->n; i++) {
			const struct mpart *mp = &m->p[i];
			struct pr_partition q;
			int gone = mp->state == PR_DELETED && mp->since < now;

			old += (size_t)gone;
			assert_int_equal(
			    pr__store_partition_get(c, s, model_provs[mp->prov], mp->r, &q),
			    gone ? PR_ENOPARTITION : 0);
		}
		assert_int_equal(removed, old);
		assert_int_equal(pr__store_tombstone_prune(c, now, 0, &removed), 0);
		assert_int_equal(removed, 0);
		pr__txn_abort(c);
	}
	free(want.p);
	free(got.p);
}

/*
 * The blocker runs against the model: per (state, provider) the naive
 * coalescing of its ranges (overlapping or touching join), with counts, in
 * the store's order (state, provider, start).
 */
struct runs {
	struct pr_run r[MODEL_MAX];
	size_t n;
};

static int
collect_run(void *arg, const struct pr_run *r)
{
	struct runs *rs = arg;

	assert_true(rs->n < MODEL_MAX);
	rs->r[rs->n++] = *r;
	return 0;
}

static void
check_runs(struct pr_txn *t, const struct pr_source *s, const struct model *m)
{
	static const enum pr_pstate states[] = { PR_PENDING, PR_LOCKED, PR_FAILED };
	static struct runs got;
	static struct pr_range rs[MODEL_MAX];
	size_t k = 0;

	/* The states' order in the key is their enum order. */
	assert_true(PR_PENDING < PR_LOCKED && PR_LOCKED < PR_FAILED);
	got.n = 0;
	assert_int_equal(pr__store_runs_each(t, s, collect_run, &got), 0);
	for (size_t si = 0; si < 3; si++) {
		for (int prov = 0; prov < 3; prov++) {
			size_t n = 0;

			for (size_t i = 0; i < m->n; i++) {
				if (m->p[i].state == states[si] && m->p[i].prov == prov) {
					rs[n++] = m->p[i].r;
				}
			}
			qsort(rs, n, sizeof *rs, range_cmp);
			for (size_t i = 0; i < n;) {
				struct pr_range run = rs[i];
				uint64_t count = 0;

				while (i < n && rs[i].start <= run.end) {
					run.end = rs[i].end > run.end ? rs[i].end : run.end;
					count++;
					i++;
				}
				assert_true(k < got.n);
				assert_int_equal(got.r[k].state, states[si]);
				assert_string_equal(got.r[k].provider, model_provs[prov]);
				assert_int_equal(got.r[k].range.start, run.start);
				assert_int_equal(got.r[k].range.end, run.end);
				assert_int_equal(got.r[k].count, count);
				k++;
			}
		}
	}
	assert_int_equal(got.n, k);
}

/* write: t is a write transaction (tombstones are checked by a nested prune). */
static void
check_all(struct pr_txn *t, const struct pr_source *s, const struct model *m, int64_t lo,
    int64_t hi, int write)
{
	check_xindex(t, s, m, write);
	check_runs(t, s, m);
	check_model(t, s, m, (struct pr_range) { INT64_MIN, INT64_MAX });
	for (int i = 0; i < 4; i++) {
		int64_t a = rnd_in(lo, hi), b = a + 1 + rnd_in(0, (hi - lo) / 4);

		check_model(t, s, m, (struct pr_range) { a, b });
	}
}

static size_t
model_find(const struct model *m, int prov, struct pr_range r)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->p[i].prov == prov && m->p[i].r.start == r.start && m->p[i].r.end == r.end) {
			return i;
		}
	}
	return m->n;
}

static enum pr_pstate
rnd_state(void)
{
	static const enum pr_pstate states[]
	    = { PR_PENDING, PR_LOCKED, PR_READY, PR_READY, PR_READY, PR_FAILED, PR_DELETED };

	return states[rnd() % (sizeof states / sizeof states[0])];
}

static size_t
model_find_part(const struct model *m, const struct pr_partition *p)
{
	int prov = p->provider[1] - '0';

	return model_find(m, prov, p->range);
}

/* One random step applied to the store and the model. */
static void
random_step(struct pr_txn *t, const struct pr_source *s, struct model *m, int64_t unit)
{
	uint64_t op = rnd() % 20;

	if (op < 10 || m->n == 0) {
		int prov = (int)(rnd() % 3);
		int64_t len, st = rnd_in(-60, 140);
		size_t i;
		struct mpart mp;
		struct pr_partition p;

		/* Lengths of several classes: 1..3, 1..15, 1..100 units. */
		switch (rnd() % 3) {
		case 0:
			len = rnd_in(1, 4);
			break;
		case 1:
			len = rnd_in(1, 16);
			break;
		default:
			len = rnd_in(1, 101);
			break;
		}
		mp = (struct mpart) { prov, { st * unit, (st + len) * unit }, rnd_state(), 0, 0,
			0 };
		mpart_fields(&mp);
		p = mpart_get(&mp);
		assert_int_equal(pr__store_partition_put(t, s, &p), 0);
		i = model_find(m, prov, mp.r);
		if (i == m->n) {
			assert_true(m->n < MODEL_MAX);
			m->n++;
		}
		m->p[i] = mp;
	} else if (op < 16) {
		size_t i = rnd() % m->n;
		struct pr_partition p;

		/* A new state; half the time new deadline, session and since too,
		 * so entries move within an index as well as in and out. */
		m->p[i].state = rnd_state();
		if (rnd() % 2 == 0) {
			mpart_fields(&m->p[i]);
		}
		p = mpart_get(&m->p[i]);
		assert_int_equal(pr__store_partition_put(t, s, &p), 0);
	} else if (op < 18) {
		size_t i = rnd() % m->n;

		assert_int_equal(
		    pr__store_partition_del(t, s, model_provs[m->p[i].prov], m->p[i].r), 0);
		m->p[i] = m->p[--m->n];
	} else if (op == 18) {
		/* Expiry as the agent does it: collect the due leases, then fail them. */
		struct parts due = { 0 };

		assert_int_equal(
		    pr__store_leases_due(t, rnd_in(-10, 30), rnd() % 4, collect_part, &due), 0);
		for (size_t k = 0; k < due.n; k++) {
			size_t i = model_find_part(m, &due.p[k]);

			assert_true(i < m->n);
			assert_int_equal(m->p[i].state, PR_LOCKED);
			m->p[i].state = PR_FAILED;
			m->p[i].exp = 0;
			due.p[k] = mpart_get(&m->p[i]);
			assert_int_equal(pr__store_partition_put(t, s, &due.p[k]), 0);
		}
		free(due.p);
	} else {
		/* A tombstone prune, possibly cut short by max. */
		int64_t before = rnd_in(-10, 30);
		size_t max = rnd() % 3, removed, cand = 0, gone = 0;

		for (size_t i = 0; i < m->n; i++) {
			cand += m->p[i].state == PR_DELETED && m->p[i].since < before;
		}
		assert_int_equal(pr__store_tombstone_prune(t, before, max, &removed), 0);
		assert_int_equal(removed, max != 0 && cand > max ? max : cand);
		for (size_t i = 0; i < m->n;) {
			struct pr_partition q;
			int rc = pr__store_partition_get(
			    t, s, model_provs[m->p[i].prov], m->p[i].r, &q);

			if (rc == PR_ENOPARTITION) {
				assert_int_equal(m->p[i].state, PR_DELETED);
				assert_true(m->p[i].since < before);
				m->p[i] = m->p[--m->n];
				gone++;
				continue;
			}
			assert_int_equal(rc, 0);
			i++;
		}
		assert_int_equal(gone, removed);
	}
}

static void
run_model(struct fx *f, const char *name, int64_t unit, int steps)
{
	static struct model m, saved;
	struct pr_txn *t = wtxn(f), *c;
	struct pr_source s = new_source(t, name);
	int64_t lo = -70 * unit, hi = 250 * unit;

	m.n = 0;
	for (int step = 1; step <= steps; step++) {
		random_step(t, &s, &m, unit);
		check_all(t, &s, &m, lo, hi, 1);
		if (step % 97 == 0) {
			/* Random work in a nested transaction that is thrown away. */
			saved = m;
			assert_int_equal(pr__txn_begin_nested(t, &c), 0);
			for (int i = 0; i < 20; i++) {
				random_step(c, &s, &m, unit);
			}
			pr__txn_abort(c);
			m = saved;
			check_all(t, &s, &m, lo, hi, 1);
		}
		if (step % 250 == 0) {
			assert_int_equal(pr__txn_commit(t), 0);
			t = rtxn(f);
			check_all(t, &s, &m, lo, hi, 0);
			pr__txn_abort(t);
			t = wtxn(f);
		}
	}
	assert_int_equal(pr__txn_commit(t), 0);
	reopen(f);
	t = rtxn(f);
	check_all(t, &s, &m, lo, hi, 0);
	pr__txn_abort(t);

	/* Delete everything: each index is left empty, and the next run's
	 * cross-source checks see only its own source. */
	t = wtxn(f);
	while (m.n > 0) {
		size_t i = rnd() % m.n;

		assert_int_equal(
		    pr__store_partition_del(t, &s, model_provs[m.p[i].prov], m.p[i].r), 0);
		m.p[i] = m.p[--m.n];
	}
	check_all(t, &s, &m, lo, hi, 1);
	assert_int_equal(pr__txn_commit(t), 0);
}

static void
test_indexes_match_brute_force(void **state)
{
	struct fx *f = *state;

	rng_state = UINT64_C(0x9e3779b97f4a7c15);
	run_model(f, "small", 1, 3000);
	/* Hours, so lengths spread over higher classes, and negative times. */
	run_model(f, "hours", INT64_C(3600000000), 1500);
	/* A third source after two emptied ones. */
	run_model(f, "third", 7, 500);
}

/*
 * Runs of tiling partitions (slots of one unit, never overlapping), so that
 * removals take the tiled paths: from either end and splits in the middle,
 * counting the shorter side. Random state changes and deletes, checked
 * against the model after each.
 */
static void
test_runs_tiled(void **state)
{
	static const enum pr_pstate states[] = { PR_PENDING, PR_LOCKED, PR_READY, PR_FAILED };
	static struct model m;
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source s = new_source(t, "tiled");

	rng_state = UINT64_C(0x2545f4914f6cdd1d);
	m.n = 0;
	for (int i = 0; i < 64; i++) {
		m.p[m.n++] = (struct mpart) { i % 7 == 0, { i, i + 1 }, PR_PENDING, 0, 0, 0 };
		struct pr_partition p = mpart_get(&m.p[m.n - 1]);

		assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	}
	check_runs(t, &s, &m);
	for (int step = 0; step < 3000; step++) {
		size_t i = rnd() % m.n;

		if (rnd() % 8 == 0) {
			assert_int_equal(
			    pr__store_partition_del(t, &s, model_provs[m.p[i].prov], m.p[i].r), 0);
			m.p[i].state = states[rnd() % 4];
		} else {
			m.p[i].state = states[rnd() % 4];
		}
		struct pr_partition p = mpart_get(&m.p[i]);

		assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
		check_runs(t, &s, &m);
	}
	assert_int_equal(pr__txn_commit(t), 0);
}

/* ---- events ---- */

static int
collect_event(void *arg, const struct pr_event *ev)
{
	struct pr_event *out = arg;

	out[out[0].fence++ + 1] = *ev;
	return 0;
}

static void
test_events_in_order(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	static struct pr_event got[32];

	for (uint64_t seq = 1; seq <= 10; seq++) {
		struct pr_event ev = { .seq = seq * 2,
			.at = -(int64_t)seq,
			.type = "locked",
			.provider = "p",
			.range = { -5, 5 },
			.state = PR_LOCKED,
			.fence = seq,
			.version = 3,
			.reason = "r" };

		assert_int_equal(pr__store_event_append(t, &a, &ev), 0);
		ev.seq = seq;
		assert_int_equal(pr__store_event_append(t, &b, &ev), 0);
	}
	struct pr_event dup = { .seq = 4, .type = "x" };
	assert_int_equal(pr__store_event_append(t, &a, &dup), PR_EINTERNAL);

	memset(got, 0, sizeof got);
	assert_int_equal(pr__store_event_each(t, &a, 0, collect_event, got), 0);
	assert_int_equal(got[0].fence, 10);
	for (int i = 1; i <= 10; i++) {
		assert_int_equal(got[i].seq, (uint64_t)i * 2);
		assert_string_equal(got[i].source, "a");
		assert_string_equal(got[i].type, "locked");
		assert_string_equal(got[i].provider, "p");
		assert_string_equal(got[i].reason, "r");
		assert_int_equal(got[i].range.start, -5);
		assert_int_equal(got[i].at, -i);
		assert_int_equal(got[i].state, PR_LOCKED);
	}
	memset(got, 0, sizeof got);
	assert_int_equal(pr__store_event_each(t, &a, 7, collect_event, got), 0);
	assert_int_equal(got[0].fence, 7);
	assert_int_equal(got[1].seq, 8);
	memset(got, 0, sizeof got);
	assert_int_equal(pr__store_event_each(t, &a, 20, collect_event, got), 0);
	assert_int_equal(got[0].fence, 0);
	assert_int_equal(pr__store_event_each(t, &a, UINT64_MAX, collect_event, got), 0);
	memset(got, 0, sizeof got);
	assert_int_equal(pr__store_event_each(t, &b, 9, collect_event, got), 0);
	assert_int_equal(got[0].fence, 1);
	assert_int_equal(got[1].seq, 10);
	assert_int_equal(pr__txn_commit(t), 0);
}

/* ---- leases, sessions, tokens, history (issue 3) ---- */

static struct pr_partition
locked(const char *provider, int64_t start, int64_t end, int64_t exp, const char *session)
{
	struct pr_partition p = mkpart(provider, start, end, PR_LOCKED);

	p.expires_at = exp;
	snprintf(p.session, sizeof p.session, "%s", session);
	return p;
}

static int
stop_at_first(void *arg, const struct pr_partition *p)
{
	(void)p;
	++*(size_t *)arg;
	return 55;
}

static void
test_leases_and_sessions(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f), *c;
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	struct pr_partition p;
	struct parts got = { 0 };
	int64_t next;
	size_t n = 0;

	assert_int_equal(pr__store_lease_next(t, &next), PR_ENOTFOUND);
	p = locked("x", 0, 10, 300, "job-1");
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	p = locked("x", 10, 20, -50, "job-2");
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	p = locked("y", 0, 10, 200, "job-1");
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	/* No deadline: not a lease, but still in its session. */
	p = locked("z", 0, 10, 0, "job-1");
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	/* Not locked: neither, whatever its fields say. */
	p = locked("w", 0, 10, 1, "job-1");
	p.state = PR_READY;
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);

	assert_int_equal(pr__store_lease_next(t, &next), 0);
	assert_int_equal(next, -50);
	assert_int_equal(pr__store_leases_due(t, 200, 0, collect_part, &got), 0);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.p[0].source, "b");
	assert_int_equal(got.p[0].expires_at, -50);
	assert_string_equal(got.p[0].session, "job-2");
	assert_string_equal(got.p[1].provider, "y");
	got.n = 0;
	assert_int_equal(pr__store_leases_due(t, INT64_MAX, 1, collect_part, &got), 0);
	assert_int_equal(got.n, 1);
	assert_int_equal(pr__store_leases_due(t, INT64_MAX, 0, stop_at_first, &n), 55);
	assert_int_equal(n, 1);

	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "job-1", collect_part, &got), 0);
	assert_int_equal(got.n, 3);
	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "job-", collect_part, &got), 0);
	assert_int_equal(pr__store_session_each(t, "job-10", collect_part, &got), 0);
	assert_int_equal(got.n, 0);

	/* A renew re-keys the lease; an unlock drops it and the session entry. */
	p = locked("x", 0, 10, -100, "job-1");
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	assert_int_equal(pr__store_lease_next(t, &next), 0);
	assert_int_equal(next, -100);
	p.state = PR_READY;
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	assert_int_equal(pr__store_lease_next(t, &next), 0);
	assert_int_equal(next, -50);
	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "job-1", collect_part, &got), 0);
	assert_int_equal(got.n, 2);

	/* A nested transaction's changes go with its abort. */
	assert_int_equal(pr__txn_begin_nested(t, &c), 0);
	p = locked("x", 0, 10, -1000, "job-9");
	assert_int_equal(pr__store_partition_put(c, &a, &p), 0);
	assert_int_equal(pr__store_partition_del(c, &b, "y", (struct pr_range) { 0, 10 }), 0);
	assert_int_equal(pr__store_lease_next(c, &next), 0);
	assert_int_equal(next, -1000);
	pr__txn_abort(c);
	assert_int_equal(pr__store_lease_next(t, &next), 0);
	assert_int_equal(next, -50);
	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "job-9", collect_part, &got), 0);
	assert_int_equal(pr__store_session_each(t, "job-1", collect_part, &got), 0);
	assert_int_equal(got.n, 2);
	assert_int_equal(pr__txn_commit(t), 0);

	/* Everything survives a reopen; a delete removes the entries. */
	reopen(f);
	t = wtxn(f);
	got.n = 0;
	assert_int_equal(pr__store_leases_due(t, INT64_MAX, 0, collect_part, &got), 0);
	assert_int_equal(got.n, 2);
	assert_int_equal(pr__store_partition_del(t, &b, "x", (struct pr_range) { 10, 20 }), 0);
	assert_int_equal(pr__store_partition_del(t, &b, "y", (struct pr_range) { 0, 10 }), 0);
	assert_int_equal(pr__store_lease_next(t, &next), PR_ENOTFOUND);
	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "job-1", collect_part, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.p[0].provider, "z");
	assert_int_equal(pr__txn_commit(t), 0);
	free(got.p);
}

static void
test_tokens(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f), *c;
	uint8_t d1[PR_DIGEST_LEN], d2[PR_DIGEST_LEN], d3[PR_DIGEST_LEN];
	char src[PR_NAME_MAX + 1], prov[PR_NAME_MAX + 1], longname[PR_NAME_MAX + 2];

	memset(d1, 1, sizeof d1);
	memset(d2, 2, sizeof d2);
	memset(d3, 3, sizeof d3);
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(pr__store_token_put(t, d1, "orders", ""), 0);
	assert_int_equal(pr__store_token_put(t, d2, "orders", "dag-1"), 0);
	assert_int_equal(pr__store_token_get(t, d1, src, prov), 0);
	assert_string_equal(src, "orders");
	assert_string_equal(prov, "");
	assert_int_equal(pr__store_token_get(t, d2, src, prov), 0);
	assert_string_equal(prov, "dag-1");
	assert_int_equal(pr__store_token_get(t, d3, src, prov), PR_ENOTFOUND);
	assert_string_equal(src, "");
	assert_int_equal(pr__store_token_put(t, d3, "", "p"), PR_ENAME);
	assert_int_equal(pr__store_token_put(t, d3, longname, ""), PR_ENAME);
	assert_int_equal(pr__store_token_put(t, d3, "s", longname), PR_ENAME);
	longname[PR_NAME_MAX] = '\0';
	assert_int_equal(pr__store_token_put(t, d3, longname, longname), 0);
	assert_int_equal(pr__store_token_get(t, d3, src, prov), 0);
	assert_string_equal(src, longname);
	assert_string_equal(prov, longname);
	/* Put replaces. */
	assert_int_equal(pr__store_token_put(t, d2, "other", "dag-2"), 0);
	assert_int_equal(pr__store_token_get(t, d2, src, prov), 0);
	assert_string_equal(src, "other");
	assert_string_equal(prov, "dag-2");
	assert_int_equal(pr__txn_commit(t), 0);

	reopen(f);
	t = wtxn(f);
	assert_int_equal(pr__store_token_get(t, d2, src, prov), 0);
	assert_string_equal(src, "other");
	/* A rotated token: del, and an aborted del leaves it. */
	assert_int_equal(pr__txn_begin_nested(t, &c), 0);
	assert_int_equal(pr__store_token_del(c, d1), 0);
	assert_int_equal(pr__store_token_get(c, d1, src, prov), PR_ENOTFOUND);
	pr__txn_abort(c);
	assert_int_equal(pr__store_token_get(t, d1, src, prov), 0);
	assert_int_equal(pr__store_token_del(t, d1), 0);
	assert_int_equal(pr__store_token_del(t, d1), PR_ENOTFOUND);
	assert_int_equal(pr__store_token_get(t, d1, src, prov), PR_ENOTFOUND);
	assert_int_equal(pr__txn_commit(t), 0);
}

#define NEV 60

static const char *const ev_provs[] = { "", "p1", "p2" };
static const struct pr_range ev_ranges[] = { { 0, 0 }, { 0, 10 }, { 10, 20 }, { 0, 20 } };

/* Event i of the test log: seq with gaps, times not monotonic in seq. */
static struct pr_event
test_event(int i)
{
	struct pr_event ev;

	memset(&ev, 0, sizeof ev);
	ev.seq = (uint64_t)(i * 3 + i % 2 + 1);
	ev.at = (int64_t)i * 10 - 200 + (i % 5 == 0 ? 35 : 0);
	snprintf(ev.type, sizeof ev.type, "%s", i % 2 ? "locked" : "unlocked");
	snprintf(ev.provider, sizeof ev.provider, "%s", ev_provs[i % 3]);
	ev.range = ev_ranges[i % 4];
	ev.state = (enum pr_pstate)(i % 5);
	ev.fence = (uint64_t)i;
	ev.version = (uint64_t)i / 2;
	return ev;
}

struct evs {
	uint64_t seq[4 * NEV];
	size_t n;
	int stop_at;
};

static int
collect_ev(void *arg, const struct pr_event *ev)
{
	struct evs *e = arg;

	assert_true(e->n < 4 * NEV);
	e->seq[e->n++] = ev->seq;
	return e->stop_at > 0 && (int)e->n == e->stop_at ? 66 : 0;
}

static int
naive_match(const struct pr_event_filter *f, const struct pr_event *ev)
{
	return ev->seq > f->since_seq && (!f->has_from || ev->at >= f->from)
	    && (!f->has_to || ev->at < f->to)
	    && (f->provider == NULL || f->provider[0] == '\0'
	        || strcmp(f->provider, ev->provider) == 0)
	    && ((f->range.start == 0 && f->range.end == 0)
	        || (f->range.start == ev->range.start && f->range.end == ev->range.end));
}

static void
test_event_query(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	static struct evs all, paged;
	char cursor[PR_CURSOR_MAX], next[PR_CURSOR_MAX];
	int nfilters = 0;

	for (int i = 0; i < NEV; i++) {
		struct pr_event ev = test_event(i);

		assert_int_equal(pr__store_event_append(t, &a, &ev), 0);
		ev.provider[0] = '\0';
		assert_int_equal(pr__store_event_append(t, &b, &ev), 0);
	}
	/* Every combination of the filter fields against the naive filter. */
	for (int since = 0; since < 3; since++) {
		for (int win = 0; win < 4; win++) {
			for (int pv = 0; pv < 4; pv++) {
				for (int rg = 0; rg < 4; rg++) {
					struct pr_event_filter flt = {
						.since_seq = (uint64_t)since * 50,
						.from = win & 1 ? -100 : 0,
						.to = win & 2 ? 150 : 0,
						.has_from = win & 1,
						.has_to = win & 2,
						.provider = pv == 3 ? NULL : ev_provs[pv],
						.range = ev_ranges[rg],
					};
					size_t want = 0;
					int pages = 0;

					all.n = 0;
					assert_int_equal(pr__store_event_query(t, &a, &flt, NULL, 0,
					                     collect_ev, &all, next),
					    0);
					assert_string_equal(next, "");
					for (int i = 0; i < NEV; i++) {
						struct pr_event ev = test_event(i);

						if (naive_match(&flt, &ev)) {
							assert_true(want < all.n);
							assert_int_equal(all.seq[want], ev.seq);
							want++;
						}
					}
					assert_int_equal(all.n, want);

					/* Pages of 3 cover the same events, each once. */
					paged.n = 0;
					cursor[0] = '\0';
					do {
						size_t before = paged.n;

						assert_int_equal(
						    pr__store_event_query(t, &a, &flt, cursor, 3,
						        collect_ev, &paged, cursor),
						    0);
						assert_true(paged.n - before <= 3);
						assert_true(paged.n > before || all.n == 0);
						pages++;
					} while (cursor[0] != '\0');
					assert_int_equal(
					    pages, all.n == 0 ? 1 : (int)(all.n + 2) / 3);
					assert_int_equal(paged.n, all.n);
					assert_memory_equal(
					    paged.seq, all.seq, all.n * sizeof all.seq[0]);
					nfilters++;
				}
			}
		}
	}
	assert_int_equal(nfilters, 192);

	/* NULL filter; other source; stop by cb and resume. */
	all.n = 0;
	assert_int_equal(pr__store_event_query(t, &a, NULL, "", 0, collect_ev, &all, NULL), 0);
	assert_int_equal(all.n, NEV);
	struct pr_event_filter p1 = { .provider = "p1" };
	all.n = 0;
	assert_int_equal(pr__store_event_query(t, &b, &p1, NULL, 0, collect_ev, &all, next), 0);
	assert_int_equal(all.n, 0);
	all.n = 0;
	all.stop_at = 2;
	assert_int_equal(pr__store_event_query(t, &a, &p1, NULL, 10, collect_ev, &all, next), 66);
	all.stop_at = 0;
	assert_int_equal(pr__store_event_query(t, &a, &p1, next, 1, collect_ev, &all, next), 0);
	assert_int_equal(all.n, 3);
	assert_true(all.seq[0] < all.seq[1] && all.seq[1] < all.seq[2]);
	assert_int_equal(test_event(1).seq, all.seq[0]);
	assert_int_equal(test_event(7).seq, all.seq[2]);

	const char *bad[] = { "x", "e", "e00", "p0000000000000001", "e000000000000000g",
		"e00000000000000001", "E0000000000000001" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    pr__store_event_query(t, &a, NULL, bad[i], 3, collect_ev, &all, next),
		    PR_ECURSOR);
		assert_string_equal(next, "");
	}
	pr__txn_abort(t);
}

static void
test_event_prune(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f), *c;
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	static struct evs got;
	size_t removed;

	for (int i = 0; i < NEV; i++) {
		struct pr_event ev = test_event(i);

		assert_int_equal(pr__store_event_append(t, &a, &ev), 0);
		assert_int_equal(pr__store_event_append(t, &b, &ev), 0);
	}
	assert_int_equal(pr__txn_commit(t), 0);

	/* By age: test_event(0) is at -165, 1..4 at -190..-160: the walk stops
	 * at the first event kept, oldest (lowest seq) first. */
	t = wtxn(f);
	assert_int_equal(pr__store_event_prune(t, &a, -170, 0, 0, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(pr__store_event_prune(t, &a, -150, 0, 0, &removed), 0);
	assert_int_equal(removed, 5); /* events 0..4; 5 is at -115 */
	/* At most max at a time. */
	assert_int_equal(pr__store_event_prune(t, &a, -50, 0, 2, &removed), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(pr__store_event_prune(t, &a, -50, 0, 0, &removed), 0);
	assert_int_equal(removed, 8); /* 7..14; 15 is at -15 + 35 */
	got.n = 0;
	assert_int_equal(pr__store_event_each(t, &a, 0, collect_ev, &got), 0);
	assert_int_equal(got.n, NEV - 15);
	assert_int_equal(got.seq[0], test_event(15).seq);
	/* By count: NEV - 15 = 45 remain; keep 40. */
	assert_int_equal(pr__store_event_prune(t, &a, INT64_MIN, 40, 0, &removed), 0);
	assert_int_equal(removed, 5);
	assert_int_equal(pr__store_event_prune(t, &a, INT64_MIN, 40, 0, NULL), 0);
	got.n = 0;
	assert_int_equal(pr__store_event_each(t, &a, 0, collect_ev, &got), 0);
	assert_int_equal(got.n, 40);
	assert_int_equal(got.seq[0], test_event(20).seq);
	/* The other source is untouched. */
	got.n = 0;
	assert_int_equal(pr__store_event_each(t, &b, 0, collect_ev, &got), 0);
	assert_int_equal(got.n, NEV);
	/* An aborted prune leaves events and count as they were. */
	assert_int_equal(pr__txn_begin_nested(t, &c), 0);
	assert_int_equal(pr__store_event_prune(c, &a, INT64_MIN, 1, 0, &removed), 0);
	assert_int_equal(removed, 39);
	pr__txn_abort(c);
	assert_int_equal(pr__txn_commit(t), 0);

	/* The count survives a reopen and follows later appends. */
	reopen(f);
	t = wtxn(f);
	for (int i = NEV; i < NEV + 10; i++) {
		struct pr_event ev = test_event(i);

		assert_int_equal(pr__store_event_append(t, &a, &ev), 0);
	}
	assert_int_equal(pr__store_event_prune(t, &a, INT64_MIN, 45, 0, &removed), 0);
	assert_int_equal(removed, 5);
	/* Age and count together: whichever removes more. */
	assert_int_equal(pr__store_event_prune(t, &a, 200, 40, 0, &removed), 0);
	assert_int_equal(removed, 15); /* 25..39 are older than 200 (5 by count alone) */
	assert_int_equal(pr__store_event_prune(t, &b, INT64_MAX, 0, 0, &removed), 0);
	assert_int_equal(removed, NEV);
	got.n = 0;
	assert_int_equal(pr__store_event_each(t, &b, 0, collect_ev, &got), 0);
	assert_int_equal(got.n, 0);
	struct pr_event ev = test_event(NEV + 20);
	assert_int_equal(pr__store_event_append(t, &b, &ev), 0);
	assert_int_equal(pr__store_event_prune(t, &b, INT64_MIN, 1, 0, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(pr__txn_commit(t), 0);
}

static struct pr_partition
tomb(const char *provider, int64_t start, int64_t end, int64_t since)
{
	struct pr_partition p = mkpart(provider, start, end, PR_DELETED);

	p.since = since;
	return p;
}

static void
test_tombstone_prune(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	struct pr_partition p, q;
	struct ranges rs = { .n = 0 };
	size_t removed;

	p = tomb("x", 0, 10, 100);
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	p = tomb("x", 10, 20, -100);
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	p = tomb("y", 10, 20, 50);
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	p = tomb("z", 10, 20, 500);
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	/* Deleted, then undeleted: no longer a tombstone. */
	p = tomb("w", 0, 5, 1);
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	p.state = PR_READY;
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	/* A tombstone re-deleted later moves to its new time. */
	p = tomb("v", 0, 5, 2);
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	p.since = 1000;
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	assert_int_equal(pr__txn_commit(t), 0);

	reopen(f);
	t = wtxn(f);
	assert_int_equal(pr__store_tombstone_prune(t, -100, 0, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(pr__store_tombstone_prune(t, 101, 2, &removed), 0);
	assert_int_equal(removed, 2); /* the oldest: b/x at -100, a/y at 50 */
	assert_int_equal(
	    pr__store_partition_get(t, &b, "x", (struct pr_range) { 10, 20 }, &q), PR_ENOPARTITION);
	assert_int_equal(
	    pr__store_partition_get(t, &a, "y", (struct pr_range) { 10, 20 }, &q), PR_ENOPARTITION);
	assert_int_equal(pr__store_partition_get(t, &a, "x", (struct pr_range) { 0, 10 }, &q), 0);
	assert_int_equal(pr__store_tombstone_prune(t, 999, 0, &removed), 0);
	assert_int_equal(removed, 2); /* a/x at 100, a/z at 500 */
	assert_int_equal(pr__store_partition_get(t, &a, "w", (struct pr_range) { 0, 5 }, &q), 0);
	assert_int_equal(pr__store_partition_get(t, &b, "v", (struct pr_range) { 0, 5 }, &q), 0);
	assert_int_equal(pr__store_tombstone_prune(t, INT64_MAX, 0, NULL), 0);
	assert_int_equal(
	    pr__store_partition_get(t, &b, "v", (struct pr_range) { 0, 5 }, &q), PR_ENOPARTITION);
	/* The ready partition and its union are untouched; a pruned key is free. */
	assert_int_equal(
	    pr__store_ready_each(t, &a, (struct pr_range) { 0, 100 }, collect_range, &rs), 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].end, 5);
	p = mkpart("x", 0, 10, PR_PENDING);
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	assert_int_equal(pr__store_tombstone_prune(t, INT64_MAX, 0, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(pr__txn_commit(t), 0);
}

/*
 * A store written before the cross-source indexes and event counts existed:
 * simulated by emptying the indexes and removing the version mark and a
 * count through LMDB itself. Opening builds the indexes from the partitions;
 * the count is taken by a scan when first needed.
 */
static void
test_xindex_rebuilt_on_open(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	struct pr_source a = new_source(t, "a"), b = new_source(t, "b");
	struct pr_partition p;
	struct parts got = { 0 };
	const char *names[] = { "leases", "sessions", "tombstones", "runs" };
	struct runs *runs = calloc(1, sizeof *runs);
	MDB_env *env;
	MDB_txn *mt;
	MDB_dbi dbi;
	MDB_val k = { 14, (void *)"xindex_version" };
	uint8_t ckey[9] = { 'E' };
	MDB_val ck = { sizeof ckey, ckey };
	int64_t next;
	size_t removed;

	p = locked("x", 0, 10, 70, "job");
	assert_int_equal(pr__store_partition_put(t, &a, &p), 0);
	p = locked("x", 0, 10, 60, "");
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	p = tomb("y", 0, 10, 5);
	assert_int_equal(pr__store_partition_put(t, &b, &p), 0);
	for (int i = 0; i < 10; i++) {
		struct pr_event ev = test_event(i);

		assert_int_equal(pr__store_event_append(t, &a, &ev), 0);
	}
	assert_int_equal(pr__txn_commit(t), 0);
	for (int i = 0; i < 8; i++) {
		ckey[1 + i] = (uint8_t)(a.id >> (56 - 8 * i));
	}
	pr__store_close(f->st);
	f->st = NULL;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &mt), 0);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		assert_int_equal(mdb_dbi_open(mt, names[i], 0, &dbi), 0);
		assert_int_equal(mdb_drop(mt, dbi, 1), 0);
	}
	assert_int_equal(mdb_dbi_open(mt, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_del(mt, dbi, &k, NULL), 0);
	assert_int_equal(mdb_del(mt, dbi, &ck, NULL), 0);
	assert_int_equal(mdb_txn_commit(mt), 0);
	mdb_env_close(env);

	open_store(f);
	t = wtxn(f);
	assert_int_equal(pr__store_lease_next(t, &next), 0);
	assert_int_equal(next, 60);
	assert_int_equal(pr__store_leases_due(t, INT64_MAX, 0, collect_part, &got), 0);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.p[1].source, "a");
	got.n = 0;
	assert_int_equal(pr__store_session_each(t, "job", collect_part, &got), 0);
	assert_int_equal(got.n, 1);
	assert_non_null(runs);
	assert_int_equal(pr__store_runs_each(t, &a, collect_run, runs), 0);
	assert_int_equal(runs->n, 1);
	assert_int_equal(runs->r[0].state, PR_LOCKED);
	assert_int_equal(runs->r[0].count, 1);
	assert_int_equal(runs->r[0].range.end, 10);
	free(runs);
	assert_int_equal(pr__store_tombstone_prune(t, INT64_MAX, 0, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(pr__store_event_prune(t, &a, INT64_MIN, 7, 0, &removed), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(pr__txn_commit(t), 0);
	free(got.p);
}

/* ---- idempotency records ---- */

static void
test_idem_put_get_prune(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = wtxn(f);
	char cmd[64], id[16];
	char *reply;
	size_t len, removed;
	static char big[100000];

	memset(big, 'x', sizeof big);
	assert_int_equal(pr__store_idem_put(t, "a", "partition/lock", "{\"ok\":1}", 8, 100), 0);
	assert_int_equal(pr__store_idem_get(t, "a", cmd, &reply, &len), 0);
	assert_string_equal(cmd, "partition/lock");
	assert_int_equal(len, 8);
	assert_string_equal(reply, "{\"ok\":1}");
	free(reply);
	/* The first reply stays. */
	assert_int_equal(pr__store_idem_put(t, "a", "partition/unlock", "{}", 2, 101), PR_EREQID);
	assert_int_equal(pr__store_idem_get(t, "a", cmd, &reply, &len), 0);
	assert_string_equal(cmd, "partition/lock");
	free(reply);
	/* Large and empty replies. */
	assert_int_equal(pr__store_idem_put(t, "big", "c", big, sizeof big, 100), 0);
	assert_int_equal(pr__store_idem_get(t, "big", cmd, &reply, &len), 0);
	assert_int_equal(len, sizeof big);
	assert_memory_equal(reply, big, sizeof big);
	assert_int_equal(reply[len], '\0');
	free(reply);
	assert_int_equal(pr__store_idem_put(t, "empty", "c", "", 0, -100), 0);
	assert_int_equal(pr__store_idem_get(t, "empty", cmd, &reply, &len), 0);
	assert_int_equal(len, 0);
	free(reply);
	assert_int_equal(pr__store_idem_get(t, "missing", cmd, &reply, &len), PR_ENOTFOUND);
	assert_int_equal(pr__store_idem_put(t, "", "c", "", 0, 0), PR_EFIELD);

	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof id, "r%d", i);
		assert_int_equal(pr__store_idem_put(t, id, "c", "{}", 2, 200 + i), 0);
	}
	assert_int_equal(pr__txn_commit(t), 0);

	t = wtxn(f);
	/* Older than 205: empty (-100), a and big (100), r0..r4; at most 4 now. */
	assert_int_equal(pr__store_idem_prune(t, 205, 4, &removed), 0);
	assert_int_equal(removed, 4);
	assert_int_equal(pr__store_idem_get(t, "empty", cmd, &reply, &len), PR_ENOTFOUND);
	assert_int_equal(pr__store_idem_prune(t, 205, 0, &removed), 0);
	assert_int_equal(removed, 4);
	assert_int_equal(pr__store_idem_prune(t, 205, 0, NULL), 0);
	assert_int_equal(pr__store_idem_get(t, "a", cmd, &reply, &len), PR_ENOTFOUND);
	assert_int_equal(pr__store_idem_get(t, "r4", cmd, &reply, &len), PR_ENOTFOUND);
	assert_int_equal(pr__store_idem_get(t, "r5", cmd, &reply, &len), 0);
	free(reply);
	assert_int_equal(pr__txn_commit(t), 0);
	/* A pruned id is free again. */
	t = wtxn(f);
	assert_int_equal(pr__store_idem_put(t, "a", "c", "{}", 2, 300), 0);
	assert_int_equal(pr__txn_commit(t), 0);
}

/* ---- scale ---- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * 200k daily partitions (every 10th day missing, every 1000th pending).
 * A window in the middle must visit only the ranges and blockers it
 * overlaps, whatever the history; timings are printed, not asserted.
 */
static void
test_scale_daily(void **state)
{
	struct fx *f = *state;
	const int64_t day = INT64_C(86400000000), base = INT64_C(946684800000000);
	const int total = 200000, batch = 10000;
	struct pr_txn *t = wtxn(f);
	struct pr_source s = new_source(t, "daily");
	struct ranges rs = { .n = 0 };
	size_t nb = 0, nr;
	double t0, t1, t2;
	int n = 0;

	assert_int_equal(pr__txn_commit(t), 0);
	t0 = now_s();
	for (int i0 = 0; i0 < total; i0 += batch) {
		t = wtxn(f);
		for (int i = i0; i < i0 + batch; i++) {
			struct pr_partition p;

			if (i % 10 == 9) {
				continue;
			}
			p = mkpart("etl", base + i * day, base + (i + 1) * day,
			    i % 1000 == 500 ? PR_PENDING : PR_READY);
			assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
			n++;
		}
		assert_int_equal(pr__txn_commit(t), 0);
	}
	t1 = now_s();

	t = rtxn(f);
	/* Days [100495, 100510): ready [100490, 100499) and [100501, 100509);
	 * day 100499 missing, 100500 pending, 100509 missing. */
	struct pr_range want = { base + 100495 * day, base + 100510 * day };
	assert_int_equal(pr__store_ready_each(t, &s, want, collect_range, &rs), 0);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].start, base + 100490 * day);
	assert_int_equal(rs.r[0].end, base + 100499 * day);
	assert_int_equal(rs.r[1].start, base + 100501 * day);
	assert_int_equal(rs.r[1].end, base + 100509 * day);
	assert_int_equal(pr__store_blockers_each(t, &s, want, count_part, &nb), 0);
	assert_int_equal(nb, 1);

	t2 = now_s();
	nr = 0;
	for (int i = 0; i < 10000; i++) {
		struct pr_range w
		    = { base + (50000 + i * 10) * day, base + (50030 + i * 10) * day };

		assert_int_equal(pr__store_ready_each(t, &s, w, count_range, &nr), 0);
		assert_int_equal(pr__store_blockers_each(t, &s, w, count_part, &nb), 0);
	}
	assert_int_equal(nr, 10000 * 3);
	print_message("scale: %d partitions put in %.2f s (%.0f/s, batches of %d); "
	              "30-day ready+blockers query %.1f us\n",
	    n, t1 - t0, n / (t1 - t0), batch, (now_s() - t2) / 10000 * 1e6);
	pr__txn_abort(t);

	/* Making the pending day ready joins its neighbours into one range. */
	t = wtxn(f);
	struct pr_partition p = mkpart("etl", base + 100500 * day, base + 100501 * day, PR_READY);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	rs.n = 0;
	assert_int_equal(pr__store_ready_each(t, &s, want, collect_range, &rs), 0);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[0].end, base + 100499 * day);
	assert_int_equal(rs.r[1].start, base + 100500 * day);
	pr__txn_abort(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_open_creates_dir_and_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_rises_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_list_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_put_get_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_list_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_and_extreme_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_abort_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indexes_match_brute_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases_and_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_tiled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tombstone_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xindex_rebuilt_on_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idem_put_get_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_daily, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
