/*
 * test_tls.c — the SNI name index: exact, one-label wildcard, default, key type.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "keyring/keyring.h"
#include "keyring/keyring_int.h" /* kr_chain_builds */
#include "tls/tls.h"
#include "tls/tls_int.h" /* the certificate cache */

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
                       .days_set = 1};
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

    /* a caller's own list (a server proxy's): the same choice, its own default */
    tg_san www = {TG_SAN_DNS, "www.example.com"}, star = {TG_SAN_DNS, "*.example.com"};
    tg_servable mine[] = {{.id = 1,
                           .sans = &star,
                           .nsans = 1,
                           .cn = "",
                           .ecdsa = 1,
                           .not_before = now - 10,
                           .not_after = now + 1000},
                          {.id = 2,
                           .sans = &www,
                           .nsans = 1,
                           .cn = "",
                           .ecdsa = 0,
                           .not_before = now - 10,
                           .not_after = now + 1000},
                          {.id = 3,
                           .sans = NULL,
                           .nsans = 0,
                           .cn = "api.example.org",
                           .ecdsa = 1,
                           .not_before = now - 10,
                           .not_after = now + 1000}};
    idx = tg_index_new();
    assert_non_null(idx);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(tg_index_add(idx, &mine[i]), 0);
    tg_index_done(idx, 1);
    assert_int_equal(tg_index_size(idx, &names), 3);
    assert_int_equal(names, 3);
    assert_int_equal(tg_index_pick(idx, "www.example.com", 1, now, &how), 2);
    assert_int_equal(how, TG_PICK_EXACT);
    assert_int_equal(tg_index_pick(idx, "shop.example.com", 1, now, &how), 1);
    assert_int_equal(how, TG_PICK_WILDCARD);
    assert_int_equal(tg_index_pick(idx, "API.example.org", 1, now, &how), 3);
    assert_int_equal(tg_index_pick(idx, "other.test", 1, now, &how), 1);
    assert_int_equal(how, TG_PICK_DEFAULT);
    tg_index_free(idx);
    tg_keyring_close(kr);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* openssl: root -> intermediate -> two leaves, in dir */
static void make_chain(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec >/dev/null 2>&1 && "
             "printf '[r]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n"
             "subjectKeyIdentifier=hash\n[l]\nbasicConstraints=CA:FALSE\n"
             "subjectAltName=DNS:${ENV::CN}\nauthorityKeyIdentifier=keyid\n' > x.cnf && "
             "K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
             "openssl req -x509 $K -keyout root.key -out root.pem -days 30 -subj /CN=u-root "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign && "
             "openssl req -new $K -keyout int.key -out int.csr -subj /CN=u-int && "
             "CN=u-int openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -days 20 "
             "-extfile x.cnf -extensions r -out int.pem && "
             "for n in a b; do CN=$n.chain.test openssl req -new $K -keyout $n.key -out $n.csr "
             "-subj /CN=$n.chain.test && CN=$n.chain.test openssl x509 -req -in $n.csr -CA "
             "int.pem -CAkey int.key -days 10 -extfile x.cnf -extensions l -out $n.pem; done",
             dir);
    assert_int_equal(system(cmd), 0);
}

static void import(tg_keyring *kr, const char *f1, const char *f2)
{
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/%s", dir, f1);
    snprintf(p2, sizeof p2, "%s/%s", dir, f2 ? f2 : f1);
    const char *files[2] = {p1, p2};
    size_t n = f2 ? 2 : 1;
    tg_input *in = test_inputs(files, n);
    tg_import imp = {.inputs = in, .ninputs = n};
    json_t *doc = NULL;
    tg_err e = {0};
    assert_int_equal(tg_keyring_cert_import(kr, &imp, &doc, &e), 0);
    json_decref(doc);
    test_inputs_free(in, n);
}

/* Issue 9: a miss loads the stored chain (no chain building, no signature check) and
 * parses only its leaf once the chain's members are in the shared map. */
static void stored_chain(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tg-unit-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    make_chain();
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(dir, &kr, NULL), 0);
    import(kr, "root.pem", NULL);
    import(kr, "int.pem", NULL);
    import(kr, "a.pem", "a.key");
    import(kr, "b.pem", "b.key");
    int64_t a = id_of(kr, "a.chain.test"), b = id_of(kr, "b.chain.test");
    assert_true(a && b);

    size_t builds = kr_chain_builds;
    tg_served s;
    assert_int_equal(tg_keyring_serve_load(kr, a, &s, NULL), 0);
    assert_int_equal(s.nchain, 1); /* the intermediate; the root is not sent */
    int64_t int_id = s.chain[0].id;
    assert_true(int_id > 0 && int_id != a && int_id != b);
    tg_served_clear(&s);
    assert_int_equal(kr_chain_builds, builds);

    tg_certcache *c = tg_certcache_new(16);
    tg_loaded la, lb;
    assert_int_equal(tg_certcache_get(c, kr, a, &la, NULL), 0);
    assert_int_equal(tg_certcache_parsed(c), 2); /* leaf and intermediate */
    assert_int_equal(tg_certcache_get(c, kr, b, &lb, NULL), 0);
    assert_int_equal(tg_certcache_parsed(c), 3); /* only the second leaf */
    assert_int_equal(sk_X509_num(la.chain), 1);
    assert_int_equal(sk_X509_num(lb.chain), 1);
    assert_ptr_equal(sk_X509_value(la.chain, 0), sk_X509_value(lb.chain, 0)); /* shared */
    assert_int_equal(X509_check_issued(sk_X509_value(la.chain, 0), la.cert), X509_V_OK);
    assert_int_equal(kr_chain_builds, builds);
    tg_loaded_clear(&lb);
    /* a flush (every store change) forgets the shared members too; held ones stay valid */
    tg_certcache_flush(c);
    assert_int_equal(tg_certcache_get(c, kr, b, &lb, NULL), 0);
    assert_int_equal(tg_certcache_parsed(c), 5);
    assert_ptr_not_equal(sk_X509_value(la.chain, 0), sk_X509_value(lb.chain, 0));
    assert_int_equal(X509_cmp(sk_X509_value(la.chain, 0), sk_X509_value(lb.chain, 0)), 0);
    tg_loaded_clear(&la);
    tg_loaded_clear(&lb);
    tg_certcache_free(c);
    assert_int_equal(kr_chain_builds, builds);
    tg_keyring_close(kr);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(pick), cmocka_unit_test(stored_chain)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
