/* SPDX-License-Identifier: MIT */
/*
 * Commands to the agent (forward.h). pr_client_request resends with the
 * same request_id until a reply comes, so a command lost with a connection
 * is applied once; the front door only bounds the wait.
 */
#include "forward.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* How long after its start a write waits for the agent's retained status. */
#define STARTUP_US INT64_C(2000000)

int
pr_http_forward_check(struct pr_http_app *app, struct pr_http_fail *f)
{
	struct pr_http_agent a;
	/* Just started: the connection, and the retained status that comes with
	 * the subscription a moment later, may be on their way. Wait for them
	 * (until STARTUP_US after the start) rather than refuse. */
	int64_t left = app->started_at + STARTUP_US - pr_time_now();

	if (pr_client_wait_connected(app->client, left > 0 ? (int)(left / 1000) : 0) != 0) {
		f->status = 503;
		f->code = "broker_unavailable";
		snprintf(f->message, sizeof f->message,
		    "the broker is unreachable (partreg-http is reconnecting); try again");
		return -1;
	}
	pr_http_mirror_agent(app->mirror, &a);
	for (int i = 0; !a.known && i < 50 && pr_time_now() - app->started_at < STARTUP_US; i++) {
		nanosleep(&(struct timespec) { 0, 20000000 }, NULL);
		pr_http_mirror_agent(app->mirror, &a);
	}
	if (!a.known) {
		f->status = 503;
		f->code = "agent_offline";
		snprintf(f->message, sizeof f->message,
		    "agent offline since unknown: no agent status is retained on %s/agent/status",
		    pr_client_prefix(app->client));
		return -1;
	}
	if (!a.online) {
		f->status = 503;
		f->code = "agent_offline";
		pr_http_agent_offline_text(&a, f->message, sizeof f->message);
		return -1;
	}
	return 0;
}

int
pr_http_forward(struct pr_http_app *app, const char *command, struct json_object *body,
    struct json_object **reply, char **text, int *status, struct pr_http_fail *f)
{
	struct json_object *st;
	char *r = NULL;
	int rc;

	*reply = NULL;
	*text = NULL;
	if (pr_http_forward_check(app, f) != 0) {
		return -1;
	}
	rc = pr_client_request(app->client, command,
	    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
	    (int)app->cfg->request_timeout_s * 1000, 0, &r);
	if (rc == -ETIMEDOUT) {
		f->status = 504;
		f->code = "agent_timeout";
		snprintf(f->message, sizeof f->message, "no reply from the agent within %u s",
		    (unsigned)app->cfg->request_timeout_s);
		return -1;
	}
	if (rc == PR_EFIELD) {
		f->status = 400;
		f->code = "invalid_field";
		snprintf(f->message, sizeof f->message,
		    "field 'request_id' must be 1-%d printable ASCII characters", PR_ID_MAX);
		return -1;
	}
	if (rc != 0) {
		pr_warn("http: %s not sent: %s", command, pr_strerror(rc));
		f->status = rc == -ENOTCONN ? 503 : 500;
		f->code = rc == -ENOTCONN ? "broker_unavailable" : "internal";
		snprintf(
		    f->message, sizeof f->message, "%s not sent: %s", command, pr_strerror(rc));
		return -1;
	}
	*reply = json_tokener_parse(r);
	if (*reply == NULL || !json_object_is_type(*reply, json_type_object)
	    || !json_object_object_get_ex(*reply, "status", &st)
	    || !json_object_is_type(st, json_type_int)) {
		json_object_put(*reply);
		*reply = NULL;
		free(r);
		f->status = 502;
		f->code = "internal";
		snprintf(f->message, sizeof f->message, "the agent's reply is not an envelope");
		return -1;
	}
	*status = (int)json_object_get_int(st);
	if (*status < 100 || *status > 599) {
		*status = 502;
	}
	*text = r;
	return 0;
}
