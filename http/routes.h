/* SPDX-License-Identifier: MIT */
/*
 * The route modules. Each answers the paths it owns: it returns 1 having
 * filled resp (status, body, route template), or 0 when the path is not
 * its own (the server then tries the next, and answers 404 last).
 *
 *   seed.c  the original service's routes (../shared/design/seed-http-api.md)
 *   v1.c    the JSON API under /v1/, one route per MQTT command, and reads
 *           from the mirror
 *   ops.c   /, /healthz, /readyz, /metrics, the stream and the embedded files
 */
#ifndef PR_HTTP_ROUTES_H
#define PR_HTTP_ROUTES_H

#include "forward.h"
#include "server.h"

int pr_http_seed_route(struct pr_http_req *req, struct pr_http_resp *resp);
int pr_http_v1_route(struct pr_http_req *req, struct pr_http_resp *resp);
int pr_http_ops_route(struct pr_http_req *req, struct pr_http_resp *resp);

/* The string member key of o, NULL when absent or not a string. */
const char *pr_http_str(struct json_object *o, const char *key);

/* Readiness of source over want: from the mirror, else from the agent.
 * On 0, *result is the readiness result object (caller puts it); on 1, the
 * agent refused and *reply is its envelope (caller puts it) with *status;
 * on -1, f says why nobody answered. */
int pr_http_readiness(struct pr_http_app *app, const char *source, struct pr_range want,
    const char *request_id, struct json_object **result, struct json_object **reply, int *status,
    struct pr_http_fail *f);

#endif
