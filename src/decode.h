/* SPDX-License-Identifier: MIT */
/*
 * The command decoder: a command payload in, a struct pr_cmd out, or a
 * refusal with a message a person can act on.
 *
 * Decoding is strict: the payload must be one JSON object as json_strict.h
 * reads it, every field has exactly its type (integers are JSON integers in
 * range, never "12" or 1.5), unknown fields are refused (they are almost
 * always a typo such as "strat"), and required fields must be there.
 */
#ifndef PR_DECODE_H
#define PR_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/interval.h>

#include "json_strict.h"
#include "model.h"

#define PR_TOPIC_MAX       512 /* bytes of a reply_to topic */
#define PR_LIST_LIMIT_MAX  1000
#define PR_CMD_PAYLOAD_MAX 65536   /* bytes of a command payload; more: payload_too_large */
#define PR_TTL_S_MAX       2592000 /* ttl_s: 1 s .. 30 days */
#define PR_GRACE_S_MAX     86400   /* session/abort grace_s: 1 s .. 1 day */
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
	PR_CMD_SESSION_ABORT,       /* {session, reason?, grace_s?} */
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
	int has_grace_s; /* session/abort: wait this long for a sign of life */
	int64_t grace_s;
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

#endif
