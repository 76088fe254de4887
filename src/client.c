/* SPDX-License-Identifier: MIT */
/*
 * libpartreg (include/partreg/client.h): requests with retries, and
 * subscriptions, over one transport.
 *
 * Replies come to one topic per client, P/reply/<client id>. Each request
 * has its own correlation ("c<n>"): as MQTT 5 Correlation Data, or for MQTT
 * 3.1.1 as the body's correlation_id. The receive thread matches a reply to
 * its waiting request by it; a reply that matches nothing (an answer to an
 * earlier resend that arrived late) is dropped. A resend reuses the body,
 * request_id included, so the agent applies the command at most once.
 *
 * Subscribed messages are dispatched to every subscription whose filter
 * matches the topic (MQTT wildcard rules), on the receive thread.
 */
#include <partreg/client.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "err.h"
#include "ptime.h"
#include "token.h"
#include "transport.h"

struct waiter {
	struct waiter *next;
	char correlation[24];
	char *reply; /* set by the receive thread */
};

struct sub {
	struct sub *next;
	char *filter; /* full topic filter */
	void (*cb)(void *arg, const char *topic, const char *payload, size_t len);
	void *arg;
};

struct pr_client {
	struct pr_transport *tr;
	char *prefix;
	char *client_id;
	char *reply_topic;
	int v311;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiter *waiters;
	struct sub *subs;
	uint64_t next_corr;
};

/* Does topic match the MQTT filter (with + and #)? */
static int
topic_matches(const char *filter, const char *topic)
{
	while (*filter != '\0') {
		if (filter[0] == '#') {
			return 1;
		}
		if (filter[0] == '+') {
			while (*topic != '\0' && *topic != '/') {
				topic++;
			}
			filter++;
		} else {
			if (*filter != *topic) {
				return 0;
			}
			filter++;
			topic++;
			continue;
		}
	}
	return *topic == '\0';
}

static void
deliver_reply(struct pr_client *c, const struct pr_msg *m)
{
	char corr[PR_ID_MAX + 1] = "";

	if (m->correlation != NULL && m->correlation_len < sizeof corr) {
		memcpy(corr, m->correlation, m->correlation_len);
		corr[m->correlation_len] = '\0';
	} else if (m->payload != NULL) {
		pr_reply_correlation(m->payload, m->payload_len, corr);
	}
	pthread_mutex_lock(&c->mu);
	for (struct waiter *w = c->waiters; w != NULL; w = w->next) {
		if (w->reply == NULL && strcmp(w->correlation, corr) == 0) {
			w->reply = strdup(m->payload != NULL ? m->payload : "");
			pthread_cond_broadcast(&c->cv);
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

static void
on_message(void *arg, struct pr_msg *m)
{
	struct pr_client *c = arg;

	if (strcmp(m->topic, c->reply_topic) == 0) {
		deliver_reply(c, m);
	} else if (m->payload != NULL) {
		/* Subscriptions are only ever added, so walking the list while
		 * another thread prepends to it is safe under the lock only for
		 * the head: take it, then walk without the lock. */
		struct sub *s;

		pthread_mutex_lock(&c->mu);
		s = c->subs;
		pthread_mutex_unlock(&c->mu);
		for (; s != NULL; s = s->next) {
			if (topic_matches(s->filter, m->topic)) {
				s->cb(s->arg, m->topic, m->payload, m->payload_len);
			}
		}
	}
	pr_msg_free(m);
}

static char *
join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	if (s != NULL) {
		snprintf(s, n, "%s%s%s", a, b, c);
	}
	return s;
}

int
pr_client_open(const struct pr_client_opts *opts, struct pr_client **out)
{
	struct pr_transport_opts to = { 0 };
	struct pr_client *c = calloc(1, sizeof *c);
	char rnd[PR_TOKEN_LEN + 1];
	const char *subs[1];
	int rc;

	*out = NULL;
	if (c == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->v311 = opts->mqtt_version == 4;
	c->prefix = strdup(opts->prefix != NULL ? opts->prefix : PR_DEFAULT_PREFIX);
	if (opts->client_id != NULL) {
		c->client_id = strdup(opts->client_id);
	} else if (pr_token_new(rnd) == 0) {
		rnd[8] = '\0';
		c->client_id = join("partreg-", rnd, "");
	}
	/* With a user name, replies come under P/reply/<user>/: the shipped ACL
	 * (compose/mosquitto/acl) lets a user read only its own replies,
	 * which may carry tokens. */
	if (c->prefix != NULL && c->client_id != NULL && opts->username != NULL) {
		char *user = join(c->prefix, "/reply/", opts->username);

		c->reply_topic = user != NULL ? join(user, "/", c->client_id) : NULL;
		free(user);
	} else if (c->prefix != NULL && c->client_id != NULL) {
		c->reply_topic = join(c->prefix, "/reply/", c->client_id);
	}
	if (c->prefix == NULL || c->client_id == NULL || c->reply_topic == NULL) {
		pr_client_close(c);
		return -ENOMEM;
	}
	subs[0] = c->reply_topic;
	to.uri = opts->broker;
	to.client_id = c->client_id;
	to.username = opts->username;
	to.password = opts->password;
	to.cafile = opts->cafile;
	to.certfile = opts->certfile;
	to.keyfile = opts->keyfile;
	to.mqtt_version = opts->mqtt_version;
	to.clean_start = 1;
	to.will_topic = opts->will_topic;
	to.will_payload = opts->will_payload;
	to.subscriptions = subs;
	to.nsubscriptions = 1;
	to.on_message = on_message;
	to.arg = c;
	rc = pr_transport_open(&to, &c->tr);
	if (rc != 0) {
		pr_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
pr_client_wait_connected(struct pr_client *c, int timeout_ms)
{
	return pr_transport_wait_connected(c->tr, timeout_ms);
}

const char *
pr_client_prefix(const struct pr_client *c)
{
	return c->prefix;
}

void
pr_client_close(struct pr_client *c)
{
	if (c == NULL) {
		return;
	}
	/* The transport first: no callback runs after it is closed. */
	pr_transport_close(c->tr);
	while (c->subs != NULL) {
		struct sub *next = c->subs->next;

		free(c->subs->filter);
		free(c->subs);
		c->subs = next;
	}
	free(c->prefix);
	free(c->client_id);
	free(c->reply_topic);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void
abstime_ms(struct timespec *ts, int64_t at_us)
{
	ts->tv_sec = (time_t)(at_us / 1000000);
	ts->tv_nsec = (long)(at_us % 1000000) * 1000;
}

int
pr_client_request(struct pr_client *c, const char *command, const char *body, int timeout_ms,
    int resend_ms, char **reply)
{
	struct waiter w = { 0 };
	struct pr_pubprops props = { 0 };
	char rid[PR_TOKEN_LEN + 1], request_id[PR_ID_MAX + 1];
	char *topic = NULL, *payload = NULL;
	int64_t deadline = pr_time_now() + (int64_t)timeout_ms * 1000;
	int rc;

	*reply = NULL;
	if (resend_ms <= 0) {
		resend_ms = 2000;
	}
	pthread_mutex_lock(&c->mu);
	snprintf(w.correlation, sizeof w.correlation, "c%llu", (unsigned long long)++c->next_corr);
	pthread_mutex_unlock(&c->mu);
	if ((rc = pr_token_new(rid)) != 0) {
		return rc;
	}
	rc = pr_body_prepare(body, rid, c->v311 ? c->reply_topic : NULL,
	    c->v311 ? w.correlation : NULL, &payload, request_id);
	if (rc != 0) {
		return rc;
	}
	topic = join(c->prefix, "/cmd/", command);
	if (topic == NULL) {
		free(payload);
		return -ENOMEM;
	}
	props.correlation = w.correlation;
	props.correlation_len = strlen(w.correlation);
	props.response_topic = c->reply_topic;

	pthread_mutex_lock(&c->mu);
	w.next = c->waiters;
	c->waiters = &w;
	rc = -ETIMEDOUT;
	while (w.reply == NULL && pr_time_now() < deadline) {
		int64_t resend_at = pr_time_now() + (int64_t)resend_ms * 1000;
		struct timespec ts;

		pthread_mutex_unlock(&c->mu);
		/* Not connected yet, or the window is full: the next resend
		 * tries again. */
		pr_transport_publish(
		    c->tr, topic, payload, strlen(payload), 1, 0, &props, resend_ms);
		pthread_mutex_lock(&c->mu);
		abstime_ms(&ts, resend_at < deadline ? resend_at : deadline);
		while (
		    w.reply == NULL && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) { }
	}
	/* Unlink the waiter: the receive thread must not see it any more. */
	for (struct waiter **p = &c->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == &w) {
			*p = w.next;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (w.reply != NULL) {
		*reply = w.reply;
		rc = 0;
	}
	free(topic);
	free(payload);
	return rc;
}

int
pr_client_subscribe(struct pr_client *c, const char *filter,
    void (*cb)(void *arg, const char *topic, const char *payload, size_t len), void *arg,
    int timeout_ms)
{
	struct sub *s = calloc(1, sizeof *s);
	int rc;

	if (s == NULL || (s->filter = join(c->prefix, "/", filter)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->cb = cb;
	s->arg = arg;
	/* Listed before subscribing: retained messages come right after. */
	pthread_mutex_lock(&c->mu);
	s->next = c->subs;
	c->subs = s;
	pthread_mutex_unlock(&c->mu);
	rc = pr_transport_wait_connected(c->tr, timeout_ms);
	if (rc == 0) {
		rc = pr_transport_subscribe(c->tr, s->filter, timeout_ms);
	}
	return rc;
}

void
pr_summary_readiness(const struct pr_summary *s, struct pr_range want, struct pr_readiness *out)
{
	struct pr_range *blocked = calloc(s->nblocked + 1, sizeof *blocked);
	size_t n = 0;

	/* Without memory, every listed blocker still blocks: count them as
	 * covering want, which can only make the answer "not ready". */
	for (size_t i = 0; i < s->nblocked; i++) {
		if (blocked != NULL) {
			blocked[n++] = s->blocked[i].range;
		}
	}
	if (blocked == NULL && s->nblocked > 0) {
		struct pr_range all = want;

		pr_readiness_eval(want, s->ready, s->nready, &all, 1, out);
		return;
	}
	pr_readiness_eval(want, s->ready, s->nready, blocked, n, out);
	free(blocked);
}

int
pr_client_parse_time(const char *text, int64_t *out)
{
	return pr_time_parse(text, strlen(text), out);
}
