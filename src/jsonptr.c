/* jsonptr.c - resolve RFC 6901 JSON pointers in jansson trees (see
 * jsonptr.h).
 *
 * Each reference token is unescaped into one scratch buffer as long as the
 * pointer (a token is never longer than its escaped form), so a lookup
 * allocates once whatever the depth.  Unescaping reads "~0" and "~1" in a
 * single left-to-right pass, which is what makes "~01" the token "~1"
 * rather than "/", as the RFC requires.
 */
#include "jsonptr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool jsonptr_valid(const char *pointer)
{
    if (!pointer)
        return false;
    if (*pointer == '\0')
        return true;  /* the whole document */
    if (*pointer != '/')
        return false;
    for (const char *p = pointer; *p; p++)
        if (*p == '~' && p[1] != '0' && p[1] != '1')
            return false;
    return true;
}

/* An array index token: "0" or digits without a leading zero that fit. */
static bool array_index(const char *token, size_t *out)
{
    if (!*token || (token[0] == '0' && token[1]))
        return false;
    size_t n = 0;
    for (const char *p = token; *p; p++) {
        if (*p < '0' || *p > '9' || n > (SIZE_MAX - 9) / 10)
            return false;
        n = n * 10 + (size_t)(*p - '0');
    }
    *out = n;
    return true;
}

int jsonptr_get(json_t *root, const char *pointer, json_t **out)
{
    *out = NULL;
    if (!jsonptr_valid(pointer))
        return LODE_EINVAL;
    char *token = malloc(strlen(pointer) + 1);
    if (!token)
        return LODE_ENOMEM;
    json_t *cur = root;
    const char *p = pointer;
    while (cur && *p == '/') {
        size_t n = 0;
        for (p++; *p && *p != '/'; p++) {
            if (*p == '~') {  /* "~1" is '/', "~0" is '~': "~01" is "~1" */
                token[n++] = p[1] == '1' ? '/' : '~';
                p++;
            } else {
                token[n++] = *p;
            }
        }
        token[n] = '\0';
        size_t index;
        if (json_is_object(cur))
            cur = json_object_get(cur, token);
        else if (json_is_array(cur) && array_index(token, &index))
            cur = json_array_get(cur, index);  /* NULL past the end */
        else
            cur = NULL;
    }
    free(token);
    if (!cur)
        return LODE_ENOTFOUND;
    *out = cur;
    return 0;
}
