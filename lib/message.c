/* SPDX-License-Identifier: MIT */
/* See message.h. */
#include "message.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include <partreg/error.h>

#include "names.h"

#define JSON_DEPTH 24
#define DUMP_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct json_object *
pr__json_object_parse(const char *text, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (len > INT_MAX || (tok = json_tokener_new_ex(JSON_DEPTH)) == NULL) {
		return NULL;
	}
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success
	    || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static void
set_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* The object as compact JSON text (heap; NULL without memory), then released. */
static char *
dump_put(struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, DUMP_FLAGS);
	char *s = text != NULL ? strdup(text) : NULL;

	json_object_put(o);
	return s;
}

int
pr__body_prepare(const char *body, const char *request_id_if_missing, const char *reply_to,
    const char *correlation_id, char **out, char request_id[PR_ID_MAX + 1])
{
	struct json_object *o
	    = pr__json_object_parse(body != NULL ? body : "{}", body != NULL ? strlen(body) : 2);
	struct json_object *v;

	*out = NULL;
	if (o == NULL) {
		return PR_EJSON;
	}
	if (json_object_object_get_ex(o, "request_id", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			json_object_put(o);
			return PR_EJSON;
		}
		/* One the agent refuses would be refused without it (the reply
		 * cannot name it), so no reply would be known for ours. */
		if (pr__id_check(json_object_get_string(v), (size_t)json_object_get_string_len(v))
		    != 0) {
			json_object_put(o);
			return PR_EFIELD;
		}
		snprintf(request_id, PR_ID_MAX + 1, "%s", json_object_get_string(v));
	} else {
		snprintf(request_id, PR_ID_MAX + 1, "%s", request_id_if_missing);
		set_str(o, "request_id", request_id);
	}
	if (reply_to != NULL) {
		set_str(o, "reply_to", reply_to);
	}
	if (correlation_id != NULL) {
		set_str(o, "correlation_id", correlation_id);
	}
	*out = dump_put(o);
	return *out != NULL ? 0 : -ENOMEM;
}

void
pr__json_str_field(struct json_object *o, const char *key, char *out, size_t cap)
{
	struct json_object *v;

	out[0] = '\0';
	if (o != NULL && json_object_object_get_ex(o, key, &v)
	    && json_object_is_type(v, json_type_string)) {
		snprintf(out, cap, "%s", json_object_get_string(v));
	}
}

int
pr__reply_ids(const char *reply, size_t len, char correlation_id[PR_ID_MAX + 1],
    char request_id[PR_ID_MAX + 1], char code[32])
{
	struct json_object *o = pr__json_object_parse(reply, len);
	struct json_object *e = NULL;
	int rc = o != NULL ? 0 : PR_EJSON;

	pr__json_str_field(o, "correlation_id", correlation_id, PR_ID_MAX + 1);
	pr__json_str_field(o, "request_id", request_id, PR_ID_MAX + 1);
	if (o != NULL) {
		json_object_object_get_ex(o, "error", &e);
	}
	pr__json_str_field(json_object_is_type(e, json_type_object) ? e : NULL, "code", code, 32);
	json_object_put(o);
	return rc;
}

int
pr__reply_in_doubt(const char *reply)
{
	struct json_object *o = pr__json_object_parse(reply, strlen(reply));
	struct json_object *e = NULL, *v = NULL;
	int yes = o != NULL && json_object_object_get_ex(o, "error", &e)
	    && json_object_object_get_ex(e, "code", &v) && json_object_is_type(v, json_type_string)
	    && strcmp(json_object_get_string(v), "store_unavailable") == 0;

	json_object_put(o);
	return yes;
}
