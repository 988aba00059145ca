/* hm_cli.c — --help, --version and fatal errors for the homemail CLIs (see
 * hm_cli.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "hm_cli.h"

/* The Makefile sets HM_VERSION from debian/changelog; builds that compile
 * lib/ on their own (fuzzers, analysers) say "unknown", and a test checks
 * that the installed tools print the changelog's version. */
#ifndef HM_VERSION
#define HM_VERSION "unknown"
#endif

/* answer - print to stdout and exit 0 (74 when stdout cannot be written) */
static void answer(const char *text, const char *tail)
{
	if (fputs(text, stdout) == EOF || fputs(tail, stdout) == EOF || fflush(stdout) == EOF)
		exit(EX_IOERR);
	exit(0);
}

void hm_cli_std_options(int argc, char **argv, const char *prog, const char *usage)
{
	if (argc != 2)
		return;
	if (strcmp(argv[1], "--help") == 0)
		answer(usage, "");
	if (strcmp(argv[1], "--version") == 0) {
		if (printf("%s %s", prog, HM_VERSION) < 0)
			exit(EX_IOERR);
		answer("", "\n");
	}
}

void hm_cli_die(const char *prog, int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}
