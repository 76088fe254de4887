/* SPDX-License-Identifier: MIT */
/*
 * See queue.h. A singly linked list with a tail pointer: a push is O(1)
 * under the lock and allocates nothing (the transport allocated the
 * message). Rejected: dropping commands when full (a client would wait for
 * a reply that never comes).
 */
#include "queue.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <partreg/time.h>

void
pr__queue_init(struct pr_queue *q, uint64_t max_len, uint64_t max_bytes)
{
	memset(q, 0, sizeof *q);
	q->max_len = max_len;
	q->max_bytes = max_bytes;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
}

void
pr__queue_set_spill(struct pr_queue *q, struct pr_spill *spill)
{
	pthread_mutex_lock(&q->mu);
	q->spill = spill;
	pthread_mutex_unlock(&q->mu);
}

void
pr__queue_release(struct pr_queue *q)
{
	while (q->head != NULL) {
		struct pr_msg *next = q->head->next;

		pr__msg_free(q->head);
		q->head = next;
	}
	q->tail = NULL;
	pr__spill_close(q->spill);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

uint64_t
pr__queue_msg_bytes(const struct pr_msg *m)
{
	/* The copies, and about what malloc adds to each. */
	return sizeof *m + strlen(m->topic) + 1 + m->payload_len + 1
	    + (m->response_topic != NULL ? strlen(m->response_topic) + 1 : 0) + m->correlation_len
	    + 5 * 16;
}

static int
full(const struct pr_queue *q, uint64_t size)
{
	/* An empty queue always takes one message, however large. */
	return q->head != NULL
	    && ((q->max_len != 0 && q->len >= q->max_len)
	        || (q->max_bytes != 0 && q->bytes + size > q->max_bytes));
}

int
pr__queue_push(struct pr_queue *q, struct pr_msg *m, int force)
{
	uint64_t size = pr__queue_msg_bytes(m);

	pthread_mutex_lock(&q->mu);
	if (full(q, size) || pr__spill_count(q->spill) > 0) {
		if (!force) {
			q->full_waits++;
			pthread_mutex_unlock(&q->mu);
			return -EAGAIN;
		}
		if (q->spill != NULL && pr__spill_put(q->spill, m) == 0) {
			q->spilled++;
			pr__msg_free(m);
			pthread_cond_signal(&q->cv);
			pthread_mutex_unlock(&q->mu);
			return 0;
		}
		q->over_limit++;
	}
	m->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = m;
	} else {
		q->head = m;
	}
	q->tail = m;
	q->len++;
	q->bytes += size;
	if (q->bytes > q->peak_bytes) {
		q->peak_bytes = q->bytes;
	}
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void
pr__queue_connected(struct pr_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->connected = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void
pr__queue_kick(struct pr_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->kicked = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void
pr__queue_stop(struct pr_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void
pr__queue_stats(struct pr_queue *q, struct pr_queue_stats *out)
{
	pthread_mutex_lock(&q->mu);
	out->len = q->len;
	out->bytes = q->bytes;
	out->full_waits = q->full_waits;
	out->over_limit = q->over_limit;
	out->peak_bytes = q->peak_bytes;
	out->spilled = q->spilled;
	out->spill_len = pr__spill_count(q->spill);
	out->spill_bytes = pr__spill_bytes(q->spill);
	q->peak_bytes = q->bytes;
	pthread_mutex_unlock(&q->mu);
}

uint64_t
pr__queue_len(struct pr_queue *q)
{
	uint64_t n;

	pthread_mutex_lock(&q->mu);
	n = q->len + pr__spill_count(q->spill);
	pthread_mutex_unlock(&q->mu);
	return n;
}

void
pr__queue_take(struct pr_queue *q, size_t max, int64_t wait_us, struct pr_queue_batch *out)
{
	struct pr_msg **tail = &out->msgs;

	out->msgs = NULL;
	out->n = 0;
	pthread_mutex_lock(&q->mu);
	if (q->head == NULL && pr__spill_count(q->spill) == 0 && !q->connected && !q->stopping
	    && !q->kicked && wait_us > 0) {
		int64_t until = pr_time_now() + wait_us;
		struct timespec ts = { .tv_sec = (time_t)(until / 1000000),
			.tv_nsec = (long)(until % 1000000) * 1000 };

		pthread_cond_timedwait(&q->cv, &q->mu, &ts);
	}
	while (q->head != NULL && out->n < max) {
		*tail = q->head;
		q->head = q->head->next;
		q->bytes -= pr__queue_msg_bytes(*tail);
		tail = &(*tail)->next;
		*tail = NULL;
		out->n++;
		q->len--;
	}
	if (q->head == NULL) {
		q->tail = NULL;
	}
	/* Memory first: what is in the spill file came after it. */
	while (q->head == NULL && out->n < max && pr__spill_count(q->spill) > 0) {
		struct pr_msg *m = pr__spill_get(q->spill);

		if (m == NULL) {
			break;
		}
		*tail = m;
		tail = &m->next;
		*tail = NULL;
		out->n++;
	}
	out->connected = q->connected;
	q->connected = 0;
	out->kicked = q->kicked;
	q->kicked = 0;
	out->stop = q->stopping && q->head == NULL && pr__spill_count(q->spill) == 0 && out->n == 0;
	pthread_mutex_unlock(&q->mu);
}
