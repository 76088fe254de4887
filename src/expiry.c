/* SPDX-License-Identifier: MIT */
/*
 * See expiry.h. The leases due are collected first and failed after the
 * scan: a store callback must not write (store.h), and failing a lock
 * moves it out of the lease index being scanned.
 */
#include "expiry.h"

#include <errno.h>
#include <stdlib.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "log.h"

struct due {
	struct pr_partition *items;
	size_t n;
};

static int
collect_due(void *arg, const struct pr_partition *p)
{
	struct due *d = arg;

	d->items[d->n++] = *p;
	return 0;
}

int
pr__expiry_run(struct pr_txn *txn, int64_t now, size_t max, struct pr_changes *changes,
    size_t *ndue, size_t *nexpired)
{
	struct due d = { .items = malloc(max * sizeof *d.items), .n = 0 };
	int rc = d.items != NULL ? 0 : -ENOMEM;

	*ndue = 0;
	*nexpired = 0;
	if (rc == 0) {
		rc = pr__store_leases_due(txn, now, max, collect_due, &d);
	}
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		char s[PR_TIME_BUFSZ];

		rc = pr__handle_expiry(txn, &d.items[i], now, changes);
		if (rc == 0) {
			(*nexpired)++;
			pr_info("agent: lease of %s/%s/%s expired (fence %llu)", d.items[i].source,
			    d.items[i].provider, pr_time_format(d.items[i].range.start, s),
			    (unsigned long long)d.items[i].fence);
		} else if (rc == PR_ENOTLOCKED) {
			rc = 0;
		}
	}
	*ndue = d.n;
	free(d.items);
	return rc;
}

int64_t
pr__expiry_next(struct pr_store *st)
{
	struct pr_txn *txn = NULL;
	int64_t next = 0;

	if (pr__txn_begin(st, 0, &txn) == 0) {
		if (pr__store_lease_next(txn, &next) != 0) {
			next = 0;
		}
		pr__txn_abort(txn);
	}
	return next;
}
