/* sv_interp.c — the Sieve interpreter: runs a validated tree.
 *
 * What for: sieve_execute walks the commands of each script in order,
 * evaluates tests, and collects actions into a sieve_result; the implicit
 * keep (RFC 5228 2.10.2) is added at the end when nothing cancelled it.
 * Relies on: the exec functions of the command/test files; sv_result.c.
 * How it fails: a runtime error (limit, conflict, budget) stops the run,
 * drops the actions of the failing script (those of earlier before-scripts
 * stay, as in Pigeonhole) and leaves the plain implicit keep, with the
 * message in result->errmsg — mail is never lost because of a script.
 */
#include <stdlib.h>
#include <string.h>

#include "hm_util.h"
#include "sv_int.h"

void sieve_limits_default(struct sieve_limits *l)
{
	l->max_script_size = 1024 * 1024;  /* Pigeonhole: sieve_max_script_size 1M */
	l->max_nesting = 64;
	l->max_actions = 32;               /* Pigeonhole: sieve_max_actions */
	l->max_redirects = 4;              /* Pigeonhole: sieve_max_redirects */
	l->max_includes = 255;
	l->max_include_depth = 10;
	l->max_steps = 4000000;
	l->max_body = 1024 * 1024;
}

int sv_exec_test(struct sv_run *r, struct sv_node *t)
{
	if (sv_step(r, t, 1) < 0)
		return -1;
	int v = t->def->exec(r, t);
	if (v < 0 && !r->failed)
		sv_rt_error(r, t, "test '%s' failed", t->name);
	return v;
}

int sv_exec_block(struct sv_run *r, struct sv_node *cmds)
{
	bool taken = false;   /* a branch of the current if/elsif/else chain ran */
	for (struct sv_node *c = cmds; c; c = c->next) {
		if (sv_step(r, c, 1) < 0)
			return SV_ERR;
		const struct sv_def *d = c->def;
		bool run = false;
		if (d == &sv_def_if || (d == &sv_def_elsif && !taken)) {
			int t = sv_exec_test(r, c->tests);
			if (t < 0)
				return SV_ERR;
			taken = t == 1;
			run = taken;
		} else if (d == &sv_def_elsif) {
			run = false;
		} else if (d == &sv_def_else) {
			run = !taken;
		} else {
			if (!d->exec)
				continue;
			int rc = d->exec(r, c);
			if (rc != SV_OK)
				return rc;
			continue;
		}
		if (run) {
			int rc = sv_exec_block(r, c->block);
			if (rc != SV_OK)
				return rc;
		}
	}
	return SV_OK;
}

/* add_implicit_keep - append the implicit keep (store "INBOX" with flags,
 * which it owns) unless a store into INBOX is already there; added without
 * limits or conflict checks: it must always work.  -1 on ENOMEM. */
static int add_implicit_keep(struct sieve_result *res, char **flags, unsigned script)
{
	res->implicit_keep = true;
	for (size_t k = 0; k < res->nactions; k++)
		if (res->actions[k].type == SIEVE_ACT_STORE &&
		    strcmp(res->actions[k].target, "INBOX") == 0) {
			sv_strv_free(flags);
			return 0;
		}
	struct sieve_action a = { .type = SIEVE_ACT_STORE, .implicit = true,
				  .flags = flags, .script = script };
	a.target = strdup("INBOX");
	void *nv = a.target ? realloc(res->actions, (res->nactions + 1) * sizeof *res->actions)
			    : NULL;
	if (!nv) {
		sv_action_free(&a);
		return -1;
	}
	res->actions = nv;
	res->actions[res->nactions++] = a;
	return 0;
}

/* to_error_result - script `script` failed: drop its actions and duplicate
 * marks and those of any later script, and the implicit keep; then add the
 * plain implicit keep (no flags of the failed script).  See sieve.h. */
static void to_error_result(struct sieve_result *res, unsigned script)
{
	size_t k = 0;
	for (size_t i = 0; i < res->nactions; i++) {
		if (res->actions[i].script >= script || res->actions[i].implicit)
			sv_action_free(&res->actions[i]);
		else
			res->actions[k++] = res->actions[i];
	}
	res->nactions = k;
	k = 0;
	for (size_t i = 0; i < res->ndups; i++) {
		if (res->dups[i].script >= script)
			free(res->dups[i].id);
		else
			res->dups[k++] = res->dups[i];
	}
	res->ndups = k;
	res->error = true;
	res->implicit_keep = false;
	if (add_implicit_keep(res, NULL, script) < 0)
		res->implicit_keep = false;  /* ENOMEM: the caller keeps anyway */
}

void sieve_result_set_error(struct sieve_result *r, const struct sieve_action *failed,
			    const char *msg)
{
	unsigned script = failed ? failed->script : r->last_script;
	if (!r->errmsg && msg)
		r->errmsg = strdup(msg);
	to_error_result(r, script);
}

struct sieve_result *sieve_execute(struct sieve_script *const *scripts, size_t n,
				   const struct sieve_message *msg,
				   const struct sieve_callbacks *cb)
{
	struct sieve_result *res = calloc(1, sizeof *res);
	if (!res)
		return NULL;
	static const struct sieve_callbacks nocb;
	struct sv_run r = { .m = msg, .cb = cb ? cb : &nocb, .res = res, .keep = true };
	hm_buf_init(&r.errbuf, 4096);
	if (n > 0)
		r.lim = scripts[0]->lim;
	else
		sieve_limits_default(&r.lim);
	int mrc = sv_msg_init(&r.msg, msg);
	if (mrc < 0) {
		r.failed = true;
		hm_buf_puts(&r.errbuf, mrc == -2 ?
			    "sieve: the message header has more than 10000 fields or 1 MiB: "
			    "not filtered" : "sieve: cannot parse the message");
	}
	for (size_t i = 0; i < n && !r.failed; i++) {
		struct sv_frame fr = { .s = scripts[i] };
		r.frame = &fr;
		r.script = (unsigned)i;
		res->last_script = (unsigned)i;
		r.lim = scripts[i]->lim;
		r.steps = 0;
		for (size_t k = 0; k < SV_MAX_MATCHVARS; k++) {
			free(r.mvars[k]);
			r.mvars[k] = NULL;
			r.mlens[k] = 0;
		}
		r.inc_stack = NULL;
		int rc = sv_exec_block(&r, scripts[i]->cmds);
		sv_varstore_free(&fr.local);
		r.frame = NULL;
		free(r.inc_stack);
		r.inc_stack = NULL;
		r.ninc_stack = 0;
		if (rc == SV_ERR || r.failed) {
			r.failed = true;
			break;
		}
		/* Pigeonhole's multiscript: go on only while the keep stands */
		if (!r.keep)
			break;
	}
	if (r.failed) {
		res->errmsg = hm_buf_steal(&r.errbuf, NULL);
		to_error_result(res, r.script);
	} else if (r.keep) {
		char **fl = NULL;
		size_t nfl = 0;
		sv_flags_current(&r, &fl, &nfl);
		if (add_implicit_keep(res, fl, r.script) < 0)
			to_error_result(res, r.script);
	}
	sv_strv_free(r.flags);
	sv_varstore_free(&r.globals);
	for (size_t k = 0; k < SV_MAX_MATCHVARS; k++)
		free(r.mvars[k]);
	free(r.once_done);
	hm_buf_free(&r.errbuf);
	sv_msg_free(&r.msg);
	return res;
}

void sieve_result_free(struct sieve_result **rp)
{
	struct sieve_result *r = *rp;
	if (!r)
		return;
	*rp = NULL;
	for (size_t i = 0; i < r->nactions; i++)
		sv_action_free(&r->actions[i]);
	free(r->actions);
	for (size_t i = 0; i < r->ndups; i++)
		free(r->dups[i].id);
	free(r->dups);
	sv_strv_free(r->warnings);
	free(r->errmsg);
	free(r);
}

const char *sieve_capabilities(void)
{
	return "fileinto reject ereject envelope encoded-character vacation "
	       "vacation-seconds subaddress comparator-i;ascii-numeric relational "
	       "regex imap4flags copy include body variables mailbox date index "
	       "duplicate";
}
