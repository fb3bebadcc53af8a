/* gemm.c - kern_linear against OpenBLAS cblas_sgemm on the model's shapes.
 *
 * y[M][N] = x[M][K] . W[N][K]^T for the all-MiniLM-L6-v2 projections:
 * (N, K) = (384, 384) Q/K/V/output, (1152, 384) fused QKV, (1536, 384) FFN
 * up, (384, 1536) FFN down; M (tokens in a batch) in 16, 128, 512, 2048.
 * Reports the median GFLOP/s over repeated runs and the share of the
 * machine's fp32 peak, measured here with chain-free FMA loops of 256-bit
 * and (on AVX-512 CPUs) 512-bit FMAs, the higher of the two: 32
 * FLOP/cycle/core on Zen 4 (two 256-bit pipes; AVX-512 double-pumped), 64
 * on Xeons with two 512-bit pipes.  The header line also gives the nominal
 * figure from /proc/cpuinfo's clock and, with VNNI, the vpdpbusd peak in
 * int8 GOP/s, the ceiling of the q8_0 column.  q8_128 (lode's blocks of
 * 128) runs on AMX where the CPU has it, else on the scalar reference.
 *
 *   make bench && build/bench/gemm            # best path
 *   LODE_ISA=avx2 build/bench/gemm            # force a lower path
 *   build/bench/gemm quick                    # fewer repetitions
 *   build/bench/gemm cpu                      # 1-thread columns timed in
 *                                             # thread CPU time (busy host)
 *
 * OpenBLAS is linked into this program only, never into lode.
 */
#include "kernels.h"
#include "pool.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Single-threaded cases may be timed in thread CPU time ("cpu" argument)
 * to see through other load on a shared machine; threaded cases always
 * use wall time. */
static clockid_t single_clock = CLOCK_MONOTONIC;

static double clock_now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpuinfo_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    double mhz = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
            break;
    if (f)
        fclose(f);
    return mhz;
}

#if defined(__x86_64__)
/* Peaks: independent chains of one instruction on one core, at the clock
 * the core actually runs (boost included), in thread CPU time so that
 * other load on the machine does not lower them.  Each burst runs `iters`
 * rounds and returns a value derived from every chain, so none is dead. */
static volatile float peak_sink;

/* Best of 3 bursts, in G(FL)OP/s, given the operations per round. */
static double best_rate(float (*burst)(long iters), double ops_per_round)
{
    long iters = 10000000;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = clock_now(CLOCK_THREAD_CPUTIME_ID);
        peak_sink = burst(iters);
        double rate = iters * ops_per_round /
                      (clock_now(CLOCK_THREAD_CPUTIME_ID) - t0) / 1e9;
        best = rate > best ? rate : best;
    }
    return best;
}

/* 12 chains of 256-bit FMAs: 2 pipes x 8 lanes x 2 FLOP per cycle. */
__attribute__((target("avx2,fma"))) static float burst_fma256(long iters)
{
    __m256 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += _mm256_cvtss_f32(acc[i]);
    return s;
}

/* 16 chains of 512-bit FMAs: double the 256-bit figure where there are two
 * 512-bit pipes, the same on Zen 4 (double-pumped), less with one pipe or
 * a lower AVX-512 clock. */
__attribute__((target("avx512f"))) static float burst_fma512(long iters)
{
    __m512 acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_set1_ps((float)i);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float s = 0;
    for (int i = 0; i < 16; i++)
        s += _mm512_cvtss_f32(acc[i]);
    return s;
}

/* 16 chains of vpdpbusd (64 int8 multiply-adds each): the ceiling of the
 * q8_0 products on AVX-512 VNNI. */
__attribute__((target("avx512f,avx512vnni"))) static float
burst_vnni(long iters)
{
    __m512i acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_set1_epi32(i);
    const __m512i x = _mm512_set1_epi32(0x01010101);
    const __m512i y = _mm512_set1_epi32(0x02020202);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    int s = 0;
    for (int i = 0; i < 16; i++)
        s += _mm512_cvtsi512_si32(acc[i]);
    return (float)s;
}

static double measure_peak(void) { return best_rate(burst_fma256, 12 * 16); }
static double measure_peak512(void)
{
    return best_rate(burst_fma512, 16 * 32);
}
static double measure_vnni_peak(void)
{
    return best_rate(burst_vnni, 16 * 128);
}
#else
static double measure_peak(void) { return 0; }
#endif

typedef struct bench_case {
    int m, n, k;
    const float *x;
    const kern_matrix *w;
    const float *bias;
    float *out;
    pool *pool;   /* kern_linear_mt when set */
    int blas;     /* cblas_sgemm instead, on blas_threads threads */
    int blas_threads;
} bench_case;

static void run_once(const bench_case *c)
{
    if (c->blas) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->m, c->n, c->k,
                    1.0f, c->x, c->k, (const float *)c->w->data, c->k, 0.0f,
                    c->out, c->n);
    } else if (c->pool) {
        kern_linear_mt(c->pool, c->x, c->m, c->w, c->bias, c->out);
    } else {
        kern_linear(c->x, c->m, c->w, c->bias, c->out);
    }
}

/* Median GFLOP/s over `samples` timings of >= ~3 ms each. */
static double bench(const bench_case *c, int samples)
{
    double flop = 2.0 * c->m * c->n * c->k;
    int single = c->blas ? c->blas_threads == 1 : c->pool == NULL;
    clockid_t clk = single ? single_clock : CLOCK_MONOTONIC;
    run_once(c);
    double t0 = clock_now(clk);
    run_once(c);
    double one = clock_now(clk) - t0;
    int reps = (int)(0.003 / (one > 1e-9 ? one : 1e-9)) + 1;
    double *gf = malloc(samples * sizeof *gf);
    for (int s = 0; s < samples; s++) {
        t0 = clock_now(clk);
        for (int r = 0; r < reps; r++)
            run_once(c);
        gf[s] = flop * reps / (clock_now(clk) - t0) / 1e9;
    }
    qsort(gf, samples, sizeof *gf, cmp_double);
    double med = gf[samples / 2];
    free(gf);
    return med;
}

int main(int argc, char **argv)
{
    int samples = 15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "quick") == 0)
            samples = 5;
        else if (strcmp(argv[i], "cpu") == 0)
            single_clock = CLOCK_THREAD_CPUTIME_ID;
    }
    kern_init();
    double mhz = cpuinfo_mhz();
    double peak_measured = measure_peak(), peak512 = 0, vnni = 0;
#if defined(__x86_64__)
    if (strncmp(kern_isa_name(), "avx512", 6) == 0 ||
        strcmp(kern_isa_name(), "amx") == 0)
        peak512 = measure_peak512();
    if (strcmp(kern_isa_name(), "avx512vnni") == 0 ||
        strcmp(kern_isa_name(), "amx") == 0)
        vnni = measure_vnni_peak();
#endif
    double peak_nominal = 32.0 * mhz / 1000.0; /* GFLOP/s per core */
    double peak = peak_measured > 0 ? peak_measured : peak_nominal;
    if (peak512 > peak)
        peak = peak512;
    printf("path %s; cpuinfo %.0f MHz -> nominal peak %.1f GFLOP/s/core; "
           "measured FMA peak %.1f GFLOP/s/core with 256-bit FMAs, %.1f with "
           "512-bit (the higher is used for %%); vpdpbusd peak %.1f GOP/s\n",
           kern_isa_name(), mhz, peak_nominal, peak_measured, peak512, vnni);

    pool *pool2 = NULL;
    if (pool_create(2, &pool2, NULL) != 0)
        return 1;

    static const int nk[][2] = { { 384, 384 }, { 1152, 384 },
                                 { 1536, 384 }, { 384, 1536 } };
    static const int ms[] = { 16, 128, 512, 2048 };
    printf("\n%-5s %-10s | %-19s %-19s | %-19s %-19s | %-8s %-8s | %-8s "
           "%-8s | %-8s %-8s\n", "M", "N x K", "lode f32 1T", "OpenBLAS 1T",
           "lode f32 2T", "OpenBLAS 2T", "q8_0 1T", "q8_0 2T", "f16 1T",
           "f16 2T", "q8_128 1T", "2T");
    printf("%-5s %-10s | %-19s %-19s | %-19s %-19s | %-8s %-8s | %-8s "
           "%-8s | %-8s %-8s\n", "", "", "GFLOP/s  (% peak)",
           "GFLOP/s  (% peak)", "GFLOP/s  (% peak)", "GFLOP/s  (% peak)",
           "GFLOP/s", "GFLOP/s", "GFLOP/s", "GFLOP/s", "GFLOP/s", "GFLOP/s");
    for (size_t s = 0; s < sizeof nk / sizeof nk[0]; s++) {
        int n = nk[s][0], k = nk[s][1];
        float *wf = malloc((size_t)n * k * sizeof *wf);
        uint16_t *wh = malloc((size_t)n * k * sizeof *wh);
        uint8_t *wq = malloc((size_t)n * kern_row_bytes(KERN_Q8_0, k));
        uint8_t *wq128 = malloc((size_t)n * kern_row_bytes(KERN_Q8_128, k));
        srand(1);
        for (size_t i = 0; i < (size_t)n * k; i++) {
            wf[i] = (float)rand() / RAND_MAX - 0.5f;
            wh[i] = kern_f32_to_f16(wf[i]);
        }
        for (int r = 0; r < n; r++) {
            kern_quantize_q8_0(wf + (size_t)r * k, k,
                               wq + r * kern_row_bytes(KERN_Q8_0, k));
            kern_quantize_q8_128(wf + (size_t)r * k, k,
                                 wq128 + r * kern_row_bytes(KERN_Q8_128, k));
        }
        kern_matrix w32 = { KERN_F32, n, k, wf, NULL };
        kern_matrix w16 = { KERN_F16, n, k, wh, NULL };
        kern_matrix w8 = { KERN_Q8_0, n, k, wq, NULL };
        void *w8_packed = kern_pack(&w8); /* as the model loader does */
        w8.packed = w8_packed;
        kern_matrix w128 = { KERN_Q8_128, n, k, wq128, NULL };
        void *w128_packed = kern_pack(&w128);
        w128.packed = w128_packed;
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
            int m = ms[mi];
            float *x = malloc((size_t)m * k * sizeof *x);
            float *out = malloc((size_t)m * n * sizeof *out);
            for (size_t i = 0; i < (size_t)m * k; i++)
                x[i] = (float)rand() / RAND_MAX - 0.5f;
            bench_case c = { m, n, k, x, &w32, NULL, out, NULL, 0, 1 };
            double lode1 = bench(&c, samples);
            c.pool = pool2;
            double lode2 = bench(&c, samples);
            c.pool = NULL;
            c.blas = 1;
            c.blas_threads = 1;
            openblas_set_num_threads(1);
            double blas1 = bench(&c, samples);
            c.blas_threads = 2;
            openblas_set_num_threads(2);
            double blas2 = bench(&c, samples);
            c.blas = 0;
            c.w = &w8;
            double q1 = bench(&c, samples);
            c.pool = pool2;
            double q2 = bench(&c, samples);
            c.w = &w16;
            double h2 = bench(&c, samples);
            c.pool = NULL;
            double h1 = bench(&c, samples);
            /* q8_128 off AMX is the scalar reference: a few samples */
            c.w = &w128;
            int s128 = w128_packed ? samples : 1;
            double r1 = bench(&c, s128);
            c.pool = pool2;
            double r2 = bench(&c, s128);
            c.pool = NULL;
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%d", n, k);
            printf("%-5d %-10s | %6.1f  (%5.1f%%)     %6.1f  (%5.1f%%)     | "
                   "%6.1f  (%5.1f%%)     %6.1f  (%5.1f%%)     | %-8.1f %-8.1f "
                   "| %-8.1f %-8.1f | %-8.1f %-8.1f\n", m, shape, lode1,
                   100 * lode1 / peak, blas1, 100 * blas1 / peak, lode2,
                   50 * lode2 / peak, blas2, 50 * blas2 / peak, q1, q2, h1,
                   h2, r1, r2);
            fflush(stdout);
            free(x);
            free(out);
        }
        free(wf);
        free(wh);
        free(wq);
        free(w8_packed);
        free(wq128);
        free(w128_packed);
    }
    pool_free(pool2);
    return 0;
}
