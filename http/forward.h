/* SPDX-License-Identifier: MIT */
/*
 * Commands sent to the agent: the one place the front door waits on MQTT.
 * Before sending it checks what the mirror knows, so a command never waits
 * out its timeout for an agent known to be away: broker disconnected ->
 * 503 broker_unavailable; retained agent status offline or absent -> 503
 * agent_offline "agent offline since <at>"; no reply in --request-timeout
 * -> 504 agent_timeout.
 */
#ifndef PR_HTTP_FORWARD_H
#define PR_HTTP_FORWARD_H

#include <json-c/json.h>

#include "server.h"

/* Why the front door answered instead of the agent. */
struct pr_http_fail {
	int status;
	const char *code; /* static */
	char message[256];
};

/*
 * Send command with body (a JSON object; borrowed) and wait for the reply.
 * On 0, *reply is the envelope parsed (caller puts it), *text its JSON text
 * verbatim (heap, caller frees) and *status its "status". On -1, f says why.
 */
int pr_http_forward(struct pr_http_app *app, const char *command, struct json_object *body,
    struct json_object **reply, char **text, int *status, struct pr_http_fail *f);

/* Is a write possible now? 0, or -1 with f filled (broker, agent). */
int pr_http_forward_check(struct pr_http_app *app, struct pr_http_fail *f);

#endif
