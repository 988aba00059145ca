/* hm_testutil.h — small helpers shared by the C unit tests (not part of lib/).
 *
 * hm_test_rmtree removes a test's scratch tree without a shell (the tests
 * used system("rm -rf ..."), which clang-tidy's cert-env33-c rightly flags)
 * and without following symlinks: nftw with FTW_PHYS, children first.
 * Relies on: nftw (the including file defines _GNU_SOURCE before any
 * system header).  Fails with -1 and errno when something cannot be removed.
 * hm_test_put_bytes copies text into a length-delimited test buffer.
 */
#ifndef HM_TESTUTIL_H
#define HM_TESTUTIL_H
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>

/* hm_test_rm_one - nftw callback: remove one entry (file, link or empty dir) */
static inline int hm_test_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p) == 0 || errno == ENOENT ? 0 : -1;
}

/* hm_test_rmtree - remove path and all below it; 0 also when it did not exist */
static inline int hm_test_rmtree(const char *path)
{
	if (nftw(path, hm_test_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0)
		return 0;
	return errno == ENOENT ? 0 : -1;
}

/* hm_test_put_bytes - copy n bytes of text into a length-delimited test
 * buffer, deliberately without a NUL (the parsers under test take a
 * length; a memcpy of a literal without its NUL is what clang-tidy's
 * bugprone-not-null-terminated-result flags at the call) */
static inline void hm_test_put_bytes(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, n);
}

#endif
