/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: libpartreg's readers of what the broker delivers,
 * which anyone allowed to publish under the prefix can write. The sources
 * of libpartreg_static are built with coverage instrumentation, ASan and
 * UBSan (CMakeLists.txt here); each input goes through all of:
 *
 *  - pr_summary_parse (a retained P/state/<source>), then
 *    pr_summary_readiness over it, compared with a plain sweep of the
 *    same ranges (the rule in <partreg/interval.h>), and
 *    pr_summary_release;
 *  - pr__reply_ids (what ties a reply to its request) and pr__reply_in_doubt;
 *  - pr__body_prepare (a caller's command body);
 *  - pr_time_parse, and pr_time_format of what it gives back;
 *  - pr_topic_matches, the input split at its first '\n' into filter and
 *    topic.
 *
 * Besides memory errors, leaks and undefined behaviour, a broken promise
 * of the headers aborts with a message, so the fuzzer reports it like a
 * crash. The seeds are every JSON file of schemas/examples/ (run_fuzz.sh).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/client.h>

#include "message.h"
#include "names.h"

#define FUZZ_NAME "fuzz_client"
#include "check.h"

#define NGAPS    4
#define REPLY_TO "partreg/v1/reply/fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
in_time_range(int64_t t)
{
	return t >= PR_TIME_MIN && t <= PR_TIME_MAX;
}

static int
by_start(const void *a, const void *b)
{
	const struct pr_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/*
 * The readiness of want from s by the rule's words alone: *covered_to, how
 * far from want.start the ready ranges cover want without a gap (a sweep
 * over them sorted by start); *nblockers, the blockers overlapping want;
 * *through, covered_to cut at the first of them.
 */
static void
expected_readiness(const struct pr_summary *s, struct pr_range want, int64_t *covered_to,
    size_t *nblockers, int64_t *through)
{
	struct pr_range *r = malloc((s->nready + 1) * sizeof *r);
	int64_t covered = want.start, cut = want.end;

	CHECK(r != NULL, "out of memory");
	*nblockers = 0;
	for (size_t i = 0; i < s->nblocked; i++) {
		struct pr_range b = s->blocked[i].range;

		if (b.start < b.end && b.start < want.end && want.start < b.end) {
			(*nblockers)++;
			if ((b.start > want.start ? b.start : want.start) < cut) {
				cut = b.start > want.start ? b.start : want.start;
			}
		}
	}
	memcpy(r, s->ready, s->nready * sizeof *r);
	qsort(r, s->nready, sizeof *r, by_start);
	for (size_t i = 0; i < s->nready; i++) {
		if (r[i].start >= r[i].end) {
			continue;
		}
		if (r[i].start > covered) {
			break;
		}
		if (r[i].end > covered) {
			covered = r[i].end;
		}
	}
	free(r);
	if (covered > want.end) {
		covered = want.end;
	}
	*covered_to = covered;
	*through = covered < cut ? covered : cut;
}

static void
check_readiness(const struct pr_summary *s, struct pr_range want)
{
	struct pr_range gaps[NGAPS];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = NGAPS };
	size_t nblockers;
	int64_t covered, through;

	pr_summary_readiness(s, want, &r);
	if (want.start >= want.end) {
		CHECK(!r.ready && r.ngaps == 0 && r.nblockers == 0 && r.ready_through == want.start,
		    "an empty want");
		return;
	}
	expected_readiness(s, want, &covered, &nblockers, &through);
	CHECK(r.ready == (covered == want.end && nblockers == 0), "ready");
	CHECK(r.nblockers == nblockers, "nblockers");
	CHECK(r.ready_through == through, "ready_through");
	CHECK((r.ngaps == 0) == (covered == want.end), "ngaps");
	CHECK(r.ngaps == 0 || gaps[0].start == covered, "the first gap");
	for (size_t i = 0; i < r.ngaps && i < NGAPS; i++) {
		CHECK(gaps[i].start >= want.start && gaps[i].start < gaps[i].end
		        && gaps[i].end <= want.end,
		    "a gap inside want");
		CHECK(i == 0 || gaps[i - 1].end < gaps[i].start, "gaps sorted and apart");
	}
}

static void
fuzz_summary(const char *text, size_t len)
{
	struct pr_summary s;
	struct pr_range all = { PR_TIME_MAX, PR_TIME_MIN };
	int rc = pr_summary_parse(text, len, &s);

	if (rc != 0) {
		CHECK(rc == PR_EJSON || rc == PR_ETIME || rc == -ENOMEM, pr_strerror(rc));
		CHECK(s.ready == NULL && s.blocked == NULL && s.nready == 0 && s.nblocked == 0,
		    "a refused summary is empty");
		pr_summary_release(&s);
		return;
	}
	CHECK(s.ready != NULL && s.blocked != NULL, "arrays of a parsed summary");
	CHECK(terminated(s.source, sizeof s.source), "source");
	for (size_t i = 0; i < s.nready; i++) {
		CHECK(in_time_range(s.ready[i].start) && in_time_range(s.ready[i].end), "ready");
		all.start = s.ready[i].start < all.start ? s.ready[i].start : all.start;
		all.end = s.ready[i].end > all.end ? s.ready[i].end : all.end;
	}
	for (size_t i = 0; i < s.nblocked; i++) {
		const struct pr_blocker *b = &s.blocked[i];

		CHECK(terminated(b->provider, sizeof b->provider), "provider");
		CHECK(terminated(b->state, sizeof b->state), "state");
		CHECK(terminated(b->reason, sizeof b->reason), "reason");
		/* (0 when not given, which is in range too) */
		CHECK(in_time_range(b->range.start) && in_time_range(b->range.end), "blocked");
		all.start = b->range.start < all.start ? b->range.start : all.start;
		all.end = b->range.end > all.end ? b->range.end : all.end;
	}
	/* Everything the summary mentions, its first ready range, and a day. */
	check_readiness(&s, all);
	if (s.nready > 0) {
		check_readiness(&s, s.ready[0]);
	}
	check_readiness(
	    &s, (struct pr_range) { INT64_C(1672531200000000), INT64_C(1672617600000000) });
	pr_summary_release(&s);
	CHECK(s.ready == NULL && s.blocked == NULL, "released");
}

static void
fuzz_reply(const char *text, size_t len)
{
	char corr[PR_ID_MAX + 1], id[PR_ID_MAX + 1], code[32];
	int rc = pr__reply_ids(text, len, corr, id, code);

	CHECK(rc == 0 || rc == PR_EJSON, pr_strerror(rc));
	CHECK(terminated(corr, sizeof corr) && terminated(id, sizeof id)
	        && terminated(code, sizeof code),
	    "ids");
	CHECK(rc == 0 || (corr[0] == '\0' && id[0] == '\0' && code[0] == '\0'), "empty on failure");
}

/* body: NUL-terminated, as pr_client_request gets it. */
static void
fuzz_body(const char *body)
{
	char id[PR_ID_MAX + 1], corr[PR_ID_MAX + 1], rid[PR_ID_MAX + 1], code[32], *out = NULL;
	int rc = pr__body_prepare(body, "fuzz-request", REPLY_TO, "fuzz-corr", &out, id);
	int doubt = pr__reply_in_doubt(body); /* (taken as a reply) */

	CHECK(doubt == 0 || doubt == 1, "in doubt: 0 or 1");
	if (rc != 0) {
		/* PR_EFIELD: a request_id the agent would refuse (not 1..64
		 * printable ASCII). */
		CHECK(rc == PR_EJSON || rc == PR_EFIELD || rc == -ENOMEM, pr_strerror(rc));
		CHECK(out == NULL, "no body on failure");
		return;
	}
	CHECK(out != NULL && terminated(id, sizeof id) && pr__id_check(id, strlen(id)) == 0,
	    "a prepared body, with a request_id the agent takes");
	/* What is sent is an object with our correlation_id and its request_id. */
	CHECK(pr__reply_ids(out, strlen(out), corr, rid, code) == 0
	        && strcmp(corr, "fuzz-corr") == 0 && strcmp(rid, id) == 0,
	    out);
	free(out);
}

static void
fuzz_time(const char *text, size_t len)
{
	char buf[PR_TIME_BUFSZ], again[PR_TIME_BUFSZ];
	int64_t t, u;
	int rc = pr_time_parse(text, len, &t);

	if (rc != 0) {
		CHECK(rc == PR_ETIME, pr_strerror(rc));
		return;
	}
	CHECK(in_time_range(t), "a parsed time in range");
	pr_time_format(t, buf);
	CHECK(pr_time_parse(buf, strlen(buf), &u) == 0 && u == t, buf);
	CHECK(strcmp(pr_time_format(u, again), buf) == 0, again);
}

/* filter and topic: NUL-terminated. */
static void
fuzz_topic(const char *filter, const char *topic)
{
	int m = pr_topic_matches(filter, topic);

	CHECK(m == 0 || m == 1, "0 or 1");
	/* Without wildcards a filter matches exactly its own topic. */
	if (strpbrk(filter, "+#") == NULL) {
		CHECK(m == (strcmp(filter, topic) == 0), filter);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char *copy = malloc(size + 1), *nl;

	fuzz_summary(text, size);
	fuzz_reply(text, size);
	fuzz_time(text, size);
	if (copy == NULL) {
		return 0;
	}
	memcpy(copy, data, size);
	copy[size] = '\0';
	fuzz_body(copy);
	nl = strchr(copy, '\n');
	if (nl != NULL) {
		*nl = '\0';
		fuzz_topic(copy, nl + 1);
	} else {
		fuzz_topic(copy, copy);
	}
	free(copy);
	return 0;
}
