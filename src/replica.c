/* SPDX-License-Identifier: MIT */
/*
 * The etcd store backend: commits, the read index's watch, the publisher's
 * election (replica.h).
 */
#include "replica.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <partreg/error.h>
#include <partreg/time.h>

#include "etcd.h"
#include "log.h"

#define PAGE            1000    /* keys per range read of a full copy */
#define CAMPAIGN_EVERY  2000000 /* µs between campaigns while another publishes */
#define LEADER_CHECK_US 250000  /* µs between looks at the lease while publishing */
#define MARGIN_US       1000000 /* the publisher stops this long before its lease may end */

/* A change the watch queued. */
struct change {
	struct change *next;
	int64_t rev;
	int del;
	uint8_t *key; /* without the prefix; the value follows it */
	size_t key_len;
	uint8_t *val;
	size_t val_len;
};

struct pr_replica {
	struct pr_store *st;
	struct pr_etcd *etcd; /* commits and full copies */
	struct pr_etcd *ctl;  /* the lease, campaigns, watches: short deadlines, so
	                         that a cut-off etcd holds the worker briefly */
	struct pr_etcd_watch *watch;
	char *instance; /* in r/P and <prefix>epoch */
	char *prefix;   /* the etcd key prefix */
	size_t plen;
	int64_t ttl_s;
	size_t max_ops;
	void (*wake)(void *);
	void *wake_arg;
	uint64_t epoch;
	int64_t applied; /* what the read index has (worker) */

	/* Filled by the watch thread. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct change *head, **tail;
	int64_t whole;           /* every change up to this revision is queued */
	int final;               /* 0, or PR_ETCD_EV_COMPACTED / PR_ETCD_EV_LOST */
	int need_full;           /* load a full copy at the next apply (worker) */
	int rewatch;             /* start the watch again, after the applied revision */
	int full_done;           /* the apply to commit holds a full copy */
	int64_t pending_applied; /* applied once the caller's commit succeeds */
	int64_t rewatch_at;      /* monotonic µs: no new watch before (after a failure) */

	/* The publisher: leader, lease, valid_until and ended under ka_mu
	 * (the keepalive thread's too). */
	pthread_mutex_t ka_mu;
	pthread_cond_t ka_cv;
	pthread_t ka_thread;
	int ka_started, ka_stop;
	struct pr_etcd *ka; /* the keepalive thread's handle */
	int leader;
	int ended; /* the keepalive found the lease gone */
	int64_t lease;
	int64_t valid_until; /* monotonic µs */
	int64_t next_due;    /* monotonic µs of the next campaign (worker) */
};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* prefix + mid + tail (tlen bytes) into a heap buffer; NULL without
 * memory. */
static uint8_t *
key_join(const struct pr_replica *r, const char *mid, const void *tail, size_t tlen, size_t *len)
{
	size_t mlen = strlen(mid);
	uint8_t *k = malloc(r->plen + mlen + tlen + 1);

	if (k != NULL) {
		memcpy(k, r->prefix, r->plen);
		memcpy(k + r->plen, mid, mlen);
		if (tlen > 0) {
			memcpy(k + r->plen + mlen, tail, tlen);
		}
		*len = r->plen + mlen + tlen;
	}
	return k;
}

/* prefix + tail: a key of the agents' own (secret, epoch, r/...). */
static uint8_t *
key_of(const struct pr_replica *r, const char *tail, size_t tlen, size_t *len)
{
	return key_join(r, "", tail, tlen, len);
}

/* The store's error for an etcd error, with a message for the reply:
 * PR_EINDOUBT when etcd's answer to a write was lost, else PR_ESTORE. */
static int
store_err(int err, const char *what, char msg[256])
{
	char buf[256];

	if (msg == NULL) {
		msg = buf;
	}
	switch (err) {
	case PR__ETCD_EINDOUBT:
		snprintf(msg, 256,
		    "etcd's answer to %s was lost: it may or may not have been applied; retry with "
		    "the "
		    "same request_id",
		    what);
		break;
	case PR__ETCD_EREFUSED:
		snprintf(msg, 256,
		    "etcd refused %s as too large (more changes than its --max-txn-ops, or bytes "
		    "than --max-request-bytes)",
		    what);
		break;
	default:
		snprintf(msg, 256, "etcd: %s: %s", what, pr__etcd_strerror(err));
	}
	pr_warn("replica: %s", msg);
	return err == PR__ETCD_EINDOUBT ? PR_EINDOUBT : PR_ESTORE;
}

static char *guards_raised(const struct pr_capture *cap);

/* ---- the watch (its thread) ---- */

static void
on_watch(void *arg, const struct pr_etcd_event *ev)
{
	struct pr_replica *r = arg;
	struct change *c = NULL;
	int wake = 0;

	if ((ev->type == PR_ETCD_EV_PUT || ev->type == PR_ETCD_EV_DELETE)
	    && ev->kv->key_len > r->plen) {
		size_t klen = ev->kv->key_len - r->plen;
		size_t vlen = ev->type == PR_ETCD_EV_PUT ? ev->kv->value_len : 0;

		c = calloc(1, sizeof *c);
		if (c != NULL && (c->key = malloc(klen + vlen + 1)) == NULL) {
			free(c);
			c = NULL;
		}
		if (c == NULL) {
			/* Out of memory: treat as a lost watch, resumed from the
			 * last whole revision. */
			pthread_mutex_lock(&r->mu);
			r->final = PR_ETCD_EV_LOST;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mu);
			r->wake(r->wake_arg);
			return;
		}
		c->rev = ev->revision;
		c->del = ev->type == PR_ETCD_EV_DELETE;
		memcpy(c->key, ev->kv->key + r->plen, klen);
		c->key_len = klen;
		if (!c->del) {
			c->val = c->key + klen;
			c->val_len = vlen;
			memcpy(c->val, ev->kv->value, vlen);
		}
	}
	pthread_mutex_lock(&r->mu);
	if (r->final == 0) {
		if (c != NULL) {
			*r->tail = c;
			r->tail = &c->next;
			c = NULL;
		}
		if ((ev->type == PR_ETCD_EV_PUT || ev->type == PR_ETCD_EV_DELETE) && ev->last) {
			r->whole = ev->revision;
			wake = 1;
		} else if (ev->type == PR_ETCD_EV_PROGRESS && ev->revision > r->whole) {
			r->whole = ev->revision;
			wake = 1;
		} else if (ev->type == PR_ETCD_EV_COMPACTED || ev->type == PR_ETCD_EV_LOST) {
			r->final = ev->type;
			wake = 1;
		}
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	if (c != NULL) {
		free(c->key);
		free(c);
	}
	if (wake) {
		r->wake(r->wake_arg);
	}
}

static void
changes_free(struct change *c)
{
	while (c != NULL) {
		struct change *next = c->next;

		free(c->key);
		free(c);
		c = next;
	}
}

/* (Re)start the watch at rev (worker). */
static int
watch_start(struct pr_replica *r, int64_t rev)
{
	struct pr_etcd_watch_opts wo = { 0 };
	uint8_t end[512];
	size_t end_len;
	uint8_t *key;
	size_t klen;
	int rc;

	pr__etcd_watch_close(r->watch);
	r->watch = NULL;
	pthread_mutex_lock(&r->mu);
	changes_free(r->head);
	r->head = NULL;
	r->tail = &r->head;
	r->final = 0;
	r->whole = rev - 1;
	pthread_mutex_unlock(&r->mu);
	if ((key = key_of(r, "r/", 2, &klen)) == NULL) {
		return -ENOMEM;
	}
	pr__etcd_prefix_end(key, klen, end, &end_len);
	wo.key = key;
	wo.key_len = klen;
	wo.range_end = end;
	wo.range_end_len = end_len;
	wo.start_revision = rev;
	wo.progress_notify = 1;
	rc = pr__etcd_watch_open(r->ctl, &wo, on_watch, r, &r->watch);
	free(key);
	if (rc == PR__ETCD_ECOMPACTED) {
		r->need_full = 1;
		r->rewatch = 0;
		return 0;
	}
	if (rc != 0) {
		pthread_mutex_lock(&r->mu);
		r->final = PR_ETCD_EV_LOST;
		pthread_mutex_unlock(&r->mu);
		return store_err(rc, "watch", NULL);
	}
	r->rewatch = 0;
	return 0;
}

/* ---- applying ---- */

/* One change to the read index, and to ch for the publisher. */
static int
apply_one(struct pr_replica *r, struct pr_txn *txn, const uint8_t *key, size_t klen,
    const uint8_t *val, size_t vlen, int64_t rev, struct pr_changes *ch)
{
	struct pr_applied a;
	int rc;

	if (klen < 3 || memcmp(key, "r/", 2) != 0) {
		return 0;
	}
	key += 2;
	klen -= 2;
	if (key[0] == 'P' && klen == 1) {
		if (val == NULL) {
			r->next_due = 0; /* nobody publishes: campaign at once */
		}
		return 0;
	}
	if (key[0] == 'x' && ch != NULL) {
		char name[PR_NAME_MAX + 1];

		if (val == NULL) {
			return 0;
		}
		if (vlen == 0 || vlen > PR_NAME_MAX) {
			ch->resync_all = 1;
			return 0;
		}
		memcpy(name, val, vlen);
		name[vlen] = '\0';
		return pr__changes_add_resync(ch, name);
	}
	if ((rc = pr__store_apply(txn, key, klen, val, vlen, rev, &a)) != 0 || ch == NULL) {
		return rc;
	}
	switch (a.kind) {
	case 's':
		return pr__changes_add_source(ch, a.source);
	case 't':
		if (a.deleted) {
			return 0; /* a tombstone pruned: its retained message expires */
		}
		rc = pr__changes_add_part(ch, &a.part);
		return rc != 0 ? rc : pr__changes_add_source(ch, a.source);
	case 'e':
		if (a.deleted) {
			return 0;
		}
		rc = pr__changes_add_event(ch, &a.ev);
		return rc != 0 ? rc : pr__changes_add_source(ch, a.source);
	default:
		return 0;
	}
}

/* Range [key, end) at revision rev (0: now; *rev gets it), applying every
 * key-value whose kind letter (after "r/") is (or, when not, is not) 's'. */
static int
load_range(struct pr_replica *r, struct pr_txn *txn, int sources, int64_t *rev)
{
	uint8_t *key, end[512];
	size_t klen, end_len;
	int rc = 0;

	if ((key = key_of(r, sources ? "r/s" : "r/", sources ? 3 : 2, &klen)) == NULL) {
		return -ENOMEM;
	}
	pr__etcd_prefix_end(key, klen, end, &end_len);
	for (;;) {
		struct pr_etcd_op op = { .type = PR_ETCD_RANGE,
			.key = key,
			.key_len = klen,
			.range_end = end,
			.range_end_len = end_len,
			.revision = *rev,
			.limit = PAGE };
		struct pr_etcd_res res;
		size_t i;

		if ((rc = pr__etcd_do(r->etcd, &op, &res)) != 0) {
			rc = store_err(rc, "reading a full copy", NULL);
			break;
		}
		if (*rev == 0) {
			*rev = res.revision;
		}
		for (i = 0; i < res.n_kvs && rc == 0; i++) {
			const struct pr_etcd_kv *kv = &res.kvs[i];
			const uint8_t *k = kv->key + r->plen;
			size_t kl = kv->key_len - r->plen;

			if (kv->key_len > r->plen && kl >= 3 && (k[2] == 's') == sources) {
				rc = apply_one(r, txn, k, kl, kv->value, kv->value_len,
				    kv->mod_revision, NULL);
			}
		}
		if (rc == 0 && res.more && res.n_kvs > 0) {
			/* The next page starts after the last key. */
			const struct pr_etcd_kv *last = &res.kvs[res.n_kvs - 1];
			uint8_t *nk = malloc(last->key_len + 1);

			if (nk == NULL) {
				rc = -ENOMEM;
			} else {
				memcpy(nk, last->key, last->key_len);
				nk[last->key_len] = '\0';
				free(key);
				key = nk;
				klen = last->key_len + 1;
			}
		}
		i = (size_t)res.more;
		pr__etcd_res_release(&res);
		if (rc != 0 || !i) {
			break;
		}
	}
	free(key);
	return rc;
}

/* A full copy at one revision into txn (cleared first). */
static int
load_full(struct pr_replica *r, struct pr_txn *txn, int64_t *rev)
{
	int rc;

	*rev = 0;
	pr_info("replica: loading a full copy from etcd");
	if ((rc = pr__store_clear(txn)) == 0 && (rc = load_range(r, txn, 1, rev)) == 0
	    && (rc = load_range(r, txn, 0, rev)) == 0) {
		rc = pr__store_applied_put(txn, *rev);
	}
	return rc;
}

/* Start the watch again after the applied revision, unless a try failed
 * less than a second ago (then later). */
static void
rewatch_now(struct pr_replica *r)
{
	if (mono_us() < r->rewatch_at) {
		return;
	}
	if (watch_start(r, r->applied + 1) != 0) {
		r->rewatch_at = mono_us() + 1000000;
	}
}

int
pr__replica_apply(struct pr_replica *r, struct pr_txn *txn, struct pr_changes *ch, int *any)
{
	struct change *list, *c;
	int64_t whole, last = 0;
	int final, rc = 0;

	*any = 0;
	r->pending_applied = 0;
	r->full_done = 0;
	if (r->need_full) {
		int64_t rev;

		if ((rc = load_full(r, txn, &rev)) != 0) {
			return rc;
		}
		ch->resync_all = 1;
		*any = 1;
		r->pending_applied = rev;
		r->full_done = 1;
		return 0;
	}
	if (r->rewatch) {
		/* What the old watch queued is dropped with it: nothing to
		 * apply until the new one runs. */
		rewatch_now(r);
		if (r->rewatch || r->need_full) {
			return 0;
		}
	}
	pthread_mutex_lock(&r->mu);
	whole = r->whole;
	final = r->final;
	/* Take the changes of whole revisions only. */
	list = r->head;
	c = NULL;
	for (struct change *p = r->head; p != NULL && p->rev <= whole; p = p->next) {
		c = p;
	}
	if (c != NULL) {
		r->head = c->next;
		c->next = NULL;
		if (r->head == NULL) {
			r->tail = &r->head;
		}
	} else {
		list = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	for (c = list; c != NULL && rc == 0; c = c->next) {
		if (c->rev <= r->applied) {
			continue; /* this agent's own commit, adopted (pr__replica_adopt) */
		}
		/* A source's record comes before its other records in a commit
		 * (pr__replica_commit orders them so). */
		rc = apply_one(r, txn, c->key, c->key_len, c->val, c->val_len, c->rev, ch);
		last = c->rev;
	}
	changes_free(list);
	if (rc != 0) {
		/* Those changes are gone with the aborted transaction: a new
		 * watch brings them again. */
		r->rewatch = 1;
		return rc;
	}
	if (whole > r->applied) {
		last = whole;
	}
	if (last > r->applied) {
		if ((rc = pr__store_applied_put(txn, last)) != 0) {
			r->rewatch = 1;
			return rc;
		}
		r->pending_applied = last;
		*any = 1;
	}
	if (final == PR_ETCD_EV_COMPACTED) {
		pr_warn(
		    "replica: etcd compacted past the read index's revision: a full copy follows");
		r->need_full = 1;
	} else if (final == PR_ETCD_EV_LOST) {
		r->rewatch = 1; /* after the commit: from the revision applied then */
	}
	return 0;
}

void
pr__replica_apply_failed(struct pr_replica *r)
{
	r->pending_applied = 0;
	r->full_done = 0;
	if (!r->need_full) {
		r->rewatch = 1;
	}
}

int
pr__replica_adopt(
    struct pr_replica *r, struct pr_txn *txn, const struct pr_capture *cap, int64_t rev)
{
	char *raised;
	int rc = 0;

	r->pending_applied = 0;
	r->full_done = 0;
	if (rev != r->applied + 1 || r->rewatch || r->need_full) {
		return 1;
	}
	if ((raised = guards_raised(cap)) == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < cap->nguards && rc == 0; i++) {
		struct pr_applied a;

		if (raised[i]) {
			rc = pr__store_apply(txn, cap->guards[i].key, cap->guards[i].key_len,
			    (const uint8_t *)"", 0, rev, &a);
		}
	}
	free(raised);
	if (rc == 0 && (rc = pr__store_applied_put(txn, rev)) == 0) {
		r->pending_applied = rev;
	}
	return rc;
}

void
pr__replica_applied_commit(struct pr_replica *r)
{
	/* A full copy replaces everything: from a rebuilt etcd, at a revision
	 * that may be below the one the index had. */
	if (r->pending_applied > r->applied || (r->full_done && r->pending_applied > 0)) {
		r->applied = r->pending_applied;
	}
	r->pending_applied = 0;
	if (r->full_done) {
		r->full_done = 0;
		r->need_full = 0;
		r->rewatch = 1;
		r->rewatch_at = 0;
	}
	if (r->rewatch) {
		rewatch_now(r);
	}
}

int
pr__replica_pending(struct pr_replica *r)
{
	int pending;

	pthread_mutex_lock(&r->mu);
	pending = r->whole > r->applied || r->final != 0;
	pthread_mutex_unlock(&r->mu);
	return pending || r->need_full || (r->rewatch && mono_us() >= r->rewatch_at);
}

int64_t
pr__replica_applied(const struct pr_replica *r)
{
	return r->applied;
}

int
pr__replica_wait(struct pr_replica *r, int64_t rev, int64_t wait_us)
{
	int64_t until = pr_time_now() + wait_us; /* the condition variable's clock */
	int rc = 0;

	if (rev <= r->applied) {
		return 0;
	}
	if (r->rewatch || r->need_full) {
		return -ETIMEDOUT; /* no watch runs to bring it */
	}
	pthread_mutex_lock(&r->mu);
	while (r->whole < rev && r->final == 0) {
		struct timespec ts = { .tv_sec = (time_t)(until / 1000000),
			.tv_nsec = (long)(until % 1000000) * 1000 };

		if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---- commits ---- */

/* Which of cap's guards its records raise (every record, the overwritten
 * ones too: a session's locks changed even if the last write of that
 * partition is under another session). Heap, nguards flags; NULL without
 * memory. */
static char *
guards_raised(const struct pr_capture *cap)
{
	char *raised = calloc(cap->nguards + 1, 1);

	for (size_t i = 0; raised != NULL && i < cap->nops; i++) {
		for (int g = 0; g < PR_OP_GUARDS; g++) {
			if (cap->ops[i].guard[g] >= 0) {
				raised[cap->ops[i].guard[g]] = 1;
			}
		}
	}
	return raised;
}

static int
same_key(const struct pr_store_op *a, const struct pr_store_op *b)
{
	return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

int
pr__replica_commit(struct pr_replica *r, const struct pr_capture *cap, int64_t *rev, char msg[256])
{
	const struct pr_store_op **keep = NULL;
	struct pr_etcd_cmp *cmp = NULL;
	struct pr_etcd_op *ops = NULL, *reads = NULL;
	uint8_t **keys = NULL;
	char *raised = NULL;
	size_t nkeep = 0, ncmp = 0, nops = 0, nkeys = 0, nputs = 0;
	struct pr_etcd_txn t = { 0 };
	struct pr_etcd_txn_res res = { 0 };
	int rc = 0;

	*rev = 0;
	if (cap->err != 0) {
		snprintf(
		    msg, 256, "the agent could not record the change: %s", pr_strerror(cap->err));
		return cap->err == -ENOMEM ? -ENOMEM : PR_ESTORE;
	}
	if (cap->nops == 0 && cap->nguards == 0) {
		return 0;
	}
	keep = calloc(cap->nops + 1, sizeof *keep);
	cmp = calloc(cap->nguards + cap->nops + 1, sizeof *cmp);
	ops = calloc(cap->nops + cap->nguards + 1, sizeof *ops);
	reads = calloc(cap->nguards + cap->nops + 1, sizeof *reads);
	keys = calloc(2 * cap->nguards + cap->nops + 1, sizeof *keys);
	raised = guards_raised(cap);
	if (keep == NULL || cmp == NULL || ops == NULL || reads == NULL || keys == NULL
	    || raised == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* The last write of each key, sources first (the read indexes apply a
	 * revision's changes in order, and a record needs its source). */
	for (int pass = 0; pass < 2; pass++) {
		size_t first = nkeep;

		for (size_t i = cap->nops; i-- > 0;) {
			const struct pr_store_op *op = &cap->ops[i];
			int dup = 0;

			if ((op->key[0] == 's') != (pass == 0)) {
				continue;
			}
			for (size_t j = 0; j < nkeep && !dup; j++) {
				dup = same_key(keep[j], op);
			}
			if (!dup) {
				keep[nkeep++] = op;
			}
		}
		/* Found from the last: back to the order they were written in
		 * (a revision's events come in it: seqs rise). */
		for (size_t i = first, j = nkeep; i + 1 < j; i++, j--) {
			const struct pr_store_op *x = keep[i];

			keep[i] = keep[j - 1];
			keep[j - 1] = x;
		}
	}
	for (size_t i = 0; i < nkeep; i++) {
		const struct pr_store_op *op = keep[i];
		size_t klen;

		if ((keys[nkeys] = key_join(r, "r/", op->key, op->key_len, &klen)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		ops[nops++]
		    = (struct pr_etcd_op) { .type = op->val != NULL ? PR_ETCD_PUT : PR_ETCD_DELETE,
			      .key = keys[nkeys],
			      .key_len = klen,
			      .value = op->val,
			      .value_len = op->val_len };
		if (op->create_only) {
			/* A request_id recorded once: another agent may have
			 * recorded it meanwhile (a redelivery). */
			cmp[ncmp++] = (struct pr_etcd_cmp) { .key = keys[nkeys],
				.key_len = klen,
				.target = PR_ETCD_CREATE,
				.result = PR_ETCD_EQUAL,
				.number = 0 };
		}
		nputs += op->val != NULL;
		nkeys++;
	}
	for (size_t i = 0; i < cap->nguards; i++) {
		const struct pr_store_guard *g = &cap->guards[i];
		size_t klen;

		if ((keys[nkeys] = key_join(r, "r/", g->key, g->key_len, &klen)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		cmp[ncmp++] = (struct pr_etcd_cmp) { .key = keys[nkeys],
			.key_len = klen,
			.target = PR_ETCD_MOD,
			.result = PR_ETCD_EQUAL,
			.number = g->rev };
		if (raised[i]) {
			ops[nops++] = (struct pr_etcd_op) { .type = PR_ETCD_PUT,
				.key = keys[nkeys],
				.key_len = klen,
				.value = "",
				.value_len = 0 };
			nputs++;
		}
		nkeys++;
	}
	/* When a compare fails, etcd's answer tells how far the read index
	 * must catch up: the revisions of the keys compared (etcd's own
	 * revision may be ahead of anything the watch will bring). */
	for (size_t i = 0; i < ncmp; i++) {
		reads[i] = (struct pr_etcd_op) { .type = PR_ETCD_RANGE,
			.key = cmp[i].key,
			.key_len = cmp[i].key_len,
			.keys_only = 1 };
	}
	if (nops > r->max_ops || ncmp > r->max_ops) {
		snprintf(msg, 256,
		    "the change needs %zu writes and %zu compares in one etcd transaction, more "
		    "than "
		    "--etcd-max-txn-ops %zu (raise it with etcd's --max-txn-ops)",
		    nops, ncmp, r->max_ops);
		rc = 2;
		goto out;
	}
	t.cmp = cmp;
	t.n_cmp = ncmp;
	t.success = ops;
	t.n_success = nops;
	t.failure = reads;
	t.n_failure = ncmp;
	rc = pr__etcd_txn(r->etcd, &t, &res);
	if (rc != 0) {
		rc = store_err(rc, "a commit", msg);
		goto out;
	}
	if (res.succeeded) {
		/* Only a put surely made a revision; a txn that compared, or
		 * deleted keys that were gone, answers etcd's current one, which
		 * may be another agent's change. */
		*rev = nputs > 0 ? res.revision : 0;
		rc = 0;
	} else {
		for (size_t i = 0; i < res.n_res; i++) {
			for (size_t j = 0; j < res.res[i].n_kvs; j++) {
				int64_t m = res.res[i].kvs[j].mod_revision;

				*rev = m > *rev ? m : *rev;
			}
		}
		/* (None there: a key compared absent now exists, or the
		 * reverse; the next revision at least.) */
		*rev = *rev > r->applied ? *rev : r->applied + 1;
		rc = 1;
	}
	pr__etcd_txn_res_release(&res);
out:
	for (size_t i = 0; i < nkeys; i++) {
		free(keys[i]);
	}
	free(keys);
	free(keep);
	free(cmp);
	free(ops);
	free(reads);
	free(raised);
	return rc;
}

/* ---- the publisher ---- */

/*
 * The keepalive thread: while this agent holds the publisher's lease, keep
 * it alive every ttl/5 on a handle of its own, so that a worker busy with
 * a slow batch does not let it lapse. leader, lease and valid_until are
 * shared with the worker under ka_mu.
 */
static void *
keepalive_main(void *arg)
{
	struct pr_replica *r = arg;

	pthread_mutex_lock(&r->ka_mu);
	while (!r->ka_stop) {
		int64_t lease = r->leader ? r->lease : 0, ttl = 0, t0 = mono_us(), until;
		struct timespec ts;

		if (lease != 0) {
			int rc;

			pthread_mutex_unlock(&r->ka_mu);
			rc = pr__etcd_lease_keepalive(r->ka, lease, &ttl);
			pthread_mutex_lock(&r->ka_mu);
			if (r->leader && r->lease == lease) {
				if (rc == 0 && ttl > 0) {
					r->valid_until = t0 + ttl * 1000000 - MARGIN_US;
				} else if (rc == 0 || rc == PR__ETCD_ENOLEASE) {
					r->ended = 1; /* the worker says so and campaigns */
					r->valid_until = 0;
				}
			}
		}
		until = pr_time_now() + r->ttl_s * 1000000 / 5;
		ts = (struct timespec) { .tv_sec = (time_t)(until / 1000000),
			.tv_nsec = (long)(until % 1000000) * 1000 };
		if (!r->ka_stop) {
			pthread_cond_timedwait(&r->ka_cv, &r->ka_mu, &ts);
		}
	}
	pthread_mutex_unlock(&r->ka_mu);
	return NULL;
}

/* Give a lease up (revoking it deletes r/P when it held it). */
static void
lease_drop(struct pr_replica *r, int64_t lease)
{
	if (lease != 0) {
		(void)pr__etcd_lease_revoke(r->ctl, lease);
	}
}

/* Is the read index able to catch up (a watch runs)? A new publisher
 * republishes from it: never from one that cannot. */
static int
healthy(struct pr_replica *r)
{
	int final;

	pthread_mutex_lock(&r->mu);
	final = r->final;
	pthread_mutex_unlock(&r->mu);
	return !r->rewatch && !r->need_full && final == 0 && r->watch != NULL;
}

int
pr__replica_campaign(struct pr_replica *r, uint64_t *epoch, int64_t *rev)
{
	int64_t t0 = mono_us(), granted = 0, lease;
	uint8_t *key;
	size_t klen;
	struct pr_etcd_cmp cmp = { 0 };
	struct pr_etcd_op put = { 0 };
	struct pr_etcd_txn t = { &cmp, 1, &put, 1, NULL, 0 };
	struct pr_etcd_txn_res res = { 0 };
	int rc;

	pthread_mutex_lock(&r->ka_mu);
	if (r->leader && (r->ended || t0 >= r->valid_until)) {
		pr_warn("replica: %s: this agent stops publishing",
		    r->ended ? "the publisher's lease has ended"
		             : "no keepalive of the publisher's lease succeeded in time");
		r->leader = 0;
		r->ended = 0;
		r->next_due = 0;
	}
	if (r->leader) {
		/* Publishing: nothing to do but see that the lease holds. */
		r->next_due = t0 + LEADER_CHECK_US;
		pthread_mutex_unlock(&r->ka_mu);
		return 0;
	}
	if (t0 < r->next_due) {
		pthread_mutex_unlock(&r->ka_mu);
		return 0;
	}
	pthread_mutex_unlock(&r->ka_mu);
	/* Another publishes: try again every so often, and at once when the
	 * watch shows its key gone (apply_one). */
	r->next_due = t0 + CAMPAIGN_EVERY;
	if (!healthy(r)) {
		return 0;
	}
	/* A fresh lease each time: an old one may be about to end. */
	if ((rc = pr__etcd_lease_grant(r->ctl, r->ttl_s, &lease, &granted)) != 0) {
		return 0;
	}
	if ((key = key_of(r, "r/P", 3, &klen)) == NULL) {
		lease_drop(r, lease);
		return 0;
	}
	cmp = (struct pr_etcd_cmp) {
		.key = key, .key_len = klen, .target = PR_ETCD_CREATE, .result = PR_ETCD_EQUAL
	};
	put = (struct pr_etcd_op) { .type = PR_ETCD_PUT,
		.key = key,
		.key_len = klen,
		.value = r->instance,
		.value_len = strlen(r->instance),
		.lease = lease };
	rc = pr__etcd_txn(r->ctl, &t, &res);
	free(key);
	if (rc != 0 || !res.succeeded || mono_us() >= t0 + granted * 1000000 - MARGIN_US) {
		/* Lost, or the answer lost (it may have won: revoking ends that
		 * too), or won too late to publish safely: give it back. */
		pr__etcd_txn_res_release(&res);
		lease_drop(r, lease);
		return 0;
	}
	*epoch = (uint64_t)res.revision;
	*rev = res.revision;
	pr__etcd_txn_res_release(&res);
	pthread_mutex_lock(&r->ka_mu);
	r->lease = lease;
	r->valid_until = t0 + granted * 1000000 - MARGIN_US;
	r->ended = 0;
	r->leader = 1;
	pthread_cond_signal(&r->ka_cv);
	pthread_mutex_unlock(&r->ka_mu);
	(void)pr__store_local_put(r->st, "publisher_lease", (uint64_t)lease);
	pr_info("replica: this agent publishes now (epoch %lld)", (long long)*rev);
	return 1;
}

int
pr__replica_is_publisher(struct pr_replica *r)
{
	int yes;

	pthread_mutex_lock(&r->ka_mu);
	yes = r->leader && !r->ended && mono_us() < r->valid_until;
	pthread_mutex_unlock(&r->ka_mu);
	return yes;
}

int64_t
pr__replica_due_in(const struct pr_replica *r)
{
	int64_t left = r->next_due - mono_us();

	return left < 0 ? 0 : left;
}

int
pr__replica_request_resync(struct pr_replica *r, const char *source)
{
	size_t klen = 0;
	uint8_t *key = key_of(r, "r/x", 3, &klen);
	struct pr_etcd_op op = { .type = PR_ETCD_PUT,
		.key = key,
		.key_len = klen,
		.value = source != NULL ? source : "",
		.value_len = source != NULL ? strlen(source) : 0 };
	struct pr_etcd_res res;
	int rc;

	if (key == NULL) {
		return -ENOMEM;
	}
	rc = pr__etcd_do(r->ctl, &op, &res);
	free(key);
	if (rc != 0) {
		return store_err(rc, "a republish request", NULL);
	}
	pr__etcd_res_release(&res);
	return 0;
}

void
pr__replica_resign(struct pr_replica *r)
{
	int64_t lease = 0;

	pthread_mutex_lock(&r->ka_mu);
	if (r->leader) {
		lease = r->lease;
	}
	r->leader = 0;
	r->lease = 0;
	pthread_mutex_unlock(&r->ka_mu);
	lease_drop(r, lease);
}

/* ---- open, close ---- */

/* The shared secret: etcd's, or a new one if etcd has none yet. */
static int
shared_secret(struct pr_replica *r, uint8_t secret[32])
{
	size_t klen = 0;
	uint8_t *key = key_of(r, "secret", 6, &klen);
	int rc = key != NULL ? 0 : -ENOMEM;

	for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
		struct pr_etcd_op get = { .type = PR_ETCD_RANGE, .key = key, .key_len = klen };
		struct pr_etcd_res res;
		uint8_t mine[32];

		if ((rc = pr__etcd_do(r->etcd, &get, &res)) != 0) {
			break;
		}
		if (res.n_kvs == 1 && res.kvs[0].value_len == 32) {
			memcpy(secret, res.kvs[0].value, 32);
			pr__etcd_res_release(&res);
			free(key);
			return 0;
		}
		if (res.n_kvs == 1) {
			pr_error("replica: etcd's %ssecret is %zu bytes, not 32: not partreg's",
			    r->prefix, res.kvs[0].value_len);
			pr__etcd_res_release(&res);
			free(key);
			return PR_ESTORE;
		}
		pr__etcd_res_release(&res);
		if (getrandom(mine, sizeof mine, 0) != sizeof mine) {
			rc = PR_EINTERNAL;
			break;
		}
		{
			struct pr_etcd_cmp cmp = { .key = key,
				.key_len = klen,
				.target = PR_ETCD_CREATE,
				.result = PR_ETCD_EQUAL,
				.number = 0 };
			struct pr_etcd_op put = { .type = PR_ETCD_PUT,
				.key = key,
				.key_len = klen,
				.value = mine,
				.value_len = sizeof mine };
			struct pr_etcd_txn t = { &cmp, 1, &put, 1, NULL, 0 };
			struct pr_etcd_txn_res tres;

			/* Whoever comes first sets it; the others read it again. */
			if ((rc = pr__etcd_txn(r->etcd, &t, &tres)) != 0) {
				break;
			}
			pr__etcd_txn_res_release(&tres);
		}
	}
	free(key);
	return rc != 0 ? store_err(rc, "reading the shared secret", NULL) : PR_ESTORE;
}

/* The registry a secret stands for, and this boot of the machine, as
 * numbers the read index keeps (store.h's local values). */
static uint64_t
registry_of(const uint8_t secret[32])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v = v << 8 | secret[i];
	}
	return v | 1;
}

static uint64_t
boot_of(void)
{
	char id[64] = "";
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	if (f != NULL) {
		if (fgets(id, sizeof id, f) == NULL) {
			id[0] = '\0';
		}
		fclose(f);
	}
	for (const char *p = id; *p != '\0'; p++) {
		h = (h ^ (uint8_t)*p) * 1099511628211u;
	}
	return h;
}

/*
 * May the read index be resumed? Not when it was written for another
 * registry (etcd rebuilt: another secret), nor when the machine restarted
 * since it was last written and it was not closed cleanly: it is written
 * without fsync, so a machine crash may have torn it. Then a full copy.
 */
static void
trust_check(struct pr_replica *r, const uint8_t secret[32])
{
	uint64_t registry = 0, boot = 0, clean = 0;

	if (pr__store_local_get(r->st, "registry", &registry) != 0
	    || pr__store_local_get(r->st, "boot", &boot) != 0
	    || pr__store_local_get(r->st, "clean", &clean) != 0 || registry == 0) {
		return; /* new (or from before these were kept) */
	}
	if (registry != registry_of(secret)) {
		pr_warn("replica: the read index holds another registry (etcd rebuilt?): a full "
		        "copy follows");
		r->need_full = 1;
	} else if (!clean && boot != boot_of()) {
		pr_warn("replica: the machine restarted since the read index was last written, "
		        "and it was not closed cleanly: a full copy follows");
		r->need_full = 1;
	}
}

/* This agent's epoch: the revision of its put to <prefix>epoch. */
static int
take_epoch(struct pr_replica *r)
{
	size_t klen = 0;
	uint8_t *key = key_of(r, "epoch", 5, &klen);
	struct pr_etcd_op put = { .type = PR_ETCD_PUT,
		.key = key,
		.key_len = klen,
		.value = r->instance,
		.value_len = strlen(r->instance) };
	struct pr_etcd_res res;
	int rc;

	if (key == NULL) {
		return -ENOMEM;
	}
	rc = pr__etcd_do(r->etcd, &put, &res);
	free(key);
	if (rc != 0) {
		return store_err(rc, "taking an epoch", NULL);
	}
	r->epoch = (uint64_t)res.revision;
	pr__etcd_res_release(&res);
	return 0;
}

/* A lease an earlier run of this agent (this read index: one process at a
 * time) published under is surely unused: end it, so that a restarted
 * publisher does not wait out its own lease. */
static void
end_last_lease(struct pr_replica *r)
{
	uint64_t lease = 0;

	if (pr__store_local_get(r->st, "publisher_lease", &lease) == 0 && lease != 0) {
		int rc = pr__etcd_lease_revoke(r->etcd, (int64_t)lease);

		if (rc == 0) {
			pr_info("replica: ended the publisher's lease of this agent's last run");
		}
		(void)pr__store_local_put(r->st, "publisher_lease", 0);
	}
}

/* Bring the read index up to etcd (a full copy when it has nothing) and
 * start the watch. */
static int
sync_start(struct pr_replica *r)
{
	struct pr_txn *txn;
	int64_t applied = 0;
	int rc;

	if ((rc = pr__txn_begin(r->st, 0, &txn)) != 0) {
		return rc;
	}
	rc = pr__store_applied_get(txn, &applied);
	pr__txn_abort(txn);
	if (rc != 0) {
		return rc;
	}
	r->applied = applied;
	if (applied == 0) {
		r->need_full = 1;
	} else if (!r->need_full && (rc = watch_start(r, applied + 1)) != 0) {
		return rc;
	}
	for (int i = 0; r->need_full && i < 3; i++) {
		struct pr_changes ch;
		int any;

		pr__changes_init(&ch);
		if ((rc = pr__txn_begin(r->st, 1, &txn)) == 0) {
			rc = pr__replica_apply(r, txn, &ch, &any);
			rc = rc == 0 ? pr__txn_commit(txn) : (pr__txn_abort(txn), rc);
		}
		pr__changes_release(&ch);
		if (rc != 0) {
			return rc;
		}
		pr__replica_applied_commit(r);
	}
	if (r->watch == NULL) {
		pr_error(
		    "replica: cannot watch etcd from revision %lld", (long long)r->applied + 1);
		return PR_ESTORE;
	}
	pr_info("replica: read index at etcd revision %lld", (long long)r->applied);
	return 0;
}

int
pr__replica_open(const struct pr_replica_opts *o, struct pr_store *st, struct pr_replica **out)
{
	struct pr_etcd_opts eo = { 0 };
	struct pr_replica *r = calloc(1, sizeof *r);
	uint8_t secret[32];
	int rc;

	*out = NULL;
	if (r == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_mutex_init(&r->ka_mu, NULL);
	pthread_cond_init(&r->ka_cv, NULL);
	r->tail = &r->head;
	r->st = st;
	r->ttl_s = o->publisher_ttl_s > 0 ? o->publisher_ttl_s : 4;
	r->max_ops = o->max_txn_ops > 0 ? o->max_txn_ops : 128;
	r->wake = o->wake;
	r->wake_arg = o->wake_arg;
	r->instance = strdup(o->instance);
	r->prefix = strdup(o->prefix);
	if (r->instance == NULL || r->prefix == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	r->plen = strlen(r->prefix);
	/* (The etcd handles keep their own copies of these.) */
	eo.endpoints = o->endpoints;
	eo.ca_file = o->ca_file;
	eo.cert_file = o->cert_file;
	eo.key_file = o->key_file;
	eo.user = o->user;
	eo.password = o->password;
	if ((rc = pr__etcd_open(&eo, &r->etcd)) == 0) {
		eo.connect_timeout_ms = 300;
		eo.request_timeout_ms = 800;
		if ((rc = pr__etcd_open(&eo, &r->ctl)) == 0) {
			rc = pr__etcd_open(&eo, &r->ka);
		}
	}
	if (rc != 0) {
		pr_error("replica: bad --etcd %s", o->endpoints);
		rc = PR_EFIELD;
		goto fail;
	}
	if ((rc = shared_secret(r, secret)) != 0 || (rc = take_epoch(r)) != 0) {
		goto fail;
	}
	pr__store_set_epoch(st, r->epoch);
	end_last_lease(r);
	trust_check(r, secret);
	/* After the sync: a full copy clears the store, the secret too. */
	if ((rc = sync_start(r)) != 0 || (rc = pr__store_set_secret(st, secret)) != 0
	    || (rc = pr__store_local_put(st, "registry", registry_of(secret))) != 0
	    || (rc = pr__store_local_put(st, "boot", boot_of())) != 0
	    || (rc = pr__store_local_put(st, "clean", 0)) != 0) {
		goto fail;
	}
	if (pthread_create(&r->ka_thread, NULL, keepalive_main, r) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	r->ka_started = 1;
	*out = r;
	return 0;
fail:
	pr__replica_close(r);
	return rc;
}

uint64_t
pr__replica_epoch(const struct pr_replica *r)
{
	return r->epoch;
}

void
pr__replica_close(struct pr_replica *r)
{
	if (r == NULL) {
		return;
	}
	if (r->ka_started) {
		pthread_mutex_lock(&r->ka_mu);
		r->ka_stop = 1;
		pthread_cond_signal(&r->ka_cv);
		pthread_mutex_unlock(&r->ka_mu);
		pthread_join(r->ka_thread, NULL);
	}
	pr__etcd_watch_close(r->watch);
	if (r->watch != NULL || r->applied != 0) {
		/* Everything on disk: the next start may trust the read index
		 * even after a reboot. */
		(void)pr__store_local_put(r->st, "clean", 1);
	}
	pr__etcd_close(r->etcd);
	pr__etcd_close(r->ctl);
	pr__etcd_close(r->ka);
	changes_free(r->head);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->ka_mu);
	pthread_cond_destroy(&r->ka_cv);
	free(r->instance);
	free(r->prefix);
	free(r);
}
