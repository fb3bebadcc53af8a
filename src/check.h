/* check.h - `lode check URL`: the deployment smoke test.  It asks a
 * running lode server (any host, over HTTP or HTTPS) what a deployment
 * must answer: /health, /model-status, /memory-status, one embedding, one
 * search and one signed test delivery to POST /webhook/tally, and prints
 * a line per check and a summary.  main.c dispatches to it.
 *
 * The webhook check writes: it stores one synthetic submission in
 * collection "tally-<formId>" of the server (skip it with --no-webhook). */
#ifndef LODE_CHECK_H
#define LODE_CHECK_H

/* Run the checks; argv[0] is "check".  Prints the results on stdout and
 * usage errors on stderr, and returns the exit status: 0 when every check
 * that ran passed, 1 when one failed (or the server did not answer),
 * 2 for a usage error. */
int check_main(int argc, char **argv);

/* The usage lines of `lode check`, for `lode help`. */
extern const char check_usage[];

#endif
