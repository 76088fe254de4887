/* SPDX-License-Identifier: MIT */
/*
 * partreg run: run a job holding the lock on its partition.
 *
 * Order matters throughout:
 *  1. The signals partreg forwards (and SIGCHLD) are blocked before the
 *     MQTT client starts, so the library's threads inherit the mask and the
 *     main thread alone takes them, synchronously, with sigwaitinfo: no
 *     handler, no race with the child's exit.
 *  2. The client connects with a Last Will, session/abort for a fresh
 *     random session id, before the lock is taken under that session: if
 *     partreg dies (kill -9), the broker publishes the Will and the agent
 *     fails the partition within seconds, instead of when the lease runs out.
 *  3. The job is started only once the lock is held, and a renew thread
 *     extends the lease every ttl/3 seconds with the fence. A renew the
 *     agent refuses (lease_expired, stale_fence, not_locked, ...) means
 *     someone else may now write the partition: the job gets SIGTERM and
 *     partreg exits 75, without a fail (the partition is no longer ours to
 *     fail). A renew that gets no answer (broker away) is retried: the job
 *     keeps running, and the lease keeps consumers safe meanwhile.
 *  4. The renew thread is stopped and joined before the final unlock or
 *     fail, so no renew can race it and turn a finished lock into "lost".
 * Rejected: running the job through /bin/sh -c (quoting surprises, and the
 * shell, not the job, would receive the forwarded signals).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TTL   60
#define DEFAULT_GRACE 10 /* --will-delay: seconds the agent waits after the Will */
#define INHERITED_MAX 64

struct renewer {
	struct pr_cli *cli;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int lost;      /* the agent refused a renew: the lock is gone */
	char why[512]; /* why it was lost */
	pid_t child;
	const char *fence; /* decimal text */
	long ttl_s;
	long grace_s; /* of the Last Will's session/abort */
};

/*
 * The descriptors partreg was started with (beyond 0-2), sorted: the job
 * gets these and no others. Read before the client opens its socket.
 */
static size_t
inherited_fds(int *fds, size_t cap)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	if (d == NULL) {
		return 0;
	}
	while ((e = readdir(d)) != NULL && n < cap) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != dirfd(d)) {
			size_t i = n++;
			/* Insertion keeps them sorted: there are few. */
			for (; i > 0 && fds[i - 1] > fd; i--) {
				fds[i] = fds[i - 1];
			}
			fds[i] = fd;
		}
	}
	closedir(d);
	return n;
}

/*
 * In the child, before exec: close every descriptor but 0-2 and the
 * inherited ones. The MQTT socket above all: a job holding it open would
 * keep the connection alive after partreg is killed, and the broker would
 * never send the Last Will. Only async-signal-safe calls (close_range).
 */
static void
close_others(const int *keep, size_t nkeep)
{
	unsigned from = 3;

	for (size_t i = 0; i <= nkeep; i++) {
		unsigned to = i < nkeep ? (unsigned)keep[i] - 1 : ~0U;
		if (to >= from && close_range(from, to, 0) != 0) {
			/* No close_range (old kernel): the first 65536 one by one. */
			for (unsigned fd = from; fd <= to && fd < 65536; fd++) {
				close((int)fd);
			}
		}
		if (i < nkeep) {
			from = (unsigned)keep[i] + 1;
		}
	}
}

/* After a failed exec in the child: write(2) only, the parent's threads may hold stdio locks. */
static void
child_exec_failed(const char *cmd, int err)
{
	const char *parts[] = { "partreg run: cannot run ", cmd, ": ", strerror(err), "\n" };

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0) {
			break;
		}
	}
	/* As a shell does: 127 not found, 126 found but not runnable. */
	_exit(err == ENOENT ? 127 : 126);
}

/* A random UUIDv4 for the session id. 0 or -errno. */
static int
new_session(char out[37])
{
	unsigned char r[16];

	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		return -errno;
	}
	r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
	    r[14], r[15]);
	return 0;
}

static void
body_token(const struct pr_cli *cli, struct pr_cb *b)
{
	if (cli->token[0] != '\0') {
		pr__cb_str(b, "access_token", cli->token);
	}
}

/* The "status" of a reply, 0 when absent. */
static int
reply_status(const struct json_object *env)
{
	struct json_object *s;

	if (!json_object_object_get_ex(env, "status", &s)
	    || !(json_object_is_type(s, json_type_int)
	        || json_object_is_type(s, json_type_double))) {
		return 0;
	}
	return json_object_get_int(s);
}

static int
reply_ok(const struct json_object *env)
{
	return json_object_get_boolean(pr__cli_json_get(env, "ok", json_type_boolean));
}

static void
describe_error(const struct json_object *env, char *buf, size_t cap)
{
	struct json_object *err = pr__cli_json_get(env, "error", json_type_object);
	const char *code = pr__cli_json_str(err, "code");
	const char *msg = pr__cli_json_str(err, "message");

	snprintf(buf, cap, "%s: %s", code ? code : "unknown", msg ? msg : "(no message)");
}

enum { RENEW_OK, RENEW_RETRY, RENEW_REFUSED };

/*
 * One renew: RENEW_OK, RENEW_RETRY (no answer, or the agent's store is in
 * trouble) or RENEW_REFUSED (the agent refused it for good).
 */
static int
renew_once(struct renewer *rn, int timeout_ms)
{
	struct pr_cli *cli = rn->cli;
	struct pr_cb b;
	const char *body;
	char *reply = NULL, ttl[24];
	struct json_object *env;
	int rc;

	pr__cb_init(&b);
	pr__cli_body_interval(cli, &b, cli->args[0]);
	pr__cb_raw(&b, "fence", rn->fence);
	snprintf(ttl, sizeof ttl, "%ld", rn->ttl_s);
	pr__cb_raw(&b, "ttl_s", ttl);
	body_token(cli, &b);
	if ((body = pr__cb_finish(&b)) == NULL) {
		pr__cb_release(&b);
		return RENEW_RETRY;
	}
	/*
	 * Resend often: after an outage the agent may come back with little
	 * of the lease left, and a resend (same request_id) is free.
	 */
	rc = pr_client_request(cli->client, "partition/renew", body, timeout_ms, 500, &reply);
	pr__cb_release(&b);
	if (rc != 0) {
		fprintf(stderr,
		    "partreg run: renew got no reply (%s); the job keeps running, retrying\n",
		    rc == -ETIMEDOUT ? "timed out" : strerror(rc < 0 && rc > -4096 ? -rc : EIO));
		return RENEW_RETRY;
	}
	rc = pr__cli_json_parse(reply, strlen(reply), &env);
	free(reply);
	if (rc != 0) {
		return RENEW_RETRY;
	}
	if (reply_ok(env)) {
		rc = RENEW_OK;
	} else if (reply_status(env) >= 500) {
		/* The agent's store is in trouble, not our lock: try again. */
		char why[512];
		describe_error(env, why, sizeof why);
		fprintf(stderr, "partreg run: renew refused for now (%s); retrying\n", why);
		rc = RENEW_RETRY;
	} else {
		describe_error(env, rn->why, sizeof rn->why);
		rc = RENEW_REFUSED;
	}
	json_object_put(env);
	return rc;
}

static void *
renew_main(void *arg)
{
	struct renewer *rn = arg;
	/* Every third of the lease, and at least twice within the grace of
	 * the Last Will, so a runner back after a broker restart shows it is
	 * alive before its deferred abort runs. */
	int64_t period_ms = rn->ttl_s * 1000 / 3;

	if (rn->grace_s > 0 && rn->grace_s * 1000 / 2 < period_ms) {
		period_ms = rn->grace_s * 1000 / 2;
	}
	int timeout_ms = period_ms > 1000 ? (int)period_ms : 1000;
	int64_t due = pr__cli_mono_ms() + period_ms;

	pthread_mutex_lock(&rn->mu);
	for (;;) {
		int64_t began, left;
		int r;

		while (!rn->stop && (left = due - pr__cli_mono_ms()) > 0) {
			struct timespec ts;
			/* The condition variable runs on CLOCK_MONOTONIC too. */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += left / 1000;
			ts.tv_nsec += (left % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&rn->cv, &rn->mu, &ts);
		}
		if (rn->stop) {
			break;
		}
		pthread_mutex_unlock(&rn->mu);
		began = pr__cli_mono_ms();
		r = renew_once(rn, timeout_ms);
		pthread_mutex_lock(&rn->mu);
		if (r == RENEW_REFUSED && !rn->stop) {
			rn->lost = 1;
			/* Someone else may write the partition now: stop ours. */
			kill(rn->child, SIGTERM);
			break;
		}
		/*
		 * Renewed: the next in a period. No answer: that attempt already
		 * spent up to a period resending, so the next follows it at
		 * once (after a short pause, should it have failed fast).
		 */
		due = pr__cli_mono_ms() + period_ms;
		if (r == RENEW_RETRY) {
			due = began + period_ms;
			if (due < pr__cli_mono_ms() + 200) {
				due = pr__cli_mono_ms() + 200;
			}
		}
	}
	pthread_mutex_unlock(&rn->mu);
	return NULL;
}

/*
 * unlock or fail, after the job. Returns PR_EXIT_OK, or the exit code of
 * the failure (printed).
 */
static int
finish(struct pr_cli *cli, const char *command, const char *fence, const char *extra_key,
    const char *extra_raw, const char *reason)
{
	struct pr_cb b;
	struct json_object *env;
	const char *body;
	int rc;

	pr__cb_init(&b);
	pr__cli_body_interval(cli, &b, cli->args[0]);
	pr__cb_raw(&b, "fence", fence);
	if (extra_key != NULL) {
		pr__cb_raw(&b, extra_key, extra_raw);
	}
	if (reason != NULL) {
		pr__cb_str(&b, "reason", reason);
	}
	body_token(cli, &b);
	if ((body = pr__cb_finish(&b)) == NULL) {
		pr__cb_release(&b);
		return PR_EXIT_REFUSED;
	}
	rc = pr__cli_request(cli, command, body, cli->timeout_ms, &env);
	pr__cb_release(&b);
	if (rc != PR_EXIT_OK) {
		return rc;
	}
	if (!reply_ok(env)) {
		const char *code
		    = pr__cli_json_str(pr__cli_json_get(env, "error", json_type_object), "code");
		rc = pr__cli_refused(cli, env);
		if (code != NULL
		    && (strcmp(code, "lease_expired") == 0 || strcmp(code, "stale_fence") == 0
		        || strcmp(code, "not_locked") == 0)) {
			rc = PR_EXIT_LOST;
		}
	} else if (cli->json) {
		struct json_object *result = NULL;
		json_object_object_get_ex(env, "result", &result);
		pr__cli_json_write(stdout, result);
		putc('\n', stdout);
	} else if (reason != NULL || !cli->quiet) {
		/* How it ended, for a person (a failure also under --quiet). */
		struct json_object *res = pr__cli_json_get(env, "result", json_type_object);
		const char *state = pr__cli_json_str(res, "state");

		fprintf(stderr, "partreg run: %s %s [%s, %s) is %s", cli->args[0],
		    cli->opt[PR_O_PROVIDER], cli->opt[PR_O_START], cli->opt[PR_O_END],
		    state != NULL ? state : "?");
		if (reason != NULL) {
			fprintf(stderr, " (the job: %s)\n", reason);
		} else {
			fprintf(stderr, ", version %lld\n",
			    (long long)json_object_get_int64(
			        pr__cli_json_get(res, "version", json_type_int)));
		}
	}
	json_object_put(env);
	return rc;
}

static int
lock(struct pr_cli *cli, const char *session, long ttl_s, char *fence, size_t fence_cap)
{
	struct pr_cb b;
	struct json_object *env, *res, *f;
	const char *body, *exp;
	char ttl[24];
	int rc;

	pr__cb_init(&b);
	pr__cli_body_interval(cli, &b, cli->args[0]);
	snprintf(ttl, sizeof ttl, "%ld", ttl_s);
	pr__cb_raw(&b, "ttl_s", ttl);
	pr__cb_str(&b, "session", session);
	body_token(cli, &b);
	if ((body = pr__cb_finish(&b)) == NULL) {
		pr__cb_release(&b);
		return PR_EXIT_REFUSED;
	}
	rc = pr__cli_request(cli, "partition/lock", body, cli->timeout_ms, &env);
	pr__cb_release(&b);
	if (rc != PR_EXIT_OK) {
		return rc;
	}
	if (!reply_ok(env)) {
		rc = pr__cli_refused(cli, env);
		json_object_put(env);
		return rc;
	}
	res = pr__cli_json_get(env, "result", json_type_object);
	/* Sent back as it came: json-c prints an integer exactly. */
	f = pr__cli_json_get(res, "fence", json_type_int);
	if (f == NULL
	    || (size_t)snprintf(fence, fence_cap, "%s",
	           json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN))
	        >= fence_cap) {
		pr__cli_fail(cli, "invalid_reply", "the lock reply has no fence");
		json_object_put(env);
		return PR_EXIT_REFUSED;
	}
	exp = pr__cli_json_str(res, "expires_at");
	if (!cli->json && !cli->quiet) {
		fprintf(stderr, "partreg run: locked %s %s [%s, %s) fence %s, lease until %s\n",
		    cli->args[0], cli->opt[PR_O_PROVIDER], cli->opt[PR_O_START], cli->opt[PR_O_END],
		    fence, exp ? exp : "?");
	}
	json_object_put(env);
	return PR_EXIT_OK;
}

int
pr__cli_run(struct pr_cli *cli)
{
	const char *prefix = cli->opt[PR_O_PREFIX] ? cli->opt[PR_O_PREFIX] : PR_DEFAULT_PREFIX;
	long ttl_s = cli->opt[PR_O_TTL] ? atol(cli->opt[PR_O_TTL]) : DEFAULT_TTL;
	long grace_s = cli->opt[PR_O_WILL_DELAY] ? atol(cli->opt[PR_O_WILL_DELAY]) : DEFAULT_GRACE;
	char session[37], will_topic[1024], will[128], fence[32];
	struct renewer rn;
	pthread_t renew_thread;
	sigset_t set, old;
	pid_t pid, parent;
	int64_t t0;
	int rc, wstatus = 0, code, have_thread;
	int keep[INHERITED_MAX];
	size_t nkeep = inherited_fds(keep, INHERITED_MAX);

	if (new_session(session) != 0) {
		pr__cli_fail(cli, "internal", "no random numbers: %s", strerror(errno));
		return PR_EXIT_REFUSED;
	}
	snprintf(will_topic, sizeof will_topic, "%s/cmd/session/abort", prefix);
	/* The agent waits grace_s for a sign of life before it fails
	 * anything: a Will that came only because the broker restarted (a
	 * graceful stop of mosquitto sends every Will at once) fails nothing
	 * while partreg reconnects and renews. */
	snprintf(will, sizeof will, "{\"session\":\"%s\",\"grace_s\":%ld}", session, grace_s);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if ((rc = pr__cli_connect(cli, will_topic, will)) != PR_EXIT_OK) {
		return rc;
	}
	if ((rc = lock(cli, session, ttl_s, fence, sizeof fence)) != PR_EXIT_OK) {
		return rc;
	}
	fflush(NULL);
	t0 = pr__cli_mono_ms();
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		pr__cli_fail(cli, "internal", "fork: %s", strerror(errno));
		finish(cli, "partition/fail", fence, NULL, NULL, "partreg run could not fork");
		return PR_EXIT_REFUSED;
	}
	if (pid == 0) {
		/* The job never outlives partreg: killed with it (kill -9 too).
		 * It stays in partreg's process group, so that a kill of the
		 * group (Airflow's) reaches both. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
			_exit(128 + SIGKILL); /* partreg already died */
		}
		/* The job gets the signal mask partreg itself was started with. */
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		close_others(keep, nkeep);
		/* --json: stdout carries partreg's one JSON document; the job's
		 * output goes to stderr. */
		if (cli->json && dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
			child_exec_failed(cli->exec_argv[0], errno);
		}
		execvp(cli->exec_argv[0], cli->exec_argv);
		child_exec_failed(cli->exec_argv[0], errno);
	}
	memset(&rn, 0, sizeof rn);
	rn.cli = cli;
	rn.child = pid;
	rn.fence = fence;
	rn.ttl_s = ttl_s;
	rn.grace_s = grace_s;
	pthread_mutex_init(&rn.mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&rn.cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	have_thread = pthread_create(&renew_thread, NULL, renew_main, &rn) == 0;
	if (!have_thread) {
		/* Without renewals the lease would run out under the job. */
		pr__cli_fail(cli, "internal", "cannot start the renew thread");
		kill(pid, SIGTERM);
	}
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0) {
			continue;
		}
		if (sig == SIGCHLD) {
			pid_t w = waitpid(pid, &wstatus, WNOHANG);
			if (w == pid) {
				break;
			}
			continue;
		}
		kill(pid, sig);
	}
	double duration = (double)(pr__cli_mono_ms() - t0) / 1e3;

	pthread_mutex_lock(&rn.mu);
	rn.stop = 1;
	pthread_cond_signal(&rn.cv);
	pthread_mutex_unlock(&rn.mu);
	if (have_thread) {
		pthread_join(renew_thread, NULL);
	}

	code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	if (rn.lost) {
		pr__cli_fail(cli, "lock_lost",
		    "the lock was lost while the job ran (%s); job stopped", rn.why);
		return PR_EXIT_LOST;
	}
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
		char host[256] = "", secs[32];
		struct pr_cb meta;
		const char *m;

		gethostname(host, sizeof host - 1);
		snprintf(secs, sizeof secs, "%.3f", duration);
		pr__cb_init(&meta);
		pr__cb_raw(&meta, "exit_status", "0");
		pr__cb_raw(&meta, "duration_s", secs);
		pr__cb_str(&meta, "host", host);
		/* Out of memory: unlocked all the same, without metadata. */
		m = pr__cb_finish(&meta);
		rc = finish(cli, "partition/unlock", fence, m ? "metadata" : NULL, m, NULL);
		pr__cb_release(&meta);
		if (rc == PR_EXIT_LOST) {
			pr__cli_fail(cli, "lock_lost",
			    "the job succeeded but the lock was lost before the unlock");
		}
		return rc;
	} else {
		char reason[64];
		if (WIFEXITED(wstatus)) {
			snprintf(reason, sizeof reason, "exit status %d", WEXITSTATUS(wstatus));
		} else {
			snprintf(reason, sizeof reason, "killed by signal %d", WTERMSIG(wstatus));
		}
		if (finish(cli, "partition/fail", fence, NULL, NULL, reason) != PR_EXIT_OK) {
			fprintf(stderr,
			    "partreg run: the job failed (%s) and so did marking it failed;"
			    " the lease will expire\n",
			    reason);
		}
	}
	return code;
}
