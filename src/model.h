/* model.h - the embedding library API shared by the CLI and the server:
 * load a model, tokenize, embed a batch, free.
 *
 * A model is loaded from a Hugging Face sentence-transformers directory or
 * a GGUF file (see gguf_model.h).
 * Loading maps the weights; embedding reuses scratch memory owned by the
 * model, so one model must not embed on two threads at once (the server
 * gives the model to one scheduler thread).  Tokenizing is thread-safe.
 */
#ifndef LODE_MODEL_H
#define LODE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "err.h"
#include "tokenizer.h"

typedef struct model model;

/* The model the CLI and server load when none is given: $LODE_MODEL, else
 * this path (written by `make model`). */
#define MODEL_DEFAULT_PATH "models/all-MiniLM-L6-v2-q8_0.gguf"
const char *model_default_path(void);

/* Default number of tokens run through the encoder at once; a request with
 * more is split into batches of at most this many. */
#define MODEL_TOKEN_BUDGET 2048

int model_load(const char *path, model **out, lode_error *err);
void model_free(model *m);

const bert_config *model_config(const model *m);
const tok_tokenizer *model_tokenizer(const model *m);
int model_dim(const model *m);
int model_max_seq_length(const model *m);
/* Short name: the last component of the path it was loaded from. */
const char *model_name(const model *m);
/* Storage type of the weights: "f32", "f16", "bf16", "q8_0", "q8_128". */
const char *model_type_name(const model *m);
/* Run the encoder on the threads of `pool` (owned by the caller, who
 * frees it after the model; NULL: the calling thread only).  One pool is
 * meant to serve the whole process. */
struct pool;
void model_set_pool(model *m, struct pool *pool);
/* Size of the weights file. */
size_t model_file_bytes(const model *m);

/* Tokenize one text as model_embed would: ids must hold
 * model_max_seq_length() entries.  *n_full (may be NULL) receives the
 * length before truncation.  An empty text (len 0) is LODE_EEMPTY. */
int model_tokenize(const model *m, const char *text, size_t len,
                   int32_t *ids, int *n_ids, int *n_full, lode_error *err);

/* Embed n texts (lens[i] bytes each) into out[n][dim].  *n_truncated (may
 * be NULL) receives how many texts were longer than max_seq_length. */
int model_embed(model *m, int n, const char *const *texts,
                const size_t *lens, float *out, int *n_truncated,
                lode_error *err);

/* Embed n sequences of token ids given without [CLS]/[SEP] (they are
 * added, and the ids truncated to max_seq_length as model_embed does). */
int model_embed_ids(model *m, int n, const int32_t *const *ids,
                    const int *lens, float *out, int *n_truncated,
                    lode_error *err);

#endif
