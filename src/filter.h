/* filter.h - Chroma-style metadata filters ("where" clauses).
 *
 * A filter is parsed once from JSON and then matched against many records.
 * The vocabulary is Chroma's:
 *   {"field": value}                         implicit $eq
 *   {"field": {"$eq"|"$ne": v}}              v a string, number or bool
 *   {"field": {"$gt"|"$gte"|"$lt"|"$lte": n}} n a number
 *   {"field": {"$in"|"$nin": [v, ...]}}      non-empty, all of one type
 *   {"$and": [where, ...]}, {"$or": [where, ...]}, nested freely.
 * Extensions (lenient where Chroma would refuse): an object with several
 * keys, and a field with several operators, mean the $and of them; {} and
 * an empty filter text match everything.
 *
 * Semantics, fixed here so every caller agrees:
 *   - Types are strict: a string never equals a number, true never equals 1.
 *     Numbers compare by value (1 == 1.0).
 *   - A record that lacks the field (or holds null, an array or an object)
 *     matches none of $eq, $gt, $gte, $lt, $lte, $in, and matches $ne and
 *     $nin - as Chroma does since 0.5.12 ("not equal" includes "absent").
 *   - $gt/$gte/$lt/$lte only match number values.
 * Every type mismatch in the filter itself ($gt with a string, $in with a
 * non-array, an unknown operator, null) is refused at parse time with
 * LODE_EINVAL and a message naming the field and the problem.
 *
 * Records are reached through a lookup callback, so the store can present a
 * chunk as its document's metadata plus chunk-level fields without building
 * a merged JSON object per chunk.
 */
#ifndef LODE_FILTER_H
#define LODE_FILTER_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

typedef struct filter filter;

/* Parse `where` (JSON text; NULL or "" mean "match all") into *out, which
 * the caller frees with filter_free().  On error *out is NULL. */
int filter_parse(const char *where_json, filter **out, lode_error *err);
/* Same, from an already parsed JSON value (not retained). */
int filter_parse_json(const json_t *where, filter **out, lode_error *err);
void filter_free(filter *f);

/* Return the value of `field` in the record, or NULL when absent.  The
 * value must stay valid until the callback is called again or the match
 * returns. */
typedef const json_t *(*filter_lookup_fn)(void *ctx, const char *field);

/* Does the record match?  A NULL filter matches everything. */
bool filter_match(const filter *f, filter_lookup_fn lookup, void *ctx);
/* Convenience: match against a JSON object (NULL = empty record). */
bool filter_match_object(const filter *f, const json_t *metadata);

/* Does the filter mention `field` anywhere?  Lets callers skip work for
 * fields the filter cannot see. */
bool filter_references(const filter *f, const char *field);
/* True when the filter matches every record (NULL, {} ). */
bool filter_is_empty(const filter *f);

#endif
