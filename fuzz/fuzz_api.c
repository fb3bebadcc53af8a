/* fuzz_api.c - libFuzzer driver for the request handlers: each route's
 * JSON body through the real HTTP layer (src/http.c) and the API
 * (src/api*.c, src/webhook.c) without a socket.
 *
 * How, without a seam in lode: this file includes src/http.c (as fuzz_pdf
 * includes extract_pdf.c) with the few libmicrohttpd calls a request makes
 * (header lookup, responses, suspend/resume, connection info) renamed to
 * stubs below, and drives a request as libmicrohttpd would: on_request
 * once for the headers (routing, the api_check hook: auth, load shedding),
 * once with the body, once at its end (the handler), again after each
 * http_resume, then on_completed.  The api is set up as `lode serve` sets
 * it up, with a scheduler whose model cannot load (so work that needs it
 * is answered 503 rather than done) and a store that is still opening
 * (likewise): what is fuzzed is every check a body goes through before
 * the model or the database sees it.  A webhooks file configures the
 * generic webhook "h" and the Tally form "f".
 *
 * Byte 0 picks the route (every POST route with a JSON body but
 * /model/load and /model/unload, which read none), byte 1 the path
 * parameter (a valid collection name, an odd one, an over-long one); the
 * rest is the body.  Checked: every
 * request gets exactly one answer, never 500 (no handler fails to answer,
 * nothing runs out of memory here); the answer is JSON, an error one of
 * the {"error": {"message", "type", "code"}} shape with strings; a
 * suspended request is resumed within 10 s.  FUZZ_API_VERBOSE=1 prints
 * each answer.
 *
 * Seeds: fuzz/corpus/api/ (a valid and a few invalid bodies per route);
 * dictionary fuzz/api.dict. */
#define MHD_lookup_connection_value fuzz_lookup_connection_value
#define MHD_get_connection_info fuzz_get_connection_info
#define MHD_create_response_from_buffer fuzz_create_response_from_buffer
#define MHD_create_response_from_callback fuzz_create_response_from_callback
#define MHD_add_response_header fuzz_add_response_header
#define MHD_queue_response fuzz_queue_response
#define MHD_destroy_response fuzz_destroy_response
#define MHD_suspend_connection fuzz_suspend_connection
#define MHD_resume_connection fuzz_resume_connection
#include "../src/http.c"

#include <sys/mman.h>

#include "api.h"
#include "fuzz.h"
#include "guard.h"
#include "scheduler.h"
#include "server.h"
#include "webhook.h"

/* ---- libmicrohttpd, stubbed ------------------------------------------ */

struct MHD_Response {
    char *data;                      /* buffer responses */
    size_t len;
    MHD_ContentReaderFreeCallback free_cb;   /* streamed responses */
    void *cls;
    bool queued;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool resumed;
    struct MHD_Response *answer;     /* the queued response */
    unsigned status;
    int n_answers;
} fz = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL, 0, 0};

const char *fuzz_lookup_connection_value(struct MHD_Connection *c,
                                         enum MHD_ValueKind kind,
                                         const char *key)
{
    (void)c;
    if (kind == MHD_HEADER_KIND && strcasecmp(key, "Content-Type") == 0)
        return "application/json";
    return NULL;
}

const union MHD_ConnectionInfo *
fuzz_get_connection_info(struct MHD_Connection *c,
                         enum MHD_ConnectionInfoType type, ...)
{
    (void)c;
    (void)type;
    return NULL;   /* no socket: fd -1 */
}

struct MHD_Response *fuzz_create_response_from_buffer(
    size_t size, void *buffer, enum MHD_ResponseMemoryMode mode)
{
    FUZZ_CHECK(mode == MHD_RESPMEM_MUST_FREE, "mode %d", (int)mode);
    struct MHD_Response *r = calloc(1, sizeof *r);
    FUZZ_CHECK(r, "out of memory");
    r->data = buffer;
    r->len = size;
    return r;
}

struct MHD_Response *fuzz_create_response_from_callback(
    uint64_t size, size_t block, MHD_ContentReaderCallback crc, void *crc_cls,
    MHD_ContentReaderFreeCallback crfc)
{
    (void)size;
    (void)block;
    (void)crc;
    struct MHD_Response *r = calloc(1, sizeof *r);
    FUZZ_CHECK(r, "out of memory");
    r->free_cb = crfc;
    r->cls = crc_cls;
    return r;
}

enum MHD_Result fuzz_add_response_header(struct MHD_Response *r,
                                         const char *name, const char *value)
{
    FUZZ_CHECK(r && name && name[0] && value, "a bad response header");
    FUZZ_CHECK(!strpbrk(name, "\r\n:") && !strpbrk(value, "\r\n"),
               "header %s: %s would split the response", name, value);
    return MHD_YES;
}

enum MHD_Result fuzz_queue_response(struct MHD_Connection *c,
                                    unsigned int status,
                                    struct MHD_Response *r)
{
    (void)c;
    pthread_mutex_lock(&fz.lock);
    fz.n_answers++;
    FUZZ_CHECK(fz.n_answers == 1, "a second answer (%u)", status);
    fz.status = status;
    fz.answer = r;
    r->queued = true;
    pthread_mutex_unlock(&fz.lock);
    return MHD_YES;
}

static void response_free(struct MHD_Response *r)
{
    if (r->free_cb)
        r->free_cb(r->cls);
    free(r->data);
    free(r);
}

void fuzz_destroy_response(struct MHD_Response *r)
{
    if (!r->queued)    /* a queued one lives until the request ends */
        response_free(r);
}

void fuzz_suspend_connection(struct MHD_Connection *c) { (void)c; }

void fuzz_resume_connection(struct MHD_Connection *c)
{
    (void)c;
    pthread_mutex_lock(&fz.lock);
    fz.resumed = true;
    pthread_cond_broadcast(&fz.cond);
    pthread_mutex_unlock(&fz.lock);
}

/* ---- the server ------------------------------------------------------ */

static api a;
static http_server srv;
static struct MHD_Connection *const conn = (struct MHD_Connection *)&srv;

static const char webhooks[] =
    "{\"tally\": {\"f\": {\"embed_fields\": [\"Name\"]}},"
    " \"generic\": {\"h\": {\"text\": [\"/text\"], \"metadata\": "
    "{\"k\": \"/k\"}, \"id\": \"/id\", \"title\": \"/title\"}}}";

/* The routes fuzzed: index into api_routes of each POST route with a
 * JSON body, and the generic webhook. */
static int routes[64];
static int n_routes;

static const char *const params[] = {
    "docs", "h", "a.b-c_1", "f", "x%20y", "..",
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
};
#define N_PARAMS (sizeof params / sizeof params[0])

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    api_config *c = &a.cfg;
    server_config_defaults(c);
    c->load_wait_ms = 0;             /* no waiting for a model that fails */
    c->debug_memory_percent = 10;    /* never shed */
    a.loopback = true;
    guard_level level;
    FUZZ_CHECK(guard_parse_level(c->guardrails, &level) == 0, "guardrails");
    a.guard_level = (int)level;
    a.started_ms = sched_now_ms();
    pthread_mutex_init(&a.store_lock, NULL);
    pthread_mutex_init(&a.stats_lock, NULL);
    pthread_mutex_init(&a.mem_lock, NULL);
    a.store_state = API_STORE_OPENING;

    lode_error err = {0};
    const char *names[64];
    for (int i = 0; i < api_n_routes && i < 64; i++)
        names[i] = api_routes[i].name;
    FUZZ_CHECK(metrics_create(names, api_n_routes, &a.metrics, &err) == 0,
               "metrics: %s", err.message);
    sched_options so = {.model_path = "/nonexistent/fuzz-model.gguf",
                        .metrics = a.metrics};
    FUZZ_CHECK(sched_start(&so, &a.sched, &err) == 0, "sched: %s",
               err.message);
    for (int i = 0; i < 1000; i++) {   /* let the load fail */
        sched_status ss;
        sched_get_status(a.sched, &ss);
        if (ss.state == SCHED_FAILED)
            break;
        usleep(10000);
    }

    int fd = memfd_create("fuzz-webhooks", MFD_CLOEXEC);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    FUZZ_CHECK(fd >= 0 && write(fd, webhooks, sizeof webhooks - 1) ==
                   (ssize_t)(sizeof webhooks - 1) &&
                   webhook_config_load(path, &a.webhooks, &err) == 0,
               "webhooks: %s", err.message);
    close(fd);

    srv.cfg = (http_config){
        .max_body = c->max_body, .max_json_depth = c->max_json_depth,
        .routes = api_routes, .n_routes = api_n_routes, .check = api_check,
        .done = api_done, .app = &a,
    };
    pthread_mutex_init(&srv.lock, NULL);
    for (int i = 0; i < api_n_routes && n_routes < 64; i++) {
        const http_route *r = &api_routes[i];
        /* /model/load and /model/unload read no body and would change
         * the scheduler's state for every later input */
        if (strcmp(r->method, "POST") == 0 &&
            strncmp(r->pattern, "/model/", 7) != 0 &&
            ((r->flags & HTTP_JSON_BODY) || strstr(r->pattern, "webhook")))
            routes[n_routes++] = i;
    }
    return 0;
}

/* The route's pattern with every {} replaced by the parameter. */
static void route_url(const char *pattern, const char *param, char *out,
                      size_t size)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < size; p++) {
        if (p[0] == '{' && p[1] == '}') {
            o += (size_t)snprintf(out + o, size - o, "%s", param);
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o < size ? o : size - 1] = '\0';
}

static void check_answer(const char *url)
{
    FUZZ_CHECK(fz.n_answers == 1 && fz.answer, "%s: no answer", url);
    FUZZ_CHECK(fz.status >= 200 && fz.status < 600 && fz.status != 500,
               "%s: status %u: %.*s", url, fz.status,
               (int)(fz.answer->len < 500 ? fz.answer->len : 500),
               fz.answer->data ? fz.answer->data : "");
    if (getenv("FUZZ_API_VERBOSE"))   /* what each input is answered */
        fprintf(stderr, "%s -> %u %.*s\n", url, fz.status,
                (int)(fz.answer->len < 300 ? fz.answer->len : 300),
                fz.answer->data ? fz.answer->data : "(stream)");
    if (fz.answer->free_cb)   /* a stream: its text is not ours to read */
        return;
    json_error_t jerr;
    json_t *body = json_loadb(fz.answer->data, fz.answer->len, 0, &jerr);
    FUZZ_CHECK(body, "%s: the answer is not JSON: %s", url, jerr.text);
    if (fz.status >= 400) {
        json_t *e = json_object_get(body, "error");
        FUZZ_CHECK(json_is_string(json_object_get(e, "message")) &&
                       json_is_string(json_object_get(e, "type")) &&
                       json_is_string(json_object_get(e, "code")),
                   "%s: status %u without an error object", url, fz.status);
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || n_routes == 0)
        return 0;
    const http_route *route = &api_routes[routes[data[0] % n_routes]];
    char url[512];
    route_url(route->pattern, params[data[1] % N_PARAMS], url, sizeof url);
    const char *body = (const char *)data + 2;
    size_t len = size - 2;

    fz.n_answers = 0;
    fz.answer = NULL;
    fz.status = 0;
    fz.resumed = false;
    void *cls = NULL;
    size_t up = 0;
    FUZZ_CHECK(on_request(&srv, conn, url, "POST", "HTTP/1.1", NULL, &up,
                          &cls) == MHD_YES && cls,
               "%s: not begun", url);
    http_request *req = cls;
    if (len) {
        up = len;
        on_request(&srv, conn, url, "POST", "HTTP/1.1", body, &up, &cls);
        FUZZ_CHECK(up == 0, "%s: body not taken", url);
    }
    up = 0;
    on_request(&srv, conn, url, "POST", "HTTP/1.1", NULL, &up, &cls);
    while (!req->status && req->suspended) {
        pthread_mutex_lock(&fz.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        while (!fz.resumed)
            FUZZ_CHECK(pthread_cond_timedwait(&fz.cond, &fz.lock, &until) == 0,
                       "%s: suspended and never resumed", url);
        fz.resumed = false;
        pthread_mutex_unlock(&fz.lock);
        on_request(&srv, conn, url, "POST", "HTTP/1.1", NULL, &up, &cls);
    }
    check_answer(url);
    on_completed(&srv, conn, &cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    pthread_mutex_lock(&fz.lock);
    struct MHD_Response *r = fz.answer;
    fz.answer = NULL;
    pthread_mutex_unlock(&fz.lock);
    if (r)
        response_free(r);
    return 0;
}
