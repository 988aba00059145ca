/* ext_date.c — RFC 5260 date and index: the date and currentdate tests.
 *
 *   date [:zone z / :originalzone] [COMPARATOR] [MATCH-TYPE] [:index n [:last]]
 *        <header-name> <date-part> <key-list>
 *   currentdate [:zone z] [COMPARATOR] [MATCH-TYPE] <date-part> <key-list>
 *
 * Dates are RFC 5322 date-times (with the obsolete zone names of 4.3); in a
 * value with a ";" (Received) the date after the last one is used.  One
 * field is examined: the first of that name, or the one :index selects
 * (Pigeonhole 0.5.19 does the same).  Without :zone the
 * server's local zone applies (RFC 5260 4.1).  A header whose date cannot
 * be parsed does not match.  Date parts: year month day date julian hour
 * minute second time iso8601 std11 zone weekday.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sv_int.h"

static const char *const date_parts[] = {
	"year", "month", "day", "date", "julian", "hour", "minute", "second", "time",
	"iso8601", "std11", "zone", "weekday", NULL
};

static bool part_ok(const char *p)
{
	for (size_t i = 0; date_parts[i]; i++)
		if (strcasecmp(date_parts[i], p) == 0)
			return true;
	return false;
}

/* parse_zone_arg - "+hhmm" / "-hhmm" to seconds east of UTC */
static int parse_zone_arg(const char *z, int *off_r)
{
	if (strlen(z) != 5 || (z[0] != '+' && z[0] != '-'))
		return -1;
	for (int i = 1; i < 5; i++)
		if (z[i] < '0' || z[i] > '9')
			return -1;
	int hh = (z[1] - '0') * 10 + (z[2] - '0'), mm = (z[3] - '0') * 10 + (z[4] - '0');
	if (mm > 59)
		return -1;
	*off_r = (hh * 3600 + mm * 60) * (z[0] == '-' ? -1 : 1);
	return 0;
}

static const char *const months[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
};

/* days_from_civil - days since 1970-01-01 of y-m-d (proleptic Gregorian) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void skip_cfws(const char **p)
{
	for (;;) {
		while (**p == ' ' || **p == '\t')
			(*p)++;
		if (**p != '(')
			return;
		int depth = 0;
		while (**p) {
			if (**p == '(')
				depth++;
			else if (**p == ')' && --depth == 0) {
				(*p)++;
				break;
			}
			(*p)++;
		}
	}
}

static int num(const char **p, int maxd, long *v_r)
{
	int d = 0;
	*v_r = 0;
	while (**p >= '0' && **p <= '9' && d < maxd) {
		*v_r = *v_r * 10 + (**p - '0');
		(*p)++;
		d++;
	}
	return d;
}

/* sv_parse_date - RFC 5322 3.3 date-time; returns 0 with the UTC time and
 * the zone offset (seconds east), -1 when it is not a date */
int sv_parse_date(const char *s, time_t *t_r, int *off_r)
{
	const char *p = s;
	skip_cfws(&p);
	/* optional day-of-week "," */
	if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++;
		skip_cfws(&p);
		if (*p != ',')
			return -1;
		p++;
	}
	skip_cfws(&p);
	long day, year, hh, mm, ss = 0;
	if (num(&p, 2, &day) == 0 || day < 1 || day > 31)
		return -1;
	skip_cfws(&p);
	int mon = -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0)
			mon = i;
	if (mon < 0)
		return -1;
	p += 3;
	skip_cfws(&p);
	int yd = num(&p, 4, &year);
	if (yd < 2)
		return -1;
	if (yd == 2)
		year += year < 50 ? 2000 : 1900;     /* RFC 5322 4.3 */
	else if (yd == 3)
		year += 1900;
	skip_cfws(&p);
	if (num(&p, 2, &hh) == 0 || hh > 23)
		return -1;
	skip_cfws(&p);
	if (*p++ != ':')
		return -1;
	skip_cfws(&p);
	if (num(&p, 2, &mm) == 0 || mm > 59)
		return -1;
	skip_cfws(&p);
	if (*p == ':') {
		p++;
		skip_cfws(&p);
		if (num(&p, 2, &ss) == 0 || ss > 60)
			return -1;
	}
	skip_cfws(&p);
	/* the zone: +hhmm/-hhmm (exactly four digits), or a name of RFC 5322
	 * 4.3; one that is missing or malformed is taken as +0000, as Dovecot's
	 * date parser (which Pigeonhole uses) does (RFC 5322 4.3: an unknown
	 * zone is -0000, i.e. UTC).  Nothing past the value's NUL is read. */
	int off = 0;
	if (*p == '+' || *p == '-') {
		char z[6];
		size_t zl = strnlen(p, 5);
		memcpy(z, p, zl);
		z[zl] = 0;
		if (zl < 5 || (p[5] >= '0' && p[5] <= '9') || parse_zone_arg(z, &off) < 0)
			off = 0;
	} else {
		static const struct { const char *n; int h; } zones[] = {
			{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 }, { "EST", -5 }, { "EDT", -4 },
			{ "CST", -6 }, { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 },
			{ "PST", -8 }, { "PDT", -7 }, { NULL, 0 }
		};
		size_t zl = 0;
		while ((p[zl] >= 'A' && p[zl] <= 'Z') || (p[zl] >= 'a' && p[zl] <= 'z'))
			zl++;
		for (size_t i = 0; zones[i].n; i++)
			if (zl == strlen(zones[i].n) && strncasecmp(p, zones[i].n, zl) == 0)
				off = zones[i].h * 3600;
	}
	int64_t days = days_from_civil(year, (unsigned)mon + 1, (unsigned)day);
	int64_t t = days * 86400 + hh * 3600 + mm * 60 + ss - off;
	*t_r = (time_t)t;
	*off_r = off;
	return 0;
}

/* date_part - the text of part for time t shown in zone off */
static int date_part(const char *part, time_t t, int off, char *out, size_t outsz)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mn[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
					  "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t lt = t + off;
	struct tm tm;
	if (!gmtime_r(&lt, &tm))
		return -1;
	int aoff = off < 0 ? -off : off;
	char sign = off < 0 ? '-' : '+';
	int zh = aoff / 3600, zm = (aoff % 3600) / 60;
	int y = tm.tm_year + 1900;
	if (!strcasecmp(part, "year"))
		snprintf(out, outsz, "%04d", y);
	else if (!strcasecmp(part, "month"))
		snprintf(out, outsz, "%02d", tm.tm_mon + 1);
	else if (!strcasecmp(part, "day"))
		snprintf(out, outsz, "%02d", tm.tm_mday);
	else if (!strcasecmp(part, "date"))
		snprintf(out, outsz, "%04d-%02d-%02d", y, tm.tm_mon + 1, tm.tm_mday);
	else if (!strcasecmp(part, "julian")) {
		int64_t d = (int64_t)lt / 86400;
		if ((int64_t)lt < 0 && (int64_t)lt % 86400)
			d--;
		snprintf(out, outsz, "%lld", (long long)(d + 40587));
	} else if (!strcasecmp(part, "hour"))
		snprintf(out, outsz, "%02d", tm.tm_hour);
	else if (!strcasecmp(part, "minute"))
		snprintf(out, outsz, "%02d", tm.tm_min);
	else if (!strcasecmp(part, "second"))
		snprintf(out, outsz, "%02d", tm.tm_sec);
	else if (!strcasecmp(part, "time"))
		snprintf(out, outsz, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
	else if (!strcasecmp(part, "iso8601") && off == 0)
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else if (!strcasecmp(part, "iso8601"))
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, zh, zm);
	else if (!strcasecmp(part, "std11"))
		snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", wd[tm.tm_wday],
			 tm.tm_mday, mn[tm.tm_mon], y, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, zh, zm);
	else if (!strcasecmp(part, "zone"))
		snprintf(out, outsz, "%c%02d%02d", sign, zh, zm);
	else if (!strcasecmp(part, "weekday"))
		snprintf(out, outsz, "%d", tm.tm_wday);
	else
		return -1;
	return 0;
}

static int validate_common(struct sv_comp *c, struct sv_node *n, const struct sv_arg *part)
{
	const struct sv_arg *z = sv_tagarg(n, TG_ZONE);
	int off;
	if (z && !z->v[0].var && parse_zone_arg(z->v[0].s, &off) < 0) {
		sv_error(c, z->v[0].line, z->v[0].col, "invalid time zone '%s'", z->v[0].s);
		return -1;
	}
	/* an unknown date part is not an error (Pigeonhole): it never matches */
	(void)part_ok;
	(void)part;
	if (sv_validate_index(c, n) < 0)
		return -1;
	return 0;
}

static int validate_date(struct sv_comp *c, struct sv_node *n)
{
	return validate_common(c, n, sv_pos(n, 1));
}

static int validate_currentdate(struct sv_comp *c, struct sv_node *n)
{
	return validate_common(c, n, sv_pos(n, 0));
}

/* zone_for - the offset to show a date in: :zone, original, or local */
static int zone_for(struct sv_run *r, struct sv_node *n, int orig, int *off_r)
{
	if (sv_has(n->o.tags, TG_ORIGINALZONE)) {
		*off_r = orig;
		return 0;
	}
	if (sv_tagarg(n, TG_ZONE)) {
		size_t len;
		char *z = sv_expand(r, n, &sv_tagarg(n, TG_ZONE)->v[0], &len);
		if (!z)
			return -1;
		int bad = parse_zone_arg(z, off_r);
		free(z);
		if (bad < 0) {
			/* RFC 5260 4.1: an invalid zone at runtime: no match */
			return 1;
		}
		return 0;
	}
	*off_r = r->m->now_gmtoff;
	return 0;
}

static int exec_date(struct sv_run *r, struct sv_node *n)
{
	size_t len;
	char *hname = sv_expand(r, n, &sv_pos(n, 0)->v[0], &len);
	if (!hname)
		return -1;
	char *part = sv_expand(r, n, &sv_pos(n, 1)->v[0], &len);
	if (!part) {
		free(hname);
		return -1;
	}
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0) {
		free(hname);
		free(part);
		return -1;
	}
	size_t nf = sv_msg_nfields(&r->msg), hl = strlen(hname);
	size_t *idx = calloc(nf + 1, sizeof *idx), k = 0;
	int x = 0;
	if (!idx)
		x = sv_rt_error(r, n, "out of memory");
	for (size_t i = 0; idx && i < nf; i++)
		if (sv_hdr_is(&r->msg, i, hname, hl))
			idx[k++] = i;
	/* one field is examined, as in Pigeonhole: the first of that name, or
	 * the one :index selects; a later field never stands in for an
	 * unparsable or missing one (RFC 5260 4: "the" header field) */
	size_t from = 0, to = k > 0 ? 1 : 0;
	if (sv_has(n->o.tags, TG_INDEX)) {
		uint64_t want = sv_tagarg(n, TG_INDEX)->num;
		if (want == 0 || want > k) {
			to = 0;
		} else {
			from = sv_has(n->o.tags, TG_LAST) ? k - want : want - 1;
			to = from + 1;
		}
	}
	for (size_t j = from; j < to && x == 0; j++) {
		const char *v = sv_hdr_value(&r->msg, idx[j], &len);
		if (!v)
			continue;
		/* the date follows the last ';' when there is one (Received,
		 * and any other field, as Pigeonhole reads them) */
		const char *semi = strrchr(v, ';');
		if (semi)
			v = semi + 1;
		time_t t;
		int orig, off;
		if (sv_parse_date(v, &t, &orig) < 0)
			continue;
		int z = zone_for(r, n, orig, &off);
		if (z < 0) {
			x = -1;
			break;
		}
		if (z > 0)
			continue;
		char buf[64];
		if (date_part(part, t, off, buf, sizeof buf) < 0)
			continue;
		x = sv_match_value(&m, buf, strlen(buf));
	}
	free(idx);
	free(hname);
	free(part);
	if (x < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

static int exec_currentdate(struct sv_run *r, struct sv_node *n)
{
	size_t len;
	char *part = sv_expand(r, n, &sv_pos(n, 0)->v[0], &len);
	if (!part)
		return -1;
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0) {
		free(part);
		return -1;
	}
	int off, x = 0;
	int z = zone_for(r, n, r->m->now_gmtoff, &off);
	char buf[64];
	if (z < 0)
		x = -1;
	else if (z == 0 && date_part(part, r->m->now, off, buf, sizeof buf) == 0)
		x = sv_match_value(&m, buf, strlen(buf));
	free(part);
	if (x < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

static const enum sv_tag date_tags[] = { TG_ZONE, TG_ORIGINALZONE, TG_COUNT_ALL };
static const enum sv_tag currentdate_tags[] = { TG_ZONE, TG_COUNT_ALL };

const struct sv_def sv_def_date = {
	.name = "date", .ext = EXT_DATE, .is_test = true, .groups = SV_MATCHING | SV_INDEXED,
	.tags = date_tags, .pos = "ssl", .validate = validate_date, .exec = exec_date,
};

const struct sv_def sv_def_currentdate = {
	.name = "currentdate", .ext = EXT_DATE, .is_test = true, .groups = SV_MATCHING,
	.tags = currentdate_tags, .pos = "sl", .validate = validate_currentdate,
	.exec = exec_currentdate,
};
