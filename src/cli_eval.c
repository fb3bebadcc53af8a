/* cli_eval.c - `lode eval QUERIES.jsonl`: recall@k, MRR and nDCG@10 of a
 * collection for each search mode (eval.h has the file format and the
 * definitions), as a table or, with --json, as JSON.
 *
 * The queries are embedded once, in one batch, and every configuration
 * (vector, keyword, hybrid with RRF, hybrid convex at each alpha asked
 * for) searches with the same vectors, so a sweep of alpha costs searches
 * only.  Keyword alone needs no model and loads none.  --rankings (with
 * --json) adds each query's first chunk ids, for comparing two models'
 * rankings (bench/).
 */
#include "cli_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "ingest.h"
#include "model.h"
#include "pool.h"
#include "store.h"

#define EVAL_MAX_CONFIGS 32

static int fail(const lode_error *err)
{
    fprintf(stderr, "lode: %s\n", err->message[0] ? err->message
                                                  : lode_strerror(err->code));
    return 1;
}

static int usage_error(const char *what)
{
    fprintf(stderr, "lode eval: %s (see `lode help`)\n", what);
    return 2;
}

static char *read_all(const char *path, size_t *len, lode_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        lode_error_set(err, LODE_EIO, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) {
                free(buf);
                buf = NULL;
            }
            buf = grown;
        }
    }
    bool bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf || bad) {
        free(buf);
        lode_error_set(err, bad ? LODE_EIO : LODE_ENOMEM, "cannot read %s", path);
        return NULL;
    }
    *len = n;
    return buf;
}

/* --mode and --alpha lists into configurations. */
static int make_configs(const char *modes, store_fusion fusion, const char *alphas,
                        eval_config *out, size_t *n)
{
    float alpha_list[EVAL_MAX_CONFIGS];
    size_t n_alpha = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", alphas ? alphas : "");
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double a = strtod(t, &end);
        if (end == t || *end || !(a >= 0 && a <= 1) || n_alpha == EVAL_MAX_CONFIGS)
            return usage_error("--alpha takes numbers from 0 to 1, comma-separated");
        alpha_list[n_alpha++] = (float)a;
    }
    if (!n_alpha)
        alpha_list[n_alpha++] = STORE_DEFAULT_ALPHA;
    *n = 0;
    snprintf(buf, sizeof buf, "%s", modes);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool all = strcmp(t, "all") == 0;
        store_mode m;
        if (!all && store_mode_parse(t, &m))
            return usage_error("--mode is vector, keyword, hybrid or all");
        if (all || m == STORE_MODE_VECTOR)
            out[(*n)++] = (eval_config){STORE_MODE_VECTOR, 0, 0};
        if (all || m == STORE_MODE_KEYWORD)
            out[(*n)++] = (eval_config){STORE_MODE_KEYWORD, 0, 0};
        if ((all || m == STORE_MODE_HYBRID) && (all || fusion == STORE_FUSION_RRF))
            out[(*n)++] = (eval_config){STORE_MODE_HYBRID, STORE_FUSION_RRF, 0};
        if ((all || m == STORE_MODE_HYBRID) && (all || fusion == STORE_FUSION_CONVEX))
            for (size_t i = 0; i < n_alpha && *n < EVAL_MAX_CONFIGS - 3; i++)
                out[(*n)++] = (eval_config){STORE_MODE_HYBRID, STORE_FUSION_CONVEX,
                                            alpha_list[i]};
    }
    return *n ? 0 : usage_error("no --mode");
}

static void print_row(const char *name, const eval_metrics *m, bool passages)
{
    printf("%-24s %9.3f %7.3f %8.3f", name, m->recall, m->mrr, m->ndcg);
    if (passages)
        printf(" %9.3f", m->passage);
    printf(" %8.2f %7.2f\n", m->p50_ms, m->p99_ms);
}

int cli_eval(int argc, char **argv)
{
    const char *db = CLI_DEFAULT_DB, *collection = INGEST_DEFAULT_COLLECTION;
    const char *model_path = model_default_path(), *modes = "all", *alphas = NULL;
    const char *file = NULL, *val;
    store_fusion fusion = STORE_DEFAULT_FUSION;
    bool as_json = false, by_kind = false, rankings = false;
    long k = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = strcmp(a, "--db") == 0 ? &db
                         : strcmp(a, "--collection") == 0 ? &collection
                         : strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0 ? &model_path
                         : strcmp(a, "--mode") == 0 ? &modes
                         : strcmp(a, "--alpha") == 0 ? &alphas : NULL;
        if (dst) {
            if (!(*dst = cli_value(argc, argv, &i)))
                return 2;
        } else if (strcmp(a, "-k") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                return 2;
            if (cli_parse_int(val, 1, 1000, &k))
                return usage_error("-k needs a number from 1 to 1000");
        } else if (strcmp(a, "--fusion") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                return 2;
            if (store_fusion_parse(val, &fusion))
                return usage_error("--fusion is rrf or convex");
        } else if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (strcmp(a, "--by-kind") == 0) {
            by_kind = true;
        } else if (strcmp(a, "--rankings") == 0) {
            rankings = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lode eval: unknown option %s\n", a);
            return 2;
        } else if (!file) {
            file = a;
        } else {
            return usage_error("one QUERIES file");
        }
    }
    if (!file)
        return usage_error("give a QUERIES.jsonl file");
    eval_config configs[EVAL_MAX_CONFIGS];
    size_t n_configs;
    int u = make_configs(modes, fusion, alphas, configs, &n_configs);
    if (u)
        return u;
    bool need_vectors = false;
    for (size_t i = 0; i < n_configs; i++)
        need_vectors |= configs[i].mode != STORE_MODE_KEYWORD;

    lode_error err = {0};
    eval_set set = {0};
    size_t len = 0;
    char *data = read_all(file, &len, &err);
    int rc = data ? eval_parse_jsonl(data, len, &set, &err) : err.code;
    free(data);
    if (rc) {
        lode_error_prefix(&err, "%s", file);
        return fail(&err);
    }
    store *s = NULL;
    model *m = NULL;
    pool *p = NULL;
    float *vectors = NULL;
    char model_id[256] = "";
    size_t missing = 0;
    rc = cli_open_store(db, true, false, &s, &err);
    if (!rc)
        rc = eval_missing_names(s, collection, &set, &missing, &err);
    if (!rc && need_vectors)
        rc = cli_load_model(model_path, 0, &m, &p, &err);
    if (!rc && need_vectors) {
        const char **texts = malloc(set.n * sizeof *texts);
        size_t *lens = malloc(set.n * sizeof *lens);
        vectors = malloc(set.n * (size_t)model_dim(m) * sizeof *vectors);
        if (!texts || !lens || !vectors)
            rc = lode_error_set(&err, LODE_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < set.n; i++) {
            texts[i] = set.queries[i].query;
            lens[i] = strlen(texts[i]);
        }
        if (!rc && (rc = model_embed(m, (int)set.n, texts, lens, vectors, NULL, &err)))
            lode_error_prefix(&err, "embedding the queries");
        ingest_model_id(m, model_id, sizeof model_id);
        free(texts);
        free(lens);
    }
    eval_params params = {collection, model_id, vectors, m ? model_dim(m) : 0, (size_t)k,
                          rankings && as_json};
    eval_acc *accs[EVAL_MAX_CONFIGS] = {0};
    for (size_t c = 0; !rc && c < n_configs; c++) {
        if (!(accs[c] = eval_acc_new(&set)))
            rc = lode_error_set(&err, LODE_ENOMEM, "out of memory");
        else
            rc = eval_run(s, &set, 0, set.n, &params, &configs[c], accs[c], &err);
    }
    eval_metrics overall = {0};
    if (!rc)
        eval_metrics_of(accs[0], -1, &overall);
    if (!rc && as_json) {
        json_t *results = json_array();
        for (size_t c = 0; c < n_configs; c++)
            json_array_append_new(results, eval_report_json(accs[c], &set, &configs[c],
                                                            (size_t)k));
        json_t *out = json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "collection", collection,
                                "k", (json_int_t)k, "queries", (json_int_t)overall.queries,
                                "skipped", (json_int_t)overall.skipped,
                                "missing_relevant", (json_int_t)missing, "results", results);
        if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) ||
            fputc('\n', stdout) == EOF)
            rc = lode_error_set(&err, LODE_EIO, "writing to stdout failed");
        json_decref(out);
    } else if (!rc) {
        bool passages = overall.with_passage > 0;
        printf("collection \"%s\": %zu queries judged, %zu without relevant items "
               "skipped; k = %ld\n", collection, overall.queries, overall.skipped, k);
        char head[32];
        snprintf(head, sizeof head, "recall@%ld", k);
        printf("%-24s %9s %7s %8s", "mode", head, "MRR", "nDCG@10");
        snprintf(head, sizeof head, "passage@%ld", k);
        if (passages)
            printf(" %9s", head);
        printf(" %8s %7s\n", "p50 ms", "p99 ms");
        for (size_t c = 0; c < n_configs; c++) {
            char name[64];
            eval_config_name(&configs[c], name, sizeof name);
            for (int kind = -1; kind < (by_kind ? (int)set.n_kinds : 0); kind++) {
                eval_metrics mm;
                eval_metrics_of(accs[c], kind, &mm);
                char label[96];
                snprintf(label, sizeof label, "%s%s", kind < 0 ? "" : "  ",
                         kind < 0 ? name : set.kinds[kind]);
                if (mm.queries)
                    print_row(label, &mm, passages);
                else
                    printf("%-24s (%zu without relevant items)\n", label, mm.skipped);
            }
        }
    }
    for (size_t c = 0; c < n_configs; c++)
        eval_acc_free(accs[c]);
    if (!rc && missing)
        fprintf(stderr, "lode eval: %zu relevant items name no document of \"%s\" "
                        "(neither a source nor an external id)\n", missing, collection);
    free(vectors);
    eval_set_free(&set);
    store_close(s);
    model_free(m);
    pool_free(p);
    return rc ? fail(&err) : 0;
}
