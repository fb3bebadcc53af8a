/* test_ratelimit.c - the token buckets (src/ratelimit.c): keys of IPv4,
 * IPv6 (/64) and mapped addresses, loopback, a burst then refusal with
 * Retry-After, the refill over (injected) time, clients kept apart, a
 * flood of distinct addresses that leaves memory fixed and the throttled
 * client throttled, eviction of the fullest bucket, and concurrent takes that never hand out more tokens
 * than the bucket holds. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"
#include "test.h"

static ratelimit_key key_of(const char *addr)
{
    ratelimit_key k;
    int rc = ratelimit_key_parse(addr, &k);
    CHECK(rc == 0, "parse %s: %d", addr, rc);
    return k;
}

static void test_keys(void)
{
    ratelimit_key a = key_of("203.0.113.7"), b = key_of("::ffff:203.0.113.7");
    CHECK(memcmp(&a, &b, sizeof a) == 0, "IPv4 and its mapped form are one");
    ratelimit_key c = key_of("2001:db8:1:2:aaaa::1"),
                  d = key_of("2001:db8:1:2:bbbb::2"),
                  e = key_of("2001:db8:1:3::1");
    CHECK(memcmp(&c, &d, sizeof c) == 0, "one /64 is one client");
    CHECK(memcmp(&c, &e, sizeof c) != 0, "another /64 is another");
    CHECK(memcmp(&a, &c, sizeof a) != 0, "IPv4 is not IPv6");
    ratelimit_key k;
    CHECK(ratelimit_key_parse("not an address", &k) == LODE_EINVAL, "text");
    CHECK(ratelimit_key_parse("", &k) == LODE_EINVAL, "empty");
    CHECK(ratelimit_key_parse(NULL, &k) == LODE_EINVAL, "NULL");
    CHECK(ratelimit_key_parse("203.0.113.7:80", &k) == LODE_EINVAL, "port");

    const char *loop[] = {"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof loop / sizeof *loop; i++) {
        k = key_of(loop[i]);
        CHECK(ratelimit_key_is_loopback(&k), "%s is loopback", loop[i]);
    }
    const char *other[] = {"128.0.0.1", "10.0.0.1", "::2", "::", "fe80::1",
                           "::ffff:10.0.0.127"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        k = key_of(other[i]);
        CHECK(!ratelimit_key_is_loopback(&k), "%s is not loopback", other[i]);
    }
}

static void test_create_refuses_nonsense(void)
{
    ratelimit *rl = NULL;
    lode_error err = {0};
    CHECK(ratelimit_create(0, 1, 16, &rl, &err) == LODE_EINVAL && !rl,
          "rate 0");
    CHECK(ratelimit_create(1, 0, 16, &rl, &err) == LODE_EINVAL && !rl,
          "burst 0");
    CHECK(ratelimit_create(-1, 5, 16, &rl, &err) == LODE_EINVAL && err.message[0],
          "negative rate: %s", err.message);
}

static void test_burst_then_refill(void)
{
    ratelimit *rl;
    CHECK(ratelimit_create(2, 5, 64, &rl, NULL) == 0, "create");
    ratelimit_key k = key_of("198.51.100.1");
    int64_t t = 1000000;
    int retry = -1;
    for (int i = 0; i < 5; i++)
        CHECK(ratelimit_take(rl, &k, t, &retry), "burst request %d", i + 1);
    retry = -1;
    CHECK(!ratelimit_take(rl, &k, t, &retry), "the 6th is refused");
    CHECK(retry == 1, "a token is back within 1 s at 2/s: %d", retry);
    /* 400 ms later: 0.8 tokens, still refused, still 1 s */
    CHECK(!ratelimit_take(rl, &k, t + 400, &retry) && retry == 1,
          "0.8 tokens: %d", retry);
    /* 500 ms after the burst: exactly one token */
    CHECK(ratelimit_take(rl, &k, t + 500, &retry), "refilled one");
    CHECK(!ratelimit_take(rl, &k, t + 500, &retry), "and only one");
    /* a long idle time refills to the burst, not beyond */
    int64_t later = t + 3600 * 1000;
    int ok = 0;
    for (int i = 0; i < 20; i++)
        ok += ratelimit_take(rl, &k, later, &retry);
    CHECK(ok == 5, "an hour idle gives the burst back, not more: %d", ok);
    /* a clock that goes backwards gives nothing and breaks nothing */
    CHECK(!ratelimit_take(rl, &k, later - 10000, &retry) && retry >= 1,
          "clock backwards");
    ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    CHECK(st.used == 1 && st.evictions == 0 && st.refused == 1 + 1 + 1 + 15 + 1,
          "stats: used %zu evictions %llu refused %llu", st.used,
          (unsigned long long)st.evictions, (unsigned long long)st.refused);
    ratelimit_free(rl);
}

static void test_slow_rate_retry_after(void)
{
    ratelimit *rl;
    CHECK(ratelimit_create(0.1, 1, 8, &rl, NULL) == 0, "create");
    ratelimit_key k = key_of("198.51.100.2");
    int retry = -1;
    CHECK(ratelimit_take(rl, &k, 0, &retry), "the one");
    CHECK(!ratelimit_take(rl, &k, 0, &retry) && retry == 10,
          "one a 10 s: retry after %d", retry);
    CHECK(!ratelimit_take(rl, &k, 2500, &retry) && retry == 8,
          "2.5 s later: %d", retry);
    CHECK(ratelimit_take(rl, &k, 10000, &retry), "10 s later");
    ratelimit_free(rl);
}

static void test_clients_apart(void)
{
    ratelimit *rl;
    CHECK(ratelimit_create(1, 2, 64, &rl, NULL) == 0, "create");
    ratelimit_key a = key_of("192.0.2.1"), b = key_of("192.0.2.2");
    int retry;
    CHECK(ratelimit_take(rl, &a, 0, &retry) && ratelimit_take(rl, &a, 0, &retry),
          "a's burst");
    CHECK(!ratelimit_take(rl, &a, 0, &retry), "a is throttled");
    CHECK(ratelimit_take(rl, &b, 0, &retry) && ratelimit_take(rl, &b, 0, &retry),
          "b is not");
    ratelimit_free(rl);
}

/* 100,000 distinct addresses through a table of 64: memory stays 64
 * entries, and a client that is throttled stays throttled (its entry has
 * the fewest tokens, the flood's fresh entries more). */
static void test_flood_is_bounded(void)
{
    ratelimit *rl;
    CHECK(ratelimit_create(1, 10, 64, &rl, NULL) == 0, "create");
    ratelimit_key victim = key_of("192.0.2.77");
    int retry, t = 0;
    for (int i = 0; i < 10; i++)
        ratelimit_take(rl, &victim, t, &retry);
    CHECK(!ratelimit_take(rl, &victim, t, &retry), "throttled before");
    for (int i = 0; i < 100000; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255,
                 i & 255);
        ratelimit_key k;
        ratelimit_key_parse(addr, &k);
        ratelimit_take(rl, &k, t, &retry);
    }
    ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    CHECK(st.capacity == 64 && st.used == 64, "capacity %zu used %zu",
          st.capacity, st.used);
    CHECK(st.evictions >= 100000 - 64, "evictions %llu",
          (unsigned long long)st.evictions);
    CHECK(!ratelimit_take(rl, &victim, t, &retry),
          "the throttled client is still throttled after the flood");
    ratelimit_free(rl);
}

/* One set of 8: seven throttled clients and one that has refilled; a
 * newcomer takes the refilled one's entry (nothing is lost: it would have
 * a full bucket either way), never a throttled one's. */
static void test_eviction_takes_the_fullest(void)
{
    ratelimit *rl;
    CHECK(ratelimit_create(1, 3, RATELIMIT_WAYS, &rl, NULL) == 0, "create");
    ratelimit_key k[RATELIMIT_WAYS];
    int retry;
    for (int i = 0; i < RATELIMIT_WAYS; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "192.0.2.%d", i + 1);
        k[i] = key_of(addr);
        int takes = i < RATELIMIT_WAYS - 1 ? 3 : 1;
        for (int n = 0; n < takes; n++)
            ratelimit_take(rl, &k[i], 0, &retry);
    }
    ratelimit_key newcomer = key_of("198.51.100.9");
    CHECK(ratelimit_take(rl, &newcomer, 100, &retry), "the newcomer's first");
    for (int i = 0; i < RATELIMIT_WAYS - 1; i++)
        CHECK(!ratelimit_take(rl, &k[i], 100, &retry), "client %d kept", i);
    ratelimit_stats st;
    ratelimit_get_stats(rl, &st);
    CHECK(st.evictions == 1 && st.used == RATELIMIT_WAYS, "evictions %llu",
          (unsigned long long)st.evictions);
    ratelimit_free(rl);
}

typedef struct taker {
    ratelimit *rl;
    ratelimit_key key;
    int granted;
} taker;

static void *take_many(void *arg)
{
    taker *t = arg;
    int retry;
    for (int i = 0; i < 10000; i++)
        t->granted += ratelimit_take(t->rl, &t->key, 5000, &retry);
    return NULL;
}

static void test_threads(void)
{
    ratelimit *rl;
    CHECK(ratelimit_create(1, 100, 64, &rl, NULL) == 0, "create");
    enum { N = 8 };
    pthread_t th[N];
    taker t[N];
    for (int i = 0; i < N; i++) {
        t[i] = (taker){rl, key_of("192.0.2.200"), 0};
        pthread_create(&th[i], NULL, take_many, &t[i]);
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        total += t[i].granted;
    }
    CHECK(total == 100, "8 threads at one instant got %d of a burst of 100",
          total);
    ratelimit_free(rl);
}

int main(void)
{
    test_keys();
    test_create_refuses_nonsense();
    test_burst_then_refill();
    test_slow_rate_retry_after();
    test_clients_apart();
    test_flood_is_bounded();
    test_eviction_takes_the_fullest();
    test_threads();
    TEST_MAIN_END();
}
