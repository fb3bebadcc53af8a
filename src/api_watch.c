/* api_watch.c - the server's watched folder (see api_watch.h).
 *
 * The watch thread runs watch_loop (watch.h) with an ingest run through
 * an ingest_backend whose model is the scheduler's: chunking is a job
 * whose prepare hook runs chunk_split on the scheduler thread (the one
 * owner of the tokenizer, as for POSTed documents), embedding a job with
 * the chunk texts; the thread blocks on a condition variable until the
 * job is done, so it never touches the model itself.  Every store call
 * of the run happens under store_lock, and no lock is held while waiting
 * for the scheduler.  Stopping sets a flag that fails the next chunk or
 * embedding call, so a long run ends within one batch.
 */
#include "api_watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "ingest.h"
#include "watch.h"

struct api_watcher {
    api *a;
    char *dir;
    int rescan_s;
    int stop_pipe[2];
    atomic_int stopping;
    pthread_t thread;
    ingest_backend backend;
};

/* ---- a job and waiting for it ----------------------------------------- */

typedef struct waited_job {
    sched_job job;                 /* first */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    /* chunking */
    const char *text;
    size_t len;
    const chunk_heading *headings;
    size_t n_headings;
    const chunk_options *opts;
    chunk_list *out;
    int chunk_rc;
} waited_job;

static void job_done(sched_job *job, void *ctx)
{
    (void)job;
    waited_job *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Submit and wait; returns the job's rc with its message in err. */
static int run_job(api_watcher *wt, waited_job *w, lode_error *err)
{
    if (atomic_load(&wt->stopping))
        return lode_error_set(err, LODE_EBUSY, "the server is stopping");
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->job.done = job_done;
    w->job.ctx = w;
    sched_submit(wt->a->sched, &w->job);
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    if (w->job.rc && err) {
        err->code = w->job.rc;
        snprintf(err->message, sizeof err->message, "%s", w->job.err.message);
    }
    return w->job.rc;
}

static int chunk_prepare(sched_job *job, const tok_tokenizer *tok,
                         int max_seq_length, lode_error *err)
{
    (void)max_seq_length;
    waited_job *w = (waited_job *)job;
    job->n = 0;                    /* nothing to embed */
    return chunk_split(tok, w->text, w->len, w->headings, w->n_headings,
                       w->opts, w->out, err);
}

static int sched_chunk(void *ctx, const char *text, size_t len,
                       const chunk_heading *headings, size_t n_headings,
                       const chunk_options *opts, chunk_list *out,
                       lode_error *err)
{
    waited_job w;
    memset(&w, 0, sizeof w);
    w.text = text;
    w.len = len;
    w.headings = headings;
    w.n_headings = n_headings;
    w.opts = opts;
    w.out = out;
    w.job.prepare = chunk_prepare;
    return run_job(ctx, &w, err);
}

static int sched_embed(void *ctx, int n, const char *const *texts,
                       const size_t *lens, float *vectors, lode_error *err)
{
    api_watcher *wt = ctx;
    waited_job w;
    memset(&w, 0, sizeof w);
    w.job.n = n;
    w.job.texts = texts;
    w.job.lens = lens;
    int rc = run_job(wt, &w, err);
    if (!rc && w.job.dim != wt->backend.dim)
        rc = lode_error_set(err, LODE_EBUSY, "the model changed during the "
                            "run (%d dimensions, not %d)", w.job.dim,
                            wt->backend.dim);
    if (!rc)
        memcpy(vectors, w.job.vectors,
               (size_t)n * (size_t)w.job.dim * sizeof *vectors);
    free(w.job.vectors);
    return rc;
}

static void store_lock(void *ctx)
{
    pthread_mutex_lock(&((api_watcher *)ctx)->a->store_lock);
}

static void store_unlock(void *ctx)
{
    pthread_mutex_unlock(&((api_watcher *)ctx)->a->store_lock);
}

/* ---- the thread -------------------------------------------------------- */

static void watch_note(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "lode: watch: %s\n", message);
}

static int watch_run(void *ctx, lode_error *err)
{
    api_watcher *wt = ctx;
    api *a = wt->a;
    sched_status ss;
    sched_get_status(a->sched, &ss);
    if (ss.state != SCHED_LOADED)
        return lode_error_set(err, LODE_EBUSY, "the model is not loaded");
    wt->backend.dim = ss.dimension;
    wt->backend.max_seq_length = ss.max_seq_length;
    snprintf(wt->backend.model_id, sizeof wt->backend.model_id, "%s:%s",
             ss.name, ss.type);
    ingest_options o = {
        .collection = a->cfg.default_collection,
        .overlap_tokens = -1,
        .sync = true,
        .note = watch_note,
    };
    const char *paths[1] = {wt->dir};
    ingest_stats st;
    int rc = ingest_paths_with(a->store, &wt->backend, paths, 1, &o, &st,
                               err);
    pthread_mutex_lock(&a->store_lock);
    api_refresh_stats(a);
    pthread_mutex_unlock(&a->store_lock);
    if (!rc)
        fprintf(stderr, "lode: watch: %zu files of %s: %lld added, %lld "
                "updated, %lld unchanged, %lld removed, %lld failed; %lld "
                "chunks in %.2f s\n", st.files, wt->dir,
                (long long)st.added, (long long)st.updated,
                (long long)st.unchanged, (long long)st.removed,
                (long long)st.failed, (long long)st.chunks, st.seconds);
    return rc;
}

/* Wait for the database and the model, or a stop.  1 when ready. */
static int wait_ready(api_watcher *wt)
{
    for (;;) {
        pthread_mutex_lock(&wt->a->store_lock);
        api_store_state state = wt->a->store_state;
        pthread_mutex_unlock(&wt->a->store_lock);
        if (state == API_STORE_FAILED) {
            fprintf(stderr, "lode: watch: not watching %s: the database "
                    "could not be opened\n", wt->dir);
            return 0;
        }
        sched_status ss;
        sched_get_status(wt->a->sched, &ss);
        if (state == API_STORE_OPEN && ss.state == SCHED_LOADED)
            return 1;
        if (ss.state == SCHED_FAILED) {
            fprintf(stderr, "lode: watch: not watching %s: the model could "
                    "not be loaded\n", wt->dir);
            return 0;
        }
        char c;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(wt->stop_pipe[0], &fds);
        struct timeval tv = {0, 100000};
        if (select(wt->stop_pipe[0] + 1, &fds, NULL, NULL, &tv) > 0 &&
            read(wt->stop_pipe[0], &c, 1) >= 0)
            return 0;
    }
}

static void *watch_main(void *arg)
{
    api_watcher *wt = arg;
    if (!wait_ready(wt))
        return NULL;
    fprintf(stderr, "lode: watch: watching %s into collection '%s'\n",
            wt->dir, wt->a->cfg.default_collection);
    watch_options wo = {
        .rescan_ms = wt->rescan_s * 1000,
        .stop_fd = wt->stop_pipe[0],
        .run = watch_run,
        .note = watch_note,
        .ctx = wt,
    };
    const char *paths[1] = {wt->dir};
    lode_error err = {0};
    if (watch_loop(paths, 1, &wo, &err))
        fprintf(stderr, "lode: watch: %s\n", err.message);
    return NULL;
}

int api_watch_start(api *a, const char *dir, int rescan_s,
                    api_watcher **out, lode_error *err)
{
    *out = NULL;
    api_watcher *wt = calloc(1, sizeof *wt);
    if (!wt || !(wt->dir = ingest_clean_path(dir))) {
        free(wt);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    wt->a = a;
    wt->rescan_s = rescan_s;
    atomic_init(&wt->stopping, 0);
    wt->backend = (ingest_backend){
        .chunk = sched_chunk,
        .embed = sched_embed,
        .lock = store_lock,
        .unlock = store_unlock,
        .ctx = wt,
    };
    if (pipe(wt->stop_pipe) != 0) {
        free(wt->dir);
        free(wt);
        return lode_error_set(err, LODE_EIO, "cannot create a pipe");
    }
    if (pthread_create(&wt->thread, NULL, watch_main, wt) != 0) {
        close(wt->stop_pipe[0]);
        close(wt->stop_pipe[1]);
        free(wt->dir);
        free(wt);
        return lode_error_set(err, LODE_EIO, "cannot start the watch thread");
    }
    *out = wt;
    return LODE_OK;
}

void api_watch_stop(api_watcher *wt)
{
    if (!wt)
        return;
    atomic_store(&wt->stopping, 1);
    if (write(wt->stop_pipe[1], "x", 1) < 0) {
        /* the pipe cannot be full: one byte is ever written */
    }
    pthread_join(wt->thread, NULL);
    close(wt->stop_pipe[0]);
    close(wt->stop_pipe[1]);
    free(wt->dir);
    free(wt);
}
