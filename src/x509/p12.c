/*
 * p12.c — PKCS#12 output: AES-256-CBC with PBKDF2 (HMAC-SHA256) for keys and
 * certificates, SHA-256 MAC, 10,000 iterations (what Java's keytool uses).
 */
#include "x509_int.h"

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <stdlib.h>
#include <string.h>

#define TG_P12_ITER 10000

int tg_p12_create(const tg_cert *cert, const tg_key *key, tg_cert *const *chain, size_t nchain,
                  const char *friendly, const char *pass, unsigned char **out, size_t *outlen,
                  tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    STACK_OF(X509) *ca = sk_X509_new_null();
    if (ca == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < nchain; i++)
        sk_X509_push(ca, chain[i]->x);
    PKCS12 *p12 =
        PKCS12_create_ex((char *)pass, (char *)friendly, key ? key->pkey : NULL, cert->x, ca,
                         NID_aes_256_cbc, NID_aes_256_cbc, TG_P12_ITER, -1, 0, NULL, NULL);
    sk_X509_free(ca);
    if (p12 == NULL || !PKCS12_set_mac(p12, pass, -1, NULL, 0, TG_P12_ITER, EVP_sha256())) {
        PKCS12_free(p12);
        return tg_ossl_err(err, TG_E_INTERNAL, "cannot build the PKCS#12 file");
    }
    unsigned char *buf = NULL;
    int n = i2d_PKCS12(p12, &buf);
    PKCS12_free(p12);
    if (n <= 0) return tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the PKCS#12 file");
    *out = malloc((size_t)n);
    if (*out != NULL) memcpy(*out, buf, (size_t)n), *outlen = (size_t)n;
    OPENSSL_free(buf);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}
