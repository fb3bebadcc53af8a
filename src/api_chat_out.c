/* api_chat_out.c - what a chat sends back: the /chat answer object,
 * OpenAI's chat.completion and chunks, and the Server-Sent Events of a
 * streamed answer (see api_chat.c for when each is sent). */
#include "api_chat_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"
#include "search_json.h"

/* ---- JSON of the answer ----------------------------------------------------- */

static json_t *snippet_json(const chat_src *s)
{
    size_t n = s->text_len;
    if ((size_t)chat_chars_in(s->text, n) <= CHAT_SNIPPET_CHARS)
        return json_stringn(s->text, n);
    size_t cut = chat_bytes_of_chars(s->text, n, CHAT_SNIPPET_CHARS);
    size_t space = cut;
    while (space > cut / 2 && s->text[space] != ' ' && s->text[space] != '\n')
        space--;
    if (space > cut / 2)
        cut = space;
    sbuf b = {0};
    sbuf_append(&b, s->text, cut);
    sbuf_puts(&b, "\xe2\x80\xa6");
    size_t len;
    char *t = sbuf_take(&b, &len);
    json_t *j = t ? json_stringn(t, len) : NULL;
    free(t);
    return j;
}

static json_t *sources_json(const chat_run *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->n_src; i++) {
        const chat_src *s = &r->src[i];
        json_t *o = json_pack(
            "{s:i,s:I,s:s?,s:I,s:s?,s:s?,s:s?,s:I,s:I,s:f,s:b}", "n",
            (int)i + 1, "document_id", (json_int_t)s->document_id, "id",
            s->external_id, "chunk_id", (json_int_t)s->chunk_id, "title",
            s->title, "source", s->source, "heading", s->heading, "char_start",
            (json_int_t)s->char_start, "char_end", (json_int_t)s->char_end,
            "score", (double)s->score, "injection", s->injected);
        if (o && s->page_start > 0) {
            json_object_set_new(o, "page_start", json_integer(s->page_start));
            json_object_set_new(o, "page_end", json_integer(s->page_end));
        }
        if (o)
            json_object_set_new(o, "snippet", snippet_json(s));
        json_array_append_new(list, search_json_add_ranking(o, &s->ranking));
    }
    return list;
}

static json_t *citations_json(const chat_run *r)
{
    json_t *list = json_array();
    const rag_cited *c = &r->cited;
    for (size_t i = 0; i < c->n_citations; i++)
        json_array_append_new(
            list, json_pack("{s:i,s:b,s:I,s:I}", "n", c->citations[i].n,
                            "supported", c->citations[i].supported, "start",
                            (json_int_t)chat_chars_in(c->text, c->citations[i].start),
                            "end",
                            (json_int_t)chat_chars_in(c->text, c->citations[i].end)));
    return list;
}

static json_t *breaker_json(api *a)
{
    if (!a->llm)
        return json_pack("{s:b,s:s}", "configured", 0, "state", "closed");
    breaker_snapshot b;
    llm_breaker_state(a->llm, &b);
    return json_pack("{s:b,s:s,s:i,s:f}", "configured", 1, "state",
                     breaker_state_name(b.state), "consecutive_failures",
                     b.consecutive_failures, "retry_in_s",
                     (double)b.retry_in_ms / 1000.0);
}

static json_t *pii_json(const int counts[GUARD_PII_N])
{
    json_t *o = json_object();
    for (int k = 0; k < GUARD_PII_N; k++)
        json_object_set_new(o, guard_pii_name(k), json_integer(counts[k]));
    return o;
}

static json_t *guardrails_json(const chat_run *r)
{
    json_t *defused = json_array();
    for (size_t i = 0; i < r->n_src; i++)
        if (r->src[i].injected)
            json_array_append_new(defused, json_integer((json_int_t)i + 1));
    return json_pack(
        "{s:s,s:I,s:{s:b,s:o,s:O},s:o,s:o,s:{s:f,s:f,s:b},s:{s:i,s:i},s:b}",
        "level", guard_level_name(chat_level(r)), "invisible_removed",
        (json_int_t)r->invisible_removed, "injection", "question",
        r->injection_question, "sources_defused", defused, "sources_dropped",
        r->injected_dropped, "pii_redacted_sent", pii_json(r->pii_sent),
        "pii_redacted_answer", pii_json(r->pii_answer), "relevance",
        "best_score", (double)r->best_score, "threshold",
        r->a->cfg.chat_min_score, "passed", r->covered, "citations",
        "removed", r->cited.removed, "unsupported", r->unsupported,
        "replaced", r->replaced);
}

/* Everything the final answer says besides its text and sources. */
static json_t *details_json(const chat_run *r)
{
    int pt = r->prompt_tokens > 0 ? r->prompt_tokens : 0;
    int ct = r->completion_tokens > 0 ? r->completion_tokens : 0;
    const char *model = r->llm_model[0] ? r->llm_model : "lode-extractive";
    if (strcmp(r->answer_kind, "llm") != 0)
        model = "lode-extractive";
    size_t src_kept = r->prompt.messages ? r->prompt.sources_kept : r->n_src;
    size_t hist_kept = r->prompt.messages ? r->prompt.history_kept
                                          : r->n_history;
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:s,s:o,s:{s:i,s:i,s:i},s:{s:f,s:f,s:f},s:b,s:s?,"
        "s:b,s:s,s:o,s:o,s:{s:I,s:I,s:I}}",
        "id", r->id, "model", model, "query",
        r->search_query ? r->search_query : r->message, "query_source",
        r->query_source, "citations", citations_json(r), "usage",
        "prompt_tokens", pt, "completion_tokens", ct, "total_tokens", pt + ct,
        "latency_ms", "retrieval", r->retrieval_ms, "llm", r->llm_ms, "total",
        chat_now_ms() - r->t0, "degraded", r->degraded, "degraded_reason",
        r->degraded_reason, "covered", r->covered, "answer_kind",
        r->answer_kind, "guardrails", guardrails_json(r), "breaker",
        breaker_json(r->a), "dropped", "sources",
        (json_int_t)(r->n_src - src_kept), "history",
        (json_int_t)(r->n_history - hist_kept), "history_capped",
        (json_int_t)r->history_capped);
    if (o && r->llm_error[0])
        json_object_set_new(o, "llm_error", json_string(r->llm_error));
    json_t *retrieval = json_object();
    api_search_mode_json(retrieval, &r->how);
    if (o)
        json_object_set_new(o, "retrieval", retrieval);
    else
        json_decref(retrieval);
    return o;
}

json_t *chat_answer_json(const chat_run *r)
{
    json_t *o = details_json(r);
    if (!o)
        return NULL;
    json_object_set_new(o, "answer", json_stringn(r->cited.text, r->cited.len));
    json_object_set_new(o, "sources", sources_json(r));
    return o;
}

/* OpenAI's chat.completion, or the last chunk of a stream. */
json_t *chat_openai_json(const chat_run *r, bool chunk)
{
    json_t *details = details_json(r);
    json_t *usage = details ? json_deep_copy(json_object_get(details, "usage"))
                            : NULL;
    json_t *choice = chunk
        ? json_pack("{s:i,s:{},s:s}", "index", 0, "delta", "finish_reason",
                    "stop")
        : json_pack("{s:i,s:{s:s,s:s%},s:s}", "index", 0, "message", "role",
                    "assistant", "content", r->cited.text, r->cited.len,
                    "finish_reason", "stop");
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o,s:o,s:o}", "id", r->id,
                          "object", chunk ? "chat.completion.chunk"
                                          : "chat.completion",
                          "created", (json_int_t)r->created, "model",
                          r->model_alias, "choices", choice, "usage",
                          usage ? usage : json_object(), "sources",
                          sources_json(r), "lode",
                          details ? details : json_object());
    if (o && details)
        json_object_set_new(details, "answer",
                            json_stringn(r->cited.text, r->cited.len));
    return o;
}

/* ---- the stream ----------------------------------------------------------------- */

void chat_sse_event(chat_run *r, const char *event, json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(6))
                      : NULL;
    json_decref(data);
    if (text && r->stream) {
        sbuf b = {0};
        if (event)
            sbuf_printf(&b, "event: %s\n", event);
        sbuf_printf(&b, "data: %s\n\n", text);
        if (b.data)
            http_stream_write(r->stream, b.data, b.len);
        sbuf_free(&b);
    }
    free(text);
}

void chat_send_delta(chat_run *r, const char *text, size_t len)
{
    if (!len || !r->stream)
        return;
    if (r->openai)
        chat_sse_event(r, NULL,
                  json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s%},s:n}]}", "id",
                            r->id, "object", "chat.completion.chunk",
                            "created", (json_int_t)r->created, "model",
                            r->model_alias, "choices", "index", 0, "delta",
                            "content", text, len, "finish_reason"));
    else
        chat_sse_event(r, "delta", json_pack("{s:s%}", "text", text, len));
}

/* Start the SSE answer with the sources (on the handler's thread). */
bool chat_start_stream(chat_run *r)
{
    http_stream *s = http_respond_stream(r->req, 200,
                                         "text/event-stream; charset=utf-8");
    if (!s)
        return false;
    r->stream = s;
    r->req = NULL;             /* the handler is done with the request */
    atomic_fetch_add(&r->refs, 1);   /* the writer's reference */
    const char *query = r->search_query ? r->search_query : r->message;
    if (r->openai)
        chat_sse_event(r, NULL, json_pack(
            "{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:n}],s:o,s:{s:s,s:s}}",
            "id", r->id, "object", "chat.completion.chunk", "created",
            (json_int_t)r->created, "model", r->model_alias, "choices",
            "index", 0, "delta", "role", "assistant", "content", "",
            "finish_reason", "sources", sources_json(r), "lode", "query",
            query, "query_source", r->query_source));
    else
        chat_sse_event(r, "sources",
                  json_pack("{s:s,s:s,s:s,s:o,s:b}", "id", r->id, "query",
                            query, "query_source", r->query_source, "sources",
                            sources_json(r), "covered", r->covered));
    return true;
}
