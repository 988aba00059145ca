/* test_msgin.c — unit tests for lib/hm_msgin: CRLF->LF across read
 * boundaries (a CR at the end of one read() and its LF in the next), bare CR
 * and NUL kept, leading "From " dropped, missing final newline kept, header
 * split at the empty line, oversized header streamed on as body, LF counts. */
#define _GNU_SOURCE 1  /* nftw in hm_testutil.h */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hm_msgin.h"
#include "hm_testutil.h"

struct result {
	char *hdr; size_t hlen;
	char *all; size_t alen;
	unsigned long long lf;
	int from_dropped;
};

/* run - feed in[0..n) through a pipe in chunks of `chunk` bytes (random when 0) */
static struct result run(const char *in, size_t n, size_t chunk, size_t max_header)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		unsigned seed = 99;
		for (size_t o = 0; o < n;) {
			size_t c = chunk ? chunk : 1 + (size_t)rand_r(&seed) % 7;
			if (c > n - o) c = n - o;
			if (write(p[1], in + o, c) != (ssize_t)c) _exit(1);
			o += c;
		}
		_exit(0);
	}
	close(p[1]);
	struct hm_msgin m;
	struct result r = {0};
	hm_msgin_init(&m, p[0], max_header);
	assert_int_equal(hm_msgin_read_header(&m), 0);
	r.hlen = m.header_len;
	r.hdr = malloc(r.hlen + 1);
	memcpy(r.hdr, m.header, r.hlen);
	r.all = malloc(n + r.hlen + 1);
	memcpy(r.all, m.header, r.hlen);
	r.alen = r.hlen;
	char buf[5];
	ssize_t k;
	while ((k = hm_msgin_read(&m, buf, sizeof buf)) > 0) {
		memcpy(r.all + r.alen, buf, (size_t)k);
		r.alen += (size_t)k;
	}
	assert_int_equal(k, 0);
	r.lf = m.lf_count;
	r.from_dropped = m.from_dropped;
	assert_int_equal(m.bytes, r.alen);
	hm_msgin_free(&m);
	close(p[0]);
	waitpid(pid, NULL, 0);
	return r;
}

static void crlf_everywhere(void **state)
{
	const char in[] = "From: a\r\nSubject: x\r\n\r\nline1\r\nbare\rcr\r\n\r\nend\r";
	const char want[] = "From: a\nSubject: x\n\nline1\nbare\rcr\n\nend\r";
	for (size_t chunk = 0; chunk < 4; chunk++) {
		struct result r = run(in, sizeof in - 1, chunk, 0);
		assert_int_equal(r.alen, sizeof want - 1);
		assert_memory_equal(r.all, want, r.alen);
		assert_int_equal(r.hlen, strlen("From: a\nSubject: x\n\n"));
		assert_int_equal(r.lf, 6);
		free(r.hdr); free(r.all);
	}
}

static void from_line_nul_no_final_newline(void **state)
{
	const char in[] = "From sender@x Sat Nov 28 00:00:00 2026\nTo: b\n\nbody\0with nul\nno newline";
	const char want[] = "To: b\n\nbody\0with nul\nno newline";
	struct result r = run(in, sizeof in - 1, 0, 0);
	assert_true(r.from_dropped);
	assert_int_equal(r.alen, sizeof want - 1);
	assert_memory_equal(r.all, want, r.alen);
	free(r.hdr); free(r.all);
	/* "From:" header is not an mbox line */
	const char in2[] = "From: x\n\nb";
	r = run(in2, sizeof in2 - 1, 1, 0);
	assert_false(r.from_dropped);
	assert_memory_equal(r.all, in2, sizeof in2 - 1);
	free(r.hdr); free(r.all);
}

static void header_edge_cases(void **state)
{
	/* no body at all */
	struct result r = run("A: b\nC: d", 9, 0, 0);
	assert_int_equal(r.hlen, 9);
	assert_int_equal(r.alen, 9);
	free(r.hdr); free(r.all);
	/* empty header */
	r = run("\nbody\n", 6, 0, 0);
	assert_int_equal(r.hlen, 1);
	assert_int_equal(r.alen, 6);
	free(r.hdr); free(r.all);
	/* empty input */
	r = run("", 0, 0, 0);
	assert_int_equal(r.hlen, 0);
	assert_int_equal(r.alen, 0);
	free(r.hdr); free(r.all);
}

static void oversized_header_streams_on(void **state)
{
	size_t n = 300000;
	char *in = malloc(n);
	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		in[i] = (i % 50 == 49) ? '\n' : 'x';
	/* a field name at the start of a byte buffer (no NUL: it is not a string) */
	hm_test_put_bytes(in, "X-Big: ", 7);
	struct result r = run(in, n, 4096, 1000);
	assert_true(r.hlen <= 1000);
	assert_int_equal(r.hlen % 50, 0);     /* cut after a complete line */
	assert_int_equal(r.alen, n);
	assert_memory_equal(r.all, in, n);
	free(r.hdr); free(r.all); free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crlf_everywhere),
		cmocka_unit_test(from_line_nul_no_final_newline),
		cmocka_unit_test(header_edge_cases),
		cmocka_unit_test(oversized_header_streams_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
