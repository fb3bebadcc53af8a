/* jsonptr.h - JSON pointers (RFC 6901) over jansson trees.
 *
 * A pointer is "" (the whole document) or a sequence of "/"-prefixed
 * reference tokens in which "~1" stands for '/' and "~0" for '~'; any
 * other '~' makes the pointer invalid.  A token selects an object member
 * by name or an array element by decimal index without leading zeros
 * ("-", the element past the end, never resolves).
 *
 * Only reading is supported: the generic webhooks (webhook_generic.c)
 * pick a delivery's text, metadata, id and title out of its body with
 * pointers from their configuration.
 */
#ifndef LODE_JSONPTR_H
#define LODE_JSONPTR_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

/* Is this an RFC 6901 JSON pointer: "" or "/"-separated tokens in which
 * '~' only appears as "~0" (for '~') or "~1" (for '/')?  NULL is not. */
bool jsonptr_valid(const char *pointer);
/* The value `pointer` names in `root` (borrowed), or LODE_ENOTFOUND when
 * a member or index is missing (array indices are decimal without leading
 * zeros; "-" is past the end), LODE_EINVAL when the pointer is not
 * valid, LODE_ENOMEM.  *out is NULL on every error. */
int jsonptr_get(json_t *root, const char *pointer, json_t **out);

#endif
