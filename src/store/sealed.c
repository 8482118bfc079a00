/*
 * sealed.c — AES-256-GCM sealing of secrets at rest.
 *
 * Format: version (1) | nonce (12, random) | ciphertext | tag (16). The associated
 * data binds a sealed blob to the row it belongs to, so a blob copied to another row,
 * or a row whose identity was edited, fails authentication instead of decrypting.
 */
#include "store.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static int gcm(int enc, const unsigned char key[32], const unsigned char nonce[12],
               const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t inlen,
               unsigned char *out, unsigned char tag[16])
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = c != NULL && ctx != NULL && EVP_CipherInit_ex2(ctx, c, key, nonce, enc, NULL) == 1;
    int n = 0;
    if (ok && aadlen > 0) ok = EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) == 1;
    if (ok) ok = EVP_CipherUpdate(ctx, out, &n, in, (int)inlen) == 1;
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1;
    if (ok) ok = EVP_CipherFinal_ex(ctx, out + n, &n) == 1;
    if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return ok;
}

int tg_seal(const unsigned char key[32], const unsigned char *aad, size_t aadlen,
            const unsigned char *pt, size_t ptlen, unsigned char **out, size_t *outlen, tg_err *err)
{
    size_t n = ptlen + TG_SEAL_OVERHEAD;
    unsigned char *b = malloc(n);
    if (b == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    b[0] = 1;
    if (tg_random(b + 1, 12, err) != 0) {
        free(b);
        return TG_E_INTERNAL;
    }
    if (!gcm(1, key, b + 1, aad, aadlen, pt, ptlen, b + 13, b + 13 + ptlen)) {
        free(b);
        return tg_err_set(err, TG_E_INTERNAL, "sealing a secret failed");
    }
    *out = b;
    *outlen = n;
    return 0;
}

int tg_unseal(const unsigned char key[32], const unsigned char *aad, size_t aadlen,
              const unsigned char *in, size_t inlen, unsigned char **pt, size_t *ptlen, tg_err *err)
{
    *pt = NULL;
    *ptlen = 0;
    if (inlen < TG_SEAL_OVERHEAD || in[0] != 1)
        return tg_err_set(err, TG_E_STORE, "a sealed secret in the store is damaged");
    size_t n = inlen - TG_SEAL_OVERHEAD;
    unsigned char *b = malloc(n + 1);
    if (b == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    unsigned char tag[16];
    memcpy(tag, in + 13 + n, 16);
    if (!gcm(0, key, in + 1, aad, aadlen, in + 13, n, b, tag)) {
        tg_free_secret(b, n + 1);
        return tg_err_set(err, TG_E_STORE,
                          "a sealed secret failed its integrity check: the store was altered or "
                          "the master key does not belong to it");
    }
    *pt = b;
    *ptlen = n;
    return 0;
}
