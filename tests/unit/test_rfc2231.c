/* test_rfc2231.c — unit tests for lib/hm_rfc2231: MIME parameters as clients
 * read them.  Each case names the trick it guards against: continuations
 * joined by index not appearance, charsets, encoded words inside quoted
 * values, comments, escaped quotes, duplicates and junk a lenient parser
 * skips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_rfc2231.h"

static struct hm_mimefield parse(const char *s)
{
	struct hm_mimefield f;
	assert_int_equal(hm_mimefield_parse(s, strlen(s), &f), 0);
	return f;
}

static char *get(const struct hm_mimefield *f, const char *name)
{
	size_t l;
	return hm_mimefield_get(f, name, &l);
}

struct coll {
	char v[8][256];
	size_t n;
};

static int collect_cb(void *ctx, const char *v, size_t l)
{
	struct coll *c = ctx;
	if (c->n < 8 && l < 255) {
		memcpy(c->v[c->n], v, l);
		c->v[c->n][l] = 0;
		c->n++;
	}
	return 0;
}

static bool has_reading(const struct coll *c, const char *s)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i], s) == 0)
			return true;
	return false;
}

static void simple_type_and_boundary(void **state)
{
	struct hm_mimefield f = parse("Multipart/Mixed; boundary=\"abc def\"; charset=us-ascii");
	assert_string_equal(f.value, "multipart/mixed");
	char *b = get(&f, "boundary");
	assert_string_equal(b, "abc def");
	free(b);
	assert_int_equal(f.problems, 0);
	hm_mimefield_free(&f);
}

static void comments_and_escapes(void **state)
{
	/* comments vanish, \" is a quote inside a quoted string */
	struct hm_mimefield f = parse("attachment (a comment; filename=x.exe); filename=\"a\\\"b.pdf\" (c)");
	assert_string_equal(f.value, "attachment");
	char *v = get(&f, "filename");
	assert_string_equal(v, "a\"b.pdf");
	free(v);
	hm_mimefield_free(&f);
}

static void continuation_joined_by_index(void **state)
{
	/* sections out of order: a client sorting by index reads "evil.exe",
	 * one joining in appearance order reads ".exeevil"; both are offered,
	 * and the order problem is flagged */
	struct hm_mimefield f = parse("attachment; filename*1=\".exe\"; filename*0=\"evil\"");
	char *v = get(&f, "filename");
	assert_string_equal(v, "evil.exe");
	free(v);
	assert_true(f.problems & HM_PARAM_ORDER);
	struct coll c = {.n = 0};
	assert_int_equal(hm_mimefield_readings(&f, "filename", collect_cb, &c), 0);
	assert_true(has_reading(&c, "evil.exe"));
	assert_true(has_reading(&c, ".exeevil"));
	hm_mimefield_free(&f);
}

static void extended_charset(void **state)
{
	/* RFC 2231 §4: charset'lang'%XX, converted to UTF-8 */
	struct hm_mimefield f = parse("attachment; filename*=iso-8859-1'en'r%E9sum%E9.pdf");
	char *v = get(&f, "filename");
	assert_string_equal(v, "r\xc3\xa9sum\xc3\xa9.pdf");
	free(v);
	hm_mimefield_free(&f);
	f = parse("attachment; filename*0*=utf-8''ev%69l; filename*1=\".e\"; filename*2=\"xe\"");
	v = get(&f, "filename");
	assert_string_equal(v, "evil.exe");
	free(v);
	assert_int_equal(f.problems & (HM_PARAM_GAP | HM_PARAM_ORDER), 0);
	hm_mimefield_free(&f);
}

static void gap_and_duplicate(void **state)
{
	struct hm_mimefield f = parse("attachment; filename*0=a; filename*2=b");
	assert_true(f.problems & HM_PARAM_GAP);
	hm_mimefield_free(&f);
	f = parse("attachment; filename=a.pdf; filename=b.exe");
	assert_true(f.problems & HM_PARAM_DUP);
	struct coll c = {.n = 0};
	hm_mimefield_readings(&f, "filename", collect_cb, &c);
	assert_true(has_reading(&c, "a.pdf"));
	assert_true(has_reading(&c, "b.exe"));
	hm_mimefield_free(&f);
}

static void encoded_word_in_quoted_value(void **state)
{
	/* Outlook and Thunderbird decode RFC 2047 inside a quoted filename */
	struct hm_mimefield f = parse("attachment; filename=\"=?utf-8?B?ZXZpbC5leGU=?=\"");
	struct coll c = {.n = 0};
	hm_mimefield_readings(&f, "filename", collect_cb, &c);
	assert_true(has_reading(&c, "evil.exe"));
	assert_true(has_reading(&c, "=?utf-8?B?ZXZpbC5leGU=?="));
	char *v = get(&f, "filename");
	assert_string_equal(v, "evil.exe");
	free(v);
	hm_mimefield_free(&f);
}

static void missing_semicolon_is_syntax(void **state)
{
	/* `multipart/mixed boundary=x`: lenient clients still find the boundary */
	struct hm_mimefield f = parse("multipart/mixed boundary=xyz");
	assert_string_equal(f.value, "multipart/mixed");
	assert_true(f.problems & HM_PARAM_SYNTAX);
	char *b = get(&f, "boundary");
	assert_string_equal(b, "xyz");
	free(b);
	hm_mimefield_free(&f);
}

static void nul_in_value_kept(void **state)
{
	const char s[] = "attachment; filename=\"evil.exe\0.txt\"";
	struct hm_mimefield f;
	assert_int_equal(hm_mimefield_parse(s, sizeof s - 1, &f), 0);
	assert_true(f.problems & HM_PARAM_NUL);
	size_t l;
	char *v = hm_mimefield_get(&f, "filename", &l);
	assert_int_equal(l, 13);
	assert_memory_equal(v, "evil.exe\0.txt", 13);
	free(v);
	hm_mimefield_free(&f);
}

/* issue 14: a parameter after the sixty-fourth was dropped (only flagged) */
static void many_params_all_kept(void **state)
{
	char buf[8192] = "attachment";
	for (int i = 0; i < 100; i++) {
		char p[32];
		snprintf(p, sizeof p, "; p%d=v", i);
		strcat(buf, p);
	}
	strcat(buf, "; filename=evil.exe");
	struct hm_mimefield f = parse(buf);
	assert_int_equal(f.nparams, 101);
	assert_int_equal(f.problems, 0);
	char *v = get(&f, "filename");
	assert_string_equal(v, "evil.exe");
	free(v);
	hm_mimefield_free(&f);
}

struct count {
	size_t n;
	bool exe;
};

static int count_cb(void *ctx, const char *v, size_t l)
{
	struct count *c = ctx;
	c->n++;
	if (l == 8 && memcmp(v, "evil.exe", 8) == 0)
		c->exe = true;
	return 0;
}

/* issue 14: only eight readings were kept; filename*0..*7 plus a plain
 * filename="evil.exe" hid the plain one.  Every reading is delivered, once. */
static void every_reading_delivered(void **state)
{
	static char buf[65536];
	for (int nsec = 2; nsec <= 900; nsec = nsec < 16 ? nsec + 1 : nsec * 3) {
		strcpy(buf, "attachment");
		for (int i = 0; i < nsec; i++) {
			char p[48];
			snprintf(p, sizeof p, "; filename*%d=\"r%d\"", i, i);
			strcat(buf, p);
		}
		strcat(buf, "; filename=\"evil.exe\"; filename*0=\"r0\"");
		struct hm_mimefield f = parse(buf);
		struct count c = {0};
		assert_int_equal(hm_mimefield_readings(&f, "filename", count_cb, &c), 0);
		assert_true(c.exe);
		/* join by index, join by appearance (the duplicate r0 comes last),
		 * each distinct section, the plain value */
		assert_int_equal(c.n, 2 + (size_t)nsec + 1);
		hm_mimefield_free(&f);
	}
}

static void unterminated_quote_and_comment(void **state)
{
	struct hm_mimefield f = parse("attachment; filename=\"abc.exe");
	char *v = get(&f, "filename");
	assert_string_equal(v, "abc.exe");
	free(v);
	assert_true(f.problems & HM_PARAM_SYNTAX);
	hm_mimefield_free(&f);
	f = parse("attachment (((((; filename=x");
	hm_mimefield_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(simple_type_and_boundary),
		cmocka_unit_test(comments_and_escapes),
		cmocka_unit_test(continuation_joined_by_index),
		cmocka_unit_test(extended_charset),
		cmocka_unit_test(gap_and_duplicate),
		cmocka_unit_test(encoded_word_in_quoted_value),
		cmocka_unit_test(missing_semicolon_is_syntax),
		cmocka_unit_test(nul_in_value_kept),
		cmocka_unit_test(many_params_all_kept),
		cmocka_unit_test(every_reading_delivered),
		cmocka_unit_test(unterminated_quote_and_comment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
