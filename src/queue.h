/* SPDX-License-Identifier: MIT */
/*
 * The command queue: the one place Paho's receive thread hands work to the
 * agent's worker thread. The receive thread pushes messages and raises two
 * flags (connected, stop); the worker takes them in batches. A mutex and two
 * condition variables, nothing else.
 *
 * Bounded: at most max_len messages and max_bytes bytes wait. A push into a
 * full queue waits for the worker to take some, so the receive thread does
 * not return to Paho, which then acknowledges nothing more and reads no
 * more: the broker keeps the rest (it sends at most the Receive Maximum the
 * agent announced without acknowledgements). One exception keeps the two
 * threads from waiting on each other: while the worker waits for the
 * broker's acknowledgement of its own publishes (which the receive thread
 * delivers), a push goes in over the limit (admit() says so).
 */
#ifndef PR_QUEUE_H
#define PR_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* Embedded in the agent; _init/_release. The fields are the queue's own. */
struct pr_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* signalled on push, connect and stop */
	pthread_cond_t space_cv; /* signalled on take and stop */
	struct pr_msg *head, *tail;
	uint64_t len, bytes;
	uint64_t max_len, max_bytes; /* 0 = no limit */
	uint64_t full_waits;         /* pushes that found the queue full */
	uint64_t over_limit;         /* pushes let in over the limit (admit) */
	uint64_t peak_bytes;         /* most bytes waiting since the last take of the peak */
	int connected;               /* a (re)connect not yet taken by the worker */
	int stopping;
};

/* What the worker took: a list of at most max messages (linked through
 * next; the worker owns them, free each with pr__msg_free), and the flags. */
struct pr_queue_batch {
	struct pr_msg *msgs;
	size_t n;
	int connected; /* the connection came (back) since the last take */
	int stop;      /* stop was asked and every message has been taken */
};

/* Counters for the agent's stats. */
struct pr_queue_stats {
	uint64_t len, bytes, full_waits, over_limit, peak_bytes;
};

/* max_len, max_bytes: the limits (0 = none). */
void pr__queue_init(struct pr_queue *q, uint64_t max_len, uint64_t max_bytes);
/* Free the messages still queued. No other thread may use q any more. */
void pr__queue_release(struct pr_queue *q);

/* Bytes a message takes in the queue (its copies and their headers). */
uint64_t pr__queue_msg_bytes(const struct pr_msg *m);

/*
 * Append m (takes ownership) and wake the worker. While the queue is full,
 * wait for room, checking admit(arg) every few milliseconds: when it
 * returns non-zero, m goes in over the limit. Stop ends the wait too. Any
 * thread; admit may be NULL (never).
 */
void pr__queue_push(struct pr_queue *q, struct pr_msg *m, int (*admit)(void *arg), void *arg);
/* Tell the worker the connection came (back). Any thread. */
void pr__queue_connected(struct pr_queue *q);
/* Ask the worker to finish what is queued and stop. Any thread. */
void pr__queue_stop(struct pr_queue *q);
/* The counters now; takes the peak (it restarts from the bytes waiting). */
void pr__queue_stats(struct pr_queue *q, struct pr_queue_stats *out);
/* Messages waiting now. Any thread. */
uint64_t pr__queue_len(struct pr_queue *q);

/*
 * The worker's side. When nothing is queued and no flag is raised, wait up
 * to wait_us microseconds (0: do not wait) for a push or a flag; then take
 * at most max messages and the flags (clearing connected). Waits are on
 * CLOCK_REALTIME, the condition variable's clock.
 */
void pr__queue_take(struct pr_queue *q, size_t max, int64_t wait_us, struct pr_queue_batch *out);

#endif
