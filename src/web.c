/* web.c - serving the embedded page (see web.h): the lookup, conditional
 * GETs and the security headers.  The files themselves are byte arrays
 * generated from web/ at build time, so there is no file system access
 * and nothing to configure: the page is the one the binary was built
 * with. */
#include "web.h"

#include <string.h>

#include "api.h"

/* 'self' only: the page is one HTML file, one script and one style sheet
 * from this server, talking to this server.  data: images are for the
 * inline SVG icons of the style sheet. */
const char web_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

const web_asset *web_find(const char *path)
{
    if (strcmp(path, "/index.html") == 0)
        path = "/";
    for (size_t i = 0; i < web_n_assets; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

bool web_etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)  /* weak comparison, RFC 9110 */
            p += 2;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t n = (size_t)(end - p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == el && strncmp(p, etag, el) == 0)
            return true;
        p = end;
    }
    return false;
}

void api_web(http_request *req, void *app)
{
    (void)app;
    const web_asset *w = web_find(http_path(req));
    if (!w) {   /* a route without a file: a build that lost one */
        http_respond_error(req, 404, "not_found_error", "not_found",
                           "no page file %s", http_path(req));
        return;
    }
    http_add_header(req, "ETag", w->etag);
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "Content-Security-Policy", web_csp);
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_add_header(req, "X-Frame-Options", "DENY");
    if (web_etag_matches(http_header(req, "If-None-Match"), w->etag)) {
        http_respond_text(req, 304, w->content_type, "", 0);
        return;
    }
    http_respond_text(req, 200, w->content_type, (const char *)w->data,
                      w->len);
}
