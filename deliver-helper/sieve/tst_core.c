/* tst_core.c — the tests of RFC 5228 section 5 that need no matching:
 * true, false, not, allof, anyof, exists, size.
 * allof/anyof short-circuit (RFC 5228 5.2/5.3); exists is true when every
 * named header is present (5.5); size compares the message length (5.9).
 */
#include <stdlib.h>
#include <string.h>

#include "sv_int.h"

static int exec_true(struct sv_run *r, struct sv_node *n) { (void)r; (void)n; return 1; }
static int exec_false(struct sv_run *r, struct sv_node *n) { (void)r; (void)n; return 0; }

const struct sv_def sv_def_true = { .name = "true", .is_test = true, .pos = "", .exec = exec_true };
const struct sv_def sv_def_false = { .name = "false", .is_test = true, .pos = "", .exec = exec_false };

static int exec_not(struct sv_run *r, struct sv_node *n)
{
	int v = sv_exec_test(r, n->tests);
	return v < 0 ? -1 : !v;
}

const struct sv_def sv_def_not = {
	.name = "not", .is_test = true, .pos = "", .subtests = 1, .exec = exec_not,
};

static int exec_allof(struct sv_run *r, struct sv_node *n)
{
	for (struct sv_node *t = n->tests; t; t = t->next) {
		int v = sv_exec_test(r, t);
		if (v <= 0)
			return v;
	}
	return 1;
}

static int exec_anyof(struct sv_run *r, struct sv_node *n)
{
	for (struct sv_node *t = n->tests; t; t = t->next) {
		int v = sv_exec_test(r, t);
		if (v != 0)
			return v;
	}
	return 0;
}

const struct sv_def sv_def_allof = {
	.name = "allof", .is_test = true, .pos = "", .subtests = 2, .exec = exec_allof,
};
const struct sv_def sv_def_anyof = {
	.name = "anyof", .is_test = true, .pos = "", .subtests = 2, .exec = exec_anyof,
};

static int validate_exists(struct sv_comp *c, struct sv_node *n)
{
	/* invalid names are accepted and never match (Pigeonhole) */
	(void)c;
	(void)n;
	return 0;
}

static int header_exists(struct sv_run *r, const char *name, size_t len, uint64_t *cost_r)
{
	bool found = false;
	size_t nf = sv_msg_nfields(&r->msg);
	for (size_t k = 0; k < nf && !found; k++)
		found = sv_hdr_is(&r->msg, k, name, len);
	*cost_r = nf / 16 + 1;
	return found;
}

static int exec_exists(struct sv_run *r, struct sv_node *n)
{
	return sv_test_all(r, n, sv_pos(n, 0), header_exists);
}

const struct sv_def sv_def_exists = {
	.name = "exists", .is_test = true, .pos = "l", .validate = validate_exists,
	.exec = exec_exists,
};

static int validate_size(struct sv_comp *c, struct sv_node *n)
{
	if (!sv_has(n->o.tags, TG_OVER) && !sv_has(n->o.tags, TG_UNDER)) {
		sv_error(c, n->line, n->col, "the size test needs :over or :under");
		return -1;
	}
	if (n->npos > 0) {
		sv_error(c, sv_pos(n, 0)->line, sv_pos(n, 0)->col,
			 "the size test takes its limit after :over or :under");
		return -1;
	}
	return 0;
}

static int exec_size(struct sv_run *r, struct sv_node *n)
{
	uint64_t size = r->m->size ? r->m->size : r->m->len;
	/* validate_size saw :over or :under with its number */
	const struct sv_arg *over = sv_tagarg(n, TG_OVER), *under = sv_tagarg(n, TG_UNDER);
	if (over)
		return size > over->num;
	if (under)
		return size < under->num;
	return sv_rt_error(r, n, "size test without :over or :under");
}

static const enum sv_tag size_tags[] = { TG_OVER, TG_UNDER, TG_COUNT_ALL };

const struct sv_def sv_def_size = {
	.name = "size", .is_test = true, .tags = size_tags, .pos = "?n",
	.validate = validate_size, .exec = exec_size,
};
