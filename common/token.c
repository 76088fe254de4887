/* SPDX-License-Identifier: MIT */
/*
 * Access tokens: 122 random bits as UUIDv4 text, stored only as SHA-256.
 *
 * The random bytes come from getrandom(2), not uuid_generate_random():
 * libuuid's generator returns void and, when the kernel source fails, quietly
 * falls back to rand()/jrand48 seeded from pid and time (util-linux 2.38
 * randutils.c; only the internal __uuid_generate_random reports it). A token
 * must be unguessable, so failure has to be an error here. libuuid still
 * writes the text (uuid_unparse_lower), and the version/variant bits are set
 * exactly as it sets them.
 *
 * Digests are compared with CRYPTO_memcmp so the time taken does not depend
 * on where the first differing byte is. Nothing here logs a token.
 */
#include "token.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uuid/uuid.h>

int
pr__token_new(char out[PR_TOKEN_LEN + 1])
{
	uuid_t u;
	size_t got = 0;

	while (got < sizeof u) {
		ssize_t n = getrandom(u + got, sizeof u - got, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		got += (size_t)n;
	}
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
	uuid_unparse_lower(u, out);
	return 0;
}

int
pr__token_digest(const char *token, size_t len, uint8_t digest[PR_DIGEST_LEN])
{
	unsigned int n = 0;

	if (token == NULL && len != 0) {
		return PR_EINTERNAL;
	}
	/* EVP_Digest: the one-shot form; no context to leak on error paths. */
	if (EVP_Digest(token, len, digest, &n, EVP_sha256(), NULL) != 1 || n != PR_DIGEST_LEN) {
		return PR_EINTERNAL;
	}
	return 0;
}

int
pr__token_matches(const char *token, size_t len, const uint8_t digest[PR_DIGEST_LEN])
{
	uint8_t d[PR_DIGEST_LEN];

	if (pr__token_digest(token, len, d) != 0) {
		return 0;
	}
	return CRYPTO_memcmp(d, digest, PR_DIGEST_LEN) == 0;
}

void
pr__digest_hex(const uint8_t digest[PR_DIGEST_LEN], char out[2 * PR_DIGEST_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < PR_DIGEST_LEN; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[2 * PR_DIGEST_LEN] = '\0';
}
