/* webhook.c - POST /webhook/tally and POST /webhook/{name} (see webhook.h
 * for the configuration).
 *
 * Both handlers only differ in how they read a delivery: Tally's answers
 * become "label: value" lines, a generic body is read through the JSON
 * pointers of its configuration.  From then on they share one path, the
 * `delivery`: validate and submit the text to the scheduler through the
 * documents path (chunked and embedded like any document), then, resumed
 * with the vectors, take store_lock once to write it and run both
 * searches, answer, and hand the answer to the forwarder.  Holding the
 * lock across the write and the searches means the "earlier deliveries"
 * are exactly the other documents of the collection.
 *
 * Order of the checks: Tally's body must be JSON naming a form (400)
 * before the form's secret is known, then the signature (401), then the
 * rest of the payload (400); a generic webhook is known from its path
 * (404), so its signature is checked before the body is even parsed.
 * Signatures are over the raw body bytes, as the sender sends them.  The
 * duplicate check runs before embedding (cheap answer to a redelivery) and
 * again under the lock before writing (two deliveries racing), so an event
 * is stored, and forwarded, once.
 *
 * Forwarding never delays the answer: the answer's JSON is copied into
 * the forwarder's queue (forward.h), which a thread of its own drains.
 *
 * Here: the configuration and its checks, the signatures, Tally's answers
 * as text, the shared delivery path and both handlers.  What a generic
 * webhook reads from its body through its pointers is webhook_generic.c;
 * the pointers themselves are jsonptr.c. */
#include "webhook.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "api.h"
#include "filter.h"
#include "forward.h"
#include "jsonptr.h"

#define WEBHOOK_DEFAULT_K 5
#define WEBHOOK_COLLECTION_MAX 128  /* as api_store.c's names */
#define WEBHOOK_FORWARD_QUEUE_MAX 1000000
#define WEBHOOK_HEADER_MAX 200      /* the longest configured header name */
#define WEBHOOK_DEFAULT_SIGNATURE_HEADER "X-Signature"

struct webhook_config {
    json_t *root;  /* validated; read-only after load */
};

/* ---- configuration ----------------------------------------------------- */

/* Is this usable in a collection name: 1..max of [A-Za-z0-9._-]? */
static bool valid_name(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && !strchr("._-", s[n]))
            return false;
    return n > 0 && n <= max;
}

bool webhook_name_ok(const char *s)
{
    return valid_name(s, WEBHOOK_FORM_ID_MAX);
}

/* An HTTP header name: 1..WEBHOOK_HEADER_MAX token characters (RFC 9110). */
static bool valid_header_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) &&
            !strchr("!#$%&'*+-.^_`|~", s[n]))
            return false;
    return n > 0 && n <= WEBHOOK_HEADER_MAX;
}

/* A header value without control characters (no CR/LF injection). */
static bool valid_header_value(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v))
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;
    return true;
}

static bool string_array(json_t *v)
{
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
        if (!json_is_string(e))
            return false;
    return true;
}

static bool present(json_t *v)
{
    return v && !json_is_null(v);
}

static bool int_in(json_t *v, json_int_t min, json_int_t max)
{
    return json_is_integer(v) && json_integer_value(v) >= min &&
           json_integer_value(v) <= max;
}

/* The settings Tally forms and generic webhooks share: secret,
 * filter_fields, catalog, k and forwarding.  `where` names the object in
 * messages ("tally.f", "generic.x"). */
static int check_common(const char *where, json_t *o, lode_error *err)
{
    json_t *v = json_object_get(o, "secret");
    if (present(v) && !json_is_string(v))
        return lode_error_set(err, LODE_EFORMAT,
                              "%s.secret must be a string", where);
    v = json_object_get(o, "filter_fields");
    if (present(v) && !string_array(v)) {
        const char *key;
        json_t *e;
        bool ok = json_is_object(v);
        json_object_foreach(v, key, e)
            ok = ok && json_is_string(e);
        if (!ok)
            return lode_error_set(err, LODE_EFORMAT, "%s.filter_fields "
                                  "must be an array of strings or an object "
                                  "of strings", where);
    }
    v = json_object_get(o, "catalog");
    if (present(v) && !json_is_string(v))
        return lode_error_set(err, LODE_EFORMAT,
                              "%s.catalog must be a string", where);
    v = json_object_get(o, "k");
    if (present(v) && !int_in(v, 1, 1000))
        return lode_error_set(err, LODE_EFORMAT,
                              "%s.k must be an integer from 1 to 1000",
                              where);
    json_t *url = json_object_get(o, "forward_url");
    const char *u = json_string_value(url);
    if (present(url) &&
        (!u || strlen(u) != json_string_length(url) ||
         (strncasecmp(u, "http://", 7) != 0 &&
          strncasecmp(u, "https://", 8) != 0) ||
         strpbrk(u, " \t\r\n")))
        return lode_error_set(err, LODE_EFORMAT, "%s.forward_url must be an "
                              "http:// or https:// URL", where);
    static const char *const needs_url[] = {
        "forward_headers", "forward_timeout_ms", "forward_retries"};
    for (size_t i = 0; i < sizeof needs_url / sizeof needs_url[0]; i++)
        if (present(json_object_get(o, needs_url[i])) && !present(url))
            return lode_error_set(err, LODE_EFORMAT, "%s.%s needs a "
                                  "forward_url", where, needs_url[i]);
    v = json_object_get(o, "forward_headers");
    if (present(v)) {
        const char *name;
        json_t *e;
        if (!json_is_object(v))
            return lode_error_set(err, LODE_EFORMAT, "%s.forward_headers "
                                  "must be an object {\"Name\": \"value\"}",
                                  where);
        json_object_foreach(v, name, e)
            if (!valid_header_name(name) || !valid_header_value(e))
                return lode_error_set(err, LODE_EFORMAT,
                                      "%s.forward_headers.%s: a header name "
                                      "and a string value without control "
                                      "characters are expected", where,
                                      name);
    }
    v = json_object_get(o, "forward_timeout_ms");
    if (present(v) && !int_in(v, 100, 600000))
        return lode_error_set(err, LODE_EFORMAT, "%s.forward_timeout_ms "
                              "must be an integer from 100 to 600000",
                              where);
    v = json_object_get(o, "forward_retries");
    if (present(v) && !int_in(v, 0, 10))
        return lode_error_set(err, LODE_EFORMAT, "%s.forward_retries must "
                              "be an integer from 0 to 10", where);
    return 0;
}

static int check_form(const char *form_id, json_t *form, lode_error *err)
{
    char where[WEBHOOK_FORM_ID_MAX * 2 + 16];
    snprintf(where, sizeof where, "tally.%s", form_id);
    if (!json_is_object(form))
        return lode_error_set(err, LODE_EFORMAT, "%s must be an object",
                              where);
    json_t *v = json_object_get(form, "embed_fields");
    if (present(v) && !string_array(v))
        return lode_error_set(err, LODE_EFORMAT, "%s.embed_fields must be "
                              "an array of strings", where);
    return check_common(where, form, err);
}

/* A configured pointer: a JSON string that is a valid pointer. */
static bool pointer_setting(json_t *v)
{
    return json_is_string(v) &&
           strlen(json_string_value(v)) == json_string_length(v) &&
           jsonptr_valid(json_string_value(v));
}

static int check_generic(const char *name, json_t *hook, lode_error *err)
{
    /* Unknown settings are refused: a misspelt "forward_url" must not
     * silently turn forwarding off. */
    static const char *const known[] = {
        "secret", "signature_header", "text", "metadata", "id", "title",
        "collection", "filter_fields", "catalog", "k", "forward_url",
        "forward_headers", "forward_timeout_ms", "forward_retries"};
    char where[WEBHOOK_FORM_ID_MAX * 2 + 16];
    snprintf(where, sizeof where, "generic.%s", name);
    if (!webhook_name_ok(name))
        return lode_error_set(err, LODE_EFORMAT, "%s: a webhook name is 1 "
                              "to %d letters, digits, '.', '_' or '-'",
                              where, WEBHOOK_FORM_ID_MAX);
    if (strcmp(name, "tally") == 0)
        return lode_error_set(err, LODE_EFORMAT, "generic.tally: the name "
                              "is taken by POST /webhook/tally");
    if (!json_is_object(hook))
        return lode_error_set(err, LODE_EFORMAT, "%s must be an object",
                              where);
    const char *key;
    json_t *v;
    json_object_foreach(hook, key, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(key, known[i]))
            i++;
        if (i == sizeof known / sizeof known[0])
            return lode_error_set(err, LODE_EFORMAT, "%s.%s: unknown "
                                  "setting", where, key);
    }
    v = json_object_get(hook, "text");
    bool ok = json_is_array(v) && json_array_size(v) > 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
        ok = ok && pointer_setting(e);
    if (!ok)
        return lode_error_set(err, LODE_EFORMAT, "%s.text must be a "
                              "non-empty array of JSON pointers (\"/a/b\", "
                              "RFC 6901)", where);
    v = json_object_get(hook, "metadata");
    if (present(v)) {
        ok = json_is_object(v);
        json_object_foreach(v, key, e)
            ok = ok && pointer_setting(e);
        if (!ok)
            return lode_error_set(err, LODE_EFORMAT, "%s.metadata must be "
                                  "an object of JSON pointers "
                                  "{\"key\": \"/a/b\"}", where);
    }
    static const char *const pointers[] = {"id", "title"};
    for (i = 0; i < 2; i++) {
        v = json_object_get(hook, pointers[i]);
        if (present(v) && !pointer_setting(v))
            return lode_error_set(err, LODE_EFORMAT, "%s.%s must be a JSON "
                                  "pointer (\"/a/b\", RFC 6901)", where,
                                  pointers[i]);
    }
    v = json_object_get(hook, "signature_header");
    if (present(v) && !(json_is_string(v) &&
                        valid_header_name(json_string_value(v))))
        return lode_error_set(err, LODE_EFORMAT, "%s.signature_header must "
                              "be a header name", where);
    v = json_object_get(hook, "collection");
    if (present(v) && !(json_is_string(v) &&
                        valid_name(json_string_value(v),
                                   WEBHOOK_COLLECTION_MAX)))
        return lode_error_set(err, LODE_EFORMAT, "%s.collection must be 1 "
                              "to %d letters, digits, '.', '_' or '-'",
                              where, WEBHOOK_COLLECTION_MAX);
    return check_common(where, hook, err);
}

/* Check every object of a section ("tally", "generic"). */
static int check_section(json_t *root, const char *section,
                         int (*check)(const char *, json_t *, lode_error *),
                         lode_error *err)
{
    json_t *s = json_object_get(root, section);
    if (!present(s))
        return 0;
    if (!json_is_object(s))
        return lode_error_set(err, LODE_EFORMAT, "\"%s\" must be an object "
                              "{\"<name>\": {...}}", section);
    const char *name;
    json_t *o;
    json_object_foreach(s, name, o) {
        int rc = check(name, o, err);
        if (rc)
            return rc;
    }
    return 0;
}

int webhook_config_load(const char *path, webhook_config **out,
                        lode_error *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return lode_error_set(err, LODE_EFORMAT, "%s: line %d: %s", path,
                              jerr.line, jerr.text);
    int rc = 0;
    json_t *queue = json_object_get(root, "forward_queue");
    if (!json_is_object(root))
        rc = lode_error_set(err, LODE_EFORMAT, "an object {\"tally\": "
                            "{\"<formId>\": {...}}, \"generic\": "
                            "{\"<name>\": {...}}} is expected");
    else if (present(queue) && !int_in(queue, 1, WEBHOOK_FORWARD_QUEUE_MAX))
        rc = lode_error_set(err, LODE_EFORMAT, "forward_queue must be an "
                            "integer from 1 to %d",
                            WEBHOOK_FORWARD_QUEUE_MAX);
    else if (!(rc = check_section(root, "tally", check_form, err)))
        rc = check_section(root, "generic", check_generic, err);
    webhook_config *c = rc ? NULL : calloc(1, sizeof *c);
    if (!rc && !c)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (rc) {
        json_decref(root);
        return lode_error_prefix(err, "%s", path);
    }
    c->root = root;
    *out = c;
    return 0;
}

void webhook_config_free(webhook_config *c)
{
    if (!c)
        return;
    json_decref(c->root);
    free(c);
}

json_t *webhook_tally_form(const webhook_config *c, const char *form_id)
{
    if (!c)
        return NULL;
    return json_object_get(json_object_get(c->root, "tally"), form_id);
}

json_t *webhook_generic(const webhook_config *c, const char *name)
{
    if (!c)
        return NULL;
    return json_object_get(json_object_get(c->root, "generic"), name);
}

bool webhook_config_forwards(const webhook_config *c)
{
    static const char *const sections[] = {"tally", "generic"};
    for (int i = 0; c && i < 2; i++) {
        const char *name;
        json_t *o;
        json_object_foreach(json_object_get(c->root, sections[i]), name, o)
            if (json_is_string(json_object_get(o, "forward_url")))
                return true;
    }
    return false;
}

size_t webhook_config_forward_queue(const webhook_config *c)
{
    json_t *v = c ? json_object_get(c->root, "forward_queue") : NULL;
    return json_is_integer(v) ? (size_t)json_integer_value(v) : 0;
}

/* ---- signatures -------------------------------------------------------- */

/* HMAC-SHA256(body, secret) into mac (32 bytes); false on failure. */
static bool body_mac(const char *body, size_t len, const char *secret,
                     unsigned char mac[EVP_MAX_MD_SIZE], unsigned *mac_len)
{
    *mac_len = 0;
    return HMAC(EVP_sha256(), secret, (int)strlen(secret),
                (const unsigned char *)body, len, mac, mac_len) != NULL;
}

bool webhook_sign(const char *body, size_t len, const char *secret,
                  char out[WEBHOOK_SIGNATURE_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    return body_mac(body, len, secret, mac, &mac_len) && mac_len == 32 &&
           EVP_EncodeBlock((unsigned char *)out, mac, 32) ==
               WEBHOOK_SIGNATURE_LEN;
}

bool webhook_signature_ok(const char *body, size_t len, const char *secret,
                          const char *signature)
{
    char expected[WEBHOOK_SIGNATURE_LEN + 1];
    if (!signature || !secret || !webhook_sign(body, len, secret, expected))
        return false;
    /* the length of a valid signature is public (44 characters) */
    if (strlen(signature) != WEBHOOK_SIGNATURE_LEN)
        return false;
    return CRYPTO_memcmp(expected, signature, WEBHOOK_SIGNATURE_LEN) == 0;
}

bool webhook_signature_any_ok(const char *body, size_t len,
                              const char *secret, const char *signature)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!signature || !secret || !body_mac(body, len, secret, mac, &mac_len))
        return false;
    if (strncasecmp(signature, "sha256=", 7) == 0)
        signature += 7;
    size_t n = strlen(signature);
    if (n == 2 * (size_t)mac_len) {
        /* hex, either case: compare lowercased (the length is public) */
        char expected[2 * EVP_MAX_MD_SIZE + 1], got[2 * EVP_MAX_MD_SIZE + 1];
        for (unsigned i = 0; i < mac_len; i++)
            snprintf(expected + 2 * i, 3, "%02x", mac[i]);
        for (size_t i = 0; i < n; i++)
            got[i] = (char)tolower((unsigned char)signature[i]);
        return CRYPTO_memcmp(expected, got, n) == 0;
    }
    return webhook_signature_ok(body, len, secret, signature);
}

/* ---- answers to text --------------------------------------------------- */

/* The text of an option id of `field`, or NULL. */
static const char *option_text(json_t *field, const char *id)
{
    size_t i;
    json_t *opt;
    json_array_foreach(json_object_get(field, "options"), i, opt) {
        const char *oid = json_string_value(json_object_get(opt, "id"));
        const char *text = json_string_value(json_object_get(opt, "text"));
        if (oid && text && strcmp(oid, id) == 0)
            return text;
    }
    return NULL;
}

/* Does put_scalar write something for v? */
static bool has_text(json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) ||
           json_is_object(v);
}

/* One answer value (not an array) as text to `f`; false if there is none. */
static bool put_scalar(FILE *f, json_t *field, json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        const char *opt = option_text(field, s);
        fputs(opt ? opt : s, f);
    } else if (json_is_integer(v)) {
        fprintf(f, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%.17g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        fputs(json_is_true(v) ? "true" : "false", f);
    } else if (json_is_object(v)) {
        /* file uploads and the like: their name, else their address */
        const char *s = json_string_value(json_object_get(v, "name"));
        if (!s)
            s = json_string_value(json_object_get(v, "url"));
        if (s) {
            fputs(s, f);
        } else {
            char *dump = json_dumps(v, JSON_COMPACT);
            if (dump)
                fputs(dump, f);
            free(dump);
        }
    } else {
        return false;
    }
    return true;
}

/* The whole answer as text (malloc'd), or NULL when unanswered. */
static char *answer_text(json_t *field, json_t *value)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    bool any = false;
    if (json_is_array(value)) {
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e) {
            if (!has_text(e))
                continue;
            if (any)
                fputs(", ", f);
            any = put_scalar(f, field, e);
        }
    } else {
        any = put_scalar(f, field, value);
    }
    fclose(f);
    if (!any || size == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The answer as a metadata value: scalars keep their JSON type (option
 * ids become their text), a one-element array is unwrapped, anything else
 * becomes its text.  New reference. */
static json_t *answer_metadata(json_t *value, const char *text)
{
    if (json_is_array(value) && json_array_size(value) == 1)
        value = json_array_get(value, 0);
    if (json_is_number(value) || json_is_boolean(value))
        return json_copy(value);
    return json_string(text);
}

static bool field_named(json_t *field, const char *name)
{
    const char *label = json_string_value(json_object_get(field, "label"));
    const char *key = json_string_value(json_object_get(field, "key"));
    return (label && strcmp(label, name) == 0) ||
           (key && strcmp(key, name) == 0);
}

static bool field_listed(json_t *field, json_t *names)
{
    if (!names || json_is_null(names))
        return true;
    size_t i;
    json_t *e;
    json_array_foreach(names, i, e)
        if (field_named(field, json_string_value(e)))
            return true;
    return false;
}

int webhook_tally_answers(json_t *data, json_t *embed_fields, char **text,
                          json_t **metadata, lode_error *err)
{
    *text = NULL;
    *metadata = NULL;
    json_t *fields = json_object_get(data, "fields");
    if (!json_is_array(fields))
        return lode_error_set(err, LODE_EINVAL,
                              "data.fields must be an array");
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    json_t *meta = json_object();
    if (!f || !meta) {
        if (f)
            fclose(f);
        free(buf);
        json_decref(meta);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    int rc = 0;
    size_t i;
    json_t *field;
    json_array_foreach(fields, i, field) {
        json_t *key = json_object_get(field, "key");
        json_t *label = json_object_get(field, "label");
        json_t *options = json_object_get(field, "options");
        if (!json_is_object(field) || !json_is_string(key) ||
            (label && !json_is_null(label) && !json_is_string(label)) ||
            (options && !json_is_null(options) && !json_is_array(options))) {
            rc = lode_error_set(err, LODE_EINVAL, "data.fields[%zu] must be "
                                "an object with a string key (and a string "
                                "label, an array of options)", i);
            break;
        }
        const char *name = json_string_length(label) > 0
                               ? json_string_value(label)
                               : json_string_value(key);
        char *answer = answer_text(field, json_object_get(field, "value"));
        if (!answer)
            continue;  /* unanswered */
        if (json_object_set_new(meta, name,
                                answer_metadata(json_object_get(field, "value"),
                                                answer))) {
            free(answer);   /* an answer silently missing: fail instead */
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            break;
        }
        if (field_listed(field, embed_fields))
            fprintf(f, "%s: %s\n", name, answer);
        free(answer);
    }
    fclose(f);
    if (!rc && size == 0)
        rc = lode_error_set(err, LODE_EINVAL, "the submission has no answers "
                            "to embed");
    if (rc) {
        free(buf);
        json_decref(meta);
        return rc;
    }
    *text = buf;
    *metadata = meta;
    return 0;
}

/* ---- the delivery: store, search, answer, forward ------------------------ */

typedef struct delivery {
    api_docs_state docs;      /* first: its job is the scheduler's */
    api_doc doc;
    json_t *settings;         /* the form's or webhook's, or NULL */
    const char *webhook;      /* "tally" or the generic name */
    const char *form_id;      /* Tally's, or NULL */
    const char *event_id;     /* the document's external id */
    char collection[160];
    const char *catalog;      /* from the configuration, or NULL */
    char *catalog_where;      /* request memory, or NULL */
    char *self_where;         /* request memory: every other document */
    size_t k;
} delivery;

static char *request_strdup(http_request *req, const char *s)
{
    char *copy = http_alloc(req, strlen(s) + 1);
    if (copy)
        strcpy(copy, s);
    return copy;
}

/* The catalog filter from a delivery's metadata: {"key": value} for each
 * filter field with a scalar value, several under $and.  `fields` are
 * Tally's (filter fields name them), NULL for a generic webhook (filter
 * fields name metadata keys).  *out is NULL when none applies (else a new
 * reference).  LODE_ENOMEM rather than a filter with a term missing,
 * which would match catalog entries it should not. */
static int catalog_filter(json_t *filter_fields, json_t *metadata,
                          json_t *fields, json_t **out)
{
    *out = NULL;
    json_t *terms = json_array();
    size_t i;
    json_t *e;
    const char *name;
    /* (field to read, catalog key) pairs */
    json_t *pairs = json_array();
    bool oom = !terms || !pairs;
    if (json_is_array(filter_fields)) {
        json_array_foreach(filter_fields, i, e)
            oom |= json_array_append_new(pairs, json_pack("[O,O]", e, e)) != 0;
    } else if (json_is_object(filter_fields)) {
        json_object_foreach(filter_fields, name, e)
            oom |= json_array_append_new(pairs, json_pack("[s,O]", name, e)) != 0;
    }
    json_array_foreach(pairs, i, e) {
        const char *want = json_string_value(json_array_get(e, 0));
        const char *as = json_string_value(json_array_get(e, 1));
        /* Tally's metadata is keyed by label (or key): find the field's
         * name.  A generic webhook's filter names metadata keys. */
        size_t j;
        json_t *field;
        json_t *value = fields ? NULL : json_object_get(metadata, want);
        json_array_foreach(fields, j, field) {
            if (!field_named(field, want))
                continue;
            json_t *label = json_object_get(field, "label");
            const char *mname = json_string_length(label) > 0
                                    ? json_string_value(label)
                                    : json_string_value(
                                          json_object_get(field, "key"));
            value = mname ? json_object_get(metadata, mname) : NULL;
            if (value)
                break;
        }
        if (value && (json_is_string(value) || json_is_number(value) ||
                      json_is_boolean(value)))
            oom |= json_array_append_new(terms, json_pack("{s:O}", as, value)) != 0;
    }
    json_decref(pairs);
    json_t *where = NULL;
    if (!oom && json_array_size(terms) == 1)
        where = json_incref(json_array_get(terms, 0));
    else if (!oom && json_array_size(terms) > 1)
        oom = !(where = json_pack("{s:O}", "$and", terms));
    json_decref(terms);
    if (oom)
        return LODE_ENOMEM;
    *out = where;
    return 0;
}

static void on_job_done(sched_job *job, void *ctx)
{
    (void)job;
    http_resume(ctx);
}

static void bad_payload(http_request *req, const char *msg)
{
    http_respond_error(req, 400, "invalid_request_error", "invalid_payload",
                       "%s", msg);
}

static void out_of_memory(http_request *req)
{
    http_respond_error(req, 500, "server_error", "out_of_memory",
                       "out of memory");
}

/* Search `q` and list the best k documents (a document's best chunk),
 * each with its metadata; store_lock held.  New reference in *out. */
static int search_documents(store *s, store_query *q, size_t k, json_t **out,
                            lode_error *err)
{
    store_result *results = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = store_search(s, q, &results, &n, err);
    if (rc)
        return rc;
    json_t *list = json_array();
    int64_t *seen = calloc(n ? n : 1, sizeof *seen);
    size_t n_seen = 0;
    /* a result or its metadata lost to a failed allocation would make
     * the list silently wrong: fail instead */
    bool oom = !list || !seen;
    for (size_t i = 0; i < n && json_array_size(list) < k && !oom; i++) {
        bool dup = false;
        for (size_t j = 0; j < n_seen && !dup; j++)
            dup = seen[j] == results[i].document_id;
        if (dup)
            continue;
        seen[n_seen++] = results[i].document_id;
        store_document *doc = NULL;
        json_t *meta = NULL;
        rc = store_get_document(s, results[i].document_id, &doc, err);
        if (rc)
            break;
        if (doc->metadata_json && !(meta = json_loads(doc->metadata_json, 0, NULL)))
            oom = true;   /* stored metadata is valid JSON */
        store_document_free(doc);
        oom |= json_array_append_new(
                   list, json_pack("{s:s?,s:I,s:s?,s:f,s:s,s:o?}", "id",
                                   results[i].external_id, "document_id",
                                   (json_int_t)results[i].document_id, "title",
                                   results[i].title, "score",
                                   (double)results[i].score, "text",
                                   results[i].text, "metadata", meta)) != 0;
    }
    free(seen);
    store_results_free(results, n);
    if (!rc && oom)
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory listing the results");
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* The answer's identification, shared by every answer (and so by the
 * forwarded body).  New reference. */
static json_t *answer_head(const delivery *st, bool duplicate,
                           int64_t doc_id)
{
    json_t *o = json_pack("{s:b,s:b,s:s,s:s,s:s,s:I}", "ok", 1,
                          "duplicate", duplicate, "webhook", st->webhook,
                          "collection", st->collection, "event_id",
                          st->event_id, "document_id", (json_int_t)doc_id);
    if (o && st->form_id && json_object_set_new(o, "form_id", json_string(st->form_id))) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* Answer 200 with `answer` or, when memory runs out making its text (or
 * answer is NULL), a short one made without allocating: the delivery is
 * stored (or known already), and the answer must not say otherwise. */
static void respond_answer(http_request *req, const delivery *st, json_t *answer,
                           bool duplicate, int64_t doc_id)
{
    /* the webhook's and collection's names are plain (validated) */
    char event[1024], form[256], fallback[1600];
    http_json_quote(st->event_id, event, sizeof event);
    http_json_quote(st->form_id, form, sizeof form);
    snprintf(fallback, sizeof fallback,
             "{\"ok\":true,\"duplicate\":%s,\"webhook\":\"%s\",\"collection\":\"%s\","
             "\"event_id\":%s,\"document_id\":%lld,%s%s%s\"answer_truncated\":true}",
             duplicate ? "true" : "false", st->webhook, st->collection, event,
             (long long)doc_id, st->form_id ? "\"form_id\":" : "", st->form_id ? form : "",
             st->form_id ? "," : "");
    http_respond_json_or(req, 200, answer, fallback);
}

static void respond_head(http_request *req, const delivery *st, bool duplicate,
                         int64_t doc_id)
{
    respond_answer(req, st, answer_head(st, duplicate, doc_id), duplicate, doc_id);
}

/* Ids go into a header and a log line only when they are short and
 * printable (they come from the sender). */
static bool printable(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
            return false;
    return n <= 200;
}

/* Append a formatted line to lines[*n]; false when out of memory. */
__attribute__((format(printf, 3, 4)))
static bool add_line(char **lines, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int rc = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return false;
    lines[(*n)++] = line;
    return true;
}

/* Queue the answer for the delivery's forward_url, if it has one.  The
 * forwarder copies what it needs; its errors are its to count and log.
 * (Out of memory here, nothing is queued: the answer itself is likely to
 * fail too.) */
static void forward_answer(api *a, const delivery *st, json_t *answer)
{
    const char *url = json_string_value(json_object_get(st->settings,
                                                        "forward_url"));
    if (!url || !a->forwarder)
        return;
    char id[300], label[400];
    if (printable(st->event_id)) {
        snprintf(id, sizeof id, "%s", st->event_id);
    } else {
        char hex[65];
        store_sha256_hex(st->event_id, strlen(st->event_id), hex);
        snprintf(id, sizeof id, "sha256:%s", hex);
    }
    if (st->form_id)
        snprintf(label, sizeof label, "%s form %s event %s", st->webhook,
                 st->form_id, id);
    else
        snprintf(label, sizeof label, "webhook %s event %s", st->webhook,
                 id);
    json_t *headers = json_object_get(st->settings, "forward_headers");
    size_t n = 0;
    char **lines = calloc(json_object_size(headers) + 2, sizeof *lines);
    char *body = json_dumps(answer, JSON_COMPACT);
    bool ok = lines && body;
    const char *name;
    json_t *v;
    json_object_foreach(headers, name, v)
        ok = ok && add_line(lines, &n, "%s: %s", name, json_string_value(v));
    /* the receiver's handle on an at-least-once delivery */
    ok = ok && add_line(lines, &n, "Idempotency-Key: %s:%s", st->webhook, id);
    ok = ok && add_line(lines, &n, "X-Lode-Webhook: %s", st->webhook);
    json_t *timeout = json_object_get(st->settings, "forward_timeout_ms");
    json_t *retries = json_object_get(st->settings, "forward_retries");
    forward_request r = {
        .url = url,
        .body = body,
        .len = body ? strlen(body) : 0,
        .headers = (const char *const *)lines,
        .n_headers = n,
        .timeout_ms = json_is_integer(timeout)
                          ? (long)json_integer_value(timeout) : 0,
        .retries = json_is_integer(retries)
                       ? (int)json_integer_value(retries) : -1,
        .label = label,
    };
    if (ok)
        forward_submit(a->forwarder, &r);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(body);
}

/* Resumed with the vectors: write the document, search, answer. */
static void delivery_answer(http_request *req, api *a, delivery *st)
{
    sched_job *job = &st->docs.job;
    if (job->rc) {
        api_respond_lode_error(req, a, &job->err);
        return;
    }
    sched_status ss;
    sched_get_status(a->sched, &ss);
    char mid[300];
    snprintf(mid, sizeof mid, "%s:%s", job->model_name, ss.type);
    /* The delivery's vector: the normalised mean of its chunks'. */
    int dim = job->dim;
    float *query = calloc((size_t)dim, sizeof *query);
    if (!query) {
        out_of_memory(req);
        return;
    }
    for (int c = 0; c < job->n; c++)
        for (int d = 0; d < dim; d++)
            query[d] += job->vectors[(size_t)c * (size_t)dim + (size_t)d];
    double norm = 0;
    for (int d = 0; d < dim; d++)
        norm += (double)query[d] * query[d];
    norm = sqrt(norm);
    for (int d = 0; norm > 0 && d < dim; d++)
        query[d] = (float)(query[d] / norm);

    store *s = api_store_acquire(req, a);
    if (!s) {
        free(query);
        return;
    }
    lode_error err = {0};
    int64_t doc_id = 0;
    int rc = store_find_document(s, st->collection, NULL, st->event_id,
                                 &doc_id, NULL, &err);
    if (rc == 0) {  /* a redelivery raced this one and won */
        api_store_release(a);
        free(query);
        respond_head(req, st, true, doc_id);
        return;
    }
    json_t *written = rc == LODE_ENOTFOUND ? json_array() : NULL;
    if (written)
        rc = api_store_documents(s, &st->docs, mid, written, &err);
    else if (rc == LODE_ENOTFOUND)
        rc = lode_error_set(&err, LODE_ENOMEM, "out of memory");
    json_t *similar = NULL, *catalog = NULL;
    /* Once the delivery is stored, a failed search is reported in the
     * answer, not as a failure the sender would retry. */
    char similar_error[LODE_ERROR_MAX] = "", catalog_error[LODE_ERROR_MAX] = "";
    if (!rc) {
        doc_id = json_integer_value(
            json_object_get(json_array_get(written, 0), "document_id"));
        store_query q = {
            .collection = st->collection,
            .model_id = mid,
            .vector = query,
            .dimension = dim,
            .k = st->k * 4 + 4,  /* several chunks may share a document */
            .where_json = st->self_where,
        };
        lode_error serr = {0};
        if (search_documents(s, &q, st->k, &similar, &serr))
            snprintf(similar_error, sizeof similar_error, "%s",
                     serr.message[0] ? serr.message : lode_strerror(serr.code));
    }
    if (!rc && st->catalog) {
        store_query q = {
            .collection = st->catalog,
            .model_id = mid,
            .vector = query,
            .dimension = dim,
            .k = st->k * 4 + 4,
            .where_json = st->catalog_where,
        };
        lode_error cerr = {0};
        if (search_documents(s, &q, st->k, &catalog, &cerr))
            snprintf(catalog_error, sizeof catalog_error, "%s",
                     cerr.message[0] ? cerr.message : lode_strerror(cerr.code));
    }
    api_refresh_stats(a);
    api_store_release(a);
    free(query);
    json_decref(written);
    if (rc) {   /* nothing was stored */
        api_respond_lode_error(req, a, &err);
        return;
    }
    /* Stored: every part of the answer or, out of memory, the short one. */
    json_t *answer = answer_head(st, false, doc_id);
    bool ok = answer != NULL;
    ok = !json_object_set_new(answer, "similar", similar ? similar : json_array()) && ok;
    if (similar_error[0])
        ok = !json_object_set_new(answer, "similar_error", json_string(similar_error)) && ok;
    if (st->catalog) {
        json_t *where = st->catalog_where
                            ? json_loads(st->catalog_where, 0, NULL) : NULL;
        ok = ok && (where || !st->catalog_where);
        json_t *c = json_pack("{s:s,s:o?,s:o}", "collection", st->catalog,
                              "where", where, "results",
                              catalog ? catalog : json_array());
        if (c && catalog_error[0])
            ok = !json_object_set_new(c, "error", json_string(catalog_error)) && ok;
        ok = !json_object_set_new(answer, "catalog", c) && ok;
    } else {
        json_decref(catalog);
    }
    if (!ok) {
        json_decref(answer);
        answer = NULL;
    }
    if (answer)
        forward_answer(a, st, answer);
    respond_answer(req, st, answer, false, doc_id);
}

/* A new delivery state for the request (zeroed, freed with it), or NULL
 * after answering 500. */
static delivery *delivery_new(http_request *req)
{
    delivery *st = http_alloc(req, sizeof *st);
    if (!st) {
        out_of_memory(req);
        return NULL;
    }
    memset(st, 0, sizeof *st);
    http_set_state(req, st, api_docs_state_free);
    return st;
}

/* A document title: at most WEBHOOK_TITLE_MAX bytes, cut at a character
 * boundary (the input is valid UTF-8: a byte cut could make the stored
 * title, and every JSON answer carrying it, invalid). */
#define WEBHOOK_TITLE_MAX 511

static char *request_title(http_request *req, const char *title)
{
    size_t len = strlen(title);
    if (len > WEBHOOK_TITLE_MAX) {
        len = WEBHOOK_TITLE_MAX;
        while (len > 0 && ((unsigned char)title[len] & 0xC0) == 0x80)
            len--;                          /* title[len] starts a char */
    }
    char *copy = http_alloc(req, len + 1);
    if (copy) {
        memcpy(copy, title, len);
        copy[len] = '\0';
    }
    return copy;
}

/* The second half of both handlers, once the delivery is read: st has its
 * settings, webhook, form_id, event_id and collection.  Takes `text`
 * (malloc'd), `metadata` and `where` (references, where may be NULL).
 * Answers a redelivery at once; else submits the text to the scheduler
 * and the request resumes in delivery_answer. */
static void delivery_submit(http_request *req, api *a, delivery *st,
                            char *text, json_t *metadata, json_t *where,
                            const char *title)
{
    lode_error err = {0};
    json_t *k = json_object_get(st->settings, "k");
    st->k = json_is_integer(k) ? (size_t)json_integer_value(k)
                               : WEBHOOK_DEFAULT_K;
    if (st->k > (size_t)a->cfg.max_k)
        st->k = (size_t)a->cfg.max_k;
    st->catalog = json_string_value(json_object_get(st->settings,
                                                    "catalog"));
    char *meta_json = json_dumps(metadata, JSON_COMPACT);
    char *where_json = where ? json_dumps(where, JSON_COMPACT) : NULL;
    json_t *self = json_pack("{s:{s:s}}", "external_id", "$ne",
                             st->event_id);
    char *self_json = self ? json_dumps(self, JSON_COMPACT) : NULL;
    json_decref(self);
    st->doc.metadata_json = meta_json ? request_strdup(req, meta_json) : NULL;
    st->catalog_where = where_json ? request_strdup(req, where_json) : NULL;
    st->self_where = self_json ? request_strdup(req, self_json) : NULL;
    st->doc.text = request_strdup(req, text);
    st->doc.title = request_title(req, title);
    bool ok = st->doc.metadata_json && st->self_where && st->doc.text &&
              st->doc.title && (!where || st->catalog_where);
    free(meta_json);
    free(where_json);
    free(self_json);
    free(text);
    json_decref(metadata);
    json_decref(where);
    if (!ok) {
        out_of_memory(req);
        return;
    }
    if (st->catalog_where) {  /* refuse a filter the store would refuse */
        filter *f = NULL;
        if (filter_parse(st->catalog_where, &f, &err)) {
            if (err.code == LODE_ENOMEM)
                out_of_memory(req);
            else
                bad_payload(req, err.message);
            return;
        }
        filter_free(f);
    }
    st->doc.id = st->event_id;
    st->doc.len = strlen(st->doc.text);
    store_sha256_hex(st->doc.text, st->doc.len, st->doc.sha256);
    st->docs.a = a;
    st->docs.collection = st->collection;
    st->docs.docs = &st->doc;
    st->docs.n_docs = 1;

    /* A redelivery is answered without embedding anything. */
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    int64_t doc_id = 0;
    int rc = store_find_document(s, st->collection, NULL, st->event_id,
                                 &doc_id, NULL, &err);
    api_store_release(a);
    if (rc == 0) {
        respond_head(req, st, true, doc_id);
        return;
    }
    if (rc != LODE_ENOTFOUND) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    sched_job *job = &st->docs.job;
    job->prepare = api_chunk_documents;
    job->max_tokens = a->cfg.max_tokens;
    job->deadline_ms = sched_now_ms() + a->cfg.load_wait_ms;
    job->done = on_job_done;
    job->ctx = req;
    http_suspend(req);
    sched_submit(a->sched, job);
}

/* ---- POST /webhook/tally ------------------------------------------------- */

void api_webhook_tally(http_request *req, void *app)
{
    api *a = app;
    delivery *st = http_state(req);
    if (st) {
        delivery_answer(req, a, st);
        return;
    }
    json_t *body = http_json_body(req);
    if (!body)
        return;
    json_t *data = json_object_get(body, "data");
    const char *form_id = json_string_value(json_object_get(data, "formId"));
    if (!json_is_object(data) || !form_id ||
        !webhook_name_ok(form_id)) {
        bad_payload(req, "a Tally payload needs data.formId: 1 to 100 "
                         "letters, digits, '.', '_' or '-'");
        return;
    }
    json_t *form = webhook_tally_form(a->webhooks, form_id);
    const char *secret = json_string_value(json_object_get(form, "secret"));
    if (secret && *secret) {
        size_t len = 0;
        const char *raw = http_body(req, &len);
        const char *sig = http_header(req, "Tally-Signature");
        if (!webhook_signature_ok(raw, len, secret, sig)) {
            http_respond_error(req, 401, "authentication_error",
                               "invalid_signature",
                               sig ? "the Tally-Signature header does not "
                                     "match the body and the form's secret"
                                   : "this form needs a Tally-Signature "
                                     "header");
            return;
        }
    } else if (!api_authorize(req, a, API_WRITE)) {
        return;  /* no secret: it is a write like any other */
    }
    json_t *event_id = json_object_get(body, "eventId");
    const char *event_type = json_string_value(json_object_get(body,
                                                               "eventType"));
    if (!json_is_string(event_id) || json_string_length(event_id) == 0 ||
        strlen(json_string_value(event_id)) != json_string_length(event_id)) {
        bad_payload(req, "eventId must be a non-empty string");
        return;
    }
    if (!event_type) {
        bad_payload(req, "eventType must be a string");
        return;
    }
    if (strcmp(event_type, "FORM_RESPONSE") != 0) {
        /* acknowledged, so Tally does not retry an event we do not use */
        http_respond_json(req, 200, json_pack("{s:b,s:b,s:s}", "ok", 1,
                                              "ignored", 1, "eventType",
                                              event_type));
        return;
    }
    char *text = NULL;
    json_t *metadata = NULL;
    lode_error err = {0};
    if (webhook_tally_answers(data, json_object_get(form, "embed_fields"),
                              &text, &metadata, &err)) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    st = delivery_new(req);
    if (!st) {
        free(text);
        json_decref(metadata);
        return;
    }
    st->settings = form;
    st->webhook = "tally";
    st->form_id = form_id;
    st->event_id = json_string_value(event_id);
    snprintf(st->collection, sizeof st->collection, "tally-%s", form_id);

    /* metadata: the answers plus where they came from */
    json_t *ids = json_pack("{s:s?,s:s?,s:s?,s:s?}", "tally_response_id",
                            json_string_value(json_object_get(data,
                                                              "responseId")),
                            "tally_respondent_id",
                            json_string_value(json_object_get(
                                data, "respondentId")),
                            "tally_form_id", form_id, "tally_created_at",
                            json_string_value(json_object_get(data,
                                                              "createdAt")));
    json_t *where = NULL;
    int rc = catalog_filter(json_object_get(form, "filter_fields"), metadata,
                            json_object_get(data, "fields"), &where);
    if (!rc && (!ids || json_object_update_missing(metadata, ids)))
        rc = LODE_ENOMEM;
    json_decref(ids);
    if (rc) {   /* no metadata or filter term silently left out */
        json_decref(where);
        json_decref(metadata);
        free(text);
        out_of_memory(req);
        return;
    }
    const char *form_name = json_string_value(json_object_get(data,
                                                              "formName"));
    const char *response_id = json_string_value(json_object_get(data,
                                                                "responseId"));
    char *title = NULL;
    if (asprintf(&title, "%s%s%s", form_name ? form_name : form_id,
                 response_id ? " " : "", response_id ? response_id : "") < 0)
        title = NULL;
    delivery_submit(req, a, st, text, metadata, where, title ? title : "");
    free(title);
}

/* ---- POST /webhook/{name} ------------------------------------------------ */

void api_webhook_generic(http_request *req, void *app)
{
    api *a = app;
    delivery *st = http_state(req);
    if (st) {
        delivery_answer(req, a, st);
        return;
    }
    const char *name = http_param(req, 0);
    json_t *hook = name ? webhook_generic(a->webhooks, name) : NULL;
    if (!hook) {
        http_respond_error(req, 404, "not_found_error", "unknown_webhook",
                           "no webhook '%s' is configured (the \"generic\" "
                           "section of --webhooks)", name ? name : "");
        return;
    }
    size_t len = 0;
    const char *raw = http_body(req, &len);
    const char *secret = json_string_value(json_object_get(hook, "secret"));
    if (secret && *secret) {
        const char *header = json_string_value(
            json_object_get(hook, "signature_header"));
        if (!header)
            header = WEBHOOK_DEFAULT_SIGNATURE_HEADER;
        const char *sig = http_header(req, header);
        if (!webhook_signature_any_ok(raw, len, secret, sig)) {
            http_respond_error(req, 401, "authentication_error",
                               "invalid_signature",
                               sig ? "the %s header does not match the body "
                                     "and the webhook's secret"
                                   : "this webhook needs a %s header "
                                     "(HMAC-SHA256 of the body, hex or "
                                     "base64)", header);
            return;
        }
    } else if (!api_authorize(req, a, API_WRITE)) {
        return;  /* no secret: it is a write like any other */
    }
    json_t *body = http_json_body(req);  /* an object, or answered 400 */
    if (!body)
        return;
    char *id = NULL, *text = NULL, *t = NULL;
    json_t *metadata = NULL;
    lode_error err = {0};
    if (webhook_generic_id(hook, body, raw, len, &id, &err) ||
        webhook_generic_fields(hook, body, &text, &metadata, &err) ||
        webhook_generic_title(hook, body, name, id, &t, &err)) {
        free(id);
        free(text);
        json_decref(metadata);
        api_respond_lode_error(req, a, &err);
        return;
    }
    st = delivery_new(req);
    const char *event_id = st ? request_strdup(req, id) : NULL;
    free(id);
    if (!event_id) {
        if (st)
            out_of_memory(req);
        free(text);
        free(t);
        json_decref(metadata);
        return;
    }
    st->settings = hook;
    st->webhook = name;
    st->event_id = event_id;
    const char *coll = json_string_value(json_object_get(hook, "collection"));
    if (coll)
        snprintf(st->collection, sizeof st->collection, "%s", coll);
    else
        snprintf(st->collection, sizeof st->collection, "webhook-%s", name);
    json_t *where = NULL;
    json_t *from = json_pack("{s:s}", "webhook", name);
    if (catalog_filter(json_object_get(hook, "filter_fields"), metadata, NULL, &where) ||
        !from || json_object_update_missing(metadata, from)) {
        json_decref(from);
        json_decref(where);
        json_decref(metadata);
        free(text);
        free(t);
        out_of_memory(req);
        return;
    }
    json_decref(from);
    delivery_submit(req, a, st, text, metadata, where, t);
    free(t);
}
