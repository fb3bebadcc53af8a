/* webhook.h - webhooks that store what they receive as a document and
 * answer with the most similar earlier deliveries and, optionally,
 * matches from a catalog collection:
 *
 *   POST /webhook/tally    Tally form submissions
 *   POST /webhook/{name}   any JSON object, the text picked by JSON
 *                          pointers (RFC 6901, jsonptr.h)
 *
 * and that may forward their answer to another service (forward.h).
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
 *       "k": 5,                     results per list (default 5)
 *       ...forwarding}},            see below
 *    "generic": {"<name>": {
 *       "text": ["/ptr", ...],      required: the values embedded, one per
 *                                   line (a string, a number, or an array
 *                                   of them joined with ", ")
 *       "metadata": {"key": "/ptr"},  stored with the document (booleans
 *                                   allowed too)
 *       "id": "/ptr",               idempotency id (a string or integer);
 *                                   default: SHA-256 of the raw body (hex)
 *       "title": "/ptr",            the document's title (default "<name>
 *                                   <id>")
 *       "secret": "...",            HMAC-SHA256 of the raw body, sent in
 *       "signature_header": "X-Signature",   this header as hex or base64,
 *                                   optionally prefixed "sha256="
 *       "collection": "name",       default "webhook-<name>"
 *       "filter_fields": [...],     metadata keys, or {"metadata key":
 *                                   "catalog metadata key"}
 *       "catalog", "k",             as for Tally
 *       ...forwarding}},
 *    "forward_queue": 1000}        deliveries waiting or being forwarded
 *
 *   forwarding (optional, per form or webhook):
 *       "forward_url": "https://...",   POST the answer here
 *       "forward_headers": {"Name": "value"},
 *       "forward_timeout_ms": 10000,    per attempt (100 to 600000)
 *       "forward_retries": 4            after the first attempt (0 to 10)
 *
 * A Tally form absent from the file is accepted with the defaults, behind
 * the API key; a generic name absent from the file is 404.  Every pointer
 * must resolve, or the delivery is refused (400 naming the pointer).
 * Deliveries go to their collection with the event id as external id, so
 * a redelivered event is found and acknowledged ("duplicate": true)
 * without being stored, or forwarded, twice.
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
/* The settings object of generic webhook `name`, or NULL (c may be
 * NULL). */
json_t *webhook_generic(const webhook_config *c, const char *name);
/* Does any form or webhook forward its answers?  (c may be NULL.) */
bool webhook_config_forwards(const webhook_config *c);
/* The forwarding queue's capacity ("forward_queue"), 0 for the default. */
size_t webhook_config_forward_queue(const webhook_config *c);

/* Longest Tally form id or generic webhook name: [A-Za-z0-9._-]{1,100}. */
#define WEBHOOK_FORM_ID_MAX 100
bool webhook_name_ok(const char *name);

/* base64(HMAC-SHA256(body, secret)), as Tally signs (44 characters and a
 * NUL); false on failure. */
#define WEBHOOK_SIGNATURE_LEN 44
bool webhook_sign(const char *body, size_t len, const char *secret,
                  char out[WEBHOOK_SIGNATURE_LEN + 1]);
/* Is `signature` base64(HMAC-SHA256(body, secret))?  Constant time in the
 * signature's content; a NULL signature is false. */
bool webhook_signature_ok(const char *body, size_t len, const char *secret,
                          const char *signature);
/* The generic webhooks' rule: the same HMAC as hex (either case) or
 * base64, optionally prefixed "sha256=". */
bool webhook_signature_any_ok(const char *body, size_t len,
                              const char *secret, const char *signature);

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

/* ---- generic webhooks (webhook_generic.c) -------------------------------- */

/* A generic delivery's text and metadata per the webhook's settings
 * `hook` ("text", "metadata", see above).  *text is malloc'd, *metadata a
 * new reference (only the configured keys).  LODE_EINVAL with a message
 * naming the pointer when one does not resolve to a usable value, or when
 * there is no text at all. */
int webhook_generic_fields(json_t *hook, json_t *body, char **text,
                           json_t **metadata, lode_error *err);
/* A generic delivery's idempotency id (malloc'd): the value of the "id"
 * pointer as text, else the hex SHA-256 of the raw body.  LODE_EINVAL
 * naming the pointer when it does not resolve to a non-empty string or an
 * integer. */
int webhook_generic_id(json_t *hook, json_t *body, const char *raw,
                       size_t len, char **id, lode_error *err);
/* A generic delivery's title (malloc'd): the text of the "title" pointer,
 * as for "text", else "<name> <id>".  LODE_EINVAL naming the pointer when
 * it does not resolve to a usable value. */
int webhook_generic_title(json_t *hook, json_t *body, const char *name,
                          const char *id, char **title, lode_error *err);

#endif
