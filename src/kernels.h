/* kernels.h - the numeric building blocks of the forward pass.
 *
 * Matrix multiplies and vector ops live here and only here, so speed work
 * (SIMD paths chosen at run time from CPUID, quantized weights) never
 * touches the model code.  Every SIMD path has a scalar reference beside it
 * in kernels.c and a test that bounds its error against that reference.
 *
 * Matrices are row-major.  A weight matrix is stored as PyTorch's Linear
 * stores it: [out_features][in_features], so y = x W^T + b.
 *
 * Paths: "scalar" (the reference, any CPU), "avx2" (AVX2+FMA+F16C),
 * "avx512" (AVX-512 F/BW/VL/DQ), "avx512vnni" (adds VNNI for q8_0) and
 * "amx" (adds AMX-INT8 for q8_128 and AMX-BF16 for kern_attention_bf16).
 * The best path the CPU and OS support is picked once; the environment
 * variable LODE_ISA=scalar|avx2|avx512|avx512vnni|amx forces a lower one.
 *
 * Determinism.  On one path, every output element of kern_linear,
 * kern_linear_mt, kern_gemm_nt and kern_gemm_nn is computed by the same
 * sequence of floating-point operations whatever the other rows are, how
 * many rows there are, and how the work is split among threads.  So a text
 * embeds to bitwise the same vector alone or in a batch, on 1 or N threads.
 * Different paths (avx2 vs avx512 vs scalar) sum fp32 products in different
 * orders and agree only to rounding (~1e-6 relative); q8_0 and q8_128
 * results are bitwise identical on every path (exact integer block sums,
 * then the same float operations in the same order).
 *
 * Threads: everything here is reentrant.  kern_linear on q8 weights uses
 * a per-thread scratch buffer that grows to the largest call and is then
 * reused (freed when the thread exits), so the steady state never mallocs;
 * if that allocation fails it falls back to the scalar path rather than
 * fail.
 */
#ifndef LODE_KERNELS_H
#define LODE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

struct pool;

typedef enum kern_type {
    KERN_F32 = 0,
    KERN_F16 = 1,
    KERN_Q8_0 = 8,   /* llama.cpp block layout: fp16 scale + 32 int8 */
    KERN_Q8_128 = 128, /* lode's: the same layout with blocks of 128 */
} kern_type;

/* Q8_0 block: 32 consecutive weights of one row, value = d * qs[i].
 * On disk and in memory: bytes 0-1 d (IEEE half, little-endian), bytes
 * 2-33 qs.  34 bytes, no padding, no alignment promise. */
#define KERN_Q8_0_BLOCK 32
#define KERN_Q8_0_BYTES 34

/* Q8_128 block: as Q8_0 with 128 weights, 130 bytes.  Activations are
 * quantized per 128 too.  It exists for AMX (kernels_avx512.c): there a
 * block is two 64-deep tile products whose exact sums must leave the
 * tile to be scaled, and with blocks of 32 that store, not the matrix
 * unit, set the speed.  Blocks of 128 cost accuracy, so it is an option,
 * not the default (gguf_model.c keeps Q, K and V in q8_0 for it; figures
 * in README).  Paths without AMX run it on the scalar reference: slow,
 * the same bits. */
#define KERN_Q8_128_BLOCK 128
#define KERN_Q8_128_BYTES 130

/* Weights per block of a q8 type (KERN_Q8_0, KERN_Q8_128); 0 for others. */
int kern_q8_block(kern_type type);

/* A weight matrix of `rows` output features by `cols` input features.
 * `data` is not owned (it usually points into an mmap'd file).  For
 * KERN_Q8_0, cols % 32 == 0 and each row is cols/32 blocks.  `packed`,
 * when not NULL, is what kern_pack made of data (not owned either): the
 * path that made it reads it instead of data, every other path ignores
 * it. */
typedef struct kern_matrix {
    kern_type type;
    int rows, cols;
    const void *data;
    const void *packed;
} kern_matrix;

/* Detect CPU features once; safe to call many times, from any thread.
 * Every other function calls it on first use. */
void kern_init(void);
/* Name of the path in use: "scalar", "avx2", "avx512", "avx512vnni". */
const char *kern_isa_name(void);
/* Force a path by name (tests, benchmarks).  Returns 0, or LODE_EINVAL for
 * an unknown name, LODE_EUNSUPPORTED if this CPU cannot run it.  Not safe
 * while other threads are inside kernels. */
int kern_set_isa(const char *name);

/* The weights of w laid out once for the products of the path in use, so
 * that no product rearranges them per call (see kernels_avx512.c: q8_0
 * weight panels for VNNI).  Returns a buffer, freed with free(), that the
 * caller stores in w->packed and keeps while w is in use; NULL when the
 * path reads w in place (every path and type but q8_0 on avx512vnni) or
 * memory is short.  Products give bitwise the same results with or
 * without it; once it is made, w->data is no longer read by that path
 * (the caller may let the kernel drop those pages). */
void *kern_pack(const kern_matrix *w);

/* Bytes one row of `w` occupies (row stride of w->data). */
size_t kern_row_bytes(kern_type type, int cols);

/* out[m][w->rows] = x[m][w->cols] . w^T + bias (bias may be NULL).
 * Weights of any kern_type are read in place or from w->packed, never
 * converted per call. */
void kern_linear(const float *x, int m, const kern_matrix *w,
                 const float *bias, float *out);
/* The same, split among the threads of `pool` (the caller takes part);
 * bitwise the same result as kern_linear.  pool may be NULL. */
void kern_linear_mt(struct pool *pool, const float *x, int m,
                    const kern_matrix *w, const float *bias, float *out);

/* C[i][j] = sum_p A[i*lda + p] * B[j*ldb + p]   (i < m, j < n, p < k) */
void kern_gemm_nt(int m, int n, int k, const float *a, int lda,
                  const float *b, int ldb, float *c, int ldc);
/* C[i][j] = sum_p A[i*lda + p] * B[p*ldb + j] */
void kern_gemm_nn(int m, int n, int k, const float *a, int lda,
                  const float *b, int ldb, float *c, int ldc);

/* In place over one row of n: (x - mean) / sqrt(var + eps) * gamma + beta */
void kern_layernorm(float *x, int n, const float *gamma, const float *beta,
                    float eps);
/* In place: exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)). */
void kern_gelu(float *x, size_t n);
/* In place softmax over n values. */
void kern_softmax(float *x, int n);

/* One attention head over one sequence of len tokens:
 *   ctx_i = sum_j softmax_j(q_i . k_j * scale) v_j      (i, j < len)
 * q, k, v and ctx rows are dh floats, `ld` / `ldc` floats apart.  Each
 * score is one in-order sum of products over dh (on the scalar path the
 * same operations as kern_gemm_nt), times scale, so results depend only on
 * this head's rows (determinism as above).  The scalar path normalises
 * the probabilities before P . V; the SIMD paths multiply the unnormalised
 * exponentials by V and divide each context row by their sum (dh
 * divisions a row instead of len).  `scratch` holds
 * kern_attention_scratch(len, dh) floats; the caller owns it so that the
 * hot path never allocates. */
void kern_attention(int len, int dh, float scale, const float *q,
                    const float *k, const float *v, int ld, float *ctx,
                    int ldc, float *scratch);
size_t kern_attention_scratch(int len, int dh);
/* kern_attention with q, k, v and the unnormalised exponentials rounded
 * to bfloat16 (ties to even), products and sums in fp32: what AMX-BF16
 * runs at 2-3x the fp32 path's speed (28 us against 84 for a head of 256
 * tokens on the Xeon guest; the AMX path takes the exponentials from a
 * 2^x fit within 3e-6, the reference from expf).  With q8 weights the
 * model runs it where kern_attention_bf16_native(): on test_model's 529
 * reference texts the worst cosine stays within 1e-4 of fp32 attention's
 * (q8_0 0.99762, q8_128 0.99609; README).  LODE_ATTENTION=fp32 keeps
 * fp32.  Paths without AMX run the scalar reference: slow.  Scratch:
 * kern_attention_scratch. */
void kern_attention_bf16(int len, int dh, float scale, const float *q,
                         const float *k, const float *v, int ld, float *ctx,
                         int ldc, float *scratch);
/* 1 when the path in use runs kern_attention_bf16 natively (AMX) for
 * heads of dh (at most KERN_ATTENTION_BF16_MAX_DH). */
#define KERN_ATTENTION_BF16_MAX_DH 64
int kern_attention_bf16_native(int dh);
/* y[i] += x[i] */
void kern_add(float *y, const float *x, size_t n);
float kern_dot(const float *a, const float *b, int n);

/* Quantize n floats (n % 32 == 0) to n/32 Q8_0 blocks at dst, exactly as
 * llama.cpp's quantize_row_q8_0_ref: d = max|x| / 127, q = roundf(x / d). */
void kern_quantize_q8_0(const float *src, int n, void *dst);
/* The same in blocks of 128 (n % 128 == 0): Q8_128. */
void kern_quantize_q8_128(const float *src, int n, void *dst);
/* Row `row` of w as cols floats (embedding lookups).  Exact for F32, F16,
 * Q8_0 and Q8_128 (d * q computed in float). */
void kern_dequantize_row(const kern_matrix *w, int row, float *dst);

/* IEEE half <-> float, exact (float -> half rounds to nearest even). */
float kern_f16_to_f32(uint16_t h);
uint16_t kern_f32_to_f16(float f);
/* bfloat16 -> float, exact. */
float kern_bf16_to_f32(uint16_t h);

#endif
