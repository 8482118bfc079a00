/*
 * test_names.c — the rules for names and SANs against what an attacker sends (issue 8):
 * printable UTF-8 (base), friendly names given and derived (keyring), free names found
 * in few lookups, and SANs kept as a list of (type, value) up to the SNI index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "keyring/keyring_int.h"

#include "scratch.h"

static int setup(void **state)
{
    (void)state;
    return scratch_setup("names");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_teardown();
}

static void text_check(void **state)
{
    (void)state;
    static const char *good[] = {"plain", "Grüße", "日本語", "😀", "a b", "\xc2\xa0nbsp", ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(tg_text_check(good[i], NULL, NULL), 0);
    static const char *not_utf8[] = {
        "\xff",
        "a\xc3",
        "\xc0\xaf",
        "\xe0\x80\xaf",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80",
        "\xf8\x88\x80\x80\x80",
        "\x80",
        "\xe2\x82",
        "ok\xc3\x28",
    };
    for (size_t i = 0; i < sizeof(not_utf8) / sizeof(not_utf8[0]); i++)
        assert_int_equal(tg_text_check(not_utf8[i], NULL, NULL), TG_TEXT_NOT_UTF8);
    static const uint32_t forbidden[] = {0x01,   0x09,   0x1f,   0x7f,   0x80,   0x85,
                                         0x9f,   0x200b, 0x200c, 0x200d, 0x200e, 0x200f,
                                         0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2060,
                                         0x2066, 0x2067, 0x2068, 0x2069, 0xfeff};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        uint32_t c = forbidden[i], got = 0;
        char s[8] = "x";
        if (c < 0x80) {
            s[1] = (char)c;
        } else if (c < 0x800) {
            s[1] = (char)(0xc0 | (c >> 6));
            s[2] = (char)(0x80 | (c & 0x3f));
        } else {
            s[1] = (char)(0xe0 | (c >> 12));
            s[2] = (char)(0x80 | ((c >> 6) & 0x3f));
            s[3] = (char)(0x80 | (c & 0x3f));
        }
        size_t at = 0;
        assert_int_equal(tg_text_check(s, &at, &got), TG_TEXT_FORBIDDEN);
        assert_int_equal(at, 1);
        assert_int_equal(got, c);
    }
}

static void text_clean_and_cut(void **state)
{
    (void)state;
    char out[129];
    /* 100 two-byte characters: cut to 128 bytes, i.e. 64 characters, never half of one */
    char in[512] = "";
    for (int i = 0; i < 100; i++)
        strcat(in, "é");
    tg_text_clean(in, out, sizeof(out), 128);
    assert_int_equal(strlen(out), 128);
    assert_int_equal(tg_text_check(out, NULL, NULL), 0);
    tg_text_clean(in, out, sizeof(out), 127);
    assert_int_equal(strlen(out), 126);
    assert_int_equal(tg_text_check(out, NULL, NULL), 0);
    /* invalid bytes and controls are replaced, invisible characters dropped */
    tg_text_clean("a\xff"
                  "b\x01"
                  "c\xe2\x80\xae"
                  "d\xef\xbb\xbf",
                  out, sizeof(out), 128);
    assert_string_equal(out, "a\xef\xbf\xbd"
                             "b\xef\xbf\xbd"
                             "cd");
    assert_int_equal(tg_utf8_cut("日本", 6, 5), 3);
    assert_int_equal(tg_utf8_cut("日本", 6, 6), 6);
    assert_int_equal(tg_utf8_cut("日本", 6, 2), 0);
}

static void name_rules(void **state)
{
    (void)state;
    tg_err err = {0};
    assert_int_equal(tg_keyring_name_check("Zertifikat für Grüße", NULL), 0);
    assert_int_equal(tg_keyring_name_check("bad\xffname", &err), TG_E_INVALID);
    assert_non_null(strstr(err.msg, "UTF-8"));
    tg_err_clear(&err);
    assert_int_equal(tg_keyring_name_check("evil\xe2\x80\xaegnp", &err), TG_E_INVALID);
    assert_non_null(strstr(err.msg, "U+202E"));
    char out[TG_NAME_MAX + 1];
    char in[600] = "";
    for (int i = 0; i < 100; i++)
        strcat(in, "\xf0\x9f\x98\x80"); /* 4-byte characters */
    kr_name_derive(in, out, sizeof(out));
    assert_int_equal(strlen(out), 128);
    assert_int_equal(tg_keyring_name_check(out, NULL), 0);
    kr_name_derive("  \xe2\x80\x8b ", out, sizeof(out));
    assert_string_equal(out, "certificate");
    kr_name_derive(" x\xff ", out, sizeof(out));
    assert_int_equal(tg_keyring_name_check(out, NULL), 0);
}

/* Adds a certificate row named name (fake DER; the store does not parse it). */
static void add_named(tg_keyring *kr, const char *name, int i)
{
    tg_store_cert c = {0};
    unsigned char der[8] = {0x30, 0x03, 0x02, 0x01, (unsigned char)i};
    c.name = (char *)name;
    c.der = der;
    c.derlen = 5;
    snprintf(c.sha256, sizeof(c.sha256), "%064d", i);
    c.spki_sha256[0] = 1;
    assert_int_equal(tg_store_cert_add(kr->st, &c, NULL), 0);
}

static void unique_name_in_few_lookups(void **state)
{
    (void)state;
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    enum { N = 3000 };
    assert_int_equal(tg_store_begin(kr->st, NULL), 0);
    char name[TG_NAME_MAX + 16];
    add_named(kr, "same.example.com", 1);
    for (int i = 2; i <= N; i++) {
        snprintf(name, sizeof(name), "same.example.com-%d", i);
        add_named(kr, name, i);
    }
    size_t probes = 0;
    assert_int_equal(kr_unique_name(kr, "same.example.com", name, sizeof(name), &probes, NULL), 0);
    assert_string_equal(name, "same.example.com-3001");
    assert_true(probes <= 2 * 13 + 2); /* log2(3000) ~ 12 for galloping plus bisecting */
    /* a gap is found too (any free number will do), still in few lookups */
    assert_int_equal(kr_unique_name(kr, "other", name, sizeof(name), &probes, NULL), 0);
    assert_string_equal(name, "other");
    assert_int_equal(probes, 1);
    /* a long base leaves room for the number and stays valid UTF-8 */
    char base[300] = "";
    for (int i = 0; i < 70; i++)
        strcat(base, "é");
    assert_int_equal(kr_unique_name(kr, base, name, sizeof(name), NULL, NULL), 0);
    add_named(kr, name, N + 1);
    assert_int_equal(kr_unique_name(kr, base, name, sizeof(name), NULL, NULL), 0);
    assert_true(strlen(name) <= TG_NAME_MAX);
    assert_int_equal(tg_keyring_name_check(name, NULL), 0);
    assert_non_null(strstr(name, "-2"));
    tg_store_rollback(kr->st);
    tg_keyring_close(kr);
}

static void host_name_rule(void **state)
{
    (void)state;
    static const char *good[] = {"a.example.com",     "*.example.com", "xn--bcher-kva.example",
                                 "Mixed.Example.COM", "a-b.c",         "localhost"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(tg_san_host_name(good[i]));
    static const char *bad[] = {
        "evil.example.net, DNS:bank.example.com",
        "x.example.net,DNS:bank.example.com",
        "bank.example.com evil",
        "bank.example.com.",
        "*.*.example.com",
        "a.*.example.com",
        "*example.com",
        "*.com",
        "b\xc3\xbc"
        "cher.de",
        "a_b.example.com",
        "-a.example.com",
        "a..b",
        "",
        "bank.example.com?.evil.net",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(tg_san_host_name(bad[i]));
}

static void san_list_round_trip(void **state)
{
    (void)state;
    tg_sanlist l = {0}, back;
    static const char *values[] = {"evil.example.net, DNS:bank.example.com", "a\"b\\c",
                                   "[\"DNS\",\"x\"]", "Gr\xc3\xbc\xc3\x9f", ""};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_int_equal(tg_sanlist_add(&l, TG_SAN_DNS, values[i], strlen(values[i])), 0);
    assert_int_equal(tg_sanlist_add(&l, TG_SAN_IP, "2001:db8::1", 11), 0);
    char *json = kr_sans_encode(&l);
    assert_non_null(json);
    assert_int_equal(kr_sans_decode(json, &back), 0);
    assert_int_equal(back.n, l.n);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(back.v[i].type, l.v[i].type);
        assert_string_equal(back.v[i].value, l.v[i].value);
    }
    size_t bad = 0;
    json_t *doc = kr_sans_doc(json, &bad);
    assert_int_equal(json_array_size(doc), l.n);
    assert_int_equal(bad, 5); /* every DNS value above is no host name */
    json_decref(doc);
    tg_sanlist_free(&back);
    /* a damaged column is an empty list and an error, never a guess */
    assert_int_equal(kr_sans_decode("DNS:a, DNS:b", &back), -1);
    assert_int_equal(back.n, 0);
    assert_int_equal(kr_sans_decode(NULL, &back), -1);
    free(json);
    tg_sanlist_free(&back);
    tg_sanlist_free(&l);
}

/* tg_sans_build refuses more than 1000 names as soon as the list passes 1000, instead of
 * first removing duplicates among all of them (quadratic: 300,000 --san values took
 * minutes before the refusal). */
static void sans_build_refuses_many_early(void **state)
{
    (void)state;
    enum { N = 300000 };
    char **v = calloc(N, sizeof(*v));
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        v[i] = malloc(32);
        snprintf(v[i], 32, "DNS:h%d.example.com", i);
    }
    tg_subject s = {.cn = "many.example.com"};
    tg_strlist out;
    tg_err err = {0};
    assert_int_equal(tg_sans_build(&s, (const char *const *)v, N, &out, &err), TG_E_INVALID);
    assert_non_null(strstr(err.msg, "1000"));
    assert_int_equal(out.n, 0);
    /* duplicates do not count: 5000 copies of 10 names are 11 names with the CN */
    for (int i = 0; i < 5000; i++)
        snprintf(v[i], 32, "DNS:h%d.example.com", i % 10);
    assert_int_equal(tg_sans_build(&s, (const char *const *)v, 5000, &out, NULL), 0);
    assert_int_equal(out.n, 11);
    tg_strlist_free(&out);
    for (int i = 0; i < N; i++)
        free(v[i]);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_check),
        cmocka_unit_test(text_clean_and_cut),
        cmocka_unit_test(name_rules),
        cmocka_unit_test(unique_name_in_few_lookups),
        cmocka_unit_test(host_name_rule),
        cmocka_unit_test(san_list_round_trip),
        cmocka_unit_test(sans_build_refuses_many_early),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
