/* SPDX-License-Identifier: MIT */
/*
 * Validation of names that become MQTT topic levels (sources, providers) and
 * of short identifiers (request_id, session).
 */
#ifndef PR_NAMES_H
#define PR_NAMES_H

#include <stddef.h>

/*
 * A source or provider name: 1..PR_NAME_MAX bytes of valid UTF-8 (no
 * overlong forms, no surrogates), no control characters (C0, DEL, C1), no
 * Unicode noncharacters (U+FDD0..U+FDEF, U+xxFFFE/F: mosquitto drops a
 * client that publishes them in a topic), no '/', '+', '#', no NUL, and not
 * starting with '$'.
 * Returns 0 or PR_ENAME.
 */
int pr__name_check(const char *s, size_t len);

/*
 * An identifier (request_id, session, correlation_id): 1..PR_ID_MAX bytes of
 * printable ASCII (0x20..0x7e). Returns 0 or PR_EFIELD.
 */
int pr__id_check(const char *s, size_t len);

/*
 * An access_token field: 1..PR_TOKEN_MAX bytes of printable ASCII. Returns
 * 0 or PR_EFIELD.
 */
int pr__token_check(const char *s, size_t len);

/*
 * A topic filter/topic level check for reply topics: the topic must start
 * with prefix followed by "/reply/", have at least one character after it,
 * contain no '+' or '#', be at most 65535 bytes, and be valid UTF-8 without
 * NUL, control characters or noncharacters (as for names). Returns 0 or
 * PR_EREPLYTOPIC.
 */
int pr__reply_topic_check(const char *topic, size_t len, const char *prefix);

/*
 * The topic prefix ("partreg/v1"): 1..256 bytes of topic text (as for reply
 * topics) without '+' or '#', no empty level (no leading, trailing or
 * doubled '/'), not starting with '$'. Returns 0 or PR_EFIELD.
 */
int pr__prefix_check(const char *prefix);

/*
 * Is s[0..len) well-formed UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF)? Returns 0, or PR_EFIELD with *bad_at (may be NULL) the
 * offset of the first ill-formed sequence.
 */
int pr__utf8_check(const char *s, size_t len, size_t *bad_at);

#endif
