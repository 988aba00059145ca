/* test_vdomains.c — unit tests for the homemail database of issue 16:
 * lib/hm_domains (domains table), lib/hm_aliases (aliases table),
 * lib/hm_route.c (the resolver every piece shares), lib/hm_strmap and the
 * users file's home claims.
 * Guards against: a hostile line (NUL, CR, quotes, 8-bit, thousands of
 * targets, uid 0, another account's home) hiding the good ones or being
 * served; a loop that is delivered instead of bounced; a remote target
 * where the domain does not allow one; plus-addressing or a catch-all that
 * wins over a real account; a bound (depth, leaves) that is not one. */
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authdb_core.h"
#include "hm_aliases.h"
#include "hm_domains.h"
#include "hm_strmap.h"
#include "hm_users.h"

#define H "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"

struct warns {
	unsigned int n;
	unsigned int lines[64];
	char msg[64][128];
};

static void collect(void *ctx, const char *path, unsigned int line, const char *msg)
{
	struct warns *w = ctx;
	if (w->n < 64) {
		w->lines[w->n] = line;
		snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", msg);
	}
	w->n++;
}

/* ---- users: home claims ---------------------------------------------- */

static void users_home_claims(void **state)
{
	const char data[] =
		"ana@v.bo:" H ":5000:5000:/var/vmail/v.bo/ana::\n"          /* 1 ok */
		"bob@v.bo:" H ":5000:5000:/var/vmail/v.bo/ana::\n"          /* 2 same home */
		"cid@v.bo:" H ":5000:5000:/var/vmail/v.bo/ana/sub::\n"      /* 3 inside ana's */
		"dan@v.bo:" H ":5000:5000:/var/vmail/v.bo::\n"              /* 4 contains ana's */
		"eve@v.bo:" H ":0:5000:/var/vmail/v.bo/eve::\n"             /* 5 uid 0 */
		"fay@v.bo:" H ":5000:5000:/var/vmail/v.bo/ana-x::\n"        /* 6 ok: a sibling */
		"gus@v.bo:" H ":5000:5000:/var/vmail/v.bo/ana.x::closed\n"  /* 7 ok, closed */
		"hal@v.bo:" H ":5000:5000:/var/vmail/v.bo/fay/../ana::\n";  /* 8 .. */
	struct warns w = { 0 };
	struct hm_users *db;

	assert_int_equal(hm_users_parse(data, sizeof(data) - 1, "u", collect, &w, &db), 0);
	assert_int_equal(hm_users_count(db), 3);
	assert_non_null(hm_users_find(db, "ana@v.bo"));
	assert_non_null(hm_users_find(db, "FAY@V.BO"));
	assert_int_equal(hm_users_find(db, "gus@v.bo")->state, HM_USER_CLOSED);
	assert_int_equal(w.n, 5);
	unsigned int want[] = { 2, 3, 4, 5, 8 };
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(w.lines[i], want[i]);
	assert_non_null(strstr(w.msg[0], "home already belongs"));
	assert_non_null(strstr(w.msg[1], "inside another account's home"));
	assert_non_null(strstr(w.msg[2], "contains another account's home"));
	assert_non_null(strstr(w.msg[3], "uid"));
	/* edits keep the rule */
	struct hm_user u = { .address = "ivy@v.bo", .hash = H, .uid = 5001, .gid = 5001,
			     .home = "/var/vmail/v.bo/ana/inbox", .quota = "" };
	assert_int_equal(hm_users_add(db, &u), -1);
	u.home = "/var/vmail/v.bo/ivy";
	assert_int_equal(hm_users_add(db, &u), 0);
	assert_int_equal(hm_users_rename(db, "ivy@v.bo", "ivo@v.bo", "/var/vmail/v.bo/ana"), -1);
	assert_int_equal(hm_users_rename(db, "ivy@v.bo", "ana@v.bo", "/var/vmail/v.bo/x"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(hm_users_rename(db, "ivy@v.bo", "ivo@v.bo", "/var/vmail/v.bo/ivo"), 0);
	assert_null(hm_users_find(db, "ivy@v.bo"));
	assert_string_equal(hm_users_find(db, "ivo@v.bo")->home, "/var/vmail/v.bo/ivo");
	assert_int_equal(hm_users_set_quota(db, "ivo@v.bo", "2M"), 0);
	assert_int_equal(hm_users_find(db, "ivo@v.bo")->quota_bytes, 2u << 20);
	assert_int_equal(hm_users_set_quota(db, "ivo@v.bo", "2Q"), -1);
	hm_users_free(&db);
	/* a home deeper than HM_USERS_MAX_HOME_DEPTH components is not a home */
	char deep[2 * (HM_USERS_MAX_HOME_DEPTH + 1) + 1];
	for (int i = 0; i <= HM_USERS_MAX_HOME_DEPTH; i++)
		memcpy(deep + 2 * i, "/a", 2);
	deep[sizeof(deep) - 1] = '\0';
	assert_false(hm_users_valid_home(deep));
	deep[2 * HM_USERS_MAX_HOME_DEPTH] = '\0';
	assert_true(hm_users_valid_home(deep));
}

/* 10,000 accounts parse in linear time and are all found (the index) */
static void users_many(void **state)
{
	size_t n = 10000, cap = n * 160, len = 0;
	char *data = malloc(cap);
	struct hm_users *db;

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(data + len, cap - len,
					"u%zu@d%zu.bo:*:5000:5000:/var/vmail/d%zu.bo/u%zu::\n",
					i, i % 7, i % 7, i);
	assert_int_equal(hm_users_parse(data, len, "u", NULL, NULL, &db), 0);
	assert_int_equal(hm_users_count(db), n);
	assert_non_null(hm_users_find(db, "u9999@d3.bo"));
	assert_null(hm_users_find(db, "u9999@d4.bo"));
	hm_users_free(&db);
	free(data);
}

/* ---- domains ------------------------------------------------------------ */

static void domains_parse(void **state)
{
	const char data[] =
		"# local domains\n"
		"home.com.bo\n"                                          /* 2 */
		"Ventas.COM.bo  system=no remote_aliases=yes quota=1G dkim_selector=s1\r\n"
		"  indented.bo\n"                                        /* 4 blank first */
		"bad_domain.bo\n"                                        /* 5 */
		"home.com.bo system=no\n"                                /* 6 duplicate */
		"x.bo system=maybe\n"                                    /* 7 */
		"y.bo quota=lots\n"                                      /* 8 */
		"z.bo novalue\n"                                         /* 9 */
		"q.bo note=\"quoted\"\n"                                 /* 10 */
		"n\0ul.bo\n"                                             /* 11 NUL */
		"r.bo\rx\n"                                              /* 12 CR inside */
		"\xc3\xa9t\xc3\xa9.bo\n"                                 /* 13 8-bit */
		"ok.bo\n";                                               /* 14 */
	struct warns w = { 0 };
	struct hm_domains *db;
	const struct hm_domain *d;

	assert_int_equal(hm_domains_parse(data, sizeof(data) - 1, "d", collect, &w, &db), 0);
	assert_int_equal(hm_domains_count(db), 3);
	d = hm_domains_find(db, "HOME.com.bo");
	assert_non_null(d);
	assert_true(d->system);
	assert_false(d->remote_aliases);
	d = hm_domains_find(db, "ventas.com.bo");
	assert_non_null(d);
	assert_false(d->system);
	assert_true(d->remote_aliases);
	assert_int_equal(d->quota_bytes, 1u << 30);
	assert_non_null(strstr(d->options, "dkim_selector=s1"));
	assert_non_null(hm_domains_find(db, "ok.bo"));
	unsigned int want[] = { 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 };
	assert_int_equal(w.n, 10);
	for (unsigned int i = 0; i < 10; i++)
		assert_int_equal(w.lines[i], want[i]);
	assert_int_equal(hm_domains_malformed(db), 10);
	/* rewrite keeps every line verbatim */
	size_t len;
	char *img = hm_domains_serialize(db, &len);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(img, data, len);
	free(img);
	/* edits */
	assert_int_equal(hm_domains_add(db, "New.bo", "system=no"), 0);
	assert_int_equal(hm_domains_add(db, "new.bo", ""), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(hm_domains_add(db, "bad bo", ""), -1);
	assert_int_equal(hm_domains_add(db, "b.bo", "system=perhaps"), -1);
	assert_int_equal(hm_domains_add(db, "c.bo", "a=b\nd.bo"), -1);
	assert_false(hm_domains_find(db, "new.bo")->system);
	assert_int_equal(hm_domains_remove(db, "home.com.bo"), 0);
	assert_null(hm_domains_find(db, "home.com.bo"));
	assert_int_equal(hm_domains_remove(db, "home.com.bo"), -1);
	hm_domains_free(&db);
}

/* ---- aliases ------------------------------------------------------------ */

static void aliases_parse_hostile(void **state)
{
	/* a line of 1,001 targets is refused; 1,000 is the bound */
	size_t cap = 1100 * 24 + 4096, len = 0;
	char *data = malloc(cap);
	struct warns w = { 0 };
	struct hm_aliases *db;

	assert_non_null(data);
#define ADD(s) do { memcpy(data + len, s, sizeof(s) - 1); len += sizeof(s) - 1; } while (0)
	ADD("# aliases\n");
	ADD("sales@v.bo: ana@v.bo, bob@h.bo\n");                      /* 2 ok */
	ADD("@v.bo: ana@v.bo\n");                                     /* 3 catch-all */
	ADD("no-colon@v.bo ana@v.bo\n");                              /* 4 */
	ADD("a@v.bo: a@v.bo\n");                                      /* 5 self */
	ADD("b@v.bo: \"x y\"@v.bo\n");                                /* 6 quotes */
	ADD("c@v.bo: x@v.bo\0, y@v.bo\n");                            /* 7 NUL */
	ADD("d@v.bo: x@v.bo\r, y@v.bo\n");                            /* 8 CR inside */
	ADD("e@v.bo: \xc3\xa9@v.bo\n");                               /* 9 8-bit */
	ADD("f@v.bo: x@v.bo,, y@v.bo\n");                             /* 10 empty */
	ADD("sales@v.bo: other@v.bo\n");                              /* 11 duplicate */
	ADD("g@v.bo:\n");                                             /* 12 no target */
	ADD("h@v.bo: x@v.bo, x@v.bo, X@V.BO\n");                      /* 13 ok, once */
	ADD("big@v.bo: t0@v.bo");                                     /* 14: 1,001 */
	for (int i = 1; i <= 1000; i++)
		len += (size_t)snprintf(data + len, cap - len, ", t%d@v.bo", i);
	ADD("\nmax@v.bo: t0@v.bo");                                   /* 15: 1,000 */
	for (int i = 1; i < 1000; i++)
		len += (size_t)snprintf(data + len, cap - len, ", t%d@v.bo", i);
	ADD("\nlast@v.bo: z@v.bo\r\n");                               /* 16 ok */
#undef ADD
	assert_int_equal(hm_aliases_parse(data, len, "a", collect, &w, &db), 0);
	unsigned int want[] = { 4, 5, 6, 7, 8, 9, 10, 11, 12, 14 };
	assert_int_equal(w.n, 10);
	for (unsigned int i = 0; i < 10; i++)
		assert_int_equal(w.lines[i], want[i]);
	assert_non_null(strstr(w.msg[9], "too many targets"));
	assert_int_equal(hm_aliases_count(db), 5);
	const struct hm_alias *a = hm_aliases_find(db, "SALES@v.bo");
	assert_non_null(a);
	assert_int_equal(a->ntargets, 2);
	assert_string_equal(a->targets[1], "bob@h.bo");
	assert_non_null(hm_aliases_find(db, "@v.bo"));
	assert_int_equal(hm_aliases_find(db, "h@v.bo")->ntargets, 1);
	assert_int_equal(hm_aliases_find(db, "max@v.bo")->ntargets, 1000);
	assert_null(hm_aliases_find(db, "big@v.bo"));
	/* serialize is verbatim, so parse(serialize) is a fixed point */
	size_t l2;
	char *img = hm_aliases_serialize(db, &l2);
	assert_int_equal(l2, len + 1 - (data[len - 1] == '\n'));
	free(img);
	/* edits */
	const char *t[] = { "x@h.bo", "bob@h.bo" };
	assert_int_equal(hm_aliases_add(db, "sales@v.bo", t, 2), 0);
	assert_int_equal(hm_aliases_find(db, "sales@v.bo")->ntargets, 3);
	assert_int_equal(hm_aliases_remove(db, "sales@v.bo", "ANA@v.bo"), 0);
	assert_int_equal(hm_aliases_find(db, "sales@v.bo")->ntargets, 2);
	assert_int_equal(hm_aliases_remove(db, "sales@v.bo", "nobody@v.bo"), -1);
	assert_int_equal(hm_aliases_rename_target(db, "bob@h.bo", "rob@h.bo"), 1);
	assert_string_equal(hm_aliases_find(db, "sales@v.bo")->targets[1], "rob@h.bo");
	const char *bad[] = { "a\"b@v.bo" };
	assert_int_equal(hm_aliases_add(db, "n@v.bo", bad, 1), -1);
	assert_int_equal(hm_aliases_remove(db, "sales@v.bo", NULL), 0);
	assert_null(hm_aliases_find(db, "sales@v.bo"));
	hm_aliases_free(&db);
	free(data);
}

/* ---- the resolver ------------------------------------------------------- */

struct world {
	const char *accounts[16];
};

static int w_account(void *ctx, const char *address)
{
	const struct world *w = ctx;
	if (strcmp(address, "fail@v.bo") == 0)
		return -1;
	for (int i = 0; w->accounts[i]; i++)
		if (strcmp(w->accounts[i], address) == 0)
			return 1;
	return 0;
}

static int w_local(void *ctx, const char *domain)
{
	(void)ctx;
	return strcmp(domain, "v.bo") == 0 || strcmp(domain, "h.bo") == 0;
}

static struct hm_aliases *aliases_of(const char *text)
{
	struct hm_aliases *db;
	struct warns w = { 0 };
	assert_int_equal(hm_aliases_parse(text, strlen(text), "a", collect, &w, &db), 0);
	assert_int_equal(w.n, 0);
	return db;
}

static void resolve(struct hm_aliases *al, struct hm_domains *dom, const char *addr,
		    struct hm_route *r)
{
	static struct world w = { { "ana@v.bo", "bob@h.bo", "ivy@v.bo", "a+b@v.bo", NULL } };
	struct hm_route_opts o = { .aliases = al, .domains = dom, .delimiters = "+",
				   .is_account = w_account, .is_local = w_local, .ctx = &w };
	assert_int_equal(hm_route_resolve(&o, addr, r), 0);
}

static void route_rules(void **state)
{
	struct hm_domains *dom;
	const char dt[] = "v.bo\nh.bo remote_aliases=yes\n";
	assert_int_equal(hm_domains_parse(dt, sizeof(dt) - 1, "d", NULL, NULL, &dom), 0);
	struct hm_aliases *al = aliases_of(
		"sales@v.bo: ana@v.bo\n"
		"team@h.bo: bob@h.bo, sales@v.bo, ana@v.bo, nosuch@h.bo\n"
		"all@h.bo: team@h.bo, sales@v.bo, out@example.org\n"
		"ext@v.bo: out@example.org\n"
		"@v.bo: ivy@v.bo\n"
		"ana+x@v.bo: bob@h.bo\n"
		"l1@v.bo: l2@v.bo\nl2@v.bo: l3@h.bo\nl3@h.bo: ok@h.bo, l1@v.bo\n"
		"ca@h.bo: zz@v.bo\n"
		"cf@h.bo: fail@v.bo\n");
	struct hm_route r;

	resolve(al, dom, "ana@v.bo", &r);                 /* an account */
	assert_int_equal(r.kind, HM_ROUTE_ACCOUNT);
	assert_string_equal(r.account, "ana@v.bo");
	assert_string_equal(r.detail, "");
	resolve(al, dom, "ana+work@v.bo", &r);            /* plus-address */
	assert_int_equal(r.kind, HM_ROUTE_ACCOUNT);
	assert_string_equal(r.account, "ana@v.bo");
	assert_string_equal(r.detail, "work");
	resolve(al, dom, "ana+x@v.bo", &r);               /* an exact alias wins */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	hm_route_free(&r);
	resolve(al, dom, "a+b@v.bo", &r);                 /* an exact account wins */
	assert_int_equal(r.kind, HM_ROUTE_ACCOUNT);
	assert_string_equal(r.account, "a+b@v.bo");
	resolve(al, dom, "sales+q@v.bo", &r);             /* plus on an alias */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_int_equal(r.ntargets, 1);
	hm_route_free(&r);
	resolve(al, dom, "team@h.bo", &r);                /* several, dedup, unknown leaf */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_int_equal(r.ntargets, 3);
	assert_string_equal(r.targets[0], "bob@h.bo");
	assert_string_equal(r.targets[1], "ana@v.bo");
	assert_string_equal(r.targets[2], "nosuch@h.bo");
	hm_route_free(&r);
	resolve(al, dom, "all@h.bo", &r);                 /* nested + remote allowed in h.bo */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_int_equal(r.ntargets, 4);
	assert_string_equal(r.targets[3], "out@example.org");
	hm_route_free(&r);
	resolve(al, dom, "ext@v.bo", &r);                 /* remote refused in v.bo */
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_non_null(strstr(r.why, "remote target out@example.org not allowed"));
	resolve(al, dom, "whoever@v.bo", &r);             /* catch-all */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_string_equal(r.targets[0], "ivy@v.bo");
	hm_route_free(&r);
	resolve(al, dom, "whoever@h.bo", &r);             /* no catch-all there */
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);
	resolve(al, dom, "ca@h.bo", &r);                  /* through the catch-all */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_string_equal(r.targets[0], "ivy@v.bo");
	hm_route_free(&r);
	resolve(al, dom, "l1@v.bo", &r);                  /* a loop, with its path */
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_string_equal(r.why, "alias loop: l1@v.bo -> l2@v.bo -> l3@h.bo -> l1@v.bo");
	assert_int_equal(r.ntargets, 0);
	resolve(al, dom, "l2@v.bo", &r);
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_string_equal(r.why, "alias loop: l2@v.bo -> l3@h.bo -> l1@v.bo -> l2@v.bo");
	struct world w = { { NULL } };
	struct hm_route_opts o = { .aliases = al, .domains = dom, .delimiters = "+",
				   .is_account = w_account, .is_local = w_local, .ctx = &w };
	assert_int_equal(hm_route_resolve(&o, "cf@h.bo", &r), -1); /* lookup failed */
	hm_aliases_free(&al);
	hm_domains_free(&dom);
}

static void route_bounds(void **state)
{
	/* a chain 20 deep, and a tree of 40 x 40 = 1,600 leaves */
	size_t cap = 200000, len = 0;
	char *t = malloc(cap);
	struct hm_route r;

	assert_non_null(t);
	for (int i = 0; i < 20; i++)
		len += (size_t)snprintf(t + len, cap - len, "c%d@v.bo: c%d@v.bo\n", i, i + 1);
	len += (size_t)snprintf(t + len, cap - len, "c20@v.bo: ana@v.bo\n");
	len += (size_t)snprintf(t + len, cap - len, "tree@v.bo: n0@v.bo");
	for (int i = 1; i < 40; i++)
		len += (size_t)snprintf(t + len, cap - len, ", n%d@v.bo", i);
	for (int i = 0; i < 40; i++) {
		len += (size_t)snprintf(t + len, cap - len, "\nn%d@v.bo: l%d_0@v.bo", i, i);
		for (int k = 1; k < 40; k++)
			len += (size_t)snprintf(t + len, cap - len, ", l%d_%d@v.bo", i, k);
	}
	len += (size_t)snprintf(t + len, cap - len, "\nsmall@v.bo: n0@v.bo, n1@v.bo\n");
	/* 120 leaves of 61 bytes: under the count bound, over the byte bound */
	len += (size_t)snprintf(t + len, cap - len, "long@v.bo: ");
	for (int i = 0; i < 120; i++)
		len += (size_t)snprintf(t + len, cap - len, "%sx%054d@v.bo", i ? ", " : "", i);
	(void)snprintf(t + len, cap - len, "\n");
	struct hm_aliases *al = aliases_of(t);
	resolve(al, NULL, "c0@v.bo", &r);
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_non_null(strstr(r.why, "nested more than 16 deep"));
	resolve(al, NULL, "c10@v.bo", &r);                /* 11 deep: fine */
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	hm_route_free(&r);
	resolve(al, NULL, "tree@v.bo", &r);     /* 1,600 short leaves: the byte bound */
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_non_null(strstr(r.why, "bytes of addresses"));
	assert_int_equal(r.ntargets, 0);
	resolve(al, NULL, "long@v.bo", &r);
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_non_null(strstr(r.why, "bytes of addresses"));
	resolve(al, NULL, "small@v.bo", &r);
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_int_equal(r.ntargets, 80);
	hm_route_free(&r);
	hm_aliases_free(&al);
	free(t);
}

static void strmap_basics(void **state)
{
	struct hm_strmap m;
	char keys[3000][16];
	void *old = NULL;

	hm_strmap_init(&m);
	assert_null(hm_strmap_get_str(&m, "x"));
	for (int i = 0; i < 3000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		assert_int_equal(hm_strmap_put_str(&m, keys[i], keys[i], NULL), 1);
	}
	assert_int_equal(hm_strmap_put_str(&m, "k7", keys[1], &old), 0);
	assert_ptr_equal(old, keys[7]);
	for (int i = 0; i < 3000; i++)
		assert_ptr_equal(hm_strmap_get_str(&m, keys[i]), keys[i]);
	assert_null(hm_strmap_get_str(&m, "k3000"));
	/* prefixes: (pointer, length) keys */
	assert_ptr_equal(hm_strmap_get(&m, "k12345", 3, hm_strmap_hash(HM_STRMAP_SEED, "k12", 3)),
			 keys[12]);
	hm_strmap_free(&m);
}

/* the module's core (dovecot-plugin/authdb_lookup.c) over real files:
 * the tables found next to users=, reloaded when they change, closed
 * accounts unknown to Exim */
static void put(const char *dir, const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void authdb_route_core(void **state)
{
	char dir[] = "/tmp/test_vdomains.XXXXXX", args[512], err[256];
	struct hm_authdb_set set;
	struct hm_authdb db;
	struct hm_authdb_account a;
	struct hm_route r;

	assert_non_null(mkdtemp(dir));
	put(dir, "users", "ana@v.bo:" H ":5000:5000:/var/vmail/v.bo/ana::\n"
			  "cy@v.bo:" H ":5001:5001:/var/vmail/v.bo/cy::closed\n");
	put(dir, "domains", "v.bo\nh.bo remote_aliases=yes\n");
	put(dir, "aliases", "sales@v.bo: ana@v.bo, cy@v.bo\n@v.bo: ana@v.bo\n"
			    "out@v.bo: x@example.org\nfwd@h.bo: x@example.org\n");
	snprintf(args, sizeof(args), "users=%s/users system=no lockout=no", dir);
	hm_authdb_set_default(&set);
	assert_int_equal(hm_authdb_parse_args(args, &set, err, sizeof(err)), 0);
	hm_authdb_init(&db, &set, NULL, NULL);

	assert_int_equal(hm_authdb_route(&db, "ANA+news@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_ACCOUNT);
	assert_string_equal(a.name, "ana@v.bo");
	assert_int_equal(a.uid, 5000);
	assert_string_equal(r.detail, "news");
	hm_authdb_account_free(&a);
	hm_route_free(&r);
	/* a closed account is unknown to Exim, and so is its plus-address;
	 * the catch-all does not take its mail either */
	assert_int_equal(hm_authdb_route(&db, "cy@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);     /* not @v.bo's either */
	assert_int_equal(hm_authdb_route(&db, "cy+x@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);
	assert_int_equal(hm_authdb_route(&db, "zed@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);       /* the catch-all */
	hm_route_free(&r);
	assert_int_equal(hm_authdb_route(&db, "sales@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);       /* cy is a leaf: bounced alone */
	assert_int_equal(r.ntargets, 2);
	hm_route_free(&r);
	assert_int_equal(hm_authdb_route(&db, "out@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_FAIL);
	assert_int_equal(hm_authdb_route(&db, "fwd@h.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_ALIAS);
	assert_string_equal(r.targets[0], "x@example.org");
	hm_route_free(&r);
	assert_int_equal(hm_authdb_route(&db, "nobody@h.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);
	assert_int_equal(hm_authdb_route(&db, "root", &r, &a), 0);   /* system=no */
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);
	assert_int_equal(hm_authdb_route(&db, "bad address@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);
	/* the tables are re-read when they change: the catch-all goes away */
	put(dir, "aliases", "sales@v.bo: ana@v.bo\n# no catch-all now, and a longer file\n");
	assert_int_equal(hm_authdb_route(&db, "zed@v.bo", &r, &a), 0);
	assert_int_equal(r.kind, HM_ROUTE_UNKNOWN);
	/* the plain lookup (IMAP, doveadm) still sees the closed account */
	assert_int_equal(hm_authdb_lookup(&db, "cy@v.bo", &a), 1);
	assert_true(a.mail_refused);
	hm_authdb_account_free(&a);
	hm_authdb_deinit(&db);
	char p[256];
	for (const char *n = "users\0domains\0aliases\0"; *n; n += strlen(n) + 1) {
		snprintf(p, sizeof(p), "%s/%s", dir, n);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(users_home_claims),
		cmocka_unit_test(users_many),
		cmocka_unit_test(domains_parse),
		cmocka_unit_test(aliases_parse_hostile),
		cmocka_unit_test(route_rules),
		cmocka_unit_test(route_bounds),
		cmocka_unit_test(strmap_basics),
		cmocka_unit_test(authdb_route_core),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
