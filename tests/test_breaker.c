/* test_breaker.c - the circuit breaker (breaker.c) with a fake clock:
 * opens after N consecutive failures and not before, a success resets the
 * run, refuses during the cool-down, lets exactly one probe through after
 * it, closes on the probe's success and reopens on its failure; an
 * abandoned probe frees the slot. */
#include "test.h"
#include "breaker.h"

static void test_opens_after_n(void)
{
    breaker b;
    breaker_init(&b, 3, 1000);
    int64_t t = 0;
    for (int i = 0; i < 2; i++) {
        CHECK(breaker_allow(&b, t), "closed allows");
        breaker_record(&b, false, t);
    }
    breaker_snapshot s;
    breaker_get(&b, t, &s);
    CHECK(s.state == BREAKER_CLOSED && s.consecutive_failures == 2,
          "two failures: still closed (%d, %d)", s.state, s.consecutive_failures);
    CHECK(breaker_allow(&b, t), "third call allowed");
    breaker_record(&b, true, t);
    breaker_get(&b, t, &s);
    CHECK(s.consecutive_failures == 0, "a success resets the run");
    for (int i = 0; i < 3; i++) {
        CHECK(breaker_allow(&b, t), "allowed %d", i);
        breaker_record(&b, false, t);
    }
    breaker_get(&b, t + 10, &s);
    CHECK(s.state == BREAKER_OPEN && s.retry_in_ms == 990 && s.opens == 1,
          "open, retry in %lld", (long long)s.retry_in_ms);
    CHECK(!breaker_allow(&b, t + 999), "refused in the cool-down");
    breaker_get(&b, t + 1000, &s);
    CHECK(s.state == BREAKER_HALF_OPEN, "half-open once cooled down");
    CHECK(breaker_allow(&b, t + 1000), "the probe goes");
    CHECK(!breaker_allow(&b, t + 1001), "only one probe");
    breaker_record(&b, false, t + 1500);
    breaker_get(&b, t + 1500, &s);
    CHECK(s.state == BREAKER_OPEN && s.retry_in_ms == 1000 && s.opens == 2,
          "probe failed: open again");
    CHECK(!breaker_allow(&b, t + 2499), "new cool-down");
    CHECK(breaker_allow(&b, t + 2500), "second probe");
    breaker_record(&b, true, t + 2600);
    breaker_get(&b, t + 2600, &s);
    CHECK(s.state == BREAKER_CLOSED && s.consecutive_failures == 0,
          "probe succeeded: closed");
    CHECK(breaker_allow(&b, t + 2600) && breaker_allow(&b, t + 2600),
          "closed lets everything through");
    breaker_destroy(&b);
}

static void test_abandon(void)
{
    breaker b;
    breaker_init(&b, 1, 100);
    CHECK(breaker_allow(&b, 0), "first");
    breaker_record(&b, false, 0);
    CHECK(breaker_allow(&b, 100), "probe");
    breaker_abandon(&b);
    CHECK(breaker_allow(&b, 101), "abandoned probe frees the slot");
    breaker_record(&b, true, 102);
    breaker_snapshot s;
    breaker_get(&b, 102, &s);
    CHECK(s.state == BREAKER_CLOSED, "closed");
    breaker_destroy(&b);
    breaker_init(&b, 0, -1);
    CHECK(b.failures == BREAKER_DEFAULT_FAILURES &&
          b.cooldown_ms == BREAKER_DEFAULT_COOLDOWN_MS, "defaults");
    breaker_destroy(&b);
}

int main(void)
{
    test_opens_after_n();
    test_abandon();
    TEST_MAIN_END();
}
