/* SPDX-License-Identifier: MIT */
/*
 * What the codec tests (test_decode.c, test_encode.c) share: the instants
 * their fixtures use and the files under $PARTREG_SCHEMAS/examples/.
 * Include after <cmocka.h>.
 */
#ifndef PR_TEST_EXAMPLES_H
#define PR_TEST_EXAMPLES_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2023-01-01, 2023-01-02, 2023-01-03 00:00:00Z and a time with a fraction. */
#define T0   INT64_C(1672531200000000)
#define T1   INT64_C(1672617600000000)
#define T2   INT64_C(1672704000000000)
#define T3   INT64_C(1672790400000000)
#define NOW  INT64_C(1672628645123456) /* 2023-01-02T03:04:05.123456Z */
#define HOUR INT64_C(3600000000)

static inline const char *
schemas_dir(void)
{
	const char *d = getenv("PARTREG_SCHEMAS");

	if (d == NULL || d[0] == '\0') {
		fail_msg("PARTREG_SCHEMAS is not set: run through ctest, or set it to "
		         "<source tree>/schemas");
	}
	return d;
}

/* The file's bytes in a buffer of exactly *len bytes (no NUL after them). */
static inline char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n = 0;

	if (f == NULL) {
		fail_msg("cannot open %s: %s", path, strerror(errno));
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fail_msg("cannot size %s", path);
	}
	buf = malloc(n > 0 ? (size_t)n : 1);
	assert_non_null(buf);
	if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fail_msg("cannot read %s", path);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#endif
