/* kernels.c - scalar reference kernels, the choice of SIMD path, and the
 * threaded entry point (see kernels.h).
 *
 * The scalar functions here are the definitions every faster path is
 * tested against: plain loops, accumulation in float in index order, erf
 * and exp from libm.  They are also the path used on CPUs without AVX2 and
 * on other architectures.
 *
 * The path is a table of function pointers (kernels_isa.h) chosen once by
 * kern_init from CPUID and XGETBV (the OS must save the AVX / AVX-512
 * register state, not just the CPU support it); the public functions
 * below only forward to it.  Per-ISA code lives in kernels_avx2.c and
 * kernels_avx512.c, compiled with per-function target attributes so the
 * binary itself needs nothing beyond baseline x86-64.
 */
#include "kernels.h"
#include "kernels_isa.h"

#include "err.h"
#include "opprof.h"
#include "pool.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ---- scalar reference kernels ---------------------------------------- */

static void gemm_nt_scalar(int m, int n, int k, const float *a, int lda,
                           const float *b, int ldb, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const float *ai = a + (size_t)i * lda, *bj = b + (size_t)j * ldb;
            float s = 0.0f;
            for (int p = 0; p < k; p++)
                s += ai[p] * bj[p];
            c[(size_t)i * ldc + j] = s;
        }
}

static void gemm_nn_scalar(int m, int n, int k, const float *a, int lda,
                           const float *b, int ldb, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = 0.0f;
        for (int p = 0; p < k; p++) {
            float aip = a[(size_t)i * lda + p];
            const float *bp = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++)
                ci[j] += aip * bp[j];
        }
    }
}

static void linear_f_scalar(const float *x, int m, const kern_matrix *w,
                            const float *bias, float *out, int n0, int n1)
{
    int k = w->cols, n = w->rows;
    for (int i = 0; i < m; i++) {
        const float *xi = x + (size_t)i * k;
        for (int j = n0; j < n1; j++) {
            float s = 0.0f;
            if (w->type == KERN_F16) {
                const uint16_t *wj = (const uint16_t *)w->data + (size_t)j * k;
                for (int p = 0; p < k; p++)
                    s += xi[p] * kern_f16_to_f32(wj[p]);
            } else {
                const float *wj = (const float *)w->data + (size_t)j * k;
                for (int p = 0; p < k; p++)
                    s += xi[p] * wj[p];
            }
            out[(size_t)i * n + j] = bias ? s + bias[j] : s;
        }
    }
}

/* One block of n activations (32 or 128) to int8 codes and a float scale,
 * the definition the SIMD quantizers reproduce bit for bit. */
static float quantize_block_x(const float *x, int n, int8_t *q)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax)
            amax = fabsf(x[i]);
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < n; i++)
        q[i] = (int8_t)lrintf(x[i] * id);
    return amax / 127.0f;
}

/* q8_0 and q8_128 reference.  Per output: acc = 0; for each block in
 * order, acc += (d_w * d_x) * (float)isum with isum the exact integer dot
 * product; then + bias.  Quantizes x block by block, so it needs no
 * scratch. */
static int linear_q8_scalar(const float *x, const kern_qx *qx, int m,
                            const kern_matrix *w, const float *bias,
                            float *out, int n0, int n1)
{
    (void)qx;
    int k = w->cols, n = w->rows, bs = kern_q8_block(w->type), nb = k / bs;
    size_t row_bytes = kern_row_bytes(w->type, k), blk_bytes = 2 + (size_t)bs;
    const uint8_t *data = w->data;
    for (int i = 0; i < m; i++) {
        float *oi = out + (size_t)i * n;
        for (int j = n0; j < n1; j++)
            oi[j] = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8_t q[KERN_Q8_128_BLOCK];
            float dx = quantize_block_x(x + (size_t)i * k + (size_t)b * bs,
                                        bs, q);
            for (int j = n0; j < n1; j++) {
                const uint8_t *blk = data + (size_t)j * row_bytes +
                                     b * blk_bytes;
                uint16_t dh;
                memcpy(&dh, blk, 2);
                float dw = kern_f16_to_f32(dh);
                const int8_t *qw = (const int8_t *)blk + 2;
                int32_t isum = 0;
                for (int p = 0; p < bs; p++)
                    isum += (int32_t)q[p] * qw[p];
                oi[j] += (dw * dx) * (float)isum;
            }
        }
        if (bias)
            for (int j = n0; j < n1; j++)
                oi[j] += bias[j];
    }
    return 0;
}

static void layernorm_scalar(float *x, int n, const float *gamma,
                             const float *beta, float eps)
{
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < n; i++)
        mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    var /= n;
    float inv = (float)(1.0 / sqrt(var + eps));
    for (int i = 0; i < n; i++)
        x[i] = ((float)(x[i] - mean)) * inv * gamma[i] + beta[i];
}

static void gelu_scalar(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

static void softmax_scalar(float *x, int n, float scale)
{
    for (int i = 0; i < n; i++)
        x[i] *= scale;
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void add_scalar(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

static float dot_scalar(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

const kern_ops kern__ops_scalar = {
    .name = "scalar",
    .gemm_nt = gemm_nt_scalar,
    .gemm_nn = gemm_nn_scalar,
    .linear_f = linear_f_scalar,
    .quantize_x = NULL,
    .linear_q8 = linear_q8_scalar,
    .layernorm = layernorm_scalar,
    .gelu = gelu_scalar,
    .softmax = softmax_scalar,
    .add = add_scalar,
    .dot = dot_scalar,
};

/* ---- choosing the path ----------------------------------------------- */

enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_AVX512VNNI, ISA_AMX,
       ISA_COUNT };

static const char *const isa_names[ISA_COUNT] = {
    "scalar", "avx2", "avx512", "avx512vnni", "amx"
};

static const kern_ops *isa_table(int level)
{
#if defined(__x86_64__)
    switch (level) {
    case ISA_AVX2: return &kern__ops_avx2;
    case ISA_AVX512: return &kern__ops_avx512;
    case ISA_AVX512VNNI: return &kern__ops_avx512vnni;
    case ISA_AMX: return &kern__ops_amx;
    }
#endif
    (void)level;
    return &kern__ops_scalar;
}

#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define LODE_ARCH_REQ_XCOMP_PERM 0x1023
#define LODE_XFEATURE_XTILEDATA 18
#endif

/* Linux (5.16+) hands out the 8 KB AMX tile state per process, on
 * request; once granted it holds for every thread, and signal frames
 * grow by its size. */
static int amx_permitted(void)
{
#if defined(__x86_64__) && defined(__linux__)
    return syscall(SYS_arch_prctl, LODE_ARCH_REQ_XCOMP_PERM,
                   LODE_XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

/* The best level this CPU and OS support. */
static int detect_level(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return ISA_SCALAR;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return ISA_SCALAR;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    uint64_t xcr0 = ((uint64_t)xhi << 32) | xlo;
    if ((xcr0 & 0x6) != 0x6) /* SSE and AVX state */
        return ISA_SCALAR;
    if (__get_cpuid_max(0, NULL) < 7)
        return ISA_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1;
    int vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    if (!avx2 || !fma || !f16c)
        return ISA_SCALAR;
    /* opmask, upper halves of zmm0-15, zmm16-31 */
    if ((xcr0 & 0xe0) != 0xe0 || !f512 || !dq || !bw || !vl)
        return ISA_AVX2;
    if (!vnni)
        return ISA_AVX512;
    /* AMX-BF16, AMX-TILE and AMX-INT8, AVX512-BF16 (leaf 7.1), the tile
     * state in XCR0 (bits 17, 18), and the kernel's leave to use it */
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1) && ((d >> 25) & 1);
    __cpuid_count(7, 1, a, b, c, d);
    amx = amx && ((a >> 5) & 1);
    if (!amx || (xcr0 & 0x60000) != 0x60000 || !amx_permitted())
        return ISA_AVX512VNNI;
    return ISA_AMX;
#else
    return ISA_SCALAR;
#endif
}

static int cpu_level;
static _Atomic(const kern_ops *) current_ops;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static int level_by_name(const char *name)
{
    for (int i = 0; i < ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0)
            return i;
    return -1;
}

static int attention_fp32; /* LODE_ATTENTION=fp32 */

static void init_once_fn(void)
{
    const char *att = getenv("LODE_ATTENTION");
    attention_fp32 = att && strcmp(att, "fp32") == 0;
    cpu_level = detect_level();
    int level = cpu_level;
    const char *forced = getenv("LODE_ISA");
    if (forced && *forced) {
        int want = level_by_name(forced);
        if (want >= 0 && want < level) /* only ever lower */
            level = want;
    }
    atomic_store(&current_ops, isa_table(level));
}

void kern_init(void)
{
    pthread_once(&init_once, init_once_fn);
}

static inline const kern_ops *ops(void)
{
    const kern_ops *o = atomic_load_explicit(&current_ops,
                                             memory_order_acquire);
    if (__builtin_expect(o == NULL, 0)) {
        kern_init();
        o = atomic_load(&current_ops);
    }
    return o;
}

const char *kern_isa_name(void) { return ops()->name; }

int kern_set_isa(const char *name)
{
    kern_init();
    int level = level_by_name(name);
    if (level < 0)
        return LODE_EINVAL;
    if (level > cpu_level)
        return LODE_EUNSUPPORTED;
    atomic_store(&current_ops, isa_table(level));
    return LODE_OK;
}

/* ---- per-thread scratch ---------------------------------------------- */

typedef struct scratch_set {
    void *buf[2];
    size_t cap[2];
} scratch_set;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;
static _Thread_local scratch_set *thread_scratch;

static void scratch_destroy(void *p)
{
    scratch_set *s = p;
    free(s->buf[0]);
    free(s->buf[1]);
    free(s);
}

static void scratch_key_create(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_destroy) == 0;
}

void *kern__scratch(int slot, size_t bytes)
{
    scratch_set *s = thread_scratch;
    if (!s) {
        pthread_once(&scratch_once, scratch_key_create);
        if (!scratch_key_ok || !(s = calloc(1, sizeof *s)))
            return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
        thread_scratch = s;
    }
    if (s->cap[slot] < bytes) {
        size_t cap = s->cap[slot] + s->cap[slot] / 2;
        if (cap < bytes)
            cap = bytes;
        cap = (cap + 63) & ~(size_t)63;
        void *p = aligned_alloc(64, cap);
        if (!p)
            return NULL;
        free(s->buf[slot]);
        s->buf[slot] = p;
        s->cap[slot] = cap;
    }
    return s->buf[slot];
}

/* ---- public entry points --------------------------------------------- */

size_t kern_row_bytes(kern_type type, int cols)
{
    switch (type) {
    case KERN_F32: return (size_t)cols * 4;
    case KERN_F16: return (size_t)cols * 2;
    case KERN_Q8_0: return (size_t)cols / KERN_Q8_0_BLOCK * KERN_Q8_0_BYTES;
    case KERN_Q8_128:
        return (size_t)cols / KERN_Q8_128_BLOCK * KERN_Q8_128_BYTES;
    }
    return 0;
}

int kern_q8_block(kern_type type)
{
    return type == KERN_Q8_0 ? KERN_Q8_0_BLOCK
         : type == KERN_Q8_128 ? KERN_Q8_128_BLOCK : 0;
}

/* Quantized-activation buffer for m rows of k, blocks of bs, in scratch
 * slot 0 (KERN_QX_PAD_ROWS spare rows of codes). */
static int qx_alloc(int m, int k, int bs, kern_qx *qx)
{
    size_t qbytes = ((size_t)(m + KERN_QX_PAD_ROWS) * k + 63) & ~(size_t)63;
    size_t dbytes = (size_t)m * (k / bs) * sizeof(float);
    uint8_t *p = kern__scratch(0, qbytes + dbytes);
    if (!p)
        return -1;
    qx->q = p;
    qx->d = (float *)(p + qbytes);
    return 0;
}

static int linear_supported(const kern_matrix *w)
{
    int bs = kern_q8_block(w->type);
    return w->type == KERN_F32 || w->type == KERN_F16 ||
           (bs && w->cols % bs == 0);
}

/* The quantizer and product of a q8 type on path o (NULL quantizer: the
 * product is the scalar reference, which quantizes as it goes). */
static void q8_fns(const kern_ops *o, kern_type type,
                   void (**quant)(const float *, int, int, const kern_qx *),
                   int (**lin)(const float *, const kern_qx *, int,
                               const kern_matrix *, const float *, float *,
                               int, int))
{
    *quant = type == KERN_Q8_0 ? o->quantize_x : o->quantize_x128;
    *lin = type == KERN_Q8_0 ? o->linear_q8 : o->linear_q128;
    if (!*quant || !*lin) {
        *quant = NULL;
        *lin = kern__ops_scalar.linear_q8;
    }
}

void *kern_pack(const kern_matrix *w)
{
    const kern_ops *o = ops();
    if (!o->pack_bytes || !linear_supported(w) || w->rows <= 0)
        return NULL;
    size_t bytes = o->pack_bytes(w);
    if (bytes == 0)
        return NULL;
    void *dst = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (dst)
        o->pack(w, dst);
    return dst;
}

void kern_linear(const float *x, int m, const kern_matrix *w,
                 const float *bias, float *out)
{
    const kern_ops *o = ops();
    if (m <= 0 || w->rows <= 0)
        return;
    if (!linear_supported(w)) { /* the loader rejects these; stay defined */
        memset(out, 0, (size_t)m * w->rows * sizeof(float));
        return;
    }
    if (!kern_q8_block(w->type)) {
        o->linear_f(x, m, w, bias, out, 0, w->rows);
        return;
    }
    void (*quant)(const float *, int, int, const kern_qx *);
    int (*lin)(const float *, const kern_qx *, int, const kern_matrix *,
               const float *, float *, int, int);
    q8_fns(o, w->type, &quant, &lin);
    kern_qx qx = { 0 };
    if (quant) {
        if (qx_alloc(m, w->cols, kern_q8_block(w->type), &qx) != 0) {
            lin = kern__ops_scalar.linear_q8; /* same bits, no scratch */
        } else {
            OPPROF_BEGIN(OPPROF_QUANTIZE);
            quant(x, m, w->cols, &qx);
            OPPROF_END(OPPROF_QUANTIZE);
        }
    }
    if (lin(x, &qx, m, w, bias, out, 0, w->rows) != 0)
        kern__ops_scalar.linear_q8(x, NULL, m, w, bias, out, 0, w->rows);
}

/* Work split for kern_linear_mt: a grid of row chunks x column chunks.
 * Column chunks come first (each thread then streams its own slice of the
 * weights); chunk widths are multiples of 96, which every path's register
 * tile (up to 32 columns) divides, so no tile is split. */
typedef struct linear_job {
    const kern_ops *ops;
    void (*quant)(const float *, int, int, const kern_qx *); /* q8 types */
    int (*lin)(const float *, const kern_qx *, int, const kern_matrix *,
               const float *, float *, int, int);
    const float *x;
    kern_qx qx;
    int m, k, n;
    const kern_matrix *w;
    const float *bias;
    float *out;
    int col_chunk, n_col_chunks, row_chunk;
} linear_job;

static void quantize_task(void *ctx, int task, int thread)
{
    (void)thread;
    linear_job *job = ctx;
    int i0 = task * job->row_chunk;
    int mi = job->m - i0 < job->row_chunk ? job->m - i0 : job->row_chunk;
    int nb = job->k / kern_q8_block(job->w->type);
    kern_qx part = { job->qx.q + (size_t)i0 * job->k,
                     job->qx.d + (size_t)i0 * nb };
    job->quant(job->x + (size_t)i0 * job->k, mi, job->k, &part);
}

static void linear_task(void *ctx, int task, int thread)
{
    (void)thread;
    linear_job *job = ctx;
    int col = task % job->n_col_chunks, row = task / job->n_col_chunks;
    int n0 = col * job->col_chunk;
    int n1 = n0 + job->col_chunk < job->n ? n0 + job->col_chunk : job->n;
    int i0 = row * job->row_chunk;
    int mi = job->m - i0 < job->row_chunk ? job->m - i0 : job->row_chunk;
    const float *x = job->x + (size_t)i0 * job->k;
    float *out = job->out + (size_t)i0 * job->n;
    if (!job->lin) {
        job->ops->linear_f(x, mi, job->w, job->bias, out, n0, n1);
        return;
    }
    int nb = job->k / kern_q8_block(job->w->type);
    kern_qx part = { 0 };
    if (job->qx.q) {
        part.q = job->qx.q + (size_t)i0 * job->k;
        part.d = job->qx.d + (size_t)i0 * nb;
    }
    if (job->lin(x, &part, mi, job->w, job->bias, out, n0, n1) != 0)
        kern__ops_scalar.linear_q8(x, NULL, mi, job->w, job->bias, out, n0,
                                   n1);
}

void kern_linear_mt(struct pool *pool, const float *x, int m,
                    const kern_matrix *w, const float *bias, float *out)
{
    int threads = pool ? pool_threads(pool) : 1;
    double work = (double)m * w->rows * w->cols;
    /* A few rows (one query) on one thread: splitting them costs more in
     * hand-offs than it saves (13 rows, 2 threads: 2.6 ms a query against
     * 1.9 ms on one). */
    if (threads <= 1 || work < 65536.0 || m <= 16 || !linear_supported(w) ||
        w->rows <= 48) {
        kern_linear(x, m, w, bias, out);
        return;
    }
    linear_job job = {
        .ops = ops(), .x = x, .m = m, .k = w->cols, .n = w->rows, .w = w,
        .bias = bias, .out = out,
    };
    /* About 4 tasks per thread for balance, none narrower than 96. */
    int max_col_chunks = (job.n + 95) / 96;
    int n_col = 4 * threads < max_col_chunks ? 4 * threads : max_col_chunks;
    int width = (job.n + n_col - 1) / n_col;
    job.col_chunk = (width + 95) / 96 * 96;
    job.n_col_chunks = (job.n + job.col_chunk - 1) / job.col_chunk;
    /* Rows split only when columns alone leave threads idle, or the
     * activations would not stay in cache. */
    job.row_chunk = m;
    if (job.n_col_chunks < 2 * threads && m >= 64)
        job.row_chunk = (m + 2 * threads - 1) / (2 * threads);
    if (job.row_chunk > 512)
        job.row_chunk = 512;
    job.row_chunk = (job.row_chunk + 7) / 8 * 8;
    int n_row = (m + job.row_chunk - 1) / job.row_chunk;

    if (kern_q8_block(w->type))
        q8_fns(job.ops, w->type, &job.quant, &job.lin);
    if (job.quant) {
        if (qx_alloc(m, job.k, kern_q8_block(w->type), &job.qx) != 0) {
            job.lin = kern__ops_scalar.linear_q8;
        } else {
            OPPROF_BEGIN(OPPROF_QUANTIZE);
            pool_run(pool, n_row, quantize_task, &job);
            OPPROF_END(OPPROF_QUANTIZE);
        }
    }
    pool_run(pool, n_row * job.n_col_chunks, linear_task, &job);
}

void kern_gemm_nt(int m, int n, int k, const float *a, int lda,
                  const float *b, int ldb, float *c, int ldc)
{
    if (m > 0 && n > 0)
        ops()->gemm_nt(m, n, k, a, lda, b, ldb, c, ldc);
}

void kern_gemm_nn(int m, int n, int k, const float *a, int lda,
                  const float *b, int ldb, float *c, int ldc)
{
    if (m > 0 && n > 0)
        ops()->gemm_nn(m, n, k, a, lda, b, ldb, c, ldc);
}

void kern_layernorm(float *x, int n, const float *gamma, const float *beta,
                    float eps)
{
    ops()->layernorm(x, n, gamma, beta, eps);
}

void kern_gelu(float *x, size_t n) { ops()->gelu(x, n); }

void kern_softmax(float *x, int n)
{
    if (n > 0)
        ops()->softmax(x, n, 1.0f);
}

/* Rows of K become columns of kt ([dh][lp], lp = len rounded up to 16,
 * zero padding), so the scores are a plain A.B product whose inner loop
 * streams whole vectors of keys: with dh = 32 or 64, a dot-product kernel
 * (kern_gemm_nt) spends more time reducing across lanes than multiplying.
 * Both compute each score as the sum over p in order from 0, one product
 * at a time, so the values are those of kern_gemm_nt on the scalar path
 * and are independent of tiling on the others. */
static size_t attention_lp(int len) { return ((size_t)len + 15) / 16 * 16; }

size_t kern_attention_scratch(int len, int dh)
{
    size_t f32 = (size_t)len * (size_t)len + (size_t)dh * attention_lp(len) +
                 (size_t)len;
    size_t bf16 = ops()->attention_bf16_scratch
                      ? ops()->attention_bf16_scratch(len, dh) : 0;
    return f32 > bf16 ? f32 : bf16;
}

void kern_attention(int len, int dh, float scale, const float *q,
                    const float *k, const float *v, int ld, float *ctx,
                    int ldc, float *scratch)
{
    if (len <= 0 || dh <= 0)
        return;
    const kern_ops *o = ops();
    size_t lp = attention_lp(len);
    float *s = scratch, *kt = scratch + (size_t)len * len;
    OPPROF_BEGIN(OPPROF_ATTN_KT);
    if (o->transpose_kt) {
        o->transpose_kt(k, ld, len, dh, kt, lp);
    } else {
        for (int p = 0; p < dh; p++) {
            float *row = kt + (size_t)p * lp;
            for (int j = 0; j < len; j++)
                row[j] = k[(size_t)j * ld + p];
            for (size_t j = (size_t)len; j < lp; j++)
                row[j] = 0.0f;
        }
    }
    OPPROF_END(OPPROF_ATTN_KT);
    OPPROF_BEGIN(OPPROF_ATTN_SCORES);
    o->gemm_nn(len, len, dh, q, ld, kt, (int)lp, s, len);   /* q_i . k_j */
    OPPROF_END(OPPROF_ATTN_SCORES);
    if (!o->softmax_exp) { /* the reference: softmax, then P . V */
        OPPROF_BEGIN(OPPROF_ATTN_SOFTMAX);
        for (int i = 0; i < len; i++)
            o->softmax(s + (size_t)i * len, len, scale);
        OPPROF_END(OPPROF_ATTN_SOFTMAX);
        OPPROF_BEGIN(OPPROF_ATTN_CONTEXT);
        o->gemm_nn(len, dh, len, s, len, v, ld, ctx, ldc);
        OPPROF_END(OPPROF_ATTN_CONTEXT);
        return;
    }
    /* SIMD paths: unnormalised exponentials, then (E . V) / sum per row */
    float *inv = kt + (size_t)dh * lp;
    OPPROF_BEGIN(OPPROF_ATTN_SOFTMAX);
    for (int i = 0; i < len; i++)
        inv[i] = o->softmax_exp(s + (size_t)i * len, len, scale);
    OPPROF_END(OPPROF_ATTN_SOFTMAX);
    OPPROF_BEGIN(OPPROF_ATTN_CONTEXT);
    o->gemm_nn(len, dh, len, s, len, v, ld, ctx, ldc);
    for (int i = 0; i < len; i++)
        o->scale(ctx + (size_t)i * ldc, (size_t)dh, inv[i]);
    OPPROF_END(OPPROF_ATTN_CONTEXT);
}

/* x rounded to the nearest bfloat16, ties to even, with denormals as
 * zero (as VCVTNE2PS2BF16 and TDPBF16PS treat them), as a float. */
static float bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    else if ((u & 0x7f800000u) != 0x7f800000u)
        u += 0x7fffu + ((u >> 16) & 1);
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The reference of kern_attention_bf16: kern_attention's steps in order,
 * on bfloat16 inputs, with fp32 sums and unrounded softmax sums. */
static void attention_bf16_scalar(int len, int dh, float scale,
                                  const float *q, const float *k,
                                  const float *v, int ld, float *ctx,
                                  int ldc, float *s)
{
    for (int i = 0; i < len; i++)
        for (int j = 0; j < len; j++) {
            float acc = 0.0f;
            for (int p = 0; p < dh; p++)
                acc = fmaf(bf16_round(q[(size_t)i * ld + p]),
                           bf16_round(k[(size_t)j * ld + p]), acc);
            s[(size_t)i * len + j] = acc;
        }
    for (int i = 0; i < len; i++) {
        float *row = s + (size_t)i * len, max = row[0], sum = 0.0f;
        for (int j = 1; j < len; j++)
            max = row[j] > max ? row[j] : max;
        for (int j = 0; j < len; j++) {
            float e = expf(row[j] * scale - max * scale);
            sum += e;
            row[j] = bf16_round(e);
        }
        for (int p = 0; p < dh; p++) {
            float acc = 0.0f;
            for (int j = 0; j < len; j++)
                acc = fmaf(row[j], bf16_round(v[(size_t)j * ld + p]), acc);
            ctx[(size_t)i * ldc + p] = acc / sum;
        }
    }
}

void kern_attention_bf16(int len, int dh, float scale, const float *q,
                         const float *k, const float *v, int ld, float *ctx,
                         int ldc, float *scratch)
{
    if (len <= 0 || dh <= 0)
        return;
    const kern_ops *o = ops();
    OPPROF_BEGIN(OPPROF_ATTN_BF16);
    int rc = o->attention_bf16 ? o->attention_bf16(len, dh, scale, q, k, v,
                                                   ld, ctx, ldc, scratch)
                               : -1;
    if (rc)
        attention_bf16_scalar(len, dh, scale, q, k, v, ld, ctx, ldc, scratch);
    OPPROF_END(OPPROF_ATTN_BF16);
}

int kern_attention_bf16_native(int dh)
{
    return ops()->attention_bf16 != NULL && !attention_fp32 && dh > 0 &&
           dh <= KERN_ATTENTION_BF16_MAX_DH;
}

void kern_add(float *y, const float *x, size_t n) { ops()->add(y, x, n); }

float kern_dot(const float *a, const float *b, int n)
{
    return ops()->dot(a, b, n);
}

/* ---- conversions and quantization ------------------------------------ */

static void quantize_q8(const float *src, int n, int bs, void *dst)
{
    uint8_t *out = dst;
    for (int b = 0; b < n / bs; b++) {
        const float *x = src + (size_t)b * bs;
        float amax = 0.0f;
        for (int i = 0; i < bs; i++)
            if (fabsf(x[i]) > amax)
                amax = fabsf(x[i]);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = kern_f32_to_f16(d);
        memcpy(out, &dh, 2);
        for (int i = 0; i < bs; i++)
            out[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
        out += 2 + bs;
    }
}

void kern_quantize_q8_0(const float *src, int n, void *dst)
{
    quantize_q8(src, n, KERN_Q8_0_BLOCK, dst);
}

void kern_quantize_q8_128(const float *src, int n, void *dst)
{
    quantize_q8(src, n, KERN_Q8_128_BLOCK, dst);
}

void kern_dequantize_row(const kern_matrix *w, int row, float *dst)
{
    int k = w->cols;
    const uint8_t *p = (const uint8_t *)w->data +
                       (size_t)row * kern_row_bytes(w->type, k);
    switch (w->type) {
    case KERN_F32:
        memcpy(dst, p, (size_t)k * sizeof(float));
        break;
    case KERN_F16:
        for (int i = 0; i < k; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * (size_t)i, 2);
            dst[i] = kern_f16_to_f32(h);
        }
        break;
    case KERN_Q8_0:
    case KERN_Q8_128: {
        int bs = kern_q8_block(w->type);
        for (int b = 0; b < k / bs; b++) {
            const uint8_t *blk = p + (size_t)b * (2 + bs);
            uint16_t h;
            memcpy(&h, blk, 2);
            float d = kern_f16_to_f32(h);
            for (int i = 0; i < bs; i++)
                dst[b * bs + i] = d * (float)(int8_t)blk[2 + i];
        }
        break;
    }
    }
}

float kern_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t kern_f32_to_f16(float f)
{
    /* Round to nearest even, with overflow to inf and subnormals. */
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* below the smallest normal half */
        if (absx < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)e; /* 14..24 */
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t r = absx + 0xfff + ((absx >> 13) & 1) - 0x38000000u;
    return (uint16_t)(sign | (r >> 13));
}

float kern_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
