/* test_http.c - the HTTP layer's pure helpers: route matching, the JSON
 * nesting guard, content types, the bearer-token comparison, the client
 * in X-Forwarded-For, timestamps;
 * and the metrics rendering. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "test.h"

static void test_match(void)
{
    size_t p[4][2];
    int n = -1;
    CHECK(http_match("/health", "/health", p, &n) && n == 0, "exact");
    CHECK(http_match("/health", "/health/", p, &n), "trailing slash");
    CHECK(!http_match("/health", "/healthz", p, &n), "longer");
    CHECK(!http_match("/health", "/healt", p, &n), "shorter");
    CHECK(!http_match("/", "//", p, &n), "double slash");
    const char *path = "/collections/kb/documents/42";
    CHECK(http_match("/collections/{}/documents/{}", path, p, &n) && n == 2,
          "two params");
    CHECK(p[0][0] == 13 && p[0][1] == 2 && p[1][1] == 2, "spans");
    CHECK(!http_match("/collections/{}", path, p, &n), "prefix only");
    CHECK(!http_match("/collections/{}", "/collections/", p, &n),
          "empty param");
    CHECK(!http_match("/collections/{}/documents", "/collections//documents",
                      p, &n), "empty middle param");
    CHECK(http_match("/collections/{}", "/collections/a.b-c_d", p, &n) &&
              p[0][1] == 7, "param chars");
}

static void test_depth(void)
{
    CHECK(http_json_depth_ok("{}", 2, 1), "1 level");
    CHECK(!http_json_depth_ok("{\"a\":[]}", 8, 1), "2 levels > 1");
    CHECK(http_json_depth_ok("{\"a\":\"[[[[\"}", 12, 1), "in a string");
    CHECK(http_json_depth_ok("{\"a\\\"[[\":1}", 11, 1), "escaped quote");
    char deep[2001];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    CHECK(!http_json_depth_ok(deep, 2000, 32), "1000 deep");
    CHECK(http_json_depth_ok(deep + 990, 20, 32), "10 deep");
    CHECK(http_json_depth_ok("]]]]", 4, 1), "unbalanced closers are JSON's "
                                           "problem, not a depth");
}

static void test_types(void)
{
    CHECK(http_is_json_type("application/json"), "plain");
    CHECK(http_is_json_type("Application/JSON; charset=utf-8"), "params");
    CHECK(http_is_json_type("application/vnd.api+json"), "+json");
    CHECK(!http_is_json_type("text/plain"), "text");
    CHECK(!http_is_json_type("application/jsonx"), "jsonx");
    CHECK(!http_is_json_type("application/x-www-form-urlencoded"), "form");
    CHECK(!http_is_json_type(NULL), "NULL");
}

static void test_bearer(void)
{
    CHECK(http_bearer_ok("Bearer s3cret", "s3cret"), "ok");
    CHECK(http_bearer_ok("bearer   s3cret  ", "s3cret"), "case, spaces");
    CHECK(!http_bearer_ok("Bearer s3cre", "s3cret"), "prefix");
    CHECK(!http_bearer_ok("Bearer s3cret2", "s3cret"), "longer");
    CHECK(!http_bearer_ok("Bearer ", "s3cret"), "empty");
    CHECK(!http_bearer_ok("s3cret", "s3cret"), "no scheme");
    CHECK(!http_bearer_ok("Basic s3cret", "s3cret"), "basic");
    CHECK(!http_bearer_ok(NULL, "s3cret"), "none");
    CHECK(!http_bearer_ok("Bearer x", ""), "no key configured");
}

static void test_forwarded_for(void)
{
    char out[64];
    const char *xff = "198.51.100.1, 203.0.113.9 ,10.0.0.2";
    CHECK(http_forwarded_for(xff, 1, out, sizeof out) &&
              strcmp(out, "10.0.0.2") == 0, "one proxy: the last (%s)", out);
    CHECK(http_forwarded_for(xff, 2, out, sizeof out) &&
              strcmp(out, "203.0.113.9") == 0, "two: trimmed (%s)", out);
    CHECK(http_forwarded_for(xff, 3, out, sizeof out) &&
              strcmp(out, "198.51.100.1") == 0, "three (%s)", out);
    CHECK(http_forwarded_for(xff, 9, out, sizeof out) &&
              strcmp(out, "198.51.100.1") == 0, "fewer: the leftmost");
    CHECK(http_forwarded_for("2001:db8::7", 1, out, sizeof out) &&
              strcmp(out, "2001:db8::7") == 0, "IPv6");
    /* what a client forges on the left is never read with one proxy */
    CHECK(http_forwarded_for("1.2.3.4, 192.0.2.5", 1, out, sizeof out) &&
              strcmp(out, "192.0.2.5") == 0, "forged left entry ignored");
    CHECK(!http_forwarded_for("192.0.2.5, unknown", 1, out, sizeof out),
          "not an address");
    CHECK(!http_forwarded_for("192.0.2.5,", 1, out, sizeof out), "empty entry");
    CHECK(!http_forwarded_for("", 1, out, sizeof out), "empty");
    CHECK(!http_forwarded_for(NULL, 1, out, sizeof out), "none");
    CHECK(!http_forwarded_for("192.0.2.5", 0, out, sizeof out), "no proxy");
    CHECK(!http_forwarded_for("192.0.2.5:8080", 1, out, sizeof out), "port");
}

/* The literal an answer made without memory quotes ids with. */
static void test_json_quote(void)
{
    char out[64];
    CHECK(http_json_quote("a\"b\\c\n\x01é", out, sizeof out) &&
              strcmp(out, "\"a\\\"b\\\\c\\u000a\\u0001é\"") == 0, "%s", out);
    CHECK(http_json_quote(NULL, out, sizeof out) && strcmp(out, "null") == 0, "%s", out);
    CHECK(http_json_quote("", out, sizeof out) && strcmp(out, "\"\"") == 0, "%s", out);
    CHECK(http_json_quote("abcd", out, 7) && strcmp(out, "\"abcd\"") == 0, "%s", out);
    CHECK(!http_json_quote("abcde", out, 7) && strcmp(out, "null") == 0, "%s", out);
    json_t *v = NULL;
    CHECK(http_json_quote("x\ty\"", out, sizeof out) &&
              (v = json_loads(out, JSON_DECODE_ANY, NULL)) &&
              strcmp(json_string_value(v), "x\ty\"") == 0, "%s", out);
    json_decref(v);
}

static void test_timestamp(void)
{
    char ts[32];
    http_timestamp(ts);
    CHECK(strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' &&
              ts[23] == 'Z', "%s", ts);
}

static void test_metrics(void)
{
    const char *names[] = {"GET /health", "POST /v1/embeddings"};
    metrics *m;
    CHECK(metrics_create(names, 2, &m, NULL) == 0, "create");
    metrics_observe(m, 0, 200, 0.001);
    metrics_observe(m, 0, 200, 0.2);
    metrics_observe(m, 1, 400, 100);
    metrics_observe(m, 7, 404, 0.001);  /* out of range: unmatched */
    metrics_add_embeddings(m, 3, 30);
    metrics_gauges g = {.rss_bytes = 1e6, .model_loaded = 1, .chunks = 5,
                        .in_flight = 2};
    char *text;
    size_t len;
    CHECK(metrics_render(m, &g, &text, &len, NULL) == 0, "render");
    CHECK(strlen(text) == len, "length");
    CHECK(strstr(text, "lode_http_requests_total{method=\"GET\",route=\""
                       "/health\",status=\"200\"} 2\n"), "count");
    CHECK(strstr(text, "lode_http_requests_total{route=\"unmatched\","
                       "status=\"404\"} 1\n"), "unmatched");
    CHECK(strstr(text, "lode_http_request_duration_seconds_bucket{method="
                       "\"GET\",route=\"/health\",le=\"0.005\"} 1\n"),
          "bucket");
    CHECK(strstr(text, "route=\"/health\",le=\"0.25\"} 2\n"), "cumulative");
    CHECK(strstr(text, "route=\"/v1/embeddings\",le=\"30\"} 0\n") &&
              strstr(text, "route=\"/v1/embeddings\",le=\"+Inf\"} 1\n"),
          "over the last bucket");
    CHECK(strstr(text, "lode_embeddings_total 3\n") &&
              strstr(text, "lode_tokens_total 30\n"), "counters");
    CHECK(strstr(text, "lode_http_requests_in_flight 2\n"), "in flight");
    CHECK(strstr(text, "lode_store_chunks 5\n"), "chunks");
    CHECK(metrics_mean_latency_ms(m) > 25000, "mean");
    free(text);
    metrics_free(m);
}

int main(void)
{
    test_match();
    test_depth();
    test_types();
    test_bearer();
    test_forwarded_for();
    test_json_quote();
    test_timestamp();
    test_metrics();
    TEST_MAIN_END();
}
