/* SPDX-License-Identifier: MIT */
/*
 * The CLI's small JSON reader and writer (see cli.h for why not json-c).
 *
 * The reader is a recursive descent over replies and events the agent
 * wrote; it refuses anything that is not well-formed JSON (so a truncated
 * payload is an error, not half a record) and limits nesting so a hostile
 * broker cannot exhaust the stack. \u escapes are decoded to UTF-8,
 * surrogate pairs included. Numbers keep their literal text: seq and fence
 * are printed back exactly, never through a double.
 *
 * The writer escapes '"', '\\' and control characters and passes all other
 * bytes through, so command bodies carry UTF-8 names unchanged.
 */
#include "cli.h"

#include <partreg/protocol.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct reader {
	const char *p, *end;
	int depth;
};

static void
skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
		r->p++;
	}
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9') {
			v |= (unsigned)(ch - '0');
		} else if (ch >= 'a' && ch <= 'f') {
			v |= (unsigned)(ch - 'a' + 10);
		} else if (ch >= 'A' && ch <= 'F') {
			v |= (unsigned)(ch - 'A' + 10);
		} else {
			return PR_EJSON;
		}
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string at r->p (the opening quote) into a heap copy, decoded. */
static int
read_string(struct reader *r, char **out)
{
	const char *p = r->p + 1;
	/* The decoded text is never longer than the escaped one. */
	size_t cap = 1;
	char *s, *o;

	for (const char *q = p; q < r->end && *q != '"'; q++) {
		if (*q == '\\') {
			q++;
			cap++;
		}
		cap++;
	}
	if ((s = malloc(cap + 4)) == NULL) {
		return -ENOMEM;
	}
	o = s;
	while (p < r->end && *p != '"') {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20) {
			goto bad;
		}
		if (ch != '\\') {
			*o++ = (char)ch;
			p++;
			continue;
		}
		if (++p >= r->end) {
			goto bad;
		}
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			*o++ = *p;
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			unsigned cp, lo;
			if (r->end - p < 5 || hex4(p + 1, &cp) != 0) {
				goto bad;
			}
			p += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && r->end - p >= 7 && p[1] == '\\'
			    && p[2] == 'u' && hex4(p + 3, &lo) == 0 && lo >= 0xDC00
			    && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			} else if (cp >= 0xD800 && cp < 0xE000) {
				cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
			}
			o += put_utf8(o, cp);
			break;
		}
		default:
			goto bad;
		}
		p++;
	}
	if (p >= r->end) {
		goto bad;
	}
	*o = '\0';
	r->p = p + 1;
	*out = s;
	return 0;
bad:
	free(s);
	return PR_EJSON;
}

static int read_value(struct reader *r, struct pr_cj **out);

static int
read_members(struct reader *r, struct pr_cj *v, int is_obj)
{
	struct pr_cj **tail = &v->child;
	char close = is_obj ? '}' : ']';
	int rc;

	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		struct pr_cj *m;

		skip_ws(r);
		if (is_obj) {
			if (r->p >= r->end || *r->p != '"') {
				return PR_EJSON;
			}
			if ((rc = read_string(r, &key)) != 0) {
				return rc;
			}
			skip_ws(r);
			if (r->p >= r->end || *r->p != ':') {
				free(key);
				return PR_EJSON;
			}
			r->p++;
		}
		if ((rc = read_value(r, &m)) != 0) {
			free(key);
			return rc;
		}
		m->key = key;
		*tail = m;
		tail = &m->next;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			return 0;
		}
		return PR_EJSON;
	}
}

static int
literal(struct reader *r, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) {
		return PR_EJSON;
	}
	r->p += n;
	return 0;
}

static int
read_value(struct reader *r, struct pr_cj **out)
{
	struct pr_cj *v;
	int rc = 0;

	skip_ws(r);
	if (r->p >= r->end || r->depth >= MAX_DEPTH) {
		return PR_EJSON;
	}
	if ((v = calloc(1, sizeof *v)) == NULL) {
		return -ENOMEM;
	}
	switch (*r->p) {
	case '{':
	case '[':
		v->type = *r->p == '{' ? PR_CJ_OBJ : PR_CJ_ARR;
		r->depth++;
		rc = read_members(r, v, v->type == PR_CJ_OBJ);
		r->depth--;
		break;
	case '"':
		v->type = PR_CJ_STR;
		rc = read_string(r, &v->text);
		break;
	case 't':
		v->type = PR_CJ_BOOL;
		v->boolean = 1;
		rc = literal(r, "true");
		break;
	case 'f':
		v->type = PR_CJ_BOOL;
		rc = literal(r, "false");
		break;
	case 'n':
		v->type = PR_CJ_NULL;
		rc = literal(r, "null");
		break;
	default: {
		const char *s = r->p;
		while (r->p < r->end && strchr("0123456789+-.eE", *r->p) != NULL) {
			r->p++;
		}
		if (r->p == s) {
			rc = PR_EJSON;
			break;
		}
		v->type = PR_CJ_NUM;
		if ((v->text = strndup(s, (size_t)(r->p - s))) == NULL) {
			rc = -ENOMEM;
		}
	}
	}
	if (rc != 0) {
		pr_cj_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int
pr_cj_parse(const char *text, size_t len, struct pr_cj **out)
{
	struct reader r = { text, text + len, 0 };
	struct pr_cj *v;
	int rc = read_value(&r, &v);

	if (rc != 0) {
		return rc;
	}
	skip_ws(&r);
	if (r.p != r.end) {
		pr_cj_free(v);
		return PR_EJSON;
	}
	*out = v;
	return 0;
}

void
pr_cj_free(struct pr_cj *v)
{
	while (v != NULL) {
		struct pr_cj *next = v->next;
		pr_cj_free(v->child);
		free(v->key);
		free(v->text);
		free(v);
		v = next;
	}
}

const struct pr_cj *
pr_cj_get(const struct pr_cj *obj, const char *key)
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
pr_cj_str(const struct pr_cj *obj, const char *key)
{
	const struct pr_cj *m = pr_cj_get(obj, key);

	return m != NULL && m->type == PR_CJ_STR ? m->text : NULL;
}

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
