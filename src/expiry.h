/* SPDX-License-Identifier: MIT */
/*
 * Lease expiry: the work of the agent's lease timer. When the earliest
 * lease deadline has passed, the agent runs pr__expiry_run in a write
 * transaction and publishes what changed like any batch; then it asks
 * pr__expiry_next when to come back.
 *
 * Worker thread only (it writes to the store), like the handlers.
 */
#ifndef PR_EXPIRY_H
#define PR_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "handlers.h"
#include "store.h"

/*
 * Fail, in txn, the locks whose lease ran out at now: at most max of the
 * leases due (earliest deadline first), each through pr__handle_expiry,
 * appending what changed to *changes; each one failed is logged. A lease
 * that is no longer an expired lock is skipped. *ndue gets how many were
 * due (max: more may be), *nexpired how many were failed (also on error).
 * Returns 0, or the store's error or -ENOMEM (then abort txn).
 */
int pr__expiry_run(struct pr_txn *txn, int64_t now, size_t max, struct pr_changes *changes,
    size_t *ndue, size_t *nexpired);

/* The earliest lease deadline in st (its own read transaction), 0 when no
 * lease runs or the store cannot say. */
int64_t pr__expiry_next(struct pr_store *st);

#endif
