/* ext_encoded.c — RFC 5228 2.4.2.4 encoded-character:
 *   encoded-arb-octets   = "${hex:" hex-pair-seq "}"
 *   hex-pair-seq         = *blank hex-pair *(1*blank hex-pair) *blank
 *   encoded-unicode-char = "${unicode:" unicode-hex-seq "}"
 *   unicode-hex-seq      = *blank unicode-hex *(1*blank unicode-hex) *blank
 *   unicode-hex          = 1*HEXDIG
 * Decoded at compile time in every string of a script that requires the
 * extension.  A malformed sequence stays as written (RFC 5228 2.4.2.4); a
 * code point that is a surrogate or above U+10FFFF is an error.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_util.h"
#include "sv_int.h"

static int hexv(char c)
{
	return hm_hexval((unsigned char)c);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) { o[0] = (char)cp; return 1; }
	if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* decode_one - decode the sequence body p[0..n) into out; returns bytes
 * written, or -1 when malformed (left as is), -2 for a bad code point */
static long decode_one(bool uni, const char *p, size_t n, char *out)
{
	size_t i = 0, o = 0;
	bool any = false;
	while (i < n) {
		while (i < n && blank(p[i]))
			i++;
		if (i >= n)
			break;
		if (uni) {
			unsigned long cp = 0;
			size_t digits = 0;
			while (i < n && hexv(p[i]) >= 0) {
				if (digits++ < 8)
					cp = cp * 16 + (unsigned long)hexv(p[i]);
				else
					cp = 0x110000;
				i++;
			}
			if (digits == 0 || (i < n && !blank(p[i])))
				return -1;
			if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
				return -2;
			o += put_utf8(out + o, cp);
		} else {
			if (i + 1 >= n || hexv(p[i]) < 0 || hexv(p[i + 1]) < 0)
				return -1;
			out[o++] = (char)(hexv(p[i]) * 16 + hexv(p[i + 1]));
			i += 2;
			if (i < n && !blank(p[i]))
				return -1;
		}
		any = true;
	}
	return any ? (long)o : -1;
}

int sv_decode_encoded_chars(struct sv_comp *c, struct sv_str *s)
{
	if (!memmem(s->s, s->len, "${", 2))
		return 0;
	/* the result is never longer than the input; it lives with the tree */
	char *out = hm_arena_bytes(&c->s->arena, s->len + 1);
	if (!out) {
		sv_error(c, s->line, s->col, "out of memory");
		return -1;
	}
	size_t o = 0, i = 0;
	while (i < s->len) {
		if (s->s[i] == '$' && i + 1 < s->len && s->s[i + 1] == '{') {
			size_t start = i + 2;
			bool uni = false, hex = false;
			if (s->len - start >= 4 && strncasecmp(s->s + start, "hex:", 4) == 0) {
				hex = true;
				start += 4;
			} else if (s->len - start >= 8 && strncasecmp(s->s + start, "unicode:", 8) == 0) {
				uni = true;
				start += 8;
			}
			const char *close = (hex || uni) ?
				memchr(s->s + start, '}', s->len - start) : NULL;
			if (close) {
				size_t n = (size_t)(close - (s->s + start));
				char *tmp = malloc(n * 4 + 4);
				if (!tmp) {
					sv_error(c, s->line, s->col, "out of memory");
					return -1;
				}
				long r = decode_one(uni, s->s + start, n, tmp);
				if (r == -2) {
					sv_error(c, s->line, s->col,
						 "invalid unicode character in encoded-character sequence");
					free(tmp);
					return -1;
				}
				size_t whole = (size_t)(close - s->s) + 1 - i;
				if (r >= 0 && (size_t)r <= whole) {
					memcpy(out + o, tmp, (size_t)r);
					o += (size_t)r;
					i = (size_t)(close - s->s) + 1;
					free(tmp);
					continue;
				}
				free(tmp);
			}
		}
		out[o++] = s->s[i++];
	}
	out[o] = 0;
	s->s = out;
	s->len = o;
	return 0;
}
