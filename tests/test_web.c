/* test_web.c - the embedded page: every file of web/ has a route and
 * every page route a file, types and ETags are as served, and
 * If-None-Match is compared as RFC 9110 says. */
#include "test.h"

#include <string.h>

#include "api.h"
#include "web.h"

static void test_routes_and_files(void)
{
    CHECK(web_n_assets >= 4, "%zu files", web_n_assets);
    for (size_t i = 0; i < web_n_assets; i++) {
        const web_asset *w = &web_assets[i];
        int routed = 0;
        for (int r = 0; r < api_n_routes; r++)
            routed += api_routes[r].handler == api_web &&
                      strcmp(api_routes[r].pattern, w->path) == 0 &&
                      strcmp(api_routes[r].method, "GET") == 0 &&
                      api_routes[r].policy == API_PUBLIC;
        CHECK(routed == 1, "%s has %d routes", w->path, routed);
        CHECK(w->len > 0 && w->data, "%s is empty", w->path);
        CHECK(strlen(w->etag) == 22 && w->etag[0] == '"' &&
                  w->etag[21] == '"',
              "%s etag %s", w->path, w->etag);
        CHECK(web_find(w->path) == w, "%s not found", w->path);
    }
    for (int r = 0; r < api_n_routes; r++)
        if (api_routes[r].handler == api_web)
            CHECK(web_find(api_routes[r].pattern) != NULL,
                  "route %s has no file", api_routes[r].pattern);
    const web_asset *index = web_find("/");
    CHECK(index && strcmp(index->content_type, "text/html; charset=utf-8") == 0,
          "index type");
    CHECK(web_find("/index.html") == index, "/index.html is /");
    const web_asset *js = web_find("/app.js");
    CHECK(js && strncmp(js->content_type, "text/javascript", 15) == 0,
          "js type");
    const web_asset *css = web_find("/app.css");
    CHECK(css && strncmp(css->content_type, "text/css", 8) == 0, "css type");
    CHECK(web_find("/nope.js") == NULL, "unknown file");
    CHECK(web_find("") == NULL, "empty path");
}

static void test_etag_matches(void)
{
    const char *e = "\"abc\"";
    CHECK(web_etag_matches("\"abc\"", e), "exact");
    CHECK(web_etag_matches("W/\"abc\"", e), "weak form");
    CHECK(web_etag_matches("\"x\", \"abc\"", e), "in a list");
    CHECK(web_etag_matches("\"x\",\"abc\" ", e), "list, no spaces");
    CHECK(web_etag_matches("*", e), "star");
    CHECK(!web_etag_matches(NULL, e), "no header");
    CHECK(!web_etag_matches("", e), "empty header");
    CHECK(!web_etag_matches("\"abcd\"", e), "longer tag");
    CHECK(!web_etag_matches("\"ab\"", e), "prefix");
    CHECK(!web_etag_matches("abc", e), "unquoted");
    CHECK(!web_etag_matches(",,,", e), "only commas");
}

static void test_csp(void)
{
    CHECK(strstr(web_csp, "default-src 'none'") != NULL, "default none");
    CHECK(strstr(web_csp, "script-src 'self'") != NULL, "scripts self");
    CHECK(strstr(web_csp, "unsafe") == NULL, "nothing unsafe");
}

int main(void)
{
    test_routes_and_files();
    test_etag_matches();
    test_csp();
    TEST_MAIN_END();
}
