/* fuzz_office.c - libFuzzer driver for the DOCX and ODT readers
 * (src/extract_office.c, through extract_buffer).
 *
 * The first byte picks the format (even: DOCX, odd: ODT), the rest is the
 * zip.  On success the document must be sane: valid UTF-8 without NUL
 * (extract_check_utf8), headings inside the text, in order, not
 * overlapping, level 1..6, each line starting with its '#'s, no pages;
 * every byte of the text and title is read.  On failure there must be a
 * message.  Zip bomb limits keep each input's work bounded.
 *
 * Seeds: fuzz/corpus/office/ (written by fuzz/make_seeds.c). */
#include <string.h>

#include "extract.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    extract_format f = data[0] & 1 ? EXTRACT_ODT : EXTRACT_DOCX;
    extract_doc *docs = NULL;
    size_t n = 0;
    lode_error err = {0};
    int rc = extract_buffer(f, (const char *)data + 1, size - 1, NULL, &docs,
                            &n, &err);
    if (rc) {
        FUZZ_CHECK(err.message[0] && !docs && n == 0, "error %d without a "
                   "message", rc);
        return 0;
    }
    FUZZ_CHECK(n == 1 && docs, "one document, got %zu", n);
    const extract_doc *d = &docs[0];
    FUZZ_CHECK(d->text && strlen(d->text) == d->len, "text length");
    FUZZ_CHECK(extract_check_utf8(d->text, d->len, &err) == 0, "utf-8: %s",
               err.message);
    FUZZ_CHECK(d->n_pages == 0, "office files have no pages");
    size_t prev_end = 0;
    for (size_t i = 0; i < d->n_headings; i++) {
        const chunk_heading *h = &d->headings[i];
        FUZZ_CHECK(h->line_start >= prev_end && h->line_start <= h->title_start &&
                       h->title_start <= h->title_end &&
                       h->title_end <= h->line_end && h->line_end <= d->len,
                   "heading %zu out of order or bounds", i);
        FUZZ_CHECK(h->level >= 1 && h->level <= 6, "level %d", h->level);
        for (int k = 0; k < h->level; k++)
            FUZZ_CHECK(d->text[h->line_start + (size_t)k] == '#',
                       "heading %zu line lacks its '#'", i);
        prev_end = h->line_end;
    }
    fuzz_touch(d->text, d->len);
    if (d->title)
        fuzz_touch(d->title, strlen(d->title));
    extract_docs_free(docs, n);
    return 0;
}
