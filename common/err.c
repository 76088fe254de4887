/* SPDX-License-Identifier: MIT */
/*
 * The one table of partreg errors. Indexed by err - PR_ERRBASE, so its order
 * must follow enum pr_err; a static assertion checks the count.
 */
#include <partreg/error.h>

#include <string.h>

struct errdef {
	const char *code;
	int status;
	const char *message;
};

static const struct errdef errdefs[] = {
	{ "invalid_json", 400, "payload is not a strict JSON object" },
	{ "invalid_field", 400, "a field has the wrong type or is out of range" },
	{ "missing_field", 400, "a required field is missing" },
	{ "invalid_name", 400,
	    "names are 1-200 bytes of UTF-8 without control characters, '/', "
	    "'+', '#', or a leading '$'" },
	{ "invalid_time", 400,
	    "times are RFC 3339, e.g. 2023-01-01T00:00:00Z or "
	    "2023-01-01 00:00:00 (UTC when no offset)" },
	{ "invalid_interval", 422, "start must be before end" },
	{ "payload_too_large", 413, "payload exceeds the agent's size limit" },
	{ "unknown_command", 404, "no such command" },
	{ "unauthorized", 401, "a valid access_token is required" },
	{ "forbidden", 403, "this token does not grant access to that source or provider" },
	{ "unknown_source", 404, "no such source; register it with source/register" },
	{ "unknown_provider", 404,
	    "no such provider for this source; register it with provider/register" },
	{ "unknown_partition", 404, "no such partition" },
	{ "source_exists", 409, "a source with this name is already registered" },
	{ "provider_exists", 409, "this provider is already registered for the source" },
	{ "already_locked", 409, "the partition is locked by another run" },
	{ "not_locked", 409, "the partition is not locked" },
	{ "invalid_state", 409, "the partition's state does not allow this command" },
	{ "stale_fence", 409, "the fence is older than the partition's current lock" },
	{ "request_id_conflict", 409, "this request_id was already used for another command" },
	{ "invalid_cursor", 400, "the cursor is not one this agent returned" },
	{ "invalid_reply_topic", 400, "the reply topic must be under the reply prefix" },
	{ "not_found", 404, "not found" },
	{ "store_full", 507,
	    "the store is full: free space on the agent's disk or raise --map-size; nothing of "
	    "this "
	    "batch was applied" },
	{ "store_unavailable", 503, "the store failed; see the agent's log" },
	{ "internal", 500, "internal error; see the agent's log" },
	{ "lease_expired", 409,
	    "the lock's lease ran out; the partition is failed: lock it again to retry" },
	{ "store_unavailable", 503,
	    "the store's answer was lost: the command may or may not have been applied; send it "
	    "again with the same request_id" },
};

_Static_assert(sizeof errdefs / sizeof errdefs[0] == PR_ERRLAST - PR_ERRBASE + 1,
    "errdefs must list every enum pr_err value in order");

static const struct errdef *
lookup(int err)
{
	if (err >= PR_ERRBASE && err <= PR_ERRLAST) {
		return &errdefs[err - PR_ERRBASE];
	}
	return NULL;
}

const char *
pr_strerror(int err)
{
	const struct errdef *d = lookup(err);

	if (err == 0) {
		return "success";
	}
	if (d != NULL) {
		return d->message;
	}
	return strerror(-err);
}

const char *
pr_err_code(int err)
{
	const struct errdef *d = lookup(err);

	return d != NULL ? d->code : "internal";
}

int
pr_err_status(int err)
{
	const struct errdef *d = lookup(err);

	if (err == 0) {
		return 200;
	}
	return d != NULL ? d->status : 500;
}
