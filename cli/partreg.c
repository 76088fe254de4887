/* SPDX-License-Identifier: MIT */
/*
 * partreg: the command-line client of a partreg agent.
 *
 * One subcommand per protocol command, plus wait (follow.c: readiness
 * from the retained summary, no polling), watch (events as they come) and
 * run (run.c: a job under a lock). This file owns the command line,
 * the connection, one request/reply round trip and the output formats.
 *
 * Output: one record per line, "key=value" pairs, the same on a terminal
 * and in a pipe, so grep and cut work on both; --json prints the reply's
 * result as compact JSON for scripts (jq). Tokens are read from
 * PARTREG_TOKEN or a file, never from argv (visible in ps), and printed
 * only by the three commands that create one, alone on stdout so that
 * TOKEN=$(partreg source register ...) works.
 *
 * Options are global or per subcommand; both may come before or after the
 * subcommand, since scripts put --json wherever it reads best. Options a
 * subcommand does not take are refused (exit 2) rather than ignored: a
 * --fence that silently did nothing would be worse than an error.
 */
#include "cli.h"
#include <partreg/error.h>
#include <partreg/time.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BROKER  "mqtt://127.0.0.1:1883"
#define DEFAULT_TIMEOUT 10

struct optdef {
	const char *name;
	int has_arg;
	const char *help; /* NULL: described with its command */
};

static const struct optdef optdefs[PR_O_COUNT_OF_OPTIONS] = {
	[PR_O_BROKER] = { "broker", 1,
	    "URL      mqtt://host:port or mqtts://host:port (default " DEFAULT_BROKER ")" },
	[PR_O_PREFIX] = { "prefix", 1, "P        topic prefix (default " PR_DEFAULT_PREFIX ")" },
	[PR_O_USERNAME] = { "username", 1, "NAME   broker user name" },
	[PR_O_PASSWORD_FILE] = { "password-file", 1, "F broker password: the first line of F" },
	[PR_O_CAFILE] = { "cafile", 1, "F        CA certificates for mqtts://" },
	[PR_O_CERT] = { "cert", 1, "F          client certificate (PEM)" },
	[PR_O_KEY] = { "key", 1, "F           client private key (PEM)" },
	[PR_O_MQTT_VERSION] = { "mqtt-version", 1, "V  5 (default) or 3.1.1" },
	[PR_O_TIMEOUT]
	= { "timeout", 1, "S       seconds to wait for the broker and for a reply (default 10)" },
	[PR_O_JSON]
	= { "json", 0, "           print the result as compact JSON; errors as JSON on stderr" },
	[PR_O_QUIET] = { "quiet", 0,
	    "          no progress lines (waiting, locked...); results and errors only" },
	[PR_O_TOKEN_FILE]
	= { "token-file", 1, "F    access token: the first line of F (or PARTREG_TOKEN)" },
	[PR_O_HELP] = { "help", 0, NULL },
	[PR_O_VERSION] = { "version", 0, NULL },
	[PR_O_OWNER] = { "owner", 1, NULL },
	[PR_O_PROVIDER] = { "provider", 1, NULL },
	[PR_O_START] = { "start", 1, NULL },
	[PR_O_END] = { "end", 1, NULL },
	[PR_O_TTL] = { "ttl", 1, NULL },
	[PR_O_SESSION] = { "session", 1, NULL },
	[PR_O_FENCE] = { "fence", 1, NULL },
	[PR_O_METADATA] = { "metadata", 1, NULL },
	[PR_O_REASON] = { "reason", 1, NULL },
	[PR_O_LIMIT] = { "limit", 1, NULL },
	[PR_O_CURSOR] = { "cursor", 1, NULL },
	[PR_O_ALL] = { "all", 0, NULL },
	[PR_O_SINCE_SEQ] = { "since-seq", 1, NULL },
	[PR_O_FROM] = { "from", 1, NULL },
	[PR_O_TO] = { "to", 1, NULL },
	[PR_O_COUNT] = { "count", 1, NULL },
	[PR_O_WILL_DELAY] = { "will-delay", 1, NULL },
};

#define BIT(o)    (UINT64_C(1) << (o))
#define GLOBALS   (BIT(PR_O_HELP) - 1)
#define INTERVAL  (BIT(PR_O_PROVIDER) | BIT(PR_O_START) | BIT(PR_O_END))
#define PAGES     (BIT(PR_O_LIMIT) | BIT(PR_O_CURSOR) | BIT(PR_O_ALL))
#define NEEDS_TOK 1 /* a write: send the access token */

struct command;
typedef int (*cmd_fn)(struct pr_cli *cli, const struct command *cmd);

struct command {
	const char *group; /* "source", "partition", ... or NULL */
	const char *verb;
	const char *args; /* positional arguments, for usage */
	int nargs;        /* positional arguments required */
	int nargs_max;
	uint64_t opts;     /* options it takes, besides the global ones */
	uint64_t required; /* options it needs */
	int flags;
	const char *protocol; /* the protocol command it sends */
	cmd_fn fn;
	const char *help;
};

/* ---- output helpers ---- */

void
pr__cli_fail(const struct pr_cli *cli, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cli != NULL && cli->json) {
		fputs("{\"code\":", stderr);
		pr__cli_json_write_str(stderr, code, strlen(code));
		fputs(",\"message\":", stderr);
		pr__cli_json_write_str(stderr, msg, strlen(msg));
		fputs("}\n", stderr);
	} else {
		fprintf(stderr, "partreg: %s\n", msg);
	}
}

static int usage_error(const struct pr_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A bad command line: exit 2, said in plain text, or under --json as JSON
 * on stderr ({"code":"usage","message":…}). */
static int
usage_error(const struct pr_cli *cli, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cli->json) {
		pr__cli_fail(cli, "usage", "%s", msg);
	} else {
		fprintf(
		    stderr, "partreg: %s\n(partreg --help lists the commands and options)\n", msg);
	}
	return PR_EXIT_USAGE;
}

/* A string needs quoting when a reader splitting on spaces and '=' would misread it. */
static int
needs_quotes(const char *s, size_t len)
{
	if (len == 0) {
		return 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7F) {
			return 1;
		}
	}
	return 0;
}

void
pr__cli_print_record(FILE *f, const char *prefix, struct json_object *obj, const char *const *skip)
{
	int first = 1;

	if (prefix != NULL) {
		fputs(prefix, f);
		first = 0;
	}
	/* The foreach macro would dereference a non-object. */
	if (json_object_is_type(obj, json_type_object)) {
		json_object_object_foreach(obj, key, m)
		{
			int skipped = m == NULL; /* null members say nothing */
			for (const char *const *k = skip; !skipped && k != NULL && *k != NULL;
			     k++) {
				skipped = strcmp(*k, key) == 0;
			}
			if (skipped) {
				continue;
			}
			if (!first) {
				putc(' ', f);
			}
			first = 0;
			fprintf(f, "%s=", key);
			if (json_object_is_type(m, json_type_string)
			    && !needs_quotes(
			        json_object_get_string(m), (size_t)json_object_get_string_len(m))) {
				fputs(json_object_get_string(m), f);
			} else {
				pr__cli_json_write(f, m);
			}
		}
	}
	putc('\n', f);
}

int64_t
pr__cli_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
pr__cli_time_for_people(int64_t t, char *buf, size_t cap)
{
	char full[PR_TIME_BUFSZ];

	if (t < PR_TIME_MIN || t > PR_TIME_MAX) {
		snprintf(buf, cap, "?");
		return;
	}
	/* Canonical, with date and zone, to the second: 2023-01-02T03:04:05Z. */
	pr_time_format(t - t % 1000000, full);
	snprintf(buf, cap, "%s", full);
}

/* The exit code for the agent's error code (see pr__cli_refused). */
static int
exit_for_code(const char *code)
{
	static const char *const input[] = { "invalid_json", "invalid_field", "missing_field",
		"invalid_name", "invalid_time", "invalid_interval", "invalid_cursor",
		"invalid_reply_topic", "payload_too_large", "unknown_command", NULL };
	static const char *const unknown[]
	    = { "unknown_source", "unknown_provider", "unknown_partition", NULL };

	for (size_t i = 0; code != NULL && input[i] != NULL; i++) {
		if (strcmp(code, input[i]) == 0) {
			return PR_EXIT_USAGE;
		}
	}
	for (size_t i = 0; code != NULL && unknown[i] != NULL; i++) {
		if (strcmp(code, unknown[i]) == 0) {
			return PR_EXIT_UNKNOWN;
		}
	}
	return PR_EXIT_REFUSED;
}

int
pr__cli_refused(const struct pr_cli *cli, struct json_object *env)
{
	struct json_object *err, *details;
	const char *code, *msg;
	/* --json prints "error" whatever its type (null too), else the envelope. */
	int has_err = json_object_object_get_ex(env, "error", &err);

	details = pr__cli_json_get(err, "details", json_type_object);
	code = pr__cli_json_str(err, "code");
	msg = pr__cli_json_str(err, "message");
	if (cli->json) {
		pr__cli_json_write(stderr, has_err ? err : env);
		putc('\n', stderr);
	} else {
		fprintf(
		    stderr, "error: %s: %s", code ? code : "unknown", msg ? msg : "(no message)");
		if (details != NULL && json_object_object_length(details) > 0) {
			fputs(" (", stderr);
			pr__cli_json_write(stderr, details);
			putc(')', stderr);
		}
		putc('\n', stderr);
	}
	return exit_for_code(code);
}

/* ---- connection and requests ---- */

/* The first line of path into buf. 0, or -errno / PR_EFIELD (empty or too long). */
static int
read_first_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		return -errno;
	}
	if (fgets(buf, (int)cap, f) == NULL) {
		buf[0] = '\0';
	}
	fclose(f);
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == cap - 1) {
		memset(buf, 0, cap);
		return PR_EFIELD;
	}
	buf[n] = '\0';
	return n == 0 ? PR_EFIELD : 0;
}

static int
mqtt_version(const char *v)
{
	if (v == NULL || strcmp(v, "5") == 0) {
		return 5;
	}
	if (strcmp(v, "3.1.1") == 0 || strcmp(v, "4") == 0) {
		return 4;
	}
	return -1;
}

/*
 * The library's warnings say why a connection fails (refused, TLS,
 * credentials). They are log lines, repeated at every retry: the CLI keeps
 * the last one and says it once, in its own words, if the connection does
 * not come (pr__cli_connect).
 */
static void
log_warning(void *arg, enum pr_log_level level, const char *line)
{
	struct pr_cli *cli = arg;
	const char *p = strstr(line, "transport: ");

	if (level <= PR_LOG_WARN) {
		char *retry;

		pthread_mutex_lock(&cli->warn_mu);
		snprintf(cli->last_warning, sizeof cli->last_warning, "%s",
		    p != NULL ? p + strlen("transport: ") : line);
		if ((retry = strstr(cli->last_warning, "; retrying")) != NULL) {
			*retry = '\0';
		}
		pthread_mutex_unlock(&cli->warn_mu);
	}
}

int
pr__cli_connect(struct pr_cli *cli, const char *will_topic, const char *will_payload)
{
	struct pr_client_opts o;
	char password[1024];
	int rc;

	if (cli->client != NULL) {
		return PR_EXIT_OK;
	}
	memset(&o, 0, sizeof o);
	o.broker = cli->opt[PR_O_BROKER] ? cli->opt[PR_O_BROKER] : DEFAULT_BROKER;
	o.prefix = cli->opt[PR_O_PREFIX];
	o.username = cli->opt[PR_O_USERNAME];
	o.cafile = cli->opt[PR_O_CAFILE];
	o.certfile = cli->opt[PR_O_CERT];
	o.keyfile = cli->opt[PR_O_KEY];
	o.mqtt_version = mqtt_version(cli->opt[PR_O_MQTT_VERSION]);
	o.will_topic = will_topic;
	o.will_payload = will_payload;

	o.log = log_warning;
	o.log_arg = cli;
	if (cli->opt[PR_O_PASSWORD_FILE] != NULL) {
		rc = read_first_line(cli->opt[PR_O_PASSWORD_FILE], password, sizeof password);
		if (rc != 0) {
			pr__cli_fail(cli, "usage", "cannot read --password-file %s: %s",
			    cli->opt[PR_O_PASSWORD_FILE],
			    rc == PR_EFIELD ? "empty or too long" : strerror(-rc));
			return PR_EXIT_USAGE;
		}
		o.password = password;
	}
	rc = pr_client_open(&o, &cli->client);
	/* The client copied the password: do not keep it on this stack. */
	memset(password, 0, sizeof password);
	if (rc != 0) {
		cli->client = NULL;
		pr__cli_fail(cli, "usage", "cannot use these connection options (--broker %s): %s",
		    o.broker, pr_strerror(rc));
		return PR_EXIT_USAGE;
	}
	rc = pr_client_wait_connected(cli->client, cli->timeout_ms);
	if (rc != 0) {
		char why[256];

		pthread_mutex_lock(&cli->warn_mu);
		snprintf(why, sizeof why, "%s", cli->last_warning);
		pthread_mutex_unlock(&cli->warn_mu);
		pr__cli_fail(cli, "broker_unreachable",
		    "broker unreachable: no connection to %s within %.3g s%s%s", o.broker,
		    cli->timeout_ms / 1000.0, why[0] != '\0' ? "; last: " : "", why);
		return PR_EXIT_UNREACHABLE;
	}
	return PR_EXIT_OK;
}

static int
request(struct pr_cli *cli, const char *command, const char *body, int timeout_ms,
    struct json_object **env, int say_timeout)
{
	char *reply = NULL;
	int rc = pr__cli_connect(cli, NULL, NULL);

	if (rc != PR_EXIT_OK) {
		return rc;
	}
	rc = pr_client_request(cli->client, command, body, timeout_ms, 0, &reply);
	if (rc == -ETIMEDOUT && !say_timeout) {
		return PR_EXIT_TIMEOUT;
	}
	if (rc == -ETIMEDOUT) {
		pr__cli_fail(cli, "timeout",
		    "no reply to %s within %.3g s (is partregd running for prefix %s?)", command,
		    timeout_ms / 1000.0, pr_client_prefix(cli->client));
		return PR_EXIT_TIMEOUT;
	}
	if (rc == -ENOTCONN) {
		pr__cli_fail(
		    cli, "broker_unreachable", "broker unreachable while sending %s", command);
		return PR_EXIT_UNREACHABLE;
	}
	if (rc != 0) {
		pr__cli_fail(cli, "internal", "%s: %s", command, pr_strerror(rc));
		return PR_EXIT_REFUSED;
	}
	rc = pr__cli_json_parse(reply, strlen(reply), env);
	free(reply);
	if (rc != 0 || !json_object_is_type(*env, json_type_object)) {
		json_object_put(*env);
		*env = NULL;
		pr__cli_fail(cli, "invalid_reply", "the reply to %s is not a JSON object", command);
		return PR_EXIT_REFUSED;
	}
	return PR_EXIT_OK;
}

int
pr__cli_request(struct pr_cli *cli, const char *command, const char *body, int timeout_ms,
    struct json_object **env)
{
	return request(cli, command, body, timeout_ms, env, 1);
}

int
pr__cli_request_quiet(struct pr_cli *cli, const char *command, const char *body, int timeout_ms,
    struct json_object **env)
{
	return request(cli, command, body, timeout_ms, env, 0);
}

static int
reply_ok(const struct json_object *env)
{
	return json_object_get_boolean(pr__cli_json_get(env, "ok", json_type_boolean));
}

/*
 * One round trip: send, and on a refusal print the error. On PR_EXIT_OK
 * *env holds an accepted reply; otherwise nothing is left to free.
 */
static int
call(struct pr_cli *cli, const char *command, struct pr_cb *b, struct json_object **env)
{
	const char *body = pr__cb_finish(b);
	int rc;

	if (body == NULL) {
		pr__cb_release(b);
		pr__cli_fail(cli, "internal", "out of memory");
		return PR_EXIT_REFUSED;
	}
	rc = pr__cli_request(cli, command, body, cli->timeout_ms, env);
	pr__cb_release(b);
	if (rc != PR_EXIT_OK) {
		return rc;
	}
	if (!reply_ok(*env)) {
		rc = pr__cli_refused(cli, *env);
		json_object_put(*env);
		*env = NULL;
		return rc;
	}
	return PR_EXIT_OK;
}

static void
print_json_line(struct json_object *v)
{
	pr__cli_json_write(stdout, v);
	putc('\n', stdout);
}

/* ---- bodies ---- */

static void
body_token(const struct pr_cli *cli, struct pr_cb *b)
{
	if (cli->token[0] != '\0') {
		pr__cb_str(b, "access_token", cli->token);
	}
}

static void
body_opt_str(const struct pr_cli *cli, struct pr_cb *b, enum pr_cli_opt o, const char *key)
{
	if (cli->opt[o] != NULL) {
		pr__cb_str(b, key, cli->opt[o]);
	}
}

/* Numbers were checked when the command line was read: they go in as they are. */
static void
body_opt_num(const struct pr_cli *cli, struct pr_cb *b, enum pr_cli_opt o, const char *key)
{
	if (cli->opt[o] != NULL) {
		pr__cb_raw(b, key, cli->opt[o]);
	}
}

void
pr__cli_body_interval(const struct pr_cli *cli, struct pr_cb *b, const char *source)
{
	pr__cb_str(b, "source", source);
	body_opt_str(cli, b, PR_O_PROVIDER, "provider");
	body_opt_str(cli, b, PR_O_START, "start");
	body_opt_str(cli, b, PR_O_END, "end");
}

/* ---- subcommands ---- */

/* Print the result: compact JSON, or one record. */
static void
print_result(const struct pr_cli *cli, struct json_object *result)
{
	static const char *const no_token[] = { "access_token", "provider_token", NULL };

	if (cli->json) {
		print_json_line(result);
	} else {
		pr__cli_print_record(stdout, NULL, result, no_token);
	}
}

/* Commands that hand out a token: human output is the token alone. */
static int
token_command(struct pr_cli *cli, const char *command, struct pr_cb *b, const char *field)
{
	struct json_object *env, *result = NULL;
	const char *token;
	int rc = call(cli, command, b, &env);

	if (rc != PR_EXIT_OK) {
		return rc;
	}
	json_object_object_get_ex(env, "result", &result);
	token = pr__cli_json_str(result, field);
	if (cli->json) {
		print_json_line(result);
	} else if (token != NULL) {
		puts(token);
	} else {
		pr__cli_fail(cli, "invalid_reply", "the reply has no %s", field);
		rc = PR_EXIT_REFUSED;
	}
	json_object_put(env);
	return rc;
}

static int
cmd_source_register(struct pr_cli *cli, const struct command *cmd)
{
	struct pr_cb b;

	pr__cb_init(&b);
	pr__cb_str(&b, "source", cli->args[0]);
	pr__cb_str(&b, "owner", cli->opt[PR_O_OWNER]);
	return token_command(cli, cmd->protocol, &b, "access_token");
}

static int
cmd_rotate_token(struct pr_cli *cli, const struct command *cmd)
{
	struct pr_cb b;

	pr__cb_init(&b);
	pr__cb_str(&b, "source", cli->args[0]);
	body_token(cli, &b);
	return token_command(cli, cmd->protocol, &b, "access_token");
}

static int
cmd_provider_register(struct pr_cli *cli, const struct command *cmd)
{
	struct pr_cb b;

	pr__cb_init(&b);
	pr__cb_str(&b, "source", cli->args[0]);
	pr__cb_str(&b, "provider", cli->args[1]);
	body_token(cli, &b);
	return token_command(cli, cmd->protocol, &b, "provider_token");
}

/* source/get, agent/resync and the partition writes: one record. */
static int
cmd_simple(struct pr_cli *cli, const struct command *cmd)
{
	struct pr_cb b;
	struct json_object *env, *result = NULL;
	int rc;

	pr__cb_init(&b);
	if (cli->nargs > 0) {
		pr__cli_body_interval(cli, &b, cli->args[0]);
	}
	body_opt_num(cli, &b, PR_O_TTL, "ttl_s");
	body_opt_str(cli, &b, PR_O_SESSION, "session");
	body_opt_num(cli, &b, PR_O_FENCE, "fence");
	body_opt_num(cli, &b, PR_O_METADATA, "metadata");
	body_opt_str(cli, &b, PR_O_REASON, "reason");
	if (cmd->flags & NEEDS_TOK) {
		body_token(cli, &b);
	}
	rc = call(cli, cmd->protocol, &b, &env);
	if (rc == PR_EXIT_OK) {
		json_object_object_get_ex(env, "result", &result);
		print_result(cli, result);
		json_object_put(env);
	}
	return rc;
}

/*
 * The paginated reads. Without --all: one page, and the next cursor on
 * stderr (stdout stays one record per line). With --all: every page, in
 * --json merged into one {items|events, next_cursor: null}.
 */
static int
cmd_pages(struct pr_cli *cli, const struct command *cmd)
{
	const char *key = strcmp(cmd->protocol, "history/query") == 0 ? "events" : "items";
	const char *cursor = cli->opt[PR_O_CURSOR];
	char *cursor_copy = NULL;
	int all = cli->opt[PR_O_ALL] != NULL;
	int rc = PR_EXIT_OK, first = 1;

	if (cli->json && all) {
		printf("{\"%s\":[", key);
	}
	for (;;) {
		struct pr_cb b;
		struct json_object *env, *result = NULL, *items;
		const char *next;

		pr__cb_init(&b);
		if (cli->nargs > 0) {
			pr__cli_body_interval(cli, &b, cli->args[0]);
		}
		body_opt_num(cli, &b, PR_O_LIMIT, "limit");
		body_opt_num(cli, &b, PR_O_SINCE_SEQ, "since_seq");
		body_opt_str(cli, &b, PR_O_FROM, "from");
		body_opt_str(cli, &b, PR_O_TO, "to");
		if (cursor != NULL) {
			pr__cb_str(&b, "cursor", cursor);
		}
		rc = call(cli, cmd->protocol, &b, &env);
		if (rc != PR_EXIT_OK) {
			break;
		}
		json_object_object_get_ex(env, "result", &result);
		items = pr__cli_json_get(result, key, json_type_array);
		next = pr__cli_json_str(result, "next_cursor");
		if (cli->json && !all) {
			print_json_line(result);
		} else {
			for (size_t i = 0; i < pr__cli_json_len(items); i++) {
				struct json_object *it = pr__cli_json_at(items, i);
				if (cli->json) {
					if (!first) {
						putc(',', stdout);
					}
					pr__cli_json_write(stdout, it);
				} else {
					pr__cli_print_record(stdout, NULL, it, NULL);
				}
				first = 0;
			}
		}
		free(cursor_copy);
		cursor_copy = NULL;
		if (next != NULL) {
			if (!all) {
				if (!cli->json) {
					fprintf(stderr, "next_cursor=%s\n", next);
				}
			} else if ((cursor_copy = strdup(next)) == NULL) {
				rc = PR_EXIT_REFUSED;
			}
		}
		json_object_put(env);
		cursor = cursor_copy;
		if (!all || cursor == NULL || rc != PR_EXIT_OK) {
			break;
		}
		fflush(stdout);
	}
	free(cursor_copy);
	if (cli->json && all) {
		printf("],\"next_cursor\":null}\n");
	}
	return rc;
}

/*
 * From the retained summary when it decides (no agent needed), else from
 * the agent (readiness/query). Exit 0 ready, 1 not.
 */
static int
cmd_ready(struct pr_cli *cli, const struct command *cmd)
{
	static const char *const skip[] = { "gaps", "blockers", NULL };
	struct pr_cb b;
	struct json_object *env = NULL, *result = NULL, *gaps, *blockers;
	int rc = pr__cli_ready_from_summary(cli, &result);

	if (rc >= 0 && rc != PR_EXIT_OK) {
		return rc;
	}
	if (rc < 0) {
		pr__cb_init(&b);
		pr__cli_body_interval(cli, &b, cli->args[0]);
		rc = call(cli, cmd->protocol, &b, &env);
		if (rc != PR_EXIT_OK) {
			return rc;
		}
		json_object_object_get_ex(env, "result", &result);
		result = json_object_get(result); /* ours from here on, as the summary's */
		json_object_put(env);
	}
	gaps = pr__cli_json_get(result, "gaps", json_type_array);
	blockers = pr__cli_json_get(result, "blockers", json_type_array);
	if (cli->json) {
		print_json_line(result);
	} else {
		pr__cli_print_record(stdout, NULL, result, skip);
		for (size_t i = 0; i < pr__cli_json_len(gaps); i++) {
			struct json_object *g = pr__cli_json_at(gaps, i);
			struct json_object *s = pr__cli_json_at(g, 0), *e = pr__cli_json_at(g, 1);
			if (json_object_is_type(s, json_type_string)
			    && json_object_is_type(e, json_type_string)) {
				printf("gap start=%s end=%s\n", json_object_get_string(s),
				    json_object_get_string(e));
			}
		}
		for (size_t i = 0; i < pr__cli_json_len(blockers); i++) {
			static const char *const bskip[] = { "source", NULL };
			pr__cli_print_record(
			    stdout, "blocker", pr__cli_json_at(blockers, i), bskip);
		}
	}
	rc = json_object_get_boolean(pr__cli_json_get(result, "ready", json_type_boolean))
	    ? PR_EXIT_OK
	    : PR_EXIT_REFUSED;
	json_object_put(result);
	return rc;
}

static int
cmd_watch(struct pr_cli *cli, const struct command *cmd)
{
	(void)cmd;
	return pr__cli_watch(cli);
}

static int
cmd_wait(struct pr_cli *cli, const struct command *cmd)
{
	(void)cmd;
	return pr__cli_wait(cli);
}

static int
cmd_run(struct pr_cli *cli, const struct command *cmd)
{
	(void)cmd;
	return pr__cli_run(cli);
}

/* ---- the command table and help ---- */

static const struct command commands[] = {
	{ "source", "register", "NAME --owner OWNER", 1, 1, BIT(PR_O_OWNER), BIT(PR_O_OWNER), 0,
	    "source/register", cmd_source_register,
	    "Register a source. Prints its access token, alone, on stdout: it is shown this "
	    "once." },
	{ "source", "get", "NAME", 1, 1, 0, 0, 0, "source/get", cmd_simple, "Show a source." },
	{ "source", "list", "[--limit N] [--cursor C] [--all]", 0, 0, PAGES, 0, 0, "source/list",
	    cmd_pages, "List sources, one per line (--all: every page)." },
	{ "source", "rotate-token", "NAME", 1, 1, 0, 0, NEEDS_TOK, "source/rotate-token",
	    cmd_rotate_token,
	    "Replace the source's access token (needs the current one). Prints the new token." },
	{ "provider", "register", "SOURCE PROVIDER", 2, 2, 0, 0, NEEDS_TOK, "provider/register",
	    cmd_provider_register,
	    "Register a provider of SOURCE (needs the source's token). Prints the provider "
	    "token." },
	{ "partition", "register", "SOURCE --provider P --start A --end B", 1, 1, INTERVAL,
	    INTERVAL, NEEDS_TOK, "partition/register", cmd_simple,
	    "Declare an expected partition [A, B) of provider P (state pending)." },
	{ "partition", "lock", "SOURCE --provider P --start A --end B [--ttl S] [--session ID]", 1,
	    1, INTERVAL | BIT(PR_O_TTL) | BIT(PR_O_SESSION), INTERVAL, NEEDS_TOK, "partition/lock",
	    cmd_simple,
	    "Lock a partition while it is written; prints it with its fence and expires_at." },
	{ "partition", "renew", "SOURCE --provider P --start A --end B --fence N [--ttl S]", 1, 1,
	    INTERVAL | BIT(PR_O_FENCE) | BIT(PR_O_TTL), INTERVAL | BIT(PR_O_FENCE), NEEDS_TOK,
	    "partition/renew", cmd_simple, "Extend the lease of a lock you hold." },
	{ "partition", "unlock",
	    "SOURCE --provider P --start A --end B [--fence N] [--metadata JSON]", 1, 1,
	    INTERVAL | BIT(PR_O_FENCE) | BIT(PR_O_METADATA), INTERVAL, NEEDS_TOK,
	    "partition/unlock", cmd_simple,
	    "Mark a locked partition ready; --metadata is a JSON object (row count, run id...)." },
	{ "partition", "fail", "SOURCE --provider P --start A --end B [--fence N] [--reason TEXT]",
	    1, 1, INTERVAL | BIT(PR_O_FENCE) | BIT(PR_O_REASON), INTERVAL, NEEDS_TOK,
	    "partition/fail", cmd_simple, "Mark a locked partition failed." },
	{ "partition", "delete", "SOURCE --provider P --start A --end B", 1, 1, INTERVAL, INTERVAL,
	    NEEDS_TOK, "partition/delete", cmd_simple,
	    "Withdraw an expected partition (needs the source's token)." },
	{ "partition", "list", "SOURCE [--provider P] [--limit N] [--cursor C] [--all]", 1, 1,
	    BIT(PR_O_PROVIDER) | PAGES, 0, 0, "partition/list", cmd_pages,
	    "List the partitions of SOURCE, one per line." },
	{ NULL, "ready", "SOURCE --start A --end B", 1, 1, BIT(PR_O_START) | BIT(PR_O_END),
	    BIT(PR_O_START) | BIT(PR_O_END), 0, "readiness/query", cmd_ready,
	    "Ask the agent whether [A, B) is ready. Exit 0 if ready, 1 if not; lists the\n"
	    "gaps and the blocking partitions." },
	{ NULL, "history",
	    "SOURCE [--provider P] [--start A --end B] [--since-seq N] [--from T] [--to T]\n"
	    "        [--limit N] [--cursor C] [--all]",
	    1, 1,
	    BIT(PR_O_PROVIDER) | BIT(PR_O_START) | BIT(PR_O_END) | BIT(PR_O_SINCE_SEQ)
	        | BIT(PR_O_FROM) | BIT(PR_O_TO) | PAGES,
	    0, 0, "history/query", cmd_pages,
	    "The events of SOURCE, oldest first, one per line; --from/--to bound their time,\n"
	    "--start/--end pick one partition's interval, --since-seq N those after seq N." },
	{ NULL, "watch", "SOURCE [--count N]", 1, 1, BIT(PR_O_COUNT), 0, 0, NULL, cmd_watch,
	    "Print the events of SOURCE as they happen, one per line (--json: the raw event),\n"
	    "until interrupted (exit 0) or --count N events. With --timeout S it stops after\n"
	    "S seconds: exit 0, or 4 when --count events did not come." },
	{ NULL, "wait", "SOURCE --start A --end B [--timeout S]", 1, 1,
	    BIT(PR_O_START) | BIT(PR_O_END), BIT(PR_O_START) | BIT(PR_O_END), 0, NULL, cmd_wait,
	    "Wait until [A, B) of SOURCE is ready, from its retained summary (no polling):\n"
	    "exit 0 the moment it is. Waits forever unless --timeout S (or PARTREG_TIMEOUT)\n"
	    "is set: then exit 4 after S seconds. Exit 1 if SOURCE does not exist. On a\n"
	    "terminal, a live line on stderr shows what it still waits for; otherwise a line\n"
	    "is printed on stderr whenever that changes." },
	{ NULL, "run",
	    "SOURCE --provider P --start A --end B [--ttl S] [--will-delay S] -- CMD [ARG...]", 1,
	    1, INTERVAL | BIT(PR_O_TTL) | BIT(PR_O_WILL_DELAY), INTERVAL, NEEDS_TOK, NULL, cmd_run,
	    "Lock the partition (lease --ttl S, default 60, renewed every S/3 seconds), run\n"
	    "CMD (no shell) forwarding SIGINT, SIGTERM, SIGHUP and SIGQUIT to it, then unlock\n"
	    "with metadata {exit_status, duration_s, host} if it exits 0, or fail the\n"
	    "partition with the reason otherwise. Exits with CMD's status (128+N if killed\n"
	    "by signal N); 1 if the lock is refused; 75 if the lock is lost while CMD runs\n"
	    "(a renew refused: CMD gets SIGTERM). If the broker goes away CMD keeps running,\n"
	    "renewing is retried and partreg reconnects to its broker session; if partreg\n"
	    "itself is killed, CMD is killed with it and its Last Will fails the partition\n"
	    "(session/abort) once --will-delay S (default 10) has passed without a renew\n"
	    "from it (it renews at least every S/2 s), so a broker restart shorter than\n"
	    "that fails nothing." },
	{ NULL, "resync", "[SOURCE]", 0, 1, 0, 0, 0, "agent/resync", cmd_simple,
	    "Ask the agent to republish the retained state of SOURCE, or of every source." },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
print_options(FILE *f, uint64_t mask)
{
	for (int o = 0; o < PR_O_COUNT_OF_OPTIONS; o++) {
		if ((mask & BIT(o)) && optdefs[o].help != NULL) {
			fprintf(f, "  --%s %s\n", optdefs[o].name, optdefs[o].help);
		}
	}
}

static void
print_usage_line(FILE *f, const struct command *c)
{
	fprintf(f, "  partreg %s%s%s %s\n", c->group ? c->group : "", c->group ? " " : "", c->verb,
	    c->args);
}

static void
help_main(void)
{
	printf("Usage: partreg [OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
	       "The command-line client of a partreg agent (partregd) over MQTT.\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		print_usage_line(stdout, &commands[i]);
	}
	printf("\nOptions (before or after the command; each also as PARTREG_<NAME>, e.g.\n"
	       "PARTREG_BROKER, PARTREG_TOKEN_FILE; a flag wins over the environment):\n");
	print_options(stdout, GLOBALS);
	printf(
	    "  --help            this text; partreg COMMAND --help for one command\n"
	    "  --version         print the version\n"
	    "\n"
	    "Writes need the source's access token, or for partition commands that\n"
	    "provider's token: PARTREG_TOKEN, or the first line of --token-file /\n"
	    "PARTREG_TOKEN_FILE (PARTREG_TOKEN wins over PARTREG_TOKEN_FILE, --token-file\n"
	    "over both). There is no --token flag: argv is visible to every user in ps.\n"
	    "Times are RFC 3339 (\"2023-01-01T00:00:00Z\", \"2023-01-01 00:00:00\" = UTC);\n"
	    "a date alone (2023-01-01) is that day's midnight, UTC.\n"
	    "\n"
	    "Output: one record per line as key=value pairs (values with spaces are JSON\n"
	    "strings), the same on a terminal and in a pipe; --json prints the result as\n"
	    "compact JSON, and errors as JSON on stderr. Tokens are printed only by\n"
	    "source register, source rotate-token and provider register (alone on stdout).\n"
	    "\n"
	    "Exit status:\n"
	    "  0   yes, ok; ready (ready, wait)\n"
	    "  1   no: not ready (ready), or refused by the registry's rules (error: CODE: "
	    "message)\n"
	    "  2   usage or invalid input: command line, options, times, or the agent's invalid_*\n"
	    "  3   broker unreachable: no connection within --timeout\n"
	    "  4   timed out: no reply within --timeout, or wait's/watch's --timeout ran out\n"
	    "      (without --timeout, wait and watch wait for ever)\n"
	    "  5   unknown source, provider or partition\n"
	    "  75  run: the lock was lost while the command ran\n"
	    "  run otherwise exits with the command's status (128+N if killed by signal N)\n");
}

static void
help_command(const struct command *c)
{
	printf("Usage:\n");
	print_usage_line(stdout, c);
	printf("\n%s\n", c->help);
	if (c->protocol != NULL) {
		printf("Sends %s.\n", c->protocol);
	}
	if (c->opts & BIT(PR_O_TTL)) {
		printf("--ttl S: lease in seconds (1..2592000).\n");
	}
	printf("\nGlobal options: see partreg --help.\n");
}

static void
help_group(const char *group)
{
	printf("Usage:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (commands[i].group != NULL && strcmp(commands[i].group, group) == 0) {
			print_usage_line(stdout, &commands[i]);
		}
	}
	printf("\npartreg %s COMMAND --help describes one.\n", group);
}

/* ---- the command line ---- */

static int
find_opt(const char *name, size_t len)
{
	for (int o = 0; o < PR_O_COUNT_OF_OPTIONS; o++) {
		if (strlen(optdefs[o].name) == len && strncmp(optdefs[o].name, name, len) == 0) {
			return o;
		}
	}
	return -1;
}

/* Is text an integer in [min, max]? Strictly digits: the agent takes no "60.0". */
static int
check_uint(const struct pr_cli *cli, enum pr_cli_opt o, uint64_t min, uint64_t max)
{
	const char *s = cli->opt[o];
	char *end;
	unsigned long long v;

	if (s == NULL) {
		return 0;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max
	    || (s[0] == '0' && s[1] != '\0')) {
		return usage_error(cli, "--%s must be an integer from %llu to %llu, not \"%s\"",
		    optdefs[o].name, (unsigned long long)min, (unsigned long long)max, s);
	}
	return 0;
}

static int
check_options(struct pr_cli *cli)
{
	const uint64_t max_int = UINT64_C(9007199254740991);
	int rc;

	if ((rc = check_uint(cli, PR_O_TTL, 1, 2592000)) != 0
	    || (rc = check_uint(cli, PR_O_FENCE, 1, max_int)) != 0
	    || (rc = check_uint(cli, PR_O_LIMIT, 1, 1000)) != 0
	    || (rc = check_uint(cli, PR_O_SINCE_SEQ, 0, max_int)) != 0
	    || (rc = check_uint(cli, PR_O_COUNT, 1, INT_MAX)) != 0
	    || (rc = check_uint(cli, PR_O_WILL_DELAY, 1, 86400)) != 0) {
		return rc;
	}
	if (cli->opt[PR_O_METADATA] != NULL) {
		struct json_object *m;
		if (pr__cli_json_parse(cli->opt[PR_O_METADATA], strlen(cli->opt[PR_O_METADATA]), &m)
		    != 0) {
			return usage_error(
			    cli, "--metadata must be a JSON object, like '{\"rows\": 12}'");
		}
		rc = json_object_is_type(m, json_type_object);
		json_object_put(m);
		if (!rc) {
			return usage_error(
			    cli, "--metadata must be a JSON object, like '{\"rows\": 12}'");
		}
	}
	if (mqtt_version(cli->opt[PR_O_MQTT_VERSION]) < 0) {
		return usage_error(cli, "--mqtt-version must be 5 or 3.1.1, not \"%s\"",
		    cli->opt[PR_O_MQTT_VERSION]);
	}
	cli->timeout_ms = DEFAULT_TIMEOUT * 1000;
	if (cli->opt[PR_O_TIMEOUT] != NULL) {
		char *end;
		double s = strtod(cli->opt[PR_O_TIMEOUT], &end);
		if (end == cli->opt[PR_O_TIMEOUT] || *end != '\0' || !(s > 0) || s > 2000000) {
			return usage_error(cli,
			    "--timeout must be a number of seconds > 0, not \"%s\"",
			    cli->opt[PR_O_TIMEOUT]);
		}
		cli->timeout_ms = (int)(s * 1000 + 0.5);
		if (cli->timeout_ms < 1) {
			cli->timeout_ms = 1;
		}
		cli->timeout_given = 1;
	}
	return 0;
}

/*
 * --start, --end, --from, --to: RFC 3339 times (a date alone is its
 * midnight, UTC), rewritten in their canonical form into bufs, so that the
 * agent and the person see the same text; start before end.
 */
static int
check_times(struct pr_cli *cli, char bufs[4][PR_TIME_BUFSZ])
{
	static const enum pr_cli_opt opts[4] = { PR_O_START, PR_O_END, PR_O_FROM, PR_O_TO };
	int64_t t[4] = { 0 };

	for (int i = 0; i < 4; i++) {
		const char *v = cli->opt[opts[i]];

		if (v == NULL) {
			continue;
		}
		if (pr_time_parse(v, strlen(v), &t[i]) != 0) {
			return usage_error(cli,
			    "--%s \"%s\" is not a time: use RFC 3339, like 2023-01-01T00:00:00Z, "
			    "or "
			    "a date alone, 2023-01-01 (midnight UTC)",
			    optdefs[opts[i]].name, v);
		}
		pr_time_format(t[i], bufs[i]);
		cli->opt[opts[i]] = bufs[i];
	}
	if (cli->opt[PR_O_START] != NULL && cli->opt[PR_O_END] != NULL && t[0] >= t[1]) {
		return usage_error(cli, "--start %s must be before --end %s", cli->opt[PR_O_START],
		    cli->opt[PR_O_END]);
	}
	if (cli->opt[PR_O_FROM] != NULL && cli->opt[PR_O_TO] != NULL && t[2] >= t[3]) {
		return usage_error(cli, "--from %s must be before --to %s", cli->opt[PR_O_FROM],
		    cli->opt[PR_O_TO]);
	}
	return 0;
}

/* Global options not given as flags come from PARTREG_<NAME>. */
static void
read_environment(struct pr_cli *cli)
{
	for (int o = 0; o < PR_O_HELP; o++) {
		char name[64] = "PARTREG_";
		size_t n = strlen(name);
		const char *v;

		if (cli->opt[o] != NULL) {
			continue;
		}
		for (const char *p = optdefs[o].name; *p != '\0' && n + 1 < sizeof name; p++) {
			name[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		}
		name[n] = '\0';
		v = getenv(name);
		if (v == NULL || *v == '\0') {
			continue;
		}
		if (o == PR_O_JSON
		    && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0)) {
			continue;
		}
		cli->opt[o] = v;
	}
}

static int
load_token(struct pr_cli *cli)
{
	const char *env = getenv("PARTREG_TOKEN");
	const char *file = cli->opt[PR_O_TOKEN_FILE];
	int rc;

	/* A flag wins over the environment; PARTREG_TOKEN over PARTREG_TOKEN_FILE. */
	if (!cli->from_argv[PR_O_TOKEN_FILE] && env != NULL && *env != '\0') {
		if (strlen(env) >= sizeof cli->token) {
			return usage_error(cli, "PARTREG_TOKEN is too long");
		}
		snprintf(cli->token, sizeof cli->token, "%s", env);
		return 0;
	}
	if (file == NULL) {
		return 0; /* the agent answers unauthorized, naming the token it wants */
	}
	rc = read_first_line(file, cli->token, sizeof cli->token);
	if (rc != 0) {
		return usage_error(cli, "cannot read the token file %s: %s", file,
		    rc == PR_EFIELD ? "empty first line, or too long" : strerror(-rc));
	}
	return 0;
}

static const struct command *
find_command(const char *group, const char *verb)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];
		if (c->group == NULL && group == NULL && strcmp(c->verb, verb) == 0) {
			return c;
		}
		if (c->group != NULL && group != NULL && strcmp(c->group, group) == 0
		    && strcmp(c->verb, verb) == 0) {
			return c;
		}
	}
	return NULL;
}

static int
is_group(const char *w)
{
	return strcmp(w, "source") == 0 || strcmp(w, "provider") == 0
	    || strcmp(w, "partition") == 0;
}

int
main(int argc, char **argv)
{
	struct pr_cli cli;
	const char *words[16];
	int nwords = 0, dashdash = 0, rc, first;
	const struct command *cmd = NULL;
	const char *group = NULL;

	memset(&cli, 0, sizeof cli);
	pthread_mutex_init(&cli.warn_mu, NULL);
	/* --json first, so that even a usage error is reported as JSON. */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		cli.json |= strcmp(argv[i], "--json") == 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!dashdash && strcmp(a, "--") == 0) {
			/* After "--", run takes the rest as its command, untouched. */
			if (nwords > 0 && strcmp(words[0], "run") == 0) {
				cli.exec_argv = &argv[i + 1];
				break;
			}
			dashdash = 1;
			continue;
		}
		if (!dashdash && strcmp(a, "-h") == 0) {
			cli.opt[PR_O_HELP] = "1";
			continue;
		}
		if (!dashdash && strncmp(a, "--", 2) == 0) {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			int o = find_opt(a + 2, len);
			if (o < 0) {
				return usage_error(&cli, "unknown option --%.*s", (int)len, a + 2);
			}
			if (!optdefs[o].has_arg) {
				if (eq != NULL) {
					return usage_error(
					    &cli, "--%s takes no value", optdefs[o].name);
				}
				cli.opt[o] = "1";
			} else if (eq != NULL) {
				cli.opt[o] = eq + 1;
			} else if (i + 1 < argc) {
				cli.opt[o] = argv[++i];
			} else {
				return usage_error(&cli, "--%s needs a value", optdefs[o].name);
			}
			cli.from_argv[o] = 1;
			continue;
		}
		if (nwords == (int)(sizeof words / sizeof words[0])) {
			return usage_error(&cli, "too many arguments");
		}
		words[nwords++] = a;
	}
	if (cli.opt[PR_O_VERSION] != NULL && nwords == 0) {
		printf("partreg %s (protocol v%d)\n", PR_VERSION_STRING, PR_PROTOCOL_VERSION);
		return PR_EXIT_OK;
	}
	if (nwords == 0) {
		if (cli.opt[PR_O_HELP] != NULL) {
			help_main();
			return PR_EXIT_OK;
		}
		return usage_error(&cli, "which command?");
	}
	first = 1;
	if (is_group(words[0])) {
		group = words[0];
		if (nwords < 2) {
			if (cli.opt[PR_O_HELP] != NULL) {
				help_group(group);
				return PR_EXIT_OK;
			}
			return usage_error(&cli, "partreg %s: which command?", group);
		}
		first = 2;
	}
	cmd = find_command(group, words[first - 1]);
	if (cmd == NULL) {
		return usage_error(&cli, "unknown command \"%s%s%s\"", group ? group : "",
		    group ? " " : "", words[first - 1]);
	}
	if (cli.opt[PR_O_HELP] != NULL) {
		help_command(cmd);
		return PR_EXIT_OK;
	}
	for (int i = first; i < nwords; i++) {
		cli.args[cli.nargs++] = words[i];
	}
	if (cli.nargs < cmd->nargs || cli.nargs > cmd->nargs_max) {
		fprintf(stderr, "partreg: usage:\n");
		print_usage_line(stderr, cmd);
		return PR_EXIT_USAGE;
	}
	for (int o = PR_O_HELP + 1; o < PR_O_COUNT_OF_OPTIONS; o++) {
		if (cli.opt[o] != NULL && !(cmd->opts & BIT(o))) {
			return usage_error(&cli, "--%s is not an option of \"%s%s%s\"",
			    optdefs[o].name, group ? group : "", group ? " " : "", cmd->verb);
		}
		if (cli.opt[o] == NULL && (cmd->required & BIT(o))) {
			return usage_error(&cli, "\"%s%s%s\" needs --%s", group ? group : "",
			    group ? " " : "", cmd->verb, optdefs[o].name);
		}
	}
	if (strcmp(cmd->verb, "run") == 0 && group == NULL
	    && (cli.exec_argv == NULL || cli.exec_argv[0] == NULL)) {
		return usage_error(&cli, "run needs the command to run after \"--\"");
	}
	read_environment(&cli);
	cli.json = cli.opt[PR_O_JSON] != NULL;
	cli.quiet = cli.opt[PR_O_QUIET] != NULL;
	/* Times are checked here and sent, and shown, in their canonical form. */
	char times[4][PR_TIME_BUFSZ]; /* main's frame outlives every use */
	if ((rc = check_times(&cli, times)) != 0 || (rc = check_options(&cli)) != 0) {
		return rc;
	}
	if ((cmd->flags & NEEDS_TOK) && (rc = load_token(&cli)) != 0) {
		return rc;
	}
	rc = cmd->fn(&cli, cmd);
	fflush(stdout);
	memset(cli.token, 0, sizeof cli.token);
	pr_client_close(cli.client);
	return rc;
}
