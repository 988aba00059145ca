/* test_arena.c — unit tests for lib/hm_arena: alignment after byte-sized
 * allocations, the hard max (EMSGSIZE, and the arena still usable after),
 * big requests in chunks of their own without breaking the chunk being
 * filled, zeroed and overflow-checked arrays, free and reuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "hm_arena.h"

static void aligned_and_distinct(void **state)
{
	struct hm_arena a;
	hm_arena_init(&a, 1 << 20);
	char *prev = NULL;
	for (int i = 0; i < 1000; i++) {
		char *s = hm_arena_strndup(&a, "abcdefgh", (size_t)(i % 5));
		assert_non_null(s);
		assert_int_equal(strlen(s), (size_t)(i % 5));
		uint64_t *v = hm_arena_alloc(&a, sizeof *v * (size_t)(1 + i % 3));
		assert_non_null(v);
		assert_int_equal((uintptr_t)v % HM_ARENA_ALIGN, 0);
		*v = (uint64_t)i;         /* UBSan: misaligned store if wrong */
		assert_true((char *)v != prev);
		prev = (char *)v;
	}
	void *z1 = hm_arena_alloc(&a, 0), *z2 = hm_arena_alloc(&a, 0);
	assert_non_null(z1);
	assert_true(z1 != z2);
	hm_arena_free(&a);
	assert_int_equal(a.total, 0);
}

static void max_is_hard(void **state)
{
	struct hm_arena a;
	hm_arena_init(&a, 64 * 1024);
	size_t got = 0;
	for (;;) {
		void *p = hm_arena_alloc(&a, 1000);
		if (!p) {
			assert_int_equal(errno, EMSGSIZE);
			break;
		}
		memset(p, 0xAB, 1000);
		got += 1000;
		assert_true(got < 64 * 1024);
	}
	assert_true(a.total <= 64 * 1024);
	assert_true(got > 32 * 1024);    /* the chunks are mostly used */
	errno = 0;
	assert_null(hm_arena_alloc(&a, 1 << 20));
	assert_int_equal(errno, EMSGSIZE);
	/* a failed request leaves the arena usable for one that fits */
	assert_non_null(hm_arena_strndup(&a, "x", 1));
	/* and a freed arena can be used again */
	hm_arena_free(&a);
	assert_non_null(hm_arena_strndup(&a, "x", 1));
	hm_arena_free(&a);
}

static void big_requests_own_chunk(void **state)
{
	struct hm_arena a;
	hm_arena_init(&a, 16 << 20);
	char *s1 = hm_arena_strndup(&a, "first", 5);
	char *big = hm_arena_alloc(&a, 1 << 20);
	assert_non_null(big);
	memset(big, 1, 1 << 20);
	char *s2 = hm_arena_strndup(&a, "second", 6);
	/* the small ones still share the first chunk, next to each other */
	assert_ptr_equal(s2, s1 + 6);
	assert_string_equal(s1, "first");
	assert_string_equal(s2, "second");
	hm_arena_free(&a);
}

static void arrays(void **state)
{
	struct hm_arena a;
	hm_arena_init(&a, 1 << 20);
	int *v = hm_arena_array(&a, 100, sizeof *v);
	assert_non_null(v);
	for (int i = 0; i < 100; i++)
		assert_int_equal(v[i], 0);
	errno = 0;
	assert_null(hm_arena_array(&a, SIZE_MAX / 2, 4));
	assert_int_equal(errno, EOVERFLOW);
	errno = 0;
	assert_null(hm_arena_alloc(&a, SIZE_MAX - 3));
	assert_int_equal(errno, EOVERFLOW);
	int src[3] = { 7, 8, 9 };
	int *d = hm_arena_memdup(&a, src, 3, sizeof *src);
	assert_memory_equal(d, src, sizeof src);
	hm_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aligned_and_distinct),
		cmocka_unit_test(max_is_hard),
		cmocka_unit_test(big_requests_own_chunk),
		cmocka_unit_test(arrays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
