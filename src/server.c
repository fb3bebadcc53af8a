/* server.c - `lode serve` (see server.h).
 *
 * Start-up order is the point of this file: the socket listens first, so
 * a platform's health check gets an answer ("loading") within
 * milliseconds; the model loads on the scheduler's loader thread and the
 * database opens on a thread of its own.  Neither failure stops the
 * process: /health reports it.
 *
 * Every option is a flag and an environment variable (the flag wins), read
 * through one table, so `PORT=10000 lode serve` is a whole Render config.
 *
 * Shutdown (SIGTERM, SIGINT): stop accepting connections, let requests in
 * flight finish for up to --grace seconds, fail what is still queued for
 * the model (503), give webhook results still queued for forwarding what
 * is left of the grace period, stop the HTTP threads, then close the
 * database, which checkpoints its WAL. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accesslog.h"
#include "api.h"
#include "api_watch.h"
#include "cli_store.h"
#include "cors.h"
#include "forward.h"
#include "http.h"
#include "guard.h"
#include "ingest.h"
#include "llm.h"
#include "pool.h"
#include "ratelimit.h"
#include "webhook.h"

#define SERVER_DEFAULT_MODEL "models/all-MiniLM-L6-v2-q8_0.gguf"

/* OPT_FLAG: an int set to 1 by the flag alone (no value); its variable
 * takes 0 or 1. */
typedef enum opt_type { OPT_STR, OPT_INT, OPT_SIZE, OPT_DOUBLE, OPT_FLAG } opt_type;

typedef struct server_opt {
    const char *flag, *alias;  /* alias may be NULL */
    const char *env, *env2;    /* env2 may be NULL */
    opt_type type;
    size_t offset;             /* into api_config */
    double min, max;
    const char *help;
} server_opt;

#define OFF(f) offsetof(api_config, f)
static const server_opt options[] = {
    {"--db", NULL, "LODE_DB", NULL, OPT_STR, OFF(db_path), 0, 0,
     "database file (default " CLI_DEFAULT_DB ")"},
    {"--model", "-m", "LODE_MODEL", NULL, OPT_STR, OFF(model_path), 0, 0,
     "model (default " SERVER_DEFAULT_MODEL ")"},
    {"--host", NULL, "HOST", "LODE_HOST", OPT_STR, OFF(host), 0, 0,
     "address to listen on (default 127.0.0.1; 0.0.0.0 for all)"},
    {"--port", "-p", "PORT", "LODE_PORT", OPT_INT, OFF(port), 0, 65535,
     "port (default 8080; 0: any free port)"},
    {"--threads", "-t", "LODE_THREADS", NULL, OPT_INT, OFF(threads), 0, 1024,
     "encoder threads (default: the CPUs this process may use)"},
    {"--http-threads", NULL, "LODE_HTTP_THREADS", NULL, OPT_INT,
     OFF(http_threads), 0, 256, "HTTP threads (default: the CPUs)"},
    {"--api-key", NULL, "LODE_API_KEY", NULL, OPT_STR, OFF(api_key), 0, 0,
     "key for write and admin routes (prefer the environment variable)"},
    {"--read-key", NULL, "LODE_READ_KEY", NULL, OPT_STR, OFF(read_key), 0, 0,
     "key for read routes (default: reads are open)"},
    {"--collection", NULL, "LODE_COLLECTION", NULL, OPT_STR,
     OFF(default_collection), 0, 0,
     "collection searched by default (default \"default\")"},
    {"--webhooks", NULL, "LODE_WEBHOOKS", NULL, OPT_STR, OFF(webhooks_path),
     0, 0, "JSON file configuring POST /webhook/tally and /webhook/{name} "
     "(secrets, fields, catalog, forwarding; see README)"},
    {"--watch", NULL, "LODE_WATCH", NULL, OPT_STR, OFF(watch_dir), 0, 0,
     "keep this folder indexed into the default collection: new, changed "
     "and removed files, as `lode ingest --watch` (inotify)"},
    {"--watch-rescan", NULL, "LODE_WATCH_RESCAN", NULL, OPT_INT,
     OFF(watch_rescan_s), 1, 86400,
     "seconds between full rescans of --watch (default 300)"},
    {"--max-body", NULL, "LODE_MAX_BODY", NULL, OPT_SIZE, OFF(max_body), 1,
     1 << 30, "request body limit in bytes (default 1048576)"},
    {"--max-inputs", NULL, "LODE_MAX_INPUTS", NULL, OPT_INT, OFF(max_inputs),
     1, 1 << 20, "inputs per embeddings request (default 2048)"},
    {"--max-tokens", NULL, "LODE_MAX_TOKENS", NULL, OPT_INT, OFF(max_tokens),
     1, 1 << 30, "tokens per request (default 300000)"},
    {"--max-documents", NULL, "LODE_MAX_DOCUMENTS", NULL, OPT_INT,
     OFF(max_documents), 1, 1 << 20, "documents per POST (default 256)"},
    {"--max-k", NULL, "LODE_MAX_K", NULL, OPT_INT, OFF(max_k), 1, 100000,
     "largest k of a search (default 100)"},
    {"--max-json-depth", NULL, "LODE_MAX_JSON_DEPTH", NULL, OPT_INT,
     OFF(max_json_depth), 2, 1000, "JSON nesting limit (default 32)"},
    {"--max-connections", NULL, "LODE_MAX_CONNECTIONS", NULL, OPT_INT,
     OFF(max_connections), 1, 100000, "open connections (default 256)"},
    {"--timeout", NULL, "LODE_TIMEOUT", NULL, OPT_INT, OFF(timeout_s), 1,
     86400, "seconds a connection may stay idle (default 15)"},
    {"--body-timeout", NULL, "LODE_BODY_TIMEOUT", NULL, OPT_INT,
     OFF(body_timeout_s), 1, 86400,
     "seconds a request body may take (default 30)"},
    {"--load-wait-ms", NULL, "LODE_LOAD_WAIT_MS", NULL, OPT_INT,
     OFF(load_wait_ms), 0, 600000,
     "how long a request waits for a loading model before 503 (default "
     "10000)"},
    {"--grace", NULL, "LODE_GRACE", NULL, OPT_INT, OFF(grace_s), 0, 3600,
     "seconds to let requests finish on SIGTERM (default 10)"},
    {"--memory-threshold", NULL, "LODE_MEMORY_THRESHOLD", NULL, OPT_DOUBLE,
     OFF(memory_threshold), 1, 100,
     "percent of the memory limit above which heavy routes answer 503 "
     "(default 90)"},
    {"--rate-limit", NULL, "LODE_RATE_LIMIT", NULL, OPT_DOUBLE,
     OFF(rate_limit), 0, 1000000,
     "requests a second each client may make to the routes that run the "
     "model or write (embeddings, search, eval, chat, documents, files, "
     "collections, feedback, webhooks, model load/unload); above it 429 "
     "with Retry-After (default 0: no limit)"},
    {"--rate-burst", NULL, "LODE_RATE_BURST", NULL, OPT_INT, OFF(rate_burst),
     0, 1000000,
     "requests a client may make at once before --rate-limit applies "
     "(default 0: twice the rate, at least 1)"},
    {"--rate-limit-loopback", NULL, "LODE_RATE_LIMIT_LOOPBACK", NULL,
     OPT_FLAG, OFF(rate_limit_loopback), 0, 1,
     "limit loopback clients (127.0.0.0/8, ::1) too; by default they are "
     "exempt"},
    {"--trusted-proxies", NULL, "LODE_TRUSTED_PROXIES", NULL, OPT_INT,
     OFF(trusted_proxies), 0, 16,
     "reverse proxies in front of lode that append to X-Forwarded-For: the "
     "client is the address that many entries from its right (default 0: "
     "the socket's peer; X-Forwarded-For is ignored)"},
    {"--access-log", NULL, "LODE_ACCESS_LOG", NULL, OPT_STR, OFF(access_log),
     0, 0,
     "append one JSON line per request (time, request id, client, method, "
     "path without query, status, bytes, ms; never keys or bodies) to this "
     "file, or - for stderr (default: none)"},
    {"--cors-origins", NULL, "LODE_CORS_ORIGINS", NULL, OPT_STR,
     OFF(cors_origins), 0, 0,
     "origins allowed to call the API from a browser, comma-separated "
     "(https://app.example.com), or *; preflights answered (default: none, "
     "no CORS headers)"},
    {"--llm-base-url", NULL, "LLM_BASE_URL", "LODE_LLM_BASE_URL", OPT_STR,
     OFF(llm_base_url), 0, 0,
     "OpenAI-compatible API of the LLM for /chat (default "
     LLM_DEFAULT_BASE_URL ", used when a key is set; a URL of its own, "
     "e.g. a local llama.cpp server, needs no key)"},
    {"--llm-api-key", NULL, "LLM_API_KEY", "OPENROUTER_API_KEY", OPT_STR,
     OFF(llm_api_key), 0, 0,
     "the LLM's API key (prefer the environment variable); without it and "
     "without --llm-base-url, /chat answers from the documents alone"},
    {"--llm-model", NULL, "LLM_MODEL", "LODE_LLM_MODEL", OPT_STR,
     OFF(llm_model), 0, 0, "the LLM (default " LLM_DEFAULT_MODEL ")"},
    {"--llm-max-tokens", NULL, "MAX_TOKENS", "LODE_LLM_MAX_TOKENS", OPT_INT,
     OFF(llm_max_tokens), 1, 65536,
     "longest answer in tokens (default 500)"},
    {"--llm-temperature", NULL, "LLM_TEMPERATURE", NULL, OPT_DOUBLE,
     OFF(llm_temperature), 0, 2, "sampling temperature (default 0.1)"},
    {"--llm-connect-timeout-ms", NULL, "LLM_CONNECT_TIMEOUT_MS", NULL, OPT_INT,
     OFF(llm_connect_timeout_ms), 1, 600000,
     "connecting to the LLM (default 5000)"},
    {"--llm-timeout", NULL, "LLM_TIMEOUT", NULL, OPT_INT, OFF(llm_timeout_s),
     1, 3600, "seconds for a whole LLM call, retries included (default 30)"},
    {"--llm-retries", NULL, "LLM_RETRIES", NULL, OPT_INT, OFF(llm_retries), 0,
     10, "retries on 429, 5xx and network errors (default 2)"},
    {"--breaker-failures", NULL, "LODE_BREAKER_FAILURES", NULL, OPT_INT,
     OFF(breaker_failures), 1, 1000,
     "consecutive LLM failures that open the circuit breaker (default 3)"},
    {"--breaker-cooldown", NULL, "LODE_BREAKER_COOLDOWN", NULL, OPT_INT,
     OFF(breaker_cooldown_s), 0, 86400,
     "seconds the breaker stays open before a probe (default 60)"},
    {"--guardrails", NULL, "GUARDRAILS_LEVEL", "LODE_GUARDRAILS", OPT_STR,
     OFF(guardrails), 0, 0, "off | standard | strict (default standard)"},
    {"--chat-min-score", NULL, "LODE_CHAT_MIN_SCORE", NULL, OPT_DOUBLE,
     OFF(chat_min_score), -1, 1,
     "best search score below which the documents do not cover a question "
     "(default 0.25)"},
    {"--chat-context-tokens", NULL, "LODE_CHAT_CONTEXT_TOKENS", NULL, OPT_INT,
     OFF(chat_context_tokens), 256, 1000000,
     "prompt budget in (estimated) tokens (default 3000)"},
    {"--chat-max-history", NULL, "LODE_CHAT_MAX_HISTORY", NULL, OPT_INT,
     OFF(chat_max_history), 0, 1000,
     "history messages kept, the last (default 10)"},
    {"--chat-max-chars", NULL, "LODE_CHAT_MAX_CHARS", NULL, OPT_INT,
     OFF(chat_max_chars), 1, 1000000,
     "characters of a question (and of each history message kept; default "
     "4000)"},
    {"--chat-max-question-tokens", NULL, "LODE_CHAT_MAX_QUESTION_TOKENS", NULL,
     OPT_INT, OFF(chat_max_question_tokens), 1, 1000000,
     "(estimated) tokens of a question (default 1000)"},
    {"--chat-rewrite", NULL, "LODE_CHAT_REWRITE", NULL, OPT_INT,
     OFF(chat_rewrite), 0, 1,
     "1: the LLM rewrites follow-up questions for the search (default 1)"},
    {"--debug-load-delay-ms", NULL, "LODE_DEBUG_LOAD_DELAY_MS", NULL, OPT_INT,
     OFF(debug_load_delay_ms), 0, 3600000,
     "tests: delay the model load this long"},
    {"--debug-memory-percent", NULL, "LODE_DEBUG_MEMORY_PERCENT", NULL,
     OPT_DOUBLE, OFF(debug_memory_percent), -1, 100,
     "tests: pretend this percent of memory is in use"},
};
#define N_OPTIONS (int)(sizeof options / sizeof options[0])

const char server_usage[] =
    "  serve [--db FILE] [-m MODEL] [--host H] [--port P] [-t N] ...\n"
    "                                        serve the HTTP API "
    "(`lode serve --help`)\n";

static void print_help(FILE *f)
{
    fputs("usage: lode serve [OPTIONS]\n\nEvery option also reads the "
          "environment variable shown; the flag wins.\n\n", f);
    for (int i = 0; i < N_OPTIONS; i++) {
        const server_opt *o = &options[i];
        fprintf(f, "  %s%s%s  ($%s%s%s)\n      %s\n", o->flag,
                o->alias ? ", " : "", o->alias ? o->alias : "", o->env,
                o->env2 ? ", $" : "", o->env2 ? o->env2 : "", o->help);
    }
}

void server_config_defaults(api_config *c)
{
    memset(c, 0, sizeof *c);
    c->db_path = CLI_DEFAULT_DB;
    c->model_path = SERVER_DEFAULT_MODEL;
    c->host = "127.0.0.1";
    c->port = 8080;
    c->default_collection = INGEST_DEFAULT_COLLECTION;
    c->max_body = 1 << 20;
    c->max_inputs = 2048;
    c->max_tokens = 300000;
    c->max_documents = 256;
    c->max_k = 100;
    c->max_json_depth = 32;
    c->max_connections = 256;
    c->timeout_s = 15;
    c->body_timeout_s = 30;
    c->load_wait_ms = 10000;
    c->grace_s = 10;
    c->memory_threshold = 90;
    c->debug_memory_percent = -1;
    c->llm_max_tokens = LLM_DEFAULT_MAX_TOKENS;
    c->llm_temperature = LLM_DEFAULT_TEMPERATURE;
    c->llm_connect_timeout_ms = LLM_DEFAULT_CONNECT_TIMEOUT_MS;
    c->llm_timeout_s = LLM_DEFAULT_TIMEOUT_MS / 1000;
    c->llm_retries = LLM_DEFAULT_RETRIES;
    c->breaker_failures = BREAKER_DEFAULT_FAILURES;
    c->breaker_cooldown_s = BREAKER_DEFAULT_COOLDOWN_MS / 1000;
    c->guardrails = "standard";
    c->chat_min_score = 0.25;
    c->chat_context_tokens = 3000;
    c->chat_max_history = 10;
    c->chat_max_chars = 4000;
    c->chat_max_question_tokens = 1000;
    c->chat_rewrite = 1;
}

/* Store one option value; returns 0 or prints why not and returns 2. */
static int set_option(api_config *c, const server_opt *o, const char *value,
                      const char *from)
{
    char *p = (char *)c + o->offset;
    if (o->type == OPT_STR) {
        *(const char **)p = value;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || v < o->min || v > o->max ||
        (o->type != OPT_DOUBLE && v != (double)(long long)v)) {
        fprintf(stderr, "lode: %s must be a%s number from %g to %g, not "
                        "'%s'\n", from, o->type == OPT_DOUBLE ? "" : " whole",
                o->min, o->max, value);
        return 2;
    }
    if (o->type == OPT_INT || o->type == OPT_FLAG)
        *(int *)p = (int)v;
    else if (o->type == OPT_SIZE)
        *(size_t *)p = (size_t)v;
    else
        *(double *)p = v;
    return 0;
}

static int parse_config(int argc, char **argv, api_config *c)
{
    server_config_defaults(c);
    for (int i = 0; i < N_OPTIONS; i++) {
        const server_opt *o = &options[i];
        const char *env = getenv(o->env);
        const char *name = o->env;
        if ((!env || !*env) && o->env2) {
            env = getenv(o->env2);
            name = o->env2;
        }
        if (env && *env) {
            char from[64];
            snprintf(from, sizeof from, "$%s", name);
            int rc = set_option(c, o, env, from);
            if (rc)
                return rc;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_help(stdout);
            return -1;
        }
        const char *arg = argv[i], *value = NULL;
        const char *eq = strchr(arg, '=');
        size_t name_len = eq && arg[1] == '-' ? (size_t)(eq - arg)
                                              : strlen(arg);
        const server_opt *o = NULL;
        for (int k = 0; k < N_OPTIONS && !o; k++) {
            if ((strlen(options[k].flag) == name_len &&
                 strncmp(arg, options[k].flag, name_len) == 0) ||
                (options[k].alias && strcmp(arg, options[k].alias) == 0))
                o = &options[k];
        }
        if (!o) {
            fprintf(stderr, "lode: serve: unknown option %s (see lode serve "
                            "--help)\n", arg);
            return 2;
        }
        if (o->type == OPT_FLAG) {
            if (eq && arg[1] == '-') {
                fprintf(stderr, "lode: %.*s takes no value\n", (int)name_len,
                        arg);
                return 2;
            }
            *(int *)((char *)c + o->offset) = 1;
            continue;
        }
        if (eq && arg[1] == '-') {
            value = eq + 1;
        } else if (++i < argc) {
            value = argv[i];
        } else {
            fprintf(stderr, "lode: %s needs a value\n", arg);
            return 2;
        }
        int rc = set_option(c, o, value, o->flag);
        if (rc)
            return rc;
    }
    return 0;
}

/* Does `host` name loopback only? */
static bool is_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* The database-opening thread. */
static void *open_store_main(void *arg)
{
    api *a = arg;
    store *s = NULL;
    lode_error err = {0};
    int rc = store_open(a->cfg.db_path, NULL, &s, &err);
    pthread_mutex_lock(&a->store_lock);
    if (rc) {
        a->store_state = API_STORE_FAILED;
        /* the store's message names the file */
        snprintf(a->store_error, sizeof a->store_error, "%s",
                 err.message[0] ? err.message : lode_strerror(rc));
    } else {
        a->store = s;
        a->store_state = API_STORE_OPEN;
        api_refresh_stats(a);
    }
    pthread_mutex_unlock(&a->store_lock);
    if (rc)
        fprintf(stderr, "lode: the database could not be opened: %s\n",
                a->store_error);
    return NULL;
}

/* Warnings of the forwarder (forward.h) and the LLM client (llm.h). */
static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "lode: %s\n", line);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Wait until no request is in flight or `ms` passed.  True if drained. */
static bool drain(http_server *h, int ms)
{
    int64_t end = sched_now_ms() + ms;
    while (http_in_flight(h) > 0) {
        if (sched_now_ms() >= end)
            return false;
        sleep_ms(10);
    }
    return true;
}

int server_main(int argc, char **argv)
{
    api a;
    memset(&a, 0, sizeof a);
    int rc = parse_config(argc, argv, &a.cfg);
    if (rc)
        return rc < 0 ? 0 : rc;
    api_config *c = &a.cfg;
    if (c->webhooks_path && *c->webhooks_path) {
        /* a bad file is a configuration mistake: refuse to start */
        lode_error werr = {0};
        if (webhook_config_load(c->webhooks_path, &a.webhooks, &werr)) {
            fprintf(stderr, "lode: --webhooks: %s\n", werr.message);
            return 2;
        }
    }
    guard_level level;
    if (guard_parse_level(c->guardrails, &level)) {
        fprintf(stderr, "lode: --guardrails (GUARDRAILS_LEVEL) must be off, "
                        "standard or strict, not '%s'\n", c->guardrails);
        return 2;
    }
    a.guard_level = (int)level;
    cors_policy *cors = NULL;
    lode_error cors_err = {0};
    if (cors_parse(c->cors_origins, &cors, &cors_err)) {
        fprintf(stderr, "lode: --cors-origins (LODE_CORS_ORIGINS): %s\n",
                cors_err.message);
        webhook_config_free(a.webhooks);
        return 2;
    }
    if (c->rate_limit > 0 && c->rate_burst == 0) {
        double twice = ceil(2 * c->rate_limit);
        c->rate_burst = twice < 1 ? 1 : twice > INT_MAX ? INT_MAX : (int)twice;
    }
    a.loopback = is_loopback(c->host);
    a.started_ms = sched_now_ms();
    pthread_mutex_init(&a.store_lock, NULL);
    pthread_mutex_init(&a.stats_lock, NULL);
    pthread_mutex_init(&a.mem_lock, NULL);
    atomic_init(&a.shutting_down, 0);

    /* Signals are taken by sigwait() below; every thread started from here
     * on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    lode_error err = {0};
    /* metrics label each route "METHOD /pattern" */
    char name_buf[64][160];
    const char *names[64];
    for (int i = 0; i < api_n_routes && i < 64; i++) {
        snprintf(name_buf[i], sizeof name_buf[i], "%s %s",
                 api_routes[i].method, api_routes[i].name);
        names[i] = name_buf[i];
    }
    pool *threads = NULL;
    http_server *h = NULL;
    pthread_t store_thread;
    int store_thread_started = 0;
    api_watcher *watcher = NULL;
    rc = 1;
    if (metrics_create(names, api_n_routes, &a.metrics, &err))
        goto out;
    if (c->rate_limit > 0 &&
        ratelimit_create(c->rate_limit, c->rate_burst,
                         RATELIMIT_DEFAULT_CLIENTS, &a.limiter, &err))
        goto out;
    if (c->access_log && *c->access_log &&
        accesslog_open(c->access_log, &a.access_log, &err))
        goto out;
    if (webhook_config_forwards(a.webhooks)) {
        forward_options fo = {
            .queue_capacity = webhook_config_forward_queue(a.webhooks),
            .metrics = a.metrics,
            .log = log_line,
        };
        if (forward_start(&fo, &a.forwarder, &err))
            goto out;
    }
    /* The LLM: configured by a key, or by a URL of its own (a local
     * server needs no key). */
    bool llm_configured = (c->llm_api_key && *c->llm_api_key) ||
                          (c->llm_base_url && *c->llm_base_url);
    if (llm_configured) {
        llm_options lo = {
            .base_url = c->llm_base_url,
            .api_key = c->llm_api_key,
            .model = c->llm_model,
            .max_tokens = c->llm_max_tokens,
            .temperature = c->llm_temperature,
            .connect_timeout_ms = c->llm_connect_timeout_ms,
            .timeout_ms = (long)c->llm_timeout_s * 1000,
            .retries = c->llm_retries,
            .breaker_failures = c->breaker_failures,
            .breaker_cooldown_ms = (int64_t)c->breaker_cooldown_s * 1000,
            .metrics = a.metrics,
            .log = log_line,
        };
        if (llm_start(&lo, &a.llm, &err))
            goto out;
    }
    int cpus = pool_default_threads();
    http_config hc = {
        .host = c->host,
        .port = c->port,
        .threads = c->http_threads ? c->http_threads : cpus,
        .max_connections = c->max_connections,
        .timeout_s = c->timeout_s,
        .body_timeout_s = c->body_timeout_s,
        .max_body = c->max_body,
        .max_json_depth = c->max_json_depth,
        .routes = api_routes,
        .n_routes = api_n_routes,
        .check = api_check,
        .done = api_done,
        .app = &a,
        .trusted_proxies = c->trusted_proxies,
        .cors = cors,
    };
    /* The scheduler first (the status routes ask it), loading in the
     * background; then the socket, at once. */
    if (pool_create(c->threads ? c->threads : cpus, &threads, &err))
        goto out;
    sched_options so = {
        .model_path = c->model_path,
        .pool = threads,
        .metrics = a.metrics,
        .debug_load_delay_ms = c->debug_load_delay_ms,
    };
    if (sched_start(&so, &a.sched, &err))
        goto out;
    if (http_start(&hc, &h, &err))
        goto out;
    a.http = h;
    fprintf(stderr, "lode: listening on http://%s%s%s:%d (model %s, "
                    "database %s loading in the background)\n",
            strchr(c->host, ':') ? "[" : "", c->host,
            strchr(c->host, ':') ? "]" : "", http_port(h), c->model_path,
            c->db_path);
    if (a.llm)
        fprintf(stderr, "lode: chat uses %s at %s (guardrails %s)\n",
                llm_model_name(a.llm), llm_base_url(a.llm),
                guard_level_name(level));
    else
        fprintf(stderr, "lode: no LLM configured (LLM_API_KEY or "
                        "LLM_BASE_URL): /chat answers from the documents "
                        "alone\n");
    if (!a.loopback && !(c->api_key && *c->api_key))
        fprintf(stderr, "lode: no LODE_API_KEY: write and admin routes are "
                        "refused on this non-loopback address\n");
    if (a.limiter)
        fprintf(stderr, "lode: rate limit: %g requests a second per client "
                        "(bursts of %d) on the routes that run the model or "
                        "write%s\n", c->rate_limit, c->rate_burst,
                c->rate_limit_loopback ? ", loopback clients included"
                                       : "; loopback clients exempt");
    if (pthread_create(&store_thread, NULL, open_store_main, &a) == 0)
        store_thread_started = 1;
    else {
        a.store_state = API_STORE_FAILED;
        snprintf(a.store_error, sizeof a.store_error,
                 "cannot start the database thread");
    }

    if (c->watch_dir && *c->watch_dir &&
        api_watch_start(&a, c->watch_dir, c->watch_rescan_s, &watcher, &err))
        fprintf(stderr, "lode: --watch: %s\n", err.message);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    int64_t signal_ms = sched_now_ms();
    fprintf(stderr, "lode: %s: finishing requests in flight (up to %d s)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", c->grace_s);
    atomic_store(&a.shutting_down, 1);
    http_quiesce(h);
    api_watch_stop(watcher);     /* a run in progress ends at its next batch */
    watcher = NULL;
    drain(h, c->grace_s * 1000);
    /* LLM calls still out are aborted: their chats answer from the
     * documents (the scheduler still runs for that), then whatever still
     * waits for the model fails (503) and is answered. */
    llm_stop(a.llm, 0);
    sched_stop(a.sched);
    drain(h, 2000);
    if (a.forwarder) {
        /* Webhook results still queued for forwarding get what is left of
         * the grace period (at least a second, unless --grace 0), then
         * are abandoned with a warning. */
        int64_t left = (int64_t)c->grace_s * 1000 -
                       (sched_now_ms() - signal_ms);
        if (left < 1000)
            left = c->grace_s > 0 ? 1000 : 0;
        forward_stop(a.forwarder, (int)left);
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "lode: serve: %s\n",
                err.message[0] ? err.message : lode_strerror(err.code));
    /* The HTTP threads before the scheduler: a handler may ask it for its
     * status until the very end. */
    api_watch_stop(watcher);
    if (h) {
        http_stop(h);
        a.http = NULL;
    }
    /* no request is left to use them */
    ratelimit_free(a.limiter);
    accesslog_close(a.access_log);
    cors_free(cors);
    forward_free(a.forwarder);  /* no handler is left to submit */
    a.forwarder = NULL;
    llm_free(a.llm);
    a.llm = NULL;
    sched_free(a.sched);
    pool_free(threads);
    if (store_thread_started)
        pthread_join(store_thread, NULL);
    store_close(a.store);   /* closing checkpoints the WAL */
    metrics_free(a.metrics);
    webhook_config_free(a.webhooks);
    pthread_mutex_destroy(&a.store_lock);
    pthread_mutex_destroy(&a.stats_lock);
    pthread_mutex_destroy(&a.mem_lock);
    if (!rc)
        fprintf(stderr, "lode: stopped\n");
    return rc;
}
