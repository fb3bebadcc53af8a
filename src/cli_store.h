/* cli_store.h - the store commands of the lode command line: ingest,
 * search, eval (cli_eval.c), collections, delete, stats, vacuum.  main.c
 * dispatches to them.
 *
 * Each takes the command's arguments (argv[0] is the command name) and
 * returns the exit status: 0 ok, 1 failure (a message on stderr), 2 usage
 * error.  Results are JSON on stdout, except ingest's summary line. */
#ifndef LODE_CLI_STORE_H
#define LODE_CLI_STORE_H

#include <stdbool.h>

#include "err.h"

#define CLI_DEFAULT_DB "data/lode.db"

int cli_ingest(int argc, char **argv);
int cli_search(int argc, char **argv);
int cli_collections(int argc, char **argv);
int cli_delete(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_vacuum(int argc, char **argv);

int cli_eval(int argc, char **argv);       /* cli_eval.c */

/* The usage lines of these commands, for `lode help`. */
extern const char cli_store_usage[];

/* ---- shared by the command files ---------------------------------------- */

struct store;
struct model;
struct pool;
/* Open the store (refusing a missing file unless create); a read-only
 * open of a writable file of an older lode reopens it to upgrade it. */
int cli_open_store(const char *path, bool read_only, bool create,
                   struct store **s, lode_error *err);
/* Load a model and give it a pool of `threads` (0: the CPUs available). */
int cli_load_model(const char *path, int threads, struct model **m,
                   struct pool **p, lode_error *err);
/* The value of the option at argv[*i] (advancing *i), or NULL after
 * printing that it is missing. */
const char *cli_value(int argc, char **argv, int *i);
/* A decimal integer in lo..hi: 0, else -1. */
int cli_parse_int(const char *s, long lo, long hi, long *out);

#endif
