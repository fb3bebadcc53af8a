/* test_extract.c - text extraction: formats by extension, the UTF-8
 * policy, Markdown and plain text as is, HTML boilerplate removal,
 * structure and headings, JSON and JSONL records with their fields, and
 * clear errors (never a crash) for malformed input; DOCX and ODT
 * (zips written here with libzip): paragraphs, styles and outline levels
 * as headings, lists, tables, skipped parts, damaged files; page lookup
 * and the UTF-8 cleaning of extracted text. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zip.h>

#include "extract_int.h"
#include "test.h"

static int extract(extract_format f, const char *s, const extract_options *o,
                   extract_doc **docs, size_t *n, lode_error *err)
{
    return extract_buffer(f, s, strlen(s), o, docs, n, err);
}

static void test_formats(void)
{
    CHECK(extract_format_of("a/b.md") == EXTRACT_MARKDOWN, "md");
    CHECK(extract_format_of("X.MARKDOWN") == EXTRACT_MARKDOWN, "MARKDOWN");
    CHECK(extract_format_of("notes.txt") == EXTRACT_TEXT, "txt");
    CHECK(extract_format_of("p.HTM") == EXTRACT_HTML, "HTM");
    CHECK(extract_format_of("p.html") == EXTRACT_HTML, "html");
    CHECK(extract_format_of("r.json") == EXTRACT_JSON, "json");
    CHECK(extract_format_of("r.jsonl") == EXTRACT_JSONL, "jsonl");
    CHECK(extract_format_of("a.md/file") == EXTRACT_UNKNOWN, "dir ext");
    CHECK(extract_format_of(".md") == EXTRACT_UNKNOWN, "hidden, no ext");
    CHECK(extract_format_of("image.png") == EXTRACT_UNKNOWN, "png");
    CHECK(extract_format_of("README") == EXTRACT_UNKNOWN, "no ext");
}

static void test_utf8(void)
{
    lode_error err = {0};
    const char *ok = "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80";
    CHECK(extract_check_utf8(ok, strlen(ok), &err) == 0, "valid");
    const char *bad[] = {"ab\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe4\xb8",
                         "\xf4\x90\x80\x80", "x\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(extract_check_utf8(bad[i], strlen(bad[i]), &err) == LODE_EUTF8,
              "invalid %zu", i);
    CHECK(extract_check_utf8("ab\xff", 3, &err) == LODE_EUTF8 &&
              strstr(err.message, "offset 2"),
          "offset named: %s", err.message);
    CHECK(extract_check_utf8("a\0b", 3, &err) == LODE_EUTF8 &&
              strstr(err.message, "NUL"),
          "NUL refused: %s", err.message);
    extract_doc *d;
    size_t n;
    CHECK(extract_buffer(EXTRACT_MARKDOWN, "# x\n\xfe", 5, NULL, &d, &n,
                         &err) == LODE_EUTF8 && d == NULL && n == 0,
          "invalid file refused");
    CHECK(extract_buffer(EXTRACT_HTML, "<p>\xfe</p>", 8, NULL, &d, &n,
                         &err) == LODE_EUTF8, "invalid HTML refused");
}

static void test_plain(void)
{
    extract_doc *d;
    size_t n;
    lode_error err = {0};
    const char *md = "Intro\n## Second\ntext\n# First Title #\nmore\n";
    CHECK(extract(EXTRACT_MARKDOWN, md, NULL, &d, &n, &err) == 0 && n == 1,
          "md: %s", err.message);
    if (n == 1) {
        CHECK(d->len == strlen(md) && !strcmp(d->text, md), "md text as is");
        CHECK(d->n_headings == 2, "md headings %zu", d->n_headings);
        CHECK(d->title && !strcmp(d->title, "First Title"),
              "md title is the first h1: %s", d->title ? d->title : "(null)");
        CHECK(!d->external_id && !d->metadata_json && d->record == 0,
              "md fields");
    }
    extract_docs_free(d, n);
    CHECK(extract(EXTRACT_TEXT, "# not a heading\n", NULL, &d, &n, &err) == 0 &&
              n == 1 && d->n_headings == 0 && !d->title,
          "txt has no headings");
    extract_docs_free(d, n);
    CHECK(extract(EXTRACT_TEXT, "", NULL, &d, &n, &err) == 0 && n == 1 &&
              d->len == 0 && d->text && d->text[0] == '\0',
          "empty txt");
    extract_docs_free(d, n);
}

static const char *html_page =
    "<!doctype html><html><head><title> Benefits\n  Overview </title>"
    "<style>body { color: red }</style>"
    "<script>var secret = 'SCRIPT';</script></head>"
    "<body><nav><a href='/'>Home NAV</a></nav>"
    "<div id=content><h1>Benefits <em>Overview</em></h1>"
    "<p>First   paragraph\n with   spaces &amp; an entity.</p>"
    "<p># not a heading</p>"
    "<h2>Health</h2><ul><li>one</li><li>two</li></ul>"
    "<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>"
    "<pre>  keep\n    this</pre>"
    "<h3>  </h3>"
    "<p hidden>HIDDEN</p><noscript>NOSCRIPT</noscript>"
    "<p>Line<br>break</p></div>"
    "<script>alert('SCRIPT2')</script>"
    "<footer>FOOTER &copy; 2024</footer></body></html>";

static void test_html(void)
{
    extract_doc *d;
    size_t n;
    lode_error err = {0};
    CHECK(extract(EXTRACT_HTML, html_page, NULL, &d, &n, &err) == 0 && n == 1,
          "html: %s", err.message);
    if (n != 1)
        return;
    const char *want = "# Benefits Overview\n\n"
                       "First paragraph with spaces & an entity.\n\n"
                       "# not a heading\n\n"
                       "## Health\n\n"
                       "one\ntwo\n\n"
                       "A | B\n1 | 2\n\n"
                       "  keep\n    this\n\n"
                       "Line\nbreak";
    CHECK(!strcmp(d->text, want) && d->len == strlen(want),
          "html text:\n---\n%s\n---", d->text);
    const char *gone[] = {"SCRIPT", "color", "NAV", "FOOTER", "HIDDEN",
                          "NOSCRIPT", "secret"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        CHECK(!strstr(d->text, gone[i]), "html kept %s", gone[i]);
    CHECK(d->title && !strcmp(d->title, "Benefits Overview"),
          "html title '%s'", d->title ? d->title : "(null)");
    CHECK(d->n_headings == 2, "html headings %zu", d->n_headings);
    if (d->n_headings == 2) {
        const chunk_heading *h = d->headings;
        CHECK(h[0].level == 1 && h[0].line_start == 0 &&
                  !strncmp(d->text + h[0].title_start, "Benefits Overview",
                           h[0].title_end - h[0].title_start) &&
                  h[0].title_end - h[0].title_start == 17,
              "h1 span");
        CHECK(h[1].level == 2 &&
                  !strncmp(d->text + h[1].line_start, "## Health",
                           h[1].line_end - h[1].line_start),
              "h2 span");
    }
    extract_docs_free(d, n);

    /* No <title>: the first h1. */
    CHECK(extract(EXTRACT_HTML, "<h2>x</h2><h1>Main</h1><p>t</p>", NULL, &d,
                  &n, &err) == 0 && d->title && !strcmp(d->title, "Main"),
          "title from h1");
    extract_docs_free(d, n);
    /* Fragments, junk and empty input never crash. */
    const char *junk[] = {"", "plain text, no tags", "<p>unclosed <b>bold",
                          "<<<>>>&&&;", "<html><head></head></html>",
                          "</p></div></body>"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        CHECK(extract(EXTRACT_HTML, junk[i], NULL, &d, &n, &err) == 0 &&
                  n == 1 && d->text,
              "junk %zu: %s", i, err.message);
        extract_docs_free(d, n);
    }
    /* Deep nesting: no recursion to overflow. */
    size_t depth = 100000;
    char *deep = malloc(depth * 11 + 16);
    size_t len = 0;
    for (size_t i = 0; i < depth; i++)
        len += (size_t)sprintf(deep + len, "<div>");
    len += (size_t)sprintf(deep + len, "deep");
    deep[len] = '\0';
    CHECK(extract(EXTRACT_HTML, deep, NULL, &d, &n, &err) == 0 && n == 1,
          "deep nesting: %s", err.message);
    extract_docs_free(d, n);
    free(deep);
}

static void test_records(void)
{
    extract_doc *d;
    size_t n;
    lode_error err = {0};
    const char *json =
        "[{\"id\": \"a1\", \"text\": \"First record\", \"title\": \"T1\","
        "  \"lang\": \"en\", \"year\": 2024, \"ok\": true, \"tags\": [1]},"
        " {\"id\": 7, \"text\": \"Second\", \"lang\": \"pt\"},"
        " {\"text\": \"No id\"}]";
    CHECK(extract(EXTRACT_JSON, json, NULL, &d, &n, &err) == 0 && n == 3,
          "json: %s", err.message);
    if (n == 3) {
        CHECK(!strcmp(d[0].text, "First record") && !strcmp(d[0].external_id, "a1") &&
                  !strcmp(d[0].title, "T1") && d[0].record == 1,
              "record 1 fields");
        CHECK(d[0].metadata_json &&
                  !strcmp(d[0].metadata_json,
                          "{\"lang\":\"en\",\"ok\":true,\"year\":2024}"),
              "default metadata: %s", d[0].metadata_json);
        CHECK(!strcmp(d[1].external_id, "7") && !d[1].title, "integer id");
        CHECK(!d[2].external_id && !d[2].metadata_json && d[2].record == 3,
              "no id");
    }
    extract_docs_free(d, n);

    const char *fields[] = {"year", "missing"};
    extract_options o = {.text_field = "body", .id_field = "key",
                         .meta_fields = fields, .n_meta_fields = 2};
    const char *jsonl = "{\"key\": \"k1\", \"body\": \"Hello\", \"year\": 1,"
                        " \"lang\": \"en\"}\n"
                        "\n"
                        "   \n"
                        "{\"key\": \"k2\", \"body\": \"World\"}\n";
    CHECK(extract(EXTRACT_JSONL, jsonl, &o, &d, &n, &err) == 0 && n == 2,
          "jsonl: %s", err.message);
    if (n == 2) {
        CHECK(!strcmp(d[0].text, "Hello") && !strcmp(d[0].external_id, "k1") &&
                  !strcmp(d[0].metadata_json, "{\"year\":1}"),
              "chosen fields: %s", d[0].metadata_json);
        CHECK(!strcmp(d[1].external_id, "k2") && d[1].record == 4 &&
                  !d[1].metadata_json,
              "line numbers count blank lines");
    }
    extract_docs_free(d, n);

    CHECK(extract(EXTRACT_JSON, "{\"text\": \"single\"}", NULL, &d, &n, &err) ==
              0 && n == 1, "a single object");
    extract_docs_free(d, n);
    CHECK(extract(EXTRACT_JSON, "[]", NULL, &d, &n, &err) == 0 && n == 0,
          "empty array");
    extract_docs_free(d, n);

    struct {
        extract_format f;
        const char *text, *msg;
    } bad[] = {
        {EXTRACT_JSON, "[{\"text\": 1}]", "record 1: field \"text\" is not a string"},
        {EXTRACT_JSON, "[{\"text\": \"a\"}, {\"x\": 1}]", "record 2: field \"text\" is missing"},
        {EXTRACT_JSON, "[1]", "record 1 is not an object"},
        {EXTRACT_JSON, "[{\"text\": \"a\"", "invalid JSON"},
        {EXTRACT_JSON, "", "invalid JSON"},
        {EXTRACT_JSON, "[{\"text\": \"a\", \"id\": 1.5}]", "neither a string nor an integer"},
        {EXTRACT_JSON, "[{\"text\": \"a\\u0000b\"}]", "invalid JSON"},
        {EXTRACT_JSONL, "{\"text\": \"a\"}\n{bad}\n", "line 2"},
        {EXTRACT_JSONL, "{\"text\": \"a\"}\n[]\n", "line 2 is not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = extract(bad[i].f, bad[i].text, NULL, &d, &n, &err);
        CHECK(rc == LODE_EFORMAT && strstr(err.message, bad[i].msg) && !d &&
                  n == 0,
              "bad %zu: rc %d, '%s' lacks '%s'", i, rc, err.message,
              bad[i].msg);
    }
    CHECK(extract(EXTRACT_UNKNOWN, "x", NULL, &d, &n, &err) == LODE_EUNSUPPORTED,
          "unknown format");
}

/* ---- binary formats ----------------------------------------------------- */

static void test_pages_and_types(void)
{
    size_t starts[] = {0, 10, 10, 25};
    extract_doc d = {.page_starts = starts, .n_pages = 4, .len = 30};
    CHECK(extract_page_at(&d, 0) == 1 && extract_page_at(&d, 9) == 1, "p1");
    CHECK(extract_page_at(&d, 10) == 3, "empty page 2 holds nothing: %d",
          extract_page_at(&d, 10));
    CHECK(extract_page_at(&d, 29) == 4, "last page");
    extract_doc none = {0};
    CHECK(extract_page_at(&none, 5) == 0, "no pages");
    CHECK(extract_format_of("a.PDF") == EXTRACT_PDF, "pdf");
    CHECK(extract_format_of("a.docx") == EXTRACT_DOCX, "docx");
    CHECK(extract_format_of("a.odt") == EXTRACT_ODT, "odt");
    CHECK(extract_format_of_content_type("application/pdf") == EXTRACT_PDF,
          "pdf type");
    CHECK(extract_format_of_content_type(
              "application/vnd.openxmlformats-officedocument."
              "wordprocessingml.document") == EXTRACT_DOCX, "docx type");
    CHECK(extract_format_of_content_type(
              "application/vnd.oasis.opendocument.text") == EXTRACT_ODT,
          "odt type");
    CHECK(extract_format_of_content_type("text/markdown; charset=utf-8") ==
              EXTRACT_MARKDOWN, "params ignored");
    CHECK(extract_format_of_content_type("image/png") == EXTRACT_UNKNOWN,
          "png type");
    CHECK(extract_is_binary(EXTRACT_PDF) && !extract_is_binary(EXTRACT_HTML),
          "binary");
}

static void test_clean_text(void)
{
    /* "ab\xff" "cd" NUL "ef": the bad byte becomes U+FFFD, NUL goes; the
     * heading on "ef" and the page start before "cd" move with them. */
    extract_doc d = {0};
    d.len = 8;
    d.text = malloc(9);
    memcpy(d.text, "ab\xff" "cd\0ef", 9);
    d.n_pages = 2;
    d.page_starts = malloc(2 * sizeof *d.page_starts);
    d.page_starts[0] = 0;
    d.page_starts[1] = 3;
    d.n_headings = 1;
    d.headings = malloc(sizeof *d.headings);
    d.headings[0] = (chunk_heading){6, 8, 6, 8, 1};
    lode_error err = {0};
    CHECK(extract__clean_text(&d, &err) == 0, "clean: %s", err.message);
    CHECK(d.len == 9 && memcmp(d.text, "ab\xef\xbf\xbd" "cdef", 9) == 0,
          "cleaned text");
    CHECK(d.page_starts[1] == 5, "page start moved: %zu", d.page_starts[1]);
    CHECK(d.headings[0].line_start == 7 && d.headings[0].title_end == 9,
          "heading moved: %zu", d.headings[0].line_start);
    extract_doc_clear(&d);
}

/* A zip of (name, content) pairs in memory, written through libzip. */
static char *make_zip(const char *const *files, size_t n, size_t *len)
{
    char path[] = "/tmp/lode-test-zip-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, NULL);
    for (size_t i = 0; z && i < n; i++) {
        zip_source_t *src = zip_source_buffer(z, files[2 * i + 1],
                                              strlen(files[2 * i + 1]), 0);
        zip_file_add(z, files[2 * i], src, ZIP_FL_OVERWRITE);
    }
    if (z)
        zip_close(z);
    char *data = NULL;
    lode_error err = {0};
    extract_read_file(path, &data, len, &err);
    unlink(path);
    return data;
}

#define W_NS "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""

static void test_docx(void)
{
    const char *doc =
        "<w:document " W_NS "><w:body>"
        "<w:p><w:pPr><w:outlineLvl w:val=\"0\"/></w:pPr>"
        "<w:r><w:t>Intro</w:t></w:r><w:r><w:t xml:space=\"preserve\"> part</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>First</w:t><w:br/><w:t>line two</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val=\"Sub\"/></w:pPr><w:r><w:t>Deeper</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"1\"/></w:numPr></w:pPr>"
        "<w:r><w:t>nested item</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>b</w:t></w:r></w:p></w:tc><w:tc/>"
        "<w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        "<w:p><w:r><w:delText>gone</w:delText><w:instrText>PAGE</w:instrText>"
        "<w:t>kept</w:t></w:r></w:p>"
        "</w:body></w:document>";
    const char *styles =
        "<w:styles " W_NS "><w:style w:type=\"paragraph\" w:styleId=\"H\">"
        "<w:name w:val=\"heading 1\"/></w:style>"
        "<w:style w:type=\"paragraph\" w:styleId=\"Sub\"><w:name w:val=\"Sub\"/>"
        "<w:basedOn w:val=\"H2\"/></w:style>"
        "<w:style w:type=\"paragraph\" w:styleId=\"H2\"><w:name w:val=\"heading 2\"/>"
        "</w:style></w:styles>";
    const char *files[] = {"word/document.xml", doc, "word/styles.xml", styles};
    size_t len;
    char *zip = make_zip(files, 2, &len);
    CHECK(zip != NULL, "zip written");
    extract_doc *d = NULL;
    size_t n = 0;
    lode_error err = {0};
    int rc = extract_buffer(EXTRACT_DOCX, zip, len, NULL, &d, &n, &err);
    CHECK(rc == 0 && n == 1, "docx: %d %s", rc, err.message);
    if (rc == 0) {
        const char *want = "# Intro part\n\nFirst\nline two\n\n## Deeper\n\n"
                           "  - nested item\n\na b | c\n\nkept";
        CHECK(strcmp(d->text, want) == 0, "docx text:\n%s", d->text);
        CHECK(d->n_headings == 2 && d->headings[0].level == 1 &&
                  d->headings[1].level == 2, "docx headings %zu",
              d->n_headings);
        CHECK(d->title && strcmp(d->title, "Intro part") == 0,
              "title from the first h1: %s", d->title ? d->title : "(null)");
        CHECK(d->n_pages == 0, "no pages");
    }
    extract_docs_free(d, n);
    /* truncated: refused, no crash */
    rc = extract_buffer(EXTRACT_DOCX, zip, len / 2, NULL, &d, &n, &err);
    CHECK(rc == LODE_EFORMAT && strstr(err.message, "zip"), "cut: %d %s", rc,
          err.message);
    free(zip);
    /* no document part; bad XML */
    const char *other[] = {"a.txt", "x"};
    zip = make_zip(other, 1, &len);
    rc = extract_buffer(EXTRACT_DOCX, zip, len, NULL, &d, &n, &err);
    CHECK(rc == LODE_EFORMAT && strstr(err.message, "word/document.xml"),
          "no part: %s", err.message);
    rc = extract_buffer(EXTRACT_ODT, zip, len, NULL, &d, &n, &err);
    CHECK(rc == LODE_EFORMAT && strstr(err.message, "content.xml"),
          "no odt part: %s", err.message);
    free(zip);
    const char *broken[] = {"word/document.xml", "<w:document " W_NS "><w:p>"};
    zip = make_zip(broken, 1, &len);
    rc = extract_buffer(EXTRACT_DOCX, zip, len, NULL, &d, &n, &err);
    CHECK(rc == LODE_EFORMAT && strstr(err.message, "not well-formed"),
          "bad xml: %s", err.message);
    free(zip);
    rc = extract_buffer(EXTRACT_DOCX, "PK\x03\x04", 4, NULL, &d, &n, &err);
    CHECK(rc == LODE_EFORMAT, "four bytes: %d", rc);
}

static void test_odt(void)
{
    const char *content =
        "<office:document-content "
        "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
        "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" "
        "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\">"
        "<office:body><office:text>"
        "<text:h text:outline-level=\"2\">Setup  <text:span>steps</text:span></text:h>"
        "<text:p>one<text:s text:c=\"3\"/>two\n  three<text:note><text:note-body>"
        "<text:p>footnote</text:p></text:note-body></text:note></text:p>"
        "<text:list><text:list-item><text:p>x</text:p>"
        "<text:list><text:list-item><text:p>y</text:p></text:list-item></text:list>"
        "</text:list-item></text:list>"
        "<table:table><table:table-row><table:table-cell><text:p>1</text:p>"
        "</table:table-cell><table:covered-table-cell/><table:table-cell>"
        "<text:p>2</text:p></table:table-cell></table:table-row></table:table>"
        "</office:text></office:body></office:document-content>";
    const char *files[] = {"content.xml", content};
    size_t len;
    char *zip = make_zip(files, 1, &len);
    extract_doc *d = NULL;
    size_t n = 0;
    lode_error err = {0};
    int rc = extract_buffer(EXTRACT_ODT, zip, len, NULL, &d, &n, &err);
    CHECK(rc == 0, "odt: %s", err.message);
    if (rc == 0) {
        const char *want = "## Setup steps\n\none   two three\n\n- x\n  - y"
                           "\n\n1 | 2";
        CHECK(strcmp(d->text, want) == 0, "odt text:\n%s", d->text);
        CHECK(d->n_headings == 1 && d->headings[0].level == 2, "odt heading");
    }
    extract_docs_free(d, n);
    free(zip);
}

/* The PDF Info title as mutool prints it: literal strings with escapes,
 * nesting, octal and line continuations, hex strings in UTF-16BE (with a
 * surrogate pair) or PDFDocEncoding, and what is not a title. */
static void test_pdf_title(void)
{
    static const struct { const char *shown, *want; } cases[] = {
        {"(Plain title)\n", "Plain title"},
        {"(A \\(nested (pair)\\) here)", "A (nested (pair)) here"},
        {"(  spaced\\n\\tout  )", "spaced out"},
        {"(caf\\351 \\2051)", "caf\xc3\xa9 \xe2\x80\x93" "1"},
        {"(con\\\ntinued)", "continued"},
        {"<FEFF00480069D83DDE00>", "Hi\xf0\x9f\x98\x80"},
        {"<48 69 2>", "Hi"},
        {"<4869>", "Hi"},
        {"null", NULL},
        {"()", NULL},
        {"(   )", NULL},
        {"(unterminated", NULL},
        {"<4869", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = extract__pdf_title(cases[i].shown);
        int same = cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL;
        CHECK(same, "pdf title %zu: %s -> %s", i, cases[i].shown, got ? got : "(null)");
        free(got);
    }
    /* a title over the cap is cut, still valid UTF-8 of the bytes kept */
    char big[5000] = "(";
    memset(big + 1, 'x', 3000);
    strcpy(big + 3001, ")");
    char *got = extract__pdf_title(big);
    CHECK(got && strlen(got) == 1024, "long title cut to 1024 bytes: %zu", got ? strlen(got) : 0);
    free(got);
}

int main(void)
{
    test_formats();
    test_utf8();
    test_plain();
    test_html();
    test_records();
    test_pages_and_types();
    test_clean_text();
    test_docx();
    test_odt();
    test_pdf_title();
    TEST_MAIN_END();
}
