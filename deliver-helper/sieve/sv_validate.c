/* sv_validate.c — Sieve validator: gives the parsed tree its meaning.
 *
 * What for: checks every command and test against its definition (the
 * cmd_*.c, tst_*.c, ext_*.c tables): known name, extension required, tags
 * allowed and not repeated, tag arguments, positional arguments, tests and
 * blocks, if/elsif/else order, require placement; then each definition's own
 * checks.  Errors carry the position of the offending token.
 * Relies on: sv_parser.c's tree; sv_tags.c for tags; sv_match.c for
 * comparator/match checks; extension hooks only through sv_registry.c.
 * How it fails: records each error (up to a limit) and returns -1.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hm_util.h"
#include "sv_int.h"

static const char *what(const struct sv_node *n, bool is_test)
{
	(void)n;
	return is_test ? "test" : "command";
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
			if (c->s->ext[EXT_ENCODED_CHARACTER] &&
			    sv_ext_string_hook[EXT_ENCODED_CHARACTER](c, s) < 0)
				return -1;
			if (c->s->ext[EXT_VARIABLES] && memmem(s->s, s->len, "${", 2))
				s->var = true;
		}
	}
	return 0;
}

static int validate_block(struct sv_comp *c, struct sv_node *cmds, bool top);

/* resolve_def - n->def if it is of the kind wanted and its extension is
 * required; else records why not.  Returns the definition or NULL. */
static const struct sv_def *resolve_def(struct sv_comp *c, const struct sv_node *n,
					 bool is_test)
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
		return NULL;
	}
	return def;
}

/* validate_tag - the tagged argument n->args[*i]: known, not repeated, not
 * in conflict with its group, its own argument (consumed: *i advances);
 * sets o->tags and the match type / address part.  Returns 0 or -1. */
static int validate_tag(struct sv_comp *c, struct sv_node *n, bool is_test,
			const struct sv_def *def, size_t *i)
{
	struct sv_opts *o = &n->o;
	struct sv_arg *a = &n->args[*i];
	if (n->npos > 0) {
		sv_error(c, a->line, a->col,
			 "unexpected tagged argument ':%s' after the positional "
			 "arguments of the %s %s", a->tag, def->name,
			 what(n, is_test));
		return -1;
	}
	const struct sv_tagdef *td = sv_tag_find(def, a->tag);
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
			if (sv_tagdef(t)->group == td->group) {
				sv_error(c, a->line, a->col,
					 "tagged argument ':%s' conflicts with ':%s'",
					 a->tag, sv_tagdef(t)->name);
				return -1;
			}
		}
	}
	o->tags |= 1ull << td->id;
	a->tagid = (uint8_t)td->id;
	if (td->arg != TA_NONE) {
		if (*i + 1 >= n->nargs) {
			sv_error(c, a->line, a->col,
				 "tagged argument ':%s' needs an argument", a->tag);
			return -1;
		}
		struct sv_arg *b = &n->args[++*i];
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
	return 0;
}

/* validate_positional - the positional argument n->args[i] against the next
 * letter of def->pos (*pos: 's' string, 'l' string list, 'n' number; '?'
 * makes the rest optional, noted in *optional); records its index in
 * n->pos_i.  Returns 0 or -1. */
static int validate_positional(struct sv_comp *c, struct sv_node *n, bool is_test,
			       const struct sv_def *def, size_t i, const char **pos,
			       bool *optional)
{
	const struct sv_arg *a = &n->args[i];
	while (**pos == '?') {
		*optional = true;
		(*pos)++;
	}
	if (**pos == 0) {
		sv_error(c, a->line, a->col, "too many arguments for the %s %s",
			 def->name, what(n, is_test));
		return -1;
	}
	char want = *(*pos)++;
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
	return 0;
}

/* validate_args - tagged arguments first, then the positional ones, then
 * none of the required positional arguments missing.  Returns 0 or -1. */
static int validate_args(struct sv_comp *c, struct sv_node *n, bool is_test,
			 const struct sv_def *def)
{
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
		if (n->args[i].type == SV_ARG_TAG) {
			if (validate_tag(c, n, is_test, def, &i) < 0)
				return -1;
			continue;
		}
		if (validate_positional(c, n, is_test, def, i, &pos, &optional) < 0)
			return -1;
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
	return 0;
}

/* validate_test_count - no test, one test or a test list, as def->subtests
 * says.  Returns 0 or -1. */
static int validate_test_count(struct sv_comp *c, const struct sv_node *n, bool is_test,
			       const struct sv_def *def)
{
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
	return 0;
}

/* validate_block_rule - a command has a block exactly when its definition
 * says so.  Returns 0 or -1. */
static int validate_block_rule(struct sv_comp *c, const struct sv_node *n,
			       const struct sv_def *def)
{
	if (def->block && !n->has_block) {
		sv_error(c, n->line, n->col, "the %s command needs a block", def->name);
		return -1;
	}
	if (!def->block && n->has_block) {
		sv_error(c, n->line, n->col, "the %s command takes no block", def->name);
		return -1;
	}
	return 0;
}

/* sv_validate_node - see sv_int.h; n->def is the parser's lookup by name
 * (sv_def_find), checked here to be of the kind wanted */
int sv_validate_node(struct sv_comp *c, struct sv_node *n, bool is_test)
{
	const struct sv_def *def = resolve_def(c, n, is_test);
	if (!def)
		return -1;
	n->def = def;
	if (n->nargs > SV_MAX_ARGS) {
		sv_error(c, n->line, n->col, "too many arguments");
		return -1;
	}
	if (prepare_strings(c, n) < 0)
		return -1;
	if (validate_args(c, n, is_test, def) < 0)
		return -1;
	/* tests */
	if (validate_test_count(c, n, is_test, def) < 0)
		return -1;
	if (++c->depth > c->s->lim.max_nesting) {
		sv_error(c, n->line, n->col, "nesting too deep");
		return -1;
	}
	for (struct sv_node *t = n->tests; t; t = t->next)
		if (sv_validate_node(c, t, true) < 0)
			return -1;
	c->depth--;
	if (!is_test && validate_block_rule(c, n, def) < 0)
		return -1;
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
			if (c->nerr >= SV_MAX_ERRORS)
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
