/*
 * untrusted.c — the installation's untrusted CA (SPEC I3): when an upstream server fails
 * validation, a client proxy that lets the connection through signs the certificate it
 * shows with this CA, which no client trusts, so that the client sees the failure
 * instead of a certificate that hides it.
 *
 * It is an ordinary stored signing certificate (TG_UNTRUSTED_CA_NAME, EC P-256, 3650
 * days, key not exportable) made in one transaction on first use; the setting
 * "untrusted_ca" holds its SHA-256, so that a user's certificate that merely has the
 * name is never taken for it. Deleting it (or a factory reset) makes the next call
 * create a new one.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <string.h>

#define SETTING "untrusted_ca"

/* Our untrusted CA's id, or TG_E_NOTFOUND when there is none (yet, or any more). */
static int find(tg_keyring *kr, int64_t *id, tg_err *err)
{
    char sha[80];
    if (tg_store_setting_get(kr->st, SETTING, sha, sizeof(sha), NULL) != 0) return TG_E_NOTFOUND;
    tg_store_cert c;
    int rc = tg_store_cert_by_sha256(kr->st, sha, &c, err);
    if (rc != 0) return rc;
    *id = c.id;
    if (c.key_id == 0) rc = TG_E_NOTFOUND; /* cannot happen: its key goes only with it */
    tg_store_cert_clear(&c);
    return rc;
}

static int create(tg_keyring *kr, int64_t *id, tg_err *err)
{
    if (tg_store_name_taken(kr->st, TG_UNTRUSTED_CA_NAME))
        return tg_err_set(err, TG_E_CONFLICT,
                          "a certificate named '%s' exists but is not tlsgate's untrusted CA; "
                          "that name is reserved for it: delete that certificate (export it "
                          "first if you need it) so that tlsgate can make its own",
                          TG_UNTRUSTED_CA_NAME);
    tg_newcert spec = {.name = TG_UNTRUSTED_CA_NAME,
                       .subject = {.cn = "tlsgate untrusted CA - do not trust"},
                       .keyspec = "ec:p256",
                       .days = 3650,
                       .days_set = 1,
                       .no_export = 1,
                       .signing = 1};
    int rc = kr_create_tx(kr, &spec, 0, id, err);
    tg_store_cert c;
    if (rc == 0 && (rc = tg_store_cert_get(kr->st, *id, &c, err)) == 0) {
        rc = tg_store_setting_set(kr->st, SETTING, c.sha256, err);
        tg_store_cert_clear(&c);
    }
    return rc;
}

int tg_keyring_untrusted_ca(tg_keyring *kr, tg_cert **cert, tg_key **key, tg_err *err)
{
    *cert = NULL;
    *key = NULL;
    int64_t id = 0;
    int rc = find(kr, &id, err);
    if (rc == TG_E_NOTFOUND) {
        /* again inside the transaction: another process may have made it meanwhile */
        if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
        rc = find(kr, &id, err);
        if (rc == TG_E_NOTFOUND) rc = create(kr, &id, err);
        if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    }
    if (rc != 0) return rc;
    tg_store_cert c;
    if ((rc = tg_store_cert_get(kr->st, id, &c, err)) != 0) return rc;
    rc = tg_cert_from_der(c.der, c.derlen, cert, err);
    if (rc == 0) rc = kr_key_load(kr, c.key_id, key, err);
    tg_store_cert_clear(&c);
    if (rc != 0) {
        tg_cert_free(*cert);
        *cert = NULL;
    }
    return rc;
}
