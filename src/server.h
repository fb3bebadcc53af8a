/* server.h - `lode serve`: configuration from flags and environment,
 * start-up (listen first, load the model and open the database on
 * background threads), signals and graceful shutdown.  The routes are in
 * api.h. */
#ifndef LODE_SERVER_H
#define LODE_SERVER_H

/* Run the server; argv[0] is "serve".  Returns the exit status: 0 after a
 * clean shutdown (SIGTERM/SIGINT), 1 if it could not start, 2 for a usage
 * error.  This is the one place of the server that prints. */
int server_main(int argc, char **argv);

struct api_config;
/* The configuration before flags and environment: every limit at its
 * default (also what fuzz/fuzz_api.c serves with). */
void server_config_defaults(struct api_config *c);

/* The usage text of `lode serve`. */
extern const char server_usage[];

#endif
