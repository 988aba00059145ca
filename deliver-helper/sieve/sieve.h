/* sieve.h — the homemail Sieve engine (RFC 5228 and extensions), public API.
 *
 * Compile a script once (sieve_compile), run it against a message as often
 * as needed (sieve_execute), read the resulting actions from the result.
 * The engine never touches mailboxes or sends mail itself: the caller (the
 * LDA glue, the CLI) carries out the actions, and supplies the few lookups a
 * script can make into the world (mailbox existence, duplicate and vacation
 * state) as callbacks.
 * Limits (script size, nesting, actions, redirects, includes, CPU steps incl.
 * regex work) are in struct sieve_limits; exceeding one is an error, so the
 * caller falls back to implicit keep.  Errors: "FILE:LINE:COL: error: MSG".
 */
#ifndef HM_SIEVE_H
#define HM_SIEVE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sieve_script;
struct sieve_result;

struct sieve_limits {
	size_t max_script_size;    /* bytes of one script file */
	unsigned max_nesting;      /* block and test nesting */
	unsigned max_actions;      /* actions in one result */
	unsigned max_redirects;    /* redirect actions per message */
	unsigned max_includes;     /* scripts included in total */
	unsigned max_include_depth;
	uint64_t max_steps;        /* CPU step budget per execution */
	size_t max_body;           /* bytes of body searched by the body test */
};

/* sieve_limits_default - fill in the defaults (Pigeonhole's where it has them) */
void sieve_limits_default(struct sieve_limits *l);

/* Where :personal and :global includes are looked up. */
struct sieve_compile_env {
	const char *personal_dir;  /* NULL: directory of the main script */
	const char *global_dir;    /* NULL: no global scripts */
	const struct sieve_limits *limits; /* NULL: defaults */
};

/* sieve_compile - compile a script file.  On error returns NULL and, when
 * err_r is non-NULL, a malloc'd message "FILE:LINE:COL: error: MSG" (several
 * lines when several errors were found). */
struct sieve_script *sieve_compile(const char *path, const struct sieve_compile_env *env,
				   char **err_r);
/* sieve_compile_mem - the same from memory; name is used in messages */
struct sieve_script *sieve_compile_mem(const char *name, const char *text, size_t len,
				       const struct sieve_compile_env *env, char **err_r);
void sieve_script_free(struct sieve_script **s);

/* The message and its envelope. */
struct sieve_message {
	const char *data;          /* the whole message (headers + body) */
	size_t len;
	uint64_t size;             /* message size for the size test; 0: len */
	const char *env_from;      /* envelope sender, "" for <>, NULL unknown */
	const char *env_to;        /* envelope recipient (final) */
	const char *env_orig_to;   /* original recipient, NULL: same as env_to */
	const char *auth_user;     /* envelope "auth", NULL none */
	time_t now;                /* for currentdate and vacation */
	int now_gmtoff;            /* local zone offset in seconds east of UTC */
};

/* Callbacks into the world; any may be NULL (then: mailbox exists = yes for
 * INBOX only, duplicate = never seen, vacation = never replied). */
struct sieve_callbacks {
	void *ctx;
	/* mailbox_exists - 1 exists, 0 not, -1 error */
	int (*mailbox_exists)(void *ctx, const char *utf8_name);
	/* duplicate_check - 1 seen within the period, 0 not; marks it seen
	 * only when sieve_commit_duplicates is called by the caller */
	int (*duplicate_check)(void *ctx, const char *id, size_t idlen);
};

enum sieve_action_type {
	SIEVE_ACT_STORE,      /* keep / fileinto */
	SIEVE_ACT_REDIRECT,
	SIEVE_ACT_REJECT,
	SIEVE_ACT_EREJECT,
	SIEVE_ACT_VACATION,
	SIEVE_ACT_DISCARD,
};

struct sieve_action {
	enum sieve_action_type type;
	char *target;         /* folder (UTF-8; "INBOX" in any case is spelled
			       * "INBOX") / redirect address / reason */
	char **flags;         /* store: IMAP flags (NULL-terminated), NULL none */
	bool create;          /* store: :create given */
	bool implicit;        /* store: the implicit keep */
	/* vacation */
	char *vac_to;         /* recipient of the reply (the sender) */
	char *vac_from;       /* :from or NULL */
	char *vac_subject;    /* final subject, UTF-8 */
	char *vac_reason;     /* body text (or MIME entity when vac_mime) */
	char *vac_handle;     /* identity of this reply for the period state */
	bool vac_mime;
	uint64_t vac_seconds;
	char **vac_addresses; /* :addresses (NULL-terminated) or NULL */
	const char *vac_skip; /* why no reply may be sent (RFC 3834), NULL: send */
	int line;             /* script line that produced the action */
	unsigned script;      /* index into sieve_execute's scripts[] */
};

/* Duplicate ids the script tested and that must be remembered on success. */
struct sieve_dup_mark {
	char *id;
	uint64_t seconds;
	unsigned script;      /* index into sieve_execute's scripts[] */
};

struct sieve_result {
	struct sieve_action *actions;
	size_t nactions;
	bool implicit_keep;    /* the implicit keep was performed (is in actions) */
	bool error;            /* run-time error: see sieve_execute */
	char *errmsg;          /* "FILE:LINE:COL: error: MSG" when error */
	struct sieve_dup_mark *dups;
	size_t ndups;
	char **warnings;       /* NULL-terminated list or NULL */
	unsigned last_script;  /* index of the last script that ran */
};

/* sieve_execute - run scripts[0..n) in order against msg: before scripts,
 * the user's script, after scripts share one result, as Pigeonhole's
 * sieve_before/sieve_after do: the next script runs only while the implicit
 * keep is still in effect.  Returns a result (NULL only on ENOMEM).
 *
 * Run-time errors (RFC 5228 2.10.6; Pigeonhole 0.5.19's behaviour, checked
 * with sieve-test -s ... -e): when script k fails, result->error is set,
 * errmsg says why, no later script runs, and every action and duplicate
 * mark of script k is dropped; those of the scripts before k, which
 * completed, stay (Pigeonhole has already carried them out).  The result
 * then ends with the implicit keep: one store "INBOX" (implicit = true)
 * without flags, merged into an earlier INBOX store if there is one.  With
 * a single script that is exactly: actions = { store "INBOX" }, no flags,
 * no redirect, vacation or duplicate mark.  So the caller carries out the
 * actions list as it is, error or not. */
struct sieve_result *sieve_execute(struct sieve_script *const *scripts, size_t n,
				   const struct sieve_message *msg,
				   const struct sieve_callbacks *cb);

/* sieve_result_set_error - the caller met a run-time error while carrying
 * out the result (a folder name the mailbox store refuses, say): turn r into
 * the error result above, as if the script that produced failed (failed:
 * an action of r, or NULL for "the last script that ran") had failed at run
 * time.  msg (copied) becomes r->errmsg unless r already has an error.
 * Call it before carrying out any action, as Pigeonhole carries out none of
 * the failing script's actions. */
void sieve_result_set_error(struct sieve_result *r, const struct sieve_action *failed,
			    const char *msg);
void sieve_result_free(struct sieve_result **r);

/* sieve_capabilities - space separated list of supported extensions */
const char *sieve_capabilities(void);

#endif
