/* hm_domains.h — the table of local mail domains, /etc/homemail/domains.
 *
 * One domain per line, optionally followed by blanks and key=value options:
 *
 *   home.com.bo
 *   ventas.com.bo   system=no remote_aliases=yes quota=1G
 *
 *   system=yes|no          system accounts (Unix users) are reachable as
 *                          user@domain (default yes)
 *   remote_aliases=yes|no  aliases of this domain may name addresses of
 *                          other (remote) domains (default no)
 *   quota=SIZE             default quota of new accounts (homemail-user add)
 *
 * Other keys ([a-z0-9_]+=printable) are kept verbatim and ignored, so other
 * tools (the playbook: DKIM selector, role addresses) can keep theirs here.
 * Exim reads the same file as an lsearch list for local_domains (the domain
 * is the key; a line may therefore not start with a blank, which lsearch
 * would read as a continuation).  '#' starts a comment line.  A malformed
 * line is reported with its line number and skipped; the rest is served.
 * Domains are LDH labels, stored lower-case.  Bounds: HM_DOMAINS_MAX_LINE
 * per line, HM_DOMAINS_MAX_FILE per file.
 * Returns: 0 ok, -1 and errno set, unless stated otherwise.
 */
#ifndef HM_DOMAINS_H
#define HM_DOMAINS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_users.h"

#define HM_DOMAINS_PATH_DEFAULT "/etc/homemail/domains"
#define HM_DOMAINS_MAX_LINE     4096
#define HM_DOMAINS_MAX_FILE     (16u << 20)
#define HM_DOMAIN_MAX           253

struct hm_domain {
	char *name;             /* lower-case */
	bool system;            /* system accounts as user@name */
	bool remote_aliases;    /* aliases may point outside the local domains */
	uint64_t quota_bytes;   /* default quota for new accounts, 0 none */
	char *options;          /* everything after the name, verbatim ("" none) */
	unsigned int line;
};

struct hm_domains;

int hm_domains_parse(const char *data, size_t len, const char *path,
		     hm_users_warn_fn *warn, void *ctx, struct hm_domains **db_r);
/* hm_domains_load - read and parse; missing file: -1 ENOENT */
int hm_domains_load(const char *path, hm_users_warn_fn *warn, void *ctx,
		    struct hm_domains **db_r);
struct hm_domains *hm_domains_empty(void);
void hm_domains_free(struct hm_domains **db);

/* hm_domains_find - by name (case-insensitive), NULL if absent */
const struct hm_domain *hm_domains_find(const struct hm_domains *db, const char *name);
size_t hm_domains_count(const struct hm_domains *db);
const struct hm_domain *hm_domains_at(const struct hm_domains *db, size_t i);
unsigned int hm_domains_malformed(const struct hm_domains *db);

/* hm_domains_add - append "name options" (options validated as the parser
 * does); EEXIST, EINVAL */
int hm_domains_add(struct hm_domains *db, const char *name, const char *options);
/* hm_domains_remove - ENOENT */
int hm_domains_remove(struct hm_domains *db, const char *name);
char *hm_domains_serialize(const struct hm_domains *db, size_t *len_r);

typedef int hm_domains_edit_fn(struct hm_domains *db, void *ctx);
/* hm_domains_modify - as hm_users_modify: lock, load fresh, fn, write when
 * fn returns 1 (new file: mode 0644, Exim reads it as Debian-exim) */
int hm_domains_modify(const char *path, hm_domains_edit_fn *fn, void *ctx,
		      hm_users_warn_fn *warn, void *wctx);

/* hm_domain_normalize - validate an LDH domain and lower-case it into
 * dst[dstsize]; -1 EINVAL / ENAMETOOLONG */
int hm_domain_normalize(const char *in, char *dst, size_t dstsize);

#endif
