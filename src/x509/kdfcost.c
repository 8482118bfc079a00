/*
 * kdfcost.c — the password-hashing budget of one input file.
 *
 * Password-based encryption names its own cost (PBKDF2 and PKCS#12 iteration counts,
 * scrypt N, r and p), and one file may name it many times: PEM blocks, a PKCS#12 MAC,
 * its encrypted safes and every shrouded key bag. A 391-byte file can ask for an hour of
 * CPU. So, before anything is derived, tg_bundle_kdf_check adds up the work of every
 * encrypted part in sight and refuses a file over TG_KDF_WORK_MAX; while decoding,
 * decode.c charges each derivation again against the same budget (tg_kdf_units), which
 * also covers the bags an encrypted PKCS#12 safe reveals only once decrypted.
 *
 * A unit is one PBKDF2 or PKCS#12 KDF iteration, or one step of scrypt's N·r·p (both
 * about 0.3 µs of CPU here); every derivation counts at least TG_KDF_MIN_UNITS (so that
 * thousands of cheap blocks cannot add up either), and an attempt that is repeated (a
 * PKCS#12 MAC is tried with no password, the empty one and the operator's) counts each
 * time. scrypt's memory, 128·r·(N+p) bytes, is bounded per derivation by TG_KDF_MEM_MAX.
 * Parameters that do not fit a 64-bit integer, or are not positive, count as over the
 * budget: OpenSSL could not derive with them anyway.
 */
#include "x509_int.h"

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <string.h>

#define OVER (TG_KDF_WORK_MAX + 1)

/* v as a positive count, or OVER when it is absent, not positive or too large. */
static long long count(const ASN1_INTEGER *v)
{
    int64_t n = 0;
    if (v == NULL || !ASN1_INTEGER_get_int64(&n, v) || n <= 0 || n > TG_KDF_WORK_MAX) return OVER;
    return (long long)n;
}

static int is_pkcs12_pbe(int nid)
{
    return nid == NID_pbe_WithSHA1And128BitRC4 || nid == NID_pbe_WithSHA1And40BitRC4 ||
           nid == NID_pbe_WithSHA1And3_Key_TripleDES_CBC ||
           nid == NID_pbe_WithSHA1And2_Key_TripleDES_CBC ||
           nid == NID_pbe_WithSHA1And128BitRC2_CBC || nid == NID_pbe_WithSHA1And40BitRC2_CBC;
}

void tg_kdf_units(const X509_ALGOR *alg, long long *units, long long *mem)
{
    *units = TG_KDF_MIN_UNITS;
    *mem = 0;
    if (alg == NULL || alg->parameter == NULL) return;
    int nid = OBJ_obj2nid(alg->algorithm);
    long long work = TG_KDF_MIN_UNITS;
    if (nid == NID_pbes2) {
        PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        int kdf = p2 && p2->keyfunc ? OBJ_obj2nid(p2->keyfunc->algorithm) : NID_undef;
        if (kdf == NID_id_pbkdf2) {
            PBKDF2PARAM *k =
                ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), p2->keyfunc->parameter);
            work = k ? count(k->iter) : OVER;
            PBKDF2PARAM_free(k);
        } else if (kdf == NID_id_scrypt) {
            SCRYPT_PARAMS *sp =
                ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), p2->keyfunc->parameter);
            long long n = sp ? count(sp->costParameter) : OVER;
            long long r = sp ? count(sp->blockSize) : OVER;
            long long p = sp ? count(sp->parallelizationParameter) : OVER;
            SCRYPT_PARAMS_free(sp);
            /* each factor is at most TG_KDF_WORK_MAX + 1 (< 2^23): no product overflows */
            work = n * r > TG_KDF_WORK_MAX ? OVER : n * r * p;
            *mem = 128 * r * (n + p);
        }
        PBE2PARAM_free(p2);
    } else if (nid != NID_undef) {
        PBEPARAM *pp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        work = pp ? count(pp->iter) : OVER;
        PBEPARAM_free(pp);
        if (work <= TG_KDF_WORK_MAX && is_pkcs12_pbe(nid)) work *= 2; /* key and IV */
    }
    ERR_clear_error();
    *units = work < TG_KDF_MIN_UNITS ? TG_KDF_MIN_UNITS : work > OVER ? OVER : work;
}

int tg_kdf_refuse(const char *what, long long mem, tg_err *err)
{
    if (mem > TG_KDF_MEM_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "%s asks for more scrypt memory than tlsgate allows (the limit is 32 MiB "
                          "for one key derivation); such a file is refused: re-export it with the "
                          "usual settings",
                          what);
    return tg_err_set(err, TG_E_INVALID,
                      "%s asks for more password-hashing work than tlsgate allows for one file "
                      "(PBKDF2 and PKCS#12 iterations plus scrypt N*r*p, added up over every "
                      "encrypted part; the limit is 4,000,000); such a file is refused: re-export "
                      "it with the usual settings",
                      what);
}

/* The work counted so far for one file, and what it contains. */
typedef struct tally {
    long long work, mem;
} tally;

static void add(tally *t, const X509_ALGOR *alg, int times)
{
    long long u, m;
    tg_kdf_units(alg, &u, &m);
    t->work += u * times; /* u <= OVER, times <= 2 and work stops growing once over */
    if (m > t->mem) t->mem = m;
}

static int over(const tally *t)
{
    return t->work > TG_KDF_WORK_MAX || t->mem > TG_KDF_MEM_MAX;
}

static void add_sig(tally *t, const unsigned char *der, long len, int times)
{
    const unsigned char *p = der;
    X509_SIG *sig = d2i_X509_SIG(NULL, &p, len);
    if (sig != NULL) {
        const X509_ALGOR *alg = NULL;
        X509_SIG_get0(sig, &alg, NULL);
        add(t, alg, times);
    }
    X509_SIG_free(sig);
}

static void add_bags(tally *t, const STACK_OF(PKCS12_SAFEBAG) * bags, int times, int depth)
{
    for (int i = 0; depth <= 3 && i < sk_PKCS12_SAFEBAG_num(bags) && !over(t); i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        int nid = PKCS12_SAFEBAG_get_nid(bag);
        if (nid == NID_pkcs8ShroudedKeyBag) {
            const X509_ALGOR *alg = NULL;
            X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
            add(t, alg, times);
        } else if (nid == NID_safeContentsBag) {
            add_bags(t, PKCS12_SAFEBAG_get0_safes(bag), times, depth + 1);
        }
    }
}

/* A PKCS#12 file as decode_p12 reads it: the MAC is tried up to three times; without a
 * MAC the contents are read twice (no password, then the operator's). */
static void add_p12(tally *t, PKCS12 *p12)
{
    int times = 1;
    if (PKCS12_mac_present(p12)) {
        const ASN1_INTEGER *iter = NULL;
        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        long long n = iter ? count(iter) : 1;                         /* an absent count means 1 */
        t->work += 3 * (n < TG_KDF_MIN_UNITS ? TG_KDF_MIN_UNITS : n); /* at most 3 * OVER */
    } else {
        times = 2;
    }
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    for (int i = 0; i < sk_PKCS7_num(safes) && !over(t); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        int nid = OBJ_obj2nid(p7->type);
        if (nid == NID_pkcs7_data) {
            STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(p7);
            add_bags(t, bags, times, 0);
            sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        } else if (nid == NID_pkcs7_encrypted) {
            add(t,
                p7->d.encrypted && p7->d.encrypted->enc_data ? p7->d.encrypted->enc_data->algorithm
                                                             : NULL,
                times);
        }
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
}

static void add_pem(tally *t, const unsigned char *data, size_t len)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    while (bio != NULL && !over(t)) {
        char *name = NULL, *header = NULL;
        unsigned char *body = NULL;
        long blen = 0;
        if (!PEM_read_bio_ex(bio, &name, &header, &body, &blen, PEM_FLAG_SECURE)) break;
        if (strcmp(name, PEM_STRING_PKCS8) == 0)
            add_sig(t, body, blen, 1);
        else if (strstr(name, "PRIVATE KEY") != NULL && strstr(header, "ENCRYPTED") != NULL)
            t->work += TG_KDF_MIN_UNITS; /* Proc-Type: 4,ENCRYPTED: one MD5 round */
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_secure_clear_free(body, (size_t)blen);
    }
    BIO_free(bio);
}

int tg_bundle_kdf_check(const unsigned char *data, size_t len, const char *what, long long *work,
                        tg_err *err)
{
    tally t = {0};
    if (len > 0 && len <= TG_FILE_MAX) {
        if (memmem(data, len, "-----BEGIN ", 11) != NULL) {
            add_pem(&t, data, len);
        } else {
            const unsigned char *p = data;
            PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
            if (p12 != NULL && p == data + len)
                add_p12(&t, p12);
            else
                add_sig(&t, data, (long)len, 1);
            PKCS12_free(p12);
        }
    }
    ERR_clear_error();
    if (work != NULL) *work = t.work;
    return over(&t) ? tg_kdf_refuse(what, t.mem, err) : 0;
}
