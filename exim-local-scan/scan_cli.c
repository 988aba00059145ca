/* scan_cli.c — homemail-scan: run the local_scan policy on message files.
 *
 *   homemail-scan [-c CONF] [-u] [-l] FILE...     (FILE "-" = stdin)
 *
 * For each file prints the verdict — `accept`, `freeze: REASON`,
 * `tempreject: REASON`, `reject: REASON` — and, unless rejected, the header
 * Exim would add (`X-Homemail-Scan: ...`); with -l also the mainlog line.
 * With several files each line starts with "FILE: ".  -u scans as if the
 * message came with SMTPUTF8.  This is the admin's "why was it rejected?".
 *
 * Exit: 0 all accepted, 1 a message rejected, 2 a temporary rejection
 * (and none rejected), 3 a message frozen (and none rejected/deferred),
 * 64 usage, 66 a file unreadable, 78 bad configuration, 70 internal error.
 * Relies on: the scan engine (libhmscan.a).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "hm_cli.h"
#include "hm_util.h"
#include "scan.h"

static const char USAGE[] =
	"usage: homemail-scan [-c CONF] [-u] [-l] FILE...   (FILE - = stdin)\n"
	"       homemail-scan --help | --version\n";

static void usage(void)
{
	fputs(USAGE, stderr);
}

/* scan_fd - one message; returns the verdict action or -1 (errno) */
static int scan_fd(const struct scan_conf *c, const struct scan_opts *o, int fd,
		   const char *label, bool log)
{
	struct scan *s = scan_new(c, o);
	if (!s)
		return -1;
	int r = scan_feed_fd(s, fd);
	if (r < 0) {
		int e = errno;
		scan_free(&s);
		errno = e;
		return r;
	}
	const struct scan_verdict *v = scan_finish(s);
	const char *pre = label ? label : "";
	const char *sep = label ? ": " : "";
	switch (v->action) {
	case SCAN_ACCEPT:
	case SCAN_TAG:
		printf("%s%saccept\n", pre, sep);
		break;
	default:
		printf("%s%s%s: %s\n", pre, sep, scan_action_name(v->action),
		       v->reason ? v->reason : "internal error");
		break;
	}
	if (v->action <= SCAN_FREEZE && v->header)
		printf("%s%sX-Homemail-Scan: %s\n", pre, sep, v->header);
	if (log && v->log)
		printf("%s%s%s\n", pre, sep, v->log);
	int a = (int)v->action;
	scan_free(&s);
	return a;
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	bool log = false;
	struct scan_opts o = {.smtputf8 = false};
	int ch;
	hm_cli_std_options(argc, argv, "homemail-scan", USAGE);
	while ((ch = getopt(argc, argv, "c:ulh")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'u':
			o.smtputf8 = true;
			break;
		case 'l':
			log = true;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		default:
			usage();
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage();
		return EX_USAGE;
	}
	struct scan_conf c;
	if (scan_conf_defaults(&c) < 0) {
		fprintf(stderr, "homemail-scan: out of memory\n");
		return EX_SOFTWARE;
	}
	char err[512];
	const char *path = conf ? conf : scan_conf_path();
	int r = scan_conf_load(path, &c, err, sizeof err);
	if (r < 0 || (r == 1 && conf)) {
		if (r == 1)
			fprintf(stderr, "homemail-scan: %s: no such file\n", path);
		else
			fprintf(stderr, "homemail-scan: %s\n", err);
		scan_conf_free(&c);
		return EX_CONFIG;
	}
	bool multi = argc - optind > 1;
	int worst = SCAN_ACCEPT, rc_io = 0;
	for (int i = optind; i < argc; i++) {
		const char *f = argv[i];
		int fd = strcmp(f, "-") == 0 ? 0 : open(f, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			fprintf(stderr, "homemail-scan: %s: %s\n", f, strerror(errno));
			rc_io = EX_NOINPUT;
			continue;
		}
		int a = scan_fd(&c, &o, fd, multi ? f : NULL, log);
		int e = errno;
		if (fd != 0)
			close(fd);
		if (a == -2) {
			fprintf(stderr, "homemail-scan: %s: read: %s\n", f, strerror(e));
			rc_io = EX_NOINPUT;
			continue;
		}
		if (a < 0) {
			fprintf(stderr, "homemail-scan: %s: %s\n", f, strerror(e));
			scan_conf_free(&c);
			return EX_SOFTWARE;
		}
		if (a > worst)
			worst = a;
	}
	scan_conf_free(&c);
	fflush(stdout);
	if (ferror(stdout))
		return EX_IOERR;
	switch (worst) {
	case SCAN_REJECT:
		return 1;
	case SCAN_TEMPREJECT:
		return 2;
	case SCAN_FREEZE:
		return 3;
	default:
		return rc_io;
	}
}
