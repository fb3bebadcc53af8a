/* test_model.c - lode's embeddings against sentence-transformers itself.
 *
 * For each committed reference (the JSON files in tests/ref, written by
 * tests/ref/make_reference.py from the real Python libraries): token ids
 * must match exactly, and embeddings to cosine >= 0.99999 and max absolute
 * difference <= 1e-4 per component.  Also: a text embeds to the same bits
 * alone as in a batch, the same bits twice, and bad input gives errors. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "test.h"

#include "gguf.h"
#include "gguf_model.h"

/* Tolerances per weight type (the issues' acceptance figures). */
typedef struct tolerance {
    const char *type;
    double cos_min;       /* every text */
    double abs_max;       /* every component; 0 = not checked */
    double mean_cos_min;  /* over all texts */
    double neighbours;    /* recall@10 against the reference */
} tolerance;

static const tolerance TOL_F32 = {"f32", 0.99999, 1e-4, 0.99999, 0};
static const tolerance TOL_F16 = {"f16", 0.9999, 0, 0.9999, 0};
static const tolerance TOL_Q8_0 = {"q8_0", 0.995, 0, 0.999, 0.95};
/* lode's blocks of 128 for AMX (Q, K, V in q8_0): measured here worst
 * 0.99597, mean 0.99887, recall 96.4% (q8_0: 0.99745, 0.99936, 97.2%) */
static const tolerance TOL_Q8_128 = {"q8_128", 0.994, 0, 0.998, 0.95};

typedef struct refset {
    json_t *root, *items;
    int n, dim;
} refset;

static int load_ref(const char *path, refset *r)
{
    json_error_t jerr;
    r->root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    CHECK(r->root != NULL, "%s: %s", path, jerr.text);
    if (!r->root)
        return -1;
    r->items = json_object_get(r->root, "items");
    r->n = (int)json_array_size(r->items);
    r->dim = (int)json_integer_value(json_object_get(r->root, "dim"));
    CHECK(r->n > 0 && r->dim > 0, "%s: no items or dim", path);
    return r->n > 0 && r->dim > 0 ? 0 : -1;
}

static const char *item_text(refset *r, int i, size_t *len)
{
    json_t *t = json_object_get(json_array_get(r->items, (size_t)i), "text");
    *len = json_string_length(t);
    return json_string_value(t);
}

/* Retrieval agreement with the reference over 50 natural-language
 * queries (the first 50 reference texts of at least four words, ASCII
 * only): for each query, the top-10 neighbours among all reference texts
 * by lode's vectors and by sentence-transformers'.  *positional is the
 * share of the 500 ranks holding the same text; the return value the share
 * of lode's top-10 entries that are in the reference top-10 (recall@10).
 * Ranks 5-10 of this mixed corpus are often separated by less than the
 * quantization noise of 8-bit weights, so the positional figure is
 * reported but recall@10 is what is asserted. */
static double neighbour_agreement(const float *mine, const float *ref,
                                  json_t *items, int n, int dim,
                                  double *positional)
{
    int agree = 0, inset = 0, total = 0, queries = 0;
    int top_a[10], top_b[10];
    for (int q = 0; q < n && queries < 50; q++) {
        const char *t = json_string_value(
            json_object_get(json_array_get(items, (size_t)q), "text"));
        int words = 0, ascii = 1;
        for (const char *c = t; *c; c++) {
            ascii &= (unsigned char)*c < 128;
            words += *c != ' ' && (c == t || c[-1] == ' ');
        }
        if (words < 4 || !ascii)
            continue;
        queries++;
        for (int pass = 0; pass < 2; pass++) {
            const float *v = pass ? ref : mine;
            int *top = pass ? top_b : top_a;
            float best[10];
            for (int k = 0; k < 10; k++) {
                best[k] = -1e30f;
                top[k] = -1;
            }
            for (int j = 0; j < n; j++) {
                if (j == q)
                    continue;
                float s = 0;
                for (int d = 0; d < dim; d++)
                    s += v[(size_t)q * dim + d] * v[(size_t)j * dim + d];
                for (int k = 0; k < 10; k++)
                    if (s > best[k]) {
                        for (int m = 9; m > k; m--) {
                            best[m] = best[m - 1];
                            top[m] = top[m - 1];
                        }
                        best[k] = s;
                        top[k] = j;
                        break;
                    }
            }
        }
        for (int k = 0; k < 10; k++, total++) {
            agree += top_a[k] == top_b[k];
            for (int m = 0; m < 10; m++)
                inset += top_a[k] == top_b[m];
        }
    }
    *positional = total ? (double)agree / total : 1.0;
    return total ? (double)inset / total : 1.0;
}

static void check_model(const char *model_dir, const char *ref_path,
                        int per_text_checks, const tolerance *tol)
{
    refset r;
    if (load_ref(ref_path, &r))
        return;
    lode_error err = {0};
    model *m = NULL;
    int rc = model_load(model_dir, &m, &err);
    CHECK(rc == 0, "loading %s: %s", model_dir, err.message);
    if (rc) {
        json_decref(r.root);
        return;
    }
    CHECK(model_dim(m) == r.dim, "%s: dim %d, reference %d", model_dir,
          model_dim(m), r.dim);
    int L = model_max_seq_length(m);
    CHECK(L == json_integer_value(json_object_get(r.root, "max_seq_length")),
          "%s: max_seq_length %d", model_dir, L);

    /* Token ids, exactly. */
    int32_t *ids = malloc((size_t)L * sizeof *ids);
    int id_fail = 0;
    for (int i = 0; i < r.n; i++) {
        json_t *it = json_array_get(r.items, (size_t)i);
        json_t *want = json_object_get(it, "ids");
        size_t len;
        const char *text = item_text(&r, i, &len);
        int n_ids = 0, n_full = 0;
        rc = model_tokenize(m, text, len, ids, &n_ids, &n_full, &err);
        int same = rc == 0 && (size_t)n_ids == json_array_size(want);
        for (int j = 0; same && j < n_ids; j++)
            same = ids[j] == json_integer_value(json_array_get(want, (size_t)j));
        json_t *nf = json_object_get(it, "n_full");
        if (nf)
            same = same && n_full == json_integer_value(nf);
        if (!same && id_fail++ < 5)
            fprintf(stderr, "  %s item %d: token ids differ (rc %d, %d ids)\n",
                    model_dir, i, rc, n_ids);
    }
    CHECK(id_fail == 0, "%s: %d of %d texts tokenize differently",
          model_dir, id_fail, r.n);

    /* Embeddings of all texts in one batch. */
    const char **texts = malloc((size_t)r.n * sizeof *texts);
    size_t *lens = malloc((size_t)r.n * sizeof *lens);
    for (int i = 0; i < r.n; i++)
        texts[i] = item_text(&r, i, &lens[i]);
    float *out = malloc((size_t)r.n * r.dim * sizeof *out);
    int n_trunc = -1;
    rc = model_embed(m, r.n, texts, lens, out, &n_trunc, &err);
    CHECK(rc == 0, "%s: embed: %s", model_dir, err.message);
    int emb_fail = 0, want_trunc = 0;
    double worst_cos = 1.0, worst_abs = 0.0, sum_cos = 0.0;
    float *refv = malloc((size_t)r.n * r.dim * sizeof *refv);
    for (int i = 0; rc == 0 && i < r.n; i++) {
        json_t *it = json_array_get(r.items, (size_t)i);
        json_t *e = json_object_get(it, "embedding");
        json_t *nf = json_object_get(it, "n_full");
        want_trunc += nf && json_integer_value(nf) > L;
        double dot = 0, na = 0, nb = 0, md = 0;
        for (int d = 0; d < r.dim; d++) {
            double a = out[(size_t)i * r.dim + d];
            double b = json_number_value(json_array_get(e, (size_t)d));
            refv[(size_t)i * r.dim + d] = (float)b;
            dot += a * b;
            na += a * a;
            nb += b * b;
            if (fabs(a - b) > md)
                md = fabs(a - b);
        }
        double cos = dot / (sqrt(na * nb) + 1e-30);
        sum_cos += cos;
        if (cos < worst_cos)
            worst_cos = cos;
        if (md > worst_abs)
            worst_abs = md;
        if ((cos < tol->cos_min || (tol->abs_max && md > tol->abs_max)) &&
            emb_fail++ < 5)
            fprintf(stderr, "  %s item %d: cos %.7f max|diff| %.2g\n",
                    model_dir, i, cos, md);
    }
    CHECK(emb_fail == 0, "%s: %d of %d embeddings off", model_dir, emb_fail,
          r.n);
    double mean_cos = sum_cos / r.n;
    CHECK(rc != 0 || mean_cos >= tol->mean_cos_min, "%s: mean cosine %.6f",
          model_dir, mean_cos);
    double agreement = 1.0, positional = 1.0;
    if (rc == 0) {
        agreement = neighbour_agreement(out, refv, r.items, r.n, r.dim,
                                        &positional);
        CHECK(agreement >= tol->neighbours,
              "%s: recall@10 against the reference %.1f%%", model_dir,
              100 * agreement);
    }
    free(refv);
    CHECK(rc != 0 || n_trunc == want_trunc, "%s: %d truncated, expected %d",
          model_dir, n_trunc, want_trunc);
    printf("  %s (%s, %s): %d texts, worst cosine %.9f, mean %.9f, worst "
           "|diff| %.3g, top-10: recall %.1f%%, same rank %.1f%%\n",
           model_dir, model_type_name(m), kern_isa_name(), r.n, worst_cos,
           mean_cos, worst_abs, 100 * agreement, 100 * positional);

    /* Batch independence and determinism: each text alone gives the same
     * bits as in the batch. */
    float *one = malloc((size_t)r.dim * sizeof *one);
    int step = per_text_checks ? 1 : 7, differ = 0;
    for (int i = 0; rc == 0 && i < r.n; i += step) {
        if (model_embed(m, 1, &texts[i], &lens[i], one, NULL, &err) != 0 ||
            memcmp(one, out + (size_t)i * r.dim, (size_t)r.dim * sizeof *one))
            differ++;
    }
    CHECK(differ == 0, "%s: %d texts differ alone vs in a batch", model_dir,
          differ);
    float *again = malloc((size_t)r.n * r.dim * sizeof *again);
    if (rc == 0) {
        /* Reverse order: different batch composition, same answers. */
        const char **rev = malloc((size_t)r.n * sizeof *rev);
        size_t *rlens = malloc((size_t)r.n * sizeof *rlens);
        for (int i = 0; i < r.n; i++) {
            rev[i] = texts[r.n - 1 - i];
            rlens[i] = lens[r.n - 1 - i];
        }
        rc = model_embed(m, r.n, rev, rlens, again, NULL, &err);
        int same = rc == 0;
        for (int i = 0; same && i < r.n; i++)
            same = !memcmp(again + (size_t)(r.n - 1 - i) * r.dim,
                           out + (size_t)i * r.dim,
                           (size_t)r.dim * sizeof *out);
        CHECK(same, "%s: reversed batch differs", model_dir);
        free(rev);
        free(rlens);
    }
    free(again);
    free(one);
    free(out);
    free(texts);
    free(lens);
    free(ids);
    model_free(m);
    json_decref(r.root);
}

static void check_errors(void)
{
    lode_error err = {0};
    model *m = NULL;
    CHECK(model_load("/nonexistent/model", &m, &err) == LODE_ENOTFOUND &&
              strstr(err.message, "/nonexistent/model"),
          "missing model: %s", err.message);
    if (model_load("tests/ref/tiny-cased-cls", &m, &err) != 0) {
        CHECK(0, "tiny model: %s", err.message);
        return;
    }
    float v[1024];
    const char *bad_utf8 = "abc\xff" "def";
    size_t len = strlen(bad_utf8);
    CHECK(model_embed(m, 1, &bad_utf8, &len, v, NULL, &err) == LODE_EUTF8,
          "invalid UTF-8 accepted");
    CHECK(strstr(err.message, "UTF-8") != NULL, "message: %s", err.message);
    const char *empty = "";
    len = 0;
    CHECK(model_embed(m, 1, &empty, &len, v, NULL, &err) == LODE_EEMPTY,
          "empty text accepted");
    const int32_t bad_ids[] = {1, 2, 99999999};
    const int32_t *ids = bad_ids;
    int n = 3;
    CHECK(model_embed_ids(m, 1, &ids, &n, v, NULL, &err) == LODE_EINVAL,
          "out-of-vocabulary id accepted");
    model_free(m);
}

/* Convert a Hugging Face directory to GGUF in `type` and check the file
 * against the same reference. */
static void check_gguf(const char *src, const char *ref, uint32_t type,
                       const tolerance *tol, int per_text)
{
    char path[] = "/tmp/lode-test-model-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0, "mkstemp");
        return;
    }
    close(fd);
    lode_error err = {0};
    int rc = gguf_model_convert(src, path, type, &err);
    CHECK(rc == 0, "convert %s to %s: %s", src, tol->type, err.message);
    if (rc == 0)
        check_model(path, ref, per_text, tol);
    unlink(path);
}

int main(void)
{
    kern_init();
    check_model("models/all-MiniLM-L6-v2", "tests/ref/minilm.json", 0,
                &TOL_F32);
    check_model("tests/ref/tiny-cased-cls", "tests/ref/tiny-cased-cls.json", 1,
                &TOL_F32);
    check_model("tests/ref/tiny-uncased-max", "tests/ref/tiny-uncased-max.json",
                1, &TOL_F32);
    check_errors();

    /* GGUF: f32 is as exact as the original; f16, q8_0 and q8_128 within
     * the tolerances of their types. */
    check_gguf("models/all-MiniLM-L6-v2", "tests/ref/minilm.json",
               GGUF_TYPE_F32, &TOL_F32, 0);
    check_gguf("models/all-MiniLM-L6-v2", "tests/ref/minilm.json",
               GGUF_TYPE_F16, &TOL_F16, 0);
    check_gguf("models/all-MiniLM-L6-v2", "tests/ref/minilm.json",
               GGUF_TYPE_Q8_0, &TOL_Q8_0, 0);
    check_gguf("models/all-MiniLM-L6-v2", "tests/ref/minilm.json",
               GGUF_TYPE_LODE_Q8_128, &TOL_Q8_128, 0);
    check_gguf("tests/ref/tiny-cased-cls", "tests/ref/tiny-cased-cls.json",
               GGUF_TYPE_F32, &TOL_F32, 0);
    check_gguf("tests/ref/tiny-uncased-max", "tests/ref/tiny-uncased-max.json",
               GGUF_TYPE_F32, &TOL_F32, 0);
    TEST_MAIN_END();
}
