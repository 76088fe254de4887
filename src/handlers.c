/* SPDX-License-Identifier: MIT */
/*
 * The registry's rules, one function per command.
 *
 * Every change takes the source's next seq, so a source's seq numbers order
 * all its changes; every lock takes the source's next fence, so fences rise
 * with every lock and never repeat, even across partitions. A change is
 * written to the store, appended to the source's event log, and recorded in
 * the caller's pr_changes so the agent publishes it after the commit.
 *
 * Tokens: source/register and provider/register return a token exactly
 * once; the store keeps its SHA-256 digest. Writes accept the source owner's
 * token, and partition writes also that provider's token. A missing token
 * or one that is neither is refused with 401 (telling a token of another
 * source or provider apart, for 403, needs a digest index: issue 3).
 */
#include "handlers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>
#include <partreg/interval.h>
#include "lease.h"
#include <partreg/time.h>
#include "token.h"

/* ---- changes ---- */

void
pr__changes_init(struct pr_changes *c)
{
	memset(c, 0, sizeof *c);
}

void
pr__changes_release(struct pr_changes *c)
{
	free(c->events);
	free(c->parts);
	free(c->sources);
	free(c->resync);
	memset(c, 0, sizeof *c);
}

struct pr_changes_mark
pr__changes_mark(const struct pr_changes *c)
{
	return (struct pr_changes_mark) { c->nevents, c->nparts, c->nsources, c->nresync,
		c->resync_all };
}

void
pr__changes_rewind(struct pr_changes *c, struct pr_changes_mark m)
{
	c->nevents = m.nevents;
	c->nparts = m.nparts;
	c->nsources = m.nsources;
	c->nresync = m.nresync;
	c->resync_all = m.resync_all;
}

/* Make room for one more element of size sz in *arr (count n, capacity *cap). */
static int
grow(void *arr, size_t n, size_t *cap, size_t sz)
{
	void **p = arr;
	size_t ncap;
	void *np;

	if (n < *cap) {
		return 0;
	}
	ncap = *cap != 0 ? *cap * 2 : 8;
	np = realloc(*p, ncap * sz);
	if (np == NULL) {
		return -ENOMEM;
	}
	*p = np;
	*cap = ncap;
	return 0;
}

static int
add_name(char (**arr)[PR_NAME_MAX + 1], size_t *n, size_t *cap, const char *name)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*arr)[i], name) == 0) {
			return 0;
		}
	}
	if (grow(arr, *n, cap, sizeof **arr) != 0) {
		return -ENOMEM;
	}
	snprintf((*arr)[(*n)++], PR_NAME_MAX + 1, "%s", name);
	return 0;
}

int
pr__changes_add_part(struct pr_changes *c, const struct pr_partition *p)
{
	/* Keep only the latest state of a partition changed twice in a batch. */
	for (size_t i = 0; i < c->nparts; i++) {
		struct pr_partition *q = &c->parts[i];

		if (q->range.start == p->range.start && q->range.end == p->range.end
		    && strcmp(q->provider, p->provider) == 0 && strcmp(q->source, p->source) == 0) {
			*q = *p;
			return 0;
		}
	}
	if (grow(&c->parts, c->nparts, &c->cap_parts, sizeof *c->parts) != 0) {
		return -ENOMEM;
	}
	c->parts[c->nparts++] = *p;
	return 0;
}

int
pr__changes_add_event(struct pr_changes *c, const struct pr_event *ev)
{
	if (grow(&c->events, c->nevents, &c->cap_events, sizeof *c->events) != 0) {
		return -ENOMEM;
	}
	c->events[c->nevents++] = *ev;
	return 0;
}

int
pr__changes_add_source(struct pr_changes *c, const char *name)
{
	return add_name(&c->sources, &c->nsources, &c->cap_sources, name);
}

int
pr__changes_add_resync(struct pr_changes *c, const char *name)
{
	return add_name(&c->resync, &c->nresync, &c->cap_resync, name);
}

/* ---- helpers ---- */

static int fail(char msg[256], int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Write a message for a person into msg and return err. */
static int
fail(char msg[256], int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, 256, fmt, ap);
	va_end(ap);
	return err;
}

/* Take the next seq of src, append ev (seq, at, source filled here) to the
 * log and the changes, and save src. */
static int
record(struct pr_txn *txn, struct pr_source *src, struct pr_event *ev, int64_t now,
    struct pr_changes *ch)
{
	int rc;

	src->seq++;
	src->updated_at = now;
	ev->seq = src->seq;
	ev->at = now;
	snprintf(ev->source, sizeof ev->source, "%s", src->name);
	if ((rc = pr__store_source_put(txn, src)) != 0
	    || (rc = pr__store_event_append(txn, src, ev)) != 0) {
		return rc;
	}
	if (pr__changes_add_event(ch, ev) != 0 || pr__changes_add_source(ch, src->name) != 0) {
		return -ENOMEM;
	}
	return 0;
}

static int
load_source(struct pr_txn *txn, const char *name, struct pr_source *src, char msg[256])
{
	int rc = pr__store_source_get(txn, name, src);

	if (rc == PR_ENOSOURCE) {
		return fail(
		    msg, rc, "no source named '%s'; register it with source/register", name);
	}
	return rc;
}

/*
 * The token matched neither the owner's nor (for partition writes) the
 * provider's digest: 403 when it is a valid token of another source or
 * provider, 401 otherwise.
 */
static int
refuse_token(struct pr_txn *txn, const struct pr_cmd *cmd, const char *wanted, char msg[256])
{
	char source[PR_NAME_MAX + 1], provider[PR_NAME_MAX + 1];
	uint8_t digest[PR_DIGEST_LEN];

	if (pr__token_digest(cmd->access_token, strlen(cmd->access_token), digest) == 0
	    && pr__store_token_get(txn, digest, source, provider) == 0) {
		return fail(msg, PR_EFORBIDDEN,
		    "access_token belongs to another source or provider; this needs %s", wanted);
	}
	return fail(msg, PR_EUNAUTH, "access_token is not valid; this needs %s", wanted);
}

static int
check_owner(
    struct pr_txn *txn, const struct pr_cmd *cmd, const struct pr_source *src, char msg[256])
{
	char wanted[PR_NAME_MAX + 64];

	snprintf(wanted, sizeof wanted, "the owner token of source '%s'", src->name);
	if (!cmd->has_access_token) {
		return fail(msg, PR_EUNAUTH, "no access_token: this command needs %s", wanted);
	}
	if (!pr__token_matches(cmd->access_token, strlen(cmd->access_token), src->token_digest)) {
		return refuse_token(txn, cmd, wanted, msg);
	}
	return 0;
}

/* A partition write: the source owner's token or the provider's own. */
static int
check_writer(struct pr_txn *txn, const struct pr_cmd *cmd, const struct pr_source *src,
    const struct pr_provider *prov, char msg[256])
{
	size_t tlen = strlen(cmd->access_token);
	char wanted[2 * PR_NAME_MAX + 80];

	snprintf(wanted, sizeof wanted, "the token of source '%s' or of its provider '%s'",
	    src->name, prov->name);
	if (!cmd->has_access_token) {
		return fail(msg, PR_EUNAUTH, "no access_token: this command needs %s", wanted);
	}
	if (pr__token_matches(cmd->access_token, tlen, src->token_digest)
	    || pr__token_matches(cmd->access_token, tlen, prov->token_digest)) {
		return 0;
	}
	return refuse_token(txn, cmd, wanted, msg);
}

/* A new token into token, its digest into digest. */
static int
new_token(char token[PR_TOKEN_LEN + 1], uint8_t digest[PR_DIGEST_LEN])
{
	int rc = pr__token_new(token);

	return rc != 0 ? rc : pr__token_digest(token, strlen(token), digest);
}

/* Load source and provider and check the writer's token. */
static int
partition_prelude(struct pr_txn *txn, const struct pr_cmd *cmd, struct pr_source *src,
    struct pr_provider *prov, char msg[256])
{
	int rc = load_source(txn, cmd->source, src, msg);

	if (rc != 0) {
		return rc;
	}
	rc = pr__store_provider_get(txn, src, cmd->provider, prov);
	if (rc == PR_ENOPROVIDER) {
		return fail(msg, rc,
		    "provider '%s' is not registered for source '%s'; register it with "
		    "provider/register",
		    cmd->provider, cmd->source);
	}
	if (rc != 0) {
		return rc;
	}
	return check_writer(txn, cmd, src, prov, msg);
}

static void
event_for(struct pr_event *ev, const char *type, const struct pr_partition *p)
{
	memset(ev, 0, sizeof *ev);
	snprintf(ev->type, sizeof ev->type, "%s", type);
	snprintf(ev->provider, sizeof ev->provider, "%s", p->provider);
	ev->range = p->range;
	ev->state = p->state;
	ev->fence = p->fence;
	ev->version = p->version;
	snprintf(ev->reason, sizeof ev->reason, "%s", p->reason);
}

/* Save p with the source's next seq, log the event, note the change. */
static int
save_partition(struct pr_txn *txn, struct pr_source *src, struct pr_partition *p, const char *type,
    int64_t now, struct pr_changes *ch)
{
	struct pr_event ev;
	int rc;

	p->seq = src->seq + 1; /* record() takes this seq next */
	p->updated_at = now;
	rc = pr__store_partition_put(txn, src, p);
	if (rc != 0) {
		return rc;
	}
	event_for(&ev, type, p);
	rc = record(txn, src, &ev, now, ch);
	if (rc != 0) {
		return rc;
	}
	return pr__changes_add_part(ch, p) != 0 ? -ENOMEM : 0;
}

static void
new_partition(struct pr_partition *p, const struct pr_cmd *cmd, int64_t now)
{
	memset(p, 0, sizeof *p);
	snprintf(p->source, sizeof p->source, "%s", cmd->source);
	snprintf(p->provider, sizeof p->provider, "%s", cmd->provider);
	p->range = cmd->range;
	p->state = PR_PENDING;
	p->since = now;
}

static int
describe_holder(char msg[256], const struct pr_partition *p)
{
	char since[PR_TIME_BUFSZ];

	snprintf(msg, 256, "the partition is already locked (fence %llu, since %s)%s",
	    (unsigned long long)p->fence, pr_time_format(p->since, since),
	    p->session[0] != '\0' ? " by a session" : "");
	return PR_ELOCKED;
}

static int
check_fence(const struct pr_cmd *cmd, const struct pr_partition *p, char msg[256])
{
	if (cmd->has_fence && cmd->fence != p->fence) {
		return fail(msg, PR_ESTALE,
		    "fence %llu is not the partition's current lock (fence %llu); another run "
		    "locked it since",
		    (unsigned long long)cmd->fence, (unsigned long long)p->fence);
	}
	return 0;
}

/* ---- commands ---- */

/*
 * Give src a new owner token (indexed by digest), record the change as an
 * event of type, and answer with the source and the token: the one time it
 * is shown. Shared by source/register and source/rotate-token.
 */
static int
issue_owner_token(struct pr_txn *txn, struct pr_source *src, const char *type, int64_t now,
    struct pr_changes *ch, struct pr_json **result)
{
	char token[PR_TOKEN_LEN + 1];
	struct pr_event ev;
	int rc;

	if ((rc = new_token(token, src->token_digest)) != 0
	    || (rc = pr__store_token_put(txn, src->token_digest, src->name, "")) != 0) {
		return rc;
	}
	memset(&ev, 0, sizeof ev);
	snprintf(ev.type, sizeof ev.type, "%s", type);
	rc = record(txn, src, &ev, now, ch);
	if (rc == 0) {
		*result = pr__json_source(src, token);
	}
	memset(token, 0, sizeof token);
	return rc;
}

static int
h_source_register(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now, struct pr_changes *ch,
    struct pr_json **result, char msg[256])
{
	struct pr_source src;
	int rc = pr__store_source_get(txn, cmd->source, &src);

	if (rc == 0) {
		return fail(msg, PR_ESOURCE_EXISTS,
		    "source '%s' is already registered (owner '%s'); its token was returned "
		    "to the first registration only",
		    src.name, src.owner);
	}
	if (rc != PR_ENOSOURCE) {
		return rc;
	}
	memset(&src, 0, sizeof src);
	snprintf(src.name, sizeof src.name, "%s", cmd->source);
	snprintf(src.owner, sizeof src.owner, "%s", cmd->owner);
	src.created_at = now;
	return issue_owner_token(txn, &src, "source_registered", now, ch, result);
}

static int
h_source_get(struct pr_txn *txn, const struct pr_cmd *cmd, struct pr_json **result, char msg[256])
{
	struct pr_source src;
	int rc = load_source(txn, cmd->source, &src, msg);

	if (rc == 0) {
		*result = pr__json_source(&src, NULL);
	}
	return rc;
}

static int
list_source_cb(void *arg, const struct pr_source *s)
{
	pr__json_append(arg, pr__json_source(s, NULL));
	return 0;
}

static size_t
page_limit(const struct pr_cmd *cmd, const struct pr_handler_opts *opts)
{
	return cmd->has_limit ? cmd->limit : opts->list_default;
}

static int
h_source_list(struct pr_txn *txn, const struct pr_cmd *cmd, const struct pr_handler_opts *opts,
    struct pr_json **result)
{
	struct pr_json *items = pr__json_array();
	char next[PR_CURSOR_MAX];
	int rc = pr__store_source_list(txn, cmd->has_cursor ? cmd->cursor : NULL,
	    page_limit(cmd, opts), list_source_cb, items, next);

	if (rc != 0) {
		pr__json_free(items);
		return rc;
	}
	*result = pr__json_page(items, next);
	return 0;
}

/*
 * The source a provider/register names, or without one (as the original
 * HTTP service's /providers/register), the source whose owner token it
 * carries.
 */
static int
owner_source(
    struct pr_txn *txn, const struct pr_cmd *cmd, char name[PR_NAME_MAX + 1], char msg[256])
{
	char provider[PR_NAME_MAX + 1];
	uint8_t digest[PR_DIGEST_LEN];
	int rc;

	if (cmd->source[0] != '\0') {
		snprintf(name, PR_NAME_MAX + 1, "%s", cmd->source);
		return 0;
	}
	if (!cmd->has_access_token) {
		return fail(msg, PR_EUNAUTH,
		    "no source and no access_token: provider/register needs the source's owner "
		    "token, which also names the source");
	}
	rc = pr__token_digest(cmd->access_token, strlen(cmd->access_token), digest);
	if (rc == 0) {
		rc = pr__store_token_get(txn, digest, name, provider);
	}
	if (rc == PR_ENOTFOUND) {
		return fail(msg, PR_EUNAUTH,
		    "access_token is not valid; provider/register needs the owner token of a "
		    "source");
	}
	if (rc == 0 && provider[0] != '\0') {
		return fail(msg, PR_EFORBIDDEN,
		    "access_token is provider '%s''s token of source '%s'; provider/register needs "
		    "the source's owner token",
		    provider, name);
	}
	return rc;
}

static int
h_provider_register(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now,
    struct pr_changes *ch, struct pr_json **result, char msg[256])
{
	struct pr_source src;
	struct pr_provider prov;
	struct pr_event ev;
	char token[PR_TOKEN_LEN + 1];
	char name[PR_NAME_MAX + 1];
	int rc = owner_source(txn, cmd, name, msg);

	if (rc != 0 || (rc = load_source(txn, name, &src, msg)) != 0
	    || (rc = check_owner(txn, cmd, &src, msg)) != 0) {
		return rc;
	}
	rc = pr__store_provider_get(txn, &src, cmd->provider, &prov);
	if (rc == 0) {
		return fail(msg, PR_EPROVIDER_EXISTS,
		    "provider '%s' is already registered for source '%s'", cmd->provider, src.name);
	}
	if (rc != PR_ENOPROVIDER) {
		return rc;
	}
	memset(&prov, 0, sizeof prov);
	snprintf(prov.name, sizeof prov.name, "%s", cmd->provider);
	prov.created_at = now;
	if ((rc = new_token(token, prov.token_digest)) != 0
	    || (rc = pr__store_token_put(txn, prov.token_digest, src.name, prov.name)) != 0
	    || (rc = pr__store_provider_put(txn, &src, &prov)) != 0) {
		return rc;
	}
	memset(&ev, 0, sizeof ev);
	snprintf(ev.type, sizeof ev.type, "provider_registered");
	snprintf(ev.provider, sizeof ev.provider, "%s", prov.name);
	rc = record(txn, &src, &ev, now, ch);
	if (rc != 0) {
		return rc;
	}
	*result = pr__json_provider(src.name, &prov, token);
	memset(token, 0, sizeof token);
	return 0;
}

/* Turn an expired lock into a failed partition (reason lease_expired). */
static int
expire(struct pr_txn *txn, struct pr_source *src, struct pr_partition *p, int64_t now,
    struct pr_changes *ch)
{
	p->state = PR_FAILED;
	p->since = now;
	p->expires_at = 0;
	p->session[0] = '\0';
	snprintf(p->reason, sizeof p->reason, "%s", PR_LEASE_REASON);
	return save_partition(txn, src, p, "failed", now, ch);
}

/* Did p's lease run out: still locked past the deadline, or failed by it? */
static int
lease_ran_out(const struct pr_partition *p, int64_t now)
{
	return pr__lease_expired(p, now)
	    || (p->state == PR_FAILED && strcmp(p->reason, PR_LEASE_REASON) == 0);
}

static int
lease_over(char msg[256], const struct pr_partition *p)
{
	char at[PR_TIME_BUFSZ];

	/* Still locked: the deadline; already failed by it: when that happened. */
	return fail(msg, PR_ELEASE,
	    "the lease ran out at %s; the partition is failed (lease_expired): lock it again",
	    pr_time_format(p->state == PR_LOCKED ? p->expires_at : p->since, at));
}

/*
 * Renew and unlock act on the caller's own live lock: its fence (when
 * given), a lease that has not run out, a partition still locked; hint
 * ends the not_locked message.
 */
static int
check_live_lock(const struct pr_cmd *cmd, const struct pr_partition *p, int64_t now,
    const char *hint, char msg[256])
{
	int rc = check_fence(cmd, p, msg);

	if (rc != 0) {
		return rc;
	}
	if (lease_ran_out(p, now)) {
		return lease_over(msg, p);
	}
	if (p->state != PR_LOCKED) {
		return fail(msg, PR_ENOTLOCKED, "the partition is %s, not locked; %s",
		    pr__pstate_name(p->state), hint);
	}
	return 0;
}

static int
h_partition_write(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now,
    const struct pr_handler_opts *opts, struct pr_changes *ch, struct pr_json **result,
    char msg[256])
{
	struct pr_source src;
	struct pr_provider prov;
	struct pr_partition p;
	const char *type = NULL;
	int rc = partition_prelude(txn, cmd, &src, &prov, msg);
	int exists;

	if (rc != 0) {
		return rc;
	}
	rc = pr__store_partition_get(txn, &src, cmd->provider, cmd->range, &p);
	if (rc != 0 && rc != PR_ENOPARTITION) {
		return rc;
	}
	/* A deleted partition is gone for every command; register and lock
	 * declare it anew (its version goes on rising). */
	exists = rc == 0 && p.state != PR_DELETED;
	if (!exists && cmd->kind != PR_CMD_PARTITION_REGISTER
	    && cmd->kind != PR_CMD_PARTITION_LOCK) {
		return fail(msg, PR_ENOPARTITION,
		    "provider '%s' has no such partition of source '%s'; lock it first",
		    cmd->provider, cmd->source);
	}
	if (!exists) {
		uint64_t version = rc == 0 ? p.version : 0;

		new_partition(&p, cmd, now);
		p.version = version;
	}

	switch (cmd->kind) {
	case PR_CMD_PARTITION_REGISTER:
		if (exists) {
			/* Declaring an expectation twice changes nothing. */
			*result = pr__json_partition(&p);
			return 0;
		}
		type = "registered";
		break;
	case PR_CMD_PARTITION_LOCK:
		if (exists && pr__lease_expired(&p, now)) {
			/* The holder's lease ran out before the agent noticed: record
			 * its failure first, then take the lock. */
			if ((rc = expire(txn, &src, &p, now, ch)) != 0) {
				return rc;
			}
		} else if (exists && p.state == PR_LOCKED) {
			return describe_holder(msg, &p);
		}
		rc = pr__lease_deadline(
		    &opts->lease, cmd->has_ttl_s, cmd->ttl_s, now, &p.expires_at, msg);
		if (rc != 0) {
			return rc;
		}
		p.state = PR_LOCKED;
		p.fence = ++src.fence;
		p.since = now;
		p.reason[0] = '\0';
		snprintf(p.session, sizeof p.session, "%s", cmd->has_session ? cmd->session : "");
		type = "locked";
		break;
	case PR_CMD_PARTITION_RENEW:
		if ((rc = check_live_lock(cmd, &p, now, "nothing to renew", msg)) != 0) {
			return rc;
		}
		rc = pr__lease_deadline(
		    &opts->lease, cmd->has_ttl_s, cmd->ttl_s, now, &p.expires_at, msg);
		if (rc != 0) {
			return rc;
		}
		type = "renewed";
		break;
	case PR_CMD_PARTITION_UNLOCK:
		if ((rc = check_live_lock(cmd, &p, now, "lock it before unlocking", msg)) != 0) {
			return rc;
		}
		p.state = PR_READY;
		p.version++;
		snprintf(
		    p.metadata, sizeof p.metadata, "%s", cmd->has_metadata ? cmd->metadata : "");
		type = "unlocked";
		break;
	case PR_CMD_PARTITION_FAIL:
		if ((rc = check_fence(cmd, &p, msg)) != 0) {
			return rc;
		}
		if (p.state != PR_LOCKED && p.state != PR_PENDING) {
			return fail(msg, PR_ENOTLOCKED,
			    "the partition is %s; only a pending or locked partition can fail",
			    pr__pstate_name(p.state));
		}
		p.state = PR_FAILED;
		snprintf(p.reason, sizeof p.reason, "%s", cmd->has_reason ? cmd->reason : "failed");
		type = "failed";
		break;
	case PR_CMD_PARTITION_DELETE:
		/* Withdrawing an expectation is the owner's call, not a provider's. */
		if ((rc = check_owner(txn, cmd, &src, msg)) != 0) {
			return rc;
		}
		p.state = PR_DELETED;
		p.reason[0] = '\0';
		type = "deleted";
		break;
	default:
		return PR_EINTERNAL;
	}
	if (p.state != PR_LOCKED) {
		p.expires_at = 0;
		p.session[0] = '\0';
	}
	if (cmd->kind != PR_CMD_PARTITION_RENEW) {
		p.since = now;
	}
	rc = save_partition(txn, &src, &p, type, now, ch);
	if (rc != 0) {
		return rc;
	}
	*result = pr__json_partition(&p);
	return 0;
}

static int
h_rotate_token(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now, struct pr_changes *ch,
    struct pr_json **result, char msg[256])
{
	struct pr_source src;
	int rc = load_source(txn, cmd->source, &src, msg);

	if (rc != 0 || (rc = check_owner(txn, cmd, &src, msg)) != 0) {
		return rc;
	}
	if ((rc = pr__store_token_del(txn, src.token_digest)) != 0 && rc != PR_ENOTFOUND) {
		return rc;
	}
	return issue_owner_token(txn, &src, "token_rotated", now, ch, result);
}

/* Partitions collected from an index walk, written after it. */
struct part_list {
	struct pr_partition *items;
	size_t n, cap;
};

static int
collect_partition(void *arg, const struct pr_partition *p)
{
	struct part_list *l = arg;

	if (grow(&l->items, l->n, &l->cap, sizeof *l->items) != 0) {
		return -ENOMEM;
	}
	l->items[l->n++] = *p;
	return 0;
}

/* Fail one collected lock, if it is still what the walk saw. */
static int
fail_collected(struct pr_txn *txn, const struct pr_partition *seen, const char *reason, int64_t now,
    struct pr_changes *ch, struct pr_partition *out)
{
	struct pr_source src;
	int rc = pr__store_source_get(txn, seen->source, &src);

	if (rc == 0) {
		rc = pr__store_partition_get(txn, &src, seen->provider, seen->range, out);
	}
	if (rc != 0 || out->state != PR_LOCKED || out->fence != seen->fence) {
		return rc != 0 ? rc : PR_ENOTLOCKED;
	}
	if (strcmp(reason, PR_LEASE_REASON) == 0) {
		return pr__lease_expired(out, now) ? expire(txn, &src, out, now, ch)
		                                   : PR_ENOTLOCKED;
	}
	out->state = PR_FAILED;
	out->since = now;
	out->expires_at = 0;
	out->session[0] = '\0';
	snprintf(out->reason, sizeof out->reason, "%s", reason);
	return save_partition(txn, &src, out, "failed", now, ch);
}

static int
h_session_abort(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now, struct pr_changes *ch,
    struct pr_json **result)
{
	struct part_list l = { 0 };
	struct pr_json *failed = pr__json_array();
	int rc = pr__store_session_each(txn, cmd->session, collect_partition, &l);

	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		struct pr_partition p;

		rc = fail_collected(txn, &l.items[i],
		    cmd->has_reason ? cmd->reason : "session_aborted", now, ch, &p);
		if (rc == 0) {
			pr__json_append(failed, pr__json_partition(&p));
		} else if (rc == PR_ENOTLOCKED) {
			rc = 0;
		}
	}
	free(l.items);
	if (rc != 0) {
		pr__json_free(failed);
		return rc;
	}
	*result = pr__json_session_abort(cmd->session, failed, 0);
	return 0;
}

static int
history_cb(void *arg, const struct pr_event *ev)
{
	/* Each event with the epoch of the agent run that made it. */
	pr__json_append(arg, pr__json_event(ev, ev->epoch));
	return 0;
}

static int
h_history_query(struct pr_txn *txn, const struct pr_cmd *cmd, const struct pr_handler_opts *opts,
    struct pr_json **result, char msg[256])
{
	struct pr_source src;
	struct pr_event_filter f = { 0 };
	struct pr_json *events = pr__json_array();
	char next[PR_CURSOR_MAX];
	int rc = load_source(txn, cmd->source, &src, msg);

	f.since_seq = cmd->has_since_seq ? cmd->since_seq : 0;
	f.has_from = cmd->has_from;
	f.from = cmd->from;
	f.has_to = cmd->has_to;
	f.to = cmd->to;
	f.provider = cmd->has_provider ? cmd->provider : NULL;
	if (cmd->has_range) {
		f.range = cmd->range;
	}
	if (rc == 0) {
		rc = pr__store_event_query(txn, &src, &f, cmd->has_cursor ? cmd->cursor : NULL,
		    page_limit(cmd, opts), history_cb, events, next);
	}
	if (rc != 0) {
		pr__json_free(events);
		return rc;
	}
	*result = pr__json_history(events, next);
	return 0;
}

int
pr__handle_expiry(
    struct pr_txn *txn, const struct pr_partition *p, int64_t now, struct pr_changes *changes)
{
	struct pr_changes_mark mark = pr__changes_mark(changes);
	struct pr_partition cur;
	int rc;

	if (!pr__lease_expired(p, now)) {
		return PR_ENOTLOCKED;
	}
	rc = fail_collected(txn, p, PR_LEASE_REASON, now, changes, &cur);
	if (rc != 0) {
		pr__changes_rewind(changes, mark);
	}
	return rc;
}

struct list_ctx {
	struct pr_json *items;
	const char *provider; /* filter, or NULL */
	size_t n;
};

static int
list_part_cb(void *arg, const struct pr_partition *p)
{
	struct list_ctx *lc = arg;

	if (p->state != PR_DELETED
	    && (lc->provider == NULL || strcmp(lc->provider, p->provider) == 0)) {
		pr__json_append(lc->items, pr__json_partition(p));
		lc->n++;
	}
	return 0;
}

static int
h_partition_list(struct pr_txn *txn, const struct pr_cmd *cmd, const struct pr_handler_opts *opts,
    struct pr_json **result, char msg[256])
{
	struct pr_source src;
	struct list_ctx lc
	    = { pr__json_array(), cmd->provider[0] != '\0' ? cmd->provider : NULL, 0 };
	size_t limit = page_limit(cmd, opts);
	char cursor[PR_CURSOR_MAX];
	char next[PR_CURSOR_MAX];
	int rc = load_source(txn, cmd->source, &src, msg);

	snprintf(cursor, sizeof cursor, "%s", cmd->has_cursor ? cmd->cursor : "");
	/* With a provider filter a store page may hold fewer matches: read on
	 * until the page is full or the partitions end. */
	while (rc == 0) {
		rc = pr__store_partition_list(
		    txn, &src, cursor, limit - lc.n, list_part_cb, &lc, next);
		if (rc != 0 || next[0] == '\0' || lc.n >= limit) {
			break;
		}
		memcpy(cursor, next, sizeof cursor);
	}
	if (rc != 0) {
		pr__json_free(lc.items);
		return rc;
	}
	*result = pr__json_page(lc.items, next);
	return 0;
}

/* Growable arrays for a readiness evaluation. */
struct collect {
	struct pr_range *ranges;
	size_t nranges, cap_ranges;
	struct pr_range *blocked;
	struct pr_partition *blockers; /* the first blockers_max, for the reply */
	size_t nblocked, cap_blocked, nlisted, cap_listed, listed_max;
	int oom;
};

static int
collect_range(void *arg, struct pr_range r)
{
	struct collect *c = arg;

	if (grow(&c->ranges, c->nranges, &c->cap_ranges, sizeof *c->ranges) != 0) {
		c->oom = 1;
		return -ENOMEM;
	}
	c->ranges[c->nranges++] = r;
	return 0;
}

static int
collect_blocker(void *arg, const struct pr_partition *p)
{
	struct collect *c = arg;

	if (grow(&c->blocked, c->nblocked, &c->cap_blocked, sizeof *c->blocked) != 0) {
		c->oom = 1;
		return -ENOMEM;
	}
	c->blocked[c->nblocked++] = p->range;
	if (c->nlisted < c->listed_max) {
		if (grow(&c->blockers, c->nlisted, &c->cap_listed, sizeof *c->blockers) != 0) {
			c->oom = 1;
			return -ENOMEM;
		}
		c->blockers[c->nlisted++] = *p;
	}
	return 0;
}

static int
h_readiness_query(struct pr_txn *txn, const struct pr_cmd *cmd, const struct pr_handler_opts *opts,
    struct pr_json **result, char msg[256])
{
	struct pr_source src;
	struct collect c = { .listed_max = opts->blockers_max };
	struct pr_range gaps[64];
	struct pr_readiness r = { .gaps = gaps, .gaps_cap = sizeof gaps / sizeof gaps[0] };
	int rc = load_source(txn, cmd->source, &src, msg);

	if (rc == 0) {
		rc = pr__store_ready_each(txn, &src, cmd->range, collect_range, &c);
	}
	if (rc == 0) {
		rc = pr__store_blockers_each(txn, &src, cmd->range, collect_blocker, &c);
	}
	if (rc == 0) {
		pr_readiness_eval(cmd->range, c.ranges, c.nranges, c.blocked, c.nblocked, &r);
		*result
		    = pr__json_readiness(src.name, cmd->range, &r, c.blockers, c.nlisted, src.seq);
	}
	free(c.ranges);
	free(c.blocked);
	free(c.blockers);
	return rc;
}

static int
h_agent_resync(struct pr_txn *txn, const struct pr_cmd *cmd, struct pr_changes *ch,
    struct pr_json **result, char msg[256])
{
	struct pr_source src;
	int rc;

	if (cmd->source[0] == '\0') {
		ch->resync_all = 1;
	} else {
		if ((rc = load_source(txn, cmd->source, &src, msg)) != 0) {
			return rc;
		}
		if (pr__changes_add_resync(ch, src.name) != 0) {
			return -ENOMEM;
		}
	}
	*result = pr__json_resync(cmd->source[0] != '\0' ? cmd->source : NULL);
	return 0;
}

int
pr__handle(struct pr_txn *txn, const struct pr_cmd *cmd, int64_t now,
    const struct pr_handler_opts *opts, struct pr_changes *changes, struct pr_json **result,
    char msg[256])
{
	struct pr_changes_mark mark = pr__changes_mark(changes);
	int rc;

	msg[0] = '\0';
	*result = NULL;
	switch (cmd->kind) {
	case PR_CMD_SOURCE_REGISTER:
		rc = h_source_register(txn, cmd, now, changes, result, msg);
		break;
	case PR_CMD_SOURCE_GET:
		rc = h_source_get(txn, cmd, result, msg);
		break;
	case PR_CMD_SOURCE_LIST:
		rc = h_source_list(txn, cmd, opts, result);
		break;
	case PR_CMD_PROVIDER_REGISTER:
		rc = h_provider_register(txn, cmd, now, changes, result, msg);
		break;
	case PR_CMD_PARTITION_REGISTER:
	case PR_CMD_PARTITION_LOCK:
	case PR_CMD_PARTITION_RENEW:
	case PR_CMD_PARTITION_UNLOCK:
	case PR_CMD_PARTITION_FAIL:
	case PR_CMD_PARTITION_DELETE:
		rc = h_partition_write(txn, cmd, now, opts, changes, result, msg);
		break;
	case PR_CMD_SOURCE_ROTATE_TOKEN:
		rc = h_rotate_token(txn, cmd, now, changes, result, msg);
		break;
	case PR_CMD_SESSION_ABORT:
		rc = h_session_abort(txn, cmd, now, changes, result);
		break;
	case PR_CMD_HISTORY_QUERY:
		rc = h_history_query(txn, cmd, opts, result, msg);
		break;
	case PR_CMD_PARTITION_LIST:
		rc = h_partition_list(txn, cmd, opts, result, msg);
		break;
	case PR_CMD_READINESS_QUERY:
		rc = h_readiness_query(txn, cmd, opts, result, msg);
		break;
	case PR_CMD_AGENT_RESYNC:
		rc = h_agent_resync(txn, cmd, changes, result, msg);
		break;
	default:
		rc = PR_ECOMMAND;
		break;
	}
	if (rc != 0) {
		pr__json_free(*result);
		*result = NULL;
		pr__changes_rewind(changes, mark);
	} else if (*result == NULL) {
		rc = -ENOMEM;
		pr__changes_rewind(changes, mark);
	}
	return rc;
}
