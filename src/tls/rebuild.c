/*
 * rebuild.c — the name index rebuilt on a thread of its own and swapped in.
 *
 * serve notices other processes' commits by polling the store (PRAGMA data_version on
 * the `watch` connection, from a worker's timer: cheap). Building a new index reads every
 * servable certificate (≈200 ms for 100,000), so it runs here, on the builder thread with
 * its own store connection, and no worker's handshakes wait for it. Requests coalesce: a
 * burst of commits while a build runs gives one more build, not one per commit. The swap
 * happens under the selector's lock; the certificate cache is emptied after it (an id may
 * have been reused). A build that fails keeps the previous index and is retried after
 * RETRY_MS or at the next change.
 *
 * For tests only: $TLSGATE_TEST_REBUILD_DELAY_MS (read once at start) makes every build
 * after the first one last that much longer, so that a test can show handshakes going on
 * during a build (tests/e2e/test_serve_reload.py).
 *
 * The same thread runs serve's periodic check (expiry.c: chain statuses and expiry, once
 * at start and then every --check-every seconds) between builds, with the build
 * connection.
 *
 * Invariants: only the builder thread writes sel->index after start; `watch` is used only
 * by the thread that calls tg_rebuilder_poll; the build connection only by the builder.
 */
#include "tls_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RETRY_MS 5000 /* after a failed build */

struct tg_rebuilder {
    tg_selector *sel;
    tg_keyring *watch, *build;
    void (*log)(void *arg, const char *line);
    void *logarg;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int wanted, stop;      /* under lock */
    const char *why;       /* under lock: a static string */
    long long requested;   /* the store version last asked for (poller's thread) */
    atomic_llong retry_at; /* ms; 0: no retry pending */
    long test_delay_ms;    /* $TLSGATE_TEST_REBUILD_DELAY_MS */
    int check_secs;        /* the expiry check's period; 0: none */
};

static void logf_(tg_rebuilder *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(tg_rebuilder *r, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (r->log) r->log(r->logarg, line);
}

/* Builds from kr and swaps the result in; the previous index stays on failure. */
static int build(tg_rebuilder *r, tg_keyring *kr, const char *why)
{
    long long t0 = tg_now_ms();
    tg_index *idx = NULL;
    tg_err err = {0};
    if (tg_index_build(kr, &idx, &err) != 0) {
        logf_(r, "reload failed, still serving the previous certificates: %s", err.msg);
        atomic_store(&r->retry_at, tg_now_ms() + RETRY_MS);
        return -1;
    }
    pthread_mutex_lock(&r->sel->lock);
    tg_index *old = r->sel->index;
    r->sel->index = idx;
    pthread_mutex_unlock(&r->sel->lock);
    tg_certcache_flush(r->sel->cache);
    tg_index_free(old);
    atomic_store(&r->retry_at, 0);
    size_t names, certs = tg_index_size(idx, &names);
    logf_(r, "%s: %zu certificates, %zu names indexed in %lld ms", why, certs, names,
          tg_now_ms() - t0);
    return 0;
}

/* Under r->lock: waits for a request, a stop or the next check (CLOCK_MONOTONIC). */
static void wait_until(tg_rebuilder *r, const struct timespec *due)
{
    while (!r->wanted && !r->stop) {
        if (due == NULL) {
            pthread_cond_wait(&r->wake, &r->lock);
            continue;
        }
        if (pthread_cond_timedwait(&r->wake, &r->lock, due) != 0) return; /* time for a check */
    }
}

static void *builder_main(void *arg)
{
    tg_rebuilder *r = arg;
    struct timespec due;
    unsigned long checks = 0;             /* the first (at start) does not refresh */
    clock_gettime(CLOCK_MONOTONIC, &due); /* the first check: now */
    pthread_mutex_lock(&r->lock);
    for (;;) {
        wait_until(r, r->check_secs > 0 ? &due : NULL);
        if (r->stop) break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (r->check_secs > 0 &&
            (now.tv_sec > due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec))) {
            pthread_mutex_unlock(&r->lock);
            /* this thread is the index's only writer: it reads it without the lock */
            tg_expiry_check(r->build, r->sel->index, (long long)time(NULL), r->check_secs,
                            checks++ > 0);
            due = now;
            due.tv_sec += r->check_secs;
            pthread_mutex_lock(&r->lock);
            continue;
        }
        if (!r->wanted) continue;
        r->wanted = 0;
        const char *why = r->why;
        pthread_mutex_unlock(&r->lock);
        if (r->test_delay_ms > 0) {
            struct timespec d = {r->test_delay_ms / 1000, (r->test_delay_ms % 1000) * 1000000};
            nanosleep(&d, NULL);
        }
        build(r, r->build, why);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

tg_rebuilder *tg_rebuilder_new(const char *home, tg_selector *sel, int check_secs,
                               void (*log)(void *arg, const char *line), void *logarg, tg_err *err)
{
    tg_rebuilder *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return NULL;
    }
    r->sel = sel;
    r->check_secs = check_secs;
    const char *delay = getenv("TLSGATE_TEST_REBUILD_DELAY_MS");
    r->test_delay_ms = delay ? strtol(delay, NULL, 10) : 0;
    if (r->test_delay_ms > 60000) r->test_delay_ms = 60000;
    r->log = log;
    r->logarg = logarg;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (tg_keyring_open(home, &r->watch, err) != 0 || tg_keyring_open(home, &r->build, err) != 0) {
        tg_rebuilder_free(r);
        return NULL;
    }
    /* the first index, here and now: serve does not listen before it has one */
    r->requested = tg_keyring_version(r->watch);
    if (build(r, r->watch, "started") != 0) {
        tg_err_set(err, TG_E_STORE, "cannot read the certificates from the store");
        tg_rebuilder_free(r);
        return NULL;
    }
    if (pthread_create(&r->thread, NULL, builder_main, r) != 0) {
        tg_err_set(err, TG_E_INTERNAL, "cannot start the index builder thread");
        tg_rebuilder_free(r);
        return NULL;
    }
    r->started = 1;
    return r;
}

void tg_rebuilder_request(tg_rebuilder *r, const char *why)
{
    pthread_mutex_lock(&r->lock);
    r->wanted = 1;
    r->why = why;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void tg_rebuilder_poll(tg_rebuilder *r)
{
    long long v = tg_keyring_version(r->watch);
    long long retry = atomic_load(&r->retry_at);
    if (v != r->requested) {
        r->requested = v; /* the build reads at least this version: it starts later */
        tg_rebuilder_request(r, "store changed");
    } else if (retry != 0 && tg_now_ms() >= retry) {
        atomic_store(&r->retry_at, 0);
        tg_rebuilder_request(r, "retry");
    }
}

void tg_rebuilder_free(tg_rebuilder *r)
{
    if (r == NULL) return;
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->stop = 1;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    tg_keyring_close(r->watch);
    tg_keyring_close(r->build);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
