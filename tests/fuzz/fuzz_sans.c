/*
 * fuzz_sans.c — libFuzzer target for the text and SAN rules an attacker reaches (issue 8):
 * printable UTF-8 (tg_text_check, tg_text_clean, tg_utf8_cut, tg_utf8_next in src/base),
 * the host-name rule of the SNI index (tg_san_host_name) and the SAN list a certificate
 * is built with and read back as (tg_sans_build, tg_cert_selfsign, tg_cert_info).
 *
 * Input layout (seeds.sh writes seeds in it): byte 0 is a byte limit for tg_text_clean
 * and tg_utf8_cut; the rest is split at '\n' into NUL-terminated pieces (one trailing '\n'
 * ignored). Each piece is checked as text and as a host name; piece 0 is also the CN and
 * the others SANs of a certificate that is made when tg_sans_build accepts them.
 *
 * Invariants: tg_text_check agrees with glibc's UTF-8 decoder (C.UTF-8 mbrtowc) on what is
 * UTF-8; cleaned text always passes the check, fits the limit and is a fixed point for
 * text that passed; a cut ends on a character boundary; a host name is ASCII LDH labels
 * of 1-63 bytes, at most 253 bytes, '*' only as "*." at the start over two more labels
 * (checked by a second implementation here); and the certificate's SANs read back
 * (tg_cert_info) are exactly the built list — no value becomes two.
 */
#include "x509/x509.h"
#include "check.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define MAXPIECES 64

static tg_key *key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    CHECK(setlocale(LC_CTYPE, "C.UTF-8") != NULL);
    tg_keyspec ks;
    CHECK(tg_keyspec_parse("ec:p256", &ks, NULL) == 0);
    CHECK(tg_key_generate(&ks, &key, NULL) == 0);
    return 0;
}

/* glibc's opinion: 1 when s is UTF-8 of scalar values. glibc decodes 4-byte forms above
 * U+10FFFF (RFC 3629 ends there) and surrogates are no scalar values: both refused here. */
static int glibc_utf8(const char *s)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    size_t n = strlen(s);
    while (n > 0) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s, n, &st);
        if (k == (size_t)-1 || k == (size_t)-2 || k == 0) return 0;
        if ((wc >= 0xd800 && wc <= 0xdfff) || (uint32_t)wc > 0x10ffff) return 0;
        s += k, n -= k;
    }
    return 1;
}

/* A second, independent spelling of the host-name rule. */
static int host_reference(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) return 0;
    size_t start = 0, labels = 0;
    if (n >= 2 && s[0] == '*' && s[1] == '.') start = 2;
    size_t len = 0;
    for (size_t i = start; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (len == 0 || len > 63 || s[i - len] == '-' || s[i - 1] == '-') return 0;
            labels++;
            len = 0;
            continue;
        }
        int ldh =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ldh) return 0;
        len++;
    }
    return start == 0 || labels >= 2;
}

static void one_text(const char *s, size_t limit)
{
    uint32_t cp = 0;
    size_t at = 0;
    int rc = tg_text_check(s, &at, &cp);
    CHECK(rc == 0 || rc == TG_TEXT_NOT_UTF8 || rc == TG_TEXT_FORBIDDEN);
    int utf8 = 1; /* tg_utf8_next over the whole string (tg_text_check stops at the first
                   * problem, which may be a forbidden character before invalid bytes) */
    for (const char *p = s; *p && utf8;) {
        uint32_t c;
        size_t k = tg_utf8_next(p, &c);
        utf8 = k > 0;
        p += k;
    }
    CHECK(utf8 == glibc_utf8(s));
    if (rc == 0) CHECK(utf8);
    if (rc == TG_TEXT_NOT_UTF8) CHECK(!utf8);
    if (rc != 0) CHECK(at < strlen(s));
    if (rc == TG_TEXT_FORBIDDEN) CHECK(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp >= 0x200b);

    size_t n = strlen(s);
    char *out = malloc(n * 3 + 8);
    CHECK(out != NULL);
    tg_text_clean(s, out, n * 3 + 8, limit);
    CHECK(strlen(out) <= limit);
    CHECK(tg_text_check(out, NULL, NULL) == 0);
    if (rc == 0) {
        tg_text_clean(s, out, n * 3 + 8, n * 3 + 7);
        CHECK(strcmp(out, s) == 0); /* printable text is its own cleaning */
        size_t cut = tg_utf8_cut(s, n, limit);
        CHECK(cut <= limit && cut <= n);
        memcpy(out, s, cut);
        out[cut] = '\0';
        CHECK(tg_text_check(out, NULL, NULL) == 0);
    }
    free(out);

    int host = tg_san_host_name(s);
    CHECK(host == host_reference(s));
    if (host) CHECK(strchr(s, ',') == NULL && strchr(s, ' ') == NULL && rc == 0);
}

static void one_cert(char **pieces, size_t n)
{
    if (n == 0 || n > 24) return; /* a certificate per input is slow: small lists only */
    tg_subject subj = {.cn = pieces[0]};
    if (tg_subject_check(&subj, NULL) != 0) return;
    tg_strlist built = {0};
    if (tg_sans_build(&subj, (const char *const *)pieces + 1, n - 1, &built, NULL) != 0) return;
    tg_sanlist want = {0};
    CHECK(tg_sanlist_from_built(&built, &want, NULL) == 0);
    tg_cert *cert = NULL;
    tg_certinfo info;
    if (tg_cert_selfsign(key, &subj, &built, 1, 0, &cert, NULL) == 0) {
        CHECK(tg_cert_info(cert, &info, NULL) == 0);
        CHECK(info.sans.n == want.n);
        for (size_t i = 0; i < want.n; i++) {
            CHECK(info.sans.v[i].type == want.v[i].type);
            CHECK(strcmp(info.sans.v[i].value, want.v[i].value) == 0);
            if (want.v[i].type == TG_SAN_DNS) CHECK(tg_san_host_name(want.v[i].value));
        }
        tg_certinfo_clear(&info);
        tg_cert_free(cert);
    }
    tg_sanlist_free(&want);
    tg_strlist_free(&built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t limit = data[0];
    char *buf = malloc(size);
    if (buf == NULL) return 0;
    memcpy(buf, data + 1, size - 1);
    size_t len = size - 1;
    if (len > 0 && buf[len - 1] == '\n') len--;
    buf[len] = '\0';
    char *pieces[MAXPIECES];
    size_t n = 0;
    for (char *p = buf; n < MAXPIECES;) {
        pieces[n++] = p;
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        if (nl == NULL) break;
        *nl = '\0';
        p = nl + 1;
    }
    for (size_t i = 0; i < n; i++)
        one_text(pieces[i], limit);
    one_cert(pieces, n);
    free(buf);
    return 0;
}
