/* memstat.c - memory readings from the cgroup or /proc (see memstat.h).
 *
 * Files are small; each is read whole into a stack buffer and handed to a
 * pure parser.  When this process's own cgroup directory is not visible
 * (a container usually mounts its own cgroup as the root of
 * /sys/fs/cgroup), the root of the mount is used instead. */
#include "memstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMSTAT_FILE_MAX 16384
/* v1 reports "no limit" as a page-rounded 2^63 - 1. */
#define MEMSTAT_UNLIMITED ((uint64_t)1 << 62)

/* Read a whole small file into buf (NUL-terminated).  0 or LODE_EIO. */
static int read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return LODE_EIO;
    size_t n = fread(buf, 1, size - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return LODE_EIO;
    buf[n] = '\0';
    return 0;
}

/* Parse an unsigned decimal at *p, skipping leading blanks. */
static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return LODE_EFORMAT;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return LODE_EFORMAT;
    *out = v;
    *p = end;
    return 0;
}

/* Find "key" at the start of a line followed by a separator in seps. */
static const char *find_line(const char *text, const char *key,
                             const char *seps)
{
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] && strchr(seps, line[kl]))
            return line + kl + 1;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

/* "Key:   123 kB" from meminfo or status, in bytes. */
static int kb_field(const char *text, const char *key, uint64_t *bytes)
{
    const char *p = find_line(text, key, ":");
    uint64_t v;
    if (!p)
        return LODE_ENOTFOUND;
    if (parse_u64(&p, &v))
        return LODE_EFORMAT;
    *bytes = v * 1024;
    return 0;
}

int memstat_parse_meminfo(const char *text, uint64_t *total,
                          uint64_t *available)
{
    if (kb_field(text, "MemTotal", total))
        return LODE_EFORMAT;
    if (kb_field(text, "MemAvailable", available) == 0)
        return 0;
    uint64_t fr = 0, buffers = 0, cached = 0;
    if (kb_field(text, "MemFree", &fr))
        return LODE_EFORMAT;
    kb_field(text, "Buffers", &buffers);
    kb_field(text, "Cached", &cached);
    *available = fr + buffers + cached;
    if (*available > *total)
        *available = *total;
    return 0;
}

int memstat_parse_cgroup_value(const char *text, uint64_t *value,
                               bool *unlimited)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    bool unl = false;
    if (strncmp(p, "max", 3) == 0) {
        unl = true;
        *value = UINT64_MAX;
        p += 3;
    } else if (parse_u64(&p, value)) {
        return LODE_EFORMAT;
    } else if (*value >= MEMSTAT_UNLIMITED) {
        unl = true;
    }
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p)
        return LODE_EFORMAT;
    if (unlimited)
        *unlimited = unl;
    return 0;
}

int memstat_parse_keyed(const char *text, const char *key, uint64_t *value)
{
    const char *p = find_line(text, key, " \t");
    if (!p)
        return LODE_ENOTFOUND;
    return parse_u64(&p, value);
}

int memstat_parse_status(const char *text, uint64_t *rss, uint64_t *hwm)
{
    if (kb_field(text, "VmRSS", rss))
        return LODE_EFORMAT;
    if (kb_field(text, "VmHWM", hwm))
        *hwm = *rss;
    return 0;
}

int memstat_parse_cgroup_path(const char *text, bool v1_memory, char *path,
                              size_t size)
{
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line))
                            : NULL;
        if (c2) {
            const char *ctl = c1 + 1;
            size_t ctl_len = (size_t)(c2 - ctl);
            bool match = false;
            if (!v1_memory) {
                match = c1 - line == 1 && line[0] == '0' && ctl_len == 0;
            } else {
                /* controllers are a comma list: "memory" or "cpu,memory" */
                for (const char *c = ctl; c < c2;) {
                    const char *comma = memchr(c, ',', (size_t)(c2 - c));
                    const char *ce = comma ? comma : c2;
                    if (ce - c == 6 && memcmp(c, "memory", 6) == 0)
                        match = true;
                    c = ce + 1;
                }
            }
            if (match) {
                size_t pl = len - (size_t)(c2 + 1 - line);
                if (pl >= size)
                    return LODE_ELIMIT;
                memcpy(path, c2 + 1, pl);
                path[pl] = '\0';
                return 0;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return LODE_ENOTFOUND;
}

void memstat_from_cgroup(uint64_t limit, uint64_t usage,
                         uint64_t inactive_file, memstat_system *out)
{
    uint64_t used = usage > inactive_file ? usage - inactive_file : usage;
    if (used > limit)
        used = limit;
    out->total_bytes = limit;
    out->used_bytes = used;
    out->available_bytes = limit - used;
    out->percent_used = limit ? 100.0 * (double)used / (double)limit : 0;
}

/* Read limit, usage and inactive_file of the cgroup directory `dir`. */
static int read_cgroup_dir(const char *dir, bool v1, memstat_system *out)
{
    char path[4096], buf[MEMSTAT_FILE_MAX];
    uint64_t limit, usage, inactive = 0;
    bool unlimited;
    snprintf(path, sizeof path, "%s/%s", dir,
             v1 ? "memory.limit_in_bytes" : "memory.max");
    if (read_small(path, buf, sizeof buf) ||
        memstat_parse_cgroup_value(buf, &limit, &unlimited) || unlimited)
        return LODE_ENOTFOUND;
    snprintf(path, sizeof path, "%s/%s", dir,
             v1 ? "memory.usage_in_bytes" : "memory.current");
    if (read_small(path, buf, sizeof buf) ||
        memstat_parse_cgroup_value(buf, &usage, NULL))
        return LODE_ENOTFOUND;
    snprintf(path, sizeof path, "%s/memory.stat", dir);
    if (read_small(path, buf, sizeof buf) == 0 &&
        memstat_parse_keyed(buf, v1 ? "total_inactive_file" : "inactive_file",
                            &inactive) != 0)
        memstat_parse_keyed(buf, "inactive_file", &inactive);
    memstat_from_cgroup(limit, usage, inactive, out);
    out->source = v1 ? "cgroup v1" : "cgroup v2";
    return 0;
}

/* This process's cgroup directory under `mount`, else the mount itself. */
static int read_cgroup(const char *self_cgroup, const char *mount, bool v1,
                       memstat_system *out)
{
    char rel[2048], dir[4096];
    if (memstat_parse_cgroup_path(self_cgroup, v1, rel, sizeof rel) == 0 &&
        strcmp(rel, "/") != 0) {
        snprintf(dir, sizeof dir, "%s%s", mount, rel);
        if (read_cgroup_dir(dir, v1, out) == 0)
            return 0;
    }
    return read_cgroup_dir(mount, v1, out);
}

int memstat_read_system(memstat_system *out, lode_error *err)
{
    char buf[MEMSTAT_FILE_MAX];
    if (read_small("/proc/self/cgroup", buf, sizeof buf) == 0) {
        if (read_cgroup(buf, "/sys/fs/cgroup", false, out) == 0 ||
            read_cgroup(buf, "/sys/fs/cgroup/memory", true, out) == 0)
            return 0;
    }
    uint64_t total, available;
    if (read_small("/proc/meminfo", buf, sizeof buf))
        return lode_error_set(err, LODE_EIO, "cannot read /proc/meminfo");
    if (memstat_parse_meminfo(buf, &total, &available))
        return lode_error_set(err, LODE_EFORMAT, "cannot parse /proc/meminfo");
    out->total_bytes = total;
    out->available_bytes = available;
    out->used_bytes = total - available;
    out->percent_used = total ? 100.0 * (double)(total - available) /
                                    (double)total : 0;
    out->source = "meminfo";
    return 0;
}

int memstat_read_process(memstat_process *out, lode_error *err)
{
    char buf[MEMSTAT_FILE_MAX];
    if (read_small("/proc/self/status", buf, sizeof buf))
        return lode_error_set(err, LODE_EIO, "cannot read /proc/self/status");
    if (memstat_parse_status(buf, &out->rss_bytes, &out->peak_rss_bytes))
        return lode_error_set(err, LODE_EFORMAT,
                              "cannot parse /proc/self/status");
    return 0;
}
