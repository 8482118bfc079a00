/*
 * enroll.c — the enrollment rows (schema 9, issue 11): this appliance's identity
 * settings, small sealed values, and the enrollment CA's bootstrap secrets and device
 * requests. Rows of text and bytes the keyring has already checked.
 *
 * Invariants: a bootstrap secret is stored as its SHA-256 only, and is spent in the same
 * UPDATE that checks it is unspent and unexpired, so two requests cannot both spend it.
 * A sealed value is bound to its name and to the store (AAD), so a blob moved to
 * another name, or into another store, does not open.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- identity settings ---- */

void tg_store_identity_conf_clear(tg_store_identity_conf *c)
{
    free(c->server);
    free(c->ca_pem);
    free(c->serial);
    memset(c, 0, sizeof(*c));
}

static char *col_text(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? tg_strdup(t) : NULL;
}

int tg_store_identity_conf_get(tg_store *st, tg_store_identity_conf *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT server, ca_pem, serial, changed FROM identity_conf WHERE id=1", err);
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->server = col_text(s, 0);
        out->ca_pem = col_text(s, 1);
        out->serial = col_text(s, 2);
        out->changed = sqlite3_column_int64(s, 3);
        rc = out->server ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = TG_E_NOTFOUND;
    } else {
        rc = tg_db_err(st, err, "reading the identity settings");
    }
    tg_db_release(st, s);
    if (rc != 0) tg_store_identity_conf_clear(out);
    return rc;
}

int tg_store_identity_conf_set(tg_store *st, const tg_store_identity_conf *c, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT OR REPLACE INTO identity_conf(id, server, ca_pem, serial, "
                                 "changed) VALUES(1,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, c->server, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->ca_pem, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (long long)time(NULL));
    return tg_db_done(st, s, err, "writing the identity settings");
}

/* ---- sealed values ---- */

static const char VALUE_AAD[] = "tlsgate value v1";
#define VALUE_KEY_MAX 64

static size_t value_aad(unsigned char *aad, const unsigned char sid[16], const char *k)
{
    size_t kl = strlen(k);
    memcpy(aad, VALUE_AAD, sizeof(VALUE_AAD));
    memcpy(aad + sizeof(VALUE_AAD), sid, 16);
    memcpy(aad + sizeof(VALUE_AAD) + 16, k, kl);
    return sizeof(VALUE_AAD) + 16 + kl;
}

int tg_store_sealed_set(tg_store *st, const char *k, const unsigned char *v, size_t len,
                        tg_err *err)
{
    if (strlen(k) > VALUE_KEY_MAX)
        return tg_err_set(err, TG_E_INTERNAL, "sealed value name too long");
    if (v == NULL) {
        sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM sealed_values WHERE k=?", err);
        if (s == NULL) return TG_E_STORE;
        sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
        TG_STORE_SCRUB(st);
        return tg_db_done(st, s, err, "removing a sealed value");
    }
    int rc = tg_store_data_key(st, err);
    if (rc != 0) return rc;
    unsigned char aad[sizeof(VALUE_AAD) + 16 + VALUE_KEY_MAX];
    size_t alen = value_aad(aad, st->store_id, k);
    unsigned char *sealed = NULL;
    size_t slen = 0;
    if ((rc = tg_seal(st->data_key, aad, alen, v, len, &sealed, &slen, err)) != 0) return rc;
    sqlite3_stmt *s =
        tg_db_prep(st, "INSERT OR REPLACE INTO sealed_values(k, sealed) VALUES(?,?)", err);
    if (s == NULL) {
        free(sealed);
        return TG_E_STORE;
    }
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, sealed, (int)slen, SQLITE_STATIC);
    rc = tg_db_done(st, s, err, "writing a sealed value");
    free(sealed);
    return rc;
}

int tg_store_sealed_get(tg_store *st, const char *k, unsigned char **v, size_t *len, tg_err *err)
{
    *v = NULL;
    *len = 0;
    if (strlen(k) > VALUE_KEY_MAX) return TG_E_NOTFOUND;
    int rc = tg_store_data_key(st, err);
    if (rc != 0) return rc;
    sqlite3_stmt *s = tg_db_prep(st, "SELECT sealed FROM sealed_values WHERE k=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    rc = TG_E_NOTFOUND;
    if (sqlite3_step(s) == SQLITE_ROW) {
        unsigned char aad[sizeof(VALUE_AAD) + 16 + VALUE_KEY_MAX];
        size_t alen = value_aad(aad, st->store_id, k);
        rc = tg_unseal(st->data_key, aad, alen, sqlite3_column_blob(s, 0),
                       (size_t)sqlite3_column_bytes(s, 0), v, len, err);
    }
    tg_db_release(st, s);
    return rc;
}

/* ---- the enrollment CA's bootstrap secrets ---- */

int tg_store_est_secret_add(tg_store *st, const unsigned char sha256[32], const char *label,
                            long long expires, int64_t *id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "INSERT INTO est_secrets(sha256, label, created, expires) VALUES(?,?,?,?)", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_blob(s, 1, sha256, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (long long)time(NULL));
    sqlite3_bind_int64(s, 4, expires);
    int rc = tg_db_done(st, s, err, "adding a bootstrap secret");
    if (rc == 0 && id != NULL) *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_est_secret_spend(tg_store *st, const unsigned char sha256[32], long long now,
                              const char *used_by, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "UPDATE est_secrets SET used=?, used_by=? WHERE sha256=? AND "
                                 "used IS NULL AND expires > ?",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, used_by, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, sha256, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now);
    int rc = tg_db_done(st, s, err, "spending a bootstrap secret");
    if (rc == 0 && sqlite3_changes(st->db) != 1) rc = TG_E_NOTFOUND;
    return rc;
}

int tg_store_est_secret_each(tg_store *st, int (*fn)(const tg_store_est_secret *e, void *arg),
                             void *arg, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT id, label, created, expires, used, used_by FROM est_secrets ORDER BY id", err);
    if (s == NULL) return TG_E_STORE;
    int rc = 0;
    while (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
        tg_store_est_secret e = {
            .id = sqlite3_column_int64(s, 0),
            .label = (const char *)sqlite3_column_text(s, 1),
            .created = sqlite3_column_int64(s, 2),
            .expires = sqlite3_column_int64(s, 3),
            .used = sqlite3_column_int64(s, 4),
            .used_by = (const char *)sqlite3_column_text(s, 5),
        };
        rc = fn(&e, arg);
    }
    tg_db_release(st, s);
    return rc < 0 ? rc : 0;
}

/* ---- the enrollment CA's device requests ---- */

void tg_store_est_device_clear(tg_store_est_device *d)
{
    free(d->device);
    free(d->csr);
    free(d->cert);
    free(d->serial);
    free(d->source);
    free(d->reason);
    memset(d, 0, sizeof(*d));
}

#define DEVICE_COLS                                                                                \
    "id, device, state, csr_sha256, csr, cert, serial, not_after, source, requested, decided,"     \
    " reason FROM est_devices"

static unsigned char *col_blob(sqlite3_stmt *s, int i, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(s, i);
    const void *b = sqlite3_column_blob(s, i);
    if (b == NULL) return NULL;
    unsigned char *c = malloc(*len ? *len : 1);
    if (c != NULL) memcpy(c, b, *len);
    return c;
}

static int device_from_row(sqlite3_stmt *s, tg_store_est_device *d)
{
    memset(d, 0, sizeof(*d));
    d->id = sqlite3_column_int64(s, 0);
    d->device = col_text(s, 1);
    const char *state = (const char *)sqlite3_column_text(s, 2);
    snprintf(d->state, sizeof(d->state), "%s", state ? state : "");
    if (sqlite3_column_bytes(s, 3) == 32) memcpy(d->csr_sha256, sqlite3_column_blob(s, 3), 32);
    d->csr = col_blob(s, 4, &d->csrlen);
    d->cert = col_blob(s, 5, &d->certlen);
    d->serial = col_text(s, 6);
    d->not_after = sqlite3_column_int64(s, 7);
    d->source = col_text(s, 8);
    d->requested = sqlite3_column_int64(s, 9);
    d->decided = sqlite3_column_int64(s, 10);
    d->reason = col_text(s, 11);
    if (d->device == NULL || d->csr == NULL || d->source == NULL) {
        tg_store_est_device_clear(d);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int device_one(tg_store *st, sqlite3_stmt *s, tg_store_est_device *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = device_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading an enrollment request");
    tg_db_release(st, s);
    return rc;
}

int tg_store_est_device_add(tg_store *st, tg_store_est_device *d, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO est_devices(device, state, csr_sha256, csr, cert, "
                                 "serial, not_after, source, requested, decided, reason) "
                                 "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, d->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, d->state, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, d->csr_sha256, 32, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, d->csr, (int)d->csrlen, SQLITE_STATIC);
    if (d->cert) sqlite3_bind_blob(s, 5, d->cert, (int)d->certlen, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, d->serial, -1, SQLITE_STATIC);
    if (d->not_after) sqlite3_bind_int64(s, 7, d->not_after);
    sqlite3_bind_text(s, 8, d->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, d->requested);
    if (d->decided) sqlite3_bind_int64(s, 10, d->decided);
    sqlite3_bind_text(s, 11, d->reason, -1, SQLITE_STATIC);
    int rc = tg_db_done(st, s, err, "recording an enrollment request");
    if (rc == 0) d->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_est_device_update(tg_store *st, const tg_store_est_device *d, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "UPDATE est_devices SET state=?, cert=?, serial=?, not_after=?, "
                                 "decided=?, reason=? WHERE id=?",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, d->state, -1, SQLITE_STATIC);
    if (d->cert) sqlite3_bind_blob(s, 2, d->cert, (int)d->certlen, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, d->serial, -1, SQLITE_STATIC);
    if (d->not_after) sqlite3_bind_int64(s, 4, d->not_after);
    if (d->decided) sqlite3_bind_int64(s, 5, d->decided);
    sqlite3_bind_text(s, 6, d->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, d->id);
    return tg_db_done(st, s, err, "updating an enrollment request");
}

int tg_store_est_device_get(tg_store *st, int64_t id, tg_store_est_device *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " DEVICE_COLS " WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return device_one(st, s, out, err);
}

int tg_store_est_device_by_csr(tg_store *st, const unsigned char sha256[32],
                               tg_store_est_device *out, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT " DEVICE_COLS " WHERE csr_sha256=? ORDER BY id DESC LIMIT 1", err);
    if (s) sqlite3_bind_blob(s, 1, sha256, 32, SQLITE_STATIC);
    return device_one(st, s, out, err);
}

int tg_store_est_device_by_serial(tg_store *st, const char *serial, tg_store_est_device *out,
                                  tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT " DEVICE_COLS " WHERE serial=? ORDER BY id DESC LIMIT 1", err);
    if (s) sqlite3_bind_text(s, 1, serial, -1, SQLITE_STATIC);
    return device_one(st, s, out, err);
}

int tg_store_est_device_each(tg_store *st, int (*fn)(const tg_store_est_device *d, void *arg),
                             void *arg, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " DEVICE_COLS " ORDER BY id", err);
    if (s == NULL) return TG_E_STORE;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        tg_store_est_device d;
        if (device_from_row(s, &d) != 0) {
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
            break;
        }
        rc = fn(&d, arg);
        tg_store_est_device_clear(&d);
    }
    tg_db_release(st, s);
    return rc < 0 ? rc : 0;
}
