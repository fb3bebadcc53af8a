/* cors.c - CORS policy and headers (see cors.h).
 *
 * Origins are compared as browsers serialise them (scheme://host[:port],
 * lowercase scheme and host, no path), ASCII case-insensitively, so a
 * configured "https://App.Example.com/" matches what a browser sends. */
#include "cors.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Browsers cache a preflight this long (Chromium caps it at 2 h). */
#define CORS_MAX_AGE "600"
#define CORS_ALLOW_HEADERS "Authorization, Content-Type, X-Request-Id"
/* Response headers a page's script may read besides the simple ones. */
#define CORS_EXPOSE_HEADERS "X-Request-Id, Retry-After"

struct cors_policy {
    bool any;            /* "*" */
    size_t n;
    char **origins;      /* lowercase, without a trailing slash */
};

void cors_free(cors_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->origins[i]);
    free(p->origins);
    free(p);
}

/* Is s (len bytes) scheme://host[:port]? */
static bool origin_ok(const char *s, size_t len)
{
    size_t i = 0;
    if (i == len || !isalpha((unsigned char)s[i]))
        return false;
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' ||
                       s[i] == '-' || s[i] == '.'))
        i++;
    if (len - i < 4 || strncmp(s + i, "://", 3) != 0)
        return false;
    i += 3;
    size_t host = i;
    if (i < len && s[i] == '[') {          /* [IPv6] */
        i++;
        while (i < len && (isxdigit((unsigned char)s[i]) || s[i] == ':' ||
                           s[i] == '.'))
            i++;
        if (i == len || s[i] != ']')
            return false;
        i++;
    } else {
        while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-' ||
                           s[i] == '.'))
            i++;
    }
    if (i == host)
        return false;
    if (i < len && s[i] == ':') {
        size_t digits = ++i;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        if (i == digits || i - digits > 5)
            return false;
    }
    return i == len;
}

int cors_parse(const char *list, cors_policy **out, lode_error *err)
{
    *out = NULL;
    if (!list || !*list)
        return 0;
    cors_policy *p = calloc(1, sizeof *p);
    size_t max = 1;
    for (const char *c = list; *c; c++)
        max += *c == ',';
    if (p)
        p->origins = calloc(max, sizeof *p->origins);
    if (!p || !p->origins) {
        cors_free(p);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    for (const char *s = list;;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *e = s;
        while (len && isspace((unsigned char)*e)) {
            e++;
            len--;
        }
        while (len && isspace((unsigned char)e[len - 1]))
            len--;
        if (len > 1 && e[len - 1] == '/')
            len--;
        if (len == 1 && e[0] == '*') {
            p->any = true;
        } else if (!origin_ok(e, len)) {
            int shown = len > 100 ? 100 : (int)len;
            cors_free(p);
            return lode_error_set(err, LODE_EINVAL,
                                  "'%.*s' is not an origin: give "
                                  "scheme://host[:port] (no path), e.g. "
                                  "https://app.example.com, or *", shown, e);
        } else {
            char *o = malloc(len + 1);
            if (!o) {
                cors_free(p);
                return lode_error_set(err, LODE_ENOMEM, "out of memory");
            }
            for (size_t i = 0; i < len; i++)
                o[i] = (char)tolower((unsigned char)e[i]);
            o[len] = '\0';
            p->origins[p->n++] = o;
        }
        if (!end)
            break;
        s = end + 1;
    }
    *out = p;
    return 0;
}

const char *cors_allow_origin(const cors_policy *p, const char *origin)
{
    if (!p || !origin || !*origin)
        return NULL;
    if (p->any)
        return "*";
    for (size_t i = 0; i < p->n; i++)
        if (strcasecmp(p->origins[i], origin) == 0)
            return origin;
    return NULL;
}

bool cors_is_preflight(const char *method, const char *origin,
                       const char *request_method)
{
    return method && strcmp(method, "OPTIONS") == 0 && origin && *origin &&
           request_method && *request_method;
}

int cors_headers(const cors_policy *p, const char *origin, bool preflight,
                 const char *methods, cors_header out[CORS_MAX_HEADERS])
{
    if (!p)
        return 0;
    int n = 0;
    /* the answer depends on Origin whenever a policy exists, so caches
     * must key on it (also for origins that are refused) */
    out[n++] = (cors_header){"Vary", "Origin"};
    const char *allow = cors_allow_origin(p, origin);
    if (!allow)
        return n;
    out[n++] = (cors_header){"Access-Control-Allow-Origin", allow};
    if (preflight) {
        out[n++] = (cors_header){"Access-Control-Allow-Methods",
                                 methods ? methods : ""};
        out[n++] = (cors_header){"Access-Control-Allow-Headers",
                                 CORS_ALLOW_HEADERS};
        out[n++] = (cors_header){"Access-Control-Max-Age", CORS_MAX_AGE};
    } else {
        out[n++] = (cors_header){"Access-Control-Expose-Headers",
                                 CORS_EXPOSE_HEADERS};
    }
    return n;
}
