/* test_cors.c - the CORS policy (src/cors.c): parsing origin lists (and
 * refusing what is not an origin), matching a request's Origin, and the
 * headers of a preflight and of an answer, with CORS off, for an allowed
 * origin, a refused one and "*". */
#include <string.h>

#include "cors.h"
#include "test.h"

/* The value of header `name` among out[0..n), or NULL. */
static const char *header(const cors_header *out, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(out[i].name, name) == 0)
            return out[i].value;
    return NULL;
}

static void test_parse(void)
{
    cors_policy *p = (cors_policy *)1;
    lode_error err = {0};
    CHECK(cors_parse(NULL, &p, &err) == 0 && p == NULL, "NULL: off");
    CHECK(cors_parse("", &p, &err) == 0 && p == NULL, "empty: off");
    const char *good[] = {"*", "https://app.example.com",
                          " https://a.example.com , http://localhost:3000/ ",
                          "http://[::1]:8080", "http://127.0.0.1:5173",
                          "chrome-extension://abcdef"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        CHECK(cors_parse(good[i], &p, &err) == 0 && p, "%s: %s", good[i],
              err.message);
        cors_free(p);
    }
    const char *bad[] = {"example.com", "https://", "https://a.example.com/path",
                         "https://a.example.com,", "a,,b", "null",
                         "https://a b.com", "http://host:123456",
                         "http://host:", "://host", "1http://host"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = NULL;
        err.message[0] = '\0';
        CHECK(cors_parse(bad[i], &p, &err) == LODE_EINVAL && !p &&
                  strstr(err.message, "is not an origin"),
              "%s refused: %s", bad[i], err.message);
    }
}

static void test_match(void)
{
    cors_policy *p;
    CHECK(cors_parse("https://App.Example.com/, http://localhost:3000", &p,
                     NULL) == 0, "parse");
    const char *o = "https://app.example.com";
    CHECK(cors_allow_origin(p, o) == o, "listed (case and slash aside)");
    CHECK(cors_allow_origin(p, "HTTPS://APP.EXAMPLE.COM") != NULL, "case");
    CHECK(!cors_allow_origin(p, "http://app.example.com"), "other scheme");
    CHECK(!cors_allow_origin(p, "https://app.example.com:8443"), "other port");
    CHECK(!cors_allow_origin(p, "https://evil.app.example.com"), "subdomain");
    CHECK(!cors_allow_origin(p, "https://app.example.com.evil.com"), "suffix");
    CHECK(!cors_allow_origin(p, "null"), "null");
    CHECK(!cors_allow_origin(p, NULL) && !cors_allow_origin(p, ""), "none");
    CHECK(cors_allow_origin(p, "http://localhost:3000") != NULL, "second");
    CHECK(!cors_allow_origin(NULL, o), "no policy");
    cors_free(p);
    CHECK(cors_parse("*", &p, NULL) == 0, "parse *");
    CHECK(strcmp(cors_allow_origin(p, "https://anything.test"), "*") == 0,
          "* answers *");
    CHECK(!cors_allow_origin(p, NULL), "* still needs an Origin");
    cors_free(p);
}

static void test_headers(void)
{
    cors_header h[CORS_MAX_HEADERS];
    CHECK(cors_headers(NULL, "https://a.test", true, "POST", h) == 0,
          "CORS off: no headers at all");

    cors_policy *p;
    CHECK(cors_parse("https://a.test", &p, NULL) == 0, "parse");
    int n = cors_headers(p, "https://evil.test", false, NULL, h);
    CHECK(n == 1 && strcmp(header(h, n, "Vary"), "Origin") == 0,
          "refused origin: only Vary (%d)", n);
    CHECK(!header(h, n, "Access-Control-Allow-Origin"), "no ACAO");
    n = cors_headers(p, NULL, false, NULL, h);
    CHECK(n == 1, "no Origin: only Vary");

    n = cors_headers(p, "https://a.test", false, NULL, h);
    CHECK(n >= 2 && strcmp(header(h, n, "Access-Control-Allow-Origin"),
                           "https://a.test") == 0, "allowed: ACAO");
    CHECK(header(h, n, "Access-Control-Expose-Headers") &&
              strstr(header(h, n, "Access-Control-Expose-Headers"),
                     "Retry-After"), "Retry-After readable by the page");
    CHECK(!header(h, n, "Access-Control-Allow-Methods") &&
              !header(h, n, "Access-Control-Allow-Credentials"),
          "not a preflight; never credentials");

    n = cors_headers(p, "https://a.test", true, "GET, HEAD, POST", h);
    CHECK(strcmp(header(h, n, "Access-Control-Allow-Methods"),
                 "GET, HEAD, POST") == 0, "methods");
    const char *allow = header(h, n, "Access-Control-Allow-Headers");
    CHECK(allow && strstr(allow, "Authorization") &&
              strstr(allow, "Content-Type"), "headers: %s", allow);
    CHECK(header(h, n, "Access-Control-Max-Age") &&
              strcmp(header(h, n, "Vary"), "Origin") == 0, "max-age, vary");
    CHECK(!header(h, n, "Access-Control-Allow-Credentials"), "no credentials");
    cors_free(p);

    CHECK(cors_parse("*", &p, NULL) == 0, "parse *");
    n = cors_headers(p, "https://x.test", false, NULL, h);
    CHECK(strcmp(header(h, n, "Access-Control-Allow-Origin"), "*") == 0, "*");
    cors_free(p);
}

static void test_preflight(void)
{
    CHECK(cors_is_preflight("OPTIONS", "https://a.test", "POST"), "yes");
    CHECK(!cors_is_preflight("OPTIONS", "https://a.test", NULL), "no ACRM");
    CHECK(!cors_is_preflight("OPTIONS", NULL, "POST"), "no Origin");
    CHECK(!cors_is_preflight("POST", "https://a.test", "POST"), "not OPTIONS");
}

int main(void)
{
    test_parse();
    test_match();
    test_headers();
    test_preflight();
    TEST_MAIN_END();
}
