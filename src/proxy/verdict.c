/*
 * verdict.c — upstream verdicts remembered (SPEC I4, P2).
 *
 * Checking an upstream chain (x509's verifier: path building, signatures, names, the
 * proxy's --min-key-bits) costs more than the rest of a flow's work together, and the
 * same server sends the same chain to every client. A proxy's build (conf.c) therefore
 * keeps the verdicts it reached, keyed by the SHA-256 of the chain's certificates' own
 * SHA-256 (leaf first) and the name checked, for VERDICT_SECS or until the leaf expires,
 * whichever is sooner; at most VERDICT_MAX, the oldest dropped first. A change of the
 * proxy or its trust store builds it anew, with no verdicts. One mutex.
 */
#include "proxy_int.h"

#include <openssl/lhash.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define VERDICT_SECS 300
#define VERDICT_MAX  10000

typedef struct ventry {
    unsigned char key[32];
    int valid;
    long long until;
    char why[TG_ERR_MAX];
    TAILQ_ENTRY(ventry) link; /* oldest first */
} ventry;

DEFINE_LHASH_OF(ventry);

struct verdicts {
    pthread_mutex_t lock;
    LHASH_OF(ventry) * map;
    TAILQ_HEAD(vlist, ventry) order;
    size_t n;
};

static unsigned long ventry_hash(const ventry *e)
{
    unsigned long h;
    memcpy(&h, e->key, sizeof(h));
    return h;
}

static int ventry_cmp(const ventry *a, const ventry *b)
{
    return memcmp(a->key, b->key, sizeof(a->key));
}

verdicts *verdicts_new(void)
{
    verdicts *v = calloc(1, sizeof(*v));
    if (v == NULL || (v->map = lh_ventry_new(ventry_hash, ventry_cmp)) == NULL) {
        free(v);
        return NULL;
    }
    TAILQ_INIT(&v->order);
    pthread_mutex_init(&v->lock, NULL);
    return v;
}

void verdicts_free(verdicts *v)
{
    if (v == NULL) return;
    ventry *e;
    while ((e = TAILQ_FIRST(&v->order)) != NULL) {
        TAILQ_REMOVE(&v->order, e, link);
        free(e);
    }
    lh_ventry_free(v->map);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

int verdict_key(STACK_OF(X509) * chain, const char *host, unsigned char key[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (int i = 0; ok && i < sk_X509_num(chain); i++) {
        unsigned char d[32];
        unsigned int n = 0;
        ok =
            X509_digest(sk_X509_value(chain, i), EVP_sha256(), d, &n) && EVP_DigestUpdate(md, d, n);
    }
    unsigned int n = 0;
    ok = ok && EVP_DigestUpdate(md, "\0", 1) &&
         EVP_DigestUpdate(md, host ? host : "", host ? strlen(host) : 0) &&
         EVP_DigestFinal_ex(md, key, &n);
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

int verdict_get(verdicts *v, const unsigned char key[32], int *valid, char *why, size_t size)
{
    if (v == NULL) return 0;
    ventry k;
    memcpy(k.key, key, 32);
    pthread_mutex_lock(&v->lock);
    ventry *e = lh_ventry_retrieve(v->map, &k);
    int hit = e != NULL && e->until > (long long)time(NULL);
    if (hit) {
        *valid = e->valid;
        snprintf(why, size, "%s", e->why);
    }
    pthread_mutex_unlock(&v->lock);
    return hit;
}

void verdict_put(verdicts *v, const unsigned char key[32], int valid, const char *why,
                 long long leaf_not_after)
{
    if (v == NULL) return;
    ventry *e = calloc(1, sizeof(*e));
    if (e == NULL) return;
    memcpy(e->key, key, 32);
    e->valid = valid;
    snprintf(e->why, sizeof(e->why), "%s", why);
    long long now = (long long)time(NULL);
    e->until = now + VERDICT_SECS;
    if (leaf_not_after > now && leaf_not_after < e->until) e->until = leaf_not_after;
    pthread_mutex_lock(&v->lock);
    ventry *old = lh_ventry_retrieve(v->map, e);
    if (old != NULL) { /* another flow checked it meanwhile: keep the first, drop ours */
        pthread_mutex_unlock(&v->lock);
        free(e);
        return;
    }
    lh_ventry_insert(v->map, e);
    if (lh_ventry_error(v->map)) {
        pthread_mutex_unlock(&v->lock);
        free(e);
        return;
    }
    TAILQ_INSERT_TAIL(&v->order, e, link);
    if (++v->n > VERDICT_MAX) { /* the oldest goes, expired or not */
        ventry *o = TAILQ_FIRST(&v->order);
        TAILQ_REMOVE(&v->order, o, link);
        lh_ventry_delete(v->map, o);
        free(o);
        v->n--;
    }
    pthread_mutex_unlock(&v->lock);
}
