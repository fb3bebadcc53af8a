/* store.c - the SQLite-backed vector store (see store.h).
 *
 * Two copies of every vector: the durable one, a little-endian float32 BLOB
 * in the `vectors` table, and the working one in a vecset (one contiguous
 * array per collection) that search scans.  The arrays are filled at open
 * with one sequential SELECT over `vectors` (which is kept apart from the
 * chunk text so that scan reads vectors only), and every write updates them
 * after its transaction has committed: room in the arrays is reserved
 * before COMMIT, so the update that follows cannot fail, and a transaction
 * that fails leaves them exactly as they were.
 *
 * All SQLite write steps go through step_write()/exec_write(), which is
 * also where tests inject a "disk full" failure at the Nth write.
 *
 * Schema, version 1 (PRAGMA user_version; application_id 'lode'):
 *   collections(id, name UNIQUE, model_id, dimension, distance, created)
 *   documents(id, collection_id -> collections ON DELETE CASCADE, source,
 *             external_id, title, metadata JSON, content_sha256, created,
 *             updated; UNIQUE(collection_id, source),
 *             UNIQUE(collection_id, external_id))
 *   chunks(id, document_id -> documents ON DELETE CASCADE, ordinal,
 *          char_start, char_end, token_count, heading, metadata JSON, text;
 *          UNIQUE(document_id, ordinal)); index chunks_filter covers
 *          (document_id, heading, metadata) so filtering never reads text.
 *   vectors(chunk_id -> chunks ON DELETE CASCADE, collection_id,
 *           document_id, vector BLOB = dimension float32 little-endian);
 *          collection and document ids are copied here so loading needs
 *          no join.
 * Timestamps are unix seconds.  All tables have INTEGER PRIMARY KEYs, so
 * VACUUM keeps chunk ids (which the in-memory arrays refer to) stable.
 * Newer schemas are added as further entries of migrations[]; a file whose
 * user_version is above the last entry is refused.
 *
 * Durability: WAL journal with synchronous=NORMAL - a power cut can lose
 * the last few commits but never leaves a half-written document.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "filter.h"
#include "vecset.h"

#define LODE_APPLICATION_ID 0x6C6F6465 /* "lode" */
#define MAX_DIMENSION 65536

static const char *const migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE collections ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  model_id TEXT NOT NULL,"
    "  dimension INTEGER NOT NULL CHECK (dimension > 0),"
    "  distance TEXT NOT NULL CHECK (distance IN ('cosine', 'dot', 'l2')),"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE documents ("
    "  id INTEGER PRIMARY KEY,"
    "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
    "  source TEXT,"
    "  external_id TEXT,"
    "  title TEXT,"
    "  metadata TEXT,"
    "  content_sha256 TEXT,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (collection_id, source),"
    "  UNIQUE (collection_id, external_id));"
    "CREATE TABLE chunks ("
    "  id INTEGER PRIMARY KEY,"
    "  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  ordinal INTEGER NOT NULL,"
    "  char_start INTEGER NOT NULL,"
    "  char_end INTEGER NOT NULL,"
    "  token_count INTEGER NOT NULL,"
    "  heading TEXT,"
    "  metadata TEXT,"
    "  text TEXT NOT NULL,"
    "  UNIQUE (document_id, ordinal));"
    "CREATE INDEX chunks_filter ON chunks(document_id, heading, metadata);"
    "CREATE TABLE vectors ("
    "  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
    "  collection_id INTEGER NOT NULL,"
    "  document_id INTEGER NOT NULL,"
    "  vector BLOB NOT NULL);"
    "CREATE INDEX vectors_by_collection ON vectors(collection_id);"
    "PRAGMA application_id = 1819239525;", /* LODE_APPLICATION_ID */
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const distance_names[] = {"cosine", "dot", "l2"};

typedef struct coll {
    int64_t id;
    char *name, *model_id;
    int dimension;
    store_distance distance;
    int64_t created;
    int has_chunk_metadata;     /* -1 not yet known, 0, 1 */
    vecset vs;
} coll;

struct store {
    sqlite3 *db;
    char *path;
    bool read_only;
    const char *read_only_reason;
    bool int8_vectors;
    coll **colls;
    size_t n_colls;
    int64_t data_version;       /* PRAGMA data_version when last loaded */
    int fail_countdown;         /* test hook, see store_debug_fail_write */
    bool fault_fired;
};

/* ---- SQLite helpers --------------------------------------------------- */

/* Turn a SQLite failure into a lode error with a sentence for the user. */
static int sql_error(store *s, int rc, const char *doing, lode_error *err)
{
    const char *msg = s->fault_fired ? "simulated disk full" : sqlite3_errmsg(s->db);
    int sys = s->fault_fired ? 0 : sqlite3_system_errno(s->db);
    s->fault_fired = false;
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return lode_error_set(err, LODE_EIO, "%s: %s: the disk is full (%s)",
                              s->path, doing, msg);
    case SQLITE_IOERR:
        return lode_error_set(err, LODE_EIO, "%s: %s: reading or writing the "
                              "file failed (%s%s%s) - is the disk full or a "
                              "file size limit reached?", s->path, doing, msg,
                              sys ? ": " : "", sys ? strerror(sys) : "");
    case SQLITE_READONLY:
        return lode_error_set(err, LODE_EIO, "%s: %s: the database is read-only",
                              s->path, doing);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return lode_error_set(err, LODE_EBUSY, "%s: %s: the database is locked "
                              "by another process", s->path, doing);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return lode_error_set(err, LODE_EFORMAT, "%s: %s: the database file is "
                              "damaged (%s)", s->path, doing, msg);
    case SQLITE_NOMEM:
        return lode_error_set(err, LODE_ENOMEM, "%s: %s: out of memory", s->path, doing);
    case SQLITE_CANTOPEN:
        return lode_error_set(err, LODE_EIO, "%s: %s: cannot open the database "
                              "or its journal (%s)", s->path, doing, msg);
    default:
        return lode_error_set(err, LODE_EIO, "%s: %s: %s", s->path, doing, msg);
    }
}

/* Append a note to a message already set (no-op without room or err). */
static void append_note(lode_error *err, const char *note)
{
    if (!err)
        return;
    size_t len = strlen(err->message), nl = strlen(note);
    if (len + nl < sizeof err->message)
        memcpy(err->message + len, note, nl + 1);
}

static bool fault_due(store *s)
{
    if (s->fail_countdown > 0 && --s->fail_countdown == 0) {
        s->fault_fired = true;
        return true;
    }
    return false;
}

/* Every statement that changes the file goes through one of these two. */
static int step_write(store *s, sqlite3_stmt *st)
{
    if (fault_due(s))
        return SQLITE_FULL;
    return sqlite3_step(st);
}

static int exec_write(store *s, const char *sql)
{
    if (fault_due(s))
        return SQLITE_FULL;
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

static void rollback(store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int prepare(store *s, const char *sql, sqlite3_stmt **st, lode_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return sql_error(s, rc, "preparing a query", err);
    }
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Copy a text column; NULL stays NULL.  LODE_ENOMEM on failure. */
static int col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (!t)
        return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? LODE_ENOMEM : 0;
    *out = strdup((const char *)t);
    return *out ? 0 : LODE_ENOMEM;
}

static int64_t query_int(store *s, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st;
    int64_t v = fallback;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fallback;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Floats <-> little-endian bytes.  On little-endian hosts a plain copy. */
static void floats_to_le(const float *v, int n, unsigned char *out)
{
    if (host_is_little_endian()) {
        memcpy(out, v, (size_t)n * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
}

static void floats_from_le(const unsigned char *in, int n, float *v)
{
    if (host_is_little_endian()) {
        memcpy(v, in, (size_t)n * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8 |
                     (uint32_t)in[4 * i + 2] << 16 | (uint32_t)in[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
}

/* ---- collections in memory ------------------------------------------- */

static void coll_free(coll *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->model_id);
    vecset_free(&c->vs);
    free(c);
}

static void colls_clear(store *s)
{
    for (size_t i = 0; i < s->n_colls; i++)
        coll_free(s->colls[i]);
    free(s->colls);
    s->colls = NULL;
    s->n_colls = 0;
}

static coll *find_coll(store *s, const char *name)
{
    for (size_t i = 0; i < s->n_colls; i++)
        if (strcmp(s->colls[i]->name, name) == 0)
            return s->colls[i];
    return NULL;
}

static vecset_metric metric_of(store_distance d)
{
    return d == STORE_DOT ? VECSET_DOT : d == STORE_L2 ? VECSET_L2 : VECSET_COSINE;
}

static coll *coll_new(store *s, int64_t id, const char *name, const char *model,
                      int dim, store_distance dist, int64_t created)
{
    coll *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = id;
    c->name = strdup(name);
    c->model_id = strdup(model);
    c->dimension = dim;
    c->distance = dist;
    c->created = created;
    c->has_chunk_metadata = -1;
    vecset_init(&c->vs, dim, s->int8_vectors ? VECSET_I8 : VECSET_F32, metric_of(dist));
    if (!c->name || !c->model_id) {
        coll_free(c);
        return NULL;
    }
    return c;
}

/* Read every collection and all vectors: one pass over `vectors`. */
static int load_all(store *s, lode_error *err)
{
    colls_clear(s);
    s->data_version = query_int(s, "PRAGMA data_version", 0);
    if (query_int(s, "SELECT count(*) FROM sqlite_schema WHERE name = 'collections'", 0) == 0)
        return 0;       /* read-only view of a database without a schema */

    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT id, name, model_id, dimension, distance, created "
                        "FROM collections ORDER BY id", &st, err);
    if (rc)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *dist = (const char *)sqlite3_column_text(st, 4);
        store_distance d = STORE_COSINE;
        for (int i = 0; i < 3; i++)
            if (dist && strcmp(dist, distance_names[i]) == 0)
                d = (store_distance)i;
        int dim = sqlite3_column_int(st, 3);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *model = (const char *)sqlite3_column_text(st, 2);
        if (!name || !model || dim <= 0 || dim > MAX_DIMENSION) {
            sqlite3_finalize(st);
            return lode_error_set(err, LODE_EFORMAT, "%s: a collection record is "
                                  "damaged (dimension %d)", s->path, dim);
        }
        coll **grown = realloc(s->colls, (s->n_colls + 1) * sizeof *grown);
        coll *c = grown ? coll_new(s, sqlite3_column_int64(st, 0), name, model, dim, d,
                                   sqlite3_column_int64(st, 5)) : NULL;
        if (grown)
            s->colls = grown;
        if (!c) {
            sqlite3_finalize(st);
            return lode_error_set(err, LODE_ENOMEM, "out of memory loading collections");
        }
        s->colls[s->n_colls++] = c;
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return sql_error(s, src, "reading the collections", err);

    /* Size each array exactly, then fill them all in one scan. */
    rc = prepare(s, "SELECT collection_id, count(*) FROM vectors GROUP BY collection_id",
                 &st, err);
    if (rc)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < s->n_colls; i++)
            if (s->colls[i]->id == cid &&
                (rc = vecset_reserve(&s->colls[i]->vs, (size_t)sqlite3_column_int64(st, 1), err))) {
                sqlite3_finalize(st);
                return rc;
            }
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return sql_error(s, src, "counting the vectors", err);

    rc = prepare(s, "SELECT collection_id, chunk_id, document_id, vector FROM vectors",
                 &st, err);
    if (rc)
        return rc;
    float *buf = NULL;
    int buf_dim = 0;
    coll *c = NULL;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(st, 0);
        if (!c || c->id != cid) {
            c = NULL;
            for (size_t i = 0; i < s->n_colls && !c; i++)
                if (s->colls[i]->id == cid)
                    c = s->colls[i];
            if (!c)
                continue;       /* orphan row; nothing refers to it */
        }
        const void *blob = sqlite3_column_blob(st, 3);
        int bytes = sqlite3_column_bytes(st, 3);
        if (bytes != c->dimension * 4 || !blob) {
            rc = lode_error_set(err, LODE_EFORMAT, "%s: the vector of chunk %lld "
                                "has %d bytes; collection \"%s\" needs %d",
                                s->path, (long long)sqlite3_column_int64(st, 1),
                                bytes, c->name, c->dimension * 4);
            break;
        }
        if (buf_dim < c->dimension) {
            float *nb = realloc(buf, (size_t)c->dimension * sizeof *nb);
            if (!nb) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory loading vectors");
                break;
            }
            buf = nb;
            buf_dim = c->dimension;
        }
        floats_from_le(blob, c->dimension, buf);
        rc = vecset_append(&c->vs, sqlite3_column_int64(st, 1),
                           sqlite3_column_int64(st, 2), buf, err);
        if (rc)
            break;
    }
    free(buf);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (src != SQLITE_DONE)
        return sql_error(s, src, "loading the vectors", err);
    return 0;
}

/* Reload when another connection has committed since we last loaded. */
static int refresh(store *s, lode_error *err)
{
    int64_t v = query_int(s, "PRAGMA data_version", s->data_version);
    if (v == s->data_version)
        return 0;
    return load_all(s, err);
}

static int need_coll(store *s, const char *name, coll **out, lode_error *err)
{
    int rc = refresh(s, err);
    if (rc)
        return rc;
    *out = name ? find_coll(s, name) : NULL;
    if (!*out)
        return lode_error_set(err, LODE_ENOTFOUND, "there is no collection named "
                              "\"%s\"", name ? name : "(null)");
    return 0;
}

static int need_writable(store *s, const char *doing, lode_error *err)
{
    if (!s->read_only)
        return 0;
    return lode_error_set(err, LODE_EIO, "%s: cannot %s: the store is open "
                          "read-only (%s)", s->path, doing, s->read_only_reason);
}

/* A collection accepts only vectors of its own model and dimension. */
static int check_model(const coll *c, const char *model_id, int dimension,
                       const char *doing, lode_error *err)
{
    if (!model_id || strcmp(model_id, c->model_id) != 0 || dimension != c->dimension)
        return lode_error_set(err, LODE_EINVAL, "cannot %s collection \"%s\" with "
                              "model \"%s\" (%d dimensions): the collection was "
                              "embedded with model \"%s\" (%d dimensions); "
                              "re-index it or use the same model", doing, c->name,
                              model_id ? model_id : "(none)", dimension,
                              c->model_id, c->dimension);
    return 0;
}

/* ---- opening ---------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Refuse files that are not SQLite, or shorter than their header says,
 * before SQLite sees them.  *exists tells whether there is a file. */
static int check_file(const char *path, bool *exists, lode_error *err)
{
    *exists = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return lode_error_set(err, LODE_EIO, "cannot open the store %s: %s",
                              path, strerror(errno));
    }
    *exists = true;
    unsigned char hdr[100];
    struct stat st;
    ssize_t got = fstat(fd, &st) == 0 ? read(fd, hdr, sizeof hdr) : -1;
    close(fd);
    if (got < 0)
        return lode_error_set(err, LODE_EIO, "cannot read the store %s: %s",
                              path, strerror(errno));
    if (got == 0)
        return 0;       /* an empty file becomes a new store */
    if (got < 16 || memcmp(hdr, "SQLite format 3", 16) != 0)
        return lode_error_set(err, LODE_EFORMAT, "%s is not a lode store: it is "
                              "not an SQLite database", path);
    if (got < 100)
        return lode_error_set(err, LODE_EFORMAT, "%s is truncated: only %zd "
                              "bytes, less than an SQLite header", path, got);
    uint32_t page_size = (uint32_t)hdr[16] << 8 | hdr[17];
    if (page_size == 1)
        page_size = 65536;
    if (page_size < 512 || (page_size & (page_size - 1)))
        return lode_error_set(err, LODE_EFORMAT, "%s is damaged: invalid page "
                              "size %u in its header", path, page_size);
    /* The header's page count is trusted only when its "version valid for"
     * matches the change counter (SQLite file format, section 1.3.7). */
    uint32_t pages = be32(hdr + 28);
    bool count_valid = pages > 0 && be32(hdr + 24) == be32(hdr + 92);
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    bool wal_has_frames = file_size(wal) > 32;
    if (!wal_has_frames && count_valid && (uint64_t)st.st_size < (uint64_t)pages * page_size)
        return lode_error_set(err, LODE_EFORMAT, "%s is truncated: its header "
                              "says %llu bytes but the file has %lld", path,
                              (unsigned long long)pages * page_size,
                              (long long)st.st_size);
    if (!wal_has_frames && st.st_size % page_size != 0)
        return lode_error_set(err, LODE_EFORMAT, "%s is truncated: %lld bytes "
                              "is not a whole number of %u-byte pages", path,
                              (long long)st.st_size, page_size);
    return 0;
}

/* "file:" URI for path, percent-encoding anything unusual. */
static char *file_uri(const char *path, const char *query)
{
    size_t n = strlen(path);
    char *uri = malloc(3 * n + strlen(query) + 8);
    if (!uri)
        return NULL;
    char *p = uri;
    p += sprintf(p, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
            (*c >= '0' && *c <= '9') || strchr("/-_.~", *c))
            *p++ = (char)*c;
        else
            p += sprintf(p, "%%%02X", *c);
    }
    sprintf(p, "?%s", query);
    return uri;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int migrate(store *s, lode_error *err)
{
    for (;;) {
        int rc = exec_write(s, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
            return sql_error(s, rc, "starting the schema upgrade", err);
        /* Re-read inside the write lock: another process may have done it. */
        int version = (int)query_int(s, "PRAGMA user_version", -1);
        if (version >= SCHEMA_VERSION) {
            rollback(s);
            return 0;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if ((rc = exec_write(s, migrations[version])) != SQLITE_OK ||
            (rc = exec_write(s, sql)) != SQLITE_OK ||
            (rc = exec_write(s, "COMMIT")) != SQLITE_OK) {
            sql_error(s, rc, "upgrading the schema", err);
            rollback(s);
            return err ? err->code : LODE_EIO;
        }
    }
}

/* Is this an SQLite file we may use, and at which schema version? */
static int check_schema(store *s, lode_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    int tables = -1;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            tables = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (tables < 0) {
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
            return lode_error_set(err, LODE_EFORMAT, "%s is not a lode store: %s",
                                  s->path, sqlite3_errmsg(s->db));
        return sql_error(s, rc, "reading the schema", err);
    }
    int64_t app = query_int(s, "PRAGMA application_id", 0);
    int64_t version = query_int(s, "PRAGMA user_version", 0);
    if (app != 0 && app != LODE_APPLICATION_ID)
        return lode_error_set(err, LODE_EFORMAT, "%s is an SQLite database of "
                              "another program (application id 0x%llx), not a "
                              "lode store", s->path, (long long)app);
    if (version > SCHEMA_VERSION)
        return lode_error_set(err, LODE_EFORMAT, "%s was written by a newer "
                              "version of lode (schema version %lld; this build "
                              "reads up to %d) - upgrade lode to open it",
                              s->path, (long long)version, SCHEMA_VERSION);
    if (version == 0 && tables > 0)
        return lode_error_set(err, LODE_EFORMAT, "%s is an SQLite database but "
                              "not a lode store (it has tables of its own)", s->path);
    if (version < SCHEMA_VERSION && s->read_only && version > 0)
        return lode_error_set(err, LODE_EIO, "%s uses schema version %lld and "
                              "must be upgraded to %d, but it is read-only",
                              s->path, (long long)version, SCHEMA_VERSION);
    return 0;
}

int store_open(const char *path, const store_options *opts, store **out,
               lode_error *err)
{
    *out = NULL;
    store_options none = {0};
    if (!opts)
        opts = &none;
    if (!path || !*path)
        return lode_error_set(err, LODE_EINVAL, "no store path given");
    bool exists;
    int rc = check_file(path, &exists, err);
    if (rc)
        return rc;

    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return lode_error_set(err, LODE_ENOMEM, "out of memory opening %s", path);
    }
    s->int8_vectors = opts->int8_vectors;
    char *dir = dir_of(path);
    bool dir_writable = dir && access(dir, W_OK) == 0;
    free(dir);
    if (opts->read_only) {
        s->read_only = true;
        s->read_only_reason = "opened with the read-only option";
    } else if (exists && access(path, W_OK) != 0) {
        s->read_only = true;
        s->read_only_reason = "no write permission on the file";
    } else if (!dir_writable) {
        if (!exists) {
            rc = lode_error_set(err, LODE_EIO, "cannot create the store %s: no "
                                "write permission on its directory", path);
            goto fail;
        }
        s->read_only = true;
        s->read_only_reason = "no write permission on its directory";
    }
    if (s->read_only && !exists) {
        rc = lode_error_set(err, LODE_ENOTFOUND, "the store %s does not exist", path);
        goto fail;
    }

    /* A WAL database needs its -shm file; where it cannot be created (a
     * read-only directory) read the file as immutable instead. */
    char shm[4096];
    snprintf(shm, sizeof shm, "%s-shm", path);
    bool immutable = s->read_only && !dir_writable && file_size(shm) < 0;
    char *uri = file_uri(path, s->read_only ? (immutable ? "immutable=1" : "mode=ro") : "mode=rwc");
    if (!uri) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    int flags = SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
                (s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int src = sqlite3_open_v2(uri, &s->db, flags, NULL);
    free(uri);
    if (src != SQLITE_OK) {
        rc = s->db ? sql_error(s, src, "opening", err)
                   : lode_error_set(err, LODE_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);

    if ((rc = check_schema(s, err)))
        goto fail;
    if (!s->read_only) {
        /* journal_mode returns the resulting mode as a row. */
        sqlite3_stmt *st;
        if ((rc = prepare(s, "PRAGMA journal_mode = WAL", &st, err)))
            goto fail;
        src = sqlite3_step(st);
        const char *mode = src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        bool wal = mode && strcmp(mode, "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            rc = src == SQLITE_ROW ? lode_error_set(err, LODE_EIO, "%s: cannot switch "
                                                    "the database to WAL mode", path)
                                   : sql_error(s, src, "switching to WAL mode", err);
            goto fail;
        }
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        /* Take the write lock only when there is something to upgrade, so
         * opening never waits for another process's ingestion. */
        if (query_int(s, "PRAGMA user_version", 0) < SCHEMA_VERSION &&
            (rc = migrate(s, err)))
            goto fail;
    }
    if ((rc = load_all(s, err)))
        goto fail;
    *out = s;
    return 0;

fail:
    store_close(s);
    return rc;
}

void store_close(store *s)
{
    if (!s)
        return;
    colls_clear(s);
    if (s->db)
        sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

bool store_is_read_only(const store *s)
{
    return s->read_only;
}

void store_debug_fail_write(store *s, int nth)
{
    s->fail_countdown = nth;
    s->fault_fired = false;
}

/* ---- collections ------------------------------------------------------ */

int store_create_collection(store *s, const char *name, const char *model_id,
                            int dimension, store_distance distance,
                            lode_error *err)
{
    if (!name || !*name || !model_id || !*model_id)
        return lode_error_set(err, LODE_EINVAL, "a collection needs a name and a model id");
    if (dimension <= 0 || dimension > MAX_DIMENSION)
        return lode_error_set(err, LODE_EINVAL, "collection \"%s\": dimension %d "
                              "is out of range (1..%d)", name, dimension, MAX_DIMENSION);
    if ((unsigned)distance > STORE_L2)
        return lode_error_set(err, LODE_EINVAL, "collection \"%s\": unknown distance", name);
    int rc = refresh(s, err);
    if (rc)
        return rc;
    coll *c = find_coll(s, name);
    if (c) {
        if ((rc = check_model(c, model_id, dimension, "use", err)))
            return rc;
        if (c->distance != distance)
            return lode_error_set(err, LODE_EINVAL, "collection \"%s\" already "
                                  "exists with distance %s, not %s", name,
                                  distance_names[c->distance], distance_names[distance]);
        return 0;
    }
    if ((rc = need_writable(s, "create a collection", err)))
        return rc;

    coll **grown = realloc(s->colls, (s->n_colls + 1) * sizeof *grown);
    if (!grown)
        return lode_error_set(err, LODE_ENOMEM, "out of memory creating a collection");
    s->colls = grown;
    int64_t now = (int64_t)time(NULL);
    c = coll_new(s, 0, name, model_id, dimension, distance, now);
    if (!c)
        return lode_error_set(err, LODE_ENOMEM, "out of memory creating a collection");
    c->has_chunk_metadata = 0;

    sqlite3_stmt *st = NULL;
    int src = exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    if ((rc = prepare(s, "INSERT INTO collections (name, model_id, dimension, "
                         "distance, created) VALUES (?, ?, ?, ?, ?)", &st, err)))
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, model_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, dimension);
    sqlite3_bind_text(st, 4, distance_names[distance], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if ((src = step_write(s, st)) != SQLITE_DONE)
        goto sql_fail;
    c->id = sqlite3_last_insert_rowid(s->db);
    if ((src = exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;
    sqlite3_finalize(st);
    s->colls[s->n_colls++] = c;
    return 0;

sql_fail:
    rc = sql_error(s, src, "creating a collection", err);
fail:
    sqlite3_finalize(st);
    rollback(s);
    coll_free(c);
    return rc;
}

int store_delete_collection(store *s, const char *name, lode_error *err)
{
    coll *c;
    int rc = need_coll(s, name, &c, err);
    if (rc || (rc = need_writable(s, "delete a collection", err)))
        return rc;
    sqlite3_stmt *st = NULL;
    int src = exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    /* Cascades to documents, chunks and vectors. */
    if ((rc = prepare(s, "DELETE FROM collections WHERE id = ?", &st, err)))
        goto fail;
    sqlite3_bind_int64(st, 1, c->id);
    if ((src = step_write(s, st)) != SQLITE_DONE || (src = exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;
    sqlite3_finalize(st);
    for (size_t i = 0; i < s->n_colls; i++)
        if (s->colls[i] == c) {
            s->colls[i] = s->colls[--s->n_colls];
            break;
        }
    coll_free(c);
    return 0;

sql_fail:
    rc = sql_error(s, src, "deleting a collection", err);
fail:
    sqlite3_finalize(st);
    rollback(s);
    return rc;
}

void store_collections_free(store_collection_info *infos, size_t n)
{
    if (!infos)
        return;
    for (size_t i = 0; i < n; i++) {
        free(infos[i].name);
        free(infos[i].model_id);
    }
    free(infos);
}

int store_list_collections(store *s, store_collection_info **out, size_t *n,
                           lode_error *err)
{
    *out = NULL;
    *n = 0;
    int rc = refresh(s, err);
    if (rc)
        return rc;
    store_collection_info *infos = calloc(s->n_colls + 1, sizeof *infos);
    if (!infos)
        return lode_error_set(err, LODE_ENOMEM, "out of memory listing collections");
    sqlite3_stmt *st;
    if ((rc = prepare(s, "SELECT count(*) FROM documents WHERE collection_id = ?", &st, err))) {
        free(infos);
        return rc;
    }
    size_t count = 0;
    for (size_t i = 0; i < s->n_colls; i++) {
        const coll *c = s->colls[i];
        store_collection_info *info = &infos[count++];
        info->name = strdup(c->name);
        info->model_id = strdup(c->model_id);
        info->dimension = c->dimension;
        info->distance = c->distance;
        info->created = c->created;
        info->chunks = (int64_t)c->vs.count;
        sqlite3_bind_int64(st, 1, c->id);
        int src = sqlite3_step(st);
        info->documents = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (src != SQLITE_ROW) {
            rc = sql_error(s, src, "counting documents", err);
            break;
        }
        if (!info->name || !info->model_id) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing collections");
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc) {
        store_collections_free(infos, count);
        return rc;
    }
    /* By name, for stable output. */
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && strcmp(infos[j - 1].name, infos[j].name) > 0; j--) {
            store_collection_info t = infos[j];
            infos[j] = infos[j - 1];
            infos[j - 1] = t;
        }
    *out = infos;
    *n = count;
    return 0;
}

/* ---- documents: validation ------------------------------------------- */

/* NULL or a JSON object; anything else is refused. */
static int check_json_object(const char *json, const char *what, lode_error *err)
{
    if (!json)
        return 0;
    json_error_t jerr;
    json_t *v = json_loads(json, 0, &jerr);
    if (!v)
        return lode_error_set(err, LODE_EINVAL, "%s is not valid JSON: %s "
                              "(line %d, column %d)", what, jerr.text, jerr.line,
                              jerr.column);
    bool ok = json_is_object(v);
    json_decref(v);
    if (!ok)
        return lode_error_set(err, LODE_EINVAL, "%s must be a JSON object", what);
    return 0;
}

static int check_sha256(const char *sha, lode_error *err)
{
    if (!sha)
        return 0;
    size_t n = strlen(sha);
    for (size_t i = 0; i < n; i++)
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f')))
            n = 0;
    if (n != 64)
        return lode_error_set(err, LODE_EINVAL, "content SHA-256 \"%.80s\" is not "
                              "64 lowercase hex digits", sha);
    return 0;
}

static const char *doc_name(const store_document_in *doc)
{
    return doc->source ? doc->source : doc->external_id ? doc->external_id : "(unnamed)";
}

/* Find a document of the collection by external id, else by source. */
static int find_doc_id(store *s, int64_t coll_id, const char *source,
                       const char *external_id, int64_t *id, char **sha,
                       lode_error *err)
{
    *id = 0;
    if (sha)
        *sha = NULL;
    if (!source && !external_id)
        return 0;
    sqlite3_stmt *st;
    int rc = prepare(s, external_id
                            ? "SELECT id, content_sha256 FROM documents WHERE collection_id = ? AND external_id = ?"
                            : "SELECT id, content_sha256 FROM documents WHERE collection_id = ? AND source = ?",
                     &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, coll_id);
    sqlite3_bind_text(st, 2, external_id ? external_id : source, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (sha && col_dup(st, 1, sha))
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    } else if (src != SQLITE_DONE) {
        rc = sql_error(s, src, "looking up a document", err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- documents: writing ---------------------------------------------- */

static int write_document(store *s, const char *collection,
                          const store_document_in *doc, bool upsert,
                          int64_t *doc_id_out, lode_error *err)
{
    const char *doing = upsert ? "upsert a document" : "add a document";
    coll *c;
    int rc = need_coll(s, collection, &c, err);
    if (rc || (rc = need_writable(s, doing, err)))
        return rc;
    if ((rc = check_model(c, doc->model_id, c->dimension, upsert ? "upsert into" : "add to", err)))
        return rc;
    if (doc->n_chunks && !doc->chunks)
        return lode_error_set(err, LODE_EINVAL, "document \"%s\": no chunk array", doc_name(doc));
    if (upsert && !doc->source && !doc->external_id)
        return lode_error_set(err, LODE_EINVAL, "upsert needs a source path or an "
                              "external id to find the document to replace");
    if ((rc = check_json_object(doc->metadata_json, "document metadata", err)) ||
        (rc = check_sha256(doc->content_sha256, err))) {
        lode_error_prefix(err, "document \"%s\"", doc_name(doc));
        return rc;
    }

    size_t dim = (size_t)c->dimension, n = doc->n_chunks;
    float *vectors = malloc((n ? n : 1) * dim * sizeof(float));
    int64_t *chunk_ids = malloc((n ? n : 1) * sizeof(int64_t));
    unsigned char *blob = malloc(dim * sizeof(float));
    sqlite3_stmt *st_doc = NULL, *st_chunk = NULL, *st_vec = NULL;
    int src = SQLITE_OK;
    int64_t doc_id = 0;
    bool any_chunk_metadata = false;
    if (!vectors || !chunk_ids || !blob) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory adding a document");
        goto out;
    }

    if ((src = exec_write(s, "BEGIN IMMEDIATE")) != SQLITE_OK)
        goto sql_fail;
    int64_t by_ext = 0, by_source = 0;
    if ((rc = find_doc_id(s, c->id, NULL, doc->external_id, &by_ext, NULL, err)) ||
        (rc = find_doc_id(s, c->id, doc->source, NULL, &by_source, NULL, err)))
        goto fail;
    int64_t existing = doc->external_id ? by_ext : by_source;
    if (!upsert && (by_ext || by_source)) {
        rc = lode_error_set(err, LODE_EINVAL, "collection \"%s\" already has a "
                            "document with %s \"%s\"; use upsert to replace it",
                            c->name, by_ext ? "external id" : "source",
                            by_ext ? doc->external_id : doc->source);
        goto fail;
    }
    if (upsert && by_source && by_source != existing) {
        rc = lode_error_set(err, LODE_EINVAL, "collection \"%s\": source \"%s\" "
                            "already belongs to another document (id %lld)",
                            c->name, doc->source, (long long)by_source);
        goto fail;
    }

    int64_t now = (int64_t)time(NULL);
    if (existing) {
        rc = prepare(s, "UPDATE documents SET source = ?1, external_id = ?2, "
                        "title = ?3, metadata = ?4, content_sha256 = ?5, "
                        "updated = ?6 WHERE id = ?7", &st_doc, err);
    } else {
        rc = prepare(s, "INSERT INTO documents (source, external_id, title, "
                        "metadata, content_sha256, created, updated, "
                        "collection_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                     &st_doc, err);
    }
    if (rc)
        goto fail;
    bind_text_or_null(st_doc, 1, doc->source);
    bind_text_or_null(st_doc, 2, doc->external_id);
    bind_text_or_null(st_doc, 3, doc->title);
    bind_text_or_null(st_doc, 4, doc->metadata_json);
    bind_text_or_null(st_doc, 5, doc->content_sha256);
    sqlite3_bind_int64(st_doc, 6, now);
    sqlite3_bind_int64(st_doc, 7, existing ? existing : c->id);
    if ((src = step_write(s, st_doc)) != SQLITE_DONE)
        goto sql_fail;
    doc_id = existing ? existing : sqlite3_last_insert_rowid(s->db);
    if (existing) {
        sqlite3_finalize(st_doc);
        /* Cascades to the old vectors. */
        if ((rc = prepare(s, "DELETE FROM chunks WHERE document_id = ?", &st_doc, err)))
            goto fail;
        sqlite3_bind_int64(st_doc, 1, doc_id);
        if ((src = step_write(s, st_doc)) != SQLITE_DONE)
            goto sql_fail;
    }

    if ((rc = prepare(s, "INSERT INTO chunks (document_id, ordinal, char_start, "
                         "char_end, token_count, heading, metadata, text) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st_chunk, err)) ||
        (rc = prepare(s, "INSERT INTO vectors (chunk_id, collection_id, "
                         "document_id, vector) VALUES (?, ?, ?, ?)", &st_vec, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const store_chunk_in *ch = &doc->chunks[i];
        /* Checked here, inside the transaction, so that a bad chunk in the
         * middle of a document exercises the same rollback as a failed
         * write. */
        if (ch->dimension != c->dimension || !ch->vector) {
            rc = lode_error_set(err, LODE_EINVAL, "document \"%s\", chunk %zu: the "
                                "vector has %d dimensions but collection \"%s\" "
                                "(model \"%s\") needs %d", doc_name(doc), i,
                                ch->vector ? ch->dimension : 0, c->name,
                                c->model_id, c->dimension);
            goto fail;
        }
        float *v = vectors + i * dim;
        for (size_t j = 0; j < dim; j++) {
            if (!isfinite(ch->vector[j])) {
                rc = lode_error_set(err, LODE_EINVAL, "document \"%s\", chunk %zu: "
                                    "the vector holds a NaN or infinity at %zu",
                                    doc_name(doc), i, j);
                goto fail;
            }
            v[j] = ch->vector[j];
        }
        if (c->distance == STORE_COSINE)
            vecset_normalize(v, c->dimension);
        if (ch->char_start < 0 || ch->char_end < ch->char_start || ch->token_count < 0) {
            rc = lode_error_set(err, LODE_EINVAL, "document \"%s\", chunk %zu: bad "
                                "offsets %lld..%lld or token count %d", doc_name(doc),
                                i, (long long)ch->char_start, (long long)ch->char_end,
                                ch->token_count);
            goto fail;
        }
        if ((rc = check_json_object(ch->metadata_json, "chunk metadata", err))) {
            lode_error_prefix(err, "document \"%s\", chunk %zu", doc_name(doc), i);
            goto fail;
        }
        any_chunk_metadata |= ch->metadata_json != NULL;

        sqlite3_reset(st_chunk);
        sqlite3_bind_int64(st_chunk, 1, doc_id);
        sqlite3_bind_int64(st_chunk, 2, (int64_t)i);
        sqlite3_bind_int64(st_chunk, 3, ch->char_start);
        sqlite3_bind_int64(st_chunk, 4, ch->char_end);
        sqlite3_bind_int(st_chunk, 5, ch->token_count);
        bind_text_or_null(st_chunk, 6, ch->heading);
        bind_text_or_null(st_chunk, 7, ch->metadata_json);
        sqlite3_bind_text(st_chunk, 8, ch->text ? ch->text : "", -1, SQLITE_STATIC);
        if ((src = step_write(s, st_chunk)) != SQLITE_DONE)
            goto sql_fail;
        chunk_ids[i] = sqlite3_last_insert_rowid(s->db);

        floats_to_le(v, c->dimension, blob);
        sqlite3_reset(st_vec);
        sqlite3_bind_int64(st_vec, 1, chunk_ids[i]);
        sqlite3_bind_int64(st_vec, 2, c->id);
        sqlite3_bind_int64(st_vec, 3, doc_id);
        sqlite3_bind_blob(st_vec, 4, blob, (int)(dim * sizeof(float)), SQLITE_STATIC);
        if ((src = step_write(s, st_vec)) != SQLITE_DONE)
            goto sql_fail;
    }

    /* Make room first: after COMMIT the array update must not fail. */
    if ((rc = vecset_reserve(&c->vs, c->vs.count + n, err)))
        goto fail;
    if ((src = exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;

    if (existing)
        vecset_remove_groups(&c->vs, &doc_id, 1);
    for (size_t i = 0; i < n; i++)
        vecset_append(&c->vs, chunk_ids[i], doc_id, vectors + i * dim, NULL);
    if (any_chunk_metadata)
        c->has_chunk_metadata = 1;
    if (doc_id_out)
        *doc_id_out = doc_id;
    rc = 0;
    goto out;

sql_fail:
    if ((src & 0xff) == SQLITE_CONSTRAINT)
        rc = lode_error_set(err, LODE_EINVAL, "document \"%s\" conflicts with a "
                            "stored one: %s", doc_name(doc), sqlite3_errmsg(s->db));
    else
        rc = sql_error(s, src, upsert ? "upserting a document" : "adding a document", err);
fail:
    sqlite3_finalize(st_doc);
    sqlite3_finalize(st_chunk);
    sqlite3_finalize(st_vec);
    st_doc = st_chunk = st_vec = NULL;
    rollback(s);
    append_note(err, "; nothing of this document was stored");
out:
    sqlite3_finalize(st_doc);
    sqlite3_finalize(st_chunk);
    sqlite3_finalize(st_vec);
    free(vectors);
    free(chunk_ids);
    free(blob);
    return rc;
}

int store_add_document(store *s, const char *collection,
                       const store_document_in *doc, int64_t *doc_id,
                       lode_error *err)
{
    return write_document(s, collection, doc, false, doc_id, err);
}

int store_upsert_document(store *s, const char *collection,
                          const store_document_in *doc, int64_t *doc_id,
                          lode_error *err)
{
    return write_document(s, collection, doc, true, doc_id, err);
}

/* Delete documents (ids sorted ascending) in one transaction, then drop
 * their rows from the collection's array. */
static int delete_documents(store *s, coll *c, const int64_t *ids, size_t n,
                            lode_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    int src = exec_write(s, "BEGIN IMMEDIATE");
    if (src != SQLITE_OK)
        goto sql_fail;
    if ((rc = prepare(s, "DELETE FROM documents WHERE id = ?", &st, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        if ((src = step_write(s, st)) != SQLITE_DONE)
            goto sql_fail;
    }
    if ((src = exec_write(s, "COMMIT")) != SQLITE_OK)
        goto sql_fail;
    sqlite3_finalize(st);
    vecset_remove_groups(&c->vs, ids, n);
    return 0;

sql_fail:
    rc = sql_error(s, src, "deleting documents", err);
fail:
    sqlite3_finalize(st);
    rollback(s);
    append_note(err, "; nothing was deleted");
    return rc;
}

int store_delete_document(store *s, int64_t doc_id, lode_error *err)
{
    int rc = refresh(s, err);
    if (rc || (rc = need_writable(s, "delete a document", err)))
        return rc;
    sqlite3_stmt *st;
    if ((rc = prepare(s, "SELECT collection_id FROM documents WHERE id = ?", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, doc_id);
    int src = sqlite3_step(st);
    int64_t cid = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sql_error(s, src, "looking up a document", err);
    coll *c = NULL;
    for (size_t i = 0; i < s->n_colls && !c; i++)
        if (s->colls[i]->id == cid)
            c = s->colls[i];
    if (!c)
        return lode_error_set(err, LODE_ENOTFOUND, "there is no document with id %lld",
                              (long long)doc_id);
    return delete_documents(s, c, &doc_id, 1, err);
}

/* ---- filtering -------------------------------------------------------- */

/* One document as a filter sees it: its metadata object with the reserved
 * fields (source, title, external_id) set from its columns. */
typedef struct doc_rec {
    int64_t id;
    json_t *rec;
    bool match;
} doc_rec;

static void doc_recs_free(doc_rec *docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(docs[i].rec);
    free(docs);
}

static const char *const reserved_doc_fields[] = {"source", "title", "external_id"};

static int load_doc_recs(store *s, const coll *c, const filter *f, doc_rec **out,
                         size_t *n_out, lode_error *err)
{
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT id, source, title, external_id, metadata FROM "
                        "documents WHERE collection_id = ? ORDER BY id", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    doc_rec *docs = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            doc_rec *grown = realloc(docs, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            docs = grown;
        }
        const char *meta = (const char *)sqlite3_column_text(st, 4);
        json_t *rec = meta ? json_loads(meta, 0, NULL) : NULL;
        if (!json_is_object(rec)) {
            json_decref(rec);
            rec = json_object();
        }
        if (!rec) {
            rc = LODE_ENOMEM;
            break;
        }
        for (int i = 0; i < 3; i++) {
            const char *v = (const char *)sqlite3_column_text(st, 1 + i);
            if (v)
                json_object_set_new(rec, reserved_doc_fields[i], json_string(v));
            else
                json_object_del(rec, reserved_doc_fields[i]);
        }
        docs[n].id = sqlite3_column_int64(st, 0);
        docs[n].rec = rec;
        docs[n].match = filter_match_object(f, rec);
        n++;
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering documents");
    else if (src != SQLITE_DONE)
        rc = sql_error(s, src, "reading document metadata", err);
    if (rc) {
        doc_recs_free(docs, n);
        return rc;
    }
    *out = docs;
    *n_out = n;
    return 0;
}

typedef struct chunk_view {
    const json_t *doc;          /* doc_rec.rec */
    json_t *metadata;           /* the chunk's own object, or NULL */
    json_t *heading;            /* JSON string, or NULL */
} chunk_view;

static const json_t *chunk_lookup(void *ctx, const char *field)
{
    const chunk_view *v = ctx;
    if (strcmp(field, "heading") == 0)
        return v->heading;
    for (int i = 0; i < 3; i++)
        if (strcmp(field, reserved_doc_fields[i]) == 0)
            return json_object_get(v->doc, field);
    const json_t *own = v->metadata ? json_object_get(v->metadata, field) : NULL;
    return own ? own : json_object_get(v->doc, field);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

static const doc_rec *find_doc_rec(const doc_rec *docs, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (docs[mid].id < id)
            lo = mid + 1;
        else if (docs[mid].id > id)
            hi = mid;
        else
            return &docs[mid];
    }
    return NULL;
}

/* Evaluate the filter on every chunk that may differ from its document
 * (those with metadata of their own, or all when the filter mentions
 * "heading"); collect the ids of matching chunks, sorted. */
static int match_chunks(store *s, const coll *c, const filter *f,
                        const doc_rec *docs, size_t n_docs, int64_t **ids_out,
                        size_t *n_out, lode_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT c.id, c.document_id, c.heading, c.metadata FROM "
                        "chunks c JOIN documents d ON d.id = c.document_id "
                        "WHERE d.collection_id = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    bool heading_matters = filter_references(f, "heading");
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const doc_rec *d = find_doc_rec(docs, n_docs, sqlite3_column_int64(st, 1));
        if (!d)
            continue;
        const char *heading = (const char *)sqlite3_column_text(st, 2);
        const char *meta = (const char *)sqlite3_column_text(st, 3);
        bool match;
        if (!meta && !heading_matters) {
            match = d->match;
        } else {
            chunk_view view = {d->rec, meta ? json_loads(meta, 0, NULL) : NULL,
                               heading && heading_matters ? json_string(heading) : NULL};
            match = filter_match(f, chunk_lookup, &view);
            json_decref(view.metadata);
            json_decref(view.heading);
        }
        if (!match)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t *grown = realloc(ids, cap * sizeof *grown);
            if (!grown) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering chunks");
                break;
            }
            ids = grown;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (!rc && src != SQLITE_DONE)
        rc = sql_error(s, src, "reading chunk metadata", err);
    if (rc) {
        free(ids);
        return rc;
    }
    if (n)
        qsort(ids, n, sizeof *ids, cmp_i64);
    *ids_out = ids;
    *n_out = n;
    return 0;
}

static bool sorted_has(const int64_t *a, size_t n, int64_t x)
{
    return n && bsearch(&x, a, n, sizeof *a, cmp_i64) != NULL;
}

/* Build the candidate bitmap over the collection's rows for filter f. */
static int filter_bitmap(store *s, coll *c, const filter *f, uint64_t **out,
                         lode_error *err)
{
    *out = NULL;
    if (c->has_chunk_metadata < 0) {
        sqlite3_stmt *st;
        int rc = prepare(s, "SELECT EXISTS (SELECT 1 FROM chunks c JOIN documents d "
                            "ON d.id = c.document_id WHERE d.collection_id = ? AND "
                            "c.metadata IS NOT NULL)", &st, err);
        if (rc)
            return rc;
        sqlite3_bind_int64(st, 1, c->id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            c->has_chunk_metadata = sqlite3_column_int(st, 0) != 0;
        sqlite3_finalize(st);
        if (src != SQLITE_ROW)
            return sql_error(s, src, "reading chunk metadata", err);
    }
    doc_rec *docs;
    size_t n_docs;
    int rc = load_doc_recs(s, c, f, &docs, &n_docs, err);
    if (rc)
        return rc;
    uint64_t *bits = calloc(c->vs.count / 64 + 1, sizeof *bits);
    int64_t *ids = NULL;
    size_t n_ids = 0;
    if (!bits) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory filtering");
        goto out;
    }
    if (c->has_chunk_metadata || filter_references(f, "heading")) {
        if ((rc = match_chunks(s, c, f, docs, n_docs, &ids, &n_ids, err)))
            goto out;
        for (size_t r = 0; r < c->vs.count; r++)
            if (sorted_has(ids, n_ids, c->vs.ids[r]))
                bits[r / 64] |= 1ull << (r % 64);
    } else {
        /* Document-level only: rows of one document are mostly adjacent,
         * so remember the last answer. */
        int64_t last = -1;
        bool last_match = false;
        for (size_t r = 0; r < c->vs.count; r++) {
            if (c->vs.groups[r] != last) {
                last = c->vs.groups[r];
                const doc_rec *d = find_doc_rec(docs, n_docs, last);
                last_match = d && d->match;
            }
            if (last_match)
                bits[r / 64] |= 1ull << (r % 64);
        }
    }
out:
    free(ids);
    doc_recs_free(docs, n_docs);
    if (rc)
        free(bits);
    else
        *out = bits;
    return rc;
}

int store_delete_where(store *s, const char *collection, const char *where_json,
                       int64_t *n_deleted, lode_error *err)
{
    if (n_deleted)
        *n_deleted = 0;
    coll *c;
    int rc = need_coll(s, collection, &c, err);
    if (rc || (rc = need_writable(s, "delete documents", err)))
        return rc;
    filter *f;
    if ((rc = filter_parse(where_json, &f, err)))
        return rc;
    if (filter_is_empty(f)) {
        filter_free(f);
        return lode_error_set(err, LODE_EINVAL, "refusing to delete by an empty "
                              "filter (it would match every document); delete the "
                              "collection instead");
    }
    doc_rec *docs;
    size_t n_docs;
    rc = load_doc_recs(s, c, f, &docs, &n_docs, err);
    filter_free(f);
    if (rc)
        return rc;
    int64_t *ids = malloc((n_docs ? n_docs : 1) * sizeof *ids);
    size_t n = 0;
    if (!ids) {
        doc_recs_free(docs, n_docs);
        return lode_error_set(err, LODE_ENOMEM, "out of memory deleting documents");
    }
    for (size_t i = 0; i < n_docs; i++)
        if (docs[i].match)
            ids[n++] = docs[i].id;          /* already sorted by id */
    doc_recs_free(docs, n_docs);
    if (n)
        rc = delete_documents(s, c, ids, n, err);
    free(ids);
    if (!rc && n_deleted)
        *n_deleted = (int64_t)n;
    return rc;
}

/* ---- search ----------------------------------------------------------- */

void store_results_free(store_result *results, size_t n)
{
    if (!results)
        return;
    for (size_t i = 0; i < n; i++) {
        free(results[i].text);
        free(results[i].heading);
        free(results[i].source);
        free(results[i].title);
        free(results[i].external_id);
    }
    free(results);
}

int store_search(store *s, const store_query *q, store_result **results,
                 size_t *n_results, lode_error *err)
{
    *results = NULL;
    *n_results = 0;
    coll *c;
    int rc = need_coll(s, q->collection, &c, err);
    if (rc || (rc = check_model(c, q->model_id, q->dimension, "search", err)))
        return rc;
    if (!q->vector)
        return lode_error_set(err, LODE_EINVAL, "search without a query vector");
    for (int i = 0; i < q->dimension; i++)
        if (!isfinite(q->vector[i]))
            return lode_error_set(err, LODE_EINVAL, "the query vector holds a NaN "
                                  "or infinity at %d", i);
    if (q->k == 0)
        return 0;

    filter *f = NULL;
    uint64_t *allow = NULL;
    vecset_hit *hits = NULL;
    store_result *res = NULL;
    sqlite3_stmt *st = NULL;
    size_t n_hits = 0, n = 0;
    if ((rc = filter_parse(q->where_json, &f, err)))
        return rc;
    if (!filter_is_empty(f) && (rc = filter_bitmap(s, c, f, &allow, err)))
        goto out;
    size_t k = q->k < c->vs.count ? q->k : c->vs.count;
    hits = malloc((k ? k : 1) * sizeof *hits);
    res = calloc(k ? k : 1, sizeof *res);
    if (!hits || !res) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory searching");
        goto out;
    }
    if ((rc = vecset_search(&c->vs, q->vector, k, allow,
                            q->use_min_score ? q->min_score : -INFINITY, hits,
                            &n_hits, err)))
        goto out;

    if ((rc = prepare(s, "SELECT c.ordinal, c.char_start, c.char_end, c.text, "
                         "c.heading, d.id, d.source, d.title, d.external_id "
                         "FROM chunks c JOIN documents d ON d.id = c.document_id "
                         "WHERE c.id = ?", &st, err)))
        goto out;
    for (size_t i = 0; i < n_hits; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, hits[i].id);
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            continue;   /* deleted by another process since we loaded */
        if (src != SQLITE_ROW) {
            rc = sql_error(s, src, "reading search results", err);
            goto out;
        }
        store_result *r = &res[n++];
        r->score = hits[i].score;
        r->chunk_id = hits[i].id;
        r->ordinal = sqlite3_column_int(st, 0);
        r->char_start = sqlite3_column_int64(st, 1);
        r->char_end = sqlite3_column_int64(st, 2);
        r->document_id = sqlite3_column_int64(st, 5);
        if (col_dup(st, 3, &r->text) || col_dup(st, 4, &r->heading) ||
            col_dup(st, 6, &r->source) || col_dup(st, 7, &r->title) ||
            col_dup(st, 8, &r->external_id) || (!r->text && !(r->text = strdup("")))) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading search results");
            goto out;
        }
    }
out:
    sqlite3_finalize(st);
    filter_free(f);
    free(allow);
    free(hits);
    if (rc) {
        store_results_free(res, n);
        return rc;
    }
    *results = res;
    *n_results = n;
    return 0;
}

/* ---- reading documents ------------------------------------------------ */

void store_document_free(store_document *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n_chunks; i++) {
        free(doc->chunks[i].text);
        free(doc->chunks[i].heading);
        free(doc->chunks[i].metadata_json);
    }
    free(doc->chunks);
    free(doc->collection);
    free(doc->source);
    free(doc->external_id);
    free(doc->title);
    free(doc->metadata_json);
    free(doc->content_sha256);
    free(doc);
}

int store_get_document(store *s, int64_t doc_id, store_document **out, lode_error *err)
{
    *out = NULL;
    store_document *doc = calloc(1, sizeof *doc);
    if (!doc)
        return lode_error_set(err, LODE_ENOMEM, "out of memory reading a document");
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT c.name, d.source, d.external_id, d.title, d.metadata, "
                        "d.content_sha256, d.created, d.updated FROM documents d "
                        "JOIN collections c ON c.id = d.collection_id WHERE d.id = ?",
                     &st, err);
    if (rc) {
        free(doc);
        return rc;
    }
    sqlite3_bind_int64(st, 1, doc_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        doc->id = doc_id;
        doc->created = sqlite3_column_int64(st, 6);
        doc->updated = sqlite3_column_int64(st, 7);
        if (col_dup(st, 0, &doc->collection) || col_dup(st, 1, &doc->source) ||
            col_dup(st, 2, &doc->external_id) || col_dup(st, 3, &doc->title) ||
            col_dup(st, 4, &doc->metadata_json) || col_dup(st, 5, &doc->content_sha256))
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading a document");
    } else if (src == SQLITE_DONE) {
        rc = lode_error_set(err, LODE_ENOTFOUND, "there is no document with id %lld",
                            (long long)doc_id);
    } else {
        rc = sql_error(s, src, "reading a document", err);
    }
    sqlite3_finalize(st);
    if (rc)
        goto fail;

    if ((rc = prepare(s, "SELECT id, ordinal, text, char_start, char_end, token_count, "
                         "heading, metadata FROM chunks WHERE document_id = ? "
                         "ORDER BY ordinal", &st, err)))
        goto fail;
    sqlite3_bind_int64(st, 1, doc_id);
    size_t cap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (doc->n_chunks == cap) {
            cap = cap ? 2 * cap : 16;
            store_chunk *grown = realloc(doc->chunks, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            doc->chunks = grown;
        }
        store_chunk *ch = &doc->chunks[doc->n_chunks++];
        memset(ch, 0, sizeof *ch);
        ch->id = sqlite3_column_int64(st, 0);
        ch->ordinal = sqlite3_column_int(st, 1);
        ch->char_start = sqlite3_column_int64(st, 3);
        ch->char_end = sqlite3_column_int64(st, 4);
        ch->token_count = sqlite3_column_int(st, 5);
        if (col_dup(st, 2, &ch->text) || col_dup(st, 6, &ch->heading) ||
            col_dup(st, 7, &ch->metadata_json)) {
            rc = LODE_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory reading a document");
    else if (src != SQLITE_DONE)
        rc = sql_error(s, src, "reading a document's chunks", err);
    if (rc)
        goto fail;
    *out = doc;
    return 0;
fail:
    store_document_free(doc);
    return rc;
}

int store_find_document(store *s, const char *collection, const char *source,
                        const char *external_id, int64_t *doc_id,
                        char sha256[65], lode_error *err)
{
    *doc_id = 0;
    if (sha256)
        sha256[0] = '\0';
    coll *c;
    int rc = need_coll(s, collection, &c, err);
    if (rc)
        return rc;
    if (!source && !external_id)
        return lode_error_set(err, LODE_EINVAL, "finding a document needs a source "
                              "or an external id");
    char *sha = NULL;
    if ((rc = find_doc_id(s, c->id, source, external_id, doc_id, &sha, err)))
        return rc;
    if (!*doc_id)
        return lode_error_set(err, LODE_ENOTFOUND, "collection \"%s\" has no "
                              "document with %s \"%s\"", c->name,
                              external_id ? "external id" : "source",
                              external_id ? external_id : source);
    if (sha256 && sha)
        snprintf(sha256, 65, "%s", sha);
    free(sha);
    return 0;
}

void store_strings_free(char **strings, size_t n)
{
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

int store_list_sources(store *s, const char *collection, char ***sources,
                       size_t *n_out, lode_error *err)
{
    *sources = NULL;
    *n_out = 0;
    coll *c;
    int rc = need_coll(s, collection, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = prepare(s, "SELECT source FROM documents WHERE collection_id = ? AND "
                         "source IS NOT NULL ORDER BY source", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, c->id);
    char **list = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = LODE_ENOMEM;
                break;
            }
            list = grown;
        }
        if (col_dup(st, 0, &list[n]) || !list[n]) {
            rc = LODE_ENOMEM;
            break;
        }
        n++;
    }
    sqlite3_finalize(st);
    if (rc == LODE_ENOMEM)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing sources");
    else if (src != SQLITE_DONE)
        rc = sql_error(s, src, "listing sources", err);
    if (rc) {
        store_strings_free(list, n);
        return rc;
    }
    *sources = list;
    *n_out = n;
    return 0;
}

int store_get_stats(store *s, const char *collection, store_stats *out,
                    lode_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = refresh(s, err);
    if (rc)
        return rc;
    coll *only = NULL;
    if (collection && (rc = need_coll(s, collection, &only, err)))
        return rc;
    sqlite3_stmt *st;
    if ((rc = prepare(s, "SELECT count(*) FROM documents WHERE ?1 IS NULL OR "
                         "collection_id = ?1", &st, err)))
        return rc;
    if (only)
        sqlite3_bind_int64(st, 1, only->id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        out->documents = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (src != SQLITE_ROW)
        return sql_error(s, src, "counting documents", err);
    for (size_t i = 0; i < s->n_colls; i++) {
        if (only && s->colls[i] != only)
            continue;
        out->collections++;
        out->chunks += (int64_t)s->colls[i]->vs.count;
        out->bytes_in_memory += (int64_t)vecset_bytes(&s->colls[i]->vs);
    }
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    off_t main_size = file_size(s->path), wal_size = file_size(wal);
    out->bytes_on_disk = (main_size > 0 ? main_size : 0) + (wal_size > 0 ? wal_size : 0);
    return 0;
}

int store_vacuum(store *s, lode_error *err)
{
    int rc = need_writable(s, "vacuum", err);
    if (rc)
        return rc;
    int src = exec_write(s, "VACUUM");
    if (src != SQLITE_OK)
        return sql_error(s, src, "vacuuming", err);
    src = sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return sql_error(s, src, "checkpointing after vacuum", err);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

void store_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
        out[0] = '\0';
        return;
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}
