/* breaker.c - the circuit breaker (see breaker.h).  A handful of fields
 * under one mutex; every transition is in breaker_allow or
 * breaker_record. */
#include "breaker.h"

void breaker_init(breaker *b, int failures, int64_t cooldown_ms)
{
    pthread_mutex_init(&b->lock, NULL);
    b->failures = failures >= 1 ? failures : BREAKER_DEFAULT_FAILURES;
    b->cooldown_ms = cooldown_ms >= 0 ? cooldown_ms
                                      : BREAKER_DEFAULT_COOLDOWN_MS;
    b->state = BREAKER_CLOSED;
    b->run = 0;
    b->opened_ms = 0;
    b->probe_out = false;
    b->opens = 0;
}

void breaker_destroy(breaker *b)
{
    pthread_mutex_destroy(&b->lock);
}

bool breaker_allow(breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    bool ok;
    switch (b->state) {
    case BREAKER_CLOSED:
        ok = true;
        break;
    case BREAKER_OPEN:
        ok = now_ms - b->opened_ms >= b->cooldown_ms;
        if (ok) {
            b->state = BREAKER_HALF_OPEN;
            b->probe_out = true;
        }
        break;
    default: /* half-open: one probe at a time */
        ok = !b->probe_out;
        if (ok)
            b->probe_out = true;
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

void breaker_record(breaker *b, bool success, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    if (success) {
        b->state = BREAKER_CLOSED;
        b->run = 0;
        b->probe_out = false;
    } else if (b->state == BREAKER_HALF_OPEN) {
        /* the probe failed: another cool-down */
        b->run++;
        b->state = BREAKER_OPEN;
        b->opened_ms = now_ms;
        b->probe_out = false;
        b->opens++;
    } else if (b->state == BREAKER_CLOSED) {
        if (++b->run >= b->failures) {
            b->state = BREAKER_OPEN;
            b->opened_ms = now_ms;
            b->opens++;
        }
    } else {
        /* open: a call allowed before it opened failed late; it extends
         * the run but not the cool-down */
        b->run++;
    }
    pthread_mutex_unlock(&b->lock);
}

void breaker_abandon(breaker *b)
{
    pthread_mutex_lock(&b->lock);
    if (b->state == BREAKER_HALF_OPEN)
        b->probe_out = false;
    pthread_mutex_unlock(&b->lock);
}

void breaker_get(breaker *b, int64_t now_ms, breaker_snapshot *out)
{
    pthread_mutex_lock(&b->lock);
    out->state = b->state;
    out->consecutive_failures = b->run;
    out->retry_in_ms = 0;
    out->opens = b->opens;
    if (b->state == BREAKER_OPEN) {
        int64_t left = b->cooldown_ms - (now_ms - b->opened_ms);
        if (left > 0)
            out->retry_in_ms = left;
        else
            out->state = BREAKER_HALF_OPEN;
    }
    pthread_mutex_unlock(&b->lock);
}

const char *breaker_state_name(breaker_state s)
{
    switch (s) {
    case BREAKER_OPEN: return "open";
    case BREAKER_HALF_OPEN: return "half_open";
    default: return "closed";
    }
}
