/*
 * proxy_load.c — the proxies as the engine runs them: each one's document, its signing
 * CA with key and stored chain, and its trust store's anchors (tg_keyring_proxies_load).
 *
 * Like serve's load (serve.c) it builds no chain and checks no signature: the signing
 * CA's chain is the one stored with its status (certs.chain_ids). A proxy with a
 * decryption policy gets the policy's lists, the default never-decrypt list merged in
 * unless the policy leaves it out (read once per call). All or nothing: a
 * proxy that cannot be loaded fails the whole call with a sentence naming it, so that
 * the engine keeps the configuration it runs rather than half of a new one. A server
 * proxy (issue 12) gets its certificates as serve loads them (tg_keyring_serve_load:
 * certificate, key, stored chain), in its order; one whose key is missing or broken is
 * left out and named in `unusable` rather than failing the proxy: the others still serve.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct loadctx {
    tg_keyring *kr;
    tg_proxy_rt *v;
    int64_t *pid;     /* per entry: the proxy's id */
    int64_t *signing; /* per entry: the signing certificate's id */
    int64_t *policy;  /* per entry: the policy's id, 0 for none */
    char **ts;        /* per entry: the trust store's name */
    size_t n, cap;
    tg_err *err;
    int rc;
} loadctx;

void tg_proxy_rt_free(tg_proxy_rt *v, size_t n)
{
    if (v == NULL) return;
    for (size_t i = 0; i < n; i++) {
        json_decref(v[i].conf);
        tg_cert_free(v[i].signing);
        tg_key_free(v[i].signing_key);
        kr_chain_free(v[i].chain, v[i].nchain);
        kr_chain_free(v[i].anchors, v[i].nanchors);
        json_decref(v[i].policy);
        kr_chain_free(v[i].copies, v[i].ncopies);
        for (size_t k = 0; k < v[i].ncerts; k++)
            tg_served_clear(&v[i].certs[k]);
        free(v[i].certs);
        json_decref(v[i].unusable);
    }
    free(v);
}

static int grow(loadctx *l)
{
    if (l->n < l->cap) return 0;
    size_t cap = l->cap ? l->cap * 2 : 8;
    tg_proxy_rt *v = realloc(l->v, cap * sizeof(*v));
    if (v != NULL) l->v = v;
    int64_t *s = realloc(l->signing, cap * sizeof(*s));
    if (s != NULL) l->signing = s;
    char **t = realloc(l->ts, cap * sizeof(*t));
    if (t != NULL) l->ts = t;
    int64_t *y = realloc(l->policy, cap * sizeof(*y));
    if (y != NULL) l->policy = y;
    int64_t *d = realloc(l->pid, cap * sizeof(*d));
    if (d != NULL) l->pid = d;
    if (v == NULL || s == NULL || t == NULL || y == NULL || d == NULL) return TG_E_INTERNAL;
    l->cap = cap;
    return 0;
}

/* Collects the documents and references; the certificates and keys are loaded after the
 * listing, one proxy at a time. */
static int collect(const tg_store_proxy *p, void *arg)
{
    loadctx *l = arg;
    if (grow(l) != 0) {
        l->rc = tg_err_set(l->err, TG_E_INTERNAL, "out of memory");
        return 1;
    }
    tg_proxy_rt *r = &l->v[l->n];
    memset(r, 0, sizeof(*r));
    l->signing[l->n] = p->signing_cert_id;
    l->policy[l->n] = p->policy_id;
    l->pid[l->n] = p->id;
    l->ts[l->n] = p->truststore_name ? tg_strdup(p->truststore_name) : NULL;
    l->n++;
    if (p->truststore_name != NULL && l->ts[l->n - 1] == NULL)
        l->rc = tg_err_set(l->err, TG_E_INTERNAL, "out of memory");
    else if (strcmp(p->kind, "server") == 0)
        l->rc = kr_proxy_doc(l->kr, p, 0, &r->conf, l->err); /* its trust store is optional */
    else if (p->signing_cert_id == 0 || p->truststore_name == NULL)
        l->rc = tg_err_fset(l->err, TG_E_STORE, "signing",
                            "%s proxy '%s' has no signing certificate or no trust store in the "
                            "store; give it both",
                            p->kind, p->name);
    else
        l->rc = kr_proxy_doc(l->kr, p, 0, &r->conf, l->err);
    return l->rc != 0;
}

/* The rollover copies of a signing CA: same subject, same key, another row. */
typedef struct copyctx {
    int64_t id;
    unsigned char spki[32];
    tg_store_cert rows[TG_PROXY_CA_COPIES];
    size_t n;
} copyctx;

static int collect_copy(const tg_store_cert *c, void *arg)
{
    copyctx *x = arg;
    if (c->id == x->id || memcmp(c->spki_sha256, x->spki, 32) != 0) return 0;
    /* keep the newest TG_PROXY_CA_COPIES by notAfter */
    size_t at = x->n;
    if (x->n == TG_PROXY_CA_COPIES) {
        if (x->rows[x->n - 1].not_after >= c->not_after) return 0;
        at = --x->n;
        free(x->rows[at].der);
    }
    while (at > 0 && x->rows[at - 1].not_after < c->not_after) {
        x->rows[at] = x->rows[at - 1];
        at--;
    }
    memset(&x->rows[at], 0, sizeof(x->rows[at]));
    x->rows[at].not_after = c->not_after;
    if ((x->rows[at].der = malloc(c->derlen)) != NULL) {
        memcpy(x->rows[at].der, c->der, c->derlen);
        x->rows[at].derlen = c->derlen;
    }
    x->n++;
    return 0;
}

static int load_copies(tg_keyring *kr, tg_proxy_rt *r, int64_t signing, tg_err *err)
{
    tg_store_cert row = {0};
    copyctx x = {.id = signing};
    int rc = tg_store_cert_get(kr->st, signing, &row, err);
    if (rc == 0) {
        memcpy(x.spki, row.spki_sha256, 32);
        rc = tg_store_cert_each_subject(kr->st, row.subject, collect_copy, &x, err);
    }
    if (rc == 0 && x.n > 0 && (r->copies = calloc(x.n, sizeof(*r->copies))) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; rc == 0 && i < x.n; i++) {
        tg_err skip = {0}; /* a copy that does not decode is left out, not fatal */
        if (x.rows[i].der != NULL &&
            tg_cert_from_der(x.rows[i].der, x.rows[i].derlen, &r->copies[r->ncopies], &skip) == 0)
            r->ncopies++;
    }
    for (size_t i = 0; i < x.n; i++)
        free(x.rows[i].der);
    tg_store_cert_clear(&row);
    return rc;
}

/* The signing CA, its key and its stored chain; the trust store's anchors. */
static int load_one(tg_keyring *kr, tg_proxy_rt *r, int64_t signing, const char *ts, tg_err *err)
{
    tg_served s;
    int rc = tg_keyring_serve_load(kr, signing, &s, err);
    if (rc != 0) return rc;
    r->signing = s.cert;
    r->signing_key = s.key;
    s.cert = NULL;
    s.key = NULL;
    if (s.nchain > 0 && (r->chain = calloc(s.nchain, sizeof(*r->chain))) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; rc == 0 && i < s.nchain; i++) {
        rc = tg_cert_from_der(s.chain[i].der, s.chain[i].derlen, &r->chain[i], err);
        if (rc == 0) r->nchain++;
    }
    tg_served_clear(&s);
    if (rc == 0) rc = kr_ts_anchors(kr, ts, 1, &r->anchors, &r->nanchors, err);
    if (rc == 0) rc = load_copies(kr, r, signing, err);
    return rc;
}

/* A server proxy's certificates, each as serve loads it; the trust store's anchors. */
static int load_server(tg_keyring *kr, tg_proxy_rt *r, int64_t pid, const char *ts, tg_err *err)
{
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = tg_store_proxy_certs_get(kr->st, pid, &ids, &n, err);
    if (rc == 0 && n > 0 && (r->certs = calloc(n, sizeof(*r->certs))) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && (r->unusable = json_array()) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tg_err why = {0};
        tg_store_cert c;
        if ((rc = tg_store_cert_get(kr->st, ids[i], &c, err)) != 0) break;
        /* the row's facts here; the unseal is serve_load's own (a key that does not open
         * fails it, and is "broken") */
        const char *state = kr_key_row_state(kr, &c);
        if (strcmp(state, "ok") == 0 &&
            tg_keyring_serve_load(kr, ids[i], &r->certs[r->ncerts], &why) == 0)
            r->ncerts++;
        else if (json_array_append_new(r->unusable,
                                       json_pack("{s:o, s:s}", "name", kr_json_text(c.name), "key",
                                                 strcmp(state, "ok") == 0 ? "broken" : state)) != 0)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        tg_store_cert_clear(&c);
    }
    free(ids);
    if (rc == 0 && ts != NULL) rc = kr_ts_anchors(kr, ts, 1, &r->anchors, &r->nanchors, err);
    return rc;
}

int tg_keyring_proxies_load(tg_keyring *kr, const char *kind, tg_proxy_rt **out, size_t *n,
                            tg_err *err)
{
    *out = NULL;
    *n = 0;
    if (kind == NULL || (strcmp(kind, "client") != 0 && strcmp(kind, "server") != 0))
        return tg_err_set(err, TG_E_USAGE, "unknown kind of proxy '%s'; use client or server",
                          kind ? kind : "");
    loadctx l = {.kr = kr, .err = err};
    json_t *defaults = NULL;
    int rc = tg_store_proxy_each(kr->st, kind, collect, &l, err);
    if (rc == 0) rc = l.rc;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        tg_err why = {0};
        rc = strcmp(kind, "server") == 0 ? load_server(kr, &l.v[i], l.pid[i], l.ts[i], &why)
                                         : load_one(kr, &l.v[i], l.signing[i], l.ts[i], &why);
        if (rc == 0 && l.policy[i] != 0 && defaults == NULL)
            rc = kr_defaults_array(kr, &defaults, &why);
        if (rc == 0 && l.policy[i] != 0)
            rc = kr_policy_rt(kr, l.policy[i], defaults, &l.v[i].policy, &why);
        if (rc != 0)
            tg_err_set(err, rc, "%s proxy '%s' cannot be loaded: %s", kind,
                       json_string_value(json_object_get(l.v[i].conf, "name")), why.msg);
    }
    json_decref(defaults);
    for (size_t i = 0; i < l.n; i++)
        free(l.ts[i]);
    free(l.ts);
    free(l.signing);
    free(l.policy);
    free(l.pid);
    if (rc != 0) {
        tg_proxy_rt_free(l.v, l.n);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}
