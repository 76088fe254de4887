/* SPDX-License-Identifier: MIT */
/*
 * One agent per store and one per prefix.
 *
 * Store: an exclusive flock(2) on <data-dir>/partregd.lock, held for the
 * process's life (the kernel drops it when the process dies, kill -9
 * included). It holds the owner's PID, for the message.
 *
 * Prefix: every agent's retained P/agent/status carries its instance (random
 * per start) and its store's id. Before the agent connects with its client
 * id (which would push an agent already connected with it off the broker),
 * a probe connection under another client id reads the retained status:
 * "online" from another store means another agent serves this prefix, and
 * the agent refuses to start unless told to take over. "online" from its
 * own store is its own last run, which died without saying "offline" (its
 * Last Will has not fired yet): the store's lock proves that run is gone.
 * While running, the agent watches the status topic, and reads the retained
 * one at every (re)connect: another instance online (from another store) is
 * reported loudly; one that came online with --takeover makes this agent
 * stop. That is also how a takeover under the same client id shows: the
 * broker hands the newcomer the session, and this agent, reconnecting,
 * finds the newcomer's status.
 */
#ifndef PR_GUARD_H
#define PR_GUARD_H

#include "config.h"
#include "encode.h"
#include "transport.h"

/* Exit codes of partregd for the cases here. */
#define PR_EXIT_STORE_BUSY  3 /* another process holds the store */
#define PR_EXIT_PREFIX_BUSY 4 /* another agent is online on the prefix */
#define PR_EXIT_TAKEN_OVER  5 /* another agent took over while running */

/* Lock dir (created 0700 if missing). Returns 0 and the lock's fd (keep it
 * open), or -EBUSY (another process holds it; logged with its PID) or
 * -errno. */
int pr__guard_lock_store(const char *dir, int *fd);

/* A status message as the guard reads it. */
struct pr_guard_status {
	int online;
	int takeover;
	char instance[40], store[40], agent_id[256];
	unsigned long long epoch;
};
/* Parse a P/agent/status payload. 0, or -1 when it is not one. */
int pr__guard_parse(const char *payload, size_t len, struct pr_guard_status *out);

/*
 * Before connecting: read P/agent/status through a probe connection
 * (client id "<client id>-probe", clean, no will), up to a few seconds.
 * Returns 0 (nothing there, offline, our own store's last run, or
 * cfg->takeover: then replaced gets the instance taken over, else ""),
 * -EEXIST (another agent is online: refused, logged), or 0 with a warning
 * when the broker cannot be reached in time (the running check still
 * reports a second agent later). conn: the agent's own connection options
 * (broker, credentials, TLS, MQTT version) with nothing else set yet; the
 * probe adds its client id, subscription and callback to a copy.
 */
int pr__guard_probe(const struct pr_config *cfg, const struct pr_transport_opts *conn,
    const struct pr_agent_identity *me, char replaced[40]);

#endif
