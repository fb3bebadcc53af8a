/* test_faults.c - fault injection over the store's write paths, as
 * SQLite's own tests do it: for each operation (opening a database,
 * creating one, adding, upserting and ingesting a document, deleting a
 * document, deleting by filter, deleting a collection) and each kind of
 * fault, fail call number N for N = 1, 2, ... until the operation runs to
 * its end without meeting the fault.  After every run the operation must
 * have returned success or an error (not crashed), and a fresh open of
 * the file must find PRAGMA integrity_check and the FTS5 integrity check
 * clean, every document acknowledged before the run complete, and the
 * operation's own effect either wholly there (success) or wholly absent
 * (error).  Leaks on error paths are caught by ASan's leak checker under
 * `make test SANITIZE=1`.
 *
 * The faults, each failing one call (later calls succeed, as after a
 * transient error):
 *   sqlite-malloc  SQLite's allocator, through sqlite3_config(
 *                  SQLITE_CONFIG_MALLOC) around the default methods;
 *   lode-malloc    lode's own malloc/calloc/realloc/strdup/strndup: this
 *                  program is linked with -Wl,--wrap=... (see the
 *                  Makefile), which redirects the calls made from
 *                  liblode.a without touching a call site; jansson's
 *                  allocations go through json_set_alloc_funcs;
 *   write, sync, read, truncate
 *                  through a VFS shim registered as the default, wrapping
 *                  the unix VFS and failing with SQLITE_IOERR_*.
 * Vectors are random and the ingest backend chunks by fixed size, so no
 * model is needed and a whole run takes seconds. */

#include "test.h"
#include "ingest.h"
#include "store.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <execinfo.h>
#include <unistd.h>

#define DIM 8
#define MODEL "faults-model-8"

/* ---- the fault switch -------------------------------------------------- */

typedef enum fault_kind {
    FAULT_NONE,
    FAULT_SQLITE_MALLOC,
    FAULT_LODE_MALLOC,
    FAULT_WRITE,
    FAULT_SYNC,
    FAULT_READ,
    FAULT_TRUNCATE,
    FAULT_KINDS
} fault_kind;

static const char *const fault_names[FAULT_KINDS] = {
    "none", "sqlite-malloc", "lode-malloc", "write", "sync", "read", "truncate",
};

static fault_kind fault_armed;
static long fault_calls, fault_target;
static bool fault_hit;
static void *fault_where[16];   /* the failed call's stack, for a report */
static int fault_depth;

static void fault_arm(fault_kind kind, long n)
{
    fault_calls = 0;
    fault_target = n;
    fault_hit = false;
    fault_armed = kind;
}

static void fault_disarm(void) { fault_armed = FAULT_NONE; }

static bool fault_now(fault_kind kind)
{
    if (fault_armed != kind || ++fault_calls != fault_target)
        return false;
    fault_hit = true;
    fault_depth = backtrace(fault_where, 16);
    return true;
}

/* ---- lode's allocations (-Wl,--wrap) ----------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
    return fault_now(FAULT_LODE_MALLOC) ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size)
{
    return fault_now(FAULT_LODE_MALLOC) ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n)
{
    return fault_now(FAULT_LODE_MALLOC) ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s)
{
    return fault_now(FAULT_LODE_MALLOC) ? NULL : __real_strdup(s);
}
char *__wrap_strndup(const char *s, size_t n)
{
    return fault_now(FAULT_LODE_MALLOC) ? NULL : __real_strndup(s, n);
}

/* jansson is a shared library: its calls to malloc are not wrapped. */
static void *json_fault_malloc(size_t n)
{
    return fault_now(FAULT_LODE_MALLOC) ? NULL : __real_malloc(n);
}

/* ---- SQLite's allocator ------------------------------------------------ */

static sqlite3_mem_methods sqlite_mem;

static void *sqlite_fault_malloc(int n)
{
    return fault_now(FAULT_SQLITE_MALLOC) ? NULL : sqlite_mem.xMalloc(n);
}
static void *sqlite_fault_realloc(void *p, int n)
{
    return fault_now(FAULT_SQLITE_MALLOC) ? NULL : sqlite_mem.xRealloc(p, n);
}

/* ---- the VFS shim ------------------------------------------------------ */

typedef struct shim_file {
    sqlite3_file base;
    sqlite3_file *real;     /* the unix file, allocated right after this */
} shim_file;

static sqlite3_vfs *unix_vfs;
#define REAL(f) (((shim_file *)(f))->real)

static int shim_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    if (fault_now(FAULT_READ))
        return SQLITE_IOERR_READ;
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int shim_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    if (fault_now(FAULT_WRITE))
        return SQLITE_IOERR_WRITE;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (fault_now(FAULT_TRUNCATE))
        return SQLITE_IOERR_TRUNCATE;
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
    if (fault_now(FAULT_SYNC))
        return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int shim_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shim_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shim_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shim_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, p);
}
static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, p);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods shim_methods = {
    3, shim_close, shim_read, shim_write, shim_truncate, shim_sync,
    shim_file_size, shim_lock, shim_unlock, shim_check_reserved,
    shim_file_control, shim_sector_size, shim_device_chars, shim_shm_map,
    shim_shm_lock, shim_shm_barrier, shim_shm_unmap, shim_fetch, shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                     int *out_flags)
{
    (void)vfs;
    shim_file *sf = (shim_file *)f;
    sf->real = (sqlite3_file *)(sf + 1);
    int rc = unix_vfs->xOpen(unix_vfs, name, sf->real, flags, out_flags);
    /* pMethods NULL: SQLite calls no xClose on a file that failed to open */
    sf->base.pMethods = sf->real->pMethods ? &shim_methods : NULL;
    return rc;
}
static int shim_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return unix_vfs->xDelete(unix_vfs, name, sync_dir);
}
static int shim_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return unix_vfs->xAccess(unix_vfs, name, flags, out);
}
static int shim_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return unix_vfs->xFullPathname(unix_vfs, name, n, out);
}
static void *shim_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return unix_vfs->xDlOpen(unix_vfs, name);
}
static void shim_dlerror(sqlite3_vfs *v, int n, char *msg)
{
    (void)v;
    unix_vfs->xDlError(unix_vfs, n, msg);
}
static void (*shim_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return unix_vfs->xDlSym(unix_vfs, h, sym);
}
static void shim_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    unix_vfs->xDlClose(unix_vfs, h);
}
static int shim_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return unix_vfs->xRandomness(unix_vfs, n, out);
}
static int shim_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return unix_vfs->xSleep(unix_vfs, us);
}
static int shim_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return unix_vfs->xCurrentTime(unix_vfs, out);
}
static int shim_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return unix_vfs->xGetLastError(unix_vfs, n, out);
}
static int shim_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return unix_vfs->xCurrentTimeInt64(unix_vfs, out);
}

static sqlite3_vfs shim_vfs;

static void faults_install(void)
{
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_mem);
    sqlite3_mem_methods m = sqlite_mem;
    m.xMalloc = sqlite_fault_malloc;
    m.xRealloc = sqlite_fault_realloc;
    sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
    json_set_alloc_funcs(json_fault_malloc, free);

    unix_vfs = sqlite3_vfs_find(NULL);
    shim_vfs = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(shim_file) + unix_vfs->szOsFile,
        .mxPathname = unix_vfs->mxPathname, .zName = "faults",
        .xOpen = shim_open, .xDelete = shim_delete, .xAccess = shim_access,
        .xFullPathname = shim_full_pathname, .xDlOpen = shim_dlopen,
        .xDlError = shim_dlerror, .xDlSym = shim_dlsym, .xDlClose = shim_dlclose,
        .xRandomness = shim_randomness, .xSleep = shim_sleep,
        .xCurrentTime = shim_current_time, .xGetLastError = shim_last_error,
        .xCurrentTimeInt64 = shim_current_time_int64,
    };
    sqlite3_vfs_register(&shim_vfs, 1);
}

/* ---- documents --------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#define MAX_CHUNKS 6

typedef struct test_doc {
    const char *collection;
    char source[160];
    int n_chunks;
    char texts[MAX_CHUNKS][48];
    float vecs[MAX_CHUNKS][DIM];
    store_chunk_in chunks[MAX_CHUNKS];
    store_document_in in;
} test_doc;

static void make_doc(test_doc *d, const char *coll, const char *source, int n,
                     const char *tag)
{
    memset(d, 0, sizeof *d);
    d->collection = coll;
    snprintf(d->source, sizeof d->source, "%s", source);
    d->n_chunks = n;
    for (int i = 0; i < n; i++) {
        snprintf(d->texts[i], sizeof d->texts[i], "%s chunk %d of %s", tag, i, source);
        for (int j = 0; j < DIM; j++)
            d->vecs[i][j] = frand();
        d->chunks[i] = (store_chunk_in){
            .text = d->texts[i], .char_start = i * 100, .char_end = i * 100 + 40,
            .token_count = 8, .heading = i % 2 ? "A > B" : NULL,
            .metadata_json = i == 1 ? "{\"k\":1}" : NULL,
            .vector = d->vecs[i], .dimension = DIM,
        };
    }
    d->in = (store_document_in){
        .model_id = MODEL, .source = d->source, .title = "T",
        .metadata_json = "{\"team\":\"a\"}", .chunks = d->chunks, .n_chunks = (size_t)n,
    };
}

/* The documents of the base file, acknowledged before any fault. */
#define N_BASE 4
static test_doc base_docs[N_BASE];
static test_doc new_doc, replacement_doc;

static char tmpdir[64], base_path[128], run_path[128], ingest_file[128];

static void remove_db(const char *path)
{
    char side[160];
    remove(path);
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", path);
    remove(side);
    snprintf(side, sizeof side, "%s-journal", path);
    remove(side);
}

static bool copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    bool ok = in && out;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out))
        ok = false;
    return ok;
}

static void make_base(void)
{
    remove_db(base_path);
    store *s = NULL;
    lode_error err = {0};
    int rc = store_open(base_path, NULL, &s, &err);
    CHECK(rc == 0, "base open: %s", err.message);
    if (rc)
        return;
    CHECK(store_create_collection(s, "c", MODEL, DIM, STORE_COSINE, &err) == 0, "%s", err.message);
    CHECK(store_create_collection(s, "d", MODEL, DIM, STORE_L2, &err) == 0, "%s", err.message);
    for (int i = 0; i < N_BASE; i++) {
        char src[16];
        snprintf(src, sizeof src, "base%d.txt", i);
        make_doc(&base_docs[i], i == 3 ? "d" : "c", src, 2 + i, "base");
        CHECK(store_add_document(s, base_docs[i].collection, &base_docs[i].in, NULL, &err) == 0,
              "base add: %s", err.message);
    }
    store_close(s);
    make_doc(&new_doc, "c", "new.txt", 5, "new");
    make_doc(&replacement_doc, "c", "base1.txt", 4, "replaced");
}

/* ---- checking a file after a run --------------------------------------- */

static bool sqlite_clean(const char *path, bool schema_optional, char *why, size_t why_size)
{
    sqlite3 *db = NULL;
    bool ok = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(why, why_size, "open: %s", db ? sqlite3_errmsg(db) : "no memory");
        goto out;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        ok = r && strcmp(r, "ok") == 0;
        snprintf(why, why_size, "integrity_check: %s", r ? r : "(null)");
    } else {
        snprintf(why, why_size, "integrity_check: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    /* a file whose creation failed may hold no schema yet (see run_one) */
    bool has_fts = sqlite3_exec(db, "SELECT 1 FROM chunks_fts LIMIT 0", NULL, NULL, NULL) == 0;
    if (ok && (has_fts || !schema_optional) &&
        sqlite3_exec(db, "INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')",
                           NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(why, why_size, "fts integrity-check: %s", sqlite3_errmsg(db));
        ok = false;
    }
out:
    sqlite3_close(db);
    return ok;
}

/* 1: d is there with all its chunks, 0: it is absent, -1: anything else. */
static int doc_state(store *s, const test_doc *d)
{
    lode_error err = {0};
    int64_t id;
    int rc = store_find_document(s, d->collection, d->source, NULL, &id, NULL, &err);
    if (rc == LODE_ENOTFOUND)
        return 0;
    if (rc)
        return -1;
    store_document *got = NULL;
    if (store_get_document(s, id, &got, &err))
        return -1;
    int state = got->n_chunks == (size_t)d->n_chunks ? 1 : -1;
    for (size_t i = 0; state == 1 && i < got->n_chunks; i++)
        if (strcmp(got->chunks[i].text, d->texts[i]) != 0)
            state = -1;
    store_document_free(got);
    return state;
}

typedef struct expect {
    const test_doc *present[N_BASE + 2];  /* must be there, complete; NULL-ended */
    const test_doc *absent[N_BASE + 2];   /* must not be there; NULL-ended */
    const char *absent_collection;        /* must not exist */
} expect;

static bool collection_exists(store *s, const char *name)
{
    store_collection_info *infos = NULL;
    size_t n = 0;
    lode_error err = {0};
    bool found = false;
    if (store_list_collections(s, &infos, &n, &err) == 0)
        for (size_t i = 0; i < n; i++)
            found |= strcmp(infos[i].name, name) == 0;
    store_collections_free(infos, n);
    return found;
}

static bool check_file(const char *path, const expect *e, bool schema_optional, char *why,
                       size_t why_size)
{
    if (!sqlite_clean(path, schema_optional, why, why_size))
        return false;
    store *s = NULL;
    lode_error err = {0};
    if (store_open(path, NULL, &s, &err)) {
        snprintf(why, why_size, "reopen: %s", err.message);
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && e->present[i]; i++)
        if (doc_state(s, e->present[i]) != 1) {
            snprintf(why, why_size, "%s/%s not there whole", e->present[i]->collection,
                     e->present[i]->source);
            ok = false;
        }
    for (int i = 0; ok && e->absent[i]; i++)
        if (doc_state(s, e->absent[i]) != 0) {
            snprintf(why, why_size, "%s/%s still (partly) there", e->absent[i]->collection,
                     e->absent[i]->source);
            ok = false;
        }
    if (ok && e->absent_collection && collection_exists(s, e->absent_collection)) {
        snprintf(why, why_size, "collection %s still there", e->absent_collection);
        ok = false;
    }
    /* the vectors load and a search runs */
    if (ok && collection_exists(s, "c")) {
        store_query q = {.collection = "c", .model_id = MODEL, .vector = base_docs[0].vecs[0],
                         .dimension = DIM, .k = 3};
        store_result *res = NULL;
        size_t n = 0;
        if (store_search(s, &q, &res, &n, &err)) {
            snprintf(why, why_size, "search: %s", err.message);
            ok = false;
        }
        store_results_free(res, n);
    }
    store_close(s);
    return ok;
}

/* ---- the operations ---------------------------------------------------- */

/* The base documents other than `except` (may be NULL). */
static void expect_base(expect *e, const test_doc *except)
{
    memset(e, 0, sizeof *e);
    int n = 0;
    for (int i = 0; i < N_BASE; i++)
        if (&base_docs[i] != except)
            e->present[n++] = &base_docs[i];
}

/* Each operation runs on run_path (a copy of the base file unless noted),
 * armed for its whole length, and says what the file must hold when it
 * succeeded (ok) or failed. */
typedef struct operation {
    const char *name;
    bool fresh_file;     /* start from no file instead of the base copy */
    int (*run)(lode_error *err);
    void (*expect_after)(bool ok, expect *e);
} operation;

static store *op_open_store(lode_error *err, int *rc)
{
    store *s = NULL;
    *rc = store_open(run_path, NULL, &s, err);
    return s;
}

static int run_open(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    store_close(s);
    return rc;
}
static void expect_open(bool ok, expect *e)
{
    (void)ok;
    expect_base(e, NULL);
}

static int run_create(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    if (!rc)
        rc = store_create_collection(s, "c", MODEL, DIM, STORE_COSINE, err);
    if (!rc)
        rc = store_add_document(s, "c", &new_doc.in, NULL, err);
    store_close(s);
    return rc;
}
static void expect_create(bool ok, expect *e)
{
    memset(e, 0, sizeof *e);
    if (ok)
        e->present[0] = &new_doc;
    /* on failure the file may not even exist: checked in run_one */
}

static int run_add(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    if (!rc)
        rc = store_add_document(s, "c", &new_doc.in, NULL, err);
    store_close(s);
    return rc;
}
static void expect_add(bool ok, expect *e)
{
    expect_base(e, NULL);
    *(ok ? &e->present[N_BASE] : &e->absent[0]) = &new_doc;
}

static int run_upsert(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    if (!rc)
        rc = store_upsert_document(s, "c", &replacement_doc.in, NULL, err);
    store_close(s);
    return rc;
}
static void expect_upsert(bool ok, expect *e)
{
    expect_base(e, ok ? &base_docs[1] : NULL);
    if (ok)
        e->present[N_BASE - 1] = &replacement_doc;
}

/* The ingest backend: fixed 40-byte chunks, vectors from the text. */
static int fake_chunk(void *ctx, const char *text, size_t len, const chunk_heading *headings,
                      size_t n_headings, const chunk_options *opts, chunk_list *out,
                      lode_error *err)
{
    (void)ctx, (void)text, (void)headings, (void)n_headings, (void)opts;
    size_t n = (len + 39) / 40;
    if (n > out->cap) {
        chunk *c = realloc(out->chunks, n * sizeof *c);
        if (!c)
            return lode_error_set(err, LODE_ENOMEM, "out of memory chunking");
        out->chunks = c;
        out->cap = n;
    }
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t end = (i + 1) * 40 < len ? (i + 1) * 40 : len;
        out->chunks[i] = (chunk){.byte_start = i * 40, .byte_end = end, .char_start = i * 40,
                                 .char_end = end, .token_count = 10};
    }
    return 0;
}
static int fake_embed(void *ctx, int n, const char *const *texts, const size_t *lens,
                      float *vectors, lode_error *err)
{
    (void)ctx, (void)err;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < DIM; j++)
            vectors[i * DIM + j] = (float)((unsigned char)texts[i][j % lens[i]] + j) / 300.0f;
    return 0;
}

static const char ingest_text[] =
    "The first line of a small text file that ingest reads.\n"
    "A second line so that the file makes three chunks or so.\n";

static test_doc ingested;   /* what ingest of ingest_file stores */

static int run_ingest(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    if (!rc) {
        ingest_backend b = {.chunk = fake_chunk, .embed = fake_embed, .dim = DIM,
                            .max_seq_length = 128};
        snprintf(b.model_id, sizeof b.model_id, "%s", MODEL);
        ingest_options opts = {.collection = "c", .overlap_tokens = -1};
        ingest_stats stats = {0};
        const char *paths[] = {ingest_file};
        rc = ingest_paths_with(s, &b, paths, 1, &opts, &stats, err);
        if (!rc && (stats.failed || stats.added != 1))   /* the file failed */
            rc = lode_error_set(err, LODE_EIO, "the file was not ingested");
    }
    store_close(s);
    return rc;
}
static void expect_ingest(bool ok, expect *e)
{
    expect_base(e, NULL);
    *(ok ? &e->present[N_BASE] : &e->absent[0]) = &ingested;
}

static int run_delete(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    int64_t id;
    if (!rc)
        rc = store_find_document(s, "c", base_docs[2].source, NULL, &id, NULL, err);
    if (!rc)
        rc = store_delete_document(s, id, err);
    store_close(s);
    return rc;
}
static void expect_delete(bool ok, expect *e)
{
    expect_base(e, ok ? &base_docs[2] : NULL);
    if (ok)
        e->absent[0] = &base_docs[2];
}

static int run_delete_where(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    int64_t n = 0;
    if (!rc)
        rc = store_delete_where(s, "c", "{\"source\":\"base0.txt\"}", &n, err);
    if (!rc && n != 1)
        rc = lode_error_set(err, LODE_EIO, "deleted %lld documents, not 1", (long long)n);
    store_close(s);
    return rc;
}
static void expect_delete_where(bool ok, expect *e)
{
    expect_base(e, ok ? &base_docs[0] : NULL);
    if (ok)
        e->absent[0] = &base_docs[0];
}

static int run_delete_collection(lode_error *err)
{
    int rc;
    store *s = op_open_store(err, &rc);
    if (!rc)
        rc = store_delete_collection(s, "d", err);
    store_close(s);
    return rc;
}
static void expect_delete_collection(bool ok, expect *e)
{
    expect_base(e, ok ? &base_docs[3] : NULL);
    if (ok)
        e->absent_collection = "d";
}

static const operation operations[] = {
    {"open", false, run_open, expect_open},
    {"create", true, run_create, expect_create},
    {"add", false, run_add, expect_add},
    {"upsert", false, run_upsert, expect_upsert},
    {"ingest", false, run_ingest, expect_ingest},
    {"delete", false, run_delete, expect_delete},
    {"delete-where", false, run_delete_where, expect_delete_where},
    {"delete-collection", false, run_delete_collection, expect_delete_collection},
};
#define N_OPERATIONS (sizeof operations / sizeof operations[0])

/* Fault counts above this are sampled (every STRIDE-th), to bound the
 * time: most calls past the first few hundred repeat the same paths. */
#define FULL_UP_TO 400
#define STRIDE 7

typedef struct tally {
    long runs, injected, failed_cleanly;
} tally;

static void run_one(const operation *op, fault_kind kind, tally *t)
{
    for (long n = 1;; n = n < FULL_UP_TO ? n + 1 : n + STRIDE) {
        remove_db(run_path);
        if (!op->fresh_file && !copy_file(base_path, run_path)) {
            CHECK(false, "copy %s", base_path);
            return;
        }
        lode_error err = {0};
        fault_arm(kind, n);
        int rc = op->run(&err);
        fault_disarm();
        bool hit = fault_hit;
        t->runs++;
        t->injected += hit;
        if (!hit) {
            CHECK(rc == 0, "%s/%s: no fault met at %ld, yet: %s", op->name, fault_names[kind], n,
                  err.message);
            break;
        }
        CHECK(rc == 0 || err.message[0], "%s/%s#%ld: an error without a message", op->name,
              fault_names[kind], n);
        if (rc && !err.message[0])   /* where the fault was: addr2line */
            backtrace_symbols_fd(fault_where, fault_depth, 2);
        if (rc)
            t->failed_cleanly++;
        expect e;
        op->expect_after(rc == 0, &e);
        if (op->fresh_file && rc && access(run_path, F_OK) != 0)
            continue;   /* failed before the file existed */
        char why[1024] = "";
        bool ok = check_file(run_path, &e, op->fresh_file && rc, why, sizeof why);
        CHECK(ok, "%s/%s#%ld (%s: %s): %s", op->name, fault_names[kind], n,
              rc ? "failed" : "succeeded", rc ? err.message : "", why);
        if (!ok)
            break;
    }
}

int main(void)
{
    faults_install();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lode-faults-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(base_path, sizeof base_path, "%s/base.db", tmpdir);
    snprintf(run_path, sizeof run_path, "%s/run.db", tmpdir);
    snprintf(ingest_file, sizeof ingest_file, "%s/note.txt", tmpdir);
    FILE *f = fopen(ingest_file, "w");
    CHECK(f && fputs(ingest_text, f) >= 0 && fclose(f) == 0, "write %s", ingest_file);
    make_base();

    /* what a clean ingest stores: read it back once */
    memset(&ingested, 0, sizeof ingested);
    ingested.collection = "c";
    {
        char *clean = ingest_clean_path(ingest_file);
        snprintf(ingested.source, sizeof ingested.source, "%s", clean ? clean : "");
        free(clean);
        remove_db(run_path);
        CHECK(copy_file(base_path, run_path), "copy");
        lode_error err = {0};
        CHECK(run_ingest(&err) == 0, "clean ingest: %s", err.message);
        store *s = NULL;
        if (store_open(run_path, NULL, &s, &err) == 0) {
            int64_t id;
            store_document *d = NULL;
            if (store_find_document(s, "c", ingested.source, NULL, &id, NULL, &err) == 0 &&
                store_get_document(s, id, &d, &err) == 0) {
                ingested.n_chunks = (int)d->n_chunks;
                for (size_t i = 0; i < d->n_chunks && i < MAX_CHUNKS; i++)
                    snprintf(ingested.texts[i], sizeof ingested.texts[i], "%s",
                             d->chunks[i].text);
            }
            store_document_free(d);
            store_close(s);
        }
        CHECK(ingested.n_chunks > 0 && ingested.n_chunks <= MAX_CHUNKS, "ingested %d chunks",
              ingested.n_chunks);
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < N_OPERATIONS; i++) {
        tally total = {0};
        printf("%-18s", operations[i].name);
        for (int k = FAULT_SQLITE_MALLOC; k < FAULT_KINDS; k++) {
            tally t = {0};
            run_one(&operations[i], (fault_kind)k, &t);
            printf(" %s %ld/%ld", fault_names[k], t.injected, t.failed_cleanly);
            total.runs += t.runs;
            total.injected += t.injected;
            total.failed_cleanly += t.failed_cleanly;
        }
        printf("  (faults injected %ld, of which errors %ld)\n", total.injected,
               total.failed_cleanly);
        fflush(stdout);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("fault runs took %.1f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

    remove_db(base_path);
    remove_db(run_path);
    remove(ingest_file);
    rmdir(tmpdir);
    TEST_MAIN_END();
}
