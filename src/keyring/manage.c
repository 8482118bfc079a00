/*
 * manage.c — the certificates table (K9), one certificate's details, the default
 * certificate, deletion (K11) and export (F3, K8).
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct listctx {
    int (*emit)(json_t *row, void *arg); /* the list's consumer (row borrowed) */
    void *emit_arg;
    int64_t def;
    long long now;
    int failed;
    size_t n; /* rows emitted */
} listctx;

/* A row that cannot be built stops the list with an error: a list never drops a row. */
static int add_row(const tg_store_cert *c, void *arg)
{
    listctx *l = arg;
    json_t *row = kr_cert_list_row(c, l->def, l->now);
    if (row == NULL) return l->failed = 1;
    l->n++;
    int stop = l->emit(row, l->emit_arg);
    json_decref(row);
    return stop;
}

/* The search text of a list or a page: printable, and short (NULL: none given). */
static int query_check(const char *q, tg_err *err)
{
    if (q && (strlen(q) > TG_QUERY_MAX || tg_text_check(q, NULL, NULL) != 0))
        return tg_err_fset(err, TG_E_INVALID, "query",
                           "a search is printable text of at most %d bytes", TG_QUERY_MAX);
    return 0;
}

/* A list's question checked and turned into the store's terms. */
static int list_query(const tg_list *q, const char **filter, long long *before, int *only_ca,
                      tg_err *err)
{
    int expiring_days = q->expiring_days;
    int rc;
    *before = 0, *only_ca = 0; /* set on every path: callers read them only on success */
    *filter = q->filter && q->filter[0] ? q->filter : NULL;
    if (expiring_days < -1)
        return tg_err_fset(err, TG_E_INVALID, "expiring",
                           "the expiry window needs a number of days, 0 or more");
    if ((rc = query_check(*filter, err)) != 0) return rc;
    if (expiring_days > TG_DAYS_MAX) expiring_days = TG_DAYS_MAX;
    *before = expiring_days >= 0 ? (long long)time(NULL) + (long long)expiring_days * 86400 + 1 : 0;
    *only_ca = q->kind == TG_LIST_CAS ? 1 : q->kind == TG_LIST_CERTS ? -1 : 0;
    return 0;
}

int tg_keyring_cert_list_each(tg_keyring *kr, const tg_list *q, int (*emit)(json_t *row, void *arg),
                              void *arg, size_t *total, tg_err *err)
{
    const char *filter;
    long long before;
    int only_ca;
    int rc = list_query(q, &filter, &before, &only_ca, err);
    if (rc != 0) return rc;
    listctx l = {.emit = emit,
                 .emit_arg = arg,
                 .def = tg_store_ref_get(kr->st, TG_REF_DEFAULT),
                 .now = (long long)time(NULL)};
    long long unfiltered = 0; /* counted only when a search narrows the list */
    rc = tg_store_cert_list(kr->st, only_ca, before, filter, q->expiring_days >= 0, add_row, &l,
                            filter != NULL && total != NULL ? &unfiltered : NULL, err);
    if (rc == 0 && l.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && total != NULL) *total = filter != NULL ? (size_t)unfiltered : l.n;
    return rc;
}

typedef struct appender {
    json_t *rows;
    int failed;
} appender;

static int append_row(json_t *row, void *arg)
{
    appender *a = arg;
    return a->failed = json_array_append(a->rows, row) != 0; /* out of memory stops it */
}

int tg_keyring_cert_list(tg_keyring *kr, const tg_list *q, json_t **out, size_t *total, tg_err *err)
{
    *out = NULL;
    appender a = {json_array(), 0};
    if (a.rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_keyring_cert_list_each(kr, q, append_row, &a, total, err);
    if (rc == 0 && a.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(a.rows);
        return rc;
    }
    *out = a.rows;
    return 0;
}

int tg_keyring_cert_page(tg_keyring *kr, const tg_page *pg, json_t **out, tg_err *err)
{
    *out = NULL;
    int limit = pg->limit == 0 ? TG_PAGE_DEFAULT : pg->limit;
    if (limit < 1 || limit > TG_PAGE_MAX)
        return tg_err_fset(err, TG_E_INVALID, "limit",
                           "a page holds from 1 to %d rows (0: %d), not %d", TG_PAGE_MAX,
                           TG_PAGE_DEFAULT, pg->limit);
    if (pg->expiring_set && (pg->expiring_days < 0 || pg->expiring_days > TG_DAYS_MAX))
        return tg_err_fset(err, TG_E_INVALID, "expiring",
                           "the expiry window is a number of days from 0 to %d", TG_DAYS_MAX);
    const char *q = pg->query && pg->query[0] ? pg->query : NULL;
    int rc = query_check(q, err);
    if (rc != 0) return rc;
    if (pg->after && (strlen(pg->after) > TG_NAME_MAX * 4 || tg_text_check(pg->after, NULL, NULL)))
        return tg_err_fset(err, TG_E_INVALID, "after",
                           "the page cursor is a certificate name from the previous page");
    long long before =
        pg->expiring_set ? (long long)time(NULL) + (long long)pg->expiring_days * 86400 + 1 : 0;
    tg_store_page sp = {.only_ca = pg->ca,
                        .before = before,
                        .after = pg->after,
                        .query = q,
                        .limit = limit + 1}; /* one more row says whether a next page exists */
    appender a = {json_array(), 0};
    listctx l = {.emit = append_row,
                 .emit_arg = &a,
                 .def = tg_store_ref_get(kr->st, TG_REF_DEFAULT),
                 .now = (long long)time(NULL)};
    json_t *doc = json_object();
    long long total = 0;
    if (a.rows == NULL || doc == NULL) {
        json_decref(a.rows);
        json_decref(doc);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    rc = tg_store_cert_page(kr->st, &sp, add_row, &l, &total, err);
    if (rc == 0 && (l.failed || a.failed)) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && json_array_size(a.rows) > (size_t)limit) {
        json_array_remove(a.rows, (size_t)limit);
        json_t *last = json_array_get(a.rows, (size_t)limit - 1);
        json_object_set(doc, "next", json_object_get(last, "name"));
    }
    if (json_object_set_new(doc, "items", a.rows) != 0 ||
        (rc == 0 && json_object_set_new(doc, "total", json_integer(total)) != 0))
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

int tg_keyring_cert_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    tg_store_cert c;
    int rc = kr_cert_get(kr, name, &c, err);
    if (rc != 0) return rc;
    *out = kr_cert_doc(kr, &c);
    tg_store_cert_clear(&c);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_cert_default(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_cert c = {0};
    if ((rc = kr_cert_get(kr, name, &c, err)) == 0) {
        if (c.key_id == 0)
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "'%s' has no private key in the store, so it cannot be served; import "
                            "its key first",
                            name);
        else
            rc = tg_store_ref_set(kr->st, TG_REF_DEFAULT, c.id, err);
    }
    tg_store_cert_clear(&c);
    return kr_finish(kr, rc, err);
}

/* ca_only: `ca delete` (the same rules, and NAME must be a CA), checked in the same
 * transaction as the deletion. */
static int cert_delete(tg_keyring *kr, const char *name, int ca_only, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_cert c = {0};
    char holder[128];
    if ((rc = ca_only ? kr_ca_get(kr, name, &c, err) : kr_cert_get(kr, name, &c, err)) != 0)
        goto end;
    if (c.protected_) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is the factory default certificate and cannot be deleted; another "
                        "certificate can be made the default instead",
                        name);
        goto end;
    }
    if (tg_store_ref_holder(kr->st, c.id, holder, sizeof(holder))) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is in use as the %s; move that to another certificate first", name,
                        holder);
        goto end;
    }
    if (tg_store_ts_holding(kr->st, c.id, holder, sizeof(holder))) {
        rc =
            tg_err_set(err, TG_E_CONFLICT,
                       "'%s' is in the trust store '%s'; remove it from there first", name, holder);
        goto end;
    }
    tg_store_proxy p;
    if (tg_store_proxy_by_cert(kr->st, c.id, &p, NULL) == 0) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is the signing certificate of %s proxy '%s': change or delete the "
                        "proxy first",
                        name, p.kind, p.name);
        tg_store_proxy_clear(&p);
        goto end;
    }
    if (tg_store_proxy_by_server_cert(kr->st, c.id, &p, NULL) == 0) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is a certificate of server proxy '%s': remove it from the proxy "
                        "(proxy server set '%s' --remove-cert '%s') or delete the proxy first",
                        name, p.name, p.name, name);
        tg_store_proxy_clear(&p);
        goto end;
    }
    if ((rc = tg_store_cert_delete(kr->st, c.id, err)) == 0 && c.key_id != 0)
        rc = tg_store_key_gc(kr->st, c.key_id, err);
    /* its children lost an issuer (a chain member need not be a CA: v1 certificates) */
    if (rc == 0 && (c.is_ca || tg_store_cert_in_chains(kr->st, c.id)))
        rc = kr_refresh_tx(kr, NULL, err);
end:
    tg_store_cert_clear(&c);
    return kr_finish(kr, rc, err);
}

int tg_keyring_cert_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    return cert_delete(kr, name, 0, err);
}

int tg_keyring_ca_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    return cert_delete(kr, name, 1, err);
}

/* ---- export ---- */

int tg_export_format_parse(const char *s, tg_format *out, tg_err *err)
{
    static const struct {
        const char *name;
        tg_format f;
    } names[] = {{"pem", TG_FMT_PEM}, {"der", TG_FMT_DER},  {"cer", TG_FMT_DER},
                 {"p7b", TG_FMT_P7B}, {"p7c", TG_FMT_P7B},  {"pkcs7", TG_FMT_P7B},
                 {"p8", TG_FMT_P8},   {"pkcs8", TG_FMT_P8}, {"pkcs1", TG_FMT_PKCS1},
                 {"p12", TG_FMT_P12}, {"pfx", TG_FMT_P12},  {"pkcs12", TG_FMT_P12}};
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].f;
            return 0;
        }
    return tg_err_set(err, TG_E_USAGE, "unknown format '%s'; use pem, der, p7b, p8, pkcs1 or p12",
                      s ? s : "");
}

int tg_export_profile_parse(const char *s, tg_p12_profile *out, tg_err *err)
{
    if (s == NULL || strcmp(s, "modern") == 0)
        *out = TG_P12_MODERN;
    else if (strcmp(s, "legacy-des") == 0)
        *out = TG_P12_LEGACY_DES;
    else if (strcmp(s, "legacy-rc2") == 0)
        *out = TG_P12_LEGACY_RC2;
    else
        return tg_err_set(err, TG_E_USAGE,
                          "unknown PKCS#12 profile '%s'; use modern, legacy-des or legacy-rc2", s);
    return 0;
}

int tg_export_has_key(const tg_export *exp)
{
    return exp->with_key || exp->format == TG_FMT_P8 || exp->format == TG_FMT_PKCS1;
}

static int get_passphrase(const tg_passsrc *src, char *buf, size_t *len, tg_err *err)
{
    tg_passsrc none = {0};
    int rc = tg_pass_get(src ? src : &none, buf, TG_PASS_MAX, len, err);
    if (rc != 0) return rc;
    if (*len < TG_PASSPHRASE_MIN) {
        tg_wipe(buf, TG_PASS_MAX);
        return tg_err_set(err, TG_E_PASSWORD,
                          "the export passphrase must be at least %d characters long",
                          TG_PASSPHRASE_MIN);
    }
    return 0;
}

static int append(unsigned char **out, size_t *outlen, const void *data, size_t n)
{
    unsigned char *v = realloc(*out, *outlen + n + 1);
    if (v == NULL) return TG_E_INTERNAL;
    memcpy(v + *outlen, data, n);
    *outlen += n;
    v[*outlen] = '\0';
    *out = v;
    return 0;
}

static int append_pems(tg_cert *const *certs, size_t n, unsigned char **out, size_t *outlen,
                       tg_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *pem = NULL;
        size_t len = 0;
        if ((rc = tg_cert_to_pem(certs[i], &pem, &len, err)) == 0)
            rc = append(out, outlen, pem, len) == 0
                     ? 0
                     : tg_err_set(err, TG_E_INTERNAL, "out of memory");
        free(pem);
    }
    return rc;
}

/* Checks the options against each other before anything is read. */
static int export_check(const tg_export *exp, tg_err *err)
{
    int keyfmt = exp->format == TG_FMT_P8 || exp->format == TG_FMT_PKCS1;
    if (exp->support_bundle && (exp->with_key || keyfmt))
        return tg_err_set(err, TG_E_USAGE, "a support bundle never contains a private key");
    if (exp->with_key && exp->format != TG_FMT_P12 && !keyfmt)
        return tg_err_fset(err, TG_E_USAGE, "with_key",
                           "the private key is exported as p8, pkcs1 or inside p12 (the format "
                           "p12 with the key)");
    if (exp->with_chain && (exp->format == TG_FMT_DER || keyfmt))
        return tg_err_fset(err, TG_E_USAGE, "with_chain",
                           "the chain goes with the format pem, p7b or p12");
    if (exp->profile_set && exp->format != TG_FMT_P12)
        return tg_err_fset(err, TG_E_USAGE, "p12_profile",
                           "a PKCS#12 profile goes with the format p12");
    if (exp->no_passphrase && !keyfmt)
        return tg_err_fset(err, TG_E_USAGE, "no_passphrase",
                           "an export without a passphrase is only for p8 and pkcs1; a PKCS#12 "
                           "always has one");
    return 0;
}

static int cert_export(tg_keyring *kr, const char *name, const tg_export *exp, int ca_only,
                       unsigned char **out, size_t *outlen, tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    int rc = export_check(exp, err);
    if (rc != 0) return rc;
    if (name != NULL && strcasecmp(name, TG_IDENTITY_NAME) == 0) /* E1 */
        return tg_err_set(err, TG_E_CONFLICT,
                          "'%s' is the appliance's identity: it never leaves the appliance, "
                          "neither exported nor in a support bundle",
                          TG_IDENTITY_NAME);
    int wants_key = exp->with_key || exp->format == TG_FMT_P8 || exp->format == TG_FMT_PKCS1;
    tg_store_cert row = {0};
    tg_cert *cert = NULL, **chain = NULL, **all = NULL;
    size_t nchain = 0;
    tg_key *key = NULL;
    char *pass = tg_secure_alloc(TG_PASS_MAX);
    size_t plen = 0;
    char *pem = NULL;
    if (pass == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    size_t pemlen = 0;
    if ((rc = ca_only ? kr_ca_get(kr, name, &row, err) : kr_cert_get(kr, name, &row, err)) != 0)
        goto end;
    if ((rc = tg_cert_from_der(row.der, row.derlen, &cert, err)) != 0) goto end;
    if ((exp->with_chain || exp->support_bundle) &&
        (rc = kr_chain(kr, cert, &chain, &nchain, NULL, err)) != 0)
        goto end;
    all = calloc(nchain + 1, sizeof(*all));
    if (all == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    all[0] = cert;
    for (size_t i = 0; i < nchain; i++)
        all[i + 1] = chain[i];
    if (wants_key) {
        tg_store_key k;
        if (row.key_id == 0 || tg_store_key_get(kr->st, row.key_id, &k, NULL) != 0) {
            rc = tg_err_set(err, TG_E_NOTFOUND, "'%s' has no private key in the store", name);
            goto end;
        }
        if (!k.exportable) {
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "the private key of '%s' is marked non-exportable; it never leaves the "
                            "store (export the certificate without its key)",
                            name);
            goto end;
        }
    }
    if (exp->format == TG_FMT_P12 || (wants_key && !exp->no_passphrase))
        if ((rc = get_passphrase(exp->pass, pass, &plen, err)) != 0) goto end;
    if (wants_key && (rc = kr_key_load(kr, row.key_id, &key, err)) != 0) goto end;

    if (exp->support_bundle) {
        unsigned char *p7 = NULL;
        size_t p7len = 0;
        if ((rc = append_pems(all, nchain + 1, out, outlen, err)) == 0 &&
            (rc = tg_p7_create(all, nchain + 1, 1, &p7, &p7len, err)) == 0)
            rc = append(out, outlen, p7, p7len);
        free(p7);
    } else {
        switch (exp->format) {
        case TG_FMT_DER:
            rc = append(out, outlen, row.der, row.derlen);
            break;
        case TG_FMT_PEM:
            rc = append_pems(all, exp->with_chain ? nchain + 1 : 1, out, outlen, err);
            break;
        case TG_FMT_P7B:
            rc = tg_p7_create(all, exp->with_chain ? nchain + 1 : 1, 0, out, outlen, err);
            break;
        case TG_FMT_P8:
        case TG_FMT_PKCS1:
            if ((rc = tg_key_export_pem(key, exp->format == TG_FMT_PKCS1,
                                        exp->no_passphrase ? NULL : pass, &pem, &pemlen, err)) == 0)
                rc = append(out, outlen, pem, pemlen);
            break;
        case TG_FMT_P12:
            rc =
                tg_p12_create(cert, exp->with_key ? key : NULL, chain, exp->with_chain ? nchain : 0,
                              row.name, pass, exp->profile, out, outlen, err);
            break;
        }
    }
    if (rc == TG_E_INTERNAL) tg_err_set(err, rc, "out of memory");
end:
    tg_secure_free(pass, TG_PASS_MAX);
    tg_free_secret(pem, pemlen);
    tg_key_free(key);
    free(all);
    tg_cert_free(cert);
    kr_chain_free(chain, nchain);
    tg_store_cert_clear(&row);
    if (rc != 0) {
        tg_free_secret(*out, *outlen);
        *out = NULL;
        *outlen = 0;
    }
    return rc;
}

int tg_keyring_cert_export(tg_keyring *kr, const char *name, const tg_export *exp,
                           unsigned char **out, size_t *outlen, tg_err *err)
{
    return cert_export(kr, name, exp, 0, out, outlen, err);
}

int tg_keyring_ca_export(tg_keyring *kr, const char *name, const tg_export *exp,
                         unsigned char **out, size_t *outlen, tg_err *err)
{
    return cert_export(kr, name, exp, 1, out, outlen, err);
}
