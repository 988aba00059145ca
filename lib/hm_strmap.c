/* hm_strmap.c — string-keyed open-addressing hash map (see hm_strmap.h).
 *
 * Relies on: libc only.  Fails only on allocation (ENOMEM); a full table is
 * grown before it passes half load, so a probe always ends at an empty slot.
 */
#include "hm_strmap.h"
#include "hm_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void hm_strmap_init(struct hm_strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void hm_strmap_free(struct hm_strmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* find_slot - the slot holding key, or the empty slot where it would go */
static struct hm_strmap_slot *find_slot(const struct hm_strmap *m, const char *key,
					size_t len, uint64_t hash)
{
	size_t mask = m->cap - 1, i = (size_t)hash & mask;

	for (;; i = (i + 1) & mask) {
		struct hm_strmap_slot *s = &m->slots[i];
		if (s->key == NULL ||
		    (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0))
			return s;
	}
}

/* grow - double the table (or make the first one) and re-insert */
static int grow(struct hm_strmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64, sz;
	struct hm_strmap old = *m;

	if (ncap < m->cap || !hm_mul_ok(ncap, sizeof(*m->slots), &sz))
		return errno = ENOMEM, -1;
	m->slots = calloc(1, sz);
	if (m->slots == NULL) {
		*m = old;
		return -1;
	}
	m->cap = ncap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key != NULL)
			*find_slot(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash) = old.slots[i];
	free(old.slots);
	return 0;
}

void *hm_strmap_get(const struct hm_strmap *m, const char *key, size_t len, uint64_t hash)
{
	struct hm_strmap_slot *s;

	if (m->cap == 0)
		return NULL;
	s = find_slot(m, key, len, hash);
	return s->key != NULL ? s->data : NULL;
}

int hm_strmap_put(struct hm_strmap *m, const char *key, size_t len, uint64_t hash,
		  void *data, void **old_r)
{
	struct hm_strmap_slot *s;

	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return -1;
	s = find_slot(m, key, len, hash);
	if (s->key != NULL) {
		if (old_r != NULL)
			*old_r = s->data;
		return 0;
	}
	s->key = key;
	s->len = len;
	s->hash = hash;
	s->data = data;
	m->n++;
	return 1;
}

void *hm_strmap_get_str(const struct hm_strmap *m, const char *key)
{
	size_t n = strlen(key);

	return hm_strmap_get(m, key, n, hm_strmap_hash(HM_STRMAP_SEED, key, n));
}

int hm_strmap_put_str(struct hm_strmap *m, const char *key, void *data, void **old_r)
{
	size_t n = strlen(key);

	return hm_strmap_put(m, key, n, hm_strmap_hash(HM_STRMAP_SEED, key, n), data, old_r);
}
