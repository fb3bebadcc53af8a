/* eval.c - recall@k, MRR and nDCG@10 of a collection on labelled queries
 * (see eval.h for the file format and the definitions).
 *
 * Each query is one store_search (a few when documents are judged and
 * the first chunks do not cover max(k, 10) documents: the chunk count is
 * then doubled), timed on its own, then judged in memory.  A relevant
 * item is credited once, at the first unit that matches it, so a document
 * reached through both its source and its external id, or a chunk id and
 * a source naming the same document, cannot push nDCG above 1.
 */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct eval_acc {
    size_t n_slots;             /* 1 + kinds; slot 0 is every query */
    eval_metrics *sums;         /* recall, mrr, ndcg, passage as sums */
    double *ms;                 /* per query, < 0 until searched */
    int *kind;                  /* per query */
    json_t *rankings;           /* per query, when kept: [chunk ids] */
    size_t n_queries;
};

/* ---- parsing ------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void query_free(eval_query *q)
{
    free(q->id);
    free(q->query);
    free(q->passage);
    for (size_t i = 0; i < q->n_relevant; i++)
        free(q->relevant[i].name);
    free(q->relevant);
}

void eval_set_free(eval_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        query_free(&set->queries[i]);
    free(set->queries);
    for (size_t i = 0; i < set->n_kinds; i++)
        free(set->kinds[i]);
    free(set->kinds);
    memset(set, 0, sizeof *set);
}

static int kind_index(eval_set *set, const char *kind, lode_error *err)
{
    for (size_t i = 0; i < set->n_kinds; i++)
        if (strcmp(set->kinds[i], kind) == 0)
            return (int)i;
    char **grown = realloc(set->kinds, (set->n_kinds + 1) * sizeof *grown);
    if (!grown || !(grown[set->n_kinds] = strdup(kind))) {
        if (grown)
            set->kinds = grown;
        return lode_error_set(err, LODE_ENOMEM, "out of memory reading queries");
    }
    set->kinds = grown;
    return (int)set->n_kinds++;
}

static int parse_rel(json_t *item, eval_rel *out, lode_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *chunk = json_object_get(item, "chunk_id"), *doc = json_object_get(item, "document_id");
    if (json_is_string(item)) {
        out->kind = EVAL_REL_NAME;
        if (!(out->name = strdup(json_string_value(item))))
            return lode_error_set(err, LODE_ENOMEM, "out of memory reading queries");
    } else if (json_is_integer(item) || json_is_integer(chunk)) {
        out->kind = EVAL_REL_CHUNK;
        out->id = json_integer_value(json_is_integer(item) ? item : chunk);
    } else if (json_is_integer(doc)) {
        out->kind = EVAL_REL_DOCUMENT;
        out->id = json_integer_value(doc);
    } else {
        return lode_error_set(err, LODE_EINVAL, "a relevant item is a source or "
                              "external id (string), a chunk id (integer or "
                              "{\"chunk_id\": N}) or {\"document_id\": N}");
    }
    return 0;
}

/* One query object into set (appended). */
static int parse_query(eval_set *set, json_t *o, lode_error *err)
{
    json_t *query = json_object_get(o, "query"), *rel = json_object_get(o, "relevant");
    json_t *passage = json_object_get(o, "passage"), *kind = json_object_get(o, "kind");
    json_t *id = json_object_get(o, "id");
    if (!json_is_object(o) || !json_is_string(query) || json_string_length(query) == 0)
        return lode_error_set(err, LODE_EINVAL, "each query is an object with a "
                              "non-empty \"query\" string");
    if (rel && !json_is_array(rel) && !json_is_null(rel))
        return lode_error_set(err, LODE_EINVAL, "\"relevant\" must be an array");
    eval_query *grown = realloc(set->queries, (set->n + 1) * sizeof *grown);
    if (!grown)
        return lode_error_set(err, LODE_ENOMEM, "out of memory reading queries");
    set->queries = grown;
    eval_query *q = &set->queries[set->n];
    memset(q, 0, sizeof *q);
    q->kind = -1;
    int rc = 0;
    size_t n_rel = json_array_size(rel);
    q->query = strdup(json_string_value(query));
    q->passage = dup_or_null(json_string_value(passage));
    q->id = json_is_string(id) ? strdup(json_string_value(id))
          : json_is_integer(id) ? malloc(24) : NULL;
    if (json_is_integer(id) && q->id)
        snprintf(q->id, 24, "%lld", (long long)json_integer_value(id));
    q->relevant = calloc(n_rel ? n_rel : 1, sizeof *q->relevant);
    if (!q->query || !q->relevant || (json_is_string(passage) && !q->passage) ||
        ((json_is_string(id) || json_is_integer(id)) && !q->id))
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading queries");
    q->by_chunk = n_rel > 0;
    for (size_t i = 0; !rc && i < n_rel; i++) {
        rc = parse_rel(json_array_get(rel, i), &q->relevant[i], err);
        if (!rc) {
            q->n_relevant++;
            q->by_chunk &= q->relevant[i].kind == EVAL_REL_CHUNK;
        }
    }
    if (!rc && json_is_string(kind)) {
        int k = kind_index(set, json_string_value(kind), err);
        if (k < 0)
            rc = k;
        q->kind = k;
    }
    if (rc) {
        query_free(q);
        return rc;
    }
    set->n++;
    return 0;
}

int eval_parse_jsonl(const char *data, size_t len, eval_set *out, lode_error *err)
{
    memset(out, 0, sizeof *out);
    size_t line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        line++;
        size_t a = pos;
        while (a < end && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r'))
            a++;
        if (a < end) {
            json_error_t jerr;
            json_t *o = json_loadb(data + a, end - a, 0, &jerr);
            int rc = o ? parse_query(out, o, err)
                       : lode_error_set(err, LODE_EINVAL, "not JSON: %s", jerr.text);
            json_decref(o);
            if (rc) {
                lode_error_prefix(err, "line %zu", line);
                eval_set_free(out);
                return rc;
            }
        }
        pos = end + 1;
    }
    if (!out->n)
        return lode_error_set(err, LODE_EINVAL, "no queries");
    return 0;
}

int eval_parse_array(json_t *array, eval_set *out, lode_error *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_array(array) || json_array_size(array) == 0)
        return lode_error_set(err, LODE_EINVAL, "'queries' must be a non-empty array");
    for (size_t i = 0; i < json_array_size(array); i++) {
        int rc = parse_query(out, json_array_get(array, i), err);
        if (rc) {
            lode_error_prefix(err, "query %zu", i);
            eval_set_free(out);
            return rc;
        }
    }
    return 0;
}

void eval_config_name(const eval_config *c, char *buf, size_t size)
{
    if (c->mode != STORE_MODE_HYBRID)
        snprintf(buf, size, "%s", store_mode_name(c->mode));
    else if (c->fusion == STORE_FUSION_CONVEX)
        snprintf(buf, size, "hybrid convex a=%.2f", (double)c->alpha);
    else
        snprintf(buf, size, "hybrid rrf");
}

/* ---- accumulating ------------------------------------------------------- */

eval_acc *eval_acc_new(const eval_set *set)
{
    eval_acc *acc = calloc(1, sizeof *acc);
    if (!acc)
        return NULL;
    acc->n_slots = set->n_kinds + 1;
    acc->n_queries = set->n;
    acc->sums = calloc(acc->n_slots, sizeof *acc->sums);
    acc->ms = malloc((set->n ? set->n : 1) * sizeof *acc->ms);
    acc->kind = malloc((set->n ? set->n : 1) * sizeof *acc->kind);
    if (!acc->sums || !acc->ms || !acc->kind) {
        eval_acc_free(acc);
        return NULL;
    }
    for (size_t i = 0; i < set->n; i++) {
        acc->ms[i] = -1;
        acc->kind[i] = set->queries[i].kind;
    }
    return acc;
}

void eval_acc_free(eval_acc *acc)
{
    if (!acc)
        return;
    free(acc->sums);
    free(acc->ms);
    free(acc->kind);
    json_decref(acc->rankings);
    free(acc);
}

/* ---- judging ------------------------------------------------------------ */

/* A ranked unit: one chunk, or one document with the chunks of it that
 * were retrieved (first is the best of them). */
typedef struct unit {
    const store_result *first;
    int64_t *chunk_ids;
    size_t n_chunks;
} unit;

static bool rel_matches(const eval_rel *r, const unit *u)
{
    switch (r->kind) {
    case EVAL_REL_NAME:
        return (u->first->source && strcmp(u->first->source, r->name) == 0) ||
               (u->first->external_id && strcmp(u->first->external_id, r->name) == 0);
    case EVAL_REL_DOCUMENT:
        return u->first->document_id == r->id;
    case EVAL_REL_CHUNK:
        for (size_t i = 0; i < u->n_chunks; i++)
            if (u->chunk_ids[i] == r->id)
                return true;
        return false;
    }
    return false;
}

/* Units of the results: chunks as they are, or documents in order of
 * first appearance; ids_buf (room for n) holds their chunk id lists.
 * Returns their number (<= max). */
static long make_units(const store_result *res, size_t n, bool by_chunk, size_t max,
                       unit *units, int64_t *ids_buf)
{
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        size_t u = 0;
        if (!by_chunk)
            while (u < nu && units[u].first->document_id != res[i].document_id)
                u++;
        if (by_chunk || u == nu) {
            if (nu == max)
                continue;
            units[nu++] = (unit){&res[i], NULL, 0};
        }
    }
    /* each unit's chunk ids, gathered in one more pass */
    size_t used = 0;
    for (size_t u = 0; u < nu; u++) {
        units[u].chunk_ids = ids_buf + used;
        for (size_t i = 0; i < n; i++)
            if (by_chunk ? &res[i] == units[u].first
                         : res[i].document_id == units[u].first->document_id)
                units[u].chunk_ids[units[u].n_chunks++] = res[i].chunk_id;
        used += units[u].n_chunks;
    }
    return (long)nu;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Markdown emphasis and code marks, which a passage quoted from the
 * rendered text does not have. */
static bool is_markup(char c)
{
    return c == '*' || c == '`';
}

/* The next character of s to compare, from *s: a run of blanks is one
 * space, markup is skipped.  0 at the end. */
static char next_char(const char **s)
{
    while (is_markup(**s))
        ++*s;
    if (is_blank(**s)) {
        while (is_blank(**s) || is_markup(**s))
            ++*s;
        return ' ';
    }
    return **s ? *(*s)++ : 0;
}

/* text contains passage, ignoring blanks at the passage's ends, the
 * width of blank runs and Markdown marks. */
static bool contains_passage(const char *text, const char *passage)
{
    while (is_blank(*passage) || is_markup(*passage))
        passage++;
    size_t plen = strlen(passage);
    while (plen && (is_blank(passage[plen - 1]) || is_markup(passage[plen - 1])))
        plen--;
    if (!plen)
        return true;
    for (const char *start = text; *start; start++) {
        if (is_markup(*start) || is_blank(*start))
            continue;
        const char *t = start, *p = passage, *pend = passage + plen;
        for (;;) {
            if (p >= pend)
                return true;
            char pc = next_char(&p), tc = next_char(&t);
            if (p > pend && pc == ' ')
                return true;        /* only trailing blanks were left */
            if (pc != tc)
                break;
        }
    }
    return false;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Search query q deep enough for `depth` units. */
static int search_units(store *s, const eval_query *q, const store_query *base,
                        size_t depth, store_result **res, size_t *n, double *ms,
                        lode_error *err)
{
    size_t want = q->by_chunk ? depth : depth * 5;
    *ms = 0;
    for (;;) {
        store_query sq = *base;
        sq.k = want < EVAL_MAX_CHUNKS ? want : EVAL_MAX_CHUNKS;
        double t0 = now_ms();
        int rc = store_search(s, &sq, res, n, err);
        *ms += now_ms() - t0;
        if (rc || q->by_chunk || *n < sq.k || sq.k == EVAL_MAX_CHUNKS)
            return rc;
        size_t docs = 0;
        for (size_t i = 0; i < *n && docs < depth; i++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = (*res)[j].document_id == (*res)[i].document_id;
            docs += !seen;
        }
        if (docs >= depth)
            return 0;
        store_results_free(*res, *n);
        *res = NULL;
        want *= 2;
    }
}

static void add_to(eval_metrics *m, const eval_metrics *one)
{
    m->queries += one->queries;
    m->skipped += one->skipped;
    m->with_passage += one->with_passage;
    m->recall += one->recall;
    m->mrr += one->mrr;
    m->ndcg += one->ndcg;
    m->passage += one->passage;
}

int eval_run(store *s, const eval_set *set, size_t from, size_t to,
             const eval_params *p, const eval_config *cfg, eval_acc *acc,
             lode_error *err)
{
    size_t depth = p->k > EVAL_NDCG_AT ? p->k : EVAL_NDCG_AT;
    for (size_t qi = from; qi < to && qi < set->n; qi++) {
        const eval_query *q = &set->queries[qi];
        eval_metrics one = {0};
        if (!q->n_relevant) {
            one.skipped = 1;
        } else {
            store_query base = {
                .collection = p->collection, .model_id = p->model_id,
                .vector = cfg->mode == STORE_MODE_KEYWORD || !p->vectors
                              ? NULL : p->vectors + qi * (size_t)p->dimension,
                .dimension = p->dimension, .mode = cfg->mode, .text = q->query,
                .fusion = cfg->fusion, .alpha = cfg->alpha,
            };
            store_result *res = NULL;
            size_t n = 0;
            int rc = search_units(s, q, &base, depth, &res, &n, &acc->ms[qi], err);
            if (rc) {
                lode_error_prefix(err, "query %zu (%s)", qi + 1, q->id ? q->id : q->query);
                return rc;
            }
            unit *units = malloc((depth + 1) * sizeof *units);
            int64_t *ids = malloc((n + 1) * sizeof *ids);
            bool *credited = calloc(q->n_relevant, sizeof *credited);
            long nu = units && ids && credited
                          ? make_units(res, n, q->by_chunk, depth, units, ids) : -1;
            if (nu < 0) {
                free(units);
                free(ids);
                free(credited);
                store_results_free(res, n);
                return lode_error_set(err, LODE_ENOMEM, "out of memory judging queries");
            }
            double dcg = 0, idcg = 0;
            size_t found_in_k = 0;
            for (long u = 0; u < nu; u++) {
                bool rel = false;
                for (size_t r = 0; r < q->n_relevant; r++)
                    if (!credited[r] && rel_matches(&q->relevant[r], &units[u])) {
                        credited[r] = true;
                        rel = true;
                        found_in_k += (size_t)u < p->k;
                    }
                if (rel && one.mrr == 0)
                    one.mrr = 1.0 / (double)(u + 1);
                if (rel && u < EVAL_NDCG_AT)
                    dcg += 1.0 / log2((double)u + 2);
            }
            for (size_t r = 0; r < q->n_relevant && r < EVAL_NDCG_AT; r++)
                idcg += 1.0 / log2((double)r + 2);
            one.queries = 1;
            one.recall = (double)found_in_k / (double)q->n_relevant;
            one.ndcg = dcg / idcg;
            if (q->passage && *q->passage) {
                one.with_passage = 1;
                for (size_t i = 0; i < n && i < p->k && one.passage == 0; i++)
                    one.passage = contains_passage(res[i].text, q->passage);
            }
            if (p->keep_rankings) {
                json_t *ranked = json_array();
                for (size_t i = 0; i < n && i < depth; i++)
                    json_array_append_new(ranked, json_integer(res[i].chunk_id));
                if (!acc->rankings)
                    acc->rankings = json_array();
                while (json_array_size(acc->rankings) < qi)
                    json_array_append_new(acc->rankings, json_array());
                json_array_append_new(acc->rankings, ranked);
            }
            free(units);
            free(ids);
            free(credited);
            store_results_free(res, n);
        }
        add_to(&acc->sums[0], &one);
        if (q->kind >= 0)
            add_to(&acc->sums[q->kind + 1], &one);
    }
    return 0;
}

int eval_missing_names(store *s, const char *collection, const eval_set *set,
                       size_t *n_missing, lode_error *err)
{
    *n_missing = 0;
    for (size_t i = 0; i < set->n; i++)
        for (size_t r = 0; r < set->queries[i].n_relevant; r++) {
            const eval_rel *rel = &set->queries[i].relevant[r];
            if (rel->kind != EVAL_REL_NAME)
                continue;
            int64_t id;
            int rc = store_find_document(s, collection, rel->name, NULL, &id, NULL, err);
            if (rc == LODE_ENOTFOUND)
                rc = store_find_document(s, collection, NULL, rel->name, &id, NULL, err);
            if (rc == LODE_ENOTFOUND)
                ++*n_missing;
            else if (rc)
                return rc;
        }
    return 0;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

void eval_metrics_of(const eval_acc *acc, int kind, eval_metrics *out)
{
    memset(out, 0, sizeof *out);
    if (kind < -1 || (size_t)(kind + 1) >= acc->n_slots)
        return;
    *out = acc->sums[kind + 1];
    if (out->queries) {
        out->recall /= (double)out->queries;
        out->mrr /= (double)out->queries;
        out->ndcg /= (double)out->queries;
    }
    if (out->with_passage)
        out->passage /= (double)out->with_passage;
    double *t = malloc((acc->n_queries ? acc->n_queries : 1) * sizeof *t);
    size_t n = 0;
    for (size_t i = 0; t && i < acc->n_queries; i++)
        if (acc->ms[i] >= 0 && (kind < 0 || acc->kind[i] == kind))
            t[n++] = acc->ms[i];
    if (n) {
        qsort(t, n, sizeof *t, cmp_double);
        out->p50_ms = t[(n - 1) / 2];
        out->p99_ms = t[(size_t)ceil(0.99 * (double)n) - 1];
    }
    free(t);
}

static json_t *metrics_json(const eval_metrics *m, size_t k)
{
    char rk[32], pk[32];
    snprintf(rk, sizeof rk, "recall@%zu", k);
    snprintf(pk, sizeof pk, "passage@%zu", k);
    json_t *o = json_pack("{s:f,s:f,s:f,s:I,s:I,s:{s:f,s:f}}", rk, m->recall, "mrr",
                          m->mrr, "ndcg@10", m->ndcg, "queries", (json_int_t)m->queries,
                          "skipped", (json_int_t)m->skipped, "search_ms", "p50",
                          m->p50_ms, "p99", m->p99_ms);
    if (o && m->with_passage)
        json_object_set_new(o, pk, json_real(m->passage));
    return o;
}

json_t *eval_report_json(const eval_acc *acc, const eval_set *set,
                         const eval_config *cfg, size_t k)
{
    eval_metrics m;
    eval_metrics_of(acc, -1, &m);
    json_t *o = metrics_json(&m, k);
    if (!o)
        return NULL;
    char name[64];
    eval_config_name(cfg, name, sizeof name);
    json_object_set_new(o, "config", json_string(name));
    json_object_set_new(o, "mode", json_string(store_mode_name(cfg->mode)));
    if (cfg->mode == STORE_MODE_HYBRID)
        json_object_set_new(o, "fusion", json_string(store_fusion_name(cfg->fusion)));
    if (cfg->mode == STORE_MODE_HYBRID && cfg->fusion == STORE_FUSION_CONVEX)
        json_object_set_new(o, "alpha", json_real(cfg->alpha));
    if (set->n_kinds) {
        json_t *by = json_object();
        for (size_t i = 0; i < set->n_kinds; i++) {
            eval_metrics_of(acc, (int)i, &m);
            json_object_set_new(by, set->kinds[i], metrics_json(&m, k));
        }
        json_object_set_new(o, "by_kind", by);
    }
    if (acc->rankings) {
        json_t *r = json_deep_copy(acc->rankings);
        while (json_array_size(r) < acc->n_queries)
            json_array_append_new(r, json_array());
        json_object_set_new(o, "rankings", r);
    }
    return o;
}
