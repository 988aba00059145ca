/* hm_rfc2047.h — RFC 2047 encoded-word decoding and charset conversion to UTF-8.
 *
 * Used for header values before Sieve matching, for display names in
 * hm_address, and for attachment names in the scan engine.  Conversion goes
 * through glibc iconv, so any charset iconv knows works.  All output goes
 * into a bounded hm_buf: when the bound is reached the text is cut at a UTF-8
 * character boundary and the call reports truncation instead of growing.
 *
 * Returns (all functions): 0 ok, 1 ok but output truncated at out->max,
 * -1 and errno set (ENOMEM; EINVAL for an unknown charset in
 * hm_charset_to_utf8, in which case nothing was appended).
 */
#ifndef HM_RFC2047_H
#define HM_RFC2047_H
#include <stddef.h>
#include "hm_buf.h"

/* hm_rfc2047_decode - append the UTF-8 form of an (unfolded) header value.
 * Encoded-words (=?charset[*lang]?B|Q?text?=) are decoded wherever they
 * appear; linear white space between two adjacent encoded-words is dropped
 * (RFC 2047 section 6.2).  Text outside encoded-words, undecodable words and
 * words in unknown charsets are kept; any byte sequence that is not valid
 * UTF-8 becomes U+FFFD, so the output is always valid UTF-8. */
int hm_rfc2047_decode(struct hm_buf *dst, const char *in, size_t len);

/* hm_charset_to_utf8 - append in[0..len) converted from charset to UTF-8;
 * invalid input sequences become U+FFFD. */
int hm_charset_to_utf8(struct hm_buf *dst, const char *charset,
		       const char *in, size_t len);

/* hm_utf8_append_valid - append bytes, replacing invalid UTF-8 with U+FFFD. */
int hm_utf8_append_valid(struct hm_buf *dst, const char *in, size_t len);

/* hm_utf8_seq_len - length of the valid UTF-8 sequence starting at p
 * (1..4), or 0 when p[0..n) does not start with one. */
size_t hm_utf8_seq_len(const unsigned char *p, size_t n);

#endif
