/* SPDX-License-Identifier: MIT */
/*
 * partregd: the partreg agent's main(). Signals are blocked in every thread
 * and taken synchronously here with sigwait, so no work happens in a signal
 * handler: SIGTERM or SIGINT asks the worker to finish the commands it has,
 * publish "offline" and close the store; the process then exits 0. An
 * agent that stops by itself (another agent took over its prefix) wakes
 * main with SIGUSR1 and the process exits with its code (guard.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <partreg/protocol.h>

#include "agent.h"
#include "config.h"
#include "guard.h"
#include <partreg/error.h>
#include "log.h"

static void *
worker(void *arg)
{
	pr__agent_run(arg);
	/* If the agent stopped by itself (taken over), wake main's sigwait;
	 * after a SIGTERM this one stays pending and blocked, harmlessly. */
	kill(getpid(), SIGUSR1);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct pr_config cfg;
	struct pr_agent *agent = NULL;
	enum pr_log_level level;
	sigset_t set;
	pthread_t th;
	int sig = 0;
	int rc;

	rc = pr__config_load(&cfg, argc, argv, stderr);
	if (rc != 0) {
		pr__config_release(&cfg);
		return 2;
	}
	if (cfg.help) {
		pr__config_usage(stdout);
		pr__config_release(&cfg);
		return 0;
	}
	if (cfg.version) {
		printf("partregd %s (protocol v%d)\n", PR_VERSION_STRING, PR_PROTOCOL_VERSION);
		pr__config_release(&cfg);
		return 0;
	}
	if (pr__log_parse_level(cfg.log_level, &level) != 0) {
		fprintf(stderr, "partregd: --log-level must be error, warn, info or debug\n");
		pr__config_release(&cfg);
		return 2;
	}
	pr__log_set_level(level);

	/* A shell starts a background job with SIGINT ignored, and an ignored
	 * signal may be discarded even while blocked: take them back. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* Before any thread exists, so that every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = pr__agent_open(&cfg, &agent);
	if (rc != 0) {
		pr_error("partregd: cannot start: %s", pr_strerror(rc));
		pr__config_release(&cfg);
		return rc == -EBUSY ? PR_EXIT_STORE_BUSY : rc == -EEXIST ? PR_EXIT_PREFIX_BUSY : 1;
	}
	if (pthread_create(&th, NULL, worker, agent) != 0) {
		pr_error("partregd: cannot start the worker thread");
		pr__agent_close(agent);
		pr__config_release(&cfg);
		return 1;
	}
	do {
		sigwait(&set, &sig);
		if (sig == SIGHUP) {
			pr_info("partregd: SIGHUP ignored (restart to reload the configuration)");
		}
	} while (sig == SIGHUP);
	if (sig != SIGUSR1) {
		pr_info("partregd: %s received; stopping", strsignal(sig));
	}
	pr__agent_stop(agent);
	pthread_join(th, NULL);
	rc = pr__agent_exit_code(agent);
	pr__agent_close(agent);
	pr__config_release(&cfg);
	return rc;
}
