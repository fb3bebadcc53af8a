/* store_int.h - private contract between the store files (store.c,
 * store_write.c, store_read.c, store_filter.c).  Nothing outside the store
 * module includes this header; callers use store.h.
 *
 * It holds the store's internal structures and the helpers more than one
 * store file needs.  Names shared across the files carry the store__
 * prefix; helpers used by one file only stay static there.  The schema
 * is described at the top of store.c, where the migrations create it.
 */
#ifndef LODE_STORE_INT_H
#define LODE_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <sqlite3.h>

#include "filter.h"
#include "keyword.h"
#include "store.h"
#include "vecset.h"

#define STORE_MAX_DIMENSION 65536

/* Names of store_distance values as stored in collections.distance. */
extern const char *const store__distance_names[];

/* A collection as held in memory: its row and its vectors. */
typedef struct coll {
    int64_t id;
    char *name, *model_id;
    int dimension;
    store_distance distance;
    int64_t created;
    int has_chunk_metadata;     /* -1 not yet known, 0, 1 */
    vecset vs;
} coll;

#define STORE_STMT_CACHE 16

struct store {
    sqlite3 *db;
    char *path;
    bool read_only;
    const char *read_only_reason;
    bool int8_vectors;
    coll **colls;
    size_t n_colls;
    int64_t data_version;       /* PRAGMA data_version when last loaded */
    int schema_version;         /* the file's, after any upgrade */
    int fail_countdown;         /* test hook, see store_debug_fail_write */
    bool fault_fired;
    struct store__term_cache *term_cache;  /* store_keyword.c; may be NULL */
    bool fts_stale;             /* FTS5's statistics may be stale (store__rollback) */
    sqlite3_stmt *cached[STORE_STMT_CACHE];  /* store__prepare_cached */
    int n_cached;
};

/* ---- SQLite helpers (store.c) ----------------------------------------- */

/* Turn a SQLite failure into a lode error with a sentence for the user;
 * returns its code. */
int store__sql_error(store *s, int rc, const char *doing, lode_error *err);
/* Every statement that changes the file goes through one of these two
 * (the fault injection of store_debug_fail_write lives there). */
int store__step_write(store *s, sqlite3_stmt *st);
int store__exec_write(store *s, const char *sql);
/* Roll back the open transaction, if any, after a failed write, and have
 * FTS5 read its statistics again (see store.c). */
void store__rollback(store *s);
/* Make FTS5 read its statistics again when a failed write may have left
 * them stale (store__rollback could not); LODE_EIO naming why when that
 * fails too, so that keyword search does not rank with wrong numbers. */
int store__fts_fresh(store *s, lode_error *err);
int store__prepare(store *s, const char *sql, sqlite3_stmt **st, lode_error *err);
/* The same from a small cache of prepared statements (the searches'
 * per-query statements); give it back with store__release, not
 * sqlite3_finalize. */
int store__prepare_cached(store *s, const char *sql, sqlite3_stmt **st,
                          lode_error *err);
void store__release(store *s, sqlite3_stmt *st);
/* Bind text (static: it must outlive the step), or NULL for NULL. */
void store__bind_text(sqlite3_stmt *st, int i, const char *text);
/* Copy a text column; NULL stays NULL.  LODE_ENOMEM on failure. */
int store__col_dup(sqlite3_stmt *st, int i, char **out);
/* n floats as the little-endian bytes of a vectors.vector BLOB. */
void store__floats_to_le(const float *v, int n, unsigned char *out);
/* Size of a file, -1 when it cannot be read. */
off_t store__file_size(const char *path);

/* Free the keyword retriever's cache of term counts (store_keyword.c). */
void store__term_cache_free(store *s);

/* ---- collections in memory (store.c) ---------------------------------- */

coll *store__coll_new(store *s, int64_t id, const char *name, const char *model,
                      int dim, store_distance dist, int64_t created);
void store__coll_free(coll *c);
coll *store__find_coll(store *s, const char *name);
/* Reload when another connection has committed since we last loaded. */
int store__refresh(store *s, lode_error *err);
/* Refresh, then find collection `name`; LODE_ENOTFOUND if absent. */
int store__need_coll(store *s, const char *name, coll **out, lode_error *err);
/* LODE_EINVAL, with a message saying how to upgrade, when the file's
 * schema predates the keyword index (an old file opened read-only). */
int store__need_keyword_index(store *s, lode_error *err);
/* Does the file have the chunks' page columns (schema 3)?  An older file
 * opened read-only does not; its chunks have no pages. */
bool store__has_pages(const store *s);
/* A collection accepts only vectors of its own model and dimension. */
int store__check_model(const coll *c, const char *model_id, int dimension,
                       const char *doing, lode_error *err);
/* Find a document of the collection by external id, else by source; *id
 * is 0 when there is none.  *sha (when sha is not NULL) gets a copy of its
 * content SHA-256 or NULL. */
int store__find_doc_id(store *s, int64_t coll_id, const char *source,
                       const char *external_id, int64_t *id, char **sha,
                       lode_error *err);

/* ---- filtering (store_filter.c) --------------------------------------- */

/* One document as a filter sees it: its metadata object with the reserved
 * fields (source, title, external_id) set from its columns. */
typedef struct doc_rec {
    int64_t id;
    json_t *rec;
    bool match;
} doc_rec;

/* Every document of collection c, sorted by id, each with whether it
 * matches f.  Free with store__doc_recs_free(). */
int store__load_doc_recs(store *s, const coll *c, const filter *f, doc_rec **out,
                         size_t *n_out, lode_error *err);
void store__doc_recs_free(doc_rec *docs, size_t n);
/* The candidate bitmap over c's in-memory rows (bit r set when row r
 * matches f), for vecset_search.  Caller frees *out. */
int store__filter_bitmap(store *s, coll *c, const filter *f, uint64_t **out,
                         lode_error *err);

/* ---- keyword search (store_keyword.c) ---------------------------------- */

typedef struct store__keyword_hit {
    int64_t id;                 /* chunk id */
    float bm25;                 /* BM25, higher is better */
    float fused;                /* the score fusion uses: BM25, lifted for
                                   rows matching every required term so it
                                   never increases down the list */
} store__keyword_hit;

/* Register lode_bm25, the rank function keyword search uses, on db. */
int store__keyword_register(sqlite3 *db);
/* Up to `limit` chunks of collection c matching kq, best first, into out
 * (room for limit); allow is NULL or the candidate bitmap over c's rows
 * (store__filter_bitmap).  A query without terms finds nothing. */
int store__keyword_search(store *s, const coll *c, const keyword_query *kq,
                          const uint64_t *allow, size_t limit,
                          store__keyword_hit *out, size_t *n_out, lode_error *err);

#endif
