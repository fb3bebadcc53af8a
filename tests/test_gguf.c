/* test_gguf.c - the GGUF reader and writer: a written file reads back
 * exactly; every malformed variant (bad magic, version, counts, offsets,
 * types, shapes, truncation at every byte, random corruption) is refused
 * with an error, never a crash (run under ASan by `make test SANITIZE=1`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "kernels.h"
#include "test.h"

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (fread(buf, 1, *len, f) != *len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* Parse a private copy of exactly len bytes, so ASan sees any overread. */
static int parse_copy(const uint8_t *buf, size_t len, lode_error *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    gguf_file *f = NULL;
    int rc = gguf_open_buffer(copy, len, &f, err);
    if (rc == 0) {
        for (int i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_get_tensor(f, i);
            CHECK((const uint8_t *)t->data + t->nbytes <= copy + len,
                  "tensor past the end");
        }
        size_t n;
        if (gguf_get_str_array(f, "tok", &n, NULL) == 0)
            for (size_t i = 0; i < n; i++) {
                const char *s;
                size_t l;
                gguf_get_str_elem(f, "tok", i, &s, &l);
                CHECK((const uint8_t *)s + l <= copy + len, "string past end");
            }
    }
    gguf_close(f);
    free(copy);
    return rc;
}

int main(void)
{
    lode_error err = {0};
    char path[] = "/tmp/lode-test-gguf-XXXXXX";
    int fd = mkstemp(path);
    close(fd);

    /* Write a small file with every kind of value and three tensor types. */
    gguf_writer *w = NULL;
    CHECK(gguf_writer_new(&w, &err) == 0, "writer");
    float m32[2 * 64], v32[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 2 * 64; i++)
        m32[i] = (float)(i - 64) / 7.0f;
    uint16_t m16[3 * 4];
    for (int i = 0; i < 12; i++)
        m16[i] = kern_f32_to_f16((float)i * 0.25f);
    uint8_t q8[2 * 2 * KERN_Q8_0_BYTES];
    kern_quantize_q8_0(m32, 128, q8);
    const char *toks[] = {"[CLS]", "\xe2\x96\x81hello", "world", ""};
    int32_t ints[3] = {-1, 0, 7};
    uint64_t ne_m[2] = {64, 2}, ne_v[1] = {5}, ne_h[2] = {4, 3};
    CHECK(gguf_set_str(w, "general.architecture", "bert") == 0 &&
              gguf_set_u32(w, "u", 42) == 0 && gguf_set_i32(w, "i", -5) == 0 &&
              gguf_set_f32(w, "f", 0.5f) == 0 && gguf_set_bool(w, "b", 1) == 0 &&
              gguf_set_str_array(w, "tok", toks, 4) == 0 &&
              gguf_set_i32_array(w, "ints", ints, 3) == 0,
          "set metadata");
    CHECK(gguf_add_tensor(w, "m32", GGUF_TYPE_F32, 2, ne_m, m32, sizeof m32,
                          &err) == 0, "add m32: %s", err.message);
    CHECK(gguf_add_tensor(w, "v32", GGUF_TYPE_F32, 1, ne_v, v32, sizeof v32,
                          &err) == 0, "add v32");
    CHECK(gguf_add_tensor(w, "h16", GGUF_TYPE_F16, 2, ne_h, m16, sizeof m16,
                          &err) == 0, "add h16");
    CHECK(gguf_add_tensor(w, "q8", GGUF_TYPE_Q8_0, 2, ne_m, q8,
                          2 * 2 * KERN_Q8_0_BYTES, &err) == 0, "add q8");
    CHECK(gguf_add_tensor(w, "bad", GGUF_TYPE_F32, 2, ne_m, m32, 12, &err) ==
              LODE_EINVAL, "wrong byte count accepted");
    CHECK(gguf_write(w, path, &err) == 0, "write: %s", err.message);
    gguf_writer_free(w);

    gguf_file *f = NULL;
    CHECK(gguf_open(path, &f, &err) == 0, "open: %s", err.message);
    if (f) {
        int64_t iv;
        double dv;
        int bv;
        const char *s;
        size_t len, n;
        CHECK(gguf_version(f) == 3, "version");
        CHECK(gguf_get_int(f, "u", &iv, &err) == 0 && iv == 42, "u");
        CHECK(gguf_get_int(f, "i", &iv, &err) == 0 && iv == -5, "i");
        CHECK(gguf_get_float(f, "f", &dv, &err) == 0 && dv == 0.5, "f");
        CHECK(gguf_get_bool(f, "b", &bv, &err) == 0 && bv == 1, "b");
        CHECK(gguf_get_str(f, "general.architecture", &s, &len, &err) == 0 &&
                  len == 4 && !memcmp(s, "bert", 4), "str");
        CHECK(gguf_get_str(f, "u", &s, &len, &err) == LODE_EFORMAT,
              "int read as string");
        CHECK(gguf_get_int(f, "nope", &iv, &err) == LODE_ENOTFOUND, "missing");
        CHECK(gguf_get_str_array(f, "tok", &n, &err) == 0 && n == 4, "array");
        for (size_t i = 0; i < 4; i++) {
            CHECK(gguf_get_str_elem(f, "tok", i, &s, &len) == 0 &&
                      len == strlen(toks[i]) && !memcmp(s, toks[i], len),
                  "token %zu", i);
        }
        CHECK(gguf_get_str_elem(f, "tok", 4, &s, &len) != 0, "elem 4");
        CHECK(gguf_tensor_count(f) == 4, "tensor count");
        const gguf_tensor *t = gguf_find_tensor(f, "m32");
        CHECK(t && t->type == GGUF_TYPE_F32 && t->ne[0] == 64 &&
                  t->ne[1] == 2 && !memcmp(t->data, m32, sizeof m32) &&
                  ((uintptr_t)t->data % GGUF_DEFAULT_ALIGNMENT) == 0,
              "m32 back");
        t = gguf_find_tensor(f, "h16");
        CHECK(t && t->type == GGUF_TYPE_F16 && !memcmp(t->data, m16,
                                                       sizeof m16), "h16");
        t = gguf_find_tensor(f, "q8");
        CHECK(t && t->nbytes == sizeof q8 && !memcmp(t->data, q8, sizeof q8),
              "q8");
        t = gguf_find_tensor(f, "v32");
        CHECK(t && t->n_dims == 1 && t->ne[0] == 5, "v32");
        gguf_close(f);
    }

    size_t flen = 0;
    uint8_t *good = slurp(path, &flen);
    CHECK(good && parse_copy(good, flen, &err) == 0, "good copy");

    /* Targeted corruptions of the header fields. */
    uint8_t *bad = malloc(flen);
    struct { const char *what; size_t at; uint8_t val; } hits[] = {
        {"magic", 0, 'X'}, {"version", 4, 9}, {"tensor count", 15, 0x7f},
        {"kv count", 23, 0x40},
    };
    for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
        memcpy(bad, good, flen);
        bad[hits[i].at] = hits[i].val;
        lode_error_clear(&err);
        CHECK(parse_copy(bad, flen, &err) != 0 && err.message[0],
              "%s corruption accepted", hits[i].what);
    }
    memcpy(bad, good, flen);
    memcpy(bad + 4, "\x01\x00\x00\x00", 4);
    CHECK(parse_copy(bad, flen, &err) == LODE_EUNSUPPORTED &&
              strstr(err.message, "version"), "version 1: %s", err.message);
    memcpy(bad, good, flen);
    memcpy(bad, "GGUX", 4);
    CHECK(parse_copy(bad, flen, &err) == LODE_EFORMAT &&
              strstr(err.message, "magic"), "magic: %s", err.message);

    /* Every truncation that cuts into the header or a tensor is refused
     * (cutting only the padding after the last tensor is harmless). */
    size_t data_end = 0;
    if (gguf_open_buffer(good, flen, &f, &err) == 0) {
        for (int i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_get_tensor(f, i);
            size_t end = (size_t)((const uint8_t *)t->data - good) + t->nbytes;
            if (end > data_end)
                data_end = end;
        }
        gguf_close(f);
    }
    CHECK(data_end > 0 && data_end <= flen, "data end %zu", data_end);
    int refused = 0;
    for (size_t cut = 0; cut < data_end; cut++)
        refused += parse_copy(good, cut, &err) != 0;
    CHECK(refused == (int)data_end, "%d of %zu truncations refused", refused,
          data_end);

    /* Find the q8 tensor's info to corrupt its type, dims and offset. */
    size_t name_at = 0;
    for (size_t i = 24; i + 2 < flen; i++)
        if (!memcmp(good + i, "\x02\x00\x00\x00\x00\x00\x00\x00q8", 10)) {
            name_at = i;
            break;
        }
    CHECK(name_at != 0, "q8 info not found");
    if (name_at) {
        size_t dims_at = name_at + 10, ne_at = dims_at + 4,
               type_at = ne_at + 16, off_at = type_at + 4;
        memcpy(bad, good, flen);
        bad[type_at] = 2; /* Q4_0: unsupported */
        CHECK(parse_copy(bad, flen, &err) == LODE_EUNSUPPORTED, "type 2");
        memcpy(bad, good, flen);
        bad[dims_at] = 5;
        CHECK(parse_copy(bad, flen, &err) == LODE_EFORMAT, "5 dims");
        memcpy(bad, good, flen);
        bad[ne_at] = 65; /* 65 columns do not fit q8_0 blocks */
        CHECK(parse_copy(bad, flen, &err) == LODE_EFORMAT, "65 cols");
        memcpy(bad, good, flen);
        bad[off_at + 5] = 1; /* far past the end */
        CHECK(parse_copy(bad, flen, &err) == LODE_EFORMAT &&
                  strstr(err.message, "past the end"), "offset: %s",
              err.message);
        memcpy(bad, good, flen);
        bad[off_at] ^= 4; /* misaligned */
        CHECK(parse_copy(bad, flen, &err) == LODE_EFORMAT, "misaligned");
    }

    /* Random corruption: any result but a crash or an out-of-bounds view. */
    srand(7);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(bad, good, flen);
        int flips = 1 + rand() % 4;
        for (int k = 0; k < flips; k++)
            bad[rand() % (int)(name_at ? name_at + 40 : flen)] =
                (uint8_t)rand();
        parse_copy(bad, flen, &err);
    }
    free(bad);
    free(good);

    /* A file with no tensors needs no data section, so no padding after
     * its metadata: llama.cpp's writer may end it right there, and its
     * reader accepts that.  Every cut from the end of the metadata on
     * opens; every cut into it is refused. */
    CHECK(gguf_writer_new(&w, &err) == 0, "writer");
    CHECK(gguf_set_str(w, "general.architecture", "bert") == 0, "set");
    CHECK(gguf_write(w, path, &err) == 0, "write: %s", err.message);
    gguf_writer_free(w);
    good = slurp(path, &flen);
    size_t meta_end = flen;
    while (good && meta_end > 0 && good[meta_end - 1] == 0)
        meta_end--;                   /* the last value is "bert" */
    CHECK(good && meta_end > 24 && !memcmp(good + meta_end - 4, "bert", 4),
          "tensorless file layout");
    int opened = 0;
    for (size_t cut = meta_end; cut <= flen; cut++)
        opened += parse_copy(good, cut, &err) == 0;
    CHECK(opened == (int)(flen - meta_end + 1),
          "%d of %zu unpadded tensorless files opened: %s", opened,
          flen - meta_end + 1, err.message);
    refused = 0;
    for (size_t cut = 0; cut < meta_end; cut++)
        refused += parse_copy(good, cut, &err) != 0;
    CHECK(refused == (int)meta_end, "%d of %zu cut tensorless files refused",
          refused, meta_end);
    free(good);
    unlink(path);
    TEST_MAIN_END();
}
