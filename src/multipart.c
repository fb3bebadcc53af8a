/* multipart.c - multipart/form-data bodies (see multipart.h).
 *
 * One forward scan with memmem: the delimiter is "\r\n--BOUNDARY" (the
 * CRLF before it belongs to the delimiter, not to the part's bytes), so a
 * part's bytes may hold anything, even lone "--BOUNDARY" text not at a
 * line start.  Header values are parsed as RFC 7578 and the browsers
 * write them: parameters separated by ';', values quoted (with backslash
 * escapes) or bare tokens; names matched case-insensitively. */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool multipart_is_form(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return strncasecmp(ct, "multipart/form-data", 19) == 0 &&
           (ct[19] == '\0' || ct[19] == ';' || ct[19] == ' ' ||
            ct[19] == '\t');
}

/* Copy the value of a parameter (quoted or a token) at *p into out;
 * advances *p.  False when it does not fit. */
static bool param_value(const char **p, const char *end, char *out,
                        size_t size)
{
    const char *s = *p;
    size_t n = 0;
    bool ok = true;
    if (s < end && *s == '"') {
        s++;
        while (s < end && *s != '"') {
            if (*s == '\\' && s + 1 < end)
                s++;
            if (n + 1 < size)
                out[n++] = *s;
            else
                ok = false;
            s++;
        }
        if (s < end)
            s++;   /* the closing quote */
    } else {
        while (s < end && *s != ';' && *s != ' ' && *s != '\t') {
            if (n + 1 < size)
                out[n++] = *s;
            else
                ok = false;
            s++;
        }
    }
    out[n] = '\0';
    *p = s;
    return ok;
}

/* Find parameter `name` in the ';'-separated list [p, end) and copy its
 * value.  1 found, 0 not, -1 too long. */
static int find_param(const char *p, const char *end, const char *name,
                      char *out, size_t size)
{
    size_t nl = strlen(name);
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        const char *key = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        const char *key_end = p;
        while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '\t'))
            key_end--;
        if (p < end && *p == '=') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            char tmp[MULTIPART_FILENAME_MAX];
            bool match = (size_t)(key_end - key) == nl &&
                         strncasecmp(key, name, nl) == 0;
            bool fits = param_value(&p, end, match ? out : tmp,
                                    match ? size : sizeof tmp);
            if (match)
                return fits ? 1 : -1;
        }
        while (p < end && *p != ';')
            p++;
    }
    return 0;
}

int multipart_header_param(const char *value, const char *name, char *out,
                           size_t size)
{
    if (size)
        out[0] = '\0';
    if (!value || size == 0)
        return 0;
    return find_param(value, value + strlen(value), name, out, size);
}

int multipart_boundary(const char *ct, char out[MULTIPART_BOUNDARY_MAX + 1],
                       lode_error *err)
{
    out[0] = '\0';
    const char *semi = ct ? strchr(ct, ';') : NULL;
    if (!multipart_is_form(ct) || !semi)
        return lode_error_set(err, LODE_EINVAL, "a multipart/form-data body "
                              "needs a boundary parameter");
    int r = find_param(semi, semi + strlen(semi), "boundary", out,
                       MULTIPART_BOUNDARY_MAX + 1);
    if (r < 0)
        return lode_error_set(err, LODE_EINVAL, "the multipart boundary is "
                              "longer than %d characters",
                              MULTIPART_BOUNDARY_MAX);
    if (r == 0 || !out[0])
        return lode_error_set(err, LODE_EINVAL, "a multipart/form-data body "
                              "needs a boundary parameter");
    return LODE_OK;
}

/* Parse one part's header block [p, end) into part. */
static int parse_headers(const char *p, const char *end, multipart_part *part,
                         size_t index, lode_error *err)
{
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon)
            return lode_error_set(err, LODE_EFORMAT, "multipart part %zu: a "
                                  "header line without ':'", index);
        const char *v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        size_t nl = (size_t)(colon - p);
        if (nl == 19 && strncasecmp(p, "Content-Disposition", 19) == 0) {
            /* a repeated header replaces the first one whole */
            part->name[0] = part->filename[0] = '\0';
            if (find_param(v, line_end, "name", part->name,
                           sizeof part->name) < 0)
                return lode_error_set(err, LODE_EFORMAT, "multipart part "
                                      "%zu: the field name is too long",
                                      index);
            int r = find_param(v, line_end, "filename", part->filename,
                               sizeof part->filename);
            if (r < 0)
                return lode_error_set(err, LODE_EFORMAT, "multipart part "
                                      "%zu: the file name is longer than %d "
                                      "bytes", index,
                                      MULTIPART_FILENAME_MAX - 1);
            part->has_filename = r == 1;
        } else if (nl == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
            const char *ve = line_end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t n = (size_t)(ve - v);
            if (n >= sizeof part->content_type)
                return lode_error_set(err, LODE_EFORMAT, "multipart part "
                                      "%zu: the Content-Type is too long",
                                      index);
            memcpy(part->content_type, v, n);
            part->content_type[n] = '\0';
        }
        p = eol ? eol + 2 : end;
    }
    return LODE_OK;
}

int multipart_parse(const char *body, size_t len, const char *boundary,
                    size_t max_parts, multipart_part **parts_out,
                    size_t *n_out, lode_error *err)
{
    *parts_out = NULL;
    *n_out = 0;
    size_t bl = strlen(boundary);
    if (bl == 0 || bl > MULTIPART_BOUNDARY_MAX)
        return lode_error_set(err, LODE_EINVAL, "bad multipart boundary");
    char delim[MULTIPART_BOUNDARY_MAX + 5];   /* "\r\n--" boundary */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    size_t dl = bl + 4;
    const char *end = body + len;
    /* the first delimiter may open the body (without its CRLF) */
    const char *p;
    if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
        p = body + dl - 2;
    else if ((p = memmem(body, len, delim, dl)))
        p += dl;
    else
        return lode_error_set(err, LODE_EFORMAT, "the multipart body has no "
                              "boundary line");
    multipart_part *parts = NULL;
    size_t n = 0, cap = 0;
    int rc = LODE_OK;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;   /* the close delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            rc = lode_error_set(err, LODE_EFORMAT, "the multipart body ends "
                                "without its closing boundary");
            break;
        }
        p += 2;
        if (n == max_parts) {
            rc = lode_error_set(err, LODE_ELIMIT, "more than %zu parts in "
                                "the multipart body", max_parts);
            break;
        }
        const char *hdr_end;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            hdr_end = p;   /* no headers at all */
        else if (!(hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) ||
                 hdr_end - p > MULTIPART_HEADERS_MAX) {
            rc = lode_error_set(err, LODE_EFORMAT, "multipart part %zu: no "
                                "blank line after its headers (or over %d "
                                "bytes of them)", n, MULTIPART_HEADERS_MAX);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            multipart_part *grown = realloc(parts, nc * sizeof *grown);
            if (!grown) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
                break;
            }
            parts = grown;
            cap = nc;
        }
        multipart_part *part = &parts[n];
        memset(part, 0, sizeof *part);
        if ((rc = parse_headers(p, hdr_end, part, n, err)))
            break;
        const char *data = hdr_end == p ? p + 2 : hdr_end + 4;
        const char *next = memmem(data, (size_t)(end - data), delim, dl);
        if (!next) {
            rc = lode_error_set(err, LODE_EFORMAT, "multipart part %zu has no "
                                "boundary after it", n);
            break;
        }
        part->data = data;
        part->len = (size_t)(next - data);
        n++;
        p = next + dl;
    }
    if (rc) {
        free(parts);
        return rc;
    }
    *parts_out = parts;
    *n_out = n;
    return LODE_OK;
}
