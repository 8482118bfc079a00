/*
 * chain.c — issuer chains and chain status (SPEC C1, C2).
 *
 * A certificate's issuer is looked up by name among the store's certificates, then in
 * the default CA package, and accepted only when its key verifies the signature — never
 * by friendly name, so that reissuing or replacing a CA does not orphan what it signed.
 * Status is stored with each certificate, computed when it arrives and recomputed for
 * all whenever CA certificates change (and on "tlsgate refresh").
 *
 * Status: "valid" (the chain ends at a self-signed certificate we hold), "missing
 * intermediate" (no issuer for an end-entity certificate), "no trust anchor" (the
 * chain stops at a CA certificate whose issuer we lack), "expired" / "not yet valid" (for any
 * certificate of the chain), "key mismatch" (the linked key is not the certificate's).
 */
#include "keyring_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TG_CHAIN_MAX 8

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

static int try_issuer(findctx *f, const unsigned char *der, size_t len)
{
    tg_cert *cand = NULL;
    if (tg_cert_from_der(der, len, &cand, NULL) != 0) return 0;
    if (tg_cert_issued_by(f->child, cand)) {
        f->found = cand;
        return 1;
    }
    tg_cert_free(cand);
    return 0;
}

static int store_issuer(const tg_store_cert *c, void *arg)
{
    return try_issuer(arg, c->der, c->derlen);
}

static int default_issuer(const unsigned char *der, size_t len, void *arg)
{
    return try_issuer(arg, der, len);
}

int kr_chain(tg_keyring *kr, const tg_cert *leaf, tg_cert ***chain, size_t *n, tg_err *err)
{
    *chain = NULL;
    *n = 0;
    const tg_cert *cur = leaf;
    while (*n < TG_CHAIN_MAX && !tg_cert_self_signed(cur)) {
        char *issuer = tg_cert_issuer_text(cur);
        if (issuer == NULL) break;
        findctx f = {cur, NULL};
        int rc = tg_store_cert_each_subject(kr->st, issuer, store_issuer, &f, err);
        if (rc == 0 && f.found == NULL)
            rc = tg_store_defcas_each(kr->st, issuer, default_issuer, &f, err);
        free(issuer);
        if (rc != 0) {
            kr_chain_free(*chain, *n);
            *chain = NULL;
            *n = 0;
            return rc;
        }
        if (f.found == NULL) break;
        /* a loop of cross-signed CAs ends here */
        int seen = tg_cert_equal(f.found, leaf);
        for (size_t i = 0; i < *n && !seen; i++)
            seen = tg_cert_equal((*chain)[i], f.found);
        tg_cert **v = realloc(*chain, (*n + 1) * sizeof(*v));
        if (v == NULL || seen) {
            tg_cert_free(f.found);
            break;
        }
        *chain = v;
        v[(*n)++] = f.found;
        cur = f.found;
    }
    return 0;
}

int kr_chain_status(tg_keyring *kr, const tg_cert *cert, int64_t key_id,
                    const unsigned char spki[32], char *status, size_t size, tg_err *err)
{
    tg_cert **chain = NULL;
    size_t n = 0;
    int rc = kr_chain(kr, cert, &chain, &n, err);
    if (rc != 0) return rc;
    long long now = (long long)time(NULL);
    const char *s = NULL;
    tg_store_key k;
    if (key_id != 0 && tg_store_key_get(kr->st, key_id, &k, NULL) == 0 &&
        memcmp(k.spki_sha256, spki, 32) != 0)
        s = "key mismatch";
    for (size_t i = 0; s == NULL && i <= n; i++) {
        long long nb, na;
        tg_cert_validity(i == 0 ? cert : chain[i - 1], &nb, &na);
        if (na < now)
            s = "expired";
        else if (nb > now)
            s = "not yet valid";
    }
    if (s == NULL) {
        const tg_cert *top = n ? chain[n - 1] : cert;
        /* what is missing above a leaf is most likely an intermediate; above a CA, a root */
        s = tg_cert_self_signed(top)         ? "valid"
            : n == 0 && !tg_cert_is_ca(cert) ? "missing intermediate"
                                             : "no trust anchor";
    }
    snprintf(status, size, "%s", s);
    kr_chain_free(chain, n);
    return 0;
}

typedef struct pending {
    int64_t id;
    char status[24];
} pending;

typedef struct refreshctx {
    tg_keyring *kr;
    pending *v;
    size_t n, cap;
    int rc;
    tg_err *err;
} refreshctx;

static int refresh_one(const tg_store_cert *c, void *arg)
{
    refreshctx *r = arg;
    tg_cert *cert = NULL;
    char status[24];
    if (tg_cert_from_der(c->der, c->derlen, &cert, r->err) != 0 ||
        kr_chain_status(r->kr, cert, c->key_id, c->spki_sha256, status, sizeof(status), r->err) !=
            0) {
        tg_cert_free(cert);
        r->rc = TG_E_INTERNAL;
        return 1;
    }
    tg_cert_free(cert);
    if (strcmp(status, c->status) == 0) return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        pending *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            r->rc = tg_err_set(r->err, TG_E_INTERNAL, "out of memory");
            return 1;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n].id = c->id;
    snprintf(r->v[r->n].status, sizeof(r->v[r->n].status), "%s", status);
    r->n++;
    return 0;
}

int kr_refresh_tx(tg_keyring *kr, size_t *changed, tg_err *err)
{
    refreshctx r = {.kr = kr, .err = err};
    int rc = tg_store_cert_each_with_der(kr->st, refresh_one, &r, err);
    if (rc == 0) rc = r.rc;
    for (size_t i = 0; rc == 0 && i < r.n; i++)
        rc = tg_store_cert_set_status(kr->st, r.v[i].id, r.v[i].status, err);
    if (changed) *changed = r.n;
    free(r.v);
    return rc;
}

int tg_keyring_refresh(tg_keyring *kr, json_t **out, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    size_t changed = 0;
    rc = kr_finish(kr, kr_refresh_tx(kr, &changed, err), err);
    if (rc == 0) *out = json_pack("{s:I}", "changed", (json_int_t)changed);
    return rc;
}

json_t *kr_chain_doc(tg_keyring *kr, const tg_store_cert *c)
{
    json_t *arr = json_array();
    tg_cert *cert = NULL, **chain = NULL;
    size_t n = 0;
    if (arr == NULL || tg_cert_from_der(c->der, c->derlen, &cert, NULL) != 0 ||
        kr_chain(kr, cert, &chain, &n, NULL) != 0) {
        tg_cert_free(cert);
        return arr;
    }
    for (size_t i = 0; i <= n; i++) {
        tg_certinfo info;
        if (tg_cert_info(i == 0 ? cert : chain[i - 1], &info, NULL) != 0) break;
        char na[40];
        tg_time_fmt((time_t)info.not_after, na, sizeof(na));
        const char *type = !info.is_ca ? "identity" : info.self_signed ? "root" : "intermediate";
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "subject", info.subject,
                                             "type", type, "expires", na, "sha256", info.sha256));
        tg_certinfo_clear(&info);
    }
    kr_chain_free(chain, n);
    tg_cert_free(cert);
    return arr;
}
