/* safetensors.h - read-only access to a .safetensors file, mmap'd.
 *
 * Format (https://huggingface.co/docs/safetensors), validated field by field
 * before any tensor is handed out:
 *   bytes 0..7     u64 little-endian N: length of the JSON header
 *   bytes 8..8+N   JSON object, UTF-8: {"__metadata__": {str: str}?,
 *                  NAME: {"dtype": "F32"|"F16"|"BF16"|..., "shape": [u64...],
 *                         "data_offsets": [begin, end]}, ...}
 *   bytes 8+N..    the data; offsets are relative to its start.
 * Every tensor must satisfy begin <= end <= data size, end - begin ==
 * product(shape) * size(dtype), and no two tensors may overlap.
 */
#ifndef LODE_SAFETENSORS_H
#define LODE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum st_dtype {
    ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8,
    ST_BOOL,
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data; /* into the mapping; may be unaligned for its type */
} st_tensor;

typedef struct st_file st_file;

/* Map and validate a file. */
int st_open(const char *path, st_file **out, lode_error *err);
/* Validate a buffer the caller keeps alive (tests, fuzzing). */
int st_open_buffer(const void *buf, size_t len, st_file **out,
                   lode_error *err);
void st_close(st_file *f);

int st_count(const st_file *f);
const st_tensor *st_get(const st_file *f, int i);
/* Tensor by exact name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
size_t st_file_size(const st_file *f);
const char *st_dtype_name(st_dtype t);
size_t st_dtype_size(st_dtype t);

#endif
