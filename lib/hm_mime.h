/* hm_mime.h — the streaming MIME walker of homemail (RFC 2045/2046/2049).
 *
 * One pass over a message fed in chunks of any size (hm_mime_feed), one
 * callback per part in walk order, the leaf bodies delivered decoded
 * (base64, quoted-printable, or as is).  message/rfc822 parts are walked into
 * (their embedded header block starts a part one level deeper).
 *
 * Bounded: nesting depth, part count, header block size, line length and
 * boundary length are limits fixed at creation; hitting one reports an
 * HM_MIME_LIMIT_* problem and stops the walk.  Memory is one line buffer,
 * one header block and one frame per open nesting level.  No recursion.
 *
 * Ambiguities (places where two mail clients would read the message
 * differently) are reported through the problem callback and never
 * "repaired" silently: duplicate boundaries, parameters or MIME headers,
 * boundaries that match only as a prefix, a missing closing boundary,
 * multipart without a boundary, malformed header lines, broken encodings,
 * NUL / bare CR / raw 8-bit bytes in header blocks.  Where a line could be
 * read as a boundary or as text, the walker takes the boundary reading (it
 * exposes more parts to the callbacks) and reports the problem.
 *
 * Returns of hm_mime_feed/hm_mime_finish: 0 go on, 1 stopped (a callback
 * returned HM_MIME_STOP or a limit was hit), -1 and errno (ENOMEM).
 */
#ifndef HM_MIME_H
#define HM_MIME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_header.h"
#include "hm_rfc2231.h"

enum hm_mime_problem {
	/* limits: the walk stops */
	HM_MIME_LIMIT_DEPTH = 1,
	HM_MIME_LIMIT_PARTS,
	HM_MIME_LIMIT_HEADER,    /* one header block larger than max_header */
	HM_MIME_LIMIT_LINE,      /* a line longer than max_line */
	HM_MIME_LIMIT_BOUNDARY,  /* boundary parameter longer than max_boundary */
	/* ambiguities: the walk goes on */
	HM_MIME_DUP_BOUNDARY,    /* a nested multipart reuses an enclosing boundary */
	HM_MIME_PREFIX_BOUNDARY, /* a line matches a boundary only as a prefix */
	HM_MIME_NO_CLOSE,        /* a multipart ends without its closing boundary */
	HM_MIME_NO_BOUNDARY,     /* multipart/ * with no or an empty boundary */
	HM_MIME_DUP_HEADER,      /* two Content-Type / -Transfer-Encoding / -Disposition */
	HM_MIME_DUP_PARAM,       /* a parameter (or RFC 2231 section) given twice */
	HM_MIME_PARAM_SYNTAX,    /* parameter junk, gaps or order problems in continuations */
	HM_MIME_HEADER_SYNTAX,   /* a header line that is neither field nor continuation */
	HM_MIME_BAD_ENCODING,    /* invalid base64, unknown transfer encoding */
	HM_MIME_HDR_NUL,         /* NUL byte in a header block */
	HM_MIME_HDR_BARE_CR,     /* CR not followed by LF in a header block */
	HM_MIME_HDR_8BIT,        /* raw byte >= 0x80 in a header block */
	HM_MIME_PROBLEM_MAX
};

/* hm_mime_problem_name - short stable name ("prefix-boundary", ...) */
const char *hm_mime_problem_name(enum hm_mime_problem p);
/* hm_mime_problem_is_limit - true for HM_MIME_LIMIT_* */
bool hm_mime_problem_is_limit(enum hm_mime_problem p);

#define HM_MIME_HF_NUL     1u
#define HM_MIME_HF_BARE_CR 2u
#define HM_MIME_HF_8BIT    4u

enum hm_mime_cte { HM_CTE_7BIT, HM_CTE_8BIT, HM_CTE_BINARY, HM_CTE_QP, HM_CTE_BASE64, HM_CTE_UNKNOWN };

struct hm_mime_part {
	size_t index;             /* 0 = the message itself, then walk order */
	unsigned depth;           /* 0 for the message */
	const struct hm_mime_part *parent;
	char *ctype;              /* lowercased "type/subtype" (defaults applied) */
	struct hm_mimefield ct;   /* parsed Content-Type (empty when absent) */
	struct hm_mimefield cd;   /* parsed Content-Disposition (empty when absent) */
	enum hm_mime_cte cte;
	bool multipart;           /* walked as a multipart (has a usable boundary) */
	bool message;             /* message/rfc822 (or global) walked into */
	unsigned hdr_flags;       /* HM_MIME_HF_* bits seen in this header block */
	uint64_t body_bytes;      /* decoded bytes delivered so far */
	/* valid during the part_begin callback only: the part's header block as
	 * split by lib/hm_header (the one RFC 5322 header parser) */
	const struct hm_header *hdr;
};

/* callback returns; HM_MIME_SKIP only from part_data: no more bytes of this
 * part are wanted (the walker still validates its encoding) */
enum { HM_MIME_CONTINUE = 0, HM_MIME_STOP = 1, HM_MIME_SKIP = 2 };

struct hm_mime_callbacks {
	/* a part's header block is complete (containers too) */
	int (*part_begin)(void *ctx, struct hm_mime_part *p);
	/* decoded body bytes of a leaf part, in order, in chunks of any size */
	int (*part_data)(void *ctx, struct hm_mime_part *p, const char *data, size_t len);
	/* the part (and for containers all its children) is over */
	int (*part_end)(void *ctx, struct hm_mime_part *p);
	/* a problem; p is the part it belongs to (may be NULL), detail may be NULL */
	int (*problem)(void *ctx, struct hm_mime_part *p, enum hm_mime_problem what,
		       const char *detail);
};

struct hm_mime_limits {
	unsigned max_depth;      /* nesting levels below the message (default 20) */
	size_t max_parts;        /* parts including the message (default 1000) */
	size_t max_header;       /* bytes in one header block (default 1 MiB) */
	size_t max_line;         /* bytes in one line without its newline (default 10000) */
	size_t max_boundary;     /* bytes in a boundary (default 100; RFC 2046 says 70) */
};

/* hm_mime_limits_default - fill in the defaults named above */
void hm_mime_limits_default(struct hm_mime_limits *l);

struct hm_mime;

/* hm_mime_new - a walker for one message.  NULL and errno on failure. */
struct hm_mime *hm_mime_new(const struct hm_mime_limits *lim, const struct hm_mime_callbacks *cb,
			    void *ctx);
/* hm_mime_feed - walk the next len bytes of the message */
int hm_mime_feed(struct hm_mime *m, const char *data, size_t len);
/* hm_mime_finish - end of message: flush, report unclosed multiparts, end parts */
int hm_mime_finish(struct hm_mime *m);
/* hm_mime_free - release the walker; sets *m to NULL */
void hm_mime_free(struct hm_mime **m);

/* statistics */
size_t hm_mime_parts(const struct hm_mime *m);     /* parts begun */
unsigned hm_mime_max_depth(const struct hm_mime *m);

#endif
