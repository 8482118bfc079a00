/*
 * upsess.c — TLS sessions with upstream servers kept for resumption (SPEC P2).
 *
 * A full upstream handshake is the largest part of a flow's cost (certificate parsing
 * and signature checks); a server that issues tickets lets the next flow to it resume
 * instead. Sessions are kept per proxy build, keyed by the SNI sent and the target
 * (host or address, and port): up to UPSESS_PER_KEY per target (flows to one server run
 * side by side, and a server sends more than one ticket), at most UPSESS_MAX targets
 * (least recently stored dropped), none past its own lifetime. A TLS 1.3 ticket is taken out when
 * used (RFC 8446, C.4: a client should not reuse a ticket); a TLS 1.2 session stays. A resumed
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

#define UPSESS_MAX     10000 /* targets */
#define UPSESS_PER_KEY 8     /* sessions kept per target: one per flow running there */

typedef struct sentry {
    char key[UPSESS_KEY_MAX];
    SSL_SESSION *sess[UPSESS_PER_KEY]; /* oldest first */
    int n;
    TAILQ_ENTRY(sentry) link; /* least recently stored first */
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
    for (int i = 0; i < e->n; i++)
        SSL_SESSION_free(e->sess[i]);
    free(e);
    u->n--;
}

/* Takes the i-th session out of e. */
static SSL_SESSION *take(sentry *e, int i)
{
    SSL_SESSION *s = e->sess[i];
    memmove(e->sess + i, e->sess + i + 1, (size_t)(e->n - i - 1) * sizeof(*e->sess));
    e->n--;
    return s;
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
    while (e != NULL && e->n > 0 && s == NULL) {
        int i = e->n - 1; /* the newest */
        if (!live(e->sess[i]))
            SSL_SESSION_free(take(e, i));
        else if (SSL_SESSION_get_protocol_version(e->sess[i]) >= TLS1_3_VERSION)
            s = take(e, i); /* a ticket is used once */
        else if (SSL_SESSION_up_ref(e->sess[i]))
            s = e->sess[i];
        else
            break;
    }
    if (e != NULL && e->n == 0) drop(u, e);
    pthread_mutex_unlock(&u->lock);
    return s;
}

void upsess_put(upsess *u, const char *key, SSL_SESSION *s)
{
    if (u == NULL || strlen(key) >= UPSESS_KEY_MAX || !live(s)) {
        SSL_SESSION_free(s);
        return;
    }
    sentry k;
    snprintf(k.key, sizeof(k.key), "%s", key);
    pthread_mutex_lock(&u->lock);
    sentry *e = lh_sentry_retrieve(u->map, &k);
    if (e == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL) {
            pthread_mutex_unlock(&u->lock);
            SSL_SESSION_free(s);
            return;
        }
        memcpy(e->key, k.key, sizeof(e->key));
        lh_sentry_insert(u->map, e);
        if (lh_sentry_error(u->map)) {
            pthread_mutex_unlock(&u->lock);
            SSL_SESSION_free(s);
            free(e);
            return;
        }
        u->n++;
    } else
        TAILQ_REMOVE(&u->order, e, link);
    TAILQ_INSERT_TAIL(&u->order, e, link);
    if (e->n == UPSESS_PER_KEY) SSL_SESSION_free(take(e, 0)); /* the oldest goes */
    e->sess[e->n++] = s;
    if (u->n > UPSESS_MAX) drop(u, TAILQ_FIRST(&u->order));
    pthread_mutex_unlock(&u->lock);
}
