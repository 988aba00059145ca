/* fuzz_msgin.c — libFuzzer harness for lib/hm_msgin, the LDA's streaming
 * message reader (CRLF -> LF, leading "From " line dropped, header held in
 * memory up to a bound, the rest streamed).
 *
 * Input: byte 0 = header bound and read size, the rest is the message as
 * Exim's pipe would hand it over (through a pipe-like memfd).  Checks the
 * output against a simple reference normalisation: nothing lost, nothing
 * added, counters (bytes, LFs) right, header_len within what was read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hm_msgin.h"
#include "hm_util.h"

/* reference - what the reader must produce from in[0..n) */
static size_t reference(const uint8_t *in, size_t n, char *out, int *from_dropped)
{
	size_t i = 0, o = 0;

	*from_dropped = 0;
	if (n >= 5 && memcmp(in, "From ", 5) == 0) {
		const uint8_t *nl = memchr(in, '\n', n);

		*from_dropped = 1;
		i = nl ? (size_t)(nl - in) + 1 : n;
	}
	for (; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
			continue;
		out[o++] = (char)in[i];
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_msgin m;
	size_t maxh, rd, explen, got = 0;
	char *exp, *out;
	int fd, fromd;
	unsigned long long lfs = 0;

	if (size < 1)
		return 0;
	maxh = 16 + (size_t)(data[0] & 0x0f) * 64;
	rd = 1 + (size_t)(data[0] >> 4) * 97;
	data++, size--;
	fd = memfd_create("msgin", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (hm_write_full(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return 0;
	}
	exp = malloc(size + 1);
	out = malloc(size + 1);
	if (!exp || !out) {
		free(exp);
		free(out);
		close(fd);
		return 0;
	}
	explen = reference(data, size, exp, &fromd);
	hm_msgin_init(&m, fd, maxh);
	if (hm_msgin_read_header(&m) == 0) {
		ssize_t n;

		if (m.header_len > m.hbuf_len || (m.hbuf_len && !m.header))
			abort();
		if ((bool)fromd != m.from_dropped)
			abort();
		while ((n = hm_msgin_read(&m, out + got, size + 1 - got < rd ? size + 1 - got : rd)) > 0) {
			got += (size_t)n;
			if (got > size)
				abort();   /* more bytes out than came in */
		}
		if (n < 0)
			abort();
		/* the header block plus the streamed rest must be the whole message */
		{
			size_t hl = m.header_len;
			char *all = malloc(hl + got + 1);

			if (all) {
				memcpy(all, m.header, hl);
				memcpy(all + hl, out, got);
				if (hl + got != explen || memcmp(all, exp, explen) != 0)
					abort();
				for (size_t i = 0; i < explen; i++)
					lfs += exp[i] == '\n';
				if (m.bytes != explen || m.lf_count != lfs)
					abort();
				free(all);
			}
		}
	}
	hm_msgin_free(&m);
	close(fd);
	free(exp);
	free(out);
	return 0;
}
