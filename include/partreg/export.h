/* SPDX-License-Identifier: MIT */
/*
 * PR_API marks each function of libpartreg's public API. The library is
 * built with hidden visibility, so these are the only symbols its shared
 * object exports (as NNG's NNG_DECL); every other cross-file symbol of the
 * library is named pr__* and stays inside it.
 */
#ifndef PARTREG_EXPORT_H
#define PARTREG_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define PR_API extern __attribute__((visibility("default")))
#else
#define PR_API extern
#endif

#endif
