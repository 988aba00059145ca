/* hm_maildir.h — the one Maildir writer of homemail (Maildir++ as Dovecot reads it).
 *
 * NAME
 *   hm_maildir - spool a message once, then link it into Maildir++ folders
 *
 * SYNOPSIS
 *   struct hm_maildir md;
 *   hm_maildir_open(&md, "/home/u/Maildir", true);
 *   struct hm_spool sp;
 *   hm_maildir_spool_create(&md, &sp);      write(sp.fd, ...); sp.size/vsize = ...
 *   hm_maildir_spool_sync(&sp);             fsync, the data is safe now
 *   struct hm_mfolder f;
 *   hm_maildir_folder_open(&md, "Archive.2026", true, &f);
 *   hm_maildir_keywords(&f, kw, nkw, letters);   (only when keywords are set)
 *   hm_maildir_store(&md, &f, &sp, "FS" letters, name, sizeof name);
 *   hm_maildir_folder_close(&f);
 *   hm_maildir_spool_discard(&md, &sp);     unlink tmp/ name once stored
 *   hm_maildir_close(&md);
 *
 * DESCRIPTION
 *   Layout (Dovecot's Maildir++, default '.' separator): the root holds
 *   tmp/ new/ cur/ for INBOX; folder "A.B" lives in ".A.B/" with its own
 *   tmp/ new/ cur/ and an empty `maildirfolder` file; the on-disk name is the
 *   IMAP modified UTF-7 of the UTF-8 folder name (hm_mutf7).  Directories are
 *   created 0700, files 0600.
 *
 *   Unique names: `<secs>.M<usec>P<pid>Q<n>.<host>` (host with '/', ':' and
 *   ',' escaped as \057 \072 \054), final names get `,S=<size>,W=<vsize>`
 *   and, in cur/, `:2,<flags>` with the flag letters in ASCII order
 *   (D F R S T, then keyword letters a-z).  No flags -> new/.
 *
 *   Safety: the message is written once into the root's tmp/, fsync'd, and
 *   each store is a hard link (linkat) into the target's new/ or cur/ followed
 *   by an fsync of that directory; when a link is impossible (EXDEV, EPERM,
 *   EMLINK, ENOTSUP) the store copies into the folder's tmp/, fsyncs and
 *   renames.  Every directory is opened with O_DIRECTORY|O_NOFOLLOW relative
 *   to the root fd, every file with O_NOFOLLOW, so a symlink planted inside
 *   the Maildir is never followed (the root path itself may be a symlink).
 *   Nothing becomes visible in new/ or cur/ before it is complete.
 *
 *   Stale tmp/ files: hm_maildir_tmp_clean, called by the LDA for every
 *   tmp/ it opens, removes what a killed writer left (see below).
 *
 *   Keywords: `dovecot-keywords` in the folder ("<idx> <name>" lines,
 *   idx 0..25 = letters a..z), updated under Dovecot's own dotlocks
 *   (dovecot-uidlist.lock, then dovecot-keywords.lock renamed over the file).
 *   Only 26 keywords fit; more are dropped (reported through *dropped_r).
 *
 * RETURNS
 *   0 ok, -1 and errno set (EINVAL for a folder name that is not allowed,
 *   ENOSPC/EDQUOT/EIO... from the system).  Nothing logs or exits.
 */
#ifndef HM_MAILDIR_H
#define HM_MAILDIR_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define HM_MAILDIR_NAME_MAX 256
#define HM_MAILDIR_MAX_KEYWORDS 26

struct hm_maildir {
	int root_fd;
	int tmp_fd;                 /* root tmp/ */
	int new_fd, cur_fd;         /* root new/ cur/ (INBOX borrows all four) */
	char *root;                 /* path, for error messages */
	char host[128];             /* escaped host name */
	unsigned seq;               /* Q<n> */
	long pid;
};

struct hm_mfolder {
	int fd;                     /* folder dir (INBOX: the root's, borrowed) */
	int tmp_fd, new_fd, cur_fd;
	bool is_inbox;              /* fds borrowed from struct hm_maildir */
	char dir[HM_MAILDIR_NAME_MAX]; /* "." or ".A.B" (modified UTF-7) */
};

struct hm_spool {
	int fd;                     /* O_RDWR, -1 after discard */
	char name[HM_MAILDIR_NAME_MAX];
	unsigned long long size;    /* bytes written (caller keeps it) */
	unsigned long long vsize;   /* size with CRLF line ends (caller keeps it) */
};

/* hm_maildir_open - open (create: mkdir the root 0700 if missing, parent must
 * exist) and make sure tmp/ new/ cur/ exist.  md needs no set-up before;
 * hm_maildir_close is safe after a failed open. */
int hm_maildir_open(struct hm_maildir *md, const char *path, bool create);
void hm_maildir_close(struct hm_maildir *md);

/* hm_maildir_unique - the next unique base name into buf */
int hm_maildir_unique(struct hm_maildir *md, char *buf, size_t size);

/* hm_maildir_folder_dir - map a UTF-8 folder name to its directory name:
 * "INBOX" (any case) -> ".", "A.B" -> ".A.B" in modified UTF-7.
 * Refused (EINVAL): empty, '/', '~' first, control characters, invalid
 * UTF-8, empty hierarchy levels ("", ".A", "A.", "A..B"), "." or ".."
 * levels, too long: every name Dovecot's Maildir++ layout refuses. */
int hm_maildir_folder_dir(const char *folder_utf8, char *dir, size_t size);

/* hm_maildir_folder_open - open a folder (by UTF-8 name), creating it (dir,
 * tmp/ new/ cur/, maildirfolder) when create is set. ENOENT when missing.
 * INBOX borrows md's open directories: f is valid while md is open. */
int hm_maildir_folder_open(struct hm_maildir *md, const char *folder_utf8, bool create,
			   struct hm_mfolder *f);
void hm_maildir_folder_close(struct hm_mfolder *f);

/* hm_maildir_spool_create - create tmp/<unique> (O_RDWR|O_EXCL|O_NOFOLLOW, 0600) */
int hm_maildir_spool_create(struct hm_maildir *md, struct hm_spool *sp);
/* hm_maildir_spool_sync - fsync the spooled data */
int hm_maildir_spool_sync(struct hm_spool *sp);
/* hm_maildir_spool_discard - close and unlink the tmp/ file (after storing, or on error) */
void hm_maildir_spool_discard(struct hm_maildir *md, struct hm_spool *sp);

/* hm_maildir_store - make the spooled message appear in folder f, with the
 * flag letters (may be NULL/""; sorted and de-duplicated here).  The final
 * file name goes to name_r.  Durable when it returns 0. */
int hm_maildir_store(struct hm_maildir *md, struct hm_mfolder *f, const struct hm_spool *sp,
		     const char *flags, char *name_r, size_t name_size);

/* hm_maildir_stored_in - "cur" or "new": the sub-directory of its folder
 * where hm_maildir_store put the file it named (cur/ exactly when flags
 * were given, which the ":2," info of the name records) */
const char *hm_maildir_stored_in(const char *name);

/* Stale files in tmp/ (maildir(5): "not accessed for 36 hours"; Dovecot's
 * rule, the same numbers: scan tmp/ when its atime is 8 hours old, set the
 * atime afterwards when the mount did not). */
#define HM_MAILDIR_TMP_STALE_SECS (36 * 60 * 60)
#define HM_MAILDIR_TMP_SCAN_SECS (8 * 60 * 60)
#define HM_MAILDIR_TMP_SCAN_MAX 1000      /* entries examined per call */
#define HM_MAILDIR_TMP_REMOVE_MAX 100     /* files unlinked per call */

struct hm_tmpclean {
	bool scanned;               /* the stamp said it was time, tmp/ was read */
	bool complete;              /* every entry was examined */
	unsigned examined;          /* entries looked at (. and .. not counted) */
	unsigned removed;           /* stale files unlinked */
	unsigned failed;            /* stale files whose unlink failed */
};

/* hm_maildir_tmp_clean - remove stale files from the tmp/ directory tmp_fd:
 * regular files owned by the effective uid whose atime, mtime and ctime are
 * all older than now - HM_MAILDIR_TMP_STALE_SECS (a file a delivery is still
 * writing has a fresh mtime and ctime; ctime cannot be set back, so
 * touch/utime cannot make a live file look stale).  Cheap when there is
 * nothing to do: one fstat(2) of tmp/, and a scan only when tmp/'s atime
 * (the "last scanned" stamp Dovecot shares) is HM_MAILDIR_TMP_SCAN_SECS old.
 * Bounded: at most HM_MAILDIR_TMP_SCAN_MAX entries examined (one fstatat
 * each) and HM_MAILDIR_TMP_REMOVE_MAX files unlinked (an unlink of a synced
 * file on ext4 costs up to ~1 ms under load); a scan cut short that removed
 * something leaves the stamp old so the next call goes on.  Never follows
 * a symlink: fstatat/unlinkat relative to tmp_fd with AT_SYMLINK_NOFOLLOW,
 * and only S_ISREG entries are unlinked.  now is a
 * parameter so that tests can age files.  st may be NULL.
 * Returns 0 (also when it was not time to scan), or -1 and errno when tmp/
 * could not be examined at all; a file that cannot be removed is counted
 * in st->failed and skipped. */
int hm_maildir_tmp_clean(int tmp_fd, time_t now, struct hm_tmpclean *st);

/* hm_maildir_flag_letter - Maildir letter for an IMAP system flag
 * (\Seen S, \Answered R, \Flagged F, \Deleted T, \Draft D; case-insensitive);
 * 0 when the name is not a system flag, -1 for \Recent and other '\' names. */
int hm_maildir_flag_letter(const char *imap_flag);

/* hm_imap_atom_valid - the len bytes at s are a non-empty IMAP flag-keyword
 * atom (RFC 3501 9: atom-char except "]", no "\\" anywhere) */
bool hm_imap_atom_valid(const char *s, size_t len);

/* hm_maildir_keyword_valid - true for an IMAP atom usable as a keyword
 * (hm_imap_atom_valid, at most 128 bytes) */
bool hm_maildir_keyword_valid(const char *kw);

/* hm_maildir_keywords - letters (a-z) for keywords kw[0..n) in folder f,
 * adding missing ones to dovecot-keywords.  letters gets a NUL-terminated
 * string (size >= 27).  *dropped_r counts keywords that did not fit. */
int hm_maildir_keywords(struct hm_mfolder *f, const char *const kw[], size_t n,
			char *letters, size_t letters_size, size_t *dropped_r);

#endif
