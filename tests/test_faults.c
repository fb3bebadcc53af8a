/* test_faults.c - fault injection as SQLite's own tests do it: for each
 * operation and each kind of fault, fail call number N for N = 1, 2, ...
 * until the operation runs to its end without meeting the fault.
 *
 * Two sets of operations:
 *   the store's (opening a database, creating one, adding, upserting and
 *       ingesting a document, deleting a document, deleting by filter,
 *       deleting a collection), called directly with random vectors and a
 *       fixed-size chunker, so no model is needed;
 *   the HTTP API's, through the real HTTP layer and handlers (src/http.c
 *       driven without a socket by tests/http_driver.h, the api set up as
 *       `lode serve` does, the default model embedding): adding a document
 *       with metadata, one without id or source, upserting one, adding
 *       the first document of a new collection, DELETE of a document, a
 *       Tally form submission, a redelivery of one, and a generic webhook
 *       delivery (both with a catalog filter built from their answers).
 *
 * After every store run the operation must have returned success or an
 * error (not crashed), and a fresh open of the file must find PRAGMA
 * integrity_check and the FTS5 integrity check clean, every document
 * acknowledged before the run complete, and the operation's own effect
 * either wholly there (success) or wholly absent (error).
 *
 * After every HTTP run: exactly one answer, JSON; a 2xx answer when the
 * file is exactly (every collection, document, metadata, chunk, vector)
 * as after a clean run of the request and the answer says what the clean
 * run's said (or the short "answer_truncated" form a server out of memory
 * after the work gives, or a search's error in a webhook's answer); an
 * error answer of the {"error": {"message", "type", "code"}} shape with
 * status 500, 503 or 507, when the file is exactly as before (nothing
 * partial; a failed first add may leave its new collection, empty: see
 * http_ops); the integrity checks clean; the server's own store handle
 * finding what a fresh open finds (vector and keyword search of every
 * collection: its memory is in step with the file); and a stored webhook
 * delivery answered as a duplicate when it comes again.  A request that
 * runs out of memory before it exists has its connection closed (the one
 * case without an answer; libmicrohttpd's own allocations are not
 * faulted).  Leaks on error paths are caught by ASan's leak checker under
 * `make test SANITIZE=1`.
 *
 * The faults, each failing one call (later calls succeed, as after a
 * transient error):
 *   sqlite-malloc  SQLite's allocator, through sqlite3_config(
 *                  SQLITE_CONFIG_MALLOC) around the default methods;
 *   lode-malloc    lode's own malloc/calloc/realloc/strdup/strndup: this
 *                  program is linked with -Wl,--wrap=... (see the
 *                  Makefile), which redirects the calls made from
 *                  liblode.a (and from http.c, included here) without
 *                  touching a call site; jansson's allocations come
 *                  through jsonmem.c, which is in liblode.a;
 *   write, sync, read, truncate
 *                  through a VFS shim registered as the default, wrapping
 *                  the unix VFS and failing with SQLITE_IOERR_*.
 * Fault counts above FULL_UP_TO are sampled.  The summary line gives the
 * faults injected per set and in total.  Files live in /dev/shm when
 * there is one.  LODE_FAULTS_ONLY=NAME runs one operation,
 * LODE_FAULTS_VERBOSE=1 keeps the server's error log. */

#include "test.h"
#include "ingest.h"
#include "jsonmem.h"
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
#include <math.h>
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
    /* jansson is a shared library: its calls to malloc are not wrapped,
     * but lode hands it jsonmem's allocator, which is in liblode.a */
    jsonmem_install();

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

/* ---- the HTTP handlers --------------------------------------------------
 * The real HTTP layer and handlers, driven without a socket by
 * tests/http_driver.h (its libmicrohttpd stubs allocate with the real
 * malloc: their faults would be libmicrohttpd's, not lode's).  The api is
 * set up as `lode serve` sets it up, with the default model loaded by the
 * scheduler's threads; a request's work on the scheduler thread runs while
 * this thread waits for its resume, so the calls still come one at a time
 * and call number N is the same call on every run. */
#define HTTP_DRIVER_MALLOC __real_malloc
#include "http_driver.h"

#include "api.h"
#include "bert.h"
#include "guard.h"
#include "jsonmem.h"
#include "scheduler.h"
#include "server.h"
#include "webhook.h"

#define HTTP_MODEL "models/all-MiniLM-L6-v2-q8_0.gguf"

/* The model's forward pass, remembered: this program is also linked with
 * -Wl,--wrap=bert_forward (see the Makefile), and a batch of token ids
 * seen before gets the vectors the real bert_forward gave it, bit for bit.
 * The forward pass allocates nothing (its scratch is reserved before), so
 * the fault sequence is the same; what is saved is the time: thousands of
 * runs embed the same few texts, and the pass was most of the run time
 * (under ASan 10 ms a run).  Everything around it is real: tokenizer,
 * chunker, scheduler. */
int __real_bert_forward(const bert_config *cfg, const bert_weights *w, bert_scratch *s,
                        struct pool *pool, const int32_t *ids, const int *seq_lens,
                        int n_seqs, float *out, lode_error *err);

#define FORWARD_MEMO 32
static struct {
    int n_seqs, n_ids;
    int32_t *ids;           /* the lens, then the ids */
    float *out;
} forward_memo[FORWARD_MEMO];
static int forward_memo_n;

int __wrap_bert_forward(const bert_config *cfg, const bert_weights *w, bert_scratch *s,
                        struct pool *pool, const int32_t *ids, const int *seq_lens,
                        int n_seqs, float *out, lode_error *err)
{
    int n_ids = 0;
    for (int i = 0; i < n_seqs; i++)
        n_ids += seq_lens[i];
    size_t key_bytes = (size_t)(n_seqs + n_ids) * sizeof(int32_t);
    size_t out_bytes = (size_t)n_seqs * (size_t)cfg->hidden * sizeof(float);
    for (int m = 0; m < forward_memo_n; m++)
        if (forward_memo[m].n_seqs == n_seqs && forward_memo[m].n_ids == n_ids &&
            memcmp(forward_memo[m].ids, seq_lens, (size_t)n_seqs * sizeof(int32_t)) == 0 &&
            memcmp(forward_memo[m].ids + n_seqs, ids, (size_t)n_ids * sizeof(int32_t)) == 0) {
            memcpy(out, forward_memo[m].out, out_bytes);
            return 0;
        }
    int rc = __real_bert_forward(cfg, w, s, pool, ids, seq_lens, n_seqs, out, err);
    if (rc || forward_memo_n == FORWARD_MEMO)
        return rc;
    int32_t *key = __real_malloc(key_bytes);
    float *copy = __real_malloc(out_bytes);
    if (!key || !copy) {
        free(key);
        free(copy);
        return rc;
    }
    memcpy(key, seq_lens, (size_t)n_seqs * sizeof(int32_t));
    memcpy(key + n_seqs, ids, (size_t)n_ids * sizeof(int32_t));
    memcpy(copy, out, out_bytes);
    forward_memo[forward_memo_n].n_seqs = n_seqs;
    forward_memo[forward_memo_n].n_ids = n_ids;
    forward_memo[forward_memo_n].ids = key;
    forward_memo[forward_memo_n].out = copy;
    forward_memo_n++;
    return rc;
}

static void forward_memo_free(void)
{
    for (int m = 0; m < forward_memo_n; m++) {
        free(forward_memo[m].ids);
        free(forward_memo[m].out);
    }
    forward_memo_n = 0;
}

static api a;
static http_server srv;
static char http_base_path[128], webhooks_path[128];

static const char webhooks_json[] =
    "{\"tally\": {\"support\": {\"embed_fields\": [\"Problem\", \"Plan\"],"
    " \"filter_fields\": {\"Plan\": \"plan\"}, \"catalog\": \"docs\", \"k\": 2}},"
    " \"generic\": {\"issues\": {\"text\": [\"/issue/title\", \"/issue/body\"],"
    " \"metadata\": {\"number\": \"/issue/number\", \"state\": \"/issue/state\"},"
    " \"id\": \"/delivery\", \"title\": \"/issue/title\","
    " \"filter_fields\": {\"state\": \"status\"}, \"catalog\": \"docs\", \"k\": 2}}}";

static bool http_setup(void)
{
    api_config *c = &a.cfg;
    server_config_defaults(c);
    c->load_wait_ms = 60000;
    c->debug_memory_percent = 10;    /* never shed */
    a.loopback = true;               /* writes need no key */
    guard_level level;
    if (guard_parse_level(c->guardrails, &level))
        return false;
    a.guard_level = (int)level;
    a.started_ms = sched_now_ms();
    pthread_mutex_init(&a.store_lock, NULL);
    pthread_mutex_init(&a.stats_lock, NULL);
    pthread_mutex_init(&a.mem_lock, NULL);
    lode_error err = {0};
    const char *names[64];
    for (int i = 0; i < api_n_routes && i < 64; i++)
        names[i] = api_routes[i].name;
    if (metrics_create(names, api_n_routes, &a.metrics, &err))
        return false;
    sched_options so = {.model_path = HTTP_MODEL, .metrics = a.metrics};
    if (sched_start(&so, &a.sched, &err))
        return false;
    sched_status ss = {0};
    for (int i = 0; i < 6000; i++) {   /* the load: a minute at most */
        sched_get_status(a.sched, &ss);
        if (ss.state == SCHED_LOADED || ss.state == SCHED_FAILED)
            break;
        usleep(10000);
    }
    CHECK(ss.state == SCHED_LOADED, "model %s: %s", HTTP_MODEL, ss.error);
    FILE *f = fopen(webhooks_path, "w");
    bool ok = f && fputs(webhooks_json, f) >= 0;
    if (f && fclose(f))
        ok = false;
    CHECK(ok && webhook_config_load(webhooks_path, &a.webhooks, &err) == 0, "webhooks: %s",
          err.message);
    srv.cfg = (http_config){
        .max_body = c->max_body, .max_json_depth = c->max_json_depth,
        .routes = api_routes, .n_routes = api_n_routes, .check = api_check,
        .done = api_done, .app = &a,
    };
    pthread_mutex_init(&srv.lock, NULL);
    return ss.state == SCHED_LOADED && a.webhooks;
}

static void http_teardown(void)
{
    forward_memo_free();
    sched_free(a.sched);
    metrics_free(a.metrics);
    webhook_config_free(a.webhooks);
}

static bool http_store_open(const char *path)
{
    lode_error err = {0};
    store *s = NULL;
    int rc = store_open(path, NULL, &s, &err);
    CHECK(rc == 0, "open %s: %s", path, err.message);
    a.store = s;
    a.store_state = rc ? API_STORE_FAILED : API_STORE_OPEN;
    return rc == 0;
}

static void http_store_close(void)
{
    store_close(a.store);
    a.store = NULL;
    a.store_state = API_STORE_OPENING;
}

/* An answer, copied out of the driver (with the real malloc). */
typedef struct answer {
    bool begun;          /* false: out of memory for the request itself */
    bool timed_out;
    int n_answers;
    unsigned status;
    char violation[256];
    char *body;          /* NUL-terminated, or NULL for none / a stream */
    size_t len;
} answer;

static void answer_free(answer *an)
{
    free(an->body);
    an->body = NULL;
}

/* Run a request; armed for it when `kind` is not FAULT_NONE. */
static void http_do(const char *method, const char *url, const char *body, fault_kind kind,
                    long n, answer *an)
{
    memset(an, 0, sizeof *an);
    /* the server logs each 500 on stderr: thousands of lines, not here */
    int saved_stderr = -1;
    if (kind != FAULT_NONE && !getenv("LODE_FAULTS_VERBOSE")) {
        fflush(stderr);
        saved_stderr = dup(2);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 2);
            close(null);
        }
    }
    if (kind != FAULT_NONE)
        fault_arm(kind, n);
    bool done = hd_request(&srv, method, url, body, body ? strlen(body) : 0, 30);
    fault_disarm();
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
    }
    an->begun = hd.req != NULL;
    an->timed_out = an->begun && !done;
    an->n_answers = hd.n_answers;
    an->status = hd.status;
    snprintf(an->violation, sizeof an->violation, "%s", hd.violation);
    if (hd.answer && hd.answer->data && !hd.answer->free_cb) {
        an->body = __real_malloc(hd.answer->len + 1);
        if (an->body) {
            memcpy(an->body, hd.answer->data, hd.answer->len);
            an->body[hd.answer->len] = '\0';
            an->len = hd.answer->len;
        }
    }
    if (!an->timed_out)
        hd_finish(&srv);
}

/* Everything a file holds that a request can change, as text: the
 * collections, every document with its metadata, every chunk with its
 * text, heading, metadata and vector, in an order that does not depend
 * on row ids.  NULL when the file cannot be read. */
static char *snapshot(const char *path)
{
    static const char *const queries[] = {
        "SELECT name, model_id, dimension, distance FROM collections ORDER BY name",
        "SELECT c.name, d.external_id, d.source, d.title, d.metadata, d.content_sha256,"
        " (SELECT count(*) FROM chunks WHERE document_id = d.id)"
        " FROM documents d JOIN collections c ON c.id = d.collection_id"
        " ORDER BY 1, 2, 3",
        "SELECT c.name, d.external_id, d.source, k.ordinal, k.char_start, k.char_end,"
        " k.token_count, k.heading, k.metadata, k.text, hex(v.vector),"
        " v.collection_id = d.collection_id, v.document_id = d.id"
        " FROM chunks k JOIN documents d ON d.id = k.document_id"
        " JOIN collections c ON c.id = d.collection_id"
        " LEFT JOIN vectors v ON v.chunk_id = k.id ORDER BY 1, 2, 3, 4",
        "SELECT 'orphan vectors', count(*) FROM vectors"
        " WHERE chunk_id NOT IN (SELECT id FROM chunks)",
    };
    sqlite3 *db = NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    bool ok = f && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK;
    for (size_t q = 0; ok && q < sizeof queries / sizeof queries[0]; q++) {
        sqlite3_stmt *st = NULL;
        ok = sqlite3_prepare_v2(db, queries[q], -1, &st, NULL) == SQLITE_OK;
        int rc;
        while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(st); i++) {
                const char *v = (const char *)sqlite3_column_text(st, i);
                fprintf(f, "%s%s", i ? " | " : "", v ? v : "NULL");
            }
            fputc('\n', f);
        }
        ok = ok && rc == SQLITE_DONE;
        sqlite3_finalize(st);
        fputs("--\n", f);
    }
    sqlite3_close(db);
    if (f)
        fclose(f);
    if (!ok) {
        free(text);
        return NULL;
    }
    return text;
}

/* A vector search and a keyword search of every collection, through the
 * server's store handle and through a fresh open of its file, must find
 * the same: the handle's memory (vectors, keyword state) is in step with
 * the file after a failed write. */
static float probe_vector[384];

static bool same_searches(store *live, const char *path, char *why, size_t why_size)
{
    store *fresh = NULL;
    lode_error err = {0};
    if (store_open(path, NULL, &fresh, &err)) {
        snprintf(why, why_size, "reopen: %s", err.message);
        return false;
    }
    store_collection_info *infos = NULL;
    size_t n_colls = 0;
    bool ok = store_list_collections(fresh, &infos, &n_colls, &err) == 0;
    for (size_t c = 0; ok && c < n_colls; c++) {
        for (int mode = 0; ok && mode < 2; mode++) {
            store_query q = {.collection = infos[c].name, .model_id = infos[c].model_id,
                             .vector = probe_vector, .dimension = infos[c].dimension,
                             .k = 20, .mode = mode ? STORE_MODE_KEYWORD : STORE_MODE_VECTOR,
                             .text = "invoices login problem"};
            store_result *r1 = NULL, *r2 = NULL;
            size_t n1 = 0, n2 = 0;
            lode_error e1 = {0}, e2 = {0};
            int rc1 = store_search(live, &q, &r1, &n1, &e1);
            int rc2 = store_search(fresh, &q, &r2, &n2, &e2);
            ok = rc1 == rc2 && n1 == n2;
            for (size_t i = 0; ok && i < n1; i++)
                ok = strcmp(r1[i].text, r2[i].text) == 0 &&
                     r1[i].document_id == r2[i].document_id &&
                     fabsf(r1[i].score - r2[i].score) < 1e-4f;
            if (!ok && getenv("LODE_FAULTS_VERBOSE"))
                for (size_t i = 0; i < n1 || i < n2; i++)
                    fprintf(stderr, "  %zu: live %s %g | fresh %s %g\n", i,
                            i < n1 ? r1[i].text : "-", i < n1 ? r1[i].score : 0,
                            i < n2 ? r2[i].text : "-", i < n2 ? r2[i].score : 0);
            if (!ok)
                snprintf(why, why_size, "%s search of %s: the server's handle finds %zu (%.200s), "
                         "a fresh open %zu (%.200s)", mode ? "keyword" : "vector", infos[c].name,
                         n1, rc1 ? e1.message : "ok", n2, rc2 ? e2.message : "ok");
            store_results_free(r1, n1);
            store_results_free(r2, n2);
        }
    }
    store_collections_free(infos, n_colls);
    store_close(fresh);
    return ok;
}

/* ---- the requests ------------------------------------------------------ */

typedef enum http_kind { HTTP_DOCS, HTTP_WEBHOOK, HTTP_DELETE } http_kind;

typedef struct http_op {
    const char *name;
    http_kind kind;
    const char *method, *url, *body;
    /* a failed run may leave this collection behind, empty (see main) */
    const char *may_leave_collection;
    /* filled by a clean run: */
    char *after;         /* the file's snapshot */
    json_t *answer;
} http_op;

#define DOC_A "Invoices are sent on the first day of each month by email."
#define DOC_B "# Login\\n\\nA login problem is solved by resetting the password."

static const char base_docs_body[] =
    "{\"documents\": [{\"id\": \"keep-1\", \"title\": \"Billing\", \"text\": \"" DOC_A "\","
    " \"metadata\": {\"team\": \"a\", \"plan\": \"Pro\"}},"
    " {\"source\": \"notes/b.md\", \"text\": \"" DOC_B "\","
    " \"metadata\": {\"team\": \"b\", \"status\": \"open\"}}]}";

#define TALLY(event, problem)                                                           \
    "{\"eventId\": \"" event "\", \"eventType\": \"FORM_RESPONSE\","                     \
    " \"createdAt\": \"2025-01-21T10:00:00.000Z\", \"data\": {\"responseId\": \"r-" event \
    "\", \"respondentId\": \"p-1\", \"formId\": \"support\", \"formName\": \"Support\","  \
    " \"createdAt\": \"2025-01-21T10:00:00.000Z\", \"fields\": ["                         \
    "{\"key\": \"q_plan\", \"label\": \"Plan\", \"type\": \"MULTIPLE_CHOICE\","           \
    " \"value\": [\"o2\"], \"options\": [{\"id\": \"o1\", \"text\": \"Free\"},"           \
    " {\"id\": \"o2\", \"text\": \"Pro\"}]},"                                              \
    " {\"key\": \"q_problem\", \"label\": \"Problem\", \"type\": \"TEXTAREA\","           \
    " \"value\": \"" problem "\"},"                                                        \
    " {\"key\": \"q_seats\", \"label\": \"\", \"type\": \"INPUT_NUMBER\", \"value\": 12}]}}"

#define ISSUE(delivery, title, body)                                                    \
    "{\"delivery\": \"" delivery "\", \"action\": \"opened\", \"issue\": {\"number\": 7," \
    " \"title\": \"" title "\", \"body\": \"" body "\", \"state\": \"open\"}}"

/* The requests.  http-new-collection may leave "fresh" behind, empty,
 * when its document fails after the collection was made (a transaction
 * each): accepted, as api_store_documents documents it. */
static http_op http_ops[] = {
    {"http-add", HTTP_DOCS, "POST", "/collections/docs/documents",
     "{\"text\": \"Refunds take five working days.\", \"title\": \"Refunds\","
     " \"source\": \"notes/refunds.md\", \"metadata\": {\"team\": \"c\", \"n\": 2}}", NULL,
     NULL, NULL},
    {"http-add-noid", HTTP_DOCS, "POST", "/collections/docs/documents",
     "{\"documents\": [{\"text\": \"A document without an id or a source.\"}]}", NULL,
     NULL, NULL},
    {"http-upsert", HTTP_DOCS, "POST", "/collections/docs/documents",
     "{\"id\": \"keep-1\", \"title\": \"Billing v2\", \"text\": \"Invoices now go out on"
     " the second day.\", \"metadata\": {\"team\": \"a\", \"plan\": \"Free\"}}", NULL,
     NULL, NULL},
    {"http-new-collection", HTTP_DOCS, "POST", "/collections/fresh/documents",
     "{\"id\": \"f1\", \"text\": \"The first document of a new collection.\"}", "fresh",
     NULL, NULL},
    {"http-delete", HTTP_DELETE, "DELETE", "/collections/docs/documents/keep-1", NULL, NULL,
     NULL, NULL},
    {"tally", HTTP_WEBHOOK, "POST", "/webhook/tally",
     TALLY("ev-2", "I cannot log in since the update."), NULL, NULL, NULL},
    {"tally-redelivery", HTTP_WEBHOOK, "POST", "/webhook/tally",
     TALLY("ev-base", "Where is my invoice?"), NULL, NULL, NULL},
    {"generic-webhook", HTTP_WEBHOOK, "POST", "/webhook/issues",
     ISSUE("d-2", "Crash on start", "The app crashes when it starts."), NULL, NULL, NULL},
};
#define N_HTTP_OPS (sizeof http_ops / sizeof http_ops[0])

static char *http_base_snapshot;

static bool make_http_base(void)
{
    remove_db(http_base_path);
    if (!http_store_open(http_base_path))
        return false;
    static const char *const reqs[][2] = {
        {"/collections/docs/documents", base_docs_body},
        {"/webhook/tally", TALLY("ev-base", "Where is my invoice?")},
        {"/webhook/issues", ISSUE("d-base", "Login fails", "A login problem on the web page.")},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        answer an;
        http_do("POST", reqs[i][0], reqs[i][1], FAULT_NONE, 0, &an);
        CHECK(an.status == 200, "base %s: %u %s", reqs[i][0], an.status,
              an.body ? an.body : "");
        ok = ok && an.status == 200;
        answer_free(&an);
    }
    http_store_close();
    /* the probe vector of same_searches: a stored one */
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(http_base_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT vector FROM vectors LIMIT 1", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == sizeof probe_vector)
            memcpy(probe_vector, sqlite3_column_blob(st, 0), sizeof probe_vector);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    http_base_snapshot = snapshot(http_base_path);
    CHECK(http_base_snapshot, "snapshot of the base");
    return ok && http_base_snapshot;
}

/* Is this an error answer of the documented shape? */
static bool error_shaped(const json_t *body)
{
    json_t *e = json_object_get(body, "error");
    return json_is_string(json_object_get(e, "message")) &&
           json_is_string(json_object_get(e, "type")) &&
           json_is_string(json_object_get(e, "code"));
}

/* Does a 2xx answer say what the clean run's said?  (Not the timings,
 * and a document id only as being there.) */
static bool same_answer(const http_op *op, json_t *got, char *why, size_t why_size)
{
    json_t *want = op->answer;
    /* the short answer of a server out of memory after the work was done:
     * what it says must still be true */
    if (json_is_true(json_object_get(got, "answer_truncated"))) {
        static const char *const same_short[] = {"id", "document_id", "deleted", "ok",
                                                 "duplicate", "webhook", "collection",
                                                 "event_id", "form_id", "chunks", "usage"};
        bool ok = true;
        for (size_t i = 0; ok && i < sizeof same_short / sizeof same_short[0]; i++)
            ok = json_equal(json_object_get(got, same_short[i]),
                            json_object_get(want, same_short[i])) ||
                 (!json_object_get(got, same_short[i]) &&
                  !json_object_get(want, same_short[i])) ||
                 (strcmp(same_short[i], "document_id") == 0 &&
                  json_integer_value(json_object_get(got, "document_id")) > 0);
        json_t *gd = json_object_get(got, "documents"), *wd = json_object_get(want, "documents");
        ok = ok && json_array_size(gd) == json_array_size(wd);
        for (size_t i = 0; ok && i < json_array_size(wd); i++) {
            json_t *g = json_array_get(gd, i), *w = json_array_get(wd, i);
            ok = json_equal(json_object_get(g, "id"), json_object_get(w, "id")) &&
                 json_equal(json_object_get(g, "source"), json_object_get(w, "source")) &&
                 json_equal(json_object_get(g, "chunks"), json_object_get(w, "chunks")) &&
                 json_integer_value(json_object_get(g, "document_id")) > 0;
        }
        if (!ok) {
            char *text = json_dumps(got, JSON_COMPACT);
            snprintf(why, why_size, "the short answer is wrong: %.300s", text ? text : "");
            free(text);
        }
        return ok;
    }
    if (op->kind == HTTP_DELETE) {
        if (!json_equal(got, want))
            snprintf(why, why_size, "the answer differs from a clean run's");
        return json_equal(got, want);
    }
    if (op->kind == HTTP_DOCS) {
        json_t *gd = json_object_get(got, "documents"), *wd = json_object_get(want, "documents");
        bool ok = json_equal(json_object_get(got, "collection"),
                             json_object_get(want, "collection")) &&
                  json_equal(json_object_get(got, "chunks"), json_object_get(want, "chunks")) &&
                  json_array_size(gd) == json_array_size(wd);
        for (size_t i = 0; ok && i < json_array_size(wd); i++) {
            json_t *g = json_array_get(gd, i), *w = json_array_get(wd, i);
            ok = json_equal(json_object_get(g, "id"), json_object_get(w, "id")) &&
                 json_equal(json_object_get(g, "source"), json_object_get(w, "source")) &&
                 json_equal(json_object_get(g, "chunks"), json_object_get(w, "chunks")) &&
                 json_integer_value(json_object_get(g, "document_id")) > 0;
        }
        if (!ok)
            snprintf(why, why_size, "the answer does not list the documents a clean run's does");
        return ok;
    }
    static const char *const same[] = {"ok", "duplicate", "webhook", "collection",
                                       "event_id", "form_id", "similar", "catalog"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        /* a search that failed after the delivery was stored is reported
         * in the answer, which is then 200 without its results */
        if (!(i == 6 && json_is_string(json_object_get(got, "similar_error"))) &&
            !(i == 7 && json_is_string(json_object_get(json_object_get(got, "catalog"),
                                                       "error"))) &&
            !json_equal(json_object_get(got, same[i]), json_object_get(want, same[i])) &&
            (json_object_get(got, same[i]) || json_object_get(want, same[i]))) {
            snprintf(why, why_size, "\"%s\" differs from a clean run's answer", same[i]);
            return false;
        }
    if (json_integer_value(json_object_get(got, "document_id")) <= 0) {
        snprintf(why, why_size, "no document_id");
        return false;
    }
    return true;
}

/* The file after a failed run: as before, but for an empty collection
 * the operation may leave behind. */
static bool unchanged(const http_op *op, const char *now)
{
    if (strcmp(now, http_base_snapshot) == 0)
        return true;
    if (!op->may_leave_collection)
        return false;
    /* the base with that collection's line added */
    char *without = strdup(now);
    if (!without)
        return false;
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s | ", op->may_leave_collection);
    char *p = without;
    bool cut = false;
    while (p && *p && strncmp(p, "--", 2) != 0) {
        char *nl = strchr(p, '\n');
        if (strncmp(p, prefix, strlen(prefix)) == 0 && nl) {
            memmove(p, nl + 1, strlen(nl + 1) + 1);
            cut = true;
            break;
        }
        p = nl ? nl + 1 : NULL;
    }
    bool same = cut && strcmp(without, http_base_snapshot) == 0;
    free(without);
    return same;
}

/* The integrity checks of sqlite_clean, on a file that could be read. */
static bool file_clean(const char *path, const char *snap, char *why, size_t why_size)
{
    if (!snap) {
        snprintf(why, why_size, "the file cannot be read");
        return false;
    }
    if (!sqlite_clean(path, false, why, why_size))
        return false;
    why[0] = '\0';
    return true;
}

typedef struct http_tally {
    long runs, injected, errors, closed;
} http_tally;

/* One run of op with fault `kind` at call n (FAULT_NONE: the clean run,
 * which records what the operation does).  Returns whether a fault was
 * met; *bad is set when a check failed. */
static bool http_run(http_op *op, fault_kind kind, long n, http_tally *t, bool *bad)
{
    char tag[96];
    snprintf(tag, sizeof tag, "%s/%s#%ld", op->name, fault_names[kind], n);
    remove_db(run_path);
    if (!copy_file(http_base_path, run_path) || !http_store_open(run_path)) {
        CHECK(false, "%s: copy and open", tag);
        *bad = true;
        return false;
    }
    answer an;
    http_do(op->method, op->url, op->body, kind, n, &an);
    bool hit = kind != FAULT_NONE && fault_hit;
    t->runs++;
    t->injected += hit;
    char why[1024] = "";
    bool ok = true;
    json_t *body = an.body ? json_loads(an.body, 0, NULL) : NULL;
    char *now = snapshot(run_path);
    bool success = an.status >= 200 && an.status < 300;
    if (!an.begun) {
        /* out of memory for the request itself: libmicrohttpd closes the
         * connection, nothing else can happen */
        t->closed++;
        ok = hit && now && strcmp(now, http_base_snapshot) == 0;
        snprintf(why, sizeof why, "not begun");
    } else if (an.timed_out || an.n_answers != 1 || an.violation[0]) {
        ok = false;
        snprintf(why, sizeof why, "%s, %d answers %s", an.timed_out ? "no resume" : "resumed",
                 an.n_answers, an.violation);
    } else if (!body) {
        ok = false;
        snprintf(why, sizeof why, "status %u: the answer is not JSON: %.200s", an.status,
                 an.body ? an.body : "(none)");
    } else if (!file_clean(run_path, now, why, sizeof why)) {
        ok = false;
    } else if (!hit && !success) {
        ok = false;
        snprintf(why, sizeof why, "no fault met, yet %u: %.300s", an.status, an.body);
    } else if (kind == FAULT_NONE) {
        ok = success;
        snprintf(why, sizeof why, "the clean run: %u %.300s", an.status, an.body);
        if (ok) {
            op->after = now;
            op->answer = json_incref(body);
            now = NULL;
        }
    } else if (success) {
        ok = strcmp(now, op->after) == 0 && same_answer(op, body, why, sizeof why);
        if (!why[0])
            snprintf(why, sizeof why, "answered %u, but the file is not as after a clean run",
                     an.status);
    } else {
        t->errors++;
        const char *msg = json_string_value(
            json_object_get(json_object_get(body, "error"), "message"));
        ok = error_shaped(body) && (an.status == 500 || an.status == 503 || an.status == 507);
        if (!ok)
            snprintf(why, sizeof why, "error %u: %.300s", an.status, an.body);
        else if (!unchanged(op, now)) {
            ok = false;
            snprintf(why, sizeof why, "answered %u (%.200s), but the file %s", an.status,
                     msg ? msg : "", strcmp(now, op->after) == 0
                                         ? "holds the operation's effect: failure claimed "
                                           "for what was stored"
                                         : "changed partly");
        }
    }
    if (ok && an.begun && !same_searches(a.store, run_path, why, sizeof why))
        ok = false;
    /* a stored delivery is known again: a redelivery is a duplicate */
    if (ok && op->kind == HTTP_WEBHOOK && success) {
        answer again;
        http_do(op->method, op->url, op->body, FAULT_NONE, 0, &again);
        json_t *b = again.body ? json_loads(again.body, 0, NULL) : NULL;
        char *later = snapshot(run_path);
        ok = again.status == 200 && json_is_true(json_object_get(b, "duplicate")) && later &&
             strcmp(later, now ? now : op->after) == 0;
        if (!ok)
            snprintf(why, sizeof why, "a redelivery: %u %.300s", again.status,
                     again.body ? again.body : "");
        free(later);
        json_decref(b);
        answer_free(&again);
    }
    http_store_close();
    CHECK(ok, "%s (%u%s): %s", tag, an.status, hit ? "" : ", no fault met", why);
    if (!ok && hit && fault_depth)   /* where the fault was: addr2line */
        backtrace_symbols_fd(fault_where, fault_depth, 2);
    *bad = !ok;
    json_decref(body);
    free(now);
    answer_free(&an);
    return hit;
}

static void http_run_all(http_op *op, fault_kind kind, http_tally *t)
{
    for (long n = 1;; n = n < FULL_UP_TO ? n + 1 : n + STRIDE) {
        bool bad = false;
        if (!http_run(op, kind, n, t, &bad) || bad)
            break;
    }
}

int main(void)
{
    faults_install();
    /* files in memory when there is /dev/shm: the runs copy and check a
     * database thousands of times */
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lode-faults-XXXXXX", dir && *dir ? dir : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(base_path, sizeof base_path, "%s/base.db", tmpdir);
    snprintf(run_path, sizeof run_path, "%s/run.db", tmpdir);
    snprintf(ingest_file, sizeof ingest_file, "%s/note.txt", tmpdir);
    snprintf(http_base_path, sizeof http_base_path, "%s/http-base.db", tmpdir);
    snprintf(webhooks_path, sizeof webhooks_path, "%s/webhooks.json", tmpdir);
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
    long grand_total = 0;
    /* LODE_FAULTS_ONLY=NAME runs that operation alone (for debugging) */
    const char *only = getenv("LODE_FAULTS_ONLY");
    for (size_t i = 0; i < N_OPERATIONS; i++) {
        if (only && strcmp(only, operations[i].name) != 0)
            continue;
        tally total = {0};
        printf("%-20s", operations[i].name);
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
        grand_total += total.injected;
        fflush(stdout);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double store_seconds = (double)(t1.tv_sec - t0.tv_sec) +
                           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    /* the HTTP handlers: a clean run of each request first, which says
     * what it does, then the faults */
    long http_total = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (http_setup() && make_http_base()) {
        for (size_t i = 0; i < N_HTTP_OPS; i++) {
            if (only && strcmp(only, http_ops[i].name) != 0)
                continue;
            http_tally t = {0};
            bool bad = false;
            http_run(&http_ops[i], FAULT_NONE, 0, &t, &bad);
            if (bad || !http_ops[i].after)
                continue;
            http_tally total = {0};
            printf("%-20s", http_ops[i].name);
            for (int k = FAULT_SQLITE_MALLOC; k < FAULT_KINDS; k++) {
                http_tally kt = {0};
                http_run_all(&http_ops[i], (fault_kind)k, &kt);
                printf(" %s %ld/%ld", fault_names[k], kt.injected, kt.errors);
                total.injected += kt.injected;
                total.errors += kt.errors;
                total.closed += kt.closed;
            }
            printf("  (faults injected %ld, of which errors %ld, connections closed %ld)\n",
                   total.injected, total.errors, total.closed);
            http_total += total.injected;
            fflush(stdout);
            free(http_ops[i].after);
            json_decref(http_ops[i].answer);
        }
    }
    http_teardown();
    free(http_base_snapshot);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double http_seconds = (double)(t1.tv_sec - t0.tv_sec) +
                          (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("faults injected: store operations %ld (%.1f s), HTTP requests %ld (%.1f s), "
           "total %ld\n", grand_total, store_seconds, http_total, http_seconds,
           grand_total + http_total);

    remove_db(base_path);
    remove_db(run_path);
    remove_db(http_base_path);
    remove(webhooks_path);
    remove(ingest_file);
    rmdir(tmpdir);
    TEST_MAIN_END();
}
