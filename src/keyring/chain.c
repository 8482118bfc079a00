/*
 * chain.c — issuer chains and chain status (SPEC C1, C2).
 *
 * A certificate's issuer is looked up by name among the store's certificates, then in
 * the default CA package, and accepted only when its key verifies the signature — never
 * by friendly name, so that reissuing or replacing a CA does not orphan what it signed.
 * Status is stored with each certificate, computed when it arrives and recomputed for
 * all whenever CA certificates change (and on "tlsgate refresh").
 *
 * The chain built with the status is stored with it (certs.chain_ids, JSON ids nearest
 * first: > 0 a certificate's id, < 0 minus a default CA's row; without the leaf and
 * without a self-signed top, so exactly what serve sends): serve reads it instead of
 * building chains. Every change that can alter a chain recomputes all of them in the same
 * transaction (a CA added, replaced, reissued or deleted, a chain member deleted, the
 * default CA package reloaded, "tlsgate refresh"), so stored ids point at what the chain
 * was built from; a reader still treats a missing member as the chain's end.
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

#define TG_CHAIN_MAX TG_STORE_CHAIN_MAX

size_t kr_chain_builds;

void kr_chain_free(tg_cert **chain, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tg_cert_free(chain[i]);
    free(chain);
}

typedef struct findctx {
    const tg_cert *child;
    tg_cert *found;
    int64_t id;
} findctx;

static int try_issuer(findctx *f, int64_t id, const unsigned char *der, size_t len)
{
    tg_cert *cand = NULL;
    if (tg_cert_from_der(der, len, &cand, NULL) != 0) return 0;
    if (tg_cert_issued_by(f->child, cand)) {
        f->found = cand;
        f->id = id;
        return 1;
    }
    tg_cert_free(cand);
    return 0;
}

static int store_issuer(const tg_store_cert *c, void *arg)
{
    return try_issuer(arg, c->id, c->der, c->derlen);
}

static int default_issuer(int64_t id, const unsigned char *der, size_t len, void *arg)
{
    return try_issuer(arg, -id, der, len);
}

int kr_chain(tg_keyring *kr, const tg_cert *leaf, tg_cert ***chain, size_t *n, int64_t *ids,
             tg_err *err)
{
    kr_chain_builds++;
    *chain = NULL;
    *n = 0;
    const tg_cert *cur = leaf;
    while (*n < TG_CHAIN_MAX && !tg_cert_self_signed(cur)) {
        char *issuer = tg_cert_issuer_text(cur);
        if (issuer == NULL) break;
        findctx f = {cur, NULL, 0};
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
        if (ids) ids[*n] = f.id;
        v[(*n)++] = f.found;
        cur = f.found;
    }
    return 0;
}

/* The stored form of a chain: what serve sends, i.e. without a self-signed top. */
static char *chain_ids_encode(tg_cert **chain, const int64_t *ids, size_t n)
{
    if (n > 0 && tg_cert_self_signed(chain[n - 1])) n--;
    /* "[" "]" NUL, and per id at most 20 characters (INT64_MIN) and a comma */
    size_t size = 3 + n * 21, used = 1;
    char *s = malloc(size);
    if (s == NULL) return NULL;
    s[0] = '[';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, size - used, i ? ",%lld" : "%lld", (long long)ids[i]);
    snprintf(s + used, size - used, "]");
    return s;
}

int kr_chain_status(tg_keyring *kr, const tg_cert *cert, int64_t key_id,
                    const unsigned char spki[32], char *status, size_t size, char **chain_ids,
                    tg_err *err)
{
    tg_cert **chain = NULL;
    size_t n = 0;
    int64_t ids[TG_CHAIN_MAX];
    int rc = kr_chain(kr, cert, &chain, &n, ids, err);
    if (rc != 0) return rc;
    if (chain_ids != NULL && (*chain_ids = chain_ids_encode(chain, ids, n)) == NULL) {
        kr_chain_free(chain, n);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
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
    char *chain_ids;
} pending;

typedef struct refreshctx {
    tg_keyring *kr;
    pending *v;
    size_t n, cap, status_changed;
    int rc;
    tg_err *err;
} refreshctx;

static int refresh_one(const tg_store_cert *c, void *arg)
{
    refreshctx *r = arg;
    tg_cert *cert = NULL;
    char status[24], *ids = NULL;
    if (tg_cert_from_der(c->der, c->derlen, &cert, r->err) != 0 ||
        kr_chain_status(r->kr, cert, c->key_id, c->spki_sha256, status, sizeof(status), &ids,
                        r->err) != 0) {
        tg_cert_free(cert);
        r->rc = TG_E_INTERNAL;
        return 1;
    }
    tg_cert_free(cert);
    int same_status = strcmp(status, c->status) == 0;
    if (same_status && c->chain_ids && strcmp(ids, c->chain_ids) == 0) {
        free(ids);
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        pending *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            free(ids);
            r->rc = tg_err_set(r->err, TG_E_INTERNAL, "out of memory");
            return 1;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n].id = c->id;
    snprintf(r->v[r->n].status, sizeof(r->v[r->n].status), "%s", status);
    r->v[r->n].chain_ids = ids;
    r->n++;
    if (!same_status) r->status_changed++;
    return 0;
}

int kr_refresh_tx(tg_keyring *kr, size_t *changed, tg_err *err)
{
    refreshctx r = {.kr = kr, .err = err};
    int rc = tg_store_cert_each_with_der(kr->st, refresh_one, &r, err);
    if (rc == 0) rc = r.rc;
    for (size_t i = 0; rc == 0 && i < r.n; i++)
        rc = tg_store_cert_set_status(kr->st, r.v[i].id, r.v[i].status, r.v[i].chain_ids, err);
    if (changed) *changed = r.status_changed;
    for (size_t i = 0; i < r.n; i++)
        free(r.v[i].chain_ids);
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
        kr_chain(kr, cert, &chain, &n, NULL, NULL) != 0) {
        tg_cert_free(cert);
        return arr;
    }
    for (size_t i = 0; i <= n; i++) {
        tg_certinfo info;
        if (tg_cert_info(i == 0 ? cert : chain[i - 1], &info, NULL) != 0) break;
        const char *type = !info.is_ca ? "identity" : info.self_signed ? "root" : "intermediate";
        json_t *link = json_pack("{s:o, s:s}", "subject", kr_json_text(info.subject), "type", type);
        if (link != NULL && (kr_json_time(link, "not_after", info.not_after) != 0 ||
                             json_object_set_new(link, "sha256", json_string(info.sha256)) != 0)) {
            json_decref(link);
            link = NULL;
        }
        json_array_append_new(arr, link);
        tg_certinfo_clear(&info);
    }
    kr_chain_free(chain, n);
    tg_cert_free(cert);
    return arr;
}
