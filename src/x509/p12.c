/*
 * p12.c — what leaves the store: PKCS#12 in three profiles, keys alone as PEM, and
 * PKCS#7 certificate bundles.
 *
 * The modern profile is OpenSSL 3's and keytool's: AES-256-CBC with PBKDF2
 * (HMAC-SHA256) and a SHA-256 MAC, 10,000 iterations. The legacy profiles exist only
 * for clients that cannot read it and are chosen explicitly by the operator.
 */
#include "x509_int.h"

#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>

#define TG_P12_ITER 10000

static int copy_out(const unsigned char *buf, size_t n, unsigned char **out, size_t *outlen,
                    tg_err *err)
{
    *out = malloc(n + 1);
    if (*out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    memcpy(*out, buf, n);
    (*out)[n] = '\0';
    *outlen = n;
    return 0;
}

int tg_p12_create(const tg_cert *cert, const tg_key *key, tg_cert *const *chain, size_t nchain,
                  const char *friendly, const char *pass, tg_p12_profile profile,
                  unsigned char **out, size_t *outlen, tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    int nid_key = NID_aes_256_cbc, nid_cert = NID_aes_256_cbc;
    const EVP_MD *mac = EVP_sha256();
    if (profile == TG_P12_LEGACY_DES) {
        nid_key = nid_cert = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
        mac = EVP_sha1();
    } else if (profile == TG_P12_LEGACY_RC2) {
        if (!tg_x509_legacy_provider())
            return tg_err_fset(err, TG_E_INTERNAL, "p12_profile",
                               "RC2 needs OpenSSL's legacy provider, which is not installed; use "
                               "the legacy-des profile");
        nid_key = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
        nid_cert = NID_pbe_WithSHA1And40BitRC2_CBC;
        mac = EVP_sha1();
    }
    STACK_OF(X509) *ca = sk_X509_new_null();
    if (ca == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < nchain; i++)
        sk_X509_push(ca, chain[i]->x);
    PKCS12 *p12 = PKCS12_create_ex((char *)pass, (char *)friendly, key ? key->pkey : NULL, cert->x,
                                   ca, nid_key, nid_cert, TG_P12_ITER, -1, 0, NULL, NULL);
    sk_X509_free(ca);
    if (p12 == NULL || !PKCS12_set_mac(p12, pass, -1, NULL, 0, TG_P12_ITER, mac)) {
        PKCS12_free(p12);
        return tg_ossl_err(err, TG_E_INTERNAL, "cannot build the PKCS#12 file");
    }
    unsigned char *buf = NULL;
    int n = i2d_PKCS12(p12, &buf);
    PKCS12_free(p12);
    if (n <= 0) return tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the PKCS#12 file");
    int rc = copy_out(buf, (size_t)n, out, outlen, err);
    OPENSSL_clear_free(buf, (size_t)n);
    return rc;
}

int tg_key_export_pem(const tg_key *key, int traditional, const char *pass, char **pem, size_t *len,
                      tg_err *err)
{
    *pem = NULL;
    *len = 0;
    const char *structure = traditional ? "type-specific"
                            : pass      ? "EncryptedPrivateKeyInfo"
                                        : "PrivateKeyInfo";
    if (traditional && !EVP_PKEY_is_a(key->pkey, "RSA") && !EVP_PKEY_is_a(key->pkey, "EC"))
        return tg_err_set(err, TG_E_INVALID,
                          "only RSA and EC keys have a traditional (PKCS#1/SEC1) form; use p8");
    OSSL_ENCODER_CTX *ctx =
        OSSL_ENCODER_CTX_new_for_pkey(key->pkey, EVP_PKEY_KEYPAIR, "PEM", structure, NULL);
    int ok = ctx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0;
    if (ok && pass != NULL)
        ok = OSSL_ENCODER_CTX_set_cipher(ctx, "AES-256-CBC", NULL) == 1 &&
             OSSL_ENCODER_CTX_set_passphrase(ctx, (const unsigned char *)pass, strlen(pass)) == 1;
    unsigned char *data = NULL;
    size_t n = 0;
    if (ok) ok = OSSL_ENCODER_to_data(ctx, &data, &n) == 1;
    OSSL_ENCODER_CTX_free(ctx);
    if (!ok) return tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the private key");
    int rc = copy_out(data, n, (unsigned char **)pem, len, err);
    OPENSSL_clear_free(data, n);
    return rc;
}

int tg_p7_create(tg_cert *const *certs, size_t n, int pem, unsigned char **out, size_t *outlen,
                 tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    PKCS7 *p7 = PKCS7_new();
    int ok =
        p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed) && PKCS7_content_new(p7, NID_pkcs7_data);
    for (size_t i = 0; ok && i < n; i++)
        ok = PKCS7_add_certificate(p7, certs[i]->x);
    BIO *bio = ok ? BIO_new(BIO_s_mem()) : NULL;
    ok = bio != NULL && (pem ? PEM_write_bio_PKCS7(bio, p7) : i2d_PKCS7_bio(bio, p7));
    PKCS7_free(p7);
    int rc;
    if (!ok) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the PKCS#7 file");
    } else {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        rc = copy_out((unsigned char *)data, (size_t)len, out, outlen, err);
    }
    BIO_free(bio);
    return rc;
}
