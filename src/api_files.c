/* api_files.c - POST /collections/{name}/files: files in any format
 * `lode ingest` reads, uploaded as multipart/form-data (one or many
 * files, as a browser's form or FormData sends them) or as a raw body
 * whose Content-Type (or ?filename= / Content-Disposition name) says what
 * it is.
 *
 * Each file goes the CLI's way: its format from extract_format_for (name,
 * else type), its documents from ingest_file_docs (the same extraction,
 * sources, hashes and metadata as `lode ingest`), chunked at the
 * extractor's headings with the same defaults, embedded by the scheduler,
 * and each document written in one transaction by the documents path of
 * api_store.c (upsert by source, or by id for records).  A file whose
 * source and content hash are already stored is reported unchanged and
 * not embedded again.  The source of an upload is its base name (a
 * browser sends no directories; any sent are dropped), or, without a
 * name, "upload-HASH.EXT".
 *
 * The answer has one entry per file.  A file that cannot be read (unknown
 * format, invalid UTF-8, malformed JSON, no text) is reported in its
 * entry and the others are stored; when no file could be, the request
 * fails with the first file's error. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "multipart.h"

#define FILES_ERROR_MAX 512

typedef struct file_in {
    const char *name;           /* as sent (request memory), or NULL */
    char source[MULTIPART_FILENAME_MAX + 32];
    const char *content_type;   /* request memory, or NULL */
    const char *data;           /* into the body */
    size_t len;
    extract_format format;
    ingest_doc *docs;           /* owned */
    size_t n_docs;
    size_t first;               /* its first document in the job */
    char *status;               /* per document: 'a'dded, 'u'pdated,
                                   'n' unchanged (owned) */
    int error_status;           /* 0, or the HTTP status of its failure */
    const char *error_code;
    char error[FILES_ERROR_MAX];
} file_in;

typedef struct files_state {
    api_docs_state docs;        /* first: its job is the scheduler's */
    file_in *files;             /* request memory */
    size_t n_files;
} files_state;

static void files_state_free(void *p)
{
    files_state *st = p;
    api_docs_state_free(&st->docs);
    for (size_t i = 0; i < st->n_files; i++) {
        ingest_docs_free(st->files[i].docs, st->files[i].n_docs);
        free(st->files[i].status);
    }
}

static void file_fail(file_in *f, int status, const char *code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void file_fail(file_in *f, int status, const char *code,
                      const char *fmt, ...)
{
    f->error_status = status;
    f->error_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->error, sizeof f->error, fmt, ap);
    va_end(ap);
}

static const char *format_extension(extract_format f)
{
    switch (f) {
    case EXTRACT_MARKDOWN: return ".md";
    case EXTRACT_HTML: return ".html";
    case EXTRACT_JSON: return ".json";
    case EXTRACT_JSONL: return ".jsonl";
    case EXTRACT_PDF: return ".pdf";
    case EXTRACT_DOCX: return ".docx";
    case EXTRACT_ODT: return ".odt";
    default: return ".txt";
    }
}

static bool has_words(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' &&
            s[i] != '\f' && s[i] != '\v')
            return true;
    return false;
}

/* The source of an upload: its base name, without control characters. */
static void source_name(file_in *f)
{
    const char *base = f->name ? f->name : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    bool ok = *base && strcmp(base, ".") != 0 && strcmp(base, "..") != 0;
    for (const char *p = base; ok && *p; p++)
        ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
    if (ok) {
        snprintf(f->source, sizeof f->source, "%s", base);
        return;
    }
    char sha[65];
    store_sha256_hex(f->data, f->len, sha);
    snprintf(f->source, sizeof f->source, "upload-%.12s%s", sha,
             format_extension(f->format));
}

/* Extract one file into its documents; failures go into the file. */
static void read_file(file_in *f)
{
    f->format = extract_format_for(f->name, f->content_type);
    if (f->format == EXTRACT_UNKNOWN) {
        file_fail(f, 415, "unsupported_format",
                  "%.256s: unknown format (%s%.100s); known: %s, or their "
                  "MIME types",
                  f->name ? f->name : "the upload",
                  f->content_type ? "Content-Type " : "no known extension",
                  f->content_type ? f->content_type : "",
                  extract_known_extensions());
        return;
    }
    source_name(f);
    lode_error err = {0};
    if (ingest_file_docs(f->source, f->format, f->data, f->len, NULL,
                         &f->docs, &f->n_docs, &err)) {
        file_fail(f, err.code == LODE_ENOMEM ? 500 : 400,
                  err.code == LODE_ENOMEM ? "out_of_memory" : "invalid_file",
                  "%.200s: %.300s", f->source, err.message);
        return;
    }
    for (size_t i = 0; i < f->n_docs; i++) {
        if (!has_words(f->docs[i].doc.text, f->docs[i].doc.len)) {
            file_fail(f, 400, "invalid_file", "%.200s: %.250s has no text",
                      f->source,
                      f->n_docs > 1 ? f->docs[i].source : "the file");
            return;
        }
    }
    f->status = calloc(f->n_docs ? f->n_docs : 1, 1);
    if (!f->status)
        file_fail(f, 500, "out_of_memory", "%s", "out of memory");
}

/* The files of the request, in request memory; answers on failure. */
static bool collect_files(http_request *req, api *a, files_state *st)
{
    size_t len;
    const char *body = http_body(req, &len);
    const char *ct = http_header(req, "Content-Type");
    if (multipart_is_form(ct)) {
        char boundary[MULTIPART_BOUNDARY_MAX + 1];
        multipart_part *parts = NULL;
        size_t n = 0;
        lode_error err = {0};
        if (multipart_boundary(ct, boundary, &err) ||
            multipart_parse(body, len, boundary,
                            (size_t)a->cfg.max_documents, &parts, &n, &err)) {
            http_respond_error(req, 400, "invalid_request_error",
                               err.code == LODE_ELIMIT ? "limit_exceeded"
                                                       : "invalid_multipart",
                               "%s", err.message);
            return false;
        }
        size_t files = 0;
        for (size_t i = 0; i < n; i++)
            files += parts[i].has_filename;
        st->files = files ? http_alloc(req, files * sizeof *st->files) : NULL;
        if (files && !st->files) {
            free(parts);
            http_respond_error(req, 500, "server_error", "out_of_memory",
                               "out of memory");
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            const multipart_part *p = &parts[i];
            if (!p->has_filename)
                continue;   /* plain form fields are not files */
            file_in *f = &st->files[st->n_files++];
            memset(f, 0, sizeof *f);
            char *name = http_alloc(req, strlen(p->filename) + 1);
            char *type = p->content_type[0]
                             ? http_alloc(req, strlen(p->content_type) + 1)
                             : NULL;
            if (name)
                strcpy(name, p->filename);
            if (type)
                strcpy(type, p->content_type);
            f->name = name && *name ? name : NULL;
            f->content_type = type;
            f->data = p->data;
            f->len = p->len;
        }
        free(parts);
        if (!st->n_files) {
            http_respond_error(req, 400, "invalid_request_error", "no_file",
                               "the form holds no file (a part with a "
                               "filename)");
            return false;
        }
        return true;
    }
    /* a raw body: one file */
    if (len == 0) {
        http_respond_error(req, 400, "invalid_request_error", "no_file",
                           "the body is empty: send a file, as the body or "
                           "as multipart/form-data");
        return false;
    }
    st->files = http_alloc(req, sizeof *st->files);
    if (!st->files) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return false;
    }
    file_in *f = &st->files[0];
    memset(f, 0, sizeof *f);
    st->n_files = 1;
    f->name = http_query(req, "filename");
    if (!f->name) {
        char *name = http_alloc(req, MULTIPART_FILENAME_MAX);
        if (name && multipart_header_param(http_header(req,
                                                       "Content-Disposition"),
                                           "filename", name,
                                           MULTIPART_FILENAME_MAX) == 1)
            f->name = name;
    }
    f->content_type = ct;
    f->data = body;
    f->len = len;
    return true;
}

/* Which documents are new, changed or unchanged (store_lock held):
 * fills each file's status and the job's documents. */
static int plan_writes(http_request *req, store *s, files_state *st,
                       lode_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < st->n_files; i++)
        if (!st->files[i].error_status)
            total += st->files[i].n_docs;
    st->docs.docs = total ? http_alloc(req, total * sizeof *st->docs.docs)
                          : NULL;
    if (total && !st->docs.docs)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    for (size_t i = 0; i < st->n_files; i++) {
        file_in *f = &st->files[i];
        if (f->error_status)
            continue;
        f->first = st->docs.n_docs;
        for (size_t d = 0; d < f->n_docs; d++) {
            ingest_doc *id = &f->docs[d];
            char sha[65];
            int64_t doc_id;
            int rc = store_find_document(s, st->docs.collection, id->source,
                                         id->doc.external_id, &doc_id, sha,
                                         err);
            if (rc && rc != LODE_ENOTFOUND)
                return rc;
            lode_error_clear(err);
            if (!rc && strcmp(sha, id->sha256) == 0) {
                f->status[d] = 'n';
                continue;
            }
            f->status[d] = rc ? 'a' : 'u';
            api_doc *ad = &st->docs.docs[st->docs.n_docs++];
            memset(ad, 0, sizeof *ad);
            ad->id = id->doc.external_id;
            ad->source = id->source;
            ad->title = id->doc.title;
            ad->text = id->doc.text;
            ad->len = id->doc.len;
            ad->metadata_json = id->metadata_json;
            memcpy(ad->sha256, id->sha256, sizeof ad->sha256);
            ad->headings = id->doc.headings;
            ad->n_headings = id->doc.n_headings;
            ad->headings_given = true;
            ad->page_starts = id->doc.page_starts;
            ad->n_pages = id->doc.n_pages;
        }
    }
    return 0;
}

static const char *status_name(char c)
{
    return c == 'a' ? "added" : c == 'u' ? "updated" : "unchanged";
}

/* The answer: one entry per file.  `written` (may be NULL when nothing
 * was) holds {id, document_id, source, chunks} per job document. */
static void answer(http_request *req, files_state *st, json_t *written)
{
    json_t *files = json_array();
    size_t stored = 0;
    int64_t chunks_total = 0;
    const file_in *first_failed = NULL;
    for (size_t i = 0; i < st->n_files; i++) {
        const file_in *f = &st->files[i];
        json_t *o = json_pack("{s:s?,s:s?,s:s}", "name", f->name, "source",
                              f->error_status ? NULL : f->source, "format",
                              extract_format_name(f->format));
        if (f->error_status) {
            if (!first_failed)
                first_failed = f;
            json_object_set_new(o, "error",
                                json_pack("{s:s,s:s}", "message", f->error,
                                          "code", f->error_code));
            json_array_append_new(files, o);
            continue;
        }
        stored++;
        json_t *docs = json_array();
        int64_t chunks = 0;
        size_t k = f->first;
        for (size_t d = 0; d < f->n_docs; d++) {
            const ingest_doc *id = &f->docs[d];
            json_t *w = NULL;
            if (f->status[d] != 'n' && written)
                w = json_array_get(written, k++);
            json_t *one = json_pack("{s:s?,s:s,s:s}", "id",
                                    id->doc.external_id, "source", id->source,
                                    "status", status_name(f->status[d]));
            if (w) {
                json_object_set(one, "document_id",
                                json_object_get(w, "document_id"));
                json_object_set(one, "chunks", json_object_get(w, "chunks"));
                chunks += json_integer_value(json_object_get(w, "chunks"));
            }
            json_array_append_new(docs, one);
        }
        chunks_total += chunks;
        json_object_set_new(o, "documents", docs);
        json_object_set_new(o, "chunks", json_integer(chunks));
        json_array_append_new(files, o);
    }
    if (!stored && first_failed) {
        json_decref(files);
        http_respond_error(req, first_failed->error_status,
                           first_failed->error_status == 500
                               ? "server_error" : "invalid_request_error",
                           first_failed->error_code, "%s",
                           first_failed->error);
        return;
    }
    http_respond_json(req, 200, json_pack("{s:s,s:o,s:i,s:I}", "collection",
                                          st->docs.collection, "files", files,
                                          "stored", (int)stored, "chunks",
                                          (json_int_t)chunks_total));
}

void api_files_add(http_request *req, void *app)
{
    api *a = app;
    files_state *st = http_state(req);
    if (st) {   /* resumed with the vectors: write, then answer */
        json_t *written = api_docs_write(req, a, &st->docs);
        if (written)
            answer(req, st, written);
        json_decref(written);
        return;
    }
    const char *name = http_param(req, 0);
    if (!api_check_collection_name(req, name))
        return;
    if (!(st = http_alloc_state(req, sizeof *st)))
        return;
    st->docs.a = a;
    st->docs.collection = name;
    http_set_state(req, st, files_state_free);
    if (!collect_files(req, a, st))
        return;
    size_t n_docs = 0;
    for (size_t i = 0; i < st->n_files; i++) {
        read_file(&st->files[i]);
        n_docs += st->files[i].n_docs;
    }
    if (n_docs > (size_t)a->cfg.max_documents) {
        http_respond_error(req, 400, "invalid_request_error", "limit_exceeded",
                           "the files hold %zu documents; the limit is %d per "
                           "request", n_docs, a->cfg.max_documents);
        return;
    }
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    lode_error err = {0};
    int rc = plan_writes(req, s, st, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    if (st->docs.n_docs == 0) {   /* all unchanged, or all failed */
        answer(req, st, NULL);
        return;
    }
    api_docs_submit(req, a, &st->docs);
}
