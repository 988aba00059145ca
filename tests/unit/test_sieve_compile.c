/* test_sieve_compile.c — unit tests for the Sieve lexer, parser and
 * validator: exact LINE:COL of errors (the broken-script corpus relies on
 * them), unknown capabilities named, limits on nesting and script size,
 * text: strings with dot-stuffing, encoded-character; the command table's
 * order (sv_def_find searches it by halves). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"
#include "sv_int.h"

/* compile_err - compile text; returns the error text (malloc'd) or NULL */
static char *compile_err(const char *text)
{
	char *err = NULL;
	struct sieve_script *s = sieve_compile_mem("t", text, strlen(text), NULL, &err);
	if (s) {
		sieve_script_free(&s);
		return NULL;
	}
	assert_non_null(err);
	return err;
}

/* expect_err - compiling text fails with an error starting with prefix;
 * prefix NULL: it compiles */
static void expect_err(const char *text, const char *prefix)
{
	char *e = compile_err(text);
	if (!prefix) {
		if (e)
			fail_msg("error for: %s: %s", text, e);
		free(e);
		return;
	}
	if (!e) {
		fail_msg("no error for: %s", text);
		return;         /* fail_msg does not return; the analyzer is not told */
	}
	if (strncmp(e, prefix, strlen(prefix)) != 0)
		fail_msg("got '%s', want prefix '%s'", e, prefix);
	free(e);
}

static void valid_scripts(void **st)
{
	assert_null(compile_err("keep;"));
	assert_null(compile_err("# comment\r\n/* block\n comment */ require [\"fileinto\", \"copy\"];\n"
				"if anyof (header :contains \"subject\" \"x\", not exists \"to\") {\n"
				"  fileinto :copy \"A\"; stop;\n} elsif true { discard; } else { keep; }\n"));
	assert_null(compile_err("require \"vacation\";\nvacation :days 3 text:\nline 1\n..dot\n.\n;"));
	assert_null(compile_err("if size :over 1K { keep; }"));
	assert_null(compile_err("require [\"relational\",\"comparator-i;ascii-numeric\"];"
				"if header :value \"gt\" :comparator \"i;ascii-numeric\" \"x-spam-score\" \"5\" { discard; }"));
}

static void error_positions(void **st)
{
	expect_err("keep;\nfoo;\n", "t:2:1: error: unknown command 'foo'");
	expect_err("require \"nosuch\";", "t:1:9: error: require command: unknown Sieve capability 'nosuch'");
	expect_err("keep\n", "t:2:1: error: expected ';' or '{'");
	expect_err("if true { keep;\n", "t:2:1: error: end of script inside a block");
	expect_err("if header :contains \"a\" { keep; }", "t:1:4: error: the header test needs 1 more argument");
	expect_err("keep;\n  fileinto \"x\";", "t:2:3: error: unknown command 'fileinto' (the \"fileinto\" extension is not required)");
	expect_err("if header :is \"s\" :contains \"x\" { keep; }", "t:1:19: error: unexpected tagged argument ':contains'");
	expect_err("/* open", "t:1:1: error: unterminated comment");
	expect_err("keep;\n\"abc", "t:2:1: error: unterminated string");
	expect_err("if size :over 99999999999999999999 { keep; }", "t:1:15: error: number exceeds integer limits");
	expect_err("keep; require \"fileinto\";", "t:1:7: error: require must come before");
	expect_err("else { keep; }", "t:1:1: error: else without a preceding if");
	expect_err("require \"regex\";\nif header :regex \"s\" \"(\" { keep; }", "t:2:22: error: invalid regex");
	expect_err("if header :comparator \"i;nope\" :is \"s\" \"x\" { keep; }", "t:1:23: error: unknown comparator 'i;nope'");
	expect_err("redirect \"not an address\";", "t:1:10: error: specified redirect address");
	expect_err("if true keep;", "t:1:9: error: unexpected 'keep' after the true test");
	expect_err("require \"variables\";\nset \"a b\" \"x\";", "t:2:5: error: invalid variable name 'a b'");
}

static void limits(void **st)
{
	char *deep = malloc(20000);
	strcpy(deep, "");
	for (int i = 0; i < 200; i++)
		strcat(deep, "if true {");
	for (int i = 0; i < 200; i++)
		strcat(deep, "}");
	char *e = compile_err(deep);
	assert_non_null(e);
	assert_non_null(strstr(e, "nested too deeply"));
	free(e);
	free(deep);

	struct sieve_limits lim;
	sieve_limits_default(&lim);
	lim.max_script_size = 10;
	struct sieve_compile_env env = { .limits = &lim };
	char *err = NULL;
	struct sieve_script *s = sieve_compile_mem("t", "keep; keep; keep;", 17, &env, &err);
	assert_null(s);
	assert_non_null(strstr(err, "script too large"));
	free(err);
}

static void nul_and_garbage(void **st)
{
	char *err = NULL;
	struct sieve_script *s = sieve_compile_mem("t", "keep;\0", 6, NULL, &err);
	assert_null(s);
	assert_non_null(strstr(err, "t:1:6: error: NUL character"));
	free(err);
	expect_err("\xff", "t:1:1: error: unexpected character 0xff");
}

/* definitions_table - sv_defs is sorted (a name added out of order would
 * be unreachable by the binary search), every entry is found whatever the
 * case, and nothing else is */
static void definitions_table(void **st)
{
	size_t n = 0;
	for (; sv_defs[n]; n++) {
		const char *name = sv_defs[n]->name;
		if (n > 0 && strcmp(sv_defs[n - 1]->name, name) >= 0)
			fail_msg("sv_defs out of order: '%s' before '%s'", sv_defs[n - 1]->name, name);
		for (const char *p = name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				fail_msg("'%s' is not lower case", name);
		assert_ptr_equal(sv_def_find(name, strlen(name)), sv_defs[n]);
		char up[64];
		size_t l = strlen(name);
		assert_true(l < sizeof up);
		for (size_t i = 0; i <= l; i++)
			up[i] = (char)((name[i] >= 'a' && name[i] <= 'z') ? name[i] - 32 : name[i]);
		assert_ptr_equal(sv_def_find(up, l), sv_defs[n]);
		/* a prefix or an extension of a name is another name or none */
		const struct sv_def *d = sv_def_find(name, l - 1);
		assert_true(d == NULL || strlen(d->name) == l - 1);
		char longer[70];
		snprintf(longer, sizeof longer, "%sx", name);
		assert_null(sv_def_find(longer, l + 1));
	}
	assert_int_equal(n, 36);
	assert_null(sv_def_find("", 0));
	assert_null(sv_def_find("aaa", 3));
	assert_null(sv_def_find("zzz", 3));
	/* a command where a test is wanted names both (validator) */
	expect_err("if keep { }", "t:1:4: error: 'keep' is a command, not a test");
	expect_err("IF TRUE { KEEP; }", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_scripts),
		cmocka_unit_test(error_positions),
		cmocka_unit_test(limits),
		cmocka_unit_test(nul_and_garbage),
		cmocka_unit_test(definitions_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
