/* SPDX-License-Identifier: MIT */
/*
 * partreg protocol v1: the constants every client and the agent share.
 *
 * The normative copy of the protocol is schemas/ and README.md; this header
 * only names what C programs need to speak it: the default topic prefix,
 * size limits and partition states. The stable error codes of replies are
 * in <partreg/error.h>, included here.
 */
#ifndef PARTREG_PROTOCOL_H
#define PARTREG_PROTOCOL_H

#include <partreg/error.h>

#define PR_PROTOCOL_VERSION 1
#define PR_VERSION_STRING   "0.3.0"

/* Default topic prefix ("P" in the protocol). */
#define PR_DEFAULT_PREFIX "partreg/v1"

/* Source and provider names: 1..PR_NAME_MAX bytes of UTF-8. */
#define PR_NAME_MAX 200
/* request_id, session, correlation_id: at most this many bytes. */
#define PR_ID_MAX 64
/* A token in UUIDv4 text form: 36 characters. */
#define PR_TOKEN_LEN 36
/* An access_token field: 1..PR_TOKEN_MAX printable ASCII characters. */
#define PR_TOKEN_MAX 128

/*
 * Partition states, as they appear on the wire ("pending", "locked", ...).
 */
enum pr_pstate {
	PR_PENDING = 0,
	PR_LOCKED = 1,
	PR_READY = 2,
	PR_FAILED = 3,
	PR_DELETED = 4,
};

#endif
