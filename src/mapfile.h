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

#endif
