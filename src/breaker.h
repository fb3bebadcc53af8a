/* breaker.h - a circuit breaker for a remote service (the LLM).
 *
 * Closed: calls go through; each failure (error or timeout, counted once
 * per call after its retries) adds to a run of consecutive failures, and
 * a success ends the run.  When the run reaches `failures`, the breaker
 * opens: calls are refused at once for `cooldown_ms`, so a dead service
 * costs callers nothing and is not hammered.  After the cool-down exactly
 * one call is let through as a probe (half-open); its success closes the
 * breaker, its failure opens it for another cool-down.  While the probe
 * is out, other calls are refused.
 *
 * Time is passed in by the caller (milliseconds of a monotonic clock), so
 * the state machine is tested without sleeping.  Thread-safe: one mutex.
 */
#ifndef LODE_BREAKER_H
#define LODE_BREAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BREAKER_DEFAULT_FAILURES 3
#define BREAKER_DEFAULT_COOLDOWN_MS 60000

typedef enum breaker_state {
    BREAKER_CLOSED = 0,
    BREAKER_HALF_OPEN = 1,
    BREAKER_OPEN = 2,
} breaker_state;

typedef struct breaker {
    pthread_mutex_t lock;
    int failures;             /* consecutive failures that open it */
    int64_t cooldown_ms;
    breaker_state state;
    int run;                  /* consecutive failures so far */
    int64_t opened_ms;        /* when it last opened */
    bool probe_out;           /* half-open: the probe call is running */
    uint64_t opens;           /* times it opened, for metrics */
} breaker;

/* failures < 1 or cooldown_ms < 0 take the defaults. */
void breaker_init(breaker *b, int failures, int64_t cooldown_ms);
void breaker_destroy(breaker *b);

/* May a call start now?  True also means "you are the probe" when the
 * cool-down is over; every call allowed must be followed by exactly one
 * breaker_record (or breaker_abandon). */
bool breaker_allow(breaker *b, int64_t now_ms);
/* The outcome of an allowed call. */
void breaker_record(breaker *b, bool success, int64_t now_ms);
/* An allowed call ended without a verdict on the service (the client
 * went away first): frees the probe slot, changes nothing else. */
void breaker_abandon(breaker *b);

typedef struct breaker_snapshot {
    breaker_state state;      /* OPEN reads HALF_OPEN once the cool-down is
                                 over and no probe is out */
    int consecutive_failures;
    int64_t retry_in_ms;      /* OPEN: until a probe may go; else 0 */
    uint64_t opens;
} breaker_snapshot;

void breaker_get(breaker *b, int64_t now_ms, breaker_snapshot *out);
/* "closed", "half_open", "open". */
const char *breaker_state_name(breaker_state s);

#endif
