/* hm_arena.h — bump allocator for data that all dies at once.
 *
 * NAME
 *   hm_arena - many small allocations, one free
 *
 * SYNOPSIS
 *   struct hm_arena a;
 *   hm_arena_init(&a, max_bytes);
 *   struct x *v = hm_arena_alloc(&a, n * sizeof *v);   // or hm_arena_array
 *   char *s = hm_arena_strndup(&a, text, len);
 *   hm_arena_free(&a);                                  // everything at once
 *
 * DESCRIPTION
 *   For structures built once and freed together (a compiled Sieve script:
 *   thousands of nodes, arguments and strings).  Memory comes from malloc'd
 *   chunks that double in size (4 KB up to 256 KB; a request bigger than a
 *   quarter of the chunk size gets a chunk of its own), so a structure of N
 *   bytes costs O(log N) mallocs and one pass of free()s, and its pieces sit
 *   next to each other (fewer pages touched than separate mallocs).
 *   Allocations are aligned to HM_ARENA_ALIGN (8: pointers, 64-bit
 *   integers, doubles; not long double or over-aligned types, which would
 *   waste half of every 16-byte step on small structures), except
 *   hm_arena_bytes' and hm_arena_strndup's, which are byte-aligned.  Memory is not zeroed
 *   unless hm_arena_calloc / hm_arena_array say so.
 *
 *   Bounded: the total of all chunks never exceeds the max given at init;
 *   an allocation that would pass it fails with EMSGSIZE.
 *
 * RETURNS
 *   Allocators return NULL and set errno (ENOMEM, EMSGSIZE, EOVERFLOW for a
 *   size that overflows) on failure; a zero-byte request returns a valid,
 *   unique pointer.  Nothing is static: safe in Exim's and Dovecot's
 *   processes, one arena per thread of use.
 */
#ifndef HM_ARENA_H
#define HM_ARENA_H
#include <stddef.h>

struct hm_arena_chunk;

#define HM_ARENA_ALIGN 8

struct hm_arena {
	struct hm_arena_chunk *head;  /* chunk being filled (newest) */
	char *next, *end;             /* free space of head */
	size_t total;                 /* bytes of all chunks */
	size_t max;                   /* hard limit on total */
	size_t chunk_size;            /* size of the next ordinary chunk */
};

void hm_arena_init(struct hm_arena *a, size_t max);
/* hm_arena_alloc - n bytes aligned to HM_ARENA_ALIGN, uninitialised */
void *hm_arena_alloc(struct hm_arena *a, size_t n);
/* hm_arena_array - zeroed array of n elements of size sz (overflow checked) */
void *hm_arena_array(struct hm_arena *a, size_t n, size_t sz);
/* hm_arena_memdup - copy of p[0..n) (n * sz bytes), aligned to HM_ARENA_ALIGN */
void *hm_arena_memdup(struct hm_arena *a, const void *p, size_t n, size_t sz);
/* hm_arena_bytes - n bytes, byte-aligned, uninitialised (for text) */
char *hm_arena_bytes(struct hm_arena *a, size_t n);
/* hm_arena_strndup - s[0..n) plus a NUL, byte-aligned (s may contain NULs) */
char *hm_arena_strndup(struct hm_arena *a, const char *s, size_t n);
/* hm_arena_free - release every chunk; the arena may be used again after */
void hm_arena_free(struct hm_arena *a);

#endif
