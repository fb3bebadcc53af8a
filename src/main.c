/* main.c - the lode command line: `lode COMMAND [OPTIONS] [ARGS]`.
 *
 * Each command parses its own options, calls the library and decides how
 * to report errors: library functions return codes and messages, and only
 * this file prints them and chooses the exit status (0 ok, 1 failure,
 * 2 usage). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli_store.h"
#include "err.h"
#include "fmtfloat.h"
#include "gguf.h"
#include "gguf_model.h"
#include "jsonmem.h"
#include "model.h"
#include "pool.h"
#include "server.h"

/* Texts embedded per call when streaming stdin: bounds memory. */
#define CLI_BATCH 256

static void usage(FILE *f)
{
    fputs("usage: lode COMMAND [OPTIONS] [ARGS]\n"
          "\n"
          "commands:\n"
          "  embed [-m MODEL] [-t N] [--json] [TEXT...]\n"
          "                                        print one JSON vector per "
          "text\n"
          "  tokenize [-m MODEL] [--json] [TEXT...] print token ids per text\n"
          "  convert SRC_DIR OUT.gguf [--type f32|f16|q8_0|q8_128]\n"
          "                                        write a model as one GGUF "
          "file\n",
          f);
    fputs(cli_store_usage, f);
    fputs(server_usage, f);
    fputs(check_usage, f);
    fputs("\n"
          "Without TEXT, texts are read from stdin, one per line; with --json"
          "\neach stdin line is a JSON string.  -t sets the threads (default: "
          "the\nCPUs this process may use).  MODEL defaults to "
          "$LODE_MODEL,\nelse " MODEL_DEFAULT_PATH ".\n",
          f);
}

static int fail(const lode_error *err)
{
    fprintf(stderr, "lode: %s\n", err->message[0] ? err->message
                                                  : lode_strerror(err->code));
    return 1;
}

/* Options shared by embed and tokenize. */
typedef struct text_opts {
    const char *model_path;
    int threads;       /* 0: the CPUs this process may use */
    int json_input;
    char **texts;  /* from argv, not owned */
    int n_texts;
} text_opts;

static int parse_text_opts(int argc, char **argv, text_opts *o)
{
    o->model_path = model_default_path();
    o->json_input = 0;
    o->threads = 0;
    o->texts = NULL;
    o->n_texts = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "lode: %s needs a value\n", argv[i - 1]);
                return 2;
            }
            o->model_path = argv[i];
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json_input = 1;
        } else if (strcmp(argv[i], "-t") == 0 ||
                   strcmp(argv[i], "--threads") == 0) {
            char *end;
            long t = ++i < argc ? strtol(argv[i], &end, 10) : -1;
            if (i >= argc || *end || t < 1 || t > 1024) {
                fprintf(stderr, "lode: -t needs a thread count (1..1024)\n");
                return 2;
            }
            o->threads = (int)t;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "lode: unknown option %s\n", argv[i]);
            return 2;
        } else {
            break;
        }
    }
    o->texts = argv + i;
    o->n_texts = argc - i;
    return 0;
}

/* One text with its length (texts may hold NUL when read as JSON). */
typedef struct text {
    char *s;
    size_t len;
} text;

/* Read the next stdin text: a line, or with json a JSON string per line.
 * Returns 1 with a text (caller frees), 0 at EOF, -1 on error. */
static int read_text(int json, long lineno, text *t, lode_error *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return 0;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    if (!json) {
        t->s = line;
        t->len = (size_t)n;
        return 1;
    }
    json_error_t jerr;
    json_t *v = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                           &jerr);
    free(line);
    if (!json_is_string(v)) {
        json_decref(v);
        lode_error_set(err, LODE_EINVAL,
                       "stdin line %ld: expected a JSON string%s%s", lineno,
                       v ? "" : ": ", v ? "" : jerr.text);
        return -1;
    }
    t->len = json_string_length(v);
    t->s = malloc(t->len + 1);
    if (!t->s) {
        json_decref(v);
        lode_error_set(err, LODE_ENOMEM, "out of memory");
        return -1;
    }
    memcpy(t->s, json_string_value(v), t->len + 1);
    json_decref(v);
    return 1;
}

/* One vector as a JSON array line, each value as printf("%.9g") writes
 * it (fmtfloat.h: the same bytes, several times faster), built on the
 * stack and written with one fwrite when it fits (any vector of up to 511
 * values), in 8 KB pieces otherwise. */
static void print_floats(const float *v, int n)
{
    char line[8192];
    size_t len = 0;
    line[len++] = '[';
    for (int i = 0; i < n; i++) {
        if (len + 1 + FMTFLOAT_G9_SIZE > sizeof line) {
            fwrite(line, 1, len, stdout);
            len = 0;
        }
        if (i)
            line[len++] = ',';
        len += (size_t)fmtfloat_g9(v[i], line + len);
    }
    if (len + 2 > sizeof line) {
        fwrite(line, 1, len, stdout);
        len = 0;
    }
    line[len++] = ']';
    line[len++] = '\n';
    fwrite(line, 1, len, stdout);
}

static void print_ids(const int32_t *ids, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++)
        printf(i ? ",%d" : "%d", ids[i]);
    fputs("]\n", stdout);
}

/* Embed or tokenize a batch of texts and print a line per text. */
static int process_batch(model *m, int embed, text *batch, int n,
                         long first, lode_error *err)
{
    if (n == 0)
        return 0;
    if (!embed) {
        int32_t *ids = malloc((size_t)model_max_seq_length(m) * sizeof *ids);
        if (!ids)
            return lode_error_set(err, LODE_ENOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
            int n_ids;
            int rc = model_tokenize(m, batch[i].s, batch[i].len, ids, &n_ids,
                                    NULL, err);
            if (rc) {
                free(ids);
                return lode_error_prefix(err, "text %ld", first + i);
            }
            print_ids(ids, n_ids);
        }
        free(ids);
        return 0;
    }
    const char **texts = malloc((size_t)n * sizeof *texts);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    float *out = malloc((size_t)n * model_dim(m) * sizeof *out);
    int rc = 0;
    if (!texts || !lens || !out) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (batch[i].len == 0) {
            rc = lode_error_set(err, LODE_EEMPTY, "text %ld is empty",
                                first + i);
            goto done;
        }
        texts[i] = batch[i].s;
        lens[i] = batch[i].len;
    }
    rc = model_embed(m, n, texts, lens, out, NULL, err);
    if (rc)
        goto done;
    for (int i = 0; i < n; i++)
        print_floats(out + (size_t)i * model_dim(m), model_dim(m));
done:
    free(texts);
    free(lens);
    free(out);
    return rc;
}

static int cmd_texts(int argc, char **argv, int embed)
{
    text_opts o;
    int rc = parse_text_opts(argc, argv, &o);
    if (rc)
        return rc;
    lode_error err = {0};
    model *m = NULL;
    pool *threads = NULL;
    if (model_load(o.model_path, &m, &err))
        return fail(&err);
    int n_threads = o.threads ? o.threads : pool_default_threads();
    if (embed && n_threads > 1) {
        if (pool_create(n_threads, &threads, &err)) {
            model_free(m);
            return fail(&err);
        }
        model_set_pool(m, threads);
    }
    text batch[CLI_BATCH];
    int n = 0;
    long first = 1;
    if (o.n_texts > 0) {
        for (int i = 0; i < o.n_texts && !rc; i++) {
            batch[n].s = o.texts[i];
            batch[n].len = strlen(o.texts[i]);
            if (++n == CLI_BATCH || i == o.n_texts - 1) {
                rc = process_batch(m, embed, batch, n, first, &err);
                first += n;
                n = 0;
            }
        }
    } else {
        long lineno = 0;
        for (;;) {
            int got = read_text(o.json_input, lineno + 1, &batch[n], &err);
            if (got < 0) {
                rc = err.code;
                break;
            }
            if (got > 0) {
                lineno++;
                n++;
            }
            if (n == CLI_BATCH || (got == 0 && n > 0)) {
                rc = process_batch(m, embed, batch, n, first, &err);
                for (int i = 0; i < n; i++)
                    free(batch[i].s);
                first += n;
                n = 0;
                if (rc)
                    break;
            }
            if (got == 0)
                break;
        }
        for (int i = 0; i < n; i++)
            free(batch[i].s);
    }
    model_free(m);
    pool_free(threads);
    if (fflush(stdout) != 0 && !rc)
        rc = lode_error_set(&err, LODE_EIO, "writing to stdout failed");
    return rc ? fail(&err) : 0;
}

static int cmd_convert(int argc, char **argv)
{
    const char *src = NULL, *dst = NULL, *type_name = "q8_0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
            type_name = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "lode: unknown option %s\n", argv[i]);
            return 2;
        } else if (!src) {
            src = argv[i];
        } else if (!dst) {
            dst = argv[i];
        } else {
            fprintf(stderr, "lode: convert takes SRC and OUT\n");
            return 2;
        }
    }
    if (!src || !dst) {
        fprintf(stderr, "usage: lode convert SRC_DIR OUT.gguf "
                        "[--type f32|f16|q8_0|q8_128]\n");
        return 2;
    }
    uint32_t type;
    if (strcmp(type_name, "f32") == 0)
        type = GGUF_TYPE_F32;
    else if (strcmp(type_name, "f16") == 0)
        type = GGUF_TYPE_F16;
    else if (strcmp(type_name, "q8_0") == 0)
        type = GGUF_TYPE_Q8_0;
    else if (strcmp(type_name, "q8_128") == 0)
        type = GGUF_TYPE_LODE_Q8_128;
    else {
        fprintf(stderr, "lode: --type must be f32, f16, q8_0 or q8_128, "
                        "not '%s'\n", type_name);
        return 2;
    }
    lode_error err = {0};
    kern_init();
    if (gguf_model_convert(src, dst, type, &err))
        return fail(&err);
    return 0;
}

int main(int argc, char **argv)
{
    jsonmem_install();   /* before any JSON: tells OOM from bad input */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "embed") == 0)
        return cmd_texts(argc - 1, argv + 1, 1);
    if (strcmp(cmd, "tokenize") == 0)
        return cmd_texts(argc - 1, argv + 1, 0);
    if (strcmp(cmd, "convert") == 0)
        return cmd_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "ingest") == 0)
        return cli_ingest(argc - 1, argv + 1);
    if (strcmp(cmd, "search") == 0)
        return cli_search(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cli_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "collections") == 0)
        return cli_collections(argc - 1, argv + 1);
    if (strcmp(cmd, "delete") == 0)
        return cli_delete(argc - 1, argv + 1);
    if (strcmp(cmd, "stats") == 0)
        return cli_stats(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return server_main(argc - 1, argv + 1);
    if (strcmp(cmd, "vacuum") == 0)
        return cli_vacuum(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return check_main(argc - 1, argv + 1);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "lode: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
