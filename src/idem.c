/* SPDX-License-Identifier: MIT */
/*
 * See idem.h. A record's value, as the store keeps it after the command
 * name: tag (32 bytes: SHA-256 of label, secret, body digest) | iv (16) |
 * the reply, AES-256-CTR under SHA-256 of label, secret, request_id, body
 * digest. Every digest starts with its own NUL-terminated label, so no two
 * derivations can meet.
 */
#include "idem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <partreg/error.h>

#include "encode.h"
#include "log.h"

#define IV_LEN   16
#define HEAD_LEN (PR_DIGEST_LEN + IV_LEN)

/* One field of the canonical body: name, its length, its bytes. */
static int
field(EVP_MD_CTX *ctx, const char *name, const void *v, size_t len)
{
	uint8_t n[8];

	for (int i = 0; i < 8; i++) {
		n[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	return EVP_DigestUpdate(ctx, name, strlen(name) + 1) == 1
	    && EVP_DigestUpdate(ctx, n, sizeof n) == 1 && EVP_DigestUpdate(ctx, v, len) == 1;
}

static int
field_str(EVP_MD_CTX *ctx, int has, const char *name, const char *v)
{
	return !has || field(ctx, name, v, strlen(v));
}

static int
field_int(EVP_MD_CTX *ctx, int has, const char *name, int64_t v)
{
	char text[32];

	return !has
	    || field(ctx, name, text, (size_t)snprintf(text, sizeof text, "%lld", (long long)v));
}

/* The first level of topic under prefix ("" when not under it). */
static size_t
reply_user(const char *prefix, const char *topic, const char **user)
{
	size_t n = strlen(prefix);

	*user = "";
	if (topic == NULL || strncmp(topic, prefix, n) != 0) {
		return 0;
	}
	*user = topic + n;
	return strcspn(*user, "/");
}

int
pr__idem_body(const struct pr_idem *id, const struct pr_cmd *c, const char *reply_topic,
    uint8_t out[PR_DIGEST_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const char *name = pr__cmd_name(c->kind), *user;
	size_t ulen = reply_user(id->reply_prefix, reply_topic, &user);
	unsigned int n = 0;
	int ok = ctx != NULL && name != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
	    && field(ctx, "partreg idem body", name, strlen(name))
	    && (c->kind != PR_CMD_SOURCE_REGISTER || field(ctx, "reply_user", user, ulen))
	    && field_str(ctx, c->has_access_token, "access_token", c->access_token)
	    && field_str(ctx, 1, "source", c->source) && field_str(ctx, 1, "owner", c->owner)
	    && field_str(ctx, c->has_provider, "provider", c->provider)
	    && field_int(ctx, c->has_range, "start", c->range.start)
	    && field_int(ctx, c->has_range, "end", c->range.end)
	    && field_int(ctx, c->has_ttl_s, "ttl_s", c->ttl_s)
	    && field_str(ctx, c->has_session, "session", c->session)
	    && field_int(ctx, c->has_fence, "fence", (int64_t)c->fence)
	    && field_str(ctx, c->has_reason, "reason", c->reason)
	    && field_int(ctx, c->has_grace_s, "grace_s", c->grace_s)
	    && field_str(ctx, c->has_metadata, "metadata", c->metadata)
	    && field_int(ctx, c->has_limit, "limit", (int64_t)c->limit)
	    && field_str(ctx, c->has_cursor, "cursor", c->cursor)
	    && field_int(ctx, c->has_since_seq, "since_seq", (int64_t)c->since_seq)
	    && field_int(ctx, c->has_from, "from", c->from)
	    && field_int(ctx, c->has_to, "to", c->to) && EVP_DigestFinal_ex(ctx, out, &n) == 1
	    && n == PR_DIGEST_LEN;

	EVP_MD_CTX_free(ctx);
	return ok ? 0 : PR_EINTERNAL;
}

/* SHA-256 of label, the secret and up to two more parts. */
static int
derive(const char *label, const struct pr_idem *id, const void *a, size_t alen, const void *b,
    size_t blen, uint8_t out[PR_DIGEST_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
	    && EVP_DigestUpdate(ctx, label, strlen(label) + 1) == 1
	    && EVP_DigestUpdate(ctx, id->secret, sizeof id->secret) == 1 && field(ctx, "a", a, alen)
	    && field(ctx, "b", b, blen) && EVP_DigestFinal_ex(ctx, out, &n) == 1
	    && n == PR_DIGEST_LEN;

	EVP_MD_CTX_free(ctx);
	return ok ? 0 : PR_EINTERNAL;
}

/* The record's key: hex of a digest of the secret and the request_id. */
static int
record_key(const struct pr_idem *id, const char *request_id, char out[2 * PR_DIGEST_LEN + 1])
{
	uint8_t d[PR_DIGEST_LEN];

	if (derive("partreg idem key", id, request_id, strlen(request_id), "", 0, d) != 0) {
		return PR_EINTERNAL;
	}
	pr__digest_hex(d, out);
	return 0;
}

/* Encrypt or decrypt buf[0..len) in place (CTR is its own inverse). */
static int
seal(const struct pr_idem *id, const char *request_id, const uint8_t body[PR_DIGEST_LEN],
    const uint8_t iv[IV_LEN], void *buf, size_t len)
{
	uint8_t key[PR_DIGEST_LEN];
	EVP_CIPHER_CTX *ctx = NULL;
	int n = 0,
	    ok = len <= INT32_MAX
	    && derive("partreg idem cipher", id, request_id, strlen(request_id), body,
	           PR_DIGEST_LEN, key)
	        == 0;

	ok = ok && (ctx = EVP_CIPHER_CTX_new()) != NULL
	    && EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, iv) == 1
	    && EVP_EncryptUpdate(ctx, buf, &n, buf, (int)len) == 1 && (size_t)n == len;
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof key);
	return ok ? 0 : PR_EINTERNAL;
}

int
pr__idem_lookup(
    const struct pr_idem *id, struct pr_txn *txn, const struct pr_cmd *cmd, struct pr_reply *r)
{
	char command[64], key[2 * PR_DIGEST_LEN + 1], msg[256];
	uint8_t body[PR_DIGEST_LEN], tag[PR_DIGEST_LEN];
	const char *name = pr__cmd_name(cmd->kind);
	char *stored = NULL;
	size_t len = 0;
	int rc = record_key(id, cmd->request_id, key);

	if (rc == 0) {
		rc = pr__store_idem_get(txn, key, command, &stored, &len);
	}
	if (rc == PR_ENOTFOUND) {
		return 0;
	}
	if (rc == 0 && len < HEAD_LEN) {
		pr_error("idem: corrupt record for a request_id");
		rc = PR_ESTORE;
	}
	if (rc == 0) {
		rc = pr__idem_body(id, cmd, r->topic, body);
	}
	if (rc == 0) {
		rc = derive("partreg idem tag", id, body, sizeof body, "", 0, tag);
	}
	if (rc != 0) {
		free(stored);
		pr__reply_error(r, rc, NULL);
		return 1;
	}
	if (strcmp(command, name) != 0 || CRYPTO_memcmp(tag, stored, PR_DIGEST_LEN) != 0) {
		free(stored);
		if (strcmp(command, name) != 0) {
			snprintf(msg, sizeof msg,
			    "request_id '%s' was already used for %s; use a new request_id for "
			    "each "
			    "operation",
			    cmd->request_id, command);
		} else {
			snprintf(msg, sizeof msg,
			    "request_id '%s' was already used for %s with other fields or another "
			    "token; use a new request_id for each operation",
			    cmd->request_id, command);
		}
		pr__reply_error(r, PR_EREQID, msg);
		return 1;
	}
	rc = seal(id, cmd->request_id, body, (uint8_t *)stored + PR_DIGEST_LEN, stored + HEAD_LEN,
	    len - HEAD_LEN);
	if (rc == 0) {
		r->payload = pr__reply_replayed(stored + HEAD_LEN, len - HEAD_LEN,
		    cmd->has_correlation_id ? cmd->correlation_id : NULL, &r->len);
		rc = r->payload != NULL ? 0 : PR_EINTERNAL;
	}
	OPENSSL_cleanse(stored, len);
	free(stored);
	if (rc != 0) {
		pr__reply_error(r, rc, NULL);
		return 1;
	}
	pr_debug("idem: request_id %s replayed", cmd->request_id);
	return 2;
}

int
pr__idem_remember(const struct pr_idem *id, struct pr_txn *txn, const struct pr_cmd *cmd,
    const struct pr_reply *r, int64_t now)
{
	char key[2 * PR_DIGEST_LEN + 1];
	uint8_t body[PR_DIGEST_LEN];
	uint8_t *rec = malloc(HEAD_LEN + r->len);
	int rc = rec != NULL ? 0 : -ENOMEM;

	if (rc == 0) {
		rc = record_key(id, cmd->request_id, key);
	}
	if (rc == 0) {
		rc = pr__idem_body(id, cmd, r->topic, body);
	}
	if (rc == 0) {
		rc = derive("partreg idem tag", id, body, sizeof body, "", 0, rec);
	}
	if (rc == 0 && getrandom(rec + PR_DIGEST_LEN, IV_LEN, 0) != IV_LEN) {
		rc = PR_EINTERNAL;
	}
	if (rc == 0) {
		memcpy(rec + HEAD_LEN, r->payload, r->len);
		rc = seal(id, cmd->request_id, body, rec + PR_DIGEST_LEN, rec + HEAD_LEN, r->len);
	}
	if (rc == 0) {
		rc = pr__store_idem_put(
		    txn, key, pr__cmd_name(cmd->kind), (const char *)rec, HEAD_LEN + r->len, now);
	}
	if (rec != NULL) {
		OPENSSL_cleanse(rec, HEAD_LEN + r->len);
	}
	free(rec);
	return rc;
}
