/* api_feedback.c - thumbs up and down on chat answers: POST /feedback
 * records one (open to whoever may chat: the read class), GET /feedback
 * exports them (the API key: they hold users' questions), as JSON or, with
 * ?format=jsonl, one object per line for a data pipeline.  Stored by the
 * store (store_feedback.c), one row per answer id.
 *
 * Texts are capped (a rating is not a place to upload documents) and must
 * be strings without NUL; the answer id is the "id" of a /chat answer,
 * though any short id of [A-Za-z0-9._:-] is taken, so other front ends
 * can use it too. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

#define FEEDBACK_ID_MAX 128
#define FEEDBACK_COMMENT_MAX 2000    /* characters */
#define FEEDBACK_TEXT_MAX 20000      /* query and answer, characters */
#define FEEDBACK_EXPORT_DEFAULT 1000
#define FEEDBACK_EXPORT_MAX 10000

static bool valid_answer_id(const char *s, size_t len)
{
    if (len == 0 || len > FEEDBACK_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("._:-", c)))
            return false;
    }
    return true;
}

/* Characters (code points) of a UTF-8 string. */
static size_t chars_of(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* An optional text field: absent or null gives NULL; else a string of at
 * most max characters without NUL.  Answers 400 and returns false. */
static bool opt_text(http_request *req, json_t *body, const char *key,
                     size_t max, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        http_respond_error(req, 400, "invalid_request_error",
                           "invalid_feedback",
                           "'%s' must be a string without NUL", key);
        return false;
    }
    size_t n = chars_of(json_string_value(v), json_string_length(v));
    if (n > max) {
        http_respond_error(req, 400, "invalid_request_error",
                           "limit_exceeded",
                           "'%s' is %zu characters; the limit is %zu", key, n,
                           max);
        return false;
    }
    if (json_string_length(v) > 0)
        *out = json_string_value(v);
    return true;
}

/* "up" / "down", 1 / -1, true / false. */
static int parse_rating(json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "up") == 0)
            return 1;
        if (strcmp(s, "down") == 0)
            return -1;
    } else if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i == 1 || i == -1)
            return (int)i;
    } else if (json_is_boolean(v)) {
        return json_is_true(v) ? 1 : -1;
    }
    return 0;
}

/* POST /feedback {answer_id, rating, comment?, query?, answer?,
 * collection?} */
void api_feedback_add(http_request *req, void *app)
{
    api *a = app;
    json_t *body = http_json_body(req);
    if (!body)
        return;
    json_t *aid = json_object_get(body, "answer_id");
    if (!aid)
        aid = json_object_get(body, "id");
    if (!json_is_string(aid) ||
        !valid_answer_id(json_string_value(aid), json_string_length(aid))) {
        http_respond_error(req, 400, "invalid_request_error",
                           "invalid_answer_id",
                           "'answer_id' must be the id of an answer: 1 to %d "
                           "letters, digits, '.', '_', ':' or '-'",
                           FEEDBACK_ID_MAX);
        return;
    }
    int rating = parse_rating(json_object_get(body, "rating"));
    if (!rating) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_rating",
                           "'rating' must be \"up\" or \"down\" (or 1, -1)");
        return;
    }
    store_feedback fb = {.answer_id = (char *)json_string_value(aid),
                         .rating = rating};
    const char *comment, *query, *answer, *coll;
    if (!opt_text(req, body, "comment", FEEDBACK_COMMENT_MAX, &comment) ||
        !opt_text(req, body, "query", FEEDBACK_TEXT_MAX, &query) ||
        !opt_text(req, body, "answer", FEEDBACK_TEXT_MAX, &answer) ||
        !opt_text(req, body, "collection", 128, &coll))
        return;
    if (coll && !api_check_collection_name(req, coll))
        return;
    fb.comment = (char *)comment;
    fb.query = (char *)query;
    fb.answer = (char *)answer;
    fb.collection = (char *)coll;
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    lode_error err = {0};
    int64_t id = 0;
    int rc = store_put_feedback(s, &fb, &id, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    http_respond_json(req, 200, json_pack("{s:I,s:s,s:s}", "id",
                                          (json_int_t)id, "answer_id",
                                          fb.answer_id, "rating",
                                          rating > 0 ? "up" : "down"));
}

static json_t *feedback_json(const store_feedback *f)
{
    return json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:I,s:I}", "id",
                     (json_int_t)f->id, "answer_id", f->answer_id, "rating",
                     f->rating > 0 ? "up" : "down", "comment", f->comment,
                     "query", f->query, "answer", f->answer, "collection",
                     f->collection, "created", (json_int_t)f->created,
                     "updated", (json_int_t)f->updated);
}

/* GET /feedback?after=ID&limit=N&format=json|jsonl */
void api_feedback_export(http_request *req, void *app)
{
    api *a = app;
    long long after, limit;
    if (!api_query_int(req, "after", 0, INT64_MAX, &after) ||
        !api_query_int(req, "limit", FEEDBACK_EXPORT_DEFAULT, FEEDBACK_EXPORT_MAX,
                   &limit))
        return;
    const char *format = http_query(req, "format");
    bool jsonl = format && strcmp(format, "jsonl") == 0;
    if (format && !jsonl && strcmp(format, "json") != 0) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_format",
                           "'format' must be json or jsonl");
        return;
    }
    store *s = api_store_acquire(req, a);
    if (!s)
        return;
    store_feedback *fb = NULL;
    size_t n = 0;
    lode_error err = {0};
    int rc = store_list_feedback(s, after, (size_t)limit, &fb, &n, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        return;
    }
    if (jsonl) {
        sbuf b = {0};
        for (size_t i = 0; i < n; i++) {
            json_t *o = feedback_json(&fb[i]);
            char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
            if (line)
                sbuf_printf(&b, "%s\n", line);
            else
                b.oom = true;
            free(line);
        }
        store_feedback_free(fb, n);
        if (b.oom) {
            sbuf_free(&b);
            http_respond_error(req, 500, "server_error", "out_of_memory",
                               "out of memory");
            return;
        }
        http_respond_text(req, 200, "application/x-ndjson", b.data ? b.data : "",
                          b.len);
        sbuf_free(&b);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, feedback_json(&fb[i]));
    int64_t next = n ? fb[n - 1].id : after;
    store_feedback_free(fb, n);
    http_respond_json(req, 200, json_pack("{s:o,s:i,s:I}", "feedback", list,
                                          "count", (int)n, "next_after",
                                          (json_int_t)next));
}
