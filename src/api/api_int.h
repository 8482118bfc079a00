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
} api_req;

typedef int (*api_handler)(api_req *r);

/* Answers: each sends exactly one response. */
void api_send_json(api_req *r, int status, json_t *doc); /* takes doc */
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
int api_session_get(api_req *r);
int api_session_end(api_req *r);
/* metrics.c: counts one answer (listener.c calls it for every answer it sends). */
void api_count(api_counts *c, int status);
/* GET /metrics: the Prometheus text format. */
int api_metrics(api_req *r);
/* The status resource's start time: when the listener started. */
void api_started(void);

#endif
