/* extract_text.c - the text buffer the binary extractors build documents
 * in, the UTF-8 cleaning of text that came from a tool or parser, and
 * whole-file reading (see extract_int.h).
 *
 * Cleaning rewrites the text once, and only when something is wrong with
 * it; the offsets that point into it (headings, page starts) are gathered,
 * sorted and moved in the same pass, so they stay on the same characters.
 */
#include "extract_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * size);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

void extract__text_append(extract_text *t, const char *s, size_t n)
{
    if (t->oom || (!n && t->s))
        return;
    if (grow((void **)&t->s, &t->cap, t->len + n + 1, 1)) {
        t->oom = 1;
        return;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void extract__text_heading(extract_text *t, size_t line_start,
                           size_t line_end, size_t title_start,
                           size_t title_end, int level)
{
    if (t->oom)
        return;
    if (grow((void **)&t->headings, &t->headings_cap, t->n_headings + 1,
             sizeof *t->headings)) {
        t->oom = 1;
        return;
    }
    level = level < 1 ? 1 : level > 6 ? 6 : level;
    chunk_heading h = {line_start, line_end, title_start, title_end, level};
    t->headings[t->n_headings++] = h;
}

void extract__text_page(extract_text *t)
{
    if (t->oom)
        return;
    if (grow((void **)&t->pages, &t->pages_cap, t->n_pages + 1,
             sizeof *t->pages)) {
        t->oom = 1;
        return;
    }
    t->pages[t->n_pages++] = t->len;
}

void extract__text_free(extract_text *t)
{
    free(t->s);
    free(t->headings);
    free(t->pages);
    memset(t, 0, sizeof *t);
}

int extract__text_finish(extract_text *t, extract_doc *d, lode_error *err)
{
    extract__text_append(t, "", 0);      /* an empty text is "" */
    if (t->oom) {
        extract__text_free(t);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    d->text = t->s;
    d->len = t->len;
    d->headings = t->headings;
    d->n_headings = t->n_headings;
    d->page_starts = t->pages;
    d->n_pages = t->n_pages;
    memset(t, 0, sizeof *t);
    return LODE_OK;
}

/* Length of the valid UTF-8 character at s[0..left), or 0. */
static size_t utf8_char(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    size_t n;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n > left)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int cmp_offset_ptr(const void *a, const void *b)
{
    size_t x = **(size_t *const *)a, y = **(size_t *const *)b;
    return (x > y) - (x < y);
}

int extract__clean_text(extract_doc *d, lode_error *err)
{
    const unsigned char *s = (const unsigned char *)d->text;
    size_t bad = 0;
    for (size_t i = 0; i < d->len;) {
        size_t n = utf8_char(s + i, d->len - i);
        if (!n) {
            bad++;
            i++;
        } else {
            i += n;
        }
    }
    if (!bad)
        return LODE_OK;
    /* Every offset that points into the text, sorted by value. */
    size_t n_ptrs = d->n_headings * 4 + d->n_pages;
    size_t **ptrs = malloc((n_ptrs ? n_ptrs : 1) * sizeof *ptrs);
    char *out = malloc(d->len + bad * 2 + 1);
    if (!ptrs || !out) {
        free(ptrs);
        free(out);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < d->n_headings; i++) {
        ptrs[k++] = &d->headings[i].line_start;
        ptrs[k++] = &d->headings[i].line_end;
        ptrs[k++] = &d->headings[i].title_start;
        ptrs[k++] = &d->headings[i].title_end;
    }
    for (size_t i = 0; i < d->n_pages; i++)
        ptrs[k++] = &d->page_starts[i];
    qsort(ptrs, n_ptrs, sizeof *ptrs, cmp_offset_ptr);
    size_t w = 0, p = 0;
    for (size_t i = 0; i <= d->len;) {
        while (p < n_ptrs && *ptrs[p] <= i)
            *ptrs[p++] = w;
        if (i == d->len)
            break;
        size_t n = utf8_char(s + i, d->len - i);
        if (n) {
            memcpy(out + w, s + i, n);
            w += n;
            i += n;
        } else {
            if (s[i]) {                    /* NUL bytes are dropped */
                memcpy(out + w, "\xEF\xBF\xBD", 3);
                w += 3;
            }
            i++;
        }
    }
    out[w] = '\0';
    free(ptrs);
    free(d->text);
    d->text = out;
    d->len = w;
    return LODE_OK;
}

int extract_read_file(const char *path, char **data, size_t *len,
                      lode_error *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lode_error_set(err, LODE_EIO, "%s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lode_error_set(err, LODE_EIO, "not a regular file");
    }
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    for (;;) {
        if (n + 1 >= cap) {          /* the file grew while we read */
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return lode_error_set(err, LODE_ENOMEM, "out of memory");
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return lode_error_set(err, LODE_EIO, "%s", strerror(e));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return LODE_OK;
}
