/* fuzz_tokenizer.c - libFuzzer driver for the WordPiece tokenizer
 * (src/tokenizer.c): arbitrary bytes as user text.
 *
 * The real vocabulary (models/all-MiniLM-L6-v2/vocab.txt, fetched by
 * `make model`; LODE_FUZZ_VOCAB overrides the path) is loaded once with
 * several option sets (lowercase on and off, accents stripped or kept or
 * following lowercase, CJK splitting and text cleaning off).  Each input is
 * encoded with the default options and with one other set chosen by its
 * first byte, first untruncated, then with several max_tokens values, with
 * and without n_full and offsets, and checked:
 *   - rc is 0, or LODE_EUTF8 exactly when the bytes are not UTF-8 (an
 *     independent validator below decides);
 *   - ids[0] is [CLS], the last id [SEP], 2 <= n_ids <= max_tokens,
 *     n_full >= n_ids, n_ids == min(max_tokens, n_full);
 *   - every id is in the vocabulary, every offset pair lies in [0, len]
 *     with start <= end ([CLS] and [SEP] get 0, 0);
 *   - a truncated encoding is a prefix of the full one, offsets included,
 *     whether or not the caller asked for n_full;
 * and tok_words() reports words with offsets inside the text.
 *
 * Seeds: fuzz/corpus/tokenizer/ (written by fuzz/make_seeds.c). */
#include <string.h>

#include "fuzz.h"
#include "tokenizer.h"

static const tok_options option_sets[] = {
    /* lowercase, strip_accents, chinese_chars, clean_text */
    {1, -1, 1, 1}, /* BertTokenizerFast's defaults (all-MiniLM-L6-v2) */
    {0, -1, 1, 1}, /* cased: accents kept because lowercase is off */
    {1, 0, 1, 1},  /* lowercase, accents kept */
    {0, 1, 1, 1},  /* cased, accents stripped */
    {1, -1, 0, 1}, /* CJK ideographs not split */
    {1, -1, 1, 0}, /* text not cleaned: controls reach the pre-tokenizer */
    {0, 0, 0, 0},  /* everything off */
};
#define N_SETS (sizeof option_sets / sizeof option_sets[0])

static tok_tokenizer *toks[N_SETS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < N_SETS; i++) {
        lode_error err = {0};
        if (tok_load_vocab_txt(fuzz_vocab_path(), &option_sets[i], &toks[i],
                               &err)) {
            fprintf(stderr, "fuzz_tokenizer: %s\n" FUZZ_VOCAB_HINT "\n",
                    err.message);
            exit(1);
        }
    }
    return 0;
}

/* RFC 3629 UTF-8, written independently of the tokenizer's validator. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        } else if ((s[i] & 0xE0) == 0xC0) {
            k = 2;
            cp = s[i] & 0x1F;
        } else if ((s[i] & 0xF0) == 0xE0) {
            k = 3;
            cp = s[i] & 0x0F;
        } else if ((s[i] & 0xF8) == 0xF0) {
            k = 4;
            cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (n - i < k)
            return 0;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k;
    }
    return 1;
}

static void check_encoding(const tok_tokenizer *tok, size_t len,
                           int max_tokens, const int32_t *ids, int n_ids,
                           const int32_t *offsets)
{
    int vocab = tok_vocab_size(tok);
    FUZZ_CHECK(n_ids >= 2 && n_ids <= max_tokens, "n_ids %d of %d", n_ids,
               max_tokens);
    FUZZ_CHECK(ids[0] == tok_cls_id(tok), "ids[0] = %d", ids[0]);
    FUZZ_CHECK(ids[n_ids - 1] == tok_sep_id(tok), "last id = %d",
               ids[n_ids - 1]);
    for (int i = 0; i < n_ids; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < vocab, "id %d = %d", i, ids[i]);
    if (!offsets)
        return;
    FUZZ_CHECK(offsets[0] == 0 && offsets[1] == 0 &&
                   offsets[2 * (n_ids - 1)] == 0 &&
                   offsets[2 * (n_ids - 1) + 1] == 0,
               "[CLS]/[SEP] offsets");
    for (int i = 1; i < n_ids - 1; i++) {
        int32_t s = offsets[2 * i], e = offsets[2 * i + 1];
        FUZZ_CHECK(s >= 0 && s <= e && (size_t)e <= len,
                   "token %d offsets [%d, %d) outside [0, %zu]", i, s, e,
                   len);
    }
}

struct words_ctx {
    size_t len;
    int n;
};

static int on_word(void *ctx, const char *word, size_t len, size_t start,
                   size_t end)
{
    struct words_ctx *c = ctx;
    FUZZ_CHECK(start <= end && end <= c->len, "word [%zu, %zu) of %zu", start,
               end, c->len);
    FUZZ_CHECK(word || len == 0, "NULL word of %zu bytes", len);
    if (word)
        fuzz_touch(word, len);
    c->n++;
    return 0;
}

/* Encode text with max_tokens and compare with the full encoding. */
static void encode_truncated(const tok_tokenizer *tok, const char *text,
                             size_t len, int max_tokens, int want_full,
                             int want_offsets, const int32_t *full_ids,
                             const int32_t *full_offsets, int n_full)
{
    int32_t *ids = malloc((size_t)max_tokens * sizeof *ids);
    int32_t *offsets = want_offsets
                           ? malloc((size_t)max_tokens * 2 * sizeof *offsets)
                           : NULL;
    FUZZ_CHECK(ids && (offsets || !want_offsets), "out of memory");
    int n_ids = -1, got_full = -1;
    lode_error err = {0};
    int rc = tok_encode(tok, text, len, max_tokens, ids, &n_ids,
                        want_full ? &got_full : NULL, offsets, &err);
    FUZZ_CHECK(rc == 0, "max_tokens %d failed (%d): %s", max_tokens, rc,
               err.message);
    check_encoding(tok, len, max_tokens, ids, n_ids, offsets);
    int want_n = n_full < max_tokens ? n_full : max_tokens;
    FUZZ_CHECK(n_ids == want_n, "max_tokens %d gave %d ids, want %d",
               max_tokens, n_ids, want_n);
    if (want_full)
        FUZZ_CHECK(got_full == n_full, "n_full %d, untruncated %d", got_full,
                   n_full);
    /* The tokens kept are the first ones of the full encoding. */
    for (int i = 1; i < n_ids - 1; i++) {
        FUZZ_CHECK(ids[i] == full_ids[i], "max_tokens %d: id %d is %d, "
                   "untruncated %d", max_tokens, i, ids[i], full_ids[i]);
        if (offsets)
            FUZZ_CHECK(offsets[2 * i] == full_offsets[2 * i] &&
                           offsets[2 * i + 1] == full_offsets[2 * i + 1],
                       "max_tokens %d: offsets of token %d differ",
                       max_tokens, i);
    }
    free(ids);
    free(offsets);
}

static void run_one(const tok_tokenizer *tok, const char *text, size_t len,
                    int valid)
{
    int32_t probe[2];
    int n_ids = -1, n_full = -1;
    lode_error err = {0};
    int rc = tok_encode(tok, text, len, 2, probe, &n_ids, &n_full, NULL, &err);
    if (!valid) {
        FUZZ_CHECK(rc == LODE_EUTF8 && err.code == rc && err.message[0],
                   "invalid UTF-8 gave %d", rc);
        struct words_ctx c = {len, 0};
        FUZZ_CHECK(tok_words(tok, text, len, on_word, &c, NULL) ==
                       LODE_EUTF8 && c.n == 0,
                   "tok_words on invalid UTF-8");
        return;
    }
    FUZZ_CHECK(rc == 0, "valid UTF-8 gave %d: %s", rc, err.message);
    check_encoding(tok, len, 2, probe, n_ids, NULL);
    FUZZ_CHECK(n_full >= n_ids, "n_full %d < n_ids %d", n_full, n_ids);

    /* The whole encoding. */
    int32_t *ids = malloc((size_t)n_full * sizeof *ids);
    int32_t *offsets = malloc((size_t)n_full * 2 * sizeof *offsets);
    FUZZ_CHECK(ids && offsets, "out of memory");
    int full_again = -1;
    rc = tok_encode(tok, text, len, n_full, ids, &n_ids, &full_again, offsets,
                    &err);
    FUZZ_CHECK(rc == 0 && n_ids == n_full && full_again == n_full,
               "untruncated: rc %d, %d ids, n_full %d then %d", rc, n_ids,
               n_full, full_again);
    check_encoding(tok, len, n_full, ids, n_ids, offsets);

    const int limits[] = {2, 3, 5, n_full / 2 + 1, n_full - 1, n_full + 1};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (limits[i] >= 2)
            encode_truncated(tok, text, len, limits[i], (int)(i & 1),
                             (int)(i % 3 != 2), ids, offsets, n_full);

    struct words_ctx c = {len, 0};
    FUZZ_CHECK(tok_words(tok, text, len, on_word, &c, NULL) == 0,
               "tok_words failed on valid text");
    /* Every word (or special token) gives at least one id. */
    FUZZ_CHECK((c.n == 0) == (n_full == 2) && c.n <= n_full - 2,
               "%d words but %d tokens", c.n, n_full - 2);
    free(ids);
    free(offsets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so a read past `size` is caught even for the
     * zero-length input (libFuzzer may pass a non-NULL pointer). */
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    int valid = valid_utf8(data, size);
    /* The default options always, and one other set picked by the first
     * byte, so the fuzzer can steer between them; all seven every time
     * would be several times slower per input. */
    run_one(toks[0], text, size, valid);
    if (size > 0)
        run_one(toks[1 + data[0] % (N_SETS - 1)], text, size, valid);
    free(text);
    return 0;
}
