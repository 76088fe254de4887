/* SPDX-License-Identifier: MIT */
/*
 * See publisher.h. Every message goes out at QoS 1 through the transport,
 * which waits at most PUBLISH_TIMEOUT_MS for room in the in-flight window.
 *
 * A deleted partition is published as a tombstone (state "deleted") that
 * the broker drops after the rest of --tombstone-expiry, not as an empty
 * retained message: a bridge that is down while an empty message passes
 * never learns of the deletion.
 *
 * Republishing walks the sources by cursor, one summary or at most
 * REPUBLISH_STEP partitions per step, so a large registry is republished
 * while commands are still served between the steps.
 */
#include "publisher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "log.h"
#include "names.h"
#include "strfmt.h"

#define REPUBLISH_STEP     512
#define PUBLISH_TIMEOUT_MS 10000
#define EVENTS_PER_MESSAGE 256
#define TOPIC_MAX          1024 /* the longest: P/state/<source>/partitions/<start>/<end>/<provider> */

struct republish {
	int all;                           /* walking every source */
	char source_cursor[PR_CURSOR_MAX]; /* next source when all */
	char (*pending)[PR_NAME_MAX + 1];  /* single sources asked by agent/resync */
	size_t npending, cap_pending;
	int in_source; /* partitions of cur being published */
	char cur[PR_NAME_MAX + 1];
	char part_cursor[PR_CURSOR_MAX];
};

struct pr_publisher {
	const struct pr_config *cfg;
	struct pr_store *store;
	struct pr_transport *tr;
	uint64_t epoch;
	struct pr_agent_identity id; /* for P/agent/status */
	char *status_topic;          /* P/agent/status, also the Last Will's */
	char *stats_topic;           /* P/agent/stats */
	char *will_payload;
	struct republish rp;
};

struct pr_summaries {
	struct pr_json **json; /* one per changed source; NULL once published */
	size_t n;
};

/* ---- replies ---- */

int
pr__reply_address(
    struct pr_reply *r, const struct pr_msg *m, const struct pr_cmd *cmd, const char *prefix)
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
	if (pr__reply_topic_check(topic, strlen(topic), prefix) != 0) {
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

void
pr__reply_error(struct pr_reply *r, int err, const char *message)
{
	free(r->payload);
	r->payload = pr__reply_encode(err, message != NULL && message[0] != '\0' ? message : NULL,
	    r->request_id[0] != '\0' ? r->request_id : NULL,
	    r->correlation_id[0] != '\0' ? r->correlation_id : NULL, NULL, &r->len);
}

void
pr__reply_release(struct pr_reply *r)
{
	free(r->topic);
	free(r->correlation);
	free(r->payload);
	memset(r, 0, sizeof *r);
}

/* ---- the publisher ---- */

int
pr__publisher_new(const struct pr_config *cfg, struct pr_store *st,
    const struct pr_agent_identity *id, struct pr_publisher **out)
{
	struct pr_publisher *p = calloc(1, sizeof *p);
	struct pr_json *will;

	*out = NULL;
	if (p == NULL) {
		return -ENOMEM;
	}
	p->cfg = cfg;
	p->store = st;
	p->epoch = id->epoch;
	p->id = *id;
	p->status_topic = pr__strfmt("%s/agent/status", cfg->prefix);
	p->stats_topic = pr__strfmt("%s/agent/stats", cfg->prefix);
	will = pr__json_agent_status("offline", &p->id, pr_time_now(), 1);
	p->will_payload = will != NULL ? pr__json_dump(will, NULL) : NULL;
	pr__json_free(will);
	if (p->status_topic == NULL || p->stats_topic == NULL) {
		pr__publisher_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void
pr__publisher_free(struct pr_publisher *p)
{
	if (p == NULL) {
		return;
	}
	free(p->status_topic);
	free(p->stats_topic);
	free(p->will_payload);
	free(p->rp.pending);
	free(p);
}

const char *
pr__publisher_will_topic(const struct pr_publisher *p)
{
	return p->status_topic;
}

const char *
pr__publisher_will_payload(const struct pr_publisher *p)
{
	return p->will_payload;
}

void
pr__publisher_attach(struct pr_publisher *p, struct pr_transport *tr)
{
	p->tr = tr;
}

void
pr__publisher_reply(struct pr_publisher *p, const struct pr_reply *r)
{
	struct pr_pubprops props = { 0 };
	int rc;

	if (r->topic == NULL || r->payload == NULL) {
		return;
	}
	props.correlation = r->correlation;
	props.correlation_len = r->correlation_len;
	rc = pr__transport_publish(
	    p->tr, r->topic, r->payload, r->len, 1, 0, &props, PUBLISH_TIMEOUT_MS);
	if (rc != 0) {
		pr_warn("agent: reply to %s not sent: %s (the client will retry)", r->topic,
		    pr_strerror(rc));
	}
}

/* Publish j (consumed) on topic; failures are logged, and returned only so
 * that republishing can stop when the connection is gone. */
static int
publish_json_expiring(
    struct pr_publisher *p, const char *topic, struct pr_json *j, int retained, uint32_t expiry_s)
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
	rc = pr__transport_publish(
	    p->tr, topic, text, len, 1, retained, &props, PUBLISH_TIMEOUT_MS);
	if (rc != 0 && rc != -ENOTCONN) {
		pr_warn("agent: publish to %s failed: %s", topic, pr_strerror(rc));
	}
	free(text);
	return rc;
}

static int
publish_json(struct pr_publisher *p, const char *topic, struct pr_json *j, int retained)
{
	return publish_json_expiring(p, topic, j, retained, 0);
}

void
pr__publisher_set_epoch(struct pr_publisher *p, uint64_t epoch)
{
	p->epoch = epoch;
	p->id.epoch = epoch;
}

void
pr__publisher_status(struct pr_publisher *p, const char *status)
{
	publish_json(
	    p, p->status_topic, pr__json_agent_status(status, &p->id, pr_time_now(), 0), 1);
}

void
pr__publisher_stats(struct pr_publisher *p, const struct pr_agent_stats *st)
{
	publish_json(p, p->stats_topic, pr__json_agent_stats(st), 1);
}

/*
 * A partition's retained state. A deleted partition's (a tombstone, see
 * above) lives --tombstone-expiry, a ready one's --ready-expiry (0: for
 * ever), counted from when it entered the state; once that has passed the
 * broker has dropped it and nothing is published. Pending, locked and failed
 * ones never expire.
 */
static int
publish_partition(struct pr_publisher *p, const struct pr_partition *part)
{
	char s[PR_TIME_BUFSZ], e[PR_TIME_BUFSZ];
	char topic[TOPIC_MAX];
	uint32_t lives = part->state == PR_DELETED ? p->cfg->tombstone_expiry_s
	    : part->state == PR_READY              ? p->cfg->ready_expiry_s
	                                           : 0;
	uint32_t expiry = 0;

	if (lives != 0) {
		int64_t left = (int64_t)lives - (pr_time_now() - part->since) / INT64_C(1000000);

		if (left <= 0) {
			return 0;
		}
		expiry = left > (int64_t)lives ? lives : (uint32_t)left;
	}

	snprintf(topic, sizeof topic, "%s/state/%s/partitions/%s/%s/%s", p->cfg->prefix,
	    part->source, pr_time_format(part->range.start, s), pr_time_format(part->range.end, e),
	    part->provider);
	return publish_json_expiring(p, topic, pr__json_partition_state(part, p->epoch), 1, expiry);
}

/* ---- summaries ---- */

/* A growing array of n items of size sz, at most max. */
struct vec {
	void *v;
	size_t n, cap, sz, max;
	int truncated;
};

static void *
vec_push(struct vec *a)
{
	if (a->n == a->max) {
		a->truncated = 1;
		return NULL;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		void *q = realloc(a->v, cap * a->sz);

		if (q == NULL) {
			return NULL;
		}
		a->v = q;
		a->cap = cap;
	}
	return (char *)a->v + a->n++ * a->sz;
}

static int
summary_range(void *arg, struct pr_range r)
{
	struct pr_range *slot = vec_push(arg);

	if (slot == NULL) {
		return ((struct vec *)arg)->truncated ? 1 : -ENOMEM;
	}
	*slot = r;
	return 0;
}

struct runs_ctx {
	struct vec runs;
	struct pr_txn *txn;
	const struct pr_source *src;
};

/* A run of one partition carries that partition's since, lease and reason. */
static int
summary_run(void *arg, const struct pr_run *r)
{
	struct runs_ctx *c = arg;
	struct pr_run *slot = vec_push(&c->runs);
	struct pr_partition p;
	int rc;

	if (slot == NULL) {
		return c->runs.truncated ? 1 : -ENOMEM;
	}
	*slot = *r;
	if (r->count == 1) {
		if ((rc = pr__store_partition_get(c->txn, c->src, r->provider, r->range, &p))
		    != 0) {
			return rc;
		}
		slot->since = p.since;
		slot->expires_at = p.state == PR_LOCKED ? p.expires_at : 0;
		memcpy(slot->reason, p.reason, sizeof slot->reason);
	}
	return 0;
}

/* Runs in time order (the store gives them by state and provider). */
static int
run_cmp(const void *a, const void *b)
{
	const struct pr_run *x = a, *y = b;
	int c;

	if (x->range.start != y->range.start) {
		return x->range.start < y->range.start ? -1 : 1;
	}
	if ((c = strcmp(x->provider, y->provider)) != 0) {
		return c;
	}
	return (int)x->state - (int)y->state;
}

/* The summary of src as of txn: coalesced ready ranges and blocker runs,
 * read from their indexes in O(ranges + runs), at most summary_max of each
 * (then "truncated"). NULL on failure (logged). */
static struct pr_json *
build_summary(struct pr_publisher *p, struct pr_txn *txn, const struct pr_source *src)
{
	struct pr_range all = { PR_TIME_MIN, PR_TIME_MAX };
	struct vec ready = { .sz = sizeof(struct pr_range), .max = p->cfg->summary_max };
	struct runs_ctx c
	    = { { .sz = sizeof(struct pr_run), .max = p->cfg->summary_max }, txn, src };
	struct pr_json *j = NULL;
	int rc;

	rc = pr__store_ready_each(txn, src, all, summary_range, &ready);
	if (rc == 0 || rc == 1) {
		rc = pr__store_runs_each(txn, src, summary_run, &c);
	}
	if (rc == 0 || rc == 1) {
		rc = 0;
		if (c.runs.n > 1) {
			qsort(c.runs.v, c.runs.n, sizeof(struct pr_run), run_cmp);
		}
		j = pr__json_summary(src, p->epoch, ready.v, ready.n, c.runs.v, c.runs.n,
		    ready.truncated || c.runs.truncated);
	}
	if (rc != 0) {
		pr_error("agent: summary of source %s failed: %s", src->name, pr_strerror(rc));
	}
	free(ready.v);
	free(c.runs.v);
	return j;
}

struct pr_summaries *
pr__publisher_summarize(struct pr_publisher *p, struct pr_txn *txn, const struct pr_changes *ch)
{
	struct pr_summaries *s = malloc(sizeof *s);

	if (s == NULL) {
		return NULL;
	}
	s->n = ch->nsources;
	s->json = calloc(s->n + 1, sizeof *s->json);
	if (s->json == NULL) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct pr_source src;

		if (pr__store_source_get(txn, ch->sources[i], &src) == 0) {
			s->json[i] = build_summary(p, txn, &src);
		}
	}
	return s;
}

void
pr__summaries_free(struct pr_summaries *s)
{
	if (s == NULL) {
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		pr__json_free(s->json[i]);
	}
	free(s->json);
	free(s);
}

/* The events of one source in ch, from index first on, as messages
 * {v, source, epoch, events: [...]} on P/events/<source> of at most
 * EVENTS_PER_MESSAGE events each (a session/abort of thousands of locks
 * stays within any broker's message size). */
static void
publish_events(struct pr_publisher *p, const struct pr_changes *ch, size_t first)
{
	const char *src = ch->events[first].source;
	struct pr_json *batch = NULL;
	char topic[TOPIC_MAX];
	size_t n = 0;

	snprintf(topic, sizeof topic, "%s/events/%s", p->cfg->prefix, src);
	for (size_t i = first; i < ch->nevents; i++) {
		if (strcmp(ch->events[i].source, src) != 0) {
			continue;
		}
		if (batch == NULL && (batch = pr__json_array()) == NULL) {
			pr_error("agent: out of memory encoding the events of %s", src);
			return;
		}
		pr__json_append(batch, pr__json_event(&ch->events[i], p->epoch));
		if (++n == EVENTS_PER_MESSAGE) {
			publish_json(p, topic, pr__json_events(src, p->epoch, batch), 0);
			batch = NULL;
			n = 0;
		}
	}
	if (batch != NULL) {
		publish_json(p, topic, pr__json_events(src, p->epoch, batch), 0);
	}
}

void
pr__publisher_changes(struct pr_publisher *p, const struct pr_changes *ch, struct pr_summaries *s)
{
	char topic[TOPIC_MAX];
	size_t i, j;

	for (i = 0; i < ch->nparts; i++) {
		publish_partition(p, &ch->parts[i]);
	}
	for (i = 0; s != NULL && i < s->n; i++) {
		if (s->json[i] != NULL) {
			snprintf(
			    topic, sizeof topic, "%s/state/%s", p->cfg->prefix, ch->sources[i]);
			publish_json(p, topic, s->json[i], 1);
			s->json[i] = NULL;
		}
	}
	/* One message per source per batch, at its first event. */
	for (i = 0; i < ch->nevents; i++) {
		for (j = 0; j < i && strcmp(ch->events[j].source, ch->events[i].source) != 0; j++) {
		}
		if (j == i) {
			publish_events(p, ch, i);
		}
	}
}

/* ---- republishing ---- */

void
pr__publisher_republish_all(struct pr_publisher *p)
{
	p->rp.all = 1;
	p->rp.source_cursor[0] = '\0';
	p->rp.in_source = 0;
}

void
pr__publisher_resync(struct pr_publisher *p, const struct pr_changes *ch)
{
	struct republish *rp = &p->rp;

	if (ch->resync_all) {
		rp->all = 1;
		rp->source_cursor[0] = '\0';
	}
	for (size_t i = 0; i < ch->nresync; i++) {
		if (rp->npending == rp->cap_pending) {
			size_t cap = rp->cap_pending ? rp->cap_pending * 2 : 8;
			void *q = realloc(rp->pending, cap * sizeof *rp->pending);

			if (q == NULL) {
				pr_error("agent: out of memory; agent/resync of %s dropped",
				    ch->resync[i]);
				break;
			}
			rp->pending = q;
			rp->cap_pending = cap;
		}
		memcpy(rp->pending[rp->npending++], ch->resync[i], PR_NAME_MAX + 1);
	}
}

int
pr__publisher_republishing(const struct pr_publisher *p)
{
	return p->rp.all || p->rp.npending > 0 || p->rp.in_source;
}

static int
republish_part_cb(void *arg, const struct pr_partition *part)
{
	return publish_partition(arg, part) == -ENOTCONN ? -ENOTCONN : 0;
}

static int
first_source_cb(void *arg, const struct pr_source *s)
{
	memcpy(arg, s->name, sizeof s->name);
	return 0;
}

void
pr__publisher_republish_step(struct pr_publisher *p)
{
	struct republish *rp = &p->rp;
	struct pr_txn *txn = NULL;
	struct pr_source src;
	char next[PR_CURSOR_MAX];
	int rc = pr__txn_begin(p->store, 0, &txn);

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
			if (!pr__publisher_republishing(p)) {
				pr_info("agent: retained state republished");
			}
			return;
		}
		char topic[TOPIC_MAX];

		snprintf(topic, sizeof topic, "%s/state/%s", p->cfg->prefix, src.name);
		if (publish_json(p, topic, build_summary(p, txn, &src), 1) == -ENOTCONN) {
			rc = -ENOTCONN;
			goto fail;
		}
		memcpy(rp->cur, src.name, sizeof rp->cur);
		rp->part_cursor[0] = '\0';
		rp->in_source = 1;
	} else {
		rc = pr__store_source_get(txn, rp->cur, &src);
		if (rc == 0) {
			rc = pr__store_partition_list(
			    txn, &src, rp->part_cursor, REPUBLISH_STEP, republish_part_cb, p, next);
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
	if (!pr__publisher_republishing(p)) {
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
