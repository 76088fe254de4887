/* SPDX-License-Identifier: MIT */
/*
 * An etcd v3 client over etcd's JSON gateway (HTTP/1.1 + JSON, the paths of
 * etcd 3.4: /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn,
 * /v3/kv/compaction, /v3/lease/grant, /v3/lease/keepalive,
 * /v3/lease/revoke, /v3/watch, /v3/maintenance/status,
 * /v3/auth/authenticate), with libcurl. This is the only module that
 * includes <curl/curl.h>; its JSON is etcd's wire format, not partreg's
 * protocol, so it is built and read here with json-c and neither library's
 * types appear below. It is the foundation of the etcd store backend
 * (issue 15); nothing else uses it yet.
 *
 * Keys and values are bytes with lengths (binary-safe); returned ones are
 * heap copies with a NUL after the last byte, for convenience.
 *
 * Endpoints: a call tries the endpoint in use, and on a connection error or
 * an "unavailable" / no-leader answer the next one, round the list once,
 * within one deadline (request_timeout_ms for the whole call, connect
 * included), so no call ever takes longer than that (plus one
 * authentication when a token must be fetched). The endpoint that answered
 * stays in use. Every request carries etcd's "hasleader" requirement, so a
 * member without a leader (in a minority) refuses at once instead of
 * waiting for its own 7 s timeout.
 *
 * Writes are not sent twice: a write whose answer was lost (timeout, or the
 * connection dropped after sending) returns PR__ETCD_EINDOUBT, because
 * etcd may have applied it; the caller re-reads (a txn whose compares name
 * the revisions it read can be retried safely after that). Reads, and
 * writes that provably never reached a member, go to the next endpoint.
 *
 * Threads: a struct pr_etcd is used by one thread at a time (it owns one
 * curl handle and its connections; the token and endpoint in use are not
 * locked). A watch runs on a thread of its own with its own curl handle
 * and copies of the handle's settings, so it may outlive calls on the
 * handle; it must be closed before the handle.
 */
#ifndef PR_ETCD_H
#define PR_ETCD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Errors, besides -ENOMEM, -EINVAL (bad arguments) and -ETIMEDOUT (no
 * answer within the deadline to a read, or no endpoint connected in time:
 * nothing was changed). Internal to the agent: the etcd store backend
 * translates them (the unavailable ones to PR_ESTORE, 503
 * store_unavailable); pr__etcd_strerror() describes them and any other
 * code.
 */
enum pr__etcd_err {
	PR__ETCD_ERRBASE = -30800,
	PR__ETCD_EUNAVAIL = PR__ETCD_ERRBASE, /* no endpoint could be reached (refused, reset
	                                         before sending, TLS handshake, 5xx) */
	PR__ETCD_ENOLEADER,                   /* the members reached have no leader (in a
	                                         minority, or electing): retry later */
	PR__ETCD_EINDOUBT,                    /* a write's answer was lost: it may or may not
	                                         have been applied; re-read */
	PR__ETCD_ECOMPACTED,                  /* the revision asked for was compacted: resync */
	PR__ETCD_EFUTUREREV,                  /* the revision asked for is in the future */
	PR__ETCD_ENOLEASE,                    /* no such lease (expired or revoked) */
	PR__ETCD_EAUTH,                       /* authentication failed or permission denied */
	PR__ETCD_ENOSPACE,                    /* etcd's space quota is exceeded (NOSPACE alarm) */
	PR__ETCD_EREFUSED,                    /* etcd refused the request as invalid (empty key,
	                                         duplicate key in a txn, too many ops, too large) */
	PR__ETCD_EPROTO,                      /* an answer that is not what the gateway sends */
	PR__ETCD_ERRLAST = PR__ETCD_EPROTO,
};

/* A description of err: the codes above, else pr_strerror(err). Static. */
const char *pr__etcd_strerror(int err);

struct pr_etcd;

struct pr_etcd_opts {
	/* "http://h1:2379,https://h2:2379": one or more URLs separated by
	 * commas (the --etcd flag's form), at most 16. Copied. */
	const char *endpoints;
	/* TLS, for https endpoints; NULL = none (the system CAs, no client
	 * certificate). PEM file names, copied. */
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	/* NULL user = no authentication. Otherwise /v3/auth/authenticate
	 * gives a token sent with every request, fetched again when etcd
	 * says it is invalid (expired). Copied; the password is kept in
	 * memory for that. */
	const char *user;
	const char *password;
	unsigned connect_timeout_ms; /* per connection attempt; 0 = 500 */
	unsigned request_timeout_ms; /* per call, all endpoints included; 0 = 2000 */
};

/*
 * Open a handle. Connects lazily: no request is made here, so an
 * unreachable cluster is found by the first call. Errors: -EINVAL for no
 * or a malformed endpoint list (each URL must start with http:// or
 * https://), -ENOMEM. *out: caller owns; close with pr__etcd_close().
 */
int pr__etcd_open(const struct pr_etcd_opts *opts, struct pr_etcd **out);
/* Close; NULL is fine. Every watch of e must be closed first. */
void pr__etcd_close(struct pr_etcd *e);
/* The URL of the endpoint in use (the last that answered). Borrowed: valid
 * until the handle is closed. */
const char *pr__etcd_endpoint(const struct pr_etcd *e);

/* A key-value as etcd returns it. key and value: heap, NUL after the last
 * byte; owned by the result they are part of. */
struct pr_etcd_kv {
	uint8_t *key;
	size_t key_len;
	uint8_t *value; /* "" when keys_only, count_only or deleted */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease; /* 0 = none */
};

/*
 * The range_end that makes [key, range_end) every key with prefix key:
 * key with its last byte below 0xff incremented and what follows dropped.
 * When every byte is 0xff (or key_len is 0) it is the single byte "\0",
 * which etcd reads as "every key >= key". out: at least key_len bytes (1
 * when key_len is 0); *out_len gets the length. Pure.
 */
void pr__etcd_prefix_end(const void *key, size_t key_len, uint8_t *out, size_t *out_len);

/* One operation: on its own (pr__etcd_do) or in a txn. Pointers are
 * borrowed for the call. */
enum pr_etcd_op_type {
	PR_ETCD_RANGE,
	PR_ETCD_PUT,
	PR_ETCD_DELETE,
};

struct pr_etcd_op {
	enum pr_etcd_op_type type;
	const void *key; /* at least one byte */
	size_t key_len;
	/* RANGE and DELETE: [key, range_end); NULL = the key alone.
	 * pr__etcd_prefix_end() gives a prefix's. */
	const void *range_end;
	size_t range_end_len;
	/* PUT */
	const void *value;
	size_t value_len;
	int64_t lease; /* 0 = none */
	/* PUT and DELETE: return the previous key-values in kvs. */
	int prev_kv;
	/* RANGE */
	int64_t revision; /* 0 = latest */
	int64_t limit;    /* 0 = no limit */
	int keys_only;
	int count_only;
};

/* The answer to one operation. Caller owns; release with
 * pr__etcd_res_release(). */
struct pr_etcd_res {
	enum pr_etcd_op_type type;
	int64_t revision;       /* the store's revision after the call (header) */
	struct pr_etcd_kv *kvs; /* RANGE: the key-values in key order; PUT/DELETE
	                           with prev_kv: the previous ones */
	size_t n_kvs;
	int64_t count; /* RANGE: keys in the range (before limit); DELETE: deleted */
	int more;      /* RANGE: limit cut the answer short */
};
void pr__etcd_res_release(struct pr_etcd_res *res);

/*
 * Run one range, put or delete range. Errors: those of the introduction;
 * PR__ETCD_ECOMPACTED / PR__ETCD_EFUTUREREV for a range at such a
 * revision; PR__ETCD_ENOLEASE for a put with an unknown lease. On error
 * *res is empty (released).
 */
int pr__etcd_do(struct pr_etcd *e, const struct pr_etcd_op *op, struct pr_etcd_res *res);

/* A compare of a txn: the target of each key in [key, range_end) compared
 * with number or value; etcd's enums, same order. */
enum pr_etcd_target {
	PR_ETCD_VERSION,
	PR_ETCD_CREATE,
	PR_ETCD_MOD,
	PR_ETCD_VALUE,
	PR_ETCD_LEASE,
};
enum pr_etcd_cmp_result {
	PR_ETCD_EQUAL,
	PR_ETCD_GREATER,
	PR_ETCD_LESS,
	PR_ETCD_NOT_EQUAL,
};
struct pr_etcd_cmp {
	const void *key;
	size_t key_len;
	const void *range_end; /* NULL = the key alone */
	size_t range_end_len;
	enum pr_etcd_target target;
	enum pr_etcd_cmp_result result;
	int64_t number;    /* VERSION, CREATE, MOD, LEASE: a missing key has 0 */
	const void *value; /* VALUE */
	size_t value_len;
};

/* A transaction: if every compare holds, the success ops, else the
 * failure ops, atomically at one revision. Arrays borrowed for the call. */
struct pr_etcd_txn {
	const struct pr_etcd_cmp *cmp;
	size_t n_cmp;
	const struct pr_etcd_op *success;
	size_t n_success;
	const struct pr_etcd_op *failure;
	size_t n_failure;
};

struct pr_etcd_txn_res {
	int succeeded;           /* the compares held: res answers success */
	int64_t revision;        /* the store's revision after the txn */
	struct pr_etcd_res *res; /* one per op of the branch taken, in order */
	size_t n_res;
};
void pr__etcd_txn_res_release(struct pr_etcd_txn_res *res);

/*
 * Run txn. A txn whose compares failed is success (0) with succeeded 0.
 * Errors: those of pr__etcd_do, PR__ETCD_EREFUSED for a txn etcd refuses
 * (the same key put twice, more ops than --max-txn-ops). On error *res is
 * empty. Caller owns *res.
 */
int pr__etcd_txn(struct pr_etcd *e, const struct pr_etcd_txn *txn, struct pr_etcd_txn_res *res);

/* Compact the key-value history up to revision (for tests and operators). */
int pr__etcd_compact(struct pr_etcd *e, int64_t revision);

/* Leases. grant: a lease of ttl_s seconds (etcd may raise it to its
 * minimum), *id its id, *granted (may be NULL) the TTL granted.
 * keepalive: renew id; *ttl gets the TTL now left, 0 when the lease has
 * expired or never existed (not an error). revoke: end id and delete its
 * keys; PR__ETCD_ENOLEASE if it does not exist. */
int pr__etcd_lease_grant(struct pr_etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted);
int pr__etcd_lease_keepalive(struct pr_etcd *e, int64_t id, int64_t *ttl);
int pr__etcd_lease_revoke(struct pr_etcd *e, int64_t id);

/* One member's status (for tests and health checks). */
struct pr_etcd_status {
	uint64_t member_id; /* the member that answered */
	uint64_t leader;    /* its leader's member id; 0 = none */
	uint64_t raft_index;
	uint64_t raft_term;
	int64_t revision;
	char version[32]; /* "3.4.23" */
};
/* The status of the member at endpoint (a URL; NULL = the endpoint in use,
 * failing over as any call). With an explicit endpoint only that one is
 * asked: PR__ETCD_EUNAVAIL when it does not answer. */
int pr__etcd_status(struct pr_etcd *e, const char *endpoint, struct pr_etcd_status *out);

/* ---- Watches ---- */

enum pr_etcd_event_type {
	PR_ETCD_EV_PUT,       /* kv was created or changed at revision */
	PR_ETCD_EV_DELETE,    /* kv->key was deleted at revision */
	PR_ETCD_EV_PROGRESS,  /* no change in the range up to revision (a
	                         progress notification) */
	PR_ETCD_EV_COMPACTED, /* final: start_revision was compacted;
	                         revision = the compaction revision. Read
	                         everything again and watch from there. */
	PR_ETCD_EV_LOST,      /* final: the stream ended (err says why:
	                         PR__ETCD_EUNAVAIL, PR__ETCD_ENOLEADER, ...).
	                         Watch again from the last revision seen + 1. */
};

struct pr_etcd_event {
	enum pr_etcd_event_type type;
	int64_t revision;
	const struct pr_etcd_kv *kv;      /* PUT, DELETE (key only) */
	const struct pr_etcd_kv *prev_kv; /* PUT, DELETE with prev_kv when it
	                                     still existed; else NULL */
	int err;                          /* LOST */
	int last;                         /* PUT, DELETE: the last event of its
	                                     watch response; etcd never splits a
	                                     revision across responses, so every
	                                     revision up to this one is whole */
};

/* Called on the watch's thread, one event at a time in revision order.
 * ev and what it points to are borrowed for the call. It may not close
 * its own watch; it may do anything else (a call on a struct pr_etcd that
 * no other thread uses at the time). */
typedef void (*pr_etcd_watch_fn)(void *arg, const struct pr_etcd_event *ev);

struct pr_etcd_watch_opts {
	const void *key; /* borrowed for the call */
	size_t key_len;
	const void *range_end; /* NULL = the key alone */
	size_t range_end_len;
	int64_t start_revision; /* 0 = from now on */
	int prev_kv;
	int progress_notify; /* ask for PROGRESS events (etcd's interval,
	                        --experimental-watch-progress-notify-interval,
	                        10 min by default) */
};

struct pr_etcd_watch;

/*
 * Start a watch with e's endpoints, TLS and token (copied; e is not used
 * after the call returns). Returns once etcd has created the watch, so
 * every change after start_revision (or after this call, when 0) is
 * delivered, to cb on the watch's thread, until close or one final event
 * (COMPACTED or LOST), after which cb is never called again. Errors: those
 * of a call (tried on each endpoint, within request_timeout_ms), -EAGAIN
 * when the thread cannot be started. *out: caller owns; close with
 * pr__etcd_watch_close().
 */
int pr__etcd_watch_open(struct pr_etcd *e, const struct pr_etcd_watch_opts *opts,
    pr_etcd_watch_fn cb, void *arg, struct pr_etcd_watch **out);
/* Stop and free, from any thread but the watch's own; when it returns, cb
 * runs no more. NULL is fine. */
void pr__etcd_watch_close(struct pr_etcd_watch *w);

/* ---- Pure parts, exposed for the unit tests ---- */

/* Base64 (standard alphabet, padded) of len bytes: a heap NUL-terminated
 * string in *out, caller frees. -ENOMEM. */
int pr__etcd_b64_encode(const void *data, size_t len, char **out);
/* Decode: heap bytes with a NUL after them in *out (caller frees), *out_len
 * their count. PR__ETCD_EPROTO when s is not padded base64. -ENOMEM. */
int pr__etcd_b64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

/* The gateway's JSON body of an op (as a request on its own) and of a txn:
 * a heap NUL-terminated string in *json, caller frees. -EINVAL for an op
 * without a key or an unknown enum, -ENOMEM. */
int pr__etcd_op_json(const struct pr_etcd_op *op, char **json);
int pr__etcd_txn_json(const struct pr_etcd_txn *txn, char **json);
/* Parse a 200 answer of /v3/kv/range, put, deleterange (type says which)
 * and /v3/kv/txn. PR__ETCD_EPROTO when it is not such an answer. */
int pr__etcd_res_parse(
    enum pr_etcd_op_type type, const char *body, size_t len, struct pr_etcd_res *res);
int pr__etcd_txn_res_parse(const char *body, size_t len, struct pr_etcd_txn_res *res);

/*
 * The error of an answer other than 200: the gateway's body
 * ({"error": "etcdserver: ...", "code": <gRPC code>}) mapped to the codes
 * above; write says whether the request may have changed the store (a
 * timeout inside etcd is then PR__ETCD_EINDOUBT, else -ETIMEDOUT). An
 * expired or invalid token is PR__ETCD_EAUTH with *token_expired (may be
 * NULL) set, so the caller authenticates again.
 */
int pr__etcd_error(int http_status, const char *body, size_t len, int write, int *token_expired);

/*
 * The watch stream's parser: feed it the bytes of the answer to /v3/watch
 * in chunks of any size; every complete {"result": ...} object is turned
 * into events for cb (PUT, DELETE, PROGRESS, COMPACTED; LOST for a
 * cancellation or an {"error": ...} object). *created is set when the
 * watch's creation was seen. feed returns 0 while the stream may go on,
 * 1 after a final event (nothing more is read), PR__ETCD_EPROTO for bytes
 * that are not such a stream, -ENOMEM.
 */
struct pr_etcd_wparse;
int pr__etcd_wparse_new(pr_etcd_watch_fn cb, void *arg, struct pr_etcd_wparse **out);
int pr__etcd_wparse_feed(struct pr_etcd_wparse *p, const char *buf, size_t len, int *created);
void pr__etcd_wparse_free(struct pr_etcd_wparse *p);

#endif
