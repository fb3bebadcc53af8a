/* fuzz_gguf.c - libFuzzer driver for the GGUF reader (src/gguf.c).
 *
 * gguf_open_buffer() parses the input.  When it accepts, the driver walks
 * the header again with its own small, independent parser (the layout in
 * gguf.h) and checks every getter against it: each key answers
 * gguf_has_key and the int/float/bool/string/string-array getters exactly
 * as its type says, strings point where the walk found them, and every
 * tensor's name, shape, type, size and data pointer agree, with all of its
 * bytes read.  So a bad view fails under ASan and a file accepted without
 * being valid, or a getter that disagrees with the bytes, fails the
 * FUZZ_CHECKs.  When the reader refuses, it must say why (a message).
 *
 * Seeds: fuzz/corpus/gguf/ (written by fuzz/make_seeds.c). */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "gguf.h"

/* ---- the independent walk ----------------------------------------------- */

typedef struct walk {
    const uint8_t *p, *end;
} walk;

static int take(walk *w, size_t n, const uint8_t **out)
{
    if ((size_t)(w->end - w->p) < n)
        return -1;
    *out = w->p;
    w->p += n;
    return 0;
}

static int take_u32(walk *w, uint32_t *v)
{
    const uint8_t *b;
    if (take(w, 4, &b))
        return -1;
    memcpy(v, b, 4);
    return 0;
}

static int take_u64(walk *w, uint64_t *v)
{
    const uint8_t *b;
    if (take(w, 8, &b))
        return -1;
    memcpy(v, b, 8);
    return 0;
}

static int take_str(walk *w, const uint8_t **s, uint64_t *len)
{
    if (take_u64(w, len) || *len > (uint64_t)(w->end - w->p))
        return -1;
    return take(w, (size_t)*len, s);
}

static size_t scalar_bytes(uint32_t t)
{
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    }
    return 0;
}

static int is_int_type(uint32_t t)
{
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_BOOL || t == GGUF_U16 ||
           t == GGUF_I16 || t == GGUF_U32 || t == GGUF_I32 ||
           t == GGUF_U64 || t == GGUF_I64;
}

/* The value of an integer-typed scalar; *fits is 0 for a u64 above
 * INT64_MAX. */
static int64_t int_value(uint32_t t, const uint8_t *v, int *fits)
{
    *fits = 1;
    switch (t) {
    case GGUF_U8: return v[0];
    case GGUF_I8: return (int8_t)v[0];
    case GGUF_BOOL: return v[0] != 0;
    case GGUF_U16: { uint16_t x; memcpy(&x, v, 2); return x; }
    case GGUF_I16: { int16_t x; memcpy(&x, v, 2); return x; }
    case GGUF_U32: { uint32_t x; memcpy(&x, v, 4); return x; }
    case GGUF_I32: { int32_t x; memcpy(&x, v, 4); return x; }
    case GGUF_I64: { int64_t x; memcpy(&x, v, 8); return x; }
    default: {
        uint64_t x;
        memcpy(&x, v, 8);
        *fits = x <= INT64_MAX;
        return (int64_t)x;
    }
    }
}

static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Check one key/value pair found by the walk against every getter. */
static void check_kv(const gguf_file *f, walk *w, uint32_t *alignment)
{
    const uint8_t *kp;
    uint64_t klen;
    uint32_t type;
    FUZZ_CHECK(take_str(w, &kp, &klen) == 0, "accepted a truncated key");
    FUZZ_CHECK(klen > 0 && !memchr(kp, 0, (size_t)klen),
               "accepted an empty key or one with a NUL");
    char *key = malloc((size_t)klen + 1);
    FUZZ_CHECK(key != NULL, "out of memory");
    memcpy(key, kp, (size_t)klen);
    key[klen] = '\0';
    FUZZ_CHECK(take_u32(w, &type) == 0, "accepted a truncated value type");
    FUZZ_CHECK(gguf_has_key(f, key), "key '%s' not found", key);

    lode_error err = {0};
    int64_t iv;
    double dv;
    int bv;
    const char *s;
    size_t len, count;
    int rc_int = gguf_get_int(f, key, &iv, &err);
    int rc_float = gguf_get_float(f, key, &dv, &err);
    int rc_bool = gguf_get_bool(f, key, &bv, &err);
    int rc_str = gguf_get_str(f, key, &s, &len, &err);
    int rc_arr = gguf_get_str_array(f, key, &count, &err);

    if (type == GGUF_STRING) {
        const uint8_t *sp;
        uint64_t slen;
        FUZZ_CHECK(take_str(w, &sp, &slen) == 0, "accepted a cut string");
        FUZZ_CHECK(rc_str == 0 && s == (const char *)sp && len == slen,
                   "string '%s' read wrong", key);
        fuzz_touch(s, len);
        FUZZ_CHECK(rc_int == LODE_EFORMAT && rc_float == LODE_EFORMAT &&
                       rc_bool == LODE_EFORMAT && rc_arr == LODE_EFORMAT,
                   "string '%s' read as another type", key);
    } else if (type == GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        FUZZ_CHECK(take_u32(w, &et) == 0 && take_u64(w, &n) == 0,
                   "accepted a cut array header");
        FUZZ_CHECK(rc_int == LODE_EFORMAT && rc_float == LODE_EFORMAT &&
                       rc_bool == LODE_EFORMAT && rc_str == LODE_EFORMAT,
                   "array '%s' read as a scalar", key);
        if (et == GGUF_STRING) {
            FUZZ_CHECK(rc_arr == 0 && count == n, "string array '%s'", key);
            for (uint64_t i = 0; i < n; i++) {
                const uint8_t *sp;
                uint64_t slen;
                FUZZ_CHECK(take_str(w, &sp, &slen) == 0,
                           "accepted a cut string array");
                FUZZ_CHECK(gguf_get_str_elem(f, key, (size_t)i, &s, &len) ==
                               0 && s == (const char *)sp && len == slen,
                           "element %llu of '%s'", (unsigned long long)i, key);
                fuzz_touch(s, len);
            }
            FUZZ_CHECK(gguf_get_str_elem(f, key, (size_t)n, &s, &len) != 0,
                       "element past the end of '%s'", key);
        } else {
            size_t sz = scalar_bytes(et);
            const uint8_t *elems;
            FUZZ_CHECK(sz != 0, "accepted an array of type %u", et);
            FUZZ_CHECK(n <= (uint64_t)(w->end - w->p) / sz &&
                           take(w, (size_t)n * sz, &elems) == 0,
                       "accepted a cut array");
            FUZZ_CHECK(rc_arr == LODE_EFORMAT, "'%s' is not of strings", key);
            FUZZ_CHECK(gguf_get_str_elem(f, key, 0, &s, &len) != 0,
                       "element of a non-string array '%s'", key);
        }
    } else {
        size_t sz = scalar_bytes(type);
        const uint8_t *v;
        FUZZ_CHECK(sz != 0, "accepted value type %u", type);
        FUZZ_CHECK(take(w, sz, &v) == 0, "accepted a cut scalar");
        FUZZ_CHECK(rc_str == LODE_EFORMAT && rc_arr == LODE_EFORMAT,
                   "scalar '%s' read as a string", key);
        if (is_int_type(type)) {
            int fits;
            int64_t want = int_value(type, v, &fits);
            FUZZ_CHECK(fits ? rc_int == 0 && iv == want
                            : rc_int == LODE_EFORMAT,
                       "int '%s'", key);
            FUZZ_CHECK(fits ? rc_float == 0 && dv == (double)want
                            : rc_float == LODE_EFORMAT,
                       "int '%s' as float", key);
            FUZZ_CHECK(fits ? rc_bool == 0 && bv == (want != 0)
                            : rc_bool == LODE_EFORMAT,
                       "int '%s' as bool", key);
        } else {
            double want;
            if (type == GGUF_F32) {
                float x;
                memcpy(&x, v, 4);
                want = x;
            } else {
                memcpy(&want, v, 8);
            }
            FUZZ_CHECK(rc_float == 0 && same_double(dv, want), "float '%s'",
                       key);
            FUZZ_CHECK(rc_int == LODE_EFORMAT && rc_bool == LODE_EFORMAT,
                       "float '%s' read as an int", key);
        }
        if (strcmp(key, "general.alignment") == 0) {
            FUZZ_CHECK(type == GGUF_U32, "alignment of type %u", type);
            memcpy(alignment, v, 4);
        }
    }
    free(key);
}

/* Check tensor info i found by the walk; returns its offset. */
static void check_tensor_info(const gguf_file *f, walk *w, int i,
                              uint64_t *offset)
{
    const gguf_tensor *t = gguf_get_tensor(f, i);
    const uint8_t *np;
    uint64_t nlen;
    uint32_t nd, type;
    FUZZ_CHECK(t != NULL, "tensor %d missing", i);
    FUZZ_CHECK(take_str(w, &np, &nlen) == 0, "accepted a cut tensor name");
    FUZZ_CHECK(nlen > 0 && strlen(t->name) == nlen &&
                   memcmp(t->name, np, (size_t)nlen) == 0,
               "tensor %d name", i);
    FUZZ_CHECK(take_u32(w, &nd) == 0 && nd >= 1 && nd <= GGUF_MAX_DIMS &&
                   (int)nd == t->n_dims,
               "tensor '%s' dims", t->name);
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < nd)
            FUZZ_CHECK(take_u64(w, &ne) == 0, "accepted a cut shape");
        FUZZ_CHECK(ne >= 1 && t->ne[d] == ne, "tensor '%s' ne[%u]", t->name,
                   d);
        if (d > 0) {
            FUZZ_CHECK(rows <= UINT64_MAX / ne, "tensor '%s' overflows",
                       t->name);
            rows *= ne;
        }
    }
    FUZZ_CHECK(take_u32(w, &type) == 0 && take_u64(w, offset) == 0,
               "accepted a cut tensor info");
    FUZZ_CHECK(type == t->type && *offset == t->offset, "tensor '%s' type",
               t->name);
    /* Bytes computed here, not with gguf_tensor_bytes(), in 128 bits. */
    unsigned __int128 cols = t->ne[0], want = 0;
    switch (type) {
    case GGUF_TYPE_F32: want = cols * 4 * rows; break;
    case GGUF_TYPE_F16: case GGUF_TYPE_BF16: want = cols * 2 * rows; break;
    case GGUF_TYPE_Q8_0:
        FUZZ_CHECK(cols % 32 == 0, "Q8_0 tensor '%s' of %llu columns",
                   t->name, (unsigned long long)t->ne[0]);
        want = cols / 32 * 34 * rows;
        break;
    default: FUZZ_CHECK(0, "tensor '%s' of type %u accepted", t->name, type);
    }
    FUZZ_CHECK(want != 0 && (unsigned __int128)t->nbytes == want,
               "tensor '%s' of type %u has %zu bytes", t->name, type,
               t->nbytes);
    FUZZ_CHECK(gguf_find_tensor(f, t->name) == t,
               "tensor '%s' found elsewhere", t->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    lode_error err = {0};
    int rc = gguf_open_buffer(data, size, &f, &err);
    if (rc) {
        FUZZ_CHECK(f == NULL && err.code == rc && err.message[0],
                   "refused (%d) without a message", rc);
        FUZZ_CHECK(rc == LODE_EFORMAT || rc == LODE_EUNSUPPORTED,
                   "unexpected error %d: %s", rc, err.message);
        return 0;
    }
    FUZZ_CHECK(f != NULL, "accepted without a file");
    FUZZ_CHECK(gguf_file_size(f) == size, "file size");

    walk w = {data, data + size};
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    FUZZ_CHECK(take_u32(&w, &magic) == 0 && magic == 0x46554747u,
               "accepted a bad magic");
    FUZZ_CHECK(take_u32(&w, &version) == 0 && (version == 2 || version == 3)
                   && gguf_version(f) == version,
               "version %u", version);
    FUZZ_CHECK(take_u64(&w, &n_tensors) == 0 && take_u64(&w, &n_kv) == 0,
               "accepted a cut header");
    FUZZ_CHECK((uint64_t)gguf_tensor_count(f) == n_tensors, "tensor count");

    uint32_t alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++)
        check_kv(f, &w, &alignment);
    FUZZ_CHECK(alignment && !(alignment & (alignment - 1)),
               "alignment %u accepted", alignment);
    if (n_kv == 0) {
        int64_t iv;
        FUZZ_CHECK(!gguf_has_key(f, "general.alignment") &&
                       gguf_get_int(f, "general.alignment", &iv, NULL) ==
                           LODE_ENOTFOUND,
                   "a key in a file without keys");
    }

    uint64_t *offsets = malloc((size_t)(n_tensors ? n_tensors : 1) * 8);
    FUZZ_CHECK(offsets != NULL, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++)
        check_tensor_info(f, &w, (int)i, &offsets[i]);
    FUZZ_CHECK(gguf_get_tensor(f, -1) == NULL &&
                   gguf_get_tensor(f, (int)n_tensors) == NULL,
               "tensor index out of range answered");

    size_t header = (size_t)(w.p - data);
    size_t data_start = (header + alignment - 1) / alignment * alignment;
    /* A file without tensors has no data section, so it needs no padding
     * up to the alignment (gguf.c accepts it, as llama.cpp writes it). */
    FUZZ_CHECK(n_tensors == 0 || data_start <= size,
               "data section starts past the end");
    for (uint64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_get_tensor(f, (int)i);
        FUZZ_CHECK(offsets[i] % alignment == 0, "tensor '%s' misaligned",
                   t->name);
        FUZZ_CHECK((const uint8_t *)t->data == data + data_start + offsets[i],
                   "tensor '%s' data pointer", t->name);
        FUZZ_CHECK(fuzz_inside(t->data, t->nbytes, data, size),
                   "tensor '%s' runs past the buffer", t->name);
        fuzz_touch(t->data, t->nbytes);
    }
    free(offsets);
    gguf_close(f);
    return 0;
}
