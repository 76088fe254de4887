/* SPDX-License-Identifier: MIT */
/*
 * The agent's worker loop (see agent.h for the data path and guarantees):
 *
 *   transport (Paho's thread) → queue → decode → handlers → store (commit)
 *   → publisher
 *
 * Everything that touches the store runs on the worker thread: LMDB allows
 * one write transaction at a time, and a single writer makes the order of
 * commits the order of publishes. Paho's receive thread only queues messages
 * and raises flags (queue.h); while the queue is full it holds the next
 * command back (pr__transport_park), and meanwhile hands the worker's
 * publishes to Paho, whose lock it holds. It also watches P/agent/status
 * for another agent on the prefix (guard.h).
 *
 * Between batches the loop runs the timers: a step of republishing
 * (publisher.h), lease expiry at the next deadline (expiry.h), pruning once
 * a minute, and P/agent/stats every --stats-interval seconds.
 */
#include "agent.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "decode.h"
#include "encode.h"
#include "expiry.h"
#include "guard.h"
#include "handlers.h"
#include "idem.h"
#include "lease.h"
#include "log.h"
#include "options.h"
#include "publisher.h"
#include "queue.h"
#include "replica.h"
#include "store.h"
#include "strfmt.h"
#include "token.h"
#include "transport.h"

#define PRUNE_INTERVAL_US INT64_C(60000000)
/* The etcd backend: runs of a batch against a read index found behind, and
 * how long to wait for the watch to bring a commit back. */
#define CONFLICT_RETRIES 5
#define CATCH_UP_US      INT64_C(2000000)
#define RETRY_FOR_US     INT64_C(4000000) /* and no new run after this long */

struct pr_agent {
	const struct pr_config *cfg;
	struct pr_store *store;
	struct pr_transport *tr;
	struct pr_publisher *pub;
	struct pr_queue queue;
	uint64_t epoch;
	struct pr_handler_opts hopts;
	struct pr_idem idem; /* the store's secret for request_id records */

	char *cmd_filter;   /* P/cmd/+/+ */
	char *cmd_prefix;   /* P/cmd/ */
	char *reply_prefix; /* P/reply/ */
	char *status_topic; /* P/agent/status, watched for other agents */

	int lock_fd;                 /* the store's lock (guard.h) */
	char replaced[40];           /* the instance --takeover replaced, or "" */
	struct pr_agent_identity id; /* in P/agent/status */
	int exit_code;               /* set (atomically) when the agent stops itself */
	uint64_t other_agents;       /* other instances seen online (atomic) */
	uint64_t untrimmed;          /* bytes of commands taken since the last malloc_trim */

	/* session/abort with grace_s, waiting for their deadline or for a sign
	 * of life of the session (a lock or renew under it). In memory: an
	 * agent restart forgets them, and the leases are the backstop. */
	struct deferred_abort {
		char session[PR_ID_MAX + 1];
		char reason[PR_REASON_MAX + 1]; /* "" = the default */
		int64_t since;                  /* deferred at (its latest Last Will) */
		int64_t deadline;
	} * aborts;
	size_t naborts, cap_aborts;

	/* After a reconnect "online" waits until the retained P/agent/status
	 * has been read (or ONLINE_HOLD_US passed): a connection that was lost
	 * because another agent took the client id over must not say online
	 * over the newcomer's status before it learns that it was replaced. */
	uint64_t status_msgs;       /* P/agent/status messages read (atomic) */
	uint64_t status_at_connect; /* status_msgs at the last connect (atomic) */
	int connects;               /* connects the worker has seen */
	int64_t online_due;         /* say online by then; 0 = nothing pending */

	int64_t last_prune;
	struct pr_agent_stats stats; /* counters for P/agent/stats */
	int64_t last_stats;
	int64_t next_deadline; /* earliest lease deadline, 0 = none */

	struct pr_replica *rep;           /* the etcd backend; NULL: the LMDB store alone */
	size_t batch_writes;              /* write commands in the batch being run */
	int publisher;                    /* etcd: this agent was the publisher at the last look */
	int taking_over;                  /* etcd: won the lease, catching up (publishes nothing) */
	int status_stale;                 /* etcd: another agent's status was published (atomic) */
	char prune_cursor[PR_CURSOR_MAX]; /* the source maintenance goes on from */
};

#define ONLINE_HOLD_US 500000

/* ---- callbacks (Paho's receive thread) ---- */

/* Stop the worker: another agent took over (guard.h). */
static void
step_down(struct pr_agent *a)
{
	__atomic_store_n(&a->exit_code, PR_EXIT_TAKEN_OVER, __ATOMIC_RELEASE);
	pr__queue_stop(&a->queue);
}

/*
 * A P/agent/status message (live, or the retained one at a (re)connect): is
 * another agent online on our prefix? Not: our own status, one of our
 * store's (an earlier run: the store's lock says it is gone), or the agent
 * this one took over from.
 */
static void
watch_status(struct pr_agent *a, const struct pr_msg *m)
{
	struct pr_guard_status st;

	__atomic_add_fetch(&a->status_msgs, 1, __ATOMIC_ACQ_REL);
	if (a->rep != NULL) {
		/* Several agents share the status topic; a sibling's Last Will
		 * there is put right by the publisher (pr__agent_run). */
		if (!m->retained && m->payload != NULL
		    && pr__guard_parse(m->payload, m->payload_len, &st) == 0
		    && strcmp(st.instance, a->id.instance) != 0) {
			__atomic_store_n(&a->status_stale, 1, __ATOMIC_RELEASE);
			pr__queue_kick(&a->queue);
		}
		return;
	}
	if (m->payload == NULL || pr__guard_parse(m->payload, m->payload_len, &st) != 0
	    || !st.online || strcmp(st.instance, a->id.instance) == 0
	    || strcmp(st.store, a->id.store) == 0 || strcmp(st.instance, a->replaced) == 0) {
		return;
	}
	__atomic_add_fetch(&a->other_agents, 1, __ATOMIC_RELAXED);
	pr_error("agent: ANOTHER AGENT came online on prefix %s: %s (instance %s, store %s, epoch "
	         "%llu). Two agents on one prefix publish conflicting state; stop one of them",
	    a->cfg->prefix, st.agent_id, st.instance, st.store, st.epoch);
	if (st.takeover) {
		pr_error("agent: it took over (--takeover): this agent (instance %s) stops",
		    a->id.instance);
		step_down(a);
	}
}

static void
on_message(void *arg, struct pr_msg *m)
{
	struct pr_agent *a = arg;

	if (strcmp(m->topic, a->status_topic) == 0) {
		watch_status(a, m);
		pr__msg_free(m);
		return;
	}
	/* Flow control: while the queue is full, hold the command back
	 * (queue.h, pr__transport_park). */
	while (pr__queue_push(&a->queue, m, 0) != 0) {
		/* (a->tr is set once pr__transport_open returns; a backlog may
		 * arrive before.) */
		struct pr_transport *tr = __atomic_load_n(&a->tr, __ATOMIC_ACQUIRE);

		if (tr == NULL || pr__transport_park(tr) == PR_PARK_ADMIT) {
			pr__queue_push(&a->queue, m, 1);
			break;
		}
	}
}

static void
on_taken_over(void *arg)
{
	struct pr_agent *a = arg;

	pr_error("agent: another partregd connected with client id %s and took over the session; "
	         "this agent (instance %s) stops",
	    a->cfg->client_id, a->id.instance);
	step_down(a);
}

static void
on_connected(void *arg)
{
	struct pr_agent *a = arg;

	/* Before the subscriptions are made: the retained status comes after. */
	__atomic_store_n(&a->status_at_connect, __atomic_load_n(&a->status_msgs, __ATOMIC_ACQUIRE),
	    __ATOMIC_RELEASE);
	pr__queue_connected(&a->queue);
}

/* ---- one command ---- */

/* ---- deferred session aborts ---- */

static void
forget_abort(struct pr_agent *a, const char *session)
{
	for (size_t i = 0; i < a->naborts; i++) {
		if (strcmp(a->aborts[i].session, session) == 0) {
			pr_info("agent: session %.8s... is alive: its deferred abort is dropped",
			    session);
			a->aborts[i] = a->aborts[--a->naborts];
			return;
		}
	}
}

/* Remember (or push back) the abort of cmd's session until now + grace_s.
 * Returns the deadline, or 0 without memory (then abort at once). */
static int64_t
defer_abort(struct pr_agent *a, const struct pr_cmd *cmd, int64_t now)
{
	struct deferred_abort *d = NULL;

	for (size_t i = 0; i < a->naborts && d == NULL; i++) {
		if (strcmp(a->aborts[i].session, cmd->session) == 0) {
			d = &a->aborts[i];
		}
	}
	if (d == NULL) {
		if (a->naborts == a->cap_aborts) {
			size_t cap = a->cap_aborts ? a->cap_aborts * 2 : 8;
			struct deferred_abort *p = realloc(a->aborts, cap * sizeof *p);

			if (p == NULL) {
				return 0;
			}
			a->aborts = p;
			a->cap_aborts = cap;
		}
		d = &a->aborts[a->naborts++];
	}
	snprintf(d->session, sizeof d->session, "%s", cmd->session);
	snprintf(d->reason, sizeof d->reason, "%s", cmd->has_reason ? cmd->reason : "");
	d->since = now;
	d->deadline = now + cmd->grace_s * INT64_C(1000000);
	return d->deadline;
}

/* A lock or renew succeeded: its session, if any, is alive. */
static void
session_alive(struct pr_agent *a, const struct pr_cmd *cmd, const struct pr_changes *ch)
{
	if (a->naborts == 0
	    || (cmd->kind != PR_CMD_PARTITION_LOCK && cmd->kind != PR_CMD_PARTITION_RENEW)) {
		return;
	}
	for (size_t i = 0; i < ch->nparts; i++) {
		const struct pr_partition *p = &ch->parts[i];

		if (p->state == PR_LOCKED && p->session[0] != '\0'
		    && strcmp(p->source, cmd->source) == 0
		    && strcmp(p->provider, cmd->provider) == 0 && p->range.start == cmd->range.start
		    && p->range.end == cmd->range.end) {
			forget_abort(a, p->session);
		}
	}
}

/* The outcome of one command, for the stats. */
enum outcome { DONE, REFUSED, REPLAYED };

static enum outcome
handle_one(struct pr_agent *a, struct pr_txn *batch, const struct pr_msg *m, int64_t now,
    struct pr_changes *ch, struct pr_reply *r, int *batch_err)
{
	struct pr_cmd *cmd = calloc(1, sizeof *cmd);
	struct pr_decode_error derr = { 0 };
	struct pr_json *result = NULL;
	struct pr_txn *txn = NULL;
	enum pr_cmd_kind kind;
	const char *name = m->topic + strlen(a->cmd_prefix);
	char msg[256] = "";
	int64_t deadline;
	int known, rc;

	if (cmd == NULL) {
		pr_error("agent: out of memory; command on %s dropped", m->topic);
		return REFUSED;
	}
	known = pr__cmd_lookup(name, strlen(name), &kind) == 0;
	if (m->too_big) {
		rc = PR_ETOOBIG;
		snprintf(msg, sizeof msg, "payload of %zu bytes exceeds the limit of %zu bytes",
		    m->original_len, a->cfg->max_payload);
	} else {
		/* An unknown command is still decoded, as agent/resync (every field
		 * optional), to find its MQTT 3.1.1 reply address. */
		rc = pr__cmd_decode(
		    known ? kind : PR_CMD_AGENT_RESYNC, m->payload, m->payload_len, cmd, &derr);
		snprintf(msg, sizeof msg, "%s", derr.message);
	}
	if (pr__reply_address(r, m, cmd, a->cfg->prefix) != 0) {
		pr_warn("agent: command on %s refused: reply topic outside %s/reply/", m->topic,
		    a->cfg->prefix);
		free(r->topic);
		r->topic = NULL;
		free(cmd);
		return REFUSED;
	}
	if (!known) {
		rc = PR_ECOMMAND;
		snprintf(msg, sizeof msg,
		    "no command '%.120s'; commands are published to %s<noun>/<verb>", name,
		    a->cmd_prefix);
	}
	if (rc != 0) {
		pr_info("agent: %s refused: %s: %s", m->topic, pr_err_code(rc), msg);
		pr__reply_error(r, rc, msg);
		free(cmd);
		return REFUSED;
	}
	if (*batch_err != 0) {
		/* The batch already failed: it is answered as a whole. */
		free(cmd);
		return REFUSED;
	}
	a->batch_writes += pr__cmd_is_write(kind);
	if (pr__cmd_is_write(kind) && cmd->has_request_id) {
		int replay = pr__idem_lookup(&a->idem, batch, cmd, r);

		if (replay != 0) {
			free(cmd);
			return replay == 2 ? REPLAYED : REFUSED;
		}
	}
	if (kind == PR_CMD_SESSION_ABORT && cmd->has_grace_s
	    && (deadline = defer_abort(a, cmd, now)) != 0) {
		/* A Last Will that may have come only because the broker
		 * restarted: give the session grace_s to show it is alive. */
		result = pr__json_session_abort(cmd->session, NULL, deadline);
		rc = result != NULL ? 0 : -ENOMEM;
		pr_info("agent: session/abort of %.8s... deferred by %lld s", cmd->session,
		    (long long)cmd->grace_s);
	} else if ((rc = pr__txn_begin_nested(batch, &txn)) == 0) {
		rc = pr__handle(txn, cmd, now, &a->hopts, ch, &result, msg);
		if (rc == 0) {
			rc = pr__txn_commit(txn);
		} else {
			pr__txn_abort(txn);
		}
		if (rc == 0) {
			session_alive(a, cmd, ch);
		}
	}
	if (rc != 0) {
		pr__json_free(result);
		result = NULL;
		pr_info("agent: %s %s: %s", pr__cmd_name(kind), pr_err_code(rc),
		    msg[0] != '\0' ? msg : pr_strerror(rc));
		pr__reply_error(r, rc, msg);
	} else {
		r->payload = pr__reply_encode(0, NULL, cmd->has_request_id ? cmd->request_id : NULL,
		    cmd->has_correlation_id ? cmd->correlation_id : NULL, result, &r->len);
		pr_debug("agent: %s ok", pr__cmd_name(kind));
	}
	/* Remember the first reply of a write, unless the failure was the
	 * agent's own (5xx): then a retry should really be retried. */
	if (pr__cmd_is_write(kind) && cmd->has_request_id && r->payload != NULL
	    && pr_err_status(rc) < 500) {
		int err = pr__idem_remember(&a->idem, batch, cmd, r, now);

		if (err != 0) {
			/* The batch's transaction is not to be trusted any more
			 * (LMDB refuses everything after a map-full): the whole
			 * batch is answered with this error. */
			pr_error("agent: cannot record request_id: %s", pr_strerror(err));
			*batch_err = err;
		}
	}
	if (rc == PR_EMAPFULL) {
		*batch_err = rc;
	}
	free(cmd);
	return rc == 0 ? DONE : REFUSED;
}

/* ---- batches ---- */

/* Does this agent publish retained state? Always alone; with etcd, while
 * it holds the publisher's lease (replica.h) and is not still catching up
 * after winning it: what it applies then would go out under its previous
 * epoch, before the new one is set. */
static int
publishing(const struct pr_agent *a)
{
	return a->rep == NULL || (!a->taking_over && pr__replica_is_publisher(a->rep));
}

/* A new lease may run out before the one the worker waits for. */
static void
note_deadlines(struct pr_agent *a, const struct pr_changes *ch)
{
	for (size_t i = 0; i < ch->nparts; i++) {
		int64_t d = ch->parts[i].state == PR_LOCKED ? ch->parts[i].expires_at : 0;

		if (d != 0 && (a->next_deadline == 0 || d < a->next_deadline)) {
			a->next_deadline = d;
		}
	}
}

/* A batch of ncommands made durable in us microseconds (LMDB's commit, or
 * with etcd its transaction), for P/agent/stats and the debug log. */
static void
count_batch(struct pr_agent *a, int64_t us, size_t ncommands)
{
	a->stats.batches++;
	a->stats.commit_ms_last = (double)us / 1000.0;
	if (a->stats.commit_ms_last > a->stats.commit_ms_max) {
		a->stats.commit_ms_max = a->stats.commit_ms_last;
	}
	pr_debug("agent: batch of %zu command%s committed in %.3f ms", ncommands,
	    ncommands == 1 ? "" : "s", a->stats.commit_ms_last);
}

/*
 * Commit txn, and when this agent publishes (publishing()), publish what ch
 * changed: the summaries of its sources are read inside txn, so they show
 * exactly what commits, and the partitions, summaries and events go out
 * only once it has committed. Consumes txn; *commit_us (may be NULL) gets
 * the commit's time. Returns the commit's result; nothing is published
 * when it failed.
 */
static int
commit_publishing(
    struct pr_agent *a, struct pr_txn *txn, const struct pr_changes *ch, int64_t *commit_us)
{
	int pub = publishing(a);
	struct pr_summaries *summaries = pub ? pr__publisher_summarize(a->pub, txn, ch) : NULL;
	int64_t t0 = pr_time_now();
	int rc;

	/* The durability point: nothing below is published before this. */
	rc = pr__txn_commit(txn);
	if (commit_us != NULL) {
		*commit_us = pr_time_now() - t0;
	}
	/* (Asked again: a publisher paused in between may have been deposed.) */
	if (rc == 0 && pub && publishing(a)) {
		pr__publisher_changes(a->pub, ch, summaries);
	}
	pr__summaries_free(summaries);
	return rc;
}

/* The LMDB store's batch: commit_publishing, counted. */
static int
commit_and_publish(
    struct pr_agent *a, struct pr_txn *txn, const struct pr_changes *ch, size_t ncommands)
{
	int64_t us = 0;
	int rc = commit_publishing(a, txn, ch, &us);

	count_batch(a, us, ncommands);
	return rc;
}

/* ---- the etcd backend (replica.h) ---- */

/* Another agent granted or renewed a lock under a session whose abort this
 * agent holds back (the session's commands go to any agent): the session
 * is alive. Only a change made after the abort was deferred counts. */
static void
sessions_alive(struct pr_agent *a, const struct pr_changes *ch)
{
	for (size_t i = 0; i < ch->nparts && a->naborts > 0; i++) {
		const struct pr_partition *p = &ch->parts[i];

		for (size_t j = 0; p->state == PR_LOCKED && p->session[0] != '\0' && j < a->naborts;
		     j++) {
			if (strcmp(a->aborts[j].session, p->session) == 0
			    && p->updated_at >= a->aborts[j].since) {
				forget_abort(a, p->session);
				break;
			}
		}
	}
}

/* agent/resync: the publisher, wherever it is, republishes. */
static void
request_resyncs(struct pr_agent *a, const struct pr_changes *ch)
{
	if (ch->resync_all) {
		(void)pr__replica_request_resync(a->rep, NULL);
		return;
	}
	for (size_t i = 0; i < ch->nresync; i++) {
		(void)pr__replica_request_resync(a->rep, ch->resync[i]);
	}
}

/* Apply what the watch brought to the read index, and publish it when
 * this agent is the publisher. */
static void
apply_changes(struct pr_agent *a)
{
	struct pr_changes ch;
	struct pr_txn *txn = NULL;
	int any = 0, rc;

	pr__changes_init(&ch);
	rc = pr__txn_begin(a->store, 1, &txn);
	if (rc == 0) {
		rc = pr__replica_apply(a->rep, txn, &ch, &any);
	}
	if (rc == 0 && any) {
		rc = commit_publishing(a, txn, &ch, NULL);
		if (rc == 0 && publishing(a)) {
			pr__publisher_resync(a->pub, &ch);
		}
	} else {
		pr__txn_abort(txn);
	}
	if (rc == 0) {
		pr__replica_applied_commit(a->rep);
		note_deadlines(a, &ch);
		sessions_alive(a, &ch);
	} else {
		pr__replica_apply_failed(a->rep);
		pr_error(
		    "agent: applying etcd's changes to the read index failed: %s", pr_strerror(rc));
	}
	pr__changes_release(&ch);
}

/* Wait (at most wait_us) for the watch to bring revision rev, and apply. */
static void
catch_up(struct pr_agent *a, int64_t rev, int64_t wait_us)
{
	if (rev > pr__replica_applied(a->rep) && pr__replica_wait(a->rep, rev, wait_us) != 0) {
		pr_warn(
		    "agent: the etcd watch did not bring revision %lld in time", (long long)rev);
	}
	apply_changes(a);
}

/*
 * Make a write transaction durable: commit it (LMDB), or send what it
 * captured to etcd and abort it (the read index learns it from the watch;
 * with etcd, txn must capture). Returns 0, 1 when etcd refused it because
 * the read index was behind (*rev: catch up to it, then run it again), or
 * an error (msg, when not NULL, says why). Consumes txn.
 */
static int
make_durable(struct pr_agent *a, struct pr_txn *txn, const struct pr_changes *ch, size_t ncommands,
    int64_t *rev, char msg[256])
{
	char buf[256] = "";
	int64_t t0;
	int rc;

	*rev = 0;
	if (a->rep == NULL) {
		rc = commit_and_publish(a, txn, ch, ncommands);
		if (rc == 0) {
			note_deadlines(a, ch);
		}
		return rc;
	}
	t0 = pr_time_now();
	rc = pr__replica_commit(a->rep, pr__txn_captured(txn), rev, msg != NULL ? msg : buf);
	if (rc == 0) {
		count_batch(a, pr_time_now() - t0, ncommands);
	}
	if (rc == 0 && *rev > 0
	    && pr__replica_adopt(a->rep, txn, pr__txn_captured(txn), *rev) == 0) {
		/* Nothing came between: the batch's own writes are the read
		 * index's next state, without waiting for the watch. */
		int err = commit_publishing(a, txn, ch, NULL);

		if (err == 0) {
			pr__replica_applied_commit(a->rep);
			note_deadlines(a, ch);
		} else {
			pr__replica_apply_failed(a->rep);
		}
		txn = NULL;
		*rev = 0; /* nothing to catch up with */
	}
	pr__txn_abort(txn);
	if (rc == 0) {
		request_resyncs(a, ch);
	}
	if (rc == 0 && *rev > 0) {
		catch_up(a, *rev, CATCH_UP_US);
	}
	return rc;
}

/*
 * etcd refused the attempt-th run of a batch begun at started (µs) because
 * the read index was behind, at revision rev: catch up, and say whether to
 * run it again (0) or give up (PR_ESTORE, msg says why): after
 * CONFLICT_RETRIES runs or RETRY_FOR_US, or when the watch cannot bring rev.
 */
static int
run_again(struct pr_agent *a, int attempt, int64_t started, int64_t rev, char msg[256])
{
	if (attempt >= CONFLICT_RETRIES || pr_time_now() - started > RETRY_FOR_US) {
		snprintf(msg, 256, "the commands kept meeting other agents' changes; try again");
		return PR_ESTORE;
	}
	pr_debug("agent: the read index was behind etcd (revision %lld): the batch runs again",
	    (long long)rev);
	catch_up(a, rev, CATCH_UP_US);
	if (pr__replica_applied(a->rep) < rev) {
		snprintf(msg, 256,
		    "this agent's read index cannot catch up with etcd (revision %lld): its watch "
		    "is down",
		    (long long)rev);
		return PR_ESTORE;
	}
	return 0;
}

/*
 * Run fn in a write transaction and make it durable (make_durable), running
 * it again while etcd finds the read index behind (run_again). 0 or the
 * error.
 */
static int
run_write(struct pr_agent *a,
    int (*fn)(
        struct pr_agent *a, struct pr_txn *txn, struct pr_changes *ch, int64_t now, void *arg),
    void *arg, int64_t now)
{
	char msg[256];

	for (int attempt = 0;; attempt++) {
		struct pr_changes ch;
		struct pr_txn *txn = NULL;
		int64_t rev = 0;
		int rc;

		pr__changes_init(&ch);
		rc = pr__txn_begin(a->store, 1, &txn);
		if (rc == 0 && a->rep != NULL) {
			rc = pr__txn_capture(txn);
		}
		if (rc == 0) {
			rc = fn(a, txn, &ch, now, arg);
		}
		if (rc == 0) {
			rc = make_durable(a, txn, &ch, 1, &rev, NULL);
		} else {
			pr__txn_abort(txn);
		}
		pr__changes_release(&ch);
		if (rc != 1) {
			return rc; /* 2: too large for one etcd transaction */
		}
		if ((rc = run_again(a, attempt, now, rev, msg)) != 0) {
			pr_warn("agent: %s", msg);
			return rc;
		}
	}
}

/*
 * The etcd backend's batch: run every command against the read index in a
 * capturing transaction, then send what they wrote to etcd as one
 * transaction; when etcd finds the read index behind, catch up and run the
 * batch again. Replies go once etcd has it and the read index has caught
 * up (so the publisher publishes before it replies).
 */
static void
process_batch_etcd(struct pr_agent *a, struct pr_msg *msgs, size_t n)
{
	struct pr_reply *replies = calloc(n, sizeof *replies);
	size_t done = 0, refused = 0, replayed = 0, retained = 0;
	int64_t now = pr_time_now(), started = now;
	char msg[256] = "";
	int rc = 0;

	if (replies == NULL) {
		pr_error("agent: out of memory; %zu commands dropped", n);
		return;
	}
	for (int attempt = 0;; attempt++) {
		struct pr_changes ch;
		struct pr_txn *batch = NULL;
		int batch_err = 0;
		int64_t rev = 0;
		size_t i = 0;

		done = refused = replayed = retained = 0;
		a->batch_writes = 0;
		pr__changes_init(&ch);
		rc = pr__txn_begin(a->store, 1, &batch);
		if (rc == 0 && (rc = pr__txn_capture(batch)) != 0) {
			pr__txn_abort(batch);
		}
		if (rc == 0) {
			for (struct pr_msg *m = msgs; m != NULL; m = m->next, i++) {
				enum outcome o;

				if (m->retained) {
					if (attempt == 0) {
						pr_warn("agent: retained command on %s ignored; "
						        "clear it "
						        "with an empty retained message",
						    m->topic);
					}
					retained++;
					continue;
				}
				o = handle_one(a, batch, m, now, &ch, &replies[i], &batch_err);
				done++;
				refused += o == REFUSED;
				replayed += o == REPLAYED;
			}
			if (batch_err != 0) {
				pr__txn_abort(batch);
				rc = batch_err;
			} else if (a->batch_writes == 0) {
				pr__txn_abort(batch); /* reads only: nothing to make durable */
				request_resyncs(a, &ch);
			} else {
				rc = make_durable(a, batch, &ch, n, &rev, msg);
			}
		}
		pr__changes_release(&ch);
		if (rc == 2 && n > 1) {
			/* More than one etcd transaction holds: in halves. */
			struct pr_msg *half = msgs, *rest;

			for (size_t k = 1; k < n / 2; k++) {
				half = half->next;
			}
			rest = half->next;
			half->next = NULL;
			for (i = 0; i < n; i++) {
				pr__reply_release(&replies[i]);
			}
			free(replies);
			process_batch_etcd(a, msgs, n / 2);
			process_batch_etcd(a, rest, n - n / 2);
			half->next = rest;
			return;
		}
		if (rc != 1) {
			rc = rc == 2 ? PR_ESTORE : rc;
			break;
		}
		if ((rc = run_again(a, attempt, started, rev, msg)) != 0) {
			break; /* the replies keep their addresses for the error */
		}
		for (i = 0; i < n; i++) {
			pr__reply_release(&replies[i]);
		}
		now = pr_time_now();
	}
	a->stats.commands += done;
	a->stats.refused += refused;
	a->stats.replayed += replayed;
	a->stats.retained_dropped += retained;
	if (rc != 0) {
		pr_error("agent: batch of %zu commands not applied: %s", n,
		    msg[0] != '\0' ? msg : pr_strerror(rc));
		for (size_t i = 0; i < n; i++) {
			pr__reply_error(&replies[i], rc, msg);
		}
	}
	for (size_t i = 0; i < n; i++) {
		pr__publisher_reply(a->pub, &replies[i]);
		pr__reply_release(&replies[i]);
	}
	free(replies);
}

static void
process_batch(struct pr_agent *a, struct pr_msg *msgs, size_t n)
{
	struct pr_reply *replies = calloc(n, sizeof *replies);
	struct pr_changes ch;
	struct pr_txn *batch = NULL;
	int64_t now = pr_time_now();
	size_t i = 0;
	int rc;

	if (a->rep != NULL) {
		free(replies);
		process_batch_etcd(a, msgs, n);
		return;
	}
	if (replies == NULL) {
		pr_error("agent: out of memory; %zu commands dropped", n);
		return;
	}
	pr__changes_init(&ch);
	rc = pr__txn_begin(a->store, 1, &batch);
	if (rc == 0) {
		int batch_err = 0;

		for (struct pr_msg *m = msgs; m != NULL; m = m->next, i++) {
			enum outcome o;

			if (m->retained) {
				/* Left on the broker by someone, and sent to the
				 * subscription anew after a restart (a broker without
				 * Retain Handling, or MQTT 3.1.1): it was run when it was
				 * published, so it is not run again, nor answered. */
				pr_warn(
				    "agent: retained command on %s ignored; clear it with an empty "
				    "retained message",
				    m->topic);
				a->stats.retained_dropped++;
				continue;
			}
			o = handle_one(a, batch, m, now, &ch, &replies[i], &batch_err);

			a->stats.commands++;
			a->stats.refused += o == REFUSED;
			a->stats.replayed += o == REPLAYED;
		}
		if (batch_err != 0) {
			pr__txn_abort(batch);
			rc = batch_err;
		} else {
			rc = commit_and_publish(a, batch, &ch, n);
		}
	}
	if (rc != 0) {
		/* All or nothing: every command of the batch gets the error. */
		pr_error("agent: batch of %zu commands not applied: %s", n, pr_strerror(rc));
		for (i = 0; i < n; i++) {
			pr__reply_error(&replies[i], rc, NULL);
		}
	}
	for (i = 0; i < n; i++) {
		pr__publisher_reply(a->pub, &replies[i]);
		pr__reply_release(&replies[i]);
	}
	if (rc == 0) {
		pr__publisher_resync(a->pub, &ch);
		note_deadlines(a, &ch);
	}
	free(replies);
	pr__changes_release(&ch);
}

/* ---- timers ---- */

#define EXPIRE_BATCH 256

/*
 * Fail the locks whose lease ran out, in batches sharing one commit, and
 * set a->next_deadline to the next lease's deadline (0 = none). Also the
 * first thing after start: a lease that ran out while the agent was down
 * expires here.
 */
struct expire_ctx {
	size_t max, ndue, nexpired;
};

static int
expire_fn(struct pr_agent *a, struct pr_txn *txn, struct pr_changes *ch, int64_t now, void *arg)
{
	struct expire_ctx *c = arg;

	(void)a;
	return pr__expiry_run(txn, now, c->max, ch, &c->ndue, &c->nexpired);
}

static void
expire_due(struct pr_agent *a, int64_t now)
{
	/* With etcd, a batch must fit one etcd transaction (a partition,
	 * an event and the guards each). */
	struct expire_ctx c
	    = { a->rep != NULL ? a->cfg->etcd_max_txn_ops / 6 : EXPIRE_BATCH, 0, 0 };
	int rc;

	if (a->next_deadline == 0 || a->next_deadline > now || !publishing(a)) {
		return;
	}
	while ((rc = run_write(a, expire_fn, &c, now)) == 2 && c.max > 1) {
		c.max /= 2; /* more than one etcd transaction holds */
	}
	if (rc == 0) {
		a->stats.leases_expired += c.nexpired;
	} else {
		pr_error("agent: expiring leases failed: %s", pr_strerror(rc));
	}
	/* The next deadline; one still due (more than a batch) comes round at once. */
	a->next_deadline = rc == 0 ? pr__expiry_next(a->store) : now + 1000000;
}

static int
abort_fn(struct pr_agent *a, struct pr_txn *txn, struct pr_changes *ch, int64_t now, void *arg)
{
	struct pr_json *result = NULL;
	char msg[256] = "";
	int rc = pr__handle(txn, arg, now, &a->hopts, ch, &result, msg);

	pr__json_free(result);
	return rc;
}

/* Run the deferred aborts whose grace ran out, each in its own commit. */
static void
abort_due(struct pr_agent *a, int64_t now)
{
	for (size_t i = 0; i < a->naborts;) {
		struct deferred_abort d = a->aborts[i];
		struct pr_cmd *cmd;
		int rc;

		if (d.deadline > now) {
			i++;
			continue;
		}
		a->aborts[i] = a->aborts[--a->naborts];
		if ((cmd = calloc(1, sizeof *cmd)) == NULL) {
			continue;
		}
		cmd->kind = PR_CMD_SESSION_ABORT;
		snprintf(cmd->session, sizeof cmd->session, "%s", d.session);
		cmd->has_reason = d.reason[0] != '\0';
		snprintf(cmd->reason, sizeof cmd->reason, "%s", d.reason);
		rc = run_write(a, abort_fn, cmd, now);
		pr_info("agent: session %.8s... showed no sign of life in its grace: aborted (%s)",
		    d.session, rc == 0 ? "ok" : pr_strerror(rc));
		if (rc != 0 && rc != 2 && a->naborts < a->cap_aborts) {
			/* Not applied (the store unavailable): again in a second. */
			d.deadline = now + 1000000;
			a->aborts[a->naborts++] = d;
		}
		free(cmd);
	}
}

/* The earliest deadline of a deferred abort, 0 = none. */
static int64_t
next_abort(const struct pr_agent *a)
{
	int64_t next = 0;

	for (size_t i = 0; i < a->naborts; i++) {
		if (next == 0 || a->aborts[i].deadline < next) {
			next = a->aborts[i].deadline;
		}
	}
	return next;
}

/* The retained P/agent/stats message, every --stats-interval seconds. */
static void
publish_stats(struct pr_agent *a, int64_t now)
{
	struct pr_store_info info = { 0 };

	if (a->cfg->stats_interval_s == 0
	    || now - a->last_stats < (int64_t)a->cfg->stats_interval_s * INT64_C(1000000)
	    || !pr__transport_is_connected(a->tr) || !publishing(a)) {
		return;
	}
	a->last_stats = now;
	a->stats.at = now;
	{
		struct pr_queue_stats q;

		pr__queue_stats(&a->queue, &q);
		a->stats.queue = q.len;
		a->stats.queue_bytes = q.bytes;
		a->stats.queue_peak_bytes = q.peak_bytes;
		a->stats.queue_full_waits = q.full_waits;
		a->stats.queue_over_limit = q.over_limit;
		a->stats.queue_spilled = q.spilled;
		a->stats.spill_len = q.spill_len;
		a->stats.spill_bytes = q.spill_bytes;
	}
	a->stats.other_agents = __atomic_load_n(&a->other_agents, __ATOMIC_RELAXED);
	if (pr__store_info(a->store, &info) == 0) {
		a->stats.store_used_bytes = info.used_bytes;
		a->stats.store_map_bytes = info.map_size;
		a->stats.store_readers = info.readers;
	}
	pr__publisher_stats(a->pub, &a->stats);
	a->stats.commit_ms_max = 0; /* the max since the last message */
}

struct prune_ctx {
	struct pr_txn *txn;
	int64_t before;
	size_t keep, max, removed, ids, tombs;
	int limited;
	char next[PR_CURSOR_MAX]; /* the source to go on from; "" = the first */
};

static int
prune_source_cb(void *arg, const struct pr_source *src)
{
	struct prune_ctx *c = arg;
	size_t n = 0;
	int rc = pr__store_event_prune(c->txn, src, c->before, c->keep, c->max, &n);

	c->removed += n;
	/* With etcd, what one transaction can hold (the rest next time). */
	return rc != 0 ? rc : c->limited && c->removed >= c->max;
}

static int
prune_fn(struct pr_agent *a, struct pr_txn *txn, struct pr_changes *ch, int64_t now, void *arg)
{
	const int64_t us = INT64_C(1000000);
	struct prune_ctx *c = arg;
	char next[PR_CURSOR_MAX];
	int rc;

	(void)ch;
	c->txn = txn;
	c->removed = c->ids = c->tombs = 0;
	rc = pr__store_idem_prune(
	    txn, now - (int64_t)a->cfg->idempotency_ttl_s * us, c->max, &c->ids);
	if (rc == 0) {
		/* From where the last round stopped (with etcd, a round holds
		 * only what one transaction may). */
		rc = pr__store_source_list(txn, a->prune_cursor, 0, prune_source_cb, c, next);
		if (rc == 1) {
			rc = 0;
			memcpy(c->next, next, sizeof next);
		} else {
			c->next[0] = '\0';
		}
	}
	if (rc == 0) {
		rc = pr__store_tombstone_prune(
		    txn, now - (int64_t)a->cfg->tombstone_expiry_s * us, c->max, &c->tombs);
	}
	return rc;
}

/*
 * Once a minute, in one transaction: forget request ids older than
 * --idempotency-ttl, events past --history-max-age or --history-max-events,
 * and deleted partitions whose tombstones have expired. With etcd, the
 * publisher does it, a little at a time (one etcd transaction).
 */
static void
maintenance(struct pr_agent *a, int64_t now)
{
	struct prune_ctx c = { .keep = a->cfg->history_max_events,
		.max = a->rep != NULL ? a->cfg->etcd_max_txn_ops / 8 : 10000,
		.limited = a->rep != NULL };
	int rc;

	if (now - a->last_prune < PRUNE_INTERVAL_US || !publishing(a)) {
		return;
	}
	a->last_prune = now;
	c.before = now - (int64_t)a->cfg->history_max_age_s * INT64_C(1000000);
	while ((rc = run_write(a, prune_fn, &c, now)) == 2 && c.max > 1) {
		c.max /= 2; /* more than one etcd transaction holds */
	}
	if (rc != 0) {
		pr_warn("agent: maintenance failed: %s", pr_strerror(rc));
		return;
	}
	if (c.ids + c.removed + c.tombs > 0) {
		pr_debug("agent: pruned %zu request ids, %zu events, %zu tombstones", c.ids,
		    c.removed, c.tombs);
	}
	memcpy(a->prune_cursor, c.next, sizeof c.next);
	if (c.limited && (c.ids >= c.max || c.removed >= c.max || c.tombs >= c.max)) {
		/* More to prune than a round held: the next round in a second. */
		a->last_prune = now - PRUNE_INTERVAL_US + 1000000;
	}
}

/*
 * After a burst, hand the memory of its commands back to the system: glibc
 * keeps freed heap for reuse, and a flood of large commands would leave the
 * agent at its peak size for good. Once the queue is empty and more than
 * TRIM_AFTER bytes went through since the last time.
 */
#define TRIM_AFTER (UINT64_C(32) << 20)

static void
give_back_memory(struct pr_agent *a)
{
	if (a->untrimmed < TRIM_AFTER || pr__queue_len(&a->queue) != 0) {
		return;
	}
	a->untrimmed = 0;
	malloc_trim(0);
}

/*
 * The etcd backend's part of the loop: apply what the watch brought, keep
 * the publisher's lease or campaign for it, and when this agent has just
 * become the publisher, catch up and republish everything under its epoch.
 */
static void
etcd_step(struct pr_agent *a, int kicked)
{
	uint64_t epoch = 0;
	int64_t rev = 0;
	int was = a->publisher;

	if (kicked || pr__replica_pending(a->rep)) {
		apply_changes(a);
	}
	if (pr__replica_campaign(a->rep, &epoch, &rev) == 1) {
		/* Apply without publishing: republish_all below sends it all,
		 * under the new epoch. */
		a->taking_over = 1;
		catch_up(a, rev, CATCH_UP_US);
		a->taking_over = 0;
		if (pr__replica_applied(a->rep) < rev) {
			/* Republishing an index that is behind would send older
			 * state under a newer epoch: let another publish. */
			pr_warn(
			    "agent: won the publisher's lease but the read index cannot catch up "
			    "(revision %lld): resigning",
			    (long long)rev);
			pr__replica_resign(a->rep);
			return;
		}
		pr__publisher_set_epoch(a->pub, epoch);
		a->epoch = a->stats.epoch = epoch; /* agent/stats and the log say it too */
		a->next_deadline = 1;              /* leases that ran out while nobody published */
		if (pr__transport_is_connected(a->tr) && a->online_due == 0) {
			pr__publisher_status(a->pub, "online");
			pr__publisher_republish_all(a->pub);
		}
		pr_info("agent: publisher of prefix %s (epoch %llu)", a->cfg->prefix,
		    (unsigned long long)epoch);
	}
	a->publisher = publishing(a);
	if (was && !a->publisher) {
		pr_warn("agent: no longer the publisher of prefix %s", a->cfg->prefix);
	}
	if (__atomic_exchange_n(&a->status_stale, 0, __ATOMIC_ACQ_REL) && a->publisher
	    && pr__transport_is_connected(a->tr) && a->online_due == 0) {
		pr__publisher_status(a->pub, "online");
	}
}

int
pr__agent_run(struct pr_agent *a)
{
	for (;;) {
		struct pr_queue_batch b;
		int64_t wait = 0;

		/* Idle: sleep until work arrives, the next lease deadline, or at
		 * most a second (maintenance). Offline, expiry waits for the
		 * connect (which wakes the queue). */
		if (!pr__publisher_republishing(a->pub)) {
			/* (Only the publisher expires leases.) */
			int64_t next = pr__transport_is_connected(a->tr) && publishing(a)
			    ? a->next_deadline
			    : 0;
			int64_t abort = pr__transport_is_connected(a->tr) ? next_abort(a) : 0;

			if (abort != 0 && (next == 0 || abort < next)) {
				next = abort;
			}

			wait = pr__lease_wait_us(next, pr_time_now(), 1000000);
		}
		if (a->rep != NULL) {
			/* The publisher's lease wants keeping alive, or a campaign. */
			int64_t left = pr__replica_due_in(a->rep);

			wait = left < wait ? left : wait;
		}
		if (a->online_due != 0) {
			int64_t left = a->online_due - pr_time_now();

			wait = left < 0 ? 0 : left < wait ? left : wait;
		}
		pr__queue_take(&a->queue, a->cfg->batch_max, wait, &b);
		if (b.n > 0) {
			pr__transport_unpark(a->tr); /* room again */
		}
		if (b.stop) {
			break;
		}
		if (b.connected) {
			/* The first connect followed the guard's look at the status. */
			a->online_due = a->connects++ == 0 ? 1 : pr_time_now() + ONLINE_HOLD_US;
		}
		if (a->online_due != 0
		    && (a->online_due <= pr_time_now()
		        || __atomic_load_n(&a->status_msgs, __ATOMIC_ACQUIRE)
		            != __atomic_load_n(&a->status_at_connect, __ATOMIC_ACQUIRE))) {
			a->online_due = 0;
			if (publishing(a)) {
				pr__publisher_status(a->pub, "online");
				pr__publisher_republish_all(a->pub);
				pr_info("agent: online (epoch %llu); republishing retained state",
				    (unsigned long long)a->epoch);
			} else {
				pr_info(
				    "agent: online; another agent publishes the retained state");
			}
		}
		if (a->rep != NULL) {
			etcd_step(a, b.kicked);
		}
		if (b.n > 0) {
			process_batch(a, b.msgs, b.n);
			while (b.msgs != NULL) {
				struct pr_msg *next = b.msgs->next;

				a->untrimmed += pr__queue_msg_bytes(b.msgs);
				pr__msg_free(b.msgs);
				b.msgs = next;
			}
			give_back_memory(a);
		} else if (pr__publisher_republishing(a->pub) && pr__transport_is_connected(a->tr)
		    && publishing(a)) {
			pr__publisher_republish_step(a->pub);
		}
		/* Expiry waits for the broker, so that its events reach subscribers
		 * (a lease past its deadline is refused meanwhile: never ready). */
		if (pr__transport_is_connected(a->tr)) {
			expire_due(a, pr_time_now());
			abort_due(a, pr_time_now());
		}
		maintenance(a, pr_time_now());
		publish_stats(a, pr_time_now());
	}
	/* Taken over: the retained status is the new agent's now. With etcd,
	 * only the publisher says offline, and hands over at once. */
	if (pr__transport_is_connected(a->tr) && pr__agent_exit_code(a) == 0 && publishing(a)) {
		pr__publisher_status(a->pub, "offline");
		pr__transport_flush(a->tr, 2000);
	}
	if (a->rep != NULL) {
		pr__replica_resign(a->rep);
	}
	pr_info("agent: stopped");
	return 0;
}

int
pr__agent_exit_code(struct pr_agent *a)
{
	return __atomic_load_n(&a->exit_code, __ATOMIC_ACQUIRE);
}

void
pr__agent_stop(struct pr_agent *a)
{
	pr__queue_stop(&a->queue);
}

/* The queue's overflow file, <data-dir>/partregd.spill (queue.h). */
static int
open_spill(struct pr_agent *a)
{
	struct pr_spill *sp;
	char *path = pr__strfmt("%s/partregd.spill", a->cfg->data_dir);
	int rc = path != NULL ? pr__spill_open(path, &sp) : -ENOMEM;

	if (rc == 0) {
		pr__queue_set_spill(&a->queue, sp);
	} else {
		pr_error("agent: cannot create %s: %s", path != NULL ? path : "the spill file",
		    strerror(-rc));
	}
	free(path);
	return rc;
}

static void
wake_worker(void *arg)
{
	struct pr_agent *a = arg;

	pr__queue_kick(&a->queue);
}

/* The etcd backend: the shared secret and an epoch from etcd, the read
 * index brought up to date (replica.h). */
static int
open_replica(struct pr_agent *a)
{
	const struct pr_config *cfg = a->cfg;
	struct pr_replica_opts ro = { 0 };
	char *password = NULL;
	int rc = pr__token_new(a->id.instance);

	if (rc != 0) {
		return rc;
	}
	if (cfg->etcd_password_file != NULL
	    && (password = pr__options_read_secret(cfg->etcd_password_file)) == NULL) {
		pr_error("agent: cannot read --etcd-password-file %s", cfg->etcd_password_file);
		return PR_EFIELD;
	}
	ro.endpoints = cfg->etcd;
	ro.prefix = cfg->etcd_prefix;
	ro.ca_file = cfg->etcd_cafile;
	ro.cert_file = cfg->etcd_cert;
	ro.key_file = cfg->etcd_key;
	ro.user = cfg->etcd_user;
	ro.password = password;
	ro.instance = a->id.instance;
	ro.publisher_ttl_s = cfg->publisher_ttl_s;
	ro.max_txn_ops = cfg->etcd_max_txn_ops;
	ro.wake = wake_worker;
	ro.wake_arg = a;
	rc = pr__replica_open(&ro, a->store, &a->rep);
	if (password != NULL) {
		memset(password, 0, strlen(password));
		free(password);
	}
	if (rc != 0) {
		pr_error("agent: cannot use etcd at %s: %s", cfg->etcd, pr_strerror(rc));
		return rc;
	}
	a->epoch = pr__replica_epoch(a->rep);
	pr_info("agent: store in etcd at %s, prefix %s; read index in %s", cfg->etcd,
	    cfg->etcd_prefix, cfg->data_dir);
	return 0;
}

/* Who this agent is: a new instance id, and the store's id (a digest of its
 * secret, so every run on one store shows the same). */
static int
identify(struct pr_agent *a)
{
	static const char label[] = "partreg store id";
	uint8_t buf[sizeof label + PR_DIGEST_LEN], d[PR_DIGEST_LEN];
	char hex[2 * PR_DIGEST_LEN + 1];
	int rc = a->id.instance[0] != '\0' ? 0 : pr__token_new(a->id.instance);

	memcpy(buf, label, sizeof label);
	memcpy(buf + sizeof label, a->idem.secret, PR_DIGEST_LEN);
	if (rc == 0) {
		rc = pr__token_digest((const char *)buf, sizeof buf, d);
	}
	if (rc != 0) {
		return rc;
	}
	pr__digest_hex(d, hex);
	snprintf(a->id.store, sizeof a->id.store, "%.32s", hex);
	a->id.agent_id = a->cfg->client_id;
	a->id.epoch = a->epoch;
	a->id.takeover = a->cfg->takeover;
	return 0;
}

int
pr__agent_open(const struct pr_config *cfg, struct pr_agent **out)
{
	struct pr_store_opts sopts
	    = { .map_size = cfg->map_size_mb * 1024 * 1024, .nosync = cfg->etcd != NULL };
	struct pr_transport_opts topts = { 0 };
	struct pr_agent *a = calloc(1, sizeof *a);
	struct pr_transport *tr = NULL;
	char *password = NULL;
	const char *subs[2];
	int rc;

	*out = NULL;
	if (a == NULL) {
		return -ENOMEM;
	}
	a->cfg = cfg;
	a->lock_fd = -1;
	a->hopts.list_default = 100;
	a->hopts.blockers_max = cfg->summary_max;
	a->hopts.lease.default_s = cfg->lease_default_s;
	a->hopts.lease.max_s = cfg->lease_max_s;
	/* Look for leases that ran out while the agent was down at once. */
	a->next_deadline = 1;
	pr__queue_init(&a->queue, cfg->queue_max, (uint64_t)cfg->queue_max_mb << 20);
	/* With etcd, the agents of a prefix share the commands (an MQTT 5
	 * shared subscription: each command goes to one of them). */
	a->cmd_filter = cfg->etcd != NULL
	    ? pr__strfmt("$share/%s/%s/cmd/+/+", cfg->share_group, cfg->prefix)
	    : pr__strfmt("%s/cmd/+/+", cfg->prefix);
	a->cmd_prefix = pr__strfmt("%s/cmd/", cfg->prefix);
	a->reply_prefix = pr__strfmt("%s/reply/", cfg->prefix);
	a->status_topic = pr__strfmt("%s/agent/status", cfg->prefix);
	a->idem.reply_prefix = a->reply_prefix;
	if (a->cmd_filter == NULL || a->cmd_prefix == NULL || a->reply_prefix == NULL
	    || a->status_topic == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	/* One agent per store: before the store is touched at all. */
	rc = pr__guard_lock_store(cfg->data_dir, &a->lock_fd);
	if (rc != 0) {
		goto fail;
	}
	rc = open_spill(a);
	if (rc != 0) {
		goto fail;
	}
	rc = pr__store_open(cfg->data_dir, &sopts, &a->store);
	if (rc != 0) {
		pr_error("agent: cannot open the store in %s: %s", cfg->data_dir, pr_strerror(rc));
		goto fail;
	}
	if (cfg->etcd != NULL) {
		rc = open_replica(a);
	} else if ((rc = pr__store_next_epoch(a->store, &a->epoch)) != 0) {
		pr_error("agent: cannot raise the epoch: %s", pr_strerror(rc));
	}
	if (rc != 0) {
		goto fail;
	}
	rc = pr__store_secret(a->store, a->idem.secret);
	if (rc != 0) {
		pr_error("agent: cannot read the store's secret: %s", pr_strerror(rc));
		goto fail;
	}
	rc = identify(a);
	if (rc != 0) {
		goto fail;
	}
	a->stats.agent_id = cfg->client_id;
	a->stats.epoch = a->epoch;
	a->stats.started_at = pr_time_now();
	a->stats.queue_max = cfg->queue_max;
	a->stats.queue_max_bytes = (uint64_t)cfg->queue_max_mb << 20;
	rc = pr__publisher_new(cfg, a->store, &a->id, &a->pub);
	if (rc != 0) {
		goto fail;
	}
	if (cfg->password_file != NULL) {
		password = pr__options_read_secret(cfg->password_file);
		if (password == NULL) {
			pr_error("agent: cannot read --password-file %s", cfg->password_file);
			rc = PR_EFIELD;
			goto fail;
		}
	}
	topts.uri = cfg->broker;
	topts.username = cfg->username;
	topts.password = password;
	topts.cafile = cfg->cafile;
	topts.certfile = cfg->cert;
	topts.keyfile = cfg->key;
	topts.mqtt_version = cfg->mqtt_version;
	/* One agent per prefix: before connecting under our client id. */
	rc = pr__guard_probe(cfg, &topts, &a->id, a->replaced);
	if (rc != 0) {
		goto fail;
	}
	subs[0] = a->cmd_filter;
	subs[1] = a->status_topic;
	topts.nodelay_all = 1;
	topts.log = pr__log_line;
	topts.client_id = cfg->client_id;
	/* With etcd, a stopped agent's session must not hold its share of
	 * the commands: they go to the other agents (clients resend what was
	 * in flight to it, under the same request_id). */
	topts.clean_start = cfg->etcd != NULL;
	topts.session_expiry_s = cfg->etcd != NULL ? 0 : cfg->session_expiry_s;
	topts.max_payload = cfg->max_payload;
	topts.will_topic = pr__publisher_will_topic(a->pub);
	topts.will_payload = pr__publisher_will_payload(a->pub);
	topts.will_retained = 1;
	topts.subscriptions = subs;
	topts.nsubscriptions = 2;
	/* A retained command must not run at every start; the retained status
	 * is read at every (re)connect: an agent that took the connection
	 * away while this one was off it shows there. */
	topts.no_retained = a->cmd_filter;
	topts.receive_max = (int)cfg->receive_max;
	topts.max_inflight = 65535; /* as many as the broker lets us */
	topts.on_message = on_message;
	topts.on_connected = on_connected;
	topts.on_taken_over = on_taken_over;
	topts.arg = a;
	rc = pr__transport_open(&topts, &tr);
	__atomic_store_n(&a->tr, tr, __ATOMIC_RELEASE);
	if (rc != 0) {
		goto fail;
	}
	if (password != NULL) {
		memset(password, 0, strlen(password));
		free(password);
		password = NULL;
	}
	pr__publisher_attach(a->pub, a->tr);
	pr_info("agent: partregd %s, store %s, store id %s, instance %s, epoch %llu, broker %s, "
	        "prefix %s",
	    PR_VERSION_STRING, cfg->data_dir, a->id.store, a->id.instance,
	    (unsigned long long)a->epoch, cfg->broker, cfg->prefix);
	*out = a;
	return 0;
fail:
	if (password != NULL) {
		memset(password, 0, strlen(password));
		free(password);
	}
	pr__agent_close(a);
	return rc;
}

void
pr__agent_close(struct pr_agent *a)
{
	if (a == NULL) {
		return;
	}
	/* The transport first: it stops Paho's thread, which pushes to the
	 * queue and reads the Last Will the publisher owns. */
	pr__transport_close(a->tr);
	pr__replica_close(a->rep); /* its watch kicks the queue */
	pr__queue_release(&a->queue);
	pr__publisher_free(a->pub);
	pr__store_close(a->store);
	if (a->lock_fd >= 0) {
		close(a->lock_fd); /* the store's lock goes with it */
	}
	free(a->cmd_filter);
	free(a->cmd_prefix);
	free(a->reply_prefix);
	free(a->status_topic);
	free(a->aborts);
	free(a);
}
