/* test_mapfile.c - mapfile_release: the pages it is given leave the
 * process's resident set and still read back the file's bytes; ranges
 * outside the mapping are left alone. */
#include "mapfile.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Resident kB of the mapping that starts at `base`, from /proc/self/smaps
 * (-1 if it is not found). */
static long mapping_rss_kb(const void *base)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int in = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') &&
            strchr(line, ' ') > strchr(line, '-')) {
            in = lo == (unsigned long)(uintptr_t)base;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

int main(void)
{
    char path[] = "/tmp/lode-test-mapfile-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    size_t size = (size_t)4 << 20;
    unsigned char *want = malloc(size);
    for (size_t i = 0; i < size; i++)
        want[i] = (unsigned char)(i * 2654435761u >> 13);
    CHECK(write(fd, want, size) == (ssize_t)size, "write the file");
    close(fd);

    const void *base;
    size_t got;
    lode_error err = {0};
    CHECK(mapfile_open(path, &base, &got, &err) == 0, "open: %s", err.message);
    CHECK(got == size, "size %zu", got);
    volatile unsigned sum = 0;
    for (size_t i = 0; i < size; i += 4096)
        sum += ((const unsigned char *)base)[i];
    long before = mapping_rss_kb(base);
    CHECK(before >= 4000, "all pages resident after reading: %ld kB", before);

    /* an unaligned range: only its whole pages go */
    mapfile_release(base, size, (const char *)base + 100, (size_t)3 << 20);
    long after = mapping_rss_kb(base);
    CHECK(after >= 0 && after <= before - 3000,
          "released pages left the resident set: %ld -> %ld kB", before,
          after);
    CHECK(memcmp(base, want, size) == 0, "the bytes read back after release");
    long again = mapping_rss_kb(base);
    CHECK(again >= 4000, "and are resident again once read: %ld kB", again);

    /* outside or overlapping the end: nothing happens */
    mapfile_release(base, size, (const char *)base + size - 4096, 8192);
    mapfile_release(base, size, want, 4096);
    CHECK(mapping_rss_kb(base) == again, "ranges not inside are left alone");
    mapfile_release(base, 0, base, 0);

    mapfile_close(base, size);
    unlink(path);
    free(want);
    (void)sum;
    TEST_MAIN_END();
}
