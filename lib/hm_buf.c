/* hm_buf.c — bounded growable byte buffer (see hm_buf.h).
 * Relies on: malloc/realloc. Fails with ENOMEM or EMSGSIZE, never aborts. */
#include "hm_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hm_buf_init(struct hm_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

/* hm_buf_reserve - make room for n more bytes plus the NUL */
static int hm_buf_reserve(struct hm_buf *b, size_t n)
{
	size_t need, ncap;
	char *p;

	if (n > b->max || b->len > b->max - n) {
		errno = EMSGSIZE;
		return -1;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need) {
		if (ncap > ((size_t)-1) / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	if ((p = realloc(b->data, ncap)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	b->data = p;
	b->cap = ncap;
	return 0;
}

int hm_buf_append(struct hm_buf *b, const void *p, size_t n)
{
	if (hm_buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int hm_buf_putc(struct hm_buf *b, char c)
{
	return hm_buf_append(b, &c, 1);
}

int hm_buf_puts(struct hm_buf *b, const char *s)
{
	return hm_buf_append(b, s, strlen(s));
}

int hm_buf_printf(struct hm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if (hm_buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *hm_buf_cstr(const struct hm_buf *b)
{
	return b->data ? b->data : "";
}

void hm_buf_reset(struct hm_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void hm_buf_free(struct hm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *hm_buf_steal(struct hm_buf *b, size_t *len_r)
{
	char *p = b->data;
	size_t len = b->len;

	if (p == NULL) {
		/* nothing appended yet (len is 0): hand out an empty string */
		if ((p = malloc(1)) == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		p[0] = '\0';
		len = 0;
	}
	if (len_r)
		*len_r = len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
