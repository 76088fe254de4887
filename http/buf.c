/* SPDX-License-Identifier: MIT */
/* The growable text buffer (buf.h): doubling capacity, one NUL kept. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
reserve(struct pr_http_buf *b, size_t more)
{
	size_t need = b->len + more + 1;
	size_t cap = b->cap != 0 ? b->cap : 256;
	char *p;

	if (b->oom) {
		return -1;
	}
	if (need <= b->cap) {
		return 0;
	}
	while (cap < need) {
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void
pr_http_buf_add(struct pr_http_buf *b, const char *s, size_t n)
{
	if (reserve(b, n) != 0) {
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
pr_http_buf_puts(struct pr_http_buf *b, const char *s)
{
	pr_http_buf_add(b, s, strlen(s));
}

void
pr_http_buf_printf(struct pr_http_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) != 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *
pr_http_buf_take(struct pr_http_buf *b)
{
	char *p;

	if (b->oom) {
		pr_http_buf_release(b);
		return NULL;
	}
	p = b->p != NULL ? b->p : strdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void
pr_http_buf_release(struct pr_http_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}
