/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/token.c: the UUIDv4 text form, uniqueness, SHA-256 against
 * the FIPS 180-2 vectors, and matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "token.h"

static int
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void
check_format(const char *t)
{
	assert_int_equal(strlen(t), PR_TOKEN_LEN);
	for (size_t i = 0; i < PR_TOKEN_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			assert_int_equal(t[i], '-');
		} else if (!is_lower_hex(t[i])) {
			fail_msg("%s: byte %zu is not lower-case hex", t, i);
		}
	}
	assert_int_equal(t[14], '4');           /* version nibble */
	assert_non_null(strchr("89ab", t[19])); /* variant 10xx */
}

static void
test_new_format(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		char t[PR_TOKEN_LEN + 1];

		memset(t, 'X', sizeof t);
		assert_int_equal(pr__token_new(t), 0);
		check_format(t);
	}
}

static void
test_new_unique(void **state)
{
	enum { N = 2000 };
	char(*t)[PR_TOKEN_LEN + 1] = malloc(N * sizeof *t);
	int variant_seen[4] = { 0 };

	(void)state;
	assert_non_null(t);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pr__token_new(t[i]), 0);
		variant_seen[strchr("89ab", t[i][19]) - "89ab"] = 1;
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(t[i], t[j]);
		}
	}
	/* The two free variant bits are random too. */
	assert_true(variant_seen[0] && variant_seen[1] && variant_seen[2] && variant_seen[3]);
	free(t);
}

static void
hex(const uint8_t *d, char out[2 * PR_DIGEST_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < PR_DIGEST_LEN; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * PR_DIGEST_LEN] = '\0';
}

static void
test_digest_vectors(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} v[] = {
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		uint8_t d[PR_DIGEST_LEN];
		char h[2 * PR_DIGEST_LEN + 1];

		assert_int_equal(pr__token_digest(v[i].in, strlen(v[i].in), d), 0);
		hex(d, h);
		assert_string_equal(h, v[i].want);
	}
}

/* Only len bytes are hashed; the input need not be NUL-terminated. */
static void
test_digest_length(void **state)
{
	uint8_t a[PR_DIGEST_LEN], b[PR_DIGEST_LEN];

	(void)state;
	assert_int_equal(pr__token_digest("abcdef", 3, a), 0);
	assert_int_equal(pr__token_digest("abc", 3, b), 0);
	assert_memory_equal(a, b, PR_DIGEST_LEN);
	assert_int_equal(pr__token_digest(NULL, 0, a), 0);
	assert_int_equal(pr__token_digest(NULL, 1, a), PR_EINTERNAL);
}

static void
test_matches(void **state)
{
	char t[PR_TOKEN_LEN + 1], other[PR_TOKEN_LEN + 1];
	uint8_t d[PR_DIGEST_LEN];

	(void)state;
	assert_int_equal(pr__token_new(t), 0);
	assert_int_equal(pr__token_new(other), 0);
	assert_int_equal(pr__token_digest(t, PR_TOKEN_LEN, d), 0);
	assert_int_equal(pr__token_matches(t, PR_TOKEN_LEN, d), 1);
	assert_int_equal(pr__token_matches(other, PR_TOKEN_LEN, d), 0);
	assert_int_equal(pr__token_matches(t, PR_TOKEN_LEN - 1, d), 0);
	assert_int_equal(pr__token_matches("", 0, d), 0);
	assert_int_equal(pr__token_matches(NULL, 1, d), 0);
	/* Case matters: the token is compared as given (t has a letter but
	 * with probability ~1e-6; then there is nothing to upper-case). */
	for (char *p = t; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'f') {
			*p = (char)(*p - 'a' + 'A');
			assert_int_equal(pr__token_matches(t, PR_TOKEN_LEN, d), 0);
			break;
		}
	}
	/* One flipped bit in the stored digest. */
	assert_int_equal(pr__token_digest(other, PR_TOKEN_LEN, d), 0);
	d[PR_DIGEST_LEN - 1] ^= 1;
	assert_int_equal(pr__token_matches(other, PR_TOKEN_LEN, d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_format),
		cmocka_unit_test(test_new_unique),
		cmocka_unit_test(test_digest_vectors),
		cmocka_unit_test(test_digest_length),
		cmocka_unit_test(test_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
