/*
 * acme_http.c — serve's plain-HTTP listener for ACME http-01 (RFC 8555 §8.3): it answers
 * GET /.well-known/acme-challenge/TOKEN with the key authorization a pending challenge in
 * the store holds, and 404 to anything else.
 *
 * Invariants:
 *   - a request head is at most ACME_HTTP_HEAD_MAX bytes and must be whole within
 *     ACME_HTTP_SECS of accept (a deadline, not an inactivity timer); one answer, then
 *     the connection closes;
 *   - each worker reads the store through its own keyring handle, opened on first use on
 *     that worker's thread; connections live on their worker's list and are freed there,
 *     or by acme_http_stop once the loops have ended.
 */
#include "enroll_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ACME_HTTP_HEAD_MAX 4096
#define ACME_HTTP_SECS     10
#define ACME_HTTP_PREFIX   "/.well-known/acme-challenge/"

typedef struct hconn hconn;
typedef struct hworker {
    tg_keyring *kr;
    hconn *conns;
} hworker;

struct acme_http {
    char *home, *addr;
    tg_listener *l;
    hworker *w;
    int nw;
};

struct hconn {
    hconn *prev, *next;
    hworker *hw;
    tg_worker *w;
    struct bufferevent *bev;
    struct event *deadline;
    acme_http *h;
    size_t dropped; /* bytes read and dropped after the answer */
};

static void conn_free(hconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->hw->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->deadline) event_free(c->deadline);
    if (c->bev) bufferevent_free(c->bev);
    tg_worker_conn_end(c->w, 1);
    free(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_free(arg);
}

/* After the answer: what the client still sends is read and dropped until it closes (at
 * most ACME_HTTP_LINGER bytes, and never past the deadline), so that closing with unread
 * input does not reset the connection before the client has read the answer. */
#define ACME_HTTP_LINGER (64 * 1024)

static void on_drop(struct bufferevent *bev, void *arg)
{
    hconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->dropped += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->dropped > ACME_HTTP_LINGER) conn_free(c);
}

static void on_written(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    on_drop(bev, arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    conn_free(arg);
}

static void answer(hconn *c, int status, const char *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\nCache-Control: no-store\r\n\r\n%s",
                        status,
                        status == 200   ? "OK"
                        : status == 404 ? "Not Found"
                                        : "Bad Request",
                        status == 200 ? "application/octet-stream" : "text/plain", strlen(body),
                        body);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_setcb(c->bev, on_drop, on_written, on_event, c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    hconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) > ACME_HTTP_HEAD_MAX)
            answer(c, 400, "request head too large\n");
        return;
    }
    if ((size_t)end.pos > ACME_HTTP_HEAD_MAX) {
        answer(c, 400, "request head too large\n");
        return;
    }
    char line[512];
    size_t n = 0;
    char *nl = NULL;
    {
        unsigned char *p = evbuffer_pullup(in, end.pos);
        size_t len = (size_t)end.pos;
        char *e = memchr(p, '\r', len);
        n = e ? (size_t)(e - (char *)p) : len;
        if (n >= sizeof(line)) n = sizeof(line) - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        nl = line;
    }
    char method[8], target[400], version[16];
    char token[160], keyauth[512];
    if (sscanf(nl, "%7s %399s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        answer(c, 400, "bad request\n");
        return;
    }
    const char *t = target;
    if (strncmp(t, "http://", 7) == 0 && (t = strchr(t + 7, '/')) == NULL) t = "/";
    size_t pl = strlen(ACME_HTTP_PREFIX);
    if (strcmp(method, "GET") != 0 || strncmp(t, ACME_HTTP_PREFIX, pl) != 0 ||
        strlen(t + pl) == 0 || strlen(t + pl) >= sizeof(token) ||
        strspn(t + pl, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            strlen(t + pl)) {
        answer(c, 404, "not found\n");
        return;
    }
    snprintf(token, sizeof(token), "%s", t + pl);
    tg_err err = {0};
    if (c->hw->kr == NULL && tg_keyring_open(c->h->home, &c->hw->kr, &err) != 0) {
        tg_log(TG_LOG_ERROR, "ACME http-01: the store could not be opened: %s", err.msg);
        c->hw->kr = NULL;
    }
    if (c->hw->kr != NULL &&
        tg_keyring_acme_http_answer(c->hw->kr, token, keyauth, sizeof(keyauth)) == 0)
        answer(c, 200, keyauth);
    else
        answer(c, 404, "not found\n");
}

static void on_accept(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg)
{
    (void)peer, (void)peerlen;
    acme_http *h = arg;
    hworker *hw = &h->w[tg_worker_index(w)];
    hconn *c = calloc(1, sizeof(*c));
    struct event_base *base = tg_worker_base(w);
    if (c == NULL) {
        evutil_closesocket(fd);
        tg_worker_conn_end(w, 1);
        return;
    }
    c->hw = hw;
    c->w = w;
    c->h = h;
    c->next = hw->conns;
    if (hw->conns) hw->conns->prev = c;
    hw->conns = c;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->deadline = evtimer_new(base, on_deadline, c);
    struct timeval tv = {ACME_HTTP_SECS, 0};
    if (c->bev == NULL || c->deadline == NULL || evtimer_add(c->deadline, &tv) != 0) {
        if (c->bev == NULL) evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    bufferevent_setwatermark(c->bev, EV_READ, 0, ACME_HTTP_HEAD_MAX + 8);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ);
}

int acme_http_start(tg_workers *ws, const char *home, const char *addr, acme_http **out,
                    tg_err *err)
{
    *out = NULL;
    acme_http *h = calloc(1, sizeof(*h));
    if (h == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    h->nw = tg_workers_n(ws);
    h->w = calloc((size_t)h->nw, sizeof(*h->w));
    h->home = tg_strdup(home);
    h->addr = tg_strdup(addr);
    if (h->w == NULL || h->home == NULL || h->addr == NULL) {
        acme_http_stop(h);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    h->l = tg_workers_listen(ws, addr, 0, on_accept, NULL, h, err);
    if (h->l == NULL) {
        acme_http_stop(h);
        return err->code ? err->code : TG_E_IO;
    }
    *out = h;
    return 0;
}

const char *acme_http_addr(const acme_http *h)
{
    return h && h->l ? tg_listener_addr(h->l) : NULL;
}

void acme_http_stop(acme_http *h)
{
    if (h == NULL) return;
    if (h->l) tg_listener_close(h->l);
    for (int i = 0; h->w && i < h->nw; i++) {
        while (h->w[i].conns)
            conn_free(h->w[i].conns);
        tg_keyring_close(h->w[i].kr);
    }
    free(h->w);
    free(h->home);
    free(h->addr);
    free(h);
}
