/* SPDX-License-Identifier: MIT */
/*
 * partregd's options: this table describes every option once (its flag
 * name, also the config file key, where it lands in struct pr_config, and
 * its kind); common/options.c reads them from the three sources. The
 * checks between options follow here.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <partreg/protocol.h>

#include "names.h"
#include "options.h"
#include "strfmt.h"

#define O(f) offsetof(struct pr_config, f)
static const struct pr_optdef opts[] = {
	PR_OPTDEFS_MQTT(struct pr_config),
	{ "client-id", PR_OPT_STR, O(client_id),
	    "MQTT client id (stable: the broker keeps its session)" },
	{ "data-dir", PR_OPT_STR, O(data_dir), "directory of the LMDB store" },
	{ "log-level", PR_OPT_STR, O(log_level), "error, warn, info or debug" },
	{ "config", PR_OPT_STR, O(config_file), "config file of key = value lines" },
	{ "max-payload", PR_OPT_SIZE, O(max_payload), "largest command payload accepted, bytes" },
	{ "session-expiry", PR_OPT_U32, O(session_expiry_s),
	    "seconds the broker keeps commands for a stopped agent" },
	{ "map-size", PR_OPT_U64, O(map_size_mb), "LMDB map size, MiB (sparse)" },
	{ "batch-max", PR_OPT_SIZE, O(batch_max), "most commands committed in one transaction" },
	{ "idempotency-ttl", PR_OPT_U32, O(idempotency_ttl_s),
	    "seconds a request_id is remembered" },
	{ "summary-max", PR_OPT_SIZE, O(summary_max),
	    "most ranges and blockers in a source summary" },
	{ "lease-default", PR_OPT_U32, O(lease_default_s),
	    "lease of a lock without ttl_s, seconds" },
	{ "lease-max", PR_OPT_U32, O(lease_max_s),
	    "largest ttl_s a lock or renew may ask, seconds" },
	{ "history-max-age", PR_OPT_U32, O(history_max_age_s),
	    "events older than this are pruned, seconds" },
	{ "history-max-events", PR_OPT_SIZE, O(history_max_events), "events kept per source" },
	{ "tombstone-expiry", PR_OPT_U32, O(tombstone_expiry_s),
	    "seconds a deleted partition's retained tombstone lives" },
	{ "ready-expiry", PR_OPT_U32, O(ready_expiry_s),
	    "seconds a ready partition's retained message lives after it became ready (0: "
	    "always)" },
	{ "stats-interval", PR_OPT_U32, O(stats_interval_s),
	    "seconds between retained P/agent/stats messages (0: none)" },
	{ "queue-max", PR_OPT_SIZE, O(queue_max),
	    "most commands waiting for the worker; then the broker holds the rest" },
	{ "queue-max-mb", PR_OPT_SIZE, O(queue_max_mb),
	    "most MiB of commands waiting for the worker" },
	{ "receive-max", PR_OPT_U32, O(receive_max),
	    "MQTT 5 Receive Maximum: commands the broker may send unacknowledged (1-65535)" },
	{ "takeover", PR_OPT_FLAG, O(takeover),
	    "start even if another agent is online on the prefix, and replace it" },
	{ "etcd", PR_OPT_STR, O(etcd),
	    "etcd endpoints, http(s)://host:port[,...]: etcd becomes the store, the data dir "
	    "its local read index, and several agents may serve the prefix (High availability)" },
	{ "etcd-prefix", PR_OPT_STR, O(etcd_prefix), "key prefix of the registry in etcd" },
	{ "etcd-cafile", PR_OPT_STR, O(etcd_cafile), "TLS: CA certificates (PEM) to verify etcd" },
	{ "etcd-cert", PR_OPT_STR, O(etcd_cert), "TLS: client certificate (PEM) for etcd" },
	{ "etcd-key", PR_OPT_STR, O(etcd_key), "TLS: client private key (PEM) for etcd" },
	{ "etcd-user", PR_OPT_STR, O(etcd_user), "etcd user name (etcd authentication)" },
	{ "etcd-password-file", PR_OPT_STR, O(etcd_password_file),
	    "file whose first line is the etcd password" },
	{ "etcd-max-txn-ops", PR_OPT_SIZE, O(etcd_max_txn_ops),
	    "etcd's --max-txn-ops: most writes in one etcd transaction" },
	{ "share-group", PR_OPT_STR, O(share_group),
	    "with --etcd: the MQTT shared subscription group the agents take commands in" },
	{ "publisher-ttl", PR_OPT_U32, O(publisher_ttl_s),
	    "with --etcd: seconds of the lease of the agent that publishes retained state" },
	{ "help", PR_OPT_FLAG, O(help), "print this help and exit" },
	{ "version", PR_OPT_FLAG, O(version), "print the version and exit" },
};
#undef O
#define NOPTS (sizeof opts / sizeof opts[0])
static const struct pr_options spec = { "partregd", "PARTREG_", opts, NOPTS };

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
	cfg->etcd_max_txn_ops = 128;
	cfg->publisher_ttl_s = 4;
	cfg->share_group = strdup("partregd");
	if (cfg->share_group == NULL || cfg->broker == NULL || cfg->data_dir == NULL
	    || cfg->prefix == NULL || cfg->log_level == NULL) {
		return -ENOMEM;
	}
	return 0;
}

int
pr__config_load(struct pr_config *cfg, int argc, char **argv, FILE *err)
{
	int rc;

	rc = set_defaults(cfg);
	if (rc != 0) {
		return rc;
	}
	rc = pr__options_load(&spec, cfg, argc, argv, err);
	if (rc != 0 || cfg->help || cfg->version) {
		return rc;
	}
	rc = pr__options_check_mqtt(&spec, cfg->broker, cfg->prefix,
	    cfg->cafile != NULL || cfg->cert != NULL || cfg->key != NULL, err);
	if (rc != 0) {
		return rc;
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
	if (cfg->etcd != NULL) {
		if (cfg->publisher_ttl_s < 3 || cfg->publisher_ttl_s > 60) {
			fprintf(err, "partregd: --publisher-ttl must be 3 to 60 seconds\n");
			return PR_EFIELD;
		}
		if (cfg->etcd_max_txn_ops < 16) {
			fprintf(err, "partregd: --etcd-max-txn-ops must be at least 16\n");
			return PR_EFIELD;
		}
		if (cfg->share_group[0] == '\0' || strpbrk(cfg->share_group, "/+#") != NULL) {
			fprintf(err,
			    "partregd: --share-group must be a non-empty name without / + #\n");
			return PR_EFIELD;
		}
		if (cfg->etcd_prefix == NULL
		    && (cfg->etcd_prefix = pr__strfmt("/%s/", cfg->prefix)) == NULL) {
			return -ENOMEM;
		}
	}
	if (cfg->client_id == NULL && cfg->etcd != NULL) {
		/* Several agents serve the prefix: each needs its own id. */
		char host[256] = "";

		gethostname(host, sizeof host - 1);
		cfg->client_id = pr__strfmt("partregd:%s:%s", cfg->prefix, host);
		if (cfg->client_id == NULL) {
			return -ENOMEM;
		}
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
	pr__options_release(&spec, cfg);
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
	pr__options_usage(&spec, out);
	fprintf(out,
	    "\nexit status: 0 stopped by SIGTERM/SIGINT, 1 cannot start, 2 usage,\n"
	    "  3 another process holds the store, 4 another agent is online on the\n"
	    "  prefix (see --takeover), 5 another agent took over while running\n"
	    "\nwith --etcd, the default --client-id is partregd:<prefix>:<host>: each\n"
	    "  agent of a prefix needs its own\n"
	    "\ndefaults: --broker mqtt://127.0.0.1:1883 --data-dir /var/lib/partreg\n"
	    "  --prefix %s --client-id partregd:<prefix> --max-payload 65536\n"
	    "  --session-expiry 86400 --map-size 16384 --batch-max 256\n"
	    "  --idempotency-ttl 86400 --summary-max 1000 --log-level info\n"
	    "  --lease-default 3600 --lease-max 604800 --history-max-age 2592000\n"
	    "  --history-max-events 100000 --tombstone-expiry 604800 --ready-expiry 604800\n"
	    "  --stats-interval 30\n"
	    "  --queue-max 10000 --queue-max-mb 64 --receive-max 100\n"
	    "  --etcd-prefix /<prefix>/ --etcd-max-txn-ops 128 --share-group partregd\n"
	    "  --publisher-ttl 4\n",
	    PR_DEFAULT_PREFIX);
}
