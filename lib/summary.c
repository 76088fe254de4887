/* SPDX-License-Identifier: MIT */
/*
 * Retained summaries (P/state/<source>) parsed into struct pr_summary, and
 * readiness decided from one with the agent's own rule (pr_readiness_eval),
 * so a client at any site answers from its broker alone.
 */
#include <partreg/client.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "message.h"

static int
get_time_field(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;

	*out = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		return PR_EJSON;
	}
	return pr_time_parse(json_object_get_string(v), (size_t)json_object_get_string_len(v), out);
}

/* Does o have a non-null member key (a time, once get_time_field read it)? */
static int
has_time(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && !json_object_is_type(v, json_type_null);
}

static uint64_t
get_u64_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		return n > 0 ? (uint64_t)n : 0;
	}
	return 0;
}

static int
parse_range(struct json_object *pair, struct pr_range *r)
{
	int rc;

	if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2
	    || !json_object_is_type(json_object_array_get_idx(pair, 0), json_type_string)
	    || !json_object_is_type(json_object_array_get_idx(pair, 1), json_type_string)) {
		return PR_EJSON;
	}
	rc = pr_time_parse(json_object_get_string(json_object_array_get_idx(pair, 0)),
	    (size_t)json_object_get_string_len(json_object_array_get_idx(pair, 0)), &r->start);
	if (rc == 0) {
		rc = pr_time_parse(json_object_get_string(json_object_array_get_idx(pair, 1)),
		    (size_t)json_object_get_string_len(json_object_array_get_idx(pair, 1)),
		    &r->end);
	}
	return rc;
}

int
pr_summary_parse(const char *json, size_t len, struct pr_summary *out)
{
	struct json_object *o = pr__json_object_parse(json, len);
	struct json_object *ready, *blocked, *v;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (o == NULL || !json_object_object_get_ex(o, "ready", &ready)
	    || !json_object_is_type(ready, json_type_array)
	    || !json_object_object_get_ex(o, "blocked", &blocked)
	    || !json_object_is_type(blocked, json_type_array)) {
		json_object_put(o);
		return PR_EJSON;
	}
	/* A format this reader does not know could mean anything: refuse it
	 * rather than decide readiness from it. */
	out->v = json_object_object_get_ex(o, "v", &v) ? (unsigned)get_u64_field(o, "v") : 1;
	if (out->v < 1 || out->v > 2) {
		json_object_put(o);
		memset(out, 0, sizeof *out);
		return PR_EJSON;
	}
	pr__json_str_field(o, "source", out->source, sizeof out->source);
	out->seq = get_u64_field(o, "seq");
	out->epoch = get_u64_field(o, "epoch");
	out->truncated
	    = json_object_object_get_ex(o, "truncated", &v) && json_object_get_boolean(v);
	out->ready = calloc(json_object_array_length(ready) + 1, sizeof *out->ready);
	out->blocked = calloc(json_object_array_length(blocked) + 1, sizeof *out->blocked);
	if (out->ready == NULL || out->blocked == NULL) {
		rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < json_object_array_length(ready); i++) {
		rc = parse_range(json_object_array_get_idx(ready, i), &out->ready[out->nready++]);
	}
	for (size_t i = 0; rc == 0 && i < json_object_array_length(blocked); i++) {
		struct json_object *b = json_object_array_get_idx(blocked, i);
		struct pr_blocker *pb = &out->blocked[out->nblocked++];

		if (!json_object_is_type(b, json_type_object)) {
			rc = PR_EJSON;
			break;
		}
		if ((rc = get_time_field(b, "start", &pb->range.start)) != 0
		    || (rc = get_time_field(b, "end", &pb->range.end)) != 0
		    || (rc = get_time_field(b, "since", &pb->since)) != 0
		    || (rc = get_time_field(b, "expires_at", &pb->expires_at)) != 0) {
			break;
		}
		/* A blocker without its range, or an empty one, would block
		 * nothing: refused, not read as "ready". */
		if (!has_time(b, "start") || !has_time(b, "end")
		    || pb->range.start >= pb->range.end) {
			rc = PR_EJSON;
			break;
		}
		pb->count
		    = json_object_object_get_ex(b, "count", &v) ? get_u64_field(b, "count") : 1;
		if (pb->count == 0) {
			rc = PR_EJSON;
			break;
		}
		pr__json_str_field(b, "provider", pb->provider, sizeof pb->provider);
		pr__json_str_field(b, "state", pb->state, sizeof pb->state);
		pr__json_str_field(b, "reason", pb->reason, sizeof pb->reason);
	}
	json_object_put(o);
	if (rc != 0) {
		pr_summary_release(out);
	}
	return rc;
}

void
pr_summary_release(struct pr_summary *s)
{
	free(s->ready);
	free(s->blocked);
	memset(s, 0, sizeof *s);
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
