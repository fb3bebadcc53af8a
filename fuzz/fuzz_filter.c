/* fuzz_filter.c - libFuzzer driver for the "where" filter parser and
 * matcher (src/filter.c): the filter a client sends with a search or a
 * delete.
 *
 * The input up to its first NUL is the filter text; after it, a JSON
 * object is a record to match (else a few fixed records are used).
 * Checked:
 *   - filter_parse and filter_parse_json of the same JSON agree; on
 *     failure *out is NULL and the error has a message;
 *   - on success, wrapping the filter as {"$and": [W]}, {"$or": [W]} or
 *     {"$or": [W, W]} changes no match (when the wrapped filter is still
 *     within the depth limit);
 *   - an empty filter matches every record;
 *   - a field the filter does not reference (filter_references) never
 *     changes a match: removing it from the record gives the same answer.
 *
 * Seeds: fuzz/corpus/filter/ (Chroma filters, every operator, nesting);
 * dictionary fuzz/filter.dict. */
#include <string.h>

#include <jansson.h>

#include "filter.h"
#include "fuzz.h"

static const char *const fixed_records[] = {
    "{}",
    "{\"lang\": \"en\", \"year\": 2024, \"draft\": false, \"score\": 0.5}",
    "{\"lang\": \"de\", \"year\": 1999.0, \"draft\": true, \"tags\": [1]}",
    "{\"source\": \"a.md\", \"title\": null, \"n\": -1, \"x\": {\"y\": 1}}",
};
#define N_FIXED (sizeof fixed_records / sizeof fixed_records[0])

/* The filter `wrapped` (a new JSON value, reference taken) must match
 * `rec` as f does, whenever it parses. */
static void check_wrapped(const filter *f, json_t *wrapped, const json_t *rec,
                          bool expect, const char *what)
{
    filter *g = NULL;
    lode_error err = {0};
    FUZZ_CHECK(wrapped, "out of memory");
    if (filter_parse_json(wrapped, &g, &err) == 0) {
        FUZZ_CHECK(filter_match_object(g, rec) == expect, "%s changed a match",
                   what);
        filter_free(g);
    } else {
        /* only the depth limit may refuse a wrapped valid filter */
        FUZZ_CHECK(strstr(err.message, "deep") || strstr(err.message, "depth"),
                   "%s refused: %s", what, err.message);
    }
    json_decref(wrapped);
    (void)f;
}

static void check_record(const filter *f, const json_t *where,
                         const json_t *rec)
{
    bool m = filter_match_object(f, rec);
    if (filter_is_empty(f))
        FUZZ_CHECK(m, "an empty filter refused a record");
    if (where) {
        check_wrapped(f, json_pack("{s:[O]}", "$and", where), rec, m, "$and");
        check_wrapped(f, json_pack("{s:[O]}", "$or", where), rec, m, "$or");
        check_wrapped(f, json_pack("{s:[O,O]}", "$or", where, where), rec, m,
                      "$or twice");
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)rec, key, value) {
        if (filter_references(f, key))
            continue;
        json_t *less = json_deep_copy(rec);
        FUZZ_CHECK(less, "out of memory");
        json_object_del(less, key);
        FUZZ_CHECK(filter_match_object(f, less) == m,
                   "field '%s' is not referenced but changes the match", key);
        json_decref(less);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t flen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(flen + 1);
    FUZZ_CHECK(text, "out of memory");
    memcpy(text, data, flen);
    text[flen] = '\0';

    filter *f = NULL;
    lode_error err = {0};
    int rc = filter_parse(text, &f, &err);
    json_t *where = flen ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (where) {
        filter *g = NULL;
        lode_error gerr = {0};
        int grc = filter_parse_json(where, &g, &gerr);
        FUZZ_CHECK(grc == rc, "filter_parse %d but filter_parse_json %d", rc,
                   grc);
        filter_free(g);
    }
    if (rc) {
        FUZZ_CHECK(f == NULL && err.message[0], "failure without a message");
        json_decref(where);
        free(text);
        return 0;
    }
    FUZZ_CHECK(f != NULL, "success without a filter");

    json_t *rec = NULL;
    if (nul)
        rec = json_loadb((const char *)nul + 1, size - flen - 1, 0, NULL);
    if (json_is_object(rec)) {
        check_record(f, where, rec);
    } else {
        for (size_t i = 0; i < N_FIXED; i++) {
            json_t *r = json_loads(fixed_records[i], 0, NULL);
            FUZZ_CHECK(r, "fixed record %zu", i);
            check_record(f, where, r);
            json_decref(r);
        }
    }
    json_decref(rec);
    json_decref(where);
    filter_free(f);
    free(text);
    return 0;
}
