/* hm_header.h — the one RFC 5322 header-block parser of homemail.
 *
 * NAME
 *   hm_header - split a message's header block into fields
 *
 * SYNOPSIS
 *   struct hm_header_limits lim = HM_HEADER_LIMITS_DEFAULT;
 *   struct hm_header *h;
 *   if (hm_header_parse(data, len, &lim, &h) < 0) -> errno (ENOMEM, EINVAL)
 *   for (size_t it = 0; (f = hm_header_next(h, "Received", &it)) != NULL; ) ...
 *   const struct hm_hfield *s = hm_header_get(h, "Subject");  // first one
 *   hm_header_free(&h);
 *
 * DESCRIPTION
 *   The input is the start of a message (it may go on into the body: the
 *   parser stops at the first empty line).  Line ends may be LF or CRLF, mixed.
 *   The parser copies what it keeps, so the input may be freed after parsing.
 *
 *   RFC 5322 section 2.2: a field is "name:value" ending with a line end; a
 *   line starting with SP or HTAB continues the previous field (folding,
 *   section 2.2.3).  The header block ends at the first empty line, at the end
 *   of the input, or when a limit is reached (then h->truncated is set and
 *   h->block_len tells how far the parser got: the caller treats the rest as
 *   body, as Dovecot does with oversized headers).
 *
 *   Hostile input is tolerated, never rejected:
 *   - NUL bytes, 8-bit bytes and bare CR are kept in raw; see `value` below.
 *   - A line without ':' (or an initial continuation line) becomes a field
 *     with HM_HFIELD_NO_COLON set, name = "" and raw = the whole line; lookups
 *     by name never return it, iteration by index does.
 *   - WSP between the name and ':' (obs-syntax, RFC 5322 4.5.8) is dropped
 *     from the name; a name with other bytes outside 33..126 gets
 *     HM_HFIELD_BAD_NAME but is kept and can be looked up.
 *
 * FIELD MEMBERS (all strings are NUL-terminated copies owned by the header)
 *   name   the field name as written (case kept), without trailing WSP.
 *   raw    exactly the bytes after ':' up to, not including, the field's final
 *          line end: folds (CRLF/LF + WSP), NUL and 8-bit bytes untouched.
 *          Use it to re-emit a field or to decode RFC 2047 / addresses.
 *   value  the unfolded value (RFC 5322 2.2.3): every CR/LF that is followed
 *          by WSP is removed (the WSP kept), leading and trailing WSP removed,
 *          each NUL byte replaced by U+FFFD (EF BF BD) and each remaining bare
 *          CR or LF by a space, so value is a safe one-line C string.
 *          8-bit bytes are kept as they are (not validated as UTF-8).
 *   offset, length  where the whole field (name through its final line end)
 *          sits in the parsed input.
 *
 * LIMITS (struct hm_header_limits; a zero member means the default)
 *   max_block   bytes of header block parsed (default 1 MiB)
 *   max_fields  fields kept (default 10000)
 *   Whatever the input, memory use is O(min(len, max_block)).
 *
 * RETURNS
 *   hm_header_parse: 0 ok (even for garbage), -1 and errno ENOMEM / EINVAL
 *   (NULL arguments).  Lookups return NULL when nothing matches.
 *   Nothing here logs, exits or keeps static state: safe inside Exim/Dovecot.
 */
#ifndef HM_HEADER_H
#define HM_HEADER_H
#include <stdbool.h>
#include <stddef.h>

#define HM_HFIELD_NO_COLON  0x01u  /* line had no ':'; name is "" */
#define HM_HFIELD_BAD_NAME  0x02u  /* name has bytes outside printable ASCII */
#define HM_HFIELD_HAS_NUL   0x04u  /* raw contains NUL byte(s) */
#define HM_HFIELD_8BIT      0x08u  /* raw contains bytes >= 0x80 */
#define HM_HFIELD_FOLDED    0x10u  /* raw spans more than one line */

struct hm_hfield {
	const char *name;    /* NUL-terminated */
	size_t name_len;
	const char *raw;     /* NUL-terminated; may contain NULs, so use raw_len */
	size_t raw_len;
	const char *value;   /* NUL-terminated, unfolded, no NUL/CR/LF inside */
	size_t value_len;
	size_t offset;       /* start of the field in the input */
	size_t length;       /* bytes of the field in the input incl. final line end */
	unsigned flags;      /* HM_HFIELD_* */
};

struct hm_header_limits {
	size_t max_block;    /* 0 = 1 MiB */
	size_t max_fields;   /* 0 = 10000 */
};
#define HM_HEADER_LIMITS_DEFAULT { 0, 0 }
#define HM_HEADER_DEFAULT_MAX_BLOCK  (1024u * 1024u)
#define HM_HEADER_DEFAULT_MAX_FIELDS 10000u

struct hm_header {
	struct hm_hfield *fields;  /* count entries, in message order */
	size_t count;
	size_t block_len;     /* bytes consumed from the input: all fields plus the
	                         empty line when one ended the block */
	bool has_body_sep;    /* an empty line ended the block */
	bool truncated;       /* a limit stopped the parser before the end */
	/* private */
	char *arena_;
};

/* hm_header_parse - parse the header block at the start of data[0..len).
 * Returns 0 and *hdr_r (free with hm_header_free), or -1 and errno set. */
int hm_header_parse(const void *data, size_t len,
		    const struct hm_header_limits *lim, struct hm_header **hdr_r);

/* hm_header_free - release a parsed header; sets *hdr to NULL. NULL is fine. */
void hm_header_free(struct hm_header **hdr);

/* hm_header_get - the first field called name (ASCII case-insensitive), or NULL */
const struct hm_hfield *hm_header_get(const struct hm_header *h, const char *name);

/* hm_header_next - iterate over the fields called name, in message order.
 * Start with *iter = 0; returns the next match (advancing *iter) or NULL.
 * name == NULL iterates over every field (including NO_COLON ones). */
const struct hm_hfield *hm_header_next(const struct hm_header *h, const char *name,
				       size_t *iter);

/* hm_header_count_name - how many fields are called name */
size_t hm_header_count_name(const struct hm_header *h, const char *name);

/* hm_header_name_is - true when field f is called name (case-insensitive) */
bool hm_header_name_is(const struct hm_hfield *f, const char *name);

/* hm_header_is_delivery_trace - a field an MTA's transport prepends for one
 * delivery attempt (Return-Path, Envelope-to, Delivery-date, Delivered-To):
 * the message as received starts at the first field that is not one */
bool hm_header_is_delivery_trace(const struct hm_hfield *f);

#endif
