/* api_embed.c - POST /v1/embeddings and GET /v1/models, compatible with
 * OpenAI's embeddings API so its SDKs work unchanged.
 *
 * `input` is a string, an array of strings, an array of token ids or an
 * array of arrays of token ids; `encoding_format` is "float" (default) or
 * "base64" (the float32 vector, little-endian, base64: what the official
 * SDKs ask for by default); `dimensions` must equal the model's (this
 * model cannot shorten its vectors); `model` is accepted whatever it says
 * and the answer names the model actually used.  Inputs longer than the
 * model's max_seq_length are truncated as sentence-transformers does, and
 * the answer counts them in an extra field, "truncated".
 *
 * The handler runs twice: first it validates and submits a job to the
 * scheduler and suspends the request; when the job is done the scheduler
 * resumes it and the handler builds the answer. */
#include "api.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct embed_state {
    sched_job job;
    api *a;
    bool base64;
    int dimensions;           /* requested, 0 if not */
} embed_state;

static void embed_state_free(void *p)
{
    embed_state *st = p;
    free(st->job.vectors);
}

static void on_job_done(sched_job *job, void *ctx)
{
    (void)job;
    http_resume(ctx);
}

/* Parse `input` into the job (arrays in request memory).  Answers 400 and
 * returns false on bad input. */
static bool parse_input(http_request *req, api *a, json_t *input,
                        sched_job *job)
{
    if (json_is_string(input)) {
        const char **texts = http_alloc(req, sizeof *texts);
        size_t *lens = http_alloc(req, sizeof *lens);
        if (!texts || !lens)
            goto nomem;
        texts[0] = json_string_value(input);
        lens[0] = json_string_length(input);
        if (lens[0] == 0) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_input", "'input' is an empty string");
            return false;
        }
        job->n = 1;
        job->texts = texts;
        job->lens = lens;
        return true;
    }
    if (!json_is_array(input) || json_array_size(input) == 0) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_input",
                           "'input' must be a string, an array of strings, "
                           "an array of token ids or an array of arrays of "
                           "token ids, and not empty");
        return false;
    }
    size_t n = json_array_size(input);
    json_t *first = json_array_get(input, 0);
    if (json_is_integer(first)) {   /* one sequence of token ids */
        if (n > (size_t)a->cfg.max_tokens) {
            http_respond_error(req, 400, "invalid_request_error",
                               "limit_exceeded",
                               "'input' has %zu tokens; the limit is %d per "
                               "request", n, a->cfg.max_tokens);
            return false;
        }
        int32_t *ids = http_alloc(req, n * sizeof *ids);
        const int32_t **seqs = http_alloc(req, sizeof *seqs);
        int *lens = http_alloc(req, sizeof *lens);
        if (!ids || !seqs || !lens)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(input, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > INT32_MAX) {
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_input",
                                   "'input'[%zu] must be a token id (a "
                                   "non-negative integer)", i);
                return false;
            }
            ids[i] = (int32_t)json_integer_value(v);
        }
        seqs[0] = ids;
        lens[0] = (int)n;
        job->n = 1;
        job->ids = seqs;
        job->id_lens = lens;
        return true;
    }
    if (n > (size_t)a->cfg.max_inputs) {
        http_respond_error(req, 400, "invalid_request_error", "limit_exceeded",
                           "'input' has %zu items; the limit is %d per "
                           "request", n, a->cfg.max_inputs);
        return false;
    }
    if (json_is_string(first)) {
        const char **texts = http_alloc(req, n * sizeof *texts);
        size_t *lens = http_alloc(req, n * sizeof *lens);
        if (!texts || !lens)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(input, i);
            if (!json_is_string(v) || json_string_length(v) == 0) {
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_input",
                                   "'input'[%zu] must be a non-empty string "
                                   "like the other items", i);
                return false;
            }
            texts[i] = json_string_value(v);
            lens[i] = json_string_length(v);
        }
        job->n = (int)n;
        job->texts = texts;
        job->lens = lens;
        return true;
    }
    if (json_is_array(first)) {
        const int32_t **seqs = http_alloc(req, n * sizeof *seqs);
        int *lens = http_alloc(req, n * sizeof *lens);
        if (!seqs || !lens)
            goto nomem;
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *seq = json_array_get(input, i);
            size_t len = json_array_size(seq);
            if (!json_is_array(seq) || len == 0) {
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_input",
                                   "'input'[%zu] must be a non-empty array "
                                   "of token ids like the other items", i);
                return false;
            }
            total += len;
            if (total > (size_t)a->cfg.max_tokens) {
                http_respond_error(req, 400, "invalid_request_error",
                                   "limit_exceeded",
                                   "'input' has more than %d tokens, the "
                                   "limit per request", a->cfg.max_tokens);
                return false;
            }
            int32_t *ids = http_alloc(req, len * sizeof *ids);
            if (!ids)
                goto nomem;
            for (size_t j = 0; j < len; j++) {
                json_t *v = json_array_get(seq, j);
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > INT32_MAX) {
                    http_respond_error(req, 400, "invalid_request_error",
                                       "invalid_input",
                                       "'input'[%zu][%zu] must be a token "
                                       "id (a non-negative integer)", i, j);
                    return false;
                }
                ids[j] = (int32_t)json_integer_value(v);
            }
            seqs[i] = ids;
            lens[i] = (int)len;
        }
        job->n = (int)n;
        job->ids = seqs;
        job->id_lens = lens;
        return true;
    }
    http_respond_error(req, 400, "invalid_request_error", "invalid_input",
                       "'input' items must be strings, token ids or arrays "
                       "of token ids");
    return false;
nomem:
    http_respond_error(req, 500, "server_error", "out_of_memory",
                       "out of memory");
    return false;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of n floats as little-endian float32 (malloc'd). */
static char *floats_base64(const float *v, int n)
{
    size_t bytes = (size_t)n * 4, out_len = (bytes + 2) / 3 * 4;
    unsigned char *raw = malloc(bytes);
    char *out = malloc(out_len + 1);
    if (!raw || !out) {
        free(raw);
        free(out);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        raw[4 * i] = (unsigned char)u;
        raw[4 * i + 1] = (unsigned char)(u >> 8);
        raw[4 * i + 2] = (unsigned char)(u >> 16);
        raw[4 * i + 3] = (unsigned char)(u >> 24);
    }
    size_t o = 0;
    for (size_t i = 0; i < bytes; i += 3) {
        uint32_t chunk = (uint32_t)raw[i] << 16;
        if (i + 1 < bytes)
            chunk |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < bytes)
            chunk |= raw[i + 2];
        out[o++] = b64_alphabet[(chunk >> 18) & 63];
        out[o++] = b64_alphabet[(chunk >> 12) & 63];
        out[o++] = i + 1 < bytes ? b64_alphabet[(chunk >> 6) & 63] : '=';
        out[o++] = i + 2 < bytes ? b64_alphabet[chunk & 63] : '=';
    }
    out[o] = '\0';
    free(raw);
    return out;
}

static void answer(http_request *req, embed_state *st)
{
    sched_job *job = &st->job;
    if (job->rc) {
        api_respond_lode_error(req, st->a, &job->err);
        return;
    }
    if (st->dimensions && st->dimensions != job->dim) {
        http_respond_error(req, 400, "invalid_request_error",
                           "invalid_dimensions",
                           "'dimensions' must be %d for model %s (it cannot "
                           "shorten its vectors)", job->dim, job->model_name);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; data && i < job->n; i++) {
        const float *v = job->vectors + (size_t)i * job->dim;
        json_t *emb;
        if (st->base64) {
            char *b = floats_base64(v, job->dim);
            emb = b ? json_string(b) : NULL;
            free(b);
        } else {
            emb = json_array();
            for (int d = 0; emb && d < job->dim; d++)
                json_array_append_new(emb, json_real(v[d]));
        }
        if (!emb || json_array_append_new(data, json_pack(
                        "{s:s,s:i,s:o}", "object", "embedding", "index", i,
                        "embedding", emb))) {
            json_decref(data);
            data = NULL;
        }
    }
    json_t *o = data ? json_pack("{s:s,s:o,s:s,s:{s:i,s:i},s:i}", "object",
                                 "list", "data", data, "model",
                                 job->model_name, "usage", "prompt_tokens",
                                 job->n_tokens, "total_tokens", job->n_tokens,
                                 "truncated", job->n_truncated)
                     : NULL;
    http_respond_json(req, 200, o);
}

void api_embeddings(http_request *req, void *app)
{
    api *a = app;
    embed_state *st = http_state(req);
    if (st) {   /* resumed: the embeddings are ready */
        answer(req, st);
        return;
    }
    json_t *body = http_json_body(req);
    if (!body)
        return;
    json_t *input = json_object_get(body, "input");
    if (!input) {
        http_respond_error(req, 400, "invalid_request_error",
                           "missing_input", "'input' is required");
        return;
    }
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_string(model) && !json_is_null(model)) {
        http_respond_error(req, 400, "invalid_request_error", "invalid_model",
                           "'model' must be a string");
        return;
    }
    if (!(st = http_alloc_state(req, sizeof *st)))
        return;
    st->a = a;
    json_t *fmt = json_object_get(body, "encoding_format");
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_string_value(fmt);
        if (f && strcmp(f, "base64") == 0) {
            st->base64 = true;
        } else if (!f || strcmp(f, "float") != 0) {
            http_respond_error(req, 400, "invalid_request_error",
                               "invalid_encoding_format",
                               "'encoding_format' must be \"float\" or "
                               "\"base64\"");
            return;
        }
    }
    json_t *dims = json_object_get(body, "dimensions");
    if (dims && !json_is_null(dims)) {
        sched_status ss;
        sched_get_status(a->sched, &ss);
        if (!json_is_integer(dims) || json_integer_value(dims) <= 0 ||
            json_integer_value(dims) > 65536 ||
            (ss.state == SCHED_LOADED &&
             json_integer_value(dims) != ss.dimension)) {
            if (ss.state == SCHED_LOADED)
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_dimensions",
                                   "'dimensions' must be %d for this model "
                                   "(it cannot shorten its vectors)",
                                   ss.dimension);
            else
                http_respond_error(req, 400, "invalid_request_error",
                                   "invalid_dimensions",
                                   "'dimensions' must be a positive integer");
            return;
        }
        st->dimensions = (int)json_integer_value(dims);
    }
    if (!parse_input(req, a, input, &st->job))
        return;
    st->job.max_tokens = a->cfg.max_tokens;
    st->job.deadline_ms = sched_now_ms() + a->cfg.load_wait_ms;
    st->job.done = on_job_done;
    st->job.ctx = req;
    http_set_state(req, st, embed_state_free);
    http_suspend(req);
    sched_submit(a->sched, &st->job);
}

void api_models(http_request *req, void *app)
{
    api *a = app;
    sched_status st;
    sched_get_status(a->sched, &st);
    const char *name = st.state == SCHED_LOADED ? st.name : NULL;
    if (!name) {  /* not loaded: the file name it will have */
        const char *slash = strrchr(st.path, '/');
        name = slash && slash[1] ? slash + 1 : st.path;
    }
    json_t *m = json_pack("{s:s,s:s,s:I,s:s}", "id", name, "object", "model",
                          "created", (json_int_t)0, "owned_by", "lode");
    if (m && st.state == SCHED_LOADED) {
        json_object_set_new(m, "dimension", json_integer(st.dimension));
        json_object_set_new(m, "max_seq_length",
                            json_integer(st.max_seq_length));
    }
    json_object_set_new(m, "state", json_string(
        st.state == SCHED_LOADED ? "loaded"
        : st.state == SCHED_LOADING ? "loading"
        : st.state == SCHED_FAILED ? "failed" : "unloaded"));
    if (m)
        json_object_set_new(m, "type", json_string("embedding"));
    json_t *data = json_pack("[o]", m);
    if (data)
        api_chat_models(a, data);
    http_respond_json(req, 200, json_pack("{s:s,s:o}", "object", "list",
                                          "data", data));
}
