/* accesslog.c - JSON lines, one write(2) each (see accesslog.h).
 *
 * Lines are built by hand in a stack buffer rather than through jansson:
 * every string is escaped to printable ASCII here anyway (so jansson's
 * UTF-8 check would refuse nothing), and a request's end then costs no
 * allocation. */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The longest a path may take in a line, escaped: the rest of the line
 * (time, id, address, method, route, numbers, names) stays far below the
 * remaining 1.5 KB, as the fields around it are capped too. */
#define ACCESSLOG_PATH_MAX 2560
#define ACCESSLOG_FIELD_MAX 128

struct accesslog {
    int fd;
    bool owns_fd;
    atomic_uint_fast64_t failures;
};

int accesslog_open(const char *path, accesslog **out, lode_error *err)
{
    *out = NULL;
    accesslog *log = calloc(1, sizeof *log);
    if (!log)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (strcmp(path, "-") == 0) {
        log->fd = STDERR_FILENO;
    } else {
        log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (log->fd < 0) {
            int e = errno;
            free(log);
            return lode_error_set(err, LODE_EIO, "cannot open the access log "
                                  "%s: %s", path, strerror(e));
        }
        log->owns_fd = true;
    }
    atomic_init(&log->failures, 0);
    *out = log;
    return 0;
}

void accesslog_close(accesslog *log)
{
    if (!log)
        return;
    if (log->owns_fd)
        close(log->fd);
    free(log);
}

uint64_t accesslog_failures(accesslog *log)
{
    return log ? atomic_load(&log->failures) : 0;
}

/* A growing line: `len` bytes of buf used; writes past `size` are
 * dropped (and cannot happen with the caps above). */
typedef struct line {
    char *buf;
    size_t len, size;
    int fields;          /* written so far: a comma before the next */
} line;

static void put(line *l, const char *s, size_t n)
{
    if (n > l->size - l->len)
        n = l->size - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* "name" (after a comma unless it is the first field) */
static void put_name(line *l, const char *name)
{
    if (l->fields++)
        put(l, ",", 1);
    put(l, "\"", 1);
    put(l, name, strlen(name));
}

/* "name":"value" with value escaped to printable ASCII and cut at max
 * bytes of output (never inside a %XX); null for a NULL value. */
static void put_string(line *l, const char *name, const char *value,
                       size_t max)
{
    put_name(l, name);
    if (!value) {
        put(l, "\":null", 6);
        return;
    }
    put(l, "\":\"", 3);
    static const char hex[] = "0123456789ABCDEF";
    size_t out = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        char esc[3];
        size_t n = 1;
        esc[0] = (char)*p;
        if (*p <= 0x20 || *p >= 0x7f || *p == '%' || *p == '"' ||
            *p == '\\') {
            esc[0] = '%';
            esc[1] = hex[*p >> 4];
            esc[2] = hex[*p & 15];
            n = 3;
        }
        if (out + n > max)
            break;
        put(l, esc, n);
        out += n;
    }
    put(l, "\"", 1);
}

static void put_number(line *l, const char *name, const char *fmt, double v)
{
    char num[64];
    int n = snprintf(num, sizeof num, fmt, v);
    put_name(l, name);
    put(l, "\":", 2);
    put(l, num, n > 0 ? (size_t)n : 0);
}

size_t accesslog_format(const accesslog_entry *e, char *buf, size_t size)
{
    line l = {buf, 0, size - 1, 0};   /* room for the newline */
    put(&l, "{", 1);
    put_string(&l, "time", e->time, 40);
    put_string(&l, "id", e->id, ACCESSLOG_FIELD_MAX);
    put_string(&l, "client", e->client, ACCESSLOG_FIELD_MAX);
    put_string(&l, "method", e->method, 64);
    put_string(&l, "path", e->path, ACCESSLOG_PATH_MAX);
    put_string(&l, "route", e->route, ACCESSLOG_FIELD_MAX);
    put_number(&l, "status", "%.0f", e->status);
    put_number(&l, "bytes", "%.0f", (double)e->bytes);
    put_number(&l, "ms", "%.3f", e->ms >= 0 ? e->ms : 0);
    put(&l, "}", 1);
    buf[l.len++] = '\n';
    return l.len;
}

int accesslog_write(accesslog *log, const accesslog_entry *e)
{
    char buf[ACCESSLOG_LINE_MAX];
    size_t n = accesslog_format(e, buf, sizeof buf);
    ssize_t w = write(log->fd, buf, n);
    if (w != (ssize_t)n) {
        atomic_fetch_add(&log->failures, 1);
        return LODE_EIO;
    }
    return 0;
}
