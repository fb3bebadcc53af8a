/* web.h - the web page of `lode serve`: HTML, CSS and JavaScript from
 * web/, embedded into the executable at build time (scripts/embed_web.sh
 * writes build/web_assets.c), served at GET / and /NAME.  The API's
 * OpenAPI document (docs/openapi.json) is one of these files too, served
 * at /openapi.json with the same headers.
 *
 * Every answer carries a strong ETag (a conditional GET with
 * If-None-Match gets 304), Cache-Control: no-cache (the names are not
 * fingerprinted, so a browser revalidates, which costs one small request)
 * and a Content-Security-Policy that allows only the page's own files and
 * requests to its own origin: no inline script or style, no frames, no
 * third-party anything. */
#ifndef LODE_WEB_H
#define LODE_WEB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct web_asset {
    const char *path;          /* "/" for index.html, else "/NAME" */
    const char *content_type;
    const char *etag;          /* quoted, as sent: "\"0123abcd...\"" */
    const unsigned char *data;
    size_t len;
} web_asset;

/* The embedded files (generated). */
extern const web_asset web_assets[];
extern const size_t web_n_assets;

/* The policy sent with every page file. */
extern const char web_csp[];

/* The asset served at this path ("/index.html" is "/"), or NULL. */
const web_asset *web_find(const char *path);
/* Does an If-None-Match header name this ETag ("*", a list, W/ forms)? */
bool web_etag_matches(const char *if_none_match, const char *etag);

#endif
