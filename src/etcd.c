/* SPDX-License-Identifier: MIT */
/*
 * The etcd v3 client (etcd.h): JSON over HTTP/1.1 to etcd's gRPC gateway,
 * with libcurl.
 *
 * Why the gateway and not gRPC: etcd ships no C client, and gRPC's C core
 * would bring a C++ toolchain and protobuf code generation into a C11
 * project for a dozen calls. The gateway is part of every etcd server, is
 * documented (api_grpc_gateway), and its JSON is proto3's mapping: bytes
 * are base64, 64-bit integers are strings, and fields holding their zero
 * value are left out ("succeeded": false and a PUT event's "type" never
 * appear), so every field read here is optional with zero as its default.
 *
 * One call = one POST, on a curl easy handle kept for the handle's life
 * (its connections are reused). The order of endpoints is a ring: a call
 * starts at the one that last answered, so after a failover the calls stay
 * on the member that works. What may be sent again is decided by whether
 * the request can have reached etcd (curl's pretransfer time): a write
 * that may have reached it is never sent twice (PR__ETCD_EINDOUBT).
 *
 * The watch is the one stream: its own thread, its own curl multi handle
 * (curl_multi_poll, so close can wake it with curl_multi_wakeup instead of
 * waiting out a poll interval), and a json_tokener kept across chunks,
 * because the gateway writes one JSON object per watch response and a
 * chunk boundary can fall anywhere in one.
 */
#include "etcd.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include <partreg/error.h>
#include "log.h"

#define ENDPOINTS_MAX   16
#define RESPONSE_MAX    (64u << 20) /* bytes of one answer; etcd's own limit is 2 MiB a request */
#define CONNECT_TIMEOUT 500
#define REQUEST_TIMEOUT 2000
#define WATCH_POLL_MS   1000

/* ---- Errors ---- */

static const char *const errmsgs[] = {
	"no etcd endpoint could be reached",
	"the etcd members reached have no leader (a minority, or an election)",
	"the etcd write's answer was lost: it may or may not have been applied",
	"the etcd revision was compacted",
	"the etcd revision is in the future",
	"no such etcd lease",
	"etcd authentication failed or permission denied",
	"etcd's space quota is exceeded",
	"etcd refused the request as invalid",
	"unexpected answer from etcd",
};

_Static_assert(sizeof errmsgs / sizeof errmsgs[0] == PR__ETCD_ERRLAST - PR__ETCD_ERRBASE + 1,
    "errmsgs must list every enum pr__etcd_err value in order");

const char *
pr__etcd_strerror(int err)
{
	if (err >= PR__ETCD_ERRBASE && err <= PR__ETCD_ERRLAST) {
		return errmsgs[err - PR__ETCD_ERRBASE];
	}
	return pr_strerror(err);
}

/* ---- Base64 ---- */

int
pr__etcd_b64_encode(const void *data, size_t len, char **out)
{
	size_t n = 4 * ((len + 2) / 3);
	char *s;

	*out = NULL;
	if (len > (size_t)INT32_MAX / 2) {
		return -EINVAL;
	}
	if ((s = malloc(n + 1)) == NULL) {
		return -ENOMEM;
	}
	EVP_EncodeBlock((unsigned char *)s, data, (int)len);
	s[n] = '\0';
	*out = s;
	return 0;
}

int
pr__etcd_b64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *p;
	size_t pad = 0;
	int n;

	*out = NULL;
	*out_len = 0;
	if (len % 4 != 0 || len > (size_t)INT32_MAX / 2) {
		return PR__ETCD_EPROTO;
	}
	/* EVP_DecodeBlock skips blanks around its input and takes '=' for
	 * zero bits; proto3 JSON writes neither blanks nor stray '=', so
	 * only the alphabet and up to two '=' at the end pass. */
	if (len > 0 && s[len - 1] == '=') {
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	}
	for (size_t i = 0; i < len - pad; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/') {
			return PR__ETCD_EPROTO;
		}
	}
	if ((p = malloc(len / 4 * 3 + 1)) == NULL) {
		return -ENOMEM;
	}
	n = len == 0 ? 0 : EVP_DecodeBlock(p, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(p);
		return PR__ETCD_EPROTO;
	}
	n -= (int)pad;
	p[n] = '\0';
	*out = p;
	*out_len = (size_t)n;
	return 0;
}

/* ---- Key ranges ---- */

void
pr__etcd_prefix_end(const void *key, size_t key_len, uint8_t *out, size_t *out_len)
{
	const uint8_t *k = key;

	for (size_t i = key_len; i > 0; i--) {
		if (k[i - 1] != 0xff) {
			memcpy(out, k, i - 1);
			out[i - 1] = (uint8_t)(k[i - 1] + 1);
			*out_len = i;
			return;
		}
	}
	out[0] = 0;
	*out_len = 1;
}

/* ---- Requests as JSON ---- */

static int
add(json_object *o, const char *name, json_object *v)
{
	if (v == NULL) {
		return -ENOMEM;
	}
	if (json_object_object_add(o, name, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int
add_bytes(json_object *o, const char *name, const void *p, size_t n)
{
	char *s;
	int rc = pr__etcd_b64_encode(p, n, &s);

	if (rc != 0) {
		return rc;
	}
	rc = add(o, name, json_object_new_string(s));
	free(s);
	return rc;
}

/* int64 as proto3 JSON writes it: a decimal string. Zero is left out. */
static int
add_i64(json_object *o, const char *name, int64_t v)
{
	char s[24];

	if (v == 0) {
		return 0;
	}
	snprintf(s, sizeof s, "%" PRId64, v);
	return add(o, name, json_object_new_string(s));
}

static int
add_true(json_object *o, const char *name, int v)
{
	return v ? add(o, name, json_object_new_boolean(1)) : 0;
}

static int
range_end_ok(const void *end, size_t end_len)
{
	return end == NULL || end_len > 0;
}

static int
op_obj(const struct pr_etcd_op *op, json_object **out)
{
	json_object *o;
	int rc;

	*out = NULL;
	if (op->key == NULL || op->key_len == 0 || !range_end_ok(op->range_end, op->range_end_len)
	    || (op->value == NULL && op->value_len > 0)) {
		return -EINVAL;
	}
	if ((o = json_object_new_object()) == NULL) {
		return -ENOMEM;
	}
	rc = add_bytes(o, "key", op->key, op->key_len);
	switch (op->type) {
	case PR_ETCD_RANGE:
		if (rc == 0 && op->range_end != NULL) {
			rc = add_bytes(o, "range_end", op->range_end, op->range_end_len);
		}
		if (rc == 0 && (op->revision < 0 || op->limit < 0)) {
			rc = -EINVAL;
		}
		if (rc == 0) {
			rc = add_i64(o, "limit", op->limit);
		}
		if (rc == 0) {
			rc = add_i64(o, "revision", op->revision);
		}
		if (rc == 0) {
			rc = add_true(o, "keys_only", op->keys_only);
		}
		if (rc == 0) {
			rc = add_true(o, "count_only", op->count_only);
		}
		break;
	case PR_ETCD_PUT:
		if (rc == 0 && op->range_end != NULL) {
			rc = -EINVAL;
		}
		if (rc == 0) {
			rc = add_bytes(
			    o, "value", op->value != NULL ? op->value : "", op->value_len);
		}
		if (rc == 0) {
			rc = add_i64(o, "lease", op->lease);
		}
		if (rc == 0) {
			rc = add_true(o, "prev_kv", op->prev_kv);
		}
		break;
	case PR_ETCD_DELETE:
		if (rc == 0 && op->range_end != NULL) {
			rc = add_bytes(o, "range_end", op->range_end, op->range_end_len);
		}
		if (rc == 0) {
			rc = add_true(o, "prev_kv", op->prev_kv);
		}
		break;
	default:
		rc = -EINVAL;
	}
	if (rc != 0) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

static int
to_string(json_object *o, char **json)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	*json = s != NULL ? strdup(s) : NULL;
	json_object_put(o);
	return *json != NULL ? 0 : -ENOMEM;
}

int
pr__etcd_op_json(const struct pr_etcd_op *op, char **json)
{
	json_object *o;
	int rc;

	*json = NULL;
	if ((rc = op_obj(op, &o)) != 0) {
		return rc;
	}
	return to_string(o, json);
}

static const char *const target_names[] = { "VERSION", "CREATE", "MOD", "VALUE", "LEASE" };
static const char *const target_fields[]
    = { "version", "create_revision", "mod_revision", "value", "lease" };
static const char *const result_names[] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
static const char *const request_names[]
    = { "request_range", "request_put", "request_delete_range" };
static const char *const response_names[]
    = { "response_range", "response_put", "response_delete_range" };

static int
cmp_obj(const struct pr_etcd_cmp *c, json_object **out)
{
	json_object *o;
	int rc;

	*out = NULL;
	if (c->key == NULL || c->key_len == 0 || !range_end_ok(c->range_end, c->range_end_len)
	    || (unsigned)c->target > PR_ETCD_LEASE || (unsigned)c->result > PR_ETCD_NOT_EQUAL
	    || (c->target == PR_ETCD_VALUE && c->value == NULL && c->value_len > 0)) {
		return -EINVAL;
	}
	if ((o = json_object_new_object()) == NULL) {
		return -ENOMEM;
	}
	rc = add_bytes(o, "key", c->key, c->key_len);
	if (rc == 0 && c->range_end != NULL) {
		rc = add_bytes(o, "range_end", c->range_end, c->range_end_len);
	}
	/* The enums are sent by name: EQUAL (0) and VERSION (0) would be
	 * legal to leave out, but a name is easier to read in a capture. */
	if (rc == 0) {
		rc = add(o, "target", json_object_new_string(target_names[c->target]));
	}
	if (rc == 0) {
		rc = add(o, "result", json_object_new_string(result_names[c->result]));
	}
	if (rc == 0 && c->target == PR_ETCD_VALUE) {
		rc = add_bytes(o, "value", c->value != NULL ? c->value : "", c->value_len);
	} else if (rc == 0) {
		/* A zero is written out here: the target_union field must be
		 * present for etcd to know which one is compared. */
		char s[24];

		snprintf(s, sizeof s, "%" PRId64, c->number);
		rc = add(o, target_fields[c->target], json_object_new_string(s));
	}
	if (rc != 0) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

static int
ops_array(const struct pr_etcd_op *ops, size_t n, json_object **out)
{
	json_object *a = json_object_new_array();
	int rc = a != NULL ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_object *req, *wrap;

		if ((rc = op_obj(&ops[i], &req)) != 0) {
			break;
		}
		if ((wrap = json_object_new_object()) == NULL) {
			json_object_put(req);
			rc = -ENOMEM;
			break;
		}
		if ((rc = add(wrap, request_names[ops[i].type], req)) == 0) {
			rc = json_object_array_add(a, wrap) == 0 ? 0 : -ENOMEM;
		}
		if (rc != 0) {
			json_object_put(wrap);
		}
	}
	if (rc != 0) {
		json_object_put(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

int
pr__etcd_txn_json(const struct pr_etcd_txn *txn, char **json)
{
	json_object *o, *a = NULL;
	int rc;

	*json = NULL;
	if ((txn->n_cmp > 0 && txn->cmp == NULL) || (txn->n_success > 0 && txn->success == NULL)
	    || (txn->n_failure > 0 && txn->failure == NULL)) {
		return -EINVAL;
	}
	if ((o = json_object_new_object()) == NULL) {
		return -ENOMEM;
	}
	rc = (a = json_object_new_array()) != NULL ? add(o, "compare", a) : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < txn->n_cmp; i++) {
		json_object *c;

		if ((rc = cmp_obj(&txn->cmp[i], &c)) == 0 && json_object_array_add(a, c) != 0) {
			json_object_put(c);
			rc = -ENOMEM;
		}
	}
	if (rc == 0 && (rc = ops_array(txn->success, txn->n_success, &a)) == 0) {
		rc = add(o, "success", a);
	}
	if (rc == 0 && (rc = ops_array(txn->failure, txn->n_failure, &a)) == 0) {
		rc = add(o, "failure", a);
	}
	if (rc != 0) {
		json_object_put(o);
		return rc;
	}
	return to_string(o, json);
}

/* ---- Answers from JSON ---- */

/* An optional int64: a string (proto3) or a number; absent = 0. */
static int
get_i64(json_object *o, const char *name, int64_t *v)
{
	json_object *f;
	const char *s;
	char *end;
	long long n;

	*v = 0;
	if (o == NULL || !json_object_object_get_ex(o, name, &f) || f == NULL) {
		return 0;
	}
	if (json_object_is_type(f, json_type_int)) {
		*v = json_object_get_int64(f);
		return 0;
	}
	if (!json_object_is_type(f, json_type_string)) {
		return PR__ETCD_EPROTO;
	}
	s = json_object_get_string(f);
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		return PR__ETCD_EPROTO;
	}
	*v = n;
	return 0;
}

/* An optional uint64 (member ids use all 64 bits). */
static int
get_u64(json_object *o, const char *name, uint64_t *v)
{
	json_object *f;
	const char *s;
	char *end;
	unsigned long long n;

	*v = 0;
	if (o == NULL || !json_object_object_get_ex(o, name, &f) || f == NULL) {
		return 0;
	}
	if (json_object_is_type(f, json_type_int)) {
		*v = json_object_get_uint64(f);
		return 0;
	}
	if (!json_object_is_type(f, json_type_string)) {
		return PR__ETCD_EPROTO;
	}
	s = json_object_get_string(f);
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-') {
		return PR__ETCD_EPROTO;
	}
	*v = n;
	return 0;
}

static int
get_bool(json_object *o, const char *name)
{
	json_object *f;

	return o != NULL && json_object_object_get_ex(o, name, &f) && json_object_get_boolean(f);
}

static json_object *
get_obj(json_object *o, const char *name)
{
	json_object *f;

	if (o == NULL || !json_object_object_get_ex(o, name, &f)
	    || !json_object_is_type(f, json_type_object)) {
		return NULL;
	}
	return f;
}

/* Optional bytes: absent = empty (still a heap "" so users need no
 * NULL check). */
static int
get_bytes(json_object *o, const char *name, uint8_t **p, size_t *n)
{
	json_object *f;

	*p = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, name, &f) || f == NULL) {
		if ((*p = calloc(1, 1)) == NULL) {
			return -ENOMEM;
		}
		return 0;
	}
	if (!json_object_is_type(f, json_type_string)) {
		return PR__ETCD_EPROTO;
	}
	return pr__etcd_b64_decode(
	    json_object_get_string(f), (size_t)json_object_get_string_len(f), p, n);
}

static void
kv_release(struct pr_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof *kv);
}

static int
kv_parse(json_object *o, struct pr_etcd_kv *kv)
{
	int rc;

	memset(kv, 0, sizeof *kv);
	if (!json_object_is_type(o, json_type_object)) {
		return PR__ETCD_EPROTO;
	}
	if ((rc = get_bytes(o, "key", &kv->key, &kv->key_len)) == 0
	    && (rc = get_bytes(o, "value", &kv->value, &kv->value_len)) == 0
	    && (rc = get_i64(o, "create_revision", &kv->create_revision)) == 0
	    && (rc = get_i64(o, "mod_revision", &kv->mod_revision)) == 0
	    && (rc = get_i64(o, "version", &kv->version)) == 0) {
		rc = get_i64(o, "lease", &kv->lease);
	}
	if (rc != 0) {
		kv_release(kv);
	}
	return rc;
}

void
pr__etcd_res_release(struct pr_etcd_res *res)
{
	if (res == NULL) {
		return;
	}
	for (size_t i = 0; i < res->n_kvs; i++) {
		kv_release(&res->kvs[i]);
	}
	free(res->kvs);
	memset(res, 0, sizeof *res);
}

/* Append the key-values of array a (or of the single object one) to res. */
static int
kvs_parse(json_object *a, json_object *one, struct pr_etcd_res *res)
{
	size_t n = 0;

	if (a != NULL) {
		if (!json_object_is_type(a, json_type_array)) {
			return PR__ETCD_EPROTO;
		}
		n = json_object_array_length(a);
	} else if (one != NULL) {
		n = 1;
	}
	if (n == 0) {
		return 0;
	}
	if ((res->kvs = calloc(n, sizeof *res->kvs)) == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = kv_parse(a != NULL ? json_object_array_get_idx(a, i) : one, &res->kvs[i]);

		if (rc != 0) {
			return rc;
		}
		res->n_kvs++;
	}
	return 0;
}

/* One answer of type from o (a whole answer or one of a txn's). */
static int
res_from(enum pr_etcd_op_type type, json_object *o, struct pr_etcd_res *res)
{
	json_object *a = NULL;
	int rc;

	memset(res, 0, sizeof *res);
	res->type = type;
	if (!json_object_is_type(o, json_type_object)) {
		return PR__ETCD_EPROTO;
	}
	if ((rc = get_i64(get_obj(o, "header"), "revision", &res->revision)) != 0) {
		return rc;
	}
	switch (type) {
	case PR_ETCD_RANGE:
		json_object_object_get_ex(o, "kvs", &a);
		rc = kvs_parse(a, NULL, res);
		if (rc == 0) {
			rc = get_i64(o, "count", &res->count);
		}
		res->more = get_bool(o, "more");
		break;
	case PR_ETCD_PUT:
		rc = kvs_parse(NULL, get_obj(o, "prev_kv"), res);
		break;
	case PR_ETCD_DELETE:
		json_object_object_get_ex(o, "prev_kvs", &a);
		rc = kvs_parse(a, NULL, res);
		if (rc == 0) {
			rc = get_i64(o, "deleted", &res->count);
		}
		break;
	default:
		rc = -EINVAL;
	}
	if (rc != 0) {
		pr__etcd_res_release(res);
	}
	return rc;
}

static int
parse_body(const char *body, size_t len, json_object **out)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	*out = NULL;
	if (tok == NULL) {
		return -ENOMEM;
	}
	while (len > 0 && isspace((unsigned char)body[len - 1])) {
		len--; /* the streams' answers end with a newline */
	}
	o = body != NULL && len <= INT32_MAX ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
	if (o == NULL || json_tokener_get_parse_end(tok) != len
	    || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		json_tokener_free(tok);
		return PR__ETCD_EPROTO;
	}
	json_tokener_free(tok);
	*out = o;
	return 0;
}

int
pr__etcd_res_parse(enum pr_etcd_op_type type, const char *body, size_t len, struct pr_etcd_res *res)
{
	json_object *o;
	int rc;

	memset(res, 0, sizeof *res);
	if ((rc = parse_body(body, len, &o)) != 0) {
		return rc;
	}
	rc = res_from(type, o, res);
	json_object_put(o);
	return rc;
}

void
pr__etcd_txn_res_release(struct pr_etcd_txn_res *res)
{
	if (res == NULL) {
		return;
	}
	for (size_t i = 0; i < res->n_res; i++) {
		pr__etcd_res_release(&res->res[i]);
	}
	free(res->res);
	memset(res, 0, sizeof *res);
}

int
pr__etcd_txn_res_parse(const char *body, size_t len, struct pr_etcd_txn_res *res)
{
	json_object *o, *a = NULL;
	size_t n = 0;
	int rc;

	memset(res, 0, sizeof *res);
	if ((rc = parse_body(body, len, &o)) != 0) {
		return rc;
	}
	res->succeeded = get_bool(o, "succeeded");
	rc = get_i64(get_obj(o, "header"), "revision", &res->revision);
	if (rc == 0 && json_object_object_get_ex(o, "responses", &a) && a != NULL) {
		if (!json_object_is_type(a, json_type_array)) {
			rc = PR__ETCD_EPROTO;
		} else {
			n = json_object_array_length(a);
		}
	}
	if (rc == 0 && n > 0 && (res->res = calloc(n, sizeof *res->res)) == NULL) {
		rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_object *r = json_object_array_get_idx(a, i);
		size_t t;

		rc = PR__ETCD_EPROTO;
		for (t = 0; t < 3; t++) {
			json_object *inner = get_obj(r, response_names[t]);

			if (inner != NULL) {
				rc = res_from((enum pr_etcd_op_type)t, inner, &res->res[i]);
				break;
			}
		}
		if (rc == 0) {
			res->n_res++;
		}
	}
	json_object_put(o);
	if (rc != 0) {
		pr__etcd_txn_res_release(res);
	}
	return rc;
}

/* ---- Errors of answers ---- */

/* gRPC status codes (google.golang.org/grpc/codes). */
enum {
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

/* etcd's error messages (etcdserver/api/v3rpc/rpctypes/error.go), which
 * are stable, mapped first; the gRPC code decides the rest. The timeouts
 * come from a proposal that etcd may still commit, hence in doubt for a
 * write. */
static int
map_message(const char *msg, int code, int write, int *token_expired)
{
	static const struct {
		const char *text;
		int err;
	} rows[] = {
		{ "no leader", PR__ETCD_ENOLEADER },
		{ "not leader", PR__ETCD_ENOLEADER },
		{ "leader changed", PR__ETCD_ENOLEADER },
		{ "required revision has been compacted", PR__ETCD_ECOMPACTED },
		{ "required revision is a future revision", PR__ETCD_EFUTUREREV },
		{ "requested lease not found", PR__ETCD_ENOLEASE },
		{ "database space exceeded", PR__ETCD_ENOSPACE },
		{ "authentication failed", PR__ETCD_EAUTH },
		{ "permission denied", PR__ETCD_EAUTH },
		{ "user name is empty", PR__ETCD_EAUTH },
		{ "authentication is not enabled", PR__ETCD_EAUTH },
	};

	if (strstr(msg, "invalid auth token") != NULL
	    || strstr(msg, "revision of auth store is old") != NULL) {
		if (token_expired != NULL) {
			*token_expired = 1;
		}
		return PR__ETCD_EAUTH;
	}
	if (strstr(msg, "request timed out") != NULL || strstr(msg, "server stopped") != NULL) {
		return write ? PR__ETCD_EINDOUBT : -ETIMEDOUT;
	}
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (strstr(msg, rows[i].text) != NULL) {
			return rows[i].err;
		}
	}
	switch (code) {
	case GRPC_UNAVAILABLE:
		return PR__ETCD_EUNAVAIL;
	case GRPC_DEADLINE_EXCEEDED:
		return write ? PR__ETCD_EINDOUBT : -ETIMEDOUT;
	case GRPC_UNAUTHENTICATED:
	case GRPC_PERMISSION_DENIED:
		return PR__ETCD_EAUTH;
	case GRPC_RESOURCE_EXHAUSTED:
		return PR__ETCD_ENOSPACE;
	case GRPC_INVALID_ARGUMENT:
	case GRPC_FAILED_PRECONDITION:
	case GRPC_OUT_OF_RANGE:
	case GRPC_NOT_FOUND:
		return PR__ETCD_EREFUSED;
	default:
		return 0;
	}
}

/* The message and code of an error object: the unary form
 * {"error": "...", "code": N} or the stream form
 * {"error": {"grpc_code": N, "message": "..."}}. */
static int
error_of(json_object *o, int write, int *token_expired)
{
	json_object *e = NULL, *m = NULL, *c = NULL;
	const char *msg = "";
	int code = 0;

	json_object_object_get_ex(o, "error", &e);
	if (e != NULL && json_object_is_type(e, json_type_object)) {
		json_object_object_get_ex(e, "message", &m);
		json_object_object_get_ex(e, "grpc_code", &c);
	} else {
		m = e;
		json_object_object_get_ex(o, "code", &c);
	}
	if (m == NULL) {
		json_object_object_get_ex(o, "message", &m);
	}
	if (m != NULL && json_object_is_type(m, json_type_string)) {
		msg = json_object_get_string(m);
	}
	if (c != NULL && json_object_is_type(c, json_type_int)) {
		code = json_object_get_int(c);
	}
	return map_message(msg, code, write, token_expired);
}

int
pr__etcd_error(int http_status, const char *body, size_t len, int write, int *token_expired)
{
	json_object *o = NULL;
	int err = 0;

	if (token_expired != NULL) {
		*token_expired = 0;
	}
	if (body != NULL && parse_body(body, len, &o) == 0) {
		err = error_of(o, write, token_expired);
		json_object_put(o);
	}
	if (err != 0) {
		return err;
	}
	/* No etcd error in it: a proxy's page, or a gateway without etcd
	 * behind it. */
	if (http_status == 504) {
		return write ? PR__ETCD_EINDOUBT : -ETIMEDOUT;
	}
	if (http_status >= 500) {
		return PR__ETCD_EUNAVAIL;
	}
	if (http_status == 401 || http_status == 403) {
		return PR__ETCD_EAUTH;
	}
	return PR__ETCD_EPROTO;
}

/* ---- The handle ---- */

struct settings {
	char *urls[ENDPOINTS_MAX];
	size_t n;
	char *ca_file, *cert_file, *key_file;
	unsigned connect_ms, request_ms;
};

struct pr_etcd {
	struct settings set;
	size_t cur; /* the endpoint in use */
	char *user, *password;
	char *token; /* NULL = none yet */
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
};

struct buf {
	char *p;
	size_t len, cap;
	int too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
dup_opt(const char *s, int *rc)
{
	char *d;

	if (s == NULL) {
		return NULL;
	}
	if ((d = strdup(s)) == NULL) {
		*rc = -ENOMEM;
	}
	return d;
}

static void
settings_release(struct settings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->urls[i]);
	}
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
	memset(s, 0, sizeof *s);
}

static int
settings_copy(struct settings *dst, const struct settings *src)
{
	int rc = 0;

	memset(dst, 0, sizeof *dst);
	for (size_t i = 0; i < src->n; i++) {
		if ((dst->urls[i] = strdup(src->urls[i])) == NULL) {
			settings_release(dst);
			return -ENOMEM;
		}
		dst->n++;
	}
	dst->ca_file = dup_opt(src->ca_file, &rc);
	dst->cert_file = dup_opt(src->cert_file, &rc);
	dst->key_file = dup_opt(src->key_file, &rc);
	dst->connect_ms = src->connect_ms;
	dst->request_ms = src->request_ms;
	if (rc != 0) {
		settings_release(dst);
	}
	return rc;
}

/* Split "u1,u2" into s->urls: blanks around each trimmed, a trailing '/'
 * dropped, each http:// or https://. */
static int
parse_endpoints(const char *list, struct settings *s)
{
	const char *p = list;

	if (list == NULL) {
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		while (n > 0 && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		while (n > 0 && (isspace((unsigned char)p[n - 1]) || p[n - 1] == '/')) {
			n--;
		}
		if (s->n == ENDPOINTS_MAX
		    || !((n > 7 && strncmp(p, "http://", 7) == 0)
		        || (n > 8 && strncmp(p, "https://", 8) == 0))) {
			return -EINVAL;
		}
		if ((s->urls[s->n] = strndup(p, n)) == NULL) {
			return -ENOMEM;
		}
		s->n++;
		if (end == NULL) {
			return 0;
		}
		p = end + 1;
	}
}

int
pr__etcd_open(const struct pr_etcd_opts *opts, struct pr_etcd **out)
{
	struct pr_etcd *e;
	int rc;

	*out = NULL;
	if (opts == NULL || (opts->user != NULL && opts->password == NULL)) {
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		pr_error("etcd: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
		return -ENOMEM;
	}
	if ((e = calloc(1, sizeof *e)) == NULL) {
		return -ENOMEM;
	}
	rc = parse_endpoints(opts->endpoints, &e->set);
	if (rc == 0) {
		e->set.ca_file = dup_opt(opts->ca_file, &rc);
		e->set.cert_file = dup_opt(opts->cert_file, &rc);
		e->set.key_file = dup_opt(opts->key_file, &rc);
		e->user = dup_opt(opts->user, &rc);
		e->password = dup_opt(opts->password, &rc);
	}
	e->set.connect_ms
	    = opts->connect_timeout_ms != 0 ? opts->connect_timeout_ms : CONNECT_TIMEOUT;
	e->set.request_ms
	    = opts->request_timeout_ms != 0 ? opts->request_timeout_ms : REQUEST_TIMEOUT;
	if (rc == 0 && (e->curl = curl_easy_init()) == NULL) {
		rc = -ENOMEM;
	}
	if (rc != 0) {
		pr__etcd_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

static void
free_secret(char *s)
{
	if (s != NULL) {
		/* Not a guarantee against a compiler that elides it, but the
		 * token and password do not linger in freed memory by
		 * default. */
		memset(s, 0, strlen(s));
		free(s);
	}
}

void
pr__etcd_close(struct pr_etcd *e)
{
	if (e == NULL) {
		return;
	}
	if (e->curl != NULL) {
		curl_easy_cleanup(e->curl);
	}
	settings_release(&e->set);
	free(e->user);
	free_secret(e->password);
	free_secret(e->token);
	free(e);
}

const char *
pr__etcd_endpoint(const struct pr_etcd *e)
{
	return e->set.urls[e->cur];
}

static size_t
buf_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 1024;
		char *p;

		while (cap < b->len + n + 1) {
			cap *= 2;
		}
		if (cap > RESPONSE_MAX || (p = realloc(b->p, cap)) == NULL) {
			b->too_big = 1;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* Set up curl for a POST of body to url with the settings, token and
 * timeout. Returns the header list to free after the transfer. */
static struct curl_slist *
setup(CURL *c, const struct settings *s, const char *url, const char *body, const char *token,
    long timeout_ms, char *errbuf)
{
	struct curl_slist *h = NULL, *t;
	char auth[4096];

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)s->connect_ms < timeout_ms || timeout_ms == 0 ? (long)s->connect_ms : timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (s->ca_file != NULL) {
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	}
	if (s->cert_file != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, s->cert_file);
	}
	if (s->key_file != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLKEY, s->key_file);
	}
	/* "Expect:" off: curl would wait for a 100 Continue the gateway does
	 * not send before posting a large body. hasleader: etcd's own
	 * clients' WithRequireLeader, so a member cut off from its leader
	 * answers "no leader" at once (and ends a watch) instead of letting
	 * the request wait for its 7 s timeout. */
	errbuf[0] = '\0';
	t = curl_slist_append(h, "Content-Type: application/json");
	t = t != NULL ? curl_slist_append(h = t, "Expect:") : NULL;
	t = t != NULL ? curl_slist_append(h = t, "Grpc-Metadata-hasleader: true") : NULL;
	if (t != NULL && token != NULL
	    && (size_t)snprintf(auth, sizeof auth, "Authorization: %s", token) < sizeof auth) {
		t = curl_slist_append(h = t, auth);
		memset(auth, 0, sizeof auth);
	}
	if (t == NULL) {
		curl_slist_free_all(h);
		return NULL;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, t);
	return t;
}

/* The outcome of one POST to one endpoint. */
enum sent {
	NOT_SENT, /* provably never reached etcd: safe to send elsewhere */
	MAYBE,    /* may have reached etcd */
	ANSWERED, /* etcd answered (status and body) */
};

/* Can a failed transfer not have written its request? Yes when no
 * connection was made (refused, unresolved, TLS handshake), or when a new
 * one was being made and the request not yet started (pretransfer time 0)
 * -- curl retries a kept-alive connection that turns out dead on a fresh
 * one, whose refusal is then the answer. */
static int
not_sent(CURLcode cc, curl_off_t pretransfer, long connects)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return 1;
	default:
		return pretransfer == 0 && connects > 0;
	}
}

static enum sent
post(struct pr_etcd *e, size_t idx, const char *path, const char *body, const char *token,
    int64_t deadline, long *status, struct buf *out, int *err)
{
	char url[1024];
	struct curl_slist *h;
	curl_off_t pre = 0;
	long connects = 0;
	int64_t left = deadline - now_ms();
	CURLcode cc;

	*status = 0;
	*err = 0;
	free(out->p);
	memset(out, 0, sizeof *out);
	if (left <= 0) {
		*err = -ETIMEDOUT;
		return NOT_SENT;
	}
	snprintf(url, sizeof url, "%s%s", e->set.urls[idx], path);
	if ((h = setup(e->curl, &e->set, url, body, token, (long)left, e->errbuf)) == NULL) {
		*err = -ENOMEM;
		return NOT_SENT;
	}
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, out);
	cc = curl_easy_perform(e->curl);
	curl_slist_free_all(h);
	curl_easy_getinfo(e->curl, CURLINFO_PRETRANSFER_TIME_T, &pre);
	curl_easy_getinfo(e->curl, CURLINFO_NUM_CONNECTS, &connects);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
		return ANSWERED;
	}
	if (out->too_big) {
		pr_error("etcd: %s%s: answer over %u bytes", e->set.urls[idx], path, RESPONSE_MAX);
		*err = PR__ETCD_EPROTO;
		return ANSWERED;
	}
	pr_warn("etcd: %s%s: %s", e->set.urls[idx], path,
	    e->errbuf[0] != '\0' ? e->errbuf : curl_easy_strerror(cc));
	*err = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : PR__ETCD_EUNAVAIL;
	return not_sent(cc, pre, connects) ? NOT_SENT : MAYBE;
}

static int
authenticate(struct pr_etcd *e, size_t idx, int64_t deadline, int *unreachable)
{
	json_object *o = json_object_new_object(), *t;
	char *body = NULL;
	struct buf b = { 0 };
	long status;
	int rc, err;

	*unreachable = 0;
	rc = o != NULL ? add(o, "name", json_object_new_string(e->user)) : -ENOMEM;
	if (rc == 0) {
		rc = add(o, "password", json_object_new_string(e->password));
	}
	if (rc == 0) {
		rc = to_string(o, &body);
		o = NULL;
	}
	json_object_put(o);
	if (rc != 0) {
		return rc;
	}
	if (post(e, idx, "/v3/auth/authenticate", body, NULL, deadline, &status, &b, &err)
	    != ANSWERED) {
		*unreachable = 1;
		rc = err;
	} else if (err != 0) {
		rc = err;
	} else if (status != 200) {
		rc = pr__etcd_error((int)status, b.p, b.len, 0, NULL);
		if (rc == PR__ETCD_EUNAVAIL || rc == PR__ETCD_ENOLEADER || rc == -ETIMEDOUT) {
			*unreachable = 1;
		} else {
			pr_error("etcd: authenticate as %s at %s: %s", e->user, e->set.urls[idx],
			    pr__etcd_strerror(rc));
		}
	} else if ((rc = parse_body(b.p, b.len, &o)) == 0) {
		if (json_object_object_get_ex(o, "token", &t)
		    && json_object_is_type(t, json_type_string)
		    && json_object_get_string_len(t) > 0) {
			free_secret(e->token);
			if ((e->token = strdup(json_object_get_string(t))) == NULL) {
				rc = -ENOMEM;
			}
		} else {
			rc = PR__ETCD_EPROTO;
		}
		json_object_put(o);
	}
	memset(body, 0, strlen(body));
	free(body);
	free(b.p);
	return rc;
}

/* May the same request go to the next endpoint after err? */
static int
next_endpoint_ok(int err)
{
	return err == PR__ETCD_EUNAVAIL || err == PR__ETCD_ENOLEADER || err == -ETIMEDOUT;
}

/* Of two failures, the one to report: no leader says most (the cluster
 * is up but cannot commit), a timeout next, unreachable least. */
static int
worst(int a, int b)
{
	static const int order[] = { PR__ETCD_ENOLEADER, -ETIMEDOUT, PR__ETCD_EUNAVAIL };

	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		if (a == order[i] || b == order[i]) {
			return order[i];
		}
	}
	return a != 0 ? a : b;
}

/* One POST of body to endpoint idx, with a token fetched first when
 * needed and once more when etcd says it expired (its --auth-token-ttl).
 * *sent says whether the request may have reached etcd. */
static int
attempt(struct pr_etcd *e, size_t idx, const char *path, const char *body, int write,
    int64_t deadline, struct buf *out, enum sent *sent)
{
	for (int round = 0; round < 2; round++) {
		int err, expired = 0, unreachable;
		long status;

		*sent = NOT_SENT;
		if (e->user != NULL && e->token == NULL) {
			if ((err = authenticate(e, idx, deadline, &unreachable)) != 0) {
				return err;
			}
		}
		*sent = post(e, idx, path, body, e->token, deadline, &status, out, &err);
		if (*sent != ANSWERED || err != 0) {
			return err;
		}
		if (status == 200) {
			return 0;
		}
		err = pr__etcd_error((int)status, out->p, out->len, write, &expired);
		pr_debug("etcd: %s%s: HTTP %ld: %.200s", e->set.urls[idx], path, status,
		    out->p != NULL ? out->p : "");
		if (!expired || e->user == NULL || round > 0) {
			return err;
		}
		free_secret(e->token);
		e->token = NULL;
	}
	return PR__ETCD_EAUTH;
}

/*
 * POST body to path: at the endpoint in use, then the others, within one
 * deadline; the answer's body in *out (caller frees out->p) when 0.
 * only_idx: ask that endpoint alone (SIZE_MAX = any).
 */
static int
call(struct pr_etcd *e, const char *path, const char *body, int write, size_t only_idx,
    struct buf *out)
{
	int64_t deadline = now_ms() + e->set.request_ms;
	size_t tries = only_idx == SIZE_MAX ? e->set.n : 1;
	int failure = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < tries; i++) {
		size_t idx = only_idx == SIZE_MAX ? (e->cur + i) % e->set.n : only_idx;
		enum sent sent;
		int err = attempt(e, idx, path, body, write, deadline, out, &sent);

		if (err == 0) {
			if (only_idx == SIZE_MAX && e->cur != idx) {
				pr_info("etcd: now using %s", e->set.urls[idx]);
				e->cur = idx;
			}
			return 0;
		}
		free(out->p);
		memset(out, 0, sizeof *out);
		if (write && sent == MAYBE) {
			return PR__ETCD_EINDOUBT;
		}
		if (!next_endpoint_ok(err)) {
			return err;
		}
		failure = worst(failure, err);
	}
	return failure != 0 ? failure : PR__ETCD_EUNAVAIL;
}

static const char *const op_paths[] = { "/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange" };

int
pr__etcd_do(struct pr_etcd *e, const struct pr_etcd_op *op, struct pr_etcd_res *res)
{
	char *body;
	struct buf b;
	int rc;

	memset(res, 0, sizeof *res);
	if ((rc = pr__etcd_op_json(op, &body)) != 0) {
		return rc;
	}
	rc = call(e, op_paths[op->type], body, op->type != PR_ETCD_RANGE, SIZE_MAX, &b);
	free(body);
	if (rc == 0) {
		rc = pr__etcd_res_parse(op->type, b.p, b.len, res);
	}
	free(b.p);
	return rc;
}

int
pr__etcd_txn(struct pr_etcd *e, const struct pr_etcd_txn *txn, struct pr_etcd_txn_res *res)
{
	char *body;
	struct buf b;
	int write = 0, rc;

	memset(res, 0, sizeof *res);
	if ((rc = pr__etcd_txn_json(txn, &body)) != 0) {
		return rc;
	}
	for (size_t i = 0; i < txn->n_success; i++) {
		write |= txn->success[i].type != PR_ETCD_RANGE;
	}
	for (size_t i = 0; i < txn->n_failure; i++) {
		write |= txn->failure[i].type != PR_ETCD_RANGE;
	}
	rc = call(e, "/v3/kv/txn", body, write, SIZE_MAX, &b);
	free(body);
	if (rc == 0) {
		rc = pr__etcd_txn_res_parse(b.p, b.len, res);
	}
	free(b.p);
	return rc;
}

/* POST {"<name>": "<v>"} to path; the parsed answer in *out. */
static int
call_i64(
    struct pr_etcd *e, const char *path, const char *name, int64_t v, int write, json_object **out)
{
	char body[64];
	struct buf b;
	int rc;

	*out = NULL;
	snprintf(body, sizeof body, "{\"%s\":\"%" PRId64 "\"}", name, v);
	rc = call(e, path, body, write, SIZE_MAX, &b);
	if (rc == 0) {
		rc = parse_body(b.p, b.len, out);
	}
	free(b.p);
	return rc;
}

int
pr__etcd_compact(struct pr_etcd *e, int64_t revision)
{
	json_object *o;
	int rc;

	if (revision <= 0) {
		return -EINVAL;
	}
	rc = call_i64(e, "/v3/kv/compaction", "revision", revision, 1, &o);
	json_object_put(o);
	return rc;
}

int
pr__etcd_lease_grant(struct pr_etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted)
{
	json_object *o;
	int64_t ttl = 0;
	int rc;

	*id = 0;
	if (ttl_s <= 0) {
		return -EINVAL;
	}
	if ((rc = call_i64(e, "/v3/lease/grant", "TTL", ttl_s, 1, &o)) != 0) {
		return rc;
	}
	if ((rc = get_i64(o, "ID", id)) == 0) {
		rc = get_i64(o, "TTL", &ttl);
	}
	json_object_put(o);
	if (rc == 0 && *id == 0) {
		rc = PR__ETCD_EPROTO;
	}
	if (granted != NULL) {
		*granted = ttl;
	}
	return rc;
}

int
pr__etcd_lease_keepalive(struct pr_etcd *e, int64_t id, int64_t *ttl)
{
	json_object *o;
	int rc;

	*ttl = 0;
	/* The keepalive stream with one request: the gateway ends it when
	 * the body ends, after one {"result": {...}}. A renewal is
	 * idempotent, so it counts as a read for failover. */
	if ((rc = call_i64(e, "/v3/lease/keepalive", "ID", id, 0, &o)) != 0) {
		return rc;
	}
	if (get_obj(o, "result") != NULL) {
		rc = get_i64(get_obj(o, "result"), "TTL", ttl);
	} else {
		rc = error_of(o, 0, NULL);
		rc = rc != 0 ? rc : PR__ETCD_EPROTO;
	}
	json_object_put(o);
	if (*ttl < 0) {
		*ttl = 0;
	}
	return rc;
}

int
pr__etcd_lease_revoke(struct pr_etcd *e, int64_t id)
{
	json_object *o;
	int rc = call_i64(e, "/v3/lease/revoke", "ID", id, 1, &o);

	json_object_put(o);
	return rc;
}

int
pr__etcd_status(struct pr_etcd *e, const char *endpoint, struct pr_etcd_status *out)
{
	size_t only = SIZE_MAX;
	json_object *o, *v;
	struct buf b;
	int64_t rev;
	int rc;

	memset(out, 0, sizeof *out);
	if (endpoint != NULL) {
		for (size_t i = 0; i < e->set.n; i++) {
			if (strcmp(e->set.urls[i], endpoint) == 0) {
				only = i;
			}
		}
		if (only == SIZE_MAX) {
			return -EINVAL;
		}
	}
	rc = call(e, "/v3/maintenance/status", "{}", 0, only, &b);
	if (rc == 0) {
		rc = parse_body(b.p, b.len, &o);
	}
	free(b.p);
	if (rc != 0) {
		return rc;
	}
	if ((rc = get_u64(get_obj(o, "header"), "member_id", &out->member_id)) == 0
	    && (rc = get_i64(get_obj(o, "header"), "revision", &rev)) == 0
	    && (rc = get_u64(o, "leader", &out->leader)) == 0
	    && (rc = get_u64(o, "raftIndex", &out->raft_index)) == 0) {
		rc = get_u64(o, "raftTerm", &out->raft_term);
	}
	out->revision = rev;
	if (json_object_object_get_ex(o, "version", &v)
	    && json_object_is_type(v, json_type_string)) {
		snprintf(out->version, sizeof out->version, "%s", json_object_get_string(v));
	}
	json_object_put(o);
	return rc;
}

/* ---- The watch stream's parser ---- */

struct pr_etcd_wparse {
	json_tokener *tok;
	int mid; /* inside an object */
	pr_etcd_watch_fn cb;
	void *arg;
	int64_t last; /* revision of the last event or progress delivered */
};

int
pr__etcd_wparse_new(pr_etcd_watch_fn cb, void *arg, struct pr_etcd_wparse **out)
{
	struct pr_etcd_wparse *p = calloc(1, sizeof *p);

	*out = NULL;
	if (p == NULL || (p->tok = json_tokener_new()) == NULL) {
		free(p);
		return -ENOMEM;
	}
	p->cb = cb;
	p->arg = arg;
	*out = p;
	return 0;
}

void
pr__etcd_wparse_free(struct pr_etcd_wparse *p)
{
	if (p != NULL) {
		json_tokener_free(p->tok);
		free(p);
	}
}

static void
deliver_final(struct pr_etcd_wparse *p, enum pr_etcd_event_type type, int64_t rev, int err)
{
	struct pr_etcd_event ev = { .type = type, .revision = rev, .err = err };

	p->cb(p->arg, &ev);
}

/* One watch response. 1 after a final event. */
static int
wparse_one(struct pr_etcd_wparse *p, json_object *o, int *created)
{
	json_object *r = get_obj(o, "result"), *evs = NULL;
	int64_t rev, compact;
	size_t n = 0;
	int rc;

	if (r == NULL) {
		json_object *e = NULL;

		if (!json_object_object_get_ex(o, "error", &e)) {
			return PR__ETCD_EPROTO;
		}
		rc = error_of(o, 0, NULL);
		deliver_final(p, PR_ETCD_EV_LOST, p->last, rc != 0 ? rc : PR__ETCD_EUNAVAIL);
		return 1;
	}
	if ((rc = get_i64(get_obj(r, "header"), "revision", &rev)) != 0
	    || (rc = get_i64(r, "compact_revision", &compact)) != 0) {
		return rc;
	}
	if (compact > 0) {
		deliver_final(p, PR_ETCD_EV_COMPACTED, compact, PR__ETCD_ECOMPACTED);
		return 1;
	}
	if (get_bool(r, "canceled")) {
		json_object *why = NULL;
		int err = PR__ETCD_EUNAVAIL;

		if (json_object_object_get_ex(r, "cancel_reason", &why)
		    && json_object_is_type(why, json_type_string)) {
			err = map_message(json_object_get_string(why), 0, 0, NULL);
			pr_warn("etcd: watch canceled: %s", json_object_get_string(why));
		}
		deliver_final(p, PR_ETCD_EV_LOST, p->last, err != 0 ? err : PR__ETCD_EUNAVAIL);
		return 1;
	}
	if (get_bool(r, "created")) {
		*created = 1;
		return 0;
	}
	if (json_object_object_get_ex(r, "events", &evs) && evs != NULL) {
		if (!json_object_is_type(evs, json_type_array)) {
			return PR__ETCD_EPROTO;
		}
		n = json_object_array_length(evs);
	}
	if (n == 0) {
		struct pr_etcd_event ev = { .type = PR_ETCD_EV_PROGRESS, .revision = rev };

		p->last = rev > p->last ? rev : p->last;
		p->cb(p->arg, &ev);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(evs, i), *t = NULL, *kvo, *prevo;
		struct pr_etcd_kv kv, prev;
		struct pr_etcd_event ev = { .type = PR_ETCD_EV_PUT };

		if ((kvo = get_obj(x, "kv")) == NULL) {
			return PR__ETCD_EPROTO;
		}
		if (json_object_object_get_ex(x, "type", &t) && t != NULL) {
			const char *s = json_object_get_string(t);

			if (strcmp(s, "DELETE") == 0) {
				ev.type = PR_ETCD_EV_DELETE;
			} else if (strcmp(s, "PUT") != 0) {
				return PR__ETCD_EPROTO;
			}
		}
		if ((rc = kv_parse(kvo, &kv)) != 0) {
			return rc;
		}
		prevo = get_obj(x, "prev_kv");
		if (prevo != NULL && (rc = kv_parse(prevo, &prev)) != 0) {
			kv_release(&kv);
			return rc;
		}
		ev.kv = &kv;
		ev.prev_kv = prevo != NULL ? &prev : NULL;
		ev.revision = kv.mod_revision;
		ev.last = i == n - 1;
		p->last = kv.mod_revision > p->last ? kv.mod_revision : p->last;
		p->cb(p->arg, &ev);
		kv_release(&kv);
		if (prevo != NULL) {
			kv_release(&prev);
		}
	}
	return 0;
}

int
pr__etcd_wparse_feed(struct pr_etcd_wparse *p, const char *buf, size_t len, int *created)
{
	while (len > 0) {
		json_object *o;
		size_t used;
		int rc;

		if (!p->mid) {
			/* Between objects: the gateway ends each with a
			 * newline. */
			while (len > 0 && isspace((unsigned char)*buf)) {
				buf++;
				len--;
			}
			if (len == 0) {
				break;
			}
			if (*buf != '{') {
				return PR__ETCD_EPROTO;
			}
		}
		o = json_tokener_parse_ex(p->tok, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		if (o == NULL) {
			if (json_tokener_get_error(p->tok) != json_tokener_continue) {
				return PR__ETCD_EPROTO;
			}
			/* Incomplete: the tokener has taken all of buf and
			 * keeps it for the next chunk. */
			p->mid = 1;
			break;
		}
		used = json_tokener_get_parse_end(p->tok);
		json_tokener_reset(p->tok);
		p->mid = 0;
		buf += used;
		len -= used;
		if (!json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return PR__ETCD_EPROTO;
		}
		rc = wparse_one(p, o, created);
		json_object_put(o);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* ---- The watch ---- */

struct pr_etcd_watch {
	struct settings set;
	size_t first; /* the endpoint to try first */
	char *token;
	char *body;
	pr_etcd_watch_fn cb;
	void *arg;

	pthread_t thread;
	CURLM *multi;
	atomic_int stop;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state; /* under mu: 0 starting, 1 created, < 0 failed */

	/* The watch thread's own. */
	struct pr_etcd_wparse *parser;
	int created, final, err;
	long status;
	struct buf errbody; /* the body of a non-200 answer */
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
};

static void
set_state(struct pr_etcd_watch *w, int state)
{
	pthread_mutex_lock(&w->mu);
	w->state = state;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* The parser's callback: events go to the user once the watch is created;
 * a final one before that (etcd canceled the creation) is the open's
 * error instead. */
static void
watch_event(void *arg, const struct pr_etcd_event *ev)
{
	struct pr_etcd_watch *w = arg;

	if (w->created) {
		w->cb(w->arg, ev);
	} else if (ev->type == PR_ETCD_EV_COMPACTED) {
		w->err = PR__ETCD_ECOMPACTED;
	} else if (ev->type == PR_ETCD_EV_LOST) {
		w->err = ev->err;
	}
}

static size_t
watch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct pr_etcd_watch *w = arg;
	size_t n = size * nmemb;
	int created = 0, rc;

	if (w->status == 0) {
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
	}
	if (w->status != 200) {
		return buf_write(ptr, size, nmemb, &w->errbody);
	}
	rc = pr__etcd_wparse_feed(w->parser, ptr, n, &created);
	if (created && !w->created) {
		w->created = 1;
		set_state(w, 1);
	}
	if (rc != 0) {
		if (rc < 0) {
			w->err = rc;
		} else if (w->created) {
			w->final = 1;
		}
		return 0; /* ends the transfer */
	}
	return n;
}

/* Run the stream at endpoint idx until it ends or stop; 0 when it was
 * stopped or ended with a final event, else why it ended. */
static int
watch_run(struct pr_etcd_watch *w, size_t idx, int64_t create_deadline)
{
	char url[1024];
	struct curl_slist *h;
	CURLMsg *msg;
	CURLcode cc = CURLE_OK;
	int running = 1, left, done = 0;

	w->status = 0;
	w->err = 0;
	free(w->errbody.p);
	memset(&w->errbody, 0, sizeof w->errbody);
	snprintf(url, sizeof url, "%s/v3/watch", w->set.urls[idx]);
	/* No overall timeout: the stream lasts until closed. Only its
	 * creation has a deadline, checked below. */
	if ((h = setup(w->curl, &w->set, url, w->body, w->token, 0, w->errbuf)) == NULL) {
		return -ENOMEM;
	}
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
	/* A dead peer (its machine gone, no RST) is noticed by TCP
	 * keepalive rather than never. */
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPINTVL, 2L);
	curl_multi_add_handle(w->multi, w->curl);
	while (!done && !atomic_load(&w->stop)) {
		if (!w->created && now_ms() >= create_deadline) {
			w->err = -ETIMEDOUT;
			break;
		}
		curl_multi_perform(w->multi, &running);
		while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE) {
				cc = msg->data.result;
				done = 1;
			}
		}
		if (!done && running == 0) {
			done = 1;
		}
		if (!done) {
			/* Until created, wake at the creation deadline, not
			 * a poll interval later. */
			int64_t wait = WATCH_POLL_MS;

			if (!w->created && create_deadline - now_ms() < wait) {
				wait = create_deadline - now_ms();
			}
			curl_multi_poll(w->multi, NULL, 0, wait > 0 ? (int)wait : 0, NULL);
		}
	}
	curl_multi_remove_handle(w->multi, w->curl);
	curl_slist_free_all(h);
	if (atomic_load(&w->stop) || w->final) {
		return 0;
	}
	if (w->err != 0) {
		return w->err;
	}
	if (cc == CURLE_OK && w->status != 200) {
		return pr__etcd_error((int)w->status, w->errbody.p, w->errbody.len, 0, NULL);
	}
	pr_warn("etcd: watch at %s ended: %s", w->set.urls[idx],
	    cc != CURLE_OK ? (w->errbuf[0] != '\0' ? w->errbuf : curl_easy_strerror(cc))
	                   : "end of stream");
	return PR__ETCD_EUNAVAIL;
}

static void *
watch_main(void *arg)
{
	struct pr_etcd_watch *w = arg;
	int64_t deadline = now_ms() + w->set.request_ms;
	int failure = 0, rc = 0;

	for (size_t i = 0; i < w->set.n && !atomic_load(&w->stop); i++) {
		size_t idx = (w->first + i) % w->set.n;

		rc = watch_run(w, idx, deadline);
		if (w->created || rc == 0) {
			break;
		}
		failure = worst(failure, rc);
		if (!next_endpoint_ok(rc) || now_ms() >= deadline) {
			break;
		}
	}
	if (!w->created) {
		set_state(w, failure != 0 ? failure : (rc != 0 ? rc : PR__ETCD_EUNAVAIL));
	} else if (rc != 0 && !atomic_load(&w->stop)) {
		struct pr_etcd_event ev = { .type = PR_ETCD_EV_LOST, .err = rc };

		ev.revision = w->parser->last;
		w->cb(w->arg, &ev);
	}
	return NULL;
}

static int
watch_body(const struct pr_etcd_watch_opts *o, char **json)
{
	json_object *req = json_object_new_object(), *wrap;
	int rc = req != NULL ? 0 : -ENOMEM;

	*json = NULL;
	if (rc == 0) {
		rc = add_bytes(req, "key", o->key, o->key_len);
	}
	if (rc == 0 && o->range_end != NULL) {
		rc = add_bytes(req, "range_end", o->range_end, o->range_end_len);
	}
	if (rc == 0) {
		rc = add_i64(req, "start_revision", o->start_revision);
	}
	if (rc == 0) {
		rc = add_true(req, "prev_kv", o->prev_kv);
	}
	if (rc == 0) {
		rc = add_true(req, "progress_notify", o->progress_notify);
	}
	if (rc != 0) {
		json_object_put(req);
		return rc;
	}
	if ((wrap = json_object_new_object()) == NULL) {
		json_object_put(req);
		return -ENOMEM;
	}
	if ((rc = add(wrap, "create_request", req)) != 0) {
		json_object_put(wrap);
		return rc;
	}
	return to_string(wrap, json);
}

static void
watch_free(struct pr_etcd_watch *w)
{
	if (w->curl != NULL) {
		curl_easy_cleanup(w->curl);
	}
	if (w->multi != NULL) {
		curl_multi_cleanup(w->multi);
	}
	pr__etcd_wparse_free(w->parser);
	settings_release(&w->set);
	free_secret(w->token);
	free(w->body);
	free(w->errbody.p);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static int
watch_start(struct pr_etcd *e, const struct pr_etcd_watch_opts *opts, pr_etcd_watch_fn cb,
    void *arg, struct pr_etcd_watch **out)
{
	struct pr_etcd_watch *w;
	int rc;
	/* The token first, with e's failover: the watch thread never
	 * authenticates (it has no password). */
	if (e->user != NULL && e->token == NULL) {
		struct pr_etcd_status st;

		if ((rc = pr__etcd_status(e, NULL, &st)) != 0) {
			return rc;
		}
	}
	if ((w = calloc(1, sizeof *w)) == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->cb = cb;
	w->arg = arg;
	w->first = e->cur;
	rc = settings_copy(&w->set, &e->set);
	if (rc == 0) {
		w->token = dup_opt(e->token, &rc);
	}
	if (rc == 0) {
		rc = watch_body(opts, &w->body);
	}
	if (rc == 0) {
		rc = pr__etcd_wparse_new(watch_event, w, &w->parser);
	}
	if (rc == 0
	    && ((w->curl = curl_easy_init()) == NULL || (w->multi = curl_multi_init()) == NULL)) {
		rc = -ENOMEM;
	}
	if (rc == 0 && pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		rc = -EAGAIN;
	}
	if (rc != 0) {
		watch_free(w);
		return rc;
	}
	pthread_mutex_lock(&w->mu);
	while (w->state == 0) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	rc = w->state < 0 ? w->state : 0;
	pthread_mutex_unlock(&w->mu);
	if (rc != 0) {
		pthread_join(w->thread, NULL);
		watch_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int
pr__etcd_watch_open(struct pr_etcd *e, const struct pr_etcd_watch_opts *opts, pr_etcd_watch_fn cb,
    void *arg, struct pr_etcd_watch **out)
{
	int rc;

	*out = NULL;
	if (opts == NULL || cb == NULL || opts->key == NULL || opts->key_len == 0
	    || !range_end_ok(opts->range_end, opts->range_end_len) || opts->start_revision < 0) {
		return -EINVAL;
	}
	rc = watch_start(e, opts, cb, arg, out);
	if (rc == PR__ETCD_EAUTH && e->user != NULL) {
		/* Perhaps only the token expired: once more with a new one. */
		free_secret(e->token);
		e->token = NULL;
		rc = watch_start(e, opts, cb, arg, out);
	}
	return rc;
}

void
pr__etcd_watch_close(struct pr_etcd_watch *w)
{
	if (w == NULL) {
		return;
	}
	atomic_store(&w->stop, 1);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	watch_free(w);
}
