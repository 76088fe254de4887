/* SPDX-License-Identifier: MIT */
/*
 * The agent: connects the transport, the store and the handlers.
 *
 *   Paho receive thread          worker thread (pr__agent_run)
 *   on_message ── queue ──────▶  batch of up to batch_max commands
 *                                 one LMDB write txn, a nested txn each
 *                                 commit (fsync)            ← durable here
 *                                 publish state, events, then replies
 *
 * Commands that arrive together share one commit (group commit), so the
 * agent is not capped at the disk's fsync rate. Paho acknowledges a QoS 1
 * command (PUBACK) when it is queued, before it is durable: a PUBACK means
 * "the agent process has it", a reply means "it is on disk". A command lost
 * in between (agent killed) has no reply, and the client retries it with
 * the same request_id; if it had been applied, the retry is answered with
 * the first reply, marked "replayed". State is published before the reply,
 * so a client that got a reply and then reads a retained topic sees the
 * change.
 */
#ifndef PR_AGENT_H
#define PR_AGENT_H

#include "config.h"

struct pr_agent;

/* Lock and open the store, raise the epoch, check that no other agent
 * serves the prefix (guard.h), start connecting. cfg must outlive the
 * agent. Returns 0 or an error (logged): -EBUSY when another process holds
 * the store, -EEXIST when another agent is online on the prefix. */
int pr__agent_open(const struct pr_config *cfg, struct pr_agent **out);
/* Run the worker on the calling thread until pr__agent_stop. Returns 0. */
int pr__agent_run(struct pr_agent *a);
/* Ask the worker to finish the commands already received, publish
 * "offline" and return. Any thread. */
void pr__agent_stop(struct pr_agent *a);
/* 0, or the exit code (guard.h) when the agent stopped itself. */
int pr__agent_exit_code(struct pr_agent *a);
/* Disconnect and close the store; NULL is fine. */
void pr__agent_close(struct pr_agent *a);

#endif
