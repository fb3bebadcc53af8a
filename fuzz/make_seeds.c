/* make_seeds.c - write the seed corpora of the fuzz targets.
 *
 * `make fuzz-seeds` runs this to (re)write fuzz/corpus/{gguf, gguf_model,
 * safetensors, tokenizer}/ with small hand-made inputs; the files are
 * committed, so it only needs to run again when a seed is added here.
 * Seeds are deliberately tiny (libFuzzer mutates small inputs fastest):
 *   gguf/         every value type, every tensor type, version 2, odd
 *                 alignments, written both by hand and by lode's own
 *                 gguf_writer, plus truncated and corrupted variants;
 *   gguf_model/   tiny BERT models (hidden 4 or 32) in F32, F16, BF16 and
 *                 Q8_0, separate and fused QKV, lode.* keys or llama.cpp's;
 *   safetensors/  every dtype, scalars, empty tensors, padded headers, and
 *                 the classic malformations (overlap, bad offsets, ...);
 *   tokenizer/    texts from tests/ref/texts.json (accents, CJK, emoji,
 *                 controls, special tokens, long words) and invalid UTF-8.
 * Usage: make_seeds [DIR]   (DIR defaults to fuzz/corpus) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zip.h>

#include "gguf.h"
#include "kernels.h"

static const char *root = "fuzz/corpus";
static int n_written;

static void die(const char *what)
{
    fprintf(stderr, "make_seeds: %s\n", what);
    exit(1);
}

static void write_seed(const char *target, const char *name, const void *data,
                       size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        die(root);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path);
    n_written++;
}

/* ---- a growable byte buffer --------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            die("out of memory");
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(buf *b, uint16_t v) { put(b, &v, 2); }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_f32(buf *b, float v) { put(b, &v, 4); }
static void put_f64(buf *b, double v) { put(b, &v, 8); }
static void put_gstr(buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void pad_to(buf *b, size_t align)
{
    while (b->len % align)
        put_u8(b, 0);
}

/* Deterministic values in [-1, 1). */
static uint32_t rng = 12345;
static float next_float(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / (float)(1u << 23) - 1.0f;
}

/* ---- GGUF, by hand ------------------------------------------------------ */

/* Where build_all_types put the fields the corrupted variants patch. */
typedef struct layout {
    size_t first_kv_type;       /* u32 value type of the first key */
    size_t tensor_info[5];      /* start of each tensor info (its name) */
    size_t data_start;
} layout;

#define ALL_TYPES_TENSORS 5

/* A GGUF with a key of every value type and array type and a tensor of
 * every type lode reads.  alignment 0 means no general.alignment key. */
static void build_all_types(buf *b, uint32_t version, uint32_t alignment,
                            int dup_key, layout *lay)
{
    uint64_t n_kv = 19 + (alignment != 0) + (dup_key != 0);
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, ALL_TYPES_TENSORS);
    put_u64(b, n_kv);
    put_gstr(b, "k.u8");
    lay->first_kv_type = b->len;
    put_u32(b, GGUF_U8); put_u8(b, 200);
    put_gstr(b, "k.i8"); put_u32(b, GGUF_I8); put_u8(b, 0x80);
    put_gstr(b, "k.u16"); put_u32(b, GGUF_U16); put_u16(b, 65535);
    put_gstr(b, "k.i16"); put_u32(b, GGUF_I16); put_u16(b, 0x8000);
    put_gstr(b, "k.u32"); put_u32(b, GGUF_U32); put_u32(b, 4000000000u);
    put_gstr(b, "k.i32"); put_u32(b, GGUF_I32); put_u32(b, (uint32_t)-7);
    put_gstr(b, "k.f32"); put_u32(b, GGUF_F32); put_f32(b, 0.5f);
    put_gstr(b, "k.bool"); put_u32(b, GGUF_BOOL); put_u8(b, 2);
    put_gstr(b, "k.str"); put_u32(b, GGUF_STRING); put_gstr(b, "bert");
    put_gstr(b, "k.empty"); put_u32(b, GGUF_STRING); put_gstr(b, "");
    put_gstr(b, "k.u64"); put_u32(b, GGUF_U64); put_u64(b, UINT64_MAX);
    put_gstr(b, "k.i64"); put_u32(b, GGUF_I64); put_u64(b, (uint64_t)-1);
    put_gstr(b, "k.f64"); put_u32(b, GGUF_F64); put_f64(b, -2.25);
    put_gstr(b, "k.arr.u8");
    put_u32(b, GGUF_ARRAY); put_u32(b, GGUF_U8); put_u64(b, 3);
    put_u8(b, 1); put_u8(b, 2); put_u8(b, 3);
    put_gstr(b, "k.arr.f64");
    put_u32(b, GGUF_ARRAY); put_u32(b, GGUF_F64); put_u64(b, 1);
    put_f64(b, 1.0);
    put_gstr(b, "k.arr.empty");
    put_u32(b, GGUF_ARRAY); put_u32(b, GGUF_I32); put_u64(b, 0);
    put_gstr(b, "k.arr.str");
    put_u32(b, GGUF_ARRAY); put_u32(b, GGUF_STRING); put_u64(b, 4);
    put_gstr(b, "[CLS]"); put_gstr(b, "\xe2\x96\x81hello"); put_gstr(b, "");
    put_gstr(b, "ing");
    put_gstr(b, "k.arr.str.empty");
    put_u32(b, GGUF_ARRAY); put_u32(b, GGUF_STRING); put_u64(b, 0);
    put_gstr(b, "general.architecture"); put_u32(b, GGUF_STRING);
    put_gstr(b, "bert");
    if (alignment) {
        put_gstr(b, "general.alignment");
        put_u32(b, GGUF_U32);
        put_u32(b, alignment);
    }
    if (dup_key) {
        put_gstr(b, "k.u8");
        put_u32(b, GGUF_U8);
        put_u8(b, 1);
    }
    size_t align = alignment ? alignment : GGUF_DEFAULT_ALIGNMENT;
    if (align == 0 || (align & (align - 1)))
        align = 1; /* the reader refuses it; the layout does not matter */

    static const struct {
        const char *name;
        uint32_t type;
        int n_dims;
        uint64_t ne[4];
        size_t nbytes;
    } ts[ALL_TYPES_TENSORS] = {
        {"f32.vec", GGUF_TYPE_F32, 1, {3}, 12},
        {"f16.mat", GGUF_TYPE_F16, 2, {4, 2}, 16},
        {"bf16.3d", GGUF_TYPE_BF16, 3, {2, 2, 2}, 16},
        {"q8.row", GGUF_TYPE_Q8_0, 2, {32, 1}, 34},
        {"f32.4d", GGUF_TYPE_F32, 4, {1, 2, 1, 2}, 16},
    };
    uint64_t offset = 0;
    for (int i = 0; i < ALL_TYPES_TENSORS; i++) {
        lay->tensor_info[i] = b->len;
        put_gstr(b, ts[i].name);
        put_u32(b, (uint32_t)ts[i].n_dims);
        for (int d = 0; d < ts[i].n_dims; d++)
            put_u64(b, ts[i].ne[d]);
        put_u32(b, ts[i].type);
        put_u64(b, offset);
        offset += (ts[i].nbytes + align - 1) / align * align;
    }
    pad_to(b, align);
    lay->data_start = b->len;
    for (int i = 0; i < ALL_TYPES_TENSORS; i++) {
        for (size_t k = 0; k < ts[i].nbytes; k++)
            put_u8(b, (uint8_t)(k * 37 + (size_t)i));
        pad_to(b, align);
    }
}

static void patch_u32(buf *b, size_t at, uint32_t v)
{
    memcpy(b->p + at, &v, 4);
}

static void patch_u64(buf *b, size_t at, uint64_t v)
{
    memcpy(b->p + at, &v, 8);
}

static void seed_gguf_by_hand(void)
{
    buf b = {0};
    layout lay;
    uint8_t hdr[24];
    memcpy(hdr, "GGUF\x03\0\0\0", 8);
    memset(hdr + 8, 0, 16);
    write_seed("gguf", "empty-v3.gguf", hdr, 24);
    hdr[4] = 2;
    write_seed("gguf", "empty-v2.gguf", hdr, 24);
    /* With the header padded to the alignment: valid, no keys, no
     * tensors (the unpadded ones above are refused). */
    uint8_t padded[32] = {0};
    memcpy(padded, hdr, 24);
    write_seed("gguf", "empty-v2-padded.gguf", padded, 32);
    padded[4] = 3;
    write_seed("gguf", "empty-v3-padded.gguf", padded, 32);

    build_all_types(&b, 3, 0, 0, &lay);
    write_seed("gguf", "all-types.gguf", b.p, b.len);
    const buf good = b;

    /* Truncated at interesting places. */
    size_t cuts[] = {3, 16, 24, lay.first_kv_type + 2,
                     lay.tensor_info[0] - 3, lay.tensor_info[2] + 9,
                     lay.data_start, good.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "all-types-cut-%zu.gguf", cuts[i]);
        write_seed("gguf", name, good.p, cuts[i]);
    }

    /* One corrupted field each. */
    buf c = {0};
#define VARIANT(name, patch)                                                 \
    do {                                                                     \
        c.len = 0;                                                           \
        put(&c, good.p, good.len);                                           \
        patch;                                                               \
        write_seed("gguf", name, c.p, c.len);                                \
    } while (0)
    VARIANT("bad-magic.gguf", memcpy(c.p, "GGUX", 4));
    VARIANT("version-1.gguf", patch_u32(&c, 4, 1));
    VARIANT("version-4.gguf", patch_u32(&c, 4, 4));
    VARIANT("huge-tensor-count.gguf", patch_u64(&c, 8, UINT64_MAX / 2));
    VARIANT("huge-kv-count.gguf", patch_u64(&c, 16, 1ull << 40));
    VARIANT("unknown-value-type.gguf", patch_u32(&c, lay.first_kv_type, 13));
    size_t t0 = lay.tensor_info[0], t3 = lay.tensor_info[3];
    /* tensor 0 "f32.vec": name 8+7, n_dims 4, ne 8, type 4, offset 8 */
    VARIANT("tensor-type-q4.gguf", patch_u32(&c, t0 + 15 + 4 + 8, 2));
    VARIANT("tensor-dims-5.gguf", patch_u32(&c, t0 + 15, 5));
    VARIANT("tensor-dims-0.gguf", patch_u32(&c, t0 + 15, 0));
    VARIANT("tensor-ne-0.gguf", patch_u64(&c, t0 + 19, 0));
    VARIANT("tensor-ne-huge.gguf", patch_u64(&c, t0 + 19, 1ull << 41));
    VARIANT("tensor-misaligned.gguf", patch_u64(&c, t0 + 15 + 4 + 8 + 4, 4));
    VARIANT("tensor-past-end.gguf",
            patch_u64(&c, t0 + 15 + 4 + 8 + 4, 1u << 20));
    /* tensor 3 "q8.row": name 8+6, n_dims 4, ne 16: make it 33 columns */
    VARIANT("q8-33-columns.gguf", patch_u64(&c, t3 + 14 + 4, 33));
    VARIANT("duplicate-tensor.gguf", memcpy(c.p + t3 + 8, "f32.4d", 6));
#undef VARIANT

    b = (buf){0};
    build_all_types(&b, 2, 0, 0, &lay);
    write_seed("gguf", "all-types-v2.gguf", b.p, b.len);
    b.len = 0;
    build_all_types(&b, 3, 1, 0, &lay);
    write_seed("gguf", "alignment-1.gguf", b.p, b.len);
    b.len = 0;
    build_all_types(&b, 3, 64, 0, &lay);
    write_seed("gguf", "alignment-64.gguf", b.p, b.len);
    b.len = 0;
    build_all_types(&b, 3, 3, 0, &lay);
    write_seed("gguf", "alignment-3.gguf", b.p, b.len);
    b.len = 0;
    build_all_types(&b, 3, 0, 1, &lay);
    write_seed("gguf", "duplicate-key.gguf", b.p, b.len);
    free(b.p);
    free(c.p);
    free(good.p);
}

/* ---- GGUF, with lode's writer ------------------------------------------- */

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n > 0 ? (size_t)n : 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
        die(path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Write w to a temporary file and store it as seed target/name. */
static void store_writer(gguf_writer *w, const char *target, const char *name)
{
    char tmp[] = "/tmp/lode-make-seeds-XXXXXX";
    int fd = mkstemp(tmp);
    lode_error err = {0};
    if (fd < 0)
        die("mkstemp");
    if (gguf_write(w, tmp, &err) != 0)
        die(err.message);
    size_t len;
    void *data = slurp(tmp, &len);
    close(fd);
    remove(tmp);
    write_seed(target, name, data, len);
    free(data);
}

/* rows x cols values (rows 0: a vector) as `type`; returns the bytes. */
static void *make_tensor(uint32_t type, int rows, int cols, size_t *nbytes)
{
    int r = rows ? rows : 1;
    *nbytes = gguf_tensor_bytes(type, (uint64_t)cols, (uint64_t)r);
    if (!*nbytes)
        die("tensor shape does not fit its type");
    float *f = malloc((size_t)r * cols * sizeof *f);
    uint8_t *out = malloc(*nbytes);
    if (!f || !out)
        die("out of memory");
    for (size_t i = 0; i < (size_t)r * cols; i++)
        f[i] = next_float() * 0.5f;
    size_t row_bytes = *nbytes / (size_t)r;
    for (int y = 0; y < r; y++) {
        const float *s = f + (size_t)y * cols;
        uint8_t *d = out + (size_t)y * row_bytes;
        for (int x = 0; x < cols; x++) {
            uint32_t bits;
            uint16_t h;
            switch (type) {
            case GGUF_TYPE_F32: memcpy(d + 4 * x, &s[x], 4); break;
            case GGUF_TYPE_F16:
                h = kern_f32_to_f16(s[x]);
                memcpy(d + 2 * x, &h, 2);
                break;
            case GGUF_TYPE_BF16:
                memcpy(&bits, &s[x], 4);
                h = (uint16_t)(bits >> 16);
                memcpy(d + 2 * x, &h, 2);
                break;
            }
        }
        if (type == GGUF_TYPE_Q8_0)
            kern_quantize_q8_0(s, cols, d);
    }
    free(f);
    return out;
}

static void add(gguf_writer *w, const char *name, uint32_t type, int rows,
                int cols)
{
    size_t nbytes;
    void *data = make_tensor(type, rows, cols, &nbytes);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    lode_error err = {0};
    if (gguf_add_tensor(w, name, type, rows ? 2 : 1, ne, data, nbytes, &err))
        die(err.message);
    free(data);
}

static void seed_gguf_writer(void)
{
    gguf_writer *w;
    lode_error err = {0};
    if (gguf_writer_new(&w, &err))
        die(err.message);
    const char *strs[] = {"a", "", "\xe2\x96\x81z"};
    int32_t ints[3] = {-1, 0, 7};
    float floats[2] = {1.5f, -0.0f};
    gguf_set_str(w, "general.architecture", "bert");
    gguf_set_u32(w, "u", 42);
    gguf_set_i32(w, "i", -5);
    gguf_set_f32(w, "f", 0.25f);
    gguf_set_bool(w, "b", 1);
    gguf_set_str_array(w, "tok", strs, 3);
    gguf_set_i32_array(w, "ints", ints, 3);
    gguf_set_f32_array(w, "floats", floats, 2);
    add(w, "m32", GGUF_TYPE_F32, 2, 3);
    add(w, "h16", GGUF_TYPE_F16, 3, 2);
    add(w, "b16", GGUF_TYPE_BF16, 0, 5);
    add(w, "q8", GGUF_TYPE_Q8_0, 1, 32);
    store_writer(w, "gguf", "writer.gguf");
    gguf_writer_free(w);
}

/* ---- tiny BERT models --------------------------------------------------- */

typedef struct model_spec {
    const char *name;
    int hidden, heads, intermediate, layers;
    uint32_t big;       /* type of the attention/FFN/word matrices */
    uint32_t small;     /* type of biases, LayerNorm, position, token types */
    int fused_qkv;
    int embd_rows;      /* rows of token_embd (> vocab: padded) */
    int lode_keys;      /* lode.* metadata, else only llama.cpp's */
} model_spec;

/* llama.cpp's spelling: U+2581 starts a word, "##" pieces lose it. */
static const char *const vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "\xe2\x96\x81hello", "\xe2\x96\x81world", "\xe2\x96\x81,",
    "\xe2\x96\x81!", "\342\226\201caf", "\xc3\xa9", "\xe2\x96\x81the",
    "ing", "\xe2\x96\x81#", "s", "\xe2\x96\x81\xe4\xb8\xad",
};
#define VOCAB_N ((int)(sizeof vocab / sizeof vocab[0]))
#define MODEL_POSITIONS 16

static void seed_model(const model_spec *m)
{
    gguf_writer *w;
    lode_error err = {0};
    if (gguf_writer_new(&w, &err))
        die(err.message);
    const int H = m->hidden, I = m->intermediate;
    gguf_set_str(w, "general.architecture", "bert");
    gguf_set_str(w, "general.name", m->name);
    gguf_set_u32(w, "bert.context_length", MODEL_POSITIONS);
    gguf_set_u32(w, "bert.embedding_length", (uint32_t)H);
    gguf_set_u32(w, "bert.feed_forward_length", (uint32_t)I);
    gguf_set_u32(w, "bert.block_count", (uint32_t)m->layers);
    gguf_set_u32(w, "bert.attention.head_count", (uint32_t)m->heads);
    gguf_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f);
    gguf_set_u32(w, "bert.pooling_type", m->lode_keys ? 1 : 2);
    if (m->lode_keys) {
        gguf_set_u32(w, "lode.max_seq_length", 12);
        gguf_set_bool(w, "lode.do_lower_case", 1);
        gguf_set_i32(w, "lode.strip_accents", -1);
        gguf_set_bool(w, "lode.tokenize_chinese_chars", 1);
        gguf_set_str(w, "lode.pooling", "mean");
        gguf_set_bool(w, "lode.normalize", 1);
    }
    gguf_set_str(w, "tokenizer.ggml.model", "bert");
    gguf_set_str_array(w, "tokenizer.ggml.tokens", vocab, VOCAB_N);
    add(w, "token_embd.weight", m->big, m->embd_rows, H);
    add(w, "position_embd.weight", m->small, MODEL_POSITIONS, H);
    add(w, "token_types.weight", m->small, 2, H);
    add(w, "token_embd_norm.weight", m->small, 0, H);
    add(w, "token_embd_norm.bias", m->small, 0, H);
    for (int l = 0; l < m->layers; l++) {
        char n[64];
#define T(suffix, type, rows, cols)                                          \
    (snprintf(n, sizeof n, "blk.%d." suffix, l), add(w, n, type, rows, cols))
        if (m->fused_qkv) {
            T("attn_qkv.weight", m->big, 3 * H, H);
            T("attn_qkv.bias", m->small, 0, 3 * H);
        } else {
            T("attn_q.weight", m->big, H, H);
            T("attn_q.bias", m->small, 0, H);
            T("attn_k.weight", m->big, H, H);
            T("attn_k.bias", m->small, 0, H);
            T("attn_v.weight", m->big, H, H);
            T("attn_v.bias", m->small, 0, H);
        }
        T("attn_output.weight", m->big, H, H);
        T("attn_output.bias", m->small, 0, H);
        T("attn_output_norm.weight", m->small, 0, H);
        T("attn_output_norm.bias", m->small, 0, H);
        T("ffn_up.weight", m->big, I, H);
        T("ffn_up.bias", m->small, 0, I);
        T("ffn_down.weight", m->big, H, I);
        T("ffn_down.bias", m->small, 0, H);
        T("layer_output_norm.weight", m->small, 0, H);
        T("layer_output_norm.bias", m->small, 0, H);
#undef T
    }
    char name[96];
    snprintf(name, sizeof name, "%s.gguf", m->name);
    store_writer(w, "gguf_model", name);
    gguf_writer_free(w);
}

static void seed_models(void)
{
    static const model_spec specs[] = {
        {"model-f32-h4", 4, 2, 8, 1, GGUF_TYPE_F32, GGUF_TYPE_F32, 0,
         VOCAB_N, 1},
        {"model-f16-h4", 4, 1, 8, 1, GGUF_TYPE_F16, GGUF_TYPE_F16, 0,
         VOCAB_N, 1},
        {"model-bf16-h4", 4, 4, 4, 1, GGUF_TYPE_BF16, GGUF_TYPE_BF16, 0,
         VOCAB_N, 1},
        {"model-fused-h4", 4, 2, 8, 2, GGUF_TYPE_F32, GGUF_TYPE_F32, 1,
         VOCAB_N + 4, 0},
        {"model-q8-h32", 32, 4, 32, 1, GGUF_TYPE_Q8_0, GGUF_TYPE_Q8_0, 0,
         VOCAB_N, 1},
        {"model-q8-fused-h32", 32, 2, 32, 1, GGUF_TYPE_Q8_0, GGUF_TYPE_F32, 1,
         VOCAB_N, 0},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        seed_model(&specs[i]);
    /* The smallest model is a good GGUF seed too (realistic key names). */
    char path[4096];
    snprintf(path, sizeof path, "%s/gguf_model/model-f32-h4.gguf", root);
    size_t len;
    void *data = slurp(path, &len);
    write_seed("gguf", "model-f32-h4.gguf", data, len);
    free(data);
}

/* ---- safetensors -------------------------------------------------------- */

/* 8-byte header length, the JSON header (space-padded to a multiple of
 * pad when pad > 0, as Hugging Face's writer does), then data. */
static void st_seed(const char *name, const char *json, size_t pad,
                    const void *data, size_t dlen)
{
    buf b = {0};
    size_t hlen = strlen(json);
    size_t padded = pad ? (hlen + pad - 1) / pad * pad : hlen;
    put_u64(&b, padded);
    put(&b, json, hlen);
    while (b.len < 8 + padded)
        put_u8(&b, ' ');
    put(&b, data, dlen);
    write_seed("safetensors", name, b.p, b.len);
    free(b.p);
}

static void seed_safetensors(void)
{
    uint8_t data[256];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 7);
    st_seed("empty-object.st", "{}", 0, NULL, 0);
    st_seed("metadata-only.st", "{\"__metadata__\":{\"format\":\"pt\"}}", 8,
            NULL, 0);
    st_seed("one-f32.st",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
            "\"data_offsets\":[0,24]}}", 8, data, 24);
    st_seed("every-dtype.st",
            "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"all\"},"
            "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],"
            "\"data_offsets\":[0,16]},"
            "\"f32\":{\"dtype\":\"F32\",\"shape\":[2],"
            "\"data_offsets\":[16,24]},"
            "\"f16\":{\"dtype\":\"F16\",\"shape\":[2],"
            "\"data_offsets\":[24,28]},"
            "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[2],"
            "\"data_offsets\":[28,32]},"
            "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],"
            "\"data_offsets\":[32,40]},"
            "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],"
            "\"data_offsets\":[40,44]},"
            "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],"
            "\"data_offsets\":[44,46]},"
            "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[46,47]},"
            "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[47,48]},"
            "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[1],"
            "\"data_offsets\":[48,49]}}", 8, data, 49);
    st_seed("scalar-and-empty.st",
            "{\"scalar\":{\"dtype\":\"F32\",\"shape\":[],"
            "\"data_offsets\":[0,4]},"
            "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,3],"
            "\"data_offsets\":[4,4]},"
            "\"empty2\":{\"dtype\":\"F16\",\"shape\":[3,0],"
            "\"data_offsets\":[4,4]}}", 0, data, 4);
    st_seed("eight-dims.st",
            "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,2,1,2,1,2,1,2],"
            "\"data_offsets\":[0,16]}}", 8, data, 16);
    st_seed("bert-names.st",
            "{\"embeddings.word_embeddings.weight\":{\"dtype\":\"F32\","
            "\"shape\":[4,4],\"data_offsets\":[0,64]},"
            "\"encoder.layer.0.attention.self.query.bias\":{\"dtype\":"
            "\"F32\",\"shape\":[4],\"data_offsets\":[64,80]}}", 8, data, 80);
    st_seed("trailing-data.st",
            "{\"w\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
            0, data, 32);
    /* Malformed: each must be refused. */
    st_seed("overlap.st",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            0, data, 12);
    st_seed("offsets-past-end.st",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],"
            "\"data_offsets\":[0,16]}}", 0, data, 8);
    st_seed("wrong-size.st",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
            0, data, 8);
    st_seed("offsets-reversed.st",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}",
            0, data, 8);
    st_seed("unknown-dtype.st",
            "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],"
            "\"data_offsets\":[0,1]}}", 0, data, 1);
    st_seed("nine-dims.st",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
            "\"data_offsets\":[0,1]}}", 0, data, 1);
    st_seed("negative-shape.st",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}",
            0, data, 1);
    st_seed("huge-shape.st",
            "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
            "\"data_offsets\":[0,0]}}", 0, data, 0);
    st_seed("float-offsets.st",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
            "\"data_offsets\":[0.0,1]}}", 0, data, 1);
    st_seed("duplicate-key.st",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
            0, data, 2);
    st_seed("not-an-object.st", "[1,2,3]", 0, NULL, 0);
    st_seed("tensor-not-object.st", "{\"w\":7}", 0, NULL, 0);
    st_seed("bad-json.st", "{\"w\":{\"dtype\":", 0, NULL, 0);
    uint8_t big_len[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                           '{', '}', ' ', ' '};
    write_seed("safetensors", "header-length-huge.st", big_len,
               sizeof big_len);
    write_seed("safetensors", "short.st", "\x02\0\0\0", 4);
}

/* ---- tokenizer ---------------------------------------------------------- */

static const struct {
    const char *name;
    const char *text;
    size_t len;
} texts[] = {
#define SEED(name, lit) {name, lit, sizeof lit - 1}
    /* From tests/ref/texts.json (index in the name). */
    SEED("text-000", "Hello world"),
    SEED("text-003", "Hello, world!"),
    SEED("text-027", "Q: What is the capital of France\077\012A: Paris."),
    SEED("text-039", "well\342\200\220known (with U+2010 hyphen)"),
    SEED("text-083", "\303\211COLE \303\251cole \303\211cole"),
    SEED("text-085",
         "\316\243\316\237\316\246\316\231\316\221 \317\203\316\277\317\206"
         "\316\257\316\261 \316\243\316\277\317\206\316\257\316\261"),
    SEED("text-087", "caf\303\251"),
    SEED("text-094", "\304\260stanbul"),
    SEED("text-095", "stra\303\237e"),
    SEED("text-103",
         "co\303\266perate, re\303\253lect, na\303\257vet\303\251"),
    SEED("text-106", "\304\260\304\261 I\304\261 i\304\260 \304\261I"),
    SEED("text-108", "\307\205emal \307\210ubljana \307\213ego"),
    SEED("text-109", "cafe\314\201 (decomposed e + combining acute)"),
    SEED("text-110",
         "e\314\201\314\202\314\203\314\204 stacked combining marks"),
    SEED("text-111", "\314\201leading combining mark"),
    SEED("text-112",
         "\357\274\241\357\275\202\357\275\203 \357\254\201 \357\254\202 "
         "\357\254\200 \357\254\203 ligatures"),
    SEED("text-113",
         "\342\205\253 \342\205\273 \342\221\240 \342\221\263 \302\275 \302"
         "\276 \302\262 \302\263"),
    SEED("text-121",
         "Ti\341\272\277ng Vi\341\273\207t c\303\263 nhi\341\273\201u d\341"
         "\272\245u: \341\272\257 \341\272\261 \341\272\263 \341\272\265 "
         "\341\272\267 \341\272\245 \341\272\247 \341\272\251 \341\272\253 "
         "\341\272\255 \341\272\277 \341\273\201 \341\273\203 \341\273\205 "
         "\341\273\207 \341\273\221 \341\273\223 \341\273\225 \341\273\227 "
         "\341\273\231 \341\273\233 \341\273\235 \341\273\237 \341\273\241 "
         "\341\273\243 \341\273\251 \341\273\253 \341\273\255 \341\273\257 "
         "\341\273\261"),
    SEED("text-123", "Ti\303\252\314\201ng Vie\314\243\314\202t (decomposed)"),
    SEED("text-132", "\316\237\316\224\316\237\316\243"),
    SEED("text-137",
         "\316\206\316\210\316\211\316\212\316\214\316\216\316\217 \316\252"
         "\316\253 \316\220\316\260"),
    SEED("text-146",
         "\330\247\331\216\331\204\331\222\330\271\331\216\330\261\331\216"
         "\330\250\331\220\331\212\331\216\331\221\330\251\331\217 \331\205"
         "\330\271 \330\247\331\204\330\252\330\264\331\203\331\212\331\204"),
    SEED("text-150",
         "\327\251\326\270\327\201\327\234\327\225\326\271\327\235 \327\242"
         "\327\225\326\271\327\234\326\270\327\235"),
    SEED("text-154",
         "\340\244\225\340\245\215\340\244\267\340\244\244\340\245\215\340"
         "\244\260\340\244\277\340\244\257 \340\244\234\340\245\215\340\244"
         "\236\340\244\276\340\244\250 \340\244\266\340\245\215\340\244\260"
         "\340\245\200"),
    SEED("text-158",
         "\340\270\234\340\270\271\340\271\211\340\271\203\340\270\253\340"
         "\270\215\340\271\210 \340\270\234\340\270\271\340\271\211\340\270"
         "\253\340\270\215\340\270\264\340\270\207 \340\270\231\340\271\211"
         "\340\270\263"),
    SEED("text-168",
         "\341\200\273\341\200\231\341\200\224\341\200\271\341\200\231\341"
         "\200\254"),
    SEED("text-171",
         "\360\223\200\200\360\223\201\220\360\223\202\200 hieroglyphs"),
    SEED("text-172",
         "\344\272\272\344\272\272\347\224\237\350\200\214\350\207\252\347"
         "\224\261\357\274\214\345\234\250\345\260\212\344\270\245\345\222"
         "\214\346\235\203\345\210\251\344\270\212\344\270\200\345\276\213"
         "\345\271\263\347\255\211\343\200\202"),
    SEED("text-176",
         "\343\201\231\343\201\271\343\201\246\343\201\256\344\272\272\351"
         "\226\223\343\201\257\343\200\201\347\224\237\343\201\276\343\202"
         "\214\343\201\252\343\201\214\343\202\211\343\201\253\343\201\227"
         "\343\201\246\350\207\252\347\224\261\343\201\247\343\201\202\343"
         "\202\212\343\200\201\343\201\213\343\201\244\343\200\201\345\260"
         "\212\345\216\263\343\201\250\346\250\251\345\210\251\343\201\250"
         "\343\201\253\343\201\244\343\201\204\343\201\246\345\271\263\347"
         "\255\211\343\201\247\343\201\202\343\202\213\343\200\202"),
    SEED("text-179",
         "\357\275\266\357\276\200\357\275\266\357\276\205\345\215\212\350"
         "\247\222"),
    SEED("text-184",
         "\343\204\261\343\204\264\343\204\267 \343\205\217\343\205\221\343"
         "\205\223 (compatibility jamo)"),
    SEED("text-185", "\341\204\200\341\205\241\341\206\250 (conjoining jamo)"),
    SEED("text-187",
         "\357\274\246\357\275\225\357\275\214\357\275\214\357\275\227\357"
         "\275\211\357\275\204\357\275\224\357\275\210\343\200\200\357\275"
         "\206\357\275\217\357\275\222\357\275\215\357\275\223\357\274\232"
         "\357\274\241\357\274\242\357\274\243\357\274\221\357\274\222\357"
         "\274\223\357\274\201"),
    SEED("text-191",
         "\343\220\200\343\220\201 \360\240\200\200\360\240\200\201 \360\252"
         "\234\200 CJK extensions"),
    SEED("text-192",
         "\350\261\210 \346\233\264 \350\273\212 CJK compatibility ideograph"
         "s"),
    SEED("text-201", "\360\237\221\215\360\237\217\275"),
    SEED("text-209",
         "\360\237\221\250\342\200\215\360\237\221\251\342\200\215\360\237"
         "\221\247\342\200\215\360\237\221\246"),
    SEED("text-215",
         "\360\237\217\264\363\240\201\247\363\240\201\242\363\240\201\263"
         "\363\240\201\243\363\240\201\264\363\240\201\277 scotland"),
    SEED("text-216",
         "1\357\270\217\342\203\2432\357\270\217\342\203\2433\357\270\217"
         "\342\203\243 #\357\270\217\342\203\243"),
    SEED("text-226",
         "$100 \342\202\254200 \302\243300 \302\245400 \342\202\271500 \342"
         "\202\251600 \342\202\275700 \342\202\277800 \302\242 \342\202\253 "
         "\342\202\252 \342\202\272"),
    SEED("text-232",
         "\360\235\220\200\360\235\220\201\360\235\220\202 \360\235\222\234"
         "\342\204\254\360\235\222\236 \360\235\224\270\360\235\224\271\342"
         "\204\202 mathematical alphanumerics"),
    SEED("text-244", "\342\227\214\314\201 dotted circle"),
    SEED("text-245", "\000"),
    SEED("text-246", "\357\277\275\357\277\275"),
    SEED("text-249", "\357\273\277"),
    SEED("text-251", "\001\002\003"),
    SEED("text-253", "\302\205"),
    SEED("text-255", "\363\240\202\200"),
    SEED("text-259", "hello\000world"),
    SEED("text-267", "soft\302\255hyphen"),
    SEED("text-276", "hello\015\012world"),
    SEED("text-280", "hello\343\200\200world"),
    SEED("text-287",
         "\342\200\203em\342\200\202en\342\200\211thin\342\200\212hair\342"
         "\200\257nnbsp\342\201\237mmsp"),
    SEED("text-294",
         "\342\200\213\342\200\214\342\200\215\342\201\240\357\273\277"),
    SEED("text-297", "\314\201\314\202"),
    SEED("text-299",
         "bidi \342\200\252embed\342\200\254 \342\201\246isolate\342\201\251"),
    SEED("text-302", "\034\035\036\037separators"),
    SEED("text-303", "nul\000in\000the\000middle"),
    SEED("text-304", "\330\200\330\201 arabic number sign"),
    SEED("text-337",
         "#include <stdio.h>\012\012static inline float relu(float x) { retu"
         "rn x > 0.0f \077 x : 0.0f; }"),
    SEED("text-353", "!@#$%^&*()_+-=[]{}|;':\042,./<>\077`~"),
    SEED("text-369",
         "\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303\251"
         "\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303\251"
         "\303\251\303\251\303\251\303\251\303\251"),
    SEED("text-377", "[CLS]"),
    SEED("text-382", "What is the [MASK] of France\077"),
    SEED("text-384", "x[CLS]y"),
    SEED("text-386", "[ MASK ]"),
    SEED("text-387", "[MASK][MASK]"),
    SEED("text-393",
         "pneumonoultramicroscopicsilicovolcanoconiosispneumonoultramicrosco"
         "picsilicovolcanoconiosispneumonoultramicroscopicsilicovolcanoconio"
         "sispneumonoultramicroscopicsilicovolcanoconiosispneumonoultramicro"
         "scopicsilicovolcanoconiosispneumonoultramicroscopics"),
    SEED("text-400",
         "e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e\314\201e"
         "\314\201e\314\201"),
    SEED("text-403",
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260\304\260\304\260\304\260\304\260"
         "\304\260\304\260\304\260\304\260"),
    SEED("text-405",
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237\303\237\303\237\303\237\303\237"
         "\303\237\303\237\303\237\303\237"),
    SEED("text-412",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
         "bbbb"),
    /* Made here: invalid UTF-8 of every kind the validator names, and
     * edge cases of the normaliser. */
    SEED("empty", ""),
    SEED("invalid-continuation", "\200abc"),
    SEED("invalid-overlong-2", "\300\257"),
    SEED("invalid-overlong-3", "\340\200\257"),
    SEED("invalid-overlong-4", "\360\200\200\257"),
    SEED("invalid-surrogate", "ab\355\240\200"),
    SEED("invalid-above-10ffff", "\364\220\200\200"),
    SEED("invalid-truncated", "abc\342\202"),
    SEED("invalid-f5", "\365\200\200\200"),
    SEED("invalid-ff", "hello \377 world"),
    SEED("invalid-after-ascii-run", "abcdefghijklmnop\303"),
    SEED("nul-bytes", "a\0b\0[SEP]\0"),
    SEED("whitespace-only", " \t\n\r\343\200\200"),
    SEED("controls-only", "\001\002\177"),
    SEED("marks-reordered", "a\314\201\314\243\314\201\314\243 b"),
    SEED("marks-first-in-decomposition",
         "a\340\275\263\340\275\265\340\276\201"),
    SEED("marks-u0344", "x\315\204y"),
    SEED("hangul-and-u1e09", "\352\260\201 \341\270\211 \316\220"),
    SEED("cjk-inside-word", "abc\344\270\255def\360\240\200\200g"),
    SEED("specials-adjacent", "[CLS][SEP][PAD][UNK][MASK]"),
    SEED("specials-nested", "[MAS[MASK]K] [[SEP]] [SEP"),
    SEED("mark-after-special", "[SEP]\314\201x"),
#undef SEED
};

static void seed_tokenizer(void)
{
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        write_seed("tokenizer", texts[i].name, texts[i].text, texts[i].len);
    /* Long inputs, built rather than spelled out. */
    buf b = {0};
    for (int i = 0; i < 101; i++)
        put_u8(&b, 'a');
    write_seed("tokenizer", "word-101-chars", b.p, b.len);
    b.len = 0;
    put_u8(&b, 'e');
    for (int i = 0; i < 40; i++) /* more marks than the stack holds */
        put(&b, "\314\201", 2);
    write_seed("tokenizer", "marks-40", b.p, b.len);
    b.len = 0;
    for (int i = 0; i < 60; i++) /* lowercases to 120 characters */
        put(&b, "\304\260", 2);
    write_seed("tokenizer", "dotted-I-60", b.p, b.len);
    b.len = 0;
    for (int i = 0; i < 130; i++)
        put(&b, "\303\251", 2);
    write_seed("tokenizer", "accented-word-130", b.p, b.len);
    free(b.p);
}

/* ---- office (DOCX, ODT) and PDF tool output ------------------------------ */

/* A zip of name/content pairs, as written by libzip, prefixed with the
 * format byte of fuzz_office (0: DOCX, 1: ODT). */
static void write_zip_seed(const char *name, int odt, const char *const *files,
                           size_t n, int truncate)
{
    char path[] = "/tmp/lode-seed-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp");
    close(fd);
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, NULL);
    if (!z)
        die("zip_open");
    for (size_t i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(z, files[2 * i + 1],
                                              strlen(files[2 * i + 1]), 0);
        zip_int64_t idx = src ? zip_file_add(z, files[2 * i], src,
                                             ZIP_FL_OVERWRITE) : -1;
        /* a fixed time, so the seeds are the same on every run */
        if (idx < 0 || zip_file_set_mtime(z, (zip_uint64_t)idx, 946684800, 0))
            die("zip_file_add");
    }
    if (zip_close(z) != 0)
        die("zip_close");
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    buf b = {0};
    put_u8(&b, (uint8_t)odt);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        put(&b, chunk, got);
    fclose(f);
    unlink(path);
    write_seed("office", name, b.p, truncate ? b.len / 2 : b.len);
    free(b.p);
}

#define SEED_W "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""
#define SEED_ODF "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" " \
    "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" "               \
    "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\""

static void seed_office(void)
{
    const char *docx[] = {
        "word/document.xml",
        "<w:document " SEED_W "><w:body>"
        "<w:p><w:pPr><w:pStyle w:val=\"Title\"/></w:pPr><w:r><w:t>Handbook</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/></w:pPr><w:r><w:t>Install</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:outlineLvl w:val=\"1\"/></w:pPr><w:r><w:t>Linux</w:t></w:r></w:p>"
        "<w:p><w:r><w:t xml:space=\"preserve\">Needs the </w:t><w:tab/><w:t>firmware</w:t>"
        "<w:br/><w:t>package.</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"0\"/></w:numPr></w:pPr><w:r><w:t>item</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc><w:tc/></w:tr>"
        "<w:tr><w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>nested</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>"
        "<mc:AlternateContent xmlns:mc=\"m\"><mc:Choice><w:t>c</w:t></mc:Choice>"
        "<mc:Fallback><w:t>f</w:t></mc:Fallback></mc:AlternateContent>"
        "</w:body></w:document>",
        "word/styles.xml",
        "<w:styles " SEED_W "><w:style w:type=\"paragraph\" w:styleId=\"Title\">"
        "<w:name w:val=\"Title\"/></w:style><w:style w:type=\"paragraph\" "
        "w:styleId=\"Heading1\"><w:name w:val=\"heading 1\"/><w:basedOn w:val=\"Heading1\"/>"
        "</w:style></w:styles>",
        "docProps/core.xml",
        "<cp:coreProperties xmlns:cp=\"c\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
        "<dc:title>Handbook</dc:title></cp:coreProperties>",
    };
    write_zip_seed("handbook.docx", 0, docx, 3, 0);
    write_zip_seed("truncated.docx", 0, docx, 3, 1);
    const char *odt[] = {
        "content.xml",
        "<office:document-content " SEED_ODF "><office:body><office:text>"
        "<text:p text:style-name=\"Title\">Handbook</text:p>"
        "<text:h text:outline-level=\"1\">Install</text:h>"
        "<text:h text:outline-level=\"9\">Deep <text:span>heading</text:span></text:h>"
        "<text:p>one<text:s text:c=\"2\"/>two<text:tab/>three<text:line-break/>four"
        "<text:note><text:note-body><text:p>note</text:p></text:note-body></text:note></text:p>"
        "<text:list><text:list-item><text:p>x</text:p><text:list><text:list-item>"
        "<text:p>y</text:p></text:list-item></text:list></text:list-item></text:list>"
        "<table:table><table:table-row><table:table-cell><text:p>1</text:p>"
        "</table:table-cell><table:covered-table-cell/><table:table-cell/>"
        "</table:table-row></table:table>"
        "</office:text></office:body></office:document-content>",
        "meta.xml",
        "<office:document-meta " SEED_ODF " xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
        "<office:meta><dc:title>Handbook</dc:title></office:meta></office:document-meta>",
    };
    write_zip_seed("handbook.odt", 1, odt, 2, 0);
    write_zip_seed("truncated.odt", 1, odt, 2, 1);
    const char *bad_xml[] = {"content.xml", "<office:document-content><text:p>open"};
    write_zip_seed("bad-xml.odt", 1, bad_xml, 1, 0);
    const char *no_part[] = {"mimetype", "application/vnd.oasis.opendocument.text"};
    write_zip_seed("no-content.odt", 1, no_part, 1, 0);
}

static void seed_pdf(void)
{
    static const char three_pages[] =
        "Handbook\n\nThis handbook explains the gateway.\n\n\f\n"
        "Install\nLinux\nOn Linux the gateway needs the firmware.\n\n\f\n"
        "Usage\nOpen the dashboard.\n\n\f\n"
        "\0"
        "-\t\"Install\"\t#page=2&zoom=100,0,0\n"
        "|\t\t\"Linux\"\t#page=2&zoom=100,0,0\n"
        "|\t\"Usage\"\t#page=3&zoom=100,0,0\n"
        "|\t\"Not on the page \\\"quoted\\\" \\x41\"\t#page=1\n"
        "|\t\"Beyond\"\t#page=9\n";
    write_seed("pdf", "three-pages-outline", three_pages, sizeof three_pages - 1);
    static const char empty_pages[] = "\f\n\f\n  \n\f\nlast page only\n\f\n";
    write_seed("pdf", "empty-pages", empty_pages, sizeof empty_pages - 1);
    static const char bad_utf8[] = "caf\xc3 \xff\xfe text\f\n\xe2\x82\f\n\0"
                                   "-\t\"caf\xc3\"\t#page=1\n+\t\"\"\t#page=2\n";
    write_seed("pdf", "bad-utf8", bad_utf8, sizeof bad_utf8 - 1);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        root = argv[1];
    seed_gguf_by_hand();
    seed_gguf_writer();
    seed_models();
    seed_safetensors();
    seed_tokenizer();
    seed_office();
    seed_pdf();
    printf("make_seeds: %d seeds written under %s\n", n_written, root);
    return 0;
}
