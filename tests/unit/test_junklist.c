/* test_junklist.c — unit tests for lib/hm_junklist: address normalisation,
 * tolerant parsing of damaged files, ageing out of the oldest entries,
 * atomic update through the lock, and concurrent writers (forked) that must
 * leave a well-formed file holding every change. */
#define _GNU_SOURCE 1  /* nftw in hm_testutil.h */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hm_junklist.h"
#include "hm_testutil.h"

/* mkdir_tmp - a fresh directory for one test */
static char *mkdir_tmp(void)
{
	char *d = strdup("/tmp/test_junklist.XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

/* rm_tmp - remove the test directory and the files the module makes */
static void rm_tmp(char *d)
{
	char p[512];
	const char *names[] = { HM_JUNKLIST_FILE, HM_JUNKLIST_LOCK, HM_JUNKLIST_TMP };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", d, names[i]);
		unlink(p);
	}
	rmdir(d);
	free(d);
}

/* write_file - put text into <dir>/homemail-junklist */
static void write_file(const char *dir, const char *text, size_t len)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* read_file - the list file's text (malloc'd) */
static char *read_file(const char *dir)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 24);
	size_t n = fread(buf, 1, (1 << 24) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void normalize_forms(void **state)
{
	char d[HM_JUNKLIST_ADDR_MAX + 1];
	assert_int_equal(hm_junk_addr_normalize(" <Bob@Example.ORG> ", 19, 0, d, sizeof d), 0);
	assert_string_equal(d, "bob@example.org");
	assert_int_equal(hm_junk_addr_normalize("x@y", 3, 0, d, sizeof d), 0);
	assert_string_equal(d, "x@y");
	/* SMTPUTF8 bytes pass through untouched */
	assert_int_equal(hm_junk_addr_normalize("J\xc3\xbcrgen@B\xc3\xbc.de", 14, 0, d, sizeof d), 0);
	assert_string_equal(d, "j\xc3\xbcrgen@b\xc3\xbc.de");
}

static void normalize_rejects(void **state)
{
	char d[HM_JUNKLIST_ADDR_MAX + 1];
	const char *bad[] = { "", "<>", "nobody", "a@", "a b@c", "a@b\tc", "<a@b", "a@b>",
			      "a\x01@b", "a@b\x7f", "a<b@c" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		assert_int_equal(hm_junk_addr_normalize(bad[i], strlen(bad[i]), 0, d, sizeof d), -1);
		assert_int_equal(errno, EINVAL);
		assert_string_equal(d, "");
	}
	/* "@domain" only when allowed */
	assert_int_equal(hm_junk_addr_normalize("@dom.ain", 8, 0, d, sizeof d), -1);
	assert_int_equal(hm_junk_addr_normalize("@Dom.ain", 8, 1, d, sizeof d), 0);
	assert_string_equal(d, "@dom.ain");
	/* length limit: 254 ok, 255 refused */
	char big[300];
	memset(big, 'a', sizeof big);
	hm_test_put_bytes(big + 250, "@b.c", 4);
	assert_int_equal(hm_junk_addr_normalize(big, 254, 0, d, sizeof d), 0);
	big[251] = 'a';
	hm_test_put_bytes(big + 251, "@b.c", 4);
	assert_int_equal(hm_junk_addr_normalize(big, 255, 0, d, sizeof d), -1);
	/* embedded NUL counts as a control byte */
	assert_int_equal(hm_junk_addr_normalize("a\0b@c", 5, 0, d, sizeof d), -1);
	/* a too small destination is refused, not overrun */
	char small[8];
	assert_int_equal(hm_junk_addr_normalize("a@b", 3, 0, small, sizeof small), -1);
}

static void parse_tolerates_damage(void **state)
{
	const char text[] =
		"# comment\n"
		"\n"
		"B 100 Spam@Example.NET\r\n"
		"T 200 friend@example.org\n"
		"X 300 wrong@kind.org\n"
		"B notanumber x@y\n"
		"B -5 neg@example.org\n"
		"B 99999999999999999999999 big@example.org\n"
		"B 300\n"
		"B 300 no-at-sign\n"
		"B300 glued@example.org\n"
		"T 400 a@b with-trailing-junk\n"
		"  T  500  spaced@example.org  \n"
		"B 600 dup@example.org\n"
		"T 700 dup@example.org\n"
		"B 800 @spamdomain.example\n"
		"T 900 last@no-newline.org";
	struct hm_junklist l;
	hm_junklist_init(&l);
	char *data = malloc(sizeof text);
	memcpy(data, text, sizeof text - 1);
	assert_int_equal(hm_junklist_parse(&l, data, sizeof text - 1), 0);
	assert_int_equal(l.damaged, 8);
	const char *m;
	assert_int_equal(hm_junklist_lookup(&l, "spam@example.net", &m), HM_JUNK_BLOCKED);
	assert_string_equal(m, "spam@example.net");
	assert_int_equal(hm_junklist_lookup(&l, "<FRIEND@example.org>", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "spaced@example.org", NULL), HM_JUNK_TRUSTED);
	/* the later line wins */
	assert_int_equal(hm_junklist_lookup(&l, "dup@example.org", NULL), HM_JUNK_TRUSTED);
	/* domain entry */
	assert_int_equal(hm_junklist_lookup(&l, "anyone@SpamDomain.example", &m), HM_JUNK_BLOCKED);
	assert_string_equal(m, "@spamdomain.example");
	assert_int_equal(hm_junklist_lookup(&l, "last@no-newline.org", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "nobody@example.org", &m), HM_JUNK_NONE);
	assert_null(m);
	assert_int_equal(hm_junklist_lookup(&l, "garbage", NULL), HM_JUNK_NONE);
	assert_int_equal(hm_junklist_lookup(&l, NULL, NULL), HM_JUNK_NONE);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_BLOCKED), 2);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_TRUSTED), 4);
	hm_junklist_free(&l);
}

static void parse_binary_garbage(void **state)
{
	/* random bytes, NULs and overlong lines: no crash, nothing kept that
	 * is not a well-formed entry */
	size_t len = 1 << 20;
	char *data = malloc(len);
	unsigned s = 12345;
	for (size_t i = 0; i < len; i++) {
		s = s * 1103515245 + 12345;
		data[i] = (char)(s >> 16);
	}
	hm_test_put_bytes(data + 5000, "\nB 1 ok@example.org\n", 20);
	hm_test_put_bytes(data + 6000, "\nB 1 nul\0@example.org\n", 22);
	struct hm_junklist l;
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_parse(&l, data, len), 0);
	assert_int_equal(hm_junklist_lookup(&l, "ok@example.org", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(hm_junklist_lookup(&l, "nul@example.org", NULL), HM_JUNK_NONE);
	for (size_t i = 0; i < l.n; i++) {
		char d[HM_JUNKLIST_ADDR_MAX + 1];
		assert_int_equal(hm_junk_addr_normalize(l.v[i].addr, strlen(l.v[i].addr), 1,
							d, sizeof d), 0);
		assert_string_equal(d, l.v[i].addr);
	}
	hm_junklist_free(&l);
}

static void trim_drops_oldest(void **state)
{
	struct hm_junklist l;
	char a[64];
	hm_junklist_init(&l);
	for (int i = 0; i < 10; i++) {
		snprintf(a, sizeof a, "b%d@example.org", i);
		assert_int_equal(hm_junklist_set(&l, a, HM_JUNK_BLOCKED, 1000 + i), 0);
		snprintf(a, sizeof a, "t%d@example.org", i);
		assert_int_equal(hm_junklist_set(&l, a, HM_JUNK_TRUSTED, 2000 - i), 0);
	}
	hm_junklist_trim(&l, 3);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_BLOCKED), 3);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_TRUSTED), 3);
	assert_int_equal(hm_junklist_lookup(&l, "b9@example.org", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(hm_junklist_lookup(&l, "b7@example.org", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(hm_junklist_lookup(&l, "b6@example.org", NULL), HM_JUNK_NONE);
	assert_int_equal(hm_junklist_lookup(&l, "t0@example.org", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "t2@example.org", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "t3@example.org", NULL), HM_JUNK_NONE);
	hm_junklist_free(&l);
}

static void update_moves_between_lists(void **state)
{
	char *dir = mkdir_tmp();
	struct hm_junklist_opts o = { .now = 5000 };
	struct hm_junk_change c1[] = {
		{ "Spammer <ignored>", HM_JUNK_BLOCKED },   /* unusable: skipped */
		{ "<Spam@Example.NET>", HM_JUNK_BLOCKED },
		{ "bounce@mailer.example", HM_JUNK_BLOCKED },
		{ "<>", HM_JUNK_BLOCKED },                  /* null sender: skipped */
	};
	size_t skipped;
	assert_int_equal(hm_junklist_update(dir, c1, 4, &o, &skipped), 0);
	assert_int_equal(skipped, 2);
	char *t = read_file(dir);
	assert_non_null(strstr(t, "\nB 5000 bounce@mailer.example\nB 5000 spam@example.net\n"));
	free(t);

	/* moved back out of Junk: trusted now, not blocked any more */
	struct hm_junk_change c2[] = { { "spam@example.net", HM_JUNK_TRUSTED } };
	o.now = 6000;
	assert_int_equal(hm_junklist_update(dir, c2, 1, &o, NULL), 0);
	struct hm_junklist l;
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_int_equal(l.damaged, 0);
	assert_int_equal(hm_junklist_lookup(&l, "spam@example.net", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "bounce@mailer.example", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(l.n, 2);
	hm_junklist_free(&l);

	/* the temp file does not linger, the file is 0600 */
	char p[512];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_TMP);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	rm_tmp(dir);
}

/* update_returns_text - text_r gets exactly what was written */
static void update_returns_text(void **state)
{
	char *dir = mkdir_tmp(), *text = NULL;
	size_t len = 0;
	struct hm_junklist_opts o = { .now = 5000, .text_r = &text, .text_len_r = &len };
	struct hm_junk_change c[] = { { "spam@example.net", HM_JUNK_BLOCKED } };

	assert_int_equal(hm_junklist_update(dir, c, 1, &o, NULL), 0);
	assert_non_null(text);
	char *t = read_file(dir);
	assert_int_equal(strlen(text), len);
	assert_string_equal(text, t);
	free(t);
	free(text);
	rm_tmp(dir);
}

/* merge_newer_wins - the peer's copy: per address the later entry wins,
 * equal stamps go to trusted, future stamps count as now, damaged lines
 * are skipped, nothing taken = no rewrite, oversized = EFBIG */
static void merge_newer_wins(void **state)
{
	char *dir = mkdir_tmp();
	struct hm_junklist_opts o = { .now = 9000 };
	const char *local =
		"B 5000 old@example.net\n"      /* peer trusts it later: taken */
		"T 7000 kept@example.net\n"     /* peer's entry older: kept */
		"B 6000 tie@example.net\n"      /* same second, peer trusts: trusted */
		"T 6000 tie2@example.net\n"     /* same second, peer blocks: trusted */
		"B 100 mine@example.net\n";
	const char *peer =
		"# the peer's lists\n"
		"T 5001 old@example.net\n"
		"B 6999 kept@example.net\n"
		"T 6000 tie@example.net\n"
		"B 6000 tie2@example.net\n"
		"B 99999 future@example.net\n"  /* clamped to now */
		"X 1 bad-kind@example.net\n"    /* damaged: skipped */
		"B 1 no-at-sign\n"              /* damaged: skipped */
		"B 4000 new@example.org\n";
	size_t taken = 9;
	struct hm_junklist l;

	write_file(dir, local, strlen(local));
	assert_int_equal(hm_junklist_merge(dir, peer, strlen(peer), &o, &taken), 0);
	assert_int_equal(taken, 4);             /* old, tie, future, new */
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_int_equal(l.damaged, 0);
	assert_int_equal(l.n, 7);
	assert_int_equal(hm_junklist_lookup(&l, "old@example.net", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "kept@example.net", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "tie@example.net", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "tie2@example.net", NULL), HM_JUNK_TRUSTED);
	assert_int_equal(hm_junklist_lookup(&l, "mine@example.net", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(hm_junklist_lookup(&l, "new@example.org", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(hm_junklist_lookup(&l, "bad-kind@example.net", NULL), HM_JUNK_NONE);
	hm_junklist_free(&l);
	char *t = read_file(dir);
	assert_non_null(strstr(t, "\nB 9000 future@example.net\n"));
	assert_non_null(strstr(t, "\nT 5001 old@example.net\n"));
	free(t);

	/* merging the same copy again takes nothing and leaves the file alone */
	char p[512];
	struct stat st1, st2;
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	assert_int_equal(stat(p, &st1), 0);
	assert_int_equal(hm_junklist_merge(dir, peer, strlen(peer), &o, &taken), 0);
	assert_int_equal(taken, 0);
	assert_int_equal(stat(p, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);

	/* bounded: a full peer list trims to max_per_kind, newest kept */
	o.max_per_kind = 2;
	const char *many = "B 8001 a@x.example\nB 8002 b@x.example\nB 8003 c@x.example\n";
	assert_int_equal(hm_junklist_merge(dir, many, strlen(many), &o, &taken), 0);
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_BLOCKED), 2);
	assert_int_equal(hm_junklist_lookup(&l, "future@example.net", NULL), HM_JUNK_BLOCKED);
	assert_int_equal(hm_junklist_lookup(&l, "c@x.example", NULL), HM_JUNK_BLOCKED);
	hm_junklist_free(&l);

	/* hostile sizes: refused before anything is read or locked */
	assert_int_equal(hm_junklist_merge(dir, "", (size_t)HM_JUNKLIST_FILE_MAX + 1, &o, &taken), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(hm_junklist_merge(dir, NULL, 0, &o, &taken), -1);
	assert_int_equal(errno, EINVAL);
	/* binary garbage: nothing usable, nothing taken */
	const char junk[] = "B 1 a\0b@example.net\n\xff\xfe\x01\n";
	assert_int_equal(hm_junklist_merge(dir, junk, sizeof junk - 1, &o, &taken), 0);
	assert_int_equal(taken, 0);
	rm_tmp(dir);
}

static void update_repairs_damaged_file(void **state)
{
	char *dir = mkdir_tmp();
	const char dmg[] = "B 10 old@example.org\n\x01\x02garbage\nT 99999999999 future@example.org\nB 20 cut@exa";
	write_file(dir, dmg, sizeof dmg - 1);
	struct hm_junk_change c[] = { { "new@example.org", HM_JUNK_BLOCKED } };
	struct hm_junklist_opts o = { .now = 1000 };
	assert_int_equal(hm_junklist_update(dir, c, 1, &o, NULL), 0);
	char *t = read_file(dir);
	/* the garbage line is gone, the future stamp clamped, good lines kept */
	assert_null(strstr(t, "garbage"));
	assert_non_null(strstr(t, "B 10 old@example.org\n"));
	assert_non_null(strstr(t, "B 1000 new@example.org\n"));
	assert_non_null(strstr(t, "T 1000 future@example.org\n"));
	free(t);
	rm_tmp(dir);
}

static void update_refuses_symlink(void **state)
{
	char *dir = mkdir_tmp();
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	struct hm_junklist l;
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), -1);
	assert_int_equal(errno, ELOOP);
	hm_junklist_free(&l);
	struct hm_junk_change c[] = { { "x@example.org", HM_JUNK_BLOCKED } };
	assert_int_equal(hm_junklist_update(dir, c, 1, NULL, NULL), -1);
	unlink(p);
	/* a symlinked lock file is refused too */
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_LOCK);
	unlink(p);
	assert_int_equal(symlink("/tmp/nowhere-junklist-lock", p), 0);
	assert_int_equal(hm_junklist_update(dir, c, 1, NULL, NULL), -1);
	assert_int_equal(errno, ELOOP);
	unlink(p);
	rm_tmp(dir);
}

static void update_times_out_on_busy_lock(void **state)
{
	char *dir = mkdir_tmp();
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_LOCK);
	int fd = open(p, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	struct hm_junk_change c[] = { { "x@example.org", HM_JUNK_BLOCKED } };
	struct hm_junklist_opts o = { .lock_wait_ms = 100 };
	assert_int_equal(hm_junklist_update(dir, c, 1, &o, NULL), -1);
	assert_int_equal(errno, ETIMEDOUT);
	snprintf(p, sizeof p, "%s/%s", dir, HM_JUNKLIST_FILE);
	assert_int_equal(access(p, F_OK), -1);
	close(fd);
	assert_int_equal(hm_junklist_update(dir, c, 1, &o, NULL), 0);
	rm_tmp(dir);
}

static void update_bounded_size(void **state)
{
	char *dir = mkdir_tmp();
	enum { N = 3000 };
	struct hm_junk_change *c = calloc(N, sizeof *c);
	char (*a)[64] = calloc(N, 64);
	for (int i = 0; i < N; i++) {
		snprintf(a[i], 64, "sender%d@example.org", i);
		c[i].addr = a[i];
		c[i].kind = HM_JUNK_BLOCKED;
	}
	struct hm_junklist_opts o = { .max_per_kind = 1000, .now = 100, .no_fsync = 1 };
	assert_int_equal(hm_junklist_update(dir, c, 1000, &o, NULL), 0);
	o.now = 200;
	assert_int_equal(hm_junklist_update(dir, c + 1000, 2000, &o, NULL), 0);
	struct hm_junklist l;
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_BLOCKED), 1000);
	/* all survivors are from the newer batch */
	assert_int_equal(hm_junklist_lookup(&l, "sender5@example.org", NULL), HM_JUNK_NONE);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].stamp, 200);
	hm_junklist_free(&l);
	free(c);
	free(a);
	rm_tmp(dir);
}

static void concurrent_writers(void **state)
{
	/* 4 processes × 25 updates of 4 addresses each: every address ends up
	 * in the file exactly once, and the file parses without damage */
	char *dir = mkdir_tmp();
	enum { PROCS = 4, ROUNDS = 25 };
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			for (int r = 0; r < ROUNDS; r++) {
				char a[4][64];
				struct hm_junk_change c[4];
				for (int k = 0; k < 4; k++) {
					snprintf(a[k], 64, "p%d-r%d-k%d@example.org", p, r, k);
					c[k].addr = a[k];
					c[k].kind = (k & 1) ? HM_JUNK_TRUSTED : HM_JUNK_BLOCKED;
				}
				struct hm_junklist_opts o = { .no_fsync = 1 };
				if (hm_junklist_update(dir, c, 4, &o, NULL) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct hm_junklist l;
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_int_equal(l.damaged, 0);
	assert_int_equal(l.n, PROCS * ROUNDS * 4);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_BLOCKED), PROCS * ROUNDS * 2);
	hm_junklist_free(&l);
	rm_tmp(dir);
}

static void huge_file_is_bounded(void **state)
{
	/* a file past the read cap: loads the first part only, no crash,
	 * and the cut line is not taken as a (shortened) address */
	char *dir = mkdir_tmp();
	size_t len = HM_JUNKLIST_FILE_MAX + 4096, off = 0;
	char *text = malloc(len);
	int i = 0;
	while (off + 64 < len) {
		int w = snprintf(text + off, 64, "B %d user%08d@example.org\n", i, i);
		off += (size_t)w;
		i++;
	}
	memset(text + off, 'x', len - off);
	write_file(dir, text, len);
	free(text);
	struct hm_junklist l;
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_true(l.n <= HM_JUNKLIST_PARSE_MAX);
	assert_true(l.damaged > 0);
	for (size_t k = 0; k < l.n; k++)
		assert_int_equal(strlen(l.v[k].addr), strlen("user00000000@example.org"));
	hm_junklist_free(&l);
	/* an update trims it to the configured size */
	struct hm_junk_change c[] = { { "x@example.org", HM_JUNK_TRUSTED } };
	struct hm_junklist_opts o = { .max_per_kind = 100000, .no_fsync = 1 };
	assert_int_equal(hm_junklist_update(dir, c, 1, &o, NULL), 0);
	hm_junklist_init(&l);
	assert_int_equal(hm_junklist_load(&l, dir), 0);
	assert_int_equal(hm_junklist_count(&l, HM_JUNK_BLOCKED), HM_JUNKLIST_HARD_MAX);
	assert_int_equal(hm_junklist_lookup(&l, "x@example.org", NULL), HM_JUNK_TRUSTED);
	hm_junklist_free(&l);
	rm_tmp(dir);
}

static void sender_from_headers(void **state)
{
	char d[HM_JUNKLIST_ADDR_MAX + 1];
	struct { const char *in; const char *want; } ok[] = {
		{ "Spam King <King@Spam.Example>", "king@spam.example" },
		{ "=?UTF-8?B?U3DDpG0gS8O2bmln?= <x@y.example>", "x@y.example" },
		{ "\"Doe, John\" <john@example.org>, other@example.org", "john@example.org" },
		{ "<bounce+123@lists.example>", "bounce+123@lists.example" },
		{ "plain@example.org (Comment)", "plain@example.org" },
		{ "undisclosed:;, real@example.org", "real@example.org" },
		{ "garbage, next@example.org", "next@example.org" },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(hm_junk_sender_addr(ok[i].in, strlen(ok[i].in), d, sizeof d), 0);
		assert_string_equal(d, ok[i].want);
	}
	const char *bad[] = { "", "<>", "no address here", "Name <>", "\"a b\"@example.org",
			      "=?UTF-8?Q?broken", "@@@", "<a@>" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		assert_int_equal(hm_junk_sender_addr(bad[i], strlen(bad[i]), d, sizeof d), -1);
		assert_int_equal(errno, EINVAL);
	}
	/* a huge From: with thousands of addresses: bounded, no crash */
	size_t big = 200000;
	char *h = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		h[i] = "a@b,"[i % 4];
	h[big] = '\0';
	assert_int_equal(hm_junk_sender_addr(h, big, d, sizeof d), 0);
	assert_string_equal(d, "a@b");
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(normalize_forms),
		cmocka_unit_test(normalize_rejects),
		cmocka_unit_test(sender_from_headers),
		cmocka_unit_test(parse_tolerates_damage),
		cmocka_unit_test(parse_binary_garbage),
		cmocka_unit_test(trim_drops_oldest),
		cmocka_unit_test(update_moves_between_lists),
		cmocka_unit_test(update_returns_text),
		cmocka_unit_test(merge_newer_wins),
		cmocka_unit_test(update_repairs_damaged_file),
		cmocka_unit_test(update_refuses_symlink),
		cmocka_unit_test(update_times_out_on_busy_lock),
		cmocka_unit_test(update_bounded_size),
		cmocka_unit_test(concurrent_writers),
		cmocka_unit_test(huge_file_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
