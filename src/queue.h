/* SPDX-License-Identifier: MIT */
/*
 * The command queue: the one place Paho's receive thread hands work to the
 * agent's worker thread. The receive thread pushes messages and raises two
 * flags (connected, stop); the worker takes them in batches. A mutex and a
 * condition variable, nothing else.
 *
 * Bounded: at most max_len messages and max_bytes bytes wait in memory. A
 * push into a full queue is refused unless forced; the receive thread then
 * holds the message back (pr__transport_park) until the worker takes some,
 * so Paho reads and acknowledges nothing more and the broker keeps the rest
 * (it sends at most the Receive Maximum the agent announced without
 * acknowledgements). When holding back would deadlock (the agent must read
 * the broker's acknowledgements of its own publishes, which come on the
 * same connection as the commands), the push is forced: it goes to the
 * spill file (spill.h), and until that is read back every push waits
 * behind it, so the order is kept. Without a spill file a forced push goes
 * in over the limit.
 */
#ifndef PR_QUEUE_H
#define PR_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "spill.h"
#include "transport.h"

/* Embedded in the agent; _init/_release. The fields are the queue's own. */
struct pr_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled on push, connect and stop */
	struct pr_msg *head, *tail;
	uint64_t len, bytes;
	uint64_t max_len, max_bytes; /* 0 = no limit */
	uint64_t full_waits;         /* pushes refused: the queue was full */
	uint64_t over_limit;         /* pushes forced into memory over the limit */
	struct pr_spill *spill;      /* NULL = none */
	uint64_t spilled;            /* pushes forced into the spill file */
	uint64_t peak_bytes;         /* most bytes waiting since the last pr__queue_stats */
	int connected;               /* a (re)connect not yet taken by the worker */
	int kicked;                  /* pr__queue_kick not yet taken */
	int stopping;
};

/* What the worker took: a list of at most max messages (linked through
 * next; the worker owns them, free each with pr__msg_free), and the flags. */
struct pr_queue_batch {
	struct pr_msg *msgs;
	size_t n;
	int connected; /* the connection came (back) since the last take */
	int kicked;    /* pr__queue_kick was called since the last take */
	int stop;      /* stop was asked and every message has been taken */
};

/* Counters for the agent's stats. */
struct pr_queue_stats {
	uint64_t len, bytes, full_waits, over_limit, peak_bytes;
	uint64_t spilled, spill_len, spill_bytes;
};

/* max_len, max_bytes: the limits (0 = none). */
void pr__queue_init(struct pr_queue *q, uint64_t max_len, uint64_t max_bytes);
/* Give the queue its overflow file (taken), before any push. */
void pr__queue_set_spill(struct pr_queue *q, struct pr_spill *spill);
/* Free the messages still queued, and the spill file. No other thread may
 * use q any more. */
void pr__queue_release(struct pr_queue *q);

/* Bytes a message takes in the queue (its copies and their headers). */
uint64_t pr__queue_msg_bytes(const struct pr_msg *m);

/*
 * Append m (takes ownership) and wake the worker: 0. When the queue is full
 * (an empty queue takes one message of any size) or messages wait in the
 * spill file, and force is 0: -EAGAIN, and m stays the caller's. Forced,
 * m goes to the spill file (or over the limit). Any thread.
 */
int pr__queue_push(struct pr_queue *q, struct pr_msg *m, int force);
/* Tell the worker the connection came (back). Any thread. */
void pr__queue_connected(struct pr_queue *q);
/* Wake the worker for other work than commands (the etcd watch). Any thread. */
void pr__queue_kick(struct pr_queue *q);
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
