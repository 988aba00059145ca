/* sievebench.c — compile + run of one Sieve script, in process, many times.
 *
 * What for: the "compile and run of a 1,000-rule script" figure
 * without process start-up in it (bench/sieve/run prints it beside the
 * fresh-process figure, which homemail-sieve test gives).  Each iteration
 * is what a delivery does: sieve_compile (the file is read again),
 * sieve_execute against the message, free everything.
 * Relies on: the engine's public API (sieve.h), plus sv_int.h only to
 * report the bytes the compiled tree uses in its arena.
 *
 * Usage: sievebench [-n N] SCRIPT MESSAGE [-f SENDER] [-r RECIPIENT]
 * Output, one line:
 *   iterations=N compile_run_ms=MEDIAN compile_run_cpu_ms=MEDIAN
 *   compile_ms=MEDIAN run_ms=MEDIAN min_ms=MIN tree_bytes=B actions=A first="T"
 * (wall times are CLOCK_MONOTONIC, cpu is CLOCK_PROCESS_CPUTIME_ID)
 * Exit: 0, 1 compile error, 2 usage, 75 message unreadable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hm_util.h"
#include "sieve.h"
#include "sv_int.h"

#define MAX_ITER 100000
#define MAX_MESSAGE (64u * 1024 * 1024)

static double now_ms(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* read_message - the whole file, at most MAX_MESSAGE bytes; NULL + errno */
static char *read_message(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > MAX_MESSAGE) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t n = buf ? hm_read_full(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len_r = (size_t)n;
	return buf;
}

int main(int argc, char **argv)
{
	int n = 200;
	const char *from = "sender@example.com", *to = "recipient@example.com";
	const char *pos[2];
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-f") && i + 1 < argc)
			from = argv[++i];
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			to = argv[++i];
		else if (npos < 2 && argv[i][0] != '-')
			pos[npos++] = argv[i];
		else
			npos = 3;
	}
	if (npos != 2 || n < 1 || n > MAX_ITER) {
		fprintf(stderr, "usage: sievebench [-n N] SCRIPT MESSAGE [-f SENDER] [-r RECIPIENT]\n");
		return 2;
	}
	struct sieve_message m = { .env_from = from, .env_to = to, .now = time(NULL) };
	char *data = read_message(pos[1], &m.len);
	if (!data) {
		fprintf(stderr, "sievebench: %s: %s\n", pos[1], strerror(errno));
		return 75;
	}
	m.data = data;
	double *all = calloc((size_t)n, sizeof *all), *cpu = calloc((size_t)n, sizeof *cpu);
	double *comp = calloc((size_t)n, sizeof *comp), *run = calloc((size_t)n, sizeof *run);
	if (!all || !cpu || !comp || !run)
		return 75;
	size_t tree = 0, nact = 0;
	char first[256] = "";
	for (int i = -1; i < n; i++) {           /* i = -1: warm-up, not counted */
		double c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ms(CLOCK_MONOTONIC);
		char *err = NULL;
		struct sieve_script *s = sieve_compile(pos[0], NULL, &err);
		if (!s) {
			fprintf(stderr, "%s\n", err ? err : "out of memory");
			return 1;
		}
		double t1 = now_ms(CLOCK_MONOTONIC);
		struct sieve_result *r = sieve_execute(&s, 1, &m, NULL);
		if (!r)
			return 75;
		if (i == -1) {
			/* chunk bytes less what is still free in the newest */
			tree = s->arena.total - (size_t)(s->arena.end - s->arena.next);
			nact = r->nactions;
			if (r->nactions && r->actions[0].target)
				hm_strlcpy(first, r->actions[0].target, sizeof first);
		}
		sieve_result_free(&r);
		sieve_script_free(&s);
		double t2 = now_ms(CLOCK_MONOTONIC), c2 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
		if (i >= 0) {
			all[i] = t2 - t0;
			cpu[i] = c2 - c0;
			comp[i] = t1 - t0;
			run[i] = t2 - t1;
		}
	}
	double mn = all[0];
	for (int i = 1; i < n; i++)
		if (all[i] < mn)
			mn = all[i];
	char clean[300];
	hm_log_clean(clean, sizeof clean, first, strlen(first));
	printf("iterations=%d compile_run_ms=%.4f compile_run_cpu_ms=%.4f compile_ms=%.4f "
	       "run_ms=%.4f min_ms=%.4f tree_bytes=%zu actions=%zu first=\"%s\"\n",
	       n, median(all, n), median(cpu, n), median(comp, n), median(run, n), mn, tree,
	       nact, clean);
	free(all);
	free(cpu);
	free(comp);
	free(run);
	free(data);
	return 0;
}
