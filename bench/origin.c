/*
 * origin.c — the TLS origin server of bench/inspect.sh and bench/server-inspect.sh
 * (loopback only).
 *
 *   origin ROOT_CERT ROOT_KEY WILD_PORT NAME_PORT [BIG_MB [TICKETS [RESUME [CERT KEY]]]]
 * RESUME 1 turns on resumable stateless tickets (ORIGIN_RESUME=1 in inspect.sh): the
 * figures of proxies that keep upstream sessions. CERT and KEY (PEM files): WILD_PORT
 * serves this certificate and key instead of the minted wildcard, and NAME_PORT mints
 * with KEY (server-inspect.sh: the protected server holds the certificate and key its
 * reverse proxies are given).
 *
 * Two listeners on 127.0.0.1, one thread per connection, TLS 1.2/1.3, no session cache
 * and no stateless tickets, so that every upstream handshake a proxy makes is a full one.
 * TLS 1.3 connections still get TICKETS (default 1) stateful tickets after the handshake,
 * which can never resume (nothing is cached): like most servers, the origin sends
 * something right after the handshake, which a client whose socket has Nagle on
 * (no TCP_NODELAY) needs before its first request goes out without a delayed-ACK wait
 * (TICKETS=0 shows that ~40 ms stall per connection).
 *   WILD_PORT  one certificate for CN=*.bench.test, SAN DNS:*.bench.test, issued by ROOT
 *              (not *.test: OpenSSL and curl match a wildcard only over two labels or
 *              more, and tlsgate calls such a SAN malformed; so the names used are
 *              hN.bench.test);
 *   NAME_PORT  a certificate minted for the SNI name of each connection (CN and one
 *              DNS SAN = the name, issued by ROOT, a fresh serial each time), so that a
 *              proxy that caches its forged leaves by the upstream certificate has to
 *              mint for every new name. The last name's certificate is reused when the
 *              same name comes again right away.
 * Both share one P-256 leaf key made at start. HTTP/1.1: GET /big answers BIG_MB
 * (default 100) MB of 'x' (Content-Length), any other path answers "ok\n"; then
 * Connection: close. Prints "ready" on stdout once both ports listen.
 *
 * Build: cc -O2 -Wall -pthread -o origin origin.c -lssl -lcrypto
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

static X509 *root;
static EVP_PKEY *root_key, *leaf_key;
static long big_bytes;
static int tickets = 1;
static int resume = 0; /* argv[7] 1: stateless tickets that resume (the "resume" figures) */
static char big_chunk[1 << 20];
static pthread_mutex_t mint_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_name[256];
static X509 *last_cert;

static void die(const char *what)
{
    fprintf(stderr, "origin: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void add_ext(X509 *c, int nid, const char *val)
{
    X509V3_CTX v;
    X509V3_set_ctx(&v, root, c, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, val);
    if (!e || !X509_add_ext(c, e, -1)) die("extension");
    X509_EXTENSION_free(e);
}

static X509 *mint(const char *name, const char *sans)
{
    X509 *c = X509_new();
    unsigned char sn[16];
    RAND_bytes(sn, sizeof sn);
    sn[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(sn, sizeof sn, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
    BN_free(bn);
    X509_set_version(c, 2);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 30L * 86400);
    X509_NAME *n = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(root));
    X509_set_pubkey(c, leaf_key);
    char san[600];
    snprintf(san, sizeof san, "DNS:%s%s%s", name, sans ? "," : "", sans ? sans : "");
    add_ext(c, NID_subject_alt_name, san);
    add_ext(c, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c, NID_key_usage, "critical,digitalSignature");
    add_ext(c, NID_ext_key_usage, "serverAuth");
    add_ext(c, NID_authority_key_identifier, "keyid:always");
    if (!X509_sign(c, root_key, EVP_sha256())) die("sign");
    return c;
}

/* NAME_PORT: a certificate for this connection's name */
static int on_sni(SSL *s, int *al, void *arg)
{
    (void)al;
    (void)arg;
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (!name || strlen(name) >= sizeof last_name) return SSL_TLSEXT_ERR_ALERT_FATAL;
    pthread_mutex_lock(&mint_lock);
    if (!last_cert || strcmp(name, last_name)) {
        X509_free(last_cert);
        last_cert = mint(name, NULL);
        snprintf(last_name, sizeof last_name, "%s", name);
    }
    int ok = SSL_use_certificate(s, last_cert) == 1 && SSL_use_PrivateKey(s, leaf_key) == 1;
    pthread_mutex_unlock(&mint_lock);
    return ok ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *make_ctx(X509 *cert)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!resume) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    SSL_CTX_set_num_tickets(ctx, (size_t)tickets);
    if (cert) {
        if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, leaf_key) != 1)
            die("ctx cert");
    } else {
        SSL_CTX_set_tlsext_servername_callback(ctx, on_sni);
    }
    return ctx;
}

struct job {
    int fd;
    SSL_CTX *ctx;
};

static void *serve(void *arg)
{
    struct job *j = arg;
    SSL *s = SSL_new(j->ctx);
    SSL_set_fd(s, j->fd);
    char req[4096];
    int got = 0;
    if (SSL_accept(s) != 1) goto out;
    while (got < (int)sizeof req - 1) {
        int r = SSL_read(s, req + got, sizeof req - 1 - got);
        if (r <= 0) goto out;
        got += r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    int big = !strncmp(req, "GET /big", 8) && (req[8] == ' ' || req[8] == '?');
    char head[256];
    long len = big ? big_bytes : 3;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %ld\r\n"
                     "Connection: close\r\n\r\n%s",
                     big ? "application/octet-stream" : "text/plain", len, big ? "" : "ok\n");
    if (SSL_write(s, head, n) != n) goto out;
    for (long left = big ? big_bytes : 0; left > 0;) {
        int w = left < (long)sizeof big_chunk ? (int)left : (int)sizeof big_chunk;
        if (SSL_write(s, big_chunk, w) != w) goto out;
        left -= w;
    }
    SSL_shutdown(s);
out:
    SSL_free(s);
    ERR_clear_error();
    close(j->fd);
    free(j);
    return NULL;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 1024)) {
        perror("origin: bind/listen");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: origin ROOT_CERT ROOT_KEY WILD_PORT NAME_PORT [BIG_MB [TICKETS [RESUME "
                "[CERT KEY]]]]\n");
        return 2;
    }
    big_bytes = (argc > 5 ? atol(argv[5]) : 100) * 1000000L;
    if (argc > 6) tickets = atoi(argv[6]);
    if (argc > 7) resume = atoi(argv[7]);
    memset(big_chunk, 'x', sizeof big_chunk);
    signal(SIGPIPE, SIG_IGN);
    FILE *f = fopen(argv[1], "r");
    if (!f || !(root = PEM_read_X509(f, NULL, NULL, NULL))) die("root certificate");
    fclose(f);
    f = fopen(argv[2], "r");
    if (!f || !(root_key = PEM_read_PrivateKey(f, NULL, NULL, NULL))) die("root key");
    fclose(f);
    X509 *wild = NULL;
    if (argc > 9) {
        f = fopen(argv[8], "r");
        if (!f || !(wild = PEM_read_X509(f, NULL, NULL, NULL))) die("certificate");
        fclose(f);
        f = fopen(argv[9], "r");
        if (!f || !(leaf_key = PEM_read_PrivateKey(f, NULL, NULL, NULL))) die("key");
        fclose(f);
    } else if (!(leaf_key = EVP_EC_gen("P-256"))) {
        die("leaf key");
    }
    if (!wild) wild = mint("*.bench.test", NULL);
    SSL_CTX *wctx = make_ctx(wild), *nctx = make_ctx(NULL);
    struct pollfd p[2] = {{.fd = listen_on(atoi(argv[3])), .events = POLLIN},
                          {.fd = listen_on(atoi(argv[4])), .events = POLLIN}};
    printf("ready\n");
    fflush(stdout);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 << 10);
    for (;;) {
        if (poll(p, 2, -1) < 0) continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN)) continue;
            int fd = accept(p[i].fd, NULL, NULL), one = 1;
            if (fd < 0) continue;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            struct job *j = malloc(sizeof *j);
            j->fd = fd;
            j->ctx = i ? nctx : wctx;
            pthread_t t;
            if (pthread_create(&t, &at, serve, j)) {
                close(fd);
                free(j);
            }
        }
    }
}
