/* SPDX-License-Identifier: MIT */
#include "model.h"

const char *
pr__pstate_name(enum pr_pstate s)
{
	switch (s) {
	case PR_PENDING:
		return "pending";
	case PR_LOCKED:
		return "locked";
	case PR_READY:
		return "ready";
	case PR_FAILED:
		return "failed";
	case PR_DELETED:
		return "deleted";
	}
	return "unknown";
}
