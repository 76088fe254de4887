/* SPDX-License-Identifier: MIT */
/*
 * An ordered set of intervals: an intrusive AVL tree, each node augmented
 * with the largest end in its subtree, so that besides O(log n) insert,
 * remove and find it answers "which nodes overlap [a, b)" in key order in
 * O(log n + k) (CLRS's interval tree). The mirror keeps its partitions,
 * its per-source blockers and its expiry queues in these.
 *
 * The caller embeds a struct pr_itree_node in its own record and orders
 * records with a comparison function over nodes, which must order by
 * range.start first (any total order among equal starts): the overlap
 * walk relies on it. A node's range must not change while it is in a tree.
 *
 * Nothing here allocates or locks: every function runs in the caller's
 * lock, and a node's memory is the caller's (removing a node does not
 * free it).
 */
#ifndef PR_HTTP_ITREE_H
#define PR_HTTP_ITREE_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/interval.h>

struct pr_itree_node {
	struct pr_itree_node *parent, *kid[2];
	struct pr_range range; /* set before insert; fixed while in the tree */
	int64_t max_end;       /* the largest range.end in this subtree */
	int height;
};

/* < 0, 0, > 0 as a orders before, equal to, after b; by range.start first. */
typedef int (*pr_itree_cmp_fn)(const struct pr_itree_node *a, const struct pr_itree_node *b);

struct pr_itree {
	struct pr_itree_node *root;
	size_t count;
	pr_itree_cmp_fn cmp;
};

void pr_itree_init(struct pr_itree *t, pr_itree_cmp_fn cmp);

/* Insert n (its range set). Returns NULL, or the node already in t equal
 * to n, which is left in place (n is not inserted). */
struct pr_itree_node *pr_itree_insert(struct pr_itree *t, struct pr_itree_node *n);
/* Remove n, which is in t. */
void pr_itree_remove(struct pr_itree *t, struct pr_itree_node *n);

/* The node equal to key (a node not in t, compared with t's cmp), or NULL. */
struct pr_itree_node *pr_itree_find(const struct pr_itree *t, const struct pr_itree_node *key);
/* The first node ordered after key (not equal), or NULL. */
struct pr_itree_node *pr_itree_after(const struct pr_itree *t, const struct pr_itree_node *key);
/* The first node, and the one after n, in order; NULL at the end. */
struct pr_itree_node *pr_itree_first(const struct pr_itree *t);
struct pr_itree_node *pr_itree_next(const struct pr_itree_node *n);

/* The first node overlapping want (start < want.end, end > want.start),
 * and the next one after n that does, in order; NULL when none. */
struct pr_itree_node *pr_itree_overlap_first(const struct pr_itree *t, struct pr_range want);
struct pr_itree_node *pr_itree_overlap_next(const struct pr_itree_node *n, struct pr_range want);

#endif
