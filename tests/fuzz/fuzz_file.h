/* fuzz_file.h — for harnesses whose parser reads a file by name: write the
 * input into a private scratch file (one per fuzzer process, O_NOFOLLOW).
 * fuzz_input_file returns the file's path, or NULL when it could not be
 * written (the harness then skips the input). */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "hm_util.h"

static inline const char *fuzz_input_file(const char *tag, const uint8_t *data, size_t size)
{
	static char path[96];
	snprintf(path, sizeof path, "/tmp/hm-fuzz-%s.%d", tag, (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	int r = hm_write_full(fd, data, size);
	close(fd);
	return r < 0 ? NULL : path;
}
#endif
