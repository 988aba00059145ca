/* fuzz_archive.c — libFuzzer harness for the archive path of the scanner
 * (exim-local-scan/scan_archive.c: libarchive's zip, 7z and RAR readers and
 * libzip's central directory, under the decompression budget, issue 14).
 *
 * Input: byte 0 picks the mode, the rest is either the archive itself (raw:
 * seeds are real archives and small bombs, libFuzzer mutates them) or a
 * recipe from which a container is generated — a zip written field by field
 * (stored or deflated members, data descriptors, a name in one view only or
 * different in each, runs of zeros that inflate far past the budget), a
 * solid 7z written by libarchive, or a stored RAR 4 archive — whose members
 * may themselves be generated containers, three levels deep.
 *
 * Checks: the result is one of the documented codes; 4 comes with a reason;
 * the budget counter only goes down; every name is a C string of the length
 * given.  A slow input is a finding: run with -timeout (fuzz.mk uses 10 s;
 * the budget below makes every input cost at most 256 KiB of inflation).
 */
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "hm_buf.h"
#include "scan.h"

#define GEN_MAX (8u << 20) /* bytes of one generated container */

static struct scan_conf conf;
static int conf_ready;

/* the recipe: bytes taken from the front, zeros once it runs out */
struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct rd *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

static size_t take_bytes(struct rd *r, const uint8_t **out, size_t want)
{
	if (want > r->n)
		want = r->n;
	*out = r->p;
	r->p += want;
	r->n -= want;
	return want;
}

static void put16(struct hm_buf *b, unsigned v)
{
	unsigned char c[2] = {v & 255, (v >> 8) & 255};
	hm_buf_append(b, c, 2);
}

static void put32(struct hm_buf *b, uint32_t v)
{
	unsigned char c[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, v >> 24};
	hm_buf_append(b, c, 4);
}

static int gen(struct rd *r, unsigned depth, struct hm_buf *out);

/* one member's content: literal bytes, zeros (the bomb part) or a nested
 * generated container; returns malloc'd bytes in *data */
static size_t content(struct rd *r, unsigned depth, unsigned kind, unsigned char **data)
{
	struct hm_buf b;
	hm_buf_init(&b, GEN_MAX);
	if (kind == 1) {
		size_t n = (size_t)(take(r) % 16 + 1) * 32 * 1024; /* up to 512 KiB of zeros */
		unsigned char *z = calloc(1, n);
		*data = z;
		return z ? n : 0;
	}
	if (kind >= 2 && depth < 3) {
		gen(r, depth + 1, &b);
	} else {
		const uint8_t *lit;
		size_t n = take_bytes(r, &lit, take(r));
		hm_buf_append(&b, lit, n);
	}
	*data = (unsigned char *)b.data;
	return b.len;
}

static void name_of(struct rd *r, char *name, size_t cap)
{
	static const char *const ext[] = {".txt", ".zip", ".exe", ".7z", ".rar", "", ".ZIP", ".js"};
	const uint8_t *p;
	size_t n = take_bytes(r, &p, take(r) % 16);
	if (n + 8 >= cap)
		n = cap - 9;
	memcpy(name, p, n);
	strcpy(name + n, ext[take(r) % 8]);
}

/* deflate_raw - raw deflate (zip method 8) of d[0..n) into b */
static void deflate_raw(struct hm_buf *b, const unsigned char *d, size_t n)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return;
	unsigned char o[65536];
	z.next_in = (unsigned char *)d;
	z.avail_in = (uInt)n;
	int rc;
	do {
		z.next_out = o;
		z.avail_out = sizeof o;
		rc = deflate(&z, Z_FINISH);
		hm_buf_append(b, o, sizeof o - z.avail_out);
	} while (rc == Z_OK);
	deflateEnd(&z);
}

/* gen_zip - members as local header + data [+ descriptor], then the central
 * directory: a member may be in one view only, or named differently in each */
static void gen_zip(struct rd *r, unsigned depth, struct hm_buf *out)
{
	struct hm_buf cd;
	hm_buf_init(&cd, GEN_MAX);
	unsigned n = take(r) % 6 + 1, ncd = 0;
	uint32_t last_local = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned f = take(r);
		char name[64], cname[64];
		name_of(r, name, sizeof name);
		strcpy(cname, name);
		if ((f >> 6) == 3)
			name_of(r, cname, sizeof cname);
		unsigned char *d = NULL;
		size_t dl = content(r, depth, (f >> 3) & 3, &d);
		struct hm_buf comp;
		hm_buf_init(&comp, GEN_MAX);
		unsigned method = (f & 1) ? 8 : 0;
		if (method)
			deflate_raw(&comp, d, dl);
		else
			hm_buf_append(&comp, d, dl);
		uint32_t crc = (uint32_t)crc32(0, d, (uInt)dl);
		free(d);
		bool dd = f & 2, local = (f >> 6) != 2, central = (f >> 6) != 1;
		if (local) {
			last_local = (uint32_t)out->len;
			put32(out, 0x04034B50);
			put16(out, 20);
			put16(out, dd ? 8 : 0);
			put16(out, method);
			put32(out, 0x210000);
			put32(out, dd ? 0 : crc);
			put32(out, dd ? 0 : (uint32_t)comp.len);
			put32(out, dd ? 0 : (uint32_t)dl);
			put16(out, (unsigned)strlen(name));
			put16(out, 0);
			hm_buf_append(out, name, strlen(name));
			hm_buf_append(out, comp.data, comp.len);
			if (dd) {
				put32(out, 0x08074B50);
				put32(out, crc);
				put32(out, (uint32_t)comp.len);
				put32(out, (uint32_t)dl);
			}
		}
		if (central) {
			put32(&cd, 0x02014B50);
			put16(&cd, 20);
			put16(&cd, 20);
			put16(&cd, dd ? 8 : 0);
			put16(&cd, method);
			put32(&cd, 0x210000);
			put32(&cd, crc);
			put32(&cd, (uint32_t)comp.len);
			put32(&cd, (uint32_t)dl);
			put16(&cd, (unsigned)strlen(cname));
			put32(&cd, 0);
			put32(&cd, 0);
			put32(&cd, 0);
			put32(&cd, last_local);
			hm_buf_append(&cd, cname, strlen(cname));
			ncd++;
		}
		hm_buf_free(&comp);
	}
	uint32_t cd_off = (uint32_t)out->len;
	hm_buf_append(out, cd.data, cd.len);
	put32(out, 0x06054B50);
	put32(out, 0);
	put16(out, ncd);
	put16(out, ncd);
	put32(out, (uint32_t)cd.len);
	put32(out, cd_off);
	put16(out, 0);
	hm_buf_free(&cd);
}

/* gen_7z - a solid 7z written by libarchive (LZMA): skipping a member means
 * decompressing everything before it in the block */
static void gen_7z(struct rd *r, unsigned depth, struct hm_buf *out)
{
	unsigned n = take(r) % 5 + 1;
	unsigned char *d[5];
	size_t dl[5], total = 0;
	char names[5][64];
	for (unsigned i = 0; i < n; i++) {
		name_of(r, names[i], sizeof names[i]);
		dl[i] = content(r, depth, take(r) & 3, &d[i]);
		total += dl[i];
	}
	size_t cap = total + 65536, used = 0;
	char *buf = malloc(cap);
	struct archive *a = archive_write_new();
	/* level 1: a small LZMA dictionary keeps each input cheap to write */
	if (buf && a && archive_write_set_format_7zip(a) == ARCHIVE_OK &&
	    archive_write_set_format_option(a, "7zip", "compression-level", "1") == ARCHIVE_OK &&
	    archive_write_open_memory(a, buf, cap, &used) == ARCHIVE_OK) {
		for (unsigned i = 0; i < n; i++) {
			struct archive_entry *e = archive_entry_new();
			archive_entry_set_pathname(e, names[i]);
			archive_entry_set_size(e, (la_int64_t)dl[i]);
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			if (archive_write_header(a, e) == ARCHIVE_OK && dl[i])
				archive_write_data(a, d[i], dl[i]);
			archive_entry_free(e);
		}
		archive_write_close(a);
		hm_buf_append(out, buf, used);
	}
	if (a)
		archive_write_free(a);
	free(buf);
	for (unsigned i = 0; i < n; i++)
		free(d[i]);
}

/* rar_block - one RAR 4 block: CRC-16 (low half of CRC-32 over the rest),
 * type, flags, size, then the block's fields */
static void rar_block(struct hm_buf *out, unsigned type, unsigned flags, const struct hm_buf *rest)
{
	struct hm_buf h;
	hm_buf_init(&h, GEN_MAX);
	unsigned char t = (unsigned char)type;
	hm_buf_append(&h, &t, 1);
	put16(&h, flags);
	put16(&h, (unsigned)(7 + rest->len));
	hm_buf_append(&h, rest->data, rest->len);
	put16(out, (unsigned)crc32(0, (unsigned char *)h.data, (uInt)h.len) & 0xffff);
	hm_buf_append(out, h.data, h.len);
	hm_buf_free(&h);
}

/* gen_rar - a RAR 4 archive of stored members (method 0x30) */
static void gen_rar(struct rd *r, unsigned depth, struct hm_buf *out)
{
	struct hm_buf f;
	hm_buf_init(&f, GEN_MAX);
	hm_buf_append(out, "Rar!\x1a\x07\x00", 7);
	put16(&f, 0);
	put32(&f, 0);
	rar_block(out, 0x73, 0, &f);
	unsigned n = take(r) % 5 + 1;
	for (unsigned i = 0; i < n; i++) {
		char name[64];
		name_of(r, name, sizeof name);
		unsigned char *d = NULL;
		size_t dl = content(r, depth, take(r) & 3, &d);
		hm_buf_reset(&f);
		put32(&f, (uint32_t)dl);   /* packed size */
		put32(&f, (uint32_t)dl);   /* unpacked size */
		unsigned char os = 2, ver = 20, method = 0x30;
		hm_buf_append(&f, &os, 1);
		put32(&f, (uint32_t)crc32(0, d, (uInt)dl));
		put32(&f, 0x21000000);     /* DOS time */
		hm_buf_append(&f, &ver, 1);
		hm_buf_append(&f, &method, 1);
		put16(&f, (unsigned)strlen(name));
		put32(&f, 0x20);           /* attributes */
		hm_buf_append(&f, name, strlen(name));
		rar_block(out, 0x74, 0x8000, &f); /* LONG_BLOCK: data follows */
		hm_buf_append(out, d, dl);
		free(d);
	}
	hm_buf_reset(&f);
	rar_block(out, 0x7b, 0x4000, &f);
	hm_buf_free(&f);
}

static int gen(struct rd *r, unsigned depth, struct hm_buf *out)
{
	switch (take(r) % 3) {
	case 0:
		gen_zip(r, depth, out);
		break;
	case 1:
		gen_7z(r, depth, out);
		break;
	default:
		gen_rar(r, depth, out);
		break;
	}
	return 0;
}

struct seen {
	size_t names;
};

static int name_cb(void *ctx, const char *name, size_t len)
{
	struct seen *s = ctx;
	if (strlen(name) != len)
		abort(); /* names reach the policy as C strings of the given length */
	s->names++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!conf_ready) {
		if (scan_conf_defaults(&conf) < 0)
			abort();
		conf.max_archive_size = 4u << 20;
		conf.max_archive_inflate = 256u << 10; /* every input: at most 256 KiB inflated */
		conf.archive_depth = 3;
		conf_ready = 1;
	}
	if (size < 1)
		return 0;
	struct hm_buf arch;
	hm_buf_init(&arch, GEN_MAX);
	struct rd r = {data + 1, size - 1};
	const void *a = data + 1;
	size_t al = size - 1;
	if (data[0] & 1) {
		gen(&r, 1, &arch);
		a = arch.data;
		al = arch.len;
	}
	if (a && al) {
		struct scan_budget b = {.inflate_left = conf.max_archive_inflate,
					.declared_left = conf.max_archive_inflate};
		clock_gettime(CLOCK_MONOTONIC, &b.deadline);
		b.deadline.tv_sec += 3600; /* libFuzzer's -timeout is the clock here */
		struct seen s = {0};
		int rc = scan_archive_names(&conf, a, al, &b, name_cb, &s);
		if (rc < -1 || rc > 4 || rc == 2)
			abort();
		if (rc == 4 && !b.why)
			abort();
		if (b.inflate_left > conf.max_archive_inflate)
			abort();
		/* the spent budget is the message's: a second archive gets nothing more */
		uint64_t left = b.inflate_left;
		(void)scan_archive_names(&conf, a, al, &b, name_cb, &s);
		if (b.inflate_left > left)
			abort();
	}
	hm_buf_free(&arch);
	return 0;
}
