/* SPDX-License-Identifier: MIT */
/*
 * The command queue (queue.h) and its spill file (spill.h): limits by
 * count and bytes, refusal when full, forced pushes into the spill file,
 * and first-in first-out order across memory and file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <errno.h>

#include "queue.h"
#include "spill.h"

/* A message "cmd/<i>" with a payload of size bytes (its number, padded). */
static struct pr_msg *
msg(int i, size_t size)
{
	struct pr_msg *m = calloc(1, sizeof *m);
	char topic[32];

	assert_non_null(m);
	snprintf(topic, sizeof topic, "cmd/%d", i);
	m->topic = strdup(topic);
	m->payload = malloc(size + 1);
	assert_non_null(m->topic);
	assert_non_null(m->payload);
	memset(m->payload, ' ', size);
	m->payload[size] = '\0';
	memcpy(m->payload, topic + 4, strlen(topic + 4)); /* its number, then spaces */
	m->payload_len = size;
	if (i % 2 == 0) {
		m->response_topic = strdup("reply/x");
		m->correlation = malloc(3);
		memcpy(m->correlation, "c\0d", 3);
		m->correlation_len = 3;
	}
	m->received_at = 1000 + i;
	return m;
}

/* Take everything; check the numbers come in order from first; returns how many. */
static int
take_all(struct pr_queue *q, int first, size_t size)
{
	struct pr_queue_batch b;
	int n = 0;

	do {
		pr__queue_take(q, 3, 0, &b);
		while (b.msgs != NULL) {
			struct pr_msg *next = b.msgs->next;
			char topic[32];

			snprintf(topic, sizeof topic, "cmd/%d", first + n);
			assert_string_equal(b.msgs->topic, topic);
			assert_int_equal(atoi(b.msgs->payload), first + n);
			assert_int_equal(b.msgs->payload_len, size);
			assert_int_equal(b.msgs->received_at, 1000 + first + n);
			if ((first + n) % 2 == 0) {
				assert_string_equal(b.msgs->response_topic, "reply/x");
				assert_int_equal(b.msgs->correlation_len, 3);
				assert_memory_equal(b.msgs->correlation, "c\0d", 3);
			} else {
				assert_null(b.msgs->response_topic);
				assert_null(b.msgs->correlation);
			}
			pr__msg_free(b.msgs);
			b.msgs = next;
			n++;
		}
	} while (b.n > 0);
	return n;
}

static void
test_limit_by_count(void **state)
{
	struct pr_queue q;
	struct pr_msg *m;

	(void)state;
	pr__queue_init(&q, 3, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pr__queue_push(&q, msg(i, 10), 0), 0);
	}
	m = msg(3, 10);
	assert_int_equal(pr__queue_push(&q, m, 0), -EAGAIN);
	/* Forced, without a spill file: over the limit. */
	assert_int_equal(pr__queue_push(&q, m, 1), 0);
	assert_int_equal(pr__queue_len(&q), 4);
	assert_int_equal(take_all(&q, 0, 10), 4);
	struct pr_queue_stats st;
	pr__queue_stats(&q, &st);
	assert_int_equal(st.full_waits, 1);
	assert_int_equal(st.over_limit, 1);
	assert_int_equal(st.bytes, 0);
	pr__queue_release(&q);
}

static void
test_limit_by_bytes(void **state)
{
	struct pr_queue q;
	struct pr_msg *big = msg(0, 5000), *m;

	(void)state;
	pr__queue_init(&q, 0, 4096);
	/* An empty queue takes one message of any size... */
	assert_int_equal(pr__queue_push(&q, big, 0), 0);
	/* ...and then nothing that does not fit. */
	m = msg(1, 5000);
	assert_int_equal(pr__queue_push(&q, m, 0), -EAGAIN);
	assert_int_equal(take_all(&q, 0, 5000), 1);
	assert_int_equal(pr__queue_push(&q, m, 0), 0);
	assert_int_equal(take_all(&q, 1, 5000), 1);
	pr__queue_release(&q);
}

static void
test_spill_keeps_order(void **state)
{
	char path[] = "/tmp/test_queue.XXXXXX";
	struct pr_spill *sp;
	struct pr_queue q;
	struct pr_queue_stats st;
	int fd = mkstemp(path), i;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pr__spill_open(path, &sp), 0);
	pr__queue_init(&q, 4, 0);
	pr__queue_set_spill(&q, sp);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pr__queue_push(&q, msg(i, 300), 0), 0);
	}
	/* Full: forced pushes go to the file; then every push waits behind
	 * them, forced ones into the file too. */
	for (; i < 10; i++) {
		struct pr_msg *m = msg(i, 300);

		assert_int_equal(pr__queue_push(&q, m, 0), -EAGAIN);
		assert_int_equal(pr__queue_push(&q, m, 1), 0);
	}
	pr__queue_stats(&q, &st);
	assert_int_equal(st.spilled, 6);
	assert_int_equal(st.spill_len, 6);
	assert_true(st.spill_bytes > 6 * 300);
	assert_int_equal(st.over_limit, 0);
	assert_int_equal(pr__queue_len(&q), 10);
	assert_int_equal(take_all(&q, 0, 300), 10);
	/* Emptied: the file is truncated and pushes go to memory again. */
	pr__queue_stats(&q, &st);
	assert_int_equal(st.spill_len, 0);
	assert_int_equal(st.spill_bytes, 0);
	assert_int_equal(pr__queue_push(&q, msg(10, 300), 0), 0);
	assert_int_equal(take_all(&q, 10, 300), 1);
	pr__queue_release(&q); /* closes and removes the file */
	assert_int_equal(access(path, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_by_count),
		cmocka_unit_test(test_limit_by_bytes),
		cmocka_unit_test(test_spill_keeps_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
