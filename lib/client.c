/* SPDX-License-Identifier: MIT */
/*
 * libpartreg (include/partreg/client.h): requests with retries, and
 * subscriptions, over one transport.
 *
 * Replies come to one topic per client, P/reply/<client id>. Each request
 * has its own correlation, random and unguessable: as MQTT 5 Correlation
 * Data, or for MQTT 3.1.1 as the body's correlation_id. The receive thread
 * hands a reply to its waiting request only when both the correlation and
 * the reply's request_id are the request's; anything else on the reply
 * topic (an answer to an earlier resend that arrived late, or a reply
 * forged by another client that can publish there) is dropped. A resend
 * reuses the body, request_id included, so the agent applies the command
 * at most once.
 *
 * Subscribed messages are dispatched to every subscription whose filter
 * matches the topic (pr_topic_matches), on the receive thread, which holds
 * dispatch_mu for the whole walk: pr_client_unsubscribe takes it too, so
 * once it returns no callback of the removed subscription is running, and
 * its arg may go away.
 */
#include <partreg/client.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "message.h"
#include <partreg/time.h>
#include "strfmt.h"
#include "token.h"
#include "transport.h"

struct waiter {
	struct waiter *next;
	pthread_cond_t cv; /* signalled, under the client's mu, when reply is set */
	char correlation[PR_ID_MAX + 1];
	char request_id[PR_ID_MAX + 1];
	char *reply; /* set by the receive thread */
};

struct sub {
	struct sub *next;
	char *filter;      /* the caller's filter, as given */
	char *full_filter; /* under the prefix */
	pr_message_fn cb;  /* one of cb and mcb */
	pr_msg_fn mcb;
	void *arg;
};

struct pr_client {
	struct pr_transport *tr;
	char *prefix;
	char *client_id;
	char *reply_topic;
	int v311;

	pthread_mutex_t mu;
	struct waiter *waiters;
	struct sub *subs; /* changed under mu and dispatch_mu together */

	pthread_mutex_t dispatch_mu; /* held while callbacks run */
};

/*
 * Is this reply the answer to w? Its request_id must be w's; only an
 * agent that could not read the command at all (payload_too_large) answers
 * without one.
 */
static int
reply_is_for(const struct waiter *w, const char *request_id, const char *code)
{
	if (request_id[0] == '\0') {
		return strcmp(code, "payload_too_large") == 0;
	}
	return strcmp(request_id, w->request_id) == 0;
}

/* Hands m's payload to the request it answers (m is on_message's: the
 * payload is taken, not copied, so the lock is held only for the walk). */
static void
deliver_reply(struct pr_client *c, struct pr_msg *m)
{
	char corr[PR_ID_MAX + 1], body_corr[PR_ID_MAX + 1], request_id[PR_ID_MAX + 1], code[32];

	if (m->payload == NULL
	    || pr__reply_ids(m->payload, m->payload_len, body_corr, request_id, code) != 0) {
		return;
	}
	if (m->correlation != NULL) {
		if (m->correlation_len >= sizeof corr) {
			return;
		}
		memcpy(corr, m->correlation, m->correlation_len);
		corr[m->correlation_len] = '\0';
	} else {
		memcpy(corr, body_corr, sizeof corr);
	}
	pthread_mutex_lock(&c->mu);
	for (struct waiter *w = c->waiters; w != NULL; w = w->next) {
		if (w->reply == NULL && strcmp(w->correlation, corr) == 0
		    && reply_is_for(w, request_id, code)) {
			w->reply = m->payload;
			m->payload = NULL;
			/* Its own condition, not one shared by all requests:
			 * a broadcast woke every waiting thread per reply
			 * (with 64 in flight, ~30 context switches each). */
			pthread_cond_signal(&w->cv);
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
		/* The list cannot change while dispatch_mu is held (both
		 * subscribe and unsubscribe take it), and mu is not held while
		 * a callback runs. */
		pthread_mutex_lock(&c->dispatch_mu);
		for (struct sub *s = c->subs; s != NULL; s = s->next) {
			if (!pr_topic_matches(s->full_filter, m->topic)) {
				continue;
			}
			if (s->mcb != NULL) {
				struct pr_message pm = { m->topic, m->payload, m->payload_len,
					m->retained, m->expiry_s };

				s->mcb(s->arg, &pm);
			} else {
				s->cb(s->arg, m->topic, m->payload, m->payload_len);
			}
		}
		pthread_mutex_unlock(&c->dispatch_mu);
	}
	pr__msg_free(m);
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
	pthread_mutex_init(&c->dispatch_mu, NULL);
	c->v311 = opts->mqtt_version == 4;
	c->prefix = strdup(opts->prefix != NULL ? opts->prefix : PR_DEFAULT_PREFIX);
	if (opts->client_id != NULL) {
		c->client_id = strdup(opts->client_id);
	} else if (pr__token_new(rnd) == 0) {
		rnd[8] = '\0';
		c->client_id = pr__strfmt("partreg-%s", rnd);
	}
	/* With a user name, replies come under P/reply/<user>/: the shipped ACL
	 * (compose/mosquitto/acl) lets a user read only its own replies,
	 * which may carry tokens. */
	if (c->prefix != NULL && c->client_id != NULL && opts->username != NULL) {
		c->reply_topic
		    = pr__strfmt("%s/reply/%s/%s", c->prefix, opts->username, c->client_id);
	} else if (c->prefix != NULL && c->client_id != NULL) {
		c->reply_topic = pr__strfmt("%s/reply/%s", c->prefix, c->client_id);
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
	to.log = opts->log;
	to.log_arg = opts->log_arg;
	rc = pr__transport_open(&to, &c->tr);
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
	return pr__transport_wait_connected(c->tr, timeout_ms);
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
	pr__transport_close(c->tr);
	while (c->subs != NULL) {
		struct sub *next = c->subs->next;

		free(c->subs->filter);
		free(c->subs->full_filter);
		free(c->subs);
		c->subs = next;
	}
	free(c->prefix);
	free(c->client_id);
	free(c->reply_topic);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->dispatch_mu);
	free(c);
}

static void
abstime_ms(struct timespec *ts, int64_t at_us)
{
	ts->tv_sec = (time_t)(at_us / 1000000);
	ts->tv_nsec = (long)(at_us % 1000000) * 1000;
}

/* Has w a reply to return? store_unavailable (pr__reply_in_doubt) is kept
 * in *last instead, and the request is sent again at the next resend:
 * under the same request_id, the agents apply it at most once, and answer
 * with the outcome. */
static int
final_reply(struct waiter *w, char **last)
{
	if (w->reply == NULL) {
		return 0;
	}
	if (!pr__reply_in_doubt(w->reply)) {
		return 1;
	}
	free(*last);
	*last = w->reply;
	w->reply = NULL;
	return 0;
}

int
pr_client_request(struct pr_client *c, const char *command, const char *body, int timeout_ms,
    int resend_ms, char **reply)
{
	struct waiter w = { 0 };
	struct pr_pubprops props = { 0 };
	char rid[PR_TOKEN_LEN + 1], request_id[PR_ID_MAX + 1];
	char *topic = NULL, *payload = NULL, *last = NULL;
	int64_t deadline = pr_time_now() + (int64_t)timeout_ms * 1000;
	int rc;

	*reply = NULL;
	if (resend_ms <= 0) {
		resend_ms = 2000;
	}
	/* Random, so that no other client can guess it and answer first. */
	if ((rc = pr__token_new(rid)) != 0) {
		return rc;
	}
	snprintf(w.correlation, sizeof w.correlation, "c-%s", rid);
	if ((rc = pr__token_new(rid)) != 0) {
		return rc;
	}
	rc = pr__body_prepare(body, rid, c->v311 ? c->reply_topic : NULL,
	    c->v311 ? w.correlation : NULL, &payload, request_id);
	if (rc != 0) {
		return rc;
	}
	memcpy(w.request_id, request_id, sizeof w.request_id);
	topic = pr__strfmt("%s/cmd/%s", c->prefix, command);
	if (topic == NULL) {
		free(payload);
		return -ENOMEM;
	}
	props.correlation = w.correlation;
	props.correlation_len = strlen(w.correlation);
	props.response_topic = c->reply_topic;
	pthread_cond_init(&w.cv, NULL);

	pthread_mutex_lock(&c->mu);
	w.next = c->waiters;
	c->waiters = &w;
	rc = -ETIMEDOUT;
	while (!final_reply(&w, &last) && pr_time_now() < deadline) {
		int64_t resend_at = pr_time_now() + (int64_t)resend_ms * 1000;
		struct timespec ts;

		pthread_mutex_unlock(&c->mu);
		/* Not connected yet, or the window is full: the next resend
		 * tries again. */
		pr__transport_publish(
		    c->tr, topic, payload, strlen(payload), 1, 0, &props, resend_ms);
		pthread_mutex_lock(&c->mu);
		abstime_ms(&ts, resend_at < deadline ? resend_at : deadline);
		while (!final_reply(&w, &last)
		    && pthread_cond_timedwait(&w.cv, &c->mu, &ts) != ETIMEDOUT) { }
	}
	/* Unlink the waiter: the receive thread must not see it any more. */
	for (struct waiter **p = &c->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == &w) {
			*p = w.next;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&w.cv);
	if (w.reply == NULL) {
		/* Only answers in doubt came: the last one says so. */
		w.reply = last;
		last = NULL;
	}
	free(last);
	if (w.reply != NULL) {
		*reply = w.reply;
		rc = 0;
	}
	free(topic);
	free(payload);
	return rc;
}

static int
add_sub(struct pr_client *c, const char *filter, pr_message_fn cb, pr_msg_fn mcb, void *arg,
    int timeout_ms)
{
	struct sub *s = calloc(1, sizeof *s);
	int rc;

	if (s == NULL || (s->filter = strdup(filter)) == NULL
	    || (s->full_filter = pr__strfmt("%s/%s", c->prefix, filter)) == NULL) {
		if (s != NULL) {
			free(s->filter);
		}
		free(s);
		return -ENOMEM;
	}
	s->cb = cb;
	s->mcb = mcb;
	s->arg = arg;
	/* Listed before subscribing: retained messages come right after. */
	pthread_mutex_lock(&c->dispatch_mu);
	pthread_mutex_lock(&c->mu);
	s->next = c->subs;
	c->subs = s;
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&c->dispatch_mu);
	/* Subscribed in any case: when not connected (yet), the transport keeps
	 * the filter and subscribes on the next connect. */
	rc = pr__transport_wait_connected(c->tr, timeout_ms);
	return pr__transport_subscribe(c->tr, s->full_filter, rc == 0 ? timeout_ms : 0);
}

int
pr_client_subscribe(
    struct pr_client *c, const char *filter, pr_message_fn cb, void *arg, int timeout_ms)
{
	return add_sub(c, filter, cb, NULL, arg, timeout_ms);
}

int
pr_client_subscribe_msg(
    struct pr_client *c, const char *filter, pr_msg_fn cb, void *arg, int timeout_ms)
{
	return add_sub(c, filter, NULL, cb, arg, timeout_ms);
}

static int
remove_sub(struct pr_client *c, const char *filter, pr_message_fn cb, pr_msg_fn mcb, void *arg)
{
	struct sub *gone = NULL;

	/* dispatch_mu first: waits for a dispatch in progress to finish. */
	pthread_mutex_lock(&c->dispatch_mu);
	pthread_mutex_lock(&c->mu);
	for (struct sub **p = &c->subs; *p != NULL; p = &(*p)->next) {
		if ((*p)->cb == cb && (*p)->mcb == mcb && (*p)->arg == arg
		    && strcmp((*p)->filter, filter) == 0) {
			gone = *p;
			*p = gone->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&c->dispatch_mu);
	if (gone == NULL) {
		return PR_ENOTFOUND;
	}
	/* The transport keeps one entry per subscribe: drop this one's. */
	pr__transport_unsubscribe(c->tr, gone->full_filter);
	free(gone->filter);
	free(gone->full_filter);
	free(gone);
	return 0;
}

int
pr_client_unsubscribe(struct pr_client *c, const char *filter, pr_message_fn cb, void *arg)
{
	return remove_sub(c, filter, cb, NULL, arg);
}

int
pr_client_unsubscribe_msg(struct pr_client *c, const char *filter, pr_msg_fn cb, void *arg)
{
	return remove_sub(c, filter, NULL, cb, arg);
}
