/* SPDX-License-Identifier: MIT */
/*
 * Times as partreg speaks them: int64_t microseconds since the Unix epoch,
 * UTC, written in one canonical RFC 3339 form so equal instants have equal
 * text.
 *
 * Parsing accepts RFC 3339 / ISO 8601 date-times with 'T', 't' or one space
 * between date and time, seconds required, an optional fraction of 1..6
 * digits (more digits are refused rather than silently truncated), and an
 * optional offset ("Z", "z", "+hh:mm", "-hh:mm"); no offset means UTC, as the
 * original HTTP service did ("2023-01-01 00:00:00"). A date alone,
 * "YYYY-MM-DD" with nothing after it, is that day's midnight UTC
 * ("2023-01-01" is "2023-01-01T00:00:00Z"), as for the CLI's --start; it
 * takes no offset, and a dangling "2023-01-01T" is refused. Leap seconds
 * (":60") are refused. Years 0001..9999; the date is checked alike in both
 * forms (month 01..12, the month's days, leap years).
 *
 * Formatting gives "YYYY-MM-DDTHH:MM:SSZ", with ".ffffff" only when the
 * microseconds are non-zero. Texts compare like times except within one
 * second: '.' sorts before 'Z', so "...:00Z" sorts after "...:00.5Z"
 * although it is earlier.
 *
 * Pure functions (the clock aside); any thread.
 */
#ifndef PARTREG_TIME_H
#define PARTREG_TIME_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/export.h>

/* Canonical time text "YYYY-MM-DDTHH:MM:SS.ffffffZ" plus NUL. */
#define PR_TIME_BUFSZ 32

/* Earliest and latest instants that parse: 0001-01-01 and 9999-12-31T23:59:59.999999. */
#define PR_TIME_MIN INT64_C(-62135596800000000)
#define PR_TIME_MAX INT64_C(253402300799999999)

/*
 * Parse len bytes of text (borrowed, need not be NUL-terminated) into *out:
 * a full time, or a date alone as its midnight UTC. Returns 0, or PR_ETIME
 * for anything that is not a valid time (*out untouched).
 */
PR_API int pr_time_parse(const char *text, size_t len, int64_t *out);

/*
 * Write the canonical form of t into buf (PR_TIME_BUFSZ bytes, the
 * caller's), NUL terminated. Returns buf. t must lie in [PR_TIME_MIN, PR_TIME_MAX].
 */
PR_API char *pr_time_format(int64_t t, char buf[PR_TIME_BUFSZ]);

/* The wall clock now (CLOCK_REALTIME), in microseconds. */
PR_API int64_t pr_time_now(void);

#endif
