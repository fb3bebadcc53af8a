/* hf.c - read a sentence-transformers directory into a bert_config, a
 * tokenizer and bert_weights (see hf.h).
 *
 * Tensors are used in place from the mmap'd safetensors file when they are
 * F32 and aligned; F16/BF16 (or unaligned) tensors are converted to f32
 * buffers once at load.  Tensor names may carry a prefix ("bert.",
 * "model.", ...): it is found from the word-embedding table's name.
 * Tensors lode does not need (the pooler, position_ids) are ignored. */
#include "hf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HF_PATH_MAX 4096

static int join(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, HF_PATH_MAX, "%s/%s", dir, name);
    return n > 0 && n < HF_PATH_MAX;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int hf_is_model_dir(const char *path)
{
    char p[HF_PATH_MAX];
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
           join(p, path, "config.json") && file_exists(p);
}

/* Load dir/name as JSON.  Missing and optional: *out = NULL, LODE_OK. */
static int load_json(const char *dir, const char *name, int required,
                     json_t **out, lode_error *err)
{
    char p[HF_PATH_MAX];
    *out = NULL;
    if (!join(p, dir, name))
        return lode_error_set(err, LODE_EINVAL, "path too long: %s", dir);
    if (!file_exists(p)) {
        if (!required)
            return LODE_OK;
        return lode_error_set(err, LODE_ENOTFOUND, "%s: no such file", p);
    }
    json_error_t jerr;
    *out = json_load_file(p, 0, &jerr);
    if (!*out)
        return lode_error_set(err, LODE_EFORMAT, "%s: line %d: %s", p,
                              jerr.line, jerr.text);
    if (!json_is_object(*out) && !json_is_array(*out)) {
        json_decref(*out);
        *out = NULL;
        return lode_error_set(err, LODE_EFORMAT, "%s: not a JSON object", p);
    }
    return LODE_OK;
}

static int get_int(json_t *o, const char *key, int *out, int required,
                   const char *file, lode_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return lode_error_set(err, LODE_EFORMAT, "%s: missing \"%s\"",
                                  file, key);
        return LODE_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 100000000)
        return lode_error_set(err, LODE_EFORMAT,
                              "%s: \"%s\" is not a valid size", file, key);
    *out = (int)json_integer_value(v);
    return LODE_OK;
}

static int get_bool(json_t *o, const char *key, int dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int read_architecture(json_t *c, lode_error *err)
{
    json_t *mt = json_object_get(c, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (!type) {
        json_t *arch = json_array_get(json_object_get(c, "architectures"), 0);
        type = json_is_string(arch) ? json_string_value(arch) : "unknown";
        if (strncmp(type, "Bert", 4) == 0)
            type = "bert";
    }
    if (strcmp(type, "bert") != 0)
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "config.json: model_type '%s' is not supported "
                              "(lode runs BERT-architecture models)", type);
    json_t *pe = json_object_get(c, "position_embedding_type");
    if (json_is_string(pe) && strcmp(json_string_value(pe), "absolute"))
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "config.json: position_embedding_type '%s' is "
                              "not supported (only absolute)",
                              json_string_value(pe));
    json_t *act = json_object_get(c, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "gelu"))
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "config.json: hidden_act '%s' is not supported "
                              "(only exact gelu)", json_string_value(act));
    return LODE_OK;
}

/* modules.json names the Pooling directory and whether Normalize follows.
 * Without modules.json sentence-transformers uses mean pooling, no
 * normalisation. */
static int read_modules(const char *dir, bert_config *cfg, lode_error *err)
{
    json_t *mods = NULL, *pool = NULL;
    cfg->pooling = BERT_POOL_MEAN;
    cfg->normalize = 0;
    int rc = load_json(dir, "modules.json", 0, &mods, err);
    if (rc || !mods)
        return rc;
    if (!json_is_array(mods)) {
        rc = lode_error_set(err, LODE_EFORMAT,
                            "modules.json: not a JSON array");
        goto out;
    }
    const char *pool_path = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *path = json_string_value(json_object_get(m, "path"));
        if (!type)
            continue;
        const char *dot = strrchr(type, '.');
        const char *cls = dot ? dot + 1 : type;
        if (strcmp(cls, "Transformer") == 0)
            continue;
        if (strcmp(cls, "Pooling") == 0)
            pool_path = path ? path : "";
        else if (strcmp(cls, "Normalize") == 0)
            cfg->normalize = 1;
        else {
            rc = lode_error_set(err, LODE_EUNSUPPORTED,
                                "modules.json: module '%s' is not supported "
                                "(lode knows Transformer, Pooling, Normalize)",
                                type);
            goto out;
        }
    }
    if (!pool_path)
        goto out;
    char sub[HF_PATH_MAX];
    if (!join(sub, pool_path, "config.json")) {
        rc = lode_error_set(err, LODE_EINVAL, "pooling path too long");
        goto out;
    }
    rc = load_json(dir, sub, 1, &pool, err);
    if (rc)
        goto out;
    int cls = get_bool(pool, "pooling_mode_cls_token", 0);
    int mean = get_bool(pool, "pooling_mode_mean_tokens", 0);
    int max = get_bool(pool, "pooling_mode_max_tokens", 0);
    int sqrtlen = get_bool(pool, "pooling_mode_mean_sqrt_len_tokens", 0);
    const char *mode = json_string_value(json_object_get(pool, "pooling_mode"));
    if (mode) { /* newer files may name the mode directly */
        cls = !strcmp(mode, "cls");
        mean = !strcmp(mode, "mean");
        max = !strcmp(mode, "max");
        sqrtlen = !strcmp(mode, "mean_sqrt_len_tokens");
    }
    if (cls + mean + max + sqrtlen != 1) {
        rc = lode_error_set(err, LODE_EUNSUPPORTED,
                            "%s/config.json: exactly one pooling mode must be"
                            " on (cls, mean, max or mean_sqrt_len)",
                            pool_path);
        goto out;
    }
    cfg->pooling = cls ? BERT_POOL_CLS : mean ? BERT_POOL_MEAN
                 : max ? BERT_POOL_MAX : BERT_POOL_MEAN_SQRT_LEN;
out:
    json_decref(mods);
    json_decref(pool);
    return rc;
}

int hf_read_config(const char *dir, bert_config *cfg, tok_options *topt,
                   lode_error *err)
{
    json_t *c = NULL, *sb = NULL, *tc = NULL;
    memset(cfg, 0, sizeof *cfg);
    *topt = tok_default_options();
    int rc = load_json(dir, "config.json", 1, &c, err);
    if (rc)
        goto out;
    if ((rc = read_architecture(c, err)))
        goto out;
    const char *f = "config.json";
    cfg->type_vocab_size = 2;
    if ((rc = get_int(c, "vocab_size", &cfg->vocab_size, 1, f, err)) ||
        (rc = get_int(c, "hidden_size", &cfg->hidden, 1, f, err)) ||
        (rc = get_int(c, "num_hidden_layers", &cfg->n_layers, 1, f, err)) ||
        (rc = get_int(c, "num_attention_heads", &cfg->n_heads, 1, f, err)) ||
        (rc = get_int(c, "intermediate_size", &cfg->intermediate, 1, f,
                      err)) ||
        (rc = get_int(c, "max_position_embeddings", &cfg->max_position, 1, f,
                      err)) ||
        (rc = get_int(c, "type_vocab_size", &cfg->type_vocab_size, 0, f,
                      err)))
        goto out;
    json_t *eps = json_object_get(c, "layer_norm_eps");
    cfg->layer_norm_eps = json_is_number(eps) ? (float)json_number_value(eps)
                                              : 1e-12f;

    /* Tokenizer options: tokenizer_config.json, with BertTokenizer's
     * defaults when absent (transformers lets these override the
     * normalizer stored in tokenizer.json). */
    if ((rc = load_json(dir, "tokenizer_config.json", 0, &tc, err)))
        goto out;
    int model_max = 0;
    if (tc) {
        topt->lowercase = get_bool(tc, "do_lower_case", 1);
        json_t *sa = json_object_get(tc, "strip_accents");
        topt->strip_accents = json_is_boolean(sa) ? json_is_true(sa) : -1;
        topt->chinese_chars = get_bool(tc, "tokenize_chinese_chars", 1);
        json_t *mm = json_object_get(tc, "model_max_length");
        if (json_is_integer(mm) && json_integer_value(mm) > 0 &&
            json_integer_value(mm) < 1000000)
            model_max = (int)json_integer_value(mm);
    }

    /* max_seq_length: sentence_bert_config.json, else the tokenizer's
     * model_max_length, capped by the position table (as
     * sentence-transformers does). */
    if ((rc = load_json(dir, "sentence_bert_config.json", 0, &sb, err)))
        goto out;
    cfg->max_seq_length = model_max ? model_max : cfg->max_position;
    if (sb) {
        if ((rc = get_int(sb, "max_seq_length", &cfg->max_seq_length, 0,
                          "sentence_bert_config.json", err)))
            goto out;
        if (get_bool(sb, "do_lower_case", 0) && !topt->lowercase) {
            /* sentence-transformers lowercases the text itself; accents
             * stay as the tokenizer's own setting says. */
            if (topt->strip_accents < 0)
                topt->strip_accents = 0;
            topt->lowercase = 1;
        }
    }
    if (cfg->max_seq_length > cfg->max_position)
        cfg->max_seq_length = cfg->max_position;
    if ((rc = read_modules(dir, cfg, err)))
        goto out;
    rc = bert_config_check(cfg, err);
out:
    json_decref(c);
    json_decref(sb);
    json_decref(tc);
    if (rc && err)
        lode_error_prefix(err, "model %s", dir);
    return rc;
}

int hf_load_tokenizer(const char *dir, const tok_options *topt,
                      tok_tokenizer **out, lode_error *err)
{
    char p[HF_PATH_MAX];
    if (!join(p, dir, "vocab.txt"))
        return lode_error_set(err, LODE_EINVAL, "path too long: %s", dir);
    if (file_exists(p))
        return tok_load_vocab_txt(p, topt, out, err);
    join(p, dir, "tokenizer.json");
    if (file_exists(p))
        return tok_load_tokenizer_json(p, topt, out, err);
    return lode_error_set(err, LODE_ENOTFOUND,
                          "model %s has neither vocab.txt nor tokenizer.json",
                          dir);
}

/* ---- weights ----------------------------------------------------------- */

typedef struct loader {
    const st_file *st;
    const char *prefix;
    hf_weights *hw;
    lode_error *err;
} loader;

/* The tensor prefix + name as floats, checked against the expected shape
 * (dims 0 = rows, 1 = cols; cols 0 means a vector of `rows`). */
static int tensor_f32(loader *ld, const char *name, int rows, int cols,
                      const float **out)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    const st_tensor *t = st_find(ld->st, full);
    if (!t)
        return lode_error_set(ld->err, LODE_EFORMAT,
                              "model.safetensors: tensor '%s' is missing",
                              full);
    int want_ndim = cols ? 2 : 1;
    if (t->ndim != want_ndim || t->shape[0] != rows ||
        (cols && t->shape[1] != cols))
        return lode_error_set(ld->err, LODE_EFORMAT,
                              "model.safetensors: tensor '%s' has shape "
                              "[%lld%s%lld], config.json says [%d%s%d]", full,
                              (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                              t->ndim > 1 ? (long long)t->shape[1] : 0LL, rows,
                              cols ? ", " : "", cols);
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = t->data;
        return LODE_OK;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return lode_error_set(ld->err, LODE_EUNSUPPORTED,
                              "model.safetensors: tensor '%s' has dtype %s "
                              "(F32, F16 or BF16 expected)", full,
                              st_dtype_name(t->dtype));
    float *buf = malloc((size_t)t->numel * sizeof(float) + 1);
    void **list = realloc(ld->hw->converted,
                          (size_t)(ld->hw->n_converted + 1) * sizeof *list);
    if (!buf || !list) {
        free(buf);
        if (list)
            ld->hw->converted = list;
        return lode_error_set(ld->err, LODE_ENOMEM,
                              "out of memory converting '%s'", full);
    }
    ld->hw->converted = list;
    list[ld->hw->n_converted++] = buf;
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == ST_F32) {
            memcpy(&buf[i], src + 4 * i, 4);
        } else {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            buf[i] = t->dtype == ST_F16 ? kern_f16_to_f32(h)
                                        : kern_bf16_to_f32(h);
        }
    }
    *out = buf;
    return LODE_OK;
}

static int matrix(loader *ld, const char *name, int rows, int cols,
                  kern_matrix *m)
{
    const float *p;
    int rc = tensor_f32(ld, name, rows, cols, &p);
    if (rc)
        return rc;
    m->type = KERN_F32;
    m->rows = rows;
    m->cols = cols;
    m->data = p;
    return LODE_OK;
}

int hf_load_weights(const char *dir, const bert_config *cfg, hf_weights *hw,
                    bert_weights *w, lode_error *err)
{
    char p[HF_PATH_MAX];
    memset(hw, 0, sizeof *hw);
    memset(w, 0, sizeof *w);
    if (!join(p, dir, "model.safetensors"))
        return lode_error_set(err, LODE_EINVAL, "path too long: %s", dir);
    if (!file_exists(p))
        return lode_error_set(err, LODE_ENOTFOUND,
                              "%s: no such file (lode reads safetensors "
                              "weights, not pytorch_model.bin)", p);
    int rc = st_open(p, &hw->st, err);
    if (rc)
        return rc;

    /* Find the prefix from the word-embedding table's name. */
    static const char word_name[] = "embeddings.word_embeddings.weight";
    char prefix[256] = "";
    int found = 0;
    for (int i = 0; i < st_count(hw->st) && !found; i++) {
        const char *n = st_get(hw->st, i)->name;
        size_t nl = strlen(n), wl = sizeof word_name - 1;
        if (nl >= wl && strcmp(n + nl - wl, word_name) == 0 &&
            nl - wl < sizeof prefix && (nl == wl || n[nl - wl - 1] == '.')) {
            memcpy(prefix, n, nl - wl);
            prefix[nl - wl] = '\0';
            hw->dtype = st_get(hw->st, i)->dtype;
            found = 1;
        }
    }
    if (!found) {
        rc = lode_error_set(err, LODE_EFORMAT,
                            "%s: no '%s' tensor: not a BERT model", p,
                            word_name);
        goto fail;
    }
    loader ld = {hw->st, prefix, hw, err};
    const int H = cfg->hidden, I = cfg->intermediate;
    if ((rc = matrix(&ld, word_name, cfg->vocab_size, H, &w->word)) ||
        (rc = tensor_f32(&ld, "embeddings.position_embeddings.weight",
                         cfg->max_position, H, &w->position)) ||
        (rc = tensor_f32(&ld, "embeddings.token_type_embeddings.weight",
                         cfg->type_vocab_size, H, &w->token_type)) ||
        (rc = tensor_f32(&ld, "embeddings.LayerNorm.weight", H, 0,
                         &w->embd_ln_g)) ||
        (rc = tensor_f32(&ld, "embeddings.LayerNorm.bias", H, 0,
                         &w->embd_ln_b)))
        goto fail;
    hw->layers = calloc((size_t)cfg->n_layers, sizeof *hw->layers);
    if (!hw->layers) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto fail;
    }
    w->layers = hw->layers;
    for (int l = 0; l < cfg->n_layers; l++) {
        bert_layer *L = &hw->layers[l];
        char n[24][128];
        static const char *const parts[] = {
            "attention.self.query.weight", "attention.self.query.bias",
            "attention.self.key.weight", "attention.self.key.bias",
            "attention.self.value.weight", "attention.self.value.bias",
            "attention.output.dense.weight", "attention.output.dense.bias",
            "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias", "intermediate.dense.weight",
            "intermediate.dense.bias", "output.dense.weight",
            "output.dense.bias", "output.LayerNorm.weight",
            "output.LayerNorm.bias",
        };
        for (int i = 0; i < 16; i++)
            snprintf(n[i], sizeof n[i], "encoder.layer.%d.%s", l, parts[i]);
        if ((rc = matrix(&ld, n[0], H, H, &L->q)) ||
            (rc = tensor_f32(&ld, n[1], H, 0, &L->q_b)) ||
            (rc = matrix(&ld, n[2], H, H, &L->k)) ||
            (rc = tensor_f32(&ld, n[3], H, 0, &L->k_b)) ||
            (rc = matrix(&ld, n[4], H, H, &L->v)) ||
            (rc = tensor_f32(&ld, n[5], H, 0, &L->v_b)) ||
            (rc = matrix(&ld, n[6], H, H, &L->o)) ||
            (rc = tensor_f32(&ld, n[7], H, 0, &L->o_b)) ||
            (rc = tensor_f32(&ld, n[8], H, 0, &L->attn_ln_g)) ||
            (rc = tensor_f32(&ld, n[9], H, 0, &L->attn_ln_b)) ||
            (rc = matrix(&ld, n[10], I, H, &L->up)) ||
            (rc = tensor_f32(&ld, n[11], I, 0, &L->up_b)) ||
            (rc = matrix(&ld, n[12], H, I, &L->down)) ||
            (rc = tensor_f32(&ld, n[13], H, 0, &L->down_b)) ||
            (rc = tensor_f32(&ld, n[14], H, 0, &L->out_ln_g)) ||
            (rc = tensor_f32(&ld, n[15], H, 0, &L->out_ln_b)))
            goto fail;
    }
    return LODE_OK;
fail:
    hf_weights_free(hw);
    memset(w, 0, sizeof *w);
    return rc;
}

void hf_weights_free(hf_weights *hw)
{
    for (int i = 0; i < hw->n_converted; i++)
        free(hw->converted[i]);
    free(hw->converted);
    free(hw->layers);
    st_close(hw->st);
    memset(hw, 0, sizeof *hw);
}
