/* SPDX-License-Identifier: MIT */
/*
 * See queue.h. A singly linked list with a tail pointer: a push is O(1)
 * under the lock and allocates nothing (the transport allocated the
 * message), so the receive thread holds the lock for a few stores only.
 * Rejected: a bounded ring, which when full would have to drop commands or
 * block the receive thread.
 */
#include "queue.h"

#include <time.h>

#include <partreg/time.h>

void
pr__queue_init(struct pr_queue *q)
{
	q->head = q->tail = NULL;
	q->len = 0;
	q->connected = 0;
	q->stopping = 0;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
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
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

void
pr__queue_push(struct pr_queue *q, struct pr_msg *m)
{
	pthread_mutex_lock(&q->mu);
	if (q->tail != NULL) {
		q->tail->next = m;
	} else {
		q->head = m;
	}
	q->tail = m;
	q->len++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
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
pr__queue_stop(struct pr_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

uint64_t
pr__queue_len(struct pr_queue *q)
{
	uint64_t n;

	pthread_mutex_lock(&q->mu);
	n = q->len;
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
	if (q->head == NULL && !q->connected && !q->stopping && wait_us > 0) {
		int64_t until = pr_time_now() + wait_us;
		struct timespec ts = { .tv_sec = (time_t)(until / 1000000),
			.tv_nsec = (long)(until % 1000000) * 1000 };

		pthread_cond_timedwait(&q->cv, &q->mu, &ts);
	}
	while (q->head != NULL && out->n < max) {
		*tail = q->head;
		q->head = q->head->next;
		tail = &(*tail)->next;
		*tail = NULL;
		out->n++;
		q->len--;
	}
	if (q->head == NULL) {
		q->tail = NULL;
	}
	out->connected = q->connected;
	q->connected = 0;
	out->stop = q->stopping && q->head == NULL && out->n == 0;
	pthread_mutex_unlock(&q->mu);
}
