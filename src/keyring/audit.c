/*
 * audit.c — the audit log (issue 10, M3): who did what, when, from where, and how it
 * ended. Faces (the CLI, the API) append a row for every change they make and read the
 * log back newest first.
 *
 * Invariants: a row is bounded (each text field TG_AUDIT_TEXT_MAX bytes, cleaned of
 * controls; the detail TG_AUDIT_DETAIL_MAX bytes of JSON, members named like secrets
 * dropped), and the table holds the newest TG_AUDIT_KEEP rows. No secret is ever given
 * to it by the faces; the member filter is a second line, not the first.
 */
#include "keyring_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *tg_outcome_name(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case TG_E_USAGE:
        return "usage";
    case TG_E_INVALID:
        return "invalid";
    case TG_E_NOTFOUND:
        return "not found";
    case TG_E_CONFLICT:
        return "conflict";
    case TG_E_PASSWORD:
        return "password";
    case TG_E_STORE:
        return "store";
    case TG_E_IO:
        return "io";
    default:
        return "internal";
    }
}

/* Members that name a secret are dropped from a detail, at any depth. */
static int secret_member(const char *k)
{
    static const char *const names[] = {"password", "passphrase", "secret",
                                        "token",    "key_pem",    "private_key_pem"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(k, names[i]) == 0) return 1;
    return 0;
}

static void strip(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, m)
        {
            if (secret_member(k))
                json_object_del(v, k);
            else
                strip(m);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) strip(m);
    }
}

/* The detail as stored: compact JSON of at most TG_AUDIT_DETAIL_MAX bytes (new string). */
static char *detail_text(const json_t *detail)
{
    if (detail == NULL) return NULL;
    json_t *copy = json_deep_copy(detail);
    if (copy == NULL) return NULL;
    strip(copy);
    char *s = json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(copy);
    if (s != NULL && strlen(s) > TG_AUDIT_DETAIL_MAX) {
        size_t n = strlen(s);
        free(s);
        json_t *t = json_pack("{s:I}", "truncated", (json_int_t)n);
        s = t ? json_dumps(t, JSON_COMPACT) : NULL;
        json_decref(t);
    }
    return s;
}

int kr_audit_add_tx(tg_keyring *kr, const tg_audit_entry *e, tg_err *err)
{
    char actor[TG_AUDIT_TEXT_MAX + 4], source[TG_AUDIT_TEXT_MAX + 4];
    char action[TG_AUDIT_TEXT_MAX + 4], object[TG_AUDIT_TEXT_MAX + 4];
    if (e->actor == NULL || !*e->actor || e->action == NULL || !*e->action)
        return tg_err_set(err, TG_E_INTERNAL, "an audit row needs an actor and an action");
    tg_store_audit a = {
        .time = e->time > 0 ? e->time : (long long)time(NULL),
        .actor = tg_text_clean(e->actor, actor, sizeof(actor), TG_AUDIT_TEXT_MAX),
        .source =
            tg_text_clean(e->source ? e->source : "", source, sizeof(source), TG_AUDIT_TEXT_MAX),
        .action = tg_text_clean(e->action, action, sizeof(action), TG_AUDIT_TEXT_MAX),
        .object =
            tg_text_clean(e->object ? e->object : "", object, sizeof(object), TG_AUDIT_TEXT_MAX),
        .outcome = tg_outcome_name(e->outcome),
    };
    char *detail = detail_text(e->detail);
    if (e->detail != NULL && detail == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    a.detail = detail;
    int rc = tg_store_audit_add(kr->st, &a, TG_AUDIT_KEEP, err);
    free(detail);
    return rc;
}

int tg_keyring_audit_add(tg_keyring *kr, const tg_audit_entry *e, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    return rc != 0 ? rc : kr_finish(kr, kr_audit_add_tx(kr, e, err), err);
}

typedef struct auditctx {
    json_t *rows;
    int failed;
} auditctx;

static int audit_row(const tg_store_audit *a, void *arg)
{
    auditctx *l = arg;
    char t[40];
    time_t tt = (time_t)a->time;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *detail = a->detail ? json_loads(a->detail, JSON_DECODE_ANY, NULL) : NULL;
    json_t *row = json_pack("{s:I, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                            (json_int_t)a->id, "time", t, "time_unix", (json_int_t)a->time, "actor",
                            kr_json_text(a->actor), "source", kr_json_text(a->source), "action",
                            kr_json_text(a->action), "object", kr_json_opt(a->object), "outcome",
                            kr_json_text(a->outcome), "detail", detail ? detail : json_null());
    l->failed = json_array_append_new(l->rows, row) != 0;
    return l->failed;
}

int tg_keyring_audit_list(tg_keyring *kr, const tg_audit_filter *f, json_t **out, tg_err *err)
{
    tg_audit_filter d = {0};
    if (f == NULL) f = &d;
    long long limit = f->limit == 0 ? 100 : f->limit;
    if (limit < 1 || limit > TG_AUDIT_KEEP)
        return tg_err_fset(err, TG_E_INVALID, "limit", "the limit must be 1 to %d rows",
                           TG_AUDIT_KEEP);
    if (f->offset < 0)
        return tg_err_fset(err, TG_E_INVALID, "offset", "the offset must be 0 or more");
    if (f->since < 0)
        return tg_err_fset(err, TG_E_INVALID, "since", "the time must not be before 1970");
    auditctx l = {json_array(), 0};
    if (l.rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_audit_each(kr->st, f->since, limit, f->offset, audit_row, &l, err);
    if (rc == 0 && l.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
    return 0;
}

/* Digits of a fixed width at s (advances it); -1 when they are not there. */
static int time_bad(const char *field, tg_err *err)
{
    return tg_err_fset(err, TG_E_INVALID, field,
                       "a time must be RFC 3339 (2025-01-31T12:00:00Z, an offset such as "
                       "+01:00, or a date alone) or unix seconds");
}

int tg_keyring_time_parse(const char *s, const char *field, long long *out, tg_err *err)
{
    long long t;
    if (tg_time_parse(s, &t) != 0 || t < 0) return time_bad(field, err); /* none before 1970 */
    *out = t;
    return 0;
}
