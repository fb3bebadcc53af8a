/* api_eval.c - POST /eval: `lode eval` for a collection held by the
 * server (eval.h has the metrics and the query format).
 *
 *   {"queries": [{"query", "relevant": [...], "passage"?, "kind"?}, ...],
 *    "collection"?, "k"? (1..100, default 5), "mode"? (vector | keyword |
 *    hybrid | all, default all), "fusion"? (rrf | convex, for hybrid),
 *    "alpha"? (a number or an array of numbers: convex's weights)}
 *
 * Read-only, so it has /search's protection (a read route, heavy).  The
 * queries are embedded by the scheduler in one job (at most max_inputs of
 * them, the /v1/embeddings limit), unless only keyword mode is asked for;
 * the searches then run in slices of EVAL_SLICE queries, taking
 * store_lock for one slice at a time, so other requests get the store in
 * between.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

#define EVAL_SLICE 32
#define EVAL_API_MAX_K 100
#define EVAL_API_MAX_CONFIGS 16

typedef struct eval_state {
    sched_job job;              /* first: the scheduler's job */
    eval_set set;
    const char *collection;
    size_t k;
    eval_config configs[EVAL_API_MAX_CONFIGS];
    size_t n_configs;
} eval_state;

static void eval_state_free(void *p)
{
    eval_state *st = p;
    free(st->job.vectors);
    eval_set_free(&st->set);
}

/* "mode", "fusion" and "alpha" into configurations; 400 when bad. */
static bool parse_configs(http_request *req, json_t *body, eval_state *st)
{
    json_t *mode = json_object_get(body, "mode"), *fusion = json_object_get(body, "fusion");
    json_t *alpha = json_object_get(body, "alpha");
    const char *m = mode && !json_is_null(mode) ? json_string_value(mode) : "all";
    store_mode sm = STORE_MODE_VECTOR;
    store_fusion sf = STORE_DEFAULT_FUSION;
    bool all = m && strcmp(m, "all") == 0;
    if (!m || (!all && store_mode_parse(m, &sm))) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_mode",
                           "'mode' must be \"vector\", \"keyword\", \"hybrid\" or \"all\"");
        return false;
    }
    if (fusion && !json_is_null(fusion) && store_fusion_parse(json_string_value(fusion), &sf)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_fusion",
                           "'fusion' must be \"rrf\" or \"convex\"");
        return false;
    }
    float alphas[EVAL_API_MAX_CONFIGS];
    size_t n_alpha = 0;
    json_t *list = json_is_array(alpha) ? alpha : NULL;
    size_t n_items = list ? json_array_size(list) : alpha && !json_is_null(alpha) ? 1 : 0;
    for (size_t i = 0; i < n_items; i++) {
        json_t *v = list ? json_array_get(list, i) : alpha;
        double a = json_number_value(v);
        if (!json_is_number(v) || !(a >= 0 && a <= 1) || n_alpha == EVAL_API_MAX_CONFIGS - 3) {
            http_respond_error(req, 400, "invalid_request_error", "invalid_alpha",
                               "'alpha' must be a number from 0 to 1, or an array "
                               "of at most %d of them", EVAL_API_MAX_CONFIGS - 3);
            return false;
        }
        alphas[n_alpha++] = (float)a;
    }
    if (!n_alpha)
        alphas[n_alpha++] = STORE_DEFAULT_ALPHA;
    eval_config *c = st->configs;
    size_t n = 0;
    if (all || sm == STORE_MODE_VECTOR)
        c[n++] = (eval_config){STORE_MODE_VECTOR, 0, 0};
    if (all || sm == STORE_MODE_KEYWORD)
        c[n++] = (eval_config){STORE_MODE_KEYWORD, 0, 0};
    if ((all || sm == STORE_MODE_HYBRID) && (all || sf == STORE_FUSION_RRF))
        c[n++] = (eval_config){STORE_MODE_HYBRID, STORE_FUSION_RRF, 0};
    if ((all || sm == STORE_MODE_HYBRID) && (all || sf == STORE_FUSION_CONVEX))
        for (size_t i = 0; i < n_alpha; i++)
            c[n++] = (eval_config){STORE_MODE_HYBRID, STORE_FUSION_CONVEX, alphas[i]};
    st->n_configs = n;
    return true;
}

/* Resumed with the vectors (or at once, keyword alone). */
static void eval_answer(http_request *req, api *a, eval_state *st)
{
    if (st->job.rc) {
        api_respond_lode_error(req, a, &st->job.err);
        return;
    }
    char mid[300] = "";
    if (st->job.vectors) {
        sched_status ss;
        sched_get_status(a->sched, &ss);
        snprintf(mid, sizeof mid, "%s:%s", st->job.model_name, ss.type);
    }
    eval_params p = {st->collection, mid, st->job.vectors, st->job.dim, st->k, false};
    lode_error err = {0};
    size_t missing = 0;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    int rc = eval_missing_names(s, st->collection, &st->set, &missing, &err);
    api_store_release(a);
    json_t *results = json_array();
    eval_metrics overall = {0};
    for (size_t c = 0; !rc && c < st->n_configs; c++) {
        eval_acc *acc = eval_acc_new(&st->set);
        if (!acc)
            rc = lode_error_set(&err, LODE_ENOMEM, "out of memory");
        for (size_t from = 0; !rc && from < st->set.n; from += EVAL_SLICE) {
            if (!(s = api_store_acquire(req, a))) {
                eval_acc_free(acc);
                json_decref(results);
                return;
            }
            rc = eval_run(s, &st->set, from, from + EVAL_SLICE, &p, &st->configs[c], acc, &err);
            api_store_release(a);
        }
        if (!rc) {
            json_array_append_new(results, eval_report_json(acc, &st->set, &st->configs[c], st->k));
            eval_metrics_of(acc, -1, &overall);
        }
        eval_acc_free(acc);
    }
    if (rc) {
        json_decref(results);
        api_respond_lode_error(req, a, &err);
        return;
    }
    http_respond_json(req, 200, json_pack("{s:s,s:I,s:I,s:I,s:I,s:o,s:f}", "collection",
                                          st->collection, "k", (json_int_t)st->k,
                                          "queries", (json_int_t)overall.queries,
                                          "skipped", (json_int_t)overall.skipped,
                                          "missing_relevant", (json_int_t)missing,
                                          "results", results, "took_ms",
                                          http_elapsed(req) * 1000.0));
}

void api_eval(http_request *req, void *app)
{
    api *a = app;
    eval_state *st = http_state(req);
    if (st) {
        eval_answer(req, a, st);
        return;
    }
    json_t *body = http_json_body(req);
    if (!body)
        return;
    if (!(st = http_alloc_state(req, sizeof *st)))
        return;
    char *where = NULL;
    if (!api_parse_search_fields(req, a, body, 5, &st->collection, &st->k, &where) ||
        !parse_configs(req, body, st))
        return;
    if (where) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_where",
                           "/eval takes no 'where': it measures the whole collection");
        return;
    }
    if (st->k > EVAL_API_MAX_K) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_k",
                           "'k' of an evaluation is at most %d", EVAL_API_MAX_K);
        return;
    }
    json_t *queries = json_object_get(body, "queries");
    if (json_is_array(queries) && json_array_size(queries) > (size_t)a->cfg.max_inputs) {
        http_respond_error(req, 400, "invalid_request_error", "limit_exceeded",
                           "'queries' has %zu items; the limit is %d per request",
                           json_array_size(queries), a->cfg.max_inputs);
        return;
    }
    lode_error err = {0};
    if (eval_parse_array(queries, &st->set, &err)) {
        http_respond_error(req, err.code == LODE_ENOMEM ? 500 : 400,
                           err.code == LODE_ENOMEM ? "server_error" : "invalid_request_error",
                           err.code == LODE_ENOMEM ? "out_of_memory" : "invalid_queries",
                           "%s", err.message);
        return;
    }
    http_set_state(req, st, eval_state_free);
    bool need_vectors = false;
    for (size_t c = 0; c < st->n_configs; c++)
        need_vectors |= st->configs[c].mode != STORE_MODE_KEYWORD;
    if (!need_vectors) {
        eval_answer(req, a, st);
        return;
    }
    const char **texts = http_alloc(req, st->set.n * sizeof *texts);
    size_t *lens = http_alloc(req, st->set.n * sizeof *lens);
    if (!texts || !lens) {
        http_respond_error(req, 500, "server_error", "out_of_memory", "out of memory");
        return;
    }
    for (size_t i = 0; i < st->set.n; i++) {
        texts[i] = st->set.queries[i].query;
        lens[i] = strlen(texts[i]);
    }
    api_embed_texts(req, a, &st->job, (int)st->set.n, texts, lens);
}
