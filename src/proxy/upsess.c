/*
 * upsess.c — TLS sessions with upstream servers kept for resumption (SPEC P2).
 *
 * A full upstream handshake is the largest part of a flow's cost (certificate parsing
 * and signature checks); a server that issues tickets lets the next flow to it resume
 * instead. Sessions are kept per proxy build, keyed by the SNI sent and the target
 * (host or address, and port), at most UPSESS_MAX (least recently stored dropped) and no
 * longer than the session's own lifetime. A TLS 1.3 ticket is taken out when used (RFC
 * 8446, C.4: a client should not reuse a ticket); a TLS 1.2 session stays. A resumed
 * session keeps the server's chain from its full handshake, and the flow checks that
 * chain again (verdicts, verdict.c) before anything is forged: resumption skips the
 * server's work, not ours.
 */
#include "proxy_int.h"

#include <openssl/lhash.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define UPSESS_MAX 10000

typedef struct sentry {
    char key[UPSESS_KEY_MAX];
    SSL_SESSION *sess;
    TAILQ_ENTRY(sentry) link; /* oldest first */
} sentry;

DEFINE_LHASH_OF(sentry);

struct upsess {
    pthread_mutex_t lock;
    LHASH_OF(sentry) * map;
    TAILQ_HEAD(slist, sentry) order;
    size_t n;
};

static unsigned long sentry_hash(const sentry *e)
{
    return OPENSSL_LH_strhash(e->key);
}

static int sentry_cmp(const sentry *a, const sentry *b)
{
    return strcmp(a->key, b->key);
}

upsess *upsess_new(void)
{
    upsess *u = calloc(1, sizeof(*u));
    if (u == NULL || (u->map = lh_sentry_new(sentry_hash, sentry_cmp)) == NULL) {
        free(u);
        return NULL;
    }
    TAILQ_INIT(&u->order);
    pthread_mutex_init(&u->lock, NULL);
    return u;
}

static void drop(upsess *u, sentry *e)
{
    TAILQ_REMOVE(&u->order, e, link);
    lh_sentry_delete(u->map, e);
    SSL_SESSION_free(e->sess);
    free(e);
    u->n--;
}

void upsess_free(upsess *u)
{
    if (u == NULL) return;
    while (!TAILQ_EMPTY(&u->order))
        drop(u, TAILQ_FIRST(&u->order));
    lh_sentry_free(u->map);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static int live(SSL_SESSION *s)
{
    long long end = (long long)SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s);
    return SSL_SESSION_is_resumable(s) && end > (long long)time(NULL);
}

SSL_SESSION *upsess_get(upsess *u, const char *key)
{
    if (u == NULL || strlen(key) >= UPSESS_KEY_MAX) return NULL;
    sentry k;
    snprintf(k.key, sizeof(k.key), "%s", key);
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&u->lock);
    sentry *e = lh_sentry_retrieve(u->map, &k);
    if (e != NULL && !live(e->sess)) {
        drop(u, e);
        e = NULL;
    }
    if (e != NULL) {
        if (SSL_SESSION_get_protocol_version(e->sess) >= TLS1_3_VERSION) {
            s = e->sess; /* taken: a ticket is used once */
            e->sess = NULL;
            TAILQ_REMOVE(&u->order, e, link);
            lh_sentry_delete(u->map, e);
            free(e);
            u->n--;
        } else if (SSL_SESSION_up_ref(e->sess))
            s = e->sess;
    }
    pthread_mutex_unlock(&u->lock);
    return s;
}

void upsess_put(upsess *u, const char *key, SSL_SESSION *s)
{
    if (u == NULL || strlen(key) >= UPSESS_KEY_MAX || !live(s)) {
        SSL_SESSION_free(s);
        return;
    }
    sentry *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        SSL_SESSION_free(s);
        return;
    }
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->sess = s;
    pthread_mutex_lock(&u->lock);
    sentry *old = lh_sentry_retrieve(u->map, e);
    if (old != NULL) drop(u, old); /* the newest session for a target wins */
    lh_sentry_insert(u->map, e);
    if (lh_sentry_error(u->map)) {
        pthread_mutex_unlock(&u->lock);
        SSL_SESSION_free(s);
        free(e);
        return;
    }
    TAILQ_INSERT_TAIL(&u->order, e, link);
    if (++u->n > UPSESS_MAX) drop(u, TAILQ_FIRST(&u->order));
    pthread_mutex_unlock(&u->lock);
}
