/* SPDX-License-Identifier: MIT */
/*
 * libpartreg's view of the JSON it sends and receives: a command body made
 * ready to send, and the ids that tie a reply to its request. These read the
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
/* The string member key of o (NULL is fine) into out (cap bytes, cut to
 * fit); "" when absent or not a string. */
void pr__json_str_field(struct json_object *o, const char *key, char *out, size_t cap);

/*
 * A command body ready to send: body (JSON object text, NULL = {}) with
 * request_id added when it has none (request_id_if_missing), and, for MQTT
 * 3.1.1, reply_to and correlation_id set (NULL = leave out). On success *out
 * is heap text (free()) and request_id gets the body's request_id. Returns
 * 0, PR_EJSON (body not a JSON object, or its request_id not a string) or
 * PR_EFIELD (its request_id not 1..PR_ID_MAX printable ASCII, which the
 * agent refuses in a reply that cannot name it).
 */
int pr__body_prepare(const char *body, const char *request_id_if_missing, const char *reply_to,
    const char *correlation_id, char **out, char request_id[PR_ID_MAX + 1]);
/*
 * What ties a reply to its request: its correlation_id (the body's, for
 * MQTT 3.1.1), its request_id and its error code, each "" when absent (or
 * not a string). Returns 0, or PR_EJSON when reply is not a JSON object
 * (then all three are "").
 */
int pr__reply_ids(const char *reply, size_t len, char correlation_id[PR_ID_MAX + 1],
    char request_id[PR_ID_MAX + 1], char code[32]);
/* Is reply (NUL-terminated) no outcome of the command: store_unavailable?
 * It says this delivery was not applied, or (details.in_doubt) that the
 * store lost its answer; either way a resend of the same request_id may
 * still be applied, by this agent or another. 1 or 0. */
int pr__reply_in_doubt(const char *reply);

#endif
