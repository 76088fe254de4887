/* SPDX-License-Identifier: MIT */
/*
 * The partreg CLI's shared parts: a small JSON reader and writer, the
 * parsed command line, and the calls each subcommand file makes.
 *
 * Replies and events are read into struct pr_cj trees (codec.h: json-c
 * stays inside the codec); numbers keep their literal text, so an integer
 * is printed back unchanged.
 */
#ifndef PR_CLI_H
#define PR_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <partreg/client.h>


/* Exit codes of partreg (documented in partreg --help). */
#define PR_EXIT_OK          0
#define PR_EXIT_REFUSED     1 /* not ready, or the agent refused the command */
#define PR_EXIT_USAGE       2
#define PR_EXIT_UNREACHABLE 3  /* no broker connection within --timeout */
#define PR_EXIT_TIMEOUT     4  /* wait timed out, or no reply came */
#define PR_EXIT_LOST        75 /* run: the lock was lost (EX_TEMPFAIL) */

/* ---- JSON trees: replies and events as read (json.c) ---- */

enum pr_cj_type {
	PR_CJ_NULL,
	PR_CJ_BOOL,
	PR_CJ_NUM,
	PR_CJ_STR,
	PR_CJ_ARR,
	PR_CJ_OBJ,
};

/* One JSON value; the members of an object or array are a child list. */
struct pr_cj {
	enum pr_cj_type type;
	char *key;  /* member name when inside an object, else NULL */
	char *text; /* STR: the decoded string; NUM: the literal */
	int boolean;
	struct pr_cj *child; /* first member (ARR, OBJ) */
	struct pr_cj *next;  /* next sibling */
};

/* Parse text[0..len) into *out (caller frees with pr__cj_free). 0 or PR_EJSON / -ENOMEM. */
int pr__cj_parse(const char *text, size_t len, struct pr_cj **out);
/* Free a value and its members; NULL is fine. */
void pr__cj_free(struct pr_cj *v);
/* Member key of obj, or NULL (also when obj is not an object). Borrowed from obj. */
const struct pr_cj *pr__cj_get(const struct pr_cj *obj, const char *key);
/* The string member key of obj, or NULL when absent or not a string. */
const char *pr__cj_str(const struct pr_cj *obj, const char *key);

/* ---- JSON output ---- */

/* Write v as compact JSON. */
void pr__cj_write(FILE *f, const struct pr_cj *v);
/* Write s as a JSON string literal, quotes included. */
void pr__cj_write_str(FILE *f, const char *s);

/* A growing JSON object under construction: a command body. */
struct pr_cb {
	char *buf;
	size_t len, cap;
	int failed; /* ran out of memory: the body is unusable */
};

void pr__cb_init(struct pr_cb *b);
void pr__cb_release(struct pr_cb *b);
/* Add "key": "value", escaped. */
void pr__cb_str(struct pr_cb *b, const char *key, const char *value);
/* Add "key": raw, raw being valid JSON already (a number, an object). */
void pr__cb_raw(struct pr_cb *b, const char *key, const char *raw);
/* The finished object text ("{...}"), owned by b; NULL when out of memory. */
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
	char token[257];   /* access token ("" = none) */
	struct pr_client *client;
};

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
 * PR_EXIT_OK *env is the parsed reply envelope (caller frees with
 * pr__cj_free); whether the agent accepted it is env's "ok". Otherwise the
 * exit code to use, having printed why (no reply, broker unreachable).
 */
int pr__cli_request(
    struct pr_cli *cli, const char *command, const char *body, int timeout_ms, struct pr_cj **env);

/* Print the "error" of a refused reply (human: "error: code: message"). */
void pr__cli_print_error(const struct pr_cli *cli, const struct pr_cj *env);

/*
 * Print an object as one "prefix key=value key=value" line (prefix NULL =
 * none). Strings with spaces, quotes or control characters are quoted as
 * JSON strings; objects and arrays are compact JSON; null members and the
 * keys listed in skip (NULL-terminated, or NULL) are left out.
 */
void pr__cli_print_record(
    FILE *f, const char *prefix, const struct pr_cj *obj, const char *const *skip);

/* A compact time for status lines: HH:MM:SS today (UTC), else canonical. */
void pr__cli_short_time(int64_t t, char *buf, size_t cap);

/* Add "source"/"start"/"end"... helpers for bodies. */
void pr__cli_body_interval(const struct pr_cli *cli, struct pr_cb *b, const char *source);

/* Subcommands implemented outside partreg.c. Each returns an exit code. */
int pr__cli_watch(struct pr_cli *cli);
int pr__cli_wait(struct pr_cli *cli);
int pr__cli_run(struct pr_cli *cli);

#endif
