/* test_header.c — unit tests for lib/hm_header: field splitting, unfolding,
 * raw values, case-insensitive lookup, limits and hostile bytes (NUL, 8-bit,
 * bare CR, lines without colon).  Each case names what it guards. */
#define _GNU_SOURCE 1  /* nftw in hm_testutil.h */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "hm_header.h"
#include "hm_testutil.h"

static struct hm_header *parse(const char *s, size_t len, size_t max_block, size_t max_fields)
{
	struct hm_header_limits lim = { max_block, max_fields };
	struct hm_header *h = NULL;
	assert_int_equal(hm_header_parse(s, len, &lim, &h), 0);
	assert_non_null(h);
	return h;
}

static void basic_fields_and_lookup(void **state)
{
	const char m[] = "From: a@b\nSubject: Hello\nreceived: one\nReceived: two\n\nbody\n";
	struct hm_header *h = parse(m, sizeof m - 1, 0, 0);
	assert_int_equal(h->count, 4);
	assert_true(h->has_body_sep);
	assert_false(h->truncated);
	assert_int_equal(h->block_len, strlen("From: a@b\nSubject: Hello\nreceived: one\nReceived: two\n\n"));
	assert_string_equal(hm_header_get(h, "SUBJECT")->value, "Hello");
	assert_string_equal(hm_header_get(h, "subject")->raw, " Hello");
	assert_string_equal(hm_header_get(h, "from")->name, "From");
	assert_null(hm_header_get(h, "To"));
	size_t it = 0;
	assert_string_equal(hm_header_next(h, "Received", &it)->value, "one");
	assert_string_equal(hm_header_next(h, "Received", &it)->value, "two");
	assert_null(hm_header_next(h, "Received", &it));
	assert_int_equal(hm_header_count_name(h, "received"), 2);
	/* offsets/lengths cover the fields exactly */
	assert_int_equal(h->fields[1].offset, 10);
	assert_int_equal(h->fields[1].length, 15);
	hm_header_free(&h);
	assert_null(h);
}

/* guards: folding with CRLF and LF mixed must unfold to one line and keep raw */
static void folding_crlf_lf(void **state)
{
	const char m[] = "Subject: first\r\n\tsecond\n  third  \r\nX: y\r\n\r\nbody";
	struct hm_header *h = parse(m, sizeof m - 1, 0, 0);
	assert_int_equal(h->count, 2);
	const struct hm_hfield *f = hm_header_get(h, "subject");
	assert_string_equal(f->raw, " first\r\n\tsecond\n  third  ");
	assert_string_equal(f->value, "first\tsecond  third");
	assert_true(f->flags & HM_HFIELD_FOLDED);
	assert_int_equal(h->block_len, sizeof m - 1 - 4);
	assert_true(h->has_body_sep);
	hm_header_free(&h);
}

/* guards: NUL and bare CR in a value must not cut or break the C string */
static void nul_8bit_bare_cr(void **state)
{
	const char m[] = "Subject: a\0b\xe9\rc\nTo: x\n\n";
	struct hm_header *h = parse(m, sizeof m - 1, 0, 0);
	const struct hm_hfield *f = hm_header_get(h, "Subject");
	assert_int_equal(f->raw_len, 7);
	assert_memory_equal(f->raw, " a\0b\xe9\rc", 7);
	assert_string_equal(f->value, "a\xef\xbf\xbd" "b\xe9 c");
	assert_true(f->flags & HM_HFIELD_HAS_NUL);
	assert_true(f->flags & HM_HFIELD_8BIT);
	assert_string_equal(hm_header_get(h, "to")->value, "x");
	hm_header_free(&h);
}

/* guards: junk lines are kept (for re-emission) but never match a name */
static void no_colon_and_initial_continuation(void **state)
{
	const char m[] = "  leading cont\nGarbage line\nSubject : spaced\nBad Name: v\n\n";
	struct hm_header *h = parse(m, sizeof m - 1, 0, 0);
	assert_int_equal(h->count, 4);
	assert_true(h->fields[0].flags & HM_HFIELD_NO_COLON);
	assert_string_equal(h->fields[0].name, "");
	assert_string_equal(h->fields[0].raw, "  leading cont");
	assert_true(h->fields[1].flags & HM_HFIELD_NO_COLON);
	assert_string_equal(h->fields[1].raw, "Garbage line");
	assert_string_equal(hm_header_get(h, "subject")->value, "spaced");
	assert_string_equal(hm_header_get(h, "subject")->name, "Subject");
	assert_true(hm_header_get(h, "Bad Name")->flags & HM_HFIELD_BAD_NAME);
	assert_null(hm_header_get(h, ""));
	size_t it = 0, n = 0;
	while (hm_header_next(h, NULL, &it))
		n++;
	assert_int_equal(n, 4);
	hm_header_free(&h);
}

/* guards: header without body separator, and without final newline */
static void no_separator(void **state)
{
	const char m[] = "A: 1\nB: 2";
	struct hm_header *h = parse(m, sizeof m - 1, 0, 0);
	assert_int_equal(h->count, 2);
	assert_false(h->has_body_sep);
	assert_int_equal(h->block_len, sizeof m - 1);
	assert_string_equal(hm_header_get(h, "b")->value, "2");
	assert_int_equal(h->fields[1].length, 4);
	hm_header_free(&h);

	h = parse("", 0, 0, 0);
	assert_int_equal(h->count, 0);
	assert_int_equal(h->block_len, 0);
	hm_header_free(&h);

	h = parse("\nbody", 5, 0, 0);   /* empty header */
	assert_int_equal(h->count, 0);
	assert_int_equal(h->block_len, 1);
	assert_true(h->has_body_sep);
	hm_header_free(&h);
}

/* guards: limits bound the work; the parser says where it stopped */
static void limits(void **state)
{
	const char m[] = "A: 1\nB: 2\nC: 3\n\n";
	struct hm_header *h = parse(m, sizeof m - 1, 0, 2);
	assert_int_equal(h->count, 2);
	assert_true(h->truncated);
	assert_int_equal(h->block_len, 10);
	hm_header_free(&h);

	h = parse(m, sizeof m - 1, 12, 0);
	assert_int_equal(h->count, 2);
	assert_true(h->truncated);
	assert_int_equal(h->block_len, 10);
	hm_header_free(&h);

	/* a huge folded field beyond the limit is not scanned past max_block+2 */
	size_t big = 1 << 20;
	char *b = malloc(big);
	assert_non_null(b);
	/* a field name at the start of a byte buffer (no NUL: it is not a string) */
	hm_test_put_bytes(b, "X: ", 3);
	for (size_t i = 3; i < big; i++)
		b[i] = (i % 100 == 0) ? '\n' : (i % 100 == 1 ? ' ' : 'a');
	h = parse(b, big, 4096, 0);
	assert_int_equal(h->count, 0);
	assert_true(h->truncated);
	assert_int_equal(h->block_len, 0);
	hm_header_free(&h);
	h = parse(b, big, 0, 0);
	assert_int_equal(h->count, 1);
	assert_false(h->truncated);
	assert_true(hm_header_get(h, "x")->value_len > 900000);
	assert_null(strchr(hm_header_get(h, "x")->value, '\n'));
	hm_header_free(&h);
	free(b);
}

/* guards: random bytes never crash; structural invariants always hold */
static void random_bytes(void **state)
{
	unsigned seed = 12345;
	char buf[512];
	for (int round = 0; round < 3000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof buf);
		for (size_t i = 0; i < n; i++) {
			int r = rand_r(&seed) % 10;
			buf[i] = r == 0 ? '\n' : r == 1 ? ':' : r == 2 ? ' ' : r == 3 ? '\r'
				: r == 4 ? '\0' : (char)(rand_r(&seed) & 0xff);
		}
		struct hm_header *h = parse(buf, n, (size_t)(round % 7 == 0 ? 64 : 0), 0);
		assert_true(h->block_len <= n);
		size_t pos = 0;
		for (size_t i = 0; i < h->count; i++) {
			const struct hm_hfield *f = &h->fields[i];
			assert_int_equal(f->offset, pos);
			pos += f->length;
			assert_int_equal(strlen(f->value), f->value_len);
			assert_null(strchr(f->value, '\n'));
			assert_null(strchr(f->value, '\r'));
		}
		assert_true(pos <= h->block_len);
		hm_header_free(&h);
	}
}

static void bad_args(void **state)
{
	struct hm_header *h;
	assert_int_equal(hm_header_parse(NULL, 3, NULL, &h), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hm_header_parse("a", 1, NULL, NULL), -1);
	hm_header_free(NULL);
	assert_null(hm_header_get(NULL, "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(basic_fields_and_lookup),
		cmocka_unit_test(folding_crlf_lf),
		cmocka_unit_test(nul_8bit_bare_cr),
		cmocka_unit_test(no_colon_and_initial_continuation),
		cmocka_unit_test(no_separator),
		cmocka_unit_test(limits),
		cmocka_unit_test(random_bytes),
		cmocka_unit_test(bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
