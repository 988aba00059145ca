/* authdb_homemail.c — Dovecot glue for the `homemail` passdb and userdb
 * (libauthdb_homemail.so, loaded from /usr/lib/dovecot/modules/auth).
 *
 *   passdb {
 *     driver = homemail
 *     args = users=/etc/homemail/users system=yes group=users domains=home.com.bo
 *   }
 *   userdb {
 *     driver = homemail
 *     args = users=/etc/homemail/users system=yes group=users domains=home.com.bo
 *   }
 *
 * What for: plugs authdb_core.h (accounts, crypt, lockout, rehash) into
 * Dovecot's passdb/userdb interfaces; all policy lives in the core.
 * Relies on: the installed dovecot-dev headers (built with -DHAVE_CONFIG_H,
 * see module.mk), password_get_scheme() to strip {SCHEME} prefixes,
 * password_verify() for weak Dovecot-only schemes when allow_weak=yes.
 * Both drivers are blocking by default: crypt and /etc/shadow run in the
 * auth-worker processes (root), never in the main auth process.
 * How it fails: bad args stop Dovecot at startup with the reason (the
 * host's convention for configuration errors); runtime I/O problems
 * become INTERNAL_FAILURE (tempfail), logged on the request's event.
 * The password cache key is NULL on purpose: a cached success would bypass
 * the lockout check.
 */
#include "auth-common.h"
#include "passdb.h"
#include "userdb.h"
#include "password-scheme.h"
#include "module-dir.h"
#include "str.h"

#include "authdb_core.h"
#include "hm_util.h"

#include <ctype.h>

/* the service is part of the answer: "smtp" resolves aliases (docs/domains.md) */
#define HOMEMAIL_USERDB_CACHE_KEY "%u\t%s"

struct homemail_passdb_module {
	struct passdb_module module;
	struct hm_authdb db;
};

struct homemail_userdb_module {
	struct userdb_module module;
	struct hm_authdb db;
};

struct homemail_userdb_iterate_context {
	struct userdb_iterate_context ctx;
	char **list;
	size_t pos;
};

const char *authdb_homemail_version = DOVECOT_ABI_VERSION;
void authdb_homemail_init(struct module *module);
void authdb_homemail_deinit(void);

/* homemail_log - core log callback: on the request's event when there is one */
static void homemail_log(void *ctx, enum hm_authdb_log_level level, const char *msg)
{
	struct auth_request *request = ctx;
	struct event *event = request != NULL ? authdb_event(request) : auth_event;

	switch (level) {
	case HM_AUTHDB_DEBUG:
		e_debug(event, "homemail: %s", msg);
		break;
	case HM_AUTHDB_INFO:
		e_info(event, "homemail: %s", msg);
		break;
	case HM_AUTHDB_WARNING:
		e_warning(event, "homemail: %s", msg);
		break;
	case HM_AUTHDB_ERROR:
		e_error(event, "homemail: %s", msg);
		break;
	}
}

/* homemail_split - strip a {SCHEME} prefix the way every Dovecot driver
 * must: with password_get_scheme() (it also recognises bare $1$ hashes) */
static const char *homemail_split(const char *stored, char *scheme_buf, size_t bufsize)
{
	const char *p = stored, *scheme = password_get_scheme(&p);

	if (scheme == NULL) {
		scheme_buf[0] = '\0';
		return stored;
	}
	if (hm_strlcpy(scheme_buf, scheme, bufsize) < 0)
		return NULL;
	for (char *c = scheme_buf; *c != '\0'; c++)
		*c = (char)toupper((unsigned char)*c);
	return p;
}

/* homemail_ext_verify - Dovecot's own schemes (SSHA, ...), allow_weak only */
static int homemail_ext_verify(void *ctx, const char *plain, const char *scheme,
			       const char *hash, const char *user)
{
	struct password_generate_params params = { .user = user, .rounds = 0 };
	const unsigned char *raw;
	const char *error;
	size_t size;
	int ret;

	(void)ctx;
	if (password_decode(hash, scheme, &raw, &size, &error) <= 0)
		return -1;
	ret = password_verify(plain, &params, scheme, raw, size, &error);
	return ret < 0 ? -1 : ret;
}

/* make_db - parse args and set up the core; bad args stop Dovecot */
static void make_db(struct hm_authdb *db, const char *kind, const char *args, bool *blocking_r)
{
	struct hm_authdb_set set;
	char err[256];

	hm_authdb_set_default(&set);
	if (hm_authdb_parse_args(args, &set, err, sizeof(err)) < 0)
		i_fatal("%s homemail: %s", kind, err);
	hm_authdb_init(db, &set, homemail_log, NULL);
	db->split = homemail_split;
	db->ext_verify = homemail_ext_verify;
	*blocking_r = set.blocking;
}

/* ---- passdb ---- */

static struct passdb_module *homemail_passdb_preinit(pool_t pool, const char *args)
{
	struct homemail_passdb_module *m = p_new(pool, struct homemail_passdb_module, 1);
	bool blocking;

	make_db(&m->db, "passdb", args, &blocking);
	m->module.blocking = blocking;
	m->module.default_pass_scheme = "CRYPT";
	m->module.default_cache_key = NULL;
	return &m->module;
}

static void homemail_passdb_deinit(struct passdb_module *module)
{
	struct homemail_passdb_module *m = (struct homemail_passdb_module *)module;

	hm_authdb_deinit(&m->db);
}

/* The service name homemail-passwd's password change authenticates with:
 * an expired password must still verify there (docs/domains.md). */
#define HM_PASSWD_SERVICE "homemail-passwd"
#define HM_EXPIRED_REASON "Password expired: change it in the webmail (Settings, Password)"

/* expired_may_login - may an account whose password expired log in through
 * this request?  Only to change the password: homemail-passwd's check, and
 * the webmail on this host (its connection's real addresses are both this
 * host's own, whatever address it hands over for the browser). */
static bool expired_may_login(const struct auth_request *request)
{
	const char *service = request->fields.service;

	if (service != NULL && strcmp(service, HM_PASSWD_SERVICE) == 0)
		return true;
	return request->fields.real_remote_ip.family != 0 &&
	       net_ip_compare(&request->fields.real_remote_ip, &request->fields.real_local_ip);
}

/* refuse_if_expired - an expired password fails every other login with a
 * reason the client shows (Dovecot's "fail" + "reason" passdb fields; the
 * password was right, so nothing is counted in the lockout).  Returns true
 * when it refused. */
static bool refuse_if_expired(struct homemail_passdb_module *m, struct auth_request *request,
			      const char *canon)
{
	struct hm_authdb_account acct;
	bool expired = false;

	m->db.log_ctx = request;
	if (hm_authdb_lookup(&m->db, canon, &acct) == 1) {
		expired = acct.pw_expired;
		hm_authdb_account_free(&acct);
	}
	m->db.log_ctx = NULL;
	if (!expired)
		return false;
	if (expired_may_login(request)) {
		auth_request_log_info(request, AUTH_SUBSYS_DB,
				      "password expired: login allowed to change it");
		return false;
	}
	auth_request_log_info(request, AUTH_SUBSYS_DB, "login refused: password expired");
	/* Dovecot's login processes (imap, pop3, sieve ...) honour "nologin"
	 * and show its reason; other auth clients (Exim's SMTP AUTH) see only
	 * OK or FAIL, so for them the lookup fails outright */
	if (request->fields.service != NULL &&
	    (strcmp(request->fields.service, "imap") == 0 ||
	     strcmp(request->fields.service, "pop3") == 0 ||
	     strcmp(request->fields.service, "sieve") == 0))
		auth_request_set_field(request, "nologin", "y", NULL);
	else
		auth_request_set_field(request, "fail", "y", NULL);
	auth_request_set_field(request, "reason", HM_EXPIRED_REASON, NULL);
	return true;
}

/* homemail_verify_plain - the whole check happens in the core (worker) */
static void homemail_verify_plain(struct auth_request *request, const char *password,
				  verify_plain_callback_t *callback)
{
	struct homemail_passdb_module *m =
		(struct homemail_passdb_module *)request->passdb->passdb;
	char canon[HM_AUTHDB_MAX_LOGIN + 1];
	const char *rip = NULL;
	enum hm_authdb_result res;

	if (request->fields.remote_ip.family != 0)
		rip = net_ip2addr(&request->fields.remote_ip);
	m->db.log_ctx = request;
	res = hm_authdb_verify(&m->db, request->fields.user, password, rip,
			       canon, sizeof(canon));
	m->db.log_ctx = NULL;
	switch (res) {
	case HM_AUTHDB_OK:
		if (strcmp(canon, request->fields.user) != 0)
			auth_request_set_field(request, "user", canon, NULL);
		(void)refuse_if_expired(m, request, canon);
		callback(PASSDB_RESULT_OK, request);
		break;
	case HM_AUTHDB_MISMATCH:
		callback(PASSDB_RESULT_PASSWORD_MISMATCH, request);
		break;
	case HM_AUTHDB_UNKNOWN:
		callback(PASSDB_RESULT_USER_UNKNOWN, request);
		break;
	case HM_AUTHDB_INTERNAL:
	default:
		callback(PASSDB_RESULT_INTERNAL_FAILURE, request);
		break;
	}
}

static struct passdb_module_interface passdb_homemail = {
	.name = "homemail",
	.preinit = homemail_passdb_preinit,
	.deinit = homemail_passdb_deinit,
	.verify_plain = homemail_verify_plain,
};

/* ---- userdb ---- */

static struct userdb_module *homemail_userdb_preinit(pool_t pool, const char *args)
{
	struct homemail_userdb_module *m = p_new(pool, struct homemail_userdb_module, 1);
	bool blocking;

	make_db(&m->db, "userdb", args, &blocking);
	m->module.blocking = blocking;
	m->module.default_cache_key = HOMEMAIL_USERDB_CACHE_KEY;
	return &m->module;
}

static void homemail_userdb_deinit(struct userdb_module *module)
{
	struct homemail_userdb_module *m = (struct homemail_userdb_module *)module;

	hm_authdb_deinit(&m->db);
}

/* set_account_fields - uid gid home mail quota_rule sieve of an account */
static void set_account_fields(struct auth_request *request, struct homemail_userdb_module *m,
			       const struct hm_authdb_account *acct)
{
	char buf[HM_USERS_MAX_HOME + 300];

	if (strcmp(acct->name, request->fields.user) != 0)
		auth_request_set_field(request, "user", acct->name, NULL);
	if (!acct->is_virtual)
		auth_request_set_userdb_field(request, "system_groups_user", acct->name);
	auth_request_set_userdb_field(request, "uid", dec2str(acct->uid));
	auth_request_set_userdb_field(request, "gid", dec2str(acct->gid));
	auth_request_set_userdb_field(request, "home", acct->home);
	if (m->db.set.mail[0] != '\0' &&
	    hm_authdb_expand(m->db.set.mail, acct->home, buf, sizeof(buf)) == 0)
		auth_request_set_userdb_field(request, "mail", buf);
	hm_authdb_quota_rule(acct->quota_bytes, buf, sizeof(buf));
	if (buf[0] != '\0')
		auth_request_set_userdb_field(request, "quota_rule", buf);
	if (m->db.set.sieve[0] != '\0' &&
	    hm_authdb_expand(m->db.set.sieve, acct->home, buf, sizeof(buf)) == 0)
		auth_request_set_userdb_field(request, "sieve", buf);
}

/* userdb_route - the lookup of service "smtp" (Exim's RCPT check and
 * routers, through homemail_scan.so): accounts, plus-addresses, aliases and
 * catch-alls.  An alias answers homemail_targets (comma-separated leaves) or
 * homemail_fail (why it cannot be delivered), and no uid. */
static void userdb_route(struct auth_request *request, struct homemail_userdb_module *m,
			 userdb_callback_t *callback)
{
	struct hm_authdb_account acct;
	struct hm_route route;
	int r;

	m->db.log_ctx = request;
	r = hm_authdb_route(&m->db, request->fields.user, &route, &acct);
	m->db.log_ctx = NULL;
	if (r < 0) {
		callback(USERDB_RESULT_INTERNAL_FAILURE, request);
		return;
	}
	switch (route.kind) {
	case HM_ROUTE_ACCOUNT:
		set_account_fields(request, m, &acct);
		if (route.detail[0] != '\0')
			auth_request_set_userdb_field(request, "homemail_detail", route.detail);
		hm_authdb_account_free(&acct);
		break;
	case HM_ROUTE_ALIAS: {
		string_t *str = t_str_new(256);
		for (size_t i = 0; i < route.ntargets; i++) {
			if (i > 0)
				str_append_c(str, ',');
			str_append(str, route.targets[i]);
		}
		auth_request_set_userdb_field(request, "homemail_targets", str_c(str));
		break;
	}
	case HM_ROUTE_FAIL:
		auth_request_set_userdb_field(request, "homemail_fail", route.why);
		break;
	default:
		hm_route_free(&route);
		auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
		callback(USERDB_RESULT_USER_UNKNOWN, request);
		return;
	}
	hm_route_free(&route);
	callback(USERDB_RESULT_OK, request);
}

/* homemail_userdb_lookup - uid gid home mail quota_rule sieve */
static void homemail_userdb_lookup(struct auth_request *request, userdb_callback_t *callback)
{
	struct homemail_userdb_module *m =
		(struct homemail_userdb_module *)request->userdb->userdb;
	const char *service = request->fields.service != NULL ? request->fields.service : "";
	struct hm_authdb_account acct;
	int r;

	if (strcmp(service, "smtp") == 0) {
		userdb_route(request, m, callback);
		return;
	}
	m->db.log_ctx = request;
	r = hm_authdb_lookup(&m->db, request->fields.user, &acct);
	m->db.log_ctx = NULL;
	if (r < 0) {
		callback(USERDB_RESULT_INTERNAL_FAILURE, request);
		return;
	}
	/* a closed account takes no more mail, not even what was queued */
	if (r == 1 && acct.mail_refused &&
	    (strcmp(service, "deliver") == 0 || strcmp(service, "lda") == 0)) {
		hm_authdb_account_free(&acct);
		r = 0;
	}
	if (r == 0) {
		auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
		callback(USERDB_RESULT_USER_UNKNOWN, request);
		return;
	}
	set_account_fields(request, m, &acct);
	hm_authdb_account_free(&acct);
	callback(USERDB_RESULT_OK, request);
}

static struct userdb_iterate_context *
homemail_iterate_init(struct auth_request *request, userdb_iter_callback_t *callback,
		      void *context)
{
	struct homemail_userdb_module *m =
		(struct homemail_userdb_module *)request->userdb->userdb;
	struct homemail_userdb_iterate_context *ctx =
		i_new(struct homemail_userdb_iterate_context, 1);

	ctx->ctx.auth_request = request;
	ctx->ctx.callback = callback;
	ctx->ctx.context = context;
	m->db.log_ctx = request;
	ctx->list = hm_authdb_list(&m->db);
	m->db.log_ctx = NULL;
	if (ctx->list == NULL)
		ctx->ctx.failed = TRUE;
	return &ctx->ctx;
}

static void homemail_iterate_next(struct userdb_iterate_context *_ctx)
{
	struct homemail_userdb_iterate_context *ctx =
		(struct homemail_userdb_iterate_context *)_ctx;

	if (ctx->list != NULL && ctx->list[ctx->pos] != NULL)
		_ctx->callback(ctx->list[ctx->pos++], _ctx->context);
	else
		_ctx->callback(NULL, _ctx->context);
}

static int homemail_iterate_deinit(struct userdb_iterate_context *_ctx)
{
	struct homemail_userdb_iterate_context *ctx =
		(struct homemail_userdb_iterate_context *)_ctx;
	int ret = _ctx->failed ? -1 : 0;

	hm_authdb_list_free(ctx->list);
	i_free(ctx);
	return ret;
}

static struct userdb_module_interface userdb_homemail = {
	.name = "homemail",
	.preinit = homemail_userdb_preinit,
	.deinit = homemail_userdb_deinit,
	.lookup = homemail_userdb_lookup,
	.iterate_init = homemail_iterate_init,
	.iterate_next = homemail_iterate_next,
	.iterate_deinit = homemail_iterate_deinit,
};

void authdb_homemail_init(struct module *module ATTR_UNUSED)
{
	passdb_register_module(&passdb_homemail);
	userdb_register_module(&userdb_homemail);
}

void authdb_homemail_deinit(void)
{
	passdb_unregister_module(&passdb_homemail);
	userdb_unregister_module(&userdb_homemail);
}
