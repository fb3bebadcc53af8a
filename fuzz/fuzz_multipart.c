/* fuzz_multipart.c - libFuzzer driver for the multipart/form-data reader
 * (src/multipart.c), which reads upload bodies straight off the network.
 *
 * The first byte gives the boundary's length (1..16), the next bytes the
 * boundary, the rest the body.  On success every part's bytes must lie
 * inside the body, in order, without overlap, never holding the
 * delimiter "\r\n--BOUNDARY"; its header values NUL-terminated within
 * their buffers.  On failure there must be a message.  Also
 * multipart_boundary and multipart_header_param on the input as a header.
 *
 * Seeds: fuzz/corpus/multipart/. */
#include <string.h>

#include "fuzz.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t bl = (size_t)(data[0] % 16) + 1;
    if (size < 1 + bl)
        return 0;
    char boundary[17];
    memcpy(boundary, data + 1, bl);
    boundary[bl] = '\0';
    if (strlen(boundary) != bl)
        return 0;   /* a boundary holds no NUL */
    const char *body = (const char *)data + 1 + bl;
    size_t len = size - 1 - bl;
    multipart_part *parts = NULL;
    size_t n = 0;
    lode_error err = {0};
    int rc = multipart_parse(body, len, boundary, 64, &parts, &n, &err);
    if (rc) {
        FUZZ_CHECK(parts == NULL && n == 0, "parts on failure");
        FUZZ_CHECK(err.message[0], "no message for rc %d", rc);
    } else {
        char delim[24] = "\r\n--";
        memcpy(delim + 4, boundary, bl);
        const char *prev_end = body;
        for (size_t i = 0; i < n; i++) {
            const multipart_part *p = &parts[i];
            FUZZ_CHECK(p->data >= prev_end && p->data + p->len <= body + len,
                       "part %zu outside the body or out of order", i);
            fuzz_touch(p->data, p->len);
            FUZZ_CHECK(!memmem(p->data, p->len, delim, bl + 4),
                       "part %zu holds the delimiter", i);
            FUZZ_CHECK(memchr(p->name, 0, sizeof p->name) &&
                           memchr(p->filename, 0, sizeof p->filename) &&
                           memchr(p->content_type, 0, sizeof p->content_type),
                       "unterminated header value");
            FUZZ_CHECK(p->has_filename || !p->filename[0], "filename flag");
            prev_end = p->data + p->len;
        }
        free(parts);
    }
    /* the same bytes as a Content-Type and a Content-Disposition */
    char header[512];
    size_t hl = len < sizeof header - 1 ? len : sizeof header - 1;
    memcpy(header, body, hl);
    header[hl] = '\0';
    char b[MULTIPART_BOUNDARY_MAX + 1];
    if (multipart_boundary(header, b, &err) == 0)
        FUZZ_CHECK(b[0] && strlen(b) <= MULTIPART_BOUNDARY_MAX, "boundary");
    char v[32];
    int r = multipart_header_param(header, "filename", v, sizeof v);
    FUZZ_CHECK(r >= -1 && r <= 1 && memchr(v, 0, sizeof v), "param");
    return 0;
}
