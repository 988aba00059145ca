/* sv_tags.c — the engine's vocabulary: extension names (for "require"),
 * the table of tags (":is", ":copy", ...) and the helpers that read a
 * node's tags and check :index / :last.
 *
 * What for: commands, tests and extensions read their tags through these
 * without depending on the validator or the registry.
 * Relies on: sv_error.c.
 */
#include <string.h>

#include "sv_int.h"

const char *const sv_ext_names[EXT_COUNT] = {
	[EXT_FILEINTO] = "fileinto", [EXT_ENVELOPE] = "envelope",
	[EXT_COPY] = "copy", [EXT_IMAP4FLAGS] = "imap4flags",
	[EXT_VACATION] = "vacation", [EXT_VACATION_SECONDS] = "vacation-seconds",
	[EXT_REJECT] = "reject", [EXT_EREJECT] = "ereject",
	[EXT_RELATIONAL] = "relational", [EXT_CMP_NUMERIC] = "comparator-i;ascii-numeric",
	[EXT_SUBADDRESS] = "subaddress", [EXT_BODY] = "body",
	[EXT_VARIABLES] = "variables", [EXT_MAILBOX] = "mailbox",
	[EXT_DATE] = "date", [EXT_INDEX] = "index", [EXT_REGEX] = "regex",
	[EXT_INCLUDE] = "include", [EXT_DUPLICATE] = "duplicate",
	[EXT_ENCODED_CHARACTER] = "encoded-character",
	/* i;octet and i;ascii-casemap are always there; Pigeonhole refuses
	 * them in require, so they have no name here */
};

int sv_ext_lookup(const char *name)
{
	for (int i = 1; i < EXT_COUNT; i++)
		if (sv_ext_names[i] && strcmp(sv_ext_names[i], name) == 0)
			return i;
	return -1;
}

static const struct sv_tagdef tagdefs[TG_COUNT_ALL] = {
	{ "comparator", TG_COMPARATOR, EXT_NONE, TA_STR, 0 },
	{ "is", TG_IS, EXT_NONE, TA_NONE, 1 },
	{ "contains", TG_CONTAINS, EXT_NONE, TA_NONE, 1 },
	{ "matches", TG_MATCHES, EXT_NONE, TA_NONE, 1 },
	{ "regex", TG_REGEX, EXT_REGEX, TA_NONE, 1 },
	{ "value", TG_VALUE, EXT_RELATIONAL, TA_STR, 1 },
	{ "count", TG_COUNT, EXT_RELATIONAL, TA_STR, 1 },
	{ "all", TG_ALL, EXT_NONE, TA_NONE, 2 },
	{ "localpart", TG_LOCALPART, EXT_NONE, TA_NONE, 2 },
	{ "domain", TG_DOMAIN, EXT_NONE, TA_NONE, 2 },
	{ "user", TG_USER, EXT_SUBADDRESS, TA_NONE, 2 },
	{ "detail", TG_DETAIL, EXT_SUBADDRESS, TA_NONE, 2 },
	{ "index", TG_INDEX, EXT_INDEX, TA_NUM, 0 },
	{ "last", TG_LAST, EXT_INDEX, TA_NONE, 0 },
	{ "over", TG_OVER, EXT_NONE, TA_NUM, 3 },
	{ "under", TG_UNDER, EXT_NONE, TA_NUM, 3 },
	{ "copy", TG_COPY, EXT_COPY, TA_NONE, 0 },
	{ "flags", TG_FLAGS, EXT_IMAP4FLAGS, TA_LIST, 0 },
	{ "create", TG_CREATE, EXT_MAILBOX, TA_NONE, 0 },
	{ "days", TG_DAYS, EXT_NONE, TA_NUM, 4 },
	{ "seconds", TG_SECONDS, EXT_VACATION_SECONDS, TA_NUM, 4 },
	{ "subject", TG_SUBJECT, EXT_NONE, TA_STR, 0 },
	{ "from", TG_FROM, EXT_NONE, TA_STR, 0 },
	{ "addresses", TG_ADDRESSES, EXT_NONE, TA_LIST, 0 },
	{ "mime", TG_MIME, EXT_NONE, TA_NONE, 0 },
	{ "handle", TG_HANDLE, EXT_NONE, TA_STR, 0 },
	{ "raw", TG_RAW, EXT_NONE, TA_NONE, 5 },
	{ "content", TG_CONTENT, EXT_NONE, TA_LIST, 5 },
	{ "text", TG_TEXT, EXT_NONE, TA_NONE, 5 },
	{ "zone", TG_ZONE, EXT_NONE, TA_STR, 6 },
	{ "originalzone", TG_ORIGINALZONE, EXT_NONE, TA_NONE, 6 },
	{ "personal", TG_PERSONAL, EXT_NONE, TA_NONE, 7 },
	{ "global", TG_GLOBAL, EXT_NONE, TA_NONE, 7 },
	{ "once", TG_ONCE, EXT_NONE, TA_NONE, 0 },
	{ "optional", TG_OPTIONAL, EXT_NONE, TA_NONE, 0 },
	{ "header", TG_DUP_HEADER, EXT_NONE, TA_STR, 8 },
	{ "uniqueid", TG_DUP_UNIQUEID, EXT_NONE, TA_STR, 8 },
	{ "seconds", TG_DUP_SECONDS, EXT_NONE, TA_NUM, 0 },
	{ "last", TG_DUP_LAST, EXT_NONE, TA_NONE, 0 },
	{ "handle", TG_DUP_HANDLE, EXT_NONE, TA_STR, 0 },
	{ "lower", TG_LOWER, EXT_NONE, TA_NONE, 40 },
	{ "upper", TG_UPPER, EXT_NONE, TA_NONE, 40 },
	{ "lowerfirst", TG_LOWERFIRST, EXT_NONE, TA_NONE, 30 },
	{ "upperfirst", TG_UPPERFIRST, EXT_NONE, TA_NONE, 30 },
	{ "quotewildcard", TG_QUOTEWILDCARD, EXT_NONE, TA_NONE, 20 },
	{ "quoteregex", TG_QUOTEREGEX, EXT_REGEX, TA_NONE, 20 },
	{ "length", TG_LENGTH, EXT_NONE, TA_NONE, 10 },
};

const struct sv_tagdef *sv_tagdef(enum sv_tag id)
{
	return &tagdefs[id];
}

const struct sv_arg *sv_tagarg(const struct sv_node *n, enum sv_tag id)
{
	if (!sv_has(n->o.tags, id) || tagdefs[id].arg == TA_NONE)
		return NULL;
	const struct sv_arg *a = sv_tagpos(n, id);
	/* the validator checked that the argument follows the tag */
	return a && a + 1 < n->args + n->nargs ? a + 1 : NULL;
}

const struct sv_arg *sv_tagpos(const struct sv_node *n, enum sv_tag id)
{
	if (!sv_has(n->o.tags, id))
		return NULL;
	for (uint32_t i = 0; i < n->nargs; i++)
		if (n->args[i].type == SV_ARG_TAG && n->args[i].tagid == id)
			return &n->args[i];
	return NULL;
}

int sv_validate_index(struct sv_comp *c, struct sv_node *n)
{
	const struct sv_opts *o = &n->o;
	if (sv_has(o->tags, TG_LAST) && !sv_has(o->tags, TG_INDEX)) {
		const struct sv_arg *last = sv_tagpos(n, TG_LAST);
		sv_error(c, last->line, last->col, ":last needs :index");
		return -1;
	}
	if (sv_has(o->tags, TG_INDEX) && sv_tagarg(n, TG_INDEX)->num == 0) {
		sv_error(c, sv_tagarg(n, TG_INDEX)->line, sv_tagarg(n, TG_INDEX)->col,
			 ":index must be a positive number (1 is the first field)");
		return -1;
	}
	return 0;
}

int sv_lc(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* sv_cmp_lower - strcmp of ASCII-lower-cased a[0..alen) (no NUL in it: an
 * identifier) against the string b (already lower case) */
int sv_cmp_lower(const char *a, size_t alen, const char *b)
{
	for (size_t i = 0; i < alen; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		x += (unsigned)(x - 'A') < 26u ? 32 : 0;
		if (x != y)
			return x - y;     /* also when b ends first (y == 0 < x) */
	}
	return -(int)(unsigned char)b[alen];   /* 0 when b ends too */
}

static const enum sv_tag matching_tags[] = {
	TG_COMPARATOR, TG_IS, TG_CONTAINS, TG_MATCHES, TG_REGEX, TG_VALUE, TG_COUNT,
	TG_COUNT_ALL
};
static const enum sv_tag addrpart_tags[] = {
	TG_ALL, TG_LOCALPART, TG_DOMAIN, TG_USER, TG_DETAIL, TG_COUNT_ALL
};
static const enum sv_tag index_tags[] = { TG_INDEX, TG_LAST, TG_COUNT_ALL };

/* sv_tag_find - the tag definition named name allowed for def, or NULL */
const struct sv_tagdef *sv_tag_find(const struct sv_def *def, const char *name)
{
	const enum sv_tag *lists[4] = {
		(def->groups & SV_MATCHING) ? matching_tags : NULL,
		(def->groups & SV_ADDRPART) ? addrpart_tags : NULL,
		(def->groups & SV_INDEXED) ? index_tags : NULL,
		def->tags,
	};
	for (int l = 0; l < 4; l++) {
		if (!lists[l])
			continue;
		for (const enum sv_tag *t = lists[l]; *t != TG_COUNT_ALL; t++)
			if (sv_lc((unsigned char)name[0]) == tagdefs[*t].name[0] &&
			    sv_cmp_lower(name, strlen(name), tagdefs[*t].name) == 0)
				return &tagdefs[*t];
	}
	return NULL;
}
