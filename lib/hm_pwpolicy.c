/* hm_pwpolicy.c — minimum strength of a new password (see hm_pwpolicy.h).
 *
 * Used by homemail-passwd (users' own changes).  Pure function: no I/O, no
 * allocation; bounded by HM_PW_MAX_PLAIN bytes of input.
 */
#include "hm_pwpolicy.h"
#include "hm_users.h"
#include "hm_util.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* utf8_len - characters of a valid UTF-8 string, or -1 (invalid, or a
 * control character) */
static long utf8_chars(const unsigned char *s, size_t len)
{
	long n = 0;

	for (size_t i = 0; i < len; n++) {
		unsigned char c = s[i];
		size_t k;

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c < 0x80)
			k = 1;
		else if (c >= 0xc2 && c <= 0xdf)
			k = 2;
		else if (c >= 0xe0 && c <= 0xef)
			k = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 4;
		else
			return -1;
		if (k > len - i)
			return -1;
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return -1;
		/* overlong 3/4-byte forms, surrogates, > U+10FFFF */
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
			return -1;
		i += k;
	}
	return n;
}

/* contains_ci - does hay contain needle (ASCII case-insensitive)? */
static bool contains_ci(const char *hay, const char *needle, size_t nlen)
{
	size_t hlen = strlen(hay);

	for (size_t i = 0; nlen > 0 && i + nlen <= hlen; i++)
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return true;
	return false;
}

int hm_pw_check_strength(const struct hm_pw_policy *p, const char *pw, const char *old,
			 const char *address, char *why, size_t whysize)
{
	size_t len = strlen(pw);
	long chars;
	bool lower = false, upper = false, digit = false, other = false, same = true;
	unsigned int classes;

	if (len > HM_PW_MAX_PLAIN) {
		(void)hm_snprintf(why, whysize, "the new password is longer than %u bytes",
				  (unsigned int)HM_PW_MAX_PLAIN);
		return -1;
	}
	chars = utf8_chars((const unsigned char *)pw, len);
	if (chars < 0) {
		(void)hm_snprintf(why, whysize, "the new password holds control characters "
				  "or invalid UTF-8");
		return -1;
	}
	if ((unsigned long)chars < p->min_length) {
		(void)hm_snprintf(why, whysize, "the new password needs at least %u characters",
				  p->min_length);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)pw[i];

		if (c != (unsigned char)pw[0])
			same = false;
		if (islower(c))
			lower = true;
		else if (isupper(c))
			upper = true;
		else if (isdigit(c))
			digit = true;
		else
			other = true;
	}
	classes = (unsigned int)lower + upper + digit + other;
	if (classes < p->min_classes) {
		(void)hm_snprintf(why, whysize, "the new password must mix at least %u of: "
				  "lower-case letters, upper-case letters, digits, other characters",
				  p->min_classes);
		return -1;
	}
	if (same) {
		(void)hm_snprintf(why, whysize, "the new password is one character repeated");
		return -1;
	}
	if (address != NULL) {
		const char *at = strchr(address, '@');
		size_t llen = at != NULL ? (size_t)(at - address) : strlen(address);

		if (llen >= 4 && contains_ci(pw, address, llen)) {
			(void)hm_snprintf(why, whysize, "the new password contains the account name");
			return -1;
		}
	}
	if (old != NULL && strcmp(pw, old) == 0) {
		(void)hm_snprintf(why, whysize, "the new password is the old one");
		return -1;
	}
	return 0;
}
