/* SPDX-License-Identifier: MIT */
/*
 * The store's replication (store_capture.c), the etcd backend's half that
 * needs no etcd: what a capturing transaction records, and that applying
 * those records to an empty store (a read index) gives the same registry,
 * every index included. Two real LMDB stores in temporary directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <partreg/error.h>
#include "store.h"
#include "tmpdir.h"

#define DAY INT64_C(86400000000)

struct fx {
	char dir_a[1024], dir_b[1024];
	struct pr_store *a; /* the writer (capturing) */
	struct pr_store *b; /* the read index (applying) */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	if (f == NULL) {
		return -1;
	}
	tmpdir_make(f->dir_a, "test_capture_a");
	tmpdir_make(f->dir_b, "test_capture_b");
	assert_int_equal(pr__store_open(f->dir_a, NULL, &f->a), 0);
	assert_int_equal(pr__store_open(f->dir_b, NULL, &f->b), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	pr__store_close(f->a);
	pr__store_close(f->b);
	tmpdir_remove(f->dir_a);
	tmpdir_remove(f->dir_b);
	free(f);
	return 0;
}

static struct pr_txn *
capturing(struct pr_store *st)
{
	struct pr_txn *t;

	assert_int_equal(pr__txn_begin(st, 1, &t), 0);
	assert_int_equal(pr__txn_capture(t), 0);
	return t;
}

static struct pr_partition
part(const char *provider, int64_t day, enum pr_pstate state, const char *session)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	snprintf(p.provider, sizeof p.provider, "%s", provider);
	p.range.start = day * DAY;
	p.range.end = (day + 1) * DAY;
	p.state = state;
	p.fence = (uint64_t)day + 1;
	p.version = 3;
	p.since = 5;
	p.expires_at = state == PR_LOCKED ? 1000 + day : 0;
	snprintf(p.session, sizeof p.session, "%s", session);
	return p;
}

/* Apply every op of cap to st, in order (a later write of a key wins, as
 * in the one etcd transaction pr__replica_commit makes of them). */
static void
apply_all(struct pr_store *st, const struct pr_capture *cap, int64_t rev)
{
	struct pr_txn *t;

	assert_int_equal(pr__txn_begin(st, 1, &t), 0);
	/* Sources first, as pr__replica_commit orders them. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < cap->nops; i++) {
			const struct pr_store_op *op = &cap->ops[i];
			struct pr_applied a;

			if ((op->key[0] == 's') == (pass == 0)) {
				assert_int_equal(pr__store_apply(t, op->key, op->key_len, op->val,
				                     op->val_len, rev, &a),
				    0);
			}
		}
	}
	assert_int_equal(pr__store_applied_put(t, rev), 0);
	assert_int_equal(pr__txn_commit(t), 0);
}

/* ---- what both stores hold, as text ---- */

struct dump {
	char buf[65536];
	size_t len;
};

static void out(struct dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out(struct dump *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(d->buf + d->len, sizeof d->buf - d->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof d->buf - d->len);
	d->len += (size_t)n;
}

static int
dump_part(void *arg, const struct pr_partition *p)
{
	out(arg, "part %s %s %lld %lld %d v%llu f%llu s%llu exp%lld sess=%s reason=%s\n", p->source,
	    p->provider, (long long)p->range.start, (long long)p->range.end, (int)p->state,
	    (unsigned long long)p->version, (unsigned long long)p->fence,
	    (unsigned long long)p->seq, (long long)p->expires_at, p->session, p->reason);
	return 0;
}

static int
dump_range(void *arg, struct pr_range r)
{
	out(arg, "ready %lld %lld\n", (long long)r.start, (long long)r.end);
	return 0;
}

static int
dump_run(void *arg, const struct pr_run *r)
{
	out(arg, "run %s %d %lld %lld n%llu\n", r->provider, (int)r->state,
	    (long long)r->range.start, (long long)r->range.end, (unsigned long long)r->count);
	return 0;
}

static int
dump_event(void *arg, const struct pr_event *ev)
{
	out(arg, "event %llu %s %s e%llu\n", (unsigned long long)ev->seq, ev->type, ev->provider,
	    (unsigned long long)ev->epoch);
	return 0;
}

static void
dump_store(struct pr_store *st, const uint8_t digest[PR_DIGEST_LEN], struct dump *d)
{
	struct pr_range all = { 0, 100 * DAY };
	struct pr_txn *t;
	struct pr_source s;
	struct pr_provider p;
	char src[PR_NAME_MAX + 1], prov[PR_NAME_MAX + 1], cmd[64], *reply = NULL;
	size_t rlen = 0;
	int64_t next = 0;

	memset(d, 0, sizeof *d);
	assert_int_equal(pr__txn_begin(st, 0, &t), 0);
	assert_int_equal(pr__store_source_get(t, "sales", &s), 0);
	out(d, "source %s id%llu %s seq%llu fence%llu\n", s.name, (unsigned long long)s.id, s.owner,
	    (unsigned long long)s.seq, (unsigned long long)s.fence);
	assert_int_equal(pr__store_provider_get(t, &s, "p1", &p), 0);
	out(d, "provider %s %lld\n", p.name, (long long)p.created_at);
	assert_int_equal(pr__store_partition_list(t, &s, NULL, 0, dump_part, d, NULL), 0);
	assert_int_equal(pr__store_ready_each(t, &s, all, dump_range, d), 0);
	assert_int_equal(pr__store_runs_each(t, &s, dump_run, d), 0);
	assert_int_equal(pr__store_event_each(t, &s, 0, dump_event, d), 0);
	out(d, "sessions:\n");
	assert_int_equal(pr__store_session_each(t, "job-1", dump_part, d), 0);
	out(d, "leases:\n");
	assert_int_equal(pr__store_leases_due(t, INT64_MAX, 0, dump_part, d), 0);
	assert_int_equal(pr__store_lease_next(t, &next), 0);
	out(d, "next lease %lld\n", (long long)next);
	assert_int_equal(pr__store_token_get(t, digest, src, prov), 0);
	out(d, "token %s/%s\n", src, prov);
	assert_int_equal(pr__store_idem_get(t, "req-1", cmd, &reply, &rlen), 0);
	out(d, "idem %s %.*s\n", cmd, (int)rlen, reply);
	free(reply);
	pr__txn_abort(t);
}

/* A registry written in a capturing transaction, applied to an empty
 * store: both hold the same, every index included. */
static void
test_apply_gives_the_same_registry(void **state)
{
	struct fx *f = *state;
	uint8_t digest[PR_DIGEST_LEN] = { 7, 7, 7 };
	struct pr_txn *t = capturing(f->a);
	struct pr_source s;
	struct pr_provider p = { .name = "p1", .created_at = 42 };
	struct dump da, db;

	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "sales");
	snprintf(s.owner, sizeof s.owner, "bob");
	assert_int_equal(pr__store_source_put(t, &s), 0);
	assert_true(s.id != 0);
	assert_int_equal(pr__store_provider_put(t, &s, &p), 0);
	assert_int_equal(pr__store_token_put(t, digest, "sales", "p1"), 0);
	{
		struct pr_partition ps[] = { part("p1", 1, PR_READY, ""),
			part("p1", 2, PR_READY, ""), part("p1", 3, PR_LOCKED, "job-1"),
			part("p1", 4, PR_FAILED, ""), part("p1", 5, PR_LOCKED, ""),
			part("p1", 6, PR_PENDING, ""), part("p1", 7, PR_DELETED, "") };

		for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
			struct pr_event ev = { .seq = i + 1, .epoch = 9, .type = "registered" };

			ps[i].seq = i + 1;
			assert_int_equal(pr__store_partition_put(t, &s, &ps[i]), 0);
			snprintf(ev.provider, sizeof ev.provider, "p1");
			assert_int_equal(pr__store_event_append(t, &s, &ev), 0);
		}
		/* A partition written twice: the last write counts. */
		ps[1].state = PR_LOCKED;
		ps[1].expires_at = 777;
		snprintf(ps[1].session, sizeof ps[1].session, "job-1");
		assert_int_equal(pr__store_partition_put(t, &s, &ps[1]), 0);
		/* One removed. */
		assert_int_equal(pr__store_partition_del(t, &s, "p1", ps[4].range), 0);
	}
	s.seq = 7;
	s.fence = 8;
	assert_int_equal(pr__store_source_put(t, &s), 0);
	assert_int_equal(
	    pr__store_idem_put(t, "req-1", "partition/lock", "{\"ok\":true}", 11, 5), 0);
	{
		const struct pr_capture *cap = pr__txn_captured(t);

		assert_non_null(cap);
		assert_int_equal(cap->err, 0);
		assert_true(cap->nops >= 20);
		apply_all(f->b, cap, 17);
	}
	assert_int_equal(pr__txn_commit(t), 0);
	dump_store(f->a, digest, &da);
	dump_store(f->b, digest, &db);
	assert_string_equal(da.buf, db.buf);
	/* and not trivially: the dump holds the indexes' answers */
	assert_non_null(strstr(db.buf, "ready "));
	assert_non_null(strstr(db.buf, "run p1"));
	assert_non_null(strstr(db.buf, "sessions:\npart sales p1"));
	{
		struct pr_txn *r;
		int64_t rev = 0;

		assert_int_equal(pr__txn_begin(f->b, 0, &r), 0);
		assert_int_equal(pr__store_applied_get(r, &rev), 0);
		pr__txn_abort(r);
		assert_int_equal(rev, 17);
	}
}

/* What a nested transaction wrote goes with its abort; what it read stays
 * a guard of the top-level one. */
static void
test_nested_abort_keeps_guards_not_ops(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t = capturing(f->a), *n;
	struct pr_source s;
	struct pr_partition p = part("p1", 1, PR_PENDING, "");

	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "sales");
	assert_int_equal(pr__store_source_put(t, &s), 0);
	assert_int_equal(pr__txn_commit(t), 0);

	t = capturing(f->a);
	assert_int_equal(pr__txn_begin_nested(t, &n), 0);
	assert_int_equal(pr__store_source_get(n, "sales", &s), 0);
	assert_int_equal(pr__store_partition_put(n, &s, &p), 0);
	pr__txn_abort(n);
	assert_int_equal(pr__txn_captured(t)->nops, 0);
	assert_int_equal(pr__txn_captured(t)->nguards, 1);
	assert_memory_equal(pr__txn_captured(t)->guards[0].key, "gsales", 6);

	assert_int_equal(pr__txn_begin_nested(t, &n), 0);
	assert_int_equal(pr__store_source_get(n, "sales", &s), 0);
	assert_int_equal(pr__store_partition_put(n, &s, &p), 0);
	assert_int_equal(pr__txn_commit(n), 0);
	assert_int_equal(pr__txn_captured(t)->nops, 1);
	assert_int_equal(pr__txn_captured(t)->ops[0].key[0], 't');
	/* the partition raises its source's guard */
	assert_int_equal(pr__txn_captured(t)->ops[0].guard[0], 0);
	pr__txn_abort(t);
}

/* A guard reads as the revision the store applied for it; a session's
 * locks have a guard of their own; an idempotency record must be new. */
static void
test_guards_and_create_only(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t;
	struct pr_applied a;
	struct pr_source s;
	struct pr_partition p = part("p1", 1, PR_LOCKED, "job-9");
	const struct pr_capture *cap;

	assert_int_equal(pr__txn_begin(f->b, 1, &t), 0);
	assert_int_equal(
	    pr__store_apply(t, (const uint8_t *)"gsales", 6, (const uint8_t *)"", 0, 42, &a), 0);
	assert_int_equal(a.kind, 'g');
	assert_string_equal(a.source, "sales");
	assert_int_equal(pr__txn_commit(t), 0);

	t = capturing(f->b);
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "sales");
	assert_int_equal(pr__store_source_get(t, "sales", &s), PR_ENOSOURCE);
	cap = pr__txn_captured(t);
	assert_int_equal(cap->nguards, 1);
	assert_int_equal(cap->guards[0].rev, 42);
	assert_int_equal(pr__store_source_put(t, &s), 0);
	assert_int_equal(pr__store_partition_put(t, &s, &p), 0);
	{
		struct dump *d = calloc(1, sizeof *d);

		assert_non_null(d);
		assert_int_equal(pr__store_session_each(t, "job-9", dump_part, d), 0);
		assert_non_null(strstr(d->buf, "sess=job-9"));
		free(d);
	}
	assert_int_equal(pr__store_idem_put(t, "req-9", "partition/lock", "{}", 2, 1), 0);
	cap = pr__txn_captured(t);
	/* gsales and the session's bucket */
	assert_int_equal(cap->nguards, 2);
	assert_int_equal(cap->guards[1].key[0], 'h');
	assert_int_equal(cap->guards[1].rev, 0);
	for (size_t i = 0; i < cap->nops; i++) {
		const struct pr_store_op *op = &cap->ops[i];

		assert_int_equal(op->create_only, op->key[0] == 'i');
		if (op->key[0] == 't') {
			assert_int_equal(op->guard[0], 0);
			assert_int_equal(op->guard[2], 1); /* the new lock's session */
		}
	}
	pr__txn_abort(t);
}

/* Records a read index cannot place are refused; keys that are no
 * records are ignored; clear empties the store. */
static void
test_bad_records_and_clear(void **state)
{
	struct fx *f = *state;
	struct pr_txn *t;
	struct pr_applied a;
	struct pr_source s;
	static const uint8_t orphan[] = "pnobody\0p1";
	static const uint8_t junk_val[] = { 99, 1, 2 };
	int64_t rev = 0;

	assert_int_equal(pr__txn_begin(f->b, 1, &t), 0);
	assert_int_equal(
	    pr__store_apply(t, orphan, sizeof orphan - 1, junk_val, 3, 1, &a), PR_ESTORE);
	assert_int_equal(
	    pr__store_apply(t, (const uint8_t *)"ssales", 6, junk_val, 3, 1, &a), PR_ESTORE);
	assert_int_equal(pr__store_apply(t, (const uint8_t *)"Zzz", 3, junk_val, 3, 1, &a), 0);
	assert_int_equal(a.kind, 0);
	pr__txn_abort(t);

	t = capturing(f->a);
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "sales");
	assert_int_equal(pr__store_source_put(t, &s), 0);
	apply_all(f->b, pr__txn_captured(t), 5);
	pr__txn_abort(t);
	assert_int_equal(pr__txn_begin(f->b, 1, &t), 0);
	assert_int_equal(pr__store_source_get(t, "sales", &s), 0);
	assert_int_equal(pr__store_clear(t), 0);
	assert_int_equal(pr__store_source_get(t, "sales", &s), PR_ENOSOURCE);
	assert_int_equal(pr__store_applied_get(t, &rev), 0);
	assert_int_equal(rev, 0);
	assert_int_equal(pr__txn_commit(t), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_apply_gives_the_same_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_nested_abort_keeps_guards_not_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guards_and_create_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records_and_clear, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
