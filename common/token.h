/* SPDX-License-Identifier: MIT */
/*
 * Access tokens: random UUIDv4 text (libuuid), handed out once; the store
 * keeps only SHA-256 digests (libcrypto); checks compare digests in constant
 * time. No function here logs a token.
 */
#ifndef PR_TOKEN_H
#define PR_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <partreg/protocol.h>

#define PR_DIGEST_LEN 32

/* Make a new random token: 36 characters plus NUL into out. Returns 0 or -errno. */
int pr__token_new(char out[PR_TOKEN_LEN + 1]);

/* SHA-256 of token[0..len) into digest. Returns 0 or PR_EINTERNAL. */
int pr__token_digest(const char *token, size_t len, uint8_t digest[PR_DIGEST_LEN]);

/*
 * Does token[0..len) hash to digest? Constant time in the digest comparison.
 * Returns 1 when it matches, 0 otherwise.
 */
int pr__token_matches(const char *token, size_t len, const uint8_t digest[PR_DIGEST_LEN]);

/*
 * Idempotency records keep a command's first reply, and the reply of
 * source/register, provider/register or source/rotate-token holds a token.
 * So the store never sees a request_id or a reply in clear: the record is
 * keyed by pr__idem_key (hex SHA-256 of the request_id, 64 characters plus
 * NUL) and the reply is encrypted with pr__idem_crypt (AES-256-CTR, key and
 * IV derived from the request_id by SHA-256 with distinct labels; CTR is
 * its own inverse, so the same call decrypts). Whoever knows the request_id
 * can read its reply, as the client who sent it; a copy of the store alone
 * reveals no token.
 */
int pr__idem_key(const char *request_id, char out[2 * PR_DIGEST_LEN + 1]);
/* Encrypt or decrypt buf[0..len) in place. Returns 0 or PR_EINTERNAL. */
int pr__idem_crypt(const char *request_id, void *buf, size_t len);

#endif
