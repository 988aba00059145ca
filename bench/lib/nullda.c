/* nullda (bench/lib/nullda.c, the reference floor the design gives, kept here so the
 * benchmarks need nothing outside the repository): the floor for one Maildir delivery by a fresh process:
 * read stdin, write tmp/, fsync, rename into new/, fsync new/.  No parsing, no filtering. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: nullda MAILDIR < message\n"); return 64; }
    char tmp[4096], new[4096], dir[4096], buf[65536];
    struct timeval tv; gettimeofday(&tv, NULL);
    snprintf(tmp, sizeof tmp, "%s/tmp/%ld.M%ldP%d.nullda", argv[1], (long)tv.tv_sec, (long)tv.tv_usec, (int)getpid());
    snprintf(new, sizeof new, "%s/new/%ld.M%ldP%d.nullda", argv[1], (long)tv.tv_sec, (long)tv.tv_usec, (int)getpid());
    snprintf(dir, sizeof dir, "%s/new", argv[1]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return 75;
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n) return 75;
    if (n < 0 || fsync(fd) || close(fd) || rename(tmp, new)) return 75;
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    if (d < 0 || fsync(d)) return 75;
    return 0;
}
