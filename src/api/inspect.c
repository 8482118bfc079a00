/*
 * inspect.c — the inspection configuration through the API (docs/api.md): client and server
 * proxies, decryption policies, the default never-decrypt list and the domain-to-category map. Each
 * handler calls the keyring function the CLI command calls (src/cli/cmd_proxy.c,
 * cmd_policy.c) with JSON members named as the CLI's options ('-' as '_'); files arrive as
 * uploads (upload.c) and leave as the file's bytes. No rule of its own: what the keyring
 * refuses, it refuses with the CLI's sentence.
 */
#include "api_int.h"
#include "../proxy/proxy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND "client"

/* ---- the members both kinds read alike ---- */

enum { CLIENT = 1, SERVER = 2 };

/* A proxy's text members and switches, for the kinds that have them (the other members,
 * numbers and lists, are each kind's own below). */
static int members_of(api_req *r, int kind, tg_proxy_opts *o)
{
    static const struct {
        const char *name;
        size_t off;
        int kinds;
    } strs[] = {
        {"description", offsetof(tg_proxy_opts, description), CLIENT | SERVER},
        {"signing", offsetof(tg_proxy_opts, signing), CLIENT},
        {"truststore", offsetof(tg_proxy_opts, truststore), CLIENT | SERVER},
        {"listen", offsetof(tg_proxy_opts, listen), CLIENT | SERVER},
        {"upstream", offsetof(tg_proxy_opts, upstream), SERVER},
        {"mode", offsetof(tg_proxy_opts, mode), CLIENT | SERVER},
        {"ports", offsetof(tg_proxy_opts, ports), CLIENT | SERVER},
        {"service", offsetof(tg_proxy_opts, service), CLIENT | SERVER},
        {"protocols", offsetof(tg_proxy_opts, protocols), CLIENT | SERVER},
        {"ciphers", offsetof(tg_proxy_opts, ciphers), CLIENT | SERVER},
        {"over_max", offsetof(tg_proxy_opts, over_max), CLIENT},
        {"policy", offsetof(tg_proxy_opts, policy), CLIENT},
        {"no_sni", offsetof(tg_proxy_opts, no_sni), CLIENT},
        {"ech", offsetof(tg_proxy_opts, ech), CLIENT},
        {"non_tls", offsetof(tg_proxy_opts, non_tls), CLIENT},
    };
    static const struct {
        const char *name;
        size_t off;
        int kinds;
    } switches[] = {
        {"block_invalid", offsetof(tg_proxy_opts, block_invalid), CLIENT},
        {"block_expired", offsetof(tg_proxy_opts, block_expired), CLIENT},
        {"http2_downgrade", offsetof(tg_proxy_opts, http2_downgrade), CLIENT | SERVER},
        {"tcp_reset", offsetof(tg_proxy_opts, tcp_reset), CLIENT | SERVER},
        {"log", offsetof(tg_proxy_opts, log), CLIENT | SERVER},
        {"keylog", offsetof(tg_proxy_opts, keylog), CLIENT},
        {"no_ciphers", offsetof(tg_proxy_opts, no_ciphers), CLIENT | SERVER},
        {"no_policy", offsetof(tg_proxy_opts, no_policy), CLIENT},
        {"no_truststore", offsetof(tg_proxy_opts, no_truststore), SERVER},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strs[i].kinds & kind)
            rc = api_member_str(r, strs[i].name, 0, (const char **)((char *)o + strs[i].off));
    for (size_t i = 0; rc == 0 && i < sizeof(switches) / sizeof(switches[0]); i++)
        if (switches[i].kinds & kind)
            rc = api_member_bool(r, switches[i].name, (int *)((char *)o + switches[i].off));
    return rc;
}

/* ---- client proxies ---- */

/* The members of create and set: the CLI's O_PROXY options and --description; switches
 * not given stay TG_UNSET, numbers not given stay unset (set leaves them as they are). */
static int proxy_opts_of(api_req *r, int create, tg_proxy_opts *o)
{
    static const char *const allowed[] = {
        "name",         "description", "signing",   "truststore",    "listen",
        "mode",         "ports",       "service",   "block_invalid", "block_expired",
        "min_key_bits", "protocols",   "ciphers",   "no_ciphers",    "http2_downgrade",
        "max_conns",    "over_max",    "tcp_reset", "log",           "policy",
        "no_policy",    "no_sni",      "ech",       "non_tls",       "fail_open",
        "keylog",       NULL};
    tg_proxy_opts_init(o);
    /* set: the name is the path's */
    int rc = api_members_only(r, create ? allowed : allowed + 1);
    if (rc == 0) rc = members_of(r, CLIENT, o);
    int v = 0;
    if (rc == 0 && (rc = api_member_int(r, "min_key_bits", &v, &o->min_key_bits_set)) == 0)
        o->min_key_bits = v;
    if (rc == 0 && (rc = api_member_int(r, "max_conns", &v, &o->max_conns_set)) == 0)
        o->max_conns = v;
    if (rc == 0 && (rc = api_member_int(r, "fail_open", &v, &o->fail_open_set)) == 0)
        o->fail_open = v;
    return rc;
}

/* Whether the request's user may change kind/name as far as its group goes (README
 * "Users and audit", "Groups"): a refusal is a 403 naming the group. */
static int may_change(api_req *r, const char *kind, const char *name)
{
    int rc = tg_keyring_may_change(r->kr, &r->who, kind, name, &r->err);
    if (rc == TG_E_CONFLICT) {
        r->status = 403;
        r->errname = "forbidden";
    }
    return rc;
}

/* What both kinds answer alike: the list, one proxy, its deletion. */
static int kind_list(api_req *r, const char *kind)
{
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_list(r->kr, kind, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int kind_get(api_req *r, const char *kind)
{
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_show(r->kr, kind, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int kind_delete(api_req *r, const char *kind)
{
    int rc = may_change(r, "proxy", r->params[0]);
    if (rc == 0) rc = tg_keyring_proxy_delete(r->kr, kind, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

int api_proxies_list(api_req *r)
{
    return kind_list(r, KIND);
}

int api_proxy_create(api_req *r)
{
    tg_proxy_opts o;
    const char *name = NULL;
    int rc = proxy_opts_of(r, 1, &o);
    if (rc == 0) rc = api_member_str(r, "name", 1, &name);
    if (rc == 0) rc = may_change(r, "proxy", name);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_proxy_create(r->kr, KIND, name, &o, &doc, &r->err);
    return api_done(r, rc, 201, doc);
}

int api_proxy_get(api_req *r)
{
    return kind_get(r, KIND);
}

int api_proxy_set(api_req *r)
{
    tg_proxy_opts o;
    int rc = may_change(r, "proxy", r->params[0]);
    if (rc == 0) rc = proxy_opts_of(r, 0, &o);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_proxy_set(r->kr, KIND, r->params[0], &o, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_proxy_delete(api_req *r)
{
    return kind_delete(r, KIND);
}

/* ---- server proxies (issue 12) ---- */

/* A server proxy's lists as the CLI's options name them (one value at a time): the list
 * whole (create, or set replacing it), add_… and remove_… (set). */
static const char *const srv_lists[] = {"cert", "dest", "source_except"};

typedef struct srvproxy_in {
    tg_proxy_opts o;
    const char **room[9];
} srvproxy_in;

static void srvproxy_in_free(srvproxy_in *p)
{
    for (int k = 0; k < 9; k++)
        free(p->room[k]);
}

/* The members of create and set: the CLI's O_SPROXY (and set's O_SPROXYSET) options and
 * --description; switches not given stay TG_UNSET. */
static int srvproxy_opts_of(api_req *r, int create, srvproxy_in *p)
{
    static const char *const create_allowed[] = {
        "name",  "description",   "truststore",      "listen",    "upstream",   "mode",
        "ports", "service",       "protocols",       "ciphers",   "no_ciphers", "cert",
        "dest",  "source_except", "http2_downgrade", "tcp_reset", "log",        NULL};
    static const char *const set_allowed[] = {"description",
                                              "truststore",
                                              "no_truststore",
                                              "listen",
                                              "upstream",
                                              "mode",
                                              "ports",
                                              "service",
                                              "protocols",
                                              "ciphers",
                                              "no_ciphers",
                                              "cert",
                                              "add_cert",
                                              "remove_cert",
                                              "dest",
                                              "add_dest",
                                              "remove_dest",
                                              "source_except",
                                              "add_source_except",
                                              "remove_source_except",
                                              "http2_downgrade",
                                              "tcp_reset",
                                              "log",
                                              NULL};
    memset(p, 0, sizeof(*p));
    tg_proxy_opts *o = &p->o;
    tg_proxy_opts_init(o);
    int rc = api_members_only(r, create ? create_allowed : set_allowed);
    if (rc == 0) rc = members_of(r, SERVER, o);
    tg_textlist *lists[9] = {&o->certs,         &o->add_certs,         &o->remove_certs,
                             &o->dest,          &o->add_dest,          &o->remove_dest,
                             &o->source_except, &o->add_source_except, &o->remove_source_except};
    static const char *const prefix[] = {"", "add_", "remove_"};
    for (int k = 0; rc == 0 && k < 9; k++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s", prefix[k % 3], srv_lists[k / 3]);
        rc = api_member_strs(r, name, &p->room[k], &lists[k]->n);
        lists[k]->v = p->room[k];
    }
    return rc;
}

int api_srvproxies_list(api_req *r)
{
    return kind_list(r, "server");
}

int api_srvproxy_create(api_req *r)
{
    srvproxy_in p;
    const char *name = NULL;
    int rc = srvproxy_opts_of(r, 1, &p);
    if (rc == 0) rc = api_member_str(r, "name", 1, &name);
    if (rc == 0) rc = may_change(r, "proxy", name);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_proxy_create(r->kr, "server", name, &p.o, &doc, &r->err);
    srvproxy_in_free(&p);
    return api_done(r, rc, 201, doc);
}

int api_srvproxy_get(api_req *r)
{
    return kind_get(r, "server");
}

int api_srvproxy_set(api_req *r)
{
    srvproxy_in p = {0};
    int rc = may_change(r, "proxy", r->params[0]);
    if (rc == 0) rc = srvproxy_opts_of(r, 0, &p);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_proxy_set(r->kr, "server", r->params[0], &p.o, &doc, &r->err);
    srvproxy_in_free(&p);
    return api_done(r, rc, 200, doc);
}

int api_srvproxy_delete(api_req *r)
{
    return kind_delete(r, "server");
}

/* proxy stats [NAME]: what the running serve wrote, not the store's (?name=). */
int api_proxy_stats(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_proxy_stats_read(r->home, api_query(r, "name"), &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* ---- decryption policies ---- */

static const char *const list_names[] = TG_POLICY_LIST_NAMES;

/* The policy's lists as the CLI's options name them: never_domain (create), add_never_domain
 * and remove_never_domain (set), each a list of strings. */
static void list_member(char *buf, size_t size, const char *prefix, int k)
{
    /* "never_domains" -> "never_domain": the option names one value at a time */
    size_t n = strlen(list_names[k]) - 1;
    snprintf(buf, size, "%s%.*s", prefix, (int)n, list_names[k]);
}

typedef struct policy_in {
    tg_policy_opts o;
    const char **lists[2][TG_POLICY_LISTS];
} policy_in;

static void policy_in_free(policy_in *p)
{
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < TG_POLICY_LISTS; k++)
            free(p->lists[w][k]);
}

static int policy_opts_of(api_req *r, int create, policy_in *p)
{
    static const char *const create_allowed[] = {
        "name",           "description",  "no_defaults",   "never_domain",
        "never_category", "never_source", "always_source", NULL};
    static const char *const set_allowed[] = {"description",
                                              "no_defaults",
                                              "add_never_domain",
                                              "add_never_category",
                                              "add_never_source",
                                              "add_always_source",
                                              "remove_never_domain",
                                              "remove_never_category",
                                              "remove_never_source",
                                              "remove_always_source",
                                              NULL};
    memset(p, 0, sizeof(*p));
    p->o.no_defaults = TG_UNSET;
    int rc = api_members_only(r, create ? create_allowed : set_allowed);
    if (rc == 0) rc = api_member_str(r, "description", 0, &p->o.description);
    if (rc == 0) rc = api_member_bool(r, "no_defaults", &p->o.no_defaults);
    for (int w = 0; rc == 0 && w < (create ? 1 : 2); w++)
        for (int k = 0; rc == 0 && k < TG_POLICY_LISTS; k++) {
            char name[64];
            list_member(name, sizeof(name), create ? "" : w ? "remove_" : "add_", k);
            tg_textlist *l = &(w ? p->o.remove : p->o.add)[k];
            rc = api_member_strs(r, name, &p->lists[w][k], &l->n);
            l->v = p->lists[w][k];
        }
    return rc;
}

int api_policies_list(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_policy_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_policy_create(api_req *r)
{
    policy_in p;
    const char *name = NULL;
    int rc = policy_opts_of(r, 1, &p);
    if (rc == 0) rc = api_member_str(r, "name", 1, &name);
    if (rc == 0) rc = may_change(r, "policy", name);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_policy_create(r->kr, name, &p.o, &doc, &r->err);
    policy_in_free(&p);
    return api_done(r, rc, 201, doc);
}

int api_policy_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_policy_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_policy_set(api_req *r)
{
    policy_in p;
    int rc = policy_opts_of(r, 0, &p);
    if (rc == 0) rc = may_change(r, "policy", r->params[0]);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_policy_set(r->kr, r->params[0], &p.o, &doc, &r->err);
    policy_in_free(&p);
    return api_done(r, rc, 200, doc);
}

int api_policy_delete(api_req *r)
{
    int rc = may_change(r, "policy", r->params[0]);
    if (rc == 0) rc = tg_keyring_policy_delete(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

/* An export's text as the answer's bytes (name NULL: the default list). */
static int send_text(api_req *r, const char *type, const char *name, const char *ext, char *text,
                     size_t len)
{
    char *disp = api_disposition(name, ext);
    api_send_bytes(r, 200, type, disp, (unsigned char *)text, len);
    free(disp);
    return 0;
}

int api_policy_export(api_req *r)
{
    char *text = NULL;
    size_t len = 0;
    int rc = tg_keyring_policy_export(r->kr, r->params[0], &text, &len, &r->err);
    if (rc != 0) return rc;
    return send_text(r, "application/json", r->params[0], ".json", text, len);
}

/* One uploaded file (the part 'file', or the raw body) and the form's other members; f is
 * always to be freed (api_form_read leaves it empty when it fails). */
static int one_file(api_req *r, api_form *f, const char *const *texts, const char *what,
                    tg_input **in)
{
    static const char *const files[] = {"file", NULL};
    int rc = api_form_read(r, f, files, texts);
    if (rc != 0) return rc;
    size_t n = 0;
    rc = api_form_inputs(r, f, "file", in, &n);
    if (rc == 0 && n != 1)
        rc = api_fail(r, TG_E_USAGE, "file", "%s takes one file (a part 'file'), not %zu", what, n);
    return rc;
}

/* The name a policy file gives itself into buf (NULL when it gives none: the import
 * refuses it). */
static const char *import_name(const tg_input *in, char *buf, size_t size)
{
    json_t *doc = json_loadb((const char *)in->data, in->len, 0, NULL);
    const char *s = json_string_value(json_object_get(doc, "name"));
    if (s) snprintf(buf, size, "%s", s);
    json_decref(doc);
    return s ? buf : NULL;
}

/* policy import FILE [--name NAME] [--replace] */
int api_policy_import(api_req *r)
{
    static const char *const texts[] = {"name", "replace", NULL};
    api_form f;
    tg_input *in = NULL;
    const char *name = NULL;
    int replace = 0;
    int rc = one_file(r, &f, texts, "a policy import", &in);
    if (rc == 0) rc = api_form_text(r, &f, "name", &name);
    if (rc == 0) rc = api_form_bool(r, &f, "replace", &replace);
    if (rc == 0) {
        /* the audit row, as the CLI's: the file as the object, --name in the detail */
        r->object = tg_strdup(in[0].label);
        if (name) r->detail = json_pack("{s:s}", "name", name);
    }
    char named[TG_NAME_MAX + 1];
    if (rc == 0)
        rc = may_change(r, "policy", name ? name : import_name(&in[0], named, sizeof(named)));
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_policy_import(r->kr, (const char *)in[0].data, in[0].len, name, replace,
                                      &doc, &r->err);
    free(in);
    api_form_free(&f);
    return api_done(r, rc, 201, doc);
}

/* ---- the default never-decrypt list ---- */

int api_defaults_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_defaults_show(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_defaults_export(api_req *r)
{
    char *text = NULL;
    size_t len = 0;
    int rc = tg_keyring_defaults_export(r->kr, &text, &len, &r->err);
    if (rc != 0) return rc;
    return send_text(r, "text/plain; charset=utf-8", "never-decrypt-defaults", ".txt", text, len);
}

int api_defaults_import(api_req *r)
{
    api_form f;
    tg_input *in = NULL;
    int rc = one_file(r, &f, NULL, "an import of the default list", &in);
    if (rc == 0) r->object = tg_strdup(in[0].label);
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_defaults_import(r->kr, (const char *)in[0].data, in[0].len, &doc, &r->err);
    free(in);
    api_form_free(&f);
    return api_done(r, rc, 200, doc);
}

int api_defaults_reset(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_defaults_reset(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* ---- the category map ---- */

int api_categories_list(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_categories_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_category_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_category_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* category import FILE [--replace] */
int api_categories_import(api_req *r)
{
    static const char *const texts[] = {"replace", NULL};
    api_form f;
    tg_input *in = NULL;
    int replace = 0;
    int rc = one_file(r, &f, texts, "a category import", &in);
    if (rc == 0) rc = api_form_bool(r, &f, "replace", &replace);
    if (rc == 0) r->object = tg_strdup(in[0].label);
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_categories_import(r->kr, (const char *)in[0].data, in[0].len, replace, &doc,
                                          &r->err);
    free(in);
    api_form_free(&f);
    return api_done(r, rc, 200, doc);
}

int api_categories_clear(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_categories_clear(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}
