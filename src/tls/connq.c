/*
 * connq.c — lists of connections ordered by deadline, one timer per list.
 *
 * Every entry of a list is due a constant time after it was pushed (the list's `secs`),
 * so pushing at the tail keeps the list ordered by deadline and one timer, armed for the
 * head, is enough however many connections wait. A list with secs 0 has no deadline (open
 * connections, whose limit is the bufferevents' inactivity timeout). The owner's expire
 * callback closes an entry past due and must take it off its list (freeing it does).
 * Invariant: an entry is in at most one list, and only the list's worker thread touches it.
 */
#include "tls_int.h"

#include <event2/event.h>

static void arm(tg_connq *q)
{
    if (q->head == NULL || q->secs == 0) return;
    long long due = q->head->due;
    if (q->armed_at != 0 && q->armed_at <= due) return; /* armed for earlier */
    long long t = tg_now_ms();
    long long d = due > t ? due - t : 0;
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    if (evtimer_add(q->timer, &tv) == 0) q->armed_at = due;
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_connq *q = arg;
    long long t = tg_now_ms();
    q->armed_at = 0;
    while (q->head && q->head->due <= t) {
        tg_qlink *l = q->head;
        q->expire(l, q->arg);
        if (q->head == l) tg_connq_remove(l); /* the owner kept it: not in this list now */
    }
    arm(q);
}

int tg_connq_init(tg_connq *q, struct event_base *base, int secs,
                  void (*expire)(tg_qlink *l, void *arg), void *arg)
{
    *q = (tg_connq){.secs = secs, .expire = expire, .arg = arg};
    if (secs == 0) return 0;
    q->timer = evtimer_new(base, on_due, q);
    return q->timer ? 0 : -1;
}

void tg_connq_clear(tg_connq *q)
{
    if (q->timer) event_free(q->timer);
    q->timer = NULL;
}

void tg_connq_remove(tg_qlink *l)
{
    tg_connq *q = l->q;
    if (q == NULL) return;
    if (l->prev)
        l->prev->next = l->next;
    else
        q->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        q->tail = l->prev;
    l->prev = l->next = NULL;
    l->q = NULL;
    q->n--;
}

void tg_connq_push(tg_connq *q, tg_qlink *l)
{
    tg_connq_remove(l);
    l->q = q;
    l->prev = q->tail;
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
    q->n++;
    if (q->secs != 0) {
        l->due = tg_now_ms() + (long long)q->secs * 1000;
        arm(q);
    }
}
