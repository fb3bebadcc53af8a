/* fusion.c - reciprocal-rank and convex fusion of ranked lists (see
 * fusion.h).
 *
 * The lists are short (a few hundred candidates at most), so items are
 * merged by sorting one array of all of them by id and folding runs of
 * the same id, then sorted again by fused score: O(n log n) with no hash
 * table and no allocation beyond the output.
 */
#include "fusion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int by_id(const void *pa, const void *pb)
{
    const fusion_hit *a = pa, *b = pb;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* A rank of 0 (absent) sorts after every real rank. */
static int rank_order(int a, int b)
{
    unsigned ua = (unsigned)a - 1, ub = (unsigned)b - 1;
    return ua < ub ? -1 : ua > ub;
}

static int by_score(const void *pa, const void *pb)
{
    const fusion_hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    for (int i = 0; i < FUSION_MAX_LISTS; i++) {
        int r = rank_order(a->rank[i], b->rank[i]);
        if (r)
            return r;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

int fusion_fuse(fusion_method method, const fusion_list *lists, size_t n_lists,
                const double *weights, int rrf_k, fusion_hit **out, size_t *n_out,
                lode_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (n_lists < 1 || n_lists > FUSION_MAX_LISTS || (method != FUSION_RRF &&
                                                      method != FUSION_CONVEX))
        return lode_error_set(err, LODE_EINVAL, "fusion: bad method or %zu lists", n_lists);
    size_t total = 0;
    for (size_t l = 0; l < n_lists; l++) {
        if (!(weights[l] >= 0) || !isfinite(weights[l]))
            return lode_error_set(err, LODE_EINVAL, "fusion: weight %g is not a "
                                  "finite number >= 0", weights[l]);
        total += lists[l].n;
    }
    fusion_hit *all = calloc(total ? total : 1, sizeof *all);
    if (!all)
        return lode_error_set(err, LODE_ENOMEM, "out of memory fusing results");

    /* Each list's contribution per item, then one entry per item. */
    size_t n = 0;
    for (size_t l = 0; l < n_lists; l++) {
        const fusion_list *li = &lists[l];
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < li->n; i++) {
            lo = fminf(lo, li->scores[i]);
            hi = fmaxf(hi, li->scores[i]);
        }
        for (size_t i = 0; i < li->n; i++) {
            fusion_hit *h = &all[n++];
            h->id = li->ids[i];
            h->rank[l] = (int)i + 1;
            h->list_score[l] = li->scores[i];
            if (method == FUSION_RRF)
                h->score = weights[l] / (double)(rrf_k + (int)i + 1);
            else
                h->score = weights[l] * (hi > lo ? (double)(li->scores[i] - lo) / (hi - lo) : 1.0);
        }
    }
    qsort(all, n, sizeof *all, by_id);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && all[m - 1].id == all[i].id) {
            fusion_hit *into = &all[m - 1];
            into->score += all[i].score;
            for (int l = 0; l < FUSION_MAX_LISTS; l++)
                if (all[i].rank[l] && !into->rank[l]) {
                    into->rank[l] = all[i].rank[l];
                    into->list_score[l] = all[i].list_score[l];
                }
        } else {
            all[m++] = all[i];
        }
    }
    qsort(all, m, sizeof *all, by_score);
    *out = all;
    *n_out = m;
    return 0;
}
