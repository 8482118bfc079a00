/*
 * flow.c — one intercepted connection, from accept to the end of the splice (SPEC I2–I7).
 *
 * Server first: the client's ClientHello is read without being consumed (MSG_PEEK, and a
 * throw-away SSL object on a memory BIO reads it: OpenSSL is the parser), the upstream
 * connection and handshake complete with the client's SNI and ALPN, the upstream chain is
 * verified with x509's verifier, and only then is a leaf forged (mint.c) and the client's
 * handshake run on the socket, its version never above the upstream's and its ALPN the
 * one the upstream chose. A flow that is not decrypted (a port outside the detection
 * ports, not TLS, over --max-conns with bypass) is spliced as plain TCP: its bytes were
 * only peeked, so they pass untouched.
 *
 *   explicit:    HEAD (CONNECT host:port) -> 200 -> HELLO
 *   transparent: original destination (SO_ORIGINAL_DST, or the local address under
 *                TPROXY) -> HELLO
 *   HELLO -> UPSTREAM (connect, TLS) -> verdict -> CLIENT (forged leaf) -> PIPED
 *   a verdict of "block": the client's handshake is answered with an access_denied
 *   alert (and a TCP reset with --tcp-reset).
 *
 * Every flow is in one of its worker's lists: `setup` (deadline TG_PROXY_SETUP_SECS
 * from accept, the oldest evicted at the budget) or `open` (piped; the pipe's
 * inactivity timeout). One SSL log line and the counters are written when it ends.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

enum { S_HEAD, S_HELLO, S_UPSTREAM, S_CLIENT, S_BLOCK, S_PIPED, S_SPLICE };
enum { O_NONE, O_DECRYPTED, O_NOT_DECRYPTED, O_BYPASSED, O_BLOCKED };
static const char *const outcome_name[] = {"failed", "decrypted", "not_decrypted", "bypassed",
                                           "blocked"};

typedef struct flow {
    pworker *pw;
    pxy *px;
    tg_qlink link;
    int state, outcome, fds, active;
    long long t0;          /* tg_now_ms() at accept */
    struct timespec start; /* wall clock, for the log */
    int cfd;               /* the client socket until a bufferevent owns it */
    struct event *ev;
    struct sockaddr_storage peer, dst;
    socklen_t peerlen, dstlen;
    char host[256]; /* CONNECT host, or the original destination's address */
    unsigned port;
    char sni[256];
    unsigned char alpn[256]; /* the client's ALPN offer (wire format) */
    size_t alpnlen;
    int ecdsa_ok, ech, hello_seen;
    struct bufferevent *up, *cl;
    tg_pipe *pipe;
    forged f;            /* the forged leaf, or (server proxy) the protected server's own */
    const scert *served; /* server proxy: which of its certificates (the build outlives it) */
    int pick_how;        /* TG_PICK_*: how it was chosen */
    int unlogged;        /* a server proxy's source exception: untouched, counted only */
    int untrusted;
    int always;      /* an always-decrypt source: the policy's domains do not apply */
    tg_pcap_flow pf; /* the decrypted bytes as a synthetic TCP conversation */
    int pcap_on;
    int content_fd; /* the content log's file, or -1 */
    long long content_written;
    char reason[600];
    char up_sha[65];
    char up_version[16], up_cipher[64], up_alpn[32];
    char upkey[UPSESS_KEY_MAX]; /* where upstream sessions are kept (upsess.c) */
    int up_resumed;
    char cl_version[16], cl_cipher[64], cl_alpn[32];
} flow;

static int ex_flow = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static void ex_init(void)
{
    ex_flow = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static flow *of(tg_qlink *l)
{
    return TG_CONTAINER(l, flow, link);
}

/* An IPv4 or IPv6 address's text and port (0: another family). */
static int addr_split(const struct sockaddr_storage *ss, char ip[INET6_ADDRSTRLEN], unsigned *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *port = ntohs(a->sin_port);
        return inet_ntop(AF_INET, &a->sin_addr, ip, INET6_ADDRSTRLEN) != NULL;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *port = ntohs(a->sin6_port);
        return inet_ntop(AF_INET6, &a->sin6_addr, ip, INET6_ADDRSTRLEN) != NULL;
    }
    return 0;
}

/* "ip:port" or "[ip6]:port" for the log. */
static void addr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port = 0;
    if (!addr_split(ss, ip, &port))
        snprintf(out, size, "?");
    else
        snprintf(out, size, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* ---- the end of a flow: log line, counters, free ---- */

static void log_flow(flow *f)
{
    pxy *px = f->px;
    if (!px->log) return;
    char client[80], t[40], target[300];
    addr_text(&f->peer, client, sizeof(client));
    snprintf(target, sizeof(target), f->host[0] && strchr(f->host, ':') ? "[%s]:%u" : "%s:%u",
             f->host, f->port);
    struct tm tm;
    gmtime_r(&f->start.tv_sec, &tm);
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char fsha[65] = "";
    if (f->f.leaf) tg_hex(f->f.sha256, 32, fsha);
    json_t *j = json_object();
    if (j == NULL) return;
    json_object_set_new(j, "time", json_string(t));
    json_object_set_new(j, "time_unix", json_integer((json_int_t)f->start.tv_sec));
    json_object_set_new(j, "proxy", json_string(px->name));
    json_object_set_new(j, "kind", json_string(px->server ? "server" : "client"));
    json_object_set_new(j, "client", json_string(client));
    json_object_set_new(j, "target", json_string(target));
    json_object_set_new(j, "sni", f->sni[0] ? json_string(f->sni) : json_null());
    json_object_set_new(j, "outcome", json_string(outcome_name[f->outcome]));
    json_object_set_new(j, "reason", json_string(f->reason));
    json_object_set_new(j, "untrusted_ca", json_boolean(f->untrusted));
    json_object_set_new(j, "client_version",
                        f->cl_version[0] ? json_string(f->cl_version) : json_null());
    json_object_set_new(j, "client_cipher",
                        f->cl_cipher[0] ? json_string(f->cl_cipher) : json_null());
    json_object_set_new(j, "client_alpn", f->cl_alpn[0] ? json_string(f->cl_alpn) : json_null());
    json_object_set_new(j, "upstream_version",
                        f->up_version[0] ? json_string(f->up_version) : json_null());
    json_object_set_new(j, "upstream_cipher",
                        f->up_cipher[0] ? json_string(f->up_cipher) : json_null());
    json_object_set_new(j, "upstream_resumed", json_boolean(f->up_resumed));
    json_object_set_new(j, "upstream_alpn", f->up_alpn[0] ? json_string(f->up_alpn) : json_null());
    json_object_set_new(j, "upstream_sha256", f->up_sha[0] ? json_string(f->up_sha) : json_null());
    json_object_set_new(j, "forged_sha256",
                        fsha[0] && !px->server ? json_string(fsha) : json_null());
    if (px->server) { /* the protected server's own certificate, as shown to the client */
        json_object_set_new(j, "certificate",
                            f->served ? json_string(f->served->name) : json_null());
        json_object_set_new(j, "certificate_sha256", fsha[0] ? json_string(fsha) : json_null());
        json_object_set_new(j, "certificate_pick",
                            f->served ? json_string(tg_pick_word(f->pick_how)) : json_null());
    }
    json_object_set_new(j, "bytes_from_client",
                        json_integer(f->pipe ? (json_int_t)tg_pipe_bytes(f->pipe, 0) : 0));
    json_object_set_new(j, "bytes_from_upstream",
                        json_integer(f->pipe ? (json_int_t)tg_pipe_bytes(f->pipe, 1) : 0));
    json_object_set_new(j, "duration_ms", json_integer((json_int_t)(tg_now_ms() - f->t0)));
    sslog_write(px->svc, j);
}

static void flow_free(flow *f)
{
    pstats *st = f->px->st;
    switch (f->outcome) {
    case O_DECRYPTED:
        atomic_fetch_add(&st->decrypted, 1);
        break;
    case O_NOT_DECRYPTED:
        atomic_fetch_add(&st->not_decrypted, 1);
        break;
    case O_BYPASSED:
        atomic_fetch_add(&st->bypassed, 1);
        break;
    case O_BLOCKED:
        atomic_fetch_add(&st->blocked, 1);
        break;
    }
    if ((f->outcome != O_NONE || f->hello_seen) && !f->unlogged) log_flow(f);
    if (f->pcap_on) tg_pcap_flow_close(f->pw->svc->pcap, &f->pf);
    if (f->content_fd >= 0) close(f->content_fd);
    tg_connq_remove(&f->link);
    if (f->ev) event_free(f->ev);
    if (f->cfd >= 0) evutil_closesocket(f->cfd);
    struct bufferevent *bevs[] = {f->cl, f->up};
    for (int i = 0; i < 2; i++)
        if (bevs[i]) {
            SSL *ssl = bufferevent_openssl_get_ssl(bevs[i]);
            if (ssl) SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
            bufferevent_free(bevs[i]);
        }
    tg_pipe_free(f->pipe);
    ERR_clear_error();
    forged_clear(&f->f);
    if (f->active) atomic_fetch_sub(&st->active, 1);
    tg_worker_conn_end(f->pw->w, f->fds);
    pxy_unref(f->px);
    free(f);
}

static void fail(flow *f, int outcome, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(flow *f, int outcome, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
    if (outcome != O_NONE) f->outcome = outcome;
    flow_free(f);
}

static void set_reason(flow *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(flow *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
}

/* ---- lists: deadlines and eviction ---- */

void flow_setup_late(tg_qlink *l, void *arg)
{
    (void)arg;
    flow *f = of(l);
    fail(f, O_NONE, "setup took longer than %d s", TG_PROXY_SETUP_SECS);
}

int flows_evict(tg_worker *w, void *arg)
{
    pworker *pw = pworker_of(arg, w);
    if (pw == NULL || pw->setup.head == NULL) return 0;
    fail(of(pw->setup.head), O_NONE, "evicted at the connection cap");
    return 1;
}

void flows_close_all(tg_worker *w, void *arg)
{
    pworker *pw = pworker_of(arg, w);
    if (pw == NULL) return;
    while (pw->setup.head)
        flow_free(of(pw->setup.head));
    while (pw->open.head)
        flow_free(of(pw->open.head));
}

static void piped_done(void *arg)
{
    flow_free(arg);
}

/* The pipe's tap: decrypted bytes into the PCAP and the content log (side 0: from the
 * client). */
static void tap(void *arg, int side, const void *data, size_t len)
{
    flow *f = arg;
    if (f->pcap_on) tg_pcap_flow_data(f->pw->svc->pcap, &f->pf, side == 0, data, len);
    if (f->content_fd >= 0)
        content_write(f->pw->svc, f->content_fd, &f->content_written, tg_now_ms() - f->t0,
                      side == 0, data, len);
}

static void start_pipe(flow *f)
{
    tg_connq_push(&f->pw->open, &f->link);
    f->pipe = tg_pipe_new(f->cl, f->up, TG_PROXY_IDLE_SECS, piped_done, f);
    if (f->pipe == NULL) {
        fail(f, O_NONE, "out of memory");
        return;
    }
    if (f->outcome == O_DECRYPTED) {
        char target[300];
        snprintf(target, sizeof(target), "%s_%u", f->host, f->port);
        f->content_fd = content_open(f->pw->svc, f->sni[0] ? f->sni : target, f->t0, &f->start);
    }
    if (f->outcome == O_DECRYPTED && f->pw->svc->pcap != NULL) {
        struct sockaddr_storage up;
        socklen_t ul = sizeof(up);
        const struct sockaddr *server = (const struct sockaddr *)&f->dst;
        if (f->dstlen == 0 &&
            getpeername(bufferevent_getfd(f->up), (struct sockaddr *)&up, &ul) == 0)
            server = (const struct sockaddr *)&up;
        tg_pcap_flow_init(&f->pf, (const struct sockaddr *)&f->peer, server);
        tg_pcap_flow_open(f->pw->svc->pcap, &f->pf);
        f->pcap_on = 1;
    }
    if (f->pcap_on || f->content_fd >= 0) tg_pipe_tap(f->pipe, tap, f);
    f->cl = f->up = NULL; /* the pipe owns both sides now */
    tg_pipe_start(f->pipe);
}

/* ---- not decrypted: plain TCP both ways ---- */

static int connect_upstream(flow *f, struct bufferevent *bev)
{
    if (f->dstlen > 0)
        return bufferevent_socket_connect(bev, (struct sockaddr *)&f->dst, (int)f->dstlen);
    return bufferevent_socket_connect_hostname(bev, f->pw->dns, AF_UNSPEC, f->host, (int)f->port);
}

static void splice(flow *f, int outcome, const char *why)
{
    set_reason(f, "%s", why);
    f->outcome = outcome;
    f->state = S_SPLICE;
    if (f->ev) {
        event_free(f->ev);
        f->ev = NULL;
    }
    if (tg_worker_charge(f->pw->w) != 0) {
        fail(f, O_NONE, "no descriptor left for the upstream connection");
        return;
    }
    f->fds++;
    struct event_base *b = tg_worker_base(f->pw->w);
    f->cl = bufferevent_socket_new(b, f->cfd, BEV_OPT_CLOSE_ON_FREE);
    if (f->cl == NULL) {
        fail(f, O_NONE, "out of memory");
        return;
    }
    f->cfd = -1;
    f->up = bufferevent_socket_new(b, -1, BEV_OPT_CLOSE_ON_FREE);
    if (f->up == NULL || connect_upstream(f, f->up) != 0) {
        fail(f, O_NONE, "cannot connect to %s:%u", f->host, f->port);
        return;
    }
    if (bufferevent_getfd(f->up) >= 0) tg_nodelay(bufferevent_getfd(f->up));
    start_pipe(f);
}

/* ---- the client side: the forged leaf, or the block ---- */

int flow_hello_cb(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    pthread_once(&ex_once, ex_init);
    flow *f = SSL_get_ex_data(ssl, ex_flow);
    if (f == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (f->state == S_HELLO) { /* the probe: read, then stop */
        f->hello_seen = 1;
        tg_hello_sni(ssl, f->sni, sizeof(f->sni));
        f->ecdsa_ok = tg_hello_ecdsa_ok(ssl);
        const unsigned char *p;
        size_t len;
        if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                      &len) &&
            len > 2 && len - 2 <= sizeof(f->alpn)) {
            memcpy(f->alpn, p + 2, len - 2);
            f->alpnlen = len - 2;
        }
        f->ech = SSL_client_hello_get0_ext(ssl, 0xfe0d, &p, &len);
        *alert = SSL_AD_HANDSHAKE_FAILURE;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (f->state == S_BLOCK) {
        *alert = SSL_AD_ACCESS_DENIED;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

int flow_new_session(SSL *ssl, SSL_SESSION *sess)
{
    flow *f = SSL_get_ex_data(ssl, ex_flow);
    if (f == NULL || f->upkey[0] == '\0') return 0;
    /* a copy: OpenSSL marks the connection's own session unresumable when the connection
     * is freed without a close_notify, which is how flows end */
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy != NULL) upsess_put(f->px->sessions, f->upkey, copy);
    return 0;
}

int flow_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                 const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    flow *f = SSL_get_ex_data(ssl, ex_flow);
    size_t want = f ? strlen(f->up_alpn) : 0;
    for (unsigned int i = 0; want > 0 && i < inlen; i += 1u + in[i])
        if (in[i] == want && i + 1 + want <= inlen && memcmp(in + i + 1, f->up_alpn, want) == 0) {
            *out = in + i + 1;
            *outlen = in[i];
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK; /* upstream chose none: neither do we */
}

static void tcp_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    flow *f = arg;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (f->state == S_BLOCK) { /* the alert is out (or the client left) */
        if (f->px->tcp_reset) tcp_reset(bufferevent_getfd(bev));
        f->outcome = O_BLOCKED;
        flow_free(f);
        return;
    }
    if (!(what & BEV_EVENT_CONNECTED)) {
        atomic_fetch_add(&f->px->st->client_failures, 1);
        pxy *px = f->px;
        const char *host = f->sni[0] ? f->sni : f->host;
        if (px->fail_open_secs > 0 && !f->untrusted &&
            failopen_add(px->st->fo, host, px->fail_open_secs))
            tg_serve_say("client proxy %s: a client rejected the forged certificate for %s; "
                         "its flows pass through uninspected for %d s (--fail-open)",
                         px->name, host, px->fail_open_secs);
        unsigned long e = bufferevent_get_openssl_error(bev);
        char buf[120] = "the client closed the connection";
        if (e) ERR_error_string_n(e, buf, sizeof(buf));
        if (px->server)
            fail(f, O_NONE, "client handshake failed (%s)", buf);
        else
            fail(f, O_NONE, "client handshake failed (%s): it may not trust the signing CA", buf);
        return;
    }
    snprintf(f->cl_version, sizeof(f->cl_version), "%s", SSL_get_version(ssl));
    snprintf(f->cl_cipher, sizeof(f->cl_cipher), "%s", SSL_get_cipher_name(ssl));
    const unsigned char *a;
    unsigned int alen;
    SSL_get0_alpn_selected(ssl, &a, &alen);
    if (a != NULL && alen < sizeof(f->cl_alpn)) {
        memcpy(f->cl_alpn, a, alen);
        f->cl_alpn[alen] = '\0';
    }
    f->state = S_PIPED;
    f->outcome = O_DECRYPTED;
    start_pipe(f);
}

/* Runs the client's handshake: with the forged leaf, or (block) to answer it with an
 * alert. max_version: the upstream's, so the client never gets more than it. */
static void client_handshake(flow *f, int max_version)
{
    SSL *ssl = SSL_new(f->px->cctx);
    if (ssl == NULL || !SSL_set_ex_data(ssl, ex_flow, f)) {
        SSL_free(ssl);
        fail(f, O_NONE, "out of memory");
        return;
    }
    if (f->state == S_CLIENT) {
        if (SSL_use_cert_and_key(ssl, f->f.leaf, f->f.key, f->f.chain, 1) != 1 ||
            (max_version && !SSL_set_max_proto_version(ssl, max_version))) {
            SSL_free(ssl);
            fail(f, O_NONE, "cannot use the forged certificate");
            return;
        }
    }
    f->cl = bufferevent_openssl_socket_new(tg_worker_base(f->pw->w), f->cfd, ssl,
                                           BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (f->cl == NULL) {
        SSL_free(ssl);
        fail(f, O_NONE, "out of memory");
        return;
    }
    f->cfd = -1;
    bufferevent_openssl_set_allow_dirty_shutdown(f->cl, 1);
    bufferevent_setcb(f->cl, NULL, NULL, client_event, f);
    bufferevent_enable(f->cl, EV_READ | EV_WRITE);
}

static void block(flow *f, const char *why)
{
    set_reason(f, "%s", why);
    f->outcome = O_BLOCKED;
    f->state = S_BLOCK;
    if (f->up) {
        SSL *ssl = bufferevent_openssl_get_ssl(f->up);
        if (ssl) SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        bufferevent_free(f->up);
        f->up = NULL;
    }
    if (f->ev) {
        event_free(f->ev);
        f->ev = NULL;
    }
    client_handshake(f, 0);
}

/* ---- the upstream: its handshake, then the verdict ---- */

/* Every certificate of the chain whose RSA/DSA key is shorter than --min-key-bits. */
static int key_too_small(const pxy *px, STACK_OF(X509) * chain, char *why, size_t size)
{
    if (px->min_key_bits <= 0) return 0;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        EVP_PKEY *k = X509_get0_pubkey(sk_X509_value(chain, i));
        if (k == NULL) continue;
        int id = EVP_PKEY_get_base_id(k);
        if ((id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS || id == EVP_PKEY_DSA) &&
            EVP_PKEY_get_bits(k) < px->min_key_bits) {
            snprintf(why, size,
                     "certificate %d of the upstream chain has a %d-bit key, below "
                     "the proxy's minimum of %d",
                     i, EVP_PKEY_get_bits(k), px->min_key_bits);
            return 1;
        }
    }
    return 0;
}

static int out_of_date(STACK_OF(X509) * chain)
{
    time_t now = time(NULL);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_cmp_time(X509_get0_notAfter(x), &now) < 0 ||
            X509_cmp_time(X509_get0_notBefore(x), &now) > 0)
            return 1;
    }
    return 0;
}

/* 1 valid, 0 not (why says it), -1 no verdict. */
static int verify_upstream(flow *f, STACK_OF(X509) * chain, char *why, size_t size)
{
    int n = sk_X509_num(chain);
    if (n <= 0) {
        snprintf(why, size, "the upstream sent no certificate");
        return 0;
    }
    tg_cert *v[TG_VERIFY_MAX_CERTS * 2];
    int k = 0;
    for (int i = 0; i < n && k < (int)(sizeof(v) / sizeof(v[0])); i++)
        if ((v[k] = tg_cert_adopt(sk_X509_value(chain, i))) != NULL) k++;
    if (k == 0) return -1;
    const char *host = f->sni[0] ? f->sni : f->host;
    tg_verify_req req = {.leaf = v[0],
                         .anchors = f->px->anchors,
                         .nanchors = f->px->nanchors,
                         .candidates = v + 1,
                         .ncandidates = (size_t)(k - 1),
                         .host = host[0] ? host : NULL,
                         .purpose = TG_PURPOSE_SERVER};
    tg_verify_result res = {0};
    tg_err err = {0};
    int rc = tg_verify(&req, &res, &err);
    int verdict = rc != 0 ? -1 : res.valid;
    if (rc == 0) snprintf(why, size, "%s", res.reason);
    tg_verify_result_clear(&res);
    for (int i = 0; i < k; i++)
        tg_cert_free(v[i]);
    return verdict;
}

/* A flow without SNI, decrypted anyway: does the upstream certificate name a host the
 * policy never decrypts (its DNS SANs, else its CN)? */
static int cert_never(const policy *pol, X509 *leaf, char *why, size_t size)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int hit = 0, any = 0;
    for (int i = 0; !hit && gens && i < sk_GENERAL_NAME_num(gens) && i < 1000; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS) continue;
        any = 1;
        char name[256];
        int n = ASN1_STRING_length(g->d.dNSName);
        if (n <= 0 || n >= (int)sizeof(name)) continue;
        memcpy(name, ASN1_STRING_get0_data(g->d.dNSName), (size_t)n);
        name[n] = '\0';
        if (memchr(name, '\0', (size_t)n)) continue;
        /* a wildcard SAN "*.b.c" stands for the names below b.c */
        hit = policy_host(pol, name[0] == '*' && name[1] == '.' ? name + 2 : name, why, size);
        if (!hit && name[0] == '*' && name[1] == '.') {
            char probe[260];
            snprintf(probe, sizeof(probe), "x%s", name + 1);
            hit = policy_host(pol, probe, why, size);
        }
    }
    GENERAL_NAMES_free(gens);
    if (!hit && !any) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) >
            0)
            hit = policy_host(pol, cn, why, size);
    }
    return hit;
}

/* A server proxy: the protected server's own certificate for the client, by its SNI. */
static void server_side(flow *f, struct bufferevent *bev, SSL *ssl, const char *why)
{
    set_reason(f, "%s", why);
    f->served = spxy_pick(f->px, f->sni, f->ecdsa_ok, &f->pick_how);
    if (forged_copy(&f->served->f, &f->f) != 0) {
        block(f, "out of memory");
        return;
    }
    f->state = S_CLIENT;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(bev, EV_READ); /* nothing moves until the client is ready */
    client_handshake(f, SSL_version(ssl));
}

static void upstream_event(struct bufferevent *bev, short what, void *arg)
{
    flow *f = arg;
    pxy *px = f->px;
    if (!(what & BEV_EVENT_CONNECTED)) {
        atomic_fetch_add(&px->st->upstream_failures, 1);
        unsigned long e = bufferevent_get_openssl_error(bev);
        int dns = bufferevent_socket_get_dns_error(bev);
        char buf[160] = "connection closed";
        if (dns)
            snprintf(buf, sizeof(buf), "%s", evutil_gai_strerror(dns));
        else if (e)
            ERR_error_string_n(e, buf, sizeof(buf));
        else if (what & BEV_EVENT_ERROR)
            snprintf(buf, sizeof(buf), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        char why[520];
        snprintf(why, sizeof(why), "upstream %s:%u: %s", f->host, f->port, buf);
        block(f, why);
        return;
    }
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    tg_nodelay(bufferevent_getfd(bev)); /* a name resolved late made its socket only now */
    f->up_resumed = SSL_session_reused(ssl);
    snprintf(f->up_version, sizeof(f->up_version), "%s", SSL_get_version(ssl));
    snprintf(f->up_cipher, sizeof(f->up_cipher), "%s", SSL_get_cipher_name(ssl));
    const unsigned char *a;
    unsigned int alen;
    SSL_get0_alpn_selected(ssl, &a, &alen);
    if (a != NULL && alen < sizeof(f->up_alpn)) {
        memcpy(f->up_alpn, a, alen);
        f->up_alpn[alen] = '\0';
    }
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    X509 *leaf = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
    if (leaf == NULL) {
        atomic_fetch_add(&px->st->upstream_failures, 1);
        block(f, "the upstream sent no certificate");
        return;
    }
    if (!px->server && !f->always && !f->sni[0] && px->pol != NULL) {
        char why[300];
        if (cert_never(px->pol, leaf, why, sizeof(why))) {
            /* the client's bytes were only peeked: drop our TLS and splice instead */
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
            bufferevent_free(f->up);
            f->up = NULL;
            f->fds--;
            tg_worker_conn_end(f->pw->w, 1);
            char b[340];
            snprintf(b, sizeof(b), "%s (by the certificate: no SNI)", why);
            splice(f, O_NOT_DECRYPTED, b);
            return;
        }
    }
    unsigned char sha[32];
    unsigned int shalen = 0;
    X509_digest(leaf, EVP_sha256(), sha, &shalen);
    tg_hex(sha, 32, f->up_sha);
    if (px->server && !px->verify) {
        server_side(f, bev, ssl, "the real server's certificate is not verified (no trust store)");
        return;
    }
    if (px->server && px->nanchors == 0) {
        atomic_fetch_add(&px->st->invalid_upstream, 1);
        block(f, "the real server's certificate cannot be verified: the proxy's trust store has "
                 "no certificates");
        return;
    }
    char why[TG_ERR_MAX];
    const char *host = f->sni[0] ? f->sni : f->host;
    unsigned char vkey[32];
    int valid = -1, keyed = verdict_key(chain, host, vkey) == 0;
    if (!keyed || !verdict_get(px->verdicts, vkey, &valid, why, sizeof(why))) {
        valid = verify_upstream(f, chain, why, sizeof(why));
        if (valid == 1 && key_too_small(px, chain, why, sizeof(why))) valid = 0;
        if (keyed && valid >= 0) {
            struct tm tm;
            long long na =
                ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) ? (long long)timegm(&tm) : 0;
            verdict_put(px->verdicts, vkey, valid, why, na);
        }
    }
    if (valid < 0) {
        block(f, "the upstream certificate could not be checked");
        return;
    }
    if (!valid && px->server) { /* no forged stand-in here: the flow ends */
        atomic_fetch_add(&px->st->invalid_upstream, 1);
        char b[TG_ERR_MAX + 48];
        snprintf(b, sizeof(b), "the real server's certificate is invalid: %s", why);
        block(f, b);
        return;
    }
    if (px->server) {
        server_side(f, bev, ssl, "the real server's certificate is valid");
        return;
    }
    if (!valid) {
        atomic_fetch_add(&px->st->invalid_upstream, 1);
        int expired = out_of_date(chain);
        if (expired ? px->block_expired : px->block_invalid) {
            char b[TG_ERR_MAX + 40];
            snprintf(b, sizeof(b), "upstream certificate %s: %s",
                     expired ? "out of date" : "invalid", why);
            block(f, b);
            return;
        }
        f->untrusted = 1; /* the client sees the failure itself */
    }
    set_reason(f, "%s", valid ? "upstream certificate valid" : why);
    int hit = 0;
    long long us = 0;
    tg_err err = {0};
    if (mint_get(f->pw->svc->cache, f->untrusted ? px->untrusted : px->sign, leaf, sha,
                 !f->ecdsa_ok, &f->f, &hit, &us, &err) != 0) {
        block(f, "cannot forge a certificate");
        return;
    }
    atomic_fetch_add(hit ? &px->st->cache_hits : &px->st->cache_misses, 1);
    if (!hit) {
        atomic_fetch_add(&px->st->mints, 1);
        atomic_fetch_add(&px->st->mint_us, (unsigned long long)us);
    }
    f->state = S_CLIENT;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(bev, EV_READ); /* nothing moves until the client is ready */
    client_handshake(f, SSL_version(ssl));
}

/* Removes "h2" from a wire-format ALPN list (HTTP/2 downgrade). */
static size_t alpn_without_h2(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i + 1 + in[i] <= n; i += 1u + in[i])
        if (!(in[i] == 2 && memcmp(in + i + 1, "h2", 2) == 0)) {
            memcpy(out + o, in + i, 1u + in[i]);
            o += 1u + in[i];
        }
    return o;
}

static void upstream_start(flow *f)
{
    pxy *px = f->px;
    if (tg_worker_charge(f->pw->w) != 0) {
        fail(f, O_NONE, "no descriptor left for the upstream connection");
        return;
    }
    f->fds++;
    f->state = S_UPSTREAM;
    SSL *ssl = SSL_new(px->uctx);
    if (ssl == NULL) {
        fail(f, O_NONE, "out of memory");
        return;
    }
    if (f->sni[0]) SSL_set_tlsext_host_name(ssl, f->sni);
    snprintf(f->upkey, sizeof(f->upkey), "%s|%s|%u", f->sni, f->host, f->port);
    SSL_SESSION *sess = upsess_get(px->sessions, f->upkey);
    if (sess != NULL) {
        SSL_set_session(ssl, sess);
        /* a resumption offered; the server may refuse it */ /* a resumption offered; the server
                                                                may refuse it */
        SSL_SESSION_free(sess);
    }
    SSL_set_ex_data(ssl, ex_flow, f);
    if (f->alpnlen > 0) {
        unsigned char alpn[256];
        size_t n = px->http2_downgrade ? alpn_without_h2(f->alpn, f->alpnlen, alpn) : f->alpnlen;
        if (!px->http2_downgrade) memcpy(alpn, f->alpn, n);
        if (n > 0) SSL_set_alpn_protos(ssl, alpn, (unsigned int)n);
    }
    f->up = bufferevent_openssl_socket_new(tg_worker_base(f->pw->w), -1, ssl,
                                           BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (f->up == NULL) {
        SSL_free(ssl);
        fail(f, O_NONE, "out of memory");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f->up, 1);
    bufferevent_setcb(f->up, NULL, NULL, upstream_event, f);
    if (connect_upstream(f, f->up) != 0) {
        atomic_fetch_add(&px->st->upstream_failures, 1);
        block(f, "cannot connect to the upstream");
        return;
    }
    if (bufferevent_getfd(f->up) >= 0) tg_nodelay(bufferevent_getfd(f->up)); /* else below */
    bufferevent_enable(f->up, EV_READ | EV_WRITE);
}

/* ---- the ClientHello, peeked ---- */

static void on_hello(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    flow *f = arg;
    unsigned char buf[TG_PROXY_HELLO_MAX];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        fail(f, O_NONE, "the client closed before its ClientHello");
        return;
    }
    if (buf[0] != 0x16) {    /* not a TLS handshake record */
        f->hello_seen = 1;   /* logged */
        if (f->px->server) { /* cleartext (plain or STARTTLS-style) on a TLS server's port */
            atomic_fetch_add(&f->px->st->cleartext, 1);
            if (f->px->tcp_reset) tcp_reset(fd);
            fail(f, O_BLOCKED, "cleartext on a TLS server's port: dropped");
        } else if (f->px->non_tls == ACT_BLOCK) {
            if (f->px->tcp_reset) tcp_reset(fd);
            fail(f, O_BLOCKED, "not TLS on a detection port: blocked");
        } else
            splice(f, O_BYPASSED, "not TLS on a detection port: passed through");
        return;
    }
    SSL *probe = SSL_new(f->pw->probe);
    BIO *rb = BIO_new_mem_buf(buf, (int)n), *wb = BIO_new(BIO_s_mem());
    if (probe == NULL || rb == NULL || wb == NULL) {
        SSL_free(probe);
        BIO_free(rb);
        BIO_free(wb);
        fail(f, O_NONE, "out of memory");
        return;
    }
    SSL_set_bio(probe, rb, wb);
    SSL_set_ex_data(probe, ex_flow, f);
    SSL_set_accept_state(probe);
    int r = SSL_do_handshake(probe);
    int e = SSL_get_error(probe, r);
    SSL_free(probe);
    ERR_clear_error();
    if (!f->hello_seen) {
        if (e == SSL_ERROR_WANT_READ && (size_t)n < sizeof(buf)) return; /* more to come */
        f->hello_seen = 1;
        fail(f, O_BLOCKED, "not a TLS ClientHello this proxy can read");
        return;
    }
    event_free(f->ev);
    f->ev = NULL;
    pxy *px = f->px;
    const char *host = f->sni[0] ? f->sni : f->host;
    /* a server proxy holds the server's keys: it decrypts with or without SNI */
    int act = px->server ? ACT_DECRYPT : f->ech ? px->ech : !f->sni[0] ? px->no_sni : ACT_DECRYPT;
    const char *kind = f->ech ? "a ClientHello with ECH" : "a ClientHello without SNI";
    if (act == ACT_BYPASS) {
        char why[80];
        snprintf(why, sizeof(why), "%s: passed through", kind);
        splice(f, O_BYPASSED, why);
        return;
    }
    if (act == ACT_BLOCK) {
        char why[80];
        snprintf(why, sizeof(why), "%s: blocked", kind);
        block(f, why);
        return;
    }
    char why[300];
    if (!f->always && f->sni[0] && policy_host(px->pol, f->sni, why, sizeof(why))) {
        splice(f, O_NOT_DECRYPTED, why);
        return;
    }
    if (px->fail_open_secs > 0 && failopen_has(px->st->fo, host)) {
        splice(f, O_BYPASSED, "fail-open: its client rejected the forged certificate lately");
        return;
    }
    upstream_start(f);
}

static void to_hello(flow *f)
{
    f->state = S_HELLO;
    if (f->ev) event_free(f->ev);
    /* edge-triggered: the peeked bytes stay in the socket, only new ones wake us */
    f->ev = event_new(tg_worker_base(f->pw->w), f->cfd, EV_READ | EV_PERSIST | EV_ET, on_hello, f);
    if (f->ev == NULL || event_add(f->ev, NULL) != 0) {
        fail(f, O_NONE, "out of memory");
        return;
    }
    on_hello(f->cfd, EV_READ, f);
}

/* A server proxy's flow: its source exceptions pass untouched; the rest is decrypted. */
static void decide_server(flow *f)
{
    char net[TG_CIDR_TEXT_MAX], why[TG_CIDR_TEXT_MAX + 40];
    atomic_fetch_add(&f->px->st->active, 1); /* the counters' `active` (flow_free ends it) */
    f->active = 1;
    if (cidr_find(f->px->except, f->px->nexcept, &f->peer, net, sizeof(net))) {
        snprintf(why, sizeof(why), "source exception %s", net);
        f->unlogged = 1; /* the reference: an exception's flow is not an inspected session */
        splice(f, O_BYPASSED, why);
        return;
    }
    to_hello(f);
}

/* The flow's target is known: decrypt or not. */
static void decide(flow *f)
{
    pxy *px = f->px;
    if (px->server) {
        decide_server(f);
        return;
    }
    /* a flow a transparent server proxy protects is the server proxy's (the reference's
     * precedence: server policies before client policies) */
    pxy *sp = f->dstlen > 0 ? server_for(px->svc, &f->dst) : NULL;
    if (sp != NULL) {
        f->px = sp; /* the reference server_for gave */
        pxy_unref(px);
        atomic_fetch_add(&sp->st->conns, 1);
        decide_server(f);
        return;
    }
    if (!pxy_port_on(px, f->port)) {
        splice(f, O_NOT_DECRYPTED, "port is not a detection port");
        return;
    }
    char why[300];
    int src = policy_source(px->pol, &f->peer, why, sizeof(why));
    if (src == POLICY_NEVER) {
        splice(f, O_NOT_DECRYPTED, why);
        return;
    }
    f->always = src == POLICY_ALWAYS;
    if (px->max_conns > 0) {
        int n = atomic_fetch_add(&px->st->active, 1) + 1;
        f->active = 1;
        if (n > px->max_conns) {
            if (!atomic_exchange(&px->st->over_max, 1))
                tg_serve_say("client proxy %s: more than %d concurrent sessions: new ones are %s "
                             "until it falls below",
                             px->name, px->max_conns,
                             px->over_block ? "blocked" : "passed through without inspection");
            if (px->over_block) {
                f->hello_seen = 1;
                if (px->tcp_reset) tcp_reset(f->cfd);
                fail(f, O_BLOCKED, "over the proxy's --max-conns (%d)", px->max_conns);
            } else
                splice(f, O_BYPASSED, "over the proxy's --max-conns: passed through");
            return;
        }
        if (n <= px->max_conns - px->max_conns / 10 && atomic_exchange(&px->st->over_max, 0))
            tg_serve_say("client proxy %s: below --max-conns %d again", px->name, px->max_conns);
    }
    to_hello(f);
}

/* ---- explicit mode: the CONNECT head ---- */

static void answer(int fd, const char *status, const char *body)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    if (n > 0) (void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL);
}

/* "host:port" or "[v6]:port" into f->host, f->port (and f->dst for a literal address). */
static int parse_target(flow *f, const char *t, size_t len)
{
    char buf[300];
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, t, len);
    buf[len] = '\0';
    char *colon = strrchr(buf, ':'), *end;
    if (colon == NULL) return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) return -1;
    *colon = '\0';
    char *h = buf;
    if (h[0] == '[') {
        size_t hl = strlen(h);
        if (hl < 3 || h[hl - 1] != ']') return -1;
        h[hl - 1] = '\0';
        h++;
    }
    size_t hl = strlen(h);
    if (hl == 0 || hl >= sizeof(f->host)) return -1;
    for (size_t i = 0; i < hl; i++)
        if (h[i] <= 0x20 || h[i] >= 0x7f) return -1;
    memcpy(f->host, h, hl + 1);
    f->port = (unsigned)port;
    /* a literal address needs no resolver */
    memset(&f->dst, 0, sizeof(f->dst));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&f->dst;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&f->dst;
    if (evutil_inet_pton(AF_INET, f->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        f->dstlen = sizeof(*a4);
    } else if (evutil_inet_pton(AF_INET6, f->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        f->dstlen = sizeof(*a6);
    }
    return 0;
}

static void on_head(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    flow *f = arg;
    char buf[TG_PROXY_HEAD_MAX + 1];
    ssize_t n = recv(fd, buf, TG_PROXY_HEAD_MAX, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        fail(f, O_NONE, "the client closed before its request");
        return;
    }
    buf[n] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL) {
        if (n < TG_PROXY_HEAD_MAX && memchr(buf, '\0', (size_t)n) == NULL) return; /* more */
        answer(fd, "431 Request Header Fields Too Large", "The request head is too large.\n");
        fail(f, O_NONE, "request head over %d bytes", TG_PROXY_HEAD_MAX);
        return;
    }
    size_t headlen = (size_t)(end - buf) + 4;
    /* consume exactly the head: what follows (a ClientHello) stays in the socket */
    if (recv(fd, buf, headlen, 0) != (ssize_t)headlen) {
        fail(f, O_NONE, "cannot read the request head");
        return;
    }
    buf[headlen] = '\0';
    char *sp1 = strchr(buf, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        answer(fd, "400 Bad Request", "This is an HTTP CONNECT proxy.\n");
        fail(f, O_NONE, "not an HTTP request");
        return;
    }
    if ((size_t)(sp1 - buf) == 3 && strncmp(buf, "GET", 3) == 0 &&
        capage_answer(f->px, fd, sp1 + 1, (size_t)(sp2 - sp1 - 1))) {
        fail(f, O_NONE, "the signing CA page");
        return;
    }
    if ((size_t)(sp1 - buf) != 7 || strncmp(buf, "CONNECT", 7) != 0) {
        answer(fd, "405 Method Not Allowed",
               "This is an HTTP CONNECT proxy for TLS: use it as an https proxy.\n");
        fail(f, O_NONE, "not a CONNECT request");
        return;
    }
    if (parse_target(f, sp1 + 1, (size_t)(sp2 - sp1 - 1)) != 0) {
        answer(fd, "400 Bad Request", "CONNECT needs HOST:PORT.\n");
        fail(f, O_NONE, "a CONNECT target that is not HOST:PORT");
        return;
    }
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (send(fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(ok) - 1)) {
        fail(f, O_NONE, "cannot answer the CONNECT request");
        return;
    }
    event_free(f->ev);
    f->ev = NULL;
    decide(f);
}

/* ---- transparent mode: where the client was going ---- */

/* The original destination of a redirected connection (SO_ORIGINAL_DST, or the local
 * address under TPROXY): 0; -2 when it is listen itself (nobody redirected this: it
 * would loop); -1 when it cannot be found. */
static int original_dst(int fd, const char *listen, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct sockaddr_storage local;
    socklen_t ll = sizeof(local);
    *sl = sizeof(*ss);
    if (getsockname(fd, (struct sockaddr *)&local, &ll) != 0) return -1;
    int level = local.ss_family == AF_INET6 ? SOL_IPV6 : SOL_IP;
    int opt = local.ss_family == AF_INET6 ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST;
    if (getsockopt(fd, level, opt, ss, sl) != 0) { /* TPROXY: the local address is it */
        *ss = local;
        *sl = ll;
    }
    struct sockaddr_storage lst;
    int lsl = sizeof(lst);
    if (evutil_parse_sockaddr_port(listen, (struct sockaddr *)&lst, &lsl) == 0 &&
        evutil_sockaddr_cmp((struct sockaddr *)ss, (struct sockaddr *)&lst, 1) == 0)
        return -2;
    return 0;
}

/* The flow goes to dst: its host text and port. */
static int set_dst(flow *f, const struct sockaddr_storage *dst, socklen_t len)
{
    if (len > sizeof(f->dst)) return -1;
    memcpy(&f->dst, dst, len);
    f->dstlen = len;
    char ip[INET6_ADDRSTRLEN];
    if (!addr_split(&f->dst, ip, &f->port)) return -1;
    snprintf(f->host, sizeof(f->host), "%s", ip);
    return 0;
}

static flow *flow_new(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, pxy *px)
{
    pthread_once(&ex_once, ex_init);
    pworker *pw = pworker_of(px->svc, w);
    flow *f = pw ? calloc(1, sizeof(*f)) : NULL;
    if (f == NULL) {
        evutil_closesocket(fd);
        tg_worker_conn_end(w, 1);
        return NULL;
    }
    pxy_ref(px);
    f->pw = pw;
    f->px = px;
    f->cfd = fd;
    f->content_fd = -1;
    f->fds = 1;
    f->t0 = tg_now_ms();
    clock_gettime(CLOCK_REALTIME, &f->start);
    if (peerlen > 0 && (size_t)peerlen <= sizeof(f->peer)) {
        memcpy(&f->peer, peer, (size_t)peerlen);
        f->peerlen = (socklen_t)peerlen;
    }
    atomic_fetch_add(&px->st->conns, 1);
    tg_connq_push(&pw->setup, &f->link);
    return f;
}

void flow_accept(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg)
{
    pxy *px = arg;
    flow *f = flow_new(w, fd, peer, peerlen, px);
    if (f == NULL) return;
    if (px->server) { /* explicit: a reverse proxy in front of one real server */
        if (set_dst(f, &px->upstream, px->upstreamlen) != 0) {
            fail(f, O_NONE, "the proxy's upstream is not an address");
            return;
        }
        decide(f);
        return;
    }
    if (px->transparent) {
        struct sockaddr_storage dst;
        socklen_t dl;
        int rc = original_dst(fd, px->listen, &dst, &dl);
        if (rc != 0 || set_dst(f, &dst, dl) != 0) {
            fail(f, O_NONE,
                 rc == -2 ? "a direct connection to a transparent proxy (not "
                            "redirected): refused"
                          : "cannot find the original destination");
            return;
        }
        decide(f);
        return;
    }
    f->state = S_HEAD;
    f->ev = event_new(tg_worker_base(w), fd, EV_READ | EV_PERSIST | EV_ET, on_head, f);
    if (f->ev == NULL || event_add(f->ev, NULL) != 0) {
        fail(f, O_NONE, "out of memory");
        return;
    }
    on_head(fd, EV_READ, f);
}

void flow_intake(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg)
{
    intake *in = arg;
    struct sockaddr_storage dst;
    socklen_t dl;
    int rc = original_dst(fd, in->addr, &dst, &dl);
    pxy *px = rc == 0 ? server_for(in->svc, &dst) : NULL;
    if (px == NULL) { /* nothing of ours: closed, counted in the intercept's line */
        atomic_fetch_add(rc == 0 ? &in->unmatched : &in->direct, 1);
        evutil_closesocket(fd);
        tg_worker_conn_end(w, 1);
        return;
    }
    flow *f = flow_new(w, fd, peer, peerlen, px);
    pxy_unref(px); /* the flow holds its own */
    if (f == NULL) return;
    if (set_dst(f, &dst, dl) != 0) {
        fail(f, O_NONE, "cannot find the original destination");
        return;
    }
    decide(f);
}
