/* test_jsonptr.c - RFC 6901 JSON pointers (jsonptr.c): the RFC's own
 * examples from section 5, escapes ("~01" is "~1"), array indices (no
 * leading zeros, "-" past the end, overflow), descending into a scalar, and
 * which pointers are valid at all. */
#include "test.h"
#include "jsonptr.h"

#include <stdlib.h>
#include <string.h>

/* Does `pointer` resolve in doc to JSON `want` (NULL: rc `want_rc`)? */
static void check_pointer(json_t *doc, const char *pointer, const char *want,
                          int want_rc)
{
    json_t *v = NULL;
    int rc = jsonptr_get(doc, pointer, &v);
    char *got = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (want)
        CHECK(rc == 0 && got && strcmp(got, want) == 0, "%s: rc %d, %s",
              pointer, rc, got ? got : "(null)");
    else
        CHECK(rc == want_rc && !v, "%s: rc %d, want %d", pointer, rc,
              want_rc);
    free(got);
}

static void test_pointer(void)
{
    /* RFC 6901 section 5 */
    json_t *doc = json_loads(
        "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, "
        "\"c%d\": 2, \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, "
        "\"k\\\"l\": 6, \" \": 7, \"m~n\": 8, \"~1\": 9, "
        "\"01\": 10, \"n\": {\"arr\": [{\"x\": [true]}]}}", 0, NULL);
    CHECK(doc != NULL, "the example document parses");
    json_t *v = NULL;
    CHECK(jsonptr_get(doc, "", &v) == 0 && v == doc, "whole");
    check_pointer(doc, "/foo", "[\"bar\",\"baz\"]", 0);
    check_pointer(doc, "/foo/0", "\"bar\"", 0);
    check_pointer(doc, "/foo/1", "\"baz\"", 0);
    check_pointer(doc, "/", "0", 0);
    check_pointer(doc, "/a~1b", "1", 0);
    check_pointer(doc, "/c%d", "2", 0);
    check_pointer(doc, "/e^f", "3", 0);
    check_pointer(doc, "/g|h", "4", 0);
    check_pointer(doc, "/i\\j", "5", 0);
    check_pointer(doc, "/k\"l", "6", 0);
    check_pointer(doc, "/ ", "7", 0);
    check_pointer(doc, "/m~0n", "8", 0);
    check_pointer(doc, "/~01", "9", 0);          /* "~01" is "~1", not "/" */
    check_pointer(doc, "/01", "10", 0);          /* object keys are keys */
    check_pointer(doc, "/n/arr/0/x/0", "true", 0);
    check_pointer(doc, "/foo/01", NULL, LODE_ENOTFOUND);  /* leading zero */
    check_pointer(doc, "/foo/2", NULL, LODE_ENOTFOUND);
    check_pointer(doc, "/foo/-", NULL, LODE_ENOTFOUND);   /* past the end */
    check_pointer(doc, "/foo/-1", NULL, LODE_ENOTFOUND);
    check_pointer(doc, "/foo/+1", NULL, LODE_ENOTFOUND);
    check_pointer(doc, "/foo/99999999999999999999999", NULL, LODE_ENOTFOUND);
    check_pointer(doc, "/foo/0/x", NULL, LODE_ENOTFOUND); /* into a string */
    check_pointer(doc, "/a/b", NULL, LODE_ENOTFOUND);
    check_pointer(doc, "/missing", NULL, LODE_ENOTFOUND);
    check_pointer(doc, "/m~n", NULL, LODE_EINVAL);
    check_pointer(doc, "/m~", NULL, LODE_EINVAL);
    check_pointer(doc, "foo", NULL, LODE_EINVAL);
    CHECK(jsonptr_valid("") && jsonptr_valid("/") &&
          jsonptr_valid("/a~0~1") && !jsonptr_valid("a") &&
          !jsonptr_valid("/~") && !jsonptr_valid("/~2") &&
          !jsonptr_valid(NULL), "jsonptr_valid");
    json_decref(doc);
}

int main(void)
{
    test_pointer();
    TEST_MAIN_END();
}
