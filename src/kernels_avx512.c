/* kernels_avx512.c - the AVX-512 paths (see kernels.h, kernels_avx2.c).
 *
 * Mostly the algorithms of kernels_avx2.c, twice as wide and with 32
 * registers, so bigger register tiles: fp32 dot-product tiles of 4 rows of
 * A x 6 weight rows (24 accumulators) for kern_gemm_nt, A.B tiles of 6
 * rows x 64 columns.  Tails use AVX-512 masks instead of
 * copies.  On Zen 4 a 512-bit FMA is double-pumped (same FLOP/cycle as two
 * 256-bit ones); Xeons have two full-width pipes, where the dot-product
 * tiles' lane reductions cost too much, so products with F32 and F16
 * weights put up to 64 activation rows in lanes instead (linear_f_lanes).
 *
 * q8_0 with VNNI: weight rows are transposed 16 at a time into a panel
 * whose vector t holds int8 4t..4t+3 of each row's block, so one vpdpbusd
 * gives 4-element partial sums of 16 outputs with a broadcast activation
 * dword.  vpdpbusd multiplies unsigned by signed bytes, so activations are
 * stored as q + 128 (uint8) and each block's sum starts from
 * -128 * sum(w), precomputed in the panel; the block sums are exact and
 * scaled in float in the reference's order.  kern_pack makes every panel
 * of a matrix once (the model does at load), and products then read those
 * instead of packing per call: per call that was 2% of a 1-thread batch
 * and 4% on 2 threads, where each task packed its own slice again.  Tiles take two panels (32
 * columns) by up to 6 rows, so that loads do not outnumber vpdpbusd; a
 * last 1-16 columns take one panel by up to 8 rows.  For at most 16 rows (one
 * query) the activations are transposed instead of the weights, which are
 * then read in place or from the packed panels (see
 * linear_q8_vnni_small).  The plain "avx512" level
 * (no VNNI) uses the AVX2 q8_0 code, which gives the same bits.
 *
 * The "amx" level is VNNI's plus q8_128 products on AMX-INT8 tiles (see
 * the section below for why q8_0 stays on VNNI there) and attention on
 * AMX-BF16 (kern_attention_bf16).
 */
#include "kernels_isa.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX512_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
#define AVX512 __attribute__((target(AVX512_TARGET)))
#define AVX512_INLINE static inline __attribute__((always_inline, \
                                                   target(AVX512_TARGET)))
#define VNNI __attribute__((target(AVX512_TARGET ",avx512vnni")))
#define VNNI_INLINE static inline __attribute__((always_inline, \
                                     target(AVX512_TARGET ",avx512vnni")))

AVX512_INLINE __mmask16 tail_mask16(int n)
{
    return (__mmask16)((1u << n) - 1);
}

/* Lane i = the sum of the 16 lanes of v[i], for 16 vectors at once.  Each
 * sum is a fixed tree (lane l + lane l+8, then l + l+4, l + l+2, 0 + 1)
 * whatever the other 15 vectors are, so an output does not depend on
 * which accumulators shared its reduction. */
AVX512_INLINE __m512 reduce16(const __m512 v[16])
{
    __m512 t[8], u[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* [v2i: i + i+8 | v2i+1: i + i+8] */
        t[i] = _mm512_add_ps(
            _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
            _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* 4 lanes each of v4i..v4i+3 */
        u[i] = _mm512_add_ps(
            _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    /* chunk c: 2 lanes each of v_c, v_4+c (w0) and v_8+c, v_12+c (w1) */
    __m512 w0 = _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 w1 = _mm512_add_ps(_mm512_shuffle_ps(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(u[2], u[3], _MM_SHUFFLE(3, 2, 3, 2)));
    /* lane 4c + j holds the sum of v_c+4j */
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(w0, w1, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(w0, w1, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13,
                                            2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, r);
}

/* 16 weights from p as floats: F16 (converted exactly) or F32, masked. */
AVX512_INLINE __m512 load_w16_tail(const void *row, int p, __mmask16 mask,
                                   int f16)
{
    if (f16)
        return _mm512_cvtph_ps(
            _mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + p));
    return _mm512_maskz_loadu_ps(mask, (const float *)row + p);
}

/* ---- fp32: C = A . B^T (kern_gemm_nt) --------------------------------- */

/* Dot-product tiles of 4 rows of A x 6 rows of B, each output's 16-lane
 * accumulator reduced at the end.  Products with weights use
 * linear_f_lanes below; these tiles serve kern_gemm_nt. */
#define NT_MR 4
#define NT_NR 6

AVX512_INLINE void nt_tile(const int mr, int k, const float *a, size_t lda,
                           const float *const b[NT_NR],
                           float res[NT_MR][NT_NR])
{
    __m512 acc[NT_MR][NT_NR];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 6
        for (int q = 0; q < NT_NR; q++)
            acc[r][q] = _mm512_setzero_ps();
    for (int p = 0; p < k; p += 16) {
        __mmask16 mask = k - p >= 16 ? 0xffff : tail_mask16(k - p);
        __m512 av[NT_MR];
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++)
            av[r] = _mm512_maskz_loadu_ps(mask, a + r * lda + p);
#pragma GCC unroll 6
        for (int q = 0; q < NT_NR; q++) {
            __m512 bv = _mm512_maskz_loadu_ps(mask, b[q] + p);
#pragma GCC unroll 4
            for (int r = 0; r < mr; r++)
                acc[r][q] = _mm512_fmadd_ps(av[r], bv, acc[r][q]);
        }
    }
    /* Reduce the accumulators 16 at a time (padding with zeros). */
    __m512 flat[32];
    float sums[32];
#pragma GCC unroll 32
    for (int i = 0; i < 32; i++)
        flat[i] = i < mr * NT_NR ? acc[i / NT_NR][i % NT_NR]
                                 : _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int g = 0; g < (mr * NT_NR + 15) / 16; g++)
        _mm512_storeu_ps(sums + 16 * g, reduce16(flat + 16 * g));
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 6
        for (int q = 0; q < NT_NR; q++)
            res[r][q] = sums[r * NT_NR + q];
}

static AVX512 void gemm_nt_avx512(int m, int n, int k, const float *a,
                                  int lda, const float *b, int ldb, float *c,
                                  int ldc)
{
    for (int i = 0; i < m;) {
        int mr = m - i >= 4 ? 4 : m - i >= 2 ? 2 : 1;
        const float *ai = a + (size_t)i * lda;
        for (int j = 0; j < n; j += NT_NR) {
            const float *br[NT_NR];
            for (int q = 0; q < NT_NR; q++) /* a short last tile repeats */
                br[q] = b + (size_t)(j + q < n ? j + q : n - 1) * ldb;
            float res[NT_MR][NT_NR];
            if (mr == 4) nt_tile(4, k, ai, lda, br, res);
            else if (mr == 2) nt_tile(2, k, ai, lda, br, res);
            else nt_tile(1, k, ai, lda, br, res);
            int nq = n - j < NT_NR ? n - j : NT_NR;
            for (int r = 0; r < mr; r++)
                memcpy(c + (size_t)(i + r) * ldc + j, res[r],
                       (size_t)nq * sizeof(float));
        }
        i += mr;
    }
}

/* ---- F32 / F16 weights: out = x . W^T + b, activations in lanes -------- */

/* For fp32 products the dot-product tiles above spend half their time
 * outside the FMAs on CPUs with two 512-bit FMA pipes (lane reductions,
 * scalar stores, six weight-row streams).  Here up to 64 activation rows
 * are transposed into xt ([k][64], rows in lanes, zero beyond m) and each
 * weight element is broadcast against them: a tile of xv vectors (16 rows
 * each) by jr weight rows keeps xv * jr <= 24 accumulators, and every
 * output is one chain of FMAs over p = 0..k-1 from zero, then + bias, so
 * its bits do not depend on the tile, m or the thread split.  Transposing
 * x costs one pass over 64 rows per block, shared by all n outputs. */
#define FX_ROWS 64

/* In-register transpose: r[c] becomes column c of the 16 x 16 block. */
AVX512_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2],
                                     _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2],
                                         _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3],
                                         _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3],
                                         _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            t[8 * i + c] = _mm512_shuffle_f32x4(r[8 * i + c],
                                                r[8 * i + 4 + c], 0x88);
            t[8 * i + 4 + c] = _mm512_shuffle_f32x4(r[8 * i + c],
                                                    r[8 * i + 4 + c], 0xdd);
        }
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
    }
}

/* dst[c * ldd + l] = src[l * lds + p + c] for c < np (<= 16), l < 16,
 * with rows l >= `rows` read as zeros: one 16 x 16 block through
 * registers. */
AVX512_INLINE void transpose_block(const float *src, size_t lds, int rows,
                                   int p, int np, float *dst, size_t ldd)
{
    __mmask16 mk = np == 16 ? 0xffff : tail_mask16(np);
    __m512 r[16];
    for (int l = 0; l < 16; l++)
        r[l] = l < rows ? _mm512_maskz_loadu_ps(mk, src + (size_t)l * lds + p)
                        : _mm512_setzero_ps();
    transpose16(r);
    for (int c = 0; c < np; c++)
        _mm512_storeu_ps(dst + (size_t)c * ldd, r[c]);
}

/* xt[p][r] = x[r][p] for r < mr (<= 64), p < k; lanes of the last group
 * past mr are zero, groups past it are not written (nor read). */
static AVX512 void fx_pack(const float *x, int k, int mr, float *xt)
{
    for (int g = 0; g < (mr + 15) / 16; g++) {
        int rows = mr - 16 * g < 16 ? mr - 16 * g : 16;
        const float *xg = x + (size_t)16 * g * k;
        for (int p = 0; p < k; p += 16)
            transpose_block(xg, (size_t)k, rows, p, k - p < 16 ? k - p : 16,
                            xt + (size_t)p * FX_ROWS + 16 * g, FX_ROWS);
    }
}

AVX512_INLINE void fx_tile(const int xv, const int jr, int k, const float *xt,
                           const float *const wr[16], __m512 acc[4][16])
{
#pragma GCC unroll 4
    for (int v = 0; v < xv; v++)
#pragma GCC unroll 16
        for (int q = 0; q < jr; q++)
            acc[v][q] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        __m512 xa[4];
#pragma GCC unroll 4
        for (int v = 0; v < xv; v++)
            xa[v] = _mm512_load_ps(xt + (size_t)p * FX_ROWS + 16 * v);
#pragma GCC unroll 16
        for (int q = 0; q < jr; q++) {
            __m512 wb = _mm512_set1_ps(wr[q][p]);
#pragma GCC unroll 4
            for (int v = 0; v < xv; v++)
                acc[v][q] = _mm512_fmadd_ps(xa[v], wb, acc[v][q]);
        }
    }
}

/* F32 weights are read in place; F16 rows are converted (exactly) into
 * wbuf, jr rows at a time, once per block of 64 activation rows. */
static AVX512 void linear_f_lanes(const float *x, int m,
                                  const kern_matrix *w, const float *bias,
                                  float *out, int n0, int n1, float *xt,
                                  float *wbuf)
{
    int k = w->cols, n = w->rows;
    size_t row_bytes = kern_row_bytes(w->type, k);
    for (int i0 = 0; i0 < m; i0 += FX_ROWS) {
        int mr = m - i0 < FX_ROWS ? m - i0 : FX_ROWS;
        int xv = (mr + 15) / 16;
        int jr = xv == 1 ? 16 : xv == 2 ? 12 : xv == 3 ? 8 : 6;
        fx_pack(x + (size_t)i0 * k, k, mr, xt);
        for (int j = n0; j < n1; j += jr) {
            const float *wr[16];
            for (int q = 0; q < jr; q++) { /* a short last tile repeats a row */
                const void *row = (const char *)w->data +
                                  (size_t)(j + q < n1 ? j + q : n1 - 1) *
                                      row_bytes;
                if (w->type == KERN_F32) {
                    wr[q] = row;
                    continue;
                }
                float *dst = wbuf + (size_t)q * k;
                for (int p = 0; p < k; p += 16) {
                    __mmask16 mk = k - p >= 16 ? 0xffff : tail_mask16(k - p);
                    _mm512_mask_storeu_ps(dst + p, mk,
                                          load_w16_tail(row, p, mk, 1));
                }
                wr[q] = dst;
            }
            __m512 acc[4][16];
            switch (xv) {
            case 1: fx_tile(1, 16, k, xt, wr, acc); break;
            case 2: fx_tile(2, 12, k, xt, wr, acc); break;
            case 3: fx_tile(3, 8, k, xt, wr, acc); break;
            default: fx_tile(4, 6, k, xt, wr, acc); break;
            }
            int nq = n1 - j < jr ? n1 - j : jr;
            for (int v = 0; v < xv; v++) {
                int rows = mr - 16 * v < 16 ? mr - 16 * v : 16;
                for (int q = 0; q < nq; q++) {
                    float lane[16];
                    _mm512_storeu_ps(lane, acc[v][q]);
                    float *o = out + (size_t)(i0 + 16 * v) * n + j + q;
                    for (int l = 0; l < rows; l++)
                        o[(size_t)l * n] = bias ? lane[l] + bias[j + q]
                                                : lane[l];
                }
            }
        }
    }
}

static AVX512 void linear_f_avx512(const float *x, int m,
                                   const kern_matrix *w, const float *bias,
                                   float *out, int n0, int n1)
{
    int k = w->cols, n = w->rows, f16 = w->type == KERN_F16;
    float *xt = kern__scratch(1, (size_t)k * FX_ROWS * sizeof(float));
    float *wbuf = f16 ? kern__scratch(0, (size_t)16 * k * sizeof(float))
                      : NULL;
    if (xt && (wbuf || !f16)) {
        linear_f_lanes(x, m, w, bias, out, n0, n1, xt, wbuf);
        return;
    }
    /* no scratch: the same FMA chains, one output at a time */
    for (int i = 0; i < m; i++)
        for (int j = n0; j < n1; j++) {
            const float *xi = x + (size_t)i * k;
            const char *row = (const char *)w->data +
                              (size_t)j * kern_row_bytes(w->type, k);
            float s = 0.0f;
            for (int p = 0; p < k; p++)
                s = fmaf(xi[p], f16 ? kern_f16_to_f32(((const uint16_t *)
                                                           row)[p])
                                    : ((const float *)row)[p],
                         s);
            out[(size_t)i * n + j] = bias ? s + bias[j] : s;
        }
}

/* kern_attention's K transposed: kt[p][j] = k[j][p] for p < dh, j < len,
 * and 0 for len <= j < lp (lp a multiple of 16), in 16 x 16 blocks
 * through registers instead of one strided load per element. */
static AVX512 void transpose_kt_avx512(const float *k, int ld, int len,
                                       int dh, float *kt, size_t lp)
{
    for (int j = 0; j < (int)lp; j += 16)
        for (int p = 0; p < dh; p += 16)
            transpose_block(k + (size_t)j * ld, (size_t)ld,
                            len - j < 16 ? len - j : 16, p,
                            dh - p < 16 ? dh - p : 16, kt + (size_t)p * lp + j,
                            lp);
}

/* ---- fp32: C = A . B -------------------------------------------------- */

/* Tiles of 6 rows x 64 columns, or 12 rows x 32 columns where at most 32
 * columns are left (attention's P.V, whose B is one head: 32 or 64 wide),
 * so that no FMA works on masked-off lanes.  Every output is the same
 * chain of FMAs over p whatever its tile. */
#define NN_MR 6
#define NN_NV 4 /* 64 columns */
#define NN_MR_NARROW 12
#define NN_NV_NARROW 2

AVX512_INLINE void nn_tile(const int mr, const int nv, const int full,
                           int nc, int k, const float *a, size_t lda,
                           const float *b, size_t ldb, float *c, size_t ldc)
{
    __m512 acc[NN_MR_NARROW][NN_NV];
    __mmask16 mask[NN_NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        int left = nc - 16 * v;
        mask[v] = left >= 16 ? 0xffff : left <= 0 ? 0 : tail_mask16(left);
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * ldb;
        __m512 bv[NN_NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            bv[v] = full ? _mm512_loadu_ps(bp + 16 * v)
                         : _mm512_maskz_loadu_ps(mask[v], bp + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + p]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            if (full)
                _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
            else
                _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v],
                                      acc[r][v]);
        }
}

#define NN_TILE_CASES(full)                                                 \
    switch (mr) {                                                           \
    case 6: nn_tile(6, NN_NV, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 5: nn_tile(5, NN_NV, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 4: nn_tile(4, NN_NV, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 3: nn_tile(3, NN_NV, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 2: nn_tile(2, NN_NV, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    default: nn_tile(1, NN_NV, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    }

#define NN_NARROW_CASES(full)                                               \
    switch (mr) {                                                           \
    case 12: nn_tile(12, NN_NV_NARROW, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 8: nn_tile(8, NN_NV_NARROW, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 4: nn_tile(4, NN_NV_NARROW, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    case 2: nn_tile(2, NN_NV_NARROW, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    default: nn_tile(1, NN_NV_NARROW, full, nc, k, ai, lda, bj, ldb, cij, ldc); break; \
    }

static AVX512 void gemm_nn_avx512(int m, int n, int k, const float *a,
                                  int lda, const float *b, int ldb, float *c,
                                  int ldc)
{
    int wide = n / (16 * NN_NV) * (16 * NN_NV); /* columns in 64-wide tiles */
    if (n - wide > 16 * NN_NV_NARROW)
        wide = n;                           /* a masked 64-wide tile is fine */
    for (int i = 0; i < m; i += NN_MR) {
        int mr = m - i < NN_MR ? m - i : NN_MR;
        const float *ai = a + (size_t)i * lda;
        for (int j = 0; j < wide; j += 16 * NN_NV) {
            int nc = wide - j < 16 * NN_NV ? wide - j : 16 * NN_NV;
            const float *bj = b + j;
            float *cij = c + (size_t)i * ldc + j;
            if (nc == 16 * NN_NV) {
                NN_TILE_CASES(1)
            } else {
                NN_TILE_CASES(0)
            }
        }
    }
    if (wide == n)
        return;
    int j = wide, nc = n - wide;
    const float *bj = b + j;
    for (int i = 0; i < m;) {
        int left = m - i;
        int mr = left >= 12 ? 12 : left >= 8 ? 8 : left >= 4 ? 4
               : left >= 2 ? 2 : 1;
        const float *ai = a + (size_t)i * lda;
        float *cij = c + (size_t)i * ldc + j;
        if (nc == 16 * NN_NV_NARROW) {
            NN_NARROW_CASES(1)
        } else {
            NN_NARROW_CASES(0)
        }
        i += mr;
    }
}

/* ---- element-wise ops, 16 lanes ---------------------------------------- */

/* kernels_avx2.c's element-wise ops, lane for lane the same operations on
 * twice the width.  On the Xeon guest (two full-width FMA pipes; 1 thread,
 * q8_128, `bench/opprofile --attention-detail`, long texts) softmax went
 * from 3.11 to 1.90 ms a text, GELU 1.16 -> 0.77, residual + LayerNorm
 * 1.36 -> 0.99, whole texts +10% short, +8% medium, +12% long.  On Zen 4
 * zmm runs at the ymm rate.  Sums
 * (softmax's, LayerNorm's mean and variance) are split over 16 lanes
 * instead of 8, so they round differently from the AVX2 path, within the
 * tolerances test_kernels holds both to. */

/* exp8_neg of kernels_avx2.c: e^x for x <= 0, flushed to 0 below -87. */
AVX512_INLINE __m512 exp16_neg(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.0f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(x, lo);
    __m512 n = _mm512_roundscale_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r),
                        _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    p = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
    return _mm512_maskz_mov_ps((__mmask16)~under, p);
}

/* kern__avx2_softmax_exp: the unnormalised exponentials of x * scale -
 * max, in place, and 1 / their sum. */
static AVX512 float softmax_exp_avx512(float *x, int n, float scale)
{
    __m512 mx = _mm512_set1_ps(-INFINITY), sv = _mm512_set1_ps(scale);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
    __mmask16 tail = tail_mask16(n - i);
    if (tail)
        mx = _mm512_mask_max_ps(mx, tail, mx, _mm512_maskz_loadu_ps(tail, x + i));
    __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * scale);
    __m512 sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x + i), sv);
        __m512 e = exp16_neg(_mm512_sub_ps(y, mv));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (tail) {
        __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + i), sv);
        __m512 e = _mm512_maskz_mov_ps(tail, exp16_neg(_mm512_sub_ps(y, mv)));
        _mm512_mask_storeu_ps(x + i, tail, e);
        sum = _mm512_add_ps(sum, e);
    }
    return 1.0f / _mm512_reduce_add_ps(sum);
}

/* erf8 of kernels_avx2.c. */
AVX512_INLINE __m512 erf16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)),
                      _mm512_set1_ps(4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(p, x);
    __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

AVX512_INLINE __m512 gelu16(__m512 v)
{
    __m512 e = erf16(_mm512_mul_ps(v, _mm512_set1_ps((float)M_SQRT1_2)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static AVX512 void gelu_avx512(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = tail_mask16((int)(n - i));
        _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* Sum of 16 floats widened to double. */
AVX512_INLINE __m512d widen_add16(__m512d acc, __m512 v)
{
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

/* kern__avx2_layernorm: mean and variance accumulated in double. */
static AVX512 void layernorm_avx512(float *x, int n, const float *gamma,
                                    const float *beta, float eps)
{
    int i = 0, full = n / 16 * 16;
    __mmask16 tail = tail_mask16(n - full);
    __m512d acc = _mm512_setzero_pd();
    for (; i < full; i += 16)
        acc = widen_add16(acc, _mm512_loadu_ps(x + i));
    if (tail)
        acc = widen_add16(acc, _mm512_maskz_loadu_ps(tail, x + i));
    double mean = _mm512_reduce_add_pd(acc) / n;
    __m512d mv = _mm512_set1_pd(mean), var8 = _mm512_setzero_pd();
    for (i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(i < full ? 0xffff : tail, x + i);
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), mv);
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), mv);
        __mmask8 m0 = i < full ? 0xff : (__mmask8)tail;
        __mmask8 m1 = i < full ? 0xff : (__mmask8)(tail >> 8);
        var8 = _mm512_mask3_fmadd_pd(d0, d0, var8, m0);
        var8 = _mm512_mask3_fmadd_pd(d1, d1, var8, m1);
    }
    double var = _mm512_reduce_add_pd(var8) / n;
    float inv = (float)(1.0 / sqrt(var + eps));
    __m512 meanf = _mm512_set1_ps((float)mean), invv = _mm512_set1_ps(inv);
    for (i = 0; i < n; i += 16) {
        __mmask16 m = i < full ? 0xffff : tail;
        __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), meanf);
        v = _mm512_mul_ps(_mm512_mul_ps(v, invv),
                          _mm512_maskz_loadu_ps(m, gamma + i));
        _mm512_mask_storeu_ps(x + i, m,
                              _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, beta + i)));
    }
}

static AVX512 void add_avx512(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i),
                                              _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = tail_mask16((int)(n - i));
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i),
                                            _mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* ---- q8_0 with VNNI --------------------------------------------------- */

/* As kern__avx2_quantize_x (same codes, bit for bit), stored + 128. */
static VNNI void quantize_x_vnni(const float *x, int m, int k,
                                 const kern_qx *qx)
{
    int nb = k / KERN_Q8_0_BLOCK;
    const __m128i bias = _mm_set1_epi8((char)0x80);
    for (int i = 0; i < m; i++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)i * k + b * 32;
            __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
            float amax = _mm512_reduce_max_ps(
                _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            qx->d[(size_t)i * nb + b] = amax / 127.0f;
            __m512 idv = _mm512_set1_ps(id);
            __m128i q0 = _mm512_cvtepi32_epi8(
                _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv)));
            __m128i q1 = _mm512_cvtepi32_epi8(
                _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv)));
            uint8_t *dst = qx->q + (size_t)i * k + b * 32;
            _mm_storeu_si128((__m128i *)dst, _mm_xor_si128(q0, bias));
            _mm_storeu_si128((__m128i *)(dst + 16), _mm_xor_si128(q1, bias));
        }
    }
}

/* Panel of 16 weight rows, per block: 8 vectors (vector t: bytes
 * 4t..4t+3 of row l's block in dword lane l), 16 int32 corrections
 * -128 * sum(w), 16 float scales.  Rows past the end are zero. */
#define P16_BLOCK_BYTES (8 * 64 + 64 + 64)

static VNNI void pack_panel16(const kern_matrix *w, int j0, int nj, int nb,
                              uint8_t *panel)
{
    size_t row_bytes = kern_row_bytes(KERN_Q8_0, w->cols);
    const __m512i lo_idx = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i hi_idx = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    const __m512i minus128 = _mm512_set1_epi8((char)0x80);
    const uint8_t *rows[16];
    for (int l = 0; l < 16; l++)
        rows[l] = (const uint8_t *)w->data +
                  (size_t)(j0 + (l < nj ? l : 0)) * row_bytes;
    for (int b = 0; b < nb; b++) {
        uint8_t *out = panel + (size_t)b * P16_BLOCK_BYTES;
        float *d = (float *)(out + 8 * 64 + 64);
        __m256i row[16];
        for (int l = 0; l < 16; l++) {
            const uint8_t *blk = rows[l] + (size_t)b * KERN_Q8_0_BYTES;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            row[l] = l < nj ? _mm256_loadu_si256((const __m256i *)(blk + 2))
                            : _mm256_setzero_si256();
            d[l] = l < nj ? _cvtsh_ss(dh) : 0.0f;
        }
        /* r[m] = rows m and m+8: an 8x8 dword transpose in each half */
        __m512i r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm512_inserti64x4(_mm512_castsi256_si512(row[l]),
                                      row[l + 8], 1);
        __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]);
        __m512i t1 = _mm512_unpackhi_epi32(r[0], r[1]);
        __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]);
        __m512i t3 = _mm512_unpackhi_epi32(r[2], r[3]);
        __m512i t4 = _mm512_unpacklo_epi32(r[4], r[5]);
        __m512i t5 = _mm512_unpackhi_epi32(r[4], r[5]);
        __m512i t6 = _mm512_unpacklo_epi32(r[6], r[7]);
        __m512i t7 = _mm512_unpackhi_epi32(r[6], r[7]);
        __m512i u[8];
        u[0] = _mm512_unpacklo_epi64(t0, t2); /* dwords 0 | 4 */
        u[1] = _mm512_unpackhi_epi64(t0, t2); /* 1 | 5 */
        u[2] = _mm512_unpacklo_epi64(t1, t3); /* 2 | 6 */
        u[3] = _mm512_unpackhi_epi64(t1, t3); /* 3 | 7 */
        u[4] = _mm512_unpacklo_epi64(t4, t6);
        u[5] = _mm512_unpackhi_epi64(t4, t6);
        u[6] = _mm512_unpacklo_epi64(t5, t7);
        u[7] = _mm512_unpackhi_epi64(t5, t7);
        __m512i corr = _mm512_setzero_si512();
        for (int t = 0; t < 4; t++) {
            __m512i v0 = _mm512_permutex2var_epi64(u[t], lo_idx, u[t + 4]);
            __m512i v1 = _mm512_permutex2var_epi64(u[t], hi_idx, u[t + 4]);
            _mm512_store_si512((__m512i *)(out + 64 * t), v0);
            _mm512_store_si512((__m512i *)(out + 64 * (t + 4)), v1);
            corr = _mm512_dpbusd_epi32(corr, minus128, v0);
            corr = _mm512_dpbusd_epi32(corr, minus128, v1);
        }
        /* dpbusd(0x80, w) summed 128 * w; the start value is its negation */
        _mm512_store_si512((__m512i *)(out + 8 * 64),
                           _mm512_sub_epi32(_mm512_setzero_si512(), corr));
    }
}

#define Q8_MR 8

VNNI_INLINE void q8_tile16(const int mr, int nb, const uint8_t *xq, size_t k,
                           const float *xd, const uint8_t *panel,
                           __m512 res[Q8_MR])
{
    __m512 acc[Q8_MR];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wp = panel + (size_t)b * P16_BLOCK_BYTES;
        __m512i corr = _mm512_load_si512((const __m512i *)(wp + 8 * 64));
        __m512i isum[Q8_MR];
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++)
            isum[r] = corr;
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            __m512i wv = _mm512_load_si512((const __m512i *)(wp + 64 * t));
#pragma GCC unroll 8
            for (int r = 0; r < mr; r++) {
                int32_t x4;
                memcpy(&x4, xq + r * k + b * 32 + 4 * t, 4);
                isum[r] = _mm512_dpbusd_epi32(isum[r], _mm512_set1_epi32(x4),
                                              wv);
            }
        }
        __m512 dw = _mm512_load_ps((const float *)(wp + 8 * 64 + 64));
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[r * (size_t)nb + b]));
            s = _mm512_mul_ps(s, _mm512_cvtepi32_ps(isum[r]));
            acc[r] = _mm512_add_ps(acc[r], s);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        res[r] = acc[r];
}

/* Two panels (32 columns) at once, up to 6 rows: each broadcast activation
 * dword feeds two vpdpbusd and each panel vector loaded serves every row,
 * so a product needs 0.7 loads instead of 2 (q8_tile16 runs out of load
 * slots before VNNI slots on CPUs that issue two vpdpbusd a cycle).  Per
 * output the same integer block sums and the same float steps as
 * q8_tile16, so the same bits. */
#define Q8_MR32 6

VNNI_INLINE void q8_tile32(const int mr, int nb, const uint8_t *xq, size_t k,
                           const float *xd, const uint8_t *panel0,
                           const uint8_t *panel1, __m512 res[Q8_MR32][2])
{
    __m512 acc[Q8_MR32][2];
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wp0 = panel0 + (size_t)b * P16_BLOCK_BYTES;
        const uint8_t *wp1 = panel1 + (size_t)b * P16_BLOCK_BYTES;
        __m512i c0 = _mm512_load_si512((const __m512i *)(wp0 + 8 * 64));
        __m512i c1 = _mm512_load_si512((const __m512i *)(wp1 + 8 * 64));
        __m512i isum[Q8_MR32][2];
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            isum[r][0] = c0;
            isum[r][1] = c1;
        }
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            __m512i w0 = _mm512_load_si512((const __m512i *)(wp0 + 64 * t));
            __m512i w1 = _mm512_load_si512((const __m512i *)(wp1 + 64 * t));
#pragma GCC unroll 6
            for (int r = 0; r < mr; r++) {
                int32_t x4;
                memcpy(&x4, xq + r * k + b * 32 + 4 * t, 4);
                __m512i xv = _mm512_set1_epi32(x4);
                isum[r][0] = _mm512_dpbusd_epi32(isum[r][0], xv, w0);
                isum[r][1] = _mm512_dpbusd_epi32(isum[r][1], xv, w1);
            }
        }
        __m512 dw0 = _mm512_load_ps((const float *)(wp0 + 8 * 64 + 64));
        __m512 dw1 = _mm512_load_ps((const float *)(wp1 + 8 * 64 + 64));
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            __m512 dx = _mm512_set1_ps(xd[r * (size_t)nb + b]);
            __m512 s0 = _mm512_mul_ps(dw0, dx), s1 = _mm512_mul_ps(dw1, dx);
            s0 = _mm512_mul_ps(s0, _mm512_cvtepi32_ps(isum[r][0]));
            s1 = _mm512_mul_ps(s1, _mm512_cvtepi32_ps(isum[r][1]));
            acc[r][0] = _mm512_add_ps(acc[r][0], s0);
            acc[r][1] = _mm512_add_ps(acc[r][1], s1);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
        res[r][0] = acc[r][0];
        res[r][1] = acc[r][1];
    }
}

/* Few rows (m <= 16, a query): the panel above would be packed for every
 * call and used by one or two tiles, so packing would cost more than the
 * products.  Here the roles swap: the activations are transposed instead
 * (cheap: at most 16 rows) into an x panel whose vector (b, t) holds bytes
 * 4t..4t+3 of block b of row l in dword lane l, as signed int8, and the
 * weights are read in place, one broadcast dword at a time.  vpdpbusd
 * wants the unsigned operand there, so each weight dword is flipped to
 * w + 128; the sum then carries 128 * sum(x) per block, and the block's
 * start value is its negation, computed once per call.  The block sums
 * are the same exact integers and the float steps (dx * dw, times the
 * sum, added in block order, then the bias) the same operations on the
 * same values, so the bits equal those of the panel path. */
#define XP_BLOCK_BYTES (8 * 64 + 64 + 64)   /* 8 vectors, start, dx */
#define XS_JR 8                               /* weight rows per pass */

static VNNI void pack_x16(const kern_qx *qx, int m, int k, uint8_t *xp)
{
    int nb = k / KERN_Q8_0_BLOCK;
    memset(xp, 0, (size_t)nb * XP_BLOCK_BYTES);
    for (int l = 0; l < m; l++) {
        const uint8_t *row = qx->q + (size_t)l * k;
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = xp + (size_t)b * XP_BLOCK_BYTES;
            int32_t sum = 0;
            for (int t = 0; t < 8; t++) {
                uint32_t v;
                memcpy(&v, row + b * 32 + 4 * t, 4);
                v ^= 0x80808080u;               /* stored q + 128 -> q */
                memcpy(blk + 64 * t + 4 * l, &v, 4);
                for (int i = 0; i < 4; i++)
                    sum += (int8_t)(v >> (8 * i));
            }
            ((int32_t *)(blk + 8 * 64))[l] = -128 * sum;
            ((float *)(blk + 8 * 64 + 64))[l] = qx->d[(size_t)l * nb + b];
        }
    }
}

/* Weight dword t of block b of weight row r (of this pass), and that
 * block's scale: in place (q8_0 blocks, rows row_bytes apart) or from the
 * panels of kern_pack (row r in dword lane r of the panel's vectors,
 * scales already in float: the same values). */
VNNI_INLINE int32_t small_w4(const int packed, const uint8_t *w0,
                             size_t row_bytes, int b, int r, int t)
{
    int32_t w4;
    if (packed)
        memcpy(&w4, w0 + (size_t)b * P16_BLOCK_BYTES + 64 * t + 4 * r, 4);
    else
        memcpy(&w4, w0 + (size_t)b * KERN_Q8_0_BYTES + r * row_bytes + 2 +
                        4 * t, 4);
    return w4;
}

VNNI_INLINE float small_dw(const int packed, const uint8_t *w0,
                           size_t row_bytes, int b, int r)
{
    if (packed) {
        float d;
        memcpy(&d, w0 + (size_t)b * P16_BLOCK_BYTES + 8 * 64 + 64 + 4 * r, 4);
        return d;
    }
    uint16_t dh;
    memcpy(&dh, w0 + (size_t)b * KERN_Q8_0_BYTES + r * row_bytes, 2);
    return _cvtsh_ss(dh);
}

VNNI_INLINE void q8_small_rows(const int jr, const int packed, int nb,
                               const uint8_t *w0, size_t row_bytes,
                               int pf_next, const uint8_t *xp,
                               __m512 res[XS_JR])
{
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    __m512 acc[XS_JR];
#pragma GCC unroll 8
    for (int r = 0; r < jr; r++)
        acc[r] = _mm512_setzero_ps();
    size_t pf_off = (size_t)jr * row_bytes, pf_bytes = pf_next * row_bytes;
    size_t pf_step = (pf_bytes / nb + 64) & ~(size_t)63;
    for (int b = 0; b < nb; b++) {
        const uint8_t *xb = xp + (size_t)b * XP_BLOCK_BYTES;
        /* in place, the next rows' weights come from L3 or memory: ask
         * for them now, spread over this pass's blocks (packed panels
         * are one sequential stream, which the hardware prefetches) */
        if (!packed)
            for (size_t p = (size_t)b * pf_step;
                 p < (size_t)(b + 1) * pf_step && p < pf_bytes; p += 64)
                _mm_prefetch((const char *)(w0 + pf_off + p), _MM_HINT_T0);
        __m512i start = _mm512_load_si512((const __m512i *)(xb + 8 * 64));
        __m512i isum[XS_JR];
#pragma GCC unroll 8
        for (int r = 0; r < jr; r++)
            isum[r] = start;
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            __m512i xv = _mm512_load_si512((const __m512i *)(xb + 64 * t));
#pragma GCC unroll 8
            for (int r = 0; r < jr; r++) {
                int32_t w4 = small_w4(packed, w0, row_bytes, b, r, t);
                __m512i wv = _mm512_xor_si512(_mm512_set1_epi32(w4), flip);
                isum[r] = _mm512_dpbusd_epi32(isum[r], wv, xv);
            }
        }
        __m512 dx = _mm512_load_ps((const float *)(xb + 8 * 64 + 64));
#pragma GCC unroll 8
        for (int r = 0; r < jr; r++) {
            float dw = small_dw(packed, w0, row_bytes, b, r);
            __m512 s = _mm512_mul_ps(dx, _mm512_set1_ps(dw));
            s = _mm512_mul_ps(s, _mm512_cvtepi32_ps(isum[r]));
            acc[r] = _mm512_add_ps(acc[r], s);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < jr; r++)
        res[r] = acc[r];
}

#define SMALL_CASES(packed)                                                  \
    switch (jr) {                                                            \
    case 8: q8_small_rows(8, packed, nb, w0, row_bytes, next, xp, res); break; \
    case 4: q8_small_rows(4, packed, nb, w0, row_bytes, next, xp, res); break; \
    case 2: q8_small_rows(2, packed, nb, w0, row_bytes, next, xp, res); break; \
    default: q8_small_rows(1, packed, nb, w0, row_bytes, next, xp, res); break; \
    }

/* packed: w->packed, usable when n0 % 16 == 0 (then each pass's rows lie
 * in one panel: jr divides 16 and j stays a multiple of jr). */
static VNNI int linear_q8_vnni_small(const kern_qx *qx, int m,
                                     const kern_matrix *w, const float *bias,
                                     float *out, int n0, int n1,
                                     const uint8_t *packed)
{
    int k = w->cols, n = w->rows, nb = k / KERN_Q8_0_BLOCK;
    size_t row_bytes = kern_row_bytes(KERN_Q8_0, k);
    uint8_t *xp = kern__scratch(1, (size_t)nb * XP_BLOCK_BYTES);
    if (!xp)
        return -1;
    pack_x16(qx, m, k, xp);
    for (int j = n0; j < n1;) {
        int jr = n1 - j >= 8 ? 8 : n1 - j >= 4 ? 4 : n1 - j >= 2 ? 2 : 1;
        int next = n1 - j - jr < XS_JR ? n1 - j - jr : XS_JR;
        __m512 res[XS_JR];
        if (packed) {
            const uint8_t *w0 = packed + (size_t)(j / 16) * nb *
                                             P16_BLOCK_BYTES + 4 * (j % 16);
            SMALL_CASES(1)
        } else {
            const uint8_t *w0 = (const uint8_t *)w->data +
                                (size_t)j * row_bytes;
            SMALL_CASES(0)
        }
        for (int r = 0; r < jr; r++) {
            float col[16];
            __m512 v = res[r];
            if (bias)
                v = _mm512_add_ps(v, _mm512_set1_ps(bias[j + r]));
            _mm512_storeu_ps(col, v);
            for (int i = 0; i < m; i++)
                out[(size_t)i * n + j + r] = col[i];
        }
        j += jr;
    }
    return 0;
}

static VNNI int linear_q8_vnni(const float *x, const kern_qx *qx, int m,
                               const kern_matrix *w, const float *bias,
                               float *out, int n0, int n1)
{
    (void)x;
    int k = w->cols, n = w->rows, nb = k / KERN_Q8_0_BLOCK;
    size_t panel_bytes = (size_t)nb * P16_BLOCK_BYTES;
    const uint8_t *packed = n0 % 16 == 0 ? w->packed : NULL;
    if (m <= 16)
        return linear_q8_vnni_small(qx, m, w, bias, out, n0, n1, packed);
    uint8_t *scratch = NULL;
    if (!packed && !(scratch = kern__scratch(1, 2 * panel_bytes)))
        return -1;
    const uint8_t *panel = scratch, *panel1 = scratch + panel_bytes;
    int j0 = n0;
    for (; n1 - j0 > 16; j0 += 32) {             /* 32 columns (17..32) */
        int nj1 = n1 - j0 - 16 < 16 ? n1 - j0 - 16 : 16;
        if (packed) {
            panel = packed + (size_t)(j0 / 16) * panel_bytes;
            panel1 = panel + panel_bytes;
        } else {
            pack_panel16(w, j0, 16, nb, scratch);
            pack_panel16(w, j0 + 16, nj1, nb, scratch + panel_bytes);
        }
        __mmask16 mask1 = tail_mask16(nj1);
        __m512 b0 = bias ? _mm512_loadu_ps(bias + j0) : _mm512_setzero_ps();
        __m512 b1 = bias ? _mm512_maskz_loadu_ps(mask1, bias + j0 + 16)
                         : _mm512_setzero_ps();
        for (int i = 0; i < m;) {
            int mr = m - i >= 6 ? 6 : m - i >= 4 ? 4 : m - i >= 2 ? 2 : 1;
            const uint8_t *xq = qx->q + (size_t)i * k;
            const float *xd = qx->d + (size_t)i * nb;
            __m512 res[Q8_MR32][2];
            switch (mr) {
            case 6: q8_tile32(6, nb, xq, (size_t)k, xd, panel, panel1, res); break;
            case 4: q8_tile32(4, nb, xq, (size_t)k, xd, panel, panel1, res); break;
            case 2: q8_tile32(2, nb, xq, (size_t)k, xd, panel, panel1, res); break;
            default: q8_tile32(1, nb, xq, (size_t)k, xd, panel, panel1, res); break;
            }
            for (int r = 0; r < mr; r++) {
                float *o = out + (size_t)(i + r) * n + j0;
                __m512 v0 = bias ? _mm512_add_ps(res[r][0], b0) : res[r][0];
                __m512 v1 = bias ? _mm512_add_ps(res[r][1], b1) : res[r][1];
                _mm512_storeu_ps(o, v0);
                _mm512_mask_storeu_ps(o + 16, mask1, v1);
            }
            i += mr;
        }
    }
    for (; j0 < n1; j0 += 16) {                  /* the last 1..16 */
        int nj = n1 - j0 < 16 ? n1 - j0 : 16;
        if (packed)
            panel = packed + (size_t)(j0 / 16) * panel_bytes;
        else
            pack_panel16(w, j0, nj, nb, scratch);
        __mmask16 mask = tail_mask16(nj);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + j0)
                         : _mm512_setzero_ps();
        for (int i = 0; i < m;) {
            int mr = m - i >= 8 ? 8 : m - i >= 4 ? 4 : m - i >= 2 ? 2 : 1;
            const uint8_t *xq = qx->q + (size_t)i * k;
            const float *xd = qx->d + (size_t)i * nb;
            __m512 res[Q8_MR];
            switch (mr) {
            case 8: q8_tile16(8, nb, xq, (size_t)k, xd, panel, res); break;
            case 4: q8_tile16(4, nb, xq, (size_t)k, xd, panel, res); break;
            case 2: q8_tile16(2, nb, xq, (size_t)k, xd, panel, res); break;
            default: q8_tile16(1, nb, xq, (size_t)k, xd, panel, res); break;
            }
            for (int r = 0; r < mr; r++) {
                __m512 v = bias ? _mm512_add_ps(res[r], bv) : res[r];
                _mm512_mask_storeu_ps(out + (size_t)(i + r) * n + j0, mask, v);
            }
            i += mr;
        }
    }
    return 0;
}

/* ---- q8_128 with AMX --------------------------------------------------- */

/* AMX-INT8 (Sapphire Rapids and later): tdpbssd multiplies a tile of 16
 * activation rows x 64 signed bytes by 64 x 16 weights into 16 x 16
 * exact int32 sums in 16 cycles of the matrix unit, 8 times what two
 * VNNI pipes do.  The sums must leave the tile (a 1 KB store) before
 * they can be scaled; with q8_0's blocks of 32 that store and the float
 * steps per block cost more than the products and AMX measured no faster
 * than VNNI here.  Q8_128 blocks take two tile products per store.
 *
 * Weights are packed once (kern_pack) into panels of 16 rows: per block,
 * two halves of 16 x 64 bytes in tdpbssd's layout (row t: bytes
 * 4t..4t+3 of each of the 16 weight rows), then the 16 scales as floats.
 * Activations are signed codes read in place as A tiles (16 rows, k
 * bytes apart; qx_alloc pads the buffer so that 16 rows can always be
 * read, and the sums of rows past m are never used).  Per output the
 * float steps are the scalar reference's: acc += (dw * dx) * sum, block
 * by block, then the bias, so the bits are the reference's.  Block b's
 * sums are scaled two blocks after they are stored (a ring of four
 * buffers), so the vector units need not wait for the store and work
 * while the matrix unit does the next blocks.  Linux grants the tile
 * state per process (kern_init asks); the tile configuration is per
 * thread, so each call loads it and releases it on return. */
#define P128_BLOCK_BYTES (2 * 1024 + 64)

#define AMX_TARGET AVX512_TARGET ",avx512vnni,amx-tile,amx-int8"
#define AMX __attribute__((target(AMX_TARGET)))
#define AMX_INLINE static inline __attribute__((always_inline, \
                                                target(AMX_TARGET)))

typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* All 8 tiles 16 x 64 bytes.  q8_128: 0, 1 the sums of alternate blocks,
 * 2, 3 the activations of a block's two halves, 4, 5 its weights (6, 7
 * unused); attention_bf16_amx says what it puts where. */
static AMX void amx_configure(void)
{
    amx_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++)
        c.rows[t] = 16, c.colsb[t] = 64;
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&c);
}

/* As the scalar reference, 16 codes a vector: q = rint(x * 127 / amax). */
static AVX512 void quantize_x128_avx512(const float *x, int m, int k,
                                        const kern_qx *qx)
{
    int nb = k / KERN_Q8_128_BLOCK;
    for (int i = 0; i < m; i++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)i * k + b * KERN_Q8_128_BLOCK;
            __m512 v[8], mx = _mm512_setzero_ps();
            for (int t = 0; t < 8; t++) {
                v[t] = _mm512_loadu_ps(xb + 16 * t);
                mx = _mm512_max_ps(mx, _mm512_abs_ps(v[t]));
            }
            float amax = _mm512_reduce_max_ps(mx);
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            qx->d[(size_t)i * nb + b] = amax / 127.0f;
            __m512 idv = _mm512_set1_ps(id);
            int8_t *dst = (int8_t *)qx->q + (size_t)i * k +
                          b * KERN_Q8_128_BLOCK;
            for (int t = 0; t < 8; t++)
                _mm_storeu_si128((__m128i *)(dst + 16 * t),
                                 _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(
                                     _mm512_mul_ps(v[t], idv))));
        }
    }
}

static void pack_panel128(const kern_matrix *w, int j0, int nj, int nb,
                          uint8_t *panel)
{
    size_t row_bytes = kern_row_bytes(KERN_Q8_128, w->cols);
    for (int b = 0; b < nb; b++) {
        uint8_t *out = panel + (size_t)b * P128_BLOCK_BYTES;
        float *d = (float *)(out + 2048);
        memset(out, 0, P128_BLOCK_BYTES);
        for (int l = 0; l < nj; l++) {
            const uint8_t *blk = (const uint8_t *)w->data +
                                 (size_t)(j0 + l) * row_bytes +
                                 (size_t)b * KERN_Q8_128_BYTES;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            d[l] = kern_f16_to_f32(dh);
            for (int h = 0; h < 2; h++)
                for (int t = 0; t < 16; t++)
                    memcpy(out + h * 1024 + t * 64 + 4 * l,
                           blk + 2 + h * 64 + 4 * t, 4);
        }
    }
}

/* acc[r] += (dw * dx_r) * sums[r] for the first mr rows */
AMX_INLINE void amx_scale_add(const int mr, const int32_t *sums, __m512 dw,
                              const float *xd, int nb, int b, __m512 acc[16])
{
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        if (r < mr) {
            __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[r * (size_t)nb + b]));
            __m512i v = _mm512_load_si512((const __m512i *)(sums + 16 * r));
            s = _mm512_mul_ps(s, _mm512_cvtepi32_ps(v));
            acc[r] = _mm512_add_ps(acc[r], s);
        }
    }
}

/* Block b into sum tile t (tile numbers are pasted into the instruction
 * text, so literals). */
#define AMX_SUMS(t, b)                                                      \
    do {                                                                    \
        const uint8_t *wp = panel + (size_t)(b) * P128_BLOCK_BYTES;         \
        const uint8_t *xb = xq + (size_t)(b) * KERN_Q8_128_BLOCK;           \
        _tile_zero(t);                                                      \
        _tile_loadd(2, xb, k);                                              \
        _tile_loadd(4, wp, 64);                                             \
        _tile_dpbssd(t, 2, 4);                                              \
        _tile_loadd(3, xb + 64, k);                                         \
        _tile_loadd(5, wp + 1024, 64);                                      \
        _tile_dpbssd(t, 3, 5);                                              \
        _tile_stored(t, ring[(b) & 3], 64);                                 \
    } while (0)

#define AMX_SCALE(b)                                                        \
    amx_scale_add(mr, ring[(b) & 3],                                        \
                  _mm512_load_ps((const float *)(panel + (size_t)(b) *      \
                                 P128_BLOCK_BYTES + 2048)),                 \
                  xd, nb, b, acc)

AMX_INLINE void q128_tile(const int mr, int nb, const uint8_t *xq, size_t k,
                          const float *xd, const uint8_t *panel,
                          __m512 acc[16])
{
    _Alignas(64) int32_t ring[4][256];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++)
        acc[r] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) {
        AMX_SUMS(0, b);
        if (b >= 2)
            AMX_SCALE(b - 2);
        AMX_SUMS(1, b + 1);
        if (b >= 2)
            AMX_SCALE(b - 1);
    }
    if (b < nb)
        AMX_SUMS(0, b);
    for (int p = nb >= 2 ? (nb & ~1) - 2 : 0; p < nb; p++)
        AMX_SCALE(p);
}

/* Rows i0..i1-1, columns n0..n1-1 (n0 % 16 == 0). */
AMX_INLINE void q128_rows(int i0, int i1, const kern_qx *qx,
                          const kern_matrix *w, const float *bias,
                          float *out, int n0, int n1)
{
    int k = w->cols, n = w->rows, nb = k / KERN_Q8_128_BLOCK;
    size_t panel_bytes = (size_t)nb * P128_BLOCK_BYTES;
    for (int j0 = n0; j0 < n1; j0 += 16) {
        int nj = n1 - j0 < 16 ? n1 - j0 : 16;
        const uint8_t *panel = (const uint8_t *)w->packed +
                               (size_t)(j0 / 16) * panel_bytes;
        __mmask16 mask = tail_mask16(nj);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + j0)
                         : _mm512_setzero_ps();
        for (int i = i0; i < i1; i += 16) {
            int mr = i1 - i < 16 ? i1 - i : 16;
            const uint8_t *xq = qx->q + (size_t)i * k;
            const float *xd = qx->d + (size_t)i * nb;
            __m512 acc[16];
            if (mr == 16)
                q128_tile(16, nb, xq, (size_t)k, xd, panel, acc);
            else
                q128_tile(mr, nb, xq, (size_t)k, xd, panel, acc);
            for (int r = 0; r < mr; r++) {
                __m512 v = bias ? _mm512_add_ps(acc[r], bv) : acc[r];
                _mm512_mask_storeu_ps(out + (size_t)(i + r) * n + j0, mask, v);
            }
        }
    }
}

/* Rows in chunks, so that a chunk's codes and outputs stay in L2 while
 * every column panel passes over them: 2048 x 384 x 384 at 900 GOP/s in
 * chunks of 128, 620 in chunks of 256 or unchunked (this Xeon). */
#define AMX_ROW_CHUNK 128

static AMX int linear_q128_amx(const float *x, const kern_qx *qx, int m,
                               const kern_matrix *w, const float *bias,
                               float *out, int n0, int n1)
{
    (void)x;
    if (!w->packed || n0 % 16)
        return -1; /* the reference then: the same bits */
    amx_configure();
    for (int i0 = 0; i0 < m; i0 += AMX_ROW_CHUNK)
        q128_rows(i0, m - i0 < AMX_ROW_CHUNK ? m : i0 + AMX_ROW_CHUNK, qx, w,
                  bias, out, n0, n1);
    _tile_release();
    return 0;
}

/* ---- attention on AMX-BF16 ----------------------------------------------- */

/* kern_attention_bf16: one head with tdpbf16ps, which multiplies 16 rows
 * x 32 bfloat16 by 32 x 16 into 16 x 16 fp32 sums.  First Q rows are
 * converted to bfloat16 rows (A tiles, head dims zero-padded to 32); K is
 * converted and transposed per 16 keys so that B's row p holds dims 2p,
 * 2p+1 of each key; V is converted per 32 keys with rows 2t and 2t+1
 * interleaved, B's layout for E . V.  Then per 16 query rows, so that
 * their scores stay in L1: the scores as fp32 rows of l32 (len rounded up
 * to 32), all 16 maxima (independent chains), the exponentials converted
 * in place to bfloat16 (each row's first half; columns past len zero), E
 * . V from those rows as A tiles, and kern_attention's 1 / sum scaling.
 * Rows past len (up to 16) are zero and their results dropped.  Measured
 * on one head of 256 tokens (dh 32): 28 us against fp32's 84, of which
 * the exponentials are 14 us; they were 28 us as exp16_neg over all rows
 * after all scores, which is why exp2_16 and the per-block order. */
#define AMX_BF16_TARGET AMX_TARGET ",amx-bf16,avx512bf16"
#define AMX_BF16 __attribute__((target(AMX_BF16_TARGET)))
#define AMX_BF16_INLINE static inline __attribute__((always_inline, \
                                                     target(AMX_BF16_TARGET)))

static size_t r16(int n) { return ((size_t)n + 15) / 16 * 16; }
static size_t r32(int n) { return ((size_t)n + 31) / 32 * 32; }

static size_t attention_bf16_scratch_amx(int len, int dh)
{
    size_t l16 = r16(len), l32 = r32(len), dq = r32(dh), dv = r16(dh);
    return 16 * l32 +         /* one block of scores, then exponentials */
           l16 * dq / 2 +     /* Q as bfloat16 */
           l16 * dq / 2 +     /* K tiles */
           l32 * dv / 2 +     /* V tiles */
           16 * dv;           /* one block of context */
}

/* 32 floats from x (n of them valid, the rest zero) as 32 bfloat16. */
AMX_BF16_INLINE __m512i bf16_row32(const float *x, int n)
{
    __mmask16 lo = n >= 16 ? 0xffff : n <= 0 ? 0 : tail_mask16(n);
    __mmask16 hi = n >= 32 ? 0xffff : n <= 16 ? 0 : tail_mask16(n - 16);
    return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + 16),
                                        _mm512_maskz_loadu_ps(lo, x));
}

/* 2^z for z in [-126, 0] (clamped below; finite z): 2^floor(z) (by
 * vscalefps, which floors its exponent) times 2^f, f = z - floor(z) in
 * [0, 1) from vreduceps, by a degree-4 fit (relative error 2.7e-6, a
 * thousandth of bfloat16's rounding; results stay normal floats).  Nine
 * operations a vector with the caller's fmsub and sum; exp16_neg takes
 * fifteen. */
AMX_BF16_INLINE __m512 exp2_16(__m512 z)
{
    z = _mm512_max_ps(z, _mm512_set1_ps(-126.0f));
    __m512 f = _mm512_reduce_ps(z, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_set1_ps(0.0135341678f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.0520114601f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.241442755f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.693003833f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.00000262f));
    return _mm512_scalef_ps(p, z);
}

/* The largest of a row's len scores, in four chains of vmaxps. */
AMX_BF16_INLINE float row_max(const float *row, int len)
{
    __m512 m[4];
    for (int t = 0; t < 4; t++)
        m[t] = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 64 <= len; i += 64)
        for (int t = 0; t < 4; t++)
            m[t] = _mm512_max_ps(m[t], _mm512_loadu_ps(row + i + 16 * t));
    for (; i < len; i += 16) {
        __mmask16 k = len - i >= 16 ? 0xffff : tail_mask16(len - i);
        m[0] = _mm512_mask_max_ps(m[0], k, m[0], _mm512_maskz_loadu_ps(k, row + i));
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m[0], m[1]),
                                              _mm512_max_ps(m[2], m[3])));
}

/* One row of scores (fp32, len of them, then padding to l32) whose
 * largest is max: their exponentials e = exp(x * scale - max * scale)
 * (as 2^(x * scale log2 e - max * scale log2 e)),
 * over the row's first half as l32 bfloat16 (zero past len); returns
 * 1 / sum(e) of the unrounded e.  Chunk c's bfloat16 land on bytes
 * already read. */
AMX_BF16_INLINE float softmax_bf16_row(float *row, int len, int l32,
                                       float max, float scale)
{
    int full = len / 32 * 32, i = 0;
    const float l2e = 1.44269504089f; /* e^y = 2^(y log2 e) */
    const __m512 sv = _mm512_set1_ps(scale * l2e);
    const __m512 ms = _mm512_set1_ps(max * scale * l2e);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    uint16_t *out = (uint16_t *)row;
    for (; i < full; i += 32) {
        __m512 a = exp2_16(_mm512_fmsub_ps(_mm512_loadu_ps(row + i), sv, ms));
        __m512 b = exp2_16(_mm512_fmsub_ps(_mm512_loadu_ps(row + i + 16), sv,
                                            ms));
        s0 = _mm512_add_ps(s0, a);
        s1 = _mm512_add_ps(s1, b);
        _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
    for (; i < l32; i += 32) { /* the tail and zero padding */
        int n = len - i;
        __mmask16 lo = n >= 16 ? 0xffff : n <= 0 ? 0 : tail_mask16(n);
        __mmask16 hi = n >= 32 ? 0xffff : n <= 16 ? 0 : tail_mask16(n - 16);
        __m512 a = _mm512_maskz_mov_ps(lo, exp2_16(_mm512_fmsub_ps(
                                               _mm512_maskz_loadu_ps(lo, row + i),
                                               sv, ms)));
        __m512 b = _mm512_maskz_mov_ps(hi, exp2_16(_mm512_fmsub_ps(
                                               _mm512_maskz_loadu_ps(hi, row + i + 16),
                                               sv, ms)));
        s0 = _mm512_add_ps(s0, a);
        s1 = _mm512_add_ps(s1, b);
        _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
    return 1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static AMX_BF16 int attention_bf16_amx(int len, int dh, float scale,
                                       const float *q, const float *k,
                                       const float *v, int ld, float *ctx,
                                       int ldc, float *scratch)
{
    if (dh > KERN_ATTENTION_BF16_MAX_DH)
        return -1;
    const int l16 = (int)r16(len), l32 = (int)r32(len);
    const int nq = (int)r32(dh) / 32, nv = (int)r16(dh) / 16;
    const int dq = 32 * nq, ng = l16 / 16;
    float *s = scratch;
    uint16_t *qb = (uint16_t *)(s + (size_t)16 * l32);
    uint32_t *kb = (uint32_t *)(qb + (size_t)l16 * dq);
    uint32_t *vb = kb + (size_t)l16 * dq / 2;
    float *ct = (float *)(vb + (size_t)l32 * nv * 8);

    for (int i = 0; i < l16; i++)
        for (int c = 0; c < nq; c++)
            _mm512_storeu_si512(qb + (size_t)i * dq + 32 * c,
                                i < len ? bf16_row32(q + (size_t)i * ld +
                                                     32 * c, dh - 32 * c)
                                        : _mm512_setzero_si512());
    for (int g = 0; g < ng; g++)
        for (int c = 0; c < nq; c++) {
            __m512 r[16];
            for (int n = 0; n < 16; n++) {
                int j = 16 * g + n;
                r[n] = j < len ? _mm512_castsi512_ps(bf16_row32(
                                     k + (size_t)j * ld + 32 * c, dh - 32 * c))
                               : _mm512_setzero_ps();
            }
            transpose16(r);
            uint32_t *tile = kb + (size_t)(g * nq + c) * 256;
            for (int p = 0; p < 16; p++)
                _mm512_storeu_ps(tile + 16 * p, r[p]);
        }
    const __m512i mix = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
        23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int t = 0; t < l32 / 32; t++)
        for (int d = 0; d < nv; d++) {
            int w = dh - 16 * d < 16 ? dh - 16 * d : 16;
            __mmask16 m = tail_mask16(w);
            uint32_t *tile = vb + (size_t)(t * nv + d) * 256;
            for (int p = 0; p < 16; p++) {
                int j = 32 * t + 2 * p;
                __m512 a = j < len ? _mm512_maskz_loadu_ps(
                                         m, v + (size_t)j * ld + 16 * d)
                                   : _mm512_setzero_ps();
                __m512 b = j + 1 < len ? _mm512_maskz_loadu_ps(
                                             m, v + (size_t)(j + 1) * ld +
                                                    16 * d)
                                       : _mm512_setzero_ps();
                __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(b, a);
                _mm512_storeu_si512(tile + 16 * p,
                                    _mm512_permutexvar_epi16(mix, ab));
            }
        }

    amx_configure();
    const size_t ss = (size_t)l32 * sizeof(float);
    for (int i0 = 0; i0 < l16; i0 += 16) {
        /* scores of rows i0..i0+15: C tiles 0-3, Q in 4 (5), K in 6, 7 */
        const uint16_t *qa = qb + (size_t)i0 * dq;
        _tile_loadd(4, qa, dq * 2);
        if (nq == 2)
            _tile_loadd(5, qa + 32, dq * 2);
#define KT(g, c) (kb + (size_t)((g) * nq + (c)) * 256)
#define SCORE(ct, g)                                                        \
    do {                                                                    \
        _tile_zero(ct);                                                     \
        _tile_loadd(6, KT(g, 0), 64);                                       \
        _tile_dpbf16ps(ct, 4, 6);                                           \
        if (nq == 2) {                                                      \
            _tile_loadd(7, KT(g, 1), 64);                                   \
            _tile_dpbf16ps(ct, 5, 7);                                       \
        }                                                                   \
        _tile_stored(ct, s + 16 * (g), ss);                                 \
    } while (0)
        int g = 0;
        for (; g + 4 <= ng; g += 4) {
            SCORE(0, g);
            SCORE(1, g + 1);
            SCORE(2, g + 2);
            SCORE(3, g + 3);
        }
        for (; g < ng; g++)
            SCORE(0, g);
#undef SCORE
#undef KT
        int rows = len - i0 < 16 ? len - i0 : 16;
        /* all maxima first: each is a chain the next row need not wait on */
        float inv[16], mx[16];
        for (int r = 0; r < rows; r++)
            mx[r] = row_max(s + (size_t)r * l32, len);
        for (int r = 0; r < 16; r++) {
            float *row = s + (size_t)r * l32;
            if (r < rows)
                inv[r] = softmax_bf16_row(row, len, l32, mx[r], scale);
            else
                memset(row, 0, (size_t)l32 * 2);
        }
        /* context: E tile in 4, V in 6, 7, sums in 0, 1 */
        for (int d = 0; d < nv; d += 2) {
            int two = d + 1 < nv;
            _tile_zero(0);
            _tile_zero(1);
            for (int t = 0; t < l32 / 32; t++) {
                _tile_loadd(4, (const char *)s + 64 * t, ss);
                _tile_loadd(6, vb + (size_t)(t * nv + d) * 256, 64);
                _tile_dpbf16ps(0, 4, 6);
                if (two) {
                    _tile_loadd(7, vb + (size_t)(t * nv + d + 1) * 256, 64);
                    _tile_dpbf16ps(1, 4, 7);
                }
            }
            _tile_stored(0, ct + 16 * d, nv * 64);
            if (two)
                _tile_stored(1, ct + 16 * (d + 1), nv * 64);
        }
        for (int r = 0; r < rows; r++) {
            __m512 f = _mm512_set1_ps(inv[r]);
            for (int d = 0; d < nv; d++) {
                int w = dh - 16 * d < 16 ? dh - 16 * d : 16;
                _mm512_mask_storeu_ps(
                    ctx + (size_t)(i0 + r) * ldc + 16 * d, tail_mask16(w),
                    _mm512_mul_ps(_mm512_loadu_ps(ct + (size_t)r * 16 * nv +
                                                  16 * d),
                                  f));
            }
        }
    }
    _tile_release();
    return 0;
}

/* kern_pack: every panel of w, in order, as pack_panel16 makes them. */
static VNNI size_t pack_bytes_vnni(const kern_matrix *w)
{
    if (w->type != KERN_Q8_0)
        return 0;
    return (size_t)((w->rows + 15) / 16) * (w->cols / KERN_Q8_0_BLOCK) *
           P16_BLOCK_BYTES;
}

static VNNI void pack_vnni(const kern_matrix *w, void *dst)
{
    int nb = w->cols / KERN_Q8_0_BLOCK;
    for (int j0 = 0; j0 < w->rows; j0 += 16)
        pack_panel16(w, j0, w->rows - j0 < 16 ? w->rows - j0 : 16, nb,
                     (uint8_t *)dst + (size_t)(j0 / 16) * nb *
                                          P16_BLOCK_BYTES);
}

const kern_ops kern__ops_avx512 = {
    .name = "avx512",
    .gemm_nt = gemm_nt_avx512,
    .gemm_nn = gemm_nn_avx512,
    .linear_f = linear_f_avx512,
    .quantize_x = kern__avx2_quantize_x,
    .linear_q8 = kern__avx2_linear_q8,
    .layernorm = layernorm_avx512,
    .gelu = gelu_avx512,
    .softmax = kern__avx2_softmax,
    .softmax_exp = softmax_exp_avx512,
    .transpose_kt = transpose_kt_avx512,
    .scale = kern__avx2_scale,
    .add = add_avx512,
    .dot = kern__avx2_dot,
};

/* The entries the VNNI and AMX tables share. */
#define VNNI_OPS                                                            \
    .gemm_nt = gemm_nt_avx512, .gemm_nn = gemm_nn_avx512,                   \
    .linear_f = linear_f_avx512, .quantize_x = quantize_x_vnni,             \
    .linear_q8 = linear_q8_vnni,                                            \
    .layernorm = layernorm_avx512, .gelu = gelu_avx512,                     \
    .softmax = kern__avx2_softmax, .softmax_exp = softmax_exp_avx512,       \
    .transpose_kt = transpose_kt_avx512, .scale = kern__avx2_scale,         \
    .add = add_avx512, .dot = kern__avx2_dot

const kern_ops kern__ops_avx512vnni = {
    .name = "avx512vnni",
    .pack_bytes = pack_bytes_vnni,
    .pack = pack_vnni,
    VNNI_OPS,
};

/* VNNI's table, with the q8_128 products on AMX. */
static AMX size_t pack_bytes_amx(const kern_matrix *w)
{
    if (w->type == KERN_Q8_128)
        return (size_t)((w->rows + 15) / 16) *
               (w->cols / KERN_Q8_128_BLOCK) * P128_BLOCK_BYTES;
    return pack_bytes_vnni(w);
}

static AMX void pack_amx(const kern_matrix *w, void *dst)
{
    if (w->type != KERN_Q8_128) {
        pack_vnni(w, dst);
        return;
    }
    int nb = w->cols / KERN_Q8_128_BLOCK;
    for (int j0 = 0; j0 < w->rows; j0 += 16)
        pack_panel128(w, j0, w->rows - j0 < 16 ? w->rows - j0 : 16, nb,
                      (uint8_t *)dst + (size_t)(j0 / 16) * nb *
                                           P128_BLOCK_BYTES);
}

const kern_ops kern__ops_amx = {
    .name = "amx",
    .quantize_x128 = quantize_x128_avx512,
    .linear_q128 = linear_q128_amx,
    .pack_bytes = pack_bytes_amx,
    .pack = pack_amx,
    .attention_bf16 = attention_bf16_amx,
    .attention_bf16_scratch = attention_bf16_scratch_amx,
    VNNI_OPS,
};

#endif /* __x86_64__ */
