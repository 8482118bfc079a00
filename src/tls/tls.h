/*
 * tls.h — the face of src/tls: the TLS front end (SPEC S1–S3).
 *
 * Listeners on libevent, one event loop per thread; the certificate for each handshake
 * is chosen by SNI from a compact in-memory name index, and loaded (certificate, chain,
 * key) on first use into a bounded cache. Store changes made by the CLI while serving
 * are picked up within a second without dropping connections.
 */
#ifndef TG_TLS_H
#define TG_TLS_H

#include "../base/base.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Limits (README, "tlsgate serve"). Deadlines count from a fixed moment and are not
 * extended by traffic; the idle limit is an inactivity timer, reset by every byte.
 *   - handshake: a deadline, TG_SERVE_HANDSHAKE_SECS after accept (waiting for the first
 *     byte included);
 *   - request head (built-in responder): a deadline, TG_SERVE_REQUEST_SECS after the
 *     handshake, and at most TG_SERVE_REQUEST_MAX bytes up to and including the blank line;
 *   - piped connections (--backend) and last answers: TG_SERVE_IDLE_SECS of inactivity;
 *   - connections: at most TG_SERVE_MAX_CONNS, fewer if the open-file limit (raised at
 *     start towards the hard limit) does not leave a descriptor per connection (two with
 *     --backend) beside a reserve; at the cap a new connection evicts its thread's oldest
 *     one without a finished handshake or request head, and is refused if there is none;
 *   - accept() failing (out of descriptors) pauses accepting briefly, logged once per
 *     episode; SIGHUP and the exit log the counters (evicted, refused, past deadline,
 *     pauses);
 *   - memory: a connection holds a small record until its first byte arrives, then its
 *     TLS state (buffers released while idle); after a flood recedes the freed heap is
 *     returned to the system.
 */
#define TG_SERVE_DEFAULT_LISTEN     "127.0.0.1:8443"
#define TG_SERVE_CACHE_DEFAULT      10000 /* loaded certificates kept in memory */
#define TG_SERVE_CACHE_MAX          10000000
#define TG_SERVE_THREADS_MAX        64
#define TG_SERVE_MAX_CONNS          10000 /* concurrent connections, at most (see above) */
#define TG_SERVE_HANDSHAKE_SECS     10    /* deadline from accept to a finished handshake */
#define TG_SERVE_REQUEST_SECS       10    /* deadline from handshake to a whole request head */
#define TG_SERVE_IDLE_SECS          60    /* piped connection: closed after this quiet time */
#define TG_SERVE_DRAIN_SECS         10    /* SIGTERM: time given to open connections */
#define TG_SERVE_RELOAD_MS          250   /* how often the store is checked for changes */
#define TG_SERVE_REQUEST_MAX        8192  /* built-in responder: largest request head */
#define TG_SERVE_TICKET_ROTATE_SECS 3600
#define TG_SERVE_CHECK_DEFAULT      86400 /* --check-every: chain statuses and expiry, daily */
#define TG_SERVE_CHECK_MIN          10
#define TG_SERVE_CHECK_MAX          (7 * 86400)
#define TG_SERVE_EXPIRY_LINES       100 /* one check logs at most this many certificates */

/* ---- workers.c: the threads serve runs, shared by every kind of listener ----
 *
 * A worker is a thread with its own libevent loop. Listeners are bound on every worker
 * (SO_REUSEPORT) and may be added and closed while the workers run; the owner's accept
 * callback runs on the worker's thread with a connection already counted against the
 * descriptor budget. Kinds of connection (serve's front, the proxies) register an evict
 * callback, asked at the budget and when accept() runs out of descriptors. */
struct event_base;
struct sockaddr;
typedef struct tg_workers tg_workers;
typedef struct tg_worker tg_worker;
typedef struct tg_listener tg_listener;

typedef struct tg_workers_hooks {
    void (*tick)(void *arg);    /* thread 0, every TG_SERVE_RELOAD_MS */
    void (*hup)(void *arg);     /* SIGHUP, thread 0 */
    void (*stopped)(void *arg); /* the drain is over, thread 0 (the loops end next) */
    void *arg;
} tg_workers_hooks;

typedef struct tg_workers_stats {
    int used, cap;
    unsigned long long evicted, refused, accept_pauses;
} tg_workers_stats;

#define TG_LISTEN_TRANSPARENT 1u /* IP_TRANSPARENT (TPROXY) */

void tg_nodelay(int fd); /* TCP_NODELAY (accepted sockets get it from the workers) */
/* One info line in serve's log (base/log.c: syslog and/or standard error, "tlsgate serve: "
 * first there; nothing when quiet). */
void tg_serve_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

tg_workers *tg_workers_new(int threads, int quiet, tg_err *err); /* threads 0: one per core */
/* Raises the open-file limit and sizes the descriptor budget: max_conns connections of
 * `per` descriptors each at most, beside a reserve (nlisten: listeners per worker). */
int tg_workers_budget(tg_workers *ws, int per, int nlisten, int max_conns, tg_err *err);
int tg_workers_cap(const tg_workers *ws); /* the budget in connections of `per` */
long tg_workers_nofile(const tg_workers *ws);
int tg_workers_conns(tg_workers *ws); /* descriptors in use by connections */
void tg_workers_counters(tg_workers *ws, tg_workers_stats *st);
int tg_workers_kind(tg_workers *ws, int (*evict)(tg_worker *w, void *arg),
                    void (*close_all)(tg_worker *w, void *arg), void *arg);
/* Binds addr ("ADDR:PORT") on every worker. The owner closes it with tg_listener_close
 * (before tg_workers_free); release(arg) runs, on any thread, once no worker holds it. */
tg_listener *tg_workers_listen(tg_workers *ws, const char *addr, unsigned flags,
                               void (*accept)(tg_worker *w, int fd, const struct sockaddr *peer,
                                              int peerlen, void *arg),
                               void (*release)(void *arg), void *arg, tg_err *err);
void tg_listener_close(tg_listener *l);
const char *tg_listener_addr(const tg_listener *l);
/* Runs the loops until SIGTERM/SIGINT and the drain; then close_all of every kind. */
int tg_workers_run(tg_workers *ws, const tg_workers_hooks *hooks, tg_err *err);
int tg_workers_stopping(tg_workers *ws);
void tg_workers_free(tg_workers *ws);
int tg_workers_n(const tg_workers *ws);
tg_worker *tg_workers_at(tg_workers *ws, int i);
struct event_base *tg_worker_base(const tg_worker *w);
int tg_worker_index(const tg_worker *w);
/* One more descriptor for a connection (e.g. towards an upstream): 0, or -1 at the
 * budget when nothing could be evicted. */
int tg_worker_charge(tg_worker *w);
/* A connection holding `fds` descriptors of the budget has ended. */
void tg_worker_conn_end(tg_worker *w, int fds);

/* ---- connq.c: lists of connections ordered by deadline (one timer per list) ---- */
typedef struct tg_connq tg_connq;
typedef struct tg_qlink {
    struct tg_qlink *prev, *next;
    tg_connq *q;
    long long due; /* ms, tg_now_ms() */
} tg_qlink;
struct tg_connq {
    tg_qlink *head, *tail;
    size_t n;
    int secs; /* each entry is due this long after its push; 0: no deadline */
    struct event *timer;
    long long armed_at;
    void (*expire)(tg_qlink *l, void *arg); /* closes l (takes it off the list) */
    void *arg;
};
int tg_connq_init(tg_connq *q, struct event_base *base, int secs,
                  void (*expire)(tg_qlink *l, void *arg), void *arg);
void tg_connq_clear(tg_connq *q);             /* the timer; the entries are the owner's */
void tg_connq_push(tg_connq *q, tg_qlink *l); /* to the tail, from any list it was in */
void tg_connq_remove(tg_qlink *l);
#define TG_CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- pipe.c: two bufferevents spliced, with backpressure ---- */
struct bufferevent;
#define TG_PIPE_HIGH  (256 * 1024) /* bytes queued towards one side before reading pauses */
#define TG_PIPE_CHUNK (64 * 1024)  /* at most this is read or written per wakeup and side */
typedef struct tg_pipe tg_pipe;
/* Takes a and b (both connected or connecting) and sets their callbacks and idle
 * timeouts; on_done(arg) runs once, when both sides have ended. */
tg_pipe *tg_pipe_new(struct bufferevent *a, struct bufferevent *b, int idle_secs,
                     void (*on_done)(void *arg), void *arg);
/* Sees every chunk moved (side: 0 from a, 1 from b) before it is queued (the PCAP and
 * content log of the proxies); set before tg_pipe_start. */
void tg_pipe_tap(tg_pipe *p, void (*tap)(void *arg, int side, const void *data, size_t len),
                 void *arg);
/* Starts moving bytes, first those already read on either side. */
void tg_pipe_start(tg_pipe *p);
/* Bytes moved from side a (0) or b (1) so far. */
unsigned long long tg_pipe_bytes(const tg_pipe *p, int side);
/* Frees both sides and the pipe (from on_done, or to abort it); no callback follows. */
void tg_pipe_free(tg_pipe *p);

/* ---- context.c: readers of a ClientHello, for client-hello callbacks ---- */
struct ssl_st;
/* The SNI host name (printable ASCII, shorter than size): 1, or 0 without a usable one. */
int tg_hello_sni(struct ssl_st *ssl, char *out, size_t size);
/* 1 when the client can take an ECDSA certificate (signature algorithms, and TLS 1.3 or
 * an ECDSA suite offered). */
int tg_hello_ecdsa_ok(struct ssl_st *ssl);

/* ---- server.c: serve's own front (SNI selection, responder or --backend) ---- */

/* What serve runs beside its own listeners (the proxies, the admin API): the layers
 * above tls hand themselves in here, so that no arrow points up. */
typedef struct tg_service {
    const char *name;
    int (*start)(void *self, tg_workers *ws, tg_err *err); /* before the loops run */
    void (*tick)(void *self);                              /* thread 0, every reload period */
    void (*hup)(void *self);
    void (*stop)(void *self); /* the loops have ended: close listeners, free */
    /* Its listeners as they are now, for serve's state file (thread 0; may be NULL):
     * add(ctx, kind, name, "ADDR:PORT") for each. */
    void (*listeners)(void *self,
                      void (*add)(void *ctx, const char *kind, const char *name, const char *addr),
                      void *ctx);
    void *self;
} tg_service;

typedef struct tg_serve_opts {
    const char *home;
    const char *const *listen; /* "ADDR:PORT"; none: TG_SERVE_DEFAULT_LISTEN */
    size_t nlisten;
    const char *backend; /* "ADDR:PORT" or NULL for the built-in responder */
    int threads;         /* 0: one per core; at most TG_SERVE_THREADS_MAX */
    int no_tickets;      /* no session tickets (default: tickets with rotating keys) */
    long cache;          /* 0: TG_SERVE_CACHE_DEFAULT; at most TG_SERVE_CACHE_MAX */
    int quiet;
    int check_every;            /* seconds between expiry checks; 0: TG_SERVE_CHECK_DEFAULT */
    const tg_service *services; /* run beside serve's front */
    size_t nservices;
} tg_serve_opts;

/* Runs until SIGTERM/SIGINT (then drains) and returns 0, or fails to start. */
int tg_serve_run(const tg_serve_opts *o, tg_err *err);

/* ---- what serve counts (GET /metrics; README "Logs and metrics") ----
 * The counters live where they are counted — handshakes per worker of the front, refusals
 * and evictions in the workers — and are summed when asked, from any thread, without a
 * lock on the handshake path. A service reads them through the tg_workers handle its
 * start() was given, which outlives every service. */
typedef struct tg_serve_counters {
    /* handshakes finished, by how the certificate was chosen (index TG_PICK_*); [NONE]
     * counts ClientHellos refused because no certificate could be offered */
    unsigned long long handshakes[4];
    unsigned long long late_handshakes, late_heads; /* closed at their deadline */
    tg_workers_stats workers;
    long long started_unix;
} tg_serve_counters;
/* 0, or -1 when ws has no front (then *out holds the workers' counters only). */
int tg_serve_counters_get(tg_workers *ws, tg_serve_counters *out);

/* ---- the name index (index.c): serve's, and the server proxies' ---- */
typedef struct tg_index tg_index;
typedef struct tg_keyring tg_keyring;
typedef struct tg_servable tg_servable;
/* serve's index: every certificate of the store whose key is held. */
int tg_index_build(tg_keyring *kr, tg_index **out, tg_err *err);
/* An index of the caller's own certificates (a server proxy's list), chosen among exactly
 * as serve chooses: tg_index_new, tg_index_add for each (-1: out of memory), then
 * tg_index_done with the id picked when no name matches (0: none) before any pick. */
tg_index *tg_index_new(void);
int tg_index_add(tg_index *idx, const tg_servable *s);
void tg_index_done(tg_index *idx, int64_t default_id);
void tg_index_free(tg_index *idx);
size_t tg_index_size(const tg_index *idx, size_t *names);
/* The names certificate id is indexed under (a linear scan: for the daily check). */
size_t tg_index_names_for(const tg_index *idx, int64_t id);
int64_t tg_index_default(const tg_index *idx);
enum { TG_PICK_NONE, TG_PICK_EXACT, TG_PICK_WILDCARD, TG_PICK_DEFAULT };
/* "exact", "wildcard", "default" ("" for TG_PICK_NONE): how logs and answers name a pick. */
const char *tg_pick_word(int how);
/* The certificate for a ClientHello: sni may be NULL; ecdsa_ok says the client can
 * take an ECDSA certificate. Returns the certificate id (0: none) and how it matched. */
int64_t tg_index_pick(const tg_index *idx, const char *sni, int ecdsa_ok, long long now, int *how);

/* ---- a small HTTPS server for the appliance's own listeners (https.c) ----
 * The admin API and an enrollment CA's EST server: libevent's evhttp on a loop of the
 * caller's, always TLS, a deadline per request, a cap on connections (accept pauses at
 * it), bounded heads and bodies, TCP_NODELAY. */
struct event_base;
struct evhttp_request;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct tg_https tg_https;
typedef struct tg_https_opts {
    const char *listen; /* ADDR:PORT */
    const char *what;   /* "admin API", "EST server": named in sentences */
    const char *field;  /* the option a bad address is about */
    int max_conns;
    int deadline_secs; /* a request arrives whole within this of the connection or of the
                        * previous answer */
    size_t max_headers, max_body;
    int methods; /* evhttp's EVHTTP_REQ_* mask */
    void (*on_request)(struct evhttp_request *req, void *arg);
    void *arg;
    void (*conn_free)(void *data); /* frees a connection's tg_https_conn_data, or NULL */
} tg_https_opts;
/* A server context with the certificate cert (NULL: the default certificate), its key and
 * stored chain, TLS 1.2 and up, no renegotiation; what names the listener in a refusal.
 * The caller adds what is its own (session cache, client certificates). */
SSL_CTX *tg_https_ctx(tg_keyring *kr, const char *cert, const char *what, tg_err *err);
/* Listens now; ctx (taken) makes every connection's TLS state. */
int tg_https_new(struct event_base *base, const tg_https_opts *o, SSL_CTX *ctx, tg_https **out,
                 tg_err *err);
/* New connections use ctx (taken); open ones keep theirs. */
void tg_https_set_ctx(tg_https *h, SSL_CTX *ctx);
/* The connection's TLS object (for its peer certificate), or NULL. */
SSL *tg_https_ssl(struct evhttp_request *req);
/* A slot the listener may hang its own per-connection record on (freed by conn_free). */
void **tg_https_conn_data(struct evhttp_request *req);
/* Closes the listener and every connection; on the loop's thread, or with it stopped. */
void tg_https_free(tg_https *h);

#endif
