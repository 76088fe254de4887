/* SPDX-License-Identifier: MIT */
/*
 * Paho MQTTAsync behind a small interface (see transport.h for the why of
 * flow control and sessions).
 *
 * State shared between Paho's threads and callers sits under t->mu:
 * connected, inflight, window, gen. gen counts connections: a completion
 * callback carries the gen of the connection its publish went out on, and a
 * lost connection bumps gen and zeroes inflight, so completions that Paho
 * reports late (or never) for a dead connection cannot skew the count.
 *
 * Connecting is the connector thread's job, first connect and every
 * reconnect alike, with a backoff from 0.5 s to 5 s: Paho does not retry a
 * first connect that fails, and its automatic reconnect fails silently, so
 * an operator would never learn why the agent is offline (a refused
 * password, a bad certificate). Every failed attempt is logged here.
 */
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include <partreg/error.h>

#include "nodelay.h"
#include <partreg/time.h>

enum conn_state {
	CONN_IDLE,       /* not connected, no attempt in progress */
	CONN_CONNECTING, /* MQTTAsync_connect called, waiting */
	CONN_UP,         /* connected */
};

struct pr_transport {
	MQTTAsync client;
	struct pr_transport_opts opts;
	char *uri;
	char **subs; /* copies of every filter subscribed; freed at close only */
	int nsubs, cap_subs;

	pthread_mutex_t mu;
	pthread_cond_t cv;     /* connection state: connector, waiters for a connect */
	pthread_cond_t pub_cv; /* the publish window: publishers and flush only */
	enum conn_state state;
	int connected; /* connected: publishing works */
	int ready;     /* connected and subscribed */
	int closing;
	int resubscribe; /* the last subscribe failed: the connector retries it */
	int retry_ms;    /* the connector's current backoff */
	int inflight;
	int window;
	int pub_waiting; /* publishers and flushes waiting for completions */
	/* Flow control (pr__transport_park): the receive thread parked in
	 * on_message, and the publishes it makes for other threads. */
	pthread_cond_t park_cv; /* the parked thread: unpark, pub_waiting, close */
	int parked, unparked;
	pthread_t parked_thread;
	int direct_sends; /* publishes calling Paho themselves now */
	/* Publishes waiting for the window (or for a parked receive thread),
	 * in order; at most outbox_max bytes. */
	struct outmsg *outbox, **outbox_tail;
	size_t outbox_bytes, outbox_max;
	int draining;   /* a thread is handing the outbox to Paho */
	int taken_over; /* another client took our session: no reconnecting */
	uintptr_t gen;
	pthread_t connector;
	int connector_started;
};

void
pr__msg_free(struct pr_msg *m)
{
	if (m == NULL) {
		return;
	}
	free(m->topic);
	free(m->payload);
	free(m->response_topic);
	free(m->correlation);
	free(m);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void
abstime_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- inbound ---- */

/* A diagnostic line to the owner's log callback, if any: the library is
 * silent unless its caller asks, the daemon passes its logger. */
static void tlog(struct pr_transport *t, enum pr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
tlog(struct pr_transport *t, enum pr_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (t->opts.log == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	t->opts.log(t->opts.log_arg, level, line);
}

static char *
copy_bytes(const void *p, size_t n)
{
	char *c = malloc(n + 1);

	if (c != NULL) {
		if (n > 0) {
			memcpy(c, p, n);
		}
		c[n] = '\0';
	}
	return c;
}

static int
on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *pm)
{
	struct pr_transport *t = ctx;
	struct pr_msg *m = calloc(1, sizeof *m);
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	size_t plen = pm->payloadlen > 0 ? (size_t)pm->payloadlen : 0;

	if (m == NULL) {
		goto out;
	}
	m->received_at = pr_time_now();
	m->retained = pm->retained;
	m->expiry_s = -1;
	m->topic = copy_bytes(topic, tlen);
	m->original_len = plen;
	if (t->opts.max_payload != 0 && plen > t->opts.max_payload) {
		m->too_big = 1;
	} else {
		m->payload = copy_bytes(pm->payload, plen);
		m->payload_len = plen;
	}
	if (t->opts.mqtt_version == MQTTVERSION_5) {
		MQTTProperty *rt
		    = MQTTProperties_getProperty(&pm->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
		MQTTProperty *cd = MQTTProperties_getProperty(
		    &pm->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
		MQTTProperty *ex = MQTTProperties_getProperty(
		    &pm->properties, MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL);

		if (rt != NULL) {
			m->response_topic
			    = copy_bytes(rt->value.data.data, (size_t)rt->value.data.len);
		}
		if (cd != NULL) {
			m->correlation
			    = copy_bytes(cd->value.data.data, (size_t)cd->value.data.len);
			m->correlation_len = (size_t)cd->value.data.len;
		}
		if (ex != NULL) {
			m->expiry_s = (int64_t)ex->value.integer4;
		}
	}
	if (m->topic == NULL || (!m->too_big && m->payload == NULL)) {
		pr__msg_free(m);
		m = NULL;
		tlog(t, PR_LOG_ERROR, "transport: out of memory; message on %.*s dropped",
		    (int)tlen, topic);
	}
out:
	MQTTAsync_freeMessage(&pm);
	MQTTAsync_free(topic);
	if (m != NULL) {
		t->opts.on_message(t->opts.arg, m);
	}
	/* 1: the message is consumed. Paho acks it now whatever we return. */
	return 1;
}

/* ---- connection ---- */

/*
 * up: the connection is up (publishing works; a persistent session's queued
 * messages may already arrive, before the SUBACK). ready: also subscribed.
 */
/* The outbox (publish, below). */
static void drain(struct pr_transport *t);
static void drop_outbox(struct pr_transport *t);

static void
set_connected(struct pr_transport *t, int up, int ready)
{
	pthread_mutex_lock(&t->mu);
	if (t->connected && !up) {
		t->gen++;
		t->inflight = 0;
	}
	t->connected = up;
	t->ready = ready;
	pthread_cond_broadcast(&t->cv);
	pthread_cond_broadcast(&t->pub_cv);
	pthread_mutex_unlock(&t->mu);
}

static void
subscribed(struct pr_transport *t)
{
	set_connected(t, 1, 1);
	if (t->opts.on_connected != NULL) {
		t->opts.on_connected(t->opts.arg);
	}
}

static void
retry_subscribe(struct pr_transport *t)
{
	pthread_mutex_lock(&t->mu);
	t->resubscribe = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/*
 * One subscribe request in flight: all filters after a connect (all = 1),
 * or one filter added by pr__transport_subscribe, whose caller waits for
 * done. Freed by whichever of callback and waiter comes last (refs).
 */
struct subctx {
	struct pr_transport *t;
	char **filters; /* copies, owned (unsubscribe may free the originals) */
	int n;
	int all;
	int refs;
	int done; /* 1 granted, -1 refused or failed */
};

static void
subctx_put(struct subctx *sc)
{
	struct pr_transport *t = sc->t;
	int last;

	pthread_mutex_lock(&t->mu);
	last = --sc->refs == 0;
	pthread_mutex_unlock(&t->mu);
	if (last) {
		for (int i = 0; i < sc->n; i++) {
			free(sc->filters[i]);
		}
		free(sc->filters);
		free(sc);
	}
}

static void
subscribe_done(struct subctx *sc, int ok)
{
	struct pr_transport *t = sc->t;

	if (sc->all) {
		if (ok) {
			subscribed(t);
		} else {
			retry_subscribe(t);
		}
	} else {
		pthread_mutex_lock(&t->mu);
		sc->done = ok ? 1 : -1;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
	}
	subctx_put(sc);
}

static void
on_sub_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	struct subctx *sc = ctx;
	int ok = 1;

	/* Paho fills alt.sub only for several subscriptions; one subscription's
	 * code is r->reasonCode (alt.sub is then not initialised). */
	for (int i = 0; i < sc->n; i++) {
		int code = sc->n == 1 ? (int)r->reasonCode : (int)r->alt.sub.reasonCodes[i];

		if (code >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
			tlog(sc->t, PR_LOG_ERROR,
			    "transport: subscription to %s refused (reason %d)", sc->filters[i],
			    code);
			ok = sc->all; /* after a connect, go on with the others */
		}
	}
	subscribe_done(sc, ok);
}

static void
on_sub_ok(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	subscribe_done(ctx, 1);
}

static void
on_sub_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	struct pr_transport *t = ((struct subctx *)ctx)->t;

	tlog(t, PR_LOG_ERROR, "transport: subscribe failed (code %d)", r->code);
	subscribe_done(ctx, 0);
}

static void
on_sub_fail(void *ctx, MQTTAsync_failureData *r)
{
	struct pr_transport *t = ((struct subctx *)ctx)->t;

	tlog(t, PR_LOG_ERROR, "transport: subscribe failed (code %d)", r->code);
	subscribe_done(ctx, 0);
}

/* Start subscribing to filters[0..n) (QoS 1); sc takes filters. */
static int
start_subscribe(struct pr_transport *t, struct subctx *sc)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTSubscribe_options *so = calloc((size_t)sc->n, sizeof *so);
	int *qos = calloc((size_t)sc->n, sizeof *qos);
	int rc;

	if (qos == NULL || so == NULL) {
		free(qos);
		free(so);
		return -ENOMEM;
	}
	for (int i = 0; i < sc->n; i++) {
		qos[i] = 1;
		so[i] = (MQTTSubscribe_options)MQTTSubscribe_options_initializer;
		/* 2: the broker never sends retained messages for it. */
		so[i].retainHandling = t->opts.no_retained != NULL
		        && strcmp(sc->filters[i], t->opts.no_retained) == 0
		    ? 2
		    : 0;
	}
	ro.context = sc;
	if (t->opts.mqtt_version == MQTTVERSION_5) {
		ro.onSuccess5 = on_sub_ok5;
		ro.onFailure5 = on_sub_fail5;
		/* Paho reads the list for several filters, the single one for one. */
		ro.subscribeOptions = so[0];
		ro.subscribeOptionsList = so;
		ro.subscribeOptionsCount = sc->n;
	} else {
		ro.onSuccess = on_sub_ok;
		ro.onFailure = on_sub_fail;
	}
	rc = MQTTAsync_subscribeMany(t->client, sc->n, sc->filters, qos, &ro);
	free(qos);
	free(so);
	return rc == MQTTASYNC_SUCCESS ? 0 : PR_EINTERNAL;
}

static struct subctx *
subctx_new(struct pr_transport *t, const char *one, int refs)
{
	struct subctx *sc = calloc(1, sizeof *sc);
	int ok;

	if (sc == NULL) {
		return NULL;
	}
	sc->t = t;
	sc->all = one == NULL;
	sc->refs = refs;
	pthread_mutex_lock(&t->mu);
	sc->n = one == NULL ? t->nsubs : 1;
	sc->filters = calloc((size_t)sc->n + 1, sizeof *sc->filters);
	ok = sc->filters != NULL;
	for (int i = 0; ok && i < sc->n; i++) {
		ok = (sc->filters[i] = strdup(one != NULL ? one : t->subs[i])) != NULL;
	}
	pthread_mutex_unlock(&t->mu);
	if (!ok) {
		sc->refs = 1;
		subctx_put(sc);
		return NULL;
	}
	return sc;
}

/* Subscribe to every filter; on_sub_ok* then marks the transport ready. */
static void
subscribe(struct pr_transport *t)
{
	struct subctx *sc = subctx_new(t, NULL, 1);

	if (sc == NULL || start_subscribe(t, sc) != 0) {
		tlog(t, PR_LOG_ERROR, "transport: subscribe failed to start; retrying");
		if (sc != NULL) {
			subctx_put(sc);
		}
		retry_subscribe(t);
	}
}

/* Runs after every connect: Nagle off, subscribe. */
static void
on_connected_cb(void *ctx, char *cause)
{
	struct pr_transport *t = ctx;
	int n;

	(void)cause;
	pthread_mutex_lock(&t->mu);
	t->state = CONN_UP;
	t->retry_ms = 0;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);

	/* Nagle off: the daemon on every TCP socket of its process, a
	 * library client only on its own connection (nodelay.h). */
	n = t->opts.nodelay_all ? pr__nodelay_all() : pr__nodelay_peer(t->uri);
	tlog(t, PR_LOG_INFO, "transport: connected to %s (TCP_NODELAY on %d socket%s)", t->uri, n,
	    n == 1 ? "" : "s");
	pthread_mutex_lock(&t->mu);
	n = t->nsubs;
	pthread_mutex_unlock(&t->mu);
	if (n == 0) {
		subscribed(t);
		return;
	}
	set_connected(t, 1, 0);
	subscribe(t);
}

static void
on_lost(void *ctx, char *cause)
{
	struct pr_transport *t = ctx;

	tlog(t, PR_LOG_WARN, "transport: connection to %s lost%s%s; reconnecting", t->uri,
	    cause != NULL ? ": " : "", cause != NULL ? cause : "");
	set_connected(t, 0, 0);
	drop_outbox(t);
	pthread_mutex_lock(&t->mu);
	t->state = CONN_IDLE;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->opts.on_lost != NULL) {
		t->opts.on_lost(t->opts.arg);
	}
}

/* The broker sent DISCONNECT (MQTT 5): with "session taken over", another
 * client connected with this client id. Reconnecting would take it back,
 * and the two would push each other off for ever: stay down instead. */
static void
on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes code)
{
	struct pr_transport *t = ctx;

	(void)props;
	if (code != MQTTREASONCODE_SESSION_TAKEN_OVER) {
		tlog(
		    t, PR_LOG_WARN, "transport: the broker disconnected us (reason %d)", (int)code);
		return;
	}
	tlog(t, PR_LOG_ERROR,
	    "transport: another client connected to %s with our client id %s and took over the "
	    "session; not reconnecting",
	    t->uri, t->opts.client_id);
	pthread_mutex_lock(&t->mu);
	t->taken_over = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->opts.on_taken_over != NULL) {
		t->opts.on_taken_over(t->opts.arg);
	}
}

static void
update_window(struct pr_transport *t, int receive_max)
{
	int w = t->opts.max_inflight > 0 ? t->opts.max_inflight : 256;

	/* Stay one below the broker's window: a full window is what stalls Paho. */
	if (receive_max > 1 && receive_max - 1 < w) {
		w = receive_max - 1;
	}
	pthread_mutex_lock(&t->mu);
	t->window = w;
	pthread_mutex_unlock(&t->mu);
	tlog(t, PR_LOG_DEBUG, "transport: publish window %d (broker receive maximum %d)", w,
	    receive_max);
}

static void
on_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	struct pr_transport *t = ctx;
	int rm = MQTTProperties_getNumericValue(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);

	update_window(t, rm > 0 ? rm : 65535);
}

static void
on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
	(void)r;
	/* MQTT 3.1.1 has no Receive Maximum; mosquitto's default window is 20. */
	update_window(ctx, 20);
}

/* The next attempt's backoff: 0.5 s, doubling to 5 s. Under t->mu. */
static void
backoff(struct pr_transport *t)
{
	t->retry_ms = t->retry_ms == 0 ? 500 : (t->retry_ms * 2 > 5000 ? 5000 : t->retry_ms * 2);
}

static void
connect_failed(struct pr_transport *t, int code, const char *msg)
{
	int retry;

	pthread_mutex_lock(&t->mu);
	if (t->state == CONN_CONNECTING) {
		t->state = CONN_IDLE;
	}
	backoff(t);
	retry = t->retry_ms;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	tlog(t, PR_LOG_WARN, "transport: cannot connect to %s (code %d%s%s); retrying in %.1f s",
	    t->uri, code, msg != NULL ? ": " : "", msg != NULL ? msg : "", retry / 1000.0);
}

static void
on_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	connect_failed(ctx, r->code, r->message);
}

static void
on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
	connect_failed(ctx, r->code, r->message);
}

static int
start_connect(struct pr_transport *t)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTProperties cprops = MQTTProperties_initializer;
	MQTTProperties wprops = MQTTProperties_initializer;
	MQTTAsync_connectOptions *c = t->opts.mqtt_version == MQTTVERSION_5 ? &co5 : &co;
	int rc;

	c->keepAliveInterval = t->opts.keepalive_s > 0 ? t->opts.keepalive_s : 30;
	c->connectTimeout = 5;
	c->automaticReconnect = 0; /* the connector thread reconnects, and logs */
	c->context = t;
	c->username = t->opts.username;
	c->password = t->opts.password;
	if (t->opts.mqtt_version == MQTTVERSION_5) {
		MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL };

		c->cleanstart = t->opts.clean_start;
		c->onSuccess5 = on_connect_ok5;
		c->onFailure5 = on_connect_fail5;
		p.value.integer4 = t->opts.clean_start ? 0 : t->opts.session_expiry_s;
		MQTTProperties_add(&cprops, &p);
		if (t->opts.receive_max > 0) {
			MQTTProperty rm = { .identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM };

			rm.value.integer2 = t->opts.receive_max;
			MQTTProperties_add(&cprops, &rm);
		}
		c->connectProperties = &cprops;
	} else {
		c->cleansession = t->opts.clean_start;
		c->onSuccess = on_connect_ok;
		c->onFailure = on_connect_fail;
	}
	if (t->opts.will_topic != NULL) {
		will.topicName = t->opts.will_topic;
		will.message = t->opts.will_payload;
		will.retained = t->opts.will_retained;
		will.qos = 1;
		c->will = &will;
		if (t->opts.mqtt_version == MQTTVERSION_5 && t->opts.will_delay_s > 0) {
			MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_WILL_DELAY_INTERVAL };

			p.value.integer4 = t->opts.will_delay_s;
			MQTTProperties_add(&wprops, &p);
			c->willProperties = &wprops;
		}
	}
	if (strncmp(t->uri, "ssl://", 6) == 0) {
		ssl.trustStore = t->opts.cafile;
		ssl.keyStore = t->opts.certfile;
		ssl.privateKey = t->opts.keyfile;
		ssl.enableServerCertAuth = 1;
		ssl.verify = 1;
		c->ssl = &ssl;
	}
	rc = MQTTAsync_connect(t->client, c);
	MQTTProperties_free(&cprops);
	MQTTProperties_free(&wprops);
	return rc;
}

/*
 * The connector thread: (re)connects whenever the connection is down, with
 * a backoff that doubles from 0.5 s to 5 s while attempts fail, and retries
 * a failed subscribe.
 */
static void *
connector_main(void *arg)
{
	struct pr_transport *t = arg;

	pthread_mutex_lock(&t->mu);
	while (!t->closing) {
		if (t->state == CONN_IDLE && !t->taken_over) {
			struct timespec ts;
			int rc;

			if (t->retry_ms > 0) {
				/* The last attempt failed: back off first. */
				abstime_in(&ts, t->retry_ms);
				while (!t->closing && t->state == CONN_IDLE
				    && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT) { }
				if (t->closing || t->state != CONN_IDLE) {
					continue;
				}
			}
			t->state = CONN_CONNECTING;
			pthread_mutex_unlock(&t->mu);
			rc = start_connect(t);
			pthread_mutex_lock(&t->mu);
			if (rc != MQTTASYNC_SUCCESS) {
				t->state = CONN_IDLE;
				backoff(t);
				tlog(t, PR_LOG_WARN,
				    "transport: connect to %s failed to start (%d)", t->uri, rc);
			}
		} else if (t->state == CONN_UP && t->resubscribe) {
			t->resubscribe = 0;
			pthread_mutex_unlock(&t->mu);
			subscribe(t);
			pthread_mutex_lock(&t->mu);
		} else {
			pthread_cond_wait(&t->cv, &t->mu);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* ---- publish ---- */

static void
complete(struct pr_transport *t, void *ctx_gen)
{
	pthread_mutex_lock(&t->mu);
	if ((uintptr_t)ctx_gen == t->gen && t->inflight > 0) {
		t->inflight--;
		/* Only publishers wait on the window: a completion (one per
		 * publish) must not wake the connector. */
		pthread_cond_broadcast(&t->pub_cv);
	}
	pthread_mutex_unlock(&t->mu);
	drain(t); /* a slot in the window: the next queued publish */
}

/* A publish's completion context: the transport, and the connection (gen)
 * the publish went out on. */
struct pubctx {
	struct pr_transport *t;
	uintptr_t gen;
};

/* A publish waiting in the outbox, with copies of everything. */
struct outmsg {
	struct outmsg *next;
	char *topic;
	void *payload;
	size_t len;
	int qos, retained;
	struct pr_pubprops props; /* correlation and response_topic are copies */
	size_t bytes;             /* what it holds, for the outbox's limit */
};

static void
outmsg_free(struct outmsg *o)
{
	if (o != NULL) {
		free(o->topic);
		free(o->payload);
		free((char *)o->props.correlation);
		free((char *)o->props.response_topic);
		free(o);
	}
}

static struct outmsg *
outmsg_new(const char *topic, const void *payload, size_t len, int qos, int retained,
    const struct pr_pubprops *props)
{
	struct outmsg *o = calloc(1, sizeof *o);
	int ok = o != NULL;

	if (ok) {
		o->topic = strdup(topic);
		o->payload = copy_bytes(payload, len);
		o->len = len;
		o->qos = qos;
		o->retained = retained;
		ok = o->topic != NULL && o->payload != NULL;
	}
	if (ok && props != NULL) {
		o->props.message_expiry_s = props->message_expiry_s;
		if (props->correlation != NULL) {
			o->props.correlation
			    = copy_bytes(props->correlation, props->correlation_len);
			o->props.correlation_len = props->correlation_len;
			ok = o->props.correlation != NULL;
		}
		if (ok && props->response_topic != NULL) {
			ok = (o->props.response_topic = strdup(props->response_topic)) != NULL;
		}
	}
	if (!ok) {
		outmsg_free(o);
		return NULL;
	}
	o->bytes = sizeof *o + strlen(topic) + len + o->props.correlation_len
	    + (o->props.response_topic != NULL ? strlen(o->props.response_topic) : 0) + 64;
	return o;
}

static void
on_pub_ok5(void *ctx, MQTTAsync_successData5 *r)
{
	struct pubctx *pc = ctx;

	(void)r;
	complete(pc->t, (void *)pc->gen);
	free(pc);
}

static void
on_pub_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
	struct pubctx *pc = ctx;

	tlog(pc->t, PR_LOG_DEBUG, "transport: publish failed (code %d)", r->code);
	complete(pc->t, (void *)pc->gen);
	free(pc);
}

static void
on_pub_ok(void *ctx, MQTTAsync_successData *r)
{
	struct pubctx *pc = ctx;

	(void)r;
	complete(pc->t, (void *)pc->gen);
	free(pc);
}

static void
on_pub_fail(void *ctx, MQTTAsync_failureData *r)
{
	struct pubctx *pc = ctx;

	tlog(pc->t, PR_LOG_DEBUG, "transport: publish failed (code %d)", r->code);
	complete(pc->t, (void *)pc->gen);
	free(pc);
}

/* One publish, with its completion context pc (counted in inflight); Paho
 * copies everything before returning. Returns 0 or the error (pc freed,
 * the slot given back). */
static int
send_now(struct pr_transport *t, struct pubctx *pc, const char *topic, const void *payload,
    size_t len, int qos, int retained, const struct pr_pubprops *props)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTProperty pv[3];
	int rc;

	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	m.qos = qos;
	m.retained = retained;
	ro.context = pc;
	if (t->opts.mqtt_version == MQTTVERSION_5) {
		ro.onSuccess5 = on_pub_ok5;
		ro.onFailure5 = on_pub_fail5;
		/* On the stack, pointing at the caller's bytes: Paho copies the
		 * properties (MQTTProperties_copy) before MQTTAsync_sendMessage
		 * returns, so nothing is allocated here for them. */
		m.properties.array = pv;
		m.properties.max_count = (int)(sizeof pv / sizeof pv[0]);
		if (props != NULL && props->correlation != NULL) {
			pv[m.properties.count]
			    = (MQTTProperty) { .identifier = MQTTPROPERTY_CODE_CORRELATION_DATA };
			pv[m.properties.count].value.data.data = (char *)props->correlation;
			pv[m.properties.count++].value.data.len = (int)props->correlation_len;
		}
		if (props != NULL && props->response_topic != NULL) {
			pv[m.properties.count]
			    = (MQTTProperty) { .identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC };
			pv[m.properties.count].value.data.data = (char *)props->response_topic;
			pv[m.properties.count++].value.data.len
			    = (int)strlen(props->response_topic);
		}
		if (props != NULL && props->message_expiry_s != 0) {
			pv[m.properties.count] = (MQTTProperty) { .identifier
				= MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL };
			pv[m.properties.count++].value.integer4 = props->message_expiry_s;
		}
	} else {
		ro.onSuccess = on_pub_ok;
		ro.onFailure = on_pub_fail;
	}
	rc = MQTTAsync_sendMessage(t->client, topic, &m, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		complete(t, (void *)pc->gen);
		free(pc);
		return rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : PR_EINTERNAL;
	}
	return 0;
}

/* May this thread call Paho now? Not while another one is parked in
 * on_message: it holds Paho's lock. Under t->mu. */
static int
may_call_paho(const struct pr_transport *t)
{
	return !t->parked || pthread_equal(pthread_self(), t->parked_thread);
}

/*
 * Hand queued publishes to Paho, in order, while the window has room. One
 * thread at a time (draining); the others' publishes wait their turn in
 * the outbox, so the order of publishes is the order of the calls.
 */
static void
drain(struct pr_transport *t)
{
	pthread_mutex_lock(&t->mu);
	if (t->draining || !may_call_paho(t)) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	t->draining = 1;
	while (t->outbox != NULL && t->connected && t->inflight < t->window) {
		struct outmsg *o = t->outbox;
		struct pubctx *pc = malloc(sizeof *pc);
		int rc;

		if (pc == NULL) {
			break;
		}
		t->outbox = o->next;
		if (t->outbox == NULL) {
			t->outbox_tail = &t->outbox;
		}
		t->outbox_bytes -= o->bytes;
		t->inflight++;
		/* Calling Paho: a receive thread about to park must not. */
		t->direct_sends++;
		pc->t = t;
		pc->gen = t->gen;
		pthread_cond_broadcast(&t->pub_cv); /* room in the outbox */
		pthread_mutex_unlock(&t->mu);
		rc = send_now(t, pc, o->topic, o->payload, o->len, o->qos, o->retained, &o->props);
		if (rc != 0) {
			tlog(t, PR_LOG_WARN, "transport: queued publish to %s failed: %d", o->topic,
			    rc);
		}
		outmsg_free(o);
		pthread_mutex_lock(&t->mu);
		t->direct_sends--;
	}
	t->draining = 0;
	pthread_mutex_unlock(&t->mu);
}

/* Drop what the outbox holds (the connection is gone). Under no lock. */
static void
drop_outbox(struct pr_transport *t)
{
	struct outmsg *o;
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	o = t->outbox;
	t->outbox = NULL;
	t->outbox_tail = &t->outbox;
	t->outbox_bytes = 0;
	pthread_cond_broadcast(&t->pub_cv);
	pthread_mutex_unlock(&t->mu);
	while (o != NULL) {
		struct outmsg *next = o->next;

		outmsg_free(o);
		o = next;
		n++;
	}
	if (n > 0) {
		tlog(t, PR_LOG_WARN, "transport: %zu queued publish%s dropped with the connection",
		    n, n == 1 ? "" : "es");
	}
}

/*
 * A large retained message whose topic already waits in the outbox takes
 * the queued one's place: a broker keeps only the last retained message of
 * a topic, so the older one would be sent only to be replaced (a source's
 * summary, republished after every batch, would otherwise fill the outbox).
 * It goes out earlier than its call, never later: what follows it was
 * decided before it. Under t->mu; returns 1 when o was taken (freed).
 */
#define SUPERSEDE_MIN 4096

static int
supersede(struct pr_transport *t, struct outmsg *o)
{
	if (!o->retained || o->len < SUPERSEDE_MIN) {
		return 0;
	}
	for (struct outmsg *q = t->outbox; q != NULL; q = q->next) {
		if (q->retained && q->qos == o->qos && strcmp(q->topic, o->topic) == 0) {
			struct outmsg keep = *q;

			t->outbox_bytes = t->outbox_bytes - q->bytes + o->bytes;
			o->next = q->next;
			*q = *o;
			o->next = NULL;
			*o = keep;
			o->next = NULL;
			outmsg_free(o);
			return 1;
		}
	}
	return 0;
}

int
pr__transport_publish(struct pr_transport *t, const char *topic, const void *payload, size_t len,
    int qos, int retained, const struct pr_pubprops *props, int timeout_ms)
{
	struct outmsg *o;
	struct timespec ts;
	int rc;

	if (len > INT32_MAX) {
		return PR_ETOOBIG;
	}
	pthread_mutex_lock(&t->mu);
	if (!t->connected) {
		pthread_mutex_unlock(&t->mu);
		return -ENOTCONN;
	}
	if (t->outbox == NULL && t->inflight < t->window && may_call_paho(t)) {
		/* Straight to Paho. A receive thread about to park sees
		 * direct_sends and does not (it would hold Paho's lock). */
		struct pubctx *pc = malloc(sizeof *pc);

		if (pc == NULL) {
			pthread_mutex_unlock(&t->mu);
			return -ENOMEM;
		}
		t->inflight++;
		t->direct_sends++;
		pc->t = t;
		pc->gen = t->gen;
		pthread_mutex_unlock(&t->mu);
		rc = send_now(t, pc, topic, payload, len, qos, retained, props);
		pthread_mutex_lock(&t->mu);
		t->direct_sends--;
		pthread_mutex_unlock(&t->mu);
		return rc;
	}
	pthread_mutex_unlock(&t->mu);
	/* The window is full or the receive thread is parked: queue it. */
	o = outmsg_new(topic, payload, len, qos, retained, props);
	if (o == NULL) {
		return -ENOMEM;
	}
	abstime_in(&ts, timeout_ms);
	pthread_mutex_lock(&t->mu);
	if (supersede(t, o)) {
		pthread_mutex_unlock(&t->mu);
		return 0;
	}
	while (t->connected && t->outbox != NULL && t->outbox_bytes + o->bytes > t->outbox_max) {
		int timedout;

		/* Only completions make room, and they come on the receive
		 * thread: a parked one must go back to reading. */
		t->pub_waiting++;
		pthread_cond_broadcast(&t->park_cv);
		timedout = pthread_cond_timedwait(&t->pub_cv, &t->mu, &ts) == ETIMEDOUT;
		t->pub_waiting--;
		if (timedout) {
			pthread_mutex_unlock(&t->mu);
			outmsg_free(o);
			return -ETIMEDOUT;
		}
	}
	if (!t->connected) {
		pthread_mutex_unlock(&t->mu);
		outmsg_free(o);
		return -ENOTCONN;
	}
	*t->outbox_tail = o;
	t->outbox_tail = &o->next;
	t->outbox_bytes += o->bytes;
	pthread_mutex_unlock(&t->mu);
	drain(t);
	return 0;
}

int
pr__transport_park(struct pr_transport *t)
{
	int rc;

	pthread_mutex_lock(&t->mu);
	t->parked = 1;
	t->parked_thread = pthread_self();
	for (;;) {
		struct timespec ts;

		/* This thread may call Paho: move what is queued into its
		 * window (it goes out once this thread returns). */
		pthread_mutex_unlock(&t->mu);
		drain(t);
		pthread_mutex_lock(&t->mu);
		if (t->pub_waiting > 0 || t->direct_sends > 0 || t->closing || !t->connected) {
			rc = PR_PARK_ADMIT;
			break;
		}
		if (t->unparked) {
			rc = PR_PARK_RECHECK;
			break;
		}
		/* Woken by unpark, a full outbox, or close; the timeout is a
		 * safety net. */
		abstime_in(&ts, 100);
		pthread_cond_timedwait(&t->park_cv, &t->mu, &ts);
	}
	t->unparked = 0;
	t->parked = 0;
	pthread_mutex_unlock(&t->mu);
	drain(t);
	return rc;
}

void
pr__transport_unpark(struct pr_transport *t)
{
	pthread_mutex_lock(&t->mu);
	t->unparked = 1;
	pthread_cond_broadcast(&t->park_cv);
	pthread_mutex_unlock(&t->mu);
}

int
pr__transport_unsubscribe(struct pr_transport *t, const char *filter)
{
	char *gone = NULL;
	int still = 0; /* another entry keeps the broker subscription */

	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < t->nsubs; i++) {
		if (strcmp(t->subs[i], filter) == 0 && gone != NULL) {
			still = 1;
		} else if (strcmp(t->subs[i], filter) == 0) {
			gone = t->subs[i];
			memmove(t->subs + i, t->subs + i + 1,
			    (size_t)(t->nsubs - i - 1) * sizeof *t->subs);
			t->nsubs--;
			i--;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (gone == NULL) {
		return PR_ENOTFOUND;
	}
	/* Not waited for: a message already on its way may still arrive, and
	 * the caller drops what it no longer listens to. */
	if (!still && pr__transport_is_connected(t)) {
		MQTTAsync_unsubscribe(t->client, gone, NULL);
	}
	free(gone);
	return 0;
}

int
pr__transport_flush(struct pr_transport *t, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	abstime_in(&ts, timeout_ms);
	pthread_mutex_lock(&t->mu);
	while (t->connected && (t->inflight > 0 || t->outbox != NULL) && rc == 0) {
		int timedout;

		t->pub_waiting++;
		timedout = pthread_cond_timedwait(&t->pub_cv, &t->mu, &ts) == ETIMEDOUT;
		t->pub_waiting--;
		if (timedout) {
			rc = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* ---- lifecycle ---- */

static char *
paho_uri(const char *uri)
{
	static const struct {
		const char *from, *to;
	} schemes[] = { { "mqtt://", "tcp://" }, { "mqtts://", "ssl://" }, { "tcp://", "tcp://" },
		{ "ssl://", "ssl://" } };

	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		size_t n = strlen(schemes[i].from);

		if (strncmp(uri, schemes[i].from, n) == 0 && uri[n] != '\0') {
			size_t len = strlen(schemes[i].to) + strlen(uri + n) + 1;
			char *s = malloc(len);

			if (s != NULL) {
				strcpy(s, schemes[i].to);
				strcat(s, uri + n);
			}
			return s;
		}
	}
	return NULL;
}

/* Remember filter for every (re)connect. Under no lock; t->mu taken here. */
static int
add_subscription(struct pr_transport *t, const char *filter)
{
	char *copy = strdup(filter);
	int rc = 0;

	if (copy == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->mu);
	if (t->nsubs == t->cap_subs) {
		int cap = t->cap_subs != 0 ? t->cap_subs * 2 : 4;
		char **p = realloc(t->subs, (size_t)cap * sizeof *p);

		if (p == NULL) {
			rc = -ENOMEM;
		} else {
			t->subs = p;
			t->cap_subs = cap;
		}
	}
	if (rc == 0) {
		t->subs[t->nsubs++] = copy;
	}
	pthread_mutex_unlock(&t->mu);
	if (rc != 0) {
		free(copy);
	}
	return rc;
}

int
pr__transport_subscribe(struct pr_transport *t, const char *filter, int timeout_ms)
{
	struct subctx *sc;
	struct timespec ts;
	int rc = add_subscription(t, filter);

	if (rc != 0) {
		return rc;
	}
	if (!pr__transport_is_connected(t)) {
		return -ENOTCONN; /* remembered: subscribed on the next connect */
	}
	sc = subctx_new(t, filter, 2);
	if (sc == NULL) {
		return -ENOMEM;
	}
	if (start_subscribe(t, sc) != 0) {
		sc->refs = 1;
		subctx_put(sc);
		return PR_EINTERNAL;
	}
	abstime_in(&ts, timeout_ms);
	pthread_mutex_lock(&t->mu);
	while (sc->done == 0 && rc == 0) {
		if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
		}
	}
	if (rc == 0 && sc->done < 0) {
		rc = PR_EFORBIDDEN;
	}
	pthread_mutex_unlock(&t->mu);
	subctx_put(sc);
	return rc;
}

static void
free_opts_copies(struct pr_transport *t)
{
	free((char *)t->opts.client_id);
	free((char *)t->opts.username);
	if (t->opts.password != NULL) {
		/* Not left behind in freed memory. */
		memset((char *)t->opts.password, 0, strlen(t->opts.password));
	}
	free((char *)t->opts.password);
	free((char *)t->opts.cafile);
	free((char *)t->opts.certfile);
	free((char *)t->opts.keyfile);
	free((char *)t->opts.will_topic);
	free((char *)t->opts.will_payload);
	free((char *)t->opts.no_retained);
}

int
pr__transport_open(const struct pr_transport_opts *opts, struct pr_transport **out)
{
	MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer5;
	struct pr_transport *t;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof *t);
	if (t == NULL) {
		return -ENOMEM;
	}
	t->opts = *opts;
	if (t->opts.mqtt_version == 0) {
		t->opts.mqtt_version = MQTTVERSION_5;
	} else if (t->opts.mqtt_version != MQTTVERSION_5
	    && t->opts.mqtt_version != MQTTVERSION_3_1_1) {
		free(t);
		return PR_EFIELD;
	}
	t->opts.client_id = dup_or_null(opts->client_id);
	t->opts.username = dup_or_null(opts->username);
	t->opts.password = dup_or_null(opts->password);
	t->opts.cafile = dup_or_null(opts->cafile);
	t->opts.certfile = dup_or_null(opts->certfile);
	t->opts.keyfile = dup_or_null(opts->keyfile);
	t->opts.will_topic = dup_or_null(opts->will_topic);
	t->opts.no_retained = dup_or_null(opts->no_retained);
	t->opts.will_payload = dup_or_null(opts->will_payload);
	t->window = 1;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_cond_init(&t->pub_cv, &ca);
	pthread_cond_init(&t->park_cv, &ca);
	t->outbox_tail = &t->outbox;
	t->outbox_max = opts->max_outbox > 0 ? opts->max_outbox : (size_t)32 << 20;
	pthread_condattr_destroy(&ca);

	t->uri = opts->uri != NULL ? paho_uri(opts->uri) : NULL;
	if (t->uri == NULL) {
		tlog(t, PR_LOG_ERROR,
		    "transport: broker URL must be mqtt://host:port or mqtts://host:port");
		pr__transport_close(t);
		return PR_EFIELD;
	}
	for (int i = 0; i < opts->nsubscriptions; i++) {
		if (add_subscription(t, opts->subscriptions[i]) != 0) {
			pr__transport_close(t);
			return -ENOMEM;
		}
	}
	t->opts.subscriptions = NULL; /* the caller's array is not kept */
	cr.MQTTVersion = t->opts.mqtt_version;
	cr.sendWhileDisconnected = 0;
	cr.maxBufferedMessages = 100000;
	rc = MQTTAsync_createWithOptions(
	    &t->client, t->uri, t->opts.client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr);
	if (rc != MQTTASYNC_SUCCESS) {
		tlog(t, PR_LOG_ERROR, "transport: cannot create MQTT client for %s (%d)", t->uri,
		    rc);
		pr__transport_close(t);
		return PR_EINTERNAL;
	}
	MQTTAsync_setCallbacks(t->client, t, on_lost, on_arrived, NULL);
	MQTTAsync_setConnected(t->client, t, on_connected_cb);
	MQTTAsync_setDisconnected(t->client, t, on_disconnected);
	if (pthread_create(&t->connector, NULL, connector_main, t) != 0) {
		pr__transport_close(t);
		return PR_EINTERNAL;
	}
	t->connector_started = 1;
	*out = t;
	return 0;
}

int
pr__transport_wait_connected(struct pr_transport *t, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	abstime_in(&ts, timeout_ms);
	pthread_mutex_lock(&t->mu);
	while (!t->ready && rc == 0) {
		if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int
pr__transport_is_connected(struct pr_transport *t)
{
	int c;

	pthread_mutex_lock(&t->mu);
	c = t->connected;
	pthread_mutex_unlock(&t->mu);
	return c;
}

void
pr__transport_close(struct pr_transport *t)
{
	if (t == NULL) {
		return;
	}
	pthread_mutex_lock(&t->mu);
	t->closing = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_cond_broadcast(&t->park_cv);
	pthread_mutex_unlock(&t->mu);
	if (t->connector_started) {
		pthread_join(t->connector, NULL);
	}
	if (t->client != NULL) {
		if (MQTTAsync_isConnected(t->client)) {
			MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
			MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
			MQTTAsync_disconnectOptions *dp
			    = t->opts.mqtt_version == MQTTVERSION_5 ? &d5 : &d;

			dp->timeout = 2000;
			MQTTAsync_disconnect(t->client, dp);
			/* Paho completes a disconnect on its own threads; give it the
			 * time it was allowed before the client is destroyed. */
			for (int i = 0; i < 200 && MQTTAsync_isConnected(t->client); i++) {
				struct timespec ts = { 0, 10000000L };

				nanosleep(&ts, NULL);
			}
		}
		MQTTAsync_setCallbacks(t->client, NULL, NULL, NULL, NULL);
		MQTTAsync_destroy(&t->client);
	}
	pthread_mutex_destroy(&t->mu);
	drop_outbox(t);
	pthread_cond_destroy(&t->cv);
	pthread_cond_destroy(&t->pub_cv);
	pthread_cond_destroy(&t->park_cv);
	free_opts_copies(t);
	free(t->uri);
	for (int i = 0; i < t->nsubs; i++) {
		free(t->subs[i]);
	}
	free(t->subs);
	free(t);
}
