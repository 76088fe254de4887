/* SPDX-License-Identifier: MIT */
/*
 * Heap strings built with printf formats: topics ("P/cmd/partition/lock"),
 * client ids. One helper for the whole tree instead of per-file concat/join.
 */
#ifndef PR_STRFMT_H
#define PR_STRFMT_H

/* A new string formatted like printf. Caller frees with free(); NULL
 * without memory. */
char *pr__strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
