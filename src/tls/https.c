/*
 * https.c — a small HTTPS server on libevent's evhttp for the appliance's own listeners
 * (the admin API, the EST server of an enrollment CA): the parts every such listener
 * must get right once.
 *
 * Invariants:
 *   - a connection is never served without TLS: when its TLS state cannot be made the
 *     process stops rather than let evhttp fall back to a plain socket;
 *   - each connection's record lives exactly as long as its SSL object (ex_data, freed
 *     by the ex_data free callback), so a deadline never touches a connection evhttp has
 *     freed already;
 *   - a request must arrive whole within the deadline of the connection or of the
 *     previous answer (a deadline, not an inactivity timer: a client dripping bytes is
 *     cut at it); accept pauses at the connection cap and resumes below it;
 *   - everything runs on the loop given to tg_https_new.
 */
#include "tls_int.h"
#include "../x509/ossl.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct hconn {
    tg_https *h;
    SSL *ssl;
    struct event *deadline;
    int nodelay; /* TCP_NODELAY set (on its first request: evhttp hands over no socket) */
    void *data;  /* the listener's own record (tg_https_conn_data) */
} hconn;

struct tg_https {
    tg_https_opts o;
    SSL_CTX *ctx;
    struct evhttp *http;
    struct evconnlistener *lev;
    int nconns, paused, closing;
};

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void pause_check(tg_https *h)
{
    if (h->closing) return;
    if (h->nconns >= h->o.max_conns && !h->paused) {
        evconnlistener_disable(h->lev);
        h->paused = 1;
    } else if (h->nconns < h->o.max_conns && h->paused) {
        evconnlistener_enable(h->lev);
        h->paused = 0;
    }
}

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    hconn *c = ptr;
    if (c == NULL) return; /* every SSL object of the process passes here */
    if (c->h->o.conn_free && c->data) c->h->o.conn_free(c->data);
    event_free(c->deadline);
    c->h->nconns--;
    pause_check(c->h);
    free(c);
}

static void ex_init(void)
{
    ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

/* The deadline passed: the socket is shut, evhttp sees the end of it and frees the
 * connection (and with it the SSL and this record). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hconn *c = arg;
    int sfd = SSL_get_fd(c->ssl);
    if (sfd >= 0) shutdown(sfd, SHUT_RDWR);
}

static void arm(hconn *c)
{
    struct timeval tv = {c->h->o.deadline_secs, 0};
    evtimer_add(c->deadline, &tv);
}

static struct bufferevent *on_bev(struct event_base *base, void *arg)
{
    tg_https *h = arg;
    hconn *c = calloc(1, sizeof(*c));
    SSL *ssl = SSL_new(h->ctx);
    struct event *t = c ? evtimer_new(base, on_deadline, c) : NULL;
    if (c == NULL || ssl == NULL || t == NULL || SSL_set_ex_data(ssl, ex_index, c) != 1) {
        /* evhttp would serve this connection in clear text: never */
        fprintf(stderr, "tlsgate: %s: out of memory for a connection's TLS state\n", h->o.what);
        abort();
    }
    *c = (hconn){.h = h, .ssl = ssl, .deadline = t};
    h->nconns++;
    pause_check(h);
    arm(c);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        fprintf(stderr, "tlsgate: %s: out of memory for a connection\n", h->o.what);
        abort();
    }
    return bev;
}

static hconn *conn_of(struct evhttp_request *req)
{
    struct evhttp_connection *ec = evhttp_request_get_connection(req);
    struct bufferevent *bev = ec ? evhttp_connection_get_bufferevent(ec) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl ? SSL_get_ex_data(ssl, ex_index) : NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    tg_https *h = arg;
    hconn *c = conn_of(req);
    if (c) arm(c); /* the next request's deadline runs from this one */
    if (c && !c->nodelay) {
        /* an answer is written as head and body records: without this the second waits
         * for the client's delayed ACK (40 ms a request) */
        int one = 1, fd = SSL_get_fd(c->ssl);
        if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->nodelay = 1;
    }
    h->o.on_request(req, h->o.arg);
}

int tg_https_new(struct event_base *base, const tg_https_opts *o, SSL_CTX *ctx, tg_https **out,
                 tg_err *err)
{
    *out = NULL;
    pthread_once(&ex_once, ex_init);
    if (ex_index < 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (evutil_parse_sockaddr_port(o->listen, (struct sockaddr *)&ss, &len) != 0)
        return tg_err_fset(err, TG_E_USAGE, o->field, "the %s address '%s' is not ADDRESS:PORT",
                           o->what, o->listen);
    tg_https *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->http = evhttp_new(base)) == NULL) {
        free(h);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    h->o = *o;
    h->lev = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128,
        (struct sockaddr *)&ss, len);
    if (h->lev == NULL) {
        int rc =
            tg_err_fset(err, TG_E_IO, o->field, "cannot listen on %s for the %s: %s", o->listen,
                        o->what, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        evhttp_free(h->http);
        free(h);
        return rc;
    }
    if (evhttp_bind_listener(h->http, h->lev) == NULL) {
        evconnlistener_free(h->lev);
        evhttp_free(h->http);
        free(h);
        return tg_err_set(err, TG_E_INTERNAL, "cannot attach the %s listener", o->what);
    }
    h->ctx = ctx;
    evhttp_set_bevcb(h->http, on_bev, h);
    evhttp_set_gencb(h->http, on_request, h);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)o->max_headers);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)o->max_body);
    evhttp_set_timeout(h->http, o->deadline_secs);
    evhttp_set_allowed_methods(h->http, (ev_uint16_t)o->methods);
    *out = h;
    return 0;
}

SSL_CTX *tg_https_ctx(tg_keyring *kr, const char *cert, const char *what, tg_err *err)
{
    tg_served s;
    if (tg_keyring_serve_named(kr, cert, &s, err) != 0) return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int ok = ctx != NULL && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
             SSL_CTX_use_certificate(ctx, tg_cert_x509(s.cert)) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, tg_key_pkey(s.key)) == 1;
    for (size_t i = 0; ok && i < s.nchain; i++) {
        tg_cert *link = NULL;
        ok = tg_cert_from_der(s.chain[i].der, s.chain[i].derlen, &link, NULL) == 0 &&
             SSL_CTX_add1_chain_cert(ctx, tg_cert_x509(link)) == 1;
        tg_cert_free(link);
    }
    if (ok) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    } else {
        tg_err_set(err, TG_E_INTERNAL, "cannot use the certificate '%s' for the %s",
                   s.name ? s.name : "default", what);
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    tg_served_clear(&s);
    return ctx;
}

void tg_https_set_ctx(tg_https *h, SSL_CTX *ctx)
{
    SSL_CTX_free(h->ctx); /* open connections keep theirs: SSL objects hold their context */
    h->ctx = ctx;
}

SSL *tg_https_ssl(struct evhttp_request *req)
{
    hconn *c = conn_of(req);
    return c ? c->ssl : NULL;
}

void **tg_https_conn_data(struct evhttp_request *req)
{
    hconn *c = conn_of(req);
    return c ? &c->data : NULL;
}

void tg_https_free(tg_https *h)
{
    if (h == NULL) return;
    h->closing = 1;       /* evhttp_free frees its listener first: no pause/resume after that */
    evhttp_free(h->http); /* closes the listener and every connection */
    SSL_CTX_free(h->ctx);
    free(h);
}
