/*
 * observe.c — what an operator watches (SPEC M4, K9): certificates about to expire, the
 * counts behind the metrics, serve's running state and the configuration as one document.
 *
 * serve's state file (TG_SERVE_STATE_FILE in the store's directory) is written by serve
 * through tg_keyring_serve_state_write and read back here: it records the process (pid
 * and its start time, so that a file left by a killed serve, or a pid reused since, is
 * told apart from a running serve) beside what serve says of itself (listeners, options).
 */
#include "keyring_int.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- expiry ---- */

typedef struct expctx {
    int (*fn)(const tg_expiring *e, void *arg);
    void *arg;
    int64_t default_id;
} expctx;

static int exp_row(int64_t id, const char *name, long long not_after, void *arg)
{
    expctx *c = arg;
    tg_expiring e = {id, name ? name : "", not_after, id == c->default_id};
    return c->fn(&e, c->arg);
}

int tg_keyring_expiring_each(tg_keyring *kr, long long before,
                             int (*fn)(const tg_expiring *e, void *arg), void *arg, tg_err *err)
{
    expctx c = {fn, arg, tg_store_ref_get(kr->st, TG_REF_DEFAULT)};
    return tg_store_servable_expiring(kr->st, before, exp_row, &c, err);
}

/* ---- counts ---- */

typedef struct tally {
    json_t *by_status, *servable;
    long long total;
    int failed;
} tallyctx;

static int tally_row(const char *status, int servable, int validity, long long n, void *arg)
{
    tallyctx *t = arg;
    const char *st = status && status[0] ? status : "unknown";
    json_t *cur = json_object_get(t->by_status, st);
    if (json_object_set_new(t->by_status, st, json_integer(json_integer_value(cur) + n)) != 0)
        t->failed = 1;
    if (servable) {
        static const char *const words[] = {"valid", "not_yet_valid", "expired"};
        const char *w = words[validity >= 0 && validity <= 2 ? validity : 0];
        cur = json_object_get(t->servable, w);
        if (json_object_set_new(t->servable, w, json_integer(json_integer_value(cur) + n)) != 0)
            t->failed = 1;
    }
    t->total += n;
    return 0;
}

typedef struct first {
    char *name;
    long long not_after;
    int found;
} first;

static int first_row(const tg_expiring *e, void *arg)
{
    first *f = arg;
    f->name = tg_strdup(e->name);
    f->not_after = e->not_after;
    f->found = 1;
    return 1; /* the soonest is enough */
}

int tg_keyring_cert_tally(tg_keyring *kr, long long now, json_t **out, tg_err *err)
{
    *out = NULL;
    tallyctx t = {json_object(),
                  json_pack("{s:I, s:I, s:I}", "valid", (json_int_t)0, "not_yet_valid",
                            (json_int_t)0, "expired", (json_int_t)0)};
    first f = {0};
    int rc = t.by_status && t.servable ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_store_cert_tally(kr->st, now, tally_row, &t, err);
    if (rc == 0) rc = tg_keyring_expiring_each(kr, LLONG_MAX, first_row, &f, err);
    if (rc == 0 && t.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    json_t *doc = NULL;
    if (rc == 0) {
        char when[40];
        tg_time_rfc3339((time_t)f.not_after, when, sizeof(when));
        doc = json_pack("{s:I, s:O, s:O, s:o, s:o, s:o}", "total", (json_int_t)t.total, "by_status",
                        t.by_status, "servable", t.servable, "earliest_expiry",
                        f.found ? json_string(when) : json_null(), "earliest_expiry_unix",
                        f.found ? json_integer(f.not_after) : json_null(), "earliest_expiry_name",
                        f.found && f.name ? json_string(f.name) : json_null());
        if (doc == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    json_decref(t.by_status);
    json_decref(t.servable);
    free(f.name);
    *out = doc;
    return rc;
}

/* ---- serve's state file ---- */

/* The start time of process pid in clock ticks since boot (/proc/PID/stat, field 22), or 0
 * when it cannot be read or the process has ended (a zombie): with the pid, it names one
 * process (a pid is reused). */
static unsigned long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
    if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return 0;
    p++;
    /* after ')': field 3 (state) is the first; field 22 is the 20th after it */
    for (int field = 3; field < 22 && p; field++) {
        while (*p == ' ')
            p++;
        p = strchr(p, ' ');
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

static void state_path(tg_keyring *kr, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", kr->home, TG_SERVE_STATE_FILE);
}

int tg_keyring_serve_state_write(tg_keyring *kr, json_t *state, tg_err *err)
{
    json_t *doc = json_deep_copy(state);
    time_t now = time(NULL);
    char when[40];
    tg_time_rfc3339(now, when, sizeof(when));
    if (doc == NULL || json_object_set_new(doc, "pid", json_integer((json_int_t)getpid())) ||
        json_object_set_new(doc, "pid_start",
                            json_integer((json_int_t)proc_start((long)getpid()))) ||
        json_object_set_new(doc, "written", json_string(when)) ||
        json_object_set_new(doc, "written_unix", json_integer((json_int_t)now))) {
        json_decref(doc);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    if (text == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    char path[4200];
    state_path(kr, path, sizeof(path));
    size_t len = strlen(text);
    text[len] = '\0';
    int rc = tg_file_write(path, text, len, 0600, err);
    free(text);
    return rc;
}

void tg_keyring_serve_state_clear(tg_keyring *kr)
{
    char path[4200];
    state_path(kr, path, sizeof(path));
    unlink(path);
}

int tg_keyring_serve_state(tg_keyring *kr, json_t **out, tg_err *err)
{
    char path[4200];
    state_path(kr, path, sizeof(path));
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    json_t *res = NULL;
    if (doc == NULL || !json_is_object(doc)) {
        res = json_pack("{s:b}", "running", 0);
    } else {
        json_int_t pid = json_integer_value(json_object_get(doc, "pid"));
        json_int_t start = json_integer_value(json_object_get(doc, "pid_start"));
        int alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        /* ended (a zombie too), or another process has that pid now */
        if (alive && proc_start((long)pid) != (unsigned long long)start) alive = 0;
        if (alive) {
            res = json_incref(doc);
            json_object_set_new(res, "running", json_true());
        } else {
            /* a serve that was killed (SIGKILL, a crash) left its file behind */
            res = json_pack("{s:b, s:I, s:O}", "running", 0, "stale_pid", pid, "stale_written",
                            json_object_get(doc, "written") ? json_object_get(doc, "written")
                                                            : json_null());
        }
    }
    json_decref(doc);
    if (res == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    *out = res;
    return 0;
}

/* ---- the configuration as one document ---- */

static json_t *pick(json_t *rows, const char *const *keys)
{
    json_t *out = json_array(), *row;
    size_t i;
    json_array_foreach(rows, i, row)
    {
        json_t *o = json_object();
        for (size_t k = 0; o && keys[k]; k++) {
            json_t *v = json_object_get(row, keys[k]);
            if (v) json_object_set(o, keys[k], v);
        }
        if (o == NULL || json_array_append_new(out, o) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* The identity and the enrollment CA, in brief (issue 11). */
static int config_enrollment(tg_keyring *kr, json_t *doc, tg_err *err)
{
    json_t *id = NULL, *ca = NULL, *ident = NULL, *eca = json_null();
    int rc = tg_keyring_identity_show(kr, &id, err);
    if (rc != 0) return rc;
    tg_identity_settings set;
    tg_err e = {0};
    int configured = tg_keyring_identity_settings(kr, &set, &e) == 0;
    ident = json_pack(
        "{s:o, s:O, s:O, s:O}", "server", configured ? json_string(set.server) : json_null(),
        "certificate", json_object_get(id, "certificate"), "device_id",
        json_object_get(id, "device_id"), "not_after",
        json_object_get(id, "not_after") ? json_object_get(id, "not_after") : json_null());
    if (configured) tg_identity_settings_clear(&set);
    json_decref(id);
    if (tg_keyring_enrollca_show(kr, &ca, NULL) == 0) {
        json_decref(eca);
        eca = json_pack("{s:O, s:O, s:O, s:I}", "approval", json_object_get(ca, "approval"),
                        "device_days", json_object_get(ca, "device_days"), "not_after",
                        json_object_get(ca, "not_after"), "requests",
                        (json_int_t)json_array_size(json_object_get(ca, "devices")));
        json_decref(ca);
    }
    if (ident == NULL || eca == NULL || json_object_set_new(doc, "identity", ident) != 0 ||
        json_object_set_new(doc, "enrollment_ca", eca) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return 0;
}

int tg_keyring_config(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    static const char *const ts_keys[] = {"name",     "description",      "include_defaults",
                                          "ca_count", "default_ca_count", NULL};
    static const char *const user_keys[] = {"name", "role", "disabled", "must_change", NULL};
    static const char *const policy_keys[] = {"name",
                                              "description",
                                              "no_defaults",
                                              "never_domain_count",
                                              "never_category_count",
                                              "never_source_count",
                                              "always_source_count",
                                              "used_by",
                                              NULL};
    json_t *tally = NULL, *ts = NULL, *proxies = NULL, *sproxies = NULL, *policies = NULL,
           *users = NULL, *serve = NULL, *doc = NULL;
    int rc = tg_keyring_cert_tally(kr, (long long)time(NULL), &tally, err);
    if (rc == 0) rc = tg_keyring_ts_list(kr, &ts, err);
    if (rc == 0) rc = tg_keyring_proxy_list(kr, "client", &proxies, err);
    if (rc == 0) rc = tg_keyring_proxy_list(kr, "server", &sproxies, err);
    if (rc == 0) rc = tg_keyring_policy_list(kr, &policies, err);
    if (rc == 0) rc = tg_keyring_user_list(kr, &users, err);
    if (rc == 0) rc = tg_keyring_serve_state(kr, &serve, err);
    if (rc == 0) {
        char *dflt = NULL;
        int64_t id = tg_store_ref_get(kr->st, TG_REF_DEFAULT);
        tg_store_cert c;
        if (id != 0 && tg_store_cert_get(kr->st, id, &c, NULL) == 0) {
            dflt = tg_strdup(c.name);
            tg_store_cert_clear(&c);
        }
        json_t *cas = NULL;
        tg_page pg = {.ca = 1, .limit = 1};
        json_int_t ncas = 0;
        if (tg_keyring_cert_page(kr, &pg, &cas, NULL) == 0)
            ncas = json_integer_value(json_object_get(cas, "total"));
        json_decref(cas);
        doc = json_pack(
            "{s:s, s:s, s:o, s:O, s:I, s:O, s:O, s:o, s:o, s:o, s:o, s:O}", "version", TG_VERSION,
            "home", kr->home, "default_certificate", dflt ? json_string(dflt) : json_null(),
            "certificates", json_object_get(tally, "total"), "ca_certificates", ncas,
            "certificates_by_status", json_object_get(tally, "by_status"), "earliest_expiry",
            json_object_get(tally, "earliest_expiry"), "truststores", pick(ts, ts_keys),
            "client_proxies", json_incref(proxies), "policies", pick(policies, policy_keys),
            "users", pick(users, user_keys), "serve", serve);
        free(dflt);
        int lead = TG_ROLLOVER_LEAD_DEFAULT;
        if (doc == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc == 0) rc = tg_keyring_rollover_lead(kr, &lead, err);
        if (rc == 0 && json_object_set_new(doc, "ca_rollover_lead_days", json_integer(lead)) != 0)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc == 0 && json_object_set(doc, "server_proxies", sproxies) != 0)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc == 0) rc = config_enrollment(kr, doc, err);
    }
    json_decref(tally);
    json_decref(ts);
    json_decref(proxies);
    json_decref(sproxies);
    json_decref(policies);
    json_decref(users);
    json_decref(serve);
    *out = doc;
    return rc;
}
