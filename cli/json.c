/* SPDX-License-Identifier: MIT */
/*
 * The CLI's JSON: replies and events read with json-c (whole documents,
 * strict), printed back, and command bodies built.
 *
 * One string escaper, pr__cli_json_write_str, serves every output (records,
 * --json results, errors on stderr) and the command bodies, which are built
 * on a memory stream with it. It escapes '"', '\\' and control characters
 * and passes all other bytes through, so UTF-8 names and '/' stay as they
 * are.
 *
 * Values are printed by our own walk rather than json-c's printer, which
 * escapes '/' and passes DEL unescaped: output stays as it always was.
 * Numbers go through json-c's printer, which prints an integer exactly
 * (int64 or uint64, never through a double) and a float as its literal
 * came.
 *
 * Rejected: building bodies as json_objects. The body may carry an access
 * token, and only a buffer of our own can be wiped before it is freed.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <partreg/error.h>

/* Replies nest at most a few levels; metadata at most 16 more. */
#define JSON_DEPTH 64

/* ---- reading ---- */

int
pr__cli_json_parse(const char *text, size_t len, struct json_object **out)
{
	struct json_tokener *tok;
	struct json_object *o;

	*out = NULL;
	if (len > INT_MAX) {
		return PR_EJSON;
	}
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL) {
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	/* The whole text is one document: nothing may follow it. */
	if (json_tokener_get_error(tok) != json_tokener_success
	    || json_tokener_get_parse_end(tok) != len) {
		json_tokener_free(tok);
		json_object_put(o);
		return PR_EJSON;
	}
	json_tokener_free(tok);
	*out = o;
	return 0;
}

struct json_object *
pr__cli_json_get(const struct json_object *obj, const char *key, enum json_type type)
{
	struct json_object *m;

	if (!json_object_object_get_ex(obj, key, &m) || !json_object_is_type(m, type)) {
		return NULL;
	}
	return m;
}

const char *
pr__cli_json_str(const struct json_object *obj, const char *key)
{
	return json_object_get_string(pr__cli_json_get(obj, key, json_type_string));
}

/* json-c asserts that its array functions get an array: these check first. */
size_t
pr__cli_json_len(const struct json_object *v)
{
	return json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
}

struct json_object *
pr__cli_json_at(const struct json_object *v, size_t i)
{
	return i < pr__cli_json_len(v) ? json_object_array_get_idx(v, i) : NULL;
}

/* ---- writing ---- */

void
pr__cli_json_write_str(FILE *f, const char *s, size_t len)
{
	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7F) {
				fprintf(f, "\\u%04x", c);
			} else {
				putc(c, f);
			}
		}
	}
	putc('"', f);
}

void
pr__cli_json_write(FILE *f, struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		fputs("null", f);
		break;
	case json_type_boolean:
		fputs(json_object_get_boolean(v) ? "true" : "false", f);
		break;
	case json_type_int:
	case json_type_double:
		/* The cast: json-c's printer caches its text in the object. */
		fputs(
		    json_object_to_json_string_ext((struct json_object *)v, JSON_C_TO_STRING_PLAIN),
		    f);
		break;
	case json_type_string:
		pr__cli_json_write_str(
		    f, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		break;
	case json_type_array:
		putc('[', f);
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			if (i > 0) {
				putc(',', f);
			}
			pr__cli_json_write(f, json_object_array_get_idx(v, i));
		}
		putc(']', f);
		break;
	case json_type_object: {
		int first = 1;

		putc('{', f);
		json_object_object_foreach(v, key, m)
		{
			if (!first) {
				putc(',', f);
			}
			first = 0;
			pr__cli_json_write_str(f, key, strlen(key));
			putc(':', f);
			pr__cli_json_write(f, m);
		}
		putc('}', f);
		break;
	}
	}
}

/* ---- bodies ---- */

void
pr__cb_init(struct pr_cb *b)
{
	memset(b, 0, sizeof *b);
	if ((b->f = open_memstream(&b->buf, &b->len)) == NULL) {
		b->failed = 1;
		return;
	}
	putc('{', b->f);
}

void
pr__cb_release(struct pr_cb *b)
{
	if (b->f != NULL) {
		fclose(b->f);
	}
	if (b->buf != NULL) {
		/* A body may hold an access token: do not leave it in freed memory. */
		memset(b->buf, 0, b->len);
	}
	free(b->buf);
	memset(b, 0, sizeof *b);
}

static void
cb_key(struct pr_cb *b, const char *key)
{
	if (b->nmembers++ > 0) {
		putc(',', b->f);
	}
	pr__cli_json_write_str(b->f, key, strlen(key));
	putc(':', b->f);
}

void
pr__cb_str(struct pr_cb *b, const char *key, const char *value)
{
	if (b->f == NULL) {
		return;
	}
	cb_key(b, key);
	pr__cli_json_write_str(b->f, value, strlen(value));
}

void
pr__cb_raw(struct pr_cb *b, const char *key, const char *raw)
{
	if (b->f == NULL) {
		return;
	}
	cb_key(b, key);
	fputs(raw, b->f);
}

const char *
pr__cb_finish(struct pr_cb *b)
{
	if (b->f != NULL) {
		putc('}', b->f);
		/* A memory stream reports running out of memory as a write error. */
		if (ferror(b->f)) {
			b->failed = 1;
		}
		if (fclose(b->f) != 0) {
			b->failed = 1;
		}
		b->f = NULL;
	}
	return b->failed || b->buf == NULL ? NULL : b->buf;
}
