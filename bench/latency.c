/* latency.c - lode's library timed in process, for bench/embed.py: the
 * single-query latency, and the throughput of batched calls measured the
 * way embed.py measures its Python peers.
 *
 *   build/bench/latency MODEL THREADS REPS TEXT
 *   build/bench/latency --throughput MODEL THREADS REPS BATCH FILE [VECTORS]
 *
 * Latency: loads MODEL, embeds TEXT once to warm up, then REPS more times
 * one text per model_embed call (as a server embeds one query), and
 * prints {"median_us": ..., "min_us": ...} on one line.  In process,
 * because the CLI reads stdin in batches and cannot answer one line at a
 * time.
 *
 * Throughput: FILE holds one text per line (plain UTF-8, "\n" ends a
 * line, no empty lines: embed.py's texts have no newlines, so no quoting
 * is needed).  Loads MODEL, embeds every text once to warm up (scratch
 * pages touched, caches filled, as in a long-running server), then REPS
 * times embeds every text in model_embed calls of BATCH texts each (the
 * --batch of embed.py's Python peers, tokenising included), timing each
 * repetition, and prints {"median_s": ..., "min_s": ..., "texts": N,
 * "per_s": N / median_s} on one line.  Nothing else is in the timed loop:
 * no process start, no model load, no printing.  VECTORS, when given,
 * receives the vectors of the last repetition as N x dim little-endian
 * float32 (raw, no header), for embed.py's accuracy column. */
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

/* The model at path, on a pool of `threads` threads when more than one
 * (*workers, freed by the caller after the model). */
static int load(const char *path, int threads, model **m, pool **workers,
                lode_error *err)
{
    int rc = model_load(path, m, err);
    if (rc)
        return rc;
    if (threads > 1) {
        rc = pool_create(threads, workers, err);
        if (rc)
            return rc;
        model_set_pool(*m, *workers);
    }
    return 0;
}

static void print_error(const lode_error *err)
{
    fprintf(stderr, "latency: %s\n", err->message[0]
                                         ? err->message
                                         : lode_strerror(err->code));
}

static int run_latency(char **argv)
{
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
    if (load(argv[1], threads, &m, &workers, &err))
        goto out_error;
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
    print_error(&err);
out_free:
    free(times);
    free(out);
    model_free(m);
    pool_free(workers);
    return rc;
}

/* The lines of the file at path, split in place: *buf (owned by the
 * caller) holds the text, (*texts)[i] and (*lens)[i] point into it. */
static int read_lines(const char *path, char **buf, const char ***texts,
                      size_t **lens, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, size = 0, got;
    char *data = malloc(cap);
    while (data && (got = fread(data + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) {
            char *bigger = realloc(data, cap *= 2);
            if (!bigger)
                free(data);
            data = bigger;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (!data || failed) {
        fprintf(stderr, "latency: cannot read %s\n", path);
        free(data);
        return -1;
    }
    int count = 0;
    for (size_t i = 0; i < size; i++)
        count += data[i] == '\n';
    if (size > 0 && data[size - 1] != '\n')
        count++;   /* a last line without its newline */
    *buf = data;
    *texts = malloc((size_t)(count ? count : 1) * sizeof **texts);
    *lens = malloc((size_t)(count ? count : 1) * sizeof **lens);
    if (!*texts || !*lens) {
        fprintf(stderr, "latency: out of memory\n");
        return -1;
    }
    size_t start = 0;
    for (int i = 0; i < count; i++) {
        size_t end = start;
        while (end < size && data[end] != '\n')
            end++;
        if (end == start) {
            fprintf(stderr, "latency: %s: line %d is empty\n", path, i + 1);
            return -1;
        }
        (*texts)[i] = data + start;
        (*lens)[i] = end - start;
        start = end + 1;
    }
    *n = count;
    if (count == 0) {
        fprintf(stderr, "latency: %s has no texts\n", path);
        return -1;
    }
    return 0;
}

/* Every text once, in model_embed calls of `batch` texts: out[n][dim]. */
static int embed_all(model *m, int n, int batch, const char *const *texts,
                     const size_t *lens, float *out, lode_error *err)
{
    int dim = model_dim(m);
    for (int i = 0; i < n; i += batch) {
        int k = n - i < batch ? n - i : batch;
        int rc = model_embed(m, k, texts + i, lens + i,
                             out + (size_t)i * dim, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int run_throughput(int argc, char **argv)
{
    int threads = atoi(argv[3]), reps = atoi(argv[4]), batch = atoi(argv[5]);
    const char *vectors_path = argc == 8 ? argv[7] : NULL;
    if (threads < 1 || reps < 1 || batch < 1) {
        fprintf(stderr, "latency: THREADS, REPS and BATCH must be >= 1\n");
        return 2;
    }
    lode_error err = {0};
    model *m = NULL;
    pool *workers = NULL;
    char *buf = NULL;
    const char **texts = NULL;
    size_t *lens = NULL;
    float *out = NULL;
    double *times = NULL;
    int n = 0, rc = 1;
    if (read_lines(argv[6], &buf, &texts, &lens, &n))
        goto out_free;
    if (load(argv[2], threads, &m, &workers, &err))
        goto out_error;
    out = malloc((size_t)n * (size_t)model_dim(m) * sizeof *out);
    times = malloc((size_t)reps * sizeof *times);
    if (!out || !times) {
        fprintf(stderr, "latency: out of memory\n");
        goto out_free;
    }
    if (embed_all(m, n, batch, texts, lens, out, &err))   /* warm-up */
        goto out_error;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        if (embed_all(m, n, batch, texts, lens, out, &err))
            goto out_error;
        times[r] = (now_us() - t0) / 1e6;
    }
    if (vectors_path) {
        FILE *f = fopen(vectors_path, "wb");
        size_t count = (size_t)n * (size_t)model_dim(m);
        if (!f || fwrite(out, sizeof *out, count, f) != count) {
            perror(vectors_path);
            if (f)
                fclose(f);
            goto out_free;
        }
        if (fclose(f)) {
            perror(vectors_path);
            goto out_free;
        }
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    double median = times[reps / 2];
    printf("{\"median_s\": %.6f, \"min_s\": %.6f, \"texts\": %d, "
           "\"per_s\": %.1f}\n", median, times[0], n, n / median);
    rc = 0;
    goto out_free;
out_error:
    print_error(&err);
out_free:
    free(times);
    free(out);
    free(lens);
    free(texts);
    free(buf);
    model_free(m);
    pool_free(workers);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--throughput") == 0) {
        if (argc == 7 || argc == 8)
            return run_throughput(argc, argv);
    } else if (argc == 5) {
        return run_latency(argv);
    }
    fprintf(stderr, "usage: latency MODEL THREADS REPS TEXT\n"
                    "       latency --throughput MODEL THREADS REPS BATCH "
                    "FILE [VECTORS]\n");
    return 2;
}
