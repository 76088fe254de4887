/* SPDX-License-Identifier: MIT */
/*
 * The log level is the one process-wide setting outside any object: every
 * module logs, and threading a logger through each call would add noise to
 * every signature for no gain. It is atomic so any thread may read it.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <partreg/protocol.h>

#include <partreg/time.h>

static atomic_int log_level = PR_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
pr__log_set_level(enum pr_log_level level)
{
	atomic_store(&log_level, (int)level);
}

int
pr__log_parse_level(const char *s, enum pr_log_level *out)
{
	for (int i = 0; i <= PR_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum pr_log_level)i;
			return 0;
		}
	}
	return PR_EFIELD;
}

int
pr__log_enabled(enum pr_log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

void
pr__log(enum pr_log_level level, const char *fmt, ...)
{
	char line[2048];
	char now[PR_TIME_BUFSZ];
	va_list ap;
	int n;

	if (!pr__log_enabled(level)) {
		return;
	}
	n = snprintf(
	    line, sizeof line, "%s %-5s ", pr_time_format(pr_time_now(), now), level_names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2) {
		n = (int)sizeof line - 2;
	}
	line[n++] = '\n';
	/* One write per line: lines of different threads never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
}

void
pr__log_line(void *arg, enum pr_log_level level, const char *line)
{
	(void)arg;
	pr__log(level, "%s", line);
}
