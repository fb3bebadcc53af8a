/* test_extract.c - text extraction: formats by extension, the UTF-8
 * policy, Markdown and plain text as is, HTML boilerplate removal,
 * structure and headings, JSON and JSONL records with their fields, and
 * clear errors (never a crash) for malformed input. */
#include <stdlib.h>
#include <string.h>

#include "extract.h"
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

int main(void)
{
    test_formats();
    test_utf8();
    test_plain();
    test_html();
    test_records();
    TEST_MAIN_END();
}
