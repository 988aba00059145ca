/* test_mime.c — unit tests for lib/hm_mime, the streaming MIME walker.
 * Guards: decoding (base64/QP), chunk-size independence, every ambiguity
 * report (prefix/duplicate/missing boundaries, duplicate headers, header
 * bytes), message/rfc822 recursion, and each hard limit stopping the walk
 * with bounded memory (deep nesting, many parts, huge header, long line). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
#include "hm_mime.h"

struct rec {
	struct hm_buf log;     /* "B<idx>:<depth>:<ctype> " per begin, "E<idx> " per end */
	struct hm_buf data;    /* decoded leaf bytes, "|" between parts */
	unsigned probs[HM_MIME_PROBLEM_MAX];
	size_t begins, ends;
};

static int r_begin(void *ctx, struct hm_mime_part *p)
{
	struct rec *r = ctx;
	r->begins++;
	hm_buf_printf(&r->log, "B%zu:%u:%s ", p->index, p->depth, p->ctype);
	return HM_MIME_CONTINUE;
}

static int r_data(void *ctx, struct hm_mime_part *p, const char *d, size_t n)
{
	struct rec *r = ctx;
	hm_buf_append(&r->data, d, n);
	return HM_MIME_CONTINUE;
}

static int r_end(void *ctx, struct hm_mime_part *p)
{
	struct rec *r = ctx;
	r->ends++;
	hm_buf_printf(&r->log, "E%zu ", p->index);
	if (!p->multipart && !p->message)
		hm_buf_putc(&r->data, '|');
	return HM_MIME_CONTINUE;
}

static int r_prob(void *ctx, struct hm_mime_part *p, enum hm_mime_problem w, const char *d)
{
	struct rec *r = ctx;
	r->probs[w]++;
	return HM_MIME_CONTINUE;
}

static const struct hm_mime_callbacks CB = {r_begin, r_data, r_end, r_prob};

/* walk - feed msg in chunks of `chunk` bytes (0 = all at once) */
static int walk(struct rec *r, const char *msg, size_t len, size_t chunk,
		const struct hm_mime_limits *lim)
{
	memset(r, 0, sizeof *r);
	hm_buf_init(&r->log, 1 << 20);
	hm_buf_init(&r->data, 1 << 20);
	struct hm_mime *m = hm_mime_new(lim, &CB, r);
	assert_non_null(m);
	int rc = 0;
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len && rc == 0; i += chunk)
		rc = hm_mime_feed(m, msg + i, len - i < chunk ? len - i : chunk);
	if (rc == 0)
		rc = hm_mime_finish(m);
	hm_mime_free(&m);
	assert_null(m);
	return rc;
}

static void rec_free(struct rec *r)
{
	hm_buf_free(&r->log);
	hm_buf_free(&r->data);
}

static const char MULTI[] =
	"From: a@b\r\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--b1\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"caf=C3=A9 soft=\r\n"
	"break\r\n"
	"--b1\r\n"
	"Content-Type: application/octet-stream; name=x.bin\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"aGVs\r\n"
	"bG8=\r\n"
	"--b1--\r\n"
	"epilogue\r\n";

static void multipart_decodes(void **state)
{
	struct rec r;
	assert_int_equal(walk(&r, MULTI, sizeof MULTI - 1, 0, NULL), 0);
	assert_string_equal(hm_buf_cstr(&r.log),
			    "B0:0:multipart/mixed B1:1:text/plain E1 B2:1:application/octet-stream E2 E0 ");
	assert_string_equal(hm_buf_cstr(&r.data), "caf\xc3\xa9 softbreak|hello|");
	for (int i = 1; i < HM_MIME_PROBLEM_MAX; i++)
		assert_int_equal(r.probs[i], 0);
	rec_free(&r);
}

static void chunking_does_not_matter(void **state)
{
	struct rec a, b;
	walk(&a, MULTI, sizeof MULTI - 1, 0, NULL);
	for (size_t chunk = 1; chunk < 9; chunk++) {
		walk(&b, MULTI, sizeof MULTI - 1, chunk, NULL);
		assert_string_equal(hm_buf_cstr(&a.log), hm_buf_cstr(&b.log));
		assert_string_equal(hm_buf_cstr(&a.data), hm_buf_cstr(&b.data));
		rec_free(&b);
	}
	rec_free(&a);
}

static void prefix_boundary_reported(void **state)
{
	const char m[] = "Content-Type: multipart/mixed; boundary=abc\n\n--abc\n\nx\n--abcdef\n\ny\n--abc--\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_PREFIX_BOUNDARY], 1);
	/* the prefix line is taken as a boundary: three leaves become visible */
	assert_int_equal(r.begins, 3);
	rec_free(&r);
}

static void missing_close_reported(void **state)
{
	const char m[] = "Content-Type: multipart/mixed; boundary=abc\n\n--abc\n\nx\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_NO_CLOSE], 1);
	assert_int_equal(r.begins, r.ends);
	rec_free(&r);
}

static void duplicate_boundary_nested(void **state)
{
	const char m[] = "Content-Type: multipart/mixed; boundary=abc\n\n--abc\n"
			 "Content-Type: multipart/alternative; boundary=abc\n\n--abc\n\nx\n--abc--\n--abc--\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_DUP_BOUNDARY], 1);
	rec_free(&r);
}

static void duplicate_headers_and_params(void **state)
{
	const char m[] = "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=a; boundary=b\n"
			 "Content-Transfer-Encoding: base64\nContent-Transfer-Encoding: 7bit\n\nx\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_DUP_HEADER], 2);
	rec_free(&r);
	const char m2[] = "Content-Type: multipart/mixed; boundary=a; boundary=b\n\n--a\n\nx\n--a--\n";
	walk(&r, m2, sizeof m2 - 1, 0, NULL);
	assert_true(r.probs[HM_MIME_DUP_PARAM] >= 1);
	assert_int_equal(r.probs[HM_MIME_DUP_BOUNDARY], 1);
	rec_free(&r);
}

static void header_bytes_flagged(void **state)
{
	const char m[] = "Subject: a\0b\nX-A: c\rd\nX-B: \xc3\xa9\n\nbody\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_HDR_NUL], 1);
	assert_int_equal(r.probs[HM_MIME_HDR_BARE_CR], 1);
	assert_int_equal(r.probs[HM_MIME_HDR_8BIT], 1);
	rec_free(&r);
}

static void rfc822_walked_into(void **state)
{
	const char m[] = "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
			 "Content-Type: message/rfc822\n\n"
			 "Subject: inner\nContent-Type: multipart/mixed; boundary=i\n\n--i\n"
			 "Content-Type: application/x; name=in.bin\n\nabc\n--i--\n"
			 "--o--\n";
	struct rec r;
	assert_int_equal(walk(&r, m, sizeof m - 1, 0, NULL), 0);
	assert_string_equal(hm_buf_cstr(&r.log),
			    "B0:0:multipart/mixed B1:1:message/rfc822 B2:2:multipart/mixed "
			    "B3:3:application/x E3 E2 E1 E0 ");
	rec_free(&r);
}

static void digest_default_type(void **state)
{
	const char m[] = "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: x\n\nhi\n--d--\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_non_null(strstr(hm_buf_cstr(&r.log), "B1:1:message/rfc822 B2:2:text/plain"));
	rec_free(&r);
}

static void bad_base64_reported(void **state)
{
	const char m[] = "Content-Transfer-Encoding: base64\n\naGVs!bG8=\nZXZpbA==LmV4ZQ==\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_BAD_ENCODING], 1);
	/* decoding goes on past junk and padding: every byte a client might see */
	assert_non_null(strstr(hm_buf_cstr(&r.data), "evil.exe"));
	rec_free(&r);
}

/* nest - n nested multiparts, each with a unique boundary */
static char *nest(size_t n, size_t *len_r)
{
	struct hm_buf b;
	hm_buf_init(&b, 64u << 20);
	for (size_t i = 0; i < n; i++)
		hm_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%zu\n\n--b%zu\n", i, i);
	hm_buf_puts(&b, "\nx\n");
	for (size_t i = n; i-- > 0;)
		hm_buf_printf(&b, "--b%zu--\n", i);
	return hm_buf_steal(&b, len_r);
}

static void depth_limit_stops(void **state)
{
	size_t len;
	char *m = nest(100000, &len);
	struct rec r;
	struct hm_mime_limits lim;
	hm_mime_limits_default(&lim);
	assert_int_equal(walk(&r, m, len, 65536, &lim), 1);
	assert_int_equal(r.probs[HM_MIME_LIMIT_DEPTH], 1);
	assert_true(r.begins <= 21);
	rec_free(&r);
	/* within the limit: fine */
	free(m);
	m = nest(20, &len);
	assert_int_equal(walk(&r, m, len, 0, &lim), 0);
	assert_int_equal(r.probs[HM_MIME_LIMIT_DEPTH], 0);
	rec_free(&r);
	free(m);
}

static void parts_limit_stops(void **state)
{
	struct hm_buf b;
	hm_buf_init(&b, 64u << 20);
	hm_buf_puts(&b, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (int i = 0; i < 100000; i++)
		hm_buf_puts(&b, "--p\n\nx\n");
	hm_buf_puts(&b, "--p--\n");
	struct rec r;
	assert_int_equal(walk(&r, b.data, b.len, 65536, NULL), 1);
	assert_int_equal(r.probs[HM_MIME_LIMIT_PARTS], 1);
	assert_int_equal(r.begins, 1000);
	rec_free(&r);
	hm_buf_free(&b);
}

static void header_and_line_limits(void **state)
{
	struct hm_buf b;
	hm_buf_init(&b, 64u << 20);
	for (int i = 0; i < 200000; i++)
		hm_buf_puts(&b, "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
	hm_buf_puts(&b, "\nbody\n");
	struct rec r;
	assert_int_equal(walk(&r, b.data, b.len, 65536, NULL), 1);
	assert_int_equal(r.probs[HM_MIME_LIMIT_HEADER], 1);
	rec_free(&r);
	hm_buf_reset(&b);
	hm_buf_puts(&b, "Subject: x\n\n");
	for (int i = 0; i < 20000; i++)
		hm_buf_putc(&b, 'a');
	hm_buf_puts(&b, "\n");
	assert_int_equal(walk(&r, b.data, b.len, 7, NULL), 1);
	assert_int_equal(r.probs[HM_MIME_LIMIT_LINE], 1);
	rec_free(&r);
	hm_buf_free(&b);
}

static void boundary_ends_header_block(void **state)
{
	/* a part whose header block is cut by the next boundary */
	const char m[] = "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/x\n--z\n\nq\n--z--\n";
	struct rec r;
	assert_int_equal(walk(&r, m, sizeof m - 1, 0, NULL), 0);
	assert_int_equal(r.begins, 3);
	assert_int_equal(r.ends, 3);
	rec_free(&r);
}

static void multipart_without_boundary(void **state)
{
	const char m[] = "Content-Type: multipart/mixed\n\nhello\n";
	struct rec r;
	walk(&r, m, sizeof m - 1, 0, NULL);
	assert_int_equal(r.probs[HM_MIME_NO_BOUNDARY], 1);
	assert_string_equal(hm_buf_cstr(&r.data), "hello|");
	rec_free(&r);
}

static int skip_data(void *ctx, struct hm_mime_part *p, const char *d, size_t n)
{
	struct rec *r = ctx;
	hm_buf_append(&r->data, d, n);
	return HM_MIME_SKIP;
}

static void skip_still_validates(void **state)
{
	/* after HM_MIME_SKIP no bytes are delivered, but broken base64 further on
	 * is still reported (the encoding rule must not depend on the policy) */
	struct hm_buf b;
	hm_buf_init(&b, 1 << 20);
	hm_buf_puts(&b, "Content-Transfer-Encoding: base64\n\n");
	for (int i = 0; i < 2000; i++)
		hm_buf_puts(&b, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n");
	hm_buf_puts(&b, "QUF!QUFB\n");
	struct rec r;
	memset(&r, 0, sizeof r);
	hm_buf_init(&r.log, 1 << 20);
	hm_buf_init(&r.data, 1 << 20);
	struct hm_mime_callbacks cb = CB;
	cb.part_data = skip_data;
	struct hm_mime *m = hm_mime_new(NULL, &cb, &r);
	assert_int_equal(hm_mime_feed(m, b.data, b.len), 0);
	assert_int_equal(hm_mime_finish(m), 0);
	hm_mime_free(&m);
	assert_int_equal(r.data.len, 16384 + 1); /* one batch, then nothing (+ the "|" of part end) */
	assert_int_equal(r.probs[HM_MIME_BAD_ENCODING], 1);
	rec_free(&r);
	hm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(multipart_decodes),
		cmocka_unit_test(chunking_does_not_matter),
		cmocka_unit_test(prefix_boundary_reported),
		cmocka_unit_test(missing_close_reported),
		cmocka_unit_test(duplicate_boundary_nested),
		cmocka_unit_test(duplicate_headers_and_params),
		cmocka_unit_test(header_bytes_flagged),
		cmocka_unit_test(rfc822_walked_into),
		cmocka_unit_test(digest_default_type),
		cmocka_unit_test(bad_base64_reported),
		cmocka_unit_test(depth_limit_stops),
		cmocka_unit_test(parts_limit_stops),
		cmocka_unit_test(header_and_line_limits),
		cmocka_unit_test(boundary_ends_header_block),
		cmocka_unit_test(multipart_without_boundary),
		cmocka_unit_test(skip_still_validates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
