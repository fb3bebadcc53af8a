/* keyword.h - a user's free text as a safe SQLite FTS5 query, for the
 * keyword side of search (store_keyword.c).
 *
 * FTS5 has a query language of its own (AND, OR, NOT, NEAR, column
 * filters, prefixes, parentheses), so text typed by a user cannot be
 * passed to MATCH as it is: "what is C++?" or "foo-bar" would be a syntax
 * error or mean something else.  keyword_parse turns the text into terms,
 * each written as an FTS5 string ("...", which FTS5 tokenizes with the
 * table's own tokenizer and matches as a phrase), and builds two
 * expressions from them:
 *
 *   any       every term ORed: what BM25 ranks.  Common English words
 *             ("the", "how", "do") are left out, unless nothing else is
 *             left, as are one-letter words; they match almost every chunk
 *             and weigh almost nothing in BM25, so they would only make
 *             the query slower.
 *   required  the terms that must be matched as written, ANDed: each
 *             quoted phrase ("annual leave") and each token that looks
 *             like an identifier: an underscore, digits with letters or
 *             inner punctuation, a number of 3 digits or more, or a dash
 *             in a word with a capital (max_tokens, E1234, HR-2024-07,
 *             2024, X-Forwarded-For; not 25 or well-known).  The keyword
 *             side ranks the chunks that
 *             contain all of them first, so an error code or a policy
 *             number finds its chunk even when the rest of the question is
 *             ordinary words.  An identifier is kept whole, as a phrase:
 *             "HR-2024-07" matches the tokens hr 2024 07 in that order.
 *
 * Terms are deduplicated (ASCII case-insensitively) and limited to
 * KEYWORD_MAX_TERMS; a lone double quote is ignored.  Bytes above 0x7F are
 * word characters here; inside the quoted strings FTS5's unicode61
 * tokenizer decides what they are.
 */
#ifndef LODE_KEYWORD_H
#define LODE_KEYWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define KEYWORD_MAX_TERMS 64

typedef struct keyword_term {
    char *fts;          /* the term as an FTS5 string: "HR-2024-07" */
    bool required;      /* a quoted phrase or an identifier */
} keyword_term;

typedef struct keyword_query {
    char *any;          /* "t1" OR "t2" ...; NULL when the text has no term */
    char *required;     /* "p1" AND "p2" ...; NULL when there is none */
    size_t n_terms;     /* terms in `any` */
    size_t n_required;  /* terms in `required` */
    keyword_term *terms; /* the n_terms terms of `any`, in its order */
} keyword_query;

/* Parse text (NUL-terminated UTF-8).  A text without any term gives
 * any == NULL (no chunk can match), which is not an error.  LODE_ENOMEM
 * is the only failure.  Free with keyword_query_free. */
int keyword_parse(const char *text, keyword_query *out, lode_error *err);
void keyword_query_free(keyword_query *q);

#endif
