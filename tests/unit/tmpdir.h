/* SPDX-License-Identifier: MIT */
/*
 * A scratch directory for the store tests (test_store.c, test_handlers.c,
 * test_idem.c): made under $TMPDIR (/tmp when unset), removed with all it
 * holds. Include after <cmocka.h>.
 */
#ifndef PR_TEST_TMPDIR_H
#define PR_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static inline int
tmpdir_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A new directory "<TMPDIR>/<name>.XXXXXX" into out. */
static inline void
tmpdir_make(char out[1024], const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, 1024, "%s/%s.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", name);
	assert_non_null(mkdtemp(out));
}

static inline void
tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
