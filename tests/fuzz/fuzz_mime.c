/* fuzz_mime.c — libFuzzer harness for lib/hm_mime, the streaming MIME walker.
 *
 * Input: byte 0 picks small limits and a feed chunk size (so every split of
 * lines across feeds is exercised), the rest is the message.  Checks beyond
 * "no crash": every begun part is ended exactly once (unless the walk was
 * stopped), depth never exceeds the limit, part count never exceeds the limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_mime.h"

struct st {
	size_t begins, ends, max_parts;
	unsigned max_depth;
	uint64_t bytes;
};

static int b(void *c, struct hm_mime_part *p)
{
	struct st *s = c;
	s->begins++;
	if (p->depth > s->max_depth || p->index >= s->max_parts)
		abort();
	return HM_MIME_CONTINUE;
}

static int d(void *c, struct hm_mime_part *p, const char *x, size_t n)
{
	struct st *s = c;
	s->bytes += n;
	if (n && (x[0] == 0x7f && x[n - 1] == 0x7f))
		s->bytes++;
	return HM_MIME_CONTINUE;
}

static int e(void *c, struct hm_mime_part *p)
{
	((struct st *)c)->ends++;
	return HM_MIME_CONTINUE;
}

static int pr(void *c, struct hm_mime_part *p, enum hm_mime_problem w, const char *det)
{
	if (!hm_mime_problem_name(w))
		abort();
	return HM_MIME_CONTINUE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct hm_mime_limits lim;
	hm_mime_limits_default(&lim);
	uint8_t k = data[0];
	if (k & 1) {
		lim.max_depth = 1 + (k >> 4);
		lim.max_parts = 2 + (k >> 3);
		lim.max_header = 256;
		lim.max_line = 78;
		lim.max_boundary = 8;
	}
	size_t chunk = 1 + ((k >> 1) & 7) * 13;
	data++, size--;
	struct st s = {0, 0, lim.max_parts, lim.max_depth, 0};
	struct hm_mime_callbacks cb = {b, d, e, pr};
	struct hm_mime *m = hm_mime_new(&lim, &cb, &s);
	if (!m)
		return 0;
	int rc = 0;
	for (size_t i = 0; i < size && rc == 0; i += chunk) {
		size_t n = size - i < chunk ? size - i : chunk;
		char *copy = malloc(n);
		memcpy(copy, data + i, n);
		rc = hm_mime_feed(m, copy, n);
		free(copy);
	}
	if (rc == 0)
		rc = hm_mime_finish(m);
	if (rc == 0 && s.begins != s.ends)
		abort();
	hm_mime_free(&m);
	return 0;
}
