/*
 * context.c — the TLS settings and the per-handshake certificate choice (SPEC S1, S2).
 *
 * One SSL_CTX for every listener and thread, with no certificate of its own: the
 * ClientHello callback reads SNI, signature algorithms and cipher suites, asks the name
 * index for a certificate id, takes the certificate, chain and key from the cache and
 * puts them on the connection (like HAProxy's ssl_sock_switchctx_cbk, without a
 * context per certificate). TLS 1.2 and 1.3 only; ECDHE with AEAD ciphers; session
 * tickets under rotating keys (current and previous, so a rotation does not break
 * tickets in flight); ALPN http/1.1.
 */
#include "tls_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ticketkey {
    unsigned char name[16], aes[32], hmac[32];
} ticketkey;

struct tg_tlsctx {
    SSL_CTX *ctx;
    tg_selector *sel;
    pthread_mutex_t tlock;
    ticketkey cur, prev;
    int have_prev;
    atomic_ullong no_cert; /* ClientHellos refused: no certificate to offer */
};

typedef struct served {
    int how;  /* TG_PICK_* */
    int acme; /* an ACME tls-alpn-01 validation (RFC 8737): ALPN acme-tls/1 */
} served;

static int ex_ctx = -1, ex_kr = -1, ex_served = -1;

static void served_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static void ex_init(void)
{
    ex_ctx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ex_kr = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ex_served = SSL_get_ex_new_index(0, NULL, NULL, NULL, served_free);
}

/* ---- reading the ClientHello ---- */

int tg_hello_sni(SSL *ssl, char *out, size_t size)
{
    const unsigned char *p;
    size_t len;
    out[0] = '\0';
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5) return 0;
    size_t list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name) return 0;
    size_t n = ((size_t)p[3] << 8) | p[4];
    if (n + 5 > len || n == 0 || n >= size) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[5 + i] <= 0x20 || p[5 + i] >= 0x7f) return 0; /* not a host name: ignore */
    memcpy(out, p + 5, n);
    out[n] = '\0';
    return 1;
}

static int offers_tls13(SSL *ssl)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) || len < 1)
        return 0;
    for (size_t i = 1; i + 1 < len && i + 1 <= p[0]; i += 2)
        if (p[i] == 0x03 && p[i + 1] == 0x04) return 1;
    return 0;
}

static int ecdsa_sigalg(SSL *ssl)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_signature_algorithms, &p, &len) || len < 2)
        return 0;
    for (size_t i = 2; i + 1 < len; i += 2)
        if (p[i + 1] == 0x03 && p[i] >= 0x04 && p[i] <= 0x06) return 1; /* ecdsa_secp*_sha* */
    return 0;
}

static int ecdsa_cipher(SSL *ssl)
{
    const unsigned char *p;
    size_t len = SSL_client_hello_get0_ciphers(ssl, &p);
    for (size_t i = 0; i + 1 < len; i += 2) {
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, p + i);
        if (c != NULL && SSL_CIPHER_get_auth_nid(c) == NID_auth_ecdsa) return 1;
    }
    return 0;
}

int tg_hello_ecdsa_ok(SSL *ssl)
{
    return ecdsa_sigalg(ssl) && (offers_tls13(ssl) || ecdsa_cipher(ssl));
}

/* Whether the ClientHello's ALPN list offers acme-tls/1. */
static int offers_acme_tls(SSL *ssl)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                   &len) ||
        len < 2 || (size_t)((p[0] << 8) | p[1]) != len - 2)
        return 0;
    for (size_t i = 2; i < len;) {
        size_t n = p[i];
        if (i + 1 + n > len) return 0;
        if (n == 10 && memcmp(p + i + 1, "acme-tls/1", 10) == 0) return 1;
        i += 1 + n;
    }
    return 0;
}

/* RFC 8737: a validation of a name with a pending tls-alpn-01 challenge gets that
 * challenge's certificate (read from the store, so a challenge the CLI wrote a moment ago
 * is answered) and nothing else. 1: done (or refused: *alert set), 0: not one. */
static int acme_hello(SSL *ssl, const char *sni, int *alert, int *rc)
{
    tg_keyring *kr = SSL_get_ex_data(ssl, ex_kr);
    tg_cert *cert = NULL;
    tg_key *key = NULL;
    tg_err err = {0};
    if (kr == NULL || tg_keyring_acme_alpn_get(kr, sni, &cert, &key, &err) != 0) return 0;
    served *s = calloc(1, sizeof(*s));
    int ok =
        s != NULL && SSL_use_cert_and_key(ssl, tg_cert_x509(cert), tg_key_pkey(key), NULL, 1) == 1;
    if (ok) {
        s->how = TG_PICK_EXACT;
        s->acme = 1;
        served_free(NULL, SSL_get_ex_data(ssl, ex_served), NULL, 0, 0, NULL);
        SSL_set_ex_data(ssl, ex_served, s);
    } else {
        free(s);
        ERR_clear_error();
        *alert = SSL_AD_INTERNAL_ERROR;
    }
    tg_cert_free(cert);
    tg_key_free(key);
    *rc = ok ? SSL_CLIENT_HELLO_SUCCESS : SSL_CLIENT_HELLO_ERROR;
    return 1;
}

static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    tg_tlsctx *t = arg;
    char sni[256];
    int has_sni = tg_hello_sni(ssl, sni, sizeof(sni));
    int arc;
    if (has_sni && offers_acme_tls(ssl) && acme_hello(ssl, sni, alert, &arc)) return arc;
    int ecdsa_ok = tg_hello_ecdsa_ok(ssl);
    int how = TG_PICK_NONE;
    pthread_mutex_lock(&t->sel->lock);
    int64_t id = t->sel->index ? tg_index_pick(t->sel->index, has_sni ? sni : NULL, ecdsa_ok,
                                               (long long)time(NULL), &how)
                               : 0;
    pthread_mutex_unlock(&t->sel->lock);
    tg_keyring *kr = SSL_get_ex_data(ssl, ex_kr);
    tg_loaded l;
    tg_err err = {0};
    int got = id != 0 && kr != NULL && tg_certcache_get(t->sel->cache, kr, id, &l, &err) == 0;
    if (!got && kr != NULL && how != TG_PICK_DEFAULT) {
        /* deleted a moment ago, before the index caught up: serve the default instead */
        pthread_mutex_lock(&t->sel->lock);
        id = t->sel->index ? tg_index_pick(t->sel->index, NULL, ecdsa_ok, 0, &how) : 0;
        pthread_mutex_unlock(&t->sel->lock);
        tg_err_clear(&err);
        got = id != 0 && tg_certcache_get(t->sel->cache, kr, id, &l, &err) == 0;
    }
    if (!got) {
        atomic_fetch_add_explicit(&t->no_cert, 1, memory_order_relaxed);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    int ok = SSL_use_cert_and_key(ssl, l.cert, l.key, l.chain, 1) == 1;
    served *s = ok ? calloc(1, sizeof(*s)) : NULL;
    if (s != NULL) {
        s->how = how == TG_PICK_EXACT || how == TG_PICK_WILDCARD ? how : TG_PICK_DEFAULT;
        served_free(NULL, SSL_get_ex_data(ssl, ex_served), NULL, 0, 0, NULL);
        SSL_set_ex_data(ssl, ex_served, s);
    }
    tg_loaded_clear(&l);
    if (!ok) {
        ERR_clear_error();
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

void tg_ssl_served_subject(SSL *ssl, char *out, size_t size)
{
    out[0] = '\0';
    X509 *cert = SSL_get_certificate(ssl);
    BIO *bio = cert ? BIO_new(BIO_s_mem()) : NULL;
    if (bio == NULL) return;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        size_t len = n > 0 ? (size_t)n : 0;
        if (len >= size) len = size - 1;
        memcpy(out, data, len);
        out[len] = '\0';
    }
    BIO_free(bio);
    ERR_clear_error();
}

int tg_ssl_picked(SSL *ssl)
{
    served *s = SSL_get_ex_data(ssl, ex_served);
    return s ? s->how : TG_PICK_NONE;
}

int tg_ssl_acme(SSL *ssl)
{
    served *s = SSL_get_ex_data(ssl, ex_served);
    return s != NULL && s->acme;
}

const char *tg_pick_word(int how)
{
    static const char *const words[] = {[TG_PICK_NONE] = "",
                                        [TG_PICK_EXACT] = "exact",
                                        [TG_PICK_WILDCARD] = "wildcard",
                                        [TG_PICK_DEFAULT] = "default"};
    return how >= TG_PICK_NONE && how <= TG_PICK_DEFAULT ? words[how] : "";
}

const char *tg_ssl_pick_how(SSL *ssl)
{
    return tg_pick_word(tg_ssl_picked(ssl));
}

unsigned long long tg_tlsctx_no_cert(tg_tlsctx *t)
{
    return atomic_load_explicit(&t->no_cert, memory_order_relaxed);
}

/* ---- ALPN ---- */

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    static const unsigned char ours[] = "\x08http/1.1", acme[] = "\x0a"
                                                                 "acme-tls/1";
    served *s = SSL_get_ex_data(ssl, ex_served);
    int is_acme = s != NULL && s->acme;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, is_acme ? acme : ours,
                              is_acme ? sizeof(acme) - 1 : sizeof(ours) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- session tickets ---- */

static int new_ticketkey(ticketkey *k)
{
    return RAND_bytes(k->name, sizeof(k->name)) == 1 &&
           RAND_priv_bytes(k->aes, sizeof(k->aes)) == 1 &&
           RAND_priv_bytes(k->hmac, sizeof(k->hmac)) == 1;
}

void tg_tlsctx_rotate_tickets(tg_tlsctx *t)
{
    ticketkey k;
    if (!new_ticketkey(&k)) return;
    pthread_mutex_lock(&t->tlock);
    t->prev = t->cur;
    t->have_prev = 1;
    t->cur = k;
    pthread_mutex_unlock(&t->tlock);
    OPENSSL_cleanse(&k, sizeof(k));
}

static int on_ticket(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    tg_tlsctx *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_ctx);
    ticketkey k;
    int rc = 1;
    pthread_mutex_lock(&t->tlock);
    if (enc) {
        k = t->cur;
        memcpy(key_name, k.name, 16);
    } else if (memcmp(key_name, t->cur.name, 16) == 0) {
        k = t->cur;
    } else if (t->have_prev && memcmp(key_name, t->prev.name, 16) == 0) {
        k = t->prev;
        rc = 2; /* good, but issue a ticket under the current key */
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&t->tlock);
    if (rc == 0) return 0;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, 32),
                           OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    int ok = (!enc || RAND_bytes(iv, 16) == 1) &&
             (enc ? EVP_EncryptInit_ex2(cctx, EVP_aes_256_cbc(), k.aes, iv, NULL)
                  : EVP_DecryptInit_ex2(cctx, EVP_aes_256_cbc(), k.aes, iv, NULL)) == 1 &&
             EVP_MAC_CTX_set_params(hctx, params) == 1;
    OPENSSL_cleanse(&k, sizeof(k));
    return ok ? rc : -1;
}

/* ---- the context ---- */

tg_tlsctx *tg_tlsctx_new(tg_selector *sel, int tickets, tg_err *err)
{
    pthread_once(&ex_once, ex_init);
    tg_tlsctx *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return NULL;
    }
    t->sel = sel;
    pthread_mutex_init(&t->tlock, NULL);
    SSL_CTX *ctx = t->ctx = SSL_CTX_new(TLS_server_method());
    int ok =
        ctx != NULL && new_ticketkey(&t->cur) &&
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
        /* AES-128-GCM first: the cheapest suite every client has */
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                      "TLS_CHACHA20_POLY1305_SHA256") &&
        SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") &&
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") && SSL_CTX_set_ex_data(ctx, ex_ctx, t);
    if (ok) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_COMPRESSION | SSL_OP_SINGLE_ECDH_USE);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_client_hello_cb(ctx, on_client_hello, t);
        SSL_CTX_set_alpn_select_cb(ctx, on_alpn, t);
        if (tickets) {
            ok = SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket) == 1;
        } else {
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
            ok = SSL_CTX_set_num_tickets(ctx, 0);
        }
    }
    if (!ok) {
        tg_err_set(err, TG_E_INTERNAL, "cannot set up TLS");
        ERR_clear_error();
        tg_tlsctx_free(t);
        return NULL;
    }
    return t;
}

void tg_tlsctx_free(tg_tlsctx *t)
{
    if (t == NULL) return;
    SSL_CTX_free(t->ctx);
    OPENSSL_cleanse(&t->cur, sizeof(t->cur));
    OPENSSL_cleanse(&t->prev, sizeof(t->prev));
    pthread_mutex_destroy(&t->tlock);
    free(t);
}

SSL *tg_tlsctx_ssl(tg_tlsctx *t, tg_keyring *kr)
{
    SSL *ssl = SSL_new(t->ctx);
    if (ssl != NULL) SSL_set_ex_data(ssl, ex_kr, kr);
    return ssl;
}
