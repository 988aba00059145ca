/* scan_exim.c — homemail_scan.so: the glue between Debian's exim4 and the
 * homemail scan engine.  The only file of homemail that includes Exim's
 * local_scan.h (exim4-dev); the Makefile checks its ABI major against
 * `exim4-localscan-plugin-config --localscan-apiversion`.
 *
 * Exim loads this object through `local_scan_path` (Debian's localscan_dlopen
 * patch), checks local_scan_version_major/minor and calls local_scan() at
 * the end of DATA.  Uses only symbols /usr/sbin/exim4 exports (header_list,
 * header_add, log_write, expand_string, string_copy_function, ...): globals
 * it does not export are read through expand_string().
 *
 * Safety inside Exim: no exit(), no alarm() (Exim's local_scan_timeout owns
 * SIGALRM — the engine keeps its own time budget), no static result buffers;
 * the engine's memory is malloc'd and freed before returning.  The
 * configuration is read once per process; a bad file logs one mainlog line
 * per message and gives a temporary rejection whose text names no path.
 *
 * Sender authentication (docs/mailauth.md): when the DATA ACL marked the
 * message ($acl_m_hm_mailauth = check), DMARC is evaluated after the MIME
 * policy (scan_dmarc.c) from the SPF and DKIM results the ACLs kept in
 * $acl_m_hm_spf, $acl_m_hm_spf_domain, $acl_m_hm_spf_id and $acl_m_hm_dkim,
 * with DNS through Exim's own resolver (${lookup dnsdb{defer_strict,...}}:
 * a temporary failure fails the expansion and the message gets 451).  One
 * Authentication-Results header is added at the top; incoming ones with our
 * authserv-id are removed first, whether or not DMARC ran.
 *
 * homemail_user_exists, for ${dlfunc{.../homemail_scan.so}{homemail_user_exists}
 * {$local_part@$domain}[{SOCKET}]} in the RCPT ACL: "yes"/"no" from
 * Dovecot's userdb over its auth-master socket (lib/hm_authmaster, bounded
 * by auth_timeout with poll(), no signals); a socket that is missing, refuses
 * or times out gives DEFER, so the ACL answers 451 and never "unknown user".
 *
 * homemail_route, for the routers of router/340_homemail_accounts:
 * ${dlfunc{.../homemail_scan.so}{homemail_route}{ADDRESS}{SOCKET}{virtual|system|alias}}
 * asks the same userdb (service "smtp": accounts, plus-addresses, aliases,
 * catch-alls) and gives the router's address_data (scan_route.c), a forced
 * failure (the router declines) when the address is not of that kind, DEFER
 * when Dovecot cannot answer or answers something unusable.
 */
#define LOCAL_SCAN
#define DLFUNC_IMPL
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hm_authmaster.h"
#include "hm_util.h"
#include "local_scan.h"
#include "scan.h"
#include "scan_route.h"
#include "scan_dmarc.h"

#if !defined(HM_EXIM_ABI_MAJOR) || LOCAL_SCAN_ABI_VERSION_MAJOR != HM_EXIM_ABI_MAJOR
#error "local_scan.h does not match the ABI major of the installed exim4"
#endif
#if LOCAL_SCAN_ABI_VERSION_MINOR > HM_EXIM_ABI_MINOR
#error "local_scan.h is newer than the installed exim4"
#endif

#define TEMP_TEXT "local scanning problem, please try again later"

/* per process: loaded on the first message (Exim forks per connection) */
static struct scan_conf g_conf;
static int g_state;            /* 0 not loaded, 1 ok, -1 bad */
static char g_err[512];
static int g_dmarc_state;      /* 0 public suffix list not loaded, 1 ok */

int local_scan_version_major(void);
int local_scan_version_minor(void);

int local_scan_version_major(void)
{
	return LOCAL_SCAN_ABI_VERSION_MAJOR;
}

int local_scan_version_minor(void)
{
	return LOCAL_SCAN_ABI_VERSION_MINOR;
}

/* load_conf - read scan.conf once; Returns 0 usable, -1 (g_err says why) */
static int load_conf(void)
{
	if (g_state == 0) {
		if (scan_conf_defaults(&g_conf) < 0) {
			strcpy(g_err, "out of memory loading defaults");
			return -1; /* try again on the next message */
		}
		int r = scan_conf_load(scan_conf_path(), &g_conf, g_err, sizeof g_err);
		if (r < 0) {
			scan_conf_free(&g_conf);
			g_state = -1;
		} else {
			g_state = 1;
		}
	}
	return g_state == 1 ? 0 : -1;
}

/* temp - temporary rejection with the generic text (never a path) */
static int temp(uschar **return_text)
{
	*return_text = string_copy(US TEMP_TEXT);
	return LOCAL_SCAN_TEMPREJECT;
}

/* smtputf8 - did the client use SMTPUTF8?  Not an exported global: ask expand */
static BOOL smtputf8(void)
{
	uschar *v = expand_string(US "${if bool{$message_smtputf8}{1}{0}}");
	return v && v[0] == '1';
}

/* ---- sender authentication: DMARC --------------------------------------- */

#define DMARC_TEMP_TEXT "DMARC: temporary failure looking up the sender's policy, please try again later"

/* acl_var - the value of an ACL variable ("" when unset or on error); the
 * name is ours, never message data */
static const char *acl_var(const char *name)
{
	char q[64];
	if (hm_snprintf(q, sizeof q, "$%s", name) < 0)
		return "";
	uschar *v = expand_string(US q);
	return v ? (const char *)v : "";
}

/* dns_txt - dmarc_lookup_fn over Exim's resolver: name is a clean domain
 * (letters, digits, '-', '_', '.'), so it cannot change the expansion */
static int dns_txt(void *ctx, const char *name, char **txt_r)
{
	char q[DMARC_DOMAIN_MAX + 96];
	(void)ctx;
	*txt_r = NULL;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_' || *p == '.'))
			return 0;
	if (hm_snprintf(q, sizeof q, "${lookup dnsdb{defer_strict,txt=%s}{Y$value}{N}}", name) < 0)
		return 0;
	uschar *v = expand_string(US q);
	if (v == NULL)
		return -1;      /* DNS deferred (timeout, SERVFAIL) */
	if (v[0] != 'Y')
		return 0;
	*txt_r = strndup((const char *)v + 1, DMARC_TXT_MAX);
	return *txt_r ? 1 : -1;
}

/* header_name_is - header line h is a (live) field called name */
static BOOL header_name_is(const header_line *h, const char *name)
{
	size_t n = strlen(name);
	if (h->type == '*' || !h->text || h->slen <= (int)n || strncasecmp((const char *)h->text, name, n) != 0)
		return FALSE;
	const char *p = (const char *)h->text + n;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == ':';
}

/* header_value - start of the value of h (after "Name:") and its length */
static const char *header_value(const header_line *h, size_t *len_r)
{
	const char *t = (const char *)h->text, *c;
	if (!t || h->slen <= 0) {
		*len_r = 0;
		return "";
	}
	c = memchr(t, ':', (size_t)h->slen);
	if (!c) {
		*len_r = 0;
		return t;
	}
	c++;
	*len_r = (size_t)h->slen - (size_t)(c - t);
	return c;
}

/* authserv_id - scan.conf's authserv_id, else Exim's primary_hostname */
static const char *authserv_id(void)
{
	if (g_conf.authserv_id && g_conf.authserv_id[0])
		return g_conf.authserv_id;
	uschar *v = expand_string(US "$primary_hostname");
	return v && *v ? (const char *)v : "localhost";
}

/* remove_our_authres - drop every incoming Authentication-Results that
 * claims our authserv-id (RFC 8601 5: a forged one must not survive) */
static void remove_our_authres(const char *id)
{
	for (header_line *h = header_list; h; h = h->next) {
		if (!header_name_is(h, "Authentication-Results"))
			continue;
		size_t n;
		const char *v = header_value(h, &n);
		if (dmarc_authres_is_ours(v, n, id))
			h->type = '*';
	}
}

/* history_append - one aggregate-report line into DIR/YYYY-MM-DD (UTC), not
 * past max bytes; failures are logged, never fatal for the message */
static void history_append(const char *dir, size_t max, time_t now, const char *line)
{
	struct tm tm;
	char path[256];
	struct stat st;
	size_t len = strlen(line);

	if (!gmtime_r(&now, &tm) ||
	    hm_snprintf(path, sizeof path, "%s/%04d-%02d-%02d", dir, tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday) < 0)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0) {
		log_write(0, LOG_MAIN, "homemail-dmarc: cannot open the report data file: %s",
			  strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	if ((size_t)st.st_size > max || max - (size_t)st.st_size < len) {
		close(fd);
		log_write(0, LOG_MAIN, "homemail-dmarc: report data file full (dmarc_history_max), not recorded");
		return;
	}
	/* one write(): O_APPEND keeps concurrent receivers' lines whole */
	if (write(fd, line, len) != (ssize_t)len)
		log_write(0, LOG_MAIN, "homemail-dmarc: writing the report data file: %s",
			  strerror(errno));
	close(fd);
}

struct mailauth {
	BOOL checked;          /* DMARC ran */
	BOOL quarantine;       /* disposition quarantine: to the recipient's Junk */
	char *authres;         /* our Authentication-Results value, malloc'd */
};

/* mailauth_check - DMARC for a message the MIME policy accepted.  Returns
 * LOCAL_SCAN_ACCEPT (ma filled), LOCAL_SCAN_REJECT or LOCAL_SCAN_TEMPREJECT
 * (*return_text set) */
static int mailauth_check(struct mailauth *ma, uschar **return_text)
{
	memset(ma, 0, sizeof *ma);
	if (!g_conf.dmarc || strcmp(acl_var("acl_m_hm_mailauth"), "check") != 0)
		return LOCAL_SCAN_ACCEPT;
	if (g_dmarc_state == 0) {
		if (dmarc_init(g_conf.dmarc_psl) < 0) {
			log_write(0, LOG_MAIN, "homemail-dmarc: cannot load the public suffix list: %s, deferring",
				  strerror(errno));
			*return_text = string_copy(US DMARC_TEMP_TEXT);
			return LOCAL_SCAN_TEMPREJECT;
		}
		g_dmarc_state = 1;
	}
	struct dmarc_input in;
	memset(&in, 0, sizeof in);
	for (header_line *h = header_list; h; h = h->next)
		if (header_name_is(h, "From")) {
			in.from = header_value(h, &in.from_len);
			break;
		}
	in.spf = acl_var("acl_m_hm_spf");
	in.spf_domain = acl_var("acl_m_hm_spf_domain");
	in.spf_helo = strcmp(acl_var("acl_m_hm_spf_id"), "helo") == 0;
	in.dkim = acl_var("acl_m_hm_dkim");
	in.ip = acl_var("sender_host_address");
	in.pct_roll = arc4random_uniform(100);

	struct dmarc_outcome o;
	if (dmarc_evaluate(&in, dns_txt, NULL, &o) < 0) {
		log_write(0, LOG_MAIN, "homemail-dmarc: out of memory, deferring");
		*return_text = string_copy(US DMARC_TEMP_TEXT);
		return LOCAL_SCAN_TEMPREJECT;
	}
	ma->checked = TRUE;
	log_write(0, LOG_MAIN, "homemail-dmarc: %s header.from=%s policy=%s dis=%s "
		  "spf_aligned=%s dkim_aligned=%s%s%s%s",
		  dmarc_result_name(o.result), o.from_domain[0] ? o.from_domain : "-",
		  dmarc_policy_name(o.policy), dmarc_policy_name(o.disposition),
		  o.spf_aligned ? "yes" : "no", o.dkim_aligned ? "yes" : "no",
		  o.why ? " (" : "", o.why ? o.why : "", o.why ? ")" : "");
	if (o.result == DMARC_TEMPERROR) {
		char t[200];
		/* o.why is one of scan_dmarc.c's fixed texts */
		hm_snprintf(t, sizeof t, "DMARC: temporary failure (%s), please try again later",
			    o.why ? o.why : "DNS");
		*return_text = string_copy(US t);
		return LOCAL_SCAN_TEMPREJECT;
	}
	if (g_conf.dmarc_history && g_conf.dmarc_history[0] && o.policy_domain[0]) {
		time_t now = time(NULL);
		char *line = dmarc_report_line((long long)now, &in, &o);
		if (line)
			history_append(g_conf.dmarc_history, g_conf.dmarc_history_max, now, line);
		free(line);
	}
	if (o.disposition == DMARC_P_REJECT) {
		char t[DMARC_DOMAIN_MAX + 200];
		if (o.result == DMARC_PERMERROR)
			hm_snprintf(t, sizeof t, "DMARC: rejected, the From: header names more than one domain");
		else
			hm_snprintf(t, sizeof t, "DMARC policy of %s rejects this message: the From: domain "
				    "is not aligned with a passing SPF or DKIM result", o.from_domain);
		*return_text = string_copy(US t);
		return LOCAL_SCAN_REJECT;
	}
	ma->quarantine = o.disposition == DMARC_P_QUARANTINE;
	ma->authres = dmarc_authres(authserv_id(), &in, &o);
	if (!ma->authres) {
		log_write(0, LOG_MAIN, "homemail-dmarc: out of memory, deferring");
		*return_text = string_copy(US DMARC_TEMP_TEXT);
		return LOCAL_SCAN_TEMPREJECT;
	}
	return LOCAL_SCAN_ACCEPT;
}

int local_scan(int fd, uschar **return_text)
{
	if (load_conf() < 0) {
		log_write(0, LOG_MAIN, "homemail-scan: configuration error, deferring: %s", g_err);
		return temp(return_text);
	}
	struct scan_opts o = {.smtputf8 = smtputf8()};
	struct scan *s = scan_new(&g_conf, &o);
	if (!s) {
		log_write(0, LOG_MAIN, "homemail-scan: out of memory, deferring");
		return temp(return_text);
	}
	int stop = 0;
	for (header_line *h = header_list; h && !stop; h = h->next) {
		if (h->type == '*' || !h->text || h->slen <= 0)
			continue; /* '*' marks headers Exim has deleted */
		stop = scan_feed(s, (const char *)h->text, (size_t)h->slen);
	}
	if (!stop)
		stop = scan_feed(s, "\n", 1);
	int r = stop ? 0 : scan_feed_fd(s, fd);
	if (r < 0) {
		int e = errno;
		scan_free(&s);
		if (r == -1)
			log_write(0, LOG_MAIN, "homemail-scan: out of memory, deferring");
		else
			log_write(0, LOG_MAIN, "homemail-scan: reading the spool file: %s, deferring",
				  strerror(e));
		return temp(return_text);
	}
	const struct scan_verdict *v = scan_finish(s);
	int rc;
	switch (v->action) {
	case SCAN_REJECT:
		*return_text = string_copy(US(v->reason && *v->reason ? v->reason : "rejected by policy"));
		rc = LOCAL_SCAN_REJECT;
		break;
	case SCAN_TEMPREJECT:
		*return_text = string_copy(US(v->reason && *v->reason ? v->reason : TEMP_TEXT));
		rc = LOCAL_SCAN_TEMPREJECT;
		break;
	case SCAN_FREEZE:
		rc = LOCAL_SCAN_ACCEPT_FREEZE;
		break;
	default:
		rc = LOCAL_SCAN_ACCEPT;
		break;
	}
	if (v->log)
		log_write(0, LOG_MAIN, "%s", v->log);
	if (rc == LOCAL_SCAN_ACCEPT || rc == LOCAL_SCAN_ACCEPT_FREEZE) {
		struct mailauth ma;
		int arc = mailauth_check(&ma, return_text);
		if (arc != LOCAL_SCAN_ACCEPT) {
			scan_free(&s);
			return arc;
		}
		/* a sender's own X-Homemail-Scan would look like our verdict to
		 * Sieve rules and readers: only ours survives */
		header_remove(0, US "X-Homemail-Scan");
		if (v->header && ma.quarantine) {
			/* DMARC quarantine: the LDA files "tag" into Junk, and
			 * dmarc=quarantine there even for a sender the user trusts
			 * (deliver_junk.c); this header cannot come from outside */
			const char *rest = strncmp(v->header, "accept", 6) == 0 ? v->header + 6 : NULL;
			if (rest)
				header_add(' ', "X-Homemail-Scan: tag%s; dmarc=quarantine\n", rest);
			else
				header_add(' ', "X-Homemail-Scan: %s; dmarc=quarantine\n", v->header);
		} else if (v->header) {
			header_add(' ', "X-Homemail-Scan: %s\n", v->header);
		}
		remove_our_authres(authserv_id());
		if (ma.authres)
			header_add_at_position(FALSE, NULL, FALSE, ' ', "Authentication-Results: %s\n",
					       ma.authres);
		free(ma.authres);
	}
	scan_free(&s);
	return rc;
}

int homemail_user_exists(uschar **yield, int argc, uschar *argv[]);

/* homemail_user_exists - dlfunc: OK with "yes"/"no", DEFER when Dovecot cannot
 * answer, ERROR for a call with the wrong arguments */
int homemail_user_exists(uschar **yield, int argc, uschar *argv[])
{
	if (argc < 1 || argc > 2 || !argv[0]) {
		*yield = string_copy(US "homemail_user_exists: usage: {ADDRESS}[{SOCKET}]");
		return ERROR;
	}
	if (load_conf() < 0) {
		log_write(0, LOG_MAIN, "homemail-scan: configuration error: %s", g_err);
		*yield = string_copy(US "homemail_user_exists: configuration error");
		return DEFER;
	}
	const char *sock = (argc == 2 && argv[1] && argv[1][0]) ? (const char *)argv[1]
								   : g_conf.auth_socket;
	struct hm_auth_reply *r = NULL;
	char err[256] = "";
	int rc = hm_auth_user_lookup(sock, (const char *)argv[0], "smtp", (int)g_conf.auth_timeout_ms,
				     &r, err, sizeof err);
	hm_auth_reply_free(&r);
	switch (rc) {
	case HM_AUTH_FOUND:
		*yield = string_copy(US "yes");
		return OK;
	case HM_AUTH_NOTFOUND:
		*yield = string_copy(US "no");
		return OK;
	default:
		log_write(0, LOG_MAIN, "homemail_user_exists: userdb unreachable: %s", err);
		*yield = string_copy(US "recipient verification temporarily unavailable");
		return DEFER;
	}
}

int homemail_route(uschar **yield, int argc, uschar *argv[]);

/* homemail_route - dlfunc: OK with the router's data, FAIL_FORCED when the
 * address is unknown or of the other kind, DEFER when the userdb cannot
 * answer usably, ERROR for a call with the wrong arguments */
int homemail_route(uschar **yield, int argc, uschar *argv[])
{
	if (argc != 3 || !argv[0] || !argv[1] || !argv[2] ||
	    (strcmp((const char *)argv[2], "virtual") != 0 &&
	     strcmp((const char *)argv[2], "system") != 0 &&
	     strcmp((const char *)argv[2], "alias") != 0)) {
		*yield = string_copy(US "homemail_route: usage: {ADDRESS}{SOCKET}{virtual|system|alias}");
		return ERROR;
	}
	if (load_conf() < 0) {
		log_write(0, LOG_MAIN, "homemail-scan: configuration error: %s", g_err);
		*yield = string_copy(US "homemail_route: configuration error");
		return DEFER;
	}
	const char *sock = argv[1][0] ? (const char *)argv[1] : g_conf.auth_socket;
	enum scan_route_want want = argv[2][0] == 'v' ? SCAN_ROUTE_VIRTUAL :
				    argv[2][0] == 's' ? SCAN_ROUTE_SYSTEM : SCAN_ROUTE_ALIAS;
	struct hm_auth_reply *r = NULL;
	char err[256] = "";
	char *out = NULL;
	int rc = hm_auth_user_lookup(sock, (const char *)argv[0], "smtp", (int)g_conf.auth_timeout_ms,
				     &r, err, sizeof err);
	switch (rc) {
	case HM_AUTH_FOUND:
		break;
	case HM_AUTH_NOTFOUND:
		hm_auth_reply_free(&r);
		*yield = string_copy(US "not a homemail address");
		return FAIL_FORCED;
	default:
		hm_auth_reply_free(&r);
		log_write(0, LOG_MAIN, "homemail_route: userdb unreachable: %s", err);
		*yield = string_copy(US "address lookup temporarily unavailable");
		return DEFER;
	}
	rc = scan_route_format(r, want, &out, err, sizeof err);
	hm_auth_reply_free(&r);
	if (rc < 0) {
		log_write(0, LOG_MAIN, "homemail_route: %s", err);
		*yield = string_copy(US "address lookup temporarily unavailable");
		return DEFER;
	}
	if (rc == 0) {
		*yield = string_copy(US "not of this kind");
		return FAIL_FORCED;
	}
	*yield = string_copy(US out);
	free(out);
	return OK;
}

/* ---- the policy's refusals in the DATA ACL ------------------------------
 *
 * homemail_mime_verdict, for ${dlfunc{.../homemail_scan.so}{homemail_mime_verdict}}
 * in the DATA ACL before the `malware` and `spam` conditions: the same
 * engine and configuration as local_scan, on the same bytes (Exim's header
 * list and the spool -D file), so a message the policy refuses is refused
 * before clamd and rspamd spend time on it (docs/filtering.md, "The order of
 * checks").  Yields "reject TEXT" or "tempreject TEXT" for a refusal and
 * "accept" for anything else: local_scan still runs afterwards and stays the
 * authority for what it accepts (the X-Homemail-Scan header, freeze, tag),
 * and for messages that never pass the DATA ACL (local submissions).  When
 * the -D file cannot be read here it yields "accept" with a log line, and
 * local_scan judges the message as before: never a silent pass.  Always OK.
 */
int homemail_mime_verdict(uschar **yield, int argc, uschar *argv[]);

/* open_data_file - the -D file of the message being received, positioned
 * after its first line ("<id>-D\n", checked); -1 (errno set) when absent */
static int open_data_file(void)
{
	uschar *spool = expand_string(US "$spool_directory");
	char path[4096], want[128], got[128];
	size_t idlen = message_id ? strlen((const char *)message_id) : 0;

	if (!spool || !*spool || idlen == 0 ||
	    hm_snprintf(want, sizeof want, "%s-D\n", (const char *)message_id) < 0)
		return errno = ENOENT, -1;
	size_t wl = strlen(want);
	/* split_spool_directory puts it in input/<6th character of the id>/ */
	for (int split = 0; split < 2; split++) {
		int r = split ? hm_snprintf(path, sizeof path, "%s/input/%c/%s-D", (const char *)spool,
					    idlen > 5 ? message_id[5] : '-', (const char *)message_id)
			      : hm_snprintf(path, sizeof path, "%s/input/%s-D", (const char *)spool,
					    (const char *)message_id);
		if (r < 0)
			continue;
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			continue;
		size_t n = 0;
		while (n < wl) {
			ssize_t k = read(fd, got + n, wl - n);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			n += (size_t)k;
		}
		if (n == wl && memcmp(got, want, wl) == 0)
			return fd;
		close(fd);
	}
	return errno = ENOENT, -1;
}

/* acl_yield - "ACTION TEXT" for the ACL, in Exim's store (text never empty;
 * the engine's reasons are at most ~400 bytes, a longer one gives fallback) */
static uschar *acl_yield(const char *action, const char *text, const char *fallback)
{
	char buf[1024];
	if (!text || !*text ||
	    hm_snprintf(buf, sizeof buf, "%s %s", action, text) < 0)
		hm_snprintf(buf, sizeof buf, "%s %s", action, fallback);
	return string_copy(US buf);
}

int homemail_mime_verdict(uschar **yield, int argc, uschar *argv[])
{
	(void)argv;
	if (argc != 0) {
		*yield = string_copy(US "homemail_mime_verdict: usage: no arguments");
		return ERROR;
	}
	if (load_conf() < 0) {
		log_write(0, LOG_MAIN, "homemail-scan: configuration error, deferring: %s", g_err);
		*yield = acl_yield("tempreject", TEMP_TEXT, TEMP_TEXT);
		return OK;
	}
	int fd = open_data_file();
	if (fd < 0) {
		log_write(0, LOG_MAIN, "homemail-scan: the spool data file is not readable in the "
			  "DATA ACL (%s): the policy runs in local_scan only", strerror(errno));
		*yield = string_copy(US "accept");
		return OK;
	}
	struct scan_opts o = {.smtputf8 = smtputf8()};
	struct scan *s = scan_new(&g_conf, &o);
	if (!s) {
		close(fd);
		log_write(0, LOG_MAIN, "homemail-scan: out of memory, deferring");
		*yield = acl_yield("tempreject", TEMP_TEXT, TEMP_TEXT);
		return OK;
	}
	int stop = 0;
	for (header_line *h = header_list; h && !stop; h = h->next) {
		if (h->type == '*' || !h->text || h->slen <= 0)
			continue;
		stop = scan_feed(s, (const char *)h->text, (size_t)h->slen);
	}
	if (!stop)
		stop = scan_feed(s, "\n", 1);
	int r = stop ? 0 : scan_feed_fd(s, fd);
	int e = errno;
	close(fd);
	if (r < 0) {
		scan_free(&s);
		log_write(0, LOG_MAIN, "homemail-scan: %s, deferring",
			  r == -1 ? "out of memory" : strerror(e));
		*yield = acl_yield("tempreject", TEMP_TEXT, TEMP_TEXT);
		return OK;
	}
	const struct scan_verdict *v = scan_finish(s);
	if (v->action == SCAN_REJECT || v->action == SCAN_TEMPREJECT) {
		/* the one log line of a refused message (local_scan never runs) */
		if (v->log)
			log_write(0, LOG_MAIN, "%s", v->log);
		*yield = v->action == SCAN_REJECT
				 ? acl_yield("reject", v->reason, "rejected by policy")
				 : acl_yield("tempreject", v->reason, TEMP_TEXT);
	} else {
		*yield = string_copy(US "accept");
	}
	scan_free(&s);
	return OK;
}
