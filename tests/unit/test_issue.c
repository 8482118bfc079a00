/*
 * test_issue.c — leaves signed by a CA (x509 tg_cert_issue, tg_spki): checked by
 * OpenSSL's own X509_verify_cert and by tg_verify, validity clipping, SAN round trip,
 * subjects given three ways, refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "x509/ossl.h"
#include "x509/x509.h"

static tg_key *gen(const char *spec)
{
    tg_keyspec ks;
    tg_key *k = NULL;
    assert_int_equal(tg_keyspec_parse(spec, &ks, NULL), 0);
    assert_int_equal(tg_key_generate(&ks, &k, NULL), 0);
    return k;
}

static tg_cert *make_ca(const tg_key *key, int days)
{
    tg_subject s = {.cn = "Test Inspection CA", .org = "Example", .country = "DE"};
    tg_strlist none = {0};
    tg_cert *ca = NULL;
    tg_err err = {0};
    assert_int_equal(tg_cert_selfsign(key, &s, &none, days, 1, &ca, &err), 0);
    return ca;
}

static void sans_of(tg_sanlist *l)
{
    memset(l, 0, sizeof(*l));
    assert_int_equal(tg_sanlist_add(l, TG_SAN_DNS, "www.example.com", 15), 0);
    assert_int_equal(tg_sanlist_add(l, TG_SAN_DNS, "*.cdn.example.com", 17), 0);
    assert_int_equal(tg_sanlist_add(l, TG_SAN_IP, "192.0.2.7", 9), 0);
    assert_int_equal(tg_sanlist_add(l, TG_SAN_IP, "2001:db8::1", 11), 0);
}

/* OpenSSL's verifier, the CA the only trust anchor, purpose SSL server, the host name. */
static int openssl_verify(const tg_cert *leaf, const tg_cert *ca, const char *host)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(st);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(st, tg_cert_x509(ca)), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, tg_cert_x509(leaf), NULL), 1);
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_X509_STRICT);
    if (strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host))
        X509_VERIFY_PARAM_set1_ip_asc(p, host);
    else
        X509_VERIFY_PARAM_set1_host(p, host, 0);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fprintf(stderr, "X509_verify_cert: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    return ok == 1;
}

static int tg_verify_ok(const tg_cert *leaf, tg_cert *ca, const char *host)
{
    tg_cert *anchors[] = {ca};
    tg_verify_req req = {.leaf = leaf, .anchors = anchors, .nanchors = 1, .host = host};
    tg_verify_result res;
    tg_err err = {0};
    assert_int_equal(tg_verify(&req, &res, &err), 0);
    int ok = res.valid;
    if (!ok) fprintf(stderr, "tg_verify: %s\n", res.reason);
    tg_verify_result_clear(&res);
    return ok;
}

static const char *ext_text(const tg_cert *c, int nid, char *buf, size_t size, int *critical)
{
    X509 *x = tg_cert_x509(c);
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    X509_EXTENSION *e = X509_get_ext(x, i);
    *critical = X509_EXTENSION_get_critical(e);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(X509V3_EXT_print(b, e, 0, 0), 1);
    int n = BIO_read(b, buf, (int)size - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(b);
    return buf;
}

/* One CA key type: leaves from a key and from a prepared SPKI, both verified twice. */
static void issue_with(const char *ca_spec, const char *leaf_spec, const char *sigalg)
{
    tg_key *cakey = gen(ca_spec), *leafkey = gen(leaf_spec);
    tg_cert *ca = make_ca(cakey, 30);
    tg_spki *spki = NULL;
    tg_err err = {0};
    assert_int_equal(tg_spki_new(leafkey, &spki, &err), 0);
    tg_sanlist sans;
    sans_of(&sans);
    long long now = (long long)time(NULL);
    tg_subject subj = {.cn = "www.example.com", .org = "Example Shop"};
    for (int fast = 0; fast <= 1; fast++) {
        tg_issue_req req = {.subject = &subj,
                            .sans = &sans,
                            .not_before = now - 3600,
                            .not_after = now + 7 * 86400,
                            .key = fast ? NULL : leafkey,
                            .spki = fast ? spki : NULL};
        tg_cert *leaf = NULL;
        assert_int_equal(tg_cert_issue(ca, cakey, &req, &leaf, &err), 0);
        assert_true(tg_cert_matches_key(leaf, leafkey));
        assert_true(tg_cert_issued_by(leaf, ca));
        assert_true(openssl_verify(leaf, ca, "www.example.com"));
        assert_true(openssl_verify(leaf, ca, "a.cdn.example.com"));
        assert_true(openssl_verify(leaf, ca, "192.0.2.7"));
        assert_false(openssl_verify(leaf, ca, "other.example.com"));
        assert_true(tg_verify_ok(leaf, ca, "www.example.com"));
        assert_true(tg_verify_ok(leaf, ca, "2001:db8::1"));
        assert_false(tg_verify_ok(leaf, ca, "example.com"));

        tg_certinfo info, cainfo;
        assert_int_equal(tg_cert_info(leaf, &info, NULL), 0);
        assert_int_equal(tg_cert_info(ca, &cainfo, NULL), 0);
        assert_string_equal(info.issuer, cainfo.subject);
        assert_string_equal(info.sigalg, sigalg);
        assert_false(info.is_ca);
        assert_false(info.self_signed);
        assert_int_equal(info.sans.n, sans.n);
        for (size_t i = 0; i < sans.n; i++) {
            assert_int_equal(info.sans.v[i].type, sans.v[i].type);
            assert_string_equal(info.sans.v[i].value, sans.v[i].value);
        }
        long long ca_nb, ca_na;
        tg_cert_validity(ca, &ca_nb, &ca_na);
        assert_int_equal(info.not_before, ca_nb); /* the CA is younger than an hour */
        assert_int_equal(info.not_after, now + 7 * 86400);
        assert_int_equal(strlen(info.serial), 32); /* 16 octets, top bit of 127 set */
        char buf[512];
        int crit;
        assert_string_equal(ext_text(leaf, NID_basic_constraints, buf, sizeof buf, &crit),
                            "CA:FALSE");
        assert_true(crit);
        ext_text(leaf, NID_key_usage, buf, sizeof buf, &crit);
        assert_true(crit);
        assert_string_equal(buf, strncmp(leaf_spec, "rsa", 3) == 0
                                     ? "Digital Signature, Key Encipherment"
                                     : "Digital Signature");
        assert_string_equal(ext_text(leaf, NID_ext_key_usage, buf, sizeof buf, &crit),
                            "TLS Web Server Authentication");
        assert_false(crit);
        assert_false(X509_get_ext_by_NID(tg_cert_x509(leaf), NID_subject_alt_name, -1) < 0);
        /* AKI = the CA's SKI; SKI = SHA-1 of the leaf's key bits, as OpenSSL's "hash" */
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(tg_cert_x509(leaf));
        const ASN1_OCTET_STRING *caski = X509_get0_subject_key_id(tg_cert_x509(ca));
        assert_non_null(aki);
        assert_int_equal(ASN1_OCTET_STRING_cmp(aki, caski), 0);
        unsigned char md[20];
        unsigned int mdlen = 0;
        assert_int_equal(X509_pubkey_digest(tg_cert_x509(leaf), EVP_sha1(), md, &mdlen), 1);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(tg_cert_x509(leaf));
        assert_non_null(ski);
        assert_int_equal(ASN1_STRING_length(ski), 20);
        assert_memory_equal(ASN1_STRING_get0_data(ski), md, 20);

        /* the openssl CLI agrees (interop: an implementation we did not drive ourselves) */
        char dir[] = "/tmp/tg-issue-XXXXXX", cmd[512];
        assert_non_null(mkdtemp(dir));
        const tg_cert *files[] = {ca, leaf};
        for (int f = 0; f < 2; f++) {
            char *pem, path[64];
            size_t plen;
            snprintf(path, sizeof path, "%s/%s.pem", dir, f ? "leaf" : "ca");
            assert_int_equal(tg_cert_to_pem(files[f], &pem, &plen, NULL), 0);
            FILE *fp = fopen(path, "w");
            assert_non_null(fp);
            assert_int_equal(fwrite(pem, 1, plen, fp), plen);
            fclose(fp);
            free(pem);
        }
        snprintf(cmd, sizeof cmd,
                 "openssl verify -x509_strict -purpose sslserver -verify_hostname "
                 "www.example.com -CAfile %s/ca.pem %s/leaf.pem >/dev/null 2>&1",
                 dir, dir);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);

        /* and after a trip through DER, as a client receives it */
        unsigned char *der;
        size_t len;
        tg_cert *back = NULL;
        assert_int_equal(tg_cert_to_der(leaf, &der, &len, NULL), 0);
        assert_int_equal(tg_cert_from_der(der, len, &back, NULL), 0);
        assert_true(openssl_verify(back, ca, "www.example.com"));
        free(der);
        tg_cert_free(back);
        tg_certinfo_clear(&info);
        tg_certinfo_clear(&cainfo);
        tg_cert_free(leaf);
    }
    tg_sanlist_free(&sans);
    tg_spki_free(spki);
    tg_cert_free(ca);
    tg_key_free(cakey);
    tg_key_free(leafkey);
}

static void issue_p256_ca(void **state)
{
    (void)state;
    issue_with("ec:p256", "ec:p256", "ecdsa-with-SHA256");
}

static void issue_rsa_ca(void **state)
{
    (void)state;
    issue_with("rsa:2048", "ec:p256", "sha256WithRSAEncryption");
    issue_with("rsa:2048", "rsa:2048", "sha256WithRSAEncryption");
}

static void issue_p384_ca(void **state)
{
    (void)state;
    issue_with("ec:p384", "ec:p384", "ecdsa-with-SHA384");
}

static void clipping_and_subjects(void **state)
{
    (void)state;
    tg_key *cakey = gen("ec:p256"), *leafkey = gen("ec:p256");
    tg_cert *ca = make_ca(cakey, 30);
    long long ca_nb, ca_na;
    tg_cert_validity(ca, &ca_nb, &ca_na);
    long long now = (long long)time(NULL);
    tg_sanlist sans;
    sans_of(&sans);
    tg_err err = {0};

    /* ten years under a CA that expires in 30 days; a start before the CA's */
    tg_issue_req req = {.cn = "www.example.com",
                        .sans = &sans,
                        .not_before = now - 400 * 86400LL,
                        .not_after = now + 3650 * 86400LL,
                        .key = leafkey};
    tg_cert *leaf = NULL;
    assert_int_equal(tg_cert_issue(ca, cakey, &req, &leaf, &err), 0);
    long long nb, na;
    tg_cert_validity(leaf, &nb, &na);
    assert_true(na <= ca_na);
    assert_int_equal(na, ca_na);
    assert_int_equal(nb, ca_nb);
    assert_true(openssl_verify(leaf, ca, "www.example.com"));
    tg_certinfo info;
    assert_int_equal(tg_cert_info(leaf, &info, NULL), 0);
    assert_string_equal(info.subject, "CN=www.example.com");
    tg_certinfo_clear(&info);

    /* the subject copied from another certificate (an upstream server's) */
    tg_subject up = {.cn = "shop.example.net", .org = "Shop Ltd", .country = "GB"};
    tg_strlist none = {0};
    tg_cert *upstream = NULL;
    assert_int_equal(tg_cert_selfsign(leafkey, &up, &none, 10, 0, &upstream, NULL), 0);
    tg_issue_req copy = {.subject_from = upstream,
                         .sans = &sans,
                         .not_before = now,
                         .not_after = now + 86400,
                         .key = leafkey};
    tg_cert *mirrored = NULL;
    assert_int_equal(tg_cert_issue(ca, cakey, &copy, &mirrored, &err), 0);
    tg_certinfo a, b;
    assert_int_equal(tg_cert_info(upstream, &a, NULL), 0);
    assert_int_equal(tg_cert_info(mirrored, &b, NULL), 0);
    assert_string_equal(a.subject, b.subject);
    tg_certinfo_clear(&a);
    tg_certinfo_clear(&b);

    /* no subject at all: the SANs carry the names and are critical */
    tg_issue_req bare = {
        .sans = &sans, .not_before = now, .not_after = now + 86400, .key = leafkey};
    tg_cert *anon = NULL;
    assert_int_equal(tg_cert_issue(ca, cakey, &bare, &anon, &err), 0);
    X509 *x = tg_cert_x509(anon);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
    assert_int_equal(X509_EXTENSION_get_critical(
                         X509_get_ext(x, X509_get_ext_by_NID(x, NID_subject_alt_name, -1))),
                     1);
    assert_true(openssl_verify(anon, ca, "www.example.com"));
    assert_true(tg_verify_ok(anon, ca, "www.example.com"));

    /* a validity entirely after the CA's is refused */
    tg_issue_req late = {.cn = "x.example.com",
                         .not_before = ca_na + 10,
                         .not_after = ca_na + 86400,
                         .key = leafkey};
    tg_cert *none_out = NULL;
    tg_err e = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &late, &none_out, &e), TG_E_INVALID);
    assert_null(none_out);
    assert_non_null(strstr(e.msg, "outside the CA certificate's"));

    tg_cert_free(leaf);
    tg_cert_free(mirrored);
    tg_cert_free(anon);
    tg_cert_free(upstream);
    tg_sanlist_free(&sans);
    tg_cert_free(ca);
    tg_key_free(cakey);
    tg_key_free(leafkey);
}

static void refusals(void **state)
{
    (void)state;
    tg_key *cakey = gen("ec:p256"), *other = gen("ec:p256"), *leafkey = gen("ec:p256");
    tg_cert *ca = make_ca(cakey, 30);
    long long now = (long long)time(NULL);
    tg_issue_req req = {
        .cn = "www.example.com", .not_before = now, .not_after = now + 86400, .key = leafkey};
    tg_cert *out = NULL;

    /* a key that is not the CA's */
    tg_err e = {0};
    assert_int_equal(tg_cert_issue(ca, other, &req, &out, &e), TG_E_INVALID);
    assert_null(out);
    assert_non_null(strstr(e.msg, "does not belong to the CA certificate"));

    /* an issuer that is not a CA */
    tg_subject s = {.cn = "leaf.example.com"};
    tg_strlist none = {0};
    tg_cert *notca = NULL;
    assert_int_equal(tg_cert_selfsign(other, &s, &none, 10, 0, &notca, NULL), 0);
    tg_err e2 = {0};
    assert_int_equal(tg_cert_issue(notca, other, &req, &out, &e2), TG_E_INVALID);
    assert_non_null(strstr(e2.msg, "not a CA certificate"));

    /* neither or both keys; two subjects; nothing to name the certificate */
    tg_issue_req nokey = req;
    nokey.key = NULL;
    tg_err e3 = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &nokey, &out, &e3), TG_E_INVALID);
    tg_issue_req two = req;
    two.subject = &s;
    tg_err e4 = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &two, &out, &e4), TG_E_INVALID);
    assert_non_null(strstr(e4.msg, "one way"));
    tg_issue_req empty = req;
    empty.cn = NULL;
    tg_err e5 = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &empty, &out, &e5), TG_E_INVALID);

    /* SANs that cannot be issued */
    tg_sanlist bad = {0};
    assert_int_equal(tg_sanlist_add(&bad, TG_SAN_URI, "https://x/", 10), 0);
    tg_issue_req uri = req;
    uri.sans = &bad;
    tg_err e6 = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &uri, &out, &e6), TG_E_INVALID);
    assert_non_null(strstr(e6.msg, "only DNS, IP and email"));
    tg_sanlist_free(&bad);
    assert_int_equal(tg_sanlist_add(&bad, TG_SAN_DNS,
                                    "b\xc3\xbc"
                                    "cher.de",
                                    9),
                     0);
    tg_err e7 = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &uri, &out, &e7), TG_E_INVALID);
    assert_non_null(strstr(e7.msg, "A-labels"));
    tg_sanlist_free(&bad);
    assert_int_equal(tg_sanlist_add(&bad, TG_SAN_IP, "300.1.1.1", 9), 0);
    tg_err e8 = {0};
    assert_int_equal(tg_cert_issue(ca, cakey, &uri, &out, &e8), TG_E_INVALID);
    assert_null(out);
    tg_sanlist_free(&bad);

    tg_cert_free(notca);
    tg_cert_free(ca);
    tg_key_free(cakey);
    tg_key_free(other);
    tg_key_free(leafkey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_p256_ca), cmocka_unit_test(issue_rsa_ca),
        cmocka_unit_test(issue_p384_ca), cmocka_unit_test(clipping_and_subjects),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
