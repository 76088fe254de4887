/* SPDX-License-Identifier: MIT */
/*
 * The etcd store backend (--etcd): etcd holds the registry, and the local
 * LMDB store becomes a read index of it, fed only by an etcd watch.
 *
 * Writes. The agent runs a batch of commands as always, each in a nested
 * transaction of one capturing LMDB transaction (store.h, pr__txn_capture),
 * then aborts that transaction: what it wrote goes to etcd instead, as one
 * etcd transaction (pr__replica_commit) that compares the mod_revision of
 * every guard the batch read (a source, the locks of a session) with the
 * one the read index has applied, and puts the records and raises the
 * guards it wrote. A read index that was behind another agent's write
 * fails a compare: the agent catches up (pr__replica_wait, _apply) and runs
 * the batch again. So no two agents grant one lock, and a source's seq and
 * fence, kept in its record, rise strictly across agents.
 *
 * Reads. The watch (its own thread) queues etcd's changes; the worker
 * applies them (pr__replica_apply) in one LMDB transaction per call, a
 * revision whole or not at all, with the revision applied, so a restart
 * resumes from there. A watch that finds its revision compacted, or an
 * empty read index, loads a full copy at one revision instead.
 *
 * The publisher. One agent per prefix publishes retained state: the one
 * holding the key <etcd-prefix>r/P under an etcd lease of publisher_ttl_s
 * (pr__replica_campaign, on a fresh lease each time, and only while the
 * read index's watch runs). A thread of its own keeps the lease alive every
 * ttl/5, and the agent holds itself deposed once ttl - 1 s has passed since
 * the last keepalive it sent that succeeded: before etcd can end the lease
 * and let another win. Its epoch is the revision at which it won, so each
 * publisher's (epoch, seq) stamps are above every earlier one's.
 *
 * Trust. The read index is written without fsync; it is loaded anew from
 * etcd when it holds another registry (etcd rebuilt: another secret), or
 * when the machine restarted since it was last written and it was not
 * closed cleanly (a machine crash may have torn it).
 *
 * etcd layout under the prefix:
 *   r/<replication key>   records and guards (store_capture.c), watched
 *   r/P                   the publisher (its instance id), under its lease
 *   r/x                   a republish request: value a source name or ""
 *   secret                the 32 bytes behind idempotency records (idem.h)
 *   epoch                 put at every agent start: its revision is the
 *                         agent's epoch (stamped on events)
 *
 * Threads: the worker thread calls everything here; the watch thread only
 * queues and calls wake; the keepalive thread only keeps the lease.
 */
#ifndef PR_REPLICA_H
#define PR_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "handlers.h"
#include "store.h"

struct pr_replica;

struct pr_replica_opts {
	const char *endpoints; /* --etcd */
	const char *prefix;    /* key prefix in etcd, e.g. "/partreg/v1/" */
	const char *ca_file, *cert_file, *key_file;
	const char *user, *password;
	const char *instance;    /* this agent's instance id, in r/P */
	int64_t publisher_ttl_s; /* the publisher's lease */
	size_t max_txn_ops;      /* etcd's --max-txn-ops */
	void (*wake)(void *arg); /* new changes to apply (watch thread) */
	void *wake_arg;
};

/*
 * Connect: read (or make) the shared secret and give it to st, take an
 * epoch, bring st up to date with etcd (a full copy when it is empty or
 * behind a compaction) and start the watch. Errors (logged): PR_ESTORE
 * when etcd cannot be reached or refuses, -ENOMEM.
 */
int pr__replica_open(const struct pr_replica_opts *o, struct pr_store *st, struct pr_replica **out);
void pr__replica_close(struct pr_replica *r);
uint64_t pr__replica_epoch(const struct pr_replica *r);

/*
 * Send what cap recorded as one etcd transaction. 0: committed at
 * *rev. 1: a guard moved (*rev: etcd's revision, to catch up to before
 * running the batch again). 2: too large for one etcd transaction
 * (max_txn_ops; nothing sent: split the batch; msg says so). PR_ESTORE:
 * etcd unavailable or in a minority; PR_EINDOUBT: the answer was lost (the
 * outcome is unknown). msg says which. A capture with nothing to compare or write is
 * 0 at once.
 */
int pr__replica_commit(
    struct pr_replica *r, const struct pr_capture *cap, int64_t *rev, char msg[256]);

/* Wait until changes up to rev are queued or applied, at most wait_us.
 * 0, or -ETIMEDOUT. */
int pr__replica_wait(struct pr_replica *r, int64_t rev, int64_t wait_us);
/* Is there anything for pr__replica_apply (changes, a watch to start)? */
int pr__replica_pending(struct pr_replica *r);
/* The revision the read index has applied. */
int64_t pr__replica_applied(const struct pr_replica *r);

/*
 * Apply the queued changes to the read index within txn (a write
 * transaction the caller commits), adding what changed to ch; after a
 * compaction, or a lost watch, the full copy or a new watch. *any is set
 * when txn was written. 0 or an error (txn is then to be aborted).
 */
int pr__replica_apply(struct pr_replica *r, struct pr_txn *txn, struct pr_changes *ch, int *any);
/* The caller's commit of what pr__replica_apply wrote failed: those
 * changes are read again (a new watch from the applied revision). */
void pr__replica_apply_failed(struct pr_replica *r);
/*
 * The batch that captured cap committed to etcd at rev: when rev is the
 * revision right after the read index's, nothing else happened in between,
 * and the batch's own writes in txn (its capturing transaction) are exactly
 * what the watch will bring. Then make txn the read index's next state (its
 * guards at rev, rev applied): 0, and the caller commits txn and calls
 * pr__replica_applied_commit; the watch's copy is skipped. 1 when another
 * change came in between (abort txn; wait for the watch), or an error.
 */
int pr__replica_adopt(
    struct pr_replica *r, struct pr_txn *txn, const struct pr_capture *cap, int64_t rev);
/* Once the caller's commit of pr__replica_apply or _adopt succeeded. */
void pr__replica_applied_commit(struct pr_replica *r);

/*
 * The publisher's election, called from the worker's loop: campaigns when
 * nobody publishes, keeps the lease alive when this agent does. Returns 1
 * when this agent has just become the publisher (then *epoch is its epoch,
 * and it must catch up to *rev before republishing everything), 0
 * otherwise. Cheap when nothing is due.
 */
int pr__replica_campaign(struct pr_replica *r, uint64_t *epoch, int64_t *rev);
/* Is this agent the publisher at now (its lease surely not ended)? */
int pr__replica_is_publisher(struct pr_replica *r);
/* Ask the publisher, wherever it is, to republish source (NULL: all). */
int pr__replica_request_resync(struct pr_replica *r, const char *source);
/* Give the publisher's lease up (at stop). */
void pr__replica_resign(struct pr_replica *r);
/* In how many µs the caller should call campaign next (0: now). */
int64_t pr__replica_due_in(const struct pr_replica *r);

#endif
