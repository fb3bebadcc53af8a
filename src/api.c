/* api.c - the routing table of `lode serve` and the policy every request
 * passes before its body is read: rate limits, authentication, shutdown,
 * memory pressure (see api.h); and the access log of requests that end.
 *
 * Auth follows one rule per route class.  Write and admin routes need
 * `Authorization: Bearer $LODE_API_KEY`; with no key configured they are
 * refused (403) unless the server listens on loopback only, where the
 * machine's own users are trusted as with any local daemon.  Read routes
 * are open unless LODE_READ_KEY is set (then either key works).  /health
 * is always open, for the platform's health checks. */
#include "api.h"
#include "accesslog.h"
#include "ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const http_route api_routes[] = {
    /* the web page (web.c): one route per file of web/ */
    {"GET", "/", api_web, "/", 0, API_PUBLIC},
    {"GET", "/index.html", api_web, "/index.html", 0, API_PUBLIC},
    {"GET", "/app.js", api_web, "/app.js", 0, API_PUBLIC},
    {"GET", "/app.css", api_web, "/app.css", 0, API_PUBLIC},
    {"GET", "/favicon.svg", api_web, "/favicon.svg", 0, API_PUBLIC},
    /* the API's OpenAPI document (docs/openapi.json), embedded the same way */
    {"GET", "/openapi.json", api_web, "/openapi.json", 0, API_PUBLIC},
    {"GET", "/health", api_health, "/health", 0, API_PUBLIC},
    {"GET", "/model-status", api_model_status, "/model-status", 0, API_READ},
    {"GET", "/memory-status", api_memory_status, "/memory-status", 0,
     API_READ},
    {"GET", "/metrics", api_metrics, "/metrics", 0, API_READ},
    {"POST", "/model/load", api_model_load, "/model/load", HTTP_JSON_BODY,
     API_ADMIN | API_HEAVY | API_LIMITED},
    {"POST", "/model/unload", api_model_unload, "/model/unload",
     HTTP_JSON_BODY, API_ADMIN | API_LIMITED},
    {"POST", "/v1/embeddings", api_embeddings, "/v1/embeddings",
     HTTP_JSON_BODY, API_READ | API_HEAVY | API_LIMITED},
    {"GET", "/v1/models", api_models, "/v1/models", 0, API_READ},
    {"POST", "/search", api_search, "/search", HTTP_JSON_BODY,
     API_READ | API_HEAVY | API_LIMITED},
    {"POST", "/eval", api_eval, "/eval", HTTP_JSON_BODY,
     API_READ | API_HEAVY | API_LIMITED},
    {"GET", "/collections", api_collections_list, "/collections", 0,
     API_READ},
    {"POST", "/collections", api_collections_create, "/collections",
     HTTP_JSON_BODY, API_WRITE | API_LIMITED},
    {"DELETE", "/collections/{}", api_collections_delete,
     "/collections/{name}", 0, API_WRITE | API_LIMITED},
    {"POST", "/collections/{}/documents", api_documents_add,
     "/collections/{name}/documents", HTTP_JSON_BODY,
     API_WRITE | API_HEAVY | API_LIMITED},
    {"GET", "/collections/{}/documents", api_documents_list,
     "/collections/{name}/documents", 0, API_READ},
    {"POST", "/collections/{}/files", api_files_add,
     "/collections/{name}/files", 0, API_WRITE | API_HEAVY | API_LIMITED},
    {"GET", "/collections/{}/documents/{}", api_document_get,
     "/collections/{name}/documents/{id}", 0, API_READ},
    {"DELETE", "/collections/{}/documents/{}", api_document_delete,
     "/collections/{name}/documents/{id}", 0, API_WRITE | API_LIMITED},
    {"POST", "/chat", api_chat, "/chat", HTTP_JSON_BODY,
     API_READ | API_HEAVY | API_LIMITED},
    {"POST", "/v1/chat/completions", api_chat_completions,
     "/v1/chat/completions", HTTP_JSON_BODY, API_READ | API_HEAVY | API_LIMITED},
    /* ratings of answers: given by whoever may chat, exported with the
     * key (api_feedback.c) */
    {"POST", "/feedback", api_feedback_add, "/feedback", HTTP_JSON_BODY,
     API_READ | API_LIMITED},
    {"GET", "/feedback", api_feedback_export, "/feedback", 0, API_ADMIN},
    /* authenticated by the form's or webhook's signature (webhook.c) */
    {"POST", "/webhook/tally", api_webhook_tally, "/webhook/tally",
     HTTP_JSON_BODY, API_PUBLIC | API_HEAVY | API_LIMITED},
    /* any other name: a generic webhook (after tally, which wins) */
    {"POST", "/webhook/{}", api_webhook_generic, "/webhook/{name}",
     HTTP_JSON_BODY, API_PUBLIC | API_HEAVY | API_LIMITED},
};
const int api_n_routes = (int)(sizeof api_routes / sizeof api_routes[0]);

/* Readings of /proc and the cgroup files are shared for this long: a
 * health check polled by a load balancer or scraped metrics then cost a
 * lock, not file reads. */
#define API_MEMSTAT_CACHE_MS 250

/* Refresh a->mem and a->proc if older than API_MEMSTAT_CACHE_MS (a failed
 * read keeps the previous value).  Caller holds mem_lock. */
static void refresh_readings(api *a)
{
    int64_t now = sched_now_ms();
    if (a->mem_read_ms && now - a->mem_read_ms < API_MEMSTAT_CACHE_MS)
        return;
    memstat_system m;
    memstat_process p = {0};
    if (memstat_read_system(&m, NULL) == 0)
        a->mem = m;
    if (memstat_read_process(&p, NULL) == 0)
        a->proc = p;
    a->mem_read_ms = now;
}

void api_process_reading(api *a, memstat_process *out)
{
    pthread_mutex_lock(&a->mem_lock);
    refresh_readings(a);
    *out = a->proc;
    pthread_mutex_unlock(&a->mem_lock);
}

bool api_memory_reading(api *a, memstat_system *out)
{
    pthread_mutex_lock(&a->mem_lock);
    refresh_readings(a);
    *out = a->mem;
    pthread_mutex_unlock(&a->mem_lock);
    if (a->cfg.debug_memory_percent >= 0) {
        /* tests: pretend this share of the total is in use */
        out->percent_used = a->cfg.debug_memory_percent;
        out->used_bytes = (uint64_t)((double)out->total_bytes *
                                     a->cfg.debug_memory_percent / 100.0);
        if (out->used_bytes > out->total_bytes)
            out->used_bytes = out->total_bytes;
        out->available_bytes = out->total_bytes - out->used_bytes;
    }
    return out->percent_used >= a->cfg.memory_threshold;
}

void api_respond_lode_error(http_request *req, api *a, const lode_error *err)
{
    const char *msg = err->message[0] ? err->message : lode_strerror(err->code);
    switch (err->code) {
    case LODE_EINVAL:
    case LODE_EUTF8:
    case LODE_EEMPTY:
    case LODE_EFORMAT:
    case LODE_EUNSUPPORTED:
        http_respond_error(req, 400, "invalid_request_error", "invalid_input",
                           "%s", msg);
        return;
    case LODE_ELIMIT:
        http_respond_error(req, 400, "invalid_request_error", "limit_exceeded",
                           "%s", msg);
        return;
    case LODE_ENOTFOUND:
        http_respond_error(req, 404, "not_found_error", "not_found", "%s",
                           msg);
        return;
    case LODE_ENOMEM:   /* the server's fault, not the request's */
        http_respond_error(req, 500, "server_error", "out_of_memory", "%s", msg);
        return;
    case LODE_EBUSY: {
        sched_status st;
        sched_get_status(a->sched, &st);
        http_add_header(req, "Retry-After", "5");
        http_respond_error(req, 503, "server_error",
                           atomic_load(&a->shutting_down) ? "shutting_down"
                           : st.state == SCHED_LOADING ? "model_loading"
                                                       : "model_unavailable",
                           "%s", msg);
        return;
    }
    default:
        http_respond_error(req, 500, "server_error", "internal_error", "%s",
                           msg);
    }
}

bool api_query_int(http_request *req, const char *name, long long def,
                   long long max, long long *out)
{
    const char *v = http_query(req, name);
    *out = def;
    if (!v)
        return true;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0 || n > max) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_query",
                           "'%s' must be an integer from 0 to %lld", name,
                           max);
        return false;
    }
    *out = n;
    return true;
}

void api_refresh_stats(api *a)
{
    store_stats st;
    if (a->store && store_get_stats(a->store, NULL, &st, NULL) == 0) {
        pthread_mutex_lock(&a->stats_lock);
        a->stats = st;
        pthread_mutex_unlock(&a->stats_lock);
    }
}

/* Authentication for one route class; answers and returns false when
 * refused. */
static bool check_auth(http_request *req, api *a, int cls)
{
    const char *auth = http_header(req, "Authorization");
    const char *key = a->cfg.api_key && *a->cfg.api_key ? a->cfg.api_key
                                                        : NULL;
    const char *read_key = a->cfg.read_key && *a->cfg.read_key
                               ? a->cfg.read_key : NULL;
    if (cls == API_PUBLIC)
        return true;
    if (cls == API_READ) {
        if (!read_key || http_bearer_ok(auth, read_key) ||
            (key && http_bearer_ok(auth, key)))
            return true;
        http_add_header(req, "WWW-Authenticate", "Bearer");
        http_respond_error(req, 401, "authentication_error", "invalid_api_key",
                           "this server needs a key for reads: send "
                           "Authorization: Bearer $LODE_READ_KEY (or the "
                           "API key)");
        return false;
    }
    if (!key) {
        if (a->loopback)
            return true;
        http_respond_error(req, 403, "permission_error", "writes_disabled",
                           "write and admin routes are disabled on a server "
                           "reachable from the network without a key: start "
                           "it with LODE_API_KEY=... (or --api-key) and send "
                           "Authorization: Bearer <key>");
        return false;
    }
    if (http_bearer_ok(auth, key))
        return true;
    http_add_header(req, "WWW-Authenticate", "Bearer");
    http_respond_error(req, 401, "authentication_error", "invalid_api_key",
                       auth ? "the API key is not valid"
                            : "this route needs Authorization: Bearer "
                              "$LODE_API_KEY");
    return false;
}

bool api_authorize(http_request *req, api *a, int route_class)
{
    return check_auth(req, a, route_class);
}

/* The per-client rate limit of a limited route (--rate-limit): first, so
 * a client over its limit costs one table lookup, whatever it sends.
 * Loopback clients are exempt unless --rate-limit-loopback: the
 * machine's own users and scripts, as for auth. */
static bool check_rate(http_request *req, api *a)
{
    ratelimit_key key;
    if (ratelimit_key_parse(http_client_addr(req), &key) != 0)
        return true;   /* no address (not a socket): nothing to key on */
    if (!a->cfg.rate_limit_loopback && ratelimit_key_is_loopback(&key))
        return true;
    int retry_after;
    if (ratelimit_take(a->limiter, &key, sched_now_ms(), &retry_after))
        return true;
    char seconds[16];
    snprintf(seconds, sizeof seconds, "%d", retry_after);
    http_add_header(req, "Retry-After", seconds);
    http_respond_error(req, 429, "rate_limit_error", "rate_limit_exceeded",
                       "too many requests from %s: the limit is %g a second "
                       "(bursts of %d); retry after %d s",
                       http_client_addr(req), a->cfg.rate_limit,
                       a->cfg.rate_burst, retry_after);
    return false;
}

bool api_check(http_request *req, const http_route *route, void *app)
{
    api *a = app;
    if (a->limiter && (route->policy & API_LIMITED) && !check_rate(req, a))
        return false;
    if (!check_auth(req, a, route->policy & API_CLASS_MASK))
        return false;
    if (!(route->policy & API_HEAVY))
        return true;
    /* During a shutdown's grace period requests on connections already
     * open are still served (with Connection: close); what is left when
     * it ends gets 503 from the scheduler. */
    memstat_system mem;
    if (api_memory_reading(a, &mem)) {
        http_add_header(req, "Retry-After", "10");
        http_respond_error(req, 503, "server_error", "memory_pressure",
                           "memory use is at %.1f%% of %.0f MB (the limit for "
                           "this route is %.0f%%); retry later",
                           mem.percent_used,
                           (double)mem.total_bytes / (1024.0 * 1024.0),
                           a->cfg.memory_threshold);
        return false;
    }
    return true;
}

void api_done(void *app, http_request *req, int status, double seconds)
{
    api *a = app;
    int route = http_route_index(req);
    metrics_observe(a->metrics, route >= 0 ? route : api_n_routes, status,
                    seconds);
    if (!a->access_log)
        return;
    char now[32];
    http_timestamp(now);
    accesslog_entry e = {
        .time = now,
        .id = http_request_id(req),
        .client = http_client_addr(req),
        .method = http_method(req),
        .path = http_path(req),
        .route = route >= 0 ? api_routes[route].name : NULL,
        .status = status,
        .bytes = http_bytes_sent(req),
        .ms = seconds * 1000.0,
    };
    accesslog_write(a->access_log, &e);   /* a failure is counted there */
}
