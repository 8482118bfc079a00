/*
 * test_proxy.c — client and server proxies' configuration: the port-list and listen-address
 * parsers, the rules of create/set/delete (a refusal changes nothing), the runtime view
 * (tg_keyring_proxies_load) and the untrusted CA.
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
    return scratch_setup("proxy");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_teardown();
}

/* A proxy document's ports: the list of [first, last] ranges (docs/json.md). */
static void ports_are(json_t *doc, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    assert_true(json_equal(json_object_get(doc, "ports"), w));
    json_decref(w);
}

static void canonical(const char *in, const char *want)
{
    tg_portlist l;
    tg_err e = {0};
    char buf[TG_PORTS_TEXT_MAX];
    if (tg_ports_parse(in, &l, &e) != 0) fail_msg("'%s' refused: %s", in, e.msg);
    tg_ports_format(&l, buf, sizeof buf);
    if (strcmp(buf, want) != 0) fail_msg("'%s' gave '%s', wanted '%s'", in, buf, want);
}

static void refused(const char *in, const char *why)
{
    tg_portlist l;
    tg_err e = {0};
    if (tg_ports_parse(in, &l, &e) != TG_E_INVALID) fail_msg("'%s' was accepted", in);
    if (strstr(e.msg, why) == NULL) fail_msg("'%s': '%s' does not say '%s'", in, e.msg, why);
}

static void port_lists(void **state)
{
    (void)state;
    canonical("443", "443");
    canonical("443,8443,10000-10100", "443,8443,10000-10100");
    canonical("8443, 443 ,10000-10100", "443,8443,10000-10100"); /* sorted, spaces */
    canonical("10-20,15-30", "10-30");                           /* overlapping */
    canonical("10-20,21-30,31", "10-31");                        /* adjacent */
    canonical("443,443,443", "443");                             /* duplicates */
    canonical("444,443", "443-444");
    canonical("1,65535", "1,65535");
    canonical("1-65535,80", "1-65535");
    canonical("5-5", "5");
    canonical("00443", "443");
    refused("", "empty");
    refused("0", "neither a port");
    refused("65536", "neither a port");
    refused("100000", "neither a port");
    refused("443,", "empty item");
    refused(",443", "empty item");
    refused("443,,8443", "empty item");
    refused("20-10", "runs backwards");
    refused("-5", "neither a port");
    refused("5-", "neither a port");
    refused("1-2-3", "neither a port");
    refused("https", "neither a port");
    refused("+443", "neither a port");
    refused("44 3", "neither a port");
    refused("443;8443", "neither a port");
    /* at most TG_PORTS_MAX items, and a bounded text */
    char many[TG_PORTS_TEXT_MAX + 16] = "";
    for (int i = 1; i <= TG_PORTS_MAX + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d", i > 1 ? "," : "", i);
    refused(many, "more than");
    many[strlen(many) - 4] = '\0'; /* 256 items: fine */
    tg_portlist l;
    assert_int_equal(tg_ports_parse(many, &l, NULL), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].hi, TG_PORTS_MAX);
    char big[TG_PORTS_TEXT_MAX + 2];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[0] = '1';
    refused(big, "too long");
    /* the canonical form of the widest list fits its buffer */
    many[0] = '\0';
    for (int i = 0; i < TG_PORTS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d-%d", i ? "," : "",
                 60000 + 2 * i, 60000 + 2 * i);
    assert_int_equal(tg_ports_parse(many, &l, NULL), 0);
    assert_int_equal(l.n, TG_PORTS_MAX);
    char out[TG_PORTS_TEXT_MAX];
    tg_ports_format(&l, out, sizeof out);
    assert_int_equal(strlen(out), 256 * 6 - 1);
}

static unsigned overlap(const char *a, const char *b)
{
    tg_portlist x, y;
    assert_int_equal(tg_ports_parse(a, &x, NULL), 0);
    assert_int_equal(tg_ports_parse(b, &y, NULL), 0);
    unsigned p = tg_ports_overlap(&x, &y);
    assert_int_equal(tg_ports_overlap(&y, &x), p);
    return p;
}

static void port_overlaps(void **state)
{
    (void)state;
    assert_int_equal(overlap("443", "443"), 443);
    assert_int_equal(overlap("443", "444"), 0);
    assert_int_equal(overlap("443,8443", "8000-9000"), 8443);
    assert_int_equal(overlap("10-20", "21-30"), 0);
    assert_int_equal(overlap("10-20", "20-30"), 20);
    assert_int_equal(overlap("1,3,5,7", "2,4,6,7"), 7);
    assert_int_equal(overlap("100-200", "1-50,150"), 150);
    assert_int_equal(overlap("1-65535", "993"), 993);
}

static void listen_addresses(void **state)
{
    (void)state;
    char out[TG_LISTEN_MAX];
    tg_err e = {0};
    assert_int_equal(tg_listen_parse("127.0.0.1:3128", out, sizeof out, &e), 0);
    assert_string_equal(out, "127.0.0.1:3128");
    assert_int_equal(tg_listen_parse("0.0.0.0:8080", out, sizeof out, NULL), 0);
    assert_string_equal(out, "0.0.0.0:8080");
    assert_int_equal(tg_listen_parse("[::1]:3128", out, sizeof out, NULL), 0);
    assert_string_equal(out, "[::1]:3128");
    assert_int_equal(tg_listen_parse("[2001:DB8:0:0::1]:443", out, sizeof out, NULL), 0);
    assert_string_equal(out, "[2001:db8::1]:443");
    assert_int_equal(tg_listen_parse("[::]:65535", out, sizeof out, NULL), 0);
    assert_string_equal(out, "[::]:65535");
    const char *bad[] = {"",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "127.0.0.1:http",
                         "127.0.0.1:80x",
                         "localhost:3128",
                         "example.com:443",
                         ":3128",
                         "::1:3128",
                         "[::1]",
                         "[::1]3128",
                         "[]:3128",
                         "[127.0.0.1]:3128",
                         "[::1:3128",
                         "256.1.1.1:80",
                         "1.2.3.4 :80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_err why = {0};
        if (tg_listen_parse(bad[i], out, sizeof out, &why) != TG_E_INVALID)
            fail_msg("'%s' was accepted as %s", bad[i], out);
        assert_true(strlen(why.msg) > 20);
    }
}

/* ---- the keyring ---- */

static tg_keyring *kr;

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) fail_msg("failed: %s", cmd);
}

static void signing(const char *name)
{
    tg_newcert spec = {.name = name,
                       .subject = {.cn = name},
                       .keyspec = "ec:p256",
                       .days = 30,
                       .days_set = 1,
                       .signing = 1};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    json_decref(doc);
}

static tg_proxy_opts opts(const char *signer, const char *ts, const char *listen, const char *ports)
{
    tg_proxy_opts o;
    tg_proxy_opts_init(&o);
    o.signing = signer;
    o.truststore = ts;
    o.listen = listen;
    o.ports = ports;
    return o;
}

static tg_proxy_opts none(void)
{
    return opts(NULL, NULL, NULL, NULL);
}

/* Whether an error says w: a word of its sentence, or "--x" for the field x (the library
 * names fields; the CLI turns them into its options). */
static int says(const tg_err *e, const char *w)
{
    if (strncmp(w, "--", 2) == 0) {
        char f[32];
        size_t i = 0;
        for (const char *p = w + 2; *p && i + 1 < sizeof f; p++)
            f[i++] = *p == '-' ? '_' : *p;
        f[i] = '\0';
        if (strcmp(e->field, f) == 0) return 1;
    }
    return strstr(e->msg, w) != NULL;
}

/* create must fail with code, its sentence holding each of the words, and change nothing */
static void create_fails(const char *name, const tg_proxy_opts *o, int code, const char *w1,
                         const char *w2)
{
    json_t *before = NULL, *after = NULL, *doc = NULL;
    assert_int_equal(tg_keyring_proxy_list(kr, "client", &before, NULL), 0);
    tg_err e = {0};
    int rc = tg_keyring_proxy_create(kr, "client", name, o, &doc, &e);
    if (rc != code) fail_msg("create '%s': %d (%s), wanted %d", name, rc, e.msg, code);
    assert_null(doc);
    if (w1 && !says(&e, w1)) fail_msg("'%s' (%s) lacks '%s'", e.msg, e.field, w1);
    if (w2 && !says(&e, w2)) fail_msg("'%s' (%s) lacks '%s'", e.msg, e.field, w2);
    assert_int_equal(tg_keyring_proxy_list(kr, "client", &after, NULL), 0);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static void set_fails(const char *name, const tg_proxy_opts *o, int code, const char *w1,
                      const char *w2)
{
    json_t *before = NULL, *after = NULL, *doc = NULL;
    assert_int_equal(tg_keyring_proxy_list(kr, "client", &before, NULL), 0);
    tg_err e = {0};
    int rc = tg_keyring_proxy_set(kr, "client", name, o, &doc, &e);
    if (rc != code) fail_msg("set '%s': %d (%s), wanted %d", name, rc, e.msg, code);
    assert_null(doc);
    if (w1 && !says(&e, w1)) fail_msg("'%s' (%s) lacks '%s'", e.msg, e.field, w1);
    if (w2 && !says(&e, w2)) fail_msg("'%s' (%s) lacks '%s'", e.msg, e.field, w2);
    assert_int_equal(tg_keyring_proxy_list(kr, "client", &after, NULL), 0);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static json_t *create(const char *name, const tg_proxy_opts *o)
{
    json_t *doc = NULL;
    tg_err e = {0};
    if (tg_keyring_proxy_create(kr, "client", name, o, &doc, &e) != 0)
        fail_msg("create '%s': %s", name, e.msg);
    return doc;
}

static void proxy_rules(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    signing("sign-a");
    signing("sign-b");
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_ts_create(kr, "up", NULL, 0, &doc, NULL), 0);
    json_decref(doc);

    tg_proxy_opts o = opts("sign-a", "up", "127.0.0.1:3128", NULL);
    doc = create("web", &o);
    /* the defaults */
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "client");
    assert_string_equal(json_string_value(json_object_get(doc, "signing")), "sign-a");
    assert_string_equal(json_string_value(json_object_get(doc, "truststore")), "up");
    assert_string_equal(json_string_value(json_object_get(doc, "mode")), "explicit");
    assert_string_equal(json_string_value(json_object_get(doc, "service")), "https");
    ports_are(doc, "[[443, 443]]");
    assert_string_equal(json_string_value(json_object_get(doc, "over_max")), "bypass");
    assert_true(json_is_null(json_object_get(doc, "ciphers")));
    assert_true(json_is_false(json_object_get(doc, "block_invalid")));
    assert_int_equal(json_array_size(json_object_get(doc, "protocols")), 2);
    json_decref(doc);

    /* refusals; none of them changes anything */
    tg_proxy_opts x = opts("sign-a", "up", "127.0.0.1:3129", "443");
    create_fails("web2", &x, TG_E_CONFLICT, "'web'", "port 443");
    create_fails("web", &x, TG_E_CONFLICT, "already exists", NULL);
    x = opts("sign-a", "up", "127.0.0.1:3128", "8443");
    create_fails("web2", &x, TG_E_CONFLICT, "'web'", "'web2'");
    x = opts("sign-a", "up", "127.0.0.1:3129", "8443");
    create_fails("bad/name", &x, TG_E_INVALID, "letters, digits", NULL);
    create_fails(" web2", &x, TG_E_INVALID, "space", NULL);
    char longname[TG_PROXY_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    create_fails(longname, &x, TG_E_INVALID, "at most 128", NULL);
    longname[TG_PROXY_NAME_MAX] = '\0'; /* exactly 128 is fine (created below) */
    x = opts("appliance default", "up", "127.0.0.1:3129", "8443");
    create_fails("web2", &x, TG_E_CONFLICT, "not a CA", NULL);
    x = opts("nothing", "up", "127.0.0.1:3129", "8443");
    create_fails("web2", &x, TG_E_NOTFOUND, "nothing", NULL);
    x = opts("sign-a", "nothing", "127.0.0.1:3129", "8443");
    create_fails("web2", &x, TG_E_NOTFOUND, "nothing", NULL);
    x = opts("sign-a", "up", "127.0.0.1:3129", NULL);
    x.service = "other";
    create_fails("web2", &x, TG_E_USAGE, "--ports", NULL);
    x.service = "gopher";
    create_fails("web2", &x, TG_E_USAGE, "unknown service", NULL);
    x = opts("sign-a", "up", "127.0.0.1:3129", "8443");
    x.protocols = "1.1,1.3";
    create_fails("web2", &x, TG_E_INVALID, "contiguous", NULL);
    x.protocols = "1.4";
    create_fails("web2", &x, TG_E_INVALID, "not a TLS version", NULL);
    x.protocols = NULL;
    x.ciphers = "NOPE";
    create_fails("web2", &x, TG_E_INVALID, "selects no", NULL);
    x.ciphers = NULL;
    x.min_key_bits_set = 1;
    x.min_key_bits = 256;
    create_fails("web2", &x, TG_E_INVALID, "minimum key size", NULL);
    x.min_key_bits = 16385;
    create_fails("web2", &x, TG_E_INVALID, "minimum key size", NULL);
    x.min_key_bits_set = 0;
    x.max_conns_set = 1;
    x.max_conns = 1000001;
    create_fails("web2", &x, TG_E_INVALID, "connection limit", NULL);
    x.max_conns = -1;
    create_fails("web2", &x, TG_E_INVALID, "connection limit", NULL);
    x.max_conns_set = 0;
    x.mode = "sideways";
    create_fails("web2", &x, TG_E_USAGE, "unknown mode", NULL);
    x.mode = NULL;
    x.listen = NULL;
    create_fails("web2", &x, TG_E_USAGE, "listen", NULL);
    char desc[TG_PROXY_DESC_MAX * 2 + 8] = "";
    for (int i = 0; i <= TG_PROXY_DESC_MAX; i++)
        strcat(desc, "\xc3\xa9"); /* é: 513 characters, 1026 bytes */
    x = opts("sign-a", "up", "127.0.0.1:3129", "8443");
    x.description = desc;
    create_fails("web2", &x, TG_E_INVALID, "at most 512", NULL);
    desc[strlen(desc) - 2] = '\0'; /* 512 characters: fine */
    x.description = "a\x1b[31m";
    create_fails("web2", &x, TG_E_INVALID, "description", NULL);

    /* the limits themselves are accepted */
    x = opts("sign-b", "up", "[::1]:3128", "8443, 10000-10100,8444");
    x.description = desc;
    x.min_key_bits_set = x.max_conns_set = 1;
    x.min_key_bits = 16384;
    x.max_conns = 1000000;
    x.protocols = "1.3,1.1,1.2";
    x.ciphers = "ECDHE+AESGCM";
    x.mode = "transparent";
    x.over_max = "block";
    x.block_invalid = x.log = 1;
    doc = create(longname, &x);
    ports_are(doc, "[[8443, 8444], [10000, 10100]]");
    json_t *protocols = json_object_get(doc, "protocols");
    assert_int_equal(json_array_size(protocols), 3);
    assert_string_equal(json_string_value(json_array_get(protocols, 0)), "1.1");
    assert_string_equal(json_string_value(json_object_get(doc, "description")), desc);
    json_decref(doc);

    /* set: only what is given; overlaps with others, never with itself */
    tg_proxy_opts s = none();
    s.ports = "443,8080";
    doc = NULL;
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &s, &doc, NULL), 0);
    ports_are(doc, "[[443, 443], [8080, 8080]]");
    assert_string_equal(json_string_value(json_object_get(doc, "listen")), "127.0.0.1:3128");
    json_decref(doc);
    s.ports = "8000-8443";
    set_fails("web", &s, TG_E_CONFLICT, longname, "port 8443");
    s = none();
    s.listen = "[0::1]:3128";
    set_fails("web", &s, TG_E_CONFLICT, "[::1]:3128", "'web'");
    s = none();
    set_fails("web", &s, TG_E_USAGE, "nothing to change", NULL);
    s.signing = "appliance default";
    set_fails("web", &s, TG_E_CONFLICT, "not a CA", NULL);
    set_fails("nothing", &s, TG_E_NOTFOUND, "no client proxy", NULL);
    s = none();
    s.block_invalid = 1;
    s.ciphers = "HIGH";
    s.signing = "sign-b";
    doc = NULL;
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &s, &doc, NULL), 0);
    assert_true(json_is_true(json_object_get(doc, "block_invalid")));
    assert_string_equal(json_string_value(json_object_get(doc, "ciphers")), "HIGH");
    assert_string_equal(json_string_value(json_object_get(doc, "signing")), "sign-b");
    json_decref(doc);
    s = none();
    s.no_ciphers = 1;
    s.block_invalid = 0;
    doc = NULL;
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &s, &doc, NULL), 0);
    assert_true(json_is_null(json_object_get(doc, "ciphers")));
    assert_true(json_is_false(json_object_get(doc, "block_invalid")));
    json_decref(doc);

    /* in use: neither the signing certificate nor the trust store can go */
    tg_err e = {0};
    assert_int_equal(tg_keyring_cert_delete(kr, "sign-b", &e), TG_E_CONFLICT);
    assert_non_null(strstr(e.msg, "client proxy"));
    tg_err_clear(&e);
    assert_int_equal(tg_keyring_ts_delete(kr, "up", &e), TG_E_CONFLICT);
    assert_non_null(strstr(e.msg, "trust store 'up' is used by client proxy '"));
    assert_non_null(strstr(e.msg, "': change or delete the proxy first"));
    assert_int_equal(tg_keyring_cert_delete(kr, "sign-a", NULL), 0); /* no longer used */
    assert_int_equal(tg_keyring_proxy_delete(kr, "client", "web", NULL), 0);
    assert_int_equal(tg_keyring_proxy_delete(kr, "client", "web", NULL), TG_E_NOTFOUND);
    assert_int_equal(tg_keyring_proxy_delete(kr, "client", longname, NULL), 0);
    assert_int_equal(tg_keyring_ts_delete(kr, "up", NULL), 0);
    assert_int_equal(tg_keyring_cert_delete(kr, "sign-b", NULL), 0);
    assert_int_equal(tg_keyring_proxy_create(kr, "server", "srv", &o, &doc, NULL), TG_E_USAGE);
    tg_keyring_close(kr);
    kr = NULL;
}

/* ---- server proxies (issue 12) ---- */

static void leaf(const char *name)
{
    tg_newcert spec = {
        .name = name, .subject = {.cn = name}, .keyspec = "ec:p256", .days = 30, .days_set = 1};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    json_decref(doc);
}

static tg_proxy_opts srv(const char *const *certs, size_t ncerts, const char *const *dest,
                         size_t ndest)
{
    tg_proxy_opts o = none();
    o.certs = (tg_textlist){certs, ncerts};
    o.dest = (tg_textlist){dest, ndest};
    return o;
}

/* create or set (name set) of a server proxy must fail with code, saying w1 and w2, and
 * change nothing */
static void srv_fails(const char *create_name, const char *set_name, const tg_proxy_opts *o,
                      int code, const char *w1, const char *w2)
{
    json_t *before = NULL, *after = NULL, *doc = NULL;
    assert_int_equal(tg_keyring_proxy_list(kr, "server", &before, NULL), 0);
    tg_err e = {0};
    int rc = create_name ? tg_keyring_proxy_create(kr, "server", create_name, o, &doc, &e)
                         : tg_keyring_proxy_set(kr, "server", set_name, o, &doc, &e);
    if (rc != code) fail_msg("'%s': %d (%s), wanted %d", e.msg, rc, e.msg, code);
    assert_null(doc);
    if (w1 && !says(&e, w1)) fail_msg("'%s' (%s) lacks '%s'", e.msg, e.field, w1);
    if (w2 && !says(&e, w2)) fail_msg("'%s' (%s) lacks '%s'", e.msg, e.field, w2);
    assert_int_equal(tg_keyring_proxy_list(kr, "server", &after, NULL), 0);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static const char *cert_at(json_t *doc, size_t i, const char *member)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "certificates"), i), member));
}

static void server_rules(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    leaf("s-www");
    leaf("s-shop");
    signing("s-ca");
    const char *certs[] = {"s-www", "s-shop", "s-www"};
    const char *dest[] = {"192.0.2.10", "2001:DB8::/64"};
    tg_proxy_opts o = srv(certs, 3, dest, 2);
    json_t *doc = NULL;
    tg_err e = {0};
    if (tg_keyring_proxy_create(kr, "server", "s1", &o, &doc, &e) != 0) fail_msg("%s", e.msg);
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "server");
    assert_string_equal(json_string_value(json_object_get(doc, "mode")), "transparent");
    assert_int_equal(json_array_size(json_object_get(doc, "certificates")), 2); /* once each */
    assert_string_equal(cert_at(doc, 0, "name"), "s-www");
    assert_string_equal(cert_at(doc, 1, "name"), "s-shop");
    assert_string_equal(cert_at(doc, 0, "key"), "ok");
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "dest"), 0)),
                        "192.0.2.10/32");
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "dest"), 1)),
                        "2001:db8::/64");
    assert_true(json_is_null(json_object_get(doc, "listen")));
    assert_true(json_is_false(json_object_get(doc, "verify_upstream")));
    ports_are(doc, "[[443, 443]]");
    json_decref(doc);

    /* refusals, none of which changes anything */
    const char *ca[] = {"s-ca"}, *nope[] = {"nope"}, *www[] = {"s-www"};
    const char *other[] = {"198.51.100.0/24"}, *inside[] = {"192.0.2.0/28"};
    const char *hostbits[] = {"192.0.2.1/24"};
    o = srv(NULL, 0, other, 1);
    srv_fails("s2", NULL, &o, TG_E_USAGE, "--cert", "at least one certificate");
    o = srv(www, 1, NULL, 0);
    srv_fails("s2", NULL, &o, TG_E_USAGE, "--dest", NULL);
    o = srv(ca, 1, other, 1);
    srv_fails("s2", NULL, &o, TG_E_CONFLICT, "'s-ca' is a CA certificate", NULL);
    o = srv(nope, 1, other, 1);
    srv_fails("s2", NULL, &o, TG_E_NOTFOUND, "'nope'", NULL);
    o = srv(www, 1, hostbits, 1);
    srv_fails("s2", NULL, &o, TG_E_INVALID, "192.0.2.0/24", NULL);
    o = srv(www, 1, other, 1);
    o.listen = "127.0.0.1:4443";
    srv_fails("s2", NULL, &o, TG_E_USAGE, "--listen", "explicit mode");
    o.listen = NULL;
    o.signing = "s-ca";
    srv_fails("s2", NULL, &o, TG_E_USAGE, "--signing", "client proxies");
    o.signing = NULL;
    o.block_invalid = 1;
    srv_fails("s2", NULL, &o, TG_E_USAGE, "--block-invalid", NULL);
    o = srv(www, 1, inside, 1);
    srv_fails("s2", NULL, &o, TG_E_CONFLICT, "server proxy 's2'", "server proxy 's1'");
    static char many[TG_SRV_DEST_MAX + 1][32];
    const char *mv[TG_SRV_DEST_MAX + 1];
    for (int i = 0; i <= TG_SRV_DEST_MAX; i++) {
        snprintf(many[i], sizeof many[i], "10.1.%d.%d", i / 256, i % 256);
        mv[i] = many[i];
    }
    o = srv(www, 1, mv, TG_SRV_DEST_MAX + 1);
    srv_fails("s2", NULL, &o, TG_E_INVALID, "at most 256", NULL);
    o = srv(www, 1, mv, TG_SRV_DEST_MAX); /* the edge itself is fine */
    assert_int_equal(tg_keyring_proxy_create(kr, "server", "s2", &o, &doc, NULL), 0);
    json_decref(doc);
    /* a client proxy's kind check: the server's settings are not the client's */
    o = opts("s-ca", NULL, "127.0.0.1:3999", "9999");
    o.certs = (tg_textlist){www, 1};
    create_fails("c9", &o, TG_E_USAGE, "--cert", "server proxies");

    /* set: entries one at a time; the last certificate stays */
    o = none();
    o.remove_certs = (tg_textlist){www, 1};
    o.add_dest = (tg_textlist){other, 1};
    assert_int_equal(tg_keyring_proxy_set(kr, "server", "s1", &o, &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "certificates")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "dest")), 3);
    json_decref(doc);
    o = none();
    const char *shop[] = {"s-shop"};
    o.remove_certs = (tg_textlist){shop, 1};
    srv_fails(NULL, "s1", &o, TG_E_INVALID, "no certificate left", NULL);
    o = none();
    o.remove_certs = (tg_textlist){www, 1};
    srv_fails(NULL, "s1", &o, TG_E_NOTFOUND, "not among", NULL);
    o = none();
    srv_fails(NULL, "s1", &o, TG_E_USAGE, "nothing to change", NULL);
    /* explicit mode drops the destinations, and needs listen and upstream */
    o = none();
    o.mode = "explicit";
    srv_fails(NULL, "s1", &o, TG_E_USAGE, "--listen", NULL);
    o.listen = "127.0.0.1:4443";
    o.upstream = "[2001:db8::1]:443";
    assert_int_equal(tg_keyring_proxy_set(kr, "server", "s1", &o, &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "dest")), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "upstream")), "[2001:db8::1]:443");
    json_decref(doc);

    /* in use: the certificate cannot go, the proxy's deletion frees it */
    assert_int_equal(tg_keyring_cert_delete(kr, "s-shop", &e), TG_E_CONFLICT);
    assert_non_null(strstr(e.msg, "server proxy 's1'"));

    /* what the engine gets: each certificate as serve loads it */
    tg_proxy_rt *v = NULL;
    size_t n = 0;
    assert_int_equal(tg_keyring_proxies_load(kr, "server", &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].ncerts, 1);
    assert_string_equal(v[0].certs[0].name, "s-shop");
    assert_true(tg_cert_matches_key(v[0].certs[0].cert, v[0].certs[0].key));
    assert_int_equal(json_array_size(v[0].unusable), 0);
    assert_null(v[0].signing);
    tg_proxy_rt_free(v, n);
    assert_int_equal(tg_keyring_proxy_delete(kr, "server", "s1", NULL), 0);
    assert_int_equal(tg_keyring_proxy_delete(kr, "server", "s2", NULL), 0);
    assert_int_equal(tg_keyring_cert_delete(kr, "s-shop", NULL), 0);
    assert_int_equal(tg_keyring_cert_delete(kr, "s-www", NULL), 0);
    tg_keyring_close(kr);
    kr = NULL;
}

/* A CA whose key is not in the store cannot sign. */
static void signing_needs_key(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       "-keyout nk.key -out nk.pem -subj '/CN=No Key CA' -days 30 "
       "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
       "2>/dev/null",
       dir);
    char path[400];
    snprintf(path, sizeof path, "%s/nk.pem", dir);
    const char *files[] = {path};
    tg_input *in = test_inputs(files, 1);
    tg_import imp = {.inputs = in, .ninputs = 1, .name = "nokey"};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_ca_import(kr, &imp, &doc, NULL), 0);
    json_decref(doc);
    test_inputs_free(in, 1);
    assert_int_equal(tg_keyring_ts_create(kr, "up2", NULL, 0, &doc, NULL), 0);
    json_decref(doc);
    tg_proxy_opts o = opts("nokey", "up2", "127.0.0.1:3130", NULL);
    create_fails("p", &o, TG_E_CONFLICT, "private key", "not in the store");
    tg_keyring_close(kr);
    kr = NULL;
}

/* The runtime view: document, signing CA with key and stored chain, anchors. */
static void runtime_view(void **state)
{
    (void)state;
    /* root -> int1 -> int2: int2 signs, and its stored chain is [int1] (the root is a
     * self-signed top, not sent) */
    sh("cd '%s' && "
       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout r.key "
       "-out r.pem -subj '/CN=RT Root' -days 30 2>/dev/null && "
       "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
       "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' > ca.ext && "
       "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout i1.key "
       "-out i1.csr -subj '/CN=RT Int 1' 2>/dev/null && "
       "openssl x509 -req -in i1.csr -CA r.pem -CAkey r.key -CAcreateserial -days 20 "
       "-extfile ca.ext -out i1.pem 2>/dev/null && "
       "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout i2.key "
       "-out i2.csr -subj '/CN=RT Int 2' 2>/dev/null && "
       "openssl x509 -req -in i2.csr -CA i1.pem -CAkey i1.key -CAcreateserial -days 10 "
       "-extfile ca.ext -out i2.pem 2>/dev/null",
       dir);
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    char f1[400], f2[400], f3[400], k2[400];
    snprintf(f1, sizeof f1, "%s/r.pem", dir);
    snprintf(f2, sizeof f2, "%s/i1.pem", dir);
    snprintf(f3, sizeof f3, "%s/i2.pem", dir);
    snprintf(k2, sizeof k2, "%s/i2.key", dir);
    const char *cas[] = {f1, f2};
    tg_input *cin = test_inputs(cas, 2);
    tg_import imp = {.inputs = cin, .ninputs = 2};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_ca_import(kr, &imp, &doc, NULL), 0);
    json_decref(doc);
    test_inputs_free(cin, 2);
    const char *leaf[] = {f3}, *keys[] = {k2};
    tg_input *lin = test_inputs(leaf, 1), *kin = test_inputs(keys, 1);
    tg_import imp2 = {.inputs = lin, .ninputs = 1, .name = "int2", .key = kin};
    assert_int_equal(tg_keyring_ca_import(kr, &imp2, &doc, NULL), 0);
    json_decref(doc);
    test_inputs_free(lin, 1);
    test_inputs_free(kin, 1);
    assert_int_equal(tg_keyring_ts_create(kr, "empty", NULL, 0, &doc, NULL), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_ts_create(kr, "roots", NULL, 0, &doc, NULL), 0);
    json_decref(doc);
    const char *root[] = {"RT Root"};
    assert_int_equal(tg_keyring_ts_change(kr, "roots", root, 1, 1, &doc, NULL), 0);
    json_decref(doc);
    signing("self");

    tg_proxy_rt *v = NULL;
    size_t n = 99;
    assert_int_equal(tg_keyring_proxies_load(kr, "client", &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    tg_proxy_rt_free(v, n);

    tg_proxy_opts a = opts("int2", "roots", "127.0.0.1:4001", "443");
    json_decref(create("b-chained", &a));
    tg_proxy_opts b = opts("self", "empty", "127.0.0.1:4002", "993");
    json_decref(create("a-self", &b));
    assert_int_equal(tg_keyring_proxies_load(kr, "client", &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    /* in name order, each with its document as show gives it */
    json_t *shown = NULL;
    assert_int_equal(tg_keyring_proxy_show(kr, "client", "a-self", &shown, NULL), 0);
    assert_true(json_equal(v[0].conf, shown));
    json_decref(shown);
    assert_int_equal(v[0].nchain, 0);
    assert_int_equal(v[0].nanchors, 0); /* an empty trust store: nothing verifies */
    assert_null(v[0].policy);           /* no decryption policy */
    assert_true(tg_cert_matches_key(v[0].signing, v[0].signing_key));
    assert_string_equal(json_string_value(json_object_get(v[1].conf, "name")), "b-chained");
    assert_true(tg_cert_matches_key(v[1].signing, v[1].signing_key));
    assert_true(tg_cert_is_ca(v[1].signing));
    assert_int_equal(v[1].nchain, 1);
    assert_true(tg_cert_issued_by(v[1].signing, v[1].chain[0]));
    assert_int_equal(v[1].nanchors, 1);
    assert_true(tg_cert_issued_by(v[1].chain[0], v[1].anchors[0]));
    tg_proxy_rt_free(v, n);
    assert_int_equal(tg_keyring_proxies_load(kr, "server", &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    tg_proxy_rt_free(v, n);
    assert_int_equal(tg_keyring_proxies_load(kr, "other", &v, &n, NULL), TG_E_USAGE);
    tg_keyring_close(kr);
    kr = NULL;
}

static void untrusted_ca(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    assert_int_equal(tg_keyring_factory_reset(kr, NULL), 0);
    tg_cert *c1 = NULL, *c2 = NULL;
    tg_key *k1 = NULL, *k2 = NULL;
    assert_int_equal(tg_keyring_untrusted_ca(kr, &c1, &k1, NULL), 0);
    assert_true(tg_cert_is_ca(c1));
    assert_true(tg_cert_self_signed(c1));
    assert_true(tg_cert_matches_key(c1, k1));
    long long nb, na;
    tg_cert_validity(c1, &nb, &na);
    assert_true(na - nb >= 3650LL * 86400 - 86400 && na - nb <= 3650LL * 86400 + 86400);
    tg_certinfo info;
    assert_int_equal(tg_cert_info(c1, &info, NULL), 0);
    assert_string_equal(info.subject_cn, "tlsgate untrusted CA - do not trust");
    assert_string_equal(info.key_type, "EC");
    assert_int_equal(info.key_bits, 256);
    tg_certinfo_clear(&info);
    /* the same one again, from another keyring (another process) too */
    tg_keyring *kr2 = NULL;
    assert_int_equal(tg_keyring_open(home, &kr2, NULL), 0);
    assert_int_equal(tg_keyring_untrusted_ca(kr2, &c2, &k2, NULL), 0);
    assert_true(tg_cert_equal(c1, c2));
    tg_keyring_close(kr2);
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_show(kr, TG_UNTRUSTED_CA_NAME, &doc, NULL), 0);
    assert_true(json_is_true(json_object_get(doc, "signing")));
    assert_true(json_is_false(json_object_get(doc, "exportable")));
    json_decref(doc);
    tg_cert_free(c2);
    tg_key_free(k2);
    /* deleted: a new one next time; a user's certificate with that name: refused */
    assert_int_equal(tg_keyring_cert_delete(kr, TG_UNTRUSTED_CA_NAME, NULL), 0);
    tg_newcert spec = {.name = TG_UNTRUSTED_CA_NAME,
                       .subject = {.cn = "mine"},
                       .keyspec = "ec:p256",
                       .days = 30,
                       .days_set = 1};
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    json_decref(doc);
    tg_err e = {0};
    assert_int_equal(tg_keyring_untrusted_ca(kr, &c2, &k2, &e), TG_E_CONFLICT);
    assert_null(c2);
    assert_null(k2);
    assert_non_null(strstr(e.msg, "not tlsgate's untrusted CA"));
    assert_int_equal(tg_keyring_cert_delete(kr, TG_UNTRUSTED_CA_NAME, NULL), 0);
    assert_int_equal(tg_keyring_untrusted_ca(kr, &c2, &k2, NULL), 0);
    assert_false(tg_cert_equal(c1, c2));
    /* a factory reset removes it like every other certificate */
    assert_int_equal(tg_keyring_factory_reset(kr, NULL), 0);
    assert_int_equal(tg_keyring_cert_show(kr, TG_UNTRUSTED_CA_NAME, &doc, NULL), TG_E_NOTFOUND);
    tg_cert_free(c1);
    tg_key_free(k1);
    tg_cert_free(c2);
    tg_key_free(k2);
    tg_keyring_close(kr);
    kr = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(port_lists),        cmocka_unit_test(port_overlaps),
        cmocka_unit_test(listen_addresses),  cmocka_unit_test(proxy_rules),
        cmocka_unit_test(signing_needs_key), cmocka_unit_test(runtime_view),
        cmocka_unit_test(untrusted_ca),      cmocka_unit_test(server_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
