/*
 * proxy_server.c — what a server inspection proxy (issue 12) has that a client proxy has
 * not: its networks (destinations, source exceptions) as canonical CIDR lists, and its
 * certificates (child rows proxy_certs, chosen by SNI) with the state of each one's key.
 *
 * proxy.c owns the rules common to both kinds and calls these. A CIDR list is kept
 * sorted (family, address, prefix) without duplicates, so that the stored document is
 * canonical; a certificate list keeps the order it was given in, duplicates discarded
 * (the first place wins), as the reference appliance does.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- CIDR lists ---- */

static int cidr_cmp(const void *a, const void *b)
{
    const tg_cidr *x = a, *y = b;
    if (x->family != y->family) return x->family < y->family ? -1 : 1;
    int c = memcmp(x->addr, y->addr, sizeof(x->addr));
    if (c != 0) return c;
    return x->prefix < y->prefix ? -1 : x->prefix > y->prefix;
}

static long cidr_find(const kr_cidrs *l, const tg_cidr *c)
{
    for (size_t i = 0; i < l->n; i++)
        if (cidr_cmp(&l->v[i], c) == 0) return (long)i;
    return -1;
}

static int cidr_push(kr_cidrs *l, const tg_cidr *c, size_t max, const char *what, tg_err *err)
{
    if (cidr_find(l, c) >= 0) return 0; /* given twice: once is enough */
    if (l->n >= max)
        return tg_err_set(err, TG_E_INVALID, "a server proxy holds at most %zu %s", max, what);
    if (tg_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 8) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    l->v[l->n++] = *c;
    return 0;
}

void kr_cidrs_clear(kr_cidrs *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int kr_cidrs_edit(kr_cidrs *l, const tg_textlist *whole, const tg_textlist *add,
                  const tg_textlist *remove, size_t max, const char *what, tg_err *err)
{
    int rc = 0;
    tg_cidr c;
    if (whole != NULL && whole->v != NULL) {
        l->n = 0;
        for (size_t i = 0; i < whole->n; i++)
            if ((rc = tg_cidr_parse(whole->v[i], &c, err)) != 0 ||
                (rc = cidr_push(l, &c, max, what, err)) != 0)
                return rc;
    }
    for (size_t i = 0; remove != NULL && i < remove->n; i++) {
        if ((rc = tg_cidr_parse(remove->v[i], &c, err)) != 0) return rc;
        long at = cidr_find(l, &c);
        if (at < 0) {
            char text[TG_CIDR_TEXT_MAX];
            tg_cidr_format(&c, text, sizeof(text));
            return tg_err_set(err, TG_E_NOTFOUND,
                              "%s is not among the proxy's %s (its document lists them)", text,
                              what);
        }
        memmove(&l->v[at], &l->v[at + 1], (l->n - (size_t)at - 1) * sizeof(*l->v));
        l->n--;
    }
    for (size_t i = 0; add != NULL && i < add->n; i++)
        if ((rc = tg_cidr_parse(add->v[i], &c, err)) != 0 ||
            (rc = cidr_push(l, &c, max, what, err)) != 0)
            return rc;
    if (l->n > 1) qsort(l->v, l->n, sizeof(*l->v), cidr_cmp);
    return 0;
}

json_t *kr_cidrs_json(const kr_cidrs *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < l->n; i++) {
        char text[TG_CIDR_TEXT_MAX];
        tg_cidr_format(&l->v[i], text, sizeof(text));
        if (json_array_append_new(a, json_string(text)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int kr_cidrs_overlap(const kr_cidrs *a, const kr_cidrs *b, char *out, size_t size)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            const tg_cidr *x = &a->v[i], *y = &b->v[j];
            /* two networks overlap when the shorter one holds the other's address */
            if (tg_cidr_contains(x, y->family, y->addr) ||
                tg_cidr_contains(y, x->family, x->addr)) {
                char tx[TG_CIDR_TEXT_MAX], ty[TG_CIDR_TEXT_MAX];
                tg_cidr_format(x, tx, sizeof(tx));
                tg_cidr_format(y, ty, sizeof(ty));
                if (strcmp(tx, ty) == 0)
                    snprintf(out, size, "%s", tx);
                else
                    snprintf(out, size, "%s and %s", tx, ty);
                return 1;
            }
        }
    return 0;
}

/* ---- certificates ---- */

/* The certificate named name, which a server proxy can show its clients: not a CA. */
static int server_cert_get(tg_keyring *kr, const char *name, tg_store_cert *c, tg_err *err)
{
    int rc = kr_cert_get(kr, name, c, err);
    if (rc == 0 && c->is_ca) {
        tg_store_cert_clear(c);
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is a CA certificate; a server proxy shows its clients the "
                        "protected servers' own certificates (end-entity certificates, imported "
                        "with their keys)",
                        name);
    }
    return rc;
}

static long id_find(const int64_t *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id) return (long)i;
    return -1;
}

static int id_push(int64_t **v, size_t *n, size_t *cap, int64_t id, tg_err *err)
{
    if (id_find(*v, *n, id) >= 0) return 0; /* duplicates are discarded, the first kept */
    if (tg_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    (*v)[(*n)++] = id;
    return 0;
}

int kr_srv_certs_write(tg_keyring *kr, const tg_store_proxy *p, const tg_proxy_opts *o, int create,
                       tg_err *err)
{
    if (!create && o->certs.v == NULL && o->add_certs.n == 0 && o->remove_certs.n == 0) return 0;
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!create && o->certs.v == NULL) {
        if ((rc = tg_store_proxy_certs_get(kr->st, p->id, &v, &n, err)) != 0) return rc;
        cap = n;
    }
    tg_store_cert c;
    for (size_t i = 0; rc == 0 && o->certs.v != NULL && i < o->certs.n; i++)
        if ((rc = server_cert_get(kr, o->certs.v[i], &c, err)) == 0) {
            rc = id_push(&v, &n, &cap, c.id, err);
            tg_store_cert_clear(&c);
        }
    for (size_t i = 0; rc == 0 && i < o->remove_certs.n; i++)
        if ((rc = kr_cert_get(kr, o->remove_certs.v[i], &c, err)) == 0) {
            long at = id_find(v, n, c.id);
            if (at < 0)
                rc = tg_err_set(err, TG_E_NOTFOUND,
                                "'%s' is not among the certificates of server proxy '%s' (its "
                                "document lists them)",
                                c.name, p->name);
            else {
                memmove(&v[at], &v[at + 1], (n - (size_t)at - 1) * sizeof(*v));
                n--;
            }
            tg_store_cert_clear(&c);
        }
    for (size_t i = 0; rc == 0 && i < o->add_certs.n; i++)
        if ((rc = server_cert_get(kr, o->add_certs.v[i], &c, err)) == 0) {
            rc = id_push(&v, &n, &cap, c.id, err);
            tg_store_cert_clear(&c);
        }
    if (rc == 0 && n == 0) /* (create refused an empty list before: proxy.c) */
        rc = tg_err_set(err, TG_E_INVALID,
                        "server proxy '%s' would have no certificate left; add another "
                        "before removing the last, or delete the proxy",
                        p->name);
    if (rc == 0 && n > TG_SRV_CERTS_MAX)
        rc = tg_err_set(err, TG_E_INVALID,
                        "a server proxy holds at most %d certificates (%zu given); spread them "
                        "over several proxies",
                        TG_SRV_CERTS_MAX, n);
    if (rc == 0) rc = tg_store_proxy_certs_set(kr->st, p->id, v, n, err);
    free(v);
    return rc;
}

const char *kr_key_row_state(tg_keyring *kr, const tg_store_cert *c)
{
    if (c->key_id == 0) return "missing";
    tg_store_key k;
    if (tg_store_key_get(kr->st, c->key_id, &k, NULL) != 0 ||
        memcmp(k.spki_sha256, c->spki_sha256, 32) != 0)
        return "broken";
    return "ok";
}

const char *kr_key_state(tg_keyring *kr, const tg_store_cert *c)
{
    const char *state = kr_key_row_state(kr, c);
    if (strcmp(state, "ok") != 0) return state;
    unsigned char *der = NULL;
    size_t len = 0;
    if (tg_store_key_unseal(kr->st, c->key_id, &der, &len, NULL) != 0) return "broken";
    tg_free_secret(der, len);
    return "ok";
}

int kr_srv_certs_doc(tg_keyring *kr, int64_t proxy_id, int unseal, json_t **out, tg_err *err)
{
    *out = NULL;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = tg_store_proxy_certs_get(kr->st, proxy_id, &ids, &n, err);
    json_t *a = rc == 0 ? json_array() : NULL;
    if (rc == 0 && a == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tg_store_cert c;
        if ((rc = tg_store_cert_get(kr->st, ids[i], &c, err)) != 0) break;
        json_t *sans = kr_sans_doc(c.san_list, NULL);
        json_t *e = json_pack("{s:o, s:o, s:o, s:s}", "name", kr_json_text(c.name), "cn",
                              kr_json_opt(c.subject_cn), "sans", sans ? sans : json_array(), "key",
                              unseal ? kr_key_state(kr, &c) : kr_key_row_state(kr, &c));
        if (e == NULL || json_array_append_new(a, e) != 0)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        tg_store_cert_clear(&c);
    }
    free(ids);
    if (rc != 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}
