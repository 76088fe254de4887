/* SPDX-License-Identifier: MIT */
/*
 * The wire codec: command payloads in, replies and state messages out. The
 * only module that includes json-c; its types never leave codec.c.
 *
 * Decoding is strict: a payload must be one JSON object (RFC 8259, no single
 * quotes, no NaN, valid UTF-8, no NUL inside strings, nothing after it),
 * every field has exactly its type (integers are JSON integers in range,
 * never "12" or 1.5), unknown fields are refused (they are almost always a
 * typo such as "strat"), and a duplicate key is refused.
 *
 * Encoding builds struct pr_json values (opaque, heap) and dumps them as
 * compact JSON. Every time is written in the canonical form of ptime.h.
 */
#ifndef PR_CODEC_H
#define PR_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/interval.h>
#include "model.h"

#define PR_TOKEN_MAX       128 /* bytes of an access_token field */
#define PR_TOPIC_MAX       512 /* bytes of a reply_to topic */
#define PR_LIST_LIMIT_MAX  1000
#define PR_CMD_PAYLOAD_MAX 65536   /* bytes of a command payload; more: payload_too_large */
#define PR_TTL_S_MAX       2592000 /* ttl_s: 1 s .. 30 days */
#define PR_FENCE_MAX       INT64_C(9007199254740991) /* 2^53 - 1: exact in every JSON client */
#define PR_SEQ_MAX         PR_FENCE_MAX /* since_seq: 0 .. 2^53 - 1, for the same reason */

enum pr_cmd_kind {
	PR_CMD_SOURCE_REGISTER,
	PR_CMD_SOURCE_GET,
	PR_CMD_SOURCE_LIST,
	PR_CMD_PROVIDER_REGISTER,
	PR_CMD_PARTITION_REGISTER,
	PR_CMD_PARTITION_LOCK,
	PR_CMD_PARTITION_UNLOCK,
	PR_CMD_PARTITION_FAIL,
	PR_CMD_PARTITION_LIST,
	PR_CMD_READINESS_QUERY,
	PR_CMD_AGENT_RESYNC,
	PR_CMD_PARTITION_RENEW,     /* {source, provider, start, end, fence, ttl_s?} */
	PR_CMD_PARTITION_DELETE,    /* {source, provider, start, end} */
	PR_CMD_SOURCE_ROTATE_TOKEN, /* {source} */
	PR_CMD_SESSION_ABORT,       /* {session, reason?} */
	PR_CMD_HISTORY_QUERY,       /* {source, provider?, start?, end?, since_seq?, from?, to?,
	                                limit?, cursor?} */
	PR_CMD_COUNT
};

/* "source/register" for PR_CMD_SOURCE_REGISTER; NULL if out of range. */
const char *pr__cmd_name(enum pr_cmd_kind kind);
/* Find the command named name[0..len) ("partition/lock"). Returns 0 or PR_ECOMMAND. */
int pr__cmd_lookup(const char *name, size_t len, enum pr_cmd_kind *out);
/* Does the command change the registry (and so need a token and an
 * idempotency record)? */
int pr__cmd_is_write(enum pr_cmd_kind kind);

/* A decoded command. has_* flags tell which optional fields were given. */
struct pr_cmd {
	enum pr_cmd_kind kind;
	/* common */
	int has_request_id;
	char request_id[PR_ID_MAX + 1];
	int has_access_token;
	char access_token[PR_TOKEN_MAX + 1];
	int has_reply_to; /* MQTT 3.1.1 fallback */
	char reply_to[PR_TOPIC_MAX + 1];
	int has_correlation_id;
	char correlation_id[PR_ID_MAX + 1];
	/* per command */
	char source[PR_NAME_MAX + 1];
	char owner[PR_NAME_MAX + 1];
	int has_provider; /* 1 whenever provider was given (always where required) */
	char provider[PR_NAME_MAX + 1];
	struct pr_range range; /* start, end */
	int has_ttl_s;
	int64_t ttl_s;
	int has_session;
	char session[PR_ID_MAX + 1];
	int has_fence;
	uint64_t fence;
	int has_reason;
	char reason[PR_REASON_MAX + 1];
	int has_metadata;
	char metadata[PR_METADATA_MAX + 1]; /* compact JSON object text */
	int has_limit;
	size_t limit;
	int has_cursor;
	char cursor[PR_CURSOR_MAX];
	/* history/query */
	int has_range; /* start and end were given (they go together); set for every
	                  command that carries a range, and then start < end */
	int has_since_seq;
	uint64_t since_seq;
	int has_from, has_to;
	int64_t from, to; /* event time window [from, to) */
};

/* Why a payload was refused: the error (enum pr_err) and a message naming
 * the field, e.g. "field 'start': invalid time \"2023-13-01\"". */
struct pr_decode_error {
	int err;
	char message[256];
};

/*
 * Decode payload[0..len) as command kind into *cmd. Fields are checked as
 * the protocol requires for that command (names with pr__name_check, times
 * with pr_time_parse, start < end, ids with pr__id_check, metadata a JSON
 * object of at most PR_METADATA_MAX bytes once compacted, limit 1..
 * PR_LIST_LIMIT_MAX, since_seq 0..PR_SEQ_MAX). Where start and end are
 * optional (history/query) they must come together (else PR_EFIELD naming
 * both); from < to when both are given (else PR_EINTERVAL).
 * The common fields (request_id, reply_to, correlation_id) are filled in as
 * soon as they are read and valid, also when decoding then fails, so the
 * caller can still address an error reply.
 * Errors: PR_ETOOBIG (len > PR_CMD_PAYLOAD_MAX), PR_EJSON, PR_EFIELD (wrong
 * type, out of range, unknown field), PR_EMISSING, PR_ENAME, PR_ETIME,
 * PR_EINTERVAL, PR_ECURSOR (malformed cursor), PR_ECOMMAND, PR_EINTERNAL (no
 * memory). reply_to is only checked for shape; the caller checks its prefix
 * with pr__reply_topic_check. access_token is optional here for every
 * command; the caller answers PR_EUNAUTH when a write lacks it.
 * Returns 0, or the error (also in err->err) with err->message set.
 */
int pr__cmd_decode(enum pr_cmd_kind kind, const char *payload, size_t len, struct pr_cmd *cmd,
    struct pr_decode_error *err);

/* ---- encoding ---- */

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
/* session/abort's result: {session, failed: partitions}; takes ownership of
 * partitions (an array of pr__json_partition items; NULL for []). */
struct pr_json *pr__json_session_abort(const char *session, struct pr_json *partitions);

/* The result of agent/resync: {republishing: "all"} for source NULL, else
 * {republishing: "source", source}. */
struct pr_json *pr__json_resync(const char *source);

/* The retained summary on P/state/<source>:
 * {source, owner, seq, epoch, updated_at, ready: [[s,e]...],
 *  blocked: [{start, end, provider, state, since, expires_at?, reason?}...],
 *  truncated} */
struct pr_json *pr__json_summary(const struct pr_source *s, uint64_t epoch,
    const struct pr_range *ready, size_t nready, const struct pr_partition *blocked,
    size_t nblocked, int truncated);
/* A partition's retained message: pr__json_partition plus epoch. */
struct pr_json *pr__json_partition_state(const struct pr_partition *p, uint64_t epoch);
/* An event on P/events/<source>: {seq, epoch, at, type, source, provider?,
 * start?, end?, state?, fence?, version?, reason?} */
struct pr_json *pr__json_event(const struct pr_event *ev, uint64_t epoch);
/* P/agent/status: {status: "online"|"offline", agent_id, version, epoch, at} */
struct pr_json *pr__json_agent_status(
    const char *status, const char *agent_id, uint64_t epoch, int64_t at);

/* P/agent/stats, retained, refreshed every --stats-interval seconds. */
struct pr_agent_stats {
	const char *agent_id;
	uint64_t epoch;
	int64_t at, started_at;
	uint64_t commands; /* decoded and handled, replays included */
	uint64_t refused;  /* answered with an error */
	uint64_t replayed; /* answered from an idempotency record */
	uint64_t batches;  /* commits */
	uint64_t leases_expired;
	double commit_ms_last, commit_ms_max; /* max since the last stats message */
	uint64_t queue;                       /* commands waiting now */
	uint64_t store_used_bytes, store_map_bytes;
	unsigned store_readers;
};
/* {agent_id, version, epoch, at, uptime_s, commands: {total, refused,
 *  replayed}, batches, leases_expired, commit_ms: {last, max}, queue,
 *  store: {used_bytes, map_bytes, readers}} */
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
