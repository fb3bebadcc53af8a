/* search_driver.c - lode's side of bench/search.py (driven by bench/search.sh).
 *
 *   search_driver build  DB VECS.f32 N
 *       store the first N vectors (384 floats each, raw little-endian f32)
 *       of VECS.f32 in collection "bench" (cosine), 100 chunks a document.
 *   search_driver search DB QUERIES.f32 NQ f32|int8 [IDS_OUT]
 *       open DB (int8 or f32 vectors in memory), run the NQ queries one at
 *       a time (k = 10, no filter, one thread), print one JSON line with
 *       the latencies' median/p99 and VmRSS/VmHWM before and after opening;
 *       with IDS_OUT, write the top-10 chunk ids of each query (int64).
 *
 * Chunk ids are assigned 1..N in insertion order, so id - 1 is the row of
 * the vector in VECS.f32. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIM 384
#define PER_DOC 100
#define MODEL "bench-384"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, const lode_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* VmRSS and VmHWM in KiB. */
static void mem_kb(long *rss, long *hwm)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    *rss = *hwm = -1;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6))
            *rss = atol(line + 6);
        else if (!strncmp(line, "VmHWM:", 6))
            *hwm = atol(line + 6);
    }
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int build(const char *db, const char *vecs, long n)
{
    FILE *f = fopen(vecs, "rb");
    if (!f)
        die(vecs, NULL);
    store *s;
    lode_error err = {0};
    if (store_open(db, NULL, &s, &err))
        die("open", &err);
    if (store_create_collection(s, "bench", MODEL, DIM, STORE_COSINE, &err))
        die("create", &err);
    static float v[PER_DOC][DIM];
    store_chunk_in chunks[PER_DOC];
    double t0 = now_ms();
    for (long d = 0; d * PER_DOC < n; d++) {
        long m = n - d * PER_DOC < PER_DOC ? n - d * PER_DOC : PER_DOC;
        if (fread(v, sizeof(float) * DIM, (size_t)m, f) != (size_t)m)
            die("short vector file", NULL);
        for (long c = 0; c < m; c++)
            chunks[c] = (store_chunk_in){.text = "a chunk of text", .char_end = 15,
                                         .token_count = 4, .vector = v[c],
                                         .dimension = DIM};
        char src[32];
        snprintf(src, sizeof src, "doc%ld.md", d);
        store_document_in in = {.model_id = MODEL, .source = src, .chunks = chunks,
                                .n_chunks = (size_t)m};
        if (store_add_document(s, "bench", &in, NULL, &err))
            die("add", &err);
    }
    double ms = now_ms() - t0;
    store_close(s);
    fclose(f);
    printf("{\"build_s\": %.3f, \"n\": %ld}\n", ms / 1e3, n);
    return 0;
}

static int search(const char *db, const char *qpath, long nq, bool int8,
                  const char *ids_out)
{
    float *q = malloc(sizeof(float) * DIM * nq);
    double *lat = malloc(sizeof(double) * nq);
    FILE *f = fopen(qpath, "rb");
    if (!f || !q || !lat || fread(q, sizeof(float) * DIM, nq, f) != (size_t)nq)
        die(qpath, NULL);
    fclose(f);
    FILE *ids = ids_out ? fopen(ids_out, "wb") : NULL;
    long rss0, hwm0, rss1, hwm1, rss2, hwm2;
    mem_kb(&rss0, &hwm0);
    store_options opts = {.read_only = true, .int8_vectors = int8};
    store *s;
    lode_error err = {0};
    double t0 = now_ms();
    if (store_open(db, &opts, &s, &err))
        die("open", &err);
    /* The vectors may be loaded lazily: one untimed query loads them. */
    store_query w = {.collection = "bench", .model_id = MODEL, .vector = q,
                     .dimension = DIM, .k = 10};
    store_result *res;
    size_t n;
    if (store_search(s, &w, &res, &n, &err))
        die("search", &err);
    store_results_free(res, n);
    double open_ms = now_ms() - t0;
    mem_kb(&rss1, &hwm1);
    store_stats st;
    store_get_stats(s, NULL, &st, &err);
    for (long i = 0; i < nq; i++) {
        store_query qq = {.collection = "bench", .model_id = MODEL,
                          .vector = q + i * DIM, .dimension = DIM, .k = 10};
        double t = now_ms();
        if (store_search(s, &qq, &res, &n, &err))
            die("search", &err);
        lat[i] = now_ms() - t;
        if (ids) {
            int64_t top[10] = {0};
            for (size_t j = 0; j < n && j < 10; j++)
                top[j] = res[j].chunk_id;
            fwrite(top, sizeof top, 1, ids);
        }
        store_results_free(res, n);
    }
    mem_kb(&rss2, &hwm2);
    if (ids)
        fclose(ids);
    qsort(lat, nq, sizeof *lat, cmp_double);
    long p99 = (long)(0.99 * (nq - 1) + 0.5);
    printf("{\"open_ms\": %.1f, \"chunks\": %lld, \"bytes_in_memory\": %lld, "
           "\"median_ms\": %.4f, \"p99_ms\": %.4f, \"min_ms\": %.4f, "
           "\"rss0_kb\": %ld, \"rss_open_kb\": %ld, \"rss_kb\": %ld, \"hwm_kb\": %ld}\n",
           open_ms, (long long)st.chunks, (long long)st.bytes_in_memory,
           lat[nq / 2], lat[p99], lat[0], rss0, rss1, rss2, hwm2);
    store_close(s);
    free(q);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "build"))
        return build(argv[2], argv[3], atol(argv[4]));
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "search"))
        return search(argv[2], argv[3], atol(argv[4]), !strcmp(argv[5], "int8"),
                      argc == 7 ? argv[6] : NULL);
    fprintf(stderr, "usage: %s build DB VECS N | search DB QUERIES NQ f32|int8 [IDS]\n",
            argv[0]);
    return 2;
}
