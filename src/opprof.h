/* opprof.h - timing hooks for the per-op profile (bench/opprofile.c).
 *
 * The hooks exist only when compiled with -DLODE_OPPROFILE; otherwise
 * every macro below expands to nothing, so the library, the CLI and the
 * server carry no trace of them.  The Makefile's bench rules compile
 * bert.c and kernels.c a second time with the flag into objects of the
 * profile tool's own, linked ahead of liblode.a, which stays clean.
 *
 * Two kinds of hook, both counted only on the thread that started a
 * profile (bench/opprofile.c; tasks that pool threads run are part of
 * their caller's wall time, which is what the forward pass costs):
 *
 *   OPPROF_STEP(op)   the wall time since the previous step mark goes to
 *                     op, minus the brackets inside it: bert_forward marks
 *                     the end of each of its steps, so the steps read in
 *                     order and cover the pass without gaps.
 *   OPPROF_BEGIN(op) / OPPROF_END(op)
 *                     a bracket inside a step (quantising activations in
 *                     a q8_0 product, the parts of attention): its time
 *                     goes to op and is taken out of the step around it.
 */
#ifndef LODE_OPPROF_H
#define LODE_OPPROF_H

typedef enum opprof_op {
    OPPROF_OTHER = 0,     /* batching, checks, copies: no step of its own */
    OPPROF_TOKENIZE,
    OPPROF_EMBED,         /* embedding lookup + sums + LayerNorm */
    OPPROF_QKV,           /* the Q, K and V products */
    OPPROF_ATTENTION,     /* per (sequence, head): scores, softmax, P.V */
    OPPROF_ATTN_OUT,      /* the attention output product */
    OPPROF_RESIDUAL_LN,   /* residual add + LayerNorm, twice a layer */
    OPPROF_FFN_UP,
    OPPROF_GELU,
    OPPROF_FFN_DOWN,
    OPPROF_POOLING,       /* pooling + normalisation */
    OPPROF_QUANTIZE,      /* bracket: activations to q8_0 blocks */
    OPPROF_ATTN_KT,       /* brackets inside kern_attention ("detail") */
    OPPROF_ATTN_SCORES,
    OPPROF_ATTN_SOFTMAX,
    OPPROF_ATTN_CONTEXT,
    OPPROF_ATTN_BF16,     /* kern_attention_bf16, whole ("detail") */
    OPPROF_COUNT
} opprof_op;

#ifdef LODE_OPPROFILE
void opprof_step(opprof_op op);
void opprof_begin(opprof_op op);
void opprof_end(opprof_op op);
#define OPPROF_STEP(op) opprof_step(op)
#define OPPROF_BEGIN(op) opprof_begin(op)
#define OPPROF_END(op) opprof_end(op)
#else
#define OPPROF_STEP(op) ((void)0)
#define OPPROF_BEGIN(op) ((void)0)
#define OPPROF_END(op) ((void)0)
#endif

#endif
