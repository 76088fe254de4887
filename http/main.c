/* SPDX-License-Identifier: MIT */
/*
 * partreg-http: the HTTP front door's main(). It wires the parts (one MQTT
 * client feeding the mirror, the HTTP server answering from it) and, like
 * partregd, takes SIGTERM and SIGINT synchronously with sigwait: blocked
 * in every thread, so no work happens in a signal handler. Stopping: the
 * event streams end, the server waits for its connections, the client
 * closes (no callback runs after), then the mirror goes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <partreg/client.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "options.h"
#include "server.h"

/* How often the mirror drops what has expired on the broker, seconds. */
#define PRUNE_S 2

/*
 * The mirror's subscriptions, registered without waiting: the client makes
 * them on every connect (the first may not have happened yet, and the
 * server must not wait for a broker that is away; a refusal is logged by
 * the client).
 */
static int
subscribe_all(struct pr_client *c, struct pr_http_mirror *m)
{
	static const char *const filters[] = { "state/#", "agent/status", "agent/stats" };

	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		int r = pr_client_subscribe_msg(c, filters[i], pr_http_mirror_msg, m, 0);

		if (r != 0 && r != -ETIMEDOUT && r != -ENOTCONN) {
			pr_error("partreg-http: cannot subscribe to %s/%s: %s", pr_client_prefix(c),
			    filters[i], pr_strerror(r));
			return r;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct pr_http_config cfg;
	struct pr_http_app app = { 0 };
	struct pr_client_opts co = { 0 };
	struct pr_http_server *server = NULL;
	enum pr_log_level level;
	char *password = NULL;
	sigset_t set;
	int sig = 0, rc, status = 1;

	rc = pr_http_config_load(&cfg, argc, argv, stderr);
	if (rc != 0) {
		pr_http_config_release(&cfg);
		return 2;
	}
	if (cfg.help) {
		pr_http_config_usage(stdout);
		pr_http_config_release(&cfg);
		return 0;
	}
	if (cfg.version) {
		printf("partreg-http %s (protocol v%d)\n", PR_VERSION_STRING, PR_PROTOCOL_VERSION);
		pr_http_config_release(&cfg);
		return 0;
	}
	if (pr__log_parse_level(cfg.log_level, &level) != 0) {
		fprintf(stderr, "partreg-http: --log-level must be error, warn, info or debug\n");
		pr_http_config_release(&cfg);
		return 2;
	}
	pr__log_set_level(level);
	if (cfg.password_file != NULL
	    && (password = pr__options_read_secret(cfg.password_file)) == NULL) {
		fprintf(
		    stderr, "partreg-http: cannot read --password-file %s\n", cfg.password_file);
		pr_http_config_release(&cfg);
		return 2;
	}

	/* As partregd: a shell starts a background job with SIGINT ignored. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* Before any thread exists, so that every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	app.cfg = &cfg;
	app.started_at = pr_time_now();
	if (pr_http_mirror_new(cfg.prefix, &app.mirror) != 0
	    || pr_http_metrics_new(&app.metrics) != 0) {
		pr_error("partreg-http: out of memory");
		goto out;
	}
	co.broker = cfg.broker;
	co.prefix = cfg.prefix;
	co.client_id = cfg.client_id;
	co.username = cfg.username;
	co.password = password;
	co.cafile = cfg.cafile;
	co.certfile = cfg.cert;
	co.keyfile = cfg.key;
	co.mqtt_version = cfg.mqtt_version;
	co.log = pr__log_line;
	rc = pr_client_open(&co, &app.client);
	if (rc != 0) {
		pr_error("partreg-http: cannot start the MQTT client: %s", pr_strerror(rc));
		goto out;
	}
	/* Serving at once, whether the broker is there or not (reads answer
	 * from what the mirror has; /readyz says what is missing). */
	if (subscribe_all(app.client, app.mirror) != 0
	    || pr_http_server_start(&app, &server) != 0) {
		goto out;
	}
	pr_info("partreg-http %s: listening on %s://%s, broker %s, prefix %s", PR_VERSION_STRING,
	    cfg.tls_cert != NULL ? "https" : "http", cfg.listen, cfg.broker, cfg.prefix);
	/* The broker drops expired retained messages without a word to its
	 * subscribers: the mirror forgets them on its own, checked every
	 * PRUNE_S seconds. */
	do {
		struct timespec prune = { PRUNE_S, 0 };

		sig = sigtimedwait(&set, NULL, &prune);
		if (sig < 0) {
			pr_http_mirror_prune(app.mirror, pr_time_now());
		} else if (sig == SIGHUP) {
			pr_info(
			    "partreg-http: SIGHUP ignored (restart to reload the configuration)");
		}
	} while (sig < 0 || sig == SIGHUP);
	pr_info("partreg-http: %s received; stopping", strsignal(sig));
	status = 0;
out:
	if (app.mirror != NULL) {
		pr_http_mirror_shutdown(app.mirror);
	}
	pr_http_server_stop(server);
	pr_client_close(app.client);
	pr_http_mirror_free(app.mirror);
	pr_http_metrics_free(app.metrics);
	if (password != NULL) {
		memset(password, 0, strlen(password));
		free(password);
	}
	if (status == 0) {
		pr_info("partreg-http: stopped");
	}
	pr_http_config_release(&cfg);
	return status;
}
