/* SPDX-License-Identifier: MIT */
#include "lease.h"

#include <inttypes.h>
#include <stdio.h>

#include <partreg/error.h>

#define US_PER_S INT64_C(1000000)

int
pr__lease_deadline(const struct pr_lease_policy *pol, int has_ttl, int64_t ttl_s, int64_t now,
    int64_t *expires_at, char msg[256])
{
	int64_t ttl = has_ttl ? ttl_s : pol->default_s;

	if (ttl < 1 || ttl > pol->max_s) {
		snprintf(msg, 256,
		    "ttl_s must be 1 to %" PRId64 " seconds (the agent's --lease-max)", pol->max_s);
		return PR_EFIELD;
	}
	*expires_at = now + ttl * US_PER_S;
	return 0;
}

int
pr__lease_expired(const struct pr_partition *p, int64_t now)
{
	return p->state == PR_LOCKED && p->expires_at != 0 && now >= p->expires_at;
}

int64_t
pr__lease_wait_us(int64_t next_deadline, int64_t now, int64_t max_wait_us)
{
	if (next_deadline == 0 || next_deadline - now > max_wait_us) {
		return max_wait_us;
	}
	return next_deadline > now ? next_deadline - now : 0;
}
