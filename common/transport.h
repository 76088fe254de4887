/* SPDX-License-Identifier: MIT */
/*
 * The MQTT transport: one Paho MQTTAsync client with automatic reconnect,
 * TCP_NODELAY, and publish flow control. The only module that includes
 * <MQTTAsync.h>.
 *
 * Threads: Paho runs one receive thread (all callbacks below run on it) and
 * one send thread, shared by every client of the process. Paho sends the
 * PUBACK of a QoS 1 message as soon as on_message returns, and the same
 * thread drives keepalive and completes publishes: on_message may hold a
 * message back only through pr__transport_park.
 *
 * Flow control: Paho 1.3.12's send thread sleeps one second whenever the
 * broker's in-flight window (Receive Maximum; mosquitto's default 20) is
 * full, which caps QoS 1 publishing at ~48 msg/s on a default broker. So
 * pr__transport_publish keeps its own count of publishes not yet completed
 * (acknowledged for QoS 1, written for QoS 0) below both the broker's
 * Receive Maximum and Paho's buffer, and queues the rest in its outbox.
 *
 * Session: with clean_start == 0 the broker keeps the subscriptions and
 * queues QoS 1 messages while the client is away (for session_expiry
 * seconds). Subscriptions are made again on every connect anyway.
 */
#ifndef PR_TRANSPORT_H
#define PR_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/log.h>

struct pr_transport;

/* An inbound message. Owned by whoever holds it; free with pr__msg_free. */
struct pr_msg {
	struct pr_msg *next; /* free for the owner's queues */
	char *topic;         /* NUL-terminated */
	char *payload;       /* payload_len bytes plus a NUL (not part of the payload) */
	size_t payload_len;
	int too_big;          /* payload exceeded max_payload: payload is NULL */
	size_t original_len;  /* the payload's length on the wire */
	char *response_topic; /* MQTT 5 Response Topic, NUL-terminated, or NULL */
	char *correlation;    /* MQTT 5 Correlation Data, or NULL */
	size_t correlation_len;
	int64_t received_at; /* pr_time_now() at arrival */
	int retained;        /* the retain flag: a retained message, sent for a new subscription */
	int64_t expiry_s;    /* MQTT 5 Message Expiry Interval: seconds left; -1 = none */
};

void pr__msg_free(struct pr_msg *m);

struct pr_transport_opts {
	const char *uri; /* mqtt://host:port, mqtts://host:port, tcp://, ssl:// */
	const char *client_id;
	const char *username; /* NULL = none */
	const char *password; /* NULL = none */
	const char *cafile;   /* TLS: CA bundle; NULL = system default */
	const char *certfile; /* TLS client certificate; NULL = none */
	const char *keyfile;
	int mqtt_version;          /* 5 (default when 0) or 4 (MQTT 3.1.1) */
	int keepalive_s;           /* 0 = 30 */
	int clean_start;           /* 1 = new session each connect */
	uint32_t session_expiry_s; /* MQTT 5, when clean_start == 0 */
	size_t max_payload;        /* larger inbound payloads arrive with too_big set */
	int max_inflight;          /* our own cap on unfinished publishes; 0 = 256 */
	int receive_max;   /* MQTT 5 Receive Maximum announced to the broker (1..65535); 0 = none */
	size_t max_outbox; /* bytes of publishes queued beyond the window; 0 = 32 MiB */

	/* Last Will: retained when will_retained; NULL topic = none. */
	const char *will_topic;
	const char *will_payload;
	int will_retained;
	uint32_t will_delay_s;

	/* Topic filters subscribed at QoS 1 on every connect. */
	const char *const *subscriptions;
	int nsubscriptions;
	/* One of them subscribed with MQTT 5 Retain Handling 2: the broker
	 * sends no retained messages for it (on 3.1.1 they still come, with
	 * the retain flag); NULL = none. */
	const char *no_retained;

	/* TCP_NODELAY after each connect (Paho never sets it; a round trip
	 * takes 88 ms with Nagle): 0 = on this client's own connection only
	 * (its peer is the broker's address), 1 = on every TCP socket of the
	 * process (nodelay.h; the daemon's choice). */
	int nodelay_all;

	/* Diagnostics (connect failures, losses, refused subscriptions), on
	 * Paho's threads; NULL = silent. */
	pr_log_fn log;
	void *log_arg;

	/* Callbacks, on Paho's receive thread. on_message takes ownership of m. */
	void (*on_message)(void *arg, struct pr_msg *m);
	void (*on_connected)(void *arg); /* after every (re)connect and subscribe */
	void (*on_lost)(void *arg);
	/* MQTT 5: the broker said another client took over our session (same
	 * client id). The transport does not reconnect after it. */
	void (*on_taken_over)(void *arg);
	void *arg;
};

/* Optional publish properties (MQTT 5; ignored on 3.1.1). */
struct pr_pubprops {
	const char *correlation; /* Correlation Data, correlation_len bytes */
	size_t correlation_len;
	const char *response_topic;
	uint32_t message_expiry_s; /* 0 = none */
};

/*
 * Create the client and start connecting (it keeps retrying until
 * pr__transport_close). opts is copied. Returns 0, PR_EFIELD for a bad URI or
 * option, or PR_EINTERNAL if Paho refuses.
 */
int pr__transport_open(const struct pr_transport_opts *opts, struct pr_transport **out);

/* Wait until connected and subscribed, up to timeout_ms. 0 or -ETIMEDOUT.
 * pr__transport_is_connected is true as soon as the connection is up. */
int pr__transport_wait_connected(struct pr_transport *t, int timeout_ms);
int pr__transport_is_connected(struct pr_transport *t);

/*
 * Publish. Straight to Paho while the in-flight window has room; beyond it
 * (or while the receive thread is parked), copied into the outbox, which
 * completions empty in order. Blocks only while the outbox is full (at
 * most timeout_ms, then -ETIMEDOUT). -ENOTCONN when not connected: the
 * message is dropped, as is what the outbox holds when the connection goes.
 * Publishes go out in the order of the calls, except that a large retained
 * message replaces a queued one of the same topic, in its place. Safe from
 * any thread. props may be NULL.
 */
int pr__transport_publish(struct pr_transport *t, const char *topic, const void *payload,
    size_t len, int qos, int retained, const struct pr_pubprops *props, int timeout_ms);

/*
 * Subscribe to filter at QoS 1 now and on every reconnect; wait up to
 * timeout_ms for the broker's answer. Returns 0, -ENOTCONN (not connected:
 * the filter is still remembered for the next connect), -ETIMEDOUT,
 * PR_EFORBIDDEN (the broker refused it). Not from a callback.
 */
int pr__transport_subscribe(struct pr_transport *t, const char *filter, int timeout_ms);

/*
 * Forget filter (one entry of it: it may have been subscribed more than
 * once) and unsubscribe from the broker, without waiting for the answer.
 * Returns 0 or PR_ENOTFOUND. Not from a callback.
 */
int pr__transport_unsubscribe(struct pr_transport *t, const char *filter);

/*
 * Flow control, from on_message only: hold the message back (Paho reads and
 * acknowledges nothing more meanwhile, so the broker keeps the rest) until
 * pr__transport_unpark. Paho holds its one lock while on_message runs, and
 * every publish needs it: while parked, this thread makes the publishes
 * other threads ask for. Returns PR_PARK_RECHECK after an unpark, or
 * PR_PARK_ADMIT when holding on would deadlock (a publisher waits for the
 * broker's acknowledgements, which only this thread reads) or the
 * connection is down or closing: then take the message anyway.
 */
enum { PR_PARK_RECHECK, PR_PARK_ADMIT };
int pr__transport_park(struct pr_transport *t);
/* Wake a parked on_message (there is room now). Any thread. */
void pr__transport_unpark(struct pr_transport *t);

/* Wait until every publish so far has completed, up to timeout_ms. */
int pr__transport_flush(struct pr_transport *t, int timeout_ms);

/* Disconnect cleanly (no Last Will is sent) and free; NULL is fine. */
void pr__transport_close(struct pr_transport *t);

#endif
