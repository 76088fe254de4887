/* SPDX-License-Identifier: MIT */
/*
 * Time text <-> int64_t microseconds since the epoch, UTC.
 *
 * The parser is a hand-written scanner over (ptr, len): every byte is
 * checked against the grammar, so trailing garbage, embedded NULs and
 * locale-dependent digits (isdigit) cannot slip through. Calendar arithmetic
 * is Howard Hinnant's days-from-civil / civil-from-days, exact for the
 * proleptic Gregorian calendar; timegm() and strptime() were rejected: they
 * depend on the C library's locale and TZ handling, and do not refuse
 * "Feb 30" (they normalise it to March 2).
 *
 * Always: an accepted text lies in [PR_TIME_MIN, PR_TIME_MAX] after its
 * offset is applied, and pr_time_format() of it parses back to the same
 * value.
 */
#include <partreg/error.h>
#include <partreg/time.h>

#include <assert.h>
#include <time.h>

#define US_PER_SEC  INT64_C(1000000)
#define SEC_PER_DAY INT64_C(86400)

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian); m 1..12, d 1..31. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int64_t y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Read exactly n ASCII digits at *p (before end) into *v; advance *p. */
static int
digits(const char **p, const char *end, int n, int *v)
{
	int x = 0;

	if (end - *p < n) {
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9') {
			return -1;
		}
		x = x * 10 + (c - '0');
	}
	*p += n;
	*v = x;
	return 0;
}

/* Consume the single byte c at *p. */
static int
expect(const char **p, const char *end, char c)
{
	if (*p == end || **p != c) {
		return -1;
	}
	(*p)++;
	return 0;
}

/*
 * The part after the date: 'T', 't' or one space, "hh:mm:ss", an optional
 * fraction of 1..6 digits, an optional offset; up to end and nothing after.
 * Sets *hour, *min, *sec (unchecked ranges), *frac in microseconds and
 * *offset in seconds east of UTC.
 */
static int
time_of_day(
    const char *p, const char *end, int *hour, int *min, int *sec, int64_t *frac, int64_t *offset)
{
	if (p == end || (*p != 'T' && *p != 't' && *p != ' ')) {
		return -1;
	}
	p++;
	if (digits(&p, end, 2, hour) || expect(&p, end, ':') || digits(&p, end, 2, min)
	    || expect(&p, end, ':') || digits(&p, end, 2, sec)) {
		return -1;
	}
	if (p < end && *p == '.') {
		int n = 0;

		p++;
		while (p < end && *p >= '0' && *p <= '9') {
			if (++n > 6) {
				return -1; /* refuse rather than truncate */
			}
			*frac = *frac * 10 + (*p++ - '0');
		}
		if (n == 0) {
			return -1;
		}
		for (; n < 6; n++) {
			*frac *= 10;
		}
	}
	if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if (p < end && (*p == '+' || *p == '-')) {
		int sign = *p++ == '-' ? -1 : 1;
		int oh, om;

		if (digits(&p, end, 2, &oh) || expect(&p, end, ':') || digits(&p, end, 2, &om)
		    || oh > 23 || om > 59) {
			return -1;
		}
		*offset = sign * (oh * INT64_C(3600) + om * INT64_C(60));
	}
	return p == end ? 0 : -1;
}

int
pr_time_parse(const char *text, size_t len, int64_t *out)
{
	const char *p = text;
	const char *end;
	int year, mon, day, hour = 0, min = 0, sec = 0;
	int64_t frac = 0, offset = 0, t;

	if (text == NULL || len == 0) {
		return PR_ETIME;
	}
	end = text + len;
	if (digits(&p, end, 4, &year) || expect(&p, end, '-') || digits(&p, end, 2, &mon)
	    || expect(&p, end, '-') || digits(&p, end, 2, &day)) {
		return PR_ETIME;
	}
	/*
	 * A date alone is that day's midnight, UTC, as the CLI's --start
	 * 2023-01-01 always was. It takes no offset ("2023-01-01Z" is refused):
	 * a date names a UTC day here, not a local one.
	 */
	if (p != end && time_of_day(p, end, &hour, &min, &sec, &frac, &offset) != 0) {
		return PR_ETIME;
	}
	if (year < 1 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon)
	    || hour > 23 || min > 59 || sec > 59) {
		return PR_ETIME;
	}
	/* Local time minus its offset is UTC; no overflow: |t| < 2^58. */
	t = days_from_civil(year, mon, day) * SEC_PER_DAY + hour * INT64_C(3600) + min * INT64_C(60)
	    + sec - offset;
	t = t * US_PER_SEC + frac;
	if (t < PR_TIME_MIN || t > PR_TIME_MAX) {
		return PR_ETIME;
	}
	*out = t;
	return 0;
}

static char *
put(char *p, int64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

char *
pr_time_format(int64_t t, char buf[PR_TIME_BUFSZ])
{
	int64_t secs, us, days, sod, y;
	int m, d;
	char *p = buf;

	assert(t >= PR_TIME_MIN && t <= PR_TIME_MAX);
	/* Clamped so that a release build still writes a well-formed time. */
	if (t < PR_TIME_MIN) {
		t = PR_TIME_MIN;
	} else if (t > PR_TIME_MAX) {
		t = PR_TIME_MAX;
	}
	/* Floor division: instants before 1970 have negative t. */
	secs = t / US_PER_SEC;
	us = t % US_PER_SEC;
	if (us < 0) {
		us += US_PER_SEC;
		secs--;
	}
	days = secs / SEC_PER_DAY;
	sod = secs % SEC_PER_DAY;
	if (sod < 0) {
		sod += SEC_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &m, &d);

	p = put(p, y, 4);
	*p++ = '-';
	p = put(p, m, 2);
	*p++ = '-';
	p = put(p, d, 2);
	*p++ = 'T';
	p = put(p, sod / 3600, 2);
	*p++ = ':';
	p = put(p, sod / 60 % 60, 2);
	*p++ = ':';
	p = put(p, sod % 60, 2);
	if (us != 0) {
		*p++ = '.';
		p = put(p, us, 6);
	}
	*p++ = 'Z';
	*p = '\0';
	return buf;
}

int64_t
pr_time_now(void)
{
	struct timespec ts;

	/* Cannot fail for CLOCK_REALTIME with a valid pointer. */
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}
