/* search_json.c - the retriever fields of a search result in JSON (see
 * search_json.h).  Scores are written as doubles from the floats the
 * store computed; nothing here ranks or rounds. */
#include "search_json.h"

static json_t *ranked_at(int rank, float score)
{
    return json_pack("{s:i,s:f}", "rank", rank, "score", (double)score);
}

json_t *search_json_add_ranking(json_t *obj, const store_result *r)
{
    if (!obj)
        return NULL;
    json_t *by = json_object();
    if (r->vector_rank)
        json_object_set_new(by, "vector", ranked_at(r->vector_rank, r->similarity));
    if (r->keyword_rank)
        json_object_set_new(by, "keyword", ranked_at(r->keyword_rank, r->keyword_score));
    json_object_set_new(obj, "retrievers", by);
    if (r->has_similarity)
        json_object_set_new(obj, "similarity", json_real((double)r->similarity));
    return obj;
}
