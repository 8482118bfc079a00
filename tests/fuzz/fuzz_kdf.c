/*
 * fuzz_kdf.c — libFuzzer target for the password-hashing budget (src/x509/kdfcost.c):
 * tg_bundle_kdf_check adds up the key-derivation work of every encrypted part of a file
 * (PEM blocks, PKCS#8, the PKCS#12 MAC, safes and bags) without deriving anything.
 *
 * Contracts checked: the check answers 0 (work within TG_KDF_WORK_MAX) or TG_E_INVALID
 * with a sentence; it is deterministic; a file it refuses is refused by tg_bundle_decode
 * too, with the same status and before any derivation (so at no cost: a hostile seed
 * that slipped through would show up as a libFuzzer timeout). Files it accepts are not
 * decoded here (that is fuzz_bundle's job, and it may legitimately cost a second).
 */
#include "x509/x509.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static const tg_passsrc pass = {.get = from_env, .arg = (void *)"TG_FUZZ_PASSWORD"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TG_FUZZ_PASSWORD", "fuzzpass", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_err err = {0};
    long long work = -1;
    int rc = tg_bundle_kdf_check(data, size, "fuzz input", &work, &err);
    if (getenv("TG_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "kdf check: %d work %lld %s\n", rc, work, err.msg);
    tg_err err2 = {0};
    long long work2 = -1;
    CHECK(tg_bundle_kdf_check(data, size, "fuzz input", &work2, &err2) == rc && work2 == work);
    if (rc == 0) {
        CHECK(work >= 0 && work <= TG_KDF_WORK_MAX && err.code == 0);
        return 0;
    }
    CHECK(rc == TG_E_INVALID && err.code == rc && err.msg[0] != '\0');
    CHECK(strstr(err.msg, "limit") != NULL);
    tg_bundle b;
    tg_err derr = {0};
    CHECK(tg_bundle_decode(data, size, "fuzz input", &pass, &b, &derr) == TG_E_INVALID);
    CHECK(strcmp(derr.msg, err.msg) == 0 && b.ncerts == 0 && b.nkeys == 0);
    return 0;
}
