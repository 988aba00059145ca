/* hm_mime.c — the one streaming MIME walker of homemail.
 *
 * A line-driven state machine: each part is in its header block
 * (S_HEADERS), its leaf body (S_BODY), or — for multiparts — in a preamble
 * or epilogue that is only searched for boundaries.  Open containers sit on
 * a frame stack bounded by max_depth; nothing recurses.  Every line that
 * starts with "--" is compared with the boundaries of all open multiparts,
 * innermost first, exact matches before prefix matches (RFC 2046 §5.1.1
 * allows only transport padding after the boundary; lenient clients accept
 * more, so a prefix match is taken as a boundary and reported).
 *
 * Relies on: hm_rfc2231 (parameters), hm_buf (bounded buffers).
 * Fails: limits and callbacks stop the walk (return 1); -1/ENOMEM otherwise.
 * Every byte is untrusted: lengths are tracked explicitly (NUL is data).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
#include "hm_mime.h"
#include "hm_util.h"

enum state { S_HEADERS, S_BODY, S_PREAMBLE, S_EPILOGUE };

struct frame {
	struct hm_mime_part *part; /* the container, owned by the frame */
	char *boundary;            /* NULL for a message/rfc822 frame */
	size_t blen;
};

struct hm_mime {
	struct hm_mime_limits lim;
	struct hm_mime_callbacks cb;
	void *ctx;
	enum state state;
	struct hm_mime_part *cur;  /* part in S_HEADERS / S_BODY, owned here */
	struct frame *frames;      /* max_depth + 2 entries */
	size_t nframes;
	struct hm_buf line;        /* a line split across feeds */
	bool line_overflow;
	struct hm_buf hdr;         /* header block: fields separated by '\n' */
	bool hdr_any;              /* a field has started in hdr */
	bool first_line;           /* next line is the first of the message */
	/* body decoding */
	bool pending_nl;
	unsigned b64_acc, b64_n;   /* bits and sextet count of the open quantum */
	bool b64_pad;              /* '=' seen in this quantum/stream */
	bool bad_enc_reported;
	bool skip_data;            /* part_data said HM_MIME_SKIP: validate only */
	char out[16384];
	size_t outlen;
	/* results */
	size_t nparts;
	unsigned maxdepth;
	bool stopped;
	bool finished;
};

static const char *const problem_names[HM_MIME_PROBLEM_MAX] = {
	[HM_MIME_LIMIT_DEPTH] = "depth-limit",
	[HM_MIME_LIMIT_PARTS] = "parts-limit",
	[HM_MIME_LIMIT_HEADER] = "header-size-limit",
	[HM_MIME_LIMIT_LINE] = "line-length-limit",
	[HM_MIME_LIMIT_BOUNDARY] = "boundary-length-limit",
	[HM_MIME_DUP_BOUNDARY] = "duplicate-boundary",
	[HM_MIME_PREFIX_BOUNDARY] = "prefix-boundary",
	[HM_MIME_NO_CLOSE] = "missing-close-boundary",
	[HM_MIME_NO_BOUNDARY] = "multipart-without-boundary",
	[HM_MIME_DUP_HEADER] = "duplicate-mime-header",
	[HM_MIME_DUP_PARAM] = "duplicate-parameter",
	[HM_MIME_PARAM_SYNTAX] = "parameter-syntax",
	[HM_MIME_HEADER_SYNTAX] = "header-syntax",
	[HM_MIME_BAD_ENCODING] = "bad-transfer-encoding",
	[HM_MIME_HDR_NUL] = "header-nul",
	[HM_MIME_HDR_BARE_CR] = "header-bare-cr",
	[HM_MIME_HDR_8BIT] = "header-8bit",
};

const char *hm_mime_problem_name(enum hm_mime_problem p)
{
	if ((int)p <= 0 || p >= HM_MIME_PROBLEM_MAX || !problem_names[p])
		return "unknown";
	return problem_names[p];
}

bool hm_mime_problem_is_limit(enum hm_mime_problem p)
{
	return p >= HM_MIME_LIMIT_DEPTH && p <= HM_MIME_LIMIT_BOUNDARY;
}

void hm_mime_limits_default(struct hm_mime_limits *l)
{
	l->max_depth = 20;
	l->max_parts = 1000;
	l->max_header = 1024 * 1024;
	l->max_line = 10000;
	l->max_boundary = 100;
}

size_t hm_mime_parts(const struct hm_mime *m) { return m->nparts; }
unsigned hm_mime_max_depth(const struct hm_mime *m) { return m->maxdepth; }

/* problem - report; limits always stop the walk, callbacks may stop it too */
static void problem(struct hm_mime *m, struct hm_mime_part *p, enum hm_mime_problem what,
		    const char *detail)
{
	int r = m->cb.problem ? m->cb.problem(m->ctx, p, what, detail) : 0;
	if (r == HM_MIME_STOP || hm_mime_problem_is_limit(what))
		m->stopped = true;
}

static void part_free(struct hm_mime_part *p)
{
	if (!p)
		return;
	hm_mimefield_free(&p->ct);
	hm_mimefield_free(&p->cd);
	free(p->ctype);
	free(p);
}

/* new_part - a part below PARENT; NULL with m->stopped on a limit, or ENOMEM */
static struct hm_mime_part *new_part(struct hm_mime *m, const struct hm_mime_part *parent)
{
	unsigned depth = parent ? parent->depth + 1 : 0;
	if (depth > m->lim.max_depth) {
		problem(m, (struct hm_mime_part *)parent, HM_MIME_LIMIT_DEPTH, NULL);
		return NULL;
	}
	if (m->nparts >= m->lim.max_parts) {
		problem(m, (struct hm_mime_part *)parent, HM_MIME_LIMIT_PARTS, NULL);
		return NULL;
	}
	struct hm_mime_part *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->index = m->nparts++;
	p->depth = depth;
	p->parent = parent;
	if (depth > m->maxdepth)
		m->maxdepth = depth;
	m->hdr_any = false;
	hm_buf_reset(&m->hdr);
	m->state = S_HEADERS;
	return p;
}

/* flush_out - hand the decoded bytes collected so far to part_data */
static void flush_out(struct hm_mime *m)
{
	if (m->outlen == 0 || !m->cur)
		return;
	m->cur->body_bytes += m->outlen;
	if (!m->stopped && !m->skip_data && m->cb.part_data) {
		int r = m->cb.part_data(m->ctx, m->cur, m->out, m->outlen);
		if (r == HM_MIME_STOP)
			m->stopped = true;
		else if (r == HM_MIME_SKIP)
			m->skip_data = true;
	}
	m->outlen = 0;
}

/* emit - queue decoded body bytes */
static void emit(struct hm_mime *m, const char *p, size_t n)
{
	if (m->skip_data)
		return;
	while (n > 0) {
		size_t room = sizeof m->out - m->outlen;
		size_t k = n < room ? n : room;
		memcpy(m->out + m->outlen, p, k);
		m->outlen += k;
		p += k;
		n -= k;
		if (m->outlen == sizeof m->out)
			flush_out(m);
	}
}

static void bad_encoding(struct hm_mime *m, const char *what)
{
	if (m->bad_enc_reported)
		return;
	m->bad_enc_reported = true;
	problem(m, m->cur, HM_MIME_BAD_ENCODING, what);
}

/* 0..63 digit, -1 invalid, -2 whitespace, -3 '=' (a short: the sentinels'
 * sign must not depend on char conversions) */
static const short b64val[256] = {
#define X -1
	X, X, X, X, X, X, X, X, X, -2, -2, X, X, -2, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	-2, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, -3, X, X,
	X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
	X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
#undef X
};

/* decode_b64 - one body line of base64; invalid characters are skipped (as
 * most clients do) and reported, data after '=' padding is decoded on
 * (some clients stop there: two readings) and reported.  Whole quanta of
 * valid characters take a fast path; with m->skip_data nothing is emitted
 * but the validation is the same. */
static void decode_b64(struct hm_mime *m, const char *s, size_t n)
{
	char buf[1024];
	size_t o = 0, i = 0;
	const unsigned char *u = (const unsigned char *)s;
	while (i < n) {
		if (m->b64_n == 0 && !m->b64_pad) {
			while (i + 4 <= n) {
				int a = b64val[u[i]], b = b64val[u[i + 1]], c = b64val[u[i + 2]],
				    d = b64val[u[i + 3]];
				if ((a | b | c | d) < 0)
					break;
				if (!m->skip_data) {
					buf[o++] = (char)((a << 2) | (b >> 4));
					buf[o++] = (char)((b << 4) | (c >> 2));
					buf[o++] = (char)((c << 6) | d);
					if (o > sizeof buf - 4) {
						emit(m, buf, o);
						o = 0;
					}
				}
				i += 4;
			}
			if (i >= n)
				break;
		}
		int v = b64val[u[i++]];
		if (v == -2)
			continue;
		if (v == -1) {
			bad_encoding(m, "invalid base64 character");
			continue;
		}
		if (v == -3) { /* '=' ends a quantum of 2 or 3 sextets; more '=' may follow */
			if (!m->b64_pad && m->b64_n < 2)
				bad_encoding(m, "misplaced base64 padding");
			m->b64_pad = true;
			m->b64_acc = 0;
			m->b64_n = 0;
			continue;
		}
		if (m->b64_pad) {
			bad_encoding(m, "base64 data after padding");
			m->b64_pad = false;
		}
		m->b64_acc = (m->b64_acc << 6) | (unsigned)v;
		m->b64_n++;
		char out = 0;
		bool have = true;
		if (m->b64_n == 2)
			out = (char)(m->b64_acc >> 4);
		else if (m->b64_n == 3)
			out = (char)(m->b64_acc >> 2);
		else if (m->b64_n == 4) {
			out = (char)m->b64_acc;
			m->b64_acc = 0;
			m->b64_n = 0;
		} else {
			have = false;
		}
		if (have && !m->skip_data) {
			buf[o++] = out;
			if (o > sizeof buf - 4) {
				emit(m, buf, o);
				o = 0;
			}
		}
	}
	if (o)
		emit(m, buf, o);
}

/* decode_qp - one body line of quoted-printable (RFC 2045 §6.7): trailing
 * whitespace dropped, "=" at the end is a soft break, bad "=" kept literally */
static void decode_qp(struct hm_mime *m, const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (m->pending_nl)
		emit(m, "\n", 1);
	m->pending_nl = true;
	char buf[1024];
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=') {
			if (i + 1 == n) {
				m->pending_nl = false;
				break;
			}
			int h, l;
			if (i + 2 < n && (h = hm_hexval((unsigned char)s[i + 1])) >= 0 &&
			    (l = hm_hexval((unsigned char)s[i + 2])) >= 0) {
				buf[o++] = (char)(h * 16 + l);
				i += 2;
			} else {
				buf[o++] = '=';
			}
		} else {
			buf[o++] = s[i];
		}
		if (o == sizeof buf) {
			emit(m, buf, o);
			o = 0;
		}
	}
	emit(m, buf, o);
}

/* body_line - one line of a leaf body (newline not included) */
static void body_line(struct hm_mime *m, const char *s, size_t n)
{
	switch (m->cur->cte) {
	case HM_CTE_BASE64:
		decode_b64(m, s, n);
		break;
	case HM_CTE_QP:
		decode_qp(m, s, n);
		break;
	default:
		if (m->pending_nl)
			emit(m, "\n", 1);
		m->pending_nl = true;
		emit(m, s, n);
		break;
	}
}

static int finish_headers(struct hm_mime *m);

/* close_headers - a part ends inside its header block: complete it (and the
 * empty embedded parts of message/rfc822 chains, bounded by max_depth) */
static int close_headers(struct hm_mime *m)
{
	while (!m->stopped && m->cur && m->state == S_HEADERS)
		if (finish_headers(m) < 0)
			return -1;
	return 0;
}

/* end_cur - finish the current leaf (or header-only) part */
static void end_cur(struct hm_mime *m)
{
	if (!m->cur)
		return;
	if (m->state == S_BODY) {
		if (m->cur->cte == HM_CTE_BASE64 && m->b64_n == 1)
			bad_encoding(m, "truncated base64");
		flush_out(m);
	}
	if (!m->stopped && m->cb.part_end && m->cb.part_end(m->ctx, m->cur) == HM_MIME_STOP)
		m->stopped = true;
	part_free(m->cur);
	m->cur = NULL;
}

/* pop_frame - end the container on top of the stack */
static void pop_frame(struct hm_mime *m)
{
	struct frame *f = &m->frames[--m->nframes];
	if (!m->stopped && m->cb.part_end && m->cb.part_end(m->ctx, f->part) == HM_MIME_STOP)
		m->stopped = true;
	part_free(f->part);
	free(f->boundary);
	f->part = NULL;
	f->boundary = NULL;
}

/* parse_cte - the Content-Transfer-Encoding value: lowercased token,
 * comments dropped */
static enum hm_mime_cte parse_cte(const char *v, size_t n)
{
	char tok[32];
	size_t o = 0, i = 0;
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	while (i < n && v[i] != ' ' && v[i] != '\t' && v[i] != '(' && v[i] != ';') {
		if (o + 1 >= sizeof tok)
			return HM_CTE_UNKNOWN;
		tok[o++] = (char)tolower((unsigned char)v[i++]);
	}
	tok[o] = 0;
	if (strcmp(tok, "7bit") == 0 || o == 0)
		return HM_CTE_7BIT;
	if (strcmp(tok, "8bit") == 0)
		return HM_CTE_8BIT;
	if (strcmp(tok, "binary") == 0)
		return HM_CTE_BINARY;
	if (strcmp(tok, "quoted-printable") == 0)
		return HM_CTE_QP;
	if (strcmp(tok, "base64") == 0)
		return HM_CTE_BASE64;
	return HM_CTE_UNKNOWN;
}

static void param_problems(struct hm_mime *m, struct hm_mime_part *p, const struct hm_mimefield *f,
			   const char *which)
{
	if (f->problems & HM_PARAM_DUP)
		problem(m, p, HM_MIME_DUP_PARAM, which);
	if (f->problems & (HM_PARAM_SYNTAX | HM_PARAM_GAP | HM_PARAM_ORDER |
			   HM_PARAM_NUL))
		problem(m, p, HM_MIME_PARAM_SYNTAX, which);
}

struct count_ctx {
	size_t n;
};

static int count_reading(void *ctx, const char *v, size_t l)
{
	(void)v;
	(void)l;
	((struct count_ctx *)ctx)->n++;
	return 0;
}

/* finish_headers - the header block of m->cur is complete: parse it, tell the
 * caller, then set up body decoding or push a container frame */
static int finish_headers(struct hm_mime *m)
{
	struct hm_mime_part *p = m->cur;
	/* split the block into fields with the project's RFC 5322 parser; the
	 * block was bounded by max_header already, so nothing is truncated */
	struct hm_header_limits hl = {.max_block = m->lim.max_header + 2, .max_fields = 0};
	struct hm_header *h = NULL;
	if (hm_header_parse(m->hdr.data ? m->hdr.data : "", m->hdr.len, &hl, &h) < 0)
		return -1;
	/* the first of each MIME field counts; a second one is a problem */
	static const char *const fname[3] = {"content-type", "content-transfer-encoding",
					     "content-disposition"};
	static const char *const flabel[3] = {"Content-Type", "Content-Transfer-Encoding",
					      "Content-Disposition"};
	const struct hm_hfield *mf[3] = {NULL, NULL, NULL};
	size_t it = 0;
	const struct hm_hfield *hf;
	while ((hf = hm_header_next(h, NULL, &it)) != NULL) {
		if (hf->flags & HM_HFIELD_NO_COLON) {
			problem(m, p, HM_MIME_HEADER_SYNTAX, "line is not a header field");
			continue;
		}
		for (size_t k = 0; k < 3; k++) {
			if (!hm_header_name_is(hf, fname[k]))
				continue;
			if (mf[k])
				problem(m, p, HM_MIME_DUP_HEADER, flabel[k]);
			else
				mf[k] = hf;
			break;
		}
	}
	const struct hm_hfield *ct = mf[0], *cte = mf[1], *cd = mf[2];
	p->hdr = h;

	/* parameters are read from the raw value: NUL bytes stay visible */
	if (ct && hm_mimefield_parse(ct->raw, ct->raw_len, &p->ct) < 0)
		goto enomem;
	if (cd && hm_mimefield_parse(cd->raw, cd->raw_len, &p->cd) < 0)
		goto enomem;
	if (ct)
		param_problems(m, p, &p->ct, "Content-Type");
	if (cd)
		param_problems(m, p, &p->cd, "Content-Disposition");
	p->cte = cte ? parse_cte(cte->raw, cte->raw_len) : HM_CTE_7BIT;
	if (p->cte == HM_CTE_UNKNOWN)
		problem(m, p, HM_MIME_BAD_ENCODING, "unknown Content-Transfer-Encoding");

	const char *type = (ct && p->ct.value && strchr(p->ct.value, '/')) ? p->ct.value : NULL;
	if (!type) {
		const struct hm_mime_part *par = p->parent;
		type = (par && par->ctype && strcmp(par->ctype, "multipart/digest") == 0)
			       ? "message/rfc822"
			       : "text/plain";
	}
	p->ctype = strdup(type);
	if (!p->ctype)
		goto enomem;

	char *boundary = NULL;
	size_t blen = 0;
	if (strncmp(p->ctype, "multipart/", 10) == 0) {
		struct count_ctx cc = {0};
		if (hm_mimefield_readings(&p->ct, "boundary", count_reading, &cc) < 0)
			goto enomem;
		if (cc.n > 1)
			problem(m, p, HM_MIME_DUP_BOUNDARY, "two boundary parameters");
		errno = 0;
		boundary = hm_mimefield_get(&p->ct, "boundary", &blen);
		if (!boundary && errno == ENOMEM)
			goto enomem;
		if (boundary && memchr(boundary, 0, blen)) {
			free(boundary);
			boundary = NULL;
		}
		if (!boundary || blen == 0) {
			problem(m, p, HM_MIME_NO_BOUNDARY, NULL);
			free(boundary);
			boundary = NULL;
		} else if (blen > m->lim.max_boundary) {
			problem(m, p, HM_MIME_LIMIT_BOUNDARY, NULL);
			free(boundary);
			boundary = NULL;
		} else {
			for (size_t i = 0; i < m->nframes; i++) {
				struct frame *f = &m->frames[i];
				if (!f->boundary)
					continue;
				size_t mn = f->blen < blen ? f->blen : blen;
				if (f->blen == blen && memcmp(f->boundary, boundary, blen) == 0)
					problem(m, p, HM_MIME_DUP_BOUNDARY, "nested multipart reuses a boundary");
				else if (memcmp(f->boundary, boundary, mn) == 0)
					problem(m, p, HM_MIME_PREFIX_BOUNDARY,
						"one boundary is a prefix of another");
			}
		}
	}
	bool rfc822 = strcmp(p->ctype, "message/rfc822") == 0 ||
		      strcmp(p->ctype, "message/global") == 0;
	bool is_msg = rfc822 && p->cte != HM_CTE_BASE64 && p->cte != HM_CTE_QP;
	/* RFC 2046 5.2.1 allows only 7bit/8bit/binary here, but clients decode
	 * and show the embedded message, whose parts this walk would not see */
	if (rfc822 && !is_msg)
		problem(m, p, HM_MIME_BAD_ENCODING, "encoded message/rfc822");
	p->multipart = boundary != NULL;
	p->message = is_msg;

	if (!m->stopped && m->cb.part_begin && m->cb.part_begin(m->ctx, p) == HM_MIME_STOP)
		m->stopped = true;
	p->hdr = NULL;
	hm_header_free(&h);
	hm_buf_reset(&m->hdr);

	if (boundary || is_msg) {
		/* frames has max_depth + 2 slots and depth is checked on every new part */
		struct frame *f = &m->frames[m->nframes++];
		f->part = p;
		f->boundary = boundary;
		f->blen = blen;
		m->cur = NULL;
		if (is_msg) {
			m->cur = new_part(m, p);
			if (!m->cur && !m->stopped)
				return -1;
			m->first_line = false;
		} else {
			m->state = S_PREAMBLE;
		}
	} else {
		m->state = S_BODY;
		m->pending_nl = false;
		m->b64_acc = m->b64_n = 0;
		m->b64_pad = false;
		m->bad_enc_reported = false;
		m->skip_data = false;
		m->outlen = 0;
	}
	return 0;
enomem:
	p->hdr = NULL;
	hm_header_free(&h);
	errno = ENOMEM;
	return -1;
}

/* match_boundary - is line a boundary of an open multipart?  Returns the
 * frame index or -1; *close_r set for a close delimiter, *prefix_r for a match
 * that is not exact (RFC 2046 allows only whitespace after it). */
static long match_boundary(struct hm_mime *m, const char *s, size_t n, bool *close_r,
			   bool *prefix_r)
{
	if (n < 3 || s[0] != '-' || s[1] != '-' || m->nframes == 0)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t j = m->nframes; j-- > 0;) {
			struct frame *f = &m->frames[j];
			if (!f->boundary || n - 2 < f->blen || memcmp(s + 2, f->boundary, f->blen) != 0)
				continue;
			const char *r = s + 2 + f->blen, *e = s + n;
			bool cl = false;
			if (e - r >= 2 && r[0] == '-' && r[1] == '-') {
				cl = true;
				r += 2;
			}
			bool ws = true;
			for (const char *q = r; q < e; q++)
				if (*q != ' ' && *q != '\t' && *q != '\r')
					ws = false;
			if (pass == 0 && !ws)
				continue;
			*close_r = cl;
			*prefix_r = !ws;
			return (long)j;
		}
	}
	return -1;
}

/* boundary_line - act on a boundary of frame fi */
static int boundary_line(struct hm_mime *m, size_t fi, bool close)
{
	/* a part that ends inside its header block has no body */
	if (close_headers(m) < 0)
		return -1;
	if (m->stopped)
		return 0;
	end_cur(m);
	while (m->nframes > fi + 1) {
		struct frame *f = &m->frames[m->nframes - 1];
		if (f->boundary)
			problem(m, f->part, HM_MIME_NO_CLOSE, "ended by an enclosing boundary");
		pop_frame(m);
	}
	if (m->stopped)
		return 0;
	if (close) {
		pop_frame(m);
		m->state = S_EPILOGUE;
		return 0;
	}
	m->cur = new_part(m, m->frames[fi].part);
	if (!m->cur)
		return m->stopped ? 0 : -1;
	return 0;
}

/* header_line - one line inside a header block */
static int header_line(struct hm_mime *m, const char *s, size_t n)
{
	struct hm_mime_part *p = m->cur;
	if (n == 0)
		return finish_headers(m);
	bool first = m->first_line;
	m->first_line = false;
	/* an mbox "From " line before the message's own header block */
	if (first && p->depth == 0 && n >= 5 && memcmp(s, "From ", 5) == 0)
		return 0;
	unsigned fl = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0)
			fl |= 1;
		else if (c == '\r' && i + 1 < n)
			fl |= 2;
		else if (c >= 0x80)
			fl |= 4;
	}
	if ((fl & HM_MIME_HF_NUL) && !(p->hdr_flags & HM_MIME_HF_NUL))
		problem(m, p, HM_MIME_HDR_NUL, NULL);
	if ((fl & HM_MIME_HF_BARE_CR) && !(p->hdr_flags & HM_MIME_HF_BARE_CR))
		problem(m, p, HM_MIME_HDR_BARE_CR, NULL);
	if ((fl & HM_MIME_HF_8BIT) && !(p->hdr_flags & HM_MIME_HF_8BIT))
		problem(m, p, HM_MIME_HDR_8BIT, NULL);
	p->hdr_flags |= fl;
	size_t need;
	if (!hm_add_ok(m->hdr.len, n + 1, &need) || need > m->lim.max_header) {
		problem(m, p, HM_MIME_LIMIT_HEADER, NULL);
		return 0;
	}
	if (s[0] == ' ' || s[0] == '\t') {
		size_t k = 0;
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		/* whitespace-only: a fold for RFC 5322, the end of the header block
		 * for some clients */
		if (k == n)
			problem(m, p, HM_MIME_HEADER_SYNTAX, "whitespace-only line in a header block");
	}
	/* the raw block (LF line ends) goes to hm_header_parse at its end */
	if (hm_buf_append(&m->hdr, s, n) < 0 || hm_buf_putc(&m->hdr, '\n') < 0)
		return -1;
	m->hdr_any = true;
	return 0;
}

/* do_line - dispatch one complete line (newline and its CR removed) */
static int do_line(struct hm_mime *m, const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n > m->lim.max_line) {
		problem(m, m->cur, HM_MIME_LIMIT_LINE, NULL);
		return 0;
	}
	bool close = false, prefix = false;
	long fi = match_boundary(m, s, n, &close, &prefix);
	if (fi >= 0) {
		if (prefix)
			problem(m, m->frames[fi].part, HM_MIME_PREFIX_BOUNDARY,
				"boundary followed by other text");
		if (m->stopped)
			return 0;
		return boundary_line(m, (size_t)fi, close);
	}
	switch (m->state) {
	case S_HEADERS:
		return header_line(m, s, n);
	case S_BODY:
		body_line(m, s, n);
		return 0;
	default:
		return 0; /* preamble / epilogue: skipped */
	}
}

struct hm_mime *hm_mime_new(const struct hm_mime_limits *lim, const struct hm_mime_callbacks *cb,
			    void *ctx)
{
	struct hm_mime *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	if (lim)
		m->lim = *lim;
	else
		hm_mime_limits_default(&m->lim);
	if (m->lim.max_depth > 100000)
		m->lim.max_depth = 100000;
	m->cb = *cb;
	m->ctx = ctx;
	m->frames = calloc((size_t)m->lim.max_depth + 2, sizeof *m->frames);
	hm_buf_init(&m->line, m->lim.max_line + 2);
	hm_buf_init(&m->hdr, m->lim.max_header + 1);
	m->first_line = true;
	if (m->frames)
		m->cur = new_part(m, NULL);
	if (!m->frames || !m->cur) {
		hm_mime_free(&m);
		errno = ENOMEM;
		return NULL;
	}
	return m;
}

int hm_mime_feed(struct hm_mime *m, const char *data, size_t len)
{
	while (len > 0 && !m->stopped) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (m->line.len > 0 || m->line_overflow || !nl) {
			/* partial line: keep it, bounded by max_line (+CR) */
			if (!m->line_overflow && hm_buf_append(&m->line, data, n) < 0) {
				if (errno != EMSGSIZE)
					return -1;
				m->line_overflow = true;
			}
			if (nl) {
				int r;
				if (m->line_overflow) {
					problem(m, m->cur, HM_MIME_LIMIT_LINE, NULL);
					r = 0;
				} else {
					r = do_line(m, m->line.data ? m->line.data : "", m->line.len);
				}
				hm_buf_reset(&m->line);
				m->line_overflow = false;
				if (r < 0)
					return -1;
			}
		} else if (do_line(m, data, n) < 0) {
			return -1;
		}
		if (!nl)
			break;
		data += n + 1;
		len -= n + 1;
	}
	return m->stopped ? 1 : 0;
}

int hm_mime_finish(struct hm_mime *m)
{
	if (m->finished)
		return m->stopped ? 1 : 0;
	m->finished = true;
	if (!m->stopped && (m->line.len > 0 || m->line_overflow)) {
		int r = 0;
		if (m->line_overflow)
			problem(m, m->cur, HM_MIME_LIMIT_LINE, NULL);
		else
			r = do_line(m, m->line.data, m->line.len);
		hm_buf_reset(&m->line);
		if (r < 0)
			return -1;
	}
	if (close_headers(m) < 0)
		return -1;
	if (!m->stopped)
		end_cur(m);
	while (m->nframes > 0 && !m->stopped) {
		struct frame *f = &m->frames[m->nframes - 1];
		if (f->boundary)
			problem(m, f->part, HM_MIME_NO_CLOSE, "message ended");
		pop_frame(m);
	}
	return m->stopped ? 1 : 0;
}

void hm_mime_free(struct hm_mime **mp)
{
	struct hm_mime *m = *mp;
	if (!m)
		return;
	part_free(m->cur);
	if (m->frames)
		for (size_t i = 0; i < m->nframes; i++) {
			part_free(m->frames[i].part);
			free(m->frames[i].boundary);
		}
	free(m->frames);
	hm_buf_free(&m->line);
	hm_buf_free(&m->hdr);
	free(m);
	*mp = NULL;
}
