/* SPDX-License-Identifier: MIT */
/*
 * Tokens: libuuid makes them (uuid_generate_random reads the kernel's
 * random source), libcrypto digests them, CRYPTO_memcmp compares digests in
 * time independent of where they differ. A token is never kept: callers
 * wipe their copy after returning it once.
 */
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uuid/uuid.h>

int
pr_token_new(char out[PR_TOKEN_LEN + 1])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
	return 0;
}

int
pr_token_digest(const char *token, size_t len, uint8_t digest[PR_DIGEST_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(token, len, digest, &n, EVP_sha256(), NULL) != 1 || n != PR_DIGEST_LEN) {
		return PR_EINTERNAL;
	}
	return 0;
}

int
pr_token_matches(const char *token, size_t len, const uint8_t digest[PR_DIGEST_LEN])
{
	uint8_t d[PR_DIGEST_LEN];

	if (pr_token_digest(token, len, d) != 0) {
		return 0;
	}
	return CRYPTO_memcmp(d, digest, PR_DIGEST_LEN) == 0;
}
