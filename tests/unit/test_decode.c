/* SPDX-License-Identifier: MIT */
/*
 * Decoder and strict JSON reader tests. The examples under
 * $PARTREG_SCHEMAS/examples/ are the authoritative contract: every
 * cmd/<noun>.<verb>/valid/ file must decode, every
 * invalid/<code>--<what>.json must be refused with exactly <code>.
 *
 * Payloads are always passed in buffers of exactly their length, without a
 * NUL after them, so AddressSanitizer catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "examples.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "encode.h"
#include "json_strict.h"
#include <partreg/error.h>
#include <partreg/time.h>

/* Decode text (copied to an exact-size buffer). */
static int
decode(enum pr_cmd_kind kind, const char *text, struct pr_cmd *cmd, struct pr_decode_error *err)
{
	size_t len = strlen(text);
	char *buf = malloc(len > 0 ? len : 1);
	int rc;

	assert_non_null(buf);
	memcpy(buf, text, len);
	rc = pr__cmd_decode(kind, buf, len, cmd, err);
	free(buf);
	return rc;
}

static struct pr_cmd cmd;
static struct pr_decode_error derr;

#define assert_refused(kind, text, code)                                                           \
	do {                                                                                       \
		int rc_ = decode((kind), (text), &cmd, &derr);                                     \
		if (rc_ == 0 || strcmp(pr_err_code(rc_), (code)) != 0) {                           \
			fail_msg("%s: expected %s, got %s (%s)", (text), (code),                   \
			    rc_ == 0 ? "success" : pr_err_code(rc_), derr.message);                \
		}                                                                                  \
		assert_int_equal(derr.err, rc_);                                                   \
		assert_true(derr.message[0] != '\0');                                              \
	} while (0)

#define assert_accepted(kind, text)                                                                \
	do {                                                                                       \
		int rc_ = decode((kind), (text), &cmd, &derr);                                     \
		if (rc_ != 0) {                                                                    \
			fail_msg(                                                                  \
			    "%s: refused with %s (%s)", (text), pr_err_code(rc_), derr.message);   \
		}                                                                                  \
	} while (0)

/* ---- the example corpus ---- */

struct corpus_counts {
	int valid, invalid, failures;
};

static int
is_json_file(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/* Every strict prefix up to the closing brace is refused as invalid_json. */
static void
check_prefixes(
    enum pr_cmd_kind kind, const char *buf, size_t len, const char *path, struct corpus_counts *c)
{
	size_t last = len;

	while (last > 0 && buf[last - 1] != '}') {
		last--;
	}
	for (size_t n = 0; n + 1 < last; n++) {
		struct pr_cmd k;
		struct pr_decode_error e;
		char *p = malloc(n > 0 ? n : 1);
		assert_non_null(p);
		memcpy(p, buf, n);
		int rc = pr__cmd_decode(kind, p, n, &k, &e);
		free(p);
		if (rc != PR_EJSON) {
			print_error("%s: prefix of %zu bytes gave %s\n", path, n,
			    rc == 0 ? "success" : pr_err_code(rc));
			c->failures++;
			return;
		}
	}
}

static void
run_dir(enum pr_cmd_kind kind, const char *dir, int valid, struct corpus_counts *c)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL) {
		return; /* a command may have no invalid examples */
	}
	while ((de = readdir(d)) != NULL) {
		char path[1024], code[64];
		struct pr_cmd k;
		struct pr_decode_error e;
		size_t len;
		char *buf;
		int rc;

		if (!is_json_file(de->d_name)) {
			continue;
		}
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		buf = slurp(path, &len);
		rc = pr__cmd_decode(kind, buf, len, &k, &e);
		if (valid) {
			c->valid++;
			if (rc != 0) {
				print_error(
				    "%s: refused with %s: %s\n", path, pr_err_code(rc), e.message);
				c->failures++;
			} else {
				check_prefixes(kind, buf, len, path, c);
			}
		} else {
			const char *sep = strstr(de->d_name, "--");
			c->invalid++;
			if (sep == NULL || (size_t)(sep - de->d_name) >= sizeof code) {
				print_error("%s: name must be <error_code>--<what>.json\n", path);
				c->failures++;
			} else {
				memcpy(code, de->d_name, (size_t)(sep - de->d_name));
				code[sep - de->d_name] = '\0';
				if (rc == 0 || strcmp(pr_err_code(rc), code) != 0 || e.err != rc
				    || e.message[0] == '\0') {
					print_error("%s: expected %s, got %s (%s)\n", path, code,
					    rc == 0 ? "success" : pr_err_code(rc), e.message);
					c->failures++;
				}
			}
		}
		free(buf);
	}
	closedir(d);
}

static void
test_command_examples(void **state)
{
	char root[512];
	struct corpus_counts c = { 0 };
	int commands = 0;
	DIR *d;
	struct dirent *de;

	(void)state;
	snprintf(root, sizeof root, "%s/examples/cmd", schemas_dir());
	if ((d = opendir(root)) == NULL) {
		fail_msg("cannot open %s: %s", root, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		char name[256], dir[1024];
		enum pr_cmd_kind kind;
		char *dot;

		if (de->d_name[0] == '.') {
			continue;
		}
		/* "partition.lock" names the command "partition/lock". */
		snprintf(name, sizeof name, "%s", de->d_name);
		if ((dot = strchr(name, '.')) != NULL) {
			*dot = '/';
		}
		if (pr__cmd_lookup(name, strlen(name), &kind) != 0) {
			print_error("%s/%s: no such command\n", root, de->d_name);
			c.failures++;
			continue;
		}
		commands++;
		snprintf(dir, sizeof dir, "%s/%s/valid", root, de->d_name);
		run_dir(kind, dir, 1, &c);
		snprintf(dir, sizeof dir, "%s/%s/invalid", root, de->d_name);
		run_dir(kind, dir, 0, &c);
	}
	closedir(d);
	print_message("command examples: %d commands, %d valid, %d invalid, %d failures\n",
	    commands, c.valid, c.invalid, c.failures);
	assert_int_equal(commands, PR_CMD_COUNT);
	assert_true(c.valid >= PR_CMD_COUNT);
	assert_true(c.invalid > 0);
	assert_int_equal(c.failures, 0);
}

/* Every refusal class the codec produces has at least one example. */
static void
test_examples_cover_every_refusal(void **state)
{
	static const char *const codes[]
	    = { "invalid_json", "invalid_field", "missing_field", "invalid_name", "invalid_time",
		      "invalid_interval", "payload_too_large", "invalid_cursor" };
	char root[512];
	int seen[sizeof codes / sizeof codes[0]] = { 0 };
	DIR *d;
	struct dirent *de;

	(void)state;
	snprintf(root, sizeof root, "%s/examples/cmd", schemas_dir());
	assert_non_null(d = opendir(root));
	while ((de = readdir(d)) != NULL) {
		char dir[1024];
		DIR *sub;
		struct dirent *f;

		snprintf(dir, sizeof dir, "%s/%s/invalid", root, de->d_name);
		if (de->d_name[0] == '.' || (sub = opendir(dir)) == NULL) {
			continue;
		}
		while ((f = readdir(sub)) != NULL) {
			for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
				size_t n = strlen(codes[i]);
				if (strncmp(f->d_name, codes[i], n) == 0
				    && strncmp(f->d_name + n, "--", 2) == 0) {
					seen[i] = 1;
				}
			}
		}
		closedir(sub);
	}
	closedir(d);
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		if (!seen[i]) {
			fail_msg("no invalid example for %s", codes[i]);
		}
	}
}

/* Flipping bytes of a valid payload never crashes and always ends in a code. */
static void
test_mutations_never_crash(void **state)
{
	static const char base[] = "{\"source\":\"orders\",\"provider\":\"p\",\"start\":"
	                           "\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02 00:00:00\","
	                           "\"fence\":7,\"metadata\":{\"a\":[1,{\"b\":null}]}}";
	static const char repl[] = { '\0', '"', '\'', '\\', '{', '}', '[', ']', ',', ':', 'N',
		'\x80', '\xff', ' ', '0', '-' };
	size_t len = sizeof base - 1;
	char *buf = malloc(len);

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < len; i++) {
		for (size_t r = 0; r < sizeof repl; r++) {
			struct pr_cmd k;
			struct pr_decode_error e;
			memcpy(buf, base, len);
			buf[i] = repl[r];
			int rc = pr__cmd_decode(PR_CMD_PARTITION_UNLOCK, buf, len, &k, &e);
			assert_true(rc == 0 || (rc >= PR_ERRBASE && rc <= PR_ERRLAST));
			assert_true(rc == 0 || e.message[0] != '\0');
		}
	}
	free(buf);
}

/* ---- decoding, directly ---- */

static void
test_command_table(void **state)
{
	enum pr_cmd_kind k;

	(void)state;
	for (int i = 0; i < PR_CMD_COUNT; i++) {
		const char *n = pr__cmd_name((enum pr_cmd_kind)i);
		assert_non_null(n);
		assert_int_equal(pr__cmd_lookup(n, strlen(n), &k), 0);
		assert_int_equal(k, i);
	}
	assert_null(pr__cmd_name(PR_CMD_COUNT));
	assert_int_equal(pr__cmd_lookup("partition/extend", 16, &k), PR_ECOMMAND);
	assert_int_equal(pr__cmd_lookup("partition/renew", 15, &k), 0);
	assert_int_equal(k, PR_CMD_PARTITION_RENEW);
	assert_int_equal(pr__cmd_lookup("source/rotate-token", 19, &k), 0);
	assert_int_equal(k, PR_CMD_SOURCE_ROTATE_TOKEN);
	assert_int_equal(pr__cmd_lookup("source/rotate_token", 19, &k), PR_ECOMMAND);
	assert_int_equal(pr__cmd_lookup("session/abort", 13, &k), 0);
	assert_int_equal(k, PR_CMD_SESSION_ABORT);
	assert_int_equal(pr__cmd_lookup("history/query", 13, &k), 0);
	assert_int_equal(k, PR_CMD_HISTORY_QUERY);
	assert_int_equal(pr__cmd_lookup("partition/delete", 16, &k), 0);
	assert_int_equal(k, PR_CMD_PARTITION_DELETE);
	assert_int_equal(pr__cmd_lookup("source/registerX", 15, &k), 0);
	assert_int_equal(k, PR_CMD_SOURCE_REGISTER);
	assert_int_equal(pr__cmd_lookup("source/register", 14, &k), PR_ECOMMAND);
	assert_true(pr__cmd_is_write(PR_CMD_PARTITION_LOCK));
	assert_true(pr__cmd_is_write(PR_CMD_SOURCE_REGISTER));
	assert_true(pr__cmd_is_write(PR_CMD_PROVIDER_REGISTER));
	assert_false(pr__cmd_is_write(PR_CMD_READINESS_QUERY));
	assert_false(pr__cmd_is_write(PR_CMD_AGENT_RESYNC));
	assert_true(pr__cmd_is_write(PR_CMD_PARTITION_RENEW));
	assert_true(pr__cmd_is_write(PR_CMD_PARTITION_DELETE));
	assert_true(pr__cmd_is_write(PR_CMD_SOURCE_ROTATE_TOKEN));
	assert_true(pr__cmd_is_write(PR_CMD_SESSION_ABORT));
	assert_false(pr__cmd_is_write(PR_CMD_HISTORY_QUERY));
	assert_false(pr__cmd_is_write(PR_CMD_COUNT));
	assert_int_equal(decode(PR_CMD_COUNT, "{}", &cmd, &derr), PR_ECOMMAND);
}

static void
test_decode_lock_all_fields(void **state)
{
	(void)state;
	assert_accepted(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"orders\",\"provider\":\"airflow-etl\","
	    "\"start\":\"2023-01-01 00:00:00\",\"end\":\"2023-01-02T01:00:00+01:00\","
	    "\"ttl_s\":3600,\"session\":\"w-3\",\"request_id\":\"r-1\",\"access_token\":\"tok\","
	    "\"reply_to\":\"partreg/v1/reply/x\",\"correlation_id\":\"c-1\"}");
	assert_int_equal(cmd.kind, PR_CMD_PARTITION_LOCK);
	assert_string_equal(cmd.source, "orders");
	assert_string_equal(cmd.provider, "airflow-etl");
	assert_true(cmd.has_provider);
	assert_true(cmd.range.start == T0);
	assert_true(cmd.range.end == T1);
	assert_true(cmd.has_ttl_s && cmd.ttl_s == 3600);
	assert_true(cmd.has_session);
	assert_string_equal(cmd.session, "w-3");
	assert_true(cmd.has_request_id);
	assert_string_equal(cmd.request_id, "r-1");
	assert_true(cmd.has_access_token);
	assert_string_equal(cmd.access_token, "tok");
	assert_true(cmd.has_reply_to);
	assert_string_equal(cmd.reply_to, "partreg/v1/reply/x");
	assert_true(cmd.has_correlation_id);
	assert_string_equal(cmd.correlation_id, "c-1");
	assert_false(
	    cmd.has_fence || cmd.has_reason || cmd.has_metadata || cmd.has_limit || cmd.has_cursor);

	/* Optional fields absent: their flags are 0. */
	assert_accepted(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00.5Z\","
	    "\"end\":\"2023-01-01T00:00:00.500001Z\"}");
	assert_false(cmd.has_ttl_s || cmd.has_session || cmd.has_request_id || cmd.has_access_token
	    || cmd.has_reply_to || cmd.has_correlation_id);
	assert_true(cmd.range.end - cmd.range.start == 1);
}

static void
test_decode_list_and_unlock(void **state)
{
	(void)state;
	assert_accepted(PR_CMD_PARTITION_LIST, "{\"source\":\"orders\"}");
	assert_false(cmd.has_provider);
	assert_false(cmd.has_limit);
	assert_accepted(PR_CMD_PARTITION_LIST,
	    "{\"source\":\"orders\",\"provider\":\"p\",\"limit\":1000,\"cursor\":\"abc\"}");
	assert_true(cmd.has_provider);
	assert_string_equal(cmd.provider, "p");
	assert_true(cmd.has_limit && cmd.limit == 1000);
	assert_true(cmd.has_cursor);
	assert_string_equal(cmd.cursor, "abc");

	/* metadata is stored as compact text, key order and "/" kept. */
	assert_accepted(PR_CMD_PARTITION_UNLOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"fence\":9007199254740991,"
	    "\"metadata\": { \"b\" : [ 1, 2.5, true, null ], \"a\" : \"x/y\\u00e9\" } }");
	assert_true(cmd.has_fence && cmd.fence == UINT64_C(9007199254740991));
	assert_true(cmd.has_metadata);
	assert_string_equal(cmd.metadata, "{\"b\":[1,2.5,true,null],\"a\":\"x/y\xc3\xa9\"}");

	assert_accepted(PR_CMD_PARTITION_FAIL,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"reason\":\"disk full\"}");
	assert_true(cmd.has_reason);
	assert_string_equal(cmd.reason, "disk full");

	assert_accepted(PR_CMD_SOURCE_REGISTER, "{\"source\":\"orders\",\"owner\":\"data team\"}");
	assert_string_equal(cmd.owner, "data team");
	assert_accepted(PR_CMD_AGENT_RESYNC, "{}");
	assert_int_equal(cmd.source[0], '\0');
}

static void
test_decode_lease_and_owner_commands(void **state)
{
	(void)state;
	assert_accepted(PR_CMD_PARTITION_RENEW,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"fence\":7,\"ttl_s\":900}");
	assert_int_equal(cmd.kind, PR_CMD_PARTITION_RENEW);
	assert_true(cmd.has_fence && cmd.fence == 7);
	assert_true(cmd.has_ttl_s && cmd.ttl_s == 900);
	assert_true(cmd.has_range);
	assert_true(cmd.range.start == T0 && cmd.range.end == T1);
	assert_accepted(PR_CMD_PARTITION_RENEW,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"fence\":1}");
	assert_false(cmd.has_ttl_s);
	assert_refused(PR_CMD_PARTITION_RENEW,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"ttl_s\":900}",
	    "missing_field");
	assert_non_null(strstr(derr.message, "'fence'"));
	assert_non_null(strstr(derr.message, "partition/renew"));

	assert_accepted(PR_CMD_PARTITION_DELETE,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"access_token\":\"t\"}");
	assert_true(cmd.has_range && cmd.has_provider && cmd.has_access_token);
	assert_false(cmd.has_fence);
	assert_refused(PR_CMD_PARTITION_DELETE,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"fence\":7}",
	    "invalid_field");
	assert_non_null(strstr(derr.message, "unknown field 'fence' for partition/delete"));

	assert_accepted(
	    PR_CMD_SOURCE_ROTATE_TOKEN, "{\"source\":\"orders\",\"access_token\":\"t\"}");
	assert_string_equal(cmd.source, "orders");
	assert_false(cmd.has_provider || cmd.has_range);

	/* session/abort: the session is an id (pr__id_check), reason optional. */
	assert_accepted(PR_CMD_SESSION_ABORT, "{\"session\":\"airflow-worker-3:4711\"}");
	assert_true(cmd.has_session);
	assert_string_equal(cmd.session, "airflow-worker-3:4711");
	assert_false(cmd.has_reason);
	assert_int_equal(cmd.source[0], '\0');
	assert_accepted(PR_CMD_SESSION_ABORT, "{\"session\":\"w\",\"reason\":\"killed\"}");
	assert_true(cmd.has_reason);
	assert_string_equal(cmd.reason, "killed");
	assert_refused(PR_CMD_SESSION_ABORT, "{\"reason\":\"killed\"}", "missing_field");
	assert_non_null(strstr(derr.message, "'session'"));
	assert_refused(PR_CMD_SESSION_ABORT, "{\"session\":\"w\\u00e9\"}", "invalid_field");
	assert_non_null(strstr(derr.message, "'session'"));
	assert_refused(
	    PR_CMD_SESSION_ABORT, "{\"session\":\"w\",\"source\":\"s\"}", "invalid_field");
	assert_non_null(strstr(derr.message, "unknown field 'source' for session/abort"));

	/* partition/lock keeps ttl_s and session, and now reports its range too. */
	assert_accepted(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"ttl_s\":60,\"session\":\"w\"}");
	assert_true(cmd.has_range && cmd.has_ttl_s && cmd.has_session);
	assert_false(cmd.has_since_seq || cmd.has_from || cmd.has_to);
	/* Commands without a range leave it unset. */
	assert_accepted(PR_CMD_SOURCE_GET, "{\"source\":\"s\"}");
	assert_false(cmd.has_range);
}

static void
test_decode_history_query(void **state)
{
	(void)state;
	assert_accepted(PR_CMD_HISTORY_QUERY, "{\"source\":\"orders\"}");
	assert_int_equal(cmd.kind, PR_CMD_HISTORY_QUERY);
	assert_false(cmd.has_provider || cmd.has_range || cmd.has_since_seq || cmd.has_from
	    || cmd.has_to || cmd.has_limit || cmd.has_cursor);

	assert_accepted(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"orders\",\"provider\":\"p\",\"start\":\"2023-01-01 00:00:00\","
	    "\"end\":\"2023-01-02T01:00:00+01:00\",\"since_seq\":0,"
	    "\"from\":\"2023-01-02T03:04:05.123456Z\",\"to\":\"2023-01-03T00:00:00Z\","
	    "\"limit\":50,\"cursor\":\"c1\"}");
	assert_true(cmd.has_provider);
	assert_string_equal(cmd.provider, "p");
	assert_true(cmd.has_range);
	assert_true(cmd.range.start == T0 && cmd.range.end == T1);
	assert_true(cmd.has_since_seq && cmd.since_seq == 0);
	assert_true(cmd.has_from && cmd.from == NOW);
	assert_true(cmd.has_to && cmd.to == T2);
	assert_true(cmd.has_limit && cmd.limit == 50);
	assert_true(cmd.has_cursor);
	assert_string_equal(cmd.cursor, "c1");

	/* One end of the time window alone is fine. */
	assert_accepted(
	    PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"from\":\"2023-01-02T00:00:00Z\"}");
	assert_true(cmd.has_from && cmd.from == T1);
	assert_false(cmd.has_to);
	assert_accepted(PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"to\":\"2023-01-02T00:00:00Z\"}");
	assert_true(cmd.has_to && cmd.to == T1);
	assert_false(cmd.has_from);
	/* One microsecond is a window. */
	assert_accepted(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"from\":\"2023-01-02T00:00:00Z\",\"to\":\"2023-01-02T00:00:00."
	    "000001Z\"}");
	assert_true(cmd.to - cmd.from == 1);

	/* since_seq: 0 .. 2^53-1, a JSON integer. */
	assert_accepted(PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"since_seq\":9007199254740991}");
	assert_true(cmd.since_seq == UINT64_C(9007199254740991));
	assert_refused(PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"since_seq\":9007199254740992}",
	    "invalid_field");
	assert_refused(
	    PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"since_seq\":-1}", "invalid_field");
	assert_non_null(strstr(derr.message, "'since_seq'"));
	assert_refused(
	    PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"since_seq\":4.0}", "invalid_field");
	assert_refused(
	    PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"since_seq\":\"4\"}", "invalid_field");

	/* start and end go together; the message names both. */
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-01T00:00:00Z\"}", "invalid_field");
	assert_non_null(strstr(derr.message, "'start' and 'end'"));
	assert_non_null(strstr(derr.message, "only 'start'"));
	assert_false(cmd.has_range);
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"provider\":\"p\",\"end\":\"2023-01-01T00:00:00Z\"}",
	    "invalid_field");
	assert_non_null(strstr(derr.message, "'start' and 'end'"));
	assert_non_null(strstr(derr.message, "only 'end'"));
	/* A malformed time is reported as such, not as a missing partner. */
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-13-01T00:00:00Z\"}", "invalid_time");
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-02T00:00:00Z\",\"end\":\"2023-01-02T00:00:"
	    "00Z\"}",
	    "invalid_interval");
	assert_non_null(strstr(derr.message, "start (2023-01-02T00:00:00Z)"));

	/* from < to, as instants (offsets count). */
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"from\":\"2023-01-02T01:00:00+01:00\",\"to\":\"2023-01-02T00:00:"
	    "00Z\"}",
	    "invalid_interval");
	assert_non_null(strstr(derr.message, "from (2023-01-02T00:00:00Z)"));
	assert_non_null(strstr(derr.message, "to (2023-01-02T00:00:00Z)"));
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"from\":\"2023-01-03T00:00:00Z\",\"to\":\"2023-01-02T00:00:00Z\"}",
	    "invalid_interval");
	assert_refused(
	    PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"to\":\"yesterday\"}", "invalid_time");
	assert_non_null(strstr(derr.message, "'to'"));
	assert_refused(
	    PR_CMD_HISTORY_QUERY, "{\"source\":\"s\",\"type\":\"locked\"}", "invalid_field");
	assert_non_null(strstr(derr.message, "since_seq"));
	assert_non_null(strstr(derr.message, "cursor"));

	/* The new fields belong to history/query only. */
	assert_refused(
	    PR_CMD_PARTITION_LIST, "{\"source\":\"s\",\"since_seq\":1}", "invalid_field");
	assert_refused(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\","
	    "\"from\":\"2023-01-01T00:00:00Z\"}",
	    "invalid_field");
	/* Where start and end are required, a missing one stays missing_field. */
	assert_refused(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-01T00:00:00Z\"}", "missing_field");
}

/* request_id, correlation_id and reply_to survive a refusal elsewhere. */
static void
test_addressing_kept_on_error(void **state)
{
	(void)state;
	assert_refused(PR_CMD_PARTITION_LOCK,
	    "{\"request_id\":\"r-9\",\"correlation_id\":\"c-9\",\"reply_to\":\"partreg/v1/reply/"
	    "z\","
	    "\"source\":5}",
	    "invalid_field");
	assert_true(cmd.has_request_id);
	assert_string_equal(cmd.request_id, "r-9");
	assert_true(cmd.has_correlation_id);
	assert_string_equal(cmd.correlation_id, "c-9");
	assert_true(cmd.has_reply_to);
	assert_string_equal(cmd.reply_to, "partreg/v1/reply/z");

	/* Unknown field listed before the addressing fields: still kept. */
	assert_refused(PR_CMD_SOURCE_GET, "{\"strat\":1,\"request_id\":\"r-1\",\"source\":\"s\"}",
	    "invalid_field");
	assert_true(cmd.has_request_id);

	/* A bad request_id does not hide a good reply_to. */
	assert_refused(PR_CMD_SOURCE_GET,
	    "{\"request_id\":7,\"reply_to\":\"partreg/v1/reply/z\",\"source\":\"s\"}",
	    "invalid_field");
	assert_false(cmd.has_request_id);
	assert_true(cmd.has_reply_to);
	assert_non_null(strstr(derr.message, "'request_id'"));
}

static void
test_messages_name_the_field(void **state)
{
	(void)state;
	assert_refused(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\"}",
	    "missing_field");
	assert_non_null(strstr(derr.message, "'end'"));
	assert_non_null(strstr(derr.message, "partition/lock"));

	assert_refused(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"strat\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\"}",
	    "invalid_field");
	assert_non_null(strstr(derr.message, "unknown field 'strat'"));
	assert_non_null(strstr(derr.message, "start"));
	assert_non_null(strstr(derr.message, "ttl_s"));

	assert_refused(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-13-01T00:00:00Z\",\"end\":\"2023-12-02T00:00:"
	    "00Z\"}",
	    "invalid_time");
	assert_non_null(strstr(derr.message, "'start'"));
	assert_non_null(strstr(derr.message, "2023-13-01T00:00:00Z"));
	assert_non_null(strstr(derr.message, "2023-01-01T00:00:00Z")); /* an example */

	assert_refused(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-02 00:00:00\",\"end\":\"2023-01-32\"}",
	    "invalid_time");
	assert_non_null(strstr(derr.message, "'end'"));

	assert_refused(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-02 00:00:00\",\"end\":\"2023-01-01 00:00:00\"}",
	    "invalid_interval");
	assert_non_null(strstr(derr.message, "2023-01-02T00:00:00Z"));

	assert_refused(PR_CMD_SOURCE_GET, "{\"source\":\"a/b\"}", "invalid_name");
	assert_non_null(strstr(derr.message, "'source'"));
	assert_non_null(strstr(derr.message, "a/b"));

	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":0}", "invalid_field");
	assert_non_null(strstr(derr.message, "'limit'"));
	assert_non_null(strstr(derr.message, "1 to 1000"));

	/* Echoed input is printable ASCII only, and cut. */
	assert_refused(PR_CMD_SOURCE_GET,
	    "{\"source\":\"\\u0001\xc3\xa9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
	    "invalid_name");
	for (const char *p = derr.message; *p; p++) {
		assert_true(*p >= 0x20 && *p < 0x7f);
	}
	assert_non_null(strstr(derr.message, "..."));
}

/*
 * A date alone is that day's midnight, UTC, in every time field of every
 * command, the date checked as in a full time; a date with anything after it
 * but a full time of day is refused.
 */
static void
test_date_alone(void **state)
{
	static const char *const bad[] = { "2023-1-1", "2023-01-1", "2023-02-30", "2023-02-29",
		"2100-02-29", "2023-13-01", "2023-00-01", "2023-01-00", "0000-01-01", "2023-01-01T",
		"2023-01-01 ", "2023-01-01Z", "2023-01-01+01:00", "2023-01-01T00", "20230101" };
	char buf[256];

	(void)state;
	assert_accepted(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01\",\"end\":\"2023-01-"
	    "02\"}");
	assert_true(cmd.has_range && cmd.range.start == T0 && cmd.range.end == T1);
	assert_accepted(PR_CMD_PARTITION_REGISTER,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01\","
	    "\"end\":\"2023-01-02T00:00:00.000001Z\"}");
	assert_true(cmd.range.start == T0 && cmd.range.end == T1 + 1);
	assert_accepted(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-02 00:00:00\",\"end\":\"2023-01-03\"}");
	assert_true(cmd.range.start == T1 && cmd.range.end == T2);
	assert_accepted(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-01\",\"end\":\"2023-01-02\","
	    "\"from\":\"2023-01-02\",\"to\":\"2023-01-03\"}");
	assert_true(cmd.range.start == T0 && cmd.range.end == T1);
	assert_true(cmd.has_from && cmd.from == T1 && cmd.has_to && cmd.to == T2);
	assert_accepted(PR_CMD_PARTITION_UNLOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2024-02-29\",\"end\":\"2024-03-01\","
	    "\"fence\":3}");
	assert_true(cmd.range.end - cmd.range.start == INT64_C(86400000000));

	/* The same instant as its midnight: an empty interval. */
	assert_refused(PR_CMD_READINESS_QUERY,
	    "{\"source\":\"s\",\"start\":\"2023-01-01\",\"end\":\"2023-01-01T00:00:00Z\"}",
	    "invalid_interval");
	assert_non_null(strstr(derr.message, "start (2023-01-01T00:00:00Z)"));
	assert_refused(PR_CMD_HISTORY_QUERY,
	    "{\"source\":\"s\",\"from\":\"2023-01-02\",\"to\":\"2023-01-01\"}", "invalid_interval");

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(buf, sizeof buf,
		    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"%s\","
		    "\"end\":\"2023-03-02T00:00:00Z\"}",
		    bad[i]);
		assert_refused(PR_CMD_PARTITION_LOCK, buf, "invalid_time");
		assert_non_null(strstr(derr.message, "'start'"));
		snprintf(buf, sizeof buf, "{\"source\":\"s\",\"to\":\"%s\"}", bad[i]);
		assert_refused(PR_CMD_HISTORY_QUERY, buf, "invalid_time");
		assert_non_null(strstr(derr.message, "'to'"));
	}
	/* The message offers the date alone, also after the longest quoted value. */
	assert_refused(PR_CMD_PARTITION_LOCK,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
	    "invalid_time");
	assert_non_null(strstr(derr.message, "a date alone, \"2023-01-01\" (midnight UTC)"));
}

static void
test_integer_types_and_ranges(void **state)
{
	static const struct {
		const char *ttl;
		int ok;
	} cases[] = {
		{ "1", 1 },
		{ "2592000", 1 },
		{ "0", 0 },
		{ "-1", 0 },
		{ "-0", 0 },
		{ "2592001", 0 },
		{ "1.0", 0 },
		{ "1e1", 0 },
		{ "1E1", 0 },
		{ "0.5", 0 },
		{ "\"60\"", 0 },
		{ "true", 0 },
		{ "null", 0 },
		{ "[60]", 0 },
		{ "{}", 0 },
		{ "9223372036854775807", 0 },
		{ "9223372036854775808", 0 },
		{ "18446744073709551615", 0 },
		{ "18446744073709551616", 0 },
		{ "-9223372036854775808", 0 },
		{ "-9223372036854775809", 0 },
		{ "99999999999999999999999999999", 0 },
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(buf, sizeof buf,
		    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
		    "\"end\":\"2023-01-02T00:00:00Z\",\"ttl_s\":%s}",
		    cases[i].ttl);
		if (cases[i].ok) {
			assert_accepted(PR_CMD_PARTITION_LOCK, buf);
		} else {
			assert_refused(PR_CMD_PARTITION_LOCK, buf, "invalid_field");
			assert_non_null(strstr(derr.message, "'ttl_s'"));
		}
	}
	/* fence: 1..2^53-1 */
	snprintf(buf, sizeof buf,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"fence\":9007199254740992}");
	assert_refused(PR_CMD_PARTITION_UNLOCK, buf, "invalid_field");
	/* limit: 1..1000 */
	assert_accepted(PR_CMD_SOURCE_LIST, "{\"limit\":1}");
	assert_true(cmd.limit == 1);
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":1001}", "invalid_field");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":-9223372036854775808}", "invalid_field");
}

static void
test_strict_json(void **state)
{
	(void)state;
	assert_refused(PR_CMD_SOURCE_GET, "{'source':'s'}", "invalid_json");
	/* Ill-formed UTF-8 that json-c's own validation lets through. */
	assert_refused(PR_CMD_PARTITION_FAIL,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01\",\"end\":\"2023-01-02\","
	    "\"reason\":\"\xc0\xaf\"}",
	    "invalid_json"); /* overlong '/' */
	assert_refused(PR_CMD_SOURCE_GET, "{\"source\":\"\xed\xa0\x80\"}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_GET, "{\"source\":\"\xf4\x90\x80\x80\"}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_GET, "{\"source\":'s'}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":NaN}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":nan}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":Infinity}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":-Infinity}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":1.}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":01}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"limit\":+1}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{} x", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{}{}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{}\v", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{}\f", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "[]", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "1", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"cursor\":\"a\tb\"}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"cursor\":\"a\\u0000b\"}", "invalid_field");
	assert_refused(PR_CMD_SOURCE_LIST, "{\"cur\\u0000sor\":\"ab\"}", "invalid_json");
	assert_refused(PR_CMD_SOURCE_GET, "{\"source\":\"s\\u0000\"}", "invalid_field");
	assert_accepted(PR_CMD_SOURCE_LIST, " \t\r\n{ } \t\r\n");

	/* A NUL byte after the object, inside the length, is refused. */
	{
		static const char p[] = "{}\0";
		assert_int_equal(pr__cmd_decode(PR_CMD_SOURCE_LIST, p, 3, &cmd, &derr), PR_EJSON);
		assert_int_equal(pr__cmd_decode(PR_CMD_SOURCE_LIST, p, 2, &cmd, &derr), 0);
	}
}

static void
test_duplicate_keys(void **state)
{
	static const char *const meta_ok[] = {
		"{\"a\":[{\"x\":1},{\"x\":2}],\"b\":{},\"c\":{\"x\":{\"x\":1}}}",
		"{\"a\\\":b\":1,\"c\":\"{\\\"d\\\":1,\\\"d\\\":2}\",\"d\":[\"e\",\"e\"]}",
		"{\"\":1,\" \":2,\"A\":3,\"a\":4}",
		"{\"k\":[[],[{}],{\"k\":[{\"k\":{}}]}]}",
	};
	static const char *const meta_dup[] = {
		"{\"a\":1,\"a\":1}",
		"{\"a\":[{\"x\":1,\"x\":2}]}",
		"{\"a\":{\"b\":{\"c\":1,\"d\":2,\"c\":3}}}",
		"{\"\":1,\"\":2}",
		"{\"\\u0061\":1,\"a\":2}",
		"{\"x\":[{}],\"y\":{\"z\":{},\"z\":{}}}",
		"{\"a\":{\"p\":1,\"p\":{\"q\":1}},\"b\":{}}",
	};
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof meta_ok / sizeof meta_ok[0]; i++) {
		snprintf(buf, sizeof buf,
		    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
		    "\"end\":\"2023-01-02T00:00:00Z\",\"metadata\":%s}",
		    meta_ok[i]);
		assert_accepted(PR_CMD_PARTITION_UNLOCK, buf);
	}
	for (size_t i = 0; i < sizeof meta_dup / sizeof meta_dup[0]; i++) {
		snprintf(buf, sizeof buf,
		    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
		    "\"end\":\"2023-01-02T00:00:00Z\",\"metadata\":%s}",
		    meta_dup[i]);
		assert_refused(PR_CMD_PARTITION_UNLOCK, buf, "invalid_json");
		assert_non_null(strstr(derr.message, "duplicate"));
	}
	assert_refused(PR_CMD_SOURCE_GET, "{\"source\":\"a\",\"source\":\"b\"}", "invalid_json");
	assert_refused(
	    PR_CMD_SOURCE_GET, "{\"source\":\"a\",\"\\u0073ource\":\"b\"}", "invalid_json");
}

static void
test_size_and_depth_limits(void **state)
{
	size_t len = PR_CMD_PAYLOAD_MAX;
	char *big = malloc(len + 1);
	char buf[256];

	(void)state;
	assert_non_null(big);
	/* Exactly the limit (padded with spaces) is accepted; one more is not. */
	memset(big, ' ', len + 1);
	memcpy(big, "{\"source\":\"s\"}", 14);
	assert_int_equal(pr__cmd_decode(PR_CMD_SOURCE_GET, big, len, &cmd, &derr), 0);
	assert_int_equal(pr__cmd_decode(PR_CMD_SOURCE_GET, big, len + 1, &cmd, &derr), PR_ETOOBIG);
	assert_non_null(strstr(derr.message, "65536"));
	free(big);

	/* 100000 '[' : over the size limit; 60000 '[' : too deep, not a crash. */
	len = 60000;
	big = malloc(len);
	assert_non_null(big);
	memset(big, '[', len);
	assert_int_equal(pr__cmd_decode(PR_CMD_SOURCE_LIST, big, len, &cmd, &derr), PR_EJSON);
	memset(big, '{', len);
	for (size_t i = 1; i + 6 < len; i += 6) {
		memcpy(big + i, "\"a\":{", 5);
	}
	assert_int_equal(pr__cmd_decode(PR_CMD_SOURCE_LIST, big, len, &cmd, &derr), PR_EJSON);
	free(big);

	/* metadata nesting: 15 levels below the root are fine, 16 are not. */
	for (int levels = 14; levels <= 16; levels++) {
		int n = snprintf(buf, sizeof buf,
		    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
		    "\"end\":\"2023-01-02T00:00:00Z\",\"metadata\":");
		for (int i = 0; i < levels; i++) {
			n += snprintf(buf + n, sizeof buf - (size_t)n, "[");
		}
		for (int i = 0; i < levels; i++) {
			n += snprintf(buf + n, sizeof buf - (size_t)n, "]");
		}
		snprintf(buf + n, sizeof buf - (size_t)n, "}");
		int rc = decode(PR_CMD_PARTITION_UNLOCK, buf, &cmd, &derr);
		/* metadata must be an object: arrays give invalid_field when parsed. */
		assert_int_equal(rc, levels < 16 ? PR_EFIELD : PR_EJSON);
	}
}

static void
test_metadata_limit(void **state)
{
	char buf[2048];
	char fill[1100];

	(void)state;
	/* {"x":"mmm..."} is 8 bytes plus the fill. */
	memset(fill, 'm', 1016);
	fill[1016] = '\0';
	snprintf(buf, sizeof buf,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"metadata\":{ \"x\" : \"%s\" }}",
	    fill);
	assert_accepted(PR_CMD_PARTITION_UNLOCK, buf);
	assert_int_equal(strlen(cmd.metadata), PR_METADATA_MAX);
	fill[1016] = 'm';
	fill[1017] = '\0';
	snprintf(buf, sizeof buf,
	    "{\"source\":\"s\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\","
	    "\"end\":\"2023-01-02T00:00:00Z\",\"metadata\":{\"x\":\"%s\"}}",
	    fill);
	assert_refused(PR_CMD_PARTITION_UNLOCK, buf, "invalid_field");
	assert_non_null(strstr(derr.message, "1025"));
}

/* ---- the strict reader on its own ---- */

static void
test_json_strict_reader(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *says; /* part of the message */
	} rows[] = {
		{ "{\"a\":[1,{\"b\":null}]} ", 0, "" },
		{ "", PR_EJSON, "empty payload" },
		{ "[1]", PR_EJSON, "must be a JSON object" },
		{ "null ", PR_EJSON, "must be a JSON object" },
		{ "{\"a\":1} x", PR_EJSON, "" },
		{ "{\"a\":1,\"a\":2}", PR_EJSON, "duplicate key" },
		{ "{\"a\":{\"b\":1,\"b\":1}}", PR_EJSON, "duplicate key" },
		{ "{'a':1}", PR_EJSON, "" },
		{ "{\"a\":NaN}", PR_EJSON, "" },
		{ "{\"a\":1.}", PR_EJSON, "" },
		{ "{\"a\":\"\x01\"}", PR_EJSON, "" },
		{ "{\"a\\u0000\":1}", PR_EJSON, "" },
		{ "{\"a\":\"\xc0\xaf\"}", PR_EJSON, "not valid UTF-8" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pr_decode_error e = { 0 };
		struct pr_json *j = NULL;
		size_t len = strlen(rows[i].text);
		char *buf = malloc(len > 0 ? len : 1);
		int rc;

		assert_non_null(buf);
		memcpy(buf, rows[i].text, len);
		rc = pr__json_parse_strict(buf, len, &j, &e);
		free(buf);
		if (rc != rows[i].rc || strstr(e.message, rows[i].says) == NULL) {
			fail_msg("%s: got %d (%s), want %d (%s)", rows[i].text, rc, e.message,
			    rows[i].rc, rows[i].says);
		}
		if (rc == 0) {
			char *text = pr__json_dump(j, NULL);

			assert_string_equal(text, "{\"a\":[1,{\"b\":null}]}");
			free(text);
		} else {
			assert_null(j);
			assert_int_equal(e.err, rc);
		}
		pr__json_free(j);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_examples),
		cmocka_unit_test(test_examples_cover_every_refusal),
		cmocka_unit_test(test_mutations_never_crash),
		cmocka_unit_test(test_command_table),
		cmocka_unit_test(test_decode_lock_all_fields),
		cmocka_unit_test(test_decode_list_and_unlock),
		cmocka_unit_test(test_decode_lease_and_owner_commands),
		cmocka_unit_test(test_decode_history_query),
		cmocka_unit_test(test_addressing_kept_on_error),
		cmocka_unit_test(test_messages_name_the_field),
		cmocka_unit_test(test_date_alone),
		cmocka_unit_test(test_integer_types_and_ranges),
		cmocka_unit_test(test_json_strict_reader),
		cmocka_unit_test(test_strict_json),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_size_and_depth_limits),
		cmocka_unit_test(test_metadata_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
