/* hm_mutf7.c — UTF-8 <-> IMAP modified UTF-7 for folder names (see hm_mutf7.h).
 *
 * Relies on: glibc iconv's "UTF-7-IMAP" converter (glibc >= 2.36, Debian 12).
 * How it fails: -1 with errno; nothing is logged.  Output is bounded by the
 * caller's max_out; iconv is driven with a fixed-size scratch buffer.
 */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
#include "hm_mutf7.h"

/* plain_ascii - true when s is printable ASCII without '&' (same in both forms) */
static bool plain_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '&')
			return false;
	return true;
}

/* convert - run iconv from -> to over the NUL-terminated in, bounded by max_out */
static int convert(const char *from, const char *to, const char *in, size_t max_out,
		   char **out_r)
{
	struct hm_buf b;
	char scratch[512];
	iconv_t cd = iconv_open(to, from);
	if (cd == (iconv_t)-1)
		return -1;
	hm_buf_init(&b, max_out);
	char *ip = (char *)in;
	size_t il = strlen(in);
	int rc = 0;
	for (;;) {
		char *op = scratch;
		size_t ol = sizeof scratch;
		size_t r = iconv(cd, il ? &ip : NULL, il ? &il : NULL, &op, &ol);
		int e = errno;
		if (op > scratch && hm_buf_append(&b, scratch, (size_t)(op - scratch)) < 0) {
			rc = -1;
			break;
		}
		if (r == (size_t)-1) {
			if (e == E2BIG)
				continue;
			errno = (e == EINVAL) ? EILSEQ : e;   /* EINVAL = truncated input */
			rc = -1;
			break;
		}
		if (il == 0) {
			if (ip == NULL)
				break;          /* flushed the shift state */
			ip = NULL;              /* one more call to flush */
		}
	}
	iconv_close(cd);
	if (rc == 0 && memchr(hm_buf_cstr(&b), '\0', b.len) != NULL) {
		errno = EILSEQ;         /* an encoded NUL */
		rc = -1;
	}
	if (rc == 0) {
		size_t len;
		*out_r = hm_buf_steal(&b, &len);
		if (*out_r == NULL)
			rc = -1;
	}
	hm_buf_free(&b);
	return rc;
}

/* hm_mutf7_encode - see hm_mutf7.h */
int hm_mutf7_encode(const char *utf8, size_t max_out, char **out_r)
{
	if (utf8 == NULL || out_r == NULL) {
		errno = EINVAL;
		return -1;
	}
	*out_r = NULL;
	if (plain_ascii(utf8)) {
		if (strlen(utf8) > max_out) {
			errno = EMSGSIZE;
			return -1;
		}
		*out_r = strdup(utf8);
		return *out_r ? 0 : -1;
	}
	for (const unsigned char *p = (const unsigned char *)utf8; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			errno = EILSEQ;  /* control characters have no place in a name */
			return -1;
		}
	return convert("UTF-8", "UTF-7-IMAP", utf8, max_out, out_r);
}

/* hm_mutf7_decode - see hm_mutf7.h */
int hm_mutf7_decode(const char *mutf7, size_t max_out, char **out_r)
{
	if (mutf7 == NULL || out_r == NULL) {
		errno = EINVAL;
		return -1;
	}
	*out_r = NULL;
	for (const unsigned char *p = (const unsigned char *)mutf7; *p; p++)
		if (*p < 0x20 || *p > 0x7e) {
			errno = EILSEQ;  /* modified UTF-7 is printable ASCII only */
			return -1;
		}
	if (plain_ascii(mutf7)) {
		if (strlen(mutf7) > max_out) {
			errno = EMSGSIZE;
			return -1;
		}
		*out_r = strdup(mutf7);
		return *out_r ? 0 : -1;
	}
	char *u = NULL, *back = NULL;
	if (convert("UTF-7-IMAP", "UTF-8", mutf7, max_out, &u) < 0)
		return -1;
	/* canonical form only: the encoder must reproduce the input exactly */
	if (hm_mutf7_encode(u, strlen(mutf7) + 1, &back) < 0 || strcmp(back, mutf7) != 0) {
		free(u);
		free(back);
		errno = EILSEQ;
		return -1;
	}
	free(back);
	*out_r = u;
	return 0;
}
