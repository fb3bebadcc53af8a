/* store_keyword.c - the keyword retriever: BM25 over the FTS5 index of
 * schema 2 (store.c), for one collection and the chunks a filter allows.
 *
 * FTS5 has no early termination: a ranked OR query scores every row that
 * holds any of its terms, about a microsecond a row, so on 100k chunks a
 * question with a common word ("file", "display") costs tens of
 * milliseconds while merely walking the same doclists costs a few
 * nanoseconds a row.  So, as Lucene's common-terms query does, common
 * terms only score the rows that the rarer ones find:
 *   1. count each term's rows (a doclist walk, cheap);
 *   2. search only the rows that hold one of the rarest terms (R: the
 *      rarest quoted phrase or identifier first, then the rarest terms
 *      while their rows add up to the budget, at least one term),
 *      scoring each with every term of the query (lode_bm25 below);
 *   3. when that finds fewer than `limit` allowed rows, widen R (to four
 *      times its rows) and search again, up to every term: so k results
 *      come whenever k chunks match, under any filter.
 * A query whose terms all fit in the budget is ranked exactly as BM25
 * ranks it; otherwise a chunk holding only the common terms is not a
 * candidate.  Measured on the man-page set (bench/retrieval.sh): recall@5
 * 0.7533 instead of the exact 0.7542, hybrid unchanged, and the p99 of a
 * keyword search at 100k chunks 12.6 ms instead of 26 ms (an exact
 * MaxScore-style check of what was left out cost that tail).  The budget
 * is a share of the index (KEYWORD_BUDGET_SHARE): a fixed 4000 rows let a
 * 10k-chunk index score 40% of itself per query; with a 25th, keyword
 * search there costs 0.86x a vector scan instead of 2.8x (with the
 * cached counts below; bench/retrieval.sh).
 *
 * lode_bm25 is FTS5's bm25() (k1 = 1.2, b = 0.75, IDF = ln((N - n + 0.5)
 * / (n + 0.5)), at least 1e-6; N rows, n of them with the term; a row's
 * length is all its tokens) over the first phrases of the expression only,
 * the ones given a row count as argument, so the terms repeated to
 * restrict the rows are not counted twice.  The title weighs
 * KEYWORD_TITLE_WEIGHT times a word of the text, the collection column
 * nothing.  Counts, like IDF, are over the whole index (every collection).
 *
 * The collection is part of the MATCH expression (its id is a token of
 * the `collection` column) when the store holds more than one.  A filter
 * is applied while stepping through the ranked rows (a hash set of the
 * allowed chunk ids, built from the bitmap the vector side uses), stopping
 * at `limit`: exact results whatever fraction of the collection it allows.
 * When the query has required terms (keyword.h), the rows that match all
 * of them come first; the score given to fusion is then raised for those
 * rows just enough that it never increases down the list, while the BM25
 * reported stays the true one.
 */
#include "store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

#define KEYWORD_TITLE_WEIGHT 2.0
#define KEYWORD_K1 1.2
#define KEYWORD_B 0.75
/* The rows the rarest terms may bring (step 2 above): a 25th of the
 * index, within [256, 4000] (see the measurements above). */
#define KEYWORD_BUDGET_SHARE 25
#define KEYWORD_BUDGET_MIN 256
#define KEYWORD_BUDGET_MAX 4000

/* Column weights: text, title, heading, collection. */
static const double column_weight[4] = {1.0, KEYWORD_TITLE_WEIGHT, 1.0, 0.0};

static double idf_of(double rows, double with_term)
{
    double idf = log((rows - with_term + 0.5) / (with_term + 0.5));
    return idf > 0 ? idf : 1e-6;
}

/* ---- lode_bm25(chunks_fts, n_0, n_1, ...) ------------------------------- */

typedef struct rank_data {
    int n;                      /* scored phrases */
    double avg_len;
    double idf[];
} rank_data;

static void lode_bm25(const Fts5ExtensionApi *api, Fts5Context *fts,
                      sqlite3_context *ctx, int n_val, sqlite3_value **val)
{
    rank_data *d = api->xGetAuxdata(fts, 0);
    if (!d) {
        sqlite3_int64 rows = 0, tokens = 0;
        d = sqlite3_malloc64(sizeof *d + (size_t)(n_val > 0 ? n_val : 1) * sizeof(double));
        if (!d || api->xRowCount(fts, &rows) != SQLITE_OK ||
            api->xColumnTotalSize(fts, -1, &tokens) != SQLITE_OK) {
            sqlite3_free(d);
            sqlite3_result_error_code(ctx, SQLITE_NOMEM);
            return;
        }
        d->n = n_val;
        d->avg_len = rows ? (double)tokens / (double)rows : 1.0;
        for (int i = 0; i < n_val; i++)
            d->idf[i] = idf_of((double)rows, sqlite3_value_double(val[i]));
        if (api->xSetAuxdata(fts, d, sqlite3_free) != SQLITE_OK) {
            sqlite3_result_error_code(ctx, SQLITE_NOMEM);
            return;
        }
    }
    double freq[KEYWORD_MAX_TERMS] = {0};
    int n_inst = 0, len = 0;
    if (api->xInstCount(fts, &n_inst) != SQLITE_OK ||
        api->xColumnSize(fts, -1, &len) != SQLITE_OK) {
        sqlite3_result_error(ctx, "lode_bm25: cannot read the row", -1);
        return;
    }
    for (int i = 0; i < n_inst; i++) {
        int phrase, col, off;
        if (api->xInst(fts, i, &phrase, &col, &off) == SQLITE_OK && phrase < d->n &&
            phrase < KEYWORD_MAX_TERMS && col >= 0 && col < 4)
            freq[phrase] += column_weight[col];
    }
    double score = 0, norm = KEYWORD_K1 * (1 - KEYWORD_B + KEYWORD_B * len / d->avg_len);
    for (int i = 0; i < d->n && i < KEYWORD_MAX_TERMS; i++)
        score += d->idf[i] * freq[i] * (KEYWORD_K1 + 1) / (freq[i] + norm);
    sqlite3_result_double(ctx, score);
}

int store__keyword_register(sqlite3 *db)
{
    fts5_api *fts = NULL;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_pointer(st, 1, (void *)&fts, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    if (!fts || fts->iVersion < 2)
        return SQLITE_ERROR;
    return fts->xCreateFunction(fts, "lode_bm25", NULL, lode_bm25, NULL);
}

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

typedef struct term_count {
    size_t term;                /* index into kq->terms */
    int64_t rows;               /* rows holding it, in the whole index */
} term_count;

static int by_rows(const void *pa, const void *pb)
{
    const term_count *a = pa, *b = pb;
    return a->rows < b->rows ? -1 : a->rows > b->rows ? 1
         : a->term < b->term ? -1 : a->term > b->term;
}

/* ---- term counts, cached ---------------------------------------------- */

/* Counting a term's rows walks its whole doclist, and the common terms,
 * whose lists are longest, are the ones most queries share: on the
 * man-page questions at 10k chunks the counts were a third of a keyword
 * search.  So the counts are kept in a small direct-mapped table, valid
 * while the file is unchanged: by this connection (total_changes) and by
 * any other (data_version, which store__refresh has just read). */
#define TERM_CACHE_SLOTS 1024

typedef struct term_slot {
    uint64_t hash;
    char *expr;                 /* the FTS5 expression counted, or NULL */
    int64_t rows;
} term_slot;

struct store__term_cache {
    int64_t data_version, total_changes;
    term_slot slot[TERM_CACHE_SLOTS];
};

void store__term_cache_free(store *s)
{
    if (!s->term_cache)
        return;
    for (size_t i = 0; i < TERM_CACHE_SLOTS; i++)
        free(s->term_cache->slot[i].expr);
    free(s->term_cache);
    s->term_cache = NULL;
}

/* The cache, emptied when the file changed; NULL without memory (then
 * every count is read). */
static struct store__term_cache *term_cache(store *s)
{
    int64_t changes = sqlite3_total_changes64(s->db);
    struct store__term_cache *tc = s->term_cache;
    if (tc && (tc->data_version != s->data_version || tc->total_changes != changes))
        store__term_cache_free(s);
    if (!s->term_cache && (s->term_cache = calloc(1, sizeof *s->term_cache))) {
        s->term_cache->data_version = s->data_version;
        s->term_cache->total_changes = changes;
    }
    return s->term_cache;
}

static uint64_t fnv1a(const char *p)
{
    uint64_t h = 1469598103934665603ull;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static int count_rows(store *s, const keyword_query *kq, term_count *counts,
                      lode_error *err)
{
    sqlite3_stmt *st = NULL;
    struct store__term_cache *tc = term_cache(s);
    int rc = 0;
    for (size_t i = 0; !rc && i < kq->n_terms; i++) {
        sbuf expr = {0};
        sbuf_printf(&expr, "{text title heading} : %s", kq->terms[i].fts);
        char *text = sbuf_take(&expr, NULL);
        sbuf_free(&expr);
        if (!text) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
            break;
        }
        uint64_t h = fnv1a(text);
        term_slot *slot = tc ? &tc->slot[h % TERM_CACHE_SLOTS] : NULL;
        if (slot && slot->expr && slot->hash == h && strcmp(slot->expr, text) == 0) {
            counts[i] = (term_count){i, slot->rows};
            free(text);
            continue;
        }
        if (!st && (rc = store__prepare_cached(s, "SELECT count(*) FROM chunks_fts "
                                                  "WHERE chunks_fts MATCH ?", &st, err))) {
            free(text);
            break;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        counts[i] = (term_count){i, src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0};
        if (src != SQLITE_ROW)
            rc = store__sql_error(s, src, "counting a term's rows", err);
        sqlite3_reset(st);
        if (!rc && slot) {          /* the slot takes the expression */
            free(slot->expr);
            *slot = (term_slot){h, text, counts[i].rows};
        } else {
            free(text);
        }
    }
    store__release(s, st);
    return rc;
}

/* The SQL of one pass: every term scored, the rows restricted to those
 * holding a term of R (unless R is every term) and to the collection. */
static char *pass_sql(const store *s, const coll *c, const keyword_query *kq,
                      const bool *in_r, bool all, bool limited, char **match)
{
    sbuf sql = {0}, m = {0};
    /* the terms' row counts are bound to ?4... (run_pass), so the SQL
     * depends only on the number of terms and stays prepared */
    sbuf_puts(&sql, "SELECT rowid, lode_bm25(chunks_fts");
    for (size_t i = 0; i < kq->n_terms; i++)
        sbuf_printf(&sql, ", ?%zu", i + 4);
    sbuf_puts(&sql, ") AS score, ");
    sbuf_puts(&sql, kq->required ? "rowid IN (SELECT rowid FROM chunks_fts WHERE "
                                   "chunks_fts MATCH ?2) AS tier" : "0 AS tier");
    sbuf_puts(&sql, " FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY tier DESC, "
                    "score DESC");
    if (limited)
        sbuf_puts(&sql, " LIMIT ?3");
    sbuf_printf(&m, "{text title heading} : (%s)", kq->any);
    if (!all) {
        sbuf_puts(&m, " AND {text title heading} : (");
        bool first = true;
        for (size_t i = 0; i < kq->n_terms; i++)
            if (in_r[i]) {
                sbuf_printf(&m, "%s%s", first ? "" : " OR ", kq->terms[i].fts);
                first = false;
            }
        sbuf_puts(&m, ")");
    }
    if (s->n_colls > 1)
        sbuf_printf(&m, " AND collection : \"%lld\"", (long long)c->id);
    *match = sbuf_take(&m, NULL);
    sbuf_free(&m);
    char *out = sbuf_take(&sql, NULL);
    sbuf_free(&sql);
    return out;
}

/* One pass: up to limit allowed rows, best first.  *first_tier0 is the
 * index of the first row not matching every required term (n if none). */
static int run_pass(store *s, const char *sql, const char *match, const char *required,
                    const term_count *counts, size_t n_terms,
                    const idset *allowed, size_t limit, store__keyword_hit *out,
                    size_t *n_out, size_t *first_tier0, lode_error *err)
{
    sqlite3_stmt *st;
    int rc = store__prepare_cached(s, sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    for (size_t i = 0; i < n_terms; i++)
        sqlite3_bind_int64(st, (int)(4 + counts[i].term), counts[i].rows);
    if (required)
        sqlite3_bind_text(st, 2, required, -1, SQLITE_STATIC);
    if (!allowed)
        sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    size_t n = 0;
    int src = SQLITE_DONE;
    *first_tier0 = SIZE_MAX;
    while (n < limit && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (allowed && !idset_has(allowed, id))
            continue;
        out[n].id = id;
        out[n].bm25 = (float)sqlite3_column_double(st, 1);
        out[n].fused = out[n].bm25;
        if (!sqlite3_column_int(st, 2) && *first_tier0 == SIZE_MAX)
            *first_tier0 = n;
        n++;
    }
    if (n < limit && src != SQLITE_DONE)
        rc = store__sql_error(s, src, "searching the keyword index", err);
    store__release(s, st);
    if (*first_tier0 == SIZE_MAX)
        *first_tier0 = n;
    *n_out = n;
    return rc;
}

/* Chunks in the keyword index: those of every collection. */
static size_t indexed_chunks(const store *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_colls; i++)
        n += s->colls[i]->vs.count;
    return n;
}

int store__keyword_search(store *s, const coll *c, const keyword_query *kq,
                          const uint64_t *allow, size_t limit,
                          store__keyword_hit *out, size_t *n_out, lode_error *err)
{
    *n_out = 0;
    if (!kq->any || limit == 0)
        return 0;
    int rc = store__need_keyword_index(s, err);
    if (!rc)
        rc = store__fts_fresh(s, err);
    if (rc)
        return rc;
    idset allowed = {0};
    if (allow && (rc = idset_from_bitmap(&allowed, c, allow, err)))
        return rc;
    size_t nt = kq->n_terms;
    term_count *counts = calloc(nt, sizeof *counts);
    bool *in_r = calloc(nt, sizeof *in_r);
    char *req = NULL;
    if (!counts || !in_r) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
        goto out;
    }
    if (kq->required) {
        sbuf b = {0};
        sbuf_printf(&b, "{text title heading} : (%s)", kq->required);
        req = sbuf_take(&b, NULL);
        sbuf_free(&b);
        if (!req) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
            goto out;
        }
    }
    if ((rc = count_rows(s, kq, counts, err)))
        goto out;
    qsort(counts, nt, sizeof *counts, by_rows);

    /* R: the rarest required term, then the rarest terms within budget. */
    int64_t budget = (int64_t)(indexed_chunks(s) / KEYWORD_BUDGET_SHARE);
    budget = budget < KEYWORD_BUDGET_MIN ? KEYWORD_BUDGET_MIN
           : budget > KEYWORD_BUDGET_MAX ? KEYWORD_BUDGET_MAX : budget;
    int64_t in_r_rows = 0;
    size_t n_r = 0;
    for (size_t i = 0; i < nt && kq->required; i++)
        if (kq->terms[counts[i].term].required) {
            in_r[counts[i].term] = true;
            in_r_rows = counts[i].rows;
            n_r = 1;
            break;
        }
    for (size_t i = 0; i < nt; i++)
        if (!in_r[counts[i].term] && (n_r == 0 || in_r_rows + counts[i].rows <= budget)) {
            in_r[counts[i].term] = true;
            in_r_rows += counts[i].rows;
            n_r++;
        }
    size_t n = 0, first_tier0 = 0;
    for (;;) {
        bool all = n_r == nt;
        char *match = NULL, *sql = pass_sql(s, c, kq, in_r, all, !allow, &match);
        if (!sql || !match) {
            free(sql);
            free(match);
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
            goto out;
        }
        rc = run_pass(s, sql, match, req, counts, nt, allow ? &allowed : NULL, limit, out, &n,
                      &first_tier0, err);
        free(sql);
        free(match);
        if (rc || all || n == limit)
            break;
        /* Widen R to four times its rows (at least one more term). */
        int64_t target = 4 * (in_r_rows > 0 ? in_r_rows : 1);
        size_t added = 0;
        for (size_t i = 0; i < nt; i++) {
            if (in_r[counts[i].term])
                continue;
            if (added && in_r_rows + counts[i].rows > target)
                break;
            in_r[counts[i].term] = true;
            in_r_rows += counts[i].rows;
            n_r++;
            added++;
        }
    }
    if (rc)
        goto out;
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
    free(counts);
    free(in_r);
    free(req);
    free(allowed.slots);
    return rc;
}
