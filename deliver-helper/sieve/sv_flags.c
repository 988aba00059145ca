/* sv_flags.c — IMAP flag sets (RFC 5232), part of the core: the run's
 * internal flags variable, reading a flag list, and the :flags of
 * keep/fileinto (cmd_actions.c) and of the implicit keep (sv_interp.c).
 * The setflag/addflag/removeflag/hasflag commands are ext_imap4flags.c.
 *
 * A flag list is a set of IMAP flag names split at spaces, compared without
 * regard to case; system flags are stored in their canonical spelling
 * (\Seen ...).  Names that are not valid IMAP flags (RFC 3501 flag syntax;
 * \Recent may not be set) are ignored with a warning, as in Pigeonhole.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_maildir.h"
#include "sv_int.h"

static const char *const system_flags[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", NULL
};

/* canon - canonical spelling of a valid flag, or NULL when invalid */
static const char *canon(const char *f, size_t len)
{
	if (len == 0)
		return NULL;
	if (f[0] == '\\') {
		for (size_t i = 0; system_flags[i]; i++)
			if (strlen(system_flags[i]) == len && strncasecmp(system_flags[i], f, len) == 0)
				return system_flags[i];
		return NULL;
	}
	return hm_imap_atom_valid(f, len) ? f : NULL;
}

bool sv_flag_has(char **v, size_t n, const char *f)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i], f) == 0)
			return true;
	return false;
}

/* sv_flags_add - add the flags of s (space separated) to the set v */
int sv_flags_add(struct sv_run *r, const struct sv_node *n, const char *s,
		 char ***v, size_t *nv)
{
	const char *p = s;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (len == 0)
			break;
		const char *c = canon(p, len);
		if (!c) {
			char tmp[64];
			size_t tl = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
			memcpy(tmp, p, tl);
			tmp[tl] = 0;
			sv_rt_warn(r, n, "IMAP flag '%s' is invalid and will be ignored", tmp);
		} else {
			char *f = c == p ? sv_strndup(p, len) : strdup(c);
			if (!f)
				return -1;
			if (!sv_flag_has(*v, *nv, f) && *nv >= SV_MAX_FLAGS)
				sv_rt_warn(r, n, "more than %d IMAP flags: '%s' is ignored",
					   SV_MAX_FLAGS, f);
			if (sv_flag_has(*v, *nv, f) || *nv >= SV_MAX_FLAGS) {
				free(f);
			} else {
				char **nvv = realloc(*v, (*nv + 2) * sizeof **v);
				if (!nvv) {
					free(f);
					return -1;
				}
				*v = nvv;
				(*v)[(*nv)++] = f;
				(*v)[*nv] = NULL;
			}
		}
		p += len;
	}
	return 0;
}

void sv_flags_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int sv_flags_from_list(struct sv_run *r, const struct sv_node *n, const struct sv_arg *a,
		       char ***out_r, size_t *nout_r)
{
	*out_r = NULL;
	*nout_r = 0;
	for (size_t i = 0; i < a->n; i++) {
		size_t len;
		char *s = sv_expand(r, n, &a->v[i], &len);
		if (!s || sv_flags_add(r, n, s, out_r, nout_r) < 0) {
			free(s);
			sv_flags_free(*out_r, *nout_r);
			*out_r = NULL;
			*nout_r = 0;
			return r->failed ? -1 : sv_rt_error(r, n, "out_r of memory");
		}
		free(s);
	}
	return 0;
}

int sv_flags_current(struct sv_run *r, char ***out_r, size_t *nout_r)
{
	*nout_r = r->nflags;
	*out_r = r->nflags ? sv_strv_dup(r->flags, r->nflags) : NULL;
	return 0;
}
