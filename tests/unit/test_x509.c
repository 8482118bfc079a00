/*
 * test_x509.c — names and SAN rules, key specs, certificates and requests, decoding,
 * cipher lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x509/x509.h"

static void san_rules(void **state)
{
    (void)state;
    char out[320];
    tg_err err = {0};
    assert_int_equal(tg_san_normalize("DNS:WWW.Example.COM", out, sizeof out, &err), 0);
    assert_string_equal(out, "DNS:www.example.com");
    assert_int_equal(tg_san_normalize("*.example.com", out, sizeof out, NULL), 0);
    assert_string_equal(out, "DNS:*.example.com");
    assert_int_equal(tg_san_normalize("10.0.0.1", out, sizeof out, NULL), 0);
    assert_string_equal(out, "IP:10.0.0.1");
    assert_int_equal(tg_san_normalize("IP:2001:DB8::0:1", out, sizeof out, NULL), 0);
    assert_string_equal(out, "IP:2001:db8::1");
    assert_int_equal(tg_san_normalize("email:ops@example.com", out, sizeof out, NULL), 0);
    assert_string_equal(out, "email:ops@example.com");
    assert_int_equal(tg_san_normalize("DNS:xn--bcher-kva.example", out, sizeof out, NULL), 0);

    const char *bad[] = {
        "www.*.example.com", "w*.example.com",  "*.com",          "*",         "**.example.com",
        "-a.example.com",    "a..example.com",  "a.example.com.", "bücher.de", "IP:300.1.1.1",
        "email:nobody",      "a_b.example.com", "URI:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_err e = {0};
        assert_int_equal(tg_san_normalize(bad[i], out, sizeof out, &e), TG_E_INVALID);
        assert_true(strlen(e.msg) > 10);
    }
    tg_err e = {0};
    tg_san_normalize("bücher.de", out, sizeof out, &e);
    assert_non_null(strstr(e.msg, "xn--"));
    e.code = 0;
    tg_san_normalize("www.*.example.com", out, sizeof out, &e);
    assert_non_null(strstr(e.msg, "leftmost"));
}

static void cn_becomes_first_san(void **state)
{
    (void)state;
    tg_subject s = {.cn = "Shop.Example.com"};
    const char *sans[] = {"DNS:a.example.com", "shop.example.com", "10.1.1.1"};
    tg_strlist l;
    assert_int_equal(tg_sans_build(&s, sans, 3, &l, NULL), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0], "DNS:shop.example.com");
    assert_string_equal(l.v[1], "DNS:a.example.com");
    assert_string_equal(l.v[2], "IP:10.1.1.1");
    tg_strlist_free(&l);

    tg_subject label = {.cn = "My Appliance"};
    assert_int_equal(tg_sans_build(&label, NULL, 0, &l, NULL), 0);
    assert_int_equal(l.n, 0);
    tg_strlist_free(&l);
}

static void subject_rules(void **state)
{
    (void)state;
    tg_subject ok = {.cn = "x", .country = "de", .org = "O", .email = "a@example.com"};
    assert_int_equal(tg_subject_check(&ok, NULL), 0);
    const char *countries[] = {"XX", "USA", "U", "1A", "ZZ"};
    for (size_t i = 0; i < 5; i++) {
        tg_subject s = {.cn = "x", .country = countries[i]};
        tg_err e = {0};
        assert_int_equal(tg_subject_check(&s, &e), TG_E_INVALID);
        assert_non_null(strstr(e.msg, "ISO 3166"));
    }
    /* a missing common name is a missing required input (usage); an empty one a bad value */
    tg_subject nocn = {.org = "O"}, emptycn = {.cn = ""};
    assert_int_equal(tg_subject_check(&nocn, NULL), TG_E_USAGE);
    assert_int_equal(tg_subject_check(&emptycn, NULL), TG_E_INVALID);
    char longcn[80];
    memset(longcn, 'a', sizeof longcn - 1);
    longcn[sizeof longcn - 1] = '\0';
    tg_subject toolong = {.cn = longcn};
    assert_int_equal(tg_subject_check(&toolong, NULL), TG_E_INVALID);
    tg_subject badwild = {.cn = "a.*.example.com"};
    assert_int_equal(tg_subject_check(&badwild, NULL), TG_E_INVALID);
    tg_subject ctrl = {.cn = "a\tb"};
    assert_int_equal(tg_subject_check(&ctrl, NULL), TG_E_INVALID);
}

static void keyspecs(void **state)
{
    (void)state;
    tg_keyspec ks;
    assert_int_equal(tg_keyspec_parse(NULL, &ks, NULL), 0);
    assert_true(ks.rsa && ks.bits == 2048);
    assert_int_equal(tg_keyspec_parse("ec:p384", &ks, NULL), 0);
    assert_false(ks.rsa);
    assert_string_equal(ks.group, "P-384");
    tg_err e = {0};
    assert_int_equal(tg_keyspec_parse("rsa:1024", &ks, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "2048"));
    assert_int_equal(tg_keyspec_parse("rsa:5000", &ks, NULL), TG_E_INVALID);
    assert_int_equal(tg_keyspec_parse("dsa:1024", &ks, NULL), TG_E_INVALID);
}

static void selfsign_describe_roundtrip(void **state)
{
    (void)state;
    tg_keyspec ks;
    tg_key *key = NULL;
    tg_cert *cert = NULL, *back = NULL;
    assert_int_equal(tg_keyspec_parse("ec:p256", &ks, NULL), 0);
    assert_int_equal(tg_key_generate(&ks, &key, NULL), 0);
    tg_subject s = {.cn = "web.example.com", .country = "US", .org = "Example"};
    tg_strlist sans;
    const char *extra[] = {"IP:192.0.2.1"};
    assert_int_equal(tg_sans_build(&s, extra, 1, &sans, NULL), 0);
    assert_int_equal(tg_cert_selfsign(key, &s, &sans, 30, 0, &cert, NULL), 0);
    tg_certinfo info;
    assert_int_equal(tg_cert_info(cert, &info, NULL), 0);
    assert_string_equal(info.subject_cn, "web.example.com");
    assert_int_equal(info.sans.n, 2);
    assert_int_equal(info.sans.v[0].type, TG_SAN_DNS);
    assert_string_equal(info.sans.v[0].value, "web.example.com");
    assert_int_equal(info.sans.v[1].type, TG_SAN_IP);
    assert_string_equal(info.sans.v[1].value, "192.0.2.1");
    assert_string_equal(info.key_type, "EC");
    assert_string_equal(info.key_desc, "EC P-256");
    assert_true(info.self_signed);
    assert_false(info.is_ca);
    long long days = (info.not_after - info.not_before) / 86400;
    assert_int_equal(days, 30);
    assert_true(tg_cert_matches_key(cert, key));

    unsigned char *der;
    size_t len;
    assert_int_equal(tg_cert_to_der(cert, &der, &len, NULL), 0);
    assert_int_equal(tg_cert_from_der(der, len, &back, NULL), 0);
    tg_certinfo info2;
    assert_int_equal(tg_cert_info(back, &info2, NULL), 0);
    assert_string_equal(info.sha256, info2.sha256);
    /* a truncated DER is refused */
    tg_cert *trunc = NULL;
    assert_int_equal(tg_cert_from_der(der, len - 1, &trunc, NULL), TG_E_INVALID);
    assert_null(trunc);

    /* the private key survives PKCS#8 DER and keeps its identity */
    unsigned char *priv;
    size_t plen;
    unsigned char a[32], b[32];
    tg_key *key2 = NULL;
    assert_int_equal(tg_key_to_der(key, &priv, &plen, NULL), 0);
    assert_int_equal(tg_key_from_der(priv, plen, &key2, NULL), 0);
    assert_int_equal(tg_key_spki_sha256(key, a, NULL), 0);
    assert_int_equal(tg_cert_spki_sha256(cert, b, NULL), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(tg_key_spki_sha256(key2, b, NULL), 0);
    assert_memory_equal(a, b, 32);
    tg_free_secret(priv, plen);

    tg_certinfo_clear(&info);
    tg_certinfo_clear(&info2);
    free(der);
    tg_strlist_free(&sans);
    tg_cert_free(cert);
    tg_cert_free(back);
    tg_key_free(key);
    tg_key_free(key2);
}

static void csr_and_decode(void **state)
{
    (void)state;
    tg_keyspec ks;
    tg_key *key = NULL;
    assert_int_equal(tg_keyspec_parse("ec:p256", &ks, NULL), 0);
    assert_int_equal(tg_key_generate(&ks, &key, NULL), 0);
    tg_subject s = {.cn = "req.example.com"};
    tg_strlist sans;
    assert_int_equal(tg_sans_build(&s, NULL, 0, &sans, NULL), 0);
    char *pem = NULL;
    assert_int_equal(tg_csr_create(key, &s, &sans, 1, &pem, NULL), 0);
    assert_non_null(strstr(pem, "BEGIN CERTIFICATE REQUEST"));
    /* a CSR is not a certificate: the decoder says what it is */
    tg_bundle b;
    tg_err e = {0};
    assert_int_equal(tg_bundle_decode((unsigned char *)pem, strlen(pem), "req.pem", NULL, &b, &e),
                     TG_E_INVALID);
    assert_non_null(strstr(e.msg, "request"));

    /* a PEM with a certificate and a key, text around them */
    tg_cert *cert = NULL;
    assert_int_equal(tg_cert_selfsign(key, &s, &sans, 5, 0, &cert, NULL), 0);
    char *cpem;
    size_t clen;
    assert_int_equal(tg_cert_to_pem(cert, &cpem, &clen, NULL), 0);
    unsigned char *kder;
    size_t klen;
    assert_int_equal(tg_key_to_der(key, &kder, &klen, NULL), 0);
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "Bag Attributes\n  friendlyName: x\n%sjunk line\n", cpem);
    assert_int_equal(tg_bundle_decode((unsigned char *)buf, (size_t)n, "mix.pem", NULL, &b, NULL),
                     0);
    assert_int_equal(b.ncerts, 1);
    assert_int_equal(b.nkeys, 0);
    tg_bundle_clear(&b);
    /* DER key (PKCS#8) */
    assert_int_equal(tg_bundle_decode(kder, klen, "key.der", NULL, &b, NULL), 0);
    assert_int_equal(b.nkeys, 1);
    assert_true(tg_cert_matches_key(cert, b.keys[0]));
    tg_bundle_clear(&b);
    /* empty and garbage */
    e.code = 0;
    assert_int_equal(tg_bundle_decode((unsigned char *)"", 0, "empty", NULL, &b, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "empty"));
    unsigned char junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(tg_bundle_decode(junk, sizeof junk, "junk", NULL, &b, NULL), TG_E_INVALID);

    tg_free_secret(kder, klen);
    free(cpem);
    free(pem);
    tg_cert_free(cert);
    tg_strlist_free(&sans);
    tg_key_free(key);
}

/* A face answering with a fixed passphrase (arg). */
static int secret_is(void *arg, int confirm, char *buf, size_t size, size_t *len, tg_err *err)
{
    (void)confirm, (void)err;
    *len = (size_t)snprintf(buf, size, "%s", (const char *)arg);
    return 0;
}

static void p12_wrong_password(void **state)
{
    (void)state;
    tg_keyspec ks;
    tg_key *key = NULL;
    tg_cert *cert = NULL;
    tg_subject s = {.cn = "p12.example.com"};
    tg_strlist sans;
    assert_int_equal(tg_keyspec_parse("ec:p256", &ks, NULL), 0);
    assert_int_equal(tg_key_generate(&ks, &key, NULL), 0);
    assert_int_equal(tg_sans_build(&s, NULL, 0, &sans, NULL), 0);
    assert_int_equal(tg_cert_selfsign(key, &s, &sans, 5, 0, &cert, NULL), 0);
    unsigned char *p12;
    size_t len;
    assert_int_equal(
        tg_p12_create(cert, key, NULL, 0, "x", "right-password", TG_P12_MODERN, &p12, &len, NULL),
        0);
    tg_passsrc wrong = {.get = secret_is, .arg = "wrong-password"};
    tg_bundle b;
    tg_err e = {0};
    assert_int_equal(tg_bundle_decode(p12, len, "x.p12", &wrong, &b, &e), TG_E_PASSWORD);
    assert_non_null(strstr(e.msg, "wrong"));
    tg_passsrc right = {.get = secret_is, .arg = "right-password"};
    assert_int_equal(tg_bundle_decode(p12, len, "x.p12", &right, &b, NULL), 0);
    assert_int_equal(b.ncerts, 1);
    assert_int_equal(b.nkeys, 1);
    assert_true(tg_cert_matches_key(b.certs[0], b.keys[0]));
    tg_bundle_clear(&b);
    /* no password source at all */
    tg_passsrc none = {0};
    e.code = 0;
    assert_int_equal(tg_bundle_decode(p12, len, "x.p12", &none, &b, &e), TG_E_PASSWORD);
    free(p12);
    tg_strlist_free(&sans);
    tg_cert_free(cert);
    tg_key_free(key);
}

/* Encrypted PKCS#8 (EncryptedPrivateKeyInfo) with zero salts, IVs and ciphertext, made
 * by tests/interop/kdf_files.py: what matters is the KDF parameters. */
static const unsigned char scrypt_p[] = {/* scrypt N=2^16 r=2 p=65532: an hour of CPU */
                                         0x30, 0x6e, 0x30, 0x5a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x05, 0x0d, 0x30, 0x4d, 0x30, 0x2c, 0x06,
                                         0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b,
                                         0x30, 0x1f, 0x04, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x02, 0x03, 0x01, 0x00, 0x00, 0x02, 0x01, 0x02, 0x02, 0x03,
                                         0x00, 0xff, 0xfc, 0x30, 0x1d, 0x06, 0x09, 0x60, 0x86, 0x48,
                                         0x01, 0x65, 0x03, 0x04, 0x01, 0x2a, 0x04, 0x10, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x04, 0x10, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                         0x00, 0x00};
static const unsigned char pbkdf2_1m[] =
    {/* PBKDF2-HMAC-SHA256, 1,000,000 iterations */
     0x30, 0x74, 0x30, 0x60, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d,
     0x30, 0x53, 0x30, 0x32, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c,
     0x30, 0x25, 0x04, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x0f, 0x42, 0x40, 0x30, 0x0c, 0x06, 0x08, 0x2a,
     0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09, 0x05, 0x00, 0x30, 0x1d, 0x06, 0x09, 0x60, 0x86,
     0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a, 0x04, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x10, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/* The password-hashing budget (kdfcost.c): counted over the whole file, before deriving. */
static void kdf_budget(void **state)
{
    (void)state;
    long long work = -1;
    tg_err e = {0};
    assert_int_equal(tg_bundle_kdf_check(scrypt_p, sizeof scrypt_p, "f", &work, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "4,000,000"));
    assert_true(work > TG_KDF_WORK_MAX);
    /* the decoder refuses it the same way, without asking for a password */
    tg_bundle b;
    e = (tg_err){0};
    assert_int_equal(tg_bundle_decode(scrypt_p, sizeof scrypt_p, "f", NULL, &b, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "password-hashing work"));

    /* one block of 1,000,000 iterations fits, and so do four in one PEM file (exactly
     * the budget); a fifth does not */
    assert_int_equal(tg_bundle_kdf_check(pbkdf2_1m, sizeof pbkdf2_1m, "f", &work, NULL), 0);
    assert_int_equal(work, 1000000);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char block[512];
    size_t i = (size_t)snprintf(block, sizeof block, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
    for (size_t k = 0; k < sizeof pbkdf2_1m; k += 3) { /* base64 on one line */
        size_t left = sizeof pbkdf2_1m - k;
        unsigned v = (unsigned)pbkdf2_1m[k] << 16;
        if (left > 1) v |= (unsigned)pbkdf2_1m[k + 1] << 8;
        if (left > 2) v |= pbkdf2_1m[k + 2];
        block[i++] = tbl[(v >> 18) & 63];
        block[i++] = tbl[(v >> 12) & 63];
        block[i++] = left > 1 ? tbl[(v >> 6) & 63] : '=';
        block[i++] = left > 2 ? tbl[v & 63] : '=';
    }
    snprintf(block + i, sizeof block - i, "\n-----END ENCRYPTED PRIVATE KEY-----\n");
    char pem[4096] = "";
    for (int blocks = 1; blocks <= 5; blocks++) {
        strcat(pem, block);
        e = (tg_err){0};
        int rc = tg_bundle_kdf_check((const unsigned char *)pem, strlen(pem), "f", &work, &e);
        assert_int_equal(rc, blocks <= 4 ? 0 : TG_E_INVALID);
        assert_int_equal(work, blocks * 1000000LL);
    }
    /* an empty or plain input costs nothing */
    assert_int_equal(tg_bundle_kdf_check((const unsigned char *)"x", 1, "f", &work, NULL), 0);
    assert_int_equal(work, 0);
}

/* Cipher lists are checked by libssl itself: a list that selects nothing is refused. */
static void cipher_lists(void **state)
{
    (void)state;
    tg_err e = {0};
    assert_int_equal(tg_tls_ciphers_check("ECDHE+AESGCM:ECDHE+CHACHA20", NULL), 0);
    assert_int_equal(tg_tls_ciphers_check("HIGH:!aNULL:!MD5", NULL), 0);
    assert_int_equal(tg_tls_ciphers_check("ECDHE-RSA-AES128-GCM-SHA256", NULL), 0);
    assert_int_equal(tg_tls_ciphers_check("NO-SUCH-CIPHER", &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "selects no TLS 1.2 cipher"));
    /* TLS 1.3 suites are not a TLS 1.2 list */
    assert_int_equal(tg_tls_ciphers_check("TLS_AES_128_GCM_SHA256", NULL), TG_E_INVALID);
    assert_int_equal(tg_tls_ciphers_check("", NULL), TG_E_INVALID);
    assert_int_equal(tg_tls_ciphers_check(NULL, NULL), TG_E_INVALID);
    assert_int_equal(tg_tls_ciphers_check("HIGH !aNULL", NULL), TG_E_INVALID);
    assert_int_equal(tg_tls_ciphers_check("HIGH\n", NULL), TG_E_INVALID);
    char big[TG_TLS_CIPHERS_MAX + 8];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(tg_tls_ciphers_check(big, NULL), TG_E_INVALID);
}

/* RFC 8737 §3: the tls-alpn-01 certificate names the domain and carries the critical
 * acmeIdentifier extension whose value is the DER OCTET STRING of the digest. */
static void acme_alpn_certificate(void **state)
{
    (void)state;
    tg_err err = {0};
    tg_keyspec ks;
    tg_key *key = NULL;
    tg_cert *cert = NULL;
    unsigned char digest[32];
    for (int i = 0; i < 32; i++)
        digest[i] = (unsigned char)(i * 7);
    assert_int_equal(tg_keyspec_parse("ec:p256", &ks, &err), 0);
    assert_int_equal(tg_key_generate(&ks, &key, &err), 0);
    assert_int_equal(tg_cert_acme_alpn(key, "a.example.com", digest, &cert, &err), 0);
    assert_true(tg_cert_matches_key(cert, key));
    assert_int_equal(tg_cert_san_count(cert), 1);
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(tg_cert_to_der(cert, &der, &len, &err), 0);
    /* OID 1.3.6.1.5.5.7.1.31, critical TRUE, OCTET STRING { OCTET STRING (32) digest } */
    static const unsigned char ext[] = {0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01,
                                        0x1f, 0x01, 0x01, 0xff, 0x04, 0x22, 0x04, 0x20};
    unsigned char *at = NULL;
    for (size_t i = 0; i + sizeof(ext) + 32 <= len && at == NULL; i++)
        if (memcmp(der + i, ext, sizeof(ext)) == 0) at = der + i;
    assert_non_null(at);
    assert_memory_equal(at + sizeof(ext), digest, 32);
    tg_certinfo info;
    assert_int_equal(tg_cert_info(cert, &info, &err), 0);
    tg_certinfo_clear(&info);
    free(der);
    tg_cert_free(cert);
    tg_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(san_rules),
        cmocka_unit_test(cn_becomes_first_san),
        cmocka_unit_test(subject_rules),
        cmocka_unit_test(keyspecs),
        cmocka_unit_test(selfsign_describe_roundtrip),
        cmocka_unit_test(csr_and_decode),
        cmocka_unit_test(p12_wrong_password),
        cmocka_unit_test(kdf_budget),
        cmocka_unit_test(cipher_lists),
        cmocka_unit_test(acme_alpn_certificate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
