/* model.c - load a model and embed batches of texts (see model.h).
 *
 * Batching: texts are tokenized, sorted by length and cut into batches of
 * at most MODEL_TOKEN_BUDGET tokens; each batch goes through bert_forward
 * packed without padding.  The scratch memory therefore grows with the
 * token budget, not with the number of texts in a request, and is kept for
 * the next call. */
#include "model.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "gguf_model.h"
#include "hf.h"

struct model {
    bert_config cfg;
    bert_weights w;
    hf_weights hw;        /* loaded from a Hugging Face directory, or */
    gguf_weights gw;      /* from a GGUF file (gw.file != NULL) */
    size_t file_bytes;
    struct pool *pool;    /* not owned; NULL runs on the caller's thread */
    tok_tokenizer *tok;
    bert_scratch scratch;
    char *name;
    int token_budget;
};

/* The six products of layer L, in a fixed order. */
static void layer_matrices(bert_layer *L, kern_matrix *mats[6])
{
    mats[0] = &L->q;
    mats[1] = &L->k;
    mats[2] = &L->v;
    mats[3] = &L->o;
    mats[4] = &L->up;
    mats[5] = &L->down;
}

/* Lay the layers' weights out for the kernels once (kern_pack: each
 * matrix owns its `packed` copy, freed in model_free); where that
 * succeeds the products no longer read the file's copy, so its pages are
 * handed back to the page cache (gguf_release).  Where it fails, products
 * pack per call instead, with the same results. */
static void pack_weights(model *m)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        kern_matrix *mats[6];
        layer_matrices(&m->w.layers[l], mats);
        for (int i = 0; i < 6; i++) {
            mats[i]->packed = kern_pack(mats[i]);
            if (mats[i]->packed && m->gw.file)
                gguf_release(m->gw.file, mats[i]->data,
                             (size_t)mats[i]->rows *
                                 kern_row_bytes(mats[i]->type, mats[i]->cols));
        }
    }
}

int model_load(const char *path, model **out, lode_error *err)
{
    *out = NULL;
    int is_dir = hf_is_model_dir(path);
    struct stat sb;
    if (!is_dir && (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)))
        return lode_error_set(err, LODE_ENOTFOUND,
                              "model %s: neither a model directory (with "
                              "config.json) nor a .gguf file; run `make "
                              "model` or pass -m PATH", path);
    model *m = calloc(1, sizeof *m);
    if (!m)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    int rc;
    if (!is_dir) {
        rc = gguf_model_load(path, &m->cfg, &m->tok, &m->gw, &m->w, err);
        if (rc)
            goto fail;
        m->file_bytes = gguf_file_size(m->gw.file);
        goto loaded;
    }
    tok_options topt;
    if ((rc = hf_read_config(path, &m->cfg, &topt, err)))
        goto fail;
    if ((rc = hf_load_tokenizer(path, &topt, &m->tok, err)))
        goto fail;
    if (tok_vocab_size(m->tok) > m->cfg.vocab_size) {
        rc = lode_error_set(err, LODE_EFORMAT,
                            "model %s: the tokenizer has %d tokens but the "
                            "model only %d embeddings", path,
                            tok_vocab_size(m->tok), m->cfg.vocab_size);
        goto fail;
    }
    if ((rc = hf_load_weights(path, &m->cfg, &m->hw, &m->w, err)))
        goto fail;
    m->file_bytes = st_file_size(m->hw.st);
loaded:;
    const char *slash = strrchr(path, '/');
    while (slash && slash[1] == '\0' && slash > path) { /* trailing '/' */
        const char *s = slash - 1;
        while (s > path && *s != '/')
            s--;
        slash = *s == '/' ? s : NULL;
    }
    m->name = strdup(slash ? slash + 1 : path);
    if (!m->name) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto fail;
    }
    size_t nl = strlen(m->name);
    if (nl && m->name[nl - 1] == '/')
        m->name[nl - 1] = '\0';
    m->token_budget = MODEL_TOKEN_BUDGET;
    if (m->token_budget < m->cfg.max_seq_length)
        m->token_budget = m->cfg.max_seq_length;
    kern_init();
    pack_weights(m);
    *out = m;
    return LODE_OK;
fail:
    model_free(m);
    return rc;
}

void model_free(model *m)
{
    if (!m)
        return;
    for (int l = 0; m->w.layers && l < m->cfg.n_layers; l++) {
        kern_matrix *mats[6];
        layer_matrices(&m->w.layers[l], mats);
        for (int i = 0; i < 6; i++)
            free((void *)mats[i]->packed);
    }
    hf_weights_free(&m->hw); /* frees w.layers: the packed copies first */
    gguf_weights_free(&m->gw);
    tok_free(m->tok);
    bert_scratch_free(&m->scratch);
    free(m->name);
    free(m);
}

const char *model_default_path(void)
{
    const char *env = getenv("LODE_MODEL");
    return env && *env ? env : MODEL_DEFAULT_PATH;
}

const bert_config *model_config(const model *m) { return &m->cfg; }
const tok_tokenizer *model_tokenizer(const model *m) { return m->tok; }
int model_dim(const model *m) { return m->cfg.hidden; }
int model_max_seq_length(const model *m) { return m->cfg.max_seq_length; }
const char *model_name(const model *m) { return m->name; }

size_t model_file_bytes(const model *m) { return m->file_bytes; }
void model_set_pool(model *m, struct pool *pool) { m->pool = pool; }

const char *model_type_name(const model *m)
{
    if (m->gw.file)
        return m->gw.type == GGUF_TYPE_Q8_0 ? "q8_0"
             : m->gw.type == GGUF_TYPE_LODE_Q8_128 ? "q8_128"
             : m->gw.type == GGUF_TYPE_F16 ? "f16" : "f32";
    switch (m->hw.dtype) {
    case ST_F16: return "f16";
    case ST_BF16: return "bf16";
    default: return "f32";
    }
}

int model_tokenize(const model *m, const char *text, size_t len,
                   int32_t *ids, int *n_ids, int *n_full, lode_error *err)
{
    if (len == 0)
        return lode_error_set(err, LODE_EEMPTY, "text is empty");
    return tok_encode(m->tok, text, len, m->cfg.max_seq_length, ids, n_ids,
                      n_full, NULL, err);
}

typedef struct seq {
    int index;   /* position in the caller's arrays */
    int len;
    int32_t *ids;
} seq;

static int seq_by_len(const void *a, const void *b)
{
    const seq *x = a, *y = b;
    if (x->len != y->len)
        return x->len - y->len;
    return x->index - y->index;
}

/* Run sorted sequences through the encoder in token-budget batches. */
static int embed_sequences(model *m, seq *seqs, int n, float *out,
                           lode_error *err)
{
    const int H = m->cfg.hidden;
    qsort(seqs, (size_t)n, sizeof *seqs, seq_by_len);
    int32_t *ids = malloc((size_t)m->token_budget * sizeof *ids);
    int *lens = malloc((size_t)n * sizeof *lens);
    float *vecs = malloc((size_t)n * H * sizeof *vecs);
    int rc = LODE_OK;
    if (!ids || !lens || !vecs) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    for (int start = 0; start < n;) {
        int count = 0, tokens = 0;
        while (start + count < n &&
               tokens + seqs[start + count].len <= m->token_budget) {
            memcpy(ids + tokens, seqs[start + count].ids,
                   (size_t)seqs[start + count].len * sizeof *ids);
            lens[count] = seqs[start + count].len;
            tokens += seqs[start + count].len;
            count++;
        }
        rc = bert_forward(&m->cfg, &m->w, &m->scratch, m->pool, ids, lens,
                          count, vecs, err);
        if (rc)
            goto out;
        for (int i = 0; i < count; i++)
            memcpy(out + (size_t)seqs[start + i].index * H,
                   vecs + (size_t)i * H, (size_t)H * sizeof *vecs);
        start += count;
    }
out:
    free(ids);
    free(lens);
    free(vecs);
    return rc;
}

/* Sequences and their id storage for n inputs: one allocation each. */
static int alloc_seqs(const model *m, int n, seq **seqs, int32_t **ids,
                      lode_error *err)
{
    *seqs = calloc((size_t)n, sizeof **seqs);
    *ids = malloc((size_t)n * m->cfg.max_seq_length * sizeof **ids);
    if (*seqs && *ids) {
        for (int i = 0; i < n; i++) {
            (*seqs)[i].index = i;
            (*seqs)[i].ids = *ids + (size_t)i * m->cfg.max_seq_length;
        }
        return LODE_OK;
    }
    free(*seqs);
    free(*ids);
    *seqs = NULL;
    *ids = NULL;
    return lode_error_set(err, LODE_ENOMEM, "out of memory for %d inputs", n);
}

int model_embed(model *m, int n, const char *const *texts,
                const size_t *lens, float *out, int *n_truncated,
                lode_error *err)
{
    if (n <= 0)
        return LODE_OK;
    seq *seqs;
    int32_t *ids;
    int truncated = 0, rc = alloc_seqs(m, n, &seqs, &ids, err);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        int n_ids, n_full;
        rc = model_tokenize(m, texts[i], lens[i], seqs[i].ids, &n_ids,
                            &n_full, err);
        if (rc) {
            if (n > 1)
                lode_error_prefix(err, "text %d", i);
            goto out;
        }
        seqs[i].len = n_ids;
        truncated += n_full > n_ids;
    }
    rc = embed_sequences(m, seqs, n, out, err);
    if (!rc && n_truncated)
        *n_truncated = truncated;
out:
    free(seqs);
    free(ids);
    return rc;
}

int model_embed_ids(model *m, int n, const int32_t *const *ids_in,
                    const int *lens, float *out, int *n_truncated,
                    lode_error *err)
{
    if (n <= 0)
        return LODE_OK;
    const int L = m->cfg.max_seq_length;
    seq *seqs;
    int32_t *ids;
    int truncated = 0, rc = alloc_seqs(m, n, &seqs, &ids, err);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        int keep = lens[i] < L - 2 ? lens[i] : L - 2;
        truncated += lens[i] > keep;
        if (lens[i] <= 0) {
            rc = lode_error_set(err, LODE_EEMPTY, "input %d has no tokens",
                                i);
            goto out;
        }
        seqs[i].ids[0] = tok_cls_id(m->tok);
        for (int j = 0; j < keep; j++) {
            if (ids_in[i][j] < 0 || ids_in[i][j] >= m->cfg.vocab_size) {
                rc = lode_error_set(err, LODE_EINVAL,
                                    "input %d: token id %d is outside the "
                                    "vocabulary (0..%d)", i, ids_in[i][j],
                                    m->cfg.vocab_size - 1);
                goto out;
            }
            seqs[i].ids[1 + j] = ids_in[i][j];
        }
        seqs[i].ids[1 + keep] = tok_sep_id(m->tok);
        seqs[i].len = keep + 2;
    }
    rc = embed_sequences(m, seqs, n, out, err);
    if (!rc && n_truncated)
        *n_truncated = truncated;
out:
    free(seqs);
    free(ids);
    return rc;
}
