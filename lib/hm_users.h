/* hm_users.h — the homemail virtual users file and password hashes.
 *
 * /etc/homemail/users holds accounts that need no Unix account.  One account
 * per line, seven colon-separated fields (more are reserved and kept):
 *
 *   address:hash:uid:gid:home:quota:state
 *
 *   address  local@domain, stored lower-case (RFC 5321 dot-atom, conservative)
 *   hash     crypt(3) string, optionally with a Dovecot {SCHEME} prefix
 *   uid/gid  decimal, never 0
 *   home     absolute path, no "." or ".." components, no ':'
 *   quota    empty, "0" or "-" for none, else bytes with optional k/M/G/T
 *   state    empty or "active", "disabled" (login refused, mail still
 *            accepted), "locked" (login refused by `homemail-user lock`),
 *            "closed" (login refused and mail refused at RCPT)
 *
 * An account whose home equals, contains or lies inside the home of an
 * earlier account is refused (one mailbox, one owner).
 * Blank lines and lines starting with '#' are comments.  A malformed line is
 * reported (with its line number) through the warn callback and skipped; the
 * rest of the file is still served.  Rewrites keep comments and malformed
 * lines verbatim and happen under an flock on "<path>.lock", through a
 * temporary file, fsync and rename, so readers see the old or the new file.
 *
 * The password part verifies and generates crypt(3) hashes with libxcrypt
 * (crypt_rn, crypt_gensalt_rn): yescrypt, bcrypt, SHA512-CRYPT, SHA256-CRYPT
 * are strong; everything else (DES, MD5-CRYPT, PLAIN, ...) is weak and
 * refused unless allowed.
 *
 * Nothing here depends on Dovecot; nothing calls exit() or keeps static
 * result buffers.  Returns: 0 ok, -1 and errno set, unless stated otherwise.
 */
#ifndef HM_USERS_H
#define HM_USERS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HM_USERS_PATH_DEFAULT "/etc/homemail/users"
#define HM_USERS_MAX_LINE     4096            /* bytes per line, excluding LF */
#define HM_USERS_MAX_FILE     (64u << 20)     /* refuse larger files (EFBIG) */
#define HM_USERS_MAX_ADDRESS  254             /* RFC 5321 path limit */
#define HM_USERS_MAX_HOME     1024
#define HM_USERS_MAX_HOME_DEPTH 32            /* components of a home */
#define HM_PW_MAX_PLAIN       1024            /* longer passwords never match */
#define HM_PW_HASH_SIZE       384             /* = CRYPT_OUTPUT_SIZE */

enum hm_user_state {
	HM_USER_ACTIVE = 0,
	HM_USER_DISABLED,
	HM_USER_LOCKED,
	HM_USER_CLOSED,         /* logins and mail refused */
};

struct hm_user {
	char *address;          /* lower-case local@domain */
	char *hash;             /* as stored, may carry {SCHEME} */
	uid_t uid;
	gid_t gid;
	char *home;
	char *quota;            /* as written, "" when none */
	uint64_t quota_bytes;   /* 0 = no quota */
	enum hm_user_state state;
	char *extra;            /* fields after the 7th, verbatim, "" when none */
	unsigned int line;      /* 1-based line number in the file */
};

struct hm_users;

/* warn callback: one call per malformed line (msg has no newline) */
typedef void hm_users_warn_fn(void *ctx, const char *path, unsigned int line,
			      const char *msg);

/* hm_users_parse - parse a whole file image (may contain NULs: such lines are
 * malformed).  path is only used in warnings.  Never fails on bad lines. */
int hm_users_parse(const char *data, size_t len, const char *path,
		   hm_users_warn_fn *warn, void *ctx, struct hm_users **db_r);
/* hm_users_load - read and parse path (O_NOFOLLOW, regular file, at most
 * HM_USERS_MAX_FILE bytes).  Missing file: -1 ENOENT. */
int hm_users_load(const char *path, hm_users_warn_fn *warn, void *ctx,
		  struct hm_users **db_r);
/* hm_users_empty - a database with no lines (for a first `add`) */
struct hm_users *hm_users_empty(void);
void hm_users_free(struct hm_users **db);

/* hm_users_find - account by address (case-insensitive), NULL if absent */
const struct hm_user *hm_users_find(const struct hm_users *db, const char *address);
size_t hm_users_count(const struct hm_users *db);
/* hm_users_at - i-th valid account in file order (i < hm_users_count) */
const struct hm_user *hm_users_at(const struct hm_users *db, size_t i);
/* hm_users_malformed - number of malformed lines seen while parsing */
unsigned int hm_users_malformed(const struct hm_users *db);

/* In-memory edits (then hm_users_serialize / hm_users_modify writes them). */
int hm_users_add(struct hm_users *db, const struct hm_user *u);       /* EEXIST, EINVAL */
int hm_users_remove(struct hm_users *db, const char *address);        /* ENOENT */
int hm_users_set_hash(struct hm_users *db, const char *address, const char *hash);
int hm_users_set_state(struct hm_users *db, const char *address, enum hm_user_state st);
/* hm_users_set_extra - the fields after the 7th, verbatim ("" none; no
 * LF); EINVAL, ENOENT.  Field 8 holds password flags: lib/hm_users_expire.h */
int hm_users_set_extra(struct hm_users *db, const char *address, const char *extra);
/* hm_users_set_quota - quota as written ("" none); EINVAL, ENOENT */
int hm_users_set_quota(struct hm_users *db, const char *address, const char *quota);
/* hm_users_rename - new address and home for an account; EEXIST when the
 * address is taken, EINVAL when invalid or the home is another's */
int hm_users_rename(struct hm_users *db, const char *address, const char *new_address,
		    const char *new_home);
/* hm_users_home_conflict - the account (other than except) whose home
 * equals, contains or lies inside home; NULL when none */
const struct hm_user *hm_users_home_conflict(const struct hm_users *db, const char *home,
					     const char *except);
/* hm_users_serialize - the file image (malloc'd, NUL-terminated) */
char *hm_users_serialize(const struct hm_users *db, size_t *len_r);

/* hm_users_modify - lock "<path>.lock", load path fresh (missing = empty),
 * call fn; when fn returns 1 write the result atomically (same owner and
 * mode as the old file, 0600 root for a new one).  Returns fn's result
 * (0 = nothing written, 1 = written), or -1 and errno set (fn may return -1
 * with errno set to abort). */
typedef int hm_users_edit_fn(struct hm_users *db, void *ctx);
int hm_users_modify(const char *path, hm_users_edit_fn *fn, void *ctx,
		    hm_users_warn_fn *warn, void *wctx);
/* hm_users_write - write db to path atomically, as hm_users_modify does
 * (the caller must hold the lock). */
int hm_users_write(const char *path, const struct hm_users *db);

/* Validation helpers (also used by homemail-user). */
/* hm_users_normalize_address - validate and lower-case into dst[dstsize].
 * Returns 0, or -1 (EINVAL bad address, ENAMETOOLONG). */
int hm_users_normalize_address(const char *in, char *dst, size_t dstsize);
bool hm_users_valid_home(const char *home);
/* hm_users_parse_quota - "" "-" "0" → 0; N[kKmMgGtT] → bytes.  EINVAL, ERANGE */
int hm_users_parse_quota(const char *s, uint64_t *bytes_r);
const char *hm_user_state_name(enum hm_user_state st);
/* hm_user_state_parse - "", "active", "disabled", "locked", "closed"; -1 EINVAL */
int hm_user_state_parse(const char *s, enum hm_user_state *st_r);

/* ---- password hashes ---- */
enum hm_pw_scheme {
	HM_PW_UNKNOWN = 0,
	HM_PW_YESCRYPT,         /* $y$ */
	HM_PW_BCRYPT,           /* $2b$ $2a$ $2y$  (Dovecot: BLF-CRYPT) */
	HM_PW_SHA512_CRYPT,     /* $6$ */
	HM_PW_SHA256_CRYPT,     /* $5$ */
	HM_PW_NOLOGIN,          /* "*" or "!..." : no password ever matches */
	/* weak from here on */
	HM_PW_MD5_CRYPT,        /* $1$ */
	HM_PW_DES_CRYPT,        /* 13 chars, traditional */
	HM_PW_PLAIN,            /* {PLAIN} {CLEAR} {CLEARTEXT} */
	HM_PW_OTHER_WEAK,       /* any other Dovecot scheme (SHA1, SSHA, MD5 ...) */
};

struct hm_pw_info {
	enum hm_pw_scheme scheme;
	bool weak;
	const char *name;       /* canonical name: YESCRYPT, BLF-CRYPT, ... */
};

/* hm_pw_split - split "{SCHEME}rest" into scheme (copied into scheme_buf,
 * upper-case; "" when there is no prefix) and a pointer to rest.  A '{'
 * without a closing '}' is not a prefix. */
const char *hm_pw_split(const char *stored, char *scheme_buf, size_t bufsize);
/* hm_pw_identify - classify a hash given its (maybe empty/NULL) scheme name
 * and the text after the prefix.  -1 EINVAL when scheme and hash disagree
 * (e.g. {SHA512-CRYPT}$y$...) or the hash is not a valid crypt string. */
int hm_pw_identify(const char *scheme, const char *hash, struct hm_pw_info *info_r);
/* hm_pw_verify - check plain against scheme+hash.  Returns 1 match,
 * 0 mismatch, -1 error: EPERM weak scheme and !allow_weak, ENOTSUP a scheme
 * only Dovecot knows, EINVAL malformed hash, ENOMEM.  Constant-time compare. */
int hm_pw_verify(const char *plain, const char *scheme, const char *hash,
		 bool allow_weak);
/* hm_pw_hash - new hash of plain with a fresh salt and default cost
 * (strong schemes only, EINVAL otherwise); dst needs HM_PW_HASH_SIZE. */
int hm_pw_hash(const char *plain, enum hm_pw_scheme scheme, char *dst, size_t dstsize);
/* hm_pw_scheme_by_name - "yescrypt", "bcrypt"/"BLF-CRYPT", "SHA512-CRYPT",
 * "SHA256-CRYPT" (case-insensitive); HM_PW_UNKNOWN otherwise */
enum hm_pw_scheme hm_pw_scheme_by_name(const char *name);
const char *hm_pw_scheme_name(enum hm_pw_scheme scheme);
/* hm_pw_dummy - spend the time of one verification of a hash of this scheme
 * (used for unknown/locked users so that every failure costs the same). */
void hm_pw_dummy(const char *plain, enum hm_pw_scheme scheme);

#endif
