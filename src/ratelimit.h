/* ratelimit.h - per-client token buckets for `lode serve`'s heavy routes.
 *
 * Each client (an IPv4 address, or an IPv6 /64: one subscriber usually
 * holds a whole /64, so keying on full IPv6 addresses would give one
 * client 2^64 buckets) has a bucket of `burst` tokens that refills at
 * `rate` tokens a second; a request takes one, and a request that finds
 * less than one is refused with the whole seconds after which one will be
 * there (Retry-After).
 *
 * Memory is fixed when the limiter is created: a set-associative table
 * (RATELIMIT_WAYS entries per set, the set chosen by a hash seeded at
 * random, so a client cannot aim at one set).  A client not in the table
 * takes the entry of its set that has the most tokens now, i.e. the one
 * whose loss forgives the least: an idle client's bucket has refilled
 * and carries no information, a throttled one has few tokens and is kept.
 * So a flood of new addresses evicts its own fresh entries, not the
 * throttled ones, and never grows memory.  (Ties: the one seen longest
 * ago.)  An evicted client that comes back starts with a full bucket.
 *
 * Thread-safe: one mutex, held for a lookup in one set.  Time is passed
 * in (milliseconds of a monotonic clock), so tests need no sleeping. */
#ifndef LODE_RATELIMIT_H
#define LODE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RATELIMIT_WAYS 8
/* Clients tracked by `lode serve`: 8,192 entries of 40 bytes (pages are
 * touched only as sets fill). */
#define RATELIMIT_DEFAULT_CLIENTS 8192

/* A client: 16 bytes, an IPv4 address as ::ffff:a.b.c.d, an IPv6 one cut
 * to its /64. */
typedef struct ratelimit_key {
    uint8_t bytes[16];
} ratelimit_key;

/* The key of a numeric address ("203.0.113.7", "2001:db8::1",
 * "::ffff:203.0.113.7"); LODE_EINVAL when it is not one. */
int ratelimit_key_parse(const char *addr, ratelimit_key *out);
/* Is the key a loopback address (127.0.0.0/8, ::1)? */
bool ratelimit_key_is_loopback(const ratelimit_key *key);

typedef struct ratelimit ratelimit;

/* rate: tokens a second (> 0); burst: the bucket's size (>= 1);
 * clients: entries, rounded up to whole sets. */
int ratelimit_create(double rate, int burst, size_t clients,
                     ratelimit **out, lode_error *err);
void ratelimit_free(ratelimit *rl);

/* Take a token for `key` at `now_ms`.  True when the request may go on;
 * false when the client is over its limit, with *retry_after_s set to the
 * whole seconds until a token is back (at least 1). */
bool ratelimit_take(ratelimit *rl, const ratelimit_key *key, int64_t now_ms,
                    int *retry_after_s);

typedef struct ratelimit_stats {
    size_t capacity;     /* entries */
    size_t used;         /* entries holding a client */
    uint64_t evictions;  /* clients dropped to make room */
    uint64_t refused;    /* requests over the limit */
} ratelimit_stats;
void ratelimit_get_stats(ratelimit *rl, ratelimit_stats *out);

#endif
