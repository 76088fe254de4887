/* SPDX-License-Identifier: MIT */
/*
 * pr_topic_matches, by table: the examples of MQTT 5.0 section 4.7 (and
 * mosquitto's own matching tests), then partreg's filters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <partreg/topic.h>

static const struct {
	const char *filter, *topic;
	int match;
} cases[] = {
	/* 4.7.1.2: multi-level wildcard */
	{ "sport/tennis/player1/#", "sport/tennis/player1", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1 },
	{ "sport/#", "sport", 1 }, /* the parent level too */
	{ "sport/#", "sport/", 1 },
	{ "#", "sport/tennis", 1 },
	{ "#", "/", 1 },
	{ "foo/#", "foo", 1 },
	{ "foo/#", "foobar", 0 },
	{ "foo/#", "fo", 0 },
	{ "foo/bar/#", "foo", 0 },
	{ "sport/tennis#", "sport/tennis", 0 }, /* malformed: '#' shares a level */
	{ "sport/tennis/#/ranking", "sport/tennis/x/ranking", 0 }, /* '#' not last */
	/* 4.7.1.3: single-level wildcard */
	{ "sport/tennis/+", "sport/tennis/player1", 1 },
	{ "sport/tennis/+", "sport/tennis/player2", 1 },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
	{ "sport/+", "sport", 0 },
	{ "sport/+", "sport/", 1 },
	{ "+", "sport", 1 },
	{ "+/tennis/#", "sport/tennis", 1 },
	{ "sport+", "sport", 0 }, /* malformed */
	{ "+/+", "/finance", 1 },
	{ "/+", "/finance", 1 },
	{ "+", "/finance", 0 },
	{ "+/+/+", "a//c", 1 },
	/* 4.7.2: topics starting with '$' */
	{ "#", "$SYS/broker", 0 },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", 0 },
	{ "$SYS/#", "$SYS/monitor/Clients", 1 },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", 1 },
	/* literal levels compare exactly */
	{ "a/b", "a/b", 1 },
	{ "a/b", "a/bc", 0 },
	{ "a/bc", "a/b", 0 },
	{ "a/b", "a/b/", 0 },
	{ "a/b/", "a/b", 0 },
	{ "", "", 1 },
	{ "a", "", 0 },
	/* partreg's own filters */
	{ "partreg/v1/state/+", "partreg/v1/state/orders", 1 },
	{ "partreg/v1/state/+", "partreg/v1/state/orders/p/x", 0 },
	{ "partreg/v1/state/orders/#", "partreg/v1/state/orders", 1 },
	{ "partreg/v1/events/#", "partreg/v1/events/caf\xc3\xa9", 1 },
	{ "partreg/v1/cmd/+/+", "partreg/v1/cmd/partition/lock", 1 },
};

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = pr_topic_matches(cases[i].filter, cases[i].topic);

		if (got != cases[i].match) {
			fail_msg("filter \"%s\" topic \"%s\": got %d, want %d", cases[i].filter,
			    cases[i].topic, got, cases[i].match);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
