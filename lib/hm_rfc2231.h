/* hm_rfc2231.h — MIME header field values with parameters (RFC 2045 §5.1,
 * RFC 2183, RFC 2231), parsed the way mail clients read them.
 *
 * A field value such as `multipart/mixed; boundary="x"` or
 * `attachment; filename*0*=utf-8''ev%69l; filename*1=".exe"` is split into
 * its main token and a list of raw parameters.  Every occurrence is kept, so
 * the caller can see duplicates, and the problems a strict and a lenient
 * client would read differently are reported as flags, never silently fixed:
 * duplicate names or sections, continuation gaps, syntax a lenient parser
 * skips over, more parameters than the bound.
 *
 * Readings of one parameter (hm_mimefield_readings) are all the strings a
 * client might take for it: each plain `name=` value, the same with RFC 2047
 * encoded words decoded (as Outlook/Thunderbird do inside quoted strings),
 * the RFC 2231 continuation joined by section index and converted from its
 * charset (hm_rfc2047's iconv conversion), and — when the sections appear out of order —
 * the join in order of appearance too.
 *
 * Memory: all strings are malloc'd copies; hm_mimefield_free releases them.
 * Bounds: no count limit — every parameter and every reading is kept, so a
 * name cannot hide behind a ninth reading or a sixty-fifth parameter (issue
 * 14); what bounds them is the length of the field value, itself bounded by
 * the caller's header size limit.  Work is O(n log n) in the parameter count.
 * Section indexes above 999 are read as 999 (and flagged).
 * Returns: 0 ok, -1 and errno set (ENOMEM) unless stated otherwise.
 */
#ifndef HM_RFC2231_H
#define HM_RFC2231_H
#include <stdbool.h>
#include <stddef.h>

#define HM_PARAM_SECTION_MAX 999 /* highest RFC 2231 section index honoured */

/* problem flags in hm_mimefield.problems */
#define HM_PARAM_DUP          0x01u /* one name (or one section) given twice */
#define HM_PARAM_SYNTAX       0x02u /* junk a lenient parser skips: missing ';', bad quote */
#define HM_PARAM_GAP          0x04u /* continuation sections missing an index */
#define HM_PARAM_BAD_CHARSET  0x10u /* unknown charset or bytes invalid in it */
#define HM_PARAM_ORDER        0x20u /* continuation sections out of order */
#define HM_PARAM_NUL          0x40u /* a NUL byte in a value */

struct hm_param {
	char *name;        /* lowercased attribute, without the RFC 2231 `*N*` */
	int section;       /* -1 without `*N`, else N */
	bool extended;     /* trailing `*`: value was %XX encoded (charset'lang' in section 0) */
	char *charset;     /* charset of an extended initial section, else NULL */
	char *value;       /* quotes and escapes removed, %XX decoded; may hold NUL */
	size_t value_len;
};

struct hm_mimefield {
	char *value;       /* main token, lowercased, trimmed ("multipart/mixed"); never NULL after parse */
	struct hm_param *params;
	size_t nparams;
	size_t params_cap; /* allocated entries of params */
	unsigned problems; /* HM_PARAM_* */
};

/* hm_mimefield_parse - parse the (unfolded) value of a Content-Type or
 * Content-Disposition field.  Comments are removed, quoted strings unescaped.
 * On error f is left empty (safe to free). */
int hm_mimefield_parse(const char *s, size_t len, struct hm_mimefield *f);

/* hm_mimefield_free - release everything; f may be zeroed or parsed */
void hm_mimefield_free(struct hm_mimefield *f);

/* hm_mimefield_has - true when parameter NAME occurs at all (any form) */
bool hm_mimefield_has(const struct hm_mimefield *f, const char *name);

/* callback for one reading: UTF-8 (or raw bytes for unknown charsets), may hold NUL */
typedef int hm_reading_fn(void *ctx, const char *val, size_t len);

/* hm_mimefield_readings - call fn once for each distinct reading of NAME
 * (see the top of this file).  Stops and returns fn's value when it is
 * non-zero.  Returns 0 when every reading was delivered, -1 on ENOMEM. */
int hm_mimefield_readings(const struct hm_mimefield *f, const char *name,
			  hm_reading_fn *fn, void *ctx);

/* hm_mimefield_get - the reading a standards-following client displays:
 * the RFC 2231 form when present, else the first plain value with encoded
 * words decoded.  malloc'd, NUL-terminated (value may hold NUL: see len_r),
 * NULL when absent (errno 0) or on ENOMEM (errno ENOMEM). */
char *hm_mimefield_get(const struct hm_mimefield *f, const char *name, size_t *len_r);

#endif
