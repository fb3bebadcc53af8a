/* api_store.c - the store routes: POST /search, /collections and the
 * documents of a collection.
 *
 * Search and document writes need the model, so they run in two steps:
 * validate and submit a job to the scheduler (the request is suspended),
 * then, resumed with the vectors, take store_lock for the store call
 * alone.  No one holds store_lock while waiting for the model, and the
 * store (single-threaded) is only ever used under it.
 *
 * Documents are chunked on the scheduler thread (the job's prepare hook),
 * with the model's own tokenizer and the same chunker and defaults as
 * `lode ingest` (chunk.h), and each document is written in one
 * transaction: a document is either stored whole, with every chunk and
 * vector, or not at all.  Collections are pinned to the model id
 * "NAME:TYPE", the id `lode ingest` uses (ingest_model_id), so the CLI and
 * the server share collections. */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "filter.h"
#include "ingest.h"
#include "search_json.h"

#define API_NAME_MAX 128

/* ---- shared helpers ---------------------------------------------------- */

/* Is this a valid collection name: 1..128 of [A-Za-z0-9._-]? */
static bool valid_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && !strchr("._-", s[n]))
            return false;
    return n > 0 && n <= API_NAME_MAX;
}

static bool check_name(http_request *req, const char *name)
{
    if (name && valid_name(name))
        return true;
    http_respond_error(req, 400, "invalid_request_error",
                       "invalid_collection",
                       "a collection name is 1 to %d letters, digits, '.', "
                       "'_' or '-'", API_NAME_MAX);
    return false;
}

store *api_store_acquire(http_request *req, api *a)
{
    pthread_mutex_lock(&a->store_lock);
    if (a->store_state == API_STORE_OPEN)
        return a->store;
    bool opening = a->store_state == API_STORE_OPENING;
    char msg[LODE_ERROR_MAX];
    snprintf(msg, sizeof msg, "%s", a->store_error);
    pthread_mutex_unlock(&a->store_lock);
    if (opening) {
        http_add_header(req, "Retry-After", "2");
        http_respond_error(req, 503, "server_error", "store_loading",
                           "the database is still opening; retry shortly");
    } else {
        http_respond_error(req, 503, "server_error", "store_unavailable",
                           "the database could not be opened: %s", msg);
    }
    return NULL;
}

void api_store_release(api *a)
{
    pthread_mutex_unlock(&a->store_lock);
}

/* Is the store open (without keeping the lock)?  Answers 503 if not. */
static bool store_ready(http_request *req, api *a)
{
    if (!api_store_acquire(req, a))
        return false;
    api_store_release(a);
    return true;
}

static void model_id(const sched_job *job, const char *type, char *buf,
                     size_t size)
{
    snprintf(buf, size, "%s:%s", job->model_name, type);
}

static void on_job_done(sched_job *job, void *ctx)
{
    (void)job;
    http_resume(ctx);
}

/* A job's vectors are the only heap memory of these states. */
static void free_job_vectors(void *p)
{
    sched_job *job = p;  /* the job is the first member of every state */
    free(job->vectors);
}

bool api_parse_search_fields(http_request *req, api *a, json_t *body,
                             size_t default_k, const char **collection,
                             size_t *k_out, char **where_json)
{
    json_t *coll = json_object_get(body, "collection");
    if (coll && !json_is_null(coll)) {
        if (!check_name(req, json_is_string(coll) ? json_string_value(coll)
                                                  : NULL))
            return false;
        *collection = json_string_value(coll);
    } else {
        *collection = a->cfg.default_collection;
    }
    json_t *k = json_object_get(body, "k");
    if (!k)
        k = json_object_get(body, "top_k");
    *k_out = default_k;
    if (k && !json_is_null(k)) {
        if (!json_is_integer(k) || json_integer_value(k) < 1 ||
            json_integer_value(k) > a->cfg.max_k) {
            http_respond_error(req, 400, "invalid_request_error", "invalid_k",
                               "'k' must be an integer from 1 to %d",
                               a->cfg.max_k);
            return false;
        }
        *k_out = (size_t)json_integer_value(k);
    }
    *where_json = NULL;
    json_t *where = json_object_get(body, "where");
    if (where && !json_is_null(where)) {
        if (!json_is_object(where)) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_where",
                               "'where' must be a JSON object (a Chroma "
                               "filter)");
            return false;
        }
        /* refuse a bad filter now, not after embedding the query */
        filter *f = NULL;
        lode_error ferr = {0};
        if (filter_parse_json(where, &f, &ferr)) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_where", "'where': %s", ferr.message);
            return false;
        }
        filter_free(f);
        char *w = json_dumps(where, JSON_COMPACT);
        *where_json = w ? http_alloc(req, strlen(w) + 1) : NULL;
        if (*where_json)
            strcpy(*where_json, w);
        free(w);
        if (!*where_json) {
            http_respond_error(req, 500, "server_error", "out_of_memory",
                               "out of memory");
            return false;
        }
    }
    return true;
}

bool api_check_collection_name(http_request *req, const char *name)
{
    return check_name(req, name);
}

bool api_parse_search_mode(http_request *req, json_t *body, api_search_mode *out)
{
    out->mode = STORE_DEFAULT_MODE;
    out->fusion = STORE_DEFAULT_FUSION;
    out->alpha = STORE_DEFAULT_ALPHA;
    json_t *mode = json_object_get(body, "mode");
    if (mode && !json_is_null(mode) &&
        store_mode_parse(json_string_value(mode), &out->mode)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_mode",
                           "'mode' must be \"vector\", \"keyword\" or "
                           "\"hybrid\"");
        return false;
    }
    json_t *fusion = json_object_get(body, "fusion");
    if (fusion && !json_is_null(fusion) &&
        store_fusion_parse(json_string_value(fusion), &out->fusion)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_fusion",
                           "'fusion' must be \"rrf\" or \"convex\"");
        return false;
    }
    json_t *alpha = json_object_get(body, "alpha");
    if (alpha && !json_is_null(alpha)) {
        double v = json_number_value(alpha);
        if (!json_is_number(alpha) || !(v >= 0 && v <= 1)) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_alpha",
                               "'alpha' must be a number from 0 to 1");
            return false;
        }
        out->alpha = (float)v;
    }
    return true;
}

void api_search_mode_json(json_t *obj, const api_search_mode *m)
{
    json_object_set_new(obj, "mode", json_string(store_mode_name(m->mode)));
    if (m->mode != STORE_MODE_HYBRID)
        return;
    json_object_set_new(obj, "fusion", json_string(store_fusion_name(m->fusion)));
    if (m->fusion == STORE_FUSION_CONVEX)
        json_object_set_new(obj, "alpha", json_real(m->alpha));
}

/* ---- POST /search -------------------------------------------------------- */

typedef struct search_state {
    sched_job job;          /* first: see free_job_vectors */
    const char *query;
    size_t query_len;
    const char *collection;
    char *where_json;       /* request memory */
    size_t k;
    bool use_min_score;
    float min_score;
    api_search_mode how;
} search_state;

/* page_start/page_end on a result or chunk object, when known. */
static json_t *with_pages(json_t *o, int page_start, int page_end)
{
    if (o && page_start > 0) {
        json_object_set_new(o, "page_start", json_integer(page_start));
        json_object_set_new(o, "page_end", json_integer(page_end));
    }
    return o;
}

static json_t *result_json(const store_result *r)
{
    return with_pages(search_json_add_ranking(
        json_pack("{s:f,s:s,s:I,s:s?,s:s?,s:s?,s:s?,s:I,s:i,s:I,s:I}",
                  "score", (double)r->score, "text", r->text, "document_id",
                  (json_int_t)r->document_id, "id", r->external_id, "source",
                  r->source, "title", r->title, "heading", r->heading,
                  "chunk_id", (json_int_t)r->chunk_id, "ordinal", r->ordinal,
                  "char_start", (json_int_t)r->char_start, "char_end",
                  (json_int_t)r->char_end),
        r), r->page_start, r->page_end);
}

/* Resumed with the query vector, or called at once in keyword mode (no
 * vector: the query is not embedded). */
static void search_answer(http_request *req, api *a, search_state *st)
{
    if (st->job.rc) {
        api_respond_lode_error(req, a, &st->job.err);
        return;
    }
    char mid[300] = "";
    if (st->job.vectors) {
        sched_status ss;
        sched_get_status(a->sched, &ss);
        model_id(&st->job, ss.type, mid, sizeof mid);
    }
    store_query q = {
        .collection = st->collection,
        .model_id = mid,
        .vector = st->job.vectors,
        .dimension = st->job.dim,
        .k = st->k,
        .where_json = st->where_json,
        .use_min_score = st->use_min_score,
        .min_score = st->min_score,
        .mode = st->how.mode,
        .text = st->query,
        .fusion = st->how.fusion,
        .alpha = st->how.alpha,
    };
    store_result *results = NULL;
    size_t n = 0;
    lode_error err = {0};
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    int rc = store_search(s, &q, &results, &n, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, result_json(&results[i]));
    store_results_free(results, n);
    json_t *out = json_pack("{s:s,s:s,s:o,s:i,s:f}", "query", st->query,
                            "collection", st->collection, "results", list,
                            "count", (int)n, "took_ms",
                            http_elapsed(req) * 1000.0);
    api_search_mode_json(out, &st->how);
    http_respond_json(req, 200, out);
}

void api_search(http_request *req, void *app)
{
    api *a = app;
    search_state *st = http_state(req);
    if (st) {
        search_answer(req, a, st);
        return;
    }
    json_t *body = http_json_body(req);
    if (!body)
        return;
    json_t *query = json_object_get(body, "query");
    if (!json_is_string(query) || json_string_length(query) == 0) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_query",
                           "'query' must be a non-empty string");
        return;
    }
    if (!(st = http_alloc_state(req, sizeof *st)))
        return;
    st->query = json_string_value(query);
    st->query_len = json_string_length(query);
    if (!api_parse_search_fields(req, a, body, 5, &st->collection, &st->k,
                                 &st->where_json))
        return;
    json_t *min = json_object_get(body, "min_score");
    if (min && !json_is_null(min)) {
        if (!json_is_number(min)) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_min_score",
                               "'min_score' must be a number");
            return;
        }
        st->use_min_score = true;
        st->min_score = (float)json_number_value(min);
    }
    if (!api_parse_search_mode(req, body, &st->how))
        return;
    if (st->how.mode == STORE_MODE_KEYWORD) {
        search_answer(req, a, st);
        return;
    }
    if (!store_ready(req, a))
        return;
    http_set_state(req, st, free_job_vectors);
    api_embed_texts(req, a, &st->job, 1, &st->query, &st->query_len);
}

void api_embed_texts(http_request *req, api *a, sched_job *job, int n,
                     const char *const *texts, const size_t *lens)
{
    job->n = n;
    job->texts = texts;
    job->lens = lens;
    job->max_tokens = a->cfg.max_tokens;
    job->deadline_ms = sched_now_ms() + a->cfg.load_wait_ms;
    job->done = on_job_done;
    job->ctx = req;
    http_suspend(req);
    sched_submit(a->sched, job);
}

/* ---- collections ------------------------------------------------------- */

static json_t *collection_json(const store_collection_info *c)
{
    return json_pack("{s:s,s:s,s:i,s:s,s:I,s:I,s:I}", "name", c->name,
                     "model", c->model_id, "dimension", c->dimension,
                     "distance", store_distance_name(c->distance), "documents",
                     (json_int_t)c->documents, "chunks",
                     (json_int_t)c->chunks, "created",
                     (json_int_t)c->created);
}

void api_collections_list(http_request *req, void *app)
{
    api *a = app;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    store_collection_info *infos = NULL;
    size_t n = 0;
    lode_error err = {0};
    int rc = store_list_collections(s, &infos, &n, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, collection_json(&infos[i]));
    store_collections_free(infos, n);
    http_respond_json(req, 200, json_pack("{s:o,s:s}", "collections", list,
                                          "default",
                                          a->cfg.default_collection));
}

/* Find a collection's info; store_lock held.  1 found, 0 not, < 0 error. */
static int find_collection(store *s, const char *name,
                           store_collection_info *out, lode_error *err)
{
    store_collection_info *infos = NULL;
    size_t n = 0;
    int rc = store_list_collections(s, &infos, &n, err);
    if (rc)
        return rc;
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        if (strcmp(infos[i].name, name) == 0) {
            *out = infos[i];
            memset(&infos[i], 0, sizeof infos[i]);  /* moved to out */
            found = 1;
        }
    }
    store_collections_free(infos, n);
    return found;
}

void api_collections_create(http_request *req, void *app)
{
    api *a = app;
    json_t *body = http_json_body(req);
    if (!body)
        return;
    json_t *name = json_object_get(body, "name");
    if (!check_name(req, json_is_string(name) ? json_string_value(name)
                                              : NULL))
        return;
    store_distance dist = STORE_COSINE;
    json_t *d = json_object_get(body, "distance");
    if (!d)
        d = json_object_get(body, "metric");
    if (d && !json_is_null(d)) {
        const char *ds = json_string_value(d);
        if (ds && strcmp(ds, "cosine") == 0)
            dist = STORE_COSINE;
        else if (ds && (strcmp(ds, "dot") == 0 || strcmp(ds, "ip") == 0))
            dist = STORE_DOT;
        else if (ds && strcmp(ds, "l2") == 0)
            dist = STORE_L2;
        else {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_distance",
                               "'distance' must be \"cosine\", \"dot\" or "
                               "\"l2\"");
            return;
        }
    }
    sched_status ss;
    sched_get_status(a->sched, &ss);
    if (ss.state != SCHED_LOADED) {
        http_add_header(req, "Retry-After", "5");
        http_respond_error(req, 503, "server_error", "model_unavailable",
                           "a collection is pinned to the model, which is "
                           "not loaded yet; retry shortly");
        return;
    }
    char mid[300];
    snprintf(mid, sizeof mid, "%s:%s", ss.name, ss.type);
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    lode_error err = {0};
    store_collection_info info = {0};
    int existed = find_collection(s, json_string_value(name), &info, &err);
    int rc = existed < 0 ? existed
           : store_create_collection(s, json_string_value(name), mid,
                                     ss.dimension, dist, &err);
    free(info.name);
    free(info.model_id);
    memset(&info, 0, sizeof info);
    if (!rc)
        rc = find_collection(s, json_string_value(name), &info, &err) == 1
                 ? 0 : LODE_EINTERNAL;
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    json_t *o = collection_json(&info);
    free(info.name);
    free(info.model_id);
    http_respond_json(req, existed == 1 ? 200 : 201, o);
}

void api_collections_delete(http_request *req, void *app)
{
    api *a = app;
    const char *name = http_param(req, 0);
    if (!check_name(req, name))
        return;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    lode_error err = {0};
    int rc = store_delete_collection(s, name, &err);
    if (!rc)
        api_refresh_stats(a);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    http_respond_json(req, 200, json_pack("{s:s,s:b}", "name", name,
                                          "deleted", 1));
}

/* ---- documents ----------------------------------------------------------- */

/* The documents write path (api.h) is shared with webhook.c. */
typedef api_doc doc_in;
typedef api_docs_state docs_state;

void api_docs_state_free(void *p)
{
    docs_state *st = p;
    free(st->job.vectors);
    if (st->chunks)
        for (size_t i = 0; i < st->n_docs; i++)
            chunk_list_free(&st->chunks[i]);
    free(st->chunks);
    free(st->texts);
    free(st->lens);
}

/* The job's prepare hook, on the scheduler thread: chunk every document. */
int api_chunk_documents(sched_job *job, const tok_tokenizer *tok,
                           int max_seq_length, lode_error *err)
{
    docs_state *st = (docs_state *)job;
    chunk_options opts = chunk_default_options(max_seq_length);
    st->chunks = calloc(st->n_docs, sizeof *st->chunks);
    if (!st->chunks)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    size_t total = 0;
    for (size_t d = 0; d < st->n_docs; d++) {
        const doc_in *doc = &st->docs[d];
        chunk_heading *headings = NULL;
        size_t n_headings = 0;
        int rc = 0;
        if (doc->headings_given)
            rc = chunk_split(tok, doc->text, doc->len, doc->headings,
                             doc->n_headings, &opts, &st->chunks[d], err);
        else if (!(rc = chunk_find_markdown_headings(doc->text, doc->len,
                                                     &headings, &n_headings,
                                                     err)))
            rc = chunk_split(tok, doc->text, doc->len, headings, n_headings,
                             &opts, &st->chunks[d], err);
        free(headings);
        if (!rc && st->chunks[d].n == 0)
            rc = lode_error_set(err, LODE_EEMPTY, "the text has no words");
        if (rc)
            return lode_error_prefix(err, "document %zu", d);
        total += st->chunks[d].n;
    }
    st->texts = malloc((total ? total : 1) * sizeof *st->texts);
    st->lens = malloc((total ? total : 1) * sizeof *st->lens);
    if (!st->texts || !st->lens)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t d = 0; d < st->n_docs; d++)
        for (size_t c = 0; c < st->chunks[d].n; c++, k++) {
            const chunk *ch = &st->chunks[d].chunks[c];
            st->texts[k] = st->docs[d].text + ch->byte_start;
            st->lens[k] = ch->byte_end - ch->byte_start;
        }
    job->n = (int)total;
    job->texts = st->texts;
    job->lens = st->lens;
    return 0;
}

/* A string field of a document object: absent/null -> NULL; else must be
 * a string (answers 400 and returns false otherwise). */
static bool opt_string(http_request *req, json_t *obj, const char *key,
                       size_t index, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v) && json_string_length(v) > 0 &&
        strlen(json_string_value(v)) == json_string_length(v)) {
        *out = json_string_value(v);
        return true;
    }
    if (json_is_integer(v) && strcmp(key, "id") == 0) {
        /* numbers are accepted as ids and kept as their decimal text */
        char *s = http_alloc(req, 24);
        if (s) {
            snprintf(s, 24, "%lld", (long long)json_integer_value(v));
            *out = s;
            return true;
        }
    }
    http_respond_error(req, 400, "invalid_request_error", "invalid_document",
                       "documents[%zu].%s must be a non-empty string without "
                       "NUL", index, key);
    return false;
}

static bool parse_documents(http_request *req, api *a, json_t *body,
                            docs_state *st)
{
    json_t *docs = json_object_get(body, "documents");
    json_t *single[1] = {body};
    size_t n;
    if (docs) {
        if (!json_is_array(docs) || json_array_size(docs) == 0) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_documents",
                               "'documents' must be a non-empty array of "
                               "objects {id?, text, title?, source?, "
                               "metadata?}");
            return false;
        }
        n = json_array_size(docs);
    } else {
        n = 1;  /* one document given as the body itself */
    }
    if (n > (size_t)a->cfg.max_documents) {
        http_respond_error(req, 400, "invalid_request_error", "limit_exceeded",
                           "%zu documents; the limit is %d per request", n,
                           a->cfg.max_documents);
        return false;
    }
    st->docs = http_alloc(req, n * sizeof *st->docs);
    if (!st->docs) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return false;
    }
    memset(st->docs, 0, n * sizeof *st->docs);
    st->n_docs = n;
    for (size_t i = 0; i < n; i++) {
        json_t *d = docs ? json_array_get(docs, i) : single[0];
        doc_in *doc = &st->docs[i];
        if (!json_is_object(d)) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_document",
                               "documents[%zu] must be an object", i);
            return false;
        }
        json_t *text = json_object_get(d, "text");
        if (!text)
            text = json_object_get(d, "content");
        if (!json_is_string(text) || json_string_length(text) == 0) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_document",
                               "documents[%zu].text must be a non-empty "
                               "string", i);
            return false;
        }
        doc->text = json_string_value(text);
        doc->len = json_string_length(text);
        if (!opt_string(req, d, "id", i, &doc->id) ||
            !opt_string(req, d, "source", i, &doc->source) ||
            !opt_string(req, d, "title", i, &doc->title))
            return false;
        json_t *meta = json_object_get(d, "metadata");
        if (meta && !json_is_null(meta)) {
            if (!json_is_object(meta)) {
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_document",
                                   "documents[%zu].metadata must be an "
                                   "object", i);
                return false;
            }
            char *m = json_dumps(meta, JSON_COMPACT);
            doc->metadata_json = m ? http_alloc(req, strlen(m) + 1) : NULL;
            if (doc->metadata_json)
                strcpy(doc->metadata_json, m);
            free(m);
            if (!doc->metadata_json) {
                http_respond_error(req, 500, "server_error", "out_of_memory",
                                   "out of memory");
                return false;
            }
        }
        store_sha256_hex(doc->text, doc->len, doc->sha256);
    }
    return true;
}

/* Write every document; store_lock held.  Fills `out` per document. */
static int write_documents(store *s, docs_state *st, const char *mid,
                           json_t *out, lode_error *err)
{
    size_t k = 0;  /* index of the document's first chunk in the job */
    for (size_t d = 0; d < st->n_docs; d++) {
        const doc_in *doc = &st->docs[d];
        const chunk_list *cl = &st->chunks[d];
        store_chunk_in *chunks = calloc(cl->n, sizeof *chunks);
        char **texts = calloc(cl->n, sizeof *texts);
        int rc = 0;
        if (!chunks || !texts) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto next;
        }
        for (size_t c = 0; c < cl->n; c++) {
            const chunk *ch = &cl->chunks[c];
            texts[c] = strndup(doc->text + ch->byte_start,
                               ch->byte_end - ch->byte_start);
            if (!texts[c]) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
                goto next;
            }
            chunks[c] = (store_chunk_in){
                .text = texts[c],
                .char_start = (int64_t)ch->char_start,
                .char_end = (int64_t)ch->char_end,
                .token_count = ch->token_count,
                .heading = ch->heading,
                .vector = st->job.vectors + (k + c) * (size_t)st->job.dim,
                .dimension = st->job.dim,
            };
            if (doc->n_pages) {
                extract_doc pd = {.page_starts = (size_t *)doc->page_starts,
                                  .n_pages = doc->n_pages};
                chunks[c].page_start = extract_page_at(&pd, ch->byte_start);
                chunks[c].page_end = extract_page_at(
                    &pd, ch->byte_end ? ch->byte_end - 1 : 0);
            }
        }
        /* the document's entry in the answer, made before it is written:
         * once it is stored nothing may fail for want of memory, or the
         * answer would leave out a stored document */
        json_t *entry = json_pack("{s:s?,s:I,s:s?,s:i}", "id", doc->id, "document_id",
                                  (json_int_t)0, "source", doc->source, "chunks", (int)cl->n);
        if (json_array_append_new(out, entry)) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto next;
        }
        store_document_in in = {
            .model_id = mid,
            .source = doc->source,
            .external_id = doc->id,
            .title = doc->title,
            .metadata_json = doc->metadata_json,
            .content_sha256 = doc->sha256,
            .chunks = chunks,
            .n_chunks = cl->n,
        };
        int64_t id = 0;
        rc = doc->id || doc->source
                 ? store_upsert_document(s, st->collection, &in, &id, err)
                 : store_add_document(s, st->collection, &in, &id, err);
        if (!rc)
            json_integer_set(json_object_get(entry, "document_id"), (json_int_t)id);
        else
            json_array_remove(out, json_array_size(out) - 1);
    next:
        if (texts)
            for (size_t c = 0; c < cl->n; c++)
                free(texts[c]);
        free(texts);
        free(chunks);
        if (rc && d > 0)   /* each document is its own transaction */
            return lode_error_prefix(err, "document %zu (the %zu before it were stored)",
                                     d, d);
        if (rc)
            return lode_error_prefix(err, "document %zu", d);
        k += cl->n;
    }
    return 0;
}

/* The collection is created in a transaction of its own: when the
 * documents then fail, it stays, empty.  Left so on purpose: it is the
 * collection the client asked to write to, a retry fills it, and it is
 * listed (0 documents) and deleted like any other. */
int api_store_documents(store *s, docs_state *st, const char *mid,
                        json_t *written, lode_error *err)
{
    store_collection_info info = {0};
    int found = find_collection(s, st->collection, &info, err);
    int rc = found < 0 ? found : 0;
    if (found == 0)  /* added to a new collection: create it */
        rc = store_create_collection(s, st->collection, mid, st->job.dim,
                                     STORE_COSINE, err);
    free(info.name);
    free(info.model_id);
    if (!rc)
        rc = write_documents(s, st, mid, written, err);
    return rc;
}

json_t *api_docs_write(http_request *req, api *a, api_docs_state *st)
{
    if (st->job.rc) {
        api_respond_lode_error(req, a, &st->job.err);
        return NULL;
    }
    sched_status ss;
    sched_get_status(a->sched, &ss);
    char mid[300];
    model_id(&st->job, ss.type, mid, sizeof mid);
    store *s = api_store_acquire(req, a);
    if (!s)
        return NULL;
    lode_error err = {0};
    json_t *written = json_array();
    int rc = api_store_documents(s, st, mid, written, &err);
    api_refresh_stats(a);
    api_store_release(a);
    if (rc) {
        json_decref(written);
        api_respond_lode_error(req, a, &err);
        return NULL;
    }
    return written;
}

void api_docs_submit(http_request *req, api *a, api_docs_state *st)
{
    st->job.prepare = api_chunk_documents;
    st->job.max_tokens = a->cfg.max_tokens;
    st->job.deadline_ms = sched_now_ms() + a->cfg.load_wait_ms;
    st->job.done = on_job_done;
    st->job.ctx = req;
    http_suspend(req);
    sched_submit(a->sched, &st->job);
}

void api_docs_fallback(const char *collection, json_t *written, int chunks, int tokens,
                       char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "{\"collection\":\"%s\",\"chunks\":%d,"
                                "\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d},"
                                "\"answer_truncated\":true,\"documents\":[",
                                collection, chunks, tokens, tokens);
    for (size_t i = 0; i < json_array_size(written); i++) {
        json_t *e = json_array_get(written, i);
        char id[512], source[1024], one[1700];
        http_json_quote(json_string_value(json_object_get(e, "id")), id, sizeof id);
        http_json_quote(json_string_value(json_object_get(e, "source")), source,
                        sizeof source);
        int k = snprintf(one, sizeof one,
                         "%s{\"id\":%s,\"document_id\":%lld,\"source\":%s,\"chunks\":%lld}",
                         i ? "," : "", id,
                         (long long)json_integer_value(json_object_get(e, "document_id")),
                         source, (long long)json_integer_value(json_object_get(e, "chunks")));
        if (k < 0 || n + (size_t)k + 3 > size)
            break;   /* as many as fit */
        memcpy(buf + n, one, (size_t)k);
        n += (size_t)k;
    }
    memcpy(buf + n, "]}", 3);
}

static void documents_answer(http_request *req, api *a, docs_state *st)
{
    json_t *written = api_docs_write(req, a, st);
    if (!written)
        return;
    /* stored: the answer says so even when memory runs out making it */
    char fallback[API_ANSWER_FALLBACK_MAX];
    api_docs_fallback(st->collection, written, st->job.n, st->job.n_tokens, fallback,
                      sizeof fallback);
    http_respond_json_or(req, 200, json_pack(
        "{s:s,s:O,s:i,s:{s:i,s:i}}", "collection", st->collection,
        "documents", written, "chunks", st->job.n, "usage", "prompt_tokens",
        st->job.n_tokens, "total_tokens", st->job.n_tokens), fallback);
    json_decref(written);
}

void api_documents_add(http_request *req, void *app)
{
    api *a = app;
    docs_state *st = http_state(req);
    if (st) {
        documents_answer(req, a, st);
        return;
    }
    const char *name = http_param(req, 0);
    if (!check_name(req, name))
        return;
    json_t *body = http_json_body(req);
    if (!body)
        return;
    if (!(st = http_alloc_state(req, sizeof *st)))
        return;
    st->a = a;
    st->collection = name;
    http_set_state(req, st, api_docs_state_free);
    if (!parse_documents(req, a, body, st) || !store_ready(req, a))
        return;
    api_docs_submit(req, a, st);
}

/* Find a document of `collection` by external id, else by numeric id;
 * store_lock held. */
static int find_document(store *s, const char *collection, const char *id,
                         store_document **out, lode_error *err)
{
    int64_t doc_id;
    int rc = store_find_document(s, collection, NULL, id, &doc_id, NULL, err);
    if (rc == LODE_ENOTFOUND) {
        char *end;
        long long n = strtoll(id, &end, 10);
        if (*id && !*end && n > 0) {
            doc_id = n;
            rc = 0;
        }
    }
    if (!rc)
        rc = store_get_document(s, doc_id, out, err);
    if (!rc && strcmp((*out)->collection, collection) != 0) {
        store_document_free(*out);
        *out = NULL;
        rc = LODE_ENOTFOUND;
    }
    if (rc == LODE_ENOTFOUND)
        lode_error_set(err, rc, "no document '%s' in collection '%s'", id,
                       collection);
    return rc;
}

static json_t *document_json(const store_document *doc)
{
    json_t *chunks = json_array();
    for (size_t i = 0; i < doc->n_chunks; i++) {
        const store_chunk *c = &doc->chunks[i];
        json_array_append_new(
            chunks, with_pages(
                        json_pack("{s:I,s:i,s:s,s:s?,s:I,s:I,s:i}", "chunk_id",
                                  (json_int_t)c->id, "ordinal", c->ordinal,
                                  "text", c->text, "heading", c->heading,
                                  "char_start", (json_int_t)c->char_start,
                                  "char_end", (json_int_t)c->char_end,
                                  "token_count", c->token_count),
                        c->page_start, c->page_end));
    }
    json_t *meta = doc->metadata_json
                       ? json_loads(doc->metadata_json, 0, NULL) : NULL;
    return json_pack("{s:s?,s:I,s:s,s:s?,s:s?,s:o?,s:s?,s:I,s:I,s:o}", "id",
                     doc->external_id, "document_id", (json_int_t)doc->id,
                     "collection", doc->collection, "source", doc->source,
                     "title", doc->title, "metadata", meta, "content_sha256",
                     doc->content_sha256, "created", (json_int_t)doc->created,
                     "updated", (json_int_t)doc->updated, "chunks", chunks);
}

void api_document_get(http_request *req, void *app)
{
    api *a = app;
    const char *name = http_param(req, 0), *id = http_param(req, 1);
    if (!check_name(req, name))
        return;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    store_document *doc = NULL;
    lode_error err = {0};
    int rc = find_document(s, name, id, &doc, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    json_t *o = document_json(doc);
    store_document_free(doc);
    http_respond_json(req, 200, o);
}

#define API_DOCUMENTS_PAGE 100
#define API_DOCUMENTS_PAGE_MAX 1000

/* GET /collections/{name}/documents?offset=&limit= : a page of the
 * collection's documents in the order they were added. */
void api_documents_list(http_request *req, void *app)
{
    api *a = app;
    const char *name = http_param(req, 0);
    long long offset, limit;
    if (!check_name(req, name) ||
        !api_query_int(req, "offset", 0, INT32_MAX, &offset) ||
        !api_query_int(req, "limit", API_DOCUMENTS_PAGE,
                       API_DOCUMENTS_PAGE_MAX, &limit))
        return;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    store_document_info *docs = NULL;
    size_t n = 0;
    int64_t total = 0;
    lode_error err = {0};
    int rc = store_list_documents(s, name, (size_t)offset, (size_t)limit,
                                  &docs, &n, &total, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            list, json_pack("{s:I,s:s?,s:s?,s:s?,s:I,s:I,s:I}", "document_id",
                            (json_int_t)docs[i].id, "id", docs[i].external_id,
                            "source", docs[i].source, "title", docs[i].title,
                            "chunks", (json_int_t)docs[i].chunks, "created",
                            (json_int_t)docs[i].created, "updated",
                            (json_int_t)docs[i].updated));
    store_document_infos_free(docs, n);
    http_respond_json(req, 200, json_pack("{s:s,s:o,s:I,s:I,s:I}",
                                          "collection", name, "documents",
                                          list, "total", (json_int_t)total,
                                          "offset", (json_int_t)offset,
                                          "limit", (json_int_t)limit));
}

void api_document_delete(http_request *req, void *app)
{
    api *a = app;
    const char *name = http_param(req, 0), *id = http_param(req, 1);
    if (!check_name(req, name))
        return;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    store_document *doc = NULL;
    lode_error err = {0};
    int rc = find_document(s, name, id, &doc, &err);
    int64_t doc_id = doc ? doc->id : 0;
    store_document_free(doc);
    if (!rc)
        rc = store_delete_document(s, doc_id, &err);
    if (!rc)
        api_refresh_stats(a);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    char quoted[600], fallback[700];   /* deleted: said even when memory runs out */
    http_json_quote(id, quoted, sizeof quoted);
    snprintf(fallback, sizeof fallback,
             "{\"id\":%s,\"document_id\":%lld,\"deleted\":true,\"answer_truncated\":true}",
             quoted, (long long)doc_id);
    http_respond_json_or(req, 200, json_pack("{s:s,s:I,s:b}", "id", id, "document_id",
                                             (json_int_t)doc_id, "deleted", 1),
                         fallback);
}
