/* mapfile.c - read-only whole-file mappings (see mapfile.h). */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int mapfile_open(const char *path, const void **base, size_t *size,
                 lode_error *err)
{
    *base = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lode_error_set(err, errno == ENOENT ? LODE_ENOTFOUND : LODE_EIO,
                              "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lode_error_set(err, LODE_EIO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        *base = "";
        return LODE_OK;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return lode_error_set(err, LODE_EIO, "%s: mmap: %s", path,
                              strerror(e));
    *base = p;
    *size = (size_t)sb.st_size;
    return LODE_OK;
}

void mapfile_close(const void *base, size_t size)
{
    if (base && size)
        munmap((void *)base, size);
}

void mapfile_release(const void *base, size_t size, const void *p, size_t n)
{
    uintptr_t lo = (uintptr_t)base, hi = lo + size;
    uintptr_t a = (uintptr_t)p, b = a + n;
    if (size == 0 || a < lo || b > hi || b < a)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    a = (a + page - 1) & ~(page - 1);   /* whole pages inside only */
    b &= ~(page - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}
