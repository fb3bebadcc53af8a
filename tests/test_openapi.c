/* test_openapi.c - the OpenAPI document (docs/openapi.json, served at
 * /openapi.json) against the routing table it describes (api_routes):
 * the same paths and methods both ways, a path parameter for every {},
 * the auth class of each route as its security, 429 on the rate-limited
 * routes alone, and the JSON error object for every error status an
 * operation lists.
 *
 * It reads the copy compiled into the binary (web_find), which is what a
 * client gets, and checks that it is byte for byte docs/openapi.json, so
 * a stale build cannot pass.  Routes are compared by name: a route's
 * `name` ("/collections/{name}/documents/{id}") is its OpenAPI path, and
 * must be its pattern ("/collections/{}/documents/{}") with each {} named.
 * HEAD is implicit on every GET route (http.c), so it is not listed. */
#include "test.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "web.h"

static json_t *doc;

/* The object a "$ref": "#/components/..." points to, or o itself. */
static json_t *deref(json_t *o)
{
    for (int hops = 0; hops < 8; hops++) {
        const char *ref = json_string_value(json_object_get(o, "$ref"));
        if (!ref || strncmp(ref, "#/", 2) != 0)
            return o;
        char path[256];
        snprintf(path, sizeof path, "%s", ref + 2);
        json_t *cur = doc;
        for (char *seg = strtok(path, "/"); seg && cur;
             seg = strtok(NULL, "/"))
            cur = json_object_get(cur, seg);
        CHECK(cur != NULL, "dangling $ref %s", ref);
        if (!cur)
            return o;
        o = cur;
    }
    return o;
}

/* Is the route's name its pattern with every {} named? */
static bool name_matches_pattern(const char *pattern, const char *name)
{
    const char *p = pattern, *n = name;
    while (*p && *n) {
        if (p[0] == '{' && p[1] == '}') {
            if (*n != '{')
                return false;
            const char *close = strchr(n, '}');
            if (!close || close == n + 1)
                return false;
            for (const char *c = n + 1; c < close; c++)
                if (!isalnum((unsigned char)*c) && *c != '_')
                    return false;
            p += 2;
            n = close + 1;
        } else if (*p++ != *n++) {
            return false;
        }
    }
    return !*p && !*n;
}

static void lower(const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

static void test_document_is_the_file(void)
{
    const web_asset *w = web_find("/openapi.json");
    CHECK(w != NULL, "no /openapi.json asset");
    if (!w)
        return;
    CHECK(strcmp(w->content_type, "application/json") == 0, "type %s",
          w->content_type);
    json_error_t jerr;
    doc = json_loadb((const char *)w->data, w->len, 0, &jerr);
    CHECK(doc != NULL, "not JSON: %s (line %d)", jerr.text, jerr.line);
    CHECK(json_is_object(doc) &&
              strcmp(json_string_value(json_object_get(doc, "openapi"))
                         ? json_string_value(json_object_get(doc, "openapi"))
                         : "",
                     "3.1.0") == 0,
          "openapi 3.1.0");
    FILE *f = fopen("docs/openapi.json", "rb");
    CHECK(f != NULL, "docs/openapi.json not readable (run from the root)");
    if (!f)
        return;
    char *buf = malloc(w->len + 2);
    size_t n = buf ? fread(buf, 1, w->len + 1, f) : 0;
    fclose(f);
    CHECK(n == w->len && memcmp(buf, w->data, n) == 0,
          "the embedded document is not docs/openapi.json (rebuild)");
    free(buf);
}

/* Every error status of an operation answers the Error object; /health
 * alone answers its own status object with 503 (loading, unhealthy), as
 * load balancers expect. */
static void check_errors(const char *path, const char *method, json_t *op)
{
    if (strcmp(path, "/health") == 0)
        return;
    json_t *responses = json_object_get(op, "responses");
    CHECK(json_object_size(responses) > 0, "%s %s has no responses", method,
          path);
    const char *status;
    json_t *r;
    json_object_foreach(responses, status, r) {
        if (status[0] != '4' && status[0] != '5')
            continue;
        json_t *resp = deref(r);
        json_t *media = json_object_get(json_object_get(resp, "content"),
                                        "application/json");
        const char *ref = json_string_value(
            json_object_get(json_object_get(media, "schema"), "$ref"));
        CHECK(ref && strcmp(ref, "#/components/schemas/Error") == 0,
              "%s %s %s is not the error object", method, path, status);
        CHECK(json_object_size(json_object_get(resp, "content")) == 1,
              "%s %s %s has other media types", method, path, status);
    }
}

/* Security as the route's class: public routes say so (an empty list, or
 * the handler's own scheme, e.g. a webhook signature), write and admin
 * routes need the bearer key, read routes take the default (open, or the
 * key). */
static void check_security(const http_route *rt, json_t *op)
{
    json_t *sec = json_object_get(op, "security");
    int cls = rt->policy & API_CLASS_MASK;
    bool empty_alt = false, bearer = false;
    size_t i;
    json_t *req;
    json_array_foreach(sec ? sec : json_object_get(doc, "security"), i, req) {
        empty_alt |= json_object_size(req) == 0;
        bearer |= json_object_get(req, "bearer") != NULL;
    }
    if (cls == API_PUBLIC)
        CHECK(sec != NULL, "%s %s is public but has the default security",
              rt->method, rt->name);
    else if (cls == API_READ)
        CHECK(!sec && empty_alt && bearer, "%s %s (read) security", rt->method,
              rt->name);
    else
        CHECK(sec && bearer && !empty_alt, "%s %s (write/admin) security",
              rt->method, rt->name);
    json_t *responses = json_object_get(op, "responses");
    if (cls != API_PUBLIC)
        CHECK(json_object_get(responses, "401") != NULL, "%s %s lacks 401",
              rt->method, rt->name);
    if (cls == API_WRITE || cls == API_ADMIN)
        CHECK(json_object_get(responses, "403") != NULL, "%s %s lacks 403",
              rt->method, rt->name);
    if (rt->flags & HTTP_JSON_BODY)
        CHECK(json_object_get(responses, "415") != NULL &&
                  json_object_get(responses, "413") != NULL,
              "%s %s (JSON body) lacks 413/415", rt->method, rt->name);
    if (rt->policy & API_HEAVY)
        CHECK(json_object_get(responses, "503") != NULL,
              "%s %s (heavy) lacks 503", rt->method, rt->name);
    /* 429 exactly on the rate-limited routes */
    bool limited = (rt->policy & API_LIMITED) != 0;
    CHECK(limited == (json_object_get(responses, "429") != NULL),
          "%s %s %s 429", rt->method, rt->name,
          limited ? "(rate-limited) lacks" : "(not rate-limited) lists");
}

/* Every {x} of the path has an `in: path` parameter named x. */
static void check_path_params(const char *path, json_t *item, json_t *op)
{
    for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
        int found = 0;
        json_t *lists[2] = {json_object_get(item, "parameters"),
                            json_object_get(op, "parameters")};
        for (int l = 0; l < 2; l++) {
            size_t i;
            json_t *prm;
            json_array_foreach(lists[l], i, prm) {
                json_t *d = deref(prm);
                const char *in = json_string_value(json_object_get(d, "in"));
                const char *n = json_string_value(json_object_get(d, "name"));
                found += in && n && strcmp(in, "path") == 0 &&
                         strcmp(n, name) == 0 &&
                         json_is_true(json_object_get(d, "required"));
            }
        }
        CHECK(found == 1, "%s: {%s} has %d path parameters", path, name,
              found);
    }
}

static void test_routes_in_document(void)
{
    json_t *paths = json_object_get(doc, "paths");
    CHECK(json_is_object(paths), "no paths");
    for (int r = 0; r < api_n_routes; r++) {
        const http_route *rt = &api_routes[r];
        CHECK(name_matches_pattern(rt->pattern, rt->name),
              "route %s is named %s", rt->pattern, rt->name);
        char method[16];
        lower(rt->method, method, sizeof method);
        json_t *item = json_object_get(paths, rt->name);
        json_t *op = json_object_get(item, method);
        CHECK(op != NULL, "%s %s is not in docs/openapi.json", rt->method,
              rt->name);
        if (!op)
            continue;
        check_errors(rt->name, rt->method, op);
        check_security(rt, op);
        check_path_params(rt->name, item, op);
    }
}

static void test_document_in_routes(void)
{
    static const char *const methods[] = {"get", "put", "post", "delete",
                                          "options", "head", "patch",
                                          "trace"};
    const char *path;
    json_t *item;
    int operations = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
            if (!json_object_get(item, methods[m]))
                continue;
            operations++;
            int routed = 0;
            for (int r = 0; r < api_n_routes; r++) {
                char method[16];
                lower(api_routes[r].method, method, sizeof method);
                routed += strcmp(api_routes[r].name, path) == 0 &&
                          strcmp(method, methods[m]) == 0;
            }
            CHECK(routed == 1, "%s %s is documented but has %d routes",
                  methods[m], path, routed);
        }
    }
    CHECK(operations == api_n_routes, "%d operations, %d routes", operations,
          api_n_routes);
}

static void test_pattern_names(void)
{
    CHECK(name_matches_pattern("/a/{}/b", "/a/{name}/b"), "one");
    CHECK(name_matches_pattern("/a/{}/{}", "/a/{x}/{y_1}"), "two");
    CHECK(!name_matches_pattern("/a/{}/b", "/a/{}/b"), "unnamed");
    CHECK(!name_matches_pattern("/a/{}/b", "/a/name/b"), "literal");
    CHECK(!name_matches_pattern("/a/b", "/a/b/"), "longer");
    CHECK(!name_matches_pattern("/a/{}", "/a/{x"), "unclosed");
}

int main(void)
{
    test_pattern_names();
    test_document_is_the_file();
    if (doc) {
        test_routes_in_document();
        test_document_in_routes();
    }
    json_decref(doc);
    TEST_MAIN_END();
}
