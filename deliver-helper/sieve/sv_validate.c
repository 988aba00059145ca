/* sv_validate.c — Sieve validator: gives the parsed tree its meaning.
 *
 * What for: checks every command and test against its definition (the
 * cmd_*.c, tst_*.c, ext_*.c tables): known name, extension required, tags
 * allowed and not repeated, tag arguments, positional arguments, tests and
 * blocks, if/elsif/else order, require placement; then each definition's own
 * checks.  Errors carry the position of the offending token.
 * Relies on: sv_parser.c's tree; sv_match.c for comparator/match checks.
 * How it fails: records each error (up to a limit) and returns -1.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_util.h"
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

static int lc(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* cmp_lower - strcmp of ASCII-lower-cased a[0..alen) (no NUL in it: an
 * identifier) against the string b (already lower case) */
static int cmp_lower(const char *a, size_t alen, const char *b)
{
	for (size_t i = 0; i < alen; i++) {
		int x = (unsigned char)a[i], y = (unsigned char)b[i];
		x += (unsigned)(x - 'A') < 26u ? 32 : 0;
		if (x != y)
			return x - y;     /* also when b ends first (y == 0 < x) */
	}
	return -(int)(unsigned char)b[alen];   /* 0 when b ends too */
}

/* sv_def_find - binary search in sv_defs (identifiers hold no NUL) */
const struct sv_def *sv_def_find(const char *name, size_t len)
{
	size_t lo = 0, hi = HM_ARRAY_SIZE(sv_defs) - 1;   /* without the NULL */
	if (len == 0)
		return NULL;
	int first = lc((unsigned char)name[0]);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		/* the first letter decides most steps without a call */
		int c = first - (unsigned char)sv_defs[mid]->name[0];
		if (c == 0)
			c = cmp_lower(name + 1, len - 1, sv_defs[mid]->name + 1);
		if (c == 0)
			return sv_defs[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
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

#define MAX_ERRORS 10

void sv_error(struct sv_comp *c, int line, int col, const char *fmt, ...)
{
	c->nerr++;
	if (c->nerr > MAX_ERRORS)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char clean[1100];
	hm_log_clean(clean, sizeof clean, msg, strlen(msg));
	hm_buf_printf(&c->err, "%s%s:%d:%d: error: %s", c->err.len ? "\n" : "",
		      c->s->name, line, col, clean);
}

static const char *what(const struct sv_node *n, bool is_test)
{
	(void)n;
	return is_test ? "test" : "command";
}

static const enum sv_tag matching_tags[] = {
	TG_COMPARATOR, TG_IS, TG_CONTAINS, TG_MATCHES, TG_REGEX, TG_VALUE, TG_COUNT,
	TG_COUNT_ALL
};
static const enum sv_tag addrpart_tags[] = {
	TG_ALL, TG_LOCALPART, TG_DOMAIN, TG_USER, TG_DETAIL, TG_COUNT_ALL
};
static const enum sv_tag index_tags[] = { TG_INDEX, TG_LAST, TG_COUNT_ALL };

/* find_tag - the tag definition named name allowed for def, or NULL */
static const struct sv_tagdef *find_tag(const struct sv_def *def, const char *name)
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
			if (lc((unsigned char)name[0]) == tagdefs[*t].name[0] &&
			    cmp_lower(name, strlen(name), tagdefs[*t].name) == 0)
				return &tagdefs[*t];
	}
	return NULL;
}

/* prepare_strings - encoded-character decoding and variable marking */
static int prepare_strings(struct sv_comp *c, struct sv_node *n)
{
	for (size_t i = 0; i < n->nargs; i++) {
		struct sv_arg *a = &n->args[i];
		if (a->type != SV_ARG_STR && a->type != SV_ARG_LIST)
			continue;
		for (size_t k = 0; k < a->n; k++) {
			struct sv_str *s = &a->v[k];
			if (c->s->ext[EXT_ENCODED_CHARACTER] && sv_decode_encoded_chars(c, s) < 0)
				return -1;
			if (c->s->ext[EXT_VARIABLES] && memmem(s->s, s->len, "${", 2))
				s->var = true;
		}
	}
	return 0;
}

static int validate_block(struct sv_comp *c, struct sv_node *cmds, bool top);

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

/* sv_validate_node - see sv_int.h; n->def is the parser's lookup by name
 * (sv_def_find), checked here to be of the kind wanted */
int sv_validate_node(struct sv_comp *c, struct sv_node *n, bool is_test)
{
	const struct sv_def *def = n->def && n->def->is_test == is_test ? n->def : NULL;
	if (!def || (def->ext != EXT_NONE && !c->s->ext[def->ext])) {
		const struct sv_def *other = n->def && n->def->is_test != is_test ? n->def : NULL;
		if (def)
			sv_error(c, n->line, n->col,
				 "unknown %s '%s' (the \"%s\" extension is not required)",
				 what(n, is_test), n->name, sv_ext_names[def->ext]);
		else if (other)
			sv_error(c, n->line, n->col, "'%s' is a %s, not a %s", n->name,
				 is_test ? "command" : "test", what(n, is_test));
		else
			sv_error(c, n->line, n->col, "unknown %s '%s'", what(n, is_test), n->name);
		return -1;
	}
	n->def = def;
	if (n->nargs > SV_MAX_ARGS) {
		sv_error(c, n->line, n->col, "too many arguments");
		return -1;
	}
	if (prepare_strings(c, n) < 0)
		return -1;
	struct sv_opts *o = &n->o;
	memset(o, 0, sizeof *o);
	o->mt = MT_IS;
	o->cmp = CMP_CASEMAP;
	o->ap = AP_ALL;
	size_t i = 0;
	const char *pos = def->pos ? def->pos : "";
	n->npos = 0;
	bool optional = false;
	for (i = 0; i < n->nargs; i++) {
		struct sv_arg *a = &n->args[i];
		if (a->type == SV_ARG_TAG) {
			if (n->npos > 0) {
				sv_error(c, a->line, a->col,
					 "unexpected tagged argument ':%s' after the positional "
					 "arguments of the %s %s", a->tag, def->name,
					 what(n, is_test));
				return -1;
			}
			const struct sv_tagdef *td = find_tag(def, a->tag);
			if (!td || (td->ext != EXT_NONE && !c->s->ext[td->ext])) {
				sv_error(c, a->line, a->col, "unknown tagged argument ':%s' for the %s %s",
					 a->tag, def->name, what(n, is_test));
				return -1;
			}
			if (sv_has(o->tags, td->id)) {
				sv_error(c, a->line, a->col, "tagged argument ':%s' given twice",
					 a->tag);
				return -1;
			}
			if (td->group) {
				/* the tags given so far, lowest id first */
				for (uint64_t set = o->tags; set; set &= set - 1) {
					int t = __builtin_ctzll(set);
					if (tagdefs[t].group == td->group) {
						sv_error(c, a->line, a->col,
							 "tagged argument ':%s' conflicts with ':%s'",
							 a->tag, tagdefs[t].name);
						return -1;
					}
				}
			}
			o->tags |= 1ull << td->id;
			a->tagid = (uint8_t)td->id;
			if (td->arg != TA_NONE) {
				if (i + 1 >= n->nargs) {
					sv_error(c, a->line, a->col,
						 "tagged argument ':%s' needs an argument", a->tag);
					return -1;
				}
				struct sv_arg *b = &n->args[++i];
				bool ok = (td->arg == TA_NUM && b->type == SV_ARG_NUM) ||
					  (td->arg == TA_STR && b->type == SV_ARG_STR) ||
					  (td->arg == TA_LIST && (b->type == SV_ARG_STR ||
								  b->type == SV_ARG_LIST));
				if (!ok) {
					sv_error(c, b->line, b->col,
						 "tagged argument ':%s' needs a %s argument", a->tag,
						 td->arg == TA_NUM ? "number" :
						 td->arg == TA_STR ? "string" : "string-list");
					return -1;
				}
			}
			switch (td->id) {
			case TG_IS: o->mt = MT_IS; break;
			case TG_CONTAINS: o->mt = MT_CONTAINS; break;
			case TG_MATCHES: o->mt = MT_MATCHES; break;
			case TG_REGEX: o->mt = MT_REGEX; break;
			case TG_VALUE: o->mt = MT_VALUE; break;
			case TG_COUNT: o->mt = MT_COUNT; break;
			case TG_ALL: o->ap = AP_ALL; break;
			case TG_LOCALPART: o->ap = AP_LOCALPART; break;
			case TG_DOMAIN: o->ap = AP_DOMAIN; break;
			case TG_USER: o->ap = AP_USER; break;
			case TG_DETAIL: o->ap = AP_DETAIL; break;
			default: break;
			}
			continue;
		}
		/* positional */
		while (*pos == '?') {
			optional = true;
			pos++;
		}
		if (*pos == 0) {
			sv_error(c, a->line, a->col, "too many arguments for the %s %s",
				 def->name, what(n, is_test));
			return -1;
		}
		char want = *pos++;
		bool ok = (want == 's' && a->type == SV_ARG_STR) ||
			  (want == 'l' && (a->type == SV_ARG_STR || a->type == SV_ARG_LIST)) ||
			  (want == 'n' && a->type == SV_ARG_NUM);
		if (!ok) {
			sv_error(c, a->line, a->col,
				 "the %s %s expects a %s as argument %d but found a %s",
				 def->name, what(n, is_test),
				 want == 's' ? "string" : want == 'l' ? "string list" : "number",
				 n->npos + 1,
				 a->type == SV_ARG_STR ? "string" : a->type == SV_ARG_LIST ?
				 "string list" : "number");
			return -1;
		}
		if (n->npos < 4)
			n->pos_i[n->npos++] = (uint8_t)i;   /* i < SV_MAX_ARGS */
	}
	while (*pos == '?') {
		optional = true;
		pos++;
	}
	if (*pos != 0 && !optional) {
		sv_error(c, n->line, n->col, "the %s %s needs %zu more argument%s",
			 def->name, what(n, is_test), strlen(pos), strlen(pos) > 1 ? "s" : "");
		return -1;
	}
	/* tests */
	if (def->subtests == 0 && n->ntests > 0) {
		/* almost always a missing ';' (command) or '{' (test of an if) */
		if (is_test)
			sv_error(c, n->tests->line, n->tests->col,
				 "unexpected '%s' after the %s test: expected '{' (a block) "
				 "or ',' or ')'", n->tests->name, def->name);
		else
			sv_error(c, n->tests->line, n->tests->col,
				 "expected ';' after the %s command but found '%s'", def->name,
				 n->tests->name);
		return -1;
	}
	if (def->subtests == 1 && (n->ntests != 1 || n->test_list)) {
		sv_error(c, n->end_line, n->end_col, "the %s %s expects a test%s", def->name,
			 what(n, is_test), n->test_list ? " (not a test list)" : "");
		return -1;
	}
	if (def->subtests == 2 && !n->test_list) {
		sv_error(c, n->end_line, n->end_col, "the %s %s expects a test list", def->name,
			 what(n, is_test));
		return -1;
	}
	if (++c->depth > c->s->lim.max_nesting) {
		sv_error(c, n->line, n->col, "nesting too deep");
		return -1;
	}
	for (struct sv_node *t = n->tests; t; t = t->next)
		if (sv_validate_node(c, t, true) < 0)
			return -1;
	c->depth--;
	if (!is_test) {
		if (def->block && !n->has_block) {
			sv_error(c, n->line, n->col, "the %s command needs a block", def->name);
			return -1;
		}
		if (!def->block && n->has_block) {
			sv_error(c, n->line, n->col, "the %s command takes no block", def->name);
			return -1;
		}
	}
	if ((def->groups & SV_MATCHING) && sv_match_validate(c, n, NULL) < 0)
		return -1;
	if (def->validate && def->validate(c, n) < 0)
		return -1;
	if (n->has_block) {
		c->depth++;
		int r = validate_block(c, n->block, false);
		c->depth--;
		if (r < 0)
			return -1;
	}
	return 0;
}

/* validate_block - each command, plus the if/elsif/else order and the
 * placement of require (RFC 5228 3.2: before any other command) */
static int validate_block(struct sv_comp *c, struct sv_node *cmds, bool top)
{
	int ret = 0;
	bool prev_if = false;
	for (struct sv_node *cmd = cmds; cmd; cmd = cmd->next) {
		/* by name, whether or not an extension makes it usable */
		const struct sv_def *d = cmd->def && !cmd->def->is_test ? cmd->def : NULL;
		bool is_require = d == &sv_def_require;
		bool is_chain = d == &sv_def_elsif || d == &sv_def_else;
		if (is_require && (!top || !c->require_allowed)) {
			sv_error(c, cmd->line, cmd->col,
				 "require must come before any other command");
			ret = -1;
			continue;
		}
		if (!is_require)
			c->require_allowed = false;
		if (is_chain && !prev_if) {
			sv_error(c, cmd->line, cmd->col,
				 "%s without a preceding if or elsif", cmd->name);
			ret = -1;
			continue;
		}
		if (sv_validate_node(c, cmd, false) < 0) {
			ret = -1;
			if (c->nerr >= MAX_ERRORS)
				return -1;
		}
		prev_if = d == &sv_def_if || d == &sv_def_elsif;
	}
	return ret;
}

int sv_validate(struct sv_comp *c)
{
	c->require_allowed = true;
	return validate_block(c, c->s->cmds, true);
}
