/*
 * key.c — private keys: generation, PKCS#8 (de)serialisation, public key identity.
 *
 * A key's identity everywhere in tlsgate is the SHA-256 of its SubjectPublicKeyInfo;
 * that is how an imported certificate finds the request or key it belongs to.
 */
#include "x509_int.h"
#include "ossl.h"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tg_ossl_err(tg_err *err, int code, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[160] = "";
    if (e != 0) {
        const char *r = ERR_reason_error_string(e);
        if (r != NULL) snprintf(reason, sizeof(reason), " (%s)", r);
    }
    ERR_clear_error();
    return tg_err_set(err, code, "%s%s", what, reason);
}

/* An EC key given with explicit curve parameters that are those of a named curve is
 * re-encoded with the curve's name, so that it matches (and is stored, exported and
 * served like) the same key written the usual way. Parameters of no named curve stay
 * explicit, and tg_key_check_strength refuses them. */
static void ec_name_curve(EVP_PKEY *pkey)
{
    char enc[32] = "", group[64] = "";
    size_t n = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), &n) ||
        strcmp(enc, OSSL_PKEY_EC_ENCODING_EXPLICIT) != 0 ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &n) ||
        group[0] == '\0') {
        ERR_clear_error();
        return;
    }
    EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_GROUP);
    ERR_clear_error();
}

static int ec_explicit(const EVP_PKEY *pkey)
{
    char enc[32] = "";
    size_t n = 0;
    int r =
        EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), &n) &&
        strcmp(enc, OSSL_PKEY_EC_ENCODING_EXPLICIT) == 0;
    ERR_clear_error();
    return r;
}

tg_key *tg_key_adopt(EVP_PKEY *pkey)
{
    return pkey != NULL && EVP_PKEY_up_ref(pkey) == 1 ? tg_key_wrap(pkey) : NULL;
}

tg_key *tg_key_wrap(EVP_PKEY *pkey)
{
    tg_key *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    ec_name_curve(pkey);
    k->pkey = pkey;
    return k;
}

void tg_key_free(tg_key *key)
{
    if (key == NULL) return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

int tg_keyspec_parse(const char *s, tg_keyspec *out, tg_err *err)
{
    if (s == NULL) s = "rsa:2048";
    memset(out, 0, sizeof(*out));
    if (strncasecmp(s, "rsa:", 4) == 0) {
        char *end;
        long bits = strtol(s + 4, &end, 10);
        if (*end != '\0' || end == s + 4)
            return tg_err_set(err, TG_E_INVALID, "key '%s': give rsa:2048, rsa:3072 or rsa:4096",
                              s);
        if (bits < 2048)
            return tg_err_set(err, TG_E_INVALID,
                              "RSA keys below 2048 bits are refused; use rsa:2048 or larger");
        if (bits != 2048 && bits != 3072 && bits != 4096)
            return tg_err_set(err, TG_E_INVALID, "key '%s': RSA sizes are 2048, 3072 and 4096", s);
        out->rsa = 1;
        out->bits = (int)bits;
        return 0;
    }
    if (strcasecmp(s, "ec:p256") == 0 || strcasecmp(s, "ec:p-256") == 0 ||
        strcasecmp(s, "ec:prime256v1") == 0) {
        out->group = "P-256";
        out->bits = 256;
        return 0;
    }
    if (strcasecmp(s, "ec:p384") == 0 || strcasecmp(s, "ec:p-384") == 0 ||
        strcasecmp(s, "ec:secp384r1") == 0) {
        out->group = "P-384";
        out->bits = 384;
        return 0;
    }
    return tg_err_set(err, TG_E_INVALID,
                      "unknown key type '%s'; use rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384",
                      s);
}

int tg_key_generate(const tg_keyspec *spec, tg_key **out, tg_err *err)
{
    EVP_PKEY *pkey = spec->rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)spec->bits)
                               : EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec->group);
    if (pkey == NULL) return tg_ossl_err(err, TG_E_INTERNAL, "key generation failed");
    *out = tg_key_wrap(pkey);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_key_to_der(const tg_key *key, unsigned char **der, size_t *len, tg_err *err)
{
    *der = NULL;
    *len = 0;
    OSSL_ENCODER_CTX *ctx =
        OSSL_ENCODER_CTX_new_for_pkey(key->pkey, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    unsigned char *data = NULL;
    size_t dlen = 0;
    int ok = ctx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0 &&
             OSSL_ENCODER_to_data(ctx, &data, &dlen) == 1;
    OSSL_ENCODER_CTX_free(ctx);
    if (!ok) return tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the private key");
    /* Move into malloc'd memory so that every secret is released the same way. */
    *der = malloc(dlen);
    if (*der == NULL) {
        OPENSSL_clear_free(data, dlen);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    memcpy(*der, data, dlen);
    OPENSSL_clear_free(data, dlen);
    *len = dlen;
    return 0;
}

/* OpenSSL 3.0 builds a decoder chain for every OSSL_DECODER_CTX_new_for_pkey (~0.35 ms,
 * most of the cost of loading a key for a handshake); one context per thread is kept
 * and reused, its output slot emptied after each key. */
typedef struct keydec {
    OSSL_DECODER_CTX *ctx;
    EVP_PKEY *pkey;
} keydec;

static pthread_key_t keydec_key;
static pthread_once_t keydec_once = PTHREAD_ONCE_INIT;

static void keydec_free(void *p)
{
    keydec *d = p;
    if (d == NULL) return;
    OSSL_DECODER_CTX_free(d->ctx);
    EVP_PKEY_free(d->pkey);
    free(d);
}

void tg_x509_thread_done(void);

static void keydec_init(void)
{
    pthread_key_create(&keydec_key, keydec_free);
    atexit(tg_x509_thread_done); /* the main thread's; other threads' go at their exit */
}

static keydec *keydec_get(void)
{
    pthread_once(&keydec_once, keydec_init);
    keydec *d = pthread_getspecific(keydec_key);
    if (d != NULL) return d;
    d = calloc(1, sizeof(*d));
    if (d == NULL) return NULL;
    d->ctx = OSSL_DECODER_CTX_new_for_pkey(&d->pkey, "DER", "PrivateKeyInfo", NULL,
                                           EVP_PKEY_KEYPAIR, NULL, NULL);
    if (d->ctx == NULL || pthread_setspecific(keydec_key, d) != 0) {
        keydec_free(d);
        return NULL;
    }
    return d;
}

void tg_x509_thread_done(void)
{
    pthread_once(&keydec_once, keydec_init);
    keydec_free(pthread_getspecific(keydec_key));
    pthread_setspecific(keydec_key, NULL);
}

EVP_PKEY *tg_x509_pkcs8_decode(const unsigned char *der, size_t len)
{
    keydec *d = keydec_get();
    if (d == NULL) return NULL;
    const unsigned char *p = der;
    size_t left = len;
    int ok = OSSL_DECODER_from_data(d->ctx, &p, &left) == 1 && d->pkey != NULL;
    EVP_PKEY *pkey = d->pkey;
    d->pkey = NULL;
    if (!ok) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NULL;
    }
    return pkey;
}

int tg_key_from_der(const unsigned char *der, size_t len, tg_key **out, tg_err *err)
{
    if (keydec_get() == NULL) return tg_ossl_err(err, TG_E_INTERNAL, "no key decoder");
    EVP_PKEY *pkey = tg_x509_pkcs8_decode(der, len);
    if (pkey == NULL) return tg_err_set(err, TG_E_INVALID, "the private key is not valid PKCS#8");
    *out = tg_key_wrap(pkey);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

static int spki_sha256(EVP_PKEY *pkey, unsigned char out[32], tg_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0) return tg_ossl_err(err, TG_E_INVALID, "cannot encode the public key");
    unsigned int mdlen = 0;
    int ok = EVP_Digest(der, (size_t)n, out, &mdlen, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    return ok ? 0 : tg_ossl_err(err, TG_E_INTERNAL, "SHA-256 failed");
}

int tg_key_spki_sha256(const tg_key *key, unsigned char out[32], tg_err *err)
{
    return spki_sha256(key->pkey, out, err);
}

int tg_cert_spki_sha256(const tg_cert *cert, unsigned char out[32], tg_err *err)
{
    /* The certificate's own SubjectPublicKeyInfo bytes: no key decode, no encoder; only
     * an EC key with explicit parameters is decoded, to be hashed as its key is. */
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(cert->x);
    X509_ALGOR *alg = NULL;
    int ptype = V_ASN1_UNDEF;
    if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, xpk) == 1 && alg != NULL)
        X509_ALGOR_get0(NULL, &ptype, NULL, alg);
    if (ptype == V_ASN1_SEQUENCE) {
        EVP_PKEY *pub = X509_get0_pubkey(cert->x);
        EVP_PKEY *named = pub ? EVP_PKEY_dup(pub) : NULL;
        if (named == NULL)
            return tg_ossl_err(err, TG_E_INVALID, "the certificate's public key is unusable");
        ec_name_curve(named);
        int rc = spki_sha256(named, out, err);
        EVP_PKEY_free(named);
        return rc;
    }
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(xpk, &der);
    if (n <= 0) return tg_ossl_err(err, TG_E_INVALID, "the certificate's public key is unusable");
    unsigned int mdlen = 0;
    int ok = EVP_Digest(der, (size_t)n, out, &mdlen, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    return ok ? 0 : tg_ossl_err(err, TG_E_INTERNAL, "SHA-256 failed");
}

static void describe_pkey(const EVP_PKEY *pkey, char *buf, size_t bufsize)
{
    if (pkey == NULL) {
        snprintf(buf, bufsize, "unknown");
        return;
    }
    if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
        snprintf(buf, bufsize, "%s %d", EVP_PKEY_is_a(pkey, "RSA") ? "RSA" : "RSA-PSS",
                 EVP_PKEY_get_bits(pkey));
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen);
        const char *nice = group;
        if (strcmp(group, "prime256v1") == 0)
            nice = "P-256";
        else if (strcmp(group, "secp384r1") == 0)
            nice = "P-384";
        else if (strcmp(group, "secp521r1") == 0)
            nice = "P-521";
        snprintf(buf, bufsize, "EC %s", nice[0] ? nice : "?");
    } else {
        snprintf(buf, bufsize, "%s %d", EVP_PKEY_get0_type_name(pkey), EVP_PKEY_get_bits(pkey));
    }
}

void tg_key_describe(const tg_key *key, char *buf, size_t bufsize)
{
    describe_pkey(key->pkey, buf, bufsize);
}

void tg_x509_describe_pub(const X509 *x, char *buf, size_t bufsize)
{
    describe_pkey(X509_get0_pubkey(x), buf, bufsize);
}

void tg_x509_pub_type(const X509 *x, char *type, size_t typesize, int *bits)
{
    const EVP_PKEY *pkey = X509_get0_pubkey(x);
    const char *name = pkey ? EVP_PKEY_get0_type_name(pkey) : NULL;
    if (pkey != NULL && EVP_PKEY_is_a(pkey, "EC")) name = "EC";
    if (pkey != NULL && EVP_PKEY_is_a(pkey, "RSA")) name = "RSA";
    snprintf(type, typesize, "%s", name ? name : "?");
    *bits = pkey ? EVP_PKEY_get_bits(pkey) : 0;
}

int tg_key_check_strength(const tg_key *key, tg_err *err)
{
    if (EVP_PKEY_is_a(key->pkey, "RSA") && EVP_PKEY_get_bits(key->pkey) < 2048)
        return tg_err_set(err, TG_E_INVALID,
                          "the RSA key has %d bits; keys below 2048 bits are refused",
                          EVP_PKEY_get_bits(key->pkey));
    if (ec_explicit(key->pkey))
        return tg_err_set(err, TG_E_INVALID,
                          "the EC key has explicit curve parameters that are not those of a "
                          "named curve; use a key on P-256 or P-384");
    if (!EVP_PKEY_is_a(key->pkey, "RSA") && !EVP_PKEY_is_a(key->pkey, "EC") &&
        !EVP_PKEY_is_a(key->pkey, "ED25519"))
        return tg_err_set(err, TG_E_INVALID, "keys of type %s are not supported",
                          EVP_PKEY_get0_type_name(key->pkey));
    return 0;
}

int tg_cert_matches_key(const tg_cert *cert, const tg_key *key)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert->x);
    int r = pub != NULL && EVP_PKEY_eq(pub, key->pkey) == 1;
    ERR_clear_error();
    return r;
}
