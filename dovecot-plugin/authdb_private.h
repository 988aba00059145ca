/* authdb_private.h — what the three authdb_*.c files share and nobody else
 * uses: authdb_args.c (settings), authdb_lookup.c (accounts, userdb fields,
 * iteration, log helpers), authdb_verify.c (password check, lockout,
 * rehash).  The public interface is authdb_core.h.
 */
#ifndef AUTHDB_PRIVATE_H
#define AUTHDB_PRIVATE_H
#include "authdb_core.h"

/* authdb_log - format a message and hand it to db's log callback (if any);
 * longer than 1 KiB is cut */
void authdb_log(struct hm_authdb *db, enum hm_authdb_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* authdb_clean - printable copy of untrusted text s in buf; returns buf */
const char *authdb_clean(const char *s, char *buf, size_t size);
/* authdb_lookup_account - resolve a login (with its stored hash if
 * want_hash).  1 found (free with hm_authdb_account_free), 0 unknown,
 * -1 internal error (logged); acct_r is always initialised */
int authdb_lookup_account(struct hm_authdb *db, const char *login, bool want_hash,
			  struct hm_authdb_account *acct_r);
/* hm_authdb_table_paths - domains/aliases paths next to the users file
 * unless set explicitly */
void hm_authdb_table_paths(struct hm_authdb_set *set);
/* authdb_ip_exempt - is ip listed in set's ip_exempt (IPv4 CIDR or exact
 * IPv6)? */
bool authdb_ip_exempt(const struct hm_authdb_set *set, const char *ip);

#endif
