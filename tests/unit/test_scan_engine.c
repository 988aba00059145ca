/* test_scan_engine.c — unit tests for the homemail scan policy (libhmscan):
 * scan.conf validation (bad files must be errors with a line number, never
 * silently ignored), every reading of an attachment name (bidi, NUL, trailing
 * dots/spaces, paths, NTFS streams), zip member listing through libarchive,
 * and verdicts with the actions configurable per rule.  Issue 14: archive
 * bombs (data descriptor, nested, many members, solid 7z) are stopped by the
 * decompression budget — asserted by the counter and the reason, never by
 * time — and end as "unscannable", never as a silent accept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hm_util.h"
#include "scan.h"

static char *write_tmp(const char *text)
{
	char *p = strdup("/tmp/test_scan_conf_XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return p;
}

static int load(const char *text, struct scan_conf *c, char *err, size_t n)
{
	assert_int_equal(scan_conf_defaults(c), 0);
	char *p = write_tmp(text);
	int r = scan_conf_load(p, c, err, n);
	unlink(p);
	free(p);
	return r;
}

static void conf_good_and_defaults(void **state)
{
	struct scan_conf c;
	char err[256];
	assert_int_equal(load("# comment\nmax_depth = 7\naction_ambiguous = tag\n"
			      "blocked_extensions = .EXE, scr\nmax_header_size = 64K\n\n",
			      &c, err, sizeof err), 0);
	assert_int_equal(c.lim.max_depth, 7);
	assert_int_equal(c.lim.max_header, 65536);
	assert_int_equal(c.action[SR_AMBIGUOUS], SCAN_TAG);
	assert_int_equal(c.action[SR_BLOCKED], SCAN_REJECT);
	assert_int_equal(c.nblocked, 2);
	assert_string_equal(c.blocked[0], "exe");
	scan_conf_free(&c);
	/* missing file: defaults, return 1 */
	assert_int_equal(scan_conf_defaults(&c), 0);
	assert_int_equal(scan_conf_load("/nonexistent/scan.conf", &c, err, sizeof err), 1);
	assert_int_equal(c.lim.max_parts, 1000);
	scan_conf_free(&c);
}

static void conf_errors_name_line(void **state)
{
	struct scan_conf c;
	char err[256];
	const char *bad[] = {
		"max_depth = 0\n", "max_depth = 12x\n", "frobnicate = 1\n", "action_blocked = maybe\n",
		"just a line\n", "max_parts =\n", "blocked_extensions = ex/e\n", "action_limit = tag\n",
		"time_budget = 99999\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(load(bad[i], &c, err, sizeof err), -1);
		assert_non_null(strstr(err, ":1:"));
		scan_conf_free(&c);
	}
	assert_int_equal(load("max_depth = 5\n\nmax_parts = -3\n", &c, err, sizeof err), -1);
	assert_non_null(strstr(err, ":3: max_parts"));
	scan_conf_free(&c);
}

static const char *blocked(const struct scan_conf *c, const char *n, size_t len, const char **susp)
{
	return scan_name_blocked(c, n, len, susp);
}

static void name_readings(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	const char *s;
	assert_null(blocked(&c, "report.pdf", 10, &s));
	assert_null(s);
	assert_string_equal(blocked(&c, "EVIL.EXE", 8, &s), "exe");
	/* Windows strips trailing dots and spaces */
	assert_string_equal(blocked(&c, "evil.exe. . ", 12, &s), "exe");
	/* path components */
	assert_string_equal(blocked(&c, "a/b\\evil.js", 11, &s), "js");
	/* NTFS alternate stream syntax */
	assert_string_equal(blocked(&c, "evil.exe:x.txt", 14, &s), "exe");
	/* NUL: a C client reads "evil.exe" */
	assert_string_equal(blocked(&c, "evil.exe\0.txt", 13, &s), "exe");
	assert_non_null(s);
	/* U+202E: "invoice\u202Efdp.exe" displays as "invoiceexe.pdf" */
	const char rlo[] = "invoice\xe2\x80\xae" "fdp.exe";
	assert_string_equal(blocked(&c, rlo, sizeof rlo - 1, &s), "exe");
	assert_non_null(s);
	/* a format character hiding the real extension: "x.e<ZWSP>xe" */
	const char zw[] = "x.e\xe2\x80\x8bxe";
	assert_string_equal(blocked(&c, zw, sizeof zw - 1, &s), "exe");
	/* a bidi character alone is suspicious even with a harmless extension */
	const char lrm[] = "photo\xe2\x80\x8e.jpg";
	assert_null(blocked(&c, lrm, sizeof lrm - 1, &s));
	assert_non_null(s);
	scan_conf_free(&c);
}

/* make_archive - an in-memory zip (or 7z) holding the given member names */
static void *make_archive(bool sevenzip, const char *const *names, size_t n, size_t *len_r)
{
	size_t cap = 1 << 16, used = 0;
	void *buf = malloc(cap);
	struct archive *a = archive_write_new();
	if (sevenzip)
		archive_write_set_format_7zip(a);
	else
		archive_write_set_format_zip(a);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, names[i]);
		archive_entry_set_size(e, 5);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_write_header(a, e);
		archive_write_data(a, "hello", 5);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	*len_r = used;
	return buf;
}

static void *make_zip(const char *const *names, size_t n, size_t *len_r)
{
	return make_archive(false, names, n, len_r);
}

/* budget - a fresh per-message budget: C's decompression bound and an hour */
static struct scan_budget budget(const struct scan_conf *c)
{
	struct scan_budget b = {.inflate_left = c->max_archive_inflate,
				.declared_left = c->max_archive_inflate};
	clock_gettime(CLOCK_MONOTONIC, &b.deadline);
	b.deadline.tv_sec += 3600;
	return b;
}

struct names {
	char all[1024];
};

static int name_cb(void *ctx, const char *n, size_t l)
{
	struct names *x = ctx;
	size_t used = strlen(x->all);
	if (used + l + 2 > sizeof x->all)
		return 0; /* full: the first names are the ones asserted */
	memcpy(x->all + used, n, l);
	memcpy(x->all + used + l, ";", 2);
	return 0;
}

static void archive_members(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	const char *const names[] = {"readme.txt", "dir/setup.exe"};
	size_t len;
	void *z = make_zip(names, 2, &len);
	struct names x = {""};
	struct scan_budget b = budget(&c);
	assert_int_equal(scan_archive_names(&c, z, len, &b, name_cb, &x), 0);
	/* the streaming view read the two members: 10 bytes counted */
	assert_int_equal(b.inflate_left, c.max_archive_inflate - 10);
	assert_non_null(strstr(x.all, "readme.txt;"));
	assert_non_null(strstr(x.all, "dir/setup.exe;"));
	/* broken: truncated zip and non-zip */
	struct names y = {""};
	assert_int_equal(scan_archive_names(&c, "hello", 5, &b, name_cb, &y), 1);
	scan_archive_names(&c, z, len / 3, &b, name_cb, &y);
	free(z);
	/* 7z: listed as well (malware often ships in 7z or RAR) */
	const char *const names7[] = {"docs/invoice.pdf.js"};
	z = make_archive(true, names7, 1, &len);
	assert_true(scan_archive_magic(z, len));
	struct names x7 = {""};
	assert_int_equal(scan_archive_names(&c, z, len, &b, name_cb, &x7), 0);
	assert_string_equal(x7.all, "docs/invoice.pdf.js;");
	free(z);
	scan_conf_free(&c);
}

static const struct scan_verdict *run(struct scan **s, const struct scan_conf *c, const char *msg)
{
	*s = scan_new(c, NULL);
	assert_non_null(*s);
	scan_feed(*s, msg, strlen(msg));
	return scan_finish(*s);
}

/* write_zeros - a zip (or solid 7z) of N members of SIZE zero bytes each,
 * named NAME0, NAME1...; a zip member of unknown size gets a data descriptor
 * (the length stored after the data), the case libarchive's streaming reader
 * must decompress to skip.  inner (may be NULL) is added first as "inner.zip". */
static void *write_zeros(bool sevenzip, bool dd, size_t n, size_t size, const void *inner,
			 size_t inner_len, size_t *len_r)
{
	size_t cap = (size * n) / 100 + n * 256 + inner_len + (1 << 20), used = 0;
	char *buf = malloc(cap);
	char *zeros = calloc(1, 1 << 16);
	struct archive *a = archive_write_new();
	if (sevenzip)
		archive_write_set_format_7zip(a);
	else
		archive_write_set_format_zip(a);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n + (inner != NULL); i++) {
		bool is_inner = inner && i == 0;
		struct archive_entry *e = archive_entry_new();
		char name[32];
		snprintf(name, sizeof name, is_inner ? "inner.zip" : "zeros%zu.bin", i);
		archive_entry_set_pathname(e, name);
		if (!dd || is_inner)
			archive_entry_set_size(e, (la_int64_t)(is_inner ? inner_len : size));
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
		if (is_inner)
			archive_write_data(a, inner, inner_len);
		else
			for (size_t k = 0; k < size; k += 1 << 16)
				archive_write_data(a, zeros, size - k < (1 << 16) ? size - k : 1 << 16);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	free(zeros);
	*len_r = used;
	return buf;
}

/* issue 14: every byte libarchive decompresses counts against one budget, in
 * every view and at every level; running out is 4 with the reason, and the
 * counter (not the clock) is what stopped it */
static void archive_bombs_stopped_by_budget(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	c.max_archive_inflate = 1 << 20;
	size_t dd_len, len;
	void *dd = write_zeros(false, true, 1, 8 << 20, NULL, 0, &dd_len);
	static const char inflated[] = "decompression budget (max_archive_inflate) exhausted";
	static const char declared[] = "declared size over max_archive_inflate";
	struct {
		const char *what;
		void *data;
		size_t len;
		const char *why; /* inflated: read and counted; declared: skipped, size counted */
	} bombs[] = {
		{"data descriptor", dd, dd_len, inflated},
		/* libarchive's writer adds a descriptor even when the size is known;
		 * the zip with sizes only in the header is test_scan_bombs.py's "flat" */
		{"size known, descriptor", write_zeros(false, false, 1, 8 << 20, NULL, 0, &len), len,
		 inflated},
		{"nested", write_zeros(false, false, 0, 0, dd, dd_len, &len), len, inflated},
		{"many members", write_zeros(false, true, 64, 64 << 10, NULL, 0, &len), len, inflated},
		{"solid 7z", write_zeros(true, false, 4, 2 << 20, NULL, 0, &len), len, declared},
	};
	for (size_t i = 0; i < HM_ARRAY_SIZE(bombs); i++) {
		struct names x = {""};
		struct scan_budget b = budget(&c);
		print_message("%s\n", bombs[i].what);
		assert_int_equal(scan_archive_names(&c, bombs[i].data, bombs[i].len, &b, name_cb, &x), 4);
		assert_false(b.timed_out);
		assert_string_equal(b.why, bombs[i].why);
		/* the counter that stopped it is spent */
		assert_int_equal(bombs[i].why == inflated ? b.inflate_left : b.declared_left, 0);
		assert_non_null(strstr(x.all, i == 2 ? "inner.zip;" : "zeros0.bin;"));
		/* the budget is the message's: the next archive finds it spent */
		struct names y = {""};
		assert_int_equal(scan_archive_names(&c, bombs[i].data, bombs[i].len, &b, name_cb, &y), 4);
		free(bombs[i].data);
	}
	scan_conf_free(&c);
}

/* the deadline is checked inside the listing: a budget whose time has passed
 * lists nothing and says so */
static void archive_deadline_checked(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	const char *const names[] = {"a.txt"};
	size_t len;
	void *z = make_zip(names, 1, &len);
	struct scan_budget b = budget(&c);
	clock_gettime(CLOCK_MONOTONIC, &b.deadline);
	struct names x = {""};
	assert_int_equal(scan_archive_names(&c, z, len, &b, name_cb, &x), 4);
	assert_true(b.timed_out);
	assert_string_equal(b.why, "time budget exhausted");
	free(z);
	scan_conf_free(&c);
}

/* issue 14: more members than one view's bound is unscannable (4), and each
 * view has its own bound */
static void archive_member_bound_per_view(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	size_t len;
	void *z = write_zeros(false, false, 20001, 0, NULL, 0, &len);
	struct names x = {""};
	struct scan_budget b = budget(&c);
	assert_int_equal(scan_archive_names(&c, z, len, &b, name_cb, &x), 4);
	assert_string_equal(b.why, "too many archive members");
	free(z);
	/* 15,000 members: over half of the old shared bound, under each view's */
	z = write_zeros(false, false, 15000, 0, NULL, 0, &len);
	b = budget(&c);
	assert_int_equal(scan_archive_names(&c, z, len, &b, name_cb, &x), 0);
	free(z);
	scan_conf_free(&c);
}

/* the engine turns a spent budget into the unscannable action */
static void bomb_verdict_is_unscannable(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	c.max_archive_inflate = 1 << 20;
	size_t len;
	void *z = write_zeros(false, true, 1, 4 << 20, NULL, 0, &len);
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *msg = malloc(len * 2 + 1024);
	size_t o = (size_t)sprintf(msg, "From: a@b\nDate: x\nContent-Type: application/zip; name=\"b.zip\"\n"
				   "Content-Transfer-Encoding: base64\n\n");
	const unsigned char *p = z;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0) |
			     (i + 2 < len ? p[i + 2] : 0);
		msg[o++] = b64[v >> 18];
		msg[o++] = b64[(v >> 12) & 63];
		msg[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		msg[o++] = i + 2 < len ? b64[v & 63] : '=';
		if (i % 57 == 54)
			msg[o++] = '\n';
	}
	strcpy(msg + o, "\n");
	struct scan *s;
	const struct scan_verdict *v = run(&s, &c, msg);
	assert_int_equal(v->action, SCAN_TAG);
	assert_int_equal(v->rule, SR_UNSCANNABLE);
	assert_non_null(strstr(v->reason, "decompression budget"));
	scan_free(&s);
	c.action[SR_UNSCANNABLE] = SCAN_REJECT;
	v = run(&s, &c, msg);
	assert_int_equal(v->action, SCAN_REJECT);
	scan_free(&s);
	free(msg);
	free(z);
	scan_conf_free(&c);
}

static void verdicts_follow_actions(void **state)
{
	struct scan_conf c;
	scan_conf_defaults(&c);
	struct scan *s;
	const char *clean = "From: a@b\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nhi\n";
	const struct scan_verdict *v = run(&s, &c, clean);
	assert_int_equal(v->action, SCAN_ACCEPT);
	assert_string_equal(v->header, "accept; parts=1; depth=0");
	scan_free(&s);
	assert_null(s);

	const char *nodate = "From: a@b\n\nhi\n";
	v = run(&s, &c, nodate);
	assert_int_equal(v->action, SCAN_TAG);
	assert_non_null(strstr(v->header, "rules=date"));
	scan_free(&s);

	const char *amb = "From: a@b\nDate: x\nContent-Type: multipart/mixed; boundary=q\n\n--q\n\nx\n";
	v = run(&s, &c, amb);
	assert_int_equal(v->action, SCAN_REJECT);
	assert_int_equal(v->rule, SR_AMBIGUOUS);
	assert_non_null(strstr(v->reason, "missing-close-boundary"));
	scan_free(&s);
	c.action[SR_AMBIGUOUS] = SCAN_TAG;
	v = run(&s, &c, amb);
	assert_int_equal(v->action, SCAN_TAG);
	assert_non_null(strstr(v->header, "rules=ambiguous"));
	scan_free(&s);
	c.action[SR_AMBIGUOUS] = SCAN_FREEZE;
	v = run(&s, &c, amb);
	assert_int_equal(v->action, SCAN_FREEZE);
	scan_free(&s);

	const char *two_from = "From: a@b\nFrom: c@d\nDate: x\n\nhi\n";
	v = run(&s, &c, two_from);
	assert_int_equal(v->action, SCAN_REJECT);
	assert_int_equal(v->rule, SR_FROM);
	scan_free(&s);

	/* a second Content-Disposition is ambiguous (here only tagged), and the
	 * name in it is still checked: a client may read that one */
	const char *two_cd = "From: a@b\nDate: x\nContent-Disposition: inline\n"
			     "Content-Disposition: attachment; filename=\"evil.exe\"\n\nMZ\n";
	c.action[SR_AMBIGUOUS] = SCAN_TAG;
	v = run(&s, &c, two_cd);
	assert_int_equal(v->action, SCAN_REJECT);
	assert_int_equal(v->rule, SR_BLOCKED);
	scan_free(&s);
	const char *two_ct = "From: a@b\nDate: x\nContent-Type: text/plain\n"
			     "Content-Type: application/octet-stream; name=\"evil.js\"\n\nMZ\n";
	v = run(&s, &c, two_ct);
	assert_int_equal(v->action, SCAN_REJECT);
	assert_int_equal(v->rule, SR_BLOCKED);
	scan_free(&s);
	c.action[SR_AMBIGUOUS] = SCAN_REJECT;

	/* a uuencode "begin" line longer than the 1 KiB head kept: its name is
	 * still checked, by its end (it was dropped) */
	char *uu = malloc(8192);
	strcpy(uu, "From: a@b\nDate: x\n\nbegin 644 ");
	memset(uu + strlen(uu), 'a', 5000);
	strcpy(uu + strlen("From: a@b\nDate: x\n\nbegin 644 ") + 5000, ".exe\r\n`\nend\n");
	v = run(&s, &c, uu);
	assert_int_equal(v->action, SCAN_REJECT);
	assert_int_equal(v->rule, SR_BLOCKED);
	scan_free(&s);
	free(uu);

	/* the reason never carries raw bytes from the message */
	const char *evil = "From: a@b\nDate: x\nContent-Disposition: attachment; filename=\"a\r\n 550 x\\\".exe\"\n\nx\n";
	v = run(&s, &c, evil);
	assert_int_equal(v->action, SCAN_REJECT);
	for (const char *p = v->reason; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	scan_free(&s);
	scan_conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conf_good_and_defaults),
		cmocka_unit_test(conf_errors_name_line),
		cmocka_unit_test(name_readings),
		cmocka_unit_test(archive_members),
		cmocka_unit_test(archive_bombs_stopped_by_budget),
		cmocka_unit_test(archive_deadline_checked),
		cmocka_unit_test(archive_member_bound_per_view),
		cmocka_unit_test(bomb_verdict_is_unscannable),
		cmocka_unit_test(verdicts_follow_actions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
