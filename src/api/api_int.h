/*
 * api_int.h — shared by the files of src/api only: one request as the handlers see it,
 * and the answers they give.
 */
#ifndef TG_API_INT_H
#define TG_API_INT_H

#include "api.h"
#include "../keyring/keyring.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define API_PARAMS_MAX 2

typedef struct api_sessions api_sessions;
/* metrics.c: answers sent, by HTTP status (API thread only), and serve's workers for its
 * counters (set when the service starts; NULL outside serve). */
#define API_CODE_LOW 100
#define API_CODES    500 /* statuses 100..599 */
typedef struct api_counts {
    unsigned long long by_code[API_CODES];
    tg_workers *ws;
} api_counts;

/* One request, from the route's match to its answer. */
typedef struct api_req {
    struct evhttp_request *req;
    tg_keyring *kr;
    const char *home;             /* the store's directory (serve's files: proxy stats) */
    struct evkeyvalq query;       /* the decoded query string */
    char *params[API_PARAMS_MAX]; /* the route's {…} segments, decoded */
    const unsigned char *body;    /* the raw body (NUL-terminated copy), or NULL */
    size_t bodylen;
    json_t *json;        /* the body as JSON when the route takes JSON */
    char peer[64];       /* "ADDR" of the client */
    int status;          /* an HTTP status the error code does not say (401, 403, 405) */
    const char *errname; /* with status: the error's name ("unauthorized", "forbidden") */
    tg_principal who;    /* whom the request acts for, once authenticated */
    api_sessions *sessions;
    int by_session;              /* authenticated by a console session (cookie) */
    char csrf[TG_TOKEN_LEN + 1]; /* that session's CSRF token */
    tg_err err;
    api_counts *counts; /* the listener's (metrics.c) */
    char *object;       /* the audit row's object when neither the path nor the body's "name"
                         * names it (an upload's name); malloc'd, freed with the request */
    json_t *detail;     /* members a handler adds to the audit row's detail (a new token's
                         * id): never a secret */
} api_req;

typedef int (*api_handler)(api_req *r);

/* The headers of every answer: its type, no caching, no sniffing, HSTS. */
void api_common_headers(struct evhttp_request *req, const char *type);
/* Answers: each sends exactly one response. */
void api_send_json(api_req *r, int status, json_t *doc); /* takes doc */
/* Bytes as the body (an export: Content-Disposition when disposition is not NULL); takes
 * data (malloc'd), wiped and freed once sent, as it may hold a key or a token. */
void api_send_bytes(api_req *r, int status, const char *type, const char *disposition,
                    unsigned char *data, size_t len);
/* certs.c: Content-Disposition for an export named name + ext (malloc'd, or NULL). */
char *api_disposition(const char *name, const char *ext);
/* The error in r->err as {"error", "exit_status", "message", "field"} with the HTTP
 * status its code maps to. */
void api_send_error(api_req *r);
/* A handler's return: 0 after sending, or a negative TG_E_ code with r->err set. */
int api_fail(api_req *r, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reading a request: a query parameter (NULL when absent); a JSON body member of the
 * given type (absent: *out untouched and 0; present with another type: TG_E_USAGE
 * naming the member). */
const char *api_query(api_req *r, const char *name);
int api_member_str(api_req *r, const char *name, int required, const char **out);
int api_member_int(api_req *r, const char *name, int *out, int *given);
int api_member_bool(api_req *r, const char *name, int *out);
int api_member_strs(api_req *r, const char *name, const char ***out, size_t *n);
/* A query parameter as a whole number within [lo, hi]; absent: *out untouched. */
int api_query_int(api_req *r, const char *name, int lo, int hi, int *out, int *given);

/* Whether the caller's role allows cap: 0, or 403 with r->err set (a handler asks this
 * itself when the answer depends on the request: a key in an export, another's token). */
int api_authorize(api_req *r, tg_cap cap);
/* routes.c: a request body may hold only these members (NULL-terminated): an unknown one is
 * refused (usage), as the CLI refuses an unknown option. */
int api_members_only(api_req *r, const char *const *allowed);
/* A handler's end: on success sends doc (an empty object when NULL) with status; on
 * failure drops doc and returns rc for the listener to answer. */
int api_done(api_req *r, int rc, int status, json_t *doc);

/* ---- uploads (upload.c): a raw body (one file, the other members in the query and a
 * password in the X-Tlsgate-Password header) or multipart/form-data (RFC 7578) ---- */
#define API_PARTS_MAX       16
#define API_PART_NAME_MAX   64   /* bytes of a part's name */
#define API_FILENAME_MAX    255  /* bytes of a part's filename */
#define API_PART_HEAD_MAX   4096 /* bytes of one part's headers */
#define API_PASSWORD_HEADER "X-Tlsgate-Password"
typedef struct api_part {
    char *name;          /* the form field ("file", "key", "name", "password") */
    char *filename;      /* its filename, or NULL */
    unsigned char *data; /* a NUL-terminated copy, wiped when freed (it may hold a key) */
    size_t len;
} api_part;
typedef struct api_form {
    api_part parts[API_PARTS_MAX];
    size_t n;
    int multipart; /* 0: the body was one file */
} api_form;
/* Reads r's body as a form. files: the parts that are files (the first one is what a raw
 * body is); texts: the other members (parts, or query parameters unless secret: a secret
 * never goes in a URL). Anything else, or a malformed body, is refused (usage) naming it. */
int api_form_read(api_req *r, api_form *f, const char *const *files, const char *const *texts);
void api_form_free(api_form *f);
/* The multipart/form-data reader itself: r->body as the parts of content type ct (its
 * boundary parameter), into f (empty; api_form_free after, whatever it returned). Only
 * r->body, r->bodylen and r->err are used: tests/fuzz/fuzz_multipart.c calls it alone. */
int api_multipart_read(api_req *r, api_form *f, const char *ct);
/* Every part named name as inputs ((*out)[i].data borrowed from f; free(*out) only). */
int api_form_inputs(api_req *r, api_form *f, const char *name, tg_input **out, size_t *n);
/* A member's text (a part or a query parameter; absent: *out untouched), or as a switch
 * ("true"/"false", "1"/"0", "yes"/"no"; empty is true). */
int api_form_text(api_req *r, api_form *f, const char *name, const char **out);
int api_form_bool(api_req *r, api_form *f, const char *name, int *out);

/* A password handed to the keyring through tg_passsrc, as the CLI hands its file's. */
typedef struct api_secret {
    const char *data;
    size_t len;
    tg_passsrc src;
} api_secret;
/* A source for data (NULL when data is NULL: "none was given"). */
const tg_passsrc *api_secret_src(api_secret *s, const char *data, size_t len);
/* The form's "password" part (or header), or NULL. */
const tg_passsrc *api_form_pass(api_form *f, api_secret *s);
/* A JSON body's string member as a secret: *data is NULL when absent; api_member_wipe
 * overwrites it in the parsed document before the document is freed. */
int api_member_secret(api_req *r, const char *name, const char **data, size_t *len);
void api_member_wipe(api_req *r, const char *name);
/* doc as JSON text with one more member, key: secret (letters, digits, '-', '_'), spliced
 * in as text so that the secret never enters jansson's memory; *out is a new buffer. */
int api_splice_secret(json_t *doc, const char *key, const char *secret, unsigned char **out,
                      size_t *outlen);

/* ---- handlers by resource ---- */
/* certs.c: certificates, requests and CA certificates moving in and out */
int api_cert_import(api_req *r);
int api_cert_export(api_req *r);
int api_cert_replace(api_req *r);
int api_request_export(api_req *r);
int api_ca_import(api_req *r);
int api_ca_export(api_req *r);
int api_ca_replace(api_req *r);
int api_ca_delete(api_req *r);
int api_ca_reissue(api_req *r);
/* trust.c: trust stores and verify */
int api_identity_get(api_req *r);
int api_identity_set(api_req *r);
int api_enrollca_get(api_req *r);
int api_enrollca_init(api_req *r);
int api_enrollca_set(api_req *r);
int api_enrollca_secret(api_req *r);
int api_enrollca_approve(api_req *r);
int api_enrollca_revoke(api_req *r);
int api_ts_create(api_req *r);
int api_ts_add(api_req *r);
int api_ts_remove(api_req *r);
int api_ts_delete(api_req *r);
int api_ts_update_defaults(api_req *r);
int api_verify(api_req *r);
/* users.c: users, tokens, the audit log, factory reset */
int api_users_list(api_req *r);
int api_user_add(api_req *r);
int api_user_get(api_req *r);
int api_user_delete(api_req *r);
int api_user_role(api_req *r);
int api_user_password(api_req *r);
int api_user_disable(api_req *r);
int api_user_enable(api_req *r);
int api_tokens_list(api_req *r);
int api_token_create(api_req *r);
int api_token_revoke(api_req *r);
int api_audit_list(api_req *r);
int api_factory_reset(api_req *r);
/* inspect.c: client proxies, decryption policies, the default never-decrypt list and the
 * category map (src/cli/cmd_proxy.c, cmd_policy.c) */
int api_proxies_list(api_req *r);
int api_proxy_create(api_req *r);
int api_proxy_get(api_req *r);
int api_proxy_set(api_req *r);
int api_proxy_delete(api_req *r);
int api_proxy_stats(api_req *r);
int api_srvproxies_list(api_req *r);
int api_srvproxy_create(api_req *r);
int api_srvproxy_get(api_req *r);
int api_srvproxy_set(api_req *r);
int api_srvproxy_delete(api_req *r);
int api_policies_list(api_req *r);
/* acme.c */
int api_acme_accounts(api_req *r);
int api_acme_account(api_req *r);
int api_acme_certs(api_req *r);
int api_acme_cert(api_req *r);
int api_policy_create(api_req *r);
int api_policy_get(api_req *r);
int api_policy_set(api_req *r);
int api_policy_delete(api_req *r);
int api_policy_export(api_req *r);
int api_policy_import(api_req *r);
int api_defaults_get(api_req *r);
int api_defaults_export(api_req *r);
int api_defaults_import(api_req *r);
int api_defaults_reset(api_req *r);
int api_categories_list(api_req *r);
int api_category_get(api_req *r);
int api_categories_import(api_req *r);
int api_categories_clear(api_req *r);

/* routes.c: finds the route for method and path, fills r->params and *info; NULL when
 * none (*method_ok is 0 when the path exists under another method). */
typedef struct api_route_info {
    int json_body;      /* the body is a JSON object */
    tg_cap cap;         /* what the caller's role must allow */
    const char *action; /* the audit log's action for a change ("cert.create"); NULL: reads */
    int open;           /* answered without authentication (the login) */
    int must_change_ok; /* allowed to a session whose password must change first */
} api_route_info;
api_handler api_route(int method, const char *path, api_req *r, api_route_info *info,
                      int *method_ok);
/* console.c: the web console's files under /appliance/ (and / sent there), public;
 * returns 1 when it answered the request, 0 when path is not the console's. */
int api_console_serve(struct evhttp_request *req, const char *path);
/* session.c: console sessions. api_session_auth authenticates r by its cookie (*found
 * says whether it had a live one); api_session_csrf checks a change's CSRF header. */
api_sessions *api_sessions_new(void);
void api_sessions_free(api_sessions *ss);
int api_session_auth(api_req *r, int *found);
int api_session_csrf(api_req *r);
int api_session_login(api_req *r);
/* The login's rate limits for any password check: api_password_guard before (429 when
 * the address is locked out or the rate is over), api_password_outcome after. */
int api_password_guard(api_req *r);
void api_password_outcome(api_req *r, int ok);
int api_session_get(api_req *r);
int api_session_end(api_req *r);
/* metrics.c: counts one answer (listener.c calls it for every answer it sends). */
void api_count(api_counts *c, int status);
/* GET /metrics: the Prometheus text format. */
int api_metrics(api_req *r);
/* console.c: GET /api/v1/openapi.json (docs/openapi.json, compiled in). */
int api_openapi(api_req *r);
/* The status resource's start time: when the listener started. */
void api_started(void);

#endif
