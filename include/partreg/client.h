/* SPDX-License-Identifier: MIT */
/*
 * libpartreg: the C client of a partreg agent.
 *
 * A client holds one MQTT connection (the same URL, TLS and credential
 * options as partregd). It sends commands and waits for their replies,
 * resending with the same request_id until one comes (the agent answers a
 * repeated request_id with its first reply, so a resend never applies a
 * command twice), and it follows retained summaries, from which
 * pr_summary_readiness decides readiness locally with the agent's own
 * interval code (<partreg/interval.h>).
 *
 * Threads: the client's callbacks run on the MQTT library's receive thread;
 * they must return quickly and must not call pr_client_request,
 * pr_client_subscribe or pr_client_unsubscribe. Every function may be
 * called from any other thread.
 *
 * The host process is left alone: the library writes nothing to stdout or
 * stderr (diagnostics go to opts.log, when set), installs no signal
 * handler, and sets TCP_NODELAY only on its own broker connection.
 *
 * Errors: 0 or a negative value, as in <partreg/error.h>: -ETIMEDOUT,
 * -ENOTCONN (broker unreachable), -ENOMEM, PR_EFIELD (bad option or
 * argument), PR_EJSON (a body or message that is not a JSON object),
 * PR_EINTERNAL; pr_strerror describes each.
 *
 * Link with pkg-config's "partreg" or CMake's partreg::partreg.
 */
#ifndef PARTREG_CLIENT_H
#define PARTREG_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/error.h>
#include <partreg/export.h>
#include <partreg/interval.h>
#include <partreg/log.h>
#include <partreg/protocol.h>
#include <partreg/time.h>
#include <partreg/topic.h>

struct pr_client;

/* Every string of the options is borrowed for pr_client_open only: the
 * client copies what it keeps. Zero-initialise and set what you need. */
struct pr_client_opts {
	const char *broker;    /* mqtt://host:port or mqtts://host:port */
	const char *prefix;    /* NULL = PR_DEFAULT_PREFIX */
	const char *client_id; /* NULL = "partreg-<random>" */
	const char *username;  /* NULL = none; replies then come on
	                          P/reply/<username>/<client id> (the shipped ACL) */
	const char *password;  /* NULL = none; copied, wiped at close */
	const char *cafile;    /* TLS, as for partregd */
	const char *certfile;
	const char *keyfile;
	int mqtt_version; /* 5 (0 = 5) or 4 (MQTT 3.1.1: replies via reply_to) */
	/* Last Will, QoS 1, not retained; NULL = none. partreg run sets a
	 * session/abort command here so a killed job releases its locks. */
	const char *will_topic;
	const char *will_payload;
	/* Diagnostics (connect failures, connection lost, refused
	 * subscriptions); NULL = the library stays silent. log_arg is passed
	 * back as is and must stay valid until pr_client_close returns. */
	pr_log_fn log;
	void *log_arg;
};

/*
 * Create a client and start connecting (it keeps reconnecting until
 * pr_client_close); opts and its strings are copied. On success *out is
 * the caller's, closed with pr_client_close; on failure *out is NULL.
 * Returns 0 (connecting may still be in progress: see
 * pr_client_wait_connected), PR_EFIELD for a bad option, -ENOMEM.
 */
PR_API int pr_client_open(const struct pr_client_opts *opts, struct pr_client **out);

/* Wait until connected and subscribed to the client's reply topic. 0 or
 * -ETIMEDOUT (the broker is unreachable or refuses the client). */
PR_API int pr_client_wait_connected(struct pr_client *c, int timeout_ms);

/* Disconnect (no Last Will is sent) and free; NULL is fine. No callback
 * runs once it returns; not from a callback. */
PR_API void pr_client_close(struct pr_client *c);

/* The topic prefix in use ("partreg/v1"); valid until pr_client_close. */
PR_API const char *pr_client_prefix(const struct pr_client *c);

/*
 * Send command (e.g. "partition/lock") with body, a JSON object as text
 * (NULL = {}; both borrowed for the call), and wait up to timeout_ms for
 * its reply. A request_id is
 * added when the body has none (a random UUID); the command is sent again
 * with the same request_id every resend_ms (0 = 2000) until a reply comes.
 * A store_unavailable reply does not end the wait (with several agents, a
 * resend may still be applied by another; with details.in_doubt, the
 * store lost its answer): the command is sent again at the next resend,
 * and that reply is returned only when no other came by timeout_ms.
 * On success *reply is the reply envelope as NUL-terminated JSON text,
 * heap, caller frees with free(); whether the command succeeded is in it
 * ("ok", "status", "error"). Returns 0 when a reply arrived, -ETIMEDOUT when
 * none did, PR_EJSON when body is not a JSON object, PR_EFIELD when its
 * request_id is not 1..PR_ID_MAX printable ASCII characters.
 */
PR_API int pr_client_request(struct pr_client *c, const char *command, const char *body,
    int timeout_ms, int resend_ms, char **reply);

/*
 * Follow the messages (retained ones first) of a topic filter under the
 * prefix (e.g. "state/orders", "events/+"), delivered to cb with the full
 * topic and payload (borrowed: valid during the call). cb runs on the
 * receive thread. filter is copied. arg is borrowed: it must stay valid
 * until pr_client_unsubscribe of the same (filter, cb, arg) or
 * pr_client_close returns, whichever comes first. Several subscriptions
 * may be active, also to one filter. Returns 0 once the broker confirmed
 * the subscription; on -ETIMEDOUT or -ENOTCONN the subscription stays
 * registered (it is made on the next connect): unsubscribe to drop it.
 */
typedef void (*pr_message_fn)(void *arg, const char *topic, const char *payload, size_t len);

PR_API int pr_client_subscribe(
    struct pr_client *c, const char *filter, pr_message_fn cb, void *arg, int timeout_ms);

/*
 * The same with what MQTT says of each message besides its topic and
 * payload: pr_client_subscribe_msg delivers a struct pr_message (borrowed:
 * valid during the call) to cb, on the receive thread, with the same rules;
 * pr_client_unsubscribe_msg stops it as pr_client_unsubscribe does.
 */
struct pr_message {
	const char *topic;
	const char *payload; /* len bytes, NUL after them */
	size_t len;
	int retained; /* sent as retained (the state when the subscription was made) */
	/* MQTT 5 Message Expiry Interval as received: the seconds the message
	 * has left on the broker, after which a new subscriber no longer gets
	 * it; -1 = none (never expires, or MQTT 3.1.1). */
	int64_t expiry_s;
};
typedef void (*pr_msg_fn)(void *arg, const struct pr_message *m);

PR_API int pr_client_subscribe_msg(
    struct pr_client *c, const char *filter, pr_msg_fn cb, void *arg, int timeout_ms);
PR_API int pr_client_unsubscribe_msg(
    struct pr_client *c, const char *filter, pr_msg_fn cb, void *arg);

/*
 * Stop a subscription made with the same filter, cb and arg. Once it
 * returns, cb is not running and is never called with arg again, so arg
 * may be freed (or go out of scope). The broker subscription ends when no
 * other subscription of the client uses the filter. Returns 0, or
 * PR_ENOTFOUND when no such subscription exists. Not from a callback.
 */
PR_API int pr_client_unsubscribe(
    struct pr_client *c, const char *filter, pr_message_fn cb, void *arg);

/* ---- summaries: readiness decided locally ---- */

/*
 * A run of blocking partitions, as the retained summary (format 2) lists it:
 * count partitions of one provider in one state whose ranges join into
 * range, so want overlaps the run exactly when it overlaps one of them.
 * since, expires_at and reason are given for a run of one only.
 */
struct pr_blocker {
	struct pr_range range;
	char provider[PR_NAME_MAX + 1];
	char state[16];     /* "pending", "locked", "failed" */
	int64_t since;      /* 0 = not given */
	int64_t expires_at; /* 0 = none */
	char reason[257];
	uint64_t count; /* partitions in the run, >= 1 */
};

/* A parsed P/state/<source> message. */
struct pr_summary {
	unsigned v; /* its format: 1 (no "v" member) or 2 */
	char source[PR_NAME_MAX + 1];
	uint64_t seq;
	uint64_t epoch;
	int truncated; /* the agent listed only part: ask it (readiness/query) */
	struct pr_range *ready;
	size_t nready;
	struct pr_blocker *blocked;
	size_t nblocked;
};

/* Parse a summary message (json[0..len), borrowed for the call; need not
 * be NUL-terminated): format 2, or format 1 (one blocker per partition,
 * each read as a run of one). Returns 0 or PR_EJSON (also for a format
 * newer than 2: the reader must be upgraded)/PR_ETIME/-ENOMEM; on success
 * *out owns its arrays until pr_summary_release, on failure it is empty. */
PR_API int pr_summary_parse(const char *json, size_t len, struct pr_summary *out);
/* Free what pr_summary_parse allocated; zeroes *s. */
PR_API void pr_summary_release(struct pr_summary *s);

/*
 * Readiness of want from a summary, by the agent's rule
 * (pr_readiness_eval). out->gaps/gaps_cap are the caller's, as for
 * pr_readiness_eval; nothing in out points into s. When s->truncated
 * the answer may be wrong: ask the agent instead.
 */
PR_API void pr_summary_readiness(
    const struct pr_summary *s, struct pr_range want, struct pr_readiness *out);

#endif
