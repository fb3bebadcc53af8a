/* eval.h - retrieval quality of a collection on labelled queries:
 * recall@k, MRR and nDCG@10 per search mode, for `lode eval` and
 * POST /eval.
 *
 * A query set is JSON Lines (or, for the API, an array), one object per
 * query:
 *   {"query": "How many vacation days do I get?",
 *    "relevant": ["data/sample/annual-leave.md", 17, {"chunk_id": 9}],
 *    "passage": "Every full-time employee gets 25 days",   (optional)
 *    "id": "q001", "kind": "direct"}                          (optional)
 * A relevant item is a string (a document's source path or external id),
 * an integer or {"chunk_id": N} (a chunk id), or {"document_id": N}.  A
 * query whose items are all chunk ids is judged on chunks; any other on
 * documents: the ranking is then the retrieved chunks' documents in order
 * of first appearance (a document found twice counts once, where it is
 * first found), and as many chunks are retrieved as it takes to rank
 * max(k, 10) documents (up to 2000).  A query without relevant items (an
 * off-topic question, say) is skipped and counted as such.
 *
 * Metrics, averaged over the judged queries (relevance is binary):
 *   recall@k   relevant units among the first k / all relevant units
 *   MRR        1 / rank of the first relevant unit (0 when none is found
 *              among the max(k, 10) ranked)
 *   nDCG@10    DCG of the first 10 over the DCG of a perfect ranking,
 *              DCG = sum of 1 / log2(rank + 1) over relevant ranks
 *   passage@k  over the queries with a passage: the passage (spaces
 *              collapsed) inside the text of one of the first k chunks
 * and the time of each query's searches (p50, p99), not its embedding.
 * The same numbers come for each distinct "kind".
 *
 * Work is done in slices of queries (eval_run on [from, to)) into an
 * accumulator, so the server can release its store lock between slices.
 */
#ifndef LODE_EVAL_H
#define LODE_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "store.h"

#define EVAL_NDCG_AT 10
#define EVAL_MAX_CHUNKS 2000

typedef enum eval_rel_kind { EVAL_REL_NAME, EVAL_REL_CHUNK, EVAL_REL_DOCUMENT } eval_rel_kind;

typedef struct eval_rel {
    eval_rel_kind kind;
    char *name;                 /* EVAL_REL_NAME: a source or external id */
    int64_t id;                 /* the chunk or document id */
} eval_rel;

typedef struct eval_query {
    char *id;                   /* NULL when the line has none */
    char *query;
    char *passage;              /* NULL or "" when none */
    int kind;                   /* index into eval_set.kinds, -1: none */
    eval_rel *relevant;
    size_t n_relevant;
    bool by_chunk;              /* every relevant item is a chunk id */
} eval_query;

typedef struct eval_set {
    eval_query *queries;
    size_t n;
    char **kinds;               /* distinct "kind" values, first seen first */
    size_t n_kinds;
} eval_set;

/* Parse JSON Lines (blank lines allowed); errors name the line.  Free
 * with eval_set_free. */
int eval_parse_jsonl(const char *data, size_t len, eval_set *out, lode_error *err);
/* The same from a JSON array of query objects. */
int eval_parse_array(json_t *array, eval_set *out, lode_error *err);
void eval_set_free(eval_set *set);

/* One way of searching to measure. */
typedef struct eval_config {
    store_mode mode;
    store_fusion fusion;
    float alpha;
} eval_config;

/* "vector", "keyword", "hybrid rrf", "hybrid convex alpha=0.30". */
void eval_config_name(const eval_config *c, char *buf, size_t size);

typedef struct eval_metrics {
    size_t queries;             /* judged */
    size_t skipped;             /* without relevant items */
    size_t with_passage;
    double recall, mrr, ndcg, passage;
    double p50_ms, p99_ms;      /* search time per query */
} eval_metrics;

/* Sums over the queries done so far (opaque). */
typedef struct eval_acc eval_acc;

/* An accumulator for set (the kinds come from it).  NULL on ENOMEM. */
eval_acc *eval_acc_new(const eval_set *set);
void eval_acc_free(eval_acc *acc);

/* What every search of a run shares; vectors holds one row of dimension
 * floats per query (NULL for keyword mode alone). */
typedef struct eval_params {
    const char *collection;
    const char *model_id;
    const float *vectors;
    int dimension;
    size_t k;
    bool keep_rankings;         /* remember each query's first max(k, 10)
                                   chunk ids, for eval_report_json */
} eval_params;

/* Search and judge queries [from, to) of set under cfg, into acc. */
int eval_run(store *s, const eval_set *set, size_t from, size_t to,
             const eval_params *p, const eval_config *cfg, eval_acc *acc,
             lode_error *err);
/* The relevant names of the set that are neither a source nor an external
 * id of the collection (label typos show up here). */
int eval_missing_names(store *s, const char *collection, const eval_set *set,
                       size_t *n_missing, lode_error *err);
/* Averages: overall (kind -1) or for set->kinds[kind]. */
void eval_metrics_of(const eval_acc *acc, int kind, eval_metrics *out);

/* {"config", "mode", "fusion"?, "alpha"?, "recall@k", "mrr", "ndcg@10",
 *  "passage@k"?, "queries", "skipped", "search_ms": {"p50", "p99"}}, with
 * "by_kind": {KIND: {...}} when the set has kinds, and "rankings": [[chunk
 * ids], ...] (one per query, [] when skipped) when they were kept. */
json_t *eval_report_json(const eval_acc *acc, const eval_set *set,
                         const eval_config *cfg, size_t k);

#endif
