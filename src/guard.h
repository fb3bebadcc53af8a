/* guard.h - guardrails for what lode sends to an LLM and what it returns:
 * invisible-character stripping, personal-data redaction and
 * prompt-injection detection.  Pure functions over UTF-8 text, no state.
 *
 * Personal data found (each validated, so ordinary numbers are not
 * redacted):
 *   email        local@domain.tld
 *   phone        +CC numbers of 8-15 digits; (NNN) NNN-NNNN; groups of
 *                digits with separators or a leading 0, 10-11 digits in
 *                all (dates, versions and decimals are not phones)
 *   card         13-19 digits, plain or grouped by spaces or dashes,
 *                passing the Luhn check
 *   iban         two letters, two check digits, 11-30 letters or digits
 *                (grouped by 4 or not), passing the ISO 13616 mod-97 check
 *   national_id  US social security numbers (NNN-NN-NNNN, valid areas)
 *                and UK national insurance numbers (AB 12 34 56 C)
 * Each is replaced by a placeholder such as "[EMAIL]".
 *
 * Prompt injection: a fixed list of instruction-like phrases ("ignore all
 * previous instructions", "reveal your system prompt", "you are now DAN",
 * "if you are an AI...") matched over the words of the text, plus chat
 * template markers ("<|im_start|>", "[INST]", "<start_of_turn>", and
 * "</source>", the delimiter lode's prompts use).  Detection reports the
 * sentence that holds each match, so a caller can remove just that
 * sentence from a document excerpt.  It is a tripwire for the common
 * attacks, not a proof of safety: the prompt itself also tells the model
 * that sources are data.
 */
#ifndef LODE_GUARD_H
#define LODE_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef enum guard_level {
    GUARD_OFF = 0,
    GUARD_STANDARD = 1,
    GUARD_STRICT = 2,
} guard_level;

/* "off" | "standard" | "strict" (any case); LODE_EINVAL otherwise. */
int guard_parse_level(const char *s, guard_level *out);
const char *guard_level_name(guard_level level);

enum {
    GUARD_PII_EMAIL = 0,
    GUARD_PII_PHONE,
    GUARD_PII_CARD,
    GUARD_PII_IBAN,
    GUARD_PII_NATIONAL_ID,
    GUARD_PII_N,
};
/* "email", "phone", "card", "iban", "national_id". */
const char *guard_pii_name(int kind);
/* "[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[ID]". */
const char *guard_pii_placeholder(int kind);

/* A byte range [start, end) of a text, with what it is. */
typedef struct guard_span {
    size_t start, end;
    int kind;
} guard_span;

/* Personal data in text: spans sorted and disjoint, malloc'd into *spans
 * (NULL when none).  LODE_ENOMEM. */
int guard_find_pii(const char *text, size_t len, guard_span **spans,
                   size_t *n);
/* A malloc'd, NUL-terminated copy of text with every span of personal
 * data replaced by its placeholder; counts[kind] is increased by what was
 * replaced (counts may be NULL).  NULL when out of memory. */
char *guard_redact(const char *text, size_t len, size_t *out_len,
                   int counts[GUARD_PII_N]);

/* A malloc'd copy of text without control and invisible characters:
 * C0/C1 controls other than tab and newline (CR is dropped), zero-width
 * and joiner characters, bidirectional controls, the soft hyphen, the
 * byte-order mark, Unicode tag characters (U+E0000..U+E007F, used to
 * smuggle hidden text) and bytes that are not UTF-8.  *removed (may be
 * NULL) gets the number of characters dropped. */
char *guard_sanitize(const char *text, size_t len, size_t *out_len,
                     size_t *removed);

/* Instruction-like text: one span per sentence holding a match (kind 0),
 * sorted and disjoint.  *n is 0 when the text looks clean. */
int guard_find_injection(const char *text, size_t len, guard_span **spans,
                         size_t *n);
/* The placeholder guard_remove_spans puts where a sentence was removed. */
#define GUARD_REMOVED_TEXT "[instruction-like text removed]"
/* A malloc'd copy of text with each span replaced by `replacement`. */
char *guard_replace_spans(const char *text, size_t len,
                          const guard_span *spans, size_t n,
                          const char *replacement, size_t *out_len);

/* ---- validators (tested directly) -------------------------------------- */

/* Luhn check over the digits of s (other characters ignored). */
bool guard_luhn_ok(const char *s, size_t len);
/* ISO 13616 check of an IBAN written without spaces (letters upper or
 * lower case). */
bool guard_iban_ok(const char *s, size_t len);

#endif
