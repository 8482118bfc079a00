/*
 * server.c — "tlsgate serve": listeners, connections and live reload (SPEC S1–S3).
 *
 * One libevent loop per thread; each thread binds its own socket to every --listen
 * address (SO_REUSEPORT) and has its own keyring connection for certificate loads.
 * Thread 0 also runs the timers: every TG_SERVE_RELOAD_MS it asks the store whether
 * another process committed, and if so has a new name index built on the builder's
 * thread (rebuild.c), swapped in and the certificate cache emptied (an id may have been
 * reused); connections already open keep the certificate they were given. SIGHUP
 * forces that reload; SIGTERM/SIGINT stop accepting and give open connections
 * TG_SERVE_DRAIN_SECS.
 *
 * After the handshake a connection is either piped to --backend (a TLS-terminating
 * TCP proxy, with backpressure: pipe.c) or answered by the built-in HTTP responder
 * (responder.c: GET /healthz, and a status page naming the subject of the certificate
 * served). This file keeps the connections' lifecycle: accept, deadlines, eviction.
 *
 * Abuse limits (README, "tlsgate serve"). A connection costs one small struct until its
 * first bytes arrive; only then are the SSL object and its bufferevent built. Each
 * worker keeps its connections in four lists: `pending` (no handshake yet, ordered by
 * accept time, deadline accept + TG_SERVE_HANDSHAKE_SECS), `heads` (the built-in
 * responder waiting for a request head, ordered by handshake time, deadline handshake +
 * TG_SERVE_REQUEST_SECS), `linger` (an error answer sent, the client's remaining bytes
 * dropped until LINGER_SECS after it) and `open` (piped, or writing a last answer:
 * inactivity timeouts). Deadlines are constant offsets per list, so each list is ordered
 * by deadline and a single timer per worker, armed for the earliest head, closes what is
 * past due. The connection cap follows from the open-file limit (raised towards the
 * hard limit at start); at the cap a new connection evicts a lingering connection of its
 * worker, else the oldest entry of `pending` or `heads`, and is refused only when there
 * is none. accept() failing (EMFILE,
 * ENFILE) pauses that worker's listeners for ACCEPT_PAUSE_MS and evicts the oldest
 * unfinished connection; the first pause of an episode is logged, the rest counted.
 * When the number of connections falls far from its peak, freed heap is returned to the
 * system (malloc_trim). Invariant: every conn is in exactly one list of its own worker,
 * and only that worker's thread touches the list.
 */
#include "tls_int.h"

#include <errno.h>
#include <limits.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* descriptors kept out of the connection cap: stdio, store files, signal pipe, ... and
 * per thread its event loop, wake-up eventfd, store connection and listeners */
#define FD_RESERVE_BASE       64
#define FD_RESERVE_PER_THREAD 8
#define CONNS_MIN             16   /* fewer than this: the fd limit is too low to start */
#define ACCEPT_PAUSE_MS       100  /* accept() failed (EMFILE...): listeners rest this long */
#define EPISODE_END_MS        2000 /* that long without a failure ends an fd episode */
#define TRIM_DROP             256  /* connections gone since the peak before malloc_trim */
/* After an error answer the client may still be sending (a head over the limit): its
 * bytes are read and dropped for at most LINGER_SECS (a deadline) and LINGER_MAX bytes,
 * so that closing with unread input does not reset the connection under the answer. */
#define LINGER_SECS 2
#define LINGER_MAX  (256 * 1024)

typedef struct server server;

typedef struct conn conn;

/* A list of connections, oldest first (see the head comment). */
typedef struct connq {
    conn *head, *tail;
} connq;

typedef struct worker {
    server *srv;
    connq pending, heads, linger, open; /* every conn of this thread is in exactly one */
    struct event_base *base;
    tg_keyring *kr;
    struct evconnlistener **listeners;
    size_t nlisteners;
    struct event *stop_ev, *sweep_ev, *resume_ev;
    long long sweep_at; /* when sweep_ev fires (0: not armed) */
    pthread_t thread;
} worker;

struct server {
    const tg_serve_opts *o;
    tg_selector sel;
    tg_tlsctx *tls;
    worker *workers;
    int nworkers;
    struct sockaddr_storage backend;
    int backend_len;
    atomic_int conns;
    atomic_int stopping;
    int cap;         /* concurrent connections, from the open-file limit */
    long nofile;     /* the soft open-file limit serve runs under */
    atomic_int peak; /* most connections since the last trim */
    atomic_int fd_episode, cap_episode;
    atomic_llong fd_last_ms;
    atomic_ullong accept_pauses, evicted, refused, late_handshakes, late_heads;
    long long drain_deadline;
    tg_rebuilder *rebuild; /* the name index, rebuilt off the workers (rebuild.c) */
    struct event *reload_ev, *hup_ev, *term_ev, *int_ev, *ticket_ev, *drain_ev;
};

struct conn {
    worker *w;
    conn *prev, *next;
    connq *q;                /* the list it is in */
    long long accepted, due; /* ms (monotonic); due: the deadline in pending/heads/linger */
    evutil_socket_t fd;      /* until the first bytes: the socket, watched by wait_ev */
    struct event *wait_ev;
    struct bufferevent *tls; /* the client, from the first bytes until piped */
    size_t lingered;         /* bytes dropped after an error answer */
    tg_pipe *pipe;           /* with --backend, after the handshake */
};

static void say(const server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const server *s, const char *fmt, ...)
{
    if (s->o->quiet) return;
    char line[512];
    int n = snprintf(line, sizeof(line), "tlsgate serve: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one write per line: threads do not interleave */
}

/* libevent's own messages (e.g. "Error from accept() call"), at most LOG_BURST lines per
 * LOG_WINDOW_MS, the rest counted: a failure that repeats cannot fill the disk. */
#define LOG_BURST     10
#define LOG_WINDOW_MS 10000
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_quiet;
static long long now_ms(void);

static void on_libevent_log(int severity, const char *msg)
{
    static long long window;
    static unsigned lines, dropped;
    if (log_quiet || severity < EVENT_LOG_MSG) return;
    pthread_mutex_lock(&log_lock);
    long long t = now_ms();
    if (t - window >= LOG_WINDOW_MS) {
        if (dropped) fprintf(stderr, "tlsgate serve: (%u libevent messages not shown)\n", dropped);
        window = t;
        lines = dropped = 0;
    }
    if (lines++ < LOG_BURST)
        fprintf(stderr, "tlsgate serve: libevent: %s\n", msg);
    else
        dropped++;
    pthread_mutex_unlock(&log_lock);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connection lists and deadlines ---- */

static void q_remove(conn *c)
{
    connq *q = c->q;
    if (q == NULL) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        q->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        q->tail = c->prev;
    c->prev = c->next = NULL;
    c->q = NULL;
}

static void arm_sweep(worker *w, long long due)
{
    long long t = now_ms();
    if (w->sweep_at != 0 && w->sweep_at <= due) return; /* armed for earlier */
    long long d = due > t ? due - t : 0;
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    if (evtimer_add(w->sweep_ev, &tv) == 0) w->sweep_at = due;
}

/* Appends c to q (from whatever list it was in); in a list but `open` it is due at
 * now + secs, which is never earlier than the entries before it. */
static void q_push(worker *w, connq *q, conn *c, int secs)
{
    q_remove(c);
    c->q = q;
    c->prev = q->tail;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    if (q != &w->open) {
        c->due = now_ms() + (long long)secs * 1000;
        arm_sweep(w, c->due);
    }
}

static void conn_free(conn *c)
{
    q_remove(c);
    if (c->wait_ev) event_free(c->wait_ev);
    if (c->fd >= 0) evutil_closesocket(c->fd);
    if (c->tls) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->tls);
        if (ssl) SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN); /* no close_notify wait */
        bufferevent_free(c->tls);
    }
    tg_pipe_free(c->pipe);
    atomic_fetch_sub(&c->w->srv->conns, 1);
    free(c);
}

/* Closes what is past its deadline; re-arms for the next one. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    server *s = w->srv;
    long long t = now_ms();
    w->sweep_at = 0;
    while (w->pending.head && w->pending.head->due <= t) {
        atomic_fetch_add(&s->late_handshakes, 1);
        conn_free(w->pending.head);
    }
    while (w->heads.head && w->heads.head->due <= t) {
        atomic_fetch_add(&s->late_heads, 1);
        ERR_clear_error();
        conn_free(w->heads.head);
    }
    while (w->linger.head && w->linger.head->due <= t) {
        ERR_clear_error();
        conn_free(w->linger.head);
    }
    if (w->pending.head) arm_sweep(w, w->pending.head->due);
    if (w->heads.head) arm_sweep(w, w->heads.head->due);
    if (w->linger.head) arm_sweep(w, w->linger.head->due);
}

/* Closes this worker's oldest connection without a handshake or a request head yet;
 * 0 if it has none. */
static int evict_oldest(worker *w)
{
    if (w->linger.head) { /* answered already: the cheapest to let go */
        conn_free(w->linger.head);
        return 1;
    }
    conn *a = w->pending.head, *b = w->heads.head;
    conn *victim = a && (!b || a->accepted <= b->accepted) ? a : b;
    if (victim == NULL) return 0;
    atomic_fetch_add(&w->srv->evicted, 1);
    conn_free(victim);
    return 1;
}

static void close_when_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_free(arg);
}

/* While a last answer drains: a peer that errs or stops reading (timeout) ends it too. */
static void close_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    conn_free(arg);
}

static const struct timeval *secs(int s)
{
    static __thread struct timeval tv;
    tv.tv_sec = s;
    tv.tv_usec = 0;
    return &tv;
}

/* ---- the built-in responder (responder.c decides, the connection writes) ---- */

static void linger_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->lingered += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->lingered > LINGER_MAX) conn_free(c);
}

/* The error answer is out: say so (no more writes), then drop what still comes. */
static void linger_when_written(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    q_push(c->w, &c->w->linger, c, LINGER_SECS);
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    bufferevent_setcb(bev, linger_read, NULL, close_on_event, c);
    bufferevent_enable(bev, EV_READ);
    linger_read(bev, c); /* what was read with the head */
}

static void http_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    tg_http_answer a;
    if (!tg_responder_answer(bufferevent_get_input(bev), bufferevent_openssl_get_ssl(bev), &a))
        return;
    /* the head is in: no deadline now; the last answer gets the inactivity timeout */
    q_push(c->w, &c->w->open, c, 0);
    bufferevent_set_timeouts(c->tls, secs(TG_SERVE_IDLE_SECS), secs(TG_SERVE_IDLE_SECS));
    tg_responder_write(bufferevent_get_output(c->tls), &a);
    bufferevent_disable(c->tls, EV_READ);
    bufferevent_setcb(c->tls, NULL, a.status >= 400 ? linger_when_written : close_when_written,
                      close_on_event, c);
}

/* ---- the backend pipe (pipe.c) ---- */

static void piped_done(void *arg)
{
    conn_free(arg);
}

static void start_pipe(conn *c)
{
    server *s = c->w->srv;
    struct bufferevent *up = bufferevent_socket_new(c->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (up == NULL ||
        bufferevent_socket_connect(up, (struct sockaddr *)&s->backend, s->backend_len) != 0 ||
        (c->pipe = tg_pipe_new(c->tls, up, TG_SERVE_IDLE_SECS, piped_done, c)) == NULL) {
        if (up) bufferevent_free(up);
        conn_free(c);
        return;
    }
    c->tls = NULL; /* the pipe has it now */
    tg_pipe_start(c->pipe);
}

/* ---- handshakes ---- */

static void tls_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->w->srv->backend_len > 0) {
            /* piped: an idle limit (inactivity), not a deadline */
            q_push(c->w, &c->w->open, c, 0);
            bufferevent_set_timeouts(c->tls, secs(TG_SERVE_IDLE_SECS), secs(TG_SERVE_IDLE_SECS));
            start_pipe(c);
        } else {
            q_push(c->w, &c->w->heads, c, TG_SERVE_REQUEST_SECS);
            bufferevent_setcb(c->tls, http_read, NULL, tls_event, c);
            http_read(c->tls, c);
        }
        return;
    }
    ERR_clear_error(); /* a failed handshake is the client's business, not ours */
    conn_free(c);
}

/* The first bytes (or the end) have arrived: now the TLS state is worth building.
 * Also called straight from accept, as the ClientHello often came with the connection. */
static void on_first_bytes(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    conn *c = arg;
    char byte;
    ssize_t r = recv(fd, &byte, 1, MSG_PEEK);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (event_add(c->wait_ev, NULL) != 0) conn_free(c);
        return;
    }
    if (r <= 0) { /* closed or reset before a byte: nothing to build */
        conn_free(c);
        return;
    }
    event_free(c->wait_ev);
    c->wait_ev = NULL;
    SSL *ssl = tg_tlsctx_ssl(c->w->srv->tls, c->w->kr);
    struct bufferevent *bev =
        ssl ? bufferevent_openssl_socket_new(c->w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE)
            : NULL;
    if (bev == NULL) {
        if (ssl) SSL_free(ssl);
        conn_free(c);
        return;
    }
    c->fd = -1; /* the bufferevent owns it now */
    c->tls = bev;
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bufferevent_setcb(bev, NULL, NULL, tls_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE); /* the deadline is pending's, from accept */
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l, (void)sa, (void)salen;
    worker *w = arg;
    server *s = w->srv;
    if (atomic_load(&s->stopping)) {
        evutil_closesocket(fd);
        return;
    }
    int n = atomic_fetch_add(&s->conns, 1) + 1;
    if (n > s->cap) {
        if (!atomic_exchange(&s->cap_episode, 1))
            say(s,
                "connection cap %d reached: each new connection evicts the oldest one "
                "without a finished handshake or request head",
                s->cap);
        if (!evict_oldest(w)) {
            atomic_fetch_sub(&s->conns, 1);
            atomic_fetch_add(&s->refused, 1);
            evutil_closesocket(fd);
            return;
        }
    }
    if (n > atomic_load_explicit(&s->peak, memory_order_relaxed))
        atomic_store_explicit(&s->peak, n, memory_order_relaxed); /* a hint for trimming */
    conn *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->w = w;
        c->fd = fd;
        c->accepted = now_ms();
        c->wait_ev = event_new(w->base, fd, EV_READ, on_first_bytes, c);
    }
    if (c == NULL || c->wait_ev == NULL) {
        free(c);
        atomic_fetch_sub(&s->conns, 1);
        evutil_closesocket(fd);
        return;
    }
    q_push(w, &w->pending, c, TG_SERVE_HANDSHAKE_SECS);
    on_first_bytes(fd, 0, c); /* waits on wait_ev if nothing is there yet */
}

/* accept() failed (EMFILE, ENFILE, ENOMEM...; libevent retries EINTR/EAGAIN itself): rest
 * this worker's listeners instead of spinning on a socket that stays readable, and free
 * a descriptor by closing the oldest unfinished connection. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    worker *w = arg;
    server *s = w->srv;
    int e = EVUTIL_SOCKET_ERROR();
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_disable(w->listeners[i]);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(w->resume_ev, &tv);
    unsigned long long pauses = atomic_fetch_add(&s->accept_pauses, 1) + 1;
    atomic_store(&s->fd_last_ms, now_ms());
    if (!atomic_exchange(&s->fd_episode, 1))
        say(s,
            "accept failed (%s) with %d connections open: pausing accepts for %d ms at a "
            "time until it succeeds (%llu pauses so far)",
            evutil_socket_error_to_string(e), atomic_load(&s->conns), ACCEPT_PAUSE_MS, pauses);
    evict_oldest(w);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_enable(w->listeners[i]);
}

/* ---- reload, tickets, shutdown ---- */

/* The abuse counters (there is no metrics endpoint): on SIGHUP and at exit. */
static void say_counters(server *s, const char *what)
{
    say(s,
        "%s: %d connections open (cap %d); since start %llu evicted and %llu refused at the "
        "cap, %llu handshakes and %llu request heads past their deadline, %llu accept pauses",
        what, atomic_load(&s->conns), s->cap, (unsigned long long)atomic_load(&s->evicted),
        (unsigned long long)atomic_load(&s->refused),
        (unsigned long long)atomic_load(&s->late_handshakes),
        (unsigned long long)atomic_load(&s->late_heads),
        (unsigned long long)atomic_load(&s->accept_pauses));
}

static void rebuild_log(void *arg, const char *line)
{
    say(arg, "%s", line);
}

/* Ends the fd and cap episodes (one line each) and gives freed heap back after a flood. */
static void housekeeping(server *s)
{
    int n = atomic_load(&s->conns);
    if (atomic_load(&s->fd_episode) && now_ms() - atomic_load(&s->fd_last_ms) > EPISODE_END_MS &&
        atomic_exchange(&s->fd_episode, 0))
        say(s, "accepting again (%llu pauses at the descriptor limit so far)",
            (unsigned long long)atomic_load(&s->accept_pauses));
    if (atomic_load(&s->cap_episode) && n < s->cap - s->cap / 10 &&
        atomic_exchange(&s->cap_episode, 0))
        say(s, "below the connection cap again (%llu evicted, %llu refused so far)",
            (unsigned long long)atomic_load(&s->evicted),
            (unsigned long long)atomic_load(&s->refused));
    int peak = atomic_load(&s->peak);
    if (peak - n >= TRIM_DROP && n <= peak / 2) {
        atomic_store(&s->peak, n);
        malloc_trim(0);
    }
}

static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    server *s = arg;
    housekeeping(s);
    tg_rebuilder_poll(s->rebuild); /* the build itself runs on the builder's thread */
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    server *s = arg;
    tg_rebuilder_request(s->rebuild, "SIGHUP");
    say_counters(s, "status");
}

static void on_ticket_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    server *s = arg;
    tg_tlsctx_rotate_tickets(s->tls);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *w = arg;
    for (size_t i = 0; i < w->nlisteners; i++)
        evconnlistener_free(w->listeners[i]);
    w->nlisteners = 0;
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    server *s = arg;
    if (atomic_load(&s->conns) > 0 && now_ms() < s->drain_deadline) return;
    say_counters(s, "stopped");
    for (int i = 0; i < s->nworkers; i++)
        event_base_loopexit(s->workers[i].base, NULL);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    server *s = arg;
    if (atomic_exchange(&s->stopping, 1)) return;
    say(s, "stopping: no new connections; draining %d", atomic_load(&s->conns));
    for (int i = 0; i < s->nworkers; i++)
        event_active(s->workers[i].stop_ev, EV_READ, 0);
    s->drain_deadline = now_ms() + TG_SERVE_DRAIN_SECS * 1000;
    struct timeval tv = {0, 100000};
    event_add(s->drain_ev, &tv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

/* ---- setup ---- */

/* Raises the soft open-file limit towards the hard one (as far as the default cap could
 * use) and sizes the connection cap from it: a connection holds one descriptor, two when
 * piped to --backend; a reserve is kept for everything else. */
static int fd_budget(server *s, tg_err *err)
{
    int per = s->backend_len > 0 ? 2 : 1;
    long reserve =
        FD_RESERVE_BASE + (long)s->nworkers * (FD_RESERVE_PER_THREAD + (long)s->o->nlisten);
    rlim_t want = (rlim_t)TG_SERVE_MAX_CONNS * (rlim_t)per + (rlim_t)reserve;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "cannot read the open-file limit: %s",
                          strerror(errno));
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    s->nofile = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)(LONG_MAX / 2)
                    ? LONG_MAX / 2
                    : (long)rl.rlim_cur;
    long cap = (s->nofile - reserve) / per;
    if (cap > TG_SERVE_MAX_CONNS) cap = TG_SERVE_MAX_CONNS;
    if (cap < CONNS_MIN)
        return tg_err_set(err, TG_E_IO,
                          "the open-file limit (%ld) is too low for serve with %d threads: it "
                          "needs at least %ld (raise it with ulimit -n)",
                          s->nofile, s->nworkers, reserve + (long)CONNS_MIN * per);
    s->cap = (int)cap;
    return 0;
}

static int bind_all(server *s, worker *w, tg_err *err)
{
    w->listeners = calloc(s->o->nlisten, sizeof(*w->listeners));
    if (w->listeners == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < s->o->nlisten; i++) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (evutil_parse_sockaddr_port(s->o->listen[i], (struct sockaddr *)&ss, &len) != 0)
            return tg_err_set(err, TG_E_USAGE,
                              "--listen '%s' is not ADDRESS:PORT (for example 127.0.0.1:8443 or "
                              "[::1]:8443)",
                              s->o->listen[i]);
        struct evconnlistener *l =
            evconnlistener_new_bind(w->base, on_accept, w,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                        LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                    1024, (struct sockaddr *)&ss, len);
        if (l == NULL)
            return tg_err_set(err, TG_E_IO, "cannot listen on %s: %s", s->o->listen[i],
                              strerror(errno));
        evconnlistener_set_error_cb(l, on_accept_error);
        w->listeners[w->nlisteners++] = l;
    }
    return 0;
}

static void teardown(server *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = &s->workers[i];
        connq *qs[] = {&w->pending, &w->heads, &w->linger, &w->open};
        for (size_t j = 0; j < 4; j++)
            while (qs[j]->head) /* past the drain time: closed, not leaked */
                conn_free(qs[j]->head);
        for (size_t j = 0; j < w->nlisteners; j++)
            evconnlistener_free(w->listeners[j]);
        free(w->listeners);
        if (w->stop_ev) event_free(w->stop_ev);
        if (w->sweep_ev) event_free(w->sweep_ev);
        if (w->resume_ev) event_free(w->resume_ev);
        tg_keyring_close(w->kr);
    }
    struct event *evs[] = {s->reload_ev, s->hup_ev,    s->term_ev,
                           s->int_ev,    s->ticket_ev, s->drain_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i]) event_free(evs[i]);
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].base) event_base_free(s->workers[i].base);
    free(s->workers);
    tg_tlsctx_free(s->tls);
    tg_rebuilder_free(s->rebuild); /* before the index: it may be swapping one in */
    tg_index_free(s->sel.index);
    tg_certcache_free(s->sel.cache);
    pthread_mutex_destroy(&s->sel.lock);
}

int tg_serve_run(const tg_serve_opts *o, tg_err *err)
{
    server s = {.o = o};
    pthread_mutex_init(&s.sel.lock, NULL);
    int rc = 0;
    if (o->nlisten == 0) return tg_err_set(err, TG_E_USAGE, "serve needs at least one --listen");
    if (o->backend != NULL) {
        int len = sizeof(s.backend);
        if (evutil_parse_sockaddr_port(o->backend, (struct sockaddr *)&s.backend, &len) != 0)
            return tg_err_set(err, TG_E_USAGE, "--backend '%s' is not ADDRESS:PORT", o->backend);
        s.backend_len = len;
    }
    evthread_use_pthreads();
    log_quiet = o->quiet;
    event_set_log_callback(on_libevent_log);
    signal(SIGPIPE, SIG_IGN);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s.nworkers = o->threads > 0 ? o->threads : (int)(cores > 0 ? cores : 1);
    if (s.nworkers > 64) s.nworkers = 64;
    s.sel.cache = tg_certcache_new(o->cache);
    s.workers = calloc((size_t)s.nworkers, sizeof(*s.workers));
    if (s.sel.cache == NULL || s.workers == NULL) {
        s.nworkers = 0; /* nothing for teardown to walk */
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = fd_budget(&s, err)) != 0) goto end;
    if ((s.rebuild = tg_rebuilder_new(o->home, &s.sel, rebuild_log, &s, err)) == NULL) {
        rc = err->code ? err->code : TG_E_STORE;
        goto end;
    }
    if ((s.tls = tg_tlsctx_new(&s.sel, o->tickets, err)) == NULL) {
        rc = TG_E_INTERNAL;
        goto end;
    }
    for (int i = 0; i < s.nworkers; i++) {
        worker *w = &s.workers[i];
        w->srv = &s;
        if ((w->base = event_base_new()) == NULL ||
            (w->stop_ev = event_new(w->base, -1, 0, on_stop, w)) == NULL ||
            (w->sweep_ev = evtimer_new(w->base, on_sweep, w)) == NULL ||
            (w->resume_ev = evtimer_new(w->base, on_resume, w)) == NULL) {
            rc = tg_err_set(err, TG_E_INTERNAL, "cannot create an event loop");
            goto end;
        }
        if ((rc = tg_keyring_open(o->home, &w->kr, err)) != 0 || (rc = bind_all(&s, w, err)) != 0)
            goto end;
    }
    struct event_base *b0 = s.workers[0].base;
    s.reload_ev = event_new(b0, -1, EV_PERSIST, on_reload_timer, &s);
    s.ticket_ev = event_new(b0, -1, EV_PERSIST, on_ticket_timer, &s);
    s.drain_ev = event_new(b0, -1, EV_PERSIST, on_drain, &s);
    s.hup_ev = evsignal_new(b0, SIGHUP, on_hup, &s);
    s.term_ev = evsignal_new(b0, SIGTERM, on_term, &s);
    s.int_ev = evsignal_new(b0, SIGINT, on_term, &s);
    struct timeval reload_tv = {0, TG_SERVE_RELOAD_MS * 1000},
                   ticket_tv = {TG_SERVE_TICKET_ROTATE_SECS, 0};
    if (!s.reload_ev || !s.ticket_ev || !s.drain_ev || !s.hup_ev || !s.term_ev || !s.int_ev ||
        event_add(s.reload_ev, &reload_tv) || event_add(s.ticket_ev, &ticket_tv) ||
        event_add(s.hup_ev, NULL) || event_add(s.term_ev, NULL) || event_add(s.int_ev, NULL)) {
        rc = tg_err_set(err, TG_E_INTERNAL, "cannot set up timers and signals");
        goto end;
    }
    for (size_t i = 0; i < o->nlisten; i++)
        say(&s, "listening on %s (%d thread%s)%s%s", o->listen[i], s.nworkers,
            s.nworkers == 1 ? "" : "s", o->backend ? ", forwarding to " : "",
            o->backend ? o->backend : "");
    say(&s, "connection cap %d (open-file limit %ld, %d per connection)", s.cap, s.nofile,
        o->backend ? 2 : 1);
    for (int i = 1; i < s.nworkers; i++)
        if (pthread_create(&s.workers[i].thread, NULL, worker_main, &s.workers[i]) != 0) {
            rc = tg_err_set(err, TG_E_INTERNAL, "cannot start a thread");
            s.nworkers = i; /* the ones started are stopped below */
            on_term(-1, 0, &s);
            break;
        }
    event_base_dispatch(b0);
    for (int i = 1; i < s.nworkers; i++)
        pthread_join(s.workers[i].thread, NULL);
end:
    teardown(&s);
    return rc;
}
