/* SPDX-License-Identifier: MIT */
/*
 * http/itree.c: the interval tree, against a brute-force array of the same
 * records. After every change the whole tree is checked: parent links, key
 * order, AVL balance and height, max_end, count. Overlap walks are
 * compared with a scan of the array for many windows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itree.h"

struct rec {
	struct pr_itree_node node; /* first: a node is its record */
	int id;
	int in;
};

static int
cmp(const struct pr_itree_node *a, const struct pr_itree_node *b)
{
	const struct rec *x = (const struct rec *)a, *y = (const struct rec *)b;

	if (a->range.start != b->range.start) {
		return a->range.start < b->range.start ? -1 : 1;
	}
	return (x->id > y->id) - (x->id < y->id);
}

/* Checks the subtree at n; its height. */
static int
check(const struct pr_itree *t, const struct pr_itree_node *n, const struct pr_itree_node *parent,
    size_t *count)
{
	int hl, hr;
	int64_t mx;

	if (n == NULL) {
		return 0;
	}
	assert_ptr_equal(n->parent, parent);
	hl = check(t, n->kid[0], n, count);
	hr = check(t, n->kid[1], n, count);
	assert_true(hl - hr <= 1 && hr - hl <= 1);
	assert_int_equal(n->height, 1 + (hl > hr ? hl : hr));
	mx = n->range.end;
	for (int i = 0; i < 2; i++) {
		if (n->kid[i] != NULL) {
			assert_true(cmp(n->kid[i], n) == (i == 0 ? -1 : 1));
			mx = n->kid[i]->max_end > mx ? n->kid[i]->max_end : mx;
		}
	}
	assert_int_equal(n->max_end, mx);
	(*count)++;
	return n->height;
}

static void
check_tree(const struct pr_itree *t)
{
	size_t count = 0;
	const struct pr_itree_node *prev = NULL;

	check(t, t->root, NULL, &count);
	assert_int_equal(count, t->count);
	count = 0;
	for (const struct pr_itree_node *n = pr_itree_first(t); n != NULL; n = pr_itree_next(n)) {
		if (prev != NULL) {
			assert_true(cmp(prev, n) < 0);
		}
		prev = n;
		count++;
	}
	assert_int_equal(count, t->count);
}

/* The overlap walk equals the brute-force list, in key order. */
static void
check_overlaps(const struct pr_itree *t, const struct rec *v, size_t n, struct pr_range w)
{
	const struct pr_itree_node *x = pr_itree_overlap_first(t, w), *prev = NULL;
	size_t want = 0, got = 0;

	for (size_t i = 0; i < n; i++) {
		want += v[i].in && v[i].node.range.start < w.end && v[i].node.range.end > w.start;
	}
	for (; x != NULL; x = pr_itree_overlap_next(x, w)) {
		assert_true(x->range.start < w.end && x->range.end > w.start);
		if (prev != NULL) {
			assert_true(cmp(prev, x) < 0);
		}
		prev = x;
		got++;
	}
	assert_int_equal(got, want);
}

static void
test_random_against_array(void **state)
{
	enum { N = 2000 };
	struct rec *v = calloc(N, sizeof *v);
	struct pr_itree t;
	unsigned seed = 7;

	(void)state;
	pr_itree_init(&t, cmp);
	for (int i = 0; i < N; i++) {
		int64_t s = rand_r(&seed) % 10000;
		/* Mostly short, some long: long ones are what max_end is for. */
		int64_t len = 1 + (i % 50 == 0 ? rand_r(&seed) % 5000 : rand_r(&seed) % 20);

		v[i].id = i;
		v[i].node.range = (struct pr_range) { s, s + len };
	}
	for (int round = 0; round < 20000; round++) {
		struct rec *r = &v[rand_r(&seed) % N];

		if (r->in) {
			assert_ptr_equal(pr_itree_find(&t, &r->node), &r->node);
			pr_itree_remove(&t, &r->node);
			r->in = 0;
			assert_null(pr_itree_find(&t, &r->node));
		} else {
			assert_null(pr_itree_insert(&t, &r->node));
			r->in = 1;
		}
		if (round % 97 == 0) {
			check_tree(&t);
			for (int k = 0; k < 20; k++) {
				int64_t a = rand_r(&seed) % 11000 - 500;

				check_overlaps(
				    &t, v, N, (struct pr_range) { a, a + 1 + rand_r(&seed) % 300 });
			}
		}
	}
	check_tree(&t);
	check_overlaps(&t, v, N, (struct pr_range) { INT64_MIN, INT64_MAX });
	free(v);
}

static void
test_duplicate_refused(void **state)
{
	struct rec a = { .id = 1 }, b = { .id = 1 };
	struct pr_itree t;

	(void)state;
	pr_itree_init(&t, cmp);
	a.node.range = b.node.range = (struct pr_range) { 5, 6 };
	assert_null(pr_itree_insert(&t, &a.node));
	assert_ptr_equal(pr_itree_insert(&t, &b.node), &a.node);
	assert_int_equal(t.count, 1);
	pr_itree_remove(&t, &a.node);
	assert_null(t.root);
	assert_int_equal(t.count, 0);
	assert_null(pr_itree_first(&t));
	assert_null(pr_itree_overlap_first(&t, (struct pr_range) { 0, 10 }));
}

/* Keys in order and in reverse keep the tree balanced: height within
 * AVL's bound (1.44 log2 n). */
static void
test_sorted_inserts_balanced(void **state)
{
	enum { N = 1 << 16 };
	struct rec *v = calloc(N, sizeof *v);
	struct pr_itree t;

	(void)state;
	for (int dir = 0; dir < 2; dir++) {
		pr_itree_init(&t, cmp);
		for (int i = 0; i < N; i++) {
			int k = dir == 0 ? i : N - 1 - i;

			v[k].id = k;
			v[k].node.range = (struct pr_range) { k, k + 1 };
			assert_null(pr_itree_insert(&t, &v[k].node));
		}
		check_tree(&t);
		assert_true(t.root->height <= 24); /* 1.44 * 16 + 1 */
		/* Remove every other one, then the rest. */
		for (int i = 0; i < N; i += 2) {
			pr_itree_remove(&t, &v[i].node);
		}
		check_tree(&t);
		assert_true(t.root->height <= 23);
		for (int i = 1; i < N; i += 2) {
			pr_itree_remove(&t, &v[i].node);
		}
		assert_null(t.root);
	}
	free(v);
}

static void
test_after_and_next(void **state)
{
	struct rec v[10];
	struct pr_itree t;
	struct rec key = { .id = 0 };

	(void)state;
	pr_itree_init(&t, cmp);
	for (int i = 0; i < 10; i++) {
		v[i].id = i;
		v[i].node.range = (struct pr_range) { 10 * i, 10 * i + 5 };
		assert_null(pr_itree_insert(&t, &v[i].node));
	}
	/* After an equal key: the next one; after a key between: the next. */
	key.id = 3;
	key.node.range = v[3].node.range;
	assert_ptr_equal(pr_itree_after(&t, &key.node), &v[4].node);
	key.node.range.start = 31;
	assert_ptr_equal(pr_itree_after(&t, &key.node), &v[4].node);
	key.node.range.start = -1;
	assert_ptr_equal(pr_itree_after(&t, &key.node), &v[0].node);
	key.node.range.start = 90;
	key.id = 9;
	assert_null(pr_itree_after(&t, &key.node));
	assert_ptr_equal(pr_itree_next(&v[3].node), &v[4].node);
	assert_null(pr_itree_next(&v[9].node));
	/* Touching is not overlapping: [5, 10) meets no [10i, 10i + 5). */
	assert_null(pr_itree_overlap_first(&t, (struct pr_range) { 5, 10 }));
	assert_ptr_equal(pr_itree_overlap_first(&t, (struct pr_range) { 4, 10 }), &v[0].node);
	assert_null(pr_itree_overlap_next(&v[0].node, (struct pr_range) { 4, 10 }));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_array),
		cmocka_unit_test(test_duplicate_refused),
		cmocka_unit_test(test_sorted_inserts_balanced),
		cmocka_unit_test(test_after_and_next),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
