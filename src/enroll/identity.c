/*
 * identity.c — the appliance obtains and keeps its identity certificate (SPEC E1–E3):
 * the device id, one enrollment attempt, and the job serve's enrollment thread runs.
 *
 * An attempt: nothing to do while the identity is within two thirds of its lifetime;
 * else the pending request (or a new key and request after a refusal: the reference's
 * "Signature Verification Failed" case) goes to /simplereenroll with the current
 * identity when it is still valid, else to /simpleenroll with the bootstrap secret. An
 * issued certificate is installed with the CA certificates of /cacerts; 202 waits for
 * its Retry-After; anything else is retried with exponential backoff and jitter, for as
 * long as it takes (the network may come up long after boot). Each attempt's outcome is
 * written to the state file that `identity show` reads.
 */
#include "enroll_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RETRY_BASE   2   /* seconds: the first retry after a failure */
#define RETRY_CAP    600 /* seconds: the longest gap between two tries */
#define PENDING_WAIT 60  /* seconds to wait on a 202 without Retry-After */
#define PENDING_MIN  1
#define PENDING_MAX  3600

static const char *const dmi_junk[] = {"",
                                       "0",
                                       "None",
                                       "Not Specified",
                                       "Not Applicable",
                                       "To Be Filled By O.E.M.",
                                       "System Serial Number",
                                       "Default string",
                                       "Unknown",
                                       NULL};

static int read_line(const char *path, char *out, size_t size)
{
    unsigned char *b = NULL;
    size_t n = 0;
    tg_err e = {0};
    if (tg_file_read(path, 4096, &b, &n, &e) != 0) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size && b[i] != '\n'; i++)
        out[o++] = (char)b[i];
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    free(b);
    return 0;
}

int enroll_device_id(const char *override, char *out, size_t size, const char **source, tg_err *err)
{
    if (override != NULL && override[0] != '\0') {
        snprintf(out, size, "%s", override);
        *source = "configured";
        return 0;
    }
    char v[TG_DEVICE_ID_MAX + 1];
    if (read_line("/sys/class/dmi/id/product_serial", v, sizeof(v)) == 0 &&
        tg_text_check(v, NULL, NULL) == 0) {
        int junk = 0;
        for (size_t i = 0; dmi_junk[i] != NULL; i++)
            junk |= strcasecmp(v, dmi_junk[i]) == 0;
        if (!junk) {
            snprintf(out, size, "%s", v);
            *source = "dmi";
            return 0;
        }
    }
    if (read_line("/etc/machine-id", v, sizeof(v)) == 0 && strlen(v) == 32 &&
        strspn(v, "0123456789abcdef") == 32) {
        snprintf(out, size, "%s", v);
        *source = "machine-id";
        return 0;
    }
    return tg_err_fset(err, TG_E_NOTFOUND, "serial",
                       "this machine shows neither a hardware serial number nor a machine id; "
                       "configure the device id (identity enroll --serial)");
}

static long long num(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* The identity document: whether it holds a certificate, and its dates. */
static int identity_dates(tg_keyring *kr, long long *renew_at, long long *not_after)
{
    json_t *doc = NULL;
    tg_err e = {0};
    *renew_at = *not_after = 0;
    if (tg_keyring_identity_show(kr, &doc, &e) != 0) return 0;
    int have = json_is_true(json_object_get(doc, "certificate"));
    if (have) {
        *renew_at = num(doc, "renew_at_unix");
        *not_after = num(doc, "not_after_unix");
    }
    json_decref(doc);
    return have;
}

static void put_time(json_t *doc, const char *k, long long t)
{
    char text[40], k2[64];
    tg_time_rfc3339((time_t)t, text, sizeof(text));
    snprintf(k2, sizeof(k2), "%s_unix", k);
    json_object_set_new(doc, k, json_string(text));
    json_object_set_new(doc, k2, json_integer(t));
}

int enroll_identity_attempt(tg_keyring *kr, int force, int log, json_t **state_out, tg_err *err)
{
    if (state_out) *state_out = NULL;
    long long now = (long long)time(NULL);
    tg_identity_settings s;
    int rc = tg_keyring_identity_settings(kr, &s, err);
    if (rc != 0) return rc;
    json_t *prev = tg_keyring_identity_state(kr);
    int failures = (int)num(prev, "failures");
    int rejected = prev && json_is_string(json_object_get(prev, "state")) &&
                   strcmp(json_string_value(json_object_get(prev, "state")), "rejected") == 0;
    json_decref(prev);

    char device[TG_DEVICE_ID_MAX + 1];
    const char *source = NULL;
    long long renew_at = 0, not_after = 0, next = 0;
    const char *state = NULL;
    unsigned char *csr = NULL;
    size_t csrlen = 0;
    tg_served me = {0};
    int have_me = 0, used_secret = 0;
    est_result res = {0};
    tg_bundle cas = {0};
    json_t *doc = json_object();
    if (doc == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = enroll_device_id(s.serial, device, sizeof(device), &source, err)) != 0) goto end;
    int have = identity_dates(kr, &renew_at, &not_after);
    if (have && now < renew_at && !force) {
        state = "enrolled";
        next = renew_at;
        goto end;
    }
    /* a refused request is not sent again: a new key and request (E2) */
    if ((rc = tg_keyring_identity_request(kr, device, rejected, &csr, &csrlen, err)) != 0) goto end;
    /* re-enrollment with the current identity while it is valid, unless the CA refused
     * that last time (a revoked identity): then as a new device, with a secret or for an
     * approval */
    if (have && now < not_after && !rejected &&
        tg_keyring_serve_named(kr, TG_IDENTITY_NAME, &me, NULL) == 0)
        have_me = 1;
    est_req q = {.server = s.server,
                 .ca_pem = s.ca_pem,
                 .reenroll = have_me,
                 .csr = csr,
                 .csrlen = csrlen,
                 .device_id = device,
                 .client = have_me ? &me : NULL};
    if (!have_me && s.secret != NULL) {
        q.secret = s.secret;
        q.secretlen = s.secretlen;
        used_secret = 1;
    }
    if ((rc = est_enroll(&q, &res, err)) != 0) {
        state = rc == TG_E_CONFLICT ? "rejected" : "unreachable";
        goto end;
    }
    if (res.pending) {
        long long wait = res.retry_after >= 0 ? res.retry_after : PENDING_WAIT;
        if (wait < PENDING_MIN) wait = PENDING_MIN;
        if (wait > PENDING_MAX) wait = PENDING_MAX;
        state = "pending";
        next = now + wait;
        goto end;
    }
    /* the CA certificates, so that the identity's chain is built and stored */
    if ((rc = est_cacerts(s.server, s.ca_pem, &cas, err)) != 0) {
        state = "unreachable";
        goto end;
    }
    tg_cert *chain[EST_CHAIN_MAX * 2];
    size_t n = 0;
    for (size_t i = 0; i < res.nchain; i++)
        chain[n++] = res.chain[i];
    for (size_t i = 0; i < cas.ncerts && n < EST_CHAIN_MAX * 2; i++)
        chain[n++] = cas.certs[i];
    if ((rc = tg_keyring_identity_install(kr, res.leaf, chain, n, NULL, err)) != 0) {
        state = "rejected"; /* not for our key, or not storable: ask anew */
        goto end;
    }
    if (used_secret) tg_keyring_identity_forget_secret(kr, NULL); /* it is spent */
    identity_dates(kr, &renew_at, &not_after);
    state = "enrolled";
    failures = 0;
    next = renew_at;
    if (log) {
        char due[40];
        tg_time_rfc3339((time_t)renew_at, due, sizeof(due));
        tg_log(TG_LOG_INFO, "identity: enrolled as '%s' with %s; renewal due %s", device, s.server,
               due);
    }
end:
    if (state != NULL && strcmp(state, "enrolled") != 0 && strcmp(state, "pending") != 0) {
        failures++;
        next = now + enroll_backoff(failures, RETRY_BASE, RETRY_CAP);
        if (log)
            tg_log(TG_LOG_WARNING,
                   "identity: enrollment with %s failed (%s), try %d; next in %lld s", s.server,
                   err->msg, failures, next - now);
    }
    if (log && state != NULL && strcmp(state, "pending") == 0)
        tg_log(TG_LOG_INFO,
               "identity: the request waits for an approval at %s; next try in "
               "%lld s",
               s.server, next - now);
    if (doc != NULL && state != NULL) {
        json_object_set_new(doc, "state", json_string(state));
        json_object_set_new(doc, "server", json_string(s.server));
        json_object_set_new(doc, "device_id", json_string(device));
        json_object_set_new(doc, "device_id_source", json_string(source ? source : ""));
        json_object_set_new(doc, "failures", json_integer(failures));
        json_object_set_new(doc, "last_error",
                            rc != 0 && err->msg[0] ? json_string(err->msg) : json_null());
        put_time(doc, "last_attempt", now);
        put_time(doc, "next_try", next);
        tg_keyring_identity_state_write(kr, doc, NULL);
    }
    if (state_out != NULL && state != NULL) *state_out = json_incref(doc);
    json_decref(doc);
    est_result_clear(&res);
    tg_bundle_clear(&cas);
    if (have_me) tg_served_clear(&me);
    free(csr);
    tg_identity_settings_clear(&s);
    return rc;
}

static long long identity_run(enroll_ctx *x, long long now)
{
    json_t *state = NULL;
    tg_err err = {0};
    int rc = enroll_identity_attempt(x->kr, 0, 1, &state, &err);
    long long next = state ? num(state, "next_try_unix") : 0;
    json_decref(state);
    if (rc == TG_E_NOTFOUND && next == 0) return now + ENROLL_IDLE; /* nothing configured */
    return next > now ? next : now + 1;
}

const enroll_job enroll_job_identity = {.name = "identity", .run = identity_run};

int tg_enroll_identity_now(tg_keyring *kr, int force, json_t **state, tg_err *err)
{
    return enroll_identity_attempt(kr, force, 0, state, err);
}

int tg_enroll_identity_show(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    tg_identity_settings s;
    tg_err e2 = {0};
    int configured = tg_keyring_identity_settings(kr, &s, &e2) == 0;
    if (!configured && e2.code != TG_E_NOTFOUND) {
        *err = e2;
        return e2.code;
    }
    char device[TG_DEVICE_ID_MAX + 1] = "";
    const char *source = NULL;
    tg_err e3 = {0};
    int have_id =
        enroll_device_id(configured ? s.serial : NULL, device, sizeof(device), &source, &e3) == 0;
    json_t *settings = configured
                           ? json_pack("{s:s, s:b, s:b, s:o}", "server", s.server, "ca_file",
                                       s.ca_pem != NULL, "bootstrap_secret", s.secret != NULL,
                                       "serial", s.serial ? json_string(s.serial) : json_null())
                           : json_null();
    if (configured) tg_identity_settings_clear(&s);
    json_t *identity = NULL;
    int rc = tg_keyring_identity_show(kr, &identity, err);
    if (rc != 0) {
        json_decref(settings);
        return rc;
    }
    json_t *attempt = tg_keyring_identity_state(kr);
    *out = json_pack("{s:b, s:o, s:o, s:o, s:o, s:o}", "configured", configured, "settings",
                     settings ? settings : json_null(), "device_id",
                     have_id ? json_string(device) : json_null(), "device_id_source",
                     have_id ? json_string(source) : json_null(), "identity", identity, "attempt",
                     attempt ? attempt : json_null());
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}
