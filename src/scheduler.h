/* scheduler.h - the embedding scheduler: the one owner of the model in the
 * server.
 *
 * HTTP handlers never call the model.  They fill a sched_job (texts or
 * token ids) and submit it; the scheduler thread drains the queue up to a
 * token budget, tokenizes, runs one model_embed_ids() over every text of
 * every job it took, and calls each job's `done` callback.  Concurrent
 * callers therefore share forward passes, and the model (whose scratch
 * memory is not thread-safe) is only ever touched by one thread.  Because
 * the encoder gives a text the same bits in any batch, a batched result
 * equals the result of the text alone.
 *
 * The model is loaded on a separate loader thread, so the server answers
 * while it loads; jobs submitted meanwhile wait until the model is ready
 * or their deadline passes (then they fail with LODE_EBUSY).  A load
 * failure is kept and reported through sched_get_status(); it is not
 * fatal.  Jobs submitted while no model is loaded or loading fail at once
 * with LODE_EBUSY.
 *
 * Ownership: the job and everything its inputs point to belong to the
 * submitter and must stay valid until `done` is called; the scheduler
 * touches nothing of the job after `done` returns.  `done` runs on the
 * scheduler thread, must not block, and must not call back into the
 * scheduler.  job->vectors is malloc'd by the scheduler and freed by the
 * submitter (free(NULL) is fine on failure).
 */
#ifndef LODE_SCHED_H
#define LODE_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct pool;
struct metrics;
struct tok_tokenizer;

typedef struct sched sched;

typedef enum sched_state {
    SCHED_UNLOADED = 0,
    SCHED_LOADING,
    SCHED_LOADED,
    SCHED_FAILED,
} sched_state;

typedef struct sched_options {
    const char *model_path;
    struct pool *pool;        /* encoder threads; not owned; may be NULL */
    struct metrics *metrics;  /* embeddings and tokens counted; may be NULL */
    int token_budget;         /* tokens per forward pass; 0: MODEL_TOKEN_BUDGET */
    int debug_load_delay_ms;  /* tests: sleep this long before loading */
} sched_options;

typedef struct sched_status {
    sched_state state;
    char error[LODE_ERROR_MAX];   /* the last load failure, "" if none */
    double load_seconds;          /* of the last successful load */
    /* valid when state == SCHED_LOADED: */
    char name[256];               /* model_name(), the store's model id */
    char type[16];                /* f32 | f16 | bf16 | q8_0 */
    int dimension, max_seq_length, vocab_size;
    size_t file_bytes;
    /* always */
    char path[1024];
    int queued_jobs;
} sched_status;

typedef struct sched_job sched_job;
struct sched_job {
    /* ---- set by the submitter ---- */
    int n;                          /* inputs */
    const char *const *texts;       /* n texts of lens[i] bytes, or */
    const size_t *lens;
    const int32_t *const *ids;      /* n token id arrays without [CLS]/[SEP] */
    const int *id_lens;
    int max_tokens;                 /* refuse with LODE_ELIMIT above this
                                       (after truncation); 0: no cap */
    int64_t deadline_ms;            /* sched_now_ms() clock; 0: none */
    void (*done)(sched_job *job, void *ctx);
    void *ctx;
    /* Optional: called on the scheduler thread, before tokenizing, with
     * the model's tokenizer; may set n, texts and lens (e.g. by chunking
     * documents).  A non-zero return fails the job with *err. */
    int (*prepare)(sched_job *job, const struct tok_tokenizer *tok,
                   int max_seq_length, lode_error *err);
    /* ---- results, valid in done ---- */
    int rc;
    lode_error err;
    float *vectors;                 /* n * dim floats; submitter frees */
    int dim;
    int n_tokens;                   /* after truncation, with [CLS]/[SEP] */
    int n_truncated;
    char model_name[256];
    /* ---- private to the scheduler ---- */
    sched_job *next;
    int32_t *tok_ids;               /* n * max_seq_length */
    int *tok_lens;
    int tokenized;
};

/* Start the scheduler and loader threads; loading begins at once. */
int sched_start(const sched_options *opts, sched **out, lode_error *err);
/* Queue a job.  Never fails: every outcome is reported through done. */
void sched_submit(sched *s, sched_job *job);
/* Start loading the model if none is loaded or loading (returns 0), or
 * LODE_EBUSY while loading; loaded already: 0 and nothing changes. */
int sched_load(sched *s);
/* Free the model once the current forward pass ends.  Queued jobs fail
 * with LODE_EBUSY.  LODE_EBUSY while loading. */
int sched_unload(sched *s);
void sched_get_status(sched *s, sched_status *out);
/* Fail every queued job (LODE_EBUSY, "shutting down"), stop the threads
 * and free the model.  The scheduler still answers sched_get_status, and
 * jobs submitted from now on fail at once (their done runs inside
 * sched_submit).  NULL is fine. */
void sched_stop(sched *s);
/* Stop if needed, then free.  NULL is fine. */
void sched_free(sched *s);

/* Monotonic milliseconds, the clock of job deadlines. */
int64_t sched_now_ms(void);

#endif
