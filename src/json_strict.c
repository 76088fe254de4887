/* SPDX-License-Identifier: MIT */
/*
 * The strict reader, in three layers, each refusing what the one below
 * lets by:
 *
 *  1. json-c's tokener in STRICT mode with UTF-8 validation and a depth
 *     limit, on a payload whose size the caller checked (json-c has no size
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
 * Echoed input in messages is reduced to printable ASCII (pr__decode_quote)
 * so a message is always valid UTF-8 and a single line.
 */
#include "json_strict.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>

#include "codec_int.h"
#include "names.h"

/* ---- errors ---- */

int
pr__decode_fail(struct pr_decode_error *e, int err, const char *fmt, ...)
{
	va_list ap;

	e->err = err;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return err;
}

const char *
pr__decode_quote(const char *s, size_t len, char out[48])
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
				return pr__decode_fail(e, PR_EJSON,
				    "JSON is nested deeper than %d levels", JSON_DEPTH);
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
					return pr__decode_fail(e, PR_EJSON,
					    "invalid JSON at byte %zu: control characters inside "
					    "strings must be escaped (e.g. \\n, \\t)",
					    i);
				}
				if (s == '\\' && i + 1 < len) {
					i++;
					if (p[i] == 'u' && key && i + 4 < len
					    && memcmp(p + i + 1, "0000", 4) == 0) {
						return pr__decode_fail(e, PR_EJSON,
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
					return pr__decode_fail(e, PR_EJSON,
					    "invalid JSON at byte %zu: '%s' is not a JSON value "
					    "(NaN and Infinity are not JSON)",
					    s, pr__decode_quote(p + s, w, q));
				}
			} else if (!number_ok(p + s, w)) {
				char q[48];
				return pr__decode_fail(e, PR_EJSON,
				    "invalid JSON at byte %zu: '%s' is not a JSON number", s,
				    pr__decode_quote(p + s, w, q));
			}
		} else if (c == '\'') {
			return pr__decode_fail(e, PR_EJSON,
			    "invalid JSON at byte %zu: strings and keys take double quotes, "
			    "not single quotes",
			    i);
		} else {
			return pr__decode_fail(
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
			return pr__decode_fail(e, PR_EJSON,
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
			return pr__decode_fail(
			    e, PR_EJSON, "invalid JSON: a number is out of range");
		}
		return 0;
	default:
		return 0;
	}
}

int
pr__json_parse_strict(
    const char *payload, size_t len, struct pr_json **out, struct pr_decode_error *e)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error jerr;
	uint32_t *counts = NULL;
	size_t end, nobj = 0, idx = 0;
	int rc;

	*out = NULL;
	assert(len <= INT_MAX);
	/* json-c's VALIDATE_UTF8 lets overlong forms, surrogates and code
	 * points above U+10FFFF through: check the bytes ourselves. */
	if (pr__utf8_check(payload, len, &end) != 0) {
		return pr__decode_fail(
		    e, PR_EJSON, "invalid JSON: not valid UTF-8 at byte %zu", end);
	}
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL) {
		return pr__decode_fail(e, PR_EINTERNAL, "out of memory");
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, payload, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (o == NULL || jerr != json_tokener_success) {
		json_object_put(o);
		if (jerr == json_tokener_success) { /* the payload was "null" */
			return pr__decode_fail(
			    e, PR_EJSON, "invalid JSON: the payload must be a JSON object {...}");
		}
		if (jerr == json_tokener_continue) {
			return pr__decode_fail(e, PR_EJSON, "invalid JSON: %s",
			    len == 0 ? "empty payload; send one JSON object"
			             : "the payload ends inside a value");
		}
		if (jerr == json_tokener_error_depth) {
			return pr__decode_fail(
			    e, PR_EJSON, "invalid JSON: nested deeper than %d levels", JSON_DEPTH);
		}
		return pr__decode_fail(e, PR_EJSON, "invalid JSON at byte %zu: %s", end,
		    json_tokener_error_desc(jerr));
	}
	for (size_t i = end; i < len; i++) {
		if (!is_ws(payload[i])) {
			json_object_put(o);
			return pr__decode_fail(e, PR_EJSON,
			    "invalid JSON at byte %zu: only whitespace may follow the object", i);
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return pr__decode_fail(
		    e, PR_EJSON, "invalid JSON: the payload must be a JSON object {...}");
	}
	/* One count per '{' at most: len / 2 + 1 bounds them. */
	if ((counts = malloc((len / 2 + 1) * sizeof *counts)) == NULL) {
		json_object_put(o);
		return pr__decode_fail(e, PR_EINTERNAL, "out of memory");
	}
	rc = lex_check(payload, len, counts, &nobj, e);
	if (rc == 0) {
		rc = tree_check(o, counts, nobj, &idx, e);
	}
	if (rc == 0 && idx != nobj) {
		rc = pr__decode_fail(e, PR_EJSON, "invalid JSON: an object has a duplicate key");
	}
	free(counts);
	if (rc != 0) {
		json_object_put(o);
		return rc;
	}
	*out = PJ(o);
	return 0;
}
