/* subproc.h - run a helper program (a Debian tool such as mutool) as a
 * separate process, streaming what it writes, with limits on time, output
 * and memory.
 *
 * lode reads PDF through a tool in its own process rather than a linked
 * library: a crash or a runaway parse of a hostile file then kills only
 * the child, and the tool's license (mupdf: AGPL) does not extend to lode.
 * The child gets /dev/null as stdin, its stdout is handed to a callback as
 * it arrives (so the caller bounds its own memory), and the first bytes of
 * its stderr are kept for the error message.  It is killed (SIGKILL) when
 * the deadline passes, when the callback refuses more output, or when the
 * caller's output limit is reached; its address space is capped with
 * RLIMIT_AS.
 */
#ifndef LODE_SUBPROC_H
#define LODE_SUBPROC_H

#include <stddef.h>

#include "err.h"

#define SUBPROC_STDERR_MAX 1024

typedef struct subproc_limits {
    int timeout_ms;              /* 0: none */
    size_t max_output;           /* bytes of stdout; 0: none */
    size_t max_memory;           /* RLIMIT_AS of the child; 0: none */
} subproc_limits;

typedef struct subproc_result {
    int exit_status;             /* the child's exit code, or -1 */
    int signal;                  /* the signal that ended it, or 0 */
    int timed_out, over_limit;   /* killed by us, and why */
    char stderr_text[SUBPROC_STDERR_MAX]; /* first bytes, NUL-terminated */
} subproc_result;

/* Called with each piece of stdout; return 0 to go on, non-zero to kill
 * the child (the value is returned by subproc_run). */
typedef int (*subproc_output_fn)(void *ctx, const char *data, size_t len);

/* The full path of `name` found on $PATH, in buf; LODE_ENOTFOUND when
 * it is not installed. */
int subproc_find(const char *name, char *buf, size_t size);

/* Run argv[0] (a path, see subproc_find) with argv.  Returns 0 when the
 * child ran to its end (whatever its exit status: see *res), the
 * callback's non-zero value when it stopped the child, LODE_EBUSY on a
 * timeout, LODE_ELIMIT over max_output, LODE_EIO when it could not be
 * started. */
int subproc_run(char *const argv[], const subproc_limits *limits,
                subproc_output_fn on_output, void *ctx, subproc_result *res,
                lode_error *err);

#endif
