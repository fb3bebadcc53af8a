/* test_store_feedback.c - ratings of answers in the store
 * (store_feedback.c): record, replace, list in pages, survive a reopen,
 * refuse bad input and read-only files, and fail cleanly at every write
 * step; and store_list_documents, the page of documents the web page's
 * Documents panel shows. */
#include "test.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 4
#define MODEL "test-model-4"

static char tmpdir[256];

static char *path_in(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static store *open_store(const char *path, bool read_only)
{
    store_options opts = {.read_only = read_only};
    store *s = NULL;
    lode_error err = {0};
    CHECK(store_open(path, &opts, &s, &err) == 0, "open %s: %s", path,
          err.message);
    return s;
}

static size_t list_all(store *s, store_feedback **fb)
{
    size_t n = 99;
    lode_error err = {0};
    CHECK(store_list_feedback(s, 0, 1000, fb, &n, &err) == 0, "list: %s",
          err.message);
    return n;
}

static void test_feedback(void)
{
    const char *path = path_in("fb.db");
    store *s = open_store(path, false);
    store_feedback *fb = NULL;
    CHECK(list_all(s, &fb) == 0 && fb == NULL, "a new store has none");

    lode_error err = {0};
    int64_t id1 = 0, id2 = 0, id3 = 0;
    store_feedback in = {.answer_id = "chat-1", .rating = 1,
                         .query = "how many days?", .answer = "25 [1]",
                         .collection = "default"};
    CHECK(store_put_feedback(s, &in, &id1, &err) == 0, "put: %s", err.message);
    in = (store_feedback){.answer_id = "chat-2", .rating = -1,
                          .comment = "wrong figure"};
    CHECK(store_put_feedback(s, &in, &id2, &err) == 0, "put 2: %s",
          err.message);
    CHECK(id1 > 0 && id2 > id1, "ids %lld %lld", (long long)id1,
          (long long)id2);
    /* rating chat-1 again replaces its rating, keeps what is not given */
    in = (store_feedback){.answer_id = "chat-1", .rating = -1,
                          .comment = "changed my mind"};
    CHECK(store_put_feedback(s, &in, &id3, &err) == 0, "put 3: %s",
          err.message);
    CHECK(id3 == id1, "same row: %lld %lld", (long long)id3, (long long)id1);

    size_t n = list_all(s, &fb);
    CHECK(n == 2, "%zu rows", n);
    if (n == 2) {
        CHECK(strcmp(fb[0].answer_id, "chat-1") == 0 && fb[0].rating == -1,
              "replaced: %s %d", fb[0].answer_id, fb[0].rating);
        CHECK(fb[0].query && strcmp(fb[0].query, "how many days?") == 0,
              "query kept");
        CHECK(fb[0].answer && strcmp(fb[0].answer, "25 [1]") == 0,
              "answer kept");
        CHECK(fb[0].comment && strcmp(fb[0].comment, "changed my mind") == 0,
              "comment set");
        CHECK(fb[0].collection && strcmp(fb[0].collection, "default") == 0,
              "collection kept");
        CHECK(fb[0].created > 0 && fb[0].updated >= fb[0].created, "times");
        CHECK(fb[1].rating == -1 && fb[1].query == NULL &&
                  fb[1].answer == NULL,
              "absent fields are NULL");
    }
    store_feedback_free(fb, n);

    /* pages: after an id, at most limit */
    for (int i = 0; i < 5; i++) {
        char aid[32];
        snprintf(aid, sizeof aid, "chat-p%d", i);
        in = (store_feedback){.answer_id = aid, .rating = 1};
        CHECK(store_put_feedback(s, &in, NULL, &err) == 0, "put p: %s",
              err.message);
    }
    CHECK(store_list_feedback(s, id2, 3, &fb, &n, &err) == 0, "page");
    CHECK(n == 3 && fb[0].id > id2 && strcmp(fb[0].answer_id, "chat-p0") == 0,
          "first page %zu", n);
    int64_t last = n ? fb[n - 1].id : 0;
    store_feedback_free(fb, n);
    CHECK(store_list_feedback(s, last, 3, &fb, &n, &err) == 0 && n == 2,
          "second page %zu", n);
    store_feedback_free(fb, n);

    /* bad input */
    in = (store_feedback){.answer_id = "chat-x", .rating = 2};
    CHECK(store_put_feedback(s, &in, NULL, &err) == LODE_EINVAL, "rating 2");
    in = (store_feedback){.answer_id = "", .rating = 1};
    CHECK(store_put_feedback(s, &in, NULL, &err) == LODE_EINVAL, "no id");

    /* a write failure at each step leaves the table as it was */
    for (int nth = 1; nth <= 2; nth++) {
        store_debug_fail_write(s, nth);
        in = (store_feedback){.answer_id = "chat-fail", .rating = 1};
        int rc = store_put_feedback(s, &in, NULL, &err);
        store_debug_fail_write(s, 0);
        CHECK(rc == LODE_EIO, "write %d fails: %d", nth, rc);
        CHECK(strstr(err.message, "disk is full") != NULL, "message: %s",
              err.message);
    }
    CHECK(list_all(s, &fb) == 7, "nothing added by the failures");
    store_feedback_free(fb, 7);
    store_close(s);

    /* durable, and readable from a read-only handle, which refuses writes */
    s = open_store(path, true);
    n = list_all(s, &fb);
    CHECK(n == 7, "after reopening: %zu", n);
    store_feedback_free(fb, n);
    in = (store_feedback){.answer_id = "chat-ro", .rating = 1};
    CHECK(store_put_feedback(s, &in, NULL, &err) == LODE_EIO &&
              strstr(err.message, "read-only"),
          "read-only: %s", err.message);
    store_close(s);
}

static void test_list_documents(void)
{
    store *s = open_store(path_in("docs.db"), false);
    lode_error err = {0};
    store_document_info *d = NULL;
    size_t n = 0;
    int64_t total = -1;
    CHECK(store_list_documents(s, "kb", 0, 10, &d, &n, &total, &err) ==
              LODE_ENOTFOUND,
          "no collection");
    CHECK(store_create_collection(s, "kb", MODEL, DIM, STORE_COSINE, &err) == 0,
          "create: %s", err.message);
    CHECK(store_list_documents(s, "kb", 0, 10, &d, &n, &total, &err) == 0 &&
              n == 0 && total == 0,
          "empty collection");
    float vec[3][DIM] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}};
    for (int i = 0; i < 5; i++) {
        char source[32], title[32];
        snprintf(source, sizeof source, "doc%d.md", i);
        snprintf(title, sizeof title, "Doc %d", i);
        store_chunk_in chunks[3];
        for (int c = 0; c < 3; c++)
            chunks[c] = (store_chunk_in){.text = "text", .char_start = c * 10,
                                         .char_end = c * 10 + 4,
                                         .token_count = 1, .vector = vec[c],
                                         .dimension = DIM};
        store_document_in in = {.model_id = MODEL, .source = source,
                                .external_id = i == 2 ? "ext-2" : NULL,
                                .title = i == 4 ? NULL : title,
                                .chunks = chunks, .n_chunks = (size_t)(i % 3 + 1)};
        CHECK(store_add_document(s, "kb", &in, NULL, &err) == 0, "add: %s",
              err.message);
    }
    CHECK(store_list_documents(s, "kb", 0, 3, &d, &n, &total, &err) == 0,
          "page 1: %s", err.message);
    CHECK(n == 3 && total == 5, "%zu of %lld", n, (long long)total);
    if (n == 3) {
        CHECK(strcmp(d[0].source, "doc0.md") == 0 && d[0].chunks == 1 &&
                  strcmp(d[0].title, "Doc 0") == 0 && d[0].external_id == NULL,
              "first");
        CHECK(d[1].chunks == 2 && d[2].chunks == 3, "chunk counts");
        CHECK(d[2].external_id && strcmp(d[2].external_id, "ext-2") == 0,
              "external id");
        CHECK(d[0].id < d[1].id && d[1].id < d[2].id, "id order");
        CHECK(d[0].created > 0 && d[0].updated >= d[0].created, "times");
    }
    store_document_infos_free(d, n);
    CHECK(store_list_documents(s, "kb", 3, 3, &d, &n, NULL, &err) == 0 &&
              n == 2 && d[1].title == NULL,
          "page 2: %zu", n);
    store_document_infos_free(d, n);
    CHECK(store_list_documents(s, "kb", 10, 3, &d, &n, &total, &err) == 0 &&
              n == 0 && total == 5,
          "past the end");
    store_document_infos_free(d, n);
    store_close(s);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lode-test-feedback-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_feedback();
    test_list_documents();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
