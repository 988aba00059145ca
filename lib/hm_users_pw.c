/* hm_users_pw.c — password hash classification, verification and
 * generation for the homemail account database (see hm_users.h).
 *
 * What for: one place that decides which hashes are strong, verifies them
 * with libxcrypt's crypt_rn() (reentrant, no static buffer) and makes new
 * ones with crypt_gensalt_rn() for rehash and homemail-user.
 * Relies on: libxcrypt (libcrypt1 4.4), getrandom via crypt_gensalt_rn.
 * How it fails: -1 with errno (EPERM weak scheme refused, ENOTSUP scheme
 * only Dovecot can verify, EINVAL malformed hash, ENOMEM).  Comparisons are
 * constant-time; every scratch buffer holding a secret is wiped.
 */
#include "hm_users.h"
#include "hm_util.h"

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* bcrypt's libxcrypt default cost is 5 (2^5 rounds), too cheap today;
 * 10 costs about as much as yescrypt's default on this hardware. */
#define HM_BCRYPT_COST 10

const char *hm_pw_split(const char *stored, char *scheme_buf, size_t bufsize)
{
	const char *end;
	size_t n;

	if (bufsize == 0)
		return NULL;
	scheme_buf[0] = '\0';
	if (stored[0] != '{' || (end = strchr(stored, '}')) == NULL)
		return stored;
	n = (size_t)(end - stored - 1);
	if (n == 0 || n >= bufsize)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)stored[1 + i];
		if (!(isascii(c) && (isalnum(c) || c == '-' || c == '.' || c == '_')))
			return NULL;
		scheme_buf[i] = (char)toupper(c);
	}
	scheme_buf[n] = '\0';
	return end + 1;
}

/* crypt_alphabet - true if s has only crypt(3)'s output characters */
static bool crypt_alphabet(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (!(isascii(c) && (isalnum(c) || c == '.' || c == '/' ||
				     c == '$' || c == ',' || c == '=')))
			return false;
	}
	return true;
}

/* classify_crypt - scheme of a bare crypt(3) string */
static enum hm_pw_scheme classify_crypt(const char *h)
{
	if (!crypt_alphabet(h))
		return HM_PW_UNKNOWN;
	if (strncmp(h, "$y$", 3) == 0)
		return HM_PW_YESCRYPT;
	if (strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2a$", 4) == 0 ||
	    strncmp(h, "$2y$", 4) == 0)
		return HM_PW_BCRYPT;
	if (strncmp(h, "$6$", 3) == 0)
		return HM_PW_SHA512_CRYPT;
	if (strncmp(h, "$5$", 3) == 0)
		return HM_PW_SHA256_CRYPT;
	if (strncmp(h, "$1$", 3) == 0)
		return HM_PW_MD5_CRYPT;
	if (strlen(h) == 13 && h[0] != '$')
		return HM_PW_DES_CRYPT;
	return HM_PW_UNKNOWN;
}

const char *hm_pw_scheme_name(enum hm_pw_scheme s)
{
	switch (s) {
	case HM_PW_YESCRYPT: return "YESCRYPT";
	case HM_PW_BCRYPT: return "BLF-CRYPT";
	case HM_PW_SHA512_CRYPT: return "SHA512-CRYPT";
	case HM_PW_SHA256_CRYPT: return "SHA256-CRYPT";
	case HM_PW_NOLOGIN: return "NOLOGIN";
	case HM_PW_MD5_CRYPT: return "MD5-CRYPT";
	case HM_PW_DES_CRYPT: return "DES-CRYPT";
	case HM_PW_PLAIN: return "PLAIN";
	case HM_PW_OTHER_WEAK: return "OTHER";
	case HM_PW_UNKNOWN: break;
	}
	return "UNKNOWN";
}

enum hm_pw_scheme hm_pw_scheme_by_name(const char *name)
{
	if (strcasecmp(name, "yescrypt") == 0)
		return HM_PW_YESCRYPT;
	if (strcasecmp(name, "bcrypt") == 0 || strcasecmp(name, "BLF-CRYPT") == 0)
		return HM_PW_BCRYPT;
	if (strcasecmp(name, "SHA512-CRYPT") == 0)
		return HM_PW_SHA512_CRYPT;
	if (strcasecmp(name, "SHA256-CRYPT") == 0)
		return HM_PW_SHA256_CRYPT;
	return HM_PW_UNKNOWN;
}

int hm_pw_identify(const char *scheme, const char *hash, struct hm_pw_info *info_r)
{
	enum hm_pw_scheme c;

	memset(info_r, 0, sizeof(*info_r));
	if (scheme == NULL)
		scheme = "";
	/* "*" and "!..." are the shadow(5) conventions for "no password" */
	if (scheme[0] == '\0' && (strcmp(hash, "*") == 0 || hash[0] == '!')) {
		info_r->scheme = HM_PW_NOLOGIN;
		info_r->name = hm_pw_scheme_name(HM_PW_NOLOGIN);
		return 0;
	}
	if (strcasecmp(scheme, "PLAIN") == 0 || strcasecmp(scheme, "CLEAR") == 0 ||
	    strcasecmp(scheme, "CLEARTEXT") == 0) {
		if (strchr(hash, '\n') != NULL)
			return errno = EINVAL, -1;
		c = HM_PW_PLAIN;
	} else if (scheme[0] == '\0' || strcasecmp(scheme, "CRYPT") == 0 ||
		   strcasecmp(scheme, "YESCRYPT") == 0 ||
		   strcasecmp(scheme, "BLF-CRYPT") == 0 ||
		   strcasecmp(scheme, "SHA512-CRYPT") == 0 ||
		   strcasecmp(scheme, "SHA256-CRYPT") == 0 ||
		   strcasecmp(scheme, "MD5-CRYPT") == 0 ||
		   strcasecmp(scheme, "DES-CRYPT") == 0) {
		c = classify_crypt(hash);
		if (c == HM_PW_UNKNOWN)
			return errno = EINVAL, -1;
		/* a named scheme must match the hash it labels */
		if (scheme[0] != '\0' && strcasecmp(scheme, "CRYPT") != 0 &&
		    strcasecmp(scheme, hm_pw_scheme_name(c)) != 0)
			return errno = EINVAL, -1;
	} else {
		/* SHA1, SSHA, MD5, PBKDF2, ... : Dovecot's own encodings */
		if (strpbrk(hash, ":\n\r") != NULL || hash[0] == '\0')
			return errno = EINVAL, -1;
		c = HM_PW_OTHER_WEAK;
	}
	info_r->scheme = c;
	info_r->weak = c >= HM_PW_MD5_CRYPT;
	info_r->name = hm_pw_scheme_name(c);
	return 0;
}

/* ct_equal - constant-time comparison of two strings (length leaks only
 * through the loop over the longer one, which is the stored hash) */
static bool ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
	unsigned char d = (unsigned char)(la != lb);

	for (size_t i = 0; i < n; i++) {
		unsigned char ca = i < la ? (unsigned char)a[i] : 0;
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
		d |= ca ^ cb;
	}
	return d == 0;
}

/* crypt_check - run crypt_rn(plain, hash) and compare.  1/0/-1 */
static int crypt_check(const char *plain, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *out;
	int ret;

	if (cd == NULL)
		return -1;
	out = crypt_rn(plain, hash, cd, (int)sizeof(*cd));
	if (out == NULL || out[0] == '*')
		{ errno = EINVAL; ret = -1; }
	else
		ret = ct_equal(out, hash) ? 1 : 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ret;
}

int hm_pw_verify(const char *plain, const char *scheme, const char *hash,
		 bool allow_weak)
{
	struct hm_pw_info info;

	if (hm_pw_identify(scheme, hash, &info) < 0)
		return -1;
	if (info.scheme == HM_PW_NOLOGIN)
		return 0;
	if (info.weak && !allow_weak)
		return errno = EPERM, -1;
	if (strlen(plain) > HM_PW_MAX_PLAIN) {
		/* still spend the time, so that length is not an oracle */
		hm_pw_dummy("", info.weak ? HM_PW_YESCRYPT : info.scheme);
		return 0;
	}
	switch (info.scheme) {
	case HM_PW_PLAIN:
		return ct_equal(plain, hash) ? 1 : 0;
	case HM_PW_OTHER_WEAK:
		return errno = ENOTSUP, -1;
	default:
		return crypt_check(plain, hash);
	}
}

/* gensalt_prefix - libxcrypt prefix and cost for a strong scheme */
static const char *gensalt_prefix(enum hm_pw_scheme s, unsigned long *count_r)
{
	*count_r = 0;   /* library default */
	switch (s) {
	case HM_PW_YESCRYPT: return "$y$";
	case HM_PW_BCRYPT: *count_r = HM_BCRYPT_COST; return "$2b$";
	case HM_PW_SHA512_CRYPT: return "$6$";
	case HM_PW_SHA256_CRYPT: return "$5$";
	default: return NULL;
	}
}

int hm_pw_hash(const char *plain, enum hm_pw_scheme scheme, char *dst, size_t dstsize)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned long count;
	const char *prefix = gensalt_prefix(scheme, &count);
	struct crypt_data *cd;
	const char *h;
	int ret = 0;

	if (prefix == NULL || strlen(plain) > HM_PW_MAX_PLAIN)
		return errno = EINVAL, -1;
	if (crypt_gensalt_rn(prefix, count, NULL, 0, setting, (int)sizeof(setting)) == NULL)
		return -1;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -1;
	h = crypt_rn(plain, setting, cd, (int)sizeof(*cd));
	if (h == NULL || h[0] == '*')
		{ errno = EINVAL; ret = -1; }
	else if (hm_strlcpy(dst, h, dstsize) < 0)
		ret = -1;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ret;
}

void hm_pw_dummy(const char *plain, enum hm_pw_scheme scheme)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned long count;
	const char *prefix = gensalt_prefix(scheme, &count);
	struct crypt_data *cd;

	if (prefix == NULL)
		prefix = gensalt_prefix(HM_PW_YESCRYPT, &count);
	if (strlen(plain) > HM_PW_MAX_PLAIN)
		plain = "";
	if (crypt_gensalt_rn(prefix, count, NULL, 0, setting, (int)sizeof(setting)) == NULL)
		return;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return;
	(void)crypt_rn(plain, setting, cd, (int)sizeof(*cd));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
}
