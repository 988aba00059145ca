/* authdb_core.h — the Dovecot-independent heart of the `homemail` passdb and
 * userdb: settings, account resolution (virtual users file and/or system
 * accounts), the password check with lockout, rehash and iteration.
 *
 * Three files implement it, one job each: authdb_args.c (defaults and the
 * args string), authdb_lookup.c (accounts: users file, NSS/shadow, userdb
 * fields, iteration) and authdb_verify.c (the password check: lockout, crypt,
 * rehash); authdb_private.h is what they share.
 * authdb_homemail.c is the thin Dovecot glue around it; keeping the policy
 * here lets unit tests (tests/unit/test_authdb_core.c) run it without a
 * Dovecot process.  Single-threaded use per struct hm_authdb (Dovecot's
 * processes are single-threaded); nothing static, nothing exits.
 */
#ifndef AUTHDB_CORE_H
#define AUTHDB_CORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hm_aliases.h"
#include "hm_domains.h"
#include "hm_lockout.h"
#include "hm_users.h"

#define HM_AUTHDB_MAX_LOGIN  254    /* longer login names are unknown users */
#define HM_AUTHDB_MAX_DOMAINS 16

enum hm_authdb_log_level { HM_AUTHDB_DEBUG, HM_AUTHDB_INFO, HM_AUTHDB_WARNING, HM_AUTHDB_ERROR };
typedef void hm_authdb_log_fn(void *ctx, enum hm_authdb_log_level level, const char *msg);
/* split "{SCHEME}hash": scheme into buf ("" if none), returns the bare hash
 * or NULL if malformed.  The Dovecot glue uses password_get_scheme(). */
typedef const char *hm_authdb_split_fn(const char *stored, char *scheme_buf, size_t bufsize);
/* verify a scheme only Dovecot knows (allow_weak only): 1/0/-1 */
typedef int hm_authdb_ext_verify_fn(void *ctx, const char *plain, const char *scheme,
				    const char *hash, const char *user);

struct hm_authdb_set {
	char users_path[256];           /* "" = no virtual accounts */
	bool system;                    /* serve system accounts */
	char group[64];                 /* system accounts must be members */
	unsigned long min_uid;          /* both kinds: uid >= min_uid */
	char domains[HM_AUTHDB_MAX_DOMAINS][128]; /* user@domain → system user */
	unsigned int ndomains;
	/* the domains and aliases tables ("" = none); by default next to the
	 * users file (docs/domains.md) */
	char domains_path[256];
	char aliases_path[256];
	bool domains_path_set, aliases_path_set;
	char delimiters[8];             /* recipient delimiters, "" = none */
	bool allow_weak;
	enum hm_pw_scheme rehash;       /* HM_PW_UNKNOWN = off */
	char lockout_path[256];         /* "" = no lockout */
	char ip_exempt[8][64];          /* addresses / IPv4 CIDRs never IP-locked */
	unsigned int nip_exempt;
	struct hm_lockout_policy policy;
	char mail[256];                 /* "" = no mail field; ~ = home */
	char sieve[256];                /* "" = no sieve field; ~ = home */
	bool blocking;
};

enum hm_authdb_result {
	HM_AUTHDB_OK = 0,
	HM_AUTHDB_MISMATCH,     /* wrong password, locked, disabled, weak: same answer */
	HM_AUTHDB_UNKNOWN,      /* no such account */
	HM_AUTHDB_INTERNAL,     /* temporary failure (I/O), answer tempfail */
};

struct hm_authdb_account {
	char name[HM_AUTHDB_MAX_LOGIN + 1];     /* canonical: address or Unix name */
	bool is_virtual;
	uid_t uid;
	gid_t gid;
	char home[HM_USERS_MAX_HOME + 1];
	uint64_t quota_bytes;
	bool login_disabled;            /* state disabled/locked, shadow expired */
	char disabled_why[64];
	bool mail_refused;              /* state closed: RCPT and delivery refused */
	bool pw_expired;                /* users file flag "expired": the password
					 * must be changed (docs/domains.md) */
	char *hash;                     /* malloc'd stored hash (wiped on free) */
	unsigned int line;              /* users file line (virtual) */
};

struct hm_authdb {
	struct hm_authdb_set set;
	hm_authdb_log_fn *log;
	hm_authdb_split_fn *split;
	hm_authdb_ext_verify_fn *ext_verify;
	void *log_ctx;
	/* cached users file */
	struct hm_users *users;
	dev_t users_dev;
	ino_t users_ino;
	off_t users_size;
	struct timespec users_mtime;
	bool users_loaded;
	/* cached domains and aliases tables (reloaded when they change) */
	struct hm_domains *domains;
	struct hm_aliases *aliases;
	struct hm_authdb_filestamp { dev_t dev; ino_t ino; off_t size; struct timespec mtime;
				     bool loaded; } domains_st, aliases_st;
	/* lockout state, opened on first use (auth-worker runs as root) */
	struct hm_lockout *lockout;
	time_t lockout_failed;          /* when opening last failed (retry later) */
};

void hm_authdb_set_default(struct hm_authdb_set *set);
/* hm_authdb_parse_args - "key=value key=value ..."; -1 with err set */
int hm_authdb_parse_args(const char *args, struct hm_authdb_set *set, char *err, size_t errlen);

void hm_authdb_init(struct hm_authdb *db, const struct hm_authdb_set *set,
		    hm_authdb_log_fn *log, void *log_ctx);
void hm_authdb_deinit(struct hm_authdb *db);

/* hm_authdb_lookup - resolve a login name.  1 found (free with
 * hm_authdb_account_free), 0 unknown, -1 internal error (logged). */
int hm_authdb_lookup(struct hm_authdb *db, const char *login, struct hm_authdb_account *acct_r);
void hm_authdb_account_free(struct hm_authdb_account *acct);

/* hm_authdb_route - what a recipient address is, for Exim (the userdb
 * lookup of service "smtp"): the resolver of lib/hm_route.c over the users
 * file, system accounts, the aliases and domains tables.  A closed account
 * is unknown here.  Returns 0 with route_r->kind set (ACCOUNT: acct_r
 * filled, free it with hm_authdb_account_free; ALIAS: route_r->targets;
 * FAIL: route_r->why; free with hm_route_free), -1 internal error (logged). */
int hm_authdb_route(struct hm_authdb *db, const char *address, struct hm_route *route_r,
		    struct hm_authdb_account *acct_r);

/* hm_authdb_verify - the full password check: the lockout reservation
 * (lock check + the attempt counted as a failure, one locked step, before
 * any password is looked at), crypt (always, also for unknown and locked
 * users), settling the reservation, optional rehash.  On OK canon_r gets
 * the canonical name.  The real reason is logged. */
enum hm_authdb_result hm_authdb_verify(struct hm_authdb *db, const char *login,
				       const char *password, const char *remote_ip,
				       char *canon_r, size_t canon_size);

/* hm_authdb_expand - template with "~" (at start or after '=' / ';' / ':')
 * replaced by home; -1 ENAMETOOLONG */
int hm_authdb_expand(const char *tmpl, const char *home, char *dst, size_t dstsize);
/* hm_authdb_quota_rule - "*:storage=<bytes>B" or "" when no quota */
void hm_authdb_quota_rule(uint64_t bytes, char *dst, size_t dstsize);

/* hm_authdb_list - every account name (virtual, then system), malloc'd
 * NULL-terminated array of malloc'd strings; NULL on error (logged). */
char **hm_authdb_list(struct hm_authdb *db);
void hm_authdb_list_free(char **list);

#endif
