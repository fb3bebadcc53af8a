/* bert.c - the BERT encoder forward pass (see bert.h).
 *
 * One readable function, bert_forward(), in the order of the Hugging Face
 * implementation it must match: embeddings + LayerNorm, then per layer
 * self-attention, residual + LayerNorm, GELU FFN, residual + LayerNorm, then
 * pooling and normalisation.  Speed comes from the kernels under it and from
 * packing the batch without padding, never from obscuring this function. */
#include "bert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opprof.h"
#include "pool.h"

const char *bert_pooling_name(bert_pooling p)
{
    switch (p) {
    case BERT_POOL_MEAN: return "mean";
    case BERT_POOL_CLS: return "cls";
    case BERT_POOL_MAX: return "max";
    case BERT_POOL_MEAN_SQRT_LEN: return "mean_sqrt_len";
    }
    return "?";
}

int bert_config_check(const bert_config *c, lode_error *err)
{
    if (c->vocab_size < 1 || c->hidden < 1 || c->n_layers < 1 ||
        c->n_heads < 1 || c->intermediate < 1 || c->max_position < 2 ||
        c->type_vocab_size < 1)
        return lode_error_set(err, LODE_EFORMAT,
                              "model config has a missing or non-positive "
                              "size (vocab %d, hidden %d, layers %d, heads %d,"
                              " intermediate %d, positions %d, types %d)",
                              c->vocab_size, c->hidden, c->n_layers,
                              c->n_heads, c->intermediate, c->max_position,
                              c->type_vocab_size);
    if (c->hidden % c->n_heads)
        return lode_error_set(err, LODE_EFORMAT,
                              "hidden size %d is not a multiple of the %d "
                              "attention heads", c->hidden, c->n_heads);
    if (c->hidden > 65536 || c->intermediate > 262144 ||
        c->n_layers > 1024 || c->max_position > 65536 ||
        c->vocab_size > 10000000)
        return lode_error_set(err, LODE_EFORMAT,
                              "model config sizes are implausibly large");
    if (c->max_seq_length < 2 || c->max_seq_length > c->max_position)
        return lode_error_set(err, LODE_EFORMAT,
                              "max_seq_length %d must be between 2 and the "
                              "%d positions of the model", c->max_seq_length,
                              c->max_position);
    if (!(c->layer_norm_eps > 0.0f) || c->layer_norm_eps > 1.0f)
        return lode_error_set(err, LODE_EFORMAT,
                              "layer_norm_eps %g is out of range",
                              (double)c->layer_norm_eps);
    return LODE_OK;
}

void bert_scratch_free(bert_scratch *s)
{
    free(s->x);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->ctx);
    free(s->tmp);
    free(s->ffn);
    free(s->scores);
    free(s->pos);
    free(s->seq_start);
    memset(s, 0, sizeof *s);
}

static int grow(float **p, size_t n)
{
    /* 64-byte aligned so SIMD kernels can use aligned loads if they wish. */
    free(*p);
    *p = NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    *p = aligned_alloc(64, bytes ? bytes : 64);
    return *p ? 0 : -1;
}

static int grow_int(int **p, size_t n)
{
    free(*p);
    *p = malloc((n ? n : 1) * sizeof **p);
    return *p ? 0 : -1;
}

int bert_scratch_reserve(bert_scratch *s, const bert_config *cfg,
                         size_t tokens, int max_len, int threads,
                         lode_error *err)
{
    size_t H = (size_t)cfg->hidden, I = (size_t)cfg->intermediate;
    if (tokens > s->tokens_cap) {
        if (grow(&s->x, tokens * H) || grow(&s->q, tokens * H) ||
            grow(&s->k, tokens * H) || grow(&s->v, tokens * H) ||
            grow(&s->ctx, tokens * H) || grow(&s->tmp, tokens * H) ||
            grow(&s->ffn, (tokens < BERT_FFN_ROWS ? tokens : BERT_FFN_ROWS) *
                              I) ||
            grow_int(&s->pos, tokens) || grow_int(&s->seq_start, tokens)) {
            bert_scratch_free(s);
            return lode_error_set(err, LODE_ENOMEM,
                                  "out of memory for a batch of %zu tokens",
                                  tokens);
        }
        s->tokens_cap = tokens;
    }
    if (threads < 1)
        threads = 1;
    if ((size_t)max_len > s->len_cap || threads > s->scores_slots) {
        size_t len = (size_t)max_len > s->len_cap ? (size_t)max_len
                                                  : s->len_cap;
        size_t per = kern_attention_scratch((int)len,
                                            cfg->hidden / cfg->n_heads);
        if (grow(&s->scores, (size_t)threads * per)) {
            bert_scratch_free(s);
            return lode_error_set(err, LODE_ENOMEM,
                                  "out of memory for attention over %d "
                                  "tokens", max_len);
        }
        s->len_cap = len;
        s->scores_slots = threads;
    }
    return LODE_OK;
}

/* Row `id` of the word-embedding table as floats. */
static void embedding_row(const kern_matrix *m, int id, float *dst)
{
    if (m->type == KERN_F32)
        memcpy(dst, (const float *)m->data + (size_t)id * m->cols,
               (size_t)m->cols * sizeof(float));
    else
        kern_dequantize_row(m, id, dst);
}

/* Work shared with pool tasks.  Each task writes only its own rows (or its
 * own head's columns), so results do not depend on the thread count. */
typedef struct fwd_ctx {
    const bert_config *cfg;
    const bert_weights *w;
    const bert_layer *layer;
    bert_scratch *s;
    const int32_t *ids;
    const int *seq_lens, *seq_start;
    const int *pos;          /* position of each token in its sequence */
    int n_seqs;
    size_t tokens;
    int chunks;              /* row chunks for the element-wise steps */
    size_t r0, r1;           /* the rows they cover (s->ffn holds r0..) */
    int after_attention;     /* which LayerNorm task_residual applies */
    int attn_bf16;           /* this layer's attention in bfloat16 */
} fwd_ctx;

static void chunk_range(const fwd_ctx *c, int task, size_t *t0, size_t *t1)
{
    size_t n = c->r1 - c->r0;
    *t0 = c->r0 + n * (size_t)task / (size_t)c->chunks;
    *t1 = c->r0 + n * (size_t)(task + 1) / (size_t)c->chunks;
}

/* Self-attention of one head over one sequence (task = sequence x heads +
 * head), in this thread's slice of the attention scratch. */
static void task_attention(void *arg, int task, int thread)
{
    const fwd_ctx *c = arg;
    int i = task / c->cfg->n_heads, h = task % c->cfg->n_heads;
    int H = c->cfg->hidden, dh = H / c->cfg->n_heads;
    size_t off = (size_t)c->seq_start[i] * H + (size_t)h * dh;
    float *scratch = c->s->scores +
                     (size_t)thread *
                         kern_attention_scratch((int)c->s->len_cap, dh);
    (c->attn_bf16 ? kern_attention_bf16 : kern_attention)(
        c->seq_lens[i], dh, 1.0f / sqrtf((float)dh), c->s->q + off,
        c->s->k + off, c->s->v + off, H, c->s->ctx + off, H, scratch);
}

static void task_embed(void *arg, int task, int thread)
{
    (void)thread;
    const fwd_ctx *c = arg;
    const int H = c->cfg->hidden;
    size_t t0, t1;
    chunk_range(c, task, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        float *row = c->s->x + t * H;
        embedding_row(&c->w->word, c->ids[t], row);
        kern_add(row, c->w->position + (size_t)c->pos[t] * H, (size_t)H);
        kern_add(row, c->w->token_type, (size_t)H);
        kern_layernorm(row, H, c->w->embd_ln_g, c->w->embd_ln_b,
                       c->cfg->layer_norm_eps);
    }
}

/* x = LayerNorm(x + tmp), with the attention output's LayerNorm when
 * ctx->after_attention, else the layer output's. */
static void task_residual(void *arg, int task, int thread)
{
    (void)thread;
    const fwd_ctx *c = arg;
    const int H = c->cfg->hidden;
    const float *g = c->after_attention ? c->layer->attn_ln_g
                                        : c->layer->out_ln_g;
    const float *b = c->after_attention ? c->layer->attn_ln_b
                                        : c->layer->out_ln_b;
    size_t t0, t1;
    chunk_range(c, task, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        float *row = c->s->x + t * H;
        kern_add(row, c->s->tmp + t * H, (size_t)H);
        kern_layernorm(row, H, g, b, c->cfg->layer_norm_eps);
    }
}

static void task_gelu(void *arg, int task, int thread)
{
    (void)thread;
    const fwd_ctx *c = arg;
    const size_t I = (size_t)c->cfg->intermediate;
    size_t t0, t1;
    chunk_range(c, task, &t0, &t1);
    kern_gelu(c->s->ffn + (t0 - c->r0) * I, (t1 - t0) * I);
}

static void pool_sequence(const bert_config *cfg, const float *x, int len,
                          float *out)
{
    int H = cfg->hidden;
    switch (cfg->pooling) {
    case BERT_POOL_CLS:
        memcpy(out, x, (size_t)H * sizeof(float));
        break;
    case BERT_POOL_MAX:
        memcpy(out, x, (size_t)H * sizeof(float));
        for (int t = 1; t < len; t++)
            for (int d = 0; d < H; d++)
                if (x[(size_t)t * H + d] > out[d])
                    out[d] = x[(size_t)t * H + d];
        break;
    case BERT_POOL_MEAN:
    case BERT_POOL_MEAN_SQRT_LEN: {
        for (int d = 0; d < H; d++)
            out[d] = 0.0f;
        for (int t = 0; t < len; t++)
            kern_add(out, x + (size_t)t * H, (size_t)H);
        float div = cfg->pooling == BERT_POOL_MEAN ? (float)len
                                                   : sqrtf((float)len);
        for (int d = 0; d < H; d++)
            out[d] /= div;
        break;
    }
    }
    if (cfg->normalize) {
        /* torch.nn.functional.normalize: x / max(||x||, 1e-12) */
        double ss = 0.0;
        for (int d = 0; d < H; d++)
            ss += (double)out[d] * out[d];
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int d = 0; d < H; d++)
            out[d] *= inv;
    }
}

int bert_forward(const bert_config *cfg, const bert_weights *w,
                 bert_scratch *s, struct pool *pool, const int32_t *ids,
                 const int *seq_lens, int n_seqs, float *out,
                 lode_error *err)
{
    const int H = cfg->hidden;
    size_t T = 0;
    int max_len = 0;
    for (int i = 0; i < n_seqs; i++) {
        if (seq_lens[i] < 1 || seq_lens[i] > cfg->max_seq_length)
            return lode_error_set(err, LODE_EINVAL,
                                  "sequence %d has %d tokens (1..%d allowed)",
                                  i, seq_lens[i], cfg->max_seq_length);
        T += (size_t)seq_lens[i];
        if (seq_lens[i] > max_len)
            max_len = seq_lens[i];
    }
    for (size_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= cfg->vocab_size)
            return lode_error_set(err, LODE_EINVAL,
                                  "token id %d is outside the vocabulary of "
                                  "%d", ids[t], cfg->vocab_size);
    int threads = pool_threads(pool);
    int rc = bert_scratch_reserve(s, cfg, T, max_len, threads, err);
    if (rc)
        return rc;
    int *seq_start = s->seq_start, *pos = s->pos;
    for (int i = 0, t = 0; i < n_seqs; i++) {
        seq_start[i] = t;
        for (int p = 0; p < seq_lens[i]; p++)
            pos[t++] = p;
    }
    fwd_ctx c = {cfg, w, NULL, s, ids, seq_lens, seq_start, pos, n_seqs, T,
                 0, 0, T, 0, 0};
    c.chunks = threads > 1 && T >= 8 ? 4 * threads : 1;
    if ((size_t)c.chunks > T)
        c.chunks = (int)T;
    float *x = s->x;
    OPPROF_STEP(OPPROF_OTHER); /* bench-only profile marks (opprof.h) */

    /* Embeddings: word + position + token type 0, then LayerNorm. [T][H] */
    pool_run(pool, c.chunks, task_embed, &c);
    OPPROF_STEP(OPPROF_EMBED);

    for (int l = 0; l < cfg->n_layers; l++) {
        const bert_layer *L = &w->layers[l];
        c.layer = L;
        /* With q8 weights, attention on bfloat16 where the CPU runs it
         * natively (AMX): 10x faster, and its error is a hundredth of the
         * weights' (kernels.h) */
        c.attn_bf16 = kern_q8_block(L->up.type) > 0 &&
                      kern_attention_bf16_native(cfg->hidden / cfg->n_heads);
        /* Q, K, V projections over all tokens.            [T][H] each */
        kern_linear_mt(pool, x, (int)T, &L->q, L->q_b, s->q);
        kern_linear_mt(pool, x, (int)T, &L->k, L->k_b, s->k);
        kern_linear_mt(pool, x, (int)T, &L->v, L->v_b, s->v);
        OPPROF_STEP(OPPROF_QKV);
        /* Attention within each sequence, one task per (sequence, head). */
        pool_run(pool, n_seqs * cfg->n_heads, task_attention, &c);
        OPPROF_STEP(OPPROF_ATTENTION);
        /* Output projection, residual, LayerNorm.           [T][H] */
        kern_linear_mt(pool, s->ctx, (int)T, &L->o, L->o_b, s->tmp);
        OPPROF_STEP(OPPROF_ATTN_OUT);
        c.after_attention = 1;
        pool_run(pool, c.chunks, task_residual, &c);
        OPPROF_STEP(OPPROF_RESIDUAL_LN);
        /* FFN: GELU(x W1^T + b1) W2^T + b2, residual, LayerNorm, token
         * by token, so BERT_FFN_ROWS tokens at a time: the [rows][I]
         * intermediate stays in cache from one step to the next. */
        c.after_attention = 0;
        for (size_t t0 = 0; t0 < T; t0 += BERT_FFN_ROWS) {
            int rows = (int)(T - t0 < BERT_FFN_ROWS ? T - t0 : BERT_FFN_ROWS);
            c.r0 = t0;
            c.r1 = t0 + (size_t)rows;
            kern_linear_mt(pool, x + t0 * H, rows, &L->up, L->up_b, s->ffn);
            OPPROF_STEP(OPPROF_FFN_UP);
            pool_run(pool, c.chunks, task_gelu, &c);
            OPPROF_STEP(OPPROF_GELU);
            kern_linear_mt(pool, s->ffn, rows, &L->down, L->down_b,
                           s->tmp + t0 * H);
            OPPROF_STEP(OPPROF_FFN_DOWN);
            pool_run(pool, c.chunks, task_residual, &c);
            OPPROF_STEP(OPPROF_RESIDUAL_LN);
        }
        c.r0 = 0;
        c.r1 = T;
    }

    /* Pooling (and normalisation) per sequence.            [n_seqs][H] */
    for (int i = 0; i < n_seqs; i++)
        pool_sequence(cfg, x + (size_t)seq_start[i] * H, seq_lens[i],
                      out + (size_t)i * H);
    OPPROF_STEP(OPPROF_POOLING);
    return LODE_OK;
}
