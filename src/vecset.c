/* vecset.c - contiguous vector arrays and exact top-k search (see vecset.h).
 *
 * Search is a scan: score a block of rows into a small buffer with a tight
 * loop, then offer each score to a bounded min-heap of the k best.  The
 * scoring loops are written so that GCC vectorises them without
 * -ffast-math: the dot products keep 32 independent partial sums, one per
 * SIMD lane, so no floating-point reassociation is needed.  The same source
 * is compiled three times (generic, AVX2+FMA, AVX-512) with target
 * attributes and the best one the CPU supports is picked once.  The one
 * exception is the int8 scan on AVX-512 VNNI, written with intrinsics
 * (block_i8_vnni: GCC does not find vpdpbusd on its own), about 1.6x the
 * vectorised loop at 100k rows.  Each has a scalar reference (`_ref`), and
 * tests/test_vecset.c bounds the difference (int8: exact).
 *
 * Why a separate scan here rather than src/kernels.c: the store's hot loop
 * is a different shape (one query against many short rows, int8 rows with
 * per-row scales, a row bitmap) and keeping it next to the heap lets the
 * compiler inline the dot product into the block loop.
 */
#include "vecset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 32            /* partial sums per dot product */
#define BLOCK_ROWS 256      /* rows scored per call of a block kernel */

/* ---- reference kernels ------------------------------------------------ */

float vecset_dot_f32_ref(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

int32_t vecset_dot_i8_ref(const int8_t *a, const int8_t *b, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

/* ---- vectorisable kernels, instantiated per ISA ----------------------- */

#define DEFINE_KERNELS(SUFFIX, ATTR)                                          \
    ATTR static inline float dot_f32_##SUFFIX(const float *restrict a,        \
                                              const float *restrict b, int n) \
    {                                                                         \
        float acc[LANES] = {0};                                               \
        int i = 0;                                                            \
        for (; i + LANES <= n; i += LANES)                                    \
            for (int j = 0; j < LANES; j++)                                   \
                acc[j] += a[i + j] * b[i + j];                                \
        float s = 0.0f;                                                       \
        for (int j = 0; j < LANES; j++)                                       \
            s += acc[j];                                                      \
        for (; i < n; i++)                                                    \
            s += a[i] * b[i];                                                 \
        return s;                                                             \
    }                                                                         \
    ATTR static inline int32_t dot_i8_##SUFFIX(const int8_t *restrict a,      \
                                               const int8_t *restrict b,      \
                                               int n)                         \
    {                                                                         \
        int32_t acc[LANES] = {0};                                             \
        int i = 0;                                                            \
        for (; i + LANES <= n; i += LANES)                                    \
            for (int j = 0; j < LANES; j++)                                   \
                acc[j] += (int16_t)a[i + j] * (int16_t)b[i + j];              \
        int32_t s = 0;                                                        \
        for (int j = 0; j < LANES; j++)                                       \
            s += acc[j];                                                      \
        for (; i < n; i++)                                                    \
            s += (int32_t)a[i] * (int32_t)b[i];                               \
        return s;                                                             \
    }                                                                         \
    ATTR static void block_f32_##SUFFIX(const float *rows, int dim, size_t n, \
                                        const float *q, float *out)           \
    {                                                                         \
        for (size_t r = 0; r < n; r++)                                        \
            out[r] = dot_f32_##SUFFIX(rows + r * (size_t)dim, q, dim);        \
    }                                                                         \
    ATTR static void block_i8_##SUFFIX(const int8_t *rows, int dim, size_t n, \
                                       const int8_t *q, float *out)           \
    {                                                                         \
        for (size_t r = 0; r < n; r++)                                        \
            out[r] = (float)dot_i8_##SUFFIX(rows + r * (size_t)dim, q, dim);  \
    }

DEFINE_KERNELS(generic, )
#if defined(__x86_64__) && defined(__GNUC__)
DEFINE_KERNELS(avx2, __attribute__((target("avx2,fma"))))
DEFINE_KERNELS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))))
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* int8 rows with VNNI.  vpdpbusd multiplies unsigned by signed bytes, so
 * the query is taken as |q| and each row byte gets the sign of the query
 * byte it meets (one masked subtract; rows hold -127..127, so negation
 * cannot overflow): |q| * sign(q) * r = q * r.  The sum is the same exact
 * integer as the reference's.  Four rows at a time keep four independent
 * accumulator chains. */
#define VNNI_MAX_VECS 16   /* dimensions up to 1024 */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static void block_i8_vnni(const int8_t *rows, int dim, size_t n, const int8_t *q, float *out)
{
    int nv = (dim + 63) / 64;
    if (nv > VNNI_MAX_VECS) {
        block_i8_avx512(rows, dim, n, q, out);
        return;
    }
    __m512i qa[VNNI_MAX_VECS];
    __mmask64 neg[VNNI_MAX_VECS], tail = ~(__mmask64)0;
    if (dim % 64)
        tail = ((__mmask64)1 << (dim % 64)) - 1;
    for (int v = 0; v < nv; v++) {
        __m512i x = _mm512_maskz_loadu_epi8(v == nv - 1 ? tail : ~(__mmask64)0, q + 64 * v);
        neg[v] = _mm512_movepi8_mask(x);
        qa[v] = _mm512_abs_epi8(x);
    }
    const __m512i zero = _mm512_setzero_si512();
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const int8_t *p = rows + r * (size_t)dim;
        __m512i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        for (int v = 0; v < nv; v++) {
            __mmask64 m = v == nv - 1 ? tail : ~(__mmask64)0;
            __m512i x0 = _mm512_maskz_loadu_epi8(m, p + 64 * v);
            __m512i x1 = _mm512_maskz_loadu_epi8(m, p + dim + 64 * v);
            __m512i x2 = _mm512_maskz_loadu_epi8(m, p + 2 * dim + 64 * v);
            __m512i x3 = _mm512_maskz_loadu_epi8(m, p + 3 * dim + 64 * v);
            a0 = _mm512_dpbusd_epi32(a0, qa[v], _mm512_mask_sub_epi8(x0, neg[v], zero, x0));
            a1 = _mm512_dpbusd_epi32(a1, qa[v], _mm512_mask_sub_epi8(x1, neg[v], zero, x1));
            a2 = _mm512_dpbusd_epi32(a2, qa[v], _mm512_mask_sub_epi8(x2, neg[v], zero, x2));
            a3 = _mm512_dpbusd_epi32(a3, qa[v], _mm512_mask_sub_epi8(x3, neg[v], zero, x3));
        }
        out[r] = (float)_mm512_reduce_add_epi32(a0);
        out[r + 1] = (float)_mm512_reduce_add_epi32(a1);
        out[r + 2] = (float)_mm512_reduce_add_epi32(a2);
        out[r + 3] = (float)_mm512_reduce_add_epi32(a3);
    }
    for (; r < n; r++) {
        const int8_t *p = rows + r * (size_t)dim;
        __m512i a0 = zero;
        for (int v = 0; v < nv; v++) {
            __m512i x0 = _mm512_maskz_loadu_epi8(v == nv - 1 ? tail : ~(__mmask64)0, p + 64 * v);
            a0 = _mm512_dpbusd_epi32(a0, qa[v], _mm512_mask_sub_epi8(x0, neg[v], zero, x0));
        }
        out[r] = (float)_mm512_reduce_add_epi32(a0);
    }
}
#endif

typedef void (*block_f32_fn)(const float *, int, size_t, const float *, float *);
typedef void (*block_i8_fn)(const int8_t *, int, size_t, const int8_t *, float *);

static struct {
    int ready;
    const char *name;
    block_f32_fn block_f32;
    block_i8_fn block_i8;
    float (*dot_f32)(const float *, const float *, int);
    int32_t (*dot_i8)(const int8_t *, const int8_t *, int);
} isa;

static float dot_f32_generic_fn(const float *a, const float *b, int n) { return dot_f32_generic(a, b, n); }
static int32_t dot_i8_generic_fn(const int8_t *a, const int8_t *b, int n) { return dot_i8_generic(a, b, n); }
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma")))
static float dot_f32_avx2_fn(const float *a, const float *b, int n) { return dot_f32_avx2(a, b, n); }
__attribute__((target("avx2,fma")))
static int32_t dot_i8_avx2_fn(const int8_t *a, const int8_t *b, int n) { return dot_i8_avx2(a, b, n); }
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static float dot_f32_avx512_fn(const float *a, const float *b, int n) { return dot_f32_avx512(a, b, n); }
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static int32_t dot_i8_avx512_fn(const int8_t *a, const int8_t *b, int n) { return dot_i8_avx512(a, b, n); }
#endif

/* Pick the kernels once.  Racing first calls all write the same values. */
static void isa_init(void)
{
    if (isa.ready)
        return;
    isa.name = "generic";
    isa.block_f32 = block_f32_generic;
    isa.block_i8 = block_i8_generic;
    isa.dot_f32 = dot_f32_generic_fn;
    isa.dot_i8 = dot_i8_generic_fn;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
        isa.name = "avx512";
        isa.block_f32 = block_f32_avx512;
        isa.block_i8 = block_i8_vnni;
        isa.dot_f32 = dot_f32_avx512_fn;
        isa.dot_i8 = dot_i8_avx512_fn;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        isa.name = "avx2";
        isa.block_f32 = block_f32_avx2;
        isa.block_i8 = block_i8_avx2;
        isa.dot_f32 = dot_f32_avx2_fn;
        isa.dot_i8 = dot_i8_avx2_fn;
    }
#endif
    isa.ready = 1;
}

const char *vecset_isa(void)
{
    isa_init();
    return isa.name;
}

float vecset_dot_f32(const float *a, const float *b, int n)
{
    isa_init();
    return isa.dot_f32(a, b, n);
}

int32_t vecset_dot_i8(const int8_t *a, const int8_t *b, int n)
{
    isa_init();
    return isa.dot_i8(a, b, n);
}

void vecset_block_i8(const int8_t *rows, int dim, size_t n, const int8_t *q, float *out)
{
    isa_init();
    isa.block_i8(rows, dim, n, q, out);
}

/* ---- rows ------------------------------------------------------------- */

void vecset_normalize(float *v, int dim)
{
    double s = 0.0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    if (s <= 0.0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

float vecset_quantize(const float *v, int dim, int8_t *out)
{
    float max_abs = 0.0f;
    for (int i = 0; i < dim; i++)
        if (fabsf(v[i]) > max_abs)
            max_abs = fabsf(v[i]);
    if (max_abs == 0.0f) {
        memset(out, 0, (size_t)dim);
        return 0.0f;
    }
    float scale = max_abs / 127.0f, inv = 127.0f / max_abs;
    for (int i = 0; i < dim; i++) {
        long q = lrintf(v[i] * inv);
        out[i] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    return scale;
}

void vecset_init(vecset *vs, int dim, vecset_kind kind, vecset_metric metric)
{
    memset(vs, 0, sizeof *vs);
    vs->dim = dim;
    vs->kind = kind;
    vs->metric = metric;
}

void vecset_free(vecset *vs)
{
    free(vs->index);
    free(vs->f32);
    free(vs->i8);
    free(vs->scale);
    free(vs->norm2);
    free(vs->ids);
    free(vs->groups);
    memset(vs, 0, sizeof *vs);
}

/* Grow one array to `rows` rows of `row_bytes`; on failure the old array
 * is kept (realloc semantics). */
static int grow(void **p, size_t rows, size_t row_bytes)
{
    if (row_bytes && rows > SIZE_MAX / row_bytes)
        return -1;
    void *q = realloc(*p, rows * row_bytes);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

int vecset_reserve(vecset *vs, size_t rows, lode_error *err)
{
    if (rows <= vs->capacity)
        return 0;
    /* Growing a populated array: by at least half, so that a run of small
     * reservations (one per added document) costs amortised O(1) copies. */
    if (vs->capacity && rows < vs->capacity + vs->capacity / 2)
        rows = vs->capacity + vs->capacity / 2;
    size_t dim = (size_t)vs->dim;
    /* Each array grows independently; a failure part way leaves some
     * arrays larger than capacity, which is harmless. */
    int bad = 0;
    if (vs->kind == VECSET_F32)
        bad |= grow((void **)&vs->f32, rows, dim * sizeof(float));
    else {
        bad |= grow((void **)&vs->i8, rows, dim);
        bad |= bad ? 0 : grow((void **)&vs->scale, rows, sizeof(float));
    }
    bad |= bad ? 0 : grow((void **)&vs->norm2, rows, sizeof(float));
    bad |= bad ? 0 : grow((void **)&vs->ids, rows, sizeof(int64_t));
    bad |= bad ? 0 : grow((void **)&vs->groups, rows, sizeof(int64_t));
    if (bad)
        return lode_error_set(err, LODE_ENOMEM, "out of memory growing the "
                              "in-memory vectors to %zu rows of %d dimensions",
                              rows, vs->dim);
    vs->capacity = rows;
    return 0;
}

int vecset_append(vecset *vs, int64_t id, int64_t group, const float *v,
                  lode_error *err)
{
    if (vs->count == vs->capacity) {
        int rc = vecset_reserve(vs, vs->capacity < 64 ? 64 : vs->capacity + 1, err);
        if (rc)
            return rc;
    }
    size_t row = vs->count, dim = (size_t)vs->dim;
    if (vs->kind == VECSET_F32) {
        float *dst = vs->f32 + row * dim;
        memcpy(dst, v, dim * sizeof(float));
        vs->norm2[row] = vecset_dot_f32_ref(dst, dst, vs->dim);
    } else {
        int8_t *dst = vs->i8 + row * dim;
        float scale = vecset_quantize(v, vs->dim, dst);
        vs->scale[row] = scale;
        vs->norm2[row] = (float)vecset_dot_i8_ref(dst, dst, vs->dim) * scale * scale;
    }
    vs->ids[row] = id;
    vs->groups[row] = group;
    vs->count++;
    vs->index_stale = true;
    return 0;
}

static int in_sorted(const int64_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else if (a[mid] > x)
            hi = mid;
        else
            return 1;
    }
    return 0;
}

static void move_row(vecset *vs, size_t to, size_t from)
{
    size_t dim = (size_t)vs->dim;
    if (vs->kind == VECSET_F32)
        memcpy(vs->f32 + to * dim, vs->f32 + from * dim, dim * sizeof(float));
    else {
        memcpy(vs->i8 + to * dim, vs->i8 + from * dim, dim);
        vs->scale[to] = vs->scale[from];
    }
    vs->norm2[to] = vs->norm2[from];
    vs->ids[to] = vs->ids[from];
    vs->groups[to] = vs->groups[from];
}

size_t vecset_remove_groups(vecset *vs, const int64_t *groups, size_t n)
{
    if (n == 0)
        return 0;
    size_t removed = 0;
    /* Walk down so that the row swapped in from the end has already been
     * examined and kept. */
    for (size_t i = vs->count; i-- > 0;) {
        if (!in_sorted(groups, n, vs->groups[i]))
            continue;
        if (i != vs->count - 1)
            move_row(vs, i, vs->count - 1);
        vs->count--;
        removed++;
    }
    vs->index_stale |= removed > 0;
    return removed;
}

size_t vecset_regroup(vecset *vs, int64_t from, int64_t to)
{
    size_t n = 0;
    for (size_t i = 0; i < vs->count; i++)
        if (vs->groups[i] == from) {
            vs->groups[i] = to;
            n++;
        }
    return n;
}

size_t vecset_bytes(const vecset *vs)
{
    size_t per_row = 2 * sizeof(int64_t) + sizeof(float);
    if (vs->kind == VECSET_F32)
        per_row += (size_t)vs->dim * sizeof(float);
    else
        per_row += (size_t)vs->dim + sizeof(float);
    return per_row * vs->capacity + (vs->index ? (vs->index_mask + 1) * sizeof *vs->index : 0);
}

/* ---- top-k ------------------------------------------------------------ */

/* a ranks below b: lower score, or equal score and higher id. */
static inline int worse(const vecset_hit *a, const vecset_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

/* The heap keeps the worst of the k best at h[0]. */
static void sift_down(vecset_hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        vecset_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(vecset_hit *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            return;
        vecset_hit t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static inline void offer(vecset_hit *h, size_t *n, size_t k, vecset_hit hit)
{
    if (*n < k) {
        h[*n] = hit;
        sift_up(h, (*n)++);
    } else if (worse(&h[0], &hit)) {
        h[0] = hit;
        sift_down(h, k, 0);
    }
}

static int cmp_best_first(const void *pa, const void *pb)
{
    const vecset_hit *a = pa, *b = pb;
    return worse(b, a) ? -1 : worse(a, b) ? 1 : 0;
}

/* The query as the scan wants it: normalised for cosine, quantised into
 * q8 for int8 rows (with its scale), and its squared norm (for L2). */
static void prepare_query(const vecset *vs, const float *query, float *q, int8_t *q8,
                          float *qscale, float *qnorm2)
{
    memcpy(q, query, (size_t)vs->dim * sizeof *q);
    if (vs->metric == VECSET_COSINE)
        vecset_normalize(q, vs->dim);
    *qscale = 1.0f;
    if (vs->kind == VECSET_I8) {
        *qscale = vecset_quantize(q, vs->dim, q8);
        *qnorm2 = (float)vecset_dot_i8_ref(q8, q8, vs->dim) * *qscale * *qscale;
    } else {
        *qnorm2 = vecset_dot_f32_ref(q, q, vs->dim);
    }
}

/* Row's score from the kernel's dot product with the prepared query. */
static float finish_score(const vecset *vs, size_t row, float dot, float qscale,
                          float qnorm2)
{
    if (vs->kind == VECSET_I8)
        dot *= vs->scale[row] * qscale;
    if (vs->metric != VECSET_L2)
        return dot;
    float score = -(qnorm2 + vs->norm2[row] - 2.0f * dot);
    return score > 0.0f ? 0.0f : score;
}

int vecset_search(const vecset *vs, const float *query, size_t k,
                  const uint64_t *allow, float min_score, vecset_hit *out,
                  size_t *n_out, lode_error *err)
{
    *n_out = 0;
    if (k == 0 || vs->count == 0)
        return 0;
    isa_init();
    size_t dim = (size_t)vs->dim;
    /* Scratch: the prepared query plus one block of scores. */
    size_t qbytes = dim * sizeof(float);
    unsigned char *scratch = malloc(qbytes + dim + BLOCK_ROWS * sizeof(float));
    if (!scratch)
        return lode_error_set(err, LODE_ENOMEM, "out of memory preparing a search");
    float *q = (float *)scratch;
    float *scores = (float *)(scratch + qbytes);
    int8_t *q8 = (int8_t *)(scratch + qbytes + BLOCK_ROWS * sizeof(float));

    float qscale, qnorm2;
    prepare_query(vs, query, q, q8, &qscale, &qnorm2);

    size_t n = 0;
    for (size_t start = 0; start < vs->count; start += BLOCK_ROWS) {
        size_t rows = vs->count - start < BLOCK_ROWS ? vs->count - start : BLOCK_ROWS;
        if (allow) {
            /* Skip blocks with no candidate rows cheaply: one word is 64 rows. */
            int any = 0;
            for (size_t w = start / 64; w <= (start + rows - 1) / 64 && !any; w++)
                any = allow[w] != 0;
            if (!any)
                continue;
        }
        if (vs->kind == VECSET_F32)
            isa.block_f32(vs->f32 + start * dim, vs->dim, rows, q, scores);
        else
            isa.block_i8(vs->i8 + start * dim, vs->dim, rows, q8, scores);
        for (size_t r = 0; r < rows; r++) {
            size_t row = start + r;
            if (allow && !(allow[row / 64] >> (row % 64) & 1))
                continue;
            float score = finish_score(vs, row, scores[r], qscale, qnorm2);
            if (!(score >= min_score))
                continue;
            vecset_hit hit = {vs->ids[row], vs->groups[row], score};
            offer(out, &n, k, hit);
        }
    }
    free(scratch);
    qsort(out, n, sizeof *out, cmp_best_first);
    *n_out = n;
    return 0;
}

/* ---- scores of given rows ----------------------------------------------- */

static size_t id_slot(int64_t id, size_t mask)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

/* (Re)build the id -> row index: open addressing, row + 1 per slot. */
static int build_index(vecset *vs, lode_error *err)
{
    size_t cap = 16;
    while (cap < 2 * vs->count)
        cap *= 2;
    if (cap != vs->index_mask + 1 || !vs->index) {
        size_t *grown = realloc(vs->index, cap * sizeof *grown);
        if (!grown)
            return lode_error_set(err, LODE_ENOMEM, "out of memory indexing vectors");
        vs->index = grown;
        vs->index_mask = cap - 1;
    }
    memset(vs->index, 0, cap * sizeof *vs->index);
    for (size_t r = 0; r < vs->count; r++) {
        size_t i = id_slot(vs->ids[r], vs->index_mask);
        while (vs->index[i])
            i = (i + 1) & vs->index_mask;
        vs->index[i] = r + 1;
    }
    vs->index_stale = false;
    return 0;
}

int vecset_score_ids(vecset *vs, const float *query, const int64_t *ids, size_t n,
                     float *out, lode_error *err)
{
    if (n == 0)
        return 0;
    if ((vs->index_stale || !vs->index) && vs->count) {
        int rc = build_index(vs, err);
        if (rc)
            return rc;
    }
    isa_init();
    size_t dim = (size_t)vs->dim;
    unsigned char *scratch = malloc(dim * sizeof(float) + dim);
    if (!scratch)
        return lode_error_set(err, LODE_ENOMEM, "out of memory scoring vectors");
    float *q = (float *)scratch, qscale, qnorm2;
    int8_t *q8 = (int8_t *)(scratch + dim * sizeof(float));
    prepare_query(vs, query, q, q8, &qscale, &qnorm2);
    for (size_t k = 0; k < n; k++) {
        out[k] = NAN;
        if (!vs->count)
            continue;
        for (size_t i = id_slot(ids[k], vs->index_mask); vs->index[i];
             i = (i + 1) & vs->index_mask) {
            size_t row = vs->index[i] - 1;
            if (vs->ids[row] != ids[k])
                continue;
            /* the block kernel on one row: the scan's own arithmetic */
            float dot;
            if (vs->kind == VECSET_F32)
                isa.block_f32(vs->f32 + row * dim, vs->dim, 1, q, &dot);
            else
                isa.block_i8(vs->i8 + row * dim, vs->dim, 1, q8, &dot);
            out[k] = finish_score(vs, row, dot, qscale, qnorm2);
            break;
        }
    }
    free(scratch);
    return 0;
}
