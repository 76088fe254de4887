/* SPDX-License-Identifier: MIT */
/*
 * Handler tests: the registry's rules, on a real store in a temporary
 * directory, with commands decoded from JSON as the agent receives them and
 * results checked in their encoded form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "encode.h"
#include <partreg/error.h>
#include "expiry.h"
#include "handlers.h"
#include "store.h"
#include "tmpdir.h"

struct fx {
	char dir[1024];
	struct pr_store *st;
	struct pr_changes ch;
	char token[64];
	char ptoken[64];
	char out[8192];
	int64_t now;
};

static const struct pr_handler_opts hopts
    = { .list_default = 100, .blockers_max = 100, .lease = { .default_s = 60, .max_s = 3600 } };

/* Decode json as the command named cmdname, run it in its own committed
 * transaction; the encoded result (or "") lands in f->out. */
static int
run(struct fx *f, const char *cmdname, const char *json)
{
	enum pr_cmd_kind kind;
	struct pr_cmd *cmd = calloc(1, sizeof *cmd);
	struct pr_decode_error derr;
	struct pr_json *result = NULL;
	struct pr_txn *txn;
	char msg[256];
	int rc;

	assert_non_null(cmd);
	assert_int_equal(pr__cmd_lookup(cmdname, strlen(cmdname), &kind), 0);
	rc = pr__cmd_decode(kind, json, strlen(json), cmd, &derr);
	if (rc != 0) {
		print_message("decode refused %s: %s\n", json, derr.message);
		free(cmd);
		return rc;
	}
	assert_int_equal(pr__txn_begin(f->st, 1, &txn), 0);
	f->now += 1000000;
	rc = pr__handle(txn, cmd, f->now, &hopts, &f->ch, &result, msg);
	f->out[0] = '\0';
	if (rc == 0) {
		char *text = pr__json_dump(result, NULL);

		assert_non_null(text);
		snprintf(f->out, sizeof f->out, "%s", text);
		free(text);
		pr__json_free(result);
		assert_int_equal(pr__txn_commit(txn), 0);
	} else {
		assert_null(result);
		assert_true(msg[0] != '\0' || rc == PR_EINTERNAL);
		pr__txn_abort(txn);
	}
	free(cmd);
	return rc;
}

/* Copy the string value of "key" from f->out into buf. */
static void
field(struct fx *f, const char *key, char *buf, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	p = strstr(f->out, pat);
	assert_non_null(p);
	p += strlen(pat);
	while (p[n] != '"' && n + 1 < cap) {
		n++;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static void
has(struct fx *f, const char *fragment)
{
	if (strstr(f->out, fragment) == NULL) {
		fail_msg("%s\n  does not contain %s", f->out, fragment);
	}
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char buf[512];

	assert_non_null(f);
	tmpdir_make(f->dir, "test_handlers");
	assert_int_equal(pr__store_open(f->dir, NULL, &f->st), 0);
	pr__changes_init(&f->ch);
	f->now = INT64_C(1700000000000000);
	assert_int_equal(run(f, "source/register", "{\"source\":\"s\",\"owner\":\"o\"}"), 0);
	field(f, "access_token", f->token, sizeof f->token);
	snprintf(buf, sizeof buf, "{\"source\":\"s\",\"provider\":\"p\",\"access_token\":\"%s\"}",
	    f->token);
	assert_int_equal(run(f, "provider/register", buf), 0);
	field(f, "provider_token", f->ptoken, sizeof f->ptoken);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	pr__changes_release(&f->ch);
	pr__store_close(f->st);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* A partition command on [start, end) of provider p with token tok. */
static int
part(struct fx *f, const char *cmd, const char *tok, const char *start, const char *end,
    const char *extra)
{
	char buf[1024];

	snprintf(buf, sizeof buf,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"%s\",\"end\":\"%s\"%s%s%s%s}", start,
	    end, tok != NULL ? ",\"access_token\":\"" : "", tok != NULL ? tok : "",
	    tok != NULL ? "\"" : "", extra != NULL ? extra : "");
	return run(f, cmd, buf);
}

/* Run the agent's lease expiry (expiry.h) at f->now in its own committed
 * transaction; returns how many locks it failed. */
static size_t
expire_at_now(struct fx *f)
{
	struct pr_txn *txn;
	size_t due = 0, expired = 0;

	assert_int_equal(pr__txn_begin(f->st, 1, &txn), 0);
	assert_int_equal(pr__expiry_run(txn, f->now, 16, &f->ch, &due, &expired), 0);
	assert_true(expired <= due);
	assert_int_equal(pr__txn_commit(txn), 0);
	return expired;
}

#define D1 "2023-01-01 00:00:00"
#define D2 "2023-01-02 00:00:00"
#define D3 "2023-01-03 00:00:00"

static void
test_source_register_once(void **state)
{
	struct fx *f = *state;

	assert_int_equal(strlen(f->token), 36);
	assert_int_equal(
	    run(f, "source/register", "{\"source\":\"s\",\"owner\":\"x\"}"), PR_ESOURCE_EXISTS);
	assert_int_equal(run(f, "source/get", "{\"source\":\"s\"}"), 0);
	has(f, "\"owner\":\"o\"");
	assert_null(strstr(f->out, "access_token"));
	assert_int_equal(run(f, "source/get", "{\"source\":\"nope\"}"), PR_ENOSOURCE);
}

static void
test_provider_needs_owner_token(void **state)
{
	struct fx *f = *state;
	char buf[512];

	assert_int_equal(
	    run(f, "provider/register", "{\"source\":\"s\",\"provider\":\"q\"}"), PR_EUNAUTH);
	assert_int_equal(run(f, "provider/register",
	                     "{\"source\":\"s\",\"provider\":\"q\",\"access_token\":\"nope\"}"),
	    PR_EUNAUTH);
	/* A provider token is not an owner token: a valid token, wrong rights. */
	snprintf(buf, sizeof buf, "{\"source\":\"s\",\"provider\":\"q\",\"access_token\":\"%s\"}",
	    f->ptoken);
	assert_int_equal(run(f, "provider/register", buf), PR_EFORBIDDEN);
	snprintf(buf, sizeof buf, "{\"source\":\"s\",\"provider\":\"p\",\"access_token\":\"%s\"}",
	    f->token);
	assert_int_equal(run(f, "provider/register", buf), PR_EPROVIDER_EXISTS);
	snprintf(buf, sizeof buf, "{\"source\":\"t\",\"provider\":\"p\",\"access_token\":\"%s\"}",
	    f->token);
	assert_int_equal(run(f, "provider/register", buf), PR_ENOSOURCE);
}

static void
test_lifecycle(void **state)
{
	struct fx *f = *state;

	assert_int_equal(part(f, "partition/register", f->token, D1, D2, NULL), 0);
	has(f, "\"state\":\"pending\"");
	/* Registering again changes nothing. */
	assert_int_equal(part(f, "partition/register", f->token, D1, D2, NULL), 0);
	has(f, "\"state\":\"pending\"");
	assert_int_equal(part(f, "partition/lock", f->ptoken, D1, D2, NULL), 0);
	has(f, "\"state\":\"locked\"");
	has(f, "\"fence\":1");
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), PR_ELOCKED);
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, ",\"fence\":7"), PR_ESTALE);
	assert_int_equal(part(f, "partition/unlock", f->ptoken, D1, D2, ",\"fence\":1"), 0);
	has(f, "\"state\":\"ready\"");
	has(f, "\"version\":1");
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), PR_ENOTLOCKED);
	assert_int_equal(part(f, "partition/fail", f->token, D1, D2, NULL), PR_ENOTLOCKED);

	/* Reprocessing: a ready partition locked again is not ready until unlocked. */
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), 0);
	has(f, "\"fence\":2");
	assert_int_equal(
	    run(f, "readiness/query", "{\"source\":\"s\",\"start\":\"" D1 "\",\"end\":\"" D2 "\"}"),
	    0);
	has(f, "\"ready\":false");
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), 0);
	has(f, "\"version\":2");
	assert_int_equal(
	    run(f, "readiness/query", "{\"source\":\"s\",\"start\":\"" D1 "\",\"end\":\"" D2 "\"}"),
	    0);
	has(f, "\"ready\":true");
	has(f, "\"ready_through\":\"2023-01-02T00:00:00Z\"");
}

static void
test_partition_auth_and_lookup(void **state)
{
	struct fx *f = *state;
	char buf[512];

	assert_int_equal(part(f, "partition/lock", NULL, D1, D2, NULL), PR_EUNAUTH);
	assert_int_equal(part(f, "partition/lock", "wrong", D1, D2, NULL), PR_EUNAUTH);
	snprintf(buf, sizeof buf,
	    "{\"source\":\"s\",\"provider\":\"zz\",\"start\":\"" D1 "\",\"end\":\"" D2
	    "\",\"access_token\":\"%s\"}",
	    f->token);
	assert_int_equal(run(f, "partition/lock", buf), PR_ENOPROVIDER);
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), PR_ENOPARTITION);
}

static void
test_fail_and_readiness_gaps(void **state)
{
	struct fx *f = *state;

	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), 0);
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), 0);
	assert_int_equal(part(f, "partition/register", f->token, D2, D3, NULL), 0);
	assert_int_equal(
	    part(f, "partition/fail", f->token, D2, D3, ",\"reason\":\"disk full\""), 0);
	has(f, "\"state\":\"failed\"");
	has(f, "\"reason\":\"disk full\"");
	assert_int_equal(
	    run(f, "readiness/query", "{\"source\":\"s\",\"start\":\"" D1 "\",\"end\":\"" D3 "\"}"),
	    0);
	has(f, "\"ready\":false");
	has(f, "\"gaps\":[[\"2023-01-02T00:00:00Z\",\"2023-01-03T00:00:00Z\"]]");
	has(f, "\"ready_through\":\"2023-01-02T00:00:00Z\"");
	has(f, "\"state\":\"failed\"");
	/* A failed partition can be locked again (a retry). */
	assert_int_equal(part(f, "partition/lock", f->token, D2, D3, NULL), 0);
	assert_int_equal(part(f, "partition/unlock", f->token, D2, D3, NULL), 0);
	assert_int_equal(
	    run(f, "readiness/query", "{\"source\":\"s\",\"start\":\"" D1 "\",\"end\":\"" D3 "\"}"),
	    0);
	has(f, "\"ready\":true");
	assert_int_equal(run(f, "partition/list", "{\"source\":\"s\",\"limit\":1}"), 0);
	has(f, "\"start\":\"2023-01-01T00:00:00Z\"");
	assert_null(strstr(f->out, "\"next_cursor\":null"));
}

static void
test_changes_record_and_rewind(void **state)
{
	struct fx *f = *state;
	size_t nev = f->ch.nevents, nparts = f->ch.nparts;
	uint64_t last;

	/* source_registered and provider_registered so far, seq 1 and 2. */
	assert_int_equal(nev, 2);
	assert_int_equal(f->ch.events[1].seq, 2);
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), 0);
	assert_int_equal(f->ch.nevents, nev + 1);
	assert_int_equal(f->ch.nparts, nparts + 1);
	last = f->ch.events[f->ch.nevents - 1].seq;
	assert_int_equal(last, 3);
	assert_string_equal(f->ch.events[f->ch.nevents - 1].type, "locked");
	/* A refused command adds nothing. */
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), PR_ELOCKED);
	assert_int_equal(f->ch.nevents, nev + 1);
	assert_int_equal(f->ch.nsources, 1);
	/* The same partition changed twice is published once, in its last state. */
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), 0);
	assert_int_equal(f->ch.nparts, nparts + 1);
	assert_int_equal(f->ch.parts[f->ch.nparts - 1].state, PR_READY);
	assert_int_equal(run(f, "agent/resync", "{}"), 0);
	assert_true(f->ch.resync_all);
	has(f, "{\"republishing\":\"all\"}");
	assert_int_equal(run(f, "agent/resync", "{\"source\":\"s\"}"), 0);
	assert_int_equal(f->ch.nresync, 1);
	assert_string_equal(f->ch.resync[0], "s");
	assert_int_equal(run(f, "agent/resync", "{\"source\":\"nope\"}"), PR_ENOSOURCE);
}

static void
test_lease_expiry_and_fencing(void **state)
{
	struct fx *f = *state;

	/* ttl 10 s; run() advances the clock 1 s per command. */
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, ",\"ttl_s\":10"), 0);
	has(f, "\"fence\":1");
	has(f, "\"expires_at\":\"");
	assert_int_equal(
	    part(f, "partition/lock", f->token, D1, D2, ",\"ttl_s\":7200"), PR_ELOCKED);
	assert_int_equal(
	    part(f, "partition/renew", f->token, D1, D2, ",\"fence\":1,\"ttl_s\":7200"),
	    PR_EFIELD); /* over --lease-max */
	assert_int_equal(part(f, "partition/renew", f->token, D1, D2, ",\"fence\":9"), PR_ESTALE);
	assert_int_equal(
	    part(f, "partition/renew", f->token, D1, D2, ",\"fence\":1,\"ttl_s\":5"), 0);
	has(f, "\"state\":\"locked\"");
	assert_int_equal(expire_at_now(f), 0); /* not yet */
	/* The renew ran at f->now with ttl_s 5: the next deadline. */
	assert_int_equal(pr__expiry_next(f->st), f->now + 5 * INT64_C(1000000));
	f->now += 5 * INT64_C(1000000);
	/* Past the deadline but before the agent's expiry ran: never ready. */
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, ",\"fence\":1"), PR_ELEASE);
	assert_int_equal(part(f, "partition/renew", f->token, D1, D2, ",\"fence\":1"), PR_ELEASE);
	assert_int_equal(expire_at_now(f), 1);
	assert_int_equal(pr__expiry_next(f->st), 0); /* no lease runs */
	assert_int_equal(run(f, "partition/list", "{\"source\":\"s\"}"), 0);
	has(f, "\"state\":\"failed\"");
	has(f, "\"reason\":\"lease_expired\"");
	assert_int_equal(expire_at_now(f), 0); /* once only */
	/* Run 2 takes the lock; run 1's fence is stale for every write. */
	assert_int_equal(part(f, "partition/lock", f->ptoken, D1, D2, NULL), 0);
	has(f, "\"fence\":2");
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, ",\"fence\":1"), PR_ESTALE);
	assert_int_equal(part(f, "partition/fail", f->token, D1, D2, ",\"fence\":1"), PR_ESTALE);
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, ",\"fence\":2"), 0);
	has(f, "\"state\":\"ready\"");
	assert_int_equal(
	    part(f, "partition/renew", f->token, D1, D2, ",\"fence\":2"), PR_ENOTLOCKED);
}

static void
test_lock_takes_over_an_expired_lease(void **state)
{
	struct fx *f = *state;

	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, ",\"ttl_s\":1"), 0);
	f->now += 2 * INT64_C(1000000);
	/* The agent has not expired it yet: the new lock records the failure first. */
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), 0);
	has(f, "\"fence\":2");
	assert_string_equal(f->ch.events[f->ch.nevents - 2].type, "failed");
	assert_string_equal(f->ch.events[f->ch.nevents - 2].reason, "lease_expired");
	assert_string_equal(f->ch.events[f->ch.nevents - 1].type, "locked");
}

static void
test_tokens_403_and_rotation(void **state)
{
	struct fx *f = *state;
	char buf[512], other[64], newtok[64];

	/* A second source: its owner token is valid, but not for source s. */
	assert_int_equal(run(f, "source/register", "{\"source\":\"t\",\"owner\":\"o\"}"), 0);
	field(f, "access_token", other, sizeof other);
	assert_int_equal(part(f, "partition/lock", other, D1, D2, NULL), PR_EFORBIDDEN);
	assert_int_equal(part(f, "partition/lock", "made-up", D1, D2, NULL), PR_EUNAUTH);
	/* A provider token cannot delete, nor register providers. */
	assert_int_equal(part(f, "partition/register", f->ptoken, D1, D2, NULL), 0);
	assert_int_equal(part(f, "partition/delete", f->ptoken, D1, D2, NULL), PR_EFORBIDDEN);
	snprintf(buf, sizeof buf, "{\"source\":\"s\",\"provider\":\"q\",\"access_token\":\"%s\"}",
	    f->ptoken);
	assert_int_equal(run(f, "provider/register", buf), PR_EFORBIDDEN);
	/* Rotation: the old owner token stops working, the new one works. */
	snprintf(buf, sizeof buf, "{\"source\":\"s\",\"access_token\":\"%s\"}", f->ptoken);
	assert_int_equal(run(f, "source/rotate-token", buf), PR_EFORBIDDEN);
	snprintf(buf, sizeof buf, "{\"source\":\"s\",\"access_token\":\"%s\"}", f->token);
	assert_int_equal(run(f, "source/rotate-token", buf), 0);
	field(f, "access_token", newtok, sizeof newtok);
	assert_string_not_equal(newtok, f->token);
	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), PR_EUNAUTH);
	assert_int_equal(part(f, "partition/lock", newtok, D1, D2, NULL), 0);
	/* The provider's own token is untouched by the owner's rotation. */
	assert_int_equal(part(f, "partition/unlock", f->ptoken, D1, D2, NULL), 0);
}

static void
test_delete_and_recreate(void **state)
{
	struct fx *f = *state;

	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), 0);
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), 0);
	assert_int_equal(part(f, "partition/register", f->token, D2, D3, NULL), 0);
	assert_int_equal(part(f, "partition/delete", f->token, D2, D3, NULL), 0);
	has(f, "\"state\":\"deleted\"");
	assert_int_equal(f->ch.parts[f->ch.nparts - 1].state, PR_DELETED);
	assert_int_equal(part(f, "partition/delete", f->token, D2, D3, NULL), PR_ENOPARTITION);
	assert_int_equal(part(f, "partition/unlock", f->token, D2, D3, NULL), PR_ENOPARTITION);
	/* Deleted: not listed, and it blocks nothing any more. */
	assert_int_equal(run(f, "partition/list", "{\"source\":\"s\"}"), 0);
	assert_null(strstr(f->out, "2023-01-03"));
	assert_int_equal(
	    run(f, "readiness/query", "{\"source\":\"s\",\"start\":\"" D1 "\",\"end\":\"" D2 "\"}"),
	    0);
	has(f, "\"ready\":true");
	/* Locking it again declares it anew. */
	assert_int_equal(part(f, "partition/lock", f->token, D2, D3, NULL), 0);
	has(f, "\"state\":\"locked\"");
}

static void
test_session_abort(void **state)
{
	struct fx *f = *state;

	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, ",\"session\":\"job-42\""), 0);
	assert_int_equal(part(f, "partition/lock", f->token, D2, D3, ",\"session\":\"job-42\""), 0);
	assert_int_equal(part(f, "partition/lock", f->token, D3, "2023-01-04 00:00:00",
	                     ",\"session\":\"other\""),
	    0);
	assert_int_equal(run(f, "session/abort", "{\"session\":\"job-42\"}"), 0);
	has(f, "\"session\":\"job-42\"");
	has(f, "\"reason\":\"session_aborted\"");
	assert_int_equal(run(f, "partition/list", "{\"source\":\"s\"}"), 0);
	assert_non_null(strstr(f->out, "\"state\":\"locked\"")); /* the other session's */
	assert_int_equal(run(f, "session/abort", "{\"session\":\"job-42\"}"), 0);
	has(f, "\"failed\":[]");
}

static void
test_history(void **state)
{
	struct fx *f = *state;
	char cursor[256] = "";
	int pages = 0;

	assert_int_equal(part(f, "partition/lock", f->token, D1, D2, NULL), 0);
	assert_int_equal(part(f, "partition/unlock", f->token, D1, D2, NULL), 0);
	/* source_registered, provider_registered, locked, unlocked: pages of 3. */
	for (;;) {
		char buf[512];

		snprintf(buf, sizeof buf, "{\"source\":\"s\",\"limit\":3%s%s%s}",
		    cursor[0] != '\0' ? ",\"cursor\":\"" : "", cursor,
		    cursor[0] != '\0' ? "\"" : "");
		assert_int_equal(run(f, "history/query", buf), 0);
		pages++;
		if (strstr(f->out, "\"next_cursor\":null") != NULL) {
			break;
		}
		field(f, "next_cursor", cursor, sizeof cursor);
	}
	assert_int_equal(pages, 2);
	has(f, "\"type\":\"unlocked\"");
	assert_int_equal(run(f, "history/query", "{\"source\":\"s\",\"since_seq\":3}"), 0);
	assert_null(strstr(f->out, "\"type\":\"locked\""));
	has(f, "\"type\":\"unlocked\"");
	assert_int_equal(
	    run(f, "history/query", "{\"source\":\"s\",\"start\":\"" D1 "\",\"end\":\"" D2 "\"}"),
	    0);
	assert_null(strstr(f->out, "provider_registered"));
	has(f, "\"type\":\"locked\"");
	assert_int_equal(run(f, "history/query", "{\"source\":\"nope\"}"), PR_ENOSOURCE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_source_register_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_needs_owner_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_auth_and_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_and_readiness_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_record_and_rewind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expiry_and_fencing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_lock_takes_over_an_expired_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_403_and_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_recreate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
