/* SPDX-License-Identifier: MIT */
/*
 * The files served as they are: every file of http/www/ at /<its path
 * there> and http/openapi.json at /openapi.json, embedded into the binary
 * at build time (embed.cmake writes the table), so the daemon needs no
 * files at run time. A file missing at build time is simply not served
 * (404).
 */
#ifndef PR_HTTP_ASSETS_H
#define PR_HTTP_ASSETS_H

#include <stddef.h>

struct pr_http_asset {
	const char *path; /* "/app.js" */
	const unsigned char *data;
	size_t len;
};

/* The generated table (assets_data.c). */
extern const struct pr_http_asset pr_http_assets[];
extern const size_t pr_http_nassets;

/* The asset at path, or NULL. */
const struct pr_http_asset *pr_http_asset_find(const char *path);
/* Its Content-Type, from the name's extension. Static. */
const char *pr_http_asset_type(const struct pr_http_asset *a);

#endif
