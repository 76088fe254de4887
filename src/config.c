/* SPDX-License-Identifier: MIT */
/*
 * One table describes every option once: its flag name (also the config
 * file key), where it lands in struct pr_config, and its kind. The three
 * sources are applied in order of precedence, each overwriting the last, so
 * a flag always wins and a typo in any of them is an error, never ignored.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/protocol.h>

#include "names.h"
#include "strfmt.h"

enum kind { K_STR, K_SIZE, K_U32, K_U64, K_VERSION, K_FLAG };

struct optdef {
	const char *name;
	enum kind kind;
	size_t off;
	const char *help;
};

#define O(f) offsetof(struct pr_config, f)
static const struct optdef opts[] = {
	{ "broker", K_STR, O(broker), "broker URL, mqtt://host:port or mqtts://host:port" },
	{ "username", K_STR, O(username), "MQTT user name" },
	{ "password-file", K_STR, O(password_file), "file whose first line is the MQTT password" },
	{ "cafile", K_STR, O(cafile), "TLS: CA certificates (PEM) to verify the broker" },
	{ "cert", K_STR, O(cert), "TLS: client certificate (PEM)" },
	{ "key", K_STR, O(key), "TLS: client private key (PEM)" },
	{ "data-dir", K_STR, O(data_dir), "directory of the LMDB store" },
	{ "prefix", K_STR, O(prefix), "topic prefix (one agent per prefix)" },
	{ "client-id", K_STR, O(client_id),
	    "MQTT client id (stable: the broker keeps its session)" },
	{ "log-level", K_STR, O(log_level), "error, warn, info or debug" },
	{ "config", K_STR, O(config_file), "config file of key = value lines" },
	{ "mqtt-version", K_VERSION, O(mqtt_version), "5 or 3.1.1" },
	{ "max-payload", K_SIZE, O(max_payload), "largest command payload accepted, bytes" },
	{ "session-expiry", K_U32, O(session_expiry_s),
	    "seconds the broker keeps commands for a stopped agent" },
	{ "map-size", K_U64, O(map_size_mb), "LMDB map size, MiB (sparse)" },
	{ "batch-max", K_SIZE, O(batch_max), "most commands committed in one transaction" },
	{ "idempotency-ttl", K_U32, O(idempotency_ttl_s), "seconds a request_id is remembered" },
	{ "summary-max", K_SIZE, O(summary_max), "most ranges and blockers in a source summary" },
	{ "lease-default", K_U32, O(lease_default_s), "lease of a lock without ttl_s, seconds" },
	{ "lease-max", K_U32, O(lease_max_s), "largest ttl_s a lock or renew may ask, seconds" },
	{ "history-max-age", K_U32, O(history_max_age_s),
	    "events older than this are pruned, seconds" },
	{ "history-max-events", K_SIZE, O(history_max_events), "events kept per source" },
	{ "tombstone-expiry", K_U32, O(tombstone_expiry_s),
	    "seconds a deleted partition's retained tombstone lives" },
	{ "ready-expiry", K_U32, O(ready_expiry_s),
	    "seconds a ready partition's retained message lives after it became ready (0: "
	    "always)" },
	{ "stats-interval", K_U32, O(stats_interval_s),
	    "seconds between retained P/agent/stats messages (0: none)" },
	{ "queue-max", K_SIZE, O(queue_max),
	    "most commands waiting for the worker; then the broker holds the rest" },
	{ "queue-max-mb", K_SIZE, O(queue_max_mb), "most MiB of commands waiting for the worker" },
	{ "receive-max", K_U32, O(receive_max),
	    "MQTT 5 Receive Maximum: commands the broker may send unacknowledged (1-65535)" },
	{ "takeover", K_FLAG, O(takeover),
	    "start even if another agent is online on the prefix, and replace it" },
	{ "help", K_FLAG, O(help), "print this help and exit" },
	{ "version", K_FLAG, O(version), "print the version and exit" },
};
#undef O
#define NOPTS (sizeof opts / sizeof opts[0])

static const struct optdef *
find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) {
			return &opts[i];
		}
	}
	return NULL;
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0])) {
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return -1;
	}
	*out = v;
	return 0;
}

static int
set(struct pr_config *cfg, const struct optdef *o, const char *value, const char *from, FILE *err)
{
	char *field = (char *)cfg + o->off;
	uint64_t v;

	switch (o->kind) {
	case K_STR: {
		char *copy = strdup(value);

		if (copy == NULL) {
			return -ENOMEM;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case K_FLAG:
		*(int *)field = 1;
		return 0;
	case K_VERSION:
		if (strcmp(value, "5") == 0) {
			*(int *)field = 5;
			return 0;
		}
		if (strcmp(value, "3.1.1") == 0 || strcmp(value, "4") == 0) {
			*(int *)field = 4;
			return 0;
		}
		break;
	case K_SIZE:
		if (parse_u64(value, SIZE_MAX, &v) == 0 && v > 0) {
			*(size_t *)field = (size_t)v;
			return 0;
		}
		break;
	case K_U32:
		if (parse_u64(value, UINT32_MAX, &v) == 0) {
			*(uint32_t *)field = (uint32_t)v;
			return 0;
		}
		break;
	case K_U64:
		if (parse_u64(value, UINT64_MAX, &v) == 0 && v > 0) {
			*(uint64_t *)field = v;
			return 0;
		}
		break;
	}
	fprintf(err, "partregd: %s: invalid value '%s' for %s\n", from, value, o->name);
	return PR_EFIELD;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s)) {
		s++;
	}
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1])) {
		*--e = '\0';
	}
	return s;
}

static int
load_file(struct pr_config *cfg, const char *path, FILE *err)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0;
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		fprintf(err, "partregd: cannot read config file %s: %s\n", path, strerror(errno));
		return rc;
	}
	while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
		char where[64];
		char *eq, *key, *hash = strchr(line, '#');
		const struct optdef *o;

		lineno++;
		if (hash != NULL) {
			*hash = '\0';
		}
		key = trim(line);
		if (*key == '\0') {
			continue;
		}
		snprintf(where, sizeof where, "%.40s:%d", path, lineno);
		eq = strchr(key, '=');
		if (eq == NULL) {
			fprintf(err, "partregd: %s: expected 'key = value'\n", where);
			rc = PR_EFIELD;
			break;
		}
		*eq = '\0';
		key = trim(key);
		o = find(key, strlen(key));
		if (o == NULL || o->kind == K_FLAG || strcmp(o->name, "config") == 0) {
			fprintf(err, "partregd: %s: unknown key '%s'\n", where, key);
			rc = PR_EFIELD;
			break;
		}
		rc = set(cfg, o, trim(eq + 1), where, err);
	}
	fclose(f);
	return rc;
}

/* PARTREG_DATA_DIR for data-dir. */
static void
env_name(const struct optdef *o, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "PARTREG_");

	for (const char *p = o->name; *p != '\0' && n + 1 < cap; p++) {
		buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	}
	buf[n] = '\0';
}

static int
set_defaults(struct pr_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->broker = strdup("mqtt://127.0.0.1:1883");
	cfg->data_dir = strdup("/var/lib/partreg");
	cfg->prefix = strdup(PR_DEFAULT_PREFIX);
	cfg->log_level = strdup("info");
	cfg->mqtt_version = 5;
	cfg->max_payload = 65536;
	cfg->session_expiry_s = 86400;
	cfg->map_size_mb = 16384;
	cfg->batch_max = 256;
	cfg->idempotency_ttl_s = 86400;
	cfg->summary_max = 1000;
	cfg->lease_default_s = 3600;
	cfg->lease_max_s = 604800;
	cfg->history_max_age_s = 2592000;
	cfg->history_max_events = 100000;
	cfg->tombstone_expiry_s = 604800;
	cfg->ready_expiry_s = 604800;
	cfg->stats_interval_s = 30;
	cfg->queue_max = 10000;
	cfg->queue_max_mb = 64;
	cfg->receive_max = 100;
	if (cfg->broker == NULL || cfg->data_dir == NULL || cfg->prefix == NULL
	    || cfg->log_level == NULL) {
		return -ENOMEM;
	}
	return 0;
}

int
pr__config_load(struct pr_config *cfg, int argc, char **argv, FILE *err)
{
	const char *config_path = NULL;
	int rc;

	rc = set_defaults(cfg);
	if (rc != 0) {
		return rc;
	}
	/* --help and --version answer whatever else is wrong. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			cfg->help = 1;
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			cfg->version = 1;
			return 0;
		}
	}
	/* The config file comes first, so look for --config before the rest. */
	config_path = getenv("PARTREG_CONFIG");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[i + 1];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		}
	}
	if (config_path != NULL) {
		rc = load_file(cfg, config_path, err);
		if (rc != 0) {
			return rc;
		}
	}
	for (size_t i = 0; i < NOPTS; i++) {
		char name[64];
		const char *v;

		if (opts[i].kind == K_FLAG) {
			continue;
		}
		env_name(&opts[i], name, sizeof name);
		v = getenv(name);
		if (v != NULL && (rc = set(cfg, &opts[i], v, name, err)) != 0) {
			return rc;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq, *value;
		const struct optdef *o;

		if (strncmp(a, "--", 2) != 0) {
			fprintf(err, "partregd: unexpected argument '%s' (see --help)\n", a);
			return PR_EFIELD;
		}
		a += 2;
		eq = strchr(a, '=');
		o = find(a, eq != NULL ? (size_t)(eq - a) : strlen(a));
		if (o == NULL) {
			fprintf(err, "partregd: unknown option '%s' (see --help)\n", argv[i]);
			return PR_EFIELD;
		}
		if (o->kind == K_FLAG) {
			value = "";
		} else if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(err, "partregd: option --%s needs a value\n", o->name);
			return PR_EFIELD;
		}
		rc = set(cfg, o, value, "command line", err);
		if (rc != 0) {
			return rc;
		}
	}
	if (pr__prefix_check(cfg->prefix) != 0) {
		fprintf(err,
		    "partregd: --prefix '%s' must be topic levels separated by '/', without '+', "
		    "'#', empty levels, or a leading '$'\n",
		    cfg->prefix);
		return PR_EFIELD;
	}
	if (strncmp(cfg->broker, "mqtts://", 8) != 0 && strncmp(cfg->broker, "ssl://", 6) != 0
	    && (cfg->cafile != NULL || cfg->cert != NULL || cfg->key != NULL)) {
		fprintf(err,
		    "partregd: --cafile/--cert/--key need an mqtts:// --broker (got %s): refusing "
		    "to connect without TLS\n",
		    cfg->broker);
		return PR_EFIELD;
	}
	if (cfg->lease_default_s < 1 || cfg->lease_default_s > cfg->lease_max_s) {
		fprintf(err, "partregd: --lease-default must be 1 to --lease-max (%u) seconds\n",
		    (unsigned)cfg->lease_max_s);
		return PR_EFIELD;
	}
	if (cfg->receive_max < 1 || cfg->receive_max > 65535) {
		fprintf(err, "partregd: --receive-max must be 1 to 65535\n");
		return PR_EFIELD;
	}
	if (cfg->client_id == NULL) {
		cfg->client_id = pr__strfmt("partregd:%s", cfg->prefix);
		if (cfg->client_id == NULL) {
			return -ENOMEM;
		}
	}
	return 0;
}

void
pr__config_release(struct pr_config *cfg)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (opts[i].kind == K_STR) {
			char **p = (char **)((char *)cfg + opts[i].off);

			free(*p);
			*p = NULL;
		}
	}
}

void
pr__config_usage(FILE *out)
{
	fprintf(out,
	    "usage: partregd [--option value]...\n"
	    "\n"
	    "The partreg agent: applies partition registry commands received over\n"
	    "MQTT to an LMDB store and publishes the state as retained messages.\n"
	    "Each option may also be set as PARTREG_<NAME> in the environment or as\n"
	    "'name = value' in the --config file; flags win over the environment,\n"
	    "which wins over the file.\n\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++) {
		char env[64];

		env_name(&opts[i], env, sizeof env);
		fprintf(out, "  --%-19s %s%s%s%s\n", opts[i].name, opts[i].help,
		    opts[i].kind == K_FLAG ? "" : " [", opts[i].kind == K_FLAG ? "" : env,
		    opts[i].kind == K_FLAG ? "" : "]");
	}
	fprintf(out,
	    "\nexit status: 0 stopped by SIGTERM/SIGINT, 1 cannot start, 2 usage,\n"
	    "  3 another process holds the store, 4 another agent is online on the\n"
	    "  prefix (see --takeover), 5 another agent took over while running\n"
	    "\ndefaults: --broker mqtt://127.0.0.1:1883 --data-dir /var/lib/partreg\n"
	    "  --prefix %s --client-id partregd:<prefix> --max-payload 65536\n"
	    "  --session-expiry 86400 --map-size 16384 --batch-max 256\n"
	    "  --idempotency-ttl 86400 --summary-max 1000 --log-level info\n"
	    "  --lease-default 3600 --lease-max 604800 --history-max-age 2592000\n"
	    "  --history-max-events 100000 --tombstone-expiry 604800 --ready-expiry 604800\n"
	    "  --stats-interval 30\n"
	    "  --queue-max 10000 --queue-max-mb 64 --receive-max 100\n",
	    PR_DEFAULT_PREFIX);
}

char *
pr__config_read_secret(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	char *nl;

	if (f == NULL) {
		return NULL;
	}
	if (fgets(buf, sizeof buf, f) == NULL) {
		buf[0] = '\0';
	}
	fclose(f);
	nl = strpbrk(buf, "\r\n");
	if (nl != NULL) {
		*nl = '\0';
	}
	return strdup(buf);
}
