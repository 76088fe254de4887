/* SPDX-License-Identifier: MIT */
/*
 * The agent's encoders: results, reply envelopes, retained state, events,
 * P/agent/status and P/agent/stats. Each builds a struct pr_json (opaque,
 * heap) that the caller dumps as compact JSON with pr__json_dump. Every
 * time is written in the canonical form of <partreg/time.h>.
 */
#ifndef PR_ENCODE_H
#define PR_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/interval.h>

#include "model.h"

struct pr_json; /* an opaque JSON value; free with pr__json_free */

void pr__json_free(struct pr_json *j);
/* Compact JSON text, heap, NUL-terminated; *len its length (may be NULL).
 * Caller frees with free(). NULL on allocation failure. */
char *pr__json_dump(const struct pr_json *j, size_t *len);

/* Set a member of an object (replacing any). */
void pr__json_set_u64(struct pr_json *obj, const char *key, uint64_t v);
void pr__json_set_str(struct pr_json *obj, const char *key, const char *v);
void pr__json_set_bool(struct pr_json *obj, const char *key, int v);

/* {source, owner, created_at, updated_at, seq[, access_token]}; token NULL to omit. */
struct pr_json *pr__json_source(const struct pr_source *s, const char *token);
/* {source, provider, created_at[, provider_token]}; token NULL to omit. */
struct pr_json *pr__json_provider(
    const char *source, const struct pr_provider *p, const char *token);
/* {source, provider, start, end, state, version, fence, since, updated_at, seq
 *  [, expires_at, session, reason, metadata]} (optional ones only when set). */
struct pr_json *pr__json_partition(const struct pr_partition *p);
/* {source, start, end, ready, gaps: [[s,e]...], blockers: [partition...],
 *  ready_through (null when == start), seq, truncated} */
struct pr_json *pr__json_readiness(const char *source, struct pr_range want,
    const struct pr_readiness *r, const struct pr_partition *blockers, size_t nblockers,
    uint64_t seq);
/* An array, and appending to it (takes ownership of item). */
struct pr_json *pr__json_array(void);
void pr__json_append(struct pr_json *array, struct pr_json *item);
/* {items: array, next_cursor: next or null when ""}; takes ownership of items. */
struct pr_json *pr__json_page(struct pr_json *items, const char *next);

/* history/query's result: {events: array, next_cursor: next or null}; takes
 * ownership of events (an array of pr__json_event items; NULL for []). next
 * NULL or "" means the last page (null). */
struct pr_json *pr__json_history(struct pr_json *events, const char *next);
/* session/abort's result: {session, failed: partitions, deferred_until?};
 * takes ownership of partitions (an array of pr__json_partition items; NULL
 * for []); deferred_until 0 = not deferred. */
struct pr_json *pr__json_session_abort(
    const char *session, struct pr_json *partitions, int64_t deferred_until);

/* The result of agent/resync: {republishing: "all"} for source NULL, else
 * {republishing: "source", source}. */
struct pr_json *pr__json_resync(const char *source);

/* The retained summary on P/state/<source>, format PR_SUMMARY_V:
 * {v, source, owner, seq, epoch, updated_at, ready: [[s,e]...],
 *  blocked: [{start, end, provider, state, count, since?, expires_at?,
 *  reason?}...], truncated}; since/expires_at/reason only for a run of one. */
#define PR_SUMMARY_V 2
struct pr_json *pr__json_summary(const struct pr_source *s, uint64_t epoch,
    const struct pr_range *ready, size_t nready, const struct pr_run *blocked, size_t nblocked,
    int truncated);
/* A partition's retained message: pr__json_partition plus epoch. */
struct pr_json *pr__json_partition_state(const struct pr_partition *p, uint64_t epoch);
/* An event on P/events/<source>: {seq, epoch, at, type, source, provider?,
 * start?, end?, state?, fence?, version?, reason?} */
struct pr_json *pr__json_event(const struct pr_event *ev, uint64_t epoch);
/* The events of one source from one batch, on P/events/<source>:
 * {v: PR_EVENTS_V, source, epoch, events: [pr__json_event...]}; takes
 * ownership of events (NULL for []). */
#define PR_EVENTS_V 2
struct pr_json *pr__json_events(const char *source, uint64_t epoch, struct pr_json *events);
/* Who an agent is, in its P/agent/status. */
struct pr_agent_identity {
	const char *agent_id; /* the MQTT client id */
	uint64_t epoch;
	char instance[40]; /* random per process start */
	char store[40];    /* the store's id: the same for every agent on one store */
	int takeover;      /* started with --takeover */
};
/* P/agent/status: {status: "online"|"offline", agent_id, version, epoch,
 * instance, store, takeover?, lost?, at}; lost (true) marks the Last Will,
 * whose at is when its connection began, not when it was lost. */
struct pr_json *pr__json_agent_status(
    const char *status, const struct pr_agent_identity *id, int64_t at, int lost);

/* P/agent/stats, retained, refreshed every --stats-interval seconds. */
struct pr_agent_stats {
	const char *agent_id;
	uint64_t epoch;
	int64_t at, started_at;
	uint64_t commands;         /* decoded and handled, replays included */
	uint64_t refused;          /* answered with an error */
	uint64_t replayed;         /* answered from an idempotency record */
	uint64_t retained_dropped; /* retained commands ignored (not in commands) */
	uint64_t batches;          /* commits */
	uint64_t leases_expired;
	double commit_ms_last, commit_ms_max;   /* max since the last stats message */
	uint64_t queue;                         /* commands waiting now */
	uint64_t queue_bytes, queue_peak_bytes; /* their bytes now, most since the last stats */
	uint64_t queue_max, queue_max_bytes;    /* the limits */
	uint64_t queue_full_waits;              /* arrivals that waited for room */
	uint64_t queue_over_limit;              /* arrivals let in over the limit */
	uint64_t queue_spilled;                 /* arrivals written to the spill file */
	uint64_t spill_len, spill_bytes;        /* in the spill file now */
	uint64_t other_agents;                  /* other instances seen online on the prefix */
	uint64_t store_used_bytes, store_map_bytes;
	unsigned store_readers;
};
/* {agent_id, version, epoch, at, uptime_s, commands: {total, refused,
 *  replayed, retained_dropped}, batches, leases_expired, commit_ms: {last, max}, queue,
 *  flow: {bytes, peak_bytes, max_commands, max_bytes, full_waits, over_limit,
 *  spilled, spill: {commands, bytes}},
 *  other_agents, store: {used_bytes, map_bytes, readers}} */
struct pr_json *pr__json_agent_stats(const struct pr_agent_stats *s);

/*
 * A reply envelope, heap text (free with free()), *len its length:
 * success: {"ok":true,"status":200,"request_id":…,"correlation_id":…,"result":…}
 * failure: {"ok":false,"status":S,"request_id":…,"correlation_id":…,
 *           "error":{"code":…,"message":…}}
 * request_id and correlation_id are omitted when NULL. result is consumed
 * (may be NULL for {}); on failure a non-NULL result becomes error.details.
 * message NULL means pr_strerror(err).
 */
char *pr__reply_encode(int err, const char *message, const char *request_id,
    const char *correlation_id, struct pr_json *result, size_t *len);
/*
 * The replay of a stored reply: the same JSON with "replayed":true and the
 * new correlation_id (omitted when NULL). Heap text or NULL if stored is not
 * a JSON object.
 */
char *pr__reply_replayed(
    const char *stored, size_t stored_len, const char *correlation_id, size_t *len);

#endif
