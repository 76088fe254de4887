/* SPDX-License-Identifier: MIT */
/*
 * Private to the codec (json_strict.c, decode.c, encode.c), the only files
 * that use json-c: nothing else includes this header or <json-c/...>, and
 * json-c's types appear in no other header. struct pr_json, the codec's
 * opaque value in every public signature, is a json_object under another
 * name: the pointer is cast here, never dereferenced outside the codec.
 */
#ifndef PR_CODEC_INT_H
#define PR_CODEC_INT_H

#include <stdint.h>

#include <json-c/json.h>

#include "encode.h"

/* Deepest nesting a command payload may have (the tokener's limit). */
#define JSON_DEPTH 16
/* Compact output, '/' unescaped: what is published and what metadata is
 * stored as, so stored metadata re-embeds as the same text. */
#define DUMP_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static inline struct json_object *
J(const struct pr_json *j)
{
	return (struct json_object *)(uintptr_t)j;
}

static inline struct pr_json *
PJ(struct json_object *o)
{
	return (struct pr_json *)o;
}

#endif
