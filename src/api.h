/* api.h - the HTTP API of `lode serve`: the shared state the handlers
 * work on, the routing table, and the policy hook (auth, load shedding).
 *
 * Handlers live in api_status.c (health, model and memory status,
 * metrics, model load/unload), api_embed.c (/v1/embeddings, /v1/models)
 * api_store.c (search, collections, documents), api_eval.c (retrieval
 * quality of a collection), webhook.c (form
 * webhooks, stored through the documents path) and api_chat.c (RAG chat,
 * also as OpenAI's chat completions); server.c builds the
 * api struct from flags and environment and owns its lifetime.
 *
 * Threads: handlers run on HTTP threads.  Model work goes through the
 * scheduler (the handler suspends its request and is called again when the
 * embeddings are ready).  The store handle is single-threaded, so every
 * store call holds store_lock, and no one waits for the model while
 * holding it.
 */
#ifndef LODE_API_H
#define LODE_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "err.h"
#include "http.h"
#include "memstat.h"
#include "metrics.h"
#include "scheduler.h"
#include "store.h"

/* Route policy: who may call it (low bits), whether it is heavy (needs
 * the model or much memory; shed under memory pressure) and whether it is
 * rate-limited per client (--rate-limit: the routes that run the model or
 * write). */
enum {
    API_PUBLIC = 0,  /* always open (/health) */
    API_READ = 1,    /* open unless a read key is set */
    API_WRITE = 2,   /* needs the API key (or loopback without a key) */
    API_ADMIN = 3,   /* same, for model load/unload */
    API_CLASS_MASK = 3,
    API_HEAVY = 4,
    API_LIMITED = 8,
};

typedef struct api_config {
    const char *host;
    int port;
    const char *db_path;
    const char *model_path;
    const char *api_key;          /* NULL or "": none */
    const char *read_key;
    const char *default_collection;
    int threads;                  /* encoder threads */
    int http_threads;             /* HTTP thread pool */
    size_t max_body;
    int max_inputs;               /* texts per embeddings request */
    int max_tokens;               /* tokens per request */
    int max_documents;            /* documents per POST */
    int max_k;
    int max_json_depth;
    int max_connections;
    int timeout_s;                /* idle connection timeout */
    int body_timeout_s;
    int load_wait_ms;             /* wait this long for a loading model */
    int grace_s;                  /* shutdown: let requests finish */
    double memory_threshold;      /* percent used that sheds heavy routes */
    int debug_load_delay_ms;      /* tests: slow model load */
    double debug_memory_percent;  /* tests: fake memory use; < 0: real */
    const char *webhooks_path;    /* --webhooks JSON file, or NULL */
    const char *watch_dir;        /* --watch DIR kept indexed, or NULL */
    int watch_rescan_s;           /* its full rescans (0: the default) */
    /* abuse (ratelimit.h, accesslog.h, cors.h) */
    double rate_limit;            /* limited requests a second per client;
                                     0: no limit */
    int rate_burst;               /* bucket size; 0: twice the rate */
    int rate_limit_loopback;      /* 1: loopback clients are limited too */
    int trusted_proxies;          /* proxies appending X-Forwarded-For */
    const char *access_log;       /* JSON-lines file, "-" (stderr), NULL */
    const char *cors_origins;     /* "*" or a list; NULL: no CORS */
    /* chat (api_chat.c) and its LLM (llm.h) */
    const char *llm_base_url;     /* NULL: LLM_DEFAULT_BASE_URL */
    const char *llm_api_key;
    const char *llm_model;
    int llm_max_tokens;
    double llm_temperature;
    int llm_connect_timeout_ms;
    int llm_timeout_s;            /* a whole call, retries included */
    int llm_retries;
    int breaker_failures;
    int breaker_cooldown_s;
    const char *guardrails;       /* off | standard | strict */
    double chat_min_score;        /* best vector score below it: the
                                     documents do not cover the question */
    int chat_context_tokens;      /* prompt budget (estimated tokens) */
    int chat_max_history;         /* history messages kept (the last) */
    int chat_max_chars;           /* a question's characters */
    int chat_max_question_tokens; /* a question's tokens (estimated) */
    int chat_rewrite;             /* 1: the LLM rewrites follow-ups */
} api_config;

typedef enum api_store_state {
    API_STORE_OPENING = 0,
    API_STORE_OPEN,
    API_STORE_FAILED,
} api_store_state;

struct webhook_config;
struct forwarder;
struct llm;
struct ratelimit;
struct accesslog;

typedef struct api {
    api_config cfg;
    struct webhook_config *webhooks;  /* from cfg.webhooks_path; may be NULL */
    struct forwarder *forwarder;  /* webhook forwarding; NULL unless some
                                     form or webhook has a forward_url */
    struct llm *llm;              /* NULL when no LLM is configured */
    struct ratelimit *limiter;    /* NULL without --rate-limit */
    struct accesslog *access_log; /* NULL without --access-log */
    int guard_level;              /* guard_level of cfg.guardrails */
    bool loopback;                /* listening on a loopback address only */
    sched *sched;
    metrics *metrics;
    http_server *http;            /* set once listening */
    int64_t started_ms;           /* sched_now_ms() at start */

    pthread_mutex_t store_lock;   /* guards store, store_state, store_error */
    store *store;
    api_store_state store_state;
    char store_error[LODE_ERROR_MAX];

    pthread_mutex_t stats_lock;   /* guards stats (a cache for /health) */
    store_stats stats;

    pthread_mutex_t mem_lock;     /* guards the memory readings below */
    int64_t mem_read_ms;          /* when mem and proc were read */
    memstat_system mem;
    memstat_process proc;

    atomic_int shutting_down;
} api;

extern const http_route api_routes[];
extern const int api_n_routes;

/* The http_config.check and .done hooks. */
bool api_check(http_request *req, const http_route *route, void *app);
void api_done(void *app, http_request *req, int status, double seconds);

/* ---- helpers shared by the handler files ------------------------------ */

/* The system memory reading (cached for a fraction of a second, faked by
 * --debug-memory-percent).  Returns whether it passes the threshold. */
bool api_memory_reading(api *a, memstat_system *out);
/* The process's memory (VmRSS, VmHWM), cached the same way: /health is
 * polled often and should not read /proc on every call. */
void api_process_reading(api *a, memstat_process *out);
/* Answer an error carried in a lode_error with the matching status. */
void api_respond_lode_error(http_request *req, api *a, const lode_error *err);
/* Refresh the cached store counts; store_lock held. */
void api_refresh_stats(api *a);
/* A query-string integer from 0 to max (def when absent); answers 400
 * and returns false when it is something else. */
bool api_query_int(http_request *req, const char *name, long long def,
                   long long max, long long *out);
/* The auth rule of a route class (API_READ, API_WRITE...), for handlers
 * that decide it from the body; answers and returns false when refused. */
bool api_authorize(http_request *req, api *a, int route_class);
/* Lock the store when it is open; else answer 503 and return NULL.
 * api_store_release unlocks it. */
store *api_store_acquire(http_request *req, api *a);
void api_store_release(api *a);

/* The fields a search and a chat share: "collection" (default
 * cfg.default_collection), "k" (or "top_k"; default_k, at most cfg.max_k)
 * and "where" (validated; *where_json is its compact JSON in request
 * memory, NULL when absent).  Answers 400 and returns false when one is
 * bad.  Strings point into the body. */
bool api_parse_search_fields(http_request *req, api *a, json_t *body,
                             size_t default_k, const char **collection,
                             size_t *k, char **where_json);
/* A valid collection name, else 400 and false. */
bool api_check_collection_name(http_request *req, const char *name);

/* How a search or chat retrieves: "mode" (vector | keyword | hybrid),
 * "fusion" (rrf | convex) and "alpha" (0..1, the vector side's weight in
 * convex fusion), each defaulting to STORE_DEFAULT_*.  Answers 400 and
 * returns false when one is bad. */
typedef struct api_search_mode {
    store_mode mode;
    store_fusion fusion;
    float alpha;
} api_search_mode;
bool api_parse_search_mode(http_request *req, json_t *body, api_search_mode *out);
/* Set "mode" (and "fusion", "alpha" when they apply) on obj. */
void api_search_mode_json(json_t *obj, const api_search_mode *m);
/* Have the scheduler embed n texts for req (its state, holding job, set
 * already): the request is suspended and resumed when job is done. */
void api_embed_texts(http_request *req, api *a, sched_job *job, int n,
                     const char *const *texts, const size_t *lens);

/* ---- the documents write path (api_store.c), shared with webhook.c ----
 * A handler fills an api_docs_state (first member of its request state,
 * freed by api_docs_state_free), sets job.prepare = api_chunk_documents
 * and submits the job; resumed, it calls api_store_documents under
 * store_lock, which creates the collection when missing and writes each
 * document atomically (upsert when it has an external id or source). */
typedef struct api_doc {
    const char *id;           /* external id, or NULL */
    const char *source, *title;
    const char *text;
    size_t len;
    char *metadata_json;      /* request memory, or NULL */
    char sha256[65];
    /* the extractor's headings (file uploads), when headings_given; else
     * Markdown headings are looked for in the text */
    const chunk_heading *headings;
    size_t n_headings;
    bool headings_given;
    /* paged formats (PDF uploads): where each page starts in text, as
     * extract_doc has them; NULL otherwise */
    const size_t *page_starts;
    size_t n_pages;
} api_doc;

typedef struct api_docs_state {
    sched_job job;            /* first: the scheduler's job */
    api *a;
    const char *collection;
    api_doc *docs;
    size_t n_docs;
    chunk_list *chunks;       /* per document, filled by prepare */
    const char **texts;       /* every chunk's text, filled by prepare */
    size_t *lens;
} api_docs_state;

/* Frees what the state owns on the heap (vectors, chunks), not itself. */
void api_docs_state_free(void *p);
int api_chunk_documents(sched_job *job, const struct tok_tokenizer *tok,
                        int max_seq_length, lode_error *err);
/* store_lock held; appends {id, document_id, source, chunks} per document
 * to `written`. */
int api_store_documents(store *s, api_docs_state *st, const char *mid,
                        json_t *written, lode_error *err);

/* The answer for documents stored when memory ran out making the full
 * one (http_respond_json_or): the fields of the full answer from
 * `written`, chunks and tokens (as many documents as fit in size) and
 * "answer_truncated": true; made in buf without allocating. */
#define API_ANSWER_FALLBACK_MAX 16384
void api_docs_fallback(const char *collection, json_t *written, int chunks, int tokens,
                       char *buf, size_t size);

/* Submit a filled state's job (chunk, embed) and suspend the request. */
void api_docs_submit(http_request *req, api *a, api_docs_state *st);
/* Resumed: write the documents (store_lock taken here) and return what
 * api_store_documents wrote, or NULL after answering the error. */
json_t *api_docs_write(http_request *req, api *a, api_docs_state *st);

/* Handlers. */
void api_health(http_request *req, void *app);
void api_model_status(http_request *req, void *app);
void api_memory_status(http_request *req, void *app);
void api_metrics(http_request *req, void *app);
void api_model_load(http_request *req, void *app);
void api_model_unload(http_request *req, void *app);
void api_embeddings(http_request *req, void *app);
void api_models(http_request *req, void *app);
void api_search(http_request *req, void *app);
void api_eval(http_request *req, void *app);        /* api_eval.c */
void api_collections_list(http_request *req, void *app);
void api_collections_create(http_request *req, void *app);
void api_collections_delete(http_request *req, void *app);
void api_documents_add(http_request *req, void *app);
void api_document_get(http_request *req, void *app);
void api_documents_list(http_request *req, void *app);
/* Files in any format `lode ingest` reads (api_files.c). */
void api_files_add(http_request *req, void *app);
/* Ratings of answers (api_feedback.c). */
void api_feedback_add(http_request *req, void *app);
void api_feedback_export(http_request *req, void *app);
void api_document_delete(http_request *req, void *app);
void api_webhook_tally(http_request *req, void *app);
void api_webhook_generic(http_request *req, void *app);
void api_chat(http_request *req, void *app);
void api_chat_completions(http_request *req, void *app);
/* The web page's files (web.c). */
void api_web(http_request *req, void *app);
/* The chat models of /v1/models (one per collection, api_chat.c): appends
 * them to `data`. */
void api_chat_models(api *a, json_t *data);

#endif
