/* SPDX-License-Identifier: MIT */
/*
 * The agent's encoders, on json-c: results, replies, retained state,
 * events, status and stats, each built as a json_object and dumped compact
 * (DUMP_FLAGS). Every time goes through pr_time_format so equal instants
 * have equal text. Integers above 2^53 never occur in practice (seq,
 * fence, version count events), so clients in JavaScript read them
 * exactly. Strings are escaped by json-c alone: no escaper of our own.
 */
#include "encode.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "codec_int.h"
#include "token.h"

void
pr__json_free(struct pr_json *j)
{
	json_object_put(J(j));
}

char *
pr__json_dump(const struct pr_json *j, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(J(j), DUMP_FLAGS, &n);
	char *out;

	if (s == NULL || (out = malloc(n + 1)) == NULL) {
		return NULL;
	}
	memcpy(out, s, n + 1);
	if (len != NULL) {
		*len = n;
	}
	return out;
}

void
pr__json_set_u64(struct pr_json *obj, const char *key, uint64_t v)
{
	json_object_object_add(J(obj), key, json_object_new_uint64(v));
}

void
pr__json_set_str(struct pr_json *obj, const char *key, const char *v)
{
	json_object_object_add(J(obj), key, json_object_new_string(v));
}

void
pr__json_set_bool(struct pr_json *obj, const char *key, int v)
{
	json_object_object_add(J(obj), key, json_object_new_boolean(v != 0));
}

static void
set_time(struct json_object *o, const char *key, int64_t t)
{
	char buf[PR_TIME_BUFSZ];

	json_object_object_add(o, key, json_object_new_string(pr_time_format(t, buf)));
}

static void
set_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static void
set_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

/* ["start", "end"] */
static struct json_object *
range_pair(struct pr_range r)
{
	struct json_object *a = json_object_new_array_ext(2);
	char buf[PR_TIME_BUFSZ];

	if (a != NULL) {
		json_object_array_add(a, json_object_new_string(pr_time_format(r.start, buf)));
		json_object_array_add(a, json_object_new_string(pr_time_format(r.end, buf)));
	}
	return a;
}

struct pr_json *
pr__json_source(const struct pr_source *s, const char *token)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", s->name);
	set_str(o, "owner", s->owner);
	set_time(o, "created_at", s->created_at);
	set_time(o, "updated_at", s->updated_at);
	set_u64(o, "seq", s->seq);
	if (token != NULL) {
		set_str(o, "access_token", token);
	}
	return PJ(o);
}

struct pr_json *
pr__json_provider(const char *source, const struct pr_provider *p, const char *token)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", source);
	set_str(o, "provider", p->name);
	set_time(o, "created_at", p->created_at);
	if (token != NULL) {
		set_str(o, "provider_token", token);
	}
	return PJ(o);
}

struct pr_json *
pr__json_partition(const struct pr_partition *p)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", p->source);
	set_str(o, "provider", p->provider);
	set_time(o, "start", p->range.start);
	set_time(o, "end", p->range.end);
	set_str(o, "state", pr__pstate_name(p->state));
	set_u64(o, "version", p->version);
	set_u64(o, "fence", p->fence);
	set_time(o, "since", p->since);
	set_time(o, "updated_at", p->updated_at);
	set_u64(o, "seq", p->seq);
	if (p->expires_at != 0) {
		set_time(o, "expires_at", p->expires_at);
	}
	if (p->session[0] != '\0') {
		/* Never the id: it is the capability to abort the session. */
		uint8_t d[PR_DIGEST_LEN];
		char hex[2 * PR_DIGEST_LEN + 1];

		if (pr__token_digest(p->session, strlen(p->session), d) == 0) {
			pr__digest_hex(d, hex);
			set_str(o, "session_digest", hex);
		}
	}
	if (p->reason[0] != '\0') {
		set_str(o, "reason", p->reason);
	}
	if (p->metadata[0] != '\0') {
		/* Stored as compact text by pr__cmd_decode; embedded as the object. */
		struct json_object *m = json_tokener_parse(p->metadata);
		if (json_object_is_type(m, json_type_object)) {
			json_object_object_add(o, "metadata", m);
		} else {
			json_object_put(m);
		}
	}
	return PJ(o);
}

struct pr_json *
pr__json_readiness(const char *source, struct pr_range want, const struct pr_readiness *r,
    const struct pr_partition *blockers, size_t nblockers, uint64_t seq)
{
	struct json_object *o = json_object_new_object();
	struct json_object *gaps, *bl;
	size_t ngaps = r->ngaps < r->gaps_cap ? r->ngaps : r->gaps_cap;

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "source", source);
	set_time(o, "start", want.start);
	set_time(o, "end", want.end);
	json_object_object_add(o, "ready", json_object_new_boolean(r->ready != 0));
	gaps = json_object_new_array();
	for (size_t i = 0; i < ngaps; i++) {
		json_object_array_add(gaps, range_pair(r->gaps[i]));
	}
	json_object_object_add(o, "gaps", gaps);
	bl = json_object_new_array();
	for (size_t i = 0; i < nblockers; i++) {
		json_object_array_add(bl, J(pr__json_partition(&blockers[i])));
	}
	json_object_object_add(o, "blockers", bl);
	if (r->ready_through == want.start) {
		json_object_object_add(o, "ready_through", NULL);
	} else {
		set_time(o, "ready_through", r->ready_through);
	}
	set_u64(o, "seq", seq);
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->ngaps > r->gaps_cap || r->nblockers > nblockers));
	return PJ(o);
}

struct pr_json *
pr__json_array(void)
{
	return PJ(json_object_new_array());
}

void
pr__json_append(struct pr_json *array, struct pr_json *item)
{
	if (json_object_array_add(J(array), J(item)) != 0) {
		json_object_put(J(item));
	}
}

/* {key: items (or [] when NULL), next_cursor: next, or null when NULL or ""};
 * takes ownership of items, also on failure. */
static struct pr_json *
items_and_cursor(const char *key, struct pr_json *items, const char *next)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(J(items));
		return NULL;
	}
	json_object_object_add(o, key, items != NULL ? J(items) : json_object_new_array());
	if (next == NULL || next[0] == '\0') {
		json_object_object_add(o, "next_cursor", NULL);
	} else {
		set_str(o, "next_cursor", next);
	}
	return PJ(o);
}

struct pr_json *
pr__json_page(struct pr_json *items, const char *next)
{
	return items_and_cursor("items", items, next);
}

struct pr_json *
pr__json_history(struct pr_json *events, const char *next)
{
	return items_and_cursor("events", events, next);
}

struct pr_json *
pr__json_session_abort(const char *session, struct pr_json *partitions, int64_t deferred_until)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(J(partitions));
		return NULL;
	}
	set_str(o, "session", session);
	json_object_object_add(
	    o, "failed", partitions != NULL ? J(partitions) : json_object_new_array());
	if (deferred_until != 0) {
		set_time(o, "deferred_until", deferred_until);
	}
	return PJ(o);
}

struct pr_json *
pr__json_resync(const char *source)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "republishing", source != NULL ? "source" : "all");
	if (source != NULL) {
		set_str(o, "source", source);
	}
	return PJ(o);
}

struct pr_json *
pr__json_summary(const struct pr_source *s, uint64_t epoch, const struct pr_range *ready,
    size_t nready, const struct pr_run *blocked, size_t nblocked, int truncated)
{
	struct json_object *o = json_object_new_object();
	struct json_object *ra, *ba;

	if (o == NULL) {
		return NULL;
	}
	set_u64(o, "v", PR_SUMMARY_V);
	set_str(o, "source", s->name);
	set_str(o, "owner", s->owner);
	set_u64(o, "seq", s->seq);
	set_u64(o, "epoch", epoch);
	set_time(o, "updated_at", s->updated_at);
	ra = json_object_new_array();
	for (size_t i = 0; i < nready; i++) {
		json_object_array_add(ra, range_pair(ready[i]));
	}
	json_object_object_add(o, "ready", ra);
	ba = json_object_new_array();
	for (size_t i = 0; i < nblocked; i++) {
		const struct pr_run *p = &blocked[i];
		struct json_object *b = json_object_new_object();
		set_time(b, "start", p->range.start);
		set_time(b, "end", p->range.end);
		set_str(b, "provider", p->provider);
		set_str(b, "state", pr__pstate_name(p->state));
		set_u64(b, "count", p->count);
		if (p->count == 1) {
			set_time(b, "since", p->since);
		}
		if (p->expires_at != 0) {
			set_time(b, "expires_at", p->expires_at);
		}
		if (p->reason[0] != '\0') {
			set_str(b, "reason", p->reason);
		}
		json_object_array_add(ba, b);
	}
	json_object_object_add(o, "blocked", ba);
	json_object_object_add(o, "truncated", json_object_new_boolean(truncated != 0));
	return PJ(o);
}

struct pr_json *
pr__json_partition_state(const struct pr_partition *p, uint64_t epoch)
{
	struct pr_json *j = pr__json_partition(p);

	if (j != NULL) {
		set_u64(J(j), "epoch", epoch);
	}
	return j;
}

struct pr_json *
pr__json_event(const struct pr_event *ev, uint64_t epoch)
{
	struct json_object *o = json_object_new_object();
	int about_partition = ev->range.start != 0 || ev->range.end != 0;

	if (o == NULL) {
		return NULL;
	}
	set_u64(o, "seq", ev->seq);
	set_u64(o, "epoch", epoch);
	set_time(o, "at", ev->at);
	set_str(o, "type", ev->type);
	set_str(o, "source", ev->source);
	if (ev->provider[0] != '\0') {
		set_str(o, "provider", ev->provider);
	}
	if (about_partition) {
		set_time(o, "start", ev->range.start);
		set_time(o, "end", ev->range.end);
		set_str(o, "state", pr__pstate_name(ev->state));
	}
	if (ev->fence != 0) {
		set_u64(o, "fence", ev->fence);
	}
	if (about_partition) {
		set_u64(o, "version", ev->version);
	}
	if (ev->reason[0] != '\0') {
		set_str(o, "reason", ev->reason);
	}
	return PJ(o);
}

struct pr_json *
pr__json_events(const char *source, uint64_t epoch, struct pr_json *events)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		pr__json_free(events);
		return NULL;
	}
	set_u64(o, "v", PR_EVENTS_V);
	set_str(o, "source", source);
	set_u64(o, "epoch", epoch);
	json_object_object_add(o, "events", events != NULL ? J(events) : json_object_new_array());
	return PJ(o);
}

struct pr_json *
pr__json_agent_status(const char *status, const struct pr_agent_identity *id, int64_t at, int lost)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	set_str(o, "status", status);
	set_str(o, "agent_id", id->agent_id);
	set_str(o, "version", PR_VERSION_STRING);
	set_u64(o, "epoch", id->epoch);
	set_str(o, "instance", id->instance);
	set_str(o, "store", id->store);
	if (id->takeover) {
		json_object_object_add(o, "takeover", json_object_new_boolean(1));
	}
	if (lost) {
		json_object_object_add(o, "lost", json_object_new_boolean(1));
	}
	set_time(o, "at", at);
	return PJ(o);
}

struct pr_json *
pr__json_agent_stats(const struct pr_agent_stats *st)
{
	struct json_object *o = json_object_new_object();
	struct json_object *cmds = json_object_new_object();
	struct json_object *commit = json_object_new_object();
	struct json_object *store = json_object_new_object();
	struct json_object *flow = json_object_new_object();
	struct json_object *spill = json_object_new_object();

	if (o == NULL || cmds == NULL || commit == NULL || store == NULL || flow == NULL
	    || spill == NULL) {
		json_object_put(o);
		json_object_put(cmds);
		json_object_put(commit);
		json_object_put(store);
		json_object_put(flow);
		json_object_put(spill);
		return NULL;
	}
	set_str(o, "agent_id", st->agent_id);
	set_str(o, "version", PR_VERSION_STRING);
	set_u64(o, "epoch", st->epoch);
	set_time(o, "at", st->at);
	set_u64(o, "uptime_s", (uint64_t)((st->at - st->started_at) / 1000000));
	set_u64(cmds, "total", st->commands);
	set_u64(cmds, "refused", st->refused);
	set_u64(cmds, "replayed", st->replayed);
	set_u64(cmds, "retained_dropped", st->retained_dropped);
	json_object_object_add(o, "commands", cmds);
	set_u64(o, "batches", st->batches);
	set_u64(o, "leases_expired", st->leases_expired);
	json_object_object_add(commit, "last", json_object_new_double(st->commit_ms_last));
	json_object_object_add(commit, "max", json_object_new_double(st->commit_ms_max));
	json_object_object_add(o, "commit_ms", commit);
	set_u64(o, "queue", st->queue);
	set_u64(flow, "bytes", st->queue_bytes);
	set_u64(flow, "peak_bytes", st->queue_peak_bytes);
	set_u64(flow, "max_commands", st->queue_max);
	set_u64(flow, "max_bytes", st->queue_max_bytes);
	set_u64(flow, "full_waits", st->queue_full_waits);
	set_u64(flow, "over_limit", st->queue_over_limit);
	set_u64(flow, "spilled", st->queue_spilled);
	set_u64(spill, "commands", st->spill_len);
	set_u64(spill, "bytes", st->spill_bytes);
	json_object_object_add(flow, "spill", spill);
	json_object_object_add(o, "flow", flow);
	set_u64(o, "other_agents", st->other_agents);
	set_u64(store, "used_bytes", st->store_used_bytes);
	set_u64(store, "map_bytes", st->store_map_bytes);
	set_u64(store, "readers", st->store_readers);
	json_object_object_add(o, "store", store);
	return PJ(o);
}

static char *
dump_put(struct json_object *o, size_t *len)
{
	char *s = pr__json_dump(PJ(o), len);

	json_object_put(o);
	return s;
}

char *
pr__reply_encode(int err, const char *message, const char *request_id, const char *correlation_id,
    struct pr_json *result, size_t *len)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(J(result));
		return NULL;
	}
	json_object_object_add(o, "ok", json_object_new_boolean(err == 0));
	json_object_object_add(
	    o, "status", json_object_new_int(err == 0 ? 200 : pr_err_status(err)));
	if (request_id != NULL) {
		set_str(o, "request_id", request_id);
	}
	if (correlation_id != NULL) {
		set_str(o, "correlation_id", correlation_id);
	}
	if (err == 0) {
		json_object_object_add(
		    o, "result", result != NULL ? J(result) : json_object_new_object());
	} else {
		struct json_object *e = json_object_new_object();
		set_str(e, "code", pr_err_code(err));
		set_str(e, "message", message != NULL ? message : pr_strerror(err));
		if (result != NULL) {
			json_object_object_add(e, "details", J(result));
		} else if (err == PR_EINDOUBT) {
			/* Clients send it again under the same request_id. */
			struct json_object *d = json_object_new_object();

			json_object_object_add(d, "in_doubt", json_object_new_boolean(1));
			json_object_object_add(e, "details", d);
		}
		json_object_object_add(o, "error", e);
	}
	return dump_put(o, len);
}

char *
pr__reply_replayed(const char *stored, size_t stored_len, const char *correlation_id, size_t *len)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (stored_len > INT_MAX || (tok = json_tokener_new_ex(JSON_DEPTH + 8)) == NULL) {
		return NULL;
	}
	o = json_tokener_parse_ex(tok, stored, (int)stored_len);
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "replayed", json_object_new_boolean(1));
	if (correlation_id != NULL) {
		set_str(o, "correlation_id", correlation_id);
	} else {
		json_object_object_del(o, "correlation_id");
	}
	return dump_put(o, len);
}
