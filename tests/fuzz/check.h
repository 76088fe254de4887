/* SPDX-License-Identifier: MIT */
/*
 * What both harnesses check with. A broken promise is printed and aborts,
 * so libFuzzer keeps the input that broke it. FUZZ_NAME names the harness
 * in the message; define it before including this.
 */
#ifndef PR_FUZZ_CHECK_H
#define PR_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, detail)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, FUZZ_NAME ": broken promise: %s (%s)\n", #cond, (detail)); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Does s[0..cap) hold a NUL? */
static inline int
terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

#endif
