/* authdb_args.c — the settings of the `homemail` passdb/userdb: defaults and
 * the "key=value ..." argument string of its passdb/userdb `args` line (see
 * authdb_core.h; the keys are documented in docs/auth.md).
 *
 * What for: one parser for both the passdb and the userdb line, and the
 * ip_exempt match that the password check asks (authdb_verify.c).
 * Relies on: lib/hm_users (address normalisation, scheme names),
 * lib/hm_lockout (policy defaults and bounds), inet_pton.
 * How it fails: an unknown key, a value out of range or too long, or a
 * configuration with no accounts at all returns -1 with the reason in err;
 * Dovecot then refuses to start the auth process.  Nothing is logged here.
 */
#include "authdb_private.h"
#include "hm_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void hm_authdb_set_default(struct hm_authdb_set *set)
{
	memset(set, 0, sizeof(*set));
	(void)hm_strlcpy(set->users_path, HM_USERS_PATH_DEFAULT, sizeof(set->users_path));
	set->system = true;
	(void)hm_strlcpy(set->group, "users", sizeof(set->group));
	set->min_uid = 1000;
	set->rehash = HM_PW_YESCRYPT;
	(void)hm_strlcpy(set->lockout_path, HM_LOCKOUT_PATH_DEFAULT, sizeof(set->lockout_path));
	hm_lockout_policy_default(&set->policy);
	/* local clients (webmail on this host) share one address: only their
	 * per-user counters apply */
	(void)hm_strlcpy(set->ip_exempt[0], "127.0.0.1", sizeof(set->ip_exempt[0]));
	(void)hm_strlcpy(set->ip_exempt[1], "::1", sizeof(set->ip_exempt[1]));
	set->nip_exempt = 2;
	(void)hm_strlcpy(set->mail, "maildir:~/Maildir", sizeof(set->mail));
	/* Pigeonhole's default location, which homemail-deliver reads the
	 * same way (docs/deliver.md): one answer for ManageSieve and the LDA */
	(void)hm_strlcpy(set->sieve, "file:~/sieve;active=~/.dovecot.sieve", sizeof(set->sieve));
	set->blocking = true;
	(void)hm_strlcpy(set->delimiters, "+", sizeof(set->delimiters));
	hm_authdb_table_paths(set);
}

/* sibling - dir of users_path + "/" + name into dst ("" when no users file) */
static void sibling(const char *users, const char *name, char *dst, size_t size)
{
	const char *slash = strrchr(users, '/');

	dst[0] = '\0';
	if (users[0] == '\0' || slash == NULL)
		return;
	(void)hm_snprintf(dst, size, "%.*s/%s", (int)(slash - users), users, name);
}

void hm_authdb_table_paths(struct hm_authdb_set *set)
{
	const char *u = set->users_path[0] ? set->users_path : HM_USERS_PATH_DEFAULT;

	if (!set->domains_path_set)
		sibling(u, "domains", set->domains_path, sizeof(set->domains_path));
	if (!set->aliases_path_set)
		sibling(u, "aliases", set->aliases_path, sizeof(set->aliases_path));
}

/* parse_bool - yes/no/true/false/1/0 */
static int parse_bool(const char *v, bool *value_r)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*value_r = true;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*value_r = false;
	else
		return -1;
	return 0;
}

/* parse_uint - decimal in [lo, hi] */
static int parse_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *value_r)
{
	char *end;
	unsigned long x;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return -1;
	*value_r = x;
	return 0;
}

/* parse_path - absolute path, or "" for no/none */
static int parse_path(const char *v, char *dst, size_t size)
{
	if (strcmp(v, "no") == 0 || strcmp(v, "none") == 0 || v[0] == '\0') {
		dst[0] = '\0';
		return 0;
	}
	if (v[0] != '/')
		return -1;
	return hm_strlcpy(dst, v, size);
}

/* parse_v4cidr - "a.b.c.d[/n]" → network and mask (host order); -1 if not */
static int parse_v4cidr(const char *s, uint32_t *net_r, uint32_t *mask_r)
{
	char buf[64], *slash;
	struct in_addr a;
	unsigned long bits = 32;

	if (hm_strlcpy(buf, s, sizeof(buf)) < 0)
		return -1;
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash = '\0';
		if (parse_uint(slash + 1, 0, 32, &bits) < 0)
			return -1;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*mask_r = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	*net_r = ntohl(a.s_addr) & *mask_r;
	return 0;
}

/* valid_exempt - an IPv4 address/CIDR or an IPv6 address */
static bool valid_exempt(const char *s)
{
	struct in6_addr a6;
	uint32_t n, m;

	return parse_v4cidr(s, &n, &m) == 0 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* authdb_ip_exempt - remote address listed in ip_exempt? */
bool authdb_ip_exempt(const struct hm_authdb_set *set, const char *ip)
{
	struct in_addr a;
	struct in6_addr a6, b6;

	for (unsigned int i = 0; i < set->nip_exempt; i++) {
		uint32_t net, mask;
		if (inet_pton(AF_INET, ip, &a) == 1 &&
		    parse_v4cidr(set->ip_exempt[i], &net, &mask) == 0 &&
		    (ntohl(a.s_addr) & mask) == net)
			return true;
		if (inet_pton(AF_INET6, ip, &a6) == 1 &&
		    inet_pton(AF_INET6, set->ip_exempt[i], &b6) == 1 &&
		    memcmp(&a6, &b6, sizeof(a6)) == 0)
			return true;
	}
	return false;
}

int hm_authdb_parse_args(const char *args, struct hm_authdb_set *set, char *err, size_t errlen)
{
	char *copy = strdup(args != NULL ? args : ""), *save = NULL, *tok;
	int ret = 0;

	if (copy == NULL) {
		(void)hm_snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, " \t\r\n", &save); tok != NULL && ret == 0;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		char *v = strchr(tok, '=');
		unsigned long n = 0;       /* parse_uint leaves it alone on error */
		bool bad = false;

		if (v == NULL) {
			(void)hm_snprintf(err, errlen, "argument without '=': %.64s", tok);
			ret = -1;
			break;
		}
		*v++ = '\0';
		if (strcmp(tok, "users") == 0)
			bad = parse_path(v, set->users_path, sizeof(set->users_path)) < 0;
		else if (strcmp(tok, "system") == 0)
			bad = parse_bool(v, &set->system) < 0;
		else if (strcmp(tok, "group") == 0)
			bad = v[0] == '\0' || hm_strlcpy(set->group, v, sizeof(set->group)) < 0;
		else if (strcmp(tok, "min_uid") == 0) {
			bad = parse_uint(v, 1, 0x7fffffffUL, &n) < 0;
			set->min_uid = n;
		} else if (strcmp(tok, "domains") == 0) {
			char *s2 = NULL, *d;
			set->ndomains = 0;
			for (d = strtok_r(v, ",", &s2); d != NULL && !bad; d = strtok_r(NULL, ",", &s2)) {
				char tmp[HM_USERS_MAX_ADDRESS + 1], full[HM_USERS_MAX_ADDRESS + 8];
				if (set->ndomains == HM_AUTHDB_MAX_DOMAINS ||
				    hm_snprintf(full, sizeof(full), "x@%s", d) < 0 ||
				    hm_users_normalize_address(full, tmp, sizeof(tmp)) < 0)
					bad = true;
				else
					(void)hm_strlcpy(set->domains[set->ndomains++], tmp + 2,
							 sizeof(set->domains[0]));
			}
		} else if (strcmp(tok, "domains_file") == 0) {
			bad = parse_path(v, set->domains_path, sizeof(set->domains_path)) < 0;
			set->domains_path_set = true;
		} else if (strcmp(tok, "aliases") == 0) {
			bad = parse_path(v, set->aliases_path, sizeof(set->aliases_path)) < 0;
			set->aliases_path_set = true;
		} else if (strcmp(tok, "delimiter") == 0) {
			const char *dv = strcmp(v, "no") == 0 ? "" : v;
			bad = hm_strlcpy(set->delimiters, dv, sizeof(set->delimiters)) < 0;
			for (const char *q = dv; *q != '\0' && !bad; q++)
				bad = strchr("+-_=", *q) == NULL;
		} else if (strcmp(tok, "ip_exempt") == 0) {
			char *s2 = NULL, *d;
			set->nip_exempt = 0;
			if (strcmp(v, "no") != 0 && strcmp(v, "none") != 0)
				for (d = strtok_r(v, ",", &s2); d != NULL && !bad; d = strtok_r(NULL, ",", &s2))
					bad = set->nip_exempt == HM_ARRAY_SIZE(set->ip_exempt) ||
					      !valid_exempt(d) ||
					      hm_strlcpy(set->ip_exempt[set->nip_exempt++], d,
							 sizeof(set->ip_exempt[0])) < 0;
		} else if (strcmp(tok, "allow_weak") == 0)
			bad = parse_bool(v, &set->allow_weak) < 0;
		else if (strcmp(tok, "rehash") == 0) {
			if (strcmp(v, "no") == 0)
				set->rehash = HM_PW_UNKNOWN;
			else
				bad = (set->rehash = hm_pw_scheme_by_name(v)) == HM_PW_UNKNOWN;
		} else if (strcmp(tok, "lockout") == 0)
			bad = parse_path(v, set->lockout_path, sizeof(set->lockout_path)) < 0;
		else if (strcmp(tok, "max_failures") == 0) {
			bad = parse_uint(v, 0, 1000000, &n) < 0;
			set->policy.max_failures = (unsigned int)n;
		} else if (strcmp(tok, "ip_max_failures") == 0) {
			bad = parse_uint(v, 0, 1000000, &n) < 0;
			set->policy.ip_max_failures = (unsigned int)n;
		} else if (strcmp(tok, "window") == 0) {
			bad = parse_uint(v, 1, 86400 * 30, &n) < 0;
			set->policy.window = (unsigned int)n;
		} else if (strcmp(tok, "lock_time") == 0) {
			bad = parse_uint(v, 1, 86400 * 30, &n) < 0;
			set->policy.lock_time = (unsigned int)n;
		} else if (strcmp(tok, "backoff_after") == 0) {
			bad = parse_uint(v, 0, 1000000, &n) < 0;
			set->policy.backoff_after = (unsigned int)n;
		} else if (strcmp(tok, "backoff_max") == 0) {
			bad = parse_uint(v, 1, 86400, &n) < 0;
			set->policy.backoff_max = (unsigned int)n;
		} else if (strcmp(tok, "lockout_slots") == 0) {
			bad = parse_uint(v, HM_LOCKOUT_MIN_SLOTS, HM_LOCKOUT_MAX_SLOTS, &n) < 0;
			set->policy.slots = (unsigned int)n;
		} else if (strcmp(tok, "ipv6_prefix") == 0) {
			bad = parse_uint(v, 1, 128, &n) < 0;
			set->policy.ipv6_prefix = (unsigned int)n;
		} else if (strcmp(tok, "mail") == 0)
			bad = hm_strlcpy(set->mail, strcmp(v, "no") == 0 ? "" : v, sizeof(set->mail)) < 0;
		else if (strcmp(tok, "sieve") == 0)
			bad = hm_strlcpy(set->sieve, strcmp(v, "no") == 0 ? "" : v, sizeof(set->sieve)) < 0;
		else if (strcmp(tok, "blocking") == 0)
			bad = parse_bool(v, &set->blocking) < 0;
		else {
			(void)hm_snprintf(err, errlen, "unknown argument: %.64s", tok);
			ret = -1;
			break;
		}
		if (bad) {
			(void)hm_snprintf(err, errlen, "invalid value for %s: %.128s", tok, v);
			ret = -1;
		}
	}
	free(copy);
	hm_authdb_table_paths(set);
	if (ret == 0 && set->users_path[0] == '\0' && !set->system) {
		(void)hm_snprintf(err, errlen, "neither users= nor system=yes: no accounts");
		ret = -1;
	}
	return ret;
}
