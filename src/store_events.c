/* SPDX-License-Identifier: MIT */
/*
 * The event log (history): what happened to each source, in seq order,
 * appended by the handlers in the same transaction as the change itself,
 * read by history/query and pruned by the agent's maintenance.
 *
 * Key layout (src = the source's id, big-endian 64 bits):
 *   events      src | seq -> event record (format of store_int.h)
 *   meta        'E' | src -> u64 number of events the source has logged
 *               (missing: not counted yet, counted once by a scan)
 *
 * Retention counts per source in meta rather than by scanning: seqs are
 * not contiguous (a source's seq also rises for changes that log no event,
 * and pruning leaves gaps), so last - first is no count, and a scan would
 * make every count-limited prune O(events). The count costs one meta read
 * and write per append.
 */
#include "store_int.h"

#include <errno.h>

#include <inttypes.h>
#include <string.h>

#include <partreg/error.h>

#include "log.h"

/* The number of events src has logged: meta 'E' | src, or a scan when missing. */
static int
event_count_get(struct pr_txn *txn, uint64_t src_id, uint64_t *count)
{
	uint8_t key[9] = { 'E' }, pfx[8];
	MDB_val k = { sizeof key, key }, d;
	MDB_cursor *cur;
	uint64_t n = 0;
	int rc;

	be64_put(key + 1, src_id);
	rc = mdb_get(txn->txn, txn->st->meta, &k, &d);
	if (rc == 0 && d.mv_size == 8) {
		*count = be64_get(d.mv_data);
		return 0;
	}
	if (rc != MDB_NOTFOUND) {
		if (rc == 0) {
			pr_error("store: event count of %zu bytes, want 8", d.mv_size);
			return PR_ESTORE;
		}
		return pr__store_lmdb_err(rc, "event count", PR_ESTORE);
	}
	/* A source from before counts were kept: count it once. */
	be64_put(pfx, src_id);
	k = (MDB_val) { sizeof pfx, pfx };
	if ((rc = mdb_cursor_open(txn->txn, txn->st->events, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "event count", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != 16 || be64_get(k.mv_data) != src_id) {
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "event count", PR_ESTORE);
	}
	*count = n;
	return 0;
}

static int
event_count_put(struct pr_txn *txn, uint64_t src_id, uint64_t count)
{
	uint8_t key[9] = { 'E' };

	be64_put(key + 1, src_id);
	return pr__store_meta_put_u64(txn, key, sizeof key, count);
}

int
pr__store_event_append(struct pr_txn *txn, const struct pr_source *src, const struct pr_event *ev)
{
	uint8_t key[16];
	uint8_t buf[1024];
	struct wbuf w = { buf, 0, sizeof buf };
	MDB_val k = { sizeof key, key }, d;
	uint64_t count;
	int rc;

	assert(txn->child == NULL);
	if (src->id == 0) {
		return PR_ENOSOURCE;
	}
	/* Counted before the put, so a count from a scan does not include it. */
	if ((rc = event_count_get(txn, src->id, &count)) != 0) {
		return rc;
	}
	be64_put(key, src->id);
	be64_put(key + 8, ev->seq);
	wb_u8(&w, PR_REC_V1);
	wb_u64(&w, (uint64_t)ev->at);
	wb_str(&w, ev->type, sizeof ev->type);
	wb_str(&w, ev->provider, sizeof ev->provider);
	wb_u64(&w, time_enc(ev->range.start));
	wb_u64(&w, time_enc(ev->range.end));
	wb_u8(&w, (uint8_t)ev->state);
	wb_u64(&w, ev->fence);
	wb_u64(&w, ev->version);
	wb_str(&w, ev->reason, sizeof ev->reason);
	wb_u64(&w, ev->epoch != 0 ? ev->epoch : txn->st->epoch);
	d.mv_size = w.len;
	d.mv_data = buf;
	/* seq is strictly increasing, so an existing key is a caller's bug. */
	rc = mdb_put(txn->txn, txn->st->events, &k, &d, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		pr_error(
		    "store: event seq %" PRIu64 " of source %s already exists", ev->seq, src->name);
		return PR_EINTERNAL;
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "event append", PR_ESTORE);
	}
	if (txn->cap != NULL) {
		int g[PR_OP_GUARDS] = { pr__store_cap_source(txn, src->name), -1, -1 };

		if ((rc = pr__store_cap_record(txn, 'e', src->name, key + 8, 8, buf, w.len, g))
		    != 0) {
			return rc;
		}
	}
	return event_count_put(txn, src->id, count + 1);
}

static int
event_decode(const struct pr_source *src, const MDB_val *k, const MDB_val *d, struct pr_event *ev)
{
	struct rbuf r = { d->mv_data, d->mv_size, 0, 0 };

	memset(ev, 0, sizeof *ev);
	if (rb_u8(&r) != PR_REC_V1) {
		r.bad = 1;
	}
	ev->seq = be64_get((const uint8_t *)k->mv_data + 8);
	ev->at = (int64_t)rb_u64(&r);
	rb_str(&r, ev->type, sizeof ev->type);
	memcpy(ev->source, src->name, strnlen(src->name, PR_NAME_MAX));
	rb_str(&r, ev->provider, sizeof ev->provider);
	ev->range.start = time_dec(rb_u64(&r));
	ev->range.end = time_dec(rb_u64(&r));
	ev->state = (enum pr_pstate)rb_u8(&r);
	ev->fence = rb_u64(&r);
	ev->version = rb_u64(&r);
	rb_str(&r, ev->reason, sizeof ev->reason);
	ev->epoch = rb_u64(&r);
	if (r.bad) {
		pr_error("store: corrupt event record");
		return PR_ESTORE;
	}
	return 0;
}

int
pr__store_event_each(struct pr_txn *txn, const struct pr_source *src, uint64_t after_seq,
    int (*cb)(void *arg, const struct pr_event *ev), void *arg)
{
	uint8_t key[16];
	MDB_cursor *cur;
	MDB_val k = { sizeof key, key }, d;
	int rc, r = 0;

	assert(txn->child == NULL);
	if (src->id == 0 || after_seq == UINT64_MAX) {
		return 0;
	}
	be64_put(key, src->id);
	be64_put(key + 8, after_seq + 1);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->events, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "event list", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_event ev;

		if (k.mv_size != 16 || be64_get(k.mv_data) != src->id) {
			break;
		}
		if ((r = event_decode(src, &k, &d, &ev)) != 0 || (r = cb(arg, &ev)) != 0) {
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "event list", PR_ESTORE);
	}
	return 0;
}

static int
event_match(const struct pr_event_filter *f, const struct pr_event *ev)
{
	if (f == NULL) {
		return 1;
	}
	if ((f->has_from && ev->at < f->from) || (f->has_to && ev->at >= f->to)) {
		return 0;
	}
	if (f->provider != NULL && f->provider[0] != '\0'
	    && strcmp(f->provider, ev->provider) != 0) {
		return 0;
	}
	if ((f->range.start != 0 || f->range.end != 0)
	    && (ev->range.start != f->range.start || ev->range.end != f->range.end)) {
		return 0;
	}
	return 1;
}

int
pr__store_event_query(struct pr_txn *txn, const struct pr_source *src,
    const struct pr_event_filter *f, const char *cursor, size_t limit,
    int (*cb)(void *arg, const struct pr_event *ev), void *arg, char next[PR_CURSOR_MAX])
{
	uint8_t key[16], last[8];
	size_t clen, n = 0;
	uint64_t after = f != NULL ? f->since_seq : 0;
	MDB_cursor *cur;
	MDB_val k = { sizeof key, key }, d;
	int rc, r = 0;

	assert(txn->child == NULL);
	/* The cursor is the hex of the last seq returned. Decoded before next is
	 * cleared, so the caller may pass one buffer as both. */
	rc = pr__store_cursor_decode('e', cursor, 8, 8, last, &clen);
	if (next != NULL) {
		next[0] = '\0';
	}
	if (rc != 0) {
		return rc;
	}
	if (clen == 8 && be64_get(last) > after) {
		after = be64_get(last);
	}
	if (src->id == 0 || after == UINT64_MAX) {
		return 0;
	}
	be64_put(key, src->id);
	be64_put(key + 8, after + 1);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->events, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "event query", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		struct pr_event ev;

		if (k.mv_size != 16 || be64_get(k.mv_data) != src->id) {
			break;
		}
		if ((r = event_decode(src, &k, &d, &ev)) != 0) {
			break;
		}
		if (!event_match(f, &ev)) {
			continue;
		}
		/* A page ends only when another match follows, so the last page
		 * never comes back empty. */
		if (limit != 0 && n == limit) {
			if (next != NULL) {
				pr__store_cursor_encode('e', last, sizeof last, next);
			}
			break;
		}
		be64_put(last, ev.seq);
		n++;
		if ((r = cb(arg, &ev)) != 0) {
			if (next != NULL) {
				pr__store_cursor_encode('e', last, sizeof last, next);
			}
			break;
		}
	}
	mdb_cursor_close(cur);
	if (r != 0) {
		return r;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "event query", PR_ESTORE);
	}
	return 0;
}

int
pr__store_event_prune(struct pr_txn *txn, const struct pr_source *src, int64_t before,
    size_t keep_max, size_t max, size_t *removed)
{
	uint8_t key[8];
	MDB_cursor *cur;
	MDB_val k = { sizeof key, key }, d;
	uint64_t count;
	size_t n = 0;
	int rc;

	assert(txn->child == NULL);
	if (removed != NULL) {
		*removed = 0;
	}
	if (src->id == 0) {
		return 0;
	}
	if ((rc = event_count_get(txn, src->id, &count)) != 0) {
		return rc;
	}
	be64_put(key, src->id);
	if ((rc = mdb_cursor_open(txn->txn, txn->st->events, &cur)) != 0) {
		return pr__store_lmdb_err(rc, "event prune", PR_ESTORE);
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0 && (max == 0 || n < max);
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		int64_t at;

		if (k.mv_size != 16 || be64_get(k.mv_data) != src->id) {
			break;
		}
		/* A record opens with its version byte and `at`. */
		if (d.mv_size < 9 || ((const uint8_t *)d.mv_data)[0] != PR_REC_V1) {
			pr_error("store: corrupt event record");
			rc = MDB_CORRUPTED;
			break;
		}
		at = (int64_t)be64_get((const uint8_t *)d.mv_data + 1);
		if (at >= before && (keep_max == 0 || count - n <= keep_max)) {
			break;
		}
		if (txn->cap != NULL) {
			int g[PR_OP_GUARDS] = { pr__store_cap_source(txn, src->name), -1, -1 };

			if (pr__store_cap_record(
			        txn, 'e', src->name, (const uint8_t *)k.mv_data + 8, 8, NULL, 0, g)
			    != 0) {
				rc = ENOMEM;
				break;
			}
		}
		/* After a cursor delete, MDB_NEXT yields the entry that followed it. */
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		return pr__store_lmdb_err(rc, "event prune", PR_ESTORE);
	}
	if (n > 0) {
		/* A count that was wrong (it never should be) must not wrap. */
		if ((rc = event_count_put(txn, src->id, count > n ? count - n : 0)) != 0) {
			return rc;
		}
	}
	if (removed != NULL) {
		*removed = n;
	}
	return 0;
}

int
pr__store_event_apply(struct pr_txn *txn, const struct pr_source *src, uint64_t seq,
    const uint8_t *val, size_t val_len, struct pr_event *out)
{
	uint8_t key[16];
	MDB_val k = { sizeof key, key }, d = { val_len, (void *)val };
	uint64_t count;
	int rc;

	be64_put(key, src->id);
	be64_put(key + 8, seq);
	if ((rc = event_count_get(txn, src->id, &count)) != 0) {
		return rc;
	}
	if (val == NULL) {
		rc = mdb_del(txn->txn, txn->st->events, &k, NULL);
		if (rc == MDB_NOTFOUND) {
			return 0;
		}
		if (rc != 0) {
			return pr__store_lmdb_err(rc, "event apply", PR_ESTORE);
		}
		return event_count_put(txn, src->id, count > 0 ? count - 1 : 0);
	}
	if ((rc = event_decode(src, &k, &d, out)) != 0) {
		return rc;
	}
	rc = mdb_put(txn->txn, txn->st->events, &k, &d, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		return 0; /* applied already */
	}
	if (rc != 0) {
		return pr__store_lmdb_err(rc, "event apply", PR_ESTORE);
	}
	return event_count_put(txn, src->id, count + 1);
}
