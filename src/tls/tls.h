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
#define TG_SERVE_MAX_CONNS          10000 /* concurrent connections, at most (see above) */
#define TG_SERVE_HANDSHAKE_SECS     10    /* deadline from accept to a finished handshake */
#define TG_SERVE_REQUEST_SECS       10    /* deadline from handshake to a whole request head */
#define TG_SERVE_IDLE_SECS          60    /* piped connection: closed after this quiet time */
#define TG_SERVE_DRAIN_SECS         10    /* SIGTERM: time given to open connections */
#define TG_SERVE_RELOAD_MS          250   /* how often the store is checked for changes */
#define TG_SERVE_REQUEST_MAX        8192  /* built-in responder: largest request head */
#define TG_SERVE_TICKET_ROTATE_SECS 3600

typedef struct tg_serve_opts {
    const char *home;
    const char *const *listen; /* "ADDR:PORT", at least one */
    size_t nlisten;
    const char *backend; /* "ADDR:PORT" or NULL for the built-in responder */
    int threads;         /* 0: one per core */
    int tickets;         /* session tickets (rotating keys) */
    size_t cache;        /* 0: TG_SERVE_CACHE_DEFAULT */
    int quiet;
} tg_serve_opts;

/* Runs until SIGTERM/SIGINT (then drains) and returns 0, or fails to start. */
int tg_serve_run(const tg_serve_opts *o, tg_err *err);

/* ---- the name index, exposed for tests ---- */
typedef struct tg_index tg_index;
typedef struct tg_keyring tg_keyring;
int tg_index_build(tg_keyring *kr, tg_index **out, tg_err *err);
void tg_index_free(tg_index *idx);
size_t tg_index_size(const tg_index *idx, size_t *names);
enum { TG_PICK_NONE, TG_PICK_EXACT, TG_PICK_WILDCARD, TG_PICK_DEFAULT };
/* The certificate for a ClientHello: sni may be NULL; ecdsa_ok says the client can
 * take an ECDSA certificate. Returns the certificate id (0: none) and how it matched. */
int64_t tg_index_pick(const tg_index *idx, const char *sni, int ecdsa_ok, long long now, int *how);

#endif
