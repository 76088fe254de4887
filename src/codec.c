/* SPDX-License-Identifier: MIT */
/*
 * The wire codec, on json-c 0.16. Owns every json-c call of the project:
 * nothing else includes <json-c/...>, and struct pr_json is a json_object
 * under another name (the pointer is cast, never dereferenced outside).
 *
 * Decoding runs in three layers, each refusing what the one below lets by:
 *
 *  1. json-c's tokener in STRICT mode with UTF-8 validation and a depth
 *     limit, on a payload whose size was checked first (json-c has no size
 *     limit). The whole input must be consumed, trailing whitespace aside.
 *  2. A lexical pass over the same bytes, now known to be well formed for
 *     json-c: it refuses what STRICT still accepts (single quotes, NaN,
 *     Infinity, "1.", raw control characters inside strings, \u0000 in
 *     keys) and counts the keys of every object in document order.
 *  3. A walk of the parsed tree that compares those counts with the
 *     objects' sizes. json-c keeps the last of duplicate keys in the first
 *     one's place, so the raw count exceeds the parsed size exactly for an
 *     object with a duplicate key, and the first such object in document
 *     order is the first mismatch of the two pre-order sequences.
 *     Rejected: decoding keys ourselves and comparing them pairwise (an
 *     escape decoder, quadratic in keys) or patching json-c.
 *
 * Then each command's fields are read from a table: the fields it requires,
 * the ones it allows, their types and ranges; then the rules across fields
 * (start < end, start and end together, from < to). Errors name the field
 * and say what is expected. Echoed input in messages is reduced to printable
 * ASCII so a message is always valid UTF-8 and a single line.
 *
 * Encoding builds json-c objects; every time goes through pr_time_format so
 * equal instants have equal text. Integers above 2^53 never occur in
 * practice (seq, fence, version count events), so clients in JavaScript
 * read them exactly.
 */
#include "codec.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <partreg/error.h>
#include "names.h"
#include <partreg/time.h>

#define JSON_DEPTH 16
#define DUMP_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static struct json_object *
J(const struct pr_json *j)
{
	return (struct json_object *)(uintptr_t)j;
}

static struct pr_json *
PJ(struct json_object *o)
{
	return (struct pr_json *)o;
}

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
	[PR_CMD_PROVIDER_REGISTER] = { "provider/register", 1, B(F_SOURCE) | B(F_PROVIDER), 0 },
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
	[PR_CMD_SESSION_ABORT] = { "session/abort", 1, B(F_SESSION), B(F_REASON) },
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

/* ---- error helpers ---- */

static int fail(struct pr_decode_error *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct pr_decode_error *e, int err, const char *fmt, ...)
{
	va_list ap;

	e->err = err;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return err;
}

/*
 * Copy at most 40 bytes of s[0..len) into out for quoting in a message:
 * printable ASCII kept (except '"' and '\\'), anything else as '?', "..."
 * when cut. The result is always one line of valid UTF-8.
 */
static const char *
quote(const char *s, size_t len, char out[48])
{
	size_t n = len > 40 ? 40 : len;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	if (len > n) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

/* ---- layer 2: the lexical pass ---- */

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
number_ok(const char *p, size_t n)
{
	size_t i = 0;

	if (i < n && p[i] == '-') {
		i++;
	}
	if (i < n && p[i] == '0') {
		i++;
	} else if (i < n && p[i] >= '1' && p[i] <= '9') {
		while (i < n && is_digit(p[i])) {
			i++;
		}
	} else {
		return 0;
	}
	if (i < n && p[i] == '.') {
		i++;
		if (i >= n || !is_digit(p[i])) {
			return 0;
		}
		while (i < n && is_digit(p[i])) {
			i++;
		}
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-')) {
			i++;
		}
		if (i >= n || !is_digit(p[i])) {
			return 0;
		}
		while (i < n && is_digit(p[i])) {
			i++;
		}
	}
	return i == n;
}

static int
is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '+'
	    || c == '-' || c == '.';
}

/*
 * Scan p[0..len) (accepted by json-c). Fill counts[i] with the number of
 * keys of the i-th object in document order (counts has room for one entry
 * per '{'); *nobj is how many objects there are.
 */
static int
lex_check(const char *p, size_t len, uint32_t *counts, size_t *nobj, struct pr_decode_error *e)
{
	size_t stack[JSON_DEPTH + 2]; /* index into counts, or SIZE_MAX for an array */
	size_t depth = 0;
	size_t n = 0;
	int expect_key = 0;
	size_t i = 0;

	while (i < len) {
		char c = p[i];

		if (is_ws(c)) {
			i++;
		} else if (c == '{' || c == '[') {
			if (depth == JSON_DEPTH + 2) {
				return fail(e, PR_EJSON, "JSON is nested deeper than %d levels",
				    JSON_DEPTH);
			}
			if (c == '{') {
				counts[n] = 0;
				stack[depth++] = n++;
			} else {
				stack[depth++] = SIZE_MAX;
			}
			expect_key = c == '{';
			i++;
		} else if (c == '}' || c == ']') {
			if (depth > 0) {
				depth--;
			}
			expect_key = 0;
			i++;
		} else if (c == ',') {
			expect_key = depth > 0 && stack[depth - 1] != SIZE_MAX;
			i++;
		} else if (c == ':') {
			i++;
		} else if (c == '"') {
			int key = expect_key;
			size_t start = i;

			if (key && depth > 0) {
				counts[stack[depth - 1]]++;
			}
			expect_key = 0;
			for (i++; i < len && p[i] != '"'; i++) {
				unsigned char s = (unsigned char)p[i];
				if (s < 0x20) {
					return fail(e, PR_EJSON,
					    "invalid JSON at byte %zu: control characters inside "
					    "strings must be escaped (e.g. \\n, \\t)",
					    i);
				}
				if (s == '\\' && i + 1 < len) {
					i++;
					if (p[i] == 'u' && key && i + 4 < len
					    && memcmp(p + i + 1, "0000", 4) == 0) {
						return fail(e, PR_EJSON,
						    "invalid JSON at byte %zu: keys must not "
						    "contain "
						    "\\u0000",
						    start);
					}
				}
			}
			i++; /* the closing quote */
		} else if (is_word_char(c)) {
			size_t s = i;
			while (i < len && is_word_char(p[i])) {
				i++;
			}
			size_t w = i - s;
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
				if (!((w == 4 && memcmp(p + s, "true", 4) == 0)
				        || (w == 5 && memcmp(p + s, "false", 5) == 0)
				        || (w == 4 && memcmp(p + s, "null", 4) == 0))) {
					char q[48];
					return fail(e, PR_EJSON,
					    "invalid JSON at byte %zu: '%s' is not a JSON value "
					    "(NaN and Infinity are not JSON)",
					    s, quote(p + s, w, q));
				}
			} else if (!number_ok(p + s, w)) {
				char q[48];
				return fail(e, PR_EJSON,
				    "invalid JSON at byte %zu: '%s' is not a JSON number", s,
				    quote(p + s, w, q));
			}
		} else if (c == '\'') {
			return fail(e, PR_EJSON,
			    "invalid JSON at byte %zu: strings and keys take double quotes, "
			    "not single quotes",
			    i);
		} else {
			return fail(
			    e, PR_EJSON, "invalid JSON at byte %zu: unexpected character", i);
		}
	}
	*nobj = n;
	return 0;
}

/* ---- layer 3: the tree walk ---- */

static int
tree_check(struct json_object *o, const uint32_t *counts, size_t nobj, size_t *idx,
    struct pr_decode_error *e)
{
	int rc;

	switch (json_object_get_type(o)) {
	case json_type_object:
		if (*idx >= nobj || counts[*idx] != (uint32_t)json_object_object_length(o)) {
			return fail(e, PR_EJSON,
			    "invalid JSON: an object has a duplicate key (each key may appear "
			    "once)");
		}
		(*idx)++;
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			if ((rc = tree_check(v, counts, nobj, idx, e)) != 0) {
				return rc;
			}
		}
		return 0;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			rc = tree_check(json_object_array_get_idx(o, i), counts, nobj, idx, e);
			if (rc != 0) {
				return rc;
			}
		}
		return 0;
	case json_type_double:
		if (!isfinite(json_object_get_double(o))) {
			return fail(e, PR_EJSON, "invalid JSON: a number is out of range");
		}
		return 0;
	default:
		return 0;
	}
}

/*
 * Parse payload[0..len) strictly into one JSON object. Returns 0 and the
 * object in *out (caller puts it), or PR_ETOOBIG / PR_EJSON.
 */
static int
parse_strict(const char *payload, size_t len, struct json_object **out, struct pr_decode_error *e)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error jerr;
	uint32_t *counts = NULL;
	size_t end, nobj = 0, idx = 0;
	int rc;

	*out = NULL;
	if (len > PR_CMD_PAYLOAD_MAX) {
		return fail(e, PR_ETOOBIG, "payload is %zu bytes; commands are at most %d bytes",
		    len, PR_CMD_PAYLOAD_MAX);
	}
	/* json-c's VALIDATE_UTF8 lets overlong forms, surrogates and code
	 * points above U+10FFFF through: check the bytes ourselves. */
	if (pr__utf8_check(payload, len, &end) != 0) {
		return fail(e, PR_EJSON, "invalid JSON: not valid UTF-8 at byte %zu", end);
	}
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL) {
		return fail(e, PR_EINTERNAL, "out of memory");
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, payload, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (o == NULL || jerr != json_tokener_success) {
		json_object_put(o);
		if (jerr == json_tokener_success) { /* the payload was "null" */
			return fail(
			    e, PR_EJSON, "invalid JSON: the payload must be a JSON object {...}");
		}
		if (jerr == json_tokener_continue) {
			return fail(e, PR_EJSON, "invalid JSON: %s",
			    len == 0 ? "empty payload; send one JSON object"
			             : "the payload ends inside a value");
		}
		if (jerr == json_tokener_error_depth) {
			return fail(
			    e, PR_EJSON, "invalid JSON: nested deeper than %d levels", JSON_DEPTH);
		}
		return fail(e, PR_EJSON, "invalid JSON at byte %zu: %s", end,
		    json_tokener_error_desc(jerr));
	}
	for (size_t i = end; i < len; i++) {
		if (!is_ws(payload[i])) {
			json_object_put(o);
			return fail(e, PR_EJSON,
			    "invalid JSON at byte %zu: only whitespace may follow the object", i);
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fail(e, PR_EJSON, "invalid JSON: the payload must be a JSON object {...}");
	}
	/* One count per '{' at most: len / 2 + 1 bounds them. */
	if ((counts = malloc((len / 2 + 1) * sizeof *counts)) == NULL) {
		json_object_put(o);
		return fail(e, PR_EINTERNAL, "out of memory");
	}
	rc = lex_check(payload, len, counts, &nobj, e);
	if (rc == 0) {
		rc = tree_check(o, counts, nobj, &idx, e);
	}
	if (rc == 0 && idx != nobj) {
		rc = fail(e, PR_EJSON, "invalid JSON: an object has a duplicate key");
	}
	free(counts);
	if (rc != 0) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* ---- layer 4: fields ---- */

/* Any string field: its bytes, refused when not a string or with a NUL. */
static int
get_str(struct json_object *v, const char *name, const char *what, const char **s, size_t *len,
    struct pr_decode_error *e)
{
	if (!json_object_is_type(v, json_type_string)) {
		return fail(e, PR_EFIELD, "field '%s' must be a string (%s)", name, what);
	}
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	if (strlen(*s) != *len) {
		return fail(e, PR_EFIELD, "field '%s' must not contain \\u0000 (%s)", name, what);
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
		return fail(e, PR_EFIELD,
		    "field '%s' must be an integer from %" PRId64 " to %" PRId64, name, lo, hi);
	}
	/*
	 * json-c clamps what does not fit in 64 bits to INT64_MIN/INT64_MAX
	 * (and UINT64_MAX, read here as INT64_MAX); every range here excludes
	 * both, so a clamped value is refused like any other.
	 */
	x = json_object_get_int64(v);
	if (x < lo || x > hi) {
		return fail(e, PR_EFIELD,
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
		return fail(e, PR_ENAME,
		    "field '%s': \"%s\" (%zu bytes) is not a valid name; names are %s", name,
		    quote(s, len, q), len, what);
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
		return fail(e, PR_ETIME,
		    "field '%s': \"%s\" is not a valid time; expected %s or "
		    "\"2023-01-01 00:00:00\" (UTC when no offset)",
		    name, quote(s, len, q), what);
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
			return fail(e, PR_EFIELD,
			    "field '%s' must be 1-%d printable ASCII characters (got %zu)", name,
			    PR_ID_MAX, len);
		}
		return fail(e, PR_EFIELD,
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
		if (len == 0 || len > PR_TOKEN_MAX || !printable_ascii(s, len)) {
			return fail(e, PR_EFIELD,
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
			return fail(e, PR_EFIELD,
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
			return fail(e, PR_EFIELD, "field '%s' must be 1-%d bytes of text (got %zu)",
			    name, PR_REASON_MAX, len);
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
			return fail(e, PR_ECURSOR,
			    "field '%s' must be the next_cursor of a previous page, unchanged",
			    name);
		}
		memcpy(cmd->cursor, s, len + 1);
		cmd->has_cursor = 1;
		return 0;
	case F_METADATA: {
		if (!json_object_is_type(v, json_type_object)) {
			return fail(e, PR_EFIELD,
			    "field '%s' must be a JSON object, e.g. {\"rows\": 1200}", name);
		}
		if (!no_nul_strings(v)) {
			return fail(
			    e, PR_EFIELD, "field '%s': strings must not contain \\u0000", name);
		}
		s = json_object_to_json_string_length(v, DUMP_FLAGS, &len);
		if (s == NULL) {
			return fail(e, PR_EINTERNAL, "out of memory");
		}
		if (len > PR_METADATA_MAX) {
			return fail(e, PR_EFIELD,
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
	return fail(e, PR_EINTERNAL, "internal: field %d", (int)f);
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
	struct json_object *root, *v;
	uint32_t allowed, given = 0;
	int rc;

	memset(cmd, 0, sizeof *cmd);
	memset(err, 0, sizeof *err);
	cmd->kind = kind;
	if ((unsigned)kind >= PR_CMD_COUNT) {
		return fail(err, PR_ECOMMAND, "unknown command");
	}
	def = &cmddefs[kind];
	allowed = def->required | def->optional | COMMON;

	if ((rc = parse_strict(payload, len, &root, err)) != 0) {
		return rc;
	}

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
			rc = fail(err, PR_EFIELD, "unknown field '%s' for %s; allowed: %s",
			    quote(key, strlen(key), q), def->name, list);
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
				rc = fail(err, PR_EMISSING, "field '%s' is required for %s",
				    field_names[f], def->name);
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
		rc = fail(err, PR_EFIELD,
		    "fields 'start' and 'end' go together for %s: give both (a partition "
		    "[start, end)) or neither; got only '%s'",
		    def->name, (given & B(F_START)) ? "start" : "end");
		goto out;
	}
	if (given & B(F_START)) {
		char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
		if (cmd->range.start >= cmd->range.end) {
			rc = fail(err, PR_EINTERVAL,
			    "start (%s) must be before end (%s); intervals are [start, end)",
			    pr_time_format(cmd->range.start, a), pr_time_format(cmd->range.end, b));
			goto out;
		}
		cmd->has_range = 1;
	}
	if (cmd->has_from && cmd->has_to && cmd->from >= cmd->to) {
		char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
		rc = fail(err, PR_EINTERVAL,
		    "from (%s) must be before to (%s); the time window is [from, to)",
		    pr_time_format(cmd->from, a), pr_time_format(cmd->to, b));
		goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* ---- encoding ---- */

void
pr__json_free(struct pr_json *j)
{
	json_object_put(J(j));
}

char *
pr__json_dump(const struct pr_json *j, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(J(j), DUMP_FLAGS, &n);
	char *out;

	if (s == NULL || (out = malloc(n + 1)) == NULL) {
		return NULL;
	}
	memcpy(out, s, n + 1);
	if (len != NULL) {
		*len = n;
	}
	return out;
}

void
pr__json_set_u64(struct pr_json *obj, const char *key, uint64_t v)
{
	json_object_object_add(J(obj), key, json_object_new_uint64(v));
}

void
pr__json_set_str(struct pr_json *obj, const char *key, const char *v)
{
	json_object_object_add(J(obj), key, json_object_new_string(v));
}

void
pr__json_set_bool(struct pr_json *obj, const char *key, int v)
{
	json_object_object_add(J(obj), key, json_object_new_boolean(v != 0));
}

static void
set_time(struct json_object *o, const char *key, int64_t t)
{
	char buf[PR_TIME_BUFSZ];

	json_object_object_add(o, key, json_object_new_string(pr_time_format(t, buf)));
}

static void
set_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static void
set_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

/* ["start", "end"] */
static struct json_object *
range_pair(struct pr_range r)
{
	struct json_object *a = json_object_new_array_ext(2);
	char buf[PR_TIME_BUFSZ];

	if (a != NULL) {
		json_object_array_add(a, json_object_new_string(pr_time_format(r.start, buf)));
		json_object_array_add(a, json_object_new_string(pr_time_format(r.end, buf)));
	}
	return a;
}

struct pr_json *
pr__json_source(const struct pr_source *s, const char *token)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", s->name);
	set_str(o, "owner", s->owner);
	set_time(o, "created_at", s->created_at);
	set_time(o, "updated_at", s->updated_at);
	set_u64(o, "seq", s->seq);
	if (token != NULL) {
		set_str(o, "access_token", token);
	}
	return PJ(o);
}

struct pr_json *
pr__json_provider(const char *source, const struct pr_provider *p, const char *token)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", source);
	set_str(o, "provider", p->name);
	set_time(o, "created_at", p->created_at);
	if (token != NULL) {
		set_str(o, "provider_token", token);
	}
	return PJ(o);
}

struct pr_json *
pr__json_partition(const struct pr_partition *p)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", p->source);
	set_str(o, "provider", p->provider);
	set_time(o, "start", p->range.start);
	set_time(o, "end", p->range.end);
	set_str(o, "state", pr__pstate_name(p->state));
	set_u64(o, "version", p->version);
	set_u64(o, "fence", p->fence);
	set_time(o, "since", p->since);
	set_time(o, "updated_at", p->updated_at);
	set_u64(o, "seq", p->seq);
	if (p->expires_at != 0) {
		set_time(o, "expires_at", p->expires_at);
	}
	if (p->session[0] != '\0') {
		set_str(o, "session", p->session);
	}
	if (p->reason[0] != '\0') {
		set_str(o, "reason", p->reason);
	}
	if (p->metadata[0] != '\0') {
		/* Stored as compact text by pr__cmd_decode; embedded as the object. */
		struct json_object *m = json_tokener_parse(p->metadata);
		if (json_object_is_type(m, json_type_object)) {
			json_object_object_add(o, "metadata", m);
		} else {
			json_object_put(m);
		}
	}
	return PJ(o);
}

struct pr_json *
pr__json_readiness(const char *source, struct pr_range want, const struct pr_readiness *r,
    const struct pr_partition *blockers, size_t nblockers, uint64_t seq)
{
	struct json_object *o = json_object_new_object();
	struct json_object *gaps, *bl;
	size_t ngaps = r->ngaps < r->gaps_cap ? r->ngaps : r->gaps_cap;

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", source);
	set_time(o, "start", want.start);
	set_time(o, "end", want.end);
	json_object_object_add(o, "ready", json_object_new_boolean(r->ready != 0));
	gaps = json_object_new_array();
	for (size_t i = 0; i < ngaps; i++) {
		json_object_array_add(gaps, range_pair(r->gaps[i]));
	}
	json_object_object_add(o, "gaps", gaps);
	bl = json_object_new_array();
	for (size_t i = 0; i < nblockers; i++) {
		json_object_array_add(bl, J(pr__json_partition(&blockers[i])));
	}
	json_object_object_add(o, "blockers", bl);
	if (r->ready_through == want.start) {
		json_object_object_add(o, "ready_through", NULL);
	} else {
		set_time(o, "ready_through", r->ready_through);
	}
	set_u64(o, "seq", seq);
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->ngaps > r->gaps_cap || r->nblockers > nblockers));
	return PJ(o);
}

struct pr_json *
pr__json_array(void)
{
	return PJ(json_object_new_array());
}

void
pr__json_append(struct pr_json *array, struct pr_json *item)
{
	if (json_object_array_add(J(array), J(item)) != 0) {
		json_object_put(J(item));
	}
}

/* {key: items (or [] when NULL), next_cursor: next, or null when NULL or ""};
 * takes ownership of items, also on failure. */
static struct pr_json *
items_and_cursor(const char *key, struct pr_json *items, const char *next)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(J(items));
		return NULL;
	}
	json_object_object_add(o, key, items != NULL ? J(items) : json_object_new_array());
	if (next == NULL || next[0] == '\0') {
		json_object_object_add(o, "next_cursor", NULL);
	} else {
		set_str(o, "next_cursor", next);
	}
	return PJ(o);
}

struct pr_json *
pr__json_page(struct pr_json *items, const char *next)
{
	return items_and_cursor("items", items, next);
}

struct pr_json *
pr__json_history(struct pr_json *events, const char *next)
{
	return items_and_cursor("events", events, next);
}

struct pr_json *
pr__json_session_abort(const char *session, struct pr_json *partitions)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(J(partitions));
		return NULL;
	}
	set_str(o, "session", session);
	json_object_object_add(
	    o, "failed", partitions != NULL ? J(partitions) : json_object_new_array());
	return PJ(o);
}

struct pr_json *
pr__json_resync(const char *source)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "republishing", source != NULL ? "source" : "all");
	if (source != NULL) {
		set_str(o, "source", source);
	}
	return PJ(o);
}

struct pr_json *
pr__json_summary(const struct pr_source *s, uint64_t epoch, const struct pr_range *ready,
    size_t nready, const struct pr_partition *blocked, size_t nblocked, int truncated)
{
	struct json_object *o = json_object_new_object();
	struct json_object *ra, *ba;

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", s->name);
	set_str(o, "owner", s->owner);
	set_u64(o, "seq", s->seq);
	set_u64(o, "epoch", epoch);
	set_time(o, "updated_at", s->updated_at);
	ra = json_object_new_array();
	for (size_t i = 0; i < nready; i++) {
		json_object_array_add(ra, range_pair(ready[i]));
	}
	json_object_object_add(o, "ready", ra);
	ba = json_object_new_array();
	for (size_t i = 0; i < nblocked; i++) {
		const struct pr_partition *p = &blocked[i];
		struct json_object *b = json_object_new_object();
		set_time(b, "start", p->range.start);
		set_time(b, "end", p->range.end);
		set_str(b, "provider", p->provider);
		set_str(b, "state", pr__pstate_name(p->state));
		set_time(b, "since", p->since);
		if (p->expires_at != 0) {
			set_time(b, "expires_at", p->expires_at);
		}
		if (p->reason[0] != '\0') {
			set_str(b, "reason", p->reason);
		}
		json_object_array_add(ba, b);
	}
	json_object_object_add(o, "blocked", ba);
	json_object_object_add(o, "truncated", json_object_new_boolean(truncated != 0));
	return PJ(o);
}

struct pr_json *
pr__json_partition_state(const struct pr_partition *p, uint64_t epoch)
{
	struct pr_json *j = pr__json_partition(p);

	if (j != NULL) {
		set_u64(J(j), "epoch", epoch);
	}
	return j;
}

struct pr_json *
pr__json_event(const struct pr_event *ev, uint64_t epoch)
{
	struct json_object *o = json_object_new_object();
	int about_partition = ev->range.start != 0 || ev->range.end != 0;

	if (o == NULL) {
		return NULL;
	}
	set_u64(o, "seq", ev->seq);
	set_u64(o, "epoch", epoch);
	set_time(o, "at", ev->at);
	set_str(o, "type", ev->type);
	set_str(o, "source", ev->source);
	if (ev->provider[0] != '\0') {
		set_str(o, "provider", ev->provider);
	}
	if (about_partition) {
		set_time(o, "start", ev->range.start);
		set_time(o, "end", ev->range.end);
		set_str(o, "state", pr__pstate_name(ev->state));
	}
	if (ev->fence != 0) {
		set_u64(o, "fence", ev->fence);
	}
	if (about_partition) {
		set_u64(o, "version", ev->version);
	}
	if (ev->reason[0] != '\0') {
		set_str(o, "reason", ev->reason);
	}
	return PJ(o);
}

struct pr_json *
pr__json_agent_status(const char *status, const char *agent_id, uint64_t epoch, int64_t at)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "status", status);
	set_str(o, "agent_id", agent_id);
	set_str(o, "version", PR_VERSION_STRING);
	set_u64(o, "epoch", epoch);
	set_time(o, "at", at);
	return PJ(o);
}

struct pr_json *
pr__json_agent_stats(const struct pr_agent_stats *st)
{
	struct json_object *o = json_object_new_object();
	struct json_object *cmds = json_object_new_object();
	struct json_object *commit = json_object_new_object();
	struct json_object *store = json_object_new_object();

	if (o == NULL || cmds == NULL || commit == NULL || store == NULL) {
		json_object_put(o);
		json_object_put(cmds);
		json_object_put(commit);
		json_object_put(store);
		return NULL;
	}
	set_str(o, "agent_id", st->agent_id);
	set_str(o, "version", PR_VERSION_STRING);
	set_u64(o, "epoch", st->epoch);
	set_time(o, "at", st->at);
	set_u64(o, "uptime_s", (uint64_t)((st->at - st->started_at) / 1000000));
	set_u64(cmds, "total", st->commands);
	set_u64(cmds, "refused", st->refused);
	set_u64(cmds, "replayed", st->replayed);
	json_object_object_add(o, "commands", cmds);
	set_u64(o, "batches", st->batches);
	set_u64(o, "leases_expired", st->leases_expired);
	json_object_object_add(commit, "last", json_object_new_double(st->commit_ms_last));
	json_object_object_add(commit, "max", json_object_new_double(st->commit_ms_max));
	json_object_object_add(o, "commit_ms", commit);
	set_u64(o, "queue", st->queue);
	set_u64(store, "used_bytes", st->store_used_bytes);
	set_u64(store, "map_bytes", st->store_map_bytes);
	set_u64(store, "readers", st->store_readers);
	json_object_object_add(o, "store", store);
	return PJ(o);
}

static char *
dump_put(struct json_object *o, size_t *len)
{
	char *s = pr__json_dump(PJ(o), len);

	json_object_put(o);
	return s;
}

char *
pr__reply_encode(int err, const char *message, const char *request_id, const char *correlation_id,
    struct pr_json *result, size_t *len)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(J(result));
		return NULL;
	}
	json_object_object_add(o, "ok", json_object_new_boolean(err == 0));
	json_object_object_add(
	    o, "status", json_object_new_int(err == 0 ? 200 : pr_err_status(err)));
	if (request_id != NULL) {
		set_str(o, "request_id", request_id);
	}
	if (correlation_id != NULL) {
		set_str(o, "correlation_id", correlation_id);
	}
	if (err == 0) {
		json_object_object_add(
		    o, "result", result != NULL ? J(result) : json_object_new_object());
	} else {
		struct json_object *e = json_object_new_object();
		set_str(e, "code", pr_err_code(err));
		set_str(e, "message", message != NULL ? message : pr_strerror(err));
		if (result != NULL) {
			json_object_object_add(e, "details", J(result));
		}
		json_object_object_add(o, "error", e);
	}
	return dump_put(o, len);
}

char *
pr__reply_replayed(const char *stored, size_t stored_len, const char *correlation_id, size_t *len)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (stored_len > INT_MAX || (tok = json_tokener_new_ex(JSON_DEPTH + 8)) == NULL) {
		return NULL;
	}
	o = json_tokener_parse_ex(tok, stored, (int)stored_len);
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "replayed", json_object_new_boolean(1));
	if (correlation_id != NULL) {
		set_str(o, "correlation_id", correlation_id);
	} else {
		json_object_object_del(o, "correlation_id");
	}
	return dump_put(o, len);
}
