/* SPDX-License-Identifier: MIT */
/*
 * Codec tests. The examples under $PARTREG_SCHEMAS/examples/ are the
 * authoritative contract: every cmd/<noun>.<verb>/valid/ file must decode,
 * every invalid/<code>--<what>.json must be refused with exactly <code>.
 * The encoders are checked against the reply/ and state/ valid examples
 * (which tests/unit/check_schemas.py validates against the schemas), so an
 * encoder output that drifts from its schema fails here.
 *
 * Payloads are always passed in buffers of exactly their length, without a
 * NUL after them, so AddressSanitizer catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "codec.h"
#include <partreg/error.h>
#include <partreg/time.h>

/* 2023-01-01, 2023-01-02, 2023-01-03 00:00:00Z and a time with a fraction. */
#define T0   INT64_C(1672531200000000)
#define T1   INT64_C(1672617600000000)
#define T2   INT64_C(1672704000000000)
#define T3   INT64_C(1672790400000000)
#define NOW  INT64_C(1672628645123456) /* 2023-01-02T03:04:05.123456Z */
#define HOUR INT64_C(3600000000)

static const char *
schemas_dir(void)
{
	const char *d = getenv("PARTREG_SCHEMAS");

	if (d == NULL || d[0] == '\0') {
		fail_msg("PARTREG_SCHEMAS is not set: run through ctest, or set it to "
		         "<source tree>/schemas");
	}
	return d;
}

/* The file's bytes in a buffer of exactly *len bytes (no NUL after them). */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n = 0;

	if (f == NULL) {
		fail_msg("cannot open %s: %s", path, strerror(errno));
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fail_msg("cannot size %s", path);
	}
	buf = malloc(n > 0 ? (size_t)n : 1);
	assert_non_null(buf);
	if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fail_msg("cannot read %s", path);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

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
	    "{\"source\":\"s\",\"start\":\"2023-01-02 00:00:00\",\"end\":\"2023-01-01\"}",
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

/* ---- encoding ---- */

/* Parse text with json-c; the test fails on anything but an object. */
static struct json_object *
parse_obj(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);

	json_tokener_free(tok);
	if (o == NULL) {
		fail_msg("not JSON: %.*s", (int)len, text);
	}
	return o;
}

/* The encoder output j (consumed) equals the example file, as JSON values. */
static void
assert_matches_example(struct pr_json *j, const char *example)
{
	char path[1024];
	size_t elen, olen;
	char *etext, *out;
	struct json_object *want, *got;

	snprintf(path, sizeof path, "%s/examples/%s", schemas_dir(), example);
	etext = slurp(path, &elen);
	assert_non_null(j);
	out = pr__json_dump(j, &olen);
	pr__json_free(j);
	assert_non_null(out);
	assert_int_equal(strlen(out), olen);
	/* Compact output: no whitespace outside strings (no pretty-printing). */
	assert_null(strstr(out, ": "));
	assert_null(strstr(out, "\n"));
	want = parse_obj(etext, elen);
	got = parse_obj(out, olen);
	if (!json_object_equal(want, got)) {
		fail_msg("%s differs:\n got: %s\nwant: %s", example, out,
		    json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(want);
	json_object_put(got);
	free(out);
	free(etext);
}

static void
assert_text_matches_example(char *text, size_t len, const char *example)
{
	char path[1024];
	size_t elen;
	char *etext;
	struct json_object *want, *got;

	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	snprintf(path, sizeof path, "%s/examples/%s", schemas_dir(), example);
	etext = slurp(path, &elen);
	want = parse_obj(etext, elen);
	got = parse_obj(text, len);
	if (!json_object_equal(want, got)) {
		fail_msg("%s differs:\n got: %s\nwant: %s", example, text,
		    json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(want);
	json_object_put(got);
	free(etext);
}

static struct pr_partition
locked_partition(void)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	strcpy(p.source, "orders");
	strcpy(p.provider, "airflow-etl");
	p.range = (struct pr_range) { T1, T2 };
	p.state = PR_LOCKED;
	p.version = 1;
	p.fence = 7;
	p.since = NOW;
	p.expires_at = NOW + HOUR;
	p.updated_at = NOW;
	p.seq = 42;
	strcpy(p.session, "airflow-worker-3");
	return p;
}

static struct pr_partition
ready_partition(void)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	strcpy(p.source, "orders");
	strcpy(p.provider, "airflow-etl");
	p.range = (struct pr_range) { T0, T1 };
	p.state = PR_READY;
	p.version = 2;
	p.fence = 6;
	p.since = T1 - HOUR;
	p.updated_at = T1 - HOUR;
	p.seq = 40;
	strcpy(p.metadata, "{\"rows\":1200,\"run_id\":\"scheduled__2023-01-01\"}");
	return p;
}

static struct pr_partition
failed_partition(void)
{
	struct pr_partition p;

	memset(&p, 0, sizeof p);
	strcpy(p.source, "orders");
	strcpy(p.provider, "cron-backfill");
	p.range = (struct pr_range) { T2, T3 };
	p.state = PR_FAILED;
	p.version = 0;
	p.fence = 5;
	p.since = T1 + HOUR;
	p.updated_at = T1 + HOUR;
	p.seq = 39;
	strcpy(p.reason, "lease_expired");
	return p;
}

static struct pr_source
orders_source(void)
{
	struct pr_source s;

	memset(&s, 0, sizeof s);
	strcpy(s.name, "orders");
	strcpy(s.owner, "data-platform");
	s.created_at = T0 - 12 * HOUR;
	s.updated_at = NOW;
	s.seq = 42;
	return s;
}

static void
test_encode_partitions(void **state)
{
	struct pr_partition p = locked_partition();
	struct pr_partition r = ready_partition();
	struct pr_partition f = failed_partition();

	(void)state;
	assert_matches_example(pr__json_partition(&p), "reply/partition/valid/locked.json");
	assert_matches_example(
	    pr__json_partition(&r), "reply/partition/valid/ready-with-metadata.json");
	assert_matches_example(pr__json_partition(&f), "reply/partition/valid/failed.json");
	assert_matches_example(pr__json_partition_state(&p, 3), "state/partition/valid/locked.json");

	/* Stored metadata that is not an object is left out, not passed on. */
	strcpy(r.metadata, "[1,2]");
	struct pr_json *j = pr__json_partition(&r);
	char *out = pr__json_dump(j, NULL);
	assert_null(strstr(out, "metadata"));
	free(out);
	pr__json_free(j);
}

static void
test_encode_exact_text(void **state)
{
	struct pr_json *j;
	size_t len;
	char *out;

	(void)state;
	j = pr__json_agent_status("online", "partregd@host-1", 3, NOW);
	out = pr__json_dump(j, &len);
	assert_string_equal(out,
	    "{\"status\":\"online\",\"agent_id\":\"partregd@host-1\","
	    "\"version\":\"" PR_VERSION_STRING "\",\"epoch\":3,"
	    "\"at\":\"2023-01-02T03:04:05.123456Z\"}");
	assert_int_equal(len, strlen(out));
	free(out);
	pr__json_free(j);

	/* Canonical times: whole seconds carry no fraction; "/" is not escaped. */
	struct pr_event ev;
	memset(&ev, 0, sizeof ev);
	ev.seq = 1;
	ev.at = T0;
	strcpy(ev.type, "source_registered");
	strcpy(ev.source, "a/b");
	j = pr__json_event(&ev, 1);
	out = pr__json_dump(j, NULL);
	assert_string_equal(out,
	    "{\"seq\":1,\"epoch\":1,\"at\":\"2023-01-01T00:00:00Z\","
	    "\"type\":\"source_registered\",\"source\":\"a/b\"}");
	free(out);
	pr__json_free(j);

	/* set_* helpers; big u64 exact. */
	j = pr__json_array();
	pr__json_append(j, pr__json_array());
	struct pr_json *page = pr__json_page(j, "");
	pr__json_set_u64(page, "n", UINT64_MAX);
	pr__json_set_str(page, "s", "\"q\"\n");
	pr__json_set_bool(page, "b", 5);
	out = pr__json_dump(page, NULL);
	assert_string_equal(out,
	    "{\"items\":[[]],\"next_cursor\":null,"
	    "\"n\":18446744073709551615,\"s\":\"\\\"q\\\"\\n\",\"b\":true}");
	free(out);
	pr__json_free(page);
	pr__json_free(NULL);
}

static void
test_encode_state(void **state)
{
	struct pr_source s = orders_source();
	struct pr_partition blocked[2] = { locked_partition(), failed_partition() };
	struct pr_range ready[1] = { { T0, T1 } };
	struct pr_event ev;

	(void)state;
	assert_matches_example(
	    pr__json_summary(&s, 3, ready, 1, blocked, 2, 0), "state/summary/valid/orders.json");

	s.seq = 1;
	s.updated_at = T0;
	assert_matches_example(
	    pr__json_summary(&s, 1, NULL, 0, NULL, 0, 0), "state/summary/valid/new-source.json");

	memset(&ev, 0, sizeof ev);
	ev.seq = 41;
	ev.at = T1 - HOUR;
	strcpy(ev.type, "unlocked");
	strcpy(ev.source, "orders");
	strcpy(ev.provider, "airflow-etl");
	ev.range = (struct pr_range) { T0, T1 };
	ev.state = PR_READY;
	ev.fence = 6;
	ev.version = 2;
	assert_matches_example(pr__json_event(&ev, 3), "state/event/valid/unlocked.json");

	memset(&ev, 0, sizeof ev);
	ev.seq = 1;
	ev.at = T0 - 12 * HOUR;
	strcpy(ev.type, "source_registered");
	strcpy(ev.source, "orders");
	assert_matches_example(pr__json_event(&ev, 1), "state/event/valid/source-registered.json");

	assert_matches_example(pr__json_agent_status("online", "partregd@host-1", 3, NOW),
	    "state/agent-status/valid/online.json");

	struct pr_agent_stats st = { .agent_id = "partregd@host-1",
		.epoch = 3,
		.at = NOW,
		.started_at = NOW - 3600 * INT64_C(1000000),
		.commands = 120,
		.refused = 4,
		.replayed = 2,
		.batches = 37,
		.leases_expired = 1,
		.commit_ms_last = 0.25,
		.commit_ms_max = 1.5,
		.store_used_bytes = 1048576,
		.store_map_bytes = UINT64_C(17179869184),
		.store_readers = 1 };
	assert_matches_example(pr__json_agent_stats(&st), "state/agent-stats/valid/running.json");
}

static void
test_encode_results(void **state)
{
	struct pr_source s = orders_source();
	struct pr_provider pv;
	struct pr_partition p = locked_partition();
	struct pr_partition r = ready_partition();
	struct pr_range gaps[4];
	struct pr_readiness rd;
	struct pr_json *items;

	(void)state;
	assert_matches_example(pr__json_source(&s, "6f1c7a52-3b0e-4d8c-9a41-2f5e8c7d9b10"),
	    "reply/source/valid/registered.json");
	assert_matches_example(pr__json_source(&s, NULL), "reply/source/valid/get.json");
	assert_matches_example(pr__json_resync(NULL), "reply/resync/valid/all.json");
	assert_matches_example(pr__json_resync("orders"), "reply/resync/valid/source.json");

	memset(&pv, 0, sizeof pv);
	strcpy(pv.name, "airflow-etl");
	pv.created_at = NOW;
	assert_matches_example(
	    pr__json_provider("orders", &pv, "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e1f"),
	    "reply/provider/valid/registered.json");

	memset(&rd, 0, sizeof rd);
	rd.gaps = gaps;
	rd.gaps_cap = 4;
	rd.ngaps = 1;
	gaps[0] = (struct pr_range) { T1, T2 };
	rd.nblockers = 1;
	rd.ready_through = T1;
	assert_matches_example(
	    pr__json_readiness("orders", (struct pr_range) { T0, T2 }, &rd, &p, 1, 42),
	    "reply/readiness/valid/blocked.json");

	memset(&rd, 0, sizeof rd);
	rd.gaps = gaps;
	rd.gaps_cap = 4;
	rd.ready = 1;
	rd.ready_through = T1;
	assert_matches_example(
	    pr__json_readiness("orders", (struct pr_range) { T0, T1 }, &rd, NULL, 0, 42),
	    "reply/readiness/valid/ready.json");

	memset(&rd, 0, sizeof rd);
	rd.gaps = gaps;
	rd.gaps_cap = 4;
	rd.ngaps = 1;
	rd.ready_through = T1; /* == start: null */
	assert_matches_example(
	    pr__json_readiness("orders", (struct pr_range) { T1, T2 }, &rd, NULL, 0, 42),
	    "reply/readiness/valid/nothing-ready.json");

	/* More gaps or blockers than were passed: truncated. */
	rd.gaps_cap = 0;
	rd.ngaps = 3;
	struct pr_json *j
	    = pr__json_readiness("orders", (struct pr_range) { T1, T2 }, &rd, NULL, 0, 1);
	char *out = pr__json_dump(j, NULL);
	assert_non_null(strstr(out, "\"gaps\":[]"));
	assert_non_null(strstr(out, "\"truncated\":true"));
	free(out);
	pr__json_free(j);

	items = pr__json_array();
	pr__json_append(items, pr__json_partition(&r));
	pr__json_append(items, pr__json_partition(&p));
	assert_matches_example(
	    pr__json_page(items, "eyJrIjoiMjAyMyJ9"), "reply/page/valid/partitions.json");
	items = pr__json_array();
	pr__json_append(items, pr__json_source(&s, NULL));
	assert_matches_example(pr__json_page(items, NULL), "reply/page/valid/last-page.json");
}

/* What a session/abort leaves: the lock failed, its lease gone. */
static struct pr_partition
aborted_partition(struct pr_range r, uint64_t fence, uint64_t version, uint64_t seq)
{
	struct pr_partition p = locked_partition();

	p.range = r;
	p.state = PR_FAILED;
	p.fence = fence;
	p.version = version;
	p.since = T1 + 3 * HOUR + HOUR / 2;
	p.updated_at = p.since;
	p.expires_at = 0;
	p.seq = seq;
	strcpy(p.reason, "session_aborted");
	return p;
}

static void
test_encode_lease_and_history_results(void **state)
{
	struct pr_partition a = aborted_partition((struct pr_range) { T1, T2 }, 7, 1, 43);
	struct pr_partition b = aborted_partition((struct pr_range) { T2, T3 }, 8, 0, 44);
	struct pr_partition tomb = ready_partition();
	struct pr_event ev;
	struct pr_json *arr;
	char *out;

	(void)state;
	arr = pr__json_array();
	pr__json_append(arr, pr__json_partition(&a));
	pr__json_append(arr, pr__json_partition(&b));
	assert_matches_example(pr__json_session_abort("airflow-worker-3", arr),
	    "reply/session-abort/valid/two-failed.json");
	assert_matches_example(pr__json_session_abort("airflow-worker-9", pr__json_array()),
	    "reply/session-abort/valid/nothing-held.json");
	/* NULL partitions: an empty array, not a missing member. */
	struct pr_json *j = pr__json_session_abort("w", NULL);
	out = pr__json_dump(j, NULL);
	assert_string_equal(out, "{\"session\":\"w\",\"failed\":[]}");
	free(out);
	pr__json_free(j);

	/* history/query: events as on P/events/<source>, then the cursor. */
	arr = pr__json_array();
	memset(&ev, 0, sizeof ev);
	ev.seq = 42;
	ev.at = NOW;
	strcpy(ev.type, "locked");
	strcpy(ev.source, "orders");
	strcpy(ev.provider, "airflow-etl");
	ev.range = (struct pr_range) { T1, T2 };
	ev.state = PR_LOCKED;
	ev.fence = 7;
	ev.version = 1;
	pr__json_append(arr, pr__json_event(&ev, 3));
	ev.seq = 43;
	ev.at = a.since;
	strcpy(ev.type, "failed");
	ev.state = PR_FAILED;
	strcpy(ev.reason, "session_aborted");
	pr__json_append(arr, pr__json_event(&ev, 3));
	assert_matches_example(
	    pr__json_history(arr, "eyJzIjo0M30"), "reply/history/valid/page.json");
	assert_matches_example(
	    pr__json_history(pr__json_array(), ""), "reply/history/valid/last-page.json");
	assert_matches_example(pr__json_history(NULL, NULL), "reply/history/valid/last-page.json");

	/* partition/delete's tombstone: the partition with state "deleted". */
	tomb.state = PR_DELETED;
	tomb.since = NOW;
	tomb.updated_at = NOW;
	tomb.seq = 43;
	tomb.metadata[0] = '\0';
	assert_matches_example(pr__json_partition(&tomb), "reply/partition/valid/deleted.json");
	assert_matches_example(
	    pr__json_partition_state(&tomb, 3), "state/partition/valid/deleted-tombstone.json");
}

static void
test_reply_envelopes(void **state)
{
	struct pr_partition p = locked_partition();
	size_t len, len2;
	char *ok, *again, *out;

	(void)state;
	ok = pr__reply_encode(0, NULL, "lock-orders-20230102", NULL, pr__json_partition(&p), &len);
	assert_text_matches_example(ok, len, "reply/envelope/valid/ok-partition.json");

	again = pr__reply_replayed(ok, len, "c-10", &len2);
	assert_text_matches_example(again, len2, "reply/envelope/valid/replayed.json");
	free(again);
	/* Replaying a replay with no correlation_id drops the old one. */
	again = pr__reply_replayed(ok, len, NULL, &len2);
	assert_null(strstr(again, "correlation_id"));
	assert_non_null(strstr(again, "\"replayed\":true"));
	free(again);
	free(ok);
	assert_null(pr__reply_replayed("[1]", 3, "c", &len2));
	assert_null(pr__reply_replayed("{\"ok\":", 6, "c", &len2));

	out = pr__reply_encode(0, NULL, NULL, NULL, NULL, &len);
	assert_string_equal(out, "{\"ok\":true,\"status\":200,\"result\":{}}");
	assert_text_matches_example(out, len, "reply/envelope/valid/ok-empty-result.json");
	free(out);

	out = pr__reply_encode(
	    PR_EMISSING, "field 'end' is required for partition/lock", "r-2", "c-9", NULL, &len);
	assert_text_matches_example(out, len, "reply/envelope/valid/error-missing-field.json");
	free(out);

	/* Default message, and a result passed with an error becomes details. */
	out = pr__reply_encode(PR_ELOCKED, NULL, NULL, NULL, NULL, &len);
	assert_string_equal(out,
	    "{\"ok\":false,\"status\":409,\"error\":{\"code\":\"already_locked\","
	    "\"message\":\"the partition is locked by another run\"}}");
	free(out);

	struct pr_json *det = pr__json_page(NULL, NULL);
	out = pr__reply_encode(PR_ELOCKED, NULL, NULL, NULL, det, &len);
	assert_non_null(strstr(out, "\"details\":{\"items\":[],\"next_cursor\":null}"));
	free(out);

	/* An errno value maps to internal / 500. */
	out = pr__reply_encode(-5, NULL, NULL, NULL, NULL, &len);
	assert_non_null(strstr(out, "\"status\":500"));
	assert_non_null(strstr(out, "\"code\":\"internal\""));
	free(out);
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
		cmocka_unit_test(test_integer_types_and_ranges),
		cmocka_unit_test(test_strict_json),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_size_and_depth_limits),
		cmocka_unit_test(test_metadata_limit),
		cmocka_unit_test(test_encode_partitions),
		cmocka_unit_test(test_encode_exact_text),
		cmocka_unit_test(test_encode_state),
		cmocka_unit_test(test_encode_results),
		cmocka_unit_test(test_encode_lease_and_history_results),
		cmocka_unit_test(test_reply_envelopes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
