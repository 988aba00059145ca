/* test_users.c — unit tests for lib/hm_users (users file parser, editor,
 * atomic rewrite) and the password helpers in lib/hm_users_pw.c.
 * Guards against: a bad line hiding the good ones, lost comments on
 * rewrite, weak hashes slipping through, {SCHEME} prefixes that lie. */
#define _GNU_SOURCE 1   /* nftw, for hm_testutil.h */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hm_testutil.h"
#include "hm_users.h"

#define H_SHA512 "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"

struct warns {
	unsigned int n;
	unsigned int lines[32];
	char last[512];
};

static void collect(void *ctx, const char *path, unsigned int line, const char *msg)
{
	struct warns *w = ctx;
	if (w->n < 32)
		w->lines[w->n] = line;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s:%u: %s", path, line, msg);
}

static char tmpdir[64];

static int setup_dir(void **state)
{
	strcpy(tmpdir, "/tmp/test_users.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	return hm_test_rmtree(tmpdir);
}

static void parse_good_and_bad_lines(void **state)
{
	const char data[] =
		"# comment\n"
		"\n"
		"Alice@Home.COM.bo:" H_SHA512 ":5000:5000:/var/vmail/alice:100M:\n"
		"bob@home.com.bo:$y$j9T$abc$def:5000:5000:/var/vmail/bob::disabled:future\n"
		"nocolons\n"
		"carol@home.com.bo:" H_SHA512 ":0:5000:/var/vmail/carol::\n"
		"dave@home.com.bo:" H_SHA512 ":5000:5000:relative/home::\n"
		"eve@home.com.bo:" H_SHA512 ":5000:5000:/var/vmail/../etc::\n"
		"frank@home.com.bo:garbage!:5000:5000:/var/vmail/f::\n"
		"alice@home.com.bo:" H_SHA512 ":5001:5001:/var/vmail/dup::\n"
		"gina@home.com.bo:" H_SHA512 ":5000:5000:/var/vmail/g:12Q:\n"
		"hank@home.com.bo:" H_SHA512 ":5000:5000:/var/vmail/h::weird\n"
		"bad..dots@home.com.bo:" H_SHA512 ":5000:5000:/var/vmail/x::\n"
		"ivy@home.com.bo:{SHA512-CRYPT}" H_SHA512 ":5000:5000:/var/vmail/ivy:2G:locked\n"
		"jo@home.com.bo:{SHA256-CRYPT}" H_SHA512 ":5000:5000:/var/vmail/jo::\n";
	struct warns w = {0};
	struct hm_users *db;
	const struct hm_user *u;

	assert_int_equal(hm_users_parse(data, sizeof(data) - 1, "users", collect, &w, &db), 0);
	assert_int_equal(hm_users_count(db), 3);
	assert_int_equal(hm_users_malformed(db), 10);
	assert_int_equal(w.n, 10);
	assert_int_equal(w.lines[0], 5);
	assert_int_equal(w.lines[9], 15);
	u = hm_users_find(db, "ALICE@home.com.bo");
	assert_non_null(u);
	assert_string_equal(u->address, "alice@home.com.bo");
	assert_int_equal(u->uid, 5000);
	assert_string_equal(u->home, "/var/vmail/alice");
	assert_int_equal(u->quota_bytes, 100ULL << 20);
	assert_int_equal(u->line, 3);
	u = hm_users_find(db, "bob@home.com.bo");
	assert_non_null(u);
	assert_int_equal(u->state, HM_USER_DISABLED);
	assert_string_equal(u->extra, "future");
	u = hm_users_find(db, "ivy@home.com.bo");
	assert_non_null(u);
	assert_int_equal(u->state, HM_USER_LOCKED);
	assert_int_equal(u->quota_bytes, 2ULL << 30);
	assert_null(hm_users_find(db, "carol@home.com.bo"));
	assert_null(hm_users_find(db, "jo@home.com.bo"));
	hm_users_free(&db);
	assert_null(db);
}

static void hostile_bytes(void **state)
{
	/* NUL inside a line, an over-long line, CRLF, no final newline */
	char *data = malloc(20000);
	size_t n = 0;
	struct warns w = {0};
	struct hm_users *db;

	n += (size_t)sprintf(data + n, "a@b.c:" H_SHA512 ":1000:1000:/h/a::\r\n");
	static const char nul_line[] = "x\0y@b.c:" H_SHA512 ":1000:1000:/h/x::\n";
	memcpy(data + n, nul_line, sizeof(nul_line) - 1);
	n += sizeof(nul_line) - 1;
	memset(data + n, 'z', 9000);
	n += 9000;
	data[n++] = '\n';
	n += (size_t)sprintf(data + n, "q@b.c:" H_SHA512 ":1000:1000:/h/q::");
	assert_int_equal(hm_users_parse(data, n, NULL, collect, &w, &db), 0);
	assert_int_equal(hm_users_count(db), 2);
	assert_int_equal(w.n, 2);
	assert_int_equal(w.lines[0], 2);
	assert_int_equal(w.lines[1], 3);
	assert_non_null(hm_users_find(db, "q@b.c"));
	assert_non_null(hm_users_find(db, "a@b.c"));
	/* a malformed line survives a rewrite verbatim */
	size_t len;
	char *out = hm_users_serialize(db, &len);
	assert_non_null(out);
	assert_int_equal(len, n + 1);   /* only a final newline is added */
	assert_memory_equal(out, data, n);
	free(out);
	hm_users_free(&db);
	free(data);
}

static void address_rules(void **state)
{
	char out[300];
	char big[400];

	assert_int_equal(hm_users_normalize_address("A.B+tag@Example.ORG", out, sizeof(out)), 0);
	assert_string_equal(out, "a.b+tag@example.org");
	assert_int_equal(hm_users_normalize_address("u@localhost", out, sizeof(out)), 0);
	const char *bad[] = { "", "@x.org", "u@", "u", "a@b@c", ".a@x.org", "a.@x.org",
			      "a..b@x.org", "a b@x.org", "a\t@x.org", "a:b@x.org",
			      "a/b@x.org", "a@-x.org", "a@x-.org", "a@x..org", "a@x_y.org",
			      "\xc3\xa9@x.org", NULL };
	for (int i = 0; bad[i]; i++) {
		errno = 0;
		assert_int_equal(hm_users_normalize_address(bad[i], out, sizeof(out)), -1);
		assert_int_equal(errno, EINVAL);
	}
	memset(big, 'a', sizeof(big));
	strcpy(big + 300, "@x.org");
	assert_int_equal(hm_users_normalize_address(big, out, sizeof(out)), -1);
	assert_true(hm_users_valid_home("/var/vmail/a"));
	assert_false(hm_users_valid_home("/"));
	assert_false(hm_users_valid_home("/a/./b"));
	assert_false(hm_users_valid_home("/a//b"));
	assert_false(hm_users_valid_home("/a/b/"));
	assert_false(hm_users_valid_home("/a:b"));
	assert_false(hm_users_valid_home("/a\nb"));
	uint64_t q;
	assert_int_equal(hm_users_parse_quota("0", &q), 0);
	assert_int_equal(q, 0);
	assert_int_equal(hm_users_parse_quota("1k", &q), 0);
	assert_int_equal(q, 1024);
	assert_int_equal(hm_users_parse_quota("5GB", &q), 0);
	assert_int_equal(q, 5ULL << 30);
	assert_int_equal(hm_users_parse_quota("99999999999999999999999", &q), -1);
	assert_int_equal(hm_users_parse_quota("9999999999T", &q), -1);
	assert_int_equal(hm_users_parse_quota("-5", &q), -1);
}

static void pw_schemes(void **state)
{
	char h[HM_PW_HASH_SIZE], scheme[64];
	const char *rest;
	struct hm_pw_info info;
	enum hm_pw_scheme all[] = { HM_PW_YESCRYPT, HM_PW_BCRYPT, HM_PW_SHA512_CRYPT,
				    HM_PW_SHA256_CRYPT };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(hm_pw_hash("s3cret\tpw", all[i], h, sizeof(h)), 0);
		assert_int_equal(hm_pw_identify("", h, &info), 0);
		assert_int_equal(info.scheme, all[i]);
		assert_false(info.weak);
		assert_int_equal(hm_pw_verify("s3cret\tpw", "", h, false), 1);
		assert_int_equal(hm_pw_verify("s3cret\tpx", "", h, false), 0);
		assert_int_equal(hm_pw_verify("s3cret\tpw", "CRYPT", h, false), 1);
		assert_int_equal(hm_pw_verify("s3cret\tpw", hm_pw_scheme_name(all[i]), h, false), 1);
	}
	/* prefixes */
	rest = hm_pw_split("{sha512-crypt}" H_SHA512, scheme, sizeof(scheme));
	assert_string_equal(scheme, "SHA512-CRYPT");
	assert_string_equal(rest, H_SHA512);
	assert_int_equal(hm_pw_verify("password", scheme, rest, false), 1);
	assert_int_equal(hm_pw_verify("password", "SHA256-CRYPT", H_SHA512, false), -1);
	assert_null(hm_pw_split("{bad scheme}x", scheme, sizeof(scheme)));
	rest = hm_pw_split("{nobrace", scheme, sizeof(scheme));
	assert_string_equal(scheme, "");
	assert_string_equal(rest, "{nobrace");     /* no closing brace: all hash */
	/* weak schemes refused unless allowed */
	errno = 0;
	assert_int_equal(hm_pw_verify("pw", "PLAIN", "pw", false), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(hm_pw_verify("pw", "PLAIN", "pw", true), 1);
	assert_int_equal(hm_pw_verify("pX", "PLAIN", "pw", true), 0);
	assert_int_equal(hm_pw_verify("pw", "", "$1$3ckqYArl$R/urGGJ6QU/l4E/jX2iJ2.", false), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(hm_pw_verify("pw", "", "$1$3ckqYArl$R/urGGJ6QU/l4E/jX2iJ2.", true), 1);
	assert_int_equal(hm_pw_verify("pw", "", "M.E2AM.QNch5s", false), -1);
	assert_int_equal(hm_pw_verify("pw", "", "M.E2AM.QNch5s", true), 1);
	assert_int_equal(hm_pw_verify("pw", "SSHA", "abcd", true), -1);
	assert_int_equal(errno, ENOTSUP);
	/* no-login markers never match */
	assert_int_equal(hm_pw_verify("", "", "!", true), 0);
	assert_int_equal(hm_pw_verify("*", "", "*", true), 0);
	/* huge passwords never match, and hashing refuses them */
	char *big = malloc(5000);
	memset(big, 'p', 4999);
	big[4999] = '\0';
	assert_int_equal(hm_pw_verify(big, "", H_SHA512, false), 0);
	assert_int_equal(hm_pw_hash(big, HM_PW_YESCRYPT, h, sizeof(h)), -1);
	free(big);
	assert_int_equal(hm_pw_hash("x", HM_PW_MD5_CRYPT, h, sizeof(h)), -1);
	assert_int_equal(hm_pw_scheme_by_name("bcrypt"), HM_PW_BCRYPT);
	assert_int_equal(hm_pw_scheme_by_name("md5"), HM_PW_UNKNOWN);
}

static int add_user(struct hm_users *db, void *ctx)
{
	struct hm_user u = {
		.address = ctx, .hash = H_SHA512, .uid = 5000, .gid = 5000,
		.home = "/var/vmail/new", .quota = "1G",
	};
	return hm_users_add(db, &u) < 0 ? -1 : 1;
}

static int set_hash(struct hm_users *db, void *ctx)
{
	return hm_users_set_hash(db, "new@x.org", ctx) < 0 ? -1 : 1;
}

static int noop(struct hm_users *db, void *ctx)
{
	return 0;
}

static void modify_atomic(void **state)
{
	char path[128], h[HM_PW_HASH_SIZE];
	FILE *f;
	struct hm_users *db;
	struct stat st;

	snprintf(path, sizeof(path), "%s/users", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# keep me\nbroken line\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(hm_users_modify(path, add_user, "new@x.org", NULL, NULL), 1);
	errno = 0;
	assert_int_equal(hm_users_modify(path, add_user, "new@x.org", NULL, NULL), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(hm_users_modify(path, noop, NULL, NULL, NULL), 0);
	assert_int_equal(hm_pw_hash("pw2", HM_PW_YESCRYPT, h, sizeof(h)), 0);
	assert_int_equal(hm_users_modify(path, set_hash, h, NULL, NULL), 1);
	assert_int_equal(hm_users_modify(path, set_hash, "bad:hash", NULL, NULL), -1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(hm_users_load(path, NULL, NULL, &db), 0);
	assert_int_equal(hm_users_count(db), 1);
	assert_int_equal(hm_users_malformed(db), 1);
	assert_string_equal(hm_users_at(db, 0)->hash, h);
	assert_int_equal(hm_users_at(db, 0)->line, 3);
	assert_int_equal(hm_pw_verify("pw2", "", hm_users_at(db, 0)->hash, false), 1);
	size_t len;
	char *img = hm_users_serialize(db, &len);
	assert_true(strncmp(img, "# keep me\nbroken line\nnew@x.org:", 32) == 0);
	free(img);
	assert_int_equal(hm_users_remove(db, "new@x.org"), 0);
	assert_int_equal(hm_users_remove(db, "new@x.org"), -1);
	assert_int_equal(hm_users_count(db), 0);
	hm_users_free(&db);
	/* symlinks are not followed */
	char link[160];
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(hm_users_load(link, NULL, NULL, &db), -1);
	assert_int_equal(errno, ELOOP);
}

static int add_numbered(struct hm_users *db, void *ctx)
{
	char addr[64], home[64];
	struct hm_user u = {
		.address = addr, .hash = H_SHA512, .uid = 5000, .gid = 5000,
		.home = home,   /* one home per account: a shared one is refused */
	};
	snprintf(addr, sizeof(addr), "u%d@x.org", *(int *)ctx);
	snprintf(home, sizeof(home), "/var/vmail/n/u%d", *(int *)ctx);
	return hm_users_add(db, &u) < 0 ? -1 : 1;
}

static void concurrent_writers(void **state)
{
	char path[128];
	struct hm_users *db;
	enum { PROCS = 6, EACH = 15 };

	snprintf(path, sizeof(path), "%s/conc", tmpdir);
	for (int p = 0; p < PROCS; p++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			for (int i = 0; i < EACH; i++) {
				int n = p * 100 + i;
				if (hm_users_modify(path, add_numbered, &n, NULL, NULL) != 1)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int stt;
		assert_true(wait(&stt) > 0);
		assert_true(WIFEXITED(stt) && WEXITSTATUS(stt) == 0);
	}
	assert_int_equal(hm_users_load(path, NULL, NULL, &db), 0);
	assert_int_equal(hm_users_count(db), PROCS * EACH);
	assert_int_equal(hm_users_malformed(db), 0);
	hm_users_free(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_good_and_bad_lines),
		cmocka_unit_test(hostile_bytes),
		cmocka_unit_test(address_rules),
		cmocka_unit_test(pw_schemes),
		cmocka_unit_test(modify_atomic),
		cmocka_unit_test(concurrent_writers),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
