/* fmtfloat.c - printf("%.9g") for floats, exactly and fast.
 *
 * A finite float is m * 2^e with an integer m < 2^24.  Its nine significant
 * digits are the integer D = round(|f| * 10^(8 - X)) in [10^8, 10^9), X
 * being the decimal exponent, and that product is computed exactly in
 * integers: for X <= 8 it is m * 5^s * 2^(e + s) with s = 8 - X, a
 * multiplication and a shift; for X > 8 it is (m << e) / 10^(X - 8), a
 * division.  The bits shifted or divided away decide the rounding, half
 * to even, which is what glibc's printf does with the exact binary value
 * in the default rounding mode.  X is estimated from the binary exponent
 * (floor(log10 2^E), at most one low) and corrected by comparing f with
 * the smallest float >= 10^(X+1), from a table, rather than by trying
 * and retrying, a branch that typical values would take at random.  D
 * may still round up to 10^9, which then reads 1.00000000 * 10^(X+1).
 *
 * Why integers and not a shortest-digits algorithm (Ryu, Grisu): the
 * output must match printf's fixed nine digits byte for byte, trailing
 * digits included; shortest round-trip digits are a different string.
 * Every finite float takes this path, from denormals (s up to 53: a
 * 24 x 124-bit product, kept as 128 + 64 bits) to FLT_MAX (m << 104 still
 * fits 128 bits); only NaN and infinity go to snprintf, for its spelling.
 */
#include "fmtfloat.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

/* 5^0 .. 5^27, the powers of five that fit 64 bits. */
static const uint64_t pow5[28] = {
    UINT64_C(1), UINT64_C(5), UINT64_C(25), UINT64_C(125), UINT64_C(625),
    UINT64_C(3125), UINT64_C(15625), UINT64_C(78125), UINT64_C(390625),
    UINT64_C(1953125), UINT64_C(9765625), UINT64_C(48828125),
    UINT64_C(244140625), UINT64_C(1220703125), UINT64_C(6103515625),
    UINT64_C(30517578125), UINT64_C(152587890625), UINT64_C(762939453125),
    UINT64_C(3814697265625), UINT64_C(19073486328125),
    UINT64_C(95367431640625), UINT64_C(476837158203125),
    UINT64_C(2384185791015625), UINT64_C(11920928955078125),
    UINT64_C(59604644775390625), UINT64_C(298023223876953125),
    UINT64_C(1490116119384765625), UINT64_C(7450580596923828125),
};

/* The bits of the smallest float >= 10^k, for k = -44 .. 39 (exact
 * rational arithmetic; 10^39 is over FLT_MAX: infinity's bits). */
static const uint32_t pow10_ceil_bits[84] = {
    0x00000008, 0x00000048, 0x000002ca, 0x00001be1, 0x000116c3, 0x000ae398,
    0x006ce3ef, 0x02081ceb, 0x03aa2425, 0x0554ad2e, 0x0704ec3d, 0x08a6274c,
    0x0a4fb11f, 0x0c01ceb4, 0x0da24260, 0x0f4ad2f8, 0x10fd87b6, 0x129e74d2,
    0x14461207, 0x15f79688, 0x179abe15, 0x19416d9b, 0x1af1c901, 0x1c971da1,
    0x1e3ce509, 0x1fec1e4b, 0x219392ef, 0x233877ab, 0x24e69595, 0x26901d7d,
    0x283424dd, 0x29e12e14, 0x2b8cbccd, 0x2d2fec00, 0x2edbe6ff, 0x30897060,
    0x322bcc78, 0x33d6bf95, 0x358637be, 0x3727c5ad, 0x38d1b718, 0x3a83126f,
    0x3c23d70b, 0x3dcccccd, 0x3f800000, 0x41200000, 0x42c80000, 0x447a0000,
    0x461c4000, 0x47c35000, 0x49742400, 0x4b189680, 0x4cbebc20, 0x4e6e6b28,
    0x501502f9, 0x51ba43b8, 0x5368d4a6, 0x551184e8, 0x56b5e621, 0x58635faa,
    0x5a0e1bca, 0x5bb1a2bd, 0x5d5e0b6c, 0x5f0ac724, 0x60ad78ec, 0x6258d727,
    0x64078679, 0x65a96817, 0x6753c21c, 0x69045952, 0x6aa56fa6, 0x6c4ecb90,
    0x6e013f3a, 0x6fa18f08, 0x7149f2ca, 0x72fc6f7d, 0x749dc5ae, 0x7645371a,
    0x77f684e0, 0x799a130c, 0x7b4097cf, 0x7cf0bdc3, 0x7e96769a, 0x7f800000,
};

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

static u128 pow5_128(int s)
{
    return s <= 27 ? pow5[s] : (u128)pow5[27] * pow5[s - 27];
}

/* round(p / 2^k), ties to even, for 1 <= k <= 127; `sticky` says nonzero
 * bits lie below p (they break a tie upwards). */
static uint64_t shift_round(u128 p, int k, int sticky)
{
    u128 q = p >> k;
    u128 rem = p & (((u128)1 << k) - 1);
    u128 half = (u128)1 << (k - 1);
    if (rem > half || (rem == half && (sticky || (q & 1))))
        q++;
    return (uint64_t)q;
}

/* round(m * 2^e * 10^s), ties to even, for a result below 2^34. */
static uint64_t scaled(uint32_t m, int e, int s)
{
    if (s < 0) {
        /* |f| >= 10^9: e >= 6 here, and m << e < 2^128 up to FLT_MAX.
         * No float this large is an exact tie: that would be
         * (2D+1) * 5^t * 2^(t-1), t = -s, whose odd part exceeds 2 * 10^8,
         * more than a 24-bit mantissa holds.  So the tie rule here is
         * only for the record; no test can tell it apart. */
        u128 p = (u128)m << e;
        u128 p10 = pow5_128(-s) << -s;
        u128 q = p / p10, rem = p - q * p10, half = p10 >> 1;
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint64_t)q;
    }
    int shift = e + s;   /* m * 5^s * 2^shift */
    if (s <= 16 && shift < 0) {
        /* The usual case, 10^-8 <= |f| < 10^9 with bits to cut off, in 64
         * bits (m * 5^16 < 2^62): adding half - 1 and the kept lowest bit
         * carries into the result exactly when the cut-off part is over
         * half, or half with an odd result; no branch on data that goes
         * either way. */
        uint64_t p = (uint64_t)m * pow5[s];
        int k = -shift;
        return (p + (UINT64_C(1) << (k - 1)) - 1 + ((p >> k) & 1)) >> k;
    }
    if (s <= 27) {
        u128 p = (u128)m * pow5[s];   /* < 2^87 */
        if (shift >= 0)
            return (uint64_t)(p << shift);   /* an integer, exact */
        return shift_round(p, -shift, 0);
    }
    /* |f| < 10^-19: m * 5^s needs up to 148 bits, as top * 2^64 + low;
     * the shift is then over 90 bits (5^28 > 2^64 alone), and when top
     * alone does not fit 64 bits, low only matters as sticky bits.  (No
     * float actually lands on that sticky case: counted over all of them.) */
    u128 p5 = pow5_128(s);
    u128 a = (u128)m * (uint64_t)p5;
    u128 b = (u128)m * (uint64_t)(p5 >> 64);
    u128 top = b + (a >> 64);
    uint64_t low = (uint64_t)a;
    int k = -shift;
    if ((top >> 64) == 0)
        return shift_round((top << 64) | low, k, 0);
    return shift_round(top, k - 64, low != 0);
}

/* floor(log10(2^e2)) for |e2| < 1650, without relying on >> of a
 * negative int. */
static int floor_log10_pow2(int e2)
{
    int t = e2 * 78913;   /* 78913 / 2^18 ~ log10(2) */
    return t >= 0 ? t >> 18 : -((-t + (1 << 18) - 1) >> 18);
}

int fmtfloat_g9(float f, char *buf)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint32_t biased = (bits >> 23) & 0xff, frac = bits & 0x7fffff;
    if (biased == 0xff)   /* NaN, infinity: printf's spelling */
        return snprintf(buf, FMTFLOAT_G9_SIZE, "%.9g", (double)f);
    char *p = buf;
    *p = '-';
    p += bits >> 31;
    if (biased == 0 && frac == 0) {
        *p++ = '0';
        *p = '\0';
        return (int)(p - buf);
    }
    uint32_t m = biased ? frac | 0x800000 : frac;
    int e = biased ? (int)biased - 150 : -149;
    int x = floor_log10_pow2(e + 31 - __builtin_clz(m));   /* -45 .. 38 */
    x += (bits & 0x7fffffff) >= pow10_ceil_bits[x + 45];   /* 10^(x+1) */
    uint64_t d = scaled(m, e, 8 - x);
    if (d == 1000000000) {   /* 9.999999995.. and up: rounds to 10^(x+1) */
        d = 100000000;
        x++;
    }

    /* The nine digits: the first, then the other eight as the bytes of
     * one 64-bit word, digit 2 in the lowest byte, divided out in lanes
     * of one register (2 x 4 digits, 4 x 2, 8 x 1) instead of one at a
     * time.  Trailing zero digits are then zero bytes at the top, which
     * a clz counts: no loop, no branch. */
    uint32_t d32 = (uint32_t)d, rest = d32 % 100000000;
    char first = (char)('0' + d32 / 100000000);
    uint64_t lanes = rest / 10000 | (uint64_t)(rest % 10000) << 32;
    uint64_t hundreds = (lanes * 10486 >> 20) & UINT64_C(0x0000007f0000007f);
    lanes = hundreds | (lanes - 100 * hundreds) << 16;
    uint64_t tens = (lanes * 103 >> 10) & UINT64_C(0x000f000f000f000f);
    lanes = tens | (lanes - 10 * tens) << 8;   /* the values 0 .. 9 */
    int ndig = 9 - (lanes ? __builtin_clzll(lanes) >> 3 : 8);
    uint64_t ascii = lanes | UINT64_C(0x3030303030303030);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    ascii = __builtin_bswap64(ascii);   /* lowest byte first in memory */
#endif

    /* Fixed-size stores, some past the end of the result, all inside
     * FMTFLOAT_G9_SIZE bytes (the longest result is 15 and a NUL). */
    if (x < -4 || x > 8) {   /* d.dddddddde+XX */
        p[0] = first;
        p[1] = '.';
        memcpy(p + 2, &ascii, 8);
        p += ndig > 1 ? ndig + 1 : 1;
        p[0] = 'e';
        p[1] = x < 0 ? '-' : '+';
        memcpy(p + 2, digit_pairs + 2 * (x < 0 ? -x : x), 2);  /* |x| <= 45 */
        p += 4;
    } else if (x < 0) {   /* 0.000ddddddddd */
        memcpy(p, "0.000000", 8);
        p += 1 - x;
        p[0] = first;
        memcpy(p + 1, &ascii, 8);
        p += ndig;
    } else {   /* x + 1 integer digits, zeros kept, then any fraction */
        char rest_digits[8];
        memcpy(rest_digits, &ascii, 8);
        p[0] = first;
        memcpy(p + 1, rest_digits, 8);
        if (ndig > x + 1) {
            p[x + 1] = '.';
            memcpy(p + x + 2, rest_digits + x, (size_t)(ndig - x - 1));
            p += ndig + 1;
        } else {
            p += x + 1;
        }
    }
    *p = '\0';
    return (int)(p - buf);
}
