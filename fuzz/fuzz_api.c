/* fuzz_api.c - libFuzzer driver for the request handlers: each route's
 * JSON body through the real HTTP layer (src/http.c) and the API
 * (src/api*.c, src/webhook.c) without a socket.
 *
 * How, without a seam in lode: this file includes src/http.c through
 * tests/http_driver.h (shared with tests/test_faults.c), which renames
 * the few libmicrohttpd calls a request makes (header lookup, responses,
 * suspend/resume, connection info) to stubs and drives a request as
 * libmicrohttpd would: on_request
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
#include "../tests/http_driver.h"

#include <sys/mman.h>

#include "api.h"
#include "fuzz.h"
#include "guard.h"
#include "scheduler.h"
#include "server.h"
#include "webhook.h"

/* ---- the server ------------------------------------------------------ */

static api a;
static http_server srv;

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
    FUZZ_CHECK(hd.n_answers == 1 && hd.answer, "%s: no answer", url);
    FUZZ_CHECK(hd.status >= 200 && hd.status < 600 && hd.status != 500,
               "%s: status %u: %.*s", url, hd.status,
               (int)(hd.answer->len < 500 ? hd.answer->len : 500),
               hd.answer->data ? hd.answer->data : "");
    if (getenv("FUZZ_API_VERBOSE"))   /* what each input is answered */
        fprintf(stderr, "%s -> %u %.*s\n", url, hd.status,
                (int)(hd.answer->len < 300 ? hd.answer->len : 300),
                hd.answer->data ? hd.answer->data : "(stream)");
    if (hd.answer->free_cb)   /* a stream: its text is not ours to read */
        return;
    json_error_t jerr;
    json_t *body = json_loadb(hd.answer->data, hd.answer->len, 0, &jerr);
    FUZZ_CHECK(body, "%s: the answer is not JSON: %s", url, jerr.text);
    if (hd.status >= 400) {
        json_t *e = json_object_get(body, "error");
        FUZZ_CHECK(json_is_string(json_object_get(e, "message")) &&
                       json_is_string(json_object_get(e, "type")) &&
                       json_is_string(json_object_get(e, "code")),
                   "%s: status %u without an error object", url, hd.status);
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

    FUZZ_CHECK(hd_request(&srv, "POST", url, body, len, 10), "%s: not begun, or "
               "suspended and never resumed", url);
    FUZZ_CHECK(!hd.violation[0], "%s: %s", url, hd.violation);
    check_answer(url);
    hd_finish(&srv);
    return 0;
}
