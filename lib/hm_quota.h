/* hm_quota.h — Maildir++ quota (`maildirsize`) the way Dovecot's quota=maildir keeps it.
 *
 * NAME
 *   hm_quota - read, check, append to and recalculate `maildirsize`
 *
 * SYNOPSIS
 *   struct hm_quota_rule r;  hm_quota_parse_rule("*:storage=100M", &r);
 *   struct hm_quota q;       hm_quota_load(root_fd, &r (or NULL), time(NULL), &q);
 *   if (q.active && hm_quota_exceeded(&q, size, 1)) -> over quota
 *   ... store ...            hm_quota_add(root_fd, &q, size, 1);
 *
 * DESCRIPTION
 *   File format (Maildir++): first line the limits "<bytes>S,<count>C" (either
 *   part optional, 0 = unlimited), then "<bytes> <count>" lines, each a change
 *   (may be negative); usage = sum of the changes.
 *
 *   Rules followed (Dovecot 2.3 quota-maildir.c behaviour):
 *   - limits come from the quota rule when one is configured ("*" rule,
 *     forced); if the file's limits differ, the file is rebuilt.  Without a
 *     rule the file's own limits are used; without either there is no quota
 *     (q.active false) and no file is created;
 *   - the file is recalculated (sum of ,S= sizes, or stat() sizes, over new/
 *     and cur/ of INBOX and of every ".folder") when it is missing, at least
 *     5120 bytes long, contains NUL, has an unparsable line, sums to a
 *     negative value, or says "over quota" while it has more than one change
 *     line or is older than 15 minutes;
 *   - a recalculated file is written as a temporary file renamed over
 *     maildirsize (0600), unless a directory changed during the scan (then the
 *     numbers are used but not written, as Dovecot does).
 *   - hm_quota_add appends one "<bytes> <count>" line with O_APPEND, as the
 *     Maildir++ specification says.
 *
 *   Quota rule syntax (Dovecot's quota_rule): "*:storage=N[B|K|M|G|T]"
 *   (default unit KiB), "bytes=N[unit]" (default unit bytes), "messages=N",
 *   "backend=<maildir limits>", "ignore"/"noenforcing" (= no limits);
 *   fields are separated by ':'.  Only the default mailbox pattern "*" (or
 *   "?", the non-forced default) is understood.
 *
 * RETURNS
 *   0 ok, -1 and errno (EINVAL bad rule; I/O errors from the system).
 */
#ifndef HM_QUOTA_H
#define HM_QUOTA_H
#include <stdbool.h>
#include <time.h>

#define HM_QUOTA_MAX_FILE 5120
#define HM_QUOTA_STALE_SECS (15 * 60)

struct hm_quota_rule {
	unsigned long long bytes_limit;   /* 0 = unlimited */
	unsigned long long count_limit;   /* 0 = unlimited */
	bool forced;                      /* "*" rule: overrides the file's limits */
};

struct hm_quota {
	bool active;                      /* some limit applies (or a forced rule) */
	bool recalculated;                /* load rebuilt the numbers */
	unsigned long long bytes_limit, count_limit;
	unsigned long long bytes, count;  /* usage */
};

/* hm_quota_parse_rule - parse a quota_rule value into r */
int hm_quota_parse_rule(const char *rule, struct hm_quota_rule *r);

/* hm_quota_parse_limits - parse a maildirsize limits line "NS,MC";
 * returns false when a part is malformed (valid parts are still set) */
bool hm_quota_parse_limits(const char *line, unsigned long long *bytes_r,
			   unsigned long long *count_r);

/* hm_quota_load - current limits and usage for the Maildir at root_fd */
int hm_quota_load(int root_fd, const struct hm_quota_rule *rule, time_t now,
		  struct hm_quota *q);

/* hm_quota_exceeded - would adding bytes/count go over a limit? */
bool hm_quota_exceeded(const struct hm_quota *q, unsigned long long bytes,
		       unsigned long long count);

/* hm_quota_add - append a change line and update q (no-op when !q->active) */
int hm_quota_add(int root_fd, struct hm_quota *q, long long bytes, long long count);

/* hm_quota_recalc - recount from the Maildir and rewrite maildirsize */
int hm_quota_recalc(int root_fd, struct hm_quota *q);

#endif
