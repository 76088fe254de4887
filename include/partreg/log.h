/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics of libpartreg: a client says nothing on its own (no stderr, no
 * process-wide level); a caller who wants to hear of connection losses,
 * reconnects and refused subscriptions passes a callback in
 * struct pr_client_opts.
 */
#ifndef PARTREG_LOG_H
#define PARTREG_LOG_H

enum pr_log_level {
	PR_LOG_ERROR = 0,
	PR_LOG_WARN = 1,
	PR_LOG_INFO = 2,
	PR_LOG_DEBUG = 3,
};

/*
 * A log callback: one line of text (no newline; borrowed, valid during the
 * call) at level. It runs on one of the MQTT library's threads, so it must
 * be thread-safe, return quickly and not call back into the client.
 */
typedef void (*pr_log_fn)(void *arg, enum pr_log_level level, const char *line);

#endif
