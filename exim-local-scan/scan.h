/* scan.h — homemail's MIME policy engine, shared by homemail_scan.so (inside
 * Exim's receiving process) and the homemail-scan CLI.
 *
 * The engine knows nothing about Exim: it is fed the message (header block,
 * blank line, body) in chunks, walks it once with lib/hm_mime, applies the
 * rules of scan.conf and returns one verdict with a reason, the value of the
 * X-Homemail-Scan header and a log line.  All memory is malloc'd per message
 * and released by scan_free; nothing calls exit() or alarm().
 * Returns: 0 ok, -1 and errno (ENOMEM) unless stated otherwise.
 */
#ifndef HM_SCAN_H
#define HM_SCAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hm_mime.h"

#define SCAN_CONF_DEFAULT_PATH "/etc/homemail/scan.conf"
#define SCAN_CONF_ENV "HOMEMAIL_SCAN_CONF"

/* actions, in increasing severity */
enum scan_action {
	SCAN_ACCEPT = 0,   /* rule ignored */
	SCAN_TAG,          /* accept, name the rule in X-Homemail-Scan */
	SCAN_FREEZE,       /* accept and freeze in the queue */
	SCAN_TEMPREJECT,   /* 451 */
	SCAN_REJECT,       /* 550 */
};

enum scan_rule {
	SR_LIMIT,          /* depth, parts, header size, line length, boundary length */
	SR_BLOCKED,        /* a blocked extension in any reading of any name */
	SR_AMBIGUOUS,      /* MIME structure or names clients read differently */
	SR_ENCODING,       /* broken base64, unknown transfer encoding */
	SR_FROM,           /* not exactly one From: */
	SR_DATE,           /* no Date: */
	SR_HDR_NUL,        /* NUL in a header block */
	SR_HDR_BARE_CR,    /* bare CR in a header block */
	SR_HDR_8BIT,       /* raw 8-bit header bytes without SMTPUTF8 */
	SR_UNSCANNABLE,    /* an archive too large or too broken to list */
	SR_INTERNAL,       /* out of memory, time budget: always tempreject */
	SR_MAX
};

struct scan_conf {
	struct hm_mime_limits lim;
	enum scan_action action[SR_MAX];
	char **blocked;          /* lowercased extensions without the dot */
	size_t nblocked;
	bool scan_archives;
	size_t max_archive_size; /* bytes of one archive kept for listing */
	unsigned archive_depth;  /* archives inside archives */
	size_t max_archive_inflate; /* bytes libarchive may decompress per message */
	unsigned time_budget;    /* seconds per message */
	char *auth_socket;       /* Dovecot auth-master listener for homemail_user_exists */
	unsigned auth_timeout_ms;
	/* DMARC (scan_dmarc.c, docs/mailauth.md); runs only when the DATA ACL
	 * set $acl_m_hm_mailauth to "check" */
	bool dmarc;
	char *authserv_id;       /* "" = Exim's $primary_hostname */
	char *dmarc_psl;         /* public suffix list */
	char *dmarc_history;     /* directory for aggregate-report data, "" = off */
	size_t dmarc_history_max; /* bytes per day file */
};

#define SCAN_AUTH_SOCKET_DEFAULT "/run/dovecot/auth-exim-master"

/* scan_conf_defaults - the built-in configuration (documented in docs/scan.md) */
int scan_conf_defaults(struct scan_conf *c);
/* scan_conf_load - read PATH (key = value lines) over the defaults.  A missing
 * file (ENOENT) gives the defaults and returns 1.  On any other problem
 * returns -1 with a one-line message naming the file and line in err. */
int scan_conf_load(const char *path, struct scan_conf *c, char *err, size_t errsz);
void scan_conf_free(struct scan_conf *c);
/* scan_conf_path - $HOMEMAIL_SCAN_CONF or the compiled-in default */
const char *scan_conf_path(void);

const char *scan_action_name(enum scan_action a);
const char *scan_rule_name(enum scan_rule r);

struct scan_opts {
	bool smtputf8;           /* the message came with SMTPUTF8: 8-bit headers are fine */
};

struct scan_verdict {
	enum scan_action action;
	enum scan_rule rule;     /* the rule that decided (when action > SCAN_ACCEPT) */
	char *reason;            /* short, cleaned, for the SMTP reply; "" on accept */
	char *header;            /* X-Homemail-Scan value (without the name) */
	char *log;               /* one line for the mainlog */
	size_t parts;
	unsigned depth;
};

struct scan;

/* scan_new - an engine for one message */
struct scan *scan_new(const struct scan_conf *c, const struct scan_opts *o);
/* scan_feed - next bytes of the message (headers, blank line, body).
 * Returns 0 go on, 1 verdict already final (the caller may stop feeding), -1 ENOMEM. */
int scan_feed(struct scan *s, const char *data, size_t len);
/* scan_feed_fd - feed what fd holds, from its offset to end of file, in
 * reads of at most 64 KiB (EINTR retried), stopping early once scan_feed
 * says the verdict is final.  Returns 0 fed, -1 ENOMEM (no read buffer),
 * -2 a read failed (errno). */
int scan_feed_fd(struct scan *s, int fd);
/* scan_finish - end of message; computes the verdict (never fails: internal
 * errors become a tempreject verdict) */
const struct scan_verdict *scan_finish(struct scan *s);
void scan_free(struct scan **s);

/* scan_name_blocked - check every reading of one attachment name (bytes, may
 * hold NUL) against the blocked list.  Returns the blocked extension (points
 * into c->blocked) or NULL; *suspicious_r gets a static description of bidi /
 * NUL / control tricks found in the name, or NULL. */
const char *scan_name_blocked(const struct scan_conf *c, const char *name, size_t len,
			      const char **suspicious_r);

/* scan_archive_magic - data starts like a zip, 7z or RAR archive */
bool scan_archive_magic(const void *data, size_t len);

/* what one message may still spend on archives: every byte libarchive
 * produces (any view, any nesting level, members read or skipped) counts
 * against inflate_left, the sizes of members skipped without decompressing
 * against declared_left (both start at max_archive_inflate); the deadline
 * is checked between reads of at most 64 KiB of output and in every read
 * callback (at most 16 KiB of input). */
struct scan_budget {
	uint64_t inflate_left;    /* bytes, shared by all archives of the message */
	uint64_t declared_left;   /* sizes declared by members skipped unread */
	struct timespec deadline; /* CLOCK_MONOTONIC */
	bool timed_out;           /* the deadline passed during a listing */
	const char *why;          /* static: what ran out when 4 was returned */
};

/* scan_archive_names - list the member names of an archive held in memory and
 * call fn for each (also inside nested archives up to c->archive_depth).
 * fn returns 0 to go on or 2 to stop.  libarchive is loaded on first use.
 * Returns 0 listed, 1 unreadable / not an archive, 2 stopped by fn,
 * 3 libarchive or libzip cannot be loaded, 4 listed only in part: a budget ran out
 * (decompression, members of one view, time) or a nested archive could not
 * be read, b->why says which (every name seen was passed to fn), -1 ENOMEM. */
int scan_archive_names(const struct scan_conf *c, const void *data, size_t len,
		       struct scan_budget *b,
		       int (*fn)(void *ctx, const char *name, size_t len), void *ctx);

#endif
