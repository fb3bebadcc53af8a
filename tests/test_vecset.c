/* test_vecset.c - the in-memory vector array and exact top-k.
 *
 * Every SIMD kernel against its scalar reference; top-k against a brute
 * force sort for every metric, with and without int8 rows, a row bitmap and
 * a minimum score; swap-removal.  With LODE_BENCH=1 it also times 100k x 384
 * searches (f32 and int8) and prints the latency. */
#include "test.h"
#include "vecset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rng() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

static void random_vector(float *v, int dim)
{
    for (int i = 0; i < dim; i++)
        v[i] = frand();
}

static void test_kernels(void)
{
    for (int n = 0; n < 200; n += 7) {
        float a[200], b[200];
        int8_t qa[200], qb[200];
        random_vector(a, n);
        random_vector(b, n);
        for (int i = 0; i < n; i++) {
            qa[i] = (int8_t)(rng() % 255 - 127);
            qb[i] = (int8_t)(rng() % 255 - 127);
        }
        float ref = vecset_dot_f32_ref(a, b, n), got = vecset_dot_f32(a, b, n);
        /* Different summation order only: bound by n * eps * sum|a_i b_i|. */
        CHECK(fabsf(ref - got) <= 1e-5f * (n + 1), "n=%d ref %g got %g", n, ref, got);
        CHECK(vecset_dot_i8_ref(qa, qb, n) == vecset_dot_i8(qa, qb, n), "int8 dot n=%d", n);
    }
    /* The search scan's block kernel, exact, at dimensions around the
     * 64-byte vector and with row counts around its 4-row step. */
    static const int dims[] = { 1, 37, 63, 64, 65, 128, 384, 1000, 1024, 1100 };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        int dim = dims[d];
        int8_t *rows = malloc((size_t)dim * 9), *q = malloc((size_t)dim);
        float out[9];
        for (int i = 0; i < dim; i++)
            q[i] = (int8_t)(rng() % 255 - 127);
        for (int i = 0; i < dim * 9; i++)
            rows[i] = (int8_t)(rng() % 255 - 127);
        for (int i = 0; i < dim; i += 5)
            rows[i] = q[i] = -127;   /* extremes */
        for (size_t n = 1; n <= 9; n++) {
            vecset_block_i8(rows, dim, n, q, out);
            for (size_t r = 0; r < n; r++)
                CHECK(out[r] == (float)vecset_dot_i8_ref(rows + r * dim, q, dim),
                      "int8 block dim=%d n=%zu row %zu: %g vs %d", dim, n, r, out[r],
                      vecset_dot_i8_ref(rows + r * dim, q, dim));
        }
        free(rows);
        free(q);
    }
    /* Extremes of int8 must not overflow the int16 products. */
    int8_t lo[384], hi[384];
    memset(lo, -127, sizeof lo);
    memset(hi, 127, sizeof hi);
    CHECK(vecset_dot_i8(lo, lo, 384) == 127 * 127 * 384, "extreme int8");
    CHECK(vecset_dot_i8(lo, hi, 384) == -127 * 127 * 384, "extreme int8 mixed");

    float v[5] = {3, 0, 4, 0, 0};
    vecset_normalize(v, 5);
    CHECK(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[2] - 0.8f) < 1e-6f, "normalize");
    int8_t q[5];
    float s = vecset_quantize(v, 5, q);
    CHECK(q[2] == 127 && q[0] == 95 && fabsf(s - 0.8f / 127) < 1e-7f, "quantize");
    printf("vecset isa: %s\n", vecset_isa());
}

typedef struct ref_hit { int64_t id; double score; } ref_hit;
static int cmp_ref(const void *pa, const void *pb)
{
    const ref_hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static double ref_score(const float *q, const float *v, int dim, vecset_metric m)
{
    double dot = 0, qq = 0, vv = 0, l2 = 0;
    for (int i = 0; i < dim; i++) {
        dot += (double)q[i] * v[i];
        qq += (double)q[i] * q[i];
        vv += (double)v[i] * v[i];
        l2 += ((double)q[i] - v[i]) * ((double)q[i] - v[i]);
    }
    if (m == VECSET_COSINE)
        return qq > 0 && vv > 0 ? dot / sqrt(qq) / sqrt(vv) : 0;
    if (m == VECSET_DOT)
        return dot;
    return -l2;
}

/* Brute force over `data` (n rows) and compare with vecset_search. */
static void check_topk(vecset_kind kind, vecset_metric metric)
{
    const int dim = 37, n = 700;
    float *data = malloc(sizeof(float) * dim * n);
    vecset vs;
    vecset_init(&vs, dim, kind, metric);
    for (int i = 0; i < n; i++) {
        random_vector(data + i * dim, dim);
        if (metric == VECSET_COSINE)
            vecset_normalize(data + i * dim, dim);
        CHECK(vecset_append(&vs, 1000 + i, i / 3, data + i * dim, NULL) == 0, "append");
    }
    uint64_t allow[(700 + 63) / 64];
    for (size_t w = 0; w < sizeof allow / sizeof allow[0]; w++)
        allow[w] = rng();
    ref_hit *ref = malloc(sizeof *ref * n);
    float tol = kind == VECSET_F32 ? 1e-4f : 0.05f * (metric == VECSET_COSINE ? 1 : dim / 3.0f);
    for (int trial = 0; trial < 20; trial++) {
        float q[37];
        random_vector(q, dim);
        int use_allow = trial % 2, k = 1 + trial % 13;
        size_t nref = 0;
        for (int i = 0; i < n; i++) {
            if (use_allow && !(allow[i / 64] >> (i % 64) & 1))
                continue;
            ref[nref].id = 1000 + i;
            ref[nref++].score = ref_score(q, data + i * dim, dim, metric);
        }
        qsort(ref, nref, sizeof *ref, cmp_ref);
        vecset_hit hits[13];
        size_t nh;
        CHECK(vecset_search(&vs, q, k, use_allow ? allow : NULL, -INFINITY, hits, &nh, NULL) == 0, "search");
        CHECK(nh == (size_t)k, "k=%d got %zu", k, nh);
        for (size_t i = 0; i < nh; i++) {
            /* The i-th hit scores like the i-th reference (within tolerance);
             * for f32 the ids match too unless scores tie within tolerance. */
            CHECK(fabs(hits[i].score - ref[i].score) <= tol, "kind %d metric %d rank %zu: %g vs %g",
                  kind, metric, i, hits[i].score, ref[i].score);
            if (kind == VECSET_F32 && (i + 1 >= nref || ref[i].score - ref[i + 1].score > 1e-4) &&
                (i == 0 || ref[i - 1].score - ref[i].score > 1e-4))
                CHECK(hits[i].id == ref[i].id, "rank %zu id %lld vs %lld", i,
                      (long long)hits[i].id, (long long)ref[i].id);
            if (use_allow) {
                int row = (int)(hits[i].id - 1000);
                CHECK(allow[row / 64] >> (row % 64) & 1, "hit outside the bitmap");
            }
            CHECK(hits[i].group == (hits[i].id - 1000) / 3, "group");
            if (i)
                CHECK(hits[i - 1].score >= hits[i].score, "order");
        }
        /* Minimum score: exactly the hits at or above it. */
        float min = (float)((ref[k / 2].score + ref[k / 2 + 1].score) / 2);
        CHECK(vecset_search(&vs, q, k, use_allow ? allow : NULL, min, hits, &nh, NULL) == 0,
              "search min");
        if (kind == VECSET_F32 && ref[k / 2].score - ref[k / 2 + 1].score > 1e-4)
            CHECK(nh == (size_t)(k / 2 + 1), "min score kept %zu, want %d", nh, k / 2 + 1);
        for (size_t i = 0; i < nh; i++)
            CHECK(hits[i].score >= min, "below min score");
    }
    free(ref);
    free(data);
    vecset_free(&vs);
}

static void test_remove(void)
{
    const int dim = 8;
    vecset vs;
    vecset_init(&vs, dim, VECSET_I8, VECSET_DOT);
    CHECK(vecset_reserve(&vs, 100, NULL) == 0, "reserve");
    float v[8];
    for (int i = 0; i < 100; i++) {
        for (int j = 0; j < dim; j++)
            v[j] = (float)(i + 1) / 100.0f;
        vecset_append(&vs, i, i % 10, v, NULL);
    }
    int64_t groups[] = {0, 3, 9, 42};
    CHECK(vecset_remove_groups(&vs, groups, 4) == 30, "removed %zu", vs.count);
    CHECK(vs.count == 70, "count");
    int seen[100] = {0};
    for (size_t r = 0; r < vs.count; r++) {
        int64_t id = vs.ids[r];
        CHECK(id % 10 != 0 && id % 10 != 3 && id % 10 != 9, "row %zu kept id %lld", r, (long long)id);
        seen[id]++;
        /* The row's data moved with its id. */
        float expect = (float)(id + 1) / 100.0f;
        CHECK(fabsf(vs.i8[r * dim] * vs.scale[r] - expect) < 1e-6f, "data moved with id");
    }
    int total = 0;
    for (int i = 0; i < 100; i++)
        total += seen[i];
    CHECK(total == 70, "each kept row once");
    int64_t all[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    vecset_remove_groups(&vs, all, 10);
    CHECK(vs.count == 0, "all removed");
    vecset_hit h[3];
    size_t nh = 9;
    CHECK(vecset_search(&vs, v, 3, NULL, -INFINITY, h, &nh, NULL) == 0 && nh == 0, "empty search");
    vecset_free(&vs);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void bench(vecset_kind kind)
{
    const int dim = 384, n = 100000, queries = 50;
    vecset vs;
    vecset_init(&vs, dim, kind, VECSET_COSINE);
    CHECK(vecset_reserve(&vs, n, NULL) == 0, "reserve");
    float v[384];
    for (int i = 0; i < n; i++) {
        random_vector(v, dim);
        vecset_normalize(v, dim);
        vecset_append(&vs, i, i, v, NULL);
    }
    vecset_hit hits[10];
    size_t nh;
    double best = 1e9, total = 0;
    for (int qi = 0; qi < queries; qi++) {
        random_vector(v, dim);
        double t0 = now_ms();
        vecset_search(&vs, v, 10, NULL, -INFINITY, hits, &nh, NULL);
        double dt = now_ms() - t0;
        total += dt;
        if (dt < best)
            best = dt;
    }
    printf("bench %s 100k x 384 top-10: mean %.2f ms, best %.2f ms per query (%s)\n",
           kind == VECSET_F32 ? "f32" : "int8", total / queries, best, vecset_isa());
    vecset_free(&vs);
}

int main(void)
{
    test_kernels();
    for (int k = 0; k < 2; k++)
        for (int m = 0; m < 3; m++)
            check_topk((vecset_kind)k, (vecset_metric)m);
    test_remove();
    if (getenv("LODE_BENCH")) {
        bench(VECSET_F32);
        bench(VECSET_I8);
    }
    TEST_MAIN_END();
}
