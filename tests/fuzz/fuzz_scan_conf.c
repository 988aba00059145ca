/* fuzz_scan_conf.c — libFuzzer harness for /etc/homemail/scan.conf parsing
 * (exim-local-scan/scan_conf.c).  The file is admin-written, but a bad one
 * must give a clear error line, never a crash inside Exim.
 *
 * Input: the file contents, written to a private temporary file and loaded.
 * Checks: a load that fails leaves a one-line error naming the file; a load
 * that succeeds leaves limits that are usable (non-zero) and a blocked list
 * of non-empty lower-case entries.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_conf c;
	char err[512];
	int r;
	const char *path = fuzz_input_file("scanconf", data, size);

	if (path == NULL)
		return 0;
	if (scan_conf_defaults(&c) < 0)
		return 0;
	err[0] = '\0';
	r = scan_conf_load(path, &c, err, sizeof err);
	if (r < 0) {
		if (!strstr(err, path) || strchr(err, '\n'))
			abort();   /* the error must name the file, on one line */
	} else {
		for (size_t i = 0; i < c.nblocked; i++) {
			if (!c.blocked[i] || !c.blocked[i][0])
				abort();
			for (const char *p = c.blocked[i]; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					abort();
		}
		if (c.lim.max_depth == 0 || c.lim.max_parts == 0 || c.lim.max_line == 0)
			abort();
	}
	scan_conf_free(&c);
	return 0;
}
