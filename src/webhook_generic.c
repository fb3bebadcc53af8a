/* webhook_generic.c - what a generic webhook (POST /webhook/{name}) reads
 * from a delivery: its text, metadata, idempotency id and title, each
 * picked out of the JSON body by the RFC 6901 pointers (jsonptr.h) of the
 * webhook's settings (webhook.h describes them).
 *
 * Kept apart from webhook.c because it is pure: JSON in, text or a
 * message naming the pointer out, with no HTTP, database or scheduler in
 * sight (only store.h's SHA-256 helper), so it is tested on its own in
 * tests/test_webhook.c.  The settings are validated with the rest of the
 * file in webhook.c; these functions only resolve them.
 *
 * A value becomes text only when it is a string, a number or an array of
 * them (joined with ", "); metadata also keeps booleans.  Anything else is
 * refused rather than guessed at, with a message that names the pointer
 * (a 400 to the sender).
 */
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonptr.h"
#include "store.h"

static const char *json_kind(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* A string or number as text to f. */
static bool put_plain(FILE *f, json_t *v)
{
    if (json_is_string(v))
        fputs(json_string_value(v), f);
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "%.17g", json_real_value(v));
    else
        return false;
    return true;
}

static const char out_of_memory[] = "out of memory";

/* The text of a pointer's value: a string, a number, or an array of them
 * joined with ", " (malloc'd, possibly "").  NULL with *why set when the
 * value is of another kind. */
static char *pointer_text(json_t *v, const char **why)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        *why = out_of_memory;
        return NULL;
    }
    bool ok = true;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (i)
                fputs(", ", f);
            if (!put_plain(f, e)) {
                ok = false;
                *why = "an array with something other than strings and "
                       "numbers";
            }
        }
    } else if (!put_plain(f, v)) {
        ok = false;
        *why = json_kind(v);
    }
    if (fclose(f) != 0 && ok) {
        ok = false;
        *why = out_of_memory;
    }
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Resolve one configured pointer (`what` names the setting in messages)
 * to its text; LODE_EINVAL naming the pointer when it cannot. */
static int resolve_text(json_t *body, const char *what, const char *pointer,
                        json_t **value, char **text, lode_error *err)
{
    *text = NULL;
    int rc = jsonptr_get(body, pointer, value);
    if (rc == LODE_ENOMEM)
        return lode_error_set(err, rc, "out of memory");
    if (rc)
        return lode_error_set(err, LODE_EINVAL, "%s pointer \"%s\" is not "
                              "in the body", what, pointer);
    const char *why = NULL;
    *text = pointer_text(*value, &why);
    if (!*text && why == out_of_memory)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (!*text)
        return lode_error_set(err, LODE_EINVAL, "%s pointer \"%s\" is %s, "
                              "not a string, number or array of strings",
                              what, pointer, why);
    return 0;
}

int webhook_generic_fields(json_t *hook, json_t *body, char **text,
                           json_t **metadata, lode_error *err)
{
    *text = NULL;
    *metadata = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    json_t *meta = json_object();
    int rc = 0;
    if (!f || !meta)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(hook, "text"), i, e) {
        json_t *value;
        char *t = NULL;
        if (rc || (rc = resolve_text(body, "text", json_string_value(e),
                                     &value, &t, err)))
            break;
        if (*t)
            fprintf(f, "%s%s", size ? "\n" : "", t);
        fflush(f);  /* keeps `size` current for the separator */
        free(t);
    }
    const char *key;
    json_object_foreach(json_object_get(hook, "metadata"), key, e) {
        json_t *value;
        char *t = NULL;
        const char *pointer = json_string_value(e);
        if (rc)
            break;
        char what[300];
        snprintf(what, sizeof what, "metadata.%s", key);
        if (jsonptr_get(body, pointer, &value) == 0 &&
            json_is_boolean(value)) {
            if (json_object_set_new(meta, key, json_copy(value))) {
                rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
                break;
            }
            continue;
        }
        if ((rc = resolve_text(body, what, pointer, &value, &t, err)))
            break;
        /* as Tally's answers: scalars keep their type, a one-element
         * array is unwrapped, a longer one becomes its text */
        if (json_is_array(value) && json_array_size(value) == 1)
            value = json_array_get(value, 0);
        /* a metadata field silently missing: fail instead */
        if (json_object_set_new(meta, key, json_is_number(value) ? json_copy(value)
                                                                 : json_string(t)))
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        free(t);
    }
    if (f && fclose(f) != 0 && !rc)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (!rc && size == 0)
        rc = lode_error_set(err, LODE_EINVAL, "the text pointers give no "
                            "text to embed");
    if (rc) {
        free(buf);
        json_decref(meta);
        return rc;
    }
    *text = buf;
    *metadata = meta;
    return 0;
}

int webhook_generic_id(json_t *hook, json_t *body, const char *raw,
                       size_t len, char **id, lode_error *err)
{
    *id = NULL;
    const char *pointer = json_string_value(json_object_get(hook, "id"));
    if (!pointer) {
        char hex[65];
        store_sha256_hex(raw, len, hex);
        *id = strdup(hex);
        return *id ? 0 : lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    json_t *v;
    int rc = jsonptr_get(body, pointer, &v);
    if (rc == LODE_ENOMEM)
        return lode_error_set(err, rc, "out of memory");
    if (rc)
        return lode_error_set(err, LODE_EINVAL, "id pointer \"%s\" is not "
                              "in the body", pointer);
    if (json_is_integer(v)) {
        char n[32];
        snprintf(n, sizeof n, "%lld", (long long)json_integer_value(v));
        *id = strdup(n);
    } else if (json_is_string(v) && json_string_length(v) > 0 &&
               strlen(json_string_value(v)) == json_string_length(v)) {
        *id = strdup(json_string_value(v));
    } else {
        return lode_error_set(err, LODE_EINVAL, "id pointer \"%s\" is %s, "
                              "not a non-empty string or an integer",
                              pointer, json_is_string(v) ? "an empty string"
                                                         : json_kind(v));
    }
    return *id ? 0 : lode_error_set(err, LODE_ENOMEM, "out of memory");
}

int webhook_generic_title(json_t *hook, json_t *body, const char *name,
                          const char *id, char **title, lode_error *err)
{
    *title = NULL;
    const char *pointer = json_string_value(json_object_get(hook, "title"));
    if (pointer) {
        json_t *v;
        return resolve_text(body, "title", pointer, &v, title, err);
    }
    if (asprintf(title, "%s %s", name, id) < 0) {
        *title = NULL;
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    return 0;
}
