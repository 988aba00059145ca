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
 * Memory: the tree is built in the script's arena.  Nodes are allocated
 * there as they are met, in script order, and linked to their siblings
 * (->next), so nothing is copied; the arguments of a node and the strings
 * of a list are collected on work stacks owned by the parser and copied
 * into the arena as one array once their count is known (so the arena
 * holds no abandoned half-grown arrays).
 * How it fails: the first syntax error is reported with its position and
 * parsing stops (later errors would mostly be consequences of the first).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sv_lexer.h"

/* stack - a work stack of elements of one type (malloc'd, reused) */
struct stack {
	void *v;
	size_t n, cap;
};

struct parser {
	struct sv_lexer lx;
	struct sv_comp *c;
	struct hm_arena *ar;
	unsigned depth;
	struct stack args, strs;
};

static int nomem(struct parser *p)
{
	sv_error(p->c, p->lx.tline, p->lx.tcol, "out of memory");
	return -1;
}

/* push - append one element of size sz to st; returns it, NULL on ENOMEM.
 * The stack's elements may move: callers keep indexes, not pointers. */
static void *push(struct stack *st, size_t sz)
{
	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 64;
		void *nv = reallocarray(st->v, nc, sz);
		if (!nv)
			return NULL;
		st->v = nv;
		st->cap = nc;
	}
	return (char *)st->v + st->n++ * sz;
}

/* pop_to_arena - move elements base.. of st into one arena array (NULL when
 * there are none); the stack shrinks back to base.  Returns 0, -1 ENOMEM. */
static int pop_to_arena(struct parser *p, struct stack *st, size_t base, size_t sz,
			void **out_r, uint32_t *n_r)
{
	size_t n = st->n - base;
	*out_r = NULL;
	*n_r = (uint32_t)n;
	if (n == 0)
		return 0;
	if (n > UINT32_MAX)
		return -1;
	*out_r = hm_arena_memdup(p->ar, (char *)st->v + base * sz, n, sz);
	st->n = base;
	return *out_r ? 0 : -1;
}

/* take_string - the current TK_STR token as an sv_str (value in the arena) */
static void take_string(struct parser *p, struct sv_str *s)
{
	s->line = p->lx.tline;
	s->col = p->lx.tcol;
	s->len = (uint32_t)p->lx.slen;   /* < script length + 2 < 4 GB */
	s->s = p->lx.s;
	s->var = false;
}

/* parse_list - string-list after '[': strings up to ']' (current token
 * stays on ']') */
static int parse_list(struct parser *p, struct sv_arg *a)
{
	size_t base = p->strs.n;
	for (;;) {
		if (sv_lex_next(&p->lx) == TK_ERROR)
			return -1;
		if (p->lx.t != TK_STR) {
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "expected a string in the string list but found %s",
				 sv_tok_name(p->lx.t));
			return -1;
		}
		struct sv_str *s = push(&p->strs, sizeof *s);
		if (!s)
			return nomem(p);
		take_string(p, s);
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
	void *v;
	if (pop_to_arena(p, &p->strs, base, sizeof(struct sv_str), &v, &a->n) < 0)
		return nomem(p);
	a->v = v;
	return 0;
}

/* parse_args - *argument, leaving the current token after them */
static int parse_args(struct parser *p, struct sv_node *n)
{
	size_t base = p->args.n;
	for (;;) {
		enum sv_tok t = p->lx.t;
		if (t != TK_STR && t != TK_NUM && t != TK_TAG && t != TK_LBRACKET)
			break;
		/* a is filled in place: parse_list touches only the strs stack */
		struct sv_arg *a = push(&p->args, sizeof *a);
		if (!a)
			return nomem(p);
		memset(a, 0, sizeof *a);
		a->line = p->lx.tline;
		a->col = p->lx.tcol;
		if (t == TK_NUM) {
			a->type = SV_ARG_NUM;
			a->num = p->lx.num;
		} else if (t == TK_TAG) {
			a->type = SV_ARG_TAG;
			a->tagid = UINT8_MAX;   /* resolved by the validator */
			a->tag = hm_arena_strndup(p->ar, p->lx.id, p->lx.idlen);
			if (!a->tag)
				return nomem(p);
		} else if (t == TK_STR) {
			a->type = SV_ARG_STR;
			a->v = hm_arena_alloc(p->ar, sizeof *a->v);
			if (!a->v)
				return nomem(p);
			a->n = 1;
			take_string(p, &a->v[0]);
		} else {
			a->type = SV_ARG_LIST;
			if (parse_list(p, a) < 0)
				return -1;
		}
		if (sv_lex_next(&p->lx) == TK_ERROR)
			return -1;
	}
	void *v;
	if (pop_to_arena(p, &p->args, base, sizeof(struct sv_arg), &v, &n->nargs) < 0)
		return nomem(p);
	n->args = v;
	return 0;
}

static int parse_test(struct parser *p, struct sv_node *n);

/* new_node - a zeroed node in the arena, linked at *tail; NULL on ENOMEM */
static struct sv_node *new_node(struct parser *p, struct sv_node ***tail)
{
	struct sv_node *n = hm_arena_array(p->ar, 1, sizeof *n);
	if (!n) {
		nomem(p);
		return NULL;
	}
	**tail = n;
	*tail = &n->next;
	return n;
}

/* parse_tests - [ test / test-list ] after the arguments */
static int parse_tests(struct parser *p, struct sv_node *n)
{
	struct sv_node **tail = &n->tests, *t;
	if (p->lx.t == TK_IDENT) {
		if (!(t = new_node(p, &tail)) || parse_test(p, t) < 0)
			return -1;
		n->ntests = 1;
		return 0;
	}
	if (p->lx.t != TK_LPAREN)
		return 0;
	n->test_list = true;
	for (;;) {
		if (sv_lex_next(&p->lx) == TK_ERROR)
			return -1;
		if (p->lx.t != TK_IDENT) {
			sv_error(p->c, p->lx.tline, p->lx.tcol,
				 "expected a test in the test list but found %s",
				 sv_tok_name(p->lx.t));
			return -1;
		}
		if (!(t = new_node(p, &tail)) || parse_test(p, t) < 0)
			return -1;
		n->ntests++;      /* < script length: no wrap */
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

/* parse_head - identifier arguments [tests]: the part commands and tests
 * share; current token is the identifier */
static int parse_head(struct parser *p, struct sv_node *n)
{
	n->line = p->lx.tline;
	n->col = p->lx.tcol;
	/* the validator checks the kind (command or test) and extension */
	n->def = sv_def_find(p->lx.id, p->lx.idlen);
	if (n->def && strncmp(n->def->name, p->lx.id, p->lx.idlen) == 0 &&
	    n->def->name[p->lx.idlen] == 0)
		n->name = n->def->name;          /* spelt as defined: no copy */
	else
		n->name = hm_arena_strndup(p->ar, p->lx.id, p->lx.idlen);
	if (!n->name)
		return nomem(p);
	if (sv_lex_next(&p->lx) == TK_ERROR)
		return -1;
	if (parse_args(p, n) < 0)
		return -1;
	n->end_line = p->lx.tline;
	n->end_col = p->lx.tcol;
	return parse_tests(p, n);
}

/* parse_test - test = identifier arguments; current token is the identifier */
static int parse_test(struct parser *p, struct sv_node *n)
{
	if (++p->depth > p->c->s->lim.max_nesting) {
		sv_error(p->c, p->lx.tline, p->lx.tcol, "tests nested too deeply (limit %u)",
			 p->c->s->lim.max_nesting);
		return -1;
	}
	if (parse_head(p, n) < 0)
		return -1;
	p->depth--;
	return 0;
}

static int parse_commands(struct parser *p, struct sv_node **first, bool inner);

/* parse_command - command = identifier arguments (";" / block) */
static int parse_command(struct parser *p, struct sv_node *n)
{
	if (parse_head(p, n) < 0)
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
		if (parse_commands(p, &n->block, true) < 0)
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

/* parse_commands - commands = *command, ended by '}' (inner) or end of
 * script; linked from *first */
static int parse_commands(struct parser *p, struct sv_node **first, bool inner)
{
	struct sv_node **tail = first, *cmd;
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
		if (!(cmd = new_node(p, &tail)) || parse_command(p, cmd) < 0)
			return -1;
	}
}

int sv_parse(struct sv_comp *c)
{
	struct parser p = { .c = c, .ar = &c->s->arena };
	sv_lex_init(&p.lx, c, p.ar, c->s->text, c->s->len);
	int r = -1;
	if (sv_lex_next(&p.lx) != TK_ERROR)
		r = parse_commands(&p, &c->s->cmds, false);
	sv_lex_free(&p.lx);
	free(p.args.v);
	free(p.strs.v);
	return r;
}
