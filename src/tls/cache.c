/*
 * cache.c — certificates loaded for serving, bounded (SPEC S3).
 *
 * Keyed by certificate id in an OpenSSL LHASH; recency kept in an intrusive list;
 * the least recently used entry is dropped when the cache is full. Entries hold
 * references: a handshake takes its own (SSL_use_cert_and_key up-refs), so dropping
 * an entry never pulls a key from under a connection. One mutex; loads happen outside
 * it (two threads may load the same certificate once each; the second is discarded).
 *
 * Chain certificates are shared: a second map, store id -> X509 (one reference held by
 * the map, one more per entry and per handshake that uses it), so that a miss parses only
 * its leaf; 100,000 leaves under one intermediate hold one parsed copy of it. It is
 * emptied with the cache (tg_certcache_flush, on every store change: ids can be reused)
 * and holds at most `capacity` certificates (beyond that a member is parsed per entry). A
 * link whose issuer name or key identifier does not fit the certificate below it (a
 * stored chain gone stale) ends the chain there: a shorter chain, never a wrong one.
 */
#include "tls_int.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/lhash.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

typedef struct centry {
    int64_t id;
    tg_loaded l;
    struct centry *prev, *next; /* recency: head is the most recent */
} centry;

DEFINE_LHASH_OF(centry);

typedef struct chentry {
    int64_t id;
    X509 *x;
} chentry;

DEFINE_LHASH_OF(chentry);

struct tg_certcache {
    pthread_mutex_t lock;
    LHASH_OF(centry) * map;
    LHASH_OF(chentry) * chains;
    centry *head, *tail;
    size_t count, capacity, nchains, parsed;
};

static unsigned long centry_hash(const centry *e)
{
    uint64_t x = (uint64_t)e->id * 0x9E3779B97F4A7C15ull;
    return (unsigned long)(x ^ (x >> 29));
}

static int centry_cmp(const centry *a, const centry *b)
{
    return (a->id > b->id) - (a->id < b->id);
}

static unsigned long chentry_hash(const chentry *e)
{
    uint64_t x = (uint64_t)e->id * 0x9E3779B97F4A7C15ull;
    return (unsigned long)(x ^ (x >> 29));
}

static int chentry_cmp(const chentry *a, const chentry *b)
{
    return (a->id > b->id) - (a->id < b->id);
}

void tg_loaded_clear(tg_loaded *l)
{
    X509_free(l->cert);
    sk_X509_pop_free(l->chain, X509_free);
    EVP_PKEY_free(l->key);
    free(l->name);
    memset(l, 0, sizeof(*l));
}

static int loaded_copy(const tg_loaded *from, tg_loaded *to)
{
    memset(to, 0, sizeof(*to));
    to->chain = X509_chain_up_ref(from->chain);
    to->name = strdup(from->name);
    if (to->chain == NULL || to->name == NULL || !X509_up_ref(from->cert) ||
        !EVP_PKEY_up_ref(from->key)) {
        sk_X509_pop_free(to->chain, X509_free);
        free(to->name);
        memset(to, 0, sizeof(*to));
        return -1;
    }
    to->cert = from->cert;
    to->key = from->key;
    return 0;
}

tg_certcache *tg_certcache_new(size_t capacity)
{
    tg_certcache *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->map = lh_centry_new(centry_hash, centry_cmp);
    c->chains = lh_chentry_new(chentry_hash, chentry_cmp);
    if (c->map == NULL || c->chains == NULL) {
        lh_centry_free(c->map);
        lh_chentry_free(c->chains);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->capacity = capacity ? capacity : TG_SERVE_CACHE_DEFAULT;
    return c;
}

static void unlink_entry(tg_certcache *c, centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(tg_certcache *c, centry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (c->tail == NULL) c->tail = e;
}

static void drop(tg_certcache *c, centry *e)
{
    unlink_entry(c, e);
    lh_centry_delete(c->map, e);
    tg_loaded_clear(&e->l);
    free(e);
    c->count--;
}

static void chentry_free(chentry *e)
{
    X509_free(e->x);
    free(e);
}

void tg_certcache_flush(tg_certcache *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->head)
        drop(c, c->head);
    lh_chentry_doall(c->chains, chentry_free);
    lh_chentry_flush(c->chains);
    c->nchains = 0;
    pthread_mutex_unlock(&c->lock);
}

size_t tg_certcache_parsed(tg_certcache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->parsed;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void tg_certcache_free(tg_certcache *c)
{
    if (c == NULL) return;
    tg_certcache_flush(c);
    lh_centry_free(c->map);
    lh_chentry_free(c->chains);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The chain member with this id and DER: the shared copy (a new reference), else parsed
 * and shared. NULL when it cannot be parsed or memory is short. */
static X509 *chain_member(tg_certcache *c, const tg_served_link *l)
{
    chentry key = {.id = l->id}, *e;
    X509 *x = NULL;
    pthread_mutex_lock(&c->lock);
    if ((e = lh_chentry_retrieve(c->chains, &key)) != NULL && X509_up_ref(e->x)) x = e->x;
    pthread_mutex_unlock(&c->lock);
    if (x != NULL) return x;
    const unsigned char *p = l->der;
    if (l->derlen > LONG_MAX || (x = d2i_X509(NULL, &p, (long)l->derlen)) == NULL) {
        ERR_clear_error();
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    c->parsed++;
    if ((e = lh_chentry_retrieve(c->chains, &key)) != NULL && X509_up_ref(e->x)) {
        X509_free(x); /* another thread was faster */
        x = e->x;
    } else if (e == NULL && c->nchains < c->capacity && (e = malloc(sizeof(*e))) != NULL) {
        *e = (chentry){l->id, x};
        lh_chentry_insert(c->chains, e);
        if (lh_chentry_error(c->chains) || !X509_up_ref(x)) {
            lh_chentry_delete(c->chains, e);
            free(e);
        } else {
            c->nchains++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return x;
}

static int load(tg_certcache *c, tg_keyring *kr, int64_t id, tg_loaded *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    tg_served s;
    int rc = tg_keyring_serve_load(kr, id, &s, err);
    if (rc != 0) return rc;
    out->chain = sk_X509_new_null();
    out->name = s.name;
    s.name = NULL;
    out->cert = tg_cert_x509(s.cert);
    out->key = tg_key_pkey(s.key);
    int ok = out->chain != NULL && X509_up_ref(out->cert) && EVP_PKEY_up_ref(out->key);
    if (!ok) out->cert = NULL, out->key = NULL;
    if (ok) {
        pthread_mutex_lock(&c->lock);
        c->parsed++;
        pthread_mutex_unlock(&c->lock);
    }
    X509 *below = out->cert;
    for (size_t i = 0; ok && i < s.nchain; i++) {
        X509 *x = chain_member(c, &s.chain[i]);
        if (x == NULL || X509_check_issued(x, below) != X509_V_OK) {
            X509_free(x); /* a stale link: the chain ends below it */
            break;
        }
        if (!sk_X509_push(out->chain, x)) {
            X509_free(x);
            ok = 0;
        }
        below = x;
    }
    tg_served_clear(&s);
    if (!ok) {
        tg_loaded_clear(out);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory loading a certificate");
    }
    return 0;
}

int tg_certcache_get(tg_certcache *c, tg_keyring *kr, int64_t id, tg_loaded *out, tg_err *err)
{
    centry key = {.id = id};
    pthread_mutex_lock(&c->lock);
    centry *e = lh_centry_retrieve(c->map, &key);
    if (e != NULL) {
        unlink_entry(c, e);
        push_front(c, e);
        int rc = loaded_copy(&e->l, out);
        pthread_mutex_unlock(&c->lock);
        return rc == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    pthread_mutex_unlock(&c->lock);

    centry *fresh = calloc(1, sizeof(*fresh));
    if (fresh == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    fresh->id = id;
    int rc = load(c, kr, id, &fresh->l, err);
    if (rc == 0 && loaded_copy(&fresh->l, out) != 0)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        tg_loaded_clear(&fresh->l);
        free(fresh);
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    if (lh_centry_retrieve(c->map, &key) != NULL) { /* another thread was faster */
        pthread_mutex_unlock(&c->lock);
        tg_loaded_clear(&fresh->l);
        free(fresh);
        return 0;
    }
    while (c->count >= c->capacity && c->tail)
        drop(c, c->tail);
    lh_centry_insert(c->map, fresh);
    push_front(c, fresh);
    c->count++;
    pthread_mutex_unlock(&c->lock);
    return 0;
}
