/*
 * enrollca.c — tlsgate as the enrollment CA of a fleet (SPEC E4): its CA, the settings
 * (device validity, how a request is authorised), one-time bootstrap secrets, and the
 * decision on each request an EST server hands in (src/enroll/estd.c).
 *
 * Invariants:
 *   - a request is issued only with an authorisation: an unspent, unexpired bootstrap
 *     secret (spent in the same transaction as the issuance), a client certificate this
 *     CA issued that is valid and not revoked (a re-enrollment keeps the device id), or
 *     an operator's approval of the pending request;
 *   - the same request sent again (a device retrying after 202) finds its row: an issued
 *     one gets the same certificate back, a pending one waits, a rejected one is refused;
 *   - every issuance and refusal is in the audit log (actor "est"), never a secret;
 *   - the table is bounded: at most TG_ENROLL_DEVICES_MAX rows; a new pending request
 *     beyond that is refused rather than stored.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY 86400LL

static int setting_int(tg_keyring *kr, const char *k, int dflt)
{
    char buf[32];
    if (tg_store_setting_get(kr->st, k, buf, sizeof(buf), NULL) != 0) return dflt;
    return atoi(buf);
}

static void approval_of(tg_keyring *kr, char *buf, size_t size)
{
    if (tg_store_setting_get(kr->st, "est.approval", buf, size, NULL) != 0)
        snprintf(buf, size, "secret");
}

static int check_opts(const tg_enrollca_opts *o, tg_err *err)
{
    if (o->days != 0 && (o->days < 1 || o->days > TG_DAYS_MAX))
        return tg_err_fset(err, TG_E_INVALID, "days", "the number of days must be between 1 and %d",
                           TG_DAYS_MAX);
    if (o->device_days != 0 && (o->device_days < 1 || o->device_days > TG_DAYS_MAX))
        return tg_err_fset(err, TG_E_INVALID, "device_days",
                           "a device certificate's days must be between 1 and %d", TG_DAYS_MAX);
    if (o->retry_after != 0 && (o->retry_after < 1 || o->retry_after > TG_ENROLL_RETRY_AFTER_MAX))
        return tg_err_fset(err, TG_E_INVALID, "retry_after",
                           "the retry-after must be between 1 and %d seconds",
                           TG_ENROLL_RETRY_AFTER_MAX);
    if (o->approval != NULL && strcmp(o->approval, "secret") != 0 &&
        strcmp(o->approval, "manual") != 0)
        return tg_err_fset(err, TG_E_INVALID, "approval",
                           "approval is 'secret' (bootstrap secrets only) or 'manual' (a request "
                           "without one waits for an operator), not '%s'",
                           o->approval);
    return 0;
}

static int save_opts(tg_keyring *kr, const tg_enrollca_opts *o, tg_err *err)
{
    char buf[16];
    int rc = 0;
    if (o->device_days != 0) {
        snprintf(buf, sizeof(buf), "%d", o->device_days);
        rc = tg_store_setting_set(kr->st, "est.device_days", buf, err);
    }
    if (rc == 0 && o->approval != NULL)
        rc = tg_store_setting_set(kr->st, "est.approval", o->approval, err);
    if (rc == 0 && o->retry_after != 0) {
        snprintf(buf, sizeof(buf), "%d", o->retry_after);
        rc = tg_store_setting_set(kr->st, "est.retry_after", buf, err);
    }
    return rc;
}

int tg_keyring_enrollca_init(tg_keyring *kr, const tg_enrollca_opts *o, json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = check_opts(o, err);
    if (rc != 0) return rc;
    tg_newcert spec = {.name = TG_ENROLL_CA_NAME,
                       .subject = {.cn = o->cn ? o->cn : "tlsgate enrollment CA"},
                       .keyspec = o->keyspec ? o->keyspec : "ec:p384",
                       .days = o->days ? o->days : TG_ENROLL_CA_DAYS_DEFAULT,
                       .days_set = 1,
                       .no_export = 1,
                       .signing = 1};
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    int64_t id = 0;
    if (tg_store_name_taken(kr->st, TG_ENROLL_CA_NAME))
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "the enrollment CA exists already ('%s'); enroll-ca set changes its "
                        "settings",
                        TG_ENROLL_CA_NAME);
    if (rc == 0) rc = kr_create_tx(kr, &spec, 0, &id, err);
    tg_enrollca_opts d = *o;
    if (d.device_days == 0) d.device_days = TG_DEVICE_DAYS_DEFAULT;
    if (d.approval == NULL) d.approval = "secret";
    if (rc == 0) rc = save_opts(kr, &d, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_enrollca_show(kr, out, err);
}

int tg_keyring_enrollca_set(tg_keyring *kr, const tg_enrollca_opts *o, json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = check_opts(o, err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    if (!tg_store_name_taken(kr->st, TG_ENROLL_CA_NAME))
        rc = tg_err_set(err, TG_E_NOTFOUND,
                        "there is no enrollment CA here yet (tlsgate enroll-ca init makes it)");
    if (rc == 0) rc = save_opts(kr, o, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_enrollca_show(kr, out, err);
}

int tg_keyring_enrollca_retry_after(tg_keyring *kr)
{
    int v = setting_int(kr, "est.retry_after", TG_ENROLL_RETRY_AFTER);
    return v >= 1 && v <= TG_ENROLL_RETRY_AFTER_MAX ? v : TG_ENROLL_RETRY_AFTER;
}

/* ---- documents ---- */

static json_t *device_doc(const tg_store_est_device *d)
{
    json_t *doc =
        json_pack("{s:I, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)d->id, "device",
                  kr_json_text(d->device), "state", d->state, "serial", kr_json_opt(d->serial),
                  "source", kr_json_text(d->source), "reason", kr_json_opt(d->reason));
    if (doc == NULL || kr_json_time(doc, "requested", d->requested) != 0) {
        json_decref(doc);
        return NULL;
    }
    if (d->decided)
        kr_json_time(doc, "decided", d->decided);
    else
        json_object_set_new(doc, "decided", json_null());
    if (d->not_after)
        kr_json_time(doc, "not_after", d->not_after);
    else
        json_object_set_new(doc, "not_after", json_null());
    return doc;
}

static int add_device(const tg_store_est_device *d, void *arg)
{
    json_t *doc = device_doc(d);
    return doc && json_array_append_new(arg, doc) == 0 ? 0 : TG_E_INTERNAL;
}

int tg_keyring_enrollca_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = json_array();
    if (*out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_est_device_each(kr->st, add_device, *out, err);
    if (rc == TG_E_INTERNAL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int add_secret(const tg_store_est_secret *e, void *arg)
{
    json_t *doc = json_pack("{s:I, s:o, s:o}", "id", (json_int_t)e->id, "label",
                            kr_json_text(e->label), "used_by", kr_json_opt(e->used_by));
    if (doc == NULL || kr_json_time(doc, "created", e->created) != 0 ||
        kr_json_time(doc, "expires", e->expires) != 0) {
        json_decref(doc);
        return TG_E_INTERNAL;
    }
    if (e->used)
        kr_json_time(doc, "used", e->used);
    else
        json_object_set_new(doc, "used", json_null());
    return json_array_append_new(arg, doc) == 0 ? 0 : TG_E_INTERNAL;
}

int tg_keyring_enrollca_show(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    tg_store_cert ca;
    int rc = tg_store_cert_by_name(kr->st, TG_ENROLL_CA_NAME, &ca, NULL);
    if (rc != 0)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "there is no enrollment CA here yet (tlsgate enroll-ca init makes it)");
    char approval[16];
    approval_of(kr, approval, sizeof(approval));
    json_t *devices = NULL, *secrets = json_array();
    json_t *doc =
        json_pack("{s:s, s:o, s:s, s:i, s:s}", "ca", TG_ENROLL_CA_NAME, "subject",
                  kr_json_text(ca.subject), "sha256", ca.sha256, "device_days",
                  setting_int(kr, "est.device_days", TG_DEVICE_DAYS_DEFAULT), "approval", approval);
    if (doc != NULL) {
        kr_json_time(doc, "not_after", ca.not_after);
        json_object_set_new(doc, "retry_after", json_integer(tg_keyring_enrollca_retry_after(kr)));
    }
    tg_store_cert_clear(&ca);
    if (doc == NULL || secrets == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_keyring_enrollca_list(kr, &devices, err);
    if (rc == 0 && (rc = tg_store_est_secret_each(kr->st, add_secret, secrets, err)) != 0)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) {
        json_object_set_new(doc, "devices", devices);
        json_object_set_new(doc, "secrets", secrets);
        *out = doc;
        return 0;
    }
    json_decref(doc);
    json_decref(devices);
    json_decref(secrets);
    return rc;
}

/* ---- secrets ---- */

int tg_keyring_enrollca_secret(tg_keyring *kr, const char *label, int days, char **secret,
                               json_t **out, tg_err *err)
{
    *secret = NULL;
    *out = NULL;
    if (days == 0) days = TG_SECRET_DAYS_DEFAULT;
    if (days < 1 || days > 365)
        return tg_err_fset(err, TG_E_INVALID, "days",
                           "a bootstrap secret is good for 1 to 365 days");
    char why[160];
    if (label == NULL) label = "";
    if (strlen(label) > TG_TOKEN_LABEL_MAX || kr_text_problem(label, why, sizeof(why)) != NULL)
        return tg_err_fset(err, TG_E_INVALID, "label",
                           "the label must be at most %d bytes of printable UTF-8",
                           TG_TOKEN_LABEL_MAX);
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    if (!tg_store_name_taken(kr->st, TG_ENROLL_CA_NAME)) {
        tg_store_rollback(kr->st);
        return tg_err_set(err, TG_E_NOTFOUND,
                          "there is no enrollment CA here yet (tlsgate enroll-ca init makes it)");
    }
    char *text = malloc(TG_TOKEN_LEN + 1);
    unsigned char hash[32];
    int64_t id = 0;
    long long expires = (long long)time(NULL) + days * DAY;
    if (text == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_token_new(text, hash, err);
    if (rc == 0) rc = tg_store_est_secret_add(kr->st, hash, label, expires, &id, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) {
        if (text) tg_free_secret(text, TG_TOKEN_LEN + 1);
        return rc;
    }
    *out = json_pack("{s:I, s:o}", "id", (json_int_t)id, "label", kr_json_text(label));
    if (*out) kr_json_time(*out, "expires", expires);
    *secret = text;
    return 0;
}

/* ---- issuing ---- */

typedef struct ca_parts {
    tg_served ca; /* the CA certificate and its key */
    int loaded;
} ca_parts;

/* The name of the CA that signs now: TG_ENROLL_CA_NAME, or the newest of its rollover
 * copies (K10: same key and subject, a later end) whose key is held. */
static void signing_name(tg_keyring *kr, char *out, size_t size)
{
    snprintf(out, size, "%s", TG_ENROLL_CA_NAME);
    tg_store_cert c;
    if (tg_store_cert_by_name(kr->st, TG_ENROLL_CA_NAME, &c, NULL) != 0) return;
    long long best = c.not_after;
    for (int hops = 0; hops < 16; hops++) {
        tg_store_cert next;
        if (tg_store_cert_successor(kr->st, c.id, &next, NULL) != 0) break;
        tg_store_cert_clear(&c);
        c = next;
        if (c.key_id != 0 && c.not_after > best) {
            best = c.not_after;
            snprintf(out, size, "%s", c.name);
        }
    }
    tg_store_cert_clear(&c);
}

static int ca_load(tg_keyring *kr, ca_parts *p, tg_err *err)
{
    memset(p, 0, sizeof(*p));
    char name[TG_NAME_MAX + 1];
    signing_name(kr, name, sizeof(name));
    int rc = tg_keyring_serve_named(kr, name, &p->ca, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "there is no enrollment CA here yet (tlsgate enroll-ca init makes it)");
    if (rc == 0) p->loaded = 1;
    return rc;
}

static void ca_clear(ca_parts *p)
{
    if (p->loaded) tg_served_clear(&p->ca);
}

/* Signs the request of row d (its CSR) and fills d's certificate fields: state issued. */
static int issue(tg_keyring *kr, ca_parts *p, tg_store_est_device *d, tg_err *err)
{
    tg_csr *csr = NULL;
    tg_key *pub = NULL;
    tg_cert *cert = NULL;
    tg_certinfo info = {0};
    int rc;
    long long now = (long long)time(NULL);
    int days = setting_int(kr, "est.device_days", TG_DEVICE_DAYS_DEFAULT);
    if ((rc = tg_csr_from_der(d->csr, d->csrlen, &csr, err)) != 0 ||
        (rc = tg_csr_pubkey(csr, &pub, err)) != 0)
        goto end;
    tg_issue_req req = {.cn = d->device,
                        .not_before = now - 300,
                        .not_after = now + (long long)days * DAY,
                        .key = pub,
                        .client_auth = 1};
    if ((rc = tg_cert_issue(p->ca.cert, p->ca.key, &req, &cert, err)) != 0 ||
        (rc = tg_cert_info(cert, &info, err)) != 0)
        goto end;
    free(d->cert);
    d->cert = NULL;
    if ((rc = tg_cert_to_der(cert, &d->cert, &d->certlen, err)) != 0) goto end;
    free(d->serial);
    d->serial = tg_strdup(info.serial);
    d->not_after = info.not_after;
    d->decided = now;
    snprintf(d->state, sizeof(d->state), "issued");
    if (d->serial == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
end:
    tg_certinfo_clear(&info);
    tg_cert_free(cert);
    tg_key_free(pub);
    tg_csr_free(csr);
    return rc;
}

static void audit(tg_keyring *kr, const char *actor, const char *source, const char *action,
                  const char *device, int outcome, const char *why)
{
    json_t *detail = why ? json_pack("{s:s}", "reason", why) : NULL;
    tg_audit_entry e = {.actor = actor,
                        .source = source,
                        .action = action,
                        .object = device,
                        .outcome = outcome,
                        .detail = detail};
    tg_keyring_audit_add(kr, &e, NULL);
    json_decref(detail);
}

static int count_one(const tg_store_est_device *d, void *arg)
{
    (void)d;
    (*(long long *)arg)++;
    return 0;
}

static long long device_count(tg_keyring *kr)
{
    long long n = 0;
    tg_store_est_device_each(kr->st, count_one, &n, NULL);
    return n;
}

/* Whether client (a TLS client certificate) is one of ours, valid now and not revoked;
 * 0, or a refusal with its sentence. */
static int client_ok(tg_keyring *kr, ca_parts *p, const tg_cert *client, tg_err *err)
{
    long long nb, na, now = (long long)time(NULL);
    tg_cert_validity(client, &nb, &na);
    if (!tg_cert_issued_by(client, p->ca.cert))
        return tg_err_set(err, TG_E_PASSWORD,
                          "the client certificate was not issued by this enrollment CA");
    if (now < nb || now > na)
        return tg_err_set(err, TG_E_PASSWORD,
                          "the client certificate is outside its validity; enroll with a "
                          "bootstrap secret or an approval");
    tg_certinfo info = {0};
    int rc = tg_cert_info(client, &info, err);
    if (rc != 0) return rc;
    tg_store_est_device d;
    rc = tg_store_est_device_by_serial(kr->st, info.serial, &d, NULL);
    tg_certinfo_clear(&info);
    if (rc == 0) {
        int revoked = strcmp(d.state, "revoked") == 0;
        tg_store_est_device_clear(&d);
        if (revoked) return tg_err_set(err, TG_E_CONFLICT, "the client certificate is revoked");
        return 0;
    }
    return tg_err_set(err, TG_E_PASSWORD,
                      "the client certificate is not one this enrollment CA recorded");
}

static char *cert_cn(const tg_cert *c)
{
    tg_certinfo info = {0};
    if (tg_cert_info(c, &info, NULL) != 0) return NULL;
    char *cn = tg_strdup(info.subject_cn);
    tg_certinfo_clear(&info);
    return cn;
}

static int enroll_tx(tg_keyring *kr, ca_parts *p, const unsigned char *der, size_t len,
                     const tg_est_auth *a, tg_store_est_device *d, const char **action, tg_err *err)
{
    tg_csr *csr = NULL;
    tg_key *pub = NULL;
    char *cn = NULL;
    int rc;
    *action = "est.refuse";
    if ((rc = tg_csr_from_der(der, len, &csr, err)) != 0) goto end;
    if ((cn = tg_csr_cn(csr)) == NULL || strlen(cn) > TG_DEVICE_ID_MAX) {
        rc = tg_err_set(err, TG_E_INVALID,
                        "the request's subject needs a CN of 1-%d printable bytes: the device id",
                        TG_DEVICE_ID_MAX);
        goto end;
    }
    d->device = tg_strdup(cn);
    if ((rc = tg_csr_pubkey(csr, &pub, err)) != 0 || (rc = tg_key_check_strength(pub, err)) != 0)
        goto end;
    if ((rc = tg_sha256(der, len, d->csr_sha256, err)) != 0) goto end;
    /* the same request again: a device retrying after 202, or after a lost answer */
    tg_store_est_device old;
    if (tg_store_est_device_by_csr(kr->st, d->csr_sha256, &old, NULL) == 0) {
        int pending = strcmp(old.state, "pending") == 0, issued = strcmp(old.state, "issued") == 0;
        if (issued || !pending) {
            tg_store_est_device_clear(d);
            *d = old;
            if (issued) {
                *action = "est.issue";
                rc = 0;
            } else {
                rc = tg_err_set(err, TG_E_CONFLICT, "this request was %s%s%s", old.state,
                                old.reason ? ": " : "", old.reason ? old.reason : "");
            }
            goto end;
        }
        /* pending: it stays so unless it now brings an authorisation */
        tg_store_est_device_clear(d);
        *d = old;
    } else {
        if ((d->csr = malloc(len)) == NULL) {
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
            goto end;
        }
        memcpy(d->csr, der, len);
        d->csrlen = len;
        d->requested = (long long)time(NULL);
        d->source = tg_strdup(a->source ? a->source : "");
        snprintf(d->state, sizeof(d->state), "pending");
    }
    /* the authorisation */
    int authorised = 0;
    if (a->client != NULL) {
        if ((rc = client_ok(kr, p, a->client, err)) != 0) goto end;
        char *ccn = cert_cn(a->client);
        int same = ccn != NULL && strcmp(ccn, cn) == 0;
        free(ccn);
        if (!same) {
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "a device may re-enroll only for its own device id (the client "
                            "certificate's CN)");
            goto end;
        }
        authorised = 1;
    } else if (a->reenroll) {
        rc = tg_err_set(err, TG_E_PASSWORD, "re-enrollment needs the current client certificate");
        goto end;
    }
    if (!authorised && a->secret != NULL) {
        unsigned char h[32];
        char text[TG_BOOTSTRAP_SECRET_MAX + 1];
        size_t n = a->secretlen < TG_BOOTSTRAP_SECRET_MAX ? a->secretlen : TG_BOOTSTRAP_SECRET_MAX;
        memcpy(text, a->secret, n);
        text[n] = '\0';
        rc = tg_sha256(text, strlen(text), h, err);
        tg_wipe(text, sizeof(text));
        if (rc != 0) goto end;
        rc = tg_store_est_secret_spend(kr->st, h, (long long)time(NULL), cn, err);
        if (rc == 0)
            authorised = 1;
        else if (rc != TG_E_NOTFOUND)
            goto end;
        rc = 0;
        if (!authorised) {
            char approval[16];
            approval_of(kr, approval, sizeof(approval));
            if (strcmp(approval, "manual") != 0) {
                rc = tg_err_set(err, TG_E_PASSWORD,
                                "the bootstrap secret is unknown, spent or expired");
                goto end;
            }
        }
    }
    if (authorised) {
        if ((rc = issue(kr, p, d, err)) != 0) goto end;
        *action = "est.issue";
    } else {
        char approval[16];
        approval_of(kr, approval, sizeof(approval));
        if (strcmp(approval, "manual") != 0) {
            rc = tg_err_set(err, TG_E_PASSWORD,
                            "enrollment needs a bootstrap secret (HTTP basic authentication) "
                            "or a certificate of this CA");
            goto end;
        }
        if (d->id == 0 && device_count(kr) >= TG_ENROLL_DEVICES_MAX) {
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "the enrollment CA holds %d requests already; remove some first",
                            TG_ENROLL_DEVICES_MAX);
            goto end;
        }
        *action = "est.pending";
    }
    rc = d->id ? tg_store_est_device_update(kr->st, d, err)
               : tg_store_est_device_add(kr->st, d, err);
    if (rc == 0 && !authorised) rc = TG_ENROLL_PENDING;
end:
    free(cn);
    tg_key_free(pub);
    tg_csr_free(csr);
    return rc;
}

int tg_keyring_enrollca_enroll(tg_keyring *kr, const unsigned char *csr, size_t csrlen,
                               const tg_est_auth *a, unsigned char **cert, size_t *certlen,
                               tg_err *err)
{
    *cert = NULL;
    *certlen = 0;
    ca_parts p;
    int rc = ca_load(kr, &p, err);
    if (rc != 0) return rc;
    tg_store_est_device d = {0};
    const char *action = "est.refuse";
    if ((rc = tg_store_begin(kr->st, err)) == 0) {
        rc = enroll_tx(kr, &p, csr, csrlen, a, &d, &action, err);
        int txrc = kr_finish(kr, rc == TG_ENROLL_PENDING ? 0 : rc, err);
        if (txrc != 0) rc = txrc;
    }
    ca_clear(&p);
    if (rc == 0) {
        *cert = d.cert;
        *certlen = d.certlen;
        d.cert = NULL;
    }
    audit(kr, "est", a->source ? a->source : "est", action, d.device ? d.device : "",
          rc == TG_ENROLL_PENDING ? 0 : rc, rc != 0 && rc != TG_ENROLL_PENDING ? err->msg : NULL);
    tg_store_est_device_clear(&d);
    return rc;
}

int tg_keyring_enrollca_approve(tg_keyring *kr, int64_t id, const char *actor, json_t **out,
                                tg_err *err)
{
    *out = NULL;
    ca_parts p;
    int rc = ca_load(kr, &p, err);
    if (rc != 0) return rc;
    tg_store_est_device d = {0};
    if ((rc = tg_store_begin(kr->st, err)) == 0) {
        rc = tg_store_est_device_get(kr->st, id, &d, err);
        if (rc == TG_E_NOTFOUND)
            rc = tg_err_set(err, TG_E_NOTFOUND,
                            "no enrollment request has the id %lld (enroll-ca list shows them)",
                            (long long)id);
        else if (rc == 0 && strcmp(d.state, "pending") != 0)
            rc = tg_err_set(err, TG_E_CONFLICT, "request %lld is %s, not pending", (long long)id,
                            d.state);
        if (rc == 0) rc = issue(kr, &p, &d, err);
        if (rc == 0) rc = tg_store_est_device_update(kr->st, &d, err);
        rc = kr_finish(kr, rc, err);
    }
    ca_clear(&p);
    audit(kr, actor, "cli", "est.approve", d.device ? d.device : "", rc, NULL);
    if (rc == 0 && (*out = device_doc(&d)) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    tg_store_est_device_clear(&d);
    return rc;
}

typedef struct revoke_ctx {
    const char *what;
    long long id;
    int64_t *ids;
    size_t n, cap;
} revoke_ctx;

static int match(const tg_store_est_device *d, void *arg)
{
    revoke_ctx *r = arg;
    int hit = (r->id > 0 && d->id == r->id) || strcmp(d->device, r->what) == 0 ||
              (d->serial && strcasecmp(d->serial, r->what) == 0);
    if (!hit || (strcmp(d->state, "pending") != 0 && strcmp(d->state, "issued") != 0)) return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        int64_t *v = realloc(r->ids, cap * sizeof(*v));
        if (v == NULL) return TG_E_INTERNAL;
        r->ids = v;
        r->cap = cap;
    }
    r->ids[r->n++] = d->id;
    return 0;
}

int tg_keyring_enrollca_revoke(tg_keyring *kr, const char *what, const char *reason,
                               const char *actor, json_t **out, tg_err *err)
{
    *out = NULL;
    char why[160];
    if (reason != NULL &&
        (strlen(reason) > 256 || kr_text_problem(reason, why, sizeof(why)) != NULL))
        return tg_err_fset(err, TG_E_INVALID, "reason",
                           "the reason must be at most 256 bytes of printable UTF-8");
    revoke_ctx r = {.what = what};
    char *end;
    long long id = strtoll(what, &end, 10);
    if (*what && *end == '\0' && id > 0) r.id = id;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = tg_store_est_device_each(kr->st, match, &r, err);
    if (rc == TG_E_INTERNAL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && r.n == 0)
        rc = tg_err_set(err, TG_E_NOTFOUND,
                        "no pending request or issued certificate matches '%s' (an id, a device "
                        "id or a serial; enroll-ca list shows them)",
                        what);
    json_t *rows = json_array();
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        tg_store_est_device d;
        if ((rc = tg_store_est_device_get(kr->st, r.ids[i], &d, err)) != 0) break;
        snprintf(d.state, sizeof(d.state), "%s",
                 strcmp(d.state, "pending") == 0 ? "rejected" : "revoked");
        free(d.reason);
        d.reason = tg_strdup(reason ? reason : "");
        d.decided = (long long)time(NULL);
        rc = tg_store_est_device_update(kr->st, &d, err);
        if (rc == 0) json_array_append_new(rows, device_doc(&d));
        audit(kr, actor, "cli", strcmp(d.state, "rejected") == 0 ? "est.reject" : "est.revoke",
              d.device, 0, reason);
        tg_store_est_device_clear(&d);
    }
    free(r.ids);
    rc = kr_finish(kr, rc, err);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    *out = rows;
    return 0;
}

int tg_keyring_enrollca_cacerts(tg_keyring *kr, unsigned char **p7, size_t *len, tg_err *err)
{
    *p7 = NULL;
    *len = 0;
    tg_store_cert row;
    int rc = tg_store_cert_by_name(kr->st, TG_ENROLL_CA_NAME, &row, NULL);
    if (rc != 0)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "there is no enrollment CA here yet (tlsgate enroll-ca init makes it)");
    tg_cert *certs[2] = {0};
    size_t n = 0;
    rc = tg_cert_from_der(row.der, row.derlen, &certs[n], err);
    if (rc == 0) n++;
    /* a rollover's successor (same key and subject, K10) is offered too */
    tg_store_cert next;
    if (rc == 0 && tg_store_cert_successor(kr->st, row.id, &next, NULL) == 0) {
        if (tg_cert_from_der(next.der, next.derlen, &certs[n], NULL) == 0) n++;
        tg_store_cert_clear(&next);
    }
    tg_store_cert_clear(&row);
    if (rc == 0) rc = tg_p7_create(certs, n, 0, p7, len, err);
    for (size_t i = 0; i < n; i++)
        tg_cert_free(certs[i]);
    return rc;
}
