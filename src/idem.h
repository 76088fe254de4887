/* SPDX-License-Identifier: MIT */
/*
 * Idempotency: the first reply to a write's request_id, kept so that a
 * retry is answered rather than applied again, and never handed to anyone
 * who did not send that very command.
 *
 * A record is bound to the command's name and to a digest of its whole
 * canonical body: every field the command was decoded with, the access
 * token included, in a fixed order (pr__idem_body). request_id,
 * correlation_id and reply_to are left out: they say how to answer, not
 * what to do, and a retry from a new connection may change them. So:
 *
 *   - same request_id, same command, same body: the stored reply, replayed;
 *   - same request_id, anything else (another command, another partition,
 *     another or no token): request_id_conflict, and nothing of the
 *     stored reply.
 *
 * In the store nothing is in clear. The record's key is a digest of a
 * per-store secret (32 random bytes kept in the store's meta, made on first
 * use) and the request_id; the body digest is kept as a digest of the
 * secret and the body; the reply is encrypted (AES-256-CTR, a random IV per
 * record) under a key derived from the secret, the request_id and the body.
 * A request_id alone opens nothing; a copy of the store opens a reply only
 * together with the whole body of the command, so a reply whose command
 * carries a token (provider/register, source/rotate-token) stays sealed.
 * source/register carries no secret of its own (its body, name and owner,
 * is public), so its record is also bound to the reply topic's first level
 * under P/reply/ (the user name under the shipped ACL, which lets each user
 * read only its own replies): a replay goes only where the first reply
 * could be read. Its request_id should be random all the same (the CLI's
 * and libpartreg's are).
 */
#ifndef PR_IDEM_H
#define PR_IDEM_H

#include <stdint.h>

#include "decode.h"
#include "publisher.h"
#include "store.h"
#include "token.h"

struct pr_idem {
	uint8_t secret[PR_DIGEST_LEN]; /* the store's (pr__store_secret) */
	const char *reply_prefix;      /* "P/reply/" */
};

/* The canonical body digest of cmd (see above), whose reply goes to
 * reply_topic (NULL: none). 0 or PR_EINTERNAL. */
int pr__idem_body(const struct pr_idem *id, const struct pr_cmd *cmd, const char *reply_topic,
    uint8_t out[PR_DIGEST_LEN]);

/*
 * Look cmd's request_id up (cmd->has_request_id must be set; r->topic is
 * where the reply goes). Returns 0
 * when the request_id is new (nothing written to r); 1 when r now holds
 * an error reply (request_id_conflict, or the store's error); 2 when r
 * holds the replayed first reply.
 */
int pr__idem_lookup(
    const struct pr_idem *id, struct pr_txn *txn, const struct pr_cmd *cmd, struct pr_reply *r);

/* Keep r, the first reply to cmd, sealed. 0, or the store's error
 * (PR_EMAPFULL, PR_ESTORE, -ENOMEM, PR_EINTERNAL). */
int pr__idem_remember(const struct pr_idem *id, struct pr_txn *txn, const struct pr_cmd *cmd,
    const struct pr_reply *r, int64_t now);

#endif
