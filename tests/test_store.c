/* test_store.c - the SQLite vector store.
 *
 * A property test runs a few thousand random adds, upserts, deletes,
 * deletes by filter, searches and reopenings against a brute-force model
 * kept in this file; the rest covers model pinning, per-document
 * atomicity (a bad chunk mid-document, and a write failure injected at
 * every write step in turn), bad files, read-only stores and a full disk.
 * Vectors are random; no model is needed. */

#include "test.h"
#include "filter.h"
#include "store.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIM 16
#define MODEL "test-model-16"

static char tmpdir[256];

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rng() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }
static int irand(int n) { return (int)(rng() % (uint64_t)n); }

static void random_vector(float *v, int dim)
{
    for (int i = 0; i < dim; i++)
        v[i] = frand();
}

static void unit_vector(float *v, int dim)
{
    double s = 0;
    random_vector(v, dim);
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    for (int i = 0; i < dim; i++)
        v[i] = (float)(v[i] / sqrt(s));
}

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int which;
    char *p = buf[which++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void remove_db(const char *path)
{
    char side[600];
    remove(path);
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", path);
    remove(side);
}

static store *open_store(const char *path, bool int8)
{
    store_options opts = {.int8_vectors = int8};
    store *s = NULL;
    lode_error err = {0};
    int rc = store_open(path, &opts, &s, &err);
    CHECK(rc == 0, "open %s: %s", path, err.message);
    return s;
}

/* A document of n chunks with random unit vectors in vecs[n][DIM]. */
typedef struct test_doc {
    store_document_in in;
    store_chunk_in chunks[64];
    float vecs[64][DIM];
    char texts[64][48];
    char source[64], external_id[64], metadata[128];
} test_doc;

static void make_doc(test_doc *d, const char *source, const char *ext, size_t n,
                     const char *metadata)
{
    memset(d, 0, sizeof *d);
    snprintf(d->source, sizeof d->source, "%s", source ? source : "");
    snprintf(d->external_id, sizeof d->external_id, "%s", ext ? ext : "");
    snprintf(d->metadata, sizeof d->metadata, "%s", metadata ? metadata : "");
    d->in.model_id = MODEL;
    d->in.source = source ? d->source : NULL;
    d->in.external_id = ext ? d->external_id : NULL;
    d->in.title = "A title";
    d->in.metadata_json = metadata ? d->metadata : NULL;
    d->in.chunks = d->chunks;
    d->in.n_chunks = n;
    for (size_t i = 0; i < n; i++) {
        unit_vector(d->vecs[i], DIM);
        snprintf(d->texts[i], sizeof d->texts[i], "chunk %zu of %s", i, source ? source : ext);
        d->chunks[i] = (store_chunk_in){
            .text = d->texts[i], .char_start = (int64_t)i * 100,
            .char_end = (int64_t)i * 100 + 99, .token_count = 20,
            .heading = i % 2 ? "Intro > Setup" : NULL,
            .vector = d->vecs[i], .dimension = DIM,
        };
    }
}

static size_t search(store *s, const char *coll, const float *q, size_t k,
                     const char *where, store_result **res)
{
    store_query query = {.collection = coll, .model_id = MODEL, .vector = q,
                         .dimension = DIM, .k = k, .where_json = where};
    size_t n = 0;
    lode_error err = {0};
    int rc = store_search(s, &query, res, &n, &err);
    CHECK(rc == 0, "search: %s", err.message);
    return n;
}

/* Two result lists agree on chunk ids and (closely) on scores. */
static bool same_results(const store_result *a, size_t na, const store_result *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].chunk_id != b[i].chunk_id || fabsf(a[i].score - b[i].score) > 1e-5f)
            return false;
    return true;
}

static int64_t count_chunks(store *s, const char *coll)
{
    store_stats st;
    CHECK(store_get_stats(s, coll, &st, NULL) == 0, "stats");
    return st.chunks;
}

/* ---- basics ----------------------------------------------------------- */

/* The keyword index agrees with the chunks: FTS5's own integrity check
 * passes, and every (term, chunk, column, position) in the index is one
 * that an index built afresh from the content view holds, and the other
 * way round.  (FTS5's check of an external-content table, on SQLite 3.40,
 * looks at the index alone, so it would not see a stale entry.)
 * Returns NULL when they agree, else what differs. */
static const char *keyword_index_problem(const char *path)
{
    static char why[300];
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return "cannot open";
    }
    static const char *const steps[] = {
        "INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')",
        "CREATE VIRTUAL TABLE temp.fresh USING fts5(text, title, heading, "
        "collection, tokenize = 'unicode61 remove_diacritics 2')",
        "INSERT INTO temp.fresh (rowid, text, title, heading, collection) "
        "SELECT id, text, title, heading, collection FROM chunks_fts_content",
        "CREATE VIRTUAL TABLE temp.v_index USING fts5vocab(main, chunks_fts, instance)",
        "CREATE VIRTUAL TABLE temp.v_fresh USING fts5vocab(temp, fresh, instance)",
    };
    const char *problem = NULL;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && !problem; i++)
        if (sqlite3_exec(db, steps[i], NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(why, sizeof why, "%s: %s", steps[i], sqlite3_errmsg(db));
            problem = why;
        }
    sqlite3_stmt *st = NULL;
    if (!problem &&
        sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM (SELECT * FROM v_index "
                               "EXCEPT SELECT * FROM v_fresh)), (SELECT count(*) FROM "
                               "(SELECT * FROM v_fresh EXCEPT SELECT * FROM v_index)), "
                               "(SELECT count(*) FROM v_index)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        long long stale = sqlite3_column_int64(st, 0), missing = sqlite3_column_int64(st, 1);
        if (stale || missing) {
            snprintf(why, sizeof why, "%lld stale and %lld missing entries of %lld",
                     stale, missing, (long long)sqlite3_column_int64(st, 2));
            problem = why;
        }
    } else if (!problem) {
        snprintf(why, sizeof why, "comparing: %s", sqlite3_errmsg(db));
        problem = why;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return problem;
}

static void check_keyword_index(const char *path, const char *when)
{
    const char *problem = keyword_index_problem(path);
    CHECK(!problem, "keyword index %s: %s", when, problem);
}

static void test_basics(void)
{
    const char *path = path_in("basics.db");
    store *s = open_store(path, false);
    if (!s)
        return;
    lode_error err = {0};
    CHECK(store_create_collection(s, "notes", MODEL, DIM, STORE_COSINE, &err) == 0, "%s", err.message);
    CHECK(store_create_collection(s, "notes", MODEL, DIM, STORE_COSINE, &err) == 0, "idempotent create");
    CHECK(store_create_collection(s, "other", MODEL, DIM, STORE_L2, &err) == 0, "%s", err.message);

    test_doc d;
    make_doc(&d, "docs/a.md", NULL, 3, "{\"lang\": \"en\", \"year\": 2024}");
    char sha[65];
    store_sha256_hex("hello", 5, sha);
    CHECK(strcmp(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824") == 0, "sha256");
    d.in.content_sha256 = sha;
    int64_t id = 0;
    CHECK(store_add_document(s, "notes", &d.in, &id, &err) == 0 && id > 0, "add: %s", err.message);
    /* A second add of the same source is refused. */
    int rc = store_add_document(s, "notes", &d.in, NULL, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, "use upsert"), "duplicate add: %s", err.message);

    store_document *doc;
    CHECK(store_get_document(s, id, &doc, &err) == 0, "get: %s", err.message);
    if (doc) {
        CHECK(doc->n_chunks == 3 && strcmp(doc->chunks[1].text, "chunk 1 of docs/a.md") == 0, "chunks");
        CHECK(doc->chunks[1].heading && strcmp(doc->chunks[1].heading, "Intro > Setup") == 0, "heading");
        CHECK(doc->chunks[0].heading == NULL && doc->chunks[2].char_start == 200, "fields");
        CHECK(strcmp(doc->collection, "notes") == 0 && strcmp(doc->source, "docs/a.md") == 0 &&
              doc->external_id == NULL && strcmp(doc->content_sha256, sha) == 0, "doc fields");
        store_document_free(doc);
    }
    CHECK(store_get_document(s, id + 100, &doc, &err) == LODE_ENOTFOUND, "missing doc");

    int64_t found;
    char got_sha[65];
    CHECK(store_find_document(s, "notes", "docs/a.md", NULL, &found, got_sha, &err) == 0 &&
          found == id && strcmp(got_sha, sha) == 0, "find: %s", err.message);
    CHECK(store_find_document(s, "notes", "docs/b.md", NULL, &found, got_sha, &err) == LODE_ENOTFOUND, "find missing");
    CHECK(store_find_document(s, "nope", "docs/a.md", NULL, &found, NULL, &err) == LODE_ENOTFOUND, "no collection");

    test_doc d2;
    make_doc(&d2, "docs/b.md", "ext-b", 2, NULL);
    CHECK(store_add_document(s, "notes", &d2.in, NULL, &err) == 0, "add b: %s", err.message);
    char **sources;
    size_t ns;
    CHECK(store_list_sources(s, "notes", &sources, &ns, &err) == 0 && ns == 2 &&
          strcmp(sources[0], "docs/a.md") == 0 && strcmp(sources[1], "docs/b.md") == 0, "sources");
    store_strings_free(sources, ns);

    store_collection_info *infos;
    size_t ni;
    CHECK(store_list_collections(s, &infos, &ni, &err) == 0 && ni == 2, "list");
    if (ni == 2) {
        CHECK(strcmp(infos[0].name, "notes") == 0 && infos[0].documents == 2 &&
              infos[0].chunks == 5 && infos[0].dimension == DIM && infos[0].distance == STORE_COSINE,
              "notes info");
        CHECK(strcmp(infos[1].name, "other") == 0 && infos[1].documents == 0 &&
              infos[1].distance == STORE_L2 && strcmp(infos[1].model_id, MODEL) == 0, "other info");
    }
    store_collections_free(infos, ni);

    store_stats st;
    CHECK(store_get_stats(s, NULL, &st, &err) == 0 && st.collections == 2 && st.documents == 2 &&
          st.chunks == 5 && st.bytes_on_disk > 0 && st.bytes_in_memory >= 5 * DIM * 4, "stats");

    /* The exact vector of a chunk is its own best match. */
    store_result *res;
    size_t n = search(s, "notes", d.vecs[2], 3, NULL, &res);
    CHECK(n == 3 && res[0].document_id == id && res[0].ordinal == 2, "top hit");
    if (n) {
        CHECK(fabsf(res[0].score - 1.0f) < 1e-5f, "cosine self score %g", res[0].score);
        CHECK(strcmp(res[0].text, "chunk 2 of docs/a.md") == 0 && strcmp(res[0].source, "docs/a.md") == 0 &&
              strcmp(res[0].title, "A title") == 0 && res[0].char_start == 200 && res[0].char_end == 299,
              "result fields");
    }
    store_results_free(res, n);
    /* Minimum score. */
    store_query q = {.collection = "notes", .model_id = MODEL, .vector = d.vecs[2],
                     .dimension = DIM, .k = 5, .use_min_score = true, .min_score = 0.999f};
    CHECK(store_search(s, &q, &res, &n, &err) == 0 && n == 1, "min score kept %zu", n);
    store_results_free(res, n);

    /* Upsert by source keeps the id and replaces the chunks. */
    test_doc d3;
    make_doc(&d3, "docs/a.md", NULL, 1, "{\"lang\": \"fr\"}");
    int64_t id3 = 0;
    CHECK(store_upsert_document(s, "notes", &d3.in, &id3, &err) == 0 && id3 == id, "upsert: %s", err.message);
    CHECK(count_chunks(s, "notes") == 3, "chunks after upsert");
    n = search(s, "notes", d.vecs[2], 5, "{\"lang\": \"en\"}", &res);
    CHECK(n == 0, "old metadata gone");
    store_results_free(res, n);
    n = search(s, "notes", d3.vecs[0], 1, "{\"lang\": \"fr\"}", &res);
    CHECK(n == 1 && res[0].document_id == id && fabsf(res[0].score - 1) < 1e-5f, "upserted chunk found");
    store_results_free(res, n);
    /* Upsert by external id may move the source. */
    make_doc(&d3, "docs/b2.md", "ext-b", 4, NULL);
    CHECK(store_upsert_document(s, "notes", &d3.in, &id3, &err) == 0, "upsert ext: %s", err.message);
    CHECK(store_find_document(s, "notes", NULL, "ext-b", &found, NULL, &err) == 0 && found == id3, "by ext");
    CHECK(count_chunks(s, "notes") == 5, "chunks after ext upsert");

    /* Delete by filter; an empty filter is refused. */
    int64_t deleted = -1;
    CHECK(store_delete_where(s, "notes", "{}", &deleted, &err) == LODE_EINVAL, "empty filter refused");
    CHECK(store_delete_where(s, "notes", "{\"lang\": {\"$eq\": 3}}", &deleted, &err) == 0 && deleted == 0, "no match");
    CHECK(store_delete_where(s, "notes", "{\"source\": \"docs/b2.md\"}", &deleted, &err) == 0 && deleted == 1,
          "delete where: %s", err.message);
    CHECK(count_chunks(s, "notes") == 1, "chunks after delete where");
    CHECK(store_delete_document(s, id, &err) == 0, "delete doc");
    CHECK(store_delete_document(s, id, &err) == LODE_ENOTFOUND, "delete twice");
    CHECK(count_chunks(s, "notes") == 0, "empty");

    /* l2 collection: score is minus the squared distance. */
    test_doc d4;
    make_doc(&d4, "x", NULL, 2, NULL);
    CHECK(store_add_document(s, "other", &d4.in, NULL, &err) == 0, "add l2");
    float q2[DIM];
    memcpy(q2, d4.vecs[0], sizeof q2);
    q2[0] += 0.5f;
    n = search(s, "other", q2, 1, NULL, &res);
    CHECK(n == 1 && fabsf(res[0].score + 0.25f) < 1e-5f, "l2 score %g", n ? res[0].score : 0);
    store_results_free(res, n);

    CHECK(store_delete_collection(s, "other", &err) == 0, "delete collection");
    CHECK(store_delete_collection(s, "other", &err) == LODE_ENOTFOUND, "delete collection twice");
    CHECK(store_vacuum(s, &err) == 0, "vacuum: %s", err.message);
    store_close(s);
    check_keyword_index(path, "after a collection delete and vacuum");

    /* Reopen: the deletion stuck. */
    s = open_store(path, false);
    CHECK(store_list_collections(s, &infos, &ni, &err) == 0 && ni == 1, "one collection left");
    store_collections_free(infos, ni);
    store_close(s);
}

/* ---- model pinning ---------------------------------------------------- */

static void test_pinning(void)
{
    const char *path = path_in("pin.db");
    store *s = open_store(path, false);
    lode_error err = {0};
    store_create_collection(s, "c", MODEL, DIM, STORE_COSINE, &err);
    int rc = store_create_collection(s, "c", "other-model", DIM, STORE_COSINE, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, MODEL) && strstr(err.message, "other-model"),
          "create with another model: %s", err.message);
    rc = store_create_collection(s, "c", MODEL, DIM, STORE_DOT, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, "distance"), "another distance: %s", err.message);

    test_doc d;
    make_doc(&d, "a", NULL, 2, NULL);
    d.in.model_id = "other-model";
    rc = store_add_document(s, "c", &d.in, NULL, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, MODEL) && strstr(err.message, "other-model"),
          "add with another model: %s", err.message);
    d.in.model_id = MODEL;
    CHECK(store_add_document(s, "c", &d.in, NULL, &err) == 0, "add");

    store_query q = {.collection = "c", .model_id = "other-model", .vector = d.vecs[0],
                     .dimension = DIM, .k = 1};
    store_result *res;
    size_t n;
    rc = store_search(s, &q, &res, &n, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, MODEL) && strstr(err.message, "other-model"),
          "search with another model: %s", err.message);
    q.model_id = MODEL;
    q.dimension = DIM - 1;
    rc = store_search(s, &q, &res, &n, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, "15 dimensions"), "search wrong dim: %s", err.message);
    store_close(s);
}

/* ---- atomicity -------------------------------------------------------- */

static void test_atomicity(void)
{
    const char *path = path_in("atomic.db");
    store *s = open_store(path, false);
    lode_error err = {0};
    store_create_collection(s, "c", MODEL, DIM, STORE_COSINE, &err);
    test_doc *base = malloc(sizeof *base);
    int64_t base_id;
    make_doc(base, "base", NULL, 5, "{\"v\": 1}");
    CHECK(store_add_document(s, "c", &base->in, &base_id, &err) == 0, "add base");
    float q[DIM];
    unit_vector(q, DIM);
    store_result *before, *after;
    size_t nb = search(s, "c", q, 10, NULL, &before), na;
    store_stats st0, st1;
    store_get_stats(s, NULL, &st0, NULL);

    /* A vector of the wrong dimension in the middle of a new document. */
    test_doc *d = malloc(sizeof *d);
    make_doc(d, "bad", NULL, 6, NULL);
    d->chunks[3].dimension = DIM + 1;
    int rc = store_add_document(s, "c", &d->in, NULL, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, "chunk 3") && strstr(err.message, "nothing"),
          "bad chunk: %s", err.message);
    int64_t found;
    CHECK(store_find_document(s, "c", "bad", NULL, &found, NULL, NULL) == LODE_ENOTFOUND, "bad doc absent");
    store_get_stats(s, NULL, &st1, NULL);
    CHECK(st1.documents == st0.documents && st1.chunks == st0.chunks &&
          st1.bytes_in_memory == st0.bytes_in_memory, "stats unchanged");
    na = search(s, "c", q, 10, NULL, &after);
    CHECK(same_results(before, nb, after, na), "search unchanged after a bad add");
    store_results_free(after, na);

    /* The same in an upsert of an existing document: the old one survives. */
    make_doc(d, "base", NULL, 6, "{\"v\": 2}");
    d->chunks[4].vector = NULL;
    rc = store_upsert_document(s, "c", &d->in, NULL, &err);
    CHECK(rc == LODE_EINVAL, "bad upsert: %s", err.message);
    store_document *doc;
    CHECK(store_get_document(s, base_id, &doc, NULL) == 0 && doc->n_chunks == 5 &&
          strcmp(doc->metadata_json, "{\"v\": 1}") == 0, "old document intact");
    store_document_free(doc);

    /* Fail the 1st, 2nd, ... write step of an upsert until it succeeds:
     * every failure must leave the store (and the arrays) as they were. */
    make_doc(d, "base", NULL, 7, "{\"v\": 3}");
    int failures = 0;
    for (int nth = 1; nth < 100; nth++) {
        store_debug_fail_write(s, nth);
        rc = store_upsert_document(s, "c", &d->in, NULL, &err);
        store_debug_fail_write(s, 0);
        if (rc == 0)
            break;
        failures++;
        CHECK(rc == LODE_EIO && strstr(err.message, "disk is full"), "nth %d: %s", nth, err.message);
        na = search(s, "c", q, 10, NULL, &after);
        CHECK(same_results(before, nb, after, na), "nth %d: search changed", nth);
        store_results_free(after, na);
        CHECK(store_get_document(s, base_id, &doc, NULL) == 0 && doc->n_chunks == 5 &&
              strcmp(doc->metadata_json, "{\"v\": 1}") == 0, "nth %d: old document changed", nth);
        store_document_free(doc);
        if (nth % 5 == 0) {
            /* And the file agrees with memory. */
            store_close(s);
            s = open_store(path, false);
            na = search(s, "c", q, 10, NULL, &after);
            CHECK(same_results(before, nb, after, na), "nth %d: search changed after reopen", nth);
            store_results_free(after, na);
        }
    }
    CHECK(rc == 0 && failures >= 16, "upsert finally succeeded after %d failures", failures);
    check_keyword_index(path, "after the failed upserts");
    CHECK(store_get_document(s, base_id, &doc, NULL) == 0 && doc->n_chunks == 7, "new version");
    store_document_free(doc);
    CHECK(count_chunks(s, "c") == 7, "7 chunks in memory");

    /* Same for delete-by-filter and create-collection. */
    store_debug_fail_write(s, 2);
    CHECK(store_delete_where(s, "c", "{\"v\": 3}", NULL, &err) == LODE_EIO, "delete fails");
    CHECK(count_chunks(s, "c") == 7, "delete failed: chunks kept");
    store_debug_fail_write(s, 2);
    CHECK(store_create_collection(s, "new", MODEL, DIM, STORE_DOT, &err) == LODE_EIO, "create fails");
    store_debug_fail_write(s, 0);
    store_collection_info *infos;
    size_t ni;
    CHECK(store_list_collections(s, &infos, &ni, NULL) == 0 && ni == 1, "no half-made collection");
    store_collections_free(infos, ni);
    check_keyword_index(path, "after the failed delete");

    store_results_free(before, nb);
    free(base);
    free(d);
    store_close(s);
}

/* A document written in pieces (store_doc_writer): ordinals continue
 * across pieces, nothing shows before the commit is made, an abort or a
 * bad chunk in a later piece leaves the old version, and an upsert in
 * pieces replaces it whole. */
static void test_pieces(void)
{
    const char *path = path_in("pieces.db");
    store *s = open_store(path, false);
    lode_error err = {0};
    store_create_collection(s, "c", MODEL, DIM, STORE_COSINE, &err);
    test_doc *d = malloc(sizeof *d);
    make_doc(d, "big", NULL, 30, "{\"v\": 1}");
    store_doc_writer *w;
    CHECK(store_doc_begin(s, "c", &d->in, false, &w, &err) == 0, "begin: %s", err.message);
    for (size_t i = 0; i < 30; i += 7) {
        size_t n = 30 - i < 7 ? 30 - i : 7;
        CHECK(store_doc_add_chunks(w, d->chunks + i, n, &err) == 0, "piece at %zu: %s", i, err.message);
    }
    int64_t id = 0;
    CHECK(store_doc_commit(w, &id, &err) == 0 && id > 0, "commit: %s", err.message);
    CHECK(count_chunks(s, "c") == 30, "30 chunks in memory");
    store_document *doc;
    CHECK(store_get_document(s, id, &doc, NULL) == 0 && doc->n_chunks == 30, "30 chunks stored");
    bool ordered = doc->n_chunks == 30;
    for (size_t i = 0; ordered && i < doc->n_chunks; i++)
        ordered = doc->chunks[i].ordinal == (int)i && strcmp(doc->chunks[i].text, d->texts[i]) == 0;
    CHECK(ordered, "ordinals and texts continue across pieces");
    store_document_free(doc);
    /* the vector of chunk 17 finds chunk 17 */
    store_result *res;
    size_t nr = search(s, "c", d->vecs[17], 1, NULL, &res);
    CHECK(nr == 1 && res[0].document_id == id && res[0].ordinal == 17, "piece vectors searchable");
    store_results_free(res, nr);

    /* An upsert in pieces, aborted after two pieces: the old version stays. */
    test_doc *d2 = malloc(sizeof *d2);
    make_doc(d2, "big", NULL, 20, "{\"v\": 2}");
    CHECK(store_doc_begin(s, "c", &d2->in, true, &w, &err) == 0, "begin upsert");
    CHECK(store_doc_add_chunks(w, d2->chunks, 10, &err) == 0, "first piece");
    CHECK(store_doc_add_chunks(w, d2->chunks + 10, 5, &err) == 0, "second piece");
    store_doc_abort(w);
    CHECK(count_chunks(s, "c") == 30, "abort: 30 chunks in memory");
    nr = search(s, "c", d2->vecs[3], 1, NULL, &res);
    CHECK(nr == 1 && res[0].document_id == id && strcmp(res[0].text, d2->texts[3]) != 0,
          "abort: no new vector searchable");
    store_results_free(res, nr);

    /* A bad chunk in the second piece: rolled back, commit refused. */
    d2->chunks[12].dimension = DIM - 1;
    CHECK(store_doc_begin(s, "c", &d2->in, true, &w, &err) == 0, "begin upsert 2");
    CHECK(store_doc_add_chunks(w, d2->chunks, 10, &err) == 0, "first piece 2");
    int rc = store_doc_add_chunks(w, d2->chunks + 10, 10, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, "chunk 12") && strstr(err.message, "nothing"),
          "bad chunk in piece 2: %s", err.message);
    CHECK(store_doc_commit(w, NULL, &err) != 0, "commit after a failed piece refused");
    CHECK(store_get_document(s, id, &doc, NULL) == 0 && doc->n_chunks == 30 &&
          strcmp(doc->metadata_json, "{\"v\": 1}") == 0, "old version intact");
    store_document_free(doc);
    CHECK(count_chunks(s, "c") == 30, "failed piece: 30 chunks in memory");

    /* Fixed, the upsert in pieces replaces the document whole. */
    d2->chunks[12].dimension = DIM;
    CHECK(store_doc_begin(s, "c", &d2->in, true, &w, &err) == 0, "begin upsert 3");
    CHECK(store_doc_add_chunks(w, d2->chunks, 10, &err) == 0 &&
          store_doc_add_chunks(w, d2->chunks + 10, 10, &err) == 0, "pieces 3");
    int64_t id2 = 0;
    CHECK(store_doc_commit(w, &id2, &err) == 0 && id2 == id, "upsert keeps the id");
    CHECK(count_chunks(s, "c") == 20, "upsert: 20 chunks in memory");
    store_close(s);
    s = open_store(path, false);
    CHECK(count_chunks(s, "c") == 20, "reopened: 20 chunks");
    nr = search(s, "c", d2->vecs[15], 1, NULL, &res);
    CHECK(nr == 1 && res[0].ordinal == 15 && strcmp(res[0].text, d2->texts[15]) == 0,
          "reopened: the new vectors");
    store_results_free(res, nr);
    check_keyword_index(path, "after pieces");
    free(d);
    free(d2);
    store_close(s);
}

/* ---- property test ---------------------------------------------------- */

#define MAX_DOCS 400
#define MAX_CHUNKS 5
static const char *colors[] = {"red", "green", "blue", "amber"};
static const char *colls[] = {"cos", "dot", "l2"};
/* Titles change on upserts, so the keyword index's title triggers run. */
static const char *titles[] = {"T", "Crème brûlée", NULL};

typedef struct model_doc {
    bool alive;
    int coll;
    int64_t id;
    char source[32], external[32];
    int color, year, title;
    int n;
    int64_t chunk_ids[MAX_CHUNKS];
    float vecs[MAX_CHUNKS][DIM];    /* as the store should hold them */
    int chunk_color[MAX_CHUNKS];    /* -1: no chunk metadata */
    bool heading[MAX_CHUNKS];
    json_t *rec[MAX_CHUNKS];        /* what a filter sees, see model_record */
} model_doc;

static model_doc model[MAX_DOCS];

static double model_score(int coll, const float *q, const float *v)
{
    double dot = 0, qq = 0, l2 = 0;
    for (int i = 0; i < DIM; i++) {
        dot += (double)q[i] * v[i];
        qq += (double)q[i] * q[i];
        l2 += ((double)q[i] - v[i]) * ((double)q[i] - v[i]);
    }
    if (coll == 0)
        return dot / sqrt(qq);
    return coll == 1 ? dot : -l2;
}

/* The record a filter sees for chunk c of document d. */
static json_t *model_record(const model_doc *d, int c)
{
    json_t *r = json_pack("{s:s, s:i}", "color", colors[d->color], "year", d->year);
    if (titles[d->title])
        json_object_set_new(r, "title", json_string(titles[d->title]));
    if (d->source[0])
        json_object_set_new(r, "source", json_string(d->source));
    if (d->external[0])
        json_object_set_new(r, "external_id", json_string(d->external));
    if (d->chunk_color[c] >= 0)
        json_object_set_new(r, "color", json_string(colors[d->chunk_color[c]]));
    if (d->heading[c])
        json_object_set_new(r, "heading", json_string("H"));
    return r;
}

static void model_forget_records(model_doc *m)
{
    for (int c = 0; c < MAX_CHUNKS; c++) {
        json_decref(m->rec[c]);
        m->rec[c] = NULL;
    }
}

static void fill_doc(test_doc *td, model_doc *m, char (*chunk_meta)[48])
{
    model_forget_records(m);
    int n = irand(MAX_CHUNKS + 1);
    char meta[96];
    m->color = irand(4);
    m->year = 2000 + irand(10);
    snprintf(meta, sizeof meta, "{\"color\": \"%s\", \"year\": %d}", colors[m->color], m->year);
    make_doc(td, m->source, m->external, (size_t)n, meta);
    m->title = irand(3);
    td->in.title = titles[m->title];
    m->n = n;
    for (int c = 0; c < n; c++) {
        if (m->coll == 2)
            random_vector(td->vecs[c], DIM);        /* l2 and dot keep magnitudes */
        else if (m->coll == 1)
            for (int i = 0; i < DIM; i++)
                td->vecs[c][i] *= 0.5f + (float)irand(4);
        memcpy(m->vecs[c], td->vecs[c], sizeof m->vecs[c]);
        m->chunk_color[c] = irand(4) == 0 ? irand(4) : -1;
        if (m->chunk_color[c] >= 0) {
            snprintf(chunk_meta[c], 48, "{\"color\": \"%s\"}", colors[m->chunk_color[c]]);
            td->chunks[c].metadata_json = chunk_meta[c];
        }
        m->heading[c] = irand(3) == 0;
        td->chunks[c].heading = m->heading[c] ? "H" : NULL;
    }
    for (int c = 0; c < n; c++)
        m->rec[c] = model_record(m, c);
}

static void model_get_chunk_ids(store *s, model_doc *m)
{
    store_document *doc;
    CHECK(store_get_document(s, m->id, &doc, NULL) == 0, "get");
    if (!doc)
        return;
    CHECK(doc->n_chunks == (size_t)m->n, "chunk count");
    for (size_t i = 0; i < doc->n_chunks && i < MAX_CHUNKS; i++)
        m->chunk_ids[i] = doc->chunks[i].id;
    store_document_free(doc);
}

typedef struct cand { double score; int64_t chunk_id; int doc; } cand;
static int cmp_cand(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->chunk_id < b->chunk_id ? -1 : a->chunk_id > b->chunk_id;
}

static void random_filter(char *buf, size_t n)
{
    switch (irand(7)) {
    case 0: buf[0] = '\0'; break;
    case 1: snprintf(buf, n, "{\"color\": \"%s\"}", colors[irand(4)]); break;
    case 2: snprintf(buf, n, "{\"year\": {\"$gte\": %d}}", 2000 + irand(10)); break;
    case 3: snprintf(buf, n, "{\"$or\": [{\"color\": \"%s\"}, {\"heading\": \"H\"}]}", colors[irand(4)]); break;
    case 4: snprintf(buf, n, "{\"color\": {\"$nin\": [\"%s\", \"%s\"]}}", colors[irand(4)], colors[irand(4)]); break;
    case 5: snprintf(buf, n, "{\"$and\": [{\"year\": {\"$lt\": %d}}, {\"color\": {\"$ne\": \"red\"}}]}", 2000 + irand(10)); break;
    default: snprintf(buf, n, "{\"source\": {\"$in\": [\"s%d\", \"s%d\", \"s%d\"]}}", irand(60), irand(60), irand(60)); break;
    }
}

/* Search the store and check it against brute force over the model. */
static void check_search(store *s, int coll, int op)
{
    float q[DIM];
    random_vector(q, DIM);
    char where[160];
    random_filter(where, sizeof where);
    size_t k = 1 + (size_t)irand(12);
    filter *f;
    CHECK(filter_parse(where, &f, NULL) == 0, "filter");
    static cand cands[MAX_DOCS * MAX_CHUNKS];
    size_t nc = 0;
    for (int i = 0; i < MAX_DOCS; i++) {
        const model_doc *d = &model[i];
        if (!d->alive || d->coll != coll)
            continue;
        for (int c = 0; c < d->n; c++)
            if (filter_match_object(f, d->rec[c]))
                cands[nc++] = (cand){model_score(coll, q, d->vecs[c]), d->chunk_ids[c], i};
    }
    filter_free(f);
    qsort(cands, nc, sizeof *cands, cmp_cand);
    store_result *res;
    size_t n = search(s, colls[coll], q, k, where, &res);
    size_t want = nc < k ? nc : k;
    CHECK(n == want, "op %d: %s: %zu results, want %zu", op, where, n, want);
    double tol = coll == 0 ? 1e-5 : 1e-4;
    for (size_t i = 0; i < n && i < want; i++) {
        /* The hit is a real candidate with the right score, and ranks
         * where brute force puts that score. */
        const cand *c = NULL;
        for (size_t j = 0; j < nc && !c; j++)
            if (cands[j].chunk_id == res[i].chunk_id)
                c = &cands[j];
        CHECK(c != NULL, "op %d: %s: result %zu (chunk %lld) is not a candidate", op, where, i,
              (long long)res[i].chunk_id);
        if (!c)
            continue;
        CHECK(fabs(c->score - res[i].score) < tol * (1 + fabs(c->score)), "op %d: score %g vs %g", op,
              res[i].score, c->score);
        CHECK(fabs(cands[i].score - res[i].score) < tol * (1 + fabs(c->score)), "op %d: rank %zu score %g, brute force %g",
              op, i, res[i].score, cands[i].score);
        CHECK(res[i].document_id == model[c->doc].id &&
              strcmp(res[i].source ? res[i].source : "", model[c->doc].source) == 0,
              "op %d: document fields", op);
    }
    store_results_free(res, n);
}

static void test_property(void)
{
    const char *path = path_in("property.db");
    store *s = open_store(path, false);
    lode_error err = {0};
    CHECK(store_create_collection(s, "cos", MODEL, DIM, STORE_COSINE, &err) == 0, "create");
    CHECK(store_create_collection(s, "dot", MODEL, DIM, STORE_DOT, &err) == 0, "create");
    CHECK(store_create_collection(s, "l2", MODEL, DIM, STORE_L2, &err) == 0, "create");
    memset(model, 0, sizeof model);
    test_doc *td = malloc(sizeof *td);
    char chunk_meta[MAX_CHUNKS][48];
    int next_name = 0, reopens = 0, searches = 0;
    const int ops = 3000;
    for (int op = 0; op < ops; op++) {
        int kind = irand(100);
        int slot = irand(MAX_DOCS);
        model_doc *m = &model[slot];
        if (kind < 30) {                             /* add into a free slot */
            if (m->alive)
                continue;
            model_forget_records(m);
            memset(m, 0, sizeof *m);
            m->coll = irand(3);
            snprintf(m->source, sizeof m->source, "s%d", next_name);
            snprintf(m->external, sizeof m->external, "e%d", next_name++);
            fill_doc(td, m, chunk_meta);
            int rc = store_add_document(s, colls[m->coll], &td->in, &m->id, &err);
            CHECK(rc == 0, "op %d add: %s", op, err.message);
            m->alive = rc == 0;
            model_get_chunk_ids(s, m);
        } else if (kind < 45) {                      /* upsert an existing one */
            if (!m->alive)
                continue;
            /* Upsert replaces every field: by source alone clears the
             * external id, by external id alone clears the source; with
             * both, the external id finds it and the source is restored. */
            int64_t old_id = m->id;
            int mode = irand(3);
            if ((mode == 1 && !m->source[0]) || (mode == 2 && !m->external[0]))
                mode = 0;
            if (mode == 0) {
                if (!m->external[0])
                    continue;
                char restored[sizeof m->source];
                snprintf(restored, sizeof restored, "s%s", m->external + 1);
                memcpy(m->source, restored, sizeof restored);
            }
            if (mode == 1)
                m->external[0] = '\0';
            if (mode == 2)
                m->source[0] = '\0';
            fill_doc(td, m, chunk_meta);
            if (!m->source[0])
                td->in.source = NULL;
            if (!m->external[0])
                td->in.external_id = NULL;
            int64_t id = 0;
            int rc = store_upsert_document(s, colls[m->coll], &td->in, &id, &err);
            CHECK(rc == 0 && id == old_id, "op %d upsert mode %d: %lld vs %lld %s", op, mode,
                  (long long)id, (long long)old_id, err.message);
            model_get_chunk_ids(s, m);
        } else if (kind < 55) {                      /* delete */
            if (!m->alive)
                continue;
            CHECK(store_delete_document(s, m->id, &err) == 0, "op %d delete: %s", op, err.message);
            m->alive = false;
        } else if (kind < 58) {                      /* delete by filter */
            int coll = irand(3), year = 2000 + irand(10), color = irand(4);
            char where[96];
            snprintf(where, sizeof where, "{\"year\": %d, \"color\": \"%s\"}", year, colors[color]);
            int64_t deleted = 0, expect = 0;
            for (int i = 0; i < MAX_DOCS; i++)
                if (model[i].alive && model[i].coll == coll && model[i].year == year &&
                    model[i].color == color) {
                    model[i].alive = false;
                    expect++;
                }
            CHECK(store_delete_where(s, colls[coll], where, &deleted, &err) == 0 && deleted == expect,
                  "op %d delete where %s: %lld, want %lld (%s)", op, where, (long long)deleted,
                  (long long)expect, err.message);
        } else if (kind < 59) {                      /* reopen, results unchanged */
            float q[DIM];
            random_vector(q, DIM);
            store_result *before, *after;
            size_t nb = search(s, "cos", q, 8, "{\"year\": {\"$gt\": 2003}}", &before);
            store_close(s);
            s = open_store(path, false);
            if (!s)
                break;
            size_t na = search(s, "cos", q, 8, "{\"year\": {\"$gt\": 2003}}", &after);
            CHECK(same_results(before, nb, after, na), "op %d: results changed across reopen", op);
            store_results_free(before, nb);
            store_results_free(after, na);
            reopens++;
        } else {                                     /* search */
            check_search(s, irand(3), op);
            searches++;
        }
    }
    /* Final full agreement on counts. */
    int64_t alive_chunks = 0, alive_docs = 0;
    for (int i = 0; i < MAX_DOCS; i++)
        if (model[i].alive) {
            alive_docs++;
            alive_chunks += model[i].n;
        }
    store_stats st;
    CHECK(s && store_get_stats(s, NULL, &st, NULL) == 0 && st.documents == alive_docs &&
          st.chunks == alive_chunks, "final counts");
    printf("property: %d ops, %d searches, %d reopens, %lld documents, %lld chunks at the end\n",
           ops, searches, reopens, (long long)alive_docs, (long long)alive_chunks);
    check_keyword_index(path, "after the property test");

    /* int8 view of the same file: same top hits up to quantisation. */
    store *s8 = open_store(path, true);
    for (int t = 0; t < 20 && s8; t++) {
        float q[DIM];
        random_vector(q, DIM);
        store_result *a, *b;
        size_t na = search(s, "cos", q, 5, NULL, &a), nb = search(s8, "cos", q, 5, NULL, &b);
        CHECK(na == nb, "int8 count");
        for (size_t i = 0; i < na && i < nb; i++)
            CHECK(fabsf(a[i].score - b[i].score) < 0.03f, "int8 score %g vs %g", b[i].score, a[i].score);
        store_results_free(a, na);
        store_results_free(b, nb);
    }
    store_close(s8);
    for (int i = 0; i < MAX_DOCS; i++)
        model_forget_records(&model[i]);
    free(td);
    store_close(s);
}

/* ---- two handles: a write through one is seen by the other ------------ */

static void test_two_handles(void)
{
    const char *path = path_in("two.db");
    store *a = open_store(path, false), *b = open_store(path, false);
    lode_error err = {0};
    CHECK(store_create_collection(a, "c", MODEL, DIM, STORE_COSINE, &err) == 0, "create");
    test_doc d;
    make_doc(&d, "x", NULL, 3, NULL);
    CHECK(store_add_document(a, "c", &d.in, NULL, &err) == 0, "add via a");
    store_result *res;
    size_t n = search(b, "c", d.vecs[1], 1, NULL, &res);
    CHECK(n == 1 && res[0].ordinal == 1, "b sees a's write");
    store_results_free(res, n);
    store_close(a);
    store_close(b);
}

/* ---- bad files -------------------------------------------------------- */

static void expect_open_error(const char *path, int code, const char *needle)
{
    store *s = (store *)1;
    lode_error err = {0};
    int rc = store_open(path, NULL, &s, &err);
    CHECK(rc == code && s == NULL, "%s: rc %d (%s)", path, rc, err.message);
    CHECK(strstr(err.message, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", path, err.message, needle);
    if (rc == 0)
        store_close(s);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void populated_store(const char *path, int docs)
{
    remove_db(path);
    store *s = open_store(path, false);
    store_create_collection(s, "c", MODEL, DIM, STORE_COSINE, NULL);
    for (int i = 0; i < docs; i++) {
        test_doc d;
        char name[32];
        snprintf(name, sizeof name, "doc%d", i);
        make_doc(&d, name, NULL, 8, NULL);
        CHECK(store_add_document(s, "c", &d.in, NULL, NULL) == 0, "populate");
    }
    store_close(s);
}

static void test_bad_files(void)
{
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)('a' + i % 26);
    const char *p = path_in("junk.db");
    write_file(p, junk, sizeof junk);
    expect_open_error(p, LODE_EFORMAT, "not an SQLite database");

    /* A newer schema version. */
    p = path_in("newer.db");
    populated_store(p, 1);
    sqlite3 *db;
    sqlite3_open(p, &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    expect_open_error(p, LODE_EFORMAT, "newer version of lode");

    /* Somebody else's SQLite database: refused and left untouched. */
    p = path_in("foreign.db");
    sqlite3_open(p, &db);
    sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL);
    sqlite3_close(db);
    expect_open_error(p, LODE_EFORMAT, "not a lode store");
    sqlite3_open(p, &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    CHECK(sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "delete") == 0,
          "foreign database not switched to WAL");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Truncated files. */
    p = path_in("trunc.db");
    populated_store(p, 40);
    struct stat sb;
    stat(p, &sb);
    CHECK(sb.st_size > 8192, "store is big enough to truncate (%lld)", (long long)sb.st_size);
    CHECK(truncate(p, sb.st_size / 2) == 0, "truncate");
    expect_open_error(p, LODE_EFORMAT, "truncated");
    CHECK(truncate(p, 4096 + 100) == 0, "truncate mid-page");
    expect_open_error(p, LODE_EFORMAT, "truncated");
    CHECK(truncate(p, 50) == 0, "truncate into the header");
    expect_open_error(p, LODE_EFORMAT, "truncated");

    /* An empty file is simply a new store. */
    p = path_in("empty.db");
    write_file(p, "", 0);
    store *s = open_store(p, false);
    store_close(s);

    /* Missing and read-only: not found. */
    store_options ro = {.read_only = true};
    lode_error err = {0};
    CHECK(store_open(path_in("absent.db"), &ro, &s, &err) == LODE_ENOTFOUND, "absent read-only");
}

/* ---- read-only -------------------------------------------------------- */

/* Searches work, writes fail with a clear message.  Returns failures. */
static int check_read_only(const char *path)
{
    int failed_before = test_failed;
    store *s = NULL;
    lode_error err = {0};
    int rc = store_open(path, NULL, &s, &err);
    CHECK(rc == 0, "open read-only %s: %s", path, err.message);
    if (rc)
        return 1;
    CHECK(store_is_read_only(s), "reports read-only");
    float q[DIM];
    unit_vector(q, DIM);
    store_result *res;
    size_t n = search(s, "c", q, 5, "{\"source\": {\"$ne\": \"doc1\"}}", &res);
    CHECK(n == 5, "read-only search found %zu", n);
    store_results_free(res, n);
    test_doc d;
    make_doc(&d, "new", NULL, 2, NULL);
    rc = store_add_document(s, "c", &d.in, NULL, &err);
    CHECK(rc == LODE_EIO && strstr(err.message, "read-only"), "write refused: %s", err.message);
    rc = store_create_collection(s, "x", MODEL, DIM, STORE_DOT, &err);
    CHECK(rc == LODE_EIO && strstr(err.message, "read-only"), "create refused: %s", err.message);
    CHECK(store_delete_collection(s, "c", &err) == LODE_EIO, "delete refused");
    CHECK(store_vacuum(s, &err) == LODE_EIO, "vacuum refused");
    CHECK(count_chunks(s, "c") == 3 * 8, "chunks");
    store_close(s);
    return test_failed - failed_before;
}

static void test_read_only(void)
{
    char dir_rw[300], dir_ro[300], p1[400], p2[400];
    snprintf(dir_rw, sizeof dir_rw, "%s/rw", tmpdir);
    snprintf(dir_ro, sizeof dir_ro, "%s/ro", tmpdir);
    mkdir(dir_rw, 0777);
    mkdir(dir_ro, 0777);
    snprintf(p1, sizeof p1, "%s/a.db", dir_rw);
    snprintf(p2, sizeof p2, "%s/b.db", dir_ro);
    populated_store(p1, 3);
    populated_store(p2, 3);
    chmod(dir_rw, 0777);
    chmod(p1, 0444);
    chmod(p2, 0444);
    chmod(dir_ro, 0555);

    /* The option. */
    store_options ro = {.read_only = true};
    store *s;
    lode_error err = {0};
    CHECK(store_open(p1, &ro, &s, &err) == 0 && store_is_read_only(s), "read-only option");
    test_doc d;
    make_doc(&d, "n", NULL, 1, NULL);
    CHECK(store_add_document(s, "c", &d.in, NULL, &err) == LODE_EIO &&
          strstr(err.message, "read-only option"), "option refuses writes: %s", err.message);
    store_close(s);

    /* Permissions: root ignores them, so check as "nobody" in a child. */
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(100);
        int failures = check_read_only(p1) + check_read_only(p2);
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "read-only child failed (status %d)", status);
    chmod(dir_ro, 0755);
    chmod(p1, 0644);
    chmod(p2, 0644);
}

/* ---- full disk -------------------------------------------------------- */

static void test_full_disk(void)
{
    const char *path = path_in("full.db");
    populated_store(path, 5);
    float q[DIM];
    unit_vector(q, DIM);
    store *s = open_store(path, false);
    store_result *before;
    size_t nb = search(s, "c", q, 10, NULL, &before);
    store_close(s);

    int failed_before = test_failed;
    pid_t pid = fork();
    if (pid == 0) {
        /* Files may not grow past 64 KiB; the WAL hits that first. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {64 * 1024, 64 * 1024};
        struct stat sb;
        if (stat(path, &sb) == 0 && (rlim_t)sb.st_size > lim.rlim_cur)
            lim.rlim_cur = lim.rlim_max = (rlim_t)sb.st_size + 4096;
        setrlimit(RLIMIT_FSIZE, &lim);
        store *c = open_store(path, false);
        if (!c)
            _exit(2);
        static test_doc big;
        static char text[64][4000];
        make_doc(&big, "big", NULL, 64, NULL);
        for (int i = 0; i < 64; i++) {
            memset(text[i], 'x', sizeof text[i] - 1);
            big.chunks[i].text = text[i];
        }
        lode_error err = {0};
        int rc = store_add_document(c, "c", &big.in, NULL, &err);
        CHECK(rc == LODE_EIO && (strstr(err.message, "full") || strstr(err.message, "size limit")),
              "full disk: rc %d: %s", rc, err.message);
        /* Still searchable, and unchanged, in this process. */
        store_result *after;
        size_t na = search(c, "c", q, 10, NULL, &after);
        CHECK(same_results(before, nb, after, na), "search after full disk");
        store_results_free(after, na);
        if (getenv("LODE_TEST_VERBOSE"))
            fprintf(stderr, "full disk message: %s\n", err.message);
        store_close(c);
        _exit(test_failed > failed_before ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "full-disk child failed (status %d)", status);

    s = open_store(path, false);
    if (!s)
        return;
    store_result *after;
    size_t na = search(s, "c", q, 10, NULL, &after);
    CHECK(same_results(before, nb, after, na), "intact after reopen");
    store_results_free(after, na);
    int64_t id;
    CHECK(store_find_document(s, "c", "big", NULL, &id, NULL, NULL) == LODE_ENOTFOUND, "big doc absent");
    test_doc d;
    make_doc(&d, "later", NULL, 2, NULL);
    CHECK(store_add_document(s, "c", &d.in, NULL, NULL) == 0, "writable again");
    store_results_free(before, nb);
    store_close(s);
}

/* ---- open time -------------------------------------------------------- */

static void test_open_time(void)
{
    const char *path = path_in("opentime.db");
    store *s = open_store(path, false);
    store_create_collection(s, "c", MODEL, 384, STORE_COSINE, NULL);
    static float vecs[8][384];
    store_chunk_in chunks[8];
    for (int doc = 0; doc < 500; doc++) {
        for (int i = 0; i < 8; i++) {
            unit_vector(vecs[i], 384);
            chunks[i] = (store_chunk_in){.text = "some chunk text of a modest length, as a chunker makes",
                                         .char_end = 50, .vector = vecs[i], .dimension = 384};
        }
        char src[32];
        snprintf(src, sizeof src, "file%d", doc);
        store_document_in in = {.model_id = MODEL, .source = src, .chunks = chunks, .n_chunks = 8};
        CHECK(store_add_document(s, "c", &in, NULL, NULL) == 0, "add");
    }
    store_close(s);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s = open_store(path, false);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(count_chunks(s, "c") == 4000, "4000 chunks");
    printf("open: 4000 chunks x 384 dims in %.1f ms\n", ms);
    store_close(s);
}

/* tests/ref/schema1.db: a store written by lode before the keyword index
 * (schema version 1, commit 50afaf9: `lode ingest` of three small files
 * into "default" and one into "other" with tests/ref/tiny-uncased-max,
 * then VACUUMed to 1 KiB pages to keep it small). */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out, "copy %s to %s", from, to);
    char buf[8192];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static void test_migration(void)
{
    const char *path = path_in("schema1.db");
    copy_file("tests/ref/schema1.db", path);
    CHECK(sql_int(path, "PRAGMA user_version") == 1, "the fixture is schema 1");

    /* Read-only, it stays as it is and still answers vector searches. */
    store_options ro = {.read_only = true};
    store *s = NULL;
    lode_error err = {0};
    CHECK(store_open(path, &ro, &s, &err) == 0, "read-only open of schema 1: %s", err.message);
    CHECK(s && store_is_outdated(s), "outdated");
    store_collection_info *infos = NULL;
    size_t ni = 0;
    CHECK(s && store_list_collections(s, &infos, &ni, &err) == 0 && ni == 2 &&
          infos[0].chunks == 6 && infos[1].chunks == 1, "collections of the fixture");
    float *q = ni ? calloc((size_t)infos[0].dimension, sizeof *q) : NULL;
    if (q) {
        q[0] = 1;
        store_query vq = {.collection = "default", .model_id = infos[0].model_id,
                          .vector = q, .dimension = infos[0].dimension, .k = 3};
        store_result *res = NULL;
        size_t n = 0;
        CHECK(store_search(s, &vq, &res, &n, &err) == 0 && n == 3,
              "vector search of schema 1: %s", err.message);
        store_results_free(res, n);
    }
    store_close(s);
    CHECK(sql_int(path, "PRAGMA user_version") == 1, "read-only left it at schema 1");

    /* Writable, it is upgraded and its chunks are in the keyword index. */
    s = open_store(path, false);
    CHECK(s && !store_is_outdated(s), "upgraded");
    store_close(s);
    CHECK(sql_int(path, "PRAGMA user_version") == 3, "schema 3 after the upgrade");
    CHECK(sql_int(path, "SELECT count(*) FROM chunks_fts_docsize") == 7, "7 chunks indexed");
    CHECK(sql_int(path, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH "
                        "'{text title heading}: cafe'") ==
              sql_int(path, "SELECT c.id FROM chunks c JOIN documents d ON d.id = "
                            "c.document_id WHERE d.source = 'docs/cafe.md'"),
          "\"cafe\" finds the café's chunk");
    check_keyword_index(path, "after the upgrade");
    store_collections_free(infos, ni);
    free(q);
}

/* ---- search modes ----------------------------------------------------- */

#define MODE_DOCS 60
static const char *const vocab[] = {
    "leave", "policy", "employee", "days", "salary", "office", "remote", "travel",
    "expense", "receipt", "laptop", "security", "password", "holiday", "training",
    "budget", "review", "contract", "notice", "overtime", "parking", "badge",
};

/* Document d: group d % 4 in its metadata; its chunks' words come from
 * vocab; document 7 holds the error code, document 11 the café. */
static void make_mode_doc(test_doc *td, int d)
{
    char src[32], meta[64];
    snprintf(src, sizeof src, "doc%02d", d);
    snprintf(meta, sizeof meta, "{\"group\": %d}", d % 4);
    make_doc(td, src, NULL, 3, meta);
    td->in.title = d % 5 == 0 ? "Travel handbook" : "Staff notes";
    for (int c = 0; c < 3; c++) {
        char *t = td->texts[c];
        t[0] = '\0';
        for (int w = 0; w < 5; w++) {
            const char *word = vocab[irand((int)(sizeof vocab / sizeof vocab[0]))];
            if (strlen(t) + strlen(word) + 2 < sizeof td->texts[c]) {
                strcat(t, word);
                strcat(t, " ");
            }
        }
    }
    if (d == 7)
        snprintf(td->texts[1], sizeof td->texts[1], "code ERR-4711 means retry");
    if (d == 11)
        snprintf(td->texts[2], sizeof td->texts[2], "the café opens at eight");
}

static size_t search_mode(store *s, store_mode mode, const char *text, const float *q,
                          size_t k, const char *where, store_result **res)
{
    store_query query = {.collection = "m", .model_id = MODEL, .vector = q,
                         .dimension = DIM, .k = k, .where_json = where,
                         .mode = mode, .text = text};
    size_t n = 0;
    lode_error err = {0};
    int rc = store_search(s, &query, res, &n, &err);
    CHECK(rc == 0, "%s search: %s", store_mode_name(mode), err.message);
    return n;
}

/* The group of a result (from its source docNN). */
static int group_of(const store_result *r)
{
    return r->source ? atoi(r->source + 3) % 4 : -1;
}

/* The keyword side's cached term counts never outlive a change: after
 * writes through this handle and through another one, BM25 scores equal
 * those of a handle opened afresh. */
static float keyword_top(store *s, const char *text, size_t *n_out)
{
    store_query query = {.collection = "k", .model_id = MODEL, .k = 10,
                         .mode = STORE_MODE_KEYWORD, .text = text};
    store_result *res = NULL;
    size_t n = 0;
    lode_error err = {0};
    CHECK(store_search(s, &query, &res, &n, &err) == 0, "keyword search: %s", err.message);
    float top = n ? res[0].keyword_score : -1;
    store_results_free(res, n);
    *n_out = n;
    return top;
}

static void test_keyword_cache(void)
{
    const char *path = path_in("kcache.db");
    store *s = open_store(path, false);
    lode_error err = {0};
    store_create_collection(s, "k", MODEL, DIM, STORE_COSINE, &err);
    test_doc *d = malloc(sizeof *d);
    for (int i = 0; i < 12; i++) {
        char src[16];
        snprintf(src, sizeof src, "f%d", i);
        make_doc(d, src, NULL, 1, NULL);
        snprintf(d->texts[0], sizeof d->texts[0], i < 2 ? "zephyr wind %d" : "calm day %d", i);
        CHECK(store_add_document(s, "k", &d->in, NULL, &err) == 0, "add: %s", err.message);
    }
    size_t n, nf;
    float before = keyword_top(s, "zephyr", &n);
    CHECK(n == 2, "two zephyr chunks");
    for (int step = 0; step < 3; step++) {
        char src[16];
        snprintf(src, sizeof src, "z%d", step);
        make_doc(d, src, NULL, 1, NULL);
        snprintf(d->texts[0], sizeof d->texts[0], "zephyr again %d", step);
        store *writer = step == 1 ? open_store(path, false) : s;  /* another connection */
        if (step < 2) {
            CHECK(store_add_document(writer, "k", &d->in, NULL, &err) == 0, "add z: %s", err.message);
        } else {
            int64_t n_del = 0;
            CHECK(store_delete_where(writer, "k", "{\"source\": \"z0\"}", &n_del, &err) == 0 &&
                  n_del == 1, "delete z0: %s", err.message);
        }
        if (writer != s)
            store_close(writer);
        float cached = keyword_top(s, "zephyr", &n);
        store *fresh = open_store(path, true);
        float want = keyword_top(fresh, "zephyr", &nf);
        store_close(fresh);
        CHECK(n == nf && n == (size_t)(step < 2 ? 3 + step : 3) && fabsf(cached - want) < 1e-6f,
              "step %d: %zu results, score %g (fresh handle: %zu, %g)", step, n, cached, nf, want);
        CHECK(fabsf(cached - before) > 1e-6f, "step %d: the score moved with the counts", step);
    }
    free(d);
    store_close(s);
}

static void test_search_modes(void)
{
    const char *path = path_in("modes.db");
    store *s = open_store(path, false);
    lode_error err = {0};
    CHECK(store_create_collection(s, "m", MODEL, DIM, STORE_COSINE, &err) == 0, "create");
    /* a second collection with the same words must never leak in */
    CHECK(store_create_collection(s, "other", MODEL, DIM, STORE_COSINE, &err) == 0, "create");
    test_doc *td = malloc(sizeof *td);
    for (int d = 0; d < MODE_DOCS; d++) {
        make_mode_doc(td, d);
        CHECK(store_add_document(s, "m", &td->in, NULL, &err) == 0, "add: %s", err.message);
        if (d < 5)
            CHECK(store_add_document(s, "other", &td->in, NULL, &err) == 0, "add other");
    }
    float q[DIM];
    unit_vector(q, DIM);
    store_result *res, *all;
    size_t n, n_all;

    /* keyword: words, folded diacritics, the identifier first */
    n = search_mode(s, STORE_MODE_KEYWORD, "cafe", NULL, 5, NULL, &res);
    CHECK(n == 1 && strcmp(res[0].source, "doc11") == 0 && res[0].keyword_rank == 1 &&
          !res[0].has_similarity && res[0].vector_rank == 0, "cafe finds café (%zu)", n);
    store_results_free(res, n);
    n = search_mode(s, STORE_MODE_KEYWORD, "leave policy days salary office err-4711 "
                    "ERR-4711 please", NULL, 5, NULL, &res);
    CHECK(n == 5 && strcmp(res[0].source, "doc07") == 0 && strstr(res[0].text, "ERR-4711"),
          "the identifier ranks first: %s", n ? res[0].text : "");
    for (size_t i = 1; i < n; i++)
        CHECK(res[i].score <= res[i - 1].score, "keyword scores do not increase");
    store_results_free(res, n);
    n = search_mode(s, STORE_MODE_KEYWORD, "?!", NULL, 5, NULL, &res);
    CHECK(n == 0, "no terms, no results");
    store_results_free(res, n);

    /* filters in every mode, exact k; and the keyword side filtered is
     * the unfiltered ranking with the others left out */
    static const char *const wheres[] = {
        NULL, "{\"group\": 1}", "{\"group\": {\"$in\": [0, 3]}}",
        "{\"source\": \"doc07\"}", "{\"group\": 9}",
    };
    static const size_t ks[] = {1, 5, 20, 200};
    const char *text = "leave policy travel expense";
    n_all = search_mode(s, STORE_MODE_KEYWORD, text, NULL, 1000, NULL, &all);
    for (size_t w = 0; w < sizeof wheres / sizeof wheres[0]; w++) {
        size_t qualifying = 0, matching = 0;
        for (int d = 0; d < MODE_DOCS; d++) {
            bool pass = !wheres[w] || (w == 1 && d % 4 == 1) ||
                        (w == 2 && (d % 4 == 0 || d % 4 == 3)) || (w == 3 && d == 7);
            qualifying += pass ? 3 : 0;
        }
        for (size_t i = 0; i < n_all; i++) {
            int g = group_of(&all[i]);
            matching += !wheres[w] || (w == 1 && g == 1) || (w == 2 && (g == 0 || g == 3)) ||
                        (w == 3 && strcmp(all[i].source, "doc07") == 0);
        }
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            size_t k = ks[ki];
            for (int m = 0; m < 3; m++) {
                n = search_mode(s, (store_mode)m, text, q, k, wheres[w], &res);
                size_t want = m == STORE_MODE_KEYWORD ? matching : qualifying;
                want = want < k ? want : k;
                CHECK(n == want, "%s, where %s, k %zu: %zu results, wanted %zu",
                      store_mode_name((store_mode)m), wheres[w] ? wheres[w] : "-", k, n, want);
                for (size_t i = 0; i < n; i++) {
                    int g = group_of(&res[i]);
                    bool pass = !wheres[w] || (w == 1 && g == 1) || (w == 2 && (g == 0 || g == 3)) ||
                                (w == 3 && strcmp(res[i].source, "doc07") == 0);
                    CHECK(pass, "%s result %zu breaks the filter %s",
                          store_mode_name((store_mode)m), i, wheres[w]);
                    CHECK(res[i].has_similarity, "a similarity in every mode with a vector");
                }
                if (m == STORE_MODE_KEYWORD) {
                    size_t j = 0;
                    for (size_t i = 0; i < n_all && j < n; i++) {
                        int g = group_of(&all[i]);
                        bool pass = !wheres[w] || (w == 1 && g == 1) ||
                                    (w == 2 && (g == 0 || g == 3)) ||
                                    (w == 3 && strcmp(all[i].source, "doc07") == 0);
                        if (pass)
                            CHECK(all[i].chunk_id == res[j++].chunk_id,
                                  "filtered keyword ranking, where %s", wheres[w]);
                    }
                }
                store_results_free(res, n);
            }
        }
    }
    store_results_free(all, n_all);

    /* hybrid: RRF scores from the ranks; similarity equals the vector
     * side's for chunks it did not rank */
    store_result *vec;
    size_t n_vec = search_mode(s, STORE_MODE_VECTOR, NULL, q, 1000, NULL, &vec);
    CHECK(n_vec == MODE_DOCS * 3, "all chunks by vector: %zu", n_vec);
    n = search_mode(s, STORE_MODE_HYBRID, text, q, 10, NULL, &res);
    CHECK(n == 10, "hybrid k");
    for (size_t i = 0; i < n; i++) {
        double want = (res[i].vector_rank ? 1.0 / (60 + res[i].vector_rank) : 0) +
                      (res[i].keyword_rank ? 1.0 / (60 + res[i].keyword_rank) : 0);
        CHECK(fabs(res[i].score - want) < 1e-6, "rrf score %g, ranks %d %d", res[i].score,
              res[i].vector_rank, res[i].keyword_rank);
        CHECK(res[i].vector_rank || res[i].keyword_rank, "found by someone");
        CHECK(i == 0 || res[i].score <= res[i - 1].score, "hybrid order");
        for (size_t j = 0; j < n_vec; j++)
            if (vec[j].chunk_id == res[i].chunk_id) {
                CHECK(fabsf(vec[j].score - res[i].similarity) < 1e-6f, "similarity %g vs %g",
                      res[i].similarity, vec[j].score);
                CHECK(!res[i].vector_rank || res[i].vector_rank == (int)j + 1,
                      "vector rank %d vs %zu", res[i].vector_rank, j + 1);
            }
    }
    store_results_free(res, n);

    /* convex at alpha 1 is vector mode; at alpha 0 the keyword order */
    store_query cq = {.collection = "m", .model_id = MODEL, .vector = q, .dimension = DIM,
                      .k = 8, .mode = STORE_MODE_HYBRID, .text = text,
                      .fusion = STORE_FUSION_CONVEX, .alpha = 1};
    CHECK(store_search(s, &cq, &res, &n, &err) == 0 && n == 8, "convex 1: %s", err.message);
    for (size_t i = 0; i < n; i++)
        CHECK(res[i].chunk_id == vec[i].chunk_id, "alpha 1 = vector, at %zu", i);
    store_results_free(res, n);
    cq.alpha = 0;
    store_result *kw;
    size_t n_kw = search_mode(s, STORE_MODE_KEYWORD, text, NULL, 8, NULL, &kw);
    CHECK(store_search(s, &cq, &res, &n, &err) == 0 && n == 8, "convex 0: %s", err.message);
    /* (equal BM25 scores may come in another order: ties go to the
     * vector side's rank) */
    for (size_t i = 0; i < n && i < n_kw; i++)
        CHECK(res[i].keyword_rank && res[i].keyword_score == kw[i].keyword_score,
              "alpha 0 = keyword, at %zu", i);
    store_results_free(res, n);
    store_results_free(kw, n_kw);
    store_results_free(vec, n_vec);

    /* min_score is a floor on the similarity in every mode */
    for (int m = 0; m < 3; m++) {
        store_query mq = {.collection = "m", .model_id = MODEL, .vector = q, .dimension = DIM,
                          .k = 50, .mode = (store_mode)m, .text = text,
                          .use_min_score = true, .min_score = 0.2f};
        CHECK(store_search(s, &mq, &res, &n, &err) == 0 && n > 0, "min score %d", m);
        for (size_t i = 0; i < n; i++)
            CHECK(res[i].similarity >= 0.2f, "%s: similarity %g under the floor",
                  store_mode_name((store_mode)m), res[i].similarity);
        store_results_free(res, n);
    }

    /* refused queries */
    store_query bad = {.collection = "m", .model_id = MODEL, .dimension = DIM, .k = 5,
                       .mode = STORE_MODE_HYBRID, .text = text};
    CHECK(store_search(s, &bad, &res, &n, &err) == LODE_EINVAL && strstr(err.message, "vector"),
          "hybrid needs a vector: %s", err.message);
    bad.vector = q;
    bad.text = NULL;
    CHECK(store_search(s, &bad, &res, &n, &err) == LODE_EINVAL && strstr(err.message, "text"),
          "hybrid needs text: %s", err.message);
    bad.text = text;
    bad.fusion = STORE_FUSION_CONVEX;
    bad.alpha = 1.5f;
    CHECK(store_search(s, &bad, &res, &n, &err) == LODE_EINVAL, "alpha out of range");
    bad.mode = (store_mode)7;
    CHECK(store_search(s, &bad, &res, &n, &err) == LODE_EINVAL, "unknown mode");

    /* writes show at once: an upsert's new words, a delete's absence */
    make_mode_doc(td, 7);
    snprintf(td->texts[1], sizeof td->texts[1], "zebra crossing rules");
    CHECK(store_upsert_document(s, "m", &td->in, NULL, &err) == 0, "upsert");
    n = search_mode(s, STORE_MODE_KEYWORD, "zebra", NULL, 5, NULL, &res);
    CHECK(n == 1 && strcmp(res[0].source, "doc07") == 0, "upserted words found");
    store_results_free(res, n);
    n = search_mode(s, STORE_MODE_KEYWORD, "ERR-4711", NULL, 5, NULL, &res);
    CHECK(n == 0, "replaced words gone: %zu", n);
    store_results_free(res, n);
    CHECK(store_delete_where(s, "m", "{\"source\": \"doc11\"}", NULL, &err) == 0, "delete");
    n = search_mode(s, STORE_MODE_KEYWORD, "café", NULL, 5, NULL, &res);
    CHECK(n == 0, "deleted words gone");
    store_results_free(res, n);
    store_close(s);
    check_keyword_index(path, "after the search mode tests");

    /* Common terms score only the rows the rare ones find (more rows
     * than the keyword side's budget hold "common"): the rare term's rows
     * come first, and when they are too few the search widens, so k
     * results still come, under a filter too. */
    s = open_store(path, false);
    CHECK(store_create_collection(s, "big", MODEL, DIM, STORE_COSINE, &err) == 0, "create big");
    for (int d = 0; d < 90; d++) {
        char src[32], meta[32];
        snprintf(src, sizeof src, "big%02d", d);
        snprintf(meta, sizeof meta, "{\"n\": %d}", d);
        make_doc(td, src, NULL, 60, meta);
        for (int c = 0; c < 60; c++)
            snprintf(td->texts[c], sizeof td->texts[c], "common words %s",
                     d == 3 && c < 2 ? "and a rare one" : c % 2 ? "here" : "there");
        CHECK(store_add_document(s, "big", &td->in, NULL, &err) == 0, "add big: %s", err.message);
    }
    store_query bq = {.collection = "big", .k = 5, .mode = STORE_MODE_KEYWORD,
                      .text = "common rare"};
    CHECK(store_search(s, &bq, &res, &n, &err) == 0 && n == 5, "common rare: %zu", n);
    for (size_t i = 0; i < n; i++)
        CHECK((i < 2) == (strstr(res[i].text, "rare") != NULL), "rare rows first, %zu: %s",
              i, res[i].text);
    store_results_free(res, n);
    bq.where_json = "{\"n\": {\"$gt\": 80}}";
    CHECK(store_search(s, &bq, &res, &n, &err) == 0 && n == 5, "widened under a filter: %zu", n);
    for (size_t i = 0; i < n; i++)
        CHECK(atoi(res[i].source + 3) > 80, "filter kept");
    store_results_free(res, n);
    bq.where_json = NULL;
    bq.text = "common";
    bq.k = 200;
    CHECK(store_search(s, &bq, &res, &n, &err) == 0 && n == 200, "one common term: %zu", n);
    store_results_free(res, n);
    store_close(s);

    /* an old store opened read-only: vector yes, keyword no */
    const char *old = path_in("schema1-ro.db");
    copy_file("tests/ref/schema1.db", old);
    store_options ro = {.read_only = true};
    CHECK(store_open(old, &ro, &s, &err) == 0, "open old read-only");
    store_query kq = {.collection = "default", .k = 3, .mode = STORE_MODE_KEYWORD,
                      .text = "leave"};
    CHECK(s && store_search(s, &kq, &res, &n, &err) == LODE_EINVAL &&
          strstr(err.message, "older lode"), "keyword on schema 1: %s", err.message);
    store_close(s);
    free(td);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lode-test-store-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(tmpdir, 0755);
    static const struct { const char *name; void (*fn)(void); } tests[] = {
        {"basics", test_basics}, {"pinning", test_pinning},
        {"atomicity", test_atomicity}, {"pieces", test_pieces},
        {"property", test_property},
        {"two handles", test_two_handles}, {"bad files", test_bad_files},
        {"read-only", test_read_only}, {"full disk", test_full_disk},
        {"open time", test_open_time}, {"migration", test_migration},
        {"search modes", test_search_modes}, {"keyword cache", test_keyword_cache},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (getenv("LODE_TEST_VERBOSE"))
            printf("%-12s %.0f ms\n", tests[i].name,
                   (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    }
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_MAIN_END();
}
