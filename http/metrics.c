/* SPDX-License-Identifier: MIT */
/*
 * Metrics (metrics.h). Routes are the few templates of the route modules,
 * so the series are kept in small arrays searched linearly under one
 * mutex; a request costs one lock and a few comparisons. The agent's stats
 * are read from its retained agent/stats at each scrape (one name per
 * stat, as the README's HTTP section lists them).
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static const double bounds[]
    = { .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10 };
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

struct counter {
	const char *route;
	int code;
	uint64_t n;
};

struct histo {
	const char *route;
	uint64_t bucket[NBOUNDS]; /* not cumulative; summed when rendered */
	uint64_t count;
	double sum;
};

struct pr_http_metrics {
	pthread_mutex_t mu;
	struct counter *c;
	size_t nc, capc;
	struct histo *h;
	size_t nh, caph;
};

int
pr_http_metrics_new(struct pr_http_metrics **out)
{
	struct pr_http_metrics *m = calloc(1, sizeof *m);

	*out = m;
	if (m == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_init(&m->mu, NULL);
	return 0;
}

void
pr_http_metrics_free(struct pr_http_metrics *m)
{
	if (m == NULL) {
		return;
	}
	pthread_mutex_destroy(&m->mu);
	free(m->c);
	free(m->h);
	free(m);
}

static int
grow(void **p, size_t n, size_t *cap, size_t sz)
{
	void *a;

	if (n < *cap) {
		return 0;
	}
	a = realloc(*p, (*cap != 0 ? 2 * *cap : 16) * sz);
	if (a == NULL) {
		return -1;
	}
	*p = a;
	*cap = *cap != 0 ? 2 * *cap : 16;
	return 0;
}

void
pr_http_metrics_observe(struct pr_http_metrics *m, const char *route, int code, double seconds)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->nc; i++) {
		if (m->c[i].code == code && strcmp(m->c[i].route, route) == 0) {
			break;
		}
	}
	if (i == m->nc && grow((void **)&m->c, m->nc, &m->capc, sizeof *m->c) == 0) {
		m->c[m->nc++] = (struct counter) { route, code, 0 };
	}
	if (i < m->nc) {
		m->c[i].n++;
	}
	for (i = 0; i < m->nh; i++) {
		if (strcmp(m->h[i].route, route) == 0) {
			break;
		}
	}
	if (i == m->nh && grow((void **)&m->h, m->nh, &m->caph, sizeof *m->h) == 0) {
		memset(&m->h[m->nh], 0, sizeof m->h[0]);
		m->h[m->nh++].route = route;
	}
	if (i < m->nh) {
		struct histo *h = &m->h[i];

		for (size_t b = 0; b < NBOUNDS; b++) {
			if (seconds <= bounds[b]) {
				h->bucket[b]++;
				break;
			}
		}
		h->count++;
		h->sum += seconds;
	}
	pthread_mutex_unlock(&m->mu);
}

/* A label value with \, " and newline escaped. */
static void
label(struct pr_http_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"') {
			pr_http_buf_printf(b, "\\%c", *s);
		} else if (*s == '\n') {
			pr_http_buf_puts(b, "\\n");
		} else {
			pr_http_buf_add(b, s, 1);
		}
	}
}

static void
head(struct pr_http_buf *b, const char *name, const char *type, const char *help)
{
	pr_http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
own(struct pr_http_buf *b, struct pr_http_metrics *m)
{
	pthread_mutex_lock(&m->mu);
	head(b, "partreg_http_requests_total", "counter",
	    "HTTP requests answered, by route and status.");
	for (size_t i = 0; i < m->nc; i++) {
		pr_http_buf_puts(b, "partreg_http_requests_total{route=\"");
		label(b, m->c[i].route);
		pr_http_buf_printf(
		    b, "\",code=\"%d\"} %llu\n", m->c[i].code, (unsigned long long)m->c[i].n);
	}
	head(b, "partreg_http_request_duration_seconds", "histogram",
	    "Time from a request's arrival to its answer, by route.");
	for (size_t i = 0; i < m->nh; i++) {
		const struct histo *h = &m->h[i];
		uint64_t cum = 0;

		for (size_t k = 0; k <= NBOUNDS; k++) {
			pr_http_buf_puts(
			    b, "partreg_http_request_duration_seconds_bucket{route=\"");
			label(b, h->route);
			if (k < NBOUNDS) {
				cum += h->bucket[k];
				pr_http_buf_printf(
				    b, "\",le=\"%g\"} %llu\n", bounds[k], (unsigned long long)cum);
			} else {
				pr_http_buf_printf(
				    b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
			}
		}
		pr_http_buf_puts(b, "partreg_http_request_duration_seconds_sum{route=\"");
		label(b, h->route);
		pr_http_buf_printf(b, "\"} %.9g\n", h->sum);
		pr_http_buf_puts(b, "partreg_http_request_duration_seconds_count{route=\"");
		label(b, h->route);
		pr_http_buf_printf(b, "\"} %llu\n", (unsigned long long)h->count);
	}
	pthread_mutex_unlock(&m->mu);
}

/* A number at path (e.g. "commands", "total") of the stats object, or NAN. */
static double
stat_value(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, a, &v)) {
		return NAN;
	}
	if (b != NULL && !json_object_object_get_ex(v, b, &v)) {
		return NAN;
	}
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
		return NAN;
	}
	return json_object_get_double(v);
}

static void
agent(struct pr_http_buf *b, struct pr_http_app *app)
{
	static const struct {
		const char *name, *type, *a, *b, *help;
		double scale;
	} stats[] = {
		{ "partreg_agent_uptime_seconds", "gauge", "uptime_s", NULL,
		    "Seconds since the agent started.", 1 },
		{ "partreg_agent_commands_total", "counter", "commands", "total",
		    "Commands the agent handled.", 1 },
		{ "partreg_agent_commands_refused_total", "counter", "commands", "refused",
		    "Commands the agent refused.", 1 },
		{ "partreg_agent_commands_replayed_total", "counter", "commands", "replayed",
		    "Commands answered again from the idempotency record.", 1 },
		{ "partreg_agent_batches_total", "counter", "batches", NULL,
		    "Transactions the agent committed.", 1 },
		{ "partreg_agent_leases_expired_total", "counter", "leases_expired", NULL,
		    "Locks whose lease ran out.", 1 },
		{ "partreg_agent_commit_seconds_last", "gauge", "commit_ms", "last",
		    "Duration of the agent's last commit.", 0.001 },
		{ "partreg_agent_queue", "gauge", "queue", NULL,
		    "Commands waiting for the agent's worker.", 1 },
		{ "partreg_agent_store_used_bytes", "gauge", "store", "used_bytes",
		    "Bytes used in the agent's LMDB store.", 1 },
		{ "partreg_agent_store_map_bytes", "gauge", "store", "map_bytes",
		    "Size of the agent's LMDB map.", 1 },
	};
	struct pr_http_agent a;
	char *text = pr_http_mirror_stats_json(app->mirror);
	struct json_object *o = text != NULL ? json_tokener_parse(text) : NULL;

	pr_http_mirror_agent(app->mirror, &a);
	head(b, "partreg_agent_online", "gauge", "1 when the agent's retained status says online.");
	pr_http_buf_printf(b, "partreg_agent_online %d\n", a.online);
	head(b, "partreg_agent_info", "gauge", "The agent serving the prefix (from its status).");
	if (a.known) {
		pr_http_buf_puts(b, "partreg_agent_info{agent_id=\"");
		label(b, a.agent_id);
		pr_http_buf_puts(b, "\",version=\"");
		label(b, a.version);
		pr_http_buf_puts(b, "\"} 1\n");
	}
	for (size_t i = 0; o != NULL && i < sizeof stats / sizeof stats[0]; i++) {
		double v = stat_value(o, stats[i].a, stats[i].b);

		if (isnan(v)) {
			continue;
		}
		head(b, stats[i].name, stats[i].type, stats[i].help);
		pr_http_buf_printf(b, "%s %.17g\n", stats[i].name, v * stats[i].scale);
	}
	json_object_put(o);
	free(text);
}

static void
sources(struct pr_http_buf *b, struct pr_http_app *app)
{
	static const char *const states[] = { "pending", "locked", "ready", "failed", "deleted" };
	struct pr_http_gauge *g;
	size_t n = pr_http_mirror_gauges(app->mirror, &g);
	int64_t now = pr_time_now();

	head(b, "partreg_source_partitions", "gauge",
	    "Partitions by state, from the retained partition states.");
	for (size_t i = 0; i < n; i++) {
		for (int s = 0; s < 5; s++) {
			pr_http_buf_puts(b, "partreg_source_partitions{source=\"");
			label(b, g[i].source);
			pr_http_buf_printf(b, "\",state=\"%s\"} %llu\n", states[s],
			    (unsigned long long)g[i].count[s]);
		}
	}
	head(b, "partreg_source_oldest_lock_age_seconds", "gauge",
	    "Age of the source's oldest lock; 0 when nothing is locked.");
	for (size_t i = 0; i < n; i++) {
		double age = g[i].oldest_lock_since != 0
		    ? (double)(now - g[i].oldest_lock_since) / 1e6
		    : 0;

		pr_http_buf_puts(b, "partreg_source_oldest_lock_age_seconds{source=\"");
		label(b, g[i].source);
		pr_http_buf_printf(b, "\"} %.6f\n", age < 0 ? 0 : age);
	}
	head(b, "partreg_source_seq", "gauge", "The source's seq in its retained summary.");
	for (size_t i = 0; i < n; i++) {
		if (g[i].has_seq) {
			pr_http_buf_puts(b, "partreg_source_seq{source=\"");
			label(b, g[i].source);
			pr_http_buf_printf(b, "\"} %llu\n", (unsigned long long)g[i].seq);
		}
	}
	free(g);
}

char *
pr_http_metrics_render(struct pr_http_app *app)
{
	struct pr_http_buf b = { 0 };

	own(&b, app->metrics);
	head(&b, "partreg_http_broker_connected", "gauge", "1 while connected to the broker.");
	pr_http_buf_printf(&b, "partreg_http_broker_connected %d\n",
	    pr_client_wait_connected(app->client, 0) == 0);
	head(&b, "partreg_http_sse_clients", "gauge", "Open /v1/stream connections.");
	pr_http_buf_printf(
	    &b, "partreg_http_sse_clients %zu\n", pr_http_mirror_nwatchers(app->mirror));
	agent(&b, app);
	sources(&b, app);
	return pr_http_buf_take(&b);
}
