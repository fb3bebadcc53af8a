/* safetensors.c - mmap a .safetensors file and validate its header before
 * trusting a single offset (see safetensors.h for the layout).
 *
 * The header is untrusted input: its length is checked against the file
 * size before it is parsed, every shape product is checked for overflow,
 * and every byte range against the data size and against the others.
 * Tensors point into the mapping; nothing is copied. */
#include "safetensors.h"

#include "mapfile.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A header bigger than this is not a model we want (HF caps it at 100 MB). */
#define ST_HEADER_MAX (100u << 20)

struct st_file {
    const uint8_t *base;  /* whole file */
    size_t size;
    int mapped;           /* base came from mmap and is ours to unmap */
    st_tensor *tensors;
    char *names;          /* all tensor names, NUL-separated */
    int n;
};

static const struct {
    const char *name;
    st_dtype dtype;
    size_t size;
} st_dtypes[] = {
    {"F64", ST_F64, 8}, {"F32", ST_F32, 4}, {"F16", ST_F16, 2},
    {"BF16", ST_BF16, 2}, {"I64", ST_I64, 8}, {"I32", ST_I32, 4},
    {"I16", ST_I16, 2}, {"I8", ST_I8, 1}, {"U8", ST_U8, 1},
    {"BOOL", ST_BOOL, 1},
};

const char *st_dtype_name(st_dtype t)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == t)
            return st_dtypes[i].name;
    return "?";
}

size_t st_dtype_size(st_dtype t)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == t)
            return st_dtypes[i].size;
    return 0;
}

static int st_cmp_range(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a;
    const st_tensor *y = *(const st_tensor *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    return px < py ? -1 : px > py;
}

static int st_parse_tensor(st_file *f, const char *name, json_t *desc,
                           const uint8_t *data, size_t data_size,
                           st_tensor *t, lode_error *err)
{
    if (!json_is_object(desc))
        return lode_error_set(err, LODE_EFORMAT,
                              "tensor '%s': description is not an object",
                              name);
    json_t *jd = json_object_get(desc, "dtype");
    json_t *js = json_object_get(desc, "shape");
    json_t *jo = json_object_get(desc, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
        json_array_size(jo) != 2)
        return lode_error_set(err, LODE_EFORMAT,
                              "tensor '%s': needs dtype, shape and two "
                              "data_offsets", name);
    const char *dname = json_string_value(jd);
    size_t esize = 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, dname) == 0) {
            t->dtype = st_dtypes[i].dtype;
            esize = st_dtypes[i].size;
        }
    if (!esize)
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "tensor '%s': unknown dtype '%s'", name, dname);
    size_t ndim = json_array_size(js);
    if (ndim > ST_MAX_DIMS)
        return lode_error_set(err, LODE_EFORMAT,
                              "tensor '%s': %zu dimensions (max %d)", name,
                              ndim, ST_MAX_DIMS);
    t->ndim = (int)ndim;
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return lode_error_set(err, LODE_EFORMAT,
                                  "tensor '%s': shape[%zu] is not a "
                                  "non-negative integer", name, i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        if (dim && numel > UINT64_MAX / dim / esize)
            return lode_error_set(err, LODE_EFORMAT,
                                  "tensor '%s': shape overflows", name);
        numel *= dim;
        t->shape[i] = (int64_t)dim;
    }
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) ||
        json_integer_value(jb) < 0 || json_integer_value(je) < 0)
        return lode_error_set(err, LODE_EFORMAT,
                              "tensor '%s': data_offsets are not "
                              "non-negative integers", name);
    uint64_t begin = (uint64_t)json_integer_value(jb);
    uint64_t end = (uint64_t)json_integer_value(je);
    if (begin > end || end > data_size)
        return lode_error_set(err, LODE_EFORMAT,
                              "tensor '%s': data_offsets [%llu, %llu) outside "
                              "the %zu data bytes (truncated file?)", name,
                              (unsigned long long)begin,
                              (unsigned long long)end, data_size);
    if (end - begin != numel * esize)
        return lode_error_set(err, LODE_EFORMAT,
                              "tensor '%s': %llu bytes for %llu elements of "
                              "%s", name, (unsigned long long)(end - begin),
                              (unsigned long long)numel, dname);
    (void)f;
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(end - begin);
    t->data = data + begin;
    return LODE_OK;
}

static int st_parse(st_file *f, lode_error *err)
{
    if (f->size < 8)
        return lode_error_set(err, LODE_EFORMAT,
                              "file is %zu bytes, too short for a "
                              "safetensors header", f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->base[i];
    if (hlen > ST_HEADER_MAX || hlen > f->size - 8)
        return lode_error_set(err, LODE_EFORMAT,
                              "header length %llu exceeds the file size "
                              "(%zu bytes): truncated or not safetensors",
                              (unsigned long long)hlen, f->size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->base + 8, (size_t)hlen,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lode_error_set(err, LODE_EFORMAT,
                              "header is not valid JSON: %s", jerr.text);
    int rc = LODE_OK;
    if (!json_is_object(root)) {
        rc = lode_error_set(err, LODE_EFORMAT, "header is not a JSON object");
        goto out;
    }
    const uint8_t *data = f->base + 8 + hlen;
    size_t data_size = f->size - 8 - (size_t)hlen;
    size_t cap = json_object_size(root), names_len = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) names_len += strlen(key) + 1;
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    f->names = malloc(names_len ? names_len : 1);
    if (!f->tensors || !f->names) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading header");
        goto out;
    }
    char *np = f->names;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        st_tensor *t = &f->tensors[f->n];
        rc = st_parse_tensor(f, key, val, data, data_size, t, err);
        if (rc)
            goto out;
        size_t kl = strlen(key) + 1;
        memcpy(np, key, kl);
        t->name = np;
        np += kl;
        f->n++;
    }
    /* No two tensors may share bytes. */
    if (f->n > 1) {
        const st_tensor **order = malloc((size_t)f->n * sizeof *order);
        if (!order) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < f->n; i++)
            order[i] = &f->tensors[i];
        qsort(order, (size_t)f->n, sizeof *order, st_cmp_range);
        for (int i = 1; i < f->n; i++) {
            const uint8_t *prev_end =
                (const uint8_t *)order[i - 1]->data + order[i - 1]->nbytes;
            if ((const uint8_t *)order[i]->data < prev_end) {
                rc = lode_error_set(err, LODE_EFORMAT,
                                    "tensors '%s' and '%s' overlap",
                                    order[i - 1]->name, order[i]->name);
                break;
            }
        }
        free(order);
    }
out:
    json_decref(root);
    return rc;
}

int st_open_buffer(const void *buf, size_t len, st_file **out,
                   lode_error *err)
{
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    f->base = buf;
    f->size = len;
    int rc = st_parse(f, err);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return LODE_OK;
}

int st_open(const char *path, st_file **out, lode_error *err)
{
    const void *base;
    size_t size;
    *out = NULL;
    int rc = mapfile_open(path, &base, &size, err);
    if (rc)
        return rc;
    if ((rc = st_open_buffer(base, size, out, err))) {
        mapfile_close(base, size);
        return lode_error_prefix(err, "%s", path);
    }
    (*out)->mapped = 1;
    return LODE_OK;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        mapfile_close(f->base, f->size);
    free(f->tensors);
    free(f->names);
    free(f);
}

int st_count(const st_file *f) { return f->n; }

const st_tensor *st_get(const st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

size_t st_file_size(const st_file *f) { return f->size; }
