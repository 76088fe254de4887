/* SPDX-License-Identifier: MIT */
/*
 * Errors: 0 is success, every failure is negative, as in LMDB and libuv.
 * Every function of libpartreg returns one of these or -errno, and every
 * refused command's reply names one by its stable code ("unknown_source").
 */
#ifndef PARTREG_ERROR_H
#define PARTREG_ERROR_H

#include <partreg/export.h>

/*
 * Errors. 0 is success; every error is negative. Values in
 * [PR_ERRBASE, PR_ERRLAST] are partreg's own; any other negative value is
 * -errno. pr_strerror() below describes both.
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
	PR_EMAPFULL,           /* 507 store_full: map or disk full */
	PR_ESTORE,             /* 503 store_unavailable */
	PR_EINTERNAL,          /* 500 internal */
	PR_ELEASE,             /* 409 lease_expired: the lock's lease ran out */
	PR_EINDOUBT,           /* 503 store_unavailable, details {"in_doubt": true}: the
	                        * store's answer was lost; it may or may not have applied */
	PR_ERRLAST = PR_EINDOUBT,
};

/* A description of any error, partreg's own or -errno ("unknown source",
 * "Connection timed out"). Static storage; any thread. */
PR_API const char *pr_strerror(int err);

/* The stable protocol code of err, as replies carry it ("unknown_source");
 * "internal" for -errno and unknown values. Static storage. */
PR_API const char *pr_err_code(int err);

/* The HTTP-like status of err, as replies carry it: 200 for 0, 400, 401,
 * 403, 404, 409, 413, 422, 503; 500 for -errno and unknown values. */
PR_API int pr_err_status(int err);

#endif
