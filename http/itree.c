/* SPDX-License-Identifier: MIT */
/*
 * The interval tree (itree.h): AVL with parent pointers. After every
 * structural change the path from the lowest changed node to the root is
 * walked once, recomputing height and max_end and rotating where the
 * heights differ by two; that walk is O(log n) and keeps both invariants
 * (balance, max_end) with one piece of code.
 *
 * Rejected: a red-black tree (fewer rotations on delete, but more cases
 * to get right, and max_end must be walked to the root anyway); a skip
 * list (no cheap subtree maximum for the overlap walk); a sorted array of
 * chunks (cache-friendly, but an overlap query must look at every chunk
 * before the window for long intervals, and the mirror needs the same
 * structure for its blockers and expiry queues).
 */
#include "itree.h"

static int
height(const struct pr_itree_node *n)
{
	return n != NULL ? n->height : 0;
}

static void
update(struct pr_itree_node *n)
{
	int hl = height(n->kid[0]), hr = height(n->kid[1]);

	n->height = 1 + (hl > hr ? hl : hr);
	n->max_end = n->range.end;
	for (int i = 0; i < 2; i++) {
		if (n->kid[i] != NULL && n->kid[i]->max_end > n->max_end) {
			n->max_end = n->kid[i]->max_end;
		}
	}
}

/* Put c where n hangs (under n's parent, or as the root). */
static void
replace(struct pr_itree *t, struct pr_itree_node *n, struct pr_itree_node *c)
{
	struct pr_itree_node *p = n->parent;

	if (p == NULL) {
		t->root = c;
	} else {
		p->kid[p->kid[1] == n] = c;
	}
	if (c != NULL) {
		c->parent = p;
	}
}

/* Rotate x down towards dir (0: left rotation, x's right kid comes up);
 * returns the subtree's new root. */
static struct pr_itree_node *
rotate(struct pr_itree *t, struct pr_itree_node *x, int dir)
{
	struct pr_itree_node *y = x->kid[!dir];

	x->kid[!dir] = y->kid[dir];
	if (y->kid[dir] != NULL) {
		y->kid[dir]->parent = x;
	}
	replace(t, x, y);
	y->kid[dir] = x;
	x->parent = y;
	update(x);
	update(y);
	return y;
}

/* x's subtrees are AVL trees whose heights differ by at most 2. */
static struct pr_itree_node *
rebalance(struct pr_itree *t, struct pr_itree_node *x)
{
	int bal = height(x->kid[0]) - height(x->kid[1]);

	if (bal > 1 || bal < -1) {
		int heavy = bal < 0; /* the taller side */
		struct pr_itree_node *c = x->kid[heavy];

		/* A kid heavy on the inside turns first (double rotation). */
		if (height(c->kid[!heavy]) > height(c->kid[heavy])) {
			rotate(t, c, heavy);
		}
		return rotate(t, x, !heavy);
	}
	update(x);
	return x;
}

static void
fix_up(struct pr_itree *t, struct pr_itree_node *x)
{
	while (x != NULL) {
		x = rebalance(t, x)->parent;
	}
}

void
pr_itree_init(struct pr_itree *t, pr_itree_cmp_fn cmp)
{
	t->root = NULL;
	t->count = 0;
	t->cmp = cmp;
}

struct pr_itree_node *
pr_itree_insert(struct pr_itree *t, struct pr_itree_node *n)
{
	struct pr_itree_node *p = NULL, **at = &t->root;

	while (*at != NULL) {
		int c = t->cmp(n, *at);

		if (c == 0) {
			return *at;
		}
		p = *at;
		at = &p->kid[c > 0];
	}
	n->parent = p;
	n->kid[0] = n->kid[1] = NULL;
	n->height = 1;
	n->max_end = n->range.end;
	*at = n;
	t->count++;
	fix_up(t, p);
	return NULL;
}

static struct pr_itree_node *
leftmost(struct pr_itree_node *n)
{
	while (n != NULL && n->kid[0] != NULL) {
		n = n->kid[0];
	}
	return n;
}

void
pr_itree_remove(struct pr_itree *t, struct pr_itree_node *n)
{
	struct pr_itree_node *from;

	if (n->kid[0] != NULL && n->kid[1] != NULL) {
		/* Two kids: n's successor s (no left kid) takes n's place. */
		struct pr_itree_node *s = leftmost(n->kid[1]);

		if (s->parent != n) {
			from = s->parent;
			from->kid[0] = s->kid[1];
			if (s->kid[1] != NULL) {
				s->kid[1]->parent = from;
			}
			s->kid[1] = n->kid[1];
			s->kid[1]->parent = s;
		} else {
			from = s;
		}
		s->kid[0] = n->kid[0];
		s->kid[0]->parent = s;
		replace(t, n, s);
	} else {
		from = n->parent;
		replace(t, n, n->kid[n->kid[0] == NULL]);
	}
	n->parent = n->kid[0] = n->kid[1] = NULL;
	t->count--;
	fix_up(t, from);
}

struct pr_itree_node *
pr_itree_find(const struct pr_itree *t, const struct pr_itree_node *key)
{
	struct pr_itree_node *x = t->root;

	while (x != NULL) {
		int c = t->cmp(key, x);

		if (c == 0) {
			return x;
		}
		x = x->kid[c > 0];
	}
	return NULL;
}

struct pr_itree_node *
pr_itree_after(const struct pr_itree *t, const struct pr_itree_node *key)
{
	struct pr_itree_node *x = t->root, *best = NULL;

	while (x != NULL) {
		if (t->cmp(key, x) < 0) {
			best = x;
			x = x->kid[0];
		} else {
			x = x->kid[1];
		}
	}
	return best;
}

struct pr_itree_node *
pr_itree_first(const struct pr_itree *t)
{
	return leftmost(t->root);
}

struct pr_itree_node *
pr_itree_next(const struct pr_itree_node *n)
{
	if (n->kid[1] != NULL) {
		return leftmost(n->kid[1]);
	}
	while (n->parent != NULL && n->parent->kid[1] == n) {
		n = n->parent;
	}
	return n->parent;
}

/*
 * The first node of subtree x overlapping want. Going left when the left
 * subtree holds an end past want.start never needs coming back: its nodes
 * all start no later than x, so if none of them overlaps, every one with
 * an end past want.start starts at or after want.end, and so does
 * everything after them.
 */
static struct pr_itree_node *
first_in(struct pr_itree_node *x, struct pr_range want)
{
	while (x != NULL && x->max_end > want.start) {
		if (x->kid[0] != NULL && x->kid[0]->max_end > want.start) {
			x = x->kid[0];
			continue;
		}
		if (x->range.start >= want.end) {
			return NULL;
		}
		if (x->range.end > want.start) {
			return x;
		}
		x = x->kid[1];
	}
	return NULL;
}

struct pr_itree_node *
pr_itree_overlap_first(const struct pr_itree *t, struct pr_range want)
{
	return first_in(t->root, want);
}

struct pr_itree_node *
pr_itree_overlap_next(const struct pr_itree_node *n, struct pr_range want)
{
	struct pr_itree_node *r;

	/* Everything after n starts no earlier. */
	if (n->range.start >= want.end) {
		return NULL;
	}
	if ((r = first_in(n->kid[1], want)) != NULL) {
		return r;
	}
	/* Up: each ancestor reached from its left, then its right subtree. */
	for (; n->parent != NULL; n = n->parent) {
		struct pr_itree_node *p = n->parent;

		if (p->kid[0] != n) {
			continue;
		}
		if (p->range.start >= want.end) {
			return NULL;
		}
		if (p->range.end > want.start) {
			return p;
		}
		if ((r = first_in(p->kid[1], want)) != NULL) {
			return r;
		}
	}
	return NULL;
}
