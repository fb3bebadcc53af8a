/* search_json.h - how a search result says which retriever found it, in
 * JSON: the part of a result's object that `lode search`, POST /search
 * and the chat's sources share.
 *
 *   "retrievers": {"vector": {"rank": 3, "score": 0.61},
 *                  "keyword": {"rank": 1, "score": 7.9}}
 *   "similarity": 0.61
 *
 * A retriever appears only when the result was among its candidates (rank
 * from 1); its score is the similarity for the vector side and BM25 for
 * the keyword side.  "similarity" (the vector score, whether or not the
 * vector side ranked it) appears whenever the query had a vector.
 */
#ifndef LODE_SEARCH_JSON_H
#define LODE_SEARCH_JSON_H

#include <jansson.h>

#include "store.h"

/* Set "retrievers" and, when known, "similarity" on obj.  Returns obj. */
json_t *search_json_add_ranking(json_t *obj, const store_result *r);

#endif
