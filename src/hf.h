/* hf.h - load a Hugging Face sentence-transformers model directory.
 *
 * Reads config.json (architecture and sizes), sentence_bert_config.json
 * (max_seq_length, do_lower_case), modules.json and the Pooling module's
 * config.json (pooling, Normalize), tokenizer_config.json (lowercasing,
 * accents, CJK), vocab.txt or tokenizer.json (vocabulary) and
 * model.safetensors (F32, F16 or BF16 weights).  Any BERT model of this
 * architecture loads; sizes all come from config.json.
 */
#ifndef LODE_HF_H
#define LODE_HF_H

#include "bert.h"
#include "err.h"
#include "safetensors.h"
#include "tokenizer.h"

/* What backs a bert_weights loaded from safetensors: the mapping, the
 * layer array and any tensor that had to be converted to f32. */
typedef struct hf_weights {
    st_file *st;
    bert_layer *layers;
    void **converted;
    int n_converted;
    st_dtype dtype;  /* of the word-embedding table: the model's type */
} hf_weights;

/* Is `path` a directory holding config.json? */
int hf_is_model_dir(const char *path);

int hf_read_config(const char *dir, bert_config *cfg, tok_options *topt,
                   lode_error *err);
int hf_load_tokenizer(const char *dir, const tok_options *topt,
                      tok_tokenizer **out, lode_error *err);
/* Fill *w from dir/model.safetensors; *hw owns what w points to. */
int hf_load_weights(const char *dir, const bert_config *cfg, hf_weights *hw,
                    bert_weights *w, lode_error *err);
void hf_weights_free(hf_weights *hw);

#endif
