/*
 * ciphers.c — checking an OpenSSL TLS 1.2 cipher list at configuration time, so that a
 * typo is refused when the operator types it and not when a proxy starts. x509 is the
 * OpenSSL layer; this asks libssl the question the engine will ask it later.
 */
#include "x509_int.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

int tg_tls_ciphers_check(const char *list, tg_err *err)
{
    size_t n = list ? strlen(list) : 0;
    if (n == 0) return tg_err_set(err, TG_E_INVALID, "the cipher list is empty");
    if (n > TG_TLS_CIPHERS_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the cipher list is too long (%zu bytes; the limit is %d)", n,
                          TG_TLS_CIPHERS_MAX);
    for (const char *p = list; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return tg_err_set(err, TG_E_INVALID,
                              "the cipher list holds a space or a character that is not printable "
                              "ASCII (byte %zu); OpenSSL cipher lists are names and operators "
                              "joined by ':' (e.g. ECDHE+AESGCM:ECDHE+CHACHA20)",
                              (size_t)(p - list) + 1);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) return tg_ossl_err(err, TG_E_INTERNAL, "cannot make a TLS context");
    /* fails when nothing for TLS 1.2 and below matches (TLS 1.3 suites are not named here) */
    int ok = SSL_CTX_set_cipher_list(ctx, list);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return tg_err_set(err, TG_E_INVALID,
                          "the cipher list '%s' selects no TLS 1.2 cipher this OpenSSL knows; "
                          "`openssl ciphers -v '%s'` shows what it selects",
                          list, list);
    return 0;
}
