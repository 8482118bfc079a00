/*
 * verify.c — certification path validation for `tlsgate verify` (SPEC C5).
 *
 * OpenSSL's X509_STORE_CTX checks every candidate path: signatures, basic constraints, path
 * length, name constraints, purpose, key and digest strength (auth level 2, X509_STRICT).
 * The Web PKI and RFC 5280 rules it leaves out are checked here, per certificate and per
 * path, after it. Paths are enumerated depth first, trust anchors before intermediates, so
 * that one bad branch (an expired cross-sign, a CA whose constraints exclude the leaf) does
 * not hide a good one; the enumeration is bounded so that hostile bundles cannot make it
 * explode. Validity times are compared here, inclusive at both ends (RFC 5280 4.1.2.5).
 */
#include "x509_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/lhash.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_PATHS         32     /* complete candidate paths handed to OpenSSL */
#define MAX_SIG_CHECKS    2000   /* issuer signature checks while building paths */
#define MAX_ISSUER_CHECKS 200000 /* name and key identifier comparisons, likewise */
#define PSL_FILE          "/usr/share/publicsuffix/public_suffix_list.dat" /* Debian publicsuffix */

typedef struct vctx {
    const tg_verify_req *req;
    long long at;
    int server, host_is_ip;
    X509 **anchors, **pool;
    size_t nanchors, npool;
    X509 *path[TG_VERIFY_MAX_CERTS];
    size_t paths, sigchecks, issuerchecks;
    int stop, gave_up;
    int leaf_bad; /* the leaf breaks a rule of its own: no path can make it valid */
    char leaf_why[TG_ERR_MAX];
    /* outcome: the valid chain, or the first complete path that failed */
    int valid, have;
    char why[TG_ERR_MAX];
    STACK_OF(X509) * chain;
} vctx;

static int fail(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, TG_ERR_MAX, fmt, ap);
    va_end(ap);
    return 0;
}

/* Certificates carry attacker-chosen bytes: keep messages printable UTF-8 (JSON needs it). */
static void sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xE0) == 0xC0 ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            if ((p[i] & 0xC0) != 0x80) ok = 0;
        if (ok && n == 2 && *p < 0xC2) ok = 0;
        if (ok && n == 3 && ((*p == 0xE0 && p[1] < 0xA0) || (*p == 0xED && p[1] >= 0xA0))) ok = 0;
        if (ok && n == 4 &&
            ((*p == 0xF0 && p[1] < 0x90) || *p > 0xF4 || (*p == 0xF4 && p[1] > 0x8F)))
            ok = 0;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        if (n == 1 && (*p < 0x20 || *p == 0x7f)) *p = '?';
        p += n;
    }
}

static void name_text(const X509_NAME *name, char *buf, size_t size)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *d = NULL;
        long n = BIO_get_mem_data(b, &d);
        if (n > 0) snprintf(buf, size, "%.*s", (int)n, d);
    }
    BIO_free(b);
    ERR_clear_error();
    if (buf[0] == '\0') snprintf(buf, size, "(empty name)");
    sanitize(buf);
}

/* "the intermediate "CN=…"": n is the path length when the path ends at an anchor, else 0. */
static void label(X509 *x, int depth, int n, char *buf, size_t size)
{
    char name[160];
    name_text(X509_get_subject_name(x), name, sizeof(name));
    const char *role = depth == 0                ? "the leaf certificate"
                       : n > 0 && depth == n - 1 ? "the trust anchor"
                                                 : "the intermediate";
    snprintf(buf, size, "%s \"%s\"", role, name);
}

/* An IA5String as a C string; 0 when it holds a NUL or does not fit (buf holds a prefix). */
static int ia5(const ASN1_STRING *s, char *buf, size_t size)
{
    int len = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    size_t n = len < 0 ? 0 : (size_t)len;
    size_t copy = n < size - 1 ? n : size - 1;
    memcpy(buf, d, copy);
    buf[copy] = '\0';
    return n < size && memchr(d, '\0', n) == NULL;
}

static int to_unix(const ASN1_TIME *t, long long *out)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) return 0;
    /* days from the civil date (H. Hinnant's algorithm): no timegm, no 2038 limit */
    long long y = tm.tm_year + 1900LL, m = tm.tm_mon + 1, d = tm.tm_mday;
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *out =
        (era * 146097 + doe - 719468) * 86400 + tm.tm_hour * 3600LL + tm.tm_min * 60LL + tm.tm_sec;
    return 1;
}

static void time_text(long long t, char *buf, size_t size)
{
    tg_time_fmt((time_t)t, buf, size);
}

static int ext_critical(const X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    return i < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* Self-signed: its own name as issuer and its own key verifies its signature. */
static int self_signed(X509 *x)
{
    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0) return 0;
    EVP_PKEY *k = X509_get0_pubkey(x);
    int ok = k != NULL && X509_verify(x, k) == 1;
    ERR_clear_error();
    return ok;
}

/* ---- rules on one certificate ----------------------------------------------------- */

/* Every extension OpenSSL knows must decode; SEQUENCE OF extensions must not be empty. */
static int check_extensions(X509 *x, const char *w, char *why)
{
    for (int i = 0; i < X509_get_ext_count(x); i++) {
        X509_EXTENSION *e = X509_get_ext(x, i);
        const X509V3_EXT_METHOD *m = X509V3_EXT_get(e);
        if (m == NULL) continue; /* unknown: OpenSSL refuses it if critical */
        char oid[80];
        OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(e), 0);
        void *p = X509V3_EXT_d2i(e);
        if (p == NULL) {
            ERR_clear_error();
            return fail(why, "%s has a malformed %s extension (RFC 5280 4.2)", w, oid);
        }
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
        int empty = (nid == NID_ext_key_usage || nid == NID_info_access ||
                     nid == NID_subject_alt_name || nid == NID_issuer_alt_name ||
                     nid == NID_certificate_policies || nid == NID_crl_distribution_points) &&
                    OPENSSL_sk_num((const OPENSSL_STACK *)p) <= 0;
        if (m->it != NULL)
            ASN1_item_free(p, ASN1_ITEM_ptr(m->it));
        else if (m->ext_free != NULL)
            m->ext_free(p);
        if (empty)
            return fail(why,
                        "%s has an empty %s extension; it must list at least one entry "
                        "(RFC 5280 4.2)",
                        w, oid);
    }
    return 1;
}

static int check_validity(vctx *v, X509 *x, const char *w, char *why)
{
    long long nb, na;
    char t[40];
    if (!to_unix(X509_get0_notBefore(x), &nb) || !to_unix(X509_get0_notAfter(x), &na))
        return fail(why, "%s has an unreadable validity period", w);
    if (v->at < nb) {
        time_text(nb, t, sizeof(t));
        return fail(why, "%s is not valid before %s", w, t);
    }
    if (v->at > na) {
        time_text(na, t, sizeof(t));
        return fail(why, "%s expired on %s", w, t);
    }
    return 1;
}

static int check_key(X509 *x, const char *w, char *why)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (k == NULL) {
        ERR_clear_error();
        return fail(why, "%s has a public key that cannot be read", w);
    }
    if (EVP_PKEY_is_a(k, "RSA")) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < 2048 || bits % 8 != 0)
            return fail(why,
                        "%s has a %d-bit RSA key; RSA keys must have at least 2048 bits, "
                        "a whole number of bytes (CA/B BR 6.1.5)",
                        w, bits);
        return 1;
    }
    if (EVP_PKEY_is_a(k, "EC")) {
        char g[64] = "";
        if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), NULL)) {
            ERR_clear_error();
            return fail(why, "%s has an EC key without a named curve (CA/B BR 7.1.3.1.2)", w);
        }
        static const char *const ok[] = {"prime256v1", "P-256",     "secp384r1",
                                         "P-384",      "secp521r1", "P-521"};
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
            if (strcmp(g, ok[i]) == 0) return 1;
        return fail(why,
                    "%s has an EC key on curve %s; only P-256, P-384 and P-521 are "
                    "accepted (CA/B BR 6.1.5)",
                    w, g);
    }
    const char *type = EVP_PKEY_get0_type_name(k);
    return fail(why, "%s has a%s %s key; only RSA and ECDSA keys are accepted (CA/B BR 6.1.5)", w,
                type && strchr("AEIOU", type[0]) ? "n" : "", type ? type : "unknown");
}

/* Rules for certificates someone signed for us (not the anchor, whose signature is not used). */
static int check_signed(X509 *x, const char *w, char *why)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    const unsigned char *d = ASN1_STRING_get0_data(sn);
    int len = ASN1_STRING_length(sn), zero = 1;
    for (int i = 0; i < len; i++)
        if (d[i] != 0) zero = 0;
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
        return fail(why, "%s has a negative serial number (RFC 5280 4.1.2.2)", w);
    if (zero) return fail(why, "%s has the serial number 0 (RFC 5280 4.1.2.2)", w);
    if (len + (d[0] & 0x80 ? 1 : 0) > 20)
        return fail(why, "%s has a serial number longer than 20 octets (RFC 5280 4.1.2.2)", w);

    int md = 0, pk = 0, bits = 0;
    uint32_t flags = 0;
    int signid = X509_get_signature_nid(x);
    const char *alg = signid != NID_undef ? OBJ_nid2ln(signid) : "an unknown algorithm";
    int known = X509_get_signature_info(x, &md, &pk, &bits, &flags);
    ERR_clear_error();
    if (!known || (md != NID_sha256 && md != NID_sha384 && md != NID_sha512) ||
        (pk != NID_rsaEncryption && pk != NID_rsassaPss && pk != NID_X9_62_id_ecPublicKey))
        return fail(why,
                    "%s is signed with %s; only RSA and ECDSA signatures with SHA-256, "
                    "SHA-384 or SHA-512 are accepted (SHA-1 and MD5 are refused)",
                    w, alg);
    return 1;
}

static int check_keyids(X509 *x, int ss, int anchor, const char *w, char *why)
{
    if (ext_critical(x, NID_subject_key_identifier) == 1)
        return fail(why, "%s marks subjectKeyIdentifier critical (RFC 5280 4.2.1.2)", w);
    int crit = 0;
    AUTHORITY_KEYID *ak = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
    if (ak == NULL) {
        /* a trust anchor's issuer is never looked for: it needs no AKI */
        if (!ss && !anchor)
            return fail(why,
                        "%s has no authorityKeyIdentifier although it is not self-signed "
                        "(RFC 5280 4.2.1.1)",
                        w);
        return 1;
    }
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    int rc = 1;
    if (crit)
        rc = fail(why, "%s marks authorityKeyIdentifier critical (RFC 5280 4.2.1.1)", w);
    else if (ak->keyid == NULL)
        rc = fail(why,
                  "%s has an authorityKeyIdentifier without keyIdentifier (RFC 5280 4.2.1.1, "
                  "CA/B BR 7.1.2.1.3)",
                  w);
    else if (ak->issuer != NULL || ak->serial != NULL)
        rc = fail(why,
                  "%s names the issuer's issuer and serial number in authorityKeyIdentifier, "
                  "which the Web PKI forbids (CA/B BR 7.1.2.1.3, 7.1.2.11.1)",
                  w);
    else if (ss && ski != NULL && ASN1_OCTET_STRING_cmp(ak->keyid, ski) != 0)
        rc = fail(why,
                  "%s is self-signed but its authorityKeyIdentifier differs from its "
                  "subjectKeyIdentifier (CA/B BR 7.1.2.1.3)",
                  w);
    AUTHORITY_KEYID_free(ak);
    return rc;
}

static int check_nc_syntax(X509 *x, const char *w, char *why)
{
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
    if (nc == NULL) return 1;
    int rc = 1;
    if (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0 &&
        sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0)
        rc = fail(why,
                  "%s has nameConstraints with neither permitted nor excluded subtrees "
                  "(RFC 5280 4.2.1.10, CA/B BR 7.1.2.5.2)",
                  w);
    STACK_OF(GENERAL_SUBTREE) * lists[2] = {nc->permittedSubtrees, nc->excludedSubtrees};
    for (int l = 0; rc && l < 2; l++) {
        for (int i = 0; rc && i < sk_GENERAL_SUBTREE_num(lists[l]); i++) {
            GENERAL_NAME *base = sk_GENERAL_SUBTREE_value(lists[l], i)->base;
            char s[256];
            if (base->type == GEN_DNS &&
                (!ia5(base->d.dNSName, s, sizeof(s)) || !tg_dns_name_valid(s, 0)))
                rc = fail(why,
                          "%s has the malformed DNS name constraint '%s': a constraint is a "
                          "host name such as example.com, without a leading period or a "
                          "wildcard (RFC 5280 4.2.1.10)",
                          w, s);
        }
    }
    NAME_CONSTRAINTS_free(nc);
    return rc;
}

static int check_ca(vctx *v, X509 *x, int anchor, int ss, const char *w, char *why)
{
    (void)v;
    uint32_t fl = X509_get_extension_flags(x);
    if (!(fl & EXFLAG_BCONS) || !(fl & EXFLAG_CA))
        return fail(why,
                    "%s issues certificates but its basicConstraints do not say cA=TRUE "
                    "(RFC 5280 4.2.1.9)",
                    w);
    if (ext_critical(x, NID_basic_constraints) != 1)
        return fail(why, "%s does not mark basicConstraints critical (RFC 5280 4.2.1.9)", w);
    if (!(fl & EXFLAG_KUSAGE) || !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
        return fail(why,
                    "%s issues certificates but its keyUsage does not include keyCertSign "
                    "(RFC 5280 4.2.1.3)",
                    w);
    if (X509_get0_subject_key_id(x) == NULL)
        return fail(why,
                    "%s has no subjectKeyIdentifier, which every CA certificate needs "
                    "(RFC 5280 4.2.1.2)",
                    w);
    if (X509_NAME_entry_count(X509_get_subject_name(x)) == 0)
        return fail(why, "%s is a CA with an empty subject (RFC 5280 4.1.2.6)", w);
    if (anchor && ss && X509_get_ext_by_NID(x, NID_ext_key_usage, -1) >= 0)
        return fail(why,
                    "%s is a root certificate with extendedKeyUsage, which root "
                    "certificates must not carry (CA/B BR 7.1.2.1.2)",
                    w);
    if (ext_critical(x, NID_policy_constraints) == 0)
        return fail(why, "%s does not mark policyConstraints critical (RFC 5280 4.2.1.11)", w);
    if (ext_critical(x, NID_inhibit_any_policy) == 0)
        return fail(why, "%s does not mark inhibitAnyPolicy critical (RFC 5280 4.2.1.14)", w);
    return check_nc_syntax(x, w, why);
}

/* The address a common name spells in any notation inet_aton or inet_pton accepts (hex,
 * octal, leading zeros, upper case, uncompressed IPv6): its length, or 0. */
static int cn_address(const char *cn, unsigned char addr[16])
{
    struct in_addr a4;
    if (strchr(cn, ':') == NULL) {
        if (inet_aton(cn, &a4) == 0) return 0;
        memcpy(addr, &a4, 4);
        return 4;
    }
    return inet_pton(AF_INET6, cn, addr) == 1 ? 16 : 0;
}

/* CA/B BR 7.1.4.3, as far as it prevents CN/SAN confusion: a common name that spells one of
 * the SANs (the same address, the same host name in another case) must be a byte-for-byte
 * copy of it, an address in its canonical text (RFC 3986, RFC 5952), and a common name that
 * looks like a host name must be a well-formed one (A-labels, not U-labels). A common name
 * naming some other host is ignored: it is never used for matching. */
static int check_cn(const char *cn, size_t len, GENERAL_NAMES *gens, const char *w, char *why)
{
    if (memchr(cn, '\0', len) != NULL || strpbrk(cn, " \t") != NULL) return 1; /* not a host */
    unsigned char addr[16];
    int alen = cn_address(cn, addr);
    if (alen == 0 && strchr(cn, '.') == NULL) return 1;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (alen > 0 && g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == alen &&
            memcmp(ASN1_STRING_get0_data(g->d.iPAddress), addr, (size_t)alen) == 0) {
            char text[INET6_ADDRSTRLEN];
            if (inet_ntop(alen == 4 ? AF_INET : AF_INET6, addr, text, sizeof(text)) != NULL &&
                strcmp(text, cn) == 0)
                return 1;
            return fail(why,
                        "%s has the common name '%s', which spells its IP address %s in "
                        "another form; it must be a copy of the subjectAltName "
                        "(CA/B BR 7.1.4.3)",
                        w, cn, text);
        }
        if (alen == 0 && g->type == GEN_DNS) {
            const ASN1_STRING *d = g->d.dNSName;
            if ((size_t)ASN1_STRING_length(d) == len &&
                strncasecmp((const char *)ASN1_STRING_get0_data(d), cn, len) == 0 &&
                memcmp(ASN1_STRING_get0_data(d), cn, len) != 0)
                return fail(why,
                            "%s has the common name '%s', which differs from its "
                            "subjectAltName in case; it must be a character-for-character "
                            "copy (CA/B BR 7.1.4.3)",
                            w, cn);
        }
    }
    if (alen == 0 && !tg_dns_name_valid(cn, 1))
        return fail(why,
                    "%s has the common name '%s', which is not a well-formed host name "
                    "(internationalized names in A-label form, as in its subjectAltName; "
                    "CA/B BR 7.1.4.3)",
                    w, cn);
    return 1;
}

/* A server certificate names its hosts in the SAN, well-formed, and nowhere else. */
static int check_server_names(X509 *x, const char *w, char *why)
{
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL)
        return fail(why,
                    "%s has no subjectAltName: a server certificate lists its host names "
                    "there and the common name is never used (CA/B BR 7.1.2.7.12)",
                    w);
    X509_NAME *subj = X509_get_subject_name(x);
    int rc = 1;
    if (X509_NAME_entry_count(subj) > 0 && crit)
        rc = fail(why,
                  "%s marks subjectAltName critical although its subject is not empty "
                  "(CA/B BR 7.1.2.7.12)",
                  w);
    for (int i = 0; rc && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char s[256];
        if (g->type == GEN_DNS && (!ia5(g->d.dNSName, s, sizeof(s)) || !tg_dns_name_valid(s, 1)))
            rc = fail(why,
                      "%s has the malformed DNS name '%s' in subjectAltName: names are LDH "
                      "labels (IDNs as xn--), '*' only as the whole leftmost label "
                      "(RFC 5280 4.2.1.6)",
                      w, s);
        else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) != 4 &&
                 ASN1_STRING_length(g->d.iPAddress) != 16)
            rc = fail(why, "%s has a malformed iPAddress in subjectAltName (RFC 5280 4.2.1.6)", w);
    }
    for (int i = -1; rc && (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
        unsigned char *cn = NULL;
        int n = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
        if (n < 0) {
            ERR_clear_error();
            rc = fail(why, "%s has a common name that cannot be read", w);
        } else {
            rc = check_cn((char *)cn, (size_t)n, gens, w, why);
        }
        OPENSSL_free(cn);
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

static int check_leaf(vctx *v, X509 *x, const char *w, char *why)
{
    uint32_t fl = X509_get_extension_flags(x);
    if ((fl & EXFLAG_BCONS) && (fl & EXFLAG_CA))
        return fail(why,
                    "%s is a CA certificate (basicConstraints cA=TRUE), which may not be "
                    "used as an end entity (CA/B BR 7.1.2.7.8)",
                    w);
    if ((fl & EXFLAG_KUSAGE) && (X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
        return fail(why, "%s asserts keyCertSign without being a CA (RFC 5280 4.2.1.3)", w);
    if (X509_get_ext_by_NID(x, NID_name_constraints, -1) >= 0)
        return fail(why,
                    "%s carries nameConstraints, which only CA certificates may "
                    "(RFC 5280 4.2.1.10)",
                    w);
    const char *ekuname = v->server ? "serverAuth" : "clientAuth";
    const char *role = v->server ? "server" : "client";
    int crit = 0;
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
    if (eku == NULL)
        return fail(why,
                    "%s has no extendedKeyUsage; a TLS %s certificate must list %s "
                    "(CA/B BR 7.1.2.7.10)",
                    w, role, ekuname);
    int has = 0, any = 0;
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
        int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
        if (nid == (v->server ? NID_server_auth : NID_client_auth)) has = 1;
        if (nid == NID_anyExtendedKeyUsage) any = 1;
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    if (any)
        return fail(why,
                    "%s lists anyExtendedKeyUsage, which end-entity certificates must not "
                    "carry (CA/B BR 7.1.2.7.10)",
                    w);
    if (!has)
        return fail(why, "%s is not for TLS %ss: its extendedKeyUsage does not list %s", w, role,
                    ekuname);
    if (v->server && crit)
        return fail(why, "%s marks extendedKeyUsage critical (CA/B BR 7.1.2.7.6)", w);
    return v->server ? check_server_names(x, w, why) : 1;
}

/* The rules on the certificate at depth (0: the leaf) of a path of n certificates ending at a
 * trust anchor (n is 0 while that is not known; the leaf's rules do not depend on it). */
static int check_cert(vctx *v, X509 *x, int depth, int n, char *why)
{
    char w[200];
    label(x, depth, n, w, sizeof(w));
    int anchor = depth > 0 && depth == n - 1;
    int ss = self_signed(x);
    long version = X509_get_version(x);
    if (version != X509_VERSION_3)
        return fail(why,
                    "%s is an X.509 version %ld certificate; only version 3 is accepted "
                    "(CA/B BR 7.1.1)",
                    w, version + 1);
    if (!check_extensions(x, w, why) || !check_validity(v, x, w, why) || !check_key(x, w, why))
        return 0;
    if (!anchor && !check_signed(x, w, why)) return 0;
    if (!check_keyids(x, ss, anchor, w, why)) return 0;
    return depth == 0 ? check_leaf(v, x, w, why) : check_ca(v, x, anchor, ss, w, why);
}

/* ---- host names ------------------------------------------------------------------- */

/* Is domain (lower or upper case, A-labels) a public suffix? Rules of the Public Suffix
 * List, private domains included; a single label always is one. Without the list file only
 * that last rule applies. */
/* The Public Suffix List, read once per process (the file has ~10,000 rules; reading it
 * for every wildcard match cost a fifth of a proxy's CPU). Entries are kept lower-cased
 * with a kind prefix: 'r' a rule ("co.uk"), 'w' the parent of a wildcard rule ("*.ck"
 * gives "wck"), 'x' an exception ("!www.ck"). A process that outlives a package update
 * keeps the list it read. */
typedef struct pslent {
    char *s;
} pslent;
DEFINE_LHASH_OF(pslent);
static LHASH_OF(pslent) * psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static unsigned long pslent_hash(const pslent *e)
{
    return OPENSSL_LH_strhash(e->s);
}

static int pslent_cmp(const pslent *a, const pslent *b)
{
    return strcmp(a->s, b->s);
}

static void psl_put(char kind, const char *name)
{
    size_t n = strlen(name);
    pslent *e = malloc(sizeof(*e));
    char *s = malloc(n + 2);
    if (e == NULL || s == NULL) {
        free(e);
        free(s);
        return;
    }
    s[0] = kind;
    for (size_t i = 0; i <= n; i++)
        s[i + 1] = (char)tolower((unsigned char)name[i]);
    e->s = s;
    pslent *old = lh_pslent_insert(psl, e);
    if (old != NULL) {
        free(old->s);
        free(old);
    } else if (lh_pslent_error(psl)) {
        free(s);
        free(e);
    }
}

static void psl_load(void)
{
    FILE *f = fopen(PSL_FILE, "r");
    if (f == NULL || (psl = lh_pslent_new(pslent_hash, pslent_cmp)) == NULL) {
        if (f) fclose(f);
        return;
    }
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, " \t\r\n");
        if (len == 0 || (line[0] == '/' && line[1] == '/')) continue;
        line[len] = '\0';
        if (line[0] == '!')
            psl_put('x', line + 1);
        else if (line[0] == '*' && line[1] == '.')
            psl_put('w', line + 2);
        else
            psl_put('r', line);
    }
    fclose(f);
}

static int psl_has(char kind, const char *name)
{
    char key[260];
    size_t n = strlen(name);
    if (n + 2 > sizeof(key)) return 0;
    key[0] = kind;
    for (size_t i = 0; i <= n; i++)
        key[i + 1] = (char)tolower((unsigned char)name[i]);
    pslent k = {key};
    return lh_pslent_retrieve(psl, &k) != NULL;
}

static int public_suffix(const char *domain)
{
    if (strchr(domain, '.') == NULL) return 1;
    pthread_once(&psl_once, psl_load);
    if (psl == NULL) return 0;
    const char *parent = strchr(domain, '.') + 1;
    int rule = psl_has('r', domain) || psl_has('w', parent);
    return rule && !psl_has('x', domain);
}

static int dns_san_equals(X509 *x, const char *host)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    for (int i = 0; !found && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char s[256];
        found = g->type == GEN_DNS && ia5(g->d.dNSName, s, sizeof(s)) && s[0] != '*' &&
                strcasecmp(s, host) == 0;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

/* RFC 6125 through OpenSSL: SANs only, '*' only as a whole leftmost label; and a wildcard
 * over a public suffix (*.co.uk) never matches. */
static int check_host(vctx *v, X509 *leaf, char *why)
{
    const char *h = v->req->host;
    char w[200];
    label(leaf, 0, 0, w, sizeof(w));
    if (v->host_is_ip) {
        int r = X509_check_ip_asc(leaf, h, 0);
        ERR_clear_error();
        if (r != 1)
            return fail(why,
                        "%s is not valid for the IP address %s: no iPAddress "
                        "subjectAltName matches (common names are never used)",
                        w, h);
        return 1;
    }
    char *peer = NULL;
    int r = X509_check_host(
        leaf, h, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
        &peer);
    ERR_clear_error();
    int rc = 1;
    if (r != 1)
        rc = fail(why,
                  "%s is not valid for %s: no DNS subjectAltName matches (a wildcard stands "
                  "for exactly one whole leftmost label; common names are never used)",
                  w, h);
    else if (peer != NULL && peer[0] == '*' && peer[1] == '.' && public_suffix(peer + 2) &&
             !dns_san_equals(leaf, h))
        rc = fail(why,
                  "%s matches %s only through the wildcard %s, which spans the public "
                  "suffix %s (CA/B BR 3.2.2.6)",
                  w, h, peer, peer + 2);
    OPENSSL_free(peer);
    return rc;
}

/* name equals base or lies below it (RFC 5280 4.2.1.10 for dNSName), ignoring case. */
static int dns_within(const char *name, const char *base)
{
    size_t n = strlen(name), b = strlen(base);
    if (n == b) return strcasecmp(name, base) == 0;
    return n > b && name[n - b - 1] == '.' && strcasecmp(name + n - b, base) == 0;
}

/* Name constraints against what the leaf is used for: the host name itself (which may have
 * matched through a wildcard) and every name a wildcard SAN could stand for. */
static int check_names_vs_nc(vctx *v, STACK_OF(X509) * chain, char *why)
{
    X509 *leaf = sk_X509_value(chain, 0);
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    const char *host = v->req->host != NULL && !v->host_is_ip ? v->req->host : NULL;
    int rc = 1, n = sk_X509_num(chain);
    for (int c = 1; rc && c < n; c++) {
        X509 *ca = sk_X509_value(chain, c);
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);
        if (nc == NULL) continue;
        char w[200];
        label(ca, c, n, w, sizeof(w));
        int permitted_dns = 0, inside = 0;
        for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
            GENERAL_NAME *b = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
            char s[256];
            if (b->type != GEN_DNS || !ia5(b->d.dNSName, s, sizeof(s))) continue;
            permitted_dns = 1;
            if (host != NULL && dns_within(host, s)) inside = 1;
        }
        if (host != NULL && permitted_dns && !inside)
            rc = fail(why, "%s lies outside the DNS names %s may certify (its nameConstraints)",
                      host, w);
        for (int i = 0; rc && i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++) {
            GENERAL_NAME *b = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base;
            char s[256];
            if (b->type != GEN_DNS || !ia5(b->d.dNSName, s, sizeof(s))) continue;
            if (host != NULL && dns_within(host, s)) {
                rc = fail(why, "%s lies in the subtree %s that %s excludes (nameConstraints)", host,
                          s, w);
                break;
            }
            const char *parent = strchr(s, '.');
            for (int j = 0; rc && parent != NULL && j < sk_GENERAL_NAME_num(gens); j++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, j);
                char san[256];
                if (g->type == GEN_DNS && ia5(g->d.dNSName, san, sizeof(san)) && san[0] == '*' &&
                    san[1] == '.' && strcasecmp(san + 2, parent + 1) == 0)
                    rc = fail(why,
                              "the wildcard %s of the leaf certificate could stand for %s, "
                              "which %s excludes (nameConstraints)",
                              san, s, w);
            }
        }
        NAME_CONSTRAINTS_free(nc);
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

/* ---- OpenSSL and the path search -------------------------------------------------- */

/* X509_verify_cert with the given anchors and untrusted certificates and our settings.
 * Returns 1 (verified), 0 (refused, why says why) or -1 (out of memory); *chain is what
 * OpenSSL built (possibly partial). */
static int openssl_verify(vctx *v, X509 *const *anchors, size_t na, X509 *const *untrusted,
                          size_t nu, STACK_OF(X509) * *chain, char *why)
{
    int rc = -1;
    *chain = NULL;
    X509_STORE *st = X509_STORE_new();
    STACK_OF(X509) *unt = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (st == NULL || unt == NULL || ctx == NULL) goto end;
    for (size_t i = 0; i < na; i++)
        if (!X509_STORE_add_cert(st, anchors[i])) goto end;
    for (size_t i = 0; i < nu; i++)
        if (!sk_X509_push(unt, untrusted[i])) goto end;
    if (!X509_STORE_CTX_init(ctx, st, v->req->leaf->x, unt)) goto end;
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    /* validity is ours: OpenSSL treats notAfter as exclusive, RFC 5280 as inclusive */
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN |
                                       X509_V_FLAG_NO_CHECK_TIME);
    X509_VERIFY_PARAM_set_auth_level(p, 2); /* 112 bits: RSA >= 2048, no SHA-1 or MD5 */
    X509_VERIFY_PARAM_set_depth(p, TG_VERIFY_MAX_CERTS);
    if (!X509_STORE_CTX_set_purpose(ctx,
                                    v->server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT))
        goto end;
    int ok = X509_verify_cert(ctx);
    *chain = X509_STORE_CTX_get1_chain(ctx);
    if (ok == 1) {
        rc = 1;
    } else {
        rc = 0;
        int e = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
        char w[200] = "a certificate";
        if (cur != NULL) label(cur, depth, 0, w, sizeof(w));
        if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
            fail(why,
                 "no certification path to a trust anchor: nothing in the CA file or the "
                 "chain issued %s",
                 w);
        else if (e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                 e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
            fail(why,
                 "no certification path to a trust anchor: %s is self-signed but not in the "
                 "CA file",
                 w);
        else
            fail(why, "%s is refused: %s", w, X509_verify_cert_error_string(e));
    }
end:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(unt);
    X509_STORE_free(st);
    ERR_clear_error();
    return rc;
}

/* Our rules on a path OpenSSL accepted (the leaf's own rules were checked once, up front). */
static int check_path(vctx *v, STACK_OF(X509) * chain, char *why)
{
    int n = sk_X509_num(chain);
    for (int i = 1; i < n; i++)
        if (!check_cert(v, sk_X509_value(chain, i), i, n, why)) return 0;
    return check_names_vs_nc(v, chain, why);
}

static void keep(vctx *v, STACK_OF(X509) * chain, const char *why, int valid)
{
    sk_X509_pop_free(v->chain, X509_free);
    v->chain = chain;
    v->valid = valid;
    v->have = 1;
    snprintf(v->why, sizeof(v->why), "%s", why);
}

/* path[0..n-1] ends at a trust anchor: the only anchor OpenSSL is given. */
static int try_path(vctx *v, size_t n)
{
    v->paths++;
    char why[TG_ERR_MAX] = "";
    STACK_OF(X509) *chain = NULL;
    int rc = openssl_verify(v, &v->path[n - 1], 1, v->path + 1, n > 2 ? n - 2 : 0, &chain, why);
    if (rc == 1) rc = check_path(v, chain, why);
    if (rc < 0) {
        sk_X509_pop_free(chain, X509_free);
        return -1;
    }
    if (rc == 1 && !v->leaf_bad) {
        keep(v, chain, "", 1);
        v->stop = 1;
        return 1;
    }
    if (!v->have)
        keep(v, chain, v->leaf_bad ? v->leaf_why : why, 0);
    else
        sk_X509_pop_free(chain, X509_free);
    if (v->leaf_bad || v->paths >= MAX_PATHS) v->stop = 1;
    if (v->paths >= MAX_PATHS) v->gave_up = 1;
    return 0;
}

static int in_path(vctx *v, size_t len, X509 *c)
{
    /* RFC 4158 loop detection: a name and key may appear only once in a path */
    for (size_t i = 0; i < len; i++) {
        EVP_PKEY *a = X509_get0_pubkey(v->path[i]), *b = X509_get0_pubkey(c);
        if (X509_NAME_cmp(X509_get_subject_name(v->path[i]), X509_get_subject_name(c)) == 0 &&
            a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 1)
            return 1;
    }
    ERR_clear_error();
    return 0;
}

static int issued_by(vctx *v, X509 *issuer, X509 *subject)
{
    if (++v->issuerchecks > MAX_ISSUER_CHECKS) {
        v->stop = v->gave_up = 1;
        return 0;
    }
    if (X509_check_issued(issuer, subject) != X509_V_OK) return 0;
    if (++v->sigchecks > MAX_SIG_CHECKS) {
        v->stop = v->gave_up = 1;
        return 0;
    }
    EVP_PKEY *k = X509_get0_pubkey(issuer);
    int ok = k != NULL && X509_verify(subject, k) == 1;
    ERR_clear_error();
    return ok;
}

static int extend(vctx *v, size_t len)
{
    X509 *cur = v->path[len - 1];
    if (len >= TG_VERIFY_MAX_CERTS) {
        v->gave_up = 1;
        return 0;
    }
    for (size_t i = 0; i < v->nanchors && !v->stop; i++) {
        X509 *a = v->anchors[i];
        if (in_path(v, len, a) || !issued_by(v, a, cur)) continue;
        v->path[len] = a;
        int rc = try_path(v, len + 1);
        if (rc != 0) return rc;
    }
    for (size_t i = 0; i < v->npool && !v->stop && len + 1 < TG_VERIFY_MAX_CERTS; i++) {
        X509 *c = v->pool[i];
        if (in_path(v, len, c) || !issued_by(v, c, cur)) continue;
        v->path[len] = c;
        int rc = extend(v, len + 1);
        if (rc != 0) return rc;
    }
    return 0;
}

/* 0 (the outcome is in v: valid, why, chain) or -1 when memory ran out. */
static int search(vctx *v)
{
    X509 *leaf = v->req->leaf->x;
    v->path[0] = leaf;
    /* a leaf that is itself a trust anchor is a path of one */
    for (size_t i = 0; i < v->nanchors && !v->stop; i++) {
        if (X509_cmp(v->anchors[i], leaf) != 0) continue;
        if (try_path(v, 1) < 0) return -1; /* 1 (found) has set v->stop */
        break;
    }
    if (!v->stop && extend(v, 1) < 0) return -1;
    if (v->have) return 0;
    /* no path reached an anchor: let OpenSSL search everything, for its reason and the
     * partial chain (and, should it find a path we gave up on, check that path) */
    char why[TG_ERR_MAX] = "";
    STACK_OF(X509) *chain = NULL;
    int rc = openssl_verify(v, v->anchors, v->nanchors, v->pool, v->npool, &chain, why);
    if (rc == 1) rc = check_path(v, chain, why);
    if (rc < 0) {
        sk_X509_pop_free(chain, X509_free);
        return -1;
    }
    if (rc == 0 && v->gave_up) {
        size_t l = strlen(why);
        snprintf(why + l, sizeof(why) - l,
                 " (path building gave up: paths are at most %d "
                 "certificates long and the search is bounded)",
                 TG_VERIFY_MAX_CERTS);
    }
    keep(v, chain, v->leaf_bad ? v->leaf_why : why, rc == 1 && !v->leaf_bad);
    return 0;
}

static char *name_dup(const X509_NAME *name)
{
    char buf[1024];
    name_text(name, buf, sizeof(buf));
    return tg_strdup(buf);
}

static int result_chain(vctx *v, tg_verify_result *out, tg_err *err)
{
    int n = v->chain ? sk_X509_num(v->chain) : 0;
    out->chain = calloc((size_t)n + 1, sizeof(*out->chain));
    out->links = calloc((size_t)n + 1, sizeof(*out->links));
    if (out->chain == NULL || out->links == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(v->chain, i);
        if (!X509_up_ref(x) || (out->chain[i] = tg_cert_wrap(x)) == NULL)
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        out->nchain++;
        tg_verify_link *l = &out->links[i];
        l->subject = name_dup(X509_get_subject_name(x));
        l->issuer = name_dup(X509_get_issuer_name(x));
        if (l->subject == NULL || l->issuer == NULL)
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (!to_unix(X509_get0_notAfter(x), &l->not_after)) l->not_after = 0;
    }
    if (n > 0) {
        X509 *top = sk_X509_value(v->chain, n - 1);
        for (size_t i = 0; i < v->nanchors && !out->anchored; i++)
            out->anchored = X509_cmp(top, v->anchors[i]) == 0;
    }
    return 0;
}

int tg_verify(const tg_verify_req *req, tg_verify_result *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    if (req == NULL || req->leaf == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "tg_verify needs a leaf certificate");
    if (req->nanchors == 0)
        return tg_err_set(err, TG_E_INVALID,
                          "there are no trust anchors: the CA file holds no certificates");
    vctx v = {.req = req, .server = req->purpose == TG_PURPOSE_SERVER};
    v.at = req->at_set ? req->at : (long long)time(NULL);
    if (req->host != NULL) {
        unsigned char addr[16];
        v.host_is_ip =
            inet_pton(AF_INET, req->host, addr) == 1 || inet_pton(AF_INET6, req->host, addr) == 1;
    }
    int rc = TG_E_INTERNAL;
    v.anchors = calloc(req->nanchors, sizeof(X509 *));
    v.pool = calloc(req->ncandidates + 1, sizeof(X509 *));
    if (v.anchors == NULL || v.pool == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    for (size_t i = 0; i < req->nanchors; i++)
        v.anchors[v.nanchors++] = req->anchors[i]->x;
    /* candidates that are anchors or the leaf add nothing but loops */
    for (size_t i = 0; i < req->ncandidates; i++) {
        X509 *c = req->candidates[i]->x;
        int dup = X509_cmp(c, req->leaf->x) == 0;
        for (size_t j = 0; !dup && j < v.nanchors; j++)
            dup = X509_cmp(c, v.anchors[j]) == 0;
        if (!dup) v.pool[v.npool++] = c;
    }
    /* the leaf's own rules and the host name do not depend on the path; a reference name
     * that is no host name (".example.com" would match every subdomain) matches nothing */
    if (req->host != NULL && !v.host_is_ip && !tg_dns_name_valid(req->host, 0)) {
        fail(v.leaf_why,
             "'%s' is not a host name: the leaf can be valid only for a DNS name of "
             "LDH labels (xn-- for internationalized names) or an IP address",
             req->host);
        v.leaf_bad = 1;
    } else if (!check_cert(&v, req->leaf->x, 0, 0, v.leaf_why) ||
               (req->host != NULL && !check_host(&v, req->leaf->x, v.leaf_why)))
        v.leaf_bad = 1;
    if (search(&v) != 0) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory while verifying the certificate");
        goto end;
    }
    if ((rc = result_chain(&v, out, err)) != 0) goto end;
    out->valid = v.valid;
    if (v.valid) {
        char anchor[160], when[40];
        name_text(X509_get_subject_name(sk_X509_value(v.chain, sk_X509_num(v.chain) - 1)), anchor,
                  sizeof(anchor));
        time_text(v.at, when, sizeof(when));
        snprintf(out->reason, sizeof(out->reason),
                 "a path of %zu certificate%s leads to the trust anchor \"%s\"; valid as a TLS %s "
                 "certificate%s%s at %s",
                 out->nchain, out->nchain == 1 ? "" : "s", anchor, v.server ? "server" : "client",
                 req->host ? " for " : "", req->host ? req->host : "", when);
    } else {
        snprintf(out->reason, sizeof(out->reason), "%s", v.why);
    }
    sanitize(out->reason);
    rc = 0;
end:
    if (rc != 0) tg_verify_result_clear(out);
    sk_X509_pop_free(v.chain, X509_free);
    free(v.anchors);
    free(v.pool);
    ERR_clear_error();
    return rc;
}

void tg_verify_result_clear(tg_verify_result *r)
{
    if (r == NULL) return;
    for (size_t i = 0; i < r->nchain; i++) {
        tg_cert_free(r->chain[i]);
        if (r->links != NULL) {
            free(r->links[i].subject);
            free(r->links[i].issuer);
        }
    }
    free(r->chain);
    free(r->links);
    memset(r, 0, sizeof(*r));
}
