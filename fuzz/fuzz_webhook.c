/* fuzz_webhook.c - libFuzzer driver for what the webhooks take out of a
 * delivery: Tally's answers (webhook_tally_answers, src/webhook.c), a
 * generic webhook's text, metadata, id and title (src/webhook_generic.c)
 * and the JSON pointers they use (src/jsonptr.c).
 *
 * The first byte picks the mode; the rest is JSON (for jsonptr: a
 * pointer, a NUL, then JSON):
 *   0  Tally: {"embed_fields": [...]?, "payload": {...}}.  The settings
 *      go through webhook_config_load as a --webhooks file would (written
 *      to a memfd), and payload.data is extracted as the handler does.
 *   1  generic: {"hook": {...}, "body": ...}, the hook loaded the same
 *      way as {"generic": {"h": hook}}.
 *   2  jsonptr_get of the pointer in the document.
 * Checked: on failure an error message and no output; on success the
 * text is non-empty, valid UTF-8 without NUL, the metadata an object of
 * strings, numbers and booleans (and for generic hooks only the
 * configured keys), the id non-empty; jsonptr_get agrees with an
 * independent resolver below, refuses exactly what jsonptr_valid refuses.
 *
 * Seeds: fuzz/corpus/webhook/ (Tally payloads of every field type, generic
 * hooks, pointers with escapes); dictionary fuzz/webhook.dict. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "extract.h"
#include "fuzz.h"
#include "jsonptr.h"
#include "webhook.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz-webhook", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("fuzz_webhook: memfd_create");
        exit(1);
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

/* The settings as a --webhooks file; NULL when it is refused. */
static webhook_config *load_config(json_t *root)
{
    char *text = json_dumps(root, JSON_COMPACT);
    FUZZ_CHECK(text, "out of memory");
    size_t n = strlen(text);
    FUZZ_CHECK(ftruncate(memfd, 0) == 0 && pwrite(memfd, text, n, 0) ==
                   (ssize_t)n, "writing the memfd");
    free(text);
    webhook_config *c = NULL;
    lode_error err = {0};
    if (webhook_config_load(memfd_path, &c, &err)) {
        FUZZ_CHECK(c == NULL && err.message[0], "refused without a message");
        return NULL;
    }
    FUZZ_CHECK(c != NULL, "loaded without a config");
    return c;
}

static void check_text(const char *text)
{
    lode_error err = {0};
    FUZZ_CHECK(text && text[0], "empty text on success");
    FUZZ_CHECK(extract_check_utf8(text, strlen(text), &err) == 0, "text: %s",
               err.message);
}

static void check_metadata(json_t *meta, json_t *configured)
{
    FUZZ_CHECK(json_is_object(meta), "metadata is not an object");
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        FUZZ_CHECK(json_is_string(v) || json_is_number(v) ||
                       json_is_boolean(v),
                   "metadata '%s' of type %d", key, json_typeof(v));
        if (configured)
            FUZZ_CHECK(json_object_get(configured, key),
                       "metadata '%s' not configured", key);
    }
}

static void tally(json_t *doc)
{
    json_t *form = json_object();
    json_t *embed = json_object_get(doc, "embed_fields");
    if (embed)
        json_object_set(form, "embed_fields", embed);
    json_t *root = json_pack("{s:{s:o}}", "tally", "f", form);
    webhook_config *c = load_config(root);
    json_decref(root);
    if (!c)
        return;
    json_t *data = json_object_get(json_object_get(doc, "payload"), "data");
    char *text = NULL;
    json_t *meta = NULL;
    lode_error err = {0};
    int rc = webhook_tally_answers(
        data, json_object_get(webhook_tally_form(c, "f"), "embed_fields"),
        &text, &meta, &err);
    if (rc) {
        FUZZ_CHECK(!text && !meta && err.message[0],
                   "failure with output or without a message");
    } else {
        /* a submission may answer nothing that is embedded: text "" */
        lode_error uerr = {0};
        FUZZ_CHECK(text && extract_check_utf8(text, strlen(text), &uerr) == 0,
                   "text: %s", uerr.message);
        check_metadata(meta, NULL);
    }
    free(text);
    json_decref(meta);
    webhook_config_free(c);
}

static void generic(json_t *doc, const char *raw, size_t len)
{
    json_t *root = json_pack("{s:{s:O?}}", "generic", "h",
                             json_object_get(doc, "hook"));
    FUZZ_CHECK(root, "out of memory");
    webhook_config *c = load_config(root);
    json_decref(root);
    if (!c)
        return;
    json_t *hook = webhook_generic(c, "h");
    FUZZ_CHECK(hook, "a loaded hook is missing");
    json_t *body = json_object_get(doc, "body");
    char *text = NULL, *id = NULL, *title = NULL;
    json_t *meta = NULL;
    lode_error err = {0};
    if (webhook_generic_fields(hook, body, &text, &meta, &err)) {
        FUZZ_CHECK(!text && !meta && err.message[0], "fields failure");
    } else {
        check_text(text);
        check_metadata(meta, json_object_get(hook, "metadata"));
    }
    memset(&err, 0, sizeof err);
    if (webhook_generic_id(hook, body, raw, len, &id, &err)) {
        FUZZ_CHECK(!id && err.message[0], "id failure");
    } else {
        FUZZ_CHECK(id && id[0], "empty id");
        memset(&err, 0, sizeof err);
        if (webhook_generic_title(hook, body, "h", id, &title, &err))
            FUZZ_CHECK(!title && err.message[0], "title failure");
        else
            FUZZ_CHECK(title != NULL, "no title");
    }
    free(text);
    free(id);
    free(title);
    json_decref(meta);
    webhook_config_free(c);
}

/* RFC 6901, independently: NULL when not found or invalid (*valid says
 * which). */
static json_t *ref_get(json_t *v, const char *p, bool *valid)
{
    *valid = true;
    if (!*p)
        return v;
    if (*p != '/') {
        *valid = false;
        return NULL;
    }
    json_t *found = v;
    while (*p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        char *tok = malloc(n + 1);
        FUZZ_CHECK(tok, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] != '~') {
                tok[k++] = p[i];
            } else if (i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                tok[k++] = p[++i] == '0' ? '~' : '/';
            } else {
                *valid = false;
            }
        }
        tok[k] = '\0';
        p += n;
        if (!*valid || !found) {
            free(tok);
            found = NULL;
            continue;
        }
        if (json_is_object(found)) {
            found = json_object_get(found, tok);
        } else if (json_is_array(found)) {
            bool digits = k > 0 && (k == 1 || tok[0] != '0');
            for (size_t i = 0; i < k; i++)
                digits = digits && tok[i] >= '0' && tok[i] <= '9';
            size_t idx = digits && k < 19 ? strtoull(tok, NULL, 10) : SIZE_MAX;
            found = idx < json_array_size(found) ? json_array_get(found, idx)
                                                 : NULL;
        } else {
            found = NULL;
        }
        free(tok);
    }
    return *valid ? found : NULL;
}

static void pointer(const char *ptr, json_t *doc)
{
    json_t *out = (json_t *)1;
    int rc = jsonptr_get(doc, ptr, &out);
    bool valid;
    json_t *want = ref_get(doc, ptr, &valid);
    FUZZ_CHECK(jsonptr_valid(ptr) == valid, "validity of \"%s\"", ptr);
    if (!valid) {
        FUZZ_CHECK(rc == LODE_EINVAL && !out, "invalid \"%s\": rc %d", ptr, rc);
    } else if (!want) {
        FUZZ_CHECK(rc == LODE_ENOTFOUND && !out, "\"%s\": rc %d, want absent",
                   ptr, rc);
    } else {
        FUZZ_CHECK(rc == 0 && out == want, "\"%s\": rc %d, another value", ptr,
                   rc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int mode = data[0] % 3;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if (mode == 2) {
        const char *nul = memchr(rest, 0, n);
        if (!nul)
            return 0;
        json_t *doc = json_loadb(nul + 1, n - (size_t)(nul - rest) - 1,
                                 JSON_DECODE_ANY, NULL);
        if (doc)
            pointer(rest, doc);
        json_decref(doc);
        return 0;
    }
    json_t *doc = json_loadb(rest, n, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    if (mode == 0)
        tally(doc);
    else
        generic(doc, rest, n);
    json_decref(doc);
    return 0;
}
