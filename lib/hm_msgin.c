/* hm_msgin.c — streaming, normalising message reader (see hm_msgin.h).
 *
 * Relies on: read(2) on any fd (pipe, file).  How it fails: -1 with errno
 * from read(2) or ENOMEM; EINTR is retried.  Memory: one 64 KiB raw buffer
 * plus the header block, which grows from 16 KiB by doubling and is
 * bounded by max_header + 64 KiB.
 */
#define _GNU_SOURCE 1  /* memrchr */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hm_msgin.h"

/* hm_msgin_init - set up a reader on fd; nothing is read yet */
void hm_msgin_init(struct hm_msgin *m, int fd, size_t max_header)
{
	memset(m, 0, sizeof *m);
	m->fd = fd;
	m->max_header = max_header ? max_header : 256 * 1024;
}

/* hm_msgin_free - release the buffers */
void hm_msgin_free(struct hm_msgin *m)
{
	free(m->raw);
	free(m->header);
	m->raw = m->header = NULL;
}

/* refill - keep the unread tail, read more. Returns bytes read, 0 at EOF, -1 */
static ssize_t refill(struct hm_msgin *m)
{
	if (m->raw == NULL && (m->raw = malloc(HM_MSGIN_RAW)) == NULL)
		return -1;
	if (m->rpos > 0) {
		memmove(m->raw, m->raw + m->rpos, m->rlen - m->rpos);
		m->rlen -= m->rpos;
		m->rpos = 0;
	}
	if (m->eof || m->rlen == HM_MSGIN_RAW)
		return 0;
	for (;;) {
		ssize_t r = read(m->fd, m->raw + m->rlen, HM_MSGIN_RAW - m->rlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			m->eof = true;
		m->rlen += (size_t)r;
		return r;
	}
}

/* drop_from_line - remove a leading "From " line (mbox separator) */
static int drop_from_line(struct hm_msgin *m)
{
	m->started = true;
	while (m->rlen - m->rpos < 5 && !m->eof)
		if (refill(m) < 0)
			return -1;
	if (m->rlen - m->rpos < 5 || memcmp(m->raw + m->rpos, "From ", 5) != 0)
		return 0;
	m->from_dropped = true;
	for (;;) {
		char *lf = memchr(m->raw + m->rpos, '\n', m->rlen - m->rpos);
		if (lf != NULL) {
			m->rpos = (size_t)(lf - m->raw) + 1;
			return 0;
		}
		m->rpos = m->rlen;
		if (m->eof)
			return 0;
		if (refill(m) < 0)
			return -1;
	}
}

/* norm_read - copy up to n normalised bytes into dst straight from the fd stream */
static ssize_t norm_read(struct hm_msgin *m, char *dst, size_t n)
{
	size_t o = 0;

	if (!m->started && drop_from_line(m) < 0)
		return -1;
	while (o < n) {
		if (m->rpos == m->rlen) {
			if (o > 0 || m->eof)
				break;      /* return what we have before blocking again */
			if (refill(m) < 0)
				return -1;
			continue;
		}
		char *p = m->raw + m->rpos;
		size_t avail = m->rlen - m->rpos;
		if (*p == '\r') {
			if (avail == 1 && !m->eof) {
				/* CR at the end of the buffer: need the next byte */
				if (o > 0)
					break;
				if (refill(m) < 0)
					return -1;
				continue;
			}
			if (avail > 1 && p[1] == '\n') {
				m->rpos++;  /* CRLF: drop the CR, the LF follows */
				continue;
			}
			dst[o++] = '\r';   /* bare CR is kept */
			m->rpos++;
			continue;
		}
		size_t take = avail < n - o ? avail : n - o;
		char *cr = memchr(p, '\r', take);
		if (cr != NULL)
			take = (size_t)(cr - p);
		memcpy(dst + o, p, take);
		o += take;
		m->rpos += take;
	}
	for (const char *p = dst, *e = dst + o; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
		m->lf_count++;
	m->bytes += o;
	return (ssize_t)o;
}

/* grow_header - make room for more header bytes: the buffer starts at
 * HM_MSGIN_HDR_START and doubles up to cap (max_header + HM_MSGIN_RAW), so a
 * 4 KB message costs a small heap block, not a 1 MiB mmap.  Returns 0, or -1
 * (ENOMEM). */
static int grow_header(struct hm_msgin *m, size_t cap)
{
	size_t want = m->hbuf_cap ? m->hbuf_cap : HM_MSGIN_HDR_START;
	while (want <= m->hbuf_len && want < cap)
		want = want > cap / 2 ? cap : want * 2;
	if (want > cap)
		want = cap;
	if (want == m->hbuf_cap && m->header != NULL)
		return 0;
	char *n = realloc(m->header, want + 1);       /* +1: the closing NUL */
	if (n == NULL)
		return -1;
	m->header = n;
	m->hbuf_cap = want;
	return 0;
}

/* header_end - length of the header block in header[0..hbuf_len) when it
 * is complete ("\n" as the first byte, or up to and including "\n\n"),
 * else 0; from is where the previous search stopped. */
static size_t header_end(const char *h, size_t len, size_t from)
{
	if (len > 0 && h[0] == '\n')
		return 1;
	for (size_t i = from ? from - 1 : 0; i + 1 < len; i++) {
		const char *lf = memchr(h + i, '\n', len - 1 - i);
		if (lf == NULL)
			break;
		i = (size_t)(lf - h);
		if (h[i + 1] == '\n')
			return i + 2;
	}
	return 0;
}

/* hm_msgin_read_header - read the header block (see hm_msgin.h) */
int hm_msgin_read_header(struct hm_msgin *m)
{
	size_t cap = m->max_header + HM_MSGIN_RAW;
	size_t scan = 0;

	if (grow_header(m, cap) < 0)
		return -1;
	for (;;) {
		size_t end = header_end(m->header, m->hbuf_len, scan);
		if (end > 0) {
			m->header_len = end;
			break;
		}
		scan = m->hbuf_len;
		if (m->hbuf_len >= m->max_header) {
			/* too big: cut after the last complete line within the limit */
			char *lf = memrchr(m->header, '\n', m->max_header);
			m->header_len = lf ? (size_t)(lf - m->header) + 1 : m->max_header;
			break;
		}
		if (m->hbuf_len == m->hbuf_cap && grow_header(m, cap) < 0)
			return -1;
		ssize_t r = norm_read(m, m->header + m->hbuf_len, m->hbuf_cap - m->hbuf_len);
		if (r < 0)
			return -1;
		if (r == 0) {
			m->header_len = m->hbuf_len;   /* header only, no body */
			break;
		}
		m->hbuf_len += (size_t)r;
	}
	m->header[m->hbuf_len] = '\0';
	m->hbuf_pos = m->header_len;
	return 0;
}

/* hm_msgin_take_buffered - see hm_msgin.h */
const char *hm_msgin_take_buffered(struct hm_msgin *m, size_t *len_r)
{
	const char *p = m->header != NULL ? m->header + m->hbuf_pos : "";
	*len_r = m->hbuf_len - m->hbuf_pos;
	m->hbuf_pos = m->hbuf_len;
	return p;
}

/* hm_msgin_read - body bytes after the header block (see hm_msgin.h) */
ssize_t hm_msgin_read(struct hm_msgin *m, void *buf, size_t n)
{
	if (m->hbuf_pos < m->hbuf_len) {
		size_t take = m->hbuf_len - m->hbuf_pos;
		if (take > n)
			take = n;
		memcpy(buf, m->header + m->hbuf_pos, take);
		m->hbuf_pos += take;
		return (ssize_t)take;
	}
	return norm_read(m, buf, n);
}
