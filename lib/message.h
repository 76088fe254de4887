/* SPDX-License-Identifier: MIT */
/*
 * libpartreg's view of the JSON it sends and receives: a command body made
 * ready to send, and the correlation of an MQTT 3.1.1 reply. These read the
 * agent's own messages or the caller's body, not untrusted commands, so they
 * use json-c's ordinary parser, not the agent's strict one.
 */
#ifndef PR_LIB_MESSAGE_H
#define PR_LIB_MESSAGE_H

#include <stddef.h>

#include <partreg/protocol.h>

struct json_object;

/* Parse len bytes as a JSON object; NULL if they are not one. Caller
 * releases with json_object_put. */
struct json_object *pr__json_object_parse(const char *text, size_t len);

/*
 * A command body ready to send: body (JSON object text, NULL = {}) with
 * request_id added when it has none (request_id_if_missing), and, for MQTT
 * 3.1.1, reply_to and correlation_id set (NULL = leave out). On success *out
 * is heap text (free()) and request_id gets the body's request_id. Returns
 * 0 or PR_EJSON (body not a JSON object, or its request_id not a string).
 */
int pr__body_prepare(const char *body, const char *request_id_if_missing, const char *reply_to,
    const char *correlation_id, char **out, char request_id[PR_ID_MAX + 1]);
/* The correlation_id field of a reply (MQTT 3.1.1); 0 or PR_ENOTFOUND. */
int pr__reply_correlation(const char *reply, size_t len, char out[PR_ID_MAX + 1]);

#endif
