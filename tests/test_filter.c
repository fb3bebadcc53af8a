/* test_filter.c - Chroma "where" filters: every operator, nesting, missing
 * fields, strict types, and the parse-time errors for malformed filters. */
#include "test.h"
#include "filter.h"

#include <string.h>

static json_t *records[4];

/* Which of the records match `where`, as a bit mask (bit i = record i). */
static int matches(const char *where)
{
    filter *f;
    lode_error err = {0};
    int rc = filter_parse(where, &f, &err);
    CHECK(rc == 0, "parse %s: %s", where, err.message);
    if (rc)
        return -1;
    int mask = 0;
    for (int i = 0; i < 4; i++)
        if (filter_match_object(f, records[i]))
            mask |= 1 << i;
    filter_free(f);
    return mask;
}

#define EXPECT(where, mask)                                                  \
    do {                                                                     \
        int got_ = matches(where);                                           \
        CHECK(got_ == (mask), "%s: got mask %d, want %d", where, got_, mask); \
    } while (0)

/* A malformed filter is refused with LODE_EINVAL and a message containing
 * `needle`. */
static void expect_error(const char *where, const char *needle)
{
    filter *f = (filter *)1;
    lode_error err = {0};
    int rc = filter_parse(where, &f, &err);
    CHECK(rc == LODE_EINVAL, "%s: rc %d", where, rc);
    CHECK(f == NULL, "%s: filter left set", where);
    CHECK(strstr(err.message, needle) != NULL, "%s: message \"%s\" lacks \"%s\"",
          where, err.message, needle);
}

int main(void)
{
    records[0] = json_pack("{s:s, s:i, s:b, s:f}", "color", "red", "year", 2020, "draft", 1, "score", 0.5);
    records[1] = json_pack("{s:s, s:i, s:b}", "color", "blue", "year", 2023, "draft", 0);
    records[2] = json_pack("{s:s, s:s}", "color", "red", "year", "2021");  /* year as a string */
    records[3] = json_pack("{s:i}", "other", 1);                            /* lacks most fields */

    /* Implicit and explicit $eq, strict types. */
    EXPECT("{\"color\": \"red\"}", 0x5);
    EXPECT("{\"color\": {\"$eq\": \"blue\"}}", 0x2);
    EXPECT("{\"year\": 2020}", 0x1);
    EXPECT("{\"year\": 2020.0}", 0x1);
    EXPECT("{\"year\": \"2021\"}", 0x4);
    EXPECT("{\"draft\": true}", 0x1);
    EXPECT("{\"draft\": false}", 0x2);
    EXPECT("{\"other\": true}", 0x0);     /* 1 is not true */
    /* $ne and $nin include records lacking the field (Chroma >= 0.5.12). */
    EXPECT("{\"color\": {\"$ne\": \"red\"}}", 0xA);
    EXPECT("{\"year\": {\"$ne\": 2020}}", 0xE);
    EXPECT("{\"color\": {\"$nin\": [\"red\", \"green\"]}}", 0xA);
    EXPECT("{\"color\": {\"$in\": [\"blue\", \"green\"]}}", 0x2);
    EXPECT("{\"year\": {\"$in\": [2020, 2023]}}", 0x3);
    /* Ordering: numbers only; a string field never matches. */
    EXPECT("{\"year\": {\"$gt\": 2020}}", 0x2);
    EXPECT("{\"year\": {\"$gte\": 2020}}", 0x3);
    EXPECT("{\"year\": {\"$lt\": 2023}}", 0x1);
    EXPECT("{\"year\": {\"$lte\": 2023}}", 0x3);
    EXPECT("{\"score\": {\"$lt\": 0.75}}", 0x1);
    EXPECT("{\"missing\": {\"$lt\": 1e9}}", 0x0);
    /* Logic and nesting. */
    EXPECT("{\"$and\": [{\"color\": \"red\"}, {\"year\": {\"$gte\": 2020}}]}", 0x1);
    EXPECT("{\"$or\": [{\"color\": \"blue\"}, {\"other\": 1}]}", 0xA);
    EXPECT("{\"$or\": [{\"$and\": [{\"color\": \"red\"}, {\"draft\": true}]},"
           " {\"$and\": [{\"year\": {\"$gt\": 2022}}, {\"color\": {\"$ne\": \"red\"}}]}]}", 0x3);
    EXPECT("{\"$and\": [{\"$or\": [{\"year\": 2020}, {\"year\": \"2021\"}]}, {\"color\": \"red\"}]}", 0x5);
    /* Extensions: several keys, several operators on one field, empty. */
    EXPECT("{\"color\": \"red\", \"draft\": true}", 0x1);
    EXPECT("{\"year\": {\"$gt\": 2019, \"$lt\": 2021}}", 0x1);
    EXPECT("{}", 0xF);
    EXPECT("", 0xF);

    /* Errors, refused at parse time with a message naming the problem. */
    expect_error("{\"year\": {\"$gt\": \"2020\"}}", "compares numbers");
    expect_error("{\"color\": {\"$in\": \"red\"}}", "expects a list");
    expect_error("{\"color\": {\"$in\": []}}", "at least one");
    expect_error("{\"color\": {\"$in\": [\"red\", 1]}}", "one type");
    expect_error("{\"color\": {\"$like\": \"r%\"}}", "unknown operator \"$like\"");
    expect_error("{\"$not\": [{\"color\": \"red\"}]}", "unknown operator \"$not\"");
    expect_error("{\"$and\": {\"color\": \"red\"}}", "$and expects a list");
    expect_error("{\"$or\": []}", "$or needs at least one");
    expect_error("{\"color\": null}", "not null");
    expect_error("{\"color\": {\"$eq\": [1]}}", "not an array");
    expect_error("{\"color\": {}}", "operator object is empty");
    expect_error("[1, 2]", "expected an object");
    expect_error("{\"color\": ", "not valid JSON");
    expect_error("{\"$and\": [{\"year\": {\"$lte\": true}}]}", "\"year\"");

    /* Depth limit: refuses rather than recursing without bound. */
    char deep[4096] = "";
    for (int i = 0; i < 100; i++)
        strcat(deep, "{\"$and\": [");
    strcat(deep, "{\"a\": 1}");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]}");
    filter *f;
    CHECK(filter_parse(deep, &f, NULL) == LODE_ELIMIT, "depth limit");

    /* references / is_empty */
    CHECK(filter_parse("{\"$or\": [{\"a\": 1}, {\"heading\": {\"$ne\": \"x\"}}]}", &f, NULL) == 0, "parse");
    CHECK(filter_references(f, "heading") && filter_references(f, "a") && !filter_references(f, "b"),
          "references");
    CHECK(!filter_is_empty(f), "not empty");
    filter_free(f);
    CHECK(filter_parse(NULL, &f, NULL) == 0 && filter_is_empty(f), "empty");
    filter_free(f);
    CHECK(filter_match(NULL, NULL, NULL), "NULL filter matches");

    for (int i = 0; i < 4; i++)
        json_decref(records[i]);
    TEST_MAIN_END();
}
