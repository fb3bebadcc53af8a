/* store_keyword.c - the keyword retriever: BM25 over the FTS5 index of
 * schema 2 (store.c), for one collection and the chunks a filter allows.
 *
 * The collection is part of the MATCH expression (its id is a token of
 * the index's `collection` column), so FTS5 itself restricts the
 * candidates and, without a filter, SQLite's sorter keeps only the best
 * `limit` of them.  A filter is applied while stepping through the
 * ranked rows (a hash set of the allowed chunk ids, built from the same
 * bitmap the vector side uses), stopping at `limit`: exact results
 * whatever fraction of the collection the filter allows.
 *
 * Scores are FTS5's bm25() with the sign turned (higher is better), the
 * title weighing KEYWORD_TITLE_WEIGHT times a word of the text and the
 * collection column nothing.  When the query has required terms
 * (keyword.h), the rows that match all of them come first; the score
 * given to fusion is then raised for those rows just enough that it never
 * increases down the list, while the BM25 reported stays the true one.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

#define KEYWORD_TITLE_WEIGHT 2.0
#define KEYWORD_HEADING_WEIGHT 1.0

/* ---- a set of chunk ids ------------------------------------------------- */

typedef struct idset {
    int64_t *slots;             /* 0 = empty (chunk ids start at 1) */
    size_t mask;
} idset;

static size_t id_hash(int64_t id, size_t mask)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & mask;
}

static int idset_from_bitmap(idset *set, const coll *c, const uint64_t *allow,
                             lode_error *err)
{
    size_t n = 0;
    for (size_t r = 0; r < c->vs.count; r++)
        n += allow[r / 64] >> (r % 64) & 1;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    set->mask = cap - 1;
    set->slots = calloc(cap, sizeof *set->slots);
    if (!set->slots)
        return lode_error_set(err, LODE_ENOMEM, "out of memory filtering");
    for (size_t r = 0; r < c->vs.count; r++) {
        if (!(allow[r / 64] >> (r % 64) & 1))
            continue;
        size_t i = id_hash(c->vs.ids[r], set->mask);
        while (set->slots[i] && set->slots[i] != c->vs.ids[r])
            i = (i + 1) & set->mask;
        set->slots[i] = c->vs.ids[r];
    }
    return 0;
}

static bool idset_has(const idset *set, int64_t id)
{
    for (size_t i = id_hash(id, set->mask); set->slots[i]; i = (i + 1) & set->mask)
        if (set->slots[i] == id)
            return true;
    return false;
}

/* ---- the search ----------------------------------------------------------- */

/* `collection : "ID" AND {text title heading} : (EXPR)` */
static void restricted(sbuf *b, const coll *c, const char *expr)
{
    sbuf_printf(b, "collection : \"%lld\" AND {text title heading} : (%s)",
                (long long)c->id, expr);
}

int store__keyword_search(store *s, const coll *c, const keyword_query *kq,
                          const uint64_t *allow, size_t limit,
                          store__keyword_hit *out, size_t *n_out, lode_error *err)
{
    *n_out = 0;
    if (!kq->any || limit == 0)
        return 0;
    int rc = store__need_keyword_index(s, err);
    if (rc)
        return rc;
    idset allowed = {0};
    if (allow && (rc = idset_from_bitmap(&allowed, c, allow, err)))
        return rc;

    sbuf sql = {0}, any = {0}, req = {0};
    sbuf_printf(&sql, "SELECT rowid, -bm25(chunks_fts, 1.0, %.2f, %.2f, 0.0) AS score",
                KEYWORD_TITLE_WEIGHT, KEYWORD_HEADING_WEIGHT);
    if (kq->required)
        sbuf_puts(&sql, ", rowid IN (SELECT rowid FROM chunks_fts WHERE chunks_fts "
                        "MATCH ?2) AS tier");
    else
        sbuf_puts(&sql, ", 0 AS tier");
    sbuf_puts(&sql, " FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY tier DESC, "
                    "score DESC");
    if (!allow)
        sbuf_puts(&sql, " LIMIT ?3");
    restricted(&any, c, kq->any);
    if (kq->required)
        restricted(&req, c, kq->required);
    char *sql_text = sbuf_take(&sql, NULL), *any_text = sbuf_take(&any, NULL);
    char *req_text = kq->required ? sbuf_take(&req, NULL) : NULL;
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    if (!sql_text || !any_text || (kq->required && !req_text)) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
        goto out;
    }
    if ((rc = store__prepare(s, sql_text, &st, err)))
        goto out;
    sqlite3_bind_text(st, 1, any_text, -1, SQLITE_STATIC);
    if (req_text)
        sqlite3_bind_text(st, 2, req_text, -1, SQLITE_STATIC);
    if (!allow)
        sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int src = SQLITE_DONE;
    size_t first_tier0 = limit;     /* index of the first row not in tier 1 */
    while (n < limit && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (allow && !idset_has(&allowed, id))
            continue;
        out[n].id = id;
        out[n].bm25 = (float)sqlite3_column_double(st, 1);
        out[n].fused = out[n].bm25;
        if (!sqlite3_column_int(st, 2) && first_tier0 == limit)
            first_tier0 = n;
        n++;
    }
    if (n < limit && src != SQLITE_DONE) {
        rc = store__sql_error(s, src, "searching the keyword index", err);
        goto out;
    }
    /* Required-term rows first: lift their fusion score above the rest. */
    if (first_tier0 > 0 && first_tier0 < n) {
        float top_rest = out[first_tier0].bm25, low_first = out[first_tier0 - 1].bm25;
        for (size_t i = first_tier0 + 1; i < n; i++)
            if (out[i].bm25 > top_rest)
                top_rest = out[i].bm25;
        for (size_t i = 0; i < first_tier0; i++)
            if (out[i].bm25 < low_first)
                low_first = out[i].bm25;
        if (top_rest >= low_first) {
            float lift = top_rest - low_first + 1e-3f * (top_rest > 0 ? top_rest : 1.0f);
            for (size_t i = 0; i < first_tier0; i++)
                out[i].fused = out[i].bm25 + lift;
        }
    }
    *n_out = n;
out:
    sqlite3_finalize(st);
    free(sql_text);
    free(any_text);
    free(req_text);
    sbuf_free(&sql);
    sbuf_free(&any);
    sbuf_free(&req);
    free(allowed.slots);
    return rc;
}
