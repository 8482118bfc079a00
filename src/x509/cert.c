/*
 * cert.c — building certificates and requests, and describing certificates.
 *
 * New certificates are X.509 v3 with a 127-bit random serial, SHA-256 signatures
 * (SHA-384 for P-384 keys), SKI/AKI, and the SANs the caller validated with names.c.
 */
#include "x509_int.h"
#include "ossl.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_cert *tg_cert_adopt(X509 *x)
{
    return x != NULL && X509_up_ref(x) == 1 ? tg_cert_wrap(x) : NULL;
}

tg_cert *tg_cert_wrap(X509 *x)
{
    tg_cert *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        X509_free(x);
        return NULL;
    }
    c->x = x;
    return c;
}

void tg_cert_free(tg_cert *cert)
{
    if (cert == NULL) return;
    X509_free(cert->x);
    free(cert);
}

int tg_x509_add_subject(X509_NAME *name, const tg_subject *s, tg_err *err)
{
    char cc[3] = {0};
    if (s->country) {
        cc[0] = (char)(s->country[0] & ~0x20);
        cc[1] = (char)(s->country[1] & ~0x20);
    }
    const struct {
        const char *field, *value;
    } parts[] = {{"C", s->country ? cc : NULL},
                 {"ST", s->state},
                 {"L", s->locality},
                 {"O", s->org},
                 {"OU", s->unit},
                 {"CN", s->cn},
                 {"emailAddress", s->email}};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (parts[i].value == NULL) continue;
        int type = strcmp(parts[i].field, "C") == 0 || strcmp(parts[i].field, "emailAddress") == 0
                       ? MBSTRING_ASC
                       : MBSTRING_UTF8;
        if (!X509_NAME_add_entry_by_txt(name, parts[i].field, type,
                                        (const unsigned char *)parts[i].value, -1, -1, 0))
            return tg_ossl_err(err, TG_E_INVALID, "a subject field was refused");
    }
    return 0;
}

/* One GeneralName from a (type, value) built by tg_sans_build: no text is parsed by
 * OpenSSL's config syntax, so no value can smuggle in another name. */
GENERAL_NAME *tg_x509_general_name(const tg_san *san)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_STRING *str = NULL;
    int type = -1;
    if (g == NULL) return NULL;
    if (san->type == TG_SAN_IP) {
        unsigned char addr[16];
        int len = inet_pton(AF_INET, san->value, addr) == 1    ? 4
                  : inet_pton(AF_INET6, san->value, addr) == 1 ? 16
                                                               : 0;
        if (len > 0 && (str = ASN1_OCTET_STRING_new()) != NULL &&
            !ASN1_OCTET_STRING_set(str, addr, len)) {
            ASN1_OCTET_STRING_free(str);
            str = NULL;
        }
        type = GEN_IPADD;
    } else if (san->type == TG_SAN_DNS || san->type == TG_SAN_EMAIL) {
        if ((str = ASN1_IA5STRING_new()) != NULL && !ASN1_STRING_set(str, san->value, -1)) {
            ASN1_IA5STRING_free(str);
            str = NULL;
        }
        type = san->type == TG_SAN_DNS ? GEN_DNS : GEN_EMAIL;
    }
    if (str == NULL) {
        GENERAL_NAME_free(g);
        return NULL;
    }
    GENERAL_NAME_set0_value(g, type, str);
    return g;
}

int tg_x509_sans_ext(const tg_strlist *built, X509_EXTENSION **out, tg_err *err)
{
    *out = NULL;
    if (built->n == 0) return 0;
    tg_sanlist sans;
    int rc = tg_sanlist_from_built(built, &sans, err);
    if (rc != 0) return rc;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_reserve(NULL, (int)sans.n);
    for (size_t i = 0; gens != NULL && i < sans.n; i++) {
        GENERAL_NAME *g = tg_x509_general_name(&sans.v[i]);
        if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            GENERAL_NAMES_free(gens);
            gens = NULL;
        }
    }
    tg_sanlist_free(&sans);
    if (gens != NULL) *out = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    GENERAL_NAMES_free(gens);
    if (*out == NULL)
        return tg_ossl_err(err, TG_E_INVALID, "the subject alternative names were refused");
    return 0;
}

const EVP_MD *tg_x509_digest_for(const EVP_PKEY *pkey)
{
    if (EVP_PKEY_is_a(pkey, "ED25519")) return NULL;
    if (EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_bits(pkey) > 256) return EVP_sha384();
    return EVP_sha256();
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, tg_err *err)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (ext == NULL) return tg_ossl_err(err, TG_E_INTERNAL, "cannot build an extension");
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : tg_ossl_err(err, TG_E_INTERNAL, "cannot add an extension");
}

int tg_x509_random_serial(ASN1_INTEGER *serial, tg_err *err)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) return tg_err_set(err, TG_E_INTERNAL, "RNG failure");
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, full 127 bits, no leading 0 */
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, serial) != NULL;
    BN_free(bn);
    return ok ? 0 : tg_ossl_err(err, TG_E_INTERNAL, "cannot set the serial number");
}

static const char *key_usage(const EVP_PKEY *pkey, int is_ca)
{
    if (is_ca) return "critical,keyCertSign,cRLSign,digitalSignature";
    return EVP_PKEY_is_a(pkey, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                      : "critical,digitalSignature";
}

int tg_cert_selfsign(const tg_key *key, const tg_subject *subj, const tg_strlist *sans, int days,
                     int is_ca, tg_cert **out, tg_err *err)
{
    *out = NULL;
    int rc = TG_E_INTERNAL;
    X509_EXTENSION *san = NULL;
    X509 *x = X509_new();
    if (x == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (!X509_set_version(x, X509_VERSION_3) ||
        (rc = tg_x509_random_serial(X509_get_serialNumber(x), err)) != 0)
        goto end;
    rc = TG_E_INTERNAL;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL)) {
        rc = tg_ossl_err(err, TG_E_INVALID, "the validity period is out of range");
        goto end;
    }
    if ((rc = tg_x509_add_subject(X509_get_subject_name(x), subj, err)) != 0) goto end;
    if (!X509_set_issuer_name(x, X509_get_subject_name(x)) || !X509_set_pubkey(x, key->pkey)) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the certificate");
        goto end;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if ((rc = add_ext(x, &ctx, NID_basic_constraints,
                      is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE", err)) ||
        (rc = add_ext(x, &ctx, NID_key_usage, key_usage(key->pkey, is_ca), err)) ||
        (!is_ca && (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", err))) ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) ||
        (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err)))
        goto end;
    if ((rc = tg_x509_sans_ext(sans, &san, err)) != 0) goto end;
    if (san != NULL && !X509_add_ext(x, san, -1)) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot add the alternative names");
        goto end;
    }
    if (X509_sign(x, key->pkey, tg_x509_digest_for(key->pkey)) <= 0) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "signing the certificate failed");
        goto end;
    }
    *out = tg_cert_wrap(x);
    x = NULL;
    rc = *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
end:
    X509_EXTENSION_free(san);
    X509_free(x);
    return rc;
}

int tg_csr_create(const tg_key *key, const tg_subject *subj, const tg_strlist *sans, int signing,
                  char **pem, tg_err *err)
{
    *pem = NULL;
    int rc = TG_E_INTERNAL;
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = NULL;
    BIO *bio = NULL;
    if (req == NULL || exts == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = tg_x509_add_subject(X509_REQ_get_subject_name(req), subj, err)) != 0) goto end;
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, key->pkey)) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the request");
        goto end;
    }
    struct {
        int nid;
        const char *value;
    } wanted[] = {{NID_basic_constraints, signing ? "critical,CA:TRUE,pathlen:0" : NULL},
                  {NID_key_usage, key_usage(key->pkey, signing)},
                  {NID_ext_key_usage, signing ? NULL : "serverAuth,clientAuth"}};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (wanted[i].value == NULL) continue;
        ext = X509V3_EXT_nconf_nid(NULL, NULL, wanted[i].nid, wanted[i].value);
        if (ext == NULL || !sk_X509_EXTENSION_push(exts, ext)) {
            rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot build the request's extensions");
            goto end;
        }
        ext = NULL;
    }
    if ((rc = tg_x509_sans_ext(sans, &ext, err)) != 0) goto end;
    if (ext != NULL) {
        if (!sk_X509_EXTENSION_push(exts, ext)) {
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
            goto end;
        }
        ext = NULL;
    }
    if (!X509_REQ_add_extensions(req, exts) ||
        X509_REQ_sign(req, key->pkey, tg_x509_digest_for(key->pkey)) <= 0) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "signing the request failed");
        goto end;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509_REQ(bio, req)) {
        rc = tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the request");
        goto end;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)n + 1);
    if (*pem == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    rc = 0;
end:
    BIO_free(bio);
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rc;
}

int tg_cert_from_der(const unsigned char *der, size_t len, tg_cert **out, tg_err *err)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != der + len) {
        X509_free(x);
        return tg_ossl_err(err, TG_E_INVALID, "not a DER certificate");
    }
    *out = tg_cert_wrap(x);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_cert_to_der(const tg_cert *cert, unsigned char **der, size_t *len, tg_err *err)
{
    unsigned char *buf = NULL;
    int n = i2d_X509(cert->x, &buf);
    if (n <= 0) return tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the certificate");
    *der = malloc((size_t)n);
    if (*der != NULL) memcpy(*der, buf, (size_t)n);
    OPENSSL_free(buf);
    if (*der == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    *len = (size_t)n;
    return 0;
}

int tg_cert_to_pem(const tg_cert *cert, char **pem, size_t *len, tg_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509(bio, cert->x)) {
        BIO_free(bio);
        return tg_ossl_err(err, TG_E_INTERNAL, "cannot encode the certificate");
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)n + 1);
    if (*pem != NULL) {
        memcpy(*pem, data, (size_t)n);
        (*pem)[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(bio);
    return *pem ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_cert_issued_by(const tg_cert *child, const tg_cert *parent)
{
    /* Names and signature decide; key usage and AKI are the verifier's business (a
     * self-signed leaf has no keyCertSign yet is its own issuer). */
    EVP_PKEY *pub = X509_get0_pubkey(parent->x);
    int r = pub != NULL &&
            X509_NAME_cmp(X509_get_subject_name(parent->x), X509_get_issuer_name(child->x)) == 0 &&
            X509_verify(child->x, pub) == 1;
    ERR_clear_error();
    return r;
}

/* ---- description ---- */

static char *name_string(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return NULL;
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)n + 1);
    if (s != NULL) {
        if (n > 0) memcpy(s, data, (size_t)n); /* an empty name has no data pointer */
        s[n] = '\0';
    }
    BIO_free(bio);
    return s;
}

char *tg_subject_text(const tg_subject *subj)
{
    X509_NAME *name = X509_NAME_new();
    char *s = name && tg_x509_add_subject(name, subj, NULL) == 0 ? name_string(name) : NULL;
    X509_NAME_free(name);
    ERR_clear_error();
    return s;
}

/* Copies an attacker-controlled string as printable UTF-8: bytes that are not UTF-8,
 * controls (C0, DEL, C1) and bidi or invisible characters each become '?'. */
static char *safe_copy(const unsigned char *p, int n)
{
    size_t len = (size_t)(n < 0 ? 0 : n);
    char *s = malloc(len + 1), *tmp = malloc(len + 1);
    if (s == NULL || tmp == NULL) {
        free(s);
        free(tmp);
        return NULL;
    }
    if (len > 0) memcpy(tmp, p, len);
    tmp[len] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = tmp[i] ? tg_utf8_next(tmp + i, &cp) : 0;
        char one[8] = {0};
        if (k > 0) memcpy(one, tmp + i, k);
        if (k == 0 || tg_text_check(one, NULL, NULL) != 0) {
            s[o++] = '?';
            i += k ? k : 1;
        } else {
            memcpy(s + o, tmp + i, k);
            o += k, i += k;
        }
    }
    s[o] = '\0';
    free(tmp);
    return s;
}

static char *name_cn(const X509_NAME *name)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return tg_strdup("");
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) return tg_strdup("?");
    char *s = safe_copy(utf8, n);
    OPENSSL_free(utf8);
    return s;
}

/* Every GeneralName as (type, value); values printable (safe_copy). */
static int gens_to_list(const GENERAL_NAMES *gens, tg_sanlist *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        tg_san_type type = TG_SAN_OTHER;
        const ASN1_STRING *str = NULL;
        char buf[INET6_ADDRSTRLEN + 32];
        const char *value = buf;
        char *copy = NULL;
        if (g->type == GEN_DNS)
            type = TG_SAN_DNS, str = g->d.dNSName;
        else if (g->type == GEN_EMAIL)
            type = TG_SAN_EMAIL, str = g->d.rfc822Name;
        else if (g->type == GEN_URI)
            type = TG_SAN_URI, str = g->d.uniformResourceIdentifier;
        if (str != NULL) {
            value = copy = safe_copy(ASN1_STRING_get0_data(str), ASN1_STRING_length(str));
        } else if (g->type == GEN_IPADD) {
            int n = ASN1_STRING_length(g->d.iPAddress);
            type = TG_SAN_IP;
            if (n != 4 && n != 16)
                snprintf(buf, sizeof(buf), "invalid (%d bytes)", n);
            else
                inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), buf,
                          sizeof(buf));
        } else if (g->type == GEN_DIRNAME) {
            type = TG_SAN_DIRNAME;
            value = copy = name_string(g->d.directoryName);
        } else {
            snprintf(buf, sizeof(buf), "type %d", g->type);
        }
        if (value == NULL || tg_sanlist_add(out, type, value, strlen(value)) != 0) {
            free(copy);
            tg_sanlist_free(out);
            return TG_E_INTERNAL;
        }
        free(copy);
    }
    return 0;
}

static int sans_list(const X509 *x, tg_sanlist *out)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = gens_to_list(gens, out);
    GENERAL_NAMES_free(gens);
    return rc;
}

int tg_csr_sans(const char *pem, tg_sanlist *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (req == NULL) return tg_ossl_err(err, TG_E_INVALID, "the stored request cannot be read");
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    int rc = gens_to_list(gens, out);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

static long long asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) return 0;
    return (long long)timegm(&tm);
}

char *tg_cert_issuer_text(const tg_cert *cert)
{
    return name_string(X509_get_issuer_name(cert->x));
}

int tg_cert_equal(const tg_cert *a, const tg_cert *b)
{
    return X509_cmp(a->x, b->x) == 0;
}

int tg_cert_is_ca(const tg_cert *cert)
{
    return (X509_get_extension_flags(cert->x) & EXFLAG_CA) != 0;
}

size_t tg_cert_san_count(const tg_cert *cert)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert->x, NID_subject_alt_name, NULL, NULL);
    int n = sk_GENERAL_NAME_num(gens);
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return n > 0 ? (size_t)n : 0;
}

int tg_cert_self_signed(const tg_cert *cert)
{
    return tg_cert_issued_by(cert, cert);
}

void tg_cert_validity(const tg_cert *cert, long long *not_before, long long *not_after)
{
    *not_before = asn1_time(X509_get0_notBefore(cert->x));
    *not_after = asn1_time(X509_get0_notAfter(cert->x));
}

int tg_cert_reissue(const tg_cert *old, const tg_key *key, int days, tg_cert **out, tg_err *err)
{
    *out = NULL;
    if (!tg_cert_matches_key(old, key))
        return tg_err_set(err, TG_E_INVALID, "the key does not belong to the certificate");
    X509 *x = X509_dup(old->x);
    if (x == NULL) return tg_ossl_err(err, TG_E_INTERNAL, "cannot copy the certificate");
    int rc = tg_x509_random_serial(X509_get_serialNumber(x), err);
    if (rc == 0 && (!X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
                    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL)))
        rc = tg_ossl_err(err, TG_E_INVALID, "the validity period is out of range");
    if (rc == 0 && X509_sign(x, key->pkey, tg_x509_digest_for(key->pkey)) <= 0)
        rc = tg_ossl_err(err, TG_E_INTERNAL, "signing the certificate failed");
    if (rc != 0) {
        X509_free(x);
        return rc;
    }
    *out = tg_cert_wrap(x);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_cert_info(const tg_cert *cert, tg_certinfo *out, tg_err *err)
{
    X509 *x = cert->x;
    memset(out, 0, sizeof(*out));
    out->subject = name_string(X509_get_subject_name(x));
    out->issuer = name_string(X509_get_issuer_name(x));
    out->subject_cn = name_cn(X509_get_subject_name(x));
    out->issuer_cn = name_cn(X509_get_issuer_name(x));
    int sans_rc = sans_list(x, &out->sans);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    out->serial = tg_strdup(hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    int signid = X509_get_signature_nid(x);
    out->sigalg = tg_strdup(signid != NID_undef ? OBJ_nid2ln(signid) : "unknown");
    tg_x509_describe_pub(x, out->key_desc, sizeof(out->key_desc));
    tg_x509_pub_type(x, out->key_type, sizeof(out->key_type), &out->key_bits);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1) {
        tg_certinfo_clear(out);
        return tg_ossl_err(err, TG_E_INVALID, "cannot fingerprint the certificate");
    }
    tg_hex(md, 32, out->sha256);
    out->not_before = asn1_time(X509_get0_notBefore(x));
    out->not_after = asn1_time(X509_get0_notAfter(x));
    out->is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
    out->self_signed = tg_cert_issued_by(cert, cert);
    ERR_clear_error();
    if (!out->subject || !out->issuer || !out->subject_cn || !out->issuer_cn || sans_rc != 0 ||
        !out->serial || !out->sigalg) {
        tg_certinfo_clear(out);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    return 0;
}

void tg_certinfo_clear(tg_certinfo *i)
{
    free(i->subject);
    free(i->issuer);
    free(i->subject_cn);
    free(i->issuer_cn);
    free(i->serial);
    tg_sanlist_free(&i->sans);
    free(i->sigalg);
    memset(i, 0, sizeof(*i));
}

X509 *tg_cert_x509(const tg_cert *cert)
{
    return cert->x;
}

EVP_PKEY *tg_key_pkey(const tg_key *key)
{
    return key->pkey;
}

char *tg_x509_name_text(const X509_NAME *name)
{
    return name_string(name);
}

char *tg_x509_name_cn(const X509_NAME *name)
{
    return name_cn(name);
}
