/* sv_result.c — the result of a run: the list of actions, with Pigeonhole's
 * rules for duplicates, conflicts and limits.
 *
 * What for: fileinto/keep to the same folder is one store (the later flags
 * win; "INBOX" in any case is INBOX, RFC 3501 5.1), a redirect to the same
 * address is one redirect (local part compared exactly, domain without
 * regard to case: RFC 5321 2.4), reject conflicts
 * with anything that delivers or answers (RFC 5429 2.1), vacation and
 * reject may appear once; the number of actions and redirects is limited.
 * How it fails: conflicts and exceeded limits are runtime errors (the
 * caller then performs only the implicit keep).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sv_int.h"

bool sv_streq_ci(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

char **sv_strv_dup(char *const *v, size_t n)
{
	char **o = calloc(n + 1, sizeof *o);
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		o[i] = strdup(v[i]);
		if (!o[i]) {
			sv_strv_free(o);
			return NULL;
		}
	}
	return o;
}

void sv_strv_free(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

void sv_action_free(struct sieve_action *a)
{
	free(a->target);
	sv_strv_free(a->flags);
	free(a->vac_to);
	free(a->vac_from);
	free(a->vac_subject);
	free(a->vac_reason);
	free(a->vac_handle);
	sv_strv_free(a->vac_addresses);
	memset(a, 0, sizeof *a);
}

static const char *act_name(enum sieve_action_type t)
{
	switch (t) {
	case SIEVE_ACT_STORE: return "store";
	case SIEVE_ACT_REDIRECT: return "redirect";
	case SIEVE_ACT_REJECT: return "reject";
	case SIEVE_ACT_EREJECT: return "ereject";
	case SIEVE_ACT_VACATION: return "vacation";
	case SIEVE_ACT_DISCARD: return "discard";
	}
	return "?";
}

/* same_address - a and b ("local@domain", domain last after the last '@')
 * name the same mailbox: local parts equal, domains equal ignoring case */
static bool same_address(const char *a, const char *b)
{
	const char *ad = strrchr(a, '@'), *bd = strrchr(b, '@');
	if (!ad || !bd)
		return strcmp(a, b) == 0;
	return ad - a == bd - b && memcmp(a, b, (size_t)(ad - a)) == 0 &&
	       strcasecmp(ad, bd) == 0;
}

static bool is_reject(enum sieve_action_type t)
{
	return t == SIEVE_ACT_REJECT || t == SIEVE_ACT_EREJECT;
}

/* sv_add_action - append a (taking ownership), applying duplicate rules,
 * conflicts and limits.  Returns SV_OK or SV_ERR (a is freed either way). */
int sv_add_action(struct sv_run *r, const struct sv_node *n, struct sieve_action *a)
{
	struct sieve_result *res = r->res;
	a->line = n ? n->line : 0;
	a->script = r->script;
	for (size_t i = 0; i < res->nactions; i++) {
		struct sieve_action *o = &res->actions[i];
		if (is_reject(a->type) && is_reject(o->type)) {
			sv_action_free(a);
			return sv_rt_error(r, n, "duplicate reject/ereject action not allowed "
					   "(previous one at line %d)", o->line);
		}
		if (is_reject(a->type) || is_reject(o->type)) {
			const struct sieve_action *other = is_reject(a->type) ? o : a;
			if (other->type == SIEVE_ACT_STORE || other->type == SIEVE_ACT_REDIRECT) {
				int l = other->line;
				sv_action_free(a);
				return sv_rt_error(r, n, "reject/ereject action conflicts with "
						   "other action: the %s action (line %d) tries to "
						   "deliver the message", act_name(other->type), l);
			}
			if (other->type == SIEVE_ACT_VACATION) {
				int l = other->line;
				sv_action_free(a);
				return sv_rt_error(r, n, "reject/ereject action conflicts with "
						   "other action: the vacation action (line %d) also "
						   "sends a response to the sender", l);
			}
		}
		if (a->type == SIEVE_ACT_VACATION && o->type == SIEVE_ACT_VACATION) {
			int l = o->line;
			sv_action_free(a);
			return sv_rt_error(r, n, "duplicate vacation action not allowed "
					   "(previous one at line %d)", l);
		}
		if (a->type == o->type && a->type == SIEVE_ACT_DISCARD) {
			sv_action_free(a);
			return SV_OK;
		}
		if (a->type == SIEVE_ACT_REDIRECT && o->type == SIEVE_ACT_REDIRECT &&
		    same_address(a->target, o->target)) {
			sv_action_free(a);
			return SV_OK;
		}
		if (a->type == SIEVE_ACT_STORE && o->type == SIEVE_ACT_STORE &&
		    strcmp(a->target, o->target) == 0) {
			/* the same folder again: one store, the newer flags */
			sv_strv_free(o->flags);
			o->flags = a->flags;
			a->flags = NULL;
			o->create = o->create || a->create;
			sv_action_free(a);
			return SV_OK;
		}
	}
	if (a->type == SIEVE_ACT_REDIRECT) {
		if (r->redirects >= r->lim.max_redirects) {
			sv_action_free(a);
			return sv_rt_error(r, n, "number of redirect actions exceeds policy "
					   "limit (%u)", r->lim.max_redirects);
		}
		r->redirects++;
	}
	if (res->nactions >= r->lim.max_actions) {
		sv_action_free(a);
		return sv_rt_error(r, n, "total number of actions exceeds policy limit (%u)",
				   r->lim.max_actions);
	}
	void *nv = realloc(res->actions, (res->nactions + 1) * sizeof *res->actions);
	if (!nv) {
		sv_action_free(a);
		return sv_rt_error(r, n, "out of memory");
	}
	res->actions = nv;
	res->actions[res->nactions++] = *a;
	memset(a, 0, sizeof *a);
	return SV_OK;
}

int sv_add_store(struct sv_run *r, const struct sv_node *n, const char *folder,
		 char **flags, size_t nflags, bool create, bool copy)
{
	struct sieve_action a = { .type = SIEVE_ACT_STORE, .create = create };
	/* INBOX is case-insensitive (RFC 3501 5.1): one spelling, so that the
	 * store never creates a folder "inbox" and merges with the keep */
	a.target = strdup(sv_streq_ci(folder, "INBOX") ? "INBOX" : folder);
	if (nflags > 0) {
		a.flags = sv_strv_dup(flags, nflags);
		if (!a.flags) {
			free(a.target);
			return sv_rt_error(r, n, "out of memory");
		}
	}
	if (!a.target) {
		sv_action_free(&a);
		return sv_rt_error(r, n, "out of memory");
	}
	int rc = sv_add_action(r, n, &a);
	if (rc == SV_OK && !copy)
		r->keep = false;
	return rc;
}
