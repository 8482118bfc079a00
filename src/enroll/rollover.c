/*
 * rollover.c — the enrollment thread's CA rollover job (SPEC K10): the rollovers that are
 * due (tg_keyring_rollover_run: the rule lives in the keyring), logged, and the warnings
 * at 365, 180, 90 and 30 days before a CA expires.
 *
 * A warning goes out once per CA per threshold crossed in one run of serve: the job
 * remembers the tightest threshold it logged for each CA (by name and notAfter, at most
 * ROLL_SEEN_MAX CAs; beyond that a CA is warned about at each run of the job), and at most
 * ROLL_LINES_MAX warning lines go out per run of the job, then one line with the number
 * left out. Only the enrollment thread runs this job, so its memory needs no lock.
 */
#include "enroll_int.h"

#include <stdio.h>
#include <string.h>

#define ROLL_SEEN_MAX  1024
#define ROLL_LINES_MAX 20

typedef struct seen {
    char name[TG_NAME_MAX + 1];
    long long not_after;
    int rank;
} seen;
static seen remembered[ROLL_SEEN_MAX];
static size_t nremembered;

/* 0 none, 1..4 the thresholds 365..30, 5 expired. */
static int rank_of(json_t *row)
{
    if (json_is_true(json_object_get(row, "expired"))) return 5;
    switch (json_integer_value(json_object_get(row, "warning"))) {
    case 365:
        return 1;
    case 180:
        return 2;
    case 90:
        return 3;
    case 30:
        return 4;
    default:
        return 0;
    }
}

/* Whether this rank for this CA is news; remembers it. */
static int news(const char *name, long long not_after, int rank)
{
    for (size_t i = 0; i < nremembered; i++) {
        seen *s = &remembered[i];
        if (s->not_after != not_after || strcmp(s->name, name) != 0) continue;
        if (rank <= s->rank) return 0;
        s->rank = rank;
        return 1;
    }
    if (nremembered < ROLL_SEEN_MAX && strlen(name) <= TG_NAME_MAX) {
        seen *s = &remembered[nremembered++];
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->not_after = not_after;
        s->rank = rank;
    }
    return 1;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void warn_one(json_t *row, long long now)
{
    const char *name = str(row, "name"), *state = str(row, "rollover");
    const char *succ = json_string_value(json_object_get(row, "successor"));
    long long na = (long long)json_integer_value(json_object_get(row, "not_after_unix"));
    char when[40], due[40] = "", what[TG_NAME_MAX * 2 + 160];
    tg_time_fmt((time_t)na, when, sizeof(when));
    json_t *d = json_object_get(row, "rollover_due_unix");
    if (json_is_integer(d)) tg_time_fmt((time_t)json_integer_value(d), due, sizeof(due));
    if (succ != NULL)
        snprintf(what, sizeof(what),
                 "its rollover copy '%s' takes over: make sure every client trusts it (the "
                 "proxy's CA page offers both)",
                 succ);
    else if (strcmp(state, "automatic") == 0)
        snprintf(what, sizeof(what), "serve reissues it with the same key and subject %s%s",
                 json_is_true(json_object_get(row, "due")) ? "now" : "on ",
                 json_is_true(json_object_get(row, "due")) ? "" : due);
    else if (strcmp(state, "off") == 0)
        snprintf(what, sizeof(what),
                 "automatic rollover is off (tlsgate ca rollover-lead DAYS turns it on; tlsgate "
                 "ca reissue does one now)");
    else
        snprintf(what, sizeof(what),
                 "it cannot be reissued here (its key is not in the store, or it is an "
                 "intermediate): replace it before then");
    if (na <= now)
        tg_log(TG_LOG_ERROR, "CA certificate '%s' expired on %s; %s", name, when, what);
    else
        tg_log(TG_LOG_WARNING,
               "CA certificate '%s' expires within %lld days, on %s (%lld days left); %s", name,
               (long long)json_integer_value(json_object_get(row, "warning")), when,
               (long long)json_integer_value(json_object_get(row, "days_left")), what);
}

static long long rollover_run(enroll_ctx *x, long long now)
{
    tg_err err = {0};
    json_t *doc = NULL, *plan = NULL, *v;
    size_t i;
    if (tg_keyring_rollover_run(x->kr, now, &doc, &err) != 0) {
        tg_log(TG_LOG_WARNING, "CA rollover: the store could not be read: %s", err.msg);
        return now + 600;
    }
    json_array_foreach(json_object_get(doc, "reissued"), i, v)
    {
        char until[40];
        tg_time_fmt((time_t)json_integer_value(json_object_get(v, "not_after_unix")), until,
                    sizeof(until));
        tg_log(TG_LOG_WARNING,
               "CA rollover: '%s' reissued as '%s' (same key and subject, valid until %s); %lld "
               "proxies moved to it; clients must trust the new copy before the old one "
               "expires",
               str(v, "name"), str(v, "successor"), until,
               (long long)json_integer_value(json_object_get(v, "proxies_moved")));
    }
    json_array_foreach(json_object_get(doc, "moved"), i, v)
        tg_log(TG_LOG_WARNING,
               "CA rollover: %lld proxies moved from '%s', which expires soon, to "
               "its copy '%s'",
               (long long)json_integer_value(json_object_get(v, "proxies_moved")), str(v, "name"),
               str(v, "successor"));
    json_array_foreach(json_object_get(doc, "failed"), i, v)
        tg_log(TG_LOG_ERROR, "CA rollover of '%s' failed (tried again in an hour): %s",
               str(v, "name"), str(v, "error"));
    json_decref(doc);
    if (tg_keyring_rollover_plan(x->kr, now, &plan, &err) != 0) {
        tg_log(TG_LOG_WARNING, "CA rollover: the plan could not be read: %s", err.msg);
        return now + 600;
    }
    long long next = now + ENROLL_IDLE;
    int lines = 0, more = 0;
    json_array_foreach(plan, i, v)
    {
        json_t *d = json_object_get(v, "rollover_due_unix");
        if (strcmp(str(v, "rollover"), "automatic") == 0 && json_integer_value(d) > now &&
            json_integer_value(d) < next)
            next = json_integer_value(d);
        int rank = rank_of(v);
        long long na = (long long)json_integer_value(json_object_get(v, "not_after_unix"));
        if (rank == 0 || !news(str(v, "name"), na, rank)) continue;
        if (lines++ < ROLL_LINES_MAX)
            warn_one(v, now);
        else
            more++;
    }
    if (more > 0)
        tg_log(TG_LOG_WARNING,
               "%d more CA certificates expire within a year (tlsgate ca rollover-plan lists "
               "them)",
               more);
    json_decref(plan);
    return next;
}

const enroll_job enroll_job_rollover = {"rollover", rollover_run};
