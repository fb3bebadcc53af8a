/* hybrid_latency.c - search latency of each mode (vector, keyword, hybrid
 * RRF, hybrid convex) on a store of N chunks of real text.
 *
 *   build/bench/hybrid_latency DB CORPUS_DIR QUERIES.jsonl N [QUERIES_RUN [MODE]]
 *
 * The chunks are the .txt files of CORPUS_DIR (bench/corpus.sh output)
 * cut into pieces of 150 words, as many passes over the corpus as it
 * takes to reach N (a later pass is a copy under another source name, so
 * its words are real words with real frequencies); vectors are random
 * unit vectors of 384 dimensions, because a scan costs the same whatever
 * the numbers are and no model is needed.  Queries are the "query" texts
 * of QUERIES.jsonl (the man-page NAME lines of bench/retrieval.sh), each
 * with a random vector.  The store file is reused when it already holds
 * N chunks.  Prints one Markdown row per mode: p50 and p99 of the time of
 * store_search (k = 5) over QUERIES_RUN queries (default 500) after 50 of
 * warm-up, in CPU time (the process is single-threaded, and on a shared
 * machine the wall time mostly measures the other tenants) and in wall
 * time.  MODE runs vector and that mode only (for a profiler).  Not part
 * of `make test`. */
#include "store.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define DIM 384
#define MODEL "bench-384"
#define WORDS_PER_CHUNK 150
#define MAX_CHUNKS_PER_DOC 256

/* A 64-bit LCG (Knuth's MMIX constants); the top bits as a float in
 * [-1, 1). */
static uint64_t lcg = 42;
static float frand(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(lcg >> 40) / (float)(1 << 23) - 1.0f;
}

static void unit(float *v)
{
    double s = 0;
    for (int i = 0; i < DIM; i++) {
        v[i] = frand();
        s += (double)v[i] * v[i];
    }
    for (int i = 0; i < DIM; i++)
        v[i] = (float)(v[i] / sqrt(s));
}

static double clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static void die(const char *what, const lode_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add one document: text cut into chunks of WORDS_PER_CHUNK words (the
 * text is modified: NULs end the chunks).  Returns chunks added. */
static size_t add_doc(store *s, const char *source, char *text, size_t budget)
{
    static store_chunk_in chunks[MAX_CHUNKS_PER_DOC];
    static float vecs[MAX_CHUNKS_PER_DOC][DIM];
    size_t n = 0;
    char *p = text;
    while (*p && n < MAX_CHUNKS_PER_DOC && n < budget) {
        char *start = p;
        int words = 0;
        while (*p && words < WORDS_PER_CHUNK) {
            while (*p == ' ' || *p == '\n' || *p == '\t')
                p++;
            while (*p && *p != ' ' && *p != '\n' && *p != '\t')
                p++;
            words++;
        }
        char *end = p;
        if (*p)
            p++;
        *end = '\0';
        unit(vecs[n]);
        chunks[n] = (store_chunk_in){.text = start, .char_end = (int64_t)(end - start),
                                     .vector = vecs[n], .dimension = DIM};
        n++;
    }
    store_document_in d = {.model_id = MODEL, .source = source, .title = source,
                           .chunks = chunks, .n_chunks = n};
    lode_error err = {0};
    if (n && store_add_document(s, "bench", &d, NULL, &err))
        die("add", &err);
    return n;
}

static void populate(store *s, const char *dir, size_t target)
{
    lode_error err = {0};
    store_stats st;
    if (store_create_collection(s, "bench", MODEL, DIM, STORE_COSINE, &err))
        die("create", &err);
    if (store_get_stats(s, "bench", &st, &err))
        die("stats", &err);
    if ((size_t)st.chunks >= target)
        return;
    if (st.chunks)
        die("the store holds another number of chunks; remove it", NULL);
    DIR *d = opendir(dir);
    if (!d)
        die("opendir", NULL);
    char **names = NULL;
    size_t n_names = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".txt") == 0) {
            names = realloc(names, (n_names + 1) * sizeof *names);
            names[n_names++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n_names, sizeof *names, cmp_name);
    size_t have = 0;
    double t0 = now_ms();
    for (int pass = 0; have < target && n_names; pass++)
        for (size_t i = 0; i < n_names && have < target; i++) {
            char path[4096], source[4200];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            snprintf(source, sizeof source, "%s#%d", names[i], pass);
            size_t len;
            char *text = slurp(path, &len);
            if (text)
                have += add_doc(s, source, text, target - have);
            free(text);
        }
    fprintf(stderr, "populated %zu chunks in %.1f s\n", have, (now_ms() - t0) / 1e3);
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: hybrid_latency DB CORPUS_DIR QUERIES.jsonl N [QUERIES_RUN]\n");
        return 2;
    }
    size_t target = strtoul(argv[4], NULL, 10);
    int runs = argc > 5 ? atoi(argv[5]) : 500;
    store *s;
    lode_error err = {0};
    if (store_open(argv[1], NULL, &s, &err))
        die("open", &err);
    populate(s, argv[2], target);

    size_t len;
    char *data = slurp(argv[3], &len);
    if (!data)
        die("queries", NULL);
    char **queries = NULL;
    size_t n_q = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        const char *q = json_string_value(json_object_get(o, "query"));
        if (q) {
            queries = realloc(queries, (n_q + 1) * sizeof *queries);
            queries[n_q++] = strdup(q);
        }
        json_decref(o);
    }
    free(data);
    if (!n_q)
        die("no queries", NULL);

    struct { const char *name; store_mode mode; store_fusion fusion; float alpha; } modes[] = {
        {"vector", STORE_MODE_VECTOR, 0, 0},
        {"keyword", STORE_MODE_KEYWORD, 0, 0},
        {"hybrid rrf", STORE_MODE_HYBRID, STORE_FUSION_RRF, 0},
        {"hybrid convex", STORE_MODE_HYBRID, STORE_FUSION_CONVEX, 0.5f},
    };
    store_stats st;
    store_get_stats(s, "bench", &st, &err);
    double *ms = malloc((size_t)runs * sizeof *ms), *cpu = malloc((size_t)runs * sizeof *cpu);
    float q[DIM];
    double vector_p50 = 0, vector_cpu50 = 0;
    printf("| chunks | mode | CPU p50 ms | CPU p99 ms | CPU p50 vs vector | wall p50 ms | "
           "wall p99 ms |\n|---|---|---|---|---|---|---|\n");
    const char *only = argc > 6 ? argv[6] : NULL;    /* one mode, for profiling */
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        if (only && m && strcmp(only, modes[m].name) != 0)
            continue;
        for (int r = -50; r < runs; r++) {
            unit(q);
            const char *text = queries[(size_t)(r + 50) * 7919 % n_q];
            store_query sq = {.collection = "bench", .model_id = MODEL, .vector = q,
                              .dimension = DIM, .k = 5, .mode = modes[m].mode,
                              .text = text, .fusion = modes[m].fusion,
                              .alpha = modes[m].alpha};
            store_result *res;
            size_t n;
            double t0 = now_ms(), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
            if (store_search(s, &sq, &res, &n, &err))
                die("search", &err);
            double t = now_ms() - t0, c = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
            store_results_free(res, n);
            if (r >= 0) {
                ms[r] = t;
                cpu[r] = c;
            }
        }
        qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
        qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
        size_t i50 = (size_t)(runs - 1) / 2, i99 = (size_t)ceil(0.99 * runs) - 1;
        if (m == 0) {
            vector_p50 = ms[i50];
            vector_cpu50 = cpu[i50];
        }
        printf("| %lld | %s | %.2f | %.2f | %.2fx | %.2f | %.2f |\n", (long long)st.chunks,
               modes[m].name, cpu[i50], cpu[i99], cpu[i50] / vector_cpu50, ms[i50], ms[i99]);
        (void)vector_p50;
    }
    free(ms);
    free(cpu);
    for (size_t i = 0; i < n_q; i++)
        free(queries[i]);
    free(queries);
    store_close(s);
    return 0;
}
