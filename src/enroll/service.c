/*
 * service.c — the enrollment thread inside serve: it runs each job of enroll_jobs when
 * the job asked to run again, and every job early when the store changes (a new setting,
 * a factory reset, an order placed from the CLI).
 *
 * Invariants:
 *   - the thread has its own handle on the store and touches nothing of serve's workers:
 *     what it changes reaches them through the store, as a CLI command's change does;
 *   - it wakes at least once a second to notice the store's version and serve's stop, and
 *     a job checks x->stopping between network steps, so a stop waits at most for one
 *     exchange's deadline.
 */
#include "enroll_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const enroll_job *const enroll_jobs[] = {&enroll_job_identity, &enroll_job_rollover,
                                         &enroll_job_acme, NULL};

#define NJOBS_MAX 8

struct tg_enroll {
    char *home;
    int quiet;
    pthread_t thread;
    int running;
    volatile int stopping;
    char *http;           /* serve --http, or NULL */
    acme_http *acme_http; /* serve's http-01 listener, when there is one */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *enroll_main(void *arg)
{
    tg_enroll *e = arg;
    tg_err err = {0};
    tg_keyring *kr = NULL;
    if (tg_keyring_open(e->home, &kr, &err) != 0) {
        tg_log(TG_LOG_ERROR, "enrollment: the store could not be opened: %s", err.msg);
        return NULL;
    }
    enroll_ctx x = {.kr = kr, .home = e->home, .quiet = e->quiet, .stopping = &e->stopping};
    long long next[NJOBS_MAX] = {0}; /* 0: run now */
    long long version = tg_keyring_version(kr);
    while (!e->stopping) {
        long long now = (long long)time(NULL);
        for (size_t i = 0; i < NJOBS_MAX && enroll_jobs[i] != NULL && !e->stopping; i++) {
            if (next[i] > now) continue;
            long long n = enroll_jobs[i]->run(&x, now);
            now = (long long)time(NULL);
            next[i] = n > 0 ? n : now + ENROLL_IDLE;
        }
        pthread_mutex_lock(&e->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!e->stopping) pthread_cond_timedwait(&e->cv, &e->mu, &ts);
        pthread_mutex_unlock(&e->mu);
        long long v = tg_keyring_version(kr);
        if (v != version) { /* someone changed the store: every job looks again */
            version = v;
            memset(next, 0, sizeof(next));
        }
    }
    tg_keyring_close(kr);
    return NULL;
}

static int svc_start(void *self, tg_workers *ws, tg_err *err)
{
    tg_enroll *e = self;
    /* http-01 (README "ACME"): on --http, else on port 80 when ACME keeps a certificate
     * with http-01; a default port that cannot be had is a warning, not a failure */
    if (e->http != NULL || acme_wants_http(e->home)) {
        const char *addr = e->http ? e->http : ENROLL_ACME_HTTP_DEFAULT;
        tg_err herr = {0};
        if (acme_http_start(ws, e->home, addr, &e->acme_http, &herr) != 0) {
            if (e->http != NULL) return tg_err_set(err, herr.code, "--http: %s", herr.msg);
            tg_log(TG_LOG_WARNING,
                   "ACME http-01: no listener on %s (%s); serve --http ADDR:PORT "
                   "names another",
                   addr, herr.msg);
        }
    }
    if (enroll_jobs[0] == NULL) return 0;
    if (pthread_create(&e->thread, NULL, enroll_main, e) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "the enrollment thread could not start");
    e->running = 1;
    return 0;
}

static void svc_stop(void *self)
{
    tg_enroll *e = self;
    acme_http_stop(e->acme_http);
    e->acme_http = NULL;
    if (!e->running) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    e->running = 0;
}

static void svc_listeners(void *self,
                          void (*add)(void *ctx, const char *kind, const char *name,
                                      const char *addr),
                          void *ctx)
{
    tg_enroll *e = self;
    const char *a = acme_http_addr(e->acme_http);
    if (a != NULL) add(ctx, "acme-http", "http-01", a);
}

tg_service tg_enroll_service(tg_enroll *e)
{
    return (tg_service){.name = "enroll",
                        .start = svc_start,
                        .stop = svc_stop,
                        .listeners = svc_listeners,
                        .self = e};
}

int tg_enroll_new(const tg_enroll_opts *o, tg_enroll **out, tg_err *err)
{
    tg_enroll *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->home = strdup(o->home)) == NULL) {
        free(e);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    e->quiet = o->quiet;
    if (o->http != NULL && (e->http = strdup(o->http)) == NULL) {
        free(e->home);
        free(e);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    *out = e;
    return 0;
}

void tg_enroll_free(tg_enroll *e)
{
    if (e == NULL) return;
    svc_stop(e);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e->home);
    free(e->http);
    free(e);
}
