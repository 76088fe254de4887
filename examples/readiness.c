/* SPDX-License-Identifier: MIT */
/*
 * readiness: ask the agent whether SOURCE is ready for [START, END)
 * (command readiness/query) and print its reply.
 *
 *   readiness SOURCE START END      e.g. readiness sales 2024-05-01 2024-05-02
 *
 * Broker: $PARTREG_BROKER, else mqtt://127.0.0.1:1883.
 * Exit status: 0 ready, 1 not ready, 2 error (bad argument, no reply, or
 * the agent refused the command).
 *
 * The reply is a JSON envelope ({"ok": true, "result": {"ready": ...}}). A
 * real program would read it with a JSON library; this one looks for the
 * two keys by hand so that it needs nothing but libpartreg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/partreg.h>

/* Is "key": true in json? The keys looked for occur once in the reply. */
static int
is_true(const char *json, const char *key)
{
	const char *p = strstr(json, key);

	if (p == NULL) {
		return 0;
	}
	p += strlen(key);
	p += strspn(p, " \t\r\n");
	if (*p++ != ':') {
		return 0;
	}
	p += strspn(p, " \t\r\n");
	return strncmp(p, "true", 4) == 0;
}

int
main(int argc, char **argv)
{
	const char *broker = getenv("PARTREG_BROKER");
	struct pr_client_opts opts = { .broker = broker ? broker : "mqtt://127.0.0.1:1883" };
	struct pr_client *c = NULL;
	char start[PR_TIME_BUFSZ], end[PR_TIME_BUFSZ], body[512], *reply = NULL;
	int64_t a, b;
	int rc;

	if (argc != 4 || pr_time_parse(argv[2], strlen(argv[2]), &a) != 0
	    || pr_time_parse(argv[3], strlen(argv[3]), &b) != 0) {
		fprintf(stderr, "usage: readiness SOURCE START END (RFC 3339 times)\n");
		return 2;
	}
	/* Canonical times: the body holds no character that needs escaping
	 * but for the source name, which the agent checks. */
	snprintf(body, sizeof body, "{\"source\":\"%s\",\"start\":\"%s\",\"end\":\"%s\"}", argv[1],
	    pr_time_format(a, start), pr_time_format(b, end));
	if ((rc = pr_client_open(&opts, &c)) == 0
	    && (rc = pr_client_wait_connected(c, 10000)) == 0) {
		rc = pr_client_request(c, "readiness/query", body, 10000, 0, &reply);
	}
	pr_client_close(c);
	if (rc != 0) {
		fprintf(stderr, "readiness: %s\n", pr_strerror(rc));
		return 2;
	}
	printf("%s\n", reply);
	rc = !is_true(reply, "\"ok\"") ? 2 : is_true(reply, "\"ready\"") ? 0 : 1;
	free(reply);
	return rc;
}
