/* test_util.c — unit tests for lib/hm_buf and lib/hm_util: bounds, truncation
 * reporting, log cleaning of hostile bytes, the shared hex / Base64 decoders,
 * hm_open_regular (no link followed, nothing but a regular file opened). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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

static void hex_and_base64_digits(void **state)
{
	assert_int_equal(hm_hexval('0'), 0);
	assert_int_equal(hm_hexval('9'), 9);
	assert_int_equal(hm_hexval('a'), 10);
	assert_int_equal(hm_hexval('F'), 15);
	assert_int_equal(hm_hexval('g'), -1);
	assert_int_equal(hm_hexval('/'), -1);
	assert_int_equal(hm_hexval(0xff), -1);
	/* RFC 4648 section 10 vectors, then padding, line breaks and junk */
	static const char *const vec[][2] = {
		{ "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" }, { "Zm9vYmFy", "foobar" },
		{ "Zm9v\r\nYmFy", "foobar" }, { "Zm 9v*Ym!Fy", "foobar" }, { "+/+/", "\xfb\xff\xbf" },
	};
	for (size_t i = 0; i < HM_ARRAY_SIZE(vec); i++) {
		char out[16] = { 0 };
		size_t n = hm_base64_decode_lax(out, vec[i][0], strlen(vec[i][0]));
		assert_int_equal(n, strlen(vec[i][1]));
		assert_memory_equal(out, vec[i][1], n);
	}
	/* a long run: the accumulator never loses bits (no overflow) */
	char in[4000], out[3000];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = "QUJD"[i % 4];
	size_t n = hm_base64_decode_lax(out, in, sizeof in);
	assert_int_equal(n, 3000);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i], "ABC"[i % 3]);
}

/* hm_open_regular is what keeps the users file, the lockout state and the
 * junk lists from being read through a link or from a FIFO (which would
 * block an auth worker) */
static void open_regular_refuses_links_and_others(void **state)
{
	char dir[] = "/tmp/hm-test-util-XXXXXX", file[64], link_[64], fifo[64];
	struct stat st;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/f", dir);
	snprintf(link_, sizeof(link_), "%s/l", dir);
	snprintf(fifo, sizeof(fifo), "%s/p", dir);
	fd = hm_open_regular(file, O_RDWR | O_CREAT, 0600, &st);
	assert_true(fd >= 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	close(fd);
	assert_int_equal(symlink(file, link_), 0);
	assert_int_equal(hm_open_regular(link_, O_RDONLY, 0, &st), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(hm_open_regular(fifo, O_RDONLY | O_NONBLOCK, 0, &st), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hm_open_regular(dir, O_RDONLY, 0, &st), -1);
	assert_int_equal(errno, EINVAL);
	snprintf(file, sizeof(file), "%s/missing", dir);
	assert_int_equal(hm_open_regular(file, O_RDONLY, 0, &st), -1);
	assert_int_equal(errno, ENOENT);
	unlink(link_);
	unlink(fifo);
	snprintf(file, sizeof(file), "%s/f", dir);
	unlink(file);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_respects_max),
		cmocka_unit_test(buf_binary_and_printf),
		cmocka_unit_test(strlcpy_reports_truncation),
		cmocka_unit_test(log_clean_hostile),
		cmocka_unit_test(checked_arith),
		cmocka_unit_test(hex_and_base64_digits),
		cmocka_unit_test(open_regular_refuses_links_and_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
