/* store.c - the SQLite-backed vector store (see store.h): opening, the
 * schema and its migrations, loading the vectors into memory, and the
 * helpers the other store files share through store_int.h.
 *
 * The store is split by what a call does to the file: store.c opens it and
 * keeps the in-memory collections in step with it; store_write.c holds
 * every write (collections, documents, vacuum); store_search.c search in
 * its three modes, with store_keyword.c for the keyword index;
 * store_read.c every other read (documents, listings, stats);
 * store_filter.c evaluates "where" filters for search and for
 * delete-by-filter.
 *
 * Two copies of every vector: the durable one, a little-endian float32 BLOB
 * in the `vectors` table, and the working one in a vecset (one contiguous
 * array per collection) that search scans.  The arrays are filled at open
 * with one sequential SELECT over `vectors` (which is kept apart from the
 * chunk text so that scan reads vectors only), and every write updates them
 * after its transaction has committed: room in the arrays is reserved
 * before COMMIT, so the update that follows cannot fail, and a transaction
 * that fails leaves them exactly as they were.
 *
 * All SQLite write steps go through store__step_write() and
 * store__exec_write(), which is also where tests inject a "disk full"
 * failure at the Nth write.
 *
 * Schema, version 1 (PRAGMA user_version; application_id 'lode'):
 *   collections(id, name UNIQUE, model_id, dimension, distance, created)
 *   documents(id, collection_id -> collections ON DELETE CASCADE, source,
 *             external_id, title, metadata JSON, content_sha256, created,
 *             updated; UNIQUE(collection_id, source),
 *             UNIQUE(collection_id, external_id))
 *   chunks(id, document_id -> documents ON DELETE CASCADE, ordinal,
 *          char_start, char_end, token_count, heading, metadata JSON, text;
 *          UNIQUE(document_id, ordinal)); index chunks_filter covers
 *          (document_id, heading, metadata) so filtering never reads text.
 *   vectors(chunk_id -> chunks ON DELETE CASCADE, collection_id,
 *           document_id, vector BLOB = dimension float32 little-endian);
 *          collection and document ids are copied here so loading needs
 *          no join.
 * Version 2 adds the keyword index:
 *   chunks_fts    FTS5 over (text, title, heading, collection), rowid = the
 *                 chunk id, tokenizer unicode61 with diacritics folded
 *                 (remove_diacritics 2), so "cafe" finds "café";
 *   chunks_fts_content  the view it indexes: each chunk's text and heading
 *                 with its document's title and collection id.
 * It is an external-content table over that view, kept by triggers on
 * chunks and documents.  External content, because a second copy of
 * every chunk's text (a plain FTS5 table) would double the text on disk
 * for nothing, and a contentless table cannot delete rows on the SQLite
 * of Debian 12 (3.40; contentless_delete came in 3.43).  Triggers,
 * because then every statement that changes a chunk or a title updates
 * the index in its own transaction, whichever code path runs it
 * (document upsert, delete by filter, the cascade of a collection
 * delete): the index cannot disagree with the chunks, even after a
 * crash.  An external-content delete must be given the values that were
 * indexed, hence the BEFORE triggers, and the delete of a document
 * removes its chunks' entries itself: by the time its cascade deletes
 * the chunks, the document row (their title) is gone, so the chunk
 * trigger finds nothing.  The collection id is indexed as a token of its
 * own column, so a search restricted to one collection is one FTS5 AND
 * (queries name the other columns explicitly, and give it weight 0).
 * The migration fills the index from the chunks already stored.
 * Timestamps are unix seconds.  All tables have INTEGER PRIMARY KEYs, so
 * VACUUM keeps chunk ids (which the in-memory arrays refer to) stable.
 * Later migrations (each one entry of migrations[], applied in order):
 *   pages   chunks gain page_start, page_end (INTEGER, NULL = unknown).
 * Newer schemas are added as further entries of migrations[]; a file whose
 * user_version is above the last entry is refused.
 *
 * Durability: WAL journal with synchronous=NORMAL - a power cut can lose
 * the last few commits but never leaves a half-written document.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define LODE_APPLICATION_ID 0x6C6F6465 /* "lode" */

static const char *const migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE collections ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  model_id TEXT NOT NULL,"
    "  dimension INTEGER NOT NULL CHECK (dimension > 0),"
    "  distance TEXT NOT NULL CHECK (distance IN ('cosine', 'dot', 'l2')),"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE documents ("
    "  id INTEGER PRIMARY KEY,"
    "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
    "  source TEXT,"
    "  external_id TEXT,"
    "  title TEXT,"
    "  metadata TEXT,"
    "  content_sha256 TEXT,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (collection_id, source),"
    "  UNIQUE (collection_id, external_id));"
    "CREATE TABLE chunks ("
    "  id INTEGER PRIMARY KEY,"
    "  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  ordinal INTEGER NOT NULL,"
    "  char_start INTEGER NOT NULL,"
    "  char_end INTEGER NOT NULL,"
    "  token_count INTEGER NOT NULL,"
    "  heading TEXT,"
    "  metadata TEXT,"
    "  text TEXT NOT NULL,"
    "  UNIQUE (document_id, ordinal));"
    "CREATE INDEX chunks_filter ON chunks(document_id, heading, metadata);"
    "CREATE TABLE vectors ("
    "  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
    "  collection_id INTEGER NOT NULL,"
    "  document_id INTEGER NOT NULL,"
    "  vector BLOB NOT NULL);"
    "CREATE INDEX vectors_by_collection ON vectors(collection_id);"
    "PRAGMA application_id = 1819239525;", /* LODE_APPLICATION_ID */

    /* 2: the keyword index (see version 2 above), filled from the
     * chunks already stored */
    "CREATE VIEW chunks_fts_content AS"
    "  SELECT c.id AS id, c.text AS text, d.title AS title, c.heading AS heading,"
    "         d.collection_id AS collection"
    "  FROM chunks c JOIN documents d ON d.id = c.document_id;"
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, heading, collection,"
    "  content = 'chunks_fts_content', content_rowid = 'id',"
    "  tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts (rowid, text, title, heading, collection)"
    "    SELECT new.id, new.text, d.title, new.heading, d.collection_id"
    "    FROM documents d WHERE d.id = new.document_id;"
    "END;"
    /* Finds nothing when the chunk goes with its document (the document
     * row is gone by then); documents_fts_delete removed it already. */
    "CREATE TRIGGER chunks_fts_delete BEFORE DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts (chunks_fts, rowid, text, title, heading, collection)"
    "    SELECT 'delete', old.id, old.text, d.title, old.heading, d.collection_id"
    "    FROM documents d WHERE d.id = old.document_id;"
    "END;"
    "CREATE TRIGGER chunks_fts_update_old BEFORE UPDATE OF text, heading, document_id"
    "  ON chunks BEGIN"
    "  INSERT INTO chunks_fts (chunks_fts, rowid, text, title, heading, collection)"
    "    SELECT 'delete', old.id, old.text, d.title, old.heading, d.collection_id"
    "    FROM documents d WHERE d.id = old.document_id;"
    "END;"
    "CREATE TRIGGER chunks_fts_update_new AFTER UPDATE OF text, heading, document_id"
    "  ON chunks BEGIN"
    "  INSERT INTO chunks_fts (rowid, text, title, heading, collection)"
    "    SELECT new.id, new.text, d.title, new.heading, d.collection_id"
    "    FROM documents d WHERE d.id = new.document_id;"
    "END;"
    "CREATE TRIGGER documents_fts_delete BEFORE DELETE ON documents BEGIN"
    "  INSERT INTO chunks_fts (chunks_fts, rowid, text, title, heading, collection)"
    "    SELECT 'delete', c.id, c.text, old.title, c.heading, old.collection_id"
    "    FROM chunks c WHERE c.document_id = old.id;"
    "END;"
    "CREATE TRIGGER documents_fts_update_old BEFORE UPDATE OF title, collection_id"
    "  ON documents WHEN old.title IS NOT new.title"
    "  OR old.collection_id IS NOT new.collection_id BEGIN"
    "  INSERT INTO chunks_fts (chunks_fts, rowid, text, title, heading, collection)"
    "    SELECT 'delete', c.id, c.text, old.title, c.heading, old.collection_id"
    "    FROM chunks c WHERE c.document_id = old.id;"
    "END;"
    "CREATE TRIGGER documents_fts_update_new AFTER UPDATE OF title, collection_id"
    "  ON documents WHEN old.title IS NOT new.title"
    "  OR old.collection_id IS NOT new.collection_id BEGIN"
    "  INSERT INTO chunks_fts (rowid, text, title, heading, collection)"
    "    SELECT c.id, c.text, new.title, c.heading, new.collection_id"
    "    FROM chunks c WHERE c.document_id = new.id;"
    "END;"
    "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild');",

    /* 3, pages: the 1-based pages of a paged source (PDF) a chunk spans,
     * NULL when the format has no pages (or for chunks stored before). */
    "ALTER TABLE chunks ADD COLUMN page_start INTEGER;"
    "ALTER TABLE chunks ADD COLUMN page_end INTEGER;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
#define STORE__PAGES_VERSION 3   /* the migration that added chunk pages */

const char *const store__distance_names[] = {"cosine", "dot", "l2"};

const char *store_distance_name(store_distance d)
{
    return d >= STORE_COSINE && d <= STORE_L2 ? store__distance_names[d]
                                              : "cosine";
}

/* ---- SQLite helpers --------------------------------------------------- */

/* Turn a SQLite failure into a lode error with a sentence for the user. */
int store__sql_error(store *s, int rc, const char *doing, lode_error *err)
{
    const char *msg = s->fault_fired ? "simulated disk full" : sqlite3_errmsg(s->db);
    int sys = s->fault_fired ? 0 : sqlite3_system_errno(s->db);
    s->fault_fired = false;
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return lode_error_set(err, LODE_EIO, "%s: %s: the disk is full (%s)",
                              s->path, doing, msg);
    case SQLITE_IOERR:
        return lode_error_set(err, LODE_EIO, "%s: %s: reading or writing the "
                              "file failed (%s%s%s) - is the disk full or a "
                              "file size limit reached?", s->path, doing, msg,
                              sys ? ": " : "", sys ? strerror(sys) : "");
    case SQLITE_READONLY:
        return lode_error_set(err, LODE_EIO, "%s: %s: the database is read-only",
                              s->path, doing);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return lode_error_set(err, LODE_EBUSY, "%s: %s: the database is locked "
                              "by another process", s->path, doing);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return lode_error_set(err, LODE_EFORMAT, "%s: %s: the database file is "
                              "damaged (%s)", s->path, doing, msg);
    case SQLITE_NOMEM:
        return lode_error_set(err, LODE_ENOMEM, "%s: %s: out of memory", s->path, doing);
    case SQLITE_CANTOPEN:
        return lode_error_set(err, LODE_EIO, "%s: %s: cannot open the database "
                              "or its journal (%s)", s->path, doing, msg);
    default:
        return lode_error_set(err, LODE_EIO, "%s: %s: %s", s->path, doing, msg);
    }
}

static bool fault_due(store *s)
{
    if (s->fail_countdown > 0 && --s->fail_countdown == 0) {
        s->fault_fired = true;
        return true;
    }
    return false;
}

/* Every statement that changes the file goes through one of these two. */
int store__step_write(store *s, sqlite3_stmt *st)
{
    if (fault_due(s))
        return SQLITE_FULL;
    return sqlite3_step(st);
}

int store__exec_write(store *s, const char *sql)
{
    if (fault_due(s))
        return SQLITE_FULL;
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* FTS5 keeps the keyword index's totals (rows, tokens per column: the
 * statistics BM25 ranks with) in memory.  When a write fails inside the
 * FTS5 trigger of a chunk (out of memory, an I/O error) and SQLite rolls
 * the statement or the transaction back itself, SQLite 3.40's FTS5 can
 * keep the totals as the failed statement left them: every later keyword
 * search on this connection then scored 0 or failed, while a fresh
 * connection was fine (tests/test_faults.c).  FTS5 reads them again at
 * the start of its next write transaction, so a write transaction that
 * touches chunks_fts, deletes nothing and is rolled back puts them
 * right.  Should that fail too, fts_stale says so and keyword search
 * tries again before it ranks anything. */
static int fts_reset(store *s)
{
    if (!s->fts_stale)
        return SQLITE_OK;
    int rc = sqlite3_exec(s->db, "BEGIN; DELETE FROM chunks_fts WHERE rowid = -1; ROLLBACK",
                          NULL, NULL, NULL);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == SQLITE_OK && sqlite3_get_autocommit(s->db))
        s->fts_stale = false;
    return rc;
}

void store__rollback(store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (s->schema_version >= 2 && !s->read_only) {
        s->fts_stale = true;
        fts_reset(s);
    }
}

int store__fts_fresh(store *s, lode_error *err)
{
    if (!s->fts_stale)
        return 0;
    int rc = fts_reset(s);
    if (!s->fts_stale)
        return 0;
    return store__sql_error(s, rc ? rc : SQLITE_ERROR,
                            "refreshing the keyword index after a failed write", err);
}

int store__prepare(store *s, const char *sql, sqlite3_stmt **st, lode_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return store__sql_error(s, rc, "preparing a query", err);
    }
    return 0;
}

/* Statements the searches run for every query are kept prepared: parsing
 * and planning them again cost about a tenth of a keyword search at 10k
 * chunks.  A statement taken from the cache is out of it until put back,
 * so two users never share one. */
int store__prepare_cached(store *s, const char *sql, sqlite3_stmt **st,
                          lode_error *err)
{
    for (int i = 0; i < s->n_cached; i++)
        if (strcmp(sqlite3_sql(s->cached[i]), sql) == 0) {
            *st = s->cached[i];
            s->cached[i] = s->cached[--s->n_cached];
            return 0;
        }
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return store__sql_error(s, rc, "preparing a query", err);
    }
    return 0;
}

void store__release(store *s, sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s->n_cached == STORE_STMT_CACHE) {   /* drop the oldest */
        sqlite3_finalize(s->cached[0]);
        memmove(s->cached, s->cached + 1, (STORE_STMT_CACHE - 1) * sizeof *s->cached);
        s->n_cached--;
    }
    s->cached[s->n_cached++] = st;
}

void store__bind_text(sqlite3_stmt *st, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Copy a text column; NULL stays NULL.  LODE_ENOMEM on failure. */
int store__col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (!t)
        return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? LODE_ENOMEM : 0;
    *out = strdup((const char *)t);
    return *out ? 0 : LODE_ENOMEM;
}

static int64_t query_int(store *s, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st;
    int64_t v = fallback;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fallback;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Floats <-> little-endian bytes.  On little-endian hosts a plain copy. */
void store__floats_to_le(const float *v, int n, unsigned char *out)
{
    if (host_is_little_endian()) {
        memcpy(out, v, (size_t)n * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
}

static void floats_from_le(const unsigned char *in, int n, float *v)
{
    if (host_is_little_endian()) {
        memcpy(v, in, (size_t)n * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8 |
                     (uint32_t)in[4 * i + 2] << 16 | (uint32_t)in[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
}

/* ---- collections in memory -------------------------------------------- */

void store__coll_free(coll *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->model_id);
    vecset_free(&c->vs);
    free(c);
}

static void colls_clear(store *s)
{
    for (size_t i = 0; i < s->n_colls; i++)
        store__coll_free(s->colls[i]);
    free(s->colls);
    s->colls = NULL;
    s->n_colls = 0;
}

coll *store__find_coll(store *s, const char *name)
{
    for (size_t i = 0; i < s->n_colls; i++)
        if (strcmp(s->colls[i]->name, name) == 0)
            return s->colls[i];
    return NULL;
}

static vecset_metric metric_of(store_distance d)
{
    return d == STORE_DOT ? VECSET_DOT : d == STORE_L2 ? VECSET_L2 : VECSET_COSINE;
}

coll *store__coll_new(store *s, int64_t id, const char *name, const char *model,
                      int dim, store_distance dist, int64_t created)
{
    coll *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = id;
    c->name = strdup(name);
    c->model_id = strdup(model);
    c->dimension = dim;
    c->distance = dist;
    c->created = created;
    c->has_chunk_metadata = -1;
    vecset_init(&c->vs, dim, s->int8_vectors ? VECSET_I8 : VECSET_F32, metric_of(dist));
    if (!c->name || !c->model_id) {
        store__coll_free(c);
        return NULL;
    }
    return c;
}

/* Read every collection and all vectors: one pass over `vectors`. */
static int load_all(store *s, lode_error *err)
{
    colls_clear(s);
    s->data_version = query_int(s, "PRAGMA data_version", 0);
    if (query_int(s, "SELECT count(*) FROM sqlite_schema WHERE name = 'collections'", 0) == 0)
        return 0;       /* read-only view of a database without a schema */

    sqlite3_stmt *st = NULL;
    int rc = store__prepare(s, "SELECT id, name, model_id, dimension, distance, created "
                               "FROM collections ORDER BY id", &st, err);
    if (rc)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *dist = (const char *)sqlite3_column_text(st, 4);
        store_distance d = STORE_COSINE;
        for (int i = 0; i < 3; i++)
            if (dist && strcmp(dist, store__distance_names[i]) == 0)
                d = (store_distance)i;
        int dim = sqlite3_column_int(st, 3);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *model = (const char *)sqlite3_column_text(st, 2);
        if (!name || !model || dim <= 0 || dim > STORE_MAX_DIMENSION) {
            sqlite3_finalize(st);
            return lode_error_set(err, LODE_EFORMAT, "%s: a collection record is "
                                  "damaged (dimension %d)", s->path, dim);
        }
        coll **grown = realloc(s->colls, (s->n_colls + 1) * sizeof *grown);
        coll *c = grown ? store__coll_new(s, sqlite3_column_int64(st, 0), name, model, dim, d,
                                          sqlite3_column_int64(st, 5)) : NULL;
        if (grown)
            s->colls = grown;
        if (!c) {
            sqlite3_finalize(st);
            return lode_error_set(err, LODE_ENOMEM, "out of memory loading collections");
        }
        s->colls[s->n_colls++] = c;
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return store__sql_error(s, src, "reading the collections", err);

    /* Size each array exactly, then fill them all in one scan. */
    rc = store__prepare(s, "SELECT collection_id, count(*) FROM vectors GROUP BY collection_id",
                        &st, err);
    if (rc)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < s->n_colls; i++)
            if (s->colls[i]->id == cid &&
                (rc = vecset_reserve(&s->colls[i]->vs, (size_t)sqlite3_column_int64(st, 1), err))) {
                sqlite3_finalize(st);
                return rc;
            }
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return store__sql_error(s, src, "counting the vectors", err);

    rc = store__prepare(s, "SELECT collection_id, chunk_id, document_id, vector FROM vectors",
                        &st, err);
    if (rc)
        return rc;
    float *buf = NULL;
    int buf_dim = 0;
    coll *c = NULL;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(st, 0);
        if (!c || c->id != cid) {
            c = NULL;
            for (size_t i = 0; i < s->n_colls && !c; i++)
                if (s->colls[i]->id == cid)
                    c = s->colls[i];
            if (!c)
                continue;       /* orphan row; nothing refers to it */
        }
        const void *blob = sqlite3_column_blob(st, 3);
        int bytes = sqlite3_column_bytes(st, 3);
        if (bytes != c->dimension * 4 || !blob) {
            rc = lode_error_set(err, LODE_EFORMAT, "%s: the vector of chunk %lld "
                                "has %d bytes; collection \"%s\" needs %d",
                                s->path, (long long)sqlite3_column_int64(st, 1),
                                bytes, c->name, c->dimension * 4);
            break;
        }
        if (buf_dim < c->dimension) {
            float *nb = realloc(buf, (size_t)c->dimension * sizeof *nb);
            if (!nb) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory loading vectors");
                break;
            }
            buf = nb;
            buf_dim = c->dimension;
        }
        floats_from_le(blob, c->dimension, buf);
        rc = vecset_append(&c->vs, sqlite3_column_int64(st, 1),
                           sqlite3_column_int64(st, 2), buf, err);
        if (rc)
            break;
    }
    free(buf);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (src != SQLITE_DONE)
        return store__sql_error(s, src, "loading the vectors", err);
    return 0;
}

/* Reload when another connection has committed since we last loaded. */
int store__refresh(store *s, lode_error *err)
{
    int64_t v = query_int(s, "PRAGMA data_version", s->data_version);
    if (v == s->data_version)
        return 0;
    return load_all(s, err);
}

int store__need_coll(store *s, const char *name, coll **out, lode_error *err)
{
    int rc = store__refresh(s, err);
    if (rc)
        return rc;
    *out = name ? store__find_coll(s, name) : NULL;
    if (!*out)
        return lode_error_set(err, LODE_ENOTFOUND, "there is no collection named "
                              "\"%s\"", name ? name : "(null)");
    return 0;
}

/* A collection accepts only vectors of its own model and dimension. */
int store__check_model(const coll *c, const char *model_id, int dimension,
                       const char *doing, lode_error *err)
{
    if (!model_id || strcmp(model_id, c->model_id) != 0 || dimension != c->dimension)
        return lode_error_set(err, LODE_EINVAL, "cannot %s collection \"%s\" with "
                              "model \"%s\" (%d dimensions): the collection was "
                              "embedded with model \"%s\" (%d dimensions); "
                              "re-index it or use the same model", doing, c->name,
                              model_id ? model_id : "(none)", dimension,
                              c->model_id, c->dimension);
    return 0;
}

/* ---- looking up documents --------------------------------------------- */

/* Find a document of the collection by external id, else by source. */
int store__find_doc_id(store *s, int64_t coll_id, const char *source,
                       const char *external_id, int64_t *id, char **sha,
                       lode_error *err)
{
    *id = 0;
    if (sha)
        *sha = NULL;
    if (!source && !external_id)
        return 0;
    sqlite3_stmt *st;
    int rc = store__prepare(s, external_id
                                   ? "SELECT id, content_sha256 FROM documents WHERE collection_id = ? AND external_id = ?"
                                   : "SELECT id, content_sha256 FROM documents WHERE collection_id = ? AND source = ?",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, coll_id);
    sqlite3_bind_text(st, 2, external_id ? external_id : source, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (sha && store__col_dup(st, 1, sha))
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    } else if (src != SQLITE_DONE) {
        rc = store__sql_error(s, src, "looking up a document", err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- opening ---------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

off_t store__file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Refuse files that are not SQLite, or shorter than their header says,
 * before SQLite sees them.  *exists tells whether there is a file. */
static int check_file(const char *path, bool *exists, lode_error *err)
{
    *exists = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return lode_error_set(err, LODE_EIO, "cannot open the store %s: %s",
                              path, strerror(errno));
    }
    *exists = true;
    unsigned char hdr[100];
    struct stat st;
    ssize_t got = fstat(fd, &st) == 0 ? read(fd, hdr, sizeof hdr) : -1;
    close(fd);
    if (got < 0)
        return lode_error_set(err, LODE_EIO, "cannot read the store %s: %s",
                              path, strerror(errno));
    if (got == 0)
        return 0;       /* an empty file becomes a new store */
    if (got < 16 || memcmp(hdr, "SQLite format 3", 16) != 0)
        return lode_error_set(err, LODE_EFORMAT, "%s is not a lode store: it is "
                              "not an SQLite database", path);
    if (got < 100)
        return lode_error_set(err, LODE_EFORMAT, "%s is truncated: only %zd "
                              "bytes, less than an SQLite header", path, got);
    uint32_t page_size = (uint32_t)hdr[16] << 8 | hdr[17];
    if (page_size == 1)
        page_size = 65536;
    if (page_size < 512 || (page_size & (page_size - 1)))
        return lode_error_set(err, LODE_EFORMAT, "%s is damaged: invalid page "
                              "size %u in its header", path, page_size);
    /* The header's page count is trusted only when its "version valid for"
     * matches the change counter (SQLite file format, section 1.3.7). */
    uint32_t pages = be32(hdr + 28);
    bool count_valid = pages > 0 && be32(hdr + 24) == be32(hdr + 92);
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    bool wal_has_frames = store__file_size(wal) > 32;
    if (!wal_has_frames && count_valid && (uint64_t)st.st_size < (uint64_t)pages * page_size)
        return lode_error_set(err, LODE_EFORMAT, "%s is truncated: its header "
                              "says %llu bytes but the file has %lld", path,
                              (unsigned long long)pages * page_size,
                              (long long)st.st_size);
    if (!wal_has_frames && st.st_size % page_size != 0)
        return lode_error_set(err, LODE_EFORMAT, "%s is truncated: %lld bytes "
                              "is not a whole number of %u-byte pages", path,
                              (long long)st.st_size, page_size);
    return 0;
}

/* "file:" URI for path, percent-encoding anything unusual. */
static char *file_uri(const char *path, const char *query)
{
    size_t n = strlen(path);
    char *uri = malloc(3 * n + strlen(query) + 8);
    if (!uri)
        return NULL;
    char *p = uri;
    p += sprintf(p, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
            (*c >= '0' && *c <= '9') || strchr("/-_.~", *c))
            *p++ = (char)*c;
        else
            p += sprintf(p, "%%%02X", *c);
    }
    sprintf(p, "?%s", query);
    return uri;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int migrate(store *s, lode_error *err)
{
    for (;;) {
        int rc = store__exec_write(s, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
            return store__sql_error(s, rc, "starting the schema upgrade", err);
        /* Re-read inside the write lock: another process may have done it. */
        int version = (int)query_int(s, "PRAGMA user_version", -1);
        if (version < 0) {   /* the read failed (out of memory, I/O) */
            store__rollback(s);
            return lode_error_set(err, LODE_EIO, "%s: cannot read the schema version",
                                  s->path);
        }
        if (version >= SCHEMA_VERSION) {
            store__rollback(s);
            return 0;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if ((rc = store__exec_write(s, migrations[version])) != SQLITE_OK ||
            (rc = store__exec_write(s, sql)) != SQLITE_OK ||
            (rc = store__exec_write(s, "COMMIT")) != SQLITE_OK) {
            store__sql_error(s, rc, "upgrading the schema", err);
            store__rollback(s);
            return err ? err->code : LODE_EIO;
        }
    }
}

/* Is this an SQLite file we may use, and at which schema version? */
static int check_schema(store *s, lode_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    int tables = -1;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            tables = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (tables < 0) {
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
            return lode_error_set(err, LODE_EFORMAT, "%s is not a lode store: %s",
                                  s->path, sqlite3_errmsg(s->db));
        return store__sql_error(s, rc, "reading the schema", err);
    }
    int64_t app = query_int(s, "PRAGMA application_id", 0);
    int64_t version = query_int(s, "PRAGMA user_version", 0);
    if (app != 0 && app != LODE_APPLICATION_ID)
        return lode_error_set(err, LODE_EFORMAT, "%s is an SQLite database of "
                              "another program (application id 0x%llx), not a "
                              "lode store", s->path, (long long)app);
    if (version > SCHEMA_VERSION)
        return lode_error_set(err, LODE_EFORMAT, "%s was written by a newer "
                              "version of lode (schema version %lld; this build "
                              "reads up to %d) - upgrade lode to open it",
                              s->path, (long long)version, SCHEMA_VERSION);
    if (version == 0 && tables > 0)
        return lode_error_set(err, LODE_EFORMAT, "%s is an SQLite database but "
                              "not a lode store (it has tables of its own)", s->path);
    /* An older schema opened read-only stays as it is: what it has can be
     * read, what it lacks (the keyword index of version 2) is refused by
     * the call that needs it (store_is_outdated). */
    s->schema_version = (int)version;
    return 0;
}

int store_open(const char *path, const store_options *opts, store **out,
               lode_error *err)
{
    *out = NULL;
    store_options none = {0};
    if (!opts)
        opts = &none;
    if (!path || !*path)
        return lode_error_set(err, LODE_EINVAL, "no store path given");
    bool exists;
    int rc = check_file(path, &exists, err);
    if (rc)
        return rc;

    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return lode_error_set(err, LODE_ENOMEM, "out of memory opening %s", path);
    }
    s->int8_vectors = opts->int8_vectors;
    char *dir = dir_of(path);
    bool dir_writable = dir && access(dir, W_OK) == 0;
    free(dir);
    if (opts->read_only) {
        s->read_only = true;
        s->read_only_reason = "opened with the read-only option";
    } else if (exists && access(path, W_OK) != 0) {
        s->read_only = true;
        s->read_only_reason = "no write permission on the file";
    } else if (!dir_writable) {
        if (!exists) {
            rc = lode_error_set(err, LODE_EIO, "cannot create the store %s: no "
                                "write permission on its directory", path);
            goto fail;
        }
        s->read_only = true;
        s->read_only_reason = "no write permission on its directory";
    }
    if (s->read_only && !exists) {
        rc = lode_error_set(err, LODE_ENOTFOUND, "the store %s does not exist", path);
        goto fail;
    }

    /* A WAL database needs its -shm file; where it cannot be created (a
     * read-only directory) read the file as immutable instead. */
    char shm[4096];
    snprintf(shm, sizeof shm, "%s-shm", path);
    bool immutable = s->read_only && !dir_writable && store__file_size(shm) < 0;
    char *uri = file_uri(path, s->read_only ? (immutable ? "immutable=1" : "mode=ro") : "mode=rwc");
    if (!uri) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    int flags = SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
                (s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int src = sqlite3_open_v2(uri, &s->db, flags, NULL);
    free(uri);
    if (src != SQLITE_OK) {
        rc = s->db ? store__sql_error(s, src, "opening", err)
                   : lode_error_set(err, LODE_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    /* Failing leaves keyword search to fail with an SQL error that says so. */
    store__keyword_register(s->db);

    if ((rc = check_schema(s, err)))
        goto fail;
    if (!s->read_only) {
        /* journal_mode returns the resulting mode as a row. */
        sqlite3_stmt *st;
        if ((rc = store__prepare(s, "PRAGMA journal_mode = WAL", &st, err)))
            goto fail;
        src = sqlite3_step(st);
        const char *mode = src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        bool wal = mode && strcmp(mode, "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            rc = src == SQLITE_ROW ? lode_error_set(err, LODE_EIO, "%s: cannot switch "
                                                    "the database to WAL mode", path)
                                   : store__sql_error(s, src, "switching to WAL mode", err);
            goto fail;
        }
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        /* Take the write lock only when there is something to upgrade, so
         * opening never waits for another process's ingestion. */
        if (query_int(s, "PRAGMA user_version", 0) < SCHEMA_VERSION &&
            (rc = migrate(s, err)))
            goto fail;
        s->schema_version = SCHEMA_VERSION;
    }
    if ((rc = load_all(s, err)))
        goto fail;
    *out = s;
    return 0;

fail:
    store_close(s);
    return rc;
}

void store_close(store *s)
{
    if (!s)
        return;
    colls_clear(s);
    store__term_cache_free(s);
    for (int i = 0; i < s->n_cached; i++)
        sqlite3_finalize(s->cached[i]);
    if (s->db)
        sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

bool store_is_read_only(const store *s)
{
    return s->read_only;
}

bool store_is_outdated(const store *s)
{
    /* 0: a new file opened read-only has no schema at all */
    return s->schema_version > 0 && s->schema_version < SCHEMA_VERSION;
}

bool store__has_pages(const store *s)
{
    return s->schema_version >= STORE__PAGES_VERSION;
}

int store__need_keyword_index(store *s, lode_error *err)
{
    if (!store_is_outdated(s))
        return 0;
    return lode_error_set(err, LODE_EINVAL, "%s was written by an older lode "
                          "(schema version %d) and has no keyword index yet; "
                          "open it once for writing (lode ingest, lode serve) "
                          "to add it", s->path, s->schema_version);
}

void store_debug_fail_write(store *s, int nth)
{
    s->fail_countdown = nth;
    s->fault_fired = false;
}

/* ---- helpers ---------------------------------------------------------- */

static void digest_hex(const unsigned char *md, unsigned int md_len,
                       int ok, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    if (!ok || md_len != 32) {
        out[0] = '\0';
        return;
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void store_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    int ok = EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL);
    digest_hex(md, md_len, ok, out);
}

void store_sha256_init(store_sha256 *h)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    h->ctx = c;
}

void store_sha256_update(store_sha256 *h, const void *data, size_t len)
{
    if (h->ctx && !EVP_DigestUpdate(h->ctx, data, len)) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
}

void store_sha256_final_hex(store_sha256 *h, char out[65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    int ok = h->ctx && EVP_DigestFinal_ex(h->ctx, md, &md_len);
    digest_hex(md, md_len, ok, out);
    store_sha256_free(h);
}

void store_sha256_free(store_sha256 *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}
