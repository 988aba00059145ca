/* hm_aliases.h — the aliases table, /etc/homemail/aliases, and the one
 * function that resolves an address against accounts and aliases
 * (hm_route_resolve).
 *
 * One alias per line: a source, a colon, one or more targets separated by
 * commas (blanks around them are ignored):
 *
 *   sales@ventas.com.bo: ana@ventas.com.bo, bob@home.com.bo
 *   team@home.com.bo:    sales@ventas.com.bo, partner@example.org
 *   @ventas.com.bo:      ana@ventas.com.bo          (catch-all of the domain)
 *
 * Sources and targets are full addresses (dot-atom local part, LDH domain,
 * stored lower-case, as in the users file); a source "@domain" is that
 * domain's catch-all.  Bounds: HM_ALIASES_MAX_LINE bytes per line,
 * HM_ALIASES_MAX_TARGETS targets per line, HM_ALIASES_MAX_FILE per file.
 * A malformed line (no colon, bad address, NUL/CR/quotes/8-bit bytes, too
 * many targets, a target equal to its source, duplicate source) is reported
 * with its line number and skipped; the rest is still served.
 * Returns: 0 ok, -1 and errno set, unless stated otherwise.
 */
#ifndef HM_ALIASES_H
#define HM_ALIASES_H
#include <stdbool.h>
#include <stddef.h>

#include "hm_domains.h"
#include "hm_users.h"

#define HM_ALIASES_PATH_DEFAULT "/etc/homemail/aliases"
#define HM_ALIASES_MAX_LINE     65536
#define HM_ALIASES_MAX_TARGETS  1000
#define HM_ALIASES_MAX_FILE     (64u << 20)

struct hm_alias {
	char *source;           /* "local@domain" or "@domain" */
	char **targets;
	size_t ntargets;
	unsigned int line;
};

struct hm_aliases;

int hm_aliases_parse(const char *data, size_t len, const char *path,
		     hm_users_warn_fn *warn, void *ctx, struct hm_aliases **db_r);
/* hm_aliases_load - read and parse; missing file: -1 ENOENT */
int hm_aliases_load(const char *path, hm_users_warn_fn *warn, void *ctx,
		    struct hm_aliases **db_r);
struct hm_aliases *hm_aliases_empty(void);
void hm_aliases_free(struct hm_aliases **db);

/* hm_aliases_find - by source (case-insensitive), NULL if absent */
const struct hm_alias *hm_aliases_find(const struct hm_aliases *db, const char *source);
size_t hm_aliases_count(const struct hm_aliases *db);
const struct hm_alias *hm_aliases_at(const struct hm_aliases *db, size_t i);
unsigned int hm_aliases_malformed(const struct hm_aliases *db);

/* hm_aliases_add - add targets to source (a new line, or appended to the
 * existing one); EINVAL bad address / too many targets */
int hm_aliases_add(struct hm_aliases *db, const char *source, const char *const *targets,
		   size_t ntargets);
/* hm_aliases_remove - drop target from source (the whole line when target
 * is NULL or it was the last one); ENOENT */
int hm_aliases_remove(struct hm_aliases *db, const char *source, const char *target);
/* hm_aliases_rename_target - replace every target old by new (account
 * renamed); returns the number of lines changed, or -1 */
int hm_aliases_rename_target(struct hm_aliases *db, const char *old_addr, const char *new_addr);
char *hm_aliases_serialize(const struct hm_aliases *db, size_t *len_r);

typedef int hm_aliases_edit_fn(struct hm_aliases *db, void *ctx);
/* hm_aliases_modify - as hm_users_modify (new file: mode 0600) */
int hm_aliases_modify(const char *path, hm_aliases_edit_fn *fn, void *ctx,
		      hm_users_warn_fn *warn, void *wctx);

/* hm_alias_source_normalize - "local@domain" or "@domain", lower-cased;
 * -1 EINVAL / ENAMETOOLONG */
int hm_alias_source_normalize(const char *in, char *dst, size_t dstsize);

/* ---- resolution ------------------------------------------------------
 * hm_route_resolve answers "what is this address" the way every piece must
 * agree on (the Dovecot module serves it to Exim's RCPT check and routers):
 *   1. an account (is_account) -> ACCOUNT
 *   2. an alias -> ALIAS with the expanded leaf addresses
 *   3. local part "base<delim>detail": account base -> ACCOUNT (+ detail),
 *      alias base -> ALIAS
 *   4. a local domain's catch-all "@domain" -> ALIAS
 *   5. UNKNOWN
 * Targets in local domains are resolved the same way, recursively: aliases
 * are expanded, accounts and unknown addresses are leaves (Exim routes them:
 * an unknown one bounces alone); targets in other domains are leaves only
 * when the alias's own domain has remote_aliases=yes, else the whole alias
 * FAILs.  A loop (an alias reached again on its own path) FAILs with the
 * path in the message.  Bounds: nesting HM_ROUTE_MAX_DEPTH, at most
 * HM_ALIASES_MAX_TARGETS leaves of HM_ROUTE_MAX_BYTES in all (commas
 * included) and HM_ROUTE_MAX_STEPS lookups: beyond,
 * FAIL.  Recursion is bounded by the depth. */
#define HM_ROUTE_MAX_DEPTH 16
#define HM_ROUTE_MAX_STEPS 20000
/* the leaves travel to Exim in one userdb reply, which Dovecot's auth
 * worker may send only up to 8 KiB long ("Auth worker sent us more than
 * 8192 bytes"): their total length is bounded well below it */
#define HM_ROUTE_MAX_BYTES 6144

enum hm_route_kind { HM_ROUTE_UNKNOWN = 0, HM_ROUTE_ACCOUNT, HM_ROUTE_ALIAS, HM_ROUTE_FAIL };

/* 1 account, 0 not one, HM_ROUTE_CLOSED an account that refuses mail
 * (unknown then, and no catch-all or plus rule takes it), -1 error (lookup
 * failed: the resolution fails) */
#define HM_ROUTE_CLOSED 3
typedef int hm_route_account_fn(void *ctx, const char *address);
/* 1 local domain, 0 not */
typedef int hm_route_local_fn(void *ctx, const char *domain);

struct hm_route_opts {
	const struct hm_aliases *aliases;       /* may be NULL */
	const struct hm_domains *domains;       /* may be NULL: remote_aliases */
	const char *delimiters;                 /* e.g. "+"; NULL/"" = none */
	hm_route_account_fn *is_account;
	hm_route_local_fn *is_local;
	void *ctx;
};

struct hm_route {
	enum hm_route_kind kind;
	char account[HM_USERS_MAX_ADDRESS + 1]; /* ACCOUNT: the account address */
	char detail[HM_USERS_MAX_ADDRESS + 1];  /* ACCOUNT via step 3: the detail */
	char **targets;                         /* ALIAS: leaves, in order */
	size_t ntargets;
	char why[512];                          /* FAIL: the reason */
};

/* hm_route_resolve - 0 with r->kind set, -1 internal error (errno; the
 * is_account callback failed or out of memory) */
int hm_route_resolve(const struct hm_route_opts *o, const char *address, struct hm_route *r);
void hm_route_free(struct hm_route *r);

#endif
