/* http.c - the libmicrohttpd wrapper (see http.h).
 *
 * libmicrohttpd calls on_request() several times per request: first with
 * the headers (we route and refuse early: 404, 405, 413 by Content-Length,
 * 415, the check hook), then once per piece of body (appended, capped),
 * then with no data (we call the handler).  An early answer to a request
 * with a body is held until that body has been read and dropped (up to
 * drain_limit), so the client reads it instead of a connection reset.  A suspended request is
 * resumed by libmicrohttpd calling on_request() again with no data; the
 * handler runs again and finds its state.  on_completed() runs once per
 * request, whatever happened, and is the one place request memory is
 * freed.
 *
 * The connection cap is enforced here, not by MHD_OPTION_CONNECTION_LIMIT:
 * with Debian's libmicrohttpd 0.9.75 (epoll, thread pool), a daemon whose
 * open connections reach exactly that limit sometimes stops serving the
 * ones it holds until they time out (wrk -c257 against a limit of 257:
 * 157 requests/s instead of 35,000, then 15 s of silence).  So the
 * library's own limit is set out of reach (the cap times the threads, as
 * it splits it among them) and the accept policy takes a slot of
 * `connections` for each connection it lets in, or refuses it when none
 * is left (closed at once); the connection notifier gives the slot back
 * on close.  (Were libmicrohttpd to fail setting up an accepted
 * connection, out of memory, its slot would stay taken.)
 *
 * The daemon polls with poll(2), not epoll: with epoll, 0.9.75's
 * MHD_quiesce_daemon() removes the listen socket from each worker's epoll
 * set and aborts the process when a worker that already saw the quiesce
 * flag removed it first (ENOENT: "Failed to remove listen FD from epoll
 * set", seen on SIGTERM under load).  With poll(2) quiescing only sets
 * the flag and wakes the workers, and lode's connection counts are far
 * below where epoll would pay off. */
#include "http.h"
#include "cors.h"
#include "jsonmem.h"
#include "sbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS 6

struct http_server {
    struct MHD_Daemon *daemon;
    http_config cfg;
    pthread_mutex_t lock;
    int in_flight;
    int port;
    atomic_int quiesced;  /* answers say Connection: close from then on */
    atomic_int connections;   /* open now */
};

/* A block of request-scoped memory; blocks form a list freed at the end. */
typedef struct arena_block {
    struct arena_block *next;
    max_align_t data[];
} arena_block;

struct http_request {
    http_server *srv;
    struct MHD_Connection *conn;
    const char *method;          /* from libmicrohttpd, valid all request */
    char *path;
    int route;                   /* index, or -1 when unmatched */
    char *params[HTTP_MAX_PARAMS];
    char *body;
    size_t body_len, body_cap;
    json_t *json;
    arena_block *arena;
    void *state;
    void (*state_free)(void *);
    struct { char *name, *value; } headers[HTTP_MAX_HEADERS];
    int n_headers;
    int status;                  /* 0 until answered */
    int body_error;              /* 413 or 500 found while reading the
                                    body, answered once it is all in */
    size_t discarded;            /* body bytes dropped after body_error */
    bool defer;                  /* a body is coming: keep an early answer
                                    until it has been read (drain) */
    struct MHD_Response *deferred;  /* that answer, not yet queued */
    bool suspended;
    char id[HTTP_REQUEST_ID_MAX + 1];  /* X-Request-Id, on every answer */
    int fd;                      /* the connection's socket */
    struct timespec start;
    char client[INET6_ADDRSTRLEN];  /* http_client_addr, once asked */
    bool client_known;
    uint64_t bytes_out;          /* of a buffer answer's body */
    http_stream *stream;         /* a streamed answer (a reference) */
    const char *origin;          /* Origin, read when CORS is on */
    const char *preflight_allow; /* a CORS preflight: the path's methods */
};

/* A streamed answer: written by any thread, read by libmicrohttpd's
 * content reader (on_stream_read) on an HTTP thread.  `lock` guards it
 * all; references: the writer's and the response's. */
struct http_stream {
    pthread_mutex_t lock;
    int refs;
    struct MHD_Connection *conn;
    int fd;
    sbuf buf;
    size_t off;                  /* bytes of buf already sent */
    bool closed;                 /* the writer is done */
    bool gone;                   /* the response ended, or the client left */
    bool abort;                  /* end the response with an error */
    bool suspended;              /* the reader parked the connection */
    uint64_t sent;               /* bytes handed to libmicrohttpd */
};

#define HTTP_STREAM_MAX_BUFFER (16u << 20)

/* ---- pure helpers --------------------------------------------------- */

bool http_match(const char *pattern, const char *path, size_t params[][2],
                int *n_params)
{
    const char *p = pattern, *s = path;
    int n = 0;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (len == 0 || n == HTTP_MAX_PARAMS)
                return false;
            params[n][0] = (size_t)(s - path);
            params[n][1] = len;
            n++;
            s += len;
            p += 2;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return false;
        }
    }
    /* a trailing slash on the path is accepted: "/health/" */
    if (*s == '/' && s[1] == '\0' && s != path && s[-1] != '/')
        s++;
    if (*p || *s)
        return false;
    *n_params = n;
    return true;
}

bool http_json_depth_ok(const char *text, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

bool http_is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* application/vnd.foo+json */
    return n > 5 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

bool http_bearer_ok(const char *auth, const char *token)
{
    if (!auth || !token || !*token)
        return false;
    while (*auth == ' ')
        auth++;
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    auth += 7;
    while (*auth == ' ')
        auth++;
    size_t al = strlen(auth), tl = strlen(token);
    while (al > 0 && (auth[al - 1] == ' ' || auth[al - 1] == '\t'))
        al--;
    /* Compare every byte of the expected token whatever the input, so the
     * time taken does not reveal how much of it matched. */
    unsigned char diff = (unsigned char)(al != tl);
    for (size_t i = 0; i < tl; i++) {
        unsigned char a = i < al ? (unsigned char)auth[i] : 0;
        diff |= a ^ (unsigned char)token[i];
    }
    return diff == 0;
}

void http_timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* Is the text a numeric IPv4 or IPv6 address?  Copies it to out. */
static bool numeric_addr(const char *s, size_t len, char *out, size_t size)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof buf || len >= size)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    unsigned char bin[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, buf, bin) != 1 && inet_pton(AF_INET6, buf, bin) != 1)
        return false;
    memcpy(out, buf, len + 1);
    return true;
}

bool http_forwarded_for(const char *xff, int hops, char *out, size_t size)
{
    if (!xff || hops < 1)
        return false;
    /* walk the entries from the right */
    const char *end = xff + strlen(xff);
    for (int hop = 1;; hop++) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        bool leftmost = start == xff;
        if (hop == hops || leftmost) {
            while (start < end && (*start == ' ' || *start == '\t'))
                start++;
            const char *e = end;
            while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            return numeric_addr(start, (size_t)(e - start), out, size);
        }
        end = start - 1;
    }
}

/* ---- request accessors ------------------------------------------------ */

const char *http_method(const http_request *req) { return req->method; }
const char *http_path(const http_request *req) { return req->path; }
int http_route_index(const http_request *req) { return req->route; }
bool http_responded(const http_request *req) { return req->status != 0; }
void *http_state(const http_request *req) { return req->state; }

const char *http_param(const http_request *req, int i)
{
    return i >= 0 && i < HTTP_MAX_PARAMS ? req->params[i] : NULL;
}

const char *http_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* X-Forwarded-For headers joined with ", " (RFC 9110: one list), keeping
 * the last bytes when they are long: only the right end is read. */
typedef struct xff_buf {
    char text[1024];
    size_t len;
} xff_buf;

static enum MHD_Result collect_xff(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    (void)kind;
    xff_buf *b = cls;
    if (!key || !value || strcasecmp(key, "X-Forwarded-For") != 0)
        return MHD_YES;
    const char *parts[2] = {b->len ? ", " : "", value};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(parts[i]);
        if (n >= sizeof b->text) {
            parts[i] += n - (sizeof b->text - 1);
            n = sizeof b->text - 1;
        }
        if (b->len + n >= sizeof b->text) {
            size_t drop = b->len + n - (sizeof b->text - 1);
            memmove(b->text, b->text + drop, b->len - drop);
            b->len -= drop;
        }
        memcpy(b->text + b->len, parts[i], n);
        b->len += n;
        b->text[b->len] = '\0';
    }
    return MHD_YES;
}

const char *http_client_addr(http_request *req)
{
    if (req->client_known)
        return req->client;
    req->client_known = true;
    req->client[0] = '\0';
    if (req->srv->cfg.trusted_proxies > 0) {
        xff_buf b = {.len = 0};
        b.text[0] = '\0';
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_xff, &b);
        if (http_forwarded_for(b.text, req->srv->cfg.trusted_proxies,
                               req->client, sizeof req->client))
            return req->client;
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, req->client, sizeof req->client);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))   /* a dual-stack socket */
            inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, req->client,
                      sizeof req->client);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, req->client,
                      sizeof req->client);
    }
    return req->client;
}

uint64_t http_bytes_sent(const http_request *req)
{
    if (strcmp(req->method, "HEAD") == 0)
        return 0;
    if (!req->stream)
        return req->bytes_out;
    pthread_mutex_lock(&req->stream->lock);
    uint64_t n = req->stream->sent;
    pthread_mutex_unlock(&req->stream->lock);
    return n;
}

const char *http_query(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_body(const http_request *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

double http_elapsed(const http_request *req)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - req->start.tv_sec) +
           (double)(now.tv_nsec - req->start.tv_nsec) / 1e9;
}

void *http_alloc(http_request *req, size_t size)
{
    if (size > SIZE_MAX - sizeof(arena_block))
        return NULL;
    arena_block *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->next = req->arena;
    req->arena = b;
    return b->data;
}

void *http_alloc_state(http_request *req, size_t size)
{
    void *p = http_alloc(req, size);
    if (!p) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return NULL;
    }
    memset(p, 0, size);
    return p;
}

static char *arena_strndup(http_request *req, const char *s, size_t n)
{
    char *d = http_alloc(req, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void http_set_state(http_request *req, void *state, void (*free_fn)(void *))
{
    req->state = state;
    req->state_free = free_fn;
}

json_t *http_json_body(http_request *req)
{
    if (req->json)
        return req->json;
    if (req->body_len == 0) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_json",
                           "the request body must be a JSON object");
        return NULL;
    }
    if (!http_json_depth_ok(req->body, req->body_len,
                            req->srv->cfg.max_json_depth)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_json",
                           "the JSON body is nested more than %d levels deep",
                           req->srv->cfg.max_json_depth);
        return NULL;
    }
    json_error_t jerr;
    unsigned long failed = jsonmem_failures();
    json_t *v = json_loadb(req->body, req->body_len, JSON_ALLOW_NUL, &jerr);
    if (!v && jsonmem_failures() != failed) {
        /* jansson says "invalid JSON" when it runs out of memory: the
         * body may be fine, the fault is ours */
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory parsing the request body");
        return NULL;
    }
    if (!v) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_json",
                           "the body is not valid JSON: %s (at byte %d)",
                           jerr.text, jerr.position);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_respond_error(req, 400, "invalid_request_error", "invalid_json",
                           "the request body must be a JSON object");
        return NULL;
    }
    req->json = v;
    return v;
}

/* ---- answering -------------------------------------------------------- */

void http_add_header(http_request *req, const char *name, const char *value)
{
    if (req->n_headers == HTTP_MAX_HEADERS)
        return;
    char *n = arena_strndup(req, name, strlen(name));
    char *v = arena_strndup(req, value, strlen(value));
    if (!n || !v)
        return;
    req->headers[req->n_headers].name = n;
    req->headers[req->n_headers].value = v;
    req->n_headers++;
}

/* What every answer carries: the handler's headers, the request id,
 * nosniff, the CORS headers when CORS is on, and Connection: close once
 * the server is stopping. */
static void add_common_headers(http_request *req, struct MHD_Response *r)
{
    for (int i = 0; i < req->n_headers; i++)
        MHD_add_response_header(r, req->headers[i].name, req->headers[i].value);
    if (req->id[0])
        MHD_add_response_header(r, "X-Request-Id", req->id);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    cors_header cors[CORS_MAX_HEADERS];
    int n_cors = cors_headers(req->srv->cfg.cors, req->origin,
                              req->preflight_allow != NULL,
                              req->preflight_allow, cors);
    for (int i = 0; i < n_cors; i++)
        MHD_add_response_header(r, cors[i].name, cors[i].value);
    if (atomic_load(&req->srv->quiesced))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* The client's X-Request-Id when it is a plain token (letters, digits,
 * '.', '_', '-', at most HTTP_REQUEST_ID_MAX), else a fresh one: 16 hex
 * digits of a per-process random start plus a counter, so ids are
 * unique within a run and unguessable across runs. */
static void set_request_id(http_request *req)
{
    static atomic_uint_fast64_t next;
    static atomic_int seeded;
    const char *in = http_header(req, "X-Request-Id");
    size_t n = in ? strlen(in) : 0;
    bool ok = n > 0 && n <= HTTP_REQUEST_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (in[i] >= 'a' && in[i] <= 'z') || (in[i] >= 'A' && in[i] <= 'Z') ||
             (in[i] >= '0' && in[i] <= '9') || in[i] == '.' || in[i] == '_' ||
             in[i] == '-';
    if (ok) {
        memcpy(req->id, in, n + 1);
        return;
    }
    if (!atomic_exchange(&seeded, 1)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^
                        (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid();
        atomic_fetch_add(&next, seed);
    }
    uint64_t v = atomic_fetch_add(&next, 1);
    v = (v ^ v >> 31) * 0xBF58476D1CE4E5B9ull;   /* splitmix64's finaliser */
    v ^= v >> 27;
    snprintf(req->id, sizeof req->id, "%016llx", (unsigned long long)v);
}

const char *http_request_id(const http_request *req)
{
    return req->id;
}

/* Queue an answer whose body is `data`, handed to libmicrohttpd as `mode`
 * says: MUST_FREE takes a malloc'd buffer (freed here on failure),
 * MUST_COPY and PERSISTENT need no allocation of ours, so that an answer
 * can still be sent when memory has run out. */
static void respond_mode(http_request *req, int status, const char *content_type,
                         const char *data, size_t len,
                         enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = NULL;
    if (!req->status)   /* answered already: a bug, but never twice */
        r = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free((void *)data);
        if (!req->status)
            req->status = 500;
        return;
    }
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    add_common_headers(req, r);
    req->bytes_out = len;
    if (req->defer) {   /* answered before the body: sent once it is read */
        req->deferred = r;
        req->status = status;
        return;
    }
    if (MHD_queue_response(req->conn, (unsigned)status, r) == MHD_YES)
        req->status = status;
    else
        req->status = 500; /* the connection is being closed */
    MHD_destroy_response(r);
}

/* Queue `data` (malloc'd; ownership passes to libmicrohttpd). */
static void respond_owned(http_request *req, int status,
                          const char *content_type, char *data, size_t len)
{
    respond_mode(req, status, content_type, data, len, MHD_RESPMEM_MUST_FREE);
}

void http_respond_text(http_request *req, int status,
                       const char *content_type, const char *text, size_t len)
{
    respond_mode(req, status, content_type, text, len, MHD_RESPMEM_MUST_COPY);
}

/* The answer when memory ran out building another: a constant. */
static const char http_oom_body[] =
    "{\"error\":{\"message\":\"out of memory\",\"type\":"
    "\"server_error\",\"code\":\"out_of_memory\"}}";

void http_respond_json(http_request *req, int status, json_t *body)
{
    /* 9 significant digits round-trip a float32 exactly */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9))
                      : NULL;
    json_decref(body);
    if (!text) {
        respond_mode(req, 500, "application/json", http_oom_body,
                     sizeof http_oom_body - 1, MHD_RESPMEM_PERSISTENT);
        return;
    }
    respond_owned(req, status, "application/json", text, strlen(text));
}

bool http_json_quote(const char *s, char *out, size_t size)
{
    size_t n = 0;
    bool ok = s && size >= 3;
    if (ok)
        out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
        char esc[8];
        int k;
        if (*p == '"' || *p == '\\')
            k = snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p < 0x20)
            k = snprintf(esc, sizeof esc, "\\u%04x", *p);
        else
            k = snprintf(esc, sizeof esc, "%c", *p);
        ok = n + (size_t)k + 2 <= size;
        if (ok) {
            memcpy(out + n, esc, (size_t)k);
            n += (size_t)k;
        }
    }
    if (!ok) {
        snprintf(out, size, "null");
        return s == NULL;
    }
    out[n++] = '"';
    out[n] = '\0';
    return true;
}

void http_respond_json_or(http_request *req, int status, json_t *body,
                          const char *fallback)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9))
                      : NULL;
    json_decref(body);
    if (!text) {
        respond_mode(req, status, "application/json", fallback, strlen(fallback),
                     MHD_RESPMEM_MUST_COPY);
        return;
    }
    respond_owned(req, status, "application/json", text, strlen(text));
}

void http_respond_error(http_request *req, int status, const char *type,
                        const char *code, const char *fmt, ...)
{
    char msg[LODE_ERROR_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* messages may quote client text: keep the JSON valid whatever it is */
    json_t *m = json_string(msg);
    if (!m)
        m = json_string("(the message quoted text that is not UTF-8)");
    json_t *body = json_pack("{s:{s:o,s:s,s:s}}", "error", "message", m,
                             "type", type, "code", code);
    /* a failure of the server (not load shedding) is logged, with the id
     * the client got, so a report can be matched with the log */
    if (status >= 500 && status != 503)
        fprintf(stderr, "lode: %d %s %s (request %s): %s\n", status, req->method,
                req->path ? req->path : "?", req->id, msg);
    http_respond_json(req, status, body);
}

void http_suspend(http_request *req)
{
    req->suspended = true;
    MHD_suspend_connection(req->conn);
}

void http_resume(http_request *req)
{
    MHD_resume_connection(req->conn);
}

/* Is the peer of this socket gone?  A peek: 0 bytes is an orderly close,
 * an error other than "nothing yet" a reset. */
static bool socket_gone(int fd)
{
    if (fd < 0)
        return false;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r > 0)
        return false;
    if (r == 0)
        return true;
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

bool http_client_gone(http_request *req)
{
    return socket_gone(req->fd);
}

/* ---- streamed answers ----------------------------------------------------- */

static void stream_unref(http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left)
        return;
    sbuf_free(&s->buf);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Wake a parked connection; lock held. */
static void stream_wake(http_stream *s)
{
    if (s->suspended && !s->gone) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static ssize_t on_stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    http_stream *s = cls;
    pthread_mutex_lock(&s->lock);
    ssize_t n;
    if (s->abort) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (s->buf.len > s->off) {
        size_t k = s->buf.len - s->off;
        if (k > max)
            k = max;
        memcpy(out, s->buf.data + s->off, k);
        s->off += k;
        s->sent += k;
        if (s->off == s->buf.len) {
            s->off = 0;
            s->buf.len = 0;
        }
        n = (ssize_t)k;
    } else if (s->closed) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* nothing yet: park the connection until the next write (the
         * pattern libmicrohttpd prescribes for a reader without data) */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void on_stream_free(void *cls)
{
    http_stream *s = cls;
    pthread_mutex_lock(&s->lock);
    s->gone = true;
    s->suspended = false;
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}

http_stream *http_respond_stream(http_request *req, int status,
                                 const char *content_type)
{
    if (req->status)
        return NULL;
    http_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 3;   /* the writer's, the response's, the request's */
    s->conn = req->conn;
    s->fd = req->fd;
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16384, on_stream_read, s, on_stream_free);
    if (!r) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    req->stream = s;           /* for http_bytes_sent; dropped at the end */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    add_common_headers(req, r);
    bool queued = MHD_queue_response(req->conn, (unsigned)status, r) == MHD_YES;
    req->status = queued ? status : 500;
    MHD_destroy_response(r);   /* on_stream_free runs when it is done */
    if (!queued) {
        stream_unref(s);       /* the writer's reference; nothing to write to */
        return NULL;
    }
    return s;
}

bool http_stream_write(http_stream *s, const char *data, size_t len)
{
    pthread_mutex_lock(&s->lock);
    bool ok = !s->gone && !s->abort && !s->closed;
    if (ok && s->buf.len + len > HTTP_STREAM_MAX_BUFFER) {
        /* a client that does not read: give up on it */
        s->abort = true;
        ok = false;
    } else if (ok) {
        sbuf_append(&s->buf, data, len);
        if (s->buf.oom) {
            s->abort = true;
            ok = false;
        }
    }
    stream_wake(s);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void http_stream_close(http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    stream_wake(s);
    pthread_mutex_unlock(&s->lock);
}

bool http_stream_gone(http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    if (!s->gone && !s->abort && s->suspended && socket_gone(s->fd)) {
        /* let libmicrohttpd end it: the reader answers with an error */
        s->abort = true;
        stream_wake(s);
    }
    bool gone = s->gone || s->abort;
    pthread_mutex_unlock(&s->lock);
    return gone;
}

void http_stream_release(http_stream *s)
{
    if (s)
        stream_unref(s);
}

/* ---- the libmicrohttpd callbacks -------------------------------------- */

static bool method_is(const char *method, const char *want)
{
    if (strcmp(want, "GET") == 0 && strcmp(method, "HEAD") == 0)
        return true;
    return strcmp(method, want) == 0;
}

/* Add a route's method (and HEAD with GET) to an Allow list. */
#define HTTP_ALLOW_MAX 128
static void allow_add(char allow[HTTP_ALLOW_MAX], const char *method)
{
    if (strstr(allow, method) ||
        strlen(allow) + strlen(method) + 8 >= HTTP_ALLOW_MAX)
        return;
    if (allow[0])
        strcat(allow, ", ");
    strcat(allow, method);
    if (strcmp(method, "GET") == 0)
        strcat(allow, ", HEAD");
}

/* Route a new request; answers 404/405 itself.  Returns false if it did. */
static bool route_request(http_request *req)
{
    const http_config *cfg = &req->srv->cfg;
    char allow[HTTP_ALLOW_MAX] = "";
    size_t params[HTTP_MAX_PARAMS][2];
    int n_params;
    for (int i = 0; i < cfg->n_routes; i++) {
        const http_route *r = &cfg->routes[i];
        if (!http_match(r->pattern, req->path, params, &n_params))
            continue;
        if (!method_is(req->method, r->method)) {
            allow_add(allow, r->method);
            continue;
        }
        req->route = i;
        for (int p = 0; p < n_params; p++) {
            req->params[p] = arena_strndup(req, req->path + params[p][0],
                                           params[p][1]);
            if (!req->params[p]) {
                http_respond_error(req, 500, "server_error", "out_of_memory",
                                   "out of memory");
                return false;
            }
        }
        return true;
    }
    if (allow[0]) {
        http_add_header(req, "Allow", allow);
        http_respond_error(req, 405, "invalid_request_error",
                           "method_not_allowed",
                           "%s is not allowed on %s; allowed: %s",
                           req->method, req->path, allow);
    } else {
        http_respond_error(req, 404, "not_found_error", "not_found",
                           "no route %s %s", req->method, req->path);
    }
    return false;
}

/* A CORS preflight (cors.h) from an allowed origin for a routed path:
 * answered 204 with the path's methods.  Anything else (CORS off, an
 * origin not allowed, an unknown path) is routed as any OPTIONS request
 * is (405 or 404), without the Allow-* headers.  Returns true if it
 * answered. */
static bool answer_preflight(http_request *req)
{
    const http_config *cfg = &req->srv->cfg;
    if (!cfg->cors ||
        !cors_is_preflight(req->method, req->origin,
                           http_header(req, "Access-Control-Request-Method")) ||
        !cors_allow_origin(cfg->cors, req->origin))
        return false;
    char allow[HTTP_ALLOW_MAX] = "";
    size_t params[HTTP_MAX_PARAMS][2];
    int n_params;
    for (int i = 0; i < cfg->n_routes; i++)
        if (http_match(cfg->routes[i].pattern, req->path, params, &n_params))
            allow_add(allow, cfg->routes[i].method);
    if (!allow[0])
        return false;
    char *methods = arena_strndup(req, allow, strlen(allow));
    if (!methods) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return true;
    }
    req->preflight_allow = methods;
    respond_mode(req, 204, NULL, "", 0, MHD_RESPMEM_PERSISTENT);
    return true;
}

/* How much of a body is read and dropped after an early answer or an
 * oversized body before the connection is closed instead: enough for
 * any client that simply sends what it has, bounded so that a client
 * cannot keep a thread reading forever (the body timeout bounds the
 * time).  nginx's lingering close does the same. */
#define HTTP_DRAIN_FLOOR ((size_t)64 << 20)
static size_t drain_limit(const http_server *srv)
{
    size_t four = srv->cfg.max_body > SIZE_MAX / 8 ? SIZE_MAX / 2 : 4 * srv->cfg.max_body;
    return four > HTTP_DRAIN_FLOOR ? four : HTTP_DRAIN_FLOOR;
}

/* The time a body may take: the body timeout, or a minute without one. */
static bool body_too_slow(http_request *req)
{
    int t = req->srv->cfg.body_timeout_s > 0 ? req->srv->cfg.body_timeout_s : 60;
    return http_elapsed(req) > t;
}

/* First call: create the request, route it and refuse what we can before
 * any body is read. */
static http_request *begin_request(http_server *srv,
                                   struct MHD_Connection *conn,
                                   const char *url, const char *method)
{
    http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->srv = srv;
    req->conn = conn;
    req->method = method;
    req->route = -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req->fd = ci ? (int)ci->connect_fd : -1;
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    pthread_mutex_lock(&srv->lock);
    srv->in_flight++;
    pthread_mutex_unlock(&srv->lock);
    set_request_id(req);
    req->path = arena_strndup(req, url, strlen(url));
    if (!req->path) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return req;
    }
    /* An answer given before the body has been read waits for it (the
     * body is read and dropped, up to drain_limit): closing a socket with
     * unread data makes the kernel reset the connection, and a client
     * that sends its whole body before reading (urllib, most scripts)
     * then sees "connection reset" instead of the answer.  Not when the
     * client waits for "100 Continue": it sends no body after an early
     * answer, nor when the body announced is beyond what we would read. */
    const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *expect = http_header(req, MHD_HTTP_HEADER_EXPECT);
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    req->defer = (declared > 0 || (te && strcasestr(te, "chunked"))) &&
                 !(expect && strcasecmp(expect, "100-continue") == 0) &&
                 declared <= drain_limit(srv);
    if (srv->cfg.cors)
        req->origin = http_header(req, "Origin");
    if (answer_preflight(req) || !route_request(req))
        return req;
    const http_route *route = &srv->cfg.routes[req->route];
    if (cl && declared > srv->cfg.max_body) {
        http_respond_error(req, 413, "invalid_request_error",
                           "request_too_large",
                           "the request body is %s bytes; the limit is %zu",
                           cl, srv->cfg.max_body);
        return req;
    }
    const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if ((route->flags & HTTP_JSON_BODY) && ct && !http_is_json_type(ct)) {
        http_respond_error(req, 415, "invalid_request_error",
                           "unsupported_media_type",
                           "the body must be JSON (Content-Type: "
                           "application/json), not %.100s", ct);
        return req;
    }
    if (srv->cfg.check)
        srv->cfg.check(req, route, srv->cfg.app);
    return req;
}

/* Append a piece of body.  libmicrohttpd cannot send an answer while a
 * body is coming in, so an error is noted (body_error) and answered when
 * the body has been read (and dropped). */
static void append_body(http_request *req, const char *data, size_t size)
{
    size_t max = req->srv->cfg.max_body;
    if (size > max - req->body_len) {
        req->body_error = 413;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    if (req->body_len + size + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + size + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(req->body, cap);
        if (!b) {
            req->body_error = 500;
            return;
        }
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
    req->body[req->body_len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req) {
        req = begin_request(srv, conn, url, method);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (req->status) {          /* refused early: drop what still comes */
        if (*upload_size) {
            req->discarded += *upload_size;
            *upload_size = 0;
            /* past the bounds: close (the client may see a reset) */
            return req->discarded > drain_limit(srv) || body_too_slow(req) ? MHD_NO : MHD_YES;
        }
        if (req->deferred) {    /* the body is in: now the answer */
            if (MHD_queue_response(conn, (unsigned)req->status, req->deferred) != MHD_YES)
                req->status = 500;
            MHD_destroy_response(req->deferred);
            req->deferred = NULL;
        }
        return MHD_YES;
    }
    req->defer = false;         /* from here on, answers go out at once */
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (srv->cfg.body_timeout_s > 0 &&
            http_elapsed(req) > srv->cfg.body_timeout_s) {
            /* a body trickling in (slowloris): close the connection, the
             * one thing libmicrohttpd allows mid-body */
            req->status = 408;
            return MHD_NO;
        }
        if (req->body_error) {
            req->discarded += n;
            /* read and drop what a client sends to answer 413 properly;
             * close on one that keeps on sending */
            if (req->discarded > drain_limit(srv)) {
                req->status = req->body_error;
                return MHD_NO;
            }
            return MHD_YES;
        }
        append_body(req, upload, n);
        return MHD_YES;
    }
    if (req->body_error == 413) {
        http_respond_error(req, 413, "invalid_request_error",
                           "request_too_large",
                           "the request body is over the limit of %zu bytes",
                           srv->cfg.max_body);
        return MHD_YES;
    }
    if (req->body_error) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory for the request body");
        return MHD_YES;
    }
    req->suspended = false;
    srv->cfg.routes[req->route].handler(req, srv->cfg.app);
    if (!req->status && !req->suspended)
        http_respond_error(req, 500, "server_error", "internal_error",
                           "the handler for %s gave no answer",
                           srv->cfg.routes[req->route].name);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (srv->cfg.done)
        srv->cfg.done(srv->cfg.app, req, req->status ? req->status : 499,
                      http_elapsed(req));
    if (req->stream)
        stream_unref(req->stream);
    if (req->deferred)          /* the client left before its body ended */
        MHD_destroy_response(req->deferred);
    if (req->state_free)
        req->state_free(req->state);
    json_decref(req->json);
    free(req->body);
    for (arena_block *b = req->arena, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(req);
    pthread_mutex_lock(&srv->lock);
    srv->in_flight--;
    pthread_mutex_unlock(&srv->lock);
}

/* ---- the server ------------------------------------------------------- */

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr,
                                 socklen_t len)
{
    (void)addr;
    (void)len;
    http_server *s = cls;
    /* take a slot now (both workers accept at once); it is given back when
     * the connection closes */
    int n = atomic_load(&s->connections);
    do {
        if (n >= s->cfg.max_connections)
            return MHD_NO;
    } while (!atomic_compare_exchange_weak(&s->connections, &n, n + 1));
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    http_server *s = cls;
    /* release on the close of a connection seen to start, so that a
     * close reported without a start can never release a slot twice */
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        *ctx = s;
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *ctx)
        atomic_fetch_sub(&s->connections, 1);
}

int http_start(const http_config *cfg, http_server **out, lode_error *err)
{
    *out = NULL;
    const char *host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0)
        return lode_error_set(err, LODE_EINVAL, "cannot resolve host %s: %s",
                              host, gai_strerror(gai));
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned threads = (unsigned)(cfg->threads > 0 ? cfg->threads : 1);
    s->daemon = MHD_start_daemon(
        flags, 0, on_accept, s, on_request, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections * threads + 16,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return lode_error_set(err, LODE_EIO,
                              "cannot listen on %s port %d (in use, or not "
                              "an address of this machine?)", host, cfg->port);
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return 0;
}

int http_port(const http_server *s) { return s->port; }

void http_quiesce(http_server *s)
{
    atomic_store(&s->quiesced, 1);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd == MHD_INVALID_SOCKET)
        return;
    /* Connections the kernel has completed but libmicrohttpd not yet
     * accepted would be reset by close(): take them here and hand them
     * over (the accept policy still applies), so that every client whose
     * connection was established gets its answer and later ones are
     * refused. */
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0) {
        for (;;) {
            struct sockaddr_storage addr;
            socklen_t len = sizeof addr;
            int c = accept4(fd, (struct sockaddr *)&addr, &len,
                            SOCK_CLOEXEC);
            if (c < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                break;
            }
            /* on failure libmicrohttpd has closed c */
            (void)MHD_add_connection(s->daemon, c, (struct sockaddr *)&addr,
                                     len);
        }
    }
    close(fd);
}

int http_in_flight(http_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->in_flight;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
