/* watch.c - the watched-folder loop (see watch.h).
 *
 * One thread, one poll() over the inotify descriptor and the stop
 * descriptor, with a timeout that is the sooner of the debounce deadline
 * (when changes are pending) and the next rescan.  Watches are (re)added
 * by walking the tree before every run, so directories created since the
 * last run are watched too; adding a watch twice is harmless (inotify
 * returns the same descriptor).  Events are not interpreted beyond "some
 * file of a known format changed": the run itself compares contents,
 * which is what makes a missed or duplicated event harmless.
 */
#include "watch.h"

#include "extract.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WATCH_EVENTS (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | \
                      IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |            \
                      IN_DELETE_SELF | IN_MOVE_SELF)
#define WATCH_MAX_DEPTH 64

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void note(const watch_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(const watch_options *o, const char *fmt, ...)
{
    if (!o->note)
        return;
    char msg[LODE_ERROR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->note(o->ctx, msg);
}

/* Watch dir and every directory below it (hidden ones skipped, as ingest
 * skips them; symbolic links not followed). */
static void add_tree(int fd, const char *dir, int depth)
{
    if (depth > WATCH_MAX_DEPTH || inotify_add_watch(fd, dir, WATCH_EVENTS) < 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
            (int)sizeof path)
            continue;
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            add_tree(fd, path, depth + 1);
    }
    closedir(d);
}

static void add_watches(int fd, const char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            add_tree(fd, paths[i], 0);
        } else {
            /* a file: watch it and its directory (replaced by rename) */
            inotify_add_watch(fd, paths[i], WATCH_EVENTS);
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", paths[i]);
            char *slash = strrchr(dir, '/');
            if (slash && slash != dir)
                *slash = '\0';
            else
                snprintf(dir, sizeof dir, slash ? "/" : ".");
            inotify_add_watch(fd, dir, WATCH_EVENTS);
        }
    }
}

/* Does any event of the batch concern a file ingest would read (or a
 * directory, or lost events)?  Writes to the database, temporary files
 * of editors and hidden files do not start a run; without this a store
 * kept inside the watched folder would trigger itself forever. */
static int events_matter(const char *buf, size_t len)
{
    for (size_t off = 0; off + sizeof(struct inotify_event) <= len;) {
        const struct inotify_event *e = (const void *)(buf + off);
        off += sizeof *e + e->len;
        if (e->mask & (IN_Q_OVERFLOW | IN_ISDIR | IN_DELETE_SELF |
                       IN_MOVE_SELF))
            return 1;
        if (!e->len || !e->name[0])
            return 1;                  /* a watched file itself */
        if (e->name[0] != '.' && extract_format_of(e->name) != EXTRACT_UNKNOWN)
            return 1;
    }
    return 0;
}

static void run_once(int fd, const char *const *paths, size_t n,
                     const watch_options *o)
{
    add_watches(fd, paths, n);
    lode_error e = {0};
    if (o->run(o->ctx, &e))
        note(o, "watch: this run failed (retrying on the next change): %s",
             e.message[0] ? e.message : lode_strerror(e.code));
}

int watch_loop(const char *const *paths, size_t n_paths,
               const watch_options *opts, lode_error *err)
{
    int debounce = opts->debounce_ms > 0 ? opts->debounce_ms
                                         : WATCH_DEFAULT_DEBOUNCE_MS;
    int rescan = opts->rescan_ms > 0 ? opts->rescan_ms
                                     : WATCH_DEFAULT_RESCAN_MS;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return lode_error_set(err, LODE_EIO, "cannot watch files (inotify): "
                              "%s", strerror(errno));
    run_once(fd, paths, n_paths, opts);
    long long next_rescan = now_ms() + rescan, last_event = 0;
    int pending = 0;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        long long now = now_ms();
        long long due = pending ? last_event + debounce : next_rescan;
        if (pending && next_rescan < due)
            due = next_rescan;
        if (now >= due) {
            if (!pending)
                note(opts, "watch: periodic rescan");
            pending = 0;
            run_once(fd, paths, n_paths, opts);
            next_rescan = now_ms() + rescan;
            continue;
        }
        struct pollfd fds[2] = {{opts->stop_fd, POLLIN, 0}, {fd, POLLIN, 0}};
        long long wait = due - now;
        int n = poll(fds, 2, wait > 60000 ? 60000 : (int)wait);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (fds[0].revents)
            break;                     /* stop */
        if (fds[1].revents & POLLIN) {
            ssize_t got;
            while ((got = read(fd, buf, sizeof buf)) > 0) {
                if (events_matter(buf, (size_t)got)) {
                    pending = 1;
                    last_event = now_ms();
                }
            }
        }
    }
    close(fd);
    return LODE_OK;
}
