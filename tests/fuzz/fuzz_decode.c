/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a command as the agent receives one, through the
 * agent's own decoder and reply encoder (the sources of partregd_core,
 * built with coverage instrumentation, ASan and UBSan; see
 * CMakeLists.txt here).
 *
 * The input is "<command name>\n<payload>": the name is what follows
 * P/cmd/ in the topic. As in agent.c, an unknown name is decoded as
 * agent/resync (every field optional) to find where to reply. Without a
 * '\n' the whole input is the payload of an unknown command. run_fuzz.sh
 * writes schemas/examples/cmd/ in this form as the seeds.
 *
 * Besides memory errors, leaks and undefined behaviour, a broken promise
 * of decode.h or json_strict.h aborts with a message, so the fuzzer
 * reports it like a crash: a refusal carries one of the documented errors
 * and a message of one line of valid UTF-8, and keeps only valid
 * addressing fields; a decoded command has every field in its documented
 * range; and the reply the agent would send is strict JSON, which the
 * agent's own reader accepts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "decode.h"
#include "encode.h"
#include "json_strict.h"
#include "names.h"

#define FUZZ_NAME "fuzz_decode"
#include "check.h"

#define PREFIX       "partreg/v1"
#define REPLY_PREFIX PREFIX "/reply/"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is s[0..cap) one line of valid UTF-8, NUL-terminated, no control character? */
static int
one_line(const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);
	size_t len;

	if (nul == NULL) {
		return 0;
	}
	len = (size_t)(nul - s);
	if (pr__utf8_check(s, len, NULL) != 0) {
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* The errors pr__cmd_decode documents. */
static int
documented(int rc)
{
	switch (rc) {
	case PR_ETOOBIG:
	case PR_EJSON:
	case PR_EFIELD:
	case PR_EMISSING:
	case PR_ENAME:
	case PR_ETIME:
	case PR_EINTERVAL:
	case PR_ECURSOR:
	case PR_ECOMMAND:
	case PR_EINTERNAL:
		return 1;
	default:
		return 0;
	}
}

static int
in_time_range(int64_t t)
{
	return t >= PR_TIME_MIN && t <= PR_TIME_MAX;
}

/* Is text[0..len) one strict JSON object? */
static int
strict_object(const char *text, size_t len, struct pr_decode_error *e)
{
	struct pr_json *j = NULL;
	int rc = pr__json_parse_strict(text, len, &j, e);

	pr__json_free(j);
	return rc == 0;
}

/* The fields an error reply is addressed with: valid whenever set. */
static void
check_addressing(const struct pr_cmd *cmd)
{
	CHECK(terminated(cmd->request_id, sizeof cmd->request_id), "request_id");
	CHECK(terminated(cmd->correlation_id, sizeof cmd->correlation_id), "correlation_id");
	CHECK(terminated(cmd->reply_to, sizeof cmd->reply_to), "reply_to");
	CHECK(!cmd->has_request_id || pr__id_check(cmd->request_id, strlen(cmd->request_id)) == 0,
	    cmd->request_id);
	CHECK(!cmd->has_correlation_id
	        || pr__id_check(cmd->correlation_id, strlen(cmd->correlation_id)) == 0,
	    cmd->correlation_id);
	CHECK(!cmd->has_reply_to
	        || (strlen(cmd->reply_to) >= 1 && strlen(cmd->reply_to) <= PR_TOPIC_MAX),
	    cmd->reply_to);
	/* The agent's check of the reply topic's prefix (publisher.c). */
	if (cmd->has_reply_to
	    && pr__reply_topic_check(cmd->reply_to, strlen(cmd->reply_to), PREFIX) == 0) {
		CHECK(strncmp(cmd->reply_to, REPLY_PREFIX, strlen(REPLY_PREFIX)) == 0
		        && strlen(cmd->reply_to) > strlen(REPLY_PREFIX),
		    cmd->reply_to);
	}
}

static void
check_decoded(enum pr_cmd_kind kind, const struct pr_cmd *cmd, const struct pr_decode_error *err)
{
	struct pr_decode_error e;

	CHECK(err->err == 0, err->message);
	CHECK(cmd->kind == kind, pr__cmd_name(kind));
	CHECK(terminated(cmd->access_token, sizeof cmd->access_token), "access_token");
	CHECK(terminated(cmd->source, sizeof cmd->source), "source");
	CHECK(terminated(cmd->owner, sizeof cmd->owner), "owner");
	CHECK(terminated(cmd->provider, sizeof cmd->provider), "provider");
	CHECK(terminated(cmd->session, sizeof cmd->session), "session");
	CHECK(terminated(cmd->reason, sizeof cmd->reason), "reason");
	CHECK(terminated(cmd->metadata, sizeof cmd->metadata), "metadata");
	CHECK(terminated(cmd->cursor, sizeof cmd->cursor), "cursor");

	CHECK(cmd->source[0] == '\0' || pr__name_check(cmd->source, strlen(cmd->source)) == 0,
	    cmd->source);
	CHECK(cmd->owner[0] == '\0' || pr__name_check(cmd->owner, strlen(cmd->owner)) == 0,
	    cmd->owner);
	CHECK(!cmd->has_provider || pr__name_check(cmd->provider, strlen(cmd->provider)) == 0,
	    cmd->provider);
	CHECK(!cmd->has_session || pr__id_check(cmd->session, strlen(cmd->session)) == 0,
	    cmd->session);
	CHECK(!cmd->has_access_token
	        || (strlen(cmd->access_token) >= 1 && strlen(cmd->access_token) <= PR_TOKEN_MAX),
	    "access_token length");
	CHECK(
	    !cmd->has_reason || (strlen(cmd->reason) >= 1 && strlen(cmd->reason) <= PR_REASON_MAX),
	    "reason length");
	CHECK(!cmd->has_cursor || strlen(cmd->cursor) >= 1, "cursor length");

	if (cmd->has_range) {
		CHECK(in_time_range(cmd->range.start) && in_time_range(cmd->range.end),
		    "range in PR_TIME_MIN..PR_TIME_MAX");
		CHECK(cmd->range.start < cmd->range.end, "start < end");
	} else {
		CHECK(cmd->range.start == 0 && cmd->range.end == 0, "no range, yet start or end");
	}
	CHECK(!cmd->has_from || in_time_range(cmd->from), "from");
	CHECK(!cmd->has_to || in_time_range(cmd->to), "to");
	CHECK(!(cmd->has_from && cmd->has_to) || cmd->from < cmd->to, "from < to");
	CHECK(!cmd->has_ttl_s || (cmd->ttl_s >= 1 && cmd->ttl_s <= PR_TTL_S_MAX), "ttl_s");
	CHECK(
	    !cmd->has_fence || (cmd->fence >= 1 && cmd->fence <= (uint64_t)PR_FENCE_MAX), "fence");
	CHECK(!cmd->has_since_seq || cmd->since_seq <= (uint64_t)PR_SEQ_MAX, "since_seq");
	CHECK(!cmd->has_limit || (cmd->limit >= 1 && cmd->limit <= PR_LIST_LIMIT_MAX), "limit");
	if (cmd->has_metadata) {
		/* Stored, then embedded in replies and state as the object it is. */
		CHECK(strlen(cmd->metadata) <= PR_METADATA_MAX, "metadata length");
		CHECK(strict_object(cmd->metadata, strlen(cmd->metadata), &e), e.message);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	const char *payload = nl != NULL ? nl + 1 : text;
	size_t len = nl != NULL ? size - (size_t)(nl + 1 - text) : size;
	struct pr_cmd *cmd = malloc(sizeof *cmd);
	struct pr_decode_error err, e;
	enum pr_cmd_kind kind = PR_CMD_AGENT_RESYNC;
	char q[48], *reply;
	size_t rlen = 0;
	int rc;

	if (cmd == NULL) {
		return 0;
	}
	if (nl != NULL && pr__cmd_lookup(text, (size_t)(nl - text), &kind) == 0) {
		CHECK(pr__cmd_name(kind) != NULL, "a looked-up command has a name");
	}

	/* How refusals quote input (at most 40 bytes, '?' for the rest). */
	pr__decode_quote(payload, len, q);
	CHECK(one_line(q, sizeof q) && strchr(q, '"') == NULL && strchr(q, '\\') == NULL, q);

	rc = pr__cmd_decode(kind, payload, len, cmd, &err);
	check_addressing(cmd);
	if (rc != 0) {
		CHECK(documented(rc), pr_err_code(rc));
		CHECK(err.err == rc, err.message);
		CHECK(one_line(err.message, sizeof err.message) && err.message[0] != '\0',
		    err.message);
	} else {
		check_decoded(kind, cmd, &err);
	}

	/* The reply the agent sends for it (an empty result on success). */
	reply = pr__reply_encode(rc, rc != 0 ? err.message : NULL,
	    cmd->has_request_id ? cmd->request_id : NULL,
	    cmd->has_correlation_id ? cmd->correlation_id : NULL, NULL, &rlen);
	CHECK(reply != NULL, "pr__reply_encode: out of memory");
	CHECK(strict_object(reply, rlen, &e), e.message);
	free(reply);
	free(cmd);
	return 0;
}
