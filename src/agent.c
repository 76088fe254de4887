/* SPDX-License-Identifier: MIT */
/*
 * The agent's worker loop (see agent.h for the data path and guarantees).
 *
 * Everything that touches the store runs on the worker thread: LMDB allows
 * one write transaction at a time, and a single writer makes the order of
 * commits the order of publishes. Paho's receive thread only queues messages
 * and raises flags, and never publishes: a publish may wait for the
 * in-flight window, whose completions arrive on that same thread.
 *
 * Republishing all retained state (on every connect, and on agent/resync)
 * is done in steps of at most REPUBLISH_STEP partitions between batches, so
 * commands are still served while a large registry is republished. Each
 * step reads a fresh snapshot and publishes it before any later batch, so a
 * republished message never overtakes a newer change.
 */
#include "agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include <partreg/error.h>
#include "handlers.h"
#include "lease.h"
#include "log.h"
#include "names.h"
#include <partreg/time.h>
#include "store.h"
#include "token.h"
#include "transport.h"

#define REPUBLISH_STEP     512
#define PUBLISH_TIMEOUT_MS 10000
#define PRUNE_INTERVAL_US  INT64_C(60000000)

struct reply {
	char *topic;       /* NULL: no reply wanted */
	char *correlation; /* MQTT 5 Correlation Data */
	size_t correlation_len;
	char request_id[PR_ID_MAX + 1];
	char correlation_id[PR_ID_MAX + 1]; /* MQTT 3.1.1 body field; "" = none */
	char *payload;
	size_t len;
};

struct republish {
	int all;                           /* walking every source */
	char source_cursor[PR_CURSOR_MAX]; /* next source when all */
	char (*pending)[PR_NAME_MAX + 1];  /* single sources asked by agent/resync */
	size_t npending, cap_pending;
	int in_source; /* partitions of cur being published */
	char cur[PR_NAME_MAX + 1];
	char part_cursor[PR_CURSOR_MAX];
};

struct pr_agent {
	const struct pr_config *cfg;
	struct pr_store *store;
	struct pr_transport *tr;
	uint64_t epoch;
	struct pr_handler_opts hopts;

	char *cmd_filter;   /* P/cmd/+/+ */
	char *cmd_prefix;   /* P/cmd/ */
	char *status_topic; /* P/agent/status */
	char *will_payload;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pr_msg *qhead, *qtail;
	int connected_event; /* set by on_connected: publish online, republish */
	int stopping;

	struct republish rp;
	int64_t last_prune;
	struct pr_agent_stats stats; /* counters for P/agent/stats */
	int64_t last_stats;
	char *stats_topic; /* P/agent/stats */
	uint64_t qlen;
	int64_t next_deadline; /* earliest lease deadline, 0 = none */
};

/* ---- callbacks (Paho's receive thread) ---- */

static void
on_message(void *arg, struct pr_msg *m)
{
	struct pr_agent *a = arg;

	pthread_mutex_lock(&a->mu);
	if (a->qtail != NULL) {
		a->qtail->next = m;
	} else {
		a->qhead = m;
	}
	a->qtail = m;
	a->qlen++;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void
on_connected(void *arg)
{
	struct pr_agent *a = arg;

	pthread_mutex_lock(&a->mu);
	a->connected_event = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* ---- publishing ---- */

static char *
concat(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	if (s != NULL) {
		snprintf(s, n, "%s%s%s", a, b, c);
	}
	return s;
}

/* Publish j (consumed) on topic; failures are logged, not returned: every
 * state message is published again on the next connect. */
static int
publish_json_expiring(
    struct pr_agent *a, const char *topic, struct pr_json *j, int retained, uint32_t expiry_s)
{
	struct pr_pubprops props = { .message_expiry_s = expiry_s };
	size_t len;
	char *text = j != NULL ? pr__json_dump(j, &len) : NULL;
	int rc;

	pr__json_free(j);
	if (text == NULL) {
		pr_error("agent: out of memory encoding a message for %s", topic);
		return -ENOMEM;
	}
	rc = pr__transport_publish(a->tr, topic, text, len, 1, retained, &props, PUBLISH_TIMEOUT_MS);
	if (rc != 0 && rc != -ENOTCONN) {
		pr_warn("agent: publish to %s failed: %s", topic, pr_strerror(rc));
	}
	free(text);
	return rc;
}

static int
publish_json(struct pr_agent *a, const char *topic, struct pr_json *j, int retained)
{
	return publish_json_expiring(a, topic, j, retained, 0);
}

/*
 * A partition's retained state. A deleted partition is published as a
 * tombstone (state "deleted") that the broker drops after the rest of
 * --tombstone-expiry, not as an empty retained message: a bridge that is
 * down while an empty message passes never learns of the deletion.
 */
static int
publish_partition(struct pr_agent *a, const struct pr_partition *p)
{
	char s[PR_TIME_BUFSZ], e[PR_TIME_BUFSZ];
	char topic[1024];
	uint32_t expiry = 0;

	if (p->state == PR_DELETED) {
		int64_t left = (int64_t)a->cfg->tombstone_expiry_s
		    - (pr_time_now() - p->since) / INT64_C(1000000);

		if (left <= 0) {
			return 0; /* expired: the broker has dropped it already */
		}
		expiry = (uint32_t)left;
	}

	snprintf(topic, sizeof topic, "%s/state/%s/partitions/%s/%s/%s", a->cfg->prefix, p->source,
	    pr_time_format(p->range.start, s), pr_time_format(p->range.end, e), p->provider);
	return publish_json_expiring(a, topic, pr__json_partition_state(p, a->epoch), 1, expiry);
}

struct summary_ctx {
	struct pr_range *ready;
	struct pr_partition *blocked;
	size_t nready, nblocked, max;
	int truncated;
};

static int
summary_range(void *arg, struct pr_range r)
{
	struct summary_ctx *c = arg;

	if (c->nready == c->max) {
		c->truncated = 1;
		return 1;
	}
	c->ready[c->nready++] = r;
	return 0;
}

static int
summary_blocker(void *arg, const struct pr_partition *p)
{
	struct summary_ctx *c = arg;

	if (c->nblocked == c->max) {
		c->truncated = 1;
		return 1;
	}
	c->blocked[c->nblocked++] = *p;
	return 0;
}

/* The summary of src as of txn: coalesced ready ranges and blockers, at
 * most summary_max of each (then "truncated"). NULL on failure (logged). */
static struct pr_json *
build_summary(struct pr_agent *a, struct pr_txn *txn, const struct pr_source *src)
{
	struct pr_range all = { PR_TIME_MIN, PR_TIME_MAX };
	struct summary_ctx c = { .max = a->cfg->summary_max };
	struct pr_json *j = NULL;
	int rc;

	c.ready = malloc(c.max * sizeof *c.ready);
	c.blocked = malloc(c.max * sizeof *c.blocked);
	if (c.ready == NULL || c.blocked == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = pr__store_ready_each(txn, src, all, summary_range, &c);
	if (rc == 0 || rc == 1) {
		rc = pr__store_blockers_each(txn, src, all, summary_blocker, &c);
	}
	if (rc == 0 || rc == 1) {
		rc = 0;
		j = pr__json_summary(
		    src, a->epoch, c.ready, c.nready, c.blocked, c.nblocked, c.truncated);
	}
out:
	if (rc != 0) {
		pr_error("agent: summary of source %s failed: %s", src->name, pr_strerror(rc));
	}
	free(c.ready);
	free(c.blocked);
	return j;
}

static void
publish_status(struct pr_agent *a, const char *status)
{
	publish_json(a, a->status_topic,
	    pr__json_agent_status(status, a->cfg->client_id, a->epoch, pr_time_now()), 1);
}

/* ---- replies ---- */

static void
reply_release(struct reply *r)
{
	free(r->topic);
	free(r->correlation);
	free(r->payload);
	memset(r, 0, sizeof *r);
}

static void
reply_error(struct reply *r, int err, const char *message)
{
	free(r->payload);
	r->payload = pr__reply_encode(err, message != NULL && message[0] != '\0' ? message : NULL,
	    r->request_id[0] != '\0' ? r->request_id : NULL,
	    r->correlation_id[0] != '\0' ? r->correlation_id : NULL, NULL, &r->len);
}

static void
send_reply(struct pr_agent *a, const struct reply *r)
{
	struct pr_pubprops props = { 0 };
	int rc;

	if (r->topic == NULL || r->payload == NULL) {
		return;
	}
	props.correlation = r->correlation;
	props.correlation_len = r->correlation_len;
	rc = pr__transport_publish(
	    a->tr, r->topic, r->payload, r->len, 1, 0, &props, PUBLISH_TIMEOUT_MS);
	if (rc != 0) {
		pr_warn("agent: reply to %s not sent: %s (the client will retry)", r->topic,
		    pr_strerror(rc));
	}
}

/* ---- one command ---- */

/*
 * Decide where the reply goes: the MQTT 5 Response Topic, else the body's
 * reply_to (MQTT 3.1.1). Returns 0 (r->topic may stay NULL: no reply
 * wanted) or PR_EREPLYTOPIC when the topic is outside P/reply/.
 */
static int
reply_address(struct pr_agent *a, const struct pr_msg *m, const struct pr_cmd *cmd, struct reply *r)
{
	const char *topic = m->response_topic;

	if (topic == NULL && cmd->has_reply_to) {
		topic = cmd->reply_to;
	}
	if (cmd->has_request_id) {
		snprintf(r->request_id, sizeof r->request_id, "%s", cmd->request_id);
	}
	if (cmd->has_correlation_id) {
		snprintf(r->correlation_id, sizeof r->correlation_id, "%s", cmd->correlation_id);
	}
	if (topic == NULL) {
		return 0;
	}
	if (pr__reply_topic_check(topic, strlen(topic), a->cfg->prefix) != 0) {
		return PR_EREPLYTOPIC;
	}
	r->topic = strdup(topic);
	if (m->correlation != NULL) {
		r->correlation = malloc(m->correlation_len + 1);
		if (r->correlation != NULL) {
			memcpy(r->correlation, m->correlation, m->correlation_len);
			r->correlation_len = m->correlation_len;
		}
	}
	return 0;
}

/*
 * Answer a repeated request_id from its stored reply: 2 when replayed, 1
 * when answered with an error, 0 when the request_id is new. The
 * store holds the reply encrypted under a key made from the request_id
 * (see pr__idem_crypt): a reply may hold a token.
 */
static int
try_replay(struct pr_txn *txn, const struct pr_cmd *cmd, struct reply *r)
{
	char command[64], key[2 * PR_DIGEST_LEN + 1];
	char *stored = NULL;
	size_t len;
	int rc = pr__idem_key(cmd->request_id, key);

	if (rc == 0) {
		rc = pr__store_idem_get(txn, key, command, &stored, &len);
	}
	if (rc == PR_ENOTFOUND) {
		return 0;
	}
	if (rc == 0) {
		rc = pr__idem_crypt(cmd->request_id, stored, len);
	}
	if (rc != 0) {
		free(stored);
		reply_error(r, rc, NULL);
		return 1;
	}
	if (strcmp(command, pr__cmd_name(cmd->kind)) != 0) {
		char msg[256];

		snprintf(msg, sizeof msg,
		    "request_id '%s' was already used for %s; use a new request_id for each "
		    "operation",
		    cmd->request_id, command);
		reply_error(r, PR_EREQID, msg);
	} else {
		r->payload = pr__reply_replayed(
		    stored, len, cmd->has_correlation_id ? cmd->correlation_id : NULL, &r->len);
		pr_debug("agent: request_id %s replayed", cmd->request_id);
		rc = 2;
	}
	free(stored);
	return rc == 2 ? 2 : 1;
}

/* Keep the first reply of a write for its request_id, encrypted. */
static void
remember_reply(struct pr_txn *batch, const struct pr_cmd *cmd, const struct reply *r, int64_t now)
{
	char key[2 * PR_DIGEST_LEN + 1];
	char *sealed = malloc(r->len + 1);
	int rc = sealed != NULL ? pr__idem_key(cmd->request_id, key) : -ENOMEM;

	if (rc == 0) {
		memcpy(sealed, r->payload, r->len);
		rc = pr__idem_crypt(cmd->request_id, sealed, r->len);
	}
	if (rc == 0) {
		rc = pr__store_idem_put(batch, key, pr__cmd_name(cmd->kind), sealed, r->len, now);
	}
	if (rc != 0) {
		pr_error("agent: cannot record request_id: %s", pr_strerror(rc));
	}
	free(sealed);
}

/* The outcome of one command, for the stats. */
enum outcome { DONE, REFUSED, REPLAYED };

static enum outcome
handle_one(struct pr_agent *a, struct pr_txn *batch, const struct pr_msg *m, int64_t now,
    struct pr_changes *ch, struct reply *r)
{
	struct pr_cmd *cmd = calloc(1, sizeof *cmd);
	struct pr_decode_error derr = { 0 };
	struct pr_json *result = NULL;
	struct pr_txn *txn = NULL;
	enum pr_cmd_kind kind;
	const char *name = m->topic + strlen(a->cmd_prefix);
	char msg[256] = "";
	int known, rc;

	if (cmd == NULL) {
		pr_error("agent: out of memory; command on %s dropped", m->topic);
		return REFUSED;
	}
	known = pr__cmd_lookup(name, strlen(name), &kind) == 0;
	if (m->too_big) {
		rc = PR_ETOOBIG;
		snprintf(msg, sizeof msg, "payload of %zu bytes exceeds the limit of %zu bytes",
		    m->original_len, a->cfg->max_payload);
	} else {
		/* An unknown command is still decoded, as agent/resync (every field
		 * optional), to find its MQTT 3.1.1 reply address. */
		rc = pr__cmd_decode(
		    known ? kind : PR_CMD_AGENT_RESYNC, m->payload, m->payload_len, cmd, &derr);
		snprintf(msg, sizeof msg, "%s", derr.message);
	}
	if (reply_address(a, m, cmd, r) != 0) {
		pr_warn("agent: command on %s refused: reply topic outside %s/reply/", m->topic,
		    a->cfg->prefix);
		free(r->topic);
		r->topic = NULL;
		free(cmd);
		return REFUSED;
	}
	if (!known) {
		rc = PR_ECOMMAND;
		snprintf(msg, sizeof msg,
		    "no command '%.120s'; commands are published to %s<noun>/<verb>", name,
		    a->cmd_prefix);
	}
	if (rc != 0) {
		pr_info("agent: %s refused: %s: %s", m->topic, pr_err_code(rc), msg);
		reply_error(r, rc, msg);
		free(cmd);
		return REFUSED;
	}
	if (pr__cmd_is_write(kind) && cmd->has_request_id) {
		int replay = try_replay(batch, cmd, r);

		if (replay != 0) {
			free(cmd);
			return replay == 2 ? REPLAYED : REFUSED;
		}
	}
	rc = pr__txn_begin_nested(batch, &txn);
	if (rc == 0) {
		rc = pr__handle(txn, cmd, now, &a->hopts, ch, &result, msg);
		if (rc == 0) {
			rc = pr__txn_commit(txn);
		} else {
			pr__txn_abort(txn);
		}
	}
	if (rc != 0) {
		pr__json_free(result);
		result = NULL;
		pr_info("agent: %s %s: %s", pr__cmd_name(kind), pr_err_code(rc),
		    msg[0] != '\0' ? msg : pr_strerror(rc));
		reply_error(r, rc, msg);
	} else {
		r->payload = pr__reply_encode(0, NULL, cmd->has_request_id ? cmd->request_id : NULL,
		    cmd->has_correlation_id ? cmd->correlation_id : NULL, result, &r->len);
		pr_debug("agent: %s ok", pr__cmd_name(kind));
	}
	/* Remember the first reply of a write, unless the failure was the
	 * agent's own (5xx): then a retry should really be retried. */
	if (pr__cmd_is_write(kind) && cmd->has_request_id && r->payload != NULL
	    && pr_err_status(rc) < 500) {
		remember_reply(batch, cmd, r, now);
	}
	free(cmd);
	return rc == 0 ? DONE : REFUSED;
}

/* ---- batches ---- */

/*
 * Finish a write transaction: build the summaries of the sources ch
 * changed (inside txn, so they show exactly what commits), commit, and only
 * then publish the changed partitions, summaries and events. Consumes txn.
 * Returns the commit's result; nothing is published when it failed.
 */
static int
commit_and_publish(
    struct pr_agent *a, struct pr_txn *txn, const struct pr_changes *ch, size_t ncommands)
{
	struct pr_json **summaries = calloc(ch->nsources + 1, sizeof *summaries);
	int64_t t0;
	size_t i;
	int rc;

	for (i = 0; summaries != NULL && i < ch->nsources; i++) {
		struct pr_source src;

		if (pr__store_source_get(txn, ch->sources[i], &src) == 0) {
			summaries[i] = build_summary(a, txn, &src);
		}
	}
	t0 = pr_time_now();
	/* The durability point: nothing below is published before this. */
	rc = pr__txn_commit(txn);
	a->stats.batches++;
	a->stats.commit_ms_last = (double)(pr_time_now() - t0) / 1000.0;
	if (a->stats.commit_ms_last > a->stats.commit_ms_max) {
		a->stats.commit_ms_max = a->stats.commit_ms_last;
	}
	pr_debug("agent: batch of %zu command%s committed in %.3f ms", ncommands,
	    ncommands == 1 ? "" : "s", a->stats.commit_ms_last);
	if (rc == 0) {
		for (i = 0; i < ch->nparts; i++) {
			publish_partition(a, &ch->parts[i]);
		}
		for (i = 0; summaries != NULL && i < ch->nsources; i++) {
			char *topic = concat(a->cfg->prefix, "/state/", ch->sources[i]);

			if (topic != NULL && summaries[i] != NULL) {
				publish_json(a, topic, summaries[i], 1);
				summaries[i] = NULL;
			}
			free(topic);
		}
		for (i = 0; i < ch->nevents; i++) {
			char *topic = concat(a->cfg->prefix, "/events/", ch->events[i].source);

			if (topic != NULL) {
				publish_json(a, topic, pr__json_event(&ch->events[i], a->epoch), 0);
			}
			free(topic);
		}
	}
	for (i = 0; summaries != NULL && i < ch->nsources; i++) {
		pr__json_free(summaries[i]);
	}
	free(summaries);
	return rc;
}

static void
queue_resyncs(struct pr_agent *a, const struct pr_changes *ch)
{
	if (ch->resync_all) {
		a->rp.all = 1;
		a->rp.source_cursor[0] = '\0';
	}
	for (size_t i = 0; i < ch->nresync; i++) {
		if (a->rp.npending == a->rp.cap_pending) {
			size_t cap = a->rp.cap_pending ? a->rp.cap_pending * 2 : 8;
			void *p = realloc(a->rp.pending, cap * sizeof *a->rp.pending);

			if (p == NULL) {
				pr_error("agent: out of memory; agent/resync of %s dropped",
				    ch->resync[i]);
				break;
			}
			a->rp.pending = p;
			a->rp.cap_pending = cap;
		}
		memcpy(a->rp.pending[a->rp.npending++], ch->resync[i], PR_NAME_MAX + 1);
	}
}

static void
process_batch(struct pr_agent *a, struct pr_msg *msgs, size_t n)
{
	struct reply *replies = calloc(n, sizeof *replies);
	struct pr_changes ch;
	struct pr_txn *batch = NULL;
	int64_t now = pr_time_now();
	size_t i = 0;
	int rc;

	if (replies == NULL) {
		pr_error("agent: out of memory; %zu commands dropped", n);
		return;
	}
	pr__changes_init(&ch);
	rc = pr__txn_begin(a->store, 1, &batch);
	if (rc == 0) {
		for (struct pr_msg *m = msgs; m != NULL; m = m->next, i++) {
			enum outcome o = handle_one(a, batch, m, now, &ch, &replies[i]);

			a->stats.commands++;
			a->stats.refused += o == REFUSED;
			a->stats.replayed += o == REPLAYED;
		}
		rc = commit_and_publish(a, batch, &ch, n);
	}
	if (rc != 0) {
		pr_error("agent: commit of %zu commands failed: %s", n, pr_strerror(rc));
		for (i = 0; i < n; i++) {
			reply_error(&replies[i], rc, NULL);
		}
	}
	for (i = 0; i < n; i++) {
		send_reply(a, &replies[i]);
		reply_release(&replies[i]);
	}
	if (rc == 0) {
		queue_resyncs(a, &ch);
		/* A new lease may run out before the one the worker waits for. */
		for (i = 0; i < ch.nparts; i++) {
			int64_t d = ch.parts[i].state == PR_LOCKED ? ch.parts[i].expires_at : 0;

			if (d != 0 && (a->next_deadline == 0 || d < a->next_deadline)) {
				a->next_deadline = d;
			}
		}
	}
	free(replies);
	pr__changes_release(&ch);
}

/* ---- leases ---- */

#define EXPIRE_BATCH 256

struct due {
	struct pr_partition *items;
	size_t n;
};

static int
collect_due(void *arg, const struct pr_partition *p)
{
	struct due *d = arg;

	d->items[d->n++] = *p;
	return 0;
}

/*
 * Fail the locks whose lease ran out, in batches sharing one commit, and
 * set a->next_deadline to the next lease's deadline (0 = none). Also the
 * first thing after start: a lease that ran out while the agent was down
 * expires here.
 */
static void
expire_due(struct pr_agent *a, int64_t now)
{
	struct due d = { .items = NULL, .n = 0 };
	struct pr_txn *txn = NULL;
	struct pr_changes ch;
	int64_t next = 0;
	int rc;

	if (a->next_deadline == 0 || a->next_deadline > now) {
		return;
	}
	pr__changes_init(&ch);
	d.items = malloc(EXPIRE_BATCH * sizeof *d.items);
	rc = d.items != NULL ? pr__txn_begin(a->store, 1, &txn) : -ENOMEM;
	if (rc == 0) {
		rc = pr__store_leases_due(txn, now, EXPIRE_BATCH, collect_due, &d);
	}
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		char s[PR_TIME_BUFSZ];

		rc = pr__handle_expiry(txn, &d.items[i], now, &ch);
		if (rc == 0) {
			a->stats.leases_expired++;
			pr_info("agent: lease of %s/%s/%s expired (fence %llu)", d.items[i].source,
			    d.items[i].provider, pr_time_format(d.items[i].range.start, s),
			    (unsigned long long)d.items[i].fence);
		} else if (rc == PR_ENOTLOCKED) {
			rc = 0;
		}
	}
	if (rc == 0) {
		rc = commit_and_publish(a, txn, &ch, d.n);
	} else {
		pr__txn_abort(txn);
	}
	if (rc != 0) {
		pr_error("agent: expiring leases failed: %s", pr_strerror(rc));
	}
	pr__changes_release(&ch);
	free(d.items);
	/* The next deadline; one still due (more than a batch) comes round at once. */
	if (pr__txn_begin(a->store, 0, &txn) == 0) {
		if (pr__store_lease_next(txn, &next) != 0) {
			next = 0;
		}
		pr__txn_abort(txn);
	}
	a->next_deadline = rc == 0 ? next : now + 1000000;
}

/* ---- republishing ---- */

static int
republish_part_cb(void *arg, const struct pr_partition *p)
{
	return publish_partition(arg, p) == -ENOTCONN ? -ENOTCONN : 0;
}

static int
first_source_cb(void *arg, const struct pr_source *s)
{
	memcpy(arg, s->name, sizeof s->name);
	return 0;
}

static int
republish_pending(const struct republish *rp)
{
	return rp->all || rp->npending > 0 || rp->in_source;
}

/* One step: the next source's summary, or up to REPUBLISH_STEP of its
 * partitions. Stops republishing when the connection is gone (the next
 * connect starts it again). */
static void
republish_step(struct pr_agent *a)
{
	struct republish *rp = &a->rp;
	struct pr_txn *txn = NULL;
	struct pr_source src;
	char next[PR_CURSOR_MAX];
	int rc = pr__txn_begin(a->store, 0, &txn);

	if (rc != 0) {
		goto fail;
	}
	if (!rp->in_source) {
		char name[PR_NAME_MAX + 1] = "";

		if (rp->npending > 0) {
			memcpy(name, rp->pending[--rp->npending], sizeof name);
		} else if (rp->all) {
			rc = pr__store_source_list(
			    txn, rp->source_cursor, 1, first_source_cb, name, next);
			if (rc != 0) {
				goto fail;
			}
			memcpy(rp->source_cursor, next, sizeof next);
			if (next[0] == '\0') {
				rp->all = 0;
			}
		}
		if (name[0] == '\0' || pr__store_source_get(txn, name, &src) != 0) {
			pr__txn_abort(txn);
			if (!republish_pending(rp)) {
				pr_info("agent: retained state republished");
			}
			return;
		}
		char *topic = concat(a->cfg->prefix, "/state/", src.name);

		if (topic == NULL
		    || publish_json(a, topic, build_summary(a, txn, &src), 1) == -ENOTCONN) {
			free(topic);
			rc = -ENOTCONN;
			goto fail;
		}
		free(topic);
		memcpy(rp->cur, src.name, sizeof rp->cur);
		rp->part_cursor[0] = '\0';
		rp->in_source = 1;
	} else {
		rc = pr__store_source_get(txn, rp->cur, &src);
		if (rc == 0) {
			rc = pr__store_partition_list(
			    txn, &src, rp->part_cursor, REPUBLISH_STEP, republish_part_cb, a, next);
		}
		if (rc != 0) {
			goto fail;
		}
		memcpy(rp->part_cursor, next, sizeof next);
		if (next[0] == '\0') {
			rp->in_source = 0;
		}
	}
	pr__txn_abort(txn);
	if (!republish_pending(rp)) {
		pr_info("agent: retained state republished");
	}
	return;
fail:
	pr__txn_abort(txn);
	if (rc != -ENOTCONN) {
		pr_error("agent: republishing failed: %s", pr_strerror(rc));
	}
	rp->all = 0;
	rp->npending = 0;
	rp->in_source = 0;
}

/* The retained P/agent/stats message, every --stats-interval seconds. */
static void
publish_stats(struct pr_agent *a, int64_t now)
{
	struct pr_store_info info = { 0 };

	if (a->cfg->stats_interval_s == 0
	    || now - a->last_stats < (int64_t)a->cfg->stats_interval_s * INT64_C(1000000)
	    || !pr__transport_is_connected(a->tr)) {
		return;
	}
	a->last_stats = now;
	a->stats.at = now;
	pthread_mutex_lock(&a->mu);
	a->stats.queue = a->qlen;
	pthread_mutex_unlock(&a->mu);
	if (pr__store_info(a->store, &info) == 0) {
		a->stats.store_used_bytes = info.used_bytes;
		a->stats.store_map_bytes = info.map_size;
		a->stats.store_readers = info.readers;
	}
	publish_json(a, a->stats_topic, pr__json_agent_stats(&a->stats), 1);
	a->stats.commit_ms_max = 0; /* the max since the last message */
}

struct prune_ctx {
	struct pr_txn *txn;
	int64_t before;
	size_t keep, removed;
};

static int
prune_source_cb(void *arg, const struct pr_source *src)
{
	struct prune_ctx *c = arg;
	size_t n = 0;
	int rc = pr__store_event_prune(c->txn, src, c->before, c->keep, 10000, &n);

	c->removed += n;
	return rc;
}

/*
 * Once a minute, in one transaction: forget request ids older than
 * --idempotency-ttl, events past --history-max-age or --history-max-events,
 * and deleted partitions whose tombstones have expired.
 */
static void
maintenance(struct pr_agent *a, int64_t now)
{
	const int64_t us = INT64_C(1000000);
	struct prune_ctx c = { .keep = a->cfg->history_max_events };
	size_t ids = 0, tombs = 0;
	char next[PR_CURSOR_MAX];
	int rc;

	if (now - a->last_prune < PRUNE_INTERVAL_US) {
		return;
	}
	a->last_prune = now;
	c.before = now - (int64_t)a->cfg->history_max_age_s * us;
	rc = pr__txn_begin(a->store, 1, &c.txn);
	if (rc != 0) {
		pr_warn("agent: maintenance skipped: %s", pr_strerror(rc));
		return;
	}
	rc = pr__store_idem_prune(c.txn, now - (int64_t)a->cfg->idempotency_ttl_s * us, 10000, &ids);
	if (rc == 0) {
		rc = pr__store_source_list(c.txn, NULL, 0, prune_source_cb, &c, next);
	}
	if (rc == 0) {
		rc = pr__store_tombstone_prune(
		    c.txn, now - (int64_t)a->cfg->tombstone_expiry_s * us, 10000, &tombs);
	}
	rc = rc == 0 ? pr__txn_commit(c.txn) : (pr__txn_abort(c.txn), rc);
	if (rc != 0) {
		pr_warn("agent: maintenance failed: %s", pr_strerror(rc));
	} else if (ids + c.removed + tombs > 0) {
		pr_debug("agent: pruned %zu request ids, %zu events, %zu tombstones", ids,
		    c.removed, tombs);
	}
}

int
pr__agent_run(struct pr_agent *a)
{
	for (;;) {
		struct pr_msg *batch = NULL, **tail = &batch;
		size_t n = 0;
		int connected_event, stopping;

		pthread_mutex_lock(&a->mu);
		/* Idle: sleep until work arrives, the next lease deadline, or at
		 * most a second (maintenance). Deadlines are wall-clock times, as
		 * CLOCK_REALTIME, the condition variable's clock. */
		if (a->qhead == NULL && !a->connected_event && !a->stopping
		    && !republish_pending(&a->rp)) {
			/* Offline, expiry waits for the connect (which wakes us). */
			int64_t next = pr__transport_is_connected(a->tr) ? a->next_deadline : 0;
			int64_t wait = pr__lease_wait_us(next, pr_time_now(), 1000000);

			if (wait > 0) {
				int64_t until = pr_time_now() + wait;
				struct timespec ts = { .tv_sec = (time_t)(until / 1000000),
					.tv_nsec = (long)(until % 1000000) * 1000 };

				pthread_cond_timedwait(&a->cv, &a->mu, &ts);
			}
		}
		while (a->qhead != NULL && n < a->cfg->batch_max) {
			*tail = a->qhead;
			a->qhead = a->qhead->next;
			tail = &(*tail)->next;
			*tail = NULL;
			n++;
			a->qlen--;
		}
		if (a->qhead == NULL) {
			a->qtail = NULL;
		}
		connected_event = a->connected_event;
		a->connected_event = 0;
		stopping = a->stopping && a->qhead == NULL && n == 0;
		pthread_mutex_unlock(&a->mu);

		if (stopping) {
			break;
		}
		if (connected_event) {
			publish_status(a, "online");
			a->rp.all = 1;
			a->rp.source_cursor[0] = '\0';
			a->rp.in_source = 0;
			pr_info("agent: online (epoch %llu); republishing retained state",
			    (unsigned long long)a->epoch);
		}
		if (n > 0) {
			process_batch(a, batch, n);
			while (batch != NULL) {
				struct pr_msg *next = batch->next;

				pr__msg_free(batch);
				batch = next;
			}
		} else if (republish_pending(&a->rp) && pr__transport_is_connected(a->tr)) {
			republish_step(a);
		}
		/* Expiry waits for the broker, so that its events reach subscribers
		 * (a lease past its deadline is refused meanwhile: never ready). */
		if (pr__transport_is_connected(a->tr)) {
			expire_due(a, pr_time_now());
		}
		maintenance(a, pr_time_now());
		publish_stats(a, pr_time_now());
	}
	if (pr__transport_is_connected(a->tr)) {
		publish_status(a, "offline");
		pr__transport_flush(a->tr, 2000);
	}
	pr_info("agent: stopped");
	return 0;
}

void
pr__agent_stop(struct pr_agent *a)
{
	pthread_mutex_lock(&a->mu);
	a->stopping = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

int
pr__agent_open(const struct pr_config *cfg, struct pr_agent **out)
{
	struct pr_store_opts sopts = { .map_size = cfg->map_size_mb * 1024 * 1024 };
	struct pr_transport_opts topts = { 0 };
	struct pr_agent *a = calloc(1, sizeof *a);
	char *password = NULL;
	const char *subs[1];
	int rc;

	*out = NULL;
	if (a == NULL) {
		return -ENOMEM;
	}
	a->cfg = cfg;
	a->hopts.list_default = 100;
	a->hopts.blockers_max = cfg->summary_max;
	a->hopts.lease.default_s = cfg->lease_default_s;
	a->hopts.lease.max_s = cfg->lease_max_s;
	/* Look for leases that ran out while the agent was down at once. */
	a->next_deadline = 1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->cmd_filter = concat(cfg->prefix, "/cmd/+/+", "");
	a->cmd_prefix = concat(cfg->prefix, "/cmd/", "");
	a->status_topic = concat(cfg->prefix, "/agent/status", "");
	a->stats_topic = concat(cfg->prefix, "/agent/stats", "");
	if (a->cmd_filter == NULL || a->cmd_prefix == NULL || a->status_topic == NULL
	    || a->stats_topic == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = pr__store_open(cfg->data_dir, &sopts, &a->store);
	if (rc != 0) {
		pr_error("agent: cannot open the store in %s: %s", cfg->data_dir, pr_strerror(rc));
		goto fail;
	}
	rc = pr__store_next_epoch(a->store, &a->epoch);
	if (rc != 0) {
		pr_error("agent: cannot raise the epoch: %s", pr_strerror(rc));
		goto fail;
	}
	a->stats.agent_id = cfg->client_id;
	a->stats.epoch = a->epoch;
	a->stats.started_at = pr_time_now();
	{
		struct pr_json *w
		    = pr__json_agent_status("offline", cfg->client_id, a->epoch, pr_time_now());

		a->will_payload = w != NULL ? pr__json_dump(w, NULL) : NULL;
		pr__json_free(w);
	}
	if (cfg->password_file != NULL) {
		password = pr__config_read_secret(cfg->password_file);
		if (password == NULL) {
			pr_error("agent: cannot read --password-file %s", cfg->password_file);
			rc = PR_EFIELD;
			goto fail;
		}
	}
	subs[0] = a->cmd_filter;
	topts.nodelay_all = 1;
	topts.log = pr__log_line;
	topts.uri = cfg->broker;
	topts.client_id = cfg->client_id;
	topts.username = cfg->username;
	topts.password = password;
	topts.cafile = cfg->cafile;
	topts.certfile = cfg->cert;
	topts.keyfile = cfg->key;
	topts.mqtt_version = cfg->mqtt_version;
	topts.clean_start = 0;
	topts.session_expiry_s = cfg->session_expiry_s;
	topts.max_payload = cfg->max_payload;
	topts.will_topic = a->status_topic;
	topts.will_payload = a->will_payload;
	topts.will_retained = 1;
	topts.subscriptions = subs;
	topts.nsubscriptions = 1;
	topts.on_message = on_message;
	topts.on_connected = on_connected;
	topts.arg = a;
	rc = pr__transport_open(&topts, &a->tr);
	if (password != NULL) {
		memset(password, 0, strlen(password));
		free(password);
	}
	if (rc != 0) {
		goto fail;
	}
	pr_info("agent: partregd %s, store %s, epoch %llu, broker %s, prefix %s", PR_VERSION_STRING,
	    cfg->data_dir, (unsigned long long)a->epoch, cfg->broker, cfg->prefix);
	*out = a;
	return 0;
fail:
	pr__agent_close(a);
	return rc;
}

void
pr__agent_close(struct pr_agent *a)
{
	if (a == NULL) {
		return;
	}
	pr__transport_close(a->tr);
	while (a->qhead != NULL) {
		struct pr_msg *next = a->qhead->next;

		pr__msg_free(a->qhead);
		a->qhead = next;
	}
	pr__store_close(a->store);
	free(a->cmd_filter);
	free(a->cmd_prefix);
	free(a->status_topic);
	free(a->stats_topic);
	free(a->will_payload);
	free(a->rp.pending);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}
