/* fuzz_sse.c - libFuzzer driver for the LLM client's stream parsers
 * (src/llm.c): the Server-Sent Events reader (llm_sse_feed,
 * llm_sse_finish) and the chat-completion chunk parser (llm_parse_chunk),
 * i.e. every byte an LLM server streams back.
 *
 * The first byte seeds the sizes of the pieces the rest is fed in (1 to
 * 64 bytes, as libcurl hands a body over in arbitrary pieces).  Checked:
 *   - the events (their count and data) are the same fed whole and fed in
 *     pieces, and the same as an independent reader below gives (lines end
 *     at LF, CRLF or CR; "data:" lines joined by '\n', one leading space
 *     dropped; comments and other fields ignored; a blank line dispatches;
 *     the end dispatches what is pending);
 *   - every event's data goes through llm_parse_chunk: on failure an error
 *     message and no content; on success the content, when there is some,
 *     is NUL-terminated at content_len and the fixed-size strings are
 *     terminated.
 *
 * Seeds: fuzz/corpus/sse/ (OpenAI-style streams, CR/CRLF line ends,
 * comments, errors, usage chunks); dictionary fuzz/sse.dict. */
#include <string.h>

#include "fuzz.h"
#include "llm.h"
#include "sbuf.h"

/* Events recorded as <length><data> so two runs can be compared. */
static int record(void *ctx, const char *data, size_t len)
{
    sbuf *b = ctx;
    sbuf_append(b, (const char *)&len, sizeof len);
    sbuf_append(b, data, len);
    FUZZ_CHECK(!b->oom, "out of memory");
    return 0;
}

static void check_chunk(const char *data, size_t len)
{
    llm_chunk ch;
    lode_error err = {0};
    if (llm_parse_chunk(data, len, &ch, &err)) {
        FUZZ_CHECK(err.message[0] && ch.content == NULL,
                   "failure without a message, or with content");
        return;
    }
    if (ch.content)
        FUZZ_CHECK(ch.content[ch.content_len] == '\0', "content unterminated");
    else
        FUZZ_CHECK(ch.content_len == 0, "content_len without content");
    FUZZ_CHECK(memchr(ch.finish_reason, 0, sizeof ch.finish_reason) &&
                   memchr(ch.model, 0, sizeof ch.model) &&
                   memchr(ch.error, 0, sizeof ch.error),
               "a fixed-size string is not terminated");
    llm_chunk_free(&ch);
}

/* The reference reader: one complete line. */
static void ref_line(const char *l, size_t n, sbuf *data, bool *has_data,
                     sbuf *out)
{
    if (n == 0) {
        if (*has_data)
            record(out, data->data ? data->data : "", data->len);
        data->len = 0;
        *has_data = false;
        return;
    }
    if (n >= 5 && memcmp(l, "data:", 5) == 0) {
        size_t skip = n > 5 && l[5] == ' ' ? 6 : 5;
        if (*has_data)
            sbuf_putc(data, '\n');
        sbuf_append(data, l + skip, n - skip);
        *has_data = true;
    } else if (n == 4 && memcmp(l, "data", 4) == 0) {
        if (*has_data)
            sbuf_putc(data, '\n');
        *has_data = true;
    }
}

static void ref_parse(const char *s, size_t n, sbuf *out)
{
    sbuf data = {0};
    bool has_data = false;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n' && s[i] != '\r')
            continue;
        ref_line(s + start, i - start, &data, &has_data, out);
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    if (start < n)
        ref_line(s + start, n - start, &data, &has_data, out);
    if (has_data)
        record(out, data.data ? data.data : "", data.len);
    sbuf_free(&data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned seed = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;

    sbuf whole = {0}, pieces = {0}, ref = {0};
    llm_sse p = {0};
    FUZZ_CHECK(llm_sse_feed(&p, s, n, record, &whole) == 0 &&
                   llm_sse_finish(&p, record, &whole) == 0,
               "feeding the whole stream failed");
    llm_sse_free(&p);

    llm_sse q = {0};
    for (size_t off = 0; off < n;) {
        seed = seed * 1103515245u + 12345u;
        size_t k = 1 + (seed >> 16) % 64;
        if (k > n - off)
            k = n - off;
        FUZZ_CHECK(llm_sse_feed(&q, s + off, k, record, &pieces) == 0,
                   "feeding a piece failed");
        off += k;
    }
    FUZZ_CHECK(llm_sse_finish(&q, record, &pieces) == 0, "finish failed");
    llm_sse_free(&q);

    ref_parse(s, n, &ref);
    FUZZ_CHECK(whole.len == pieces.len &&
                   (whole.len == 0 ||
                    memcmp(whole.data, pieces.data, whole.len) == 0),
               "events differ when fed in pieces");
    FUZZ_CHECK(whole.len == ref.len &&
                   (whole.len == 0 || memcmp(whole.data, ref.data, whole.len) == 0),
               "events differ from the reference reader");

    for (size_t off = 0; off < whole.len;) {
        size_t len;
        memcpy(&len, whole.data + off, sizeof len);
        off += sizeof len;
        check_chunk(whole.data + off, len);
        off += len;
    }
    sbuf_free(&whole);
    sbuf_free(&pieces);
    sbuf_free(&ref);
    return 0;
}
