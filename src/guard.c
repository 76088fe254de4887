/* SPDX-License-Identifier: MIT */
/* See guard.h. */
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include <partreg/time.h>

#include "log.h"
#include "strfmt.h"
#include "transport.h"

#define PROBE_CONNECT_MS  5000
#define PROBE_RETAINED_MS 500

int
pr__guard_lock_store(const char *dir, int *fd)
{
	char path[PATH_MAX], pid[32] = "";
	int f;

	*fd = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		int rc = -errno;

		pr_error("agent: mkdir %s: %s", dir, strerror(errno));
		return rc;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/partregd.lock", dir) >= sizeof path) {
		return -ENAMETOOLONG;
	}
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0) {
		int rc = -errno;

		pr_error("agent: cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		ssize_t n = pread(f, pid, sizeof pid - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (rc == -EBUSY) {
			pr_error("agent: another partregd (pid %s) is using the store in %s; one "
			         "agent per "
			         "store",
			    pid[0] != '\0' ? pid : "?", dir);
		} else {
			pr_error("agent: cannot lock %s: %s", path, strerror(-rc));
		}
		close(f);
		return rc;
	}
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, pid, strlen(pid), 0) < 0) {
		pr_warn("agent: cannot write the PID into %s", path);
	}
	*fd = f;
	return 0;
}

static void
get_str(struct json_object *o, const char *key, char *out, size_t cap)
{
	struct json_object *v;

	out[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)) {
		snprintf(out, cap, "%s", json_object_get_string(v));
	}
}

int
pr__guard_parse(const char *payload, size_t len, struct pr_guard_status *out)
{
	struct json_tokener *tok = json_tokener_new_ex(8);
	struct json_object *o = NULL, *v;
	char status[16];

	memset(out, 0, sizeof *out);
	if (tok != NULL && len <= INT_MAX) {
		o = json_tokener_parse_ex(tok, payload, (int)len);
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -1;
	}
	get_str(o, "status", status, sizeof status);
	out->online = strcmp(status, "online") == 0;
	get_str(o, "instance", out->instance, sizeof out->instance);
	get_str(o, "store", out->store, sizeof out->store);
	get_str(o, "agent_id", out->agent_id, sizeof out->agent_id);
	if (json_object_object_get_ex(o, "epoch", &v)) {
		out->epoch = (unsigned long long)json_object_get_uint64(v);
	}
	out->takeover = json_object_object_get_ex(o, "takeover", &v) && json_object_get_boolean(v);
	json_object_put(o);
	return 0;
}

/* The probe's one message, handed over from the receive thread. */
struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pr_msg *m;
};

static void
probe_message(void *arg, struct pr_msg *m)
{
	struct probe *p = arg;

	pthread_mutex_lock(&p->mu);
	if (p->m == NULL) {
		p->m = m;
		m = NULL;
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pr__msg_free(m);
}

int
pr__guard_probe(const struct pr_config *cfg, const struct pr_transport_opts *conn,
    const struct pr_agent_identity *me, char replaced[40])
{
	struct pr_transport_opts to = *conn;
	struct pr_transport *tr = NULL;
	struct probe p = { .m = NULL };
	struct pr_guard_status st;
	char *client_id = pr__strfmt("%s-probe", cfg->client_id);
	char *topic = pr__strfmt("%s/agent/status", cfg->prefix);
	const char *subs[1] = { topic };
	int rc;

	replaced[0] = '\0';
	if (client_id == NULL || topic == NULL) {
		free(client_id);
		free(topic);
		return -ENOMEM;
	}
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	to.client_id = client_id;
	to.clean_start = 1;
	to.subscriptions = subs;
	to.nsubscriptions = 1;
	to.on_message = probe_message;
	to.arg = &p;
	rc = pr__transport_open(&to, &tr);
	if (rc == 0 && pr__transport_wait_connected(tr, PROBE_CONNECT_MS) == 0) {
		/* A retained message comes right after the subscription's SUBACK. */
		int64_t until = pr_time_now() + PROBE_RETAINED_MS * 1000;
		struct timespec ts = { .tv_sec = (time_t)(until / 1000000),
			.tv_nsec = (long)(until % 1000000) * 1000 };

		pthread_mutex_lock(&p.mu);
		while (p.m == NULL && pthread_cond_timedwait(&p.cv, &p.mu, &ts) == 0) { }
		pthread_mutex_unlock(&p.mu);
	} else if (rc == 0) {
		pr_warn(
		    "agent: broker %s not reachable in %d s: cannot check whether another agent "
		    "serves %s; starting anyway",
		    cfg->broker, PROBE_CONNECT_MS / 1000, cfg->prefix);
	}
	pr__transport_close(tr);
	if (rc == 0 && p.m != NULL && p.m->payload != NULL
	    && pr__guard_parse(p.m->payload, p.m->payload_len, &st) == 0 && st.online) {
		if (strcmp(st.store, me->store) == 0
		    || (st.store[0] == '\0' && strcmp(st.agent_id, me->agent_id) == 0)) {
			pr_info("agent: the retained status says online from this store's last run "
			        "(epoch %llu), which ended without saying offline",
			    st.epoch);
		} else if (cfg->takeover) {
			snprintf(replaced, 40, "%s", st.instance);
			pr_warn("agent: taking over %s from agent %s (instance %s, epoch %llu), as "
			        "--takeover asks",
			    cfg->prefix, st.agent_id, st.instance, st.epoch);
		} else {
			pr_error(
			    "agent: another agent is online on prefix %s: %s (instance %s, store "
			    "%s, epoch %llu); one agent per prefix. Stop it, use another --prefix, "
			    "or start with --takeover to replace it",
			    cfg->prefix, st.agent_id, st.instance, st.store, st.epoch);
			rc = -EEXIST;
		}
	}
	pr__msg_free(p.m);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	free(client_id);
	free(topic);
	return rc;
}
