/* spawntime.c — time fresh processes the way Exim's pipe transport starts them.
 *
 * What for: the benchmarks compare programs that each run once per message
 * (homemail-deliver vs dovecot-lda, homemail-sieve vs sieve-test).  Timing
 * them from Python adds Python's own fork cost (about 2 ms per child on this
 * kind of machine, more than homemail-deliver's whole run), so the ratios
 * would mostly measure the harness.  This program forks and execs directly,
 * drops to the given uid/gid in the child (setgroups, setgid, setuid, as
 * Exim does), feeds stdin from a file, and runs the commands interleaved
 * (A B C A B C ...) so that load from elsewhere hits each alike.
 *
 * Usage: spawntime [-n RUNS] [-i STDIN_FILE] [-u UID] [-g GID] [-w] \
 *                  -- CMD1 ARG... [::: CMD2 ARG... ...]
 *   -w   warm-up: one untimed run of each command first
 * Output, one line per command, in order:
 *   cmd=K runs=N wall_ms=MEDIAN cpu_ms=MEDIAN minflt=MEAN failures=F
 * wall is fork to reaped exit; cpu is the child's user+system time.
 * A run whose exit status is not 0 counts as a failure (and is timed anyway).
 * Exit: 0, 64 usage, 71 fork/exec trouble.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 8
#define MAX_RUNS 100000

struct cmd {
	char **argv;
	double *wall, *cpu;
	long minflt;
	int failures;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* run_once - fork, drop privileges, exec; returns 0, or -1 on fork trouble */
static int run_once(struct cmd *c, int i, const char *input, long uid, long gid)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (input != NULL) {
			int fd = open(input, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || dup2(fd, 0) < 0)
				_exit(71);
		}
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null < 0 || dup2(null, 1) < 0)
			_exit(71);
		if (gid >= 0 && (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0))
			_exit(71);
		if (uid >= 0 && setuid((uid_t)uid) < 0)
			_exit(71);
		execv(c->argv[0], c->argv);
		_exit(71);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		c->failures++;
	if (i >= 0) {
		c->wall[i] = ms_between(&t0, &t1);
		c->cpu[i] = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
			    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
		c->minflt += ru.ru_minflt;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: spawntime [-n RUNS] [-i STDIN_FILE] [-u UID] [-g GID] [-w] "
		"-- CMD ARG... [::: CMD ARG...]\n");
	exit(64);
}

int main(int argc, char **argv)
{
	long runs = 50, uid = -1, gid = -1;
	const char *input = NULL;
	int warm = 0, opt;
	while ((opt = getopt(argc, argv, "n:i:u:g:w")) != -1) {
		char *end;
		switch (opt) {
		case 'n': runs = strtol(optarg, &end, 10); if (*end || runs < 1 || runs > MAX_RUNS) usage(); break;
		case 'i': input = optarg; break;
		case 'u': uid = strtol(optarg, &end, 10); if (*end || uid < 0) usage(); break;
		case 'g': gid = strtol(optarg, &end, 10); if (*end || gid < 0) usage(); break;
		case 'w': warm = 1; break;
		default: usage();
		}
	}
	struct cmd cmds[MAX_CMDS];
	int ncmds = 0;
	for (int i = optind; i < argc && ncmds < MAX_CMDS;) {
		cmds[ncmds].argv = &argv[i];
		while (i < argc && strcmp(argv[i], ":::") != 0)
			i++;
		if (i < argc)
			argv[i++] = NULL;    /* ends this command's argv */
		if (cmds[ncmds].argv[0] == NULL)
			usage();
		ncmds++;
	}
	if (ncmds == 0)
		usage();
	int rc = 0;
	for (int k = 0; k < ncmds; k++) {
		cmds[k].wall = calloc((size_t)runs, sizeof(double));
		cmds[k].cpu = calloc((size_t)runs, sizeof(double));
		cmds[k].minflt = 0;
		cmds[k].failures = 0;
		if (cmds[k].wall == NULL || cmds[k].cpu == NULL) {
			ncmds = k + 1;          /* free what was allocated so far */
			rc = 71;
			goto out;
		}
	}
	for (int k = 0; warm && k < ncmds; k++) {
		if (run_once(&cmds[k], -1, input, uid, gid) < 0) {
			perror("spawntime: fork");
			rc = 71;
			goto out;
		}
		cmds[k].failures = 0;
	}
	for (long i = 0; i < runs; i++)
		for (int k = 0; k < ncmds; k++)
			if (run_once(&cmds[k], (int)i, input, uid, gid) < 0) {
				perror("spawntime: fork");
				rc = 71;
				goto out;
			}
	for (int k = 0; k < ncmds; k++) {
		qsort(cmds[k].wall, (size_t)runs, sizeof(double), cmp_double);
		qsort(cmds[k].cpu, (size_t)runs, sizeof(double), cmp_double);
		printf("cmd=%d runs=%ld wall_ms=%.3f cpu_ms=%.3f minflt=%ld failures=%d\n", k, runs,
		       cmds[k].wall[runs / 2], cmds[k].cpu[runs / 2], cmds[k].minflt / runs,
		       cmds[k].failures);
	}
out:
	for (int k = 0; k < ncmds; k++) {
		free(cmds[k].wall);
		free(cmds[k].cpu);
	}
	return rc;
}
