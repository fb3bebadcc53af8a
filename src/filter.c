/* filter.c - parse and evaluate Chroma-style "where" filters (see filter.h).
 *
 * The JSON is validated and compiled once into a small tree of nodes whose
 * operands are plain C values, so matching never touches the filter's JSON
 * again and never allocates.  All validation happens in the parser: once a
 * filter exists it can only answer true or false.
 */
#include "filter.h"
#include "jsonmem.h"

#include <stdlib.h>
#include <string.h>

typedef enum fop {
    FOP_AND, FOP_OR, FOP_EQ, FOP_NE, FOP_GT, FOP_GTE, FOP_LT, FOP_LTE,
    FOP_IN, FOP_NIN,
} fop;

typedef enum fval_type { FVAL_STRING, FVAL_NUMBER, FVAL_BOOL } fval_type;

typedef struct fval {
    fval_type type;
    double number;
    bool boolean;
    char *string;
} fval;

typedef struct fnode {
    fop op;
    char *field;            /* comparisons only */
    fval *values;           /* 1 for comparisons, n for $in/$nin */
    size_t n_values;
    struct fnode *kids;     /* $and/$or only */
    size_t n_kids;
} fnode;

struct filter {
    fnode root;             /* an $and with no kids matches everything */
};

#define MAX_DEPTH 64

static const struct { const char *name; fop op; } operators[] = {
    {"$eq", FOP_EQ}, {"$ne", FOP_NE}, {"$gt", FOP_GT}, {"$gte", FOP_GTE},
    {"$lt", FOP_LT}, {"$lte", FOP_LTE}, {"$in", FOP_IN}, {"$nin", FOP_NIN},
};

static void node_clear(fnode *n)
{
    free(n->field);
    for (size_t i = 0; i < n->n_values; i++)
        free(n->values[i].string);
    free(n->values);
    for (size_t i = 0; i < n->n_kids; i++)
        node_clear(&n->kids[i]);
    free(n->kids);
    memset(n, 0, sizeof *n);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* Convert a JSON scalar into an fval; refuse null, arrays and objects. */
static int value_from_json(const json_t *v, fval *out, const char *field,
                           const char *opname, lode_error *err)
{
    memset(out, 0, sizeof *out);
    if (json_is_string(v)) {
        out->type = FVAL_STRING;
        out->string = strdup(json_string_value(v));
        if (!out->string)
            return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
        return 0;
    }
    if (json_is_number(v)) {
        out->type = FVAL_NUMBER;
        out->number = json_number_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        out->type = FVAL_BOOL;
        out->boolean = json_is_true(v);
        return 0;
    }
    return lode_error_set(err, LODE_EINVAL,
                          "filter on field \"%s\": %s expects a string, number "
                          "or boolean, not %s", field, opname, json_type_name(v));
}

static int parse_where(const json_t *where, fnode *out, int depth, lode_error *err);

/* {"$and": [...]} or {"$or": [...]} */
static int parse_logical(const char *key, const json_t *list, fnode *out,
                         int depth, lode_error *err)
{
    out->op = strcmp(key, "$and") == 0 ? FOP_AND : FOP_OR;
    if (!json_is_array(list))
        return lode_error_set(err, LODE_EINVAL, "filter: %s expects a list of "
                              "filters, not %s", key, json_type_name(list));
    size_t n = json_array_size(list);
    if (n == 0)
        return lode_error_set(err, LODE_EINVAL, "filter: %s needs at least one "
                              "filter in its list", key);
    out->kids = calloc(n, sizeof *out->kids);
    if (!out->kids)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
    for (size_t i = 0; i < n; i++) {
        int rc = parse_where(json_array_get(list, i), &out->kids[i], depth + 1, err);
        out->n_kids = i + 1;
        if (rc)
            return rc;
    }
    return 0;
}

/* One operator applied to a field: {"$gt": 3}, {"$in": [..]}, ... */
static int parse_comparison(const char *field, const char *opname,
                            const json_t *operand, fnode *out, lode_error *err)
{
    size_t i;
    for (i = 0; i < sizeof operators / sizeof operators[0]; i++)
        if (strcmp(operators[i].name, opname) == 0)
            break;
    if (i == sizeof operators / sizeof operators[0])
        return lode_error_set(err, LODE_EINVAL, "filter on field \"%s\": unknown "
                              "operator \"%s\" (expected $eq, $ne, $gt, $gte, "
                              "$lt, $lte, $in or $nin)", field, opname);
    out->op = operators[i].op;
    out->field = strdup(field);
    if (!out->field)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");

    if (out->op == FOP_IN || out->op == FOP_NIN) {
        if (!json_is_array(operand))
            return lode_error_set(err, LODE_EINVAL, "filter on field \"%s\": %s "
                                  "expects a list of values, not %s", field,
                                  opname, json_type_name(operand));
        size_t n = json_array_size(operand);
        if (n == 0)
            return lode_error_set(err, LODE_EINVAL, "filter on field \"%s\": %s "
                                  "needs at least one value", field, opname);
        out->values = calloc(n, sizeof *out->values);
        if (!out->values)
            return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
        for (size_t j = 0; j < n; j++) {
            int rc = value_from_json(json_array_get(operand, j), &out->values[j],
                                     field, opname, err);
            if (rc)
                return rc;
            out->n_values = j + 1;
            if (out->values[j].type != out->values[0].type)
                return lode_error_set(err, LODE_EINVAL, "filter on field \"%s\": "
                                      "the values of %s must all be of one type "
                                      "(all strings, all numbers or all booleans)",
                                      field, opname);
        }
        return 0;
    }

    out->values = calloc(1, sizeof *out->values);
    if (!out->values)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
    int rc = value_from_json(operand, &out->values[0], field, opname, err);
    if (rc)
        return rc;
    out->n_values = 1;
    if (out->op >= FOP_GT && out->op <= FOP_LTE &&
        out->values[0].type != FVAL_NUMBER)
        return lode_error_set(err, LODE_EINVAL, "filter on field \"%s\": %s "
                              "compares numbers, but was given %s", field,
                              opname, json_type_name(operand));
    return 0;
}

/* "field": value-or-operator-object */
static int parse_field(const char *field, const json_t *spec, fnode *out,
                       lode_error *err)
{
    if (field[0] == '\0')
        return lode_error_set(err, LODE_EINVAL, "filter: a field name is empty");
    if (!json_is_object(spec))
        return parse_comparison(field, "$eq", spec, out, err);
    size_t n = json_object_size(spec);
    if (n == 0)
        return lode_error_set(err, LODE_EINVAL, "filter on field \"%s\": the "
                              "operator object is empty", field);
    if (n == 1) {
        const char *opname = NULL;
        json_t *operand = NULL;
        json_object_foreach((json_t *)spec, opname, operand)
            return parse_comparison(field, opname, operand, out, err);
    }
    /* Several operators on one field: their conjunction. */
    out->op = FOP_AND;
    out->kids = calloc(n, sizeof *out->kids);
    if (!out->kids)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
    const char *opname;
    json_t *operand;
    json_object_foreach((json_t *)spec, opname, operand) {
        int rc = parse_comparison(field, opname, operand, &out->kids[out->n_kids++], err);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_entry(const char *key, const json_t *value, fnode *out,
                       int depth, lode_error *err)
{
    if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0)
        return parse_logical(key, value, out, depth, err);
    if (key[0] == '$')
        return lode_error_set(err, LODE_EINVAL, "filter: unknown operator \"%s\" "
                              "at the top of a filter (expected $and, $or or a "
                              "field name)", key);
    return parse_field(key, value, out, err);
}

static int parse_where(const json_t *where, fnode *out, int depth, lode_error *err)
{
    if (depth > MAX_DEPTH)
        return lode_error_set(err, LODE_ELIMIT, "filter: nested more than %d "
                              "levels deep", MAX_DEPTH);
    if (!json_is_object(where))
        return lode_error_set(err, LODE_EINVAL, "filter: expected an object such "
                              "as {\"field\": value}, not %s", json_type_name(where));
    size_t n = json_object_size(where);
    if (n == 1) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)where, key, value)
            return parse_entry(key, value, out, depth, err);
    }
    /* {} matches all; several keys are their conjunction. */
    out->op = FOP_AND;
    if (n == 0)
        return 0;
    out->kids = calloc(n, sizeof *out->kids);
    if (!out->kids)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)where, key, value) {
        int rc = parse_entry(key, value, &out->kids[out->n_kids++], depth, err);
        if (rc)
            return rc;
    }
    return 0;
}

int filter_parse_json(const json_t *where, filter **out, lode_error *err)
{
    *out = NULL;
    filter *f = calloc(1, sizeof *f);
    if (!f)
        return lode_error_set(err, LODE_ENOMEM, "out of memory parsing a filter");
    f->root.op = FOP_AND;
    if (where) {
        int rc = parse_where(where, &f->root, 0, err);
        if (rc) {
            filter_free(f);
            return rc;
        }
    }
    *out = f;
    return 0;
}

int filter_parse(const char *where_json, filter **out, lode_error *err)
{
    *out = NULL;
    if (!where_json || !*where_json)
        return filter_parse_json(NULL, out, err);
    json_error_t jerr;
    unsigned long failed = jsonmem_failures();
    json_t *where = json_loads(where_json, JSON_DECODE_ANY, &jerr);
    if (!where && jsonmem_failures() != failed)
        return lode_error_set(err, LODE_ENOMEM, "out of memory reading a filter");
    if (!where)
        return lode_error_set(err, LODE_EINVAL, "filter is not valid JSON: %s "
                              "(line %d, column %d)", jerr.text, jerr.line,
                              jerr.column);
    int rc = filter_parse_json(where, out, err);
    json_decref(where);
    return rc;
}

void filter_free(filter *f)
{
    if (!f)
        return;
    node_clear(&f->root);
    free(f);
}

/* Equality of a record value with an operand; strict about types. */
static bool value_equals(const json_t *v, const fval *operand)
{
    switch (operand->type) {
    case FVAL_STRING:
        return json_is_string(v) && strcmp(json_string_value(v), operand->string) == 0;
    case FVAL_NUMBER:
        return json_is_number(v) && json_number_value(v) == operand->number;
    case FVAL_BOOL:
        return json_is_boolean(v) && json_is_true(v) == operand->boolean;
    }
    return false;
}

static bool node_match(const fnode *n, filter_lookup_fn lookup, void *ctx)
{
    switch (n->op) {
    case FOP_AND:
        for (size_t i = 0; i < n->n_kids; i++)
            if (!node_match(&n->kids[i], lookup, ctx))
                return false;
        return true;
    case FOP_OR:
        for (size_t i = 0; i < n->n_kids; i++)
            if (node_match(&n->kids[i], lookup, ctx))
                return true;
        return false;
    default:
        break;
    }
    const json_t *v = lookup(ctx, n->field);
    switch (n->op) {
    case FOP_EQ: return v && value_equals(v, &n->values[0]);
    case FOP_NE: return !v || !value_equals(v, &n->values[0]);
    case FOP_IN:
    case FOP_NIN: {
        bool found = false;
        for (size_t i = 0; v && i < n->n_values && !found; i++)
            found = value_equals(v, &n->values[i]);
        return n->op == FOP_IN ? found : !found;
    }
    default:
        break;
    }
    if (!v || !json_is_number(v))
        return false;
    double x = json_number_value(v), y = n->values[0].number;
    switch (n->op) {
    case FOP_GT: return x > y;
    case FOP_GTE: return x >= y;
    case FOP_LT: return x < y;
    case FOP_LTE: return x <= y;
    default: return false;
    }
}

bool filter_match(const filter *f, filter_lookup_fn lookup, void *ctx)
{
    return !f || node_match(&f->root, lookup, ctx);
}

static const json_t *object_lookup(void *ctx, const char *field)
{
    return ctx ? json_object_get((const json_t *)ctx, field) : NULL;
}

bool filter_match_object(const filter *f, const json_t *metadata)
{
    return filter_match(f, object_lookup,
                        json_is_object(metadata) ? (void *)metadata : NULL);
}

static bool node_references(const fnode *n, const char *field)
{
    if (n->field && strcmp(n->field, field) == 0)
        return true;
    for (size_t i = 0; i < n->n_kids; i++)
        if (node_references(&n->kids[i], field))
            return true;
    return false;
}

bool filter_references(const filter *f, const char *field)
{
    return f && node_references(&f->root, field);
}

bool filter_is_empty(const filter *f)
{
    return !f || (f->root.op == FOP_AND && f->root.n_kids == 0);
}
