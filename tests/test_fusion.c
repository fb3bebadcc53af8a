/* test_fusion.c - reciprocal-rank and convex fusion (fusion.c): exact
 * scores on small lists, ties, items in one list only, the weights'
 * extremes, and a random comparison with a direct computation. */

#include "test.h"
#include "fusion.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static const fusion_hit *find(const fusion_hit *h, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].id == id)
            return &h[i];
    return NULL;
}

static void test_rrf(void)
{
    int64_t a_ids[] = {10, 20, 30}, b_ids[] = {30, 40};
    float a_sc[] = {0.9f, 0.8f, 0.7f}, b_sc[] = {12.0f, 3.0f};
    fusion_list lists[2] = {{a_ids, a_sc, 3}, {b_ids, b_sc, 2}};
    double w[2] = {1, 1};
    fusion_hit *h;
    size_t n;
    CHECK(fusion_fuse(FUSION_RRF, lists, 2, w, 60, &h, &n, NULL) == 0 && n == 4, "rrf %zu", n);
    /* 30: 1/63 + 1/61 beats 10: 1/61 */
    CHECK(h[0].id == 30 && fabs(h[0].score - (1.0 / 63 + 1.0 / 61)) < 1e-12, "30 first");
    CHECK(h[0].rank[0] == 3 && h[0].rank[1] == 1 && h[0].list_score[1] == 12.0f, "30's ranks");
    CHECK(h[1].id == 10 && h[1].rank[1] == 0, "then 10, vector only");
    /* 20 (1/62, first list) ties 40 (1/62, second list): the first list wins */
    CHECK(h[2].id == 20 && h[3].id == 40 && h[2].score == h[3].score, "tie order");
    free(h);

    /* weights scale each list's share */
    double w2[2] = {1, 3};
    CHECK(fusion_fuse(FUSION_RRF, lists, 2, w2, 60, &h, &n, NULL) == 0, "weighted");
    CHECK(h[0].id == 30 && h[1].id == 40, "weighted order %lld %lld", (long long)h[0].id,
          (long long)h[1].id);
    free(h);
}

static void test_convex(void)
{
    int64_t a_ids[] = {1, 2, 3}, b_ids[] = {3, 4, 1};
    float a_sc[] = {0.9f, 0.5f, 0.1f}, b_sc[] = {10.0f, 6.0f, 2.0f};
    fusion_list lists[2] = {{a_ids, a_sc, 3}, {b_ids, b_sc, 3}};
    fusion_hit *h;
    size_t n;
    double w[2] = {0.25, 0.75};
    CHECK(fusion_fuse(FUSION_CONVEX, lists, 2, w, 60, &h, &n, NULL) == 0 && n == 4, "convex");
    /* normalised: a = 1, .5, 0 (ids 1 2 3); b = 1, .5, 0 (ids 3 4 1) */
    const fusion_hit *h1 = find(h, n, 1), *h2 = find(h, n, 2), *h3 = find(h, n, 3),
                     *h4 = find(h, n, 4);
    CHECK(h1 && fabs(h1->score - 0.25) < 1e-6, "1: %g", h1 ? h1->score : -1);
    CHECK(h2 && fabs(h2->score - 0.125) < 1e-6, "2: %g", h2 ? h2->score : -1);
    CHECK(h3 && fabs(h3->score - 0.75) < 1e-6, "3: %g", h3 ? h3->score : -1);
    CHECK(h4 && fabs(h4->score - 0.375) < 1e-6, "4: %g", h4 ? h4->score : -1);
    CHECK(h[0].id == 3 && h[1].id == 4 && h[2].id == 1 && h[3].id == 2, "convex order");
    free(h);

    /* alpha = 1: the first list's order, the rest after it */
    double only_a[2] = {1, 0};
    CHECK(fusion_fuse(FUSION_CONVEX, lists, 2, only_a, 60, &h, &n, NULL) == 0, "alpha 1");
    CHECK(h[0].id == 1 && h[1].id == 2 && h[2].id == 3 && h[3].id == 4, "alpha 1 order");
    free(h);

    /* equal scores normalise to 1, not a division by zero */
    float flat[] = {5, 5};
    int64_t flat_ids[] = {7, 8};
    fusion_list one = {flat_ids, flat, 2};
    double w1 = 1;
    CHECK(fusion_fuse(FUSION_CONVEX, &one, 1, &w1, 60, &h, &n, NULL) == 0 && n == 2 &&
          h[0].score == 1.0 && h[1].score == 1.0 && h[0].id == 7, "flat list");
    free(h);

    /* empty lists, bad arguments */
    fusion_list none[2] = {{NULL, NULL, 0}, {NULL, NULL, 0}};
    CHECK(fusion_fuse(FUSION_RRF, none, 2, w, 60, &h, &n, NULL) == 0 && n == 0, "empty");
    free(h);
    double bad[2] = {-1, 1};
    CHECK(fusion_fuse(FUSION_RRF, lists, 2, bad, 60, &h, &n, NULL) == LODE_EINVAL, "negative weight");
    CHECK(fusion_fuse(FUSION_RRF, lists, 3, w, 60, &h, &n, NULL) == LODE_EINVAL, "three lists");
}

/* Random lists against the definition computed directly. */
static void test_random(void)
{
    uint64_t state = 99;
    int bad = 0;
    for (int t = 0; t < 300; t++) {
        int64_t ids[2][40];
        float sc[2][40];
        size_t len[2];
        for (int l = 0; l < 2; l++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            len[l] = (size_t)(state >> 33) % 40;
            /* distinct ids from 0..59, scores decreasing */
            int used[60] = {0};
            float score = 100;
            for (size_t i = 0; i < len[l]; i++) {
                int id;
                do {
                    state = state * 6364136223846793005ull + 1442695040888963407ull;
                    id = (int)((state >> 33) % 60);
                } while (used[id]);
                used[id] = 1;
                ids[l][i] = id;
                score -= (float)((state >> 40) % 3);   /* ties too */
                sc[l][i] = score;
            }
        }
        fusion_list lists[2] = {{ids[0], sc[0], len[0]}, {ids[1], sc[1], len[1]}};
        double alpha = (double)(t % 11) / 10, w[2] = {alpha, 1 - alpha};
        fusion_method m = t % 2 ? FUSION_CONVEX : FUSION_RRF;
        fusion_hit *h;
        size_t n;
        if (fusion_fuse(m, lists, 2, w, 60, &h, &n, NULL)) {
            bad++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            double want = 0;
            for (int l = 0; l < 2; l++) {
                float lo = sc[l][len[l] ? len[l] - 1 : 0], hi = sc[l][0];
                for (size_t j = 0; j < len[l]; j++)
                    if (ids[l][j] == h[i].id) {
                        want += m == FUSION_RRF ? w[l] / (60.0 + (double)j + 1)
                              : w[l] * (hi > lo ? (sc[l][j] - lo) / (hi - lo) : 1.0);
                        bad += h[i].rank[l] != (int)j + 1;
                    }
            }
            bad += fabs(h[i].score - want) > 1e-6;   /* float scores */
            bad += i > 0 && h[i].score > h[i - 1].score;
        }
        free(h);
    }
    CHECK(bad == 0, "%d disagreements with the definition", bad);
}

int main(void)
{
    test_rrf();
    test_convex();
    test_random();
    TEST_MAIN_END();
}
