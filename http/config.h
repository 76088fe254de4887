/* SPDX-License-Identifier: MIT */
/*
 * partreg-http's configuration: defaults < config file < PARTREG_HTTP_*
 * environment < command-line flags (common/options.h, as partregd). The
 * MQTT options are partregd's (same names, same meaning).
 */
#ifndef PR_HTTP_CONFIG_H
#define PR_HTTP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct pr_http_config {
	char *broker; /* mqtt://127.0.0.1:1883 */
	char *username;
	char *password_file;
	char *cafile;
	char *cert;
	char *key;
	char *prefix;    /* partreg/v1 */
	char *client_id; /* NULL: the library's random partreg-<uuid> */
	char *log_level; /* info */
	char *config_file;
	char *listen;   /* HOST:PORT, 127.0.0.1:5498; [v6]:PORT for IPv6 */
	char *tls_cert; /* HTTPS: both or neither */
	char *tls_key;
	int mqtt_version;
	uint32_t max_connections;   /* 256 */
	uint32_t max_streams;       /* open /v1/stream connections, < max_connections; 0 given:
	                               half of max_connections, at most 64 */
	uint32_t max_per_ip;        /* 0 = no limit: connections from one address */
	uint32_t idle_timeout_s;    /* 30: a connection silent this long is closed */
	size_t max_body;            /* 65536 */
	uint32_t request_timeout_s; /* 10: the wait for an agent's reply */
	int help;
	int version;
};

/* Fill cfg; on error print one line naming the option to err and return
 * PR_EFIELD (or -errno when the config file can't be read). Release cfg
 * in every case. */
int pr_http_config_load(struct pr_http_config *cfg, int argc, char **argv, FILE *err);
void pr_http_config_release(struct pr_http_config *cfg);
void pr_http_config_usage(FILE *out);

#endif
