/* SPDX-License-Identifier: MIT */
/*
 * The command decoder. Owns the command table (name, write or read, the
 * fields each command requires and allows) and the field table (each
 * field's type and range). A payload is read by json_strict.c first; then
 * each command's fields are read from the tables, then the rules across
 * fields (start < end, start and end together, from < to). Errors name the
 * field and say what is expected; echoed input is quoted with
 * pr__decode_quote, so a message is always one line of valid UTF-8.
 *
 * Rejected: a hand-written decoder per command (sixteen copies of the same
 * checks, drifting apart) and a JSON Schema validator at run time (its
 * messages name schema keywords, not what a person should change).
 */
#include "decode.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "codec_int.h"
#include "names.h"

/* ---- command table ---- */

enum field {
	F_REQUEST_ID,
	F_ACCESS_TOKEN,
	F_REPLY_TO,
	F_CORRELATION_ID,
	F_SOURCE,
	F_OWNER,
	F_PROVIDER,
	F_START,
	F_END,
	F_TTL_S,
	F_SESSION,
	F_FENCE,
	F_REASON,
	F_METADATA,
	F_LIMIT,
	F_CURSOR,
	F_SINCE_SEQ,
	F_FROM,
	F_TO,
	F_GRACE_S,
	F_COUNT
};

#define B(f)   (UINT32_C(1) << (f))
#define COMMON (B(F_REQUEST_ID) | B(F_ACCESS_TOKEN) | B(F_REPLY_TO) | B(F_CORRELATION_ID))
#define PART   (B(F_SOURCE) | B(F_PROVIDER) | B(F_START) | B(F_END))

static const char *const field_names[F_COUNT] = {
	[F_REQUEST_ID] = "request_id",
	[F_ACCESS_TOKEN] = "access_token",
	[F_REPLY_TO] = "reply_to",
	[F_CORRELATION_ID] = "correlation_id",
	[F_SOURCE] = "source",
	[F_OWNER] = "owner",
	[F_PROVIDER] = "provider",
	[F_START] = "start",
	[F_END] = "end",
	[F_TTL_S] = "ttl_s",
	[F_SESSION] = "session",
	[F_FENCE] = "fence",
	[F_REASON] = "reason",
	[F_METADATA] = "metadata",
	[F_LIMIT] = "limit",
	[F_CURSOR] = "cursor",
	[F_SINCE_SEQ] = "since_seq",
	[F_FROM] = "from",
	[F_TO] = "to",
	[F_GRACE_S] = "grace_s",
};

struct cmddef {
	const char *name;
	int write;
	uint32_t required;
	uint32_t optional; /* besides COMMON, which every command allows */
};

static const struct cmddef cmddefs[PR_CMD_COUNT] = {
	[PR_CMD_SOURCE_REGISTER] = { "source/register", 1, B(F_SOURCE) | B(F_OWNER), 0 },
	[PR_CMD_SOURCE_GET] = { "source/get", 0, B(F_SOURCE), 0 },
	[PR_CMD_SOURCE_LIST] = { "source/list", 0, 0, B(F_LIMIT) | B(F_CURSOR) },
	/* source optional: without it, the source whose owner token is given. */
	[PR_CMD_PROVIDER_REGISTER] = { "provider/register", 1, B(F_PROVIDER), B(F_SOURCE) },
	[PR_CMD_PARTITION_REGISTER] = { "partition/register", 1, PART, 0 },
	[PR_CMD_PARTITION_LOCK] = { "partition/lock", 1, PART, B(F_TTL_S) | B(F_SESSION) },
	[PR_CMD_PARTITION_UNLOCK] = { "partition/unlock", 1, PART, B(F_FENCE) | B(F_METADATA) },
	[PR_CMD_PARTITION_FAIL] = { "partition/fail", 1, PART, B(F_FENCE) | B(F_REASON) },
	[PR_CMD_PARTITION_LIST]
	= { "partition/list", 0, B(F_SOURCE), B(F_PROVIDER) | B(F_LIMIT) | B(F_CURSOR) },
	[PR_CMD_READINESS_QUERY] = { "readiness/query", 0, B(F_SOURCE) | B(F_START) | B(F_END), 0 },
	[PR_CMD_AGENT_RESYNC] = { "agent/resync", 0, 0, B(F_SOURCE) },
	[PR_CMD_PARTITION_RENEW] = { "partition/renew", 1, PART | B(F_FENCE), B(F_TTL_S) },
	[PR_CMD_PARTITION_DELETE] = { "partition/delete", 1, PART, 0 },
	[PR_CMD_SOURCE_ROTATE_TOKEN] = { "source/rotate-token", 1, B(F_SOURCE), 0 },
	[PR_CMD_SESSION_ABORT] = { "session/abort", 1, B(F_SESSION), B(F_REASON) | B(F_GRACE_S) },
	/* start/end optional here, but only together: see pr__cmd_decode. */
	[PR_CMD_HISTORY_QUERY] = { "history/query", 0, B(F_SOURCE),
	    B(F_PROVIDER) | B(F_START) | B(F_END) | B(F_SINCE_SEQ) | B(F_FROM) | B(F_TO)
	        | B(F_LIMIT) | B(F_CURSOR) },
};

const char *
pr__cmd_name(enum pr_cmd_kind kind)
{
	if ((unsigned)kind >= PR_CMD_COUNT) {
		return NULL;
	}
	return cmddefs[kind].name;
}

int
pr__cmd_lookup(const char *name, size_t len, enum pr_cmd_kind *out)
{
	for (int k = 0; k < PR_CMD_COUNT; k++) {
		const char *n = cmddefs[k].name;
		if (strlen(n) == len && memcmp(n, name, len) == 0) {
			*out = (enum pr_cmd_kind)k;
			return 0;
		}
	}
	return PR_ECOMMAND;
}

int
pr__cmd_is_write(enum pr_cmd_kind kind)
{
	return (unsigned)kind < PR_CMD_COUNT && cmddefs[kind].write;
}

/* ---- layer 4: fields ---- */

/* Any string field: its bytes, refused when not a string or with a NUL. */
static int
get_str(struct json_object *v, const char *name, const char *what, const char **s, size_t *len,
    struct pr_decode_error *e)
{
	if (!json_object_is_type(v, json_type_string)) {
		return pr__decode_fail(
		    e, PR_EFIELD, "field '%s' must be a string (%s)", name, what);
	}
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	if (strlen(*s) != *len) {
		return pr__decode_fail(
		    e, PR_EFIELD, "field '%s' must not contain \\u0000 (%s)", name, what);
	}
	return 0;
}

/* A JSON integer in [lo, hi]; 1.0, "1" and true are refused. */
static int
get_int(struct json_object *v, const char *name, int64_t lo, int64_t hi, int64_t *out,
    struct pr_decode_error *e)
{
	int64_t x = 0;

	if (!json_object_is_type(v, json_type_int)) {
		return pr__decode_fail(e, PR_EFIELD,
		    "field '%s' must be an integer from %" PRId64 " to %" PRId64, name, lo, hi);
	}
	/*
	 * json-c clamps what does not fit in 64 bits to INT64_MIN/INT64_MAX
	 * (and UINT64_MAX, read here as INT64_MAX); every range here excludes
	 * both, so a clamped value is refused like any other.
	 */
	x = json_object_get_int64(v);
	if (x < lo || x > hi) {
		return pr__decode_fail(e, PR_EFIELD,
		    "field '%s' must be an integer from %" PRId64 " to %" PRId64, name, lo, hi);
	}
	*out = x;
	return 0;
}

static int
get_name(struct json_object *v, const char *name, char *out, struct pr_decode_error *e)
{
	const char *what = "1-200 bytes of UTF-8, no control characters, '/', '+', '#', "
	                   "or leading '$'";
	const char *s = NULL;
	size_t len = 0;
	char q[48];
	int rc;

	if ((rc = get_str(v, name, what, &s, &len, e)) != 0) {
		return rc;
	}
	if (pr__name_check(s, len) != 0) {
		return pr__decode_fail(e, PR_ENAME,
		    "field '%s': \"%s\" (%zu bytes) is not a valid name; names are %s", name,
		    pr__decode_quote(s, len, q), len, what);
	}
	memcpy(out, s, len + 1);
	return 0;
}

static int
get_time(struct json_object *v, const char *name, int64_t *out, struct pr_decode_error *e)
{
	const char *what = "an RFC 3339 time such as \"2023-01-01T00:00:00Z\"";
	const char *s = NULL;
	size_t len = 0;
	char q[48];
	int rc;

	if ((rc = get_str(v, name, what, &s, &len, e)) != 0) {
		return rc;
	}
	if (pr_time_parse(s, len, out) != 0) {
		return pr__decode_fail(e, PR_ETIME,
		    "field '%s': \"%s\" is not a valid time; expected %s, "
		    "\"2023-01-01 00:00:00\" (UTC when no offset) or a date alone, "
		    "\"2023-01-01\" (midnight UTC)",
		    name, pr__decode_quote(s, len, q), what);
	}
	return 0;
}

static int
get_id(struct json_object *v, const char *name, char *out, struct pr_decode_error *e)
{
	const char *s = NULL;
	size_t len = 0;
	int rc;

	if ((rc = get_str(v, name, "1-64 printable ASCII characters", &s, &len, e)) != 0) {
		return rc;
	}
	if (pr__id_check(s, len) != 0) {
		if (len == 0 || len > PR_ID_MAX) {
			return pr__decode_fail(e, PR_EFIELD,
			    "field '%s' must be 1-%d printable ASCII characters (got %zu)", name,
			    PR_ID_MAX, len);
		}
		return pr__decode_fail(e, PR_EFIELD,
		    "field '%s' must be printable ASCII (0x20-0x7e); it has another character",
		    name);
	}
	memcpy(out, s, len + 1);
	return 0;
}

static int
printable_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e) {
			return 0;
		}
	}
	return 1;
}

/* Strings, recursively, in a metadata value: no NUL inside any of them. */
static int
no_nul_strings(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		return strlen(json_object_get_string(o)) == (size_t)json_object_get_string_len(o);
	case json_type_object: {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			if (!no_nul_strings(v)) {
				return 0;
			}
		}
		return 1;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			if (!no_nul_strings(json_object_array_get_idx(o, i))) {
				return 0;
			}
		}
		return 1;
	default:
		return 1;
	}
}

static int
decode_field(enum field f, struct json_object *v, struct pr_cmd *cmd, struct pr_decode_error *e)
{
	const char *name = field_names[f];
	const char *s = NULL;
	size_t len = 0;
	int64_t x = 0;
	int rc;

	switch (f) {
	case F_REQUEST_ID:
		if ((rc = get_id(v, name, cmd->request_id, e)) == 0) {
			cmd->has_request_id = 1;
		}
		return rc;
	case F_CORRELATION_ID:
		if ((rc = get_id(v, name, cmd->correlation_id, e)) == 0) {
			cmd->has_correlation_id = 1;
		}
		return rc;
	case F_SESSION:
		if ((rc = get_id(v, name, cmd->session, e)) == 0) {
			cmd->has_session = 1;
		}
		return rc;
	case F_ACCESS_TOKEN:
		if ((rc = get_str(v, name, "the token returned at registration", &s, &len, e))
		    != 0) {
			return rc;
		}
		if (pr__token_check(s, len) != 0) {
			return pr__decode_fail(e, PR_EFIELD,
			    "field '%s' must be 1-%d printable ASCII characters: the token "
			    "returned at registration",
			    name, PR_TOKEN_MAX);
		}
		memcpy(cmd->access_token, s, len + 1);
		cmd->has_access_token = 1;
		return 0;
	case F_REPLY_TO:
		/* Only the shape here: the agent checks the prefix (it knows it). */
		if ((rc = get_str(v, name, "an MQTT topic under <prefix>/reply/", &s, &len, e))
		    != 0) {
			return rc;
		}
		if (len == 0 || len > PR_TOPIC_MAX) {
			return pr__decode_fail(e, PR_EFIELD,
			    "field '%s' must be an MQTT topic of 1-%d bytes under <prefix>/reply/",
			    name, PR_TOPIC_MAX);
		}
		memcpy(cmd->reply_to, s, len + 1);
		cmd->has_reply_to = 1;
		return 0;
	case F_SOURCE:
		return get_name(v, name, cmd->source, e);
	case F_OWNER:
		return get_name(v, name, cmd->owner, e);
	case F_PROVIDER:
		if ((rc = get_name(v, name, cmd->provider, e)) == 0) {
			cmd->has_provider = 1;
		}
		return rc;
	case F_START:
		return get_time(v, name, &cmd->range.start, e);
	case F_END:
		return get_time(v, name, &cmd->range.end, e);
	case F_TTL_S:
		if ((rc = get_int(v, name, 1, PR_TTL_S_MAX, &x, e)) == 0) {
			cmd->ttl_s = x;
			cmd->has_ttl_s = 1;
		}
		return rc;
	case F_GRACE_S:
		if ((rc = get_int(v, name, 1, PR_GRACE_S_MAX, &x, e)) == 0) {
			cmd->grace_s = x;
			cmd->has_grace_s = 1;
		}
		return rc;
	case F_FENCE:
		if ((rc = get_int(v, name, 1, PR_FENCE_MAX, &x, e)) == 0) {
			cmd->fence = (uint64_t)x;
			cmd->has_fence = 1;
		}
		return rc;
	case F_SINCE_SEQ:
		if ((rc = get_int(v, name, 0, PR_SEQ_MAX, &x, e)) == 0) {
			cmd->since_seq = (uint64_t)x;
			cmd->has_since_seq = 1;
		}
		return rc;
	case F_FROM:
		if ((rc = get_time(v, name, &cmd->from, e)) == 0) {
			cmd->has_from = 1;
		}
		return rc;
	case F_TO:
		if ((rc = get_time(v, name, &cmd->to, e)) == 0) {
			cmd->has_to = 1;
		}
		return rc;
	case F_LIMIT:
		if ((rc = get_int(v, name, 1, PR_LIST_LIMIT_MAX, &x, e)) == 0) {
			cmd->limit = (size_t)x;
			cmd->has_limit = 1;
		}
		return rc;
	case F_REASON:
		if ((rc = get_str(v, name, "a short text", &s, &len, e)) != 0) {
			return rc;
		}
		if (len == 0 || len > PR_REASON_MAX) {
			return pr__decode_fail(e, PR_EFIELD,
			    "field '%s' must be 1-%d bytes of text (got %zu)", name, PR_REASON_MAX,
			    len);
		}
		memcpy(cmd->reason, s, len + 1);
		cmd->has_reason = 1;
		return 0;
	case F_CURSOR:
		if ((rc = get_str(v, name, "the next_cursor of a previous page", &s, &len, e))
		    != 0) {
			return rc;
		}
		if (len == 0 || len >= PR_CURSOR_MAX || !printable_ascii(s, len)) {
			return pr__decode_fail(e, PR_ECURSOR,
			    "field '%s' must be the next_cursor of a previous page, unchanged",
			    name);
		}
		memcpy(cmd->cursor, s, len + 1);
		cmd->has_cursor = 1;
		return 0;
	case F_METADATA: {
		if (!json_object_is_type(v, json_type_object)) {
			return pr__decode_fail(e, PR_EFIELD,
			    "field '%s' must be a JSON object, e.g. {\"rows\": 1200}", name);
		}
		if (!no_nul_strings(v)) {
			return pr__decode_fail(
			    e, PR_EFIELD, "field '%s': strings must not contain \\u0000", name);
		}
		s = json_object_to_json_string_length(v, DUMP_FLAGS, &len);
		if (s == NULL) {
			return pr__decode_fail(e, PR_EINTERNAL, "out of memory");
		}
		if (len > PR_METADATA_MAX) {
			return pr__decode_fail(e, PR_EFIELD,
			    "field '%s' is %zu bytes as compact JSON; at most %d are allowed", name,
			    len, PR_METADATA_MAX);
		}
		memcpy(cmd->metadata, s, len + 1);
		cmd->has_metadata = 1;
		return 0;
	}
	case F_COUNT:
		break;
	}
	return pr__decode_fail(e, PR_EINTERNAL, "internal: field %d", (int)f);
}

static int
field_lookup(const char *key, enum field *out)
{
	for (int f = 0; f < F_COUNT; f++) {
		if (strcmp(field_names[f], key) == 0) {
			*out = (enum field)f;
			return 0;
		}
	}
	return -1;
}

/* "source, provider, start, end, ttl_s, session, request_id, ..." */
static void
list_fields(uint32_t mask, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	/* Command fields first, then the common ones. */
	for (int pass = 0; pass < 2; pass++) {
		for (int f = 0; f < F_COUNT; f++) {
			int common = (COMMON & B(f)) != 0;
			if (!(mask & B(f)) || common != (pass == 1)) {
				continue;
			}
			int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", field_names[f]);
			if (w < 0 || (size_t)w >= cap - n) {
				return;
			}
			n += (size_t)w;
		}
	}
}

int
pr__cmd_decode(enum pr_cmd_kind kind, const char *payload, size_t len, struct pr_cmd *cmd,
    struct pr_decode_error *err)
{
	const struct cmddef *def;
	struct pr_json *parsed;
	struct json_object *root, *v;
	uint32_t allowed, given = 0;
	int rc;

	memset(cmd, 0, sizeof *cmd);
	memset(err, 0, sizeof *err);
	cmd->kind = kind;
	if ((unsigned)kind >= PR_CMD_COUNT) {
		return pr__decode_fail(err, PR_ECOMMAND, "unknown command");
	}
	def = &cmddefs[kind];
	allowed = def->required | def->optional | COMMON;

	if (len > PR_CMD_PAYLOAD_MAX) {
		return pr__decode_fail(err, PR_ETOOBIG,
		    "payload is %zu bytes; commands are at most %d bytes", len, PR_CMD_PAYLOAD_MAX);
	}
	if ((rc = pr__json_parse_strict(payload, len, &parsed, err)) != 0) {
		return rc;
	}
	root = J(parsed);

	/*
	 * The addressing fields first, each on its own, so that an error reply
	 * can still carry request_id and go to reply_to whatever else is wrong.
	 * The first error among them is kept.
	 */
	static const enum field addressing[] = { F_REQUEST_ID, F_CORRELATION_ID, F_REPLY_TO };
	struct pr_decode_error first = { 0 };
	for (size_t i = 0; i < sizeof addressing / sizeof addressing[0]; i++) {
		struct pr_decode_error e1;
		if (json_object_object_get_ex(root, field_names[addressing[i]], &v)
		    && decode_field(addressing[i], v, cmd, &e1) != 0 && first.err == 0) {
			first = e1;
		}
	}
	if (first.err != 0) {
		rc = first.err;
		*err = first;
		goto out;
	}

	/* Unknown fields, in document order: usually a typo ("strat"). */
	json_object_object_foreach(root, key, val)
	{
		enum field f;
		(void)val;
		if (field_lookup(key, &f) != 0 || !(allowed & B(f))) {
			char q[48], list[160];
			list_fields(allowed, list, sizeof list);
			rc = pr__decode_fail(err, PR_EFIELD,
			    "unknown field '%s' for %s; allowed: %s",
			    pr__decode_quote(key, strlen(key), q), def->name, list);
			goto out;
		}
	}

	for (int f = 0; f < F_COUNT; f++) {
		if (!(allowed & B(f)) || f == F_REQUEST_ID || f == F_CORRELATION_ID
		    || f == F_REPLY_TO) {
			continue;
		}
		if (!json_object_object_get_ex(root, field_names[f], &v)) {
			if (def->required & B(f)) {
				rc = pr__decode_fail(err, PR_EMISSING,
				    "field '%s' is required for %s", field_names[f], def->name);
				goto out;
			}
			continue;
		}
		if ((rc = decode_field((enum field)f, v, cmd, err)) != 0) {
			goto out;
		}
		given |= B(f);
	}

	/*
	 * Rules across fields, after every field is valid on its own. Where
	 * start and end are optional (history/query) they still go together:
	 * half a range is almost always a forgotten field, not "unbounded".
	 */
	if (!(given & B(F_START)) != !(given & B(F_END))) {
		rc = pr__decode_fail(err, PR_EFIELD,
		    "fields 'start' and 'end' go together for %s: give both (a partition "
		    "[start, end)) or neither; got only '%s'",
		    def->name, (given & B(F_START)) ? "start" : "end");
		goto out;
	}
	if (given & B(F_START)) {
		char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
		if (cmd->range.start >= cmd->range.end) {
			rc = pr__decode_fail(err, PR_EINTERVAL,
			    "start (%s) must be before end (%s); intervals are [start, end)",
			    pr_time_format(cmd->range.start, a), pr_time_format(cmd->range.end, b));
			goto out;
		}
		cmd->has_range = 1;
	}
	if (cmd->has_from && cmd->has_to && cmd->from >= cmd->to) {
		char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
		rc = pr__decode_fail(err, PR_EINTERVAL,
		    "from (%s) must be before to (%s); the time window is [from, to)",
		    pr_time_format(cmd->from, a), pr_time_format(cmd->to, b));
		goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}
