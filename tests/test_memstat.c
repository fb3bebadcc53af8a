/* test_memstat.c - the memory-reading parsers on file texts from cgroup
 * v1, cgroup v2 and /proc, including malformed ones; then one live read
 * of this machine for sanity. */
#include <string.h>

#include "memstat.h"
#include "test.h"

static void test_meminfo(void)
{
    uint64_t total, avail;
    const char *t = "MemTotal:       24684000 kB\nMemFree:        1000 kB\n"
                    "MemAvailable:   22000000 kB\nBuffers: 5 kB\n";
    CHECK(memstat_parse_meminfo(t, &total, &avail) == 0, "parse");
    CHECK(total == 24684000ull * 1024, "total %llu", (unsigned long long)total);
    CHECK(avail == 22000000ull * 1024, "avail");
    /* old kernels: no MemAvailable */
    const char *old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\n"
                      "Cached: 30 kB\nSwapCached: 999 kB\n";
    CHECK(memstat_parse_meminfo(old, &total, &avail) == 0, "old");
    CHECK(avail == 150 * 1024, "free+buffers+cached, not SwapCached: %llu",
          (unsigned long long)avail);
    CHECK(memstat_parse_meminfo("", &total, &avail) != 0, "empty");
    CHECK(memstat_parse_meminfo("MemTotal: lots\n", &total, &avail) != 0,
          "garbage");
    /* a key that is a prefix of another must not match it */
    CHECK(memstat_parse_meminfo("MemTotalX: 5 kB\n", &total, &avail) != 0,
          "prefix");
}

static void test_cgroup_value(void)
{
    uint64_t v;
    bool unl;
    CHECK(memstat_parse_cgroup_value("536870912\n", &v, &unl) == 0 &&
              v == 536870912 && !unl, "v2 number");
    CHECK(memstat_parse_cgroup_value("max\n", &v, &unl) == 0 && unl, "max");
    CHECK(memstat_parse_cgroup_value("9223372036854771712\n", &v, &unl) == 0 &&
              unl, "v1 no limit");
    CHECK(memstat_parse_cgroup_value("12 34\n", &v, &unl) != 0, "two numbers");
    CHECK(memstat_parse_cgroup_value("", &v, &unl) != 0, "empty");
    CHECK(memstat_parse_cgroup_value("-5", &v, &unl) != 0, "negative");
    CHECK(memstat_parse_cgroup_value("99999999999999999999999", &v, &unl) != 0,
          "overflow");
}

static void test_keyed(void)
{
    const char *v2 = "anon 1000\nfile 5000\nactive_file 300\n"
                     "inactive_file 4096\n";
    const char *v1 = "cache 1\ninactive_file 7\ntotal_inactive_file 8192\n";
    uint64_t v;
    CHECK(memstat_parse_keyed(v2, "inactive_file", &v) == 0 && v == 4096,
          "v2 inactive_file");
    CHECK(memstat_parse_keyed(v1, "total_inactive_file", &v) == 0 && v == 8192,
          "v1 total");
    CHECK(memstat_parse_keyed(v1, "inactive_file", &v) == 0 && v == 7,
          "v1 own, not total_");
    CHECK(memstat_parse_keyed(v2, "shmem", &v) == LODE_ENOTFOUND, "absent");
}

static void test_status(void)
{
    uint64_t rss, hwm;
    const char *t = "Name:\tlode\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\n";
    CHECK(memstat_parse_status(t, &rss, &hwm) == 0, "status");
    CHECK(rss == 10240 * 1024 && hwm == 20480 * 1024, "values");
    CHECK(memstat_parse_status("Name: x\n", &rss, &hwm) != 0, "no VmRSS");
}

static void test_cgroup_path(void)
{
    char p[256];
    const char *v1 = "9:name=systemd:/\n4:memory:/process_api/abc\n"
                     "3:cpu,cpuacct:/x\n0::/\n";
    CHECK(memstat_parse_cgroup_path(v1, true, p, sizeof p) == 0 &&
              strcmp(p, "/process_api/abc") == 0, "v1 memory: %s", p);
    CHECK(memstat_parse_cgroup_path(v1, false, p, sizeof p) == 0 &&
              strcmp(p, "/") == 0, "v2: %s", p);
    const char *combo = "5:cpu,memory,pids:/svc\n";
    CHECK(memstat_parse_cgroup_path(combo, true, p, sizeof p) == 0 &&
              strcmp(p, "/svc") == 0, "comma list");
    CHECK(memstat_parse_cgroup_path("0::/a/b", false, p, sizeof p) == 0 &&
              strcmp(p, "/a/b") == 0, "no newline");
    CHECK(memstat_parse_cgroup_path("4:memoryx:/y\n", true, p, sizeof p) ==
              LODE_ENOTFOUND, "memoryx is not memory");
    CHECK(memstat_parse_cgroup_path("0::/long/path", false, p, 4) ==
              LODE_ELIMIT, "too long");
    CHECK(memstat_parse_cgroup_path("garbage", false, p, sizeof p) ==
              LODE_ENOTFOUND, "garbage");
}

static void test_from_cgroup(void)
{
    memstat_system m;
    memstat_from_cgroup(512u << 20, 300u << 20, 100u << 20, &m);
    CHECK(m.used_bytes == 200u << 20, "working set excludes inactive file");
    CHECK(m.available_bytes == 312u << 20, "available");
    CHECK(m.percent_used > 39 && m.percent_used < 39.1, "%f", m.percent_used);
    memstat_from_cgroup(100, 500, 0, &m);
    CHECK(m.used_bytes == 100 && m.available_bytes == 0, "clamped");
}

static void test_live(void)
{
    memstat_system s;
    memstat_process p;
    CHECK(memstat_read_system(&s, NULL) == 0, "read system");
    CHECK(s.total_bytes > 0 && s.used_bytes <= s.total_bytes, "sane");
    CHECK(s.percent_used >= 0 && s.percent_used <= 100, "percent");
    CHECK(memstat_read_process(&p, NULL) == 0 && p.rss_bytes > 0 &&
              p.peak_rss_bytes >= p.rss_bytes, "process");
}

int main(void)
{
    test_meminfo();
    test_cgroup_value();
    test_keyed();
    test_status();
    test_cgroup_path();
    test_from_cgroup();
    test_live();
    TEST_MAIN_END();
}
