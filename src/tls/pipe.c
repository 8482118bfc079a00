/*
 * pipe.c — two bufferevents spliced together, with backpressure and a clean end.
 *
 * Bytes read on one side are queued for writing on the other. When more than
 * TG_PIPE_HIGH bytes wait towards a side, reading from the opposite side pauses until
 * that queue has drained to half; so one fast peer and one slow peer hold at most
 * about TG_PIPE_HIGH bytes per direction, whatever they send. When one side ends (EOF,
 * error, inactivity timeout) what it still had is passed on, it is freed, and the pipe
 * closes once the queue towards the other side is written (or that side fails too);
 * then the owner's done callback runs, exactly once. The owner frees the pipe, from
 * that callback or earlier (tg_pipe_free also aborts a pipe in flight).
 *
 * Used by serve's --backend and by the inspection proxies: the sides may be plain
 * sockets or OpenSSL bufferevents (no close_notify is awaited from a side that is gone).
 * When both sides are TLS connections whose handshakes are done (a decrypted flow),
 * tg_pipe_start hands them to the pump (pump.c), which moves records with far fewer
 * system calls than bufferevent_openssl, and frees the bufferevents.
 */
#include "tls_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <stdlib.h>

struct tg_pipe {
    struct bufferevent *side[2];
    tg_pump *pm; /* both sides were handed to the pump */
    int closing; /* one side is gone; the other drains its queue and ends */
    int done;    /* the done callback ran */
    void (*on_done)(void *arg);
    void *arg;
    void (*tap)(void *arg, int side, const void *data, size_t len);
    void *tap_arg;
    unsigned long long bytes[2]; /* moved from each side */
    int idle_secs;
};

/* Moves what `from` has read into `to`'s output, showing it to the tap first. */
static void move(tg_pipe *p, int from_side, struct evbuffer *in, struct evbuffer *out)
{
    size_t n = evbuffer_get_length(in);
    if (n == 0) return;
    p->bytes[from_side] += n;
    if (p->tap) {
        struct evbuffer_iovec v[16];
        int k = evbuffer_peek(in, -1, NULL, v, 16);
        for (int i = 0; i < k && i < 16; i++)
            p->tap(p->tap_arg, from_side, v[i].iov_base, v[i].iov_len);
        if (k > 16) { /* rarely: more chunks than peeked, shown through a copy */
            size_t seen = 0;
            for (int i = 0; i < 16; i++)
                seen += v[i].iov_len;
            unsigned char buf[16384];
            struct evbuffer_ptr at;
            evbuffer_ptr_set(in, &at, seen, EVBUFFER_PTR_SET);
            while (seen < n) {
                ev_ssize_t got = evbuffer_copyout_from(in, &at, buf, sizeof(buf));
                if (got <= 0) break;
                p->tap(p->tap_arg, from_side, buf, (size_t)got);
                seen += (size_t)got;
                evbuffer_ptr_set(in, &at, (size_t)got, EVBUFFER_PTR_ADD);
            }
        }
    }
    /* A TLS side writes a record per chunk of its output: what one read brought in may
     * sit in two chunks (libevent reserves two), which would go out as two half-size
     * records, doubling the records and writes. One chunk each time (made contiguous by a
     * copy of at most TG_PIPE_CHUNK only when it is not) keeps the records full. */
    if (n <= TG_PIPE_CHUNK) evbuffer_pullup(in, (ev_ssize_t)n); /* (NULL: left in pieces) */
    evbuffer_add_buffer(out, in);                               /* moves the chunk, no copy */
}

static int side_of(const tg_pipe *p, const struct bufferevent *bev)
{
    return bev == p->side[1];
}

static void free_side(tg_pipe *p, int i)
{
    struct bufferevent *bev = p->side[i];
    if (bev == NULL) return;
    p->side[i] = NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);           /* NULL for a plain socket */
    if (ssl) SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN); /* no close_notify wait */
    bufferevent_free(bev);
    ERR_clear_error();
}

static void finish(void *arg) /* (void *: also the pump's done callback) */
{
    tg_pipe *p = arg;
    free_side(p, 0);
    free_side(p, 1);
    if (!p->done) {
        p->done = 1;
        p->on_done(p->arg); /* may free p */
    }
}

static void on_read(struct bufferevent *from, void *arg)
{
    tg_pipe *p = arg;
    struct bufferevent *to = p->side[!side_of(p, from)];
    if (to == NULL) return;
    move(p, side_of(p, from), bufferevent_get_input(from), bufferevent_get_output(to));
    if (evbuffer_get_length(bufferevent_get_output(to)) >= TG_PIPE_HIGH) {
        bufferevent_disable(from, EV_READ); /* backpressure until 'to' drains */
        bufferevent_setwatermark(to, EV_WRITE, TG_PIPE_HIGH / 2, 0);
    }
}

static void on_drained(struct bufferevent *to, void *arg)
{
    tg_pipe *p = arg;
    if (p->closing) return;
    struct bufferevent *from = p->side[!side_of(p, to)];
    if (from) bufferevent_enable(from, EV_READ);
    bufferevent_setwatermark(to, EV_WRITE, 0, 0);
}

static void on_written_last(struct bufferevent *bev, void *arg)
{
    (void)bev;
    finish(arg);
}

/* While the last bytes drain: a peer that errs or stops reading (timeout) ends it too. */
static void on_event_last(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    finish(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    tg_pipe *p = arg;
    if (what & BEV_EVENT_CONNECTED) return;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) return;
    int i = side_of(p, bev);
    struct bufferevent *other = p->side[!i];
    /* pass on what the closing side still had */
    if (other) move(p, i, bufferevent_get_input(bev), bufferevent_get_output(other));
    free_side(p, i);
    if (other == NULL || evbuffer_get_length(bufferevent_get_output(other)) == 0) {
        finish(p);
        return;
    }
    p->closing = 1;
    bufferevent_disable(other, EV_READ);
    bufferevent_setcb(other, NULL, on_written_last, on_event_last, p);
}

tg_pipe *tg_pipe_new(struct bufferevent *a, struct bufferevent *b, int idle_secs,
                     void (*on_done)(void *arg), void *arg)
{
    tg_pipe *p = calloc(1, sizeof(*p));
    if (p == NULL) return NULL;
    p->side[0] = a;
    p->side[1] = b;
    p->on_done = on_done;
    p->arg = arg;
    p->idle_secs = idle_secs;
    struct timeval idle = {idle_secs, 0};
    for (int i = 0; i < 2; i++) {
        bufferevent_setcb(p->side[i], on_read, on_drained, on_event, p);
        bufferevent_set_timeouts(p->side[i], &idle, &idle);
        /* bulk: up to TG_PIPE_CHUNK a wakeup each way (libevent's default is 16 KiB for a
         * read, and a TLS side's reads come a record at a time below it) */
        bufferevent_set_max_single_read(p->side[i], TG_PIPE_CHUNK);
        bufferevent_set_max_single_write(p->side[i], TG_PIPE_CHUNK);
    }
    return p;
}

void tg_pipe_tap(tg_pipe *p, void (*tap)(void *arg, int side, const void *data, size_t len),
                 void *arg)
{
    p->tap = tap;
    p->tap_arg = arg;
}

unsigned long long tg_pipe_bytes(const tg_pipe *p, int side)
{
    return p->pm ? tg_pump_bytes(p->pm, side) : p->bytes[side != 0];
}

/* Both sides TLS over their own sockets, handshakes done, nothing waiting to be written:
 * the pump takes them (1), or the pipe keeps them (0). */
static int to_pump(tg_pipe *p)
{
    SSL *ssl[2];
    int fd[2];
    for (int i = 0; i < 2; i++) {
        struct bufferevent *bev = p->side[i];
        if (bev == NULL || (ssl[i] = bufferevent_openssl_get_ssl(bev)) == NULL ||
            bufferevent_get_underlying(bev) != NULL || (fd[i] = bufferevent_getfd(bev)) < 0 ||
            !SSL_is_init_finished(ssl[i]) || evbuffer_get_length(bufferevent_get_output(bev)))
            return 0;
    }
    /* the pump ends through finish: its sides are gone already, the done callback runs once */
    tg_pump *pm = tg_pump_new(bufferevent_get_base(p->side[0]), fd, ssl, p->idle_secs, finish, p);
    if (pm == NULL) return 0;
    if (p->tap) tg_pump_tap(pm, p->tap, p->tap_arg);
    for (int i = 0; i < 2; i++) {
        struct evbuffer *in = bufferevent_get_input(p->side[i]);
        size_t n = evbuffer_get_length(in);
        if (n > 0) tg_pump_carry(pm, i, evbuffer_pullup(in, -1), n);
        /* libevent frees its bufferevent later and then the SSL object once: that is its
         * reference; it cannot close the socket, which the pump's BIO does not tell */
        SSL_up_ref(ssl[i]);
        bufferevent_free(p->side[i]);
        p->side[i] = NULL;
    }
    p->pm = pm;
    return 1;
}

void tg_pipe_start(tg_pipe *p)
{
    if (to_pump(p)) {
        tg_pump_start(p->pm);
        return;
    }
    bufferevent_enable(p->side[0], EV_READ | EV_WRITE);
    bufferevent_enable(p->side[1], EV_READ | EV_WRITE);
    /* bytes that arrived before the pipe existed (e.g. with the handshake) */
    on_read(p->side[0], p);
    if (p->side[1] != NULL) on_read(p->side[1], p);
}

void tg_pipe_free(tg_pipe *p)
{
    if (p == NULL) return;
    p->done = 1; /* the owner is freeing it: no callback now */
    free_side(p, 0);
    free_side(p, 1);
    tg_pump_free(p->pm);
    free(p);
}
