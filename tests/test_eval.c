/* test_eval.c - recall@k, MRR, nDCG@10 and passage@k (eval.c) on a tiny
 * store whose rankings are known by construction, the parser's errors,
 * and labels that name nothing. */

#include "test.h"
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL "eval-model-4"

static void add(store *s, const char *source, const char *ext, int n,
                const float (*vecs)[4], const char *const *texts)
{
    store_chunk_in ch[4];
    for (int i = 0; i < n; i++)
        ch[i] = (store_chunk_in){.text = texts[i], .char_end = 10, .vector = vecs[i],
                                 .dimension = 4};
    store_document_in d = {.model_id = MODEL, .source = source, .external_id = ext,
                           .chunks = ch, .n_chunks = (size_t)n};
    lode_error err = {0};
    CHECK(store_add_document(s, "c", &d, NULL, &err) == 0, "add %s: %s", source, err.message);
}

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-4;
}

int main(void)
{
    char path[] = "/tmp/lode-test-eval-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    store *s;
    lode_error err = {0};
    CHECK(store_open(path, NULL, &s, &err) == 0, "open: %s", err.message);
    CHECK(store_create_collection(s, "c", MODEL, 4, STORE_COSINE, &err) == 0, "create");
    /* chunk ids 1..5: A1 A2 B C D, along the axes */
    const float va[2][4] = {{1, 0, 0, 0}, {0.9f, 0.1f, 0, 0}}, vb[1][4] = {{0, 1, 0, 0}},
                vc[1][4] = {{0, 0, 1, 0}}, vd[1][4] = {{0, 0, 0, 1}};
    const char *ta[] = {"alpha apple", "alpha banana"}, *tb[] = {"beta"},
               *tc[] = {"gamma"}, *td[] = {"delta"};
    add(s, "a.md", "A", 2, va, ta);
    add(s, "b.md", NULL, 1, vb, tb);
    add(s, "c.md", NULL, 1, vc, tc);
    add(s, "d.md", NULL, 1, vd, td);

    const char jsonl[] =
        "{\"query\": \"q1\", \"relevant\": [\"b.md\"], \"passage\": \"alpha  *apple*\", \"kind\": \"x\"}\n"
        "\n"
        "{\"query\": \"q2\", \"relevant\": [\"A\", \"d.md\"], \"kind\": \"y\"}\n"
        "{\"query\": \"q3\", \"relevant\": [2], \"kind\": \"x\", \"id\": 7}\n"
        "{\"query\": \"q4\", \"relevant\": [], \"kind\": \"y\"}\n"
        "{\"query\": \"q5\", \"relevant\": [\"nothing.md\", {\"document_id\": 3}]}\n";
    eval_set set;
    CHECK(eval_parse_jsonl(jsonl, sizeof jsonl - 1, &set, &err) == 0, "parse: %s", err.message);
    CHECK(set.n == 5 && set.n_kinds == 2 && set.queries[2].by_chunk &&
          !set.queries[1].by_chunk && strcmp(set.queries[2].id, "7") == 0, "parsed");
    size_t missing = 0;
    CHECK(eval_missing_names(s, "c", &set, &missing, &err) == 0 && missing == 1,
          "one label names nothing: %zu", missing);

    /* every query's vector is e1: ranking A1, A2, B, C, D (ties: lower id);
     * documents A, B, C, D */
    float vectors[5][4] = {{1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}};
    eval_params p = {"c", MODEL, &vectors[0][0], 4, 2, false};
    eval_config vec = {STORE_MODE_VECTOR, 0, 0};
    eval_acc *acc = eval_acc_new(&set);
    /* in two slices, as the server runs it */
    CHECK(eval_run(s, &set, 0, 2, &p, &vec, acc, &err) == 0, "run: %s", err.message);
    CHECK(eval_run(s, &set, 2, 5, &p, &vec, acc, &err) == 0, "run: %s", err.message);
    eval_metrics m, x, y;
    eval_metrics_of(acc, -1, &m);
    eval_metrics_of(acc, 0, &x);
    eval_metrics_of(acc, 1, &y);
    /* q1: B at 2 -> recall@2 1, RR .5, nDCG 1/log2(3)
     * q2: A at 1, D at 4 -> recall@2 .5, RR 1, nDCG (1 + 1/log2 5)/(1 + 1/log2 3)
     * q3: chunk 2 at 2 -> recall 1, RR .5, nDCG 1/log2 3
     * q5: document 3 (C) at 3, nothing.md never -> recall 0, RR 1/3,
     *     nDCG (1/log2 4)/(1 + 1/log2 3) */
    double n1 = 1 / log2(3), n2 = (1 + 1 / log2(5)) / (1 + 1 / log2(3)),
           n5 = 0.5 / (1 + 1 / log2(3));
    CHECK(m.queries == 4 && m.skipped == 1, "judged %zu skipped %zu", m.queries, m.skipped);
    CHECK(near(m.recall, (1 + 0.5 + 1 + 0) / 4), "recall %g", m.recall);
    CHECK(near(m.mrr, (0.5 + 1 + 0.5 + 1.0 / 3) / 4), "mrr %g", m.mrr);
    CHECK(near(m.ndcg, (n1 + n2 + n1 + n5) / 4), "ndcg %g", m.ndcg);
    CHECK(m.with_passage == 1 && near(m.passage, 1), "passage %g of %zu", m.passage,
          m.with_passage);
    CHECK(x.queries == 2 && near(x.mrr, 0.5) && near(x.recall, 1), "kind x");
    CHECK(y.queries == 1 && y.skipped == 1 && near(y.mrr, 1), "kind y");
    CHECK(m.p50_ms >= 0 && m.p99_ms >= m.p50_ms, "times");
    json_t *rep = eval_report_json(acc, &set, &vec, 2);
    CHECK(rep && json_real_value(json_object_get(rep, "recall@2")) == m.recall &&
          json_object_get(json_object_get(rep, "by_kind"), "x"), "report");
    json_decref(rep);
    eval_acc_free(acc);

    /* the rankings kept: the first max(k, 10) chunk ids, [] when skipped */
    p.keep_rankings = true;
    acc = eval_acc_new(&set);
    CHECK(eval_run(s, &set, 0, 5, &p, &vec, acc, &err) == 0, "run: %s", err.message);
    rep = eval_report_json(acc, &set, &vec, 2);
    json_t *rk = json_object_get(rep, "rankings");
    CHECK(json_array_size(rk) == 5 && json_array_size(json_array_get(rk, 3)) == 0 &&
          json_array_size(json_array_get(rk, 0)) == 5 &&
          json_integer_value(json_array_get(json_array_get(rk, 0), 1)) == 2, "rankings");
    json_decref(rep);
    eval_acc_free(acc);

    /* keyword mode needs no vectors: "alpha" ranks A's chunks */
    eval_set one;
    const char kw[] = "{\"query\": \"banana alpha\", \"relevant\": [2]}";
    CHECK(eval_parse_jsonl(kw, sizeof kw - 1, &one, &err) == 0, "parse kw");
    eval_params pk = {"c", NULL, NULL, 0, 1, false};
    eval_config kc = {STORE_MODE_KEYWORD, 0, 0};
    acc = eval_acc_new(&one);
    CHECK(eval_run(s, &one, 0, 1, &pk, &kc, acc, &err) == 0, "keyword run: %s", err.message);
    eval_metrics_of(acc, -1, &m);
    CHECK(m.queries == 1 && near(m.mrr, 1) && near(m.recall, 1), "keyword mrr %g", m.mrr);
    eval_acc_free(acc);
    eval_set_free(&one);

    /* errors name the line */
    const char bad[] = "{\"query\": \"ok\"}\n{\"query\": 3}\n";
    CHECK(eval_parse_jsonl(bad, sizeof bad - 1, &one, &err) == LODE_EINVAL &&
          strstr(err.message, "line 2"), "bad line: %s", err.message);
    const char bad_rel[] = "{\"query\": \"ok\", \"relevant\": [true]}";
    CHECK(eval_parse_jsonl(bad_rel, sizeof bad_rel - 1, &one, &err) == LODE_EINVAL,
          "bad relevant item");
    CHECK(eval_parse_jsonl("\n\n", 2, &one, &err) == LODE_EINVAL, "no queries");
    json_t *arr = json_loads("[{\"query\": \"q\", \"relevant\": [\"a.md\"]}]", 0, NULL);
    CHECK(eval_parse_array(arr, &one, &err) == 0 && one.n == 1, "array");
    eval_set_free(&one);
    json_decref(arr);

    eval_set_free(&set);
    store_close(s);
    unlink(path);
    char side[64];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    TEST_MAIN_END();
}
