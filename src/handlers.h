/* SPDX-License-Identifier: MIT */
/*
 * Command handlers: what each protocol command does to the registry, as
 * functions of (store transaction, decoded command, now). No MQTT, no
 * threads: the agent runs them on its worker thread inside a nested
 * transaction, and unit tests run them on a temporary store.
 *
 * A handler either succeeds, leaving its writes in txn, a result to reply
 * with, and what changed in *changes (for the publisher), or fails with an
 * error and a message, having appended nothing to *changes; the caller then
 * aborts txn.
 */
#ifndef PR_HANDLERS_H
#define PR_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "encode.h"
#include "lease.h"
#include "model.h"
#include "store.h"

/* What a batch of commands changed: what the agent must publish after the
 * commit. Arrays grow as needed; free with pr__changes_release. */
struct pr_changes {
	struct pr_event *events; /* in order; published on P/events/<source> */
	size_t nevents, cap_events;
	struct pr_partition *parts; /* latest state of each changed partition */
	size_t nparts, cap_parts;
	char (*sources)[PR_NAME_MAX + 1]; /* sources whose summary changed, unique */
	size_t nsources, cap_sources;
	int resync_all;                  /* agent/resync without a source */
	char (*resync)[PR_NAME_MAX + 1]; /* agent/resync of one source */
	size_t nresync, cap_resync;
};

void pr__changes_init(struct pr_changes *c);
void pr__changes_release(struct pr_changes *c);
/* Forget everything appended since the counts were `mark` (a failed command). */
struct pr_changes_mark {
	size_t nevents, nparts, nsources, nresync;
	int resync_all;
};
struct pr_changes_mark pr__changes_mark(const struct pr_changes *c);
void pr__changes_rewind(struct pr_changes *c, struct pr_changes_mark m);
/* Add a partition's latest state (replacing an earlier one of it), an
 * event, a changed source, a source to republish. 0 or -ENOMEM. */
int pr__changes_add_part(struct pr_changes *c, const struct pr_partition *p);
int pr__changes_add_event(struct pr_changes *c, const struct pr_event *ev);
int pr__changes_add_source(struct pr_changes *c, const char *name);
int pr__changes_add_resync(struct pr_changes *c, const char *name);

struct pr_handler_opts {
	size_t list_default;          /* page size when a list command has no limit; 100 */
	size_t blockers_max;          /* most blockers listed in a readiness reply; 1000 */
	struct pr_lease_policy lease; /* ttl_s default and maximum */
};

/*
 * Apply cmd. On success returns 0 and sets *result (caller owns; free with
 * pr__json_free). On failure returns the error and writes a message for a
 * person into msg (may be "" to use pr_strerror's). now: pr_time_now().
 */
int pr__handle(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now,
    const struct pr_handler_opts *opts, struct pr_changes *changes, struct pr_json **result,
    char msg[256]);

/*
 * Expire the lease of p (as found by pr__store_leases_due) at now: the
 * partition becomes failed with reason lease_expired. Returns 0, or
 * PR_ENOTLOCKED when p is no longer that expired lock (nothing changed).
 */
int pr__handle_expiry(
    struct pr_txn *txn, const struct pr_partition *p, int64_t now, struct pr_changes *changes);

#endif
