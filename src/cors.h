/* cors.h - Cross-Origin Resource Sharing for `lode serve`, off unless
 * origins are configured (--cors-origins).
 *
 * A policy is a list of origins ("https://app.example.com",
 * "http://localhost:3000") or "*" (any).  For a request from an allowed
 * origin the answer carries Access-Control-Allow-Origin (the origin
 * itself, or "*"); a preflight (OPTIONS with Access-Control-Request-Method)
 * is answered 204 with the methods of the path, the request headers a
 * browser may send (Authorization, Content-Type, X-Request-Id) and how
 * long it may cache that.  Credentials (cookies) are never allowed: lode
 * takes keys in the Authorization header, which a page sends explicitly.
 * With a policy, every answer says Vary: Origin, since it depends on it.
 *
 * The module only decides which headers to send (cors_headers, pure and
 * tested alone); http.c adds them. */
#ifndef LODE_CORS_H
#define LODE_CORS_H

#include <stdbool.h>

#include "err.h"

typedef struct cors_policy cors_policy;

/* Parse a comma-separated list of origins, or "*".  An empty list or NULL
 * gives *out = NULL (CORS off).  LODE_EINVAL, with the entry named, for
 * anything that is not scheme://host[:port]. */
int cors_parse(const char *list, cors_policy **out, lode_error *err);
void cors_free(cors_policy *p);

/* The Access-Control-Allow-Origin value for a request's Origin header:
 * the origin, "*", or NULL when it is not allowed (or p or origin is
 * NULL).  Points into origin or is a literal. */
const char *cors_allow_origin(const cors_policy *p, const char *origin);

#define CORS_MAX_HEADERS 6
typedef struct cors_header {
    const char *name, *value;
} cors_header;

/* The CORS headers of an answer to a request with this Origin (may be
 * NULL); for a preflight, `methods` is the path's Allow list ("GET, HEAD,
 * POST").  Returns how many were written to out (none without a policy).
 * Values point into origin, methods or literals. */
int cors_headers(const cors_policy *p, const char *origin, bool preflight,
                 const char *methods, cors_header out[CORS_MAX_HEADERS]);

/* Is this request a CORS preflight (OPTIONS with an Origin and an
 * Access-Control-Request-Method)? */
bool cors_is_preflight(const char *method, const char *origin,
                       const char *request_method);

#endif
