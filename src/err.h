/* SPDX-License-Identifier: MIT */
/*
 * Error values: 0 success, negative failure; see enum pr_err in
 * <partreg/protocol.h>. One table maps each partreg error to its protocol
 * code, HTTP-like status and a default message, so replies, logs and tests
 * all use the same words.
 */
#ifndef PR_ERR_H
#define PR_ERR_H

#include <partreg/protocol.h>

/* A description for any error: partreg's own or -errno. Static storage. */
const char *pr_strerror(int err);
/* The stable protocol code ("unknown_source"); "internal" for -errno. */
const char *pr_err_code(int err);
/* The status carried in replies: 200 for 0, 400, 401, ...; 500 for -errno. */
int pr_err_status(int err);

#endif
