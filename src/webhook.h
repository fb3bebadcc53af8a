/* webhook.h - form webhooks: POST /webhook/tally stores each Tally form
 * submission as a document and answers with the most similar earlier
 * submissions and, optionally, matches from a catalog collection.
 *
 * The configuration is one JSON file (--webhooks FILE, $LODE_WEBHOOKS):
 *
 *   {"tally": {"<formId>": {
 *       "secret": "...",            signing secret: Tally-Signature is
 *                                   checked when set (else the request
 *                                   needs the API key, as any write)
 *       "embed_fields": [...],      labels or keys embedded (default all)
 *       "filter_fields": [...],     labels or keys whose answers filter the
 *                                   catalog by equality; or an object
 *                                   {"field": "catalog metadata key"}
 *       "catalog": "collection",    searched with the submission's text
 *       "k": 5}}}                   results per list (default 5)
 *
 * A form absent from the file is accepted with the defaults, behind the
 * API key.  Submissions go to collection "tally-<formId>" with the
 * event id as external id, so a redelivered event is found and
 * acknowledged ("duplicate": true) without being stored twice.
 *
 * The parsed file is held as a jansson tree that is only read (no
 * reference counts change) by the HTTP threads after start-up.
 */
#ifndef LODE_WEBHOOK_H
#define LODE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

typedef struct webhook_config webhook_config;

/* Read and validate the configuration file.  LODE_EFORMAT with a message
 * naming the problem when it is not of the shape above. */
int webhook_config_load(const char *path, webhook_config **out,
                        lode_error *err);
void webhook_config_free(webhook_config *c);
/* The settings object of a Tally form, or NULL (c may be NULL). */
json_t *webhook_tally_form(const webhook_config *c, const char *form_id);

/* Is `signature` base64(HMAC-SHA256(body, secret))?  Constant time in the
 * signature's content; a NULL signature is false. */
bool webhook_signature_ok(const char *body, size_t len, const char *secret,
                          const char *signature);

/* A Tally submission's answers as text and metadata.  `data` is the
 * payload's "data" object; embed_fields (array of labels or keys, or
 * NULL for all) picks the lines of the text.  Text: one "label: value"
 * line per answered field, option ids replaced by their text, arrays
 * joined with ", ".  Metadata: {label (or key): value} for every answered
 * field, a one-element array unwrapped, a longer one as the joined text.
 * *text is malloc'd; *metadata is a new reference.  LODE_EINVAL with a
 * message when data is malformed. */
int webhook_tally_answers(json_t *data, json_t *embed_fields, char **text,
                          json_t **metadata, lode_error *err);

#endif
