/* hm_buf.h — growable byte buffer with a hard upper bound.
 *
 * Every buffer that holds outside input has a maximum size fixed at init;
 * appends past it fail with EMSGSIZE instead of growing without bound.
 * The data is always NUL-terminated (the NUL is not counted in len), so text
 * can be read as a C string, while binary content may contain NULs.
 * Returns: 0 ok, -1 and errno set (ENOMEM, EMSGSIZE).
 */
#ifndef HM_BUF_H
#define HM_BUF_H
#include <stddef.h>

struct hm_buf {
	char *data;     /* NUL-terminated, NULL until the first append */
	size_t len;     /* bytes used, excluding the NUL */
	size_t cap;     /* bytes allocated */
	size_t max;     /* hard limit on len */
};

void hm_buf_init(struct hm_buf *b, size_t max);
int hm_buf_append(struct hm_buf *b, const void *p, size_t n);
int hm_buf_putc(struct hm_buf *b, char c);
int hm_buf_puts(struct hm_buf *b, const char *s);
int hm_buf_printf(struct hm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* hm_buf_cstr - the contents as a C string ("" when empty); never NULL */
const char *hm_buf_cstr(const struct hm_buf *b);
void hm_buf_reset(struct hm_buf *b);
void hm_buf_free(struct hm_buf *b);
/* hm_buf_steal - hand the malloc'd data to the caller (NUL-terminated, never NULL
 * on success) and reset the buffer. Returns NULL and errno=ENOMEM on failure. */
char *hm_buf_steal(struct hm_buf *b, size_t *len_r);

#endif
