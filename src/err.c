/* err.c - error codes and the message carried with them (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *lode_strerror(int code)
{
    switch (code) {
    case LODE_OK: return "success";
    case LODE_ENOMEM: return "out of memory";
    case LODE_EIO: return "input/output error";
    case LODE_ENOTFOUND: return "not found";
    case LODE_EFORMAT: return "malformed file";
    case LODE_EUNSUPPORTED: return "unsupported";
    case LODE_EINVAL: return "invalid argument";
    case LODE_EUTF8: return "invalid UTF-8";
    case LODE_EEMPTY: return "empty input";
    case LODE_ELIMIT: return "limit exceeded";
    case LODE_EBUSY: return "busy";
    case LODE_EINTERNAL: return "internal error";
    }
    return "unknown error";
}

int lode_error_set(lode_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

int lode_error_prefix(lode_error *err, const char *fmt, ...)
{
    if (!err)
        return LODE_EINTERNAL;
    char prefix[LODE_ERROR_MAX], old[LODE_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3)
        n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 3, ol = strnlen(old, room);
    memcpy(err->message + n + 2, old, ol);
    err->message[n + 2 + ol] = '\0';
    return err->code;
}

void lode_error_clear(lode_error *err)
{
    if (err) {
        err->code = LODE_OK;
        err->message[0] = '\0';
    }
}
