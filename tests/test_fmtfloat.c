/* test_fmtfloat.c - fmtfloat_g9 against snprintf("%.9g"), byte for byte:
 * the special values, a whole binade (every float in [2^-14, 2^-13),
 * which holds the switch from d.dddddddde-05 to 0.000ddddddddd and an
 * exact tie), every fifth float of [0.5, 1), the denormals, powers of
 * ten and the floats either side of them and of 9.9999999995 * 10^k
 * (where nine digits round up to the next power), every exact tie at the
 * tenth digit that a float can be (sampled where there are millions), a
 * stride over all bit patterns and random bit patterns (fixed seed).
 * A few expected strings are spelled out too, so that a reference
 * snprintf that rounded ties away from zero would be noticed.
 *
 * Each group counts as one check and reports its first mismatches; the
 * number of floats compared is printed at the end. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fmtfloat.h"
#include "test.h"

static long floats_compared;

static float from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Compare one float; returns 1 on a mismatch, printing the first few of
 * the group (`shown` counts them). */
static int differs(float f, int *shown)
{
    char want[64], got[FMTFLOAT_G9_SIZE + 16];
    memset(got, 'X', sizeof got);
    int want_len = snprintf(want, sizeof want, "%.9g", (double)f);
    int got_len = fmtfloat_g9(f, got);
    floats_compared++;
    /* the NUL included, and nothing written past FMTFLOAT_G9_SIZE */
    if (got_len == want_len && memcmp(got, want, (size_t)want_len + 1) == 0 &&
        got[FMTFLOAT_G9_SIZE] == 'X')
        return 0;
    if ((*shown)++ < 5)
        fprintf(stderr, "  bits %08x: snprintf \"%s\" (%d), fmtfloat \"%.*s\" (%d)\n",
                (unsigned)to_bits(f), want, want_len,
                got_len >= 0 && got_len < FMTFLOAT_G9_SIZE ? got_len : 0, got,
                got_len);
    return 1;
}

/* Every bit pattern first, first + stride, ... below end. */
static long range(uint32_t first, uint32_t end, uint32_t stride)
{
    long bad = 0;
    int shown = 0;
    for (uint64_t b = first; b < end; b += stride)
        bad += differs(from_bits((uint32_t)b), &shown);
    return bad;
}

static void test_spelled_out(void)
{
    static const struct {
        float f;
        const char *want;
    } cases[] = {
        {0.0f, "0"},
        {-0.0f, "-0"},
        {1.0f, "1"},
        {-2.5f, "-2.5"},
        {100000000.0f, "100000000"},
        {1e9f, "1e+09"},
        {0.0001f, "9.99999975e-05"},
        {0.00010001f, "0.000100010002"},
        {0.1f, "0.100000001"},
        {FLT_MAX, "3.40282347e+38"},
        {FLT_MIN, "1.17549435e-38"},
        {0x1p-149f, "1.40129846e-45"},
        /* exact ties at the tenth digit: to even */
        {1000000.125f, "1000000.12"},
        {1000000.375f, "1000000.38"},
        {0x1p-13f, "0.000122070312"},    /* 0.0001220703125 */
        {0x1p-14f, "6.10351562e-05"},    /* 6.103515625e-05 */
        {0x3p-13f, "0.000366210938"},    /* 0.0003662109375 */
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[FMTFLOAT_G9_SIZE];
        int len = fmtfloat_g9(cases[i].f, got);
        CHECK(strcmp(got, cases[i].want) == 0 && len == (int)strlen(got),
              "%s: got \"%s\" (%d)", cases[i].want, got, len);
    }
    char nan_buf[FMTFLOAT_G9_SIZE];
    fmtfloat_g9(NAN, nan_buf);
    CHECK(strcmp(nan_buf, "nan") == 0 || strcmp(nan_buf, "-nan") == 0,
          "NAN: \"%s\"", nan_buf);
}

static void test_specials(void)
{
    const float specials[] = {
        0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, from_bits(0x7fc00001),
        from_bits(0xff800001), FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX,
        FLT_EPSILON, 0x1p-149f, -0x1p-149f, from_bits(0x007fffff),
        from_bits(0x807fffff), nextafterf(FLT_MIN, 0), nextafterf(FLT_MIN, 1),
        nextafterf(FLT_MAX, 0), 1.0f, -1.0f, 0.5f, 2.0f, 16777216.0f,
        16777215.0f, 999999999.0f, 999999940.0f, 1e9f, 4294967296.0f,
    };
    long bad = 0;
    int shown = 0;
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        bad += differs(specials[i], &shown);
    CHECK(bad == 0, "%ld special values differ", bad);
}

static void test_binades(void)
{
    long bad = range(to_bits(0x1p-14f), to_bits(0x1p-13f), 1);
    CHECK(bad == 0, "%ld floats in [2^-14, 2^-13) differ", bad);
    bad = range(to_bits(0.5f), to_bits(1.0f), 5);
    CHECK(bad == 0, "%ld of every 5th float in [0.5, 1) differ", bad);
    bad = range(to_bits(-0.5f), to_bits(-1.0f), 17);
    CHECK(bad == 0, "%ld of every 17th float in (-1, -0.5] differ", bad);
}

static void test_denormals(void)
{
    long bad = range(1, 4096, 1) + range(0x007ff000, 0x00800000, 1) +
               range(4096, 0x007ff000, 37) + range(0x80000001, 0x80001000, 1);
    CHECK(bad == 0, "%ld denormals differ", bad);
}

/* 10^k and 9.9999999995 * 10^k for every k a float reaches, with the
 * four floats either side, both signs. */
static void test_powers_of_ten(void)
{
    long bad = 0;
    int shown = 0;
    for (int k = -46; k <= 38; k++) {
        for (int which = 0; which < 2; which++) {
            char text[32];
            snprintf(text, sizeof text, which ? "9.9999999995e%d" : "1e%d", k);
            float center = strtof(text, NULL);
            if (center == 0 || isinf(center))
                continue;
            float below = center, above = center;
            bad += differs(center, &shown) + differs(-center, &shown);
            for (int i = 0; i < 4; i++) {
                below = nextafterf(below, 0);
                above = nextafterf(above, INFINITY);
                bad += differs(below, &shown) + differs(-below, &shown);
                if (!isinf(above))
                    bad += differs(above, &shown) + differs(-above, &shown);
            }
        }
    }
    CHECK(bad == 0, "%ld floats near powers of ten differ", bad);
}

/* A float whose tenth significant digit is an exact tie is
 * v = (2D+1) / (2 * 10^(8-X)) with D in [10^8, 10^9); for v to be a
 * float, 5^(8-X) must divide 2D+1 and leave an odd q < 2^24, so
 * v = q * 2^(X-9).  That happens for X = -5 .. 6 only.  All q are taken
 * where there are few, about 50000 spread evenly where there are more. */
static void test_ties(void)
{
    long bad = 0, ties = 0;
    int shown = 0;
    for (int x = -5; x <= 6; x++) {
        uint64_t p5 = 1;
        for (int i = 0; i < 8 - x; i++)
            p5 *= 5;
        uint64_t q_lo = (200000001 + p5 - 1) / p5;   /* 2D+1 >= 2*10^8+1 */
        uint64_t q_hi = 1999999999 / p5;             /* 2D+1 <= 2*10^9-1 */
        if (q_hi >= 1 << 24)
            q_hi = (1 << 24) - 1;
        q_lo |= 1;
        if (q_lo > q_hi)
            continue;
        uint64_t step = 2 * ((q_hi - q_lo) / 100000 + 1);
        for (uint64_t q = q_lo; q <= q_hi; q += step) {
            float v = ldexpf((float)q, x - 9);
            bad += differs(v, &shown) + differs(-v, &shown);
            ties++;
        }
        uint64_t q_last = (q_hi & 1) ? q_hi : q_hi - 1;   /* the top one */
        bad += differs(ldexpf((float)q_last, x - 9), &shown);
    }
    CHECK(ties > 100000, "only %ld ties", ties);
    CHECK(bad == 0, "%ld exact ties differ", bad);
}

static void test_all_exponents(void)
{
    /* a prime stride reaches every exponent with varied mantissas */
    long bad = range(0, UINT32_MAX, 4093);
    CHECK(bad == 0, "%ld of every 4093rd bit pattern differ", bad);
}

static void test_random(void)
{
    uint64_t state = 0x9e3779b97f4a7c15u;   /* xorshift64, fixed seed */
    long bad = 0;
    int shown = 0;
    for (int i = 0; i < 1000000; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bad += differs(from_bits((uint32_t)(state >> 32)), &shown);
    }
    CHECK(bad == 0, "%ld random bit patterns differ", bad);
}

int main(void)
{
    test_spelled_out();
    test_specials();
    test_binades();
    test_denormals();
    test_powers_of_ten();
    test_ties();
    test_all_exponents();
    test_random();
    printf("%ld floats compared with snprintf(\"%%.9g\")\n", floats_compared);
    TEST_MAIN_END();
}
