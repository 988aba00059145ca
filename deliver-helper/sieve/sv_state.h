/* sv_state.h — small per-user "seen" databases for vacation (RFC 5230 4.6)
 * and duplicate (RFC 7352): one file of "EXPIRY HASH" lines, locked with
 * flock(2) so concurrent deliveries to the same user serialise on it.
 * Keys are hashed (SHA-256), so no address or Message-ID is stored in clear.
 * Bounded: at most SV_STATE_MAX entries; expired entries and then the
 * oldest are dropped when the file is rewritten.  A damaged line is skipped.
 * Returns: sv_state_seen 1 seen and not expired, 0 not, -1 error (errno);
 *          sv_state_mark 0 ok, -1 error (errno).
 */
#ifndef SV_STATE_H
#define SV_STATE_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SV_STATE_MAX 5000

int sv_state_seen(const char *path, const char *key, size_t keylen, time_t now);
int sv_state_mark(const char *path, const char *key, size_t keylen, time_t expiry,
		  time_t now);

#endif
