/* store_filter.c - evaluating Chroma "where" filters (filter.h) over a
 * collection's documents and chunks, for filtered search (store_read.c)
 * and delete-by-filter (store_write.c).
 *
 * A filter is evaluated per document first: the document's metadata with
 * the reserved fields source, title and external_id set from its columns.
 * Only chunks that can answer differently from their document - those
 * with metadata of their own, or every chunk when the filter mentions
 * "heading" - are read and evaluated one by one, so a filter on document
 * fields never reads chunk rows.  The result for search is a bitmap over
 * the rows of the collection's in-memory vector array, which selects the
 * candidates before ranking.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void store__doc_recs_free(doc_rec *docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(docs[i].rec);
    free(docs);
}

static const char *const reserved_doc_fields[] = {"source", "title", "external_id"};

int store__load_doc_recs(store *s, const coll *c, const filter *f, doc_rec **out,
                         size_t *n_out, lode_error *err)
{
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *st;
    int rc = store__prepare(s, "SELECT id, source, title, external_id, metadata FROM "
                               "documents WHERE collection_id = ? ORDER BY id", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    doc_rec *docs = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            doc_rec *grown = realloc(docs, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            docs = grown;
        }
        const char *meta = (const char *)sqlite3_column_text(st, 4);
        json_t *rec = meta ? json_loads(meta, 0, NULL) : NULL;
        if (meta && !rec) {   /* stored metadata is valid JSON: out of memory */
            rc = LODE_ENOMEM;
            break;
        }
        if (!json_is_object(rec)) {
            json_decref(rec);
            rec = json_object();
        }
        if (!rec) {
            rc = LODE_ENOMEM;
            break;
        }
        /* A field lost to a failed allocation would make the filter
         * silently miss the document: fail instead. */
        for (int i = 0; i < 3 && rc == 0; i++) {
            const char *v = (const char *)sqlite3_column_text(st, 1 + i);
            if (v && json_object_set_new(rec, reserved_doc_fields[i], json_string(v)))
                rc = LODE_ENOMEM;
            else if (!v)
                json_object_del(rec, reserved_doc_fields[i]);
        }
        if (rc) {
            json_decref(rec);
            break;
        }
        docs[n].id = sqlite3_column_int64(st, 0);
        docs[n].rec = rec;
        docs[n].match = filter_match_object(f, rec);
        n++;
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering documents");
    else if (src != SQLITE_DONE)
        rc = store__sql_error(s, src, "reading document metadata", err);
    if (rc) {
        store__doc_recs_free(docs, n);
        return rc;
    }
    *out = docs;
    *n_out = n;
    return 0;
}

typedef struct chunk_view {
    const json_t *doc;          /* doc_rec.rec */
    json_t *metadata;           /* the chunk's own object, or NULL */
    json_t *heading;            /* JSON string, or NULL */
} chunk_view;

static const json_t *chunk_lookup(void *ctx, const char *field)
{
    const chunk_view *v = ctx;
    if (strcmp(field, "heading") == 0)
        return v->heading;
    for (int i = 0; i < 3; i++)
        if (strcmp(field, reserved_doc_fields[i]) == 0)
            return json_object_get(v->doc, field);
    const json_t *own = v->metadata ? json_object_get(v->metadata, field) : NULL;
    return own ? own : json_object_get(v->doc, field);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

static const doc_rec *find_doc_rec(const doc_rec *docs, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (docs[mid].id < id)
            lo = mid + 1;
        else if (docs[mid].id > id)
            hi = mid;
        else
            return &docs[mid];
    }
    return NULL;
}

/* Evaluate the filter on every chunk that may differ from its document
 * (those with metadata of their own, or all when the filter mentions
 * "heading"); collect the ids of matching chunks, sorted. */
static int match_chunks(store *s, const coll *c, const filter *f,
                        const doc_rec *docs, size_t n_docs, int64_t **ids_out,
                        size_t *n_out, lode_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    sqlite3_stmt *st;
    int rc = store__prepare(s, "SELECT c.id, c.document_id, c.heading, c.metadata FROM "
                               "chunks c JOIN documents d ON d.id = c.document_id "
                               "WHERE d.collection_id = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    bool heading_matters = filter_references(f, "heading");
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const doc_rec *d = find_doc_rec(docs, n_docs, sqlite3_column_int64(st, 1));
        if (!d)
            continue;
        const char *heading = (const char *)sqlite3_column_text(st, 2);
        const char *meta = (const char *)sqlite3_column_text(st, 3);
        bool match;
        if (!meta && !heading_matters) {
            match = d->match;
        } else {
            chunk_view view = {d->rec, meta ? json_loads(meta, 0, NULL) : NULL,
                               heading && heading_matters ? json_string(heading) : NULL};
            /* stored metadata is valid JSON: a field lost to a failed
             * allocation would make the filter silently miss the chunk */
            if ((meta && !view.metadata) || (heading && heading_matters && !view.heading)) {
                json_decref(view.metadata);
                json_decref(view.heading);
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering chunks");
                break;
            }
            match = filter_match(f, chunk_lookup, &view);
            json_decref(view.metadata);
            json_decref(view.heading);
        }
        if (!match)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t *grown = realloc(ids, cap * sizeof *grown);
            if (!grown) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering chunks");
                break;
            }
            ids = grown;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (!rc && src != SQLITE_DONE)
        rc = store__sql_error(s, src, "reading chunk metadata", err);
    if (rc) {
        free(ids);
        return rc;
    }
    if (n)
        qsort(ids, n, sizeof *ids, cmp_i64);
    *ids_out = ids;
    *n_out = n;
    return 0;
}

static bool sorted_has(const int64_t *a, size_t n, int64_t x)
{
    return n && bsearch(&x, a, n, sizeof *a, cmp_i64) != NULL;
}

/* Build the candidate bitmap over the collection's rows for filter f. */
int store__filter_bitmap(store *s, coll *c, const filter *f, uint64_t **out,
                         lode_error *err)
{
    *out = NULL;
    if (c->has_chunk_metadata < 0) {
        sqlite3_stmt *st;
        int rc = store__prepare(s, "SELECT EXISTS (SELECT 1 FROM chunks c JOIN documents d "
                                   "ON d.id = c.document_id WHERE d.collection_id = ? AND "
                                   "c.metadata IS NOT NULL)", &st, err);
        if (rc)
            return rc;
        sqlite3_bind_int64(st, 1, c->id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            c->has_chunk_metadata = sqlite3_column_int(st, 0) != 0;
        sqlite3_finalize(st);
        if (src != SQLITE_ROW)
            return store__sql_error(s, src, "reading chunk metadata", err);
    }
    doc_rec *docs;
    size_t n_docs;
    int rc = store__load_doc_recs(s, c, f, &docs, &n_docs, err);
    if (rc)
        return rc;
    uint64_t *bits = calloc(c->vs.count / 64 + 1, sizeof *bits);
    int64_t *ids = NULL;
    size_t n_ids = 0;
    if (!bits) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering");
        goto out;
    }
    if (c->has_chunk_metadata || filter_references(f, "heading")) {
        if ((rc = match_chunks(s, c, f, docs, n_docs, &ids, &n_ids, err)))
            goto out;
        for (size_t r = 0; r < c->vs.count; r++)
            if (sorted_has(ids, n_ids, c->vs.ids[r]))
                bits[r / 64] |= 1ull << (r % 64);
    } else {
        /* Document-level only: rows of one document are mostly adjacent,
         * so remember the last answer. */
        int64_t last = -1;
        bool last_match = false;
        for (size_t r = 0; r < c->vs.count; r++) {
            if (c->vs.groups[r] != last) {
                last = c->vs.groups[r];
                const doc_rec *d = find_doc_rec(docs, n_docs, last);
                last_match = d && d->match;
            }
            if (last_match)
                bits[r / 64] |= 1ull << (r % 64);
        }
    }
out:
    free(ids);
    store__doc_recs_free(docs, n_docs);
    if (rc)
        free(bits);
    else
        *out = bits;
    return rc;
}
