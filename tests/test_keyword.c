/* test_keyword.c - free text to FTS5 queries (keyword.c).
 *
 * The expressions are compared with the expected strings for the cases
 * keyword.h describes, and every expression built here, including those
 * of a few thousand random texts full of FTS5 syntax, is run against a
 * real FTS5 table in the form the store uses: none may fail to parse. */

#include "test.h"
#include "keyword.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static sqlite3 *db;
static sqlite3_stmt *match_st;

/* Run expr as the store does; returns the number of rows or -1 on an
 * FTS5 error (printed). */
static int run_match(const char *expr)
{
    char wrapped[8192];
    snprintf(wrapped, sizeof wrapped,
             "collection : \"1\" AND {text title heading} : (%s)", expr);
    sqlite3_reset(match_st);
    sqlite3_bind_text(match_st, 1, wrapped, -1, SQLITE_TRANSIENT);
    int rows = 0, rc;
    while ((rc = sqlite3_step(match_st)) == SQLITE_ROW)
        rows++;
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "MATCH %s: %s\n", wrapped, sqlite3_errmsg(db));
        return -1;
    }
    return rows;
}

static void expect(const char *text, const char *any, const char *required)
{
    keyword_query q;
    int rc = keyword_parse(text, &q, NULL);
    CHECK(rc == 0, "parse %s", text);
    CHECK((!any && !q.any) || (any && q.any && strcmp(any, q.any) == 0),
          "any of [%s]: [%s], wanted [%s]", text, q.any ? q.any : "(null)",
          any ? any : "(null)");
    CHECK((!required && !q.required) ||
              (required && q.required && strcmp(required, q.required) == 0),
          "required of [%s]: [%s], wanted [%s]", text,
          q.required ? q.required : "(null)", required ? required : "(null)");
    if (q.any)
        CHECK(run_match(q.any) >= 0, "any of [%s] runs", text);
    if (q.required)
        CHECK(run_match(q.required) >= 0, "required of [%s] runs", text);
    keyword_query_free(&q);
}

static int matches(const char *text)
{
    keyword_query q;
    keyword_parse(text, &q, NULL);
    int n = q.any ? run_match(q.any) : 0;
    keyword_query_free(&q);
    return n;
}

static void test_cases(void)
{
    expect("How many days of annual leave do I get?",
           "\"many\" OR \"days\" OR \"annual\" OR \"leave\" OR \"get\"", NULL);
    /* identifiers and phrases are kept whole and required */
    expect("form HR-2024-07 for \"annual leave\"",
           "\"form\" OR \"HR-2024-07\" OR \"annual leave\"",
           "\"HR-2024-07\" AND \"annual leave\"");
    expect("set max_tokens to 512 or E1234 x11 utf-8 v1.2.3",
           "\"set\" OR \"max_tokens\" OR \"512\" OR \"E1234\" OR \"x11\" OR \"utf-8\" OR \"v1.2.3\"",
           "\"max_tokens\" AND \"512\" AND \"E1234\" AND \"x11\" AND \"utf-8\" AND \"v1.2.3\"");
    /* ...but not small numbers or lowercase hyphenated words */
    expect("25 well-known e-mail X-Forwarded-For",
           "\"25\" OR \"well\" OR \"known\" OR \"mail\" OR \"X-Forwarded-For\"",
           "\"X-Forwarded-For\"");
    /* FTS5 syntax in the text is only text (and or, and, not are stop
     * words) */
    expect("foo\" OR bar NEAR(x y) * AND {title}: ^start -not +plus",
           "\"foo\" OR \"bar\" OR \"NEAR\" OR \"title\" OR \"start\" OR \"plus\"",
           NULL);
    expect("NOT OR AND", "\"NOT\" OR \"OR\" OR \"AND\"", NULL);
    /* punctuation around words goes; inside, it splits */
    expect("(see /etc/hosts, don't!)", "\"see\" OR \"etc\" OR \"hosts\" OR \"don\"", NULL);
    /* only stop words: then they are the query */
    expect("what is the", "\"what\" OR \"is\" OR \"the\"", NULL);
    expect("", NULL, NULL);
    expect("?!  ... \"\" \" ", NULL, NULL);
    /* case-insensitive duplicates, and a phrase beats a plain twin */
    expect("Leave leave LEAVE \"leave\"", "\"Leave\"", "\"Leave\"");
    expect("café Zürich", "\"café\" OR \"Zürich\"", NULL);

    keyword_query q;
    char many[4096] = "";
    for (int i = 0; i < 100; i++) {
        char w[16];
        snprintf(w, sizeof w, "word%c%c ", 'a' + i % 26, 'a' + i / 26);
        strcat(many, w);
    }
    CHECK(keyword_parse(many, &q, NULL) == 0 && q.n_terms == KEYWORD_MAX_TERMS,
          "at most %d terms: %zu", KEYWORD_MAX_TERMS, q.n_terms);
    keyword_query_free(&q);
}

static void test_matching(void)
{
    /* through the table's tokenizer: diacritics folded, phrases in order */
    CHECK(matches("cafe") == 1, "cafe finds café");
    CHECK(matches("CAFÉ") == 1, "CAFÉ finds café");
    CHECK(matches("HR-2024-07") == 1, "the identifier");
    CHECK(matches("hr 2024 07") == 1, "its parts");
    CHECK(matches("\"2024 hr\"") == 0, "a phrase in the wrong order");
    CHECK(matches("Unrelated words entirely") == 0, "no match");
    CHECK(matches("collection") == 0, "the collection column is never searched");
}

/* Random texts built from FTS5's syntax and odd bytes never make a query
 * that FTS5 refuses. */
static void test_random(void)
{
    static const char *const pieces[] = {
        "\"", "\"\"", "*", "(", ")", ":", "^", "-", "+", "_", "{", "}", ",",
        "OR", "AND", "NOT", "NEAR", "NEAR(", "title:", "collection:", "a",
        "leave", "HR-2024", "é", "\xe2\x80\x99", "\\", "'", "$", "0", "12345",
        " ", " ", "\t", "\n", "x_y", "--", "..", "\x01", "\xff",
    };
    uint64_t state = 12345;
    int failures = 0;
    for (int t = 0; t < 3000; t++) {
        char text[512] = "";
        size_t len = 0;
        int n = 1 + (int)(state % 24);
        for (int i = 0; i < n; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            const char *p = pieces[state % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (len + pl + 1 < sizeof text) {
                memcpy(text + len, p, pl + 1);
                len += pl;
            }
        }
        keyword_query q;
        if (keyword_parse(text, &q, NULL) != 0) {
            failures++;
            continue;
        }
        if ((q.any && run_match(q.any) < 0) || (q.required && run_match(q.required) < 0))
            failures++;
        if (q.n_required && !q.any)
            failures++;
        keyword_query_free(&q);
    }
    CHECK(failures == 0, "%d random texts made a bad query", failures);
}

int main(void)
{
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, heading, "
                         "collection, tokenize = 'unicode61 remove_diacritics 2');"
                         "INSERT INTO chunks_fts VALUES ('Use form HR-2024-07 at the café', "
                         "'Leave', NULL, '1');"
                         "INSERT INTO chunks_fts VALUES ('collection words', NULL, NULL, '2');",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
                           -1, &match_st, NULL) != SQLITE_OK) {
        fprintf(stderr, "setup: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    test_cases();
    test_matching();
    test_random();
    sqlite3_finalize(match_st);
    sqlite3_close(db);
    TEST_MAIN_END();
}
