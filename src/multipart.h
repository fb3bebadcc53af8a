/* multipart.h - read a multipart/form-data body (RFC 7578), the way a
 * browser uploads files from a form or a FormData.
 *
 * A body is a list of parts between delimiter lines "--BOUNDARY", ended
 * by "--BOUNDARY--"; each part has header lines (Content-Disposition:
 * form-data; name="..."; filename="...", and Content-Type), a blank line,
 * then its bytes up to the CRLF before the next delimiter.  Lines end with
 * CRLF, as every browser and curl write them.  Anything before the first
 * delimiter (a preamble) or after the last is ignored.
 *
 * Nothing is copied: each part's bytes are a range of the body; only its
 * few header values are copied into the part (bounded sizes, longer ones
 * refused).  Pure: no I/O, so it is tested and fuzzed directly. */
#ifndef LODE_MULTIPART_H
#define LODE_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define MULTIPART_BOUNDARY_MAX 70   /* RFC 2046 */
#define MULTIPART_NAME_MAX 128
#define MULTIPART_FILENAME_MAX 256
#define MULTIPART_TYPE_MAX 128
#define MULTIPART_HEADERS_MAX 8192  /* bytes of one part's headers */

typedef struct multipart_part {
    const char *data;                        /* into the body */
    size_t len;
    char name[MULTIPART_NAME_MAX];           /* the field's name, or "" */
    char filename[MULTIPART_FILENAME_MAX];   /* as sent, or "" */
    bool has_filename;                       /* a file, not a plain field */
    char content_type[MULTIPART_TYPE_MAX];   /* or "" when not given */
} multipart_part;

/* Is this Content-Type multipart/form-data (any parameters, any case)? */
bool multipart_is_form(const char *content_type);
/* The boundary parameter of a multipart/form-data Content-Type (quoted
 * or not) into out (MULTIPART_BOUNDARY_MAX + 1 bytes).  LODE_EINVAL when
 * there is none or it is too long. */
int multipart_boundary(const char *content_type,
                       char out[MULTIPART_BOUNDARY_MAX + 1], lode_error *err);
/* The value of parameter `name` in a header value such as
 * `attachment; filename="a.md"` (quoted or a token) into out.  1 found,
 * 0 not there, -1 too long for size. */
int multipart_header_param(const char *value, const char *name, char *out,
                           size_t size);
/* The parts of a body, at most max_parts (more: LODE_ELIMIT).  *parts
 * (free()) holds *n parts.  A malformed body (no delimiter, no end, a part
 * without its blank line, a bad or oversized header) is LODE_EFORMAT. */
int multipart_parse(const char *body, size_t len, const char *boundary,
                    size_t max_parts, multipart_part **parts, size_t *n,
                    lode_error *err);

#endif
