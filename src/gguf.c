/* gguf.c - GGUF v3 reader and writer (layout in gguf.h).
 *
 * The reader treats the file as untrusted: a cursor with an end pointer is
 * advanced by every field, every count is checked against the bytes left
 * before anything is allocated for it, and tensor sizes and offsets are
 * checked against the data section.  Values stay in the mapping and are
 * decoded on demand; string arrays (the vocabulary) get an offset table at
 * parse time so element lookups are O(1).
 *
 * lode assumes a little-endian host, as GGUF does. */
#include "gguf.h"

#include "mapfile.h"

#include <errno.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lode's GGUF reader assumes a little-endian host"
#endif

#define GGUF_MAGIC 0x46554747u /* "GGUF" */

typedef struct gguf_kv {
    char *key;
    uint32_t type;
    const uint8_t *value;   /* scalar value, or array elements */
    uint32_t elem_type;     /* arrays */
    uint64_t count;         /* arrays */
    size_t *str_offsets;    /* string arrays: offset of each element */
} gguf_kv;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    int mapped;
    uint32_t version;
    gguf_kv *kvs;
    uint64_t n_kv;
    gguf_tensor *tensors;
    uint64_t n_tensors;
    size_t alignment;
};

typedef struct cursor {
    const uint8_t *p, *end;
    lode_error *err;
} cursor;

static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    }
    return 0;
}

static int need(cursor *c, uint64_t n, const char *what)
{
    if ((uint64_t)(c->end - c->p) < n)
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF truncated while reading %s", what);
    return LODE_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what)
{
    int rc = need(c, 4, what);
    if (!rc) {
        memcpy(v, c->p, 4);
        c->p += 4;
    }
    return rc;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what)
{
    int rc = need(c, 8, what);
    if (!rc) {
        memcpy(v, c->p, 8);
        c->p += 8;
    }
    return rc;
}

static int rd_str(cursor *c, const uint8_t **s, uint64_t *len,
                  const char *what)
{
    int rc = rd_u64(c, len, what);
    if (!rc && !(rc = need(c, *len, what))) {
        *s = c->p;
        c->p += *len;
    }
    return rc;
}

size_t gguf_tensor_bytes(uint32_t type, uint64_t cols, uint64_t rows)
{
    uint64_t per_row;
    switch (type) {
    case GGUF_TYPE_F32: per_row = cols * 4; break;
    case GGUF_TYPE_F16: case GGUF_TYPE_BF16: per_row = cols * 2; break;
    case GGUF_TYPE_Q8_0:
        if (cols % 32)
            return 0;
        per_row = cols / 32 * 34;
        break;
    case GGUF_TYPE_LODE_Q8_128:
        if (cols % 128)
            return 0;
        per_row = cols / 128 * 130;
        break;
    default: return 0;
    }
    if (rows && per_row > SIZE_MAX / rows)
        return 0;
    return (size_t)(per_row * rows);
}

const char *gguf_type_name(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_F32: return "F32";
    case GGUF_TYPE_F16: return "F16";
    case GGUF_TYPE_Q8_0: return "Q8_0";
    case GGUF_TYPE_BF16: return "BF16";
    case GGUF_TYPE_LODE_Q8_128: return "Q8_128 (lode)";
    }
    return "unsupported";
}

static int parse_kv(gguf_file *f, cursor *c, gguf_kv *kv)
{
    const uint8_t *key;
    uint64_t klen;
    int rc = rd_str(c, &key, &klen, "a metadata key");
    if (rc)
        return rc;
    if (klen == 0 || klen > 65535 || memchr(key, 0, (size_t)klen))
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF metadata key of length %llu is invalid",
                              (unsigned long long)klen);
    kv->key = malloc((size_t)klen + 1);
    if (!kv->key)
        return lode_error_set(c->err, LODE_ENOMEM, "out of memory");
    memcpy(kv->key, key, (size_t)klen);
    kv->key[klen] = '\0';
    if ((rc = rd_u32(c, &kv->type, kv->key)))
        return rc;
    kv->value = c->p;
    if (kv->type == GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        return rd_str(c, &s, &len, kv->key);
    }
    if (kv->type != GGUF_ARRAY) {
        size_t sz = scalar_size(kv->type);
        if (!sz)
            return lode_error_set(c->err, LODE_EFORMAT,
                                  "GGUF key '%s' has unknown value type %u",
                                  kv->key, kv->type);
        if ((rc = need(c, sz, kv->key)))
            return rc;
        c->p += sz;
        return LODE_OK;
    }
    if ((rc = rd_u32(c, &kv->elem_type, kv->key)) ||
        (rc = rd_u64(c, &kv->count, kv->key)))
        return rc;
    kv->value = c->p;
    if (kv->elem_type == GGUF_STRING) {
        /* Each element needs at least its 8-byte length. */
        if (kv->count > (uint64_t)(c->end - c->p) / 8)
            return lode_error_set(c->err, LODE_EFORMAT,
                                  "GGUF key '%s': %llu strings cannot fit",
                                  kv->key, (unsigned long long)kv->count);
        kv->str_offsets = malloc((size_t)(kv->count ? kv->count : 1) *
                                 sizeof *kv->str_offsets);
        if (!kv->str_offsets)
            return lode_error_set(c->err, LODE_ENOMEM, "out of memory");
        for (uint64_t i = 0; i < kv->count; i++) {
            kv->str_offsets[i] = (size_t)(c->p - f->base);
            const uint8_t *s;
            uint64_t len;
            if ((rc = rd_str(c, &s, &len, kv->key)))
                return rc;
        }
        return LODE_OK;
    }
    size_t sz = scalar_size(kv->elem_type);
    if (!sz)
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF key '%s': arrays of type %u are not "
                              "supported", kv->key, kv->elem_type);
    if (kv->count > (uint64_t)(c->end - c->p) / sz)
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF key '%s': array of %llu elements runs "
                              "past the end of the file", kv->key,
                              (unsigned long long)kv->count);
    c->p += kv->count * sz;
    return LODE_OK;
}

static int parse_tensor_info(cursor *c, gguf_tensor *t, char **name_out)
{
    const uint8_t *name;
    uint64_t nlen;
    int rc = rd_str(c, &name, &nlen, "a tensor name");
    if (rc)
        return rc;
    if (nlen == 0 || nlen > 4096 || memchr(name, 0, (size_t)nlen))
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF tensor name of length %llu is invalid",
                              (unsigned long long)nlen);
    char *n = malloc((size_t)nlen + 1);
    if (!n)
        return lode_error_set(c->err, LODE_ENOMEM, "out of memory");
    memcpy(n, name, (size_t)nlen);
    n[nlen] = '\0';
    *name_out = n;
    t->name = n;
    uint32_t nd;
    if ((rc = rd_u32(c, &nd, n)))
        return rc;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF tensor '%s' has %u dimensions (1..%d)", n,
                              nd, GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    uint64_t rows = 1;
    for (int i = 0; i < GGUF_MAX_DIMS; i++)
        t->ne[i] = 1;
    for (uint32_t i = 0; i < nd; i++) {
        if ((rc = rd_u64(c, &t->ne[i], n)))
            return rc;
        if (t->ne[i] == 0 || t->ne[i] > ((uint64_t)1 << 40))
            return lode_error_set(c->err, LODE_EFORMAT,
                                  "GGUF tensor '%s': dimension %u is %llu", n,
                                  i, (unsigned long long)t->ne[i]);
        if (i > 0) {
            if (rows > ((uint64_t)1 << 40) / t->ne[i])
                return lode_error_set(c->err, LODE_EFORMAT,
                                      "GGUF tensor '%s' is too large", n);
            rows *= t->ne[i];
        }
    }
    if ((rc = rd_u32(c, &t->type, n)) || (rc = rd_u64(c, &t->offset, n)))
        return rc;
    if (t->type != GGUF_TYPE_F32 && t->type != GGUF_TYPE_F16 &&
        t->type != GGUF_TYPE_Q8_0 && t->type != GGUF_TYPE_BF16 &&
        t->type != GGUF_TYPE_LODE_Q8_128)
        return lode_error_set(c->err, LODE_EUNSUPPORTED,
                              "GGUF tensor '%s' has ggml type %u (lode reads "
                              "F32, F16, BF16, Q8_0 and its own Q8_128)", n,
                              t->type);
    t->nbytes = gguf_tensor_bytes(t->type, t->ne[0], rows);
    if (!t->nbytes)
        return lode_error_set(c->err, LODE_EFORMAT,
                              "GGUF tensor '%s': %llu columns do not fit "
                              "type %s", n, (unsigned long long)t->ne[0],
                              gguf_type_name(t->type));
    return LODE_OK;
}

static gguf_kv *find_kv(const gguf_file *f, const char *key)
{
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (strcmp(f->kvs[i].key, key) == 0)
            return &f->kvs[i];
    return NULL;
}

static int parse(gguf_file *f, lode_error *err)
{
    cursor c = {f->base, f->base + f->size, err};
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    int rc = rd_u32(&c, &magic, "the magic number");
    if (rc)
        return lode_error_set(err, LODE_EFORMAT,
                              "not a GGUF file (only %zu bytes)", f->size);
    if (magic != GGUF_MAGIC)
        return lode_error_set(err, LODE_EFORMAT,
                              "not a GGUF file (bad magic 0x%08x)", magic);
    if ((rc = rd_u32(&c, &f->version, "the version")))
        return rc;
    if (f->version != 2 && f->version != 3)
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "GGUF version %u is not supported (2 or 3)",
                              f->version);
    if ((rc = rd_u64(&c, &n_tensors, "the tensor count")) ||
        (rc = rd_u64(&c, &n_kv, "the metadata count")))
        return rc;
    /* A key/value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info
     * at least 8 + 1 + 4 + 8 + 4 + 8. */
    uint64_t left = (uint64_t)(c.end - c.p);
    if (n_kv > left / 14 || n_tensors > left / 33)
        return lode_error_set(err, LODE_EFORMAT,
                              "GGUF header claims %llu tensors and %llu keys,"
                              " more than the file can hold",
                              (unsigned long long)n_tensors,
                              (unsigned long long)n_kv);
    f->kvs = calloc((size_t)(n_kv ? n_kv : 1), sizeof *f->kvs);
    f->tensors = calloc((size_t)(n_tensors ? n_tensors : 1),
                        sizeof *f->tensors);
    if (!f->kvs || !f->tensors)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = i + 1;
        if ((rc = parse_kv(f, &c, &f->kvs[i])))
            return rc;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(f->kvs[j].key, f->kvs[i].key) == 0)
                return lode_error_set(err, LODE_EFORMAT,
                                      "GGUF key '%s' appears twice",
                                      f->kvs[i].key);
    }
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    gguf_kv *al = find_kv(f, "general.alignment");
    if (al) {
        uint32_t a = 0;
        if (al->type == GGUF_U32)
            memcpy(&a, al->value, 4);
        if (a == 0 || (a & (a - 1)) || a > 65536)
            return lode_error_set(err, LODE_EFORMAT,
                                  "GGUF general.alignment must be a power of"
                                  " two u32");
        f->alignment = a;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        char *name = NULL;
        f->n_tensors = i + 1;
        rc = parse_tensor_info(&c, &f->tensors[i], &name);
        if (rc)
            return rc;
    }
    size_t header = (size_t)(c.p - f->base);
    size_t data_start = (header + f->alignment - 1) / f->alignment *
                        f->alignment;
    /* no tensors: no data section, so no padding needed either */
    if (n_tensors && data_start > f->size)
        return lode_error_set(err, LODE_EFORMAT,
                              "GGUF truncated before its tensor data");
    size_t data_size = f->size - data_start;
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment)
            return lode_error_set(err, LODE_EFORMAT,
                                  "GGUF tensor '%s' offset %llu is not "
                                  "aligned to %zu", t->name,
                                  (unsigned long long)t->offset,
                                  f->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return lode_error_set(err, LODE_EFORMAT,
                                  "GGUF tensor '%s' (%zu bytes at offset "
                                  "%llu) runs past the end of the file "
                                  "(truncated?)", t->name, t->nbytes,
                                  (unsigned long long)t->offset);
        t->data = f->base + data_start + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(f->tensors[j].name, t->name) == 0)
                return lode_error_set(err, LODE_EFORMAT,
                                      "GGUF tensor '%s' appears twice",
                                      t->name);
    }
    return LODE_OK;
}

int gguf_open_buffer(const void *buf, size_t len, gguf_file **out,
                     lode_error *err)
{
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    f->base = buf;
    f->size = len;
    int rc = parse(f, err);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return LODE_OK;
}

int gguf_open(const char *path, gguf_file **out, lode_error *err)
{
    const void *base;
    size_t size;
    *out = NULL;
    int rc = mapfile_open(path, &base, &size, err);
    if (rc)
        return rc;
    if ((rc = gguf_open_buffer(base, size, out, err))) {
        mapfile_close(base, size);
        return lode_error_prefix(err, "%s", path);
    }
    (*out)->mapped = 1;
    return LODE_OK;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        free(f->kvs[i].key);
        free(f->kvs[i].str_offsets);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        free((char *)f->tensors[i].name);
    free(f->kvs);
    free(f->tensors);
    if (f->mapped)
        mapfile_close(f->base, f->size);
    free(f);
}

size_t gguf_file_size(const gguf_file *f) { return f->size; }

void gguf_release(const gguf_file *f, const void *p, size_t n)
{
    if (f->mapped)
        mapfile_release(f->base, f->size, p, n);
}
uint32_t gguf_version(const gguf_file *f) { return f->version; }
int gguf_has_key(const gguf_file *f, const char *key)
{
    return find_kv(f, key) != NULL;
}

static int missing(lode_error *err, const char *key)
{
    return lode_error_set(err, LODE_ENOTFOUND, "GGUF key '%s' is missing",
                          key);
}

static int wrong_type(lode_error *err, const char *key, const char *want)
{
    return lode_error_set(err, LODE_EFORMAT, "GGUF key '%s' is not %s", key,
                          want);
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out,
                 lode_error *err)
{
    gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return missing(err, key);
    const uint8_t *v = kv->value;
    switch (kv->type) {
    case GGUF_U8: *out = v[0]; break;
    case GGUF_I8: *out = (int8_t)v[0]; break;
    case GGUF_BOOL: *out = v[0] != 0; break;
    case GGUF_U16: { uint16_t x; memcpy(&x, v, 2); *out = x; break; }
    case GGUF_I16: { int16_t x; memcpy(&x, v, 2); *out = x; break; }
    case GGUF_U32: { uint32_t x; memcpy(&x, v, 4); *out = x; break; }
    case GGUF_I32: { int32_t x; memcpy(&x, v, 4); *out = x; break; }
    case GGUF_I64: { int64_t x; memcpy(&x, v, 8); *out = x; break; }
    case GGUF_U64: {
        uint64_t x;
        memcpy(&x, v, 8);
        if (x > INT64_MAX)
            return wrong_type(err, key, "an integer in range");
        *out = (int64_t)x;
        break;
    }
    default: return wrong_type(err, key, "an integer");
    }
    return LODE_OK;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out,
                   lode_error *err)
{
    gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return missing(err, key);
    if (kv->type == GGUF_F32) {
        float x;
        memcpy(&x, kv->value, 4);
        *out = x;
    } else if (kv->type == GGUF_F64) {
        memcpy(out, kv->value, 8);
    } else {
        int64_t i;
        if (gguf_get_int(f, key, &i, NULL))
            return wrong_type(err, key, "a number");
        *out = (double)i;
    }
    return LODE_OK;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out,
                  lode_error *err)
{
    int64_t v;
    gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return missing(err, key);
    if (gguf_get_int(f, key, &v, NULL))
        return wrong_type(err, key, "a bool");
    *out = v != 0;
    return LODE_OK;
}

int gguf_get_str(const gguf_file *f, const char *key, const char **s,
                 size_t *len, lode_error *err)
{
    gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return missing(err, key);
    if (kv->type != GGUF_STRING)
        return wrong_type(err, key, "a string");
    uint64_t l;
    memcpy(&l, kv->value, 8);
    *s = (const char *)kv->value + 8;
    *len = (size_t)l;
    return LODE_OK;
}

int gguf_get_str_array(const gguf_file *f, const char *key, size_t *count,
                       lode_error *err)
{
    gguf_kv *kv = find_kv(f, key);
    if (!kv)
        return missing(err, key);
    if (kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING)
        return wrong_type(err, key, "an array of strings");
    *count = (size_t)kv->count;
    return LODE_OK;
}

int gguf_key_index(const gguf_file *f, const char *key)
{
    gguf_kv *kv = find_kv(f, key);
    return kv ? (int)(kv - f->kvs) : -1;
}

int gguf_get_str_elem(const gguf_file *f, const char *key, size_t i,
                      const char **s, size_t *len)
{
    return gguf_str_elem_at(f, gguf_key_index(f, key), i, s, len);
}

int gguf_str_elem_at(const gguf_file *f, int key_index, size_t i,
                     const char **s, size_t *len)
{
    if (key_index < 0 || (uint64_t)key_index >= f->n_kv)
        return LODE_ENOTFOUND;
    const gguf_kv *kv = &f->kvs[key_index];
    if (kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING ||
        i >= kv->count)
        return LODE_ENOTFOUND;
    const uint8_t *p = f->base + kv->str_offsets[i];
    uint64_t l;
    memcpy(&l, p, 8);
    *s = (const char *)p + 8;
    *len = (size_t)l;
    return LODE_OK;
}

int gguf_tensor_count(const gguf_file *f) { return (int)f->n_tensors; }

const gguf_tensor *gguf_get_tensor(const gguf_file *f, int i)
{
    return i >= 0 && (uint64_t)i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

/* ---- writer ------------------------------------------------------------- */

typedef struct wtensor {
    char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    void *data;
    size_t nbytes;
} wtensor;

struct gguf_writer {
    uint8_t *kv;        /* serialised key/value pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    int failed;         /* an allocation failed: gguf_write refuses */
};

int gguf_writer_new(gguf_writer **out, lode_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? LODE_OK
                : lode_error_set(err, LODE_ENOMEM, "out of memory");
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->tensors);
    free(w->kv);
    free(w);
}

static int put(gguf_writer *w, const void *p, size_t n)
{
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n)
            cap *= 2;
        uint8_t *nb = realloc(w->kv, cap);
        if (!nb) {
            w->failed = 1;
            return LODE_ENOMEM;
        }
        w->kv = nb;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return LODE_OK;
}

static int put_u32(gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(gguf_writer *w, const char *s)
{
    size_t n = strlen(s);
    return put_u64(w, n) || put(w, s, n) ? LODE_ENOMEM : LODE_OK;
}

static int put_key(gguf_writer *w, const char *key, uint32_t type)
{
    w->n_kv++;
    return put_str(w, key) || put_u32(w, type) ? LODE_ENOMEM : LODE_OK;
}

int gguf_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return put_key(w, key, GGUF_U32) || put_u32(w, v) ? LODE_ENOMEM : 0;
}

int gguf_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    return put_key(w, key, GGUF_I32) || put(w, &v, 4) ? LODE_ENOMEM : 0;
}

int gguf_set_f32(gguf_writer *w, const char *key, float v)
{
    return put_key(w, key, GGUF_F32) || put(w, &v, 4) ? LODE_ENOMEM : 0;
}

int gguf_set_bool(gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return put_key(w, key, GGUF_BOOL) || put(w, &b, 1) ? LODE_ENOMEM : 0;
}

int gguf_set_str(gguf_writer *w, const char *key, const char *v)
{
    return put_key(w, key, GGUF_STRING) || put_str(w, v) ? LODE_ENOMEM : 0;
}

int gguf_set_str_array(gguf_writer *w, const char *key,
                       const char *const *v, size_t n)
{
    if (put_key(w, key, GGUF_ARRAY) || put_u32(w, GGUF_STRING) ||
        put_u64(w, n))
        return LODE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (put_str(w, v[i]))
            return LODE_ENOMEM;
    return LODE_OK;
}

int gguf_set_i32_array(gguf_writer *w, const char *key, const int32_t *v,
                       size_t n)
{
    return put_key(w, key, GGUF_ARRAY) || put_u32(w, GGUF_I32) ||
                   put_u64(w, n) || put(w, v, n * 4)
               ? LODE_ENOMEM : LODE_OK;
}

int gguf_set_f32_array(gguf_writer *w, const char *key, const float *v,
                       size_t n)
{
    return put_key(w, key, GGUF_ARRAY) || put_u32(w, GGUF_F32) ||
                   put_u64(w, n) || put(w, v, n * 4)
               ? LODE_ENOMEM : LODE_OK;
}

int gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                    int n_dims, const uint64_t *ne, const void *data,
                    size_t nbytes, lode_error *err)
{
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return lode_error_set(err, LODE_EINVAL, "tensor '%s': %d dims", name,
                              n_dims);
    uint64_t rows = 1;
    for (int i = 1; i < n_dims; i++)
        rows *= ne[i];
    if (gguf_tensor_bytes(type, ne[0], rows) != nbytes)
        return lode_error_set(err, LODE_EINVAL,
                              "tensor '%s': %zu bytes do not match its shape "
                              "and type %s", name, nbytes,
                              gguf_type_name(type));
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *nt = realloc(w->tensors, cap * sizeof *nt);
        if (!nt)
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    memcpy(t->data, data, nbytes);
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < GGUF_MAX_DIMS; i++)
        t->ne[i] = i < n_dims ? ne[i] : 1;
    t->nbytes = nbytes;
    w->n_tensors++;
    return LODE_OK;
}

static int write_all(FILE *fp, const void *p, size_t n)
{
    return fwrite(p, 1, n, fp) == n ? 0 : -1;
}

static int write_pad(FILE *fp, size_t *pos)
{
    static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
    size_t pad = (GGUF_DEFAULT_ALIGNMENT - *pos % GGUF_DEFAULT_ALIGNMENT) %
                 GGUF_DEFAULT_ALIGNMENT;
    *pos += pad;
    return write_all(fp, zeros, pad);
}

int gguf_write(gguf_writer *w, const char *path, lode_error *err)
{
    if (w->failed)
        return lode_error_set(err, LODE_ENOMEM,
                              "out of memory building the GGUF header");
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return lode_error_set(err, LODE_EINVAL, "path too long: %s", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return lode_error_set(err, LODE_EIO, "%s: %s", tmp, strerror(errno));
    uint32_t magic = GGUF_MAGIC, version = 3;
    uint64_t nt = w->n_tensors, nkv = w->n_kv;
    int bad = write_all(fp, &magic, 4) || write_all(fp, &version, 4) ||
              write_all(fp, &nt, 8) || write_all(fp, &nkv, 8) ||
              write_all(fp, w->kv, w->kv_len);
    size_t pos = 24 + w->kv_len;
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors && !bad; i++) {
        wtensor *t = &w->tensors[i];
        uint64_t nl = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims;
        bad = write_all(fp, &nl, 8) || write_all(fp, t->name, nl) ||
              write_all(fp, &nd, 4) ||
              write_all(fp, t->ne, 8 * (size_t)t->n_dims) ||
              write_all(fp, &t->type, 4) || write_all(fp, &offset, 8);
        pos += 8 + nl + 4 + 8 * (size_t)t->n_dims + 4 + 8;
        offset += (t->nbytes + GGUF_DEFAULT_ALIGNMENT - 1) /
                  GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
    }
    bad = bad || write_pad(fp, &pos);
    for (size_t i = 0; i < w->n_tensors && !bad; i++) {
        bad = write_all(fp, w->tensors[i].data, w->tensors[i].nbytes);
        pos += w->tensors[i].nbytes;
        bad = bad || write_pad(fp, &pos);
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        bad = 1;
    int e = errno;
    if (fclose(fp) != 0)
        bad = 1;
    if (bad) {
        unlink(tmp);
        return lode_error_set(err, LODE_EIO, "writing %s: %s", path,
                              strerror(e ? e : EIO));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return lode_error_set(err, LODE_EIO, "renaming %s: %s", tmp,
                              strerror(e));
    }
    return LODE_OK;
}
