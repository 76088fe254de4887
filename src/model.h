/* SPDX-License-Identifier: MIT */
/*
 * The registry's records, as plain structs that every module shares: the
 * store persists them, the handlers change them, the encoders write them.
 * Fixed-size text fields keep copies cheap and ownership trivial: every
 * struct here is a value, with no pointers.
 */
#ifndef PR_MODEL_H
#define PR_MODEL_H

#include <stdint.h>

#include <partreg/protocol.h>

#include <partreg/interval.h>
#include "token.h"

#define PR_REASON_MAX   256  /* bytes of a failure reason */
#define PR_METADATA_MAX 1024 /* bytes of unlock metadata JSON text */
#define PR_CURSOR_MAX   1100 /* bytes of an opaque list cursor, NUL included */

struct pr_source {
	uint64_t id; /* internal key, assigned by the store; 0 = new */
	char name[PR_NAME_MAX + 1];
	char owner[PR_NAME_MAX + 1];
	uint8_t token_digest[PR_DIGEST_LEN];
	int64_t created_at;
	int64_t updated_at;
	uint64_t seq;   /* last change number used; strictly increasing */
	uint64_t fence; /* last fence handed out by a lock of this source */
};

struct pr_provider {
	char name[PR_NAME_MAX + 1];
	uint8_t token_digest[PR_DIGEST_LEN];
	int64_t created_at;
};

struct pr_partition {
	char source[PR_NAME_MAX + 1];
	char provider[PR_NAME_MAX + 1];
	struct pr_range range;
	enum pr_pstate state;
	uint64_t version;   /* raised by every unlock */
	uint64_t fence;     /* fence of the latest lock; 0 = never locked */
	int64_t since;      /* when the current state began */
	int64_t expires_at; /* lease deadline while locked; 0 = none */
	int64_t updated_at;
	uint64_t seq;                       /* the source's seq at this partition's last change */
	char session[PR_ID_MAX + 1];        /* "" = none */
	char reason[PR_REASON_MAX + 1];     /* "" = none */
	char metadata[PR_METADATA_MAX + 1]; /* JSON object text; "" = none */
};

/*
 * A run of blockers (store_runs.c): partitions of one provider and one
 * non-ready state whose ranges join into range (touching ones too), count of
 * them. since, expires_at and reason are the partition's own when count is
 * 1, else 0 and "".
 */
struct pr_run {
	struct pr_range range;
	char provider[PR_NAME_MAX + 1];
	enum pr_pstate state;
	uint64_t count;
	int64_t since;
	int64_t expires_at;
	char reason[PR_REASON_MAX + 1];
};

/* One entry of a source's append-only event log. */
struct pr_event {
	uint64_t seq;   /* the source's seq this change took */
	uint64_t epoch; /* the agent's epoch when it happened; 0 on append = the
	                   store's current epoch (pr__store_next_epoch) */
	int64_t at;
	char type[24]; /* "source_registered", "provider_registered", "registered",
	                  "locked", "unlocked", "failed", ... */
	char source[PR_NAME_MAX + 1];
	char provider[PR_NAME_MAX + 1]; /* "" when not about a provider */
	struct pr_range range;          /* {0, 0} when not about a partition */
	enum pr_pstate state;
	uint64_t fence;
	uint64_t version;
	char reason[PR_REASON_MAX + 1];
};

const char *pr__pstate_name(enum pr_pstate s);

#endif
