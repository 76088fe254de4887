/* SPDX-License-Identifier: MIT */
/*
 * common/options.c, the option parser of partregd and partreg-http, with a
 * table of its own holding one option of every kind: precedence (config
 * file < environment < flag), each kind's values good and bad, the
 * messages naming the option, both flag spellings, the config file's
 * comments and bad lines, --help and --version before everything, and
 * release. Environment variables use the prefix PRTEST_, so nothing of the
 * caller's environment leaks in; config files go to $TMPDIR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <partreg/error.h>

#include "options.h"

struct cfg {
	char *name;
	char *config;
	size_t size;
	uint32_t u32;
	uint64_t u64;
	int version;
	int verbose;
	int help;
	int show_version;
};

#define O(f) offsetof(struct cfg, f)
static const struct pr_optdef defs[] = {
	{ "name", PR_OPT_STR, O(name), "a string" },
	{ "config", PR_OPT_STR, O(config), "config file" },
	{ "max-size", PR_OPT_SIZE, O(size), "a size" },
	{ "count", PR_OPT_U32, O(u32), "a u32" },
	{ "big", PR_OPT_U64, O(u64), "a u64" },
	{ "mqtt-version", PR_OPT_VERSION, O(version), "5 or 3.1.1" },
	{ "verbose", PR_OPT_FLAG, O(verbose), "a flag" },
	{ "help", PR_OPT_FLAG, O(help), "help" },
	{ "version", PR_OPT_FLAG, O(show_version), "version" },
};
#undef O
static const struct pr_options spec = { "prog", "PRTEST_", defs, sizeof defs / sizeof defs[0] };

static const char *const envs[] = { "PRTEST_NAME", "PRTEST_CONFIG", "PRTEST_MAX_SIZE",
	"PRTEST_COUNT", "PRTEST_BIG", "PRTEST_MQTT_VERSION", "PRTEST_VERBOSE", "PRTEST_HELP" };

static char errbuf[4096];
static char cfgpath[1024];

static int
setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
		unsetenv(envs[i]);
	}
	errbuf[0] = '\0';
	cfgpath[0] = '\0';
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (cfgpath[0] != '\0') {
		unlink(cfgpath);
	}
	return 0;
}

static void
defaults(struct cfg *c)
{
	memset(c, 0, sizeof *c);
	c->name = strdup("default");
	c->size = 10;
	c->u32 = 7;
	c->u64 = 9;
	c->version = 5;
	assert_non_null(c->name);
}

/* Load with argv (NULL-terminated, argv[0] added); the error text lands
 * in errbuf. */
static int
load_v(struct cfg *c, const char *const *args)
{
	char *argv[32];
	int argc = 0, rc;
	FILE *err = fmemopen(errbuf, sizeof errbuf, "w");

	assert_non_null(err);
	argv[argc++] = (char *)"prog";
	while (args[argc - 1] != NULL) {
		assert_true(argc < 31);
		argv[argc] = (char *)args[argc - 1];
		argc++;
	}
	argv[argc] = NULL;
	rc = pr__options_load(&spec, c, argc, argv, err);
	fclose(err);
	return rc;
}

#define LOAD(c, ...) load_v((c), (const char *const[]) { __VA_ARGS__, NULL })

static const char *
config_file(const char *text)
{
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	int fd;

	snprintf(cfgpath, sizeof cfgpath, "%s/test_options.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	fd = mkstemp(cfgpath);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return cfgpath;
}

static void
test_defaults_kept(void **state)
{
	struct cfg c;

	(void)state;
	defaults(&c);
	assert_int_equal(LOAD(&c, NULL), 0);
	assert_string_equal(c.name, "default");
	assert_int_equal(c.size, 10);
	assert_int_equal(c.u32, 7);
	assert_int_equal(c.u64, 9);
	assert_int_equal(c.version, 5);
	assert_false(c.verbose);
	assert_string_equal(errbuf, "");
	pr__options_release(&spec, &c);
}

static void
test_precedence(void **state)
{
	struct cfg c;

	(void)state;
	config_file("name = from-file\ncount = 1\nbig = 100\n");
	defaults(&c);
	assert_int_equal(LOAD(&c, "--config", cfgpath), 0);
	assert_string_equal(c.name, "from-file");
	assert_int_equal(c.u32, 1);
	assert_int_equal(c.u64, 100);
	assert_string_equal(c.config, cfgpath);
	pr__options_release(&spec, &c);

	/* The environment over the file. */
	setenv("PRTEST_NAME", "from-env", 1);
	setenv("PRTEST_COUNT", "2", 1);
	defaults(&c);
	assert_int_equal(LOAD(&c, "--config", cfgpath), 0);
	assert_string_equal(c.name, "from-env");
	assert_int_equal(c.u32, 2);
	assert_int_equal(c.u64, 100);
	pr__options_release(&spec, &c);

	/* A flag over both, wherever it stands. */
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name", "from-flag", "--config", cfgpath), 0);
	assert_string_equal(c.name, "from-flag");
	assert_int_equal(c.u32, 2);
	pr__options_release(&spec, &c);

	/* The config file named by the environment. */
	unsetenv("PRTEST_NAME");
	setenv("PRTEST_CONFIG", cfgpath, 1);
	defaults(&c);
	assert_int_equal(LOAD(&c, NULL), 0);
	assert_string_equal(c.name, "from-file");
	pr__options_release(&spec, &c);
	/* --config over PRTEST_CONFIG. */
	setenv("PRTEST_CONFIG", "/nonexistent/prtest.conf", 1);
	defaults(&c);
	assert_int_equal(LOAD(&c, "--config=", NULL), -2); /* ENOENT: "" is no file */
	pr__options_release(&spec, &c);
	defaults(&c);
	assert_int_equal(LOAD(&c, "--config", cfgpath), 0);
	assert_string_equal(c.name, "from-file");
	pr__options_release(&spec, &c);

	/* The last flag wins. */
	unsetenv("PRTEST_CONFIG");
	defaults(&c);
	assert_int_equal(LOAD(&c, "--count", "3", "--count=4"), 0);
	assert_int_equal(c.u32, 4);
	pr__options_release(&spec, &c);
}

static void
test_both_spellings(void **state)
{
	struct cfg c;

	(void)state;
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name=a=b", "--max-size", "4096", "--big=18446744073709551615",
	                     "--mqtt-version", "3.1.1", "--verbose"),
	    0);
	assert_string_equal(c.name, "a=b"); /* split at the first '=' only */
	assert_int_equal(c.size, 4096);
	assert_true(c.u64 == UINT64_MAX);
	assert_int_equal(c.version, 4);
	assert_true(c.verbose);
	pr__options_release(&spec, &c);
	/* A value may start with "--" when given as the next argument, or
	 * be empty after '='. */
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name", "--count", "--count=0"), 0);
	assert_string_equal(c.name, "--count");
	assert_int_equal(c.u32, 0);
	pr__options_release(&spec, &c);
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name="), 0);
	assert_string_equal(c.name, "");
	pr__options_release(&spec, &c);
}

static void
test_kinds(void **state)
{
	static const struct {
		const char *flag, *value;
		int ok;
	} cases[] = {
		{ "--max-size", "1", 1 },
		{ "--max-size", "0", 0 },
		{ "--max-size", "-1", 0 },
		{ "--max-size", "+5", 0 },
		{ "--max-size", " 5", 0 },
		{ "--max-size", "5 ", 0 },
		{ "--max-size", "5k", 0 },
		{ "--max-size", "", 0 },
		{ "--max-size", "18446744073709551616", 0 },
		{ "--count", "0", 1 },
		{ "--count", "4294967295", 1 },
		{ "--count", "4294967296", 0 },
		{ "--count", "0x10", 0 },
		{ "--count", "1.5", 0 },
		{ "--big", "1", 1 },
		{ "--big", "0", 0 },
		{ "--big", "18446744073709551615", 1 },
		{ "--big", "18446744073709551616", 0 },
		{ "--big", "99999999999999999999999", 0 },
		{ "--mqtt-version", "5", 1 },
		{ "--mqtt-version", "4", 1 },
		{ "--mqtt-version", "3.1.1", 1 },
		{ "--mqtt-version", "3", 0 },
		{ "--mqtt-version", "3.1", 0 },
		{ "--mqtt-version", "5.0", 0 },
		{ "--mqtt-version", "", 0 },
	};
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cfg c;
		int rc;

		defaults(&c);
		rc = LOAD(&c, cases[i].flag, cases[i].value);
		if (cases[i].ok) {
			if (rc != 0) {
				fail_msg(
				    "%s '%s' refused: %s", cases[i].flag, cases[i].value, errbuf);
			}
		} else {
			if (rc != PR_EFIELD) {
				fail_msg("%s '%s' taken", cases[i].flag, cases[i].value);
			}
			snprintf(want, sizeof want,
			    "prog: command line: invalid value '%s' for %s\n", cases[i].value,
			    cases[i].flag + 2);
			assert_string_equal(errbuf, want);
			/* Nothing changed. */
			assert_int_equal(c.size, 10);
			assert_int_equal(c.u32, 7);
			assert_int_equal(c.u64, 9);
			assert_int_equal(c.version, 5);
		}
		pr__options_release(&spec, &c);
	}
}

static void
test_bad_flags(void **state)
{
	static const struct {
		const char *args[3];
		const char *message;
	} cases[] = {
		{ { "--nope", "1" }, "prog: unknown option '--nope' (see --help)\n" },
		{ { "--nope=1" }, "prog: unknown option '--nope=1' (see --help)\n" },
		{ { "--nam", "x" }, "prog: unknown option '--nam' (see --help)\n" },
		{ { "--names", "x" }, "prog: unknown option '--names' (see --help)\n" },
		{ { "-n", "x" }, "prog: unexpected argument '-n' (see --help)\n" },
		{ { "stray" }, "prog: unexpected argument 'stray' (see --help)\n" },
		{ { "--name" }, "prog: option --name needs a value\n" },
		{ { "--verbose", "--count" }, "prog: option --count needs a value\n" },
		{ { "--verbose=yes" }, "prog: option --verbose takes no value\n" },
		{ { "--count", "x" }, "prog: command line: invalid value 'x' for count\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cfg c;

		defaults(&c);
		assert_int_equal(load_v(&c, cases[i].args), PR_EFIELD);
		assert_string_equal(errbuf, cases[i].message);
		pr__options_release(&spec, &c);
	}
}

static void
test_env(void **state)
{
	struct cfg c;

	(void)state;
	setenv("PRTEST_MAX_SIZE", "77", 1);
	setenv("PRTEST_MQTT_VERSION", "3.1.1", 1);
	setenv("PRTEST_BIG", "5", 1);
	/* Flags are command line only. */
	setenv("PRTEST_VERBOSE", "1", 1);
	setenv("PRTEST_HELP", "1", 1);
	defaults(&c);
	assert_int_equal(LOAD(&c, NULL), 0);
	assert_int_equal(c.size, 77);
	assert_int_equal(c.version, 4);
	assert_int_equal(c.u64, 5);
	assert_false(c.verbose);
	assert_false(c.help);
	pr__options_release(&spec, &c);

	setenv("PRTEST_BIG", "0", 1);
	defaults(&c);
	assert_int_equal(LOAD(&c, NULL), PR_EFIELD);
	assert_string_equal(errbuf, "prog: PRTEST_BIG: invalid value '0' for big\n");
	pr__options_release(&spec, &c);
	/* A bad environment is refused even when a flag would override it. */
	defaults(&c);
	assert_int_equal(LOAD(&c, "--big", "3"), PR_EFIELD);
	pr__options_release(&spec, &c);
}

static void
test_config_file(void **state)
{
	struct cfg c;
	char want[2048];

	(void)state;
	config_file("# a comment\n"
	            "\n"
	            "   \t\n"
	            "  name   =   spaced value  # trailing comment\n"
	            "count=3\n"
	            "mqtt-version = 4\n"
	            "max-size = 1024   \r\n"
	            "# name = commented out\n"
	            "big = 12");
	defaults(&c);
	assert_int_equal(LOAD(&c, "--config", cfgpath), 0);
	assert_string_equal(c.name, "spaced value");
	assert_int_equal(c.u32, 3);
	assert_int_equal(c.version, 4);
	assert_int_equal(c.size, 1024);
	assert_int_equal(c.u64, 12); /* the last line needs no newline */
	pr__options_release(&spec, &c);
	unlink(cfgpath);

	static const struct {
		const char *text;
		const char *message; /* after "prog: <path>:" */
	} bad[] = {
		{ "name = a\njust words\n", "2: expected 'key = value'\n" },
		{ "\n\nnope = 1\n", "3: unknown key 'nope'\n" },
		{ "verbose = 1\n", "1: unknown key 'verbose'\n" },
		{ "help = 1\n", "1: unknown key 'help'\n" },
		{ "config = /etc/other\n", "1: unknown key 'config'\n" },
		{ "= 5\n", "1: unknown key ''\n" },
		{ "count = -1\n", "1: invalid value '-1' for count\n" },
		{ "max-size =\n", "1: invalid value '' for max-size\n" },
		{ "name = a # b = c\ncount = x\n", "2: invalid value 'x' for count\n" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		config_file(bad[i].text);
		defaults(&c);
		assert_int_equal(LOAD(&c, "--config", cfgpath), PR_EFIELD);
		snprintf(want, sizeof want, "prog: %.40s:%s", cfgpath, bad[i].message);
		assert_string_equal(errbuf, want);
		pr__options_release(&spec, &c);
		unlink(cfgpath);
	}

	/* A line longer than the reader's buffer is refused, not read as two. */
	{
		static char text[6000];
		size_t n = (size_t)snprintf(text, sizeof text, "name = ");

		memset(text + n, 'x', 4500);
		snprintf(text + n + 4500, sizeof text - n - 4500, "\ncount = 1\n");
		config_file(text);
		defaults(&c);
		assert_int_equal(LOAD(&c, "--config", cfgpath), PR_EFIELD);
		snprintf(want, sizeof want, "prog: %.40s:1: line too long\n", cfgpath);
		assert_string_equal(errbuf, want);
		pr__options_release(&spec, &c);
		unlink(cfgpath);
	}

	/* A file that cannot be read: -errno, the path and the reason. */
	defaults(&c);
	assert_int_equal(LOAD(&c, "--config=/nonexistent/prtest.conf"), -2);
	assert_string_equal(errbuf,
	    "prog: cannot read config file /nonexistent/prtest.conf: No such file or directory\n");
	pr__options_release(&spec, &c);
	cfgpath[0] = '\0';
}

static void
test_help_and_version_first(void **state)
{
	struct cfg c;

	(void)state;
	/* Whatever else is wrong, and before anything is applied. */
	setenv("PRTEST_CONFIG", "/nonexistent/prtest.conf", 1);
	setenv("PRTEST_COUNT", "bad", 1);
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name", "x", "--bogus", "--help", "--count"), 0);
	assert_true(c.help);
	assert_false(c.show_version);
	assert_string_equal(c.name, "default");
	assert_int_equal(c.u32, 7);
	assert_string_equal(errbuf, "");
	pr__options_release(&spec, &c);
	defaults(&c);
	assert_int_equal(LOAD(&c, "stray", "--version"), 0);
	assert_true(c.show_version);
	assert_false(c.help);
	pr__options_release(&spec, &c);
	/* The first of the two. */
	defaults(&c);
	assert_int_equal(LOAD(&c, "--version", "--help"), 0);
	assert_true(c.show_version);
	assert_false(c.help);
	pr__options_release(&spec, &c);
}

static void
test_release(void **state)
{
	struct cfg c;

	(void)state;
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name", "n", "--config=/dev/null"), 0);
	assert_non_null(c.config);
	pr__options_release(&spec, &c);
	assert_null(c.name);
	assert_null(c.config);
	/* Twice, and on what holds no strings: fine. */
	pr__options_release(&spec, &c);
	/* A refused load leaves strings to release too (ASan: no leak). */
	defaults(&c);
	assert_int_equal(LOAD(&c, "--name", "n", "--count", "x"), PR_EFIELD);
	assert_string_equal(c.name, "n");
	pr__options_release(&spec, &c);
}

static void
test_usage_and_secret(void **state)
{
	char out[4096], path[1024];
	FILE *f = fmemopen(out, sizeof out, "w");
	char *s;

	(void)state;
	pr__options_usage(&spec, f);
	fclose(f);
	assert_non_null(strstr(out, "  --max-size            a size [PRTEST_MAX_SIZE]\n"));
	assert_non_null(strstr(out, "  --mqtt-version        5 or 3.1.1 [PRTEST_MQTT_VERSION]\n"));
	assert_non_null(strstr(out, "  --verbose             a flag\n"));

	snprintf(path, sizeof path, "%s", config_file("s3cret\r\nsecond line\n"));
	s = pr__options_read_secret(path);
	assert_string_equal(s, "s3cret");
	free(s);
	unlink(path);
	config_file("");
	s = pr__options_read_secret(cfgpath);
	assert_string_equal(s, "");
	free(s);
	assert_null(pr__options_read_secret("/nonexistent/secret"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_spellings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_version_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_and_secret, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
