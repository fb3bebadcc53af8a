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
 * 500.
 *
 * This file holds the state machine; api_chat_req.c reads requests,
 * api_chat_out.c writes answers and streams, api_chat_int.h is what they
 * share. */
#include "api_chat_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "sbuf.h"

static void step(chat_run *r);

/* ---- small helpers -------------------------------------------------------- */

double chat_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

char *chat_dup(const char *s, size_t n)
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
int64_t chat_chars_in(const char *s, size_t n)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* The byte length of the first max_chars characters of s. */
size_t chat_bytes_of_chars(const char *s, size_t len, size_t max_chars)
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

guard_level chat_level(const chat_run *r)
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
    if (chat_level(r) == GUARD_OFF) {
        if (out_len)
            *out_len = n;
        return s;
    }
    char *red = guard_redact(s, n, out_len, r->pii_sent);
    free(s);
    return red;
}

void chat_run_free(chat_run *r)
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
    for (size_t i = 0; i < r->n_sent; i++) {
        free((char *)r->s_texts[i]);
        free((char *)r->s_embed[i]);
    }
    free(r->s_texts);
    free(r->s_lens);
    free(r->s_embed);
    free(r->s_elens);
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

void chat_run_unref(void *p)
{
    chat_run *r = p;
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        chat_run_free(r);
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
        r->rewrite_raw = chat_dup(res->text, res->len);
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
        chat_send_delta(r, out, out_len);
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
    r->retrieval_ms = chat_now_ms();   /* start; made a duration below */
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
    if (chat_level(r) != GUARD_OFF) {
        guard_span *sp = NULL;
        size_t n = 0;
        if (guard_find_injection(clean, clean_len, &sp, &n)) {
            free(clean);
            return false;
        }
        if (n && chat_level(r) == GUARD_STRICT) {
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
    s->text = chat_dup(res->text, len);
    s->text_len = len;
    s->char_start = res->char_start;
    s->char_end = res->char_end;
    s->page_start = res->page_start;
    s->page_end = res->page_end;
    s->score = res->has_similarity ? res->similarity : res->score;
    s->ranking.vector_rank = res->vector_rank;
    s->ranking.keyword_rank = res->keyword_rank;
    s->ranking.keyword_score = res->keyword_score;
    s->ranking.has_similarity = res->has_similarity;
    s->ranking.similarity = res->similarity;
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
        .mode = r->how.mode,
        .text = r->query_ptr,
        .fusion = r->how.fusion,
        .alpha = r->how.alpha,
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
    /* Coverage is judged by similarity in every mode (each result has
     * one: the query was embedded). */
    r->best_score = n ? results[0].similarity : 0;
    for (size_t i = 0; ok && i < n; i++) {
        if (results[i].similarity > r->best_score)
            r->best_score = results[i].similarity;
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
    r->retrieval_ms = chat_now_ms() - r->retrieval_ms;
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
    } else if (r->injection_question && chat_level(r) == GUARD_STRICT) {
        r->answer_kind = "blocked";
        r->answer = strdup(blocked_answer);
    }
    if (r->want_stream && !chat_start_stream(r)) {
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
    rag_stream_init(&r->filter, chat_level(r) != GUARD_OFF, r->prompt.sources_kept);
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

/* A sentence as embedded: "Section: sentence", the section being the
 * heading above it in the chunk, else the chunk's heading path, so that
 * "4 weeks of leave at full basic salary." is found for a question about
 * the secondary caregiver.  malloc'd. */
static char *with_section(const chat_src *s, const rag_span *sp,
                          const char *t, size_t len)
{
    const char *sec = sp->sec_end > sp->sec_start ? s->text + sp->sec_start
                                                  : s->heading;
    size_t slen = sp->sec_end > sp->sec_start ? sp->sec_end - sp->sec_start
                                              : (sec ? strlen(sec) : 0);
    char *e = malloc(slen + len + 3);
    if (!e)
        return NULL;
    size_t w = 0;
    if (slen) {
        memcpy(e, sec, slen);
        memcpy(e + slen, ": ", 2);
        w = slen + 2;
    }
    memcpy(e + w, t, len);
    e[w + len] = 0;
    return e;
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
    r->s_embed = calloc(cap, sizeof *r->s_embed);
    r->s_elens = calloc(cap, sizeof *r->s_elens);
    if (!r->s_texts || !r->s_lens || !r->s_source || !r->s_pos ||
        !r->s_embed || !r->s_elens) {
        r->stage = STAGE_FALLBACK_WAIT;
        return true;
    }
    for (size_t i = 0; i < r->n_src && r->n_sent < cap; i++) {
        const chat_src *s = &r->src[i];
        rag_span *sp = NULL;
        size_t n = 0;
        /* sentences and table rows; a chunk of headings alone gives none */
        if (rag_sentences(s->text, s->text_len, &sp, &n))
            continue;
        for (size_t j = 0; j < n && r->n_sent < cap; j++) {
            size_t len = sp[j].end - sp[j].start;
            char *t = sp[j].row ? rag_row_text(s->text, &sp[j], &len)
                                : chat_dup(s->text + sp[j].start, len);
            char *e = t ? with_section(s, &sp[j], t, len) : NULL;
            if (!e) {
                free(t);
                break;
            }
            r->s_texts[r->n_sent] = t;
            r->s_lens[r->n_sent] = len;
            r->s_embed[r->n_sent] = e;
            r->s_elens[r->n_sent] = strlen(e);
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
    r->sjob.texts = r->s_embed;
    r->sjob.lens = r->s_elens;
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
            chat_send_delta(r, rest, rest_len);
        }
        free(rest);
        const char *raw = r->filter.raw ? r->filter.raw : "";
        text = chat_level(r) != GUARD_OFF
                   ? guard_redact(raw, r->filter.raw_len, &len, r->pii_answer)
                   : chat_dup(raw, r->filter.raw_len);
        if (text && chat_level(r) == GUARD_OFF)
            len = r->filter.raw_len;
    } else {
        const char *raw = r->answer ? r->answer : "";
        text = chat_level(r) != GUARD_OFF
                   ? guard_redact(raw, strlen(raw), &len, r->pii_answer)
                   : strdup(raw);
        if (text && chat_level(r) == GUARD_OFF)
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
    if (from_llm && chat_level(r) == GUARD_STRICT && supported == 0) {
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
            http_respond_json(r->req, 200, r->openai ? chat_openai_json(r, false)
                                                     : chat_answer_json(r));
        return false;
    }
    /* the stream: what the client has not seen yet, then the end */
    if (!from_llm) {
        if (r->streamed && !r->openai) {
            chat_sse_event(r, "replace", json_pack("{s:s%}", "text", r->cited.text,
                                              r->cited.len));
        } else if (r->streamed) {
            chat_send_delta(r, "\n\n", 2);
            chat_send_delta(r, r->cited.text, r->cited.len);
        } else {
            chat_send_delta(r, r->cited.text, r->cited.len);
        }
    }
    if (r->openai) {
        chat_sse_event(r, NULL, chat_openai_json(r, true));
        http_stream_write(r->stream, "data: [DONE]\n\n", 14);
    } else {
        chat_sse_event(r, "done", chat_answer_json(r));
    }
    http_stream_close(r->stream);
    chat_run_unref(r);   /* the writer's reference: r may be gone now */
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

static void handle(http_request *req, api *a, bool openai)
{
    chat_run *r = http_state(req);
    if (!r) {
        r = openai ? chat_parse_completions(req, a) : chat_parse(req, a);
        if (!r)
            return;
        r->req = req;
        http_set_state(req, r, chat_run_unref);
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
