/* sv_parser.c — Sieve parser (RFC 5228 section 8.2) building the tree.
 *
 *   start        = commands
 *   commands     = *command
 *   command      = identifier arguments (";" / block)
 *   block        = "{" commands "}"
 *   arguments    = *argument [ test / test-list ]
 *   argument     = string-list / number / tag
 *   string-list  = "[" string *("," string) "]" / string
 *   test         = identifier arguments
 *   test-list    = "(" test *("," test) ")"
 *
 * What for: syntax only; meaning is the validator's job (sv_validate.c).
 * Relies on: sv_lexer.c.  Recursion is bounded by limits.max_nesting.
 * How it fails: the first syntax error is reported with its position and
 * parsing stops (later errors would mostly be consequences of the first).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sv_lexer.h"

struct parser {
	struct sv_lexer lx;
	struct sv_comp *c;
	unsigned depth;
};

char *sv_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static void args_free(struct sv_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < a[i].n; k++)
			free(a[i].v[k].s);
		free(a[i].v);
		free(a[i].tag);
	}
	free(a);
}

static void node_clear(struct sv_node *n)
{
	free(n->name);
	args_free(n->args, n->nargs);
	sv_nodes_free(n->tests, n->ntests);
	sv_nodes_free(n->block, n->nblock);
	if (n->priv && n->priv_free)
		n->priv_free(n->priv);
}

void sv_nodes_free(struct sv_node *n, size_t count)
{
	if (!n)
		return;
	for (size_t i = 0; i < count; i++)
		node_clear(&n[i]);
	free(n);
}

static int nomem(struct parser *p)
{
	sv_error(p->c, p->lx.tline, p->lx.tcol, "out of memory");
	return -1;
}

/* grow - make room for one more element in *v (count n, capacity *cap) */
static int grow(void **v, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 1;   /* most blocks hold one or two commands */
	void *nv = realloc(*v, nc * sz);
	if (!nv)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

static int take_string(struct parser *p, struct sv_str *s)
{
	s->line = p->lx.tline;
	s->col = p->lx.tcol;
	s->len = p->lx.str.len;
	s->s = sv_strndup(p->lx.str.len ? p->lx.str.data : "", p->lx.str.len);
	s->var = false;
	return s->s ? 0 : nomem(p);
}

/* parse_args - *argument, leaving the current token after them */
static int parse_args(struct parser *p, struct sv_node *n)
{
	size_t cap = 0;
	for (;;) {
		enum sv_tok t = p->lx.t;
		if (t != TK_STR && t != TK_NUM && t != TK_TAG && t != TK_LBRACKET)
			return 0;
		if (grow((void **)&n->args, n->nargs, &cap, sizeof *n->args) < 0)
			return nomem(p);
		struct sv_arg *a = &n->args[n->nargs];
		memset(a, 0, sizeof *a);
		a->line = p->lx.tline;
		a->col = p->lx.tcol;
		n->nargs++;
		if (t == TK_NUM) {
			a->type = SV_ARG_NUM;
			a->num = p->lx.num;
		} else if (t == TK_TAG) {
			a->type = SV_ARG_TAG;
			a->tag = strdup(p->lx.ident);
			if (!a->tag)
				return nomem(p);
		} else if (t == TK_STR) {
			a->type = SV_ARG_STR;
			a->v = calloc(1, sizeof *a->v);
			if (!a->v)
				return nomem(p);
			a->n = 1;
			if (take_string(p, &a->v[0]) < 0)
				return -1;
		} else {
			a->type = SV_ARG_LIST;
			size_t vcap = 0;
			for (;;) {
				if (sv_lex_next(&p->lx) == TK_ERROR)
					return -1;
				if (p->lx.t != TK_STR) {
					sv_error(p->c, p->lx.tline, p->lx.tcol,
						 "expected a string in the string list but found %s",
						 sv_tok_name(p->lx.t));
					return -1;
				}
				if (grow((void **)&a->v, a->n, &vcap, sizeof *a->v) < 0)
					return nomem(p);
				if (take_string(p, &a->v[a->n]) < 0)
					return -1;
				a->n++;
				if (sv_lex_next(&p->lx) == TK_ERROR)
					return -1;
				if (p->lx.t == TK_RBRACKET)
					break;
				if (p->lx.t != TK_COMMA) {
					sv_error(p->c, p->lx.tline, p->lx.tcol,
						 "expected ',' or ']' in the string list but found %s",
						 sv_tok_name(p->lx.t));
					return -1;
				}
			}
		}
		if (sv_lex_next(&p->lx) == TK_ERROR)
			return -1;
	}
}

static int parse_test(struct parser *p, struct sv_node *n);

/* parse_tests - [ test / test-list ] after the arguments */
static int parse_tests(struct parser *p, struct sv_node *n)
{
	if (p->lx.t == TK_IDENT) {
		n->tests = calloc(1, sizeof *n->tests);
		if (!n->tests)
			return nomem(p);
		n->ntests = 1;
		return parse_test(p, &n->tests[0]);
	}
	if (p->lx.t != TK_LPAREN)
		return 0;
	n->test_list = true;
	size_t cap = 0;
	for (;;) {
		if (sv_lex_next(&p->lx) == TK_ERROR)
			return -1;
		if (p->lx.t != TK_IDENT) {
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "expected a test in the test list but found %s",
				 sv_tok_name(p->lx.t));
			return -1;
		}
		if (grow((void **)&n->tests, n->ntests, &cap, sizeof *n->tests) < 0)
			return nomem(p);
		memset(&n->tests[n->ntests], 0, sizeof *n->tests);
		n->ntests++;
		if (parse_test(p, &n->tests[n->ntests - 1]) < 0)
			return -1;
		if (p->lx.t == TK_RPAREN)
			break;
		if (p->lx.t != TK_COMMA) {
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "expected ',' or ')' in the test list but found %s",
				 sv_tok_name(p->lx.t));
			return -1;
		}
	}
	return sv_lex_next(&p->lx) == TK_ERROR ? -1 : 0;
}

/* parse_test - test = identifier arguments; current token is the identifier */
static int parse_test(struct parser *p, struct sv_node *n)
{
	if (++p->depth > p->c->s->lim.max_nesting) {
		sv_error(p->c, p->lx.tline, p->lx.tcol, "tests nested too deeply (limit %u)",
			 p->c->s->lim.max_nesting);
		return -1;
	}
	n->line = p->lx.tline;
	n->col = p->lx.tcol;
	n->name = strdup(p->lx.ident);
	if (!n->name)
		return nomem(p);
	if (sv_lex_next(&p->lx) == TK_ERROR)
		return -1;
	if (parse_args(p, n) < 0)
		return -1;
	n->end_line = p->lx.tline;
	n->end_col = p->lx.tcol;
	if (parse_tests(p, n) < 0)
		return -1;
	p->depth--;
	return 0;
}

static int parse_commands(struct parser *p, struct sv_node **v, size_t *nv, bool inner);

/* parse_command - command = identifier arguments (";" / block) */
static int parse_command(struct parser *p, struct sv_node *n)
{
	n->line = p->lx.tline;
	n->col = p->lx.tcol;
	n->name = strdup(p->lx.ident);
	if (!n->name)
		return nomem(p);
	if (sv_lex_next(&p->lx) == TK_ERROR)
		return -1;
	if (parse_args(p, n) < 0)
		return -1;
	n->end_line = p->lx.tline;
	n->end_col = p->lx.tcol;
	if (parse_tests(p, n) < 0)
		return -1;
	if (p->lx.t == TK_SEMI)
		return sv_lex_next(&p->lx) == TK_ERROR ? -1 : 0;
	if (p->lx.t == TK_LBRACE) {
		if (++p->depth > p->c->s->lim.max_nesting) {
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "blocks nested too deeply (limit %u)", p->c->s->lim.max_nesting);
			return -1;
		}
		n->has_block = true;
		if (sv_lex_next(&p->lx) == TK_ERROR)
			return -1;
		if (parse_commands(p, &n->block, &n->nblock, true) < 0)
			return -1;
		/* current token is '}' */
		p->depth--;
		return sv_lex_next(&p->lx) == TK_ERROR ? -1 : 0;
	}
	if (p->lx.t == TK_ERROR)
		return -1;
	sv_error(p->c, p->lx.tline, p->lx.tcol,
		 "expected ';' or '{' after the arguments of command '%s' but found %s",
		 n->name, sv_tok_name(p->lx.t));
	return -1;
}

/* parse_commands - commands = *command, ended by '}' (inner) or end of script */
static int parse_commands(struct parser *p, struct sv_node **v, size_t *nv, bool inner)
{
	size_t cap = 0;
	for (;;) {
		if (p->lx.t == TK_ERROR)
			return -1;
		if (inner && p->lx.t == TK_RBRACE)
			return 0;
		if (p->lx.t == TK_EOF) {
			if (!inner)
				return 0;
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "end of script inside a block: missing '}'");
			return -1;
		}
		if (p->lx.t != TK_IDENT) {
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "expected a command but found %s", sv_tok_name(p->lx.t));
			return -1;
		}
		if (grow((void **)v, *nv, &cap, sizeof **v) < 0)
			return nomem(p);
		memset(&(*v)[*nv], 0, sizeof **v);
		(*nv)++;
		if (parse_command(p, &(*v)[*nv - 1]) < 0)
			return -1;
	}
}

int sv_parse(struct sv_comp *c)
{
	struct parser p = { .c = c };
	sv_lex_init(&p.lx, c, c->s->text, c->s->len);
	int r = -1;
	if (sv_lex_next(&p.lx) != TK_ERROR)
		r = parse_commands(&p, &c->s->cmds, &c->s->ncmds, false);
	sv_lex_free(&p.lx);
	return r;
}
