/* hm_pwpolicy.h — minimum strength of a new password.
 *
 * A new password is refused when it
 *   - is shorter than min_length characters (UTF-8 sequences count once),
 *     or longer than HM_PW_MAX_PLAIN bytes;
 *   - holds a control character (C0, DEL) or is not valid UTF-8;
 *   - mixes fewer than min_classes of: lower-case, upper-case, digits,
 *     anything else (punctuation, space, non-ASCII);
 *   - contains the account's local part (4 characters or more, any case);
 *   - is one character repeated;
 *   - equals the old password.
 * Nothing is logged and no password is copied anywhere.
 */
#ifndef HM_PWPOLICY_H
#define HM_PWPOLICY_H

#include <stddef.h>

struct hm_pw_policy {
	unsigned int min_length;        /* characters, default 10 */
	unsigned int min_classes;       /* 1..4, default 3 */
};

#define HM_PW_POLICY_DEFAULT { .min_length = 10, .min_classes = 3 }

/* hm_pw_check_strength - 0 acceptable; -1 refused with a sentence for the
 * user in why (never containing the password).  old may be NULL. */
int hm_pw_check_strength(const struct hm_pw_policy *p, const char *pw, const char *old,
			 const char *address, char *why, size_t whysize);

#endif
