/* fuzz_safetensors.c - libFuzzer driver for the safetensors reader
 * (src/safetensors.c).
 *
 * st_open_buffer() validates the input.  When it accepts, the driver
 * re-reads the JSON header itself with jansson and checks each tensor the
 * reader hands out against it: name, dtype, shape, element count, byte
 * size and data pointer (8 + header length + begin), every byte read, no
 * two tensors sharing a byte, st_find() and st_get() agreeing.  When it
 * refuses, it must say why.
 *
 * Seeds: fuzz/corpus/safetensors/ (written by fuzz/make_seeds.c). */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "safetensors.h"

static int by_data(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a;
    const st_tensor *y = *(const st_tensor *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    if (px != py)
        return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static void check_tensor(const st_tensor *t, json_t *root,
                         const uint8_t *data_start, const uint8_t *buf,
                         size_t size)
{
    json_t *desc = json_object_get(root, t->name);
    FUZZ_CHECK(json_is_object(desc), "tensor '%s' not in the header",
               t->name);
    FUZZ_CHECK(strcmp(t->name, "__metadata__") != 0, "metadata as tensor");
    json_t *jd = json_object_get(desc, "dtype");
    json_t *js = json_object_get(desc, "shape");
    json_t *jo = json_object_get(desc, "data_offsets");
    FUZZ_CHECK(json_is_string(jd) &&
                   strcmp(json_string_value(jd), st_dtype_name(t->dtype)) == 0,
               "tensor '%s' dtype", t->name);
    size_t esize = st_dtype_size(t->dtype);
    FUZZ_CHECK(esize == 1 || esize == 2 || esize == 4 || esize == 8,
               "dtype size %zu", esize);
    FUZZ_CHECK(json_is_array(js) && json_array_size(js) == (size_t)t->ndim &&
                   t->ndim <= ST_MAX_DIMS,
               "tensor '%s' rank", t->name);
    unsigned __int128 numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *v = json_array_get(js, (size_t)d);
        FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) >= 0 &&
                       json_integer_value(v) == t->shape[d],
                   "tensor '%s' shape[%d]", t->name, d);
        /* Saturate at 2^64 so eight dimensions cannot overflow. */
        numel *= (uint64_t)t->shape[d];
        if (numel > (unsigned __int128)UINT64_MAX)
            numel = (unsigned __int128)UINT64_MAX + 1;
    }
    FUZZ_CHECK(t->numel >= 0 && (unsigned __int128)t->numel == numel,
               "tensor '%s' numel", t->name);
    FUZZ_CHECK((unsigned __int128)t->nbytes == numel * esize,
               "tensor '%s' nbytes", t->name);
    FUZZ_CHECK(json_is_array(jo) && json_array_size(jo) == 2,
               "tensor '%s' offsets", t->name);
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    FUZZ_CHECK(json_is_integer(jb) && json_is_integer(je) &&
                   json_integer_value(jb) >= 0 &&
                   json_integer_value(je) >= json_integer_value(jb) &&
                   (uint64_t)(json_integer_value(je) -
                              json_integer_value(jb)) == t->nbytes,
               "tensor '%s' offsets do not match its size", t->name);
    FUZZ_CHECK((const uint8_t *)t->data ==
                   data_start + json_integer_value(jb),
               "tensor '%s' data pointer", t->name);
    FUZZ_CHECK(fuzz_inside(t->data, t->nbytes, data_start,
                           (size_t)(buf + size - data_start)),
               "tensor '%s' outside the data section", t->name);
    fuzz_touch(t->data, t->nbytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file *f = NULL;
    lode_error err = {0};
    int rc = st_open_buffer(data, size, &f, &err);
    if (rc) {
        FUZZ_CHECK(f == NULL && err.code == rc && err.message[0],
                   "refused (%d) without a message", rc);
        FUZZ_CHECK(rc == LODE_EFORMAT || rc == LODE_EUNSUPPORTED,
                   "unexpected error %d: %s", rc, err.message);
        return 0;
    }
    FUZZ_CHECK(f && st_file_size(f) == size, "file size");
    FUZZ_CHECK(size >= 8, "accepted %zu bytes", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | data[i];
    FUZZ_CHECK(hlen <= size - 8, "header length %llu accepted",
               (unsigned long long)hlen);
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen,
                              JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(root), "accepted a header that is no object");
    const uint8_t *data_start = data + 8 + hlen;

    int n = st_count(f);
    size_t want = json_object_size(root) -
                  (json_object_get(root, "__metadata__") ? 1 : 0);
    FUZZ_CHECK(n >= 0 && (size_t)n == want, "%d tensors, header has %zu", n,
               want);
    const st_tensor **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    FUZZ_CHECK(order != NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_get(f, i);
        FUZZ_CHECK(t != NULL, "tensor %d missing", i);
        check_tensor(t, root, data_start, data, size);
        FUZZ_CHECK(st_find(f, t->name) == t, "st_find('%s')", t->name);
        order[i] = t;
    }
    FUZZ_CHECK(st_get(f, -1) == NULL && st_get(f, n) == NULL,
               "index out of range answered");
    FUZZ_CHECK(st_find(f, "__metadata__") == NULL, "metadata found");

    /* No two tensors share a byte (empty tensors share none). */
    qsort(order, (size_t)n, sizeof *order, by_data);
    const uint8_t *covered = data_start;
    for (int i = 0; i < n; i++) {
        if (order[i]->nbytes == 0)
            continue;
        FUZZ_CHECK((const uint8_t *)order[i]->data >= covered,
                   "tensor '%s' overlaps another", order[i]->name);
        covered = (const uint8_t *)order[i]->data + order[i]->nbytes;
    }
    free(order);
    json_decref(root);
    st_close(f);
    return 0;
}
