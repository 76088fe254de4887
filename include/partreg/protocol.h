/* SPDX-License-Identifier: MIT */
/*
 * partreg protocol v1: the constants every client and the agent share.
 *
 * The normative copy of the protocol is schemas/ and README.md; this header
 * only names what C programs need to speak it: the default topic prefix,
 * size limits, and the stable error codes of replies.
 */
#ifndef PARTREG_PROTOCOL_H
#define PARTREG_PROTOCOL_H

#define PR_PROTOCOL_VERSION 1
#define PR_VERSION_STRING   "0.1.0"

/* Default topic prefix ("P" in the protocol). */
#define PR_DEFAULT_PREFIX "partreg/v1"

/* Source and provider names: 1..PR_NAME_MAX bytes of UTF-8. */
#define PR_NAME_MAX 200
/* request_id, session, correlation_id: at most this many bytes. */
#define PR_ID_MAX 64
/* A token in UUIDv4 text form: 36 characters. */
#define PR_TOKEN_LEN 36
/* Canonical time text "YYYY-MM-DDTHH:MM:SS.ffffffZ" plus NUL. */
#define PR_TIME_BUFSZ 32

/*
 * Partition states, as they appear on the wire ("pending", "locked", ...).
 */
enum pr_pstate {
	PR_PENDING = 0,
	PR_LOCKED = 1,
	PR_READY = 2,
	PR_FAILED = 3,
	PR_DELETED = 4,
};

/*
 * Errors. 0 is success; every error is negative. Values in
 * [PR_ERRBASE, PR_ERRLAST] are partreg's own; any other negative value is
 * -errno. pr_strerror() (src/err.h) describes both; pr_err_code() gives the
 * stable protocol code string ("unknown_source") and pr_err_status() the
 * HTTP-like status carried in replies.
 */
enum pr_err {
	PR_ERRBASE = -30900,
	PR_EJSON = PR_ERRBASE, /* 400 invalid_json: not strict JSON / not an object */
	PR_EFIELD,             /* 400 invalid_field: wrong type or out of range */
	PR_EMISSING,           /* 400 missing_field */
	PR_ENAME,              /* 400 invalid_name */
	PR_ETIME,              /* 400 invalid_time */
	PR_EINTERVAL,          /* 422 invalid_interval: start >= end */
	PR_ETOOBIG,            /* 413 payload_too_large */
	PR_ECOMMAND,           /* 404 unknown_command */
	PR_EUNAUTH,            /* 401 unauthorized: no or wrong token */
	PR_EFORBIDDEN,         /* 403 forbidden: token of another source/provider */
	PR_ENOSOURCE,          /* 404 unknown_source */
	PR_ENOPROVIDER,        /* 404 unknown_provider */
	PR_ENOPARTITION,       /* 404 unknown_partition */
	PR_ESOURCE_EXISTS,     /* 409 source_exists */
	PR_EPROVIDER_EXISTS,   /* 409 provider_exists */
	PR_ELOCKED,            /* 409 already_locked */
	PR_ENOTLOCKED,         /* 409 not_locked */
	PR_ESTATE,             /* 409 invalid_state: transition not allowed */
	PR_ESTALE,             /* 409 stale_fence */
	PR_EREQID,             /* 409 request_id_conflict: id reused for another command */
	PR_ECURSOR,            /* 400 invalid_cursor */
	PR_EREPLYTOPIC,        /* 400 invalid_reply_topic (never replied) */
	PR_ENOTFOUND,          /* internal: key not found (store) */
	PR_EMAPFULL,           /* 503 store_full */
	PR_ESTORE,             /* 503 store_unavailable */
	PR_EINTERNAL,          /* 500 internal */
	PR_ELEASE,             /* 409 lease_expired: the lock's lease ran out */
	PR_ERRLAST = PR_ELEASE,
};

#endif
