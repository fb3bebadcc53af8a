/* test_pool.c - src/pool.c: every task runs exactly once, on any thread
 * count and job size, over many back-to-back jobs (the small-job pattern
 * of one query), with nested pool_run calls, and the cgroup CPU-quota
 * parsers. */
#include "pool.h"
#include "test.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct count_job {
    atomic_int *hits;
    int n_threads;
    atomic_int bad_thread;
} count_job;

static void count_task(void *ctx, int task, int thread)
{
    count_job *job = ctx;
    atomic_fetch_add(&job->hits[task], 1);
    if (thread < 0 || thread >= job->n_threads)
        atomic_store(&job->bad_thread, 1);
}

/* Run one job of n_tasks and check each task ran exactly once. */
static int run_and_check(pool *p, int n_tasks)
{
    atomic_int *hits = calloc((size_t)n_tasks + 1, sizeof *hits);
    count_job job = { hits, pool_threads(p), 0 };
    pool_run(p, n_tasks, count_task, &job);
    int ok = !atomic_load(&job.bad_thread);
    for (int t = 0; t < n_tasks; t++)
        ok &= atomic_load(&hits[t]) == 1;
    free(hits);
    return ok;
}

typedef struct nested_job {
    pool *p;
    atomic_int total;
} nested_job;

static void inner_task(void *ctx, int task, int thread)
{
    (void)task;
    (void)thread;
    atomic_fetch_add(&((nested_job *)ctx)->total, 1);
}

static void outer_task(void *ctx, int task, int thread)
{
    (void)thread;
    nested_job *job = ctx;
    pool_run(job->p, task + 1, inner_task, job); /* runs inline */
}

/* A task that sums a slice, to see results land where expected. */
typedef struct sum_job {
    const int *data;
    long long *partial;
    int chunk, n;
} sum_job;

static void sum_task(void *ctx, int task, int thread)
{
    (void)thread;
    sum_job *job = ctx;
    long long s = 0;
    for (int i = task * job->chunk; i < job->n && i < (task + 1) * job->chunk;
         i++)
        s += job->data[i];
    job->partial[task] = s;
}

int main(void)
{
    static const int sizes[] = { 0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 100, 1000 };
    for (int threads = 1; threads <= 4; threads++) {
        pool *p = NULL;
        lode_error err = { 0 };
        int rc = pool_create(threads, &p, &err);
        CHECK(rc == 0 && p, "pool_create(%d): %s", threads, err.message);
        if (!p)
            continue;
        CHECK(pool_threads(p) == threads, "threads %d", pool_threads(p));
        int ok = 1;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            ok &= run_and_check(p, sizes[s]);
        CHECK(ok, "%d threads: every task once, all sizes", threads);
        /* many small back-to-back jobs */
        ok = 1;
        for (int r = 0; r < 20000; r++)
            ok &= run_and_check(p, 1 + r % 9);
        CHECK(ok, "%d threads: 20000 small jobs", threads);
        /* a pause long enough for workers to fall asleep, then more */
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
        CHECK(run_and_check(p, 64), "%d threads: job after sleeping",
              threads);
        /* nested pool_run: tasks' own jobs run inline */
        nested_job nj = { p, 0 };
        pool_run(p, 10, outer_task, &nj);
        CHECK(atomic_load(&nj.total) == 55, "nested total %d",
              atomic_load(&nj.total));
        /* results */
        int n = 100000, chunk = 777, tasks = (n + chunk - 1) / chunk;
        int *data = malloc(n * sizeof *data);
        long long *partial = calloc(tasks, sizeof *partial), expect = 0;
        for (int i = 0; i < n; i++)
            expect += data[i] = i % 1000 - 300;
        sum_job sj = { data, partial, chunk, n };
        pool_run(p, tasks, sum_task, &sj);
        long long got = 0;
        for (int t = 0; t < tasks; t++)
            got += partial[t];
        CHECK(got == expect, "%d threads: sum %lld vs %lld", threads, got,
              expect);
        free(data);
        free(partial);
        pool_free(p);
    }
    /* NULL pool runs in order on the caller */
    CHECK(run_and_check(NULL, 5), "NULL pool");
    CHECK(pool_threads(NULL) == 1, "NULL pool has 1 thread");

    /* default size from a pool_create(0) */
    pool *p = NULL;
    CHECK(pool_create(0, &p, NULL) == 0, "pool_create(0)");
    int def = pool_default_threads();
    CHECK(def >= 1, "default threads %d", def);
    CHECK(p && pool_threads(p) == def, "pool_create(0) uses the default");
    pool_free(p);
    pool_free(NULL);

    /* cgroup v2 cpu.max */
    CHECK(pool_parse_cpu_max("max 100000\n") == 0, "unlimited");
    CHECK(pool_parse_cpu_max("200000 100000\n") == 2, "2 CPUs");
    CHECK(pool_parse_cpu_max("150000 100000") == 2, "1.5 rounds up");
    CHECK(pool_parse_cpu_max("50000 100000") == 1, "half a CPU is 1");
    CHECK(pool_parse_cpu_max("1 100000") == 1, "tiny quota is 1");
    CHECK(pool_parse_cpu_max("400000 100000") == 4, "4 CPUs");
    CHECK(pool_parse_cpu_max("") == 0, "empty");
    CHECK(pool_parse_cpu_max("garbage") == 0, "garbage");
    CHECK(pool_parse_cpu_max("12x 100000") == 0, "bad number");
    CHECK(pool_parse_cpu_max("100000 0") == 0, "zero period");
    CHECK(pool_parse_cpu_max(NULL) == 0, "NULL");
    /* cgroup v1 */
    CHECK(pool_parse_cfs_quota("-1\n", "100000\n") == 0, "v1 unlimited");
    CHECK(pool_parse_cfs_quota("250000\n", "100000\n") == 3, "v1 2.5 -> 3");
    CHECK(pool_parse_cfs_quota("100000", "100000") == 1, "v1 1");
    CHECK(pool_parse_cfs_quota("", "100000") == 0, "v1 empty");
    TEST_MAIN_END();
}
