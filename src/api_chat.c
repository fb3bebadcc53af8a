/* api_chat.c - RAG chat: POST /chat, and the same answers as OpenAI's
 * POST /v1/chat/completions (the collection named by "model").
 *
 * One chat is a small state machine (chat_run) that moves through
 *   REWRITE  a follow-up question made standalone by the LLM (only with
 *            history and an LLM), else joined with the previous user turn
 *   EMBED    the search query embedded by the scheduler
 *   DECIDE   retrieval, guardrails on the sources, relevance, the prompt
 *   ANSWER   the LLM's answer, streamed or not
 *   FALLBACK the extractive answer: the sentences of the sources closest to
 *            the query, embedded by the scheduler
 *   FINISH   the answer checked and sent.
 * No wait holds an HTTP thread.  Until a stream starts, a wait suspends
 * the request and the callback that ends the wait resumes it; the handler
 * then calls step() again.  Once an SSE stream has started (the sources
 * are sent first), the handler has returned for good: callbacks call
 * step() on their own thread (the LLM client's or the scheduler's), which
 * writes to the stream.  So exactly one thread works on a run at any
 * time.  The run is freed when its last reference goes: the request's,
 * and the stream writer's while streaming.
 *
 * What the LLM sees is built here and nowhere else: the question, history
 * and sources cleaned of invisible characters, personal data redacted,
 * instruction-like sentences of sources removed (strict: the source
 * dropped), sources numbered [1]..[n] by rag.c and trimmed to the budget.
 * The answer comes back through rag.c's stream filter, which redacts it
 * and removes citations of sources that were not given, before a byte of
 * it reaches the client.  Without an LLM (none configured, breaker open,
 * an error, a timeout, strict mode finding no supported citation) the
 * answer is extractive and says degraded: true; the LLM never causes a
 * 500. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "guard.h"
#include "llm.h"
#include "rag.h"
#include "sbuf.h"

#define CHAT_DEFAULT_K 5
#define CHAT_MAX_K 20
#define CHAT_SNIPPET_CHARS 320
#define CHAT_MAX_SENTENCES 48
#define CHAT_EXTRACTIVE_PICKS 3
#define CHAT_EXTRACTIVE_MARGIN 0.12f
#define CHAT_REWRITE_TOKENS 64

static const char not_covered_answer[] =
    "The documents do not cover this question.";
static const char blocked_answer[] =
    "This question was not sent to the language model: it looks like an "
    "attempt to change the assistant's instructions.";

typedef enum chat_stage {
    STAGE_START,
    STAGE_REWRITE_WAIT,
    STAGE_EMBED,
    STAGE_EMBED_WAIT,
    STAGE_DECIDE,
    STAGE_ANSWER_WAIT,
    STAGE_FALLBACK,
    STAGE_FALLBACK_WAIT,
    STAGE_FINISH,
    STAGE_DONE,
} chat_stage;

/* A retrieved chunk (copies: a stream outlives the request). */
typedef struct chat_src {
    int64_t document_id, chunk_id;
    char *external_id, *source, *title, *heading, *text;
    size_t text_len;
    int64_t char_start, char_end;
    float score;
    char *prompt_text;        /* as the LLM sees it */
    size_t prompt_len;
    bool injected;
} chat_src;

typedef struct chat_run {
    atomic_int refs;
    api *a;
    http_request *req;        /* NULL once a stream has started */
    http_stream *stream;
    bool want_stream, openai;
    chat_stage stage;
    char id[48];
    char *model_alias;        /* OpenAI: the "model" asked for */
    int64_t created;          /* unix seconds */
    double t0, retrieval_ms, llm_ms;

    /* the request, cleaned */
    char *message;
    char *collection;
    char *where_json;
    size_t k;
    int max_tokens;
    rag_turn *history;        /* owned contents */
    size_t n_history, history_capped;
    char *search_query;
    const char *query_source; /* "question" | "rewritten" | "joined" */
    const char *query_ptr;    /* the text embedded, and its length */
    size_t query_len;

    /* embeddings */
    sched_job job;            /* the query */
    sched_job sjob;           /* fallback sentences */
    const char **s_texts;
    size_t *s_lens;
    int *s_source;            /* 1-based source number of each sentence */
    size_t *s_pos;
    size_t n_sent;

    /* retrieval */
    chat_src *src;
    size_t n_src;             /* numbered sources (after strict drops) */
    json_t *injected_dropped; /* strict: sources left out */
    float best_score;
    bool covered;

    /* the LLM */
    rag_prompt prompt;
    llm_message *msgs;
    bool llm_called;
    llm_outcome outcome;
    char llm_error[256];
    char llm_model[128];
    int prompt_tokens, completion_tokens;
    bool streamed;            /* deltas of the LLM's answer were sent */
    rag_stream filter;
    char *rewrite_raw;

    /* the answer */
    char *answer;             /* final, before citation processing */
    rag_cited cited;
    bool degraded, replaced;
    const char *degraded_reason;
    const char *answer_kind;  /* "llm" | "extractive" | "not_covered" |
                                 "blocked" */

    /* guardrail findings */
    size_t invisible_removed;
    bool injection_question;
    int pii_sent[GUARD_PII_N];
    int pii_answer[GUARD_PII_N];
    int unsupported;
} chat_run;

static void step(chat_run *r);

/* ---- small helpers -------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Characters (code points) in the first n bytes of UTF-8 s. */
static int64_t chars_in(const char *s, size_t n)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* The byte length of the first max_chars characters of s. */
static size_t bytes_of_chars(const char *s, size_t len, size_t max_chars)
{
    size_t i = 0, chars = 0;
    while (i < len) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars)
                break;
            chars++;
        }
        i++;
    }
    return i;
}

static guard_level level_of(const chat_run *r)
{
    return (guard_level)r->a->guard_level;
}

/* A text as the LLM may see it: invisible characters out, personal data
 * redacted (unless the level is off).  malloc'd. */
static char *clean_for_llm(chat_run *r, const char *text, size_t len,
                           size_t *out_len)
{
    size_t removed = 0, n;
    char *s = guard_sanitize(text, len, &n, &removed);
    if (!s)
        return NULL;
    r->invisible_removed += removed;
    if (level_of(r) == GUARD_OFF) {
        if (out_len)
            *out_len = n;
        return s;
    }
    char *red = guard_redact(s, n, out_len, r->pii_sent);
    free(s);
    return red;
}

static void run_free(chat_run *r)
{
    free(r->model_alias);
    free(r->message);
    free(r->collection);
    free(r->where_json);
    for (size_t i = 0; i < r->n_history; i++)
        free((char *)r->history[i].content);
    free(r->history);
    free(r->search_query);
    free(r->job.vectors);
    free(r->sjob.vectors);
    for (size_t i = 0; i < r->n_sent; i++)
        free((char *)r->s_texts[i]);
    free(r->s_texts);
    free(r->s_lens);
    free(r->s_source);
    free(r->s_pos);
    for (size_t i = 0; i < r->n_src; i++) {
        chat_src *s = &r->src[i];
        free(s->external_id);
        free(s->source);
        free(s->title);
        free(s->heading);
        free(s->text);
        free(s->prompt_text);
    }
    free(r->src);
    json_decref(r->injected_dropped);
    rag_prompt_free(&r->prompt);
    free(r->msgs);
    rag_stream_free(&r->filter);
    free(r->rewrite_raw);
    free(r->answer);
    rag_cited_free(&r->cited);
    http_stream_release(r->stream);
    free(r);
}

static void run_unref(void *p)
{
    chat_run *r = p;
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        run_free(r);
}

/* ---- waiting ------------------------------------------------------------------ */

/* Before handing work to another thread: park the request (not needed
 * once streaming: the handler is done with it). */
static void wait_begin(chat_run *r)
{
    if (r->req)
        http_suspend(r->req);
}

/* That work is over: continue on the request's HTTP thread, or right here
 * when streaming. */
static void wait_end(chat_run *r)
{
    if (r->req)
        http_resume(r->req);
    else
        step(r);
}

/* ---- JSON of the answer ----------------------------------------------------- */

static json_t *snippet_json(const chat_src *s)
{
    size_t n = s->text_len;
    if ((size_t)chars_in(s->text, n) <= CHAT_SNIPPET_CHARS)
        return json_stringn(s->text, n);
    size_t cut = bytes_of_chars(s->text, n, CHAT_SNIPPET_CHARS);
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
        if (o)
            json_object_set_new(o, "snippet", snippet_json(s));
        json_array_append_new(list, o);
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
                            (json_int_t)chars_in(c->text, c->citations[i].start),
                            "end",
                            (json_int_t)chars_in(c->text, c->citations[i].end)));
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
        "level", guard_level_name(level_of(r)), "invisible_removed",
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
        now_ms() - r->t0, "degraded", r->degraded, "degraded_reason",
        r->degraded_reason, "covered", r->covered, "answer_kind",
        r->answer_kind, "guardrails", guardrails_json(r), "breaker",
        breaker_json(r->a), "dropped", "sources",
        (json_int_t)(r->n_src - src_kept), "history",
        (json_int_t)(r->n_history - hist_kept), "history_capped",
        (json_int_t)r->history_capped);
    if (o && r->llm_error[0])
        json_object_set_new(o, "llm_error", json_string(r->llm_error));
    return o;
}

static json_t *chat_json(const chat_run *r)
{
    json_t *o = details_json(r);
    if (!o)
        return NULL;
    json_object_set_new(o, "answer", json_stringn(r->cited.text, r->cited.len));
    json_object_set_new(o, "sources", sources_json(r));
    return o;
}

/* OpenAI's chat.completion, or the last chunk of a stream. */
static json_t *openai_json(const chat_run *r, bool chunk)
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

static void sse_event(chat_run *r, const char *event, json_t *data)
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

static void send_delta(chat_run *r, const char *text, size_t len)
{
    if (!len || !r->stream)
        return;
    if (r->openai)
        sse_event(r, NULL,
                  json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s%},s:n}]}", "id",
                            r->id, "object", "chat.completion.chunk",
                            "created", (json_int_t)r->created, "model",
                            r->model_alias, "choices", "index", 0, "delta",
                            "content", text, len, "finish_reason"));
    else
        sse_event(r, "delta", json_pack("{s:s%}", "text", text, len));
}

/* Start the SSE answer with the sources (on the handler's thread). */
static bool start_stream(chat_run *r)
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
        sse_event(r, NULL, json_pack(
            "{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:n}],s:o,s:{s:s,s:s}}",
            "id", r->id, "object", "chat.completion.chunk", "created",
            (json_int_t)r->created, "model", r->model_alias, "choices",
            "index", 0, "delta", "role", "assistant", "content", "",
            "finish_reason", "sources", sources_json(r), "lode", "query",
            query, "query_source", r->query_source));
    else
        sse_event(r, "sources",
                  json_pack("{s:s,s:s,s:s,s:o,s:b}", "id", r->id, "query",
                            query, "query_source", r->query_source, "sources",
                            sources_json(r), "covered", r->covered));
    return true;
}

/* ---- the LLM ---------------------------------------------------------------- */

static bool still_wanted(void *ctx)
{
    chat_run *r = ctx;
    if (r->stream)
        return !http_stream_gone(r->stream);
    return !(r->req && http_client_gone(r->req));
}

static void on_rewrite_done(void *ctx, const llm_result *res)
{
    chat_run *r = ctx;
    r->llm_ms += res->seconds * 1000.0;
    if (res->outcome == LLM_OK)
        r->rewrite_raw = dup_n(res->text, res->len);
    else
        snprintf(r->llm_error, sizeof r->llm_error, "rewriting the question: "
                 "%s", res->error);
    wait_end(r);
}

static void on_answer_delta(void *ctx, const char *text, size_t len)
{
    chat_run *r = ctx;
    char *out = NULL;
    size_t out_len = 0;
    if (rag_stream_feed(&r->filter, text, len, false, &out, &out_len) == 0 &&
        out_len) {
        r->streamed = true;
        send_delta(r, out, out_len);
    }
    free(out);
}

static const char *reason_of(llm_outcome o)
{
    switch (o) {
    case LLM_FAIL_TIMEOUT: return "llm_timeout";
    case LLM_FAIL_NETWORK: return "llm_unreachable";
    case LLM_FAIL_PROTOCOL: return "llm_malformed";
    case LLM_CANCELLED: return "cancelled";
    case LLM_ABORTED: return "shutting_down";
    default: return "llm_error";
    }
}

static void on_answer_done(void *ctx, const llm_result *res)
{
    chat_run *r = ctx;
    r->llm_ms += res->seconds * 1000.0;
    snprintf(r->llm_model, sizeof r->llm_model, "%s", res->model);
    if (res->prompt_tokens >= 0)
        r->prompt_tokens = res->prompt_tokens;
    if (res->completion_tokens >= 0)
        r->completion_tokens = res->completion_tokens;
    if (res->outcome == LLM_OK) {
        if (!res->streamed) {  /* not a stream: the filter takes it whole */
            char *out = NULL;
            size_t n = 0;
            rag_stream_feed(&r->filter, res->text, res->len, false, &out, &n);
            free(out);
        }
        r->answer_kind = "llm";
        r->stage = STAGE_FINISH;
    } else {
        snprintf(r->llm_error, sizeof r->llm_error, "%s", res->error);
        r->degraded = true;
        r->degraded_reason = reason_of(res->outcome);
        r->stage = res->outcome == LLM_CANCELLED ? STAGE_FINISH : STAGE_FALLBACK;
        if (res->outcome == LLM_CANCELLED)
            r->answer_kind = "cancelled";
    }
    wait_end(r);
}

/* Submit an LLM call.  True: waiting for it (return from step).  False:
 * it could not go (*reason says why); when a request was parked for it,
 * it is resumed and step must also return, to run again from the stage
 * the caller set. */
static bool submit_llm(chat_run *r, const llm_message *msgs, size_t n,
                       bool stream, int max_tokens, double temperature,
                       void (*done)(void *, const llm_result *),
                       const char **reason)
{
    llm_call call = {
        .messages = msgs,
        .n_messages = n,
        .stream = stream,
        .max_tokens = max_tokens,
        .temperature = temperature,
        .on_delta = stream ? on_answer_delta : NULL,
        .on_done = done,
        .still_wanted = still_wanted,
        .ctx = r,
    };
    lode_error err = {0};
    wait_begin(r);
    int rc = llm_submit(r->a->llm, &call, &err);
    if (rc == 0)
        return true;
    snprintf(r->llm_error, sizeof r->llm_error, "%.250s", err.message);
    *reason = rc == LODE_ELIMIT ? "llm_busy"
            : strstr(err.message, "breaker") ? "breaker_open" : "shutting_down";
    if (r->req)
        http_resume(r->req);
    return false;
}

static void on_job_done(sched_job *job, void *ctx)
{
    (void)job;
    wait_end(ctx);
}

/* ---- the stages ------------------------------------------------------------------
 * Each returns true to go on with the next stage at once, false when the
 * run waits (or is done). */

/* START: a follow-up is made standalone by the LLM when there is one. */
static bool stage_start(chat_run *r)
{
    r->query_source = "question";
    if (r->n_history == 0) {
        r->stage = STAGE_EMBED;
        return true;
    }
    r->stage = STAGE_REWRITE_WAIT;
    if (!r->a->llm || !r->a->cfg.chat_rewrite)
        return true;
    rag_turn *clean = calloc(r->n_history, sizeof *clean);
    char *q = clean_for_llm(r, r->message, strlen(r->message), NULL);
    bool ok = clean && q;
    for (size_t i = 0; ok && i < r->n_history; i++) {
        clean[i].role = r->history[i].role;
        clean[i].content = clean_for_llm(r, r->history[i].content,
                                         strlen(r->history[i].content), NULL);
        ok = clean[i].content != NULL;
    }
    rag_prompt p = {0};
    int rc = ok ? rag_build_rewrite_prompt(q, clean, r->n_history, &p, NULL)
                : LODE_ENOMEM;
    for (size_t i = 0; clean && i < r->n_history; i++)
        free((char *)clean[i].content);
    free(clean);
    free(q);
    if (rc)
        return true;
    llm_message m[2] = {{p.messages[0].role, p.messages[0].content},
                        {p.messages[1].role, p.messages[1].content}};
    const char *reason = NULL;
    bool req_parked = r->req != NULL;
    bool sent = submit_llm(r, m, 2, false, CHAT_REWRITE_TOKENS, 0.0,
                           on_rewrite_done, &reason);
    rag_prompt_free(&p);      /* llm_submit copied what it needs */
    /* sent: the callback resumes us; not sent: resumed already, or (no
     * request) go on here */
    return !sent && !req_parked;
}

/* REWRITE_WAIT: the LLM's query, else the question joined with the
 * previous user turn. */
static bool stage_rewrite_done(chat_run *r)
{
    char *q = r->rewrite_raw ? rag_clean_rewrite(r->rewrite_raw,
                                                 strlen(r->rewrite_raw))
                             : NULL;
    if (q) {
        r->search_query = q;
        r->query_source = "rewritten";
    } else {
        r->search_query = rag_join_query(r->message, r->history, r->n_history);
        r->query_source = "joined";
    }
    r->stage = STAGE_EMBED;
    return true;
}

static bool stage_embed(chat_run *r)
{
    r->query_ptr = r->search_query ? r->search_query : r->message;
    r->query_len = strlen(r->query_ptr);
    r->job.n = 1;
    r->job.texts = &r->query_ptr;
    r->job.lens = &r->query_len;
    r->job.max_tokens = r->a->cfg.max_tokens;
    r->job.deadline_ms = sched_now_ms() + r->a->cfg.load_wait_ms;
    r->job.done = on_job_done;
    r->job.ctx = r;
    r->retrieval_ms = now_ms();   /* start; made a duration below */
    r->stage = STAGE_EMBED_WAIT;
    wait_begin(r);
    sched_submit(r->a->sched, &r->job);
    return false;
}

/* One retrieved chunk into the run, through the guardrails.  False when
 * out of memory. */
static bool add_source(chat_run *r, const store_result *res)
{
    size_t len = strlen(res->text), clean_len;
    size_t removed = 0;
    char *clean = guard_sanitize(res->text, len, &clean_len, &removed);
    if (!clean)
        return false;
    r->invisible_removed += removed;
    bool injected = false;
    if (level_of(r) != GUARD_OFF) {
        guard_span *sp = NULL;
        size_t n = 0;
        if (guard_find_injection(clean, clean_len, &sp, &n)) {
            free(clean);
            return false;
        }
        if (n && level_of(r) == GUARD_STRICT) {
            /* strict: the source is left out altogether */
            free(sp);
            free(clean);
            json_array_append_new(r->injected_dropped, json_pack(
                "{s:I,s:I,s:s?,s:s?,s:f}", "document_id",
                (json_int_t)res->document_id, "chunk_id",
                (json_int_t)res->chunk_id, "title", res->title, "source",
                res->source, "score", (double)res->score));
            return true;
        }
        if (n) {
            size_t dl;
            char *defused = guard_replace_spans(clean, clean_len, sp, n,
                                                GUARD_REMOVED_TEXT, &dl);
            free(clean);
            free(sp);
            if (!defused)
                return false;
            clean = defused;
            clean_len = dl;
            injected = true;
        }
        char *red = guard_redact(clean, clean_len, &clean_len, r->pii_sent);
        free(clean);
        if (!red)
            return false;
        clean = red;
    }
    chat_src *s = &r->src[r->n_src];
    memset(s, 0, sizeof *s);
    s->document_id = res->document_id;
    s->chunk_id = res->chunk_id;
    s->external_id = dup_opt(res->external_id);
    s->source = dup_opt(res->source);
    s->title = dup_opt(res->title);
    s->heading = dup_opt(res->heading);
    s->text = dup_n(res->text, len);
    s->text_len = len;
    s->char_start = res->char_start;
    s->char_end = res->char_end;
    s->score = res->score;
    s->prompt_text = clean;
    s->prompt_len = clean_len;
    s->injected = injected;
    r->n_src++;
    return s->text && (!res->external_id || s->external_id) &&
           (!res->source || s->source) && (!res->title || s->title) &&
           (!res->heading || s->heading);
}

/* EMBED_WAIT: search with the query vector; the sources through the
 * guardrails. */
static bool stage_retrieve(chat_run *r)
{
    http_request *req = r->req;
    api *a = r->a;
    if (r->job.rc) {
        api_respond_lode_error(req, a, &r->job.err);
        r->stage = STAGE_DONE;
        return false;
    }
    sched_status ss;
    sched_get_status(a->sched, &ss);
    char mid[300];
    snprintf(mid, sizeof mid, "%s:%s", r->job.model_name, ss.type);
    store_query q = {
        .collection = r->collection,
        .model_id = mid,
        .vector = r->job.vectors,
        .dimension = r->job.dim,
        .k = r->k,
        .where_json = r->where_json,
    };
    store_result *results = NULL;
    size_t n = 0;
    lode_error err = {0};
    store *s = api_store_acquire(req, a);
    if (!s) {
        r->stage = STAGE_DONE;
        return false;
    }
    int rc = store_search(s, &q, &results, &n, &err);
    api_store_release(a);
    if (rc) {
        api_respond_lode_error(req, a, &err);
        r->stage = STAGE_DONE;
        return false;
    }
    r->src = calloc(n ? n : 1, sizeof *r->src);
    r->injected_dropped = json_array();
    bool ok = r->src && r->injected_dropped;
    r->best_score = n ? results[0].score : 0;
    for (size_t i = 0; ok && i < n; i++) {
        if (results[i].score > r->best_score)
            r->best_score = results[i].score;
        ok = add_source(r, &results[i]);
    }
    store_results_free(results, n);
    if (!ok) {
        http_respond_error(req, 500, "server_error", "out_of_memory",
                           "out of memory");
        r->stage = STAGE_DONE;
        return false;
    }
    r->covered = n > 0 && r->best_score >= a->cfg.chat_min_score;
    r->retrieval_ms = now_ms() - r->retrieval_ms;
    r->stage = STAGE_DECIDE;
    return true;
}

/* The prompt: cleaned question and history, the sources as sent. */
static bool build_prompt(chat_run *r)
{
    rag_source *srcs = calloc(r->n_src ? r->n_src : 1, sizeof *srcs);
    rag_turn *hist = calloc(r->n_history ? r->n_history : 1, sizeof *hist);
    char *q = clean_for_llm(r, r->message, strlen(r->message), NULL);
    bool ok = srcs && hist && q;
    for (size_t i = 0; ok && i < r->n_src; i++)
        srcs[i] = (rag_source){r->src[i].title, r->src[i].heading,
                               r->src[i].prompt_text, r->src[i].prompt_len};
    for (size_t i = 0; ok && i < r->n_history; i++) {
        hist[i].role = r->history[i].role;
        hist[i].content = clean_for_llm(r, r->history[i].content,
                                        strlen(r->history[i].content), NULL);
        ok = hist[i].content != NULL;
    }
    if (ok) {
        rag_prompt_in in = {q, hist, r->n_history, srcs, r->n_src,
                            r->a->cfg.chat_context_tokens};
        ok = rag_build_prompt(&in, &r->prompt, NULL) == 0;
    }
    for (size_t i = 0; hist && i < r->n_history; i++)
        free((char *)hist[i].content);
    free(hist);
    free(srcs);
    free(q);
    if (!ok)
        return false;
    r->msgs = calloc(r->prompt.n_messages, sizeof *r->msgs);
    if (!r->msgs)
        return false;
    for (size_t i = 0; i < r->prompt.n_messages; i++)
        r->msgs[i] = (llm_message){r->prompt.messages[i].role,
                                   r->prompt.messages[i].content};
    return true;
}

/* DECIDE: not covered, blocked, or ask the LLM (streaming from here when
 * asked to), or answer without it. */
static bool stage_decide(chat_run *r)
{
    if (!r->covered) {
        r->answer_kind = "not_covered";
        r->answer = strdup(not_covered_answer);
    } else if (r->injection_question && level_of(r) == GUARD_STRICT) {
        r->answer_kind = "blocked";
        r->answer = strdup(blocked_answer);
    }
    if (r->want_stream && !start_stream(r)) {
        r->stage = STAGE_DONE;     /* the client is gone */
        return false;
    }
    if (r->answer_kind) {
        r->stage = STAGE_FINISH;
        return true;
    }
    if (!r->a->llm) {
        r->degraded = true;
        r->degraded_reason = "llm_not_configured";
        r->stage = STAGE_FALLBACK;
        return true;
    }
    if (!build_prompt(r)) {
        r->degraded = true;
        r->degraded_reason = "out_of_memory";
        r->stage = STAGE_FALLBACK;
        return true;
    }
    rag_stream_init(&r->filter, level_of(r) != GUARD_OFF, r->prompt.sources_kept);
    r->stage = STAGE_ANSWER_WAIT;
    const char *reason = NULL;
    bool req_parked = r->req != NULL;
    if (submit_llm(r, r->msgs, r->prompt.n_messages, r->want_stream,
                   r->max_tokens, -1, on_answer_done, &reason))
        return false;
    r->degraded = true;
    r->degraded_reason = reason;
    r->stage = STAGE_FALLBACK;
    return !req_parked;
}

/* FALLBACK: the sentences of the sources, to be embedded. */
static bool stage_fallback(chat_run *r)
{
    r->answer_kind = "extractive";
    size_t cap = CHAT_MAX_SENTENCES;
    r->s_texts = calloc(cap, sizeof *r->s_texts);
    r->s_lens = calloc(cap, sizeof *r->s_lens);
    r->s_source = calloc(cap, sizeof *r->s_source);
    r->s_pos = calloc(cap, sizeof *r->s_pos);
    if (!r->s_texts || !r->s_lens || !r->s_source || !r->s_pos) {
        r->stage = STAGE_FALLBACK_WAIT;
        return true;
    }
    for (size_t i = 0; i < r->n_src && r->n_sent < cap; i++) {
        const chat_src *s = &r->src[i];
        rag_span *sp = NULL;
        size_t n = 0;
        if (rag_sentences(s->text, s->text_len, &sp, &n))
            continue;
        if (n == 0) {   /* a chunk of no proper sentence: the chunk itself */
            sp = malloc(sizeof *sp);
            if (sp) {
                sp[0] = (rag_span){0, s->text_len};
                n = 1;
            }
        }
        for (size_t j = 0; j < n && r->n_sent < cap; j++) {
            char *t = dup_n(s->text + sp[j].start, sp[j].end - sp[j].start);
            if (!t)
                break;
            r->s_texts[r->n_sent] = t;
            r->s_lens[r->n_sent] = sp[j].end - sp[j].start;
            r->s_source[r->n_sent] = (int)i + 1;
            r->s_pos[r->n_sent] = sp[j].start;
            r->n_sent++;
        }
        free(sp);
    }
    r->stage = STAGE_FALLBACK_WAIT;
    if (r->n_sent == 0)
        return true;
    r->sjob.n = (int)r->n_sent;
    r->sjob.texts = r->s_texts;
    r->sjob.lens = r->s_lens;
    r->sjob.deadline_ms = sched_now_ms() + 2000;
    r->sjob.done = on_job_done;
    r->sjob.ctx = r;
    wait_begin(r);
    sched_submit(r->a->sched, &r->sjob);
    return false;
}

static float dot(const float *a, const float *b, int n)
{
    double s = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++) {
        s += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return na > 0 && nb > 0 ? (float)(s / sqrt(na * nb)) : 0;
}

/* FALLBACK_WAIT: the sentences closest to the query, with their [n]. */
static bool stage_extract(chat_run *r)
{
    size_t n = r->n_sent;
    float *score = calloc(n ? n : 1, sizeof *score);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    rag_pick *picks = calloc(CHAT_EXTRACTIVE_PICKS, sizeof *picks);
    bool vectors = r->sjob.rc == 0 && r->sjob.vectors && r->job.vectors &&
                   r->sjob.dim == r->job.dim;
    const char *q = r->search_query ? r->search_query : r->message;
    for (size_t i = 0; score && i < n; i++) {
        /* closeness to the query, a little for shared words, and a little
         * for the rank of the source */
        float lex = (float)rag_overlap(q, strlen(q), r->s_texts[i], r->s_lens[i]);
        score[i] = (vectors ? dot(r->job.vectors,
                                  r->sjob.vectors + i * (size_t)r->sjob.dim,
                                  r->job.dim) : 0) +
                   0.02f * lex - 0.01f * (float)(r->s_source[i] - 1);
        order[i] = i;
    }
    size_t m = 0;
    if (score && order && picks && n) {
        for (size_t i = 1; i < n; i++)   /* by score, best first */
            for (size_t j = i; j > 0 && score[order[j]] > score[order[j - 1]]; j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        float best = score[order[0]];
        for (size_t i = 0; i < n && m < CHAT_EXTRACTIVE_PICKS; i++) {
            size_t k = order[i];
            if (m > 0 && score[k] < best - CHAT_EXTRACTIVE_MARGIN)
                break;
            picks[m++] = (rag_pick){r->s_source[k], r->s_texts[k], r->s_lens[k],
                                    r->s_pos[k]};
        }
    }
    size_t len = 0;
    char *answer = m ? rag_compose_extractive(picks, m,
                                              (size_t)r->max_tokens * 4, &len)
                     : strdup(not_covered_answer);
    free(score);
    free(order);
    free(picks);
    free(r->answer);
    r->answer = answer;
    r->stage = STAGE_FINISH;
    return true;
}

/* FINISH: the answer's citations checked, strict's last word, then sent. */
static bool stage_finish(chat_run *r)
{
    api *a = r->a;
    rag_source *srcs = calloc(r->n_src ? r->n_src : 1, sizeof *srcs);
    for (size_t i = 0; srcs && i < r->n_src; i++)
        srcs[i] = (rag_source){r->src[i].title, r->src[i].heading,
                               r->src[i].text, r->src[i].text_len};
    bool from_llm = r->answer_kind && strcmp(r->answer_kind, "llm") == 0;
    size_t n_cite = from_llm ? r->prompt.sources_kept : r->n_src;
    char *text = NULL;
    size_t len = 0;
    if (from_llm) {
        char *rest = NULL;
        size_t rest_len = 0;
        if (rag_stream_feed(&r->filter, "", 0, true, &rest, &rest_len) == 0) {
            if (rest_len)
                r->streamed = true;
            send_delta(r, rest, rest_len);
        }
        free(rest);
        const char *raw = r->filter.raw ? r->filter.raw : "";
        text = level_of(r) != GUARD_OFF
                   ? guard_redact(raw, r->filter.raw_len, &len, r->pii_answer)
                   : dup_n(raw, r->filter.raw_len);
        if (text && level_of(r) == GUARD_OFF)
            len = r->filter.raw_len;
    } else {
        const char *raw = r->answer ? r->answer : "";
        text = level_of(r) != GUARD_OFF
                   ? guard_redact(raw, strlen(raw), &len, r->pii_answer)
                   : strdup(raw);
        if (text && level_of(r) == GUARD_OFF)
            len = strlen(raw);
    }
    rag_cited_free(&r->cited);
    int rc = text ? rag_cite(text, len, srcs, n_cite, &r->cited) : LODE_ENOMEM;
    free(text);
    free(srcs);
    if (rc) {
        r->cited.text = strdup("");
        r->cited.len = 0;
    }
    r->unsupported = 0;
    int supported = 0;
    for (size_t i = 0; i < r->cited.n_citations; i++) {
        if (r->cited.citations[i].supported)
            supported++;
        else
            r->unsupported++;
    }
    if (from_llm && r->cited.len == 0) {
        r->degraded = true;
        r->degraded_reason = "llm_empty_answer";
        r->stage = STAGE_FALLBACK;
        return true;
    }
    if (from_llm && level_of(r) == GUARD_STRICT && supported == 0) {
        /* strict: no supported citation, no LLM answer */
        metrics_add_guard(a->metrics, METRICS_GUARD_STRICT_REPLACED, 1);
        r->replaced = true;
        r->degraded = true;
        r->degraded_reason = "unsupported_answer";
        r->stage = STAGE_FALLBACK;
        return true;
    }

    /* metrics, once per answer */
    for (int k = 0; k < GUARD_PII_N; k++)
        metrics_add_guard(a->metrics, (metrics_guard_kind)k,
                          (uint64_t)(r->pii_sent[k] + r->pii_answer[k]));
    metrics_add_guard(a->metrics, METRICS_GUARD_INVISIBLE, r->invisible_removed);
    metrics_add_guard(a->metrics, METRICS_GUARD_INJECTION_QUESTION,
                      r->injection_question);
    size_t injected = json_array_size(r->injected_dropped);
    for (size_t i = 0; i < r->n_src; i++)
        injected += r->src[i].injected;
    metrics_add_guard(a->metrics, METRICS_GUARD_INJECTION_SOURCE, injected);
    metrics_add_guard(a->metrics, METRICS_GUARD_NOT_COVERED, !r->covered);
    metrics_add_guard(a->metrics, METRICS_GUARD_CITATION_REMOVED,
                      (uint64_t)r->cited.removed);
    metrics_add_guard(a->metrics, METRICS_GUARD_CITATION_UNSUPPORTED,
                      (uint64_t)r->unsupported);
    metrics_add_chat(a->metrics, !r->covered ? METRICS_CHAT_NOT_COVERED
                                 : r->degraded ? METRICS_CHAT_DEGRADED
                                               : METRICS_CHAT_LLM);

    r->stage = STAGE_DONE;
    if (!r->stream) {
        if (r->req)
            http_respond_json(r->req, 200, r->openai ? openai_json(r, false)
                                                     : chat_json(r));
        return false;
    }
    /* the stream: what the client has not seen yet, then the end */
    if (!from_llm) {
        if (r->streamed && !r->openai) {
            sse_event(r, "replace", json_pack("{s:s%}", "text", r->cited.text,
                                              r->cited.len));
        } else if (r->streamed) {
            send_delta(r, "\n\n", 2);
            send_delta(r, r->cited.text, r->cited.len);
        } else {
            send_delta(r, r->cited.text, r->cited.len);
        }
    }
    if (r->openai) {
        sse_event(r, NULL, openai_json(r, true));
        http_stream_write(r->stream, "data: [DONE]\n\n", 14);
    } else {
        sse_event(r, "done", chat_json(r));
    }
    http_stream_close(r->stream);
    run_unref(r);   /* the writer's reference: r may be gone now */
    return false;
}

static void step(chat_run *r)
{
    for (;;) {
        bool go_on;
        switch (r->stage) {
        case STAGE_START: go_on = stage_start(r); break;
        case STAGE_REWRITE_WAIT: go_on = stage_rewrite_done(r); break;
        case STAGE_EMBED: go_on = stage_embed(r); break;
        case STAGE_EMBED_WAIT: go_on = stage_retrieve(r); break;
        case STAGE_DECIDE: go_on = stage_decide(r); break;
        case STAGE_FALLBACK: go_on = stage_fallback(r); break;
        case STAGE_FALLBACK_WAIT: go_on = stage_extract(r); break;
        case STAGE_FINISH: go_on = stage_finish(r); break;
        default: go_on = false;   /* ANSWER_WAIT is left by its callback */
        }
        if (!go_on)
            return;
    }
}

/* ---- requests ------------------------------------------------------------------- */

static chat_run *run_new(api *a, bool openai)
{
    chat_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->a = a;
    r->openai = openai;
    r->t0 = now_ms();
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
    int64_t chars = chars_in(clean, n);
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
    if (level_of(r) != GUARD_OFF) {
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
    size_t keep = bytes_of_chars(text, len, (size_t)r->a->cfg.chat_max_chars);
    char *c = dup_n(text, keep);
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
static chat_run *parse_chat(http_request *req, api *a)
{
    json_t *body = http_json_body(req);
    if (!body)
        return NULL;
    chat_run *r = run_new(a, false);
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
    run_free(r);
    return NULL;
}

/* POST /v1/chat/completions {model, messages, stream?, max_tokens?,
 * lode?: {k, where, collection}}.  The last message is the question
 * (a user message); earlier user and assistant messages are the history;
 * system messages are not passed on (lode's prompt is the only one). */
static chat_run *parse_completions(http_request *req, api *a)
{
    json_t *body = http_json_body(req);
    if (!body)
        return NULL;
    chat_run *r = run_new(a, true);
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
    run_free(r);
    return NULL;
}

static void handle(http_request *req, api *a, bool openai)
{
    chat_run *r = http_state(req);
    if (!r) {
        r = openai ? parse_completions(req, a) : parse_chat(req, a);
        if (!r)
            return;
        r->req = req;
        http_set_state(req, r, run_unref);
    } else if (r->stage == STAGE_DONE) {
        return;   /* cannot happen: answered runs are not resumed */
    }
    step(r);
}

void api_chat(http_request *req, void *app)
{
    handle(req, app, false);
}

void api_chat_completions(http_request *req, void *app)
{
    handle(req, app, true);
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
