/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr, one line per call: "2026-01-01T00:00:00.123456Z LEVEL msg".
 * The level is process-wide (set once at start by main); lines are written
 * with one write(2) each so threads never interleave within a line.
 * Never pass a token to these functions.
 */
#ifndef PR_LOG_H
#define PR_LOG_H

#include <partreg/log.h>

void pr__log_set_level(enum pr_log_level level);
/* Parse "error", "warn", "info", "debug". Returns 0 or PR_EFIELD. */
int pr__log_parse_level(const char *s, enum pr_log_level *out);
int pr__log_enabled(enum pr_log_level level);
void pr__log(enum pr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A pr_log_fn (for the transport) that logs line at level; arg unused. */
void pr__log_line(void *arg, enum pr_log_level level, const char *line);

#define pr_error(...) pr__log(PR_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  pr__log(PR_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  pr__log(PR_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) pr__log(PR_LOG_DEBUG, __VA_ARGS__)

#endif
