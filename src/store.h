/* store.h - the durable vector store: collections of documents, their
 * chunks and the chunks' embedding vectors in one SQLite file, with exact
 * top-k search over vectors held in memory.
 *
 * Model of the data:
 *   collection  a name pinned to one embedding model id, a dimension and a
 *               distance (cosine | dot | l2).  Adding to or searching a
 *               collection with another model id or dimension is refused
 *               (LODE_EINVAL, the message names both models).
 *   document    a source path and/or an external id (each unique within
 *               its collection), a title, a JSON metadata object and the
 *               SHA-256 of its content (so ingestion can skip unchanged
 *               files).
 *   chunk       a document's text split in order: ordinal, text, character
 *               offsets into the document, token count, heading path, the
 *               pages it spans (paged formats: PDF), an optional JSON
 *               metadata object, and one vector.
 *
 * Writes are atomic per document: a document, all its chunks and vectors
 * are committed in one transaction or not at all, and the in-memory
 * vectors change only after the commit succeeded.
 *
 * Search scores are "higher is better": cosine similarity for cosine
 * collections, the dot product for dot, and minus the squared Euclidean
 * distance for l2 (so 0 is an exact match).  Filters use Chroma's "where"
 * language (see filter.h) over each chunk's fields: the reserved fields
 * "source", "title", "external_id" (from the document) and "heading" (from
 * the chunk) take precedence, then the chunk's metadata object, then the
 * document's.  The filter selects the candidates before ranking, so a
 * filtered query returns k results whenever k chunks match.
 *
 * Ownership: every pointer a caller passes in is only read during the call.
 * Every structure handed out is owned by the caller and released with the
 * matching *_free function.  A store is used by one thread at a time.
 * Another process may write to the same file; a search notices (through
 * PRAGMA data_version) and reloads the vectors first.
 */
#ifndef LODE_STORE_H
#define LODE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct store store;

typedef enum store_distance {
    STORE_COSINE = 0,
    STORE_DOT = 1,
    STORE_L2 = 2,
} store_distance;

/* "cosine", "dot" or "l2": the name the schema stores and the API shows. */
const char *store_distance_name(store_distance d);

typedef struct store_options {
    bool read_only;      /* open for search only, even when writable */
    bool int8_vectors;   /* hold vectors in memory as int8 + a scale per
                            vector: 4x less memory, ~1% score error */
} store_options;

/* Open (creating when missing, unless read-only) the store at `path`.
 * opts may be NULL.  A file that is not SQLite, is truncated, or was
 * written by a newer schema is refused with LODE_EFORMAT.  A file or
 * directory without write permission opens read-only; writes then fail
 * with LODE_EIO.  A writable file of an older schema is upgraded in place
 * (one transaction per version step).  On error *out is NULL. */
int store_open(const char *path, const store_options *opts, store **out,
               lode_error *err);
void store_close(store *s);
/* True when writes are impossible (read-only option or permissions). */
bool store_is_read_only(const store *s);
/* True when the file was written by an older lode and was opened
 * read-only, so it was not upgraded: vector search works, keyword and
 * hybrid search are refused until it is opened once for writing. */
bool store_is_outdated(const store *s);

/* ---- collections ------------------------------------------------------ */

/* Create collection `name` pinned to model_id/dimension/distance.  If it
 * already exists with the same model, dimension and distance this does
 * nothing; with different ones it fails with LODE_EINVAL. */
int store_create_collection(store *s, const char *name, const char *model_id,
                            int dimension, store_distance distance,
                            lode_error *err);
/* Delete a collection with all its documents.  LODE_ENOTFOUND if absent. */
int store_delete_collection(store *s, const char *name, lode_error *err);

typedef struct store_collection_info {
    char *name;
    char *model_id;
    int dimension;
    store_distance distance;
    int64_t created;            /* unix seconds */
    int64_t documents, chunks;
} store_collection_info;

/* All collections, by name.  Free with store_collections_free(). */
int store_list_collections(store *s, store_collection_info **out, size_t *n,
                           lode_error *err);
void store_collections_free(store_collection_info *infos, size_t n);

/* ---- writing documents ------------------------------------------------ */

typedef struct store_chunk_in {
    const char *text;           /* NULL is stored as "" */
    int64_t char_start, char_end;
    int token_count;
    const char *heading;        /* heading path, e.g. "Setup > Linux"; may be NULL */
    const char *metadata_json;  /* JSON object or NULL */
    const float *vector;        /* `dimension` floats */
    int dimension;              /* must equal the collection's */
    int page_start, page_end;   /* 1-based pages the chunk spans (PDF);
                                   0: unknown, stored as NULL */
} store_chunk_in;

typedef struct store_document_in {
    const char *model_id;       /* model that made the vectors; must match */
    const char *source;         /* source path, or NULL */
    const char *external_id;    /* caller's id, or NULL */
    const char *title;          /* may be NULL */
    const char *metadata_json;  /* JSON object or NULL */
    const char *content_sha256; /* 64 hex digits, or NULL */
    const store_chunk_in *chunks;
    size_t n_chunks;
} store_document_in;

/* Add a new document.  Fails with LODE_EINVAL if its source or external
 * id is already in the collection.  *doc_id (may be NULL) gets its id. */
int store_add_document(store *s, const char *collection,
                       const store_document_in *doc, int64_t *doc_id,
                       lode_error *err);
/* Add, or replace the document with the same external id (when given) or
 * else the same source path: its fields, chunks and vectors are replaced
 * atomically and it keeps its id and creation time. */
int store_upsert_document(store *s, const char *collection,
                          const store_document_in *doc, int64_t *doc_id,
                          lode_error *err);
/* One document written in pieces inside one transaction, for documents
 * too large to hold with all their vectors (lode ingest of a long PDF):
 * store_doc_begin checks and writes the document row (doc->chunks is
 * ignored), store_doc_add_chunks adds chunks as they are embedded (their
 * ordinals continue), store_doc_commit makes it all visible at once.
 * Nothing is visible before the commit, and a failure anywhere (or
 * store_doc_abort) leaves the file and the in-memory vectors as they
 * were.  The writer holds the store's write transaction: make no other
 * store call until commit or abort.  After an error from
 * store_doc_add_chunks the document is already rolled back; commit then
 * fails and abort only frees.  Both free the writer. */
typedef struct store_doc_writer store_doc_writer;
int store_doc_begin(store *s, const char *collection, const store_document_in *doc,
                    bool upsert, store_doc_writer **out, lode_error *err);
int store_doc_add_chunks(store_doc_writer *w, const store_chunk_in *chunks,
                         size_t n, lode_error *err);
int store_doc_commit(store_doc_writer *w, int64_t *doc_id, lode_error *err);
void store_doc_abort(store_doc_writer *w);
/* LODE_ENOTFOUND if there is no such document. */
int store_delete_document(store *s, int64_t doc_id, lode_error *err);
/* Delete every document of the collection whose fields match `where`
 * (document-level fields: metadata, source, title, external_id).  An
 * empty filter is refused, so a typo cannot empty a collection; use
 * store_delete_collection for that.  *n_deleted may be NULL. */
int store_delete_where(store *s, const char *collection, const char *where_json,
                       int64_t *n_deleted, lode_error *err);
/* Rebuild the file to return the space of deleted data to the disk. */
int store_vacuum(store *s, lode_error *err);

/* ---- reading documents ------------------------------------------------ */

typedef struct store_chunk {
    int64_t id;
    int ordinal;
    char *text;
    int64_t char_start, char_end;
    int token_count;
    char *heading;              /* NULL when none */
    char *metadata_json;        /* NULL when none */
    int page_start, page_end;   /* 0 when unknown */
} store_chunk;

typedef struct store_document {
    int64_t id;
    char *collection;
    char *source, *external_id, *title, *metadata_json, *content_sha256;
    int64_t created, updated;   /* unix seconds */
    store_chunk *chunks;        /* in ordinal order */
    size_t n_chunks;
} store_document;

/* A document with its chunks (not vectors).  Free with
 * store_document_free().  LODE_ENOTFOUND if absent. */
int store_get_document(store *s, int64_t doc_id, store_document **out,
                       lode_error *err);
void store_document_free(store_document *doc);

/* Find a document by external id (when not NULL) or else by source.
 * Writes its id and, when sha256 is not NULL, its content SHA-256 (64 hex
 * digits, "" when none was recorded).  LODE_ENOTFOUND if absent. */
int store_find_document(store *s, const char *collection, const char *source,
                        const char *external_id, int64_t *doc_id,
                        char sha256[65], lode_error *err);
/* The source paths of a collection's documents (those that have one),
 * sorted.  Free with store_strings_free(). */
int store_list_sources(store *s, const char *collection, char ***sources,
                       size_t *n, lode_error *err);
void store_strings_free(char **strings, size_t n);

typedef struct store_stats {
    int64_t collections, documents, chunks;
    int64_t bytes_on_disk;      /* database file plus its WAL */
    int64_t bytes_in_memory;    /* the in-memory vector arrays */
} store_stats;

/* Counts for one collection, or the whole store when collection is NULL
 * (bytes_on_disk is always the whole file). */
int store_get_stats(store *s, const char *collection, store_stats *out,
                    lode_error *err);

/* ---- search ----------------------------------------------------------- */

/* How a search finds its chunks:
 *   vector   the k chunks whose vectors are nearest the query vector
 *            (the mode of a zeroed store_query);
 *   keyword  the k best chunks by BM25 over the keyword index (text,
 *            title and heading; see keyword.h for how the text becomes a
 *            query: phrases and identifiers rank first);
 *   hybrid   both retrievers' candidates fused into one ranking:
 *            reciprocal-rank fusion, or a convex combination of their
 *            normalised scores weighted by alpha (fusion.h). */
typedef enum store_mode {
    STORE_MODE_VECTOR = 0,
    STORE_MODE_KEYWORD = 1,
    STORE_MODE_HYBRID = 2,
} store_mode;

typedef enum store_fusion {
    STORE_FUSION_RRF = 0,
    STORE_FUSION_CONVEX = 1,
} store_fusion;

/* What lode's search commands and API use when the caller does not say;
 * chosen by the measurements in README.md ("Retrieval quality"). */
#define STORE_DEFAULT_MODE STORE_MODE_HYBRID
#define STORE_DEFAULT_FUSION STORE_FUSION_CONVEX
#define STORE_DEFAULT_ALPHA 0.5f
/* Candidates a hybrid search takes from each retriever (at least k). */
#define STORE_HYBRID_CANDIDATES 50

/* "vector", "keyword", "hybrid"; "rrf", "convex".  The parsers return 0,
 * or LODE_EINVAL for another name. */
const char *store_mode_name(store_mode m);
int store_mode_parse(const char *name, store_mode *out);
const char *store_fusion_name(store_fusion f);
int store_fusion_parse(const char *name, store_fusion *out);

typedef struct store_query {
    const char *collection;
    const char *model_id;       /* must match the collection's model */
    const float *vector;        /* may be NULL in keyword mode */
    int dimension;              /* must match the collection's */
    size_t k;                   /* number of results wanted */
    const char *where_json;     /* Chroma filter, NULL or "" for none */
    bool use_min_score;
    float min_score;            /* leave out chunks whose similarity (or,
                                   in keyword mode without a vector, whose
                                   score) is below it */
    store_mode mode;
    const char *text;           /* the query's text: keyword and hybrid */
    store_fusion fusion;        /* hybrid only */
    float alpha;                /* convex fusion: the vector side's weight,
                                   0..1 (1 = vector alone) */
    size_t candidates;          /* hybrid: taken from each retriever; 0:
                                   max(k, STORE_HYBRID_CANDIDATES) */
} store_query;

typedef struct store_result {
    float score;                /* higher is better: the similarity in
                                   vector mode (see above); in keyword mode
                                   BM25, raised for the chunks that match
                                   every phrase and identifier (they come
                                   first); the fused score in hybrid mode */
    int64_t chunk_id, document_id;
    int ordinal;
    int64_t char_start, char_end;
    char *text;
    char *heading;              /* NULL when none */
    char *source, *title, *external_id; /* NULL when none */
    int page_start, page_end;   /* 0 when unknown */
    /* Which retriever found it: its rank (from 1) among that retriever's
     * candidates, 0 when it was not one of them, and its score there. */
    int vector_rank, keyword_rank;
    float keyword_score;        /* BM25 (higher is better), when ranked */
    bool has_similarity;        /* the query had a vector: */
    float similarity;           /* the chunk's vector score (the score of
                                   vector mode), ranked by vector or not */
} store_result;

/* The k best chunks, best first (fewer only when fewer chunks pass the
 * filter, or in keyword mode match the text, or min_score drops them).
 * Free with store_results_free(). */
int store_search(store *s, const store_query *q, store_result **results,
                 size_t *n, lode_error *err);
void store_results_free(store_result *results, size_t n);

/* ---- listing documents ------------------------------------------------ */

typedef struct store_document_info {
    int64_t id;
    char *source, *external_id, *title;   /* NULL when none */
    int64_t chunks;
    int64_t created, updated;             /* unix seconds */
} store_document_info;

/* A page of a collection's documents in id order: at most `limit` after
 * skipping `offset`; *total (may be NULL) gets how many it has.  Free with
 * store_document_infos_free().  LODE_ENOTFOUND if there is no such
 * collection. */
int store_list_documents(store *s, const char *collection, size_t offset,
                         size_t limit, store_document_info **out, size_t *n,
                         int64_t *total, lode_error *err);
void store_document_infos_free(store_document_info *docs, size_t n);

/* ---- feedback on answers (store_feedback.c) ---------------------------
 * Ratings of chat answers, kept in a table of their own beside the
 * collections (created on first use, so older files need no migration). */

typedef struct store_feedback {
    int64_t id;
    char *answer_id;            /* the chat answer's id */
    int rating;                 /* +1 (up) or -1 (down) */
    char *comment, *query, *answer, *collection;  /* NULL when not given */
    int64_t created, updated;   /* unix seconds */
} store_feedback;

/* Record fb (its id, created and updated are ignored): a second rating of
 * the same answer replaces the first (fields not given keep their
 * values).  *id (may be NULL) gets the row's id. */
int store_put_feedback(store *s, const store_feedback *fb, int64_t *id,
                       lode_error *err);
/* Feedback with an id above after_id, oldest first, at most limit. Free
 * with store_feedback_free(). */
int store_list_feedback(store *s, int64_t after_id, size_t limit,
                        store_feedback **out, size_t *n, lode_error *err);
void store_feedback_free(store_feedback *fb, size_t n);

/* ---- helpers ---------------------------------------------------------- */

/* SHA-256 of data as 64 lowercase hex digits plus NUL. */
void store_sha256_hex(const void *data, size_t len, char out[65]);

/* The same, fed in pieces (files hashed without holding them).  init,
 * update any number of times, then final_hex (which frees it) or free.
 * A failure inside gives "" as the digest. */
typedef struct store_sha256 {
    void *ctx;                  /* OpenSSL's EVP_MD_CTX */
} store_sha256;
void store_sha256_init(store_sha256 *h);
void store_sha256_update(store_sha256 *h, const void *data, size_t len);
void store_sha256_final_hex(store_sha256 *h, char out[65]);
void store_sha256_free(store_sha256 *h);

/* Tests only: make the nth SQLite write step from now (1 = the next one)
 * fail as if the disk were full; 0 turns it off. */
void store_debug_fail_write(store *s, int nth);

#endif
