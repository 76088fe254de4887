/* SPDX-License-Identifier: MIT */
/*
 * partreg wait and partreg watch: following topics instead of asking.
 *
 * wait (and ready) decide readiness from the retained summary
 * P/state/<source>, which the broker sends at once on subscribe and again
 * on every change, with the agent's own interval code
 * (pr_summary_readiness): no polling, the answer comes within one broker
 * hop of the unlock, and the agent need not be there. They also follow the
 * retained P/agent/status, to say "agent offline since" while they wait.
 * Only when the summary says it is truncated (more ready ranges or
 * blockers than the agent lists) does wait ask the agent
 * (readiness/query), and only when no summary comes while the agent is
 * online does it ask whether the source exists (source/get): a request
 * that gets no answer just means "keep waiting".
 *
 * Messages arrive on the MQTT library's thread; its callback only copies
 * them into an inbox and writes a byte to a pipe. The main thread poll()s
 * that pipe next to a signalfd, so Ctrl-C and SIGTERM end the wait cleanly
 * (the live status line is cleared) without a signal handler racing the
 * library's threads. The signals are blocked before the client starts, so
 * its threads inherit the mask and never take them.
 *
 * The inbox lives in the frame of wait or watch, and the client delivers
 * messages until it is closed, after they return: so the inbox owns its
 * subscription (inbox_follow) and inbox_release ends it first, also when
 * subscribing failed (the library keeps a failed subscription, to make it
 * on reconnect). Once pr_client_unsubscribe returns no callback runs with
 * the inbox, and it may go.
 */
#include "cli.h"
#include <partreg/time.h>

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define GAPS_MAX 64

/* Messages handed from the receive thread to the main thread. */
struct inbox {
	pthread_mutex_t mu;
	char **topics, **msgs;
	size_t *lens;
	size_t n, cap;
	int latest_only; /* keep only the newest message of each topic */
	int pipe[2];
	struct pr_client *client; /* set by inbox_follow: the subscriptions to end */
	char filters[3][512];
	int nfilters;
};

static void
inbox_cb(void *arg, const char *topic, const char *payload, size_t len)
{
	struct inbox *in = arg;
	char *copy = malloc(len + 1), *tcopy = strdup(topic);
	char byte = 1;
	size_t i;

	if (copy == NULL || tcopy == NULL) {
		free(copy);
		free(tcopy);
		return; /* wait: the next summary supersedes it; watch: one event lost */
	}
	memcpy(copy, payload, len);
	copy[len] = '\0';
	pthread_mutex_lock(&in->mu);
	for (i = 0; in->latest_only && i < in->n; i++) {
		if (strcmp(in->topics[i], topic) == 0) {
			free(in->msgs[i]);
			free(tcopy);
			in->msgs[i] = copy;
			in->lens[i] = len;
			break;
		}
	}
	if (!in->latest_only || i == in->n) {
		if (in->n == in->cap) {
			size_t cap = in->cap ? in->cap * 2 : 16;
			char **m = realloc(in->msgs, cap * sizeof *m);
			char **t = m ? realloc(in->topics, cap * sizeof *t) : NULL;
			size_t *l = t ? realloc(in->lens, cap * sizeof *l) : NULL;

			if (m != NULL) {
				in->msgs = m;
			}
			if (t != NULL) {
				in->topics = t;
			}
			if (l == NULL) {
				pthread_mutex_unlock(&in->mu);
				free(copy);
				free(tcopy);
				return;
			}
			in->lens = l;
			in->cap = cap;
		}
		in->topics[in->n] = tcopy;
		in->msgs[in->n] = copy;
		in->lens[in->n++] = len;
	}
	pthread_mutex_unlock(&in->mu);
	/* Non-blocking: a full pipe already says "look". */
	if (write(in->pipe[1], &byte, 1) < 0) {
		(void)0;
	}
}

static int
inbox_init(struct inbox *in, int latest_only)
{
	memset(in, 0, sizeof *in);
	in->latest_only = latest_only;
	if (pipe2(in->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		return -errno;
	}
	pthread_mutex_init(&in->mu, NULL);
	return 0;
}

/*
 * Subscribe the inbox to filter (under the prefix), printing why when that
 * fails. The subscription belongs to the inbox from here on, also when it
 * failed (the library keeps it to make on reconnect): inbox_release ends it.
 */
static int
inbox_follow(struct inbox *in, struct pr_cli *cli, const char *filter)
{
	char *f = in->filters[in->nfilters];

	if (in->nfilters == (int)(sizeof in->filters / sizeof in->filters[0])) {
		pr__cli_fail(cli, "internal", "too many subscriptions");
		return PR_EXIT_REFUSED;
	}
	snprintf(f, sizeof in->filters[0], "%s", filter);
	in->nfilters++;
	in->client = cli->client;
	if (pr_client_subscribe(cli->client, f, inbox_cb, in, cli->timeout_ms) != 0) {
		pr__cli_fail(cli, "broker_unreachable", "cannot subscribe to %s/%s",
		    pr_client_prefix(cli->client), f);
		return PR_EXIT_UNREACHABLE;
	}
	return PR_EXIT_OK;
}

/* The queued messages, oldest first (the caller frees them with batch_free). */
struct batch {
	char **topics, **msgs;
	size_t *lens;
	size_t n;
};

static void
inbox_take(struct inbox *in, struct batch *b)
{
	char buf[256];

	while (read(in->pipe[0], buf, sizeof buf) > 0) { }
	pthread_mutex_lock(&in->mu);
	b->topics = in->topics;
	b->msgs = in->msgs;
	b->lens = in->lens;
	b->n = in->n;
	in->topics = NULL;
	in->msgs = NULL;
	in->lens = NULL;
	in->n = in->cap = 0;
	pthread_mutex_unlock(&in->mu);
}

static void
batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->topics[i]);
		free(b->msgs[i]);
	}
	free(b->topics);
	free(b->msgs);
	free(b->lens);
}

/*
 * End the subscriptions, then free what is queued and close the pipe. The
 * inbox usually lives in a stack frame, and messages keep coming until
 * pr_client_close: once pr_client_unsubscribe has returned, no callback
 * runs with this inbox any more.
 */
static void
inbox_release(struct inbox *in)
{
	struct batch left;

	for (int i = 0; i < in->nfilters; i++) {
		pr_client_unsubscribe(in->client, in->filters[i], inbox_cb, in);
	}
	inbox_take(in, &left);
	batch_free(&left);
	close(in->pipe[0]);
	close(in->pipe[1]);
	pthread_mutex_destroy(&in->mu);
}

/* Is topic P/suffix? */
static int
topic_is(const char *topic, const char *suffix)
{
	size_t t = strlen(topic), n = strlen(suffix);

	return t > n && topic[t - n - 1] == '/' && strcmp(topic + t - n, suffix) == 0;
}

/* Is topic P/events/<source> (not P/state/<source>)? */
static int
is_events(const struct pr_cli *cli, const char *topic)
{
	char suffix[512];

	snprintf(suffix, sizeof suffix, "events/%s", cli->args[0]);
	return topic_is(topic, suffix);
}

/* What the retained P/agent/status says, as wait and watch see it. */
struct agent_seen {
	int known;  /* a status came */
	int online; /* it says online */
	char at[PR_TIME_BUFSZ];
};

static void
agent_seen_update(struct agent_seen *a, const char *payload, size_t len)
{
	struct json_object *o;

	if (pr__cli_json_parse(payload, len, &o) != 0) {
		return;
	}
	a->known = 1;
	a->online = pr__cli_json_str(o, "status") != NULL
	    && strcmp(pr__cli_json_str(o, "status"), "online") == 0;
	snprintf(a->at, sizeof a->at, "%s",
	    pr__cli_json_str(o, "at") != NULL ? pr__cli_json_str(o, "at") : "?");
	json_object_put(o);
}

/*
 * Block SIGINT and SIGTERM in this thread and every thread it starts later
 * (the client's), and return a signalfd for them.
 */
static int
signals_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * Wait for the pipe or a signal until deadline (-1 = none). Returns 0 when
 * messages may be waiting, the signal number, or -ETIMEDOUT.
 */
static int
wait_event(struct inbox *in, int sfd, int64_t deadline)
{
	struct pollfd p[2] = { { in->pipe[0], POLLIN, 0 }, { sfd, POLLIN, 0 } };

	for (;;) {
		int timeout = -1, rc;
		if (deadline >= 0) {
			int64_t left = deadline - pr__cli_mono_ms();
			if (left <= 0) {
				return -ETIMEDOUT;
			}
			timeout = left > 60000 ? 60000 : (int)left;
		}
		rc = poll(p, sfd >= 0 ? 2 : 1, timeout);
		if (rc < 0 && errno != EINTR) {
			return -errno;
		}
		if (rc > 0 && (p[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				return (int)si.ssi_signo;
			}
		}
		if (rc > 0 && (p[0].revents & POLLIN)) {
			return 0;
		}
	}
}

/* ---- watch ---- */

/*
 * An unknown source has no summary, and a wait or watch for it would last
 * for ever: once a second has passed without one and the agent is online,
 * ask it (source/get). Returns PR_EXIT_OK, PR_EXIT_UNKNOWN (said), or
 * another exit code; a timeout is PR_EXIT_OK (the agent does not answer:
 * keep following).
 */
static int check_source(struct pr_cli *cli);

/* Print one event, a line of its own; 1 when printed. */
static int
watch_print(const struct pr_cli *cli, struct json_object *ev)
{
	if (!json_object_is_type(ev, json_type_object)) {
		fprintf(stderr, "partreg: an event that is not a JSON object\n");
		return 0;
	}
	if (cli->json) {
		pr__cli_json_write(stdout, ev);
		putc('\n', stdout);
	} else {
		pr__cli_print_record(stdout, NULL, ev, NULL);
	}
	return 1;
}

/*
 * Print the events of one message on P/events/<source>, oldest first, while
 * *seen < count (0 = no limit). Format 2 is one message per source per
 * group commit: {v: 2, source, epoch, events: [event...]}; format 1 (no
 * "v", from agents before 0.2) is the event alone. A newer format could
 * mean anything: it is said on stderr and skipped.
 */
static void
watch_message(const struct pr_cli *cli, const char *msg, size_t len, long count, long *seen)
{
	struct json_object *o, *v, *events;

	if (pr__cli_json_parse(msg, len, &o) != 0) {
		fprintf(stderr, "partreg: an event that is not JSON: %.200s\n", msg);
		return;
	}
	if (!json_object_object_get_ex(o, "v", &v)) {
		*seen += watch_print(cli, o);
	} else if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) == 2
	    && (events = pr__cli_json_get(o, "events", json_type_array)) != NULL) {
		for (size_t i = 0; i < pr__cli_json_len(events) && (count == 0 || *seen < count);
		     i++) {
			*seen += watch_print(cli, pr__cli_json_at(events, i));
		}
	} else {
		fprintf(stderr,
		    "partreg: events of a format this partreg does not know (v %.20s; it "
		    "reads 1 and 2): upgrade partreg\n",
		    json_object_get_string(v));
	}
	json_object_put(o);
}

/* Print events as they come until --count, deadline (-1 = none) or a signal. */
static int
watch_events(struct pr_cli *cli, struct inbox *in, int sfd, int64_t deadline)
{
	long count = cli->opt[PR_O_COUNT] ? atol(cli->opt[PR_O_COUNT]) : 0, seen = 0;
	int64_t grace = pr__cli_mono_ms() + 1000;
	struct agent_seen agent = { 0 };
	int have_summary = 0, checked = 0;

	for (;;) {
		struct batch b;
		int64_t until = deadline;
		int rc;

		inbox_take(in, &b);
		for (size_t i = 0; i < b.n; i++) {
			if (topic_is(b.topics[i], "agent/status")) {
				agent_seen_update(&agent, b.msgs[i], b.lens[i]);
			} else if (!is_events(cli, b.topics[i])) {
				have_summary = 1; /* P/state/<source>: the source exists */
			} else if (count > 0 && seen >= count) {
				/* Already done: later ones are not printed. */
			} else {
				watch_message(cli, b.msgs[i], b.lens[i], count, &seen);
			}
		}
		batch_free(&b);
		fflush(stdout);
		if (count > 0 && seen >= count) {
			return PR_EXIT_OK;
		}
		if (!have_summary && !checked && pr__cli_mono_ms() >= grace && agent.online) {
			checked = 1;
			if ((rc = check_source(cli)) != PR_EXIT_OK) {
				return rc;
			}
		}
		if (!have_summary && !checked && (deadline < 0 || grace < deadline)) {
			until = grace;
		}
		rc = wait_event(in, sfd, until);
		if (rc == -ETIMEDOUT && until != deadline) {
			continue;
		}
		if (rc == -ETIMEDOUT) {
			/* --timeout without --count is "watch for S seconds": that succeeded. */
			return count > 0 ? PR_EXIT_TIMEOUT : PR_EXIT_OK;
		}
		if (rc > 0) {
			return PR_EXIT_OK; /* interrupted: the normal way to stop watching */
		}
	}
}

/* Subscribe in to P/state/<source> and P/agent/status, and to extra (NULL = none). */
static int
follow_source(struct pr_cli *cli, struct inbox *in, const char *extra)
{
	char filter[512];
	int rc;

	snprintf(filter, sizeof filter, "state/%s", cli->args[0]);
	if ((rc = inbox_follow(in, cli, "agent/status")) != PR_EXIT_OK
	    || (rc = inbox_follow(in, cli, filter)) != PR_EXIT_OK) {
		return rc;
	}
	return extra != NULL ? inbox_follow(in, cli, extra) : PR_EXIT_OK;
}

int
pr__cli_watch(struct pr_cli *cli)
{
	struct inbox in;
	char filter[512];
	int64_t deadline = cli->timeout_given ? pr__cli_mono_ms() + cli->timeout_ms : -1;
	int sfd = signals_open(), rc;

	if (inbox_init(&in, 0) != 0) {
		pr__cli_fail(cli, "internal", "cannot make a pipe: %s", strerror(errno));
		rc = PR_EXIT_REFUSED;
		goto out;
	}
	if ((rc = pr__cli_connect(cli, NULL, NULL)) != PR_EXIT_OK) {
		inbox_release(&in);
		goto out;
	}
	snprintf(filter, sizeof filter, "events/%s", cli->args[0]);
	if ((rc = follow_source(cli, &in, filter)) == PR_EXIT_OK) {
		rc = watch_events(cli, &in, sfd, deadline);
	}
	inbox_release(&in);
out:
	if (sfd >= 0) {
		close(sfd);
	}
	return rc;
}

/* ---- wait ---- */

struct status {
	char text[4096];
	size_t len;
};

static void status_add(struct status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
status_add(struct status *st, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->len >= sizeof st->text - 1) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(st->text + st->len, sizeof st->text - st->len, fmt, ap);
	va_end(ap);
	if (n > 0) {
		st->len += (size_t)n;
		if (st->len > sizeof st->text - 1) {
			st->len = sizeof st->text - 1;
		}
	}
}

static void
add_range(struct status *st, struct pr_range r)
{
	char a[PR_TIME_BUFSZ], b[PR_TIME_BUFSZ];

	status_add(st, "%s\u2013%s", pr_time_format(r.start, a), pr_time_format(r.end, b));
}

/*
 * "waiting: A–B locked by etl since 12:00:03, lease until 13:00:03; C–D no
 * partition". Gaps are shown only where no blocker explains them: a locked
 * partition is always also a gap, and saying so twice is noise.
 */
static void
describe(struct status *st, const struct pr_range *gaps, size_t ngaps, size_t ngaps_total,
    const struct pr_blocker *bl, size_t nbl)
{
	struct pr_range *cover = nbl ? malloc(nbl * sizeof *cover) : NULL;
	size_t ncover = 0;
	int first = 1;

	status_add(st, "waiting:");
	for (size_t i = 0; i < nbl; i++) {
		char t[PR_TIME_BUFSZ];
		status_add(st, "%s ", first ? "" : ";");
		first = 0;
		add_range(st, bl[i].range);
		if (strcmp(bl[i].state, "pending") == 0) {
			status_add(st, " pending from %s", bl[i].provider);
		} else {
			status_add(st, " %s by %s", bl[i].state, bl[i].provider);
		}
		if (bl[i].count > 1) {
			status_add(st, " (%" PRIu64 " partitions)", bl[i].count);
		}
		if (bl[i].since != 0) {
			pr__cli_time_for_people(bl[i].since, t, sizeof t);
			status_add(st, " since %s", t);
		}
		if (bl[i].expires_at != 0) {
			pr__cli_time_for_people(bl[i].expires_at, t, sizeof t);
			status_add(st, ", lease until %s", t);
		}
		if (bl[i].reason[0] != '\0') {
			status_add(st, " (%s)", bl[i].reason);
		}
		if (cover != NULL) {
			cover[ncover++] = bl[i].range;
		}
	}
	/* Sorted and merged (and no qsort of a NULL array when there is no blocker). */
	ncover = pr_ranges_coalesce(cover, ncover);
	for (size_t g = 0; g < ngaps; g++) {
		/* The parts of this gap that no blocker covers. */
		int64_t at = gaps[g].start;
		for (size_t c = 0; c <= ncover && at < gaps[g].end; c++) {
			int64_t stop = c < ncover ? cover[c].start : gaps[g].end;
			if (stop > gaps[g].end) {
				stop = gaps[g].end;
			}
			if (stop > at) {
				status_add(st, "%s ", first ? "" : ";");
				first = 0;
				add_range(st, (struct pr_range) { at, stop });
				status_add(st, " no partition");
			}
			if (c < ncover && cover[c].end > at) {
				at = cover[c].end;
			}
		}
	}
	if (ngaps_total > ngaps) {
		status_add(st, "; %zu more gaps", ngaps_total - ngaps);
	}
	if (first) {
		status_add(st, " not ready");
	}
	free(cover);
}

/* Columns left on the terminal for the status line. */
static size_t
term_columns(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) {
		return ws.ws_col - 1;
	}
	return 79;
}

/* Print the status: on a terminal in place, otherwise a line when it changed. */
static void
show(int tty, const char *text, char *last, size_t last_cap)
{
	if (tty) {
		/* Cut at the width (counting UTF-8 characters), or \r cannot redraw a wrapped line.
		 */
		size_t cols = term_columns(), chars = 0, i = 0;
		for (; text[i] != '\0'; i++) {
			if (((unsigned char)text[i] & 0xC0) != 0x80 && ++chars > cols) {
				break;
			}
		}
		fprintf(stderr, "\r\033[K%.*s", (int)i, text);
		fflush(stderr);
		return;
	}
	if (strcmp(text, last) != 0) {
		fprintf(stderr, "%s\n", text);
		snprintf(last, last_cap, "%s", text);
	}
}

static void
blocker_from_json(const struct json_object *o, struct pr_blocker *b)
{
	const char *s;

	memset(b, 0, sizeof *b);
	b->count = 1; /* readiness/query lists partitions */
	if ((s = pr__cli_json_str(o, "start")) != NULL) {
		pr_time_parse(s, strlen(s), &b->range.start);
	}
	if ((s = pr__cli_json_str(o, "end")) != NULL) {
		pr_time_parse(s, strlen(s), &b->range.end);
	}
	snprintf(
	    b->provider, sizeof b->provider, "%s", (s = pr__cli_json_str(o, "provider")) ? s : "?");
	snprintf(b->state, sizeof b->state, "%s", (s = pr__cli_json_str(o, "state")) ? s : "?");
	snprintf(b->reason, sizeof b->reason, "%s", (s = pr__cli_json_str(o, "reason")) ? s : "");
	if ((s = pr__cli_json_str(o, "since")) != NULL) {
		pr_time_parse(s, strlen(s), &b->since);
	}
	if ((s = pr__cli_json_str(o, "expires_at")) != NULL) {
		pr_time_parse(s, strlen(s), &b->expires_at);
	}
}

/* A gap as the agent lists it, ["start", "end"]: 1 when read, else 0. */
static int
gap_from_json(const struct json_object *g, struct pr_range *r)
{
	struct json_object *s = pr__cli_json_at(g, 0), *e = pr__cli_json_at(g, 1);

	return json_object_is_type(s, json_type_string) && json_object_is_type(e, json_type_string)
	    && pr_time_parse(
	           json_object_get_string(s), (size_t)json_object_get_string_len(s), &r->start)
	    == 0
	    && pr_time_parse(
	           json_object_get_string(e), (size_t)json_object_get_string_len(e), &r->end)
	    == 0;
}

/*
 * The summary was truncated: ask the agent. Returns PR_EXIT_OK with
 * *ready and the status filled, or an exit code (no reply, refused).
 */
static int
ask_agent(struct pr_cli *cli, int *ready, struct status *st)
{
	struct pr_cb b;
	struct json_object *env, *res, *gl, *bl;
	struct pr_range gaps[GAPS_MAX];
	struct pr_blocker *blockers;
	size_t ngaps = 0, ngaps_total, nbl_total;
	const char *body;
	int rc;

	pr__cb_init(&b);
	pr__cli_body_interval(cli, &b, cli->args[0]);
	if ((body = pr__cb_finish(&b)) == NULL) {
		pr__cb_release(&b);
		return PR_EXIT_REFUSED;
	}
	rc = pr__cli_request_quiet(cli, "readiness/query", body, cli->timeout_ms, &env);
	pr__cb_release(&b);
	if (rc != PR_EXIT_OK) {
		return rc;
	}
	if (!json_object_object_get_ex(env, "result", &res)) {
		rc = pr__cli_refused(cli, env);
		json_object_put(env);
		return rc;
	}
	*ready = json_object_get_boolean(pr__cli_json_get(res, "ready", json_type_boolean));
	gl = pr__cli_json_get(res, "gaps", json_type_array);
	bl = pr__cli_json_get(res, "blockers", json_type_array);
	ngaps_total = pr__cli_json_len(gl);
	for (size_t i = 0; i < ngaps_total && ngaps < GAPS_MAX; i++) {
		ngaps += gap_from_json(pr__cli_json_at(gl, i), &gaps[ngaps]);
	}
	nbl_total = pr__cli_json_len(bl);
	blockers = nbl_total ? calloc(nbl_total, sizeof *blockers) : NULL;
	for (size_t i = 0; i < nbl_total && blockers != NULL; i++) {
		blocker_from_json(pr__cli_json_at(bl, i), &blockers[i]);
	}
	describe(st, gaps, ngaps, ngaps_total, blockers, blockers != NULL ? nbl_total : 0);
	free(blockers);
	json_object_put(env);
	return PR_EXIT_OK;
}

/* Readiness from one summary, locally. */
static void
judge_summary(const struct pr_summary *s, struct pr_range want, int *ready, struct status *st)
{
	struct pr_range gaps[GAPS_MAX];
	struct pr_readiness r;
	struct pr_blocker *bl = s->nblocked ? malloc(s->nblocked * sizeof *bl) : NULL;
	size_t nbl = 0;

	memset(&r, 0, sizeof r);
	r.gaps = gaps;
	r.gaps_cap = GAPS_MAX;
	pr_summary_readiness(s, want, &r);
	*ready = r.ready;
	for (size_t i = 0; bl != NULL && i < s->nblocked; i++) {
		if (pr_range_overlaps(s->blocked[i].range, want)) {
			bl[nbl++] = s->blocked[i];
		}
	}
	describe(st, gaps, r.ngaps < GAPS_MAX ? r.ngaps : GAPS_MAX, r.ngaps, bl, nbl);
	free(bl);
}

/* Print "ready" (the summary's seq) as wait does. */
static void
print_ready(const struct pr_cli *cli, uint64_t seq)
{
	if (cli->json) {
		const char *const *o = cli->opt;

		printf("{\"source\":");
		pr__cli_json_write_str(stdout, cli->args[0], strlen(cli->args[0]));
		printf(",\"start\":");
		pr__cli_json_write_str(stdout, o[PR_O_START], strlen(o[PR_O_START]));
		printf(",\"end\":");
		pr__cli_json_write_str(stdout, o[PR_O_END], strlen(o[PR_O_END]));
		printf(",\"ready\":true,\"seq\":%llu}\n", (unsigned long long)seq);
	} else {
		printf("ready source=%s seq=%llu\n", cli->args[0], (unsigned long long)seq);
	}
}

/* What wait knows so far. */
struct waiting {
	struct pr_range want;
	uint64_t epoch;   /* of the newest summary taken, */
	uint64_t seq;     /* and its seq: (epoch, seq) orders summaries */
	int have_summary; /* one came */
	int ask;          /* the newest was truncated: the agent must decide */
	int checked;      /* source/get was asked (no summary came) */
	int ready;
	struct agent_seen agent;
	struct status st;
};

/* Take what came: the agent's status, the newest summary. An exit code
 * other than PR_EXIT_OK ends the wait. */
static int
take(struct pr_cli *cli, struct inbox *in, struct waiting *w)
{
	struct batch b;
	int rc = PR_EXIT_OK;

	inbox_take(in, &b);
	for (size_t i = 0; i < b.n; i++) {
		struct pr_summary s;

		if (topic_is(b.topics[i], "agent/status")) {
			agent_seen_update(&w->agent, b.msgs[i], b.lens[i]);
		} else if (pr_summary_parse(b.msgs[i], b.lens[i], &s) == 0) {
			/* A stale copy (a bridge replaying an old retained message)
			 * says nothing new. */
			if (s.epoch > w->epoch || (s.epoch == w->epoch && s.seq >= w->seq)) {
				w->epoch = s.epoch;
				w->seq = s.seq;
				w->have_summary = 1;
				w->ask = s.truncated;
				if (!s.truncated) {
					w->st.len = 0;
					judge_summary(&s, w->want, &w->ready, &w->st);
				}
			}
			pr_summary_release(&s);
		}
	}
	batch_free(&b);
	/* A truncated summary: only the agent can tell, when it is there. */
	if (w->ask && w->agent.online) {
		w->st.len = 0;
		rc = ask_agent(cli, &w->ready, &w->st);
		if (rc == PR_EXIT_TIMEOUT) {
			/* The agent does not answer: keep following. */
			snprintf(w->st.text, sizeof w->st.text,
			    "waiting: the summary of %s is too long to decide from; no answer from "
			    "the "
			    "agent",
			    cli->args[0]);
			w->st.len = strlen(w->st.text);
			rc = PR_EXIT_OK;
		} else if (rc == PR_EXIT_OK) {
			w->ask = 0;
		}
	} else if (w->ask) {
		snprintf(w->st.text, sizeof w->st.text,
		    "waiting: the summary of %s is too long to decide from; the agent decides",
		    cli->args[0]);
		w->st.len = strlen(w->st.text);
	}
	return rc;
}

/*
 * Follow the summaries and the agent's status until want is ready,
 * deadline (-1 = none) or a signal. Decides from the retained summary
 * alone; asks the agent only when the summary is truncated, or when no
 * summary came (an unknown source?) and the agent is online. While the
 * agent is offline it keeps waiting and says so. Returns the exit code.
 */
static int
wait_ready(struct pr_cli *cli, struct inbox *in, int sfd, struct pr_range want, int64_t deadline)
{
	char last[4200] = "", line[4200];
	int tty = isatty(STDERR_FILENO), shown = 0, rc;
	int64_t grace = pr__cli_mono_ms() + 1000;
	struct waiting w;

	memset(&w, 0, sizeof w);
	w.want = want;
	snprintf(w.st.text, sizeof w.st.text, "waiting: no summary of %s yet", cli->args[0]);
	w.st.len = strlen(w.st.text);
	for (;;) {
		int64_t until = deadline;

		rc = take(cli, in, &w);
		if (rc == PR_EXIT_OK && w.ready) {
			if (tty && shown) {
				fputs("\r\033[K", stderr);
			}
			print_ready(cli, w.seq);
			return PR_EXIT_OK;
		}
		if (rc == PR_EXIT_OK && !w.have_summary && !w.checked && w.agent.online
		    && pr__cli_mono_ms() >= grace) {
			w.checked = 1;
			rc = check_source(cli);
		}
		if (rc != PR_EXIT_OK) {
			if (tty && shown) {
				fputs("\r\033[K", stderr);
			}
			return rc;
		}
		snprintf(line, sizeof line, "%s%s%s", w.st.text,
		    w.agent.known && !w.agent.online ? "; agent offline since " : "",
		    w.agent.known && !w.agent.online ? w.agent.at : "");
		/* The retained summary normally follows the SUBACK at once: say
		 * "no summary yet" only when it has not come within a second. */
		if (!cli->quiet && (!cli->json || tty)
		    && (w.have_summary || pr__cli_mono_ms() >= grace)) {
			show(tty, line, last, sizeof last);
			shown = 1;
		}
		if (!w.have_summary && pr__cli_mono_ms() < grace
		    && (deadline < 0 || grace < deadline)) {
			until = grace;
		}
		rc = wait_event(in, sfd, until);
		if (rc == -ETIMEDOUT && until != deadline) {
			continue; /* the grace second is over */
		}
		if (rc != 0) {
			if (tty && shown) {
				fputs("\r\033[K", stderr);
			}
			if (rc == -ETIMEDOUT) {
				pr__cli_fail(cli, "timeout", "timed out after %.3g s; %s",
				    cli->timeout_ms / 1000.0, line);
				return PR_EXIT_TIMEOUT;
			}
			return rc > 0 ? 128 + rc : PR_EXIT_REFUSED;
		}
	}
}

static int
check_source(struct pr_cli *cli)
{
	struct pr_cb b;
	struct json_object *env;
	const char *body;
	int rc;

	pr__cb_init(&b);
	pr__cb_str(&b, "source", cli->args[0]);
	if ((body = pr__cb_finish(&b)) == NULL) {
		pr__cb_release(&b);
		return PR_EXIT_REFUSED;
	}
	rc = pr__cli_request_quiet(cli, "source/get", body, cli->timeout_ms, &env);
	pr__cb_release(&b);
	if (rc != PR_EXIT_OK) {
		return rc == PR_EXIT_TIMEOUT ? PR_EXIT_OK : rc;
	}
	if (!json_object_object_get_ex(env, "result", NULL)) {
		rc = pr__cli_refused(cli, env);
	}
	json_object_put(env);
	return rc;
}

int
pr__cli_wait(struct pr_cli *cli)
{
	struct inbox in;
	struct pr_range want;
	int sfd, rc;
	int64_t deadline = cli->timeout_given ? pr__cli_mono_ms() + cli->timeout_ms : -1;

	/* main checked both, and that start < end. */
	pr_time_parse(cli->opt[PR_O_START], strlen(cli->opt[PR_O_START]), &want.start);
	pr_time_parse(cli->opt[PR_O_END], strlen(cli->opt[PR_O_END]), &want.end);
	sfd = signals_open();
	if (inbox_init(&in, 1) != 0) {
		pr__cli_fail(cli, "internal", "cannot make a pipe: %s", strerror(errno));
		rc = PR_EXIT_REFUSED;
		goto out;
	}
	if ((rc = pr__cli_connect(cli, NULL, NULL)) == PR_EXIT_OK
	    && (rc = follow_source(cli, &in, NULL)) == PR_EXIT_OK) {
		rc = wait_ready(cli, &in, sfd, want, deadline);
	}
	inbox_release(&in);
out:
	if (sfd >= 0) {
		close(sfd);
	}
	return rc;
}

/* ---- ready ---- */

/* The readiness of want from a complete summary, as readiness/query's result. */
static struct json_object *
summary_result(const struct pr_cli *cli, const struct pr_summary *s, struct pr_range want)
{
	struct pr_range gaps[GAPS_MAX];
	struct pr_readiness r;
	struct json_object *o = json_object_new_object(), *gl = json_object_new_array(),
	                   *bl = json_object_new_array();
	char t[PR_TIME_BUFSZ], u[PR_TIME_BUFSZ];

	memset(&r, 0, sizeof r);
	r.gaps = gaps;
	r.gaps_cap = GAPS_MAX;
	pr_summary_readiness(s, want, &r);
	json_object_object_add(o, "source", json_object_new_string(cli->args[0]));
	json_object_object_add(o, "start", json_object_new_string(cli->opt[PR_O_START]));
	json_object_object_add(o, "end", json_object_new_string(cli->opt[PR_O_END]));
	json_object_object_add(o, "ready", json_object_new_boolean(r.ready));
	for (size_t i = 0; i < r.ngaps && i < GAPS_MAX; i++) {
		struct json_object *g = json_object_new_array();

		json_object_array_add(g, json_object_new_string(pr_time_format(gaps[i].start, t)));
		json_object_array_add(g, json_object_new_string(pr_time_format(gaps[i].end, u)));
		json_object_array_add(gl, g);
	}
	json_object_object_add(o, "gaps", gl);
	for (size_t i = 0; i < s->nblocked; i++) {
		const struct pr_blocker *b = &s->blocked[i];
		struct json_object *bo;

		if (!pr_range_overlaps(b->range, want)) {
			continue;
		}
		bo = json_object_new_object();
		json_object_object_add(bo, "provider", json_object_new_string(b->provider));
		json_object_object_add(
		    bo, "start", json_object_new_string(pr_time_format(b->range.start, t)));
		json_object_object_add(
		    bo, "end", json_object_new_string(pr_time_format(b->range.end, u)));
		json_object_object_add(bo, "state", json_object_new_string(b->state));
		json_object_object_add(bo, "count", json_object_new_uint64(b->count));
		if (b->since != 0) {
			json_object_object_add(
			    bo, "since", json_object_new_string(pr_time_format(b->since, t)));
		}
		if (b->expires_at != 0) {
			json_object_object_add(bo, "expires_at",
			    json_object_new_string(pr_time_format(b->expires_at, t)));
		}
		if (b->reason[0] != '\0') {
			json_object_object_add(bo, "reason", json_object_new_string(b->reason));
		}
		json_object_array_add(bl, bo);
	}
	json_object_object_add(o, "blockers", bl);
	/* As the agent says it: null when nothing from start on is ready. */
	json_object_object_add(o, "ready_through",
	    r.ready_through > want.start
	        ? json_object_new_string(pr_time_format(r.ready_through, t))
	        : NULL);
	json_object_object_add(o, "seq", json_object_new_uint64(s->seq));
	json_object_object_add(o, "truncated", json_object_new_boolean(0));
	json_object_object_add(o, "from", json_object_new_string("summary"));
	return o;
}

int
pr__cli_ready_from_summary(struct pr_cli *cli, struct json_object **result)
{
	struct inbox in;
	struct pr_range want;
	struct agent_seen agent = { 0 };
	int have = 0, rc;
	/* The retained messages come right after the subscriptions' SUBACKs. */
	int64_t deadline;

	*result = NULL;
	pr_time_parse(cli->opt[PR_O_START], strlen(cli->opt[PR_O_START]), &want.start);
	pr_time_parse(cli->opt[PR_O_END], strlen(cli->opt[PR_O_END]), &want.end);
	if (inbox_init(&in, 1) != 0) {
		return -1;
	}
	if ((rc = pr__cli_connect(cli, NULL, NULL)) != PR_EXIT_OK
	    || (rc = follow_source(cli, &in, NULL)) != PR_EXIT_OK) {
		inbox_release(&in);
		return rc;
	}
	deadline = pr__cli_mono_ms() + 500;
	while (!have && wait_event(&in, -1, deadline) == 0) {
		struct batch b;

		inbox_take(&in, &b);
		for (size_t i = 0; i < b.n; i++) {
			struct pr_summary s;

			if (topic_is(b.topics[i], "agent/status")) {
				agent_seen_update(&agent, b.msgs[i], b.lens[i]);
			} else if (pr_summary_parse(b.msgs[i], b.lens[i], &s) == 0) {
				have = 1;
				if (!s.truncated) {
					*result = summary_result(cli, &s, want);
				}
				pr_summary_release(&s);
			}
		}
		batch_free(&b);
	}
	inbox_release(&in);
	if (*result != NULL) {
		return PR_EXIT_OK;
	}
	if (agent.known && !agent.online) {
		pr__cli_fail(cli, "agent_offline",
		    "%s of %s on the broker, and the agent is offline since %s: cannot tell",
		    have ? "only a truncated summary" : "no summary", cli->args[0], agent.at);
		return PR_EXIT_TIMEOUT;
	}
	return -1; /* ask the agent */
}
