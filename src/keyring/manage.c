/*
 * manage.c — the certificates table (K9), one certificate's details, the default
 * certificate, deletion (K11) and export (F3, K8).
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct listctx {
    json_t *rows;
    int64_t def;
    long long now;
} listctx;

static int add_row(const tg_store_cert *c, void *arg)
{
    listctx *l = arg;
    json_array_append_new(l->rows, kr_cert_list_row(c, l->def, l->now));
    return 0;
}

int tg_keyring_cert_list(tg_keyring *kr, int expiring_days, json_t **out, tg_err *err)
{
    listctx l = {json_array(), tg_store_ref_get(kr->st, TG_REF_DEFAULT), (long long)time(NULL)};
    if (expiring_days > TG_DAYS_MAX) expiring_days = TG_DAYS_MAX;
    long long before = expiring_days >= 0 ? l.now + (long long)expiring_days * 86400 + 1 : 0;
    int rc = tg_store_cert_each(kr->st, before, add_row, &l, err);
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
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

int tg_keyring_cert_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_cert c = {0};
    char holder[128];
    if ((rc = kr_cert_get(kr, name, &c, err)) != 0) goto end;
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
    if ((rc = tg_store_cert_delete(kr->st, c.id, err)) == 0 && c.key_id != 0)
        rc = tg_store_key_gc(kr->st, c.key_id, err);
end:
    tg_store_cert_clear(&c);
    return kr_finish(kr, rc, err);
}

/* ---- chains ---- */

void kr_chain_free(tg_cert **chain, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tg_cert_free(chain[i]);
    free(chain);
}

typedef struct findctx {
    const tg_cert *child;
    tg_cert *found;
} findctx;

static int find_issuer(const tg_store_cert *c, void *arg)
{
    findctx *f = arg;
    tg_cert *cand = NULL;
    if (tg_cert_from_der(c->der, c->derlen, &cand, NULL) != 0) return 0;
    if (tg_cert_issued_by(f->child, cand)) {
        f->found = cand;
        return 1;
    }
    tg_cert_free(cand);
    return 0;
}

int kr_chain(tg_keyring *kr, const tg_cert *leaf, tg_cert ***chain, size_t *n, tg_err *err)
{
    *chain = NULL;
    *n = 0;
    const tg_cert *cur = leaf;
    for (int depth = 0; depth < 8; depth++) {
        tg_certinfo info;
        int rc = tg_cert_info(cur, &info, err);
        if (rc != 0) break;
        findctx f = {cur, NULL};
        if (!info.self_signed)
            rc = tg_store_cert_each_subject(kr->st, info.issuer, find_issuer, &f, err);
        tg_certinfo_clear(&info);
        if (rc != 0 || f.found == NULL) {
            if (rc != 0) {
                kr_chain_free(*chain, *n);
                *chain = NULL;
                *n = 0;
                return rc;
            }
            break;
        }
        tg_cert **v = realloc(*chain, (*n + 1) * sizeof(*v));
        if (v == NULL) {
            tg_cert_free(f.found);
            break;
        }
        *chain = v;
        v[(*n)++] = f.found;
        cur = f.found;
    }
    return 0;
}

/* ---- export ---- */

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

int tg_keyring_cert_export(tg_keyring *kr, const char *name, const tg_export *exp,
                           unsigned char **out, size_t *outlen, tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    if (exp->with_key && exp->format != TG_FMT_P12)
        return tg_err_set(err, TG_E_USAGE,
                          "the private key is exported only inside PKCS#12: use "
                          "--format p12 --with-key");
    if (exp->with_chain && exp->format == TG_FMT_DER)
        return tg_err_set(err, TG_E_USAGE,
                          "DER holds one certificate; use --format pem or p12 "
                          "for the chain");
    tg_store_cert row = {0};
    tg_cert *cert = NULL, **chain = NULL;
    size_t nchain = 0;
    tg_key *key = NULL;
    char pass[TG_PASS_MAX];
    size_t plen = 0;
    int rc = kr_cert_get(kr, name, &row, err);
    if (rc != 0) return rc;
    if ((rc = tg_cert_from_der(row.der, row.derlen, &cert, err)) != 0) goto end;
    if (exp->with_chain && (rc = kr_chain(kr, cert, &chain, &nchain, err)) != 0) goto end;
    if (exp->with_key) {
        tg_store_key k;
        if (row.key_id == 0 || tg_store_key_get(kr->st, row.key_id, &k, NULL) != 0) {
            rc = tg_err_set(err, TG_E_NOTFOUND, "'%s' has no private key in the store", name);
            goto end;
        }
        if (!k.exportable) {
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "the private key of '%s' is marked non-exportable; it never leaves the "
                            "store (export the certificate without --with-key)",
                            name);
            goto end;
        }
    }
    if (exp->format == TG_FMT_DER) {
        rc = append(out, outlen, row.der, row.derlen);
    } else if (exp->format == TG_FMT_PEM) {
        for (size_t i = 0; rc == 0 && i <= nchain; i++) {
            char *pem = NULL;
            size_t n = 0;
            if ((rc = tg_cert_to_pem(i == 0 ? cert : chain[i - 1], &pem, &n, err)) == 0)
                rc = append(out, outlen, pem, n);
            free(pem);
        }
    } else {
        if ((rc = get_passphrase(exp->pass, pass, &plen, err)) != 0) goto end;
        if (exp->with_key && (rc = kr_key_load(kr, row.key_id, &key, err)) != 0) goto end;
        rc = tg_p12_create(cert, key, chain, nchain, row.name, pass, out, outlen, err);
    }
    if (rc == TG_E_INTERNAL && err && err->code == 0) rc = tg_err_set(err, rc, "out of memory");
end:
    tg_wipe(pass, sizeof(pass));
    tg_key_free(key);
    tg_cert_free(cert);
    kr_chain_free(chain, nchain);
    tg_store_cert_clear(&row);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *outlen = 0;
    }
    return rc;
}
