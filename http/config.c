/* SPDX-License-Identifier: MIT */
/*
 * partreg-http's option table; common/options.c reads it, the checks
 * between options follow. The MQTT options keep partregd's names so one
 * config vocabulary serves both daemons.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/protocol.h>

#include "options.h"

#define O(f) offsetof(struct pr_http_config, f)
static const struct pr_optdef opts[] = {
	PR_OPTDEFS_MQTT(struct pr_http_config),
	{ "client-id", PR_OPT_STR, O(client_id), "MQTT client id (default: random)" },
	{ "log-level", PR_OPT_STR, O(log_level), "error, warn, info or debug" },
	{ "config", PR_OPT_STR, O(config_file), "config file of key = value lines" },
	{ "listen", PR_OPT_STR, O(listen), "HTTP address HOST:PORT ([ADDR]:PORT for IPv6)" },
	{ "max-connections", PR_OPT_U32, O(max_connections), "most HTTP connections at once" },
	{ "max-streams", PR_OPT_U32, O(max_streams),
	    "most open /v1/stream connections (the dashboard's), below --max-connections "
	    "(0: half of them, at most 64)" },
	{ "max-connections-per-ip", PR_OPT_U32, O(max_per_ip),
	    "most connections from one address (0: no limit; behind a proxy all share one)" },
	{ "idle-timeout", PR_OPT_U32, O(idle_timeout_s),
	    "seconds a connection may stay silent before it is closed (streams send a keepalive "
	    "every 15)" },
	{ "max-body", PR_OPT_SIZE, O(max_body), "largest request body, bytes (larger: 413)" },
	{ "request-timeout", PR_OPT_U32, O(request_timeout_s),
	    "seconds to wait for the agent's reply (then 504)" },
	{ "tls-cert", PR_OPT_STR, O(tls_cert), "HTTPS: server certificate chain (PEM)" },
	{ "tls-key", PR_OPT_STR, O(tls_key), "HTTPS: server private key (PEM)" },
	{ "help", PR_OPT_FLAG, O(help), "print this help and exit" },
	{ "version", PR_OPT_FLAG, O(version), "print the version and exit" },
};
#undef O
#define NOPTS (sizeof opts / sizeof opts[0])

static const struct pr_options spec = { "partreg-http", "PARTREG_HTTP_", opts, NOPTS };

static int
set_defaults(struct pr_http_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->broker = strdup("mqtt://127.0.0.1:1883");
	cfg->prefix = strdup(PR_DEFAULT_PREFIX);
	cfg->log_level = strdup("info");
	cfg->listen = strdup("127.0.0.1:5498");
	cfg->mqtt_version = 5;
	cfg->max_connections = 256;
	cfg->idle_timeout_s = 30;
	cfg->max_body = 65536;
	cfg->request_timeout_s = 10;
	if (cfg->broker == NULL || cfg->prefix == NULL || cfg->log_level == NULL
	    || cfg->listen == NULL) {
		return -ENOMEM;
	}
	return 0;
}

int
pr_http_config_load(struct pr_http_config *cfg, int argc, char **argv, FILE *err)
{
	int rc = set_defaults(cfg);

	if (rc != 0) {
		return rc;
	}
	rc = pr__options_load(&spec, cfg, argc, argv, err);
	if (rc != 0 || cfg->help || cfg->version) {
		return rc;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		fprintf(
		    err, "partreg-http: --tls-cert and --tls-key go together (HTTPS needs both)\n");
		return PR_EFIELD;
	}
	rc = pr__options_check_mqtt(&spec, cfg->broker, cfg->prefix,
	    cfg->cafile != NULL || cfg->cert != NULL || cfg->key != NULL, err);
	if (rc != 0) {
		return rc;
	}
	if (cfg->max_connections < 1) {
		fprintf(err, "partreg-http: --max-connections must be at least 1\n");
		return PR_EFIELD;
	}
	if (cfg->max_streams == 0) {
		cfg->max_streams = cfg->max_connections / 2 < 64 ? cfg->max_connections / 2 : 64;
	} else if (cfg->max_streams >= cfg->max_connections) {
		fprintf(err,
		    "partreg-http: --max-streams (%u) must be below --max-connections (%u), so "
		    "that "
		    "streams cannot take every connection\n",
		    (unsigned)cfg->max_streams, (unsigned)cfg->max_connections);
		return PR_EFIELD;
	}
	if (cfg->idle_timeout_s < 20) {
		fprintf(err,
		    "partreg-http: --idle-timeout must be at least 20 s (a stream's keepalive "
		    "comes every 15)\n");
		return PR_EFIELD;
	}
	/* A stop waits for the requests in flight: --request-timeout bounds it
	 * (partreg-http.service allows 75 s). */
	if (cfg->request_timeout_s < 1 || cfg->request_timeout_s > 60) {
		fprintf(err, "partreg-http: --request-timeout must be 1 to 60 seconds\n");
		return PR_EFIELD;
	}
	return 0;
}

void
pr_http_config_release(struct pr_http_config *cfg)
{
	pr__options_release(&spec, cfg);
}

void
pr_http_config_usage(FILE *out)
{
	fprintf(out,
	    "usage: partreg-http [--option value]...\n"
	    "\n"
	    "The partreg HTTP front door: the original service's routes, a JSON API\n"
	    "under /v1/, metrics, health and a live dashboard. An MQTT client of the\n"
	    "registry: reads are answered from the retained state on the broker, writes\n"
	    "are sent to the agent as commands. Each option may also be set as\n"
	    "PARTREG_HTTP_<NAME> in the environment or as 'name = value' in the --config\n"
	    "file; flags win over the environment, which wins over the file.\n\noptions:\n");
	pr__options_usage(&spec, out);
	fprintf(out,
	    "\nexit status: 0 stopped by SIGTERM/SIGINT, 1 cannot start, 2 usage\n"
	    "\ndefaults: --broker mqtt://127.0.0.1:1883 --prefix %s\n"
	    "  --listen 127.0.0.1:5498 --max-connections 256 --max-streams 0\n"
	    "  --max-connections-per-ip 0 --idle-timeout 30 --max-body 65536\n"
	    "  --request-timeout 10 --log-level info\n",
	    PR_DEFAULT_PREFIX);
}
