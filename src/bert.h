/* bert.h - the BERT encoder: configuration, weights and the forward pass.
 *
 * The weights are a set of pointers (usually into an mmap'd file) described
 * by kern_matrix for the big matrices and plain float vectors for biases
 * and LayerNorm parameters, so the forward pass does not care whether they
 * came from safetensors or GGUF, or whether they are f32, f16 or 8-bit.
 *
 * A batch is packed without padding: the tokens of all sequences sit one
 * after another in one [tokens][hidden] matrix.  The linear layers run over
 * all tokens at once; attention runs per sequence, so no token ever sees
 * another sequence and a text gets the same vector alone or in any batch.
 */
#ifndef LODE_BERT_H
#define LODE_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "kernels.h"

struct pool;

typedef enum bert_pooling {
    BERT_POOL_MEAN = 0,
    BERT_POOL_CLS,
    BERT_POOL_MAX,
    BERT_POOL_MEAN_SQRT_LEN,
} bert_pooling;

typedef struct bert_config {
    int vocab_size;
    int hidden;          /* H */
    int n_layers;
    int n_heads;
    int intermediate;    /* I, the FFN width */
    int max_position;    /* rows of the position table */
    int type_vocab_size;
    float layer_norm_eps;
    int max_seq_length;  /* sentence-transformers' truncation, <= max_position */
    bert_pooling pooling;
    int normalize;       /* L2-normalise the pooled vector */
} bert_config;

typedef struct bert_layer {
    kern_matrix q, k, v, o;         /* [H][H] */
    kern_matrix up, down;           /* [I][H], [H][I] */
    const float *q_b, *k_b, *v_b, *o_b;   /* [H] */
    const float *attn_ln_g, *attn_ln_b;   /* [H] */
    const float *up_b;                     /* [I] */
    const float *down_b;                   /* [H] */
    const float *out_ln_g, *out_ln_b;      /* [H] */
} bert_layer;

typedef struct bert_weights {
    kern_matrix word;           /* [vocab][H] */
    const float *position;      /* [max_position][H] */
    const float *token_type;    /* [type_vocab][H]; row 0 is used */
    const float *embd_ln_g, *embd_ln_b;
    bert_layer *layers;         /* n_layers, owned by whoever filled it */
} bert_weights;

/* The feed-forward block runs over this many tokens at a time (it is
 * token by token), so its [rows][intermediate] activations stay in cache
 * between the up product, GELU and the down product, and its scratch
 * does not grow with the batch. */
#ifndef BERT_FFN_ROWS
#define BERT_FFN_ROWS 128
#endif

/* Scratch memory for one batch, grown on demand and reused, so the hot
 * path does not allocate once the largest batch has been seen. */
typedef struct bert_scratch {
    size_t tokens_cap, len_cap;
    float *x, *q, *k, *v, *ctx, *tmp; /* [T][H] each */
    float *ffn;                       /* [min(T, BERT_FFN_ROWS)][I] */
    float *scores;    /* per thread: kern_attention_scratch(L, head dim) */
    int scores_slots;                       /* threads it has room for */
    int *pos, *seq_start;                   /* [T]: position, seq offsets */
} bert_scratch;

const char *bert_pooling_name(bert_pooling p);

/* Check a config for values the forward pass cannot run with. */
int bert_config_check(const bert_config *cfg, lode_error *err);

/* Make room for a batch of `tokens` tokens whose longest sequence is
 * `max_len`, with attention scratch for `threads` threads. */
int bert_scratch_reserve(bert_scratch *s, const bert_config *cfg,
                         size_t tokens, int max_len, int threads,
                         lode_error *err);
void bert_scratch_free(bert_scratch *s);

/* Encode n_seqs sequences whose ids are packed one after another in `ids`
 * (seq_lens[i] ids each, each 1..max_seq_length), writing one pooled (and,
 * if configured, normalised) vector of H floats per sequence to out.
 * `pool` may be NULL (single-threaded). */
int bert_forward(const bert_config *cfg, const bert_weights *w,
                 bert_scratch *s, struct pool *pool, const int32_t *ids,
                 const int *seq_lens, int n_seqs, float *out,
                 lode_error *err);

#endif
