/* fuzz.h - the few helpers every libFuzzer driver in fuzz/ shares.
 *
 * FUZZ_CHECK(cond, fmt, ...) is an invariant of the code under test: when
 * it fails the driver prints what broke and aborts, which libFuzzer reports
 * as a crash and saves the input.  fuzz_touch() reads every byte of a range
 * the library handed out, so AddressSanitizer sees any view that runs past
 * the buffer (libFuzzer passes each input in a heap block of exactly its
 * size). */
#ifndef LODE_FUZZ_H
#define LODE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "FUZZ_CHECK failed %s:%d: %s: ", __FILE__,       \
                    __LINE__, #cond);                                        \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* The sum is stored in a volatile so the reads cannot be optimised away. */
static volatile uint8_t fuzz_sink;

static inline void fuzz_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc ^= b[i];
    fuzz_sink ^= acc;
}

/* True when [p, p+n) lies inside [base, base+len). */
static inline int fuzz_inside(const void *p, size_t n, const void *base,
                              size_t len)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)base;
    return a >= lo && a - lo <= len && n <= len - (a - lo);
}

/* The vocabulary the tokenizing targets load: the default model's, or
 * $LODE_FUZZ_VOCAB. */
#define FUZZ_DEFAULT_VOCAB "models/all-MiniLM-L6-v2/vocab.txt"
#define FUZZ_VOCAB_HINT \
    "(run from the repository root after `make model`, or set LODE_FUZZ_VOCAB)"

static inline const char *fuzz_vocab_path(void)
{
    const char *path = getenv("LODE_FUZZ_VOCAB");
    return path && path[0] ? path : FUZZ_DEFAULT_VOCAB;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
