/*
 * pump.c — two TLS connections spliced by their own I/O loop (a decrypted flow's bulk).
 *
 * bufferevent_openssl moves a TLS connection a record per wakeup: OpenSSL reads each
 * record with two read() calls (its header, then its body) and libevent adds and removes
 * the write event around each record, so a bulk transfer costs five system calls per
 * 16 KiB record and direction. Once both handshakes are done the pipe (pipe.c) hands both
 * connections here, and the bufferevents are freed:
 *
 *   - each SSL object gets a BIO of ours over its socket: a read takes up to PUMP_BUF
 *     bytes in one recv() (one per wakeup, unless it filled the buffer), a write only
 *     collects the records SSL_write makes, and one send() per wakeup takes them all;
 *   - each socket has a persistent read event that stays in epoll; its write event is
 *     added only while the socket is full, and the read event of the side feeding it is
 *     removed only then (backpressure);
 *   - a wakeup moves every whole record its recv() brought, up to PUMP_BUDGET bytes per
 *     direction (then it yields to the other connections of its thread).
 *
 * Bounds per direction: PUMP_BUF of ciphertext read ahead, one record of plaintext held
 * while the far side is full, PUMP_HIGH of ciphertext (plus one record) towards the far
 * socket. Buffers exist only while bytes wait in them; empty ones go back to a small
 * per-thread stash, so an idle flow holds none.
 *
 * The end is the pipe's: when one side ends, what it sent before is written on (then a
 * close_notify, if it ended with one), data towards it is dropped, and the pump is done
 * once that is out, or the far side fails, or the idle limit passes without a byte moving
 * either way. Then the owner's done callback runs, once; tg_pump_free closes both.
 */
#include "tls_int.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUMP_REC    16384                              /* plaintext of one TLS record, at most */
#define PUMP_BUF    (64 * 1024 + 2 * (PUMP_REC + 512)) /* a read or write buffer */
#define PUMP_HIGH   (64 * 1024)  /* ciphertext queued before the feeder pauses */
#define PUMP_BUDGET (256 * 1024) /* plaintext per direction and wakeup */
#define STASH_MAX   8            /* empty buffers kept per thread */

typedef struct pside {
    struct tg_pump *pm;
    evutil_socket_t fd;
    SSL *ssl;
    struct event *rev, *wev;
    unsigned char *rbuf; /* ciphertext read, not yet taken by OpenSSL: [rpos, rlen) */
    size_t rpos, rlen;
    unsigned char *wbuf; /* ciphertext for this socket, not yet sent: [wpos, wlen) */
    size_t wpos, wlen;
    int may_recv;        /* this wakeup may still call recv() */
    int eof;             /* recv() returned 0 */
    int failed;          /* a socket error, or TLS failed on this side */
    int ended;           /* nothing more is read from this side */
    int clean;           /* it ended with a close_notify */
    int bye;             /* our close_notify towards it is queued */
    unsigned char *hold; /* plaintext from this side that the far side did not take yet */
    size_t hold_len;
} pside;

struct tg_pump {
    pside s[2];
    struct event *idle_ev, *again_ev;
    int idle_secs;
    long long last_ms; /* when a byte last moved */
    int done;
    void (*on_done)(void *arg);
    void *arg;
    void (*tap)(void *arg, int side, const void *data, size_t len);
    void *tap_arg;
    unsigned long long bytes[2];
};

/* ---- buffers ---- */

typedef struct stash {
    unsigned char *b[STASH_MAX];
    int n;
} stash;
static pthread_key_t stash_key;
static int stash_ok; /* the key exists (else no stash: plain malloc and free) */
static pthread_once_t stash_once = PTHREAD_ONCE_INIT;

static void stash_free(void *arg)
{
    stash *st = arg;
    while (st->n > 0)
        free(st->b[--st->n]);
    free(st);
}

static void stash_init(void)
{
    stash_ok = pthread_key_create(&stash_key, stash_free) == 0;
}

/* This thread's stash of empty buffers (freed when the thread ends); NULL: none. */
static stash *stash_of(void)
{
    pthread_once(&stash_once, stash_init);
    if (!stash_ok) return NULL;
    stash *st = pthread_getspecific(stash_key);
    if (st == NULL && (st = calloc(1, sizeof(*st))) != NULL &&
        pthread_setspecific(stash_key, st) != 0) {
        free(st);
        st = NULL;
    }
    return st;
}

static unsigned char *buf_get(void)
{
    stash *st = stash_of();
    return st && st->n > 0 ? st->b[--st->n] : malloc(PUMP_BUF);
}

static void buf_put(unsigned char *b)
{
    if (b == NULL) return;
    stash *st = stash_of();
    if (st && st->n < STASH_MAX)
        st->b[st->n++] = b;
    else
        free(b);
}

/* Gives back what a side's buffers no longer hold. */
static void side_trim(pside *s)
{
    if (s->rbuf && s->rpos == s->rlen) {
        buf_put(s->rbuf);
        s->rbuf = NULL;
        s->rpos = s->rlen = 0;
    }
    if (s->wbuf && s->wpos == s->wlen) {
        buf_put(s->wbuf);
        s->wbuf = NULL;
        s->wpos = s->wlen = 0;
    }
}

/* ---- the BIO: the socket, through the side's buffers ---- */

static BIO_METHOD *pump_method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, int len)
{
    pside *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (s->rpos == s->rlen) {
        if (s->eof || s->failed) return 0;
        if (!s->may_recv) {
            BIO_set_retry_read(b);
            return -1;
        }
        if (s->rbuf == NULL && (s->rbuf = buf_get()) == NULL) return -1;
        ssize_t n = recv(s->fd, s->rbuf, PUMP_BUF, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            s->may_recv = 0;
            BIO_set_retry_read(b);
            return -1;
        }
        if (n <= 0) {
            if (n < 0) s->failed = 1;
            s->eof = 1;
            return n < 0 ? -1 : 0;
        }
        s->may_recv = (size_t)n == PUMP_BUF; /* a full buffer: the socket may hold more */
        s->rpos = 0;
        s->rlen = (size_t)n;
    }
    size_t k = s->rlen - s->rpos;
    if (k > (size_t)len) k = (size_t)len;
    memcpy(out, s->rbuf + s->rpos, k);
    s->rpos += k;
    return (int)k;
}

static int side_flush(pside *s);

static int bio_write(BIO *b, const char *in, int len)
{
    pside *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (s->failed) return -1;
    if (s->wbuf == NULL && (s->wbuf = buf_get()) == NULL) return -1;
    if (s->wlen == PUMP_BUF && s->wpos > 0) { /* room at the front only */
        memmove(s->wbuf, s->wbuf + s->wpos, s->wlen - s->wpos);
        s->wlen -= s->wpos;
        s->wpos = 0;
    }
    if (s->wlen == PUMP_BUF) {
        if (side_flush(s) < 0) return -1;
        if (s->wlen == PUMP_BUF) {
            BIO_set_retry_write(b);
            return -1;
        }
    }
    size_t k = PUMP_BUF - s->wlen;
    if (k > (size_t)len) k = (size_t)len;
    memcpy(s->wbuf + s->wlen, in, k);
    s->wlen += k;
    return (int)k;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    pside *s = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_WPENDING:
        return s ? (long)(s->wlen - s->wpos) : 0;
    case BIO_CTRL_PENDING:
        return s ? (long)(s->rlen - s->rpos) : 0;
    case BIO_CTRL_EOF:
        return s ? s->eof : 1;
    case BIO_C_GET_FD:
        return -1; /* nobody closes our socket through the SSL object (libevent would) */
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tlsgate pump");
    if (m == NULL || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return;
    }
    pump_method = m;
}

/* ---- moving bytes ---- */

static void want_write(pside *s)
{
    if (!event_pending(s->wev, EV_WRITE, NULL)) event_add(s->wev, NULL);
}

/* Sends what the side's buffer holds: 0 (all sent, or the rest waits for EV_WRITE), -1
 * when the socket failed. */
static int side_flush(pside *s)
{
    while (s->wpos < s->wlen) {
        ssize_t n = send(s->fd, s->wbuf + s->wpos, s->wlen - s->wpos, MSG_NOSIGNAL);
        if (n > 0) {
            s->wpos += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            want_write(s);
            return 0;
        }
        s->failed = 1;
        return -1;
    }
    s->wpos = s->wlen = 0;
    return 0;
}

static size_t queued(const pside *s)
{
    return s->wlen - s->wpos;
}

/* The side ended (or failed) at this SSL result. */
static void side_end(pside *s, int r)
{
    int e = SSL_get_error(s->ssl, r);
    s->ended = 1;
    s->clean = e == SSL_ERROR_ZERO_RETURN;
    if (e != SSL_ERROR_ZERO_RETURN && !s->eof) s->failed = 1;
    ERR_clear_error();
}

/* Hands plaintext to dst's TLS: 1 taken, 0 dst is full (retry later with the same bytes),
 * -1 dst failed. */
static int give(pside *dst, const unsigned char *p, size_t n)
{
    if (queued(dst) >= PUMP_HIGH) {
        if (side_flush(dst) < 0) return -1;
        if (queued(dst) >= PUMP_HIGH) return 0;
    }
    int w = SSL_write(dst->ssl, p, (int)n); /* whole: no partial writes */
    if (w > 0) return 1;
    int e = SSL_get_error(dst->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        if (side_flush(dst) < 0) return -1;
        want_write(dst);
        return 0;
    }
    dst->failed = 1;
    ERR_clear_error();
    return -1;
}

/* Moves plaintext from side d to the other one until d has nothing, the other is full,
 * or the budget is spent. -1 when the far side failed. */
static int move_dir(tg_pump *pm, int d)
{
    pside *src = &pm->s[d], *dst = &pm->s[!d];
    if (dst->failed || dst->ended) return 0; /* what goes towards a side that ended is dropped */
    if (src->hold_len > 0) {                 /* first what the far side did not take last time */
        int g = give(dst, src->hold, src->hold_len);
        if (g <= 0) return g;
        free(src->hold);
        src->hold = NULL;
        src->hold_len = 0;
    }
    unsigned char buf[PUMP_REC];
    size_t moved = 0;
    while (!src->ended && moved < PUMP_BUDGET) {
        int r = SSL_read(src->ssl, buf, sizeof(buf));
        if (r <= 0) {
            int e = SSL_get_error(src->ssl, r);
            if (e == SSL_ERROR_WANT_READ) break;
            if (e == SSL_ERROR_WANT_WRITE) { /* its answer (a key update) waits for room */
                ERR_clear_error();
                want_write(src);
                break;
            }
            side_end(src, r);
            break;
        }
        moved += (size_t)r;
        pm->bytes[d] += (unsigned long long)r;
        if (pm->tap) pm->tap(pm->tap_arg, d, buf, (size_t)r);
        int g = give(dst, buf, (size_t)r);
        if (g < 0) return -1;
        if (g == 0) { /* keep it for when dst has room */
            if ((src->hold = malloc((size_t)r)) == NULL) return -1;
            memcpy(src->hold, buf, (size_t)r);
            src->hold_len = (size_t)r;
            break;
        }
    }
    if (moved > 0) pm->last_ms = tg_now_ms();
    /* more may wait: back after the others (through again_ev, never rev: libevent does
     * not insert an event that is active when it is added, and rev would be lost) */
    if (moved >= PUMP_BUDGET && !src->ended) event_active(pm->again_ev, EV_TIMEOUT, 0);
    return 0;
}

static void finish(tg_pump *pm)
{
    if (pm->done) return;
    pm->done = 1;
    for (int i = 0; i < 2; i++) {
        event_del(pm->s[i].rev);
        event_del(pm->s[i].wev);
    }
    event_del(pm->idle_ev);
    event_del(pm->again_ev);
    pm->on_done(pm->arg); /* may free pm */
}

/* After any event: move both ways, send, set the events, and see whether it is over. */
static void run(tg_pump *pm)
{
    for (int d = 0; d < 2; d++)
        if (move_dir(pm, d) < 0) pm->s[!d].failed = 1;
    for (int i = 0; i < 2; i++) {
        pside *s = &pm->s[i];
        if (!s->failed && queued(s) > 0 && side_flush(s) < 0) s->failed = 1;
    }
    /* the end: one side ended or failed; the other gets what it sent, then a close_notify */
    for (int i = 0; i < 2; i++) {
        pside *a = &pm->s[i], *b = &pm->s[!i];
        if (!(a->ended || a->failed)) continue;
        if (b->failed) {
            finish(pm);
            return;
        }
        if (a->hold_len > 0) continue; /* still on its way */
        if (a->clean && !b->bye) {
            b->bye = 1;
            SSL_shutdown(b->ssl);
            ERR_clear_error();
            if (queued(b) > 0 && side_flush(b) < 0) {
                finish(pm);
                return;
            }
        }
        if (queued(b) == 0) {
            finish(pm);
            return;
        }
    }
    /* read a side while its far side has room and it has not ended */
    for (int i = 0; i < 2; i++) {
        pside *s = &pm->s[i], *far = &pm->s[!i];
        int want = !s->ended && !s->failed && s->hold_len == 0 && queued(far) < PUMP_HIGH;
        int on = event_pending(s->rev, EV_READ, NULL) != 0; /* rev is never made active */
        if (want && !on)
            event_add(s->rev, NULL);
        else if (!want && on)
            event_del(s->rev);
        side_trim(s);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pside *s = arg;
    s->may_recv = 1;
    run(s->pm);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pside *s = arg;
    if (side_flush(s) < 0) s->failed = 1;
    run(s->pm);
}

static void on_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    run(arg); /* what is left in the read buffers and the SSL objects; more from the
               * sockets at their read events (level-triggered) */
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_pump *pm = arg;
    long long left = pm->last_ms + pm->idle_secs * 1000LL - tg_now_ms();
    if (left <= 0) {
        finish(pm);
        return;
    }
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    event_add(pm->idle_ev, &tv);
}

/* ---- the face (tls_int.h) ---- */

tg_pump *tg_pump_new(struct event_base *base, int fd[2], SSL *ssl[2], int idle_secs,
                     void (*on_done)(void *arg), void *arg)
{
    pthread_once(&method_once, method_init);
    if (pump_method == NULL) return NULL;
    tg_pump *pm = calloc(1, sizeof(*pm));
    if (pm == NULL) return NULL;
    pm->idle_secs = idle_secs;
    pm->on_done = on_done;
    pm->arg = arg;
    pm->last_ms = tg_now_ms();
    for (int i = 0; i < 2; i++) {
        pside *s = &pm->s[i];
        s->pm = pm;
        s->fd = -1;
    }
    pm->idle_ev = evtimer_new(base, on_idle, pm);
    pm->again_ev = event_new(base, -1, 0, on_again, pm);
    BIO *b[2] = {BIO_new(pump_method), BIO_new(pump_method)};
    int ok = pm->idle_ev && pm->again_ev && b[0] && b[1];
    for (int i = 0; i < 2; i++) {
        pside *s = &pm->s[i];
        s->rev = event_new(base, fd[i], EV_READ | EV_PERSIST, on_read, s);
        s->wev = event_new(base, fd[i], EV_WRITE, on_write, s);
        ok = ok && s->rev && s->wev;
    }
    if (!ok) { /* the connections are still the caller's, untouched */
        BIO_free(b[0]);
        BIO_free(b[1]);
        tg_pump_free(pm);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        pside *s = &pm->s[i];
        BIO_set_data(b[i], s);
        SSL_set_bio(ssl[i], b[i], b[i]); /* the old BIOs go; they never closed the socket */
        s->ssl = ssl[i];
        s->fd = fd[i];
    }
    return pm;
}

void tg_pump_tap(tg_pump *pm, void (*tap)(void *arg, int side, const void *data, size_t len),
                 void *arg)
{
    pm->tap = tap;
    pm->tap_arg = arg;
}

int tg_pump_carry(tg_pump *pm, int side, const void *data, size_t len)
{
    if (len == 0) return 0;
    pside *s = &pm->s[side != 0];
    unsigned char *h = realloc(s->hold, s->hold_len + len);
    if (h == NULL) { /* the flow cannot go on without these bytes: it ends */
        s->failed = 1;
        return -1;
    }
    memcpy(h + s->hold_len, data, len);
    s->hold = h;
    s->hold_len += len;
    pm->bytes[side != 0] += len;
    if (pm->tap) pm->tap(pm->tap_arg, side != 0, data, len);
    return 0;
}

void tg_pump_start(tg_pump *pm)
{
    struct timeval tv = {pm->idle_secs, 0};
    event_add(pm->idle_ev, &tv);
    for (int i = 0; i < 2; i++)
        pm->s[i].may_recv = 1;
    run(pm); /* what came with the handshakes, or is in the sockets already */
}

unsigned long long tg_pump_bytes(const tg_pump *pm, int side)
{
    return pm->bytes[side != 0];
}

void tg_pump_free(tg_pump *pm)
{
    if (pm == NULL) return;
    for (int i = 0; i < 2; i++) {
        pside *s = &pm->s[i];
        if (s->rev) event_free(s->rev);
        if (s->wev) event_free(s->wev);
        if (s->ssl) {
            SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            SSL_free(s->ssl);
        }
        if (s->fd >= 0) evutil_closesocket(s->fd);
        buf_put(s->rbuf);
        buf_put(s->wbuf);
        free(s->hold);
    }
    if (pm->idle_ev) event_free(pm->idle_ev);
    if (pm->again_ev) event_free(pm->again_ev);
    ERR_clear_error();
    free(pm);
}
