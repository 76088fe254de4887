/* SPDX-License-Identifier: MIT */
/*
 * Leases, as pure functions of (partition, policy, now): no clock, no I/O,
 * so their rules are tested as tables of explicit times.
 *
 * A lock holds a lease until expires_at. A lease is never extended past
 * its deadline: a renew at or after it is refused, and the agent turns the
 * partition failed (reason "lease_expired"), never ready, because a job
 * that stopped heartbeating may have left half-written data.
 */
#ifndef PR_LEASE_H
#define PR_LEASE_H

#include <stdint.h>

#include "model.h"

#define PR_LEASE_REASON "lease_expired"

struct pr_lease_policy {
	int64_t default_s; /* ttl when a lock or renew names none */
	int64_t max_s;     /* largest ttl_s accepted */
};

/*
 * The deadline of a lease taken or renewed at now: now + ttl_s, or + the
 * default when has_ttl is 0. Returns 0, or PR_EFIELD when ttl_s is below 1
 * or above the policy's maximum (msg, 256 bytes, says which).
 */
int pr__lease_deadline(const struct pr_lease_policy *pol, int has_ttl, int64_t ttl_s, int64_t now,
    int64_t *expires_at, char msg[256]);

/* Is p a lock whose lease has run out at now? */
int pr__lease_expired(const struct pr_partition *p, int64_t now);

/*
 * How long the agent may sleep at now, in microseconds, before the next
 * deadline (next_deadline 0 = none) is due: 0 when it is due already, and
 * never more than max_wait_us.
 */
int64_t pr__lease_wait_us(int64_t next_deadline, int64_t now, int64_t max_wait_us);

#endif
