/* latency.c - one short query through the library, timed: the number
 * bench/embed.py reports as lode's single-query latency.
 *
 *   build/bench/latency MODEL THREADS REPS TEXT
 *
 * Loads MODEL, embeds TEXT once to warm up, then REPS more times one text
 * per model_embed call (as a server embeds one query), and prints
 * {"median_us": ..., "min_us": ...} on one line.  In process, because the
 * CLI reads stdin in batches and cannot answer one line at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "pool.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: latency MODEL THREADS REPS TEXT\n");
        return 2;
    }
    int threads = atoi(argv[2]), reps = atoi(argv[3]);
    const char *text = argv[4];
    size_t len = strlen(text);
    if (threads < 1 || reps < 1 || len == 0) {
        fprintf(stderr, "latency: THREADS and REPS must be >= 1, TEXT "
                        "non-empty\n");
        return 2;
    }
    lode_error err = {0};
    model *m = NULL;
    pool *workers = NULL;
    float *out = NULL;
    double *times = NULL;
    int rc = 1;
    if (model_load(argv[1], &m, &err))
        goto out_error;
    if (threads > 1) {
        if (pool_create(threads, &workers, &err))
            goto out_error;
        model_set_pool(m, workers);
    }
    out = malloc((size_t)model_dim(m) * sizeof *out);
    times = malloc((size_t)reps * sizeof *times);
    if (!out || !times) {
        fprintf(stderr, "latency: out of memory\n");
        goto out_free;
    }
    if (model_embed(m, 1, &text, &len, out, NULL, &err))
        goto out_error;
    for (int i = 0; i < reps; i++) {
        double t0 = now_us();
        if (model_embed(m, 1, &text, &len, out, NULL, &err))
            goto out_error;
        times[i] = now_us() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    printf("{\"median_us\": %.1f, \"min_us\": %.1f}\n", times[reps / 2],
           times[0]);
    rc = 0;
    goto out_free;
out_error:
    fprintf(stderr, "latency: %s\n", err.message[0] ? err.message
                                                    : lode_strerror(err.code));
out_free:
    free(times);
    free(out);
    model_free(m);
    pool_free(workers);
    return rc;
}
