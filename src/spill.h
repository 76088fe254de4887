/* SPDX-License-Identifier: MIT */
/*
 * The queue's overflow: a first-in first-out file of messages, for the
 * commands the agent must take while its queue is full (queue.h). Not
 * durable and not meant to be: it holds what memory would otherwise hold,
 * and is emptied (truncated) whenever the last message is read back. Not
 * thread-safe: the queue's mutex guards it.
 */
#ifndef PR_SPILL_H
#define PR_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"

struct pr_spill;

/* Create (or empty) the file at path. 0 or -errno. */
int pr__spill_open(const char *path, struct pr_spill **out);
/* Close and remove the file; NULL is fine. */
void pr__spill_close(struct pr_spill *sp);
/* Append m (not taken: the caller still frees it). 0 or -errno (nothing written). */
int pr__spill_put(struct pr_spill *sp, const struct pr_msg *m);
/* The oldest message (caller frees with pr__msg_free), or NULL when empty
 * or on error (logged; the file is then emptied). */
struct pr_msg *pr__spill_get(struct pr_spill *sp);
/* Messages in the file, and its size in bytes. */
uint64_t pr__spill_count(const struct pr_spill *sp);
uint64_t pr__spill_bytes(const struct pr_spill *sp);

#endif
