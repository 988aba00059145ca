/* hm_arena.c — bump allocator (see hm_arena.h).
 *
 * Relies on: malloc/free only.  How it fails: NULL with errno (ENOMEM,
 * EMSGSIZE past the arena's max, EOVERFLOW for sizes that overflow); the
 * arena stays usable and everything allocated so far stays valid.
 */
#include "hm_arena.h"

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST (4u * 1024)
#define ARENA_BIGGEST (256u * 1024)
#define ARENA_ALIGN HM_ARENA_ALIGN

struct hm_arena_chunk {
	struct hm_arena_chunk *next;  /* older chunks */
	alignas(HM_ARENA_ALIGN) char data[];
};

void hm_arena_init(struct hm_arena *a, size_t max)
{
	a->head = NULL;
	a->next = a->end = NULL;
	a->total = 0;
	a->max = max;
	a->chunk_size = ARENA_FIRST;
}

/* new_chunk - a chunk with at least n bytes of space; for a big request a
 * chunk of its own, linked behind head so that head keeps filling */
static void *new_chunk(struct hm_arena *a, size_t n)
{
	size_t room = a->chunk_size;
	bool own = n > room / 4;
	if (own)
		room = n;
	size_t bytes = sizeof(struct hm_arena_chunk) + room;
	if (room > SIZE_MAX - sizeof(struct hm_arena_chunk)) {
		errno = EOVERFLOW;
		return NULL;
	}
	if (bytes > a->max || a->total > a->max - bytes) {
		errno = EMSGSIZE;
		return NULL;
	}
	struct hm_arena_chunk *c = malloc(bytes);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	a->total += bytes;
	if (own && a->head) {
		c->next = a->head->next;
		a->head->next = c;
		return c->data;
	}
	c->next = a->head;
	a->head = c;
	a->next = c->data + n;
	a->end = c->data + room;
	if (!own && a->chunk_size < ARENA_BIGGEST)
		a->chunk_size *= 2;
	return c->data;
}

void *hm_arena_alloc(struct hm_arena *a, size_t n)
{
	/* round up so that the next allocation stays aligned */
	size_t r = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (r < n) {
		errno = EOVERFLOW;
		return NULL;
	}
	if (r == 0)
		r = ARENA_ALIGN;
	/* next may be unaligned after hm_arena_bytes: skip to the boundary
	 * (pointer arithmetic only, no integer turned back into a pointer) */
	if (a->next) {
		size_t pad = (size_t)(-(uintptr_t)a->next & (ARENA_ALIGN - 1));
		size_t room = (size_t)(a->end - a->next);
		if (pad <= room && r <= room - pad) {
			char *p = a->next + pad;
			a->next = p + r;
			return p;
		}
	}
	return new_chunk(a, r);
}

void *hm_arena_array(struct hm_arena *a, size_t n, size_t sz)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, sz, &bytes)) {
		errno = EOVERFLOW;
		return NULL;
	}
	void *p = hm_arena_alloc(a, bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

void *hm_arena_memdup(struct hm_arena *a, const void *src, size_t n, size_t sz)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, sz, &bytes)) {
		errno = EOVERFLOW;
		return NULL;
	}
	void *p = hm_arena_alloc(a, bytes);
	if (p && bytes)
		memcpy(p, src, bytes);
	return p;
}

char *hm_arena_bytes(struct hm_arena *a, size_t n)
{
	if (a->next && n <= (size_t)(a->end - a->next)) {
		char *p = a->next;
		a->next += n;
		return p;
	}
	/* a fresh chunk (or one of its own): aligned, fine for bytes */
	return new_chunk(a, n ? n : 1);
}

char *hm_arena_strndup(struct hm_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX) {
		errno = EOVERFLOW;
		return NULL;
	}
	char *p = hm_arena_bytes(a, n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void hm_arena_free(struct hm_arena *a)
{
	struct hm_arena_chunk *c = a->head;
	while (c) {
		struct hm_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	hm_arena_init(a, a->max);
}
