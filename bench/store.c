/* store.c - time opening and searching a store of 100k x 384 chunks.
 *
 * Not part of `make test` (it writes ~170 MB and takes a while):
 *   make bench && build/bench/store /tmp/bench.db
 * Reuses the file when it already holds the data. */
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIM 384
#define DOCS 1000
#define CHUNKS_PER_DOC 100
#define MODEL "bench-384"

static uint64_t state = 88172645463325252ull;
static float frand(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (float)((state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, const lode_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err->message);
    exit(1);
}

static void populate(const char *path)
{
    store *s;
    lode_error err = {0};
    if (store_open(path, NULL, &s, &err))
        die("open", &err);
    store_stats st;
    store_get_stats(s, NULL, &st, &err);
    if (st.chunks >= DOCS * CHUNKS_PER_DOC) {
        store_close(s);
        return;
    }
    if (store_create_collection(s, "bench", MODEL, DIM, STORE_COSINE, &err))
        die("create", &err);
    static float vecs[CHUNKS_PER_DOC][DIM];
    store_chunk_in chunks[CHUNKS_PER_DOC];
    double t0 = now_ms();
    for (int d = 0; d < DOCS; d++) {
        for (int c = 0; c < CHUNKS_PER_DOC; c++) {
            for (int i = 0; i < DIM; i++)
                vecs[c][i] = frand();
            chunks[c] = (store_chunk_in){.text = "a chunk of text", .char_end = 15,
                                         .vector = vecs[c], .dimension = DIM};
        }
        char src[32], meta[64];
        snprintf(src, sizeof src, "doc%d.md", d);
        snprintf(meta, sizeof meta, "{\"group\": %d}", d % 10);
        store_document_in in = {.model_id = MODEL, .source = src, .metadata_json = meta,
                                .chunks = chunks, .n_chunks = CHUNKS_PER_DOC};
        if (store_add_document(s, "bench", &in, NULL, &err))
            die("add", &err);
    }
    printf("populate: %d chunks in %.0f ms\n", DOCS * CHUNKS_PER_DOC, now_ms() - t0);
    store_close(s);
}

static void bench(const char *path, bool int8)
{
    store_options opts = {.int8_vectors = int8};
    store *s;
    lode_error err = {0};
    double t0 = now_ms();
    if (store_open(path, &opts, &s, &err))
        die("open", &err);
    double open_ms = now_ms() - t0;
    store_stats st;
    store_get_stats(s, NULL, &st, &err);
    printf("%s: open %.0f ms (%lld chunks, %.1f MB in memory)\n", int8 ? "int8" : "f32",
           open_ms, (long long)st.chunks, st.bytes_in_memory / 1048576.0);
    float q[DIM];
    const char *filters[] = {NULL, "{\"group\": 3}"};
    for (int fi = 0; fi < 2; fi++) {
        double best = 1e9, total = 0;
        const int runs = 30;
        for (int r = 0; r < runs; r++) {
            for (int i = 0; i < DIM; i++)
                q[i] = frand();
            store_query query = {.collection = "bench", .model_id = MODEL, .vector = q,
                                 .dimension = DIM, .k = 10, .where_json = filters[fi]};
            store_result *res;
            size_t n;
            double t = now_ms();
            if (store_search(s, &query, &res, &n, &err))
                die("search", &err);
            t = now_ms() - t;
            store_results_free(res, n);
            total += t;
            best = t < best ? t : best;
        }
        printf("  search k=10 %s: mean %.2f ms, best %.2f ms\n",
               filters[fi] ? filters[fi] : "(no filter)", total / runs, best);
    }
    store_close(s);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/tmp/lode-bench.db";
    populate(path);
    bench(path, false);
    bench(path, true);
    return 0;
}
