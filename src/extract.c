/* extract.c - documents from file bytes (see extract.h).
 *
 * HTML is walked iteratively (no recursion, so deeply nested markup cannot
 * exhaust the stack) into a text buffer that holds whitespace back as a
 * "pending break" of some strength (space < cell < line < paragraph) until
 * the next visible character, so markup never produces runs of blank
 * lines or leading/trailing whitespace.  Headings are written as "## " +
 * title on their own line and reported as chunk_headings; they are not
 * re-parsed from the text, so a paragraph that happens to start with '#'
 * stays a paragraph.
 */
#include "extract_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

static const struct {
    const char *ext;
    extract_format format;
} extensions[] = {
    {".md", EXTRACT_MARKDOWN},   {".markdown", EXTRACT_MARKDOWN},
    {".txt", EXTRACT_TEXT},      {".html", EXTRACT_HTML},
    {".htm", EXTRACT_HTML},      {".json", EXTRACT_JSON},
    {".jsonl", EXTRACT_JSONL},   {".pdf", EXTRACT_PDF},
    {".docx", EXTRACT_DOCX},     {".odt", EXTRACT_ODT},
};

static const struct {
    const char *type;
    extract_format format;
} content_types[] = {
    {"text/plain", EXTRACT_TEXT},
    {"text/markdown", EXTRACT_MARKDOWN},
    {"text/x-markdown", EXTRACT_MARKDOWN},
    {"text/html", EXTRACT_HTML},
    {"application/xhtml+xml", EXTRACT_HTML},
    {"application/json", EXTRACT_JSON},
    {"text/json", EXTRACT_JSON},
    {"application/x-ndjson", EXTRACT_JSONL},
    {"application/jsonl", EXTRACT_JSONL},
    {"application/x-jsonlines", EXTRACT_JSONL},
    {"application/jsonlines", EXTRACT_JSONL},
    {"application/pdf", EXTRACT_PDF},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml."
     "document", EXTRACT_DOCX},
    {"application/vnd.oasis.opendocument.text", EXTRACT_ODT},
};

extract_format extract_format_of_content_type(const char *content_type)
{
    if (!content_type)
        return EXTRACT_UNKNOWN;
    while (*content_type == ' ')
        content_type++;
    size_t n = strcspn(content_type, "; \t");
    for (size_t i = 0; i < sizeof content_types / sizeof *content_types; i++)
        if (strlen(content_types[i].type) == n &&
            strncasecmp(content_type, content_types[i].type, n) == 0)
            return content_types[i].format;
    return EXTRACT_UNKNOWN;
}

const char *extract_known_extensions(void)
{
    return ".md .markdown .txt .html .htm .json .jsonl .pdf .docx .odt";
}

int extract_is_binary(extract_format f)
{
    return f == EXTRACT_PDF || f == EXTRACT_DOCX || f == EXTRACT_ODT;
}

int extract_page_at(const extract_doc *d, size_t offset)
{
    if (!d->n_pages)
        return 0;
    size_t lo = 0, hi = d->n_pages;     /* last start <= offset */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->page_starts[mid] <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return (int)lo + 1;
}

extract_format extract_format_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return EXTRACT_UNKNOWN;
    for (size_t i = 0; i < sizeof extensions / sizeof *extensions; i++)
        if (strcasecmp(dot, extensions[i].ext) == 0)
            return extensions[i].format;
    return EXTRACT_UNKNOWN;
}


extract_format extract_format_for(const char *name, const char *content_type)
{
    extract_format f = name ? extract_format_of(name) : EXTRACT_UNKNOWN;
    return f != EXTRACT_UNKNOWN ? f : extract_format_of_content_type(content_type);
}

const char *extract_format_name(extract_format f)
{
    switch (f) {
    case EXTRACT_TEXT: return "text";
    case EXTRACT_MARKDOWN: return "markdown";
    case EXTRACT_HTML: return "html";
    case EXTRACT_JSON: return "json";
    case EXTRACT_JSONL: return "jsonl";
    case EXTRACT_PDF: return "pdf";
    case EXTRACT_DOCX: return "docx";
    case EXTRACT_ODT: return "odt";
    default: return "unknown";
    }
}

int extract_is_records(extract_format f)
{
    return f == EXTRACT_JSON || f == EXTRACT_JSONL;
}

int extract_check_utf8(const char *data, size_t len, lode_error *err)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        if (c == 0)
            return lode_error_set(err, LODE_EUTF8,
                                  "NUL byte at offset %zu (binary file?)", i);
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        if (i + n > len)
            goto bad;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += n;
    }
    return LODE_OK;
bad:
    return lode_error_set(err, LODE_EUTF8,
                          "invalid UTF-8 at byte offset %zu", i);
}

void extract_doc_clear(extract_doc *d)
{
    free(d->text);
    free(d->title);
    free(d->external_id);
    free(d->metadata_json);
    free(d->headings);
    free(d->page_starts);
    memset(d, 0, sizeof *d);
}

void extract_docs_free(extract_doc *docs, size_t n)
{
    if (!docs)
        return;
    for (size_t i = 0; i < n; i++)
        extract_doc_clear(&docs[i]);
    free(docs);
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- Markdown and plain text ------------------------------------------ */

static int extract_plain(int markdown, const char *data, size_t len,
                         extract_doc *d, lode_error *err)
{
    if (!(d->text = dup_range(data, len)))
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    d->len = len;
    if (!markdown)
        return LODE_OK;
    int rc = chunk_find_markdown_headings(d->text, len, &d->headings,
                                          &d->n_headings, err);
    if (rc)
        return rc;
    /* Title: the first level-1 heading, else the first heading. */
    const chunk_heading *t = NULL;
    for (size_t i = 0; i < d->n_headings; i++) {
        const chunk_heading *h = &d->headings[i];
        if (h->title_end == h->title_start)
            continue;
        if (!t || (h->level == 1 && t->level != 1))
            t = h;
        if (t->level == 1)
            break;
    }
    if (t && !(d->title = dup_range(d->text + t->title_start,
                                    t->title_end - t->title_start)))
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    return LODE_OK;
}

/* ---- HTML ------------------------------------------------------------- */

enum { PEND_NONE, PEND_SPACE, PEND_CELL, PEND_LINE, PEND_PARA };

typedef struct html_out {
    char *s;
    size_t len, cap;
    int pending;             /* PEND_* held back until the next text */
    size_t fresh;            /* drop pending spaces while len == fresh */
    int pre_depth;           /* inside <pre>: keep whitespace */
    int heading;             /* level of the open heading, or 0 */
    size_t before_heading, line_start, title_start;
    int cells;               /* cells so far in the current table row */
    chunk_heading *headings;
    size_t n_headings, headings_cap;
    char *first_h1;
    int oom;
} html_out;

static void out_bytes(html_out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t nc = o->cap ? o->cap : 4096;
        while (nc < o->len + n + 1)
            nc *= 2;
        char *ns = realloc(o->s, nc);
        if (!ns) {
            o->oom = 1;
            return;
        }
        o->s = ns;
        o->cap = nc;
    }
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void out_pending(html_out *o, int level)
{
    if (level > o->pending)
        o->pending = level;
}

/* Write the held-back break before the next visible text. */
static void out_flush(html_out *o)
{
    int p = o->pending;
    o->pending = PEND_NONE;
    if (o->len == 0 || o->len == o->fresh || p == PEND_NONE)
        return;
    if (o->heading)
        p = PEND_SPACE;      /* a heading stays on one line */
    static const char *const text[] = {"", " ", " | ", "\n", "\n\n"};
    out_bytes(o, text[p], strlen(text[p]));
}

static void out_text(html_out *o, const char *s)
{
    if (o->pre_depth) {
        if (*s) {
            out_flush(o);
            out_bytes(o, s, strlen(s));
        }
        return;
    }
    while (*s) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
            *s == '\f') {
            out_pending(o, PEND_SPACE);
            s++;
            continue;
        }
        size_t n = 0;
        while (s[n] && !(s[n] == ' ' || s[n] == '\t' || s[n] == '\n' ||
                         s[n] == '\r' || s[n] == '\f'))
            n++;
        out_flush(o);
        out_bytes(o, s, n);
        s += n;
    }
}

static int name_in(const char *name, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(name, *set) == 0)
            return 1;
    return 0;
}

static const char *const skipped[] = {
    "script", "style", "noscript", "template", "nav", "footer", "head",
    "iframe", "object", "svg", "canvas", "button", "select", NULL};
static const char *const blocks[] = {
    "p", "div", "section", "article", "main", "aside", "header", "ul", "ol",
    "dl", "table", "thead", "tbody", "tfoot", "blockquote", "figure",
    "figcaption", "form", "address", "details", "summary", "fieldset", "hr",
    "center", "caption", "body", "html", "menu", "hgroup", NULL};
static const char *const lines[] = {"li", "dt", "dd", "tr", "br", NULL};

static int heading_level(const char *name)
{
    if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && !name[2])
        return name[1] - '0';
    return 0;
}

/* Called on entering an element; returns whether to visit its children. */
static int html_enter(html_out *o, xmlNode *n)
{
    const char *name = (const char *)n->name;
    if (name_in(name, skipped) || xmlHasProp(n, (const xmlChar *)"hidden"))
        return 0;
    int level = heading_level(name);
    if (level && !o->heading) {
        out_pending(o, PEND_PARA);
        o->before_heading = o->len;
        out_flush(o);
        o->line_start = o->len;
        static const char hashes[] = "###### ";
        out_bytes(o, hashes + 6 - level, (size_t)level + 1);
        o->title_start = o->fresh = o->len;
        o->heading = level;
    } else if (strcmp(name, "pre") == 0) {
        out_pending(o, PEND_PARA);
        o->pre_depth++;
    } else if (name_in(name, blocks)) {
        out_pending(o, PEND_PARA);
    } else if (name_in(name, lines)) {
        out_pending(o, PEND_LINE);
        if (strcmp(name, "tr") == 0)
            o->cells = 0;
    } else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
        if (o->cells++ > 0)
            out_pending(o, PEND_CELL);
    }
    return 1;
}

static void html_leave(html_out *o, xmlNode *n)
{
    const char *name = (const char *)n->name;
    int level = heading_level(name);
    if (level && o->heading == level) {
        o->heading = 0;
        o->fresh = SIZE_MAX;
        o->pending = PEND_NONE;
        if (o->len == o->title_start) {      /* empty: drop the "## " */
            o->len = o->before_heading;
            if (o->s)
                o->s[o->len] = '\0';
        } else if (!o->oom) {
            if (o->n_headings == o->headings_cap) {
                size_t nc = o->headings_cap ? o->headings_cap * 2 : 16;
                chunk_heading *nh = realloc(o->headings, nc * sizeof *nh);
                if (!nh) {
                    o->oom = 1;
                    return;
                }
                o->headings = nh;
                o->headings_cap = nc;
            }
            chunk_heading h = {o->line_start, o->len, o->title_start, o->len,
                               level};
            o->headings[o->n_headings++] = h;
            if (level == 1 && !o->first_h1 &&
                !(o->first_h1 = dup_range(o->s + o->title_start,
                                          o->len - o->title_start)))
                o->oom = 1;
        }
        out_pending(o, PEND_PARA);
    } else if (strcmp(name, "pre") == 0) {
        o->pre_depth--;
        out_pending(o, PEND_PARA);
    } else if (name_in(name, blocks)) {
        out_pending(o, PEND_PARA);
    } else if (name_in(name, lines)) {
        out_pending(o, PEND_LINE);
    }
}

static void html_walk(html_out *o, xmlNode *root)
{
    xmlNode *top = root->parent, *n = root;
    while (n) {
        int descend = 0;
        if (n->type == XML_ELEMENT_NODE)
            descend = html_enter(o, n);
        else if ((n->type == XML_TEXT_NODE ||
                  n->type == XML_CDATA_SECTION_NODE) && n->content)
            out_text(o, (const char *)n->content);
        if (descend && n->children) {
            n = n->children;
            continue;
        }
        if (descend)
            html_leave(o, n);
        while (n && !n->next && n != root) {
            n = n->parent;
            if (n == top) {
                n = NULL;
                break;
            }
            html_leave(o, n);
        }
        n = n && n != root ? n->next : NULL;
    }
}

/* The text of <title>, whitespace collapsed, or NULL. */
static char *html_title(xmlNode *root)
{
    for (xmlNode *h = root->children; h; h = h->next) {
        if (h->type != XML_ELEMENT_NODE || strcmp((const char *)h->name, "head"))
            continue;
        for (xmlNode *t = h->children; t; t = t->next) {
            if (t->type != XML_ELEMENT_NODE ||
                strcmp((const char *)t->name, "title"))
                continue;
            xmlChar *c = xmlNodeGetContent(t);
            if (!c)
                return NULL;
            html_out o = {0};
            out_text(&o, (const char *)c);
            xmlFree(c);
            if (o.oom || o.len == 0) {
                free(o.s);
                return NULL;
            }
            return o.s;
        }
    }
    return NULL;
}

static int extract_html(const char *data, size_t len, extract_doc *d,
                        lode_error *err)
{
    if (len > INT32_MAX)
        return lode_error_set(err, LODE_ELIMIT, "HTML file over 2 GiB");
    htmlDocPtr doc = htmlReadMemory(data, (int)len, NULL, "UTF-8",
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                    HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    html_out o = {0};
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (root) {
        d->title = html_title(root);
        html_walk(&o, root);
    }
    if (doc)
        xmlFreeDoc(doc);
    if (o.oom) {
        free(o.s);
        free(o.headings);
        free(o.first_h1);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    if (!o.s && !(o.s = calloc(1, 1))) {
        free(o.headings);
        free(o.first_h1);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    d->text = o.s;
    d->len = o.len;
    d->headings = o.headings;
    d->n_headings = o.n_headings;
    if (!d->title)
        d->title = o.first_h1;
    else
        free(o.first_h1);
    return LODE_OK;
}

/* ---- JSON records ----------------------------------------------------- */

static int is_meta_value(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

/* `unit` names `number` in messages: "record" (.json) or "line". */
static int record_to_doc(const json_t *rec, const extract_options *o,
                         const char *unit, size_t number, extract_doc *d,
                         lode_error *err)
{
    const char *text_field = o && o->text_field ? o->text_field : "text";
    const char *id_field = o && o->id_field ? o->id_field : "id";
    const char *title_field = o && o->title_field ? o->title_field : "title";
    d->record = number;
    if (!json_is_object(rec))
        return lode_error_set(err, LODE_EFORMAT, "%s %zu is not an object",
                              unit, number);
    json_t *text = json_object_get(rec, text_field);
    if (!json_is_string(text))
        return lode_error_set(err, LODE_EFORMAT,
                              "%s %zu: field \"%s\" is %s", unit, number,
                              text_field, text ? "not a string" : "missing");
    d->len = json_string_length(text);
    if (!(d->text = dup_range(json_string_value(text), d->len)))
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    json_t *id = json_object_get(rec, id_field);
    if (json_is_string(id)) {
        d->external_id = strdup(json_string_value(id));
    } else if (json_is_integer(id)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(id));
        d->external_id = strdup(buf);
    } else if (id && !json_is_null(id)) {
        return lode_error_set(err, LODE_EFORMAT,
                              "%s %zu: id field \"%s\" is neither a "
                              "string nor an integer", unit, number,
                              id_field);
    }
    if (id && !json_is_null(id) && !d->external_id)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    json_t *title = json_object_get(rec, title_field);
    if (json_is_string(title) && json_string_length(title) &&
        !(d->title = strdup(json_string_value(title))))
        return lode_error_set(err, LODE_ENOMEM, "out of memory");

    json_t *meta = json_object();
    if (!meta)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (o && o->meta_fields) {
        for (size_t i = 0; i < o->n_meta_fields; i++) {
            json_t *v = json_object_get(rec, o->meta_fields[i]);
            if (v && (is_meta_value(v) || json_is_null(v)))
                json_object_set(meta, o->meta_fields[i], v);
        }
    } else {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)rec, key, v) {
            if (strcmp(key, text_field) && strcmp(key, id_field) &&
                strcmp(key, title_field) && is_meta_value(v))
                json_object_set(meta, key, v);
        }
    }
    if (json_object_size(meta)) {
        d->metadata_json = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
        if (!d->metadata_json) {
            json_decref(meta);
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        }
    }
    json_decref(meta);
    return LODE_OK;
}

static int extract_records(extract_format f, const char *data, size_t len,
                           const extract_options *o, extract_doc **docs,
                           size_t *n, lode_error *err)
{
    size_t cap = 0;
    int rc = LODE_OK;
    json_error_t jerr;
    if (f == EXTRACT_JSON) {
        json_t *root = json_loadb(data, len, 0, &jerr);
        if (!root)
            return lode_error_set(err, LODE_EFORMAT,
                                  "invalid JSON at line %d column %d: %s",
                                  jerr.line, jerr.column, jerr.text);
        size_t count = json_is_array(root) ? json_array_size(root) : 1;
        if (count && !(*docs = calloc(count, sizeof **docs))) {
            json_decref(root);
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < count && !rc; i++) {
            json_t *rec = json_is_array(root) ? json_array_get(root, i) : root;
            rc = record_to_doc(rec, o, "record", i + 1, &(*docs)[i], err);
            (*n)++;
        }
        json_decref(root);
        return rc;
    }
    size_t line_no = 0;
    for (size_t pos = 0; pos < len && !rc;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        line_no++;
        size_t s = pos;
        while (s < end && isspace((unsigned char)data[s]))
            s++;
        size_t line_start = pos;
        pos = nl ? end + 1 : len;
        if (s == end)
            continue;
        json_t *rec = json_loadb(data + line_start, end - line_start, 0, &jerr);
        if (!rec)
            return lode_error_set(err, LODE_EFORMAT,
                                  "line %zu: invalid JSON at column %d: %s",
                                  line_no, jerr.column, jerr.text);
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            extract_doc *nd = realloc(*docs, nc * sizeof *nd);
            if (!nd) {
                json_decref(rec);
                return lode_error_set(err, LODE_ENOMEM, "out of memory");
            }
            memset(nd + cap, 0, (nc - cap) * sizeof *nd);
            *docs = nd;
            cap = nc;
        }
        rc = record_to_doc(rec, o, "line", line_no, &(*docs)[(*n)++], err);
        json_decref(rec);
    }
    return rc;
}

static int extract_binary(extract_format f, const char *path,
                          const char *data, size_t len, extract_doc **docs,
                          size_t *n, lode_error *err);

int extract_buffer(extract_format f, const char *data, size_t len,
                   const extract_options *opts, extract_doc **docs,
                   size_t *n, lode_error *err)
{
    *docs = NULL;
    *n = 0;
    if (f == EXTRACT_UNKNOWN || f > EXTRACT_ODT)
        return lode_error_set(err, LODE_EUNSUPPORTED, "unknown file format");
    if (extract_is_binary(f))
        return extract_binary(f, NULL, data, len, docs, n, err);
    int rc = extract_check_utf8(data, len, err);
    if (rc)
        return rc;
    if (extract_is_records(f)) {
        rc = extract_records(f, data, len, opts, docs, n, err);
    } else {
        if (!(*docs = calloc(1, sizeof **docs)))
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        *n = 1;
        rc = f == EXTRACT_HTML ? extract_html(data, len, *docs, err)
                               : extract_plain(f == EXTRACT_MARKDOWN, data,
                                               len, *docs, err);
    }
    if (rc) {
        extract_docs_free(*docs, *n);
        *docs = NULL;
        *n = 0;
    }
    return rc;
}

/* One document of a binary format, from a path or (path NULL) bytes. */
static int extract_binary(extract_format f, const char *path,
                          const char *data, size_t len, extract_doc **docs,
                          size_t *n, lode_error *err)
{
    if (!(*docs = calloc(1, sizeof **docs)))
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    *n = 1;
    int rc;
    if (f == EXTRACT_PDF)
        rc = path ? extract__pdf_file(path, *docs, err)
                  : extract__pdf_buffer(data, len, *docs, err);
    else
        rc = extract__office(f, path, data, len, *docs, err);
    if (!rc)
        rc = extract__clean_text(*docs, err);
    if (rc) {
        extract_docs_free(*docs, *n);
        *docs = NULL;
        *n = 0;
    }
    return rc;
}

int extract_file(extract_format f, const char *path,
                 const extract_options *opts, extract_doc **docs, size_t *n,
                 lode_error *err)
{
    *docs = NULL;
    *n = 0;
    if (f == EXTRACT_UNKNOWN || f > EXTRACT_ODT)
        return lode_error_set(err, LODE_EUNSUPPORTED, "unknown file format");
    if (extract_is_binary(f))
        return extract_binary(f, path, NULL, 0, docs, n, err);
    char *data;
    size_t len;
    int rc = extract_read_file(path, &data, &len, err);
    if (rc)
        return rc;
    rc = extract_buffer(f, data, len, opts, docs, n, err);
    free(data);
    return rc;
}
