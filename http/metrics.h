/* SPDX-License-Identifier: MIT */
/*
 * The front door's own metrics (requests by route and status, latency
 * histogram by route) and /metrics in Prometheus text format 0.0.4, with
 * the broker connection, the agent's retained status and stats and the
 * per-source gauges from the mirror. Any thread.
 */
#ifndef PR_HTTP_METRICS_H
#define PR_HTTP_METRICS_H

#include "server.h"

int pr_http_metrics_new(struct pr_http_metrics **out);
void pr_http_metrics_free(struct pr_http_metrics *m);
/* Count one answered request; route is a static template string. */
void pr_http_metrics_observe(
    struct pr_http_metrics *m, const char *route, int code, double seconds);
/* The exposition text: heap, caller frees; NULL on -ENOMEM. */
char *pr_http_metrics_render(struct pr_http_app *app);

#endif
