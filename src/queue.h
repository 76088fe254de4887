/* SPDX-License-Identifier: MIT */
/*
 * The command queue: the one place Paho's receive thread hands work to the
 * agent's worker thread. The receive thread pushes messages and raises two
 * flags (connected, stop); the worker takes them in batches. A mutex and a
 * condition variable, nothing else: the receive thread never waits here
 * for the worker, so Paho's acknowledgements are never held up by a commit.
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
	pthread_cond_t cv; /* signalled on push, connect and stop */
	struct pr_msg *head, *tail;
	uint64_t len;
	int connected; /* a (re)connect not yet taken by the worker */
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

void pr__queue_init(struct pr_queue *q);
/* Free the messages still queued. No other thread may use q any more. */
void pr__queue_release(struct pr_queue *q);

/* Append m (takes ownership) and wake the worker. Any thread. */
void pr__queue_push(struct pr_queue *q, struct pr_msg *m);
/* Tell the worker the connection came (back). Any thread. */
void pr__queue_connected(struct pr_queue *q);
/* Ask the worker to finish what is queued and stop. Any thread. */
void pr__queue_stop(struct pr_queue *q);
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
