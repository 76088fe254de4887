/* SPDX-License-Identifier: MIT */
/*
 * Idempotency records (idem.h) on a real store in a temporary directory:
 * the canonical body, replay of the very same command, conflicts for
 * anything else, and a seal that neither the request_id nor another
 * store's secret opens.
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

#include "decode.h"
#include "idem.h"
#include "publisher.h"
#include "store.h"
#include "tmpdir.h"

static const char token[] = "6f1c7a52-3b0e-4d8c-9a41-2f5e8c7d9b10";
static const char reply[] = "{\"ok\":true,\"status\":200,\"request_id\":\"r\",\"result\":"
                            "{\"access_token\":\"6f1c7a52-3b0e-4d8c-9a41-2f5e8c7d9b10\"}}";

struct fx {
	char dir[1024];
	struct pr_store *st;
	struct pr_idem id;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	tmpdir_make(f->dir, "test_idem");
	assert_int_equal(pr__store_open(f->dir, NULL, &f->st), 0);
	assert_int_equal(pr__store_secret(f->st, f->id.secret), 0);
	f->id.reply_prefix = "P/reply/";
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

static struct pr_cmd *
decode(const char *name, const char *json)
{
	struct pr_cmd *cmd = calloc(1, sizeof *cmd);
	struct pr_decode_error derr;
	enum pr_cmd_kind kind;

	assert_non_null(cmd);
	assert_int_equal(pr__cmd_lookup(name, strlen(name), &kind), 0);
	if (pr__cmd_decode(kind, json, strlen(json), cmd, &derr) != 0) {
		print_message("decode refused %s: %s\n", json, derr.message);
		fail();
	}
	return cmd;
}

/* body digests of two commands (to the same reply topic): equal? */
static int
same_body(struct fx *f, const char *n1, const char *j1, const char *n2, const char *j2,
    const char *topic2)
{
	struct pr_cmd *a = decode(n1, j1), *b = decode(n2, j2);
	uint8_t da[PR_DIGEST_LEN], db[PR_DIGEST_LEN];

	assert_int_equal(pr__idem_body(&f->id, a, "P/reply/alice/1", da), 0);
	assert_int_equal(pr__idem_body(&f->id, b, topic2, db), 0);
	free(a);
	free(b);
	return memcmp(da, db, sizeof da) == 0;
}

static void
test_body(void **state)
{
	struct fx *f = *state;
	const char *lock
	    = "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	      "\"end\":\"2023-01-02T00:00:00Z\",\"access_token\":\"t1\"";
	char a[512], b[512];

	snprintf(a, sizeof a, "%s,\"request_id\":\"r\"}", lock);
	/* What to answer with is not part of the body; the same instants
	 * written another way are the same body. */
	snprintf(b, sizeof b,
	    "{\"correlation_id\":\"c\",\"reply_to\":\"P/reply/x\",\"request_id\":\"r2\",\"source\":"
	    "\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00.000Z\",\"end\":\"2023-01-"
	    "02T00:"
	    "00:00+00:00\",\"access_token\":\"t1\"}");
	assert_true(same_body(f, "partition/lock", a, "partition/lock", b, "P/reply/bob/2"));
	/* Another command, another token, no token, another field: another body. */
	assert_false(same_body(f, "partition/lock", a, "partition/unlock", a, "P/reply/alice/1"));
	snprintf(b, sizeof b, "%s,\"request_id\":\"r\",\"ttl_s\":60}", lock);
	assert_false(same_body(f, "partition/lock", a, "partition/lock", b, "P/reply/alice/1"));
	assert_false(same_body(f, "source/rotate-token",
	    "{\"source\":\"s\",\"access_token\":\"t1\",\"request_id\":\"r\"}",
	    "source/rotate-token",
	    "{\"source\":\"s\",\"access_token\":\"t2\",\"request_id\":\"r\"}", "P/reply/alice/1"));
	assert_false(same_body(f, "source/rotate-token",
	    "{\"source\":\"s\",\"access_token\":\"t1\",\"request_id\":\"r\"}",
	    "source/rotate-token", "{\"source\":\"s\",\"request_id\":\"r\"}", "P/reply/alice/1"));
	/* source/register: bound to the reply topic's user level too. */
	assert_true(same_body(f, "source/register", "{\"source\":\"s\",\"owner\":\"o\"}",
	    "source/register", "{\"source\":\"s\",\"owner\":\"o\"}", "P/reply/alice/9"));
	assert_false(same_body(f, "source/register", "{\"source\":\"s\",\"owner\":\"o\"}",
	    "source/register", "{\"source\":\"s\",\"owner\":\"o\"}", "P/reply/mallory/1"));
}

/* Look cmd up (reply to topic); returns pr__idem_lookup's answer, the reply in r. */
static int
lookup(struct fx *f, const struct pr_idem *id, const char *name, const char *json,
    const char *topic, struct pr_reply *r)
{
	struct pr_cmd *cmd = decode(name, json);
	struct pr_txn *txn;
	int rc;

	memset(r, 0, sizeof *r);
	r->topic = topic != NULL ? strdup(topic) : NULL;
	snprintf(r->request_id, sizeof r->request_id, "%s", cmd->request_id);
	assert_int_equal(pr__txn_begin(f->st, 1, &txn), 0);
	rc = pr__idem_lookup(id, txn, cmd, r);
	pr__txn_abort(txn);
	free(cmd);
	return rc;
}

static void
test_replay_and_conflict(void **state)
{
	struct fx *f = *state;
	const char *rot = "{\"source\":\"s\",\"access_token\":\"t1\",\"request_id\":\"rot-1\"}";
	struct pr_cmd *cmd = decode("source/rotate-token", rot);
	struct pr_reply r = { .topic = "P/reply/alice/1", .payload = (char *)reply };
	struct pr_idem other = { .reply_prefix = "P/reply/" };
	struct pr_txn *txn;

	r.len = strlen(reply);

	assert_int_equal(pr__txn_begin(f->st, 1, &txn), 0);
	assert_int_equal(pr__idem_remember(&f->id, txn, cmd, &r, 1000), 0);
	assert_int_equal(pr__txn_commit(txn), 0);
	free(cmd);

	/* The same command: the first reply, replayed. */
	assert_int_equal(lookup(f, &f->id, "source/rotate-token", rot, "P/reply/alice/2", &r), 2);
	assert_non_null(strstr(r.payload, token));
	assert_non_null(strstr(r.payload, "\"replayed\":true"));
	pr__reply_release(&r);
	/* No token, another token, another command: a conflict without the reply. */
	assert_int_equal(lookup(f, &f->id, "source/rotate-token",
	                     "{\"source\":\"s\",\"request_id\":\"rot-1\"}", NULL, &r),
	    1);
	assert_non_null(strstr(r.payload, "request_id_conflict"));
	assert_null(strstr(r.payload, token));
	pr__reply_release(&r);
	assert_int_equal(
	    lookup(f, &f->id, "source/rotate-token",
	        "{\"source\":\"s\",\"access_token\":\"t2\",\"request_id\":\"rot-1\"}", NULL, &r),
	    1);
	assert_non_null(strstr(r.payload, "request_id_conflict"));
	assert_null(strstr(r.payload, token));
	pr__reply_release(&r);
	assert_int_equal(
	    lookup(f, &f->id, "source/register",
	        "{\"source\":\"s\",\"owner\":\"o\",\"request_id\":\"rot-1\"}", NULL, &r),
	    1);
	assert_non_null(strstr(r.payload, "source/rotate-token"));
	pr__reply_release(&r);
	/* Another secret finds no record: keys are the store's own. */
	memset(other.secret, 0x5a, sizeof other.secret);
	assert_int_equal(lookup(f, &other, "source/rotate-token", rot, NULL, &r), 0);
	pr__reply_release(&r);
}

static void
test_sealed(void **state)
{
	struct fx *f = *state;
	const char *rot = "{\"source\":\"s\",\"access_token\":\"t1\",\"request_id\":\"seal-1\"}";
	struct pr_cmd *cmd = decode("source/rotate-token", rot);
	struct pr_reply r = { .payload = (char *)reply };
	struct pr_txn *txn;
	uint8_t secret[PR_DIGEST_LEN];
	char command[64], *stored = NULL;
	size_t len = 0;

	r.len = strlen(reply);
	assert_int_equal(pr__txn_begin(f->st, 1, &txn), 0);
	assert_int_equal(pr__idem_remember(&f->id, txn, cmd, &r, 2000), 0);
	assert_int_equal(pr__txn_commit(txn), 0);
	free(cmd);
	/* The secret is the store's and stays the same. */
	assert_int_equal(pr__store_secret(f->st, secret), 0);
	assert_memory_equal(secret, f->id.secret, sizeof secret);
	/* No record is keyed by the request_id in clear (the integration test
	 * greps the store's file for tokens and request_ids). */
	assert_int_equal(pr__txn_begin(f->st, 0, &txn), 0);
	assert_int_equal(pr__store_idem_get(txn, "seal-1", command, &stored, &len), PR_ENOTFOUND);
	pr__txn_abort(txn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_and_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sealed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
