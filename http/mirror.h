/* SPDX-License-Identifier: MIT */
/*
 * The mirror: partreg-http's copy of the retained state under the prefix,
 * fed by one subscription to P/state/#, P/agent/status and P/agent/stats.
 * Per source the latest summary (raw JSON and parsed), per partition topic
 * the latest partition state (tombstones included, until an empty retained
 * message clears the topic), the agent's status and stats. A message with
 * a lower (epoch, seq) than the copy held is stale and dropped.
 *
 * Threads: pr_http_mirror_message runs on the MQTT receive thread and only
 * copies under the mutex; every query runs on an HTTP connection's thread
 * and returns copies, so nothing returned points into the mirror.
 *
 * Watchers (the SSE streams) get the current state as a snapshot, then
 * every change. The snapshot is made as the watcher reads it, a chunk of
 * about 64 KiB at a time under the mutex, from the watcher's position in
 * the mirror's order; a change is queued for a watcher only once its
 * snapshot has passed the thing changed (one ahead reaches it through the
 * snapshot), so no change falls between the snapshot and the stream, and
 * the snapshot costs no queue. A change to something already sent may so
 * come before snapshot-end. A message delivered again unchanged is no
 * event. Memory: a watcher holds at most one snapshot chunk and 1 MiB of
 * queued changes (past that it is dropped), all watchers together at most
 * 64 MiB (past that the one furthest behind is dropped).
 *
 * Costs: partitions are kept per source in an interval tree, so a message
 * is O(log n) under the mutex whatever the arrival order; readiness is
 * O(log n + k) in the source's blockers (k: those overlapping the window)
 * plus the summary's size, most of it outside the mutex; listing a window
 * O(log n + k); prune O(log n) per partition expired.
 */
#ifndef PR_HTTP_MIRROR_H
#define PR_HTTP_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/client.h>

struct pr_http_mirror;
struct pr_http_watch;

/* prefix is copied. 0 or -ENOMEM. */
int pr_http_mirror_new(const char *prefix, struct pr_http_mirror **out);
/* After the client is closed (no callback runs) and every watcher is gone. */
void pr_http_mirror_free(struct pr_http_mirror *m);

/* A pr_msg_fn (pr_client_subscribe_msg); arg is the mirror. A partition
 * state with an expiry (msg->expiry_s >= 0) is forgotten when it runs out
 * (pr_http_mirror_prune). */
void pr_http_mirror_msg(void *arg, const struct pr_message *msg);
/* A pr_message_fn: the same for a message without expiry. */
void pr_http_mirror_message(void *arg, const char *topic, const char *payload, size_t len);
/* The same at time now (pr_time_now()'s scale), its expiry expiry_s (-1:
 * none). */
void pr_http_mirror_message_at(struct pr_http_mirror *m, const char *topic, const char *payload,
    size_t len, int64_t expiry_s, int64_t now);

/* The retained agent status, copied. */
struct pr_http_agent {
	int known;  /* a status is retained */
	int online; /* and it says "online" */
	int lost;   /* offline by its Last Will: at is when the lost connection began */
	char at[40];
	char seen[40]; /* lost: when the mirror saw it go, "" = it found it so */
	char agent_id[256];
	char version[64];
};
void pr_http_mirror_agent(struct pr_http_mirror *m, struct pr_http_agent *out);
/* An offline agent: since when it is known offline ("" when only known to
 * have lost its connection some time after a->at). */
const char *pr_http_agent_since(const struct pr_http_agent *a);
/* "agent offline since ..." for a 503, saying a lost connection as such. */
void pr_http_agent_offline_text(const struct pr_http_agent *a, char *buf, size_t cap);

/* Copies of retained JSON: heap, caller frees; NULL when none (or -ENOMEM). */
char *pr_http_mirror_status_json(struct pr_http_mirror *m);
char *pr_http_mirror_stats_json(struct pr_http_mirror *m);
char *pr_http_mirror_summary_json(struct pr_http_mirror *m, const char *source);
/* "[<summary>,...]" of every source with a summary, by name. */
char *pr_http_mirror_summaries_json(struct pr_http_mirror *m);
/* "[<partition state>,...]" of source's retained partitions overlapping
 * want (all when want.start >= want.end), by start then provider; NULL
 * and *known = 0 when the mirror knows nothing of source. */
char *pr_http_mirror_partitions_json(
    struct pr_http_mirror *m, const char *source, struct pr_range want, int *known);

/*
 * readiness/query answered from the mirror: the result object the agent
 * would give (source, start, end, ready, gaps, blockers, ready_through,
 * seq, truncated), as JSON text in *result (heap, caller frees). Blockers
 * are the retained partition states (without epoch) in the agent's order.
 * Returns 0, or 1 when the mirror cannot answer exactly and the agent must
 * be asked: no summary of source, a truncated summary, partition states
 * that disagree with the summary (not arrived yet), or more blockers than
 * the summary lists (the agent may list fewer), and -ENOMEM.
 */
int pr_http_mirror_readiness(
    struct pr_http_mirror *m, const char *source, struct pr_range want, char **result);

/*
 * Forget what the broker forgets: partition states whose message had an
 * MQTT 5 Message Expiry Interval (partregd gives one to ready partitions,
 * --ready-expiry after they became ready, and to tombstones,
 * --tombstone-expiry) are dropped when it runs out, each told to the
 * watchers as a partition event without state. The broker drops an
 * expired retained message without a word to its subscribers. now in
 * microseconds since the epoch.
 */
void pr_http_mirror_prune(struct pr_http_mirror *m, int64_t now);

/* Per-source gauges for /metrics; *out heap (free()), n returned. */
struct pr_http_gauge {
	char source[PR_NAME_MAX + 1];
	uint64_t count[5];         /* by enum pr_pstate */
	int64_t oldest_lock_since; /* 0 = no lock */
	uint64_t seq;              /* the summary's; 0 = none */
	int has_seq;
};
size_t pr_http_mirror_gauges(struct pr_http_mirror *m, struct pr_http_gauge **out);

/* Watchers: pr_http_mirror_watch registers a watcher and queues the first
 * chunk of its snapshot (status, summaries, partitions, snapshot-end: all
 * of it for a small mirror); NULL on -ENOMEM. */
struct pr_http_watch *pr_http_mirror_watch(struct pr_http_mirror *m);
void pr_http_mirror_unwatch(struct pr_http_mirror *m, struct pr_http_watch *w);
/*
 * Copy up to max bytes of w's queued event text into buf (making the next
 * chunk of its snapshot when all before is read), waiting up to
 * timeout_ms for some once the snapshot is done. Returns the count (> 0),
 * 0 on timeout, -1 when the stream must end (the mirror is shutting down,
 * or w fell too far behind and was dropped: the client reconnects and gets
 * a fresh snapshot).
 */
long pr_http_watch_read(
    struct pr_http_mirror *m, struct pr_http_watch *w, char *buf, size_t max, int timeout_ms);
/* Number of watchers (the SSE clients gauge). */
size_t pr_http_mirror_nwatchers(struct pr_http_mirror *m);
/* Wake every watcher for good: their reads return -1 from now on. */
void pr_http_mirror_shutdown(struct pr_http_mirror *m);

#endif
