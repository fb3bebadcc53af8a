/* tokenizer.h - BERT WordPiece tokenizer, identical to Hugging Face's
 * BertTokenizerFast (the `tokenizers` Rust library's BertNormalizer +
 * BertPreTokenizer + WordPiece), which is what sentence-transformers runs.
 *
 * Pipeline: validate UTF-8 -> match special tokens ("[SEP]" ...) in the raw
 * text -> clean (drop NUL, U+FFFD, control/format/private-use characters;
 * whitespace -> ' '; unassigned code points are kept) -> pad CJK ideographs
 * with spaces -> strip accents (NFD, drop Mn) -> lowercase -> split on
 * whitespace and punctuation -> greedy longest-match WordPiece with "##"
 * continuations (words over 100 characters become [UNK]) -> [CLS] ... [SEP],
 * truncated to max_tokens.  Character classes are those of the Rust
 * library, measured from it (see scripts/gen_tokenizer_tables.py), not of
 * any one Unicode version.
 *
 * The tokenizer is immutable after loading and safe to share between
 * threads; tok_encode allocates nothing in the common case.
 */
#ifndef LODE_TOKENIZER_H
#define LODE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct tok_tokenizer tok_tokenizer;

typedef struct tok_options {
    int lowercase;      /* do_lower_case */
    int strip_accents;  /* 1 yes, 0 no, -1 follow `lowercase` (HF's null) */
    int chinese_chars;  /* tokenize_chinese_chars: split CJK ideographs */
    int clean_text;     /* drop control characters, normalise whitespace */
} tok_options;

/* The defaults of BertTokenizerFast: lowercase, strip accents like
 * lowercase, split CJK, clean text. */
tok_options tok_default_options(void);

/* Build a tokenizer from vocabulary strings (index = token id).  The
 * strings are copied.  Special tokens are looked up by name ([CLS], [SEP],
 * [PAD], [UNK], [MASK]); [CLS], [SEP] and [UNK] must exist. */
int tok_create(const char *const *tokens, int n_tokens, const tok_options *opts,
               tok_tokenizer **out, lode_error *err);

/* Load vocab.txt (one token per line, id = line number) as the Rust
 * library reads it: lines end at '\n', trailing whitespace (including
 * '\r') is trimmed, a missing final newline is fine, and a token that
 * appears twice maps to its later line.  Special tokens found in input
 * text are [PAD] [UNK] [CLS] [SEP] [MASK] (those in the vocabulary). */
int tok_load_vocab_txt(const char *path, const tok_options *opts,
                       tok_tokenizer **out, lode_error *err);

/* Load the WordPiece vocabulary of a tokenizer.json ("model": {"vocab":
 * {token: id}}, plus unk_token, continuing_subword_prefix and
 * max_input_chars_per_word) and its added_tokens, which are matched in
 * input text.  Options still come from the caller (see
 * tok_options_from_tokenizer_json). */
int tok_load_tokenizer_json(const char *path, const tok_options *opts,
                            tok_tokenizer **out, lode_error *err);

/* Read the normalizer options of a tokenizer.json (BertNormalizer's
 * clean_text, handle_chinese_chars, strip_accents, lowercase; defaults for
 * absent keys).  LODE_EUNSUPPORTED when the normalizer is not a
 * BertNormalizer or the pre-tokenizer not a BertPreTokenizer. */
int tok_options_from_tokenizer_json(const char *path, tok_options *opts,
                                    lode_error *err);

void tok_free(tok_tokenizer *tok);

/* Encode `len` bytes of UTF-8 text into ids: [CLS] tokens... [SEP], at most
 * max_tokens ids in all (max_tokens >= 2; the tokens are cut, [SEP] kept).
 * ids must hold max_tokens entries.  *n_ids receives the count written,
 * *n_full (may be NULL) the count there would be without truncation.
 * offsets (may be NULL; else 2*max_tokens entries) receives for each id the
 * [start, end) byte range of the original text it came from ([CLS]/[SEP]
 * get 0,0).  Invalid UTF-8 gives LODE_EUTF8 with the byte offset in the
 * message.  Text that is empty after cleaning gives [CLS][SEP] (as HF).
 * Literal special-token strings in the text ("[SEP]", "[MASK]", ...)
 * become those ids, as in HF.  When n_full is NULL, work stops as soon as
 * ids is full.  Text is limited to INT32_MAX bytes (LODE_ELIMIT). */
int tok_encode(const tok_tokenizer *tok, const char *text, size_t len,
               int max_tokens, int32_t *ids, int *n_ids, int *n_full,
               int32_t *offsets, lode_error *err);

/* Called by tok_words for each word after normalisation and
 * pre-tokenization (and for each special token found in the text): the
 * word's UTF-8 bytes (not NUL-terminated) and the [start, end) byte range
 * of the original text it came from.  A word longer than the model's
 * max_input_chars_per_word (which WordPiece turns into [UNK]) comes with
 * word NULL and len 0.  Return non-zero to stop early. */
typedef int (*tok_word_fn)(void *ctx, const char *word, size_t len,
                           size_t start, size_t end);

/* Run the normalizer and pre-tokenizer only, calling fn for each word.
 * Same errors as tok_encode.  Useful for lexical indexing and tests. */
int tok_words(const tok_tokenizer *tok, const char *text, size_t len,
              tok_word_fn fn, void *ctx, lode_error *err);

/* Ids are 0..tok_vocab_size()-1. */
int tok_vocab_size(const tok_tokenizer *tok);
/* Token string of id ("" for an id that no token maps to, possible in a
 * tokenizer.json with gaps), or NULL when out of range. */
const char *tok_token(const tok_tokenizer *tok, int id);
/* Id of token string, or -1. */
int tok_lookup(const tok_tokenizer *tok, const char *token);
const tok_options *tok_get_options(const tok_tokenizer *tok);

int tok_cls_id(const tok_tokenizer *tok);
int tok_sep_id(const tok_tokenizer *tok);
int tok_pad_id(const tok_tokenizer *tok);
int tok_unk_id(const tok_tokenizer *tok);

#endif
