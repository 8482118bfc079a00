/*
 * test_tls.c — the SNI name index: exact, one-label wildcard, default, key type.
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
#include "tls/tls.h"

static char dir[64];

static void create(tg_keyring *kr, const char *name, const char *cn, const char *san,
                   const char *key)
{
    const char *sans[1] = {san};
    tg_newcert spec = {.name = name,
                       .subject = {.cn = cn},
                       .sans = sans,
                       .nsans = san ? 1 : 0,
                       .keyspec = key,
                       .days = 30,
                       .exportable = 1};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    json_decref(doc); /* the index speaks ids: they are found through the servables */
}

typedef struct found {
    const char *cn;
    int64_t id;
} found;

static int by_cn(const tg_servable *s, void *arg)
{
    found *f = arg;
    if (strcmp(s->cn, f->cn) == 0) f->id = s->id;
    return 0;
}

static int64_t id_of(tg_keyring *kr, const char *cn)
{
    found f = {cn, 0};
    int64_t def;
    assert_int_equal(tg_keyring_servables(kr, by_cn, &f, &def, NULL), 0);
    return f.id;
}

static void pick(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tg-unit-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(dir, &kr, NULL), 0);
    create(kr, "exact-ec", "www.example.com", NULL, "ec:p256");
    create(kr, "exact-rsa", "WWW.example.com", NULL, "rsa:2048"); /* same name, other key */
    create(kr, "wild", "wild", "*.example.com", "ec:p256");
    create(kr, "label", "My Label", NULL, "ec:p256"); /* no DNS name: not indexed */
    int64_t ec = id_of(kr, "www.example.com"), rsa = id_of(kr, "WWW.example.com"),
            wild = id_of(kr, "wild");
    assert_true(ec && rsa && wild && ec != rsa);

    tg_index *idx = NULL;
    assert_int_equal(tg_index_build(kr, &idx, NULL), 0);
    size_t names, certs = tg_index_size(idx, &names);
    assert_int_equal(certs, 5); /* with the factory default */
    long long now = (long long)time(NULL);
    int how;
    assert_int_equal(tg_index_pick(idx, "www.example.com", 1, now, &how), ec);
    assert_int_equal(how, TG_PICK_EXACT);
    assert_int_equal(tg_index_pick(idx, "WWW.EXAMPLE.COM.", 0, now, &how), rsa);
    assert_int_equal(how, TG_PICK_EXACT);
    assert_int_equal(tg_index_pick(idx, "shop.example.com", 1, now, &how), wild);
    assert_int_equal(how, TG_PICK_WILDCARD);
    int64_t def = tg_index_pick(idx, NULL, 1, now, &how);
    assert_int_equal(how, TG_PICK_DEFAULT);
    assert_true(def != 0 && def != ec && def != wild);
    assert_int_equal(tg_index_pick(idx, "a.b.example.com", 1, now, &how), def);
    assert_int_equal(how, TG_PICK_DEFAULT);
    assert_int_equal(tg_index_pick(idx, "example.com", 1, now, &how), def);
    assert_int_equal(tg_index_pick(idx, "My Label", 1, now, &how), def);
    /* in ten years every certificate here has expired: still chosen by name, none valid */
    assert_int_equal(tg_index_pick(idx, "www.example.com", 1, now + 3650LL * 86400, &how), ec);
    tg_index_free(idx);
    tg_keyring_close(kr);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(pick)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
