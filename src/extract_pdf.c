/* extract_pdf.c - PDF text by mutool (Debian package mupdf-tools), run as
 * a separate process (see extract.h for what comes out).
 *
 * Why a separate process, and why mutool: measured on this machine (2
 * cores) with man pages rendered by groff -Tpdf, bash(1) at 87 pages and
 * nine long pages in one file at 402 pages:
 *
 *   tool (Debian 12)               87 pages     402 pages    peak RSS
 *   mutool draw -F txt  (mupdf)    0.18 s       0.39 s       10.2 MB
 *   pdftotext           (poppler)  0.28 s       1.13 s       11.9 MB
 *   pdftotext -layout   (poppler)  0.31 s       1.00 s       11.6 MB
 *
 * Both keep reading order on two-column pages (groff -ms .2C).  mutool is
 * 1.5-3x faster, and it keeps paragraphs apart with a blank line, which
 * the chunker uses as its preferred boundary; pdftotext runs them
 * together.  Linking instead of running a tool would save the ~5 ms of a
 * process start per file, but libpoppler is GPL and libmupdf AGPL, so
 * lode itself would have to be GPL/AGPL; an unmodified tool in its own
 * process keeps lode MIT (LICENSE), and a hostile file can only crash or
 * exhaust the child, which is killed after EXTRACT_PDF_TIMEOUT_MS, above
 * EXTRACT_PDF_MAX_TEXT bytes of text, and cannot map more than
 * EXTRACT_PDF_MAX_MEMORY.  mutool reads the file itself, so lode never
 * holds the PDF in memory: only the text, which arrives through a pipe
 * and is appended page by page.
 *
 * Protocol: `mutool draw -q -F txt FILE` writes each page's text followed
 * by "\f\n"; `mutool show FILE outline` writes one line per bookmark:
 * a mark ('-', '+' or '|'), one tab per level, the title quoted with C
 * escapes (\" \\ \n \r \t \xNN), a tab, and "#page=N..." (the target).
 * A PDF that needs a password makes draw fail with "cannot authenticate
 * password"; a PDF encrypted with an owner password only (restrictions
 * on copying or printing) opens without one and is read.
 */
#include "extract_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <utf8proc.h>

#include "subproc.h"

/* ---- the text of the pages -------------------------------------------- */

typedef struct page_reader {
    extract_text t;
    size_t pages;            /* form feeds seen */
    size_t pending_pages;    /* pages whose start is not recorded yet */
    int at_page_start;       /* skipping the whitespace a page opens with */
    size_t content_end;      /* end of the last non-space byte */
    int any_text;
} page_reader;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v';
}

/* The first non-space byte of a page: separate it from the page before
 * and record where it (and any empty pages before it) start. */
static void page_text_begins(page_reader *pr)
{
    if (pr->t.len > 0)
        extract__text_append(&pr->t, "\n\n", 2);
    for (; pr->pending_pages; pr->pending_pages--)
        extract__text_page(&pr->t);
    pr->at_page_start = 0;
    pr->any_text = 1;
}

static int on_page_output(void *ctx, const char *data, size_t len)
{
    page_reader *pr = ctx;
    size_t i = 0;
    while (i < len) {
        char c = data[i];
        if (c == '\f') {
            /* the page ends: drop its trailing whitespace */
            pr->t.len = pr->content_end;
            if (pr->t.s)
                pr->t.s[pr->t.len] = '\0';
            pr->pages++;
            pr->pending_pages++;
            pr->at_page_start = 1;
            i++;
            continue;
        }
        if (pr->at_page_start) {
            if (is_ws(c)) {
                i++;
                continue;
            }
            page_text_begins(pr);
        }
        size_t run = i;
        while (run < len && data[run] != '\f')
            run++;
        extract__text_append(&pr->t, data + i, run - i);
        size_t k = run;
        while (k > i && is_ws(data[k - 1]))
            k--;
        if (k > i)
            pr->content_end = pr->t.len - (run - k);
        i = run;
    }
    return pr->t.oom ? LODE_ENOMEM : LODE_OK;
}

/* The last "error: ..." line mutool wrote, without its prefix. */
static void tool_error(const char *text, char *buf, size_t size)
{
    buf[0] = '\0';
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 7 && strncmp(p, "error: ", 7) == 0 &&
            !(n >= 18 && strncmp(p + 7, "cannot draw", 11) == 0))
            snprintf(buf, size, "%.*s", (int)(n - 7), p + 7);
        p = nl ? nl + 1 : NULL;
    }
    if (!buf[0])
        snprintf(buf, size, "no reason given");
}

/* ---- the outline ------------------------------------------------------ */

typedef struct outline_entry {
    char *title;             /* whitespace collapsed */
    int page, level;
} outline_entry;

typedef struct outline {
    outline_entry *v;
    size_t n, cap;
    char *raw;               /* mutool's output */
    size_t raw_len, raw_cap;
    int oom;
} outline;

#define OUTLINE_MAX_BYTES ((size_t)4 << 20)

static int on_outline_output(void *ctx, const char *data, size_t len)
{
    outline *o = ctx;
    if (o->raw_len + len + 1 > o->raw_cap) {
        size_t nc = o->raw_cap ? o->raw_cap * 2 : 4096;
        while (nc < o->raw_len + len + 1)
            nc *= 2;
        char *nr = realloc(o->raw, nc);
        if (!nr)
            return LODE_ENOMEM;
        o->raw = nr;
        o->raw_cap = nc;
    }
    memcpy(o->raw + o->raw_len, data, len);
    o->raw_len += len;
    o->raw[o->raw_len] = '\0';
    return LODE_OK;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Unquote "..." at *p (C escapes), collapsing whitespace; NULL when the
 * line is not in the expected form or out of memory. */
static char *unquote_title(const char **p)
{
    const char *s = *p;
    if (*s != '"')
        return NULL;
    s++;
    size_t cap = strlen(s) + 1, w = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    int space = 0;
    while (*s && *s != '"' && *s != '\n') {
        char c = *s++;
        if (c == '\\' && *s) {
            char e = *s++;
            if (e == 'n' || e == 'r' || e == 't') {
                c = ' ';
            } else if (e == 'x' && hexval(s[0]) >= 0 && hexval(s[1]) >= 0) {
                c = (char)(hexval(s[0]) << 4 | hexval(s[1]));
                s += 2;
            } else {
                c = e;
            }
        }
        if (is_ws(c) || (unsigned char)c < 0x20) {
            space = w > 0;
            continue;
        }
        if (space)
            out[w++] = ' ';
        space = 0;
        out[w++] = c;
    }
    out[w] = '\0';
    if (*s != '"' || w == 0) {
        free(out);
        return NULL;
    }
    *p = s + 1;
    return out;
}

static void parse_outline(outline *o)
{
    for (const char *line = o->raw; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *p = line + 1;          /* past the mark */
        int level = 0;
        while (*p == '\t') {
            level++;
            p++;
        }
        char *title = level ? unquote_title(&p) : NULL;
        const char *page = title ? strstr(p, "#page=") : NULL;
        if (page && (!nl || page < nl)) {
            int n = atoi(page + 6);
            if (n > 0) {
                if (o->n == o->cap) {
                    size_t nc = o->cap ? o->cap * 2 : 32;
                    outline_entry *nv = realloc(o->v, nc * sizeof *nv);
                    if (!nv) {
                        free(title);
                        o->oom = 1;
                        return;
                    }
                    o->v = nv;
                    o->cap = nc;
                }
                o->v[o->n++] = (outline_entry){title, n, level};
                title = NULL;
            }
        }
        free(title);
        line = nl ? nl + 1 : NULL;
    }
}

static void outline_free(outline *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i].title);
    free(o->v);
    free(o->raw);
}

/* Does text[a, b), whitespace collapsed, equal title? */
static int line_is(const char *text, size_t a, size_t b, const char *title)
{
    size_t k = 0;
    int space = 0;
    for (size_t i = a; i < b; i++) {
        if (is_ws(text[i])) {
            space = k > 0;
            continue;
        }
        if (space && title[k++] != ' ')
            return 0;
        space = 0;
        if (title[k++] != text[i])
            return 0;
    }
    return title[k] == '\0';
}

typedef struct insert {
    size_t at;               /* offset in the text before insertion */
    const char *title;
    int level;
} insert;

static int cmp_heading(const void *a, const void *b)
{
    const chunk_heading *x = a, *y = b;
    return (x->line_start > y->line_start) - (x->line_start < y->line_start);
}

/* Turn the outline into headings: found on their page, or inserted as a
 * line at the start of it.  Rewrites d's text when anything is inserted. */
static int apply_outline(extract_doc *d, const outline *o, lode_error *err)
{
    if (!o->n || !d->n_pages)
        return LODE_OK;
    chunk_heading *hs = calloc(o->n, sizeof *hs);
    insert *ins = calloc(o->n, sizeof *ins);
    if (!hs || !ins) {
        free(hs);
        free(ins);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    size_t n_found = 0, n_ins = 0, cursor = 0;
    for (size_t i = 0; i < o->n; i++) {
        const outline_entry *e = &o->v[i];
        if ((size_t)e->page > d->n_pages)
            continue;
        size_t ps = d->page_starts[e->page - 1];
        size_t pe = (size_t)e->page < d->n_pages ? d->page_starts[e->page]
                                                 : d->len;
        size_t from = cursor > ps ? cursor : ps;
        int found = 0;
        for (size_t ls = from; ls < pe && !found;) {
            const char *nl = memchr(d->text + ls, '\n', pe - ls);
            size_t le = nl ? (size_t)(nl - d->text) : pe;
            if (line_is(d->text, ls, le, e->title)) {
                size_t ts = ls, te = le;
                while (ts < te && is_ws(d->text[ts]))
                    ts++;
                while (te > ts && is_ws(d->text[te - 1]))
                    te--;
                int level = e->level > 6 ? 6 : e->level;
                hs[n_found++] = (chunk_heading){ls, le, ts, te, level};
                cursor = le;
                found = 1;
            }
            ls = le + 1;
        }
        /* an empty page has nothing to head (and a trailing one starts
         * in the middle of the last line) */
        if (!found && cursor <= ps && ps < pe) {
            ins[n_ins++] = (insert){ps, e->title, e->level > 6 ? 6 : e->level};
            cursor = ps;
        }
    }
    int rc = LODE_OK;
    if (n_ins) {
        size_t extra = 0;
        for (size_t i = 0; i < n_ins; i++)
            extra += strlen(ins[i].title) + 2;
        char *out = malloc(d->len + extra + 1);
        chunk_heading *all = realloc(hs, (n_found + n_ins) * sizeof *all);
        if (all)
            hs = all;
        if (!out || !all) {
            free(out);
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto out;
        }
        /* Found headings and page starts move by what is inserted before
         * them; a page start stays before an insertion at it. */
        for (size_t i = 0; i < n_found; i++) {
            size_t shift = 0;
            for (size_t k = 0; k < n_ins && ins[k].at <= hs[i].line_start; k++)
                shift += strlen(ins[k].title) + 2;
            hs[i].line_start += shift;
            hs[i].line_end += shift;
            hs[i].title_start += shift;
            hs[i].title_end += shift;
        }
        size_t shift = 0, k = 0;
        for (size_t p = 0; p < d->n_pages; p++) {
            while (k < n_ins && ins[k].at < d->page_starts[p])
                shift += strlen(ins[k++].title) + 2;
            d->page_starts[p] += shift;
        }
        size_t r = 0, w = 0;
        for (size_t i = 0; i < n_ins; i++) {
            memcpy(out + w, d->text + r, ins[i].at - r);
            w += ins[i].at - r;
            r = ins[i].at;
            size_t tl = strlen(ins[i].title);
            memcpy(out + w, ins[i].title, tl);
            hs[n_found + i] = (chunk_heading){w, w + tl, w, w + tl,
                                              ins[i].level};
            w += tl;
            memcpy(out + w, "\n\n", 2);
            w += 2;
        }
        memcpy(out + w, d->text + r, d->len - r);
        w += d->len - r;
        out[w] = '\0';
        free(d->text);
        d->text = out;
        d->len = w;
    }
    size_t n = n_found + n_ins;
    qsort(hs, n, sizeof *hs, cmp_heading);
    size_t kept = 0;                 /* drop any overlap */
    for (size_t i = 0; i < n; i++)
        if (!kept || hs[i].line_start >= hs[kept - 1].line_end)
            hs[kept++] = hs[i];
    d->headings = hs;
    d->n_headings = kept;
    hs = NULL;
out:
    free(hs);
    free(ins);
    return rc;
}

/* ---- the document title (the Info dictionary) ------------------------- */

/* `mutool show FILE trailer/Info/Title` prints the object as PDF syntax:
 * a literal string "(...)" with backslash escapes, a hex string "<...>",
 * or "null".  Its bytes are UTF-16BE after a FE FF mark, else
 * PDFDocEncoding: Latin-1 but for 0x80..0xA0 (table below).  */
#define TITLE_MAX_BYTES 1024

static const unsigned short pdfdoc_80[33] = {
    0x2022, 0x2020, 0x2021, 0x2026, 0x2014, 0x2013, 0x0192, 0x2044,
    0x2039, 0x203A, 0x2212, 0x2030, 0x201E, 0x201C, 0x201D, 0x2018,
    0x2019, 0x201A, 0x2122, 0xFB01, 0xFB02, 0x0141, 0x0152, 0x0160,
    0x0178, 0x017D, 0x0131, 0x0142, 0x0153, 0x0161, 0x017E, 0xFFFD,
    0x20AC,
};

/* Append code point cp as UTF-8 (utf8proc); control characters become
 * a space, what is not a character U+FFFD. */
static size_t put_cp(char *out, size_t w, unsigned cp)
{
    if (cp < 0x20 || cp == 0x7F)
        cp = ' ';
    else if (!utf8proc_codepoint_valid((utf8proc_int32_t)cp))
        cp = 0xFFFD;
    return w + (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out + w);
}

/* The bytes of a PDF string object at s into b (room for n); -1 if s is
 * not one. */
static long pdf_string_bytes(const char *s, unsigned char *b, size_t n)
{
    size_t w = 0;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    if (*s == '<') {
        int hi = -1;
        for (s++; *s && *s != '>'; s++) {
            int v = hexval(*s);
            if (v < 0)
                continue;            /* whitespace inside is allowed */
            if (hi < 0) {
                hi = v;
            } else {
                if (w < n)
                    b[w++] = (unsigned char)(hi << 4 | v);
                hi = -1;
            }
        }
        if (hi >= 0 && w < n)        /* an odd digit count: a final 0 */
            b[w++] = (unsigned char)(hi << 4);
        return *s == '>' ? (long)w : -1;
    }
    if (*s != '(')
        return -1;
    int depth = 1;
    for (s++; *s && w < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            return (long)w;
        } else if (c == '\\') {
            c = (unsigned char)*++s;
            if (!c)
                break;
            const char *esc = strchr("nrtbf", c);
            if (esc && c) {
                static const char map[] = "\n\r\t\b\f";
                c = (unsigned char)map[esc - "nrtbf"];
            } else if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 0; k < 2 && s[1] >= '0' && s[1] <= '7'; k++)
                    v = v * 8 + (*++s - '0');
                c = (unsigned char)v;
            } else if (c == '\r' || c == '\n') {
                if (c == '\r' && s[1] == '\n')
                    s++;
                continue;            /* a line continuation */
            }
        }
        b[w++] = c;
    }
    return depth == 0 ? (long)w : (w >= n ? (long)w : -1);
}

/* The title as UTF-8 with whitespace collapsed, or NULL (none, empty, or
 * out of memory: a title is not worth failing a document for). */
char *extract__pdf_title(const char *shown)
{
    unsigned char b[TITLE_MAX_BYTES];
    long len = pdf_string_bytes(shown, b, sizeof b);
    if (len <= 0)
        return NULL;
    char *out = malloc((size_t)len * 3 + 4);
    if (!out)
        return NULL;
    size_t w = 0;
    if (len >= 2 && b[0] == 0xFE && b[1] == 0xFF) {
        for (long i = 2; i + 1 < len; i += 2) {
            unsigned cp = (unsigned)b[i] << 8 | b[i + 1];
            if (cp >= 0xD800 && cp < 0xDC00 && i + 3 < len) {
                unsigned lo = (unsigned)b[i + 2] << 8 | b[i + 3];
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 2;
                }
            }
            w = put_cp(out, w, cp);
        }
    } else {
        for (long i = 0; i < len; i++)
            w = put_cp(out, w, b[i] >= 0x80 && b[i] <= 0xA0 ? pdfdoc_80[b[i] - 0x80] : b[i]);
    }
    /* collapse whitespace */
    size_t k = 0;
    for (size_t i = 0; i < w; i++) {
        int sp = out[i] == ' ';
        if (sp && (k == 0 || out[k - 1] == ' '))
            continue;
        out[k++] = out[i];
    }
    while (k && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
    if (!k) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- the whole file --------------------------------------------------- */

int extract__pdf_file(const char *path, extract_doc *d, lode_error *err)
{
    char tool[4096];
    if (subproc_find("mutool", tool, sizeof tool))
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "reading PDF needs mutool (Debian package "
                              "mupdf-tools), which is not installed");
    subproc_limits lim = {EXTRACT_PDF_TIMEOUT_MS, EXTRACT_PDF_MAX_TEXT,
                          EXTRACT_PDF_MAX_MEMORY};
    page_reader pr = {.pending_pages = 1, .at_page_start = 1};
    subproc_result res;
    char *draw[] = {tool, "draw", "-q", "-F", "txt", (char *)path, NULL};
    int rc = subproc_run(draw, &lim, on_page_output, &pr, &res, err);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (rc == LODE_ELIMIT)
        rc = lode_error_set(err, LODE_ELIMIT, "the PDF gives more than %zu "
                            "MiB of text", EXTRACT_PDF_MAX_TEXT >> 20);
    if (rc == LODE_EBUSY)
        rc = lode_error_set(err, LODE_ELIMIT, "reading the PDF took longer "
                            "than %d s and was stopped",
                            EXTRACT_PDF_TIMEOUT_MS / 1000);
    if (!rc && (res.exit_status != 0 || res.signal)) {
        char why[256];
        tool_error(res.stderr_text, why, sizeof why);
        if (strstr(res.stderr_text, "cannot authenticate password"))
            rc = lode_error_set(err, LODE_EUNSUPPORTED, "the PDF is "
                                "encrypted with a password; lode cannot "
                                "read it without the password");
        else if (res.signal)
            rc = lode_error_set(err, LODE_EFORMAT, "mutool stopped on "
                                "signal %d reading the PDF (damaged, or "
                                "over the %zu MiB memory limit)",
                                res.signal, EXTRACT_PDF_MAX_MEMORY >> 20);
        else
            rc = lode_error_set(err, LODE_EFORMAT, "not a readable PDF "
                                "(mutool: %s)", why);
    }
    if (!rc && !pr.any_text)
        rc = lode_error_set(err, LODE_EUNSUPPORTED, "no text layer: its %zu "
                            "page%s hold%s no text (a scanned PDF? lode does "
                            "not do OCR)", pr.pages, pr.pages == 1 ? "" : "s",
                            pr.pages == 1 ? "s" : "");
    if (rc) {
        extract__text_free(&pr.t);
        return rc;
    }
    /* pages after the last text (or a last page without its "\f") */
    if (pr.pages == 0)
        pr.pages = 1;
    while (pr.t.n_pages < pr.pages && !pr.t.oom)
        extract__text_page(&pr.t);
    if ((rc = extract__text_finish(&pr.t, d, err)))
        return rc;
    if (d->n_pages > pr.pages)     /* a trailing "\f" opens no page */
        d->n_pages = pr.pages;

    /* The outline: headings where it has one; without it, none. */
    outline o = {0};
    char *show[] = {tool, "show", (char *)path, "outline", NULL};
    subproc_limits olim = {EXTRACT_PDF_TIMEOUT_MS, OUTLINE_MAX_BYTES,
                           EXTRACT_PDF_MAX_MEMORY};
    lode_error oerr = {0};
    if (subproc_run(show, &olim, on_outline_output, &o, &res, &oerr) == 0 &&
        res.exit_status == 0 && o.raw) {
        parse_outline(&o);
        if (o.oom)
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        else
            rc = apply_outline(d, &o, err);
    }
    outline_free(&o);

    /* The title, from the Info dictionary where it has one. */
    char *info[] = {tool, "show", (char *)path, "trailer/Info/Title", NULL};
    subproc_limits tlim = {EXTRACT_PDF_TIMEOUT_MS, 4 * TITLE_MAX_BYTES + 64,
                           EXTRACT_PDF_MAX_MEMORY};
    outline t = {0};          /* only its raw byte buffer is used */
    if (!rc && !d->title &&
        subproc_run(info, &tlim, on_outline_output, &t, &res, &oerr) == 0 &&
        res.exit_status == 0 && t.raw)
        d->title = extract__pdf_title(t.raw);
    outline_free(&t);
    return rc;
}

int extract__pdf_buffer(const char *data, size_t len, extract_doc *d,
                        lode_error *err)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/lode-pdf-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return lode_error_set(err, LODE_EIO, "cannot create a temporary "
                              "file for the PDF in %s", dir ? dir : "/tmp");
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return lode_error_set(err, LODE_EIO, "cannot write a temporary "
                                  "file for the PDF");
        }
        done += (size_t)w;
    }
    close(fd);
    int rc = extract__pdf_file(path, d, err);
    unlink(path);
    return rc;
}
