/* cli_store.c - `lode ingest|search|collections|delete|stats|vacuum`
 * (see cli_store.h).
 *
 * Like main.c, this is the only layer that prints: the library hands back
 * codes and messages, and ingest reports notes and progress through
 * callbacks.  The progress bar is drawn only when stderr is a terminal
 * (redrawn at most ten times a second); otherwise ingest prints just its
 * notes and the summary line.
 */
#include "cli_store.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "model.h"
#include "pool.h"
#include "search_json.h"
#include "store.h"
#include "watch.h"

const char cli_store_usage[] =
    "  ingest [--db FILE] [--collection NAME] [-m MODEL] [-t N]\n"
    "         [--chunk-tokens N] [--overlap N] [--sync] [--text-field F]\n"
    "         [--id-field F] [--title-field F] [--meta-fields A,B]\n"
    "         [--watch [--debounce-ms MS] [--rescan S]] PATH...\n"
    "                                        index .md .txt .html .json "
    ".jsonl\n"
    "                                        .pdf .docx .odt files; --watch "
    "keeps\n"
    "                                        them indexed as they change\n"
    "  search [--db FILE] [--collection NAME] [-k N] [--where JSON]\n"
    "         [--min-score X] [--mode vector|keyword|hybrid]\n"
    "         [--fusion rrf|convex] [--alpha A] [-m MODEL] QUERY\n"
    "                                        print the best chunks as JSON\n"
    "  eval [--db FILE] [--collection NAME] [-k N] [--json [--rankings]]\n"
    "       [--by-kind]\n"
    "       [--mode vector|keyword|hybrid|all] [--fusion rrf|convex]\n"
    "       [--alpha A,B...] [-m MODEL] QUERIES.jsonl\n"
    "                                        recall@k, MRR, nDCG@10 per mode\n"
    "  collections [--db FILE]               list collections as JSON\n"
    "  delete [--db FILE] [--collection NAME] (--id DOC | --where JSON | "
    "--all)\n"
    "                                        delete documents\n"
    "  stats [--db FILE] [--collection NAME] counts and sizes as JSON\n"
    "  vacuum [--db FILE]                    return free space to the disk\n";

static int fail(const lode_error *err)
{
    fprintf(stderr, "lode: %s\n", err->message[0] ? err->message
                                                  : lode_strerror(err->code));
    return 1;
}

static int usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "lode %s: %s (see `lode help`)\n", cmd, what);
    return 2;
}

/* Options every store command accepts. */
typedef struct common_opts {
    const char *db;
    const char *collection;
} common_opts;

/* Parse argv[*i] if it is a common option (advancing *i past its value).
 * Returns 1 when consumed, 0 when not a common option, -1 when the value
 * is missing. */
static int common_opt(int argc, char **argv, int *i, common_opts *c)
{
    const char *a = argv[*i];
    const char **dst = strcmp(a, "--db") == 0 ? &c->db
                     : strcmp(a, "--collection") == 0 ? &c->collection
                     : NULL;
    if (!dst)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *dst = argv[++*i];
    return 1;
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Value of the option at argv[*i] (advancing), or NULL after printing a
 * usage error. */
const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "lode %s: %s needs a value\n", argv[0], argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* Create the directory that will hold the database (one level). */
static void make_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return;
    char dir[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir)
        return;
    memcpy(dir, path, n);
    dir[n] = '\0';
    mkdir(dir, 0777);
}

/* Open the database; only ingest (create) may create it. */
int cli_open_store(const char *path, bool read_only, bool create, store **s,
                   lode_error *err)
{
    store_options so = {.read_only = read_only};
    if (!create && access(path, F_OK) != 0)
        return lode_error_set(err, LODE_ENOTFOUND,
                              "database %s does not exist (create it with "
                              "`lode ingest --db %s PATH`)", path, path);
    int rc = store_open(path, &so, s, err);
    /* Read-only, a file of an older lode stays as it was; upgrade it (the
     * keyword index) when we may write it, so search has every mode. */
    if (!rc && read_only && store_is_outdated(*s) && access(path, W_OK) == 0) {
        store_close(*s);
        so.read_only = false;
        rc = store_open(path, &so, s, err);
    }
    if (rc)
        lode_error_prefix(err, "opening %s", path);
    return rc;
}

/* Load a model and give it a pool of `threads` (0: the CPUs available). */
int cli_load_model(const char *path, int threads, model **m, pool **p,
                   lode_error *err)
{
    *p = NULL;
    int rc = model_load(path, m, err);
    if (rc)
        return rc;
    int n = threads ? threads : pool_default_threads();
    if (n > 1) {
        if ((rc = pool_create(n, p, err))) {
            model_free(*m);
            *m = NULL;
            return rc;
        }
        model_set_pool(*m, *p);
    }
    return LODE_OK;
}

/* ---- ingest ----------------------------------------------------------- */

typedef struct progress_ui {
    int tty;
    int drawn;          /* a bar is on the screen */
    double last;        /* seconds of the last redraw */
} progress_ui;

static void ui_clear(progress_ui *ui)
{
    if (ui->drawn) {
        fputs("\r\033[K", stderr);
        ui->drawn = 0;
    }
}

static void on_note(void *ctx, const char *message)
{
    progress_ui *ui = ctx;
    ui_clear(ui);
    fprintf(stderr, "lode: %s\n", message);
}

static void on_progress(void *ctx, const ingest_progress *p)
{
    progress_ui *ui = ctx;
    if (!ui->tty)
        return;
    int final = p->files_done == p->files_total;
    if (!final && p->seconds - ui->last < 0.1 && ui->drawn)
        return;
    ui->last = p->seconds;
    double frac = p->bytes_total ? (double)p->bytes_done / (double)p->bytes_total
                                 : 1.0;
    char bar[21];
    int fill = (int)(frac * 20);
    for (int i = 0; i < 20; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[20] = '\0';
    double rate = p->seconds > 0 ? (double)p->chunks / p->seconds : 0;
    char eta[32] = "";
    if (frac > 0.01 && frac < 1)
        snprintf(eta, sizeof eta, ", ETA %.0fs",
                 p->seconds * (1 - frac) / frac);
    fprintf(stderr, "\r[%s] %zu/%zu files, %lld chunks, %.1f chunks/s%s\033[K",
            bar, p->files_done, p->files_total, (long long)p->chunks, rate,
            eta);
    fflush(stderr);
    ui->drawn = 1;
}

/* One ingest run of the command line, and its summary line. */
typedef struct cli_run {
    store *s;
    model *m;
    const char **paths;
    size_t n_paths;
    const ingest_options *o;
    progress_ui *ui;
    ingest_stats *st;
} cli_run;

static int run_ingest(cli_run *r, lode_error *err)
{
    ingest_stats *st = r->st;
    int rc = ingest_paths(r->s, r->m, r->paths, r->n_paths, r->o, st, err);
    ui_clear(r->ui);
    if (!rc || st->added + st->updated + st->unchanged > 0) {
        double rate = st->seconds > 0 ? (double)st->chunks / st->seconds : 0;
        printf("ingest: %zu files into '%s': %lld added, %lld updated, "
               "%lld unchanged, %lld removed, %lld failed; %lld chunks in "
               "%.2f s (%.1f chunks/s)\n",
               st->files, r->o->collection, (long long)st->added,
               (long long)st->updated, (long long)st->unchanged,
               (long long)st->removed, (long long)st->failed,
               (long long)st->chunks, st->seconds, rate);
        fflush(stdout);
    }
    return rc;
}

static int watch_run(void *ctx, lode_error *err)
{
    return run_ingest(ctx, err);
}

static void watch_note(void *ctx, const char *message)
{
    on_note(((cli_run *)ctx)->ui, message);
}

static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    (void)sig;
    if (write(stop_pipe[1], "x", 1) < 0) {
        /* nothing more a signal handler can do */
    }
}

/* `lode ingest --watch`: run, then again on every change, until SIGINT
 * or SIGTERM; exit 0 then.  A failed run is reported and retried. */
static int watch_paths(cli_run *run, watch_options *w, lode_error *err)
{
    if (pipe(stop_pipe) != 0)
        return lode_error_set(err, LODE_EIO, "cannot create a pipe: %s",
                              strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    w->stop_fd = stop_pipe[0];
    w->run = watch_run;
    w->note = watch_note;
    w->ctx = run;
    fprintf(stderr, "lode: watching %zu path%s (Ctrl-C to stop)\n",
            run->n_paths, run->n_paths == 1 ? "" : "s");
    int rc = watch_loop(run->paths, run->n_paths, w, err);
    run->st->failed = 0;               /* reported run by run */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    if (!rc)
        fprintf(stderr, "lode: stopped watching\n");
    return rc;
}

static int split_list(char *s, const char ***out, size_t *n)
{
    size_t count = 1;
    for (char *c = s; *c; c++)
        count += *c == ',';
    const char **v = malloc(count * sizeof *v);
    if (!v)
        return -1;
    *n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        if (*tok)
            v[(*n)++] = tok;
    *out = v;
    return 0;
}

int cli_ingest(int argc, char **argv)
{
    common_opts c = {CLI_DEFAULT_DB, INGEST_DEFAULT_COLLECTION};
    const char *model_path = model_default_path();
    ingest_options o = {0};
    o.overlap_tokens = -1;
    long threads = 0, v, rescan_s = 0;
    watch_options watch = {.rescan_ms = -1};   /* -1: no --watch */
    char *meta_fields = NULL;
    const char **paths = NULL;
    int n_paths = 0, i, r;
    paths = malloc((size_t)argc * sizeof *paths);
    if (!paths) {
        fputs("lode: out of memory\n", stderr);
        return 1;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if ((r = common_opt(argc, argv, &i, &c)) != 0) {
            if (r < 0)
                goto need_value;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            if (!(model_path = cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (cli_parse_int(val, 1, 1024, &threads)) {
                usage_error(argv[0], "-t needs a thread count (1..1024)");
                goto usage;
            }
        } else if (strcmp(a, "--chunk-tokens") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (cli_parse_int(val, 1, 1 << 20, &v)) {
                usage_error(argv[0], "--chunk-tokens needs a positive number");
                goto usage;
            }
            o.chunk_tokens = (int)v;
        } else if (strcmp(a, "--overlap") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (cli_parse_int(val, 0, 1 << 20, &v)) {
                usage_error(argv[0], "--overlap needs a number >= 0");
                goto usage;
            }
            o.overlap_tokens = (int)v;
        } else if (strcmp(a, "--sync") == 0) {
            o.sync = true;
        } else if (strcmp(a, "--watch") == 0) {
            if (watch.rescan_ms < 0)
                watch.rescan_ms = 0;
        } else if (strcmp(a, "--rescan") == 0 ||
                   strcmp(a, "--debounce-ms") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (cli_parse_int(val, 1, 86400000, &v)) {
                usage_error(argv[0], "--rescan and --debounce-ms need a "
                                     "positive number");
                goto usage;
            }
            if (a[2] == 'r')
                rescan_s = v;
            else
                watch.debounce_ms = (int)v;
        } else if (strcmp(a, "--text-field") == 0) {
            if (!(o.extract.text_field = cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "--id-field") == 0) {
            if (!(o.extract.id_field = cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "--title-field") == 0) {
            if (!(o.extract.title_field = cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "--meta-fields") == 0) {
            if (!(meta_fields = (char *)cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                paths[n_paths++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lode ingest: unknown option %s\n", a);
            goto usage;
        } else {
            paths[n_paths++] = a;
        }
    }
    if (n_paths == 0) {
        usage_error(argv[0], "give at least one file or directory to ingest");
        goto usage;
    }
    if (rescan_s && watch.rescan_ms >= 0)
        watch.rescan_ms = (int)(rescan_s * 1000);
    if (meta_fields && split_list(meta_fields, (const char ***)&o.extract.meta_fields,
                                  &o.extract.n_meta_fields)) {
        free(paths);
        fputs("lode: out of memory\n", stderr);
        return 1;
    }

    lode_error err = {0};
    model *m = NULL;
    pool *p = NULL;
    store *s = NULL;
    int rc = cli_load_model(model_path, (int)threads, &m, &p, &err);
    if (!rc) {
        make_parent_dir(c.db);
        rc = cli_open_store(c.db, false, true, &s, &err);
    }
    ingest_stats st = {0};
    progress_ui ui = {.tty = isatty(2)};
    if (!rc) {
        o.collection = c.collection;
        o.note = on_note;
        o.progress = on_progress;
        o.ctx = &ui;
        cli_run run = {s, m, paths, (size_t)n_paths, &o, &ui, &st};
        if (watch.rescan_ms >= 0) {
            o.sync = true;               /* a watched folder loses files */
            rc = watch_paths(&run, &watch, &err);
        } else {
            rc = run_ingest(&run, &err);
        }
    }
    store_close(s);
    model_free(m);
    pool_free(p);
    free((void *)o.extract.meta_fields);
    free(paths);
    if (rc)
        return fail(&err);
    return st.failed ? 1 : 0;
need_value:
    fprintf(stderr, "lode %s: %s needs a value\n", argv[0], argv[i]);
usage:
    free(paths);
    return 2;
}

/* ---- search ----------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int cli_search(int argc, char **argv)
{
    common_opts c = {CLI_DEFAULT_DB, INGEST_DEFAULT_COLLECTION};
    const char *model_path = model_default_path(), *where = NULL, *val;
    long k = 5;
    bool use_min = false;
    double min_score = 0, alpha = STORE_DEFAULT_ALPHA;
    store_mode mode = STORE_DEFAULT_MODE;
    store_fusion fusion = STORE_DEFAULT_FUSION;
    char *query = NULL;
    size_t qlen = 0;
    int r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = common_opt(argc, argv, &i, &c)) != 0) {
            if (r < 0) {
                free(query);
                return usage_error(argv[0], "--db and --collection need a "
                                            "value");
            }
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            if (!(model_path = cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "-k") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (cli_parse_int(val, 1, 100000, &k)) {
                usage_error(argv[0], "-k needs a number of results (1..100000)");
                goto usage;
            }
        } else if (strcmp(a, "--where") == 0) {
            if (!(where = cli_value(argc, argv, &i)))
                goto usage;
        } else if (strcmp(a, "--min-score") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            char *end;
            min_score = strtod(val, &end);
            if (end == val || *end) {
                usage_error(argv[0], "--min-score needs a number");
                goto usage;
            }
            use_min = true;
        } else if (strcmp(a, "--mode") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (store_mode_parse(val, &mode)) {
                usage_error(argv[0], "--mode is vector, keyword or hybrid");
                goto usage;
            }
        } else if (strcmp(a, "--fusion") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            if (store_fusion_parse(val, &fusion)) {
                usage_error(argv[0], "--fusion is rrf or convex");
                goto usage;
            }
        } else if (strcmp(a, "--alpha") == 0) {
            if (!(val = cli_value(argc, argv, &i)))
                goto usage;
            char *end;
            alpha = strtod(val, &end);
            if (end == val || *end || !(alpha >= 0 && alpha <= 1)) {
                usage_error(argv[0], "--alpha needs a number from 0 to 1");
                goto usage;
            }
        } else if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            fprintf(stderr, "lode search: unknown option %s\n", a);
            goto usage;
        } else {
            /* Several words are one query, joined by spaces. */
            size_t al = strlen(a);
            char *nq = realloc(query, qlen + al + 2);
            if (!nq) {
                free(query);
                fputs("lode: out of memory\n", stderr);
                return 1;
            }
            query = nq;
            if (qlen)
                query[qlen++] = ' ';
            memcpy(query + qlen, a, al + 1);
            qlen += al;
        }
    }
    if (!query) {
        usage_error(argv[0], "give a QUERY");
        goto usage;
    }

    lode_error err = {0};
    model *m = NULL;
    pool *p = NULL;
    store *s = NULL;
    float *vec = NULL;
    store_result *res = NULL;
    size_t n_res = 0;
    int rc = cli_open_store(c.db, true, false, &s, &err);
    /* Keyword search needs no model: the query is not embedded. */
    bool embed = mode != STORE_MODE_KEYWORD;
    if (!rc && embed)
        rc = cli_load_model(model_path, 0, &m, &p, &err);
    if (!rc && embed && !(vec = malloc((size_t)model_dim(m) * sizeof *vec)))
        rc = lode_error_set(&err, LODE_ENOMEM, "out of memory");
    if (!rc && embed) {
        const char *texts[1] = {query};
        size_t lens[1] = {qlen};
        rc = model_embed(m, 1, texts, lens, vec, NULL, &err);
        if (rc)
            lode_error_prefix(&err, "embedding the query");
    }
    if (!rc) {
        char model_id[256] = "";
        if (m)
            ingest_model_id(m, model_id, sizeof model_id);
        store_query q = {
            .collection = c.collection,
            .model_id = model_id,
            .vector = vec,
            .dimension = m ? model_dim(m) : 0,
            .k = (size_t)k,
            .where_json = where,
            .use_min_score = use_min,
            .min_score = (float)min_score,
            .mode = mode,
            .text = query,
            .fusion = fusion,
            .alpha = (float)alpha,
        };
        rc = store_search(s, &q, &res, &n_res, &err);
    }
    if (!rc) {
        json_t *out = json_object(), *arr = json_array();
        json_object_set_new(out, "query", json_string(query));
        json_object_set_new(out, "collection", json_string(c.collection));
        json_object_set_new(out, "mode", json_string(store_mode_name(mode)));
        if (mode == STORE_MODE_HYBRID)
            json_object_set_new(out, "fusion", json_string(store_fusion_name(fusion)));
        if (mode == STORE_MODE_HYBRID && fusion == STORE_FUSION_CONVEX)
            json_object_set_new(out, "alpha", json_real(alpha));
        for (size_t i = 0; i < n_res; i++) {
            const store_result *x = &res[i];
            json_t *o = json_object();
            json_object_set_new(o, "score", json_real((double)x->score));
            json_object_set_new(o, "text", json_string(x->text));
            json_object_set_new(o, "document_id", json_integer(x->document_id));
            json_object_set_new(o, "source", str_or_null(x->source));
            json_object_set_new(o, "external_id", str_or_null(x->external_id));
            json_object_set_new(o, "title", str_or_null(x->title));
            json_object_set_new(o, "heading", str_or_null(x->heading));
            json_object_set_new(o, "chunk_id", json_integer(x->chunk_id));
            json_object_set_new(o, "ordinal", json_integer(x->ordinal));
            json_object_set_new(o, "char_start", json_integer(x->char_start));
            json_object_set_new(o, "char_end", json_integer(x->char_end));
            if (x->page_start > 0) {
                json_object_set_new(o, "page_start", json_integer(x->page_start));
                json_object_set_new(o, "page_end", json_integer(x->page_end));
            }
            json_array_append_new(arr, search_json_add_ranking(o, x));
        }
        json_object_set_new(out, "results", arr);
        if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(7)) ||
            fputc('\n', stdout) == EOF || fflush(stdout))
            rc = lode_error_set(&err, LODE_EIO, "writing to stdout failed");
        json_decref(out);
    }
    store_results_free(res, n_res);
    free(vec);
    store_close(s);
    model_free(m);
    pool_free(p);
    free(query);
    return rc ? fail(&err) : 0;
usage:
    free(query);
    return 2;
}

/* ---- collections, delete, stats, vacuum ------------------------------- */

static int print_json(json_t *j, lode_error *err)
{
    int rc = 0;
    if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) || fputc('\n', stdout) == EOF ||
        fflush(stdout))
        rc = lode_error_set(err, LODE_EIO, "writing to stdout failed");
    json_decref(j);
    return rc;
}


/* Parse only --db and --collection (allow_collection) for the simple
 * commands.  Returns 0 or the usage exit status. */
static int simple_opts(int argc, char **argv, common_opts *c,
                       int allow_collection)
{
    for (int i = 1; i < argc; i++) {
        int r = common_opt(argc, argv, &i, c);
        if (r < 0)
            return usage_error(argv[0], "--db and --collection need a value");
        if (r == 0 || (!allow_collection && strcmp(argv[i - 1], "--collection")
                                                == 0))
            return usage_error(argv[0], "unexpected argument");
    }
    return 0;
}

int cli_collections(int argc, char **argv)
{
    common_opts c = {CLI_DEFAULT_DB, NULL};
    int u = simple_opts(argc, argv, &c, 0);
    if (u)
        return u;
    lode_error err = {0};
    store *s = NULL;
    store_collection_info *infos = NULL;
    size_t n = 0;
    int rc = cli_open_store(c.db, true, false, &s, &err);
    if (!rc)
        rc = store_list_collections(s, &infos, &n, &err);
    if (!rc) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(infos[i].name));
            json_object_set_new(o, "model_id", json_string(infos[i].model_id));
            json_object_set_new(o, "dimension", json_integer(infos[i].dimension));
            json_object_set_new(o, "distance",
                                json_string(store_distance_name(infos[i].distance)));
            json_object_set_new(o, "documents", json_integer(infos[i].documents));
            json_object_set_new(o, "chunks", json_integer(infos[i].chunks));
            json_object_set_new(o, "created", json_integer(infos[i].created));
            json_array_append_new(arr, o);
        }
        rc = print_json(arr, &err);
    }
    store_collections_free(infos, n);
    store_close(s);
    return rc ? fail(&err) : 0;
}

int cli_delete(int argc, char **argv)
{
    common_opts c = {CLI_DEFAULT_DB, INGEST_DEFAULT_COLLECTION};
    const char *id_text = NULL, *where = NULL;
    int all = 0, modes = 0, r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = common_opt(argc, argv, &i, &c)) != 0) {
            if (r < 0)
                return usage_error(argv[0], "--db and --collection need a "
                                            "value");
        } else if (strcmp(a, "--id") == 0) {
            if (!(id_text = cli_value(argc, argv, &i)))
                return 2;
            modes++;
        } else if (strcmp(a, "--where") == 0) {
            if (!(where = cli_value(argc, argv, &i)))
                return 2;
            modes++;
        } else if (strcmp(a, "--all") == 0) {
            all = 1;
            modes++;
        } else {
            fprintf(stderr, "lode delete: unexpected argument %s\n", a);
            return 2;
        }
    }
    if (modes != 1)
        return usage_error(argv[0], "give exactly one of --id DOC, --where "
                                    "JSON, --all");
    long doc_id = 0;
    if (id_text && cli_parse_int(id_text, 1, 0x7fffffffL, &doc_id))
        return usage_error(argv[0], "--id needs a document id (a number, as "
                                    "`lode search` prints)");
    lode_error err = {0};
    store *s = NULL;
    int64_t deleted = 0;
    int rc = cli_open_store(c.db, false, false, &s, &err);
    if (!rc && all) {
        store_stats st;
        rc = store_get_stats(s, c.collection, &st, &err);
        if (!rc)
            rc = store_delete_collection(s, c.collection, &err);
        deleted = st.documents;
    } else if (!rc && where) {
        rc = store_delete_where(s, c.collection, where, &deleted, &err);
    } else if (!rc) {
        store_document *d = NULL;
        rc = store_get_document(s, doc_id, &d, &err);
        if (!rc && strcmp(d->collection, c.collection) != 0)
            rc = lode_error_set(&err, LODE_ENOTFOUND,
                                "document %ld is in collection '%s', not "
                                "'%s'", doc_id, d->collection, c.collection);
        store_document_free(d);
        if (!rc)
            rc = store_delete_document(s, doc_id, &err);
        deleted = rc ? 0 : 1;
    }
    if (!rc) {
        json_t *o = json_object();
        json_object_set_new(o, "deleted", json_integer(deleted));
        rc = print_json(o, &err);
    }
    store_close(s);
    return rc ? fail(&err) : 0;
}

int cli_stats(int argc, char **argv)
{
    common_opts c = {CLI_DEFAULT_DB, NULL};
    int u = simple_opts(argc, argv, &c, 1);
    if (u)
        return u;
    lode_error err = {0};
    store *s = NULL;
    store_stats st;
    int rc = cli_open_store(c.db, true, false, &s, &err);
    if (!rc)
        rc = store_get_stats(s, c.collection, &st, &err);
    if (!rc) {
        json_t *o = json_object();
        if (c.collection)
            json_object_set_new(o, "collection", json_string(c.collection));
        json_object_set_new(o, "collections", json_integer(st.collections));
        json_object_set_new(o, "documents", json_integer(st.documents));
        json_object_set_new(o, "chunks", json_integer(st.chunks));
        json_object_set_new(o, "bytes_on_disk", json_integer(st.bytes_on_disk));
        json_object_set_new(o, "bytes_in_memory",
                            json_integer(st.bytes_in_memory));
        rc = print_json(o, &err);
    }
    store_close(s);
    return rc ? fail(&err) : 0;
}

int cli_vacuum(int argc, char **argv)
{
    common_opts c = {CLI_DEFAULT_DB, NULL};
    int u = simple_opts(argc, argv, &c, 0);
    if (u)
        return u;
    lode_error err = {0};
    store *s = NULL;
    store_stats before, after;
    int rc = cli_open_store(c.db, false, false, &s, &err);
    if (!rc)
        rc = store_get_stats(s, NULL, &before, &err);
    if (!rc)
        rc = store_vacuum(s, &err);
    if (!rc)
        rc = store_get_stats(s, NULL, &after, &err);
    if (!rc) {
        json_t *o = json_object();
        json_object_set_new(o, "bytes_before", json_integer(before.bytes_on_disk));
        json_object_set_new(o, "bytes_after", json_integer(after.bytes_on_disk));
        rc = print_json(o, &err);
    }
    store_close(s);
    return rc ? fail(&err) : 0;
}
