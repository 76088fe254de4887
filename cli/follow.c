/* SPDX-License-Identifier: MIT */
/*
 * partreg wait and partreg watch: following topics instead of asking.
 *
 * wait decides readiness from the retained summary P/state/<source>, which
 * the broker sends at once on subscribe and again on every change, with the
 * agent's own interval code (pr_summary_readiness): no polling, and the
 * answer comes within one broker hop of the unlock. Only when the summary
 * says it is truncated (a source with more ready ranges or blockers than the
 * agent lists) does wait ask the agent (readiness/query), once per new
 * summary, since only then could the local answer be wrong.
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
	char **msgs;
	size_t *lens;
	size_t n, cap;
	int latest_only; /* wait: only the newest summary matters */
	int pipe[2];
	struct pr_client *client; /* set by inbox_follow: the subscription to end */
	char filter[512];
};

static void
inbox_cb(void *arg, const char *topic, const char *payload, size_t len)
{
	struct inbox *in = arg;
	char *copy = malloc(len + 1);
	char byte = 1;

	(void)topic;
	if (copy == NULL) {
		return; /* wait: the next summary supersedes it; watch: one event lost */
	}
	memcpy(copy, payload, len);
	copy[len] = '\0';
	pthread_mutex_lock(&in->mu);
	if (in->latest_only && in->n > 0) {
		free(in->msgs[0]);
		in->n = 0;
	}
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 16;
		char **m = realloc(in->msgs, cap * sizeof *m);
		size_t *l = m ? realloc(in->lens, cap * sizeof *l) : NULL;
		if (m != NULL) {
			in->msgs = m;
		}
		if (l == NULL) {
			pthread_mutex_unlock(&in->mu);
			free(copy);
			return;
		}
		in->lens = l;
		in->cap = cap;
	}
	in->msgs[in->n] = copy;
	in->lens[in->n++] = len;
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
	snprintf(in->filter, sizeof in->filter, "%s", filter);
	in->client = cli->client;
	if (pr_client_subscribe(cli->client, in->filter, inbox_cb, in, cli->timeout_ms) != 0) {
		pr__cli_fail(cli, "broker_unreachable", "cannot subscribe to %s/%s",
		    pr_client_prefix(cli->client), in->filter);
		return PR_EXIT_UNREACHABLE;
	}
	return PR_EXIT_OK;
}

/*
 * End the subscription, then free what is queued and close the pipe. The
 * inbox usually lives in a stack frame, and messages keep coming until
 * pr_client_close: once pr_client_unsubscribe has returned, no callback
 * runs with this inbox any more.
 */
static void
inbox_release(struct inbox *in)
{
	if (in->client != NULL) {
		pr_client_unsubscribe(in->client, in->filter, inbox_cb, in);
	}
	for (size_t i = 0; i < in->n; i++) {
		free(in->msgs[i]);
	}
	free(in->msgs);
	free(in->lens);
	close(in->pipe[0]);
	close(in->pipe[1]);
	pthread_mutex_destroy(&in->mu);
}

/* Take the queued messages (caller frees each and the arrays). */
static size_t
inbox_take(struct inbox *in, char ***msgs, size_t **lens)
{
	char buf[256];
	size_t n;

	while (read(in->pipe[0], buf, sizeof buf) > 0) { }
	pthread_mutex_lock(&in->mu);
	*msgs = in->msgs;
	*lens = in->lens;
	n = in->n;
	in->msgs = NULL;
	in->lens = NULL;
	in->n = in->cap = 0;
	pthread_mutex_unlock(&in->mu);
	return n;
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

/* Print events as they come until --count, deadline (-1 = none) or a signal. */
static int
watch_events(struct pr_cli *cli, struct inbox *in, int sfd, int64_t deadline)
{
	long count = cli->opt[PR_O_COUNT] ? atol(cli->opt[PR_O_COUNT]) : 0, seen = 0;

	for (;;) {
		char **msgs;
		size_t *lens;
		size_t n = inbox_take(in, &msgs, &lens);
		int rc;

		for (size_t i = 0; i < n; i++) {
			struct json_object *ev;
			if (count > 0 && seen >= count) {
				/* Already done: later ones are not printed. */
			} else if (cli->json) {
				fwrite(msgs[i], 1, lens[i], stdout);
				putc('\n', stdout);
				seen++;
			} else if (pr__cli_json_parse(msgs[i], lens[i], &ev) == 0) {
				pr__cli_print_record(stdout, NULL, ev, NULL);
				json_object_put(ev);
				seen++;
			} else {
				fprintf(stderr, "partreg: an event that is not JSON: %.200s\n",
				    msgs[i]);
			}
			free(msgs[i]);
		}
		free(msgs);
		free(lens);
		fflush(stdout);
		if (count > 0 && seen >= count) {
			return PR_EXIT_OK;
		}
		rc = wait_event(in, sfd, deadline);
		if (rc == -ETIMEDOUT) {
			/* --timeout without --count is "watch for S seconds": that succeeded. */
			return count > 0 ? PR_EXIT_TIMEOUT : PR_EXIT_OK;
		}
		if (rc > 0) {
			return PR_EXIT_OK; /* interrupted: the normal way to stop watching */
		}
	}
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
	if ((rc = inbox_follow(&in, cli, filter)) == PR_EXIT_OK) {
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
	rc = pr__cli_request(cli, "readiness/query", body, cli->timeout_ms, &env);
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

/*
 * Follow the summaries until want is ready, deadline (-1 = none) or a
 * signal; "no summary yet" is shown only after grace. Returns the exit code.
 */
static int
wait_ready(struct pr_cli *cli, struct inbox *in, int sfd, struct pr_range want, int64_t deadline,
    int64_t grace)
{
	char last[4096] = "";
	uint64_t last_seq = 0;
	int tty = isatty(STDERR_FILENO), shown = 0, rc;
	int64_t until;
	struct status st;

	snprintf(st.text, sizeof st.text, "waiting: no summary of %s yet", cli->args[0]);
	st.len = strlen(st.text);
	for (;;) {
		char **msgs;
		size_t *lens;
		size_t n = inbox_take(in, &msgs, &lens);
		int ready = 0;

		rc = PR_EXIT_OK;
		for (size_t i = 0; i < n; i++) {
			struct pr_summary s;
			/* Only the newest matters (latest_only keeps one). */
			if (i + 1 == n && pr_summary_parse(msgs[i], lens[i], &s) == 0) {
				/* A stale copy (a bridge replaying an old retained message) says
				 * nothing new. */
				if (s.seq >= last_seq) {
					last_seq = s.seq;
					st.len = 0;
					st.text[0] = '\0';
					if (s.truncated) {
						rc = ask_agent(cli, &ready, &st);
					} else {
						judge_summary(&s, want, &ready, &st);
					}
				}
				pr_summary_release(&s);
			}
			free(msgs[i]);
		}
		free(msgs);
		free(lens);
		if (rc != PR_EXIT_OK) {
			if (tty && shown) {
				fputs("\r\033[K", stderr);
			}
			return rc;
		}
		if (ready) {
			if (tty && shown) {
				fputs("\r\033[K", stderr);
			}
			if (cli->json) {
				const char *const *o = cli->opt;
				printf("{\"source\":");
				pr__cli_json_write_str(stdout, cli->args[0], strlen(cli->args[0]));
				printf(",\"start\":");
				pr__cli_json_write_str(
				    stdout, o[PR_O_START], strlen(o[PR_O_START]));
				printf(",\"end\":");
				pr__cli_json_write_str(stdout, o[PR_O_END], strlen(o[PR_O_END]));
				printf(",\"ready\":true,\"seq\":%llu}\n",
				    (unsigned long long)last_seq);
			} else {
				printf("ready source=%s seq=%llu\n", cli->args[0],
				    (unsigned long long)last_seq);
			}
			return PR_EXIT_OK;
		}
		/*
		 * The retained summary normally follows the SUBACK at once: say
		 * "no summary yet" only when it has not come within a second.
		 */
		if ((!cli->json || tty) && (last_seq > 0 || pr__cli_mono_ms() >= grace)) {
			show(tty, st.text, last, sizeof last);
			shown = 1;
		}
		until = deadline;
		if (last_seq == 0 && pr__cli_mono_ms() < grace
		    && (deadline < 0 || grace < deadline)) {
			until = grace;
		}
		rc = wait_event(in, sfd, until);
		if (rc == -ETIMEDOUT && until != deadline) {
			continue; /* the grace second is over: show "no summary yet" */
		}
		if (rc != 0) {
			if (tty && shown) {
				fputs("\r\033[K", stderr);
			}
			if (rc == -ETIMEDOUT) {
				pr__cli_fail(cli, "timeout", "timed out after %.3g s; %s",
				    cli->timeout_ms / 1000.0, st.text);
				return PR_EXIT_TIMEOUT;
			}
			return rc > 0 ? 128 + rc : PR_EXIT_REFUSED;
		}
	}
}

/*
 * An unknown source has no summary, so wait would wait forever for
 * nothing: ask first, and say so. Returns PR_EXIT_OK or the exit code.
 */
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
	rc = pr__cli_request(cli, "source/get", body, cli->timeout_ms, &env);
	pr__cb_release(&b);
	if (rc != PR_EXIT_OK) {
		return rc;
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
	char filter[512];
	int sfd, rc;
	int64_t deadline = cli->timeout_given ? pr__cli_mono_ms() + cli->timeout_ms : -1;
	int64_t grace = pr__cli_mono_ms() + 1000;

	if (pr_time_parse(cli->opt[PR_O_START], strlen(cli->opt[PR_O_START]), &want.start) != 0
	    || pr_time_parse(cli->opt[PR_O_END], strlen(cli->opt[PR_O_END]), &want.end) != 0) {
		pr__cli_fail(cli, "invalid_time",
		    "--start and --end must be RFC 3339 times, like 2023-01-01T00:00:00Z");
		return PR_EXIT_USAGE;
	}
	if (want.start >= want.end) {
		pr__cli_fail(cli, "invalid_interval", "--start must be before --end");
		return PR_EXIT_USAGE;
	}
	sfd = signals_open();
	if (inbox_init(&in, 1) != 0) {
		pr__cli_fail(cli, "internal", "cannot make a pipe: %s", strerror(errno));
		rc = PR_EXIT_REFUSED;
		goto out;
	}
	if ((rc = check_source(cli)) != PR_EXIT_OK) {
		inbox_release(&in);
		goto out;
	}
	snprintf(filter, sizeof filter, "state/%s", cli->args[0]);
	if ((rc = inbox_follow(&in, cli, filter)) == PR_EXIT_OK) {
		rc = wait_ready(cli, &in, sfd, want, deadline, grace);
	}
	inbox_release(&in);
out:
	if (sfd >= 0) {
		close(sfd);
	}
	return rc;
}
