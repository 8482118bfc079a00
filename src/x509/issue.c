/*
 * issue.c — certificates signed by a CA certificate and its key: the leaves a signing
 * certificate mints for client inspection (SPEC I1).
 *
 * A leaf is X.509 v3 with a random positive serial, issuer = the CA's subject, validity
 * clipped inside the CA's, AKI = the CA's SKI, its own SKI, basicConstraints CA:FALSE
 * (critical), keyUsage digitalSignature (+ keyEncipherment for RSA; critical), EKU
 * serverAuth and the SANs; signed with SHA-256, or SHA-384 for a P-384 CA key.
 *
 * Speed: X509_set_pubkey with a provider key runs an encoder and a decoder (≈150-200 µs
 * in OpenSSL 3.0). A tg_spki does that once per leaf key and keeps a public-only copy
 * of the key made by d2i_PublicKey, which carries an ASN.1 method: X509_set_pubkey then
 * encodes it directly (≈3-9 µs), and the new certificate still holds its decoded public
 * key, as libssl and the verifier need. (X509_PUBKEY_set0_param would copy the bytes
 * as fast but leaves the certificate without a decoded key: X509_get0_pubkey fails.)
 * When OpenSSL offers no such copy, the tg_spki keeps the key itself: slower, same result.
 */
#include "x509_int.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tg_spki {
    EVP_PKEY *pub; /* public only; X509_set_pubkey's fast path when it has an ASN.1 method */
    unsigned char ski[SHA_DIGEST_LENGTH];
    int rsa;
};

/* SHA-1 of the subjectPublicKey bits: RFC 5280 4.2.1.2 method (1), as OpenSSL's "hash". */
static int ski_of(const X509_PUBKEY *xp, unsigned char ski[SHA_DIGEST_LENGTH])
{
    const unsigned char *bits;
    int n;
    unsigned int len = 0;
    return X509_PUBKEY_get0_param(NULL, &bits, &n, NULL, xp) && n > 0 &&
           EVP_Digest(bits, (size_t)n, ski, &len, EVP_sha1(), NULL) && len == SHA_DIGEST_LENGTH;
}

int tg_spki_new(const tg_key *key, tg_spki **out, tg_err *err)
{
    *out = NULL;
    tg_spki *s = calloc(1, sizeof(*s));
    X509_PUBKEY *xp = NULL;
    EVP_PKEY *params = NULL, *pub = NULL;
    int rc = TG_E_INTERNAL;
    if (s == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (!X509_PUBKEY_set(&xp, key->pkey) || !ski_of(xp, s->ski)) {
        rc = tg_ossl_err(err, TG_E_INVALID, "cannot encode the public key");
        goto end;
    }
    s->rsa = EVP_PKEY_is_a(key->pkey, "RSA");
    const unsigned char *bits;
    int n;
    X509_PUBKEY_get0_param(NULL, &bits, &n, NULL, xp);
    ERR_set_mark();
    if (s->rsa) {
        pub = d2i_PublicKey(EVP_PKEY_RSA, NULL, &bits, n);
    } else if (EVP_PKEY_is_a(key->pkey, "EC") && (params = EVP_PKEY_new()) != NULL &&
               EVP_PKEY_copy_parameters(params, key->pkey)) {
        pub = d2i_PublicKey(EVP_PKEY_EC, &params, &bits, n);
        if (pub != NULL) params = NULL; /* it is pub now */
    }
    if (pub != NULL && (EVP_PKEY_get0_asn1(pub) == NULL || EVP_PKEY_eq(pub, key->pkey) != 1)) {
        EVP_PKEY_free(pub);
        pub = NULL;
    }
    ERR_pop_to_mark();
    if (pub == NULL) {
        pub = X509_PUBKEY_get(xp); /* the slow path, with the same outcome */
        if (pub == NULL) {
            rc = tg_ossl_err(err, TG_E_INVALID, "cannot prepare the public key");
            goto end;
        }
    }
    s->pub = pub;
    *out = s;
    s = NULL;
    rc = 0;
end:
    EVP_PKEY_free(params);
    X509_PUBKEY_free(xp);
    tg_spki_free(s);
    return rc;
}

void tg_spki_free(tg_spki *s)
{
    if (s == NULL) return;
    EVP_PKEY_free(s->pub);
    free(s);
}

/* One GeneralName of a leaf: DNS, IP or email, printable ASCII. */
static int leaf_name(const tg_san *san, GENERAL_NAME **out, tg_err *err)
{
    *out = NULL;
    for (const unsigned char *p = (const unsigned char *)san->value; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return tg_err_set(err, TG_E_INVALID,
                              "the alternative name '%.80s' is not printable ASCII (IDNs go in "
                              "as A-labels, xn--…)",
                              san->value);
    if (san->type != TG_SAN_IP && san->type != TG_SAN_DNS && san->type != TG_SAN_EMAIL)
        return tg_err_set(err, TG_E_INVALID,
                          "a %s alternative name cannot be issued; only DNS, IP and email names",
                          tg_san_type_name(san->type));
    unsigned char addr[16];
    if (san->type == TG_SAN_IP && inet_pton(AF_INET, san->value, addr) != 1 &&
        inet_pton(AF_INET6, san->value, addr) != 1)
        return tg_err_set(err, TG_E_INVALID, "'%.80s' is not an IP address", san->value);
    if ((*out = tg_x509_general_name(san)) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return 0;
}

static int add_sans(X509 *x, const tg_sanlist *sans, int critical, tg_err *err)
{
    if (sans->n > TG_SANS_IMPORT_MAX)
        return tg_err_set(err, TG_E_INVALID, "more than %d alternative names", TG_SANS_IMPORT_MAX);
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_reserve(NULL, (int)sans->n);
    if (gens == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sans->n; i++) {
        GENERAL_NAME *g = NULL;
        if ((rc = leaf_name(&sans->v[i], &g, err)) == 0)
            sk_GENERAL_NAME_push(gens, g); /* reserved above */
    }
    if (rc == 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) != 1)
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot add the alternative names");
    GENERAL_NAMES_free(gens);
    return rc;
}

static int set_subject(X509 *x, const tg_issue_req *req, tg_err *err)
{
    int given = (req->subject != NULL) + (req->subject_from != NULL) + (req->cn != NULL);
    if (given > 1)
        return tg_err_set(err, TG_E_INVALID,
                          "give the subject one way: fields, another certificate's, or a CN");
    int rc;
    if (req->subject != NULL) {
        if ((rc = tg_subject_check(req->subject, err)) != 0) return rc;
        return tg_x509_add_subject(X509_get_subject_name(x), req->subject, err);
    }
    if (req->subject_from != NULL)
        return X509_set_subject_name(x, X509_get_subject_name(req->subject_from->x))
                   ? 0
                   : tg_ossl_err(err, TG_E_INTERNAL, "cannot copy the subject");
    if (req->cn != NULL) {
        if (req->cn[0] == '\0' || strlen(req->cn) > 64)
            return tg_err_set(err, TG_E_INVALID, "the CN must be 1 to 64 bytes long");
        if (!X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *)req->cn, -1, -1, 0))
            return tg_ossl_err(err, TG_E_INVALID, "the CN was refused");
    }
    return 0;
}

/* notBefore/notAfter: the request's, clipped to the CA's own validity. */
static int set_validity(X509 *x, const X509 *ca, const tg_issue_req *req, tg_err *err)
{
    struct tm tm;
    long long ca_nb = 0, ca_na = 0;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(ca), &tm)) ca_nb = (long long)timegm(&tm);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(ca), &tm)) ca_na = (long long)timegm(&tm);
    long long nb = req->not_before > ca_nb ? req->not_before : ca_nb;
    long long na = req->not_after < ca_na ? req->not_after : ca_na;
    if (req->not_after < req->not_before)
        return tg_err_set(err, TG_E_INVALID, "the validity ends before it begins");
    if (nb > na)
        return tg_err_set(err, TG_E_INVALID,
                          "the requested validity lies outside the CA certificate's; reissue "
                          "or replace the CA certificate");
    if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na))
        return tg_ossl_err(err, TG_E_INVALID, "the validity period is out of range");
    return 0;
}

static int add_key_ids(X509 *x, const X509 *ca, const unsigned char *ski, tg_err *err)
{
    int rc = TG_E_INTERNAL;
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    if (id == NULL || aki == NULL || !ASN1_OCTET_STRING_set(id, ski, SHA_DIGEST_LENGTH) ||
        X509_add1_ext_i2d(x, NID_subject_key_identifier, id, 0, X509V3_ADD_DEFAULT) != 1)
        goto end;
    const ASN1_OCTET_STRING *ca_ski =
        X509_get0_subject_key_id((X509 *)ca); /* caches extensions only */
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int mdlen = 0;
    if (ca_ski != NULL)
        aki->keyid = ASN1_OCTET_STRING_dup(ca_ski);
    else if (X509_pubkey_digest(ca, EVP_sha1(), md, &mdlen) &&
             (aki->keyid = ASN1_OCTET_STRING_new()))
        ASN1_OCTET_STRING_set(aki->keyid, md, (int)mdlen);
    if (aki->keyid == NULL ||
        X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT) != 1)
        goto end;
    rc = 0;
end:
    ASN1_OCTET_STRING_free(id);
    AUTHORITY_KEYID_free(aki);
    return rc ? tg_ossl_err(err, rc, "cannot add the key identifiers") : 0;
}

static int add_usage(X509 *x, int rsa, int client, tg_err *err)
{
    int rc = TG_E_INTERNAL;
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    ASN1_OBJECT *server = OBJ_nid2obj(NID_server_auth), *cl = OBJ_nid2obj(NID_client_auth);
    if (bc == NULL || ku == NULL || eku == NULL || server == NULL || cl == NULL) goto end;
    bc->ca = 0;
    if (!ASN1_BIT_STRING_set_bit(ku, 0, 1) ||          /* digitalSignature */
        (rsa && !ASN1_BIT_STRING_set_bit(ku, 2, 1)) || /* keyEncipherment */
        !sk_ASN1_OBJECT_push(eku, server) || (client && !sk_ASN1_OBJECT_push(eku, cl)))
        goto end;
    if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) != 1 ||
        X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) != 1 ||
        X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1)
        goto end;
    rc = 0;
end:
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_free(eku); /* server and cl are static objects */
    return rc ? tg_ossl_err(err, rc, "cannot add the key usages") : 0;
}

int tg_cert_issue(const tg_cert *ca, const tg_key *ca_key, const tg_issue_req *req, tg_cert **out,
                  tg_err *err)
{
    *out = NULL;
    if ((req->key == NULL) == (req->spki == NULL))
        return tg_err_set(err, TG_E_INVALID,
                          "give the new certificate's key as a key or a prepared public key");
    if (!tg_cert_is_ca(ca))
        return tg_err_set(err, TG_E_INVALID,
                          "the issuer is not a CA certificate (no basicConstraints CA:TRUE)");
    if (!tg_cert_matches_key(ca, ca_key))
        return tg_err_set(err, TG_E_INVALID,
                          "the private key does not belong to the CA certificate; give the CA's "
                          "own key");
    int rc = TG_E_INTERNAL;
    X509 *x = X509_new();
    unsigned char ski[SHA_DIGEST_LENGTH];
    if (x == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (!X509_set_version(x, X509_VERSION_3)) goto ossl;
    if ((rc = tg_x509_random_serial(X509_get_serialNumber(x), err)) != 0 ||
        (rc = set_validity(x, ca->x, req, err)) != 0 || (rc = set_subject(x, req, err)) != 0)
        goto end;
    if (!X509_set_issuer_name(x, X509_get_subject_name(ca->x))) goto ossl;
    int rsa;
    if (req->spki != NULL) {
        if (!X509_set_pubkey(x, req->spki->pub)) goto ossl;
        memcpy(ski, req->spki->ski, sizeof(ski));
        rsa = req->spki->rsa;
    } else {
        if (!X509_set_pubkey(x, req->key->pkey) || !ski_of(X509_get_X509_PUBKEY(x), ski)) goto ossl;
        rsa = EVP_PKEY_is_a(req->key->pkey, "RSA");
    }
    int empty = X509_NAME_entry_count(X509_get_subject_name(x)) == 0;
    size_t nsans = req->sans ? req->sans->n : 0;
    if (empty && nsans == 0) {
        rc = tg_err_set(err, TG_E_INVALID, "a certificate needs a subject or alternative names");
        goto end;
    }
    if ((rc = add_usage(x, rsa, req->client_auth, err)) != 0 ||
        (rc = add_key_ids(x, ca->x, ski, err)) != 0 ||
        (nsans > 0 && (rc = add_sans(x, req->sans, empty, err)) != 0))
        goto end;
    if (X509_sign(x, ca_key->pkey, tg_x509_digest_for(ca_key->pkey)) <= 0) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "signing the certificate failed");
        goto end;
    }
    *out = tg_cert_wrap(x);
    x = NULL;
    rc = *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    goto end;
ossl:
    rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the certificate");
end:
    X509_free(x);
    return rc;
}
