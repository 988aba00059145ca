/* hm_msgin.h — streaming message input, normalised the way dovecot-lda stores it.
 *
 * NAME
 *   hm_msgin - read a message from a file descriptor: header in memory,
 *              body streamed
 *
 * SYNOPSIS
 *   struct hm_msgin m;
 *   hm_msgin_init(&m, 0, 256 * 1024);
 *   if (hm_msgin_read_header(&m) < 0) -> errno
 *   m.header / m.header_len : the header block (incl. the empty line)
 *   p = hm_msgin_take_buffered(&m, &n)  (optional) body bytes already read
 *   while ((n = hm_msgin_read(&m, buf, sizeof buf)) > 0) ... body bytes
 *   hm_msgin_free(&m);
 *
 * DESCRIPTION
 *   Normalisation (what dovecot-lda does with the same input):
 *   - CR LF becomes LF (also across read boundaries); a bare CR is kept;
 *   - a leading mbox "From " line (first five bytes "From ") is dropped;
 *   - NUL bytes are kept; a missing final newline stays missing.
 *   The header block is read into memory up to max_header bytes (then the
 *   rest of the message, wherever it is, is streamed as "body": nothing is
 *   lost, only the header lookup sees less).  The body goes through a fixed
 *   64 KiB buffer, so memory stays bounded for any message size.
 *   Counters: m.lf_count counts the LFs handed out so far (header included),
 *   so size + lf_count is the CRLF size Dovecot calls the virtual size (W=).
 *
 * RETURNS
 *   hm_msgin_read_header: 0, or -1 and errno (read error, ENOMEM).
 *   hm_msgin_read: bytes (>0), 0 at end of message, -1 and errno.
 */
#ifndef HM_MSGIN_H
#define HM_MSGIN_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HM_MSGIN_RAW 65536
#define HM_MSGIN_HDR_START 16384   /* first size of the header buffer */

struct hm_msgin {
	int fd;
	size_t max_header;
	char *raw;                 /* HM_MSGIN_RAW bytes read from fd */
	size_t rpos, rlen;
	bool eof;
	bool started;              /* leading "From " check done */
	char *header;              /* normalised header block (+ maybe body start) */
	size_t header_len;         /* bytes of header block incl. the empty line */
	size_t hbuf_len;           /* bytes in header[] (>= header_len) */
	size_t hbuf_cap;           /* bytes header[] can hold (+1 for a NUL) */
	size_t hbuf_pos;           /* body bytes already served from header[] */
	bool from_dropped;         /* a leading "From " line was removed */
	unsigned long long lf_count;   /* LFs in the bytes handed out */
	unsigned long long bytes;      /* bytes handed out (header + body) */
};

void hm_msgin_init(struct hm_msgin *m, int fd, size_t max_header);
int hm_msgin_read_header(struct hm_msgin *m);
ssize_t hm_msgin_read(struct hm_msgin *m, void *buf, size_t n);
void hm_msgin_free(struct hm_msgin *m);

/* hm_msgin_take_buffered - the body bytes hm_msgin_read_header already
 * holds after the header block, without a copy: a pointer into m->header
 * (valid until hm_msgin_free; the first call after hm_msgin_read_header
 * returns m->header + m->header_len) and their count in *len_r (may be 0).
 * They count as handed out: the next hm_msgin_read continues after them. */
const char *hm_msgin_take_buffered(struct hm_msgin *m, size_t *len_r);

#endif
