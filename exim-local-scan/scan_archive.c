/* scan_archive.c — member names of an archive held in memory, through
 * libarchive (Debian's libarchive13).  A zip is read twice: once by the
 * central directory (what Windows Explorer and 7-Zip show) and once by the
 * local file headers in stream order (what streaming unzippers extract); a
 * zip whose two views differ gets both sets of names checked.  7z and RAR
 * (4 and 5) archives, common malware carriers, are listed once (their names
 * are visible unless the headers themselves are encrypted).  Members that
 * are themselves archives are listed too, up to c->archive_depth levels.
 *
 * Bounds (zip bombs, issue 14): every byte libarchive decompresses counts
 * against the message's struct scan_budget.  libarchive decompresses when a
 * member is read, and also when it skips a member it cannot seek past (a
 * streamed zip member whose length comes after its data, a member of a
 * solid 7z block once decoding started, a member of a solid RAR 5): those
 * members are read here instead, 64 KiB of output at a time, counted, and
 * never left to libarchive's skip (skip_inflates says which).  Members
 * skipped for free still count their declared size against a second bound
 * of the same size, so a 2 GB member listed by name only is unscannable
 * too.  The deadline is checked before every read and in the read callback
 * (16 KiB of input at a time).  Each view has its own member bound.  A
 * budget that runs out gives 4 (the caller's "unscannable"), never a pass.
 *
 * libarchive is loaded with dlopen() on the first archive, not linked: it
 * drags in libxml2, ICU and libstdc++, ~50 ms of dynamic loading that every
 * Exim receiving process (one per SMTP connection) would otherwise pay.
 *
 * Relies on: libarchive.so.13 (libarchive13), libzip.so.4 (libzip4).  Fails: 1 for an
 * unreadable archive, 3 when libarchive or libzip cannot be loaded, 4 when a budget
 * ran out (the caller decides the verdicts), -1 ENOMEM.  Never writes to disk.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <zip.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_buf.h"
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
	int (*set_callback_data)(struct archive *, void *);
	int (*set_read_callback)(struct archive *, archive_read_callback *);
	int (*set_seek_callback)(struct archive *, archive_seek_callback *);
	int (*set_skip_callback)(struct archive *, archive_skip_callback *);
	int (*open1)(struct archive *);
	int (*next_header)(struct archive *, struct archive_entry **);
	la_ssize_t (*read_data)(struct archive *, void *, size_t);
	int (*read_free)(struct archive *);
	const char *(*pathname_utf8)(struct archive_entry *);
	const char *(*pathname)(struct archive_entry *);
	la_int64_t (*header_position)(struct archive *);
	int (*format)(struct archive *);
	int (*size_is_set)(struct archive_entry *);
	la_int64_t (*size)(struct archive_entry *);
};

/* DL_SYM - dlsym(h, name) into the function pointer table.field; the loader
 * it stands in (la_get, lz_get) returns NULL when the symbol is missing */
#define DL_SYM(h, table, field, name)                           \
	do {                                                    \
		*(void **)(&(table).field) = dlsym(h, name);    \
		if (!(table).field)                             \
			return NULL;                            \
	} while (0)

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
#define SYM(field, name) DL_SYM(h, la, field, name)
	SYM(read_new, "archive_read_new");
	SYM(zip_seekable, "archive_read_support_format_zip_seekable");
	SYM(zip_streamable, "archive_read_support_format_zip_streamable");
	SYM(sevenzip, "archive_read_support_format_7zip");
	SYM(rar, "archive_read_support_format_rar");
	SYM(rar5, "archive_read_support_format_rar5");
	SYM(set_callback_data, "archive_read_set_callback_data");
	SYM(set_read_callback, "archive_read_set_read_callback");
	SYM(set_seek_callback, "archive_read_set_seek_callback");
	SYM(set_skip_callback, "archive_read_set_skip_callback");
	SYM(open1, "archive_read_open1");
	SYM(next_header, "archive_read_next_header");
	SYM(read_data, "archive_read_data");
	SYM(read_free, "archive_read_free");
	SYM(pathname_utf8, "archive_entry_pathname_utf8");
	SYM(pathname, "archive_entry_pathname");
	SYM(header_position, "archive_read_header_position");
	SYM(format, "archive_format");
	SYM(size_is_set, "archive_entry_size_is_set");
	SYM(size, "archive_entry_size");
#undef SYM
	state = 1;
	return &la;
}

/* the libzip functions used: the zip central directory's own names, which
 * libarchive never reports (its seekable view shows each local header's name
 * at the offset the directory gives), while Explorer shows exactly those */
struct lz {
	zip_source_t *(*source_buffer_create)(const void *, zip_uint64_t, int, zip_error_t *);
	void (*source_free)(zip_source_t *);
	zip_t *(*open_from_source)(zip_source_t *, int, zip_error_t *);
	zip_int64_t (*num_entries)(zip_t *, zip_flags_t);
	const char *(*get_name)(zip_t *, zip_uint64_t, zip_flags_t);
	void (*discard)(zip_t *);
	void (*error_init)(zip_error_t *);
	void (*error_fini)(zip_error_t *);
};

/* lz_get - libzip (libzip4) loaded once per process, or NULL */
static const struct lz *lz_get(void)
{
	static struct lz lz;
	static int state;
	if (state)
		return state > 0 ? &lz : NULL;
	state = -1;
	void *h = dlopen("libzip.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return NULL;
#define SYM(field, name) DL_SYM(h, lz, field, name)
	SYM(source_buffer_create, "zip_source_buffer_create");
	SYM(source_free, "zip_source_free");
	SYM(open_from_source, "zip_open_from_source");
	SYM(num_entries, "zip_get_num_entries");
	SYM(get_name, "zip_get_name");
	SYM(discard, "zip_discard");
	SYM(error_init, "zip_error_init");
	SYM(error_fini, "zip_error_fini");
#undef SYM
	state = 1;
	return &lz;
}

#define ENTRIES_MAX 20000      /* member headers per view of one top-level archive */
#define OUT_CHUNK (64 * 1024)  /* decompressed bytes per read between budget checks */
#define IN_BLOCK (16 * 1024)   /* archive bytes handed to libarchive per read callback */

enum view { V_ZIP_CDIR, V_ZIP_CENTRAL, V_ZIP_STREAM, V_OTHER, V_MAX };

/* how one walk over a view treats members (list_7z says why 7z needs two) */
enum pass {
	P_ONE,    /* names, nested archives read in place, skips counted */
	P_NAMES,  /* 7z first pass: names only, a nested archive just noted */
	P_READ,   /* 7z second pass: every member read in order, counted */
};

/* one listing job: the library, the policy, the callback and the budgets
 * that keep a crafted archive from costing unbounded CPU */
struct job {
	const struct la *la;
	const struct lz *lz;
	const struct scan_conf *c;
	name_fn *fn;
	void *ctx;
	struct scan_budget *b;         /* the message's: decompression and deadline */
	size_t entries_left[V_MAX];    /* member headers, per view, all levels */
	const char *partial;           /* set when some names could not be listed */
	char *scratch;                 /* OUT_CHUNK bytes for members read to be counted */
};

/* one archive in memory as libarchive's client: read, skip and seek */
struct src {
	const unsigned char *data;
	size_t len;
	size_t pos;
	struct job *j;
};

static int list_one(struct job *j, const void *data, size_t len, unsigned depth, enum view v,
		    enum pass p, bool *nested_seen);

/* past_deadline - the message's time is up (sticky once seen) */
static bool past_deadline(struct job *j)
{
	struct scan_budget *b = j->b;
	if (b->timed_out)
		return true;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > b->deadline.tv_sec ||
	    (now.tv_sec == b->deadline.tv_sec && now.tv_nsec >= b->deadline.tv_nsec)) {
		b->timed_out = true;
		return true;
	}
	return false;
}

/* src_read - the next at most IN_BLOCK bytes; fails once the deadline passed,
 * which ends whatever libarchive is doing (header decoding included) */
static la_ssize_t src_read(struct archive *a, void *cd, const void **buf)
{
	(void)a;
	struct src *s = cd;
	if (past_deadline(s->j))
		return ARCHIVE_FATAL;
	size_t n = s->len - s->pos;
	if (n > IN_BLOCK)
		n = IN_BLOCK;
	*buf = s->data + s->pos;
	s->pos += n;
	return (la_ssize_t)n;
}

/* src_skip - move forward at most REQ bytes; returns how far */
static la_int64_t src_skip(struct archive *a, void *cd, la_int64_t req)
{
	(void)a;
	struct src *s = cd;
	if (req <= 0 || past_deadline(s->j))
		return 0;
	size_t n = s->len - s->pos;
	if ((uint64_t)req < n)
		n = (size_t)req;
	s->pos += n;
	return (la_int64_t)n;
}

/* src_seek - absolute position inside the buffer, or ARCHIVE_FATAL */
static la_int64_t src_seek(struct archive *a, void *cd, la_int64_t off, int whence)
{
	(void)a;
	struct src *s = cd;
	la_int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (la_int64_t)s->pos
			: whence == SEEK_END ? (la_int64_t)s->len : -1;
	if (base < 0 || off > (la_int64_t)s->len - base || off < -base)
		return ARCHIVE_FATAL;
	s->pos = (size_t)(base + off);
	return (la_int64_t)s->pos;
}

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

/* stopped - a result that ends the whole listing: ENOMEM, fn's stop, time */
static bool stopped(struct job *j, int r)
{
	return r < 0 || r == 2 || (r == 4 && j->b->timed_out);
}

/* list_cdir - the names of the zip central directory, raw and as libzip
 * decodes them (CP437 or UTF-8): 0 listed, 1 unreadable, 2 stopped by fn */
static int list_cdir(struct job *j, const void *data, size_t len)
{
	const struct lz *lz = j->lz;
	zip_error_t err;
	lz->error_init(&err);
	zip_source_t *src = lz->source_buffer_create(data, len, 0, &err);
	zip_t *z = src ? lz->open_from_source(src, ZIP_RDONLY, &err) : NULL;
	if (!z) {
		lz->source_free(src);
		lz->error_fini(&err);
		return 1;
	}
	lz->error_fini(&err);
	int rc = 0;
	zip_int64_t n = lz->num_entries(z, 0);
	for (zip_int64_t i = 0; i < n && rc == 0; i++) {
		if (past_deadline(j)) {
			rc = 4;
			break;
		}
		if (j->entries_left[V_ZIP_CDIR] == 0) {
			j->partial = "too many archive members";
			break;
		}
		j->entries_left[V_ZIP_CDIR]--;
		const char *raw = lz->get_name(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
		if (raw)
			rc = j->fn(j->ctx, raw, strlen(raw));
		const char *dec = lz->get_name(z, (zip_uint64_t)i, 0);
		if (rc == 0 && dec && (!raw || strcmp(raw, dec) != 0))
			rc = j->fn(j->ctx, dec, strlen(dec));
	}
	lz->discard(z);
	return rc;
}

/* list_7z - libarchive 3.6 skips a 7z member for free in list mode, but a
 * later member of the same solid block then cannot be read ("Truncated
 * 7-Zip file body"): a nested archive behind a skipped member would go
 * unread, its names unseen.  So the names come first, free; when one of
 * them is a nested archive, a second walk reads every member in order,
 * each byte counted against the budget and the clock. */
static int list_7z(struct job *j, const void *data, size_t len, unsigned depth)
{
	bool nested_seen = false;
	size_t before = j->entries_left[V_OTHER];
	int r = list_one(j, data, len, depth, V_OTHER, P_NAMES, &nested_seen);
	if (stopped(j, r) || !nested_seen)
		return r;
	j->entries_left[V_OTHER] = before; /* the same members, walked again */
	return list_one(j, data, len, depth, V_OTHER, P_READ, NULL);
}

/* list_all - every view of one archive: 0 listed, 1 unreadable, else as fn/ENOMEM/4 */
static int list_all(struct job *j, const void *data, size_t len, unsigned depth)
{
	switch (kind_of(data, len)) {
	case K_ZIP: {
		/* every view always: a name only in one of them is still seen */
		int r0 = list_cdir(j, data, len);
		if (stopped(j, r0))
			return r0;
		int r1 = list_one(j, data, len, depth, V_ZIP_CENTRAL, P_ONE, NULL);
		if (stopped(j, r1))
			return r1;
		int r2 = list_one(j, data, len, depth, V_ZIP_STREAM, P_ONE, NULL);
		if (stopped(j, r2))
			return r2;
		return (r0 == 1 && r1 == 1 && r2 == 1) ? 1 : 0;
	}
	case K_7Z:
		return list_7z(j, data, len, depth);
	case K_RAR:
		return list_one(j, data, len, depth, V_OTHER, P_ONE, NULL);
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

/* read_member - read the rest of the current member, every byte counted
 * against the decompression budget; keep (may be NULL) collects it.
 * Returns 0 end of member, 1 read error (libarchive's skip takes over),
 * 4 the budget or the time ran out, 5 keep is full, -1 ENOMEM. */
static int read_member(struct job *j, struct archive *a, struct hm_buf *keep)
{
	struct scan_budget *b = j->b;
	for (;;) {
		if (past_deadline(j))
			return 4;
		/* one byte more than the budget allows tells "exhausted" from "exact" */
		size_t want = OUT_CHUNK;
		if (b->inflate_left < (uint64_t)want)
			want = (size_t)b->inflate_left + 1;
		la_ssize_t n = j->la->read_data(a, j->scratch, want);
		if (n == 0)
			return 0;
		if (n < 0)
			return past_deadline(j) ? 4 : 1;
		if ((uint64_t)n > b->inflate_left) {
			b->inflate_left = 0;
			return 4;
		}
		b->inflate_left -= (uint64_t)n;
		if (keep && hm_buf_append(keep, j->scratch, (size_t)n) < 0)
			return errno == ENOMEM ? -1 : 5;
	}
}

/* nested - read a member named like an archive and list it one level deeper */
static int nested(struct job *j, struct archive *a, unsigned depth, enum view v)
{
	struct hm_buf keep;
	hm_buf_init(&keep, j->c->max_archive_size);
	int r = read_member(j, a, &keep);
	if (r == 1) {
		j->partial = "a nested archive cannot be read"; /* its names unseen */
		r = 0;
	} else if (r == 5) {
		j->partial = "a nested archive is larger than max_archive_size";
		/* what the streaming view cannot skip is still counted */
		r = v == V_ZIP_CENTRAL ? 0 : read_member(j, a, NULL);
	} else if (r == 0 && keep.len > 0) {
		r = list_all(j, keep.data, keep.len, depth + 1);
		if (r == 1) {
			/* not an archive after all: its name was checked; one that
			 * looks like an archive but cannot be listed hides its names */
			if (kind_of(keep.data, keep.len) != K_NONE)
				j->partial = "a nested archive cannot be read";
			r = 0;
		}
	}
	hm_buf_free(&keep);
	return r;
}

/* skip_inflates - would libarchive decompress the current member to skip it?
 * Then it is read here instead, counted.  libarchive 3.6: the central-
 * directory zip view seeks; the streaming zip view consumes the compressed
 * size from the local header unless the member has a data descriptor (flag
 * bit 3), then it must inflate to find the end; 7z skips for free in list
 * mode until a member's data has been read (then it decodes the solid
 * block); RAR 5 decompresses to skip in solid archives, RAR 4 never. */
static bool skip_inflates(struct job *j, struct archive *a, const struct src *s, enum view v,
			  bool data_read)
{
	if (v == V_ZIP_CENTRAL)
		return false;
	if (v == V_ZIP_STREAM) {
		la_int64_t at = j->la->header_position(a);
		if (at < 0 || (uint64_t)at > s->len || s->len - (size_t)at < 30 ||
		    memcmp(s->data + at, "PK\x03\x04", 4) != 0)
			return true; /* not where expected: read it, counted */
		return (s->data[at + 6] & 0x08) != 0;
	}
	int f = j->la->format(a);
	if ((f & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_7ZIP)
		return data_read;
	return (f & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_RAR;
}

/* declare - a member skipped unread still declares its size: an archive
 * declaring more than the message's budget is a bomb nobody inflated, and
 * "unscannable" like one (a name-only listing would otherwise pass it) */
static void declare(struct job *j, struct archive_entry *e)
{
	if (!j->la->size_is_set(e))
		return;
	la_int64_t sz = j->la->size(e);
	if (sz <= 0)
		return;
	if ((uint64_t)sz > j->b->declared_left) {
		j->b->declared_left = 0;
		j->partial = "declared size over max_archive_inflate";
		return;
	}
	j->b->declared_left -= (uint64_t)sz;
}

/* list_one - one view (central directory, local headers, 7z/RAR) of one
 * archive, walked as pass p says; nested_seen (P_NAMES) is set when a
 * member names a nested archive */
static int list_one(struct job *j, const void *data, size_t len, unsigned depth, enum view v,
		    enum pass p, bool *nested_seen)
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
	struct src src = {.data = data, .len = len, .j = j};
	la->set_callback_data(a, &src);
	la->set_read_callback(a, src_read);
	la->set_skip_callback(a, src_skip);
	la->set_seek_callback(a, src_seek);
	if (la->open1(a) != ARCHIVE_OK) {
		la->read_free(a);
		return j->b->timed_out ? 4 : 1;
	}
	int rc = 0;
	bool data_read = false; /* a member's data was read in this view */
	for (;;) {
		if (past_deadline(j)) {
			rc = 4;
			break;
		}
		struct archive_entry *e;
		int r = la->next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = j->b->timed_out ? 4 : 1;
			break;
		}
		if (j->entries_left[v] == 0) {
			/* each view has its own bound: a central directory padded
			 * with harmless members cannot hide a local header's name */
			j->partial = "too many archive members";
			break;
		}
		j->entries_left[v]--;
		const char *name = la->pathname_utf8(e);
		if (!name)
			name = la->pathname(e);
		size_t nl = name ? strlen(name) : 0;
		if (name && p != P_READ) { /* P_READ: the first walk checked the names */
			rc = j->fn(j->ctx, name, nl);
			if (rc)
				break;
		}
		bool nest = name && depth < j->c->archive_depth && archive_name(name, nl);
		if (nest && p == P_NAMES) {
			*nested_seen = true;
			r = 0;
			declare(j, e);
		} else if (nest) {
			r = nested(j, a, depth, v);
			data_read = true;
		} else if (p == P_READ || skip_inflates(j, a, &src, v, data_read)) {
			r = read_member(j, a, NULL); /* never a skip that decompresses uncounted */
		} else {
			r = 0;
			if (v != V_ZIP_CENTRAL)
				declare(j, e);
		}
		if (r < 0 || r == 2 || (r == 4 && j->b->timed_out)) {
			rc = r;
			break;
		}
		if (r == 4) {
			j->partial = "decompression budget (max_archive_inflate) exhausted";
			if (v != V_ZIP_CENTRAL)
				break; /* the next header would need the skip we cannot pay */
		}
	}
	la->read_free(a);
	return rc;
}

int scan_archive_names(const struct scan_conf *c, const void *data, size_t len,
		       struct scan_budget *b, name_fn *fn, void *ctx)
{
	if (kind_of(data, len) == K_NONE)
		return 1;
	struct job j = {.la = la_get(), .lz = lz_get(), .c = c, .fn = fn, .ctx = ctx, .b = b};
	if (!j.la || !j.lz)
		return 3;
	for (int v = 0; v < V_MAX; v++)
		j.entries_left[v] = ENTRIES_MAX;
	if (b->timed_out) {
		b->why = "time budget exhausted";
		return 4;
	}
	j.scratch = malloc(OUT_CHUNK);
	if (!j.scratch)
		return -1;
	int rc = list_all(&j, data, len, 1);
	free(j.scratch);
	if (rc == 4 && b->timed_out) {
		b->why = "time budget exhausted";
	} else if ((rc == 0 || rc == 1 || rc == 4) && j.partial) {
		b->why = j.partial;
		rc = 4;
	}
	return rc;
}

bool scan_archive_magic(const void *data, size_t len)
{
	return kind_of(data, len) != K_NONE;
}
