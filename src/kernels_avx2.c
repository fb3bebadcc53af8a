/* kernels_avx2.c - the AVX2 + FMA + F16C path (see kernels.h).
 *
 * Every function carries a target attribute instead of the file being
 * built with -mavx2, so the rest of the binary stays baseline x86-64 and
 * kernels.c only calls in here after CPUID said yes.
 *
 * fp32 products (kern_gemm_nt, kern_linear on F32/F16 weights) take dot
 * products straight along the rows of A and of the weights, 3 rows x 4
 * rows per register tile, one 8-lane accumulator per output, reduced at
 * the end.  No packing: weights are read in place (F16 converted in
 * registers with vcvtph2ps), which suits the small M of one query, and
 * every output gets the same operations whatever tile it falls in - the
 * determinism kernels.h promises.  kern_gemm_nn broadcasts A and streams
 * rows of B, 6 rows x 16 columns per tile.
 *
 * q8_0: activations are quantized per block of 32 (kern_qx).  Eight
 * weight rows at a time are transposed into a panel (per block, eight
 * vectors holding 4 consecutive int8 of each of the 8 rows) so one
 * maddubs+madd step yields partial sums for 8 outputs; each block's
 * integer sum is exact, then scaled in float exactly as the scalar
 * reference does.  maddubs needs an unsigned operand, hence the sign
 * trick: |w| times x with w's sign (|x|, |w| <= 128 cannot saturate).
 *
 * The AVX-512 paths use softmax, scale and dot from here; they have their
 * own 16-lane gelu, softmax_exp, layernorm and add (faster on Xeons).
 */
#include "kernels_isa.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, \
                                                 target("avx2,fma,f16c")))

static const int32_t mask_src[16] = { -1, -1, -1, -1, -1, -1, -1, -1,
                                      0, 0, 0, 0, 0, 0, 0, 0 };

/* Lanes 0..n-1 set, n in 0..8. */
AVX2_INLINE __m256i tail_mask(int n)
{
    return _mm256_loadu_si256((const __m256i *)(mask_src + 8 - n));
}

AVX2_INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
                          _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Lane i = hsum8(v[i]) for 8 vectors at once, bit for bit: the same
 * pairs (i + i+4, i + i+2, 0 + 1) with the vectors interleaved, so a sum
 * does not depend on which accumulators shared the reduction. */
AVX2_INLINE __m256 reduce8(const __m256 v[8])
{
    __m256 t[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* [v2i: i + i+4 | v2i+1: i + i+4] */
        t[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
    /* half h: 2 lanes each of v_h, v_2+h (w0) and v_4+h, v_6+h (w1) */
    __m256 w0 = _mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 w1 = _mm256_add_ps(_mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2)));
    /* lane 4h + j holds the sum of v_h+2j */
    __m256 r = _mm256_add_ps(_mm256_shuffle_ps(w0, w1, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm256_shuffle_ps(w0, w1, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 8 elements of a weight row (f32 or f16) as floats. */
AVX2_INLINE __m256 load_w(const void *row, int p, int f16)
{
    if (f16)
        return _mm256_cvtph_ps(
            _mm_loadu_si128((const __m128i *)((const uint16_t *)row + p)));
    return _mm256_loadu_ps((const float *)row + p);
}

/* The last n < 8 elements, zero-padded. */
AVX2_INLINE __m256 load_w_tail(const void *row, int p, int n, int f16)
{
    if (f16) {
        uint16_t tmp[8] = { 0 };
        memcpy(tmp, (const uint16_t *)row + p, (size_t)n * 2);
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
    }
    return _mm256_maskload_ps((const float *)row + p, tail_mask(n));
}

/* ---- fp32: C = A . W^T ------------------------------------------------ */

#define NT_MR 3
#define NT_NR 4

/* res[r][q] = A row r . W row q over k, for r < mr (a compile-time
 * constant after inlining). */
AVX2_INLINE void nt_tile(const int mr, int k, const float *a, size_t lda,
                         const void *const w[NT_NR], int f16,
                         float res[NT_MR][NT_NR])
{
    __m256 acc[NT_MR][NT_NR];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NT_NR; q++)
            acc[r][q] = _mm256_setzero_ps();
    int p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 av[NT_MR];
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++)
            av[r] = _mm256_loadu_ps(a + r * lda + p);
#pragma GCC unroll 4
        for (int q = 0; q < NT_NR; q++) {
            __m256 wv = load_w(w[q], p, f16);
#pragma GCC unroll 4
            for (int r = 0; r < mr; r++)
                acc[r][q] = _mm256_fmadd_ps(av[r], wv, acc[r][q]);
        }
    }
    if (p < k) {
        int n = k - p;
        __m256 av[NT_MR];
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++)
            av[r] = _mm256_maskload_ps(a + r * lda + p, tail_mask(n));
#pragma GCC unroll 4
        for (int q = 0; q < NT_NR; q++) {
            __m256 wv = load_w_tail(w[q], p, n, f16);
#pragma GCC unroll 4
            for (int r = 0; r < mr; r++)
                acc[r][q] = _mm256_fmadd_ps(av[r], wv, acc[r][q]);
        }
    }
    /* Reduce the accumulators 8 at a time (padding with zeros). */
    __m256 flat[16];
    float sums[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        flat[i] = i < mr * NT_NR ? acc[i / NT_NR][i % NT_NR]
                                 : _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int g = 0; g < (mr * NT_NR + 7) / 8; g++)
        _mm256_storeu_ps(sums + 8 * g, reduce8(flat + 8 * g));
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NT_NR; q++)
            res[r][q] = sums[r * NT_NR + q];
}

/* One register tile at rows i.., columns j.. (clamped to je), stored
 * with the bias. */
static inline __attribute__((always_inline, target("avx2,fma,f16c"))) void
nt_tile_store(int mr, int k, const float *ai, int lda, const void *w,
              size_t w_stride, int f16, const float *bias, float *c, int ldc,
              int i, int j, int je)
{
    const void *wr[NT_NR];
    for (int q = 0; q < NT_NR; q++) {
        int row = j + q < je ? j + q : je - 1;
        wr[q] = (const char *)w + (size_t)row * w_stride;
    }
    float res[NT_MR][NT_NR];
    if (f16) {
        if (mr == 3) nt_tile(3, k, ai, lda, wr, 1, res);
        else if (mr == 2) nt_tile(2, k, ai, lda, wr, 1, res);
        else nt_tile(1, k, ai, lda, wr, 1, res);
    } else {
        if (mr == 3) nt_tile(3, k, ai, lda, wr, 0, res);
        else if (mr == 2) nt_tile(2, k, ai, lda, wr, 0, res);
        else nt_tile(1, k, ai, lda, wr, 0, res);
    }
    int nq = je - j < NT_NR ? je - j : NT_NR;
    for (int r = 0; r < mr; r++) {
        float *ci = c + (size_t)(i + r) * ldc + j;
        for (int q = 0; q < nq; q++)
            ci[q] = bias ? res[r][q] + bias[j + q] : res[r][q];
    }
}

/* C[i][j] for i < m, n0 <= j < n1, W rows `w_stride` bytes apart.
 * Blocked for cache: a block of A rows (~256 KB) stays in L2 while a
 * block of W rows (~96 KB) passes over it, each row tile of A (in L1)
 * meeting every W tile of the block.  Blocking changes no output's
 * arithmetic. */
static AVX2 void nt_driver(int m, int n0, int n1, int k, const float *a,
                           int lda, const void *w, size_t w_stride, int f16,
                           const float *bias, float *c, int ldc)
{
    size_t stride = w_stride ? w_stride : 1;
    int w_block = (int)(98304 / stride) / NT_NR * NT_NR;
    int a_block = (int)(262144 / ((size_t)(k > 0 ? k : 1) * 4)) / NT_MR * NT_MR;
    w_block = w_block < NT_NR ? NT_NR : w_block;
    a_block = a_block < NT_MR ? NT_MR : a_block;
    for (int ib = 0; ib < m; ib += a_block) {
        int ie = ib + a_block < m ? ib + a_block : m;
        for (int jb = n0; jb < n1; jb += w_block) {
            int je = jb + w_block < n1 ? jb + w_block : n1;
            for (int i = ib; i < ie;) {
                int mr = ie - i >= 3 ? 3 : ie - i;
                const float *ai = a + (size_t)i * lda;
                for (int j = jb; j < je; j += NT_NR)
                    nt_tile_store(mr, k, ai, lda, w, w_stride, f16, bias, c,
                                  ldc, i, j, je);
                i += mr;
            }
        }
    }
}

static AVX2 void gemm_nt_avx2(int m, int n, int k, const float *a, int lda,
                              const float *b, int ldb, float *c, int ldc)
{
    nt_driver(m, 0, n, k, a, lda, b, (size_t)ldb * sizeof(float), 0, NULL,
              c, ldc);
}

static AVX2 void linear_f_avx2(const float *x, int m, const kern_matrix *w,
                               const float *bias, float *out, int n0, int n1)
{
    int f16 = w->type == KERN_F16;
    nt_driver(m, n0, n1, w->cols, x, w->cols, w->data,
              kern_row_bytes(w->type, w->cols), f16, bias, out, w->rows);
}

/* ---- fp32: C = A . B -------------------------------------------------- */

#define NN_MR 6

/* Rows i..i+mr-1, columns j..j+nc-1 (nc <= 16) of C = A . B.  `full`
 * (nc == 16) is a compile-time constant after inlining. */
AVX2_INLINE void nn_tile(const int mr, const int full, int nc, int k,
                         const float *a, size_t lda, const float *b,
                         size_t ldb, float *c, size_t ldc)
{
    __m256 acc[NN_MR][2];
    __m256i m0 = tail_mask(nc < 8 ? nc : 8);
    __m256i m1 = tail_mask(nc > 8 ? nc - 8 : 0);
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *bp = b + (size_t)p * ldb;
        __m256 b0 = full ? _mm256_loadu_ps(bp) : _mm256_maskload_ps(bp, m0);
        __m256 b1 = full ? _mm256_loadu_ps(bp + 8)
                         : _mm256_maskload_ps(bp + 8, m1);
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            __m256 av = _mm256_broadcast_ss(a + r * lda + p);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        if (full) {
            _mm256_storeu_ps(cr, acc[r][0]);
            _mm256_storeu_ps(cr + 8, acc[r][1]);
        } else {
            _mm256_maskstore_ps(cr, m0, acc[r][0]);
            _mm256_maskstore_ps(cr + 8, m1, acc[r][1]);
        }
    }
}

#define NN_TILE_CASES(full)                                                 \
    switch (mr) {                                                           \
    case 6: nn_tile(6, full, nc, k, ai, lda, bj, ldb, cij, ldc); break;     \
    case 5: nn_tile(5, full, nc, k, ai, lda, bj, ldb, cij, ldc); break;     \
    case 4: nn_tile(4, full, nc, k, ai, lda, bj, ldb, cij, ldc); break;     \
    case 3: nn_tile(3, full, nc, k, ai, lda, bj, ldb, cij, ldc); break;     \
    case 2: nn_tile(2, full, nc, k, ai, lda, bj, ldb, cij, ldc); break;     \
    default: nn_tile(1, full, nc, k, ai, lda, bj, ldb, cij, ldc); break;    \
    }

static AVX2 void gemm_nn_avx2(int m, int n, int k, const float *a, int lda,
                              const float *b, int ldb, float *c, int ldc)
{
    for (int i = 0; i < m; i += NN_MR) {
        int mr = m - i < NN_MR ? m - i : NN_MR;
        const float *ai = a + (size_t)i * lda;
        for (int j = 0; j < n; j += 16) {
            int nc = n - j < 16 ? n - j : 16;
            const float *bj = b + j;
            float *cij = c + (size_t)i * ldc + j;
            if (nc == 16) {
                NN_TILE_CASES(1)
            } else {
                NN_TILE_CASES(0)
            }
        }
    }
}

/* ---- q8_0 ------------------------------------------------------------- */

/* Quantize rows of x to int8 codes, bit-identical to quantize_block_x in
 * kernels.c: the max is exact, 127/amax and amax/127 are the same scalar
 * IEEE divisions, and cvtps rounds to nearest even like lrintf. */
void AVX2 kern__avx2_quantize_x(const float *x, int m, int k,
                                const kern_qx *qx)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int nb = k / KERN_Q8_0_BLOCK;
    for (int i = 0; i < m; i++) {
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)i * k + b * 32;
            __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
            __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
            __m256 mx = _mm256_max_ps(
                _mm256_max_ps(_mm256_andnot_ps(sign, v0),
                              _mm256_andnot_ps(sign, v1)),
                _mm256_max_ps(_mm256_andnot_ps(sign, v2),
                              _mm256_andnot_ps(sign, v3)));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx),
                                  _mm256_extractf128_ps(mx, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            float amax = _mm_cvtss_f32(h);
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            qx->d[(size_t)i * nb + b] = amax / 127.0f;
            __m256 idv = _mm256_set1_ps(id);
            __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, idv));
            __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, idv));
            __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, idv));
            __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, idv));
            __m256i q = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1),
                                           _mm256_packs_epi32(q2, q3));
            q = _mm256_permutevar8x32_epi32(q, order);
            _mm256_storeu_si256((__m256i *)(qx->q + (size_t)i * k + b * 32),
                                q);
        }
    }
}

/* Panel of 8 weight rows: per block, 8 vectors (vector t holds bytes
 * 4t..4t+3 of each row's block, row l in dword lane l), then the 8 row
 * scales as floats.  Rows past n1 are zero. */
#define P8_BLOCK_BYTES (8 * 32 + 8 * 4)

static AVX2 void pack_panel8(const kern_matrix *w, int j0, int nj, int nb,
                             uint8_t *panel)
{
    size_t row_bytes = kern_row_bytes(KERN_Q8_0, w->cols);
    const uint8_t *rows[8];
    for (int l = 0; l < 8; l++)
        rows[l] = (const uint8_t *)w->data +
                  (size_t)(j0 + (l < nj ? l : 0)) * row_bytes;
    for (int b = 0; b < nb; b++) {
        __m256i r[8];
        float *d = (float *)(panel + (size_t)b * P8_BLOCK_BYTES + 256);
        for (int l = 0; l < 8; l++) {
            const uint8_t *blk = rows[l] + (size_t)b * KERN_Q8_0_BYTES;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            r[l] = l < nj ? _mm256_loadu_si256((const __m256i *)(blk + 2))
                          : _mm256_setzero_si256();
            d[l] = l < nj ? _cvtsh_ss(dh) : 0.0f;
        }
        __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        __m256i t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        __m256i t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        __m256i u0 = _mm256_unpacklo_epi64(t0, t2); /* dwords 0 | 4 */
        __m256i u1 = _mm256_unpackhi_epi64(t0, t2); /* 1 | 5 */
        __m256i u2 = _mm256_unpacklo_epi64(t1, t3); /* 2 | 6 */
        __m256i u3 = _mm256_unpackhi_epi64(t1, t3); /* 3 | 7 */
        __m256i u4 = _mm256_unpacklo_epi64(t4, t6);
        __m256i u5 = _mm256_unpackhi_epi64(t4, t6);
        __m256i u6 = _mm256_unpacklo_epi64(t5, t7);
        __m256i u7 = _mm256_unpackhi_epi64(t5, t7);
        __m256i *out = (__m256i *)(panel + (size_t)b * P8_BLOCK_BYTES);
        _mm256_store_si256(out + 0, _mm256_permute2x128_si256(u0, u4, 0x20));
        _mm256_store_si256(out + 1, _mm256_permute2x128_si256(u1, u5, 0x20));
        _mm256_store_si256(out + 2, _mm256_permute2x128_si256(u2, u6, 0x20));
        _mm256_store_si256(out + 3, _mm256_permute2x128_si256(u3, u7, 0x20));
        _mm256_store_si256(out + 4, _mm256_permute2x128_si256(u0, u4, 0x31));
        _mm256_store_si256(out + 5, _mm256_permute2x128_si256(u1, u5, 0x31));
        _mm256_store_si256(out + 6, _mm256_permute2x128_si256(u2, u6, 0x31));
        _mm256_store_si256(out + 7, _mm256_permute2x128_si256(u3, u7, 0x31));
    }
}

#define Q8_MR 4

/* res[r][l] for rows r < mr of the quantized activations and the 8
 * panel rows.  Per block: exact int32 sums, then
 * acc += (d_w * d_x) * (float)isum, the reference's order. */
AVX2_INLINE void q8_tile8(const int mr, int nb, const uint8_t *xq, size_t k,
                          const float *xd, const uint8_t *panel,
                          __m256 res[Q8_MR])
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[Q8_MR];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
        acc[r] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const __m256i *wp = (const __m256i *)(panel + (size_t)b * P8_BLOCK_BYTES);
        __m256i isum[Q8_MR];
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++)
            isum[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            __m256i wv = _mm256_load_si256(wp + t);
            __m256i aw = _mm256_abs_epi8(wv);
#pragma GCC unroll 4
            for (int r = 0; r < mr; r++) {
                int32_t x4;
                memcpy(&x4, xq + r * k + b * 32 + 4 * t, 4);
                __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(x4), wv);
                __m256i p16 = _mm256_maddubs_epi16(aw, xs);
                isum[r] = _mm256_add_epi32(isum[r],
                                           _mm256_madd_epi16(p16, ones));
            }
        }
        __m256 dw = _mm256_load_ps((const float *)(wp + 8));
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(xd[r * (size_t)nb + b]));
            s = _mm256_mul_ps(s, _mm256_cvtepi32_ps(isum[r]));
            acc[r] = _mm256_add_ps(acc[r], s);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
        res[r] = acc[r];
}

int AVX2 kern__avx2_linear_q8(const float *x, const kern_qx *qx, int m,
                              const kern_matrix *w, const float *bias,
                              float *out, int n0, int n1)
{
    (void)x;
    int k = w->cols, n = w->rows, nb = k / KERN_Q8_0_BLOCK;
    uint8_t *panel = kern__scratch(1, (size_t)nb * P8_BLOCK_BYTES);
    if (!panel)
        return -1;
    for (int j0 = n0; j0 < n1; j0 += 8) {
        int nj = n1 - j0 < 8 ? n1 - j0 : 8;
        pack_panel8(w, j0, nj, nb, panel);
        for (int i = 0; i < m;) {
            int mr = m - i >= 4 ? 4 : m - i >= 2 ? 2 : 1;
            const uint8_t *xq = qx->q + (size_t)i * k;
            const float *xd = qx->d + (size_t)i * nb;
            __m256 res[Q8_MR];
            if (mr == 4) q8_tile8(4, nb, xq, (size_t)k, xd, panel, res);
            else if (mr == 2) q8_tile8(2, nb, xq, (size_t)k, xd, panel, res);
            else q8_tile8(1, nb, xq, (size_t)k, xd, panel, res);
            for (int r = 0; r < mr; r++) {
                float v[8];
                _mm256_storeu_ps(v, res[r]);
                float *o = out + (size_t)(i + r) * n + j0;
                for (int l = 0; l < nj; l++)
                    o[l] = bias ? v[l] + bias[j0 + l] : v[l];
            }
            i += mr;
        }
    }
    return 0;
}

/* ---- element-wise ----------------------------------------------------- */

AVX2_INLINE float hmax8(__m256 v)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v),
                          _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* Cephes' reduction x = n ln 2 + r and polynomial: e^r, with n in *n. */
AVX2_INLINE __m256 exp8_reduced(__m256 x, __m256 *n)
{
    *n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504089f)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(*n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(*n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    return p;
}

/* exp(x) for the softmax: Cephes' polynomial on x - n ln 2, about 1 ulp;
 * results below 2^-126 are flushed to 0. */
AVX2_INLINE __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654475f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.37626266f));
    __m256 n, p = exp8_reduced(x, &n);
    /* 2^n, n in [-126, 128]: split so neither factor overflows */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i h = _mm256_srai_epi32(ni, 1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23));
    p = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_andnot_ps(under, p);
}

/* erf(x): the rational approximation used by Eigen and XLA, x clamped to
 * [-4, 4] (erf is +-1 in float beyond), a few ulp. */
AVX2_INLINE __m256 erf8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)),
                      _mm256_set1_ps(4.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(p, x);
    __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(p, q);
}

void AVX2 kern__avx2_gelu(float *x, size_t n)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 rsqrt2 = _mm256_set1_ps((float)M_SQRT1_2);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = erf8(_mm256_mul_ps(v, rsqrt2));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v),
                                              _mm256_add_ps(one, e)));
    }
    if (i < n) {
        __m256i mask = tail_mask((int)(n - i));
        __m256 v = _mm256_maskload_ps(x + i, mask);
        __m256 e = erf8(_mm256_mul_ps(v, rsqrt2));
        _mm256_maskstore_ps(x + i, mask, _mm256_mul_ps(_mm256_mul_ps(half, v),
                                                       _mm256_add_ps(one, e)));
    }
}

void AVX2 kern__avx2_softmax(float *x, int n, float scale)
{
    __m256 mx = _mm256_set1_ps(-INFINITY), sv = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
        _mm256_storeu_ps(x + i, y);
        mx = _mm256_max_ps(mx, y);
    }
    float max = hmax8(mx);
    for (; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max)
            max = x[i];
    }
    __m256 mv = _mm256_set1_ps(max), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), mv));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(x + i, mask, e);
        sum = _mm256_add_ps(sum, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum8(sum));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++)
        x[i] *= _mm256_cvtss_f32(inv);
}

/* exp(x) for x <= 0 (a softmax's x - max): exp8's reduction and
 * polynomial, with 2^n applied by adding n to the exponent field (exact
 * while the result is normal, hence the flush below -87, where exp8 flushes
 * below -87.34), and no upper clamp.  So the same values as exp8 for x in
 * [-87, 0], in fewer operations. */
AVX2_INLINE __m256 exp8_neg(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 n, p = exp8_reduced(x, &n);
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    p = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
    return _mm256_andnot_ps(under, p);
}

/* For attention: the exponentials of kern__avx2_softmax, left
 * unnormalised, and 1 / their sum; the caller scales the context rows
 * instead of the n probabilities (32 or 64 products a row instead of
 * n).  x * scale is not stored first: its maximum is max(x) * scale
 * (rounding is monotonic, scale > 0), so the exponentials are the same
 * values the softmax computes. */
float AVX2 kern__avx2_softmax_exp(float *x, int n, float scale)
{
    __m256 mx = _mm256_set1_ps(-INFINITY), sv = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    float max = hmax8(mx);
    for (; i < n; i++)
        if (x[i] > max)
            max = x[i];
    __m256 mv = _mm256_set1_ps(max * scale), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
        __m256 e = exp8_neg(_mm256_sub_ps(y, mv));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        __m256 y = _mm256_mul_ps(_mm256_maskload_ps(x + i, mask), sv);
        __m256 e = exp8_neg(_mm256_sub_ps(y, mv));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(x + i, mask, e);
        sum = _mm256_add_ps(sum, e);
    }
    return 1.0f / hsum8(sum);
}

void AVX2 kern__avx2_scale(float *y, size_t n, float f)
{
    __m256 fv = _mm256_set1_ps(f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), fv));
    for (; i < n; i++)
        y[i] *= f;
}

/* Sum of 8 floats widened to double. */
AVX2_INLINE __m256d widen_add(__m256d acc, __m256 v)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

AVX2_INLINE double hsum4d(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v),
                           _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* Mean and variance accumulated in double like the reference. */
void AVX2 kern__avx2_layernorm(float *x, int n, const float *gamma,
                               const float *beta, float eps)
{
    __m256d acc = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = widen_add(acc, _mm256_loadu_ps(x + i));
    double mean = hsum4d(acc);
    for (; i < n; i++)
        mean += x[i];
    mean /= n;
    __m256d mv = _mm256_set1_pd(mean), var4 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mv);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mv);
        var4 = _mm256_fmadd_pd(d0, d0, var4);
        var4 = _mm256_fmadd_pd(d1, d1, var4);
    }
    double var = hsum4d(var4);
    for (; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    var /= n;
    float inv = (float)(1.0 / sqrt(var + eps));
    __m256 meanf = _mm256_set1_ps((float)mean), invv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), meanf);
        v = _mm256_mul_ps(_mm256_mul_ps(v, invv), _mm256_loadu_ps(gamma + i));
        _mm256_storeu_ps(x + i, _mm256_add_ps(v, _mm256_loadu_ps(beta + i)));
    }
    for (; i < n; i++)
        x[i] = (x[i] - (float)mean) * inv * gamma[i] + beta[i];
}

void AVX2 kern__avx2_add(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
                                              _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] += x[i];
}

float AVX2 kern__avx2_dot(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mask),
                             _mm256_maskload_ps(b + i, mask), s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

const kern_ops kern__ops_avx2 = {
    .name = "avx2",
    .gemm_nt = gemm_nt_avx2,
    .gemm_nn = gemm_nn_avx2,
    .linear_f = linear_f_avx2,
    .quantize_x = kern__avx2_quantize_x,
    .linear_q8 = kern__avx2_linear_q8,
    .layernorm = kern__avx2_layernorm,
    .gelu = kern__avx2_gelu,
    .softmax = kern__avx2_softmax,
    .softmax_exp = kern__avx2_softmax_exp,
    .scale = kern__avx2_scale,
    .add = kern__avx2_add,
    .dot = kern__avx2_dot,
};

#endif /* __x86_64__ */
