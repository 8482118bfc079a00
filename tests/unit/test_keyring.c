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
#include <time.h>
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

/* Every row of every kind (the unit tests count CA certificates too). */
static const tg_list every = {.kind = TG_LIST_ALL, .expiring_days = -1};

static size_t count(tg_keyring *kr)
{
    json_t *rows = NULL;
    assert_int_equal(tg_keyring_cert_list(kr, &every, &rows, NULL, NULL), 0);
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
    tg_import imp = {.inputs = in2, .ninputs = 2};
    assert_int_equal(tg_keyring_cert_import(kr, &imp, &out, &e), TG_E_INVALID);
    assert_null(out);
    assert_int_equal(count(kr), before);
    /* a key that belongs to another certificate */
    const char *one[] = {good};
    const char *okey[] = {otherkey};
    tg_input *in1 = test_inputs(one, 1), *kin = test_inputs(okey, 1);
    tg_import mismatch = {.inputs = in1, .ninputs = 1, .key = kin};
    e.code = 0;
    assert_int_equal(tg_keyring_cert_import(kr, &mismatch, &out, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "does not belong"));
    assert_int_equal(count(kr), before);
    /* the good file alone works, and again succeeds with nothing new and changes nothing */
    assert_int_equal(
        tg_keyring_cert_import(kr, &(tg_import){.inputs = in1, .ninputs = 1}, &out, NULL), 0);
    json_decref(out);
    assert_int_equal(count(kr), before + 1);
    assert_int_equal(
        tg_keyring_cert_import(kr, &(tg_import){.inputs = in1, .ninputs = 1}, &out, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "new")), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "already_present")), 1);
    json_decref(out);
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
                       .days_set = 1};
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
                       .days_set = 1};
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

/* Pages follow one another by name, and a search narrows them and the total. */
static void paging(void **state)
{
    (void)state;
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    const char *names[] = {"page-a", "page-b", "page-c", "page-d", "page-e"};
    for (size_t i = 0; i < 5; i++) {
        char cn[64];
        snprintf(cn, sizeof(cn), "%s.Paging.example", names[i]);
        const char *sans[] = {i == 4 ? "DNS:needle.example" : "DNS:hay.example"};
        tg_newcert spec = {.name = names[i],
                           .subject = {.cn = cn},
                           .keyspec = "ec:p256",
                           .sans = sans,
                           .nsans = 1};
        json_t *doc = NULL;
        assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
        json_decref(doc);
    }
    json_t *all = NULL;
    assert_int_equal(tg_keyring_cert_list(kr, &every, &all, NULL, NULL), 0);
    size_t n = json_array_size(all);
    json_decref(all);
    /* walk every page of 2: the rows are the list's, in order, each once */
    size_t seen = 0;
    const char *after = NULL;
    char cursor[256];
    for (int pages = 0; pages < 100; pages++) {
        tg_page pg = {.after = after, .limit = 2};
        json_t *doc = NULL;
        assert_int_equal(tg_keyring_cert_page(kr, &pg, &doc, NULL), 0);
        assert_int_equal(json_integer_value(json_object_get(doc, "total")), (json_int_t)n);
        seen += json_array_size(json_object_get(doc, "items"));
        json_t *next = json_object_get(doc, "next");
        if (next) snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(doc);
        if (next == NULL) break;
        after = cursor;
    }
    assert_int_equal(seen, n);
    /* a search by common name (case ignored) and by SAN */
    tg_page pg = {.query = "paging.EXAMPLE", .limit = 3};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_page(kr, &pg, &doc, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "total")), 5);
    assert_int_equal(json_array_size(json_object_get(doc, "items")), 3);
    assert_string_equal(json_string_value(json_object_get(doc, "next")), "page-c");
    json_decref(doc);
    pg = (tg_page){.query = "needle"};
    assert_int_equal(tg_keyring_cert_page(kr, &pg, &doc, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "total")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "items"), 0), "name")),
                        "page-e");
    assert_null(json_object_get(doc, "next"));
    json_decref(doc);
    /* bounds */
    tg_err e = {0};
    pg = (tg_page){.limit = TG_PAGE_MAX + 1};
    assert_int_equal(tg_keyring_cert_page(kr, &pg, &doc, &e), TG_E_INVALID);
    assert_string_equal(e.field, "limit");
    tg_keyring_close(kr);
}

static json_t *row_named(json_t *rows, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(
        rows, i, r) if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0) return r;
    fail_msg("no row named '%s'", name);
    return NULL;
}

static long long num(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* K10: the plan's dates and the rollover done at a moment given, once. */
static void rollover_planned_ahead(void **state)
{
    (void)state;
    const long long day = 86400;
    tg_keyring *kr = NULL;
    tg_err e = {0};
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    tg_newcert spec = {.name = "roll",
                       .subject = {.cn = "Roll CA"},
                       .keyspec = "ec:p256",
                       .days = 100,
                       .days_set = 1,
                       .signing = 1};
    json_t *doc = NULL, *plan = NULL, *run = NULL;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    long long nb = num(doc, "not_before_unix"), na = num(doc, "not_after_unix");
    json_decref(doc);
    int lead = 0;
    assert_int_equal(tg_keyring_rollover_lead(kr, &lead, NULL), 0);
    assert_int_equal(lead, TG_ROLLOVER_LEAD_DEFAULT);
    /* within the lead time from birth, but not due before half its validity */
    assert_int_equal(tg_keyring_rollover_plan(kr, nb, &plan, NULL), 0);
    json_t *r = row_named(plan, "roll");
    assert_string_equal(json_string_value(json_object_get(r, "rollover")), "automatic");
    assert_int_equal(num(r, "rollover_due_unix"), nb + 50 * day);
    assert_int_equal(num(r, "days_left"), 100);
    assert_int_equal(num(r, "warning"), 180);
    assert_true(json_is_false(json_object_get(r, "due")));
    json_decref(plan);
    assert_int_equal(tg_keyring_rollover_run(kr, nb, &run, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(run, "reissued")), 0);
    json_decref(run);
    /* bounds of the lead time: refused, nothing changed */
    assert_int_equal(tg_keyring_rollover_lead_set(kr, -1, NULL, &e), TG_E_INVALID);
    assert_string_equal(e.field, "days");
    assert_int_equal(tg_keyring_rollover_lead_set(kr, TG_DAYS_MAX + 1, NULL, &e), TG_E_INVALID);
    assert_int_equal(tg_keyring_rollover_lead(kr, &lead, NULL), 0);
    assert_int_equal(lead, TG_ROLLOVER_LEAD_DEFAULT);
    /* off: nothing happens even when due */
    assert_int_equal(tg_keyring_rollover_lead_set(kr, 0, NULL, NULL), 0);
    assert_int_equal(tg_keyring_rollover_run(kr, nb + 60 * day, &run, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(run, "reissued")), 0);
    json_decref(run);
    assert_int_equal(tg_keyring_rollover_plan(kr, nb + 60 * day, &plan, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(row_named(plan, "roll"), "rollover")),
                        "off");
    json_decref(plan);
    /* on again: 60 days on, (the moment given) it is due and reissued */
    assert_int_equal(tg_keyring_rollover_lead_set(kr, 365, NULL, NULL), 0);
    assert_int_equal(tg_keyring_rollover_plan(kr, nb + 60 * day, &plan, NULL), 0);
    r = row_named(plan, "roll");
    assert_true(json_is_true(json_object_get(r, "due")));
    assert_int_equal(num(r, "days_left"), 40);
    assert_int_equal(num(r, "warning"), 90);
    json_decref(plan);
    assert_int_equal(tg_keyring_rollover_run(kr, nb + 60 * day, &run, NULL), 0);
    json_t *done = json_object_get(run, "reissued");
    assert_int_equal(json_array_size(done), 1);
    const char *succ = json_string_value(json_object_get(json_array_get(done, 0), "successor"));
    assert_non_null(succ);
    assert_memory_equal(succ, "roll until ", 11);
    char name[TG_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", succ);
    json_decref(run);
    /* the original is done, its copy (made now, for 100 days) not due now */
    assert_int_equal(tg_keyring_rollover_plan(kr, time(NULL), &plan, NULL), 0);
    r = row_named(plan, "roll");
    assert_string_equal(json_string_value(json_object_get(r, "rollover")), "done");
    assert_string_equal(json_string_value(json_object_get(r, "successor")), name);
    json_t *c = row_named(plan, name);
    assert_true(num(c, "not_after_unix") >= na);
    assert_int_equal(num(c, "not_after_unix") - num(c, "not_before_unix"), 100 * day);
    assert_true(json_is_false(json_object_get(c, "due")));
    json_decref(plan);
    assert_int_equal(tg_keyring_rollover_run(kr, time(NULL), &run, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(run, "reissued")), 0);
    json_decref(run);
    /* the audit row */
    json_t *audit = NULL;
    assert_int_equal(tg_keyring_audit_list(kr, NULL, &audit, NULL), 0);
    json_t *a = json_array_get(audit, 0);
    assert_string_equal(json_string_value(json_object_get(a, "action")), "ca.rollover");
    assert_string_equal(json_string_value(json_object_get(a, "actor")), "serve");
    assert_string_equal(json_string_value(json_object_get(a, "object")), "roll");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a, "detail"), "successor")), name);
    json_decref(audit);
    tg_keyring_close(kr);
}

/* K10: a proxy left on a copy by a manual reissue moves to the newer copy 30 days before
 * the old one ends, once. */
static void rollover_moves_proxies_late(void **state)
{
    (void)state;
    const long long day = 86400;
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    tg_newcert spec = {.name = "follow",
                       .subject = {.cn = "Follow CA"},
                       .keyspec = "ec:p256",
                       .days = 400,
                       .days_set = 1,
                       .signing = 1};
    json_t *doc = NULL, *run = NULL;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    long long na = num(doc, "not_after_unix");
    json_decref(doc);
    assert_int_equal(tg_keyring_ca_reissue(kr, "follow", 800, "follow-next", &doc, NULL), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_ts_create(kr, "follow-ts", NULL, 0, &doc, NULL), 0);
    json_decref(doc);
    tg_proxy_opts o;
    tg_proxy_opts_init(&o);
    o.signing = "follow";
    o.truststore = "follow-ts";
    o.listen = "127.0.0.1:39877";
    assert_int_equal(tg_keyring_proxy_create(kr, "client", "follower", &o, &doc, NULL), 0);
    json_decref(doc);
    /* now: the manual reissue leaves the proxy where it is */
    assert_int_equal(tg_keyring_rollover_run(kr, time(NULL), &run, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(run, "moved")), 0);
    json_decref(run);
    /* 10 days before the old copy ends: moved, once */
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(tg_keyring_rollover_run(kr, na - 10 * day, &run, NULL), 0);
        json_t *moved = json_object_get(run, "moved");
        assert_int_equal(json_array_size(moved), pass == 0 ? 1 : 0);
        if (pass == 0)
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(moved, 0), "successor")),
                "follow-next");
        json_decref(run);
        assert_int_equal(tg_keyring_proxy_show(kr, "client", "follower", &doc, NULL), 0);
        assert_string_equal(json_string_value(json_object_get(doc, "signing")), "follow-next");
        json_decref(doc);
    }
    tg_keyring_close(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_use_creates_default),
        cmocka_unit_test(failing_import_rolls_back),
        cmocka_unit_test(failing_replace_and_delete_change_nothing),
        cmocka_unit_test(request_lifecycle),
        cmocka_unit_test(paging),
        cmocka_unit_test(rollover_planned_ahead),
        cmocka_unit_test(rollover_moves_proxies_late),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
