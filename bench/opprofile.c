/* opprofile.c - where lode's embedding time goes, op by op.
 *
 *   build/bench/opprofile [--threads 1,2] [--sets short,medium,long]
 *                         [--texts N] [--reps R] [--attention-detail]
 *                         [MODEL...]
 *
 * For each MODEL (default: the q8_0 GGUF and the f32 Hugging Face
 * directory under models/), thread count and set of texts (short = 12
 * tokens with [CLS]/[SEP], medium = 60, long = 256: the lengths and counts
 * of bench/embed.py, 512/128/32 texts, or N each with --texts), it embeds
 * the whole set as `lode embed` does (tokenise every text, then
 * model_embed_ids, which batches by the token budget) and prints, per op,
 * the wall time per text in ms and its share of the total, as markdown.
 *
 * The times come from the hooks of src/opprof.h, compiled into this
 * program's own copies of bert.c and kernels.c (Makefile, bench rules):
 * bert_forward marks the end of each step on the calling thread, and
 * quantising activations for q8_0 products (inside the linear steps) is
 * bracketed and taken out of them.  With 2 threads the steps are timed on
 * the caller, so a step's time includes waiting for the other thread: the
 * shares add up to the wall time.  --attention-detail also brackets the
 * parts of each head's attention (K transposed, scores, softmax, P.V) as
 * the caller runs them; that costs four pairs of clock reads per (text,
 * head, layer), a visible part of short texts' attention, so it is off
 * by default.
 *
 * Each row is the repetition with the median total of R (default 5) after
 * one warm-up; the same set is also run R times with the hooks idle, and
 * that median ("unprofiled") shows what the clock reads cost.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "model.h"
#include "opprof.h"
#include "pool.h"

/* ---- the hooks (src/opprof.h) ---------------------------------------- */

static _Thread_local int prof_on;   /* set on the profiling thread only */
static int prof_detail;             /* --attention-detail */
static double prof_ns[OPPROF_COUNT];
static uint64_t step_t0, step_nested;
static struct {
    opprof_op op;
    uint64_t t0, nested;
} prof_stack[8];
static int prof_depth;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int counted(opprof_op op)
{
    return prof_on && (prof_detail || op < OPPROF_ATTN_KT);
}

void opprof_step(opprof_op op)
{
    if (!prof_on)
        return;
    uint64_t t = now_ns();
    prof_ns[op] += (double)(t - step_t0 - step_nested);
    step_t0 = t;
    step_nested = 0;
}

void opprof_begin(opprof_op op)
{
    if (!counted(op) || prof_depth == 8)
        return;
    prof_stack[prof_depth].op = op;
    prof_stack[prof_depth].nested = 0;
    prof_stack[prof_depth++].t0 = now_ns();
}

void opprof_end(opprof_op op)
{
    if (!counted(op) || prof_depth == 0 || prof_stack[prof_depth - 1].op != op)
        return;
    uint64_t dt = now_ns() - prof_stack[--prof_depth].t0;
    prof_ns[op] += (double)(dt - prof_stack[prof_depth].nested);
    if (prof_depth)
        prof_stack[prof_depth - 1].nested += dt;
    else
        step_nested += dt;
}

static void prof_start(void)
{
    memset(prof_ns, 0, sizeof prof_ns);
    prof_depth = 0;
    step_nested = 0;
    step_t0 = now_ns();
    prof_on = 1;
}

static void prof_stop(void)
{
    opprof_step(OPPROF_OTHER);
    prof_on = 0;
}

/* ---- texts ----------------------------------------------------------- */

/* bench/embed.py's generator: sentences of words the vocabulary keeps
 * whole, so every text has exactly the tokens asked for. */
static const char *const adjectives[] = {
    "old", "small", "young", "red", "green", "blue", "black", "white", "big",
    "little", "long", "short", "new", "good", "bad", "hot", "cold", "quiet",
    "dark", "bright", "happy", "sad", "tall", "soft", "hard", "warm", "kind",
    "brave", "quick", "slow", "strong", NULL};
static const char *const nouns[] = {
    "dog", "cat", "man", "woman", "child", "bird", "horse", "river", "city",
    "house", "tree", "car", "boat", "book", "door", "table", "road", "field",
    "garden", "school", "teacher", "doctor", "friend", "king", "farmer",
    "window", "letter", "song", "story", "stone", "hill", "lake", NULL};
static const char *const verbs[] = {
    "saw", "found", "took", "gave", "made", "left", "kept", "held", "sent",
    "met", "heard", "told", "knew", "moved", "carried", "watched", "helped",
    "followed", "opened", "closed", NULL};
static const char *const prepositions[] = {
    "near", "under", "behind", "beside", "across", "into", "over", "from",
    "with", NULL};

static uint64_t rng_state = 1;
static unsigned rng_next(void)   /* xorshift64*, fixed seed */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 2685821657736338717ull) >> 33);
}

static int one_token(const model *m, const char *word)
{
    int32_t ids[8];
    int n;
    lode_error err = {0};
    return model_tokenize(m, word, strlen(word), ids, &n, NULL, &err) == 0 &&
           n == 3;
}

static const char *pick(const model *m, const char *const *words)
{
    int n = 0;
    while (words[n])
        n++;
    for (;;) {
        const char *w = words[rng_next() % (unsigned)n];
        if (one_token(m, w))
            return w;
    }
}

/* A text of exactly n_tokens ids with [CLS] and [SEP], in buf: whole
 * sentences, the last one cut short and closed with a period. */
static void make_text(const model *m, int n_tokens, char *buf, size_t cap)
{
    int want = n_tokens - 2, have = 0;
    size_t len = 0;
    buf[0] = '\0';
    while (have < want) {
        const char *s[11] = {"the", pick(m, adjectives), pick(m, nouns),
                             pick(m, verbs), "a", pick(m, adjectives),
                             pick(m, nouns), pick(m, prepositions), "the",
                             pick(m, nouns), "."};
        int take = have + 11 <= want ? 11 : want - have - 1;
        for (int i = 0; i <= take && i < 11; i++) {
            const char *w = i == take ? "." : s[i];
            len += (size_t)snprintf(buf + len, cap - len, "%s%s",
                                    len && w[0] != '.' ? " " : "", w);
            have++;
        }
    }
}

/* ---- one run --------------------------------------------------------- */

typedef struct set_def {
    const char *name;
    int tokens, texts;
} set_def;

static const set_def sets[] = {
    {"short", 12, 512}, {"medium", 60, 128}, {"long", 256, 32}};
#define N_SETS 3

typedef struct texts {
    int n;
    char **text;
    size_t *len;
    int32_t *ids;         /* n x max_seq_length */
    int *n_ids;
    const int32_t **body; /* ids + 1: without [CLS] */
    int *body_len;        /* without [CLS] and [SEP] */
    float *out;
} texts;

/* Tokenise everything, then embed: what `lode embed` does with a batch.
 * Returns the wall time in ns, or 0 on an error (printed). */
static double run_once(model *m, texts *t, int profile)
{
    lode_error err = {0};
    int L = model_max_seq_length(m);
    uint64_t t0 = now_ns();
    if (profile)
        prof_start();
    for (int i = 0; i < t->n; i++)
        if (model_tokenize(m, t->text[i], t->len[i], t->ids + (size_t)i * L,
                           &t->n_ids[i], NULL, &err))
            goto fail;
    if (profile)
        opprof_step(OPPROF_TOKENIZE);
    for (int i = 0; i < t->n; i++) {
        t->body[i] = t->ids + (size_t)i * L + 1;
        t->body_len[i] = t->n_ids[i] - 2;
    }
    if (model_embed_ids(m, t->n, t->body, t->body_len, t->out, NULL, &err))
        goto fail;
    if (profile)
        prof_stop();
    return (double)(now_ns() - t0);
fail:
    prof_on = 0;
    fprintf(stderr, "opprofile: %s\n",
            err.message[0] ? err.message : lode_strerror(err.code));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    int done;
    int n_texts;
    double total_ns, plain_ns;     /* profiled and unprofiled medians */
    double ns[OPPROF_COUNT];
} result;

static int profile_set(model *m, const set_def *sd, int n_texts, int reps,
                       result *r)
{
    int L = model_max_seq_length(m), H = model_dim(m);
    texts t = {.n = n_texts};
    size_t cap = (size_t)sd->tokens * 12 + 64;
    t.text = calloc((size_t)n_texts, sizeof *t.text);
    t.len = calloc((size_t)n_texts, sizeof *t.len);
    t.ids = calloc((size_t)n_texts * L, sizeof *t.ids);
    t.n_ids = calloc((size_t)n_texts, sizeof *t.n_ids);
    t.body = calloc((size_t)n_texts, sizeof *t.body);
    t.body_len = calloc((size_t)n_texts, sizeof *t.body_len);
    t.out = calloc((size_t)n_texts * H, sizeof *t.out);
    double *plain = calloc((size_t)reps, sizeof *plain);
    double *total = calloc((size_t)reps, sizeof *total);
    double (*parts)[OPPROF_COUNT] = calloc((size_t)reps, sizeof *parts);
    int rc = -1;
    if (!t.text || !t.len || !t.ids || !t.n_ids || !t.body || !t.body_len ||
        !t.out || !plain || !total || !parts) {
        fprintf(stderr, "opprofile: out of memory\n");
        goto out;
    }
    rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)sd->tokens;
    for (int i = 0; i < n_texts; i++) {
        if (!(t.text[i] = malloc(cap))) {
            fprintf(stderr, "opprofile: out of memory\n");
            goto out;
        }
        make_text(m, sd->tokens, t.text[i], cap);
        t.len[i] = strlen(t.text[i]);
    }
    if (run_once(m, &t, 0) == 0) /* warm-up; grows the scratch */
        goto out;
    for (int i = 0; i < n_texts; i++)
        if (t.n_ids[i] != sd->tokens) {
            fprintf(stderr, "opprofile: a %s text has %d tokens, not %d: "
                    "%s\n", sd->name, t.n_ids[i], sd->tokens, t.text[i]);
            goto out;
        }
    for (int i = 0; i < reps; i++)
        if ((plain[i] = run_once(m, &t, 0)) == 0)
            goto out;
    for (int i = 0; i < reps; i++) {
        if ((total[i] = run_once(m, &t, 1)) == 0)
            goto out;
        memcpy(parts[i], prof_ns, sizeof prof_ns);
    }
    /* The profiled repetition with the median total, whole. */
    int med = 0;
    for (int i = 0; i < reps; i++) {
        int below = 0;
        for (int j = 0; j < reps; j++)
            below += total[j] < total[i] || (total[j] == total[i] && j < i);
        if (below == reps / 2)
            med = i;
    }
    r->total_ns = total[med];
    memcpy(r->ns, parts[med], sizeof r->ns);
    qsort(plain, (size_t)reps, sizeof *plain, cmp_double);
    r->plain_ns = plain[reps / 2];
    r->n_texts = n_texts;
    r->done = 1;
    rc = 0;
out:
    if (t.text)
        for (int i = 0; i < n_texts; i++)
            free(t.text[i]);
    free(t.text);
    free(t.len);
    free(t.ids);
    free(t.n_ids);
    free(t.body);
    free(t.body_len);
    free(t.out);
    free(plain);
    free(total);
    free(parts);
    return rc;
}

/* ---- the table ------------------------------------------------------- */

typedef struct row {
    const char *label;
    int ops[6];       /* summed; -1 ends */
    int detail;       /* printed with --attention-detail only */
    int q8_only;
} row;

static const row rows[] = {
    {"tokenise", {OPPROF_TOKENIZE, -1}, 0, 0},
    {"embeddings (lookup, sums, LayerNorm)", {OPPROF_EMBED, -1}, 0, 0},
    {"QKV products (3)", {OPPROF_QKV, -1}, 0, 0},
    {"attention output product", {OPPROF_ATTN_OUT, -1}, 0, 0},
    {"FFN up product", {OPPROF_FFN_UP, -1}, 0, 0},
    {"FFN down product", {OPPROF_FFN_DOWN, -1}, 0, 0},
    {"= all linear products",
     {OPPROF_QKV, OPPROF_ATTN_OUT, OPPROF_FFN_UP, OPPROF_FFN_DOWN, -1}, 0, 0},
    {"activation quantisation (q8_0)", {OPPROF_QUANTIZE, -1}, 0, 1},
    {"attention (scores, softmax, context)",
     {OPPROF_ATTENTION, OPPROF_ATTN_KT, OPPROF_ATTN_SCORES,
      OPPROF_ATTN_SOFTMAX, OPPROF_ATTN_CONTEXT, OPPROF_ATTN_BF16}, 0, 0},
    {"- K transposed", {OPPROF_ATTN_KT, -1}, 1, 0},
    {"- scores Q.K^T", {OPPROF_ATTN_SCORES, -1}, 1, 0},
    {"- softmax", {OPPROF_ATTN_SOFTMAX, -1}, 1, 0},
    {"- context P.V", {OPPROF_ATTN_CONTEXT, -1}, 1, 0},
    {"- all of it in bf16 (AMX; q8 models)", {OPPROF_ATTN_BF16, -1}, 1, 0},
    {"- rest (task hand-out, waiting)", {OPPROF_ATTENTION, -1}, 1, 0},
    {"residual + LayerNorm (2 a layer)", {OPPROF_RESIDUAL_LN, -1}, 0, 0},
    {"GELU", {OPPROF_GELU, -1}, 0, 0},
    {"pooling + normalisation", {OPPROF_POOLING, -1}, 0, 0},
    {"other (batching, checks, copies)", {OPPROF_OTHER, -1}, 0, 0},
};

static double row_ns(const row *rw, const result *r)
{
    double s = 0;
    for (int i = 0; i < 6 && rw->ops[i] >= 0; i++)
        s += r->ns[rw->ops[i]];
    return s;
}

static void print_table(const char *label, result (*res)[N_SETS],
                        const int *threads, int n_threads,
                        const int *use_set, int is_q8)
{
    /* The columns: sets within thread counts, as bench/embed.py's. */
    const result *col[8 * N_SETS];
    int n_cols = 0;
    printf("\n### %s\n\nms per text (share of the total)\n\n| op |", label);
    for (int ti = 0; ti < n_threads; ti++)
        for (int s = 0; s < N_SETS; s++)
            if (use_set[s]) {
                col[n_cols++] = &res[ti][s];
                printf(" %s %dT |", sets[s].name, threads[ti]);
            }
    printf("\n|---|");
    for (int c = 0; c < n_cols; c++)
        printf("---|");
    printf("\n");
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        const row *rw = &rows[k];
        if ((rw->detail && !prof_detail) || (rw->q8_only && !is_q8))
            continue;
        printf("| %s |", rw->label);
        for (int c = 0; c < n_cols; c++) {
            double ns = row_ns(rw, col[c]);
            if (col[c]->done)
                printf(" %.4f (%.1f%%) |", ns / 1e6 / col[c]->n_texts,
                       100.0 * ns / col[c]->total_ns);
            else
                printf(" - |");
        }
        printf("\n");
    }
    const char *what[2] = {"total, profiled", "unprofiled"};
    for (int w = 0; w < 2; w++) {
        printf("| %s |", what[w]);
        for (int c = 0; c < n_cols; c++) {
            const result *r = col[c];
            double ns = w ? r->plain_ns : r->total_ns;
            if (r->done)
                printf(" %.4f = %.0f/s |", ns / 1e6 / r->n_texts,
                       r->n_texts / (ns / 1e9));
            else
                printf(" - |");
        }
        printf("\n");
    }
}

/* ---- main ------------------------------------------------------------ */

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return *s ? -1 : n;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: opprofile [--threads 1,2] [--sets short,medium,long] "
            "[--texts N] [--reps R] [--attention-detail] [MODEL...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads[8] = {1, 2}, n_threads = 2, texts_each = 0, reps = 5;
    int use_set[N_SETS] = {1, 1, 1};
    const char *models[8];
    int n_models = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc) {
            if ((n_threads = parse_list(argv[++i], threads, 8)) < 1)
                return usage();
        } else if (!strcmp(a, "--sets") && i + 1 < argc) {
            const char *list = argv[++i];
            for (int s = 0; s < N_SETS; s++) {
                const char *p = strstr(list, sets[s].name);
                size_t n = strlen(sets[s].name);
                use_set[s] = p && (p == list || p[-1] == ',') &&
                             (p[n] == '\0' || p[n] == ',');
            }
            if (!use_set[0] && !use_set[1] && !use_set[2])
                return usage();
        } else if (!strcmp(a, "--texts") && i + 1 < argc) {
            if ((texts_each = atoi(argv[++i])) < 1)
                return usage();
        } else if (!strcmp(a, "--reps") && i + 1 < argc) {
            if ((reps = atoi(argv[++i])) < 1)
                return usage();
        } else if (!strcmp(a, "--attention-detail")) {
            prof_detail = 1;
        } else if (a[0] == '-' || n_models == 8) {
            return usage();
        } else {
            models[n_models++] = a;
        }
    }
    if (n_models == 0) {
        models[n_models++] = "models/all-MiniLM-L6-v2-q8_0.gguf";
        models[n_models++] = "models/all-MiniLM-L6-v2";
    }
    double load[1] = {0};
    getloadavg(load, 1);
    kern_init();
    printf("## Per-op profile of lode's forward pass\n\n"
           "Kernels: %s; load average %.2f; median of %d repetitions; "
           "texts per set:", kern_isa_name(), load[0], reps);
    const char *sep = " ";
    for (int s = 0; s < N_SETS; s++)
        if (use_set[s]) {
            printf("%s%d %s (%d tokens)", sep,
                   texts_each ? texts_each : sets[s].texts, sets[s].name,
                   sets[s].tokens);
            sep = ", ";
        }
    printf(".\n");
    int rc = 0;
    for (int mi = 0; mi < n_models; mi++) {
        lode_error err = {0};
        model *m = NULL;
        if (model_load(models[mi], &m, &err)) {
            fprintf(stderr, "opprofile: %s\n", err.message);
            rc = 1;
            continue;
        }
        result res[8][N_SETS];
        memset(res, 0, sizeof res);
        for (int ti = 0; ti < n_threads; ti++) {
            pool *workers = NULL;
            if (threads[ti] > 1) {
                if (pool_create(threads[ti], &workers, &err)) {
                    fprintf(stderr, "opprofile: %s\n", err.message);
                    rc = 1;
                    continue;
                }
            }
            model_set_pool(m, workers);
            for (int s = 0; s < N_SETS; s++) {
                if (!use_set[s])
                    continue;
                fprintf(stderr, "%s %s %dT ...\n", models[mi], sets[s].name,
                        threads[ti]);
                if (profile_set(m, &sets[s],
                                texts_each ? texts_each : sets[s].texts, reps,
                                &res[ti][s]))
                    rc = 1;
            }
            model_set_pool(m, NULL);
            pool_free(workers);
        }
        char label[512];
        snprintf(label, sizeof label, "%s (%s)", models[mi],
                 model_type_name(m));
        print_table(label, res, threads, n_threads, use_set,
                    strcmp(model_type_name(m), "q8_0") == 0);
        model_free(m);
    }
    return rc;
}
