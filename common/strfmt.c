/* SPDX-License-Identifier: MIT */
/* See strfmt.h. vasprintf leaves its pointer undefined on failure; this
 * gives NULL instead. */
#include "strfmt.h"

#include <stdarg.h>
#include <stdio.h>

char *
pr__strfmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}
