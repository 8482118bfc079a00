/*
 * enroll_int.h — what the files of src/enroll share: the job table the enrollment thread
 * runs (service.c) and the HTTP client every protocol here speaks through (http.c).
 */
#ifndef TG_ENROLL_INT_H
#define TG_ENROLL_INT_H

#include "enroll.h"
#include "../x509/x509.h"

#include <stddef.h>

/* ---- jobs ---- */
typedef struct enroll_ctx {
    tg_keyring *kr; /* the thread's own handle on the store */
    const char *home;
    int quiet;
    volatile int *stopping; /* set when serve stops: a job checks it between network steps */
} enroll_ctx;
#define ENROLL_IDLE 3600 /* seconds a job sleeps when it asks for nothing sooner */
typedef struct enroll_job {
    const char *name;
    /* Does what is due at now and returns when it wants to run again (unix seconds; 0:
     * ENROLL_IDLE from now). A store change wakes every job early. It may block on the
     * network, each step bounded by its own deadline. */
    long long (*run)(enroll_ctx *x, long long now);
} enroll_job;
extern const enroll_job *const enroll_jobs[]; /* NULL-terminated (service.c) */
extern const enroll_job enroll_job_rollover;  /* CA rollovers planned ahead (rollover.c) */
extern const enroll_job enroll_job_acme;      /* acme.c */

/* ---- serve's http-01 listener (acme_http.c) ---- */
typedef struct acme_http acme_http;
#define ENROLL_ACME_HTTP_DEFAULT "0.0.0.0:80"
/* Listens on addr ("ADDR:PORT") on every worker of ws. */
int acme_http_start(tg_workers *ws, const char *home, const char *addr, acme_http **out,
                    tg_err *err);
const char *acme_http_addr(const acme_http *h);
/* After the loops have ended: closes the listener, frees what is left. */
void acme_http_stop(acme_http *h);
/* Whether the store keeps a certificate for ACME with http-01 (serve's default listener). */
int acme_wants_http(const char *home);

/* ---- HTTP over libcurl (http.c) ---- */
#define ENROLL_HTTP_BODY_MAX    (1024 * 1024) /* bytes of an answer, default */
#define ENROLL_HTTP_TIMEOUT     30            /* seconds for one exchange, start to end */
#define ENROLL_HTTP_CONNECT     10            /* seconds to connect */
#define ENROLL_HTTP_HEADERS_MAX 64            /* response header lines kept */
typedef struct enroll_http_req {
    const char *method; /* "GET" (default when NULL) or "POST" */
    const char *url;    /* http:// or https:// only */
    const char *content_type;
    const unsigned char *body;
    size_t bodylen;
    const char *accept;
    const char *ca_pem;          /* https: the anchors (PEM); NULL: the system's */
    const char *user, *password; /* HTTP basic authentication, or NULL */
    const tg_cert *client_cert;  /* mutual TLS, with client_key (both or neither) */
    const tg_cert *const *client_chain;
    size_t nclient_chain;
    const tg_key *client_key;
    long timeout;    /* seconds; 0: ENROLL_HTTP_TIMEOUT */
    size_t max_body; /* 0: ENROLL_HTTP_BODY_MAX */
} enroll_http_req;
typedef struct enroll_http_header {
    char *name, *value;
} enroll_http_header;
typedef struct enroll_http_resp {
    long status;
    unsigned char *body; /* NUL-terminated (not counted in len) */
    size_t len;
    enroll_http_header headers[ENROLL_HTTP_HEADERS_MAX]; /* of the last response */
    size_t nheaders;
} enroll_http_resp;
/* One exchange; a transport failure is TG_E_IO with curl's sentence (the URL named). An
 * HTTP error status is not a failure here: the caller reads resp->status. */
int enroll_http(const enroll_http_req *q, enroll_http_resp *resp, tg_err *err);
/* The first header of that name (ASCII case ignored), or NULL. */
const char *enroll_http_header_get(const enroll_http_resp *r, const char *name);
void enroll_http_resp_clear(enroll_http_resp *r);
/* Retry-After (RFC 9110: seconds, or an HTTP date) as seconds from now; -1 when absent or
 * unreadable. Capped at 86400. */
long long enroll_retry_after(const enroll_http_resp *r, long long now);
/* Exponential backoff with jitter: base * 2^(failures-1), at most cap, then a random
 * 50–100 % of it (seconds, >= 1). */
long long enroll_backoff(int failures, long long base, long long cap);

/* ---- EST (RFC 7030) client (est.c) ---- */
/* base64 with line breaks and blanks allowed (MIME, as EST sends it) to bytes; *out is
 * the caller's to free. TG_E_INVALID ("WHAT is not base64") otherwise. */
int enroll_unbase64(const unsigned char *in, size_t len, const char *what, unsigned char **out,
                    size_t *outlen, tg_err *err);
/* server's URL for an operation ("cacerts", "simpleenroll"): a server without a path gets
 * /.well-known/est/ before it, one with a path (a label) the operation after it. */
int est_url(const char *server, const char *op, char *out, size_t size, tg_err *err);
/* The CA certificates the server publishes. */
int est_cacerts(const char *server, const char *ca_pem, tg_bundle *out, tg_err *err);
typedef struct est_req {
    const char *server, *ca_pem;
    int reenroll;             /* /simplereenroll with client's certificate */
    const unsigned char *csr; /* DER */
    size_t csrlen;
    const char *device_id;       /* the HTTP basic user name beside the secret */
    const unsigned char *secret; /* bootstrap secret (HTTP basic password), or NULL */
    size_t secretlen;
    const tg_served *client; /* the current identity for mutual TLS, or NULL */
} est_req;
#define EST_CHAIN_MAX 8
typedef struct est_result {
    long http;
    int pending;           /* 202: the CA will decide later */
    long long retry_after; /* seconds, or -1 */
    tg_cert *leaf;         /* 200: the certificate */
    tg_cert *chain[EST_CHAIN_MAX];
    size_t nchain;
} est_result;
/* 0 with leaf set (200) or pending set (202); TG_E_CONFLICT when the CA refused the
 * request (a 4xx: make a new key and request), TG_E_IO when it could not be reached or
 * failed (retry the same request). */
int est_enroll(const est_req *e, est_result *res, tg_err *err);
void est_result_clear(est_result *r);

/* ---- identity (identity.c) ---- */
/* The device id: the configured override, else the DMI product serial, else the machine
 * id; *source says which ("configured", "dmi", "machine-id"). */
int enroll_device_id(const char *override, char *out, size_t size, const char **source,
                     tg_err *err);
/* One enrollment attempt now, with the stored settings: what serve's job and `identity
 * enroll` both do; log: say the outcome in the log (serve). *state (may be NULL) gets
 * the document written to the state file. */
int enroll_identity_attempt(tg_keyring *kr, int force, int log, json_t **state, tg_err *err);
extern const enroll_job enroll_job_identity;

#endif
