/* test.h - the few macros every C test program uses.
 *
 * CHECK(cond, fmt, ...) counts a pass or prints the failure with its
 * location; TEST_MAIN_END() prints "N passed, N failed" and returns the exit
 * status.  No framework: a test is a program. */
#ifndef LODE_TEST_H
#define LODE_TEST_H

#include <stdio.h>

static int test_passed, test_failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            test_passed++;                                                   \
        } else {                                                             \
            test_failed++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

#define TEST_MAIN_END()                                                      \
    do {                                                                     \
        printf("%s: %d passed, %d failed\n", __FILE__, test_passed,          \
               test_failed);                                                 \
        return test_failed ? 1 : 0;                                          \
    } while (0)

#endif
