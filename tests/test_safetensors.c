/* test_safetensors.c - the safetensors reader on hand-made good and
 * malformed files: every structural error is refused with LODE_EFORMAT (or
 * LODE_EUNSUPPORTED for an unknown dtype), never read past the buffer (run
 * under ASan by `make test SANITIZE=1`). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "test.h"

/* Build header + data into a fresh heap buffer of exactly the file size,
 * so ASan catches any read past the end. */
static uint8_t *make_file(const char *header, size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    uint8_t *buf = malloc(*len);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hl + i] = (uint8_t)i;
    return buf;
}

static int open_rc(const char *header, size_t data_len, lode_error *err)
{
    size_t len;
    uint8_t *buf = make_file(header, data_len, &len);
    st_file *f = NULL;
    int rc = st_open_buffer(buf, len, &f, err);
    st_close(f);
    free(buf);
    return rc;
}

int main(void)
{
    lode_error err = {0};
    size_t len;

    /* A good file with two tensors and metadata. */
    uint8_t *buf = make_file(
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}}",
        32, &len);
    st_file *f = NULL;
    int rc = st_open_buffer(buf, len, &f, &err);
    CHECK(rc == 0, "good file refused: %s", err.message);
    if (f) {
        CHECK(st_count(f) == 2, "count %d", st_count(f));
        const st_tensor *a = st_find(f, "a");
        CHECK(a && a->dtype == ST_F32 && a->ndim == 2 && a->shape[0] == 2 &&
                  a->shape[1] == 3 && a->numel == 6 && a->nbytes == 24,
              "tensor a wrong");
        const st_tensor *b = st_find(f, "b");
        CHECK(b && b->dtype == ST_F16 && (const uint8_t *)b->data ==
                                             (const uint8_t *)a->data + 24,
              "tensor b wrong");
        CHECK(st_find(f, "__metadata__") == NULL, "metadata is no tensor");
        CHECK(st_find(f, "c") == NULL, "unknown name found");
        st_close(f);
    }
    free(buf);

    /* Scalars (shape []) and empty tensors are legal. */
    CHECK(open_rc("{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":"
                  "[0,8]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],"
                  "\"data_offsets\":[8,8]}}", 8, &err) == 0,
          "scalar/empty refused: %s", err.message);

    struct {
        const char *what, *header;
        size_t data;
        int want;
    } bad[] = {
        {"not JSON", "{\"a\": ", 0, LODE_EFORMAT},
        {"array header", "[1,2]", 0, LODE_EFORMAT},
        {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         LODE_EFORMAT},
        {"unknown dtype",
         "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         LODE_EUNSUPPORTED},
        {"size mismatch",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
         LODE_EFORMAT},
        {"past the end",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
         LODE_EFORMAT},
        {"begin > end",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 8,
         LODE_EFORMAT},
        {"negative shape",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 8,
         LODE_EFORMAT},
        {"negative offset",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 8,
         LODE_EFORMAT},
        {"float shape",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 8,
         LODE_EFORMAT},
        {"shape overflow",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
         "\"data_offsets\":[0,0]}}", 8, LODE_EFORMAT},
        {"too many dims",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
         "\"data_offsets\":[0,1]}}", 8, LODE_EFORMAT},
        {"overlap",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 8,
         LODE_EFORMAT},
        {"one offset",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0]}}", 8,
         LODE_EFORMAT},
        {"duplicate name",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 8,
         LODE_EFORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lode_error_clear(&err);
        rc = open_rc(bad[i].header, bad[i].data, &err);
        CHECK(rc == bad[i].want, "%s: rc %d (%s)", bad[i].what, rc,
              err.message);
        CHECK(err.message[0] != '\0', "%s: no message", bad[i].what);
    }

    /* Header length field larger than the file, and tiny files. */
    uint8_t tiny[12] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    f = NULL;
    CHECK(st_open_buffer(tiny, sizeof tiny, &f, &err) == LODE_EFORMAT,
          "oversized header length accepted");
    CHECK(st_open_buffer(tiny, 5, &f, &err) == LODE_EFORMAT,
          "5-byte file accepted");
    uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK(st_open_buffer(huge, 8, &f, &err) == LODE_EFORMAT,
          "2^64-1 header length accepted");

    /* Every truncation of a good file is refused, never read past. */
    buf = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                    "\"data_offsets\":[0,24]}}", 24, &len);
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        f = NULL;
        if (st_open_buffer(part, cut, &f, &err) != 0)
            refused++;
        st_close(f);
        free(part);
    }
    CHECK(refused == (int)len, "%d of %zu truncations refused", refused, len);

    /* Random byte flips in the header: any outcome but a crash; a success
     * must still describe in-bounds tensors. */
    srand(1);
    for (int iter = 0; iter < 2000; iter++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        int flips = 1 + rand() % 3;
        for (int k = 0; k < flips; k++)
            copy[rand() % (int)len] = (uint8_t)rand();
        f = NULL;
        if (st_open_buffer(copy, len, &f, &err) == 0) {
            for (int t = 0; t < st_count(f); t++) {
                const st_tensor *tt = st_get(f, t);
                CHECK((const uint8_t *)tt->data + tt->nbytes <= copy + len,
                      "tensor past end after flips");
            }
        }
        st_close(f);
        free(copy);
    }
    free(buf);

    /* A missing file names itself. */
    CHECK(st_open("/nonexistent/model.safetensors", &f, &err) ==
              LODE_ENOTFOUND && strstr(err.message, "/nonexistent"),
          "missing file: %s", err.message);
    TEST_MAIN_END();
}
