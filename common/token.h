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

/* digest as 64 lowercase hex characters plus NUL. */
void pr__digest_hex(const uint8_t digest[PR_DIGEST_LEN], char out[2 * PR_DIGEST_LEN + 1]);

#endif
