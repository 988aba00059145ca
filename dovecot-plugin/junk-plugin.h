/* junk-plugin.h — private header of lib90_homemail_junk_plugin.so.
 *
 * The plugin's pieces: junk-plugin.c (lib-storage hooks, settings, the
 * per-transaction queue applied to hm_junklist at commit) and junk-learn.c
 * (the optional learn_command: messages spooled at copy, a supervised child
 * started at commit).  Relies on the installed Dovecot 2.3 headers only.
 */
#ifndef JUNK_PLUGIN_H
#define JUNK_PLUGIN_H

#include "lib.h"
#include "array.h"
#include "module-context.h"
#include "mail-user.h"
#include "mail-storage-private.h"

#define JUNK_SETTING(name) "homemail_junk_" name

/* Per-user settings, read once when the user is created. */
struct junk_user {
	union mail_user_module_context module_ctx;

	const char *dir;            /* where homemail-junklist lives; NULL = lazily */
	const char *junk_name;      /* extra Junk mailbox name ("" = none) */
	const char *trash_name;     /* extra Trash mailbox name ("" = none) */
	unsigned int max_entries;   /* per list */
	bool lists;                 /* record senders (default yes) */
	bool debug;

	/* replicated pair (mail_replica set; docs/replication.md): the
	 * private INBOX attribute this host publishes its lists under, and
	 * the replicator's notify fifo; NULL = not replicated */
	const char *replica_key;
	const char *notify_fifo;

	/* learn_command: argv template ("%k" -> spam/ham), NULL = off */
	const char *const *learn_argv;
	unsigned int learn_timeout_secs;
	uoff_t learn_max_size;      /* bigger messages are not spooled */
	unsigned int learn_max_batch; /* messages per command run */
	const char *learn_tmpdir;
};

/* Messages spooled for the learn command in one transaction. */
struct junk_learn;

/* junk_learn_add - spool a copy of mail for learning as spam (or ham);
 * creates *learnp on first use.  Failures are logged and skip the mail. */
__attribute__((visibility("hidden")))
void junk_learn_add(struct junk_user *ju, struct junk_learn **learnp, pool_t pool,
		    struct mail *mail, bool spam);

/* junk_learn_run - start the command on the spooled batch (without waiting
 * for it) and forget the batch; the supervisor removes the files. */
__attribute__((visibility("hidden")))
void junk_learn_run(struct junk_user *ju, struct junk_learn **learnp);

/* junk_learn_abort - remove the spooled files (transaction rolled back) */
__attribute__((visibility("hidden")))
void junk_learn_abort(struct junk_learn **learnp);

#endif
