/* SPDX-License-Identifier: MIT */
/*
 * The etcd client's pure parts, without a network: base64, prefix ends, the
 * gateway's JSON both ways (answers captured from etcd 3.4.23), the error
 * mapping and the watch stream's parser fed in chunks of every size.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <partreg/error.h>
#include "etcd.h"

static void
test_b64(void **state)
{
	static const struct {
		const char *raw;
		size_t len;
		const char *b64;
	} rows[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg==" },
		{ "fo", 2, "Zm8=" },
		{ "foo", 3, "Zm9v" },
		{ "foob", 4, "Zm9vYg==" },
		{ "\0\xff\x10", 3, "AP8Q" },
		{ "a\0", 2, "YQA=" },
	};
	static const char *const bad[] = { "Zm9", "Zm 9", "@@@@", "Zg=", "Zm9v\n", "====" };

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *s;
		uint8_t *p;
		size_t n;

		assert_int_equal(pr__etcd_b64_encode(rows[i].raw, rows[i].len, &s), 0);
		assert_string_equal(s, rows[i].b64);
		free(s);
		assert_int_equal(pr__etcd_b64_decode(rows[i].b64, strlen(rows[i].b64), &p, &n), 0);
		assert_int_equal(n, rows[i].len);
		assert_memory_equal(p, rows[i].raw, n + 1); /* with its NUL */
		free(p);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t *p;
		size_t n;

		assert_int_equal(
		    pr__etcd_b64_decode(bad[i], strlen(bad[i]), &p, &n), PR__ETCD_EPROTO);
		assert_null(p);
	}
}

static void
test_prefix_end(void **state)
{
	static const struct {
		const char *key;
		size_t len;
		const char *end;
		size_t end_len;
	} rows[] = {
		{ "a", 1, "b", 1 },
		{ "ab", 2, "ac", 2 },
		{ "w/", 2, "w0", 2 },
		{ "a\xff", 2, "b", 1 },
		{ "a\xfe", 2, "a\xff", 2 },
		{ "\xff\xff", 2, "\0", 1 }, /* every key >= key */
		{ "", 0, "\0", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		uint8_t out[8];
		size_t n = 99;

		pr__etcd_prefix_end(rows[i].key, rows[i].len, out, &n);
		assert_int_equal(n, rows[i].end_len);
		assert_memory_equal(out, rows[i].end, n);
	}
}

static void
test_op_json(void **state)
{
	uint8_t end[4];
	size_t end_len;
	struct pr_etcd_op range = { .type = PR_ETCD_RANGE,
		.key = "foo",
		.key_len = 3,
		.revision = 7,
		.limit = 2,
		.keys_only = 1 };
	struct pr_etcd_op put = { .type = PR_ETCD_PUT,
		.key = "k",
		.key_len = 1,
		.value = "\0v",
		.value_len = 2,
		.lease = 7587887312271958070,
		.prev_kv = 1 };
	struct pr_etcd_op del = { .type = PR_ETCD_DELETE, .key = "k", .key_len = 1 };
	char *json;

	(void)state;
	pr__etcd_prefix_end("foo", 3, end, &end_len);
	range.range_end = end;
	range.range_end_len = end_len;
	assert_int_equal(pr__etcd_op_json(&range, &json), 0);
	assert_string_equal(json,
	    "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"limit\":\"2\",\"revision\":\"7\","
	    "\"keys_only\":true}");
	free(json);
	assert_int_equal(pr__etcd_op_json(&put, &json), 0);
	assert_string_equal(json,
	    "{\"key\":\"aw==\",\"value\":\"AHY=\",\"lease\":\"7587887312271958070\","
	    "\"prev_kv\":true}");
	free(json);
	/* An empty value is sent: a put of "" is a put. */
	put.value = NULL;
	put.value_len = 0;
	put.lease = 0;
	put.prev_kv = 0;
	assert_int_equal(pr__etcd_op_json(&put, &json), 0);
	assert_string_equal(json, "{\"key\":\"aw==\",\"value\":\"\"}");
	free(json);
	assert_int_equal(pr__etcd_op_json(&del, &json), 0);
	assert_string_equal(json, "{\"key\":\"aw==\"}");
	free(json);

	/* Refused before anything is sent. */
	del.key_len = 0;
	assert_int_equal(pr__etcd_op_json(&del, &json), -EINVAL);
	assert_null(json);
	put.range_end = "z";
	put.range_end_len = 1;
	assert_int_equal(pr__etcd_op_json(&put, &json), -EINVAL);
	range.limit = -1;
	assert_int_equal(pr__etcd_op_json(&range, &json), -EINVAL);
	range.limit = 0;
	range.range_end_len = 0; /* a range_end of no bytes: ambiguous */
	assert_int_equal(pr__etcd_op_json(&range, &json), -EINVAL);
	range.range_end_len = end_len;
	range.type = (enum pr_etcd_op_type)7;
	assert_int_equal(pr__etcd_op_json(&range, &json), -EINVAL);
}

static void
test_txn_json(void **state)
{
	struct pr_etcd_cmp cmp[] = {
		{ .key = "k", .key_len = 1, .target = PR_ETCD_CREATE, .result = PR_ETCD_EQUAL },
		{ .key = "k",
		    .key_len = 1,
		    .target = PR_ETCD_VALUE,
		    .result = PR_ETCD_NOT_EQUAL,
		    .value = "x",
		    .value_len = 1 },
		{ .key = "k",
		    .key_len = 1,
		    .target = PR_ETCD_MOD,
		    .result = PR_ETCD_LESS,
		    .number = 42 },
	};
	struct pr_etcd_op ok[] = {
		{ .type = PR_ETCD_PUT, .key = "k", .key_len = 1, .value = "v", .value_len = 1 },
		{ .type = PR_ETCD_RANGE, .key = "k", .key_len = 1 },
	};
	struct pr_etcd_op ko[] = { { .type = PR_ETCD_DELETE, .key = "k", .key_len = 1 } };
	struct pr_etcd_txn txn = { cmp, 3, ok, 2, ko, 1 };
	char *json;

	(void)state;
	assert_int_equal(pr__etcd_txn_json(&txn, &json), 0);
	/* create_revision 0 is written out: it says which field is compared. */
	assert_string_equal(json,
	    "{\"compare\":["
	    "{\"key\":\"aw==\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":"
	    "\"0\"},"
	    "{\"key\":\"aw==\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"value\":\"eA==\"},"
	    "{\"key\":\"aw==\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"42\"}],"
	    "\"success\":[{\"request_put\":{\"key\":\"aw==\",\"value\":\"dg==\"}},"
	    "{\"request_range\":{\"key\":\"aw==\"}}],"
	    "\"failure\":[{\"request_delete_range\":{\"key\":\"aw==\"}}]}");
	free(json);
	cmp[2].target = (enum pr_etcd_target)9;
	assert_int_equal(pr__etcd_txn_json(&txn, &json), -EINVAL);
	cmp[2].target = PR_ETCD_MOD;
	txn.success = NULL;
	assert_int_equal(pr__etcd_txn_json(&txn, &json), -EINVAL);
}

/* Answers as etcd 3.4.23's gateway wrote them. */
static const char range_body[]
    = "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
      "\"revision\":\"2\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":"
      "\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\",\"lease\":"
      "\"7587887312271958070\"}],\"count\":\"1\"}";
static const char txn_ok_body[]
    = "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
      "\"revision\":\"3\",\"raft_term\":\"2\"},\"succeeded\":true,\"responses\":[{"
      "\"response_put\":{\"header\":{\"revision\":\"3\"}}},{\"response_range\":{\"header\":{"
      "\"revision\":\"3\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
      "\"mod_revision\":\"3\",\"version\":\"2\",\"value\":\"YmF6\"}],\"count\":\"1\"}},{"
      "\"response_delete_range\":{\"header\":{\"revision\":\"3\"}}}]}";
static const char txn_ko_body[]
    = "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
      "\"revision\":\"3\",\"raft_term\":\"2\"},\"responses\":[{\"response_range\":{\"header\":{"
      "\"revision\":\"3\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
      "\"mod_revision\":\"3\",\"version\":\"2\",\"value\":\"YmF6\"}],\"count\":\"1\"}}]}";

static void
test_res_parse(void **state)
{
	struct pr_etcd_res res;
	struct pr_etcd_txn_res tr;
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{\"header\":{\"revision\":\"x\"}}",
		"{\"kvs\":{}}",
		"{\"kvs\":[{\"key\":\"!!!!\"}]}",
		"{\"kvs\":[{\"key\":\"Zm9v\",\"version\":true}]}",
		"{\"count\":\"1\"} trailing",
	};

	(void)state;
	assert_int_equal(
	    pr__etcd_res_parse(PR_ETCD_RANGE, range_body, strlen(range_body), &res), 0);
	assert_int_equal(res.revision, 2);
	assert_int_equal(res.count, 1);
	assert_int_equal(res.n_kvs, 1);
	assert_int_equal(res.more, 0);
	assert_int_equal(res.kvs[0].key_len, 3);
	assert_memory_equal(res.kvs[0].key, "foo", 4);
	assert_memory_equal(res.kvs[0].value, "bar", 4);
	assert_int_equal(res.kvs[0].create_revision, 2);
	assert_int_equal(res.kvs[0].mod_revision, 2);
	assert_int_equal(res.kvs[0].version, 1);
	assert_int_equal(res.kvs[0].lease, 7587887312271958070);
	pr__etcd_res_release(&res);
	pr__etcd_res_release(NULL);

	/* Zero values are left out by the gateway: an empty range. */
	assert_int_equal(pr__etcd_res_parse(PR_ETCD_RANGE, "{\"header\":{}}\n", 14, &res), 0);
	assert_int_equal(res.n_kvs + res.count + res.revision, 0);
	assert_int_equal(pr__etcd_res_parse(PR_ETCD_DELETE,
	                     "{\"header\":{\"revision\":\"9\"},\"deleted\":\"2\"}", 41, &res),
	    0);
	assert_int_equal(res.count, 2);
	assert_int_equal(res.revision, 9);
	/* A put's prev_kv, keys_only's missing value. */
	assert_int_equal(pr__etcd_res_parse(PR_ETCD_PUT,
	                     "{\"prev_kv\":{\"key\":\"Zm9v\",\"version\":\"3\"}}", 40, &res),
	    0);
	assert_int_equal(res.n_kvs, 1);
	assert_int_equal(res.kvs[0].version, 3);
	assert_non_null(res.kvs[0].value);
	assert_int_equal(res.kvs[0].value_len, 0);
	pr__etcd_res_release(&res);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(pr__etcd_res_parse(PR_ETCD_RANGE, bad[i], strlen(bad[i]), &res),
		    PR__ETCD_EPROTO);
		assert_int_equal(res.n_kvs, 0);
	}

	assert_int_equal(pr__etcd_txn_res_parse(txn_ok_body, strlen(txn_ok_body), &tr), 0);
	assert_true(tr.succeeded);
	assert_int_equal(tr.revision, 3);
	assert_int_equal(tr.n_res, 3);
	assert_int_equal(tr.res[0].type, PR_ETCD_PUT);
	assert_int_equal(tr.res[1].type, PR_ETCD_RANGE);
	assert_int_equal(tr.res[1].n_kvs, 1);
	assert_memory_equal(tr.res[1].kvs[0].value, "baz", 3);
	assert_int_equal(tr.res[2].type, PR_ETCD_DELETE);
	assert_int_equal(tr.res[2].count, 0);
	pr__etcd_txn_res_release(&tr);
	/* "succeeded": false is left out. */
	assert_int_equal(pr__etcd_txn_res_parse(txn_ko_body, strlen(txn_ko_body), &tr), 0);
	assert_false(tr.succeeded);
	assert_int_equal(tr.n_res, 1);
	assert_int_equal(tr.res[0].type, PR_ETCD_RANGE);
	pr__etcd_txn_res_release(&tr);
	assert_int_equal(pr__etcd_txn_res_parse("{\"responses\":[{\"response_x\":{}}]}", 34, &tr),
	    PR__ETCD_EPROTO);
	assert_int_equal(tr.n_res, 0);
}

static void
test_error(void **state)
{
#define E(msg, code) "{\"error\":\"" msg "\",\"message\":\"" msg "\",\"code\":" #code "}"
	static const struct {
		int status;
		const char *body;
		int write;
		int err;
		int expired;
	} rows[] = {
		{ 503, E("etcdserver: no leader", 14), 1, PR__ETCD_ENOLEADER, 0 },
		{ 503, E("etcdserver: leader changed", 14), 0, PR__ETCD_ENOLEADER, 0 },
		{ 412, E("etcdserver: not leader", 9), 1, PR__ETCD_ENOLEADER, 0 },
		{ 503, E("etcdserver: request timed out", 14), 1, PR__ETCD_EINDOUBT, 0 },
		{ 503, E("etcdserver: request timed out", 14), 0, -ETIMEDOUT, 0 },
		{ 503,
		    E("etcdserver: request timed out, possibly due to previous leader failure", 14),
		    1, PR__ETCD_EINDOUBT, 0 },
		{ 400, E("etcdserver: mvcc: required revision has been compacted", 11), 0,
		    PR__ETCD_ECOMPACTED, 0 },
		{ 400, E("etcdserver: mvcc: required revision is a future revision", 11), 0,
		    PR__ETCD_EFUTUREREV, 0 },
		{ 404, E("etcdserver: requested lease not found", 5), 1, PR__ETCD_ENOLEASE, 0 },
		{ 401, E("etcdserver: invalid auth token", 16), 1, PR__ETCD_EAUTH, 1 },
		{ 400, E("etcdserver: authentication failed, invalid user ID or password", 3), 0,
		    PR__ETCD_EAUTH, 0 },
		{ 403, E("etcdserver: permission denied", 7), 1, PR__ETCD_EAUTH, 0 },
		{ 400, E("etcdserver: duplicate key given in txn request", 3), 1, PR__ETCD_EREFUSED,
		    0 },
		{ 400, E("etcdserver: key is not provided", 3), 1, PR__ETCD_EREFUSED, 0 },
		{ 429, E("etcdserver: mvcc: database space exceeded", 8), 1, PR__ETCD_ENOSPACE, 0 },
		{ 503, E("etcdserver: something new", 14), 1, PR__ETCD_EUNAVAIL, 0 },
		{ 504, E("context deadline exceeded", 4), 1, PR__ETCD_EINDOUBT, 0 },
		/* Not etcd's JSON: a proxy's page. */
		{ 502, "<html>bad gateway</html>", 0, PR__ETCD_EUNAVAIL, 0 },
		{ 504, "", 1, PR__ETCD_EINDOUBT, 0 },
		{ 404, "404 page not found", 0, PR__ETCD_EPROTO, 0 },
		{ 401, NULL, 0, PR__ETCD_EAUTH, 0 },
		/* The stream form. */
		{ 200, "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}", 0,
		    PR__ETCD_ENOLEADER, 0 },
	};
#undef E

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int expired = -1;
		int err = pr__etcd_error(rows[i].status, rows[i].body,
		    rows[i].body != NULL ? strlen(rows[i].body) : 0, rows[i].write, &expired);

		if (err != rows[i].err || expired != rows[i].expired) {
			fail_msg("row %zu: %d (expired %d), expected %d (expired %d)", i, err,
			    expired, rows[i].err, rows[i].expired);
		}
	}
	/* Every code has its own description; others are pr_strerror's. */
	for (int a = PR__ETCD_ERRBASE; a <= PR__ETCD_ERRLAST; a++) {
		assert_true(strlen(pr__etcd_strerror(a)) > 10);
		for (int b = a + 1; b <= PR__ETCD_ERRLAST; b++) {
			assert_string_not_equal(pr__etcd_strerror(a), pr__etcd_strerror(b));
		}
	}
	assert_string_equal(pr__etcd_strerror(PR_ESTORE), pr_strerror(PR_ESTORE));
	assert_string_equal(pr__etcd_strerror(-ETIMEDOUT), pr_strerror(-ETIMEDOUT));
}

static void
test_open_args(void **state)
{
	static const char *const bad[]
	    = { NULL, "", "127.0.0.1:2379", "http://", "http://a:1,,http://b:2", "ftp://a:1" };
	struct pr_etcd_opts o = { 0 };
	struct pr_etcd *e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o.endpoints = bad[i];
		assert_int_equal(pr__etcd_open(&o, &e), -EINVAL);
		assert_null(e);
	}
	o.endpoints = " http://a:1/ , https://b:2";
	assert_int_equal(pr__etcd_open(&o, &e), 0);
	assert_string_equal(pr__etcd_endpoint(e), "http://a:1");
	pr__etcd_close(e);
	pr__etcd_close(NULL);
	o.user = "root"; /* without a password */
	assert_int_equal(pr__etcd_open(&o, &e), -EINVAL);
}

/* ---- the watch stream ---- */

/* A stream as etcd 3.4.23 wrote it: created, two PUTs in one response
 * (the second with prev_kv), a DELETE, a progress notification, and a
 * cancellation for compaction. */
static const char stream[]
    = "{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"3\","
      "\"raft_term\":\"2\"},\"created\":true}}\n"
      "{\"result\":{\"header\":{\"revision\":\"3\"},\"events\":[{\"kv\":{\"key\":\"Zm9v\","
      "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}},"
      "{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":"
      "\"2\",\"value\":\"YmF6\"},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\","
      "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}}]}}\n"
      "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{"
      "\"key\":\"Zm9v\",\"mod_revision\":\"4\"}}]}}\n"
      "{\"result\":{\"header\":{\"revision\":\"4\"}}}\n"
      "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":"
      "\"3\"}}\n"
      "{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":[]}}\n";

struct rec {
	char log[1024];
	int n;
};

static void
record(void *arg, const struct pr_etcd_event *ev)
{
	struct rec *r = arg;
	static const char *const names[] = { "PUT", "DELETE", "PROGRESS", "COMPACTED", "LOST" };
	size_t len = strlen(r->log);

	snprintf(
	    r->log + len, sizeof r->log - len, "%s@%lld", names[ev->type], (long long)ev->revision);
	len = strlen(r->log);
	if (ev->kv != NULL) {
		snprintf(r->log + len, sizeof r->log - len, " %.*s=%.*s v%lld",
		    (int)ev->kv->key_len, (const char *)ev->kv->key, (int)ev->kv->value_len,
		    (const char *)ev->kv->value, (long long)ev->kv->version);
		len = strlen(r->log);
	}
	if (ev->prev_kv != NULL) {
		snprintf(r->log + len, sizeof r->log - len, " prev=%.*s",
		    (int)ev->prev_kv->value_len, (const char *)ev->prev_kv->value);
		len = strlen(r->log);
	}
	if (ev->err != 0) {
		snprintf(r->log + len, sizeof r->log - len, " err %d", ev->err);
		len = strlen(r->log);
	}
	snprintf(r->log + len, sizeof r->log - len, "; ");
	r->n++;
}

static const char want_log[] = "PUT@2 foo=bar v1; PUT@3 foo=baz v2 prev=bar; DELETE@4 foo= v0; "
                               "PROGRESS@4; COMPACTED@3 err -30797; ";

/* Feed stream in chunks of size; returns what feed returned last. */
static int
feed_chunks(struct rec *r, size_t chunk, int *created)
{
	struct pr_etcd_wparse *p;
	size_t len = strlen(stream), off = 0;
	int rc = 0;

	memset(r, 0, sizeof *r);
	*created = 0;
	assert_int_equal(pr__etcd_wparse_new(record, r, &p), 0);
	while (off < len && rc == 0) {
		size_t n = len - off < chunk ? len - off : chunk;

		rc = pr__etcd_wparse_feed(p, stream + off, n, created);
		off += n;
	}
	pr__etcd_wparse_free(p);
	return rc;
}

static void
test_wparse_chunks(void **state)
{
	(void)state;
	for (size_t chunk = 1; chunk <= strlen(stream); chunk++) {
		struct rec r;
		int created;
		int rc = feed_chunks(&r, chunk, &created);

		if (rc != 1 || !created || strcmp(r.log, want_log) != 0) {
			fail_msg("chunks of %zu: rc %d created %d\n got  %s\n want %s", chunk, rc,
			    created, r.log, want_log);
		}
	}
}

static void
test_wparse_errors(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *log;
	} rows[] = {
		{ "garbage", PR__ETCD_EPROTO, "" },
		{ "{\"result\":{}} ]", PR__ETCD_EPROTO, "PROGRESS@0; " },
		{ "{\"nothing\":1}", PR__ETCD_EPROTO, "" },
		{ "{\"result\":{\"events\":[{\"type\":\"BOGUS\",\"kv\":{}}]}}", PR__ETCD_EPROTO,
		    "" },
		{ "{\"result\":{\"events\":[{}]}}", PR__ETCD_EPROTO, "" },
		/* The stream form of an error and a cancellation: final LOST. */
		{ "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}\n", 1,
		    "LOST@0 err -30799; " },
		{ "{\"result\":{\"canceled\":true,\"cancel_reason\":\"etcdserver: no leader\"}}", 1,
		    "LOST@0 err -30799; " },
		{ "{\"result\":{\"canceled\":true}}", 1, "LOST@0 err -30800; " },
		/* Incomplete: waits for more. */
		{ "{\"result\":{\"header\":", 0, "" },
		{ "   \n ", 0, "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pr_etcd_wparse *p;
		struct rec r = { { 0 }, 0 };
		int created = 0, rc;

		assert_int_equal(pr__etcd_wparse_new(record, &r, &p), 0);
		rc = pr__etcd_wparse_feed(p, rows[i].in, strlen(rows[i].in), &created);
		pr__etcd_wparse_free(p);
		if (rc != rows[i].rc || strcmp(r.log, rows[i].log) != 0) {
			fail_msg("row %zu: rc %d log '%s', expected %d '%s'", i, rc, r.log,
			    rows[i].rc, rows[i].log);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_op_json),
		cmocka_unit_test(test_txn_json),
		cmocka_unit_test(test_res_parse),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_open_args),
		cmocka_unit_test(test_wparse_chunks),
		cmocka_unit_test(test_wparse_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
