/*
 * acme.c — the one certificate ACME asks a server to make for itself: the tls-alpn-01
 * validation certificate (RFC 8737 §3), self-signed, for one DNS name, carrying the
 * critical id-pe-acmeIdentifier extension with the SHA-256 of the key authorization.
 */
#include "x509_int.h"

#include <openssl/x509v3.h>
#include <string.h>

#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

int tg_cert_acme_alpn(const tg_key *key, const char *domain, const unsigned char digest[32],
                      tg_cert **out, tg_err *err)
{
    *out = NULL;
    int rc = TG_E_INTERNAL;
    X509 *x = X509_new();
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *value = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
    X509_EXTENSION *ext = NULL;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    unsigned char *der = NULL;
    if (x == NULL || inner == NULL || value == NULL || oid == NULL || gens == NULL || gen == NULL ||
        ia5 == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    /* the extension's value is the DER of an OCTET STRING holding the digest */
    int n;
    if (!ASN1_OCTET_STRING_set(inner, digest, 32) ||
        (n = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 || !ASN1_OCTET_STRING_set(value, der, n) ||
        (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value)) == NULL ||
        !ASN1_STRING_set(ia5, domain, (int)strlen(domain))) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the acmeIdentifier extension");
        goto end;
    }
    GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
    ia5 = NULL;
    if (!sk_GENERAL_NAME_push(gens, gen)) goto end;
    gen = NULL;
    if ((rc = tg_x509_random_serial(X509_get_serialNumber(x), err)) != 0) goto end;
    rc = TG_E_INTERNAL;
    X509_NAME *nm = X509_get_subject_name(x);
    if (!X509_set_version(x, X509_VERSION_3) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) ||
        !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)domain, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, nm) || !X509_set_pubkey(x, key->pkey) ||
        !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) || !X509_add_ext(x, ext, -1) ||
        X509_sign(x, key->pkey, EVP_sha256()) <= 0) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the tls-alpn-01 certificate");
        goto end;
    }
    *out = tg_cert_wrap(x);
    x = NULL;
    rc = *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
end:
    OPENSSL_free(der);
    X509_free(x);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OCTET_STRING_free(value);
    ASN1_OBJECT_free(oid);
    X509_EXTENSION_free(ext);
    GENERAL_NAMES_free(gens);
    GENERAL_NAME_free(gen);
    ASN1_IA5STRING_free(ia5);
    return rc;
}
