/* test_mutf7.c — unit tests for lib/hm_mutf7: RFC 3501 5.1.3 examples, '&'
 * escaping (Dovecot hides a folder with a bare '&'), refusal of invalid and
 * non-canonical input, and round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "hm_mutf7.h"

static void check_pair(const char *utf8, const char *m)
{
	char *o = NULL;
	assert_int_equal(hm_mutf7_encode(utf8, 1000, &o), 0);
	assert_string_equal(o, m);
	free(o);
	assert_int_equal(hm_mutf7_decode(m, 1000, &o), 0);
	assert_string_equal(o, utf8);
	free(o);
}

static void known_pairs(void **state)
{
	check_pair("INBOX", "INBOX");
	check_pair("R&D", "R&-D");
	check_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	/* RFC 3501 example: ~peter/mail/<japanese>/<japanese> */
	check_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		   "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	check_pair("\xf0\x9f\x98\x80", "&2D3eAA-");   /* outside the BMP: surrogates */
	check_pair("&&", "&-&-");
	check_pair("", "");
}

static void refuses_bad_input(void **state)
{
	char *o = (char *)1;
	assert_int_equal(hm_mutf7_encode("bad\xff", 100, &o), -1);
	assert_int_equal(errno, EILSEQ);
	assert_null(o);
	assert_int_equal(hm_mutf7_encode("tab\there", 100, &o), -1);
	assert_int_equal(hm_mutf7_decode("Entw\xc3\xbc", 100, &o), -1);   /* 8-bit */
	assert_int_equal(hm_mutf7_decode("&AGE-", 100, &o), -1);  /* encoded 'a' */
	assert_int_equal(errno, EILSEQ);
	assert_int_equal(hm_mutf7_decode("&APw", 100, &o), -1);   /* unterminated */
	assert_int_equal(hm_mutf7_decode("&AAA-", 100, &o), -1);  /* encoded NUL */
	assert_int_equal(hm_mutf7_encode("abcdef", 3, &o), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(hm_mutf7_encode(NULL, 3, &o), -1);
	assert_int_equal(errno, EINVAL);
}

static void round_trip_random(void **state)
{
	unsigned seed = 7;
	for (int i = 0; i < 500; i++) {
		/* random code points encoded as UTF-8 */
		char u[64];
		size_t n = 0;
		for (int k = 0; k < 8; k++) {
			unsigned cp = 0x20 + (unsigned)rand_r(&seed) % 0x3000;
			if (cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
				cp = 'x';
			if (cp < 0x80) u[n++] = (char)cp;
			else if (cp < 0x800) { u[n++] = (char)(0xc0 | cp >> 6); u[n++] = (char)(0x80 | (cp & 63)); }
			else { u[n++] = (char)(0xe0 | cp >> 12); u[n++] = (char)(0x80 | ((cp >> 6) & 63)); u[n++] = (char)(0x80 | (cp & 63)); }
		}
		u[n] = 0;
		char *m = NULL, *back = NULL;
		assert_int_equal(hm_mutf7_encode(u, 1000, &m), 0);
		for (char *p = m; *p; p++)
			assert_true(*p >= 0x20 && *p <= 0x7e);
		assert_int_equal(hm_mutf7_decode(m, 1000, &back), 0);
		assert_string_equal(back, u);
		free(m);
		free(back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_pairs),
		cmocka_unit_test(refuses_bad_input),
		cmocka_unit_test(round_trip_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
