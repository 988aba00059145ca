/* test_rfc2047.c — unit tests for lib/hm_rfc2047: B/Q words in several
 * charsets, white space between adjacent words, unknown charsets, broken
 * words left alone, invalid UTF-8 replaced, and the output bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "hm_rfc2047.h"

static void check(const char *in, const char *want)
{
	struct hm_buf b;
	hm_buf_init(&b, 4096);
	assert_int_equal(hm_rfc2047_decode(&b, in, strlen(in)), 0);
	assert_string_equal(hm_buf_cstr(&b), want);
	hm_buf_free(&b);
}

static void plain_text_unchanged(void **s)
{
	check("Hello world", "Hello world");
	check("", "");
	check("a =? b ?= c", "a =? b ?= c");
}

static void q_and_b(void **s)
{
	check("=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard");
	check("=?UTF-8?B?w6lsw6h2ZQ==?=", "\xc3\xa9l\xc3\xa8ve");
	check("=?utf-8?q?a_b?=", "a b");
	check("=?windows-1252?Q?=80uro?=", "\xe2\x82\xacuro");
	check("=?KOI8-R?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	check("=?ISO-2022-JP?B?GyRCJEskWyRzGyhC?=", "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93");
	check("=?utf-8*en?Q?hi?=", "hi");
}

static void adjacent_words_join(void **s)
{
	check("=?utf-8?q?a?= =?utf-8?q?b?=", "ab");
	check("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab");
	check("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b");
	check("x =?utf-8?q?a?= y", "x a y");
}

static void unknown_and_broken(void **s)
{
	check("=?x-no-such-charset?Q?abc?=", "abc");
	check("=?utf-8?X?abc?=", "=?utf-8?X?abc?=");
	check("=?utf-8?Q?a b?=", "=?utf-8?Q?a b?=");
	check("=?utf-8?Q?abc", "=?utf-8?Q?abc");
	/* invalid UTF-8 in raw text and in a word becomes U+FFFD */
	check("a\xff" "b", "a\xef\xbf\xbd" "b");
	check("=?utf-8?Q?=C3?=", "\xef\xbf\xbd");
}

static void bounded_output(void **s)
{
	struct hm_buf b;
	hm_buf_init(&b, 5);
	const char *in = "=?utf-8?Q?=C3=A9=C3=A9=C3=A9?=";
	assert_int_equal(hm_rfc2047_decode(&b, in, strlen(in)), 1);
	/* cut at a character boundary: two characters, four bytes */
	assert_int_equal(b.len, 4);
	assert_string_equal(hm_buf_cstr(&b), "\xc3\xa9\xc3\xa9");
	hm_buf_free(&b);
}

static void charset_direct(void **s)
{
	struct hm_buf b;
	hm_buf_init(&b, 100);
	assert_int_equal(hm_charset_to_utf8(&b, "no-such", "x", 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(hm_charset_to_utf8(&b, "iso-8859-15", "\xa4", 1), 0);
	assert_string_equal(hm_buf_cstr(&b), "\xe2\x82\xac");
	hm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_text_unchanged),
		cmocka_unit_test(q_and_b),
		cmocka_unit_test(adjacent_words_join),
		cmocka_unit_test(unknown_and_broken),
		cmocka_unit_test(bounded_output),
		cmocka_unit_test(charset_direct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
