/* llm.c - the LLM client (see llm.h).
 *
 * Threads: llm_submit builds the request body and a call record, checks
 * the breaker and appends the call to `incoming` under `lock`, then wakes
 * the worker with curl_multi_wakeup().  From then on only the worker
 * touches the call: it starts attempts, receives the bytes (write
 * callback: the SSE parser and on_delta run there), decides on retries,
 * polls still_wanted, and finally calls on_done and frees the call.  No
 * lock is held across a network operation or a callback.
 *
 * A call waiting for its retry holds no connection.  The worker sleeps in
 * curl_multi_poll() until a transfer progresses, a retry is due, a
 * submitter wakes it, or LLM_CHECK_MS pass while calls are out (to ask
 * still_wanted). */
#include "llm.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "metrics.h"

typedef struct call {
    llm_call spec;                /* messages not kept: the body is built */
    char *body;
    size_t body_len;
    int max_attempts;
    int attempts;
    int64_t submitted_ms, deadline_ms, next_ms, checked_ms;
    CURL *easy;
    bool finished;
    /* the attempt in progress */
    long status;
    bool status_known, event_stream;
    sbuf resp;                    /* a JSON body (answer or error) */
    llm_sse sse;
    bool done_seen;
    bool broken;                  /* a protocol error found in a callback */
    char broken_why[256];
    /* the answer so far */
    sbuf text;
    bool streamed;
    char finish[32];
    char model[128];
    int prompt_tokens, completion_tokens;
    char error[256];
} call;

struct llm {
    llm_options opts;
    char *base_url, *model, *api_key, *url;
    struct curl_slist *headers;   /* shared by every transfer */
    CURLM *multi;
    pthread_t thread;
    bool joined;
    breaker breaker;
    size_t capacity;
    int max_active;

    pthread_mutex_t lock;         /* guards the four below */
    call **incoming;
    size_t n_incoming;
    size_t pending;               /* incoming + the worker's calls */
    bool stopping;
    int64_t deadline_ms;          /* once stopping */

    /* the worker's own */
    call **calls;
    size_t n_calls;
    int n_active;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3)))
static void log_line(llm *c, const char *fmt, ...)
{
    if (!c->opts.log)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->opts.log(c->opts.log_ctx, line);
}

const char *llm_outcome_name(llm_outcome o)
{
    static const char *const names[LLM_OUTCOME_N] = {
        "ok", "http_error", "timeout", "network_error", "malformed",
        "cancelled", "shutdown"};
    return (int)o >= 0 && o < LLM_OUTCOME_N ? names[o] : "unknown";
}

/* ---- pure helpers: SSE ------------------------------------------------------ */

void llm_sse_free(llm_sse *p)
{
    sbuf_free(&p->line);
    sbuf_free(&p->data);
    p->has_data = false;
    p->cr = false;
}

/* A complete line (without its end). */
static int sse_line(llm_sse *p, llm_sse_event_fn on_event, void *ctx)
{
    const char *l = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    int rc = 0;
    if (n == 0) {
        if (p->has_data) {
            rc = on_event(ctx, p->data.data ? p->data.data : "", p->data.len);
            sbuf_free(&p->data);
            p->has_data = false;
        }
    } else if (l[0] != ':') {
        const char *colon = memchr(l, ':', n);
        size_t name_len = colon ? (size_t)(colon - l) : n;
        if (name_len == 4 && memcmp(l, "data", 4) == 0) {
            const char *v = colon ? colon + 1 : l + n;
            if (v < l + n && *v == ' ')
                v++;
            if (p->has_data)
                sbuf_putc(&p->data, '\n');
            sbuf_append(&p->data, v, (size_t)(l + n - v));
            p->has_data = true;
            if (p->data.oom)
                rc = LODE_ENOMEM;
        }
        /* event:, id:, retry: and unknown fields do not matter here */
    }
    p->line.len = 0;
    if (p->line.data)
        p->line.data[0] = '\0';
    return rc;
}

int llm_sse_feed(llm_sse *p, const char *buf, size_t len,
                 llm_sse_event_fn on_event, void *ctx)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n' && p->cr) {    /* the LF of a CRLF */
            p->cr = false;
            continue;
        }
        p->cr = c == '\r';
        if (c == '\n' || c == '\r') {
            int rc = sse_line(p, on_event, ctx);
            if (rc)
                return rc;
            continue;
        }
        /* the rest of the line at once */
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (p->line.len + (j - i) > LLM_MAX_RESPONSE)
            return LODE_ELIMIT;
        sbuf_append(&p->line, buf + i, j - i);
        if (p->line.oom)
            return LODE_ENOMEM;
        i = j - 1;
    }
    return 0;
}

int llm_sse_finish(llm_sse *p, llm_sse_event_fn on_event, void *ctx)
{
    int rc = 0;
    if (p->line.len)
        rc = sse_line(p, on_event, ctx);
    if (!rc && p->has_data) {
        rc = on_event(ctx, p->data.data ? p->data.data : "", p->data.len);
        sbuf_free(&p->data);
        p->has_data = false;
    }
    return rc;
}

/* ---- pure helpers: JSON ----------------------------------------------------- */

void llm_chunk_free(llm_chunk *c)
{
    free(c->content);
    c->content = NULL;
}

static void copy_str(char *dst, size_t size, json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, size, "%s", json_string_value(v));
}

int llm_parse_chunk(const char *text, size_t len, llm_chunk *out,
                    lode_error *err)
{
    memset(out, 0, sizeof *out);
    out->prompt_tokens = out->completion_tokens = -1;
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    if (!o)
        return lode_error_set(err, LODE_EFORMAT, "the LLM sent invalid JSON: "
                              "%s", je.text);
    int rc = 0;
    if (!json_is_object(o)) {
        rc = lode_error_set(err, LODE_EFORMAT, "the LLM sent JSON that is "
                            "not an object");
        goto out;
    }
    json_t *e = json_object_get(o, "error");
    if (e && !json_is_null(e)) {
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
        if (json_is_string(m))
            snprintf(out->error, sizeof out->error, "%s", json_string_value(m));
        else
            snprintf(out->error, sizeof out->error, "an error without a message");
        goto out;
    }
    copy_str(out->model, sizeof out->model, json_object_get(o, "model"));
    json_t *usage = json_object_get(o, "usage");
    if (json_is_object(usage)) {
        json_t *pt = json_object_get(usage, "prompt_tokens");
        json_t *ct = json_object_get(usage, "completion_tokens");
        if (json_is_integer(pt))
            out->prompt_tokens = (int)json_integer_value(pt);
        if (json_is_integer(ct))
            out->completion_tokens = (int)json_integer_value(ct);
    }
    json_t *choices = json_object_get(o, "choices");
    if (!json_is_array(choices)) {
        /* a usage-only chunk has "choices": [] or none */
        if (choices || !usage)
            rc = lode_error_set(err, LODE_EFORMAT, "the LLM's answer has no "
                                "\"choices\" array");
        goto out;
    }
    if (json_array_size(choices) == 0)
        goto out;
    json_t *ch = json_array_get(choices, 0);
    if (!json_is_object(ch)) {
        rc = lode_error_set(err, LODE_EFORMAT, "the LLM's choice is not an "
                            "object");
        goto out;
    }
    copy_str(out->finish_reason, sizeof out->finish_reason,
             json_object_get(ch, "finish_reason"));
    json_t *msg = json_object_get(ch, "delta");
    if (!msg)
        msg = json_object_get(ch, "message");
    json_t *content = json_is_object(msg) ? json_object_get(msg, "content")
                                          : NULL;
    if (!content && json_is_string(json_object_get(ch, "text")))
        content = json_object_get(ch, "text");     /* completions style */
    if (json_is_string(content)) {
        size_t n = json_string_length(content);
        out->content = malloc(n + 1);
        if (!out->content) {
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(out->content, json_string_value(content), n + 1);
        out->content_len = n;
    } else if (content && !json_is_null(content)) {
        rc = lode_error_set(err, LODE_EFORMAT, "the LLM's content is not a "
                            "string");
    } else if (!msg && !out->finish_reason[0]) {
        rc = lode_error_set(err, LODE_EFORMAT, "the LLM's choice has no "
                            "message");
    }
out:
    json_decref(o);
    if (rc)
        llm_chunk_free(out);
    return rc;
}

char *llm_request_body(const char *model, const llm_message *messages,
                       size_t n, int max_tokens, double temperature,
                       bool stream)
{
    json_t *msgs = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role",
                                              messages[i].role, "content",
                                              messages[i].content));
    json_t *o = json_pack("{s:s,s:o,s:i,s:f,s:b}", "model", model, "messages",
                          msgs, "max_tokens", max_tokens, "temperature",
                          temperature, "stream", stream);
    if (o && stream)
        json_object_set_new(o, "stream_options",
                            json_pack("{s:b}", "include_usage", 1));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

int64_t llm_retry_delay_ms(int attempt, long retry_after_s, double unit)
{
    if (retry_after_s > 0) {
        int64_t ms = (int64_t)retry_after_s * 1000;
        return ms < LLM_RETRY_AFTER_MAX_MS ? ms : LLM_RETRY_AFTER_MAX_MS;
    }
    if (attempt < 1)
        attempt = 1;
    if (attempt > 16)
        attempt = 16;
    double base = (double)LLM_FIRST_DELAY_MS * (double)(1 << (attempt - 1));
    if (unit < 0)
        unit = 0;
    if (unit >= 1)
        unit = 0.999;
    return (int64_t)(base * (0.5 + 0.5 * unit));
}

/* ---- calls ------------------------------------------------------------------- */

static void attempt_reset(call *k)
{
    k->status = 0;
    k->status_known = false;
    k->event_stream = false;
    sbuf_free(&k->resp);
    llm_sse_free(&k->sse);
    k->done_seen = false;
    k->broken = false;
    k->broken_why[0] = '\0';
}

static void call_free(call *k)
{
    if (!k)
        return;
    free(k->body);
    sbuf_free(&k->resp);
    llm_sse_free(&k->sse);
    sbuf_free(&k->text);
    free(k);
}

static void mark_broken(call *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mark_broken(call *k, const char *fmt, ...)
{
    if (k->broken)
        return;
    k->broken = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->broken_why, sizeof k->broken_why, fmt, ap);
    va_end(ap);
}

/* Take what a parsed chunk says into the call. */
static void take_chunk(call *k, const llm_chunk *ch)
{
    if (ch->model[0])
        snprintf(k->model, sizeof k->model, "%s", ch->model);
    if (ch->finish_reason[0])
        snprintf(k->finish, sizeof k->finish, "%s", ch->finish_reason);
    if (ch->prompt_tokens >= 0)
        k->prompt_tokens = ch->prompt_tokens;
    if (ch->completion_tokens >= 0)
        k->completion_tokens = ch->completion_tokens;
}

static int on_sse_event(void *ctx, const char *data, size_t len)
{
    call *k = ctx;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        k->done_seen = true;
        return 0;
    }
    llm_chunk ch;
    lode_error e = {0};
    if (llm_parse_chunk(data, len, &ch, &e)) {
        mark_broken(k, "%s", e.message);
        return LODE_EFORMAT;
    }
    if (ch.error[0]) {
        mark_broken(k, "the LLM reported an error in the stream: %s", ch.error);
        llm_chunk_free(&ch);
        return LODE_EFORMAT;
    }
    take_chunk(k, &ch);
    if (ch.content_len) {
        if (k->text.len + ch.content_len > LLM_MAX_RESPONSE) {
            mark_broken(k, "the answer is over %u bytes", LLM_MAX_RESPONSE);
            llm_chunk_free(&ch);
            return LODE_ELIMIT;
        }
        sbuf_append(&k->text, ch.content, ch.content_len);
        k->streamed = true;
        if (k->spec.on_delta)
            k->spec.on_delta(k->spec.ctx, ch.content, ch.content_len);
    }
    llm_chunk_free(&ch);
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    call *k = ctx;
    size_t n = size * nmemb;
    if (!k->status_known) {
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &k->status);
        char *ct = NULL;
        curl_easy_getinfo(k->easy, CURLINFO_CONTENT_TYPE, &ct);
        k->event_stream = k->spec.stream && k->status >= 200 &&
                          k->status < 300 && ct &&
                          strncasecmp(ct, "text/event-stream", 17) == 0;
        k->status_known = true;
    }
    if (k->event_stream) {
        if (llm_sse_feed(&k->sse, data, n, on_sse_event, k))
            return 0;  /* stops the transfer; k->broken says why */
        return n;
    }
    if (k->resp.len + n > LLM_MAX_RESPONSE) {
        mark_broken(k, "the LLM's response is over %u bytes", LLM_MAX_RESPONSE);
        return 0;
    }
    sbuf_append(&k->resp, data, n);
    return k->resp.oom ? 0 : n;
}

/* The whole JSON body of a 2xx answer (non-streamed, or a server that
 * ignored "stream"). */
static void take_json_answer(call *k)
{
    llm_chunk ch;
    lode_error e = {0};
    if (llm_parse_chunk(k->resp.data ? k->resp.data : "", k->resp.len, &ch,
                        &e)) {
        mark_broken(k, "%s", e.message);
        return;
    }
    if (ch.error[0]) {
        mark_broken(k, "the LLM reported an error: %s", ch.error);
        llm_chunk_free(&ch);
        return;
    }
    take_chunk(k, &ch);
    if (!ch.content) {
        mark_broken(k, "the LLM's answer has no message content");
        return;
    }
    sbuf_append(&k->text, ch.content, ch.content_len);
    if (k->spec.stream && ch.content_len) {
        k->streamed = true;
        if (k->spec.on_delta)
            k->spec.on_delta(k->spec.ctx, ch.content, ch.content_len);
    }
    llm_chunk_free(&ch);
    k->done_seen = true;
}

/* The message of an error body, for the log and the caller. */
static void error_from_body(call *k)
{
    llm_chunk ch;
    if (k->resp.len && llm_parse_chunk(k->resp.data, k->resp.len, &ch, NULL) == 0) {
        if (ch.error[0])
            snprintf(k->error, sizeof k->error, "HTTP %ld: %.200s", k->status,
                     ch.error);
        llm_chunk_free(&ch);
    }
    if (!k->error[0])
        snprintf(k->error, sizeof k->error, "HTTP %ld", k->status);
}

/* ---- the worker ------------------------------------------------------------- */

static bool start_attempt(llm *c, call *k, int64_t now)
{
    CURL *e = curl_easy_init();
    if (!e)
        return false;
    attempt_reset(k);
    long left = (long)(k->deadline_ms - now);
    if (left < 1)
        left = 1;
    long connect = c->opts.connect_timeout_ms < left ? c->opts.connect_timeout_ms
                                                     : left;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, k->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "lode");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)k);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)k);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    k->easy = e;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        k->easy = NULL;
        return false;
    }
    k->attempts++;
    c->n_active++;
    return true;
}

static void stop_transfer(llm *c, call *k)
{
    if (!k->easy)
        return;
    curl_multi_remove_handle(c->multi, k->easy);
    curl_easy_cleanup(k->easy);
    k->easy = NULL;
    c->n_active--;
}

/* The call is over: breaker, metrics, on_done. */
static void finish(llm *c, call *k, llm_outcome outcome)
{
    stop_transfer(c, k);
    int64_t now = now_ms();
    if (outcome == LLM_OK)
        breaker_record(&c->breaker, true, now);
    else if (outcome == LLM_CANCELLED || outcome == LLM_ABORTED)
        breaker_abandon(&c->breaker);
    else
        breaker_record(&c->breaker, false, now);
    llm_result r = {
        .outcome = outcome,
        .status = k->status,
        .text = outcome == LLM_OK && k->text.data ? k->text.data : "",
        .len = outcome == LLM_OK ? k->text.len : 0,
        .prompt_tokens = k->prompt_tokens,
        .completion_tokens = k->completion_tokens,
        .model = k->model[0] ? k->model : c->model,
        .finish_reason = k->finish,
        .attempts = k->attempts,
        .seconds = (double)(now - k->submitted_ms) / 1000.0,
        .streamed = k->streamed,
        .error = outcome == LLM_OK ? "" : k->error,
    };
    if (outcome != LLM_OK && !k->error[0])
        snprintf(k->error, sizeof k->error, "%s", llm_outcome_name(outcome));
    if (c->opts.metrics)
        metrics_add_llm(c->opts.metrics, (int)outcome, r.seconds,
                        r.prompt_tokens, r.completion_tokens);
    if (outcome != LLM_OK && outcome != LLM_CANCELLED)
        log_line(c, "LLM call failed after %d attempt%s (%.1f s): %s",
                 k->attempts, k->attempts == 1 ? "" : "s", r.seconds, k->error);
    k->spec.on_done(k->spec.ctx, &r);
    k->finished = true;
}

/* An attempt ended with curl's result: done, retry or fail. */
static void attempt_done(llm *c, call *k, CURLcode res)
{
    long retry_after = 0;
    curl_off_t ra = 0;
    if (k->easy) {
        if (!k->status_known)
            curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &k->status);
        if (curl_easy_getinfo(k->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
            ra > 0)
            retry_after = (long)ra;
    }
    stop_transfer(c, k);
    llm_outcome outcome;
    bool retryable = false;
    if (k->broken) {
        snprintf(k->error, sizeof k->error, "%s", k->broken_why);
        outcome = LLM_FAIL_PROTOCOL;
    } else if (res != CURLE_OK) {
        snprintf(k->error, sizeof k->error, "%s", curl_easy_strerror(res));
        outcome = res == CURLE_OPERATION_TIMEDOUT ? LLM_FAIL_TIMEOUT
                                                  : LLM_FAIL_NETWORK;
        retryable = true;
    } else if (k->status < 200 || k->status > 299) {
        error_from_body(k);
        outcome = LLM_FAIL_HTTP;
        retryable = k->status == 429 || k->status >= 500;
    } else {
        if (!k->event_stream)
            take_json_answer(k);
        else
            llm_sse_finish(&k->sse, on_sse_event, k);
        if (!k->broken && k->event_stream && !k->done_seen && !k->finish[0])
            mark_broken(k, "the stream ended before the answer was finished");
        if (k->broken) {
            snprintf(k->error, sizeof k->error, "%s", k->broken_why);
            outcome = LLM_FAIL_PROTOCOL;
        } else {
            finish(c, k, LLM_OK);
            return;
        }
    }
    int64_t now = now_ms();
    if (retryable && !k->streamed && k->attempts < k->max_attempts) {
        double unit = (double)arc4random_uniform(1000000) / 1e6;
        int64_t delay = llm_retry_delay_ms(k->attempts, retry_after, unit);
        if (now + delay < k->deadline_ms - 50) {
            k->next_ms = now + delay;
            return;
        }
    }
    if (outcome == LLM_FAIL_NETWORK && now >= k->deadline_ms)
        outcome = LLM_FAIL_TIMEOUT;
    finish(c, k, outcome);
}

static void collect_done(llm *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        call *k = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&k);
        if (!k) {
            curl_multi_remove_handle(c->multi, e);
            curl_easy_cleanup(e);
            continue;
        }
        attempt_done(c, k, res);
    }
}

/* Start due attempts, cancel unwanted calls and timed-out waits. */
static void tend(llm *c, int64_t now)
{
    for (size_t i = 0; i < c->n_calls; i++) {
        call *k = c->calls[i];
        if (k->finished)
            continue;
        if (k->spec.still_wanted && now - k->checked_ms >= LLM_CHECK_MS) {
            k->checked_ms = now;
            if (!k->spec.still_wanted(k->spec.ctx)) {
                snprintf(k->error, sizeof k->error, "the client went away");
                finish(c, k, LLM_CANCELLED);
                continue;
            }
        }
        if (k->easy)
            continue;
        if (now >= k->deadline_ms) {
            if (!k->error[0])
                snprintf(k->error, sizeof k->error, "no answer within the "
                         "time limit");
            finish(c, k, LLM_FAIL_TIMEOUT);
            continue;
        }
        if (k->next_ms <= now && c->n_active < c->max_active &&
            !start_attempt(c, k, now)) {
            snprintf(k->error, sizeof k->error, "cannot start a transfer");
            finish(c, k, LLM_FAIL_NETWORK);
        }
    }
}

static void sweep(llm *c)
{
    size_t kept = 0, freed = 0;
    for (size_t i = 0; i < c->n_calls; i++) {
        if (c->calls[i]->finished) {
            call_free(c->calls[i]);
            freed++;
        } else {
            c->calls[kept++] = c->calls[i];
        }
    }
    c->n_calls = kept;
    if (freed) {
        pthread_mutex_lock(&c->lock);
        c->pending -= freed;
        pthread_mutex_unlock(&c->lock);
    }
}

static int wait_ms(llm *c, int64_t now, bool stopping, int64_t deadline)
{
    int64_t wait = 1000;
    for (size_t i = 0; i < c->n_calls; i++) {
        const call *k = c->calls[i];
        if (k->spec.still_wanted && LLM_CHECK_MS < wait)
            wait = LLM_CHECK_MS;
        if (!k->easy) {
            int64_t due = k->next_ms < k->deadline_ms ? k->next_ms : k->deadline_ms;
            if (due - now < wait)
                wait = due - now;
        }
    }
    if (stopping && deadline - now < wait)
        wait = deadline - now;
    return wait < 0 ? 0 : (int)wait;
}

static void *worker_main(void *arg)
{
    llm *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n_incoming; i++)
            c->calls[c->n_calls++] = c->incoming[i];
        c->n_incoming = 0;
        bool stopping = c->stopping;
        int64_t deadline = c->deadline_ms;
        pthread_mutex_unlock(&c->lock);
        int64_t now = now_ms();
        if (stopping && (c->n_calls == 0 || now >= deadline))
            break;
        tend(c, now);
        int running = 0;
        curl_multi_perform(c->multi, &running);
        collect_done(c);
        sweep(c);
        curl_multi_poll(c->multi, NULL, 0, wait_ms(c, now_ms(), stopping,
                                                  deadline), NULL);
    }
    /* abandon what is left */
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_incoming; i++)
        c->calls[c->n_calls++] = c->incoming[i];
    c->n_incoming = 0;
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < c->n_calls; i++) {
        if (c->calls[i]->finished)
            continue;
        snprintf(c->calls[i]->error, sizeof c->calls[i]->error,
                 "the server is shutting down");
        finish(c, c->calls[i], LLM_ABORTED);
    }
    sweep(c);
    return NULL;
}

/* ---- the interface ------------------------------------------------------------ */

static char *dup_or(const char *s, const char *fallback)
{
    return strdup(s && *s ? s : fallback);
}

int llm_start(const llm_options *o, llm **out, lode_error *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return lode_error_set(err, LODE_EINTERNAL, "cannot initialise libcurl");
    llm *c = calloc(1, sizeof *c);
    if (!c) {
        curl_global_cleanup();
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    c->joined = true;  /* until the thread runs */
    c->opts = *o;
    if (c->opts.max_tokens <= 0)
        c->opts.max_tokens = LLM_DEFAULT_MAX_TOKENS;
    if (c->opts.temperature < 0)
        c->opts.temperature = LLM_DEFAULT_TEMPERATURE;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = LLM_DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = LLM_DEFAULT_TIMEOUT_MS;
    if (c->opts.retries < 0)
        c->opts.retries = LLM_DEFAULT_RETRIES;
    c->max_active = o->max_active > 0 ? o->max_active : LLM_DEFAULT_MAX_ACTIVE;
    c->capacity = o->max_queue ? o->max_queue : LLM_DEFAULT_QUEUE;
    breaker_init(&c->breaker, o->breaker_failures, o->breaker_cooldown_ms);
    pthread_mutex_init(&c->lock, NULL);
    c->base_url = dup_or(o->base_url, LLM_DEFAULT_BASE_URL);
    c->model = dup_or(o->model, LLM_DEFAULT_MODEL);
    c->api_key = o->api_key && *o->api_key ? strdup(o->api_key) : NULL;
    int rc = 0;
    if (!c->base_url || !c->model || (o->api_key && *o->api_key && !c->api_key))
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    if (!rc) {
        size_t n = strlen(c->base_url);
        while (n > 0 && c->base_url[n - 1] == '/')
            c->base_url[--n] = '\0';
        if (strncmp(c->base_url, "http://", 7) != 0 &&
            strncmp(c->base_url, "https://", 8) != 0)
            rc = lode_error_set(err, LODE_EINVAL, "the LLM base URL must start "
                                "with http:// or https://, not '%s'", c->base_url);
    }
    if (!rc) {
        c->url = malloc(strlen(c->base_url) + 32);
        if (c->url)
            sprintf(c->url, "%s/chat/completions", c->base_url);
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        if (h)
            h = curl_slist_append(h, "Accept: text/event-stream, application/json");
        if (h)
            h = curl_slist_append(h, "Expect:");
        if (h)
            h = curl_slist_append(h, "X-Title: lode");
        if (h && c->api_key) {
            char *line = malloc(strlen(c->api_key) + 32);
            if (line) {
                sprintf(line, "Authorization: Bearer %s", c->api_key);
                struct curl_slist *h2 = curl_slist_append(h, line);
                free(line);
                if (!h2) {
                    curl_slist_free_all(h);
                    h = NULL;
                } else {
                    h = h2;
                }
            } else {
                curl_slist_free_all(h);
                h = NULL;
            }
        }
        c->headers = h;
        c->incoming = calloc(c->capacity, sizeof *c->incoming);
        c->calls = calloc(c->capacity, sizeof *c->calls);
        c->multi = curl_multi_init();
        if (!c->url || !c->headers || !c->incoming || !c->calls || !c->multi)
            rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    if (!rc) {
        c->joined = false;
        if (pthread_create(&c->thread, NULL, worker_main, c) != 0) {
            c->joined = true;
            rc = lode_error_set(err, LODE_EINTERNAL, "cannot start the LLM "
                                "client's thread");
        }
    }
    if (rc) {
        llm_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int llm_submit(llm *c, const llm_call *spec, lode_error *err)
{
    if (!c || !spec || !spec->on_done || spec->n_messages == 0)
        return lode_error_set(err, LODE_EINVAL, "an LLM call needs messages "
                              "and an on_done callback");
    int64_t now = now_ms();
    call *k = calloc(1, sizeof *k);
    if (!k)
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    k->spec = *spec;
    k->spec.messages = NULL;
    k->prompt_tokens = k->completion_tokens = -1;
    k->body = llm_request_body(c->model, spec->messages, spec->n_messages,
                               spec->max_tokens > 0 ? spec->max_tokens
                                                    : c->opts.max_tokens,
                               spec->temperature >= 0 ? spec->temperature
                                                      : c->opts.temperature,
                               spec->stream);
    if (!k->body) {
        free(k);
        return lode_error_set(err, LODE_ENOMEM, "out of memory");
    }
    k->body_len = strlen(k->body);
    k->max_attempts = 1 + c->opts.retries;
    k->submitted_ms = k->next_ms = k->checked_ms = now;
    k->deadline_ms = now + c->opts.timeout_ms;
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->stopping)
        rc = lode_error_set(err, LODE_EBUSY, "the server is shutting down");
    else if (c->pending >= c->capacity)
        rc = lode_error_set(err, LODE_ELIMIT, "%zu LLM calls are already "
                            "waiting or running", c->pending);
    else if (!breaker_allow(&c->breaker, now))
        rc = lode_error_set(err, LODE_EBUSY, "the LLM's circuit breaker is "
                            "open after repeated failures");
    if (!rc) {
        c->incoming[c->n_incoming++] = k;
        c->pending++;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc) {
        call_free(k);
        return rc;
    }
    curl_multi_wakeup(c->multi);
    return 0;
}

void llm_stop(llm *c, int grace_ms)
{
    if (!c || c->joined)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    c->deadline_ms = now_ms() + (grace_ms > 0 ? grace_ms : 0);
    pthread_mutex_unlock(&c->lock);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    c->joined = true;
}

void llm_free(llm *c)
{
    if (!c)
        return;
    llm_stop(c, 0);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    curl_slist_free_all(c->headers);
    free(c->incoming);
    free(c->calls);
    free(c->base_url);
    free(c->model);
    free(c->api_key);
    free(c->url);
    breaker_destroy(&c->breaker);
    pthread_mutex_destroy(&c->lock);
    free(c);
    curl_global_cleanup();
}

void llm_breaker_state(llm *c, breaker_snapshot *out)
{
    breaker_get(&c->breaker, now_ms(), out);
}

const char *llm_model_name(const llm *c) { return c->model; }
const char *llm_base_url(const llm *c) { return c->base_url; }
int llm_max_tokens(const llm *c) { return c->opts.max_tokens; }

size_t llm_pending(llm *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->pending;
    pthread_mutex_unlock(&c->lock);
    return n;
}
