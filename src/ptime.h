/* SPDX-License-Identifier: MIT */
/*
 * Time values: int64_t microseconds since the Unix epoch, UTC.
 *
 * Parsing accepts RFC 3339 / ISO 8601 date-times with 'T', 't' or one space
 * between date and time, seconds required, an optional fraction of 1..6
 * digits (more digits are refused rather than silently truncated), and an
 * optional offset ("Z", "z", "+hh:mm", "-hh:mm"); no offset means UTC, as the
 * original HTTP service did ("2023-01-01 00:00:00"). Leap seconds (":60")
 * are refused. Years 0001..9999.
 *
 * Formatting gives the canonical form "YYYY-MM-DDTHH:MM:SSZ", with
 * ".ffffff" only when the microseconds are non-zero, so equal instants have
 * equal text. Texts compare like times except within one second: '.' sorts
 * before 'Z', so "...:00Z" sorts after "...:00.5Z" although it is earlier.
 */
#ifndef PR_PTIME_H
#define PR_PTIME_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/protocol.h>

/* Earliest and latest instants that parse: 0001-01-01 and 9999-12-31T23:59:59.999999. */
#define PR_TIME_MIN INT64_C(-62135596800000000)
#define PR_TIME_MAX INT64_C(253402300799999999)

/*
 * Parse len bytes of text (need not be NUL-terminated) into *out.
 * Returns 0, or PR_ETIME for anything that is not a valid time.
 */
int pr_time_parse(const char *text, size_t len, int64_t *out);

/*
 * Write the canonical form of t into buf (PR_TIME_BUFSZ bytes), NUL
 * terminated. Returns buf. t must be within [PR_TIME_MIN, PR_TIME_MAX].
 */
char *pr_time_format(int64_t t, char buf[PR_TIME_BUFSZ]);

/* The wall clock now, in microseconds. */
int64_t pr_time_now(void);

#endif
