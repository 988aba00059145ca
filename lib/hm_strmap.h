/* hm_strmap.h — a small string-keyed hash map for the homemail tables.
 *
 * What for: O(1) lookups of addresses, domains and home paths in the users,
 * domains and aliases tables, so a RCPT check or a parse costs the same per
 * entry with 10 or 10,000 entries (bench/vdomains), and duplicate checks at
 * parse time are linear, not quadratic.
 * Keys are (pointer, length) byte strings that the caller keeps alive as
 * long as the map (usually pointers into the parsed table); they are
 * compared with memcmp and hashed with FNV-1a (hm_strmap_hash; a caller may
 * pass a hash it computed incrementally, e.g. for every prefix of a path).
 * Data pointers must not be NULL (NULL means "absent").
 * Open addressing with linear probing, grown by doubling before half load;
 * sizes are overflow-checked.  No deletion (tables are rebuilt after edits).
 * Returns: 0 ok, -1 and errno set (ENOMEM), unless stated otherwise.
 */
#ifndef HM_STRMAP_H
#define HM_STRMAP_H
#include <stddef.h>
#include <stdint.h>

struct hm_strmap_slot {
	const char *key;        /* NULL = empty */
	size_t len;
	uint64_t hash;
	void *data;
};

struct hm_strmap {
	struct hm_strmap_slot *slots;
	size_t cap, n;          /* cap: 0 or a power of two */
};

/* hm_strmap_hash - FNV-1a of len bytes, continuing from h (start with
 * HM_STRMAP_SEED) */
#define HM_STRMAP_SEED 0xcbf29ce484222325ULL
static inline uint64_t hm_strmap_hash(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void hm_strmap_init(struct hm_strmap *m);
void hm_strmap_free(struct hm_strmap *m);
/* hm_strmap_get - data of key, or NULL when absent */
void *hm_strmap_get(const struct hm_strmap *m, const char *key, size_t len, uint64_t hash);
/* hm_strmap_put - insert key unless present.  Returns 1 inserted, 0 already
 * there (*old_r gets its data when old_r != NULL), -1 ENOMEM. */
int hm_strmap_put(struct hm_strmap *m, const char *key, size_t len, uint64_t hash,
		  void *data, void **old_r);
/* hm_strmap_get_str / hm_strmap_put_str - the same for NUL-terminated keys */
void *hm_strmap_get_str(const struct hm_strmap *m, const char *key);
int hm_strmap_put_str(struct hm_strmap *m, const char *key, void *data, void **old_r);

#endif
