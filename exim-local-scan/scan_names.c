/* scan_names.c — every way a mail client or Windows might read an attachment
 * name, checked against the blocked-extension list.
 *
 * A name (already RFC 2047/2231 decoded by hm_rfc2231, UTF-8 or raw bytes)
 * is read as: the whole string, cut at the first NUL (C-string clients),
 * with NULs removed; each without bidi and zero-width format characters
 * (U+202E shows "gpj.exe" as "exe.jpg"), reduced to its last path component,
 * cut at the first ':' (NTFS stream syntax "x.exe:y"), and with the trailing
 * dots and spaces Windows strips ("x.exe. ").  The extension of each reading
 * is compared case-insensitively with the list.
 * Relies on: nothing but libc.  Bounded: names over 4 KiB are cut to 4 KiB
 * (the tail, which holds the extension, is what is kept).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

#define NAME_MAX_CHECK 4096

/* format_char_len - length of a UTF-8 bidi/zero-width format character at
 * s (U+061C, U+200B-200F, U+202A-202E, U+2060-2069, U+FEFF), else 0 */
static size_t format_char_len(const unsigned char *s, size_t n)
{
	if (n >= 2 && s[0] == 0xD8 && s[1] == 0x9C)
		return 2;
	if (n < 3)
		return 0;
	if (s[0] == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x8B && s[2] <= 0x8F) || (s[2] >= 0xAA && s[2] <= 0xAE)))
		return 3;
	if (s[0] == 0xE2 && s[1] == 0x81 && s[2] >= 0xA0 && s[2] <= 0xA9)
		return 3;
	if (s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
		return 3;
	return 0;
}

/* ext_blocked - the extension of s[0..n) after Windows' trailing-strip, if listed */
static const char *ext_blocked(const struct scan_conf *c, const char *s, size_t n)
{
	/* last path component */
	for (size_t i = n; i-- > 0;)
		if (s[i] == '/' || s[i] == '\\') {
			s += i + 1;
			n -= i + 1;
			break;
		}
	/* Windows drops trailing dots and spaces (and clients trim control bytes) */
	while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ' ' || s[n - 1] == '\t' ||
			 (unsigned char)s[n - 1] < 32 || s[n - 1] == 127))
		n--;
	const char *dot = NULL;
	for (size_t i = n; i-- > 0;)
		if (s[i] == '.') {
			dot = s + i;
			break;
		}
	if (!dot)
		return NULL;
	size_t el = n - (size_t)(dot + 1 - s);
	if (el == 0 || el > 32)
		return NULL;
	char ext[33];
	for (size_t i = 0; i < el; i++)
		ext[i] = (char)tolower((unsigned char)dot[1 + i]);
	ext[el] = 0;
	/* "exe " inside the extension: Windows would not strip it there, but some
	 * clients trim the whole name; the trailing strip above handles the end */
	for (size_t i = 0; i < c->nblocked; i++)
		if (strcmp(ext, c->blocked[i]) == 0)
			return c->blocked[i];
	return NULL;
}

/* check_variants - s as is, then cut at the first ':' */
static const char *check_variants(const struct scan_conf *c, const char *s, size_t n)
{
	if (n == 0)
		return NULL;    /* nothing to read (and s[0..n) holds no bytes yet) */
	const char *b = ext_blocked(c, s, n);
	if (b)
		return b;
	const char *colon = memchr(s, ':', n);
	if (colon)
		return ext_blocked(c, s, (size_t)(colon - s));
	return NULL;
}

const char *scan_name_blocked(const struct scan_conf *c, const char *name, size_t len,
			      const char **suspicious_r)
{
	*suspicious_r = NULL;
	if (len > NAME_MAX_CHECK) {
		name += len - NAME_MAX_CHECK;
		len = NAME_MAX_CHECK;
	}
	char *buf = malloc(len + 1);
	if (!buf)
		return NULL;
	const char *hit = NULL;
	bool has_nul = memchr(name, 0, len) != NULL;
	bool has_fmt = false, has_ctl = false;
	for (size_t i = 0; i < len; i++) {
		if (format_char_len((const unsigned char *)name + i, len - i))
			has_fmt = true;
		unsigned char ch = (unsigned char)name[i];
		if ((ch < 32 && ch != 0) || ch == 127)
			has_ctl = true;
	}
	if (has_fmt)
		*suspicious_r = "bidi or invisible format character in a name";
	else if (has_nul)
		*suspicious_r = "NUL byte in a name";
	else if (has_ctl)
		*suspicious_r = "control character in a name";

	/* reading 1: as is; 2: cut at NUL; 3: NUL removed — each with and
	 * without the format characters */
	for (int variant = 0; variant < 3 && !hit; variant++) {
		size_t n = 0;
		if (variant == 0) {
			memcpy(buf, name, len);
			n = len;
		} else if (variant == 1) {
			if (!has_nul)
				continue;
			n = strnlen(name, len);
			memcpy(buf, name, n);
		} else {
			if (!has_nul)
				continue;
			for (size_t i = 0; i < len; i++)
				if (name[i])
					buf[n++] = name[i];
		}
		hit = check_variants(c, buf, n);
		if (!hit && has_fmt) {
			size_t o = 0;
			for (size_t i = 0; i < n;) {
				size_t fl = format_char_len((unsigned char *)buf + i, n - i);
				if (fl) {
					i += fl;
					continue;
				}
				buf[o++] = buf[i++];
			}
			hit = check_variants(c, buf, o);
		}
	}
	free(buf);
	return hit;
}
