/* SPDX-License-Identifier: MIT */
/*
 * The publisher: everything the agent sends to the broker. Replies to
 * commands, the retained state (a summary per source on P/state/<source>,
 * a message per partition on P/state/<source>/partitions/...), events on
 * P/events/<source>, and the agent's own P/agent/status and P/agent/stats.
 * It owns every topic the agent publishes on, the Last Will's included.
 *
 * What always holds: nothing is published about a change before the
 * transaction that made it has committed (the agent commits between
 * pr__publisher_summarize and pr__publisher_changes), and retained state is
 * republished (after every connect, and on agent/resync) in steps between
 * batches, each step from a fresh snapshot published before any later
 * batch, so a republished message never overtakes a newer change.
 *
 * Threads: the agent's worker thread only (it reads the store). Publish
 * failures are logged, not returned, except where a caller must stop:
 * every retained message is published again on the next connect, and a
 * client that gets no reply retries.
 */
#ifndef PR_PUBLISHER_H
#define PR_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "decode.h"
#include "encode.h"
#include "handlers.h"
#include "store.h"
#include "transport.h"

struct pr_publisher;

/*
 * A reply being prepared for one command. All heap fields are the reply's
 * own; release with pr__reply_release.
 */
struct pr_reply {
	char *topic;       /* NULL: no reply wanted */
	char *correlation; /* MQTT 5 Correlation Data */
	size_t correlation_len;
	char request_id[PR_ID_MAX + 1];
	char correlation_id[PR_ID_MAX + 1]; /* MQTT 3.1.1 body field; "" = none */
	char *payload;                      /* the encoded envelope, len bytes */
	size_t len;
};

/*
 * Where the reply to m (decoded, as far as it went, into cmd) goes: the MQTT
 * 5 Response Topic, else the body's reply_to (MQTT 3.1.1); and the ids it
 * echoes. Returns 0 (r->topic may stay NULL: no reply wanted) or
 * PR_EREPLYTOPIC when the topic is outside <prefix>/reply/.
 */
int pr__reply_address(
    struct pr_reply *r, const struct pr_msg *m, const struct pr_cmd *cmd, const char *prefix);
/* Make r's payload the error envelope for err (message NULL or "": the
 * error's own text), echoing r's request_id and correlation_id. */
void pr__reply_error(struct pr_reply *r, int err, const char *message);
/* Free r's fields and zero it. */
void pr__reply_release(struct pr_reply *r);

/*
 * A publisher for the agent of cfg (which must outlive it), identified by id
 * (copied; id->agent_id must outlive it), reading
 * summaries and republished state from st (borrowed). It publishes nothing
 * until pr__publisher_attach gives it the transport. Returns 0 or -ENOMEM.
 */
int pr__publisher_new(const struct pr_config *cfg, struct pr_store *st,
    const struct pr_agent_identity *id, struct pr_publisher **out);
/* NULL is fine. Close the transport first. */
void pr__publisher_free(struct pr_publisher *p);
/* The Last Will: P/agent/status and its "offline" payload, for the transport's
 * options. Borrowed; valid until pr__publisher_free. */
const char *pr__publisher_will_topic(const struct pr_publisher *p);
const char *pr__publisher_will_payload(const struct pr_publisher *p);
/* The transport to publish on (borrowed; must outlive its use here). */
void pr__publisher_attach(struct pr_publisher *p, struct pr_transport *tr);

/* Send r, when it has a topic and a payload. */
void pr__publisher_reply(struct pr_publisher *p, const struct pr_reply *r);
/* Stamp what is published from now on with epoch (a new publisher of the
 * etcd backend, replica.h). */
void pr__publisher_set_epoch(struct pr_publisher *p, uint64_t epoch);
/* The retained P/agent/status: "online" or "offline". */
void pr__publisher_status(struct pr_publisher *p, const char *status);
/* The retained P/agent/stats. */
void pr__publisher_stats(struct pr_publisher *p, const struct pr_agent_stats *st);

/*
 * After a batch: the summaries of the sources ch changed, read inside txn
 * before it commits so they show exactly what commits. Free with
 * pr__summaries_free. NULL without memory (then no summary is published).
 */
struct pr_summaries;
struct pr_summaries *pr__publisher_summarize(
    struct pr_publisher *p, struct pr_txn *txn, const struct pr_changes *ch);
void pr__summaries_free(struct pr_summaries *s);
/* Once the batch has committed: the changed partitions' retained state,
 * then the summaries (taken out of s), then the events, in that order. */
void pr__publisher_changes(
    struct pr_publisher *p, const struct pr_changes *ch, struct pr_summaries *s);

/* Republish all retained state from the start (after a connect). */
void pr__publisher_republish_all(struct pr_publisher *p);
/* Queue the republishing that the agent/resync commands in ch asked for. */
void pr__publisher_resync(struct pr_publisher *p, const struct pr_changes *ch);
/* Is republishing under way? */
int pr__publisher_republishing(const struct pr_publisher *p);
/* One step of it: the next source's summary, or a page of its partitions.
 * Republishing stops when the connection is gone (the next connect starts
 * it again). */
void pr__publisher_republish_step(struct pr_publisher *p);

#endif
