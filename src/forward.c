/* forward.c - the webhook forwarder (see forward.h).
 *
 * Threads: submitters only copy their delivery into an item, append it to
 * `incoming` and bump `pending`, under `lock`, then wake the worker with
 * curl_multi_wakeup().  The worker moves incoming items to its own list
 * and is the only thread that touches an item, an easy handle or the multi
 * handle after that (curl_multi_wakeup is the one call libcurl allows from
 * another thread).  So no lock is held across any network call.
 *
 * An item lives from forward_submit() until it is delivered, given up or
 * abandoned at shutdown; the worker frees it then and gives its slot of
 * the queue back (`pending`).  An item waiting for its retry holds no
 * connection, only its slot: the worker sleeps in curl_multi_poll() until
 * the earliest retry is due, a transfer progresses or a submitter wakes
 * it. */
#include "forward.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "metrics.h"

#define FORWARD_MAX_WAIT_MS 1000  /* the worker looks around at least this
                                     often */

typedef struct forward_item {
    char *url, *body, *label;
    size_t len;
    struct curl_slist *headers;
    long timeout_ms;
    int max_attempts;
    int attempts;          /* started so far */
    int64_t next_ms;       /* when the next attempt may start */
    CURL *easy;            /* the attempt in progress, or NULL */
    bool finished;         /* delivered or given up: to be freed */
} forward_item;

struct forwarder {
    forward_options opts;
    size_t capacity;
    CURLM *multi;
    pthread_t thread;
    bool joined;               /* set by forward_stop (one caller thread) */

    pthread_mutex_t lock;      /* guards the four below */
    forward_item **incoming;   /* capacity slots */
    size_t n_incoming;
    size_t pending;            /* incoming + the worker's items */
    bool stopping;
    int64_t deadline_ms;       /* once stopping: when to abandon the rest */

    /* the worker's own */
    forward_item **items;      /* capacity slots, in submission order */
    size_t n_items;
    int n_active;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3)))
static void log_line(forwarder *f, const char *fmt, ...)
{
    if (!f->opts.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    f->opts.log(f->opts.log_ctx, line);
}

static void count(forwarder *f, metrics_forward_result r)
{
    if (f->opts.metrics)
        metrics_add_forward(f->opts.metrics, r);
}

/* ---- pure helpers -------------------------------------------------------- */

forward_verdict forward_classify(int transport_ok, long status)
{
    if (!transport_ok)
        return FORWARD_RETRY;
    if (status >= 200 && status <= 299)
        return FORWARD_OK;
    if (status == 429 || (status >= 500 && status <= 599))
        return FORWARD_RETRY;
    return FORWARD_FAIL;
}

int64_t forward_retry_delay_ms(int attempt, long retry_after_s)
{
    if (retry_after_s > 0)
        return (int64_t)(retry_after_s < FORWARD_RETRY_AFTER_MAX_S
                             ? retry_after_s : FORWARD_RETRY_AFTER_MAX_S) *
               1000;
    if (attempt < 1)
        attempt = 1;
    if (attempt > 20)
        attempt = 20;  /* no overflow; retries are capped far below */
    return (int64_t)FORWARD_FIRST_DELAY_MS << (attempt - 1);
}

/* ---- items ----------------------------------------------------------------- */

static void item_free(forward_item *it)
{
    if (!it)
        return;
    free(it->url);
    free(it->body);
    free(it->label);
    curl_slist_free_all(it->headers);
    free(it);
}

/* Is there a "name:" line in the headers? */
static bool has_header(const forward_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i] && strncasecmp(r->headers[i], name, n) == 0 &&
            r->headers[i][n] == ':')
            return true;
    return false;
}

static bool append_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return false;
    *list = l;
    return true;
}

/* A copy of the request as an item, or NULL when out of memory. */
static forward_item *item_new(const forward_request *r)
{
    forward_item *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->url = strdup(r->url);
    it->body = malloc(r->len + 1);
    it->label = strdup(r->label ? r->label : "a webhook result");
    if (!it->url || !it->body || !it->label)
        goto fail;
    memcpy(it->body, r->body, r->len);
    it->body[r->len] = '\0';
    it->len = r->len;
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i] && !append_header(&it->headers, r->headers[i]))
            goto fail;
    if (!has_header(r, "Content-Type") &&
        !append_header(&it->headers, "Content-Type: application/json"))
        goto fail;
    /* no "Expect: 100-continue" round trip for large bodies */
    if (!append_header(&it->headers, "Expect:"))
        goto fail;
    it->timeout_ms = r->timeout_ms > 0 ? r->timeout_ms
                                       : FORWARD_DEFAULT_TIMEOUT_MS;
    it->max_attempts = 1 + (r->retries >= 0 ? r->retries
                                            : FORWARD_DEFAULT_RETRIES);
    return it;
fail:
    item_free(it);
    return NULL;
}

/* ---- the worker -------------------------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t n, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * n;
}

/* Start the item's next attempt; false if no transfer could be set up. */
static bool start_attempt(forwarder *f, forward_item *it)
{
    CURL *e = curl_easy_init();
    if (!e)
        return false;
    curl_easy_setopt(e, CURLOPT_URL, it->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, it->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "lode-webhook-forwarder");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, it->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)it);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return false;
    }
    it->easy = e;
    it->attempts++;
    f->n_active++;
    return true;
}

/* An attempt ended: deliver the verdict. */
static void attempt_done(forwarder *f, forward_item *it, bool transport_ok,
                         long status, long retry_after_s, const char *why)
{
    forward_verdict v = forward_classify(transport_ok, status);
    if (v == FORWARD_OK) {
        count(f, METRICS_FORWARD_OK);
        it->finished = true;
        return;
    }
    char what[300];
    if (transport_ok)
        snprintf(what, sizeof what, "HTTP %ld", status);
    else
        snprintf(what, sizeof what, "%s", why);
    if (v == FORWARD_RETRY && it->attempts < it->max_attempts) {
        count(f, METRICS_FORWARD_RETRY);
        it->next_ms = now_ms() + forward_retry_delay_ms(it->attempts,
                                                        retry_after_s);
        return;
    }
    count(f, METRICS_FORWARD_FAILED);
    it->finished = true;
    log_line(f, "webhook forward of %s failed after %d attempt%s: %s%s",
             it->label, it->attempts, it->attempts == 1 ? "" : "s", what,
             v == FORWARD_FAIL ? " (not retried)" : "");
}

static void start_due(forwarder *f, int64_t now)
{
    for (size_t i = 0; i < f->n_items && f->n_active < FORWARD_MAX_ACTIVE;
         i++) {
        forward_item *it = f->items[i];
        if (it->easy || it->finished || it->next_ms > now)
            continue;
        if (!start_attempt(f, it)) {
            it->attempts++;
            attempt_done(f, it, false, 0, 0, "cannot start a transfer");
        }
    }
}

static void collect_done(forwarder *f)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;  /* msg dies with the handle */
        forward_item *it = NULL;
        long status = 0;
        curl_off_t retry_after = 0;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&it);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
        curl_multi_remove_handle(f->multi, e);
        curl_easy_cleanup(e);
        f->n_active--;
        if (!it)
            continue;  /* cannot happen: every handle has its item */
        it->easy = NULL;
        attempt_done(f, it, res == CURLE_OK, status,
                     retry_after > 0 ? (long)retry_after : 0,
                     curl_easy_strerror(res));
    }
}

/* Free the finished items, keeping the order of the others. */
static void sweep(forwarder *f)
{
    size_t kept = 0, freed = 0;
    for (size_t i = 0; i < f->n_items; i++) {
        if (f->items[i]->finished) {
            item_free(f->items[i]);
            freed++;
        } else {
            f->items[kept++] = f->items[i];
        }
    }
    f->n_items = kept;
    if (freed) {
        pthread_mutex_lock(&f->lock);
        f->pending -= freed;
        pthread_mutex_unlock(&f->lock);
    }
}

/* How long the worker may sleep: until the first retry is due, at most
 * FORWARD_MAX_WAIT_MS (libcurl shortens it for its own timers). */
static int wait_ms(forwarder *f, int64_t now, bool stopping, int64_t deadline)
{
    int64_t wait = FORWARD_MAX_WAIT_MS;
    for (size_t i = 0; i < f->n_items; i++) {
        const forward_item *it = f->items[i];
        if (!it->easy && f->n_active < FORWARD_MAX_ACTIVE &&
            it->next_ms - now < wait)
            wait = it->next_ms - now;
    }
    if (stopping && deadline - now < wait)
        wait = deadline - now;
    return wait < 0 ? 0 : (int)wait;
}

/* Stopped: abort and account for whatever is left. */
static void abandon(forwarder *f)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n_incoming; i++)
        f->items[f->n_items++] = f->incoming[i];
    f->n_incoming = 0;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < f->n_items; i++) {
        forward_item *it = f->items[i];
        if (it->easy) {
            curl_multi_remove_handle(f->multi, it->easy);
            curl_easy_cleanup(it->easy);
            it->easy = NULL;
            f->n_active--;
        }
        count(f, it->attempts ? METRICS_FORWARD_FAILED
                              : METRICS_FORWARD_DROPPED);
        log_line(f, "webhook forward of %s abandoned at shutdown after %d "
                    "attempt%s", it->label, it->attempts,
                 it->attempts == 1 ? "" : "s");
        it->finished = true;
    }
    sweep(f);
}

static void *worker_main(void *arg)
{
    forwarder *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < f->n_incoming; i++)
            f->items[f->n_items++] = f->incoming[i];
        f->n_incoming = 0;
        bool stopping = f->stopping;
        int64_t deadline = f->deadline_ms;
        pthread_mutex_unlock(&f->lock);
        int64_t now = now_ms();
        if (stopping && (f->n_items == 0 || now >= deadline))
            break;
        start_due(f, now);
        int running = 0;
        curl_multi_perform(f->multi, &running);
        collect_done(f);
        sweep(f);
        curl_multi_poll(f->multi, NULL, 0,
                        wait_ms(f, now_ms(), stopping, deadline), NULL);
    }
    abandon(f);
    return NULL;
}

/* ---- the interface ------------------------------------------------------- */

int forward_start(const forward_options *o, forwarder **out,
                  lode_error *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return lode_error_set(err, LODE_EINTERNAL,
                              "cannot initialise libcurl");
    forwarder *f = calloc(1, sizeof *f);
    if (!f) {
        curl_global_cleanup();
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    f->opts = *o;
    f->capacity = o->queue_capacity ? o->queue_capacity
                                    : FORWARD_DEFAULT_QUEUE;
    f->incoming = calloc(f->capacity, sizeof *f->incoming);
    f->items = calloc(f->capacity, sizeof *f->items);
    f->multi = curl_multi_init();
    int rc = 0;
    if (!f->incoming || !f->items || !f->multi)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    pthread_mutex_init(&f->lock, NULL);
    if (!rc && pthread_create(&f->thread, NULL, worker_main, f) != 0)
        rc = lode_error_set(err, LODE_EINTERNAL,
                            "cannot start the forwarder thread");
    if (rc) {
        f->joined = true;  /* no thread to stop */
        forward_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int forward_submit(forwarder *f, const forward_request *r)
{
    if (!f || !r || !r->url || !r->body)
        return LODE_EINVAL;
    forward_item *it = item_new(r);
    int rc = it ? 0 : LODE_ENOMEM;
    size_t pending = 0;
    pthread_mutex_lock(&f->lock);
    if (!rc && f->stopping)
        rc = LODE_EBUSY;
    else if (!rc && f->pending >= f->capacity)
        rc = LODE_ELIMIT;
    if (!rc) {
        f->incoming[f->n_incoming++] = it;
        f->pending++;
    }
    pending = f->pending;
    pthread_mutex_unlock(&f->lock);
    if (rc) {
        item_free(it);
        count(f, METRICS_FORWARD_DROPPED);
        char why[96];
        snprintf(why, sizeof why, "%s",
                 rc == LODE_EBUSY ? "the server is stopping" : "out of memory");
        if (rc == LODE_ELIMIT)
            snprintf(why, sizeof why, "the queue is full (%zu deliveries "
                     "waiting or in progress)", pending);
        log_line(f, "webhook forward of %s dropped: %s",
                 r->label ? r->label : "a webhook result", why);
        return rc;
    }
    curl_multi_wakeup(f->multi);
    return 0;
}

size_t forward_pending(forwarder *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->pending;
    pthread_mutex_unlock(&f->lock);
    return n;
}

void forward_stop(forwarder *f, int grace_ms)
{
    if (!f || f->joined)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    f->deadline_ms = now_ms() + (grace_ms > 0 ? grace_ms : 0);
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    f->joined = true;
}

void forward_free(forwarder *f)
{
    if (!f)
        return;
    forward_stop(f, 0);
    /* after a failed start: items never got in, the lists are empty */
    if (f->multi)
        curl_multi_cleanup(f->multi);
    free(f->incoming);
    free(f->items);
    pthread_mutex_destroy(&f->lock);
    free(f);
    curl_global_cleanup();
}
