/*
 * expiry.c — serve's periodic check (SPEC K9, M4): chain statuses recomputed (they go
 * stale with time alone, e.g. when an intermediate expires) and the certificates serve can
 * hand out that expire soon or have expired, logged.
 *
 * Runs on the index builder's thread (rebuild.c), which is the only writer of the index
 * and has its own store connection: no worker waits for it and the index is read without
 * the selector's lock. One line per certificate per check, naming the tightest threshold
 * it is within (30, 14, 7 or 1 days); at most TG_SERVE_EXPIRY_LINES lines, then one line
 * with the number left out. The refresh commits when a status changed: serve then rebuilds
 * its index as for any other change. The check at start does not refresh: every change
 * recomputes the statuses it touches already, and a refresh parses every certificate in
 * one write transaction (100,000: ~28 s of CPU, during which other writers wait), so it
 * runs at the periodic checks only.
 */
#include "tls_int.h"

#include <stdio.h>

#define DAY 86400LL

typedef struct checkctx {
    const tg_index *idx;
    long long now;
    int lines, expired, soon, more;
} checkctx;

static int threshold(long long left)
{
    static const int days[] = {1, 7, 14, 30};
    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
        if (left <= days[i] * DAY) return days[i];
    return 30;
}

static int one(const tg_expiring *e, void *arg)
{
    checkctx *c = arg;
    long long left = e->not_after - c->now;
    if (left <= 0)
        c->expired++;
    else
        c->soon++;
    if (c->lines >= TG_SERVE_EXPIRY_LINES) {
        c->more++;
        return 0;
    }
    c->lines++;
    char when[40];
    tg_time_fmt((time_t)e->not_after, when, sizeof(when));
    size_t names = c->idx ? tg_index_names_for(c->idx, e->id) : 0;
    char use[96];
    if (e->is_default && names > 0)
        snprintf(use, sizeof(use), "the default certificate, and served for %zu name%s", names,
                 names == 1 ? "" : "s");
    else if (e->is_default)
        snprintf(use, sizeof(use), "the default certificate");
    else if (names > 0)
        snprintf(use, sizeof(use), "served for %zu name%s", names, names == 1 ? "" : "s");
    else
        use[0] = '\0';
    if (left <= 0 && use[0])
        tg_log(TG_LOG_ERROR,
               "certificate '%s' expired on %s and is still in use (%s): replace or "
               "renew it",
               e->name, when, use);
    else if (left <= 0)
        tg_log(TG_LOG_WARNING, "certificate '%s' expired on %s (not in use)", e->name, when);
    else
        tg_log(TG_LOG_WARNING, "certificate '%s' expires within %d day%s, on %s (%lld h left%s%s)",
               e->name, threshold(left), threshold(left) == 1 ? "" : "s", when, left / 3600,
               use[0] ? "; " : "", use);
    return 0;
}

void tg_expiry_check(tg_keyring *kr, const tg_index *idx, long long now, int every_secs,
                     int refresh)
{
    json_t *doc = NULL;
    tg_err err = {0};
    if (!refresh)
        ; /* at start: the expiry lines only (stored facts, no parse) */
    else if (tg_keyring_refresh(kr, &doc, &err) != 0) {
        tg_log(TG_LOG_WARNING, "chain statuses could not be recomputed: %s", err.msg);
        tg_err_clear(&err);
    } else {
        json_int_t changed = json_integer_value(json_object_get(doc, "changed"));
        if (changed > 0)
            tg_log(TG_LOG_INFO, "chain statuses recomputed: %lld changed", (long long)changed);
    }
    json_decref(doc);
    checkctx c = {.idx = idx, .now = now};
    if (tg_keyring_expiring_each(kr, now + 30 * DAY + 1, one, &c, &err) != 0) {
        tg_log(TG_LOG_WARNING, "the expiry check could not read the certificates: %s", err.msg);
        return;
    }
    if (c.more > 0)
        tg_log(TG_LOG_WARNING,
               "%d more certificates expire within 30 days or have expired (tlsgate cert list "
               "--expiring 30 lists them)",
               c.more);
    tg_log(TG_LOG_INFO, "expiry check: expiring within 30 days %d, expired %d; next check in %d s",
           c.soon, c.expired, every_secs);
}
