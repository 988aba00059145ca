/* scan_archive.c — member names of an archive held in memory, through
 * libarchive (Debian's libarchive13).  A zip is read twice: once by the
 * central directory (what Windows Explorer and 7-Zip show) and once by the
 * local file headers in stream order (what streaming unzippers extract); a
 * zip whose two views differ gets both sets of names checked.  7z and RAR
 * (4 and 5) archives, common malware carriers, are listed once (their names
 * are visible unless the headers themselves are encrypted).  Members that
 * are themselves archives are listed too, up to c->archive_depth levels,
 * within one decompression budget of c->max_archive_size per message part.
 * libarchive is loaded with dlopen() on the first archive, not linked: it
 * drags in libxml2, ICU and libstdc++, ~50 ms of dynamic loading that every
 * Exim receiving process (one per SMTP connection) would otherwise pay.
 *
 * Relies on: libarchive.so.13 (Debian's libarchive13).  Fails: 1 for an
 * unreadable archive (the caller decides whether that is a verdict), 3 when
 * libarchive cannot be loaded, -1 ENOMEM.  Never writes to disk.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

typedef int name_fn(void *ctx, const char *name, size_t len);

/* the libarchive functions used, resolved once per process */
struct la {
	struct archive *(*read_new)(void);
	int (*zip_seekable)(struct archive *);
	int (*zip_streamable)(struct archive *);
	int (*sevenzip)(struct archive *);
	int (*rar)(struct archive *);
	int (*rar5)(struct archive *);
	int (*open_memory)(struct archive *, const void *, size_t);
	int (*next_header)(struct archive *, struct archive_entry **);
	la_ssize_t (*read_data)(struct archive *, void *, size_t);
	int (*read_free)(struct archive *);
	const char *(*pathname_utf8)(struct archive_entry *);
	const char *(*pathname)(struct archive_entry *);
	la_int64_t (*size)(struct archive_entry *);
};

/* la_get - the loaded library, or NULL when it cannot be loaded (a handle
 * cache, not a result buffer: it lives as long as the process) */
static const struct la *la_get(void)
{
	static struct la la;
	static int state; /* 0 untried, 1 ok, -1 failed */
	if (state)
		return state > 0 ? &la : NULL;
	state = -1;
	void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return NULL;
#define SYM(field, name)                                        \
	do {                                                    \
		*(void **)(&la.field) = dlsym(h, name);         \
		if (!la.field)                                  \
			return NULL;                            \
	} while (0)
	SYM(read_new, "archive_read_new");
	SYM(zip_seekable, "archive_read_support_format_zip_seekable");
	SYM(zip_streamable, "archive_read_support_format_zip_streamable");
	SYM(sevenzip, "archive_read_support_format_7zip");
	SYM(rar, "archive_read_support_format_rar");
	SYM(rar5, "archive_read_support_format_rar5");
	SYM(open_memory, "archive_read_open_memory");
	SYM(next_header, "archive_read_next_header");
	SYM(read_data, "archive_read_data");
	SYM(read_free, "archive_read_free");
	SYM(pathname_utf8, "archive_entry_pathname_utf8");
	SYM(pathname, "archive_entry_pathname");
	SYM(size, "archive_entry_size");
#undef SYM
	state = 1;
	return &la;
}

/* one listing job: the library, the policy, the callback and the budgets
 * that keep a crafted archive from costing unbounded CPU (zip bombs: many
 * nested members, each decompressed) */
struct job {
	const struct la *la;
	const struct scan_conf *c;
	name_fn *fn;
	void *ctx;
	size_t inflate_left;   /* bytes of nested archives decompressed, all levels */
	size_t entries_left;   /* member headers read, all levels and both views */
};

#define ENTRIES_MAX 20000

enum view { V_ZIP_CENTRAL, V_ZIP_STREAM, V_OTHER };

static int list_one(struct job *j, const void *data, size_t len, unsigned depth, enum view v);

enum kind { K_NONE, K_ZIP, K_7Z, K_RAR };

/* kind_of - archive type by magic number (names and Content-Types lie) */
static enum kind kind_of(const void *data, size_t len)
{
	if (len >= 4 && memcmp(data, "PK\x03\x04", 4) == 0)
		return K_ZIP;
	if (len >= 6 && memcmp(data, "7z\xbc\xaf\x27\x1c", 6) == 0)
		return K_7Z;
	if (len >= 7 && memcmp(data, "Rar!\x1a\x07", 6) == 0 && (((const char *)data)[6] == 0 ||
								 ((const char *)data)[6] == 1))
		return K_RAR;
	return K_NONE;
}

/* list_all - every view of one archive: 0 listed, 1 unreadable, else as fn/ENOMEM */
static int list_all(struct job *j, const void *data, size_t len, unsigned depth)
{
	switch (kind_of(data, len)) {
	case K_ZIP: {
		int r1 = list_one(j, data, len, depth, V_ZIP_CENTRAL);
		if (r1 < 0 || r1 > 1)
			return r1;
		int r2 = list_one(j, data, len, depth, V_ZIP_STREAM);
		if (r2 < 0 || r2 > 1)
			return r2;
		return (r1 == 1 && r2 == 1) ? 1 : 0;
	}
	case K_7Z:
	case K_RAR:
		return list_one(j, data, len, depth, V_OTHER);
	default:
		return 1;
	}
}

static bool archive_name(const char *name, size_t nl)
{
	static const char *const ext[] = {".zip", ".7z", ".rar"};
	for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
		size_t el = strlen(ext[i]);
		if (nl >= el && strcasecmp(name + nl - el, ext[i]) == 0)
			return true;
	}
	return false;
}

/* nested - read a member that is itself a zip and list it one level deeper */
static int nested(struct job *j, struct archive *a, int64_t size, unsigned depth)
{
	if (size <= 0 || (uint64_t)size > j->c->max_archive_size || (uint64_t)size > j->inflate_left)
		return 0;
	j->inflate_left -= (size_t)size;
	char *buf = malloc((size_t)size);
	if (!buf)
		return -1;
	la_ssize_t got = j->la->read_data(a, buf, (size_t)size);
	int rc = 0;
	if (got > 0) {
		rc = list_all(j, buf, (size_t)got, depth + 1);
		if (rc == 1)
			rc = 0; /* an unreadable inner archive: the outer name was checked */
	}
	free(buf);
	return rc;
}

/* list_one - one view (central directory or local headers) of one archive */
static int list_one(struct job *j, const void *data, size_t len, unsigned depth, enum view v)
{
	const struct la *la = j->la;
	struct archive *a = la->read_new();
	if (!a)
		return -1;
	if (v == V_ZIP_CENTRAL) {
		la->zip_seekable(a);
	} else if (v == V_ZIP_STREAM) {
		la->zip_streamable(a);
	} else {
		la->sevenzip(a);
		la->rar(a);
		la->rar5(a);
	}
	if (la->open_memory(a, data, len) != ARCHIVE_OK) {
		la->read_free(a);
		return 1;
	}
	int rc = 0;
	for (;;) {
		struct archive_entry *e;
		int r = la->next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = 1;
			break;
		}
		if (j->entries_left == 0) {
			rc = 1; /* too many members to list: unscannable */
			break;
		}
		j->entries_left--;
		const char *name = la->pathname_utf8(e);
		if (!name)
			name = la->pathname(e);
		if (name) {
			size_t nl = strlen(name);
			rc = j->fn(j->ctx, name, nl);
			if (rc)
				break;
			if (depth < j->c->archive_depth && archive_name(name, nl)) {
				rc = nested(j, a, la->size(e), depth);
				if (rc)
					break;
			}
		}
	}
	la->read_free(a);
	return rc;
}

int scan_archive_names(const struct scan_conf *c, const void *data, size_t len, name_fn *fn,
		       void *ctx)
{
	if (kind_of(data, len) == K_NONE)
		return 1;
	struct job j = {.la = la_get(), .c = c, .fn = fn, .ctx = ctx,
			.inflate_left = c->max_archive_size, .entries_left = ENTRIES_MAX};
	if (!j.la)
		return 3;
	return list_all(&j, data, len, 1);
}

bool scan_archive_magic(const void *data, size_t len)
{
	return kind_of(data, len) != K_NONE;
}
