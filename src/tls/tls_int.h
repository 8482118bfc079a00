/*
 * tls_int.h — shared by the files of src/tls only.
 */
#ifndef TG_TLS_INT_H
#define TG_TLS_INT_H

#include "tls.h"
#include "../keyring/keyring.h"
#include "../x509/ossl.h"

#include <openssl/ssl.h>
#include <pthread.h>

/* ---- cache.c: loaded certificates by id, least recently used evicted ---- */
typedef struct tg_certcache tg_certcache;
typedef struct tg_loaded {
    X509 *cert;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    char *name;
} tg_loaded;
tg_certcache *tg_certcache_new(size_t capacity);
void tg_certcache_free(tg_certcache *c);
/* Copies the entry for id into *out with new references (tg_loaded_clear releases);
 * loads it through kr on a miss. */
int tg_certcache_get(tg_certcache *c, tg_keyring *kr, int64_t id, tg_loaded *out, tg_err *err);
void tg_certcache_flush(tg_certcache *c);
/* For tests: certificates parsed so far (leaves and chain members). */
size_t tg_certcache_parsed(tg_certcache *c);
void tg_loaded_clear(tg_loaded *l);

/* ---- context.c: the one SSL_CTX every listener uses ---- */
typedef struct tg_tlsctx tg_tlsctx;
/* What the ClientHello callback needs: the current index (swapped on reload), the
 * cache, and a keyring for misses (per thread, passed through SSL ex_data). */
typedef struct tg_selector {
    pthread_mutex_t lock; /* guards index swaps */
    tg_index *index;
    tg_certcache *cache;
} tg_selector;
tg_tlsctx *tg_tlsctx_new(tg_selector *sel, int tickets, tg_err *err);
void tg_tlsctx_free(tg_tlsctx *t);
SSL *tg_tlsctx_ssl(tg_tlsctx *t, tg_keyring *kr);
void tg_tlsctx_rotate_tickets(tg_tlsctx *t);
/* After the handshake: the subject (RFC 2253 text, truncated to size) of the certificate
 * served — never its friendly name, which is the store's business — and how it was
 * chosen ("exact", "wildcard", "default"). */
void tg_ssl_served_subject(SSL *ssl, char *out, size_t size);
const char *tg_ssl_pick_how(SSL *ssl);
int tg_ssl_picked(SSL *ssl); /* the same as TG_PICK_* (NONE: no certificate chosen yet) */
/* The handshake was an ACME tls-alpn-01 validation (RFC 8737): nothing follows it. */
int tg_ssl_acme(SSL *ssl);
/* ClientHellos refused because no certificate could be offered (no default). */
unsigned long long tg_tlsctx_no_cert(tg_tlsctx *t);

/* ---- pump.c: two TLS connections spliced by their own I/O loop (used by pipe.c) ---- */
typedef struct tg_pump tg_pump;
struct event_base;
/* Takes both connections (socket and SSL object, handshakes done) on success: their BIOs
 * are replaced by the pump's, and tg_pump_free closes and frees them. NULL: out of memory,
 * nothing taken. on_done(arg) runs once when the flow is over. */
tg_pump *tg_pump_new(struct event_base *base, int fd[2], SSL *ssl[2], int idle_secs,
                     void (*on_done)(void *arg), void *arg);
void tg_pump_tap(tg_pump *pm, void (*tap)(void *arg, int side, const void *data, size_t len),
                 void *arg);
/* Plaintext read from `side` before the pump took it over, to go first to the other
 * (-1: out of memory; the flow then ends at start). */
int tg_pump_carry(tg_pump *pm, int side, const void *data, size_t len);
void tg_pump_start(tg_pump *pm);
unsigned long long tg_pump_bytes(const tg_pump *pm, int side);
void tg_pump_free(tg_pump *pm);

/* workers.c: where tg_serve_counters_get finds serve's front (server.c sets it before the
 * services start and clears it before the front is torn down). */
void tg_workers_set_front(tg_workers *ws, void (*count)(void *arg, tg_serve_counters *out),
                          void *arg);

struct evbuffer;

/* ---- responder.c: serve's built-in HTTP answers ---- */
typedef struct tg_http_answer {
    int status, head_only;
    const char *reason, *type;
    char body[2560];
} tg_http_answer;
/* 0: the request head in `in` is not complete yet; 1: *a is the answer (then close). */
int tg_responder_answer(struct evbuffer *in, SSL *ssl, tg_http_answer *a);
void tg_responder_write(struct evbuffer *out, const tg_http_answer *a);

/* ---- expiry.c: the daily check (K9, M4) ---- */
/* Recomputes chain statuses through kr, then logs a warning for each servable certificate
 * expiring within 30, 14, 7 or 1 days and an error for each expired one still in use
 * (the default, or indexed under a name in idx); at most TG_SERVE_EXPIRY_LINES lines. */
void tg_expiry_check(tg_keyring *kr, const tg_index *idx, long long now, int every_secs,
                     int refresh);

/* ---- rebuild.c: the name index rebuilt on a thread of its own ---- */
typedef struct tg_rebuilder tg_rebuilder;
/* Opens its store connections, builds the first index into sel (synchronously) and
 * starts the builder thread; log(logarg, line) reports each build. The same thread runs
 * tg_expiry_check once at start and then every check_secs (0: never). */
tg_rebuilder *tg_rebuilder_new(const char *home, tg_selector *sel, int check_secs,
                               void (*log)(void *arg, const char *line), void *logarg, tg_err *err);
/* Asks for a build (coalesced; why: a static string for the log). */
void tg_rebuilder_request(tg_rebuilder *r, const char *why);
/* From a timer: asks the store whether another process committed; if so, requests. */
void tg_rebuilder_poll(tg_rebuilder *r);
/* Stops the thread (after a build in progress) and closes its connections. */
void tg_rebuilder_free(tg_rebuilder *r);

#endif
