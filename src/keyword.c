/* keyword.c - free text to FTS5 MATCH expressions (see keyword.h).
 *
 * One pass over the text splits it into quoted phrases and words (runs of
 * anything but spaces and double quotes).  A word loses the punctuation
 * around it ("(see", "done?"); what is left is either an identifier, kept
 * whole, or split at its ASCII punctuation into plain words ("don't" ->
 * don, t; "/etc/hosts" -> etc, hosts).  Every term is written out as an
 * FTS5 string with any double quote doubled, so no character of the text
 * can reach the FTS5 query parser as syntax.
 */
#include "keyword.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

typedef enum term_kind { TERM_WORD, TERM_IDENTIFIER, TERM_PHRASE } term_kind;

typedef struct term {
    const char *text;
    size_t len;
    term_kind kind;
} term;

/* English function words: they match nearly every chunk and weigh nearly
 * nothing in BM25 (Lucene's English stop set, plus the words questions
 * are made of). */
static const char *const stopwords[] = {
    "a", "about", "am", "an", "and", "are", "as", "at", "be", "been", "but",
    "by", "can", "could", "did", "do", "does", "for", "from", "had", "has",
    "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my",
    "no", "not", "of", "on", "or", "our", "should", "so", "such", "than",
    "that", "the", "their", "then", "there", "these", "they", "this", "to",
    "was", "we", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "would", "you", "your",
};

static bool is_ascii_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A character of a word: ASCII letters and digits, and every byte of a
 * non-ASCII character (unicode61 sorts those out inside the string). */
static bool is_word_char(unsigned char c)
{
    return is_ascii_alnum(c) || c >= 0x80;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool same_text(const char *a, size_t na, const char *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static bool is_stopword(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof stopwords / sizeof stopwords[0]; i++)
        if (same_text(w, n, stopwords[i], strlen(stopwords[i])))
            return true;
    return false;
}

/* Looks like an identifier: an underscore (max_tokens); a digit with a
 * letter (E1234, utf-8, x11) or with inner punctuation (2024-07, 1.2.3);
 * a number of three digits or more (2024, 404); a dash inside a word
 * with a capital letter (X-Forwarded-For).  Not: 25, well-known, e-mail,
 * which are ordinary words. */
static bool is_identifier(const char *w, size_t n)
{
    size_t digits = 0, letters = 0;
    bool underscore = false, inner_punct = false, inner_dash = false, capital = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        bool inner = i > 0 && i + 1 < n;
        digits += c >= '0' && c <= '9';
        letters += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
        underscore |= c == '_';
        capital |= c >= 'A' && c <= 'Z';
        inner_dash |= c == '-' && inner;
        inner_punct |= inner && !is_word_char(c);
    }
    if (underscore && digits + letters > 0)
        return true;
    if (digits)
        return letters > 0 || inner_punct || digits >= 3;
    return inner_dash && capital;
}

typedef struct term_list {
    term items[KEYWORD_MAX_TERMS];
    size_t n;
} term_list;

static void add_term(term_list *l, const char *text, size_t len, term_kind kind)
{
    if (l->n == KEYWORD_MAX_TERMS)
        return;
    for (size_t i = 0; i < l->n; i++)
        if (same_text(l->items[i].text, l->items[i].len, text, len)) {
            if (kind > l->items[i].kind)     /* a quoted or identifier twin wins */
                l->items[i].kind = kind;
            return;
        }
    l->items[l->n++] = (term){text, len, kind};
}

/* One word between spaces and quotes: trimmed, then kept whole as an
 * identifier or split into plain words. */
static void add_word(term_list *l, const char *w, size_t n)
{
    while (n && !is_word_char((unsigned char)w[0])) {
        w++;
        n--;
    }
    while (n && !is_word_char((unsigned char)w[n - 1]))
        n--;
    if (!n)
        return;
    if (is_identifier(w, n)) {
        add_term(l, w, n, TERM_IDENTIFIER);
        return;
    }
    size_t i = 0;
    while (i < n) {
        while (i < n && !is_word_char((unsigned char)w[i]))
            i++;
        size_t start = i;
        while (i < n && is_word_char((unsigned char)w[i]))
            i++;
        size_t len = i - start;
        /* one ASCII letter ("t" of don't) matches too much to help */
        if (len > 1 || (len == 1 && !(w[start] >= 'A' && w[start] <= 'z')))
            add_term(l, w + start, len, TERM_WORD);
    }
}

static void split_terms(const char *text, term_list *l)
{
    const char *p = text;
    while (*p) {
        if (*p == '"') {
            const char *close = strchr(p + 1, '"');
            if (!close) {       /* a lone quote: ignore it */
                p++;
                continue;
            }
            bool has_word = false;
            for (const char *c = p + 1; c < close && !has_word; c++)
                has_word = is_word_char((unsigned char)*c);
            if (has_word)
                add_term(l, p + 1, (size_t)(close - p - 1), TERM_PHRASE);
            p = close + 1;
            continue;
        }
        if (is_space((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *start = p;
        while (*p && *p != '"' && !is_space((unsigned char)*p))
            p++;
        add_word(l, start, (size_t)(p - start));
    }
}

/* "text" with every double quote doubled (FTS5's string escape). */
static void put_string(sbuf *b, const char *text, size_t len)
{
    sbuf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"')
            sbuf_putc(b, '"');
        sbuf_putc(b, text[i]);
    }
    sbuf_putc(b, '"');
}

int keyword_parse(const char *text, keyword_query *out, lode_error *err)
{
    memset(out, 0, sizeof *out);
    term_list *l = calloc(1, sizeof *l);
    if (!l)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a query");
    split_terms(text ? text : "", l);

    size_t content = 0;
    for (size_t i = 0; i < l->n; i++)
        content += l->items[i].kind != TERM_WORD ||
                   !is_stopword(l->items[i].text, l->items[i].len);
    sbuf any = {0}, required = {0};
    out->terms = calloc(l->n ? l->n : 1, sizeof *out->terms);
    bool oom = !out->terms;
    for (size_t i = 0; !oom && i < l->n; i++) {
        const term *t = &l->items[i];
        /* stop words go, unless they are all there is */
        if (content && t->kind == TERM_WORD && is_stopword(t->text, t->len))
            continue;
        sbuf one = {0};
        put_string(&one, t->text, t->len);
        keyword_term *kt = &out->terms[out->n_terms];
        kt->required = t->kind != TERM_WORD;
        oom |= !(kt->fts = sbuf_take(&one, NULL));
        sbuf_free(&one);
        if (out->n_terms++)
            sbuf_puts(&any, " OR ");
        put_string(&any, t->text, t->len);
        if (t->kind != TERM_WORD) {
            if (out->n_required++)
                sbuf_puts(&required, " AND ");
            put_string(&required, t->text, t->len);
        }
    }
    free(l);
    out->any = out->n_terms ? sbuf_take(&any, NULL) : NULL;
    out->required = out->n_required ? sbuf_take(&required, NULL) : NULL;
    sbuf_free(&any);
    sbuf_free(&required);
    if (oom || (out->n_terms && !out->any) || (out->n_required && !out->required)) {
        keyword_query_free(out);
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a query");
    }
    return 0;
}

void keyword_query_free(keyword_query *q)
{
    if (!q)
        return;
    free(q->any);
    free(q->required);
    for (size_t i = 0; q->terms && i < q->n_terms; i++)
        free(q->terms[i].fts);
    free(q->terms);
    memset(q, 0, sizeof *q);
}
