/* accesslog.h - the opt-in access log of `lode serve` (--access-log):
 * one JSON object per request, one line each (JSON lines):
 *
 *   {"time":"2026-12-08T10:00:00.123Z","id":"5f0c...","client":"203.0.113.7",
 *    "method":"POST","path":"/search","route":"/search","status":200,
 *    "bytes":1834,"ms":12.4}
 *
 * time: when the request ended (UTC); id: its X-Request-Id; client: its
 * address (as http_client_addr resolves it); path: without the query
 * string; route: the routing table's name ("/collections/{name}"), null
 * when none matched; status: 499 when the client left before an answer;
 * bytes: of the answer's body; ms: from the headers to the end.
 *
 * What is never written: header values (Authorization, keys, cookies),
 * the query string (it may carry a token) and bodies.  Every string is
 * written as printable ASCII, any other byte (and `%`, `"`, `\`) as %XX,
 * so a line is valid JSON whatever the request held and cannot be split
 * or forged by a path with a newline in it.
 *
 * Each line is one write(2) to a file opened with O_APPEND (or stderr):
 * lines of concurrent requests never interleave, also with several
 * processes on one file, and the log may be rotated by copy-and-truncate.
 * A line is at most ACCESSLOG_LINE_MAX bytes (the path is cut to fit),
 * within PIPE_BUF, so the same holds for a pipe. */
#ifndef LODE_ACCESSLOG_H
#define LODE_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define ACCESSLOG_LINE_MAX 4096

typedef struct accesslog accesslog;

typedef struct accesslog_entry {
    const char *time;      /* RFC 3339, http_timestamp's */
    const char *id;
    const char *client;
    const char *method;
    const char *path;
    const char *route;     /* NULL: no route matched */
    int status;
    uint64_t bytes;
    double ms;
} accesslog_entry;

/* Open (create, append to) the file at path, or "-" for stderr. */
int accesslog_open(const char *path, accesslog **out, lode_error *err);
/* Append the entry's line.  LODE_EIO when the write failed or was short
 * (the line is then lost, never retried: a retry could interleave). */
int accesslog_write(accesslog *log, const accesslog_entry *e);
/* Lines that could not be written since the log was opened. */
uint64_t accesslog_failures(accesslog *log);
void accesslog_close(accesslog *log);

/* The entry's line, newline included, in buf (size >= ACCESSLOG_LINE_MAX);
 * returns its length. */
size_t accesslog_format(const accesslog_entry *e, char *buf, size_t size);

#endif
