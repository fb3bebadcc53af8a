/* store_feedback.c - ratings of chat answers (see store.h), in the same
 * SQLite file as the collections.
 *
 * The table is not part of the numbered schema (store.c's migrations[]):
 * it stands apart from the collections, nothing else refers to it, and
 * CREATE TABLE IF NOT EXISTS on the first rating adds it to a file of any
 * schema version without a migration (a file never rated has none, and
 * listing it gives nothing).  It goes through the store's own connection,
 * so a rating is one more write of the one writer: no second connection
 * whose commits would make the store reload its vectors.
 *
 *   feedback(id INTEGER PRIMARY KEY, answer_id TEXT NOT NULL UNIQUE,
 *            rating INTEGER NOT NULL (1 or -1), comment, query, answer,
 *            collection TEXT, created, updated INTEGER unix seconds)
 *
 * One row per answer: rating it again (a thumbs up changed to down)
 * replaces the row's rating in one statement (an upsert). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS feedback ("
    "  id INTEGER PRIMARY KEY,"
    "  answer_id TEXT NOT NULL UNIQUE,"
    "  rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),"
    "  comment TEXT,"
    "  query TEXT,"
    "  answer TEXT,"
    "  collection TEXT,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL)";

int store_put_feedback(store *s, const store_feedback *fb, int64_t *id,
                       lode_error *err)
{
    if (id)
        *id = 0;
    if (!fb->answer_id || !*fb->answer_id || (fb->rating != 1 && fb->rating != -1))
        return lode_error_set(err, LODE_EINVAL, "feedback needs an answer id and a "
                              "rating of 1 or -1");
    if (s->read_only)
        return lode_error_set(err, LODE_EIO, "%s: cannot store feedback: the store "
                              "is open read-only (%s)", s->path, s->read_only_reason);
    int src = store__exec_write(s, create_sql);
    if (src != SQLITE_OK)
        return store__sql_error(s, src, "creating the feedback table", err);
    sqlite3_stmt *st;
    int rc = store__prepare(
        s, "INSERT INTO feedback (answer_id, rating, comment, query, answer, "
           "collection, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (answer_id) DO UPDATE SET rating = excluded.rating, "
           "comment = coalesce(excluded.comment, comment), "
           "query = coalesce(excluded.query, query), "
           "answer = coalesce(excluded.answer, answer), "
           "collection = coalesce(excluded.collection, collection), "
           "updated = excluded.updated RETURNING id", &st, err);
    if (rc)
        return rc;
    int64_t now = (int64_t)time(NULL);
    sqlite3_bind_text(st, 1, fb->answer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, fb->rating);
    store__bind_text(st, 3, fb->comment);
    store__bind_text(st, 4, fb->query);
    store__bind_text(st, 5, fb->answer);
    store__bind_text(st, 6, fb->collection);
    sqlite3_bind_int64(st, 7, now);
    sqlite3_bind_int64(st, 8, now);
    src = store__step_write(s, st);
    if (src == SQLITE_ROW) {
        if (id)
            *id = sqlite3_column_int64(st, 0);
        src = sqlite3_step(st);   /* finishes the statement: SQLITE_DONE */
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return store__sql_error(s, src, "storing feedback", err);
    return 0;
}

void store_feedback_free(store_feedback *fb, size_t n)
{
    if (!fb)
        return;
    for (size_t i = 0; i < n; i++) {
        free(fb[i].answer_id);
        free(fb[i].comment);
        free(fb[i].query);
        free(fb[i].answer);
        free(fb[i].collection);
    }
    free(fb);
}

/* 1 when the feedback table exists, 0 when not, < 0 on error. */
static int have_table(store *s, lode_error *err)
{
    sqlite3_stmt *st;
    int rc = store__prepare(s, "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'feedback'", &st, err);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src == SQLITE_ROW)
        return 1;
    if (src == SQLITE_DONE)
        return 0;
    return store__sql_error(s, src, "looking for the feedback table", err);
}

int store_list_feedback(store *s, int64_t after_id, size_t limit,
                        store_feedback **out, size_t *n_out, lode_error *err)
{
    *out = NULL;
    *n_out = 0;
    int rc = have_table(s, err);
    if (rc <= 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = store__prepare(s, "SELECT id, answer_id, rating, comment, query, answer, "
                                "collection, created, updated FROM feedback WHERE id > ? "
                                "ORDER BY id LIMIT ?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    store_feedback *list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            store_feedback *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            list = grown;
        }
        store_feedback *f = &list[n++];
        memset(f, 0, sizeof *f);
        f->id = sqlite3_column_int64(st, 0);
        f->rating = sqlite3_column_int(st, 2);
        f->created = sqlite3_column_int64(st, 7);
        f->updated = sqlite3_column_int64(st, 8);
        if (store__col_dup(st, 1, &f->answer_id) || store__col_dup(st, 3, &f->comment) ||
            store__col_dup(st, 4, &f->query) || store__col_dup(st, 5, &f->answer) ||
            store__col_dup(st, 6, &f->collection)) {
            rc = LODE_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing feedback");
    else if (src != SQLITE_DONE)
        rc = store__sql_error(s, src, "listing feedback", err);
    if (rc) {
        store_feedback_free(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return 0;
}
