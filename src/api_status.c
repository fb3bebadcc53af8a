/* api_status.c - the status routes: /health, /model-status,
 * /memory-status, /metrics, and the admin routes that unload and load the
 * model.  Field names are those of the Python service this replaces
 * (model_loaded, model_loading, model_error, load_time, system_memory,
 * ...), so its dashboards and health checks keep working.
 *
 * None of these touches the store handle: store counts come from a cache
 * refreshed after every write, so /health answers at once even while a
 * large write holds the store. */
#include "api.h"
#include "llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1024.0 * 1024.0)

static const char *state_name(sched_state s)
{
    switch (s) {
    case SCHED_LOADED: return "loaded";
    case SCHED_LOADING: return "loading";
    case SCHED_FAILED: return "failed";
    default: return "unloaded";
    }
}

/* The fields every status answer starts with. */
static json_t *model_fields(const sched_status *st)
{
    return json_pack("{s:b,s:b,s:s?}", "model_loaded",
                     st->state == SCHED_LOADED, "model_loading",
                     st->state == SCHED_LOADING, "model_error",
                     st->state == SCHED_FAILED ? st->error : NULL);
}

static void put_timestamp(json_t *o)
{
    char ts[32];
    http_timestamp(ts);
    json_object_set_new(o, "timestamp", json_string(ts));
}

static api_store_state store_state(api *a, char *error, size_t size)
{
    pthread_mutex_lock(&a->store_lock);
    api_store_state s = a->store_state;
    snprintf(error, size, "%s", a->store_error);
    pthread_mutex_unlock(&a->store_lock);
    return s;
}

void api_health(http_request *req, void *app)
{
    api *a = app;
    sched_status st;
    sched_get_status(a->sched, &st);
    char store_err[LODE_ERROR_MAX];
    api_store_state ss = store_state(a, store_err, sizeof store_err);
    memstat_system mem;
    bool pressure = api_memory_reading(a, &mem);
    memstat_process proc;
    api_process_reading(a, &proc);

    const char *status;
    if (st.state == SCHED_FAILED || ss == API_STORE_FAILED)
        status = "unhealthy";
    else if (st.state == SCHED_LOADING || ss == API_STORE_OPENING)
        status = "loading";
    else if (pressure || st.state == SCHED_UNLOADED ||
             atomic_load(&a->shutting_down))
        status = "degraded";
    else
        status = "healthy";

    const char *embedding = st.state == SCHED_LOADED ? "operational"
                          : st.state == SCHED_LOADING ? "loading"
                          : st.state == SCHED_FAILED ? "error" : "unloaded";
    /* the LLM: answers go on without it (degraded), so it never makes the
     * service unhealthy */
    const char *llm_service = "not_configured";
    breaker_snapshot br = {0};
    if (a->llm) {
        llm_breaker_state(a->llm, &br);
        llm_service = br.state == BREAKER_CLOSED ? "operational"
                    : br.state == BREAKER_OPEN ? "unavailable" : "recovering";
    }
    const char *vector_store = ss == API_STORE_OPEN ? "operational"
                             : ss == API_STORE_OPENING ? "loading" : "error";
    json_t *o = model_fields(&st);
    json_object_set_new(o, "status", json_string(status));
    put_timestamp(o);
    json_object_set_new(
        o, "components",
        json_pack("{s:s,s:s,s:s,s:s}", "vector_store", vector_store,
                  "embedding_service", embedding, "llm_service",
                  llm_service, "memory_manager",
                  pressure ? "pressure" : "operational"));
    if (ss == API_STORE_FAILED)
        json_object_set_new(o, "store_error", json_string(store_err));
    json_object_set_new(
        o, "llm",
        a->llm ? json_pack("{s:b,s:s,s:s,s:{s:s,s:i,s:f}}", "configured", 1,
                           "model", llm_model_name(a->llm), "base_url",
                           llm_base_url(a->llm), "breaker", "state",
                           breaker_state_name(br.state),
                           "consecutive_failures", br.consecutive_failures,
                           "retry_in_s", (double)br.retry_in_ms / 1000.0)
               : json_pack("{s:b}", "configured", 0));
    pthread_mutex_lock(&a->stats_lock);
    store_stats stats = a->stats;
    pthread_mutex_unlock(&a->stats_lock);
    json_object_set_new(o, "store",
                        json_pack("{s:I,s:I,s:I}", "collections",
                                  (json_int_t)stats.collections, "documents",
                                  (json_int_t)stats.documents, "chunks",
                                  (json_int_t)stats.chunks));
    double uptime_h = (double)(sched_now_ms() - a->started_ms) / 3600000.0;
    json_object_set_new(
        o, "performance",
        json_pack("{s:f,s:f,s:f,s:f}", "memory_usage_mb",
                  (double)proc.rss_bytes / MB, "memory_percent_used",
                  mem.percent_used, "response_time_avg_ms",
                  metrics_mean_latency_ms(a->metrics), "uptime_hours",
                  uptime_h));
    bool ok = strcmp(status, "healthy") == 0 || strcmp(status, "degraded") == 0;
    if (!ok)
        http_add_header(req, "Retry-After", "5");
    http_respond_json(req, ok ? 200 : 503, o);
}

void api_model_status(http_request *req, void *app)
{
    api *a = app;
    sched_status st;
    sched_get_status(a->sched, &st);
    json_t *o = model_fields(&st);
    json_object_set_new(o, "state", json_string(state_name(st.state)));
    json_object_set_new(o, "load_time", st.state == SCHED_LOADED
                                            ? json_real(st.load_seconds)
                                            : json_null());
    json_t *model = json_pack("{s:s}", "path", st.path);
    if (st.state == SCHED_LOADED) {
        json_object_set_new(model, "name", json_string(st.name));
        json_object_set_new(model, "type", json_string(st.type));
        json_object_set_new(model, "dimension", json_integer(st.dimension));
        json_object_set_new(model, "max_seq_length",
                            json_integer(st.max_seq_length));
        json_object_set_new(model, "vocab_size", json_integer(st.vocab_size));
        json_object_set_new(model, "file_size_mb",
                            json_real((double)st.file_bytes / MB));
        json_object_set_new(model, "file_size_bytes",
                            json_integer((json_int_t)st.file_bytes));
    }
    json_object_set_new(o, "model", model);
    json_object_set_new(o, "queued_jobs", json_integer(st.queued_jobs));
    put_timestamp(o);
    http_respond_json(req, 200, o);
}

void api_memory_status(http_request *req, void *app)
{
    api *a = app;
    memstat_system mem;
    bool pressure = api_memory_reading(a, &mem);
    memstat_process proc;
    api_process_reading(a, &proc);
    sched_status st;
    sched_get_status(a->sched, &st);
    pthread_mutex_lock(&a->stats_lock);
    store_stats stats = a->stats;
    pthread_mutex_unlock(&a->stats_lock);
    json_t *o = json_pack(
        "{s:{s:f,s:f,s:f,s:f,s:s},s:{s:f,s:f,s:f,s:f},s:f,s:b,s:f}",
        "system_memory", "total_mb", (double)mem.total_bytes / MB,
        "available_mb", (double)mem.available_bytes / MB, "used_mb",
        (double)mem.used_bytes / MB, "percent_used", mem.percent_used,
        "source", mem.source ? mem.source : "unknown", "process", "rss_mb",
        (double)proc.rss_bytes / MB, "peak_rss_mb",
        (double)proc.peak_rss_bytes / MB, "model_mb",
        st.state == SCHED_LOADED ? (double)st.file_bytes / MB : 0.0,
        "index_mb", (double)stats.bytes_in_memory / MB, "vector_db_size_mb",
        (double)stats.bytes_on_disk / MB, "memory_pressure", pressure,
        "pressure_threshold_percent", a->cfg.memory_threshold);
    json_object_set_new(o, "model_loaded",
                        json_boolean(st.state == SCHED_LOADED));
    put_timestamp(o);
    http_respond_json(req, 200, o);
}

void api_metrics(http_request *req, void *app)
{
    api *a = app;
    sched_status st;
    sched_get_status(a->sched, &st);
    memstat_process proc;
    api_process_reading(a, &proc);
    memstat_system mem;
    api_memory_reading(a, &mem);
    pthread_mutex_lock(&a->stats_lock);
    store_stats stats = a->stats;
    pthread_mutex_unlock(&a->stats_lock);
    metrics_gauges g = {
        .rss_bytes = (double)proc.rss_bytes,
        .model_loaded = st.state == SCHED_LOADED,
        .model_loading = st.state == SCHED_LOADING,
        .model_failed = st.state == SCHED_FAILED,
        .documents = stats.documents,
        .chunks = stats.chunks,
        .uptime_seconds = (double)(sched_now_ms() - a->started_ms) / 1000.0,
        .memory_percent_used = mem.percent_used,
        .in_flight = a->http ? http_in_flight(a->http) : 0,
        .llm_configured = a->llm != NULL,
    };
    if (a->llm) {
        breaker_snapshot br;
        llm_breaker_state(a->llm, &br);
        g.breaker_state = (int)br.state;
        g.breaker_opens = br.opens;
        g.llm_pending = (int64_t)llm_pending(a->llm);
    }
    char *text;
    size_t len;
    lode_error err = {0};
    if (metrics_render(a->metrics, &g, &text, &len, &err)) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                      text, len);
    free(text);
}

void api_model_load(http_request *req, void *app)
{
    api *a = app;
    int rc = sched_load(a->sched);
    sched_status st;
    sched_get_status(a->sched, &st);
    json_t *o = model_fields(&st);
    json_object_set_new(o, "state", json_string(state_name(st.state)));
    if (rc == LODE_EBUSY && st.state == SCHED_LOADING) {
        http_respond_json(req, 202, o); /* a load is already running */
        return;
    }
    if (rc) {
        json_decref(o);
        http_respond_error(req, 500, "server_error", "internal_error",
                           "cannot start loading the model");
        return;
    }
    http_respond_json(req, st.state == SCHED_LOADED ? 200 : 202, o);
}

void api_model_unload(http_request *req, void *app)
{
    api *a = app;
    if (sched_unload(a->sched) == LODE_EBUSY) {
        http_add_header(req, "Retry-After", "5");
        http_respond_error(req, 409, "invalid_request_error", "model_loading",
                           "the model is loading; unload it once loaded");
        return;
    }
    sched_status st;
    sched_get_status(a->sched, &st);
    json_t *o = model_fields(&st);
    json_object_set_new(o, "state", json_string(state_name(st.state)));
    http_respond_json(req, 200, o);
}
