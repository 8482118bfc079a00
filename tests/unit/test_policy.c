/*
 * test_policy.c — decryption policies (issue 9, item 5): the parsers of domains, categories
 * and source networks; the rules of create/set/import (a refusal changes nothing); the
 * default never-decrypt list; the category map and its lookup; the runtime view a proxy
 * with a policy gets (tg_keyring_proxies_load).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "keyring/keyring.h"

#include "scratch.h"

static int setup(void **state)
{
    (void)state;
    return scratch_setup("policy");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_teardown();
}

/* ---- parsers ---- */

static void domain_ok(const char *in, const char *want)
{
    char out[TG_DOMAIN_MAX + 1];
    tg_err e = {0};
    if (tg_domain_parse(in, out, sizeof out, &e) != 0) fail_msg("'%s' refused: %s", in, e.msg);
    if (strcmp(out, want) != 0) fail_msg("'%s' gave '%s', wanted '%s'", in, out, want);
}

static void domain_bad(const char *in, const char *why)
{
    char out[TG_DOMAIN_MAX + 1];
    tg_err e = {0};
    if (tg_domain_parse(in, out, sizeof out, &e) != TG_E_INVALID)
        fail_msg("'%s' was accepted as '%s'", in, out);
    if (strstr(e.msg, why) == NULL) fail_msg("'%s': '%s' does not say '%s'", in, e.msg, why);
}

static void domains(void **state)
{
    (void)state;
    domain_ok("bank.example", "bank.example");
    domain_ok("Bank.EXAMPLE", "bank.example");
    domain_ok("*.Example.com", "*.example.com");
    domain_ok("localhost", "localhost");
    domain_ok("xn--bcher-kva.example", "xn--bcher-kva.example");
    domain_ok("a-b.c1.example", "a-b.c1.example");
    domain_ok("2001.example", "2001.example");
    char longest[4 * 64 + 1];
    /* 253 characters: labels of 63 and a dot, four times, less the last three */
    for (int i = 0; i < 4; i++) {
        memset(longest + i * 64, 'a', 63);
        longest[i * 64 + 63] = '.';
    }
    longest[TG_DOMAIN_MAX] = '\0';
    domain_ok(longest, longest);
    longest[TG_DOMAIN_MAX] = 'a';
    longest[TG_DOMAIN_MAX + 1] = '\0';
    domain_bad(longest, "longer than 253");
    domain_bad("", "empty");
    domain_bad("*.com", "top-level");
    domain_bad("*", "neither");
    domain_bad("*.", "neither");
    domain_bad("a.*.example", "neither");
    domain_bad("*a.example", "neither");
    domain_bad("**.example.com", "neither");
    domain_bad("bank.example.", "final dot");
    domain_bad(".bank.example", "neither");
    domain_bad("bank..example", "neither");
    domain_bad("-bank.example", "neither");
    domain_bad("bank-.example", "neither");
    domain_bad("bank_1.example", "neither");
    domain_bad("bank example", "neither");
    domain_bad("b\xc3\xa4nk.example", "xn--");
    domain_bad("192.0.2.1", "IPv4 address");
    domain_bad("2001:db8::1", "neither");
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example");
    domain_bad(label, "neither"); /* a label of 64 */
}

static void matches(void **state)
{
    (void)state;
    assert_true(tg_domain_matches("bank.example", "bank.example"));
    assert_false(tg_domain_matches("bank.example", "www.bank.example"));
    assert_true(tg_domain_matches("*.example.com", "a.example.com"));
    assert_true(tg_domain_matches("*.example.com", "legal.compliance.example.com"));
    assert_false(tg_domain_matches("*.example.com", "example.com"));
    assert_false(tg_domain_matches("*.example.com", "badexample.com"));
    assert_false(tg_domain_matches("*.example.com", "a.example.com.evil"));
}

static void categories(void **state)
{
    (void)state;
    char out[TG_CATEGORY_MAX + 1];
    tg_err e = {0};
    assert_int_equal(tg_category_parse("finance", out, sizeof out, &e), 0);
    assert_string_equal(out, "finance");
    assert_int_equal(tg_category_parse("Health-Care2", out, sizeof out, &e), 0);
    assert_string_equal(out, "health-care2");
    char c64[TG_CATEGORY_MAX + 2];
    memset(c64, 'c', TG_CATEGORY_MAX);
    c64[TG_CATEGORY_MAX] = '\0';
    assert_int_equal(tg_category_parse(c64, out, sizeof out, &e), 0);
    c64[TG_CATEGORY_MAX] = 'c';
    c64[TG_CATEGORY_MAX + 1] = '\0';
    const char *bad[] = {"", c64, "a_b", "a b", "a.b", "fin\xc3\xa4nce", "a/b", "-\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_err why = {0};
        if (tg_category_parse(bad[i], out, sizeof out, &why) != TG_E_INVALID)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(why.msg) > 20);
    }
}

static void cidr_ok(const char *in, const char *want)
{
    tg_cidr c;
    tg_err e = {0};
    char out[TG_CIDR_TEXT_MAX];
    if (tg_cidr_parse(in, &c, &e) != 0) fail_msg("'%s' refused: %s", in, e.msg);
    tg_cidr_format(&c, out, sizeof out);
    if (strcmp(out, want) != 0) fail_msg("'%s' gave '%s', wanted '%s'", in, out, want);
}

static void cidr_bad(const char *in, const char *why)
{
    tg_cidr c;
    tg_err e = {0};
    if (tg_cidr_parse(in, &c, &e) != TG_E_INVALID) fail_msg("'%s' was accepted", in);
    if (strstr(e.msg, why) == NULL) fail_msg("'%s': '%s' does not say '%s'", in, e.msg, why);
}

static void cidrs(void **state)
{
    (void)state;
    cidr_ok("10.0.0.0/8", "10.0.0.0/8");
    cidr_ok("192.0.2.7", "192.0.2.7/32");
    cidr_ok("192.0.2.128/25", "192.0.2.128/25");
    cidr_ok("0.0.0.0/0", "0.0.0.0/0");
    cidr_ok("2001:DB8:0:0::/32", "2001:db8::/32");
    cidr_ok("2001:db8::1", "2001:db8::1/128");
    cidr_ok("::/0", "::/0");
    cidr_ok("fe80::/10", "fe80::/10");
    cidr_ok("2001:db8:0:0:0:0:0:8000/113", "2001:db8::8000/113");
    cidr_ok("::ffff:192.0.2.0/120", "::ffff:192.0.2.0/120");
    cidr_bad("10.1.2.3/8", "the network is 10.0.0.0/8");
    cidr_bad("10.1.2.3/8", "10.1.2.3/32");
    cidr_bad("192.0.2.129/25", "192.0.2.128/25");
    cidr_bad("2001:db8::1/64", "2001:db8::/64");
    cidr_bad("fe80::1/10", "fe80::/10");
    cidr_bad("10.0.0.0/33", "0 to 32");
    cidr_bad("2001:db8::/129", "0 to 128");
    cidr_bad("10.0.0.0/", "0 to 32");
    cidr_bad("10.0.0.0/8/8", "0 to 32");
    cidr_bad("10.0.0.0/+8", "0 to 32");
    cidr_bad("10.0.0.0/ 8", "0 to 32");
    cidr_bad("10.0.0.0/0008", "0 to 32");
    cidr_bad("", "empty");
    cidr_bad("/8", "not a source network");
    cidr_bad("10.0.0/8", "not a source network");
    cidr_bad("010.0.0.0/8", "not a source network");
    cidr_bad("256.0.0.0/8", "not a source network");
    cidr_bad("example.com/8", "not a source network");
    cidr_bad("fe80::1%eth0/128", "not a source network");
    cidr_bad("2001:db8:::/32", "not a source network");
    /* containment, what the engine asks */
    tg_cidr c;
    unsigned char a[16];
    assert_int_equal(tg_cidr_parse("192.0.2.128/25", &c, NULL), 0);
    inet_pton(AF_INET, "192.0.2.200", a);
    assert_true(tg_cidr_contains(&c, AF_INET, a));
    inet_pton(AF_INET, "192.0.2.127", a);
    assert_false(tg_cidr_contains(&c, AF_INET, a));
    assert_false(tg_cidr_contains(&c, AF_INET6, a));
    assert_int_equal(tg_cidr_parse("2001:db8::/33", &c, NULL), 0);
    inet_pton(AF_INET6, "2001:db8:7fff::1", a);
    assert_true(tg_cidr_contains(&c, AF_INET6, a));
    inet_pton(AF_INET6, "2001:db8:8000::1", a);
    assert_false(tg_cidr_contains(&c, AF_INET6, a));
    assert_int_equal(tg_cidr_parse("0.0.0.0/0", &c, NULL), 0);
    inet_pton(AF_INET, "203.0.113.9", a);
    assert_true(tg_cidr_contains(&c, AF_INET, a));
}

/* ---- the keyring ---- */

static tg_keyring *kr;

static tg_policy_opts popts(void)
{
    tg_policy_opts o = {.no_defaults = TG_UNSET};
    return o;
}

static void add(tg_policy_opts *o, int list, const char *const *v, size_t n)
{
    o->add[list].v = v;
    o->add[list].n = n;
}

/* Every policy's document and the default list, to compare before and after a refusal. */
static json_t *everything(void)
{
    json_t *rows = NULL, *all = json_object(), *d = NULL;
    assert_int_equal(tg_keyring_policy_list(kr, &rows, NULL), 0);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_t *doc = NULL;
        const char *name = json_string_value(json_object_get(r, "name"));
        assert_int_equal(tg_keyring_policy_show(kr, name, &doc, NULL), 0);
        json_object_set_new(all, name, doc);
    }
    json_decref(rows);
    assert_int_equal(tg_keyring_defaults_show(kr, &d, NULL), 0);
    json_object_set_new(all, "(defaults)", d);
    return all;
}

typedef int (*policy_op)(const char *name, const tg_policy_opts *o, json_t **out, tg_err *e);

static int op_create(const char *name, const tg_policy_opts *o, json_t **out, tg_err *e)
{
    return tg_keyring_policy_create(kr, name, o, out, e);
}

static int op_set(const char *name, const tg_policy_opts *o, json_t **out, tg_err *e)
{
    return tg_keyring_policy_set(kr, name, o, out, e);
}

/* op must fail with code, its sentence holding the words, and change nothing. */
static void fails(policy_op op, const char *name, const tg_policy_opts *o, int code, const char *w1,
                  const char *w2)
{
    json_t *before = everything(), *doc = NULL;
    tg_err e = {0};
    int rc = op(name, o, &doc, &e);
    if (rc != code) fail_msg("'%s': %d (%s), wanted %d", name, rc, e.msg, code);
    assert_null(doc);
    if (w1 && !strstr(e.msg, w1)) fail_msg("'%s' lacks '%s'", e.msg, w1);
    if (w2 && !strstr(e.msg, w2)) fail_msg("'%s' lacks '%s'", e.msg, w2);
    json_t *after = everything();
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static json_t *list_of(json_t *doc, const char *key)
{
    return json_object_get(doc, key);
}

static void policy_rules(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    tg_policy_opts o = popts();
    const char *doms[] = {"Bank.example", "*.health.example", "bank.example"};
    const char *cats[] = {"Finance", "health"};
    const char *never[] = {"10.0.0.0/8", "2001:db8::/32"};
    const char *always[] = {"192.0.2.7"};
    add(&o, TG_NEVER_DOMAINS, doms, 3);
    add(&o, TG_NEVER_CATEGORIES, cats, 2);
    add(&o, TG_NEVER_SOURCES, never, 2);
    add(&o, TG_ALWAYS_SOURCES, always, 1);
    o.description = "the office";
    json_t *doc = NULL;
    tg_err e = {0};
    if (tg_keyring_policy_create(kr, "office", &o, &doc, &e) != 0) fail_msg("%s", e.msg);
    /* canonical, each once, in byte order */
    json_t *d = list_of(doc, "never_domains");
    assert_int_equal(json_array_size(d), 2);
    assert_string_equal(json_string_value(json_array_get(d, 0)), "*.health.example");
    assert_string_equal(json_string_value(json_array_get(d, 1)), "bank.example");
    assert_string_equal(json_string_value(json_array_get(list_of(doc, "never_categories"), 0)),
                        "finance");
    assert_string_equal(json_string_value(json_array_get(list_of(doc, "always_sources"), 0)),
                        "192.0.2.7/32");
    assert_true(json_is_false(json_object_get(doc, "no_defaults")));
    assert_int_equal(json_array_size(json_object_get(doc, "used_by")), 0);
    json_decref(doc);

    /* refusals change nothing */
    tg_policy_opts x = popts();
    fails(op_create, "office", &x, TG_E_CONFLICT, "already exists", NULL);
    fails(op_create, "bad/name", &x, TG_E_INVALID, "letters, digits", NULL);
    fails(op_create, "", &x, TG_E_INVALID, "empty", NULL);
    const char *both[] = {"10.0.0.0/8"};
    add(&x, TG_NEVER_SOURCES, both, 1);
    add(&x, TG_ALWAYS_SOURCES, both, 1);
    fails(op_create, "p2", &x, TG_E_INVALID, "both a never-decrypt and an always-decrypt", NULL);
    x = popts();
    const char *hostbits[] = {"10.1.0.0/8"};
    add(&x, TG_NEVER_SOURCES, hostbits, 1);
    fails(op_create, "p2", &x, TG_E_INVALID, "host bits", NULL);
    x = popts();
    const char *baddom[] = {"ok.example", "*.com"};
    add(&x, TG_NEVER_DOMAINS, baddom, 2);
    fails(op_create, "p2", &x, TG_E_INVALID, "*.com", NULL);
    x = popts();
    const char *badcat[] = {"no_underscores"};
    add(&x, TG_NEVER_CATEGORIES, badcat, 1);
    fails(op_create, "p2", &x, TG_E_INVALID, "letters, digits and hyphens", NULL);
    x = popts();
    x.description = "bell\a";
    fails(op_create, "p2", &x, TG_E_INVALID, "description", NULL);
    /* limits: one over is refused before anything is parsed, one less is fine */
    static const char *many[TG_POLICY_DOMAINS_MAX + 1];
    static char names[TG_POLICY_DOMAINS_MAX + 1][32];
    for (int i = 0; i <= TG_POLICY_DOMAINS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "h%d.example", i);
        many[i] = names[i];
    }
    x = popts();
    add(&x, TG_NEVER_DOMAINS, many, TG_POLICY_DOMAINS_MAX + 1);
    fails(op_create, "p2", &x, TG_E_INVALID, "at most 10000", NULL);
    static char nets[TG_POLICY_SOURCES_MAX + 1][32];
    static const char *netv[TG_POLICY_SOURCES_MAX + 1];
    for (int i = 0; i <= TG_POLICY_SOURCES_MAX; i++) {
        snprintf(nets[i], sizeof nets[i], "10.%d.%d.0/24", i / 256, i % 256);
        netv[i] = nets[i];
    }
    x = popts();
    add(&x, TG_NEVER_SOURCES, netv, 600);
    add(&x, TG_ALWAYS_SOURCES, netv + 600, 401);
    fails(op_create, "p2", &x, TG_E_INVALID, "never and always together", "1000");
    x = popts();
    add(&x, TG_NEVER_DOMAINS, many, TG_POLICY_DOMAINS_MAX);
    add(&x, TG_NEVER_SOURCES, netv, 600);
    add(&x, TG_ALWAYS_SOURCES, netv + 600, 400);
    x.no_defaults = 1;
    doc = NULL;
    assert_int_equal(tg_keyring_policy_create(kr, "big", &x, &doc, NULL), 0);
    assert_int_equal(json_array_size(list_of(doc, "never_domains")), TG_POLICY_DOMAINS_MAX);
    assert_true(json_is_true(json_object_get(doc, "no_defaults")));
    json_decref(doc);
    /* set: one more is over the limit, and a source moved to the other list clashes */
    x = popts();
    add(&x, TG_NEVER_DOMAINS, many + TG_POLICY_DOMAINS_MAX, 1);
    fails(op_set, "big", &x, TG_E_INVALID, "10001", "limit is 10000");
    x = popts();
    add(&x, TG_ALWAYS_SOURCES, netv, 1);
    x.remove[TG_ALWAYS_SOURCES].v = netv + 600;
    x.remove[TG_ALWAYS_SOURCES].n = 1;
    fails(op_set, "big", &x, TG_E_INVALID, "10.0.0.0/24", "one list only");
    x = popts();
    const char *absent[] = {"nowhere.example"};
    x.remove[TG_NEVER_DOMAINS].v = absent;
    x.remove[TG_NEVER_DOMAINS].n = 1;
    fails(op_set, "big", &x, TG_E_NOTFOUND, "not among the never-decrypt domains", NULL);
    x = popts();
    fails(op_set, "big", &x, TG_E_USAGE, "nothing to change", NULL);
    x.no_defaults = 0;
    fails(op_set, "nothing", &x, TG_E_NOTFOUND, "no policy is named 'nothing'", NULL);

    /* set: removals, then additions, spelled any way */
    x = popts();
    const char *rm[] = {"BANK.example"}, *ad[] = {"bank.example", "new.example"};
    x.remove[TG_NEVER_DOMAINS].v = rm;
    x.remove[TG_NEVER_DOMAINS].n = 1;
    add(&x, TG_NEVER_DOMAINS, ad, 2);
    x.no_defaults = 1;
    x.description = "changed";
    doc = NULL;
    assert_int_equal(tg_keyring_policy_set(kr, "office", &x, &doc, NULL), 0);
    assert_int_equal(json_array_size(list_of(doc, "never_domains")), 3);
    assert_true(json_is_true(json_object_get(doc, "no_defaults")));
    assert_string_equal(json_string_value(json_object_get(doc, "description")), "changed");
    json_decref(doc);

    /* export, then import under another name and with --replace: the same lists */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tg_keyring_policy_export(kr, "office", &text, &len, NULL), 0);
    assert_int_equal(text[len - 1], '\n');
    json_t *a = NULL, *b = NULL;
    assert_int_equal(tg_keyring_policy_import(kr, text, len, "copy", 0, &b, NULL), 0);
    assert_int_equal(tg_keyring_policy_show(kr, "office", &a, NULL), 0);
    for (int k = 0; k < 4; k++) {
        static const char *const keys[] = TG_POLICY_LIST_NAMES;
        assert_true(json_equal(json_object_get(a, keys[k]), json_object_get(b, keys[k])));
    }
    json_decref(a);
    json_decref(b);
    x = popts();
    fails(op_create, "copy", &x, TG_E_CONFLICT, NULL, NULL);
    tg_err ie = {0};
    json_t *before = everything();
    assert_int_equal(tg_keyring_policy_import(kr, text, len, NULL, 0, &doc, &ie), TG_E_CONFLICT);
    assert_string_equal(ie.field, "replace");
    const char *bad_files[] = {"",
                               "[]",
                               "{\"name\": \"z\", \"never_domains\": \"a.example\"}",
                               "{\"name\": \"z\", \"color\": 1}",
                               "{\"name\": \"z\", \"tlsgate_policy\": 2}",
                               "{\"never_domains\": []}",
                               "{\"name\": \"z\", \"never_sources\": [\"10.0.0.1/8\"]}",
                               "{\"name\": \"z\", \"never_domains\": [1]}",
                               "{\"name\": \"z\", \"name\": \"y\"}",
                               "{\"name\": \"z\", \"no_defaults\": \"yes\"}"};
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        tg_err why = {0};
        doc = NULL;
        if (tg_keyring_policy_import(kr, bad_files[i], strlen(bad_files[i]), NULL, 0, &doc, &why) !=
            TG_E_INVALID)
            fail_msg("import of %s: %s", bad_files[i], why.msg);
        assert_null(doc);
    }
    json_t *after = everything();
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    const char *small = "{\"name\": \"copy\", \"never_categories\": [\"adult\"]}";
    doc = NULL;
    assert_int_equal(tg_keyring_policy_import(kr, small, strlen(small), NULL, 1, &doc, NULL), 0);
    assert_int_equal(json_array_size(list_of(doc, "never_domains")), 0);
    assert_int_equal(json_array_size(list_of(doc, "never_categories")), 1);
    assert_true(json_is_false(json_object_get(doc, "no_defaults")));
    json_decref(doc);
    free(text);

    /* names are apart from proxies' names: see runtime_view; deletion */
    assert_int_equal(tg_keyring_policy_delete(kr, "copy", NULL), 0);
    assert_int_equal(tg_keyring_policy_delete(kr, "copy", NULL), TG_E_NOTFOUND);
    assert_int_equal(tg_keyring_policy_delete(kr, "big", NULL), 0);
    tg_keyring_close(kr);
    kr = NULL;
}

static void default_list(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    json_t *builtin = NULL, *doc = NULL;
    assert_int_equal(tg_keyring_defaults_show(kr, &builtin, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(builtin, "source")), "built-in");
    size_t n = json_array_size(json_object_get(builtin, "domains"));
    assert_true(n >= 20 && n <= 40);
    /* every built-in entry is a canonical domain */
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(builtin, "domains"), i, v)
    {
        char out[TG_DOMAIN_MAX + 1];
        assert_int_equal(tg_domain_parse(json_string_value(v), out, sizeof out, NULL), 0);
        assert_string_equal(out, json_string_value(v));
    }
    /* export, import: the same list, now "imported" */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tg_keyring_defaults_export(kr, &text, &len, NULL), 0);
    assert_int_equal(tg_keyring_defaults_import(kr, text, len, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "source")), "imported");
    assert_true(json_equal(json_object_get(doc, "domains"), json_object_get(builtin, "domains")));
    json_decref(doc);
    free(text);
    /* refusals name the line and change nothing */
    const char *bad[] = {"# only a comment\n", "a.example\nb.example c\n", "ok.example\n*.com\n",
                         "ok.example\nbad_name.example\n"};
    const char *says[] = {"no domain", "line 2", "line 2", "line 2"};
    json_t *before = everything();
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tg_err e = {0};
        doc = NULL;
        assert_int_equal(tg_keyring_defaults_import(kr, bad[k], strlen(bad[k]), &doc, &e),
                         TG_E_INVALID);
        if (!strstr(e.msg, says[k])) fail_msg("'%s' lacks '%s'", e.msg, says[k]);
    }
    json_t *after = everything();
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    const char *mine = "# mine\r\nBank.example\n\n*.clinic.example  # a clinic\n";
    assert_int_equal(tg_keyring_defaults_import(kr, mine, strlen(mine), &doc, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "domain_count")), 2);
    json_decref(doc);
    /* an imported list survives reopening; reset brings the built-in one back */
    tg_keyring_close(kr);
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    assert_int_equal(tg_keyring_defaults_show(kr, &doc, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "domain_count")), 2);
    json_decref(doc);
    assert_int_equal(tg_keyring_defaults_reset(kr, &doc, NULL), 0);
    assert_true(json_equal(doc, builtin));
    json_decref(doc);
    json_decref(builtin);
    tg_keyring_close(kr);
    kr = NULL;
}

static const char *category_of(const char *name, const char **matched)
{
    static char cat[80], from[300];
    json_t *doc = NULL;
    tg_err e = {0};
    if (tg_keyring_category_show(kr, name, &doc, &e) != 0) fail_msg("%s: %s", name, e.msg);
    json_t *c = json_object_get(doc, "category");
    snprintf(cat, sizeof cat, "%s", json_is_string(c) ? json_string_value(c) : "-");
    json_t *m = json_object_get(doc, "matched");
    snprintf(from, sizeof from, "%s", json_is_string(m) ? json_string_value(m) : "-");
    if (matched) *matched = from;
    json_decref(doc);
    return cat;
}

static int count_pairs(void *arg, const char *domain, const char *category)
{
    (void)domain;
    (void)category;
    ++*(int *)arg;
    return 0;
}

static int stop_at_two(void *arg, const char *domain, const char *category)
{
    (void)domain;
    (void)category;
    return ++*(int *)arg == 2 ? TG_E_INTERNAL : 0;
}

static void category_map(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    long long s0 = tg_keyring_categories_stamp(kr);
    const char *file = "# test map\n"
                       "bank.example finance\n"
                       "*.clinic.example health\n"
                       "*.example.com misc\n"
                       "*.deep.example.com deep\n"
                       "a.deep.example.com exact\t# a comment\n"
                       "Bank.Example Banking\n"; /* the last line wins */
    json_t *doc = NULL;
    tg_err e = {0};
    if (tg_keyring_categories_import(kr, file, strlen(file), 0, &doc, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(json_integer_value(json_object_get(doc, "lines")), 7);
    assert_int_equal(json_integer_value(json_object_get(doc, "mappings")), 6);
    assert_int_equal(json_integer_value(json_object_get(doc, "domain_count")), 5);
    json_decref(doc);
    long long s1 = tg_keyring_categories_stamp(kr);
    assert_true(s1 != 0 && s1 != s0);
    const char *m;
    assert_string_equal(category_of("bank.example", &m), "banking");
    assert_string_equal(m, "bank.example");
    assert_string_equal(category_of("www.bank.example", &m), "-"); /* exact only */
    assert_string_equal(m, "-");
    assert_string_equal(category_of("x.clinic.example", &m), "health");
    assert_string_equal(m, "*.clinic.example");
    assert_string_equal(category_of("a.b.c.clinic.example", NULL), "health");
    assert_string_equal(category_of("clinic.example", NULL), "-"); /* not the apex */
    assert_string_equal(category_of("a.deep.example.com", NULL), "exact");
    assert_string_equal(category_of("b.deep.example.com", &m), "deep"); /* the nearest */
    assert_string_equal(m, "*.deep.example.com");
    assert_string_equal(category_of("deep.example.com", &m), "misc");
    assert_string_equal(category_of("*.x.deep.example.com", &m), "deep");
    assert_string_equal(category_of("*.deep.example.com", &m), "deep");
    assert_string_equal(m, "*.deep.example.com");
    assert_string_equal(category_of("EXAMPLE.COM", NULL), "-");
    tg_err bad = {0};
    assert_int_equal(tg_keyring_category_show(kr, "not a host", &doc, &bad), TG_E_INVALID);

    /* the stream, and a stop with an error passed back */
    int n = 0;
    assert_int_equal(tg_keyring_categories_each(kr, count_pairs, &n, NULL), 0);
    assert_int_equal(n, 5);
    n = 0;
    assert_int_equal(tg_keyring_categories_each(kr, stop_at_two, &n, NULL), TG_E_INTERNAL);
    assert_int_equal(n, 2);
    json_t *rows = NULL;
    assert_int_equal(tg_keyring_categories_list(kr, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "category")),
                        "banking");
    json_decref(rows);

    /* refusals name the line and change nothing, the stamp included */
    const char *files[] = {"ok.example a\nonly-one\n",          "ok.example a\nx.example a b\n",
                           "ok.example a\n*.com a\n",           "ok.example a\nx.example a_b\n",
                           "ok.example a\n10.0.0.1 a\n",        "ok.example a\nx.example a\0b\n",
                           "ok.example a\n\n\nbad..example a\n"};
    const char *lines[] = {"line 2", "line 2", "line 2", "line 2", "line 2", "line 2", "line 4"};
    size_t lens[] = {0, 0, 0, 0, 0, 26, 0};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        tg_err why = {0};
        doc = NULL;
        size_t len = lens[k] ? lens[k] : strlen(files[k]);
        assert_int_equal(tg_keyring_categories_import(kr, files[k], len, 1, &doc, &why),
                         TG_E_INVALID);
        if (!strstr(why.msg, lines[k])) fail_msg("'%s' lacks '%s'", why.msg, lines[k]);
        assert_int_equal(tg_keyring_categories_stamp(kr), s1);
    }
    n = 0;
    assert_int_equal(tg_keyring_categories_each(kr, count_pairs, &n, NULL), 0);
    assert_int_equal(n, 5);
    /* a line longer than 4096 bytes */
    char *longline = malloc(5000);
    memset(longline, 'a', 4999);
    longline[4999] = '\0';
    assert_int_equal(tg_keyring_categories_import(kr, longline, 4999, 0, &doc, &bad), TG_E_INVALID);
    free(longline);

    /* --replace replaces; clear empties */
    const char *two = "one.example a\ntwo.example b";
    assert_int_equal(tg_keyring_categories_import(kr, two, strlen(two), 1, &doc, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "domain_count")), 2);
    json_decref(doc);
    assert_int_equal(tg_keyring_categories_clear(kr, &doc, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "removed")), 2);
    json_decref(doc);
    assert_true(tg_keyring_categories_stamp(kr) != s1);
    tg_keyring_close(kr);
    kr = NULL;
}

/* A proxy with a policy: its runtime view merges the default list (unless left out); the
 * policy cannot be deleted while the proxy uses it; names are apart. */
static void runtime_view(void **state)
{
    (void)state;
    assert_int_equal(tg_keyring_open(home, &kr, NULL), 0);
    tg_newcert spec = {.name = "sign",
                       .subject = {.cn = "Sign"},
                       .keyspec = "ec:p256",
                       .days = 30,
                       .days_set = 1,
                       .signing = 1};
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_cert_create(kr, &spec, &doc, NULL), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_ts_create(kr, "ts", NULL, 0, &doc, NULL), 0);
    json_decref(doc);
    tg_policy_opts o = popts();
    const char *doms[] = {"zzz.example", "*.push.apple.com", "aaa.example"};
    add(&o, TG_NEVER_DOMAINS, doms, 3);
    assert_int_equal(tg_keyring_policy_create(kr, "pol", &o, &doc, NULL), 0);
    json_decref(doc);
    tg_proxy_opts p = {.signing = "sign",
                       .truststore = "ts",
                       .listen = "127.0.0.1:5000",
                       .policy = "pol",
                       .block_invalid = TG_UNSET,
                       .block_expired = TG_UNSET,
                       .http2_downgrade = TG_UNSET,
                       .tcp_reset = TG_UNSET,
                       .log = TG_UNSET,
                       .keylog = TG_UNSET};
    tg_err e = {0};
    if (tg_keyring_proxy_create(kr, "client", "web", &p, &doc, &e) != 0) fail_msg("%s", e.msg);
    /* item 6's switches: their defaults */
    assert_string_equal(json_string_value(json_object_get(doc, "policy")), "pol");
    assert_string_equal(json_string_value(json_object_get(doc, "no_sni")), "decrypt");
    assert_string_equal(json_string_value(json_object_get(doc, "ech")), "bypass");
    assert_string_equal(json_string_value(json_object_get(doc, "non_tls")), "bypass");
    assert_int_equal(json_integer_value(json_object_get(doc, "fail_open_secs")), 0);
    assert_true(json_is_false(json_object_get(doc, "keylog")));
    json_decref(doc);

    json_t *defaults = NULL;
    assert_int_equal(tg_keyring_defaults_show(kr, &defaults, NULL), 0);
    size_t ndef = json_array_size(json_object_get(defaults, "domains"));
    tg_proxy_rt *v = NULL;
    size_t n = 0;
    assert_int_equal(tg_keyring_proxies_load(kr, "client", &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_non_null(v[0].policy);
    assert_string_equal(json_string_value(json_object_get(v[0].policy, "name")), "pol");
    json_t *all = json_object_get(v[0].policy, "never_domains");
    /* *.push.apple.com is in both: once */
    assert_int_equal(json_array_size(all), ndef + 2);
    for (size_t i = 1; i < json_array_size(all); i++)
        assert_true(strcmp(json_string_value(json_array_get(all, i - 1)),
                           json_string_value(json_array_get(all, i))) < 0);
    assert_int_equal(json_array_size(json_object_get(v[0].policy, "never_sources")), 0);
    assert_non_null(json_object_get(v[0].policy, "always_sources"));
    assert_non_null(json_object_get(v[0].policy, "never_categories"));
    tg_proxy_rt_free(v, n);
    json_decref(defaults);

    /* without the default list: its own only */
    tg_policy_opts s = popts();
    s.no_defaults = 1;
    assert_int_equal(tg_keyring_policy_set(kr, "pol", &s, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "used_by"), 0)),
                        "web");
    json_decref(doc);
    assert_int_equal(tg_keyring_proxies_load(kr, "client", &v, &n, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(v[0].policy, "never_domains")), 3);
    tg_proxy_rt_free(v, n);

    /* in use; names apart */
    e = (tg_err){0};
    assert_int_equal(tg_keyring_policy_delete(kr, "pol", &e), TG_E_CONFLICT);
    assert_string_equal(e.msg, "policy 'pol' is used by client proxy 'web': change or delete the "
                               "proxy first");
    tg_policy_opts q = popts();
    fails(op_create, "web", &q, TG_E_CONFLICT, "client proxy", NULL);
    tg_proxy_opts p2 = p;
    p2.listen = "127.0.0.1:5001";
    p2.ports = "8443";
    e = (tg_err){0};
    assert_int_equal(tg_keyring_proxy_create(kr, "client", "pol", &p2, &doc, &e), TG_E_CONFLICT);
    assert_non_null(strstr(e.msg, "name of a policy"));
    /* item 6's switches, set and refused */
    tg_proxy_opts t = {.no_policy = 1,
                       .no_sni = "block",
                       .ech = "decrypt",
                       .non_tls = "block",
                       .fail_open_set = 1,
                       .fail_open = 86400,
                       .keylog = 1,
                       .block_invalid = TG_UNSET,
                       .block_expired = TG_UNSET,
                       .http2_downgrade = TG_UNSET,
                       .tcp_reset = TG_UNSET,
                       .log = TG_UNSET};
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &t, &doc, NULL), 0);
    assert_true(json_is_null(json_object_get(doc, "policy")));
    assert_string_equal(json_string_value(json_object_get(doc, "no_sni")), "block");
    assert_string_equal(json_string_value(json_object_get(doc, "ech")), "decrypt");
    assert_string_equal(json_string_value(json_object_get(doc, "non_tls")), "block");
    assert_int_equal(json_integer_value(json_object_get(doc, "fail_open_secs")), 86400);
    assert_true(json_is_true(json_object_get(doc, "keylog")));
    json_decref(doc);
    const long bad_secs[] = {1, 9, 86401, -1};
    for (size_t i = 0; i < sizeof bad_secs / sizeof bad_secs[0]; i++) {
        tg_proxy_opts f = t;
        f.no_policy = 0;
        f.fail_open = bad_secs[i];
        e = (tg_err){0};
        assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &f, &doc, &e), TG_E_INVALID);
        assert_non_null(strstr(e.msg, "fail-open"));
    }
    tg_proxy_opts f = {.non_tls = "decrypt",
                       .block_invalid = TG_UNSET,
                       .block_expired = TG_UNSET,
                       .http2_downgrade = TG_UNSET,
                       .tcp_reset = TG_UNSET,
                       .log = TG_UNSET,
                       .keylog = TG_UNSET};
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &f, &doc, NULL), TG_E_USAGE);
    f.non_tls = NULL;
    f.policy = "pol";
    f.no_policy = 1;
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &f, &doc, NULL), TG_E_USAGE);
    f.no_policy = 0;
    f.policy = "nothing";
    assert_int_equal(tg_keyring_proxy_set(kr, "client", "web", &f, &doc, NULL), TG_E_NOTFOUND);
    assert_int_equal(tg_keyring_policy_delete(kr, "pol", NULL), 0);

    /* a factory reset: no policies, no categories, the built-in list again */
    const char *one = "bank.example finance\n";
    assert_int_equal(tg_keyring_categories_import(kr, one, strlen(one), 0, &doc, NULL), 0);
    json_decref(doc);
    const char *mine = "only.example\n";
    assert_int_equal(tg_keyring_defaults_import(kr, mine, strlen(mine), &doc, NULL), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_policy_create(kr, "gone", &q, &doc, NULL), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_factory_reset(kr, NULL), 0);
    assert_int_equal(tg_keyring_policy_list(kr, &doc, NULL), 0);
    assert_int_equal(json_array_size(doc), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_categories_list(kr, &doc, NULL), 0);
    assert_int_equal(json_array_size(doc), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_categories_stamp(kr), 0);
    assert_int_equal(tg_keyring_defaults_show(kr, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "source")), "built-in");
    assert_int_equal(json_integer_value(json_object_get(doc, "domain_count")), (json_int_t)ndef);
    json_decref(doc);
    tg_keyring_close(kr);
    kr = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(domains),      cmocka_unit_test(matches),
        cmocka_unit_test(categories),   cmocka_unit_test(cidrs),
        cmocka_unit_test(policy_rules), cmocka_unit_test(default_list),
        cmocka_unit_test(category_map), cmocka_unit_test(runtime_view),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
