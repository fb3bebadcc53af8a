/* memstat.h - memory readings for the server: the machine's (or the
 * container's) memory, and this process's resident set.
 *
 * On a 512 MB instance the number that matters is the container's: the
 * OOM killer acts on the cgroup limit, not on the host's RAM that
 * /proc/meminfo reports.  So the system reading comes from the cgroup when
 * the process is in one with a limit (v2 memory.max / memory.current, v1
 * memory.limit_in_bytes / memory.usage_in_bytes), else from /proc/meminfo.
 * Cgroup usage counts the page cache, which the kernel drops before it
 * kills anything, so "used" is the working set: usage minus inactive file
 * pages (memory.stat), as Kubernetes and `docker stats` compute it.
 *
 * The parsers take file text and are pure, so tests feed them strings;
 * memstat_system() and memstat_process() do the reading.
 */
#ifndef LODE_MEMSTAT_H
#define LODE_MEMSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct memstat_system {
    uint64_t total_bytes;     /* cgroup limit, else MemTotal */
    uint64_t used_bytes;      /* working set, else MemTotal - MemAvailable */
    uint64_t available_bytes; /* total - used */
    double percent_used;      /* 0..100 */
    const char *source;       /* "cgroup v2", "cgroup v1" or "meminfo" */
} memstat_system;

typedef struct memstat_process {
    uint64_t rss_bytes;       /* VmRSS */
    uint64_t peak_rss_bytes;  /* VmHWM */
} memstat_process;

/* Read the system (or cgroup) memory. */
int memstat_read_system(memstat_system *out, lode_error *err);
/* Read this process's resident set from /proc/self/status. */
int memstat_read_process(memstat_process *out, lode_error *err);

/* ---- parsers (pure, on file text) ------------------------------------ */

/* /proc/meminfo: MemTotal and MemAvailable in bytes (MemFree + Buffers +
 * Cached when MemAvailable is missing).  LODE_EFORMAT if MemTotal is. */
int memstat_parse_meminfo(const char *text, uint64_t *total,
                          uint64_t *available);
/* A cgroup value file: a byte count, or "max" (v2) for no limit.  v1
 * writes "no limit" as a huge number: anything >= 2^62 also counts as
 * unlimited.  *unlimited may be NULL. */
int memstat_parse_cgroup_value(const char *text, uint64_t *value,
                               bool *unlimited);
/* The value of `key` in a "key value" per line file (memory.stat);
 * LODE_ENOTFOUND when absent. */
int memstat_parse_keyed(const char *text, const char *key, uint64_t *value);
/* /proc/self/status: VmRSS and VmHWM in bytes. */
int memstat_parse_status(const char *text, uint64_t *rss, uint64_t *hwm);
/* /proc/self/cgroup: the path of this process's cgroup in the v2 tree
 * ("0::PATH") when v2 is false, or of the v1 memory controller
 * ("N:memory:PATH" or a list holding memory) when it is true.  Copies at
 * most size-1 bytes into path.  LODE_ENOTFOUND when there is none. */
int memstat_parse_cgroup_path(const char *text, bool v1_memory, char *path,
                              size_t size);
/* Fill a memstat_system from limit, usage and inactive file bytes. */
void memstat_from_cgroup(uint64_t limit, uint64_t usage,
                         uint64_t inactive_file, memstat_system *out);

#endif
