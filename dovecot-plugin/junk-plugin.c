/* junk-plugin.c — lib90_homemail_junk_plugin.so: users teach the server
 * what is junk by moving mail in any IMAP client.
 *
 * NAME
 *	homemail_junk - Dovecot 2.3 storage plugin feeding hm_junklist
 * SYNOPSIS
 *	mail_plugins = $mail_plugins homemail_junk
 *	plugin { homemail_junk_mailbox = Junk  (more in docs/junk.md) }
 * DESCRIPTION
 *	Hooks lib-storage, not IMAP commands, so IMAP MOVE, COPY followed by
 *	EXPUNGE, APPEND and doveadm move all pass through here.  The mailbox
 *	vfuncs copy/save_finish only queue work on the destination mailbox's
 *	transaction; transaction_commit applies the queue, after the storage
 *	commit succeeded, as one locked update of the user's list file (one
 *	batch per transaction); transaction_rollback drops it.
 *	  into Junk from a non-Junk mailbox (or APPEND into Junk)
 *		-> From: and Return-Path: addresses become "blocked";
 *	  out of Junk into anything but Trash or another Junk mailbox
 *		-> they become "trusted".
 *	Junk is the \Junk special-use mailbox or homemail_junk_mailbox; Trash
 *	is \Trash or homemail_junk_trash.  Only the user's private namespaces
 *	count.  Deliveries (lda, lmtp) and dsync (SYNC transactions) teach
 *	nothing.
 *	Replicated pair (mail_replica set): after each update the list's text
 *	is published as the private INBOX attribute
 *	vendor/vendor.homemail/junklist/<homemail_junk_replica_id or host
 *	name> and the replicator is notified; the peer's dsync stores it in a
 *	SYNC transaction, where the attribute_set hook merges it into that
 *	host's list file (hm_junklist_merge: the entry taught later wins).
 *	One key per writing host, so dsync never resolves a conflict by
 *	dropping one side's value.  The value is hostile input: at most
 *	HM_JUNKLIST_FILE_MAX bytes, parsed as the file is.
 * DIAGNOSTICS
 *	Errors go to Dovecot's log prefixed "homemail_junk:"; they never fail
 *	the user's IMAP command (the move itself already happened).
 * SEE ALSO
 *	lib/hm_junklist.h (file format), junk-learn.c, docs/junk.md
 */
#include "junk-plugin.h"
#include "str.h"
#include "strnum.h"
#include "settings-parser.h"
#include "mail-namespace.h"
#include "mailbox-list.h"

#include "istream.h"
#include "buffer.h"
#include "hostpid.h"

#include "hm_header.h"
#include "hm_junklist.h"
#include "hm_notify.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define JUNK_USER_CONTEXT(obj) \
	MODULE_CONTEXT(obj, junk_user_module)
#define JUNK_CONTEXT(obj) \
	MODULE_CONTEXT(obj, junk_storage_module)

/* The lists as a private INBOX attribute, one key per host that writes
 * it: <prefix><replica id>.  Values longer than the list file's read cap
 * are refused. */
#define JUNK_ATTR_PREFIX "vendor/vendor.homemail/junklist/"
#define JUNK_REPLICA_ID_MAX 64
#define JUNK_ATTR_VALUE_MAX HM_JUNKLIST_FILE_MAX
/* the replicator's notify fifo (Dovecot's aggregator), in base_dir */
#define JUNK_NOTIFY_FIFO "replication-notify-fifo"

/* Queued changes kept per transaction; more are dropped (and counted). */
#define JUNK_MAX_QUEUE 20000

struct junk_change {
	enum hm_junk_kind kind;
	const char *addr;           /* normalised, in the transaction's pool */
};

struct junk_transaction {
	union mailbox_transaction_module_context module_ctx;
	pool_t pool;                /* NULL until something is queued */
	ARRAY(struct junk_change) changes;
	unsigned int dropped;
	struct junk_learn *learn;
	struct mail *tmp_mail;      /* dest_mail for APPEND when none was given */
};

const char *homemail_junk_plugin_version = DOVECOT_ABI_VERSION;

/* homemail_junk_plugin_init - called by Dovecot when the module is loaded */
void homemail_junk_plugin_init(struct module *module);
/* homemail_junk_plugin_deinit - remove the hooks again */
void homemail_junk_plugin_deinit(void);

static MODULE_CONTEXT_DEFINE_INIT(junk_user_module, &mail_user_module_register);
static MODULE_CONTEXT_DEFINE_INIT(junk_storage_module, &mail_storage_module_register);

/* has_special_use - true when the special_use list holds flag */
static bool has_special_use(const char *list, const char *flag)
{
	if (list == NULL)
		return FALSE;
	for (const char *const *p = t_strsplit_spaces(list, " "); *p != NULL; p++)
		if (strcasecmp(*p, flag) == 0)
			return TRUE;
	return FALSE;
}

/* box_is - is box the user's Junk (or Trash) mailbox? */
static bool box_is(struct mailbox *box, const char *special, const char *name)
{
	struct mail_namespace *ns = mailbox_get_namespace(box);

	if (ns == NULL || ns->type != MAIL_NAMESPACE_TYPE_PRIVATE)
		return FALSE;
	if (box->set != NULL && has_special_use(box->set->special_use, special))
		return TRUE;
	return name != NULL && *name != '\0' &&
		strcmp(mailbox_get_vname(box), name) == 0;
}

/* box_is_junk - \Junk special-use or homemail_junk_mailbox */
static bool box_is_junk(struct junk_user *ju, struct mailbox *box)
{
	return box_is(box, "\\Junk", ju->junk_name);
}

/* box_is_trash - \Trash special-use or homemail_junk_trash */
static bool box_is_trash(struct junk_user *ju, struct mailbox *box)
{
	return box_is(box, "\\Trash", ju->trash_name);
}

/* box_user - the session user a mailbox belongs to: for a shared
 * namespace that is the user looking at it, not the mailbox's owner, so
 * only the session user's own lists are ever written */
static struct mail_user *box_user(struct mailbox *box)
{
	struct mail_namespace *ns = mailbox_get_namespace(box);
	return ns != NULL && ns->user != NULL ? ns->user : box->storage->user;
}

/* junk_tctx - our context of transaction t */
static struct junk_transaction *junk_tctx(struct mailbox_transaction_context *t)
{
	return JUNK_CONTEXT(t);
}

/* Header bytes read per message; the sender fields are at the top. */
#define JUNK_HDR_MAX (256 * 1024)

/* read_header - the message's header block, parsed with lib/hm_header.
 * Reads the raw header stream rather than mail_get_first_header(): that
 * would add cache fields to the *source* transaction, which Dovecot 2.3
 * then commits even after a failed COPY, and its error push/pop there
 * frees the error string imap is about to send (use-after-free, seen under
 * ASan).  Returns the header or NULL (logged). */
static struct hm_header *read_header(struct mail *mail)
{
	struct istream *input;
	const unsigned char *data;
	struct hm_header *h = NULL;
	buffer_t *buf;
	size_t size;

	if (mail_get_hdr_stream(mail, NULL, &input) < 0) {
		i_error("homemail_junk: %s: reading the header of uid %u failed: %s",
			mailbox_get_vname(mail->box), mail->uid,
			mailbox_get_last_internal_error(mail->box, NULL));
		return NULL;
	}
	buf = t_buffer_create(4096);
	i_stream_seek(input, 0);
	while (buf->used < JUNK_HDR_MAX && i_stream_read_more(input, &data, &size) > 0) {
		if (size > JUNK_HDR_MAX - buf->used)
			size = JUNK_HDR_MAX - buf->used;
		buffer_append(buf, data, size);
		i_stream_skip(input, size);
	}
	if (input->stream_errno != 0) {
		i_error("homemail_junk: %s: reading the header of uid %u failed: %s",
			mailbox_get_vname(mail->box), mail->uid, i_stream_get_error(input));
		return NULL;
	}
	if (hm_header_parse(buf->data, buf->used, NULL, &h) < 0) {
		i_error("homemail_junk: parsing the header of uid %u failed: %m", mail->uid);
		return NULL;
	}
	return h;
}

/* queue_addr - queue one header field's sender address for the update */
static void queue_addr(struct junk_user *ju, struct junk_transaction *jt,
		       struct mail *mail, const struct hm_header *h, const char *field,
		       enum hm_junk_kind kind)
{
	char addr[HM_JUNKLIST_ADDR_MAX + 1];
	const struct hm_hfield *f = hm_header_get(h, field);
	struct junk_change *c;

	if (f == NULL)
		return;
	if (hm_junk_sender_addr(f->value, f->value_len, addr, sizeof addr) < 0) {
		if (ju->debug)
			i_debug("homemail_junk: %s: no usable address in %s of uid %u",
				mailbox_get_vname(mail->box), field, mail->uid);
		return;
	}
	if (array_count(&jt->changes) >= JUNK_MAX_QUEUE) {
		jt->dropped++;
		return;
	}
	c = array_append_space(&jt->changes);
	c->kind = kind;
	c->addr = p_strdup(jt->pool, addr);
}

/* junk_teach - queue what moving/saving mail into dst teaches */
static void junk_teach(struct junk_user *ju, struct junk_transaction *jt,
		       struct mail *mail, bool spam)
{
	enum hm_junk_kind kind = spam ? HM_JUNK_BLOCKED : HM_JUNK_TRUSTED;
	struct hm_header *h;

	if (jt->pool == NULL) {
		jt->pool = pool_alloconly_create("homemail junk queue", 1024);
		p_array_init(&jt->changes, jt->pool, 16);
	}
	if (ju->lists && (h = read_header(mail)) != NULL) {
		queue_addr(ju, jt, mail, h, "From", kind);
		queue_addr(ju, jt, mail, h, "Return-Path", kind);
		hm_header_free(&h);
	}
	if (ju->learn_argv != NULL)
		junk_learn_add(ju, &jt->learn, jt->pool, mail, spam);
}

/* teaching_transaction - false for transactions that must teach nothing */
static bool teaching_transaction(struct mailbox_transaction_context *t)
{
	/* dsync replays changes that were already taught on the other side */
	return (t->flags & MAILBOX_TRANSACTION_FLAG_SYNC) == 0;
}

/* junk_copy - copy/move: queue blocked or trusted depending on direction */
static int junk_copy(struct mail_save_context *ctx, struct mail *mail)
{
	struct mailbox_transaction_context *t = ctx->transaction;
	union mailbox_module_context *jbox = JUNK_CONTEXT(t->box);
	struct junk_user *ju = JUNK_USER_CONTEXT(box_user(t->box));
	struct junk_transaction *jt = junk_tctx(t);
	bool dst_junk, src_junk;

	if (jbox->super.copy(ctx, mail) < 0)
		return -1;
	if (jt == NULL || ju == NULL || !teaching_transaction(t))
		return 0;
	T_BEGIN {
		dst_junk = box_is_junk(ju, t->box);
		src_junk = box_is_junk(ju, mail->box);
		if (dst_junk && !src_junk)
			junk_teach(ju, jt, mail, TRUE);
		else if (src_junk && !dst_junk && !box_is_trash(ju, t->box))
			junk_teach(ju, jt, mail, FALSE);
	} T_END;
	return 0;
}

/* junk_save_begin - make sure an APPEND has a dest_mail we can read later */
static int junk_save_begin(struct mail_save_context *ctx, struct istream *input)
{
	union mailbox_module_context *jbox = JUNK_CONTEXT(ctx->transaction->box);
	struct junk_user *ju = JUNK_USER_CONTEXT(box_user(ctx->transaction->box));
	struct junk_transaction *jt = junk_tctx(ctx->transaction);
	bool junk;

	T_BEGIN {
		junk = ju != NULL && box_is_junk(ju, ctx->transaction->box);
	} T_END;
	if (junk && jt != NULL && ctx->dest_mail == NULL && !ctx->copying_via_save) {
		if (jt->tmp_mail == NULL)
			jt->tmp_mail = mail_alloc(ctx->transaction, 0, NULL);
		ctx->dest_mail = jt->tmp_mail;
	}
	return jbox->super.save_begin(ctx, input);
}

/* junk_save_finish - APPEND into Junk blocks the sender */
static int junk_save_finish(struct mail_save_context *ctx)
{
	struct mailbox_transaction_context *t = ctx->transaction;
	union mailbox_module_context *jbox = JUNK_CONTEXT(t->box);
	struct junk_user *ju = JUNK_USER_CONTEXT(box_user(t->box));
	struct junk_transaction *jt = junk_tctx(t);
	/* a copy done through save is handled (once) by junk_copy */
	struct mail *dest_mail = ctx->copying_via_save ? NULL : ctx->dest_mail;

	if (jbox->super.save_finish(ctx) < 0)
		return -1;
	if (dest_mail == NULL || jt == NULL || ju == NULL || !teaching_transaction(t))
		return 0;
	T_BEGIN {
		if (box_is_junk(ju, t->box))
			junk_teach(ju, jt, dest_mail, TRUE);
	} T_END;
	return 0;
}

/* junk_transaction_begin - attach an (empty) queue to every transaction */
static struct mailbox_transaction_context *
junk_transaction_begin(struct mailbox *box, enum mailbox_transaction_flags flags,
		       const char *reason)
{
	union mailbox_module_context *jbox = JUNK_CONTEXT(box);
	struct mailbox_transaction_context *t;
	struct junk_transaction *jt;

	t = jbox->super.transaction_begin(box, flags, reason);
	jt = i_new(struct junk_transaction, 1);
	MODULE_CONTEXT_SET(t, junk_storage_module, jt);
	return t;
}

/* junk_dir - the directory holding the user's list file */
static const char *junk_dir(struct junk_user *ju, struct mail_user *user)
{
	struct mail_namespace *ns;
	const char *path;

	if (ju->dir != NULL)
		return ju->dir;
	ns = mail_namespace_find_inbox(user->namespaces);
	if (ns == NULL ||
	    !mailbox_list_get_root_path(ns->list, MAILBOX_LIST_PATH_TYPE_MAILBOX, &path))
		return NULL;
	ju->dir = p_strdup(user->pool, path);
	return ju->dir;
}

/* junk_notify_replicator - ask the local replicator for a sync of user
 * (lib/hm_notify: one non-blocking line to the aggregator's fifo): the
 * attribute is set after the move's own notify, whose sync may already
 * have read INBOX.  Failures are logged (the next full sync carries the
 * lists then). */
static void junk_notify_replicator(struct junk_user *ju, struct mail_user *user)
{
	char line[HM_NOTIFY_LINE_MAX + 1], err[512];
	ssize_t len = hm_notify_line(line, sizeof line, user->username, "low");

	if (len < 0)
		i_error("homemail_junk: user name too long to notify the replicator");
	else if (hm_notify_fifo(ju->notify_fifo, line, (size_t)len, err, sizeof err) < 0)
		i_error("homemail_junk: notifying the replicator: %s", err);
}

/* junk_publish - store the list text (as just written) as this host's
 * private INBOX attribute, which dsync carries to the peer, and ask the
 * replicator for a sync.  Errors are logged, never fatal. */
static void junk_publish(struct junk_user *ju, struct mail_user *user, const char *text)
{
	struct mail_namespace *ns = mail_namespace_find_inbox(user->namespaces);
	struct mailbox_transaction_context *t;
	struct mail_attribute_value value;
	struct mailbox *box;
	bool ok = FALSE;

	if (ns == NULL)
		return;
	box = mailbox_alloc(ns->list, "INBOX", 0);
	if (mailbox_open(box) < 0) {
		i_error("homemail_junk: publishing the lists: opening INBOX failed: %s",
			mailbox_get_last_internal_error(box, NULL));
		mailbox_free(&box);
		return;
	}
	t = mailbox_transaction_begin(box, 0, "homemail_junk publish");
	i_zero(&value);
	value.value = text;
	if (mailbox_attribute_set(t, MAIL_ATTRIBUTE_TYPE_PRIVATE, ju->replica_key, &value) < 0) {
		i_error("homemail_junk: publishing the lists as /private/%s failed: %s",
			ju->replica_key, mailbox_get_last_internal_error(box, NULL));
		mailbox_transaction_rollback(&t);
	} else if (mailbox_transaction_commit(&t) < 0) {
		i_error("homemail_junk: publishing the lists as /private/%s failed: %s",
			ju->replica_key, mailbox_get_last_internal_error(box, NULL));
	} else {
		ok = TRUE;
	}
	mailbox_free(&box);
	if (ok)
		junk_notify_replicator(ju, user);
}

/* attr_value_text - the value being set, copied whole into a malloc'd
 * NUL-terminated buffer (*len_r bytes), or NULL: unset (nothing to merge),
 * too long (EFBIG), unreadable.  The stream is left for the storage to
 * read again from the start. */
static char *attr_value_text(const struct mail_attribute_value *value, size_t *len_r)
{
	const unsigned char *data;
	buffer_t *buf;
	size_t size;
	char *out;

	*len_r = 0;
	if (value->value != NULL) {
		size = strnlen(value->value, JUNK_ATTR_VALUE_MAX + 1);
		if (size > JUNK_ATTR_VALUE_MAX) {
			errno = EFBIG;
			return NULL;
		}
		out = i_malloc(size + 1);
		memcpy(out, value->value, size);
		*len_r = size;
		return out;
	}
	if (value->value_stream == NULL) {
		errno = 0;
		return NULL;
	}
	buf = buffer_create_dynamic(default_pool, 4096);
	i_stream_seek(value->value_stream, 0);
	while (i_stream_read_more(value->value_stream, &data, &size) > 0) {
		if (size > JUNK_ATTR_VALUE_MAX - buf->used) {
			buffer_free(&buf);
			errno = EFBIG;
			return NULL;
		}
		buffer_append(buf, data, size);
		i_stream_skip(value->value_stream, size);
	}
	if (value->value_stream->stream_errno != 0 || !value->value_stream->eof) {
		/* a stream that is not at its end is not read whole */
		errno = value->value_stream->stream_errno != 0 ?
			value->value_stream->stream_errno : EIO;
		buffer_free(&buf);
		return NULL;
	}
	i_stream_seek(value->value_stream, 0);
	*len_r = buf->used;
	buffer_append_c(buf, '\0');
	out = buffer_free_without_data(&buf);
	return out;
}

/* junk_attribute_set - dsync importing the peer's lists (a private INBOX
 * attribute under JUNK_ATTR_PREFIX, in a sync transaction): store it as
 * usual, then merge it into this host's list file, which homemail-deliver
 * reads.  The value is the peer's (hostile) input: bounded, parsed by the
 * list file's own parser, damaged lines skipped.  Other attributes, and
 * ours set by anything but dsync (our own publishing, a client's
 * SETMETADATA), pass through untouched. */
static int junk_attribute_set(struct mailbox_transaction_context *t,
			      enum mail_attribute_type type_flags, const char *key,
			      const struct mail_attribute_value *value)
{
	union mailbox_module_context *jbox = JUNK_CONTEXT(t->box);
	struct mail_user *user = box_user(t->box);
	struct junk_user *ju = JUNK_USER_CONTEXT(user);
	struct hm_junklist_opts o;
	const char *dir;
	size_t len = 0, taken = 0;
	char *text = NULL;

	if (ju == NULL || !ju->lists || !t->box->inbox_user ||
	    (t->flags & MAILBOX_TRANSACTION_FLAG_SYNC) == 0 ||
	    (type_flags & MAIL_ATTRIBUTE_TYPE_MASK) != MAIL_ATTRIBUTE_TYPE_PRIVATE ||
	    strncmp(key, JUNK_ATTR_PREFIX, strlen(JUNK_ATTR_PREFIX)) != 0)
		return jbox->super.attribute_set(t, type_flags, key, value);

	text = attr_value_text(value, &len);
	if (text == NULL && errno != 0) {
		mail_storage_set_error(t->box->storage, MAIL_ERROR_PARAMS,
			errno == EFBIG ? "homemail junk list attribute too long" :
			"homemail junk list attribute unreadable");
		i_error("homemail_junk: the peer's lists (/private/%s) refused: %s", key,
			errno == EFBIG ? "over the size limit" : strerror(errno));
		return -1;
	}
	if (jbox->super.attribute_set(t, type_flags, key, value) < 0) {
		i_free(text);
		return -1;
	}
	if (text == NULL)               /* unset: nothing to merge */
		return 0;
	T_BEGIN {
		dir = junk_dir(ju, user);
		i_zero(&o);
		o.max_per_kind = ju->max_entries;
		if (dir == NULL)
			i_error("homemail_junk: no INBOX mail directory for %s; "
				"the peer's lists not merged", user->username);
		else if (hm_junklist_merge(dir, text, len, &o, &taken) < 0)
			i_error("homemail_junk: merging the peer's lists (/private/%s) into "
				"%s/%s failed: %s", key, dir, HM_JUNKLIST_FILE,
				errno == ETIMEDOUT ? "lock timeout" : strerror(errno));
		else if (ju->debug)
			i_debug("homemail_junk: %s/%s: %zu entries taken from /private/%s",
				dir, HM_JUNKLIST_FILE, taken, key);
	} T_END;
	i_free(text);
	return 0;
}

/* junk_apply - write the queued changes of a committed transaction */
static void junk_apply(struct junk_user *ju, struct mail_user *user,
		       struct junk_transaction *jt)
{
	struct hm_junklist_opts o;
	struct hm_junk_change *c;
	const struct junk_change *q;
	unsigned int i, n;
	size_t skipped = 0;
	const char *dir;
	char *text = NULL;

	if (jt->dropped > 0)
		i_warning("homemail_junk: %u senders not recorded (over %u in one transaction)",
			  jt->dropped, JUNK_MAX_QUEUE);
	if (jt->pool == NULL || array_count(&jt->changes) == 0)
		return;
	dir = junk_dir(ju, user);
	if (dir == NULL) {
		i_error("homemail_junk: no INBOX mail directory for %s; lists not updated",
			user->username);
		return;
	}
	q = array_get(&jt->changes, &n);
	c = t_new(struct hm_junk_change, n);
	for (i = 0; i < n; i++) {
		c[i].addr = q[i].addr;
		c[i].kind = q[i].kind;
	}
	i_zero(&o);
	o.max_per_kind = ju->max_entries;
	if (ju->replica_key != NULL)
		o.text_r = &text;
	if (hm_junklist_update(dir, c, n, &o, &skipped) < 0) {
		i_error("homemail_junk: updating %s/%s failed: %s", dir, HM_JUNKLIST_FILE,
			errno == ETIMEDOUT ? "lock timeout" : strerror(errno));
		return;
	}
	if (ju->debug)
		i_debug("homemail_junk: %s/%s: %u changes applied, %zu skipped",
			dir, HM_JUNKLIST_FILE, n, skipped);
	if (text != NULL) {
		junk_publish(ju, user, text);
		free(text);
	}
}

/* junk_tctx_free - drop the queue; remove spooled files when aborting */
static void junk_tctx_free(struct junk_transaction **_jt)
{
	struct junk_transaction *jt = *_jt;

	*_jt = NULL;
	if (jt->tmp_mail != NULL)
		mail_free(&jt->tmp_mail);
	if (jt->learn != NULL)
		junk_learn_abort(&jt->learn);
	pool_unref(&jt->pool);
	i_free(jt);
}

/* junk_transaction_commit - commit first; teach only when that worked */
static int junk_transaction_commit(struct mailbox_transaction_context *t,
				   struct mail_transaction_commit_changes *changes_r)
{
	union mailbox_module_context *jbox = JUNK_CONTEXT(t->box);
	struct junk_transaction *jt = junk_tctx(t);
	struct mail_user *user = box_user(t->box);
	struct junk_user *ju = JUNK_USER_CONTEXT(user);

	if (jt == NULL)
		return jbox->super.transaction_commit(t, changes_r);
	/* t is freed by the commit: finish with it first */
	if (jt->tmp_mail != NULL)
		mail_free(&jt->tmp_mail);
	if (jbox->super.transaction_commit(t, changes_r) < 0) {
		junk_tctx_free(&jt);
		return -1;
	}
	if (ju != NULL) T_BEGIN {
		junk_apply(ju, user, jt);
		if (jt->learn != NULL)
			junk_learn_run(ju, &jt->learn);
	} T_END;
	junk_tctx_free(&jt);
	return 0;
}

/* junk_transaction_rollback - a rolled-back move teaches nothing */
static void junk_transaction_rollback(struct mailbox_transaction_context *t)
{
	union mailbox_module_context *jbox = JUNK_CONTEXT(t->box);
	struct junk_transaction *jt = junk_tctx(t);

	if (jt == NULL) {
		jbox->super.transaction_rollback(t);
		return;
	}
	if (jt->tmp_mail != NULL)
		mail_free(&jt->tmp_mail);
	jbox->super.transaction_rollback(t);
	junk_tctx_free(&jt);
}

/* junk_mailbox_allocated - wrap the vfuncs (module-context pattern, super kept) */
static void junk_mailbox_allocated(struct mailbox *box)
{
	struct junk_user *ju = JUNK_USER_CONTEXT(box_user(box));
	struct mailbox_vfuncs *v = box->vlast;
	union mailbox_module_context *jbox;

	if (ju == NULL)
		return;
	jbox = p_new(box->pool, union mailbox_module_context, 1);
	jbox->super = *v;
	box->vlast = &jbox->super;
	v->copy = junk_copy;
	v->save_begin = junk_save_begin;
	v->save_finish = junk_save_finish;
	v->transaction_begin = junk_transaction_begin;
	v->transaction_commit = junk_transaction_commit;
	v->transaction_rollback = junk_transaction_rollback;
	v->attribute_set = junk_attribute_set;
	MODULE_CONTEXT_SET_SELF(box, junk_storage_module, jbox);
}

/* setting_uint - a numeric setting with default and bounds */
static unsigned int setting_uint(struct mail_user *user, const char *name,
				 unsigned int def, unsigned int min, unsigned int max)
{
	const char *s = mail_user_plugin_getenv(user, name);
	unsigned int v;

	if (s == NULL || *s == '\0')
		return def;
	if (str_to_uint(s, &v) < 0 || v < min || v > max) {
		i_error("homemail_junk: %s=%s invalid (want %u..%u); using %u",
			name, s, min, max, def);
		return def;
	}
	return v;
}

/* setting_str - a string setting, def when unset */
static const char *setting_str(struct mail_user *user, const char *name, const char *def)
{
	const char *s = mail_user_plugin_getenv(user, name);
	return s == NULL ? def : p_strdup(user->pool, s);
}

/* junk_learn_settings - parse the learn_command settings */
static void junk_learn_settings(struct mail_user *user, struct junk_user *ju)
{
	const char *cmd = mail_user_plugin_getenv(user, JUNK_SETTING("learn_command"));
	const char *s, *error;
	uoff_t size;

	if (cmd == NULL || *cmd == '\0')
		return;
	const char *const *argv = (const char *const *)
		p_strsplit_spaces(user->pool, cmd, " \t");
	if (argv[0] == NULL || argv[0][0] != '/') {
		i_error("homemail_junk: %s must start with an absolute path; learning off",
			JUNK_SETTING("learn_command"));
		return;
	}
	ju->learn_argv = argv;
	ju->learn_timeout_secs = 30;
	s = mail_user_plugin_getenv(user, JUNK_SETTING("learn_timeout"));
	if (s != NULL && *s != '\0' &&
	    (settings_get_time(s, &ju->learn_timeout_secs, &error) < 0 ||
	     ju->learn_timeout_secs == 0 || ju->learn_timeout_secs > 3600)) {
		i_error("homemail_junk: %s=%s invalid; using 30 s",
			JUNK_SETTING("learn_timeout"), s);
		ju->learn_timeout_secs = 30;
	}
	ju->learn_max_size = 1024 * 1024;
	s = mail_user_plugin_getenv(user, JUNK_SETTING("learn_max_size"));
	if (s != NULL && *s != '\0') {
		if (settings_get_size(s, &size, &error) < 0 || size > 64 * 1024 * 1024)
			i_error("homemail_junk: %s=%s invalid; using 1M",
				JUNK_SETTING("learn_max_size"), s);
		else
			ju->learn_max_size = size;
	}
	ju->learn_max_batch = setting_uint(user, JUNK_SETTING("learn_max_batch"),
					   100, 1, 10000);
	ju->learn_tmpdir = setting_str(user, JUNK_SETTING("learn_tmpdir"), "/tmp");
}

/* junk_replica_settings - in a replicated pair (mail_replica set) the
 * lists are published for the peer under JUNK_ATTR_PREFIX + this host's
 * id: homemail_junk_replica_id, else the host name; [A-Za-z0-9._-] only */
static void junk_replica_settings(struct mail_user *user, struct junk_user *ju)
{
	const char *replica = mail_user_plugin_getenv(user, "mail_replica");
	const char *id = mail_user_plugin_getenv(user, JUNK_SETTING("replica_id"));
	size_t n;

	if (!ju->lists || replica == NULL || *replica == '\0')
		return;
	if (id == NULL || *id == '\0')
		id = my_hostname;
	n = id == NULL ? 0 : strlen(id);
	if (n == 0 || n > JUNK_REPLICA_ID_MAX ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
		i_error("homemail_junk: %s (or the host name) must be 1..%d of [A-Za-z0-9._-]; "
			"the lists are not replicated", JUNK_SETTING("replica_id"),
			JUNK_REPLICA_ID_MAX);
		return;
	}
	ju->replica_key = p_strconcat(user->pool, JUNK_ATTR_PREFIX, id, NULL);
	ju->notify_fifo = p_strconcat(user->pool, user->set->base_dir, "/",
				      JUNK_NOTIFY_FIFO, NULL);
}

/* junk_user_created - read the settings; deliveries get no context (no hooks) */
static void junk_user_created(struct mail_user *user)
{
	struct mail_user_vfuncs *v = user->vlast;
	struct junk_user *ju;

	/* deliveries are not the user's judgement (dovecot-lda, LMTP, Sieve
	 * fileinto :Junk); only what a client or the admin moves counts */
	if (user->service != NULL &&
	    (strcmp(user->service, "lda") == 0 || strcmp(user->service, "lmtp") == 0))
		return;

	ju = p_new(user->pool, struct junk_user, 1);
	ju->module_ctx.super = *v;
	user->vlast = &ju->module_ctx.super;

	ju->junk_name = setting_str(user, JUNK_SETTING("mailbox"), "Junk");
	ju->trash_name = setting_str(user, JUNK_SETTING("trash"), "Trash");
	ju->max_entries = setting_uint(user, JUNK_SETTING("max_entries"),
				       HM_JUNKLIST_DEFAULT_MAX, 1, HM_JUNKLIST_HARD_MAX);
	ju->lists = TRUE;
	const char *s = mail_user_plugin_getenv(user, JUNK_SETTING("lists"));
	if (s != NULL && (strcasecmp(s, "no") == 0 || strcmp(s, "0") == 0))
		ju->lists = FALSE;
	ju->debug = mail_user_plugin_getenv_bool(user, JUNK_SETTING("debug")) ||
		user->mail_debug;
	s = mail_user_plugin_getenv(user, JUNK_SETTING("dir"));
	if (s != NULL && *s != '\0')
		ju->dir = p_strdup(user->pool, s);
	junk_learn_settings(user, ju);
	junk_replica_settings(user, ju);
	MODULE_CONTEXT_SET(user, junk_user_module, ju);
}

static struct mail_storage_hooks junk_mail_storage_hooks = {
	.mail_user_created = junk_user_created,
	.mailbox_allocated = junk_mailbox_allocated,
};

/* homemail_junk_plugin_init - called by Dovecot when the module is loaded */
void homemail_junk_plugin_init(struct module *module)
{
	mail_storage_hooks_add(module, &junk_mail_storage_hooks);
}

/* homemail_junk_plugin_deinit - remove the hooks again */
void homemail_junk_plugin_deinit(void)
{
	mail_storage_hooks_remove(&junk_mail_storage_hooks);
}
