/* api_chat_int.h - private to the chat files: the state of one chat
 * (chat_run) and what api_chat.c (the state machine), api_chat_out.c (its
 * JSON and Server-Sent Events) and api_chat_req.c (reading requests)
 * share.  See api_chat.c for how a chat runs. */
#ifndef LODE_API_CHAT_INT_H
#define LODE_API_CHAT_INT_H

#include "api.h"
#include "guard.h"
#include "llm.h"
#include "rag.h"

#define CHAT_DEFAULT_K 5
#define CHAT_MAX_K 20
#define CHAT_SNIPPET_CHARS 320
#define CHAT_MAX_SENTENCES 64
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
    int page_start, page_end;       /* 0 when unknown */
    float score;              /* similarity to the question (the fused
                                 score when the search had no vector) */
    store_result ranking;     /* only the retriever fields are set */
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
    api_search_mode how;      /* retrieval mode, fusion, alpha */
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
    const char **s_texts;     /* as answered */
    size_t *s_lens;
    const char **s_embed;     /* as embedded: after the heading it is under */
    size_t *s_elens;
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

/* ---- api_chat.c ---------------------------------------------------------- */

double chat_now_ms(void);
/* A NUL-terminated copy of n bytes (NULL when out of memory). */
char *chat_dup(const char *s, size_t n);
/* Code points in the first n bytes of UTF-8 s. */
int64_t chat_chars_in(const char *s, size_t n);
/* Bytes of the first max_chars code points of s. */
size_t chat_bytes_of_chars(const char *s, size_t len, size_t max_chars);
guard_level chat_level(const chat_run *r);
/* A new run (one reference: the request's), NULL when out of memory. */
chat_run *chat_run_new(api *a, bool openai);
void chat_run_free(chat_run *r);
/* Drop a reference (the request's state free function). */
void chat_run_unref(void *p);

/* ---- api_chat_out.c -------------------------------------------------------- */

/* The /chat answer object, OpenAI's chat.completion (chunk: the last
 * chunk of a stream). */
json_t *chat_answer_json(const chat_run *r);
json_t *chat_openai_json(const chat_run *r, bool chunk);
/* One SSE event (event may be NULL: data only); takes data's reference. */
void chat_sse_event(chat_run *r, const char *event, json_t *data);
/* A piece of the answer as a delta event (or an OpenAI chunk). */
void chat_send_delta(chat_run *r, const char *text, size_t len);
/* Start the SSE answer and send the sources (on the handler's thread);
 * from then on r->req is NULL and r holds the writer's reference too. */
bool chat_start_stream(chat_run *r);

/* ---- api_chat_req.c ---------------------------------------------------------- */

/* A run from the body of POST /chat or /v1/chat/completions, or NULL
 * after answering the error. */
chat_run *chat_parse(http_request *req, api *a);
chat_run *chat_parse_completions(http_request *req, api *a);

#endif
