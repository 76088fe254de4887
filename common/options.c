/* SPDX-License-Identifier: MIT */
/*
 * One table describes every option of a program once: its flag name (also
 * the config file key), where it lands in the program's struct, and its
 * kind. The three sources are applied in order of precedence, each
 * overwriting the last. The parser knows nothing of the programs: partregd
 * and partreg-http each hand it their table, name and environment prefix
 * (a per-program copy of this code was the alternative, and two copies of a
 * parser drift apart).
 */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <partreg/error.h>

#include "names.h"

static const struct pr_optdef *
find(const struct pr_options *o, const char *name, size_t len)
{
	for (size_t i = 0; i < o->ndefs; i++) {
		if (strlen(o->defs[i].name) == len && strncmp(o->defs[i].name, name, len) == 0) {
			return &o->defs[i];
		}
	}
	return NULL;
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0])) {
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return -1;
	}
	*out = v;
	return 0;
}

static int
set(const struct pr_options *o, void *cfg, const struct pr_optdef *d, const char *value,
    const char *from, FILE *err)
{
	char *field = (char *)cfg + d->off;
	uint64_t v;

	switch (d->kind) {
	case PR_OPT_STR: {
		char *copy = strdup(value);

		if (copy == NULL) {
			return -ENOMEM;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case PR_OPT_FLAG:
		*(int *)field = 1;
		return 0;
	case PR_OPT_VERSION:
		if (strcmp(value, "5") == 0) {
			*(int *)field = 5;
			return 0;
		}
		if (strcmp(value, "3.1.1") == 0 || strcmp(value, "4") == 0) {
			*(int *)field = 4;
			return 0;
		}
		break;
	case PR_OPT_SIZE:
		if (parse_u64(value, SIZE_MAX, &v) == 0 && v > 0) {
			*(size_t *)field = (size_t)v;
			return 0;
		}
		break;
	case PR_OPT_U32:
		if (parse_u64(value, UINT32_MAX, &v) == 0) {
			*(uint32_t *)field = (uint32_t)v;
			return 0;
		}
		break;
	case PR_OPT_U64:
		if (parse_u64(value, UINT64_MAX, &v) == 0 && v > 0) {
			*(uint64_t *)field = v;
			return 0;
		}
		break;
	}
	fprintf(err, "%s: %s: invalid value '%s' for %s\n", o->program, from, value, d->name);
	return PR_EFIELD;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s)) {
		s++;
	}
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1])) {
		*--e = '\0';
	}
	return s;
}

static int
load_file(const struct pr_options *o, void *cfg, const char *path, FILE *err)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0;
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		fprintf(
		    err, "%s: cannot read config file %s: %s\n", o->program, path, strerror(errno));
		return rc;
	}
	while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
		char where[64];
		char *eq, *key, *hash = strchr(line, '#');
		const struct pr_optdef *d;

		lineno++;
		snprintf(where, sizeof where, "%.40s:%d", path, lineno);
		/* fgets would hand the rest of a longer line over as a line of
		 * its own. */
		if (strchr(line, '\n') == NULL && ungetc(getc(f), f) != EOF) {
			fprintf(err, "%s: %s: line too long\n", o->program, where);
			rc = PR_EFIELD;
			break;
		}
		if (hash != NULL) {
			*hash = '\0';
		}
		key = trim(line);
		if (*key == '\0') {
			continue;
		}
		eq = strchr(key, '=');
		if (eq == NULL) {
			fprintf(err, "%s: %s: expected 'key = value'\n", o->program, where);
			rc = PR_EFIELD;
			break;
		}
		*eq = '\0';
		key = trim(key);
		d = find(o, key, strlen(key));
		if (d == NULL || d->kind == PR_OPT_FLAG || strcmp(d->name, "config") == 0) {
			fprintf(err, "%s: %s: unknown key '%s'\n", o->program, where, key);
			rc = PR_EFIELD;
			break;
		}
		rc = set(o, cfg, d, trim(eq + 1), where, err);
	}
	fclose(f);
	return rc;
}

/* PARTREG_DATA_DIR for data-dir. */
static void
env_name(const struct pr_options *o, const char *name, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "%s", o->env_prefix);

	if (n >= cap) {
		n = cap - 1;
	}
	for (const char *p = name; *p != '\0' && n + 1 < cap; p++) {
		buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	}
	buf[n] = '\0';
}

static void
set_flag(const struct pr_options *o, void *cfg, const char *name)
{
	const struct pr_optdef *d = find(o, name, strlen(name));

	if (d != NULL && d->kind == PR_OPT_FLAG) {
		*(int *)((char *)cfg + d->off) = 1;
	}
}

int
pr__options_load(const struct pr_options *o, void *cfg, int argc, char **argv, FILE *err)
{
	const char *config_path = NULL;
	char name[96];
	int rc;

	/* --help and --version answer whatever else is wrong. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "--version") == 0) {
			set_flag(o, cfg, argv[i] + 2);
			return 0;
		}
	}
	/* The config file comes first, so look for --config before the rest. */
	env_name(o, "config", name, sizeof name);
	config_path = getenv(name);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[i + 1];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		}
	}
	if (config_path != NULL) {
		rc = load_file(o, cfg, config_path, err);
		if (rc != 0) {
			return rc;
		}
	}
	for (size_t i = 0; i < o->ndefs; i++) {
		const char *v;

		if (o->defs[i].kind == PR_OPT_FLAG) {
			continue;
		}
		env_name(o, o->defs[i].name, name, sizeof name);
		v = getenv(name);
		if (v != NULL && (rc = set(o, cfg, &o->defs[i], v, name, err)) != 0) {
			return rc;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq, *value;
		const struct pr_optdef *d;

		if (strncmp(a, "--", 2) != 0) {
			fprintf(err, "%s: unexpected argument '%s' (see --help)\n", o->program, a);
			return PR_EFIELD;
		}
		a += 2;
		eq = strchr(a, '=');
		d = find(o, a, eq != NULL ? (size_t)(eq - a) : strlen(a));
		if (d == NULL) {
			fprintf(err, "%s: unknown option '%s' (see --help)\n", o->program, argv[i]);
			return PR_EFIELD;
		}
		if (d->kind == PR_OPT_FLAG && eq != NULL) {
			fprintf(err, "%s: option --%s takes no value\n", o->program, d->name);
			return PR_EFIELD;
		} else if (d->kind == PR_OPT_FLAG) {
			value = "";
		} else if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(err, "%s: option --%s needs a value\n", o->program, d->name);
			return PR_EFIELD;
		}
		rc = set(o, cfg, d, value, "command line", err);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

int
pr__options_check_mqtt(
    const struct pr_options *o, const char *broker, const char *prefix, int tls_files, FILE *err)
{
	if (pr__prefix_check(prefix) != 0) {
		fprintf(err,
		    "%s: --prefix '%s' must be topic levels separated by '/', without '+', '#', "
		    "empty levels, or a leading '$'\n",
		    o->program, prefix);
		return PR_EFIELD;
	}
	if (tls_files && strncmp(broker, "mqtts://", 8) != 0 && strncmp(broker, "ssl://", 6) != 0) {
		fprintf(err,
		    "%s: --cafile/--cert/--key need an mqtts:// --broker (got %s): refusing to "
		    "connect without TLS\n",
		    o->program, broker);
		return PR_EFIELD;
	}
	return 0;
}

void
pr__options_release(const struct pr_options *o, void *cfg)
{
	for (size_t i = 0; i < o->ndefs; i++) {
		if (o->defs[i].kind == PR_OPT_STR) {
			char **p = (char **)((char *)cfg + o->defs[i].off);

			free(*p);
			*p = NULL;
		}
	}
}

void
pr__options_usage(const struct pr_options *o, FILE *out)
{
	for (size_t i = 0; i < o->ndefs; i++) {
		const struct pr_optdef *d = &o->defs[i];
		char env[96];

		env_name(o, d->name, env, sizeof env);
		fprintf(out, "  --%-19s %s%s%s%s\n", d->name, d->help,
		    d->kind == PR_OPT_FLAG ? "" : " [", d->kind == PR_OPT_FLAG ? "" : env,
		    d->kind == PR_OPT_FLAG ? "" : "]");
	}
}

char *
pr__options_read_secret(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	char *nl;

	if (f == NULL) {
		return NULL;
	}
	if (fgets(buf, sizeof buf, f) == NULL) {
		buf[0] = '\0';
	}
	fclose(f);
	nl = strpbrk(buf, "\r\n");
	if (nl != NULL) {
		*nl = '\0';
	}
	return strdup(buf);
}
