/*
 * identity.c — the appliance's identity (SPEC E1–E3): a key made here and a certificate
 * whose subject CN is the device id, kept as the certificate TG_IDENTITY_NAME
 * ("appliance-key"), and the settings of the enrollment server that issues it.
 *
 * Invariants:
 *   - the identity's key is made here and is never exportable; no export path takes the
 *     identity (cert_export refuses the name), and no operator's certificate may take
 *     the name (kr_name_reserved);
 *   - while a certificate is being asked for, the key and its request are the request
 *     TG_IDENTITY_NAME (so `request list` shows it, and deleting it makes the next try
 *     start from a new key, as the reference's "delete the CSR" does);
 *   - an issued certificate is installed only for that request's key, in one
 *     transaction that replaces the previous identity and removes the request;
 *   - the settings (identity_conf) outlive a factory reset, the bootstrap secret and the
 *     identity do not.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SECRET_KEY "identity.bootstrap"

int kr_name_reserved(const char *name, tg_err *err)
{
    if (name != NULL && strcasecmp(name, TG_IDENTITY_NAME) == 0)
        return tg_err_fset(err, TG_E_INVALID, "name",
                           "'%s' is the appliance's identity and is made only by enrollment; "
                           "choose another name",
                           TG_IDENTITY_NAME);
    return 0;
}

int tg_keyring_identity_configure(tg_keyring *kr, const tg_identity_conf *c, tg_err *err)
{
    if (c->server == NULL || strlen(c->server) > TG_URL_MAX ||
        strncasecmp(c->server, "https://", 8) != 0 || c->server[8] == '\0' ||
        strpbrk(c->server, " \t\r\n") != NULL)
        return tg_err_fset(err, TG_E_INVALID, "server",
                           "the enrollment server must be an https:// URL of at most %d bytes "
                           "(EST runs over TLS only)",
                           TG_URL_MAX);
    if (c->serial != NULL) {
        char why[160];
        size_t n = strlen(c->serial);
        if (n == 0 || n > TG_DEVICE_ID_MAX || kr_text_problem(c->serial, why, sizeof(why)))
            return tg_err_fset(err, TG_E_INVALID, "serial",
                               "the device id must be 1-%d bytes of printable UTF-8",
                               TG_DEVICE_ID_MAX);
    }
    if (c->ca_pem != NULL) {
        tg_bundle b = {0};
        int rc = tg_bundle_decode((const unsigned char *)c->ca_pem, strlen(c->ca_pem),
                                  "the enrollment server's CA file", NULL, &b, err);
        size_t n = b.ncerts, keys = b.nkeys;
        tg_bundle_clear(&b);
        if (rc != 0) return rc;
        if (n == 0 || keys != 0 || strstr(c->ca_pem, "-----BEGIN CERTIFICATE-----") == NULL)
            return tg_err_fset(err, TG_E_INVALID, "ca_file",
                               "the enrollment server's CA file must hold PEM certificates "
                               "and nothing secret");
    }
    if (c->secret != NULL && (c->secretlen == 0 || c->secretlen > TG_BOOTSTRAP_SECRET_MAX))
        return tg_err_fset(err, TG_E_INVALID, "secret", "the bootstrap secret must be 1-%d bytes",
                           TG_BOOTSTRAP_SECRET_MAX);
    tg_store_identity_conf row = {
        .server = (char *)c->server, .ca_pem = (char *)c->ca_pem, .serial = (char *)c->serial};
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = tg_store_identity_conf_set(kr->st, &row, err);
    if (rc == 0)
        rc = tg_store_sealed_set(kr->st, SECRET_KEY, c->secret, c->secret ? c->secretlen : 0, err);
    return kr_finish(kr, rc, err);
}

void tg_identity_settings_clear(tg_identity_settings *s)
{
    free(s->server);
    free(s->ca_pem);
    free(s->serial);
    if (s->secret != NULL) tg_free_secret(s->secret, s->secretlen + 1);
    memset(s, 0, sizeof(*s));
}

int tg_keyring_identity_settings(tg_keyring *kr, tg_identity_settings *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    tg_store_identity_conf c;
    int rc = tg_store_identity_conf_get(kr->st, &c, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no enrollment server is configured (tlsgate identity enroll --server "
                          "URL sets one)");
    if (rc != 0) return rc;
    out->server = c.server;
    out->ca_pem = c.ca_pem;
    out->serial = c.serial;
    out->changed = c.changed;
    rc = tg_store_sealed_get(kr->st, SECRET_KEY, &out->secret, &out->secretlen, err);
    if (rc == TG_E_NOTFOUND) rc = 0;
    if (rc != 0) tg_identity_settings_clear(out);
    return rc;
}

int tg_keyring_identity_forget_secret(tg_keyring *kr, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    return kr_finish(kr, tg_store_sealed_set(kr->st, SECRET_KEY, NULL, 0, err), err);
}

static int request_tx(tg_keyring *kr, const char *device_id, int fresh, char **pem, tg_err *err)
{
    tg_store_req old;
    int rc = tg_store_req_by_name(kr->st, TG_IDENTITY_NAME, &old, err);
    if (rc == 0) {
        char want[TG_DEVICE_ID_MAX + 8];
        snprintf(want, sizeof(want), "CN=%s", device_id);
        int keep = !fresh && old.cert_id == 0 && strcmp(old.subject, want) == 0;
        if (keep) {
            *pem = tg_strdup(old.pem);
            tg_store_req_clear(&old);
            return *pem ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
        }
        int64_t key_id = old.key_id;
        rc = tg_store_req_delete(kr->st, old.id, err);
        tg_store_req_clear(&old);
        if (rc == 0) rc = tg_store_key_gc(kr->st, key_id, err);
        if (rc != 0) return rc;
    } else if (rc != TG_E_NOTFOUND) {
        return rc;
    }
    tg_subject subj = {.cn = device_id};
    tg_keyspec ks;
    tg_key *key = NULL;
    tg_strlist none = {0};
    char *subject = NULL;
    tg_store_req req = {0};
    if ((rc = tg_subject_check(&subj, err)) != 0 || (rc = tg_keyspec_parse("ec:p256", &ks, err)) ||
        (rc = tg_key_generate(&ks, &key, err)) != 0 ||
        (rc = tg_csr_create(key, &subj, &none, 0, pem, err)) != 0 ||
        (rc = kr_key_put(kr, key, 0, &req.key_id, NULL, err)) != 0)
        goto end;
    if ((subject = tg_subject_text(&subj)) == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    char desc[32];
    tg_key_describe(key, desc, sizeof(desc));
    req.name = (char *)TG_IDENTITY_NAME;
    req.pem = *pem;
    req.subject = subject;
    req.san_list = (char *)"[]";
    req.key_desc = desc;
    rc = tg_store_req_add(kr->st, &req, err);
end:
    free(subject);
    tg_key_free(key);
    if (rc != 0) {
        free(*pem);
        *pem = NULL;
    }
    return rc;
}

int tg_keyring_identity_request(tg_keyring *kr, const char *device_id, int fresh,
                                unsigned char **csr_der, size_t *len, tg_err *err)
{
    *csr_der = NULL;
    *len = 0;
    char *pem = NULL;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = kr_finish(kr, request_tx(kr, device_id, fresh, &pem, err), err);
    if (rc == 0) rc = tg_csr_pem_to_der(pem, csr_der, len, err);
    free(pem);
    return rc;
}

/* A CA certificate the enrollment server sent with the identity, stored once (by its
 * fingerprint) under a name made by the CA rule, so the identity's chain is built. */
static int put_ca(tg_keyring *kr, const tg_cert *ca, tg_err *err)
{
    tg_store_cert row = {0};
    int rc = kr_cert_row(ca, &row, err);
    if (rc != 0) return rc;
    tg_store_cert have;
    if (!row.is_ca || tg_store_cert_by_sha256(kr->st, row.sha256, &have, NULL) == 0) {
        if (row.is_ca) tg_store_cert_clear(&have);
        tg_store_cert_clear(&row);
        return 0;
    }
    char clean[TG_NAME_MAX + 1], unique[TG_NAME_MAX + 16];
    const char *base =
        kr_ca_name_from(row.subject_cn[0] ? row.subject_cn : "enrollment CA", clean, sizeof(clean));
    if ((rc = kr_unique_name(kr, base, unique, sizeof(unique), NULL, err)) == 0 &&
        (rc = kr_chain_status(kr, ca, 0, row.spki_sha256, row.status, sizeof(row.status),
                              &row.chain_ids, err)) == 0) {
        row.name = tg_strdup(unique);
        rc = row.name ? tg_store_cert_add(kr->st, &row, err)
                      : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    tg_store_cert_clear(&row);
    return rc;
}

static int install_tx(tg_keyring *kr, tg_cert *leaf, tg_cert *const *chain, size_t nchain,
                      tg_err *err)
{
    tg_store_req req;
    int rc = tg_store_req_by_name(kr->st, TG_IDENTITY_NAME, &req, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_CONFLICT,
                          "no identity request is pending: the certificate cannot be installed");
    if (rc != 0) return rc;
    tg_store_key key;
    unsigned char spki[32];
    tg_store_cert row = {0}, old = {0};
    if ((rc = tg_store_key_get(kr->st, req.key_id, &key, err)) != 0 ||
        (rc = tg_cert_spki_sha256(leaf, spki, err)) != 0)
        goto end;
    if (memcmp(spki, key.spki_sha256, 32) != 0) {
        rc = tg_err_set(err, TG_E_INVALID,
                        "the certificate the enrollment server returned is not for this "
                        "appliance's key");
        goto end;
    }
    for (size_t i = 0; i < nchain && rc == 0; i++)
        rc = put_ca(kr, chain[i], err);
    if (rc != 0) goto end;
    int64_t old_key = 0;
    if (tg_store_cert_by_name(kr->st, TG_IDENTITY_NAME, &old, NULL) == 0) {
        old_key = old.key_id;
        if ((rc = tg_store_cert_delete(kr->st, old.id, err)) != 0) goto end;
    }
    if ((rc = kr_cert_row(leaf, &row, err)) != 0) goto end;
    row.key_id = req.key_id;
    if ((row.name = tg_strdup(TG_IDENTITY_NAME)) == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = kr_chain_status(kr, leaf, row.key_id, row.spki_sha256, row.status, sizeof(row.status),
                              &row.chain_ids, err)) != 0 ||
        (rc = tg_store_cert_add(kr->st, &row, err)) != 0 ||
        (rc = tg_store_req_delete(kr->st, req.id, err)) != 0)
        goto end;
    if (old_key != 0 && old_key != req.key_id) rc = tg_store_key_gc(kr->st, old_key, err);
end:
    tg_store_req_clear(&req);
    tg_store_cert_clear(&row);
    tg_store_cert_clear(&old);
    return rc;
}

int tg_keyring_identity_install(tg_keyring *kr, tg_cert *leaf, tg_cert *const *chain, size_t nchain,
                                json_t **out, tg_err *err)
{
    if (out) *out = NULL;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = kr_finish(kr, install_tx(kr, leaf, chain, nchain, err), err);
    if (rc == 0 && out != NULL) rc = tg_keyring_identity_show(kr, out, err);
    return rc;
}

int tg_keyring_identity_show(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    tg_store_cert c;
    int rc = tg_store_cert_by_name(kr->st, TG_IDENTITY_NAME, &c, NULL);
    tg_store_req req;
    int pending = tg_store_req_by_name(kr->st, TG_IDENTITY_NAME, &req, NULL) == 0;
    json_t *doc = json_object();
    if (doc == NULL) rc = -1;
    if (doc != NULL && rc == 0) {
        long long life = c.not_after - c.not_before;
        json_object_set_new(doc, "device_id", kr_json_text(c.subject_cn));
        json_object_set_new(doc, "subject", kr_json_text(c.subject));
        json_object_set_new(doc, "issuer", kr_json_text(c.issuer));
        json_object_set_new(doc, "serial", json_string(c.serial));
        json_object_set_new(doc, "sha256", json_string(c.sha256));
        json_object_set_new(doc, "status", json_string(c.status));
        kr_json_time(doc, "not_before", c.not_before);
        kr_json_time(doc, "not_after", c.not_after);
        kr_json_time(doc, "renew_at", c.not_before + life * 2 / 3);
        tg_store_cert_clear(&c);
    } else if (doc != NULL) {
        json_object_set_new(doc, "device_id", json_null());
    }
    if (doc != NULL) {
        json_object_set_new(doc, "certificate", json_boolean(rc == 0));
        json_object_set_new(doc, "pending_request",
                            pending ? kr_json_text(req.subject) : json_null());
    }
    if (pending) tg_store_req_clear(&req);
    if (doc == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    *out = doc;
    return 0;
}

/* ---- the state of the latest attempt, as a file beside the store ---- */

static void state_path(tg_keyring *kr, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", kr->home, TG_IDENTITY_STATE_FILE);
}

int tg_keyring_identity_state_write(tg_keyring *kr, json_t *state, tg_err *err)
{
    char *text = json_dumps(state, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    char path[4200];
    state_path(kr, path, sizeof(path));
    int rc = tg_file_write(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

json_t *tg_keyring_identity_state(tg_keyring *kr)
{
    char path[4200];
    state_path(kr, path, sizeof(path));
    unsigned char *buf = NULL;
    size_t n = 0;
    tg_err e = {0};
    if (tg_file_read(path, 65536, &buf, &n, &e) != 0) return NULL;
    json_t *doc = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}
