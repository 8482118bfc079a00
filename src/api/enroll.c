/*
 * enroll.c — the appliance's identity and the enrollment CA through the API (issue 11;
 * docs/api.md): the keyring and src/enroll calls of src/cli/cmd_identity.c, with JSON
 * members named as the CLI's options.
 *
 * Nothing here waits on the network: setting the identity's server saves the settings,
 * and serve's enrollment thread, woken by the change, makes the attempt within a second
 * (GET identity shows its outcome). A bootstrap secret arrives as a JSON member and
 * leaves as one, spliced into the answer as text (api_splice_secret), never kept.
 */
#include "api_int.h"
#include "../enroll/enroll.h"

#include <stdlib.h>
#include <string.h>

int api_identity_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_enroll_identity_show(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* {"server", "ca_pem", "serial", "secret"}: saved; serve enrolls with them. */
int api_identity_set(api_req *r)
{
    static const char *const allowed[] = {"server", "ca_pem", "serial", "secret", NULL};
    const char *server = NULL, *ca = NULL, *serial = NULL, *secret = NULL;
    size_t slen = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "server", 1, &server);
    if (rc == 0) rc = api_member_str(r, "ca_pem", 0, &ca);
    if (rc == 0) rc = api_member_str(r, "serial", 0, &serial);
    if (rc == 0) rc = api_member_secret(r, "secret", &secret, &slen);
    if (rc == 0 && server) r->detail = json_pack("{s:s}", "server", server);
    tg_identity_conf c = {.server = server,
                          .ca_pem = ca,
                          .serial = serial,
                          .secret = (const unsigned char *)secret,
                          .secretlen = slen};
    if (rc == 0) rc = tg_keyring_identity_configure(r->kr, &c, &r->err);
    api_member_wipe(r, "secret");
    json_t *doc = NULL;
    if (rc == 0) rc = tg_enroll_identity_show(r->kr, &doc, &r->err);
    return api_done(r, rc, 202, doc);
}

int api_enrollca_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_enrollca_show(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int ca_opts(api_req *r, const char *const *allowed, tg_enrollca_opts *o)
{
    memset(o, 0, sizeof(*o));
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "cn", 0, &o->cn);
    if (rc == 0) rc = api_member_str(r, "key", 0, &o->keyspec);
    if (rc == 0) rc = api_member_int(r, "days", &o->days, NULL);
    if (rc == 0) rc = api_member_int(r, "device_days", &o->device_days, NULL);
    if (rc == 0) rc = api_member_str(r, "approval", 0, &o->approval);
    if (rc == 0) rc = api_member_int(r, "retry_after", &o->retry_after, NULL);
    return rc;
}

int api_enrollca_init(api_req *r)
{
    static const char *const allowed[] = {"cn",       "key",         "days", "device_days",
                                          "approval", "retry_after", NULL};
    tg_enrollca_opts o;
    int rc = ca_opts(r, allowed, &o);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_enrollca_init(r->kr, &o, &doc, &r->err);
    return api_done(r, rc, 201, doc);
}

int api_enrollca_set(api_req *r)
{
    static const char *const allowed[] = {"device_days", "approval", "retry_after", NULL};
    tg_enrollca_opts o;
    int rc = ca_opts(r, allowed, &o);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_enrollca_set(r->kr, &o, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_enrollca_secret(api_req *r)
{
    static const char *const allowed[] = {"label", "days", NULL};
    const char *label = NULL;
    int days = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "label", 0, &label);
    if (rc == 0) rc = api_member_int(r, "days", &days, NULL);
    char *secret = NULL;
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_enrollca_secret(r->kr, label, days, &secret, &doc, &r->err);
    if (rc != 0) return rc;
    r->detail = json_pack("{s:O}", "secret_id", json_object_get(doc, "id"));
    unsigned char *body = NULL;
    size_t len = 0;
    rc = api_splice_secret(doc, "secret", secret, &body, &len);
    json_decref(doc);
    tg_free_secret(secret, strlen(secret) + 1);
    if (rc != 0) return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    api_send_bytes(r, 201, "application/json", NULL, body, len);
    return 0;
}

int api_enrollca_approve(api_req *r)
{
    char *end;
    long long id = strtoll(r->params[0], &end, 10);
    if (*r->params[0] == '\0' || *end != '\0' || id <= 0)
        return api_fail(r, TG_E_USAGE, "id",
                        "a request id is a number (GET enroll-ca lists the requests)");
    json_t *doc = NULL;
    int rc = tg_keyring_enrollca_approve(r->kr, id, r->who.name, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* {"reason"}: the path names a request id, a device id or a certificate serial. */
int api_enrollca_revoke(api_req *r)
{
    static const char *const allowed[] = {"reason", NULL};
    const char *reason = NULL;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "reason", 0, &reason);
    json_t *rows = NULL;
    if (rc == 0)
        rc = tg_keyring_enrollca_revoke(r->kr, r->params[0], reason, r->who.name, &rows, &r->err);
    return api_done(r, rc, 200, rows);
}
