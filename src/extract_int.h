/* extract_int.h - what the extractor's files share (extract.c, the text
 * formats and the dispatch; extract_pdf.c; extract_office.c): a growing
 * text buffer with its headings and page starts, and the entry points of
 * the binary formats.  Not for use outside the extract module. */
#ifndef LODE_EXTRACT_INT_H
#define LODE_EXTRACT_INT_H

#include "extract.h"

/* The text of a document as it is built.  oom is sticky: appends after a
 * failed allocation do nothing, and extract__text_finish reports it. */
typedef struct extract_text {
    char *s;
    size_t len, cap;
    chunk_heading *headings;
    size_t n_headings, headings_cap;
    size_t *pages;
    size_t n_pages, pages_cap;
    int oom;
} extract_text;

void extract__text_append(extract_text *t, const char *s, size_t n);
/* Record a heading [line_start, line_end) with title [title_start,
 * title_end) at level 1..6 (clamped). */
void extract__text_heading(extract_text *t, size_t line_start,
                           size_t line_end, size_t title_start,
                           size_t title_end, int level);
/* Record that a page starts at the current end of the text. */
void extract__text_page(extract_text *t);
/* Move the text, headings and pages into d (or free them and return
 * LODE_ENOMEM). */
int extract__text_finish(extract_text *t, extract_doc *d, lode_error *err);
void extract__text_free(extract_text *t);

/* Replace invalid UTF-8 in d->text by U+FFFD and drop NUL bytes,
 * keeping headings and page starts on the same text. */
int extract__clean_text(extract_doc *d, lode_error *err);

int extract__pdf_file(const char *path, extract_doc *d, lode_error *err);
int extract__pdf_buffer(const char *data, size_t len, extract_doc *d,
                        lode_error *err);
/* The title in mutool's printing of a PDF string object, as UTF-8 with
 * whitespace collapsed; NULL when there is none (extract_pdf.c). */
char *extract__pdf_title(const char *shown);
/* DOCX or ODT, from path, or (path NULL) from data/len. */
int extract__office(extract_format f, const char *path, const char *data,
                    size_t len, extract_doc *d, lode_error *err);

#endif
