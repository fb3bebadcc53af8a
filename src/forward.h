/* forward.h - the webhook forwarder: POSTs a webhook's result to another
 * service in the background, with retries, so the webhook answers at once.
 *
 * One thread drives every delivery through one libcurl multi handle, so a
 * slow or dead target never holds up the others and no thread sleeps
 * through a backoff.  The queue is bounded: forward_submit() never blocks;
 * when the deliveries waiting or in progress reach the capacity, the new
 * one is dropped (counted and logged) rather than holding the caller.
 *
 * A delivery is one POST of a JSON body.  2xx is success.  A connection
 * error, a timeout, 5xx or 429 is retried after 0.5 s, 1 s, 2 s, 4 s...
 * (doubling), or after the Retry-After the target asked for (capped at
 * FORWARD_RETRY_AFTER_MAX_S); any other status (3xx, 4xx) fails at once,
 * since sending the same body again would get the same answer.  Delivery
 * is at least once: a target that times out after acting sees the body
 * again, so requests carry whatever idempotency header the caller adds.
 *
 * Outcomes are counted in metrics (ok, retry, failed, dropped) and final
 * failures reported through the log callback, since library code does not
 * print.  Stopping gives the queue a bounded time to drain, then aborts
 * what is left.
 */
#ifndef LODE_FORWARD_H
#define LODE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct metrics;

#define FORWARD_DEFAULT_QUEUE 1000
#define FORWARD_DEFAULT_TIMEOUT_MS 10000
#define FORWARD_DEFAULT_RETRIES 4      /* 5 attempts in all */
#define FORWARD_FIRST_DELAY_MS 500     /* then doubling */
#define FORWARD_RETRY_AFTER_MAX_S 60
#define FORWARD_MAX_ACTIVE 16          /* transfers at once */

typedef struct forwarder forwarder;

typedef struct forward_options {
    size_t queue_capacity;           /* 0: FORWARD_DEFAULT_QUEUE */
    struct metrics *metrics;         /* outcomes counted; may be NULL */
    /* Warnings (a drop, a delivery given up), one line without the
     * trailing newline; called from any thread.  May be NULL. */
    void (*log)(void *log_ctx, const char *line);
    void *log_ctx;
} forward_options;

/* One delivery.  Everything is copied: the caller may free it all when
 * forward_submit returns. */
typedef struct forward_request {
    const char *url;                 /* http:// or https:// */
    const char *body;                /* JSON */
    size_t len;
    const char *const *headers;      /* "Name: value" lines; may be NULL */
    size_t n_headers;
    long timeout_ms;                 /* per attempt; <= 0: the default */
    int retries;                     /* attempts after the first; < 0: the
                                        default */
    const char *label;               /* what it is, for log lines */
} forward_request;

/* Start the forwarder's thread (with the caller's signal mask). */
int forward_start(const forward_options *o, forwarder **out,
                  lode_error *err);
/* Queue a delivery; never blocks on the network.  LODE_ELIMIT when the
 * queue is full and LODE_EBUSY once stopping (both counted as dropped and
 * logged), LODE_ENOMEM.  Thread-safe; f may be NULL (LODE_EINVAL). */
int forward_submit(forwarder *f, const forward_request *r);
/* Deliveries waiting or in progress. */
size_t forward_pending(forwarder *f);
/* Refuse new deliveries, let the queued ones run (retries included) for up
 * to grace_ms, then abort what is left (counted as failed when tried,
 * else dropped, and logged) and join the thread.  Idempotent. */
void forward_stop(forwarder *f, int grace_ms);
/* forward_stop(f, 0) if not stopped yet, then free (f may be NULL). */
void forward_free(forwarder *f);

/* ---- pure helpers (tested directly) ------------------------------------ */

typedef enum forward_verdict {
    FORWARD_OK,       /* delivered */
    FORWARD_RETRY,    /* try again later */
    FORWARD_FAIL,     /* give up now */
} forward_verdict;

/* What an attempt's outcome means: transport_ok is false for a connection
 * error or timeout (status is then ignored). */
forward_verdict forward_classify(int transport_ok, long status);
/* Milliseconds to wait after failed attempt number `attempt` (1-based):
 * the Retry-After seconds when > 0 (capped), else FORWARD_FIRST_DELAY_MS
 * doubled attempt - 1 times. */
int64_t forward_retry_delay_ms(int attempt, long retry_after_s);

#endif
