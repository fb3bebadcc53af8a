/* gguf_model.c - load and write BERT GGUF files (conventions in
 * gguf_model.h).
 *
 * Big matrices (the word embeddings and every attention and FFN weight)
 * are used in place from the mapping in whatever type they were written:
 * the kernels read F32, F16 and Q8_0 directly.  Only small tensors (biases,
 * LayerNorm, position and token-type tables) that are not F32 are turned
 * into f32 copies at load, so loading never dequantizes the whole model. */
#include "gguf_model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf.h"

#define PHANTOM "\xe2\x96\x81" /* U+2581, llama.cpp's word-start mark */

void gguf_weights_free(gguf_weights *gw)
{
    for (int i = 0; i < gw->n_converted; i++)
        free(gw->converted[i]);
    free(gw->converted);
    free(gw->layers);
    gguf_close(gw->file);
    memset(gw, 0, sizeof *gw);
}

static int keep(gguf_weights *gw, void *p)
{
    void **list = realloc(gw->converted,
                          (size_t)(gw->n_converted + 1) * sizeof *list);
    if (!list)
        return -1;
    gw->converted = list;
    list[gw->n_converted++] = p;
    return 0;
}

/* The `bytes` bytes at data, 4-byte aligned as the kernels read them
 * (floats; the f16 scales of q8_0 blocks): in place when they are, which
 * a file with the default alignment (32) always gives, else a copy.  A
 * file may set general.alignment to 1 or 2 (found by fuzz_gguf_model:
 * an f32 bias read through a misaligned float pointer). */
static int aligned(gguf_weights *gw, const void *data, size_t bytes,
                   const void **out, lode_error *err)
{
    if ((uintptr_t)data % 4 == 0) {
        *out = data;
        return LODE_OK;
    }
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy || keep(gw, copy)) {
        free(copy);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    memcpy(copy, data, bytes);
    *out = copy;
    return LODE_OK;
}

/* rows x cols of a non-F32 GGUF tensor as floats. */
static void dequantize(uint32_t type, const void *data, int rows, int cols,
                       float *dst)
{
    if (type == GGUF_TYPE_BF16) {
        const uint8_t *p = data;
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            dst[i] = kern_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return;
    }
    kern_matrix m = {type == GGUF_TYPE_F16 ? KERN_F16
                     : type == GGUF_TYPE_LODE_Q8_128 ? KERN_Q8_128 : KERN_Q8_0,
                     rows, cols, data, NULL};
    for (int r = 0; r < rows; r++)
        kern_dequantize_row(&m, r, dst + (size_t)r * cols);
}

static int find(const gguf_file *f, const char *name, int cols, int rows,
                const gguf_tensor **out, lode_error *err)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t)
        return lode_error_set(err, LODE_EFORMAT,
                              "GGUF tensor '%s' is missing", name);
    int want_dims = rows ? 2 : 1;
    if (t->n_dims != want_dims || t->ne[0] != (uint64_t)cols ||
        (rows && t->ne[1] != (uint64_t)rows))
        return lode_error_set(err, LODE_EFORMAT,
                              "GGUF tensor '%s' has shape [%llu, %llu], the "
                              "metadata says [%d, %d]", name,
                              (unsigned long long)t->ne[0],
                              (unsigned long long)t->ne[1], cols,
                              rows ? rows : 1);
    *out = t;
    return LODE_OK;
}

/* A tensor as f32: in place when it is F32, else a converted copy. */
static int as_f32(gguf_weights *gw, const char *name, int cols, int rows,
                  const float **out, lode_error *err)
{
    const gguf_tensor *t;
    int rc = find(gw->file, name, cols, rows, &t, err);
    if (rc)
        return rc;
    int nrows = rows ? rows : 1;
    const void *data;
    if ((rc = aligned(gw, t->data, t->nbytes, &data, err)))
        return rc;
    if (t->type == GGUF_TYPE_F32) {
        *out = data;
        return LODE_OK;
    }
    float *buf = malloc((size_t)cols * nrows * sizeof *buf);
    if (!buf || keep(gw, buf)) {
        free(buf);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    dequantize(t->type, data, nrows, cols, buf);
    *out = buf;
    return LODE_OK;
}

static int as_matrix(gguf_weights *gw, const gguf_tensor *t, int row0,
                     int rows, int cols, kern_matrix *m, lode_error *err)
{
    m->rows = rows;
    m->cols = cols;
    size_t row_bytes = gguf_tensor_bytes(t->type, (uint64_t)cols, 1);
    switch (t->type) {
    case GGUF_TYPE_F32: m->type = KERN_F32; break;
    case GGUF_TYPE_F16: m->type = KERN_F16; break;
    case GGUF_TYPE_Q8_0: m->type = KERN_Q8_0; break;
    case GGUF_TYPE_LODE_Q8_128: m->type = KERN_Q8_128; break;
    default: {
        /* BF16 matrices are rare: widen once to f32. */
        float *buf = malloc((size_t)rows * cols * sizeof *buf);
        if (!buf || keep(gw, buf)) {
            free(buf);
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        }
        dequantize(t->type, (const uint8_t *)t->data + row0 * row_bytes,
                   rows, cols, buf);
        m->type = KERN_F32;
        m->data = buf;
        return LODE_OK;
    }
    }
    const void *data;
    int rc = aligned(gw, (const uint8_t *)t->data + (size_t)row0 * row_bytes,
                     (size_t)rows * row_bytes, &data, err);
    m->data = data;
    return rc;
}

static int matrix(gguf_weights *gw, const char *name, int rows, int cols,
                  kern_matrix *m, lode_error *err)
{
    const gguf_tensor *t;
    int rc = find(gw->file, name, cols, rows, &t, err);
    return rc ? rc : as_matrix(gw, t, 0, rows, cols, m, err);
}

static int get_size(const gguf_file *f, const char *key, int *out,
                    lode_error *err)
{
    int64_t v;
    int rc = gguf_get_int(f, key, &v, err);
    if (rc)
        return rc;
    if (v < 1 || v > 100000000)
        return lode_error_set(err, LODE_EFORMAT, "GGUF key '%s' is %lld", key,
                              (long long)v);
    *out = (int)v;
    return LODE_OK;
}

static int read_config(const gguf_file *f, bert_config *cfg,
                       tok_options *topt, lode_error *err)
{
    const char *s;
    size_t len;
    int rc = gguf_get_str(f, "general.architecture", &s, &len, err);
    if (rc)
        return rc;
    if (len != 4 || memcmp(s, "bert", 4) != 0)
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "GGUF architecture '%.*s' is not supported "
                              "(lode runs BERT models)", (int)(len < 64 ? len
                                                                 : 64), s);
    memset(cfg, 0, sizeof *cfg);
    if ((rc = get_size(f, "bert.embedding_length", &cfg->hidden, err)) ||
        (rc = get_size(f, "bert.block_count", &cfg->n_layers, err)) ||
        (rc = get_size(f, "bert.attention.head_count", &cfg->n_heads, err)) ||
        (rc = get_size(f, "bert.feed_forward_length", &cfg->intermediate,
                       err)) ||
        (rc = get_size(f, "bert.context_length", &cfg->max_position, err)))
        return rc;
    double eps = 1e-12;
    if (gguf_has_key(f, "bert.attention.layer_norm_epsilon") &&
        (rc = gguf_get_float(f, "bert.attention.layer_norm_epsilon", &eps,
                             err)))
        return rc;
    cfg->layer_norm_eps = (float)eps;
    const gguf_tensor *types = gguf_find_tensor(f, "token_types.weight");
    cfg->type_vocab_size = types && types->n_dims == 2 ? (int)types->ne[1] : 0;
    const gguf_tensor *pos = gguf_find_tensor(f, "position_embd.weight");
    if (pos && pos->n_dims == 2 && pos->ne[1] < (uint64_t)cfg->max_position)
        cfg->max_position = (int)pos->ne[1];

    /* Pooling: lode's key, else llama.cpp's pooling_type. */
    cfg->pooling = BERT_POOL_MEAN;
    if (gguf_get_str(f, "lode.pooling", &s, &len, NULL) == 0) {
        if (len == 4 && !memcmp(s, "mean", 4)) cfg->pooling = BERT_POOL_MEAN;
        else if (len == 3 && !memcmp(s, "cls", 3)) cfg->pooling = BERT_POOL_CLS;
        else if (len == 3 && !memcmp(s, "max", 3)) cfg->pooling = BERT_POOL_MAX;
        else if (len == 13 && !memcmp(s, "mean_sqrt_len", 13))
            cfg->pooling = BERT_POOL_MEAN_SQRT_LEN;
        else
            return lode_error_set(err, LODE_EUNSUPPORTED,
                                  "GGUF lode.pooling '%.*s' is unknown",
                                  (int)(len < 64 ? len : 64), s);
    } else {
        int64_t pt = 1;
        gguf_get_int(f, "bert.pooling_type", &pt, NULL);
        if (pt != 1 && pt != 2)
            return lode_error_set(err, LODE_EUNSUPPORTED,
                                  "GGUF bert.pooling_type %lld is not "
                                  "supported (1 mean or 2 cls)", (long long)pt);
        cfg->pooling = pt == 2 ? BERT_POOL_CLS : BERT_POOL_MEAN;
    }
    int b = 1;
    cfg->normalize = gguf_get_bool(f, "lode.normalize", &b, NULL) == 0 ? b : 1;
    int64_t v;
    cfg->max_seq_length = gguf_get_int(f, "lode.max_seq_length", &v, NULL) == 0
                                  && v > 0 && v < 1000000
                              ? (int)v
                              : cfg->max_position;
    if (cfg->max_seq_length > cfg->max_position)
        cfg->max_seq_length = cfg->max_position;
    *topt = tok_default_options();
    if (gguf_get_bool(f, "lode.do_lower_case", &b, NULL) == 0)
        topt->lowercase = b;
    if (gguf_get_int(f, "lode.strip_accents", &v, NULL) == 0)
        topt->strip_accents = v < 0 ? -1 : v > 0;
    if (gguf_get_bool(f, "lode.tokenize_chinese_chars", &b, NULL) == 0)
        topt->chinese_chars = b;
    return LODE_OK;
}

/* llama.cpp spelling -> WordPiece spelling. */
static int load_vocab(const gguf_file *f, const tok_options *topt,
                      tok_tokenizer **tok, int *n_vocab, lode_error *err)
{
    size_t n;
    int rc = gguf_get_str_array(f, "tokenizer.ggml.tokens", &n, err);
    if (rc)
        return rc;
    if (n == 0 || n > 10000000)
        return lode_error_set(err, LODE_EFORMAT,
                              "GGUF vocabulary has %zu tokens", n);
    char **words = calloc(n, sizeof *words);
    if (!words)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    int key = gguf_key_index(f, "tokenizer.ggml.tokens");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *s;
        size_t len;
        gguf_str_elem_at(f, key, i, &s, &len);
        int special = len >= 2 && s[0] == '[' && s[len - 1] == ']';
        int initial = len >= 3 && memcmp(s, PHANTOM, 3) == 0;
        char *w = malloc(len + 3);
        if (!w) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            break;
        }
        if (initial) {
            memcpy(w, s + 3, len - 3);
            w[len - 3] = '\0';
        } else if (special) {
            memcpy(w, s, len);
            w[len] = '\0';
        } else {
            memcpy(w, "##", 2);
            memcpy(w + 2, s, len);
            w[len + 2] = '\0';
        }
        if (strlen(w) != (initial ? len - 3 : special ? len : len + 2))
            rc = lode_error_set(err, LODE_EFORMAT,
                                "GGUF token %zu contains a NUL byte", i);
        words[i] = w;
    }
    if (rc == 0)
        rc = tok_create((const char *const *)words, (int)n, topt, tok, err);
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
    *n_vocab = (int)n;
    return rc;
}

int gguf_model_load(const char *path, bert_config *cfg, tok_tokenizer **tok,
                    gguf_weights *gw, bert_weights *w, lode_error *err)
{
    memset(gw, 0, sizeof *gw);
    memset(w, 0, sizeof *w);
    *tok = NULL;
    tok_options topt;
    int rc = gguf_open(path, &gw->file, err);
    if (rc)
        return rc;
    const gguf_file *f = gw->file;
    if ((rc = read_config(f, cfg, &topt, err)) ||
        (rc = load_vocab(f, &topt, tok, &cfg->vocab_size, err)))
        goto fail;
    const gguf_tensor *word = gguf_find_tensor(f, "token_embd.weight");
    if (word && word->n_dims == 2 && word->ne[1] > (uint64_t)cfg->vocab_size &&
        word->ne[1] < 10000000)
        cfg->vocab_size = (int)word->ne[1]; /* padded embedding tables */
    if (cfg->type_vocab_size == 0) {
        rc = lode_error_set(err, LODE_EFORMAT,
                            "GGUF tensor 'token_types.weight' is missing");
        goto fail;
    }
    if ((rc = bert_config_check(cfg, err)))
        goto fail;
    const int H = cfg->hidden, I = cfg->intermediate;
    if ((rc = matrix(gw, "token_embd.weight", cfg->vocab_size, H, &w->word,
                     err)) ||
        (rc = as_f32(gw, "position_embd.weight", H, cfg->max_position,
                     &w->position, err)) ||
        (rc = as_f32(gw, "token_types.weight", H, cfg->type_vocab_size,
                     &w->token_type, err)) ||
        (rc = as_f32(gw, "token_embd_norm.weight", H, 0, &w->embd_ln_g, err)) ||
        (rc = as_f32(gw, "token_embd_norm.bias", H, 0, &w->embd_ln_b, err)))
        goto fail;
    gw->layers = calloc((size_t)cfg->n_layers, sizeof *gw->layers);
    if (!gw->layers) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto fail;
    }
    w->layers = gw->layers;
    for (int l = 0; l < cfg->n_layers; l++) {
        bert_layer *L = &gw->layers[l];
        char n[64];
#define NAME(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, l), n)
        snprintf(n, sizeof n, "blk.%d.attn_qkv.weight", l);
        const gguf_tensor *qkv = gguf_find_tensor(f, n);
        if (qkv) { /* fused Q, K, V: rows q, then k, then v */
            const float *b;
            if ((rc = find(f, n, H, 3 * H, &qkv, err)) ||
                (rc = as_matrix(gw, qkv, 0, H, H, &L->q, err)) ||
                (rc = as_matrix(gw, qkv, H, H, H, &L->k, err)) ||
                (rc = as_matrix(gw, qkv, 2 * H, H, H, &L->v, err)) ||
                (rc = as_f32(gw, NAME("attn_qkv.bias"), 3 * H, 0, &b, err)))
                goto fail;
            L->q_b = b;
            L->k_b = b + H;
            L->v_b = b + 2 * H;
        } else if ((rc = matrix(gw, NAME("attn_q.weight"), H, H, &L->q, err)) ||
                   (rc = as_f32(gw, NAME("attn_q.bias"), H, 0, &L->q_b, err)) ||
                   (rc = matrix(gw, NAME("attn_k.weight"), H, H, &L->k, err)) ||
                   (rc = as_f32(gw, NAME("attn_k.bias"), H, 0, &L->k_b, err)) ||
                   (rc = matrix(gw, NAME("attn_v.weight"), H, H, &L->v, err)) ||
                   (rc = as_f32(gw, NAME("attn_v.bias"), H, 0, &L->v_b, err))) {
            goto fail;
        }
        if ((rc = matrix(gw, NAME("attn_output.weight"), H, H, &L->o, err)) ||
            (rc = as_f32(gw, NAME("attn_output.bias"), H, 0, &L->o_b, err)) ||
            (rc = as_f32(gw, NAME("attn_output_norm.weight"), H, 0,
                         &L->attn_ln_g, err)) ||
            (rc = as_f32(gw, NAME("attn_output_norm.bias"), H, 0,
                         &L->attn_ln_b, err)) ||
            (rc = matrix(gw, NAME("ffn_up.weight"), I, H, &L->up, err)) ||
            (rc = as_f32(gw, NAME("ffn_up.bias"), I, 0, &L->up_b, err)) ||
            (rc = matrix(gw, NAME("ffn_down.weight"), H, I, &L->down, err)) ||
            (rc = as_f32(gw, NAME("ffn_down.bias"), H, 0, &L->down_b, err)) ||
            (rc = as_f32(gw, NAME("layer_output_norm.weight"), H, 0,
                         &L->out_ln_g, err)) ||
            (rc = as_f32(gw, NAME("layer_output_norm.bias"), H, 0,
                         &L->out_ln_b, err)))
            goto fail;
#undef NAME
    }
    gw->type = gw->layers[0].up.type == KERN_Q8_128 ? GGUF_TYPE_LODE_Q8_128
             : gw->layers[0].up.type == KERN_Q8_0 ? GGUF_TYPE_Q8_0
             : gw->layers[0].up.type == KERN_F16 ? GGUF_TYPE_F16
                                                 : GGUF_TYPE_F32;
    return LODE_OK;
fail:
    tok_free(*tok);
    *tok = NULL;
    gguf_weights_free(gw);
    memset(w, 0, sizeof *w);
    return lode_error_prefix(err, "%s", path);
}

/* ---- conversion ---------------------------------------------------------- */

/* Write rows x cols floats as `type`. */
static int add_matrix(gguf_writer *gw, const char *name, uint32_t type,
                      const float *src, int rows, int cols, lode_error *err)
{
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    int n_dims = rows > 0 ? 2 : 1;
    if (rows <= 0)
        rows = 1;
    if (type == GGUF_TYPE_LODE_Q8_128 && cols % 128)
        type = GGUF_TYPE_Q8_0;
    if (type == GGUF_TYPE_Q8_0 && cols % 32)
        type = GGUF_TYPE_F16; /* as llama.cpp does for odd shapes */
    size_t bytes = gguf_tensor_bytes(type, (uint64_t)cols, (uint64_t)rows);
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    size_t row_bytes = bytes / (size_t)rows;
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * cols;
        uint8_t *d = buf + (size_t)r * row_bytes;
        if (type == GGUF_TYPE_F32) {
            memcpy(d, s, (size_t)cols * sizeof *s);
        } else if (type == GGUF_TYPE_F16) {
            for (int c = 0; c < cols; c++) {
                uint16_t h = kern_f32_to_f16(s[c]);
                memcpy(d + 2 * c, &h, 2);
            }
        } else if (type == GGUF_TYPE_LODE_Q8_128) {
            kern_quantize_q8_128(s, cols, d);
        } else {
            kern_quantize_q8_0(s, cols, d);
        }
    }
    int rc = gguf_add_tensor(gw, name, type, n_dims, ne, buf, bytes, err);
    free(buf);
    return rc;
}

static const char *pooling_key(bert_pooling p)
{
    switch (p) {
    case BERT_POOL_CLS: return "cls";
    case BERT_POOL_MAX: return "max";
    case BERT_POOL_MEAN_SQRT_LEN: return "mean_sqrt_len";
    default: return "mean";
    }
}

static int write_vocab(gguf_writer *g, const tok_tokenizer *tok,
                       lode_error *err)
{
    int n = tok_vocab_size(tok);
    char **words = calloc((size_t)n, sizeof *words);
    int32_t *types = calloc((size_t)n, sizeof *types);
    int rc = LODE_OK;
    if (!words || !types) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *t = tok_token(tok, i);
        size_t len = strlen(t);
        words[i] = malloc(len + 4);
        if (!words[i]) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto out;
        }
        types[i] = 1; /* normal */
        if (len >= 2 && t[0] == '[' && t[len - 1] == ']') {
            strcpy(words[i], t);
            if (i == tok_cls_id(tok) || i == tok_sep_id(tok) ||
                i == tok_pad_id(tok) || !strcmp(t, "[MASK]"))
                types[i] = 3; /* control */
            else if (i == tok_unk_id(tok))
                types[i] = 2; /* unknown */
        } else if (strncmp(t, "##", 2) == 0) {
            strcpy(words[i], t + 2);
        } else {
            memcpy(words[i], PHANTOM, 3);
            strcpy(words[i] + 3, t);
        }
    }
    if (gguf_set_str(g, "tokenizer.ggml.model", "bert") ||
        gguf_set_str_array(g, "tokenizer.ggml.tokens",
                           (const char *const *)words, (size_t)n) ||
        gguf_set_i32_array(g, "tokenizer.ggml.token_type", types, (size_t)n))
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    int mask = tok_lookup(tok, "[MASK]");
    if (!rc && (gguf_set_u32(g, "tokenizer.ggml.bos_token_id",
                             (uint32_t)tok_cls_id(tok)) ||
                gguf_set_u32(g, "tokenizer.ggml.cls_token_id",
                             (uint32_t)tok_cls_id(tok)) ||
                gguf_set_u32(g, "tokenizer.ggml.seperator_token_id",
                             (uint32_t)tok_sep_id(tok)) ||
                gguf_set_u32(g, "tokenizer.ggml.unknown_token_id",
                             (uint32_t)tok_unk_id(tok)) ||
                (tok_pad_id(tok) >= 0 &&
                 gguf_set_u32(g, "tokenizer.ggml.padding_token_id",
                              (uint32_t)tok_pad_id(tok))) ||
                (mask >= 0 && gguf_set_u32(g, "tokenizer.ggml.mask_token_id",
                                           (uint32_t)mask))))
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
out:
    if (words)
        for (int i = 0; i < n; i++)
            free(words[i]);
    free(words);
    free(types);
    return rc;
}

int gguf_model_convert(const char *src, const char *out_path, uint32_t type,
                       lode_error *err)
{
    bert_config cfg;
    tok_options topt;
    tok_tokenizer *tok = NULL;
    hf_weights hw = {0};
    bert_weights w;
    gguf_writer *g = NULL;
    if (type != GGUF_TYPE_F32 && type != GGUF_TYPE_F16 &&
        type != GGUF_TYPE_Q8_0 && type != GGUF_TYPE_LODE_Q8_128)
        return lode_error_set(err, LODE_EINVAL, "conversion type must be "
                              "f32, f16, q8_0 or q8_128");
    int rc = hf_read_config(src, &cfg, &topt, err);
    if (rc || (rc = hf_load_tokenizer(src, &topt, &tok, err)) ||
        (rc = hf_load_weights(src, &cfg, &hw, &w, err)) ||
        (rc = gguf_writer_new(&g, err)))
        goto out;
    const char *name = strrchr(src, '/');
    name = name && name[1] ? name + 1 : src;
    const int H = cfg.hidden, I = cfg.intermediate;
    int meta_fail =
        gguf_set_str(g, "general.architecture", "bert") ||
        gguf_set_str(g, "general.name", name) ||
        gguf_set_u32(g, "general.file_type",
                     type == GGUF_TYPE_F32 ? 0 : type == GGUF_TYPE_F16 ? 1
                     : type == GGUF_TYPE_Q8_0 ? 7 : GGUF_TYPE_LODE_Q8_128) ||
        gguf_set_u32(g, "bert.context_length", (uint32_t)cfg.max_position) ||
        gguf_set_u32(g, "bert.embedding_length", (uint32_t)H) ||
        gguf_set_u32(g, "bert.feed_forward_length", (uint32_t)I) ||
        gguf_set_u32(g, "bert.block_count", (uint32_t)cfg.n_layers) ||
        gguf_set_u32(g, "bert.attention.head_count", (uint32_t)cfg.n_heads) ||
        gguf_set_f32(g, "bert.attention.layer_norm_epsilon",
                     cfg.layer_norm_eps) ||
        gguf_set_bool(g, "bert.attention.causal", 0) ||
        /* llama.cpp knows mean (1) and CLS (2); for max and
         * mean-sqrt-len say none (0) rather than a wrong one: lode reads
         * lode.pooling, llama.cpp then returns token vectors */
        gguf_set_u32(g, "bert.pooling_type",
                     cfg.pooling == BERT_POOL_CLS ? 2
                     : cfg.pooling == BERT_POOL_MEAN ? 1 : 0) ||
        gguf_set_u32(g, "tokenizer.ggml.token_type_count",
                     (uint32_t)cfg.type_vocab_size) ||
        gguf_set_u32(g, "lode.max_seq_length", (uint32_t)cfg.max_seq_length) ||
        gguf_set_bool(g, "lode.do_lower_case", topt.lowercase) ||
        gguf_set_i32(g, "lode.strip_accents", topt.strip_accents) ||
        gguf_set_bool(g, "lode.tokenize_chinese_chars", topt.chinese_chars) ||
        gguf_set_str(g, "lode.pooling", pooling_key(cfg.pooling)) ||
        gguf_set_bool(g, "lode.normalize", cfg.normalize);
    if (meta_fail) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = write_vocab(g, tok, err)))
        goto out;
    /* Small tables stay f32; the big matrices take the chosen type, but
     * for q8_128 the token table (read a row at a time, never multiplied)
     * and Q, K and V keep q8_0: Q, K and V read a layer norm's output,
     * whose outlier channels blocks of 128 quantize worst (all-MiniLM-L6-v2,
     * tests/ref/minilm.json: worst cosine 0.9931 with them in q8_128,
     * 0.9960 with them in q8_0, which costs 8% of the speed). */
    uint32_t q8_0_type = type == GGUF_TYPE_LODE_Q8_128 ? GGUF_TYPE_Q8_0 : type;
    if ((rc = add_matrix(g, "token_embd.weight", q8_0_type, w.word.data,
                         cfg.vocab_size, H, err)) ||
        (rc = add_matrix(g, "position_embd.weight", GGUF_TYPE_F32, w.position,
                         cfg.max_position, H, err)) ||
        (rc = add_matrix(g, "token_types.weight", GGUF_TYPE_F32, w.token_type,
                         cfg.type_vocab_size, H, err)) ||
        (rc = add_matrix(g, "token_embd_norm.weight", GGUF_TYPE_F32,
                         w.embd_ln_g, 0, H, err)) ||
        (rc = add_matrix(g, "token_embd_norm.bias", GGUF_TYPE_F32, w.embd_ln_b,
                         0, H, err)))
        goto out;
    for (int l = 0; l < cfg.n_layers && !rc; l++) {
        const bert_layer *L = &w.layers[l];
        char n[64];
#define T(suffix, t, p, r, c)                                                \
    (snprintf(n, sizeof n, "blk.%d." suffix, l),                             \
     add_matrix(g, n, t, p, r, c, err))
        rc = T("attn_q.weight", q8_0_type, L->q.data, H, H) ||
             T("attn_q.bias", GGUF_TYPE_F32, L->q_b, 0, H) ||
             T("attn_k.weight", q8_0_type, L->k.data, H, H) ||
             T("attn_k.bias", GGUF_TYPE_F32, L->k_b, 0, H) ||
             T("attn_v.weight", q8_0_type, L->v.data, H, H) ||
             T("attn_v.bias", GGUF_TYPE_F32, L->v_b, 0, H) ||
             T("attn_output.weight", type, L->o.data, H, H) ||
             T("attn_output.bias", GGUF_TYPE_F32, L->o_b, 0, H) ||
             T("attn_output_norm.weight", GGUF_TYPE_F32, L->attn_ln_g, 0, H) ||
             T("attn_output_norm.bias", GGUF_TYPE_F32, L->attn_ln_b, 0, H) ||
             T("ffn_up.weight", type, L->up.data, I, H) ||
             T("ffn_up.bias", GGUF_TYPE_F32, L->up_b, 0, I) ||
             T("ffn_down.weight", type, L->down.data, H, I) ||
             T("ffn_down.bias", GGUF_TYPE_F32, L->down_b, 0, H) ||
             T("layer_output_norm.weight", GGUF_TYPE_F32, L->out_ln_g, 0, H) ||
             T("layer_output_norm.bias", GGUF_TYPE_F32, L->out_ln_b, 0, H);
#undef T
        if (rc)
            rc = err ? err->code : LODE_EINTERNAL;
    }
    if (!rc)
        rc = gguf_write(g, out_path, err);
out:
    gguf_writer_free(g);
    hf_weights_free(&hw);
    tok_free(tok);
    return rc;
}
