/* ingest.c - files into a store collection (see ingest.h).
 *
 * One pass: the file list is built first (so progress knows the total),
 * then each file is read, hashed, compared with the store, extracted and
 * chunked, and its documents queue up with their chunks.  When the queue
 * holds INGEST_BATCH chunks, all of them are embedded (model_embed in one
 * call, which sorts by length and packs the encoder's batches) and the
 * queued documents are written, each in its own transaction.  A document
 * longer than a batch is embedded and written a batch at a time inside
 * its transaction (store_doc_writer), so memory is bounded by one batch
 * of vectors plus the text of the document being read, however long it
 * is.  Buffers for the embedding call and the store's input are reused
 * from batch to batch.
 */
#include "ingest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ingest_model_id(const model *m, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%s", model_name(m), model_type_name(m));
}

char *ingest_clean_path(const char *path)
{
    size_t n = strlen(path);
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    size_t w = 0;
    int absolute = path[0] == '/';
    if (absolute)
        out[w++] = '/';
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 0)
            break;
        if (!(len == 1 && p[0] == '.')) {
            if (w > (size_t)absolute)
                out[w++] = '/';
            memcpy(out + w, p, len);
            w += len;
        }
        p = e;
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

/* ---- the file list ---------------------------------------------------- */

typedef struct file_entry {
    char *path;               /* cleaned */
    uint64_t size;
    extract_format format;
} file_entry;

typedef struct file_list {
    file_entry *v;
    size_t n, cap;
} file_list;

typedef struct ingest_run {
    store *s;
    const ingest_backend *b;
    const ingest_options *o;
    const char *collection;
    char model_id[288];
    chunk_options chunking;
    int dim;
    ingest_stats st;
    ingest_progress pr;
    struct timespec t0;
    lode_error *err;

    /* queued documents and their chunks */
    struct queued *queue;
    size_t n_queue, queue_cap;
    size_t queued_chunks;

    /* reused buffers */
    const char **texts;
    size_t *lens;
    float *vectors;
    size_t batch_cap;
    store_chunk_in *chunk_in;
    size_t chunk_in_cap;
    char *text_arena;
    size_t text_arena_cap;

    /* sources seen this run (for sync) and files whose documents stay */
    char **seen;
    size_t n_seen, seen_cap;
    char **kept;
    size_t n_kept, kept_cap;
} ingest_run;

typedef struct queued {
    char *source;
    char sha[65];
    int exists;              /* replaces a stored document */
    extract_doc doc;         /* owned */
    chunk_list chunks;       /* owned */
    char *metadata;          /* owned, or NULL */
    size_t vec_offset;       /* first vector row, in the batch */
    /* file bookkeeping: set on the last document of a file */
    int completes_file;
    uint64_t file_bytes;
} queued;

/* The store is reached only between these (the server's store_lock). */
static void lock(ingest_run *r)
{
    if (r->b->lock)
        r->b->lock(r->b->ctx);
}

static void unlock(ingest_run *r)
{
    if (r->b->unlock)
        r->b->unlock(r->b->ctx);
}

static void note(ingest_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(ingest_run *r, const char *fmt, ...)
{
    if (!r->o->note)
        return;
    char msg[LODE_ERROR_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o->note(r->o->ctx, msg);
}

static double elapsed(const ingest_run *r)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - r->t0.tv_sec) +
           (double)(t.tv_nsec - r->t0.tv_nsec) * 1e-9;
}

static void report(ingest_run *r)
{
    if (!r->o->progress)
        return;
    r->pr.chunks = r->st.chunks;
    r->pr.seconds = elapsed(r);
    r->o->progress(r->o->ctx, &r->pr);
}

static void file_done(ingest_run *r, uint64_t bytes)
{
    r->pr.files_done++;
    r->pr.bytes_done += bytes;
    report(r);
}

static int push_string(char ***v, size_t *n, size_t *cap, const char *s,
                       lode_error *err)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        *v = nv;
        *cap = nc;
    }
    if (!((*v)[*n] = strdup(s)))
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    (*n)++;
    return LODE_OK;
}

static int add_file(ingest_run *r, file_list *fl, const char *path,
                    uint64_t size)
{
    extract_format f = extract_format_for(path, NULL);
    if (f == EXTRACT_UNKNOWN) {
        note(r, "skipping %s: unknown extension (known: %s)", path,
             extract_known_extensions());
        return LODE_OK;
    }
    if (fl->n == fl->cap) {
        size_t nc = fl->cap ? fl->cap * 2 : 256;
        file_entry *nv = realloc(fl->v, nc * sizeof *nv);
        if (!nv)
            return lode_error_set(r->err, LODE_ENOMEM, "out of memory");
        fl->v = nv;
        fl->cap = nc;
    }
    if (!(fl->v[fl->n].path = strdup(path)))
        return lode_error_set(r->err, LODE_ENOMEM, "out of memory");
    fl->v[fl->n].size = size;
    fl->v[fl->n].format = f;
    fl->n++;
    return LODE_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the files under directory `dir`, names in byte order.  Symbolic
 * links to directories are not followed (no cycles); to files they are. */
static int walk_dir(ingest_run *r, file_list *fl, const char *dir, int depth)
{
    if (depth > 64) {
        note(r, "skipping %s: directories nested too deep", dir);
        return LODE_OK;
    }
    DIR *d = opendir(dir);
    if (!d) {
        note(r, "failed %s: %s", dir, strerror(errno));
        r->st.failed++;
        return push_string(&r->kept, &r->n_kept, &r->kept_cap, dir, r->err);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = LODE_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = push_string(&names, &n, &cap, e->d_name, r->err)))
            break;
    }
    closedir(d);
    if (!rc)
        qsort(names, n, sizeof *names, cmp_str);
    size_t dl = strlen(dir);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len = dl + 1 + strlen(names[i]) + 1;
        char *path = malloc(len);
        if (!path) {
            rc = lode_error_set(r->err, LODE_ENOMEM, "out of memory");
            break;
        }
        if (strcmp(dir, "/") == 0)
            snprintf(path, len, "/%s", names[i]);
        else
            snprintf(path, len, "%s/%s", dir, names[i]);
        struct stat sb, lsb;
        if (lstat(path, &lsb) != 0 || stat(path, &sb) != 0) {
            note(r, "skipping %s: %s", path, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            if (!S_ISLNK(lsb.st_mode))
                rc = walk_dir(r, fl, path, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            rc = add_file(r, fl, path, (uint64_t)sb.st_size);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- embedding and writing -------------------------------------------- */

static void queued_free(queued *q)
{
    free(q->source);
    extract_doc_clear(&q->doc);
    chunk_list_free(&q->chunks);
    free(q->metadata);
}

static int ensure(void **p, size_t *cap, size_t need, size_t size,
                  lode_error *err)
{
    if (need <= *cap)
        return LODE_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * size);
    if (!np)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    *p = np;
    *cap = nc;
    return LODE_OK;
}

/* Room for `rows` texts and vectors in the reused batch buffers. */
static int grow_batch(ingest_run *r, size_t rows)
{
    if (rows <= r->batch_cap)
        return LODE_OK;
    int rc = ensure((void **)&r->texts, &r->batch_cap, rows,
                    sizeof *r->texts, r->err);
    if (rc)
        return rc;
    /* lens and vectors grow with texts (batch_cap rows each). */
    size_t *nl = realloc(r->lens, r->batch_cap * sizeof *nl);
    if (nl)
        r->lens = nl;
    float *nv = realloc(r->vectors, r->batch_cap * (size_t)r->dim * sizeof *nv);
    if (nv)
        r->vectors = nv;
    if (!nl || !nv)
        return lode_error_set(r->err, LODE_ENOMEM, "out of memory");
    return LODE_OK;
}

/* Point r->texts[at..] at chunks [first, first + n) of q. */
static void batch_texts(ingest_run *r, const queued *q, size_t first,
                        size_t n, size_t at)
{
    for (size_t j = 0; j < n; j++) {
        const chunk *c = &q->chunks.chunks[first + j];
        r->texts[at + j] = q->doc.text + c->byte_start;
        r->lens[at + j] = c->byte_end - c->byte_start;
    }
}

/* Embed r->texts[0..total) into r->vectors, INGEST_BATCH per call. */
static int embed_batch(ingest_run *r, size_t total)
{
    int rc = LODE_OK;
    for (size_t start = 0; start < total && !rc; start += INGEST_BATCH) {
        size_t n = total - start < INGEST_BATCH ? total - start : INGEST_BATCH;
        rc = r->b->embed(r->b->ctx, (int)n, r->texts + start, r->lens + start,
                         r->vectors + start * (size_t)r->dim, r->err);
    }
    return rc ? lode_error_prefix(r->err, "embedding") : LODE_OK;
}

/* r->chunk_in[0..n) for chunks [first, first + n) of q, with their
 * vectors from vecs and their texts copied into r->text_arena (SQLite
 * binds NUL-terminated text). */
static int fill_chunks(ingest_run *r, const queued *q, size_t first, size_t n,
                       const float *vecs)
{
    const chunk *cs = q->chunks.chunks + first;
    size_t text_bytes = 0;
    for (size_t i = 0; i < n; i++)
        text_bytes += cs[i].byte_end - cs[i].byte_start + 1;
    int rc = ensure((void **)&r->chunk_in, &r->chunk_in_cap, n + 1,
                    sizeof *r->chunk_in, r->err);
    if (!rc)
        rc = ensure((void **)&r->text_arena, &r->text_arena_cap,
                    text_bytes + 1, 1, r->err);
    if (rc)
        return rc;
    char *w = r->text_arena;
    for (size_t i = 0; i < n; i++) {
        const chunk *c = &cs[i];
        size_t len = c->byte_end - c->byte_start;
        memcpy(w, q->doc.text + c->byte_start, len);
        w[len] = '\0';
        store_chunk_in *ci = &r->chunk_in[i];
        memset(ci, 0, sizeof *ci);
        ci->text = w;
        ci->char_start = (int64_t)c->char_start;
        ci->char_end = (int64_t)c->char_end;
        ci->token_count = c->token_count;
        ci->heading = c->heading;
        ci->vector = vecs + i * (size_t)r->dim;
        ci->dimension = r->dim;
        ci->page_start = extract_page_at(&q->doc, c->byte_start);
        ci->page_end = extract_page_at(&q->doc, c->byte_end ? c->byte_end - 1
                                                            : 0);
        w += len + 1;
    }
    return LODE_OK;
}

static store_document_in doc_in(const ingest_run *r, const queued *q)
{
    return (store_document_in){
        .model_id = r->model_id,
        .source = q->source,
        .external_id = q->doc.external_id,
        .title = q->doc.title,
        .metadata_json = q->metadata ? q->metadata : q->doc.metadata_json,
        .content_sha256 = q->sha,
    };
}

/* Count a document written; the file's progress when it was its last. */
static void doc_written(ingest_run *r, const queued *q)
{
    if (q->exists)
        r->st.updated++;
    else
        r->st.added++;
    r->st.chunks += (int64_t)q->chunks.n;
    if (q->completes_file)
        file_done(r, q->file_bytes);
}

/* Write one queued document whose vectors are in r->vectors. */
static int write_doc(ingest_run *r, queued *q)
{
    size_t n = q->chunks.n;
    int rc = fill_chunks(r, q, 0, n, r->vectors + q->vec_offset * (size_t)r->dim);
    if (rc)
        return rc;
    store_document_in d = doc_in(r, q);
    d.chunks = n ? r->chunk_in : NULL;
    d.n_chunks = n;
    lock(r);
    rc = store_upsert_document(r->s, r->collection, &d, NULL, r->err);
    unlock(r);
    if (rc)
        return lode_error_prefix(r->err, "storing %s", q->source);
    doc_written(r, q);
    return LODE_OK;
}

/* A document longer than one batch, when nobody else shares the store
 * (the CLI: no lock), is embedded and written INGEST_BATCH chunks at a
 * time inside its one transaction (store_doc_writer), so memory does not
 * grow with its length: only its text and chunk offsets are held.  The
 * server keeps whole documents, since the transaction would hold the
 * store across the embedding; its uploads are capped by the body limit. */
static bool in_pieces(const ingest_run *r, const queued *q)
{
    return !r->b->lock && q->chunks.n > INGEST_BATCH;
}

static int write_in_pieces(ingest_run *r, queued *q)
{
    store_document_in d = doc_in(r, q);
    store_doc_writer *w;
    int rc = grow_batch(r, INGEST_BATCH);
    if (rc)
        return rc;
    if ((rc = store_doc_begin(r->s, r->collection, &d, true, &w, r->err)))
        return lode_error_prefix(r->err, "storing %s", q->source);
    for (size_t first = 0; first < q->chunks.n && !rc; first += INGEST_BATCH) {
        size_t n = q->chunks.n - first;
        if (n > INGEST_BATCH)
            n = INGEST_BATCH;
        batch_texts(r, q, first, n, 0);
        rc = embed_batch(r, n);
        if (!rc)
            rc = fill_chunks(r, q, first, n, r->vectors);
        if (!rc && (rc = store_doc_add_chunks(w, r->chunk_in, n, r->err)))
            lode_error_prefix(r->err, "storing %s", q->source);
    }
    if (rc) {
        store_doc_abort(w);
        return rc;
    }
    if ((rc = store_doc_commit(w, NULL, r->err)))
        return lode_error_prefix(r->err, "storing %s", q->source);
    doc_written(r, q);
    return LODE_OK;
}

/* Embed the chunks of queue[from, to) together, then write each. */
static int write_together(ingest_run *r, size_t from, size_t to)
{
    size_t total = 0;
    for (size_t i = from; i < to; i++)
        total += r->queue[i].chunks.n;
    int rc = grow_batch(r, total);
    for (size_t i = from, k = 0; i < to && !rc; i++) {
        queued *q = &r->queue[i];
        q->vec_offset = k;
        batch_texts(r, q, 0, q->chunks.n, k);
        k += q->chunks.n;
    }
    if (!rc && total)
        rc = embed_batch(r, total);
    for (size_t i = from; i < to && !rc; i++)
        rc = write_doc(r, &r->queue[i]);
    return rc;
}

/* Embed every queued chunk and write the queued documents, in order. */
static int flush(ingest_run *r)
{
    int rc = LODE_OK;
    for (size_t i = 0; i < r->n_queue && !rc;) {
        size_t j = i;
        while (j < r->n_queue && !in_pieces(r, &r->queue[j]))
            j++;
        rc = write_together(r, i, j);
        if (!rc && j < r->n_queue)
            rc = write_in_pieces(r, &r->queue[j++]);
        i = j;
    }
    for (size_t i = 0; i < r->n_queue; i++)
        queued_free(&r->queue[i]);
    r->n_queue = 0;
    r->queued_chunks = 0;
    return rc;
}

/* Queue one extracted document (taking ownership of its fields). */
static int enqueue(ingest_run *r, const char *source, const char *sha,
                   int exists, extract_doc *doc, const char *metadata)
{
    int rc = ensure((void **)&r->queue, &r->queue_cap, r->n_queue + 1,
                    sizeof *r->queue, r->err);
    if (rc)
        return rc;
    queued *q = &r->queue[r->n_queue];
    memset(q, 0, sizeof *q);
    q->doc = *doc;
    memset(doc, 0, sizeof *doc);
    q->exists = exists;
    memcpy(q->sha, sha, 65);
    q->source = strdup(source);
    q->metadata = metadata ? strdup(metadata) : NULL;
    r->n_queue++;
    if (!q->source || (metadata && !q->metadata))
        return lode_error_set(r->err, LODE_ENOMEM, "out of memory");
    rc = r->b->chunk(r->b->ctx, q->doc.text, q->doc.len, q->doc.headings,
                     q->doc.n_headings, &r->chunking, &q->chunks, r->err);
    if (rc)
        return rc;
    r->queued_chunks += q->chunks.n;
    return LODE_OK;
}

/* Is the stored document at source/external_id present with this sha? */
static int lookup(ingest_run *r, const char *source, const char *external_id,
                  const char *sha, int *exists, int *same)
{
    char stored[65];
    int64_t id;
    lock(r);
    int rc = store_find_document(r->s, r->collection, source, external_id,
                                 &id, stored, r->err);
    unlock(r);
    *exists = rc == LODE_OK;
    *same = *exists && strcmp(stored, sha) == 0;
    if (rc == LODE_ENOTFOUND) {
        lode_error_clear(r->err);
        return LODE_OK;
    }
    return rc;
}

/* SHA-256 of a file, read through a fixed buffer. */
static int hash_file(const char *path, char sha[65], lode_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lode_error_set(err, LODE_EIO, "%s", strerror(errno));
    store_sha256 h;
    store_sha256_init(&h);
    char buf[65536];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            close(fd);
            store_sha256_free(&h);
            return lode_error_set(err, LODE_EIO, "%s", strerror(e));
        }
        if (got == 0)
            break;
        store_sha256_update(&h, buf, (size_t)got);
    }
    close(fd);
    store_sha256_final_hex(&h, sha);
    return LODE_OK;
}

/* SHA-256 of a record's identity and content. */
static int record_sha(const extract_doc *d, char sha[65], lode_error *err)
{
    const char *parts[4] = {d->text, d->title, d->external_id,
                            d->metadata_json};
    size_t lens[4], total = 0;
    for (int i = 0; i < 4; i++) {
        lens[i] = parts[i] ? (i == 0 ? d->len : strlen(parts[i])) : 0;
        total += lens[i] + 1;
    }
    char *buf = malloc(total);
    if (!buf)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    size_t w = 0;
    for (int i = 0; i < 4; i++) {
        if (lens[i])
            memcpy(buf + w, parts[i], lens[i]);
        w += lens[i];
        buf[w++] = parts[i] ? '\x1f' : '\x1e';
    }
    store_sha256_hex(buf, w, sha);
    free(buf);
    return LODE_OK;
}

void ingest_docs_free(ingest_doc *docs, size_t n)
{
    if (!docs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(docs[i].source);
        free(docs[i].metadata_json);
        extract_doc_clear(&docs[i].doc);
    }
    free(docs);
}

int ingest_file_docs(const char *name, extract_format f, const char *data,
                     size_t len, const extract_options *opts,
                     ingest_doc **out, size_t *n_out, lode_error *err)
{
    *out = NULL;
    *n_out = 0;
    extract_doc *ex;
    size_t n;
    int rc = data ? extract_buffer(f, data, len, opts, &ex, &n, err)
                  : extract_file(f, name, opts, &ex, &n, err);
    if (rc)
        return rc;
    ingest_doc *docs = calloc(n ? n : 1, sizeof *docs);
    if (!docs) {
        extract_docs_free(ex, n);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    int records = extract_is_records(f);
    char file_sha[65];
    if (!records && data)
        store_sha256_hex(data, len, file_sha);
    else if (!records && (rc = hash_file(name, file_sha, err))) {
        extract_docs_free(ex, n);
        free(docs);
        return rc;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        ingest_doc *d = &docs[i];
        d->doc = ex[i];                  /* moved: ex keeps only the array */
        memset(&ex[i], 0, sizeof ex[i]);
        if (records) {
            size_t sl = strlen(name) + 2 +
                        (d->doc.external_id ? strlen(d->doc.external_id) : 24);
            if (!(d->source = malloc(sl))) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
                break;
            }
            if (d->doc.external_id)
                snprintf(d->source, sl, "%s#%s", name, d->doc.external_id);
            else
                snprintf(d->source, sl, "%s#%zu", name, d->doc.record);
            rc = record_sha(&d->doc, d->sha256, err);
            d->metadata_json = d->doc.metadata_json;
            d->doc.metadata_json = NULL;
        } else {
            char meta[64];
            snprintf(meta, sizeof meta, "{\"format\":\"%s\"}",
                     extract_format_name(f));
            memcpy(d->sha256, file_sha, sizeof file_sha);
            d->source = strdup(name);
            d->metadata_json = strdup(meta);
            if (!d->source || !d->metadata_json)
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        }
    }
    extract_docs_free(ex, n);
    if (rc) {
        ingest_docs_free(docs, n);
        return rc;
    }
    *out = docs;
    *n_out = n;
    return LODE_OK;
}

/* Ingest one file: queue what changed, flush when the batch is full.
 * Returns an error only for failures that stop the run. */
static int ingest_file(ingest_run *r, const file_entry *f)
{
    lode_error ferr = {0};
    char *data = NULL;
    size_t len = 0;
    char sha[65];
    int rc;
    int binary = extract_is_binary(f->format);
    /* Binary formats are hashed here and read again by their extractor,
     * so the file is never held whole (see extract_file). */
    if (binary ? hash_file(f->path, sha, &ferr)
               : extract_read_file(f->path, &data, &len, &ferr)) {
        note(r, "failed %s: %s", f->path, ferr.message);
        r->st.failed++;
        if ((rc = push_string(&r->kept, &r->n_kept, &r->kept_cap, f->path,
                              r->err)))
            return rc;
        file_done(r, f->size);
        return LODE_OK;
    }
    int records = extract_is_records(f->format);
    int exists = 0, same = 0;
    if (!records) {
        if (!binary)
            store_sha256_hex(data, len, sha);
        if ((rc = push_string(&r->seen, &r->n_seen, &r->seen_cap, f->path,
                              r->err)) ||
            (rc = lookup(r, f->path, NULL, sha, &exists, &same))) {
            free(data);
            return rc;
        }
        if (same) {
            free(data);
            r->st.unchanged++;
            file_done(r, f->size);
            return LODE_OK;
        }
    }
    ingest_doc *docs;
    size_t n_docs;
    rc = ingest_file_docs(f->path, f->format, binary ? NULL : data, len,
                          &r->o->extract, &docs, &n_docs, &ferr);
    free(data);
    if (rc) {
        note(r, "failed %s: %s", f->path, ferr.message);
        r->st.failed++;
        file_done(r, f->size);
        return push_string(&r->kept, &r->n_kept, &r->kept_cap, f->path,
                           r->err);
    }
    size_t queued_before = r->n_queue;
    for (size_t i = 0; i < n_docs && !rc; i++) {
        ingest_doc *d = &docs[i];
        if (records) {
            if ((rc = push_string(&r->seen, &r->n_seen, &r->seen_cap,
                                  d->source, r->err)) ||
                (rc = lookup(r, d->source, d->doc.external_id, d->sha256,
                             &exists, &same)))
                break;
            if (same) {
                r->st.unchanged++;
                continue;
            }
        }
        rc = enqueue(r, d->source, d->sha256, exists, &d->doc,
                     d->metadata_json);
        if (rc == LODE_EUTF8 || rc == LODE_ELIMIT) {
            /* cannot happen after extraction's checks; fail the file */
            note(r, "failed %s: %s", f->path, r->err->message);
            lode_error_clear(r->err);
            r->st.failed++;
            queued_free(&r->queue[--r->n_queue]);
            rc = LODE_OK;
            break;
        }
    }
    ingest_docs_free(docs, n_docs);
    if (rc)
        return rc;
    if (r->n_queue > queued_before) {
        r->queue[r->n_queue - 1].completes_file = 1;
        r->queue[r->n_queue - 1].file_bytes = f->size;
    } else {
        file_done(r, f->size);
    }
    if (r->queued_chunks >= INGEST_BATCH)
        return flush(r);
    return LODE_OK;
}

/* Is `source` under one of the given (cleaned) paths? */
static int under(const char *source, char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        size_t pl = strlen(p);
        if (strcmp(p, ".") == 0 && source[0] != '/')
            return 1;
        if (strncmp(source, p, pl) == 0 &&
            (source[pl] == '\0' || source[pl] == '#' ||
             (source[pl] == '/' && pl > 0) || (pl == 1 && p[0] == '/')))
            return 1;
    }
    return 0;
}

static int in_sorted(char **v, size_t n, const char *s)
{
    return n && bsearch(&s, v, n, sizeof *v, cmp_str) != NULL;
}

/* A source of a file or directory in `kept` (it failed this run, so its
 * documents stay): the path itself, its records "PATH#ID", or below it. */
static int of_kept_file(ingest_run *r, const char *source)
{
    for (size_t i = 0; i < r->n_kept; i++) {
        size_t kl = strlen(r->kept[i]);
        if (strncmp(source, r->kept[i], kl) == 0 &&
            (source[kl] == '\0' || source[kl] == '#' || source[kl] == '/'))
            return 1;
    }
    return 0;
}

typedef struct keyed {
    const char *path;
    size_t index;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int drop_duplicates(file_list *fl, lode_error *err)
{
    if (fl->n < 2)
        return LODE_OK;
    keyed *k = malloc(fl->n * sizeof *k);
    char *drop = calloc(fl->n, 1);
    if (!k || !drop) {
        free(k);
        free(drop);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < fl->n; i++)
        k[i] = (keyed){fl->v[i].path, i};
    qsort(k, fl->n, sizeof *k, cmp_keyed);
    for (size_t i = 1; i < fl->n; i++)
        if (strcmp(k[i].path, k[i - 1].path) == 0)
            drop[k[i].index] = 1;
    size_t w = 0;
    for (size_t i = 0; i < fl->n; i++) {
        if (drop[i])
            free(fl->v[i].path);
        else
            fl->v[w++] = fl->v[i];
    }
    fl->n = w;
    free(k);
    free(drop);
    return LODE_OK;
}

static int sync_removed(ingest_run *r, char *const *paths, size_t n_paths)
{
    char **sources = NULL;
    size_t n = 0;
    lock(r);
    int rc = store_list_sources(r->s, r->collection, &sources, &n, r->err);
    unlock(r);
    if (rc)
        return rc;
    qsort(r->seen, r->n_seen, sizeof *r->seen, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        const char *src = sources[i];
        if (!under(src, paths, n_paths) || in_sorted(r->seen, r->n_seen, src) ||
            of_kept_file(r, src))
            continue;
        int64_t id;
        lock(r);
        rc = store_find_document(r->s, r->collection, src, NULL, &id, NULL,
                                 r->err);
        if (!rc)
            rc = store_delete_document(r->s, id, r->err);
        unlock(r);
        if (!rc)
            r->st.removed++;
    }
    store_strings_free(sources, n);
    return rc;
}

/* The backend of a model owned by the caller. */
static int model_chunk(void *ctx, const char *text, size_t len,
                       const chunk_heading *headings, size_t n_headings,
                       const chunk_options *o, chunk_list *out,
                       lode_error *err)
{
    return chunk_split(model_tokenizer(ctx), text, len, headings,
                       n_headings, o, out, err);
}

static int model_embed_texts(void *ctx, int n, const char *const *texts,
                             const size_t *lens, float *out, lode_error *err)
{
    return model_embed(ctx, n, texts, lens, out, NULL, err);
}

int ingest_paths(store *s, model *m, const char *const *paths,
                 size_t n_paths, const ingest_options *opts,
                 ingest_stats *stats, lode_error *err)
{
    ingest_backend b = {
        .chunk = model_chunk,
        .embed = model_embed_texts,
        .ctx = m,
        .dim = model_dim(m),
        .max_seq_length = model_max_seq_length(m),
    };
    ingest_model_id(m, b.model_id, sizeof b.model_id);
    return ingest_paths_with(s, &b, paths, n_paths, opts, stats, err);
}

int ingest_paths_with(store *s, const ingest_backend *b,
                      const char *const *paths, size_t n_paths,
                      const ingest_options *opts, ingest_stats *stats,
                      lode_error *err)
{
    ingest_run r = {0};
    r.s = s;
    r.b = b;
    r.o = opts;
    r.err = err;
    r.collection = opts->collection ? opts->collection
                                    : INGEST_DEFAULT_COLLECTION;
    r.dim = b->dim;
    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    snprintf(r.model_id, sizeof r.model_id, "%s", b->model_id);
    if (stats)
        memset(stats, 0, sizeof *stats);

    r.chunking = chunk_default_options(b->max_seq_length);
    if (opts->chunk_tokens > 0) {
        r.chunking.max_tokens = opts->chunk_tokens;
        if (opts->overlap_tokens < 0 &&
            r.chunking.overlap_tokens > r.chunking.max_tokens / 5)
            r.chunking.overlap_tokens = r.chunking.max_tokens / 5;
    }
    if (opts->overlap_tokens >= 0)
        r.chunking.overlap_tokens = opts->overlap_tokens;
    int rc = chunk_check_options(&r.chunking, b->max_seq_length, err);
    if (rc)
        return rc;

    file_list fl = {0};
    char **clean = calloc(n_paths ? n_paths : 1, sizeof *clean);
    if (!clean)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_paths; i++) {
        struct stat sb;
        if (!(clean[i] = ingest_clean_path(paths[i]))) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto out;
        }
        if (stat(clean[i], &sb) != 0) {
            rc = lode_error_set(err, errno == ENOENT ? LODE_ENOTFOUND
                                                     : LODE_EIO,
                                "%s: %s", paths[i], strerror(errno));
            goto out;
        }
    }
    lock(&r);
    rc = store_create_collection(s, r.collection, r.model_id, r.dim,
                                 STORE_COSINE, err);
    unlock(&r);
    if (rc)
        goto out;
    for (size_t i = 0; i < n_paths && !rc; i++) {
        struct stat sb;
        if (stat(clean[i], &sb) != 0)
            rc = lode_error_set(err, LODE_EIO, "%s: %s", paths[i],
                                strerror(errno));
        else if (S_ISDIR(sb.st_mode))
            rc = walk_dir(&r, &fl, clean[i], 0);
        else if (S_ISREG(sb.st_mode))
            rc = add_file(&r, &fl, clean[i], (uint64_t)sb.st_size);
        else
            note(&r, "skipping %s: not a regular file or directory",
                 clean[i]);
    }
    if (rc)
        goto out;
    /* Drop files listed twice (overlapping paths), keeping the first. */
    if ((rc = drop_duplicates(&fl, err)))
        goto out;
    r.st.files = fl.n;
    r.pr.files_total = fl.n;
    for (size_t i = 0; i < fl.n; i++)
        r.pr.bytes_total += fl.v[i].size;
    report(&r);

    for (size_t i = 0; i < fl.n && !rc; i++)
        rc = ingest_file(&r, &fl.v[i]);
    if (!rc)
        rc = flush(&r);
    if (!rc && opts->sync)
        rc = sync_removed(&r, clean, n_paths);
    r.st.seconds = elapsed(&r);
    report(&r);
out:
    if (stats)
        *stats = r.st;
    for (size_t i = 0; i < r.n_queue; i++)
        queued_free(&r.queue[i]);
    free(r.queue);
    free(r.texts);
    free(r.lens);
    free(r.vectors);
    free(r.chunk_in);
    free(r.text_arena);
    store_strings_free(r.seen, r.n_seen);
    store_strings_free(r.kept, r.n_kept);
    for (size_t i = 0; i < fl.n; i++)
        free(fl.v[i].path);
    free(fl.v);
    for (size_t i = 0; i < n_paths; i++)
        free(clean[i]);
    free(clean);
    return rc;
}
