/* guard.c - invisible characters, personal data and prompt injection (see
 * guard.h).
 *
 * The scanners are written by hand rather than with regex(3): each kind
 * needs a check no regular expression can make (Luhn, mod-97, "is this a
 * date?"), the boundaries must be exact in bytes, and the texts are small
 * (a question, a few excerpts, an answer), so one pass per kind is plenty.
 * Candidates are collected from every scanner, then overlaps are resolved
 * in favour of the earlier, then longer span.
 *
 * Injection phrases are matched over words (ASCII letters and digits,
 * lower-cased), so punctuation, case and spacing do not hide them.  A
 * pattern is a list of slots; a slot lists alternatives separated by '|',
 * starts with '?' when it may be absent, and "~N" lets up to N arbitrary
 * words pass. */
#include "guard.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- levels and names --------------------------------------------------- */

int guard_parse_level(const char *s, guard_level *out)
{
    if (s && strcasecmp(s, "off") == 0)
        *out = GUARD_OFF;
    else if (s && strcasecmp(s, "standard") == 0)
        *out = GUARD_STANDARD;
    else if (s && strcasecmp(s, "strict") == 0)
        *out = GUARD_STRICT;
    else
        return LODE_EINVAL;
    return 0;
}

const char *guard_level_name(guard_level level)
{
    switch (level) {
    case GUARD_OFF: return "off";
    case GUARD_STRICT: return "strict";
    default: return "standard";
    }
}

static const char *const pii_names[GUARD_PII_N] = {
    "email", "phone", "card", "iban", "national_id"};
static const char *const pii_placeholders[GUARD_PII_N] = {
    "[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[ID]"};

const char *guard_pii_name(int kind)
{
    return kind >= 0 && kind < GUARD_PII_N ? pii_names[kind] : "unknown";
}

const char *guard_pii_placeholder(int kind)
{
    return kind >= 0 && kind < GUARD_PII_N ? pii_placeholders[kind]
                                           : "[REDACTED]";
}

/* ---- span lists ----------------------------------------------------------- */

typedef struct span_list {
    guard_span *v;
    size_t n, cap;
    bool oom;
} span_list;

static void span_add(span_list *l, size_t start, size_t end, int kind)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        guard_span *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (guard_span){start, end, kind};
}

static int span_cmp(const void *a, const void *b)
{
    const guard_span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    /* longer first */
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return 0;
}

/* Sort and drop spans overlapping an earlier kept one. */
static void span_resolve(span_list *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, span_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (kept && l->v[i].start < l->v[kept - 1].end)
            continue;
        l->v[kept++] = l->v[i];
    }
    l->n = kept;
}

/* ---- character classes ----------------------------------------------------- */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_alnum(int c) { return is_digit(c) || is_alpha(c); }
static bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
/* A byte that makes a neighbouring match part of a larger word: letters,
 * digits and any non-ASCII byte (letters of other scripts). */
static bool is_wordish(int c) { return is_alnum(c) || c >= 0x80 || c == '_'; }

/* ---- validators ------------------------------------------------------------- */

bool guard_luhn_ok(const char *s, size_t len)
{
    int sum = 0, n = 0;
    for (size_t i = len; i-- > 0;) {
        if (!is_digit((unsigned char)s[i]))
            continue;
        int d = s[i] - '0';
        if (n++ % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return n > 0 && sum % 10 == 0;
}

bool guard_iban_ok(const char *s, size_t len)
{
    if (len < 15 || len > 34)
        return false;
    if (!is_alpha((unsigned char)s[0]) || !is_alpha((unsigned char)s[1]) ||
        !is_digit((unsigned char)s[2]) || !is_digit((unsigned char)s[3]))
        return false;
    /* move the first four characters to the end, letters as 10..35, and
     * take the number mod 97, digit by digit */
    unsigned rem = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[(k + 4) % len];
        if (is_digit(c)) {
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        } else if (is_alpha(c)) {
            unsigned v = (unsigned)(toupper(c) - 'A') + 10;
            rem = (rem * 100 + v) % 97;
        } else {
            return false;
        }
    }
    return rem == 1;
}

/* ---- scanners --------------------------------------------------------------- */

static bool email_local_char(int c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
           c == '-';
}

static void scan_emails(const char *t, size_t len, span_list *out)
{
    for (size_t at = 0; at < len; at++) {
        if (t[at] != '@')
            continue;
        size_t s = at;
        while (s > 0 && email_local_char((unsigned char)t[s - 1]))
            s--;
        while (s < at && t[s] == '.')
            s++;
        if (s == at)
            continue;
        size_t e = at + 1, last_dot;
        while (e < len && (is_alnum((unsigned char)t[e]) || t[e] == '-' ||
                           t[e] == '.'))
            e++;
        while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
            e--;
        last_dot = 0;
        for (size_t i = at + 1; i < e; i++)
            if (t[i] == '.')
                last_dot = i;
        if (last_dot == 0 || last_dot >= e - 1 || last_dot <= at + 1)
            continue;
        /* a top-level domain of two or more letters */
        size_t tld = 0;
        for (size_t i = last_dot + 1; i < e; i++)
            tld = is_alpha((unsigned char)t[i]) ? tld + 1 : 0;
        if (tld < 2 || tld != e - last_dot - 1)
            continue;
        span_add(out, s, e, GUARD_PII_EMAIL);
        at = e;
    }
}

/* IBAN: CCdd then 11..30 of [A-Z0-9], optionally in groups of four
 * separated by single spaces. */
static void scan_ibans(const char *t, size_t len, span_list *out)
{
    for (size_t i = 0; i + 15 <= len; i++) {
        if (!is_upper((unsigned char)t[i]) || !is_upper((unsigned char)t[i + 1]) ||
            !is_digit((unsigned char)t[i + 2]) ||
            !is_digit((unsigned char)t[i + 3]))
            continue;
        if (i > 0 && is_wordish((unsigned char)t[i - 1]))
            continue;
        char compact[40];
        size_t n = 0, e = i, last = i;
        while (e < len && n < 34) {
            unsigned char c = (unsigned char)t[e];
            if (is_digit(c) || is_upper(c)) {
                compact[n++] = (char)c;
                last = ++e;
            } else if (c == ' ' && n % 4 == 0 && e + 1 < len &&
                       (is_digit((unsigned char)t[e + 1]) ||
                        is_upper((unsigned char)t[e + 1]))) {
                e++;
            } else {
                break;
            }
        }
        if (last < len && is_wordish((unsigned char)t[last]))
            continue;
        /* the longest prefix that validates (trailing words may follow) */
        for (size_t m = n; m >= 15; m--) {
            if (guard_iban_ok(compact, m)) {
                /* end of the m-th character */
                size_t seen = 0, end = i;
                while (seen < m) {
                    if (t[end] != ' ')
                        seen++;
                    end++;
                }
                if (end < len && is_wordish((unsigned char)t[end]))
                    break;
                span_add(out, i, end, GUARD_PII_IBAN);
                i = end;
                break;
            }
        }
    }
}

/* UK national insurance number: two letters (not D, F, I, Q, U, V; the
 * second not O), six digits (optionally in pairs), a letter A-D. */
static void scan_nino(const char *t, size_t len, span_list *out)
{
    static const char bad_first[] = "DFIQUV", bad_second[] = "DFIQUVO";
    for (size_t i = 0; i + 9 <= len; i++) {
        unsigned char a = (unsigned char)t[i], b = (unsigned char)t[i + 1];
        if (!is_upper(a) || !is_upper(b) || strchr(bad_first, a) ||
            strchr(bad_second, b))
            continue;
        if (i > 0 && is_wordish((unsigned char)t[i - 1]))
            continue;
        size_t e = i + 2;
        int digits = 0;
        while (e < len && digits < 6) {
            if (is_digit((unsigned char)t[e])) {
                digits++;
                e++;
            } else if (t[e] == ' ' && digits % 2 == 0 && e + 1 < len &&
                       is_digit((unsigned char)t[e + 1])) {
                e++;
            } else {
                break;
            }
        }
        if (digits != 6)
            continue;
        if (e < len && t[e] == ' ')
            e++;
        if (e >= len || t[e] < 'A' || t[e] > 'D')
            continue;
        e++;
        if (e < len && is_wordish((unsigned char)t[e]))
            continue;
        span_add(out, i, e, GUARD_PII_NATIONAL_ID);
        i = e;
    }
}

static bool num_sep(int c)
{
    return c == ' ' || c == '-' || c == '.' || c == '/';
}

/* Digit groups of one candidate number. */
typedef struct num_shape {
    int groups[24];
    int n_groups;
    int digits;
    char seps[24];        /* separator after group i ('\0' when none) */
    bool plus, parens;
} num_shape;

/* Is this number shaped like a date (2024-05-01, 01.05.2024, 1/5/2024)? */
static bool looks_like_date(const num_shape *s)
{
    if (s->n_groups != 3 || s->parens || s->plus)
        return false;
    int a = s->groups[0], b = s->groups[1], c = s->groups[2];
    char x = s->seps[0], y = s->seps[1];
    if (x != y || x == ' ')
        return false;
    return (a == 4 && b <= 2 && c <= 2) || (a <= 2 && b <= 2 && (c == 4 || c == 2));
}

static void classify_number(const char *t, size_t start, size_t end,
                            const num_shape *s, span_list *out)
{
    int d = s->digits;
    bool uniform_seps = true, any_sep = false;
    for (int g = 0; g + 1 < s->n_groups; g++) {
        if (s->seps[g])
            any_sep = true;
        if (s->seps[g] != s->seps[0])
            uniform_seps = false;
    }
    /* US social security number: 3-2-4 with dashes, valid area */
    if (s->n_groups == 3 && s->groups[0] == 3 && s->groups[1] == 2 &&
        s->groups[2] == 4 && s->seps[0] == '-' && s->seps[1] == '-' &&
        !s->plus && !s->parens) {
        const char *p = t + start;
        int area = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        if (area != 0 && area != 666 && area < 900) {
            span_add(out, start, end, GUARD_PII_NATIONAL_ID);
            return;
        }
    }
    /* payment card: 13-19 digits, plain or uniformly grouped by space/dash */
    if (d >= 13 && d <= 19 && !s->plus && !s->parens &&
        (!any_sep || (uniform_seps && (s->seps[0] == ' ' || s->seps[0] == '-'))) &&
        guard_luhn_ok(t + start, end - start)) {
        span_add(out, start, end, GUARD_PII_CARD);
        return;
    }
    if (looks_like_date(s))
        return;
    /* a decimal or version number: one '.' between two groups */
    if (s->n_groups == 2 && s->seps[0] == '.' && !s->plus)
        return;
    bool phone = false;
    if (s->plus && d >= 8 && d <= 15)
        phone = true;
    else if (s->parens && d >= 10 && d <= 12)
        phone = true;
    else if (!s->plus && d >= 10 && d <= 11 && s->n_groups >= 2 &&
             s->n_groups <= 4 && s->groups[0] >= 2 && s->groups[0] <= 5 &&
             uniform_seps && s->seps[0] != '.' && s->seps[0] != '/')
        phone = true;
    else if (!s->plus && d >= 10 && d <= 11 && s->n_groups == 1 &&
             t[start] == '0')
        phone = true;
    else if (!s->plus && d >= 10 && d <= 11 && s->n_groups >= 2 &&
             uniform_seps && s->seps[0] == '.' && s->groups[0] == 3)
        phone = true;   /* 555.123.4567 */
    if (phone)
        span_add(out, start, end, GUARD_PII_PHONE);
}

/* Numbers: an optional '+', digit groups joined by single separators
 * (space, '-', '.', '/') and an optional "(area)" group. */
static void scan_numbers(const char *t, size_t len, span_list *out)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)t[i];
        bool starts = is_digit(c) ||
                      (c == '+' && i + 1 < len && is_digit((unsigned char)t[i + 1])) ||
                      (c == '(' && i + 1 < len && is_digit((unsigned char)t[i + 1]));
        bool inside_word = i > 0 && (is_wordish((unsigned char)t[i - 1]) ||
                                     t[i - 1] == '-' || t[i - 1] == '.' ||
                                     t[i - 1] == '/' || t[i - 1] == '+');
        if (!starts || inside_word) {
            /* skip the rest of this word, so "HR-2024-001" stays whole */
            bool word = is_wordish(c) || c == '-' || (starts && inside_word);
            i++;
            while (word && i < len &&
                   (is_wordish((unsigned char)t[i]) || t[i] == '-'))
                i++;
            continue;
        }
        num_shape s = {0};
        size_t start = i, e = i;
        if (t[e] == '+') {
            s.plus = true;
            e++;
        }
        bool ok = true;
        while (e < len && ok) {
            bool paren = false;
            if (t[e] == '(') {
                paren = true;
                e++;
            }
            int g = 0;
            while (e < len && is_digit((unsigned char)t[e])) {
                g++;
                e++;
            }
            if (g == 0) {
                ok = false;
                break;
            }
            if (paren) {
                if (e >= len || t[e] != ')') {
                    ok = false;
                    break;
                }
                e++;
                s.parens = true;
            }
            if (s.n_groups < 24) {
                s.groups[s.n_groups] = g;
                s.seps[s.n_groups] = 0;
                s.n_groups++;
            }
            s.digits += g;
            /* one separator, then another group */
            size_t f = e;
            if (f < len && num_sep((unsigned char)t[f]))
                f++;
            if (f < len && t[f] == ' ' && t[f - 1] != ' ' && t[f - 1] != '.')
                f++;  /* "(020) 7946" style: ") " is already taken */
            if (f < len && (is_digit((unsigned char)t[f]) ||
                            (t[f] == '(' && f + 1 < len &&
                             is_digit((unsigned char)t[f + 1])))) {
                if (f > e && s.n_groups <= 24)
                    s.seps[s.n_groups - 1] = t[e];
                e = f;
                continue;
            }
            break;
        }
        size_t end = e;
        bool bounded = end >= len || !is_wordish((unsigned char)t[end]);
        /* "1.5x", "12-month" and such are not numbers of a person */
        if (ok && bounded && s.digits > 0 &&
            !(end < len && t[end] == '-' && end + 1 < len &&
              is_alpha((unsigned char)t[end + 1])))
            classify_number(t, start, end, &s, out);
        i = end > i ? end : i + 1;
    }
}

int guard_find_pii(const char *text, size_t len, guard_span **spans,
                   size_t *n)
{
    span_list l = {0};
    scan_emails(text, len, &l);
    scan_ibans(text, len, &l);
    scan_nino(text, len, &l);
    scan_numbers(text, len, &l);
    if (l.oom) {
        free(l.v);
        *spans = NULL;
        *n = 0;
        return LODE_ENOMEM;
    }
    span_resolve(&l);
    if (l.n == 0) {
        free(l.v);
        l.v = NULL;
    }
    *spans = l.v;
    *n = l.n;
    return 0;
}

/* ---- replacing spans -------------------------------------------------------- */

static char *replace_spans(const char *text, size_t len,
                           const guard_span *spans, size_t n,
                           const char *fixed, size_t *out_len)
{
    size_t cap = len + 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(fixed ? fixed : guard_pii_placeholder(spans[i].kind));
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + o, text + at, spans[i].start - at);
        o += spans[i].start - at;
        const char *r = fixed ? fixed : guard_pii_placeholder(spans[i].kind);
        size_t rl = strlen(r);
        memcpy(out + o, r, rl);
        o += rl;
        at = spans[i].end;
    }
    memcpy(out + o, text + at, len - at);
    o += len - at;
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

char *guard_redact(const char *text, size_t len, size_t *out_len,
                   int counts[GUARD_PII_N])
{
    guard_span *spans = NULL;
    size_t n = 0;
    if (guard_find_pii(text, len, &spans, &n))
        return NULL;
    if (counts)
        for (size_t i = 0; i < n; i++)
            counts[spans[i].kind]++;
    char *out = replace_spans(text, len, spans, n, NULL, out_len);
    free(spans);
    return out;
}

char *guard_replace_spans(const char *text, size_t len,
                          const guard_span *spans, size_t n,
                          const char *replacement, size_t *out_len)
{
    return replace_spans(text, len, spans, n, replacement ? replacement : "",
                         out_len);
}

/* ---- invisible characters -------------------------------------------------- */

/* Decode one UTF-8 character at s (len > 0); returns its length, or 0 when
 * the bytes are not UTF-8 (then *cp is undefined). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2; v = c & 0x1F; min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3; v = c & 0x0F; min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4; v = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static bool invisible(uint32_t cp)
{
    if (cp == '\t' || cp == '\n')
        return false;
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
        return true;                       /* C0, DEL, C1 controls */
    return cp == 0xAD ||                   /* soft hyphen */
           cp == 0x061C ||                 /* Arabic letter mark */
           cp == 0x115F || cp == 0x1160 || cp == 0x3164 || cp == 0xFFA0 ||
           cp == 0x180E ||                 /* Mongolian vowel separator */
           (cp >= 0x200B && cp <= 0x200F) ||   /* zero-width, LRM, RLM */
           (cp >= 0x202A && cp <= 0x202E) ||   /* bidi embeddings */
           (cp >= 0x2060 && cp <= 0x2064) ||   /* word joiner, invisible ops */
           (cp >= 0x2066 && cp <= 0x206F) ||   /* bidi isolates, deprecated */
           cp == 0xFEFF ||                     /* BOM, zero-width no-break */
           (cp >= 0xFFF9 && cp <= 0xFFFB) ||   /* interlinear annotation */
           (cp >= 0xE0000 && cp <= 0xE007F);   /* tags */
}

char *guard_sanitize(const char *text, size_t len, size_t *out_len,
                     size_t *removed)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0, dropped = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            dropped++;
            i++;
            continue;
        }
        if (invisible(cp)) {
            dropped++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    if (removed)
        *removed = dropped;
    return out;
}

/* ---- prompt injection -------------------------------------------------------- */

/* Phrases over lower-cased words; see the file comment for the syntax. */
static const char *const injection_patterns[] = {
    "ignore|disregard|forget|override|bypass|skip ?all|any|the|your|these|"
    "those ?of ?all|the|your|any|my|these|those "
    "previous|prior|above|earlier|preceding|foregoing|original|initial|"
    "system|existing|safety|former "
    "instructions|instruction|prompt|prompts|rules|directions|guidelines|"
    "directives|messages|context|constraints|guardrails|programming|orders",
    "ignore|disregard|forget ?all|any everything|anything ?you "
    "?were|have|had ?been told|said|written|above|before",
    "system prompt",
    "reveal|show|print|repeat|output|display|leak|dump|tell ~2 your|the "
    "hidden|secret|initial|original|internal|system "
    "instructions|prompt|rules|guidelines|configuration",
    "reveal|print|repeat|output|leak|dump your "
    "instructions|prompt|rules|guidelines|configuration",
    "new|updated|real|actual|secret|hidden "
    "instructions|instruction|directive|directives for|to ?the|this "
    "ai|assistant|model|llm|chatbot|bot|gpt",
    "you are|re now|no ?longer ?a|an chatgpt|assistant|ai|model|bot|dan|"
    "unrestricted|jailbroken|unfiltered|uncensored|evil|different",
    "pretend ?that you are|were|re",
    "pretend to be",
    "roleplay|role-play as",
    "act|behave as|like ?a|an unrestricted|unfiltered|jailbroken|uncensored|"
    "evil|different ai|assistant|model|bot|chatbot",
    "god|dan|jailbreak mode",
    "do anything now",
    "do|must not|never tell|inform|let the user|users",
    "don t tell|inform|let the user|users",
    "never tell|inform|let the user|users",
    "if|when you are|re ?an|a ai|llm|assistant|language|chatbot|bot|gpt",
    "ai|llm|assistant|chatbot|model "
    "reading|processing|summarizing|summarising|seeing this",
    "instead of answering ~2 say|respond|reply|output|print|write",
};
#define N_INJECTION_PATTERNS \
    (sizeof injection_patterns / sizeof injection_patterns[0])

/* Chat-template markers and lode's own source delimiter (case-insensitive
 * substrings of the raw text). */
static const char *const injection_markers[] = {
    "<|im_start|>", "<|im_end|>", "<|system|>", "<|assistant|>", "<|user|>",
    "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>", "<start_of_turn>",
    "<end_of_turn>", "[inst]", "[/inst]", "<<sys>>", "<</sys>>",
    "### instruction", "### system", "<system>", "</system>", "</source",
    "<source",
};
#define N_INJECTION_MARKERS \
    (sizeof injection_markers / sizeof injection_markers[0])

typedef struct word {
    size_t start, end;      /* bytes of the text */
    char w[24];             /* lower-cased, truncated */
} word;

/* Does the pattern match the words starting at w[i]?  Slots are parsed
 * on the fly; optional slots are tried present first, then absent. */
static bool slot_has(const char *alts, size_t alts_len, const char *w)
{
    size_t wl = strlen(w);
    const char *p = alts, *end = alts + alts_len;
    while (p < end) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *stop = bar ? bar : end;
        if ((size_t)(stop - p) == wl && memcmp(p, w, wl) == 0)
            return true;
        p = stop + 1;
    }
    return false;
}

static bool match_from(const char *pat, const word *w, size_t n, size_t i,
                       size_t *last)
{
    while (*pat == ' ')
        pat++;
    if (!*pat) {
        *last = i;
        return true;
    }
    const char *sp = strchr(pat, ' ');
    size_t slot_len = sp ? (size_t)(sp - pat) : strlen(pat);
    const char *rest = pat + slot_len;
    if (pat[0] == '~') {
        int skip = atoi(pat + 1);
        for (int k = 0; k <= skip && i + (size_t)k <= n; k++)
            if (match_from(rest, w, n, i + (size_t)k, last))
                return true;
        return false;
    }
    bool optional = pat[0] == '?';
    const char *alts = optional ? pat + 1 : pat;
    size_t alts_len = optional ? slot_len - 1 : slot_len;
    if (i < n && slot_has(alts, alts_len, w[i].w) &&
        match_from(rest, w, n, i + 1, last))
        return true;
    return optional && match_from(rest, w, n, i, last);
}

/* Words of the text: runs of ASCII letters and digits, with inner
 * hyphens ("role-play" is one word).  Apostrophes split, straight or
 * curly (U+2019) alike: "you're" is "you", "re". */
static word *split_words(const char *t, size_t len, size_t *n_out)
{
    size_t cap = 64, n = 0;
    word *w = malloc(cap * sizeof *w);
    if (!w)
        return NULL;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)t[i];
        if (!is_alnum(c)) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && (is_alnum((unsigned char)t[i]) ||
                           (t[i] == '-' && i + 1 < len &&
                            is_alnum((unsigned char)t[i + 1]))))
            i++;
        if (n == cap) {
            cap *= 2;
            word *nw = realloc(w, cap * sizeof *w);
            if (!nw) {
                free(w);
                return NULL;
            }
            w = nw;
        }
        w[n].start = s;
        w[n].end = i;
        size_t k = 0;
        for (size_t j = s; j < i && k + 1 < sizeof w[n].w; j++)
            w[n].w[k++] = (char)tolower((unsigned char)t[j]);
        w[n].w[k] = '\0';
        n++;
    }
    *n_out = n;
    return w;
}

/* The sentence around [start, end): back to the previous sentence end or
 * line break, on to the next. */
static void sentence_around(const char *t, size_t len, size_t start,
                            size_t end, size_t *s_out, size_t *e_out)
{
    size_t s = start;
    while (s > 0) {
        char c = t[s - 1];
        if (c == '\n' ||
            ((c == '.' || c == '!' || c == '?') &&
             (s >= len || t[s] == ' ' || t[s] == '\n')))
            break;
        s--;
    }
    while (s < start && (t[s] == ' ' || t[s] == '\t'))
        s++;
    size_t e = end;
    while (e < len) {
        char c = t[e];
        if (c == '\n')
            break;
        e++;
        if ((c == '.' || c == '!' || c == '?') &&
            (e >= len || t[e] == ' ' || t[e] == '\n'))
            break;
    }
    *s_out = s;
    *e_out = e;
}

int guard_find_injection(const char *text, size_t len, guard_span **spans,
                         size_t *n_spans)
{
    *spans = NULL;
    *n_spans = 0;
    span_list l = {0};
    size_t nw = 0;
    word *w = split_words(text, len, &nw);
    if (!w)
        return LODE_ENOMEM;
    for (size_t i = 0; i < nw; i++) {
        for (size_t p = 0; p < N_INJECTION_PATTERNS; p++) {
            size_t last;
            if (match_from(injection_patterns[p], w, nw, i, &last) &&
                last > i) {
                size_t s, e;
                sentence_around(text, len, w[i].start, w[last - 1].end, &s, &e);
                span_add(&l, s, e, 0);
                break;
            }
        }
    }
    free(w);
    for (size_t m = 0; m < N_INJECTION_MARKERS; m++) {
        size_t ml = strlen(injection_markers[m]);
        for (size_t i = 0; i + ml <= len; i++) {
            if (strncasecmp(text + i, injection_markers[m], ml) == 0) {
                size_t s, e;
                sentence_around(text, len, i, i + ml, &s, &e);
                span_add(&l, s, e, 0);
                i += ml - 1;
            }
        }
    }
    if (l.oom) {
        free(l.v);
        return LODE_ENOMEM;
    }
    /* merge overlapping sentences */
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof *l.v, span_cmp);
        size_t kept = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (kept && l.v[i].start <= l.v[kept - 1].end) {
                if (l.v[i].end > l.v[kept - 1].end)
                    l.v[kept - 1].end = l.v[i].end;
                continue;
            }
            l.v[kept++] = l.v[i];
        }
        l.n = kept;
    }
    if (l.n == 0) {
        free(l.v);
        return 0;
    }
    *spans = l.v;
    *n_spans = l.n;
    return 0;
}
