/* fuzz_pdf.c - libFuzzer driver for what lode parses of a PDF: the page
 * text and the outline that mutool writes (src/extract_pdf.c; mutool
 * itself is another project's code, run in its own process).
 *
 * The input is split at its first NUL byte: before it, what `mutool draw
 * -F txt` would write (pages ended by '\f', any bytes); after it, what
 * `mutool show FILE outline` would write.  Both go through the same
 * functions as real output (the page reader, in pieces of varying size to
 * exercise the streaming, the outline parser, apply_outline, then the
 * UTF-8 cleaning), and the document must come out sane: valid UTF-8,
 * page starts rising and inside the text, headings inside the text, in
 * order, not overlapping, level 1..6, each a line of its own.
 *
 * Seeds: fuzz/corpus/pdf/ (written by fuzz/make_seeds.c). */
#include "../src/extract_pdf.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    size_t text_len = nul ? (size_t)(nul - in) : size;
    page_reader pr = {.pending_pages = 1, .at_page_start = 1};
    /* feed in pieces of 1..16 bytes chosen by the bytes themselves */
    for (size_t i = 0; i < text_len;) {
        size_t piece = 1 + ((unsigned char)in[i] & 15);
        if (piece > text_len - i)
            piece = text_len - i;
        FUZZ_CHECK(on_page_output(&pr, in + i, piece) == 0, "page reader");
        i += piece;
    }
    if (pr.pages == 0)
        pr.pages = 1;
    while (pr.t.n_pages < pr.pages)
        extract__text_page(&pr.t);
    extract_doc d;
    memset(&d, 0, sizeof d);
    lode_error err = {0};
    FUZZ_CHECK(extract__text_finish(&pr.t, &d, &err) == 0, "finish");
    if (d.n_pages > pr.pages)
        d.n_pages = pr.pages;
    outline o = {0};
    if (nul && on_outline_output(&o, nul + 1, size - text_len - 1) == 0 &&
        o.raw) {
        parse_outline(&o);
        FUZZ_CHECK(!o.oom, "outline oom");
        FUZZ_CHECK(apply_outline(&d, &o, &err) == 0, "apply: %s",
                   err.message);
    }
    outline_free(&o);
    /* as extract_file does: cleaning last, over inserted titles too */
    FUZZ_CHECK(extract__clean_text(&d, &err) == 0, "clean");
    FUZZ_CHECK(strlen(d.text) == d.len, "text length");
    FUZZ_CHECK(extract_check_utf8(d.text, d.len, &err) == 0, "utf-8: %s",
               err.message);
    for (size_t i = 0; i < d.n_pages; i++)
        FUZZ_CHECK(d.page_starts[i] <= d.len &&
                       (i == 0 || d.page_starts[i] >= d.page_starts[i - 1]),
                   "page %zu starts at %zu", i + 1, d.page_starts[i]);
    size_t prev_end = 0;
    for (size_t i = 0; i < d.n_headings; i++) {
        const chunk_heading *h = &d.headings[i];
        FUZZ_CHECK(h->line_start >= prev_end && h->line_start <= h->title_start &&
                       h->title_start <= h->title_end &&
                       h->title_end <= h->line_end && h->line_end <= d.len,
                   "heading %zu out of order or bounds", i);
        FUZZ_CHECK(h->level >= 1 && h->level <= 6, "level %d", h->level);
        FUZZ_CHECK(h->line_start == 0 || d.text[h->line_start - 1] == '\n',
                   "heading %zu does not start a line", i);
        prev_end = h->line_end;
    }
    fuzz_touch(d.text, d.len);
    extract_doc_clear(&d);
    return 0;
}
