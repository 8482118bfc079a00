/*
 * mint.c — forged leaves for intercepted flows (SPEC I1, I3), and their cache.
 *
 * A signer is one signing CA ready to mint: its certificate and key, the chain a client
 * is sent after the leaf (the CA, then its own stored chain), and the proxy's two leaf
 * keys (EC P-256, and RSA-2048 for clients that offer no ECDSA; made once per proxy and
 * kept across its rebuilds, service.c) with their public keys encoded once (tg_spki: a
 * mint then costs ≈40 µs instead of ≈200 µs).
 *
 * A forged leaf copies the upstream leaf's subject and its DNS and IP names, is valid
 * for the upstream's period clipped inside the CA's, and is signed with SHA-256 whatever
 * the upstream used (tg_cert_issue). An upstream leaf that is out of date (which only the
 * untrusted CA signs for) gets a window of an hour ago to a day ahead instead, so that the
 * client is shown the untrusted issuer rather than nothing. The cache keys it by the SHA-256 of the
 * upstream leaf's DER, the signer's certificate (two rollover copies of a CA share a key, not
 * their validity and chain) and the leaf key type; entries are kept ready to attach
 * (certificate, key and chain referenced), the least recently used dropped beyond the
 * capacity, and an entry whose forged leaf has expired is minted again. One mutex;
 * minting runs outside it (two threads may mint the same leaf once each; the second is
 * kept, the first dropped).
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/lhash.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define MINT_SANS_MAX    2000  /* names copied from one upstream certificate */
#define OUT_OF_DATE_SECS 86400 /* validity of a leaf forged for an out-of-date upstream */

int signer_new(tg_cert *ca, tg_key *key, tg_cert **chain, size_t nchain, const pstats *keys,
               signer **out, tg_err *err)
{
    *out = NULL;
    signer *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        tg_cert_free(ca);
        tg_key_free(key);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    s->ca = ca;
    s->key = key;
    s->keys = keys;
    /* the certificate, not only its key: a rollover copy (same key, another validity) must
     * not be answered with leaves clipped to the old copy's end and sent with it */
    unsigned int idlen = 0;
    int rc = X509_digest(tg_cert_x509(ca), EVP_sha256(), s->id, &idlen) && idlen == 32
                 ? 0
                 : tg_err_set(err, TG_E_INTERNAL, "cannot digest the signing CA");
    if (rc == 0 && (s->chain = sk_X509_new_null()) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; rc == 0 && i <= nchain; i++) {
        X509 *x = tg_cert_x509(i == 0 ? ca : chain[i - 1]);
        if (!X509_up_ref(x) || !sk_X509_push(s->chain, x))
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    if (rc != 0) {
        signer_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void signer_free(signer *s)
{
    if (s == NULL) return;
    tg_cert_free(s->ca);
    tg_key_free(s->key);
    sk_X509_pop_free(s->chain, X509_free);
    free(s);
}

/* ---- the cache ---- */

typedef struct mentry {
    unsigned char k[65]; /* upstream SHA-256, signer id, rsa flag */
    forged f;
    long long not_after;
    TAILQ_ENTRY(mentry) link; /* recency: the head is the most recent */
} mentry;

DEFINE_LHASH_OF(mentry);

struct mintcache {
    pthread_mutex_t lock;
    LHASH_OF(mentry) * map;
    TAILQ_HEAD(mlist, mentry) lru;
    size_t count, capacity;
};

static unsigned long mentry_hash(const mentry *e)
{
    unsigned long h;
    memcpy(&h, e->k, sizeof(h)); /* already a hash */
    return h ^ e->k[64];
}

static int mentry_cmp(const mentry *a, const mentry *b)
{
    return memcmp(a->k, b->k, sizeof(a->k));
}

void forged_clear(forged *f)
{
    X509_free(f->leaf);
    EVP_PKEY_free(f->key);
    sk_X509_pop_free(f->chain, X509_free);
    memset(f, 0, sizeof(*f));
}

int forged_copy(const forged *from, forged *to)
{
    memset(to, 0, sizeof(*to));
    if (!X509_up_ref(from->leaf)) return -1;
    to->leaf = from->leaf;
    if (!EVP_PKEY_up_ref(from->key)) {
        forged_clear(to);
        return -1;
    }
    to->key = from->key;
    to->chain = X509_chain_up_ref(from->chain);
    memcpy(to->sha256, from->sha256, 32);
    if (to->chain == NULL) {
        forged_clear(to);
        return -1;
    }
    return 0;
}

mintcache *mintcache_new(size_t capacity)
{
    mintcache *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->capacity = capacity ? capacity : TG_PROXY_MINT_CACHE;
    c->map = lh_mentry_new(mentry_hash, mentry_cmp);
    if (c->map == NULL) {
        free(c);
        return NULL;
    }
    TAILQ_INIT(&c->lru);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void drop(mintcache *c, mentry *e)
{
    TAILQ_REMOVE(&c->lru, e, link);
    lh_mentry_delete(c->map, e);
    forged_clear(&e->f);
    free(e);
    c->count--;
}

void mintcache_free(mintcache *c)
{
    if (c == NULL) return;
    while (!TAILQ_EMPTY(&c->lru))
        drop(c, TAILQ_FIRST(&c->lru));
    lh_mentry_free(c->map);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The upstream's DNS and IP names, for the forged leaf. */
static int copy_sans(X509 *up, tg_sanlist *out, tg_err *err)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(up, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; rc == 0 && gens && i < sk_GENERAL_NAME_num(gens) && out->n < MINT_SANS_MAX;
         i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int n = ASN1_STRING_length(g->d.dNSName), ok = n > 0 && n < 254;
            for (int j = 0; ok && j < n; j++)
                ok = d[j] > 0x20 && d[j] < 0x7f;
            if (ok) rc = tg_sanlist_add(out, TG_SAN_DNS, (const char *)d, (size_t)n);
        } else if (g->type == GEN_IPADD) {
            char txt[INET6_ADDRSTRLEN];
            int n = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            if ((n == 4 || n == 16) && inet_ntop(n == 4 ? AF_INET : AF_INET6, d, txt, sizeof(txt)))
                rc = tg_sanlist_add(out, TG_SAN_IP, txt, strlen(txt));
        }
    }
    GENERAL_NAMES_free(gens);
    if (rc != 0) tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return rc;
}

static long long asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) return 0;
    return (long long)timegm(&tm);
}

static int mint(const signer *s, X509 *up, int rsa, forged *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    tg_cert *upc = tg_cert_adopt(up), *leaf = NULL;
    tg_sanlist sans = {0};
    if (upc == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = copy_sans(up, &sans, err);
    if (rc == 0) {
        long long nb = asn1_unix(X509_get0_notBefore(up)), na = asn1_unix(X509_get0_notAfter(up));
        long long now = (long long)time(NULL);
        if (na <= now || nb > now) { /* out of date: only the untrusted CA signs it; a
                                      * window that holds now keeps the leaf mintable */
            nb = now - 3600;
            na = now + OUT_OF_DATE_SECS;
        }
        tg_issue_req req = {.subject_from = upc,
                            .sans = &sans,
                            .not_before = nb,
                            .not_after = na,
                            .spki = rsa ? s->keys->spki_rsa : s->keys->spki_ec};
        rc = tg_cert_issue(s->ca, s->key, &req, &leaf, err);
    }
    if (rc == 0) {
        X509 *x = tg_cert_x509(leaf);
        EVP_PKEY *k = tg_key_pkey(rsa ? s->keys->leaf_rsa : s->keys->leaf_ec);
        unsigned int n = 0;
        if (!X509_up_ref(x) || (out->leaf = x, !EVP_PKEY_up_ref(k)) ||
            (out->key = k, (out->chain = X509_chain_up_ref(s->chain)) == NULL) ||
            !X509_digest(x, EVP_sha256(), out->sha256, &n))
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    if (rc != 0) forged_clear(out);
    tg_cert_free(leaf);
    tg_cert_free(upc);
    tg_sanlist_free(&sans);
    return rc;
}

int mint_get(mintcache *c, const signer *s, X509 *upstream, const unsigned char up_sha[32], int rsa,
             forged *out, int *hit, long long *mint_us, tg_err *err)
{
    mentry key;
    memcpy(key.k, up_sha, 32);
    memcpy(key.k + 32, s->id, 32);
    key.k[64] = (unsigned char)(rsa != 0);
    long long now = (long long)time(NULL);
    *hit = 0;
    *mint_us = 0;
    pthread_mutex_lock(&c->lock);
    mentry *e = lh_mentry_retrieve(c->map, &key);
    if (e != NULL && e->not_after <= now) { /* expired: minted again below */
        drop(c, e);
        e = NULL;
    }
    if (e != NULL) {
        TAILQ_REMOVE(&c->lru, e, link);
        TAILQ_INSERT_HEAD(&c->lru, e, link);
        int rc = forged_copy(&e->f, out);
        pthread_mutex_unlock(&c->lock);
        if (rc != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        *hit = 1;
        return 0;
    }
    pthread_mutex_unlock(&c->lock);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mentry *ne = calloc(1, sizeof(*ne));
    if (ne == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = mint(s, upstream, rsa, &ne->f, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *mint_us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
    if (rc == 0 && forged_copy(&ne->f, out) != 0)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        forged_clear(&ne->f);
        free(ne);
        return rc;
    }
    memcpy(ne->k, key.k, sizeof(key.k));
    ne->not_after = asn1_unix(X509_get0_notAfter(ne->f.leaf));
    pthread_mutex_lock(&c->lock);
    mentry *old = lh_mentry_retrieve(c->map, ne);
    if (old != NULL) drop(c, old); /* another thread minted it meanwhile */
    lh_mentry_insert(c->map, ne);
    if (lh_mentry_error(c->map)) { /* not stored: the flow still has its copy */
        pthread_mutex_unlock(&c->lock);
        forged_clear(&ne->f);
        free(ne);
        return 0;
    }
    TAILQ_INSERT_HEAD(&c->lru, ne, link);
    c->count++;
    while (c->count > c->capacity)
        drop(c, TAILQ_LAST(&c->lru, mlist));
    pthread_mutex_unlock(&c->lock);
    return 0;
}
