/* SPDX-License-Identifier: MIT */
/*
 * The mirror (mirror.h). Sources sit in an array sorted by name, each with
 * its partitions in an array sorted by (start, provider, end): lookups are
 * binary searches and an update moves at most one array's tail, which is
 * fast enough for the receive thread at the sizes a retained topic per
 * partition allows (README: "Retained topics and broker memory"). A hash
 * table was the alternative; sorted arrays also give the listing order for
 * free.
 *
 * What always holds: every string here is owned by the mirror and only
 * copies leave it; a partition entry's key (start, end, provider) is its
 * topic's, so an empty retained message finds what to drop.
 */
#include "mirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "buf.h"
#include "log.h"

/* A watcher that falls this far behind is dropped (and reconnects). */
#define WATCH_MAX_BYTES (8u << 20)

struct mpart {
	struct pr_range range;
	char *provider;
	enum pr_pstate state;
	uint64_t seq, epoch;
	int64_t since;
	char *json;         /* the retained message, verbatim */
	char *json_noepoch; /* as a reply lists it: without "epoch" */
};

struct msource {
	char *name;
	char *summary; /* raw JSON; NULL = none */
	struct pr_summary sum;
	int parsed; /* sum is valid */
	uint64_t seq, epoch;
	struct mpart *parts;
	size_t nparts, cap;
};

struct pr_http_watch {
	struct pr_http_watch *next;
	struct pr_http_buf q;
	size_t off; /* read position in q */
	int dropped;
};

struct pr_http_mirror {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *prefix;
	size_t prefix_len;
	struct msource **src;
	size_t nsrc, capsrc;
	char *status, *stats;
	struct pr_http_agent agent;
	/* The store and epoch of the last agent status: another store, or a
	 * lower epoch (a store restored from a backup), starts the (epoch, seq)
	 * order again. */
	char store[64];
	uint64_t epoch;
	struct pr_http_watch *watchers;
	size_t nwatchers;
	int stopping;
};

static const char *const state_names[] = { "pending", "locked", "ready", "failed", "deleted" };

static int
state_parse(const char *s, enum pr_pstate *out)
{
	for (int i = 0; i < 5; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum pr_pstate)i;
			return 0;
		}
	}
	return -1;
}

int
pr_http_mirror_new(const char *prefix, struct pr_http_mirror **out)
{
	struct pr_http_mirror *m = calloc(1, sizeof *m);

	*out = NULL;
	if (m == NULL || (m->prefix = strdup(prefix)) == NULL) {
		free(m);
		return -ENOMEM;
	}
	m->prefix_len = strlen(prefix);
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	*out = m;
	return 0;
}

static void
part_release(struct mpart *p)
{
	free(p->provider);
	free(p->json);
	free(p->json_noepoch);
}

static void
source_free(struct msource *s)
{
	for (size_t i = 0; i < s->nparts; i++) {
		part_release(&s->parts[i]);
	}
	free(s->parts);
	pr_summary_release(&s->sum);
	free(s->summary);
	free(s->name);
	free(s);
}

void
pr_http_mirror_free(struct pr_http_mirror *m)
{
	if (m == NULL) {
		return;
	}
	for (size_t i = 0; i < m->nsrc; i++) {
		source_free(m->src[i]);
	}
	while (m->watchers != NULL) {
		struct pr_http_watch *w = m->watchers;

		m->watchers = w->next;
		pr_http_buf_release(&w->q);
		free(w);
	}
	free(m->src);
	free(m->status);
	free(m->stats);
	free(m->prefix);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ---- lookups (mutex held) ---- */

/* Index of name in m->src, or -(insertion point) - 1. */
static long
source_find(const struct pr_http_mirror *m, const char *name)
{
	size_t lo = 0, hi = m->nsrc;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->src[mid]->name, name);

		if (c == 0) {
			return (long)mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -(long)lo - 1;
}

static struct msource *
source_get(struct pr_http_mirror *m, const char *name, int create)
{
	long i = source_find(m, name);
	struct msource *s;
	size_t at;

	if (i >= 0) {
		return m->src[i];
	}
	if (!create) {
		return NULL;
	}
	at = (size_t)(-i - 1);
	if (m->nsrc == m->capsrc) {
		size_t cap = m->capsrc != 0 ? 2 * m->capsrc : 16;
		struct msource **a = realloc(m->src, cap * sizeof *a);

		if (a == NULL) {
			return NULL;
		}
		m->src = a;
		m->capsrc = cap;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL || (s->name = strdup(name)) == NULL) {
		free(s);
		return NULL;
	}
	memmove(&m->src[at + 1], &m->src[at], (m->nsrc - at) * sizeof *m->src);
	m->src[at] = s;
	m->nsrc++;
	return s;
}

static int
part_cmp(struct pr_range r, const char *provider, const struct mpart *p)
{
	int c;

	if (r.start != p->range.start) {
		return r.start < p->range.start ? -1 : 1;
	}
	c = strcmp(provider, p->provider);
	if (c != 0) {
		return c;
	}
	if (r.end != p->range.end) {
		return r.end < p->range.end ? -1 : 1;
	}
	return 0;
}

static long
part_find(const struct msource *s, struct pr_range r, const char *provider)
{
	size_t lo = 0, hi = s->nparts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = part_cmp(r, provider, &s->parts[mid]);

		if (c == 0) {
			return (long)mid;
		}
		if (c > 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -(long)lo - 1;
}

/* Drop a source that holds nothing any more. */
static void
source_gc(struct pr_http_mirror *m, struct msource *s)
{
	long i;

	if (s->summary != NULL || s->nparts > 0) {
		return;
	}
	i = source_find(m, s->name);
	if (i >= 0) {
		memmove(&m->src[i], &m->src[i + 1], (m->nsrc - (size_t)i - 1) * sizeof *m->src);
		m->nsrc--;
		source_free(s);
	}
}

/* ---- watchers (mutex held) ---- */

/* "event: NAME\ndata: <json>\n\n", one data line per line of json (a line
 * ends at CR, LF or CRLF, as for an event stream's reader: JSON may hold
 * any of them as whitespace). */
static void
event_text(struct pr_http_buf *b, const char *name, const char *json)
{
	pr_http_buf_printf(b, "event: %s\n", name);
	while (1) {
		size_t n = strcspn(json, "\r\n");

		pr_http_buf_puts(b, "data: ");
		pr_http_buf_add(b, json, n);
		pr_http_buf_puts(b, "\n");
		if (json[n] == '\0') {
			break;
		}
		json += n + (json[n] == '\r' && json[n + 1] == '\n' ? 2 : 1);
	}
	pr_http_buf_puts(b, "\n");
}

static void
broadcast(struct pr_http_mirror *m, const char *name, const char *json)
{
	for (struct pr_http_watch *w = m->watchers; w != NULL; w = w->next) {
		if (w->dropped) {
			continue;
		}
		event_text(&w->q, name, json);
		if (w->q.oom || w->q.len - w->off > WATCH_MAX_BYTES) {
			w->dropped = 1;
		}
	}
	if (m->watchers != NULL) {
		pthread_cond_broadcast(&m->cv);
	}
}

/*
 * Drop s's partition i and tell the watchers: a "partition" event with the
 * partition's source, provider, start and end and no state (its retained
 * message was cleared, or has expired on the broker).
 */
static void
part_remove(struct pr_http_mirror *m, struct msource *s, size_t i)
{
	struct mpart *p = &s->parts[i];
	char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
	struct json_object *o = json_object_new_object();

	if (o != NULL && m->watchers != NULL) {
		json_object_object_add(o, "source", json_object_new_string(s->name));
		json_object_object_add(o, "provider", json_object_new_string(p->provider));
		json_object_object_add(
		    o, "start", json_object_new_string(pr_time_format(p->range.start, a)));
		json_object_object_add(
		    o, "end", json_object_new_string(pr_time_format(p->range.end, b)));
		broadcast(m, "partition",
		    json_object_to_json_string_ext(
		        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(o);
	part_release(p);
	memmove(p, p + 1, (s->nparts - i - 1) * sizeof *p);
	s->nparts--;
	source_gc(m, s);
}

/* ---- messages (receive thread) ---- */

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)) {
		return json_object_get_string(v);
	}
	return NULL;
}

static uint64_t
get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		return n > 0 ? (uint64_t)n : 0;
	}
	return 0;
}

static struct json_object *
parse_object(const char *payload, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (tok == NULL) {
		return NULL;
	}
	o = json_tokener_parse_ex(tok, payload, (int)len);
	if (o != NULL
	    && (json_tokener_get_error(tok) != json_tokener_success
	        || json_tokener_get_parse_end(tok) != len
	        || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static char *
copy_payload(const char *payload, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, payload, len);
		s[len] = '\0';
	}
	return s;
}

static int
stale(uint64_t epoch, uint64_t seq, uint64_t have_epoch, uint64_t have_seq)
{
	return epoch < have_epoch || (epoch == have_epoch && seq < have_seq);
}

static void
on_summary(struct pr_http_mirror *m, const char *source, const char *payload, size_t len)
{
	struct msource *s = source_get(m, source, len > 0);
	struct pr_summary sum;
	char *copy;

	if (s == NULL) {
		return;
	}
	if (len == 0) {
		pr_summary_release(&s->sum);
		free(s->summary);
		s->summary = NULL;
		s->parsed = 0;
		source_gc(m, s);
		return;
	}
	if (pr_summary_parse(payload, len, &sum) == 0) {
		if (s->summary != NULL && stale(sum.epoch, sum.seq, s->epoch, s->seq)) {
			pr_summary_release(&sum);
			return;
		}
	} else {
		/* A format this build cannot read: kept for listing, never used
		 * to decide readiness (the agent is asked). Not JSON at all: the
		 * listings and the streams would stop being JSON; ignored. */
		struct json_object *o = parse_object(payload, len);

		if (o == NULL) {
			source_gc(m, s);
			return;
		}
		json_object_put(o);
		memset(&sum, 0, sizeof sum);
	}
	copy = copy_payload(payload, len);
	if (copy == NULL) {
		pr_summary_release(&sum);
		return;
	}
	pr_summary_release(&s->sum);
	free(s->summary);
	s->summary = copy;
	s->parsed = sum.source[0] != '\0';
	s->sum = sum;
	s->seq = sum.seq;
	s->epoch = sum.epoch;
	broadcast(m, "summary", copy);
}

/* state/<source>/partitions/<start>/<end>/<provider> */
static void
on_partition(
    struct pr_http_mirror *m, const char *source, const char *rest, const char *payload, size_t len)
{
	const char *e1 = strchr(rest, '/'), *e2 = e1 != NULL ? strchr(e1 + 1, '/') : NULL;
	struct pr_range r;
	struct msource *s;
	struct json_object *o, *plain;
	struct mpart p = { 0 };
	const char *state, *since;
	long i;

	if (e1 == NULL || e2 == NULL || e2[1] == '\0'
	    || pr_time_parse(rest, (size_t)(e1 - rest), &r.start) != 0
	    || pr_time_parse(e1 + 1, (size_t)(e2 - e1 - 1), &r.end) != 0) {
		return;
	}
	if (len == 0) {
		s = source_get(m, source, 0);
		if (s != NULL && (i = part_find(s, r, e2 + 1)) >= 0) {
			part_remove(m, s, (size_t)i);
		}
		return;
	}
	/* Checked before the source is looked up: an ignored message makes
	 * up no source. */
	o = parse_object(payload, len);
	state = o != NULL ? get_str(o, "state") : NULL;
	since = o != NULL ? get_str(o, "since") : NULL;
	if (state == NULL || state_parse(state, &p.state) != 0) {
		json_object_put(o);
		return;
	}
	s = source_get(m, source, 1);
	if (s == NULL) {
		json_object_put(o);
		return;
	}
	i = part_find(s, r, e2 + 1);
	p.range = r;
	p.seq = get_u64(o, "seq");
	p.epoch = get_u64(o, "epoch");
	if (since != NULL) {
		pr_time_parse(since, strlen(since), &p.since);
	}
	if (i >= 0 && stale(p.epoch, p.seq, s->parts[i].epoch, s->parts[i].seq)) {
		json_object_put(o);
		return;
	}
	/* The same object without epoch: a blocker as replies list it. */
	plain = o;
	json_object_object_del(plain, "epoch");
	p.json = copy_payload(payload, len);
	p.json_noepoch = strdup(json_object_to_json_string_ext(
	    plain, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	p.provider = strdup(e2 + 1);
	json_object_put(o);
	if (p.json == NULL || p.json_noepoch == NULL || p.provider == NULL) {
		part_release(&p);
		source_gc(m, s);
		return;
	}
	if (i >= 0) {
		part_release(&s->parts[i]);
		s->parts[i] = p;
	} else {
		size_t at = (size_t)(-i - 1);

		if (s->nparts == s->cap) {
			size_t cap = s->cap != 0 ? 2 * s->cap : 8;
			struct mpart *a = realloc(s->parts, cap * sizeof *a);

			if (a == NULL) {
				part_release(&p);
				source_gc(m, s);
				return;
			}
			s->parts = a;
			s->cap = cap;
		}
		memmove(&s->parts[at + 1], &s->parts[at], (s->nparts - at) * sizeof *s->parts);
		s->parts[at] = p;
		s->nparts++;
	}
	broadcast(m, "partition", p.json);
}

/*
 * An agent status naming another store than the last one, or a lower epoch
 * of the same store (restored from a backup), begins a new (epoch, seq)
 * order: what the mirror holds is forgotten as a measure of staleness (not
 * as state: the broker still retains it, and the new agent republishes its
 * own over it, after this status on the same connection), so that the new
 * agent's messages are taken even though their epoch is lower.
 */
static void
new_store(struct pr_http_mirror *m, const char *store, uint64_t epoch)
{
	if (store == NULL) {
		return;
	}
	if (m->store[0] != '\0' && (strcmp(store, m->store) != 0 || epoch < m->epoch)) {
		pr_info("http: the agent's store is another (%s, epoch %llu; was %s, epoch %llu): "
		        "taking its state whatever its epoch",
		    store, (unsigned long long)epoch, m->store, (unsigned long long)m->epoch);
		for (size_t k = 0; k < m->nsrc; k++) {
			struct msource *s = m->src[k];

			s->epoch = s->seq = 0;
			for (size_t i = 0; i < s->nparts; i++) {
				s->parts[i].epoch = s->parts[i].seq = 0;
			}
		}
	}
	snprintf(m->store, sizeof m->store, "%s", store);
	m->epoch = epoch;
}

static void
on_status(struct pr_http_mirror *m, const char *payload, size_t len)
{
	struct json_object *o = len > 0 ? parse_object(payload, len) : NULL;
	struct json_object *lost;
	const char *v;
	char *copy = len > 0 ? copy_payload(payload, len) : NULL;
	int was_online = m->agent.known && m->agent.online;

	if (len > 0 && (o == NULL || copy == NULL)) {
		/* Not a JSON object: ignored, the last status stands (a listing
		 * embeds it). */
		json_object_put(o);
		free(copy);
		return;
	}
	free(m->status);
	m->status = copy;
	memset(&m->agent, 0, sizeof m->agent);
	if (o != NULL && copy != NULL) {
		new_store(m, get_str(o, "store"), get_u64(o, "epoch"));
		m->agent.known = 1;
		v = get_str(o, "status");
		m->agent.online = v != NULL && strcmp(v, "online") == 0;
		m->agent.lost
		    = json_object_object_get_ex(o, "lost", &lost) && json_object_get_boolean(lost);
		if (was_online && m->agent.lost) {
			/* Seen going offline by its Last Will, whose own at is when
			 * the lost connection began. */
			char now[PR_TIME_BUFSZ];

			snprintf(m->agent.seen, sizeof m->agent.seen, "%s",
			    pr_time_format(pr_time_now(), now));
		}
		if ((v = get_str(o, "at")) != NULL) {
			snprintf(m->agent.at, sizeof m->agent.at, "%s", v);
		}
		if ((v = get_str(o, "agent_id")) != NULL) {
			snprintf(m->agent.agent_id, sizeof m->agent.agent_id, "%s", v);
		}
		if ((v = get_str(o, "version")) != NULL) {
			snprintf(m->agent.version, sizeof m->agent.version, "%s", v);
		}
		broadcast(m, "status", copy);
	}
	json_object_put(o);
}

static void
on_stats(struct pr_http_mirror *m, const char *payload, size_t len)
{
	struct json_object *o = len > 0 ? parse_object(payload, len) : NULL;

	if (len > 0 && o == NULL) {
		return; /* not a JSON object: the last stats stand */
	}
	json_object_put(o);
	free(m->stats);
	m->stats = len > 0 ? copy_payload(payload, len) : NULL;
}

void
pr_http_mirror_message(void *arg, const char *topic, const char *payload, size_t len)
{
	struct pr_http_mirror *m = arg;
	char source[PR_NAME_MAX + 1];
	const char *t, *slash;

	if (strncmp(topic, m->prefix, m->prefix_len) != 0 || topic[m->prefix_len] != '/') {
		return;
	}
	t = topic + m->prefix_len + 1;
	pthread_mutex_lock(&m->mu);
	if (strcmp(t, "agent/status") == 0) {
		on_status(m, payload, len);
	} else if (strcmp(t, "agent/stats") == 0) {
		on_stats(m, payload, len);
	} else if (strncmp(t, "state/", 6) == 0) {
		t += 6;
		slash = strchr(t, '/');
		if (slash == NULL && strlen(t) <= PR_NAME_MAX && t[0] != '\0') {
			on_summary(m, t, payload, len);
		} else if (slash != NULL && (size_t)(slash - t) <= PR_NAME_MAX && slash != t
		    && strncmp(slash, "/partitions/", 12) == 0) {
			memcpy(source, t, (size_t)(slash - t));
			source[slash - t] = '\0';
			on_partition(m, source, slash + 12, payload, len);
		}
	}
	pthread_mutex_unlock(&m->mu);
}

const char *
pr_http_agent_since(const struct pr_http_agent *a)
{
	if (a->seen[0] != '\0') {
		return a->seen;
	}
	return a->lost ? "" : a->at;
}

void
pr_http_agent_offline_text(const struct pr_http_agent *a, char *buf, size_t cap)
{
	const char *since = pr_http_agent_since(a);
	const char *will
	    = a->lost ? " (its connection was lost: the broker published its Last Will)" : "";

	if (since[0] != '\0') {
		snprintf(buf, cap, "agent offline since %s%s", since, will);
	} else {
		snprintf(buf, cap,
		    "agent offline: its connection was lost some time after %s (the broker "
		    "published its Last Will)",
		    a->at);
	}
}

/* ---- expiry ---- */

void
pr_http_mirror_prune(
    struct pr_http_mirror *m, int64_t now, uint32_t ready_expiry_s, uint32_t tombstone_expiry_s)
{
	pthread_mutex_lock(&m->mu);
	/* Backwards: a source may go, and sources and partitions shift down. */
	for (size_t k = m->nsrc; k-- > 0;) {
		struct msource *s = m->src[k];

		for (size_t i = s->nparts; i-- > 0;) {
			const struct mpart *p = &s->parts[i];
			uint32_t life = p->state == PR_READY ? ready_expiry_s
			    : p->state == PR_DELETED         ? tombstone_expiry_s
			                                     : 0;

			if (life != 0 && p->since != 0
			    && p->since + (int64_t)life * 1000000 <= now) {
				part_remove(m, s, i);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- queries ---- */

void
pr_http_mirror_agent(struct pr_http_mirror *m, struct pr_http_agent *out)
{
	pthread_mutex_lock(&m->mu);
	*out = m->agent;
	pthread_mutex_unlock(&m->mu);
}

static char *
dup_locked(struct pr_http_mirror *m, char *const *p)
{
	char *s;

	pthread_mutex_lock(&m->mu);
	s = *p != NULL ? strdup(*p) : NULL;
	pthread_mutex_unlock(&m->mu);
	return s;
}

char *
pr_http_mirror_status_json(struct pr_http_mirror *m)
{
	return dup_locked(m, &m->status);
}

char *
pr_http_mirror_stats_json(struct pr_http_mirror *m)
{
	return dup_locked(m, &m->stats);
}

char *
pr_http_mirror_summary_json(struct pr_http_mirror *m, const char *source)
{
	struct msource *s;
	char *out = NULL;

	pthread_mutex_lock(&m->mu);
	s = source_get(m, source, 0);
	if (s != NULL && s->summary != NULL) {
		out = strdup(s->summary);
	}
	pthread_mutex_unlock(&m->mu);
	return out;
}

char *
pr_http_mirror_summaries_json(struct pr_http_mirror *m)
{
	struct pr_http_buf b = { 0 };
	int first = 1;

	pr_http_buf_puts(&b, "[");
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->nsrc; i++) {
		if (m->src[i]->summary != NULL) {
			pr_http_buf_puts(&b, first ? "" : ",");
			pr_http_buf_puts(&b, m->src[i]->summary);
			first = 0;
		}
	}
	pthread_mutex_unlock(&m->mu);
	pr_http_buf_puts(&b, "]");
	return pr_http_buf_take(&b);
}

char *
pr_http_mirror_partitions_json(
    struct pr_http_mirror *m, const char *source, struct pr_range want, int *known)
{
	struct pr_http_buf b = { 0 };
	struct msource *s;
	int all = want.start >= want.end, first = 1;

	pthread_mutex_lock(&m->mu);
	s = source_get(m, source, 0);
	*known = s != NULL;
	if (s == NULL) {
		pthread_mutex_unlock(&m->mu);
		return NULL;
	}
	pr_http_buf_puts(&b, "[");
	for (size_t i = 0; i < s->nparts; i++) {
		const struct mpart *p = &s->parts[i];

		if (!all && !pr_range_overlaps(p->range, want)) {
			continue;
		}
		pr_http_buf_puts(&b, first ? "" : ",");
		pr_http_buf_puts(&b, p->json);
		first = 0;
	}
	pthread_mutex_unlock(&m->mu);
	pr_http_buf_puts(&b, "]");
	return pr_http_buf_take(&b);
}

/* ---- readiness ---- */

/* The agent's length class of a range: floor(log2(end - start)). */
static unsigned
length_class(struct pr_range r)
{
	uint64_t len = (uint64_t)r.end - (uint64_t)r.start;

	return 63u - (unsigned)__builtin_clzll(len);
}

/* The agent lists blockers in its overlap index's key order: length
 * class, start, end, then provider's bytes (src/store_partitions.c). */
static int
blocker_order(const void *a, const void *b)
{
	const struct mpart *x = *(const struct mpart *const *)a;
	const struct mpart *y = *(const struct mpart *const *)b;
	unsigned cx = length_class(x->range), cy = length_class(y->range);

	if (cx != cy) {
		return cx < cy ? -1 : 1;
	}
	if (x->range.start != y->range.start) {
		return x->range.start < y->range.start ? -1 : 1;
	}
	if (x->range.end != y->range.end) {
		return x->range.end < y->range.end ? -1 : 1;
	}
	return strcmp(x->provider, y->provider);
}

static int
is_blocker(enum pr_pstate s)
{
	return s == PR_PENDING || s == PR_LOCKED || s == PR_FAILED;
}

/* Does some blocked run of the summary hold p (same provider and state,
 * p's range inside the run)? */
static int
in_some_run(const struct pr_summary *sum, const struct mpart *p)
{
	for (size_t i = 0; i < sum->nblocked; i++) {
		const struct pr_blocker *b = &sum->blocked[i];

		if (strcmp(b->provider, p->provider) == 0
		    && strcmp(b->state, state_names[p->state]) == 0
		    && b->range.start <= p->range.start && p->range.end <= b->range.end) {
			return 1;
		}
	}
	return 0;
}

/* Does a partition of the list stand for the run b within want? */
static int
run_seen(const struct pr_blocker *b, struct mpart **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(b->provider, list[i]->provider) == 0
		    && strcmp(b->state, state_names[list[i]->state]) == 0
		    && pr_range_overlaps(b->range, list[i]->range)) {
			return 1;
		}
	}
	return 0;
}

static void
add_time(struct json_object *o, const char *key, int64_t t)
{
	char buf[PR_TIME_BUFSZ];

	json_object_object_add(o, key, json_object_new_string(pr_time_format(t, buf)));
}

int
pr_http_mirror_readiness(
    struct pr_http_mirror *m, const char *source, struct pr_range want, char **result)
{
	struct pr_range gaps[64];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = 64 };
	struct mpart **list = NULL;
	struct msource *s;
	struct json_object *o = NULL, *ga, *ba;
	size_t n = 0;
	int rc = 1;

	*result = NULL;
	pthread_mutex_lock(&m->mu);
	s = source_get(m, source, 0);
	if (s == NULL || s->summary == NULL || !s->parsed || s->sum.truncated) {
		goto out;
	}
	pr_summary_readiness(&s->sum, want, &r);
	list = malloc((s->nparts + 1) * sizeof *list);
	if (list == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->nparts; i++) {
		struct mpart *p = &s->parts[i];

		if (!is_blocker(p->state) || !pr_range_overlaps(p->range, want)) {
			continue;
		}
		/* A partition state newer or older than the summary: the two
		 * disagree for a moment; the agent knows. */
		if (!in_some_run(&s->sum, p)) {
			goto out;
		}
		list[n++] = p;
	}
	for (size_t i = 0; i < s->sum.nblocked; i++) {
		if (pr_range_overlaps(s->sum.blocked[i].range, want)
		    && !run_seen(&s->sum.blocked[i], list, n)) {
			goto out;
		}
	}
	/* The agent lists at most --summary-max blockers, a number the mirror
	 * does not know; but an untruncated summary lists at most that many
	 * ranges and at most that many runs, and it is at least 1. */
	if (n > 1 && n > s->sum.nblocked && n > s->sum.nready) {
		goto out;
	}
	qsort(list, n, sizeof *list, blocker_order);
	o = json_object_new_object();
	ga = json_object_new_array();
	ba = json_object_new_array();
	if (o == NULL || ga == NULL || ba == NULL) {
		json_object_put(ga);
		json_object_put(ba);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(o, "source", json_object_new_string(s->name));
	add_time(o, "start", want.start);
	add_time(o, "end", want.end);
	json_object_object_add(o, "ready", json_object_new_boolean(r.ready != 0));
	for (size_t i = 0; i < r.ngaps && i < r.gaps_cap; i++) {
		struct json_object *pair = json_object_new_array();
		char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];

		json_object_array_add(
		    pair, json_object_new_string(pr_time_format(gaps[i].start, a)));
		json_object_array_add(pair, json_object_new_string(pr_time_format(gaps[i].end, b)));
		json_object_array_add(ga, pair);
	}
	json_object_object_add(o, "gaps", ga);
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(ba, json_tokener_parse(list[i]->json_noepoch));
	}
	json_object_object_add(o, "blockers", ba);
	if (r.ready_through == want.start) {
		json_object_object_add(o, "ready_through", NULL);
	} else {
		add_time(o, "ready_through", r.ready_through);
	}
	json_object_object_add(o, "seq", json_object_new_uint64(s->sum.seq));
	json_object_object_add(o, "truncated", json_object_new_boolean(r.ngaps > r.gaps_cap));
	*result = strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	rc = *result != NULL ? 0 : -ENOMEM;
out:
	pthread_mutex_unlock(&m->mu);
	json_object_put(o);
	free(list);
	return rc;
}

/* ---- gauges ---- */

size_t
pr_http_mirror_gauges(struct pr_http_mirror *m, struct pr_http_gauge **out)
{
	struct pr_http_gauge *g;
	size_t n;

	pthread_mutex_lock(&m->mu);
	n = m->nsrc;
	g = calloc(n + 1, sizeof *g);
	if (g == NULL) {
		pthread_mutex_unlock(&m->mu);
		*out = NULL;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct msource *s = m->src[i];

		snprintf(g[i].source, sizeof g[i].source, "%s", s->name);
		g[i].seq = s->seq;
		g[i].has_seq = s->summary != NULL;
		for (size_t j = 0; j < s->nparts; j++) {
			const struct mpart *p = &s->parts[j];

			g[i].count[p->state]++;
			if (p->state == PR_LOCKED && p->since != 0
			    && (g[i].oldest_lock_since == 0 || p->since < g[i].oldest_lock_since)) {
				g[i].oldest_lock_since = p->since;
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	*out = g;
	return n;
}

/* ---- watchers ---- */

struct pr_http_watch *
pr_http_mirror_watch(struct pr_http_mirror *m)
{
	struct pr_http_watch *w = calloc(1, sizeof *w);

	if (w == NULL) {
		return NULL;
	}
	pthread_mutex_lock(&m->mu);
	if (m->status != NULL) {
		event_text(&w->q, "status", m->status);
	}
	for (size_t i = 0; i < m->nsrc; i++) {
		if (m->src[i]->summary != NULL) {
			event_text(&w->q, "summary", m->src[i]->summary);
		}
	}
	for (size_t i = 0; i < m->nsrc; i++) {
		for (size_t j = 0; j < m->src[i]->nparts; j++) {
			event_text(&w->q, "partition", m->src[i]->parts[j].json);
		}
	}
	event_text(&w->q, "snapshot-end", "{}");
	if (w->q.oom) {
		pthread_mutex_unlock(&m->mu);
		pr_http_buf_release(&w->q);
		free(w);
		return NULL;
	}
	w->next = m->watchers;
	m->watchers = w;
	m->nwatchers++;
	pthread_mutex_unlock(&m->mu);
	return w;
}

void
pr_http_mirror_unwatch(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&m->mu);
	for (struct pr_http_watch **pp = &m->watchers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			m->nwatchers--;
			break;
		}
	}
	pthread_mutex_unlock(&m->mu);
	pr_http_buf_release(&w->q);
	free(w);
}

long
pr_http_watch_read(
    struct pr_http_mirror *m, struct pr_http_watch *w, char *buf, size_t max, int timeout_ms)
{
	struct timespec ts;
	long n = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->mu);
	while (!m->stopping && !w->dropped && w->off == w->q.len) {
		if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT) {
			break;
		}
	}
	if (m->stopping || w->dropped) {
		n = -1;
	} else if (w->off < w->q.len) {
		size_t k = w->q.len - w->off < max ? w->q.len - w->off : max;

		memcpy(buf, w->q.p + w->off, k);
		w->off += k;
		if (w->off == w->q.len) {
			w->off = w->q.len = 0;
		}
		n = (long)k;
	}
	pthread_mutex_unlock(&m->mu);
	return n;
}

size_t
pr_http_mirror_nwatchers(struct pr_http_mirror *m)
{
	size_t n;

	pthread_mutex_lock(&m->mu);
	n = m->nwatchers;
	pthread_mutex_unlock(&m->mu);
	return n;
}

void
pr_http_mirror_shutdown(struct pr_http_mirror *m)
{
	pthread_mutex_lock(&m->mu);
	m->stopping = 1;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}
