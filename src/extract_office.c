/* extract_office.c - DOCX (OOXML WordprocessingML) and ODT (OpenDocument
 * text): the zip read with libzip, its XML with libxml2's streaming
 * reader (see extract.h for what comes out).
 *
 * libzip rather than minizip: libzip (BSD-3-Clause, Debian libzip-dev)
 * opens a zip from a file or from memory through one API, gives each
 * entry's declared and compressed sizes before anything is inflated (the
 * zip bomb checks), checks the CRC of what it inflates, and with
 * ZIP_CHECKCONS refuses an archive whose central directory does not match
 * its entries, so a truncated file fails at open with a clear reason.
 * minizip (zlib license) is an example program of zlib packaged as a
 * library, without a memory source and with fewer consistency checks.
 *
 * The XML parts are read by xmlTextReader, which pulls nodes from the zip
 * entry as it inflates it: memory holds one paragraph at a time, never the
 * whole part or a tree of it, and a byte count in the read callback stops
 * a part that inflates to more than it declared.  Entities are never
 * substituted and the network is never used (XML_PARSE_NONET).
 *
 * Both formats are turned into the same blocks (paragraph, heading, list
 * item, table row) by one block writer: blocks are separated by a blank
 * line, except consecutive list items and rows of one table, which are
 * separated by a line break so a list or table stays one paragraph for
 * the chunker.
 */
#include "extract_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/xmlreader.h>
#include <zip.h>

/* ---- blocks ------------------------------------------------------------ */

enum { BLOCK_NONE, BLOCK_PARA, BLOCK_LIST, BLOCK_ROW };

typedef struct office {
    extract_text t;
    int last_block;
    /* the paragraph being read */
    char *para;
    size_t para_len, para_cap;
    int para_space;          /* a space is due before the next text */
    /* table state: depth of tables, cells of the current row */
    int table_depth;
    char *row;
    size_t row_len, row_cap;
    int row_cells;
    char *title_para;        /* text of the first Title paragraph */
    char *first_h1;
    int oom;
} office;

static void buf_add(office *o, char **b, size_t *len, size_t *cap,
                    const char *s, size_t n)
{
    if (o->oom)
        return;
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        while (nc < *len + n + 1)
            nc *= 2;
        char *nb = realloc(*b, nc);
        if (!nb) {
            o->oom = 1;
            return;
        }
        *b = nb;
        *cap = nc;
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
}

/* Paragraph text; whitespace runs become one space (collapse) or are kept
 * as they are. */
static void para_text(office *o, const char *s, int collapse)
{
    for (; *s; s++) {
        char c = *s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (collapse || c != ' ') {
                o->para_space = o->para_len > 0;
                continue;
            }
        }
        if (o->para_space && o->para_len)
            buf_add(o, &o->para, &o->para_len, &o->para_cap, " ", 1);
        o->para_space = 0;
        buf_add(o, &o->para, &o->para_len, &o->para_cap, &c, 1);
    }
}

static void para_break(office *o)
{
    if (o->para_len)
        buf_add(o, &o->para, &o->para_len, &o->para_cap, "\n", 1);
    o->para_space = 0;
}

/* The paragraph without surrounding whitespace; NULL when empty. */
static const char *para_trimmed(office *o, size_t *n)
{
    size_t a = 0, b = o->para_len;
    while (a < b && (o->para[a] == ' ' || o->para[a] == '\n'))
        a++;
    while (b > a && (o->para[b - 1] == ' ' || o->para[b - 1] == '\n'))
        b--;
    *n = b - a;
    return b > a ? o->para + a : NULL;
}

static void block_start(office *o, int kind)
{
    if (o->t.len) {
        int tight = (kind == BLOCK_LIST || kind == BLOCK_ROW) &&
                    kind == o->last_block;
        extract__text_append(&o->t, tight ? "\n" : "\n\n", tight ? 1 : 2);
    }
    o->last_block = kind;
}

static char *dup_n(office *o, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        o->oom = 1;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* End of a paragraph: heading (level > 0), list item (list_level > 0),
 * title, or plain paragraph; inside a table it joins the cell. */
static void para_end(office *o, int level, int list_level, int is_title)
{
    size_t n;
    const char *s = para_trimmed(o, &n);
    if (s && o->table_depth) {
        if (o->row_len && o->row[o->row_len - 1] != ' ')   /* 2nd paragraph */
            buf_add(o, &o->row, &o->row_len, &o->row_cap, " ", 1);
        for (size_t i = 0; i < n; i++)
            buf_add(o, &o->row, &o->row_len, &o->row_cap,
                    s[i] == '\n' ? " " : s + i, 1);
    } else if (s && level > 0) {
        level = level > 6 ? 6 : level;
        block_start(o, BLOCK_PARA);
        size_t line = o->t.len;
        extract__text_append(&o->t, "######", (size_t)level);
        extract__text_append(&o->t, " ", 1);
        size_t title = o->t.len;
        for (size_t i = 0; i < n; i++)
            extract__text_append(&o->t, s[i] == '\n' ? " " : s + i, 1);
        extract__text_heading(&o->t, line, o->t.len, title, o->t.len, level);
        if (level == 1 && !o->first_h1)
            o->first_h1 = dup_n(o, s, n);
    } else if (s && list_level > 0) {
        block_start(o, BLOCK_LIST);
        for (int i = 1; i < list_level && i < 10; i++)
            extract__text_append(&o->t, "  ", 2);
        extract__text_append(&o->t, "- ", 2);
        extract__text_append(&o->t, s, n);
    } else if (s) {
        block_start(o, BLOCK_PARA);
        extract__text_append(&o->t, s, n);
        if (is_title && !o->title_para)
            o->title_para = dup_n(o, s, n);
    }
    o->para_len = 0;
    o->para_space = 0;
}

static void cell_end(office *o)
{
    /* empty cells leave no " |  | " behind */
    if (o->row_len && !(o->row_len >= 3 &&
                        memcmp(o->row + o->row_len - 3, " | ", 3) == 0))
        buf_add(o, &o->row, &o->row_len, &o->row_cap, " | ", 3);
    o->row_cells++;
}

static void row_end(office *o)
{
    /* drop the last " | " and empty cells at the end */
    while (o->row_len >= 3 && memcmp(o->row + o->row_len - 3, " | ", 3) == 0)
        o->row_len -= 3;
    size_t a = 0;
    while (a + 3 <= o->row_len && memcmp(o->row + a, " | ", 3) == 0)
        a += 3;
    if (o->row_len > a && o->table_depth == 1) {
        block_start(o, BLOCK_ROW);
        extract__text_append(&o->t, o->row + a, o->row_len - a);
    }
    if (o->table_depth == 1) {
        o->row_len = 0;
        o->row_cells = 0;
    }
}

static void table_end(office *o)
{
    if (o->table_depth == 1)
        o->last_block = BLOCK_PARA;    /* the next table starts apart */
    if (o->table_depth > 0)
        o->table_depth--;
}

/* The current text node into the paragraph. */
static void reader_text(office *o, xmlTextReaderPtr r, int collapse)
{
    const xmlChar *v = xmlTextReaderConstValue(r);
    if (v)
        para_text(o, (const char *)v, collapse);
}

/* ---- the zip ----------------------------------------------------------- */

typedef struct part {
    zip_file_t *f;
    const char *name;
    size_t read, limit;
    int over;
} part;

static int part_read(void *ctx, char *buf, int len)
{
    part *p = ctx;
    zip_int64_t got = zip_fread(p->f, buf, (zip_uint64_t)len);
    if (got < 0)
        return -1;
    p->read += (size_t)got;
    if (p->read > p->limit) {
        p->over = 1;
        return -1;
    }
    return (int)got;
}

static int part_close(void *ctx)
{
    (void)ctx;
    return 0;
}

/* Open entry `name` for reading after the bomb checks.  *present = 0 (and
 * LODE_OK) when there is no such entry. */
static int part_open(zip_t *z, const char *name, part *p, int *present,
                     lode_error *err)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    *present = 0;
    zip_int64_t i = zip_name_locate(z, name, 0);
    if (i < 0)
        return LODE_OK;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0)
        return lode_error_set(err, LODE_EFORMAT, "%s: %s", name,
                              zip_strerror(z));
    if ((st.valid & ZIP_STAT_SIZE) && st.size > EXTRACT_ZIP_MAX_BYTES)
        return lode_error_set(err, LODE_ELIMIT, "refused as a possible zip "
                              "bomb: %s would inflate to %llu bytes (limit "
                              "%zu MiB)", name, (unsigned long long)st.size,
                              EXTRACT_ZIP_MAX_BYTES >> 20);
    if ((st.valid & ZIP_STAT_SIZE) && (st.valid & ZIP_STAT_COMP_SIZE) &&
        st.size > (1u << 20) &&
        st.size / (st.comp_size ? st.comp_size : 1) > EXTRACT_ZIP_MAX_RATIO)
        return lode_error_set(err, LODE_ELIMIT, "refused as a possible zip "
                              "bomb: %s inflates %llu times (%llu bytes to "
                              "%llu; limit %d times)", name,
                              (unsigned long long)(st.size /
                                  (st.comp_size ? st.comp_size : 1)),
                              (unsigned long long)st.comp_size,
                              (unsigned long long)st.size,
                              EXTRACT_ZIP_MAX_RATIO);
    p->f = zip_fopen_index(z, (zip_uint64_t)i, 0);
    if (!p->f)
        return lode_error_set(err, LODE_EFORMAT, "%s: %s", name,
                              zip_strerror(z));
    p->limit = (st.valid & ZIP_STAT_SIZE) ? (size_t)st.size
                                          : EXTRACT_ZIP_MAX_BYTES;
    *present = 1;
    return LODE_OK;
}

static void part_close_file(part *p)
{
    if (p->f)
        zip_fclose(p->f);
    p->f = NULL;
}

/* A reader over the part, or NULL (out of memory). */
static xmlTextReaderPtr part_reader(part *p)
{
    return xmlReaderForIO(part_read, part_close, p, p->name, NULL,
                          XML_PARSE_NONET | XML_PARSE_NOERROR |
                          XML_PARSE_NOWARNING);
}

/* The error for a reader that returned -1 on `p`. */
static int part_error(part *p, xmlTextReaderPtr r, lode_error *err)
{
    if (p->over)
        return lode_error_set(err, LODE_ELIMIT, "refused as a possible zip "
                              "bomb: %s inflates to more than it declares",
                              p->name);
    return lode_error_set(err, LODE_EFORMAT, "%s is not well-formed XML "
                          "(damaged or truncated file?) near line %d",
                          p->name, r ? xmlTextReaderGetParserLineNumber(r)
                                     : 0);
}

/* After the read loop over a part (ret: the last xmlTextReaderRead):
 * the error if any; frees the reader and closes the part. */
static int part_finish(part *p, xmlTextReaderPtr r, int ret, office *o,
                       lode_error *err)
{
    int rc = LODE_OK;
    if (ret < 0)
        rc = part_error(p, r, err);
    else if (o->oom)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    xmlFreeTextReader(r);
    part_close_file(p);
    return rc;
}

/* ---- XML helpers ------------------------------------------------------- */

static const char *lname(xmlTextReaderPtr r)
{
    const xmlChar *n = xmlTextReaderConstLocalName(r);
    return n ? (const char *)n : "";
}

/* The attribute with local name `name` (any namespace), malloc'd by
 * libxml2 (xmlFree), or NULL. */
static char *attr(xmlTextReaderPtr r, const char *name)
{
    char *v = NULL;
    if (xmlTextReaderMoveToFirstAttribute(r) != 1)
        return NULL;
    do {
        if (strcmp(lname(r), name) == 0) {
            v = (char *)xmlTextReaderValue(r);
            break;
        }
    } while (xmlTextReaderMoveToNextAttribute(r) == 1);
    xmlTextReaderMoveToElement(r);
    return v;
}

static int attr_int(xmlTextReaderPtr r, const char *name, int fallback)
{
    char *v = attr(r, name);
    int n = v ? atoi(v) : fallback;
    xmlFree(v);
    return n;
}

/* The text content of the current element (e.g. dc:title), trimmed, or
 * NULL. */
static char *element_text(xmlTextReaderPtr r)
{
    xmlChar *c = xmlTextReaderReadString(r);
    if (!c)
        return NULL;
    char *s = (char *)c, *e = s + strlen(s);
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' ||
                     e[-1] == '\r'))
        e--;
    char *out = e > s ? strndup(s, (size_t)(e - s)) : NULL;
    xmlFree(c);
    return out;
}

/* The text of the first element named `elem` in part `name` (titles in
 * docProps/core.xml and meta.xml), or NULL. */
static char *part_first_text(zip_t *z, const char *name, const char *elem)
{
    part p;
    int present;
    lode_error ignored = {0};
    if (part_open(z, name, &p, &present, &ignored) || !present)
        return NULL;
    xmlTextReaderPtr r = part_reader(&p);
    char *out = NULL;
    while (r && !out && xmlTextReaderRead(r) == 1)
        if (xmlTextReaderNodeType(r) == XML_READER_TYPE_ELEMENT &&
            strcmp(lname(r), elem) == 0)
            out = element_text(r);
    if (r)
        xmlFreeTextReader(r);
    part_close_file(&p);
    return out;
}

/* ---- DOCX -------------------------------------------------------------- */

typedef struct docx_style {
    char *id, *based_on;
    int level;               /* 1..9 heading, 0 none, -1 unset */
    int title;
} docx_style;

typedef struct docx_styles {
    docx_style *v;
    size_t n, cap;
} docx_styles;

static void styles_free(docx_styles *s)
{
    for (size_t i = 0; i < s->n; i++) {
        xmlFree(s->v[i].id);
        xmlFree(s->v[i].based_on);
    }
    free(s->v);
}

static docx_style *style_find(docx_styles *s, const char *id)
{
    for (size_t i = 0; id && i < s->n; i++)
        if (s->v[i].id && strcmp(s->v[i].id, id) == 0)
            return &s->v[i];
    return NULL;
}

/* word/styles.xml: each paragraph style's heading level and title flag,
 * inherited through basedOn.  A missing or bad part gives no styles. */
static int read_styles(zip_t *z, docx_styles *s, lode_error *err)
{
    part p;
    int present;
    int rc = part_open(z, "word/styles.xml", &p, &present, err);
    if (rc || !present)
        return rc;
    xmlTextReaderPtr r = part_reader(&p);
    docx_style *cur = NULL;
    while (r && xmlTextReaderRead(r) == 1) {
        int type = xmlTextReaderNodeType(r);
        const char *n = lname(r);
        if (type == XML_READER_TYPE_END_ELEMENT && strcmp(n, "style") == 0) {
            cur = NULL;
        } else if (type != XML_READER_TYPE_ELEMENT) {
            continue;
        } else if (strcmp(n, "style") == 0) {
            if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 64;
                docx_style *nv = realloc(s->v, nc * sizeof *nv);
                if (!nv) {
                    rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
                    break;
                }
                s->v = nv;
                s->cap = nc;
            }
            cur = &s->v[s->n++];
            memset(cur, 0, sizeof *cur);
            cur->level = -1;
            cur->id = attr(r, "styleId");
            if (xmlTextReaderIsEmptyElement(r))
                cur = NULL;
        } else if (cur && strcmp(n, "name") == 0) {
            char *v = attr(r, "val");
            if (v && strncasecmp(v, "heading ", 8) == 0 && cur->level < 0)
                cur->level = atoi(v + 8);
            if (v && strcasecmp(v, "title") == 0)
                cur->title = 1;
            xmlFree(v);
        } else if (cur && strcmp(n, "basedOn") == 0) {
            cur->based_on = attr(r, "val");
        } else if (cur && strcmp(n, "outlineLvl") == 0) {
            int lvl = attr_int(r, "val", 9);
            cur->level = lvl >= 0 && lvl < 9 ? lvl + 1 : 0;
        }
    }
    if (r)
        xmlFreeTextReader(r);
    part_close_file(&p);
    /* inherit levels through basedOn (bounded: cycles are possible) */
    for (size_t i = 0; i < s->n; i++) {
        docx_style *st = &s->v[i];
        for (int hop = 0; st->level < 0 && hop < 16; hop++) {
            docx_style *b = style_find(s, st == &s->v[i] ? s->v[i].based_on
                                                         : st->based_on);
            if (!b)
                break;
            if (b->level >= 0)
                s->v[i].level = b->level;
            st = b;
        }
        if (s->v[i].level < 0)
            s->v[i].level = 0;
    }
    return rc;
}

static int docx_text(zip_t *z, office *o, lode_error *err)
{
    docx_styles styles = {0};
    int rc = read_styles(z, &styles, err);
    if (rc)
        return rc;
    part p;
    int present;
    if ((rc = part_open(z, "word/document.xml", &p, &present, err))) {
        styles_free(&styles);
        return rc;
    }
    if (!present) {
        styles_free(&styles);
        return lode_error_set(err, LODE_EFORMAT, "not a Word document: the "
                              "zip has no word/document.xml");
    }
    xmlTextReaderPtr r = part_reader(&p);
    if (!r) {
        part_close_file(&p);
        styles_free(&styles);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    int in_t = 0, level = 0, list = 0, title = 0, ret, skipped = 0;
    /* Read advances at the end of the body; a skipped subtree has
     * already advanced (xmlTextReaderNext). */
    for (ret = xmlTextReaderRead(r); ret == 1 && !o->oom;
         ret = skipped ? ret : xmlTextReaderRead(r)) {
        skipped = 0;
        int type = xmlTextReaderNodeType(r);
        const char *n = lname(r);
        if (type == XML_READER_TYPE_ELEMENT) {
            int empty = xmlTextReaderIsEmptyElement(r);
            if (strcmp(n, "Fallback") == 0 || strcmp(n, "instrText") == 0 ||
                strcmp(n, "delText") == 0) {
                ret = xmlTextReaderNext(r);  /* duplicates, field codes */
                skipped = 1;
                continue;
            }
            if (strcmp(n, "p") == 0) {
                level = list = title = 0;
                o->para_len = 0;
            } else if (strcmp(n, "t") == 0) {
                in_t = !empty;
            } else if (strcmp(n, "tab") == 0 && !o->table_depth) {
                para_text(o, " ", 1);
            } else if (strcmp(n, "br") == 0 || strcmp(n, "cr") == 0) {
                para_break(o);
            } else if (strcmp(n, "pStyle") == 0) {
                char *v = attr(r, "val");
                docx_style *st = style_find(&styles, v);
                if (st) {
                    level = st->level;
                    title = st->title;
                }
                xmlFree(v);
            } else if (strcmp(n, "outlineLvl") == 0) {
                int lvl = attr_int(r, "val", 9);
                level = lvl >= 0 && lvl < 9 ? lvl + 1 : 0;
            } else if (strcmp(n, "ilvl") == 0) {
                list = attr_int(r, "val", 0) + 1;
            } else if (strcmp(n, "numPr") == 0 && !list) {
                list = 1;
            } else if (strcmp(n, "tbl") == 0) {
                o->table_depth++;
            } else if (strcmp(n, "tc") == 0 && empty) {
                cell_end(o);
            } else if (strcmp(n, "tr") == 0 && empty) {
                row_end(o);
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (strcmp(n, "t") == 0)
                in_t = 0;
            else if (strcmp(n, "p") == 0)
                para_end(o, level, list, title);
            else if (strcmp(n, "tc") == 0)
                cell_end(o);
            else if (strcmp(n, "tr") == 0)
                row_end(o);
            else if (strcmp(n, "tbl") == 0)
                table_end(o);
        } else if ((type == XML_READER_TYPE_TEXT ||
                    type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) && in_t) {
            reader_text(o, r, 0);
        }
    }
    rc = part_finish(&p, r, ret, o, err);
    styles_free(&styles);
    return rc;
}

/* ---- ODT --------------------------------------------------------------- */

static int odt_text(zip_t *z, office *o, lode_error *err)
{
    part p;
    int present;
    int rc = part_open(z, "content.xml", &p, &present, err);
    if (rc)
        return rc;
    if (!present)
        return lode_error_set(err, LODE_EFORMAT, "not an OpenDocument file: "
                              "the zip has no content.xml");
    xmlTextReaderPtr r = part_reader(&p);
    if (!r) {
        part_close_file(&p);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    int in_para = 0, level = 0, list_depth = 0, title = 0, ret, skipped = 0;
    /* Read advances at the end of the body; a skipped subtree has
     * already advanced (xmlTextReaderNext). */
    for (ret = xmlTextReaderRead(r); ret == 1 && !o->oom;
         ret = skipped ? ret : xmlTextReaderRead(r)) {
        skipped = 0;
        int type = xmlTextReaderNodeType(r);
        const char *n = lname(r);
        if (type == XML_READER_TYPE_ELEMENT) {
            int empty = xmlTextReaderIsEmptyElement(r);
            if (strcmp(n, "note") == 0 || strcmp(n, "annotation") == 0 ||
                strcmp(n, "tracked-changes") == 0 ||
                strcmp(n, "covered-table-cell") == 0) {
                ret = xmlTextReaderNext(r);
                skipped = 1;
                continue;
            }
            if (strcmp(n, "p") == 0 || strcmp(n, "h") == 0) {
                if (in_para++ == 0) {
                    o->para_len = 0;
                    o->para_space = 0;
                    level = strcmp(n, "h") == 0
                                ? attr_int(r, "outline-level", 1) : 0;
                    if (strcmp(n, "h") == 0 && level < 1)
                        level = 1;
                    char *style = attr(r, "style-name");
                    title = style && strcasecmp(style, "title") == 0;
                    xmlFree(style);
                }
                if (empty && --in_para == 0)
                    para_end(o, level, list_depth, title);
            } else if (strcmp(n, "s") == 0 && in_para) {
                int c = attr_int(r, "c", 1);
                for (int i = 0; i < c && i < 1000; i++)
                    buf_add(o, &o->para, &o->para_len, &o->para_cap, " ", 1);
                o->para_space = 0;
            } else if (strcmp(n, "tab") == 0 && in_para) {
                para_text(o, " ", 1);
            } else if (strcmp(n, "line-break") == 0 && in_para) {
                para_break(o);
            } else if (strcmp(n, "list") == 0 && !empty) {
                list_depth++;
            } else if (strcmp(n, "table") == 0 && !empty) {
                o->table_depth++;
            } else if (strcmp(n, "table-cell") == 0 && empty) {
                cell_end(o);
            } else if (strcmp(n, "table-row") == 0 && empty) {
                row_end(o);
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if ((strcmp(n, "p") == 0 || strcmp(n, "h") == 0) && in_para &&
                --in_para == 0)
                para_end(o, level, list_depth, title);
            else if (strcmp(n, "list") == 0 && list_depth)
                list_depth--;
            else if (strcmp(n, "table-cell") == 0)
                cell_end(o);
            else if (strcmp(n, "table-row") == 0)
                row_end(o);
            else if (strcmp(n, "table") == 0)
                table_end(o);
        } else if ((type == XML_READER_TYPE_TEXT ||
                    type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE ||
                    type == XML_READER_TYPE_WHITESPACE) && in_para) {
            reader_text(o, r, 1);
        }
    }
    return part_finish(&p, r, ret, o, err);
}

/* ---- entry point ------------------------------------------------------- */

static int open_zip(const char *path, const char *data, size_t len,
                    zip_t **out, lode_error *err)
{
    int zerr = 0;
    zip_t *z = NULL;
    if (path) {
        z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    } else {
        zip_error_t ze;
        zip_error_init(&ze);
        zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
        if (src) {
            z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
            if (!z)
                zip_source_free(src);
        }
        zerr = zip_error_code_zip(&ze);
        zip_error_fini(&ze);
    }
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        int rc = lode_error_set(err, zerr == ZIP_ER_MEMORY ? LODE_ENOMEM
                                : zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ
                                ? LODE_EIO : LODE_EFORMAT,
                                "not a readable zip file (damaged or "
                                "truncated?): %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    zip_int64_t entries = zip_get_num_entries(z, 0);
    if (entries > EXTRACT_ZIP_MAX_ENTRIES) {
        zip_discard(z);
        return lode_error_set(err, LODE_ELIMIT, "refused as a possible zip "
                              "bomb: %lld entries (limit %d)",
                              (long long)entries, EXTRACT_ZIP_MAX_ENTRIES);
    }
    *out = z;
    return LODE_OK;
}

int extract__office(extract_format f, const char *path, const char *data,
                    size_t len, extract_doc *d, lode_error *err)
{
    zip_t *z = NULL;
    int rc = open_zip(path, data, len, &z, err);
    if (rc)
        return rc;
    office o = {0};
    rc = f == EXTRACT_DOCX ? docx_text(z, &o, err) : odt_text(z, &o, err);
    char *meta_title = rc ? NULL
                     : part_first_text(z, f == EXTRACT_DOCX
                                              ? "docProps/core.xml"
                                              : "meta.xml", "title");
    zip_discard(z);
    free(o.para);
    free(o.row);
    if (!rc && o.oom)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (!rc)
        rc = extract__text_finish(&o.t, d, err);
    else
        extract__text_free(&o.t);
    if (!rc) {
        d->title = meta_title ? meta_title
                 : o.title_para ? o.title_para : o.first_h1;
        if (d->title == o.title_para)
            o.title_para = NULL;
        if (d->title == o.first_h1)
            o.first_h1 = NULL;
        meta_title = NULL;
    }
    free(meta_title);
    free(o.title_para);
    free(o.first_h1);
    return rc;
}
