/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr, one line per call: "2026-01-01T00:00:00.123456Z LEVEL msg".
 * The level is process-wide (set once at start by main); lines are written
 * with one write(2) each so threads never interleave within a line.
 * Never pass a token to these functions.
 */
#ifndef PR_LOG_H
#define PR_LOG_H

enum pr_log_level {
	PR_LOG_ERROR = 0,
	PR_LOG_WARN = 1,
	PR_LOG_INFO = 2,
	PR_LOG_DEBUG = 3,
};

void pr_log_set_level(enum pr_log_level level);
/* Parse "error", "warn", "info", "debug". Returns 0 or PR_EFIELD. */
int pr_log_parse_level(const char *s, enum pr_log_level *out);
int pr_log_enabled(enum pr_log_level level);
void pr_log(enum pr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_error(...) pr_log(PR_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  pr_log(PR_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  pr_log(PR_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) pr_log(PR_LOG_DEBUG, __VA_ARGS__)

#endif
