/* kernels_isa.h - private contract between kernels.c and its per-ISA files.
 *
 * kernels.c owns the public API, the scalar reference kernels and the
 * choice of path; kernels_avx2.c and kernels_avx512.c each export one
 * table of function pointers with the same semantics as the reference.
 * Nothing outside the kernels module includes this header.
 */
#ifndef LODE_KERNELS_ISA_H
#define LODE_KERNELS_ISA_H

#include "kernels.h"

/* Activations quantized for q8_0 (q8_128) products: per row, k/32 (k/128)
 * blocks of 32 (128) codes q (what is stored is up to the path: int8 for
 * scalar, avx2 and AMX, int8 + 128 as uint8 for the VNNI path) and one
 * float scale d per block,
 * with q = rint(x * 127 / amax), d = amax / 127 (amax = max |x| over the
 * block; q = 0, d = 0 when amax = 0).  Rows are k bytes and k/32 (k/128)
 * floats apart.  The codes' buffer has KERN_QX_PAD_ROWS rows more than it
 * holds (contents undefined), so a path may read whole tiles of 16 rows
 * from any row. */
#define KERN_QX_PAD_ROWS 16
typedef struct kern_qx {
    uint8_t *q;
    float *d;
} kern_qx;

typedef struct kern_ops {
    const char *name;
    void (*gemm_nt)(int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc);
    void (*gemm_nn)(int m, int n, int k, const float *a, int lda,
                    const float *b, int ldb, float *c, int ldc);
    /* Columns n0 <= j < n1 of out[m][w->rows] = x . w^T + bias, for F32
     * and F16 weights. */
    void (*linear_f)(const float *x, int m, const kern_matrix *w,
                     const float *bias, float *out, int n0, int n1);
    /* Quantize rows of x[m][k] into qx (rows 0..m-1).  NULL for paths that
     * quantize inside linear_q8 (the scalar reference). */
    void (*quantize_x)(const float *x, int m, int k, const kern_qx *qx);
    /* Columns n0 <= j < n1 of out = x . w^T + bias for Q8_0 weights, from
     * qx (or from x when quantize_x is NULL).  Returns 0, or -1 when its
     * scratch could not be allocated (nothing written then). */
    int (*linear_q8)(const float *x, const kern_qx *qx, int m,
                     const kern_matrix *w, const float *bias, float *out,
                     int n0, int n1);
    /* The same for Q8_128 weights; NULL (both) where the scalar reference
     * serves (every path but AMX). */
    void (*quantize_x128)(const float *x, int m, int k, const kern_qx *qx);
    int (*linear_q128)(const float *x, const kern_qx *qx, int m,
                       const kern_matrix *w, const float *bias, float *out,
                       int n0, int n1);
    /* Bytes kern_pack needs for w (0: this path reads w in place), and the
     * packing into dst, 64-byte aligned.  NULL for paths without one. */
    size_t (*pack_bytes)(const kern_matrix *w);
    void (*pack)(const kern_matrix *w, void *dst);
    void (*layernorm)(float *x, int n, const float *gamma, const float *beta,
                      float eps);
    void (*gelu)(float *x, size_t n);
    /* softmax(x * scale) in place; x * scale is stored first, so this is
     * bitwise the scaling loop followed by the plain softmax. */
    void (*softmax)(float *x, int n, float scale);
    /* exp(x * scale - max) in place, unnormalised; returns 1 / their sum
     * (kern_attention then scales the context instead).  NULL: the
     * attention normalises with softmax (the scalar reference). */
    float (*softmax_exp)(float *x, int n, float scale);
    /* kt[p][j] = k[j * ld + p] (p < dh, j < len), 0 for len <= j < lp;
     * NULL: a plain loop. */
    void (*transpose_kt)(const float *k, int ld, int len, int dh, float *kt,
                         size_t lp);
    /* kern_attention_bf16, and the floats of scratch it needs; NULL (both)
     * where the scalar reference serves.  Returns -1 (nothing written)
     * for a head size it does not take. */
    int (*attention_bf16)(int len, int dh, float scale, const float *q,
                          const float *k, const float *v, int ld, float *ctx,
                          int ldc, float *scratch);
    size_t (*attention_bf16_scratch)(int len, int dh);
    /* y[i] *= f (set wherever softmax_exp is) */
    void (*scale)(float *y, size_t n, float f);
    void (*add)(float *y, const float *x, size_t n);
    float (*dot)(const float *a, const float *b, int n);
} kern_ops;

extern const kern_ops kern__ops_scalar;
#if defined(__x86_64__)
extern const kern_ops kern__ops_avx2;
extern const kern_ops kern__ops_avx512;
extern const kern_ops kern__ops_avx512vnni;
extern const kern_ops kern__ops_amx;

/* AVX2 functions the AVX-512 tables share (kernels_avx2.c). */
void kern__avx2_quantize_x(const float *x, int m, int k, const kern_qx *qx);
int kern__avx2_linear_q8(const float *x, const kern_qx *qx, int m,
                         const kern_matrix *w, const float *bias, float *out,
                         int n0, int n1);
void kern__avx2_layernorm(float *x, int n, const float *gamma,
                          const float *beta, float eps);
void kern__avx2_gelu(float *x, size_t n);
void kern__avx2_softmax(float *x, int n, float scale);
float kern__avx2_softmax_exp(float *x, int n, float scale);
void kern__avx2_scale(float *y, size_t n, float f);
void kern__avx2_add(float *y, const float *x, size_t n);
float kern__avx2_dot(const float *a, const float *b, int n);
#endif

/* Per-thread scratch, `slot` 0 or 1, at least `bytes` long and 64-byte
 * aligned; grows (never shrinks) and is freed when the thread exits.
 * NULL if the allocation fails. */
void *kern__scratch(int slot, size_t bytes);

#endif
