/* SPDX-License-Identifier: MIT */
/*
 * The partreg CLI's shared parts: its JSON reading and writing, the parsed
 * command line, and the calls each subcommand file makes.
 *
 * Replies and events are read with json-c and walked as json_objects: the
 * CLI is a program using libpartreg and json-c, seeing only their public
 * headers. Printing is ours (json.c), so that output keeps its form.
 */
#ifndef PR_CLI_H
#define PR_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>

#include <json-c/json.h>

#include <partreg/client.h>

/* Exit codes of partreg (documented in partreg --help). */
#define PR_EXIT_OK          0
#define PR_EXIT_REFUSED     1 /* not ready, or the agent refused the command */
#define PR_EXIT_USAGE       2
#define PR_EXIT_UNREACHABLE 3  /* no broker connection within --timeout */
#define PR_EXIT_TIMEOUT     4  /* wait timed out, or no reply came */
#define PR_EXIT_UNKNOWN     5  /* unknown source, provider or partition */
#define PR_EXIT_LOST        75 /* run: the lock was lost (EX_TEMPFAIL) */

/* ---- JSON (json.c) ---- */

/*
 * Parse text[0..len) as one whole JSON document, strictly (json-c's
 * JSON_TOKENER_STRICT; nothing may follow it). 0 with *out owned by the
 * caller (json_object_put; NULL for the document "null"), or PR_EJSON /
 * -ENOMEM.
 */
int pr__cli_json_parse(const char *text, size_t len, struct json_object **out);
/* Member key of obj when it has that type, else NULL (also when obj is not
 * an object). Borrowed from obj. */
struct json_object *pr__cli_json_get(
    const struct json_object *obj, const char *key, enum json_type type);
/* The string member key of obj, or NULL when absent or not a string. Borrowed from obj. */
const char *pr__cli_json_str(const struct json_object *obj, const char *key);
/* The length of an array; 0 for anything else (json-c's own array calls
 * abort on a non-array, NULL included). */
size_t pr__cli_json_len(const struct json_object *v);
/* Element i of an array, or NULL (also past the end, or for a non-array). Borrowed. */
struct json_object *pr__cli_json_at(const struct json_object *v, size_t i);

/* Write v (NULL = null) as compact JSON: integers exactly, floats as their
 * literal came, strings as pr__cli_json_write_str writes them. */
void pr__cli_json_write(FILE *f, struct json_object *v);
/*
 * Write s[0..len) as a JSON string literal, quotes included: '"', '\\' and
 * control characters (and DEL) escaped, every other byte (UTF-8, '/') as
 * it is. The CLI's one string escaper: output and command bodies alike.
 */
void pr__cli_json_write_str(FILE *f, const char *s, size_t len);

/* A JSON object under construction, on a memory stream: a command body. */
struct pr_cb {
	FILE *f; /* open_memstream on buf/len; NULL once finished */
	char *buf;
	size_t len;
	int nmembers;
	int failed; /* ran out of memory: the body is unusable */
};

void pr__cb_init(struct pr_cb *b);
/* Wipe (it may hold a token) and free the body; b may be finished or not. */
void pr__cb_release(struct pr_cb *b);
/* Add "key": "value", escaped. */
void pr__cb_str(struct pr_cb *b, const char *key, const char *value);
/* Add "key": raw, raw being valid JSON already (a number, an object). */
void pr__cb_raw(struct pr_cb *b, const char *key, const char *raw);
/* The finished object text ("{...}"), owned by b until pr__cb_release; NULL
 * when out of memory. No member may be added afterwards. */
const char *pr__cb_finish(struct pr_cb *b);

/* ---- the command line ---- */

enum pr_cli_opt {
	/* global */
	PR_O_BROKER,
	PR_O_PREFIX,
	PR_O_USERNAME,
	PR_O_PASSWORD_FILE,
	PR_O_CAFILE,
	PR_O_CERT,
	PR_O_KEY,
	PR_O_MQTT_VERSION,
	PR_O_TIMEOUT,
	PR_O_JSON,
	PR_O_QUIET,
	PR_O_TOKEN_FILE,
	PR_O_HELP,
	PR_O_VERSION,
	/* per command */
	PR_O_OWNER,
	PR_O_PROVIDER,
	PR_O_START,
	PR_O_END,
	PR_O_TTL,
	PR_O_SESSION,
	PR_O_FENCE,
	PR_O_METADATA,
	PR_O_REASON,
	PR_O_LIMIT,
	PR_O_CURSOR,
	PR_O_ALL,
	PR_O_SINCE_SEQ,
	PR_O_FROM,
	PR_O_TO,
	PR_O_COUNT,
	PR_O_WILL_DELAY,
	PR_O_COUNT_OF_OPTIONS,
};

struct pr_cli {
	const char *opt[PR_O_COUNT_OF_OPTIONS]; /* value, or NULL when not given */
	int from_argv[PR_O_COUNT_OF_OPTIONS];   /* given on the command line */
	const char *args[8];                    /* positional arguments after the subcommand */
	int nargs;
	char **exec_argv; /* run: the words after "--", NULL-terminated */
	int json;
	int timeout_ms;    /* --timeout, or the default of 10 s */
	int timeout_given; /* --timeout or PARTREG_TIMEOUT was set */
	int quiet;         /* --quiet: no progress lines, only results and errors */
	char token[257];   /* access token ("" = none) */
	struct pr_client *client;
	/* The library's last warning (why a connection fails), for the one
	 * line a person sees instead of its log lines. */
	pthread_mutex_t warn_mu;
	char last_warning[256];
};

/*
 * ready, from the retained summary: PR_EXIT_OK with *result (readiness/
 * query's shape, "from": "summary"; caller frees) when the summary decides,
 * PR_EXIT_TIMEOUT (said) when it cannot and the agent is offline, another
 * exit code (said), or -1: ask the agent.
 */
int pr__cli_ready_from_summary(struct pr_cli *cli, struct json_object **result);

/* Print "partreg: msg" (human) or {"code","message"} (--json) on stderr. */
void pr__cli_fail(const struct pr_cli *cli, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Connect (once) with the given Last Will (NULL = none). Returns
 * PR_EXIT_OK, PR_EXIT_UNREACHABLE or PR_EXIT_USAGE (a bad option), having
 * printed why.
 */
int pr__cli_connect(struct pr_cli *cli, const char *will_topic, const char *will_payload);

/*
 * Send command with body and wait up to timeout_ms for the reply. On
 * PR_EXIT_OK *env is the parsed reply envelope, an object (caller frees
 * with json_object_put); whether the agent accepted it is env's "ok". Otherwise the
 * exit code to use, having printed why (no reply, broker unreachable).
 */
int pr__cli_request(struct pr_cli *cli, const char *command, const char *body, int timeout_ms,
    struct json_object **env);
/* The same, saying nothing when no reply comes (PR_EXIT_TIMEOUT): wait
 * and watch then keep following. */
int pr__cli_request_quiet(struct pr_cli *cli, const char *command, const char *body, int timeout_ms,
    struct json_object **env);

/* Print the "error" of a refused reply (human: "error: code: message") and
 * return its exit code: PR_EXIT_USAGE for invalid input (invalid_*,
 * missing_field, payload_too_large, unknown_command), PR_EXIT_UNKNOWN for
 * unknown_source, unknown_provider, unknown_partition, else
 * PR_EXIT_REFUSED. */
int pr__cli_refused(const struct pr_cli *cli, struct json_object *env);

/*
 * Print an object as one "prefix key=value key=value" line (prefix NULL =
 * none). Strings with spaces, quotes or control characters are quoted as
 * JSON strings; objects and arrays are compact JSON; null members and the
 * keys listed in skip (NULL-terminated, or NULL) are left out.
 */
void pr__cli_print_record(
    FILE *f, const char *prefix, struct json_object *obj, const char *const *skip);

/* Milliseconds on CLOCK_MONOTONIC (not wall time, which can jump), for
 * deadlines and durations. */
int64_t pr__cli_mono_ms(void);

/* t for a person: canonical, with date and zone, to the second. */
void pr__cli_time_for_people(int64_t t, char *buf, size_t cap);

/* Add "source"/"start"/"end"... helpers for bodies. */
void pr__cli_body_interval(const struct pr_cli *cli, struct pr_cb *b, const char *source);

/* Subcommands implemented outside partreg.c. Each returns an exit code. */
int pr__cli_watch(struct pr_cli *cli);
int pr__cli_wait(struct pr_cli *cli);
int pr__cli_run(struct pr_cli *cli);

#endif
