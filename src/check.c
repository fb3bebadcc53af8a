/* check.c - `lode check URL`, the deployment smoke test (see check.h).
 *
 * Each check is a function that makes one request and fills a
 * check_result (PASS, FAIL or SKIP, the HTTP status, a message, the time
 * taken); only check_main prints, one line per result as soon as it is
 * known, so a slow check shows where the time goes.  A failure's message
 * is the server's own ({"error": {"message"}}), followed by a hint when
 * we know which flag would fix it.
 *
 * One libcurl easy handle serves every request, so the checks share one
 * kept-alive connection as a real client would.  When the first request
 * gets no HTTP answer at all (nothing listens, the name does not resolve,
 * a timeout), the other checks are not run: each would only wait for the
 * same failure again.  Once the server has answered, a later failure to
 * answer (the server died, say) is one FAIL line and the next checks
 * still run.
 *
 * The webhook check sends a Tally FORM_RESPONSE with a new eventId every
 * run, so it goes the whole way (signature or key, chunking, embedding,
 * the write, the similarity search) instead of the server's shortcut for
 * a redelivery.  The price is one stored submission per run in collection
 * "tally-<formId>"; --help says so and --no-webhook skips it.
 */
#include "check.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "err.h"
#include "webhook.h"

#define CHECK_DEFAULT_COLLECTION "default"
#define CHECK_DEFAULT_FORM "lode-check"
#define CHECK_DEFAULT_TIMEOUT "10"
#define CHECK_MAX_ANSWER (8u << 20)  /* bytes of an answer we accept */
#define CHECK_MESSAGE_MAX 240        /* characters of a server's text shown */
#define CHECK_EMBED_INPUT "lode check"
#define CHECK_QUERY "lode check: is this deployment answering searches?"
#define CHECK_SEARCH_K 3
#define CHECK_FIELD_LABEL "Check"

const char check_usage[] =
    "  check URL [--collection NAME] [--api-key K] [--secret S] [--form ID]\n"
    "        [--no-webhook] [--timeout SECONDS]\n"
    "                                        smoke-test a running server "
    "(`lode check --help`)\n";

static const char check_help[] =
    "usage: lode check URL [OPTIONS]\n"
    "\n"
    "Smoke-test the lode server at URL (e.g. http://127.0.0.1:8080): GET\n"
    "/health, /model-status and /memory-status, embed a text\n"
    "(/v1/embeddings), search a collection (/search) and send a test Tally\n"
    "delivery (/webhook/tally).  Prints one line per check (PASS, FAIL or\n"
    "SKIP, the HTTP status, what the server said, the time taken) and a\n"
    "summary.  Exit status: 0 when every check that ran passed, 1 when one\n"
    "failed or the server did not answer, 2 for a usage error.\n"
    "\n"
    "The webhook check WRITES to the server: every run stores one synthetic\n"
    "submission (a new eventId) in collection \"tally-<formId>\", i.e.\n"
    "\"tally-" CHECK_DEFAULT_FORM "\" by default.  Use --no-webhook to "
    "write nothing, or\n"
    "delete that collection afterwards.\n"
    "\n"
    "Options (each flag wins over its environment variable):\n"
    "  --collection NAME  ($LODE_COLLECTION)\n"
    "      collection searched (default \"" CHECK_DEFAULT_COLLECTION "\"); "
    "a missing one fails, an\n"
    "      empty one passes with a note\n"
    "  --api-key KEY  ($LODE_API_KEY)\n"
    "      sent as Authorization: Bearer KEY on every request\n"
    "  --read-key KEY  ($LODE_READ_KEY)\n"
    "      sent on the read routes when there is no API key\n"
    "  --secret SECRET  ($LODE_WEBHOOK_SECRET)\n"
    "      the form's signing secret: the test delivery gets\n"
    "      Tally-Signature = base64(HMAC-SHA256(body, SECRET))\n"
    "  --form ID\n"
    "      form id of the test delivery (default \"" CHECK_DEFAULT_FORM "\"); "
    "a form of the\n"
    "      server's webhooks file must not restrict embed_fields to fields\n"
    "      other than \"" CHECK_FIELD_LABEL "\"\n"
    "  --no-webhook\n"
    "      skip the webhook check\n"
    "  --timeout SECONDS\n"
    "      limit of each request (default " CHECK_DEFAULT_TIMEOUT ")\n";

/* ---- options ------------------------------------------------------------ */

typedef struct check_opts {
    const char *url;          /* as given */
    const char *collection;
    const char *api_key;      /* NULL or "": none */
    const char *read_key;
    const char *secret;
    const char *form_id;
    const char *timeout;      /* text; parsed into timeout_ms */
    long timeout_ms;
    bool webhook;
} check_opts;

/* The options that take a value; each is a const char * of check_opts. */
typedef struct check_flag {
    const char *flag;
    const char *env;          /* NULL: none */
    size_t offset;
} check_flag;

#define OFF(f) offsetof(check_opts, f)
static const check_flag check_flags[] = {
    {"--collection", "LODE_COLLECTION", OFF(collection)},
    {"--api-key", "LODE_API_KEY", OFF(api_key)},
    {"--read-key", "LODE_READ_KEY", OFF(read_key)},
    {"--secret", "LODE_WEBHOOK_SECRET", OFF(secret)},
    {"--form", NULL, OFF(form_id)},
    {"--timeout", NULL, OFF(timeout)},
};
#define CHECK_N_FLAGS (int)(sizeof check_flags / sizeof check_flags[0])

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lode check: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see `lode check --help`)\n", stderr);
    va_end(ap);
    return 2;
}

/* Fill o from the environment, then argv.  Returns 0, 2 after printing a
 * usage error, or -1 after printing the help. */
static int parse_options(int argc, char **argv, check_opts *o)
{
    memset(o, 0, sizeof *o);
    o->collection = CHECK_DEFAULT_COLLECTION;
    o->form_id = CHECK_DEFAULT_FORM;
    o->timeout = CHECK_DEFAULT_TIMEOUT;
    o->webhook = true;
    for (int k = 0; k < CHECK_N_FLAGS; k++) {
        const char *env = check_flags[k].env ? getenv(check_flags[k].env)
                                             : NULL;
        if (env && *env)
            *(const char **)((char *)o + check_flags[k].offset) = env;
    }
    bool only_args = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_args || arg[0] != '-' || arg[1] == '\0') {
            if (o->url)
                return usage_error("takes one URL, not '%s' and '%s'",
                                   o->url, arg);
            o->url = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_args = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(check_help, stdout);
            return -1;
        }
        if (strcmp(arg, "--no-webhook") == 0) {
            o->webhook = false;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const check_flag *f = NULL;
        for (int k = 0; k < CHECK_N_FLAGS && !f; k++)
            if (strlen(check_flags[k].flag) == name_len &&
                strncmp(arg, check_flags[k].flag, name_len) == 0)
                f = &check_flags[k];
        if (!f)
            return usage_error("unknown option %s", arg);
        const char *value = eq ? eq + 1 : ++i < argc ? argv[i] : NULL;
        if (!value)
            return usage_error("%s needs a value", arg);
        *(const char **)((char *)o + f->offset) = value;
    }
    if (!o->url)
        return usage_error("needs the URL of a server, e.g. "
                           "http://127.0.0.1:8080");
    char *end;
    errno = 0;
    double t = strtod(o->timeout, &end);
    if (errno || end == o->timeout || *end || !(t > 0) || t > 86400)
        return usage_error("--timeout must be a number of seconds from "
                           "0.001 to 86400, not '%s'", o->timeout);
    o->timeout_ms = (long)ceil(t * 1000.0);
    if (!webhook_name_ok(o->form_id))
        return usage_error("--form must be 1 to %d letters, digits, '.', "
                           "'_' or '-', not '%s'", WEBHOOK_FORM_ID_MAX,
                           o->form_id);
    if (!*o->collection)
        return usage_error("--collection must not be empty");
    return 0;
}

/* The server's address, normalised by libcurl and without a trailing
 * '/' (malloc'd, so paths are appended to it), or NULL after printing why
 * url is not one. */
static char *base_url(const char *url)
{
    if (!strstr(url, "://")) {
        usage_error("'%s' is not a URL: give http://%s (or https://)", url,
                    url);
        return NULL;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *query = NULL, *fragment = NULL, *full = NULL;
    char *base = NULL;
    if (!u) {
        fprintf(stderr, "lode check: out of memory\n");
        return NULL;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc) {
        usage_error("'%s' is not a usable URL: %s", url,
                    curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        usage_error("'%s': the URL must start with http:// or https://", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK) {
        usage_error("'%s': give the server's address without ?query or "
                    "#fragment", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0)) {
        usage_error("'%s' is not a usable URL", url);
        goto out;
    }
    size_t n = strlen(full);
    while (n > 0 && full[n - 1] == '/')
        n--;
    base = strndup(full, n);
    if (!base)
        fprintf(stderr, "lode check: out of memory\n");
out:
    curl_free(scheme);
    curl_free(query);
    curl_free(fragment);
    curl_free(full);
    curl_url_cleanup(u);
    return base;
}

/* ---- HTTP --------------------------------------------------------------- */

typedef struct checker {
    check_opts o;
    char *base;               /* server URL without a trailing '/' (owned) */
    CURL *curl;               /* reused: one kept-alive connection */
    char curl_error[CURL_ERROR_SIZE];
    bool answered;            /* some request got an HTTP answer */
    bool unreachable;         /* the first request got none: stop */
    int dimension;            /* from /model-status; 0: unknown */
} checker;

typedef struct answer {
    long status;
    char *body;               /* malloc'd, NUL-terminated, or NULL */
    size_t len;
    bool too_long;            /* over CHECK_MAX_ANSWER: abandoned */
    json_t *json;             /* the body parsed, or NULL */
    double ms;
} answer;

static void answer_free(answer *a)
{
    free(a->body);
    json_decref(a->json);
    a->body = NULL;
    a->json = NULL;
}

static size_t on_body(char *data, size_t size, size_t count, void *ctx)
{
    answer *a = ctx;
    size_t bytes = size * count;
    if (bytes > CHECK_MAX_ANSWER - a->len) {
        a->too_long = true;
        return 0;  /* libcurl stops with CURLE_WRITE_ERROR */
    }
    char *p = realloc(a->body, a->len + bytes + 1);
    if (!p)
        return 0;
    memcpy(p + a->len, data, bytes);
    a->body = p;
    a->len += bytes;
    p[a->len] = '\0';
    return bytes;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Append "name: value" to *list; false when out of memory. */
static bool add_header(struct curl_slist **list, const char *name,
                       const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return false;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);  /* copies */
    free(line);
    if (!l)
        return false;
    *list = l;
    return true;
}

/* One request: GET when body is NULL, else POST of that JSON.  bearer
 * and signature may be NULL.  Returns 0 with the answer in *a (whatever
 * its status; answer_free it), or LODE_EIO / LODE_ENOMEM with a message
 * when there is no answer. */
static int exchange(checker *c, const char *path, const char *body,
                    const char *bearer, const char *signature, answer *a,
                    lode_error *err)
{
    memset(a, 0, sizeof *a);
    int rc = 0;
    struct curl_slist *headers = NULL;
    size_t url_len = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(url_len);
    char *auth = NULL;  /* "Bearer KEY": a key may be long */
    if (bearer && *bearer) {
        size_t n = strlen("Bearer ") + strlen(bearer) + 1;
        if ((auth = malloc(n)))
            snprintf(auth, n, "Bearer %s", bearer);
    }
    if (!url || (bearer && *bearer && !auth) ||
        !add_header(&headers, "Accept", "application/json") ||
        (auth && !add_header(&headers, "Authorization", auth)) ||
        (signature && !add_header(&headers, "Tally-Signature", signature)) ||
        (body && !add_header(&headers, "Content-Type", "application/json"))) {
        rc = lode_error_set(err, LODE_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, url_len, "%s%s", c->base, path);

    CURL *h = c->curl;
    curl_easy_reset(h);  /* keeps the connection cache */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "lode-check");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);  /* not copied */
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    c->curl_error[0] = '\0';
    double start = now_ms();
    CURLcode cc = curl_easy_perform(h);
    a->ms = now_ms() - start;
    if (cc != CURLE_OK) {
        if (a->too_long)
            rc = lode_error_set(err, LODE_EIO, "the answer to %s is over "
                                "%u MB", path, CHECK_MAX_ANSWER >> 20);
        else
            rc = lode_error_set(err, LODE_EIO, "no answer: %s",
                                c->curl_error[0] ? c->curl_error
                                                 : curl_easy_strerror(cc));
        answer_free(a);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    if (a->body)
        a->json = json_loadb(a->body, a->len, 0, NULL);
out:
    curl_slist_free_all(headers);
    free(auth);
    free(url);
    return rc;
}

/* ---- results ------------------------------------------------------------ */

typedef enum check_outcome {
    CHECK_PASS,
    CHECK_FAIL,
    CHECK_SKIP,
} check_outcome;

typedef struct check_result {
    const char *name;
    check_outcome outcome;
    long status;              /* HTTP status; 0: no answer */
    double ms;                /* < 0: no request was made */
    char message[LODE_ERROR_MAX];
} check_result;

static void result_vset(check_result *r, bool append, const char *fmt,
                        va_list ap)
{
    size_t used = append ? strlen(r->message) : 0;
    vsnprintf(r->message + used, sizeof r->message - used, fmt, ap);
}

static void result_set(check_result *r, check_outcome outcome,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void result_set(check_result *r, check_outcome outcome,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->outcome = outcome;
    result_vset(r, false, fmt, ap);
    va_end(ap);
}

static void result_append(check_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void result_append(check_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_vset(r, true, fmt, ap);
    va_end(ap);
}

/* Make a check's request.  On no answer, r becomes the failure and the
 * result is false. */
static bool request(checker *c, check_result *r, const char *path,
                    const char *body, const char *bearer,
                    const char *signature, answer *a)
{
    lode_error err = {0};
    int rc = exchange(c, path, body, bearer, signature, a, &err);
    r->ms = a->ms;
    if (rc) {
        if (!c->answered)
            c->unreachable = true;
        r->status = 0;
        result_set(r, CHECK_FAIL, "%s", err.message);
        return false;
    }
    c->answered = true;
    r->status = a->status;
    return true;
}

/* The key sent on read routes. */
static const char *read_bearer(const checker *c)
{
    if (c->o.api_key && *c->o.api_key)
        return c->o.api_key;
    return c->o.read_key;
}

/* The start of a text, on one line and at most CHECK_MESSAGE_MAX
 * characters (an HTML error page from a proxy, say). */
static void excerpt(const char *s, char *out, size_t size)
{
    size_t n = 0, limit = size - 4 < CHECK_MESSAGE_MAX ? size - 4
                                                       : CHECK_MESSAGE_MAX;
    bool space = false;
    for (; *s && n < limit; s++) {
        if (isspace((unsigned char)*s) || (unsigned char)*s < 0x20) {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        if (n < limit)
            out[n++] = *s;
    }
    if (*s)
        out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
}

/* r fails with what the server said: its error message, else the start
 * of its answer. */
static void fail_answer(check_result *r, const answer *a)
{
    const char *msg = json_string_value(
        json_object_get(json_object_get(a->json, "error"), "message"));
    char text[CHECK_MESSAGE_MAX + 4];
    excerpt(msg ? msg : a->body ? a->body : "", text, sizeof text);
    if (msg)
        result_set(r, CHECK_FAIL, "%s", text);
    else
        result_set(r, CHECK_FAIL, "not a lode answer: %s",
                   text[0] ? text : "(empty)");
}

/* The error code of a lode error answer, or "". */
static const char *error_code(const answer *a)
{
    const char *code = json_string_value(
        json_object_get(json_object_get(a->json, "error"), "code"));
    return code ? code : "";
}

/* ---- the checks --------------------------------------------------------- */

static void check_health(checker *c, check_result *r)
{
    answer a;
    if (!request(c, r, "/health", NULL, read_bearer(c), NULL, &a))
        return;
    const char *status = json_string_value(json_object_get(a.json, "status"));
    if (!status) {
        fail_answer(r, &a);
    } else if (a.status != 200 || (strcmp(status, "healthy") != 0 &&
                                   strcmp(status, "degraded") != 0)) {
        result_set(r, CHECK_FAIL, "%s", status);
        const char *model_error = json_string_value(
            json_object_get(a.json, "model_error"));
        const char *store_error = json_string_value(
            json_object_get(a.json, "store_error"));
        if (model_error)
            result_append(r, "; model: %s", model_error);
        if (store_error)
            result_append(r, "; database: %s", store_error);
    } else {
        result_set(r, CHECK_PASS, "%s", status);
        /* degraded: say which component is not operational */
        const char *name;
        json_t *v;
        const char *sep = " (";
        json_object_foreach(json_object_get(a.json, "components"), name, v) {
            const char *state = json_string_value(v);
            if (state && strcmp(state, "operational") != 0 &&
                strcmp(state, "not_configured") != 0) {
                result_append(r, "%s%s: %s", sep, name, state);
                sep = ", ";
            }
        }
        if (strcmp(sep, ", ") == 0)
            result_append(r, ")");
    }
    answer_free(&a);
}

static void check_model(checker *c, check_result *r)
{
    answer a;
    if (!request(c, r, "/model-status", NULL, read_bearer(c), NULL, &a))
        return;
    json_t *loaded = json_object_get(a.json, "model_loaded");
    json_t *model = json_object_get(a.json, "model");
    const char *name = json_string_value(json_object_get(model, "name"));
    const char *type = json_string_value(json_object_get(model, "type"));
    json_int_t dim = json_integer_value(json_object_get(model, "dimension"));
    if (a.status != 200 || !json_is_boolean(loaded)) {
        fail_answer(r, &a);
    } else if (!json_is_true(loaded)) {
        const char *state = json_string_value(json_object_get(a.json,
                                                              "state"));
        const char *why = json_string_value(json_object_get(a.json,
                                                            "model_error"));
        result_set(r, CHECK_FAIL, "model not loaded (%s)%s%s",
                   state ? state : "unknown state", why ? ": " : "",
                   why ? why : "");
    } else if (!name || dim <= 0 || dim > 1 << 20) {
        result_set(r, CHECK_FAIL, "model_loaded, but no model name and "
                   "dimension in the answer");
    } else {
        c->dimension = (int)dim;
        result_set(r, CHECK_PASS, "%s, %s, dimension %d", name,
                   type ? type : "?", c->dimension);
    }
    answer_free(&a);
}

static void check_memory(checker *c, check_result *r)
{
    answer a;
    if (!request(c, r, "/memory-status", NULL, read_bearer(c), NULL, &a))
        return;
    json_t *sys = json_object_get(a.json, "system_memory");
    json_t *rss = json_object_get(json_object_get(a.json, "process"),
                                  "rss_mb");
    json_t *available = json_object_get(sys, "available_mb");
    json_t *total = json_object_get(sys, "total_mb");
    if (a.status != 200) {
        fail_answer(r, &a);
    } else if (!json_is_number(rss) || !json_is_number(available)) {
        result_set(r, CHECK_FAIL, "no process.rss_mb and "
                   "system_memory.available_mb in the answer");
    } else {
        result_set(r, CHECK_PASS, "rss %.1f MB, system available %.0f MB",
                   json_number_value(rss), json_number_value(available));
        if (json_is_number(total))
            result_append(r, " of %.0f MB", json_number_value(total));
        if (json_is_true(json_object_get(a.json, "memory_pressure")))
            result_append(r, ", memory pressure (%.1f%% used)",
                          json_number_value(json_object_get(sys,
                                                            "percent_used")));
    }
    answer_free(&a);
}

static void check_embed(checker *c, check_result *r)
{
    answer a;
    if (!request(c, r, "/v1/embeddings",
                 "{\"input\": \"" CHECK_EMBED_INPUT "\"}", read_bearer(c),
                 NULL, &a))
        return;
    json_t *vec = json_object_get(
        json_array_get(json_object_get(a.json, "data"), 0), "embedding");
    size_t n = json_array_size(vec);
    if (a.status != 200) {
        fail_answer(r, &a);
        goto out;
    }
    if (!json_is_array(vec) || n == 0) {
        result_set(r, CHECK_FAIL, "no vector in data[0].embedding");
        goto out;
    }
    if (c->dimension && n != (size_t)c->dimension) {
        result_set(r, CHECK_FAIL, "%zu values; the model's dimension is %d",
                   n, c->dimension);
        goto out;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(vec, i);
        double x = json_number_value(v);
        if (!json_is_number(v) || !isfinite(x)) {
            result_set(r, CHECK_FAIL, "value %zu is not a finite number", i);
            goto out;
        }
        sum += x * x;
    }
    double norm = sqrt(sum);
    if (!(norm > 0) || !isfinite(norm)) {
        result_set(r, CHECK_FAIL, "the vector is %s",
                   norm > 0 ? "too large" : "all zeros");
        goto out;
    }
    /* A model without a Normalize module gives other norms: a note, not
     * a failure (/model-status does not say which kind this is). */
    result_set(r, CHECK_PASS, "%zu values, %s %.4f", n,
               fabs(norm - 1.0) <= 1e-3 ? "unit norm" : "not normalised: norm",
               norm);
out:
    answer_free(&a);
}

static void check_search(checker *c, check_result *r)
{
    json_t *req = json_pack("{s:s,s:i,s:s}", "query", CHECK_QUERY, "k",
                            CHECK_SEARCH_K, "collection", c->o.collection);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        r->ms = 0;
        result_set(r, CHECK_FAIL, "out of memory");
        return;
    }
    answer a;
    bool got = request(c, r, "/search", body, read_bearer(c), NULL, &a);
    free(body);
    if (!got)
        return;
    json_t *results = json_object_get(a.json, "results");
    if (a.status != 200) {
        fail_answer(r, &a);
    } else if (!json_is_array(results)) {
        result_set(r, CHECK_FAIL, "no results array in the answer");
    } else if (json_array_size(results) == 0) {
        result_set(r, CHECK_PASS, "0 results: collection \"%s\" is empty",
                   c->o.collection);
    } else {
        result_set(r, CHECK_PASS, "%zu results from \"%s\", best score %.3f",
                   json_array_size(results), c->o.collection,
                   json_number_value(json_object_get(
                       json_array_get(results, 0), "score")));
    }
    answer_free(&a);
}

/* The synthetic delivery: a FORM_RESPONSE with one answered field.  New
 * JSON text (free it), or NULL when out of memory. */
static char *tally_payload(const char *form_id)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char created[32], event_id[80];
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(created + strlen(created), sizeof created - strlen(created),
             ".%03ldZ", ts.tv_nsec / 1000000);
    /* new every run, so the server stores it rather than answering
     * "duplicate" */
    snprintf(event_id, sizeof event_id, "lode-check-%lld%03ld-%ld",
             (long long)ts.tv_sec, ts.tv_nsec / 1000000, (long)getpid());
    json_t *p = json_pack(
        "{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:s,s:s}]}}",
        "eventId", event_id, "eventType", "FORM_RESPONSE", "createdAt",
        created, "data", "responseId", event_id, "submissionId", event_id,
        "respondentId", "lode-check", "formId", form_id, "formName",
        "lode check", "createdAt", created, "fields", "key",
        "question_lode_check", "label", CHECK_FIELD_LABEL, "type", "TEXTAREA",
        "value", "A synthetic submission sent by `lode check` to test this "
        "deployment.");
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    return text;
}

static void check_webhook(checker *c, check_result *r)
{
    if (!c->o.webhook) {
        result_set(r, CHECK_SKIP, "not run (--no-webhook)");
        return;
    }
    const char *secret = c->o.secret && *c->o.secret ? c->o.secret : NULL;
    const char *key = c->o.api_key && *c->o.api_key ? c->o.api_key : NULL;
    char signature[WEBHOOK_SIGNATURE_LEN + 1];
    char *body = tally_payload(c->o.form_id);
    if (!body || (secret && !webhook_sign(body, strlen(body), secret, signature))) {
        free(body);
        r->ms = 0;
        result_set(r, CHECK_FAIL, "cannot build the signed payload");
        return;
    }
    answer a;
    bool got = request(c, r, "/webhook/tally", body, key,
                       secret ? signature : NULL, &a);
    free(body);
    if (!got)
        return;
    const char *code = error_code(&a);
    if (a.status == 200 && json_is_true(json_object_get(a.json, "ok"))) {
        const char *coll = json_string_value(json_object_get(a.json,
                                                             "collection"));
        json_int_t doc = json_integer_value(json_object_get(a.json,
                                                            "document_id"));
        result_set(r, CHECK_PASS, "%s \"%s\" as document %lld",
                   json_is_true(json_object_get(a.json, "duplicate"))
                       ? "already stored in" : "stored in",
                   coll ? coll : "?", (long long)doc);
        const char *catalog_error = json_string_value(json_object_get(
            json_object_get(a.json, "catalog"), "error"));
        if (catalog_error)
            result_append(r, "; catalog: %s", catalog_error);
    } else {
        fail_answer(r, &a);
        if (strcmp(code, "invalid_signature") == 0 && !secret)
            result_append(r, " (give the form's secret: --secret or "
                             "$LODE_WEBHOOK_SECRET; or --no-webhook)");
        else if (strcmp(code, "invalid_signature") == 0)
            result_append(r, " (is --secret the secret of form \"%s\"?)",
                          c->o.form_id);
        else if ((strcmp(code, "invalid_api_key") == 0 ||
                  strcmp(code, "writes_disabled") == 0) && !key)
            result_append(r, " (give --api-key or $LODE_API_KEY, or "
                             "--secret for a form with one; or "
                             "--no-webhook)");
    }
    answer_free(&a);
}

/* ---- main --------------------------------------------------------------- */

typedef struct check_step {
    const char *name;
    void (*run)(checker *c, check_result *r);
} check_step;

static const check_step check_steps[] = {
    {"health", check_health}, {"model", check_model},
    {"memory", check_memory}, {"embed", check_embed},
    {"search", check_search}, {"webhook", check_webhook},
};
#define CHECK_N_STEPS (int)(sizeof check_steps / sizeof check_steps[0])

static void print_result(const check_result *r)
{
    static const char *const words[] = {"PASS", "FAIL", "SKIP"};
    char status[24] = "---";
    if (r->status > 0)
        snprintf(status, sizeof status, "%3ld", r->status);
    /* the message may quote the server: no control characters reach the
     * terminal */
    char message[sizeof r->message];
    size_t i = 0;
    for (; r->message[i]; i++)
        message[i] = (unsigned char)r->message[i] < 0x20 ||
                             r->message[i] == 0x7f
                         ? ' ' : r->message[i];
    message[i] = '\0';
    printf("%s %-7s %s %s", words[r->outcome], r->name, status, message);
    if (r->ms >= 0)
        printf(" (%.1f ms)", r->ms);
    putchar('\n');
    fflush(stdout);
}

int check_main(int argc, char **argv)
{
    checker c;
    memset(&c, 0, sizeof c);
    int rc = parse_options(argc, argv, &c.o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "lode check: libcurl could not start\n");
        return 1;
    }
    rc = 2;
    c.base = base_url(c.o.url);
    if (!c.base)
        goto out;
    rc = 1;
    c.curl = curl_easy_init();
    if (!c.curl) {
        fprintf(stderr, "lode check: libcurl could not start\n");
        goto out;
    }
    int passed = 0, failed = 0, skipped = 0, not_run = 0;
    for (int i = 0; i < CHECK_N_STEPS; i++) {
        if (c.unreachable) {
            not_run = CHECK_N_STEPS - i;
            break;
        }
        check_result r = {.name = check_steps[i].name, .ms = -1};
        check_steps[i].run(&c, &r);
        print_result(&r);
        passed += r.outcome == CHECK_PASS;
        failed += r.outcome == CHECK_FAIL;
        skipped += r.outcome == CHECK_SKIP;
    }
    if (not_run)
        printf("FAILED: no answer from %s; %d check%s not run\n", c.base,
               not_run, not_run == 1 ? "" : "s");
    else
        printf("%s: %d passed, %d failed, %d skipped (%s)\n",
               failed ? "FAILED" : "OK", passed, failed, skipped, c.base);
    if (fflush(stdout) != 0)
        fprintf(stderr, "lode check: writing to stdout failed\n");
    rc = failed ? 1 : 0;
out:
    curl_easy_cleanup(c.curl);
    free(c.base);
    curl_global_cleanup();
    return rc;
}
