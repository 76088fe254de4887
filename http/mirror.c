/* SPDX-License-Identifier: MIT */
/*
 * The mirror (mirror.h). Sources sit in an array sorted by name (few, and
 * binary-searched); each source keeps its partitions in an interval tree
 * (itree.h) by (start, provider, end), the listing order, so an update,
 * insert or removal is O(log n) whatever order the broker delivers the
 * retained messages in, and a window is listed in O(log n + k). The sorted
 * array this replaced moved its tail on every insert: 100,000 partitions
 * arriving newest first took seconds of the receive thread under the lock.
 *
 * Each partition is also in at most one index by state: a source's
 * blockers (pending, locked, failed; the same order) when it blocks, so
 * readiness looks only at the blockers overlapping its window (usually
 * none) rather than at every partition; or the mirror's expiry queue of
 * its state (ready, deleted), by since, so prune takes only what has
 * expired. A summary is immutable once made and shared by reference, so
 * readiness evaluates it after the lock is released.
 *
 * Watchers: a snapshot is not copied out at connect time (with a million
 * partitions that was 250 MB per browser, built under the lock). Each
 * watcher has a position in the snapshot order (status, then summaries by
 * source, then partitions by source and key), and its read makes the next
 * chunk of snapshot text from there, under the lock, only when everything
 * before has been read. A change is queued for a watcher only when its
 * position is past the thing changed; one ahead of it reaches the watcher
 * through the snapshot, as it is when the position gets there (a removal:
 * not at all). So no change falls between snapshot and stream, and the
 * snapshot never counts against the watcher's queue limit. Alternative
 * rejected: a generation number per entry, which needs tombstones kept
 * for removals until every watcher has passed them.
 *
 * A retained message delivered again unchanged (a broker reconnect sends
 * every one) changes nothing and queues nothing; the byte comparison runs
 * before any JSON parsing.
 *
 * What always holds: every string here is owned by the mirror and only
 * copies leave it; a partition entry's key (start, end, provider) is its
 * topic's, so an empty retained message finds what to drop; a watcher's
 * queue holds only text for things at or before its position.
 */
#include "mirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "buf.h"
#include "itree.h"
#include "log.h"

/* A watcher with more than this of changes queued beyond its snapshot is
 * dropped (and reconnects). */
#define WATCH_MAX_BYTES (1u << 20)
/* Snapshot text made per read, at most (plus one event). */
#define WATCH_CHUNK_BYTES (64u << 10)
/* All watchers' queues together: past it, the one furthest behind goes. */
#define WATCH_TOTAL_BYTES (64u << 20)
/* A drained queue keeps its buffer up to this size. */
#define WATCH_KEEP_BYTES (256u << 10)

#define PART_OF(n, member) ((struct mpart *)(void *)((char *)(n)-offsetof(struct mpart, member)))

struct msource;

struct mpart {
	struct pr_itree_node by_key; /* in its source's parts; range = the partition's */
	/* In its source's blockers (range = the partition's), in the mirror's
	 * expiry queue (range = [expires_at, expires_at]), or in none:
	 * state_tree says which. */
	struct pr_itree_node by_state;
	struct pr_itree *state_tree;
	struct msource *src;
	char *provider;
	enum pr_pstate state;
	uint64_t seq, epoch; /* the staleness order (new_store zeroes them) */
	int reordered;       /* new_store zeroed them: the message's own differ */
	int64_t since;
	int64_t expires_at; /* when the broker forgets it (its message expiry); 0 = never */
	char *json;         /* the retained message, verbatim */
	size_t json_len;
	char *json_noepoch; /* as a reply lists it: without "epoch" */
};

/* A summary as retained: immutable once made, freed by its last holder
 * (the source, or a readiness call that took it out of the lock). */
struct msum {
	atomic_int refs;
	char *raw;
	size_t len;
	struct pr_summary sum;
	int parsed; /* sum is valid */
};

struct msource {
	char *name;
	struct msum *summary; /* NULL = none */
	uint64_t seq, epoch;
	int reordered;
	struct pr_itree parts;    /* every partition, by (start, provider, end) */
	struct pr_itree blockers; /* the pending, locked and failed ones, the same order */
	uint64_t count[5];        /* partitions by state */
};

/* Where a watcher's snapshot stands, and where a change sits, in the
 * snapshot's order. */
enum { SNAP_STATUS, SNAP_SUMMARIES, SNAP_PARTS, SNAP_DONE };

struct pr_http_watch {
	struct pr_http_watch *next;
	struct pr_http_buf q;
	size_t off;      /* read position in q */
	size_t snap_end; /* q[0, snap_end) is snapshot text */
	int dropped;
	int phase; /* what the snapshot sends next */
	/* The last thing of this phase sent (has_pos): a source for summaries,
	 * a source and partition key for partitions. */
	int has_pos;
	char pos_source[PR_NAME_MAX + 1];
	struct pr_range pos_range;
	char *pos_provider;
};

struct pr_http_mirror {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *prefix;
	size_t prefix_len;
	struct msource **src;
	size_t nsrc, capsrc;
	/* Ready and deleted partitions with a since, by since: prune's work. */
	struct pr_itree expiring; /* partitions not blocking with an expiry, by expires_at */
	char *status, *stats;
	struct pr_http_agent agent;
	/* The store and epoch of the last agent status: another store, or a
	 * lower epoch (a store restored from a backup), starts the (epoch, seq)
	 * order again. */
	char store[64];
	uint64_t epoch;
	struct pr_http_watch *watchers;
	size_t nwatchers;
	size_t queued; /* bytes in every watcher's q */
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

static int
is_blocker(enum pr_pstate s)
{
	return s == PR_PENDING || s == PR_LOCKED || s == PR_FAILED;
}

/* ---- orders ---- */

static int
key_cmp(struct pr_range r, const char *provider, struct pr_range r2, const char *provider2)
{
	int c;

	if (r.start != r2.start) {
		return r.start < r2.start ? -1 : 1;
	}
	c = strcmp(provider, provider2);
	if (c != 0) {
		return c;
	}
	if (r.end != r2.end) {
		return r.end < r2.end ? -1 : 1;
	}
	return 0;
}

static int
by_key_cmp(const struct pr_itree_node *a, const struct pr_itree_node *b)
{
	return key_cmp(
	    a->range, PART_OF(a, by_key)->provider, b->range, PART_OF(b, by_key)->provider);
}

static int
blocker_cmp(const struct pr_itree_node *a, const struct pr_itree_node *b)
{
	return key_cmp(
	    a->range, PART_OF(a, by_state)->provider, b->range, PART_OF(b, by_state)->provider);
}

/* By since, then by address: a total order for a queue. */
static int
since_cmp(const struct pr_itree_node *a, const struct pr_itree_node *b)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	if (a->range.start != b->range.start) {
		return a->range.start < b->range.start ? -1 : 1;
	}
	return (x > y) - (x < y);
}

/* ---- indexes by state (mutex held) ---- */

static void
state_index(struct pr_http_mirror *m, struct mpart *p)
{
	struct pr_itree *t = NULL;

	p->src->count[p->state]++;
	if (is_blocker(p->state)) {
		p->by_state.range = p->by_key.range;
		t = &p->src->blockers;
	} else if (p->expires_at != 0) {
		/* (The agent gives an expiry only to ready partitions and
		 * tombstones: a blocker's is not looked at.) */
		p->by_state.range.start = p->by_state.range.end = p->expires_at;
		t = &m->expiring;
	}
	if (t != NULL) {
		pr_itree_insert(t, &p->by_state);
	}
	p->state_tree = t;
}

static void
state_unindex(struct mpart *p)
{
	p->src->count[p->state]--;
	if (p->state_tree != NULL) {
		pr_itree_remove(p->state_tree, &p->by_state);
		p->state_tree = NULL;
	}
}

/* ---- lifetimes ---- */

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
	pr_itree_init(&m->expiring, since_cmp);
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	*out = m;
	return 0;
}

static void
part_free(struct mpart *p)
{
	if (p == NULL) {
		return;
	}
	free(p->provider);
	free(p->json);
	free(p->json_noepoch);
	free(p);
}

static void
msum_unref(struct msum *u)
{
	if (u != NULL && atomic_fetch_sub(&u->refs, 1) == 1) {
		pr_summary_release(&u->sum);
		free(u->raw);
		free(u);
	}
}

/* Frees every partition of s without rebalancing (the mirror is going, or
 * s holds none). */
static void
source_free(struct msource *s)
{
	struct pr_itree_node *x = s->parts.root;

	while (x != NULL) {
		struct pr_itree_node *up = x->parent;

		if (x->kid[0] != NULL) {
			up = x->kid[0];
			x->kid[0] = NULL;
		} else if (x->kid[1] != NULL) {
			up = x->kid[1];
			x->kid[1] = NULL;
		} else {
			part_free(PART_OF(x, by_key));
		}
		x = up;
	}
	msum_unref(s->summary);
	free(s->name);
	free(s);
}

static void
watch_free(struct pr_http_watch *w)
{
	pr_http_buf_release(&w->q);
	free(w->pos_provider);
	free(w);
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
		watch_free(w);
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

/* The index of the first source not before name. */
static size_t
source_from(const struct pr_http_mirror *m, const char *name)
{
	long i = source_find(m, name);

	return i >= 0 ? (size_t)i : (size_t)(-i - 1);
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
	pr_itree_init(&s->parts, by_key_cmp);
	pr_itree_init(&s->blockers, blocker_cmp);
	memmove(&m->src[at + 1], &m->src[at], (m->nsrc - at) * sizeof *m->src);
	m->src[at] = s;
	m->nsrc++;
	return s;
}

/* s's partition (r, provider), or NULL. */
static struct mpart *
part_find(const struct msource *s, struct pr_range r, const char *provider)
{
	struct mpart key;
	struct pr_itree_node *n;

	key.by_key.range = r;
	key.provider = (char *)provider;
	n = pr_itree_find(&s->parts, &key.by_key);
	return n != NULL ? PART_OF(n, by_key) : NULL;
}

/* Drop a source that holds nothing any more. */
static void
source_gc(struct pr_http_mirror *m, struct msource *s)
{
	long i;

	if (s->summary != NULL || s->parts.count > 0) {
		return;
	}
	i = source_find(m, s->name);
	if (i >= 0) {
		memmove(&m->src[i], &m->src[i + 1], (m->nsrc - (size_t)i - 1) * sizeof *m->src);
		m->nsrc--;
		source_free(s);
	}
}

/* ---- watchers' queues (mutex held) ---- */

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
queue_event(struct pr_http_mirror *m, struct pr_http_watch *w, const char *name, const char *json)
{
	size_t before = w->q.len;

	event_text(&w->q, name, json);
	m->queued += w->q.len - before;
}

/* Changes queued for w beyond the snapshot text it has still to read. */
static size_t
backlog(const struct pr_http_watch *w)
{
	size_t from = w->off > w->snap_end ? w->off : w->snap_end;

	return w->q.len > from ? w->q.len - from : 0;
}

/* Empty w's queue (fully read, or w dropped); a large buffer is freed. */
static void
queue_reset(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	m->queued -= w->q.len;
	w->q.len = w->off = w->snap_end = 0;
	if (w->q.cap > WATCH_KEEP_BYTES || w->q.oom) {
		pr_http_buf_release(&w->q);
		memset(&w->q, 0, sizeof w->q);
	}
}

static void
drop(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	w->dropped = 1;
	m->queued -= w->q.len;
	pr_http_buf_release(&w->q);
	memset(&w->q, 0, sizeof w->q);
	w->off = w->snap_end = 0;
}

/* Where a change sits in the snapshot order: a phase, and for a summary
 * its source, for a partition its source and key. */
struct spot {
	int phase;
	const char *source;
	struct pr_range range;
	const char *provider;
};

/* Has w's snapshot passed spot (so a change there must be queued)? */
static int
passed(const struct pr_http_watch *w, const struct spot *at)
{
	int c;

	if (w->phase != at->phase) {
		return w->phase > at->phase;
	}
	if (!w->has_pos) {
		return 0;
	}
	c = strcmp(at->source, w->pos_source);
	if (c != 0 || at->phase == SNAP_SUMMARIES) {
		return c <= 0;
	}
	return key_cmp(at->range, at->provider, w->pos_range, w->pos_provider) <= 0;
}

/* Queue an event for every watcher whose snapshot has passed its spot;
 * drop watchers too far behind. */
static void
broadcast(struct pr_http_mirror *m, const struct spot *at, const char *name, const char *json)
{
	int queued = 0;

	for (struct pr_http_watch *w = m->watchers; w != NULL; w = w->next) {
		if (w->dropped || !passed(w, at)) {
			continue;
		}
		queue_event(m, w, name, json);
		queued = 1;
		if (w->q.oom || backlog(w) > WATCH_MAX_BYTES) {
			drop(m, w);
		}
	}
	/* Over the total: the one with the most changes queued goes, until
	 * under it (rare: WATCH_TOTAL_BYTES holds 64 full queues). */
	while (m->queued > WATCH_TOTAL_BYTES) {
		struct pr_http_watch *worst = NULL;

		for (struct pr_http_watch *w = m->watchers; w != NULL; w = w->next) {
			if (!w->dropped && (worst == NULL || w->q.len > worst->q.len)) {
				worst = w;
			}
		}
		if (worst == NULL) {
			break;
		}
		pr_warn(
		    "http: an event stream dropped: %zu bytes queued for all streams", m->queued);
		drop(m, worst);
	}
	if (queued) {
		pthread_cond_broadcast(&m->cv);
	}
}

static struct spot
part_spot(const struct msource *s, const struct mpart *p)
{
	struct spot at = { SNAP_PARTS, s->name, p->by_key.range, p->provider };

	return at;
}

/*
 * Drop partition p of s and tell the watchers: a "partition" event with
 * the partition's source, provider, start and end and no state (its
 * retained message was cleared, or has expired on the broker).
 */
static void
part_remove(struct pr_http_mirror *m, struct msource *s, struct mpart *p)
{
	struct spot at = part_spot(s, p);
	char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];
	struct json_object *o = m->watchers != NULL ? json_object_new_object() : NULL;

	if (o != NULL) {
		json_object_object_add(o, "source", json_object_new_string(s->name));
		json_object_object_add(o, "provider", json_object_new_string(p->provider));
		json_object_object_add(
		    o, "start", json_object_new_string(pr_time_format(p->by_key.range.start, a)));
		json_object_object_add(
		    o, "end", json_object_new_string(pr_time_format(p->by_key.range.end, b)));
		broadcast(m, &at, "partition",
		    json_object_to_json_string_ext(
		        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(o);
	state_unindex(p);
	pr_itree_remove(&s->parts, &p->by_key);
	part_free(p);
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

static int
same_bytes(const char *have, size_t have_len, const char *payload, size_t len)
{
	return have != NULL && have_len == len && memcmp(have, payload, len) == 0;
}

static void
on_summary(struct pr_http_mirror *m, const char *source, const char *payload, size_t len)
{
	struct msource *s = source_get(m, source, len > 0);
	struct spot at = { SNAP_SUMMARIES, source, { 0, 0 }, NULL };
	struct msum *u;

	if (s == NULL) {
		return;
	}
	if (len == 0) {
		msum_unref(s->summary);
		s->summary = NULL;
		source_gc(m, s);
		return;
	}
	/* Delivered again unchanged: nothing to do. */
	if (s->summary != NULL && !s->reordered
	    && same_bytes(s->summary->raw, s->summary->len, payload, len)) {
		return;
	}
	u = calloc(1, sizeof *u);
	if (u == NULL) {
		return;
	}
	if (pr_summary_parse(payload, len, &u->sum) == 0) {
		if (s->summary != NULL && stale(u->sum.epoch, u->sum.seq, s->epoch, s->seq)) {
			pr_summary_release(&u->sum);
			free(u);
			return;
		}
	} else {
		/* A format this build cannot read: kept for listing, never used
		 * to decide readiness (the agent is asked). Not JSON at all: the
		 * listings and the streams would stop being JSON; ignored. */
		struct json_object *o = parse_object(payload, len);

		if (o == NULL) {
			free(u);
			source_gc(m, s);
			return;
		}
		json_object_put(o);
		memset(&u->sum, 0, sizeof u->sum);
	}
	s->seq = u->sum.seq;
	s->epoch = u->sum.epoch;
	s->reordered = 0;
	if (s->summary != NULL && same_bytes(s->summary->raw, s->summary->len, payload, len)) {
		/* The same message after new_store: its order back, no event. */
		pr_summary_release(&u->sum);
		free(u);
		return;
	}
	u->raw = copy_payload(payload, len);
	if (u->raw == NULL) {
		pr_summary_release(&u->sum);
		free(u);
		source_gc(m, s);
		return;
	}
	u->len = len;
	u->parsed = u->sum.source[0] != '\0';
	atomic_init(&u->refs, 1);
	msum_unref(s->summary);
	s->summary = u;
	broadcast(m, &at, "summary", u->raw);
}

/* state/<source>/partitions/<start>/<end>/<provider> */
static void
on_partition(struct pr_http_mirror *m, const char *source, const char *rest, const char *payload,
    size_t len, int64_t expires_at)
{
	const char *e1 = strchr(rest, '/'), *e2 = e1 != NULL ? strchr(e1 + 1, '/') : NULL;
	struct pr_range r;
	struct msource *s;
	struct json_object *o;
	struct mpart *p, *have;
	const char *state, *since, *provider;
	enum pr_pstate st;
	struct spot at;
	uint64_t seq, epoch;

	if (e1 == NULL || e2 == NULL || e2[1] == '\0'
	    || pr_time_parse(rest, (size_t)(e1 - rest), &r.start) != 0
	    || pr_time_parse(e1 + 1, (size_t)(e2 - e1 - 1), &r.end) != 0) {
		return;
	}
	provider = e2 + 1;
	s = source_get(m, source, 0);
	have = s != NULL ? part_find(s, r, provider) : NULL;
	if (len == 0) {
		if (have != NULL) {
			part_remove(m, s, have);
		}
		return;
	}
	/* Delivered again unchanged (every one is, after a broker reconnect):
	 * nothing to parse, nothing to tell. */
	if (have != NULL && !have->reordered
	    && same_bytes(have->json, have->json_len, payload, len)) {
		return;
	}
	/* Checked before the source is made: an ignored message makes up no
	 * source. */
	o = parse_object(payload, len);
	state = o != NULL ? get_str(o, "state") : NULL;
	since = o != NULL ? get_str(o, "since") : NULL;
	if (state == NULL || state_parse(state, &st) != 0) {
		json_object_put(o);
		return;
	}
	seq = get_u64(o, "seq");
	epoch = get_u64(o, "epoch");
	if (have != NULL && stale(epoch, seq, have->epoch, have->seq)) {
		json_object_put(o);
		return;
	}
	if (have != NULL && same_bytes(have->json, have->json_len, payload, len)) {
		/* The same message after new_store: its order back, no event. */
		have->epoch = epoch;
		have->seq = seq;
		have->reordered = 0;
		json_object_put(o);
		return;
	}
	if (s == NULL && (s = source_get(m, source, 1)) == NULL) {
		json_object_put(o);
		return;
	}
	p = calloc(1, sizeof *p);
	if (p == NULL) {
		json_object_put(o);
		source_gc(m, s);
		return;
	}
	p->by_key.range = r;
	p->state = st;
	p->seq = seq;
	p->epoch = epoch;
	if (since != NULL) {
		pr_time_parse(since, strlen(since), &p->since);
	}
	p->expires_at = expires_at;
	/* The same object without epoch: a blocker as replies list it. */
	json_object_object_del(o, "epoch");
	p->json = copy_payload(payload, len);
	p->json_len = len;
	p->json_noepoch = strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (p->json == NULL || p->json_noepoch == NULL) {
		part_free(p);
		source_gc(m, s);
		return;
	}
	p->src = s;
	if (have != NULL) {
		/* In place: the key, and so the node and provider, stay. */
		state_unindex(have);
		free(have->json);
		free(have->json_noepoch);
		have->state = p->state;
		have->seq = p->seq;
		have->epoch = p->epoch;
		have->reordered = 0;
		have->since = p->since;
		have->expires_at = p->expires_at;
		have->json = p->json;
		have->json_len = p->json_len;
		have->json_noepoch = p->json_noepoch;
		p->json = p->json_noepoch = NULL;
		part_free(p);
		p = have;
	} else {
		p->provider = strdup(provider);
		if (p->provider == NULL) {
			part_free(p);
			source_gc(m, s);
			return;
		}
		pr_itree_insert(&s->parts, &p->by_key);
	}
	state_index(m, p);
	at = part_spot(s, p);
	broadcast(m, &at, "partition", p->json);
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
			s->reordered = 1;
			for (struct pr_itree_node *n = pr_itree_first(&s->parts); n != NULL;
			     n = pr_itree_next(n)) {
				struct mpart *p = PART_OF(n, by_key);

				p->epoch = p->seq = 0;
				p->reordered = 1;
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
	int same = m->status != NULL && same_bytes(m->status, strlen(m->status), payload, len);
	struct spot at = { SNAP_STATUS, NULL, { 0, 0 }, NULL };

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
		/* The same status again (a reconnect) is no news to a stream. */
		if (!same) {
			broadcast(m, &at, "status", copy);
		}
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
	pr_http_mirror_message_at(arg, topic, payload, len, -1, pr_time_now());
}

void
pr_http_mirror_msg(void *arg, const struct pr_message *msg)
{
	pr_http_mirror_message_at(
	    arg, msg->topic, msg->payload, msg->len, msg->expiry_s, pr_time_now());
}

void
pr_http_mirror_message_at(struct pr_http_mirror *m, const char *topic, const char *payload,
    size_t len, int64_t expiry_s, int64_t now)
{
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
			on_partition(m, source, slash + 12, payload, len,
			    expiry_s >= 0 ? now + expiry_s * 1000000 : 0);
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
pr_http_mirror_prune(struct pr_http_mirror *m, int64_t now)
{
	struct pr_itree_node *n;

	pthread_mutex_lock(&m->mu);
	/* By expires_at: what has expired is at the front. */
	while ((n = pr_itree_first(&m->expiring)) != NULL && n->range.start <= now) {
		struct mpart *p = PART_OF(n, by_state);

		part_remove(m, p->src, p);
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
		out = strdup(s->summary->raw);
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
			pr_http_buf_puts(&b, m->src[i]->summary->raw);
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
	struct pr_itree_node *n;
	int all = want.start >= want.end;

	pthread_mutex_lock(&m->mu);
	s = source_get(m, source, 0);
	*known = s != NULL;
	if (s == NULL) {
		pthread_mutex_unlock(&m->mu);
		return NULL;
	}
	pr_http_buf_puts(&b, "[");
	n = all ? pr_itree_first(&s->parts) : pr_itree_overlap_first(&s->parts, want);
	for (; n != NULL; n = all ? pr_itree_next(n) : pr_itree_overlap_next(n, want)) {
		pr_http_buf_puts(&b, b.len > 1 ? "," : "");
		pr_http_buf_puts(&b, PART_OF(n, by_key)->json);
	}
	pthread_mutex_unlock(&m->mu);
	pr_http_buf_puts(&b, "]");
	return pr_http_buf_take(&b);
}

/* ---- readiness ---- */

/* A blocker copied out of the lock. */
struct blk {
	struct pr_range range;
	enum pr_pstate state;
	char *provider;
	char *json_noepoch;
};

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
	const struct blk *x = a, *y = b;
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

/* Does one of the runs hold p (same provider and state, p's range inside
 * the run)? */
static int
in_some_run(const struct pr_blocker *const *runs, size_t nruns, const struct blk *p)
{
	for (size_t i = 0; i < nruns; i++) {
		const struct pr_blocker *b = runs[i];

		if (b->range.start <= p->range.start && p->range.end <= b->range.end
		    && strcmp(b->provider, p->provider) == 0
		    && strcmp(b->state, state_names[p->state]) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Does a partition of the list stand for the run b within want? */
static int
run_seen(const struct pr_blocker *b, const struct blk *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pr_range_overlaps(b->range, list[i].range)
		    && strcmp(b->provider, list[i].provider) == 0
		    && strcmp(b->state, state_names[list[i].state]) == 0) {
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

/*
 * The blockers of s overlapping want, copied into *out (n returned in
 * *nout): at most max, -ENOSPC when there are more, -ENOMEM. Mutex held:
 * O(log n + k) in the source's blocker index.
 */
static int
blockers_copy(
    const struct msource *s, struct pr_range want, size_t max, struct blk **out, size_t *nout)
{
	struct blk *list = NULL;
	size_t n = 0, cap = 0;
	int rc = -ENOMEM;

	*out = NULL;
	*nout = 0;
	for (struct pr_itree_node *x = pr_itree_overlap_first(&s->blockers, want); x != NULL;
	     x = pr_itree_overlap_next(x, want)) {
		const struct mpart *p = PART_OF(x, by_state);

		if (n == max) {
			rc = -ENOSPC;
			goto fail;
		}
		if (n == cap) {
			size_t c = cap != 0 ? 2 * cap : 8;
			struct blk *a = realloc(list, c * sizeof *a);

			if (a == NULL) {
				goto fail;
			}
			list = a;
			cap = c;
		}
		list[n].range = p->by_key.range;
		list[n].state = p->state;
		list[n].provider = strdup(p->provider);
		list[n].json_noepoch = strdup(p->json_noepoch);
		n++;
		if (list[n - 1].provider == NULL || list[n - 1].json_noepoch == NULL) {
			goto fail;
		}
	}
	*out = list;
	*nout = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++) {
		free(list[i].provider);
		free(list[i].json_noepoch);
	}
	free(list);
	return rc;
}

int
pr_http_mirror_readiness(
    struct pr_http_mirror *m, const char *source, struct pr_range want, char **result)
{
	struct pr_range gaps[64];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = 64 };
	struct blk *list = NULL;
	struct msource *s;
	struct msum *u = NULL;
	const struct pr_summary *sum;
	struct json_object *o = NULL, *ga, *ba;
	const struct pr_blocker **runs = NULL;
	char name[PR_NAME_MAX + 1];
	size_t n = 0, nruns = 0, max;
	int rc = 1;

	*result = NULL;
	pthread_mutex_lock(&m->mu);
	s = source_get(m, source, 0);
	if (s == NULL || s->summary == NULL || !s->summary->parsed || s->summary->sum.truncated) {
		pthread_mutex_unlock(&m->mu);
		return 1;
	}
	u = s->summary;
	atomic_fetch_add(&u->refs, 1);
	snprintf(name, sizeof name, "%s", s->name);
	/* The agent lists at most --summary-max blockers, a number the mirror
	 * does not know; but an untruncated summary lists at most that many
	 * ranges and at most that many runs, and it is at least 1. */
	max = u->sum.nblocked > u->sum.nready ? u->sum.nblocked : u->sum.nready;
	max = max > 1 ? max : 1;
	rc = blockers_copy(s, want, max, &list, &n);
	pthread_mutex_unlock(&m->mu);
	/* From here on only copies and the summary (immutable, held). */
	if (rc != 0) {
		rc = rc == -ENOSPC ? 1 : rc;
		goto out;
	}
	sum = &u->sum;
	/* Only the runs overlapping want can hold a blocker of want. */
	runs = malloc((sum->nblocked + 1) * sizeof *runs);
	if (runs == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = 1;
	for (size_t i = 0; i < sum->nblocked; i++) {
		if (pr_range_overlaps(sum->blocked[i].range, want)) {
			runs[nruns++] = &sum->blocked[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		/* A partition state newer or older than the summary: the two
		 * disagree for a moment; the agent knows. */
		if (!in_some_run(runs, nruns, &list[i])) {
			goto out;
		}
	}
	for (size_t i = 0; i < nruns; i++) {
		if (!run_seen(runs[i], list, n)) {
			goto out;
		}
	}
	pr_summary_readiness(sum, want, &r);
	if (n > 1) {
		qsort(list, n, sizeof *list, blocker_order);
	}
	o = json_object_new_object();
	ga = json_object_new_array();
	ba = json_object_new_array();
	if (o == NULL || ga == NULL || ba == NULL) {
		json_object_put(ga);
		json_object_put(ba);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(o, "source", json_object_new_string(name));
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
		json_object_array_add(ba, json_tokener_parse(list[i].json_noepoch));
	}
	json_object_object_add(o, "blockers", ba);
	if (r.ready_through == want.start) {
		json_object_object_add(o, "ready_through", NULL);
	} else {
		add_time(o, "ready_through", r.ready_through);
	}
	json_object_object_add(o, "seq", json_object_new_uint64(sum->seq));
	json_object_object_add(o, "truncated", json_object_new_boolean(r.ngaps > r.gaps_cap));
	*result = strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	rc = *result != NULL ? 0 : -ENOMEM;
out:
	json_object_put(o);
	for (size_t i = 0; i < n; i++) {
		free(list[i].provider);
		free(list[i].json_noepoch);
	}
	free(list);
	free(runs);
	msum_unref(u);
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
		memcpy(g[i].count, s->count, sizeof g[i].count);
		/* Locks are among the blockers, usually few. */
		for (struct pr_itree_node *x = pr_itree_first(&s->blockers); x != NULL;
		     x = pr_itree_next(x)) {
			const struct mpart *p = PART_OF(x, by_state);

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

/* Remember p of s as the last partition w's snapshot has sent. */
static int
set_pos(struct pr_http_watch *w, const struct msource *s, const struct mpart *p)
{
	char *prov = strdup(p->provider);

	if (prov == NULL) {
		return -ENOMEM;
	}
	free(w->pos_provider);
	w->pos_provider = prov;
	snprintf(w->pos_source, sizeof w->pos_source, "%s", s->name);
	w->pos_range = p->by_key.range;
	w->has_pos = 1;
	return 0;
}

/* Partitions after w's position into q, until q holds a chunk. */
static void
snapshot_parts(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	size_t k = w->has_pos ? source_from(m, w->pos_source) : 0;
	struct pr_itree_node *n = NULL;
	const struct mpart *last = NULL;

	if (k < m->nsrc) {
		if (w->has_pos && strcmp(m->src[k]->name, w->pos_source) == 0) {
			struct mpart key;

			key.by_key.range = w->pos_range;
			key.provider = w->pos_provider;
			n = pr_itree_after(&m->src[k]->parts, &key.by_key);
		} else {
			n = pr_itree_first(&m->src[k]->parts);
		}
	}
	while (k < m->nsrc && w->q.len < WATCH_CHUNK_BYTES) {
		if (n == NULL) {
			if (++k < m->nsrc) {
				n = pr_itree_first(&m->src[k]->parts);
			}
			continue;
		}
		last = PART_OF(n, by_key);
		queue_event(m, w, "partition", last->json);
		n = pr_itree_next(n);
		if (w->q.len >= WATCH_CHUNK_BYTES) {
			/* The position is needed only between chunks. */
			if (set_pos(w, m->src[k], last) != 0) {
				w->q.oom = 1;
				return;
			}
		}
	}
	if (k >= m->nsrc) {
		queue_event(m, w, "snapshot-end", "{}");
		w->phase = SNAP_DONE;
		w->has_pos = 0;
		free(w->pos_provider);
		w->pos_provider = NULL;
	}
}

/*
 * The next chunk of w's snapshot into its (empty) queue, from its
 * position: the status, the summaries by source, the partitions by source
 * and key, then snapshot-end. About WATCH_CHUNK_BYTES at a time, so the
 * lock is held for one chunk, not the whole snapshot.
 */
static void
snapshot_chunk(struct pr_http_mirror *m, struct pr_http_watch *w)
{
	while (w->phase != SNAP_DONE && w->q.len < WATCH_CHUNK_BYTES && !w->q.oom) {
		if (w->phase == SNAP_STATUS) {
			if (m->status != NULL) {
				queue_event(m, w, "status", m->status);
			}
			w->phase = SNAP_SUMMARIES;
			w->has_pos = 0;
		} else if (w->phase == SNAP_SUMMARIES) {
			size_t k = 0;

			if (w->has_pos) {
				long i = source_find(m, w->pos_source);

				k = i >= 0 ? (size_t)i + 1 : (size_t)(-i - 1);
			}
			while (k < m->nsrc && m->src[k]->summary == NULL) {
				k++;
			}
			if (k == m->nsrc) {
				w->phase = SNAP_PARTS;
				w->has_pos = 0;
				continue;
			}
			queue_event(m, w, "summary", m->src[k]->summary->raw);
			snprintf(w->pos_source, sizeof w->pos_source, "%s", m->src[k]->name);
			w->has_pos = 1;
		} else {
			snapshot_parts(m, w);
		}
	}
	w->snap_end = w->q.len;
}

struct pr_http_watch *
pr_http_mirror_watch(struct pr_http_mirror *m)
{
	struct pr_http_watch *w = calloc(1, sizeof *w);

	if (w == NULL) {
		return NULL;
	}
	pthread_mutex_lock(&m->mu);
	/* The first chunk at once: a small mirror's whole snapshot. */
	snapshot_chunk(m, w);
	if (w->q.oom) {
		m->queued -= w->q.len;
		pthread_mutex_unlock(&m->mu);
		watch_free(w);
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
	m->queued -= w->q.len;
	pthread_mutex_unlock(&m->mu);
	watch_free(w);
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
	while (!m->stopping && !w->dropped && w->off == w->q.len && w->phase == SNAP_DONE) {
		if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT) {
			break;
		}
	}
	if (!m->stopping && !w->dropped && w->off == w->q.len && w->phase != SNAP_DONE) {
		/* Everything before the position read: the next chunk. */
		queue_reset(m, w);
		snapshot_chunk(m, w);
		if (w->q.oom) {
			drop(m, w);
		}
	}
	if (m->stopping || w->dropped) {
		n = -1;
	} else if (w->off < w->q.len) {
		size_t k = w->q.len - w->off < max ? w->q.len - w->off : max;

		memcpy(buf, w->q.p + w->off, k);
		w->off += k;
		if (w->off == w->q.len) {
			queue_reset(m, w);
		} else if (w->off >= WATCH_CHUNK_BYTES) {
			/* Read text goes, so a queue that never quite empties
			 * does not grow. */
			size_t left = w->q.len - w->off;

			memmove(w->q.p, w->q.p + w->off, left + 1);
			m->queued -= w->off;
			w->q.len = left;
			w->snap_end = w->snap_end > w->off ? w->snap_end - w->off : 0;
			w->off = 0;
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
