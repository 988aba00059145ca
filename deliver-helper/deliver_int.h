/* deliver_int.h — homemail-deliver's private pieces (not part of the filter seam).
 * User resolution and privilege drop (deliver_user.c), the main flow's state
 * that deliver_store() works on (deliver_store.c). */
#ifndef DELIVER_INT_H
#define DELIVER_INT_H
#include <stdbool.h>
#include <sys/types.h>

#include "deliver.h"
#include "hm_maildir.h"
#include "hm_quota.h"

struct deliver_user {
	char *name;
	char *home;          /* "" when none */
	char *mail;          /* userdb "mail" or NULL */
	char *quota_rule;    /* userdb "quota_rule" or NULL */
	char *sieve;         /* userdb "sieve" or NULL */
	uid_t uid;
	gid_t gid;
};

/* deliver_user_resolve - who we deliver for.  dflag: -d USER or NULL.
 * Returns DELIVER_EX_OK, DELIVER_EX_NOUSER or DELIVER_EX_TEMPFAIL (err set). */
int deliver_user_resolve(const struct deliver_conf *c, const char *dflag,
			 struct deliver_user *user_r, char *err, size_t errsize);

/* deliver_user_become - switch to u (setgroups -> setresgid -> setresuid)
 * when running as root; otherwise check we already are u.  Refuses uid 0.
 * Returns 0, or -1 with err set. */
int deliver_user_become(const struct deliver_user *u, char *err, size_t errsize);

void deliver_user_free(struct deliver_user *u);

/* deliver_clean_tmp - remove stale files from the tmp/ directory tmp_fd of
 * folder dir ("." for INBOX) in maildir (hm_maildir_tmp_clean); logs what
 * it removed, never fails the delivery. */
void deliver_clean_tmp(int tmp_fd, const char *maildir, const char *dir);

/* one copy linked in this run: "DIR/new/NAME" or "DIR/cur/NAME" relative to
 * the Maildir root, so deliver_unstore_all() can take it back */
#define DELIVER_MAX_LINKED 256

struct deliver_priv {
	struct hm_maildir md;
	struct hm_spool spool;
	struct hm_quota quota;
	bool quota_loaded;
	char *linked[DELIVER_MAX_LINKED];
	size_t n_linked;
};

/* deliver_linked_free - forget the record of linked copies (they stay) */
void deliver_linked_free(struct deliver_priv *pv);

#endif
