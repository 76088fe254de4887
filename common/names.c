/* SPDX-License-Identifier: MIT */
/*
 * Names that become MQTT topic levels, identifiers, and reply topics.
 *
 * The UTF-8 decoder follows the Unicode well-formed byte table (Table 3-7):
 * it refuses overlong forms, surrogates (ED A0..BF), values above U+10FFFF,
 * stray continuation bytes and truncated sequences, by range checks on the
 * second byte rather than by decoding first and checking afterwards.
 *
 * Beyond well-formedness, anything that goes into a topic must also avoid the
 * code points that MQTT says SHOULD NOT appear — C0, DEL, C1 and the Unicode
 * noncharacters (U+FDD0..U+FDEF, U+xxFFFE, U+xxFFFF) — because mosquitto
 * 2.0.11 enforces that: a PUBLISH whose topic holds one is a "malformed
 * packet" and the broker drops the publisher's connection (checked on
 * loopback). A name the agent accepted would otherwise get the agent itself
 * disconnected every time it published that source's state.
 */
#include "names.h"

#include <stdint.h>
#include <string.h>

#include <partreg/protocol.h>

/* MQTT topics are length-prefixed by 16 bits. */
#define TOPIC_MAX 65535

/*
 * Decode one well-formed UTF-8 sequence from s[0..len), len >= 1.
 * Returns its length (1..4) with the code point in *cp, or 0 if ill-formed.
 */
static size_t
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
		if (c == 0xe0) {
			lo = 0xa0; /* overlong below U+0800 */
		} else if (c == 0xed) {
			hi = 0x9f; /* surrogates U+D800..U+DFFF */
		}
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
		if (c == 0xf0) {
			lo = 0x90; /* overlong below U+10000 */
		} else if (c == 0xf4) {
			hi = 0x8f; /* above U+10FFFF */
		}
	} else {
		return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
	}
	if (len < n || s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = (v << 6) | (s[i] & 0x3f);
	}
	*cp = v;
	return n;
}

/* Code points refused in any topic: NUL and C0, DEL, C1, noncharacters. */
static int
topic_forbidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef)
	    || (cp & 0xfffe) == 0xfffe;
}

/*
 * Is s[0..len) well-formed UTF-8 with no code point refused in topics and
 * none of the ASCII characters in ban?
 */
static int
topic_text_ok(const char *s, size_t len, const char *ban)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(u + i, len - i, &cp);

		/* topic_forbidden() first: it refuses NUL, which strchr() would find. */
		if (n == 0 || topic_forbidden(cp) || (cp < 0x80 && strchr(ban, (int)cp) != NULL)) {
			return 0;
		}
		i += n;
	}
	return 1;
}

int
pr__name_check(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > PR_NAME_MAX || s[0] == '$') {
		return PR_ENAME;
	}
	return topic_text_ok(s, len, "/+#") ? 0 : PR_ENAME;
}

/* 1..max bytes of printable ASCII (0x20..0x7e): 0 or PR_EFIELD. */
static int
printable_check(const char *s, size_t len, size_t max)
{
	if (s == NULL || len == 0 || len > max) {
		return PR_EFIELD;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e) {
			return PR_EFIELD;
		}
	}
	return 0;
}

int
pr__id_check(const char *s, size_t len)
{
	return printable_check(s, len, PR_ID_MAX);
}

int
pr__token_check(const char *s, size_t len)
{
	return printable_check(s, len, PR_TOKEN_MAX);
}

int
pr__reply_topic_check(const char *topic, size_t len, const char *prefix)
{
	static const char reply[] = "/reply/";
	size_t plen;

	if (topic == NULL || prefix == NULL || len > TOPIC_MAX) {
		return PR_EREPLYTOPIC;
	}
	plen = strlen(prefix);
	if (len <= plen + sizeof reply - 1 || memcmp(topic, prefix, plen) != 0
	    || memcmp(topic + plen, reply, sizeof reply - 1) != 0) {
		return PR_EREPLYTOPIC;
	}
	/*
	 * The whole topic is checked, prefix included: the prefix is
	 * configuration, but the topic is what the broker will judge.
	 */
	return topic_text_ok(topic, len, "+#") ? 0 : PR_EREPLYTOPIC;
}

int
pr__prefix_check(const char *prefix)
{
	size_t len = prefix != NULL ? strlen(prefix) : 0;

	if (len == 0 || len > 256 || prefix[0] == '$' || prefix[0] == '/' || prefix[len - 1] == '/'
	    || strstr(prefix, "//") != NULL) {
		return PR_EFIELD;
	}
	return topic_text_ok(prefix, len, "+#") ? 0 : PR_EFIELD;
}

int
pr__utf8_check(const char *s, size_t len, size_t *bad_at)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(u + i, len - i, &cp);

		if (n == 0) {
			if (bad_at != NULL) {
				*bad_at = i;
			}
			return PR_EFIELD;
		}
		i += n;
	}
	return 0;
}
