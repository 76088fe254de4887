/* SPDX-License-Identifier: MIT */
/*
 * MQTT topic filters, as the broker matches them (MQTT 5.0 section 4.7):
 * '+' matches exactly one level (an empty one too), '#' as the last level
 * matches its parent and any number of levels below it ("sport/#" matches
 * "sport"), and a filter starting with a wildcard never matches a topic
 * starting with '$' ("$SYS/...").
 */
#ifndef PARTREG_TOPIC_H
#define PARTREG_TOPIC_H

#include <partreg/export.h>

/*
 * Does topic match filter? Both borrowed, NUL-terminated. 1 or 0; a
 * malformed filter ('#' not alone in the last level, '+' sharing a level
 * with other characters) matches nothing. Pure; any thread.
 */
PR_API int pr_topic_matches(const char *filter, const char *topic);

#endif
