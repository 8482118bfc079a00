/*
 * test_keyring.c — operations are transactions: a failing one leaves the store as it was.
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

#include "keyring/keyring.h"

#include "scratch.h"
#include "inputs.h"

static int setup(void **state)
{
    (void)state;
    return scratch_setup("kr");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_teardown();
}

static size_t count(tg_keyring *kr)
{
    json_t *rows = NULL;
    assert_int_equal(tg_keyring_cert_list(kr, -1, &rows, NULL), 0);
    size_t n = json_array_size(rows);
    json_decref(rows);
    return n;
}

/* Writes a self-signed certificate (and optionally its key as PKCS#8 DER) to files. */
static void make_pair(const char *cn, const char *certpath, const char *keypath)
{
    tg_keyspec ks;
    tg_key *key = NULL;
    tg_cert *cert = NULL;
    tg_subject s = {.cn = cn};
    tg_strlist sans;
    assert_int_equal(tg_keyspec_parse("ec:p256", &ks, NULL), 0);
    assert_int_equal(tg_key_generate(&ks, &key, NULL), 0);
    assert_int_equal(tg_sans_build(&s, NULL, 0, &sans, NULL), 0);
    assert_int_equal(tg_cert_selfsign(key, &s, &sans, 10, 0, &cert, NULL), 0);
    char *pem;
    size_t len;
    assert_int_equal(tg_cert_to_pem(cert, &pem, &len, NULL), 0);
    assert_int_equal(tg_file_write(certpath, pem, len, 0600, NULL), 0);
    if (keypath) {
        unsigned char *der;
        size_t dlen;
        assert_int_equal(tg_key_to_der(key, &der, &dlen, NULL), 0);
        assert_int_equal(tg_file_write(keypath, der, dlen, 0600, NULL), 0);
        tg_free_secret(der, dlen);
    }
    free(pem);
    tg_strlist_free(&sans);
    tg_cert_free(cert);
    tg_key_free(key);
}

static void first_use_creates_default(void **state)
{
    (void)state;
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_show(kr, TG_DEFAULT_CERT_NAME, &doc, NULL), 0);
    assert_true(json_is_true(json_object_get(doc, "default")));
    assert_true(json_is_true(json_object_get(doc, "private_key")));
    json_decref(doc);
    assert_int_equal(count(kr), 1);
    /* this open created the store; a later one finds it (init is idempotent) */
    assert_int_equal(tg_keyring_init(kr, &doc, NULL), 0);
    assert_true(json_is_true(json_object_get(doc, "new_store")));
    json_decref(doc);
    tg_keyring_close(kr);
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    assert_int_equal(tg_keyring_init(kr, &doc, NULL), 0);
    assert_false(json_is_true(json_object_get(doc, "new_store")));
    json_decref(doc);
    assert_int_equal(count(kr), 1);
    tg_keyring_close(kr);
}

static void failing_import_rolls_back(void **state)
{
    (void)state;
    char good[400], other[400], otherkey[400], junk[400];
    snprintf(good, sizeof good, "%s/good.pem", dir);
    snprintf(other, sizeof other, "%s/other.pem", dir);
    snprintf(otherkey, sizeof otherkey, "%s/other.key", dir);
    snprintf(junk, sizeof junk, "%s/junk.pem", dir);
    make_pair("good.example.com", good, NULL);
    make_pair("other.example.com", other, otherkey);
    assert_int_equal(tg_file_write(junk, "-----BEGIN CERTIFICATE-----\n!!!!\n", 34, 0600, NULL), 0);

    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    size_t before = count(kr);
    json_t *out = NULL;
    tg_err e = {0};
    /* the second file is damaged: the first must not be stored either */
    const char *files[] = {good, junk};
    tg_input *in2 = test_inputs(files, 2);
    tg_import imp = {.inputs = in2, .ninputs = 2, .exportable = 1};
    assert_int_equal(tg_keyring_cert_import(kr, &imp, &out, &e), TG_E_INVALID);
    assert_null(out);
    assert_int_equal(count(kr), before);
    /* a key that belongs to another certificate */
    const char *one[] = {good};
    const char *okey[] = {otherkey};
    tg_input *in1 = test_inputs(one, 1), *kin = test_inputs(okey, 1);
    tg_import mismatch = {.inputs = in1, .ninputs = 1, .key = kin, .exportable = 1};
    e.code = 0;
    assert_int_equal(tg_keyring_cert_import(kr, &mismatch, &out, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "does not belong"));
    assert_int_equal(count(kr), before);
    /* the good file alone works, and again is a conflict that changes nothing */
    assert_int_equal(
        tg_keyring_cert_import(kr, &(tg_import){.inputs = in1, .ninputs = 1}, &out, NULL), 0);
    json_decref(out);
    assert_int_equal(count(kr), before + 1);
    assert_int_equal(
        tg_keyring_cert_import(kr, &(tg_import){.inputs = in1, .ninputs = 1}, &out, NULL),
        TG_E_CONFLICT);
    assert_int_equal(count(kr), before + 1);
    tg_keyring_close(kr);
    test_inputs_free(in2, 2);
    test_inputs_free(in1, 1);
    test_inputs_free(kin, 1);
}

static void failing_replace_and_delete_change_nothing(void **state)
{
    (void)state;
    char other[400];
    snprintf(other, sizeof other, "%s/other.pem", dir);
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    size_t before = count(kr);
    json_t *out = NULL;
    tg_err e = {0};
    /* the default has a key; a replacement without one is refused, nothing renamed */
    const char *files[] = {other};
    tg_input *in = test_inputs(files, 1);
    tg_import imp = {.inputs = in, .ninputs = 1};
    assert_int_equal(tg_keyring_cert_replace(kr, TG_DEFAULT_CERT_NAME, &imp, &out, &e),
                     TG_E_INVALID);
    test_inputs_free(in, 1);
    assert_string_equal(e.field, "key"); /* the face names it: the CLI says --key */
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_show(kr, TG_DEFAULT_CERT_NAME, &doc, NULL), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_cert_show(kr, TG_DEFAULT_CERT_NAME "_REPLACED", &doc, NULL),
                     TG_E_NOTFOUND);
    assert_int_equal(count(kr), before);
    /* the default is protected and referenced */
    e.code = 0;
    assert_int_equal(tg_keyring_cert_delete(kr, TG_DEFAULT_CERT_NAME, &e), TG_E_CONFLICT);
    assert_int_equal(count(kr), before);
    /* a duplicate name on create */
    tg_newcert spec = {.name = TG_DEFAULT_CERT_NAME,
                       .subject = {.cn = "x.example.com"},
                       .keyspec = "ec:p256",
                       .days = 30,
                       .exportable = 1};
    e.code = 0;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &out, &e), TG_E_CONFLICT);
    assert_int_equal(count(kr), before);
    tg_keyring_close(kr);
}

static void request_lifecycle(void **state)
{
    (void)state;
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    tg_newcert spec = {.name = "req",
                       .subject = {.cn = "req.example.com", .country = "FR"},
                       .keyspec = "ec:p256",
                       .days = 30,
                       .exportable = 1};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_request_create(kr, &spec, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "pending");
    assert_non_null(strstr(json_string_value(json_object_get(doc, "pem")), "CERTIFICATE REQUEST"));
    json_decref(doc);
    tg_err e = {0};
    assert_int_equal(tg_keyring_request_create(kr, &spec, &doc, &e), TG_E_CONFLICT);
    assert_int_equal(tg_keyring_request_delete(kr, "req", NULL), 0);
    assert_int_equal(tg_keyring_request_show(kr, "req", &doc, NULL), TG_E_NOTFOUND);
    tg_keyring_close(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_use_creates_default),
        cmocka_unit_test(failing_import_rolls_back),
        cmocka_unit_test(failing_replace_and_delete_change_nothing),
        cmocka_unit_test(request_lifecycle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
