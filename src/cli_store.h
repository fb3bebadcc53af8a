/* cli_store.h - the store commands of the lode command line: ingest,
 * search, collections, delete, stats, vacuum.  main.c dispatches to them.
 *
 * Each takes the command's arguments (argv[0] is the command name) and
 * returns the exit status: 0 ok, 1 failure (a message on stderr), 2 usage
 * error.  Results are JSON on stdout, except ingest's summary line. */
#ifndef LODE_CLI_STORE_H
#define LODE_CLI_STORE_H

#define CLI_DEFAULT_DB "data/lode.db"

int cli_ingest(int argc, char **argv);
int cli_search(int argc, char **argv);
int cli_collections(int argc, char **argv);
int cli_delete(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_vacuum(int argc, char **argv);

/* The usage lines of these commands, for `lode help`. */
extern const char cli_store_usage[];

#endif
