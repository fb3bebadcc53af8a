/* api_watch.h - `lode serve --watch DIR`: a thread of the server that
 * keeps DIR indexed into the default collection, as `lode ingest --watch`
 * does (watch.h), through the server's scheduler and store lock, so it
 * writes through the same store as the HTTP routes. */
#ifndef LODE_API_WATCH_H
#define LODE_API_WATCH_H

#include "api.h"

typedef struct api_watcher api_watcher;

/* Start watching dir (the thread waits for the database and the model
 * first).  rescan_s: seconds between full rescans (0: the default). */
int api_watch_start(api *a, const char *dir, int rescan_s,
                    api_watcher **out, lode_error *err);
/* Stop the thread (a run in progress stops at its next chunk or batch)
 * and free it.  NULL is fine. */
void api_watch_stop(api_watcher *w);

#endif
