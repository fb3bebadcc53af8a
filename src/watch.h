/* watch.h - keep a set of folders indexed: run an incremental ingest
 * whenever files under them change, until told to stop.
 *
 * Changes are seen through inotify on every directory under the paths
 * (new directories are added as they appear).  A burst of events (an
 * editor's save, a copy of many files) is debounced: the run starts once
 * no event came for debounce_ms.  Because inotify can miss changes (queue
 * overflow, network file systems, files replaced while a run was in
 * progress), a full rescan also runs every rescan_ms whatever happened.
 * What a run does is the caller's (`run`): lode runs the same incremental
 * ingest as `lode ingest --sync`, so unchanged files are skipped by their
 * SHA-256, changed ones replaced and removed ones deleted.
 */
#ifndef LODE_WATCH_H
#define LODE_WATCH_H

#include <stddef.h>

#include "err.h"

#define WATCH_DEFAULT_DEBOUNCE_MS 500
#define WATCH_DEFAULT_RESCAN_MS (5 * 60 * 1000)

typedef struct watch_options {
    int debounce_ms;             /* 0: WATCH_DEFAULT_DEBOUNCE_MS */
    int rescan_ms;               /* 0: WATCH_DEFAULT_RESCAN_MS */
    int stop_fd;                 /* readable (or closed) = stop */
    /* One run over all paths.  An error is reported through note and the
     * loop goes on (the next change or rescan tries again). */
    int (*run)(void *ctx, lode_error *err);
    void (*note)(void *ctx, const char *message);   /* may be NULL */
    void *ctx;
} watch_options;

/* Run once at once, then on changes and rescans until stop_fd is
 * readable.  Returns 0 when stopped, or an error when inotify cannot be
 * set up at all (LODE_EIO). */
int watch_loop(const char *const *paths, size_t n_paths,
               const watch_options *opts, lode_error *err);

#endif
