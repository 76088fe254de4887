/* SPDX-License-Identifier: MIT */
/*
 * The clients of the crash-consistency test (test_crash.sh, issue 10): a
 * user of libpartreg's public API that records every command it sends and
 * the reply it finally got, while the script kill -9s the agent under it.
 *
 *   prog_crash run BROKER SOURCE WORKERS OUTDIR ATTEMPT_MS
 *     (the source's owner token in PARTREG_TOKEN)
 *   prog_crash replay BROKER OUTDIR WORKERS ATTEMPT_MS
 *
 * run: WORKERS threads, each with its own connection, provider p<w> and
 * partitions (hours of its own, disjoint from the others'), so that the
 * reply every command must get is known in advance whatever the other
 * workers do; only the source's seq and fence are shared. For each
 * partition k a worker goes through a fixed script (register, lock, a
 * refused second lock, renew, unlock, a refused unlock, lock again, an
 * unlock with the stale fence, fail, then lock + unlock for an even k or
 * delete for an odd one) and stops, after a whole partition, once
 * OUTDIR/stop exists.
 *
 * Every command has its own request_id. An attempt waits ATTEMPT_MS for a
 * reply; without one (the agent is down, or died before answering) the
 * same command, same body and same request_id, is sent again, until a
 * reply comes: the protocol's rule, under which a retry is answered with
 * the first reply and never applied twice. A 5xx reply is the agent's own
 * failure and not remembered by it, so it is retried too (up to
 * SERVER_ERRORS_MAX times; then it is the reply on record).
 *
 * OUTDIR/w<w>.jsonl gets one line per command: what it was, the reply the
 * script must see ("exp": ok with a state, version and fence, or an error
 * code), the number of attempts, the time of the first send and of the
 * reply (µs since the epoch, to line up with the kills), and the reply.
 * OUTDIR/w<w>.tsv gets "request_id TAB command TAB body" for the replay.
 *
 * replay: sends every command of OUTDIR/w<w>.tsv once more, as it was
 * (REPLAY_FANOUT threads per file, each with its own connection), and
 * writes the replies to OUTDIR/replay<w>-<thread>.jsonl; the script checks
 * that each is the recorded first reply, marked replayed, and that nothing
 * changed.
 *
 * The checks themselves are in the script (jq); this program only fails
 * on its own errors (exit 2) or when a command gets no reply at all within
 * a minute (exit 1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <partreg/client.h>

#define GIVE_UP_MS        60000
#define SERVER_ERRORS_MAX 10
#define BODY_MAX          1024
#define REPLAY_FANOUT     4 /* replay threads (and connections) per worker file */

static const char *broker, *source, *outdir, *token;
static int attempt_ms;
static int replay; /* the mode: run or replay */

struct worker {
	pthread_t thread;
	int w;
	int part; /* replay: lines part, part + REPLAY_FANOUT, ... of w<w>.tsv */
	int rc;   /* 0, 1 no reply, 2 own error */
	struct pr_client *c;
	FILE *jsonl, *tsv;
	uint64_t commands, attempts;
	char start[32], end[32];
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The unsigned number after "key": in a reply (0 when there is none). */
static uint64_t
json_u64(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	p = strstr(json, pat);
	if (p == NULL) {
		return 0;
	}
	p += strlen(pat);
	while (*p == ' ') {
		p++;
	}
	return strtoull(p, NULL, 10);
}

/* 5xx: the agent's own failure, which it does not remember: retry. */
static int
server_error(const char *reply)
{
	return json_u64(reply, "status") >= 500;
}

static int
open_client(struct pr_client **c)
{
	struct pr_client_opts o = { 0 };

	o.broker = broker;
	if (pr_client_open(&o, c) != 0 || pr_client_wait_connected(*c, 10000) != 0) {
		fprintf(stderr, "prog_crash: cannot connect to %s\n", broker);
		pr_client_close(*c);
		*c = NULL;
		return -1;
	}
	return 0;
}

/*
 * Send command with body until a reply that is not 5xx comes, each attempt
 * with the same body (and so the same request_id). Returns the reply (heap;
 * the SERVER_ERRORS_MAXth 5xx in a row is returned as the answer) or NULL
 * after GIVE_UP_MS; *attempts counts the sends.
 */
static char *
until_reply(
    struct pr_client *c, const char *command, const char *body, int *attempts, int *server_errors)
{
	int64_t give_up = now_us() + (int64_t)GIVE_UP_MS * 1000;
	char *reply = NULL;

	*attempts = 0;
	*server_errors = 0;
	while (now_us() < give_up) {
		int rc;

		++*attempts;
		/* timeout = resend interval: one send per call, counted here. */
		rc = pr_client_request(c, command, body, attempt_ms, attempt_ms, &reply);
		if (rc == 0 && !server_error(reply)) {
			return reply;
		}
		if (rc == 0 && ++*server_errors >= SERVER_ERRORS_MAX) {
			return reply; /* on record, as the answer it keeps giving */
		}
		if (rc == 0) {
			free(reply);
			reply = NULL;
		} else if (rc != -ETIMEDOUT) {
			fprintf(stderr, "prog_crash: %s: %s\n", command, pr_strerror(rc));
			return NULL;
		}
	}
	return NULL;
}

/* ---- run ---- */

/* What the reply of a step must be: ok with state and version (and fence
 * when not 0), or refused with code. */
struct expect {
	const char *state;
	int version;
	uint64_t fence;
	const char *code;
};

/*
 * One command of worker wk on its partition k, step s: sent until a reply
 * comes, and put on record with what it must be. When fence is not NULL,
 * *fence gets the fence of an ok reply (0 for a refusal). Returns 0, or -1
 * when no reply came.
 */
static int
step(struct worker *wk, int k, int s, const char *command, const char *extra, struct expect e,
    uint64_t *fence)
{
	char body[BODY_MAX], rid[64], exp[160];
	char *reply;
	int attempts, server_errors;
	int64_t t0, t1;

	snprintf(rid, sizeof rid, "crash-w%d-k%d-s%d", wk->w, k, s);
	snprintf(body, sizeof body,
	    "{\"source\":\"%s\",\"provider\":\"p%d\",\"start\":\"%s\",\"end\":\"%s\","
	    "\"access_token\":\"%s\",\"request_id\":\"%s\"%s}",
	    source, wk->w, wk->start, wk->end, token, rid, extra);
	if (e.code != NULL) {
		snprintf(exp, sizeof exp, "{\"code\":\"%s\"}", e.code);
	} else {
		int n = snprintf(
		    exp, sizeof exp, "{\"state\":\"%s\",\"version\":%d", e.state, e.version);

		if (e.fence != 0) {
			n += snprintf(exp + n, sizeof exp - (size_t)n, ",\"fence\":%llu",
			    (unsigned long long)e.fence);
		}
		snprintf(exp + n, sizeof exp - (size_t)n, "}");
	}
	/* The command is on record before it is sent. */
	fprintf(wk->tsv, "%s\t%s\t%s\n", rid, command, body);
	fflush(wk->tsv);
	t0 = now_us();
	reply = until_reply(wk->c, command, body, &attempts, &server_errors);
	t1 = now_us();
	wk->commands++;
	wk->attempts += (uint64_t)attempts;
	fprintf(wk->jsonl,
	    "{\"w\":%d,\"k\":%d,\"s\":%d,\"verb\":\"%s\",\"rid\":\"%s\",\"provider\":\"p%d\","
	    "\"start\":\"%s\",\"end\":\"%s\",\"exp\":%s,\"attempts\":%d,\"server_errors\":%d,"
	    "\"t0\":%lld,\"t1\":%lld,\"reply\":%s}\n",
	    wk->w, k, s, command, rid, wk->w, wk->start, wk->end, exp, attempts, server_errors,
	    (long long)t0, (long long)t1, reply != NULL ? reply : "null");
	fflush(wk->jsonl);
	if (reply == NULL) {
		fprintf(stderr, "prog_crash: worker %d: no reply to %s (%s) in %d s\n", wk->w,
		    command, rid, GIVE_UP_MS / 1000);
		wk->rc = 1;
		return -1;
	}
	if (fence != NULL) {
		*fence = strstr(reply, "\"ok\":true") != NULL ? json_u64(reply, "fence") : 0;
	}
	free(reply);
	return 0;
}

/*
 * Worker wk's script for its partition k. A refusal where the script
 * expects success is only recorded (the script finds it), and the worker
 * goes on; it stops when a command gets no reply. Returns 0 or -1.
 */
static int
partition_script(struct worker *wk, int k)
{
	/* Worker w's hours start 100000 hours (about 11 years) after worker
	 * w - 1's, from 2023-01-01: nobody else's partitions overlap. Its even
	 * partitions, which end ready, are consecutive hours (the summary's
	 * ready list stays one range per worker); the odd ones, deleted, lie
	 * 50000 hours further. */
	time_t h = (time_t)wk->w * 100000 + (k % 2) * 50000 + k / 2;
	time_t t = (time_t)1672531200 + h * 3600;
	const char *ttl = ",\"ttl_s\":3600";
	char x[128];
	uint64_t f1, f2, f3;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(wk->start, sizeof wk->start, "%Y-%m-%dT%H:%M:%SZ", &tm);
	t += 3600;
	gmtime_r(&t, &tm);
	strftime(wk->end, sizeof wk->end, "%Y-%m-%dT%H:%M:%SZ", &tm);

#define STEP(s, cmd, extra, fence, ...)                                                            \
	do {                                                                                       \
		if (step(wk, k, s, cmd, extra, (struct expect) { __VA_ARGS__ }, fence) != 0) {     \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

	STEP(0, "partition/register", "", NULL, .state = "pending", .version = 0);
	STEP(1, "partition/lock", ttl, &f1, .state = "locked", .version = 0);
	STEP(2, "partition/lock", ttl, NULL, .code = "already_locked");
	snprintf(x, sizeof x, ",\"fence\":%llu,\"ttl_s\":3600", (unsigned long long)f1);
	STEP(3, "partition/renew", x, NULL, .state = "locked", .version = 0, .fence = f1);
	snprintf(x, sizeof x, ",\"fence\":%llu,\"metadata\":{\"w\":%d,\"k\":%d,\"run\":1}",
	    (unsigned long long)f1, wk->w, k);
	STEP(4, "partition/unlock", x, NULL, .state = "ready", .version = 1, .fence = f1);
	snprintf(x, sizeof x, ",\"fence\":%llu", (unsigned long long)f1);
	STEP(5, "partition/unlock", x, NULL, .code = "not_locked");
	STEP(6, "partition/lock", ttl, &f2, .state = "locked", .version = 1);
	STEP(7, "partition/unlock", x, NULL, .code = "stale_fence"); /* f1 again */
	snprintf(x, sizeof x, ",\"fence\":%llu,\"reason\":\"w%d k%d\"", (unsigned long long)f2,
	    wk->w, k);
	STEP(8, "partition/fail", x, NULL, .state = "failed", .version = 1, .fence = f2);
	if (k % 2 == 0) {
		STEP(9, "partition/lock", ttl, &f3, .state = "locked", .version = 1);
		snprintf(x, sizeof x, ",\"fence\":%llu,\"metadata\":{\"w\":%d,\"k\":%d,\"run\":2}",
		    (unsigned long long)f3, wk->w, k);
		STEP(10, "partition/unlock", x, NULL, .state = "ready", .version = 2, .fence = f3);
	} else {
		STEP(
		    9, "partition/delete", "", NULL, .state = "deleted", .version = 1, .fence = f2);
	}
	return 0;
#undef STEP
}

static int
stop_requested(void)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof path, "%s/stop", outdir);
	return stat(path, &st) == 0;
}

static void
run_worker(struct worker *wk)
{
	for (int k = 0; !stop_requested(); k++) {
		if (partition_script(wk, k) != 0) {
			break;
		}
	}
}

/* ---- replay ---- */

static void
replay_worker(struct worker *wk)
{
	char line[BODY_MAX + 256];

	for (long i = 0; fgets(line, sizeof line, wk->tsv) != NULL; i++) {
		char *rid = line, *command, *body, *reply, *nl;
		int attempts, server_errors;

		if (i % REPLAY_FANOUT != wk->part) {
			continue;
		}
		if ((command = strchr(rid, '\t')) == NULL
		    || (body = strchr(command + 1, '\t')) == NULL) {
			fprintf(stderr, "prog_crash: bad line in w%d.tsv\n", wk->w);
			wk->rc = 2;
			break;
		}
		*command++ = '\0';
		*body++ = '\0';
		if ((nl = strchr(body, '\n')) != NULL) {
			*nl = '\0';
		}
		reply = until_reply(wk->c, command, body, &attempts, &server_errors);
		wk->commands++;
		wk->attempts += (uint64_t)attempts;
		fprintf(wk->jsonl, "{\"rid\":\"%s\",\"attempts\":%d,\"reply\":%s}\n", rid, attempts,
		    reply != NULL ? reply : "null");
		if (reply == NULL) {
			wk->rc = 1;
			break;
		}
		free(reply);
	}
}

/*
 * A thread: its own connection, opened here. The threads connect at the
 * same time on purpose: measured with libpartreg 0.1.0, a client opened
 * while another client of the process is already connected takes about
 * 2.1 s to connect (one opened alongside the others, 13 ms).
 */
static void *
thread_main(void *arg)
{
	struct worker *wk = arg;

	if (open_client(&wk->c) != 0) {
		wk->rc = 2;
		return NULL;
	}
	if (replay) {
		replay_worker(wk);
	} else {
		run_worker(wk);
	}
	pr_client_close(wk->c);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct worker *wks;
	int n, nthreads, rc = 0;
	uint64_t commands = 0, attempts = 0;

	replay = argc == 6 && strcmp(argv[1], "replay") == 0;
	if (!(argc == 7 && strcmp(argv[1], "run") == 0) && !replay) {
		fprintf(stderr,
		    "usage: %s run BROKER SOURCE WORKERS OUTDIR ATTEMPT_MS (token in "
		    "PARTREG_TOKEN)\n"
		    "       %s replay BROKER OUTDIR WORKERS ATTEMPT_MS\n",
		    argv[0], argv[0]);
		return 2;
	}
	broker = argv[2];
	if (replay) {
		outdir = argv[3];
		n = atoi(argv[4]);
		attempt_ms = atoi(argv[5]);
	} else {
		source = argv[3];
		n = atoi(argv[4]);
		outdir = argv[5];
		attempt_ms = atoi(argv[6]);
		token = getenv("PARTREG_TOKEN");
		if (token == NULL) {
			fprintf(stderr, "prog_crash: PARTREG_TOKEN not set\n");
			return 2;
		}
	}
	nthreads = replay ? n * REPLAY_FANOUT : n;
	if (n < 1 || n > 16 || attempt_ms < 10
	    || (wks = calloc((size_t)nthreads, sizeof *wks)) == NULL) {
		fprintf(stderr, "prog_crash: bad WORKERS or ATTEMPT_MS\n");
		return 2;
	}
	for (int i = 0; i < nthreads; i++) {
		char path[4096];

		wks[i].w = replay ? i / REPLAY_FANOUT : i;
		wks[i].part = replay ? i % REPLAY_FANOUT : 0;
		if (replay) {
			snprintf(path, sizeof path, "%s/replay%d-%d.jsonl", outdir, wks[i].w,
			    wks[i].part);
		} else {
			snprintf(path, sizeof path, "%s/w%d.jsonl", outdir, wks[i].w);
		}
		wks[i].jsonl = fopen(path, "w");
		snprintf(path, sizeof path, "%s/w%d.tsv", outdir, wks[i].w);
		wks[i].tsv = fopen(path, replay ? "r" : "w");
		if (wks[i].jsonl == NULL || wks[i].tsv == NULL) {
			fprintf(stderr, "prog_crash: cannot open %s\n", path);
			return 2;
		}
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&wks[i].thread, NULL, thread_main, &wks[i]) != 0) {
			fprintf(stderr, "prog_crash: cannot start a thread\n");
			return 2;
		}
	}
	for (int w = 0; w < nthreads; w++) {
		pthread_join(wks[w].thread, NULL);
		fclose(wks[w].jsonl);
		fclose(wks[w].tsv);
		commands += wks[w].commands;
		attempts += wks[w].attempts;
		if (wks[w].rc > rc) {
			rc = wks[w].rc;
		}
	}
	printf("%s: %d threads, %llu commands, %llu sends\n", replay ? "replay" : "run", nthreads,
	    (unsigned long long)commands, (unsigned long long)attempts);
	free(wks);
	return rc;
}
