/* hm_lines.h — the line model shared by the /etc/homemail tables (users,
 * domains, aliases).
 *
 * What for: one implementation of what the three tables do alike, so that
 * lib/hm_users, lib/hm_domains and lib/hm_aliases keep only their own
 * grammar (a struct hm_lines_ops): every line of the file kept verbatim and
 * in order with the entry parsed from it (NULL for comments and malformed
 * lines), so a rewrite changes only the lines edited; the valid entries in
 * file order and an index by key; the checks made before any grammar (line
 * length, NUL bytes, one CR before the LF tolerated); counting and reporting
 * malformed lines; serialising byte for byte; and the lock, load, edit,
 * write cycle on top of hm_table.
 * Relies on: hm_table (bounded read, atomic rewrite, lock), hm_strmap (the
 * index), hm_buf (bounded serialising).
 * How it fails: a malformed line is counted, reported through the warn
 * callback with its number and kept verbatim, never fatal; anything else
 * (memory, I/O) returns -1 with errno set.
 * Bounds: ops->max_line bytes per line (checked before the grammar sees
 * it), ops->max_file bytes per file read or written.
 * Returns: 0 ok, -1 and errno set, unless stated otherwise.
 */
#ifndef HM_LINES_H
#define HM_LINES_H
#include <stddef.h>
#include <sys/types.h>

#include "hm_strmap.h"

/* the longest key hm_lines_find looks up (ops->max_key may not exceed it) */
#define HM_LINES_MAX_KEY 255

/* warn callback: one call per malformed line (msg has no newline); the same
 * type as hm_users_warn_fn */
typedef void hm_lines_warn_fn(void *ctx, const char *path, unsigned int line,
			      const char *msg);

/* What a table says about its own format. */
struct hm_lines_ops {
	const char *unnamed;    /* path in warnings when the caller gives none */
	size_t max_line;        /* bytes per line (LF excluded); longer: malformed */
	size_t max_file;        /* bytes per file, read (EFBIG) or serialised */
	size_t max_key;         /* longest key worth looking up, <= HM_LINES_MAX_KEY */
	mode_t new_mode;        /* of a file hm_lines_end creates */
	/* line_at - where an entry keeps its line number (an unsigned int):
	 * offsetof(struct entry, line) */
	size_t line_at;
	/* dup_why - when not NULL, an entry whose key an earlier line holds
	 * is malformed with this reason (the first one wins) */
	const char *dup_why;
	/* parse_begin / parse_end - optional state for parse over one file
	 * (NULL from parse_begin: ENOMEM) */
	void *(*parse_begin)(void);
	void (*parse_end)(void *pstate);
	/* parse - one line: a writable, NUL-free copy of len bytes (a CR
	 * before the LF removed), wiped after the call.  Sets *entry_r to the
	 * entry, or leaves it NULL: a comment, or a malformed line when *why_r
	 * is set.  Returns 0, or -1 with errno set to abandon the whole parse. */
	int (*parse)(void *pstate, char *line, size_t len, void **entry_r,
		     const char **why_r);
	/* key - the entry's index key (lower-case, NUL-terminated) */
	const char *(*key)(const void *entry);
	void (*entry_free)(void *entry);
};

struct hm_lines_line {
	char *text;             /* verbatim (may hold NULs when malformed) */
	size_t len;
	void *entry;            /* NULL for comments and malformed lines */
};

struct hm_lines {
	const struct hm_lines_ops *ops;
	struct hm_lines_line *lines;
	size_t nlines, cap;
	void **entries;         /* the valid entries in file order */
	size_t nentries;
	unsigned int malformed;
	/* key -> entry: O(1) lookups, so a RCPT check costs the same with 10
	 * or 10,000 entries (keys point into the entries) */
	struct hm_strmap idx;
};

/* hm_lines_init - an empty table of this format */
void hm_lines_init(struct hm_lines *t, const struct hm_lines_ops *ops);
/* hm_lines_clear - free every line and entry; t is empty again */
void hm_lines_clear(struct hm_lines *t);

/* hm_lines_parse - append the lines of a file image (may contain NULs:
 * such lines are malformed); path is used only in warnings.  Never fails
 * on bad lines.  On -1, t holds what was parsed so far (free it). */
int hm_lines_parse(struct hm_lines *t, const char *data, size_t len, const char *path,
		   hm_lines_warn_fn *warn, void *ctx);
/* hm_lines_load - read path (hm_table_read, at most ops->max_file bytes)
 * and parse it; missing file: -1 ENOENT with t untouched */
int hm_lines_load(struct hm_lines *t, const char *path, hm_lines_warn_fn *warn, void *ctx);

/* hm_lines_begin / hm_lines_end - the edit cycle of the *_modify functions:
 * begin locks "<path>.lock" and loads path into the empty t (a missing file
 * leaves t empty) and returns the lock's fd, or -1; end takes the result
 * ret of the edit (1: write t atomically, same owner and mode as the old
 * file, ops->new_mode for a new one; 0: leave the file; -1: failed, errno
 * kept), releases the lock and returns ret, or -1 when writing failed. */
int hm_lines_begin(struct hm_lines *t, const char *path, hm_lines_warn_fn *warn, void *ctx);
int hm_lines_end(struct hm_lines *t, const char *path, int lfd, int ret);

/* hm_lines_find - the entry under key (compared lower-cased), or NULL */
void *hm_lines_find(const struct hm_lines *t, const char *key);
/* hm_lines_index - the line holding entry, or SIZE_MAX */
size_t hm_lines_index(const struct hm_lines *t, const void *entry);
size_t hm_lines_count(const struct hm_lines *t);
/* hm_lines_at - the i-th valid entry in file order, NULL past the end */
void *hm_lines_at(const struct hm_lines *t, size_t i);
unsigned int hm_lines_malformed(const struct hm_lines *t);

/* Edits.  Each takes text (the line, malloc'd, no LF) and entry, also when
 * it fails: they are then freed or left in the table; each then rebuilds
 * the entries and the index. */
/* hm_lines_append - a new last line; text NULL: fails at once (errno as
 * the caller's formatter left it), entry freed */
int hm_lines_append(struct hm_lines *t, char *text, size_t len, void *entry);
/* hm_lines_set - replace line i (its old entry freed unless it is entry);
 * text NULL: as hm_lines_append */
int hm_lines_set(struct hm_lines *t, size_t i, char *text, size_t len, void *entry);
/* hm_lines_drop - remove line i */
int hm_lines_drop(struct hm_lines *t, size_t i);
/* hm_lines_remove - remove the line of the entry under key; ENOENT */
int hm_lines_remove(struct hm_lines *t, const char *key);

/* hm_lines_serialize - the file image: every line and its LF, in order
 * (malloc'd, NUL-terminated; "" for no lines); NULL with errno set */
char *hm_lines_serialize(const struct hm_lines *t, size_t *len_r);

/* HM_LINES_TABLE - the functions every table offers, typed for it: name is
 * the table's prefix and opaque struct (defined here as its struct hm_lines),
 * entry the struct of one parsed line, ops its struct hm_lines_ops (declared
 * before).  It defines, as declared and described in the table's header:
 *   name_empty, name_free, name_parse, name_load, name_find, name_count,
 *   name_at, name_malformed, name_serialize, name_modify.
 * A macro, as <sys/tree.h>'s RB_GENERATE, so the three tables do not each
 * carry the same ten wrappers. */
#define HM_LINES_TABLE(name, entry, ops)                                        \
struct name {                                                                   \
	struct hm_lines t;      /* entries: struct entry */                     \
};                                                                              \
struct name *name##_empty(void)                                                 \
{                                                                               \
	struct name *db = calloc(1, sizeof(*db));                               \
	if (db != NULL)                                                         \
		hm_lines_init(&db->t, &ops);                                    \
	return db;                                                              \
}                                                                               \
void name##_free(struct name **dbp)                                             \
{                                                                               \
	if (*dbp == NULL)                                                       \
		return;                                                         \
	hm_lines_clear(&(*dbp)->t);                                             \
	free(*dbp);                                                             \
	*dbp = NULL;                                                            \
}                                                                               \
int name##_parse(const char *data, size_t len, const char *path,                \
		 hm_lines_warn_fn *warn, void *ctx, struct name **db_r)         \
{                                                                               \
	struct name *db = name##_empty();                                       \
	if (db == NULL || hm_lines_parse(&db->t, data, len, path, warn, ctx) < 0) { \
		name##_free(&db);                                               \
		return -1;                                                      \
	}                                                                       \
	*db_r = db;                                                             \
	return 0;                                                               \
}                                                                               \
int name##_load(const char *path, hm_lines_warn_fn *warn, void *ctx,            \
		struct name **db_r)                                             \
{                                                                               \
	struct name *db = name##_empty();                                       \
	if (db == NULL || hm_lines_load(&db->t, path, warn, ctx) < 0) {         \
		name##_free(&db);                                               \
		return -1;                                                      \
	}                                                                       \
	*db_r = db;                                                             \
	return 0;                                                               \
}                                                                               \
const struct entry *name##_find(const struct name *db, const char *key)         \
{                                                                               \
	return db != NULL ? hm_lines_find(&db->t, key) : NULL;                  \
}                                                                               \
size_t name##_count(const struct name *db)                                      \
{                                                                               \
	return hm_lines_count(&db->t);                                          \
}                                                                               \
const struct entry *name##_at(const struct name *db, size_t i)                  \
{                                                                               \
	return hm_lines_at(&db->t, i);                                          \
}                                                                               \
unsigned int name##_malformed(const struct name *db)                            \
{                                                                               \
	return hm_lines_malformed(&db->t);                                      \
}                                                                               \
char *name##_serialize(const struct name *db, size_t *len_r)                    \
{                                                                               \
	return hm_lines_serialize(&db->t, len_r);                               \
}                                                                               \
int name##_modify(const char *path, name##_edit_fn *fn, void *ctx,              \
		  hm_lines_warn_fn *warn, void *wctx)                           \
{                                                                               \
	struct name *db = name##_empty();                                       \
	int lfd, ret;                                                           \
	if (db == NULL)                                                         \
		return -1;                                                      \
	lfd = hm_lines_begin(&db->t, path, warn, wctx);                         \
	ret = lfd < 0 ? -1 : hm_lines_end(&db->t, path, lfd, fn(db, ctx));      \
	name##_free(&db);                                                       \
	return ret;                                                             \
}                                                                               \
struct name  /* the invocation's ';' ends this declaration */

#endif
