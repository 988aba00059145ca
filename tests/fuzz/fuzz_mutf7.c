/* fuzz_mutf7.c — libFuzzer harness for lib/hm_mutf7: folder names between
 * UTF-8 (Sieve fileinto, user input) and IMAP modified UTF-7 (Maildir++
 * directory names Dovecot reads).
 *
 * Input: byte 0 = output bound, then a name.  Checks: decode(encode(x)) == x
 * for every valid UTF-8 x; encode(decode(y)) == y for every y decode accepts
 * (canonical form); an encoded name is pure printable ASCII with no '/'
 * beyond what the input had, so it can never name a path outside the folder.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max;
	char *in, *enc = NULL, *dec = NULL;

	if (size < 1)
		return 0;
	max = data[0] ? (size_t)data[0] * 8 : 1 << 16;
	data++, size--;
	in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';

	if (hm_mutf7_encode(in, max, &enc) == 0) {
		if (strlen(enc) > max)
			abort();
		for (const unsigned char *p = (const unsigned char *)enc; *p; p++)
			if (*p < 0x20 || *p >= 0x7f)
				abort();
		if (hm_mutf7_decode(enc, 1 << 20, &dec) != 0 || strcmp(dec, in) != 0)
			abort();   /* round trip UTF-8 -> mUTF-7 -> UTF-8 broken */
		free(dec);
		dec = NULL;
		free(enc);
		enc = NULL;
	}
	if (hm_mutf7_decode(in, max, &dec) == 0) {
		if (strlen(dec) > max)
			abort();
		if (hm_mutf7_encode(dec, 1 << 20, &enc) != 0 || strcmp(enc, in) != 0)
			abort();   /* accepted a non-canonical form */
		free(enc);
		free(dec);
	}
	free(in);
	return 0;
}
