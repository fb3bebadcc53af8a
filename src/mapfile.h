/* mapfile.h - map a whole file read-only, for the model readers.
 *
 * Weights are used in place from the mapping, so a model costs address
 * space, not heap, and pages that are never touched are never read. */
#ifndef LODE_MAPFILE_H
#define LODE_MAPFILE_H

#include <stddef.h>

#include "err.h"

/* Map path; an empty file gives base "" and size 0 (nothing to unmap). */
int mapfile_open(const char *path, const void **base, size_t *size,
                 lode_error *err);
void mapfile_close(const void *base, size_t size);
/* This process no longer needs the whole pages of [p, p + n) inside the
 * mapping [base, base + size): they leave its resident set but stay in the
 * page cache, and a later read faults them back in.  A range not inside
 * the mapping is left alone.  Best effort: errors are ignored. */
void mapfile_release(const void *base, size_t size, const void *p, size_t n);

#endif
