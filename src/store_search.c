/* store_search.c - store_search in its three modes, vector, keyword and
 * hybrid (see store.h for the contract).
 *
 * A search runs in three steps:
 *   1. candidates: the "where" filter becomes one bitmap over the
 *      collection's in-memory rows (store_filter.c), which both retrievers
 *      honour - the vector scan skips rows outside it, the keyword side
 *      drops chunks outside it while it walks its ranking - so every mode
 *      returns k results whenever k chunks qualify;
 *   2. ranking: the k nearest vectors, or the k best BM25 rows
 *      (store_keyword.c), or, in hybrid mode, `candidates` of each fused
 *      into one list (fusion.h);
 *   3. rows: only the winners' text and document fields are read from
 *      SQLite; a winner deleted by another process in between is skipped
 *      rather than reported as an error.
 * When the query has a vector, the keyword candidates get their
 * similarity too (vecset_score_ids: the scan's kernel on their rows): every
 * result has one, min_score is a floor on it in every mode, and the chat
 * decides from it whether the documents cover a question, whatever the
 * mode.
 */
#include "store_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"

static const char *const mode_names[] = {"vector", "keyword", "hybrid"};
static const char *const fusion_names[] = {"rrf", "convex"};

/* The index of name in names[0..n), or -1. */
static int find_name(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

const char *store_mode_name(store_mode m)
{
    return mode_names[(unsigned)m <= STORE_MODE_HYBRID ? m : 0];
}

const char *store_fusion_name(store_fusion f)
{
    return fusion_names[(unsigned)f <= STORE_FUSION_CONVEX ? f : 0];
}

int store_mode_parse(const char *name, store_mode *out)
{
    int i = find_name(mode_names, 3, name);
    *out = i >= 0 ? (store_mode)i : *out;
    return i < 0 ? LODE_EINVAL : 0;
}

int store_fusion_parse(const char *name, store_fusion *out)
{
    int i = find_name(fusion_names, 2, name);
    *out = i >= 0 ? (store_fusion)i : *out;
    return i < 0 ? LODE_EINVAL : 0;
}

void store_results_free(store_result *results, size_t n)
{
    if (!results)
        return;
    for (size_t i = 0; i < n; i++) {
        free(results[i].text);
        free(results[i].heading);
        free(results[i].source);
        free(results[i].title);
        free(results[i].external_id);
    }
    free(results);
}

/* One winner of step 2. */
typedef struct ranked {
    int64_t id;
    float score;
    int vector_rank, keyword_rank;
    float keyword_score;
    bool has_similarity;
    float similarity;
} ranked;

static int check_query(store *s, const store_query *q, coll **c, lode_error *err)
{
    if ((unsigned)q->mode > STORE_MODE_HYBRID)
        return lode_error_set(err, LODE_EINVAL, "unknown search mode %d", (int)q->mode);
    if ((unsigned)q->fusion > STORE_FUSION_CONVEX)
        return lode_error_set(err, LODE_EINVAL, "unknown fusion %d", (int)q->fusion);
    if (q->mode == STORE_MODE_HYBRID && q->fusion == STORE_FUSION_CONVEX &&
        !(q->alpha >= 0.0f && q->alpha <= 1.0f))
        return lode_error_set(err, LODE_EINVAL, "alpha must be a number from 0 to 1");
    int rc = store__need_coll(s, q->collection, c, err);
    if (rc)
        return rc;
    const char *mode = store_mode_name(q->mode);
    if (q->mode != STORE_MODE_KEYWORD && !q->vector)
        return lode_error_set(err, LODE_EINVAL, "a %s search needs a query vector", mode);
    if (q->vector) {
        if ((rc = store__check_model(*c, q->model_id, q->dimension, "search", err)))
            return rc;
        for (int i = 0; i < q->dimension; i++)
            if (!isfinite(q->vector[i]))
                return lode_error_set(err, LODE_EINVAL, "the query vector holds a NaN "
                                      "or infinity at %d", i);
    }
    if (q->mode != STORE_MODE_VECTOR) {
        if (!q->text)
            return lode_error_set(err, LODE_EINVAL, "a %s search needs the query text", mode);
        if ((rc = store__need_keyword_index(s, err)))
            return rc;
    }
    return 0;
}

/* Step 2 for hybrid mode: fuse the two candidate lists, keep k. */
static int fuse(const store_query *q, const vecset_hit *vh, size_t nv,
                const store__keyword_hit *kh, const float *ksim, size_t nk,
                ranked *out, size_t *n_out, lode_error *err)
{
    *n_out = 0;
    int64_t *ids = malloc((nv + nk + 1) * sizeof *ids);
    float *scores = malloc((nv + nk + 1) * sizeof *scores);
    if (!ids || !scores) {
        free(ids);
        free(scores);
        return lode_error_set(err, LODE_ENOMEM, "out of memory fusing results");
    }
    for (size_t i = 0; i < nv; i++) {
        ids[i] = vh[i].id;
        scores[i] = vh[i].score;
    }
    for (size_t i = 0; i < nk; i++) {
        ids[nv + i] = kh[i].id;
        scores[nv + i] = kh[i].fused;
    }
    fusion_list lists[2] = {{ids, scores, nv}, {ids + nv, scores + nv, nk}};
    bool convex = q->fusion == STORE_FUSION_CONVEX;
    double weights[2] = {convex ? q->alpha : 1.0, convex ? 1.0 - q->alpha : 1.0};
    fusion_hit *hits;
    size_t n_hits;
    int rc = fusion_fuse(convex ? FUSION_CONVEX : FUSION_RRF, lists, 2, weights,
                         FUSION_RRF_K, &hits, &n_hits, err);
    if (!rc) {
        size_t n = 0;
        for (size_t i = 0; i < n_hits && n < q->k; i++) {
            ranked *r = &out[n++];
            r->id = hits[i].id;
            r->score = (float)hits[i].score;
            r->vector_rank = hits[i].rank[0];
            r->keyword_rank = hits[i].rank[1];
            /* the true BM25, not the lifted score fusion was given */
            r->keyword_score = r->keyword_rank ? kh[r->keyword_rank - 1].bm25 : 0;
            r->has_similarity = true;
            r->similarity = r->vector_rank ? hits[i].list_score[0]
                                           : ksim[r->keyword_rank - 1];
        }
        *n_out = n;
        free(hits);
    }
    free(ids);
    free(scores);
    return rc;
}

/* Step 3: the winners' rows. */
static int read_rows(store *s, const ranked *rk, size_t n_rk, store_result *res,
                     size_t *n_out, lode_error *err)
{
    *n_out = 0;
    sqlite3_stmt *st;
    int rc = store__prepare_cached(s, store__has_pages(s)
                               ? "SELECT c.ordinal, c.char_start, c.char_end, c.text, "
                                 "c.heading, d.id, d.source, d.title, d.external_id, "
                                 "c.page_start, c.page_end "
                                 "FROM chunks c JOIN documents d ON d.id = c.document_id "
                                 "WHERE c.id = ?"
                               : "SELECT c.ordinal, c.char_start, c.char_end, c.text, "
                                 "c.heading, d.id, d.source, d.title, d.external_id, "
                                 "NULL, NULL "
                                 "FROM chunks c JOIN documents d ON d.id = c.document_id "
                                 "WHERE c.id = ?", &st, err);
    if (rc)
        return rc;
    size_t n = 0;
    for (size_t i = 0; i < n_rk; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, rk[i].id);
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            continue;   /* deleted by another process since we loaded */
        if (src != SQLITE_ROW) {
            rc = store__sql_error(s, src, "reading search results", err);
            break;
        }
        store_result *r = &res[n++];
        r->score = rk[i].score;
        r->chunk_id = rk[i].id;
        r->vector_rank = rk[i].vector_rank;
        r->keyword_rank = rk[i].keyword_rank;
        r->keyword_score = rk[i].keyword_score;
        r->has_similarity = rk[i].has_similarity;
        r->similarity = rk[i].similarity;
        r->ordinal = sqlite3_column_int(st, 0);
        r->char_start = sqlite3_column_int64(st, 1);
        r->char_end = sqlite3_column_int64(st, 2);
        r->document_id = sqlite3_column_int64(st, 5);
        r->page_start = sqlite3_column_int(st, 9);
        r->page_end = sqlite3_column_int(st, 10);
        if (store__col_dup(st, 3, &r->text) || store__col_dup(st, 4, &r->heading) ||
            store__col_dup(st, 6, &r->source) || store__col_dup(st, 7, &r->title) ||
            store__col_dup(st, 8, &r->external_id) || (!r->text && !(r->text = strdup("")))) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading search results");
            break;
        }
    }
    store__release(s, st);
    *n_out = n;
    return rc;
}

int store_search(store *s, const store_query *q, store_result **results,
                 size_t *n_results, lode_error *err)
{
    *results = NULL;
    *n_results = 0;
    coll *c;
    int rc = check_query(s, q, &c, err);
    if (rc || q->k == 0)
        return rc;

    filter *f = NULL;
    uint64_t *allow = NULL;
    keyword_query kq = {0};
    vecset_hit *vh = NULL;
    store__keyword_hit *kh = NULL;
    float *ksim = NULL;
    ranked *rk = NULL;
    store_result *res = NULL;
    size_t nv = 0, nk = 0, n_rk = 0, n = 0;
    if ((rc = filter_parse(q->where_json, &f, err)))
        return rc;
    if (!filter_is_empty(f) && (rc = store__filter_bitmap(s, c, f, &allow, err)))
        goto out;
    if (q->mode != STORE_MODE_VECTOR && (rc = keyword_parse(q->text, &kq, err)))
        goto out;

    size_t k = q->k, depth = k;
    if (q->mode == STORE_MODE_HYBRID) {
        depth = q->candidates ? q->candidates : STORE_HYBRID_CANDIDATES;
        if (depth < k)
            depth = k;
    }
    size_t vdepth = depth < c->vs.count ? depth : c->vs.count;
    vh = malloc((vdepth + 1) * sizeof *vh);
    kh = malloc((depth + 1) * sizeof *kh);
    rk = calloc(k, sizeof *rk);
    if (!vh || !kh || !rk) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
        goto out;
    }
    /* min_score is a floor on the similarity whenever there is a vector
     * (so it means the same in every mode), else on BM25. */
    float min_score = q->use_min_score ? q->min_score : -INFINITY;
    if (q->mode != STORE_MODE_KEYWORD &&
        (rc = vecset_search(&c->vs, q->vector, vdepth, allow, min_score, vh, &nv, err)))
        goto out;
    if (q->mode != STORE_MODE_VECTOR &&
        (rc = store__keyword_search(s, c, &kq, allow, depth, kh, &nk, err)))
        goto out;
    if (q->mode != STORE_MODE_VECTOR && q->vector) {
        /* the keyword candidates' similarity; below the floor they go */
        int64_t *ids = malloc((nk + 1) * sizeof *ids);
        ksim = malloc((nk + 1) * sizeof *ksim);
        if (!ids || !ksim) {
            free(ids);
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
            goto out;
        }
        for (size_t i = 0; i < nk; i++)
            ids[i] = kh[i].id;
        rc = vecset_score_ids(&c->vs, q->vector, ids, nk, ksim, err);
        free(ids);
        if (rc)
            goto out;
        size_t kept = 0;
        for (size_t i = 0; i < nk; i++)
            if (ksim[i] >= min_score) {
                kh[kept] = kh[i];
                ksim[kept++] = ksim[i];
            }
        nk = kept;
    } else if (q->mode == STORE_MODE_KEYWORD) {
        size_t kept = 0;
        for (size_t i = 0; i < nk; i++)
            if (kh[i].fused >= min_score)
                kh[kept++] = kh[i];
        nk = kept;
    }

    if (q->mode == STORE_MODE_VECTOR) {
        for (size_t i = 0; i < nv; i++)
            rk[n_rk++] = (ranked){vh[i].id, vh[i].score, (int)i + 1, 0, 0, true, vh[i].score};
    } else if (q->mode == STORE_MODE_KEYWORD) {
        for (size_t i = 0; i < nk; i++)
            rk[n_rk++] = (ranked){kh[i].id, kh[i].fused, 0, (int)i + 1, kh[i].bm25,
                                  ksim != NULL, ksim ? ksim[i] : 0};
    } else if ((rc = fuse(q, vh, nv, kh, ksim, nk, rk, &n_rk, err))) {
        goto out;
    }

    res = calloc(n_rk + 1, sizeof *res);
    if (!res) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
        goto out;
    }
    rc = read_rows(s, rk, n_rk, res, &n, err);
out:
    filter_free(f);
    free(allow);
    keyword_query_free(&kq);
    free(vh);
    free(kh);
    free(ksim);
    free(rk);
    if (rc) {
        store_results_free(res, n);
        return rc;
    }
    *results = res;
    *n_results = n;
    return 0;
}
