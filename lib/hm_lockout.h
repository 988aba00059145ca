/* hm_lockout.h — persistent login-failure counters with back-off and
 * temporary lockout, shared by every process that authenticates.
 *
 * State lives in one fixed-size file (default /var/lib/homemail/lockout.db,
 * mode 0600, owner root): a 64-byte header and `slots` 64-byte records, so
 * its size never exceeds 64 + 64*slots bytes (1 MiB with the default 16384
 * slots).  A record is keyed by HMAC-SHA-256(secret, kind, key) truncated to
 * 20 bytes, so the file holds no user names or addresses, and nobody who
 * lacks the per-installation secret can tell which names share a slot (the
 * secret: 32 random bytes in lockout.key beside the state file, created
 * once, 0600, readable only by its owner; see hm_lockout_open).
 *
 * The table has two regions probed separately over HM_LOCKOUT_PROBE slots:
 * a quarter (at least HM_LOCKOUT_PROBE slots) for known accounts
 * (HM_LOCKOUT_USER) and the rest for what an outsider chooses freely:
 * unknown login names (HM_LOCKOUT_UNKNOWN) and remote addresses
 * (HM_LOCKOUT_IP).  So no number of made-up names or addresses can push an
 * account's record out.  Within a region a record may only be evicted when
 * it is neither locked nor in back-off (for addresses: not locked); among
 * those the one with the fewest failures, then the oldest, goes.  When a
 * neighbourhood is full of locked / back-off records, a NEW key is refused
 * (fail-closed, HM_LOCKOUT_TABLE_FULL) for user kinds, and not counted
 * (fail-open, reported in the reservation) for addresses: see docs/auth.md.
 * IPv6 addresses are counted per prefix (policy.ipv6_prefix, default /64);
 * IPv4-mapped IPv6 addresses count as their IPv4 address.
 *
 * Every read-modify-write runs under an fcntl() write lock on the file, so
 * several auth-worker processes and homemail-user can share it; it survives
 * restarts because it is a plain file.  fcntl() locks belong to a process,
 * so they exclude other processes, not threads of one: use a handle from
 * one thread at a time (Dovecot's auth processes are single-threaded).
 *
 * Policy (per key kind):
 *   user:  `max_failures` failures within `window` seconds lock the key for
 *          `lock_time` seconds; from `backoff_after` failures on, a further
 *          attempt within 2^(n-backoff_after) s (capped at backoff_max) of the
 *          last failure is refused unchecked (back-off).  Success clears it.
 *          Unknown login names follow the same rules in their own region.
 *   ip:    `ip_max_failures` within `window` lock the address for
 *          `lock_time`; success does not clear it (one valid account must not
 *          reset an attacker's counter).
 * Attempts refused because of a lock or back-off are not counted; when a
 * lock is set the failure count restarts, so an expired lock starts afresh.
 *
 * Reservation (hm_lockout_reserve): the login path counts an attempt as a
 * failure BEFORE the password is verified, in the same locked step as the
 * check, so that however many attempts run in parallel (in any number of
 * processes) at most max_failures of them per user (ip_max_failures per
 * address) get past the check within one window.  The caller then settles
 * the reservation: a wrong password leaves it standing (it is the recorded
 * failure), hm_lockout_succeeded clears the user counter and gives the
 * address its slot back, hm_lockout_cancel gives both back (an attempt that
 * was not a guess).  A process that dies in between leaves the reservation
 * standing: it counts as one failure, the safe side.
 *
 * File format 2 (this one) keeps the region split, the IPv6 prefix and a
 * check value of the secret in the header.  A format-1 file (unkeyed SHA-256
 * slots) cannot be converted, the names behind its records being unknown:
 * it is reset, and hm_lockout_open_note says so for the caller's log.
 *
 * Returns: 0 ok, -1 and errno set, unless stated otherwise.
 */
#ifndef HM_LOCKOUT_H
#define HM_LOCKOUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HM_LOCKOUT_PATH_DEFAULT "/var/lib/homemail/lockout.db"
#define HM_LOCKOUT_PROBE        16
#define HM_LOCKOUT_MIN_SLOTS    (2 * HM_LOCKOUT_PROBE)
#define HM_LOCKOUT_MAX_SLOTS    (1u << 20)
#define HM_LOCKOUT_SECRET_SIZE  32
/* longest normalised address key: an IPv6 address and "/128" */
#define HM_LOCKOUT_IP_KEY_SIZE  (46 + 5)

enum hm_lockout_kind {
	HM_LOCKOUT_USER = 1,            /* a known account (canonical name) */
	HM_LOCKOUT_IP = 2,              /* a remote address (IPv6: its prefix) */
	HM_LOCKOUT_UNKNOWN = 3,         /* a login name that is no account */
};

struct hm_lockout_policy {
	unsigned int max_failures;     /* per user, default 10 */
	unsigned int ip_max_failures;  /* per remote address, default 50; 0 = off */
	unsigned int window;           /* seconds, default 900 */
	unsigned int lock_time;        /* seconds, default 900 */
	unsigned int backoff_after;    /* default 5; 0 = no back-off */
	unsigned int backoff_max;      /* seconds, default 60 */
	unsigned int slots;            /* table size for a new file, default 16384 */
	unsigned int ipv6_prefix;      /* IPv6 addresses counted per /N, default
					* 64; 0 = as the existing file says */
};

struct hm_lockout_status {
	unsigned int failures;         /* failures in the current window */
	time_t last_failure;           /* 0 if none */
	time_t locked_until;           /* 0 if not locked */
	time_t retry_after;            /* when a refused key may try again */
	bool locked;
	bool backoff;
};

#define HM_LOCKOUT_KEY_SIZE     20

/* what one reservation did to one key (all zero: nothing held) */
struct hm_lockout_hold {
	uint8_t key[HM_LOCKOUT_KEY_SIZE]; /* record key; all zero = not held */
	uint8_t kind;                   /* enum hm_lockout_kind */
	uint32_t window_id;             /* counting window the attempt went into */
	uint32_t lock_window;           /* window started by the lock it set */
	int64_t window_start;           /* first_failure of that window */
	int64_t prev_last;              /* last_failure before the attempt */
	int64_t locked_until;           /* lock this attempt set, 0 if none */
};

/* one attempt's reservation: its user and its address key */
struct hm_lockout_resv {
	struct hm_lockout_hold user, ip;
	bool ip_unrecorded;             /* address neighbourhood full: not counted */
};

enum hm_lockout_verdict {
	HM_LOCKOUT_ALLOW = 0,
	HM_LOCKOUT_USER_LOCKED,
	HM_LOCKOUT_USER_BACKOFF,
	HM_LOCKOUT_IP_LOCKED,
	HM_LOCKOUT_TABLE_FULL,          /* no room for the user key: refused */
};

struct hm_lockout;

void hm_lockout_policy_default(struct hm_lockout_policy *p);
/* hm_lockout_open - open (creating if missing, and the last directory
 * component too, mode 0700) the state file and its secret.  The secret is
 * read from the state file's path with ".db" replaced by ".key" (or ".key"
 * appended); when missing it is created once, atomically (a 0600 O_EXCL
 * temporary file of getrandom bytes, fsync, link), so concurrent openers
 * agree.  A secret that is not a regular file of HM_LOCKOUT_SECRET_SIZE
 * bytes owned by the caller's euid with no group/other permission is
 * refused (EPERM / EINVAL).  A state file with a bad or old header, another
 * secret's check value or another ipv6_prefix is re-initialised (its
 * content is only a cache of counters): hm_lockout_open_note tells why. */
int hm_lockout_open(const char *path, const struct hm_lockout_policy *policy,
		    struct hm_lockout **lo_r);
/* hm_lockout_open_note - why open reset an existing file (for the log), or
 * NULL when it did not */
const char *hm_lockout_open_note(const struct hm_lockout *lo);
void hm_lockout_close(struct hm_lockout **lo);

/* hm_lockout_check - may the account `user` log in from `ip` (either may be NULL or "")
 * at `now`?  Sets *verdict_r and fills *status_r for the refusing key. */
int hm_lockout_check(struct hm_lockout *lo, const char *user, const char *ip,
		     time_t now, enum hm_lockout_verdict *verdict_r,
		     struct hm_lockout_status *status_r);
/* hm_lockout_reserve - hm_lockout_check and, when it allows, count the
 * attempt as a failure of user (of kind ukind: HM_LOCKOUT_USER for an
 * account, HM_LOCKOUT_UNKNOWN for a name that is none) and of ip, in one
 * step under the file lock.  *resv_r says what was counted (nothing when
 * refused: refused attempts are not counted); settle it with
 * hm_lockout_succeeded / hm_lockout_cancel, or leave it standing for a
 * failed attempt.  No room for the user key refuses the attempt
 * (TABLE_FULL); no room for the address lets it go uncounted
 * (resv_r->ip_unrecorded).  On -1 (I/O) *verdict_r is ALLOW and *resv_r
 * holds whatever was counted before the error. */
int hm_lockout_reserve(struct hm_lockout *lo, enum hm_lockout_kind ukind,
		       const char *user, const char *ip,
		       time_t now, enum hm_lockout_verdict *verdict_r,
		       struct hm_lockout_status *status_r, struct hm_lockout_resv *resv_r);
/* hm_lockout_succeeded - the reserved attempt logged in: the user counter is
 * cleared (as a success always did), the address's reservation given back
 * (a success never counts against an address) */
int hm_lockout_succeeded(struct hm_lockout *lo, struct hm_lockout_resv *resv, time_t now);
/* hm_lockout_cancel - the reserved attempt was no guess (the password was
 * right but the account may not log in): both reservations given back */
int hm_lockout_cancel(struct hm_lockout *lo, struct hm_lockout_resv *resv, time_t now);
/* hm_lockout_record - count a failed (success=false) or successful attempt
 * of the account `user` (HM_LOCKOUT_USER) from ip */
int hm_lockout_record(struct hm_lockout *lo, const char *user, const char *ip,
		      bool success, time_t now);
/* hm_lockout_get - state of one key (all zero when unknown) */
int hm_lockout_get(struct hm_lockout *lo, enum hm_lockout_kind kind,
		   const char *key, time_t now, struct hm_lockout_status *st_r);
/* hm_lockout_clear - forget one key (admin unlock) */
int hm_lockout_clear(struct hm_lockout *lo, enum hm_lockout_kind kind, const char *key);
/* hm_lockout_slots - table size of the open file */
unsigned int hm_lockout_slots(const struct hm_lockout *lo);
/* hm_lockout_home_slot - the slot where key's neighbourhood starts (for
 * tests and diagnostics) */
unsigned int hm_lockout_home_slot(const struct hm_lockout *lo, enum hm_lockout_kind kind,
				  const char *key);
/* hm_lockout_ip_key - the text an address is counted under: IPv4 as is,
 * IPv4-mapped IPv6 as IPv4, other IPv6 masked to prefix bits ("a:b::/64").
 * -1 EINVAL when ip is no address (the caller counts it verbatim). */
int hm_lockout_ip_key(const char *ip, unsigned int prefix, char *dst, size_t dstsize);
const char *hm_lockout_verdict_name(enum hm_lockout_verdict v);

#endif
