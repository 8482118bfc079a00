/*
 * serve.c — the keyring as the TLS front end sees it (SPEC S1–S3): the list of
 * servable certificates for the name index, and one certificate with chain and key on
 * demand. The index is built from stored metadata only; no certificate is parsed and
 * no key unsealed until a client asks for it, and then the chain is the one stored with
 * the status (chain.c): nothing here builds a chain or checks a signature.
 */
#include "keyring_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct servctx {
    int (*fn)(const tg_servable *s, void *arg);
    void *arg;
} servctx;

/* The stored list is decoded, never split: a value holding ", DNS:x" stays one value. */
static int one(const tg_store_servable *r, void *arg)
{
    servctx *c = arg;
    tg_sanlist l;
    if (kr_sans_decode(r->san_list, &l) != 0) return 0; /* damaged: not served */
    tg_servable s = {r->id,
                     l.v,
                     l.n,
                     r->cn ? r->cn : "",
                     r->key_type && strcmp(r->key_type, "EC") == 0,
                     r->not_before,
                     r->not_after};
    int stop = c->fn(&s, c->arg);
    tg_sanlist_free(&l);
    return stop;
}

int tg_keyring_servables(tg_keyring *kr, int (*fn)(const tg_servable *s, void *arg), void *arg,
                         int64_t *default_id, tg_err *err)
{
    servctx c = {fn, arg};
    *default_id = tg_store_ref_get(kr->st, TG_REF_DEFAULT);
    return tg_store_servable_each(kr->st, one, &c, err);
}

void tg_served_clear(tg_served *s)
{
    tg_cert_free(s->cert);
    for (size_t i = 0; i < s->nchain; i++)
        free(s->chain[i].der);
    tg_key_free(s->key);
    free(s->name);
    memset(s, 0, sizeof(*s));
}

_Static_assert(TG_SERVED_CHAIN_MAX == TG_STORE_CHAIN_MAX, "one chain length");

int tg_keyring_serve_load(tg_keyring *kr, int64_t id, tg_served *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    tg_store_served row;
    int rc = tg_store_served_get(kr->st, id, &row, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, rc, "the certificate is no longer in the store");
    if (rc != 0) return rc;
    if (row.key_id == 0) rc = tg_err_set(err, TG_E_NOTFOUND, "'%s' has no private key", row.name);
    if (rc == 0) rc = tg_cert_from_der(row.der, row.derlen, &out->cert, err);
    if (rc == 0) rc = kr_key_load(kr, row.key_id, &out->key, err);
    if (rc == 0) {
        for (size_t i = 0; i < row.nchain; i++) {
            out->chain[i] =
                (tg_served_link){row.chain[i].id, row.chain[i].der, row.chain[i].derlen};
            row.chain[i].der = NULL;
        }
        out->nchain = row.nchain;
        out->name = row.name;
        row.name = NULL;
    }
    tg_store_served_clear(&row);
    if (rc != 0) tg_served_clear(out);
    return rc;
}

int tg_keyring_serve_named(tg_keyring *kr, const char *name, tg_served *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    int64_t id = tg_store_ref_get(kr->st, TG_REF_DEFAULT);
    if (name != NULL) {
        tg_store_cert c;
        int rc = kr_cert_get(kr, name, &c, err);
        if (rc != 0) return rc;
        id = c.id;
        tg_store_cert_clear(&c);
    }
    if (id == 0) return tg_err_set(err, TG_E_NOTFOUND, "there is no default certificate");
    return tg_keyring_serve_load(kr, id, out, err);
}

long long tg_keyring_version(tg_keyring *kr)
{
    return tg_store_data_version(kr->st);
}
