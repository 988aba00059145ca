/* hm_mutf7.h — folder names: UTF-8 <-> IMAP modified UTF-7 (RFC 3501 5.1.3).
 *
 * Dovecot stores Maildir++ folder names on disk in modified UTF-7; a folder
 * directory in raw UTF-8 or with a bare '&' is invisible to it.  The
 * conversion is glibc's iconv "UTF-7-IMAP"; decoding additionally insists on
 * the canonical form (re-encoding must give back the input), so "&AGE-"
 * (an encoded ASCII 'a') or an unterminated "&..." is refused.
 * Names without '&' and bytes >= 0x80 take a fast path with no iconv.
 *
 * Returns: 0 ok with *out_r a malloc'd NUL-terminated string (caller frees),
 *          -1 and errno EILSEQ (invalid input), ENOMEM, EMSGSIZE (longer
 *          than max_out bytes), or EINVAL (bad arguments).
 * No static state; safe inside Exim/Dovecot processes.
 */
#ifndef HM_MUTF7_H
#define HM_MUTF7_H
#include <stddef.h>

/* hm_mutf7_encode - UTF-8 (validated, no NUL) to modified UTF-7 */
int hm_mutf7_encode(const char *utf8, size_t max_out, char **out_r);
/* hm_mutf7_decode - canonical modified UTF-7 to UTF-8 */
int hm_mutf7_decode(const char *mutf7, size_t max_out, char **out_r);

#endif
