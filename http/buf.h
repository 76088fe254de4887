/* SPDX-License-Identifier: MIT */
/*
 * A growable text buffer for response bodies and event text. Appends never
 * fail loudly: an allocation failure sets oom, later appends do nothing,
 * and the caller checks oom once at the end (a 500), so building code stays
 * a straight line.
 */
#ifndef PR_HTTP_BUF_H
#define PR_HTTP_BUF_H

#include <stddef.h>

struct pr_http_buf {
	char *p; /* NUL-terminated when len > 0; caller owns, free() */
	size_t len;
	size_t cap;
	int oom;
};

void pr_http_buf_add(struct pr_http_buf *b, const char *s, size_t n);
void pr_http_buf_puts(struct pr_http_buf *b, const char *s);
void pr_http_buf_printf(struct pr_http_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Take the text (heap, NUL-terminated, "" when empty; NULL on oom) and
 * reset b. */
char *pr_http_buf_take(struct pr_http_buf *b);
void pr_http_buf_release(struct pr_http_buf *b);

#endif
