/* test_webhook.c - the pure parts of webhook.c: the Tally signature (a
 * known HMAC-SHA256 vector, tampering, missing and malformed headers), the
 * answers-to-text rules, and the configuration checks. */
#include "test.h"
#include "webhook.h"

#include <stdlib.h>
#include <string.h>

static void test_signature(void)
{
    /* RFC 4231 test case 2: key "Jefe", data "what do ya want for
     * nothing?", HMAC-SHA256 5bdcc146...ec3843 in base64. */
    const char *body = "what do ya want for nothing?";
    const char *good = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
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

static void check_config(const char *json, int want, const char *needle)
{
    char path[] = "/tmp/lode-test-webhook-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    fputs(json, f);
    fclose(f);
    webhook_config *c = NULL;
    lode_error err = {0};
    int rc = webhook_config_load(path, &c, &err);
    CHECK(rc == want, "%s: rc %d (%s)", json, rc, err.message);
    if (needle)
        CHECK(strstr(err.message, needle), "%s: %s", json, err.message);
    if (!rc)
        CHECK(webhook_tally_form(c, "f") != NULL, "%s: form f", json);
    webhook_config_free(c);
    remove(path);
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
}

int main(void)
{
    test_signature();
    test_answers();
    test_config();
    TEST_MAIN_END();
}
