/* scan_engine.c — the policy: turns what the MIME walker sees into one
 * verdict for the message.
 *
 * Each finding is a rule (enum scan_rule) whose action comes from scan.conf;
 * the verdict is the most severe action found, its reason the first finding
 * at that severity.  Once the verdict is "reject" the walk stops (nothing
 * can make it milder).  Names come from every source a client reads:
 * Content-Disposition filename and Content-Type name in all their readings
 * (hm_rfc2231), uuencode "begin" lines in text parts, member names of zip
 * archives (scan_archive.c), and the parts of message/rfc822 attachments.
 *
 * Relies on: hm_mime, hm_rfc2231, hm_buf, scan_names.c, scan_archive.c;
 * read(2) only in scan_feed_fd, for the callers that hold a file descriptor.
 * Fails: out of memory or the time budget → a tempreject verdict (SR_INTERNAL);
 * the engine itself never aborts the caller.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hm_buf.h"
#include "hm_util.h"
#include "scan.h"

#define REASON_MAX 400
#define NAMES_MAX_BYTES 700   /* attachment list in X-Homemail-Scan */
#define NAME_SHOW_MAX 80      /* bytes of one name shown */
#define ULINE_MAX 1024        /* head of a uuencode "begin" line kept */
#define UTAIL_MAX 4096        /* tail kept of a longer one: the name's end, as much
				 as scan_name_blocked reads */

struct scan {
	const struct scan_conf *c;
	struct scan_opts o;
	struct hm_mime *m;
	struct scan_verdict v;
	enum scan_action worst;
	enum scan_rule worst_rule;
	char reason[REASON_MAX];
	unsigned rules_hit;        /* bit per rule found (any action) */
	struct hm_buf names;       /* attachment names for the header */
	size_t nnames;
	bool names_truncated;
	struct timespec start;
	struct scan_budget budget; /* archives: decompression and deadline, whole message */
	bool final;                /* verdict is reject: stop walking */
	bool walk_error;
	bool finished;
	/* per leaf part */
	bool leaf_text;
	bool leaf_first_data;
	bool arch_want;
	bool arch_overflow;
	struct hm_buf arch;
	char *leaf_name;           /* display name of the current leaf, for messages */
	char uline[ULINE_MAX];     /* current text line: its head ... */
	size_t ulen;
	char utail[UTAIL_MAX];     /* ... and, past ULINE_MAX, its last bytes */
	size_t utlen;
	size_t utotal;             /* bytes of the line so far */
	bool uline_skip;           /* the line cannot be a "begin" line */
};

/* clean - printable ASCII copy for reasons and logs; other bytes become %XX
 * so a name cannot forge SMTP or log syntax; never writes more than dstsize */
static void clean(char *dst, size_t dstsize, const char *s, size_t n, size_t maxshow)
{
	size_t o = 0;
	if (dstsize == 0)
		return;
	for (size_t i = 0; i < n && i < maxshow; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%') {
			if (o + 1 >= dstsize)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 3 >= dstsize)
				break;
			static const char hx[] = "0123456789ABCDEF";
			dst[o++] = '%';
			dst[o++] = hx[c >> 4];
			dst[o++] = hx[c & 15];
		}
	}
	if (n > maxshow && o + 3 < dstsize) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = 0;
}

/* hit - record a finding of RULE; the first finding at the worst severity
 * gives the reason.  Returns HM_MIME_STOP once the verdict is final. */
static int hit(struct scan *s, enum scan_rule rule, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int hit(struct scan *s, enum scan_rule rule, const char *fmt, ...)
{
	enum scan_action a = s->c->action[rule];
	if (rule == SR_INTERNAL)
		a = SCAN_TEMPREJECT;
	if (rule == SR_LIMIT)
		a = SCAN_REJECT;
	if (a == SCAN_ACCEPT)
		return HM_MIME_CONTINUE;
	s->rules_hit |= 1u << rule;
	if (a > s->worst) {
		s->worst = a;
		s->worst_rule = rule;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->reason, sizeof s->reason, fmt, ap);
		va_end(ap);
	}
	if (s->worst == SCAN_REJECT)
		s->final = true;
	return s->final ? HM_MIME_STOP : HM_MIME_CONTINUE;
}

/* add_name - remember an attachment name for X-Homemail-Scan (bounded) */
static void add_name(struct scan *s, const char *name, size_t n)
{
	char c[NAME_SHOW_MAX * 3 + 8];
	clean(c, sizeof c, name, n, NAME_SHOW_MAX);
	if (s->names_truncated)
		return;
	if (s->names.len + strlen(c) + 4 > NAMES_MAX_BYTES) {
		s->names_truncated = true;
		return;
	}
	if (hm_buf_printf(&s->names, "%s\"%s\"", s->nnames ? "," : "", c) < 0)
		s->names_truncated = true;
	else
		s->nnames++;
}

/* check_name - one reading of a name from SOURCE */
static int check_name(struct scan *s, const char *name, size_t n, const char *source)
{
	const char *susp = NULL;
	const char *ext = scan_name_blocked(s->c, name, n, &susp);
	char shown[NAME_SHOW_MAX * 3 + 8];
	clean(shown, sizeof shown, name, n, NAME_SHOW_MAX);
	int r = HM_MIME_CONTINUE;
	if (ext)
		r = hit(s, SR_BLOCKED, "blocked attachment type .%s (%s \"%s\")", ext, source, shown);
	if (susp && r == HM_MIME_CONTINUE)
		r = hit(s, SR_AMBIGUOUS, "ambiguous attachment name: %s (%s \"%s\")", susp, source,
			shown);
	return r;
}

struct reading_ctx {
	struct scan *s;
	const char *source;
	int r;
};

static int reading_cb(void *ctx, const char *v, size_t l)
{
	struct reading_ctx *rc = ctx;
	rc->r = check_name(rc->s, v, l, rc->source);
	return rc->r == HM_MIME_STOP ? 1 : 0;
}

/* norm_eq - names equal once Windows' trailing dots/spaces are ignored */
static bool norm_eq(const char *a, size_t al, const char *b, size_t bl)
{
	while (al && (a[al - 1] == '.' || a[al - 1] == ' '))
		al--;
	while (bl && (b[bl - 1] == '.' || b[bl - 1] == ' '))
		bl--;
	return al == bl && memcmp(a, b, al) == 0;
}

/* plain_encoded - a value still holding RFC 2047 syntax (decoder not built in) */
static bool plain_encoded(const char *v, size_t l)
{
	return memmem(v, l, "=?", 2) != NULL;
}

/* extra_field_names - PARAM in every FIELD header after the first: the walker
 * parses the first (and reports the duplicate as ambiguous, an action the
 * admin may lower), but a client may take the other one, so its names are
 * checked as well.  Returns HM_MIME_CONTINUE/STOP, -1 ENOMEM. */
static int extra_field_names(struct scan *s, struct hm_mime_part *p, const char *field,
			     const char *param)
{
	if (!p->hdr)
		return HM_MIME_CONTINUE;
	size_t it = 0;
	const struct hm_hfield *f = hm_header_next(p->hdr, field, &it);
	while (f && (f = hm_header_next(p->hdr, field, &it)) != NULL) {
		struct hm_mimefield mf;
		if (hm_mimefield_parse(f->raw, f->raw_len, &mf) < 0)
			return -1;
		struct reading_ctx rc = {.s = s, .source = param, .r = 0};
		int r = hm_mimefield_readings(&mf, param, reading_cb, &rc);
		hm_mimefield_free(&mf);
		if (r < 0)
			return -1;
		if (rc.r == HM_MIME_STOP)
			return HM_MIME_STOP;
	}
	return HM_MIME_CONTINUE;
}

/* part_names - every name of a part: check all readings, detect disagreement,
 * remember the display name */
static int part_names(struct scan *s, struct hm_mime_part *p)
{
	struct reading_ctx rc = {.s = s, .r = 0};
	rc.source = "filename";
	if (hm_mimefield_readings(&p->cd, "filename", reading_cb, &rc) < 0)
		return -1;
	if (rc.r == HM_MIME_STOP)
		return HM_MIME_STOP;
	rc.source = "name";
	if (hm_mimefield_readings(&p->ct, "name", reading_cb, &rc) < 0)
		return -1;
	if (rc.r == HM_MIME_STOP)
		return HM_MIME_STOP;
	int x = extra_field_names(s, p, "Content-Disposition", "filename");
	if (x == HM_MIME_CONTINUE)
		x = extra_field_names(s, p, "Content-Type", "name");
	if (x != HM_MIME_CONTINUE)
		return x;

	size_t fl = 0, nl = 0;
	errno = 0;
	char *fn = hm_mimefield_get(&p->cd, "filename", &fl);
	if (!fn && errno == ENOMEM)
		return -1;
	errno = 0;
	char *nm = hm_mimefield_get(&p->ct, "name", &nl);
	if (!nm && errno == ENOMEM) {
		free(fn);
		return -1;
	}
	int r = HM_MIME_CONTINUE;
	if (fn && nm && !plain_encoded(fn, fl) && !plain_encoded(nm, nl) &&
	    !norm_eq(fn, fl, nm, nl)) {
		char a[NAME_SHOW_MAX * 3 + 8], b[NAME_SHOW_MAX * 3 + 8];
		clean(a, sizeof a, fn, fl, NAME_SHOW_MAX);
		clean(b, sizeof b, nm, nl, NAME_SHOW_MAX);
		r = hit(s, SR_AMBIGUOUS, "ambiguous attachment name: filename \"%s\" but name \"%s\"",
			a, b);
	}
	const char *disp = fn ? fn : nm;
	size_t dl = fn ? fl : nl;
	free(s->leaf_name);
	s->leaf_name = NULL;
	if (disp) {
		add_name(s, disp, dl);
		s->leaf_name = strndup(disp, dl > 200 ? 200 : dl);
	} else if (p->cd.value && strcmp(p->cd.value, "attachment") == 0) {
		add_name(s, "", 0);
	}
	free(fn);
	free(nm);
	return r;
}

/* header_sanity - rules on the message's own header block */
static int header_sanity(struct scan *s, struct hm_mime_part *p)
{
	size_t from = hm_header_count_name(p->hdr, "from");
	size_t date = hm_header_count_name(p->hdr, "date");
	if (from != 1 && hit(s, SR_FROM, "message must have exactly one From: header (it has %zu)",
			     from) == HM_MIME_STOP)
		return HM_MIME_STOP;
	if (date == 0 && hit(s, SR_DATE, "message has no Date: header") == HM_MIME_STOP)
		return HM_MIME_STOP;
	if (date > 1 && hit(s, SR_AMBIGUOUS, "message has %zu Date: headers", date) == HM_MIME_STOP)
		return HM_MIME_STOP;
	return HM_MIME_CONTINUE;
}

static int cb_begin(void *ctx, struct hm_mime_part *p)
{
	struct scan *s = ctx;
	if (p->index == 0 && header_sanity(s, p) == HM_MIME_STOP)
		return HM_MIME_STOP;
	/* content this scan cannot see: fragments some clients reassemble
	 * (RFC 2046 5.2.2) and bodies fetched from elsewhere (5.2.3) */
	if ((strcmp(p->ctype, "message/partial") == 0 ||
	     strcmp(p->ctype, "message/external-body") == 0) &&
	    hit(s, SR_UNSCANNABLE, "%s in part %zu cannot be inspected", p->ctype, p->index) ==
		    HM_MIME_STOP)
		return HM_MIME_STOP;
	int r = part_names(s, p);
	if (r < 0) {
		s->walk_error = true;
		return HM_MIME_STOP;
	}
	if (r == HM_MIME_STOP)
		return r;
	if (!p->multipart && !p->message) {
		s->leaf_text = strncmp(p->ctype, "text/", 5) == 0;
		s->leaf_first_data = true;
		s->arch_overflow = false;
		s->ulen = s->utlen = s->utotal = 0;
		s->uline_skip = false;
		hm_buf_reset(&s->arch);
		const char *n = s->leaf_name;
		size_t nl = n ? strlen(n) : 0;
		s->arch_want = s->c->scan_archives &&
			       ((nl >= 4 && strcasecmp(n + nl - 4, ".zip") == 0) ||
				(nl >= 3 && strcasecmp(n + nl - 3, ".7z") == 0) ||
				(nl >= 4 && strcasecmp(n + nl - 4, ".rar") == 0) ||
				strstr(p->ctype, "zip") != NULL || strstr(p->ctype, "7z") != NULL ||
				strstr(p->ctype, "rar") != NULL);
	}
	return HM_MIME_CONTINUE;
}

/* uu_name_at - offset of NAME in a "begin MODE NAME" line, 0 when not one */
static size_t uu_name_at(const char *l, size_t n)
{
	size_t i;
	if (n > 6 && memcmp(l, "begin ", 6) == 0)
		i = 6;
	else if (n > 13 && memcmp(l, "begin-base64 ", 13) == 0)
		i = 13;
	else
		return 0;
	size_t d = 0;
	while (i < n && l[i] >= '0' && l[i] <= '7' && d < 5)
		i++, d++;
	if (d < 3 || i >= n || l[i] != ' ')
		return 0;
	return i + 1;
}

/* uu_append - bytes of the current text line: the head up to ULINE_MAX,
 * then the last UTAIL_MAX bytes (a longer name is still checked by its end,
 * not dropped) */
static void uu_append(struct scan *s, const char *d, size_t k)
{
	s->utotal += k;
	size_t h = ULINE_MAX - s->ulen;
	if (h > k)
		h = k;
	memcpy(s->uline + s->ulen, d, h);
	s->ulen += h;
	d += h;
	k -= h;
	if (k == 0)
		return;
	if (k >= UTAIL_MAX) {
		memcpy(s->utail, d + k - UTAIL_MAX, UTAIL_MAX);
		s->utlen = UTAIL_MAX;
		return;
	}
	if (s->utlen + k > UTAIL_MAX) {
		size_t drop = s->utlen + k - UTAIL_MAX;
		memmove(s->utail, s->utail + drop, s->utlen - drop);
		s->utlen -= drop;
	}
	memcpy(s->utail + s->utlen, d, k);
	s->utlen += k;
}

/* uu_line - the current text line is complete: uuencode (and sharutils
 * begin-base64) "begin MODE NAME" carries a file name clients show as an
 * attachment.  A line longer than the head is read as head + tail. */
static int uu_line(struct scan *s)
{
	if (s->uline_skip || s->utotal == 0)
		return HM_MIME_CONTINUE;
	size_t at = uu_name_at(s->uline, s->ulen);
	if (!at)
		return HM_MIME_CONTINUE;
	char *name = malloc(ULINE_MAX + UTAIL_MAX);
	if (!name) {
		s->walk_error = true;
		return HM_MIME_STOP;
	}
	size_t n = s->ulen - at;
	memcpy(name, s->uline + at, n);
	memcpy(name + n, s->utail, s->utlen);
	n += s->utlen;
	if (n && name[n - 1] == '\r')
		n--;
	add_name(s, name, n);
	int r = check_name(s, name, n, "uuencoded");
	free(name);
	return r;
}

static int cb_data(void *ctx, struct hm_mime_part *p, const char *d, size_t n)
{
	struct scan *s = ctx;
	if (s->leaf_first_data) {
		s->leaf_first_data = false;
		if (s->c->scan_archives && scan_archive_magic(d, n))
			s->arch_want = true;
	}
	if (s->arch_want && !s->arch_overflow) {
		if (hm_buf_append(&s->arch, d, n) < 0) {
			if (errno == ENOMEM) {
				s->walk_error = true;
				return HM_MIME_STOP;
			}
			s->arch_overflow = true;
			hm_buf_free(&s->arch);
		}
	}
	/* neither text (uuencode) nor an archive: the rest of the bytes are not
	 * needed, the walker goes on validating the encoding only */
	if (!s->leaf_text && !s->arch_want)
		return HM_MIME_SKIP;
	if (s->leaf_text) {
		size_t i = 0;
		while (i < n) {
			/* only a line that starts with 'b' can be a "begin" line */
			if (s->utotal == 0 && !s->uline_skip && d[i] != 'b')
				s->uline_skip = true;
			const char *nl = memchr(d + i, '\n', n - i);
			size_t end = nl ? (size_t)(nl - d) : n;
			if (!s->uline_skip)
				uu_append(s, d + i, end - i);
			if (!nl)
				break;
			if (uu_line(s) == HM_MIME_STOP)
				return HM_MIME_STOP;
			s->ulen = s->utlen = s->utotal = 0;
			s->uline_skip = false;
			i = end + 1;
		}
	}
	return HM_MIME_CONTINUE;
}

struct arch_ctx {
	struct scan *s;
	const char *arch;
};

static int arch_name_cb(void *ctx, const char *name, size_t n)
{
	struct arch_ctx *a = ctx;
	char src[NAME_SHOW_MAX * 3 + 32];
	char an[NAME_SHOW_MAX * 3 + 8];
	clean(an, sizeof an, a->arch, strlen(a->arch), NAME_SHOW_MAX);
	snprintf(src, sizeof src, "member of \"%s\"", an);
	return check_name(a->s, name, n, src) == HM_MIME_STOP ? 2 : 0;
}

static int cb_end(void *ctx, struct hm_mime_part *p)
{
	struct scan *s = ctx;
	if (p->multipart || p->message)
		return HM_MIME_CONTINUE;
	if (s->leaf_text && uu_line(s) == HM_MIME_STOP)
		return HM_MIME_STOP;
	int r = HM_MIME_CONTINUE;
	if (s->arch_want) {
		const char *an = s->leaf_name ? s->leaf_name : "(unnamed)";
		char shown[NAME_SHOW_MAX * 3 + 8];
		clean(shown, sizeof shown, an, strlen(an), NAME_SHOW_MAX);
		if (s->arch_overflow) {
			r = hit(s, SR_UNSCANNABLE, "archive \"%s\" larger than %zu bytes not inspected",
				shown, s->c->max_archive_size);
		} else if (s->arch.len > 0) {
			struct arch_ctx ac = {.s = s, .arch = an};
			int ar = scan_archive_names(s->c, s->arch.data, s->arch.len, &s->budget,
						    arch_name_cb, &ac);
			if (ar < 0) {
				s->walk_error = true;
				r = HM_MIME_STOP;
			} else if (ar == 2) {
				r = HM_MIME_STOP;
			} else if (ar == 1) {
				r = hit(s, SR_UNSCANNABLE, "archive \"%s\" cannot be read", shown);
			} else if (ar == 4) {
				r = hit(s, SR_UNSCANNABLE, "archive \"%s\" not fully inspected: %s", shown,
					s->budget.why);
			} else if (ar == 3) {
				r = hit(s, SR_UNSCANNABLE, "archive \"%s\" not inspected: libarchive or libzip unavailable",
					shown);
			}
		}
		hm_buf_free(&s->arch);
	}
	free(s->leaf_name);
	s->leaf_name = NULL;
	s->arch_want = false;
	return r;
}

static int cb_problem(void *ctx, struct hm_mime_part *p, enum hm_mime_problem what,
		      const char *detail)
{
	struct scan *s = ctx;
	const struct hm_mime_limits *l = &s->c->lim;
	const char *name = hm_mime_problem_name(what);
	const char *det = detail ? detail : "";
	const char *sep = detail ? ": " : "";
	size_t idx = p ? p->index : 0;
	switch (what) {
	case HM_MIME_LIMIT_DEPTH:
		return hit(s, SR_LIMIT, "MIME nesting deeper than %u levels", l->max_depth);
	case HM_MIME_LIMIT_PARTS:
		return hit(s, SR_LIMIT, "more than %zu MIME parts", l->max_parts);
	case HM_MIME_LIMIT_HEADER:
		return hit(s, SR_LIMIT, "header block larger than %zu bytes", l->max_header);
	case HM_MIME_LIMIT_LINE:
		return hit(s, SR_LIMIT, "line longer than %zu bytes", l->max_line);
	case HM_MIME_LIMIT_BOUNDARY:
		return hit(s, SR_LIMIT, "MIME boundary longer than %zu bytes", l->max_boundary);
	case HM_MIME_BAD_ENCODING:
		return hit(s, SR_ENCODING, "broken transfer encoding in part %zu%s%s", idx, sep, det);
	case HM_MIME_HDR_NUL:
		return hit(s, SR_HDR_NUL, "NUL byte in a header (part %zu)", idx);
	case HM_MIME_HDR_BARE_CR:
		return hit(s, SR_HDR_BARE_CR, "bare CR in a header (part %zu)", idx);
	case HM_MIME_HDR_8BIT:
		if (s->o.smtputf8)
			return HM_MIME_CONTINUE;
		return hit(s, SR_HDR_8BIT, "raw 8-bit bytes in a header without SMTPUTF8 (part %zu)", idx);
	default:
		return hit(s, SR_AMBIGUOUS, "ambiguous MIME structure: %s in part %zu%s%s", name, idx,
			   sep, det);
	}
}

struct scan *scan_new(const struct scan_conf *c, const struct scan_opts *o)
{
	struct scan *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->c = c;
	if (o)
		s->o = *o;
	hm_buf_init(&s->names, NAMES_MAX_BYTES + 16);
	hm_buf_init(&s->arch, c->max_archive_size);
	clock_gettime(CLOCK_MONOTONIC, &s->start);
	s->budget.inflate_left = c->max_archive_inflate;
	s->budget.declared_left = c->max_archive_inflate;
	s->budget.deadline = s->start;
	s->budget.deadline.tv_sec += (time_t)c->time_budget;
	struct hm_mime_callbacks cb = {
		.part_begin = cb_begin, .part_data = cb_data, .part_end = cb_end, .problem = cb_problem,
	};
	s->m = hm_mime_new(&c->lim, &cb, s);
	if (!s->m) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

/* over_budget - the per-message time budget (no alarm(): Exim owns SIGALRM) */
static bool over_budget(struct scan *s)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - s->start.tv_sec >= (time_t)s->c->time_budget;
}

/* the walker gets at most this many bytes between two looks at the clock:
 * the caller's reads (64 KiB from Exim) are too coarse a step when a line
 * costs work per open multipart level (max_depth may be set to 10000) */
#define FEED_SLICE 4096

int scan_feed(struct scan *s, const char *data, size_t len)
{
	if (s->final || s->walk_error || s->finished)
		return 1;
	size_t off = 0;
	do {
		if (over_budget(s)) {
			hit(s, SR_INTERNAL, "scan time budget exceeded");
			s->final = true;
			return 1;
		}
		size_t n = len - off < FEED_SLICE ? len - off : FEED_SLICE;
		int r = hm_mime_feed(s->m, data + off, n);
		if (r < 0) {
			s->walk_error = true;
			return 1;
		}
		if (r == 1)
			return 1;
		off += n;
	} while (off < len);
	return 0;
}

int scan_feed_fd(struct scan *s, int fd)
{
	enum { CHUNK = 64 * 1024 };
	char *buf = malloc(CHUNK);

	if (buf == NULL)
		return errno = ENOMEM, -1;
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return -2;
		}
		if (n == 0 || scan_feed(s, buf, (size_t)n) != 0)
			break;
	}
	free(buf);
	return 0;
}

const struct scan_verdict *scan_finish(struct scan *s)
{
	if (s->finished)
		return &s->v;
	s->finished = true;
	if (!s->final && !s->walk_error && hm_mime_finish(s->m) < 0)
		s->walk_error = true;
	if (s->walk_error && s->worst < SCAN_REJECT)
		hit(s, SR_INTERNAL, "internal error while scanning");

	struct scan_verdict *v = &s->v;
	v->action = s->worst;
	v->rule = s->worst_rule;
	v->parts = hm_mime_parts(s->m);
	v->depth = hm_mime_max_depth(s->m);
	struct hm_buf b;
	hm_buf_init(&b, 2048);
	const char *word = s->worst == SCAN_ACCEPT ? "accept" : scan_action_name(s->worst);
	hm_buf_printf(&b, "%s; parts=%zu; depth=%u", word, v->parts, v->depth);
	if (s->rules_hit) {
		hm_buf_puts(&b, "; rules=");
		bool first = true;
		for (unsigned r = 0; r < SR_MAX; r++)
			if (s->rules_hit & (1u << r)) {
				hm_buf_printf(&b, "%s%s", first ? "" : ",", scan_rule_name(r));
				first = false;
			}
	}
	if (s->nnames || s->names_truncated)
		hm_buf_printf(&b, "; attachments=%s%s", hm_buf_cstr(&s->names),
			      s->names_truncated ? ",..." : "");
	v->header = hm_buf_steal(&b, NULL);
	v->reason = strdup(s->worst == SCAN_ACCEPT ? "" : s->reason);
	struct hm_buf lg;
	hm_buf_init(&lg, 4096);
	hm_buf_printf(&lg, "homemail-scan: %s", v->header ? v->header : word);
	if (s->worst > SCAN_ACCEPT)
		hm_buf_printf(&lg, "; rule=%s; reason=%s", scan_rule_name(s->worst_rule), s->reason);
	v->log = hm_buf_steal(&lg, NULL);
	if (!v->header || !v->reason || !v->log) {
		/* out of memory: a tempreject without text is still a verdict */
		v->action = SCAN_TEMPREJECT;
		v->rule = SR_INTERNAL;
	}
	return v;
}

void scan_free(struct scan **sp)
{
	struct scan *s = *sp;
	if (!s)
		return;
	hm_mime_free(&s->m);
	hm_buf_free(&s->names);
	hm_buf_free(&s->arch);
	free(s->leaf_name);
	free(s->v.reason);
	free(s->v.header);
	free(s->v.log);
	free(s);
	*sp = NULL;
}
