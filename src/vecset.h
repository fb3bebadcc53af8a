/* vecset.h - one collection's vectors in one contiguous array, and exact
 * top-k search over them.
 *
 * Rows are `dim` values each, stored back to back, either as float32 or as
 * int8 with one float scale per row (symmetric quantisation: value ~= q *
 * scale, scale = max|v| / 127).  Each row carries an id (the chunk id) and a
 * group (the document id), so the store can remove a document's rows
 * without an index.  Removal is swap-remove: the last row moves into the
 * hole, so the array stays dense and no compaction pass is ever needed; row
 * order is therefore not meaningful.
 *
 * Scores are "higher is better" for every metric:
 *   VECSET_COSINE  dot(q/|q|, v), v stored normalised by the caller   [-1, 1]
 *   VECSET_DOT     dot(q, v)
 *   VECSET_L2      -|q - v|^2  (negated squared Euclidean distance, <= 0)
 * With int8 rows the query is quantised the same way and scores are
 * computed from the quantised values (error about 1% of |q||v|).
 *
 * Appending never allocates once vecset_reserve() has made room: the store
 * reserves before it commits a transaction so that updating the array after
 * the commit cannot fail.  A vecset is not thread-safe for writes; searches
 * only read it.
 */
#ifndef LODE_VECSET_H
#define LODE_VECSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum vecset_kind { VECSET_F32, VECSET_I8 } vecset_kind;
typedef enum vecset_metric { VECSET_COSINE, VECSET_DOT, VECSET_L2 } vecset_metric;

typedef struct vecset {
    int dim;
    vecset_kind kind;
    vecset_metric metric;
    size_t count, capacity;         /* rows in use, rows allocated */
    float *f32;                     /* [capacity][dim], VECSET_F32 only */
    int8_t *i8;                     /* [capacity][dim], VECSET_I8 only */
    float *scale;                   /* [capacity], VECSET_I8 only */
    float *norm2;                   /* [capacity] |v|^2 of the stored row (L2) */
    int64_t *ids;                   /* [capacity] chunk id */
    int64_t *groups;                /* [capacity] document id */
    size_t *index;                  /* id -> row + 1, open addressing, */
    size_t index_mask;              /* built by vecset_score_ids when */
    bool index_stale;               /* rows changed since */
} vecset;

typedef struct vecset_hit {
    int64_t id, group;
    float score;
} vecset_hit;

void vecset_init(vecset *vs, int dim, vecset_kind kind, vecset_metric metric);
void vecset_free(vecset *vs);
/* Make room for at least `rows` rows in total: exactly that many for an
 * empty set (loading), at least half as many again as now when growing.
 * LODE_ENOMEM on failure, leaving the set unchanged. */
int vecset_reserve(vecset *vs, size_t rows, lode_error *err);
/* Append one row (dim floats, copied).  Grows the arrays when needed, which
 * is the only way it can fail (LODE_ENOMEM). */
int vecset_append(vecset *vs, int64_t id, int64_t group, const float *v,
                  lode_error *err);
/* Remove every row whose group is in `groups` (sorted ascending, n of
 * them).  Returns the number of rows removed. */
size_t vecset_remove_groups(vecset *vs, const int64_t *groups, size_t n);
/* Move every row of group `from` to group `to`; returns how many. */
size_t vecset_regroup(vecset *vs, int64_t from, int64_t to);
/* Bytes of memory held by the arrays. */
size_t vecset_bytes(const vecset *vs);

/* Exact top-k.  `query` has dim floats.  `allow` is NULL (all rows) or a
 * bitmap of vs->count bits: row i is a candidate when bit i is set.  Rows
 * scoring below `min_score` are dropped (pass -INFINITY for none).  Writes
 * up to k hits to out[] (room for k), best first (ties: lower id first),
 * and their number to *n_out. */
int vecset_search(const vecset *vs, const float *query, size_t k,
                  const uint64_t *allow, float min_score, vecset_hit *out,
                  size_t *n_out, lode_error *err);

/* The scores of the rows with ids[0..n) for query, exactly as
 * vecset_search computes them (the same kernel); NAN for an id not in the
 * set.  Builds an id -> row index the first time after the rows changed
 * (O(count) once, then O(1) per id), which is why vs is not const: the
 * store's single-threaded use makes that safe.  LODE_ENOMEM. */
int vecset_score_ids(vecset *vs, const float *query, const int64_t *ids, size_t n,
                     float *out, lode_error *err);

/* Scale v (dim values) to unit length in place; a zero vector is left as
 * it is.  The store uses it for cosine collections before storing. */
void vecset_normalize(float *v, int dim);

/* The inner loops, exported for the test that compares each with its
 * scalar reference.  `_ref` versions are the definition: plain loops in
 * index order. */
float vecset_dot_f32(const float *a, const float *b, int n);
float vecset_dot_f32_ref(const float *a, const float *b, int n);
int32_t vecset_dot_i8(const int8_t *a, const int8_t *b, int n);
int32_t vecset_dot_i8_ref(const int8_t *a, const int8_t *b, int n);
/* out[r] = the int8 dot product of row r (of n rows of dim) with q, as
 * the search scan computes it (exact; for tests). */
void vecset_block_i8(const int8_t *rows, int dim, size_t n, const int8_t *q, float *out);
/* Quantise dim floats to int8; returns the scale (0 for a zero vector). */
float vecset_quantize(const float *v, int dim, int8_t *out);
/* Name of the scan path in use ("avx512", "avx2", "generic"). */
const char *vecset_isa(void);

#endif
