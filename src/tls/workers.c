/*
 * workers.c — the threads of `serve`: one libevent loop each, listeners that come and go
 * while they run, one descriptor budget, signals and the drain (SPEC S1, S3; issue 8).
 *
 * Every listener (serve's own --listen addresses, a client proxy's) is bound once per
 * worker with SO_REUSEPORT, so the kernel spreads connections over the threads and a
 * worker only ever touches its own connections. Listeners added while the loops run are
 * bound on the caller's thread (so a failure is reported to it) and handed to each
 * worker, which wraps its socket on its own thread; closing one is posted to every
 * worker the same way, and the owner's release callback runs when the last worker let
 * go. The owner's accept callback runs on the worker's thread with an admitted
 * connection: that connection now counts against the budget until the owner calls
 * tg_worker_conn_end (and a second descriptor, e.g. towards an upstream, is charged with
 * tg_worker_charge).
 *
 * Budget (README, "tlsgate serve"): the soft open-file limit is raised towards the hard
 * one; what is left after a reserve is the budget in descriptors. At the budget a new
 * connection first asks each registered kind (serve's front, the proxies) to evict its
 * worker's oldest unfinished connection, and is refused when none has one. accept()
 * failing (EMFILE, ENFILE) rests that worker's listeners for ACCEPT_PAUSE_MS and evicts
 * likewise; the first pause of an episode is logged, the rest counted. When the heap holds
 * TRIM_BYTES more free memory than at its low point since the last trim (a flood of
 * handshakes has ended, in one go or in steps), it goes back to the system (malloc_trim).
 * Measured in bytes, not connections: an idle connection costs 0.25 KB, a half-done
 * handshake about 44 KB.
 *
 * Thread 0 also runs the timers (the owners' ticks every TG_SERVE_RELOAD_MS) and the
 * signals: SIGHUP goes to the owners, SIGTERM/SIGINT close every listener and give open
 * connections TG_SERVE_DRAIN_SECS.
 */
#include "tls_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* descriptors kept out of the budget: stdio, store files, signal pipe, ... and per thread
 * its event loop, wake-up eventfd, store connections and listeners */
#define FD_RESERVE_BASE       64
#define FD_RESERVE_PER_THREAD 8
#define CONNS_MIN             16         /* fewer than this: the fd limit is too low to start */
#define ACCEPT_PAUSE_MS       100        /* accept() failed (EMFILE...): listeners rest this long */
#define EPISODE_END_MS        2000       /* that long without a failure ends an fd episode */
#define TRIM_BYTES            (4u << 20) /* free heap grown by this much: malloc_trim */
#define MAX_KINDS             4
#define LISTEN_BACKLOG        1024

/* One listener as one worker holds it. */
typedef struct wlisten {
    tg_listener *l;
    tg_worker *w;
    struct evconnlistener *ev;
    struct wlisten *next;
} wlisten;

struct tg_listener {
    tg_workers *ws;
    char addr[96];
    void (*accept)(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg);
    void (*release)(void *arg);
    void *arg;
    int *fds;           /* one bound socket per worker until that worker wraps it */
    atomic_int holders; /* the workers holding it, and the owner until it closes it */
    atomic_int closing;
};

struct tg_worker {
    tg_workers *ws;
    int index;
    struct event_base *base;
    wlisten *listeners;
    struct event *stop_ev, *resume_ev;
    pthread_t thread;
};

typedef struct kind {
    int (*evict)(tg_worker *w, void *arg);
    void (*close_all)(tg_worker *w, void *arg);
    void *arg;
} kind;

struct tg_workers {
    tg_worker *w;
    int n;
    int quiet;
    int running;
    kind kinds[MAX_KINDS];
    int nkinds;
    long nofile; /* the soft open-file limit */
    int budget;  /* descriptors for connections */
    int per;     /* descriptors a connection of the main kind holds (for the log) */
    atomic_int used, stopping;
    atomic_int fd_episode, cap_episode;
    atomic_llong fd_last_ms;
    atomic_ullong accept_pauses, evicted, refused;
    size_t free_low; /* housekeeping's own (thread 0): free heap's low point since a trim */
    long long drain_deadline;
    const tg_workers_hooks *hooks;
    void (*front_count)(void *arg, tg_serve_counters *out); /* set while serve's front runs */
    void *front_arg;
    struct event *tick_ev, *hup_ev, *term_ev, *int_ev, *drain_ev;
};

/* ---- the log (base/log.c: syslog and/or standard error, levels, rate limit) ---- */

static int log_quiet;

void tg_serve_say(const char *fmt, ...)
{
    if (log_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    tg_logv(TG_LOG_INFO, fmt, ap);
    va_end(ap);
}

/* libevent's own messages (e.g. "Error from accept() call"), at most LOG_BURST lines per
 * LOG_WINDOW_MS, the rest counted: a failure that repeats cannot crowd out the rest of
 * the log (which has its own, wider limit). */
#define LOG_BURST     10
#define LOG_WINDOW_MS 10000
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_libevent_log(int severity, const char *msg)
{
    static long long window;
    static unsigned lines, dropped;
    if (log_quiet || severity < EVENT_LOG_MSG) return;
    pthread_mutex_lock(&log_lock);
    long long t = tg_now_ms();
    if (t - window >= LOG_WINDOW_MS) {
        if (dropped) tg_log(TG_LOG_WARNING, "(%u libevent messages not shown)", dropped);
        window = t;
        lines = dropped = 0;
    }
    if (lines++ < LOG_BURST)
        tg_log(severity >= EVENT_LOG_ERR ? TG_LOG_ERROR : TG_LOG_WARNING, "libevent: %s", msg);
    else
        dropped++;
    pthread_mutex_unlock(&log_lock);
}

/* Small TLS records go out at once: without it a request relayed after a handshake
 * waits for the peer's delayed ACK (~40 ms) whenever nothing else is in flight. */
void tg_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- the budget ---- */

int tg_workers_budget(tg_workers *ws, int per, int nlisten, int max_conns, tg_err *err)
{
    long reserve = FD_RESERVE_BASE + (long)ws->n * (FD_RESERVE_PER_THREAD + (long)nlisten);
    rlim_t want = (rlim_t)max_conns * (rlim_t)per + (rlim_t)reserve;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "cannot read the open-file limit: %s",
                          strerror(errno));
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    ws->nofile = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)(LONG_MAX / 2)
                     ? LONG_MAX / 2
                     : (long)rl.rlim_cur;
    long budget = ws->nofile - reserve;
    if (budget > (long)max_conns * per) budget = (long)max_conns * per;
    if (budget / per < CONNS_MIN)
        return tg_err_set(err, TG_E_IO,
                          "the open-file limit (%ld) is too low for serve with %d threads: it "
                          "needs at least %ld (raise it with ulimit -n)",
                          ws->nofile, ws->n, reserve + (long)CONNS_MIN * per);
    ws->budget = (int)budget;
    ws->per = per;
    return 0;
}

int tg_workers_cap(const tg_workers *ws)
{
    return ws->budget / (ws->per > 0 ? ws->per : 1);
}

long tg_workers_nofile(const tg_workers *ws)
{
    return ws->nofile;
}

int tg_workers_conns(tg_workers *ws)
{
    return atomic_load(&ws->used);
}

void tg_workers_counters(tg_workers *ws, tg_workers_stats *st)
{
    st->used = atomic_load(&ws->used);
    st->cap = tg_workers_cap(ws);
    st->evicted = atomic_load(&ws->evicted);
    st->refused = atomic_load(&ws->refused);
    st->accept_pauses = atomic_load(&ws->accept_pauses);
}

void tg_workers_set_front(tg_workers *ws, void (*count)(void *arg, tg_serve_counters *out),
                          void *arg)
{
    ws->front_count = count;
    ws->front_arg = arg;
}

int tg_serve_counters_get(tg_workers *ws, tg_serve_counters *out)
{
    memset(out, 0, sizeof(*out));
    tg_workers_counters(ws, &out->workers);
    if (ws->front_count == NULL) return -1;
    ws->front_count(ws->front_arg, out);
    return 0;
}

/* Asks the kinds, in order, to let go of one unfinished connection of w. */
static int evict_one(tg_worker *w)
{
    tg_workers *ws = w->ws;
    for (int i = 0; i < ws->nkinds; i++)
        if (ws->kinds[i].evict(w, ws->kinds[i].arg)) {
            atomic_fetch_add(&ws->evicted, 1);
            return 1;
        }
    return 0;
}

/* Takes one descriptor from the budget, evicting at the cap; -1 when nothing could go. */
static int admit(tg_worker *w)
{
    tg_workers *ws = w->ws;
    int n = atomic_fetch_add(&ws->used, 1) + 1;
    if (n > ws->budget) {
        if (!atomic_exchange(&ws->cap_episode, 1))
            tg_serve_say("connection cap %d reached: each new connection evicts the oldest one "
                         "without a finished handshake or request head",
                         tg_workers_cap(ws));
        if (!evict_one(w)) {
            atomic_fetch_sub(&ws->used, 1);
            atomic_fetch_add(&ws->refused, 1);
            return -1;
        }
    }
    return 0;
}

int tg_worker_charge(tg_worker *w)
{
    return admit(w);
}

void tg_worker_conn_end(tg_worker *w, int fds)
{
    atomic_fetch_sub(&w->ws->used, fds);
}

int tg_workers_kind(tg_workers *ws, int (*evict)(tg_worker *w, void *arg),
                    void (*close_all)(tg_worker *w, void *arg), void *arg)
{
    if (ws->nkinds == MAX_KINDS) return -1;
    ws->kinds[ws->nkinds++] = (kind){evict, close_all, arg};
    return 0;
}

/* ---- accepting ---- */

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)evl;
    wlisten *wl = arg;
    tg_workers *ws = wl->w->ws;
    if (atomic_load(&ws->stopping) || atomic_load(&wl->l->closing) || admit(wl->w) != 0) {
        evutil_closesocket(fd);
        return;
    }
    tg_nodelay(fd);
    wl->l->accept(wl->w, fd, sa, salen, wl->l->arg);
}

/* accept() failed (EMFILE, ENFILE, ENOMEM...; libevent retries EINTR/EAGAIN itself): rest
 * this worker's listeners instead of spinning on a socket that stays readable, and free a
 * descriptor by closing the oldest unfinished connection. */
static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    (void)evl;
    wlisten *wl = arg;
    tg_worker *w = wl->w;
    tg_workers *ws = w->ws;
    int e = EVUTIL_SOCKET_ERROR();
    for (wlisten *x = w->listeners; x; x = x->next)
        evconnlistener_disable(x->ev);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(w->resume_ev, &tv);
    unsigned long long pauses = atomic_fetch_add(&ws->accept_pauses, 1) + 1;
    atomic_store(&ws->fd_last_ms, tg_now_ms());
    if (!atomic_exchange(&ws->fd_episode, 1))
        tg_serve_say("accept failed (%s) with %d connections open: pausing accepts for %d ms "
                     "at a time until it succeeds (%llu pauses so far)",
                     evutil_socket_error_to_string(e), atomic_load(&ws->used), ACCEPT_PAUSE_MS,
                     pauses);
    evict_one(w);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_worker *w = arg;
    for (wlisten *x = w->listeners; x; x = x->next)
        evconnlistener_enable(x->ev);
}

/* ---- listeners ---- */

static void listener_unhold(tg_listener *l)
{
    if (atomic_fetch_sub(&l->holders, 1) != 1) return;
    for (int i = 0; i < l->ws->n; i++)
        if (l->fds[i] >= 0) evutil_closesocket(l->fds[i]);
    if (l->release) l->release(l->arg);
    free(l->fds);
    free(l);
}

/* On w's thread: wraps w's socket of l into an evconnlistener. */
static void wrap(tg_worker *w, tg_listener *l)
{
    int fd = l->fds[w->index];
    wlisten *wl = calloc(1, sizeof(*wl));
    if (wl != NULL) {
        wl->l = l;
        wl->w = w;
        wl->ev = evconnlistener_new(w->base, on_accept, wl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    }
    if (wl == NULL || wl->ev == NULL) {
        free(wl);
        tg_serve_say("cannot listen on %s on thread %d: out of memory", l->addr, w->index);
        listener_unhold(l);
        return;
    }
    l->fds[w->index] = -1; /* the evconnlistener closes it */
    evconnlistener_set_error_cb(wl->ev, on_accept_error);
    wl->next = w->listeners;
    w->listeners = wl;
}

static void unwrap(tg_worker *w, tg_listener *l)
{
    for (wlisten **pp = &w->listeners; *pp; pp = &(*pp)->next)
        if ((*pp)->l == l) {
            wlisten *wl = *pp;
            *pp = wl->next;
            evconnlistener_free(wl->ev);
            free(wl);
            listener_unhold(l);
            return;
        }
}

/* Work posted to a worker's loop (thread-safe through event_base_once). */
typedef struct post {
    tg_worker *w;
    tg_listener *l;
    int add;
} post;

static void on_post(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    post *p = arg;
    if (p->add)
        wrap(p->w, p->l);
    else
        unwrap(p->w, p->l);
    free(p);
}

static int send_post(tg_worker *w, tg_listener *l, int add)
{
    post *p = malloc(sizeof(*p));
    if (p == NULL) return -1;
    *p = (post){w, l, add};
    if (event_base_once(w->base, -1, EV_TIMEOUT, on_post, p, NULL) != 0) {
        free(p);
        return -1;
    }
    return 0;
}

/* A bound, listening, non-blocking socket for addr (SO_REUSEPORT: one per worker). */
static int bind_one(const struct sockaddr *sa, int salen, unsigned flags, tg_err *err,
                    const char *what)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) return tg_err_set(err, TG_E_IO, "cannot listen on %s: %s", what, strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (sa->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        int e = errno;
        close(fd);
        return tg_err_set(err, TG_E_IO, "cannot listen on %s: %s", what, strerror(e));
    }
    if ((flags & TG_LISTEN_TRANSPARENT) &&
        setsockopt(fd, sa->sa_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                   sa->sa_family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
                   sizeof(one)) != 0) {
        int e = errno;
        close(fd);
        return tg_err_set(err, TG_E_IO,
                          "cannot listen transparently on %s: %s (TPROXY needs CAP_NET_ADMIN)",
                          what, strerror(e));
    }
    if (bind(fd, sa, (socklen_t)salen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return tg_err_set(err, TG_E_IO, "cannot listen on %s: %s", what, strerror(e));
    }
    return fd;
}

tg_listener *tg_workers_listen(tg_workers *ws, const char *addr, unsigned flags,
                               void (*accept)(tg_worker *w, int fd, const struct sockaddr *peer,
                                              int peerlen, void *arg),
                               void (*release)(void *arg), void *arg, tg_err *err)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
        tg_err_set(err, TG_E_USAGE,
                   "'%s' is not ADDRESS:PORT (for example 127.0.0.1:8443 or [::1]:8443)", addr);
        return NULL;
    }
    tg_listener *l = calloc(1, sizeof(*l));
    int *fds = calloc((size_t)ws->n, sizeof(int));
    if (l == NULL || fds == NULL) {
        free(l);
        free(fds);
        tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return NULL;
    }
    *l = (tg_listener){.ws = ws, .accept = accept, .release = release, .arg = arg, .fds = fds};
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    for (int i = 0; i < ws->n; i++)
        fds[i] = -1;
    for (int i = 0; i < ws->n; i++) {
        int fd = bind_one((struct sockaddr *)&ss, len, flags, err, addr);
        if (fd < 0) {
            for (int j = 0; j < i; j++)
                close(fds[j]);
            free(fds);
            free(l);
            return NULL;
        }
        fds[i] = fd;
    }
    atomic_store(&l->holders, ws->n + 1);
    for (int i = 0; i < ws->n; i++)
        if (!ws->running)
            wrap(&ws->w[i], l);
        else if (send_post(&ws->w[i], l, 1) != 0)
            listener_unhold(l); /* that worker never takes it (out of memory) */
    return l;
}

void tg_listener_close(tg_listener *l)
{
    if (l == NULL) return;
    tg_workers *ws = l->ws;
    atomic_store(&l->closing, 1);
    for (int i = 0; i < ws->n; i++)
        if (!ws->running)
            unwrap(&ws->w[i], l);
        else if (send_post(&ws->w[i], l, 0) != 0)
            tg_serve_say("cannot close %s on thread %d: out of memory", l->addr, i);
    listener_unhold(l); /* the owner's reference */
}

const char *tg_listener_addr(const tg_listener *l)
{
    return l->addr;
}

/* On each worker's thread at SIGTERM: its listeners close (the owners keep theirs
 * referenced; the sockets close with the last holder). */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_worker *w = arg;
    while (w->listeners)
        unwrap(w, w->listeners->l);
}

/* ---- the set of workers ---- */

static void on_hup(evutil_socket_t fd, short what, void *arg);
static void on_term(evutil_socket_t fd, short what, void *arg);

tg_workers *tg_workers_new(int threads, int quiet, tg_err *err)
{
    evthread_use_pthreads();
    log_quiet = quiet;
    event_set_log_callback(on_libevent_log);
    signal(SIGPIPE, SIG_IGN);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = threads > 0 ? threads : (int)(cores > 0 ? cores : 1);
    if (n > 64) n = 64;
    tg_workers *ws = calloc(1, sizeof(*ws));
    if (ws == NULL || (ws->w = calloc((size_t)n, sizeof(*ws->w))) == NULL) {
        free(ws);
        tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return NULL;
    }
    ws->quiet = quiet;
    ws->per = 1;
    ws->free_low = SIZE_MAX;
    static const tg_workers_hooks none = {0};
    ws->hooks = &none;
    for (int i = 0; i < n; i++) {
        tg_worker *w = &ws->w[i];
        w->ws = ws;
        w->index = i;
        ws->n = i + 1;
        if ((w->base = event_base_new()) == NULL ||
            (w->stop_ev = event_new(w->base, -1, 0, on_stop, w)) == NULL ||
            (w->resume_ev = evtimer_new(w->base, on_resume, w)) == NULL) {
            tg_workers_free(ws);
            tg_err_set(err, TG_E_INTERNAL, "cannot create an event loop");
            return NULL;
        }
    }
    /* signals are ours from now on, before any listener is bound: a SIGHUP or SIGTERM
     * that arrives while serve starts is handled when the loops run, never fatal */
    struct event_base *b0 = ws->w[0].base;
    ws->hup_ev = evsignal_new(b0, SIGHUP, on_hup, ws);
    ws->term_ev = evsignal_new(b0, SIGTERM, on_term, ws);
    ws->int_ev = evsignal_new(b0, SIGINT, on_term, ws);
    if (!ws->hup_ev || !ws->term_ev || !ws->int_ev || event_add(ws->hup_ev, NULL) ||
        event_add(ws->term_ev, NULL) || event_add(ws->int_ev, NULL)) {
        tg_workers_free(ws);
        tg_err_set(err, TG_E_INTERNAL, "cannot set up signals");
        return NULL;
    }
    return ws;
}

int tg_workers_n(const tg_workers *ws)
{
    return ws->n;
}

tg_worker *tg_workers_at(tg_workers *ws, int i)
{
    return &ws->w[i];
}

struct event_base *tg_worker_base(const tg_worker *w)
{
    return w->base;
}

int tg_worker_index(const tg_worker *w)
{
    return w->index;
}

int tg_workers_stopping(tg_workers *ws)
{
    return atomic_load(&ws->stopping);
}

/* Ends the fd and cap episodes (one line each) and gives freed heap back after a flood. */
static void housekeeping(tg_workers *ws)
{
    int n = atomic_load(&ws->used);
    if (atomic_load(&ws->fd_episode) &&
        tg_now_ms() - atomic_load(&ws->fd_last_ms) > EPISODE_END_MS &&
        atomic_exchange(&ws->fd_episode, 0))
        tg_serve_say("accepting again (%llu pauses at the descriptor limit so far)",
                     (unsigned long long)atomic_load(&ws->accept_pauses));
    if (atomic_load(&ws->cap_episode) && n < ws->budget - ws->budget / 10 &&
        atomic_exchange(&ws->cap_episode, 0))
        tg_serve_say("below the connection cap again (%llu evicted, %llu refused so far)",
                     (unsigned long long)atomic_load(&ws->evicted),
                     (unsigned long long)atomic_load(&ws->refused));
    size_t free_now = mallinfo2().fordblks;
    if (free_now < ws->free_low) ws->free_low = free_now;
    if (free_now - ws->free_low >= TRIM_BYTES) {
        malloc_trim(0);
        ws->free_low = mallinfo2().fordblks;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_workers *ws = arg;
    housekeeping(ws);
    tg_log_tick();
    if (ws->hooks->tick) ws->hooks->tick(ws->hooks->arg);
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_workers *ws = arg;
    if (ws->hooks->hup) ws->hooks->hup(ws->hooks->arg);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_workers *ws = arg;
    if (atomic_load(&ws->used) > 0 && tg_now_ms() < ws->drain_deadline) return;
    if (ws->hooks->stopped) ws->hooks->stopped(ws->hooks->arg);
    for (int i = 0; i < ws->n; i++)
        event_base_loopexit(ws->w[i].base, NULL);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_workers *ws = arg;
    if (atomic_exchange(&ws->stopping, 1)) return;
    tg_serve_say("stopping: no new connections; draining %d", atomic_load(&ws->used));
    for (int i = 0; i < ws->n; i++)
        event_active(ws->w[i].stop_ev, EV_READ, 0);
    ws->drain_deadline = tg_now_ms() + TG_SERVE_DRAIN_SECS * 1000;
    struct timeval tv = {0, 100000};
    event_add(ws->drain_ev, &tv);
}

static void *worker_main(void *arg)
{
    tg_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int tg_workers_run(tg_workers *ws, const tg_workers_hooks *hooks, tg_err *err)
{
    int rc = 0;
    ws->hooks = hooks;
    struct event_base *b0 = ws->w[0].base;
    ws->tick_ev = event_new(b0, -1, EV_PERSIST, on_tick, ws);
    ws->drain_ev = event_new(b0, -1, EV_PERSIST, on_drain, ws);
    struct timeval tick_tv = {0, TG_SERVE_RELOAD_MS * 1000};
    if (!ws->tick_ev || !ws->drain_ev || event_add(ws->tick_ev, &tick_tv))
        return tg_err_set(err, TG_E_INTERNAL, "cannot set up timers");
    ws->running = 1;
    int started = 1;
    for (int i = 1; i < ws->n; i++, started++)
        if (pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]) != 0) {
            rc = tg_err_set(err, TG_E_INTERNAL, "cannot start a thread");
            break;
        }
    if (rc != 0) { /* stop the ones started; the loop below drains and exits */
        for (int i = started; i < ws->n; i++)
            event_base_loopexit(ws->w[i].base, NULL);
        on_term(-1, 0, ws);
    }
    event_base_dispatch(b0);
    for (int i = 1; i < started; i++)
        pthread_join(ws->w[i].thread, NULL);
    ws->running = 0;
    /* past the drain time: what is still open is closed, not leaked */
    for (int i = 0; i < ws->n; i++)
        for (int k = 0; k < ws->nkinds; k++)
            if (ws->kinds[k].close_all) ws->kinds[k].close_all(&ws->w[i], ws->kinds[k].arg);
    return rc;
}

void tg_workers_free(tg_workers *ws)
{
    if (ws == NULL) return;
    for (int i = 0; i < ws->n; i++) {
        tg_worker *w = &ws->w[i];
        while (w->listeners)
            unwrap(w, w->listeners->l);
    }
    struct event *evs[] = {ws->tick_ev, ws->hup_ev, ws->term_ev, ws->int_ev, ws->drain_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i]) event_free(evs[i]);
    for (int i = 0; i < ws->n; i++) {
        tg_worker *w = &ws->w[i];
        if (w->stop_ev) event_free(w->stop_ev);
        if (w->resume_ev) event_free(w->resume_ev);
        if (w->base) event_base_free(w->base);
    }
    free(ws->w);
    free(ws);
}
