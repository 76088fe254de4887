/* SPDX-License-Identifier: MIT */
/*
 * The strict JSON reader for command payloads: one JSON object (RFC 8259,
 * no single quotes, no NaN, valid UTF-8, no NUL inside keys, nothing after
 * it, each key once in each object), or a message saying where and why
 * not. What json-c accepts beyond RFC 8259 never reaches the decoder.
 */
#ifndef PR_JSON_STRICT_H
#define PR_JSON_STRICT_H

#include <stddef.h>

struct pr_json; /* an opaque JSON value (encode.h); free with pr__json_free */

/* Why a payload was refused: the error (enum pr_err) and a message naming
 * the field, e.g. "field 'start': invalid time \"2023-13-01\"". */
struct pr_decode_error {
	int err;
	char message[256];
};

/*
 * Parse text[0..len) strictly into one JSON object. Returns 0 and the
 * object in *out (caller owns; free with pr__json_free), or PR_EJSON (not
 * one strict JSON object; the message says where and why) or PR_EINTERNAL
 * (no memory), also in e->err with e->message set. json-c has no size
 * limit: the caller bounds len first (at most INT_MAX).
 */
int pr__json_parse_strict(
    const char *text, size_t len, struct pr_json **out, struct pr_decode_error *e);

/* Set *e to err and a printf-formatted message; returns err. */
int pr__decode_fail(struct pr_decode_error *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * At most 40 bytes of s[0..len) in out, for quoting input in a message:
 * printable ASCII kept (except '"' and '\\'), anything else as '?', "..."
 * when cut. Always one line of valid UTF-8. Returns out.
 */
const char *pr__decode_quote(const char *s, size_t len, char out[48]);

#endif
