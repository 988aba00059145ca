/* test_maildir.c — unit tests for lib/hm_maildir: unique names, folder name
 * mapping and refusal, spool -> store into new/ and cur/ with S=/W= and flags,
 * Maildir++ folder creation (maildirfolder, modes), planted symlinks refused,
 * dovecot-keywords allocation (26 max, case-insensitive reuse). */
#define _GNU_SOURCE 1   /* nftw, for hm_testutil.h */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_maildir.h"
#include "hm_testutil.h"

static char root[256];

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/hm-md-test.%d", (int)getpid());
	return hm_test_rmtree(root);
}

static int teardown(void **state)
{
	return hm_test_rmtree(root);
}

/* only_file - the one file name in dir (asserts exactly one) */
static void only_file(const char *dir, char *out, size_t size)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(out, size, "%s", e->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void unique_names(void **state)
{
	struct hm_maildir md;
	assert_int_equal(hm_maildir_open(&md, root, true), 0);
	char a[256], b[256];
	assert_int_equal(hm_maildir_unique(&md, a, sizeof a), 0);
	assert_int_equal(hm_maildir_unique(&md, b, sizeof b), 0);
	assert_string_not_equal(a, b);
	regex_t re;
	assert_int_equal(regcomp(&re, "^[0-9]+\\.M[0-9]+P[0-9]+Q[0-9]+\\.[^/:,]+$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, a, 0, NULL, 0), 0);
	regfree(&re);
	hm_maildir_close(&md);
}

static void folder_names(void **state)
{
	char d[256];
	assert_int_equal(hm_maildir_folder_dir("INBOX", d, sizeof d), 0);
	assert_string_equal(d, ".");
	assert_int_equal(hm_maildir_folder_dir("inbox", d, sizeof d), 0);
	assert_string_equal(d, ".");
	assert_int_equal(hm_maildir_folder_dir("Archive.2026", d, sizeof d), 0);
	assert_string_equal(d, ".Archive.2026");
	assert_int_equal(hm_maildir_folder_dir("Entw\xc3\xbc" "rfe", d, sizeof d), 0);
	assert_string_equal(d, ".Entw&APw-rfe");
	assert_int_equal(hm_maildir_folder_dir("R&D", d, sizeof d), 0);
	assert_string_equal(d, ".R&-D");
	/* what Dovecot's Maildir++ layout refuses (dovecot-lda 2.3.19 keeps such a
	 * fileinto in INBOX): '/' anywhere, '~' first, empty levels; and ours:
	 * control bytes, invalid UTF-8 */
	const char *bad[] = { "", "a/b", "/a", "a/", ".a", "a.", "a..b", "..", ".", "x\ty",
			      "bad\xff", "\x7f", "~", "~tilde", "~a.b" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		assert_int_equal(hm_maildir_folder_dir(bad[i], d, sizeof d), -1);
		assert_int_equal(errno, EINVAL);
	}
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	assert_int_equal(hm_maildir_folder_dir(longname, d, sizeof d), -1);
}

static void spool_and_store(void **state)
{
	struct hm_maildir md;
	struct hm_spool sp;
	struct hm_mfolder in, sub;
	char name[512], path[1024], fname[512];
	const char msg[] = "Subject: x\n\nhello\n";
	struct stat st;

	assert_int_equal(hm_maildir_open(&md, root, true), 0);
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(hm_maildir_spool_create(&md, &sp), 0);
	assert_int_equal(write(sp.fd, msg, sizeof msg - 1), (ssize_t)(sizeof msg - 1));
	sp.size = sizeof msg - 1;
	sp.vsize = sp.size + 3;
	assert_int_equal(hm_maildir_spool_sync(&sp), 0);

	assert_int_equal(hm_maildir_folder_open(&md, "INBOX", true, &in), 0);
	assert_int_equal(hm_maildir_store(&md, &in, &sp, NULL, name, sizeof name), 0);
	snprintf(path, sizeof path, "%s/new", root);
	only_file(path, fname, sizeof fname);
	assert_string_equal(fname, name);
	char want[64];
	snprintf(want, sizeof want, ",S=%zu,W=%zu", sizeof msg - 1, sizeof msg + 2);
	assert_non_null(strstr(name, want));
	assert_null(strchr(name, ':'));
	assert_string_equal(hm_maildir_stored_in(name), "new");
	snprintf(path, sizeof path, "%s/new/%s", root, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, sizeof msg - 1);

	/* folder with flags: cur/, sorted letters, maildirfolder marker */
	assert_int_equal(hm_maildir_folder_open(&md, "Lists.Debian", true, &sub), 0);
	assert_int_equal(hm_maildir_store(&md, &sub, &sp, "SaFS", name, sizeof name), 0);
	assert_non_null(strstr(name, ":2,FSa"));
	assert_string_equal(hm_maildir_stored_in(name), "cur");
	snprintf(path, sizeof path, "%s/.Lists.Debian/cur", root);
	assert_int_equal(count_files(path), 1);
	snprintf(path, sizeof path, "%s/.Lists.Debian/maildirfolder", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof path, "%s/.Lists.Debian", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	hm_maildir_folder_close(&sub);

	/* missing folder without create */
	assert_int_equal(hm_maildir_folder_open(&md, "Nope", false, &sub), -1);
	assert_int_equal(errno, ENOENT);

	/* a size that does not match the file is refused (S= must be right) */
	sp.size++;
	assert_int_equal(hm_maildir_store(&md, &in, &sp, NULL, name, sizeof name), -1);
	assert_int_equal(errno, EIO);
	sp.size--;

	hm_maildir_spool_discard(&md, &sp);
	snprintf(path, sizeof path, "%s/tmp", root);
	assert_int_equal(count_files(path), 0);
	snprintf(path, sizeof path, "%s/new", root);
	assert_int_equal(count_files(path), 1);
	hm_maildir_folder_close(&in);
	hm_maildir_close(&md);
}

static void symlinks_refused(void **state)
{
	struct hm_maildir md;
	struct hm_mfolder f;
	char path[512], target[512];
	assert_int_equal(hm_maildir_open(&md, root, true), 0);
	snprintf(target, sizeof target, "%s-elsewhere", root);
	mkdir(target, 0700);
	snprintf(path, sizeof path, "%s/.Evil", root);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(hm_maildir_folder_open(&md, "Evil", true, &f), -1);
	/* symlinked new/ inside a real folder */
	assert_int_equal(hm_maildir_folder_open(&md, "Half", true, &f), 0);
	hm_maildir_folder_close(&f);
	snprintf(path, sizeof path, "%s/.Half/new", root);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(hm_maildir_folder_open(&md, "Half", true, &f), -1);
	assert_int_equal(count_files(target), 0);
	rmdir(target);
	hm_maildir_close(&md);
}

static void keywords(void **state)
{
	struct hm_maildir md;
	struct hm_mfolder f;
	char letters[32], path[512], buf[4096];
	size_t dropped;
	assert_int_equal(hm_maildir_open(&md, root, true), 0);
	assert_int_equal(hm_maildir_folder_open(&md, "K", true, &f), 0);
	const char *kw1[] = { "$Label1", "Work" };
	assert_int_equal(hm_maildir_keywords(&f, kw1, 2, letters, sizeof letters, &dropped), 0);
	assert_string_equal(letters, "ab");
	assert_int_equal(dropped, 0);
	const char *kw2[] = { "work", "New" };
	assert_int_equal(hm_maildir_keywords(&f, kw2, 2, letters, sizeof letters, &dropped), 0);
	assert_string_equal(letters, "bc");
	snprintf(path, sizeof path, "%s/.K/dovecot-keywords", root);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n] = 0;
	assert_string_equal(buf, "0 $Label1\n1 Work\n2 New\n");
	/* fill up: only 26 fit */
	const char *many[30];
	char store[30][16];
	for (int i = 0; i < 30; i++) {
		snprintf(store[i], sizeof store[i], "k%02d", i);
		many[i] = store[i];
	}
	assert_int_equal(hm_maildir_keywords(&f, many, 30, letters, sizeof letters, &dropped), 0);
	assert_int_equal(dropped, 7);
	assert_int_equal(strlen(letters), 23);
	const char *bad[] = { "has space" };
	assert_int_equal(hm_maildir_keywords(&f, bad, 1, letters, sizeof letters, &dropped), -1);
	assert_false(hm_maildir_keyword_valid("\\Seen"));
	assert_int_equal(hm_maildir_flag_letter("\\seen"), 'S');
	assert_int_equal(hm_maildir_flag_letter("\\Answered"), 'R');
	assert_int_equal(hm_maildir_flag_letter("\\Recent"), -1);
	assert_int_equal(hm_maildir_flag_letter("Work"), 0);
	/* no lock files left behind */
	snprintf(path, sizeof path, "%s/.K/dovecot-keywords.lock", root);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof path, "%s/.K/dovecot-uidlist.lock", root);
	assert_int_equal(access(path, F_OK), -1);
	hm_maildir_folder_close(&f);
	hm_maildir_close(&md);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(unique_names, setup, teardown),
		cmocka_unit_test(folder_names),
		cmocka_unit_test_setup_teardown(spool_and_store, setup, teardown),
		cmocka_unit_test_setup_teardown(symlinks_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(keywords, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
