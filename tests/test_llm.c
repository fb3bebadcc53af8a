/* test_llm.c - the LLM client's pure parts (llm.c): Server-Sent Events
 * cut at every byte boundary and with every line ending, comments and
 * multi-line data; chat-completion objects and stream chunks, usage-only
 * chunks, error objects and malformed ones; the request body; the retry
 * delay with Retry-After, backoff and jitter bounds.  The network side is
 * tested end to end against a test LLM server (tests/server/test_chat*.py). */
#include "test.h"
#include "llm.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct events {
    char got[16][128];
    int n;
    int stop_at;      /* return an error at this event (-1: never) */
} events;

static int on_event(void *ctx, const char *data, size_t len)
{
    events *e = ctx;
    if (e->n == e->stop_at)
        return LODE_EFORMAT;
    if (e->n < 16)
        snprintf(e->got[e->n], sizeof e->got[e->n], "%.*s", (int)len, data);
    e->n++;
    return 0;
}

static void check_sse(const char *stream, size_t piece, const char *const *want,
                      int n_want)
{
    llm_sse p = {0};
    events e = {.stop_at = -1};
    size_t len = strlen(stream);
    int rc = 0;
    for (size_t i = 0; i < len && !rc; i += piece)
        rc = llm_sse_feed(&p, stream + i, len - i < piece ? len - i : piece,
                          on_event, &e);
    if (!rc)
        rc = llm_sse_finish(&p, on_event, &e);
    bool ok = rc == 0 && e.n == n_want;
    for (int i = 0; ok && i < n_want; i++)
        ok = strcmp(e.got[i], want[i]) == 0;
    CHECK(ok, "pieces of %zu: %d events (want %d), first '%s'", piece, e.n,
          n_want, e.n ? e.got[0] : "");
    llm_sse_free(&p);
}

static void test_sse(void)
{
    const char *want[] = {"{\"a\":1}", "line1\nline2", "[DONE]"};
    const char *streams[] = {
        ": comment\n\ndata: {\"a\":1}\n\nevent: x\ndata: line1\ndata: line2\n"
        "id: 7\n\ndata: [DONE]\n\n",
        ": comment\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: x\r\ndata: line1\r\n"
        "data: line2\r\n\r\ndata: [DONE]\r\n\r\n",
        "data: {\"a\":1}\r\rdata: line1\rdata:line2\r\rdata: [DONE]\r\r",
        /* no blank line after the last event: dispatched at the end */
        "data: {\"a\":1}\n\ndata: line1\ndata: line2\n\ndata: [DONE]",
    };
    for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++)
        for (size_t piece = 1; piece <= strlen(streams[s]); piece++)
            check_sse(streams[s], piece, want, 3);
    /* a callback's error stops the feed */
    llm_sse p = {0};
    events e = {.stop_at = 1};
    const char *two = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    CHECK(llm_sse_feed(&p, two, strlen(two), on_event, &e) == LODE_EFORMAT &&
          e.n == 1, "stopped at the second event");
    llm_sse_free(&p);
    /* "data" without a colon is an empty data line */
    const char *empty[] = {""};
    check_sse("data\n\n", 1, empty, 1);
}

static void test_chunks(void)
{
    llm_chunk c;
    const char *full =
        "{\"id\":\"x\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"Hi [1]\"},\"finish_reason\":"
        "\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}";
    CHECK(llm_parse_chunk(full, strlen(full), &c, NULL) == 0 &&
          c.content && strcmp(c.content, "Hi [1]") == 0 &&
          strcmp(c.finish_reason, "stop") == 0 && strcmp(c.model, "m-1") == 0 &&
          c.prompt_tokens == 12 && c.completion_tokens == 3, "a whole answer");
    llm_chunk_free(&c);
    const char *delta = "{\"choices\":[{\"delta\":{\"content\":\"25 \"},"
                        "\"finish_reason\":null}]}";
    CHECK(llm_parse_chunk(delta, strlen(delta), &c, NULL) == 0 &&
          c.content_len == 3 && !c.finish_reason[0] && c.prompt_tokens == -1,
          "a delta");
    llm_chunk_free(&c);
    const char *role = "{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}";
    CHECK(llm_parse_chunk(role, strlen(role), &c, NULL) == 0 && !c.content,
          "a role-only delta");
    llm_chunk_free(&c);
    const char *usage = "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
                        "\"completion_tokens\":7}}";
    CHECK(llm_parse_chunk(usage, strlen(usage), &c, NULL) == 0 &&
          c.completion_tokens == 7, "usage only");
    llm_chunk_free(&c);
    const char *error = "{\"error\":{\"message\":\"Rate limit\",\"code\":429}}";
    CHECK(llm_parse_chunk(error, strlen(error), &c, NULL) == 0 &&
          strcmp(c.error, "Rate limit") == 0, "an error object");
    llm_chunk_free(&c);
    const char *bad[] = {"{\"choices\": [", "[1,2]", "{\"x\":1}",
                         "{\"choices\":[{\"delta\":{\"content\":5}}]}",
                         "{\"choices\":[7]}", "", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lode_error err = {0};
        CHECK(llm_parse_chunk(bad[i], strlen(bad[i]), &c, &err) == LODE_EFORMAT &&
              err.message[0] && !c.content, "malformed: %s", bad[i]);
    }
}

static void test_body(void)
{
    llm_message m[] = {{"system", "be brief"}, {"user", "q \"quoted\"\n"}};
    char *b = llm_request_body("gpt-x", m, 2, 500, 0.1, true);
    json_t *o = b ? json_loads(b, 0, NULL) : NULL;
    CHECK(o && strcmp(json_string_value(json_object_get(o, "model")), "gpt-x") == 0 &&
          json_integer_value(json_object_get(o, "max_tokens")) == 500 &&
          json_is_true(json_object_get(o, "stream")) &&
          json_is_true(json_object_get(json_object_get(o, "stream_options"),
                                       "include_usage")) &&
          json_array_size(json_object_get(o, "messages")) == 2 &&
          strcmp(json_string_value(json_object_get(
                     json_array_get(json_object_get(o, "messages"), 1),
                     "content")), "q \"quoted\"\n") == 0,
          "body: %s", b);
    json_decref(o);
    free(b);
    b = llm_request_body("m", m, 1, 10, 0, false);
    o = b ? json_loads(b, 0, NULL) : NULL;
    CHECK(o && json_is_false(json_object_get(o, "stream")) &&
          !json_object_get(o, "stream_options"), "not streamed");
    json_decref(o);
    free(b);
}

static void test_delay(void)
{
    CHECK(llm_retry_delay_ms(1, 3, 0.5) == 3000, "Retry-After wins");
    CHECK(llm_retry_delay_ms(1, 3600, 0.5) == LLM_RETRY_AFTER_MAX_MS, "capped");
    for (int a = 1; a <= 4; a++) {
        int64_t base = (int64_t)LLM_FIRST_DELAY_MS << (a - 1);
        int64_t lo = llm_retry_delay_ms(a, 0, 0), hi = llm_retry_delay_ms(a, 0, 0.999);
        CHECK(lo == base / 2 && hi < base && hi >= base * 99 / 100, "attempt %d: %lld..%lld",
              a, (long long)lo, (long long)hi);
    }
    CHECK(strcmp(llm_outcome_name(LLM_FAIL_TIMEOUT), "timeout") == 0, "names");
}

int main(void)
{
    test_sse();
    test_chunks();
    test_body();
    test_delay();
    TEST_MAIN_END();
}
