/* test_multipart.c - multipart/form-data bodies: browsers' and curl's
 * forms, boundaries quoted or not, preambles, binary parts holding
 * boundary-like text, and every malformation refused with its error. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "multipart.h"

static size_t parse(const char *body, size_t len, const char *b,
                    multipart_part **parts, int *rc)
{
    size_t n = 99;
    lode_error err = {0};
    *rc = multipart_parse(body, len, b, 16, parts, &n, &err);
    return n;
}

static void test_boundary(void)
{
    char b[MULTIPART_BOUNDARY_MAX + 1];
    lode_error err = {0};
    CHECK(multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundaryX1",
                             b, &err) == 0 &&
              strcmp(b, "----WebKitFormBoundaryX1") == 0,
          "bare: %s", b);
    CHECK(multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b;c\"",
                             b, &err) == 0 && strcmp(b, "a b;c") == 0,
          "quoted, case: %s", b);
    CHECK(multipart_boundary("multipart/form-data", b, &err) == LODE_EINVAL,
          "none");
    CHECK(multipart_boundary("multipart/form-data; boundary=", b, &err) ==
              LODE_EINVAL, "empty");
    CHECK(multipart_boundary("text/plain; boundary=x", b, &err) == LODE_EINVAL,
          "not a form");
    char longer[200];
    snprintf(longer, sizeof longer, "multipart/form-data; boundary=%071d", 0);
    CHECK(multipart_boundary(longer, b, &err) == LODE_EINVAL, "71 chars");
    CHECK(multipart_is_form("multipart/form-data;boundary=x"), "is form");
    CHECK(!multipart_is_form("multipart/form-datax"), "prefix only");
    CHECK(!multipart_is_form(NULL), "NULL");
    char v[32];
    CHECK(multipart_header_param("attachment; filename=\"a\\\"b.md\"",
                                 "filename", v, sizeof v) == 1 &&
              strcmp(v, "a\"b.md") == 0,
          "escaped quote: %s", v);
    CHECK(multipart_header_param("attachment", "filename", v, sizeof v) == 0,
          "absent");
    CHECK(multipart_header_param(NULL, "filename", v, sizeof v) == 0, "NULL");
    CHECK(multipart_header_param("a; filename=0123456789012345678901234567890123",
                                 "filename", v, sizeof v) == -1,
          "too long");
}

static void test_browser_form(void)
{
    static const char body[] =
        "------B\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.md\"\r\n"
        "Content-Type: text/markdown\r\n"
        "\r\n"
        "# A\r\n\r\ntext with ------B inside and \r\n-----B too\r\n"
        "------B\r\n"
        "content-disposition: form-data; name=note\r\n"
        "\r\n"
        "plain\r\n"
        "------B\r\n"
        "Content-Disposition: form-data; name=\"bin\"; filename=\"\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "\0\r\n\0\r\n"
        "------B--\r\n"
        "epilogue";
    multipart_part *p = NULL;
    int rc;
    size_t n = parse(body, sizeof body - 1, "----B", &p, &rc);
    CHECK(rc == 0 && n == 3, "rc %d n %zu", rc, n);
    if (rc == 0 && n == 3) {
        CHECK(strcmp(p[0].name, "file") == 0 && p[0].has_filename &&
                  strcmp(p[0].filename, "a.md") == 0 &&
                  strcmp(p[0].content_type, "text/markdown") == 0,
              "part 0 headers");
        const char *want0 = "# A\r\n\r\ntext with ------B inside and \r\n-----B too";
        CHECK(p[0].len == strlen(want0) && memcmp(p[0].data, want0, p[0].len) == 0,
              "part 0 data %.*s", (int)p[0].len, p[0].data);
        CHECK(strcmp(p[1].name, "note") == 0 && !p[1].has_filename &&
                  p[1].content_type[0] == '\0' && p[1].len == 5 &&
                  memcmp(p[1].data, "plain", 5) == 0,
              "part 1");
        CHECK(p[2].has_filename && p[2].filename[0] == '\0' && p[2].len == 4 &&
                  memcmp(p[2].data, "\0\r\n\0", 4) == 0,
              "binary part, empty filename");
    }
    free(p);
}

static void test_preamble_and_empty(void)
{
    static const char body[] = "preamble\r\n--x\r\n\r\n\r\n--x\r\n"
                               "Content-Disposition: form-data; name=\"a\"\r\n"
                               "\r\n\r\n--x--";
    multipart_part *p = NULL;
    int rc;
    size_t n = parse(body, sizeof body - 1, "x", &p, &rc);
    CHECK(rc == 0 && n == 2, "rc %d n %zu", rc, n);
    if (n == 2) {
        CHECK(p[0].len == 0 && p[0].name[0] == '\0', "headerless empty part");
        CHECK(p[1].len == 0 && strcmp(p[1].name, "a") == 0, "empty data");
    }
    free(p);
    /* a repeated Content-Disposition replaces the first (found by fuzzing) */
    static const char twice[] = "--x\r\nContent-Disposition: form-data; name=a; "
                                "filename=f.md\r\nContent-Disposition: form-data; "
                                "name=b\r\n\r\nd\r\n--x--";
    n = parse(twice, sizeof twice - 1, "x", &p, &rc);
    CHECK(rc == 0 && n == 1 && !p[0].has_filename && !p[0].filename[0] &&
              strcmp(p[0].name, "b") == 0,
          "repeated header");
    free(p);
    n = parse("--x--", 5, "x", &p, &rc);
    CHECK(rc == 0 && n == 0 && p == NULL, "no parts: rc %d n %zu", rc, n);
}

static void test_malformed(void)
{
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"", LODE_EFORMAT},
        {"no boundary here", LODE_EFORMAT},
        {"--x", LODE_EFORMAT},
        {"--x\r\n", LODE_EFORMAT},
        {"--xy\r\n\r\nz\r\n--x--", LODE_EFORMAT},     /* not a delimiter */
        {"--x\r\nContent-Type: a\r\n", LODE_EFORMAT}, /* no blank line */
        {"--x\r\nbad header\r\n\r\ndata\r\n--x--", LODE_EFORMAT},
        {"--x\r\n\r\ndata without end", LODE_EFORMAT},
        {"--x\r\n\r\ndata\r\n--x", LODE_EFORMAT},      /* no closing -- */
        {"--x\r\n\r\ndata\r\n--xjunk", LODE_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        multipart_part *p = NULL;
        int rc;
        size_t n = parse(cases[i].body, strlen(cases[i].body), "x", &p, &rc);
        CHECK(rc == cases[i].rc && n == 0 && p == NULL, "case %zu: rc %d n %zu",
              i, rc, n);
    }
    /* too many parts */
    char body[4096] = "";
    for (int i = 0; i < 20; i++)
        strcat(body, "--x\r\n\r\nd\r\n");
    strcat(body, "--x--");
    multipart_part *p = NULL;
    int rc;
    parse(body, strlen(body), "x", &p, &rc);
    CHECK(rc == LODE_ELIMIT && !p, "limit: %d", rc);
    /* a header block over the cap */
    size_t big = MULTIPART_HEADERS_MAX + 100;
    char *b = malloc(big + 64);
    strcpy(b, "--x\r\nX-Pad: ");
    memset(b + strlen(b), 'a', big);
    strcpy(b + 12 + big, "\r\n\r\nd\r\n--x--");
    parse(b, strlen(b), "x", &p, &rc);
    CHECK(rc == LODE_EFORMAT, "big headers: %d", rc);
    free(b);
    /* a file name over the cap */
    char fb[1024];
    snprintf(fb, sizeof fb, "--x\r\nContent-Disposition: form-data; name=f; "
             "filename=\"%0300d\"\r\n\r\nd\r\n--x--", 0);
    parse(fb, strlen(fb), "x", &p, &rc);
    CHECK(rc == LODE_EFORMAT, "long filename: %d", rc);
}

int main(void)
{
    test_boundary();
    test_browser_form();
    test_preamble_and_empty();
    test_malformed();
    TEST_MAIN_END();
}
