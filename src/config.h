/* SPDX-License-Identifier: MIT */
/*
 * partregd's configuration: defaults < config file < PARTREG_* environment
 * < command-line flags (read by common/options.h). Every option has all three spellings: the flag
 * --data-dir, the variable PARTREG_DATA_DIR, the file key data-dir.
 *
 * Config file: one "key = value" per line, '#' starts a comment, blank
 * lines ignored, values taken verbatim after trimming (no quoting).
 */
#ifndef PR_CONFIG_H
#define PR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct pr_config {
	char *broker; /* mqtt://127.0.0.1:1883 */
	char *username;
	char *password_file; /* the password is read from it, first line */
	char *cafile;
	char *cert;
	char *key;
	char *data_dir;  /* /var/lib/partreg */
	char *prefix;    /* partreg/v1 */
	char *client_id; /* partregd:<prefix> */
	char *log_level; /* info */
	char *config_file;
	int mqtt_version;            /* 5 or 4 (given as "5" or "3.1.1") */
	size_t max_payload;          /* bytes, 65536 */
	uint32_t session_expiry_s;   /* 86400 */
	uint64_t map_size_mb;        /* 16384 */
	size_t batch_max;            /* commands per transaction, 256 */
	uint32_t idempotency_ttl_s;  /* 86400 */
	size_t summary_max;          /* ranges / blockers in a summary, 1000 */
	uint32_t lease_default_s;    /* lease of a lock without ttl_s, 3600 */
	uint32_t lease_max_s;        /* largest ttl_s, 604800 */
	uint32_t history_max_age_s;  /* events older are pruned, 2592000 */
	size_t history_max_events;   /* events kept per source, 100000 */
	uint32_t tombstone_expiry_s; /* deleted partitions' retained tombstones, 604800 */
	uint32_t ready_expiry_s;     /* ready partitions' retained messages, 604800; 0 = keep */
	uint32_t stats_interval_s;   /* P/agent/stats period, 30; 0 = never */
	size_t queue_max;            /* commands waiting for the worker, 10000 */
	size_t queue_max_mb;         /* their bytes, MiB, 64 */
	uint32_t receive_max;        /* MQTT 5 Receive Maximum announced, 100 */
	int takeover;                /* replace another agent online on the prefix */
	/* The etcd backend (replica.h); etcd NULL = LMDB alone. */
	char *etcd;        /* endpoints */
	char *etcd_prefix; /* /<prefix>/ */
	char *etcd_cafile, *etcd_cert, *etcd_key;
	char *etcd_user, *etcd_password_file;
	size_t etcd_max_txn_ops;  /* 128, etcd's default */
	char *share_group;        /* partregd */
	uint32_t publisher_ttl_s; /* 5 */
	int help;
	int version;
};

/* Fill cfg from defaults, the config file, the environment and argv.
 * On error prints a message naming the option to err and returns PR_EFIELD
 * (or -errno when the config file can't be read). */
int pr__config_load(struct pr_config *cfg, int argc, char **argv, FILE *err);
void pr__config_release(struct pr_config *cfg);
/* The --help text. */
void pr__config_usage(FILE *out);

#endif
