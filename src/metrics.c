/* metrics.c - counters, histograms and their Prometheus rendering (see
 * metrics.h).  Each route keeps a short list of the statuses it has
 * answered with: a route sees a handful of distinct codes, so a linear
 * search beats any map. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "sbuf.h"

/* Histogram bucket upper bounds in seconds (Prometheus' defaults, plus 30). */
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                   0.5,   1,    2.5,   5,    10,  30};
#define N_BUCKETS (int)(sizeof bucket_le / sizeof bucket_le[0])
#define MAX_STATUSES 24
/* LLM call durations: the request buckets and a minute. */
static const double llm_le[] = {0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60};
#define N_LLM_BUCKETS (int)(sizeof llm_le / sizeof llm_le[0])
/* Tokens of one LLM answer (completion) or prompt. */
static const double token_le[] = {16, 32, 64, 128, 256, 512, 1024, 2048,
                                  4096, 8192};
#define N_TOKEN_BUCKETS (int)(sizeof token_le / sizeof token_le[0])

typedef struct histogram {
    uint64_t buckets[16];   /* not cumulative */
    uint64_t count;
    double sum;
} histogram;

static void hist_add(histogram *h, const double *le, int n, double v)
{
    int b = 0;
    while (b < n && v > le[b])
        b++;
    if (b < n)
        h->buckets[b]++;
    h->count++;
    h->sum += v;
}

typedef struct route_stats {
    char *name;
    int statuses[MAX_STATUSES];
    uint64_t status_counts[MAX_STATUSES];
    int n_statuses;
    uint64_t buckets[N_BUCKETS]; /* not cumulative; summed when rendered */
    uint64_t count;
    double sum_seconds;
} route_stats;

struct metrics {
    pthread_mutex_t lock;
    route_stats *routes;  /* n_routes + 1: the last is "unmatched" */
    int n_routes;
    uint64_t embeddings, tokens, batches, batch_texts;
    uint64_t forwards[METRICS_FORWARD_N];
    uint64_t requests;
    double latency_sum;
    uint64_t llm_calls[LLM_OUTCOME_N];
    histogram llm_seconds, llm_prompt_tokens, llm_completion_tokens;
    uint64_t guard[METRICS_GUARD_N];
    uint64_t chats[METRICS_CHAT_N];
};

int metrics_create(const char *const *route_names, int n_routes,
                   metrics **out, lode_error *err)
{
    *out = NULL;
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    m->routes = calloc((size_t)n_routes + 1, sizeof *m->routes);
    if (!m->routes)
        goto nomem;
    m->n_routes = n_routes;
    for (int i = 0; i <= n_routes; i++) {
        m->routes[i].name = strdup(i < n_routes ? route_names[i] : "unmatched");
        if (!m->routes[i].name)
            goto nomem;
    }
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return 0;
nomem:
    if (m->routes)
        for (int i = 0; i <= n_routes; i++)
            free(m->routes[i].name);
    free(m->routes);
    free(m);
    return lode_error_set(err, LODE_ENOMEM, "out of memory");
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i <= m->n_routes; i++)
        free(m->routes[i].name);
    free(m->routes);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_observe(metrics *m, int route, int status, double seconds)
{
    if (route < 0 || route > m->n_routes)
        route = m->n_routes;
    pthread_mutex_lock(&m->lock);
    route_stats *r = &m->routes[route];
    int i = 0;
    while (i < r->n_statuses && r->statuses[i] != status)
        i++;
    if (i == r->n_statuses && i < MAX_STATUSES) {
        r->statuses[i] = status;
        r->status_counts[i] = 0;
        r->n_statuses++;
    }
    if (i < MAX_STATUSES)
        r->status_counts[i]++;
    int b = 0;
    while (b < N_BUCKETS && seconds > bucket_le[b])
        b++;
    if (b < N_BUCKETS)
        r->buckets[b]++;
    r->count++;
    r->sum_seconds += seconds;
    m->requests++;
    m->latency_sum += seconds;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_embeddings(metrics *m, uint64_t texts, uint64_t tokens)
{
    pthread_mutex_lock(&m->lock);
    m->embeddings += texts;
    m->tokens += tokens;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_batch(metrics *m, uint64_t texts)
{
    pthread_mutex_lock(&m->lock);
    m->batches++;
    m->batch_texts += texts;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_forward(metrics *m, metrics_forward_result result)
{
    if ((int)result < 0 || result >= METRICS_FORWARD_N)
        return;
    pthread_mutex_lock(&m->lock);
    m->forwards[result]++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_llm(metrics *m, int outcome, double seconds,
                     int prompt_tokens, int completion_tokens)
{
    if (outcome < 0 || outcome >= LLM_OUTCOME_N)
        return;
    pthread_mutex_lock(&m->lock);
    m->llm_calls[outcome]++;
    hist_add(&m->llm_seconds, llm_le, N_LLM_BUCKETS, seconds);
    if (prompt_tokens >= 0)
        hist_add(&m->llm_prompt_tokens, token_le, N_TOKEN_BUCKETS,
                 prompt_tokens);
    if (completion_tokens >= 0)
        hist_add(&m->llm_completion_tokens, token_le, N_TOKEN_BUCKETS,
                 completion_tokens);
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_guard(metrics *m, metrics_guard_kind kind, uint64_t n)
{
    if ((int)kind < 0 || kind >= METRICS_GUARD_N || n == 0)
        return;
    pthread_mutex_lock(&m->lock);
    m->guard[kind] += n;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add_chat(metrics *m, metrics_chat_kind kind)
{
    if ((int)kind < 0 || kind >= METRICS_CHAT_N)
        return;
    pthread_mutex_lock(&m->lock);
    m->chats[kind]++;
    pthread_mutex_unlock(&m->lock);
}

double metrics_mean_latency_ms(metrics *m)
{
    pthread_mutex_lock(&m->lock);
    double v = m->requests ? 1000.0 * m->latency_sum / (double)m->requests : 0;
    pthread_mutex_unlock(&m->lock);
    return v;
}

uint64_t metrics_requests_total(metrics *m)
{
    pthread_mutex_lock(&m->lock);
    uint64_t v = m->requests;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* The labels of a route: names "METHOD /path" give method and route. */
static void route_labels(const char *name, char *out, size_t size)
{
    const char *sp = strchr(name, ' ');
    if (sp)
        snprintf(out, size, "method=\"%.*s\",route=\"%s\"", (int)(sp - name),
                 name, sp + 1);
    else
        snprintf(out, size, "route=\"%s\"", name);
}

#define put sbuf_printf

/* One histogram in the exposition format. */
static void put_histogram(sbuf *o, const char *name, const char *labels,
                          const histogram *h, const double *le, int n)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int b = 0; b < n; b++) {
        cum += h->buckets[b];
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, le[b],
            (unsigned long long)cum);
    }
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
        (unsigned long long)h->count);
    if (labels[0]) {
        put(o, "%s_sum{%s} %.6f\n", name, labels, h->sum);
        put(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
    } else {
        put(o, "%s_sum %.6f\n", name, h->sum);
        put(o, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

int metrics_render(metrics *m, const metrics_gauges *g, char **out,
                   size_t *len, lode_error *err)
{
    sbuf o = {0};
    pthread_mutex_lock(&m->lock);
    put(&o, "# HELP lode_http_requests_total HTTP requests by route and "
            "status.\n# TYPE lode_http_requests_total counter\n");
    for (int i = 0; i <= m->n_routes; i++) {
        const route_stats *r = &m->routes[i];
        char labels[300];
        route_labels(r->name, labels, sizeof labels);
        for (int s = 0; s < r->n_statuses; s++)
            put(&o, "lode_http_requests_total{%s,status=\"%d\"} %llu\n",
                labels, r->statuses[s],
                (unsigned long long)r->status_counts[s]);
    }
    put(&o, "# HELP lode_http_request_duration_seconds Time from the "
            "request's headers to its response, by route.\n"
            "# TYPE lode_http_request_duration_seconds histogram\n");
    for (int i = 0; i <= m->n_routes; i++) {
        const route_stats *r = &m->routes[i];
        if (!r->count)
            continue;
        char labels[300];
        route_labels(r->name, labels, sizeof labels);
        histogram h = {.count = r->count, .sum = r->sum_seconds};
        memcpy(h.buckets, r->buckets, sizeof r->buckets);
        put_histogram(&o, "lode_http_request_duration_seconds", labels, &h,
                      bucket_le, N_BUCKETS);
    }
    put(&o, "# HELP lode_embeddings_total Texts embedded.\n"
            "# TYPE lode_embeddings_total counter\nlode_embeddings_total %llu\n",
        (unsigned long long)m->embeddings);
    put(&o, "# HELP lode_tokens_total Tokens run through the model.\n"
            "# TYPE lode_tokens_total counter\nlode_tokens_total %llu\n",
        (unsigned long long)m->tokens);
    put(&o, "# HELP lode_batches_total Forward passes run by the scheduler."
            "\n# TYPE lode_batches_total counter\nlode_batches_total %llu\n",
        (unsigned long long)m->batches);
    put(&o, "# HELP lode_batch_texts_total Texts in those forward passes.\n"
            "# TYPE lode_batch_texts_total counter\n"
            "lode_batch_texts_total %llu\n",
        (unsigned long long)m->batch_texts);
    static const char *const forward_names[METRICS_FORWARD_N] = {
        "ok", "retry", "failed", "dropped"};
    put(&o, "# HELP lode_webhook_forwards_total Webhook results forwarded "
            "(ok), attempts retried (retry), deliveries given up (failed) "
            "or dropped unsent (dropped).\n"
            "# TYPE lode_webhook_forwards_total counter\n");
    for (int i = 0; i < METRICS_FORWARD_N; i++)
        put(&o, "lode_webhook_forwards_total{result=\"%s\"} %llu\n",
            forward_names[i], (unsigned long long)m->forwards[i]);
    put(&o, "# HELP lode_llm_requests_total LLM calls by result.\n"
            "# TYPE lode_llm_requests_total counter\n");
    for (int i = 0; i < LLM_OUTCOME_N; i++)
        put(&o, "lode_llm_requests_total{result=\"%s\"} %llu\n",
            llm_outcome_name((llm_outcome)i),
            (unsigned long long)m->llm_calls[i]);
    put(&o, "# HELP lode_llm_request_duration_seconds Time of an LLM call "
            "from submission to its end, retries included.\n"
            "# TYPE lode_llm_request_duration_seconds histogram\n");
    put_histogram(&o, "lode_llm_request_duration_seconds", "",
                  &m->llm_seconds, llm_le, N_LLM_BUCKETS);
    put(&o, "# HELP lode_llm_tokens Tokens per LLM call as the server "
            "reported them, by kind.\n# TYPE lode_llm_tokens histogram\n");
    put_histogram(&o, "lode_llm_tokens", "kind=\"prompt\"",
                  &m->llm_prompt_tokens, token_le, N_TOKEN_BUCKETS);
    put_histogram(&o, "lode_llm_tokens", "kind=\"completion\"",
                  &m->llm_completion_tokens, token_le, N_TOKEN_BUCKETS);
    static const char *const guard_names[METRICS_GUARD_N] = {
        "pii_email", "pii_phone", "pii_card", "pii_iban", "pii_national_id",
        "invisible_characters", "injection_question", "injection_source",
        "not_covered", "citation_removed", "citation_unsupported",
        "strict_replaced"};
    put(&o, "# HELP lode_guardrail_hits_total Guardrail findings by kind.\n"
            "# TYPE lode_guardrail_hits_total counter\n");
    for (int i = 0; i < METRICS_GUARD_N; i++)
        put(&o, "lode_guardrail_hits_total{kind=\"%s\"} %llu\n",
            guard_names[i], (unsigned long long)m->guard[i]);
    static const char *const chat_names[METRICS_CHAT_N] = {
        "llm", "degraded", "not_covered"};
    put(&o, "# HELP lode_chat_answers_total Chat answers by how they were "
            "made.\n# TYPE lode_chat_answers_total counter\n");
    for (int i = 0; i < METRICS_CHAT_N; i++)
        put(&o, "lode_chat_answers_total{mode=\"%s\"} %llu\n", chat_names[i],
            (unsigned long long)m->chats[i]);
    pthread_mutex_unlock(&m->lock);
    put(&o, "# HELP lode_llm_configured 1 when an LLM is configured.\n"
            "# TYPE lode_llm_configured gauge\nlode_llm_configured %d\n",
        g->llm_configured);
    put(&o, "# HELP lode_llm_breaker_state The LLM circuit breaker: 0 closed, "
            "1 half-open, 2 open.\n# TYPE lode_llm_breaker_state gauge\n"
            "lode_llm_breaker_state %d\n", g->breaker_state);
    put(&o, "# HELP lode_llm_breaker_opens_total Times the breaker opened.\n"
            "# TYPE lode_llm_breaker_opens_total counter\n"
            "lode_llm_breaker_opens_total %llu\n",
        (unsigned long long)g->breaker_opens);
    put(&o, "# HELP lode_llm_pending LLM calls queued or running.\n"
            "# TYPE lode_llm_pending gauge\nlode_llm_pending %lld\n",
        (long long)g->llm_pending);
    put(&o, "# HELP lode_http_requests_in_flight Requests being handled.\n"
            "# TYPE lode_http_requests_in_flight gauge\n"
            "lode_http_requests_in_flight %lld\n", (long long)g->in_flight);
    put(&o, "# HELP lode_process_resident_memory_bytes Resident set size.\n"
            "# TYPE lode_process_resident_memory_bytes gauge\n"
            "lode_process_resident_memory_bytes %.0f\n", g->rss_bytes);
    put(&o, "# HELP lode_memory_percent_used Memory used of the cgroup limit "
            "(or of RAM).\n# TYPE lode_memory_percent_used gauge\n"
            "lode_memory_percent_used %.2f\n", g->memory_percent_used);
    put(&o, "# HELP lode_model_state 1 for the model's current state.\n"
            "# TYPE lode_model_state gauge\n"
            "lode_model_state{state=\"loaded\"} %d\n"
            "lode_model_state{state=\"loading\"} %d\n"
            "lode_model_state{state=\"failed\"} %d\n",
        g->model_loaded, g->model_loading, g->model_failed);
    put(&o, "# HELP lode_store_documents Documents in the store.\n"
            "# TYPE lode_store_documents gauge\nlode_store_documents %lld\n",
        (long long)g->documents);
    put(&o, "# HELP lode_store_chunks Chunks in the store.\n"
            "# TYPE lode_store_chunks gauge\nlode_store_chunks %lld\n",
        (long long)g->chunks);
    put(&o, "# HELP lode_uptime_seconds Seconds since the server started.\n"
            "# TYPE lode_uptime_seconds gauge\nlode_uptime_seconds %.3f\n",
        g->uptime_seconds);
    char *text = sbuf_take(&o, len);
    if (!text)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    *out = text;
    return 0;
}
