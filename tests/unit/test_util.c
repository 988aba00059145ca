/* test_util.c — unit tests for lib/hm_buf and lib/hm_util: bounds, truncation
 * reporting and log cleaning of hostile bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "hm_buf.h"
#include "hm_util.h"

static void buf_respects_max(void **state)
{
	struct hm_buf b;
	hm_buf_init(&b, 8);
	assert_int_equal(hm_buf_puts(&b, "12345678"), 0);
	assert_int_equal(hm_buf_putc(&b, 'x'), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_string_equal(hm_buf_cstr(&b), "12345678");
	hm_buf_free(&b);
}

static void buf_binary_and_printf(void **state)
{
	struct hm_buf b;
	hm_buf_init(&b, 1024);
	assert_int_equal(hm_buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_int_equal(hm_buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_memory_equal(b.data, "a\0b42-x", 8);
	size_t len;
	char *p = hm_buf_steal(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 7);
	assert_null(b.data);
	free(p);
}

static void strlcpy_reports_truncation(void **state)
{
	char d[4];
	assert_int_equal(hm_strlcpy(d, "abc", sizeof d), 0);
	assert_int_equal(hm_strlcpy(d, "abcd", sizeof d), -1);
	assert_string_equal(d, "abc");
	assert_int_equal(hm_snprintf(d, sizeof d, "%d", 12345), -1);
}

static void log_clean_hostile(void **state)
{
	char d[64];
	hm_log_clean(d, sizeof d, "a\r\nb\0c\x7f\xff", 8);
	assert_string_equal(d, "a??b?c??");
	hm_log_clean(d, sizeof d, "caf\xc3\xa9", 5);
	assert_string_equal(d, "caf\xc3\xa9");
	hm_log_clean(d, 8, "0123456789", 10);
	assert_string_equal(d, "0123...");
}

static void checked_arith(void **state)
{
	size_t r;
	assert_true(hm_add_ok(1, 2, &r) && r == 3);
	assert_false(hm_add_ok((size_t)-1, 1, &r));
	assert_false(hm_mul_ok((size_t)-1 / 2 + 1, 2, &r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_respects_max),
		cmocka_unit_test(buf_binary_and_printf),
		cmocka_unit_test(strlcpy_reports_truncation),
		cmocka_unit_test(log_clean_hostile),
		cmocka_unit_test(checked_arith),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
