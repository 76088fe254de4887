/* SPDX-License-Identifier: MIT */
/*
 * Topic matching, level by level: a level of the filter is '+', '#' or
 * literal text compared with the topic's level up to the next '/'. See
 * <partreg/topic.h> for the rules; tests/unit/test_topic.c has the MQTT
 * specification's examples.
 */
#include <partreg/topic.h>

#include <string.h>

/* The length of the level starting at s (up to '/' or the end). */
static size_t
level_len(const char *s)
{
	const char *slash = strchr(s, '/');

	return slash != NULL ? (size_t)(slash - s) : strlen(s);
}

int
pr_topic_matches(const char *filter, const char *topic)
{
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
		return 0;
	}
	for (;;) {
		size_t fl = level_len(filter), tl = level_len(topic);

		if (fl == 1 && filter[0] == '#') {
			return filter[1] == '\0'; /* '#' must be the last level */
		}
		if (fl == 1 && filter[0] == '+') {
			/* any one level, the empty one included */
		} else if (memchr(filter, '+', fl) != NULL || memchr(filter, '#', fl) != NULL) {
			return 0; /* a wildcard sharing its level: malformed */
		} else if (fl != tl || memcmp(filter, topic, fl) != 0) {
			return 0;
		}
		filter += fl;
		topic += tl;
		if (*filter == '\0') {
			return *topic == '\0';
		}
		/* filter has another level: "x/#" still matches a topic "x" */
		if (*topic == '\0') {
			return strcmp(filter, "/#") == 0;
		}
		filter++; /* past '/' */
		topic++;
	}
}
