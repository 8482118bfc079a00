/*
 * estd.c — tlsgate as an EST server (RFC 7030) for the enrollment CA of a fleet
 * (`enroll-ca serve`): /cacerts, /simpleenroll and /simplereenroll under
 * /.well-known/est/, on tls's small HTTPS server, deciding nothing itself: each request
 * goes to the keyring's enrollment CA (src/keyring/enrollca.c), which issues, keeps it
 * pending or refuses, and records the outcome in the audit log.
 *
 * Authorisation travels as the protocol says: a bootstrap secret as the password of HTTP
 * basic authentication (the user name is not checked: the device id is the request's
 * CN), or a client certificate in the TLS handshake (asked for, never required, and
 * judged by the keyring against the CA, its validity and the revocations).
 *
 * Bounds: EST_CONNS_MAX connections, EST_REQUEST_SECS per request, EST_HEADERS_MAX bytes
 * of head, EST_BODY_MAX bytes of body (a base64 request of at most TG_CSR_DER_MAX).
 */
#include "enroll_int.h"
#include "../x509/ossl.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EST_CONNS_MAX    64
#define EST_REQUEST_SECS 15
#define EST_HEADERS_MAX  8192
#define EST_BODY_MAX     (TG_CSR_DER_MAX * 2)
#define EST_PREFIX       "/.well-known/est/"

typedef struct estd {
    tg_keyring *kr;
    int quiet;
    long long served, issued, pending, refused;
} estd;

static int always(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1; /* the keyring judges the certificate; TLS proved the key */
}

static SSL_CTX *ctx_new(tg_keyring *kr, const char *cert, tg_err *err)
{
    SSL_CTX *ctx = tg_https_ctx(kr, cert, "EST server", err);
    if (ctx == NULL) return NULL;
    /* a client learns which certificate to offer: one of the enrollment CA's */
    tg_served ca;
    if (tg_keyring_serve_named(kr, TG_ENROLL_CA_NAME, &ca, NULL) == 0) {
        int ok = SSL_CTX_add_client_CA(ctx, tg_cert_x509(ca.cert)) == 1;
        tg_served_clear(&ca);
        if (!ok) {
            SSL_CTX_free(ctx);
            tg_err_set(err, TG_E_INTERNAL, "cannot name the enrollment CA to clients");
            return NULL;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, always);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* no resumption: a re-enrollment's client certificate is judged on every request */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

static void reply_text(struct evhttp_request *req, int status, const char *text)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add_printf(b, "%s\n", text);
    evhttp_send_reply(req, status, NULL, b);
    if (b) evbuffer_free(b);
}

/* DER as base64 lines of 64 (RFC 7030 §4.1.3: Content-Transfer-Encoding base64). */
static void reply_p7(struct evhttp_request *req, const unsigned char *der, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/pkcs7-mime; smime-type=certs-only");
    evhttp_add_header(h, "Content-Transfer-Encoding", "base64");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    char line[4 * 48 / 3 + 1];
    for (size_t off = 0; b && off < len; off += 48) {
        size_t n = len - off < 48 ? len - off : 48;
        EVP_EncodeBlock((unsigned char *)line, der + off, (int)n);
        evbuffer_add_printf(b, "%s\r\n", line);
    }
    evhttp_send_reply(req, 200, NULL, b);
    if (b) evbuffer_free(b);
}

/* The body as bytes: base64 decoded (whitespace and line breaks allowed). */
static int body_der(struct evhttp_request *req, unsigned char **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n == 0 || n > EST_BODY_MAX) return -1;
    unsigned char *text = malloc(n);
    int rc = text && evbuffer_copyout(in, text, n) == (ev_ssize_t)n
                 ? enroll_unbase64(text, n, "the request", der, len, NULL)
                 : -1;
    free(text);
    return rc == 0 && *len > 0 ? 0 : -1;
}

/* "Basic base64(user:password)" → the password (a new secret, or NULL). */
static unsigned char *basic_password(struct evhttp_request *req, size_t *len)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    *len = 0;
    if (v == NULL || strncasecmp(v, "Basic ", 6) != 0) return NULL;
    v += 6;
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    if (n == 0 || n > 4 * (TG_BOOTSTRAP_SECRET_MAX + TG_DEVICE_ID_MAX + 2) / 3 + 4) return NULL;
    unsigned char *dec = calloc(1, n / 4 * 3 + 4);
    int m = dec ? EVP_DecodeBlock(dec, (const unsigned char *)v, (int)n) : -1;
    if (m < 0) {
        free(dec);
        return NULL;
    }
    while (m > 0 && dec[m - 1] == '\0') /* the padding EVP_DecodeBlock counts */
        m--;
    unsigned char *colon = memchr(dec, ':', (size_t)m);
    unsigned char *pw = NULL;
    if (colon != NULL) {
        size_t pl = (size_t)m - (size_t)(colon + 1 - dec);
        if ((pw = malloc(pl + 1)) != NULL) {
            memcpy(pw, colon + 1, pl);
            pw[pl] = '\0';
            *len = pl;
        }
    }
    tg_free_secret(dec, n / 4 * 3 + 4);
    return pw;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    estd *d = arg;
    d->served++;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *op = path && strncmp(path, EST_PREFIX, strlen(EST_PREFIX)) == 0
                         ? path + strlen(EST_PREFIX)
                         : NULL;
    char peer[64] = "?";
    struct evhttp_connection *ec = evhttp_request_get_connection(req);
    char *host = NULL;
    ev_uint16_t port = 0;
    if (ec) evhttp_connection_get_peer(ec, &host, &port);
    if (host) snprintf(peer, sizeof(peer), "%s", host);
    tg_err err = {0};
    if (op != NULL && strcmp(op, "cacerts") == 0 && cmd == EVHTTP_REQ_GET) {
        unsigned char *p7 = NULL;
        size_t len = 0;
        if (tg_keyring_enrollca_cacerts(d->kr, &p7, &len, &err) == 0)
            reply_p7(req, p7, len);
        else
            reply_text(req, 500, err.msg);
        free(p7);
        return;
    }
    int reenroll = op != NULL && strcmp(op, "simplereenroll") == 0;
    if (op == NULL || (!reenroll && strcmp(op, "simpleenroll") != 0)) {
        reply_text(req, 404,
                   "not an EST operation this server offers (cacerts, simpleenroll, "
                   "simplereenroll under /.well-known/est/)");
        return;
    }
    if (cmd != EVHTTP_REQ_POST) {
        reply_text(req, 405, "enrollment takes POST");
        return;
    }
    unsigned char *csr = NULL;
    size_t csrlen = 0;
    if (body_der(req, &csr, &csrlen) != 0) {
        d->refused++;
        reply_text(req, 400, "the body must be a base64 PKCS#10 request (application/pkcs10)");
        return;
    }
    SSL *ssl = tg_https_ssl(req);
    X509 *peer_x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    tg_cert *client = peer_x ? tg_cert_adopt(peer_x) : NULL;
    size_t pwlen = 0;
    unsigned char *pw = basic_password(req, &pwlen);
    tg_est_auth a = {
        .secret = pw, .secretlen = pwlen, .client = client, .reenroll = reenroll, .source = peer};
    unsigned char *cert = NULL;
    size_t certlen = 0;
    int rc = tg_keyring_enrollca_enroll(d->kr, csr, csrlen, &a, &cert, &certlen, &err);
    if (pw) tg_free_secret(pw, pwlen + 1);
    tg_cert_free(client);
    free(csr);
    if (rc == 0) {
        tg_cert *c = NULL;
        unsigned char *p7 = NULL;
        size_t p7len = 0;
        if (tg_cert_from_der(cert, certlen, &c, &err) == 0 &&
            tg_p7_create(&c, 1, 0, &p7, &p7len, &err) == 0) {
            d->issued++;
            reply_p7(req, p7, p7len);
        } else {
            reply_text(req, 500, err.msg);
        }
        tg_cert_free(c);
        free(p7);
    } else if (rc == TG_ENROLL_PENDING) {
        d->pending++;
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", tg_keyring_enrollca_retry_after(d->kr));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        reply_text(req, 202, "the request waits for an operator's approval");
    } else {
        d->refused++;
        int status = rc == TG_E_PASSWORD   ? 401
                     : rc == TG_E_INVALID  ? 400
                     : rc == TG_E_CONFLICT ? 403
                                           : 500;
        if (status == 401)
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              "Basic realm=\"tlsgate EST\"");
        reply_text(req, status, err.msg);
    }
    free(cert);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int tg_enroll_estd_run(tg_keyring *kr, const char *listen, const char *cert, int quiet,
                       void (*ready)(const char *listen, void *arg), void *arg, tg_err *err)
{
    json_t *show = NULL;
    int rc = tg_keyring_enrollca_show(kr, &show, err);
    if (rc != 0) return rc;
    json_decref(show);
    estd d = {.kr = kr, .quiet = quiet};
    SSL_CTX *ctx = ctx_new(kr, cert, err);
    struct event_base *base = ctx ? event_base_new() : NULL;
    struct event *sterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    struct event *sint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    tg_https *h = NULL;
    if (ctx == NULL) {
        rc = err->code ? err->code : TG_E_INTERNAL;
        if (cert && err->field[0] == '\0') snprintf(err->field, sizeof(err->field), "cert");
    } else if (base == NULL || sterm == NULL || sint == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        SSL_CTX_free(ctx);
    } else {
        tg_https_opts ho = {.listen = listen,
                            .what = "EST server",
                            .field = "listen",
                            .max_conns = EST_CONNS_MAX,
                            .deadline_secs = EST_REQUEST_SECS,
                            .max_headers = EST_HEADERS_MAX,
                            .max_body = EST_BODY_MAX,
                            .methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST,
                            .on_request = on_request,
                            .arg = &d};
        if ((rc = tg_https_new(base, &ho, ctx, &h, err)) != 0) SSL_CTX_free(ctx);
    }
    if (rc == 0) {
        event_add(sterm, NULL);
        event_add(sint, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (ready) ready(listen, arg);
        event_base_dispatch(base);
        if (!quiet)
            tg_log(TG_LOG_INFO,
                   "EST server stopping: %lld requests, %lld issued, %lld pending, %lld refused",
                   d.served, d.issued, d.pending, d.refused);
    }
    tg_https_free(h);
    if (sterm) event_free(sterm);
    if (sint) event_free(sint);
    if (base) event_base_free(base);
    return rc;
}
