/* SPDX-License-Identifier: MIT */
/*
 * See spill.h. A record: a header of native integers (the file never
 * leaves the process that wrote it), then the topic, the
 * payload, the response topic and the correlation data. pwrite at the end,
 * pread at the read offset; both offsets go back to 0 when the file empties.
 */
#include "spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define NONE UINT32_MAX

struct pr_spill {
	int fd;
	char *path;
	uint64_t rd, wr, count;
};

struct rec {
	uint32_t topic, payload, response_topic, correlation; /* lengths; NONE = absent */
	uint64_t original_len;
	int64_t received_at;
	uint8_t retained, too_big, pad[6];
};

int
pr__spill_open(const char *path, struct pr_spill **out)
{
	struct pr_spill *sp = calloc(1, sizeof *sp);

	*out = NULL;
	if (sp == NULL || (sp->path = strdup(path)) == NULL) {
		free(sp);
		return -ENOMEM;
	}
	sp->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (sp->fd < 0) {
		int rc = -errno;

		free(sp->path);
		free(sp);
		return rc;
	}
	*out = sp;
	return 0;
}

void
pr__spill_close(struct pr_spill *sp)
{
	if (sp == NULL) {
		return;
	}
	close(sp->fd);
	unlink(sp->path);
	free(sp->path);
	free(sp);
}

static size_t
len_of(uint32_t n)
{
	return n == NONE ? 0 : n;
}

int
pr__spill_put(struct pr_spill *sp, const struct pr_msg *m)
{
	struct rec r = { 0 };
	struct part {
		const void *p;
		size_t n;
	} parts[5];
	uint64_t at = sp->wr;

	r.topic = (uint32_t)strlen(m->topic);
	r.payload = m->payload != NULL ? (uint32_t)m->payload_len : NONE;
	r.response_topic = m->response_topic != NULL ? (uint32_t)strlen(m->response_topic) : NONE;
	r.correlation = m->correlation != NULL ? (uint32_t)m->correlation_len : NONE;
	r.original_len = m->original_len;
	r.received_at = m->received_at;
	r.retained = (uint8_t)(m->retained != 0);
	r.too_big = (uint8_t)(m->too_big != 0);
	parts[0] = (struct part) { &r, sizeof r };
	parts[1] = (struct part) { m->topic, r.topic };
	parts[2] = (struct part) { m->payload, len_of(r.payload) };
	parts[3] = (struct part) { m->response_topic, len_of(r.response_topic) };
	parts[4] = (struct part) { m->correlation, len_of(r.correlation) };
	for (size_t i = 0; i < 5; i++) {
		if (parts[i].n > 0
		    && pwrite(sp->fd, parts[i].p, parts[i].n, (off_t)at) != (ssize_t)parts[i].n) {
			return errno != 0 ? -errno : -EIO;
		}
		at += parts[i].n;
	}
	sp->wr = at;
	sp->count++;
	return 0;
}

/* n bytes at the read offset into a new NUL-terminated buffer (NULL for NONE). */
static int
read_part(struct pr_spill *sp, uint32_t n, char **out)
{
	*out = NULL;
	if (n == NONE) {
		return 0;
	}
	*out = malloc((size_t)n + 1);
	if (*out == NULL) {
		return -ENOMEM;
	}
	if (n > 0 && pread(sp->fd, *out, n, (off_t)sp->rd) != (ssize_t)n) {
		return -EIO;
	}
	(*out)[n] = '\0';
	sp->rd += n;
	return 0;
}

struct pr_msg *
pr__spill_get(struct pr_spill *sp)
{
	struct pr_msg *m;
	struct rec r;
	int rc;

	if (sp->count == 0) {
		return NULL;
	}
	m = calloc(1, sizeof *m);
	rc = m != NULL ? 0 : -ENOMEM;
	if (rc == 0 && pread(sp->fd, &r, sizeof r, (off_t)sp->rd) != (ssize_t)sizeof r) {
		rc = -EIO;
	}
	if (rc == 0) {
		sp->rd += sizeof r;
		rc = read_part(sp, r.topic, &m->topic);
	}
	if (rc == 0) {
		rc = read_part(sp, r.payload, &m->payload);
	}
	if (rc == 0) {
		rc = read_part(sp, r.response_topic, &m->response_topic);
	}
	if (rc == 0) {
		rc = read_part(sp, r.correlation, &m->correlation);
	}
	if (rc != 0) {
		pr_error("spill: cannot read back a command from %s (%s); %llu dropped", sp->path,
		    strerror(-rc), (unsigned long long)sp->count);
		pr__msg_free(m);
		sp->count = 0;
		sp->rd = sp->wr = 0;
		if (ftruncate(sp->fd, 0) != 0) {
			pr_warn("spill: cannot empty %s: %s", sp->path, strerror(errno));
		}
		return NULL;
	}
	m->payload_len = len_of(r.payload);
	m->correlation_len = len_of(r.correlation);
	m->original_len = r.original_len;
	m->received_at = r.received_at;
	m->retained = r.retained;
	m->too_big = r.too_big;
	if (--sp->count == 0) {
		sp->rd = sp->wr = 0;
		if (ftruncate(sp->fd, 0) != 0) {
			pr_warn("spill: cannot empty %s: %s", sp->path, strerror(errno));
		}
	}
	return m;
}

uint64_t
pr__spill_count(const struct pr_spill *sp)
{
	return sp != NULL ? sp->count : 0;
}

uint64_t
pr__spill_bytes(const struct pr_spill *sp)
{
	return sp != NULL ? sp->wr - sp->rd : 0;
}
