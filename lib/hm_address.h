/* hm_address.h — RFC 5322 address-list parser (section 3.4 plus the obsolete
 * forms of section 4.4 that real mail still carries).
 *
 * Handles groups ("Team: a@x, b@y;"), comments (skipped; a trailing comment
 * serves as display name when there is none, as MUAs show it), quoted local
 * parts (returned unquoted), domain literals, obsolete routes, and display
 * names with RFC 2047 encoded-words (returned decoded to UTF-8).
 * Hostile input: every string is bounded by the input length, at most
 * max_addrs addresses are returned, nothing recurses.
 */
#ifndef HM_ADDRESS_H
#define HM_ADDRESS_H
#include <stdbool.h>
#include <stddef.h>

struct hm_addr {
	char *local;    /* local part, unquoted; "" when absent; never NULL */
	char *domain;   /* domain (lower/upper case as written), NULL when absent */
	char *display;  /* display name in UTF-8, NULL when absent */
	char *group;    /* name of the enclosing group, NULL outside groups */
	bool invalid;   /* syntax error: no '@', stray characters, unclosed '<' */
};

struct hm_addr_list {
	struct hm_addr *v;
	size_t n;
	size_t cap;
	bool truncated; /* more than max_addrs addresses were present */
};

/* hm_address_parse - parse an unfolded header value into list_r (which must be
 * zeroed or freshly freed).  Entries that hold nothing (empty elements
 * between commas, empty groups) are not returned.
 * Returns 0 ok, -1 and errno = ENOMEM (list_r is then freed). */
int hm_address_parse(const char *in, size_t len, size_t max_addrs,
		     struct hm_addr_list *list_r);

/* hm_address_list_free - free all entries; the list may be reused. */
void hm_address_list_free(struct hm_addr_list *l);

#endif
