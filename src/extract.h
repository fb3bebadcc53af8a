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
 *   .pdf           text per page in reading order, by mutool (Debian
 *                  package mupdf-tools) run as a separate process (see
 *                  extract_pdf.c for why); pages are separated by a blank
 *                  line and their starts kept (page_starts), so chunks know
 *                  their pages.  The outline (bookmarks), where there is
 *                  one, gives the headings: an entry's title is looked up
 *                  as a line of its page, else inserted as a line at the
 *                  start of that page; its depth is the level.  The title
 *                  is the Info dictionary's /Title.  Refused
 *                  with LODE_EUNSUPPORTED: a PDF without any text (a scan;
 *                  lode does no OCR) and one that needs a password.
 *   .docx          word/document.xml of the zip (libzip), read with
 *                  libxml2's streaming reader: paragraphs, headings from
 *                  the paragraph style (its outline level, else a style
 *                  named "heading N"; "Title" gives the title), list items
 *                  as "- " lines, table rows as "cell | cell" lines.
 *                  Title: docProps/core.xml dc:title, else the Title
 *                  paragraph, else the first heading of level 1.
 *   .odt           content.xml: text:h (outline level), text:p, lists and
 *                  tables as for .docx; title from meta.xml.
 *                  Zip files are checked against zip bombs first: at most
 *                  EXTRACT_ZIP_MAX_ENTRIES entries, the part read at most
 *                  EXTRACT_ZIP_MAX_BYTES uncompressed (counted while
 *                  reading, not only as declared), and a part over 1 MiB
 *                  may not expand more than EXTRACT_ZIP_MAX_RATIO times.
 * DOCX and ODT headings are written as "## Title" lines, as for HTML; a
 * PDF's text is kept as the page shows it.  Chunk heading paths are built
 * from the headings as for Markdown.  Offsets of chunks are offsets into a
 * document's text: the file itself for .md and .txt, the extracted text
 * for the other formats.
 *
 * Invalid input policy: a file (or JSON string) that is not valid UTF-8,
 * or holds a NUL byte, is refused with LODE_EUTF8 naming the byte offset;
 * nothing is replaced, so chunk text always equals the source's bytes.
 * HTML is read as UTF-8 whatever its <meta charset> says.  Text extracted
 * from PDF, DOCX and ODT comes from the tool or parser, not the file's
 * bytes: invalid UTF-8 in it is replaced by U+FFFD, NUL bytes dropped.
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
    EXTRACT_PDF,
    EXTRACT_DOCX,
    EXTRACT_ODT,
} extract_format;

/* Zip bomb limits (see above). */
#define EXTRACT_ZIP_MAX_ENTRIES 10000
#define EXTRACT_ZIP_MAX_BYTES ((size_t)256 << 20)
#define EXTRACT_ZIP_MAX_RATIO 100
/* PDF: the longest a file may take, the most text it may give, and the
 * address space mutool may use. */
#define EXTRACT_PDF_TIMEOUT_MS 120000
#define EXTRACT_PDF_MAX_TEXT ((size_t)256 << 20)
#define EXTRACT_PDF_MAX_MEMORY ((size_t)2 << 30)

/* By the extension of path, case-insensitively. */
extract_format extract_format_of(const char *path);
/* By a MIME type such as "application/pdf" (parameters after ';' and
 * case ignored), for uploads; EXTRACT_UNKNOWN for others or NULL. */
extract_format extract_format_of_content_type(const char *content_type);
/* The extractor for an upload: by the extension of name (as
 * extract_format_of; name may be NULL), else by its MIME type (as
 * extract_format_of_content_type).  The one place that decides how a
 * named or typed file is read, for the CLI's paths and the server's
 * uploads alike. */
extract_format extract_format_for(const char *name, const char *content_type);
/* "text", "markdown", "html", "json", "jsonl", "pdf", "docx", "odt"
 * ("unknown"). */
const char *extract_format_name(extract_format f);
/* The extensions extract_format_of knows, for messages (".md .txt ..."). */
const char *extract_known_extensions(void);
/* Formats read from the file by a parser or tool (PDF, DOCX, ODT) rather
 * than checked and taken as UTF-8 text. */
int extract_is_binary(extract_format f);
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
    size_t *page_starts;         /* paged formats (PDF): byte offset in
                                    text where page i + 1 starts, rising;
                                    owned; NULL otherwise */
    size_t n_pages;
} extract_doc;

/* The 1-based page holding byte `offset` of d's text, or 0 when d has no
 * pages. */
int extract_page_at(const extract_doc *d, size_t offset);

/* Extract the documents of a file's bytes.  opts may be NULL.  On
 * success *docs (free with extract_docs_free) holds *n documents (a
 * .json file with an empty array gives none).  Errors: LODE_EUTF8 (see
 * above), LODE_EFORMAT (malformed JSON, a record that is not an object
 * or lacks a string text field), LODE_EUNSUPPORTED (unknown format). */
int extract_buffer(extract_format f, const char *data, size_t len,
                   const extract_options *opts, extract_doc **docs,
                   size_t *n, lode_error *err);
void extract_docs_free(extract_doc *docs, size_t n);
/* Free one document's fields (not d itself) and zero it. */
void extract_doc_clear(extract_doc *d);

/* The same for a file on disk.  PDF is handed to mutool by path and zip
 * files are read entry by entry, so the file is never held in memory
 * whole; the other formats are read and passed to extract_buffer.
 * Errors as extract_buffer, plus LODE_EIO (unreadable file),
 * LODE_EFORMAT (damaged PDF or zip), LODE_ELIMIT (a zip bomb, a PDF over
 * the limits) and LODE_EUNSUPPORTED (scan, password, mutool missing). */
int extract_file(extract_format f, const char *path,
                 const extract_options *opts, extract_doc **docs, size_t *n,
                 lode_error *err);

/* The whole file, NUL-terminated (free with free()); LODE_EIO with the
 * reason when it cannot be read. */
int extract_read_file(const char *path, char **data, size_t *len,
                      lode_error *err);

/* 0 when data is valid UTF-8 without NUL bytes, else LODE_EUTF8 with the
 * offset of the first bad byte in the message. */
int extract_check_utf8(const char *data, size_t len, lode_error *err);

#endif
