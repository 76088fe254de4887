/* SPDX-License-Identifier: MIT */
/*
 * Table-driven options of the daemons (partregd, partreg-http): defaults <
 * config file < environment < command-line flags. A program describes each
 * option once, in a table of struct pr_optdef: its name is the flag
 * (--data-dir), the config file key (data-dir) and, upper-cased with '-' as
 * '_' after the program's prefix, the environment variable
 * (PARTREG_DATA_DIR). Each source overwrites the last, so a flag always
 * wins, and a typo in any of them is an error, never ignored.
 *
 * Config file: one "key = value" per line, '#' starts a comment, blank
 * lines ignored, values taken verbatim after trimming (no quoting). Flags
 * (PR_OPT_FLAG) and "config" itself are command-line only.
 *
 * The options' values live in the program's own struct; each entry names
 * its offset. The checks between options (a value that depends on another)
 * stay with the program.
 */
#ifndef PR_OPTIONS_H
#define PR_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

enum pr_opt_kind {
	PR_OPT_STR,     /* char *, heap; freed by pr__options_release */
	PR_OPT_SIZE,    /* size_t > 0 */
	PR_OPT_U32,     /* uint32_t, 0 allowed */
	PR_OPT_U64,     /* uint64_t > 0 */
	PR_OPT_VERSION, /* int: "5" -> 5, "3.1.1" or "4" -> 4 (the MQTT version) */
	PR_OPT_FLAG,    /* int set to 1; command line only */
};

struct pr_optdef {
	const char *name; /* "data-dir" */
	enum pr_opt_kind kind;
	size_t off; /* offsetof the field in the program's struct */
	const char *help;
};

struct pr_options {
	const char *program;    /* "partregd": starts every message */
	const char *env_prefix; /* "PARTREG_" */
	const struct pr_optdef *defs;
	size_t ndefs;
};

/*
 * Fill cfg (the program's struct, its defaults already set, strings on the
 * heap) from the config file (--config or <env_prefix>CONFIG), the
 * environment and argv. When --help or --version is anywhere in argv, only
 * that flag is set (the options named "help" and "version") and 0 returned
 * whatever else is wrong. On error prints one line naming the option to err
 * and returns PR_EFIELD, -ENOMEM, or -errno when the config file can't be
 * read. Strings already in cfg are freed when replaced.
 */
int pr__options_load(const struct pr_options *o, void *cfg, int argc, char **argv, FILE *err);

/*
 * The broker options both daemons take, each with one name, meaning and
 * help, as table entries for a program struct T with the fields broker,
 * username, password_file, cafile, cert, key, prefix (char *) and
 * mqtt_version (int). client-id, whose default differs, is the program's.
 */
/* clang-format off */
#define PR_OPTDEFS_MQTT(T) \
	{ "broker", PR_OPT_STR, offsetof(T, broker), \
	    "broker URL, mqtt://host:port or mqtts://host:port" }, \
	{ "username", PR_OPT_STR, offsetof(T, username), "MQTT user name" }, \
	{ "password-file", PR_OPT_STR, offsetof(T, password_file), \
	    "file whose first line is the MQTT password" }, \
	{ "cafile", PR_OPT_STR, offsetof(T, cafile), \
	    "TLS: CA certificates (PEM) to verify the broker" }, \
	{ "cert", PR_OPT_STR, offsetof(T, cert), "TLS: client certificate (PEM)" }, \
	{ "key", PR_OPT_STR, offsetof(T, key), "TLS: client private key (PEM)" }, \
	{ "prefix", PR_OPT_STR, offsetof(T, prefix), "topic prefix (one agent per prefix)" }, \
	{ "mqtt-version", PR_OPT_VERSION, offsetof(T, mqtt_version), "5 or 3.1.1" }
/* clang-format on */

/*
 * The checks between the broker options: a valid prefix, and TLS files
 * (tls_files != 0: --cafile, --cert or --key given) only with an mqtts://
 * broker. 0, or PR_EFIELD with one line naming the option on err.
 */
int pr__options_check_mqtt(
    const struct pr_options *o, const char *broker, const char *prefix, int tls_files, FILE *err);

/* Free cfg's PR_OPT_STR fields and set them to NULL. */
void pr__options_release(const struct pr_options *o, void *cfg);

/* One line per option, "  --name  help [ENV_NAME]", for --help. */
void pr__options_usage(const struct pr_options *o, FILE *out);

/* The first line of the file at path (a password), heap, caller frees;
 * NULL when it can't be read. */
char *pr__options_read_secret(const char *path);

#endif
