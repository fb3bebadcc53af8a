/* ingest.h - index files into a store collection: walk paths, extract,
 * chunk, embed, store; incrementally.
 *
 * Files are found by walking the given paths (directories recursively, in
 * byte order of names, so runs are deterministic), skipping hidden names
 * (starting with '.') inside directories and files whose extension
 * extract.h does not know (each reported through the note callback).
 * Sources are the paths as given, cleaned lexically ("./a//b/" -> "a/b";
 * no symlink or ".." resolution), so ingest the same tree by the same path.
 *
 * Incremental: each document records the SHA-256 of its file (or, for a
 * JSON record, of its text, title, id and metadata); a document whose
 * source and SHA-256 are already stored is skipped without extraction or
 * embedding, a changed one is replaced (upsert by source, or by external
 * id for records).  Chunking options are not part of that check: to
 * re-chunk unchanged files with new --chunk-tokens or --overlap, delete
 * the collection first.  With `sync`, documents whose source lies under
 * one of the given paths but was not seen in this run (file deleted,
 * record removed) are deleted; a file that failed to read keeps its
 * documents.
 *
 * Records of .json/.jsonl files get the source "PATH#ID" (ID: the
 * external id, else the record number) so each is its own document.
 *
 * Chunks are embedded in batches across documents (INGEST_BATCH chunks
 * per model_embed call) and each document is written in one transaction
 * (store_upsert_document), so a crash or kill leaves every stored document
 * complete and a re-run finishes the job.
 *
 * A file that cannot be read or extracted (invalid UTF-8, malformed JSON,
 * a scanned or password-protected PDF, a damaged zip or a zip bomb) is
 * reported through the note callback, counted as failed, and the run
 * goes on; errors of the store or the model stop the run.
 *
 * PDF, DOCX and ODT files are hashed through a fixed buffer and handed to
 * extract_file by path, so they are never held in memory whole; chunks of
 * a paged document get the pages they span (extract_page_at).
 */
#ifndef LODE_INGEST_H
#define LODE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "err.h"
#include "extract.h"
#include "model.h"
#include "store.h"

/* Chunks per model_embed call. */
#define INGEST_BATCH 256
#define INGEST_DEFAULT_COLLECTION "default"

typedef struct ingest_progress {
    size_t files_done, files_total;
    uint64_t bytes_done, bytes_total;   /* sizes of the files */
    int64_t chunks;                     /* chunks embedded so far */
    double seconds;                     /* since the start */
} ingest_progress;

typedef struct ingest_stats {
    size_t files;                       /* files found */
    int64_t added, updated, unchanged, removed; /* documents */
    int64_t failed;                     /* files that could not be ingested */
    int64_t chunks;                     /* chunks embedded and stored */
    double seconds;
} ingest_stats;

typedef struct ingest_options {
    const char *collection;      /* NULL: INGEST_DEFAULT_COLLECTION */
    int chunk_tokens;            /* 0: chunk_default_options() */
    int overlap_tokens;          /* < 0: the default */
    bool sync;
    extract_options extract;
    /* Callbacks (may be NULL), called on the ingesting thread. */
    void (*note)(void *ctx, const char *message);
    void (*progress)(void *ctx, const ingest_progress *p);
    void *ctx;
} ingest_options;

/* The id a collection is pinned to for model m: "NAME:TYPE", the name it
 * was loaded under (file or directory name) and its weight type, e.g.
 * "all-MiniLM-L6-v2-q8_0.gguf:q8_0" or "all-MiniLM-L6-v2:f32".  Two
 * quantisations of one model give slightly different vectors, so they
 * count as different models. */
void ingest_model_id(const model *m, char *buf, size_t size);

/* Ingest files and directories into the collection (created, pinned to
 * m, when missing).  stats may be NULL.  A path that does not exist is an
 * error before anything is written (LODE_ENOTFOUND). */
int ingest_paths(store *s, model *m, const char *const *paths,
                 size_t n_paths, const ingest_options *opts,
                 ingest_stats *stats, lode_error *err);

/* How a run reaches the model and the store.  ingest_paths makes one for
 * a model the caller owns; the server makes one that goes through its
 * scheduler (chunking on the scheduler thread, which owns the tokenizer)
 * and takes its store lock around every store call. */
typedef struct ingest_backend {
    int (*chunk)(void *ctx, const char *text, size_t len,
                 const chunk_heading *headings, size_t n_headings,
                 const chunk_options *opts, chunk_list *out,
                 lode_error *err);
    int (*embed)(void *ctx, int n, const char *const *texts,
                 const size_t *lens, float *vectors, lode_error *err);
    void (*lock)(void *ctx);         /* may be NULL: no locking */
    void (*unlock)(void *ctx);
    void *ctx;
    int dim, max_seq_length;
    char model_id[288];              /* see ingest_model_id */
} ingest_backend;

/* ingest_paths through a backend (see above). */
int ingest_paths_with(store *s, const ingest_backend *b,
                      const char *const *paths, size_t n_paths,
                      const ingest_options *opts, ingest_stats *stats,
                      lode_error *err);

/* One document of a file as ingest stores it. */
typedef struct ingest_doc {
    char *source;            /* the file's name; "NAME#ID" for a record */
    char sha256[65];         /* of the file; of a record's fields */
    char *metadata_json;     /* {"format": F} for a whole file, else the
                                record's metadata, or NULL (owned) */
    extract_doc doc;         /* text, title, external id, headings (owned) */
} ingest_doc;

/* The documents of one file's bytes, named `name` (its source), in format
 * f (data NULL: a binary format read from the file `name` itself, never
 * held whole): extraction, the sources, hashes and metadata exactly as
 * `lode ingest` stores them, so a file uploaded to the server and the same file
 * ingested by the CLI become the same documents.  Errors are the
 * extractor's (LODE_EUTF8, LODE_EFORMAT, LODE_EUNSUPPORTED) or
 * LODE_ENOMEM.  Free with ingest_docs_free. */
int ingest_file_docs(const char *name, extract_format f, const char *data,
                     size_t len, const extract_options *opts,
                     ingest_doc **out, size_t *n, lode_error *err);
void ingest_docs_free(ingest_doc *docs, size_t n);

/* Clean a path lexically: drop "." components, repeated and trailing
 * slashes ("./a//b/" -> "a/b", "." stays "."). Returns a malloc'd string
 * or NULL when out of memory. */
char *ingest_clean_path(const char *path);

#endif
