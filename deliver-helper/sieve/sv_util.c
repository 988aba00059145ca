/* sv_util.c — small helpers that every layer of the Sieve engine uses.
 *
 * What for: kept apart so that using them makes no file depend on the
 * parser, the interpreter or an extension (tools/sieve-layers).
 */
#include <stdlib.h>
#include <string.h>

#include "sv_int.h"

char *sv_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}
