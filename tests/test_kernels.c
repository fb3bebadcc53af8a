/* test_kernels.c - every SIMD path of src/kernels*.c against the scalar
 * reference.
 *
 * Each path this CPU can run is forced in turn with kern_set_isa and
 * compared with the "scalar" path on random data, over all small shapes
 * with tails and the model's real shapes.  Tolerances:
 *   fp32 products:  |c - ref| <= 1e-5 * sum_p |a_p * b_p|  (both sides
 *                   round differently: ref sums in order, SIMD in lanes)
 *   q8_0 products:  bitwise equal (exact integer block sums, same float
 *                   operations in the same order on every path)
 *   gelu:           |y - ref| <= 3e-7 * max(1, |x|)  (the vector erf is
 *                   a rational fit with errors up to ~4 ulp near |x| = 4;
 *                   measured worst 2.54e-7)
 *   softmax:        |y - ref| <= 1e-6 * ref + 1e-9
 *   layernorm:      |y - ref| <= 1e-5 * (|ref| + 1)
 *   f16 <-> f32:    bitwise equal to F16C
 * and determinism: a row gives the same bits alone as in any batch, and
 * kern_linear_mt gives kern_linear's bits on 1..4 threads.
 */
#include "kernels.h"
#include "pool.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static const char *const simd_isas[] = { "avx2", "avx512", "avx512vnni",
                                          "amx" };
#define N_SIMD (int)(sizeof simd_isas / sizeof simd_isas[0])

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Uniform in [-1, 1). */
static float frand(void)
{
    return (float)next_u32() / 2147483648.0f - 1.0f;
}

static float *rand_floats(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static void use_isa(const char *name)
{
    int rc = kern_set_isa(name);
    CHECK(rc == 0, "kern_set_isa(%s) = %d", name, rc);
}

/* ---- fp32 products ----------------------------------------------------- */

/* max over elements of |c - ref| / (1e-5 * sum |a b|); <= 1 passes. */
static double nt_err(int m, int n, int k, const float *a, int lda,
                     const float *b, int ldb, const float *c,
                     const float *ref, int ldc)
{
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double mag = 0;
            for (int p = 0; p < k; p++)
                mag += fabs((double)a[(size_t)i * lda + p] *
                            b[(size_t)j * ldb + p]);
            double e = fabs((double)c[(size_t)i * ldc + j] -
                            ref[(size_t)i * ldc + j]) / (1e-5 * mag + 1e-30);
            if (e > worst || e != e)
                worst = e != e ? INFINITY : e;
        }
    return worst;
}

static double nn_err(int m, int n, int k, const float *a, int lda,
                     const float *b, int ldb, const float *c,
                     const float *ref, int ldc)
{
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double mag = 0;
            for (int p = 0; p < k; p++)
                mag += fabs((double)a[(size_t)i * lda + p] *
                            b[(size_t)p * ldb + j]);
            double e = fabs((double)c[(size_t)i * ldc + j] -
                            ref[(size_t)i * ldc + j]) / (1e-5 * mag + 1e-30);
            if (e > worst || e != e)
                worst = e != e ? INFINITY : e;
        }
    return worst;
}

/* One gemm_nt and one gemm_nn shape (with padding in the strides). */
static void check_gemm_shape(const char *isa, int m, int n, int k, int pad)
{
    int lda = k + pad, ldb = k + pad, ldc = n + pad;
    float *a = rand_floats((size_t)m * lda), *b = rand_floats((size_t)n * ldb);
    float *c = malloc((size_t)m * ldc * sizeof *c);
    float *ref = malloc((size_t)m * ldc * sizeof *ref);
    for (size_t i = 0; i < (size_t)m * ldc; i++)
        c[i] = ref[i] = 12345.0f; /* padding must survive */
    use_isa("scalar");
    kern_gemm_nt(m, n, k, a, lda, b, ldb, ref, ldc);
    use_isa(isa);
    kern_gemm_nt(m, n, k, a, lda, b, ldb, c, ldc);
    double e = nt_err(m, n, k, a, lda, b, ldb, c, ref, ldc);
    CHECK(e <= 1.0, "%s gemm_nt m=%d n=%d k=%d: error %.3g x tolerance",
          isa, m, n, k, e);
    int pad_ok = 1;
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
            pad_ok &= c[(size_t)i * ldc + j] == 12345.0f;
    CHECK(pad_ok, "%s gemm_nt m=%d n=%d k=%d wrote past n", isa, m, n, k);
    free(b);

    /* C[m][n] = A[m][k] . B[k][n] */
    int ldbn = n + pad;
    b = rand_floats((size_t)k * ldbn);
    use_isa("scalar");
    kern_gemm_nn(m, n, k, a, lda, b, ldbn, ref, ldc);
    use_isa(isa);
    kern_gemm_nn(m, n, k, a, lda, b, ldbn, c, ldc);
    e = nn_err(m, n, k, a, lda, b, ldbn, c, ref, ldc);
    CHECK(e <= 1.0, "%s gemm_nn m=%d n=%d k=%d: error %.3g x tolerance",
          isa, m, n, k, e);
    pad_ok = 1;
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
            pad_ok &= c[(size_t)i * ldc + j] == 12345.0f;
    CHECK(pad_ok, "%s gemm_nn m=%d n=%d k=%d wrote past n", isa, m, n, k);
    free(a);
    free(b);
    free(c);
    free(ref);
}

/* ---- kern_linear on every weight type --------------------------------- */

typedef struct weights {
    kern_matrix w;
    void *data;
    float *dense; /* the exact values, for the tolerance */
} weights;

static weights make_weights(kern_type type, int rows, int cols)
{
    weights r = { .w = { type, rows, cols, NULL } };
    size_t n = (size_t)rows * cols;
    r.dense = rand_floats(n);
    if (type == KERN_F32) {
        r.data = malloc(n * 4);
        memcpy(r.data, r.dense, n * 4);
    } else if (type == KERN_F16) {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++) {
            h[i] = kern_f32_to_f16(r.dense[i]);
            r.dense[i] = kern_f16_to_f32(h[i]);
        }
        r.data = h;
    } else {
        size_t rb = kern_row_bytes(type, cols);
        r.data = malloc(rows * rb);
        for (int i = 0; i < rows; i++) {
            if (type == KERN_Q8_0)
                kern_quantize_q8_0(r.dense + (size_t)i * cols, cols,
                                   (uint8_t *)r.data + i * rb);
            else
                kern_quantize_q8_128(r.dense + (size_t)i * cols, cols,
                                     (uint8_t *)r.data + i * rb);
        }
        r.w.data = r.data;
        for (int i = 0; i < rows; i++)
            kern_dequantize_row(&r.w, i, r.dense + (size_t)i * cols);
    }
    r.w.data = r.data;
    return r;
}

static void free_weights(weights *w)
{
    free(w->data);
    free(w->dense);
}

static const char *type_name(kern_type t)
{
    return t == KERN_F32 ? "f32" : t == KERN_F16 ? "f16"
         : t == KERN_Q8_0 ? "q8_0" : "q8_128";
}

static void check_linear_shape(const char *isa, kern_type type, int m, int n,
                               int k)
{
    weights w = make_weights(type, n, k);
    /* q8_128's fast path reads only the packed copy (the reference
     * ignores it), so without one this would compare the reference
     * with itself */
    use_isa(isa);
    void *pk = type == KERN_Q8_128 ? kern_pack(&w.w) : NULL;
    w.w.packed = pk;
    float *x = rand_floats((size_t)m * k), *bias = rand_floats((size_t)n);
    float *out = malloc((size_t)m * n * sizeof *out);
    float *ref = malloc((size_t)m * n * sizeof *ref);
    use_isa("scalar");
    kern_linear(x, m, &w.w, bias, ref);
    use_isa(isa);
    kern_linear(x, m, &w.w, bias, out);
    if (kern_q8_block(type)) {
        CHECK(memcmp(out, ref, (size_t)m * n * sizeof *out) == 0,
              "%s linear %s m=%d n=%d k=%d differs from the reference",
              isa, type_name(type), m, n, k);
    } else {
        double worst = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double mag = fabs(bias[j]);
                for (int p = 0; p < k; p++)
                    mag += fabs((double)x[(size_t)i * k + p] *
                                w.dense[(size_t)j * k + p]);
                double e = fabs((double)out[(size_t)i * n + j] -
                                ref[(size_t)i * n + j]) / (1e-5 * mag);
                worst = e > worst || e != e ? e : worst;
            }
        CHECK(worst <= 1.0, "%s linear %s m=%d n=%d k=%d: error %.3g x tol",
              isa, type_name(type), m, n, k, worst);
    }
    /* without bias too */
    use_isa("scalar");
    kern_linear(x, m, &w.w, NULL, ref);
    use_isa(isa);
    kern_linear(x, m, &w.w, NULL, out);
    if (kern_q8_block(type))
        CHECK(memcmp(out, ref, (size_t)m * n * sizeof *out) == 0,
              "%s linear %s (no bias) m=%d n=%d k=%d differs", isa,
              type_name(type), m, n, k);
    free(pk);
    free(x);
    free(bias);
    free(out);
    free(ref);
    free_weights(&w);
}

/* Row i of a batch == the same row alone; kern_linear_mt == kern_linear
 * on 1..4 threads.  Bitwise. */
static void check_determinism(const char *isa, kern_type type, int m, int n,
                              int k, pool **pools)
{
    use_isa(isa);
    weights w = make_weights(type, n, k);
    void *pk = type == KERN_Q8_128 ? kern_pack(&w.w) : NULL;
    w.w.packed = pk;
    float *x = rand_floats((size_t)m * k), *bias = rand_floats((size_t)n);
    float *batch = malloc((size_t)m * n * sizeof *batch);
    float *one = malloc((size_t)n * sizeof *one);
    float *mt = malloc((size_t)m * n * sizeof *mt);
    kern_linear(x, m, &w.w, bias, batch);
    int same = 1;
    for (int i = 0; i < m; i++) {
        kern_linear(x + (size_t)i * k, 1, &w.w, bias, one);
        same &= memcmp(one, batch + (size_t)i * n, (size_t)n * 4) == 0;
    }
    CHECK(same, "%s %s m=%d n=%d k=%d: a row alone differs from in a batch",
          isa, type_name(type), m, n, k);
    /* a sub-batch starting at an odd row */
    if (m > 3) {
        kern_linear(x + (size_t)3 * k, m - 3, &w.w, bias, mt);
        CHECK(memcmp(mt, batch + (size_t)3 * n, (size_t)(m - 3) * n * 4) == 0,
              "%s %s: sub-batch differs", isa, type_name(type));
    }
    for (int t = 0; t < 4; t++) {
        memset(mt, 0, (size_t)m * n * sizeof *mt);
        kern_linear_mt(pools[t], x, m, &w.w, bias, mt);
        CHECK(memcmp(mt, batch, (size_t)m * n * 4) == 0,
              "%s %s m=%d n=%d k=%d: %d threads differ from 1", isa,
              type_name(type), m, n, k, t + 1);
    }
    free(x);
    free(bias);
    free(batch);
    free(one);
    free(mt);
    free(pk);
    free_weights(&w);
}

/* kern_pack: made for q8_0 on avx512vnni and amx and for q8_128 on amx
 * only (NULL elsewhere), and with it the products, alone and on 1..4
 * threads, give the reference's bits (q8_0: this path's unpacked; q8_128:
 * the scalar reference, which serves it unpacked) while reading only the
 * packed copy: w->data is overwritten first. */
static void check_packed(const char *isa, kern_type type, int m, int n,
                         int k, pool **pools)
{
    use_isa(isa);
    weights w = make_weights(type, n, k);
    float *x = rand_floats((size_t)m * k), *bias = rand_floats((size_t)n);
    float *ref = malloc((size_t)m * n * sizeof *ref);
    float *out = malloc((size_t)m * n * sizeof *out);
    kern_linear(x, m, &w.w, bias, ref);
    void *pk = kern_pack(&w.w);
    int amx = strcmp(isa, "amx") == 0;
    int want = amx || (type == KERN_Q8_0 && strcmp(isa, "avx512vnni") == 0);
    CHECK((pk != NULL) == want, "%s kern_pack %s %dx%d: %s", isa,
          type_name(type), n, k,
          pk ? "made a copy this path does not read" : "made nothing");
    if (pk) {
        w.w.packed = pk;
        memset(w.data, 0x55, (size_t)n * kern_row_bytes(type, k));
        kern_linear(x, m, &w.w, bias, out);
        CHECK(memcmp(out, ref, (size_t)m * n * sizeof *out) == 0,
              "%s packed %s m=%d n=%d k=%d differs", isa, type_name(type),
              m, n, k);
        for (int t = 0; t < 4; t++) {
            memset(out, 0, (size_t)m * n * sizeof *out);
            kern_linear_mt(pools[t], x, m, &w.w, bias, out);
            CHECK(memcmp(out, ref, (size_t)m * n * sizeof *out) == 0,
                  "%s packed %s m=%d n=%d k=%d: %d threads differ", isa,
                  type_name(type), m, n, k, t + 1);
        }
        free(pk);
    }
    kern_matrix f = { KERN_F32, n, k, w.dense, NULL };
    void *fp = kern_pack(&f);
    CHECK(fp == NULL, "%s kern_pack f32: a copy no path reads", isa);
    free(fp);
    free(x);
    free(bias);
    free(ref);
    free(out);
    free_weights(&w);
}

/* ---- element-wise ------------------------------------------------------ */

/* ---- attention ---------------------------------------------------------- */

typedef void (*attention_fn)(int len, int dh, float scale, const float *q,
                             const float *k, const float *v, int ld,
                             float *ctx, int ldc, float *scratch);

/* Whether f on the head (the last dh of ld columns) copied into a compact
 * [len][dh] layout gives the bits it gave in place (ctx, ld apart). */
static int same_compact(attention_fn f, int len, int dh, int ld, float scale,
                        const float *q, const float *k, const float *v,
                        const float *ctx, float *scratch)
{
    int off = ld - dh;
    size_t nc = (size_t)len * dh;
    float *qc = calloc(nc, sizeof *qc), *kc = calloc(nc, sizeof *kc);
    float *vc = calloc(nc, sizeof *vc), *cc = calloc(nc, sizeof *cc);
    for (int i = 0; i < len; i++) {
        memcpy(qc + (size_t)i * dh, q + (size_t)i * ld + off, dh * sizeof *q);
        memcpy(kc + (size_t)i * dh, k + (size_t)i * ld + off, dh * sizeof *k);
        memcpy(vc + (size_t)i * dh, v + (size_t)i * ld + off, dh * sizeof *v);
    }
    f(len, dh, scale, qc, kc, vc, dh, cc, dh, scratch);
    int same = 1;
    for (int i = 0; i < len; i++)
        same &= !memcmp(cc + (size_t)i * dh, ctx + (size_t)i * ld + off,
                        (size_t)dh * sizeof *cc);
    free(qc); free(kc); free(vc); free(cc);
    return same;
}

/* kern_attention on one head of a [len][ld] q/k/v layout, against the
 * scalar path (|ctx - ref| <= 2e-6: scores differ by rounding, softmax
 * weights sum to 1 and |v| < 1; measured worst 1.15e-6), with the columns
 * outside the head left alone and the same bits as the head copied into a
 * compact [len][dh] layout (the result depends only on the head's rows).
 * On the scalar path it must also be bitwise the composition it replaced:
 * kern_gemm_nt, times scale, kern_softmax, kern_gemm_nn. */
static void check_attention(const char *isa, int len, int dh, int ld)
{
    int off = ld - dh;                   /* the head is the last dh columns */
    size_t n = (size_t)len * ld, nc = (size_t)len * dh;
    float *q = rand_floats(n), *k = rand_floats(n), *v = rand_floats(n);
    for (size_t i = 0; i < n; i++) {     /* spread scores out like a model's */
        q[i] *= 3.0f;
        k[i] *= 3.0f;
    }
    float scale = 1.0f / sqrtf((float)dh);
    float *ref = malloc(n * sizeof *ref), *ctx = malloc(n * sizeof *ctx);
    float *scratch = malloc(kern_attention_scratch(len, dh) * sizeof *scratch);
    for (size_t i = 0; i < n; i++)
        ref[i] = ctx[i] = 12345.0f;
    use_isa("scalar");
    kern_attention(len, dh, scale, q + off, k + off, v + off, ld, ref + off,
                   ld, scratch);
    if (!strcmp(isa, "scalar")) {        /* the old composition, bitwise */
        float *s = malloc((size_t)len * len * sizeof *s);
        float *old = malloc(nc * sizeof *old);
        kern_gemm_nt(len, len, dh, q + off, ld, k + off, ld, s, len);
        for (int i = 0; i < len; i++) {
            for (int j = 0; j < len; j++)
                s[(size_t)i * len + j] *= scale;
            kern_softmax(s + (size_t)i * len, len);
        }
        kern_gemm_nn(len, dh, len, s, len, v + off, ld, old, dh);
        int same = 1;
        for (int i = 0; i < len; i++)
            same &= !memcmp(old + (size_t)i * dh, ref + (size_t)i * ld + off,
                            (size_t)dh * sizeof *old);
        CHECK(same, "scalar attention len=%d dh=%d differs from "
              "gemm_nt/softmax/gemm_nn", len, dh);
        free(s);
        free(old);
    }
    use_isa(isa);
    kern_attention(len, dh, scale, q + off, k + off, v + off, ld, ctx + off,
                   ld, scratch);
    double worst = 0;
    int pad_ok = 1;
    for (int i = 0; i < len; i++)
        for (int j = 0; j < ld; j++) {
            float c = ctx[(size_t)i * ld + j], r = ref[(size_t)i * ld + j];
            if (j < off) {
                pad_ok &= c == 12345.0f;
                continue;
            }
            double e = fabs((double)c - r) / 2e-6;
            worst = e > worst || e != e ? e : worst;
        }
    CHECK(worst <= 1.0, "%s attention len=%d dh=%d: error %.3g x tolerance",
          isa, len, dh, worst);
    CHECK(pad_ok, "%s attention len=%d dh=%d wrote outside its head", isa,
          len, dh);

    /* the same head alone, rows dh apart: the same bits */
    CHECK(same_compact(kern_attention, len, dh, ld, scale, q, k, v, ctx,
                       scratch),
          "%s attention len=%d dh=%d depends on the layout", isa, len, dh);
    free(q); free(k); free(v); free(ref); free(ctx); free(scratch);
}

static void check_elementwise(const char *isa)
{
    /* gelu over a dense grid and the interesting range */
    size_t n = 200003;
    float *x = malloc(n * sizeof *x), *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++)
        x[i] = -12.0f + 24.0f * (float)i / (float)n;
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = 1e-30f;
    memcpy(ref, x, n * sizeof *x);
    use_isa("scalar");
    kern_gelu(ref, n);
    float *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *x);
    use_isa(isa);
    kern_gelu(y, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)y[i] - ref[i]) /
                   (3e-7 * fmax(1.0, fabs(x[i])));
        worst = e > worst || e != e ? e : worst;
    }
    CHECK(worst <= 1.0, "%s gelu error %.3g x tolerance", isa, worst);

    /* softmax over many lengths, including masked (-inf) entries */
    for (int len = 1; len <= 300; len += (len < 40 ? 1 : 37)) {
        for (int i = 0; i < len; i++) {
            x[i] = 8.0f * frand();
            if (len > 4 && i % 5 == 4)
                x[i] = -INFINITY;
        }
        memcpy(ref, x, len * sizeof *x);
        memcpy(y, x, len * sizeof *x);
        use_isa("scalar");
        kern_softmax(ref, len);
        use_isa(isa);
        kern_softmax(y, len);
        int ok = 1;
        for (int i = 0; i < len; i++)
            ok &= fabsf(y[i] - ref[i]) <= 1e-6f * ref[i] + 1e-9f;
        CHECK(ok, "%s softmax len=%d", isa, len);
    }

    /* layernorm, add, dot */
    for (int len = 1; len <= 400; len += (len < 40 ? 1 : 41)) {
        float *g = rand_floats((size_t)len), *bt = rand_floats((size_t)len);
        for (int i = 0; i < len; i++)
            x[i] = 3.0f + 2.0f * frand();
        memcpy(ref, x, len * sizeof *x);
        memcpy(y, x, len * sizeof *x);
        use_isa("scalar");
        kern_layernorm(ref, len, g, bt, 1e-12f);
        float dref = kern_dot(x, g, len);
        use_isa(isa);
        kern_layernorm(y, len, g, bt, 1e-12f);
        float d = kern_dot(x, g, len);
        int ok = 1;
        for (int i = 0; i < len; i++)
            ok &= fabsf(y[i] - ref[i]) <= 1e-5f * (fabsf(ref[i]) + 1.0f);
        CHECK(ok, "%s layernorm len=%d", isa, len);
        double mag = 0;
        for (int i = 0; i < len; i++)
            mag += fabs((double)x[i] * g[i]);
        CHECK(fabs((double)d - dref) <= 1e-6 * mag, "%s dot len=%d: %g vs %g",
              isa, len, d, dref);
        memcpy(y, x, len * sizeof *x);
        kern_add(y, g, (size_t)len);
        ok = 1;
        for (int i = 0; i < len; i++)
            ok &= y[i] == x[i] + g[i];
        CHECK(ok, "%s add len=%d", isa, len);
        free(g);
        free(bt);
    }
    free(x);
    free(y);
    free(ref);
}

/* kern_attention_bf16 against the scalar path's, as check_attention.
 * Both round the same inputs to bfloat16; what differs is fp32 rounding
 * of the scores and sums (~1e-6) and the exponentials (expf against a
 * 2^x fit within 1e-5), either of which can tip an exponential's
 * bfloat16 rounding by one step (2^-8 relative).  So |ctx - ref| <= 2e-3
 * (v in [-1, 1]; measured worst 2.1e-4), where one key's weight read
 * from the wrong place is of order 0.1.  Also: each result within 2e-2
 * of fp32 kern_attention (bfloat16's error; measured worst 9.6e-3). */
static void check_attention_bf16(const char *isa, int len, int dh, int ld)
{
    int off = ld - dh;
    size_t n = (size_t)len * ld;
    float *q = rand_floats(n), *k = rand_floats(n), *v = rand_floats(n);
    for (size_t i = 0; i < n; i++) {
        q[i] *= 3.0f;
        k[i] *= 3.0f;
    }
    float scale = 1.0f / sqrtf((float)dh);
    float *ref = malloc(n * sizeof *ref), *ctx = malloc(n * sizeof *ctx);
    float *f32 = malloc(n * sizeof *f32);
    float *scratch = malloc(kern_attention_scratch(len, dh) * sizeof *scratch);
    for (size_t i = 0; i < n; i++)
        ref[i] = ctx[i] = 12345.0f;
    use_isa("scalar");
    kern_attention_bf16(len, dh, scale, q + off, k + off, v + off, ld,
                        ref + off, ld, scratch);
    kern_attention(len, dh, scale, q + off, k + off, v + off, ld, f32 + off,
                   ld, scratch);
    use_isa(isa);
    kern_attention_bf16(len, dh, scale, q + off, k + off, v + off, ld,
                        ctx + off, ld, scratch);
    double worst = 0, worst32 = 0;
    int pad_ok = 1;
    for (int i = 0; i < len; i++)
        for (int j = 0; j < ld; j++) {
            size_t at = (size_t)i * ld + j;
            if (j < off) {
                pad_ok &= ctx[at] == 12345.0f;
                continue;
            }
            double e = fabs((double)ctx[at] - ref[at]) / 2e-3;
            double e32 = fabs((double)ctx[at] - f32[at]) / 2e-2;
            worst = e > worst || e != e ? e : worst;
            worst32 = e32 > worst32 || e32 != e32 ? e32 : worst32;
        }
    CHECK(worst <= 1.0, "%s bf16 attention len=%d dh=%d: error %.3g x "
          "tolerance", isa, len, dh, worst);
    CHECK(worst32 <= 1.0, "%s bf16 attention len=%d dh=%d: %.3g x "
          "tolerance from fp32", isa, len, dh, worst32);
    CHECK(pad_ok, "%s bf16 attention len=%d dh=%d wrote outside its head",
          isa, len, dh);

    CHECK(same_compact(kern_attention_bf16, len, dh, ld, scale, q, k, v, ctx,
                       scratch),
          "%s bf16 attention len=%d dh=%d depends on the layout", isa, len,
          dh);
    free(q); free(k); free(v); free(ref); free(ctx); free(f32); free(scratch);
}

/* ---- conversions and quantization ------------------------------------- */

#if defined(__x86_64__)
__attribute__((target("f16c"))) static float f16c_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}
__attribute__((target("f16c"))) static uint16_t f16c_from_f32(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#endif

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void check_f16(void)
{
    /* known values: rounding, subnormals, overflow */
    CHECK(kern_f32_to_f16(1.0f) == 0x3c00, "1.0");
    CHECK(kern_f32_to_f16(-2.0f) == 0xc000, "-2.0");
    CHECK(kern_f32_to_f16(65504.0f) == 0x7bff, "max half");
    CHECK(kern_f32_to_f16(65520.0f) == 0x7c00, "rounds to inf");
    CHECK(kern_f32_to_f16(65519.0f) == 0x7bff, "rounds to max");
    CHECK(kern_f32_to_f16(5.9604645e-8f) == 0x0001, "smallest subnormal");
    CHECK(kern_f32_to_f16(2.9802322e-8f) == 0x0000, "half of it ties to 0");
    CHECK(kern_f32_to_f16(2.9802326e-8f) == 0x0001, "just above rounds up");
    CHECK(kern_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "tie to even down");
    CHECK(kern_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "tie to even up");
    CHECK(kern_f16_to_f32(0x0001) == 5.9604645e-8f, "subnormal to f32");
    CHECK(kern_f16_to_f32(0x8000) == 0.0f && signbit(kern_f16_to_f32(0x8000)),
          "-0");
    CHECK(isnan(kern_f16_to_f32(kern_f32_to_f16(NAN))), "nan stays nan");
#if defined(__x86_64__)
    if (kern_set_isa("avx2") != 0) /* that level requires F16C */
        return;
    kern_set_isa("scalar");
    int ok = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = kern_f16_to_f32((uint16_t)h), b = f16c_to_f32((uint16_t)h);
        if (isnan(b))
            ok &= isnan(a);
        else
            ok &= bits_of(a) == bits_of(b);
    }
    CHECK(ok, "f16 -> f32 differs from F16C");
    /* every float whose exponent is near the half range, sampled densely,
     * plus random bits over the whole range */
    ok = 1;
    int bad = 0;
    for (uint32_t e = 100; e < 145; e++)
        for (uint32_t mant = 0; mant < (1u << 23); mant += 97) {
            for (uint32_t s = 0; s < 2; s++) {
                float f = float_of(s << 31 | e << 23 | mant);
                uint16_t a = kern_f32_to_f16(f), b = f16c_from_f32(f);
                if (a != b && !bad++)
                    fprintf(stderr, "f32 %a -> %04x, F16C %04x\n", f, a, b);
                ok &= a == b;
            }
        }
    for (int i = 0; i < 1000000; i++) {
        float f = float_of(next_u32() << 1 ^ next_u32());
        if (isnan(f))
            continue;
        ok &= kern_f32_to_f16(f) == f16c_from_f32(f);
    }
    CHECK(ok, "f32 -> f16 differs from F16C (%d cases)", bad);
#endif
}

static void check_q8_quantize(void)
{
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = frand() * (i < 32 ? 3.0f : 0.01f);
    x[5] = -3.5f; /* the max magnitude, negative */
    uint8_t q[2 * KERN_Q8_0_BYTES];
    kern_quantize_q8_0(x, 64, q);
    kern_matrix w = { KERN_Q8_0, 1, 64, q, NULL };
    float back[64];
    kern_dequantize_row(&w, 0, back);
    uint16_t dh;
    memcpy(&dh, q, 2);
    CHECK(dh == kern_f32_to_f16(3.5f / 127.0f), "scale %04x", dh);
    CHECK((int8_t)q[2 + 5] == -127, "max maps to -127: %d", (int8_t)q[7]);
    int ok = 1;
    for (int b = 0; b < 2; b++) {
        memcpy(&dh, q + b * KERN_Q8_0_BYTES, 2);
        float d = kern_f16_to_f32(dh);
        for (int i = 0; i < 32; i++) {
            int8_t code = (int8_t)q[b * KERN_Q8_0_BYTES + 2 + i];
            ok &= back[b * 32 + i] == d * code;
            ok &= code != -128;
            /* the code is the nearest to x / d(float) */
            float exact = x[b * 32 + i] / d;
            ok &= fabsf(exact - code) <= 0.5f + 1e-3f;
        }
    }
    CHECK(ok, "q8_0 quantize / dequantize round trip");
    float zero[32] = { 0 };
    kern_quantize_q8_0(zero, 32, q);
    ok = q[0] == 0 && q[1] == 0;
    for (int i = 0; i < 32; i++)
        ok &= q[2 + i] == 0;
    CHECK(ok, "all-zero block");

    /* F16 and F32 rows through kern_dequantize_row */
    uint16_t h[3] = { 0x3c00, 0xc000, 0x0001 };
    kern_matrix wf16 = { KERN_F16, 1, 3, h, NULL };
    float out[3];
    kern_dequantize_row(&wf16, 0, out);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 5.9604645e-8f,
          "f16 row");
}

int main(void)
{
    kern_init();
    printf("kernels: best path %s\n", kern_isa_name());
    const char *best = kern_isa_name();

    check_f16();
    check_q8_quantize();

    pool *pools[4] = { 0 };
    for (int t = 0; t < 4; t++)
        CHECK(pool_create(t + 1, &pools[t], NULL) == 0, "pool %d", t + 1);

    /* The scalar path against itself is trivially fine; it still runs the
     * determinism checks below. */
    const char *isas[N_SIMD + 1];
    int n_isas = 0;
    isas[n_isas++] = "scalar";
    for (int i = 0; i < N_SIMD; i++) {
        int rc = kern_set_isa(simd_isas[i]);
        if (rc == 0)
            isas[n_isas++] = simd_isas[i];
        else
            printf("kernels: %s not supported here, skipped\n",
                   simd_isas[i]);
    }

    static const int att[][2] = { /* attention: len, head size */
        { 1, 32 }, { 2, 32 }, { 7, 32 }, { 16, 32 }, { 17, 32 },
        { 45, 32 }, { 128, 32 }, { 256, 32 }, { 13, 64 }, { 100, 64 },
        { 33, 16 },
    };
    for (size_t a = 0; a < sizeof att / sizeof att[0]; a++)
        check_attention("scalar", att[a][0], att[a][1], att[a][1] * 12);

    for (int s = 1; s < n_isas; s++) {
        const char *isa = isas[s];
        int before = test_failed;
        /* every small shape's tails: m, n, k in 1..70, sampled */
        for (int m = 1; m <= 70; m += (m < 10 ? 1 : 7))
            for (int n = 1; n <= 70; n += (n < 10 ? 1 : 9))
                for (int k = 1; k <= 70; k += (k < 20 ? 1 : 5))
                    check_gemm_shape(isa, m, n, k, (m + n + k) % 3);
        /* attention shapes: lda = hidden */
        check_gemm_shape(isa, 37, 37, 64, 320);
        check_gemm_shape(isa, 128, 128, 64, 320);
        check_gemm_shape(isa, 13, 64, 13, 0);
        check_gemm_shape(isa, 130, 64, 130, 0);
        check_gemm_shape(isa, 5, 200, 300, 7);
        /* P.V: 32 columns (12-row tiles), 64 + a narrow tail */
        check_gemm_shape(isa, 37, 32, 37, 0);
        check_gemm_shape(isa, 130, 32, 130, 352);
        check_gemm_shape(isa, 50, 80, 20, 3);
        check_gemm_shape(isa, 23, 96, 40, 0);
        static const int real_nk[][2] = {
            { 384, 384 }, { 1152, 384 }, { 1536, 384 }, { 384, 1536 },
        };
        static const int real_m[] = { 1, 7, 10, 13, 16, 17, 33 };
        for (int t = 0; t < 4; t++) {
            kern_type type = t == 0 ? KERN_F32 : t == 1 ? KERN_F16
                           : t == 2 ? KERN_Q8_0 : KERN_Q8_128;
            for (int m = 1; m <= 70; m += (m < 12 ? 1 : 11))
                for (int n = 1; n <= 70; n += (n < 20 ? 1 : 7))
                    for (int k = 32; k <= 96; k += 32)
                        check_linear_shape(isa, type, m, n,
                                           type == KERN_Q8_0 ? k
                                           : type == KERN_Q8_128 ? 4 * k
                                           : k - m % 7);
            for (size_t r = 0; r < sizeof real_nk / sizeof real_nk[0]; r++)
                for (size_t mi = 0; mi < sizeof real_m / sizeof real_m[0]; mi++)
                    check_linear_shape(isa, type, real_m[mi], real_nk[r][0],
                                       real_nk[r][1]);
        }
        check_elementwise(isa);
        for (size_t a = 0; a < sizeof att / sizeof att[0]; a++) {
            check_attention(isa, att[a][0], att[a][1],
                            att[a][1] * 12 + (int)a % 3);
            check_attention_bf16(isa, att[a][0], att[a][1],
                                 att[a][1] * 12 + (int)a % 3);
        }
        check_attention_bf16(isa, 77, 80, 80 * 4); /* past the AMX heads */
        check_attention_bf16(isa, 512, 32, 384);
        printf("kernels: %s vs scalar: %s\n", isa,
               test_failed == before ? "ok" : "FAILED");
    }

    for (int s = 0; s < n_isas; s++)
        for (int t = 0; t < 4; t++) {
            kern_type type = t == 0 ? KERN_F32 : t == 1 ? KERN_F16
                           : t == 2 ? KERN_Q8_0 : KERN_Q8_128;
            check_determinism(isas[s], type, 37, 384, 384, pools);
            check_determinism(isas[s], type, 11, 1536, 384, pools);
            /* the fewest rows kern_linear_mt still splits among threads */
            check_determinism(isas[s], type, 17, 1536, 384, pools);
            check_determinism(isas[s], type, 70, 150,
                              type == KERN_Q8_128 ? 128 : 64, pools);
        }

    static const int packed_m[] = { 1, 7, 16, 17, 33, 100 };
    static const int packed_nk[][2] = {
        { 384, 384 }, { 1536, 384 }, { 384, 1536 }, { 17, 64 }, { 40, 32 },
        { 70, 96 }, { 1, 32 }, { 200, 64 },
    };
    for (int s = 0; s < n_isas; s++)
        for (size_t r = 0; r < sizeof packed_nk / sizeof packed_nk[0]; r++)
            for (size_t mi = 0; mi < sizeof packed_m / sizeof packed_m[0];
                 mi++)
                check_packed(isas[s], KERN_Q8_0, packed_m[mi],
                             packed_nk[r][0], packed_nk[r][1], pools);
    /* q8_128: every row count 1..40 (AMX tiles of 16 rows and their
     * tails) and the model's shapes */
    static const int p128_nk[][2] = {
        { 384, 384 }, { 1536, 384 }, { 384, 1536 }, { 17, 128 },
        { 40, 256 }, { 1, 128 }, { 200, 640 },
    };
    for (int s = 0; s < n_isas; s++)
        for (size_t r = 0; r < sizeof p128_nk / sizeof p128_nk[0]; r++)
            for (int m = 1; m <= 40; m += r < 3 ? 13 : 1)
                check_packed(isas[s], KERN_Q8_128, m, p128_nk[r][0],
                             p128_nk[r][1], pools);

    /* q8_0 is bitwise the same on every path */
    {
        weights w = make_weights(KERN_Q8_0, 100, 384);
        float *x = rand_floats(50 * 384);
        float *ref = malloc(50 * 100 * 4), *out = malloc(50 * 100 * 4);
        use_isa("scalar");
        kern_linear_mt(pools[3], x, 50, &w.w, NULL, ref);
        for (int s = 1; s < n_isas; s++) {
            use_isa(isas[s]);
            kern_linear_mt(pools[1], x, 50, &w.w, NULL, out);
            CHECK(memcmp(out, ref, 50 * 100 * 4) == 0,
                  "q8_0 %s mt differs from scalar", isas[s]);
        }
        free(x);
        free(ref);
        free(out);
        free_weights(&w);
    }

    for (int t = 0; t < 4; t++)
        pool_free(pools[t]);
    use_isa(best);
    TEST_MAIN_END();
}
