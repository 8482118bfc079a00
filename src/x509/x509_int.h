/*
 * x509_int.h — what the files of src/x509 share and nobody else sees.
 */
#ifndef TG_X509_INT_H
#define TG_X509_INT_H

#include "x509.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tg_key {
    EVP_PKEY *pkey;
};
struct tg_cert {
    X509 *x;
};

/* Records a sentence plus the most relevant OpenSSL reason, and drains the queue. */
int tg_ossl_err(tg_err *err, int code, const char *what);
tg_cert *tg_cert_wrap(X509 *x);
/* A name as RFC 2253 UTF-8 text, and its CN ("" without one): new strings (cert.c). */
char *tg_x509_name_text(const X509_NAME *name);
char *tg_x509_name_cn(const X509_NAME *name);
tg_key *tg_key_wrap(EVP_PKEY *pkey);
int tg_x509_add_subject(X509_NAME *name, const tg_subject *subj, tg_err *err);
int tg_x509_sans_ext(const tg_strlist *sans, X509_EXTENSION **out, tg_err *err);
/* SHA-256 signatures, SHA-384 for keys above 256 bits of EC (NULL: the key decides). */
const EVP_MD *tg_x509_digest_for(const EVP_PKEY *pkey);
/* A random positive serial of 127 bits, its top bit set (16 octets in DER). */
int tg_x509_random_serial(ASN1_INTEGER *serial, tg_err *err);
void tg_x509_describe_pub(const X509 *x, char *buf, size_t bufsize);
/* The public key's type ("RSA", "EC", …) and size in bits, as facts rather than text. */
void tg_x509_pub_type(const X509 *x, char *type, size_t typesize, int *bits);

/* The key-derivation work (kdfcost.c's units, at least TG_KDF_MIN_UNITS) and scrypt
 * memory in bytes (0 for other KDFs) of one derivation with the PBE algorithm alg. */
#define TG_KDF_MIN_UNITS 2500LL
void tg_kdf_units(const X509_ALGOR *alg, long long *units, long long *mem);
/* Records the refusal of a file over the budget (mem > TG_KDF_MEM_MAX: the memory one);
 * returns TG_E_INVALID. */
int tg_kdf_refuse(const char *what, long long mem, tg_err *err);

/* Loads OpenSSL's legacy provider once (for RC2/DES PKCS#12); 1 when available. */
int tg_x509_legacy_provider(void);

/* One GeneralName (DNS, IP, email) from a (type, value); NULL for another type, an IP
 * value that is no address, or out of memory (cert.c). */
GENERAL_NAME *tg_x509_general_name(const tg_san *san);

/* A plain PKCS#8 PrivateKeyInfo (DER) decoded with the thread's reused decoder context
 * (key.c): NULL when it is not one (the caller's general path then says why). */
EVP_PKEY *tg_x509_pkcs8_decode(const unsigned char *der, size_t len);

#endif
