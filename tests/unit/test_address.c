/* test_address.c — unit tests for lib/hm_address: plain and named
 * addresses, groups, comments, quoted local parts, encoded display names,
 * obsolete routes, broken input, and the address count bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hm_address.h"

static struct hm_addr_list parse(const char *s)
{
	struct hm_addr_list l;
	assert_int_equal(hm_address_parse(s, strlen(s), 100, &l), 0);
	return l;
}

static void simple(void **st)
{
	struct hm_addr_list l = parse("a@b.c");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].local, "a");
	assert_string_equal(l.v[0].domain, "b.c");
	assert_null(l.v[0].display);
	assert_false(l.v[0].invalid);
	hm_address_list_free(&l);

	l = parse("\"Doe, John\" <john.doe@Example.COM>, jane@x.org");
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].display, "Doe, John");
	assert_string_equal(l.v[0].local, "john.doe");
	assert_string_equal(l.v[0].domain, "Example.COM");
	assert_string_equal(l.v[1].local, "jane");
	hm_address_list_free(&l);
}

static void groups(void **st)
{
	struct hm_addr_list l = parse("undisclosed-recipients:;");
	assert_int_equal(l.n, 0);
	hm_address_list_free(&l);
	l = parse("Team: a@x, B <b@y>; c@z");
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].group, "Team");
	assert_string_equal(l.v[1].group, "Team");
	assert_string_equal(l.v[1].display, "B");
	assert_null(l.v[2].group);
	assert_string_equal(l.v[2].domain, "z");
	hm_address_list_free(&l);
}

static void comments_and_quotes(void **st)
{
	struct hm_addr_list l = parse("a(comment)@b (John Smith)");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].local, "a");
	assert_string_equal(l.v[0].domain, "b");
	assert_string_equal(l.v[0].display, "John Smith");
	hm_address_list_free(&l);
	l = parse("\"a b\\\"c\"@d (x (nested) y)");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].local, "a b\"c");
	assert_string_equal(l.v[0].display, "x (nested) y");
	hm_address_list_free(&l);
	l = parse("<@r1,@r2:u@h>");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].local, "u");
	assert_string_equal(l.v[0].domain, "h");
	hm_address_list_free(&l);
}

static void encoded_display(void **st)
{
	struct hm_addr_list l = parse("=?ISO-8859-1?Q?Andr=E9?= Pirard <andre@x.be>");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].display, "Andr\xc3\xa9 Pirard");
	hm_address_list_free(&l);
}

static void broken(void **st)
{
	struct hm_addr_list l = parse("justaword, , @nolocal, <unclosed@x");
	assert_int_equal(l.n, 3);
	assert_true(l.v[0].invalid);
	assert_string_equal(l.v[0].local, "justaword");
	assert_null(l.v[0].domain);
	assert_true(l.v[1].invalid);
	assert_true(l.v[2].invalid);
	hm_address_list_free(&l);
	l = parse("<>");
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].local, "");
	hm_address_list_free(&l);
	l = parse("\"unterminated <x@y>");
	hm_address_list_free(&l);
	l = parse("((((((");
	assert_int_equal(l.n, 0);
	hm_address_list_free(&l);
}

static void bounded(void **st)
{
	struct hm_addr_list l;
	const char *s = "a@x,b@x,c@x,d@x";
	assert_int_equal(hm_address_parse(s, strlen(s), 2, &l), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.truncated);
	hm_address_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(simple),
		cmocka_unit_test(groups),
		cmocka_unit_test(comments_and_quotes),
		cmocka_unit_test(encoded_display),
		cmocka_unit_test(broken),
		cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
