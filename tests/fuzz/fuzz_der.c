/*
 * fuzz_der.c — libFuzzer target for the DER decoders the store reads back and the keyring
 * uses directly: tg_cert_from_der and tg_key_from_der (PKCS#8), and tg_cert_info and the
 * other accessors on whatever decodes.
 *
 * Beyond memory safety it checks round trips: a certificate's encoding is stable after one
 * re-encoding (OpenSSL canonicalises some non-DER input, see README.md), and a key that decodes
 * re-encodes to PKCS#8 that decodes to the same public key (the store keeps keys as tg_key_to_der's
 * output and must be able to read them back).
 */
#include "x509/x509.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_cert(const uint8_t *data, size_t size)
{
    tg_cert *cert = NULL;
    tg_err err = {0};
    if (tg_cert_from_der(data, size, &cert, &err) != 0) {
        CHECK(err.code == TG_E_INVALID && err.msg[0] != '\0');
        return;
    }
    tg_certinfo info;
    tg_err e = {0};
    if (tg_cert_info(cert, &info, &e) == 0) {
        CHECK(info.subject && info.issuer && info.subject_cn && info.issuer_cn &&
              (info.sans.n == 0 || info.sans.v != NULL) && info.serial && info.sigalg);
        CHECK(strlen(info.sha256) == 64);
        tg_certinfo_clear(&info);
    } else {
        CHECK(e.code < 0 && e.msg[0] != '\0');
    }
    long long nb, na;
    tg_cert_validity(cert, &nb, &na);
    free(tg_cert_issuer_text(cert));
    tg_cert_self_signed(cert);
    unsigned char spki[32];
    tg_cert_spki_sha256(cert, spki, NULL);

    /* OpenSSL keeps the tbsCertificate as received but re-encodes the rest, so a non-DER
     * outer encoding (e.g. set padding bits in the signature BIT STRING) comes out changed.
     * The store keeps these bytes: they must decode again and be a fixed point. */
    unsigned char *der = NULL, *der2 = NULL;
    size_t len = 0, len2 = 0;
    if (tg_cert_to_der(cert, &der, &len, NULL) == 0) {
        tg_cert *again = NULL;
        CHECK(tg_cert_from_der(der, len, &again, NULL) == 0);
        CHECK(tg_cert_to_der(again, &der2, &len2, NULL) == 0);
        CHECK(len2 == len && memcmp(der, der2, len) == 0);
        free(der2);
        tg_cert_free(again);
        free(der);
    }
    char *pem = NULL;
    if (tg_cert_to_pem(cert, &pem, &len, NULL) == 0) free(pem);
    tg_cert_free(cert);
}

static void fuzz_key(const uint8_t *data, size_t size)
{
    tg_key *key = NULL;
    tg_err err = {0};
    if (tg_key_from_der(data, size, &key, &err) != 0) {
        CHECK(err.code == TG_E_INVALID && err.msg[0] != '\0');
        return;
    }
    char desc[64];
    tg_key_describe(key, desc, sizeof(desc));
    tg_key_check_strength(key, NULL);
    unsigned char spki[32], spki2[32];
    int have_spki = tg_key_spki_sha256(key, spki, NULL) == 0;

    unsigned char *der = NULL;
    size_t len = 0;
    tg_err e = {0};
    if (tg_key_to_der(key, &der, &len, &e) == 0) {
        tg_key *again = NULL;
        tg_err e2 = {0};
        int rc = tg_key_from_der(der, len, &again, &e2);
        if (rc != 0) fprintf(stderr, "re-decoding failed: %s\n", e2.msg);
        CHECK(rc == 0);
        if (have_spki) {
            CHECK(tg_key_spki_sha256(again, spki2, NULL) == 0);
            CHECK(memcmp(spki, spki2, 32) == 0);
        }
        tg_key_free(again);
        tg_free_secret(der, len);
    }
    tg_key_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cert(data, size);
    fuzz_key(data, size);
    return 0;
}
