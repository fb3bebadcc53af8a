/* test_accesslog.c - the access log (src/accesslog.c): a line is one JSON
 * object with every field, strings escaped to printable ASCII (a path
 * with a newline, quotes, a backslash, control and non-ASCII bytes cannot
 * split or break the line), long paths cut so a line stays under
 * ACCESSLOG_LINE_MAX, appending to an existing file, an unopenable path
 * refused, and 8 threads writing 2,000 lines each to one file with every
 * line whole. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "accesslog.h"
#include "test.h"

static accesslog_entry entry(const char *path)
{
    return (accesslog_entry){
        .time = "2026-12-08T10:00:00.123Z", .id = "0123456789abcdef",
        .client = "203.0.113.7", .method = "POST", .path = path,
        .route = "/search", .status = 200, .bytes = 1834, .ms = 12.375,
    };
}

/* The line parsed (its newline checked and dropped), or NULL. */
static json_t *parse_line(const char *buf, size_t n)
{
    CHECK(n > 0 && buf[n - 1] == '\n' && !memchr(buf, '\n', n - 1),
          "one line, newline-terminated");
    json_error_t jerr;
    json_t *j = json_loadb(buf, n - 1, 0, &jerr);
    CHECK(j && json_is_object(j), "JSON: %s: %.*s", jerr.text, (int)n, buf);
    return j;
}

static void test_fields(void)
{
    char buf[ACCESSLOG_LINE_MAX];
    accesslog_entry e = entry("/search");
    size_t n = accesslog_format(&e, buf, sizeof buf);
    json_t *j = parse_line(buf, n);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "path")), "/search") == 0,
          "path");
    CHECK(json_integer_value(json_object_get(j, "status")) == 200 &&
              json_integer_value(json_object_get(j, "bytes")) == 1834,
          "status, bytes: %.*s", (int)n, buf);
    CHECK(json_real_value(json_object_get(j, "ms")) == 12.375, "ms");
    static const char *const fields[] = {"time", "id", "client", "method",
                                         "path", "route", "status", "bytes",
                                         "ms"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        CHECK(json_object_get(j, fields[i]) != NULL, "field %s", fields[i]);
    CHECK(json_object_size(j) == sizeof fields / sizeof *fields,
          "no other field");
    json_decref(j);

    e.route = NULL;
    e.path = NULL;
    n = accesslog_format(&e, buf, sizeof buf);
    j = parse_line(buf, n);
    CHECK(j && json_is_null(json_object_get(j, "route")) &&
              json_is_null(json_object_get(j, "path")), "nulls");
    json_decref(j);
}

static void test_escaping(void)
{
    char buf[ACCESSLOG_LINE_MAX];
    accesslog_entry e = entry("/a b\n{\"x\":1}\\\x01%\xc3\xa9\xff");
    e.method = "GET\r\nX-Injected: 1";
    size_t n = accesslog_format(&e, buf, sizeof buf);
    for (size_t i = 0; i + 1 < n; i++)
        CHECK(buf[i] >= 0x20 && buf[i] < 0x7f, "byte %zu is 0x%02x", i,
              (unsigned char)buf[i]);
    json_t *j = parse_line(buf, n);
    const char *path = json_string_value(json_object_get(j, "path"));
    CHECK(path && strcmp(path, "/a%20b%0A{%22x%22:1}%5C%01%25%C3%A9%FF") == 0,
          "path %s", path);
    CHECK(strcmp(json_string_value(json_object_get(j, "method")),
                 "GET%0D%0AX-Injected:%201") == 0, "method");
    json_decref(j);
}

static void test_long_path_is_cut(void)
{
    size_t len = 100000;
    char *path = malloc(len + 1);
    memset(path, '\n', len);   /* each becomes %0A: three bytes */
    path[len] = '\0';
    accesslog_entry e = entry(path);
    char long_id[1000];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    e.id = e.client = e.method = e.route = long_id;
    char buf[ACCESSLOG_LINE_MAX];
    size_t n = accesslog_format(&e, buf, sizeof buf);
    CHECK(n < ACCESSLOG_LINE_MAX, "%zu bytes", n);
    json_t *j = parse_line(buf, n);
    const char *p = json_string_value(json_object_get(j, "path"));
    CHECK(p && strlen(p) % 3 == 0 && strlen(p) > 1000, "cut between escapes: %zu",
          p ? strlen(p) : 0);
    json_decref(j);
    free(path);
}

static char tmpdir[] = "/tmp/lode-test-accesslog-XXXXXX";

static void test_file(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/access.log", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("{\"earlier\":true}\n", f);
    fclose(f);
    accesslog *log;
    lode_error err = {0};
    CHECK(accesslog_open(path, &log, &err) == 0, "open: %s", err.message);
    accesslog_entry e = entry("/one");
    CHECK(accesslog_write(log, &e) == 0, "write");
    e.path = "/two";
    CHECK(accesslog_write(log, &e) == 0, "write");
    CHECK(accesslog_failures(log) == 0, "no failures");
    accesslog_close(log);
    char text[4096] = "";
    f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    CHECK(strncmp(text, "{\"earlier\":true}\n{", 18) == 0, "appended: %s", text);
    CHECK(strstr(text, "\"/one\"") && strstr(text, "\"/two\""), "both lines");

    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/access.log", tmpdir);
    log = NULL;
    CHECK(accesslog_open(bad, &log, &err) == LODE_EIO && !log &&
              strstr(err.message, "access log"), "refused: %s", err.message);
    unlink(path);
}

typedef struct writer {
    accesslog *log;
    int n;
} writer;

static void *write_lines(void *arg)
{
    writer *w = arg;
    char path[2100];
    for (int i = 0; i < 2000; i++) {
        /* paths of different lengths, up to 2 KB, so writes differ */
        int len = snprintf(path, sizeof path, "/t%d/%d/", w->n, i);
        int pad = (i * 37 + w->n * 101) % 2000;
        memset(path + len, 'a' + w->n, (size_t)pad);
        path[len + pad] = '\0';
        accesslog_entry e = entry(path);
        accesslog_write(w->log, &e);
    }
    return NULL;
}

static void test_threads_never_interleave(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/threads.log", tmpdir);
    accesslog *log;
    CHECK(accesslog_open(path, &log, NULL) == 0, "open");
    enum { N = 8 };
    pthread_t th[N];
    writer w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (writer){log, i};
        pthread_create(&th[i], NULL, write_lines, &w[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    CHECK(accesslog_failures(log) == 0, "failures");
    accesslog_close(log);
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lines = 0, bad = 0, per[N] = {0};
    while ((len = getline(&line, &cap, f)) > 0) {
        lines++;
        json_t *j = json_loadb(line, (size_t)len - 1, 0, NULL);
        const char *p = json_string_value(json_object_get(j, "path"));
        int t = -1, i = -1;
        if (!p || sscanf(p, "/t%d/%d/", &t, &i) != 2 || t < 0 || t >= N)
            bad++;
        else
            per[t]++;
        json_decref(j);
    }
    free(line);
    fclose(f);
    CHECK(lines == N * 2000 && bad == 0, "%d lines, %d broken", lines, bad);
    for (int i = 0; i < N; i++)
        CHECK(per[i] == 2000, "thread %d: %d lines", i, per[i]);
    unlink(path);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_fields();
    test_escaping();
    test_long_path_is_cut();
    test_file();
    test_threads_never_interleave();
    rmdir(tmpdir);
    TEST_MAIN_END();
}
