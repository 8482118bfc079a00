/*
 * passwd.c — the appliance users' secrets over OpenSSL: password hashes (scrypt through
 * EVP_KDF) and bearer tokens (random, known to the store only by their SHA-256).
 *
 * Hash format (self-describing, so that the cost can rise later without a migration):
 * "scrypt$N$r$p$SALT$HASH", N, r, p in decimal, SALT (16 bytes) and HASH (32 bytes) in
 * standard padded base64. Reading one, the parameters are bounded before anything is
 * derived (a row edited to ask for gigabytes is "damaged", not obeyed). Comparisons are
 * constant-time (CRYPTO_memcmp); a check without a stored hash (unknown user) spends the
 * same work on a dummy so that it takes as long as a wrong password.
 */
#include "x509.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN   16
#define HASH_LEN   32
#define N_LOW      1024ull
#define N_HIGH     (1ull << 20)
#define MEM_HIGH   (64ull * 1024 * 1024) /* 128·r·N bytes a stored hash may ask for */
#define MAXMEM_KDF (MEM_HIGH + 1024 * 1024)

static int scrypt(const unsigned char *pw, size_t len, const unsigned char *salt, size_t saltlen,
                  uint64_t n, uint32_t r, uint32_t p, unsigned char *out, size_t outlen,
                  tg_err *err)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    uint64_t maxmem = MAXMEM_KDF;
    unsigned char empty = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, len ? (void *)pw : &empty, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end()};
    int ok = ctx != NULL && EVP_KDF_derive(ctx, out, outlen, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    if (!ok) return tg_err_set(err, TG_E_INTERNAL, "scrypt failed (out of memory?)");
    return 0;
}

static void b64(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Standard padded base64 of exactly want bytes; -1 otherwise. */
static int unb64(const char *in, size_t inlen, unsigned char *out, size_t want)
{
    if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > want + 2) return -1;
    unsigned char buf[96];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
    if (n < 0) return -1;
    size_t pad = (in[inlen - 1] == '=') + (in[inlen - 2] == '=');
    if ((size_t)n - pad != want) return -1;
    memcpy(out, buf, want);
    return 0;
}

int tg_pwhash(const unsigned char *pw, size_t len, char *out, size_t outsize, tg_err *err)
{
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    int rc = tg_random(salt, sizeof(salt), err);
    if (rc == 0)
        rc = scrypt(pw, len, salt, sizeof(salt), TG_PWHASH_N, TG_PWHASH_R, TG_PWHASH_P, hash,
                    sizeof(hash), err);
    if (rc == 0) {
        char s64[4 * ((SALT_LEN + 2) / 3) + 1], h64[4 * ((HASH_LEN + 2) / 3) + 1];
        b64(salt, sizeof(salt), s64);
        b64(hash, sizeof(hash), h64);
        int n = snprintf(out, outsize, "scrypt$%llu$%u$%u$%s$%s", (unsigned long long)TG_PWHASH_N,
                         (unsigned)TG_PWHASH_R, (unsigned)TG_PWHASH_P, s64, h64);
        if (n < 0 || (size_t)n >= outsize) rc = tg_err_set(err, TG_E_INTERNAL, "hash too long");
    }
    tg_wipe(hash, sizeof(hash));
    return rc;
}

/* A decimal field of at most 9 digits, up to '$'. */
static int field(const char **p, unsigned long long *v)
{
    char *end;
    if (**p < '0' || **p > '9') return -1;
    *v = strtoull(*p, &end, 10);
    if (*end != '$' || end - *p > 9) return -1;
    *p = end + 1;
    return 0;
}

typedef struct parsed {
    unsigned long long n, r, p;
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
} parsed;

static int parse(const char *s, parsed *h)
{
    if (s == NULL || strncmp(s, "scrypt$", 7) != 0) return -1;
    const char *p = s + 7;
    if (field(&p, &h->n) != 0 || field(&p, &h->r) != 0 || field(&p, &h->p) != 0) return -1;
    if (h->n < N_LOW || h->n > N_HIGH || (h->n & (h->n - 1)) != 0 || h->r < 1 || h->r > 32 ||
        h->p < 1 || h->p > 16 || 128ull * h->r * h->n > MEM_HIGH)
        return -1;
    const char *dollar = strchr(p, '$');
    if (dollar == NULL) return -1;
    if (unb64(p, (size_t)(dollar - p), h->salt, SALT_LEN) != 0 ||
        unb64(dollar + 1, strlen(dollar + 1), h->hash, HASH_LEN) != 0)
        return -1;
    return 0;
}

int tg_pwhash_verify(const char *stored, const unsigned char *pw, size_t len, tg_err *err)
{
    parsed h = {.n = TG_PWHASH_N, .r = TG_PWHASH_R, .p = TG_PWHASH_P};
    int known = stored != NULL;
    if (known && parse(stored, &h) != 0)
        return tg_err_set(err, TG_E_STORE,
                          "a stored password hash is damaged or of an unknown "
                          "kind");
    unsigned char got[HASH_LEN];
    /* Unknown user: the same work on a fixed salt, and the same answer as a wrong password. */
    int rc =
        scrypt(pw, len, h.salt, SALT_LEN, h.n, (uint32_t)h.r, (uint32_t)h.p, got, sizeof(got), err);
    int same = rc == 0 && CRYPTO_memcmp(got, h.hash, HASH_LEN) == 0;
    tg_wipe(got, sizeof(got));
    if (rc != 0) return rc;
    return known && same ? 0 : TG_E_PASSWORD;
}

int tg_pwhash_params(const char *stored, unsigned long long *n, unsigned *r, unsigned *p)
{
    parsed h;
    if (parse(stored, &h) != 0) return -1;
    *n = h.n;
    *r = (unsigned)h.r;
    *p = (unsigned)h.p;
    return 0;
}

/* base64url without padding of len bytes into out (4*ceil(len/3)+1 bytes of room). */
static void b64url(const unsigned char *in, size_t len, char *out)
{
    b64(in, len, out);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

int tg_sha256(const void *data, size_t len, unsigned char out[32], tg_err *err)
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return tg_err_set(err, TG_E_INTERNAL, "SHA-256 failed");
    return 0;
}

int tg_token_new(char out[TG_TOKEN_LEN + 1], unsigned char hash[32], tg_err *err)
{
    unsigned char raw[32];
    char text[48];
    int rc = tg_random(raw, sizeof(raw), err);
    if (rc == 0) {
        b64url(raw, sizeof(raw), text); /* 43 characters */
        memcpy(out, TG_TOKEN_PREFIX, 3);
        memcpy(out + 3, text, TG_TOKEN_LEN - 3);
        out[TG_TOKEN_LEN] = '\0';
        rc = tg_sha256(out, strlen(out), hash, err);
    }
    tg_wipe(raw, sizeof(raw));
    tg_wipe(text, sizeof(text));
    if (rc != 0) tg_wipe(out, TG_TOKEN_LEN + 1);
    return rc;
}

int tg_password_new(char *out, size_t outsize, tg_err *err)
{
    unsigned char raw[18]; /* 144 bits: 24 characters of base64url */
    if (outsize < 25) return tg_err_set(err, TG_E_INTERNAL, "password buffer too small");
    int rc = tg_random(raw, sizeof(raw), err);
    if (rc == 0) b64url(raw, sizeof(raw), out);
    tg_wipe(raw, sizeof(raw));
    return rc;
}

int tg_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
