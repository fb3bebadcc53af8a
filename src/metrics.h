/* metrics.h - request counters and latency histograms for GET /metrics,
 * rendered in the Prometheus text exposition format (version 0.0.4).
 *
 * Routes are known up front (the server's routing table), so counters live
 * in fixed arrays indexed by route; a request that matched no route is
 * counted under the extra route name "unmatched".  One mutex guards the
 * lot: an update is a few additions, far cheaper than the request.
 * Gauges that belong to other modules (RSS, model state, chunk count,
 * requests in flight) are
 * read by the caller and passed to metrics_render().
 */
#ifndef LODE_METRICS_H
#define LODE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct metrics metrics;

/* Route names are copied; a name "METHOD /path" is rendered as the two
 * labels method and route.  Route index n_routes means "unmatched". */
int metrics_create(const char *const *route_names, int n_routes,
                   metrics **out, lode_error *err);
void metrics_free(metrics *m);

/* A finished request: its route index, status and duration. */
void metrics_observe(metrics *m, int route, int status, double seconds);
/* Embeddings computed and tokens run through the model. */
void metrics_add_embeddings(metrics *m, uint64_t texts, uint64_t tokens);
/* Forward passes run by the scheduler and the texts in them. */
void metrics_add_batch(metrics *m, uint64_t texts);

/* Webhook forwarding (forward.c): a delivery made, an attempt to be
 * retried, a delivery given up, one dropped (queue full, shutdown). */
typedef enum metrics_forward_result {
    METRICS_FORWARD_OK = 0,
    METRICS_FORWARD_RETRY,
    METRICS_FORWARD_FAILED,
    METRICS_FORWARD_DROPPED,
    METRICS_FORWARD_N,
} metrics_forward_result;
void metrics_add_forward(metrics *m, metrics_forward_result result);

/* The LLM client (llm.c): one finished call, its outcome (an llm_outcome),
 * seconds from submission to the end and the tokens the server reported
 * (-1 when it did not). */
void metrics_add_llm(metrics *m, int outcome, double seconds,
                     int prompt_tokens, int completion_tokens);

/* Guardrail hits (api_chat.c), by kind. */
typedef enum metrics_guard_kind {
    METRICS_GUARD_PII_EMAIL = 0,   /* the five GUARD_PII_* kinds, in order */
    METRICS_GUARD_PII_PHONE,
    METRICS_GUARD_PII_CARD,
    METRICS_GUARD_PII_IBAN,
    METRICS_GUARD_PII_NATIONAL_ID,
    METRICS_GUARD_INVISIBLE,       /* invisible characters stripped */
    METRICS_GUARD_INJECTION_QUESTION,
    METRICS_GUARD_INJECTION_SOURCE,
    METRICS_GUARD_NOT_COVERED,     /* below the relevance threshold */
    METRICS_GUARD_CITATION_REMOVED,
    METRICS_GUARD_CITATION_UNSUPPORTED,
    METRICS_GUARD_STRICT_REPLACED, /* strict: answer without support */
    METRICS_GUARD_N,
} metrics_guard_kind;
void metrics_add_guard(metrics *m, metrics_guard_kind kind, uint64_t n);

/* Chat answers by how they were made. */
typedef enum metrics_chat_kind {
    METRICS_CHAT_LLM = 0,          /* the LLM answered */
    METRICS_CHAT_DEGRADED,         /* extractive, the LLM was unavailable */
    METRICS_CHAT_NOT_COVERED,      /* the documents do not cover it */
    METRICS_CHAT_N,
} metrics_chat_kind;
void metrics_add_chat(metrics *m, metrics_chat_kind kind);

/* Mean latency of all requests so far, in milliseconds (0 if none). */
double metrics_mean_latency_ms(metrics *m);
/* Requests finished so far. */
uint64_t metrics_requests_total(metrics *m);

typedef struct metrics_gauges {
    double rss_bytes;
    int model_loaded, model_loading, model_failed;
    int64_t documents, chunks;
    double uptime_seconds;
    double memory_percent_used;
    int64_t in_flight;          /* requests being handled */
    int llm_configured;
    int breaker_state;          /* breaker_state: 0 closed, 1 half-open, 2 open */
    uint64_t breaker_opens;
    int64_t llm_pending;        /* LLM calls queued or running */
} metrics_gauges;

/* The whole exposition as a malloc'd NUL-terminated string (caller
 * frees). */
int metrics_render(metrics *m, const metrics_gauges *g, char **out,
                   size_t *len, lode_error *err);

#endif
