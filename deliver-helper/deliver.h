/* deliver.h — homemail-deliver's internal API, and the seam for filtering.
 *
 * NAME
 *   deliver - the local delivery agent Exim's pipe transport runs
 *
 * FLOW (deliver_main.c)
 *   options/env -> config -> user lookup (userdb socket / passwd) -> drop to
 *   the user -> read header (hm_msgin) -> loop check -> spool the whole
 *   message ONCE into the INBOX Maildir's tmp/ (with Return-Path and
 *   Delivered-To prepended), fsync -> deliver_filter(ctx) decides where it
 *   goes, calling deliver_store() for each copy -> deferred: take back this
 *   run's copies, exit 75 -> if nothing was stored, discarded or rejected:
 *   fall back to INBOX -> unlink the spool -> exit.
 *
 * THE FILTER SEAM (deliver_filter.c, one function)
 *   int deliver_filter(struct deliver_ctx *ctx);
 *   The stock body does the implicit keep: deliver_store(ctx, ctx->mailbox
 *   or "INBOX", NULL, 0).  The Sieve glue replaces the body (it finds the
 *   script through ctx->sieve_*), the junk-list check adds a call there.
 *   Everything a filter may need is in struct deliver_ctx: the envelope,
 *   the parsed header (hm_header.h), a read-only fd of the spooled message
 *   (read it with pread(); the body starts at ctx->body_offset), the sizes.
 *   Outcomes a filter reports:
 *     deliver_store()   file a copy (folder created when missing; flags are
 *                       IMAP names: \Seen \Answered \Flagged \Deleted \Draft
 *                       or keywords).  Each store is a hard link of the one
 *                       spooled file, so N stores cost N links, not N copies.
 *     deliver_discard() the message was deliberately not kept (Sieve discard,
 *                       redirect without keep): exit 0 with nothing stored.
 *     deliver_reject()  refuse it with a reason (Sieve reject): exit 77,
 *                       reason on stderr, Exim bounces it.
 *     deliver_defer()   a step that cannot be undone failed for now (a
 *                       redirect sendmail did not take): the copies stored
 *                       in this run are taken back and the exit is 75, so
 *                       Exim's retry does the whole delivery once.
 *   Return value of deliver_filter: 0 when it did what it meant to (even if
 *   a store failed and it chose to go on), -1 on an internal failure.  The
 *   main flow never loses the message: if the filter stored nothing and did
 *   not discard or reject, it stores into INBOX itself; if that fails too the
 *   exit is 75 (or 77 for a full mailbox with quota_full = reject).
 *
 * RETURN CONVENTION of deliver_store: 0 ok, DELIVER_EFOLDER (bad folder name:
 *   the caller may fall back to INBOX), DELIVER_EQUOTA (over quota),
 *   DELIVER_ETEMP (I/O or other temporary failure; errno kept).
 */
#ifndef DELIVER_H
#define DELIVER_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "hm_header.h"

/* sysexits.h values used as the contract with Exim (design.md) */
#define DELIVER_EX_OK       0
#define DELIVER_EX_USAGE    64
#define DELIVER_EX_NOUSER   67
#define DELIVER_EX_SOFTWARE 70
#define DELIVER_EX_TEMPFAIL 75
#define DELIVER_EX_NOPERM   77

#define DELIVER_ETEMP   (-1)
#define DELIVER_EFOLDER (-2)
#define DELIVER_EQUOTA  (-3)

struct deliver_priv;

struct deliver_ctx {
	/* (members ordered by alignment: pointers and sizes, ids, flags) */
	/* ---- envelope: validated, never NULL ("" when unknown) ---- */
	const char *sender;         /* envelope sender; "" for the null sender <> */
	const char *recipient;      /* final recipient address (Delivered-To) */
	const char *orig_recipient; /* -a, else the recipient */
	const char *user;           /* login name the mail is delivered for */
	const char *home;           /* home directory ("" when unknown) */
	const char *maildir;        /* Maildir root path */
	const char *mailbox;        /* -m MAILBOX (UTF-8), or NULL: implicit keep = INBOX */
	const char *const *keep_flags; /* --flags: IMAP flags/keywords for the implicit keep */
	size_t n_keep_flags;

	/* ---- filtering options ---- */
	const char *sieve_path;     /* script to run: --sieve FILE, else userdb "sieve",
	                               else config `sieve` (default ~/.dovecot.sieve);
	                               NULL with --no-sieve.  May not exist. */
	const char *sieve_dir;      /* ~/sieve (ManageSieve's script directory) */

	/* ---- the message (as spooled, i.e. with our prepended fields) ---- */
	const struct hm_header *hdr;    /* parsed header block */
	unsigned long long msg_size;    /* bytes of the spooled file */
	unsigned long long msg_size_received; /* bytes as received on stdin, what
	                                         Sieve's size test measures (no
	                                         fields of ours, LF line ends) */
	unsigned long long msg_vsize;   /* size with CRLF line ends */
	unsigned long long body_offset; /* first body byte in the spooled file */
	const char *message_id;         /* cleaned for logs, "" when missing */

	/* ---- outcome, updated by deliver_store/discard/reject ---- */
	char *reject_reason;        /* malloc'd, set by deliver_reject */
	char *defer_reason;         /* malloc'd, set by deliver_defer (may be NULL on ENOMEM) */
	struct deliver_priv *priv;  /* main flow's state: Maildir, spool, quota */

	uid_t uid;                  /* the user's, as the delivery runs */
	gid_t gid;
	int msg_fd;                 /* the message, read-only; use pread(), offset not shared */
	unsigned n_stored;
	unsigned n_failed;

	bool no_sieve;              /* --no-sieve: run no script at all */
	bool sieve_explicit;        /* --sieve FILE was given (tests, benchmarks) */
	bool reject_exit;           /* -e: a reject exits 77 with the reason on stderr */
	bool discarded;
	bool quota_hit;             /* some store failed for quota */
	bool deferred;              /* deliver_defer was called: exit 75 */
	char stored_folders[512];   /* for the log line */
};

/* deliver_filter - decide where the message goes (deliver_filter.c) */
int deliver_filter(struct deliver_ctx *ctx);

/* deliver_store - file a copy of the spooled message into folder_utf8
 * ("INBOX" or a Maildir++ name like "Lists.Debian"), with IMAP flags */
int deliver_store(struct deliver_ctx *ctx, const char *folder_utf8,
		  const char *const flags[], size_t nflags);

/* deliver_discard - the filter deliberately keeps no copy */
void deliver_discard(struct deliver_ctx *ctx);

/* deliver_reject - refuse the message with reason (exit 77, Exim bounces) */
void deliver_reject(struct deliver_ctx *ctx, const char *reason);

/* deliver_unstore_all - unlink every copy deliver_store() linked in this
 * run (and take them out of maildirsize), so that a delivery that ends in
 * 75 leaves nothing visible that the retry would store again.  Returns the
 * number of copies that could not be removed (logged). */
size_t deliver_unstore_all(struct deliver_ctx *ctx);

/* deliver_defer - give up for now (exit 75): what this run stored is taken
 * back (see above); reason goes to stderr and the log */
void deliver_defer(struct deliver_ctx *ctx, const char *reason);

/* deliver_log - one line to syslog (mail facility), prio as in syslog(3);
 * untrusted text must already be cleaned (hm_log_clean) by the caller */
void deliver_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- internal to homemail-deliver (not for filters) ---- */

struct deliver_conf {
	char *auth_socket;          /* userdb socket path */
	int auth_timeout_ms;
	bool userdb_socket;         /* look users up on the socket */
	bool userdb_passwd;         /* fall back to passwd when NOTFOUND / as only source */
	bool lookup_own_user;       /* without -d: ask the socket about ourselves too */
	char *mail_location;        /* default "maildir:~/Maildir" */
	char *quota_rule;           /* default rule when userdb gives none ("" = none) */
	bool quota_reject;          /* quota_full = reject (77) instead of tempfail (75) */
	unsigned loop_max;          /* refuse when Delivered-To has the recipient this often */
	size_t max_header;          /* header bytes held in memory */
	char *sieve;                /* default script, "~/.dovecot.sieve" */
	char *sieve_dir;            /* "~/sieve" */
	char *replication_notify;   /* replicator's notify fifo, "" = off (deliver_notify.c) */
	char *replication_notify_virtual; /* its listener for virtual accounts' owner, "" = none */
};

/* deliver_conf_load - defaults, then path's "key = value" lines (a missing
 * file is fine only when !required).  Returns 0, or -1 with err filled
 * (then nothing is left to free; deliver_conf_free is harmless anyway). */
int deliver_conf_load(struct deliver_conf *c, const char *path, bool required,
		      char *err, size_t errsize);
void deliver_conf_free(struct deliver_conf *c);

/* deliver_expand_path - expand ~ and %u %n %d %h %% in s for user/home.
 * Returns malloc'd string or NULL (ENOMEM / EINVAL). */
char *deliver_expand_path(const char *s, const char *user, const char *home);

/* deliver_sieve_location - a userdb/config `sieve` value in Pigeonhole's
 * location syntax ([file:]PATH[;active=PATH][;name=..][;bindir=..], "~/"
 * and %u %n %d %h expanded) -> the script to run (*script_r) and the
 * script directory (*dir_r, NULL when PATH names the script itself), both
 * malloc'd.  Returns 0, or -1 with err set (unsupported type, unknown
 * option, relative path). */
int deliver_sieve_location(const char *loc, const char *user, const char *home,
			   char **script_r, char **dir_r, char *err, size_t errsize);

/* deliver_valid_address - envelope address check: bounded, no control
 * characters or spaces outside quotes; "<>" and "" mean the null sender. */
bool deliver_valid_address(const char *a);

#endif
