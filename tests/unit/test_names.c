/* SPDX-License-Identifier: MIT */
/*
 * Tables for common/names.c, plus exhaustive cross-checks of the UTF-8 rules
 * against a reference decoder written the other way round (decode by the
 * lead byte's bit pattern, then refuse overlong, surrogate and too-large
 * values), so a slip in either shows up as a disagreement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

#include <partreg/protocol.h>

struct item {
	const char *s;
	size_t len;
	int want;
};

/* String literal with its exact length, embedded NULs included. */
#define L(lit) lit, sizeof(lit) - 1

static const struct item names[] = {
	{ L("a"), 0 }, { L("orders"), 0 }, { L("orders.v2_eu-west"), 0 }, { L("my source"), 0 },
	{ L("a$"), 0 }, { L("~"), 0 }, { L("a\\b"), 0 },
	{ L("\303\274ber"), 0 },              /* u-umlaut, octal escapes */
	{ L("\xe6\x97\xa5\xe6\x9c\xac"), 0 }, /* two CJK ideographs */
	{ L("emoji \xf0\x9f\x98\x80"), 0 },   /* U+1F600 */
	{ L("\xc2\xa0"), 0 },                 /* U+00A0, first after C1 */
	{ L("\xdf\xbf"), 0 },                 /* U+07FF */
	{ L("\xe0\xa0\x80"), 0 },             /* U+0800 */
	{ L("\xed\x9f\xbf"), 0 },             /* U+D7FF */
	{ L("\xee\x80\x80"), 0 },             /* U+E000 */
	{ L("\xef\xb7\x8f"), 0 },             /* U+FDCF */
	{ L("\xef\xb7\xb0"), 0 },             /* U+FDF0 */
	{ L("\xef\xbf\xbd"), 0 },             /* U+FFFD */
	{ L("\xf0\x90\x80\x80"), 0 },         /* U+10000 */
	{ L("\xf4\x8f\xbf\xbd"), 0 },         /* U+10FFFD */
	{ L(""), PR_ENAME }, { L("$SYS"), PR_ENAME }, { L("$"), PR_ENAME }, { L("a/b"), PR_ENAME },
	{ L("/"), PR_ENAME }, { L("a+b"), PR_ENAME }, { L("+"), PR_ENAME }, { L("a#"), PR_ENAME },
	{ L("\0"), PR_ENAME }, { L("a\0b"), PR_ENAME }, { L("a\0"), PR_ENAME },
	{ L("a\x01"), PR_ENAME }, { L("\x1f"), PR_ENAME }, { L("a\tb"), PR_ENAME },
	{ L("a\nb"), PR_ENAME }, { L("a\x7f"), PR_ENAME }, /* DEL */
	{ L("\xc2\x80"), PR_ENAME },                       /* U+0080, C1 */
	{ L("\xc2\x85"), PR_ENAME },                       /* NEL */
	{ L("\xc2\x9f"), PR_ENAME },                       /* U+009F */
	{ L("\xc0\xaf"), PR_ENAME },                       /* overlong '/' */
	{ L("\xc0\x80"), PR_ENAME },                       /* overlong NUL */
	{ L("\xc1\xbf"), PR_ENAME },                       /* overlong U+007F */
	{ L("\xe0\x80\xaf"), PR_ENAME },                   /* overlong '/', 3 bytes */
	{ L("\xe0\x9f\xbf"), PR_ENAME },                   /* overlong U+07FF */
	{ L("\xf0\x80\x80\xaf"), PR_ENAME },               /* overlong '/', 4 bytes */
	{ L("\xf0\x8f\xbf\xbf"), PR_ENAME },               /* overlong U+FFFF */
	{ L("\xed\xa0\x80"), PR_ENAME },                   /* U+D800 */
	{ L("\xed\xbf\xbf"), PR_ENAME },                   /* U+DFFF */
	{ L("\xed\xa0\xbd\xed\xb8\x80"), PR_ENAME },       /* CESU-8 surrogate pair */
	{ L("\xf4\x90\x80\x80"), PR_ENAME },               /* U+110000 */
	{ L("\xf5\x80\x80\x80"), PR_ENAME },               /* lead byte F5 */
	{ L("\xf8\x88\x80\x80\x80"), PR_ENAME },           /* old 5-byte form */
	{ L("\xfe"), PR_ENAME }, { L("\xff"), PR_ENAME },
	{ L("\x80"), PR_ENAME },             /* stray continuation */
	{ L("a\xbf"), PR_ENAME },            /* stray continuation */
	{ L("\xc3"), PR_ENAME },             /* truncated */
	{ L("\xe6\x97"), PR_ENAME },         /* truncated */
	{ L("\xf0\x9f\x98"), PR_ENAME },     /* truncated */
	{ L("\303A"), PR_ENAME },            /* lead byte then ASCII */
	{ L("\xe6\x41\x41"), PR_ENAME },     /* lead byte then ASCII */
	{ L("\xf0\x9f\x41\x80"), PR_ENAME }, /* ASCII inside a sequence */
	{ L("\xef\xb7\x90"), PR_ENAME },     /* U+FDD0 noncharacter */
	{ L("\xef\xb7\xaf"), PR_ENAME },     /* U+FDEF noncharacter */
	{ L("\xef\xbf\xbe"), PR_ENAME },     /* U+FFFE */
	{ L("\xef\xbf\xbf"), PR_ENAME },     /* U+FFFF */
	{ L("\xf0\x9f\xbf\xbe"), PR_ENAME }, /* U+1FFFE */
	{ L("\xf4\x8f\xbf\xbf"), PR_ENAME }, /* U+10FFFF */
};

static void
run(const struct item *it, size_t n, int (*check)(const char *, size_t))
{
	for (size_t i = 0; i < n; i++) {
		int rc = check(it[i].s, it[i].len);

		if (rc != it[i].want) {
			char hex[64] = "";

			for (size_t j = 0; j < it[i].len && j < 20; j++) {
				static const char digits[] = "0123456789abcdef";
				unsigned char c = (unsigned char)it[i].s[j];

				hex[3 * j] = digits[c >> 4];
				hex[3 * j + 1] = digits[c & 15];
				hex[3 * j + 2] = ' ';
				hex[3 * j + 3] = '\0';
			}
			fail_msg("case %zu [%s] len %zu: got %d, want %d", i, hex, it[i].len, rc,
			    it[i].want);
		}
	}
}

static void
test_name_table(void **state)
{
	(void)state;
	run(names, sizeof names / sizeof names[0], pr__name_check);
	assert_int_equal(pr__name_check(NULL, 0), PR_ENAME);
	assert_int_equal(pr__name_check(NULL, 5), PR_ENAME);
	/* Only len bytes are read: a valid prefix of an invalid buffer passes. */
	assert_int_equal(pr__name_check("ab/c", 2), 0);
	assert_int_equal(pr__name_check("\xc3\xbc", 1), PR_ENAME);
}

static void
test_name_length(void **state)
{
	char buf[PR_NAME_MAX + 2];

	(void)state;
	memset(buf, 'a', sizeof buf);
	assert_int_equal(pr__name_check(buf, PR_NAME_MAX), 0);
	assert_int_equal(pr__name_check(buf, PR_NAME_MAX + 1), PR_ENAME);
	/* A multibyte character ending exactly at the limit, and one past it. */
	memcpy(buf + PR_NAME_MAX - 2, "\xc3\xbc", 2);
	assert_int_equal(pr__name_check(buf, PR_NAME_MAX), 0);
	memcpy(buf + PR_NAME_MAX - 1, "\xc3\xbc", 2);
	assert_int_equal(pr__name_check(buf, PR_NAME_MAX + 1), PR_ENAME);
	assert_int_equal(pr__name_check(buf, PR_NAME_MAX), PR_ENAME); /* cut mid-character */
}

/* Reference: length from the lead byte's bits, then value checks. */
static size_t
ref_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n;
	uint32_t v;

	if ((s[0] & 0x80) == 0) {
		n = 1, v = s[0];
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2, v = s[0] & 0x1fu;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, v = s[0] & 0x0fu;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, v = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len < n) {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = v << 6 | (s[i] & 0x3fu);
	}
	if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		return 0;
	}
	*cp = v;
	return n;
}

/* Reference name rule for "x" followed by the bytes b[0..n). */
static int
ref_name(const unsigned char *b, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = ref_decode(b + i, n - i, &cp);

		if (k == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)
		    || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe || cp == '/'
		    || cp == '+' || cp == '#') {
			return PR_ENAME;
		}
		i += k;
	}
	return 0;
}

static void
compare(const unsigned char *b, size_t n)
{
	char buf[8] = "x";
	int got, want;

	memcpy(buf + 1, b, n);
	got = pr__name_check(buf, n + 1);
	want = ref_name(b, n);
	if (got != want) {
		fail_msg("bytes %02x %02x %02x %02x (n %zu): got %d, want %d", b[0],
		    n > 1 ? b[1] : 0, n > 2 ? b[2] : 0, n > 3 ? b[3] : 0, n, got, want);
	}
}

/* Every sequence of one, two and three bytes; four bytes on the boundaries. */
static void
test_utf8_exhaustive(void **state)
{
	static const unsigned char edges[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
		0xc0, 0xc2, 0xe0, 0xf0, 0xf4, 0xff };
	unsigned char b[4];

	(void)state;
	for (unsigned x = 0; x < 256; x++) {
		b[0] = (unsigned char)x;
		compare(b, 1);
		for (unsigned y = 0; y < 256; y++) {
			b[1] = (unsigned char)y;
			compare(b, 2);
			for (unsigned z = 0; z < 256; z++) {
				b[2] = (unsigned char)z;
				compare(b, 3);
			}
		}
	}
	for (unsigned x = 0xf0; x < 0x100; x++) {
		for (unsigned y = 0; y < 256; y++) {
			for (size_t i = 0; i < sizeof edges; i++) {
				for (size_t j = 0; j < sizeof edges; j++) {
					b[0] = (unsigned char)x;
					b[1] = (unsigned char)y;
					b[2] = edges[i];
					b[3] = edges[j];
					compare(b, 4);
				}
			}
		}
	}
}

/* Every code point, properly encoded: accepted unless one of the rules bans it. */
static void
test_every_code_point(void **state)
{
	size_t accepted = 0;

	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		unsigned char b[4];
		size_t n;
		int banned = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)
		    || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xfdd0 && cp <= 0xfdef)
		    || (cp & 0xfffe) == 0xfffe || cp == '/' || cp == '+' || cp == '#'
		    || cp == '$'; /* alone, so leading */

		if (cp < 0x80) {
			b[0] = (unsigned char)cp, n = 1;
		} else if (cp < 0x800) {
			b[0] = (unsigned char)(0xc0 | cp >> 6);
			b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
		} else if (cp < 0x10000) {
			b[0] = (unsigned char)(0xe0 | cp >> 12);
			b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
			b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
		} else {
			b[0] = (unsigned char)(0xf0 | cp >> 18);
			b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
			b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
			b[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
		}
		if ((pr__name_check((const char *)b, n) == 0) == banned) {
			fail_msg("U+%04X: %s", (unsigned)cp, banned ? "accepted" : "refused");
		}
		accepted += !banned;
	}
	/* 0x110000 - 65 controls - 2048 surrogates - 66 noncharacters - "/+#$". */
	assert_int_equal(accepted, 0x110000 - 65 - 2048 - 66 - 4);
}

static const struct item ids[] = {
	{ L("r1"), 0 },
	{ L(" "), 0 },
	{ L("a b"), 0 },
	{ L("~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"), 0 },
	{ L("550e8400-e29b-41d4-a716-446655440000"), 0 },
	{ L(""), PR_EFIELD },
	{ L("a\tb"), PR_EFIELD },
	{ L("a\nb"), PR_EFIELD },
	{ L("\x1f"), PR_EFIELD },
	{ L("\x7f"), PR_EFIELD },
	{ L("\x80"), PR_EFIELD },
	{ L("\xc3\xbc"), PR_EFIELD },
	{ L("a\0b"), PR_EFIELD },
	{ L("\0"), PR_EFIELD },
	{ L("\xff"), PR_EFIELD },
};

static void
test_id(void **state)
{
	char buf[PR_ID_MAX + 1];

	(void)state;
	run(ids, sizeof ids / sizeof ids[0], pr__id_check);
	assert_int_equal(pr__id_check(NULL, 0), PR_EFIELD);
	memset(buf, 'z', sizeof buf);
	assert_int_equal(pr__id_check(buf, PR_ID_MAX), 0);
	assert_int_equal(pr__id_check(buf, PR_ID_MAX + 1), PR_EFIELD);
	for (int c = 0; c < 256; c++) {
		char one = (char)c;

		assert_int_equal(pr__id_check(&one, 1), c >= 0x20 && c <= 0x7e ? 0 : PR_EFIELD);
	}
}

static int
reply_default(const char *s, size_t len)
{
	return pr__reply_topic_check(s, len, PR_DEFAULT_PREFIX);
}

static const struct item replies[] = {
	{ L("partreg/v1/reply/x"), 0 },
	{ L("partreg/v1/reply/client-7/req-42"), 0 },
	{ L("partreg/v1/reply//"), 0 },
	{ L("partreg/v1/reply/$x"), 0 },
	{ L("partreg/v1/reply/\xc3\xbc"), 0 },
	{ L("partreg/v1/reply/"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply"), PR_EREPLYTOPIC },
	{ L("partreg/v1"), PR_EREPLYTOPIC },
	{ L(""), PR_EREPLYTOPIC },
	{ L("partreg/v1/replyx/a"), PR_EREPLYTOPIC },
	{ L("partreg/v1/REPLY/x"), PR_EREPLYTOPIC },
	{ L("Partreg/v1/reply/x"), PR_EREPLYTOPIC },
	{ L("partreg/v2/reply/x"), PR_EREPLYTOPIC },
	{ L("partreg/v1/cmd/x"), PR_EREPLYTOPIC },
	{ L("partreg/v1/state/x"), PR_EREPLYTOPIC },
	{ L("xpartreg/v1/reply/x"), PR_EREPLYTOPIC },
	{ L("/partreg/v1/reply/x"), PR_EREPLYTOPIC },
	{ L("partreg/v1//reply/x"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/+"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/#"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/a+b"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/a/#"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/a\0b"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\0"), PR_EREPLYTOPIC },
	{ L("partreg/v1\0reply/x"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\xc3"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\xc0\xaf"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\xed\xa0\x80"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\x01"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/a\nb"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\x7f"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\xc2\x85"), PR_EREPLYTOPIC },
	{ L("partreg/v1/reply/\xef\xbf\xbe"), PR_EREPLYTOPIC },
};

static void
test_reply_topic(void **state)
{
	const size_t plen = strlen("partreg/v1/reply/");
	char *big;

	(void)state;
	run(replies, sizeof replies / sizeof replies[0], reply_default);
	assert_int_equal(pr__reply_topic_check("p/reply/x", 9, "p"), 0);
	assert_int_equal(pr__reply_topic_check("partreg/v1/reply/x", 18, "p"), PR_EREPLYTOPIC);
	assert_int_equal(pr__reply_topic_check("site/a/b/reply/x", 16, "site/a/b"), 0);
	assert_int_equal(
	    pr__reply_topic_check("partreg/v1/reply/x", 17, "partreg/v1"), PR_EREPLYTOPIC);
	assert_int_equal(pr__reply_topic_check(NULL, 0, "partreg/v1"), PR_EREPLYTOPIC);
	assert_int_equal(pr__reply_topic_check("partreg/v1/reply/x", 18, NULL), PR_EREPLYTOPIC);

	/* The MQTT topic limit: 65535 bytes. */
	big = malloc(65536);
	assert_non_null(big);
	memcpy(big, "partreg/v1/reply/", plen);
	memset(big + plen, 'r', 65536 - plen);
	assert_int_equal(reply_default(big, 65535), 0);
	assert_int_equal(reply_default(big, 65536), PR_EREPLYTOPIC);
	free(big);
}

static void
test_prefix(void **state)
{
	static const struct {
		const char *prefix;
		int ok;
	} rows[] = {
		{ "partreg/v1", 1 },
		{ "a", 1 },
		{ "site-a/partreg/v1", 1 },
		{ "", 0 },
		{ "a/+", 0 },
		{ "a/#", 0 },
		{ "/a", 0 },
		{ "a/", 0 },
		{ "a//b", 0 },
		{ "$SYS", 0 },
		{ "a\tb", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if ((pr__prefix_check(rows[i].prefix) == 0) != rows[i].ok) {
			fail_msg("prefix '%s': expected %s", rows[i].prefix,
			    rows[i].ok ? "ok" : "refused");
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_table),
		cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_utf8_exhaustive),
		cmocka_unit_test(test_every_code_point),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_reply_topic),
		cmocka_unit_test(test_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
