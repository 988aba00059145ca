/* sv_message.c — what a script can see of the message: header fields
 * (unfolded, RFC 2047-decoded on demand) and body parts for the body test.
 *
 * What for: one place that turns the raw message into the strings Sieve
 * matches against, the way Pigeonhole does: header values unfolded and
 * trimmed, encoded-words decoded to UTF-8; body parts decoded from their
 * Content-Transfer-Encoding and converted from their charset to UTF-8.
 * Relies on: lib/hm_header (the one header parser), hm_rfc2047, hm_address
 * (address lists, parsed once per field and run however many tests ask).
 * How it fails: never on hostile input (garbage is matched as it is); the
 * MIME walk is limited to Dovecot's defaults (nesting 100, 10,000 parts) and
 * the decoded body bytes are bounded by limits.max_body; ENOMEM is an error,
 * and so is a message beyond the part limits (sv_msg_parts -2: the body test
 * fails rather than skip parts unseen) or a header beyond hm_header's
 * (10,000 fields, 1 MiB: sv_msg_init -2, the run fails, implicit keep).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_address.h"
#include "hm_header.h"
#include "hm_rfc2047.h"
#include "hm_util.h"
#include "sv_int.h"

#define MAX_MIME_DEPTH 100   /* Dovecot's default max. nested MIME parts */
#define MAX_PARTS 10000      /* Dovecot's default max. total MIME parts */
#define MAX_DECODED_HEADER (256 * 1024)

int sv_msg_init(struct sv_msg *mm, const struct sieve_message *m)
{
	memset(mm, 0, sizeof *mm);
	mm->m = m;
	struct hm_header_limits lim = HM_HEADER_LIMITS_DEFAULT;
	if (hm_header_parse(m->data ? m->data : "", m->data ? m->len : 0, &lim, &mm->hdr) < 0)
		return -1;
	/* fields past the parser's limits would go unseen by every test (and
	 * their lines would be read as body): not filtered at all instead */
	if (mm->hdr->truncated)
		return -2;
	mm->dec = calloc(mm->hdr->count + 1, sizeof *mm->dec);
	mm->declen = calloc(mm->hdr->count + 1, sizeof *mm->declen);
	mm->unf = calloc(mm->hdr->count + 1, sizeof *mm->unf);
	mm->unflen = calloc(mm->hdr->count + 1, sizeof *mm->unflen);
	mm->addrs = calloc(mm->hdr->count + 1, sizeof(struct hm_addr_list *));
	if (!mm->dec || !mm->declen || !mm->unf || !mm->unflen || !mm->addrs)
		return -1;
	size_t off = mm->hdr->block_len;
	if (off > m->len)
		off = m->len;
	mm->body = m->data ? m->data + off : "";
	mm->blen = m->data ? m->len - off : 0;
	return 0;
}

void sv_msg_free(struct sv_msg *mm)
{
	if (mm->hdr && mm->dec && mm->unf && mm->addrs)
		for (size_t i = 0; i < mm->hdr->count; i++) {
			free(mm->dec[i]);
			free(mm->unf[i]);
			if (mm->addrs[i]) {
				hm_address_list_free(mm->addrs[i]);
				free(mm->addrs[i]);
			}
		}
	free(mm->addrs);
	free(mm->dec);
	free(mm->unf);
	free(mm->unflen);
	free(mm->declen);
	hm_header_free(&mm->hdr);
	for (size_t i = 0; i < mm->nparts; i++) {
		free(mm->parts[i].ctype);
		free(mm->parts[i].text);
	}
	free(mm->parts);
	memset(mm, 0, sizeof *mm);
}

size_t sv_msg_nfields(const struct sv_msg *mm)
{
	return mm->hdr ? mm->hdr->count : 0;
}

bool sv_hdr_is(const struct sv_msg *mm, size_t i, const char *name, size_t nlen)
{
	const struct hm_hfield *f = &mm->hdr->fields[i];
	if (f->flags & HM_HFIELD_NO_COLON)
		return false;
	return f->name_len == nlen && strncasecmp(f->name, name, nlen) == 0;
}

/* unfold - the value of a folded field as Pigeonhole sees it: line ends
 * removed and a TAB that starts a continuation line read as a space
 * (Dovecot's "clean one-line" header parsing), NUL as U+FFFD, trimmed */
static char *unfold(const struct hm_hfield *f, size_t *len_r)
{
	struct hm_buf b;
	hm_buf_init(&b, f->raw_len * 3 + 1);
	for (size_t k = 0; k < f->raw_len; k++) {
		char ch = f->raw[k];
		int r = 0;
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			if (k + 1 < f->raw_len && f->raw[k + 1] == '\t') {
				r = hm_buf_putc(&b, ' ');
				k++;
			}
		} else if (ch == 0) {
			r = hm_buf_puts(&b, "\xEF\xBF\xBD");
		} else {
			r = hm_buf_putc(&b, ch);
		}
		if (r < 0) {
			hm_buf_free(&b);
			return NULL;
		}
	}
	size_t s = 0, e = b.len;
	const char *d = hm_buf_cstr(&b);
	while (s < e && (d[s] == ' ' || d[s] == '\t'))
		s++;
	while (e > s && (d[e - 1] == ' ' || d[e - 1] == '\t'))
		e--;
	char *out = sv_strndup(d + s, e - s);
	*len_r = e - s;
	hm_buf_free(&b);
	return out;
}

const char *sv_hdr_uvalue(struct sv_msg *mm, size_t i, size_t *len_r)
{
	const struct hm_hfield *f = &mm->hdr->fields[i];
	if (!(f->flags & HM_HFIELD_FOLDED)) {
		*len_r = f->value_len;
		return f->value;
	}
	if (!mm->unf[i]) {
		mm->unf[i] = unfold(f, &mm->unflen[i]);
		if (!mm->unf[i]) {
			*len_r = f->value_len;
			return f->value;
		}
	}
	*len_r = mm->unflen[i];
	return mm->unf[i];
}

const char *sv_hdr_value(struct sv_msg *mm, size_t i, size_t *len_r)
{
	if (!mm->dec[i]) {
		size_t ul;
		const char *uv = sv_hdr_uvalue(mm, i, &ul);
		struct hm_buf b;
		hm_buf_init(&b, MAX_DECODED_HEADER);
		if (hm_rfc2047_decode(&b, uv, ul) < 0) {
			hm_buf_free(&b);
			return NULL;
		}
		mm->declen[i] = b.len;
		mm->dec[i] = hm_buf_steal(&b, NULL);
		if (!mm->dec[i])
			return NULL;
	}
	*len_r = mm->declen[i];
	return mm->dec[i];
}

const struct hm_addr_list *sv_hdr_addresses(struct sv_msg *mm, size_t i)
{
	if (!mm->addrs[i]) {
		size_t len;
		const char *v = sv_hdr_uvalue(mm, i, &len);
		struct hm_addr_list *l = calloc(1, sizeof *l);
		if (!l)
			return NULL;
		if (hm_address_parse(v, len, SV_MAX_ADDRS_PER_FIELD, l) < 0) {
			free(l);
			return NULL;
		}
		mm->addrs[i] = l;
	}
	return mm->addrs[i];
}

const char *sv_msg_header1(struct sv_msg *mm, const char *name, size_t *len_r)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < sv_msg_nfields(mm); i++)
		if (sv_hdr_is(mm, i, name, nl))
			return sv_hdr_value(mm, i, len_r);
	return NULL;
}

/* ---- MIME ----------------------------------------------------------- */

/* param - value of parameter name in a Content-Type value (malloc'd) */
static char *param(const char *v, const char *name)
{
	size_t nl = strlen(name);
	const char *p = strchr(v, ';');
	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, nl) == 0) {
			const char *q = p + nl;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '=') {
				q++;
				while (*q == ' ' || *q == '\t')
					q++;
				if (*q == '"') {
					q++;
					struct hm_buf b;
					hm_buf_init(&b, 1024);
					while (*q && *q != '"') {
						if (*q == '\\' && q[1])
							q++;
						if (hm_buf_putc(&b, *q++) < 0)
							break;
					}
					char *s = hm_buf_steal(&b, NULL);
					hm_buf_free(&b);
					return s;
				}
				size_t n = strcspn(q, "; \t");
				return sv_strndup(q, n);
			}
		}
		p = strchr(p, ';');
	}
	return NULL;
}

/* ctype_of - lower-case "type/subtype" of a Content-Type value, or NULL */
static char *ctype_of(const char *v)
{
	size_t n = strcspn(v, "; \t");
	if (n == 0 || !memchr(v, '/', n))
		return NULL;
	char *s = sv_strndup(v, n);
	if (s)
		for (char *p = s; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p += 32;
	return s;
}

/* decode_cte - decode base64 / quoted-printable into out (len <= in len) */
static size_t decode_cte(const char *cte, const char *in, size_t len, char *out)
{
	size_t o = 0;
	if (cte && strcasecmp(cte, "base64") == 0)
		return hm_base64_decode_lax(out, in, len);
	if (cte && strcasecmp(cte, "quoted-printable") == 0) {
		for (size_t i = 0; i < len; i++) {
			if (in[i] != '=') {
				out[o++] = in[i];
				continue;
			}
			int hi, lo;
			if (i + 2 < len && (hi = hm_hexval((unsigned char)in[i + 1])) >= 0 &&
			    (lo = hm_hexval((unsigned char)in[i + 2])) >= 0) {
				out[o++] = (char)(hi * 16 + lo);
				i += 2;
				continue;
			}
			/* soft line break: "=" [WSP] CRLF */
			size_t k = i + 1;
			while (k < len && (in[k] == ' ' || in[k] == '\t'))
				k++;
			if (k < len && in[k] == '\r')
				k++;
			if (k < len && in[k] == '\n') {
				i = k;
				continue;
			}
			if (k >= len) {
				i = len;
				continue;
			}
			out[o++] = in[i];
		}
		return o;
	}
	memcpy(out, in, len);
	return len;
}

/* add_part - decode and record one part */
static int add_part(struct sv_msg *mm, const char *ctype, const char *cte,
		    const char *charset, const char *data, size_t len, size_t *budget)
{
	if (mm->nparts >= MAX_PARTS) {
		mm->parts_cut = true;
		return 0;
	}
	if (len > *budget)
		len = *budget;
	*budget -= len;
	if (mm->nparts == mm->pcap) {
		size_t nc = mm->pcap ? mm->pcap * 2 : 4;
		void *nv = realloc(mm->parts, nc * sizeof *mm->parts);
		if (!nv)
			return -1;
		mm->parts = nv;
		mm->pcap = nc;
	}
	char *raw = malloc(len + 1);
	if (!raw)
		return -1;
	size_t rl = decode_cte(cte, data, len, raw);
	struct sv_bodypart *p = &mm->parts[mm->nparts];
	p->ctype = strdup(ctype);
	if (!p->ctype) {
		free(raw);
		return -1;
	}
	if (strncmp(ctype, "text/", 5) == 0) {
		struct hm_buf b;
		hm_buf_init(&b, rl * 4 + 16);
		int r = hm_charset_to_utf8(&b, charset ? charset : "us-ascii", raw, rl);
		if (r < 0 && errno == EINVAL)
			r = hm_utf8_append_valid(&b, raw, rl);
		free(raw);
		if (r < 0) {
			hm_buf_free(&b);
			free(p->ctype);
			return -1;
		}
		p->len = b.len;
		p->text = hm_buf_steal(&b, NULL);
	} else {
		raw[rl] = 0;
		p->text = raw;
		p->len = rl;
	}
	if (!p->text) {
		free(p->ctype);
		return -1;
	}
	mm->nparts++;
	return 0;
}

/* find_boundary - offset of the next line "--boundary" at or after pos; also
 * the start of the CRLF before it (end of the previous part) */
static bool find_boundary(const char *d, size_t len, size_t pos, const char *bd, size_t bl,
			  size_t *line_r, size_t *prev_end_r, bool *close_r, size_t *after_r)
{
	size_t i = pos;
	while (i + 2 + bl <= len) {
		if ((i == 0 || d[i - 1] == '\n') && d[i] == '-' && d[i + 1] == '-' &&
		    memcmp(d + i + 2, bd, bl) == 0) {
			*line_r = i;
			size_t pe = i;
			if (pe > pos && d[pe - 1] == '\n')
				pe--;
			if (pe > pos && d[pe - 1] == '\r')
				pe--;
			*prev_end_r = pe;
			size_t k = i + 2 + bl;
			*close_r = k + 1 < len && d[k] == '-' && d[k + 1] == '-';
			const char *nl = memchr(d + k, '\n', len - k);
			*after_r = nl ? (size_t)(nl - d) + 1 : len;
			return true;
		}
		const char *nl = memchr(d + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - d) + 1;
	}
	return false;
}

/* walk - one MIME entity (its header block at d) */
static int walk(struct sv_msg *mm, const char *d, size_t len, const char *defctype,
		int depth, size_t *budget, bool top)
{
	struct hm_header *h = NULL;
	const char *body, *ctv, *ctev;
	size_t blen;
	if (top) {
		h = mm->hdr;
		body = mm->body;
		blen = mm->blen;
	} else {
		struct hm_header_limits lim = HM_HEADER_LIMITS_DEFAULT;
		if (hm_header_parse(d, len, &lim, &h) < 0)
			return -1;
		if (h->truncated)
			mm->parts_cut = true;   /* a part's header past the limits */
		size_t off = h->block_len <= len ? h->block_len : len;
		body = d + off;
		blen = len - off;
	}
	const struct hm_hfield *f = hm_header_get(h, "Content-Type");
	ctv = f ? f->value : NULL;
	f = hm_header_get(h, "Content-Transfer-Encoding");
	ctev = f ? f->value : NULL;
	char *ctype = ctv ? ctype_of(ctv) : NULL;
	char *charset = ctv ? param(ctv, "charset") : NULL;
	char *cte = ctev ? sv_strndup(ctev, strcspn(ctev, " \t;")) : NULL;
	int ret = 0;
	const char *type = ctype ? ctype : defctype;
	char *bd = NULL;
	if ((strncmp(type, "multipart/", 10) == 0 || strcmp(type, "message/rfc822") == 0) &&
	    depth >= MAX_MIME_DEPTH)
		mm->parts_cut = true;
	if (strncmp(type, "multipart/", 10) == 0 && ctv && depth < MAX_MIME_DEPTH &&
	    (bd = param(ctv, "boundary")) != NULL && bd[0]) {
		size_t bl = strlen(bd);
		size_t line, pe, after;
		bool close;
		const char *child_def = strcmp(type, "multipart/digest") == 0 ?
					"message/rfc822" : "text/plain";
		if (!find_boundary(body, blen, 0, bd, bl, &line, &pe, &close, &after)) {
			ret = add_part(mm, type, NULL, NULL, body, blen, budget);
			goto out;
		}
		/* preamble and epilogue are matched as the multipart's own text */
		struct hm_buf pre;
		hm_buf_init(&pre, blen + 1);
		hm_buf_append(&pre, body, pe);
		size_t pos = after;
		while (!close) {
			size_t l2, pe2, after2;
			bool close2;
			if (!find_boundary(body, blen, pos, bd, bl, &l2, &pe2, &close2, &after2)) {
				/* unterminated: the rest is the last part */
				if (walk(mm, body + pos, blen - pos, child_def, depth + 1, budget,
					 false) < 0)
					ret = -1;
				pos = blen;
				break;
			}
			if (walk(mm, body + pos, pe2 - pos, child_def, depth + 1, budget, false) < 0) {
				ret = -1;
				break;
			}
			pos = after2;
			close = close2;
		}
		if (pos < blen)
			hm_buf_append(&pre, body + pos, blen - pos);
		if (ret == 0 && pre.len > 0)
			ret = add_part(mm, type, NULL, NULL, pre.data, pre.len, budget);
		hm_buf_free(&pre);
		goto out;
	}
	if (strcmp(type, "message/rfc822") == 0 && depth < MAX_MIME_DEPTH) {
		/* Pigeonhole walks into a forwarded message: its parts are
		 * matched, the message/rfc822 part itself is not */
		ret = walk(mm, body, blen, "text/plain", depth + 1, budget, false);
		goto out;
	}
	ret = add_part(mm, type, cte, charset, body, blen, budget);
out:
	free(bd);
	free(ctype);
	free(charset);
	free(cte);
	if (!top)
		hm_header_free(&h);
	return ret;
}

int sv_msg_parts(struct sv_msg *mm, size_t max_bytes)
{
	if (mm->parts_done)
		return mm->parts_rc;
	mm->parts_done = true;
	size_t budget = max_bytes;
	if (mm->blen == 0)
		return 0;       /* Pigeonhole: a message without body has no parts */
	mm->parts_rc = walk(mm, NULL, 0, "text/plain", 0, &budget, true) < 0 ? -1 :
		       mm->parts_cut ? -2 : 0;
	return mm->parts_rc;
}
