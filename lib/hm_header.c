/* hm_header.c — RFC 5322 header block parser (see hm_header.h for the contract).
 *
 * What for: every homemail piece that looks at a message's header (deliver,
 *   sieve, scan, junk) splits it here and nowhere else.
 * Relies on: nothing but libc and hm_util's case-insensitive compare.
 * How it fails: only on allocation failure (ENOMEM); hostile bytes never make
 *   it fail, they are flagged and kept.  Two passes: the first finds field
 *   boundaries (bounded by max_block/max_fields), the second copies names,
 *   raw values and unfolded values into one arena sized with checked math.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hm_header.h"
#include "hm_util.h"

struct span {
	size_t start;     /* first byte of the field */
	size_t end;       /* end of the content, before the final line end */
	size_t next;      /* first byte after the final line end */
};

/* line_end - find the end of the line starting at p.
 * Sets *content_end_r (before CR LF / LF) and returns the start of the next line. */
static size_t line_end(const unsigned char *d, size_t len, size_t p, size_t *content_end_r)
{
	const unsigned char *lf = memchr(d + p, '\n', len - p);
	if (lf == NULL) {
		*content_end_r = len;
		return len;
	}
	size_t e = (size_t)(lf - d);
	*content_end_r = (e > p && d[e - 1] == '\r') ? e - 1 : e;
	return e + 1;
}

/* find_fields - pass 1: field boundaries, bounded by the limits. */
static int find_fields(const unsigned char *d, size_t len, size_t max_block,
		       size_t max_fields, struct hm_header *h, struct span **spans_r)
{
	struct span *sp = NULL;
	size_t n = 0, cap = 0, p = 0;

	if (max_block < len && len - max_block > 2)
		len = max_block + 2;   /* +2: room for a final empty line at the limit */
	while (p < len) {
		size_t ce, nx = line_end(d, len, p, &ce);
		if (ce == p) {
			/* empty line: only possible with a LF, so it ends the header */
			h->has_body_sep = true;
			p = nx;
			break;
		}
		/* extend over continuation lines (RFC 5322 2.2.3) */
		size_t start = p, end = ce;
		p = nx;
		while (p < len && (d[p] == ' ' || d[p] == '\t')) {
			nx = line_end(d, len, p, &ce);
			end = ce;
			p = nx;
		}
		if (p > max_block || n >= max_fields) {
			h->truncated = true;
			p = start;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32, bytes;
			if (!hm_mul_ok(ncap, sizeof *sp, &bytes)) {
				errno = ENOMEM;
				goto fail;
			}
			struct span *nsp = realloc(sp, bytes);
			if (nsp == NULL)
				goto fail;
			sp = nsp;
			cap = ncap;
		}
		sp[n].start = start;
		sp[n].end = end;
		sp[n].next = p;
		n++;
	}
	h->block_len = p;
	h->count = n;
	*spans_r = sp;
	return 0;
fail:
	free(sp);
	return -1;
}

/* unfold - write the unfolded, cleaned value of raw[0..n) to dst; returns its length.
 * dst must hold 3*n+1 bytes (a NUL becomes 3 bytes of U+FFFD). */
static size_t unfold(const unsigned char *raw, size_t n, char *dst)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = raw[i];
		if (c == '\r' && i + 1 < n && raw[i + 1] == '\n')
			continue;             /* CR of a CRLF fold */
		if (c == '\n')
			continue;             /* every LF inside raw is a fold: drop it */
		if (c == '\r') {
			dst[o++] = ' ';       /* bare CR */
		} else if (c == '\0') {
			dst[o++] = (char)0xef; dst[o++] = (char)0xbf; dst[o++] = (char)0xbd;
		} else {
			dst[o++] = (char)c;
		}
	}
	/* trim WSP both ends */
	size_t s = 0;
	while (s < o && (dst[s] == ' ' || dst[s] == '\t'))
		s++;
	while (o > s && (dst[o - 1] == ' ' || dst[o - 1] == '\t'))
		o--;
	if (s > 0)
		memmove(dst, dst + s, o - s);
	o -= s;
	dst[o] = '\0';
	return o;
}

/* fill_field - pass 2 for one field: copy name/raw/value into the arena at *ap. */
static void fill_field(const unsigned char *d, const struct span *s,
		       struct hm_hfield *f, char **ap)
{
	char *a = *ap;
	size_t first_end;
	const unsigned char *colon;

	memset(f, 0, sizeof *f);
	f->offset = s->start;
	f->length = s->next - s->start;
	line_end(d, s->end, s->start, &first_end);
	if (first_end > s->end)
		first_end = s->end;
	colon = memchr(d + s->start, ':', first_end - s->start);

	size_t raw_start;
	if (colon == NULL || d[s->start] == ' ' || d[s->start] == '\t') {
		f->flags |= HM_HFIELD_NO_COLON;
		raw_start = s->start;
		a[0] = '\0';
		f->name = a;
		a += 1;
	} else {
		size_t ne = (size_t)(colon - d);
		raw_start = ne + 1;
		while (ne > s->start && (d[ne - 1] == ' ' || d[ne - 1] == '\t'))
			ne--;
		f->name_len = ne - s->start;
		memcpy(a, d + s->start, f->name_len);
		a[f->name_len] = '\0';
		for (size_t i = 0; i < f->name_len; i++) {
			unsigned char c = (unsigned char)a[i];
			if (c < 33 || c > 126)
				f->flags |= HM_HFIELD_BAD_NAME;
		}
		if (f->name_len == 0)
			f->flags |= HM_HFIELD_BAD_NAME;
		f->name = a;
		a += f->name_len + 1;
	}
	f->raw_len = s->end - raw_start;
	memcpy(a, d + raw_start, f->raw_len);
	a[f->raw_len] = '\0';
	f->raw = a;
	for (size_t i = 0; i < f->raw_len; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c == '\0')
			f->flags |= HM_HFIELD_HAS_NUL;
		else if (c >= 0x80)
			f->flags |= HM_HFIELD_8BIT;
		else if (c == '\n')
			f->flags |= HM_HFIELD_FOLDED;
	}
	a += f->raw_len + 1;
	f->value = a;
	f->value_len = unfold((const unsigned char *)f->raw, f->raw_len, a);
	a += f->value_len + 1;
	*ap = a;
}

/* hm_header_parse - see hm_header.h */
int hm_header_parse(const void *data, size_t len,
		    const struct hm_header_limits *lim, struct hm_header **hdr_r)
{
	const unsigned char *d = data;
	size_t max_block = HM_HEADER_DEFAULT_MAX_BLOCK, max_fields = HM_HEADER_DEFAULT_MAX_FIELDS;
	struct span *spans = NULL;
	struct hm_header *h;

	if (hdr_r == NULL || (data == NULL && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	*hdr_r = NULL;
	if (lim != NULL) {
		if (lim->max_block)
			max_block = lim->max_block;
		if (lim->max_fields)
			max_fields = lim->max_fields;
	}
	h = calloc(1, sizeof *h);
	if (h == NULL)
		return -1;
	if (len > 0 && find_fields(d, len, max_block, max_fields, h, &spans) < 0) {
		free(h);
		return -1;
	}

	/* arena: per field name+1, raw+1, value (<= 3*raw)+1 */
	size_t total = 1, fbytes;
	for (size_t i = 0; i < h->count; i++) {
		size_t flen = spans[i].end - spans[i].start, v;
		if (!hm_mul_ok(flen, 5, &v) || !hm_add_ok(v, 3, &v) || !hm_add_ok(total, v, &total))
			goto nomem;
	}
	if (!hm_mul_ok(h->count ? h->count : 1, sizeof *h->fields, &fbytes))
		goto nomem;
	h->fields = calloc(1, fbytes);
	h->arena_ = malloc(total);
	if (h->fields == NULL || h->arena_ == NULL)
		goto nomem_free;
	char *a = h->arena_;
	for (size_t i = 0; i < h->count; i++)
		fill_field(d, &spans[i], &h->fields[i], &a);
	free(spans);
	*hdr_r = h;
	return 0;
nomem:
	errno = ENOMEM;
nomem_free:
	free(spans);
	free(h->fields);
	free(h->arena_);
	free(h);
	errno = ENOMEM;
	return -1;
}

/* hm_header_free - see hm_header.h */
void hm_header_free(struct hm_header **hdr)
{
	if (hdr == NULL || *hdr == NULL)
		return;
	free((*hdr)->fields);
	free((*hdr)->arena_);
	free(*hdr);
	*hdr = NULL;
}

/* hm_header_name_is - see hm_header.h */
bool hm_header_name_is(const struct hm_hfield *f, const char *name)
{
	if (f == NULL || name == NULL || (f->flags & HM_HFIELD_NO_COLON))
		return false;
	return hm_strcaseeq_n(f->name, f->name_len, name);
}

/* hm_header_is_delivery_trace - see hm_header.h */
bool hm_header_is_delivery_trace(const struct hm_hfield *f)
{
	return hm_header_name_is(f, "Return-Path") || hm_header_name_is(f, "Envelope-to") ||
	       hm_header_name_is(f, "Delivery-date") || hm_header_name_is(f, "Delivered-To");
}

/* hm_header_next - see hm_header.h */
const struct hm_hfield *hm_header_next(const struct hm_header *h, const char *name,
				       size_t *iter)
{
	if (h == NULL || iter == NULL)
		return NULL;
	while (*iter < h->count) {
		const struct hm_hfield *f = &h->fields[(*iter)++];
		if (name == NULL || hm_header_name_is(f, name))
			return f;
	}
	return NULL;
}

/* hm_header_get - see hm_header.h */
const struct hm_hfield *hm_header_get(const struct hm_header *h, const char *name)
{
	size_t it = 0;
	return name ? hm_header_next(h, name, &it) : NULL;
}

/* hm_header_count_name - see hm_header.h */
size_t hm_header_count_name(const struct hm_header *h, const char *name)
{
	size_t it = 0, n = 0;
	while (hm_header_next(h, name, &it) != NULL)
		n++;
	return n;
}
