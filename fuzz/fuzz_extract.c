/* fuzz_extract.c - libFuzzer driver for the text formats' extractors
 * (src/extract.c, src/extract_text.c: text, Markdown, HTML, JSON, JSONL)
 * followed by the chunker (src/chunk.c) with the real tokenizer: the
 * path of every file and upload that is not PDF, DOCX or ODT (those have
 * fuzz_pdf and fuzz_office).
 *
 * Byte 0 picks the format, byte 1 the chunk size N (16..115 tokens) and
 * byte 2 the overlap (0..N/2); the rest is the file.  Checked:
 *   - on failure an error message and no documents;
 *   - each document's text is NUL-terminated at len, valid UTF-8 without
 *     NUL; its headings ordered, non-overlapping, inside the text, level
 *     1..6, title inside its line;
 *   - the chunks of each text lie inside it, start and end on
 *     non-whitespace, have character offsets that count the code points
 *     before them, token_count in 1..N and equal to the tokens of the
 *     chunk text alone, never cross a heading line's start, and together
 *     cover every non-whitespace byte but those of runs that have no
 *     tokens (a lone combining mark, for an uncased model).
 * The vocabulary is the default model's vocab.txt, as for fuzz_tokenizer
 * (LODE_FUZZ_VOCAB overrides the path).
 *
 * Seeds: fuzz/corpus/extract/; dictionary fuzz/extract.dict. */
#include <string.h>

#include "chunk.h"
#include "extract.h"
#include "fuzz.h"
#include "tokenizer.h"

#define MAX_IDS 256

static tok_tokenizer *tok;

static const extract_format formats[] = {
    EXTRACT_TEXT, EXTRACT_MARKDOWN, EXTRACT_HTML, EXTRACT_JSON, EXTRACT_JSONL,
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tok_options o = {1, -1, 1, 1};   /* all-MiniLM-L6-v2's */
    lode_error err = {0};
    if (tok_load_vocab_txt(fuzz_vocab_path(), &o, &tok, &err)) {
        fprintf(stderr, "fuzz_extract: %s\n" FUZZ_VOCAB_HINT "\n",
                err.message);
        exit(1);
    }
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static void check_chunks(const extract_doc *d, const chunk_list *l,
                         const chunk_options *o)
{
    uint8_t *covered = calloc(d->len + 1, 1);
    FUZZ_CHECK(covered, "out of memory");
    size_t chars = 0, counted = 0;   /* code points in text[0, counted) */
    for (size_t i = 0; i < l->n; i++) {
        const chunk *c = &l->chunks[i];
        FUZZ_CHECK(c->byte_start < c->byte_end && c->byte_end <= d->len,
                   "chunk %zu [%zu, %zu) of %zu bytes", i, c->byte_start,
                   c->byte_end, d->len);
        FUZZ_CHECK(!is_space((unsigned char)d->text[c->byte_start]) &&
                       !is_space((unsigned char)d->text[c->byte_end - 1]),
                   "chunk %zu starts or ends on whitespace", i);
        if (c->byte_start < counted) {   /* overlaps: count again */
            chars = 0;
            counted = 0;
        }
        for (; counted < c->byte_start; counted++)
            chars += ((unsigned char)d->text[counted] & 0xC0) != 0x80;
        size_t end_chars = chars;
        for (size_t k = c->byte_start; k < c->byte_end; k++)
            end_chars += ((unsigned char)d->text[k] & 0xC0) != 0x80;
        FUZZ_CHECK(c->char_start == chars && c->char_end == end_chars,
                   "chunk %zu chars [%zu, %zu), counted [%zu, %zu)", i,
                   c->char_start, c->char_end, chars, end_chars);
        FUZZ_CHECK(c->token_count >= 1 && c->token_count <= o->max_tokens,
                   "chunk %zu has %d tokens (N %d)", i, c->token_count,
                   o->max_tokens);
        int32_t ids[MAX_IDS];
        int n_ids = 0, n_full = 0;
        lode_error err = {0};
        FUZZ_CHECK(tok_encode(tok, d->text + c->byte_start,
                              c->byte_end - c->byte_start, MAX_IDS, ids,
                              &n_ids, &n_full, NULL, &err) == 0,
                   "chunk %zu: %s", i, err.message);
        FUZZ_CHECK(n_full - 2 == c->token_count,
                   "chunk %zu: token_count %d, re-tokenized %d", i,
                   c->token_count, n_full - 2);
        for (size_t h = 0; h < d->n_headings; h++)
            FUZZ_CHECK(!(c->byte_start < d->headings[h].line_start &&
                         d->headings[h].line_start < c->byte_end),
                       "chunk %zu crosses heading %zu", i, h);
        memset(covered + c->byte_start, 1, c->byte_end - c->byte_start);
    }
    /* A run of bytes in no chunk (spaces aside) must have no tokens:
     * chunk_split leaves out only sections with nothing to embed. */
    for (size_t k = 0; k < d->len;) {
        if (covered[k] || is_space((unsigned char)d->text[k])) {
            k++;
            continue;
        }
        size_t end = k;
        while (end < d->len && !covered[end])
            end++;
        int32_t ids[MAX_IDS];
        int n_ids = 0, n_full = 0;
        lode_error err = {0};
        FUZZ_CHECK(tok_encode(tok, d->text + k, end - k, MAX_IDS, ids,
                              &n_ids, &n_full, NULL, &err) == 0,
                   "bytes [%zu, %zu): %s", k, end, err.message);
        FUZZ_CHECK(n_full == 2, "bytes [%zu, %zu) (0x%02x...) in no chunk "
                   "but %d tokens", k, end, (unsigned char)d->text[k],
                   n_full - 2);
        k = end;
    }
    free(covered);
}

static void check_doc(const extract_doc *d, const chunk_options *o)
{
    lode_error err = {0};
    FUZZ_CHECK(d->text && d->text[d->len] == '\0', "text not terminated");
    FUZZ_CHECK(extract_check_utf8(d->text, d->len, &err) == 0, "utf-8: %s",
               err.message);
    FUZZ_CHECK(d->n_pages == 0, "a text format with pages");
    size_t prev_end = 0;
    for (size_t i = 0; i < d->n_headings; i++) {
        const chunk_heading *h = &d->headings[i];
        FUZZ_CHECK(h->line_start >= prev_end &&
                       h->line_start <= h->title_start &&
                       h->title_start <= h->title_end &&
                       h->title_end <= h->line_end && h->line_end <= d->len,
                   "heading %zu out of order or bounds", i);
        FUZZ_CHECK(h->level >= 1 && h->level <= 6, "level %d", h->level);
        prev_end = h->line_end;
    }
    if (d->title)
        fuzz_touch(d->title, strlen(d->title));
    if (d->external_id)
        fuzz_touch(d->external_id, strlen(d->external_id));
    if (d->metadata_json)
        fuzz_touch(d->metadata_json, strlen(d->metadata_json));

    chunk_list l = {0};
    memset(&err, 0, sizeof err);
    int rc = chunk_split(tok, d->text, d->len, d->headings, d->n_headings, o,
                         &l, &err);
    FUZZ_CHECK(rc == 0, "chunk_split: %s", err.message);
    check_chunks(d, &l, o);
    chunk_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    extract_format f = formats[data[0] % N_FORMATS];
    chunk_options o;
    o.max_tokens = CHUNK_MIN_TOKENS + data[1] % 100;
    o.overlap_tokens = data[2] % (o.max_tokens / 2 + 1);
    lode_error err = {0};
    FUZZ_CHECK(chunk_check_options(&o, 256, &err) == 0, "options: %s",
               err.message);

    extract_doc *docs = NULL;
    size_t n = 0;
    int rc = extract_buffer(f, (const char *)data + 3, size - 3, NULL, &docs,
                            &n, &err);
    if (rc) {
        FUZZ_CHECK(err.message[0] && !docs && n == 0,
                   "error %d without a message, or with documents", rc);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        check_doc(&docs[i], &o);
    extract_docs_free(docs, n);
    return 0;
}
