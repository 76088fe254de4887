/* SPDX-License-Identifier: MIT */
/*
 * The CLI's JSON writer: replies and events printed back, and command
 * bodies built (the reader is pr_cj_parse in the codec).
 *
 * The writer escapes '"', '\\' and control characters and passes all other
 * bytes through, so command bodies carry UTF-8 names unchanged.
 */
#include "cli.h"

#include <partreg/protocol.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
pr_cj_write_str(FILE *f, const char *s)
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
pr_cj_write(FILE *f, const struct pr_cj *v)
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
		pr_cj_write_str(f, v->text);
		break;
	case PR_CJ_ARR:
	case PR_CJ_OBJ:
		putc(v->type == PR_CJ_OBJ ? '{' : '[', f);
		for (const struct pr_cj *m = v->child; m != NULL; m = m->next) {
			if (m != v->child) {
				putc(',', f);
			}
			if (v->type == PR_CJ_OBJ) {
				pr_cj_write_str(f, m->key);
				putc(':', f);
			}
			pr_cj_write(f, m);
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
pr_cb_init(struct pr_cb *b)
{
	memset(b, 0, sizeof *b);
	cb_put(b, "{", 1);
}

void
pr_cb_release(struct pr_cb *b)
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
pr_cb_str(struct pr_cb *b, const char *key, const char *value)
{
	cb_key(b, key);
	cb_escaped(b, value);
}

void
pr_cb_raw(struct pr_cb *b, const char *key, const char *raw)
{
	cb_key(b, key);
	cb_put(b, raw, strlen(raw));
}

const char *
pr_cb_finish(struct pr_cb *b)
{
	cb_put(b, "}", 1);
	return b->failed ? NULL : b->buf;
}
