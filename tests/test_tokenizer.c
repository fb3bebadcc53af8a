/* test_tokenizer.c - tests for src/tokenizer.c, through the public API.
 *
 * The heavy evidence is the comparison with Hugging Face:
 *   - every item of tests/ref/{minilm,tiny-cased-cls,tiny-uncased-max}.json
 *     (ids and n_full as sentence-transformers produced them);
 *   - every Unicode code point under four option sets, hashed and compared
 *     with the hash scripts/gen_tokenizer_tables.py measured from the
 *     `tokenizers` library (catches a utf8proc that drifts from Rust).
 * tests/tokenizer_compare.py goes further (millions of random strings,
 * offsets too) but needs the Python reference venv.
 *
 * The rest are hand-written cases: offsets, invalid UTF-8, long words,
 * truncation, special tokens in text, vocab.txt and tokenizer.json edge
 * cases.  Run from the repository root.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "tokenizer.h"
#include "tokenizer_tables.h" /* TOK_TAB_REFERENCE_HASH */

#define MINILM_DIR "models/all-MiniLM-L6-v2"

static char tmpdir[] = "/tmp/lode-test-tokenizer-XXXXXX";

/* ------------------------------------------------------------------ */

static int encode(const tok_tokenizer *tok, const char *text, int max,
                  int32_t *ids, int *n_full, int32_t *offsets)
{
    int n = -1;
    lode_error err;
    int rc = tok_encode(tok, text, strlen(text), max, ids, &n, n_full,
                        offsets, &err);
    if (rc) {
        fprintf(stderr, "tok_encode(%s): %s\n", text, err.message);
        return rc;
    }
    return n;
}

/* ids of text without [CLS]/[SEP], as token strings joined by ' ' */
static const char *pieces(const tok_tokenizer *tok, const char *text)
{
    static char buf[4096];
    int32_t ids[512];
    int n = encode(tok, text, 512, ids, NULL, NULL);
    buf[0] = '\0';
    for (int i = 1; i < n - 1; i++) {
        if (i > 1)
            strcat(buf, " ");
        strncat(buf, tok_token(tok, ids[i]), sizeof buf - strlen(buf) - 8);
    }
    return buf;
}

static char *write_tmp(const char *name, const char *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

/* ------------------------------------------------------------------ */
/* Reference files                                                     */

static void check_reference(const char *ref_path, const tok_tokenizer *tok,
                            const char *label)
{
    json_error_t jerr;
    json_t *root = json_load_file(ref_path, JSON_ALLOW_NUL, &jerr);
    CHECK(root != NULL, "%s: cannot load %s: %s", label, ref_path, jerr.text);
    if (!root)
        return;
    int max = (int)json_integer_value(json_object_get(root, "max_seq_length"));
    json_t *items = json_object_get(root, "items");
    CHECK(max >= 2 && json_array_size(items) > 0, "%s: bad reference file",
          label);
    int32_t *ids = malloc(sizeof *ids * (size_t)(max > 2 ? max : 2));
    size_t i, bad = 0;
    json_t *item;
    json_array_foreach(items, i, item) {
        json_t *text = json_object_get(item, "text");
        json_t *want = json_object_get(item, "ids");
        int want_full = (int)json_integer_value(json_object_get(item, "n_full"));
        int n = 0, n_full = 0;
        lode_error err;
        int rc = tok_encode(tok, json_string_value(text),
                            json_string_length(text), max, ids, &n, &n_full,
                            NULL, &err);
        int same = rc == 0 && (size_t)n == json_array_size(want) &&
                   n_full == want_full;
        for (int k = 0; same && k < n; k++)
            same = ids[k] == json_integer_value(json_array_get(want, (size_t)k));
        if (!same && bad++ < 5) {
            fprintf(stderr, "%s item %zu %s: rc %d n %d (want %zu) n_full %d "
                    "(want %d)\n  got ", label, i, json_string_value(text),
                    rc, n, json_array_size(want), n_full, want_full);
            for (int k = 0; k < n; k++)
                fprintf(stderr, "%d ", ids[k]);
            fprintf(stderr, "\n");
        }
    }
    CHECK(bad == 0, "%s: %zu of %zu reference items differ", label, bad,
          json_array_size(items));
    free(ids);
    json_decref(root);
}

static void test_references(void)
{
    tok_tokenizer *tok = NULL;
    lode_error err;
    tok_options o = tok_default_options();

    /* all-MiniLM-L6-v2: uncased defaults, max_seq_length 256; both files. */
    int rc = tok_load_vocab_txt(MINILM_DIR "/vocab.txt", &o, &tok, &err);
    CHECK(rc == 0, "load minilm vocab.txt: %s", err.message);
    if (!rc) {
        check_reference("tests/ref/minilm.json", tok, "minilm vocab.txt");
        tok_free(tok);
    }
    rc = tok_options_from_tokenizer_json(MINILM_DIR "/tokenizer.json", &o,
                                         &err);
    CHECK(rc == 0 && o.lowercase == 1 && o.strip_accents == -1 &&
              o.chinese_chars == 1 && o.clean_text == 1,
          "minilm options from tokenizer.json: %d %s", rc, err.message);
    rc = tok_load_tokenizer_json(MINILM_DIR "/tokenizer.json", &o, &tok, &err);
    CHECK(rc == 0, "load minilm tokenizer.json: %s", err.message);
    if (!rc) {
        CHECK(tok_vocab_size(tok) == 30522, "vocab size %d",
              tok_vocab_size(tok));
        check_reference("tests/ref/minilm.json", tok, "minilm tokenizer.json");
        tok_free(tok);
    }

    /* tiny-cased-cls: vocab.txt, do_lower_case false, strip_accents false */
    tok_options cased = {.lowercase = 0, .strip_accents = 0,
                         .chinese_chars = 1, .clean_text = 1};
    rc = tok_load_vocab_txt("tests/ref/tiny-cased-cls/vocab.txt", &cased,
                            &tok, &err);
    CHECK(rc == 0, "load tiny-cased-cls: %s", err.message);
    if (!rc) {
        check_reference("tests/ref/tiny-cased-cls.json", tok,
                        "tiny-cased-cls");
        tok_free(tok);
    }

    /* tiny-uncased-max: vocabulary only in tokenizer.json */
    const char *tj = "tests/ref/tiny-uncased-max/tokenizer.json";
    rc = tok_options_from_tokenizer_json(tj, &o, &err);
    CHECK(rc == 0, "tiny-uncased-max options: %s", err.message);
    rc = tok_load_tokenizer_json(tj, &o, &tok, &err);
    CHECK(rc == 0, "load tiny-uncased-max: %s", err.message);
    if (!rc) {
        check_reference("tests/ref/tiny-uncased-max.json", tok,
                        "tiny-uncased-max");
        tok_free(tok);
    }
}

/* ------------------------------------------------------------------ */
/* Every code point against the hash measured from HF                  */

struct hash_ctx {
    uint64_t h;
    int n_words;
};

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001B3ULL;
    return h;
}

static int hash_word(void *ctx, const char *w, size_t len, size_t start,
                     size_t end)
{
    struct hash_ctx *c = ctx;
    char buf[64];
    (void)start;
    (void)end;
    if (c->n_words++)
        c->h = fnv(c->h, "|", 1);
    const unsigned char *s = (const unsigned char *)w;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k;
        if (s[i] < 0x80) {
            cp = s[i];
            k = 1;
        } else if (s[i] < 0xE0) {
            cp = ((uint32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
            k = 2;
        } else if (s[i] < 0xF0) {
            cp = ((uint32_t)(s[i] & 0x0F) << 12) |
                 ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            k = 3;
        } else {
            cp = ((uint32_t)(s[i] & 0x07) << 18) |
                 ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                 ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
            k = 4;
        }
        int n = snprintf(buf, sizeof buf, "%s%X", i ? "," : "", cp);
        c->h = fnv(c->h, buf, (size_t)n);
        i += (size_t)k;
    }
    return 0;
}

static void test_all_code_points(void)
{
    /* The option sets of the generator, in its order. */
    const tok_options sets[4] = {
        {.lowercase = 1, .strip_accents = 1, .chinese_chars = 1, .clean_text = 1},
        {.lowercase = 0, .strip_accents = 0, .chinese_chars = 1, .clean_text = 1},
        {.lowercase = 1, .strip_accents = 0, .chinese_chars = 0, .clean_text = 0},
        {.lowercase = 0, .strip_accents = 1, .chinese_chars = 0, .clean_text = 0},
    };
    static const char *const vocab[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
    for (int s = 0; s < 4; s++) {
        tok_tokenizer *tok;
        lode_error err;
        int rc = tok_create(vocab, 4, &sets[s], &tok, &err);
        CHECK(rc == 0, "tok_create: %s", err.message);
        if (rc)
            continue;
        struct hash_ctx c = {.h = 0xCBF29CE484222325ULL};
        for (uint32_t cp = 0; cp < 0x110000; cp++) {
            if (cp >= 0xD800 && cp <= 0xDFFF)
                continue;
            char text[4], line[16];
            int len;
            if (cp < 0x80) {
                text[0] = (char)cp;
                len = 1;
            } else if (cp < 0x800) {
                text[0] = (char)(0xC0 | (cp >> 6));
                text[1] = (char)(0x80 | (cp & 0x3F));
                len = 2;
            } else if (cp < 0x10000) {
                text[0] = (char)(0xE0 | (cp >> 12));
                text[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                text[2] = (char)(0x80 | (cp & 0x3F));
                len = 3;
            } else {
                text[0] = (char)(0xF0 | (cp >> 18));
                text[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                text[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                text[3] = (char)(0x80 | (cp & 0x3F));
                len = 4;
            }
            int n = snprintf(line, sizeof line, "%X:", cp);
            c.h = fnv(c.h, line, (size_t)n);
            c.n_words = 0;
            rc = tok_words(tok, text, (size_t)len, hash_word, &c, &err);
            if (rc)
                break;
            c.h = fnv(c.h, "\n", 1);
        }
        CHECK(rc == 0, "tok_words: %s", err.message);
        CHECK(c.h == TOK_TAB_REFERENCE_HASH[s],
              "option set %d: per-code-point results differ from HF (hash "
              "%016llX, want %016llX); run tests/tokenizer_compare.py to see "
              "which code points",
              s, (unsigned long long)c.h,
              (unsigned long long)TOK_TAB_REFERENCE_HASH[s]);
        tok_free(tok);
    }
}

/* ------------------------------------------------------------------ */
/* Hand-written cases with the MiniLM vocabulary                       */

static void check_span(const char *text, const int32_t *offsets, int i,
                       const char *want)
{
    int s = offsets[2 * i], e = offsets[2 * i + 1];
    int ok = s >= 0 && e >= s && (size_t)e <= strlen(text) &&
             (size_t)(e - s) == strlen(want) &&
             memcmp(text + s, want, strlen(want)) == 0;
    CHECK(ok, "token %d of \"%s\" spans [%d,%d), want \"%s\"", i, text, s, e,
          want);
}

static void test_minilm_cases(void)
{
    tok_tokenizer *tok;
    lode_error err;
    tok_options o = tok_default_options();
    int rc = tok_load_vocab_txt(MINILM_DIR "/vocab.txt", &o, &tok, &err);
    CHECK(rc == 0, "load: %s", err.message);
    if (rc)
        return;
    int32_t ids[600], offs[1200];
    int n, n_full;

    CHECK(tok_cls_id(tok) == 101 && tok_sep_id(tok) == 102 &&
              tok_pad_id(tok) == 0 && tok_unk_id(tok) == 100,
          "special ids %d %d %d %d", tok_cls_id(tok), tok_sep_id(tok),
          tok_pad_id(tok), tok_unk_id(tok));
    CHECK(tok_lookup(tok, "hello") == 7592, "lookup hello");
    CHECK(tok_lookup(tok, "##s") >= 0 && tok_lookup(tok, "no-such") == -1,
          "lookup");
    CHECK(tok_token(tok, 7592) && !strcmp(tok_token(tok, 7592), "hello") &&
              tok_token(tok, -1) == NULL && tok_token(tok, 30522) == NULL,
          "tok_token");

    /* Offsets point at the original (not normalised) bytes. */
    const char *t = "H\xC3\xA9llo, world";
    n = encode(tok, t, 64, ids, &n_full, offs);
    CHECK(n == 5 && n_full == 5, "n %d n_full %d", n, n_full);
    CHECK(ids[1] == 7592 && ids[2] == 1010 && ids[3] == 2088,
          "ids %d %d %d", ids[1], ids[2], ids[3]);
    check_span(t, offs, 1, "H\xC3\xA9llo");
    check_span(t, offs, 2, ",");
    check_span(t, offs, 3, "world");
    CHECK(offs[0] == 0 && offs[1] == 0 && offs[8] == 0 && offs[9] == 0,
          "[CLS]/[SEP] offsets");

    /* Word pieces, dropped characters, CJK, special tokens in text. */
    t = "unaffable \xE4\xB8\xAD\xE6\x96\x87\x01 [SEP]x";
    n = encode(tok, t, 64, ids, &n_full, offs);
    CHECK(!strcmp(pieces(tok, t), "una ##ffa ##ble \xE4\xB8\xAD \xE6\x96\x87 [SEP] x"),
          "pieces: %s", pieces(tok, t));
    check_span(t, offs, 2, "ffa");
    check_span(t, offs, 4, "\xE4\xB8\xAD");
    check_span(t, offs, 5, "\xE6\x96\x87");
    check_span(t, offs, 6, "[SEP]");
    CHECK(ids[6] == 102, "[SEP] in text is id 102, got %d", ids[6]);
    CHECK(!strcmp(pieces(tok, "[mask] [MASK]"), "[ mask ] [MASK]"),
          "special tokens match case-sensitively: %s",
          pieces(tok, "[mask] [MASK]"));
    CHECK(!strcmp(pieces(tok, "[[SEP]]"), "[ [SEP] ]"), "[[SEP]]: %s",
          pieces(tok, "[[SEP]]"));
    /* U+0130 lowercases to i + U+0307, which strip_accents removes. */
    CHECK(!strcmp(pieces(tok, "\xC4\xB0stanbul"), "istanbul"), "%s",
          pieces(tok, "\xC4\xB0stanbul"));
    /* Unassigned and new code points are kept (and become [UNK]);
     * U+FFFD and format characters are dropped. */
    t = "a \xF0\x9F\xAB\xA0 b\xEF\xBF\xBD\xE2\x80\x8B";
    CHECK(!strcmp(pieces(tok, t), "a [UNK] b"), "%s", pieces(tok, t));

    /* Empty and nothing-left texts give [CLS][SEP]. */
    n = encode(tok, "", 8, ids, &n_full, offs);
    CHECK(n == 2 && n_full == 2 && ids[0] == 101 && ids[1] == 102,
          "empty text: n %d", n);
    n = encode(tok, " \t\x01\xE2\x80\x8B ", 8, ids, &n_full, NULL);
    CHECK(n == 2 && n_full == 2, "blank text: n %d", n);

    /* A word of more than 100 characters is one [UNK]; 100 is fine;
     * stripped accents do not count. */
    char word[400];
    memset(word, 'a', 101);
    word[101] = '\0';
    n = encode(tok, word, 64, ids, &n_full, offs);
    CHECK(n == 3 && ids[1] == 100 && offs[2] == 0 && offs[3] == 101,
          "101 chars: n %d id %d", n, ids[1]);
    word[100] = '\0';
    n = encode(tok, word, 64, ids, &n_full, NULL);
    CHECK(n > 3 && ids[1] != 100, "100 chars: n %d id %d", n, ids[1]);
    memcpy(word + 100, "\xCC\x81", 3); /* + U+0301, stripped */
    n = encode(tok, word, 64, ids, &n_full, NULL);
    CHECK(n > 3 && ids[1] != 100, "100 chars + mark: id %d", ids[1]);
    memcpy(word + 100, "b", 2);
    n = encode(tok, word, 64, ids, &n_full, NULL);
    CHECK(n == 3 && ids[1] == 100, "101 chars again: id %d", ids[1]);

    /* Truncation keeps [SEP]; n_full counts everything. */
    t = "one two three four five six seven";
    n = encode(tok, t, 5, ids, &n_full, offs);
    CHECK(n == 5 && n_full == 9 && ids[0] == 101 && ids[4] == 102,
          "truncate: n %d n_full %d", n, n_full);
    check_span(t, offs, 3, "three");
    CHECK(offs[8] == 0 && offs[9] == 0, "[SEP] offsets after truncation");
    int32_t ids2[5];
    int n2;
    rc = tok_encode(tok, t, strlen(t), 5, ids2, &n2, NULL, NULL, &err);
    CHECK(rc == 0 && n2 == 5 && !memcmp(ids, ids2, sizeof ids2),
          "without n_full: same ids");
    n = encode(tok, t, 2, ids, &n_full, NULL);
    CHECK(n == 2 && n_full == 9 && ids[1] == 102, "max 2: n %d", n);
    rc = tok_encode(tok, t, strlen(t), 1, ids, &n, NULL, NULL, &err);
    CHECK(rc == LODE_EINVAL, "max 1: rc %d", rc);

    /* A long run of combining marks (more than fit without malloc) in
     * non-canonical order. */
    size_t cap = 2 + 1000 * 4 + 2;
    char *marks = malloc(cap);
    size_t len = 0;
    marks[len++] = 'a';
    for (int i = 0; i < 1000; i++) {
        const char *m = i % 2 ? "\xCC\x81" : "\xCC\x96"; /* ccc 230, 220 */
        memcpy(marks + len, m, 2);
        len += 2;
    }
    marks[len++] = 'b';
    marks[len] = '\0';
    n = encode(tok, marks, 8, ids, &n_full, offs);
    CHECK(n == 3 && ids[1] == tok_lookup(tok, "ab") && offs[2] == 0 &&
              offs[3] == (int)len,
          "marks: n %d id %d [%d,%d)", n, ids[1], offs[2], offs[3]);
    free(marks);

    /* Invalid UTF-8: the error names the byte offset. */
    static const struct {
        const char *text;
        size_t offset;
    } bad[] = {
        {"\x80", 0},                 /* stray continuation byte */
        {"ab\xC0\xAF", 2},           /* overlong 2-byte */
        {"a\xE0\x80\xAF", 1},        /* overlong 3-byte */
        {"\xF0\x80\x80\xAF", 0},     /* overlong 4-byte */
        {"xyz\xED\xA0\x80", 3},      /* surrogate */
        {"\xF4\x90\x80\x80", 0},     /* above U+10FFFF */
        {"\xF5\x80\x80\x80", 0},     /* invalid lead byte */
        {"hello \xE2\x82", 6},       /* truncated at end */
        {"\xE2\x82x", 0},            /* truncated in the middle */
        {"abcdefghij\xFF", 10},      /* after the 8-byte ASCII skip */
        {"\xC3\xA9\xC3", 2},         /* truncated after valid text */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64];
        rc = tok_encode(tok, bad[i].text, strlen(bad[i].text), 8, ids, &n,
                        &n_full, offs, &err);
        snprintf(want, sizeof want, "at byte %zu:", bad[i].offset);
        CHECK(rc == LODE_EUTF8 && strstr(err.message, want),
              "bad UTF-8 case %zu: rc %d, message \"%s\"", i, rc,
              rc ? err.message : "");
    }
    /* NUL bytes inside the text are valid UTF-8 (and dropped). */
    rc = tok_encode(tok, "a\0b", 3, 8, ids, &n, &n_full, NULL, &err);
    CHECK(rc == 0 && n == 3 && ids[1] == tok_lookup(tok, "ab"),
          "embedded NUL: rc %d n %d", rc, n);
    tok_free(tok);
}

struct words_ctx {
    char out[256];
};

static int collect_word(void *ctx, const char *w, size_t len, size_t start,
                        size_t end)
{
    struct words_ctx *c = ctx;
    char buf[128];
    snprintf(buf, sizeof buf, "%s%.*s@%zu-%zu", c->out[0] ? " " : "",
             w ? (int)len : 4, w ? w : "LONG", start, end);
    strncat(c->out, buf, sizeof c->out - strlen(c->out) - 1);
    return 0;
}

static void test_words(void)
{
    static const char *const vocab[] = {"[UNK]", "[CLS]", "[SEP]"};
    tok_tokenizer *tok;
    lode_error err;
    tok_options o = tok_default_options();
    int rc = tok_create(vocab, 3, &o, &tok, &err);
    CHECK(rc == 0, "create: %s", err.message);
    if (rc)
        return;
    struct words_ctx c = {{0}};
    char text[200] = "A\xC3\x89, b[SEP] ";
    memset(text + strlen(text), 'x', 101);
    rc = tok_words(tok, text, strlen(text), collect_word, &c, &err);
    CHECK(rc == 0 && !strcmp(c.out, "ae@0-3 ,@3-4 b@5-6 [SEP]@6-11 LONG@12-113"),
          "words: %s", c.out);
    tok_free(tok);
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

static void test_vocab_txt(void)
{
    tok_tokenizer *tok;
    lode_error err;
    tok_options o = tok_default_options();
    /* CRLF, trailing spaces and U+00A0 are trimmed, a duplicate maps to its
     * later line, a blank line keeps its id, no final newline. */
    static const char v[] =
        "[PAD]\n[UNK]\r\n[CLS]\n[SEP]  \n[MASK]\nhello\r\nworld\xC2\xA0\n"
        "foo\rbar\n##s\nhello\n\n##ing\nwalk";
    const char *path = write_tmp("vocab.txt", v, sizeof v - 1);
    int rc = tok_load_vocab_txt(path, &o, &tok, &err);
    CHECK(rc == 0, "load: %s", err.message);
    if (!rc) {
        CHECK(tok_vocab_size(tok) == 13, "size %d", tok_vocab_size(tok));
        CHECK(tok_unk_id(tok) == 1 && tok_cls_id(tok) == 2 &&
                  tok_sep_id(tok) == 3,
              "specials");
        CHECK(tok_lookup(tok, "hello") == 9, "duplicate: later id wins (%d)",
              tok_lookup(tok, "hello"));
        CHECK(tok_lookup(tok, "world") == 6, "U+00A0 trimmed (%d)",
              tok_lookup(tok, "world"));
        CHECK(tok_lookup(tok, "foo\rbar") == 7, "inner CR kept");
        CHECK(tok_lookup(tok, "walk") == 12, "last line without newline");
        CHECK(!strcmp(tok_token(tok, 10), ""), "blank line");
        CHECK(!strcmp(pieces(tok, "Hello worlds walking"),
                      "hello world ##s walk ##ing"),
              "pieces: %s", pieces(tok, "Hello worlds walking"));
        CHECK(!strcmp(pieces(tok, "hellox [MASK]"), "[UNK] [MASK]"),
              "pieces: %s", pieces(tok, "hellox [MASK]"));
        tok_free(tok);
    }

    static const char no_cls[] = "[UNK]\n[SEP]\nfoo\n";
    path = write_tmp("nocls.txt", no_cls, sizeof no_cls - 1);
    rc = tok_load_vocab_txt(path, &o, &tok, &err);
    CHECK(rc == LODE_EFORMAT && strstr(err.message, "[CLS]"),
          "no [CLS]: rc %d %s", rc, err.message);
    static const char bad_utf8[] = "[UNK]\n[CLS]\n[SEP]\nfo\xFFo\n";
    path = write_tmp("bad.txt", bad_utf8, sizeof bad_utf8 - 1);
    rc = tok_load_vocab_txt(path, &o, &tok, &err);
    CHECK(rc == LODE_EUTF8, "bad UTF-8 vocab: rc %d", rc);
    path = write_tmp("empty.txt", "", 0);
    rc = tok_load_vocab_txt(path, &o, &tok, &err);
    CHECK(rc == LODE_EFORMAT, "empty vocab: rc %d", rc);
    rc = tok_load_vocab_txt("/nonexistent/vocab.txt", &o, &tok, &err);
    CHECK(rc == LODE_EIO && tok == NULL, "missing file: rc %d", rc);
}

static void test_tokenizer_json(void)
{
    tok_tokenizer *tok;
    lode_error err;
    tok_options o;
    /* Gaps in the ids, an added token missing from model.vocab, a
     * different unknown token and max_input_chars_per_word. */
    static const char j[] =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"[CLS]\"},"
        " {\"id\": 7, \"content\": \"<x>\", \"normalized\": false}],"
        " \"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": false,"
        "  \"strip_accents\": true, \"clean_text\": true,"
        "  \"handle_chinese_chars\": false},"
        " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
        " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"<unk>\","
        "  \"max_input_chars_per_word\": 5, \"vocab\": {\"[CLS]\": 0,"
        "  \"[SEP]\": 1, \"<unk>\": 3, \"ab\": 4, \"##cd\": 5}}}";
    const char *path = write_tmp("tokenizer.json", j, sizeof j - 1);
    int rc = tok_options_from_tokenizer_json(path, &o, &err);
    CHECK(rc == 0 && o.lowercase == 0 && o.strip_accents == 1 &&
              o.clean_text == 1 && o.chinese_chars == 0,
          "options: rc %d", rc);
    rc = tok_load_tokenizer_json(path, &o, &tok, &err);
    CHECK(rc == 0, "load: %s", err.message);
    if (!rc) {
        CHECK(tok_vocab_size(tok) == 8 && !strcmp(tok_token(tok, 2), "") &&
                  tok_unk_id(tok) == 3 && tok_pad_id(tok) == -1,
              "vocab");
        CHECK(!strcmp(pieces(tok, "abcd<x>ab abcdx abcdab"),
                      "ab ##cd <x> ab <unk> <unk>"),
              "pieces: %s", pieces(tok, "abcd<x>ab abcdx abcdab"));
        tok_free(tok);
    }
    static const char lstrip[] =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"[CLS]\", \"lstrip\": true}],"
        " \"model\": {\"vocab\": {\"[CLS]\": 0, \"[SEP]\": 1, \"[UNK]\": 2}}}";
    path = write_tmp("lstrip.json", lstrip, sizeof lstrip - 1);
    rc = tok_load_tokenizer_json(path, &o, &tok, &err);
    CHECK(rc == LODE_EUNSUPPORTED, "lstrip added token: rc %d", rc);
    static const char bpe[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}";
    path = write_tmp("bpe.json", bpe, sizeof bpe - 1);
    rc = tok_load_tokenizer_json(path, &o, &tok, &err);
    CHECK(rc == LODE_EUNSUPPORTED, "BPE: rc %d", rc);
    rc = tok_options_from_tokenizer_json(path, &o, &err);
    CHECK(rc == LODE_EUNSUPPORTED, "BPE options: rc %d", rc);
    path = write_tmp("broken.json", "{\"model\": ", 10);
    rc = tok_load_tokenizer_json(path, &o, &tok, &err);
    CHECK(rc == LODE_EFORMAT, "broken JSON: rc %d", rc);
}

static void test_cased_options(void)
{
    /* lowercase without strip_accents keeps accents and expands U+0130. */
    static const char *const vocab[] = {"[UNK]", "[CLS]", "[SEP]",
                                        "i\xCC\x87", "\xC3\xA9t\xC3\xA9",
                                        "Caf\xC3\xA9", "caf\xC3\xA9"};
    tok_tokenizer *tok;
    lode_error err;
    tok_options o = {.lowercase = 1, .strip_accents = 0, .chinese_chars = 1,
                     .clean_text = 1};
    int rc = tok_create(vocab, 7, &o, &tok, &err);
    CHECK(rc == 0, "create: %s", err.message);
    if (!rc) {
        CHECK(!strcmp(pieces(tok, "\xC4\xB0 \xC3\x89T\xC3\x89 Caf\xC3\xA9"),
                      "i\xCC\x87 \xC3\xA9t\xC3\xA9 caf\xC3\xA9"),
              "pieces: %s", pieces(tok, "\xC4\xB0 \xC3\x89T\xC3\x89 Caf\xC3\xA9"));
        tok_free(tok);
    }
    o.lowercase = 0;
    rc = tok_create(vocab, 7, &o, &tok, &err);
    if (!rc) {
        CHECK(!strcmp(pieces(tok, "Caf\xC3\xA9 caf\xC3\xA9"),
                      "Caf\xC3\xA9 caf\xC3\xA9"),
              "cased: %s", pieces(tok, "Caf\xC3\xA9 caf\xC3\xA9"));
        tok_free(tok);
    }
    static const char *const no_sep[] = {"[UNK]", "[CLS]"};
    rc = tok_create(no_sep, 2, &o, &tok, &err);
    CHECK(rc == LODE_EFORMAT, "no [SEP]: rc %d", rc);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_references();
    test_all_code_points();
    test_minilm_cases();
    test_words();
    test_vocab_txt();
    test_tokenizer_json();
    test_cased_options();

    static const char *const names[] = {
        "vocab.txt", "nocls.txt", "bad.txt", "empty.txt", "tokenizer.json",
        "lstrip.json", "bpe.json", "broken.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    TEST_MAIN_END();
}
