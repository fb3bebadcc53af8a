/* scheduler.c - the embedding scheduler (see scheduler.h).
 *
 * Three pieces of state under one mutex: the job queue (FIFO), the model
 * state, and flags asking the worker to unload or stop.  The worker thread
 * sleeps on `wake` until there is work; the loader thread exists only
 * while a load runs and hands the loaded model over under the mutex.
 *
 * A round of the worker: take queued jobs while the state is LOADED,
 * tokenize them with the mutex released (tokenizing also validates, so a
 * bad text fails its own job only), keep the jobs that fit the token
 * budget (at least one), push the rest back to the front of the queue with
 * their tokens kept, and run one forward pass. */
#include "scheduler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "model.h"

struct sched {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the worker waits for work here */
    pthread_cond_t changed;   /* others wait for the loader or an unload */
    pthread_t worker;
    int loader_running;       /* the (detached) loader thread is running */
    sched_options opts;
    char *model_path;
    model *model;             /* touched only by the worker once loaded */
    sched_status status;
    sched_job *head, *tail;
    int queued;
    int want_unload, stopping;
    int stopped;              /* sched_stop finished: no worker */
    int64_t load_started_ms;
};

int64_t sched_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append to (or, with front, prepend a list to) the queue; lock held. */
static void queue_push(sched *s, sched_job *job)
{
    job->next = NULL;
    if (s->tail)
        s->tail->next = job;
    else
        s->head = job;
    s->tail = job;
    s->queued++;
}

static void queue_push_front(sched *s, sched_job *first, sched_job *last,
                             int count)
{
    last->next = s->head;
    s->head = first;
    if (!s->tail)
        s->tail = last;
    s->queued += count;
}

static void job_fail(sched_job *job, int code, const char *msg)
{
    job->rc = code;
    lode_error_set(&job->err, code, "%s", msg);
}

/* Call done on every job of a detached list; lock not held. */
static void finish_list(sched_job *list)
{
    while (list) {
        sched_job *next = list->next;
        free(list->tok_ids);
        free(list->tok_lens);
        list->tok_ids = NULL;
        list->tok_lens = NULL;
        list->done(list, list->ctx);
        list = next;
    }
}

/* Detach jobs the current state cannot serve; lock held.  Returns them as
 * a list for finish_list and sets *next_deadline to the earliest deadline
 * still waiting (0 if none). */
static sched_job *take_unservable(sched *s, int64_t now,
                                  int64_t *next_deadline)
{
    sched_job *failed = NULL, **link = &s->head, *prev = NULL;
    *next_deadline = 0;
    while (*link) {
        sched_job *job = *link;
        const char *why = NULL;
        if (s->stopping)
            why = "the server is shutting down";
        else if (s->status.state == SCHED_UNLOADED)
            why = "the model is not loaded (POST /model/load loads it)";
        else if (s->status.state == SCHED_FAILED)
            why = s->status.error;
        else if (s->status.state == SCHED_LOADING && job->deadline_ms &&
                 now >= job->deadline_ms)
            why = "the model is still loading; retry shortly";
        if (!why) {
            if (s->status.state == SCHED_LOADING && job->deadline_ms &&
                (!*next_deadline || job->deadline_ms < *next_deadline))
                *next_deadline = job->deadline_ms;
            prev = job;
            link = &job->next;
            continue;
        }
        *link = job->next;
        if (s->tail == job)
            s->tail = prev;
        s->queued--;
        if (s->status.state == SCHED_FAILED && !s->stopping) {
            job->rc = LODE_EBUSY;
            lode_error_set(&job->err, LODE_EBUSY, "the model failed to load: %s",
                           why);
        } else {
            job_fail(job, LODE_EBUSY, why);
        }
        job->next = failed;
        failed = job;
    }
    return failed;
}

/* Tokenize (or check and copy the ids of) one job.  Lock not held; the
 * model is owned by this (worker) thread. */
static void tokenize_job(model *m, sched_job *job)
{
    const int L = model_max_seq_length(m);
    const int vocab = model_config(m)->vocab_size;
    job->tokenized = 1;
    if (job->prepare) {
        int rc = job->prepare(job, model_tokenizer(m), L, &job->err);
        if (rc) {
            job->rc = rc;
            return;
        }
    }
    if (job->n <= 0) {  /* nothing to embed (e.g. only unchanged docs) */
        job->n_tokens = 0;
        return;
    }
    job->tok_ids = malloc((size_t)job->n * L * sizeof *job->tok_ids);
    job->tok_lens = malloc((size_t)job->n * sizeof *job->tok_lens);
    if (!job->tok_ids || !job->tok_lens) {
        job_fail(job, LODE_ENOMEM, "out of memory for this request's tokens");
        return;
    }
    int tokens = 0, truncated = 0;
    for (int i = 0; i < job->n; i++) {
        int32_t *ids = job->tok_ids + (size_t)i * L;
        if (job->texts) {
            int n_ids, n_full;
            int rc = model_tokenize(m, job->texts[i], job->lens[i], ids,
                                    &n_ids, &n_full, &job->err);
            if (rc) {
                job->rc = rc;
                lode_error_prefix(&job->err, "input %d", i);
                return;
            }
            /* keep the ids between [CLS] and [SEP] */
            memmove(ids, ids + 1, (size_t)(n_ids - 2) * sizeof *ids);
            job->tok_lens[i] = n_ids - 2;
            truncated += n_full > n_ids;
        } else {
            int len = job->id_lens[i];
            if (len <= 0) {
                job->rc = lode_error_set(&job->err, LODE_EEMPTY,
                                         "input %d has no tokens", i);
                return;
            }
            int keep = len < L - 2 ? len : L - 2;
            for (int j = 0; j < keep; j++) {
                if (job->ids[i][j] < 0 || job->ids[i][j] >= vocab) {
                    job->rc = lode_error_set(
                        &job->err, LODE_EINVAL,
                        "input %d: token id %d is outside the vocabulary "
                        "(0..%d)", i, (int)job->ids[i][j], vocab - 1);
                    return;
                }
                ids[j] = job->ids[i][j];
            }
            job->tok_lens[i] = keep;
            truncated += len > keep;
        }
        tokens += job->tok_lens[i] + 2;
        if (job->max_tokens > 0 && tokens > job->max_tokens) {
            job->rc = lode_error_set(&job->err, LODE_ELIMIT,
                                     "the inputs have more than %d tokens, "
                                     "the limit per request",
                                     job->max_tokens);
            return;
        }
    }
    job->n_tokens = tokens;
    job->n_truncated = truncated;
}

/* Run one forward pass over every text of the jobs in `batch`. */
static void run_batch(sched *s, sched_job *batch, int n_texts)
{
    model *m = s->model;
    const int dim = model_dim(m);
    const int32_t **ids = malloc((size_t)n_texts * sizeof *ids);
    int *lens = malloc((size_t)n_texts * sizeof *lens);
    float *out = malloc((size_t)n_texts * dim * sizeof *out);
    lode_error err = {0};
    int rc = 0, tokens = 0;
    if (!ids || !lens || !out) {
        rc = lode_error_set(&err, LODE_ENOMEM, "out of memory for a batch of "
                                               "%d texts", n_texts);
        goto out;
    }
    int k = 0;
    for (sched_job *j = batch; j; j = j->next) {
        const int L = model_max_seq_length(m);
        for (int i = 0; i < j->n; i++, k++) {
            ids[k] = j->tok_ids + (size_t)i * L;
            lens[k] = j->tok_lens[i];
        }
        tokens += j->n_tokens;
    }
    rc = model_embed_ids(m, n_texts, ids, lens, out, NULL, &err);
out:
    k = 0;
    for (sched_job *j = batch; j; j = j->next) {
        j->dim = dim;
        snprintf(j->model_name, sizeof j->model_name, "%s", model_name(m));
        if (!rc) {
            j->vectors = malloc((size_t)j->n * dim * sizeof *j->vectors);
            if (j->vectors) {
                memcpy(j->vectors, out + (size_t)k * dim,
                       (size_t)j->n * dim * sizeof *out);
                j->rc = 0;
            } else {
                job_fail(j, LODE_ENOMEM, "out of memory for the results");
            }
        } else {
            j->rc = rc;
            j->err = err;
        }
        k += j->n;
    }
    if (!rc && s->opts.metrics) {
        metrics_add_embeddings(s->opts.metrics, (uint64_t)n_texts,
                               (uint64_t)tokens);
        metrics_add_batch(s->opts.metrics, (uint64_t)n_texts);
    }
    free(ids);
    free(lens);
    free(out);
}

/* One round of work with the model loaded; called and returns with the
 * lock held. */
static void serve_round(sched *s)
{
    sched_job *taken = s->head;
    int n_taken = s->queued;
    s->head = s->tail = NULL;
    s->queued = 0;
    model *m = s->model;
    pthread_mutex_unlock(&s->lock);

    int budget = s->opts.token_budget > 0 ? s->opts.token_budget
                                          : MODEL_TOKEN_BUDGET;
    sched_job *batch = NULL, *batch_tail = NULL, *failed = NULL;
    sched_job *rest = NULL;
    int n_texts = 0, tokens = 0;
    (void)n_taken;
    for (sched_job *j = taken, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        if (!j->tokenized)
            tokenize_job(m, j);
        if (j->rc || j->n == 0) {  /* failed, or nothing to embed */
            j->dim = model_dim(m);
            snprintf(j->model_name, sizeof j->model_name, "%s",
                     model_name(m));
            j->next = failed;
            failed = j;
            continue;
        }
        if (batch && tokens + j->n_tokens > budget) {
            rest = j;
            j->next = next;
            break;
        }
        tokens += j->n_tokens;
        n_texts += j->n;
        if (batch_tail)
            batch_tail->next = j;
        else
            batch = j;
        batch_tail = j;
    }
    finish_list(failed);
    if (batch) {
        run_batch(s, batch, n_texts);
        finish_list(batch);
    }
    pthread_mutex_lock(&s->lock);
    if (rest) {
        sched_job *last = rest;
        int count = 1;
        while (last->next) {
            last = last->next;
            count++;
        }
        queue_push_front(s, rest, last, count);
    }
}

static void *worker_main(void *arg)
{
    sched *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->want_unload) {
            model *m = s->model;
            s->model = NULL;
            s->status.state = SCHED_UNLOADED;
            s->want_unload = 0;
            pthread_mutex_unlock(&s->lock);
            model_free(m);
            pthread_mutex_lock(&s->lock);
            pthread_cond_broadcast(&s->changed);
        }
        int64_t next_deadline;
        sched_job *failed = take_unservable(s, sched_now_ms(), &next_deadline);
        if (failed) {
            pthread_mutex_unlock(&s->lock);
            finish_list(failed);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        if (s->stopping)
            break;
        if (s->head && s->status.state == SCHED_LOADED) {
            serve_round(s);
            continue;
        }
        if (next_deadline) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = next_deadline - sched_now_ms();
            if (wait < 1)
                wait = 1;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        } else {
            pthread_cond_wait(&s->wake, &s->lock);
        }
    }
    model *m = s->model;
    s->model = NULL;
    pthread_mutex_unlock(&s->lock);
    model_free(m);
    return NULL;
}

static void *loader_main(void *arg)
{
    sched *s = arg;
    int64_t t0 = sched_now_ms();
    for (int64_t waited = 0; waited < s->opts.debug_load_delay_ms;) {
        pthread_mutex_lock(&s->lock);
        int stop = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        waited = sched_now_ms() - t0;
    }
    model *m = NULL;
    lode_error err = {0};
    pthread_mutex_lock(&s->lock);
    int stop = s->stopping;
    pthread_mutex_unlock(&s->lock);
    int rc = stop ? lode_error_set(&err, LODE_EBUSY, "shutting down")
                  : model_load(s->model_path, &m, &err);
    if (!rc)
        model_set_pool(m, s->opts.pool);
    pthread_mutex_lock(&s->lock);
    sched_status *st = &s->status;
    if (rc) {
        st->state = SCHED_FAILED;
        snprintf(st->error, sizeof st->error, "%s",
                 err.message[0] ? err.message : lode_strerror(rc));
    } else {
        st->state = SCHED_LOADED;
        st->error[0] = '\0';
        st->load_seconds = (double)(sched_now_ms() - t0) / 1000.0;
        snprintf(st->name, sizeof st->name, "%s", model_name(m));
        snprintf(st->type, sizeof st->type, "%s", model_type_name(m));
        st->dimension = model_dim(m);
        st->max_seq_length = model_max_seq_length(m);
        st->vocab_size = model_config(m)->vocab_size;
        st->file_bytes = model_file_bytes(m);
        s->model = m;
    }
    s->loader_running = 0;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Start a load; lock held. */
static int start_loader(sched *s)
{
    if (s->loader_running)
        return LODE_EBUSY;
    s->status.state = SCHED_LOADING;
    pthread_t loader;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&loader, &attr, loader_main, s) != 0;
    pthread_attr_destroy(&attr);
    if (failed) {
        s->status.state = SCHED_FAILED;
        snprintf(s->status.error, sizeof s->status.error,
                 "cannot start the loader thread");
        return LODE_EINTERNAL;
    }
    s->loader_running = 1;
    return 0;
}

int sched_start(const sched_options *opts, sched **out, lode_error *err)
{
    *out = NULL;
    sched *s = calloc(1, sizeof *s);
    if (!s)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    s->opts = *opts;
    s->model_path = strdup(opts->model_path ? opts->model_path : "");
    if (!s->model_path) {
        free(s);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    snprintf(s->status.path, sizeof s->status.path, "%s", s->model_path);
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->changed, NULL);
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->changed);
        pthread_mutex_destroy(&s->lock);
        free(s->model_path);
        free(s);
        return lode_error_set(err, LODE_EINTERNAL,
                              "cannot start the scheduler thread");
    }
    pthread_mutex_lock(&s->lock);
    start_loader(s);
    pthread_mutex_unlock(&s->lock);
    *out = s;
    return 0;
}

void sched_submit(sched *s, sched_job *job)
{
    job->rc = 0;
    job->err.code = 0;
    job->err.message[0] = '\0';
    job->vectors = NULL;
    job->dim = job->n_tokens = job->n_truncated = 0;
    job->model_name[0] = '\0';
    job->tok_ids = NULL;
    job->tok_lens = NULL;
    job->tokenized = 0;
    pthread_mutex_lock(&s->lock);
    /* Stopping: fail it here.  The worker may already have left (it
     * does once the queue is empty) while sched_stop has not yet marked
     * the scheduler stopped, and a job queued then would never finish:
     * its request would stay suspended through the shutdown. */
    if (s->stopping || s->stopped) {
        pthread_mutex_unlock(&s->lock);
        job_fail(job, LODE_EBUSY, "the server is shutting down");
        job->done(job, job->ctx);
        return;
    }
    queue_push(s, job);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int sched_load(sched *s)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (s->stopping)
        rc = LODE_EBUSY;
    else if (s->status.state == SCHED_LOADING)
        rc = LODE_EBUSY;
    else if (s->status.state != SCHED_LOADED)
        rc = start_loader(s);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int sched_unload(sched *s)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (s->status.state == SCHED_LOADING) {
        rc = LODE_EBUSY;
    } else if (s->status.state == SCHED_LOADED) {
        /* The worker frees the model after the forward pass it may be
         * running; wait for that (the lock is released while waiting). */
        s->want_unload = 1;
        pthread_cond_signal(&s->wake);
        while (s->model && !s->stopping)
            pthread_cond_wait(&s->changed, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void sched_get_status(sched *s, sched_status *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->status;
    out->queued_jobs = s->queued;
    pthread_mutex_unlock(&s->lock);
}

void sched_stop(sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    if (s->stopped) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->changed);
    while (s->loader_running)
        pthread_cond_wait(&s->changed, &s->lock);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->worker, NULL);
    pthread_mutex_lock(&s->lock);
    /* a model the loader installed after the worker left */
    model_free(s->model);
    s->model = NULL;
    s->stopped = 1;
    if (s->status.state == SCHED_LOADED || s->status.state == SCHED_LOADING)
        s->status.state = SCHED_UNLOADED;
    pthread_mutex_unlock(&s->lock);
}

void sched_free(sched *s)
{
    if (!s)
        return;
    sched_stop(s);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    free(s->model_path);
    free(s);
}
