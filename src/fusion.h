/* fusion.h - merging ranked lists of results into one (hybrid search).
 *
 * Two methods, both over the candidates each retriever returned:
 *
 *   FUSION_RRF     reciprocal-rank fusion (Cormack, Clarke and Buettcher,
 *                  SIGIR 2009): score = sum over lists of
 *                  weight / (rrf_k + rank), rank from 1.  Uses ranks only,
 *                  so the lists' score scales do not matter; rrf_k = 60 is
 *                  the paper's constant.
 *   FUSION_CONVEX  a convex combination of normalised scores: each list's
 *                  scores are min-max normalised over that list to 0..1
 *                  (all 1 when they are all equal), an item missing from a
 *                  list counts 0 there, and score = sum of weight * norm.
 *                  With weights (alpha, 1 - alpha), alpha = 1 is the first
 *                  list alone.
 *
 * The result holds every item of every list once, best first; ties go to
 * the item ranked better in the first list, then in the second, then to
 * the lower id.  Each item keeps its rank (0 = absent) and score in every
 * list, so a caller can say which retriever found it.
 */
#ifndef LODE_FUSION_H
#define LODE_FUSION_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FUSION_MAX_LISTS 2
#define FUSION_RRF_K 60

typedef enum fusion_method { FUSION_RRF = 0, FUSION_CONVEX = 1 } fusion_method;

/* One retriever's candidates, best first; scores higher is better and not
 * increasing along the list. */
typedef struct fusion_list {
    const int64_t *ids;
    const float *scores;
    size_t n;
} fusion_list;

typedef struct fusion_hit {
    int64_t id;
    double score;                       /* fused; higher is better */
    int rank[FUSION_MAX_LISTS];         /* from 1; 0 = not in that list */
    float list_score[FUSION_MAX_LISTS]; /* its score there (when ranked) */
} fusion_hit;

/* Fuse n_lists (1..FUSION_MAX_LISTS) lists with the given weights (one
 * per list, >= 0).  *out (free()) gets the items, best first, *n_out
 * their number.  LODE_EINVAL for a bad argument, LODE_ENOMEM. */
int fusion_fuse(fusion_method method, const fusion_list *lists, size_t n_lists,
                const double *weights, int rrf_k, fusion_hit **out, size_t *n_out,
                lode_error *err);

#endif
