/* extract.h - turn a file's bytes into the documents to index: their text
 * (what is chunked, embedded and cited), title, headings, external id and
 * metadata.
 *
 * Formats, chosen by file extension (extract_format_of):
 *   .md .markdown  the text as is; ATX headings found for the chunker.
 *   .txt           the text as is, no headings.
 *   .html .htm     libxml2's HTML parser; text of the body without script,
 *                  style, noscript, template, nav, footer, head or
 *                  elements marked `hidden`; block elements become blank
 *                  lines (list items, table rows and <br> line breaks,
 *                  table cells " | "), other whitespace collapses to one
 *                  space (kept inside <pre>); h1-h6 become Markdown
 *                  headings ("## Title") and are reported as headings.
 *                  Title: <title>, else the first h1.
 *   .json          an array of records (objects), or a single object;
 *   .jsonl         one record (object) per non-blank line.
 *                  Each record is a document: text from the text field,
 *                  external id from the id field (a string or integer),
 *                  title from the title field when present, metadata from
 *                  the chosen fields (default: every other field whose
 *                  value is a string, number or boolean).
 * Offsets of chunks are offsets into a document's text: the file itself
 * for .md and .txt, the extracted text for HTML and records.
 *
 * Invalid input policy: a file (or JSON string) that is not valid UTF-8,
 * or holds a NUL byte, is refused with LODE_EUTF8 naming the byte offset;
 * nothing is replaced, so chunk text always equals the source's bytes.
 * HTML is read as UTF-8 whatever its <meta charset> says.
 */
#ifndef LODE_EXTRACT_H
#define LODE_EXTRACT_H

#include <stddef.h>

#include "chunk.h"
#include "err.h"

typedef enum extract_format {
    EXTRACT_UNKNOWN = 0,
    EXTRACT_TEXT,
    EXTRACT_MARKDOWN,
    EXTRACT_HTML,
    EXTRACT_JSON,
    EXTRACT_JSONL,
} extract_format;

/* By the extension of path, case-insensitively. */
extract_format extract_format_of(const char *path);
/* The extractor for an upload: by the extension of name (as
 * extract_format_of; name may be NULL), else by its MIME type
 * (text/markdown, text/plain, text/html, application/json,
 * application/x-ndjson...; parameters and case ignored; may be NULL).
 * The one place that decides how a named or typed file is read, for the
 * CLI's paths and the server's uploads alike. */
extract_format extract_format_for(const char *name, const char *content_type);
/* "text", "markdown", "html", "json", "jsonl" ("unknown"). */
const char *extract_format_name(extract_format f);
/* Formats whose files hold many records rather than one document. */
int extract_is_records(extract_format f);

typedef struct extract_options {
    const char *text_field;          /* NULL: "text" */
    const char *id_field;            /* NULL: "id" */
    const char *title_field;         /* NULL: "title" */
    const char *const *meta_fields;  /* NULL: see above */
    size_t n_meta_fields;
} extract_options;

typedef struct extract_doc {
    char *text;                  /* UTF-8, NUL-terminated, owned */
    size_t len;
    char *title;                 /* or NULL */
    char *external_id;           /* records only, or NULL */
    char *metadata_json;         /* a JSON object, or NULL */
    chunk_heading *headings;     /* owned; may be NULL when none */
    size_t n_headings;
    size_t record;               /* records: 1-based index (.json) or line
                                    (.jsonl); 0 for whole files */
} extract_doc;

/* Extract the documents of a file's bytes.  opts may be NULL.  On
 * success *docs (free with extract_docs_free) holds *n documents (a
 * .json file with an empty array gives none).  Errors: LODE_EUTF8 (see
 * above), LODE_EFORMAT (malformed JSON, a record that is not an object
 * or lacks a string text field), LODE_EUNSUPPORTED (unknown format). */
int extract_buffer(extract_format f, const char *data, size_t len,
                   const extract_options *opts, extract_doc **docs,
                   size_t *n, lode_error *err);
void extract_docs_free(extract_doc *docs, size_t n);

/* 0 when data is valid UTF-8 without NUL bytes, else LODE_EUTF8 with the
 * offset of the first bad byte in the message. */
int extract_check_utf8(const char *data, size_t len, lode_error *err);

#endif
