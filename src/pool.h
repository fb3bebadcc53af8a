/* pool.h - one persistent thread pool for the process.
 *
 * pool_run hands out tasks 0..n_tasks-1 to the pool's threads and the
 * calling thread, and returns when every task has finished.  Idle workers
 * spin briefly before sleeping, so the back-to-back small jobs of one
 * short query (a dozen matrix products per layer) do not each pay a
 * futex wake-up.
 *
 * Which thread runs which task is not fixed; code that wants the same
 * result on any thread count must make each task's result depend only on
 * its task number (the kernels do).  The `thread` argument (0 = the
 * caller, 1..n-1 = workers) is for per-thread scratch.
 *
 * pool_run may be called from several threads; the calls are serialised.
 * A task that itself calls pool_run gets its tasks run inline, in order,
 * on its own thread.
 */
#ifndef LODE_POOL_H
#define LODE_POOL_H

#include "err.h"

typedef struct pool pool;

typedef void (*pool_fn)(void *ctx, int task, int thread);

/* A pool of n_threads threads in all, counting the caller of pool_run (so
 * n_threads - 1 workers are started).  n_threads <= 0 means
 * pool_default_threads().  Returns 0 or LODE_ENOMEM / LODE_EINTERNAL. */
int pool_create(int n_threads, pool **out, lode_error *err);

/* Run fn(ctx, task, thread) for every task in 0..n_tasks-1, exactly once
 * each, and return when all have finished.  pool may be NULL: the tasks
 * then run in order on the caller. */
void pool_run(pool *p, int n_tasks, pool_fn fn, void *ctx);

/* Threads in the pool, counting the caller (1 for NULL). */
int pool_threads(const pool *p);

/* Stop and join the workers.  NULL is fine. */
void pool_free(pool *p);

/* The CPUs this process may use: the smaller of the sched_getaffinity
 * mask and the cgroup CPU quota (v2 cpu.max, or v1 cfs_quota_us over
 * cfs_period_us), rounded up, at least 1. */
int pool_default_threads(void);

/* Parse the text of a cgroup v2 cpu.max file ("max 100000" or
 * "150000 100000"): the quota in whole CPUs, rounded up, at least 1; 0
 * for no limit or text that does not parse. */
int pool_parse_cpu_max(const char *text);
/* The same for cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us texts
 * (quota -1 means no limit). */
int pool_parse_cfs_quota(const char *quota_text, const char *period_text);

#endif
