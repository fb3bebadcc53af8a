/* test_chunk.c - the chunker against the real all-MiniLM-L6-v2 tokenizer:
 * Markdown heading detection, and for many texts (the sample corpus,
 * synthetic prose, pathological inputs) the invariants of chunk.h: no
 * chunk over N tokens (re-tokenized here), token counts exact, offsets
 * exact in bytes and code points, chunks trimmed, every non-whitespace
 * byte covered, chunks inside their section, overlap present and bounded.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "model.h"
#include "test.h"

#define MODEL_DIR "models/all-MiniLM-L6-v2"

static const tok_tokenizer *tok;

static int tokens_of(const char *s, size_t len)
{
    static int32_t ids[1 << 16];
    int n, full;
    lode_error err = {0};
    if (tok_encode(tok, s, len, 1 << 16, ids, &n, &full, NULL, &err))
        return -1;
    return full - 2;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static size_t chars(const char *s, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Check every invariant for one text; returns the chunk count. */
static size_t check(const char *name, const char *text, size_t len,
                    const chunk_heading *h, size_t nh, int max_tokens,
                    int overlap, chunk_list *l)
{
    chunk_options o = {max_tokens, overlap};
    lode_error err = {0};
    int rc = chunk_split(tok, text, len, h, nh, &o, l, &err);
    CHECK(rc == 0, "%s: %s", name, err.message);
    if (rc)
        return 0;
    char *covered = calloc(len + 1, 1);
    int bad_tokens = 0, bad_count = 0, bad_offsets = 0, bad_trim = 0,
        bad_order = 0, bad_section = 0, bad_overlap = 0;
    for (size_t i = 0; i < l->n; i++) {
        const chunk *c = &l->chunks[i];
        if (c->byte_end <= c->byte_start || c->byte_end > len) {
            bad_offsets++;
            continue;
        }
        int t = tokens_of(text + c->byte_start, c->byte_end - c->byte_start);
        bad_tokens += t > max_tokens || c->token_count < 1;
        bad_count += t != c->token_count;
        bad_offsets += c->char_start != chars(text, 0, c->byte_start) ||
                       c->char_end != chars(text, 0, c->byte_end);
        bad_trim += is_ws((unsigned char)text[c->byte_start]) ||
                    is_ws((unsigned char)text[c->byte_end - 1]);
        memset(covered + c->byte_start, 1, c->byte_end - c->byte_start);
        /* inside one section: no heading line starts strictly inside */
        for (size_t k = 0; k < nh; k++)
            bad_section += h[k].line_start > c->byte_start &&
                           h[k].line_start < c->byte_end;
        if (i > 0) {
            const chunk *p = &l->chunks[i - 1];
            bad_order += c->byte_start <= p->byte_start ||
                         c->byte_end <= p->byte_end;
            /* (An overlap starting inside a word is counted in the
             * word's pieces, which re-tokenize differently alone.) */
            if (c->byte_start < p->byte_end &&
                is_ws((unsigned char)text[c->byte_start - 1])) {
                int shared = tokens_of(text + c->byte_start,
                                       p->byte_end - c->byte_start);
                bad_overlap += shared > overlap;
            }
        }
    }
    /* Every non-whitespace byte is in a chunk, but those of a run with
     * no tokens at all (a section of dropped characters only). */
    size_t uncovered = 0;
    for (size_t i = 0; i < len;) {
        if (covered[i] || is_ws((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < len && !covered[end])
            end++;
        if (tokens_of(text + i, end - i) > 0)
            uncovered += end - i;
        i = end;
    }
    free(covered);
    CHECK(bad_tokens == 0, "%s: %d chunks over %d tokens or empty", name,
          bad_tokens, max_tokens);
    CHECK(bad_count == 0, "%s: %d wrong token counts", name, bad_count);
    CHECK(bad_offsets == 0, "%s: %d wrong offsets", name, bad_offsets);
    CHECK(bad_trim == 0, "%s: %d chunks not trimmed", name, bad_trim);
    CHECK(bad_order == 0, "%s: %d chunks out of order", name, bad_order);
    CHECK(bad_section == 0, "%s: %d chunks span sections", name, bad_section);
    CHECK(bad_overlap == 0, "%s: %d overlaps too long", name, bad_overlap);
    CHECK(uncovered == 0, "%s: %zu non-whitespace bytes in no chunk", name,
          uncovered);
    return l->n;
}

static size_t check_md(const char *name, const char *text, int n, int ov,
                       chunk_list *l)
{
    chunk_heading *h;
    size_t nh;
    lode_error err = {0};
    CHECK(chunk_find_markdown_headings(text, strlen(text), &h, &nh, &err) == 0,
          "%s", err.message);
    size_t r = check(name, text, strlen(text), h, nh, n, ov, l);
    free(h);
    return r;
}

static void test_headings(void)
{
    const char *md = "intro\n"
                     "# One\n"
                     "text\n"
                     "   ## Two ##  \r\n"
                     "    # indented code, not a heading\n"
                     "#hashtag is not a heading\n"
                     "####### seven is not a heading\n"
                     "```\n"
                     "# inside a fence\n"
                     "```\n"
                     "### Three # not closing\n"
                     "~~~~\n"
                     "# fenced\n"
                     "~~~\n"
                     "# still fenced (closing fence too short)\n"
                     "~~~~~\n"
                     "#\n";
    chunk_heading *h;
    size_t n;
    lode_error err = {0};
    CHECK(chunk_find_markdown_headings(md, strlen(md), &h, &n, &err) == 0,
          "%s", err.message);
    CHECK(n == 4, "found %zu headings", n);
    if (n == 4) {
        CHECK(h[0].level == 1 && h[0].title_end - h[0].title_start == 3 &&
                  memcmp(md + h[0].title_start, "One", 3) == 0 &&
                  h[0].line_start == 6,
              "heading 0");
        CHECK(h[1].level == 2 && h[1].title_end - h[1].title_start == 3 &&
                  memcmp(md + h[1].title_start, "Two", 3) == 0 &&
                  md[h[1].line_end] == '\r',
              "heading 1: closing #s and CR dropped");
        CHECK(h[2].level == 3 &&
                  h[2].title_end - h[2].title_start ==
                      strlen("Three # not closing"),
              "heading 2");
        CHECK(h[3].level == 1 && h[3].title_end == h[3].title_start,
              "heading 3 (empty)");
    }
    free(h);

    /* Heading paths, and empty titles left out of them. */
    const char *doc = "Preamble text.\n\n"
                      "# Leave\n\nAbout leave.\n\n"
                      "## Annual leave\n\nTwenty-five days.\n\n"
                      "### Carry-over\n\nFive days.\n\n"
                      "## Sick leave\n\nCall in.\n\n"
                      "# Pay\n\n#\n\nMonthly.\n";
    /* (The empty "#" closes "Pay" like any level-1 heading.) */
    chunk_list l = {0};
    size_t nc = check_md("paths", doc, 200, 30, &l);
    const char *want[] = {NULL, "Leave", "Leave > Annual leave",
                          "Leave > Annual leave > Carry-over",
                          "Leave > Sick leave", "Pay", NULL};
    CHECK(nc == 7, "paths: %zu chunks", nc);
    for (size_t i = 0; i < nc && i < 7; i++) {
        const char *got = l.chunks[i].heading;
        CHECK((!got && !want[i]) || (got && want[i] && !strcmp(got, want[i])),
              "chunk %zu heading '%s', want '%s'", i, got ? got : "(null)",
              want[i] ? want[i] : "(null)");
    }
    if (nc >= 4)
        CHECK(strncmp(doc + l.chunks[3].byte_start, "### Carry-over\n\nFive days.",
                      l.chunks[3].byte_end - l.chunks[3].byte_start) == 0,
              "a section's chunk starts with its heading line");
    chunk_list_free(&l);
}

static void test_options(void)
{
    lode_error err = {0};
    chunk_options d = chunk_default_options(256);
    CHECK(d.max_tokens == 200 && d.overlap_tokens == 30, "defaults %d/%d",
          d.max_tokens, d.overlap_tokens);
    d = chunk_default_options(40);
    CHECK(d.max_tokens == 38 && d.overlap_tokens == 7, "small model %d/%d",
          d.max_tokens, d.overlap_tokens);
    chunk_options o = {255, 30};
    CHECK(chunk_check_options(&o, 256, &err) == LODE_EINVAL &&
              strstr(err.message, "at most 254"),
          "N over max_seq_length - 2 refused: %s", err.message);
    o = (chunk_options){254, 30};
    CHECK(chunk_check_options(&o, 256, &err) == 0, "N = 254 fits");
    o = (chunk_options){8, 2};
    CHECK(chunk_check_options(&o, 256, &err) == LODE_EINVAL, "N too small");
    o = (chunk_options){100, 51};
    CHECK(chunk_check_options(&o, 256, &err) == LODE_EINVAL, "overlap > N/2");
}

/* Prose of numbered sentences in paragraphs: long sections. */
static char *prose(int sentences, int per_paragraph)
{
    size_t cap = (size_t)sentences * 80 + 1, len = 0;
    char *s = malloc(cap);
    for (int i = 0; i < sentences; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "Sentence %d says the leave year has %d days%s",
                                i, i * 7 % 31,
                                (i + 1) % per_paragraph ? ". " : ".\n\n");
    return s;
}

static void test_overlap_and_budget(void)
{
    chunk_list l = {0};
    char *p = prose(400, 7);
    size_t n = check("prose", p, strlen(p), NULL, 0, 200, 30, &l);
    CHECK(n > 10, "prose: %zu chunks", n);
    int overlapping = 0, para_cuts = 0, sentence_starts = 0;
    for (size_t i = 1; i < l.n; i++) {
        overlapping += l.chunks[i].byte_start < l.chunks[i - 1].byte_end;
        size_t e = l.chunks[i - 1].byte_end;
        para_cuts += e + 2 <= strlen(p) && p[e] == '\n' && p[e + 1] == '\n';
        sentence_starts += !strncmp(p + l.chunks[i].byte_start, "Sentence", 8);
    }
    CHECK(overlapping == (int)l.n - 1, "prose: %d of %zu chunks overlap",
          overlapping, l.n - 1);
    CHECK(para_cuts == (int)l.n - 1, "prose: %d of %zu cuts at paragraphs",
          para_cuts, l.n - 1);
    CHECK(sentence_starts == (int)l.n - 1,
          "prose: %d of %zu overlaps start at a sentence", sentence_starts,
          l.n - 1);
    /* Chunks use the budget well (paragraphs are ~90 tokens). */
    int small = 0;
    for (size_t i = 0; i + 1 < l.n; i++)
        small += l.chunks[i].token_count < 100;
    CHECK(small == 0, "prose: %d chunks under half the budget", small);

    /* No overlap asked: none given, still full coverage. */
    n = check("prose/0", p, strlen(p), NULL, 0, 64, 0, &l);
    int shared = 0;
    for (size_t i = 1; i < l.n; i++)
        shared += l.chunks[i].byte_start < l.chunks[i - 1].byte_end;
    CHECK(shared == 0, "overlap 0: %d chunks overlap", shared);
    /* One endless paragraph: cut at sentences. */
    for (char *c = p; *c; c++)
        if (*c == '\n')
            *c = ' ';
    check("one paragraph", p, strlen(p), NULL, 0, 50, 10, &l);
    int at_sentence = 0;
    for (size_t i = 0; i + 1 < l.n; i++) {
        size_t e = l.chunks[i].byte_end;
        at_sentence += p[e - 1] == '.';
    }
    CHECK(at_sentence == (int)l.n - 1, "%d of %zu cuts after a sentence",
          at_sentence, l.n - 1);
    free(p);
    chunk_list_free(&l);
}

static void test_pathological(void)
{
    chunk_list l = {0};
    lode_error err = {0};
    chunk_options o = {200, 30};
    /* Empty and whitespace-only texts: no chunks. */
    CHECK(chunk_split(tok, "", 0, NULL, 0, &o, &l, &err) == 0 && l.n == 0,
          "empty");
    CHECK(chunk_split(tok, " \n\t\r\n ", 6, NULL, 0, &o, &l, &err) == 0 &&
              l.n == 0,
          "whitespace only");
    /* Only headings: one chunk each, the heading line. */
    size_t n = check_md("only headings", "# A\n## B\n### C\n# D", 200, 30, &l);
    CHECK(n == 4, "only headings: %zu chunks", n);
    if (n == 4)
        CHECK(!strcmp(l.chunks[2].heading, "A > B > C") &&
                  l.chunks[3].byte_end - l.chunks[3].byte_start == 3,
              "only headings: paths");

    size_t big = 10000;
    char *s = malloc(big * 3 + 1);
    /* One 10k-character word: the tokenizer's [UNK], one chunk. */
    memset(s, 'a', big);
    s[big] = '\0';
    n = check("10k word", s, big, NULL, 0, 200, 30, &l);
    CHECK(n == 1 && l.chunks[0].token_count == 1, "10k word: %zu chunks", n);
    /* No spaces but punctuation: "x." * 5000, every char a token. */
    for (size_t i = 0; i < big; i++)
        s[i] = i % 2 ? '.' : 'x';
    n = check("no spaces", s, big, NULL, 0, 200, 30, &l);
    CHECK(n >= 50, "no spaces: %zu chunks", n);
    /* CJK without spaces: 3000 ideographs (9000 bytes), each a token,
     * with a full stop every 40. */
    size_t len = 0;
    for (int i = 0; i < 3000; i++) {
        const char *c = i % 40 == 39 ? "\xe3\x80\x82" : "\xe4\xb8\xad";
        memcpy(s + len, c, 3);
        len += 3;
    }
    s[len] = '\0';
    n = check("cjk", s, len, NULL, 0, 200, 30, &l);
    int at_stop = 0;
    for (size_t i = 0; i + 1 < l.n; i++)
        at_stop += !memcmp(s + l.chunks[i].byte_end - 3, "\xe3\x80\x82", 3);
    CHECK(n >= 15 && at_stop == (int)n - 1,
          "cjk: %zu chunks, %d cut at a full stop", n, at_stop);
    /* Words of many word pieces with a tiny budget: cuts inside words,
     * re-tokenized to stay within budget. */
    len = 0;
    unsigned x = 12345;
    for (int w = 0; w < 40; w++) {
        for (int i = 0; i < 90; i++) {
            x = x * 1103515245 + 12345;
            s[len++] = (char)('a' + (x >> 16) % 26);
        }
        s[len++] = ' ';
    }
    s[len] = '\0';
    check("word pieces", s, len, NULL, 0, 16, 4, &l);
    /* fuzz_extract's finding (a fuzz input: format, size and overlap
     * bytes, then Markdown): a pre-tokenizer word that is one [UNK] in its
     * longer word but 31 pieces alone; cut inside it to stay in 16. */
    FILE *f = fopen("fuzz/corpus/extract/regress-chunk-over-max-tokens", "rb");
    CHECK(f != NULL, "the fuzz finding's input is there");
    if (f) {
        size_t got = fread(s, 1, big * 3, f);
        fclose(f);
        s[got] = '\0';
        CHECK(got > 3 && s[0] == 1 && s[1] == 0 && s[2] == 0, "finding: Markdown, 16, 0");
        if (got > 3)
            check_md("fuzz finding", s + 3, 16, 0, &l);
    }
    /* Control and format characters the tokenizer drops are covered
     * beside words; a text of nothing else has nothing to embed and
     * gives no chunk (not one of 0 tokens, which embedding refuses). */
    const char *ctl = "\x01\x02 \xe2\x80\x8b";
    n = check("controls", ctl, strlen(ctl), NULL, 0, 16, 4, &l);
    CHECK(n == 0, "controls: %zu chunks", n);
    /* fuzz_extract's second finding: a lone U+0742 (a Syriac combining
     * mark the uncased tokenizer strips) was one chunk of 0 tokens.  The
     * seed is the fuzz input: format, size and overlap bytes, then the
     * text. */
    f = fopen("fuzz/corpus/extract/regress-chunk-no-tokens", "rb");
    CHECK(f != NULL, "the second finding's input is there");
    if (f) {
        size_t got = fread(s, 1, big * 3, f);
        fclose(f);
        s[got] = '\0';
        CHECK(got == 5 && !memcmp(s + 3, "\xdd\x82", 2), "finding: U+0742");
        n = check("lone mark", s + 3, got - 3, NULL, 0, 16, 4, &l);
        CHECK(n == 0, "lone mark: %zu chunks", n);
    }
    const char *mark = "\xdd\x82 word \xdd\x82";
    n = check("marks and a word", mark, strlen(mark), NULL, 0, 16, 4, &l);
    CHECK(n == 1 && l.chunks[0].byte_start == 0 &&
              l.chunks[0].byte_end == strlen(mark),
          "marks and a word: one chunk of it all (%zu)", n);
    /* Markdown whose text before the first heading is a mark alone: no
     * chunk for it, one for each section after it.  (A heading line
     * always has a token: its "#".) */
    const char *md = "\xdd\x82\n\n# One\n\nfirst words\n\n# Two\n\nmore";
    n = check_md("mark section", md, 16, 4, &l);
    CHECK(n == 2 && l.chunks[0].byte_start == 4,
          "mark section: %zu chunks, the first at byte %zu", n,
          n ? l.chunks[0].byte_start : 0);
    const char *mixed = "caf\xc3\xa9\r\n\r\nna\xc3\xafve \x01word\ttab";
    check("mixed", mixed, strlen(mixed), NULL, 0, 16, 4, &l);
    /* Invalid UTF-8 is refused. */
    CHECK(chunk_split(tok, "ab\xff", 3, NULL, 0, &o, &l, &err) == LODE_EUTF8,
          "invalid UTF-8 refused");
    /* Headings out of order are refused. */
    chunk_heading hs[2] = {{5, 8, 7, 8, 1}, {0, 3, 2, 3, 1}};
    CHECK(chunk_split(tok, "# a\n\n# b", 8, hs, 2, &o, &l, &err) == LODE_EINVAL,
          "bad headings refused");
    free(s);
    chunk_list_free(&l);
}

static void test_sample_corpus(void)
{
    DIR *d = opendir("data/sample");
    CHECK(d != NULL, "data/sample missing");
    if (!d)
        return;
    chunk_list l = {0};
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 4 || strcmp(e->d_name + nl - 3, ".md"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "data/sample/%s", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static char buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        check_md(path, buf, 200, 30, &l);
        check_md(path, buf, 32, 8, &l);
        files++;
    }
    closedir(d);
    CHECK(files >= 10, "only %d sample files", files);
    chunk_list_free(&l);
}

int main(void)
{
    model *m = NULL;
    lode_error err = {0};
    if (model_load(MODEL_DIR, &m, &err)) {
        fprintf(stderr, "test_chunk: %s\n", err.message);
        return 1;
    }
    tok = model_tokenizer(m);
    test_headings();
    test_options();
    test_overlap_and_budget();
    test_pathological();
    test_sample_corpus();
    model_free(m);
    TEST_MAIN_END();
}
