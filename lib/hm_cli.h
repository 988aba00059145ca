/* hm_cli.h — the conventions every homemail command-line tool shares.
 *
 * What for: `PROG --help` prints the usage on stdout and exits 0, and
 *   `PROG --version` prints "PROG VERSION" (the Debian package version,
 *   from debian/changelog at build time) and exits 0, as Debian's tools do;
 *   a usage error prints the same text on stderr and exits with the tool's
 *   own code; a fatal error is one line "PROG: message" on stderr and the
 *   tool's exit code (hm_cli_die).
 * How it fails: it does not; output errors on --help/--version exit 74.
 */
#ifndef HM_CLI_H
#define HM_CLI_H

/* hm_cli_std_options - when the only argument is --help or --version, answer
 * it and exit 0.  Only the sole argument counts: in a delivery agent an exit
 * 0 means "delivered", so no option value can ever be taken for these. */
void hm_cli_std_options(int argc, char **argv, const char *prog, const char *usage);

/* hm_cli_die - "prog: " and the message as one line on stderr, exit code */
void hm_cli_die(const char *prog, int code, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

#endif
