/*
 * server.c — serve's own front (SPEC S1–S3): TLS on its --listen addresses, the
 * certificate chosen by SNI, then the built-in responder or a pipe to --backend.
 *
 * The threads, listeners, descriptor budget and signals are workers.c's; this file keeps
 * the front's connections: accept, handshake, request head, answer or pipe, and its
 * deadlines. On every worker tick it asks the store whether another process committed;
 * if so a new name index is built on the builder's thread (rebuild.c), swapped in and the
 * certificate cache emptied; connections already open keep the certificate they were
 * given. SIGHUP forces that reload. The services handed in (the proxies) run beside it
 * on the same workers.
 *
 * Abuse limits (README, "tlsgate serve"). A connection costs one small struct until its
 * first bytes arrive; only then are the SSL object and its bufferevent built. Each
 * worker keeps the front's connections in four lists (connq.c): `pending` (no handshake
 * yet, deadline accept + TG_SERVE_HANDSHAKE_SECS), `heads` (the built-in responder
 * waiting for a request head, deadline handshake + TG_SERVE_REQUEST_SECS), `linger` (an
 * error answer sent, the client's remaining bytes dropped until LINGER_SECS after it)
 * and `open` (piped, or writing a last answer: inactivity timeouts). At the budget
 * workers.c asks this front to evict: a lingering connection of that worker, else the
 * oldest entry of `pending` or `heads`. Invariant: every conn is in exactly one list of
 * its own worker, and only that worker's thread touches the list.
 */
#include "tls_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/* After an error answer the client may still be sending (a head over the limit): its
 * bytes are read and dropped for at most LINGER_SECS (a deadline) and LINGER_MAX bytes,
 * so that closing with unread input does not reset the connection under the answer. */
#define LINGER_SECS 2
#define LINGER_MAX  (256 * 1024)

typedef struct front front;

/* The front's share of one worker. */
typedef struct fworker {
    front *f;
    tg_worker *w;
    tg_connq pending, heads, linger, open; /* every conn of this thread is in exactly one */
    tg_keyring *kr;
    atomic_ullong handshakes[4]; /* by TG_PICK_*: written by this worker only */
} fworker;

struct front {
    const tg_serve_opts *o;
    tg_workers *ws;
    tg_selector sel;
    tg_tlsctx *tls;
    fworker *fw;
    int nfw;
    tg_listener **listeners;
    size_t nlisteners;
    struct sockaddr_storage backend;
    int backend_len;
    atomic_ullong late_handshakes, late_heads;
    tg_rebuilder *rebuild; /* the name index, rebuilt off the workers (rebuild.c) */
    int ticks;             /* reload periods since the last ticket rotation */
    long long started;     /* time(NULL) at start */
    char *state;           /* the state file's content as last written (NULL: not written) */
};

typedef struct conn {
    fworker *fw;
    tg_qlink link;
    long long accepted;
    evutil_socket_t fd; /* until the first bytes: the socket, watched by wait_ev */
    struct event *wait_ev;
    struct bufferevent *tls; /* the client, from the first bytes until piped */
    size_t lingered;         /* bytes dropped after an error answer */
    tg_pipe *pipe;           /* with --backend, after the handshake */
    int fds;                 /* descriptors charged to the budget */
} conn;

static conn *of(tg_qlink *l)
{
    return TG_CONTAINER(l, conn, link);
}

static void conn_free(conn *c)
{
    tg_connq_remove(&c->link);
    if (c->wait_ev) event_free(c->wait_ev);
    if (c->fd >= 0) evutil_closesocket(c->fd);
    if (c->tls) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->tls);
        if (ssl) SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN); /* no close_notify wait */
        bufferevent_free(c->tls);
    }
    tg_pipe_free(c->pipe);
    tg_worker_conn_end(c->fw->w, c->fds);
    free(c);
}

/* ---- deadlines and eviction ---- */

static void late_handshake(tg_qlink *l, void *arg)
{
    fworker *fw = arg;
    atomic_fetch_add(&fw->f->late_handshakes, 1);
    conn_free(of(l));
}

static void late_head(tg_qlink *l, void *arg)
{
    fworker *fw = arg;
    atomic_fetch_add(&fw->f->late_heads, 1);
    ERR_clear_error();
    conn_free(of(l));
}

static void linger_over(tg_qlink *l, void *arg)
{
    (void)arg;
    ERR_clear_error();
    conn_free(of(l));
}

/* Closes this worker's oldest connection without a handshake or a request head yet;
 * 0 if it has none (workers.c counts it). */
static int front_evict(tg_worker *w, void *arg)
{
    front *f = arg;
    fworker *fw = &f->fw[tg_worker_index(w)];
    if (fw->linger.head) { /* answered already: the cheapest to let go */
        conn_free(of(fw->linger.head));
        return 1;
    }
    conn *a = fw->pending.head ? of(fw->pending.head) : NULL;
    conn *b = fw->heads.head ? of(fw->heads.head) : NULL;
    conn *victim = a && (!b || a->accepted <= b->accepted) ? a : b;
    if (victim == NULL) return 0;
    conn_free(victim);
    return 1;
}

static void front_close_all(tg_worker *w, void *arg)
{
    front *f = arg;
    fworker *fw = &f->fw[tg_worker_index(w)];
    tg_connq *qs[] = {&fw->pending, &fw->heads, &fw->linger, &fw->open};
    for (size_t j = 0; j < 4; j++)
        while (qs[j]->head)
            conn_free(of(qs[j]->head));
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
    tg_connq_push(&c->fw->linger, &c->link);
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
    tg_connq_push(&c->fw->open, &c->link);
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
    front *f = c->fw->f;
    if (tg_worker_charge(c->fw->w) != 0) { /* no descriptor for the backend */
        conn_free(c);
        return;
    }
    c->fds++;
    struct bufferevent *up =
        bufferevent_socket_new(tg_worker_base(c->fw->w), -1, BEV_OPT_CLOSE_ON_FREE);
    if (up == NULL ||
        bufferevent_socket_connect(up, (struct sockaddr *)&f->backend, f->backend_len) != 0 ||
        (c->pipe = tg_pipe_new(c->tls, up, TG_SERVE_IDLE_SECS, piped_done, c)) == NULL) {
        if (up) bufferevent_free(up);
        conn_free(c);
        return;
    }
    c->tls = NULL; /* the pipe has it now */
    if (bufferevent_getfd(up) >= 0) tg_nodelay(bufferevent_getfd(up));
    tg_pipe_start(c->pipe);
}

/* ---- handshakes ---- */

static void tls_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        /* one writer per counter (this worker): a relaxed add, no lock, no shared line */
        int how = tg_ssl_picked(bufferevent_openssl_get_ssl(c->tls));
        atomic_fetch_add_explicit(&c->fw->handshakes[how], 1, memory_order_relaxed);
        if (tg_ssl_acme(bufferevent_openssl_get_ssl(c->tls))) {
            conn_free(c); /* a validation: the certificate was all it came for (RFC 8737) */
            return;
        }
        if (c->fw->f->backend_len > 0) {
            /* piped: an idle limit (inactivity), not a deadline */
            tg_connq_push(&c->fw->open, &c->link);
            bufferevent_set_timeouts(c->tls, secs(TG_SERVE_IDLE_SECS), secs(TG_SERVE_IDLE_SECS));
            start_pipe(c);
        } else {
            tg_connq_push(&c->fw->heads, &c->link);
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
    SSL *ssl = tg_tlsctx_ssl(c->fw->f->tls, c->fw->kr);
    struct bufferevent *bev =
        ssl ? bufferevent_openssl_socket_new(tg_worker_base(c->fw->w), fd, ssl,
                                             BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
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

static void front_accept(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg)
{
    (void)peer, (void)peerlen;
    front *f = arg;
    fworker *fw = &f->fw[tg_worker_index(w)];
    conn *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->fw = fw;
        c->fd = fd;
        c->fds = 1;
        c->accepted = tg_now_ms();
        c->wait_ev = event_new(tg_worker_base(w), fd, EV_READ, on_first_bytes, c);
    }
    if (c == NULL || c->wait_ev == NULL) {
        free(c);
        tg_worker_conn_end(w, 1);
        evutil_closesocket(fd);
        return;
    }
    tg_connq_push(&fw->pending, &c->link);
    on_first_bytes(fd, 0, c); /* waits on wait_ev if nothing is there yet */
}

/* ---- reload, tickets, counters ---- */

/* The abuse counters (there is no metrics endpoint): on SIGHUP and at exit. */
static void say_counters(front *f, const char *what)
{
    tg_workers_stats st;
    tg_workers_counters(f->ws, &st);
    tg_serve_say("%s: %d connections open (cap %d); since start %llu evicted and %llu refused "
                 "at the cap, %llu handshakes and %llu request heads past their deadline, "
                 "%llu accept pauses",
                 what, st.used, st.cap, st.evicted, st.refused,
                 (unsigned long long)atomic_load(&f->late_handshakes),
                 (unsigned long long)atomic_load(&f->late_heads), st.accept_pauses);
}

/* For tg_serve_counters_get, on any thread: the per-worker counters summed. */
static void front_count(void *arg, tg_serve_counters *out)
{
    front *f = arg;
    for (int i = 0; i < f->nfw; i++)
        for (int k = 0; k < 4; k++)
            out->handshakes[k] +=
                atomic_load_explicit(&f->fw[i].handshakes[k], memory_order_relaxed);
    out->handshakes[TG_PICK_NONE] += tg_tlsctx_no_cert(f->tls);
    out->late_handshakes = atomic_load(&f->late_handshakes);
    out->late_heads = atomic_load(&f->late_heads);
    out->started_unix = f->started;
}

static void rebuild_log(void *arg, const char *line)
{
    (void)arg;
    tg_serve_say("%s", line);
}

/* ---- the state file (config show): what runs, written when it changes ---- */

static void state_add(void *ctx, const char *kind, const char *name, const char *addr)
{
    json_t *l =
        json_pack("{s:s, s:s, s:s}", "kind", kind, "name", name ? name : kind, "address", addr);
    if (l) json_array_append_new(ctx, l);
}

/* On thread 0 (it uses worker 0's keyring): at start, then once a second. */
static void state_write(front *f)
{
    const tg_serve_opts *o = f->o;
    json_t *ls = json_array();
    for (size_t i = 0; ls && i < f->nlisteners; i++)
        state_add(ls, "front", "serve", tg_listener_addr(f->listeners[i]));
    for (size_t i = 0; ls && i < o->nservices; i++)
        if (o->services[i].listeners) o->services[i].listeners(o->services[i].self, state_add, ls);
    char started[40];
    tg_time_rfc3339((time_t)f->started, started, sizeof(started));
    json_t *doc =
        json_pack("{s:s, s:s, s:I, s:o, s:o, s:i, s:I, s:i, s:b}", "version", TG_VERSION, "started",
                  started, "started_unix", (json_int_t)f->started, "listeners", ls, "backend",
                  o->backend ? json_string(o->backend) : json_null(), "threads", f->nfw, "cache",
                  (json_int_t)(o->cache ? o->cache : TG_SERVE_CACHE_DEFAULT), "check_every",
                  o->check_every, "session_tickets", !o->no_tickets);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text != NULL && (f->state == NULL || strcmp(text, f->state) != 0)) {
        tg_err e = {0};
        if (tg_keyring_serve_state_write(f->fw[0].kr, doc, &e) == 0) {
            free(f->state);
            f->state = text;
            text = NULL;
        } else if (f->state == NULL) {
            tg_serve_say("cannot write the state file (config show): %s", e.msg);
            f->state = tg_strdup(""); /* said once; retried when something changes */
        }
    }
    free(text);
    json_decref(doc);
}

static void on_tick(void *arg)
{
    front *f = arg;
    if (f->ticks % (1000 / TG_SERVE_RELOAD_MS) == 0) state_write(f);
    tg_rebuilder_poll(f->rebuild); /* the build itself runs on the builder's thread */
    if (++f->ticks >= TG_SERVE_TICKET_ROTATE_SECS * 1000 / TG_SERVE_RELOAD_MS) {
        f->ticks = 0;
        tg_tlsctx_rotate_tickets(f->tls);
    }
    for (size_t i = 0; i < f->o->nservices; i++)
        if (f->o->services[i].tick) f->o->services[i].tick(f->o->services[i].self);
}

static void on_hup(void *arg)
{
    front *f = arg;
    tg_rebuilder_request(f->rebuild, "SIGHUP");
    say_counters(f, "status");
    for (size_t i = 0; i < f->o->nservices; i++)
        if (f->o->services[i].hup) f->o->services[i].hup(f->o->services[i].self);
}

static void on_stopped(void *arg)
{
    say_counters(arg, "stopped");
}

/* ---- setup ---- */

static int listen_all(front *f, tg_err *err)
{
    f->listeners = calloc(f->o->nlisten, sizeof(*f->listeners));
    if (f->listeners == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < f->o->nlisten; i++) {
        tg_err e = {0};
        tg_listener *l = tg_workers_listen(f->ws, f->o->listen[i], 0, front_accept, NULL, f, &e);
        if (l == NULL) return tg_err_fset(err, e.code, "listen", "%s", e.msg);
        f->listeners[f->nlisteners++] = l;
    }
    return 0;
}

static void teardown(front *f)
{
    for (size_t i = 0; i < f->nlisteners; i++)
        tg_listener_close(f->listeners[i]);
    free(f->listeners);
    for (int i = 0; i < f->nfw; i++) {
        fworker *fw = &f->fw[i];
        tg_connq *qs[] = {&fw->pending, &fw->heads, &fw->linger, &fw->open};
        for (size_t j = 0; j < 4; j++)
            tg_connq_clear(qs[j]);
        tg_keyring_close(fw->kr);
    }
    free(f->fw);
    tg_workers_free(f->ws);
    tg_tlsctx_free(f->tls);
    tg_rebuilder_free(f->rebuild); /* before the index: it may be swapping one in */
    tg_index_free(f->sel.index);
    tg_certcache_free(f->sel.cache);
    pthread_mutex_destroy(&f->sel.lock);
}

/* The rules of serve's settings, for every face; eff is o with the defaults filled in. */
static int settle(const tg_serve_opts *o, tg_serve_opts *eff, tg_err *err)
{
    static const char *const default_listen[] = {TG_SERVE_DEFAULT_LISTEN};
    *eff = *o;
    if (o->nlisten == 0) {
        eff->listen = default_listen;
        eff->nlisten = 1;
    }
    if (o->threads < 0 || o->threads > TG_SERVE_THREADS_MAX)
        return tg_err_fset(err, TG_E_USAGE, "threads",
                           "the number of threads must be from 1 to %d (0: one per core), not %d",
                           TG_SERVE_THREADS_MAX, o->threads);
    if (o->cache < 0 || o->cache > TG_SERVE_CACHE_MAX)
        return tg_err_fset(err, TG_E_USAGE, "cache",
                           "the certificate cache holds from 1 to %d entries (0: %d), not %ld",
                           TG_SERVE_CACHE_MAX, TG_SERVE_CACHE_DEFAULT, o->cache);
    if (o->check_every == 0) eff->check_every = TG_SERVE_CHECK_DEFAULT;
    if (o->check_every != 0 &&
        (o->check_every < TG_SERVE_CHECK_MIN || o->check_every > TG_SERVE_CHECK_MAX))
        return tg_err_fset(err, TG_E_USAGE, "check_every",
                           "the expiry check runs every %d to %d seconds (0: daily), not %d",
                           TG_SERVE_CHECK_MIN, TG_SERVE_CHECK_MAX, o->check_every);
    return 0;
}

int tg_serve_run(const tg_serve_opts *given, tg_err *err)
{
    tg_serve_opts eff;
    int rc = settle(given, &eff, err);
    if (rc != 0) return rc;
    const tg_serve_opts *o = &eff;
    front f = {.o = o};
    pthread_mutex_init(&f.sel.lock, NULL);
    size_t started = 0;
    if (o->backend != NULL) {
        int len = sizeof(f.backend);
        if (evutil_parse_sockaddr_port(o->backend, (struct sockaddr *)&f.backend, &len) != 0)
            return tg_err_fset(err, TG_E_USAGE, "backend", "the backend '%s' is not ADDRESS:PORT",
                               o->backend);
        f.backend_len = len;
    }
    int per = o->backend ? 2 : 1;
    f.sel.cache = tg_certcache_new((size_t)o->cache);
    if (f.sel.cache == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((f.ws = tg_workers_new(o->threads, o->quiet, err)) == NULL) {
        rc = err->code ? err->code : TG_E_INTERNAL;
        goto end;
    }
    if ((rc = tg_workers_budget(f.ws, per, (int)o->nlisten, TG_SERVE_MAX_CONNS, err)) != 0)
        goto end;
    f.nfw = tg_workers_n(f.ws);
    if ((f.fw = calloc((size_t)f.nfw, sizeof(*f.fw))) == NULL) {
        f.nfw = 0;
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((f.rebuild = tg_rebuilder_new(o->home, &f.sel, o->check_every, rebuild_log, &f, err)) ==
        NULL) {
        rc = err->code ? err->code : TG_E_STORE;
        goto end;
    }
    if ((f.tls = tg_tlsctx_new(&f.sel, !o->no_tickets, err)) == NULL) {
        rc = TG_E_INTERNAL;
        goto end;
    }
    for (int i = 0; i < f.nfw; i++) {
        fworker *fw = &f.fw[i];
        fw->f = &f;
        fw->w = tg_workers_at(f.ws, i);
        struct event_base *b = tg_worker_base(fw->w);
        if (tg_connq_init(&fw->pending, b, TG_SERVE_HANDSHAKE_SECS, late_handshake, fw) ||
            tg_connq_init(&fw->heads, b, TG_SERVE_REQUEST_SECS, late_head, fw) ||
            tg_connq_init(&fw->linger, b, LINGER_SECS, linger_over, fw) ||
            tg_connq_init(&fw->open, b, 0, NULL, fw)) {
            rc = tg_err_set(err, TG_E_INTERNAL, "cannot create a timer");
            goto end;
        }
        if ((rc = tg_keyring_open(o->home, &fw->kr, err)) != 0) goto end;
    }
    tg_workers_kind(f.ws, front_evict, front_close_all, &f);
    f.started = (long long)time(NULL);
    tg_workers_set_front(f.ws, front_count, &f); /* for the services' metrics */
    if ((rc = listen_all(&f, err)) != 0) goto end;
    for (; started < o->nservices; started++)
        if ((rc = o->services[started].start(o->services[started].self, f.ws, err)) != 0) goto end;
    for (size_t i = 0; i < o->nlisten; i++)
        tg_serve_say("listening on %s (%d thread%s)%s%s", o->listen[i], f.nfw,
                     f.nfw == 1 ? "" : "s", o->backend ? ", forwarding to " : "",
                     o->backend ? o->backend : "");
    tg_serve_say("connection cap %d (open-file limit %ld, %d per connection)", tg_workers_cap(f.ws),
                 tg_workers_nofile(f.ws), per);
    tg_workers_hooks hooks = {.tick = on_tick, .hup = on_hup, .stopped = on_stopped, .arg = &f};
    state_write(&f);
    rc = tg_workers_run(f.ws, &hooks, err);
    if (f.state != NULL) tg_keyring_serve_state_clear(f.fw[0].kr); /* a clean exit */
    free(f.state);
    f.state = NULL;
end:
    while (started > 0) {
        started--;
        if (o->services[started].stop) o->services[started].stop(o->services[started].self);
    }
    if (f.ws) tg_workers_set_front(f.ws, NULL, NULL);
    teardown(&f);
    return rc;
}
