/* fuzz_users.c — libFuzzer harness for lib/hm_users: the virtual users file
 * (/etc/homemail/users) read by the Dovecot auth module and homemail-user,
 * and the password-hash classifier.
 *
 * Input: a users file.  Checks: parsing never fails on bad lines; every
 * account served has a valid address, uid/gid != 0 and an absolute home;
 * find() returns each account under its own address; serialize → parse is a
 * fixed point (same accounts, same malformed count); classifying each hash
 * never crashes (no crypt is run: verification cost is not fuzzed).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hm_users.h"

static void warn(void *ctx, const char *path, unsigned int line, const char *msg)
{
	size_t *n = ctx;

	if (!msg || strchr(msg, '\n'))
		abort();
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_users *db = NULL, *db2 = NULL;
	size_t warns = 0, warns2 = 0, len;
	char *copy, *text;

	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (hm_users_parse(copy, size, "fuzz", warn, &warns, &db) < 0) {
		free(copy);
		return 0;
	}
	if (warns != hm_users_malformed(db))
		abort();
	for (size_t i = 0; i < hm_users_count(db); i++) {
		const struct hm_user *u = hm_users_at(db, i);
		char scheme[64];
		struct hm_pw_info info;
		const char *rest;

		if (!u || u->uid == 0 || u->gid == 0 || !u->home || u->home[0] != '/')
			abort();
		if (hm_users_find(db, u->address) == NULL)
			abort();
		rest = hm_pw_split(u->hash, scheme, sizeof scheme);
		if (rest)
			(void)hm_pw_identify(scheme, rest, &info);
	}
	text = hm_users_serialize(db, &len);
	if (text) {
		if (hm_users_parse(text, len, "fuzz2", warn, &warns2, &db2) == 0) {
			if (hm_users_count(db2) != hm_users_count(db) || warns2 != warns)
				abort();
			for (size_t i = 0; i < hm_users_count(db); i++)
				if (strcmp(hm_users_at(db, i)->address, hm_users_at(db2, i)->address) != 0)
					abort();
			hm_users_free(&db2);
		}
		free(text);
	}
	hm_users_free(&db);
	if (db)
		abort();
	free(copy);
	return 0;
}
