/* fuzz_keyword.c - libFuzzer driver for the keyword query parser
 * (src/keyword.c): arbitrary bytes as the text a user types into search.
 *
 * The input (cut at its first NUL, as a C string is) is parsed and every
 * expression it yields - `any`, `required` and each term alone - is run,
 * in the form the store runs it, as an FTS5 MATCH against a small table
 * with the store's tokenizer.  Checked: parsing never fails (there is no
 * text it may refuse); FTS5 accepts every expression (no character of the
 * text can reach its query syntax); `any` exists exactly when there are
 * terms, `required` exactly when some are required, and there are at most
 * KEYWORD_MAX_TERMS.
 *
 * Seeds: fuzz/corpus/keyword/ (questions, identifiers, FTS5 syntax). */
#include <sqlite3.h>
#include <string.h>

#include "fuzz.h"
#include "keyword.h"

static sqlite3 *db;
static sqlite3_stmt *st;

static void run(const char *expr)
{
    char *wrapped = sqlite3_mprintf("collection : \"1\" AND {text title heading} : (%s)", expr);
    FUZZ_CHECK(wrapped, "out of memory");
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, wrapped, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    FUZZ_CHECK(rc == SQLITE_DONE, "FTS5 refused %s: %s", wrapped, sqlite3_errmsg(db));
    sqlite3_free(wrapped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db) {
        FUZZ_CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK &&
                       sqlite3_exec(db, "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, "
                                        "title, heading, collection, tokenize = 'unicode61 "
                                        "remove_diacritics 2'); INSERT INTO chunks_fts VALUES "
                                        "('form HR-2024-07 at the café', 'Leave', NULL, '1')",
                                    NULL, NULL, NULL) == SQLITE_OK &&
                       sqlite3_prepare_v2(db, "SELECT rowid FROM chunks_fts WHERE "
                                              "chunks_fts MATCH ?", -1, &st, NULL) == SQLITE_OK,
                   "setup: %s", sqlite3_errmsg(db));
    }
    char *text = malloc(size + 1);
    FUZZ_CHECK(text, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    keyword_query q;
    FUZZ_CHECK(keyword_parse(text, &q, NULL) == 0, "parse failed");
    FUZZ_CHECK((q.any != NULL) == (q.n_terms > 0), "any %p with %zu terms", (void *)q.any,
               q.n_terms);
    FUZZ_CHECK((q.required != NULL) == (q.n_required > 0) && q.n_required <= q.n_terms &&
                   q.n_terms <= KEYWORD_MAX_TERMS, "%zu required of %zu terms",
               q.n_required, q.n_terms);
    if (q.any)
        run(q.any);
    if (q.required)
        run(q.required);
    size_t required = 0;
    for (size_t i = 0; i < q.n_terms; i++) {
        run(q.terms[i].fts);
        required += q.terms[i].required;
    }
    FUZZ_CHECK(required == q.n_required, "%zu terms flagged required, %zu counted",
               required, q.n_required);
    keyword_query_free(&q);
    free(text);
    return 0;
}
