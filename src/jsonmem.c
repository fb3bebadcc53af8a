/* jansson's allocator (see jsonmem.h): counts the allocations it could
 * not make, and keeps an emergency reserve.
 *
 * The reserve: jansson 2.14's lexer ignores a failed growth of its token
 * buffer (lex_save drops the byte) and then scans the token again
 * expecting every byte, so one failed allocation in the middle of a
 * string can end in an assertion failure or a read past the buffer
 * (load.c, lex_scan_string; found by tests/test_faults.c).  So when
 * malloc fails, the reserve is given back and the allocation tried once
 * more: a transient failure never reaches jansson, and only when memory
 * is still short after that does jansson see NULL.  The reserve is taken
 * again by the next allocation that succeeds.
 *
 * The count is thread-local: a request is parsed on one HTTP thread, and
 * another thread's failure must not make its bad JSON look like an
 * out-of-memory error. */
#include "jsonmem.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Below glibc's mmap threshold, so that a freed reserve stays in the heap
 * for the retry instead of going back to the kernel. */
#define JSONMEM_RESERVE (64 * 1024)

static _Thread_local unsigned long failures;
static _Atomic(void *) reserve;

static void *jsonmem_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        void *r = atomic_exchange(&reserve, NULL);
        if (r) {
            free(r);
            p = malloc(size);
        }
        if (!p)
            failures++;
        return p;
    }
    if (!atomic_load(&reserve)) {
        void *r = malloc(JSONMEM_RESERVE), *none = NULL;
        if (r && !atomic_compare_exchange_strong(&reserve, &none, r))
            free(r);
    }
    return p;
}

void jsonmem_install(void)
{
    json_set_alloc_funcs(jsonmem_malloc, free);
}

unsigned long jsonmem_failures(void)
{
    return failures;
}
