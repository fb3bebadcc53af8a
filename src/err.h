/* err.h - the one error convention of lode.
 *
 * Every fallible function returns 0 (LODE_OK) or a negative code from the
 * enum below and hands results back through out-parameters.  Where an error
 * is first understood, the code that detects it writes a sentence for the
 * user into a lode_error (when the caller passed one); callers above only
 * carry it up.  Library code never prints and never exits.
 */
#ifndef LODE_ERR_H
#define LODE_ERR_H

#include <stddef.h>

enum {
    LODE_OK = 0,
    LODE_ENOMEM = -1,       /* allocation failed */
    LODE_EIO = -2,          /* a read, write, open or mmap failed */
    LODE_ENOTFOUND = -3,    /* a file, tensor, key or record is missing */
    LODE_EFORMAT = -4,      /* a file is malformed, truncated or inconsistent */
    LODE_EUNSUPPORTED = -5, /* valid input we do not handle (architecture, dtype) */
    LODE_EINVAL = -6,       /* bad argument or bad user input */
    LODE_EUTF8 = -7,        /* text is not valid UTF-8 */
    LODE_EEMPTY = -8,       /* text has no tokens after cleaning */
    LODE_ELIMIT = -9,       /* a size or count limit was exceeded */
    LODE_EBUSY = -10,       /* resource busy or not ready */
    LODE_EINTERNAL = -11,   /* a bug: an invariant did not hold */
};

#define LODE_ERROR_MAX 512

typedef struct lode_error {
    int code;
    char message[LODE_ERROR_MAX];
} lode_error;

/* Name of a code, e.g. "malformed file".  Never NULL. */
const char *lode_strerror(int code);

/* Record code and a printf-style message in err (which may be NULL) and
 * return code, so callers can write `return lode_error_set(err, ...)`. */
int lode_error_set(lode_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("loading model: ...").  Keeps
 * the code; returns it. */
int lode_error_prefix(lode_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void lode_error_clear(lode_error *err);

#endif
