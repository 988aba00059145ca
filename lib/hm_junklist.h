/* hm_junklist.h — the per-user blocked/trusted sender lists.
 *
 * NAME
 *	hm_junklist - what a user taught the server about senders
 * DESCRIPTION
 *	The Dovecot plugin (lib90_homemail_junk_plugin.so) records the sender
 *	of every message a user moves into Junk ("blocked") or out of Junk
 *	("trusted"); homemail-deliver reads the same file before the user's
 *	Sieve script.  One file holds both lists, in the root of the user's
 *	Maildir, so one atomic rename replaces both and an address is never
 *	blocked and trusted at once:
 *
 *	    <maildir>/homemail-junklist        the lists (format below)
 *	    <maildir>/homemail-junklist.lock   flock()ed by writers, never removed
 *	    <maildir>/homemail-junklist.tmp    the next version, renamed over
 *
 *	File format 1 (text, one entry a line, LF or CRLF):
 *	    # comment lines and blank lines are ignored
 *	    B <seconds since the epoch> <address>      blocked sender
 *	    T <seconds since the epoch> <address>      trusted sender
 *	The time is when the user last taught that address.  Addresses are
 *	stored lower-cased, without angle brackets, at most 254 bytes, no
 *	whitespace or control characters; "@domain" matches the whole domain
 *	(written by hand; the plugin records full addresses only).
 *	Parsing is tolerant: a damaged line (bad kind, time, address, over
 *	1024 bytes, NUL byte) is skipped and counted; for an address listed
 *	twice the later line wins.  Writers keep at most max_per_kind entries
 *	in each list, dropping the oldest first.
 * RETURNS
 *	One convention for the module: 0 ok, -1 and errno set.
 */
#ifndef HM_JUNKLIST_H
#define HM_JUNKLIST_H
#include <stddef.h>
#include <stdint.h>

#define HM_JUNKLIST_FILE        "homemail-junklist"
#define HM_JUNKLIST_LOCK        "homemail-junklist.lock"
#define HM_JUNKLIST_TMP         "homemail-junklist.tmp"
#define HM_JUNKLIST_ADDR_MAX    254           /* RFC 5321 path limit minus <> */
#define HM_JUNKLIST_LINE_MAX    1024          /* longer lines are damage */
#define HM_JUNKLIST_DEFAULT_MAX 5000          /* entries per list */
#define HM_JUNKLIST_HARD_MAX    50000         /* no setting may exceed this */
#define HM_JUNKLIST_PARSE_MAX   (4 * HM_JUNKLIST_HARD_MAX) /* lines kept on load */
#define HM_JUNKLIST_FILE_MAX    (16u * 1024 * 1024) /* bytes read on load */
#define HM_JUNKLIST_LOCK_WAIT_MS 10000        /* default writer lock wait */

enum hm_junk_kind {
	HM_JUNK_NONE = 0,
	HM_JUNK_BLOCKED = 'B',
	HM_JUNK_TRUSTED = 'T',
};

struct hm_junk_entry {
	const char *addr;   /* normalised; points into the list's storage */
	int64_t stamp;      /* seconds since the epoch */
	uint32_t seq;       /* order of arrival: the later one wins */
	char kind;          /* HM_JUNK_BLOCKED or HM_JUNK_TRUSTED */
	char owned;         /* addr was malloc'd by hm_junklist_set */
};

struct hm_junklist {
	struct hm_junk_entry *v;
	size_t n, cap;
	char *data;         /* file contents the parsed entries point into */
	size_t damaged;     /* lines skipped as damaged (or past the caps) */
	uint32_t next_seq;
	int sorted;         /* v sorted by addr, one entry per addr */
};

struct hm_junk_change {
	const char *addr;          /* raw address; normalised by the update */
	enum hm_junk_kind kind;    /* list the address moves to */
};

struct hm_junklist_opts {
	size_t max_per_kind;       /* 0 = HM_JUNKLIST_DEFAULT_MAX; capped at HARD_MAX */
	int lock_wait_ms;          /* 0 = HM_JUNKLIST_LOCK_WAIT_MS */
	int64_t now;               /* 0 = time(NULL); tests pin the clock */
	int no_fsync;              /* 1 = skip fsync (benchmarks only) */
	char **text_r;             /* non-NULL: gets the text written (malloc'd,
				    * NUL-terminated; caller frees), or NULL
				    * when nothing was written */
	size_t *text_len_r;        /* its length (with text_r) */
};

/* hm_junk_addr_normalize - canonical list form of an address (angle
 * brackets and surrounding blanks removed, ASCII lower-cased).  Accepts
 * local@domain, and @domain when allow_domain.  dst must hold
 * HM_JUNKLIST_ADDR_MAX + 1 bytes.  Returns 0, or -1 (EINVAL: empty, null
 * sender "<>", no '@', empty domain, blanks/control bytes inside, too long). */
int hm_junk_addr_normalize(const char *addr, size_t len, int allow_domain,
			   char *dst, size_t dstsize);

/* hm_junk_sender_addr - the sender address to record from a From: or
 * Return-Path: header value (unfolded or raw): the first mailbox that
 * hm_address parses as local@domain and that normalises, in list form.
 * Display names, comments, groups and encoded words are handled by
 * hm_address; a quoted local part with blanks is not recordable.
 * dst must hold HM_JUNKLIST_ADDR_MAX + 1 bytes.  Returns 0, or -1 (EINVAL
 * no usable address, e.g. "<>" or garbage; ENOMEM). */
int hm_junk_sender_addr(const char *value, size_t len, char *dst, size_t dstsize);

/* hm_junklist_init - an empty list */
void hm_junklist_init(struct hm_junklist *l);

/* hm_junklist_free - release everything; the list is empty again */
void hm_junklist_free(struct hm_junklist *l);

/* hm_junklist_parse - tolerant parse of file contents; takes ownership of
 * data (malloc'd, len bytes, may be modified).  Returns 0, -1 ENOMEM. */
int hm_junklist_parse(struct hm_junklist *l, char *data, size_t len);

/* hm_junklist_load - read <dir>/homemail-junklist without locking (writers
 * replace it atomically).  A missing file is an empty list.  Refuses a
 * symlink or non-regular file (ELOOP / EINVAL).  Returns 0, or -1 and errno. */
int hm_junklist_load(struct hm_junklist *l, const char *dir);

/* hm_junklist_lookup - the list holding addr (exact address first, then
 * "@domain"), HM_JUNK_NONE when neither.  *matched_r (may be NULL) gets the
 * entry that matched.  addr is normalised here; the list must be loaded
 * or finished (hm_junklist_finish). */
enum hm_junk_kind hm_junklist_lookup(const struct hm_junklist *l, const char *addr,
				     const char **matched_r);

/* hm_junklist_set - put addr (normalised form) on list kind, or remove it
 * with HM_JUNK_NONE, as of stamp.  Call hm_junklist_finish before lookups.
 * Returns 0, -1 (EINVAL bad address, ENOMEM, EOVERFLOW too many entries). */
int hm_junklist_set(struct hm_junklist *l, const char *addr, enum hm_junk_kind kind,
		    int64_t stamp);

/* hm_junklist_finish - sort and keep only the latest entry of each address */
void hm_junklist_finish(struct hm_junklist *l);

/* hm_junklist_trim - keep at most max entries of each kind, newest first */
void hm_junklist_trim(struct hm_junklist *l, size_t max);

/* hm_junklist_count - number of entries of one kind (after finish) */
size_t hm_junklist_count(const struct hm_junklist *l, enum hm_junk_kind kind);

/* hm_junklist_format - the file text for l (finished) into a new malloc'd
 * string.  Returns NULL and errno on failure. */
char *hm_junklist_format(const struct hm_junklist *l, size_t *len_r);

/* hm_junklist_update - lock <dir>/homemail-junklist.lock, load, apply the n
 * changes (in order), trim, write the temp file, fsync, rename, fsync dir,
 * unlock.  Changes with an unusable address are skipped and counted in
 * *skipped_r (may be NULL).  Returns 0, or -1 and errno (ETIMEDOUT when the
 * lock stays busy; the file is then unchanged). */
int hm_junklist_update(const char *dir, const struct hm_junk_change *c, size_t n,
		       const struct hm_junklist_opts *o, size_t *skipped_r);

/* hm_junklist_merge - merge another copy of the same user's lists (file
 * format 1, e.g. the peer host's copy: docs/replication.md) into
 * <dir>/homemail-junklist, under the writers' lock.  Per address the entry
 * taught later wins (equal times: trusted wins, the same on every host);
 * stamps in the future count as now; then each list is trimmed to
 * max_per_kind.  data (len bytes, at most HM_JUNKLIST_FILE_MAX, else
 * EFBIG) is parsed as a file is, damaged lines skipped.  The file is
 * rewritten only when something was taken; *taken_r (may be NULL) gets the
 * number of entries taken.  Returns 0, or -1 and errno. */
int hm_junklist_merge(const char *dir, const char *data, size_t len,
		      const struct hm_junklist_opts *o, size_t *taken_r);

#endif
