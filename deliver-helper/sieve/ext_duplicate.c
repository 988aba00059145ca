/* ext_duplicate.c — RFC 7352 duplicate:
 *   duplicate [:handle s] [:header name / :uniqueid s] [:seconds n] [:last]
 * True when the message's id (the Message-ID by default) was seen before
 * within the period.  The state is the caller's (callbacks.duplicate_check);
 * ids tested here are listed in result->dups and must be recorded by the
 * caller only when the whole delivery succeeded (RFC 7352 3.1).
 * Without a callback nothing was ever seen (as with Pigeonhole's sieve-test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_digest.h"
#include "sv_int.h"

#define DEFAULT_PERIOD (14ULL * 86400)  /* Pigeonhole's sieve_duplicate_default_period */
#define MAX_PERIOD (90ULL * 86400)
#define MAX_ID 4096

/* key_part - append s to the key as it is when it is short and holds no
 * \001 (the separator) or \002; else "\002sha256:" and the hex SHA-256 of
 * all of it, so that two different long ids never share a key (a cut-off
 * prefix would make them duplicates), no handle can fake the separator and
 * the key stays a C string (no NUL) */
static int key_part(struct hm_buf *key, const char *s, size_t len)
{
	if (len <= MAX_ID && !memchr(s, 0, len) && !memchr(s, '\001', len) &&
	    !memchr(s, '\002', len))
		return hm_buf_append(key, s, len);
	uint8_t d[HM_SHA256_SIZE];
	hm_sha256(s, len, NULL, 0, d);
	int rc = hm_buf_puts(key, "\002sha256:");
	for (size_t i = 0; i < sizeof d && rc == 0; i++)
		rc = hm_buf_printf(key, "%02x", d[i]);
	return rc;
}

static int exec_duplicate(struct sv_run *r, struct sv_node *n)
{
	const struct sv_opts *o = &n->o;
	size_t len = 0;
	char *id = NULL;
	if (sv_tagarg(n, TG_DUP_UNIQUEID)) {
		id = sv_expand(r, n, &sv_tagarg(n, TG_DUP_UNIQUEID)->v[0], &len);
		if (!id)
			return -1;
	} else {
		char *hname = NULL;
		if (sv_tagarg(n, TG_DUP_HEADER)) {
			hname = sv_expand(r, n, &sv_tagarg(n, TG_DUP_HEADER)->v[0], &len);
			if (!hname)
				return -1;
		}
		const char *v = sv_msg_header1(&r->msg, hname ? hname : "message-id", &len);
		free(hname);
		if (!v || len == 0)
			return 0;      /* no id: never a duplicate */
		id = sv_strndup(v, len);
		if (!id)
			return sv_rt_error(r, n, "out of memory");
	}
	char *handle = NULL;
	size_t hl = 0;
	if (sv_tagarg(n, TG_DUP_HANDLE)) {
		handle = sv_expand(r, n, &sv_tagarg(n, TG_DUP_HANDLE)->v[0], &hl);
		if (!handle) {
			free(id);
			return -1;
		}
	}
	/* key: "h:" handle \001 id, or "d" \001 id for the default handle */
	struct hm_buf key;
	hm_buf_init(&key, 2 * MAX_ID + 8);
	int bad = 0;
	if (handle) {
		bad |= hm_buf_puts(&key, "h:");
		bad |= key_part(&key, handle, hl);
	} else {
		bad |= hm_buf_puts(&key, "d");
	}
	bad |= hm_buf_putc(&key, '\001');
	bad |= key_part(&key, id, len);
	free(handle);
	free(id);
	if (bad) {
		hm_buf_free(&key);
		return sv_rt_error(r, n, "out of memory");
	}
	const struct sv_arg *sa = sv_tagarg(n, TG_DUP_SECONDS);
	uint64_t secs = sv_has(o->tags, TG_DUP_SECONDS) ? sa->num : DEFAULT_PERIOD;
	if (secs > MAX_PERIOD)
		secs = MAX_PERIOD;
	int seen = 0;
	if (r->cb->duplicate_check)
		seen = r->cb->duplicate_check(r->cb->ctx, key.data ? key.data : "", key.len);
	if (seen < 0)
		seen = 0;
	/* remember for the caller; with :last the period restarts on each hit */
	if (!seen || sv_has(o->tags, TG_DUP_LAST)) {
		void *nv = realloc(r->res->dups, (r->res->ndups + 1) * sizeof *r->res->dups);
		char *k = nv ? malloc(key.len + 1) : NULL;
		if (nv)
			r->res->dups = nv;
		if (!k) {
			hm_buf_free(&key);
			return sv_rt_error(r, n, "out of memory");
		}
		memcpy(k, key.data ? key.data : "", key.len);
		k[key.len] = 0;
		r->res->dups[r->res->ndups].id = k;
		r->res->dups[r->res->ndups].seconds = secs;
		r->res->dups[r->res->ndups].script = r->script;
		r->res->ndups++;
	}
	hm_buf_free(&key);
	return seen ? 1 : 0;
}

static const enum sv_tag duplicate_tags[] = {
	TG_DUP_HANDLE, TG_DUP_HEADER, TG_DUP_UNIQUEID, TG_DUP_SECONDS, TG_DUP_LAST,
	TG_COUNT_ALL
};

const struct sv_def sv_def_duplicate = {
	.name = "duplicate", .ext = EXT_DUPLICATE, .is_test = true, .tags = duplicate_tags,
	.pos = "", .exec = exec_duplicate,
};
