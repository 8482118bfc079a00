/*
 * fuzz_bundle.c — libFuzzer target for format detection and every file decoder behind
 * tg_bundle_decode (PEM, DER certificate, PKCS#7, PKCS#8 plain and encrypted, traditional
 * keys, PKCS#12 modern and legacy).
 *
 * A password comes from an environment variable (set in LLVMFuzzerInitialize, the one
 * the seeds in seeds.sh are encrypted with), so that the decryption paths run and not only
 * "a password is needed"; inputs where the password mattered are decoded again without
 * one, as trust stores and `tlsgate verify` do. Whatever decodes is described as
 * `cert import` would, and everything is freed: a leak is a finding.
 */
#include "x509/x509.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_PASS_ENV "TG_FUZZ_PASSWORD"
#define FUZZ_PASS     "fuzzpass" /* seeds.sh encrypts with the same */

/* The face's part: the password from the environment (no file, no prompt). */
static int from_env(void *arg, int confirm, char *buf, size_t size, size_t *len, tg_err *err)
{
    (void)confirm;
    const char *v = getenv(arg);
    if (v == NULL || strlen(v) + 1 > size)
        return tg_err_set(err, TG_E_PASSWORD, "no password in the environment");
    *len = (size_t)snprintf(buf, size, "%s", v);
    return 0;
}
static const tg_passsrc pass = {.get = from_env, .arg = (void *)FUZZ_PASS_ENV};

/* An invariant of the decoder's contract is broken: stop with a message libFuzzer keeps. */

/* Trust stores and `tlsgate verify` decode with no password source at all (pass NULL).
 * Where a password mattered, that must give the same result or TG_E_PASSWORD. */
static void again_without_password(const uint8_t *data, size_t size, int rc1, size_t ncerts,
                                   size_t nkeys)
{
    tg_bundle b;
    tg_err err = {0};
    int rc = tg_bundle_decode(data, size, "fuzz input", NULL, &b, &err);
    if (rc == 0) {
        CHECK(rc1 == 0 && b.ncerts == ncerts && b.nkeys == nkeys);
        tg_bundle_clear(&b);
    } else {
        CHECK(rc == TG_E_PASSWORD && err.code == rc && err.msg[0] != '\0');
        CHECK(b.ncerts == 0 && b.nkeys == 0);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv(FUZZ_PASS_ENV, FUZZ_PASS, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_bundle b;
    tg_err err = {0};
    int rc = tg_bundle_decode(data, size, "fuzz input", &pass, &b, &err);
    if (getenv("TG_FUZZ_VERBOSE") != NULL) /* to check what the seeds reach */
        fprintf(stderr, "decode: %d certs %zu keys %zu %s\n", rc, b.ncerts, b.nkeys, err.msg);
    if (rc != 0) {
        /* A failure leaves nothing behind and one sentence for the operator. */
        CHECK(rc < 0 && rc >= TG_E_INTERNAL);
        CHECK(b.ncerts == 0 && b.nkeys == 0 && b.certs == NULL && b.keys == NULL);
        CHECK(err.code == rc && err.msg[0] != '\0');
        if (rc == TG_E_PASSWORD) again_without_password(data, size, rc, 0, 0);
        return 0;
    }
    CHECK(b.ncerts > 0 || b.nkeys > 0);
    for (size_t i = 0; i < b.ncerts; i++) {
        tg_certinfo info;
        tg_err e = {0};
        if (tg_cert_info(b.certs[i], &info, &e) == 0) {
            CHECK(info.subject && info.issuer && (info.sans.n == 0 || info.sans.v != NULL) &&
                  info.serial && info.sigalg);
            tg_certinfo_clear(&info);
        }
        unsigned char spki[32];
        tg_cert_spki_sha256(b.certs[i], spki, NULL);
    }
    for (size_t i = 0; i < b.nkeys; i++) {
        char desc[64];
        unsigned char spki[32];
        tg_key_describe(b.keys[i], desc, sizeof(desc));
        tg_key_check_strength(b.keys[i], NULL);
        tg_key_spki_sha256(b.keys[i], spki, NULL);
        if (b.ncerts > 0) tg_cert_matches_key(b.certs[0], b.keys[i]);
    }
    size_t ncerts = b.ncerts, nkeys = b.nkeys;
    tg_bundle_clear(&b);
    if (nkeys > 0) again_without_password(data, size, 0, ncerts, nkeys);
    return 0;
}
