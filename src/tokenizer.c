/* tokenizer.c - BERT WordPiece tokenizer matching Hugging Face's
 * BertTokenizerFast id for id (see tokenizer.h for the pipeline).
 *
 * Design decisions a newcomer might question:
 *
 * - Streaming, not staged.  HF normalises the whole string, then splits it,
 *   then runs WordPiece.  Every step except NFD's canonical reordering is
 *   per character, and reordering never crosses a starter (ccc 0), so we run
 *   each input character through all steps at once and keep only the
 *   current word (at most max_input_chars_per_word characters; longer words
 *   become [UNK] whatever they contain, so we just count them) and the
 *   current run of combining marks.  Memory per call is a few KB on the
 *   stack, whatever the input length; nothing is malloc'd unless a run of
 *   more than PEND_LOCAL combining marks appears.
 *
 * - Character classes come from src/tokenizer_tables.h, which
 *   scripts/gen_tokenizer_tables.py measures from the real `tokenizers`
 *   library.  Its Unicode data is a mix of versions (an old
 *   unicode_categories crate for control/punctuation/Mn, new Rust std for
 *   lowercase and NFD), so no single Unicode database reproduces it.
 *   utf8proc supplies NFD, combining classes and lowercase, with a short
 *   override list where it disagrees with Rust.  All of this is folded into
 *   one byte of flags per BMP code point, built once (pthread_once).
 *
 * - Special tokens in the text.  Like HF's AddedVocabulary, the literal
 *   strings of [CLS], [SEP], [PAD], [UNK], [MASK] (or tokenizer.json's
 *   added_tokens) are matched in the raw text, leftmost-longest, and become
 *   their ids; the text between them is tokenized piece by piece.
 *   sentence-transformers does this too, so "[SEP]" typed by a user becomes
 *   id 102, not "[", "sep", "]".
 *
 * - Vocabulary lookups use one open-addressing hash table keyed by the full
 *   token string; a "##" continuation is looked up by hashing the prefix
 *   and then the piece, so no string is built.
 *
 * HF quirks reproduced on purpose (all measured, see
 * tests/tokenizer_compare.py): unassigned code points (new emoji) are kept
 * by clean_text, not dropped; the CJK range is 0x2B920-0x2CEAF where
 * Google's BERT has 0x2B820; punctuation and Mn are Unicode-8-era sets
 * (U+166D and U+111C9 are punctuation, recent P* are not); offsets inside a
 * reordered combining sequence follow HF's positional alignment
 * (flush_marks).
 */
#include "tokenizer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_tables.h"

#define WORD_CHARS_LIMIT 256 /* largest max_input_chars_per_word we accept */
#define PEND_LOCAL 32        /* combining marks held without malloc */
#define TOKEN_ID_LIMIT (1 << 24)

/* ------------------------------------------------------------------ */
/* Character classes                                                   */

enum {
    C_DROP = 1 << 0,        /* clean_text removes */
    C_CLEAN_SPACE = 1 << 1, /* clean_text turns into ' ' */
    C_CJK = 1 << 2,         /* handle_chinese_chars pads with spaces */
    C_SPLIT_SPACE = 1 << 3, /* pre-tokenizer splits on and drops */
    C_PUNCT = 1 << 4,       /* pre-tokenizer isolates */
    C_NONSPACING = 1 << 5,  /* strip_accents removes (after NFD) */
    C_DECOMP = 1 << 6,      /* NFD is not the identity, or ccc != 0 */
    C_LOWER = 1 << 7,       /* lowercase is not the identity */
};

static uint8_t bmp_class[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static int in_ranges(const uint32_t (*tab)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    if (n == 0 || cp < tab[0][0] || cp > tab[n - 1][1])
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < tab[mid][0])
            hi = mid;
        else if (cp > tab[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#define IN_TABLE(tab, cp) in_ranges(tab, sizeof(tab) / sizeof(tab[0]), cp)

static const struct tok_cp_override *find_override(
    const struct tok_cp_override *tab, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < tab[mid].cp)
            hi = mid;
        else if (cp > tab[mid].cp)
            lo = mid + 1;
        else
            return &tab[mid];
    }
    return NULL;
}

#define FIND_OVERRIDE(tab, cp) \
    find_override(tab, sizeof(tab) / sizeof(tab[0]), cp)

/* NFD of one code point as Rust's unicode-normalization computes it.
 * Writes at most 4 code points (the Unicode maximum for canonical
 * decomposition) and returns the count. */
static int decompose(uint32_t cp, uint32_t out[4])
{
    const struct tok_cp_override *o = FIND_OVERRIDE(TOK_TAB_NFD_OVERRIDE, cp);
    if (o) {
        memcpy(out, o->out, sizeof o->out);
        return o->n;
    }
    utf8proc_int32_t buf[8];
    int boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(
        (utf8proc_int32_t)cp, buf, 8, UTF8PROC_DECOMPOSE, &boundclass);
    if (n < 1 || n > 4) {
        out[0] = cp;
        return 1;
    }
    for (utf8proc_ssize_t i = 0; i < n; i++)
        out[i] = (uint32_t)buf[i];
    return (int)n;
}

static int combining_class(uint32_t cp)
{
    return utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

/* Rust char::to_lowercase: at most 2 code points (only U+0130 has 2). */
static int lowercase(uint32_t cp, uint32_t out[4])
{
    const struct tok_cp_override *o =
        FIND_OVERRIDE(TOK_TAB_LOWER_OVERRIDE, cp);
    if (o) {
        memcpy(out, o->out, sizeof o->out);
        return o->n;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}

static unsigned classify(uint32_t cp)
{
    unsigned c = 0;
    uint32_t tmp[4];
    if (IN_TABLE(TOK_TAB_DROP, cp))
        c |= C_DROP;
    if (IN_TABLE(TOK_TAB_CLEAN_SPACE, cp))
        c |= C_CLEAN_SPACE;
    if (IN_TABLE(TOK_TAB_CJK, cp))
        c |= C_CJK;
    if (IN_TABLE(TOK_TAB_SPLIT_SPACE, cp))
        c |= C_SPLIT_SPACE;
    if (IN_TABLE(TOK_TAB_PUNCT, cp))
        c |= C_PUNCT;
    if (IN_TABLE(TOK_TAB_NONSPACING, cp))
        c |= C_NONSPACING;
    if (decompose(cp, tmp) != 1 || tmp[0] != cp || combining_class(cp) != 0)
        c |= C_DECOMP;
    if (lowercase(cp, tmp) != 1 || tmp[0] != cp)
        c |= C_LOWER;
    return c;
}

static void build_bmp_class(void)
{
    for (uint32_t cp = 0; cp < 0x10000; cp++)
        bmp_class[cp] = (cp >= 0xD800 && cp <= 0xDFFF) ? 0
                                                       : (uint8_t)classify(cp);
}

static inline unsigned char_class(uint32_t cp)
{
    return cp < 0x10000 ? bmp_class[cp] : classify(cp);
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */

static int utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 with *why set. */
static size_t utf8_valid_len(const unsigned char *s, size_t n,
                             const char **why)
{
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b < 0x80)
        return 1;
    if (b < 0xC0) {
        *why = "unexpected continuation byte";
        return 0;
    }
    if (b < 0xC2) {
        *why = "overlong encoding";
        return 0;
    }
    if (b < 0xE0) {
        need = 2;
    } else if (b < 0xF0) {
        need = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b < 0xF5) {
        need = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        *why = "byte that never occurs in UTF-8";
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n || (s[i] & 0xC0) != 0x80) {
            *why = "truncated sequence";
            return 0;
        }
        if (i == 1 && (s[1] < lo || s[1] > hi)) {
            *why = b == 0xE0 || b == 0xF0 ? "overlong encoding"
                   : b == 0xED            ? "surrogate code point"
                                          : "code point above U+10FFFF";
            return 0;
        }
    }
    return need;
}

static int utf8_validate(const char *text, size_t len, lode_error *err)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        /* Skip ASCII eight bytes at a time. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        const char *why = NULL;
        size_t k = utf8_valid_len(s + i, len - i, &why);
        if (!k)
            return lode_error_set(err, LODE_EUTF8,
                                  "invalid UTF-8 at byte %zu: %s", i, why);
        i += k;
    }
    return 0;
}

/* Decode the (already validated) sequence at s; returns its length. */
static inline int utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) |
              ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* ------------------------------------------------------------------ */
/* The tokenizer                                                       */

struct added_token {
    const char *text; /* points into the tokenizer's arena */
    int len;
    int id;
};

/* One hash-table entry; everything a lookup needs sits together, so a hit
 * costs one cache line here plus the token text. */
struct slot {
    uint32_t hash;
    int32_t id;   /* -1 = empty */
    uint32_t len; /* token length in bytes */
    uint32_t off; /* token text in the arena */
};

struct tok_tokenizer {
    tok_options opts;
    int strip;              /* effective strip_accents */
    int n_tokens;           /* id space: ids are 0..n_tokens-1 */
    const char **tokens;    /* id -> string ("" for an unused id) */
    uint32_t *token_len;
    char *arena;            /* all token strings, NUL-terminated */
    struct slot *slots;     /* hash table, capacity slot_mask + 1 */
    uint32_t slot_mask;
    int max_token_len;      /* longest token in bytes: bounds WordPiece */
    char prefix[16];        /* continuing_subword_prefix, usually "##" */
    int prefix_len;
    uint32_t prefix_hash;   /* hash state after the prefix */
    int max_word_chars;     /* longer words become [UNK] */
    int cls, sep, pad, unk;
    struct added_token *added;
    int n_added;
    uint8_t added_first[256]; /* 1 if some added token starts with byte */
};

#define HASH_INIT 2166136261u

static inline uint32_t hash_bytes(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Id of prefix+piece (prefix may be empty) whose hash is h, or -1. */
static int lookup_hashed(const tok_tokenizer *tok, uint32_t h,
                         int with_prefix, const char *piece, size_t len)
{
    size_t plen = with_prefix ? (size_t)tok->prefix_len : 0;
    for (uint32_t i = h & tok->slot_mask;; i = (i + 1) & tok->slot_mask) {
        const struct slot *sl = &tok->slots[i];
        if (sl->id < 0)
            return -1;
        if (sl->hash != h || sl->len != plen + len)
            continue;
        const char *t = tok->arena + sl->off;
        if (memcmp(t, tok->prefix, plen) == 0 &&
            memcmp(t + plen, piece, len) == 0)
            return sl->id;
    }
}

static int lookup2(const tok_tokenizer *tok, int with_prefix,
                   const char *piece, size_t len)
{
    uint32_t h = with_prefix ? tok->prefix_hash : HASH_INIT;
    return lookup_hashed(tok, hash_bytes(h, piece, len), with_prefix, piece,
                         len);
}

void tok_free(tok_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->tokens);
    free(tok->token_len);
    free(tok->arena);
    free(tok->slots);
    free(tok->added);
    free(tok);
}

tok_options tok_default_options(void)
{
    tok_options o = {.lowercase = 1, .strip_accents = -1,
                     .chinese_chars = 1, .clean_text = 1};
    return o;
}

/* Everything tok_create needs beyond the vocabulary; the loaders fill it
 * from their file formats. */
struct create_args {
    const char *unk_token;
    const char *prefix;
    int max_word_chars;
    /* Added tokens matched in raw text; NULL means the special tokens
     * [PAD] [UNK] [CLS] [SEP] [MASK] that exist in the vocabulary. */
    const char *const *added_text;
    const int *added_id;
    int n_added;
};

static const char *const default_specials[] = {"[PAD]", "[UNK]", "[CLS]",
                                               "[SEP]", "[MASK]"};

static int create(const char *const *tokens, int n_tokens,
                  const tok_options *opts, const struct create_args *a,
                  tok_tokenizer **out, lode_error *err)
{
    *out = NULL;
    if (n_tokens < 1 || n_tokens > TOKEN_ID_LIMIT)
        return lode_error_set(err, LODE_EFORMAT,
                              "vocabulary has %d tokens (must be 1..%d)",
                              n_tokens, TOKEN_ID_LIMIT);
    if (strlen(a->prefix) >= sizeof(((tok_tokenizer *)0)->prefix))
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "continuing_subword_prefix \"%s\" is too long",
                              a->prefix);
    if (a->max_word_chars < 1 || a->max_word_chars > WORD_CHARS_LIMIT)
        return lode_error_set(err, LODE_EUNSUPPORTED,
                              "max_input_chars_per_word %d is outside 1..%d",
                              a->max_word_chars, WORD_CHARS_LIMIT);
    pthread_once(&bmp_once, build_bmp_class);

    tok_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    tok->opts = opts ? *opts : tok_default_options();
    tok->strip = tok->opts.strip_accents < 0 ? !!tok->opts.lowercase
                                             : !!tok->opts.strip_accents;
    tok->n_tokens = n_tokens;
    tok->max_word_chars = a->max_word_chars;
    strcpy(tok->prefix, a->prefix);
    tok->prefix_len = (int)strlen(a->prefix);
    tok->prefix_hash = hash_bytes(HASH_INIT, tok->prefix, tok->prefix_len);

    size_t arena_len = 0;
    for (int i = 0; i < n_tokens; i++)
        arena_len += (tokens[i] ? strlen(tokens[i]) : 0) + 1;
    if (arena_len > UINT32_MAX) {
        tok_free(tok);
        return lode_error_set(err, LODE_ELIMIT, "vocabulary text over 4 GiB");
    }
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n_tokens)
        cap *= 2;
    tok->tokens = malloc((size_t)n_tokens * sizeof *tok->tokens);
    tok->token_len = malloc((size_t)n_tokens * sizeof *tok->token_len);
    tok->arena = malloc(arena_len);
    tok->slots = malloc(cap * sizeof *tok->slots);
    if (!tok->tokens || !tok->token_len || !tok->arena || !tok->slots)
        goto out_nomem;
    tok->slot_mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++)
        tok->slots[i].id = -1;

    /* Insert in id order; a token that appears twice maps to its later id
     * (HF builds a hash map the same way). */
    char *p = tok->arena;
    for (int i = 0; i < n_tokens; i++) {
        size_t n = tokens[i] ? strlen(tokens[i]) : 0;
        memcpy(p, tokens[i] ? tokens[i] : "", n + 1);
        tok->tokens[i] = p;
        tok->token_len[i] = (uint32_t)n;
        p += n + 1;
        if (!tokens[i])
            continue; /* an unused id: nothing maps to it */
        if ((int)n > tok->max_token_len)
            tok->max_token_len = (int)n;
        uint32_t h = hash_bytes(HASH_INIT, tok->tokens[i], n);
        uint32_t s = h & tok->slot_mask;
        while (tok->slots[s].id >= 0) {
            int32_t o = tok->slots[s].id;
            if (tok->slots[s].hash == h && tok->token_len[o] == n &&
                memcmp(tok->tokens[o], tok->tokens[i], n) == 0)
                break;
            s = (s + 1) & tok->slot_mask;
        }
        tok->slots[s] = (struct slot){h, i, (uint32_t)n,
                                      (uint32_t)(tok->tokens[i] - tok->arena)};
    }

    tok->cls = tok_lookup(tok, "[CLS]");
    tok->sep = tok_lookup(tok, "[SEP]");
    tok->pad = tok_lookup(tok, "[PAD]");
    tok->unk = tok_lookup(tok, a->unk_token);
    if (tok->cls < 0 || tok->sep < 0 || tok->unk < 0) {
        const char *miss = tok->cls < 0   ? "[CLS]"
                           : tok->sep < 0 ? "[SEP]"
                                          : a->unk_token;
        tok_free(tok);
        return lode_error_set(err, LODE_EFORMAT,
                              "vocabulary has no %s token", miss);
    }

    /* Added tokens: strings in the arena, ids as given. */
    int n_added = a->added_text ? a->n_added : 5;
    tok->added = calloc((size_t)n_added + 1, sizeof *tok->added);
    if (!tok->added)
        goto out_nomem;
    for (int i = 0; i < n_added; i++) {
        const char *text = a->added_text ? a->added_text[i]
                                         : default_specials[i];
        int id = a->added_text ? a->added_id[i] : tok_lookup(tok, text);
        if (id < 0 || id >= n_tokens || !text[0])
            continue;
        /* Point at an arena copy when the id's token is this text (the
         * usual case); otherwise the caller's string must live on, so
         * only accept arena strings. */
        if (strcmp(tok->tokens[id], text) != 0 ||
            utf8_validate(text, strlen(text), NULL) != 0)
            continue; /* matching must start and end on characters */
        struct added_token *t = &tok->added[tok->n_added++];
        t->text = tok->tokens[id];
        t->len = (int)tok->token_len[id];
        t->id = id;
        tok->added_first[(unsigned char)t->text[0]] = 1;
    }
    *out = tok;
    return 0;

out_nomem:
    tok_free(tok);
    return lode_error_set(err, LODE_ENOMEM, "out of memory");
}

int tok_create(const char *const *tokens, int n_tokens, const tok_options *opts,
               tok_tokenizer **out, lode_error *err)
{
    struct create_args a = {.unk_token = "[UNK]", .prefix = "##",
                            .max_word_chars = 100};
    return create(tokens, n_tokens, opts, &a, out, err);
}

static int read_file(const char *path, char **data, size_t *len,
                     lode_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lode_error_set(err, LODE_EIO, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    for (;;) {
        if (n == cap) {
            char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return lode_error_set(err, LODE_ELIMIT, "%s is too large",
                                      path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return lode_error_set(err, LODE_EIO, "cannot read %s", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* Rust's str::trim_end: drop trailing White_Space characters. */
static size_t trim_end(const char *s, size_t n)
{
    while (n > 0) {
        size_t k = n - 1;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        uint32_t cp;
        utf8_decode((const unsigned char *)s + k, &cp);
        if (!IN_TABLE(TOK_TAB_SPLIT_SPACE, cp))
            break;
        n = k;
    }
    return n;
}

/* vocab.txt as the Rust WordPiece::read_file reads it: lines split at
 * '\n' (no empty last line after a final '\n'), each line trim_end()'d
 * (so "\r", trailing spaces and U+00A0 go), id = line number, and the
 * file must be UTF-8. */
int tok_load_vocab_txt(const char *path, const tok_options *opts,
                       tok_tokenizer **out, lode_error *err)
{
    char *data;
    size_t len;
    *out = NULL;
    int rc = read_file(path, &data, &len, err);
    if (rc)
        return rc;
    if ((rc = utf8_validate(data, len, err))) {
        free(data);
        return lode_error_prefix(err, "vocabulary %s", path);
    }
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++)
        n_lines += data[i] == '\n';
    if (len > 0 && data[len - 1] != '\n')
        n_lines++;
    if (n_lines > TOKEN_ID_LIMIT) {
        free(data);
        return lode_error_set(err, LODE_EFORMAT, "%s has too many lines",
                              path);
    }
    const char **tokens = malloc((n_lines ? n_lines : 1) * sizeof *tokens);
    if (!tokens) {
        free(data);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    size_t line = 0, start = 0;
    for (size_t i = 0; i <= len && line < n_lines; i++) {
        if (i == len || data[i] == '\n') {
            size_t end = trim_end(data + start, i - start);
            data[start + end] = '\0';
            tokens[line++] = data + start;
            start = i + 1;
        }
    }
    struct create_args a = {.unk_token = "[UNK]", .prefix = "##",
                            .max_word_chars = 100};
    rc = create(tokens, (int)n_lines, opts, &a, out, err);
    free(tokens);
    free(data);
    if (rc)
        lode_error_prefix(err, "vocabulary %s", path);
    return rc;
}

static int json_int_in(json_t *v, long long lo, long long hi, int *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi)
        return 0;
    *out = (int)json_integer_value(v);
    return 1;
}

int tok_load_tokenizer_json(const char *path, const tok_options *opts,
                            tok_tokenizer **out, lode_error *err)
{
    json_error_t jerr;
    *out = NULL;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return lode_error_set(err, LODE_EFORMAT, "%s: line %d: %s", path,
                              jerr.line, jerr.text);
    int rc = 0, n_tokens = 0, n_added = 0;
    const char **tokens = NULL, **added_text = NULL;
    int *added_id = NULL;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *type = json_object_get(model, "type");
    if (!json_is_object(vocab)) {
        rc = lode_error_set(err, LODE_EFORMAT, "%s has no model.vocab object",
                            path);
        goto out;
    }
    if (type && (!json_is_string(type) ||
                 strcmp(json_string_value(type), "WordPiece") != 0)) {
        rc = lode_error_set(err, LODE_EUNSUPPORTED,
                            "%s: model type is not WordPiece", path);
        goto out;
    }
    struct create_args a = {.unk_token = "[UNK]", .prefix = "##",
                            .max_word_chars = 100};
    json_t *v;
    if ((v = json_object_get(model, "unk_token")) && json_is_string(v))
        a.unk_token = json_string_value(v);
    if ((v = json_object_get(model, "continuing_subword_prefix")) &&
        json_is_string(v))
        a.prefix = json_string_value(v);
    if ((v = json_object_get(model, "max_input_chars_per_word")) &&
        !json_is_null(v) &&
        !json_int_in(v, 1, WORD_CHARS_LIMIT, &a.max_word_chars)) {
        rc = lode_error_set(err, LODE_EUNSUPPORTED,
                            "%s: max_input_chars_per_word is not in 1..%d",
                            path, WORD_CHARS_LIMIT);
        goto out;
    }

    /* The id space covers the vocabulary and the added tokens. */
    const char *key;
    json_object_foreach(vocab, key, v) {
        int id;
        if (!json_int_in(v, 0, TOKEN_ID_LIMIT - 1, &id)) {
            rc = lode_error_set(err, LODE_EFORMAT,
                                "%s: token \"%s\" has a bad id", path, key);
            goto out;
        }
        if (id + 1 > n_tokens)
            n_tokens = id + 1;
    }
    json_t *added = json_object_get(root, "added_tokens");
    size_t n_added_json = json_is_array(added) ? json_array_size(added) : 0;
    added_text = calloc(n_added_json + 1, sizeof *added_text);
    added_id = calloc(n_added_json + 1, sizeof *added_id);
    if (!added_text || !added_id) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_added_json; i++) {
        json_t *t = json_array_get(added, i);
        json_t *content = json_object_get(t, "content");
        int id;
        if (!json_is_string(content) ||
            !json_int_in(json_object_get(t, "id"), 0, TOKEN_ID_LIMIT - 1,
                         &id)) {
            rc = lode_error_set(err, LODE_EFORMAT,
                                "%s: added_tokens[%zu] is malformed", path, i);
            goto out;
        }
        /* Only the plain kind BERT models use: matched verbatim in the
         * raw text.  The others need matching on normalised text or
         * whitespace handling we do not model. */
        static const char *const flags[] = {"normalized", "lstrip", "rstrip",
                                            "single_word"};
        for (size_t f = 0; f < 4; f++) {
            if (json_is_true(json_object_get(t, flags[f]))) {
                rc = lode_error_set(
                    err, LODE_EUNSUPPORTED,
                    "%s: added token \"%s\" has %s set (unsupported)", path,
                    json_string_value(content), flags[f]);
                goto out;
            }
        }
        added_text[n_added] = json_string_value(content);
        added_id[n_added++] = id;
        if (id + 1 > n_tokens)
            n_tokens = id + 1;
    }
    tokens = calloc((size_t)(n_tokens ? n_tokens : 1), sizeof *tokens);
    if (!tokens) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    json_object_foreach(vocab, key, v) tokens[json_integer_value(v)] = key;
    for (int i = 0; i < n_added; i++)
        if (!tokens[added_id[i]])
            tokens[added_id[i]] = added_text[i];
    a.added_text = added_text;
    a.added_id = added_id;
    a.n_added = n_added;
    rc = create(tokens, n_tokens, opts, &a, out, err);
    if (rc)
        lode_error_prefix(err, "%s", path);
out:
    free(tokens);
    free(added_text);
    free(added_id);
    json_decref(root);
    return rc;
}

static int json_bool(json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int tok_options_from_tokenizer_json(const char *path, tok_options *opts,
                                    lode_error *err)
{
    json_error_t jerr;
    *opts = tok_default_options();
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return lode_error_set(err, LODE_EFORMAT, "%s: line %d: %s", path,
                              jerr.line, jerr.text);
    int rc = 0;
    json_t *norm = json_object_get(root, "normalizer");
    json_t *type = json_object_get(norm, "type");
    if (!json_is_string(type) ||
        strcmp(json_string_value(type), "BertNormalizer") != 0) {
        rc = lode_error_set(err, LODE_EUNSUPPORTED,
                            "%s: normalizer is not a BertNormalizer", path);
        goto out;
    }
    json_t *pre = json_object_get(json_object_get(root, "pre_tokenizer"),
                                  "type");
    if (!json_is_string(pre) ||
        strcmp(json_string_value(pre), "BertPreTokenizer") != 0) {
        rc = lode_error_set(err, LODE_EUNSUPPORTED,
                            "%s: pre_tokenizer is not a BertPreTokenizer",
                            path);
        goto out;
    }
    opts->clean_text = json_bool(norm, "clean_text", 1);
    opts->chinese_chars = json_bool(norm, "handle_chinese_chars", 1);
    opts->lowercase = json_bool(norm, "lowercase", 1);
    opts->strip_accents = json_bool(norm, "strip_accents", -1);
out:
    json_decref(root);
    return rc;
}

int tok_vocab_size(const tok_tokenizer *tok) { return tok->n_tokens; }

const char *tok_token(const tok_tokenizer *tok, int id)
{
    return id >= 0 && id < tok->n_tokens ? tok->tokens[id] : NULL;
}

int tok_lookup(const tok_tokenizer *tok, const char *token)
{
    return lookup2(tok, 0, token, strlen(token));
}

const tok_options *tok_get_options(const tok_tokenizer *tok)
{
    return &tok->opts;
}

int tok_cls_id(const tok_tokenizer *tok) { return tok->cls; }
int tok_sep_id(const tok_tokenizer *tok) { return tok->sep; }
int tok_pad_id(const tok_tokenizer *tok) { return tok->pad; }
int tok_unk_id(const tok_tokenizer *tok) { return tok->unk; }

/* ------------------------------------------------------------------ */
/* The streaming pipeline                                              */

struct pending_mark {
    uint32_t cp;
    uint16_t ccc;
    uint16_t added;        /* not the first character of its decomposition */
    uint32_t start, end;   /* source range (see flush_marks) */
};

struct pipe {
    const tok_tokenizer *tok;
    int clean, cjk, strip, lower;

    /* Current word.  Only the first max_word_chars + 1 characters are
     * stored; n_chars counts them all. */
    int n_chars;
    int n_bytes;
    uint32_t word_start, word_end; /* source range of the whole word */
    char bytes[(WORD_CHARS_LIMIT + 1) * 4];
    uint16_t char_byte[WORD_CHARS_LIMIT + 2];
    uint32_t char_start[WORD_CHARS_LIMIT + 1], char_end[WORD_CHARS_LIMIT + 1];

    /* Run of combining marks (ccc != 0) awaiting canonical reordering. */
    struct pending_mark *pend;
    int n_pend, cap_pend;
    uint32_t last_start, last_end; /* source of the last NFD input consumed */
    struct pending_mark pend_local[PEND_LOCAL];

    /* Output: ids / offsets up to `room` pieces, n_pieces counts all. */
    int32_t *ids;
    int32_t *offsets;
    int room;
    long n_pieces;
    int stop_when_full; /* nobody wants n_full: stop once ids are full */
    int stopped;
    int rc;

    /* tok_words mode */
    tok_word_fn word_fn;
    void *word_ctx;
};

static void emit_id(struct pipe *p, int32_t id, uint32_t start, uint32_t end)
{
    if (p->n_pieces < p->room) {
        /* ids[0] is [CLS] */
        p->ids[1 + p->n_pieces] = id;
        if (p->offsets) {
            p->offsets[2 * (1 + p->n_pieces)] = (int32_t)start;
            p->offsets[2 * (1 + p->n_pieces) + 1] = (int32_t)end;
        }
    }
    p->n_pieces++;
    if (p->stop_when_full && p->n_pieces >= p->room)
        p->stopped = 1;
}

/* Greedy longest-match-first WordPiece over the current word. */
static void wordpiece(struct pipe *p)
{
    const tok_tokenizer *tok = p->tok;
    int n = p->n_chars;
    if (n > tok->max_word_chars) {
        emit_id(p, tok->unk, p->word_start, p->word_end);
        return;
    }
    int32_t piece_id[WORD_CHARS_LIMIT];
    uint16_t piece_start[WORD_CHARS_LIMIT], piece_end[WORD_CHARS_LIMIT];
    uint32_t hash_to[WORD_CHARS_LIMIT + 1]; /* hash of piece start..end */
    int n_pieces = 0;
    for (int start = 0; start < n;) {
        int with_prefix = start > 0;
        int limit = tok->max_token_len - (with_prefix ? tok->prefix_len : 0);
        int end = start, id = -1;
        const char *s = p->bytes + p->char_byte[start];
        /* Hash every candidate piece in one pass (no piece can be longer
         * than the longest token), then try them longest first. */
        uint32_t h = with_prefix ? tok->prefix_hash : HASH_INIT;
        while (end < n && p->char_byte[end + 1] - p->char_byte[start] <= limit) {
            h = hash_bytes(h, p->bytes + p->char_byte[end],
                           (size_t)(p->char_byte[end + 1] - p->char_byte[end]));
            hash_to[++end] = h;
        }
        for (; end > start; end--) {
            id = lookup_hashed(
                tok, hash_to[end], with_prefix, s,
                (size_t)(p->char_byte[end] - p->char_byte[start]));
            if (id >= 0)
                break;
        }
        if (id < 0) {
            emit_id(p, tok->unk, p->word_start, p->word_end);
            return;
        }
        piece_id[n_pieces] = id;
        piece_start[n_pieces] = (uint16_t)start;
        piece_end[n_pieces++] = (uint16_t)end;
        start = end;
    }
    for (int i = 0; i < n_pieces; i++) {
        /* Reordered marks can come from different source characters, so
         * take the extent of all characters in the piece. */
        uint32_t s = UINT32_MAX, e = 0;
        for (int c = piece_start[i]; c < piece_end[i]; c++) {
            if (p->char_start[c] < s)
                s = p->char_start[c];
            if (p->char_end[c] > e)
                e = p->char_end[c];
        }
        emit_id(p, piece_id[i], s, e);
    }
}

static void end_word(struct pipe *p)
{
    if (p->n_chars == 0)
        return;
    if (p->word_fn) {
        int too_long = p->n_chars > p->tok->max_word_chars;
        if (!p->rc && p->word_fn(p->word_ctx, too_long ? NULL : p->bytes,
                                 too_long ? 0 : (size_t)p->n_bytes,
                                 p->word_start, p->word_end))
            p->stopped = 1;
    } else {
        wordpiece(p);
    }
    p->n_chars = 0;
    p->n_bytes = 0;
}

static void word_push(struct pipe *p, uint32_t cp, uint32_t start,
                      uint32_t end)
{
    if (p->n_chars == 0) {
        p->word_start = start;
        p->word_end = end;
    } else {
        if (start < p->word_start)
            p->word_start = start;
        if (end > p->word_end)
            p->word_end = end;
    }
    if (p->n_chars <= p->tok->max_word_chars) {
        int c = p->n_chars;
        p->char_byte[c] = (uint16_t)p->n_bytes;
        p->char_start[c] = start;
        p->char_end[c] = end;
        p->n_bytes += utf8_encode(cp, p->bytes + p->n_bytes);
        p->char_byte[c + 1] = (uint16_t)p->n_bytes;
    }
    p->n_chars++;
}

/* Pre-tokenizer: split on whitespace, isolate punctuation. */
static void stage_split(struct pipe *p, uint32_t cp, unsigned cls,
                        uint32_t start, uint32_t end)
{
    if (cls & C_SPLIT_SPACE) {
        end_word(p);
    } else if (cls & C_PUNCT) {
        end_word(p);
        word_push(p, cp, start, end);
        end_word(p);
    } else {
        word_push(p, cp, start, end);
    }
}

/* After NFD: drop nonspacing marks, lowercase, hand on. */
static void stage_lower(struct pipe *p, uint32_t cp, uint32_t start,
                        uint32_t end)
{
    unsigned cls = char_class(cp);
    if (p->strip && (cls & C_NONSPACING))
        return;
    if (p->lower && (cls & C_LOWER)) {
        uint32_t low[4];
        int n = lowercase(cp, low);
        for (int i = 0; i < n; i++)
            stage_split(p, low[i], char_class(low[i]), start, end);
        return;
    }
    stage_split(p, cp, cls, start, end);
}

/* Canonical ordering: stable sort of the marks by combining class.
 *
 * Offsets follow HF exactly, which is not the obvious "each output mark
 * keeps its own source".  HF's NFD yields each output character with a
 * flag: first character of an input character's decomposition, or added
 * after it.  Alignment is positional: the k-th "first" character in output
 * order takes the source of the k-th input character, and an "added" one
 * takes the source of the last input character consumed.  So after a
 * reordering, marks can swap sources with their neighbours (always within
 * one combining sequence).  We reproduce that: the sources of the "first"
 * marks are compacted in input order, then only the characters are
 * sorted. */
static void flush_marks(struct pipe *p)
{
    struct pending_mark *m = p->pend;
    int n_first = 0;
    for (int i = 0; i < p->n_pend; i++) {
        if (!m[i].added) {
            m[n_first].start = m[i].start;
            m[n_first].end = m[i].end;
            n_first++;
        }
    }
    for (int i = 1; i < p->n_pend; i++) {
        uint32_t cp = m[i].cp;
        uint16_t ccc = m[i].ccc, added = m[i].added;
        int j = i;
        while (j > 0 && m[j - 1].ccc > ccc) {
            m[j].cp = m[j - 1].cp;
            m[j].ccc = m[j - 1].ccc;
            m[j].added = m[j - 1].added;
            j--;
        }
        m[j].cp = cp;
        m[j].ccc = ccc;
        m[j].added = added;
    }
    int k = 0;
    for (int i = 0; i < p->n_pend; i++) {
        if (!m[i].added) {
            p->last_start = m[k].start;
            p->last_end = m[k].end;
            k++;
        }
        stage_lower(p, m[i].cp, p->last_start, p->last_end);
    }
    p->n_pend = 0;
}

static void push_mark(struct pipe *p, uint32_t cp, int ccc, int added,
                      uint32_t start, uint32_t end)
{
    if (p->n_pend == p->cap_pend) {
        if (p->cap_pend > (1 << 24)) {
            p->rc = LODE_ELIMIT;
            return;
        }
        size_t cap = (size_t)p->cap_pend * 2;
        struct pending_mark *m = p->pend == p->pend_local
                                     ? malloc(cap * sizeof *m)
                                     : realloc(p->pend, cap * sizeof *m);
        if (!m) {
            p->rc = LODE_ENOMEM;
            return;
        }
        if (p->pend == p->pend_local)
            memcpy(m, p->pend_local, sizeof p->pend_local);
        p->pend = m;
        p->cap_pend = (int)cap;
    }
    p->pend[p->n_pend++] = (struct pending_mark){
        cp, (uint16_t)ccc, (uint16_t)added, start, end};
}

/* NFD (only when stripping accents, as in HF). */
static void stage_nfd(struct pipe *p, uint32_t cp, unsigned cls,
                      uint32_t start, uint32_t end)
{
    if (!p->strip || !(cls & C_DECOMP)) {
        if (p->n_pend)
            flush_marks(p);
        p->last_start = start;
        p->last_end = end;
        stage_lower(p, cp, start, end);
        return;
    }
    uint32_t d[4];
    int n = decompose(cp, d);
    for (int i = 0; i < n; i++) {
        int ccc = combining_class(d[i]);
        if (ccc == 0) {
            if (p->n_pend)
                flush_marks(p);
            if (i == 0) {
                p->last_start = start;
                p->last_end = end;
            }
            stage_lower(p, d[i], p->last_start, p->last_end);
        } else {
            push_mark(p, d[i], ccc, i > 0, start, end);
        }
    }
}

/* One input character: clean_text and CJK padding, then on. */
static void stage_clean(struct pipe *p, uint32_t cp, uint32_t start,
                        uint32_t end)
{
    unsigned cls = char_class(cp);
    if (p->clean) {
        if (cls & C_DROP)
            return;
        if (cls & C_CLEAN_SPACE) {
            cp = ' ';
            cls = char_class(' ');
        }
    }
    if (p->cjk && (cls & C_CJK)) {
        unsigned sp = char_class(' ');
        stage_nfd(p, ' ', sp, start, end);
        stage_nfd(p, cp, cls, start, end);
        stage_nfd(p, ' ', sp, start, end);
        return;
    }
    stage_nfd(p, cp, cls, start, end);
}

/* Run text[from, to) through the pipeline; ends the last word. */
static void run_segment(struct pipe *p, const char *text, size_t from,
                        size_t to)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = from;
    while (i < to && !p->stopped && !p->rc) {
        unsigned char b = s[i];
        /* Fast path: ASCII letters and digits with no marks pending. */
        if (b < 0x80 && p->n_pend == 0) {
            unsigned cls = bmp_class[b];
            if (!(cls & (C_DROP | C_CLEAN_SPACE | C_SPLIT_SPACE | C_PUNCT))) {
                uint32_t cp = (p->lower && b >= 'A' && b <= 'Z') ? b + 32u : b;
                word_push(p, cp, (uint32_t)i, (uint32_t)i + 1);
                i++;
                continue;
            }
        }
        uint32_t cp;
        int k = utf8_decode(s + i, &cp);
        stage_clean(p, cp, (uint32_t)i, (uint32_t)(i + (size_t)k));
        i += (size_t)k;
    }
    if (p->n_pend && !p->stopped && !p->rc)
        flush_marks(p);
    p->n_pend = 0;
    if (!p->stopped && !p->rc)
        end_word(p);
    p->n_chars = 0;
    p->n_bytes = 0;
}

/* Split text at added tokens (leftmost, then longest) and run the
 * pieces between them. */
static void run(struct pipe *p, const char *text, size_t len)
{
    const tok_tokenizer *tok = p->tok;
    size_t seg = 0;
    if (tok->n_added) {
        for (size_t i = 0; i < len && !p->stopped && !p->rc; i++) {
            if (!tok->added_first[(unsigned char)text[i]])
                continue;
            const struct added_token *best = NULL;
            for (int t = 0; t < tok->n_added; t++) {
                const struct added_token *a = &tok->added[t];
                if ((size_t)a->len <= len - i &&
                    memcmp(text + i, a->text, (size_t)a->len) == 0 &&
                    (!best || a->len > best->len))
                    best = a;
            }
            if (!best)
                continue;
            run_segment(p, text, seg, i);
            if (p->stopped || p->rc)
                return;
            if (p->word_fn) {
                if (p->word_fn(p->word_ctx, best->text, (size_t)best->len, i,
                               i + (size_t)best->len))
                    p->stopped = 1;
            } else {
                emit_id(p, best->id, (uint32_t)i,
                        (uint32_t)(i + (size_t)best->len));
            }
            i += (size_t)best->len - 1;
            seg = i + 1;
        }
    }
    if (!p->stopped && !p->rc)
        run_segment(p, text, seg, len);
}

static void pipe_init(struct pipe *p, const tok_tokenizer *tok)
{
    p->tok = tok;
    p->clean = tok->opts.clean_text;
    p->cjk = tok->opts.chinese_chars;
    p->strip = tok->strip;
    p->lower = tok->opts.lowercase;
    p->n_chars = p->n_bytes = 0;
    p->pend = p->pend_local;
    p->n_pend = 0;
    p->cap_pend = PEND_LOCAL;
    p->last_start = p->last_end = 0;
    p->ids = NULL;
    p->offsets = NULL;
    p->room = 0;
    p->n_pieces = 0;
    p->stop_when_full = 0;
    p->stopped = 0;
    p->rc = 0;
    p->word_fn = NULL;
    p->word_ctx = NULL;
}

static int pipe_finish(struct pipe *p, lode_error *err)
{
    if (p->pend != p->pend_local)
        free(p->pend);
    if (p->rc == LODE_ENOMEM)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (p->rc)
        return lode_error_set(err, p->rc,
                              "text has an absurdly long run of combining "
                              "marks");
    return 0;
}

static int check_text(const char *text, size_t len, lode_error *err)
{
    if (!text && len)
        return lode_error_set(err, LODE_EINVAL, "text is NULL");
    if (len > (size_t)INT32_MAX)
        return lode_error_set(err, LODE_ELIMIT,
                              "text of %zu bytes is over the 2 GiB limit",
                              len);
    return utf8_validate(text, len, err);
}

int tok_encode(const tok_tokenizer *tok, const char *text, size_t len,
               int max_tokens, int32_t *ids, int *n_ids, int *n_full,
               int32_t *offsets, lode_error *err)
{
    *n_ids = 0;
    if (n_full)
        *n_full = 0;
    if (max_tokens < 2 || !ids)
        return lode_error_set(err, LODE_EINVAL,
                              "max_tokens must be at least 2 (got %d)",
                              max_tokens);
    int rc = check_text(text, len, err);
    if (rc)
        return rc;

    struct pipe p;
    pipe_init(&p, tok);
    p.ids = ids;
    p.offsets = offsets;
    p.room = max_tokens - 2;
    p.stop_when_full = n_full == NULL;
    if (!(p.stop_when_full && p.room == 0))
        run(&p, text ? text : "", len);
    if ((rc = pipe_finish(&p, err)))
        return rc;

    int n = p.n_pieces < p.room ? (int)p.n_pieces : p.room;
    ids[0] = tok->cls;
    ids[n + 1] = tok->sep;
    if (offsets) {
        offsets[0] = offsets[1] = 0;
        offsets[2 * (n + 1)] = offsets[2 * (n + 1) + 1] = 0;
    }
    *n_ids = n + 2;
    if (n_full) {
        long full = p.n_pieces + 2;
        *n_full = full > INT32_MAX ? INT32_MAX : (int)full;
    }
    return 0;
}

int tok_words(const tok_tokenizer *tok, const char *text, size_t len,
              tok_word_fn fn, void *ctx, lode_error *err)
{
    int rc = check_text(text, len, err);
    if (rc)
        return rc;
    struct pipe p;
    pipe_init(&p, tok);
    p.word_fn = fn;
    p.word_ctx = ctx;
    run(&p, text ? text : "", len);
    return pipe_finish(&p, err);
}
