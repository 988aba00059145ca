/* homemail-sieve.c — command-line front end of the homemail Sieve engine.
 *
 *   homemail-sieve check FILE...
 *   homemail-sieve test SCRIPT MESSAGE [-f SENDER] [-r RECIPIENT]
 *                  [-a ORIGINAL_RECIPIENT] [--now TIME] [--global-dir DIR]
 *
 * check compiles each file and prints "FILE:LINE:COL: error: MESSAGE" for
 * every error (exit 1 when any).  test compiles SCRIPT, runs it against
 * MESSAGE ("-" = stdin) and prints one line per outcome in execution order,
 * in the format fixed in design.md ("homemail-sieve test output"):
 *   store "FOLDER" [flags="\Seen Work"] / redirect "ADDRESS" / reject "REASON" /
 *   vacation to="ADDRESS" subject="..." seconds=N / discard
 * A runtime error prints the error on stderr and the implicit keep.  The
 * envelope defaults are sieve-test's (sender@example.com,
 * recipient@example.com).  TIME is seconds since the epoch or
 * "YYYY-MM-DD[T ]HH:MM:SS[Z|+hhmm|+hh:mm]" (UTC when no zone).
 * Exit: 0 ok, 1 compile error, 2 usage, 75 message unreadable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hm_buf.h"
#include "hm_cli.h"
#include "hm_util.h"
#include "sieve.h"

#define MAX_MESSAGE (64u * 1024 * 1024)

static const char USAGE[] =
	"usage: homemail-sieve check FILE...\n"
	"       homemail-sieve test SCRIPT MESSAGE [-f SENDER] [-r RECIPIENT]\n"
	"                      [-a ORIGINAL_RECIPIENT] [--now TIME] [--global-dir DIR]\n"
	"       homemail-sieve capabilities\n"
	"       homemail-sieve --help | --version\n";

static void usage(void)
{
	fputs(USAGE, stderr);
}

/* print_quoted - "text" with \" \\ \n \r \t and \xHH for other controls */
static void print_quoted(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", stdout);
		else if (*p == '\r')
			fputs("\\r", stdout);
		else if (*p == '\t')
			fputs("\\t", stdout);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static int cmd_check(int argc, char **argv)
{
	if (argc < 1) {
		usage();
		return 2;
	}
	int ret = 0;
	for (int i = 0; i < argc; i++) {
		char *err = NULL;
		struct sieve_script *s = sieve_compile(argv[i], NULL, &err);
		if (!s) {
			fprintf(stderr, "%s\n", err ? err : "out of memory");
			ret = 1;
		}
		free(err);
		sieve_script_free(&s);
	}
	return ret;
}

/* parse_now - see the header comment; returns 0 and fills t, off */
static int parse_now(const char *s, time_t *t_r, int *off_r)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s && *end == 0 && errno == 0) {
		*t_r = (time_t)v;
		*off_r = 0;
		return 0;
	}
	int Y, M, D, h, m, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) < 6)
		return -1;
	const char *z = s + n;
	int zo = 0;
	if (*z == 'Z' || *z == 0) {
		zo = 0;
	} else if (*z == '+' || *z == '-') {
		int zh, zm;
		if (sscanf(z + 1, "%2d:%2d", &zh, &zm) != 2 && sscanf(z + 1, "%2d%2d", &zh, &zm) != 2)
			return -1;
		zo = (zh * 3600 + zm * 60) * (*z == '-' ? -1 : 1);
	} else {
		return -1;
	}
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
			 .tm_hour = h, .tm_min = m, .tm_sec = sec };
	*t_r = timegm(&tm) - zo;
	*off_r = zo;
	return 0;
}

static char *read_all(const char *path, size_t *len_r)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct hm_buf b;
	hm_buf_init(&b, MAX_MESSAGE);
	char tmp[65536];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n > 0 && hm_buf_append(&b, tmp, (size_t)n) < 0)) {
			hm_buf_free(&b);
			if (fd)
				close(fd);
			return NULL;
		}
		if (n == 0)
			break;
	}
	if (fd)
		close(fd);
	*len_r = b.len;
	char *p = hm_buf_steal(&b, NULL);
	return p;
}

/* struct test_opts - the command line of "test" */
struct test_opts {
	const char *from, *to, *orig, *now_s, *gdir;
	const char *script, *message;
};

/* parse_test_args - options and the two positional arguments SCRIPT and
 * MESSAGE.  Returns 0, or -1 after printing the usage. */
static int parse_test_args(int argc, char **argv, struct test_opts *o)
{
	const char *from = "sender@example.com", *to = "recipient@example.com";
	const char *orig = NULL, *now_s = NULL, *gdir = NULL;
	const char *pos[2];
	int npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-f") || !strcmp(a, "-r") || !strcmp(a, "-a") ||
		     !strcmp(a, "--now") || !strcmp(a, "--global-dir")) && i + 1 < argc) {
			const char *v = argv[++i];
			if (!strcmp(a, "-f")) from = v;
			else if (!strcmp(a, "-r")) to = v;
			else if (!strcmp(a, "-a")) orig = v;
			else if (!strcmp(a, "--now")) now_s = v;
			else gdir = v;
		} else if (a[0] == '-' && a[1] != 0) {
			usage();
			return -1;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			usage();
			return -1;
		}
	}
	if (npos != 2) {
		usage();
		return -1;
	}
	*o = (struct test_opts){ .from = from, .to = to, .orig = orig, .now_s = now_s,
				 .gdir = gdir, .script = pos[0], .message = pos[1] };
	return 0;
}

/* set_now - the message's "now": --now, else the clock in the local zone.
 * Returns 0, or -1 after saying the time is invalid. */
static int set_now(const char *now_s, struct sieve_message *m)
{
	if (now_s) {
		if (parse_now(now_s, &m->now, &m->now_gmtoff) < 0) {
			fprintf(stderr, "homemail-sieve: invalid --now time '%s'\n", now_s);
			return -1;
		}
	} else {
		m->now = time(NULL);
		struct tm tm;
		localtime_r(&m->now, &tm);
		m->now_gmtoff = (int)tm.tm_gmtoff;
	}
	return 0;
}

/* print_store - the "store" line: folder and, if any, its IMAP flags */
static void print_store(const struct sieve_action *a)
{
	fputs("store ", stdout);
	print_quoted(a->target);
	if (a->flags && a->flags[0]) {
		/* IMAP flag names as they are (design.md): the
		 * engine keeps only valid flags (RFC 3501 atoms,
		 * system flags with their one backslash), which
		 * hold no '"' and need no escaping */
		fputs(" flags=\"", stdout);
		for (size_t k = 0; a->flags[k]; k++)
			printf("%s%s", k ? " " : "", a->flags[k]);
		putchar('"');
	}
	putchar('\n');
}

/* print_result - warnings and a runtime error on stderr, then one line per
 * action in execution order (design.md "homemail-sieve test output");
 * discard prints only when nothing was delivered */
static void print_result(const struct sieve_result *r)
{
	for (size_t i = 0; r->warnings && r->warnings[i]; i++)
		fprintf(stderr, "%s\n", r->warnings[i]);
	if (r->error)
		fprintf(stderr, "%s\n", r->errmsg ? r->errmsg : "runtime error");
	bool delivered = false;
	for (size_t i = 0; i < r->nactions; i++) {
		enum sieve_action_type t = r->actions[i].type;
		if (t == SIEVE_ACT_STORE || t == SIEVE_ACT_REDIRECT || t == SIEVE_ACT_REJECT ||
		    t == SIEVE_ACT_EREJECT)
			delivered = true;
	}
	for (size_t i = 0; i < r->nactions; i++) {
		const struct sieve_action *a = &r->actions[i];
		switch (a->type) {
		case SIEVE_ACT_STORE:
			print_store(a);
			break;
		case SIEVE_ACT_REDIRECT:
			fputs("redirect ", stdout);
			print_quoted(a->target);
			putchar('\n');
			break;
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			fputs("reject ", stdout);
			print_quoted(a->target);
			putchar('\n');
			break;
		case SIEVE_ACT_VACATION:
			if (a->vac_skip) {
				fprintf(stderr, "vacation: no reply: %s\n", a->vac_skip);
				break;
			}
			fputs("vacation to=", stdout);
			print_quoted(a->vac_to);
			fputs(" subject=", stdout);
			print_quoted(a->vac_subject);
			printf(" seconds=%llu\n", (unsigned long long)a->vac_seconds);
			break;
		case SIEVE_ACT_DISCARD:
			if (!delivered)
				puts("discard");
			break;
		}
	}
	fflush(stdout);
}

/* cmd_test - parse the options, load the message, compile and run the
 * script, print the outcome.  Returns the exit code (header comment). */
static int cmd_test(int argc, char **argv)
{
	struct test_opts o;
	if (parse_test_args(argc, argv, &o) < 0)
		return 2;
	struct sieve_message m = { .env_from = o.from, .env_to = o.to, .env_orig_to = o.orig };
	if (set_now(o.now_s, &m) < 0)
		return 2;
	char *data = read_all(o.message, &m.len);
	if (!data) {
		fprintf(stderr, "homemail-sieve: cannot read message %s: %s\n", o.message,
			strerror(errno));
		return 75;
	}
	m.data = data;
	struct sieve_compile_env env = { .global_dir = o.gdir ? o.gdir : getenv("HOMEMAIL_SIEVE_GLOBAL_DIR") };
	char *err = NULL;
	struct sieve_script *s = sieve_compile(o.script, &env, &err);
	if (!s) {
		fprintf(stderr, "%s\n", err ? err : "out of memory");
		free(err);
		free(data);
		return 1;
	}
	struct sieve_result *r = sieve_execute(&s, 1, &m, NULL);
	if (!r) {
		fprintf(stderr, "homemail-sieve: out of memory\n");
		sieve_script_free(&s);
		free(data);
		return 75;
	}
	print_result(r);
	sieve_result_free(&r);
	sieve_script_free(&s);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	hm_cli_std_options(argc, argv, "homemail-sieve", USAGE);
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 2, argv + 2);
	if (strcmp(argv[1], "test") == 0)
		return cmd_test(argc - 2, argv + 2);
	if (strcmp(argv[1], "capabilities") == 0) {
		puts(sieve_capabilities());
		return 0;
	}
	usage();
	return 2;
}
