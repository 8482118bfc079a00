/*
 * trust.c — trust stores (SPEC C4) and the default CA package.
 *
 * A trust store names a set of the store's CA certificates and, optionally, the
 * default CA package: the system's public roots (Debian's ca-certificates bundle),
 * loaded into the store once and shown as one entry. Client proxies verify upstream
 * servers against a trust store (one in use by a proxy cannot be deleted); "tlsgate
 * verify --truststore" does too.
 */
#include "keyring_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TG_SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static int ts_name_check(const char *name, tg_err *err)
{
    int rc = kr_ca_name_check(name, err);
    if (rc == 0 && strlen(name) > TG_TRUSTSTORE_NAME_MAX)
        rc = tg_err_set(err, TG_E_INVALID, "a trust store name has at most %d characters",
                        TG_TRUSTSTORE_NAME_MAX);
    return rc;
}

int kr_ts_get(tg_keyring *kr, const char *name, tg_store_ts *t, tg_err *err)
{
    int rc = tg_store_ts_by_name(kr->st, name, t, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no trust store is named '%s' (the list of trust stores shows them)",
                          name);
    return rc;
}

/* Loads the system bundle into default_cas (inside the caller's transaction). */
static int load_defaults(tg_keyring *kr, size_t *count, tg_err *err)
{
    const char *path = getenv("TLSGATE_CA_BUNDLE");
    if (path == NULL || *path == '\0') path = TG_SYSTEM_CA_BUNDLE;
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = tg_file_read(path, TG_FILE_MAX, &data, &len, err);
    if (rc != 0)
        return tg_err_set(err, rc,
                          "the default CA package %s cannot be read (is ca-certificates "
                          "installed?)",
                          path);
    tg_bundle b;
    rc = tg_bundle_decode(data, len, path, NULL, &b, err);
    free(data);
    if (rc != 0) return rc;
    if ((rc = tg_store_defcas_clear(kr->st, err)) != 0) goto end;
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < b.ncerts; i++) {
        tg_certinfo info;
        unsigned char *der = NULL;
        size_t dlen = 0;
        if (tg_cert_info(b.certs[i], &info, NULL) != 0) continue; /* skip what we cannot read */
        if (info.is_ca && (rc = tg_cert_to_der(b.certs[i], &der, &dlen, err)) == 0 &&
            (rc = tg_store_defcas_add(kr->st, info.sha256, info.subject, der, dlen, err)) == 0)
            n++;
        free(der);
        tg_certinfo_clear(&info);
    }
    if (rc == 0 && n == 0) rc = tg_err_set(err, TG_E_INVALID, "%s holds no CA certificate", path);
    if (rc == 0) {
        char v[32];
        snprintf(v, sizeof(v), "%lld", (long long)time(NULL));
        rc = tg_store_setting_set(kr->st, "default_cas_loaded", v, err);
    }
    if (rc == 0) rc = tg_store_setting_set(kr->st, "default_cas_source", path, err);
    *count = n;
end:
    tg_bundle_clear(&b);
    return rc;
}

int tg_keyring_ts_create(tg_keyring *kr, const char *name, const char *description,
                         int include_defaults, json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = ts_name_check(name, err);
    if (rc != 0) return rc;
    if (description != NULL) {
        if (strlen(description) > TG_TRUSTSTORE_DESC_MAX)
            return tg_err_set(err, TG_E_INVALID, "the description has at most %d characters",
                              TG_TRUSTSTORE_DESC_MAX);
        char why[160];
        if (kr_text_problem(description, why, sizeof(why)) != NULL)
            return tg_err_set(err, TG_E_INVALID, "the description %s", why);
    }
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_ts t = {.name = (char *)name,
                     .description = (char *)(description ? description : ""),
                     .include_defaults = include_defaults};
    tg_store_ts have;
    size_t n;
    if (tg_store_ts_by_name(kr->st, name, &have, NULL) == 0) {
        tg_store_ts_clear(&have);
        rc = tg_err_set(err, TG_E_CONFLICT, "a trust store named '%s' already exists", name);
    } else if (include_defaults && tg_store_defcas_count(kr->st) == 0) {
        rc = load_defaults(kr, &n, err);
    }
    if (rc == 0) rc = tg_store_ts_add(kr->st, &t, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_ts_show(kr, name, out, err);
}

int tg_keyring_ts_change(tg_keyring *kr, const char *name, const char *const *cas, size_t n,
                         int add, json_t **out, tg_err *err)
{
    *out = NULL;
    if (n == 0) return tg_err_set(err, TG_E_USAGE, "name at least one CA certificate");
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_ts t = {0};
    if ((rc = kr_ts_get(kr, name, &t, err)) != 0) goto end;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tg_store_cert c;
        if ((rc = tg_keyring_ca_check(kr, cas[i], err)) != 0 ||
            (rc = tg_store_cert_by_name(kr->st, cas[i], &c, err)) != 0)
            break;
        rc = add ? tg_store_ts_add_ca(kr->st, t.id, c.id, err)
                 : tg_store_ts_remove_ca(kr->st, t.id, c.id, err);
        tg_store_cert_clear(&c);
    }
end:
    tg_store_ts_clear(&t);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_ts_show(kr, name, out, err);
}

typedef struct countctx {
    json_t *cas;
    size_t n;
} countctx;

static int add_ca(const tg_store_cert *c, void *arg)
{
    countctx *cc = arg;
    cc->n++;
    if (cc->cas != NULL) {
        json_t *e = json_pack("{s:o, s:o}", "name", kr_json_text(c->name), "subject",
                              kr_json_text(c->subject));
        if (e != NULL && kr_json_time(e, "not_after", c->not_after) != 0) {
            json_decref(e);
            e = NULL;
        }
        json_array_append_new(cc->cas, e);
    }
    return 0;
}

/* The default package is counted (default_ca_count), not listed: its members are no rows
 * of ours, and a placeholder entry would not be a CA certificate (docs/json.md). */
static json_t *ts_doc(tg_keyring *kr, const tg_store_ts *t, int detailed)
{
    countctx cc = {detailed ? json_array() : NULL, 0};
    tg_store_ts_cas_each(kr->st, t->id, add_ca, &cc, NULL);
    long long ndef = t->include_defaults ? tg_store_defcas_count(kr->st) : 0;
    json_t *doc =
        json_pack("{s:o, s:o, s:b, s:I, s:I}", "name", kr_json_text(t->name), "description",
                  kr_json_opt(t->description), "include_defaults", t->include_defaults, "ca_count",
                  (json_int_t)cc.n, "default_ca_count", (json_int_t)ndef);
    if (doc != NULL && kr_json_time(doc, "created", t->created) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    if (doc && detailed) {
        json_object_set_new(doc, "entries", cc.cas);
        cc.cas = NULL;
    }
    json_decref(cc.cas);
    return doc;
}

/* A row that cannot be built stops the list (a[2] set): a list never drops a row. */
static int add_ts(const tg_store_ts *t, void *arg)
{
    void **a = arg;
    if (json_array_append_new(a[1], ts_doc(a[0], t, 0)) == 0) return 0;
    a[2] = a;
    return 1;
}

int tg_keyring_ts_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = json_array();
    void *a[3] = {kr, *out, NULL};
    int rc = tg_store_ts_each(kr->st, add_ts, a, err);
    if (rc == 0 && a[2] != NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_ts_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    tg_store_ts t;
    int rc = kr_ts_get(kr, name, &t, err);
    if (rc != 0) return rc;
    *out = ts_doc(kr, &t, 1);
    tg_store_ts_clear(&t);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_ts_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_ts t = {0};
    tg_store_proxy p = {0};
    if ((rc = kr_ts_get(kr, name, &t, err)) == 0 &&
        tg_store_proxy_by_truststore(kr->st, t.id, &p, NULL) == 0)
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "trust store '%s' is used by %s proxy '%s': change or delete the proxy "
                        "first",
                        name, p.kind, p.name);
    if (rc == 0) rc = tg_store_ts_delete(kr->st, t.id, err);
    tg_store_proxy_clear(&p);
    tg_store_ts_clear(&t);
    return kr_finish(kr, rc, err);
}

int tg_keyring_ts_update_defaults(tg_keyring *kr, json_t **out, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    size_t n = 0, changed = 0;
    rc = load_defaults(kr, &n, err);
    if (rc == 0) rc = kr_refresh_tx(kr, &changed, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    char src[512] = "";
    tg_store_setting_get(kr->st, "default_cas_source", src, sizeof(src), NULL);
    /* the names of the same counts in the trust store and refresh documents */
    *out = json_pack("{s:s, s:I, s:I}", "source", src, "default_ca_count", (json_int_t)n, "changed",
                     (json_int_t)changed);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

typedef struct anchorctx {
    tg_cert **v;
    size_t n;
    int failed;
} anchorctx;

static int push_anchor(anchorctx *a, const unsigned char *der, size_t len)
{
    tg_cert *c = NULL;
    if (tg_cert_from_der(der, len, &c, NULL) != 0) return 0;
    tg_cert **v = realloc(a->v, (a->n + 1) * sizeof(*v));
    if (v == NULL) {
        tg_cert_free(c);
        a->failed = 1;
        return 1;
    }
    a->v = v;
    v[a->n++] = c;
    return 0;
}

static int anchor_ca(const tg_store_cert *c, void *arg)
{
    return push_anchor(arg, c->der, c->derlen);
}

static int anchor_default(int64_t id, const unsigned char *der, size_t len, void *arg)
{
    (void)id;
    return push_anchor(arg, der, len);
}

int tg_keyring_ts_anchors(tg_keyring *kr, const char *name, tg_cert ***anchors, size_t *n,
                          tg_err *err)
{
    return kr_ts_anchors(kr, name, 0, anchors, n, err);
}

int kr_ts_anchors(tg_keyring *kr, const char *name, int allow_empty, tg_cert ***anchors, size_t *n,
                  tg_err *err)
{
    *anchors = NULL;
    *n = 0;
    tg_store_ts t;
    int rc = kr_ts_get(kr, name, &t, err);
    if (rc != 0) return rc;
    anchorctx a = {0};
    rc = tg_store_ts_cas_each(kr->st, t.id, anchor_ca, &a, err);
    if (rc == 0 && t.include_defaults)
        rc = tg_store_defcas_each(kr->st, NULL, anchor_default, &a, err);
    tg_store_ts_clear(&t);
    if (rc == 0 && a.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && a.n == 0 && !allow_empty)
        rc = tg_err_set(err, TG_E_INVALID, "the trust store '%s' holds no CA certificate", name);
    if (rc != 0) {
        kr_chain_free(a.v, a.n);
        return rc;
    }
    *anchors = a.v;
    *n = a.n;
    return 0;
}
