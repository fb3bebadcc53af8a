/* pool.c - the process's worker threads (see pool.h).
 *
 * A job is published by bumping `generation`; workers notice it by
 * spinning (for POOL_SPIN_NS after their last job) and otherwise sleep on
 * a condition variable.  Tasks are claimed from one 64-bit word holding
 * (generation << 32 | next task) with compare-and-swap, so a worker that
 * wakes late, after its job finished and the next one began, can never
 * claim a task of a job whose fn/ctx it did not read: its CAS fails on
 * the generation (pool_run closes the old ticket before it rewrites
 * fn/ctx).  The caller waits on `done`, the count of finished
 * tasks, spinning first for the same reason.
 *
 * Both sleeps use the "announce, then re-check" order with sequentially
 * consistent atomics (sleepers++ then read generation; publish generation
 * then read sleepers), so a wake-up cannot be lost between the check and
 * the wait.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define POOL_SPIN_NS 200000L  /* how long idle threads spin before sleeping */

struct pool {
    int n_threads;               /* counting the caller */
    pthread_t *workers;          /* n_threads - 1 */
    int n_started;
    pthread_mutex_t run_lock;    /* one pool_run at a time */

    /* The current job; written by the caller before the generation bump
     * that publishes it, read by workers after they see that bump. */
    _Atomic(pool_fn) fn;
    _Atomic(void *) ctx;
    atomic_int n_tasks;
    atomic_uint_fast64_t ticket; /* generation << 32 | next task */
    atomic_uint generation;
    atomic_int done;             /* tasks of the current job finished */
    atomic_int stop;

    pthread_mutex_t lock;        /* guards the two sleeps below */
    pthread_cond_t work_cond;    /* workers wait for a new generation */
    pthread_cond_t done_cond;    /* the caller waits for done == n_tasks */
    atomic_int sleepers;
    atomic_int caller_sleeping;
};

typedef struct worker_arg {
    pool *p;
    int index;
} worker_arg;

static _Thread_local int inside_task;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claim and run tasks of generation `gen` until none are left. */
static void run_tasks(pool *p, unsigned gen, int thread)
{
    pool_fn fn = atomic_load(&p->fn);
    void *ctx = atomic_load(&p->ctx);
    int n_tasks = atomic_load(&p->n_tasks);
    uint_fast64_t cur = atomic_load(&p->ticket);
    for (;;) {
        if ((unsigned)(cur >> 32) != gen)
            return;
        uint32_t task = (uint32_t)cur;
        if (task >= (uint32_t)n_tasks)
            return;
        if (!atomic_compare_exchange_weak(&p->ticket, &cur, cur + 1))
            continue; /* cur now holds the fresh value */
        inside_task = 1;
        fn(ctx, (int)task, thread);
        inside_task = 0;
        if (atomic_fetch_add(&p->done, 1) + 1 == n_tasks &&
            atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done_cond);
            pthread_mutex_unlock(&p->lock);
        }
        cur = atomic_load(&p->ticket);
    }
}

static void *worker_main(void *argp)
{
    worker_arg *arg = argp;
    pool *p = arg->p;
    int index = arg->index;
    free(arg);
    unsigned seen = 0; /* the generation of a new pool */
    for (;;) {
        long spin_until = now_ns() + POOL_SPIN_NS;
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load(&p->generation)) == seen &&
               !atomic_load(&p->stop)) {
            cpu_relax();
            if (++spins % 64 == 0 && now_ns() > spin_until) {
                pthread_mutex_lock(&p->lock);
                atomic_fetch_add(&p->sleepers, 1);
                while (atomic_load(&p->generation) == seen &&
                       !atomic_load(&p->stop))
                    pthread_cond_wait(&p->work_cond, &p->lock);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->lock);
            }
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = gen;
        run_tasks(p, gen, index);
    }
}

int pool_threads(const pool *p) { return p ? p->n_threads : 1; }

void pool_run(pool *p, int n_tasks, pool_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!p || p->n_threads == 1 || n_tasks == 1 || inside_task) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    /* Close the ticket first: a late worker of the previous job must fail
     * its CAS before we overwrite the fields it may have read. */
    unsigned gen = atomic_load(&p->generation) + 1;
    atomic_store(&p->ticket, (uint_fast64_t)gen << 32 | UINT32_MAX);
    atomic_store(&p->fn, fn);
    atomic_store(&p->ctx, ctx);
    atomic_store(&p->n_tasks, n_tasks);
    atomic_store(&p->done, 0);
    atomic_store(&p->ticket, (uint_fast64_t)gen << 32);
    atomic_store(&p->generation, gen);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work_cond);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p, gen, 0);
    if (atomic_load(&p->done) < n_tasks) {
        long spin_until = now_ns() + POOL_SPIN_NS;
        int spins = 0;
        while (atomic_load(&p->done) < n_tasks) {
            cpu_relax();
            if (++spins % 64 == 0 && now_ns() > spin_until) {
                pthread_mutex_lock(&p->lock);
                atomic_store(&p->caller_sleeping, 1);
                while (atomic_load(&p->done) < n_tasks)
                    pthread_cond_wait(&p->done_cond, &p->lock);
                atomic_store(&p->caller_sleeping, 0);
                pthread_mutex_unlock(&p->lock);
            }
        }
    }
    pthread_mutex_unlock(&p->run_lock);
}

void pool_free(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->work_cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->work_cond);
    pthread_cond_destroy(&p->done_cond);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p->workers);
    free(p);
}

int pool_create(int n_threads, pool **out, lode_error *err)
{
    *out = NULL;
    if (n_threads <= 0)
        n_threads = pool_default_threads();
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return lode_error_set(err, LODE_ENOMEM, "out of memory for the "
                              "thread pool");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_cond, NULL);
    pthread_cond_init(&p->done_cond, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        pool_free(p);
        return lode_error_set(err, LODE_ENOMEM, "out of memory for the "
                              "thread pool");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg) {
            arg->p = p;
            arg->index = i;
        }
        int rc = arg ? pthread_create(&p->workers[p->n_started], NULL,
                                      worker_main, arg) : ENOMEM;
        if (rc != 0) {
            free(arg);
            pool_free(p);
            return lode_error_set(err, rc == ENOMEM ? LODE_ENOMEM :
                                  LODE_EINTERNAL, "cannot start worker "
                                  "thread %d of %d: %s", i, n_threads,
                                  strerror(rc));
        }
        p->n_started++;
    }
    *out = p;
    return LODE_OK;
}

/* ---- how many CPUs may we use ---------------------------------------- */

/* ceil(quota / period) for positive numbers, else 0. */
static int quota_cpus(double quota, double period)
{
    if (!(quota > 0) || !(period > 0))
        return 0;
    double cpus = quota / period;
    if (cpus > 1 << 20)
        return 0;
    int n = (int)cpus;
    if (n < cpus)
        n++;
    return n < 1 ? 1 : n;
}

int pool_parse_cpu_max(const char *text)
{
    char quota[32];
    double period;
    if (!text || sscanf(text, "%31s %lf", quota, &period) != 2)
        return 0;
    if (strcmp(quota, "max") == 0)
        return 0;
    char *end;
    double q = strtod(quota, &end);
    if (*end != '\0')
        return 0;
    return quota_cpus(q, period);
}

int pool_parse_cfs_quota(const char *quota_text, const char *period_text)
{
    double q, per;
    if (!quota_text || !period_text || sscanf(quota_text, "%lf", &q) != 1 ||
        sscanf(period_text, "%lf", &per) != 1)
        return 0;
    return quota_cpus(q, per);
}

/* The first line of a small file, or "" if it cannot be read. */
static void read_small(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(buf, (int)size, f))
        buf[0] = '\0';
    fclose(f);
}

static int cgroup_cpus(void)
{
    char text[256], path[640];
    /* v2: our own cgroup's cpu.max (from the "0::/path" line), then the
     * root of the mount, which is what a container sees. */
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::", 3) != 0)
                continue;
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max",
                     strcmp(line + 3, "/") == 0 ? "" : line + 3);
            read_small(path, text, sizeof text);
            int n = pool_parse_cpu_max(text);
            if (n > 0) {
                fclose(f);
                return n;
            }
        }
        fclose(f);
    }
    read_small("/sys/fs/cgroup/cpu.max", text, sizeof text);
    int n = pool_parse_cpu_max(text);
    if (n > 0)
        return n;
    static const char *const v1_dirs[] = {
        "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
    };
    for (size_t i = 0; i < sizeof v1_dirs / sizeof v1_dirs[0]; i++) {
        char period[64];
        snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", v1_dirs[i]);
        read_small(path, text, sizeof text);
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", v1_dirs[i]);
        read_small(path, period, sizeof period);
        n = pool_parse_cfs_quota(text, period);
        if (n > 0)
            return n;
    }
    return 0;
}

int pool_default_threads(void)
{
    int n = 0;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
#endif
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    int quota = cgroup_cpus();
    if (quota > 0 && quota < n)
        n = quota;
    return n < 1 ? 1 : n;
}
