/* SPDX-License-Identifier: MIT */
/* partreg: the CLI (being written). */
#include <stdio.h>

int
main(void)
{
	fputs("partreg: not built yet\n", stderr);
	return 2;
}
