/* fuzz_mime.c — libFuzzer harness for lib/hm_mime, the streaming MIME walker
 * that homemail_scan.so runs inside Exim on every message from outside.
 *
 * Input: byte 0 chooses tight limits (to reach every LIMIT_* path) and the
 * chunk size, the rest is a message.  The message is walked twice — all at
 * once and in small chunks — and the two walks must agree event for event
 * (part begin/end with index, depth and type, decoded bytes, problems): a
 * streaming parser must not depend on where the reads fell.  Also checked:
 * begins == ends for a walk that was not stopped (a limit stops the walk
 * with parts still open, as documented), depth and part counts within the limits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_mime.h"

struct rec {
	const struct hm_mime_limits *lim;
	uint64_t h;            /* FNV-1a over the event stream */
	size_t begins, ends, problems;
	unsigned maxdepth;
};

static void mix(struct rec *r, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		r->h ^= c[i];
		r->h *= 1099511628211ull;
	}
}

static int on_begin(void *ctx, struct hm_mime_part *p)
{
	struct rec *r = ctx;

	r->begins++;
	if (r->lim && (p->depth > r->lim->max_depth || p->index >= r->lim->max_parts))
		abort();   /* a part beyond the limits was handed to the caller */
	if (p->depth > r->maxdepth)
		r->maxdepth = p->depth;
	mix(r, "B", 1);
	mix(r, &p->index, sizeof p->index);
	mix(r, &p->depth, sizeof p->depth);
	mix(r, p->ctype, strlen(p->ctype));
	mix(r, &p->cte, sizeof p->cte);
	if (p->hdr)
		mix(r, &p->hdr->count, sizeof p->hdr->count);
	/* touch the parsed parameter fields: they come from outside too */
	for (size_t i = 0; i < p->ct.nparams; i++)
		mix(r, p->ct.params[i].value, p->ct.params[i].value_len);
	for (size_t i = 0; i < p->cd.nparams; i++)
		mix(r, p->cd.params[i].value, p->cd.params[i].value_len);
	return HM_MIME_CONTINUE;
}

static int on_data(void *ctx, struct hm_mime_part *p, const char *d, size_t n)
{
	struct rec *r = ctx;

	mix(r, d, n);   /* chunk-boundary independent: bytes only, no markers */
	return HM_MIME_CONTINUE;
}

static int on_end(void *ctx, struct hm_mime_part *p)
{
	struct rec *r = ctx;

	r->ends++;
	mix(r, "E", 1);
	mix(r, &p->index, sizeof p->index);
	mix(r, &p->body_bytes, sizeof p->body_bytes);
	return HM_MIME_CONTINUE;
}

static int on_problem(void *ctx, struct hm_mime_part *p, enum hm_mime_problem w,
		      const char *detail)
{
	struct rec *r = ctx;

	r->problems++;
	mix(r, "P", 1);
	mix(r, &w, sizeof w);
	if (hm_mime_problem_name(w) == NULL)
		abort();
	return HM_MIME_CONTINUE;
}

static const struct hm_mime_callbacks CB = { on_begin, on_data, on_end, on_problem };

static int walk(struct rec *r, const struct hm_mime_limits *lim, const char *msg,
		size_t len, size_t chunk, size_t *parts_r, unsigned *depth_r)
{
	struct hm_mime *m;
	int rc = 0;

	memset(r, 0, sizeof *r);
	r->lim = lim;
	r->h = 14695981039346656037ull;
	m = hm_mime_new(lim, &CB, r);
	if (!m)
		return -2;
	for (size_t i = 0; i < len && rc == 0; i += chunk)
		rc = hm_mime_feed(m, msg + i, len - i < chunk ? len - i : chunk);
	if (rc == 0)
		rc = hm_mime_finish(m);
	*parts_r = hm_mime_parts(m);
	*depth_r = hm_mime_max_depth(m);
	hm_mime_free(&m);
	if (m)
		abort();
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_mime_limits lim;
	struct rec a, b;
	size_t pa, pb, chunk;
	unsigned da, db;
	int ra, rb;
	char *msg;

	if (size < 1)
		return 0;
	hm_mime_limits_default(&lim);
	if (data[0] & 0x80) {
		lim.max_depth = 1 + (data[0] & 3);
		lim.max_parts = 2 + ((data[0] >> 2) & 7);
		lim.max_header = 64 + 32 * (data[0] & 3);
		lim.max_line = 40 + (data[0] & 0x1f);
		lim.max_boundary = 4 + (data[0] & 7);
	}
	chunk = 1 + (data[0] & 0x0f);
	data++, size--;
	msg = malloc(size ? size : 1);
	if (!msg)
		return 0;
	memcpy(msg, data, size);

	ra = walk(&a, &lim, msg, size, size ? size : 1, &pa, &da);
	rb = walk(&b, &lim, msg, size, chunk, &pb, &db);
	if (ra == -2 || rb == -2 || ra < 0 || rb < 0) {
		free(msg);
		return 0;   /* ENOMEM */
	}
	if ((ra == 0 && a.begins != a.ends) || a.ends > a.begins || b.ends > b.begins)
		abort();    /* a complete walk must end every part it began */
	if (pa > lim.max_parts || da > lim.max_depth)
		abort();
	if (ra != rb || a.h != b.h || a.begins != b.begins || a.problems != b.problems ||
	    pa != pb || da != db)
		abort();    /* the walk depends on how the input was chunked */
	free(msg);
	return 0;
}
