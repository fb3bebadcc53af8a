/* webhook.c - POST /webhook/tally (see webhook.h for the configuration).
 *
 * A delivery is handled in the two steps of every write in api_store.c:
 * validate and submit the submission's text to the scheduler through the
 * documents path (chunked and embedded like any document), then, resumed
 * with the vectors, take store_lock once to write it and run both
 * searches.  Holding the lock across the write and the searches means the
 * "earlier submissions" are exactly the other documents of the collection.
 *
 * Order of the checks: the body must be JSON naming a form (400) before
 * the form's secret is known, then the signature (401), then the rest of
 * the payload (400).  The signature is over the raw body bytes, as Tally
 * sends them.  The duplicate check runs before embedding (cheap answer to
 * a redelivery) and again under the lock before writing (two deliveries
 * racing), so an event is stored once. */
#include "webhook.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "api.h"
#include "filter.h"

#define WEBHOOK_DEFAULT_K 5
#define WEBHOOK_FORM_ID_MAX 100

struct webhook_config {
    json_t *root;  /* validated; read-only after load */
};

/* ---- configuration ----------------------------------------------------- */

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

static int check_form(const char *form_id, json_t *form, lode_error *err)
{
    if (!json_is_object(form))
        return lode_error_set(err, LODE_EFORMAT, "tally.%s must be an object",
                              form_id);
    json_t *v = json_object_get(form, "secret");
    if (v && !json_is_null(v) && !json_is_string(v))
        return lode_error_set(err, LODE_EFORMAT,
                              "tally.%s.secret must be a string", form_id);
    v = json_object_get(form, "embed_fields");
    if (v && !json_is_null(v) && !string_array(v))
        return lode_error_set(err, LODE_EFORMAT, "tally.%s.embed_fields must "
                              "be an array of strings", form_id);
    v = json_object_get(form, "filter_fields");
    if (v && !json_is_null(v) && !string_array(v)) {
        const char *key;
        json_t *e;
        bool ok = json_is_object(v);
        json_object_foreach(v, key, e)
            ok = ok && json_is_string(e);
        if (!ok)
            return lode_error_set(err, LODE_EFORMAT, "tally.%s.filter_fields "
                                  "must be an array of strings or an object "
                                  "of strings", form_id);
    }
    v = json_object_get(form, "catalog");
    if (v && !json_is_null(v) && !json_is_string(v))
        return lode_error_set(err, LODE_EFORMAT,
                              "tally.%s.catalog must be a string", form_id);
    v = json_object_get(form, "k");
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 ||
         json_integer_value(v) > 1000))
        return lode_error_set(err, LODE_EFORMAT,
                              "tally.%s.k must be an integer from 1 to 1000",
                              form_id);
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
    json_t *tally = json_object_get(root, "tally");
    if (!json_is_object(root) ||
        (tally && !json_is_null(tally) && !json_is_object(tally))) {
        rc = lode_error_set(err, LODE_EFORMAT, "an object {\"tally\": "
                            "{\"<formId>\": {...}}} is expected");
    } else if (tally) {
        const char *form_id;
        json_t *form;
        json_object_foreach(tally, form_id, form)
            if ((rc = check_form(form_id, form, err)))
                break;
    }
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

/* ---- signature --------------------------------------------------------- */

bool webhook_signature_ok(const char *body, size_t len, const char *secret,
                          const char *signature)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!signature || !secret)
        return false;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret),
              (const unsigned char *)body, len, mac, &mac_len))
        return false;
    unsigned char expected[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    int n = EVP_EncodeBlock(expected, mac, (int)mac_len);
    /* the length of a valid signature is public (44 characters) */
    if (n <= 0 || strlen(signature) != (size_t)n)
        return false;
    return CRYPTO_memcmp(expected, signature, (size_t)n) == 0;
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
        json_object_set_new(meta, name,
                            answer_metadata(json_object_get(field, "value"),
                                            answer));
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

/* ---- the handler -------------------------------------------------------- */

typedef struct tally_state {
    api_docs_state docs;      /* first: its job is the scheduler's */
    api_doc doc;
    const char *event_id;
    char collection[160];
    const char *catalog;      /* from the configuration, or NULL */
    char *catalog_where;      /* request memory, or NULL */
    char *self_where;         /* request memory: every other document */
    size_t k;
} tally_state;

static char *request_strdup(http_request *req, const char *s)
{
    char *copy = http_alloc(req, strlen(s) + 1);
    if (copy)
        strcpy(copy, s);
    return copy;
}

/* The catalog filter from the submission's answers: {"key": value} for
 * each filter field answered with a scalar, several under $and.  NULL
 * when none applies.  New reference. */
static json_t *catalog_filter(json_t *filter_fields, json_t *metadata,
                              json_t *fields)
{
    json_t *terms = json_array();
    size_t i;
    json_t *e;
    const char *name;
    /* (field to read, catalog key) pairs */
    json_t *pairs = json_array();
    if (json_is_array(filter_fields)) {
        json_array_foreach(filter_fields, i, e)
            json_array_append_new(pairs, json_pack("[O,O]", e, e));
    } else if (json_is_object(filter_fields)) {
        json_object_foreach(filter_fields, name, e)
            json_array_append_new(pairs, json_pack("[s,O]", name, e));
    }
    json_array_foreach(pairs, i, e) {
        const char *want = json_string_value(json_array_get(e, 0));
        const char *as = json_string_value(json_array_get(e, 1));
        /* the metadata is keyed by label (or key): find the field's name */
        size_t j;
        json_t *field;
        json_t *value = NULL;
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
            json_array_append_new(terms, json_pack("{s:O}", as, value));
    }
    json_decref(pairs);
    json_t *where = NULL;
    if (json_array_size(terms) == 1)
        where = json_incref(json_array_get(terms, 0));
    else if (json_array_size(terms) > 1)
        where = json_pack("{s:O}", "$and", terms);
    json_decref(terms);
    return where;
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
    for (size_t i = 0; i < n && json_array_size(list) < k && seen; i++) {
        bool dup = false;
        for (size_t j = 0; j < n_seen && !dup; j++)
            dup = seen[j] == results[i].document_id;
        if (dup)
            continue;
        seen[n_seen++] = results[i].document_id;
        store_document *doc = NULL;
        json_t *meta = NULL;
        if (store_get_document(s, results[i].document_id, &doc, NULL) == 0 &&
            doc->metadata_json)
            meta = json_loads(doc->metadata_json, 0, NULL);
        store_document_free(doc);
        json_array_append_new(
            list, json_pack("{s:s?,s:I,s:s?,s:f,s:s,s:o?}", "id",
                            results[i].external_id, "document_id",
                            (json_int_t)results[i].document_id, "title",
                            results[i].title, "score",
                            (double)results[i].score, "text",
                            results[i].text, "metadata", meta));
    }
    free(seen);
    store_results_free(results, n);
    *out = list;
    return 0;
}

static void tally_answer(http_request *req, api *a, tally_state *st)
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
    /* The submission's vector: the normalised mean of its chunks'. */
    int dim = job->dim;
    float *query = calloc((size_t)dim, sizeof *query);
    if (!query) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
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
        http_respond_json(req, 200, json_pack(
            "{s:b,s:b,s:s,s:s,s:I}", "ok", 1, "duplicate", 1, "collection",
            st->collection, "event_id", st->event_id, "document_id",
            (json_int_t)doc_id));
        return;
    }
    json_t *written = json_array();
    rc = api_store_documents(s, &st->docs, mid, written, &err);
    json_t *similar = NULL, *catalog = NULL;
    char catalog_error[LODE_ERROR_MAX] = "";
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
        rc = search_documents(s, &q, st->k, &similar, &err);
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
        /* The submission is stored: a catalog problem is reported in the
         * answer, not as a failure Tally would retry. */
        if (search_documents(s, &q, st->k, &catalog, &cerr))
            snprintf(catalog_error, sizeof catalog_error, "%s",
                     cerr.message[0] ? cerr.message : lode_strerror(cerr.code));
    }
    api_refresh_stats(a);
    api_store_release(a);
    free(query);
    json_decref(written);
    if (rc) {
        json_decref(similar);
        api_respond_lode_error(req, a, &err);
        return;
    }
    json_t *answer = json_pack("{s:b,s:b,s:s,s:s,s:I,s:o}", "ok", 1,
                               "duplicate", 0, "collection", st->collection,
                               "event_id", st->event_id, "document_id",
                               (json_int_t)doc_id, "similar", similar);
    if (st->catalog) {
        json_t *where = st->catalog_where
                            ? json_loads(st->catalog_where, 0, NULL) : NULL;
        json_t *c = json_pack("{s:s,s:o?,s:o}", "collection", st->catalog,
                              "where", where, "results",
                              catalog ? catalog : json_array());
        if (catalog_error[0])
            json_object_set_new(c, "error", json_string(catalog_error));
        json_object_set_new(answer, "catalog", c);
    }
    http_respond_json(req, 200, answer);
}

/* Is this usable in a collection name: 1..100 of [A-Za-z0-9._-]? */
static bool valid_form_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && !strchr("._-", s[n]))
            return false;
    return n > 0 && n <= WEBHOOK_FORM_ID_MAX;
}

void api_webhook_tally(http_request *req, void *app)
{
    api *a = app;
    tally_state *st = http_state(req);
    if (st) {
        tally_answer(req, a, st);
        return;
    }
    json_t *body = http_json_body(req);
    if (!body)
        return;
    json_t *data = json_object_get(body, "data");
    const char *form_id = json_string_value(json_object_get(data, "formId"));
    if (!json_is_object(data) || !form_id || !valid_form_id(form_id)) {
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
    st = http_alloc(req, sizeof *st);
    char *doc_text = st ? request_strdup(req, text) : NULL;
    free(text);
    if (!doc_text) {
        json_decref(metadata);
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return;
    }
    memset(st, 0, sizeof *st);
    http_set_state(req, st, api_docs_state_free);
    st->event_id = json_string_value(event_id);
    snprintf(st->collection, sizeof st->collection, "tally-%s", form_id);
    json_t *k = json_object_get(form, "k");
    st->k = k ? (size_t)json_integer_value(k) : WEBHOOK_DEFAULT_K;
    if (st->k > (size_t)a->cfg.max_k)
        st->k = (size_t)a->cfg.max_k;
    st->catalog = json_string_value(json_object_get(form, "catalog"));

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
    json_t *where = catalog_filter(json_object_get(form, "filter_fields"),
                                   metadata, json_object_get(data, "fields"));
    json_object_update_missing(metadata, ids);
    json_decref(ids);
    char *meta_json = json_dumps(metadata, JSON_COMPACT);
    json_decref(metadata);
    char *where_json = where ? json_dumps(where, JSON_COMPACT) : NULL;
    json_decref(where);
    json_t *self = json_pack("{s:{s:s}}", "external_id", "$ne",
                             st->event_id);
    char *self_json = self ? json_dumps(self, JSON_COMPACT) : NULL;
    json_decref(self);
    st->doc.metadata_json = meta_json ? request_strdup(req, meta_json) : NULL;
    st->catalog_where = where_json ? request_strdup(req, where_json) : NULL;
    st->self_where = self_json ? request_strdup(req, self_json) : NULL;
    bool ok = st->doc.metadata_json && st->self_where &&
              (!where || st->catalog_where);
    free(meta_json);
    free(where_json);
    free(self_json);
    if (!ok) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return;
    }
    if (st->catalog_where) {  /* refuse a filter the store would refuse */
        filter *f = NULL;
        if (filter_parse(st->catalog_where, &f, &err)) {
            bad_payload(req, err.message);
            return;
        }
        filter_free(f);
    }
    const char *form_name = json_string_value(json_object_get(data,
                                                              "formName"));
    const char *response_id = json_string_value(json_object_get(data,
                                                                "responseId"));
    char title[512];
    snprintf(title, sizeof title, "%s%s%s", form_name ? form_name : form_id,
             response_id ? " " : "", response_id ? response_id : "");
    st->doc.id = st->event_id;
    st->doc.title = request_strdup(req, title);
    st->doc.text = doc_text;
    st->doc.len = strlen(doc_text);
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
        http_respond_json(req, 200, json_pack(
            "{s:b,s:b,s:s,s:s,s:I}", "ok", 1, "duplicate", 1, "collection",
            st->collection, "event_id", st->event_id, "document_id",
            (json_int_t)doc_id));
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
