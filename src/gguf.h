/* gguf.h - read and write GGUF version 3 files, the single-file model
 * format of llama.cpp, so lode's weights are used in place from mmap.
 *
 * Layout (all integers little-endian), checked field by field on read:
 *   1. u32 magic "GGUF" (0x46554747)
 *   2. u32 version (2 or 3; lode writes 3)
 *   3. u64 tensor_count
 *   4. u64 kv_count
 *   5. kv_count key/value pairs:
 *        string key (u64 length + bytes, not NUL-terminated)
 *        u32 value type: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,
 *                        7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64
 *        value; an array is u32 element type + u64 count + elements
 *   6. tensor_count tensor infos:
 *        string name, u32 n_dims (1..4), u64 ne[n_dims] (ne[0] is the
 *        innermost, contiguous dimension: a [rows][cols] matrix has
 *        ne = {cols, rows}), u32 ggml type, u64 offset into the data
 *   7. padding to `general.alignment` (default 32)
 *   8. tensor data; each tensor at its offset, a multiple of the alignment
 * Types lode reads: F32 (0), F16 (1), Q8_0 (8: blocks of 32 values, an
 * fp16 scale then 32 int8), BF16 (30), and lode's own Q8_128 (1128: as
 * Q8_0 with blocks of 128; other GGUF readers refuse such files).
 */
#ifndef LODE_GGUF_H
#define LODE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum gguf_value_type {
    GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32,
    GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64,
    GGUF_VALUE_TYPE_COUNT
};

enum gguf_tensor_type {
    GGUF_TYPE_F32 = 0, GGUF_TYPE_F16 = 1, GGUF_TYPE_Q8_0 = 8,
    GGUF_TYPE_BF16 = 30,
    /* Not a ggml type: lode's q8_128 (kernels.h), in files only lode
     * reads.  Far above ggml's numbers so that it never meets one. */
    GGUF_TYPE_LODE_Q8_128 = 1128,
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct gguf_tensor {
    const char *name;       /* NUL-terminated copy */
    uint32_t type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint64_t offset;        /* into the data section */
    size_t nbytes;
    const void *data;       /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

int gguf_open(const char *path, gguf_file **out, lode_error *err);
/* Parse a buffer the caller keeps alive (tests, fuzzing). */
int gguf_open_buffer(const void *buf, size_t len, gguf_file **out,
                     lode_error *err);
void gguf_close(gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
/* The pages of [p, p + n) are no longer needed (see mapfile_release):
 * for a file opened with gguf_open only; a buffer is left alone. */
void gguf_release(const gguf_file *f, const void *p, size_t n);
uint32_t gguf_version(const gguf_file *f);

/* Metadata.  Getters return LODE_ENOTFOUND when the key is absent and
 * LODE_EFORMAT when it has an incompatible type; integer getters accept
 * any integer type whose value fits. */
int gguf_has_key(const gguf_file *f, const char *key);
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out,
                 lode_error *err);
int gguf_get_float(const gguf_file *f, const char *key, double *out,
                   lode_error *err);
int gguf_get_bool(const gguf_file *f, const char *key, int *out,
                  lode_error *err);
/* String value (not NUL-terminated: use *len). */
int gguf_get_str(const gguf_file *f, const char *key, const char **s,
                 size_t *len, lode_error *err);
/* Array of strings: count, then each element. */
int gguf_get_str_array(const gguf_file *f, const char *key, size_t *count,
                       lode_error *err);
int gguf_get_str_elem(const gguf_file *f, const char *key, size_t i,
                      const char **s, size_t *len);
/* The same without the key look-up, for loops over big arrays: `key_index`
 * comes from gguf_key_index (-1 when the key is absent). */
int gguf_key_index(const gguf_file *f, const char *key);
int gguf_str_elem_at(const gguf_file *f, int key_index, size_t i,
                     const char **s, size_t *len);

int gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_get_tensor(const gguf_file *f, int i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
const char *gguf_type_name(uint32_t type);

/* ---- writing ------------------------------------------------------------ */

typedef struct gguf_writer gguf_writer;

int gguf_writer_new(gguf_writer **out, lode_error *err);
void gguf_writer_free(gguf_writer *w);
int gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_set_f32(gguf_writer *w, const char *key, float v);
int gguf_set_bool(gguf_writer *w, const char *key, int v);
int gguf_set_str(gguf_writer *w, const char *key, const char *v);
/* Arrays: the data is copied. */
int gguf_set_str_array(gguf_writer *w, const char *key,
                       const char *const *v, size_t n);
int gguf_set_i32_array(gguf_writer *w, const char *key, const int32_t *v,
                       size_t n);
int gguf_set_f32_array(gguf_writer *w, const char *key, const float *v,
                       size_t n);
/* Add a tensor; `data` (nbytes, as the type and shape require) is copied.
 * ne[0] is the innermost dimension. */
int gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                    int n_dims, const uint64_t *ne, const void *data,
                    size_t nbytes, lode_error *err);
/* Write everything to path (via a temporary file renamed into place). */
int gguf_write(gguf_writer *w, const char *path, lode_error *err);

/* Bytes of a tensor of `type` with ne[0] = cols and `rows` rows, or 0 when
 * cols does not fit the type's block size. */
size_t gguf_tensor_bytes(uint32_t type, uint64_t cols, uint64_t rows);

#endif
