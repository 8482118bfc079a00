/*
 * ca.c — CA certificates on their own (SPEC C3) and root CA rollover (K10).
 *
 * CA certificates live in the same table as the others (a CA is a certificate with
 * CA:TRUE); these operations add the CA-only rules: names of letters, digits, hyphen,
 * underscore and space ("ca" reserved), and refusal of non-CA certificates.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tg_keyring_ca_import(tg_keyring *kr, const tg_import *imp, json_t **out, tg_err *err)
{
    int rc;
    if (imp->name != NULL && (rc = kr_ca_name_check(imp->name, err)) != 0) return rc;
    tg_import ca = *imp;
    ca.ca_only = 1;
    return tg_keyring_cert_import(kr, &ca, out, err);
}

int tg_keyring_ca_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    tg_store_cert c;
    int rc = kr_ca_get(kr, name, &c, err);
    if (rc != 0) return rc;
    *out = kr_cert_doc(kr, &c);
    tg_store_cert_clear(&c);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_ca_check(tg_keyring *kr, const char *name, tg_err *err)
{
    tg_store_cert c;
    int rc = kr_ca_get(kr, name, &c, err);
    if (rc == 0) tg_store_cert_clear(&c);
    return rc;
}

int tg_keyring_ca_replace(tg_keyring *kr, const char *name, const tg_import *imp, json_t **out,
                          tg_err *err)
{
    int rc = tg_keyring_ca_check(kr, name, err);
    if (rc != 0) return rc;
    tg_import ca = *imp;
    ca.ca_only = 1;
    return tg_keyring_cert_replace(kr, name, &ca, out, err);
}

int kr_ca_reissue_tx(tg_keyring *kr, const tg_store_cert *old, int days, const char *newname,
                     tg_store_cert *row, tg_err *err)
{
    const char *name = old->name;
    memset(row, 0, sizeof(*row));
    if (old->key_id == 0)
        return tg_err_set(err, TG_E_CONFLICT,
                          "'%s' has no private key in the store; only a CA whose key we hold can "
                          "be reissued",
                          name);
    if (!old->self_signed)
        return tg_err_set(err, TG_E_CONFLICT,
                          "'%s' is an intermediate: its issuer must reissue it; only root CAs are "
                          "reissued here",
                          name);
    tg_cert *cert = NULL, *fresh = NULL;
    tg_key *key = NULL;
    int rc;
    if ((rc = tg_cert_from_der(old->der, old->derlen, &cert, err)) != 0 ||
        (rc = kr_key_load(kr, old->key_id, &key, err)) != 0 ||
        (rc = tg_cert_reissue(cert, key, days, &fresh, err)) != 0 ||
        (rc = kr_cert_row(fresh, row, err)) != 0)
        goto end;
    char buf[TG_NAME_MAX + 64], date[40];
    if (newname != NULL) {
        if ((rc = kr_ca_name_check(newname, err)) != 0) goto end;
        if (tg_store_name_taken(kr->st, newname)) {
            rc = tg_err_set(err, TG_E_CONFLICT, "a certificate named '%s' already exists", newname);
            goto end;
        }
        snprintf(buf, sizeof(buf), "%s", newname);
    } else {
        time_t na = (time_t)row->not_after;
        struct tm tm;
        gmtime_r(&na, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
        /* a copy of a copy is named after the family, not "A until X until Y" */
        size_t keep = strlen(name), tail = strlen(" until YYYY-MM-DD");
        if (keep > tail && strncmp(name + keep - tail, " until ", 7) == 0 &&
            strspn(name + keep - 10, "0123456789-") == 10)
            keep -= tail;
        char base[TG_NAME_MAX + 64];
        snprintf(base, sizeof(base), "%.*s until %s", (int)(keep < 100 ? keep : 100), name, date);
        if ((rc = kr_unique_name(kr, base, buf, sizeof(buf), NULL, err)) != 0) goto end;
    }
    row->name = tg_strdup(buf);
    row->key_id = old->key_id;
    row->predecessor_id = old->id;
    strcpy(row->status, "valid");
    if (row->name == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = tg_store_cert_add(kr->st, row, err)) != 0) goto end;
    rc = kr_refresh_tx(kr, NULL, err);
end:
    tg_cert_free(cert);
    tg_cert_free(fresh);
    tg_key_free(key);
    return rc;
}

int tg_keyring_ca_reissue(tg_keyring *kr, const char *name, int days, const char *newname,
                          json_t **out, tg_err *err)
{
    *out = NULL;
    if (days == TG_DAYS_NONE) /* no default: a rollover's new validity is the operator's choice */
        return tg_err_fset(err, TG_E_USAGE, "days",
                           "a reissue needs the new validity: a number of days from 1 to %d",
                           TG_DAYS_MAX);
    if (days < 1 || days > TG_DAYS_MAX)
        return tg_err_fset(err, TG_E_INVALID, "days", "the number of days must be between 1 and %d",
                           TG_DAYS_MAX);
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_cert old = {0}, row = {0};
    if ((rc = kr_ca_get(kr, name, &old, err)) == 0)
        rc = kr_ca_reissue_tx(kr, &old, days, newname, &row, err);
    rc = kr_finish(kr, rc, err);
    if (rc == 0) *out = kr_cert_doc(kr, &row);
    tg_store_cert_clear(&old);
    tg_store_cert_clear(&row);
    return rc;
}
