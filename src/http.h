/* http.h - the HTTP layer: libmicrohttpd underneath, a routing table, a
 * capped request body, JSON in and out, and request-scoped memory.
 *
 * The server runs libmicrohttpd with epoll and an internal thread pool.
 * For each request the layer matches the path against the routing table
 * (404 when no pattern matches, 405 with Allow when the method does not),
 * refuses a body over the cap (413, as soon as Content-Length says so) or
 * of a non-JSON content type on JSON routes (415), calls the
 * application's `check` hook (auth, load shedding), accumulates the body
 * and finally calls the route's handler once the whole request is in.
 *
 * A handler either answers (http_respond_*) or suspends the request
 * (http_suspend) after handing work to another thread; that thread calls
 * http_resume() when done and the same handler is called again on an HTTP
 * thread to answer.  A suspended request holds no HTTP thread, so slow
 * embedding work never starves /health.
 *
 * With a CORS policy (cors.h) the layer answers preflights itself, before
 * routing, and adds the CORS headers to every answer.
 *
 * Memory: everything tied to a request (its body, parsed JSON, strings
 * from http_alloc, the handler's state) is freed in one place, when
 * libmicrohttpd reports the request finished.  Every error response is
 * JSON: {"error": {"message", "type", "code"}}.
 */
#ifndef LODE_HTTP_H
#define LODE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

typedef struct http_server http_server;
typedef struct http_request http_request;

/* Route flags. */
#define HTTP_JSON_BODY 1   /* the body, if any, must be JSON (else 415) */

typedef void (*http_handler)(http_request *req, void *app);

typedef struct http_route {
    const char *method;     /* "GET", "POST", "DELETE" (HEAD = GET) */
    const char *pattern;    /* "/collections/{}/documents/{}": {} is one
                               path segment, read with http_param() */
    http_handler handler;
    const char *name;       /* for metrics, e.g. "/collections/{name}" */
    int flags;
    int policy;             /* the application's (auth class etc.) */
} http_route;

/* Called after routing, before the body is read: return false after
 * answering to refuse the request (auth, load shedding). */
typedef bool (*http_check_fn)(http_request *req, const http_route *route,
                              void *app);
/* Called when a request ends (the accessors work on req): status (499 if
 * no answer was sent), seconds since its headers. */
typedef void (*http_done_fn)(void *app, http_request *req, int status,
                             double seconds);

struct cors_policy;

typedef struct http_config {
    const char *host;          /* numeric address or name; NULL: 127.0.0.1 */
    int port;                  /* 0: any free port (see http_port) */
    int threads;               /* libmicrohttpd thread pool size, >= 1 */
    int max_connections;
    int timeout_s;             /* idle time before a connection is closed */
    int body_timeout_s;        /* whole body must arrive within this (408) */
    size_t max_body;           /* bytes (413 above) */
    int max_json_depth;        /* nesting of arrays/objects (400 above) */
    const http_route *routes;
    int n_routes;
    http_check_fn check;       /* may be NULL */
    http_done_fn done;         /* may be NULL */
    void *app;
    /* reverse proxies in front that append the address they saw to
     * X-Forwarded-For (0: the socket's peer is the client) */
    int trusted_proxies;
    /* CORS (cors.h): preflights answered and headers added; NULL: off */
    const struct cors_policy *cors;
} http_config;

int http_start(const http_config *cfg, http_server **out, lode_error *err);
/* The port actually bound (useful with port 0). */
int http_port(const http_server *s);
/* Stop accepting connections; requests already in go on. */
void http_quiesce(http_server *s);
/* Requests started and not finished (suspended ones included). */
int http_in_flight(http_server *s);
/* Stop the server (after http_quiesce and draining, ideally) and free it.
 * No request may be suspended any more. */
void http_stop(http_server *s);

/* ---- the request ------------------------------------------------------ */

const char *http_method(const http_request *req);
const char *http_path(const http_request *req);
/* The i-th {} of the route pattern (URL-decoded), or NULL. */
const char *http_param(const http_request *req, int i);
/* A request header (case-insensitive name) or NULL. */
const char *http_header(const http_request *req, const char *name);
/* The request's id (X-Request-Id: the client's when it is a plain token
 * of at most HTTP_REQUEST_ID_MAX characters, else made here), sent back
 * on every answer; for log lines about the request. */
#define HTTP_REQUEST_ID_MAX 64
const char *http_request_id(const http_request *req);
/* The client's address, numeric ("203.0.113.7", "2001:db8::1"; an
 * IPv4-mapped IPv6 peer as IPv4): the socket's peer, or with
 * trusted_proxies N the address N entries from the right of
 * X-Forwarded-For (see http_forwarded_for).  "" when unknown. */
const char *http_client_addr(http_request *req);
/* Bytes of the answer's body sent or queued so far (0 for HEAD). */
uint64_t http_bytes_sent(const http_request *req);
/* A query-string argument or NULL. */
const char *http_query(const http_request *req, const char *name);
const char *http_body(const http_request *req, size_t *len);
/* The body as JSON (owned by the request).  On failure (empty, invalid,
 * too deeply nested) it answers 400 itself and returns NULL. */
json_t *http_json_body(http_request *req);
int http_route_index(const http_request *req);
/* Seconds since the request's headers arrived. */
double http_elapsed(const http_request *req);

/* Request-scoped allocation, freed when the request ends. */
void *http_alloc(http_request *req, size_t size);
/* A handler's state: http_alloc'd and zeroed; on failure the request is
 * answered 500 out_of_memory and NULL returned. */
void *http_alloc_state(http_request *req, size_t size);
/* Handler state kept across suspension; free_fn runs when the request
 * ends (may be NULL). */
void http_set_state(http_request *req, void *state, void (*free_fn)(void *));
void *http_state(const http_request *req);

/* ---- answering -------------------------------------------------------- */

/* Extra header on the response about to be sent (name and value copied). */
void http_add_header(http_request *req, const char *name, const char *value);
/* Answer with JSON (the reference to body is taken).  When memory runs
 * out making its text, the answer is a constant 500 out_of_memory error
 * (no allocation needed). */
void http_respond_json(http_request *req, int status, json_t *body);
/* The same, but when memory runs out making the body's text (or body is
 * NULL), answer `fallback` (JSON text, copied) with the same status: for
 * answers about something done already, which must not claim a failure.
 * Neither path allocates lode memory but json_dumps. */
void http_respond_json_or(http_request *req, int status, json_t *body,
                          const char *fallback);
void http_respond_text(http_request *req, int status,
                       const char *content_type, const char *text, size_t len);
/* Answer {"error": {"message", "type", "code"}}. */
void http_respond_error(http_request *req, int status, const char *type,
                        const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
bool http_responded(const http_request *req);

/* Park the request: the handler returns without answering and is called
 * again after http_resume().  Call http_suspend before handing the request
 * to another thread. */
void http_suspend(http_request *req);
/* Thread-safe; exactly once per http_suspend. */
void http_resume(http_request *req);

/* Has the client of a suspended request closed its connection?  (A peek
 * at the socket: libmicrohttpd does not watch suspended connections.)
 * Call only while the request is suspended. */
bool http_client_gone(http_request *req);

/* ---- streamed answers --------------------------------------------------
 * A body written over time (chunked transfer encoding), e.g. Server-Sent
 * Events.  The handler starts it with http_respond_stream and returns;
 * any thread then writes to the stream and closes it.  While the stream
 * has nothing to send, the connection is suspended (no HTTP thread is
 * held); a write resumes it.  The stream is shared by the response and
 * the writer: each drops its reference, the writer with
 * http_stream_release after closing. */
typedef struct http_stream http_stream;

/* Queue a streamed answer (content type and the headers added so far);
 * NULL when it cannot be (the connection is going away). */
http_stream *http_respond_stream(http_request *req, int status,
                                 const char *content_type);
/* Append bytes (copied); thread-safe.  False once the client is gone:
 * nothing written will arrive, and the writer may stop. */
bool http_stream_write(http_stream *s, const char *data, size_t len);
/* The end: the answer finishes once what was written is sent. */
void http_stream_close(http_stream *s);
/* Is the client gone (closed the connection, or the response ended
 * early)?  Notices a closed socket even while suspended. */
bool http_stream_gone(http_stream *s);
void http_stream_release(http_stream *s);

/* ---- pure helpers (tested directly) ------------------------------------ */

/* Does `path` match `pattern`?  Captured {} segments go to params[] as
 * (start, length) pairs into path; *n_params gets their count (max 4). */
bool http_match(const char *pattern, const char *path, size_t params[][2],
                int *n_params);
/* Is the nesting of arrays and objects in this JSON text at most
 * max_depth?  (Brackets inside strings are ignored.) */
bool http_json_depth_ok(const char *text, size_t len, int max_depth);
/* Is this Content-Type JSON ("application/json", any parameters, any
 * case; also "+json" types)? */
bool http_is_json_type(const char *content_type);
/* Constant-time comparison of a "Bearer TOKEN" Authorization header
 * with the expected token. */
bool http_bearer_ok(const char *authorization, const char *token);
/* The client in an X-Forwarded-For value behind `hops` trusted proxies:
 * the hops-th address from the right (each proxy appends its peer), or
 * the leftmost when there are fewer.  False when that entry is not a
 * numeric address (the caller then uses the socket's peer). */
bool http_forwarded_for(const char *xff, int hops, char *out, size_t size);
/* s as a JSON string literal (quotes, escapes) in out, without allocating
 * (for answers made when memory has run out); NULL s gives null.  False,
 * with out "null", when it does not fit in size bytes. */
bool http_json_quote(const char *s, char *out, size_t size);
/* RFC 3339 UTC time with milliseconds: "2025-01-21T10:00:00.123Z". */
void http_timestamp(char out[32]);

#endif
