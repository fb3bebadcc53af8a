/* chunk.h - split a document's text into chunks of at most N tokens of
 * the model's own tokenizer, for embedding and citation.
 *
 * The text is first cut into sections at its headings (Markdown ATX
 * headings, found by chunk_find_markdown_headings, or headings an
 * extractor found, e.g. HTML h1-h6).  A section that fits in N tokens is
 * one chunk; a longer one is cut at the best boundary that keeps the chunk
 * within N tokens: a blank line (paragraph), else a line break, else a
 * sentence end, else a space between words, else between two
 * pre-tokenizer words (punctuation, CJK characters), else between two
 * word pieces.  Consecutive chunks of one section overlap by up to
 * `overlap_tokens` tokens, starting the overlap at the best boundary in
 * that range.  Chunks never span two sections.
 *
 * A chunk is exactly text[byte_start, byte_end): nothing is rewritten, so
 * a result can cite the span it came from.  It starts and ends on
 * non-whitespace, and every non-whitespace byte of the text lies in at
 * least one chunk, except in a section whose text has no tokens at all
 * (only characters the tokenizer drops, such as a lone combining mark for
 * an uncased model): such a section gives no chunk, since there would be
 * nothing to embed.  Offsets are given twice: in bytes of the UTF-8 text
 * and in characters (Unicode code points, as Python's str indexes them);
 * the store keeps the character offsets.
 *
 * token_count is the number of tokens of the chunk text alone (without
 * [CLS]/[SEP]), counted by re-tokenizing it, so it is exactly what the
 * model sees when the chunk is embedded; it is at least 1 and never
 * exceeds max_tokens.
 * (The overlap is measured in the tokens of the whole section; only when
 * it starts inside a word of many pieces does the shared text, taken
 * alone, tokenize to more.)
 */
#ifndef LODE_CHUNK_H
#define LODE_CHUNK_H

#include <stddef.h>

#include "err.h"
#include "tokenizer.h"

/* Bounds on chunk sizes (tokens); chunk_check_options enforces them. */
#define CHUNK_MIN_TOKENS 16
#define CHUNK_DEFAULT_TOKENS 200
#define CHUNK_DEFAULT_OVERLAP 30

/* A heading: the whole line (a section boundary; the line belongs to the
 * section it opens) and the title text within it, both [start, end) byte
 * ranges of the text, with the level 1..6.  Sorted by line_start. */
typedef struct chunk_heading {
    size_t line_start, line_end;
    size_t title_start, title_end;
    int level;
} chunk_heading;

typedef struct chunk_options {
    int max_tokens;       /* N: tokens per chunk, at most */
    int overlap_tokens;   /* tokens shared by consecutive chunks, at most */
} chunk_options;

typedef struct chunk {
    size_t byte_start, byte_end;   /* [start, end) in the UTF-8 text */
    size_t char_start, char_end;   /* the same in code points */
    int token_count;               /* tokens of the chunk text alone */
    const char *heading;           /* "A > B > C" path, or NULL when the
                                      chunk precedes every heading; owned
                                      by the chunk_list */
} chunk;

/* The chunks of one text.  Zero-initialise; chunk_split fills it (reusing
 * its memory), chunk_list_free releases it. */
typedef struct chunk_list {
    chunk *chunks;
    size_t n, cap;
    char *paths;                   /* heading path strings, NUL-separated */
    size_t paths_len, paths_cap;
} chunk_list;

/* The defaults for a model whose max_seq_length is `max_seq_length`:
 * N = min(CHUNK_DEFAULT_TOKENS, max_seq_length - 2) and an overlap of
 * min(CHUNK_DEFAULT_OVERLAP, N / 5). */
chunk_options chunk_default_options(int max_seq_length);

/* LODE_EINVAL with a message when N is outside
 * CHUNK_MIN_TOKENS..max_seq_length - 2 (a longer chunk would be silently
 * truncated by the model) or the overlap outside 0..N/2. */
int chunk_check_options(const chunk_options *o, int max_seq_length,
                        lode_error *err);

/* Find the ATX headings ("# Title" .. "###### Title", up to three spaces
 * of indent, optional closing #s) of Markdown text, outside fenced code
 * blocks (``` or ~~~).  Setext headings (underlined) are not recognised.
 * *out (free with free()) may be NULL when *n is 0. */
int chunk_find_markdown_headings(const char *text, size_t len,
                                 chunk_heading **out, size_t *n,
                                 lode_error *err);

/* Split `len` bytes of UTF-8 text into chunks (see above).  headings may
 * be NULL (no sections).  Replaces the list's contents.  LODE_EUTF8 for
 * invalid UTF-8, LODE_EINVAL for bad options or headings. */
int chunk_split(const tok_tokenizer *tok, const char *text, size_t len,
                const chunk_heading *headings, size_t n_headings,
                const chunk_options *opts, chunk_list *out, lode_error *err);

void chunk_list_free(chunk_list *list);

#endif
