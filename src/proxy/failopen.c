/*
 * failopen.c — fail-open for pinned applications (issue 9, item 6).
 *
 * An application that pins its server's certificate rejects every forged leaf, and
 * keeps retrying. With --fail-open SECS a proxy remembers the host (SNI, else the
 * CONNECT host or destination address) whose client failed the handshake on a forged
 * leaf, and passes that host's flows through uninspected for SECS seconds. The set is
 * bounded (FAILOPEN_MAX hosts per proxy, least recently added dropped) and guarded by
 * one mutex: it is consulted once per flow, after the ClientHello.
 */
#include "proxy_int.h"

#include <openssl/lhash.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

typedef struct fentry {
    char host[256];
    long long until;
    TAILQ_ENTRY(fentry) link; /* oldest first */
} fentry;

DEFINE_LHASH_OF(fentry);

struct failopen {
    pthread_mutex_t lock;
    LHASH_OF(fentry) * map;
    TAILQ_HEAD(flist, fentry) order;
    size_t n;
};

static unsigned long fentry_hash(const fentry *e)
{
    return OPENSSL_LH_strhash(e->host);
}

static int fentry_cmp(const fentry *a, const fentry *b)
{
    return strcmp(a->host, b->host);
}

failopen *failopen_new(void)
{
    failopen *fo = calloc(1, sizeof(*fo));
    if (fo == NULL) return NULL;
    if ((fo->map = lh_fentry_new(fentry_hash, fentry_cmp)) == NULL) {
        free(fo);
        return NULL;
    }
    TAILQ_INIT(&fo->order);
    pthread_mutex_init(&fo->lock, NULL);
    return fo;
}

static void drop(failopen *fo, fentry *e)
{
    TAILQ_REMOVE(&fo->order, e, link);
    lh_fentry_delete(fo->map, e);
    free(e);
    fo->n--;
}

void failopen_free(failopen *fo)
{
    if (fo == NULL) return;
    while (!TAILQ_EMPTY(&fo->order))
        drop(fo, TAILQ_FIRST(&fo->order));
    lh_fentry_free(fo->map);
    pthread_mutex_destroy(&fo->lock);
    free(fo);
}

int failopen_add(failopen *fo, const char *host, int secs)
{
    if (fo == NULL || host[0] == '\0' || strlen(host) >= 256) return 0;
    fentry key;
    snprintf(key.host, sizeof(key.host), "%s", host);
    long long now = (long long)time(NULL);
    pthread_mutex_lock(&fo->lock);
    fentry *e = lh_fentry_retrieve(fo->map, &key);
    int fresh = e == NULL || e->until <= now;
    if (e != NULL) {
        TAILQ_REMOVE(&fo->order, e, link);
    } else if ((e = calloc(1, sizeof(*e))) != NULL) {
        memcpy(e->host, key.host, sizeof(e->host));
        lh_fentry_insert(fo->map, e);
        if (lh_fentry_error(fo->map)) {
            free(e);
            e = NULL;
        } else
            fo->n++;
    }
    if (e != NULL) {
        e->until = now + secs;
        TAILQ_INSERT_TAIL(&fo->order, e, link);
    }
    while (fo->n > FAILOPEN_MAX)
        drop(fo, TAILQ_FIRST(&fo->order));
    pthread_mutex_unlock(&fo->lock);
    return e != NULL && fresh;
}

int failopen_has(failopen *fo, const char *host)
{
    if (fo == NULL || host[0] == '\0' || strlen(host) >= 256) return 0;
    fentry key;
    snprintf(key.host, sizeof(key.host), "%s", host);
    pthread_mutex_lock(&fo->lock);
    fentry *e = lh_fentry_retrieve(fo->map, &key);
    int on = e != NULL && e->until > (long long)time(NULL);
    if (e != NULL && !on) drop(fo, e);
    pthread_mutex_unlock(&fo->lock);
    return on;
}
