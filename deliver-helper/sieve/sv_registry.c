/* sv_registry.c — the registry: every command and test definition the
 * engine knows (the cmd_*.c, tst_*.c, ext_*.c tables) and the extensions'
 * hooks into the validator.
 *
 * What for: the one core file that names the extensions.  The parser finds
 * a definition by name here; the validator and the interpreter call an
 * extension only through the function pointers of these definitions and
 * hooks, so no other core file depends on an extension file (checked by
 * tools/sieve-layers in make check).
 */
#include "hm_util.h"
#include "sv_int.h"

/* Sorted by name (lower case, strcmp order) for sv_def_find's binary
 * search; test_sieve_compile checks the order and that every entry is found. */
const struct sv_def *const sv_defs[] = {
	&sv_def_addflag, &sv_def_address, &sv_def_allof, &sv_def_anyof,
	&sv_def_body, &sv_def_currentdate, &sv_def_date, &sv_def_discard,
	&sv_def_duplicate, &sv_def_else, &sv_def_elsif, &sv_def_envelope,
	&sv_def_ereject, &sv_def_exists, &sv_def_false, &sv_def_fileinto,
	&sv_def_global, &sv_def_hasflag, &sv_def_header, &sv_def_if,
	&sv_def_include, &sv_def_keep, &sv_def_mailboxexists, &sv_def_not,
	&sv_def_redirect, &sv_def_reject, &sv_def_removeflag, &sv_def_require,
	&sv_def_return, &sv_def_set, &sv_def_setflag, &sv_def_size,
	&sv_def_stop, &sv_def_string, &sv_def_true, &sv_def_vacation, NULL
};

/* sv_def_find - binary search in sv_defs (identifiers hold no NUL) */
const struct sv_def *sv_def_find(const char *name, size_t len)
{
	size_t lo = 0, hi = HM_ARRAY_SIZE(sv_defs) - 1;   /* without the NULL */
	if (len == 0)
		return NULL;
	int first = sv_lc((unsigned char)name[0]);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		/* the first letter decides most steps without a call */
		int c = first - (unsigned char)sv_defs[mid]->name[0];
		if (c == 0)
			c = sv_cmp_lower(name + 1, len - 1, sv_defs[mid]->name + 1);
		if (c == 0)
			return sv_defs[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The extensions' hooks into the validator, indexed by extension. */
int (*const sv_ext_string_hook[EXT_COUNT])(struct sv_comp *c, struct sv_str *s) = {
	[EXT_ENCODED_CHARACTER] = sv_decode_encoded_chars,
};
