/* fmtfloat.c - printf("%.9g") against fmtfloat_g9 on one CLI batch's
 * worth of embedding values: 128 vectors of 384 floats (49152 values),
 * each vector a unit-length Gaussian one, as all-MiniLM-L6-v2 writes them
 * (values mostly 1e-4 .. 0.3).
 *
 *   build/bench/fmtfloat [REPS]
 *
 * Formats the whole batch REPS times (default 31) each way into a buffer
 * (as src/main.c's print_floats does, no I/O), checks the two outputs are
 * the same bytes, and prints the median and minimum ns per value, in
 * thread CPU time so that time spent descheduled on a shared machine does
 * not count. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmtfloat.h"

#define VECTORS 128
#define DIM 384
#define N_VALUES (VECTORS * DIM)

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static double uniform(void)   /* (0, 1), xorshift64 */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static size_t with_snprintf(const float *v, char *out)
{
    size_t len = 0;
    for (int i = 0; i < N_VALUES; i++)
        len += (size_t)snprintf(out + len, FMTFLOAT_G9_SIZE + 1,
                                i % DIM ? ",%.9g" : "%.9g", (double)v[i]);
    return len;
}

static size_t with_fmtfloat(const float *v, char *out)
{
    size_t len = 0;
    for (int i = 0; i < N_VALUES; i++) {
        if (i % DIM)
            out[len++] = ',';
        len += (size_t)fmtfloat_g9(v[i], out + len);
    }
    return len;
}

static void run(const char *name, size_t (*format)(const float *, char *),
                const float *v, char *out, int reps, size_t *len)
{
    double *ns = malloc((size_t)reps * sizeof *ns);
    if (!ns) {
        fputs("out of memory\n", stderr);
        exit(1);
    }
    *len = format(v, out);   /* warm up */
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_ns();
        *len = format(v, out);
        ns[r] = (cpu_ns() - t0) / N_VALUES;
    }
    qsort(ns, (size_t)reps, sizeof *ns, cmp_double);
    printf("%-9s median %6.1f ns/value, min %6.1f ns/value, %.2f ms a batch\n",
           name, ns[reps / 2], ns[0], ns[reps / 2] * N_VALUES / 1e6);
    free(ns);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 31;
    if (reps < 1)
        reps = 1;
    float *v = malloc(N_VALUES * sizeof *v);
    char *a = malloc((size_t)N_VALUES * (FMTFLOAT_G9_SIZE + 1));
    char *b = malloc((size_t)N_VALUES * (FMTFLOAT_G9_SIZE + 1));
    if (!v || !a || !b) {
        fputs("out of memory\n", stderr);
        return 1;
    }
    for (int j = 0; j < VECTORS; j++) {
        float *x = v + j * DIM;
        double norm = 0;
        for (int i = 0; i < DIM; i++) {   /* Box-Muller */
            x[i] = (float)(sqrt(-2 * log(uniform())) *
                           cos(6.283185307179586 * uniform()));
            norm += (double)x[i] * x[i];
        }
        for (int i = 0; i < DIM; i++)
            x[i] = (float)(x[i] / sqrt(norm));
    }
    size_t len_a, len_b;
    run("snprintf", with_snprintf, v, a, reps, &len_a);
    run("fmtfloat", with_fmtfloat, v, b, reps, &len_b);
    int same = len_a == len_b && memcmp(a, b, len_a) == 0;
    printf("%d values, %zu bytes, outputs %s\n", N_VALUES, len_a,
           same ? "identical" : "DIFFER");
    free(v);
    free(a);
    free(b);
    return same ? 0 : 1;
}
