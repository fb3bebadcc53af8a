/* llm.h - the LLM client: OpenAI's chat-completions protocol over
 * libcurl, so one client serves OpenRouter, OpenAI, a llama.cpp server,
 * Ollama or vLLM alike.
 *
 * One background thread drives every call through one libcurl multi
 * handle (as the webhook forwarder does), so no HTTP thread ever waits on
 * the LLM: a caller submits a call with callbacks and is told of each
 * streamed piece (on_delta) and of the end (on_done, exactly once), both
 * on the client's thread.  The thread also asks each call's still_wanted
 * callback every LLM_CHECK_MS; a call no longer wanted (its HTTP client
 * went away) is cancelled and its upstream connection closed.
 *
 * Retries: a connection error, a timeout of the connection, 429 and 5xx
 * are retried up to `retries` times after a jittered exponential backoff
 * (LLM_FIRST_DELAY_MS doubled per attempt, times 0.5..1), or after the
 * server's Retry-After, as long as the call's total time allows and no
 * piece of the answer was delivered yet (a stream already shown to a user
 * cannot be restarted).  The total timeout covers the whole call,
 * retries included.
 *
 * A circuit breaker (breaker.h) guards the service: a call finally failed
 * counts once, and while the breaker is open llm_submit refuses at once
 * with LODE_EBUSY, so the caller answers without the LLM.
 *
 * Streams are Server-Sent Events ("data: {chunk}" lines, "data: [DONE]");
 * a server that ignores "stream": true and answers with one JSON body is
 * accepted too (its answer arrives as one piece).  A stream that ends
 * without [DONE] or a finish_reason, malformed JSON, or an "error" object
 * in the stream is a protocol failure.
 */
#ifndef LODE_LLM_H
#define LODE_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "err.h"
#include "sbuf.h"

struct metrics;

#define LLM_DEFAULT_BASE_URL "https://openrouter.ai/api/v1"
#define LLM_DEFAULT_MODEL "openai/gpt-4o-mini"
#define LLM_DEFAULT_MAX_TOKENS 500
#define LLM_DEFAULT_TEMPERATURE 0.1
#define LLM_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define LLM_DEFAULT_TIMEOUT_MS 30000
#define LLM_DEFAULT_RETRIES 2
#define LLM_DEFAULT_MAX_ACTIVE 64
#define LLM_DEFAULT_QUEUE 1024
#define LLM_FIRST_DELAY_MS 500
#define LLM_RETRY_AFTER_MAX_MS 20000
#define LLM_CHECK_MS 100
#define LLM_MAX_RESPONSE (4u << 20)   /* bytes of one answer or error body */

typedef struct llm llm;

typedef struct llm_options {
    const char *base_url;        /* POSTs go to base_url + "/chat/completions" */
    const char *api_key;         /* NULL or "": no Authorization header */
    const char *model;
    int max_tokens;              /* <= 0: LLM_DEFAULT_MAX_TOKENS */
    double temperature;          /* < 0: LLM_DEFAULT_TEMPERATURE */
    long connect_timeout_ms;     /* <= 0: the default */
    long timeout_ms;             /* a whole call, retries included */
    int retries;                 /* < 0: LLM_DEFAULT_RETRIES */
    int max_active;              /* transfers at once; <= 0: the default */
    size_t max_queue;            /* calls waiting or running; 0: default */
    int breaker_failures;        /* <= 0: BREAKER_DEFAULT_FAILURES */
    int64_t breaker_cooldown_ms; /* < 0: BREAKER_DEFAULT_COOLDOWN_MS */
    struct metrics *metrics;     /* outcomes counted; may be NULL */
    void (*log)(void *ctx, const char *line);   /* may be NULL */
    void *log_ctx;
} llm_options;

typedef enum llm_outcome {
    LLM_OK = 0,
    LLM_FAIL_HTTP,        /* an error status, after any retries */
    LLM_FAIL_TIMEOUT,     /* the call's time ran out */
    LLM_FAIL_NETWORK,     /* could not connect, connection lost */
    LLM_FAIL_PROTOCOL,    /* malformed JSON, a broken stream */
    LLM_CANCELLED,        /* still_wanted said no */
    LLM_ABORTED,          /* the client stopped (shutdown) */
    LLM_OUTCOME_N,
} llm_outcome;

/* "ok", "http_error", "timeout", "network_error", "malformed",
 * "cancelled", "shutdown". */
const char *llm_outcome_name(llm_outcome o);

typedef struct llm_result {
    llm_outcome outcome;
    long status;              /* last HTTP status, 0 if none */
    const char *text;         /* the whole answer ("" on failure) */
    size_t len;
    int prompt_tokens;        /* from the server's usage, -1 if not given */
    int completion_tokens;
    const char *model;        /* as the server named it, else the option */
    const char *finish_reason;/* "stop", "length", ... or "" */
    int attempts;
    double seconds;           /* from submission to the end */
    bool streamed;            /* on_delta was called */
    const char *error;        /* why it failed, "" when it did not */
} llm_result;

typedef struct llm_message {
    const char *role;         /* "system", "user", "assistant" */
    const char *content;
} llm_message;

typedef struct llm_call {
    const llm_message *messages;   /* copied by llm_submit */
    size_t n_messages;
    bool stream;
    int max_tokens;                /* <= 0: the option's */
    double temperature;            /* < 0: the option's */
    /* On the client's thread.  on_delta (stream only) may be NULL;
     * on_done is called exactly once, and nothing of the call is touched
     * after it returns; still_wanted may be NULL. */
    void (*on_delta)(void *ctx, const char *text, size_t len);
    void (*on_done)(void *ctx, const llm_result *r);
    bool (*still_wanted)(void *ctx);
    void *ctx;
} llm_call;

int llm_start(const llm_options *o, llm **out, lode_error *err);
/* Queue a call.  0: on_done will be called.  Otherwise on_done is never
 * called: LODE_EBUSY when the breaker is open or the client is stopping,
 * LODE_ELIMIT when the queue is full, LODE_ENOMEM; err says which. */
int llm_submit(llm *c, const llm_call *call, lode_error *err);
/* Refuse new calls, let running ones finish for up to grace_ms, then
 * abort the rest (LLM_ABORTED) and join the thread.  Idempotent. */
void llm_stop(llm *c, int grace_ms);
void llm_free(llm *c);

void llm_breaker_state(llm *c, breaker_snapshot *out);
const char *llm_model_name(const llm *c);
const char *llm_base_url(const llm *c);
int llm_max_tokens(const llm *c);
/* Calls queued or running. */
size_t llm_pending(llm *c);

/* ---- pure helpers (tested and fuzzed directly) -------------------------- */

/* Server-Sent Events: bytes in, one callback per event with its data
 * (data lines joined by '\n').  Lines end with LF, CRLF or CR; comments
 * and other fields are ignored.  A callback's non-zero return stops the
 * feed and is returned; a line longer than LLM_MAX_RESPONSE is
 * LODE_ELIMIT. */
typedef struct llm_sse {
    sbuf line;
    sbuf data;
    bool has_data;
    bool cr;                   /* the last byte was a CR */
} llm_sse;

typedef int (*llm_sse_event_fn)(void *ctx, const char *data, size_t len);
int llm_sse_feed(llm_sse *p, const char *buf, size_t len,
                 llm_sse_event_fn on_event, void *ctx);
/* The stream ended: an event still pending is dispatched. */
int llm_sse_finish(llm_sse *p, llm_sse_event_fn on_event, void *ctx);
void llm_sse_free(llm_sse *p);

/* One chat-completion object or chunk, parsed. */
typedef struct llm_chunk {
    char *content;             /* message.content or delta.content, or NULL */
    size_t content_len;
    char finish_reason[32];    /* "" when null */
    char model[128];
    int prompt_tokens, completion_tokens;   /* -1 when absent */
    char error[256];           /* an "error" object's message, or "" */
} llm_chunk;

/* LODE_EFORMAT when the text is not a JSON object of that shape (the
 * message says why). */
int llm_parse_chunk(const char *json, size_t len, llm_chunk *out,
                    lode_error *err);
void llm_chunk_free(llm_chunk *c);
/* The request body for the messages (malloc'd JSON). */
char *llm_request_body(const char *model, const llm_message *messages,
                       size_t n, int max_tokens, double temperature,
                       bool stream);
/* Milliseconds before retry number `attempt` (1-based): Retry-After when
 * given (capped), else the jittered backoff; `unit` in [0, 1) is the
 * jitter's random draw. */
int64_t llm_retry_delay_ms(int attempt, long retry_after_s, double unit);

#endif
