/*
 * rollover.c — CA rollovers planned ahead (SPEC K10, the root CA FAQ): every CA's dates,
 * and the reissue of a CA whose key is held before it expires.
 *
 * A CA's copies are the CA certificates with its subject and key (what `ca reissue`
 * makes); a family's newest copy (latest notAfter, then highest id) carries the family's
 * rollover, the older ones are "done". A CA is due at notAfter minus the lead time, but not
 * before half its validity has passed: a reissue gives the original's validity length from
 * now, so earlier it would end barely later than the original (a CA made today for a year
 * under a year's lead time would be copied at once, and its copy at once again); a CA that
 * lives shorter than twice the lead time is reissued at each half-life instead.
 * Each rollover is one transaction that checks again, inside it, that no copy ends later:
 * two processes running it at once reissue once.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY 86400LL

typedef struct carow {
    int64_t id, key_id, predecessor_id;
    char *name, *subject, *cn;
    unsigned char spki[32];
    long long not_before, not_after;
    int self_signed;
    /* computed */
    long long succ; /* index of the family's newest copy + 1, or of a predecessor-linked
                     * successor + 1; 0: none */
} carow;

typedef struct cas {
    carow *v;
    size_t n, cap;
    int failed;
} cas;

static void cas_free(cas *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].subject);
        free(l->v[i].cn);
    }
    free(l->v);
}

static int collect(const tg_store_cert *c, void *arg)
{
    cas *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        carow *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) return l->failed = 1;
        l->v = v;
        l->cap = cap;
    }
    carow *r = &l->v[l->n];
    memset(r, 0, sizeof(*r));
    r->id = c->id;
    r->key_id = c->key_id;
    r->predecessor_id = c->predecessor_id;
    r->name = tg_strdup(c->name);
    r->subject = tg_strdup(c->subject ? c->subject : "");
    r->cn = tg_strdup(c->subject_cn && c->subject_cn[0] ? c->subject_cn
                                                        : (c->subject ? c->subject : ""));
    memcpy(r->spki, c->spki_sha256, 32);
    r->not_before = c->not_before;
    r->not_after = c->not_after;
    r->self_signed = c->self_signed;
    l->n++;
    if (r->name == NULL || r->subject == NULL || r->cn == NULL) return l->failed = 1;
    return 0;
}

/* Family order: subject, key, then age (notAfter, id): a family's newest copy is last. */
static int by_family(const void *a, const void *b)
{
    const carow *x = a, *y = b;
    int c = strcmp(x->subject, y->subject);
    if (c == 0) c = memcmp(x->spki, y->spki, 32);
    if (c == 0) c = (x->not_after > y->not_after) - (x->not_after < y->not_after);
    if (c == 0) c = (x->id > y->id) - (x->id < y->id);
    return c;
}

typedef struct predref {
    int64_t pred;
    size_t at;
} predref;

static int by_predecessor(const void *a, const void *b)
{
    const predref *x = a, *y = b;
    return (x->pred > y->pred) - (x->pred < y->pred);
}

static int by_expiry(const void *a, const void *b)
{
    const carow *x = a, *y = b;
    int c = (x->not_after > y->not_after) - (x->not_after < y->not_after);
    return c ? c : strcmp(x->name, y->name);
}

/* Every CA, each with its successor (the family's newest copy, else a certificate that
 * names it as predecessor), in expiry order. */
static int load_cas(tg_keyring *kr, cas *l, tg_err *err)
{
    memset(l, 0, sizeof(*l));
    int rc = tg_store_cert_each(kr->st, 1, 0, collect, l, err);
    if (rc == 0 && l->failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        cas_free(l);
        return rc;
    }
    if (l->n == 0) return 0; /* no CA (and qsort must not be handed a null array) */
    qsort(l->v, l->n, sizeof(*l->v), by_family);
    for (size_t i = 0; i < l->n;) {
        size_t j = i;
        while (j + 1 < l->n && strcmp(l->v[j + 1].subject, l->v[i].subject) == 0 &&
               memcmp(l->v[j + 1].spki, l->v[i].spki, 32) == 0)
            j++;
        for (size_t k = i; k < j; k++)
            l->v[k].succ = (long long)j + 1;
        i = j + 1;
    }
    /* a renewal with another key also ends a CA's turn: the CAs by predecessor, searched */
    predref *by_pred = malloc(l->n * sizeof(*by_pred));
    if (by_pred == NULL) {
        cas_free(l);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    for (size_t k = 0; k < l->n; k++)
        by_pred[k] = (predref){l->v[k].predecessor_id, k};
    qsort(by_pred, l->n, sizeof(*by_pred), by_predecessor);
    for (size_t k = 0; k < l->n; k++) {
        if (l->v[k].succ != 0) continue;
        size_t lo = 0, hi = l->n; /* the first entry whose predecessor is >= this id */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (by_pred[mid].pred < l->v[k].id)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < l->n && by_pred[lo].pred == l->v[k].id; lo++)
            if (l->v[by_pred[lo].at].not_after > l->v[k].not_after)
                l->v[k].succ = (long long)by_pred[lo].at + 1;
    }
    free(by_pred);
    /* successors as ids: the order changes below */
    for (size_t k = 0; k < l->n; k++)
        l->v[k].succ = l->v[k].succ ? l->v[l->v[k].succ - 1].id : 0;
    qsort(l->v, l->n, sizeof(*l->v), by_expiry);
    return 0;
}

static const carow *find_id(const cas *l, int64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].id == id) return &l->v[i];
    return NULL;
}

/* Whole days left, rounded up as the certificates' rows have them (keyring.c). */
static long long days_left(long long not_after, long long now)
{
    long long left = not_after - now;
    return left > 0 ? (left + DAY - 1) / DAY : -(-left / DAY);
}

static int warning_of(long long not_after, long long now)
{
    static const int t[] = TG_ROLLOVER_WARN_DAYS;
    int w = 0;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (not_after - now <= t[i] * DAY) w = t[i];
    return w;
}

/* When r's rollover is due: notAfter minus the lead time, not before half its validity. */
static long long due_date(const carow *r, int lead)
{
    long long at = r->not_after - (long long)lead * DAY;
    long long half = r->not_before + (r->not_after - r->not_before) / 2;
    return at > half ? at : half;
}

/* When the job reissues r, or 0 when it never does (no key, intermediate, done, off). */
static long long due_at(const carow *r, int lead)
{
    if (lead <= 0 || r->key_id == 0 || !r->self_signed || r->succ != 0) return 0;
    return due_date(r, lead);
}

static const char *state_of(const carow *r, int lead)
{
    if (r->succ != 0) return "done";
    if (r->key_id == 0 || !r->self_signed) return "manual";
    return lead > 0 ? "automatic" : "off";
}

int tg_keyring_rollover_lead(tg_keyring *kr, int *days, tg_err *err)
{
    char buf[32] = "";
    *days = TG_ROLLOVER_LEAD_DEFAULT;
    if (tg_store_setting_get(kr->st, TG_ROLLOVER_LEAD_KEY, buf, sizeof(buf), NULL) != 0 || !buf[0])
        return 0;
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end != '\0' || v < 0 || v > TG_DAYS_MAX)
        return tg_err_set(err, TG_E_STORE,
                          "the stored CA rollover lead time '%s' is damaged; set it again with "
                          "tlsgate ca rollover-lead DAYS",
                          buf);
    *days = (int)v;
    return 0;
}

int tg_keyring_rollover_lead_set(tg_keyring *kr, int days, json_t **out, tg_err *err)
{
    if (out) *out = NULL;
    if (days < 0 || days > TG_DAYS_MAX)
        return tg_err_fset(err, TG_E_INVALID, "days",
                           "the rollover lead time is a number of days from 0 (off) to %d",
                           TG_DAYS_MAX);
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", days);
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = kr_finish(kr, tg_store_setting_set(kr->st, TG_ROLLOVER_LEAD_KEY, buf, err), err);
    if (rc == 0 && out && (*out = json_pack("{s:i}", TG_ROLLOVER_LEAD_KEY, days)) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return rc;
}

static json_t *plan_row(const cas *l, const carow *r, int lead, long long now)
{
    long long due = due_at(r, lead);
    const carow *s = r->succ ? find_id(l, r->succ) : NULL;
    json_t *row = json_pack("{s:o, s:o, s:b, s:b}", "name", kr_json_text(r->name), "issued_to",
                            kr_json_text(r->cn), "private_key", r->key_id != 0, "self_signed",
                            r->self_signed);
    if (row == NULL || kr_json_time(row, "not_before", r->not_before) != 0 ||
        kr_json_time(row, "not_after", r->not_after) != 0)
        goto fail;
    json_t *rest = json_pack(
        "{s:I, s:b, s:i, s:o, s:s}", "days_left", (json_int_t)days_left(r->not_after, now),
        "expired", r->not_after <= now, "warning", warning_of(r->not_after, now), "successor",
        s ? kr_json_text(s->name) : json_null(), "rollover", state_of(r, lead));
    if (rest == NULL || json_object_update_new(row, rest) != 0) goto fail;
    if (kr_json_time(row, "rollover_due", due_date(r, lead)) != 0) goto fail;
    if (json_object_set_new(row, "due", json_boolean(due != 0 && now >= due)) != 0) goto fail;
    return row;
fail:
    json_decref(row);
    return NULL;
}

int tg_keyring_rollover_plan(tg_keyring *kr, long long now, json_t **out, tg_err *err)
{
    *out = NULL;
    int lead;
    int rc = tg_keyring_rollover_lead(kr, &lead, err);
    cas l;
    if (rc != 0 || (rc = load_cas(kr, &l, err)) != 0) return rc;
    json_t *rows = json_array();
    for (size_t i = 0; rows != NULL && i < l.n; i++)
        if (json_array_append_new(rows, plan_row(&l, &l.v[i], lead, now)) != 0) {
            json_decref(rows);
            rows = NULL;
        }
    cas_free(&l);
    if (rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    *out = rows;
    return 0;
}

/* ---- doing the rollovers ---- */

typedef struct countctx {
    int64_t cert;
    int n;
} countctx;

static int count_one(const tg_store_proxy *p, void *arg)
{
    countctx *c = arg;
    if (p->signing_cert_id == c->cert) c->n++;
    return 0;
}

/* The proxies (client and server) that sign with cert. */
static int proxies_on(tg_keyring *kr, int64_t cert, int *n, tg_err *err)
{
    countctx c = {cert, 0};
    int rc = tg_store_proxy_each(kr->st, "client", count_one, &c, err);
    if (rc == 0) rc = tg_store_proxy_each(kr->st, "server", count_one, &c, err);
    *n = c.n;
    return rc;
}

typedef struct laterctx {
    int64_t id;
    unsigned char spki[32];
    long long not_after;
    int found;
} laterctx;

static int later_one(const tg_store_cert *c, void *arg)
{
    laterctx *x = arg;
    if (c->id != x->id && memcmp(c->spki_sha256, x->spki, 32) == 0 && c->is_ca &&
        (c->not_after > x->not_after || (c->not_after == x->not_after && c->id > x->id)))
        x->found = 1;
    return x->found;
}

static json_t *audit_detail(const char *successor, long long not_after, int moved)
{
    char t[40];
    tg_time_rfc3339((time_t)not_after, t, sizeof(t));
    return json_pack("{s:s, s:s, s:i}", "successor", successor, "not_after", t, "proxies_moved",
                     moved);
}

/* One rollover in its own transaction: *done 1 when it reissued (0: nothing left to do). */
static int roll_one(tg_keyring *kr, const carow *r, json_t *reissued, int *done, tg_err *err)
{
    *done = 0;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_cert old = {0}, row = {0};
    json_t *detail = NULL;
    int moved = 0;
    laterctx x = {.id = r->id};
    if ((rc = tg_store_cert_get(kr->st, r->id, &old, err)) != 0) goto end;
    memcpy(x.spki, old.spki_sha256, 32);
    x.not_after = old.not_after;
    if ((rc = tg_store_cert_each_subject(kr->st, old.subject, later_one, &x, err)) != 0 || x.found)
        goto end; /* another process rolled it over meanwhile */
    long long span = (old.not_after - old.not_before + DAY - 1) / DAY;
    int days = span < 1 ? 1 : span > TG_DAYS_MAX ? TG_DAYS_MAX : (int)span;
    if ((rc = kr_ca_reissue_tx(kr, &old, days, NULL, &row, err)) != 0 ||
        (rc = proxies_on(kr, old.id, &moved, err)) != 0 ||
        (rc = kr_proxy_follow(kr, old.id, row.id, 0, err)) != 0)
        goto end;
    detail = audit_detail(row.name, row.not_after, moved);
    tg_audit_entry e = {.actor = "serve",
                        .source = "serve",
                        .action = "ca.rollover",
                        .object = old.name,
                        .detail = detail};
    if (detail == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = kr_audit_add_tx(kr, &e, err);
end:
    rc = kr_finish(kr, rc, err);
    if (rc == 0 && row.id != 0) {
        *done = 1;
        json_t *d = json_pack("{s:o, s:s, s:i}", "name", kr_json_text(old.name), "successor",
                              row.name, "proxies_moved", moved);
        if (d != NULL) kr_json_time(d, "not_after", row.not_after);
        json_array_append_new(reissued, d);
    }
    json_decref(detail);
    tg_store_cert_clear(&old);
    tg_store_cert_clear(&row);
    return rc;
}

/* The proxies on r (a copy close to its end) move to its newest copy s. */
static int follow_one(tg_keyring *kr, const carow *r, const carow *s, json_t *moved_list,
                      tg_err *err)
{
    int n = 0;
    int rc = proxies_on(kr, r->id, &n, err);
    if (rc != 0 || n == 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    json_t *detail = NULL;
    if ((rc = proxies_on(kr, r->id, &n, err)) != 0 || n == 0 ||
        (rc = kr_proxy_follow(kr, r->id, s->id, 0, err)) != 0)
        goto end;
    detail = audit_detail(s->name, s->not_after, n);
    tg_audit_entry e = {.actor = "serve",
                        .source = "serve",
                        .action = "ca.rollover",
                        .object = r->name,
                        .detail = detail};
    rc = detail ? kr_audit_add_tx(kr, &e, err) : tg_err_set(err, TG_E_INTERNAL, "out of memory");
end:
    rc = kr_finish(kr, rc, err);
    if (rc == 0 && n > 0 && detail != NULL)
        json_array_append_new(moved_list,
                              json_pack("{s:o, s:o, s:i}", "name", kr_json_text(r->name),
                                        "successor", kr_json_text(s->name), "proxies_moved", n));
    json_decref(detail);
    return rc;
}

int tg_keyring_rollover_run(tg_keyring *kr, long long now, json_t **out, tg_err *err)
{
    *out = NULL;
    int lead;
    int rc = tg_keyring_rollover_lead(kr, &lead, err);
    if (rc != 0) return rc;
    json_t *doc =
        json_pack("{s:i, s:[], s:[], s:[]}", "lead_days", lead, "reissued", "moved", "failed");
    if (doc == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    json_t *reissued = json_object_get(doc, "reissued"), *moved = json_object_get(doc, "moved"),
           *failed = json_object_get(doc, "failed");
    cas l = {0};
    if (lead == 0 || (rc = load_cas(kr, &l, err)) != 0) goto end;
    for (size_t i = 0; i < l.n; i++) {
        const carow *r = &l.v[i];
        long long due = due_at(r, lead);
        tg_err why = {0};
        int done = 0, frc = 0;
        if (due != 0 && now >= due)
            frc = roll_one(kr, r, reissued, &done, &why);
        else if (r->succ != 0 && r->key_id != 0 &&
                 r->not_after - now <= TG_ROLLOVER_FOLLOW_DAYS * DAY) {
            const carow *s = find_id(&l, r->succ);
            if (s != NULL && s->key_id != 0) /* a proxy can sign only with a key we hold */
                frc = follow_one(kr, r, s, moved, &why);
        }
        if (frc != 0)
            json_array_append_new(
                failed, json_pack("{s:o, s:s}", "name", kr_json_text(r->name), "error", why.msg));
    }
end:
    cas_free(&l);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}
