/* chunk.c - token-aware chunking (see chunk.h).
 *
 * Each section is tokenized once, with the byte offsets of every token.
 * The section is then seen as a row of "atoms": every token starts an atom
 * that runs to the next token's start (or to the end of its
 * whitespace-delimited word), so atoms hold at most one token each and
 * together cover every non-whitespace byte, including bytes the tokenizer
 * drops (control and format characters).  Each atom carries the strength
 * of the boundary before it (BREAK_* below), found from the whitespace and
 * punctuation around it.  A chunk is a run of atoms; choosing where it
 * ends is picking the strongest boundary within the token budget, which
 * is the "headings, then paragraphs, then sentences, then words" recursion
 * done in one linear pass.
 *
 * Token counts of a run of atoms equal those of its text re-tokenized,
 * except when a cut falls inside a word (between word pieces, only for
 * words longer than a whole chunk): the piece after the cut no longer
 * starts with "##".  So every chunk is re-tokenized, its true count
 * stored, and a chunk over budget is shortened by an atom until it fits.
 */
#include "chunk.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Strength of the boundary before an atom. */
enum {
    BREAK_PIECE = 0,     /* between two word pieces of one word */
    BREAK_SUBWORD = 1,   /* between pre-tokenizer words: punctuation, CJK */
    BREAK_WORD = 2,      /* whitespace */
    BREAK_SENTENCE = 3,  /* after . ! ? (and CJK 。！？) */
    BREAK_LINE = 4,      /* a line break */
    BREAK_PARAGRAPH = 5, /* a blank line */
};

typedef struct atom {
    uint32_t start, end;  /* bytes, relative to the section */
    int tokens;           /* 0 or 1 */
    int brk;              /* BREAK_* before this atom */
} atom;

chunk_options chunk_default_options(int max_seq_length)
{
    chunk_options o;
    o.max_tokens = CHUNK_DEFAULT_TOKENS;
    if (o.max_tokens > max_seq_length - 2)
        o.max_tokens = max_seq_length - 2;
    o.overlap_tokens = CHUNK_DEFAULT_OVERLAP;
    if (o.overlap_tokens > o.max_tokens / 5)
        o.overlap_tokens = o.max_tokens / 5;
    return o;
}

int chunk_check_options(const chunk_options *o, int max_seq_length,
                        lode_error *err)
{
    int most = max_seq_length - 2;
    if (o->max_tokens > most)
        return lode_error_set(err, LODE_EINVAL,
                              "chunks of %d tokens do not fit the model: its "
                              "max_seq_length is %d, so chunks may hold at "
                              "most %d tokens", o->max_tokens,
                              max_seq_length, most);
    if (o->max_tokens < CHUNK_MIN_TOKENS)
        return lode_error_set(err, LODE_EINVAL,
                              "chunks of %d tokens are too small (at least "
                              "%d)", o->max_tokens, CHUNK_MIN_TOKENS);
    if (o->overlap_tokens < 0 || o->overlap_tokens > o->max_tokens / 2)
        return lode_error_set(err, LODE_EINVAL,
                              "an overlap of %d tokens is outside 0..%d (half "
                              "the chunk size)", o->overlap_tokens,
                              o->max_tokens / 2);
    return LODE_OK;
}

/* ---- Markdown headings ------------------------------------------------ */

static int push_heading(chunk_heading **arr, size_t *n, size_t *cap,
                        const chunk_heading *h, lode_error *err)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        chunk_heading *na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = *h;
    return LODE_OK;
}

int chunk_find_markdown_headings(const char *text, size_t len,
                                 chunk_heading **out, size_t *n,
                                 lode_error *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    char fence = 0;        /* '`' or '~' inside a fenced block */
    size_t fence_len = 0;
    for (size_t line = 0; line < len;) {
        const char *nl = memchr(text + line, '\n', len - line);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t next = nl ? end + 1 : len;
        size_t e = end;
        if (e > line && text[e - 1] == '\r')
            e--;
        size_t p = line;
        while (p < e && p - line < 3 && text[p] == ' ')
            p++;
        /* Fences: three or more ` or ~; the closing one as long. */
        if (p < e && (text[p] == '`' || text[p] == '~')) {
            size_t q = p;
            while (q < e && text[q] == text[p])
                q++;
            if (q - p >= 3) {
                if (!fence) {
                    fence = text[p];
                    fence_len = q - p;
                } else if (text[p] == fence && q - p >= fence_len) {
                    while (q < e && (text[q] == ' ' || text[q] == '\t'))
                        q++;
                    if (q == e)
                        fence = 0;
                }
                line = next;
                continue;
            }
        }
        if (!fence && p < e && text[p] == '#') {
            size_t q = p;
            while (q < e && text[q] == '#')
                q++;
            int level = (int)(q - p);
            if (level <= 6 && (q == e || text[q] == ' ' || text[q] == '\t')) {
                size_t ts = q, te = e;
                while (ts < te && (text[ts] == ' ' || text[ts] == '\t'))
                    ts++;
                while (te > ts && (text[te - 1] == ' ' || text[te - 1] == '\t'))
                    te--;
                /* A closing sequence of #s, preceded by a space (or being
                 * the whole title), is not part of the title. */
                size_t c = te;
                while (c > ts && text[c - 1] == '#')
                    c--;
                if (c == ts || text[c - 1] == ' ' || text[c - 1] == '\t') {
                    te = c;
                    while (te > ts &&
                           (text[te - 1] == ' ' || text[te - 1] == '\t'))
                        te--;
                }
                chunk_heading h = {line, e, ts, te, level};
                int rc = push_heading(out, n, &cap, &h, err);
                if (rc) {
                    free(*out);
                    *out = NULL;
                    *n = 0;
                    return rc;
                }
            }
        }
        line = next;
    }
    return LODE_OK;
}

/* ---- splitting -------------------------------------------------------- */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Does the text just before `end` (bytes [begin, end)) close a sentence:
 * . ! ? possibly followed by closing quotes, brackets or emphasis marks,
 * or a CJK full stop / exclamation / question mark? */
static int ends_sentence(const char *s, size_t begin, size_t end)
{
    while (end > begin && strchr(")]\"'*_", s[end - 1]) && s[end - 1])
        end--;
    /* ” and ’ (U+201D, U+2019) */
    while (end >= begin + 3 && (unsigned char)s[end - 3] == 0xE2 &&
           (unsigned char)s[end - 2] == 0x80 &&
           ((unsigned char)s[end - 1] == 0x9D ||
            (unsigned char)s[end - 1] == 0x99))
        end -= 3;
    if (end == begin)
        return 0;
    char c = s[end - 1];
    if (c == '.' || c == '!' || c == '?')
        return 1;
    if (end >= begin + 3) {
        const unsigned char *u = (const unsigned char *)s + end - 3;
        if (u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x82) /* 。 */
            return 1;
        if (u[0] == 0xEF && u[1] == 0xBC && (u[2] == 0x81 || u[2] == 0x9F))
            return 1; /* ！ ？ */
    }
    return 0;
}

/* Code points in [a, b). */
static size_t count_chars(const char *s, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Scratch for one chunk_split call. */
typedef struct splitter {
    const tok_tokenizer *tok;
    const char *text;
    chunk_options opts;
    chunk_list *out;
    int32_t *ids, *offsets;     /* section tokens */
    size_t tok_cap;
    atom *atoms;
    size_t atom_cap;
    int *cum;                   /* cum[i]: tokens in atoms [0, i) */
    int32_t *check_ids;         /* re-tokenizing one chunk */
    /* character offset bookkeeping: chars before byte `char_pos` */
    size_t char_pos, char_count;
} splitter;

static int grow(void **p, size_t *cap, size_t need, size_t size,
                lode_error *err)
{
    if (need <= *cap)
        return LODE_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * size);
    if (!np)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    *p = np;
    *cap = nc;
    return LODE_OK;
}

/* Characters before byte position pos (pos never moves backwards by more
 * than it must: chunk starts only grow, so the cursor follows them). */
static size_t char_offset(splitter *sp, size_t pos)
{
    if (pos >= sp->char_pos) {
        sp->char_count += count_chars(sp->text, sp->char_pos, pos);
        sp->char_pos = pos;
        return sp->char_count;
    }
    return sp->char_count - count_chars(sp->text, pos, sp->char_pos);
}

static int add_chunk(splitter *sp, size_t start, size_t end, int tokens,
                     long path, lode_error *err)
{
    /* Only a section without a single token gives a run of atoms that
     * re-tokenizes to nothing (found by fuzz_extract: a lone U+0742, a
     * combining mark the uncased tokenizer strips): no chunk, since
     * there is nothing to embed and nothing a search could find. */
    if (tokens == 0)
        return LODE_OK;
    chunk_list *l = sp->out;
    int rc = grow((void **)&l->chunks, &l->cap, l->n + 1, sizeof *l->chunks,
                  err);
    if (rc)
        return rc;
    chunk *c = &l->chunks[l->n++];
    c->byte_start = start;
    c->byte_end = end;
    c->char_start = char_offset(sp, start);
    c->char_end = c->char_start + count_chars(sp->text, start, end);
    c->token_count = tokens;
    /* Until the end of chunk_split, heading holds the path's offset into
     * l->paths plus one (0: none), since l->paths may still move. */
    c->heading = (const char *)(uintptr_t)(path + 1);
    return LODE_OK;
}

/* Tokens of text[start, end) alone. */
static int count_tokens(splitter *sp, size_t start, size_t end, int *count,
                        lode_error *err)
{
    int n_ids, n_full;
    int rc = tok_encode(sp->tok, sp->text + start, end - start,
                        sp->opts.max_tokens + 2, sp->check_ids, &n_ids,
                        &n_full, NULL, err);
    if (rc)
        return rc;
    *count = n_full - 2;
    return LODE_OK;
}

/* The end of the longest prefix of text[start, end) (at least one
 * character, cut between characters) whose tokens alone fit in budget;
 * *tokens gets their number.  Binary search: a longer prefix has as many
 * tokens or more, except where a piece boundary moves, and the result is
 * checked either way. */
static int fitting_prefix(splitter *sp, size_t start, size_t end, int budget,
                          size_t *cut, int *tokens, lode_error *err)
{
    size_t lo = start + 1;               /* one character always fits */
    while (lo < end && ((unsigned char)sp->text[lo] & 0xC0) == 0x80)
        lo++;
    int rc = count_tokens(sp, start, lo, tokens, err);
    size_t hi = end;
    while (!rc && hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        while (mid > lo && ((unsigned char)sp->text[mid] & 0xC0) == 0x80)
            mid--;
        if (mid == lo)
            break;
        int t;
        if ((rc = count_tokens(sp, start, mid, &t, err)))
            break;
        if (t <= budget) {
            lo = mid;
            *tokens = t;
        } else {
            hi = mid;
        }
    }
    *cut = lo;
    return rc;
}

/* Build the atoms of section [s0, s1).  Sets *n_atoms. */
static int make_atoms(splitter *sp, size_t s0, size_t s1, size_t *n_atoms,
                      lode_error *err)
{
    const char *t = sp->text + s0;
    size_t len = s1 - s0;
    *n_atoms = 0;
    /* A token covers at least one byte, so len + 2 ids always suffice. */
    int rc = grow((void **)&sp->ids, &sp->tok_cap, len + 2, sizeof *sp->ids,
                  err);
    if (rc)
        return rc;
    int32_t *offsets = realloc(sp->offsets,
                               sp->tok_cap * 2 * sizeof *sp->offsets);
    if (!offsets)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    sp->offsets = offsets;
    int n_ids, n_full;
    if ((rc = tok_encode(sp->tok, t, len, (int)(len + 2), sp->ids, &n_ids,
                         &n_full, sp->offsets, err)))
        return rc;
    int n_tokens = n_ids - 2;
    const int32_t *off = sp->offsets + 2; /* token k: off[2k], off[2k+1] */
    const int32_t *ids = sp->ids + 1;

    size_t na = 0;
    int k = 0;             /* next token */
    size_t prev_end = 0;   /* end of the previous word */
    int first_word = 1;
    for (size_t i = 0; i < len;) {
        if (is_space((unsigned char)t[i])) {
            i++;
            continue;
        }
        size_t ws = i, we = i;
        while (we < len && !is_space((unsigned char)t[we]))
            we++;
        /* Boundary before this word, from the whitespace before it. */
        int brk = BREAK_WORD;
        if (first_word) {
            brk = BREAK_PARAGRAPH;
        } else {
            int newlines = 0;
            for (size_t j = prev_end; j < ws; j++)
                newlines += t[j] == '\n';
            if (newlines >= 2)
                brk = BREAK_PARAGRAPH;
            else if (newlines == 1)
                brk = BREAK_LINE;
            else if (ends_sentence(t, 0, prev_end))
                brk = BREAK_SENTENCE;
        }
        first_word = 0;
        /* Tokens starting inside the word (a token never starts in
         * whitespace; skip any that would, defensively). */
        while (k < n_tokens && (size_t)off[2 * k] < ws)
            k++;
        if ((rc = grow((void **)&sp->atoms, &sp->atom_cap,
                       na + 1 + (size_t)(we - ws), sizeof *sp->atoms, err)))
            return rc;
        atom *a = &sp->atoms[na++];
        a->start = (uint32_t)ws;
        a->end = (uint32_t)we;
        a->tokens = 0;
        a->brk = brk;
        int first_token = 1;
        for (; k < n_tokens && (size_t)off[2 * k] < we; k++) {
            size_t ts = (size_t)off[2 * k];
            if (first_token) {
                a->tokens = 1;
                first_token = 0;
                continue;
            }
            const char *piece = tok_token(sp->tok, ids[k]);
            int cont = piece && piece[0] == '#' && piece[1] == '#' &&
                       piece[2] != '\0';
            a->end = (uint32_t)ts;
            a = &sp->atoms[na++];
            a->start = (uint32_t)ts;
            a->end = (uint32_t)we;
            a->tokens = 1;
            a->brk = cont ? BREAK_PIECE
                   : ends_sentence(t, ws, ts) ? BREAK_SENTENCE
                   : BREAK_SUBWORD;
        }
        prev_end = we;
        i = we;
    }
    *n_atoms = na;
    return LODE_OK;
}

/* Chunk section [s0, s1) whose heading path is at offset `path` (-1:
 * none). */
static int split_section(splitter *sp, size_t s0, size_t s1, long path,
                         lode_error *err)
{
    size_t n;
    int rc = make_atoms(sp, s0, s1, &n, err);
    if (rc || n == 0)
        return rc;
    int *cum = realloc(sp->cum, (n + 1) * sizeof *cum);
    if (!cum)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    sp->cum = cum;
    cum[0] = 0;
    for (size_t i = 0; i < n; i++)
        cum[i + 1] = cum[i] + sp->atoms[i].tokens;

    const atom *at = sp->atoms;
    const int budget = sp->opts.max_tokens;
    const int min_fill = budget / 4;
    size_t p = 0, prev_end = 0; /* prev_end: atoms [0, prev_end) chunked */
    while (p < n) {
        /* q: the most atoms from p that fit the budget (at least one). */
        size_t q = p + 1;
        while (q < n && cum[q + 1] - cum[p] <= budget)
            q++;
        size_t c = q;
        if (q < n) {
            /* The strongest boundary in (p, q], the latest on ties; cuts
             * leaving a chunk under min_fill tokens only when there is no
             * word boundary past it.  Never at or before the end of the
             * previous chunk, so each chunk reaches further. */
            size_t lowest = p > prev_end ? p : prev_end;
            int best = -1;
            for (int pass = 0; pass < 2 && best < BREAK_WORD; pass++) {
                best = -1;
                for (size_t x = q; x > lowest; x--) {
                    if (pass == 0 && cum[x] - cum[p] < min_fill)
                        break;
                    int b = x < n ? at[x].brk : BREAK_PARAGRAPH;
                    if (b > best) {
                        best = b;
                        c = x;
                    }
                }
            }
        }
        /* Re-tokenize; shorten while over budget (cuts inside words). */
        int tokens;
        for (;;) {
            if ((rc = count_tokens(sp, s0 + at[p].start, s0 + at[c - 1].end,
                                   &tokens, err)))
                return rc;
            if (tokens <= budget || c == p + 1)
                break;
            c--;
        }
        if (tokens > budget) {
            /* One atom that is one token in its word (a word over the
             * tokenizer's length limit is one [UNK]) but many when cut
             * from it: chunk its longest prefix that fits and go on from
             * there, inside the same atom. */
            size_t cut;
            if ((rc = fitting_prefix(sp, s0 + at[p].start, s0 + at[p].end,
                                     budget, &cut, &tokens, err)) ||
                (rc = add_chunk(sp, s0 + at[p].start, cut, tokens, path, err)))
                return rc;
            sp->atoms[p].start = (uint32_t)(cut - s0);
            prev_end = p;
            continue;
        }
        if ((rc = add_chunk(sp, s0 + at[p].start, s0 + at[c - 1].end, tokens,
                            path, err)))
            return rc;
        if (c >= n)
            break;
        prev_end = c;
        /* Overlap: the next chunk starts at the strongest boundary x in
         * (p, c) leaving at most overlap_tokens (and at least one) shared,
         * the earliest on ties. */
        size_t next = c;
        if (sp->opts.overlap_tokens > 0) {
            int best = -1;
            for (size_t x = c - 1; x > p; x--) {
                int shared = cum[c] - cum[x];
                if (shared > sp->opts.overlap_tokens)
                    break;
                if (shared >= 1 && at[x].brk >= best) {
                    best = at[x].brk;
                    next = x;
                }
            }
        }
        p = next;
    }
    return LODE_OK;
}

/* Append the heading path of heading h (given the stack of open headings)
 * to out->paths; *path receives its offset, or -1 when it is empty. */
static int push_path(chunk_list *l, const char *text,
                     const chunk_heading *const *stack, int depth,
                     long *path, lode_error *err)
{
    size_t need = 1;
    int parts = 0;
    for (int i = 0; i < depth; i++) {
        size_t tl = stack[i]->title_end - stack[i]->title_start;
        if (tl) {
            need += tl + 3;
            parts++;
        }
    }
    if (!parts) {
        *path = -1;
        return LODE_OK;
    }
    int rc = grow((void **)&l->paths, &l->paths_cap, l->paths_len + need, 1,
                  err);
    if (rc)
        return rc;
    *path = (long)l->paths_len;
    char *w = l->paths + l->paths_len;
    int written = 0;
    for (int i = 0; i < depth; i++) {
        size_t tl = stack[i]->title_end - stack[i]->title_start;
        if (!tl)
            continue;
        if (written++) {
            memcpy(w, " > ", 3);
            w += 3;
        }
        memcpy(w, text + stack[i]->title_start, tl);
        w += tl;
    }
    *w++ = '\0';
    l->paths_len = (size_t)(w - l->paths);
    return LODE_OK;
}

int chunk_split(const tok_tokenizer *tok, const char *text, size_t len,
                const chunk_heading *headings, size_t n_headings,
                const chunk_options *opts, chunk_list *out, lode_error *err)
{
    out->n = 0;
    out->paths_len = 0;
    if (opts->max_tokens < 1 || opts->overlap_tokens < 0)
        return lode_error_set(err, LODE_EINVAL, "bad chunk options");
    if (len > (size_t)INT32_MAX)
        return lode_error_set(err, LODE_ELIMIT,
                              "text of %zu bytes is over the 2 GiB limit",
                              len);
    for (size_t i = 0; i < n_headings; i++) {
        const chunk_heading *h = &headings[i];
        if (h->line_start > h->line_end || h->line_end > len ||
            h->title_start < h->line_start || h->title_end < h->title_start ||
            h->title_end > h->line_end || h->level < 1 || h->level > 6 ||
            (i && h->line_start < headings[i - 1].line_end))
            return lode_error_set(err, LODE_EINVAL,
                                  "heading %zu is out of order or bounds", i);
    }
    splitter sp = {0};
    sp.tok = tok;
    sp.text = text;
    sp.opts = *opts;
    sp.out = out;
    sp.check_ids = malloc(((size_t)opts->max_tokens + 2) * sizeof *sp.check_ids);
    int rc = LODE_OK;
    if (!sp.check_ids) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    const chunk_heading *stack[6];
    int depth = 0;
    size_t start = 0;
    long path = -1;
    for (size_t i = 0; i <= n_headings; i++) {
        size_t end = i < n_headings ? headings[i].line_start : len;
        if (end > start && (rc = split_section(&sp, start, end, path, err)))
            goto out;
        if (i == n_headings)
            break;
        const chunk_heading *h = &headings[i];
        while (depth > 0 && stack[depth - 1]->level >= h->level)
            depth--;
        stack[depth++] = h;
        if ((rc = push_path(out, text, stack, depth, &path, err)))
            goto out;
        start = h->line_start;
    }
    /* Paths are final: turn offsets into pointers. */
    for (size_t i = 0; i < out->n; i++) {
        uintptr_t v = (uintptr_t)out->chunks[i].heading;
        out->chunks[i].heading = v ? out->paths + (v - 1) : NULL;
    }
out:
    if (rc)
        out->n = 0;
    free(sp.ids);
    free(sp.offsets);
    free(sp.atoms);
    free(sp.cum);
    free(sp.check_ids);
    return rc;
}

void chunk_list_free(chunk_list *list)
{
    if (!list)
        return;
    free(list->chunks);
    free(list->paths);
    memset(list, 0, sizeof *list);
}
