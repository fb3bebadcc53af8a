/* store_write.c - every change the store makes to its file: creating and
 * deleting collections, adding, upserting and deleting documents, and
 * vacuum (see store.h for the contract, store.c for the schema).
 *
 * Each call is one transaction (BEGIN IMMEDIATE ... COMMIT) whose steps go
 * through store__step_write()/store__exec_write(), so the fault tests can
 * fail any of them.  A document is written through a store_doc_writer,
 * whole (store_add_document) or in pieces (lode ingest of a long PDF, so
 * its vectors need not all be held at once): its new vectors enter the
 * in-memory array as they are written, under a pending group that a
 * commit turns into the document's id and a rollback removes, so the
 * commit itself cannot fail for want of memory and a failed write leaves
 * both the file and the arrays as they were.  Chunks are
 * validated inside the transaction, so a bad chunk in the middle of a
 * document takes the same rollback path as a failed write.  The keyword
 * index (chunks_fts) is kept by triggers in the schema (store.c), so it
 * changes in the same transactions without code here.
 */
#include "store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "jsonmem.h"

/* Append a note to a message already set (no-op without room or err). */
static void append_note(lode_error *err, const char *note)
{
    if (!err)
        return;
    size_t len = strlen(err->message), nl = strlen(note);
    if (len + nl < sizeof err->message)
        memcpy(err->message + len, note, nl + 1);
}

static int need_writable(store *s, const char *doing, lode_error *err)
{
    if (!s->read_only)
        return 0;
    return lode_error_set(err, LODE_EIO, "%s: cannot %s: the store is open "
                          "read-only (%s)", s->path, doing, s->read_only_reason);
}

/* ---- collections ------------------------------------------------------ */

int store_create_collection(store *s, const char *name, const char *model_id,
                            int dimension, store_distance distance,
                            lode_error *err)
{
    if (!name || !*name || !model_id || !*model_id)
        return lode_error_set(err, LODE_EINVAL, "a collection needs a name and a model id");
    if (dimension <= 0 || dimension > STORE_MAX_DIMENSION)
        return lode_error_set(err, LODE_EINVAL, "collection \"%s\": dimension %d "
                              "is out of range (1..%d)", name, dimension, STORE_MAX_DIMENSION);
    if ((unsigned)distance > STORE_L2)
        return lode_error_set(err, LODE_EINVAL, "collection \"%s\": unknown distance", name);
    int rc = store__refresh(s, err);
    if (rc)
        return rc;
    coll *c = store__find_coll(s, name);
    if (c) {
        if ((rc = store__check_model(c, model_id, dimension, "use", err)))
            return rc;
        if (c->distance != distance)
            return lode_error_set(err, LODE_EINVAL, "collection \"%s\" already "
                                  "exists with distance %s, not %s", name,
                                  store__distance_names[c->distance],
                                  store__distance_names[distance]);
        return 0;
    }
    if ((rc = need_writable(s, "create a collection", err)))
        return rc;

    coll **grown = realloc(s->colls, (s->n_colls + 1) * sizeof *grown);
    if (!grown)
        return lode_error_set(err, LODE_ENOMEM, "out of memory creating a collection");
    s->colls = grown;
    int64_t now = (int64_t)time(NULL);
    c = store__coll_new(s, 0, name, model_id, dimension, distance, now);
    if (!c)
        return lode_error_set(err, LODE_ENOMEM, "out of memory creating a collection");
    c->has_chunk_metadata = 0;

    sqlite3_stmt *st = NULL;
    int src = store__exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    if ((rc = store__prepare(s, "INSERT INTO collections (name, model_id, dimension, "
                                "distance, created) VALUES (?, ?, ?, ?, ?)", &st, err)))
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, model_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, dimension);
    sqlite3_bind_text(st, 4, store__distance_names[distance], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if ((src = store__step_write(s, st)) != SQLITE_DONE)
        goto sql_fail;
    c->id = sqlite3_last_insert_rowid(s->db);
    if ((src = store__exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;
    sqlite3_finalize(st);
    s->colls[s->n_colls++] = c;
    return 0;

sql_fail:
    rc = store__sql_error(s, src, "creating a collection", err);
fail:
    sqlite3_finalize(st);
    store__rollback(s);
    store__coll_free(c);
    return rc;
}

int store_delete_collection(store *s, const char *name, lode_error *err)
{
    coll *c;
    int rc = store__need_coll(s, name, &c, err);
    if (rc || (rc = need_writable(s, "delete a collection", err)))
        return rc;
    sqlite3_stmt *st = NULL;
    int src = store__exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    /* Cascades to documents, chunks and vectors. */
    if ((rc = store__prepare(s, "DELETE FROM collections WHERE id = ?", &st, err)))
        goto fail;
    sqlite3_bind_int64(st, 1, c->id);
    if ((src = store__step_write(s, st)) != SQLITE_DONE ||
        (src = store__exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;
    sqlite3_finalize(st);
    for (size_t i = 0; i < s->n_colls; i++)
        if (s->colls[i] == c) {
            s->colls[i] = s->colls[--s->n_colls];
            break;
        }
    store__coll_free(c);
    return 0;

sql_fail:
    rc = store__sql_error(s, src, "deleting a collection", err);
fail:
    sqlite3_finalize(st);
    store__rollback(s);
    return rc;
}

/* ---- documents: validation -------------------------------------------- */

/* NULL or a JSON object; anything else is refused. */
static int check_json_object(const char *json, const char *what, lode_error *err)
{
    if (!json)
        return 0;
    json_error_t jerr;
    unsigned long failed = jsonmem_failures();
    json_t *v = json_loads(json, 0, &jerr);
    if (!v && jsonmem_failures() != failed)
        return lode_error_set(err, LODE_ENOMEM, "out of memory reading %s", what);
    if (!v)
        return lode_error_set(err, LODE_EINVAL, "%s is not valid JSON: %s "
                              "(line %d, column %d)", what, jerr.text, jerr.line,
                              jerr.column);
    bool ok = json_is_object(v);
    json_decref(v);
    if (!ok)
        return lode_error_set(err, LODE_EINVAL, "%s must be a JSON object", what);
    return 0;
}

static int check_sha256(const char *sha, lode_error *err)
{
    if (!sha)
        return 0;
    size_t n = strlen(sha);
    for (size_t i = 0; i < n; i++)
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
            n = 0;
    if (n != 64)
        return lode_error_set(err, LODE_EINVAL, "content SHA-256 \"%.80s\" is not "
                              "64 lowercase hex digits", sha);
    return 0;
}

static const char *doc_name(const store_document_in *doc)
{
    return doc->source ? doc->source : doc->external_id ? doc->external_id : "(unnamed)";
}

/* ---- documents: writing ----------------------------------------------- */

/* A document's new rows sit in the collection's array under this group
 * (document ids are positive) until its transaction commits: a commit
 * moves them to the document's id, a rollback removes them.  Nobody
 * searches in between (the writer holds the store, see store.h). */
#define PENDING_GROUP INT64_C(-1)

struct store_doc_writer {
    store *s;
    coll *c;
    bool open;                  /* the transaction is still open */
    int64_t doc_id, existing;
    size_t n_chunks;            /* written so far: the next ordinal */
    bool any_chunk_metadata;
    sqlite3_stmt *st_chunk, *st_vec;
    float *v;                   /* one vector, normalised */
    unsigned char *blob;        /* the same, little-endian bytes */
    char name[160];             /* the document, for messages */
};

/* Roll back: the file by SQLite, the array by dropping the pending rows. */
static void writer_rollback(store_doc_writer *w, lode_error *err)
{
    if (!w->open)
        return;
    sqlite3_finalize(w->st_chunk);
    sqlite3_finalize(w->st_vec);
    w->st_chunk = w->st_vec = NULL;
    store__rollback(w->s);
    int64_t pending = PENDING_GROUP;
    vecset_remove_groups(&w->c->vs, &pending, 1);
    w->open = false;
    append_note(err, "; nothing of this document was stored");
}

/* An SQLite failure as a lode error, then the rollback. */
static int writer_sql_fail(store_doc_writer *w, int src, const char *doing,
                           lode_error *err)
{
    int rc;
    if ((src & 0xff) == SQLITE_CONSTRAINT)
        rc = lode_error_set(err, LODE_EINVAL, "document \"%s\" conflicts with a "
                            "stored one: %s", w->name, sqlite3_errmsg(w->s->db));
    else
        rc = store__sql_error(w->s, src, doing, err);
    writer_rollback(w, err);
    return rc;
}

void store_doc_abort(store_doc_writer *w)
{
    if (!w)
        return;
    writer_rollback(w, NULL);
    free(w->v);
    free(w->blob);
    free(w);
}

int store_doc_begin(store *s, const char *collection, const store_document_in *doc,
                    bool upsert, store_doc_writer **out, lode_error *err)
{
    *out = NULL;
    const char *doing = upsert ? "upsert a document" : "add a document";
    coll *c;
    int rc = store__need_coll(s, collection, &c, err);
    if (rc || (rc = need_writable(s, doing, err)))
        return rc;
    if ((rc = store__check_model(c, doc->model_id, c->dimension,
                                 upsert ? "upsert into" : "add to", err)))
        return rc;
    if (upsert && !doc->source && !doc->external_id)
        return lode_error_set(err, LODE_EINVAL, "upsert needs a source path or an "
                              "external id to find the document to replace");
    if ((rc = check_json_object(doc->metadata_json, "document metadata", err)) ||
        (rc = check_sha256(doc->content_sha256, err))) {
        lode_error_prefix(err, "document \"%s\"", doc_name(doc));
        return rc;
    }

    store_doc_writer *w = calloc(1, sizeof *w);
    size_t dim = (size_t)c->dimension;
    if (!w || !(w->v = malloc(dim * sizeof(float))) ||
        !(w->blob = malloc(dim * sizeof(float)))) {
        store_doc_abort(w);
        return lode_error_set(err, LODE_ENOMEM, "out of memory adding a document");
    }
    w->s = s;
    w->c = c;
    snprintf(w->name, sizeof w->name, "%s", doc_name(doc));

    sqlite3_stmt *st = NULL;
    int src = store__exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    w->open = true;
    int64_t by_ext = 0, by_source = 0;
    if ((rc = store__find_doc_id(s, c->id, NULL, doc->external_id, &by_ext, NULL, err)) ||
        (rc = store__find_doc_id(s, c->id, doc->source, NULL, &by_source, NULL, err)))
        goto fail;
    int64_t existing = doc->external_id ? by_ext : by_source;
    if (!upsert && (by_ext || by_source)) {
        rc = lode_error_set(err, LODE_EINVAL, "collection \"%s\" already has a "
                            "document with %s \"%s\"; use upsert to replace it",
                            c->name, by_ext ? "external id" : "source",
                            by_ext ? doc->external_id : doc->source);
        goto fail;
    }
    if (upsert && by_source && by_source != existing) {
        rc = lode_error_set(err, LODE_EINVAL, "collection \"%s\": source \"%s\" "
                            "already belongs to another document (id %lld)",
                            c->name, doc->source, (long long)by_source);
        goto fail;
    }

    int64_t now = (int64_t)time(NULL);
    if (existing) {
        /* Before the document row changes: the keyword index's triggers
         * then remove the old chunks' entries under the title they were
         * indexed with, once.  Cascades to the old vectors. */
        if ((rc = store__prepare(s, "DELETE FROM chunks WHERE document_id = ?", &st, err)))
            goto fail;
        sqlite3_bind_int64(st, 1, existing);
        if ((src = store__step_write(s, st)) != SQLITE_DONE)
            goto sql_fail;
        sqlite3_finalize(st);
        st = NULL;
        rc = store__prepare(s, "UPDATE documents SET source = ?1, external_id = ?2, "
                               "title = ?3, metadata = ?4, content_sha256 = ?5, "
                               "updated = ?6 WHERE id = ?7", &st, err);
    } else {
        rc = store__prepare(s, "INSERT INTO documents (source, external_id, title, "
                               "metadata, content_sha256, created, updated, "
                               "collection_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                            &st, err);
    }
    if (rc)
        goto fail;
    store__bind_text(st, 1, doc->source);
    store__bind_text(st, 2, doc->external_id);
    store__bind_text(st, 3, doc->title);
    store__bind_text(st, 4, doc->metadata_json);
    store__bind_text(st, 5, doc->content_sha256);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, existing ? existing : c->id);
    if ((src = store__step_write(s, st)) != SQLITE_DONE)
        goto sql_fail;
    sqlite3_finalize(st);
    st = NULL;
    w->existing = existing;
    w->doc_id = existing ? existing : sqlite3_last_insert_rowid(s->db);

    if ((rc = store__prepare(s, "INSERT INTO chunks (document_id, ordinal, char_start, "
                                "char_end, token_count, heading, metadata, text, "
                                "page_start, page_end) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &w->st_chunk, err)) ||
        (rc = store__prepare(s, "INSERT INTO vectors (chunk_id, collection_id, "
                                "document_id, vector) VALUES (?, ?, ?, ?)", &w->st_vec, err)))
        goto fail;
    *out = w;
    return 0;

sql_fail:   /* also when BEGIN itself failed: nothing to roll back then */
    sqlite3_finalize(st);
    rc = writer_sql_fail(w, src, upsert ? "upserting a document" : "adding a document", err);
    store_doc_abort(w);
    return rc;
fail:
    sqlite3_finalize(st);
    writer_rollback(w, err);
    store_doc_abort(w);
    return rc;
}

/* Check one chunk; its vector, normalised for cosine, goes to w->v. */
static int check_chunk(store_doc_writer *w, const store_chunk_in *ch, size_t i,
                       lode_error *err)
{
    coll *c = w->c;
    if (ch->dimension != c->dimension || !ch->vector)
        return lode_error_set(err, LODE_EINVAL, "document \"%s\", chunk %zu: the "
                              "vector has %d dimensions but collection \"%s\" "
                              "(model \"%s\") needs %d", w->name, i,
                              ch->vector ? ch->dimension : 0, c->name,
                              c->model_id, c->dimension);
    for (int j = 0; j < c->dimension; j++) {
        if (!isfinite(ch->vector[j]))
            return lode_error_set(err, LODE_EINVAL, "document \"%s\", chunk %zu: "
                                  "the vector holds a NaN or infinity at %d",
                                  w->name, i, j);
        w->v[j] = ch->vector[j];
    }
    if (c->distance == STORE_COSINE)
        vecset_normalize(w->v, c->dimension);
    if (ch->char_start < 0 || ch->char_end < ch->char_start || ch->token_count < 0)
        return lode_error_set(err, LODE_EINVAL, "document \"%s\", chunk %zu: bad "
                              "offsets %lld..%lld or token count %d", w->name,
                              i, (long long)ch->char_start, (long long)ch->char_end,
                              ch->token_count);
    int rc = check_json_object(ch->metadata_json, "chunk metadata", err);
    if (rc)
        lode_error_prefix(err, "document \"%s\", chunk %zu", w->name, i);
    return rc;
}

int store_doc_add_chunks(store_doc_writer *w, const store_chunk_in *chunks,
                         size_t n, lode_error *err)
{
    if (!w->open)
        return lode_error_set(err, LODE_EINVAL, "document \"%s\": already rolled back",
                              w->name);
    if (n && !chunks) {
        int rc = lode_error_set(err, LODE_EINVAL, "document \"%s\": no chunk array", w->name);
        writer_rollback(w, err);
        return rc;
    }
    coll *c = w->c;
    size_t dim = (size_t)c->dimension;
    for (size_t k = 0; k < n; k++) {
        const store_chunk_in *ch = &chunks[k];
        size_t i = w->n_chunks;
        /* Checked here, inside the transaction, so that a bad chunk in the
         * middle of a document exercises the same rollback as a failed
         * write. */
        int rc = check_chunk(w, ch, i, err);
        if (rc) {
            writer_rollback(w, err);
            return rc;
        }
        w->any_chunk_metadata |= ch->metadata_json != NULL;

        sqlite3_stmt *st = w->st_chunk;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, w->doc_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, ch->char_start);
        sqlite3_bind_int64(st, 4, ch->char_end);
        sqlite3_bind_int(st, 5, ch->token_count);
        store__bind_text(st, 6, ch->heading);
        store__bind_text(st, 7, ch->metadata_json);
        sqlite3_bind_text(st, 8, ch->text ? ch->text : "", -1, SQLITE_STATIC);
        if (ch->page_start > 0 && ch->page_end >= ch->page_start) {
            sqlite3_bind_int(st, 9, ch->page_start);
            sqlite3_bind_int(st, 10, ch->page_end);
        } else {
            sqlite3_bind_null(st, 9);
            sqlite3_bind_null(st, 10);
        }
        int src = store__step_write(w->s, st);
        if (src != SQLITE_DONE)
            return writer_sql_fail(w, src, "adding a chunk", err);
        int64_t chunk_id = sqlite3_last_insert_rowid(w->s->db);

        store__floats_to_le(w->v, c->dimension, w->blob);
        st = w->st_vec;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, chunk_id);
        sqlite3_bind_int64(st, 2, c->id);
        sqlite3_bind_int64(st, 3, w->doc_id);
        sqlite3_bind_blob(st, 4, w->blob, (int)(dim * sizeof(float)), SQLITE_STATIC);
        if ((src = store__step_write(w->s, st)) != SQLITE_DONE)
            return writer_sql_fail(w, src, "adding a chunk", err);
        /* in the array now, so the commit cannot run out of memory */
        if ((rc = vecset_append(&c->vs, chunk_id, PENDING_GROUP, w->v, err))) {
            writer_rollback(w, err);
            return rc;
        }
        w->n_chunks++;
    }
    return 0;
}

int store_doc_commit(store_doc_writer *w, int64_t *doc_id, lode_error *err)
{
    int rc = 0;
    if (!w->open) {
        rc = lode_error_set(err, LODE_EINVAL, "document \"%s\": already rolled back",
                            w->name);
        goto out;
    }
    sqlite3_finalize(w->st_chunk);
    sqlite3_finalize(w->st_vec);
    w->st_chunk = w->st_vec = NULL;
    int src = store__exec_write(w->s, "COMMIT");
    if (src != SQLITE_OK) {
        rc = writer_sql_fail(w, src, "committing a document", err);
        goto out;
    }
    w->open = false;
    vecset *vs = &w->c->vs;
    if (w->existing)
        vecset_remove_groups(vs, &w->doc_id, 1);
    vecset_regroup(vs, PENDING_GROUP, w->doc_id);
    if (w->any_chunk_metadata)
        w->c->has_chunk_metadata = 1;
    if (doc_id)
        *doc_id = w->doc_id;
out:
    store_doc_abort(w);
    return rc;
}

static int write_document(store *s, const char *collection,
                          const store_document_in *doc, bool upsert,
                          int64_t *doc_id_out, lode_error *err)
{
    if (doc->n_chunks && !doc->chunks)
        return lode_error_set(err, LODE_EINVAL, "document \"%s\": no chunk array", doc_name(doc));
    store_doc_writer *w;
    int rc = store_doc_begin(s, collection, doc, upsert, &w, err);
    if (rc)
        return rc;
    if ((rc = store_doc_add_chunks(w, doc->chunks, doc->n_chunks, err))) {
        store_doc_abort(w);
        return rc;
    }
    return store_doc_commit(w, doc_id_out, err);
}

int store_add_document(store *s, const char *collection,
                       const store_document_in *doc, int64_t *doc_id,
                       lode_error *err)
{
    return write_document(s, collection, doc, false, doc_id, err);
}

int store_upsert_document(store *s, const char *collection,
                          const store_document_in *doc, int64_t *doc_id,
                          lode_error *err)
{
    return write_document(s, collection, doc, true, doc_id, err);
}

/* Delete documents (ids sorted ascending) in one transaction, then drop
 * their rows from the collection's array. */
static int delete_documents(store *s, coll *c, const int64_t *ids, size_t n,
                            lode_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    int src = store__exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    if ((rc = store__prepare(s, "DELETE FROM documents WHERE id = ?", &st, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        if ((src = store__step_write(s, st)) != SQLITE_DONE)
            goto sql_fail;
    }
    if ((src = store__exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;
    sqlite3_finalize(st);
    vecset_remove_groups(&c->vs, ids, n);
    return 0;

sql_fail:
    rc = store__sql_error(s, src, "deleting documents", err);
fail:
    sqlite3_finalize(st);
    store__rollback(s);
    append_note(err, "; nothing was deleted");
    return rc;
}

int store_delete_document(store *s, int64_t doc_id, lode_error *err)
{
    int rc = store__refresh(s, err);
    if (rc || (rc = need_writable(s, "delete a document", err)))
        return rc;
    sqlite3_stmt *st;
    if ((rc = store__prepare(s, "SELECT collection_id FROM documents WHERE id = ?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, doc_id);
    int src = sqlite3_step(st);
    int64_t cid = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return store__sql_error(s, src, "looking up a document", err);
    coll *c = NULL;
    for (size_t i = 0; i < s->n_colls && !c; i++)
        if (s->colls[i]->id == cid)
            c = s->colls[i];
    if (!c)
        return lode_error_set(err, LODE_ENOTFOUND, "there is no document with id %lld",
                              (long long)doc_id);
    return delete_documents(s, c, &doc_id, 1, err);
}

int store_delete_where(store *s, const char *collection, const char *where_json,
                       int64_t *n_deleted, lode_error *err)
{
    if (n_deleted)
        *n_deleted = 0;
    coll *c;
    int rc = store__need_coll(s, collection, &c, err);
    if (rc || (rc = need_writable(s, "delete documents", err)))
        return rc;
    filter *f;
    if ((rc = filter_parse(where_json, &f, err)))
        return rc;
    if (filter_is_empty(f)) {
        filter_free(f);
        return lode_error_set(err, LODE_EINVAL, "refusing to delete by an empty "
                              "filter (it would match every document); delete the "
                              "collection instead");
    }
    doc_rec *docs;
    size_t n_docs;
    rc = store__load_doc_recs(s, c, f, &docs, &n_docs, err);
    filter_free(f);
    if (rc)
        return rc;
    int64_t *ids = malloc((n_docs ? n_docs : 1) * sizeof *ids);
    size_t n = 0;
    if (!ids) {
        store__doc_recs_free(docs, n_docs);
        return lode_error_set(err, LODE_ENOMEM, "out of memory deleting documents");
    }
    for (size_t i = 0; i < n_docs; i++)
        if (docs[i].match)
            ids[n++] = docs[i].id;          /* already sorted by id */
    store__doc_recs_free(docs, n_docs);
    if (n)
        rc = delete_documents(s, c, ids, n, err);
    free(ids);
    if (!rc && n_deleted)
        *n_deleted = (int64_t)n;
    return rc;
}

/* ---- vacuum ----------------------------------------------------------- */

int store_vacuum(store *s, lode_error *err)
{
    int rc = need_writable(s, "vacuum", err);
    if (rc)
        return rc;
    /* Merge the keyword index's segments into one first: fewer b-trees
     * for every keyword search to visit, and VACUUM then reclaims the
     * pages the merge freed. */
    int src = store__exec_write(s, "INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')");
    if (src != SQLITE_OK)
        return store__sql_error(s, src, "optimizing the keyword index", err);
    src = store__exec_write(s, "VACUUM");
    if (src != SQLITE_OK)
        return store__sql_error(s, src, "vacuuming", err);
    src = sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return store__sql_error(s, src, "checkpointing after vacuum", err);
    return 0;
}
