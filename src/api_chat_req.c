/* api_chat_req.c - reading a chat request: POST /chat and OpenAI's
 * /v1/chat/completions bodies into a chat_run (question cleaned and
 * capped, history capped, collection, k, where), and the chat models of
 * /v1/models. */
#include "api_chat_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "sbuf.h"

/* ---- requests ------------------------------------------------------------------- */

chat_run *chat_run_new(api *a, bool openai)
{
    chat_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->a = a;
    r->openai = openai;
    r->t0 = chat_now_ms();
    r->created = (int64_t)time(NULL);
    r->max_tokens = a->cfg.llm_max_tokens;
    r->query_source = "question";
    unsigned char rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    int o = snprintf(r->id, sizeof r->id, "%s", openai ? "chatcmpl-" : "chat-");
    for (size_t i = 0; i < sizeof rnd; i++)
        o += snprintf(r->id + o, sizeof r->id - (size_t)o, "%02x", rnd[i]);
    return r;
}

/* The question: cleaned, within the caps, checked for injection. */
static bool take_message(http_request *req, chat_run *r, const char *text,
                         size_t len)
{
    api *a = r->a;
    size_t removed = 0, n;
    char *clean = guard_sanitize(text, len, &n, &removed);
    if (!clean) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return false;
    }
    r->invisible_removed += removed;
    size_t i = 0;
    while (i < n && (clean[i] == ' ' || clean[i] == '\n' || clean[i] == '\t'))
        i++;
    if (i == n) {
        free(clean);
        http_respond_error(req, 400, "invalid_request_error", "invalid_message",
                           "the message is empty");
        return false;
    }
    int64_t chars = chat_chars_in(clean, n);
    int tokens = rag_estimate_tokens(clean, n);
    if (chars > a->cfg.chat_max_chars || tokens > a->cfg.chat_max_question_tokens) {
        free(clean);
        http_respond_error(req, 400, "invalid_request_error", "message_too_long",
                           "the message is %lld characters (about %d tokens); "
                           "the limits are %d characters and %d tokens",
                           (long long)chars, tokens, a->cfg.chat_max_chars,
                           a->cfg.chat_max_question_tokens);
        return false;
    }
    r->message = clean;
    if (chat_level(r) != GUARD_OFF) {
        guard_span *sp = NULL;
        size_t ns = 0;
        if (guard_find_injection(clean, n, &sp, &ns) == 0 && ns)
            r->injection_question = true;
        free(sp);
    }
    return true;
}

/* Add a history turn (the last cfg.chat_max_history are kept; each is
 * cut to cfg.chat_max_chars characters). */
static bool add_turn(chat_run *r, const char *role, const char *text,
                     size_t len)
{
    size_t keep = chat_bytes_of_chars(text, len, (size_t)r->a->cfg.chat_max_chars);
    char *c = chat_dup(text, keep);
    if (!c)
        return false;
    r->history[r->n_history].role = strcmp(role, "assistant") == 0
                                        ? "assistant" : "user";
    r->history[r->n_history].content = c;
    r->n_history++;
    return true;
}

/* Trim history to the last cfg.chat_max_history turns. */
static void cap_history(chat_run *r)
{
    size_t max = (size_t)r->a->cfg.chat_max_history;
    if (r->n_history <= max)
        return;
    size_t drop = r->n_history - max;
    for (size_t i = 0; i < drop; i++)
        free((char *)r->history[i].content);
    memmove(r->history, r->history + drop, max * sizeof *r->history);
    r->n_history = max;
    r->history_capped = drop;
}

/* The text of an OpenAI message content: a string, or text parts. */
static bool content_text(json_t *content, sbuf *out)
{
    if (json_is_string(content)) {
        sbuf_append(out, json_string_value(content), json_string_length(content));
        return true;
    }
    if (!json_is_array(content))
        return false;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type");
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0)
            continue;
        if (!json_is_string(text))
            return false;
        if (out->len)
            sbuf_putc(out, '\n');
        sbuf_append(out, json_string_value(text), json_string_length(text));
    }
    return true;
}

static bool common_fields(http_request *req, chat_run *r, json_t *fields)
{
    api *a = r->a;
    const char *coll = NULL;
    char *where = NULL;
    size_t k = CHAT_DEFAULT_K;
    if (!api_parse_search_fields(req, a, fields, CHAT_DEFAULT_K, &coll, &k, &where))
        return false;
    if (k > CHAT_MAX_K) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_k",
                           "'k' of a chat is at most %d", CHAT_MAX_K);
        return false;
    }
    r->k = k;
    if (!api_parse_search_mode(req, fields, &r->how))
        return false;
    if (!r->collection)
        r->collection = strdup(coll);
    r->where_json = where ? strdup(where) : NULL;
    if (!r->collection || (where && !r->where_json)) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return false;
    }
    return true;
}

/* POST /chat {message, collection?, k?, where?, history?, stream?} */
chat_run *chat_parse(http_request *req, api *a)
{
    json_t *body = http_json_body(req);
    if (!body)
        return NULL;
    chat_run *r = chat_run_new(a, false);
    if (!r) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return NULL;
    }
    json_t *msg = json_object_get(body, "message");
    if (!msg)
        msg = json_object_get(body, "question");
    if (!json_is_string(msg)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_message",
                           "'message' must be a non-empty string");
        goto fail;
    }
    if (!take_message(req, r, json_string_value(msg), json_string_length(msg)) ||
        !common_fields(req, r, body))
        goto fail;
    json_t *stream = json_object_get(body, "stream");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_stream",
                           "'stream' must be true or false");
        goto fail;
    }
    r->want_stream = json_is_true(stream);
    json_t *hist = json_object_get(body, "history");
    if (hist && !json_is_null(hist)) {
        if (!json_is_array(hist)) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_history", "'history' must be an array "
                               "of {role, content}");
            goto fail;
        }
        r->history = calloc(json_array_size(hist) + 1, sizeof *r->history);
        if (!r->history)
            goto nomem;
        size_t i;
        json_t *t;
        json_array_foreach(hist, i, t) {
            json_t *role = json_object_get(t, "role");
            json_t *content = json_object_get(t, "content");
            if (!json_is_string(role) || !json_is_string(content) ||
                (strcmp(json_string_value(role), "user") != 0 &&
                 strcmp(json_string_value(role), "assistant") != 0)) {
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_history",
                                   "history[%zu] must be {\"role\": \"user\" "
                                   "or \"assistant\", \"content\": string}", i);
                goto fail;
            }
            if (!add_turn(r, json_string_value(role), json_string_value(content),
                          json_string_length(content)))
                goto nomem;
        }
        cap_history(r);
    }
    return r;
nomem:
    http_respond_error(req, 500, "server_error", "out_of_memory", "out of memory");
fail:
    chat_run_free(r);
    return NULL;
}

/* POST /v1/chat/completions {model, messages, stream?, max_tokens?,
 * lode?: {k, where, collection}}.  The last message is the question
 * (a user message); earlier user and assistant messages are the history;
 * system messages are not passed on (lode's prompt is the only one). */
chat_run *chat_parse_completions(http_request *req, api *a)
{
    json_t *body = http_json_body(req);
    if (!body)
        return NULL;
    chat_run *r = chat_run_new(a, true);
    if (!r) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        return NULL;
    }
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_string(model)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_model",
                           "'model' must be a string");
        goto fail;
    }
    const char *m = model ? json_string_value(model) : "lode";
    r->model_alias = strdup(m);
    /* the collection: a header, else lode.collection, else the model's
     * name ("lode" and "lode:NAME" name the default and NAME) */
    const char *coll = http_header(req, "X-Lode-Collection");
    json_t *ext = json_object_get(body, "lode");
    if (ext && !json_is_object(ext)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_lode",
                           "'lode' must be an object {k, where, collection}");
        goto fail;
    }
    if (!coll && ext && json_is_string(json_object_get(ext, "collection")))
        coll = json_string_value(json_object_get(ext, "collection"));
    if (!coll && strcmp(m, "lode") != 0 && strcmp(m, "") != 0)
        coll = strncmp(m, "lode:", 5) == 0 ? m + 5 : m;
    if (coll) {
        if (!api_check_collection_name(req, coll))
            goto fail;
        r->collection = strdup(coll);
        if (!r->collection)
            goto nomem;
    }
    json_t *empty = json_object();
    bool ok = common_fields(req, r, ext ? ext : empty);
    json_decref(empty);
    if (!ok || !r->model_alias)
        goto fail;
    json_t *stream = json_object_get(body, "stream");
    r->want_stream = json_is_true(stream);
    json_t *mt = json_object_get(body, "max_tokens");
    if (!mt)
        mt = json_object_get(body, "max_completion_tokens");
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_max_tokens",
                               "'max_tokens' must be a positive integer");
            goto fail;
        }
        if (json_integer_value(mt) < r->max_tokens)
            r->max_tokens = (int)json_integer_value(mt);
    }
    json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_messages",
                           "'messages' must be a non-empty array");
        goto fail;
    }
    size_t n = json_array_size(msgs);
    r->history = calloc(n + 1, sizeof *r->history);
    if (!r->history)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(msgs, i);
        json_t *role = json_object_get(msg, "role");
        sbuf text = {0};
        if (!json_is_string(role) ||
            !content_text(json_object_get(msg, "content"), &text)) {
            sbuf_free(&text);
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_messages",
                               "messages[%zu] must have a role and a string "
                               "content (or text parts)", i);
            goto fail;
        }
        const char *rl = json_string_value(role);
        bool last = i == n - 1;
        if (last) {
            if (strcmp(rl, "user") != 0) {
                sbuf_free(&text);
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_messages",
                                   "the last message must be the user's");
                goto fail;
            }
            ok = take_message(req, r, text.data ? text.data : "", text.len);
            sbuf_free(&text);
            if (!ok)
                goto fail;
        } else if (strcmp(rl, "user") == 0 || strcmp(rl, "assistant") == 0) {
            ok = add_turn(r, rl, text.data ? text.data : "", text.len);
            sbuf_free(&text);
            if (!ok)
                goto nomem;
        } else {
            sbuf_free(&text);   /* system, developer, tool: not passed on */
        }
    }
    cap_history(r);
    return r;
nomem:
    http_respond_error(req, 500, "server_error", "out_of_memory", "out of memory");
fail:
    chat_run_free(r);
    return NULL;
}

void api_chat_models(api *a, json_t *data)
{
    json_array_append_new(data, json_pack(
        "{s:s,s:s,s:I,s:s,s:s,s:s}", "id", "lode", "object", "model", "created",
        (json_int_t)0, "owned_by", "lode", "type", "chat", "collection",
        a->cfg.default_collection));
    pthread_mutex_lock(&a->store_lock);
    store_collection_info *infos = NULL;
    size_t n = 0;
    if (a->store_state == API_STORE_OPEN &&
        store_list_collections(a->store, &infos, &n, NULL) != 0)
        n = 0;
    pthread_mutex_unlock(&a->store_lock);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, json_pack(
            "{s:s,s:s,s:I,s:s,s:s,s:s}", "id", infos[i].name, "object",
            "model", "created", (json_int_t)infos[i].created, "owned_by",
            "lode", "type", "chat", "collection", infos[i].name));
    store_collections_free(infos, n);
}
