/* hm_rfc2047.c — RFC 2047 encoded-words and charset conversion to UTF-8.
 *
 * What for: header values are matched (Sieve), shown (display names) and
 * checked (attachment names) as UTF-8; this file is the one decoder.
 * Relies on: glibc iconv for every charset except UTF-8/US-ASCII (fast path),
 * hm_buf for bounded output.
 * How it fails: hostile input never makes it read or write out of bounds;
 * undecodable parts are copied as they are (made valid UTF-8), an unknown
 * charset keeps the decoded bytes, output beyond the buffer's bound is cut at
 * a character boundary and reported (return 1).  Only ENOMEM is an error.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_rfc2047.h"
#include "hm_util.h"

#define MAX_CHARSET_NAME 64

/* append_cut - append as much of p[0..n) as fits in b, cutting at a UTF-8
 * boundary.  Returns 0 all appended, 1 truncated, -1 ENOMEM. */
static int append_cut(struct hm_buf *b, const char *p, size_t n)
{
	size_t room = b->max > b->len ? b->max - b->len : 0;
	if (n <= room)
		return hm_buf_append(b, p, n) < 0 ? -1 : 0;
	/* back up over continuation bytes so no character is split */
	while (room > 0 && room < n && ((unsigned char)p[room] & 0xC0) == 0x80)
		room--;
	if (room > 0 && hm_buf_append(b, p, room) < 0 && errno == ENOMEM)
		return -1;
	return 1;
}

size_t hm_utf8_seq_len(const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned min;
	unsigned cp;
	if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
	else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
	else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
	else return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int hm_utf8_append_valid(struct hm_buf *dst, const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, run = 0;
	while (i < len) {
		size_t l = hm_utf8_seq_len(p + i, len - i);
		if (l > 0) {
			i += l;
			continue;
		}
		/* flush the valid run, then a replacement character */
		int r = append_cut(dst, in + run, i - run);
		if (r != 0)
			return r;
		r = append_cut(dst, "\xEF\xBF\xBD", 3);
		if (r != 0)
			return r;
		i++;
		run = i;
	}
	return append_cut(dst, in + run, len - run);
}

/* is_utf8_name - charset names that need no conversion */
static int is_utf8_name(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

int hm_charset_to_utf8(struct hm_buf *dst, const char *charset,
		       const char *in, size_t len)
{
	if (is_utf8_name(charset))
		return hm_utf8_append_valid(dst, in, len);
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		errno = EINVAL;
		return -1;
	}
	char tmp[1024];
	char *ip = (char *)in;
	size_t ileft = len;
	int ret = 0;
	while (ileft > 0) {
		char *op = tmp;
		size_t oleft = sizeof tmp;
		size_t r = iconv(cd, &ip, &ileft, &op, &oleft);
		int e = errno;
		/* glibc's iconv passes code points above U+10FFFF through for
		 * UTF-8 aliases ("UTF8//"): validate what it produced (found
		 * by tests/fuzz, regression in tests/fuzz/regressions/rfc2047) */
		int a = hm_utf8_append_valid(dst, tmp, (size_t)(op - tmp));
		if (a != 0) {
			ret = a;
			goto done;
		}
		if (r == (size_t)-1) {
			if (e == E2BIG)
				continue;
			/* EILSEQ or EINVAL (truncated sequence): replace one byte */
			a = append_cut(dst, "\xEF\xBF\xBD", 3);
			if (a != 0) {
				ret = a;
				goto done;
			}
			ip++;
			ileft--;
			iconv(cd, NULL, NULL, NULL, NULL);
		}
	}
	/* flush shift state (stateful charsets such as ISO-2022-JP) */
	{
		char *op = tmp;
		size_t oleft = sizeof tmp;
		iconv(cd, NULL, NULL, &op, &oleft);
		ret = hm_utf8_append_valid(dst, tmp, (size_t)(op - tmp));
	}
done:
	iconv_close(cd);
	return ret;
}

/* decode_text - B or Q decode p[0..n) into dst (capacity >= n); returns length */
static size_t decode_text(char enc, const char *p, size_t n, char *dst)
{
	size_t o = 0;
	if (enc == 'B' || enc == 'b')
		return hm_base64_decode_lax(dst, p, n);   /* '=' and junk skipped */
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (p[i] == '_') {
			dst[o++] = ' ';
		} else if (p[i] == '=' && i + 2 < n &&
			   (hi = hm_hexval((unsigned char)p[i + 1])) >= 0 &&
			   (lo = hm_hexval((unsigned char)p[i + 2])) >= 0) {
			dst[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			dst[o++] = p[i];
		}
	}
	return o;
}

/* parse_word - recognise an encoded-word at in[0..len).  On success returns
 * its total length and fills the parts; 0 when it is not one. */
static size_t parse_word(const char *in, size_t len, const char **cs_r, size_t *cslen_r,
			 char *enc_r, const char **txt_r, size_t *txtlen_r)
{
	if (len < 8 || in[0] != '=' || in[1] != '?')
		return 0;
	size_t i = 2;
	while (i < len && in[i] != '?' && (unsigned char)in[i] > ' ' && in[i] != 0x7f)
		i++;
	if (i >= len || in[i] != '?' || i == 2)
		return 0;
	*cs_r = in + 2;
	*cslen_r = i - 2;
	i++;
	if (i + 1 >= len || in[i + 1] != '?')
		return 0;
	if (in[i] != 'B' && in[i] != 'b' && in[i] != 'Q' && in[i] != 'q')
		return 0;
	*enc_r = in[i];
	i += 2;
	size_t start = i;
	while (i + 1 < len && !(in[i] == '?' && in[i + 1] == '=')) {
		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n')
			return 0;
		i++;
	}
	if (i + 1 >= len)
		return 0;
	*txt_r = in + start;
	*txtlen_r = i - start;
	return i + 2;
}

int hm_rfc2047_decode(struct hm_buf *dst, const char *in, size_t len)
{
	size_t i = 0, lit = 0;    /* lit: start of pending literal text */
	int prev_word = 0;        /* the pending literal follows an encoded-word */
	char stackbuf[512];
	while (i < len) {
		if (in[i] != '=' || i + 1 >= len || in[i + 1] != '?') {
			i++;
			continue;
		}
		const char *cs, *txt;
		size_t cslen, txtlen;
		char enc;
		size_t wl = parse_word(in + i, len - i, &cs, &cslen, &enc, &txt, &txtlen);
		if (wl == 0) {
			i++;
			continue;
		}
		/* literal text before the word: dropped when it is only white
		 * space separating two encoded-words */
		int only_ws = 1;
		for (size_t k = lit; k < i; k++)
			if (in[k] != ' ' && in[k] != '\t' && in[k] != '\r' && in[k] != '\n')
				only_ws = 0;
		if (!(prev_word && only_ws)) {
			int r = hm_utf8_append_valid(dst, in + lit, i - lit);
			if (r != 0)
				return r;
		}
		char charset[MAX_CHARSET_NAME + 1];
		/* RFC 2231 section 5: charset*language */
		size_t cl = cslen;
		const char *star = memchr(cs, '*', cslen);
		if (star)
			cl = (size_t)(star - cs);
		char *dec = txtlen <= sizeof stackbuf ? stackbuf : malloc(txtlen);
		if (!dec)
			return -1;
		size_t dl = decode_text(enc, txt, txtlen, dec);
		int r;
		if (cl == 0 || cl > MAX_CHARSET_NAME) {
			r = hm_utf8_append_valid(dst, dec, dl);
		} else {
			memcpy(charset, cs, cl);
			charset[cl] = 0;
			r = hm_charset_to_utf8(dst, charset, dec, dl);
			if (r < 0 && errno == EINVAL)
				r = hm_utf8_append_valid(dst, dec, dl);
		}
		if (dec != stackbuf)
			free(dec);
		if (r != 0)
			return r;
		i += wl;
		lit = i;
		prev_word = 1;
	}
	return hm_utf8_append_valid(dst, in + lit, len - lit);
}
