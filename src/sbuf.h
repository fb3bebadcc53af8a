/* sbuf.h - a growable byte string: the one string builder of lode.
 *
 * Zero-initialise (sbuf b = {0}), append, then take the NUL-terminated
 * result or free it.  An allocation failure is sticky: later appends do
 * nothing, sbuf_take returns NULL and `oom` tells, so a caller checks
 * once at the end instead of after every append.
 */
#ifndef LODE_SBUF_H
#define LODE_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sbuf {
    char *data;          /* NUL-terminated when not NULL */
    size_t len, cap;
    bool oom;
} sbuf;

void sbuf_append(sbuf *b, const char *s, size_t n);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_putc(sbuf *b, char c);
void sbuf_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The string (caller frees; "" when empty), or NULL after a failure; the
 * buffer is empty again either way.  *len may be NULL. */
char *sbuf_take(sbuf *b, size_t *len);
void sbuf_free(sbuf *b);
/* Drop the first n bytes. */
void sbuf_consume(sbuf *b, size_t n);

#endif
