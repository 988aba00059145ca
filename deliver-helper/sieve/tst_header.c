/* tst_header.c — the tests on header fields and the envelope: header
 * (RFC 5228 5.7), address (5.1, address parts 2.7.4, subaddress RFC 5233),
 * envelope (5.4), with :index/:last of RFC 5260 section 6.
 *
 * Relies on: sv_message.c for the decoded values, hm_address for the
 * RFC 5322 address lists, sv_match.c for the comparison.
 * Semantics follow Pigeonhole: addresses without a domain are skipped,
 * :all re-quotes a local part that is not a dot-atom, the envelope "to" is
 * the original recipient when one is known, the address test accepts only
 * headers that carry addresses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_address.h"
#include "hm_util.h"
#include "sv_int.h"

static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* dot_atom - dot-atom-text = 1*atext *("." 1*atext) */
static bool dot_atom(const char *s)
{
	if (!*s || *s == '.')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (p[1] == '.' || p[1] == 0)
				return false;
		} else if (!is_atext((unsigned char)*p)) {
			return false;
		}
	}
	return true;
}

int sv_addr_part(enum sv_ap ap, const char *local, const char *domain, struct hm_buf *b,
		 const char **v_r, size_t *len_r)
{
	const char *plus;
	switch (ap) {
	case AP_ALL: {
		hm_buf_reset(b);
		int r = 0;
		if (local[0] && !dot_atom(local)) {
			r |= hm_buf_putc(b, '"');
			for (const char *p = local; *p; p++) {
				if (*p == '"' || *p == '\\')
					r |= hm_buf_putc(b, '\\');
				r |= hm_buf_putc(b, *p);
			}
			r |= hm_buf_putc(b, '"');
		} else {
			r |= hm_buf_puts(b, local);
		}
		if (domain) {
			r |= hm_buf_putc(b, '@');
			r |= hm_buf_puts(b, domain);
		}
		if (r < 0)
			return -1;
		*v_r = hm_buf_cstr(b);
		*len_r = b->len;
		return 1;
	}
	case AP_LOCALPART:
		*v_r = local;
		*len_r = strlen(local);
		return 1;
	case AP_DOMAIN:
		*v_r = domain ? domain : "";
		*len_r = strlen(*v_r);
		return 1;
	case AP_USER:
		plus = strchr(local, '+');
		*v_r = local;
		*len_r = plus ? (size_t)(plus - local) : strlen(local);
		return 1;
	case AP_DETAIL:
		plus = strchr(local, '+');
		if (!plus)
			return 0;
		*v_r = plus + 1;
		*len_r = strlen(plus + 1);
		return 1;
	}
	return 0;
}

/* fields_named - indices of the fields called name, honouring :index/:last.
 * Returns count written to idx (capacity cap). */
static size_t fields_named(struct sv_run *r, const struct sv_node *n, const char *name,
			   size_t nlen, size_t *idx, size_t cap)
{
	size_t nf = sv_msg_nfields(&r->msg), k = 0;
	for (size_t i = 0; i < nf && k < cap; i++)
		if (sv_hdr_is(&r->msg, i, name, nlen))
			idx[k++] = i;
	if (sv_has(n->o.tags, TG_INDEX)) {
		uint64_t want = sv_tagarg(n, TG_INDEX)->num;
		if (want == 0 || want > k)
			return 0;
		idx[0] = sv_has(n->o.tags, TG_LAST) ? idx[k - want] : idx[want - 1];
		return 1;
	}
	return k;
}

typedef int (*field_fn)(struct sv_run *r, struct sv_match *m, size_t field);

/* for_each_field - call fn for each selected field of each header name */
static int for_each_field(struct sv_run *r, struct sv_node *n, const struct sv_arg *names,
			  struct sv_match *m, field_fn fn)
{
	size_t nf = sv_msg_nfields(&r->msg);
	size_t idx_in[64];        /* most messages have fewer fields */
	size_t *idx = nf <= HM_ARRAY_SIZE(idx_in) ? idx_in : calloc(nf + 1, sizeof *idx);
	if (!idx)
		return sv_rt_error(r, n, "out of memory");
	int res = 0;
	for (size_t i = 0; i < names->n && res == 0; i++) {
		size_t len;
		char *own;
		const char *name = sv_expand_ref(r, n, &names->v[i], &len, &own);
		if (!name) {
			res = -1;
			break;
		}
		size_t k = fields_named(r, n, name, len, idx, nf);
		free(own);
		if (sv_step(r, n, nf / 16 + 1) < 0) {
			res = -1;
			break;
		}
		for (size_t j = 0; j < k && res == 0; j++)
			res = fn(r, m, idx[j]);
	}
	if (idx != idx_in)
		free(idx);
	return res;
}

static int header_value(struct sv_run *r, struct sv_match *m, size_t field)
{
	size_t len;
	const char *v = sv_hdr_value(&r->msg, field, &len);
	if (!v)
		return sv_rt_error(r, m->n, "out of memory");
	return sv_match_value(m, v, len);
}

static int check_names(struct sv_comp *c, const struct sv_arg *a, bool addr, const char *t)
{
	static const char *const addr_headers[] = {
		"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from",
		"resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc",
		"return-receipt-to", "errors-to", "delivered-to", "approved",
		"original-from", "original-sender", "original-recipient",
		"mail-followup-to", "mail-reply-to", "for-approval", "for-handling",
		"for-comment", "apparently-to", "x-original-to", "x-beenthere",
		"x-admin", "x-complaints-to", "abuse-reports-to", NULL
	};
	for (size_t i = 0; i < a->n; i++) {
		const struct sv_str *s = &a->v[i];
		if (s->var)
			continue;
		/* a name that is not a valid field-name (RFC 5322 ftext) is
		 * accepted and never matches, as in Pigeonhole */
		if (addr) {
			bool ok = false;
			for (size_t k = 0; addr_headers[k] && !ok; k++)
				ok = strcasecmp(addr_headers[k], s->s) == 0;
			if (!ok) {
				sv_error(c, s->line, s->col,
					 "specified header '%s' is not allowed for the address test",
					 s->s);
				return -1;
			}
		}
	}
	return 0;
}

static int validate_header(struct sv_comp *c, struct sv_node *n)
{
	if (sv_validate_index(c, n) < 0)
		return -1;
	return check_names(c, sv_pos(n, 0), false, "header");
}

/* header [:index n [:last]] [COMPARATOR] [MATCH-TYPE] <names> <keys> */
static int exec_header(struct sv_run *r, struct sv_node *n)
{
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0)
		return -1;
	if (for_each_field(r, n, sv_pos(n, 0), &m, header_value) < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

const struct sv_def sv_def_header = {
	.name = "header", .is_test = true, .groups = SV_MATCHING | SV_INDEXED,
	.pos = "ll", .validate = validate_header, .exec = exec_header,
};

/* match_address - feed the part of one address to the matcher */
static int match_address(struct sv_match *m, const char *local, const char *domain)
{
	const char *v;
	size_t len;
	int x = sv_addr_part(m->n->o.ap, local, domain, &m->part, &v, &len);
	if (x < 0)
		return sv_rt_error(m->r, m->n, "out of memory");
	if (!x && m->n->o.mt == MT_COUNT)
		return sv_match_value(m, "", 0);   /* :count counts addresses, with
						    * or without the part (Pigeonhole) */
	return x ? sv_match_value(m, v, len) : 0;
}

static bool has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static int address_value(struct sv_run *r, struct sv_match *m, size_t field)
{
	size_t len;
	const char *v = sv_hdr_uvalue(&r->msg, field, &len);
	const struct hm_addr_list *l = sv_hdr_addresses(&r->msg, field);
	if (!l)
		return sv_rt_error(r, m->n, "out of memory");
	/* an address beyond the limit is never silently left out (it could be
	 * the one a rule looks for): the run fails, the message is kept */
	if (l->truncated)
		return sv_rt_error(r, m->n, "a header field holds more than %d addresses",
				   SV_MAX_ADDRS_PER_FIELD);
	int res = 0;
	size_t valid = 0;
	for (size_t i = 0; i < l->n && res == 0; i++) {
		if (!l->v[i].domain || l->v[i].invalid || has_8bit(l->v[i].local))
			continue;       /* Pigeonhole: an 8-bit local part is invalid */
		valid++;
		res = match_address(m, l->v[i].local, l->v[i].domain);
	}
	/* Pigeonhole: a field with no valid address is matched as it is for
	 * :all, counts as one value for :count, and an empty field is the empty
	 * string for every address part */
	if (res == 0 && valid == 0 &&
	    (m->n->o.ap == AP_ALL || m->n->o.mt == MT_COUNT || len == 0))
		res = sv_match_value(m, v, len);
	if (res == 0 && sv_step(r, m->n, 1 + len / 64) < 0)
		return -1;
	return res;
}

static int validate_address(struct sv_comp *c, struct sv_node *n)
{
	if (sv_validate_index(c, n) < 0)
		return -1;
	return check_names(c, sv_pos(n, 0), true, "address");
}

static int exec_address(struct sv_run *r, struct sv_node *n)
{
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0)
		return -1;
	if (for_each_field(r, n, sv_pos(n, 0), &m, address_value) < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

const struct sv_def sv_def_address = {
	.name = "address", .is_test = true,
	.groups = SV_MATCHING | SV_ADDRPART | SV_INDEXED, .pos = "ll",
	.validate = validate_address, .exec = exec_address,
};

/* ---- envelope -------------------------------------------------------- */

static int validate_envelope(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_arg *a = sv_pos(n, 0);
	for (size_t i = 0; i < a->n; i++) {
		const char *p = a->v[i].s;
		if (a->v[i].var)
			continue;
		if (strcasecmp(p, "from") != 0 && strcasecmp(p, "to") != 0 &&
		    strcasecmp(p, "auth") != 0) {
			sv_error(c, a->v[i].line, a->v[i].col,
				 "specified envelope part '%s' is not supported by the envelope test",
				 p);
			return -1;
		}
	}
	return 0;
}

/* envelope_match - one envelope path ("<a@b>", "a@b" or "") */
static int envelope_match(struct sv_match *m, const char *path)
{
	size_t len = strlen(path);
	if (len >= 2 && path[0] == '<' && path[len - 1] == '>') {
		path++;
		len -= 2;
	}
	char *copy = sv_strndup(path, len);
	if (!copy)
		return sv_rt_error(m->r, m->n, "out of memory");
	int x;
	if (len == 0) {
		/* the null reverse-path: every part is the empty string */
		x = sv_match_value(m, "", 0);
	} else {
		char *at = strrchr(copy, '@');
		if (at) {
			*at = 0;
			x = match_address(m, copy, at + 1);
		} else {
			x = match_address(m, copy, NULL);
		}
	}
	free(copy);
	return x;
}

/* envelope [COMPARATOR] [ADDRESS-PART] [MATCH-TYPE] <parts> <keys> */
static int exec_envelope(struct sv_run *r, struct sv_node *n)
{
	struct sv_match m;
	if (sv_match_begin(&m, r, n, NULL) < 0)
		return -1;
	const struct sv_arg *a = sv_pos(n, 0);
	int res = 0;
	for (size_t i = 0; i < a->n && res == 0; i++) {
		size_t len;
		char *part = sv_expand(r, n, &a->v[i], &len);
		if (!part) {
			res = -1;
			break;
		}
		const char *path = NULL;
		if (strcasecmp(part, "from") == 0)
			path = r->m->env_from;
		else if (strcasecmp(part, "to") == 0)
			path = r->m->env_orig_to ? r->m->env_orig_to : r->m->env_to;
		else if (strcasecmp(part, "auth") == 0)
			path = r->m->auth_user;
		free(part);
		if (path)
			res = envelope_match(&m, path);
	}
	if (res < 0) {
		sv_match_abort(&m);
		return -1;
	}
	return sv_match_end(&m);
}

const struct sv_def sv_def_envelope = {
	.name = "envelope", .ext = EXT_ENVELOPE, .is_test = true,
	.groups = SV_MATCHING | SV_ADDRPART, .pos = "ll",
	.validate = validate_envelope, .exec = exec_envelope,
};
