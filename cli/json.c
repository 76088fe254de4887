/* SPDX-License-Identifier: MIT */
/*
 * The CLI's JSON: replies and events read into a plain tree (json-c's
 * parser), printed back, and command bodies built.
 *
 * The writer escapes '"', '\\' and control characters and passes all other
 * bytes through, so command bodies carry UTF-8 names unchanged.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <partreg/error.h>

/* Replies nest at most a few levels; metadata at most 16 more. */
#define JSON_DEPTH 64

void
pr__cj_write_str(FILE *f, const char *s)
{
	putc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
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
			if (*p < 0x20 || *p == 0x7F) {
				fprintf(f, "\\u%04x", *p);
			} else {
				putc(*p, f);
			}
		}
	}
	putc('"', f);
}

void
pr__cj_write(FILE *f, const struct pr_cj *v)
{
	switch (v->type) {
	case PR_CJ_NULL:
		fputs("null", f);
		break;
	case PR_CJ_BOOL:
		fputs(v->boolean ? "true" : "false", f);
		break;
	case PR_CJ_NUM:
		fputs(v->text, f);
		break;
	case PR_CJ_STR:
		pr__cj_write_str(f, v->text);
		break;
	case PR_CJ_ARR:
	case PR_CJ_OBJ:
		putc(v->type == PR_CJ_OBJ ? '{' : '[', f);
		for (const struct pr_cj *m = v->child; m != NULL; m = m->next) {
			if (m != v->child) {
				putc(',', f);
			}
			if (v->type == PR_CJ_OBJ) {
				pr__cj_write_str(f, m->key);
				putc(':', f);
			}
			pr__cj_write(f, m);
		}
		putc(v->type == PR_CJ_OBJ ? '}' : ']', f);
		break;
	}
}

/* ---- bodies ---- */

static void
cb_put(struct pr_cb *b, const char *s, size_t n)
{
	if (b->failed) {
		return;
	}
	if (b->len + n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (b->len + n + 2 > cap) {
			cap *= 2;
		}
		if ((p = realloc(b->buf, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

static void
cb_escaped(struct pr_cb *b, const char *s)
{
	cb_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			cb_put(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7F) {
			snprintf(esc, sizeof esc, "\\u%04x", *p);
			cb_put(b, esc, 6);
		} else {
			cb_put(b, (const char *)p, 1);
		}
	}
	cb_put(b, "\"", 1);
}

void
pr__cb_init(struct pr_cb *b)
{
	memset(b, 0, sizeof *b);
	cb_put(b, "{", 1);
}

void
pr__cb_release(struct pr_cb *b)
{
	if (b->buf != NULL) {
		/* A body may hold an access token: do not leave it in freed memory. */
		memset(b->buf, 0, b->cap);
	}
	free(b->buf);
	memset(b, 0, sizeof *b);
}

static void
cb_key(struct pr_cb *b, const char *key)
{
	if (b->len > 1) {
		cb_put(b, ",", 1);
	}
	cb_escaped(b, key);
	cb_put(b, ":", 1);
}

void
pr__cb_str(struct pr_cb *b, const char *key, const char *value)
{
	cb_key(b, key);
	cb_escaped(b, value);
}

void
pr__cb_raw(struct pr_cb *b, const char *key, const char *raw)
{
	cb_key(b, key);
	cb_put(b, raw, strlen(raw));
}

const char *
pr__cb_finish(struct pr_cb *b)
{
	cb_put(b, "}", 1);
	return b->failed ? NULL : b->buf;
}

/*
 * struct pr_cj from json-c: the agent's replies and events as a plain tree
 * that clients walk without json-c. Numbers keep their literal text (an
 * int64 printed back exactly, never through a double).
 */
static struct pr_cj *
cj_from(struct json_object *o, const char *key, int *oom)
{
	struct pr_cj *v = calloc(1, sizeof *v);
	char num[32];

	if (v == NULL || (key != NULL && (v->key = strdup(key)) == NULL)) {
		free(v);
		*oom = 1;
		return NULL;
	}
	switch (json_object_get_type(o)) {
	case json_type_null:
		v->type = PR_CJ_NULL;
		break;
	case json_type_boolean:
		v->type = PR_CJ_BOOL;
		v->boolean = json_object_get_boolean(o);
		break;
	case json_type_int:
		v->type = PR_CJ_NUM;
		snprintf(num, sizeof num, "%" PRId64, json_object_get_int64(o));
		v->text = strdup(num);
		break;
	case json_type_double:
		v->type = PR_CJ_NUM;
		v->text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		break;
	case json_type_string:
		v->type = PR_CJ_STR;
		v->text = strdup(json_object_get_string(o));
		break;
	case json_type_array: {
		struct pr_cj **tail = &v->child;

		v->type = PR_CJ_ARR;
		for (size_t i = 0; i < json_object_array_length(o) && !*oom; i++) {
			*tail = cj_from(json_object_array_get_idx(o, i), NULL, oom);
			tail = *tail != NULL ? &(*tail)->next : tail;
		}
		break;
	}
	case json_type_object: {
		struct pr_cj **tail = &v->child;

		v->type = PR_CJ_OBJ;
		json_object_object_foreach(o, k, m)
		{
			if (*oom) {
				break;
			}
			*tail = cj_from(m, k, oom);
			tail = *tail != NULL ? &(*tail)->next : tail;
		}
		break;
	}
	}
	if ((v->type == PR_CJ_NUM || v->type == PR_CJ_STR) && v->text == NULL) {
		*oom = 1;
	}
	return v;
}

int
pr__cj_parse(const char *text, size_t len, struct pr_cj **out)
{
	struct json_tokener *tok;
	struct json_object *o;
	int oom = 0;

	*out = NULL;
	if (len > INT_MAX || (tok = json_tokener_new_ex(JSON_DEPTH)) == NULL) {
		return len > INT_MAX ? PR_EJSON : -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success
	    || json_tokener_get_parse_end(tok) != len) {
		json_tokener_free(tok);
		json_object_put(o);
		return PR_EJSON;
	}
	json_tokener_free(tok);
	*out = cj_from(o, NULL, &oom);
	json_object_put(o);
	if (oom) {
		pr__cj_free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

void
pr__cj_free(struct pr_cj *v)
{
	while (v != NULL) {
		struct pr_cj *next = v->next;

		pr__cj_free(v->child);
		free(v->key);
		free(v->text);
		free(v);
		v = next;
	}
}

const struct pr_cj *
pr__cj_get(const struct pr_cj *obj, const char *key)
{
	if (obj == NULL || obj->type != PR_CJ_OBJ) {
		return NULL;
	}
	for (const struct pr_cj *m = obj->child; m != NULL; m = m->next) {
		if (strcmp(m->key, key) == 0) {
			return m;
		}
	}
	return NULL;
}

const char *
pr__cj_str(const struct pr_cj *obj, const char *key)
{
	const struct pr_cj *m = pr__cj_get(obj, key);

	return m != NULL && m->type == PR_CJ_STR ? m->text : NULL;
}
