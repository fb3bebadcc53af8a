/* store_read.c - the reads of the store other than search (which is
 * store_search.c): listing collections, reading and finding documents,
 * listing sources and stats (see store.h for the contract).
 *
 * Each call first catches up with writes made by other connections
 * (store__refresh), so the in-memory collections match the file.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- collections ------------------------------------------------------ */

void store_collections_free(store_collection_info *infos, size_t n)
{
    if (!infos)
        return;
    for (size_t i = 0; i < n; i++) {
        free(infos[i].name);
        free(infos[i].model_id);
    }
    free(infos);
}

int store_list_collections(store *s, store_collection_info **out, size_t *n,
                           lode_error *err)
{
    *out = NULL;
    *n = 0;
    int rc = store__refresh(s, err);
    if (rc)
        return rc;
    store_collection_info *infos = calloc(s->n_colls + 1, sizeof *infos);
    if (!infos)
        return lode_error_set(err, LODE_ENOMEM, "out of memory listing collections");
    sqlite3_stmt *st;
    if ((rc = store__prepare(s, "SELECT count(*) FROM documents WHERE collection_id = ?",
                             &st, err))) {
        free(infos);
        return rc;
    }
    size_t count = 0;
    for (size_t i = 0; i < s->n_colls; i++) {
        const coll *c = s->colls[i];
        store_collection_info *info = &infos[count++];
        info->name = strdup(c->name);
        info->model_id = strdup(c->model_id);
        info->dimension = c->dimension;
        info->distance = c->distance;
        info->created = c->created;
        info->chunks = (int64_t)c->vs.count;
        sqlite3_bind_int64(st, 1, c->id);
        int src = sqlite3_step(st);
        info->documents = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (src != SQLITE_ROW) {
            rc = store__sql_error(s, src, "counting documents", err);
            break;
        }
        if (!info->name || !info->model_id) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing collections");
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc) {
        store_collections_free(infos, count);
        return rc;
    }
    /* By name, for stable output. */
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && strcmp(infos[j - 1].name, infos[j].name) > 0; j--) {
            store_collection_info t = infos[j];
            infos[j] = infos[j - 1];
            infos[j - 1] = t;
        }
    *out = infos;
    *n = count;
    return 0;
}

/* ---- reading documents ------------------------------------------------ */

void store_document_free(store_document *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n_chunks; i++) {
        free(doc->chunks[i].text);
        free(doc->chunks[i].heading);
        free(doc->chunks[i].metadata_json);
    }
    free(doc->chunks);
    free(doc->collection);
    free(doc->source);
    free(doc->external_id);
    free(doc->title);
    free(doc->metadata_json);
    free(doc->content_sha256);
    free(doc);
}

int store_get_document(store *s, int64_t doc_id, store_document **out, lode_error *err)
{
    *out = NULL;
    store_document *doc = calloc(1, sizeof *doc);
    if (!doc)
        return lode_error_set(err, LODE_ENOMEM, "out of memory reading a document");
    sqlite3_stmt *st;
    int rc = store__prepare(s, "SELECT c.name, d.source, d.external_id, d.title, d.metadata, "
                               "d.content_sha256, d.created, d.updated FROM documents d "
                               "JOIN collections c ON c.id = d.collection_id WHERE d.id = ?",
                            &st, err);
    if (rc) {
        free(doc);
        return rc;
    }
    sqlite3_bind_int64(st, 1, doc_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        doc->id = doc_id;
        doc->created = sqlite3_column_int64(st, 6);
        doc->updated = sqlite3_column_int64(st, 7);
        if (store__col_dup(st, 0, &doc->collection) || store__col_dup(st, 1, &doc->source) ||
            store__col_dup(st, 2, &doc->external_id) || store__col_dup(st, 3, &doc->title) ||
            store__col_dup(st, 4, &doc->metadata_json) ||
            store__col_dup(st, 5, &doc->content_sha256))
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading a document");
    } else if (src == SQLITE_DONE) {
        rc = lode_error_set(err, LODE_ENOTFOUND, "there is no document with id %lld",
                            (long long)doc_id);
    } else {
        rc = store__sql_error(s, src, "reading a document", err);
    }
    sqlite3_finalize(st);
    if (rc)
        goto fail;

    if ((rc = store__prepare(s, store__has_pages(s)
                                ? "SELECT id, ordinal, text, char_start, char_end, token_count, "
                                  "heading, metadata, page_start, page_end FROM chunks "
                                  "WHERE document_id = ? ORDER BY ordinal"
                                : "SELECT id, ordinal, text, char_start, char_end, token_count, "
                                  "heading, metadata, NULL, NULL FROM chunks "
                                  "WHERE document_id = ? ORDER BY ordinal", &st, err)))
        goto fail;
    sqlite3_bind_int64(st, 1, doc_id);
    size_t cap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (doc->n_chunks == cap) {
            cap = cap ? 2 * cap : 16;
            store_chunk *grown = realloc(doc->chunks, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            doc->chunks = grown;
        }
        store_chunk *ch = &doc->chunks[doc->n_chunks++];
        memset(ch, 0, sizeof *ch);
        ch->id = sqlite3_column_int64(st, 0);
        ch->ordinal = sqlite3_column_int(st, 1);
        ch->char_start = sqlite3_column_int64(st, 3);
        ch->char_end = sqlite3_column_int64(st, 4);
        ch->token_count = sqlite3_column_int(st, 5);
        ch->page_start = sqlite3_column_int(st, 8);
        ch->page_end = sqlite3_column_int(st, 9);
        if (store__col_dup(st, 2, &ch->text) || store__col_dup(st, 6, &ch->heading) ||
            store__col_dup(st, 7, &ch->metadata_json)) {
            rc = LODE_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading a document");
    else if (src != SQLITE_DONE)
        rc = store__sql_error(s, src, "reading a document's chunks", err);
    if (rc)
        goto fail;
    *out = doc;
    return 0;
fail:
    store_document_free(doc);
    return rc;
}

int store_find_document(store *s, const char *collection, const char *source,
                        const char *external_id, int64_t *doc_id,
                        char sha256[65], lode_error *err)
{
    *doc_id = 0;
    if (sha256)
        sha256[0] = '\0';
    coll *c;
    int rc = store__need_coll(s, collection, &c, err);
    if (rc)
        return rc;
    if (!source && !external_id)
        return lode_error_set(err, LODE_EINVAL, "finding a document needs a source "
                              "or an external id");
    char *sha = NULL;
    if ((rc = store__find_doc_id(s, c->id, source, external_id, doc_id, &sha, err)))
        return rc;
    if (!*doc_id)
        return lode_error_set(err, LODE_ENOTFOUND, "collection \"%s\" has no "
                              "document with %s \"%s\"", c->name,
                              external_id ? "external id" : "source",
                              external_id ? external_id : source);
    if (sha256 && sha)
        snprintf(sha256, 65, "%s", sha);
    free(sha);
    return 0;
}

void store_strings_free(char **strings, size_t n)
{
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

int store_list_sources(store *s, const char *collection, char ***sources,
                       size_t *n_out, lode_error *err)
{
    *sources = NULL;
    *n_out = 0;
    coll *c;
    int rc = store__need_coll(s, collection, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = store__prepare(s, "SELECT source FROM documents WHERE collection_id = ? AND "
                                "source IS NOT NULL ORDER BY source", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    char **list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            list = grown;
        }
        if (store__col_dup(st, 0, &list[n]) || !list[n]) {
            rc = LODE_ENOMEM;
            break;
        }
        n++;
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing sources");
    else if (src != SQLITE_DONE)
        rc = store__sql_error(s, src, "listing sources", err);
    if (rc) {
        store_strings_free(list, n);
        return rc;
    }
    *sources = list;
    *n_out = n;
    return 0;
}

/* ---- stats ------------------------------------------------------------ */

int store_get_stats(store *s, const char *collection, store_stats *out,
                    lode_error *err)
{
    memset(out, 0, sizeof *out);
    coll *only = NULL;   /* store__need_coll refreshes, else we do */
    int rc = collection ? store__need_coll(s, collection, &only, err)
                        : store__refresh(s, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = store__prepare(s, "SELECT count(*) FROM documents WHERE ?1 IS NULL OR "
                                "collection_id = ?1", &st, err)))
        return rc;
    if (only)
        sqlite3_bind_int64(st, 1, only->id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        out->documents = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (src != SQLITE_ROW)
        return store__sql_error(s, src, "counting documents", err);
    for (size_t i = 0; i < s->n_colls; i++) {
        if (only && s->colls[i] != only)
            continue;
        out->collections++;
        out->chunks += (int64_t)s->colls[i]->vs.count;
        out->bytes_in_memory += (int64_t)vecset_bytes(&s->colls[i]->vs);
    }
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    off_t main_size = store__file_size(s->path), wal_size = store__file_size(wal);
    out->bytes_on_disk = (main_size > 0 ? main_size : 0) + (wal_size > 0 ? wal_size : 0);
    return 0;
}

/* ---- listing documents ------------------------------------------------ */

void store_document_infos_free(store_document_info *docs, size_t n)
{
    if (!docs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(docs[i].source);
        free(docs[i].external_id);
        free(docs[i].title);
    }
    free(docs);
}

int store_list_documents(store *s, const char *collection, size_t offset,
                         size_t limit, store_document_info **out, size_t *n_out,
                         int64_t *total, lode_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (total)
        *total = 0;
    coll *c;
    int rc = store__need_coll(s, collection, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if (total) {
        if ((rc = store__prepare(s, "SELECT count(*) FROM documents WHERE collection_id = ?",
                                 &st, err)))
            return rc;
        sqlite3_bind_int64(st, 1, c->id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *total = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (src != SQLITE_ROW)
            return store__sql_error(s, src, "counting documents", err);
    }
    if ((rc = store__prepare(s, "SELECT d.id, d.source, d.external_id, d.title, d.created, "
                                "d.updated, (SELECT count(*) FROM chunks k WHERE "
                                "k.document_id = d.id) FROM documents d WHERE "
                                "d.collection_id = ? ORDER BY d.id LIMIT ? OFFSET ?",
                             &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    sqlite3_bind_int64(st, 3, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
    store_document_info *list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            store_document_info *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            list = grown;
        }
        store_document_info *d = &list[n++];
        memset(d, 0, sizeof *d);
        d->id = sqlite3_column_int64(st, 0);
        d->created = sqlite3_column_int64(st, 4);
        d->updated = sqlite3_column_int64(st, 5);
        d->chunks = sqlite3_column_int64(st, 6);
        if (store__col_dup(st, 1, &d->source) || store__col_dup(st, 2, &d->external_id) ||
            store__col_dup(st, 3, &d->title)) {
            rc = LODE_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing documents");
    else if (src != SQLITE_DONE)
        rc = store__sql_error(s, src, "listing documents", err);
    if (rc) {
        store_document_infos_free(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return 0;
}
