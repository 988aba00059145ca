/* test_digest.c — unit tests for lib/hm_digest: SHA-256 against the FIPS
 * 180-2 vectors (also split across the two input parts), HMAC-SHA-256
 * against RFC 4231 (the lockout's keyed slots), Base64 against RFC 4648 section 10, the too-small buffer, and
 * random bytes that are not all equal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hm_digest.h"

static void hex(const uint8_t *md, char out[65])
{
	for (int i = 0; i < HM_SHA256_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void sha256_vectors(void **state)
{
	uint8_t md[HM_SHA256_SIZE];
	char h[65];
	hm_sha256("abc", 3, NULL, 0, md);
	hex(md, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hm_sha256("", 0, NULL, 0, md);
	hex(md, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* a split input hashes as its concatenation */
	const char *s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	hm_sha256(s, 10, s + 10, strlen(s) - 10, md);
	hex(md, h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void hmac_vectors(void **state)
{
	uint8_t md[HM_SHA256_SIZE], key[20];
	char h[65];
	/* RFC 4231 4.3 (test case 2), the data split in two parts */
	hm_hmac_sha256("Jefe", 4, "what do ya want ", 16, "for nothing?", 12, md);
	hex(md, h);
	assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* RFC 4231 4.2 (test case 1) */
	memset(key, 0x0b, sizeof(key));
	hm_hmac_sha256(key, sizeof(key), "Hi There", 8, NULL, 0, md);
	hex(md, h);
	assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void base64_vectors(void **state)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	char b[16];
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		assert_int_equal(hm_base64_encode(b, sizeof b, in[i], strlen(in[i])), 0);
		assert_string_equal(b, out[i]);
	}
	/* exactly the size needed works, one byte less is refused untouched */
	char tight[HM_BASE64_SIZE(6)];
	assert_int_equal(hm_base64_encode(tight, sizeof tight, "foobar", 6), 0);
	assert_string_equal(tight, "Zm9vYmFy");
	memset(b, 'X', sizeof b);
	errno = 0;
	assert_int_equal(hm_base64_encode(b, HM_BASE64_SIZE(6) - 1, "foobar", 6), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(b[0], 'X');
}

static void random_bytes_vary(void **state)
{
	uint8_t a[32], b[32];
	assert_int_equal(hm_random_bytes(a, sizeof a), 0);
	assert_int_equal(hm_random_bytes(b, sizeof b), 0);
	assert_memory_not_equal(a, b, sizeof a);
	assert_int_equal(hm_random_bytes(a, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sha256_vectors),
		cmocka_unit_test(hmac_vectors),
		cmocka_unit_test(base64_vectors),
		cmocka_unit_test(random_bytes_vary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
