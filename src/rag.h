/* rag.h - the text side of retrieval-augmented answers: the prompt with
 * numbered sources and its token budget, citations in the answer (kept,
 * removed, checked against their source), the extractive answer used when
 * no LLM can answer, and the filter that applies all of that to a stream.
 *
 * Pure functions over UTF-8 text; the HTTP and LLM plumbing is in
 * api_chat.c.  Numbering is lode's alone: sources are [1]..[n] in the
 * order given (best first), and every citation in an answer must name one
 * of them: "[2]", "[1, 3]", "[1][3]", "[Source 2]" and "【2】" are read as
 * citations and rewritten as "[2]", "[1][3]"; a number with no source is
 * removed (and counted), so an answer never points at a source that was
 * not given.
 *
 * Support check: a citation is "supported" when the sentence that carries
 * it shares enough content words with the cited text (a quarter of the
 * sentence's content words, at least one and at most three are needed)
 * and, when the sentence holds numbers, at least one of them appears in
 * the cited text.  This is a cheap lexical test, not entailment: it
 * catches citations of the wrong source and invented figures, and it
 * fails answers written in another language than their sources.
 *
 * Tokens are estimated, not counted: the LLM's tokenizer is unknown, so
 * rag_estimate_tokens uses the usual ~4 characters per token of English
 * (CJK characters one each), which errs on the large side for most
 * models' vocabularies.
 */
#ifndef LODE_RAG_H
#define LODE_RAG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "guard.h"

/* ---- prompt ---------------------------------------------------------------- */

typedef struct rag_source {
    const char *title;       /* may be NULL */
    const char *heading;     /* heading path, may be NULL */
    const char *text;        /* as it should reach the LLM */
    size_t len;
} rag_source;

typedef struct rag_turn {
    const char *role;        /* "user" or "assistant" */
    const char *content;
} rag_turn;

typedef struct rag_prompt_in {
    const char *question;
    const rag_turn *history;  /* oldest first */
    size_t n_history;
    const rag_source *sources; /* best first; numbered 1..n */
    size_t n_sources;
    int context_tokens;       /* budget for the whole prompt; <= 0: none */
} rag_prompt_in;

/* The messages to send: system, the history kept, then the user message
 * (sources and question).  Strings are malloc'd; rag_prompt_free. */
typedef struct rag_prompt {
    rag_turn *messages;
    size_t n_messages;
    size_t sources_kept;     /* sources 1..sources_kept are in the prompt */
    size_t history_kept;     /* the last history_kept turns are in it */
    int tokens;              /* estimate for the whole prompt */
} rag_prompt;

/* Build the prompt within the budget.  What goes first when it does not
 * fit: history older than the last exchange (oldest first), then the
 * least relevant sources (down to one), then the last exchange. */
int rag_build_prompt(const rag_prompt_in *in, rag_prompt *out,
                     lode_error *err);
void rag_prompt_free(rag_prompt *p);

/* The instructions of the prompt asking for a standalone search query
 * (the history and question go in the user message). */
int rag_build_rewrite_prompt(const char *question, const rag_turn *history,
                             size_t n_history, rag_prompt *out,
                             lode_error *err);
/* Clean the LLM's rewritten query: first line, quotes and a "Query:"
 * prefix removed.  Returns a malloc'd string, NULL if nothing usable. */
char *rag_clean_rewrite(const char *text, size_t len);
/* Without an LLM: the question joined with the previous user turn. */
char *rag_join_query(const char *question, const rag_turn *history,
                     size_t n_history);

int rag_estimate_tokens(const char *text, size_t len);

/* ---- citations --------------------------------------------------------------- */

typedef struct rag_citation {
    int n;                   /* source number */
    bool supported;
    size_t start, end;       /* bytes of the normalised answer */
} rag_citation;

typedef struct rag_cited {
    char *text;              /* the answer, citations normalised */
    size_t len;
    rag_citation *citations; /* in order of appearance */
    size_t n_citations;
    int removed;             /* citation numbers that named no source */
} rag_cited;

/* Normalise the citations of `answer` against n_sources sources and check
 * each kept one against its source's text (sources may be NULL: every
 * citation is then reported unsupported).  rag_cited_free. */
int rag_cite(const char *answer, size_t len, const rag_source *sources,
             size_t n_sources, rag_cited *out);
void rag_cited_free(rag_cited *c);
/* The support check alone (exposed for tests). */
bool rag_supported(const char *sentence, size_t slen, const char *source,
                   size_t len);

/* Content words the two texts share (the support check's words). */
int rag_overlap(const char *a, size_t alen, const char *b, size_t blen);

/* ---- extractive answers ---------------------------------------------------- */

/* Candidate sentences of a text: byte ranges, markup (heading lines, list
 * bullets) left out, at least 4 words each.  A table's data rows (Markdown
 * "| a | b |" or the "a | b" lines the HTML extractor writes) are
 * candidates too, with the span of their table's header row (the block's
 * first line; 0,0 when the row is the block's only line): rag_row_text
 * turns one into a sentence.  Separator rows and header rows are not.
 * Each span also names the heading it sits under, so that a bullet such
 * as "4 weeks at full pay." can be matched with its section's words. */
typedef struct rag_span {
    size_t start, end;
    size_t head_start, head_end; /* a table row's header; 0,0 otherwise */
    size_t sec_start, sec_end;   /* the heading above it in the text, its
                                  * '#'s left out; 0,0 when there is none */
    bool row;
} rag_span;
int rag_sentences(const char *text, size_t len, rag_span **out, size_t *n);

/* A table row as a sentence, each cell after its column's header:
 * "Period: First 20 days; Pay: 100% of salary."  malloc'd, NUL-ended. */
char *rag_row_text(const char *text, const rag_span *row, size_t *out_len);

/* One chosen sentence. */
typedef struct rag_pick {
    int source;              /* 1-based source number */
    const char *text;        /* the sentence */
    size_t len;
    size_t position;         /* its offset in the source, for ordering */
} rag_pick;

/* "Sentence [n] Sentence [m] ...": picks in source order (then position),
 * up to max_chars (at least the first pick).  malloc'd. */
char *rag_compose_extractive(const rag_pick *picks, size_t n,
                             size_t max_chars, size_t *out_len);

/* ---- the stream filter ------------------------------------------------------- */

/* Applies redaction (when `redact`) and citation normalisation to an
 * answer arriving in pieces, and hands out only text that no later piece
 * can change: it holds back the last RAG_STREAM_HOLDBACK bytes, and cuts
 * only at a space outside any personal-data candidate or bracket.  The
 * pieces handed out, joined, equal the processed whole answer. */
#define RAG_STREAM_HOLDBACK 64

typedef struct rag_stream {
    bool redact;
    size_t n_sources;
    char *raw;
    size_t raw_len, raw_cap;
    size_t emitted;          /* bytes of processed text handed out */
} rag_stream;

void rag_stream_init(rag_stream *s, bool redact, size_t n_sources);
/* Add a piece (final: nothing more will come).  *out (malloc'd, may be
 * empty) gets the processed text that became final. */
int rag_stream_feed(rag_stream *s, const char *piece, size_t len, bool final,
                    char **out, size_t *out_len);
/* The answer as received so far is s->raw[0, s->raw_len). */
void rag_stream_free(rag_stream *s);

#endif
