/* ratelimit.c - token buckets in a fixed set-associative table (see
 * ratelimit.h).
 *
 * A bucket stores its tokens as of `seen_ms`; the refill is computed when
 * the bucket is next looked at (tokens + rate * elapsed, capped at the
 * burst), so nothing runs in the background and an idle entry costs
 * nothing but its 40 bytes. */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct bucket {
    ratelimit_key key;
    double tokens;       /* as of seen_ms */
    int64_t seen_ms;     /* the last request; 0 with used false */
    bool used;
} bucket;

struct ratelimit {
    pthread_mutex_t lock;
    double rate;         /* tokens a second */
    double burst;
    size_t n_sets;
    uint64_t seed[2];
    bucket *table;       /* n_sets * RATELIMIT_WAYS */
    size_t used;
    uint64_t evictions, refused;
};

int ratelimit_key_parse(const char *addr, ratelimit_key *out)
{
    memset(out, 0, sizeof *out);
    struct in_addr a4;
    if (addr && inet_pton(AF_INET, addr, &a4) == 1) {
        out->bytes[10] = out->bytes[11] = 0xff;   /* ::ffff:a.b.c.d */
        memcpy(out->bytes + 12, &a4, 4);
        return 0;
    }
    struct in6_addr a6;
    if (!addr || inet_pton(AF_INET6, addr, &a6) != 1)
        return LODE_EINVAL;
    memcpy(out->bytes, &a6, 16);
    /* an IPv4-mapped address is that IPv4 address; any other is its /64 */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    bool is_loopback = IN6_IS_ADDR_LOOPBACK(&a6);
    if (memcmp(out->bytes, mapped, 12) != 0 && !is_loopback)
        memset(out->bytes + 8, 0, 8);
    return 0;
}

bool ratelimit_key_is_loopback(const ratelimit_key *key)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(key->bytes, v6_loopback, 16) == 0)
        return true;
    return memcmp(key->bytes, mapped, 12) == 0 && key->bytes[12] == 127;
}

int ratelimit_create(double rate, int burst, size_t clients,
                     ratelimit **out, lode_error *err)
{
    *out = NULL;
    if (!(rate > 0) || !isfinite(rate) || burst < 1)
        return lode_error_set(err, LODE_EINVAL,
                              "a rate limit needs a rate above 0 and a burst "
                              "of at least 1 (got %g and %d)", rate, burst);
    size_t n_sets = (clients + RATELIMIT_WAYS - 1) / RATELIMIT_WAYS;
    if (n_sets == 0)
        n_sets = 1;
    ratelimit *rl = calloc(1, sizeof *rl);
    bucket *table = rl ? calloc(n_sets * RATELIMIT_WAYS, sizeof *table) : NULL;
    if (!table) {
        free(rl);
        return lode_error_set(err, LODE_ENOMEM, "out of memory for the rate "
                              "limiter's %zu clients", clients);
    }
    pthread_mutex_init(&rl->lock, NULL);
    rl->rate = rate;
    rl->burst = burst;
    rl->n_sets = n_sets;
    rl->table = table;
    if (getrandom(rl->seed, sizeof rl->seed, GRND_NONBLOCK) !=
        (ssize_t)sizeof rl->seed) {
        struct timespec ts;   /* no entropy yet (early boot): the clock */
        clock_gettime(CLOCK_REALTIME, &ts);
        rl->seed[0] = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32;
        rl->seed[1] = (uint64_t)(uintptr_t)rl;
    }
    *out = rl;
    return 0;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->table);
    free(rl);
}

/* splitmix64's finaliser */
static uint64_t mix(uint64_t v)
{
    v = (v ^ v >> 30) * 0xBF58476D1CE4E5B9ull;
    v = (v ^ v >> 27) * 0x94D049BB133111EBull;
    return v ^ v >> 31;
}

static size_t set_of(const ratelimit *rl, const ratelimit_key *key)
{
    uint64_t hi, lo;
    memcpy(&hi, key->bytes, 8);
    memcpy(&lo, key->bytes + 8, 8);
    return (size_t)(mix(mix(hi ^ rl->seed[0]) ^ lo ^ rl->seed[1]) % rl->n_sets);
}

/* A bucket's tokens at now_ms. */
static double tokens_at(const ratelimit *rl, const bucket *b, int64_t now_ms)
{
    double elapsed = now_ms > b->seen_ms ? (double)(now_ms - b->seen_ms) : 0;
    double t = b->tokens + rl->rate * elapsed / 1000.0;
    return t < rl->burst ? t : rl->burst;
}

bool ratelimit_take(ratelimit *rl, const ratelimit_key *key, int64_t now_ms,
                    int *retry_after_s)
{
    pthread_mutex_lock(&rl->lock);
    bucket *set = rl->table + set_of(rl, key) * RATELIMIT_WAYS;
    bucket *b = NULL, *victim = NULL;
    double victim_tokens = -1;
    for (int w = 0; w < RATELIMIT_WAYS && !b; w++) {
        bucket *e = &set[w];
        if (e->used && memcmp(&e->key, key, sizeof *key) == 0) {
            b = e;
            break;
        }
        /* a free entry beats any; else the most tokens, then the oldest */
        double t = e->used ? tokens_at(rl, e, now_ms) : rl->burst + 1;
        if (!victim || t > victim_tokens ||
            (t == victim_tokens && e->seen_ms < victim->seen_ms)) {
            victim = e;
            victim_tokens = t;
        }
    }
    if (!b) {
        if (victim->used)
            rl->evictions++;
        else
            rl->used++;
        b = victim;
        b->key = *key;
        b->used = true;
        b->tokens = rl->burst;
        b->seen_ms = now_ms;
    }
    double t = tokens_at(rl, b, now_ms);
    b->seen_ms = now_ms > b->seen_ms ? now_ms : b->seen_ms;
    bool ok = t >= 1.0;
    if (ok) {
        b->tokens = t - 1.0;
    } else {
        b->tokens = t;
        rl->refused++;
        double wait = ceil((1.0 - t) / rl->rate);
        *retry_after_s = wait < 1 ? 1 : wait > 86400 ? 86400 : (int)wait;
    }
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

void ratelimit_get_stats(ratelimit *rl, ratelimit_stats *out)
{
    pthread_mutex_lock(&rl->lock);
    out->capacity = rl->n_sets * RATELIMIT_WAYS;
    out->used = rl->used;
    out->evictions = rl->evictions;
    out->refused = rl->refused;
    pthread_mutex_unlock(&rl->lock);
}
