/*
 * decode.c — turns the bytes of any file an operator brings into certificates and keys.
 *
 * The format is detected, never asked: PEM blocks in any order with text around them,
 * or one DER object (certificate, PKCS#12, PKCS#7, private key). A password is
 * requested only when the content is encrypted, so that "wrong password" is reported
 * as such and not as a decode error. The key-derivation work of the whole file is
 * checked against the budget (kdfcost.c) before anything is derived, and every
 * derivation is charged against it as it happens. The password is kept in locked
 * memory (tg_secure_alloc) for the length of one file.
 */
#include "x509_int.h"

#include <pthread.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Password state for one file: fetched at most once, wiped at the end. */
typedef struct passctx {
    const tg_passsrc *src;
    tg_err *err;
    char buf[TG_PASS_MAX];
    size_t len;
    int fetched, failed, asked;
    long long spent; /* key-derivation work paid for this file (kdfcost.c) */
    int over;        /* refused for going over the budget: the sentence is in err */
} passctx;

static int pass_fetch(passctx *pc)
{
    if (pc->fetched) return pc->failed ? -1 : 0;
    pc->fetched = 1;
    tg_passsrc none = {0};
    if (tg_pass_get(pc->src ? pc->src : &none, pc->buf, sizeof(pc->buf), &pc->len, pc->err) != 0) {
        pc->failed = 1;
        return -1;
    }
    return 0;
}

static int pem_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    passctx *pc = u;
    pc->asked = 1;
    if (pass_fetch(pc) != 0 || pc->len >= (size_t)size) return -1;
    memcpy(buf, pc->buf, pc->len);
    return (int)pc->len;
}

static int push_cert_alias(tg_bundle *b, X509 *x, const char *alias, tg_err *err)
{
    tg_cert **v = realloc(b->certs, (b->ncerts + 1) * sizeof(*v));
    if (v != NULL) b->certs = v;
    char **a = realloc(b->aliases, (b->ncerts + 1) * sizeof(*a));
    if (a != NULL) b->aliases = a;
    if (v == NULL || a == NULL) {
        X509_free(x);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    a[b->ncerts] = alias ? tg_strdup(alias) : NULL;
    if ((v[b->ncerts] = tg_cert_wrap(x)) == NULL) {
        free(a[b->ncerts]);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    b->ncerts++;
    return 0;
}

static int push_cert(tg_bundle *b, X509 *x, tg_err *err)
{
    return push_cert_alias(b, x, NULL, err);
}

/* Decoding a private key costs about 0.5 ms of OpenSSL's time: a 10 MiB file of plain
 * keys would cost 20 s. No file holds more than this many; the next is refused before it
 * is decoded. */
#define TG_FILE_KEYS_MAX 1000

static int keys_full(const tg_bundle *b, const char *what, tg_err *err)
{
    if (b->nkeys < TG_FILE_KEYS_MAX) return 0;
    return tg_err_set(err, TG_E_INVALID,
                      "%s holds more than 1,000 private keys; such a file is refused (split it)",
                      what);
}

static int push_key(tg_bundle *b, EVP_PKEY *k, tg_err *err)
{
    tg_key **v = realloc(b->keys, (b->nkeys + 1) * sizeof(*v));
    if (v == NULL) {
        EVP_PKEY_free(k);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    b->keys = v;
    if ((v[b->nkeys] = tg_key_wrap(k)) == NULL) return tg_err_set(err, TG_E_INTERNAL, "oom");
    b->nkeys++;
    return 0;
}

void tg_bundle_clear(tg_bundle *b)
{
    for (size_t i = 0; i < b->ncerts; i++) {
        tg_cert_free(b->certs[i]);
        free(b->aliases[i]);
    }
    for (size_t i = 0; i < b->nkeys; i++)
        tg_key_free(b->keys[i]);
    free(b->aliases);
    free(b->certs);
    free(b->keys);
    memset(b, 0, sizeof(*b));
}

static int key_failed(passctx *pc, int encrypted, const char *what, tg_err *err)
{
    if (pc->failed)
        return tg_err_set(err, TG_E_PASSWORD, "%s is encrypted: a password is needed", what);
    ERR_clear_error();
    if (encrypted || pc->asked)
        return tg_err_set(err, TG_E_PASSWORD, "the password for %s is wrong", what);
    return tg_err_set(err, TG_E_INVALID, "%s: the private key is damaged or of an unknown kind",
                      what);
}

static int add_p7_certs(tg_bundle *b, PKCS7 *p7, const char *what, tg_err *err)
{
    STACK_OF(X509) *certs = NULL;
    int nid = OBJ_obj2nid(p7->type);
    if (nid == NID_pkcs7_signed && p7->d.sign != NULL)
        certs = p7->d.sign->cert;
    else if (nid == NID_pkcs7_signedAndEnveloped && p7->d.signed_and_enveloped != NULL)
        certs = p7->d.signed_and_enveloped->cert;
    else
        return tg_err_set(err, TG_E_INVALID, "%s is a PKCS#7 file without certificates", what);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (!X509_up_ref(x)) return tg_err_set(err, TG_E_INTERNAL, "X509_up_ref failed");
        int rc = push_cert(b, x, err);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Charges one derivation to the file's budget before it is made (kdfcost.c): with the
 * PBE algorithm alg, or (alg NULL) a PKCS#12 MAC of mac_iter iterations. Refuses, with
 * the sentence in pc->err (also when the caller decodes quietly), when it would go
 * over. The whole file was checked by tg_bundle_kdf_check first; this also covers what
 * only decryption reveals (the bags inside an encrypted PKCS#12 safe). */
static int kdf_charge(passctx *pc, const X509_ALGOR *alg, long long mac_iter, const char *what)
{
    long long units = TG_KDF_MIN_UNITS, mem = 0;
    if (alg != NULL)
        tg_kdf_units(alg, &units, &mem);
    else if (mac_iter > units)
        units = mac_iter;
    if (!pc->over && mem <= TG_KDF_MEM_MAX && units <= TG_KDF_WORK_MAX - pc->spent) {
        pc->spent += units;
        return 0;
    }
    pc->over = 1;
    return tg_kdf_refuse(what, mem, pc->err);
}

static int sig_charge(passctx *pc, const unsigned char *der, long len, const char *what)
{
    const unsigned char *p = der;
    X509_SIG *sig = d2i_X509_SIG(NULL, &p, len);
    const X509_ALGOR *alg = NULL;
    if (sig != NULL) X509_SIG_get0(sig, &alg, NULL);
    int rc = sig ? kdf_charge(pc, alg, 0, what) : 0;
    X509_SIG_free(sig);
    ERR_clear_error();
    return rc;
}

static int decode_pem_key(tg_bundle *b, const char *name, const char *header,
                          const unsigned char *data, long len, passctx *pc, const char *what,
                          tg_err *err)
{
    int encrypted = strstr(name, "ENCRYPTED") != NULL || strstr(header, "ENCRYPTED") != NULL;
    int rc = keys_full(b, what, err);
    if (rc != 0) return rc;
    if (strcmp(name, PEM_STRING_PKCS8) == 0)
        rc = sig_charge(pc, data, len, what);
    else if (encrypted)
        rc = kdf_charge(pc, NULL, 0, what); /* Proc-Type: 4,ENCRYPTED: one MD5 round */
    if (rc != 0) return rc;
    if (strcmp(name, PEM_STRING_PKCS8INF) == 0 && !encrypted) {
        /* the common case, a plain PKCS#8 key: the thread's decoder, not a new chain of
         * decoders for every key (OpenSSL 3.0: most of a bulk import's time) */
        EVP_PKEY *pkey = tg_x509_pkcs8_decode(data, (size_t)len);
        if (pkey != NULL) return push_key(b, pkey, err);
    }
    BIO *mem = BIO_new(BIO_s_secmem());
    if (mem == NULL || !PEM_write_bio(mem, name, header, data, len)) {
        BIO_free(mem);
        return tg_ossl_err(err, TG_E_INTERNAL, "cannot re-read a key block");
    }
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey_ex(mem, NULL, pem_cb, pc, NULL, NULL);
    BIO_free(mem);
    if (pkey == NULL) return key_failed(pc, encrypted, what, err);
    return push_key(b, pkey, err);
}

static int decode_pem(tg_bundle *b, const unsigned char *data, size_t len, passctx *pc,
                      const char *what, tg_err *err)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = 0, blocks = 0;
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *body = NULL;
        long blen = 0;
        if (!PEM_read_bio_ex(bio, &name, &header, &body, &blen, PEM_FLAG_SECURE)) {
            unsigned long e = ERR_peek_last_error();
            ERR_clear_error();
            if (ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
                rc = tg_err_set(err, TG_E_INVALID,
                                "%s: PEM block %d is damaged (bad base64 or a missing END line)",
                                what, blocks + 1);
            break;
        }
        blocks++;
        const unsigned char *p = body;
        if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ||
            strcmp(name, PEM_STRING_X509_TRUSTED) == 0) {
            X509 *x = strcmp(name, PEM_STRING_X509_TRUSTED) == 0 ? d2i_X509_AUX(NULL, &p, blen)
                                                                 : d2i_X509(NULL, &p, blen);
            if (x == NULL)
                rc = tg_ossl_err(err, TG_E_INVALID, "a certificate in the file is damaged");
            else
                rc = push_cert(b, x, err);
        } else if (strcmp(name, PEM_STRING_PKCS7) == 0 || strcmp(name, "CERTIFICATE CHAIN") == 0) {
            PKCS7 *p7 = d2i_PKCS7(NULL, &p, blen);
            rc = p7 ? add_p7_certs(b, p7, what, err)
                    : tg_ossl_err(err, TG_E_INVALID, "a PKCS#7 block in the file is damaged");
            PKCS7_free(p7);
        } else if (strstr(name, "PRIVATE KEY") != NULL) {
            rc = decode_pem_key(b, name, header, body, blen, pc, what, err);
        } else if (strstr(name, "CERTIFICATE REQUEST") != NULL) {
            rc = tg_err_set(err, TG_E_INVALID,
                            "%s holds a certificate request, not a certificate: have it signed "
                            "by a CA and import the certificate the CA returns",
                            what);
        } /* other blocks (EC PARAMETERS, public keys, DH parameters) are not ours to import */
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_secure_clear_free(body, (size_t)blen);
        if (rc != 0) break;
    }
    BIO_free(bio);
    return rc;
}

static OSSL_PROVIDER *legacy;

static void unload_legacy(void)
{
    OSSL_PROVIDER_unload(legacy);
    legacy = NULL;
}

static void load_legacy(void)
{
    /* RC2 PKCS#12 files need the legacy provider; without it they fail as undecodable.
     * try_load keeps the default provider available beside it. */
    legacy = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
    if (legacy == NULL)
        ERR_clear_error();
    else
        atexit(unload_legacy);
}

int tg_x509_legacy_provider(void)
{
    /* once, whichever thread asks first (a bulk import decodes on several) */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load_legacy);
    return legacy != NULL;
}

/* Walks the safe bags: every certificate (with its alias) and every key, not only the
 * first pair that PKCS12_parse would return. */
static int p12_bags(tg_bundle *b, const STACK_OF(PKCS12_SAFEBAG) * bags, const char *pass,
                    passctx *pc, int depth, const char *what, tg_err *err)
{
    if (depth > 3) return tg_err_set(err, TG_E_INVALID, "%s: PKCS#12 bags nest too deeply", what);
    int passlen = pass ? (int)strlen(pass) : 0;
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        int rc = 0;
        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_keyBag:
        case NID_pkcs8ShroudedKeyBag: {
            EVP_PKEY *pkey;
            if ((rc = keys_full(b, what, err)) != 0) return rc;
            if (PKCS12_SAFEBAG_get_nid(bag) == NID_keyBag) {
                pkey = EVP_PKCS82PKEY(PKCS12_SAFEBAG_get0_p8inf(bag));
            } else {
                const X509_ALGOR *alg = NULL;
                X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
                if ((rc = kdf_charge(pc, alg, 0, what)) != 0) return rc;
                PKCS8_PRIV_KEY_INFO *p8 = PKCS12_decrypt_skey(bag, pass, passlen);
                pkey = p8 ? EVP_PKCS82PKEY(p8) : NULL;
                PKCS8_PRIV_KEY_INFO_free(p8);
            }
            rc = pkey ? push_key(b, pkey, err)
                      : tg_ossl_err(err, TG_E_INVALID,
                                    "a private key in the PKCS#12 file is damaged");
            break;
        }
        case NID_certBag:
            if (PKCS12_SAFEBAG_get_bag_nid(bag) == NID_x509Certificate) {
                X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
                char *alias = PKCS12_get_friendlyname((PKCS12_SAFEBAG *)bag);
                rc = x ? push_cert_alias(b, x, alias, err)
                       : tg_ossl_err(err, TG_E_INVALID,
                                     "a certificate in the PKCS#12 file is damaged");
                OPENSSL_free(alias);
            }
            break;
        case NID_safeContentsBag:
            rc = p12_bags(b, PKCS12_SAFEBAG_get0_safes(bag), pass, pc, depth + 1, what, err);
            break;
        default: /* CRL and secret bags are not ours to import */
            break;
        }
        if (rc != 0) return rc;
    }
    return 0;
}

static int p12_contents(tg_bundle *b, PKCS12 *p12, const char *pass, passctx *pc, const char *what,
                        tg_err *err)
{
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    if (safes == NULL) return tg_ossl_err(err, TG_E_INVALID, "the PKCS#12 contents are damaged");
    int rc = 0;
    for (int i = 0; rc == 0 && i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        int nid = OBJ_obj2nid(p7->type);
        STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
        if (nid == NID_pkcs7_data)
            bags = PKCS12_unpack_p7data(p7);
        else if (nid == NID_pkcs7_encrypted) {
            const X509_ALGOR *alg = p7->d.encrypted && p7->d.encrypted->enc_data
                                        ? p7->d.encrypted->enc_data->algorithm
                                        : NULL;
            if ((rc = kdf_charge(pc, alg, 0, what)) != 0) break;
            bags = PKCS12_unpack_p7encdata(p7, pass, pass ? (int)strlen(pass) : 0);
        }
        if (bags == NULL) {
            unsigned long e = ERR_peek_last_error();
            ERR_clear_error();
            rc = ERR_GET_LIB(e) == ERR_LIB_EVP || ERR_GET_LIB(e) == ERR_LIB_PROV
                     ? tg_err_set(err, TG_E_INVALID,
                                  "%s uses an encryption this system cannot decode", what)
                     : tg_err_set(err, TG_E_INVALID, "%s: the PKCS#12 contents are damaged", what);
            break;
        }
        rc = p12_bags(b, bags, pass, pc, 0, what, err);
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    return rc;
}

static int decode_p12(tg_bundle *b, PKCS12 *p12, passctx *pc, const char *what, tg_err *err)
{
    tg_x509_legacy_provider();
    if (PKCS12_mac_present(p12)) {
        const ASN1_INTEGER *iter = NULL;
        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        int64_t n = 1; /* an absent count means 1 */
        if (iter != NULL && (!ASN1_INTEGER_get_int64(&n, iter) || n <= 0)) n = TG_KDF_WORK_MAX + 1;
        ERR_clear_error();
        /* The MAC tells a wrong password apart from damaged contents. Each try derives
         * the MAC key anew and is charged as such. */
        const char *pass = "";
        if (kdf_charge(pc, NULL, n, what) != 0) return TG_E_INVALID;
        if (PKCS12_verify_mac(p12, "", 0))
            pass = "";
        else if (kdf_charge(pc, NULL, n, what) != 0)
            return TG_E_INVALID;
        else if (PKCS12_verify_mac(p12, NULL, 0))
            pass = NULL;
        else {
            pc->asked = 1;
            if (pass_fetch(pc) != 0) return key_failed(pc, 1, what, err);
            if (kdf_charge(pc, NULL, n, what) != 0) return TG_E_INVALID;
            if (!PKCS12_verify_mac(p12, pc->buf, (int)pc->len)) return key_failed(pc, 1, what, err);
            pass = pc->buf;
        }
        return p12_contents(b, p12, pass, pc, what, err);
    }
    /* No MAC (openssl pkcs12 -nomac): try no password, then ask; a failure to decrypt
     * with the operator's password is then the best sign that it is wrong. */
    tg_err quiet = {0};
    if (p12_contents(b, p12, "", pc, what, &quiet) == 0 && (b->ncerts > 0 || b->nkeys > 0))
        return 0;
    tg_bundle_clear(b);
    if (pc->over) return TG_E_INVALID;
    pc->asked = 1;
    if (pass_fetch(pc) != 0) return key_failed(pc, 1, what, err);
    tg_err inner = {0};
    if (p12_contents(b, p12, pc->buf, pc, what, &inner) == 0) return 0;
    tg_bundle_clear(b);
    ERR_clear_error();
    if (pc->over) return TG_E_INVALID;
    return tg_err_set(
        err, TG_E_PASSWORD,
        "the password for %s is wrong (this file carries no integrity check, so check "
        "the file too if the password is right)",
        what);
}

static int decode_der(tg_bundle *b, const unsigned char *data, size_t len, passctx *pc,
                      const char *what, tg_err *err)
{
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p == data + len) return push_cert(b, x, err);
    X509_free(x);
    p = data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (p12 != NULL && p == data + len) {
        int rc = decode_p12(b, p12, pc, what, err);
        PKCS12_free(p12);
        return rc;
    }
    PKCS12_free(p12);
    p = data;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
    if (p7 != NULL && p == data + len) {
        int rc = add_p7_certs(b, p7, what, err);
        PKCS7_free(p7);
        return rc;
    }
    PKCS7_free(p7);
    p = data;
    X509_SIG *sig = d2i_X509_SIG(NULL, &p, (long)len);
    int encrypted = sig != NULL && p == data + len;
    X509_SIG_free(sig);
    ERR_clear_error();
    if (encrypted) {
        int rc = sig_charge(pc, data, (long)len, what);
        if (rc != 0) return rc;
    }

    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *ctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (ctx == NULL) return tg_ossl_err(err, TG_E_INTERNAL, "no key decoder");
    OSSL_DECODER_CTX_set_pem_password_cb(ctx, pem_cb, pc);
    p = data;
    size_t left = len;
    int ok = OSSL_DECODER_from_data(ctx, &p, &left) == 1 && pkey != NULL && left == 0;
    OSSL_DECODER_CTX_free(ctx);
    if (ok) return push_key(b, pkey, err);
    EVP_PKEY_free(pkey);
    if (encrypted) return key_failed(pc, 1, what, err);
    ERR_clear_error();
    return tg_err_set(err, TG_E_INVALID,
                      "%s is not a certificate or key this program reads (PEM, DER, PKCS#7, "
                      "PKCS#8 or PKCS#12); is the file complete?",
                      what);
}

int tg_bundle_decode(const unsigned char *data, size_t len, const char *what,
                     const tg_passsrc *pass, tg_bundle *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len == 0) return tg_err_set(err, TG_E_INVALID, "%s is empty", what);
    if (len > TG_FILE_MAX) return tg_err_set(err, TG_E_INVALID, "%s is too large", what);
    /* The whole file's key-derivation work is added up before anything is derived. */
    int rc = tg_bundle_kdf_check(data, len, what, NULL, err);
    if (rc != 0) return rc;
    /* the password lives in locked memory that core dumps leave out */
    passctx *pc = tg_secure_alloc(sizeof(*pc));
    if (pc == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    pc->src = pass;
    pc->err = err;
    int is_pem = memmem(data, len, "-----BEGIN ", 11) != NULL;
    rc = is_pem ? decode_pem(out, data, len, pc, what, err)
                : decode_der(out, data, len, pc, what, err);
    tg_secure_free(pc, sizeof(*pc));
    ERR_clear_error();
    if (rc == 0 && out->ncerts == 0 && out->nkeys == 0)
        rc = tg_err_set(err, TG_E_INVALID, "%s holds no certificate or private key", what);
    if (rc != 0) tg_bundle_clear(out);
    return rc;
}
