/* SPDX-License-Identifier: MIT */
/*
 * The store: every record of the registry in one LMDB environment. This is
 * the only module that includes <lmdb.h>.
 *
 * Threads: LMDB allows one write transaction at a time and one transaction
 * per thread. The agent runs every transaction on its worker thread; tests
 * use one thread. All data returned leaves the transaction as copies.
 *
 * Durability: the environment is opened with LMDB's default sync, so a
 * commit that returned 0 is on disk (fsync) and survives kill -9 and power
 * loss. Many commands share one transaction (group commit); each command runs
 * in a nested transaction so a refused command leaves no trace.
 *
 * Indexes kept per source (all maintained by pr__store_partition_put/_del,
 * like the cross-source lease, session and tombstone indexes at the end):
 * - partitions by (start, end, provider), for lists and retained topics;
 * - an overlap index bucketed by length class (floor(log2(end - start))),
 *   so "partitions overlapping [a, b)" costs O(classes * log n + k);
 * - the coalesced union of ready partitions, so a readiness query costs
 *   O(log n + k) however many partitions the source has.
 *
 * Errors: PR_ENOSOURCE / PR_ENOPROVIDER / PR_ENOPARTITION for missing
 * records, PR_EMAPFULL when the map is full, PR_ESTORE for other LMDB
 * failures (the LMDB message is logged), PR_ECURSOR for a bad cursor.
 */
#ifndef PR_STORE_H
#define PR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct pr_store;
struct pr_txn;

struct pr_store_opts {
	uint64_t map_size; /* bytes; 0 = default (16 GiB, sparse) */
	int nosync;        /* no fsync at commit: a read index that etcd can
	                      rebuild (a killed process loses nothing; a machine
	                      crash may) */
};

/* Open (creating if needed) the store in directory dir (created if missing). */
int pr__store_open(const char *dir, const struct pr_store_opts *opts, struct pr_store **out);
/* Close; NULL is fine. No transaction may be open. */
void pr__store_close(struct pr_store *st);

/* Begin a transaction; write != 0 for a write transaction. */
int pr__txn_begin(struct pr_store *st, int write, struct pr_txn **out);
/* Begin a nested write transaction inside parent (a write transaction). */
int pr__txn_begin_nested(struct pr_txn *parent, struct pr_txn **out);
/* Commit and free txn (also on failure). A top-level commit is durable. */
int pr__txn_commit(struct pr_txn *txn);
/* Abort and free; NULL is fine. */
void pr__txn_abort(struct pr_txn *txn);

/* Raise and return the persisted agent epoch (its own committed transaction:
 * never call it while this thread holds a write transaction). */
int pr__store_next_epoch(struct pr_store *st, uint64_t *epoch);

/* The store's secret (idem.h): 32 random bytes in meta, made by the first
 * call (its own committed transaction, as above). */
int pr__store_secret(struct pr_store *st, uint8_t out[32]);

/* Size of the store, for the agent's stats. */
struct pr_store_info {
	uint64_t map_size;   /* bytes reserved (sparse) */
	uint64_t used_bytes; /* pages in use × page size */
	unsigned readers;    /* reader slots in use */
};
int pr__store_info(struct pr_store *st, struct pr_store_info *out);

/* Sources. get: PR_ENOSOURCE if absent. put creates (id == 0: assigns
 * src->id) or replaces. put: PR_ESOURCE_EXISTS when id == 0 and the name is
 * taken, PR_ENAME for an empty or too long name. */
int pr__store_source_get(struct pr_txn *txn, const char *name, struct pr_source *out);
int pr__store_source_put(struct pr_txn *txn, struct pr_source *src);
/* Sources by name after cursor ("" or NULL = from the first), at most limit;
 * cb returning non-zero stops and is returned. next gets the cursor of the
 * following page, "" when there is none. next may be NULL, or the same
 * buffer as cursor; after a stop by cb it resumes after that entry. */
int pr__store_source_list(struct pr_txn *txn, const char *cursor, size_t limit,
    int (*cb)(void *arg, const struct pr_source *s), void *arg, char next[PR_CURSOR_MAX]);

/* Providers of a source. get: PR_ENOPROVIDER if absent. */
int pr__store_provider_get(
    struct pr_txn *txn, const struct pr_source *src, const char *name, struct pr_provider *out);
int pr__store_provider_put(
    struct pr_txn *txn, const struct pr_source *src, const struct pr_provider *p);

/* Partitions, keyed by (source, start, end, provider). get: PR_ENOPARTITION.
 * put creates or replaces and maintains every index; del removes it.
 * put: PR_EINTERVAL when start >= end, PR_ENAME for a bad provider name; a
 * partition in state PR_DELETED is kept but is neither ready nor a blocker. */
int pr__store_partition_get(struct pr_txn *txn, const struct pr_source *src, const char *provider,
    struct pr_range r, struct pr_partition *out);
int pr__store_partition_put(
    struct pr_txn *txn, const struct pr_source *src, const struct pr_partition *p);
int pr__store_partition_del(
    struct pr_txn *txn, const struct pr_source *src, const char *provider, struct pr_range r);
/* Partitions of a source in (start, end, provider) order after cursor, at
 * most limit (0 = no limit); cb/next as for pr__store_source_list. */
int pr__store_partition_list(struct pr_txn *txn, const struct pr_source *src, const char *cursor,
    size_t limit, int (*cb)(void *arg, const struct pr_partition *p), void *arg,
    char next[PR_CURSOR_MAX]);

/* The coalesced ready ranges of the source that overlap want, in order, each
 * whole (not clipped to want). O(log n + k). cb as above. Both queries:
 * PR_EINTERVAL when want.start >= want.end. */
int pr__store_ready_each(struct pr_txn *txn, const struct pr_source *src, struct pr_range want,
    int (*cb)(void *arg, struct pr_range r), void *arg);
/* The non-ready (pending, locked, failed) partitions that overlap want, in
 * no promised order. O(classes * log n + k). */
int pr__store_blockers_each(struct pr_txn *txn, const struct pr_source *src, struct pr_range want,
    int (*cb)(void *arg, const struct pr_partition *p), void *arg);

/*
 * The blocker runs of a source (store_runs.c): its pending, locked and failed
 * partitions coalesced per provider and state into the connected parts of
 * their union (touching ranges join), each with the number of partitions in
 * it (struct pr_run of model.h, since, expires_at and reason left empty).
 * Ordered by state, provider, start. O(log n + runs). cb as above.
 */
int pr__store_runs_each(struct pr_txn *txn, const struct pr_source *src,
    int (*cb)(void *arg, const struct pr_run *r), void *arg);

/* The event log of a source: append (ev->seq set by the caller, strictly
 * increasing; a seq already logged is PR_EINTERNAL) and read in seq order
 * after after_seq. */
int pr__store_event_append(
    struct pr_txn *txn, const struct pr_source *src, const struct pr_event *ev);
int pr__store_event_each(struct pr_txn *txn, const struct pr_source *src, uint64_t after_seq,
    int (*cb)(void *arg, const struct pr_event *ev), void *arg);

/* Idempotency records: the first reply to a request_id.
 * get: PR_ENOTFOUND if absent; on success *reply is a NUL-terminated heap
 * copy the caller frees with free(), command the name it was for. */
int pr__store_idem_get(
    struct pr_txn *txn, const char *request_id, char command[64], char **reply, size_t *reply_len);
/* put: PR_EREQID when request_id is already recorded (the first record is
 * kept); PR_EFIELD for a request_id not of 1..PR_ID_MAX bytes or a command
 * of more than 63. */
int pr__store_idem_put(struct pr_txn *txn, const char *request_id, const char *command,
    const char *reply, size_t reply_len, int64_t now);
/* Remove records created before `before`, oldest first, at most max of them
 * (0 = no limit); *removed (may be NULL) gets the count. */
int pr__store_idem_prune(struct pr_txn *txn, int64_t before, size_t max, size_t *removed);

/* ---- leases, sessions, tokens, history (issue 3) ---- */

/*
 * Leases. partition_put/_del keep an index of every partition that is
 * locked with expires_at != 0, ordered by deadline, across all sources.
 * lease_next: the earliest deadline, PR_ENOTFOUND when no lease runs.
 * leases_due: the partitions whose deadline is <= now, earliest first, at
 * most max (0 = no limit). cb must not write to the store (collect, then
 * write after the call returns); returning non-zero stops and is returned.
 * The partition passed to cb is a copy, valid during the call.
 * Costs: lease_next O(log n); leases_due O(log n + k), n the leases of all
 * sources, k those returned.
 */
int pr__store_lease_next(struct pr_txn *txn, int64_t *deadline);
int pr__store_leases_due(struct pr_txn *txn, int64_t now, size_t max,
    int (*cb)(void *arg, const struct pr_partition *p), void *arg);

/*
 * Sessions. partition_put/_del keep an index of every locked partition with
 * a non-empty session, across all sources. session_each: those of session,
 * in no promised order; cb as for leases_due (must not write). An empty or
 * too long session matches nothing. O(log n + k).
 */
int pr__store_session_each(struct pr_txn *txn, const char *session,
    int (*cb)(void *arg, const struct pr_partition *p), void *arg);

/*
 * Token digests: whose token a digest is, so a refusal can tell a token of
 * another source or provider (403) from no valid token at all (401).
 * provider "" is the source owner's token. put replaces the digest's owner;
 * PR_ENAME for a source not of 1..PR_NAME_MAX bytes or a longer provider.
 * get and del: PR_ENOTFOUND if unknown. Each O(log n).
 */
int pr__store_token_put(struct pr_txn *txn, const uint8_t digest[PR_DIGEST_LEN], const char *source,
    const char *provider);
int pr__store_token_del(struct pr_txn *txn, const uint8_t digest[PR_DIGEST_LEN]);
int pr__store_token_get(struct pr_txn *txn, const uint8_t digest[PR_DIGEST_LEN],
    char source[PR_NAME_MAX + 1], char provider[PR_NAME_MAX + 1]);

/* Which events history/query wants; a zero field means "any". */
struct pr_event_filter {
	uint64_t since_seq; /* events with seq > since_seq */
	int64_t from, to;   /* events with from <= at (if has_from), at < to (if has_to) */
	int has_from, has_to;
	const char *provider;  /* NULL or "": any provider */
	struct pr_range range; /* {0, 0}: any; else exactly this partition's range */
};
/*
 * Events of src matching f, in seq order, after cursor ("" or NULL = from
 * the first), at most limit matches (0 = no limit); cb/next as for
 * pr__store_source_list, except that next is set only when another match
 * follows (the scan looks ahead for it), so a last page is never empty.
 * f NULL matches every event. PR_ECURSOR for a malformed cursor.
 * Cost: one seek, then the events after since_seq/cursor are scanned until
 * limit + 1 matches or the source's end: O(log n + scanned).
 */
int pr__store_event_query(struct pr_txn *txn, const struct pr_source *src,
    const struct pr_event_filter *f, const char *cursor, size_t limit,
    int (*cb)(void *arg, const struct pr_event *ev), void *arg, char next[PR_CURSOR_MAX]);
/*
 * Retention: remove src's oldest events while they are older than `before`
 * or more than keep_max remain (keep_max 0 = no count limit), at most max
 * removals (0 = no limit); before INT64_MIN sets no age limit. "Oldest" is
 * lowest seq: the walk stops at the first event kept. *removed (may be
 * NULL) gets the count. The count of a source's events is kept in the store
 * (one extra write per append), so this is O(log n + removed).
 */
int pr__store_event_prune(struct pr_txn *txn, const struct pr_source *src, int64_t before,
    size_t keep_max, size_t max, size_t *removed);

/*
 * Deleted partitions (tombstones) are kept with state PR_DELETED so that
 * republishing re-sends their tombstones; remove those deleted before
 * `before` (their `since`), oldest first, at most max (0 = no limit), across
 * all sources: the record and every index entry. *removed (may be NULL)
 * gets the count. O((removed + 1) * log n).
 */
int pr__store_tombstone_prune(struct pr_txn *txn, int64_t before, size_t max, size_t *removed);

/* ---- replication: the etcd backend's view of the store (store_capture.c) ---- */

#define PR_OP_GUARDS 3

/* A record a capturing transaction wrote (val != NULL) or removed. key is
 * its replication key (store_capture.c lists the kinds), val its stored
 * bytes; both in one allocation owned by the capture. */
struct pr_store_op {
	uint8_t *key;
	size_t key_len;
	uint8_t *val; /* NULL: removed */
	size_t val_len;
	int create_only;         /* the key must be new (an idempotency record) */
	int guard[PR_OP_GUARDS]; /* the guards it raises (indexes), -1 = none */
};

/* A guard the transaction read: a key whose etcd mod_revision must still
 * be rev, the revision this store has applied (0: never written). */
struct pr_store_guard {
	uint8_t key[1 + PR_NAME_MAX];
	size_t key_len;
	int64_t rev;
};

/* What a capturing transaction wrote and read. */
struct pr_capture {
	struct pr_store_op *ops; /* in order; a key may come more than once */
	size_t nops, cap_ops;
	struct pr_store_guard *guards; /* every guard read or raised */
	size_t nguards, cap_guards;
	int err; /* recording failed: the transaction must not be replicated */
};

/* Record what the top-level write transaction txn writes from now on
 * (and what its nested transactions commit into it). 0 or -ENOMEM. New
 * sources then get random ids (no counter shared between agents). */
int pr__txn_capture(struct pr_txn *txn);
/* The record so far; NULL when txn does not capture. Valid until txn
 * ends. */
const struct pr_capture *pr__txn_captured(const struct pr_txn *txn);

/* What one applied record was, for publishing it. */
struct pr_applied {
	char kind; /* the key's kind letter; 0: not a record (ignored) */
	int deleted;
	char source[PR_NAME_MAX + 1]; /* 's', 'p', 't', 'e', 'g' */
	struct pr_partition part;     /* 't': the partition written or removed */
	struct pr_event ev;           /* 'e' written */
};
/*
 * Apply one replicated record (val NULL: removed) to the store, with its
 * indexes, or a guard's mod_revision; a record of a source must follow its
 * source's. PR_ESTORE for a key or value that is not one.
 */
int pr__store_apply(struct pr_txn *txn, const uint8_t *key, size_t len, const uint8_t *val,
    size_t val_len, int64_t mod_rev, struct pr_applied *out);
/* The etcd revision the store has applied up to (0: none). */
int pr__store_applied_get(struct pr_txn *txn, int64_t *rev);
int pr__store_applied_put(struct pr_txn *txn, int64_t rev);
/* Values of this store's own, not replicated (the read index's agent:
 * its last publisher lease, the registry and boot it was written under,
 * whether it was closed cleanly); a missing one reads as 0. put commits
 * and flushes to disk (its own transaction). */
int pr__store_local_get(struct pr_store *st, const char *name, uint64_t *v);
int pr__store_local_put(struct pr_store *st, const char *name, uint64_t v);
/* Flush every commit to disk (a store opened with nosync). */
int pr__store_sync(struct pr_store *st);
/* Empty every database (before applying a full copy). */
int pr__store_clear(struct pr_txn *txn);
/* Stamp events with epoch from now on (the etcd backend's epoch). */
void pr__store_set_epoch(struct pr_store *st, uint64_t epoch);
/* The secret, given (the etcd backend's, shared by its agents). */
int pr__store_set_secret(struct pr_store *st, const uint8_t secret[32]);

#endif
