/* gguf_model.h - BERT models in GGUF files: load one (lode's own or one
 * written by llama.cpp's converter) and convert a Hugging Face directory
 * into one.
 *
 * Naming follows llama.cpp's BERT conventions so files move both ways:
 * architecture "bert"; metadata bert.context_length, bert.embedding_length,
 * bert.feed_forward_length, bert.block_count, bert.attention.head_count,
 * bert.attention.layer_norm_epsilon, bert.pooling_type (1 mean, 2 cls);
 * tokenizer.ggml.model "bert" with tokenizer.ggml.tokens in llama.cpp's
 * spelling (word-initial pieces prefixed with U+2581, "##" continuations
 * without their prefix, [SPECIAL] tokens as they are); tensors
 * token_embd, position_embd, token_types, token_embd_norm and per layer
 * blk.N.{attn_q, attn_k, attn_v (or a fused attn_qkv), attn_output,
 * attn_output_norm, ffn_up, ffn_down, layer_output_norm}.
 *
 * What llama.cpp lacks lode keeps under lode.*: lode.max_seq_length,
 * lode.do_lower_case, lode.strip_accents (-1 follows lowercase),
 * lode.tokenize_chinese_chars, lode.pooling ("mean", "cls", "max",
 * "mean_sqrt_len"), lode.normalize.  Files without them get BERT's
 * defaults: lowercase, CJK split, normalised output.
 */
#ifndef LODE_GGUF_MODEL_H
#define LODE_GGUF_MODEL_H

#include "bert.h"
#include "err.h"
#include "gguf.h"
#include "tokenizer.h"

/* What backs bert_weights loaded from GGUF. */
typedef struct gguf_weights {
    gguf_file *file;
    bert_layer *layers;
    void **converted;   /* small tensors dequantized to f32 at load */
    int n_converted;
    uint32_t type;      /* of the attention/FFN weights: the model's type */
} gguf_weights;

int gguf_model_load(const char *path, bert_config *cfg, tok_tokenizer **tok,
                    gguf_weights *gw, bert_weights *w, lode_error *err);
void gguf_weights_free(gguf_weights *gw);

/* Convert the Hugging Face directory src into out_path with the big
 * matrices in `type` (GGUF_TYPE_F32, F16 or Q8_0). */
int gguf_model_convert(const char *src, const char *out_path, uint32_t type,
                       lode_error *err);

#endif
