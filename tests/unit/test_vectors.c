/* SPDX-License-Identifier: MIT */
/*
 * The shared readiness vectors (tests/vectors/readiness.json), run through
 * libpartreg's public API: pr_summary_parse, then pr_summary_readiness.
 * The Python package runs the same file (python/tests/test_vectors.py), so
 * both clients decide readiness from a summary exactly as the agent does.
 *
 * Each case is {name, summary, want: {start, end}, expect}: expect is
 * {ready, gaps, ready_through, nblockers, truncated} (times canonical,
 * ready_through null when not even want's first instant is ready), or
 * {error: true} for a summary the parser must refuse.
 *
 * PARTREG_VECTORS_DUMP=1 prints what the C code computes for each case, one
 * JSON object per line, instead of checking: how the expectations of a new
 * case are made (then read them by hand before committing them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include <partreg/client.h>
#include <partreg/error.h>
#include <partreg/time.h>

#define GAPS_CAP 64

static const char *
vectors_path(void)
{
	static char path[4096];
	const char *dir = getenv("PARTREG_VECTORS");

	if (dir == NULL || dir[0] == '\0') {
		fail_msg("PARTREG_VECTORS is not set: run through ctest, or set it to "
		         "<source tree>/tests/vectors");
	}
	snprintf(path, sizeof path, "%s/readiness.json", dir);
	return path;
}

static const char *
str_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

static int64_t
want_time(const char *name, struct json_object *want, const char *key)
{
	const char *s = str_member(want, key);
	int64_t t = 0;

	if (s == NULL || pr_time_parse(s, strlen(s), &t) != 0) {
		fail_msg("%s: want.%s is not a time", name, key);
	}
	return t;
}

/* What the C code computes for a case: {"error": true} or the readiness. */
static struct json_object *
compute(const char *name, struct json_object *c)
{
	struct json_object *summary, *want, *out = json_object_new_object(), *gaps;
	struct pr_range gapbuf[GAPS_CAP];
	struct pr_readiness r = { .gaps = gapbuf, .gaps_cap = GAPS_CAP };
	struct pr_summary s;
	struct pr_range w;
	char t[PR_TIME_BUFSZ];
	const char *text;

	if (!json_object_object_get_ex(c, "summary", &summary)) {
		fail_msg("%s: no summary", name);
	}
	text = json_object_to_json_string_ext(summary, JSON_C_TO_STRING_PLAIN);
	if (pr_summary_parse(text, strlen(text), &s) != 0) {
		json_object_object_add(out, "error", json_object_new_boolean(1));
		return out;
	}
	if (!json_object_object_get_ex(c, "want", &want)) {
		fail_msg("%s: the summary parses but the case has no want", name);
	}
	w.start = want_time(name, want, "start");
	w.end = want_time(name, want, "end");
	pr_summary_readiness(&s, w, &r);
	if (r.ngaps > GAPS_CAP) {
		fail_msg("%s: more than %d gaps", name, GAPS_CAP);
	}
	json_object_object_add(out, "ready", json_object_new_boolean(r.ready));
	gaps = json_object_new_array();
	for (size_t i = 0; i < r.ngaps; i++) {
		struct json_object *g = json_object_new_array();

		json_object_array_add(
		    g, json_object_new_string(pr_time_format(gapbuf[i].start, t)));
		json_object_array_add(g, json_object_new_string(pr_time_format(gapbuf[i].end, t)));
		json_object_array_add(gaps, g);
	}
	json_object_object_add(out, "gaps", gaps);
	/* As the agent's readiness/query says it: null when nothing from start on is ready. */
	json_object_object_add(out, "ready_through",
	    r.ready_through > w.start ? json_object_new_string(pr_time_format(r.ready_through, t))
	                              : NULL);
	json_object_object_add(out, "nblockers", json_object_new_int64((int64_t)r.nblockers));
	json_object_object_add(out, "truncated", json_object_new_boolean(s.truncated));
	pr_summary_release(&s);
	return out;
}

static void
test_vectors(void **state)
{
	struct json_object *cases = json_object_from_file(vectors_path());
	int dump = getenv("PARTREG_VECTORS_DUMP") != NULL, failures = 0;
	size_t n;

	(void)state;
	if (cases == NULL || !json_object_is_type(cases, json_type_array)) {
		fail_msg("%s is not a JSON array", vectors_path());
	}
	n = json_object_array_length(cases);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(cases, i), *expect, *got;
		const char *name = str_member(c, "name");

		if (name == NULL) {
			fail_msg("case %zu has no name", i);
		}
		got = compute(name, c);
		if (dump) {
			printf("{\"name\":%s,\"expect\":%s}\n",
			    json_object_to_json_string_ext(
			        json_object_object_get(c, "name"), JSON_C_TO_STRING_PLAIN),
			    json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN));
		} else if (!json_object_object_get_ex(c, "expect", &expect)) {
			print_error("%s: no expect\n", name);
			failures++;
		} else if (!json_object_equal(expect, got)) {
			print_error("%s:\n  expected %s\n  computed %s\n", name,
			    json_object_to_json_string_ext(expect, JSON_C_TO_STRING_PLAIN),
			    json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN));
			failures++;
		}
		json_object_put(got);
	}
	json_object_put(cases);
	if (failures > 0) {
		fail_msg("%d of %zu vectors disagree with libpartreg", failures, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
