/* test_webhook.c - the pure parts of webhook.c: the Tally signature (a
 * known HMAC-SHA256 vector, tampering, missing and malformed headers) and
 * the generic webhooks' (hex or base64), the answers-to-text rules, the
 * generic text/metadata/id/title extraction (webhook_generic.c) and its
 * errors, and the configuration checks.  The JSON pointers it relies on
 * are tested in test_jsonptr.c.  Also the forwarder webhook.c hands its answers to (forward.c):
 * its retry rules, and the thread itself against a port nobody listens on
 * (the end-to-end tests cover real deliveries). */
#include "test.h"
#include "forward.h"
#include "metrics.h"
#include "webhook.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void test_signature(void)
{
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for
     * nothing?", HMAC-SHA256 5bdcc146...ec3843 in base64. */
    const char *body = "what do ya want for nothing?";
    const char *good = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
    char signed_[WEBHOOK_SIGNATURE_LEN + 1];
    CHECK(webhook_sign(body, strlen(body), "Jefe", signed_) &&
          strcmp(signed_, good) == 0, "sign: the RFC's MAC in base64");
    CHECK(webhook_signature_ok(body, strlen(body), "Jefe", good), "good");
    CHECK(!webhook_signature_ok(body, strlen(body) - 1, "Jefe", good),
          "shorter body");
    CHECK(!webhook_signature_ok(body, strlen(body), "jefe", good), "key");
    CHECK(!webhook_signature_ok(body, strlen(body), "Jefe", NULL), "none");
    CHECK(!webhook_signature_ok(body, strlen(body), "Jefe", ""), "empty");
    CHECK(!webhook_signature_ok(body, strlen(body), "Jefe",
                                "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM"),
          "truncated");
    CHECK(!webhook_signature_ok(body, strlen(body), "Jefe",
                                "X9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="),
          "one character off");
}

static void test_answers(void)
{
    const char *data_json =
        "{\"formId\": \"f\", \"fields\": ["
        "{\"key\": \"q1\", \"label\": \"Plan\", \"type\": \"MULTIPLE_CHOICE\","
        " \"value\": [\"o2\"], \"options\": [{\"id\": \"o1\", \"text\": "
        "\"Free\"}, {\"id\": \"o2\", \"text\": \"Pro\"}]},"
        "{\"key\": \"q2\", \"label\": \"Tags\", \"value\": [\"a\", \"b\"],"
        " \"options\": [{\"id\": \"a\", \"text\": \"Alpha\"}]},"
        "{\"key\": \"q3\", \"label\": \"\", \"value\": 2.5},"
        "{\"key\": \"q4\", \"label\": \"Skipped\", \"value\": null},"
        "{\"key\": \"q5\", \"label\": \"Files\", \"value\": [{\"name\": "
        "\"cv.pdf\", \"url\": \"https://x/cv.pdf\"}]},"
        "{\"key\": \"q6\", \"label\": \"Agree\", \"value\": true}]}";
    json_t *data = json_loads(data_json, 0, NULL);
    char *text = NULL;
    json_t *meta = NULL;
    lode_error err = {0};
    int rc = webhook_tally_answers(data, NULL, &text, &meta, &err);
    CHECK(rc == 0, "%s", err.message);
    CHECK(text && strcmp(text, "Plan: Pro\nTags: Alpha, b\nq3: 2.5\n"
                               "Files: cv.pdf\nAgree: true\n") == 0,
          "text %s", text ? text : "(null)");
    char *m = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    CHECK(m && strcmp(m, "{\"Agree\":true,\"Files\":\"cv.pdf\","
                         "\"Plan\":\"Pro\",\"Tags\":\"Alpha, b\","
                         "\"q3\":2.5}") == 0,
          "metadata %s", m ? m : "(null)");
    free(m);
    free(text);
    json_decref(meta);

    json_t *only = json_pack("[s,s]", "q2", "Plan");
    rc = webhook_tally_answers(data, only, &text, &meta, &err);
    CHECK(rc == 0 && strcmp(text, "Plan: Pro\nTags: Alpha, b\n") == 0,
          "embed_fields %s", text ? text : "(null)");
    free(text);
    json_decref(meta);
    json_decref(only);

    only = json_pack("[s]", "Skipped");
    rc = webhook_tally_answers(data, only, &text, &meta, &err);
    CHECK(rc == LODE_EINVAL && !text && !meta, "nothing to embed: %d", rc);
    json_decref(only);
    json_decref(data);

    data = json_loads("{\"fields\": [{\"label\": \"x\"}]}", 0, NULL);
    rc = webhook_tally_answers(data, NULL, &text, &meta, &err);
    CHECK(rc == LODE_EINVAL && strstr(err.message, "fields[0]"), "%s",
          err.message);
    json_decref(data);
    data = json_loads("{\"fields\": 3}", 0, NULL);
    rc = webhook_tally_answers(data, NULL, &text, &meta, &err);
    CHECK(rc == LODE_EINVAL, "fields not an array: %d", rc);
    json_decref(data);
}

/* Load `json` as a configuration file; rc, *out and err as the loader's. */
static int load_config(const char *json, webhook_config **out,
                       lode_error *err)
{
    char path[] = "/tmp/lode-test-webhook-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return LODE_EIO;
    }
    fputs(json, f);
    fclose(f);
    int rc = webhook_config_load(path, out, err);
    remove(path);
    return rc;
}

static void check_config(const char *json, int want, const char *needle)
{
    webhook_config *c = NULL;
    lode_error err = {0};
    int rc = load_config(json, &c, &err);
    CHECK(rc == want, "%s: rc %d (%s)", json, rc, err.message);
    if (needle)
        CHECK(strstr(err.message, needle), "%s: %s", json, err.message);
    if (!rc)
        CHECK(webhook_tally_form(c, "f") != NULL ||
              webhook_generic(c, "g") != NULL, "%s: form f or webhook g",
              json);
    webhook_config_free(c);
}

static void test_config(void)
{
    check_config("{\"tally\": {\"f\": {\"secret\": \"s\", \"embed_fields\": "
                 "[\"a\"], \"filter_fields\": {\"a\": \"b\"}, \"catalog\": "
                 "\"kb\", \"k\": 3}}}", 0, NULL);
    check_config("{\"tally\": {\"f\": {\"filter_fields\": [\"a\"]}}}", 0,
                 NULL);
    check_config("{\"tally\": []}", LODE_EFORMAT, "tally");
    check_config("{\"tally\": {\"f\": {\"k\": 0}}}", LODE_EFORMAT, "tally.f.k");
    check_config("{\"tally\": {\"f\": {\"secret\": 1}}}", LODE_EFORMAT,
                 "secret");
    check_config("{\"tally\": {\"f\": {\"embed_fields\": [1]}}}",
                 LODE_EFORMAT, "embed_fields");
    check_config("{\"tally\": {\"f\": {\"filter_fields\": {\"a\": 1}}}}",
                 LODE_EFORMAT, "filter_fields");
    check_config("{\"tally\": ", LODE_EFORMAT, NULL);
    CHECK(webhook_tally_form(NULL, "f") == NULL, "no config");
    CHECK(webhook_generic(NULL, "g") == NULL, "no config");
    CHECK(!webhook_config_forwards(NULL), "no config forwards nothing");
}

static void test_config_generic(void)
{
    /* everything at once */
    check_config("{\"generic\": {\"g\": {\"secret\": \"s\", "
                 "\"signature_header\": \"X-Hub-Signature-256\", "
                 "\"text\": [\"/a\", \"/b/0\", \"/m~0n/a~1b\"], "
                 "\"metadata\": {\"k\": \"/c\"}, \"id\": \"/id\", "
                 "\"title\": \"/t\", \"collection\": \"issues\", "
                 "\"filter_fields\": {\"k\": \"kind\"}, \"catalog\": "
                 "\"kb\", \"k\": 2, \"forward_url\": "
                 "\"https://example.com/hook\", \"forward_headers\": "
                 "{\"Authorization\": \"Bearer x\"}, "
                 "\"forward_timeout_ms\": 500, \"forward_retries\": 0}}, "
                 "\"forward_queue\": 10}", 0, NULL);
    check_config("{\"generic\": {\"g\": {\"text\": [\"\"]}}}", 0, NULL);
    check_config("{\"generic\": {\"g\": {}}}", LODE_EFORMAT,
                 "generic.g.text");
    check_config("{\"generic\": {\"g\": {\"text\": []}}}", LODE_EFORMAT,
                 "generic.g.text");
    check_config("{\"generic\": {\"g\": {\"text\": [\"a/b\"]}}}",
                 LODE_EFORMAT, "generic.g.text");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a~2\"]}}}",
                 LODE_EFORMAT, "generic.g.text");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"metadata\": {\"k\": \"x\"}}}}", LODE_EFORMAT,
                 "generic.g.metadata");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"metadata\": [\"/x\"]}}}", LODE_EFORMAT,
                 "generic.g.metadata");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"id\": \"id\"}}}", LODE_EFORMAT, "generic.g.id");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"title\": 3}}}", LODE_EFORMAT, "generic.g.title");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"forward_ur\": \"http://x\"}}}", LODE_EFORMAT,
                 "unknown setting");
    check_config("{\"generic\": {\"tally\": {\"text\": [\"/a\"]}}}",
                 LODE_EFORMAT, "generic.tally");
    check_config("{\"generic\": {\"a b\": {\"text\": [\"/a\"]}}}",
                 LODE_EFORMAT, "name");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"collection\": \"no/slash\"}}}", LODE_EFORMAT,
                 "collection");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"signature_header\": \"Bad: header\"}}}", LODE_EFORMAT,
                 "signature_header");
    check_config("{\"generic\": {\"g\": {\"text\": [\"/a\"], "
                 "\"k\": 1001}}}", LODE_EFORMAT, "generic.g.k");
    check_config("{\"generic\": []}", LODE_EFORMAT, "generic");
    check_config("{\"generic\": {\"g\": 1}}", LODE_EFORMAT, "generic.g");
    /* forwarding, for generic webhooks and Tally forms alike */
    check_config("{\"tally\": {\"f\": {\"forward_url\": "
                 "\"http://127.0.0.1:9/x\", \"forward_retries\": 10}}}", 0,
                 NULL);
    check_config("{\"tally\": {\"f\": {\"forward_url\": "
                 "\"ftp://example.com\"}}}", LODE_EFORMAT,
                 "tally.f.forward_url");
    check_config("{\"tally\": {\"f\": {\"forward_url\": 1}}}",
                 LODE_EFORMAT, "forward_url");
    check_config("{\"tally\": {\"f\": {\"forward_url\": "
                 "\"http://a b\"}}}", LODE_EFORMAT, "forward_url");
    check_config("{\"tally\": {\"f\": {\"forward_retries\": 2}}}",
                 LODE_EFORMAT, "needs a forward_url");
    check_config("{\"tally\": {\"f\": {\"forward_url\": \"http://x\", "
                 "\"forward_retries\": 11}}}", LODE_EFORMAT,
                 "forward_retries");
    check_config("{\"tally\": {\"f\": {\"forward_url\": \"http://x\", "
                 "\"forward_timeout_ms\": 50}}}", LODE_EFORMAT,
                 "forward_timeout_ms");
    check_config("{\"tally\": {\"f\": {\"forward_url\": \"http://x\", "
                 "\"forward_headers\": {\"X-A\": \"1\\r\\nX-B: 2\"}}}}",
                 LODE_EFORMAT, "forward_headers.X-A");
    check_config("{\"tally\": {\"f\": {\"forward_url\": \"http://x\", "
                 "\"forward_headers\": {\"X A\": \"1\"}}}}",
                 LODE_EFORMAT, "forward_headers");
    check_config("{\"tally\": {\"f\": {\"forward_url\": \"http://x\", "
                 "\"forward_headers\": [\"X-A: 1\"]}}}", LODE_EFORMAT,
                 "forward_headers");
    check_config("{\"forward_queue\": 0}", LODE_EFORMAT, "forward_queue");

    webhook_config *c = NULL;
    lode_error err = {0};
    int rc = load_config("{\"tally\": {\"f\": {}}, \"generic\": {\"g\": "
                         "{\"text\": [\"/a\"], \"forward_url\": "
                         "\"http://x\"}}, \"forward_queue\": 7}", &c, &err);
    CHECK(rc == 0 && webhook_config_forwards(c) &&
          webhook_config_forward_queue(c) == 7, "forwards: %s", err.message);
    CHECK(webhook_generic(c, "nope") == NULL, "unknown name");
    webhook_config_free(c);
    rc = load_config("{\"tally\": {\"f\": {}}}", &c, &err);
    CHECK(rc == 0 && !webhook_config_forwards(c) &&
          webhook_config_forward_queue(c) == 0, "no forwarding");
    webhook_config_free(c);
}

static void test_signature_any(void)
{
    /* RFC 4231 test case 2 again, as hex and base64 */
    const char *body = "what do ya want for nothing?";
    const char *hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b"
                      "964ec3843";
    size_t n = strlen(body);
    CHECK(webhook_signature_any_ok(body, n, "Jefe", hex), "hex");
    CHECK(webhook_signature_any_ok(body, n, "Jefe",
                                   "sha256=5BDCC146BF60754E6A042426089575C75"
                                   "A003F089D2739839DEC58B964EC3843"),
          "upper-case hex with a prefix");
    CHECK(webhook_signature_any_ok(body, n, "Jefe",
                                   "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="),
          "base64");
    CHECK(webhook_signature_any_ok(body, n, "Jefe",
                                   "SHA256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexY"
                                   "uWTsOEM="), "base64 with a prefix");
    CHECK(!webhook_signature_any_ok(body, n, "Jefe",
                                    "5bdcc146bf60754e6a042426089575c75a003f089"
                                    "d2739839dec58b964ec3844"), "hex off");
    CHECK(!webhook_signature_any_ok(body, n, "Jefe", hex + 1), "hex short");
    CHECK(!webhook_signature_any_ok(body, n - 1, "Jefe", hex), "body");
    CHECK(!webhook_signature_any_ok(body, n, "jefe", hex), "key");
    CHECK(!webhook_signature_any_ok(body, n, "Jefe", NULL), "none");
    CHECK(!webhook_signature_any_ok(body, n, "Jefe", ""), "empty");
    CHECK(!webhook_signature_any_ok(body, n, "Jefe", "sha256="), "prefix");
}

static json_t *hook(const char *json)
{
    json_error_t jerr;
    json_t *h = json_loads(json, 0, &jerr);
    CHECK(h != NULL, "%s: %s", json, jerr.text);
    return h;
}

/* Extract with `hook_json` from `body_json`: rc; the error must contain
 * `needle` when given. */
static int extract(const char *hook_json, const char *body_json, char **text,
                   json_t **meta, const char *needle)
{
    json_t *h = hook(hook_json);
    json_t *b = json_loads(body_json, 0, NULL);
    lode_error err = {0};
    int rc = webhook_generic_fields(h, b, text, meta, &err);
    if (needle)
        CHECK(rc == LODE_EINVAL && strstr(err.message, needle),
              "%s: rc %d: %s", needle, rc, err.message);
    json_decref(h);
    json_decref(b);
    return rc;
}

/* The title of webhook "g", event "42", from `hook_json` and `body`:
 * `want` itself, or a message containing `want` when the hook's title
 * pointer is bad (a pointer in `want` tells which). */
static void check_title(const char *hook_json, json_t *body,
                        const char *want)
{
    json_t *h = hook(hook_json);
    char *title = (char *)1;
    lode_error err = {0};
    int rc = webhook_generic_title(h, body, "g", "42", &title, &err);
    if (strstr(want, "pointer"))
        CHECK(rc == LODE_EINVAL && !title && strstr(err.message, want),
              "%s: rc %d: %s", hook_json, rc, err.message);
    else
        CHECK(rc == 0 && title && strcmp(title, want) == 0, "%s: %s",
              hook_json, rc ? err.message : title);
    if (!rc)
        free(title);
    json_decref(h);
}

static void test_generic_fields(void)
{
    const char *body =
        "{\"issue\": {\"title\": \"Export fails\", \"body\": \"CSV is "
        "empty\", \"number\": 42, \"score\": 0.5, \"labels\": [\"bug\", "
        "\"export\"], \"one\": [\"solo\"], \"empty\": \"\", "
        "\"open\": true, \"user\": {\"login\": \"ann\"}, \"none\": "
        "null, \"mixed\": [\"a\", {}]}, \"a/b\": \"slash\"}";
    char *text = NULL;
    json_t *meta = NULL;
    int rc = extract("{\"text\": [\"/issue/title\", \"/issue/empty\", "
                     "\"/issue/body\", \"/issue/labels\", \"/issue/number\", "
                     "\"/a~1b\"], \"metadata\": {\"n\": \"/issue/number\", "
                     "\"score\": \"/issue/score\", \"labels\": "
                     "\"/issue/labels\", \"one\": \"/issue/one\", \"open\": "
                     "\"/issue/open\", \"who\": \"/issue/user/login\"}}",
                     body, &text, &meta, NULL);
    CHECK(rc == 0, "extract: rc %d", rc);
    CHECK(text && strcmp(text, "Export fails\nCSV is empty\nbug, export\n42"
                               "\nslash") == 0,
          "text %s", text ? text : "(null)");
    char *m = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    CHECK(m && strcmp(m, "{\"labels\":\"bug, export\",\"n\":42,"
                         "\"one\":\"solo\",\"open\":true,\"score\":0.5,"
                         "\"who\":\"ann\"}") == 0,
          "metadata %s", m ? m : "(null)");
    free(m);
    free(text);
    json_decref(meta);

    /* every failure names the pointer and leaves nothing behind */
    text = (char *)1;
    meta = (json_t *)1;
    extract("{\"text\": [\"/issue/missing\"]}", body, &text, &meta,
            "\"/issue/missing\" is not in the body");
    CHECK(!text && !meta, "outputs cleared on error");
    extract("{\"text\": [\"/issue/user\"]}", body, &text, &meta,
            "text pointer \"/issue/user\" is an object");
    extract("{\"text\": [\"/issue/none\"]}", body, &text, &meta,
            "\"/issue/none\" is null");
    extract("{\"text\": [\"/issue/open\"]}", body, &text, &meta,
            "\"/issue/open\" is a boolean");
    extract("{\"text\": [\"/issue/mixed\"]}", body, &text, &meta,
            "\"/issue/mixed\" is an array with something other");
    extract("{\"text\": [\"/issue/labels/7\"]}", body, &text, &meta,
            "/issue/labels/7");
    extract("{\"text\": [\"/issue/title\"], \"metadata\": {\"u\": "
            "\"/issue/user\"}}", body, &text, &meta,
            "metadata.u pointer \"/issue/user\" is an object");
    extract("{\"text\": [\"/issue/title\"], \"metadata\": {\"u\": "
            "\"/nope\"}}", body, &text, &meta, "metadata.u pointer \"/nope\"");
    extract("{\"text\": [\"/issue/empty\"]}", body, &text, &meta,
            "no text");
    extract("{\"text\": [\"\"]}", body, &text, &meta,
            "text pointer \"\" is an object");

    /* the idempotency id */
    json_t *b = json_loads(body, 0, NULL);
    lode_error err = {0};
    char *id = NULL;
    json_t *h = hook("{\"id\": \"/issue/number\"}");
    CHECK(webhook_generic_id(h, b, "", 0, &id, &err) == 0 && id &&
          strcmp(id, "42") == 0, "integer id %s", id ? id : "(null)");
    free(id);
    json_decref(h);
    h = hook("{\"id\": \"/issue/title\"}");
    CHECK(webhook_generic_id(h, b, "", 0, &id, &err) == 0 && id &&
          strcmp(id, "Export fails") == 0, "string id");
    free(id);
    json_decref(h);
    static const char *const bad[] = {"/issue/empty", "/issue/user",
                                      "/issue/score", "/issue/gone"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char hj[100];
        snprintf(hj, sizeof hj, "{\"id\": \"%s\"}", bad[i]);
        h = hook(hj);
        id = NULL;
        rc = webhook_generic_id(h, b, "", 0, &id, &err);
        CHECK(rc == LODE_EINVAL && !id && strstr(err.message, bad[i]),
              "bad id %s: %d %s", bad[i], rc, err.message);
        json_decref(h);
    }
    h = hook("{}");
    CHECK(webhook_generic_id(h, b, "abc", 3, &id, &err) == 0 && id &&
          strcmp(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff"
                     "61f20015ad") == 0, "SHA-256 of the body %s",
          id ? id : "(null)");
    free(id);
    json_decref(h);

    /* the title: its pointer's text, else "<name> <id>" */
    check_title("{\"title\": \"/issue/labels\"}", b, "bug, export");
    check_title("{}", b, "g 42");
    check_title("{\"title\": \"/issue/user\"}", b,
                "title pointer \"/issue/user\" is an object");
    json_decref(b);
}

/* ---- the forwarder (forward.c) ----------------------------------------- */

static void test_forward_rules(void)
{
    CHECK(forward_classify(1, 200) == FORWARD_OK, "200");
    CHECK(forward_classify(1, 204) == FORWARD_OK, "204");
    CHECK(forward_classify(0, 200) == FORWARD_RETRY, "transport error");
    CHECK(forward_classify(1, 500) == FORWARD_RETRY, "500");
    CHECK(forward_classify(1, 503) == FORWARD_RETRY, "503");
    CHECK(forward_classify(1, 429) == FORWARD_RETRY, "429");
    CHECK(forward_classify(1, 400) == FORWARD_FAIL, "400");
    CHECK(forward_classify(1, 404) == FORWARD_FAIL, "404");
    CHECK(forward_classify(1, 301) == FORWARD_FAIL, "301");
    CHECK(forward_retry_delay_ms(1, 0) == 500 &&
          forward_retry_delay_ms(2, 0) == 1000 &&
          forward_retry_delay_ms(3, 0) == 2000 &&
          forward_retry_delay_ms(4, 0) == 4000, "0.5 s doubling");
    CHECK(forward_retry_delay_ms(1, 3) == 3000, "Retry-After");
    CHECK(forward_retry_delay_ms(1, 100000) ==
          FORWARD_RETRY_AFTER_MAX_S * 1000, "Retry-After capped");
    CHECK(forward_retry_delay_ms(1000, 0) > 0, "no overflow");
}

typedef struct log_lines {
    char text[4096];
    int n;
} log_lines;

static void collect_log(void *ctx, const char *line)
{
    log_lines *l = ctx;  /* only the forwarder's thread and the test's */
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%s\n", line);
    l->n++;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The forward counters in the metrics text, as "ok/retry/failed/dropped". */
static void forward_counts(metrics *m, char *out, size_t size)
{
    metrics_gauges g = {0};
    char *text = NULL;
    size_t len = 0;
    unsigned long long v[4] = {0};
    static const char *const names[4] = {"ok", "retry", "failed", "dropped"};
    if (metrics_render(m, &g, &text, &len, NULL) == 0)
        for (int i = 0; i < 4; i++) {
            char key[80];
            snprintf(key, sizeof key,
                     "lode_webhook_forwards_total{result=\"%s\"} ", names[i]);
            const char *p = strstr(text, key);
            if (p)
                v[i] = strtoull(p + strlen(key), NULL, 10);
        }
    free(text);
    snprintf(out, size, "%llu/%llu/%llu/%llu", v[0], v[1], v[2], v[3]);
}

/* A port that accepts connections (into the kernel's backlog) and never
 * answers, so an attempt lasts until its timeout; -1 on failure. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 8) != 0 || getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A target that answers its first connection 503 with "Retry-After: 60"
 * and then closes: the delivery it gets waits a minute for its retry, far
 * longer than the test takes to stop the forwarder. */
typedef struct busy_target {
    int fd;
    bool started;
    pthread_t thread;
} busy_target;

static void *busy_serve(void *arg)
{
    busy_target *b = arg;
    int c = accept(b->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    /* the headers, then the 2-byte body "{}" */
    while (got < sizeof buf - 1 &&
           (r = recv(c, buf + got, sizeof buf - 1 - got, 0)) > 0) {
        got += (size_t)r;
        buf[got] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        if (end && got >= (size_t)(end - buf) + 4 + 2)
            break;
    }
    static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Retry-After: 60\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
    ssize_t w = send(c, answer, sizeof answer - 1, MSG_NOSIGNAL);
    (void)w;
    close(c);
    return NULL;
}

static void test_forwarder(void)
{
    /* Event 1 times out against a listener that never answers; event 2 is
     * told to come back in a minute.  Both are in flight when the third
     * comes, so the queue (2) is full. */
    int port = 0, lfd = silent_listener(&port);
    CHECK(lfd >= 0, "listening socket");
    char url[64], busy_url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    busy_target busy = {.fd = silent_listener(&port)};
    busy.started = busy.fd >= 0 &&
                   pthread_create(&busy.thread, NULL, busy_serve, &busy) == 0;
    CHECK(busy.started, "busy target");
    snprintf(busy_url, sizeof busy_url, "http://127.0.0.1:%d/", port);
    metrics *m = NULL;
    CHECK(metrics_create(NULL, 0, &m, NULL) == 0, "metrics");
    log_lines log = {"", 0};
    forward_options o = {.queue_capacity = 2, .metrics = m,
                         .log = collect_log, .log_ctx = &log};
    forwarder *f = NULL;
    lode_error err = {0};
    CHECK(forward_start(&o, &f, &err) == 0, "start: %s", err.message);
    if (!f) {
        metrics_free(m);
        return;
    }
    const char *headers[] = {"X-Test: 1"};
    forward_request r = {.url = url, .body = "{}",
                         .len = 2, .headers = headers, .n_headers = 1,
                         .timeout_ms = 300, .retries = 0,
                         .label = "test event 1"};
    CHECK(forward_submit(f, &r) == 0, "queued");
    r.url = busy_url;
    r.retries = 3;  /* answered 503, retried in 60 s */
    r.label = "test event 2";
    CHECK(forward_submit(f, &r) == 0, "queued");
    r.label = "test event 3";
    CHECK(forward_submit(f, &r) == LODE_ELIMIT, "the queue is full");
    CHECK(forward_submit(NULL, &r) == LODE_EINVAL, "no forwarder");
    /* Wait (bounded) until event 1 has failed and event 2 waits for its
     * retry: the condition asserted, not a time. */
    char counts[64];
    for (int i = 0; i < 3000; i++) {
        forward_counts(m, counts, sizeof counts);
        if (strcmp(counts, "0/1/1/1") == 0)
            break;
        sleep_ms(10);
    }
    CHECK(strcmp(counts, "0/1/1/1") == 0, "event 1 failed, event 2 waits "
          "to retry, event 3 dropped: %s", counts);
    CHECK(forward_pending(f) == 1, "event 1 done, event 2 waits: %zu",
          forward_pending(f));
    /* stop at once: event 2, tried once, is abandoned */
    forward_stop(f, 0);
    forward_stop(f, 0);  /* idempotent */
    CHECK(forward_submit(f, &r) == LODE_EBUSY, "stopped");
    forward_counts(m, counts, sizeof counts);
    /* ok/retry/failed/dropped: 1 and 2 failed, 2 retried once, 3 and the
     * one after stopping dropped */
    CHECK(strcmp(counts, "0/1/2/2") == 0, "counts %s", counts);
    CHECK(strstr(log.text, "test event 1 failed after 1 attempt") &&
          strstr(log.text, "test event 2 abandoned at shutdown after 1 "
                           "attempt") &&
          strstr(log.text, "test event 3 dropped: the queue is full") &&
          strstr(log.text, "dropped: the server is stopping"),
          "log:\n%s", log.text);
    forward_free(f);
    forward_free(NULL);
    metrics_free(m);
    if (lfd >= 0)
        close(lfd);
    if (busy.started)
        pthread_join(busy.thread, NULL);
    if (busy.fd >= 0)
        close(busy.fd);
}

int main(void)
{
    test_signature();
    test_answers();
    test_config();
    test_config_generic();
    test_signature_any();
    test_generic_fields();
    test_forward_rules();
    test_forwarder();
    TEST_MAIN_END();
}
